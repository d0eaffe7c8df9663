//! Push delivery: claims due events and runs their attempts side by side; each attempt
//! (sign, POST, record) is the use case `usecases::deliver`. Failed events are retried on
//! the published schedule with jitter until the department answers 2xx or the schedule
//! runs out (dead letter, redeliverable by operators).
//!
//! Time is a parameter (`deliver_due(app, now)`), so tests move it forward instead of
//! waiting hours; the background loop passes the real clock.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::state::AppState;
use crate::store::{AttemptOutcome, Delivery};

/// Waits after failed attempts 1, 2, … (about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
/// 20 h, 24 h); after the last one the event is dead-lettered.
pub const SCHEDULE_SECS: [i64; 9] = [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400];

/// How long a claimed event is reserved for one worker.
const LEASE: chrono::Duration = chrono::Duration::seconds(60);

/// Where the next attempt stands after failed attempt `attempt` (1-based), with ±10 %
/// jitter so a recovering department is not hit by every retry at once.
pub fn next_after_failure(attempt: i32, now: DateTime<Utc>, jitter: f64) -> AttemptOutcome {
    let idx = (attempt.max(1) - 1) as usize;
    match SCHEDULE_SECS.get(idx) {
        Some(&base) => {
            let ms = (base as f64 * 1000.0 * (1.0 + jitter.clamp(-0.1, 0.1))) as i64;
            AttemptOutcome::RetryAt(now + chrono::Duration::milliseconds(ms))
        }
        None => AttemptOutcome::Dead,
    }
}

/// Whether an endpoint may be used: https, or http where configuration allows it.
pub fn endpoint_allowed(url: &str, allow_http: bool) -> bool {
    match url::Url::parse(url) {
        Ok(u) => u.scheme() == "https" || (allow_http && u.scheme() == "http"),
        Err(_) => false,
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Delivered (2xx).
    pub delivered: usize,
    /// Failed, to be retried.
    pub retrying: usize,
    /// Failed for the last time.
    pub dead: usize,
}

/// Delivers every push event due at `now` (in batches), returning what happened.
pub async fn deliver_due(app: &AppState, now: DateTime<Utc>) -> anyhow::Result<Report> {
    let mut report = Report::default();
    loop {
        let batch = app.store.claim_push(now, now + LEASE, 32).await?;
        if batch.is_empty() {
            return Ok(report);
        }
        let results = futures_join(app, batch, now).await;
        for outcome in results {
            match outcome {
                AttemptOutcome::Delivered => report.delivered += 1,
                AttemptOutcome::RetryAt(_) => report.retrying += 1,
                AttemptOutcome::Dead => report.dead += 1,
            }
        }
    }
}

async fn futures_join(
    app: &AppState,
    batch: Vec<Delivery>,
    now: DateTime<Utc>,
) -> Vec<AttemptOutcome> {
    let mut set = tokio::task::JoinSet::new();
    for d in batch {
        let app = app.clone();
        set.spawn(async move { crate::usecases::deliver::deliver(&app, d, now).await });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(o)) => out.push(o),
            Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "delivery bookkeeping failed"),
            Err(e) => tracing::warn!(error = %e, "delivery task failed"),
        }
    }
    out
}

/// The background loop: a pass every second (and a key refresh every minute) until
/// `stop` is cancelled.
pub async fn run(app: AppState, stop: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                n += 1;
                if n.is_multiple_of(60)
                    && let Err(e) = app.keys.refresh(app.store.as_ref()).await {
                        tracing::warn!(error = %format!("{e:#}"), "cannot reload signing keys");
                    }
                if let Err(e) = deliver_due(&app, Utc::now()).await {
                    tracing::warn!(error = %format!("{e:#}"), "delivery pass failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_runs_out_after_nine_retries() {
        let now = Utc::now();
        match next_after_failure(1, now, 0.0) {
            AttemptOutcome::RetryAt(t) => assert_eq!((t - now).num_seconds(), 5),
            other => panic!("{other:?}"),
        }
        match next_after_failure(9, now, 0.0) {
            AttemptOutcome::RetryAt(t) => assert_eq!((t - now).num_hours(), 24),
            other => panic!("{other:?}"),
        }
        assert_eq!(next_after_failure(10, now, 0.0), AttemptOutcome::Dead);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let now = Utc::now();
        for (i, &base) in SCHEDULE_SECS.iter().enumerate() {
            let attempt = i as i32 + 1;
            let base_ms = base * 1000;
            // Jitter beyond ±10 % is clamped to it; within, it scales the wait.
            for (jitter, expected_ms) in [
                (-0.5, base_ms * 9 / 10),
                (-0.1, base_ms * 9 / 10),
                (0.0, base_ms),
                (0.05, base_ms * 21 / 20),
                (0.1, base_ms * 11 / 10),
                (0.5, base_ms * 11 / 10),
            ] {
                let AttemptOutcome::RetryAt(t) = next_after_failure(attempt, now, jitter) else {
                    panic!("attempt {attempt} is within the schedule and must be retried");
                };
                let waited = (t - now).num_milliseconds();
                // Float arithmetic may land a millisecond short of the exact figure.
                assert!(
                    (waited - expected_ms).abs() <= 1,
                    "attempt {attempt}, jitter {jitter}: waited {waited} ms, expected {expected_ms} ms"
                );
            }
        }
    }

    #[test]
    fn plain_http_needs_permission() {
        assert!(endpoint_allowed("https://dept.example/events", false));
        assert!(!endpoint_allowed("http://dept.example/events", false));
        assert!(endpoint_allowed("http://127.0.0.1:9000/events", true));
        assert!(!endpoint_allowed("ftp://x", true));
    }
}
