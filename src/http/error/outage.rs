//! Faults answered as faults: an internal error whose cause is an unreachable database or
//! cache is answered 503 with `Retry-After` and a message that says the service is briefly
//! unavailable, not 500 "internal error"; the outage is logged once a minute while it
//! lasts (with how many requests were turned away since), not once per request.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::Message;
use crate::cache::CacheError;
use crate::store::StoreError;

/// Seconds a client is told to wait before trying again.
pub const RETRY_AFTER_SECS: u64 = 5;

/// How often an ongoing outage is logged again.
const LOG_EVERY_SECS: i64 = 60;

/// A dependency the gateway cannot answer without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// PostgreSQL (or SQLite).
    Database,
    /// Redis.
    Cache,
}

impl Dependency {
    fn name(self) -> &'static str {
        match self {
            Dependency::Database => "database",
            Dependency::Cache => "cache",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// Which dependency an error says is unreachable, if any.
pub fn outage_of(e: &anyhow::Error) -> Option<Dependency> {
    for cause in e.chain() {
        if let Some(StoreError::Database(db)) = cause.downcast_ref::<StoreError>() {
            if crate::store::is_unreachable(db) {
                return Some(Dependency::Database);
            }
        } else if let Some(db) = cause.downcast_ref::<sqlx::Error>() {
            if crate::store::is_unreachable(db) {
                return Some(Dependency::Database);
            }
        } else if cause.downcast_ref::<CacheError>().is_some() {
            return Some(Dependency::Cache);
        }
    }
    None
}

/// The message of a 503 for an outage.
pub fn unavailable_message() -> Message {
    Message::new(
        format!("服务暂时不可用，请约{RETRY_AFTER_SECS}秒后重试。您已填写的内容不会丢失。"),
        format!(
            "The service is briefly unavailable. Please try again in about {RETRY_AFTER_SECS} seconds; nothing you entered is lost."
        ),
    )
}

/// When each dependency's outage was last logged (Unix seconds; 0 = never) and how many
/// requests were turned away since.
static LAST_LOGGED: [AtomicI64; 2] = [AtomicI64::new(0), AtomicI64::new(0)];
static SINCE: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// Whether to log now, given when it was last logged: the first time, then once a
/// minute. Pure.
pub fn due(last_logged: i64, now: i64) -> bool {
    last_logged == 0 || now - last_logged >= LOG_EVERY_SECS
}

/// Notes one request turned away by an outage, logging it when due.
pub fn record(dep: Dependency, e: &anyhow::Error) {
    let slot = dep.slot();
    let turned_away = SINCE[slot].fetch_add(1, Ordering::Relaxed) + 1;
    let now = chrono::Utc::now().timestamp();
    let last = LAST_LOGGED[slot].load(Ordering::Relaxed);
    // One request wins the right to log; the others only count.
    if due(last, now)
        && LAST_LOGGED[slot]
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        SINCE[slot].store(0, Ordering::Relaxed);
        tracing::error!(
            dependency = dep.name(),
            turned_away,
            error = %format!("{e:#}"),
            "dependency unreachable: answering 503 (logged once a minute while it lasts)"
        );
    }
    metrics::counter!("onewindow_unavailable_total", "dependency" => dep.name()).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_logged_first_then_once_a_minute() {
        assert!(due(0, 1_000));
        assert!(!due(1_000, 1_000));
        assert!(!due(1_000, 1_059));
        assert!(due(1_000, 1_060));
    }

    #[test]
    fn unreachable_database_and_cache_are_outages_other_errors_are_not() {
        let pool = anyhow::Error::from(StoreError::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(outage_of(&pool), Some(Dependency::Database));
        let io = anyhow::Error::from(StoreError::Database(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        ))))
        .context("loading the case");
        assert_eq!(outage_of(&io), Some(Dependency::Database));
        let cache = anyhow::Error::from(CacheError("connection dropped".into()));
        assert_eq!(outage_of(&cache), Some(Dependency::Cache));
        let corrupt = anyhow::Error::from(StoreError::Corrupt("x".into()));
        assert_eq!(outage_of(&corrupt), None);
        let row = anyhow::Error::from(StoreError::Database(sqlx::Error::RowNotFound));
        assert_eq!(outage_of(&row), None);
        assert_eq!(outage_of(&anyhow::anyhow!("a bug")), None);
    }
}
