//! The in-process cache: moka with per-entry expiry. Right for one instance; several
//! instances need Redis so that a session or a counter is the same everywhere.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::future::Cache as Moka;

use super::{Cache, CacheResult};

#[derive(Clone)]
struct Entry {
    value: Arc<[u8]>,
    deadline: Instant,
}

impl Entry {
    fn counter(&self) -> i64 {
        self.value
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(i64::from_le_bytes)
            .unwrap_or(0)
    }
}

/// Each entry carries its own deadline; moka evicts it then.
struct UntilDeadline;

impl Expiry<String, Entry> for UntilDeadline {
    fn expire_after_create(&self, _k: &String, v: &Entry, now: Instant) -> Option<Duration> {
        Some(v.deadline.saturating_duration_since(now))
    }
    fn expire_after_update(
        &self,
        _k: &String,
        v: &Entry,
        now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.deadline.saturating_duration_since(now))
    }
}

/// In-memory implementation of [`Cache`].
pub struct MemoryCache {
    prefix: String,
    inner: Moka<String, Entry>,
}

impl MemoryCache {
    /// A new, empty cache (bounded to a million entries).
    pub fn new(prefix: &str) -> MemoryCache {
        MemoryCache {
            prefix: prefix.to_owned(),
            inner: Moka::builder()
                .max_capacity(1_000_000)
                .expire_after(UntilDeadline)
                .build(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Reads an entry only if its deadline has not passed (moka evicts lazily).
    async fn live(&self, key: &str) -> Option<Entry> {
        self.inner
            .get(key)
            .await
            .filter(|e| e.deadline > Instant::now())
    }
}

#[async_trait]
impl Cache for MemoryCache {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> CacheResult<()> {
        Ok(())
    }

    async fn get(&self, key: &str) -> CacheResult<Option<Vec<u8>>> {
        Ok(self.live(&self.key(key)).await.map(|e| e.value.to_vec()))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> CacheResult<()> {
        let entry = Entry {
            value: value.into(),
            deadline: Instant::now() + ttl,
        };
        self.inner.insert(self.key(key), entry).await;
        Ok(())
    }

    async fn delete(&self, key: &str) -> CacheResult<bool> {
        let k = self.key(key);
        let was_live = self.live(&k).await.is_some();
        self.inner.remove(&k).await;
        Ok(was_live)
    }

    async fn incr(&self, key: &str, ttl: Duration) -> CacheResult<i64> {
        let now = Instant::now();
        // The upsert runs under moka's per-key lock, so concurrent increments never
        // lose a count. A live counter keeps its deadline: a fixed window.
        let entry = self
            .inner
            .entry(self.key(key))
            .and_upsert_with(|old| async move {
                let (count, deadline) = match old.map(|e| e.into_value()) {
                    Some(e) if e.deadline > now => (e.counter() + 1, e.deadline),
                    _ => (1, now + ttl),
                };
                Entry {
                    value: Arc::from(count.to_le_bytes().as_slice()),
                    deadline,
                }
            })
            .await;
        Ok(entry.value().counter())
    }

    async fn counter(&self, key: &str) -> CacheResult<i64> {
        Ok(self
            .live(&self.key(key))
            .await
            .map(|e| e.counter())
            .unwrap_or(0))
    }

    async fn purge(&self) -> CacheResult<u64> {
        self.inner.run_pending_tasks().await;
        let n = self.inner.entry_count();
        self.inner.invalidate_all();
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn set_get_delete_and_expiry() {
        let c = MemoryCache::new("t:");
        c.set("a", b"1", Duration::from_millis(80))
            .await
            .expect("set");
        assert_eq!(c.get("a").await.expect("get"), Some(b"1".to_vec()));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(c.get("a").await.expect("get"), None);
        c.set("b", b"2", Duration::from_secs(60))
            .await
            .expect("set");
        assert!(c.delete("b").await.expect("del"));
        assert!(!c.delete("b").await.expect("del"));
    }

    #[tokio::test]
    async fn counters_count_within_a_fixed_window() {
        let c = MemoryCache::new("t:");
        let ttl = Duration::from_millis(200);
        assert_eq!(c.incr("n", ttl).await.expect("incr"), 1);
        assert_eq!(c.incr("n", ttl).await.expect("incr"), 2);
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(c.incr("n", ttl).await.expect("incr"), 3);
        // the window started at the first increment, not the last
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(c.incr("n", ttl).await.expect("incr"), 1);
    }
}
