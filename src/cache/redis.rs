//! The Redis cache, shared by every gateway instance. One multiplexed connection with
//! automatic reconnection (`ConnectionManager`).

use std::time::Duration;

use ::redis::AsyncCommands;
use ::redis::aio::ConnectionManager;
use async_trait::async_trait;

use super::{Cache, CacheError, CacheResult};

/// Redis implementation of [`Cache`].
#[derive(Clone)]
pub struct RedisCache {
    prefix: String,
    conn: ConnectionManager,
}

fn err(e: ::redis::RedisError) -> CacheError {
    CacheError(e.to_string())
}

fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

impl RedisCache {
    /// Connects; fails when Redis does not answer within a few seconds.
    pub async fn connect(url: &str, prefix: &str) -> CacheResult<RedisCache> {
        let client = ::redis::Client::open(url).map_err(err)?;
        let config = ::redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(2);
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| CacheError("Redis did not answer within 5 s".into()))?
        .map_err(err)?;
        Ok(RedisCache {
            prefix: prefix.to_owned(),
            conn,
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl Cache for RedisCache {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> CacheResult<()> {
        let mut c = self.conn.clone();
        let _: String = ::redis::cmd("PING")
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> CacheResult<Option<Vec<u8>>> {
        let mut c = self.conn.clone();
        c.get(self.key(key)).await.map_err(err)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> CacheResult<()> {
        let mut c = self.conn.clone();
        c.pset_ex(self.key(key), value, millis(ttl))
            .await
            .map_err(err)
    }

    async fn delete(&self, key: &str) -> CacheResult<bool> {
        let mut c = self.conn.clone();
        let n: u64 = c.del(self.key(key)).await.map_err(err)?;
        Ok(n > 0)
    }

    async fn incr(&self, key: &str, ttl: Duration) -> CacheResult<i64> {
        let mut c = self.conn.clone();
        let k = self.key(key);
        // INCR and PEXPIRE NX in one round trip: the expiry is set only by the first
        // increment, which makes a fixed window.
        let (n,): (i64,) = ::redis::pipe()
            .atomic()
            .incr(&k, 1)
            .cmd("PEXPIRE")
            .arg(&k)
            .arg(millis(ttl))
            .arg("NX")
            .ignore()
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(n)
    }

    async fn counter(&self, key: &str) -> CacheResult<i64> {
        let mut c = self.conn.clone();
        let v: Option<i64> = c.get(self.key(key)).await.map_err(err)?;
        Ok(v.unwrap_or(0))
    }

    async fn purge(&self) -> CacheResult<u64> {
        let mut c = self.conn.clone();
        let pattern = format!("{}*", escape_glob(&self.prefix));
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut c)
                .await
                .map_err(err)?;
            if !keys.is_empty() {
                let n: u64 = c.del(&keys).await.map_err(err)?;
                removed += n;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(removed)
    }
}

fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}
