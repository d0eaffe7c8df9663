//! Short-lived shared state (sessions, rate-limit counters, cached provider answers)
//! behind one trait: in process memory by default, Redis when `REDIS_URL` is set so that
//! several gateway instances share it. Every key is stored under a configurable prefix,
//! so deployments (and tests) sharing one Redis never see each other's keys.

mod memory;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use self::memory::MemoryCache;
pub use self::redis::RedisCache;

/// A cache failure (Redis unreachable, protocol error).
#[derive(Debug, thiserror::Error)]
#[error("cache error: {0}")]
pub struct CacheError(pub String);

/// Result of cache operations.
pub type CacheResult<T> = Result<T, CacheError>;

/// Key/value storage with expiry. Keys passed in are *without* the prefix; the
/// implementation adds it.
#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// `"memory"` or `"redis"`, named in the startup log so operators see which one runs.
    fn backend(&self) -> &'static str;

    /// Answers when the cache is reachable.
    async fn ping(&self) -> CacheResult<()>;

    /// The value stored under `key`, if present and not expired.
    async fn get(&self, key: &str) -> CacheResult<Option<Vec<u8>>>;

    /// Stores a value that expires after `ttl`.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> CacheResult<()>;

    /// Removes a key; returns whether it existed.
    async fn delete(&self, key: &str) -> CacheResult<bool>;

    /// Atomically adds one to a counter and returns the new value. The counter expires
    /// `ttl` after it was created (a fixed window, for rate limits).
    async fn incr(&self, key: &str, ttl: Duration) -> CacheResult<i64>;

    /// The current value of an `incr` counter (0 when absent or expired).
    async fn counter(&self, key: &str) -> CacheResult<i64>;

    /// Removes every key under this cache's prefix; returns how many were removed.
    async fn purge(&self) -> CacheResult<u64>;
}

/// Opens the configured cache: Redis when a URL is given, memory otherwise.
pub async fn connect(redis_url: Option<&str>, prefix: &str) -> CacheResult<Arc<dyn Cache>> {
    Ok(match redis_url {
        Some(url) => Arc::new(RedisCache::connect(url, prefix).await?),
        None => Arc::new(MemoryCache::new(prefix)),
    })
}
