//! Push delivery: claims due events, signs and POSTs them, records every attempt, and
//! retries on the published schedule with jitter until the department answers 2xx or the
//! schedule runs out (dead letter, redeliverable by operators).
//!
//! Time is a parameter (`deliver_due(app, now)`), so tests move it forward instead of
//! waiting hours; the background loop passes the real clock.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;

use super::envelope;
use crate::app::AppState;
use crate::store::{AttemptOutcome, AttemptRow, Delivery};

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
        set.spawn(async move { attempt(&app, d, now).await });
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

async fn attempt(
    app: &AppState,
    d: Delivery,
    now: DateTime<Utc>,
) -> anyhow::Result<AttemptOutcome> {
    let number = d.attempts + 1;
    let started = Instant::now();
    let result = send(app, &d).await;
    let latency_ms = started.elapsed().as_millis() as i64;
    let (status, error) = match &result {
        Ok(s) if (200..300).contains(s) => (Some(*s), None),
        Ok(s) => (Some(*s), Some(format!("HTTP {s}"))),
        Err(e) => (None, Some(e.clone())),
    };
    let outcome = if error.is_none() {
        AttemptOutcome::Delivered
    } else {
        let jitter = rand::thread_rng().gen_range(-0.1..=0.1);
        next_after_failure(number - d.retry_from, now, jitter)
    };
    let row = AttemptRow {
        attempt: number,
        at: now,
        status: status.map(i32::from),
        latency_ms,
        error: error.clone(),
    };
    app.store.finish_attempt(d.id, &row, outcome).await?;
    if outcome == AttemptOutcome::Delivered
        && let Some(c) = app.store.case_by_id(d.case_id).await?
        && let Err(e) = crate::sharing::audit::department_read(app, &c, &d.department, None).await
    {
        tracing::error!(event = %d.id, error = %e, "delivered, but the data-access record could not be written");
    }
    let kind = match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::RetryAt(_) => "retry",
        AttemptOutcome::Dead => "dead",
    };
    metrics::counter!("onewindow_deliveries_total", "outcome" => kind).increment(1);
    if outcome == AttemptOutcome::Dead {
        tracing::warn!(event = %d.id, department = %d.department, attempts = number, "delivery dead-lettered");
    }
    Ok(outcome)
}

/// Sends one event; the HTTP status, or why there was none.
async fn send(app: &AppState, d: &Delivery) -> Result<u16, String> {
    let Some(endpoint) = d.endpoint.as_deref() else {
        return Err("the department has no push endpoint".into());
    };
    if !endpoint_allowed(endpoint, app.settings.exchange.exchange_allow_http) {
        return Err(
            "the endpoint is not https (plain http is not allowed by configuration)".into(),
        );
    }
    let event = envelope::build(app, d)
        .await
        .map_err(|e| format!("cannot build the event: {e}"))?
        .ok_or_else(|| "the case no longer exists".to_owned())?;
    let body = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
    // Signed afresh for every attempt: a new timestamp, the same webhook-id.
    let timestamp = Utc::now().timestamp();
    let headers = app
        .keys
        .with(|ring| ring.sign(&d.id.to_string(), timestamp, &body));
    let mut req = app
        .http
        .post(endpoint)
        .header("content-type", "application/cloudevents+json")
        .timeout(Duration::from_secs(10))
        .body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(resp) => Ok(resp.status().as_u16()),
        Err(e) => Err(format!(
            "no answer: {}",
            if e.is_timeout() {
                "timeout".to_owned()
            } else if e.is_connect() {
                "cannot connect".to_owned()
            } else {
                e.to_string()
            }
        )),
    }
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
