//! Delivering one event to a department: one attempt of the push contract.
//!
//! [`prepare`] builds the request (the CloudEvents envelope of the case as it is now,
//! signed afresh: a new `webhook-timestamp`, the same `webhook-id`); [`send`] POSTs it;
//! [`judge`] (pure) turns the answer into the attempt's record and the event's next
//! state (delivered, retry at, dead); [`deliver`] records both and, on delivery, the
//! department's read of the application in the applicant's data-access trail.
//!
//! The loop that claims due events and runs attempts side by side is the exchange
//! worker's (`crate::exchange::worker`).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;

use super::Result;
use crate::exchange::envelope;
use crate::exchange::worker::{endpoint_allowed, next_after_failure};
use crate::state::AppState;
use crate::store::{AttemptOutcome, AttemptRow, CaseKey, Delivery, FullCase};

/// How long a department has to answer one attempt.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// A signed request, ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The department's endpoint.
    pub endpoint: String,
    /// The event, as JSON bytes.
    pub body: Vec<u8>,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    pub headers: Vec<(&'static str, String)>,
}

/// Builds and signs the request for one event; why not, when it cannot be sent (no
/// endpoint, an endpoint configuration forbids, a case that is gone).
/// The case is `full`, read once by the caller ([`crate::store::Store::case_full`]).
pub fn prepare(
    app: &AppState,
    d: &Delivery,
    full: Option<&FullCase>,
) -> std::result::Result<Prepared, String> {
    let Some(endpoint) = d.endpoint.as_deref() else {
        return Err("the department has no push endpoint".into());
    };
    if !endpoint_allowed(endpoint, app.settings.exchange.exchange_allow_http) {
        return Err(
            "the endpoint is not https (plain http is not allowed by configuration)".into(),
        );
    }
    let full = full.ok_or_else(|| "the case no longer exists".to_owned())?;
    let event = envelope::of_full(app, d, full);
    let body = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
    let timestamp = Utc::now().timestamp();
    let headers = app
        .keys
        .with(|ring| ring.sign(&d.id.to_string(), timestamp, &body));
    Ok(Prepared {
        endpoint: endpoint.to_owned(),
        body,
        headers,
    })
}

/// POSTs a prepared request (no redirects: the client is built without them); the HTTP
/// status, or why there was none.
pub async fn send(client: &reqwest012::Client, p: Prepared) -> std::result::Result<u16, String> {
    let mut req = client
        .post(&p.endpoint)
        .header("content-type", "application/cloudevents+json")
        .timeout(SEND_TIMEOUT)
        .body(p.body);
    for (k, v) in p.headers {
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

/// The record of attempt `number` and the event's next state. A 2xx is delivered; any
/// other answer, or none, is retried on the schedule (counted from the last redelivery),
/// `jitter` spreading the retries of many events, until the schedule runs out. Pure.
pub fn judge(
    d: &Delivery,
    sent: &std::result::Result<u16, String>,
    now: DateTime<Utc>,
    latency_ms: i64,
    jitter: f64,
) -> (AttemptRow, AttemptOutcome) {
    judge_attempt(d.attempts, d.retry_from, sent, now, latency_ms, jitter)
}

/// [`judge`] for anything delivered on the same schedule (the regional platform's
/// reports too): `attempts` made so far, `retry_from` of them before the last redelivery.
pub fn judge_attempt(
    attempts: i32,
    retry_from: i32,
    sent: &std::result::Result<u16, String>,
    now: DateTime<Utc>,
    latency_ms: i64,
    jitter: f64,
) -> (AttemptRow, AttemptOutcome) {
    let number = attempts + 1;
    let (status, error) = match sent {
        Ok(s) if (200..300).contains(s) => (Some(*s), None),
        Ok(s) => (Some(*s), Some(format!("HTTP {s}"))),
        Err(e) => (None, Some(e.clone())),
    };
    let outcome = if error.is_none() {
        AttemptOutcome::Delivered
    } else {
        next_after_failure(number - retry_from, now, jitter)
    };
    let row = AttemptRow {
        attempt: number,
        at: now,
        status: status.map(i32::from),
        latency_ms,
        error,
    };
    (row, outcome)
}

/// Makes one attempt to deliver `d` at `now` and records it.
pub async fn deliver(app: &AppState, d: Delivery, now: DateTime<Utc>) -> Result<AttemptOutcome> {
    let started = Instant::now();
    // The case is read once, for the envelope and for the data-access record.
    let full = app.store.case_full(CaseKey::Id(d.case_id)).await;
    let sent = match &full {
        Ok(full) => match prepare(app, &d, full.as_ref()) {
            Ok(p) => send(&app.http, p).await,
            Err(why) => Err(why),
        },
        Err(e) => Err(format!("cannot build the event: {e}")),
    };
    let latency_ms = started.elapsed().as_millis() as i64;
    let jitter = rand::thread_rng().gen_range(-0.1..=0.1);
    let (row, outcome) = judge(&d, &sent, now, latency_ms, jitter);
    app.store.finish_attempt(d.id, &row, outcome).await?;
    if outcome == AttemptOutcome::Delivered
        && let Ok(Some(full)) = &full
        && let Err(e) = crate::sharing::audit::department_read(
            app,
            &full.case,
            &full.materials,
            &d.department,
            None,
        )
        .await
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
        tracing::warn!(event = %d.id, department = %d.department, attempts = row.attempt, "delivery dead-lettered");
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn delivery(attempts: i32, retry_from: i32) -> Delivery {
        Delivery {
            id: Uuid::now_v7(),
            case_id: Uuid::now_v7(),
            case_seq: 1,
            department: "D".into(),
            event_type: "cn.gov.onewindow.case.submitted.v1".into(),
            payload: json!({}),
            created_at: Utc::now(),
            state: "pending".into(),
            attempts,
            retry_from,
            next_attempt_at: None,
            last_status: None,
            last_error: None,
            delivered_at: None,
            endpoint: Some("https://dept.example/events".into()),
        }
    }

    #[test]
    fn a_2xx_delivers_and_anything_else_is_retried_until_the_schedule_ends() {
        let now = Utc::now();
        let (row, outcome) = judge(&delivery(0, 0), &Ok(204), now, 12, 0.0);
        assert_eq!(outcome, AttemptOutcome::Delivered);
        assert_eq!((row.attempt, row.status, row.error), (1, Some(204), None));

        let (row, outcome) = judge(&delivery(0, 0), &Ok(503), now, 12, 0.0);
        assert_eq!(
            outcome,
            AttemptOutcome::RetryAt(now + chrono::Duration::seconds(5))
        );
        assert_eq!(row.error.as_deref(), Some("HTTP 503"));

        let (row, outcome) = judge(
            &delivery(9, 0),
            &Err("no answer: timeout".into()),
            now,
            10_000,
            0.0,
        );
        assert_eq!(
            outcome,
            AttemptOutcome::Dead,
            "the tenth attempt is the last"
        );
        assert_eq!((row.attempt, row.status), (10, None));

        // after a redelivery the schedule starts again, the numbering does not
        let (row, outcome) = judge(&delivery(10, 10), &Ok(500), now, 1, 0.0);
        assert_eq!(row.attempt, 11);
        assert_eq!(
            outcome,
            AttemptOutcome::RetryAt(now + chrono::Duration::seconds(5))
        );
    }
}
