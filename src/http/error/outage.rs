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

/// The outage state of each dependency: when it was last logged (Unix seconds; 0 = never),
/// how many requests were turned away since, and since when it has been down (0 = up).
pub struct Outages {
    last_logged: [AtomicI64; 2],
    since: [AtomicU64; 2],
    down_since: [AtomicI64; 2],
}

impl Outages {
    /// No outage.
    pub const fn new() -> Outages {
        Outages {
            last_logged: [AtomicI64::new(0), AtomicI64::new(0)],
            since: [AtomicU64::new(0), AtomicU64::new(0)],
            down_since: [AtomicI64::new(0), AtomicI64::new(0)],
        }
    }

    /// Notes one request turned away at `now`; whether this one logs it (the first, then
    /// once a minute), with how many were turned away since the last log.
    fn note(&self, dep: Dependency, now: i64) -> Option<u64> {
        let slot = dep.slot();
        let turned_away = self.since[slot].fetch_add(1, Ordering::Relaxed) + 1;
        let _ =
            self.down_since[slot].compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        let last = self.last_logged[slot].load(Ordering::Relaxed);
        // One request wins the right to log; the others only count.
        if due(last, now)
            && self.last_logged[slot]
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.since[slot].store(0, Ordering::Relaxed);
            return Some(turned_away);
        }
        None
    }

    /// Whether `dep` is known to be down (a request was turned away and no recovery seen).
    pub fn is_down(&self, dep: Dependency) -> bool {
        self.down_since[dep.slot()].load(Ordering::Relaxed) != 0
    }

    /// Notes that `dep` answered again at `now`: for the one caller that ends the outage,
    /// how long it lasted (seconds) and how many requests were turned away since the last
    /// log; `None` when it was not down (or another caller ended it).
    fn end(&self, dep: Dependency, now: i64) -> Option<(i64, u64)> {
        let slot = dep.slot();
        let since = self.down_since[slot].swap(0, Ordering::Relaxed);
        if since == 0 {
            return None;
        }
        // The next outage is logged at once, however soon it comes.
        self.last_logged[slot].store(0, Ordering::Relaxed);
        let turned_away = self.since[slot].swap(0, Ordering::Relaxed);
        Some(((now - since).max(0), turned_away))
    }
}

impl Default for Outages {
    fn default() -> Self {
        Outages::new()
    }
}

/// The process's outages (the 503 answers and the recovery watcher share it).
static OUTAGES: Outages = Outages::new();

/// Whether to log now, given when it was last logged: the first time, then once a
/// minute. Pure.
pub fn due(last_logged: i64, now: i64) -> bool {
    last_logged == 0 || now - last_logged >= LOG_EVERY_SECS
}

/// Notes one request turned away by an outage, logging it when due.
pub fn record(dep: Dependency, e: &anyhow::Error) {
    if let Some(turned_away) = OUTAGES.note(dep, chrono::Utc::now().timestamp()) {
        tracing::error!(
            dependency = dep.name(),
            turned_away,
            error = %format!("{e:#}"),
            "dependency unreachable: answering 503 (logged once a minute while it lasts)"
        );
    }
    metrics::counter!("onewindow_unavailable_total", "dependency" => dep.name()).increment(1);
}

/// Whether `dep` is down as far as the answers know (for the recovery watcher).
pub fn is_down(dep: Dependency) -> bool {
    OUTAGES.is_down(dep)
}

/// Notes that `dep` answered again; logs "recovered" once per outage.
pub fn recovered(dep: Dependency) {
    if let Some((down_secs, turned_away)) = OUTAGES.end(dep, chrono::Utc::now().timestamp()) {
        tracing::warn!(
            dependency = dep.name(),
            down_secs,
            turned_away,
            "dependency recovered: answering again"
        );
    }
}

/// Every dependency, for the recovery watcher.
const DEPENDENCIES: [Dependency; 2] = [Dependency::Database, Dependency::Cache];

/// While a dependency is down, asks it every second whether it answers again, and logs
/// "recovered" when it does (one line per outage), until `token` is cancelled. Costs
/// nothing while everything is up.
pub async fn watch_recovery(app: crate::app::AppState, token: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tick.tick() => {}
        }
        for dep in DEPENDENCIES {
            if !is_down(dep) {
                continue;
            }
            let probe = std::time::Duration::from_secs(2);
            let up = match dep {
                Dependency::Database => {
                    matches!(
                        tokio::time::timeout(probe, app.store.ping()).await,
                        Ok(Ok(()))
                    )
                }
                Dependency::Cache => {
                    matches!(
                        tokio::time::timeout(probe, app.cache.ping()).await,
                        Ok(Ok(()))
                    )
                }
            };
            if up {
                recovered(dep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_logged_once_then_recovered_once_and_a_new_outage_is_logged_at_once() {
        let o = Outages::new();
        assert!(!o.is_down(Dependency::Cache));
        assert_eq!(o.end(Dependency::Cache, 100), None, "not down: no recovery");
        assert_eq!(
            o.note(Dependency::Cache, 100),
            Some(1),
            "the first is logged"
        );
        assert_eq!(o.note(Dependency::Cache, 101), None);
        assert_eq!(o.note(Dependency::Cache, 102), None);
        assert!(o.is_down(Dependency::Cache));
        assert!(
            !o.is_down(Dependency::Database),
            "one dependency's outage only"
        );
        assert_eq!(
            o.end(Dependency::Cache, 130),
            Some((30, 2)),
            "recovered once"
        );
        assert_eq!(o.end(Dependency::Cache, 131), None, "not twice");
        assert!(!o.is_down(Dependency::Cache));
        assert_eq!(
            o.note(Dependency::Cache, 140),
            Some(1),
            "a new outage is logged at once"
        );
    }

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
