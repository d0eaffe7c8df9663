//! Notification mail, durable: every in-app notice is written `pending` in the same
//! transaction as the case change that caused it (see `store::mail`), and this worker
//! mails it through the configured SMTP relay, so a crash between the commit and the
//! send loses nothing; the next gateway sends it. A refused or failed send is retried
//! with backoff (`BACKOFF_SECS`) until `mail_max_attempts`; a relay's permanent refusal
//! (5xx) or an unusable address is final. Sending never holds up or undoes the change.
//!
//! A notice whose account has no address, or any notice while no relay is configured,
//! becomes `none`. Several gateways may run the worker: claims are leased (with `FOR
//! UPDATE SKIP LOCKED` on PostgreSQL), so one notice is mailed by one of them. Time is
//! a parameter (`send_due(app, now)`), so tests walk the backoff in milliseconds.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::app::AppState;
use crate::config::Settings;
use crate::store::{MailOutcome, NoticeRow, QueuedMail};

/// The SMTP relay and the sender.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// Why one send failed, as recorded for operators: a kind, never the address or the
/// relay's own words (which may quote it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Trying again may work: the relay said "later" (4xx), or did not answer.
    Transient(String),
    /// Trying again will not help: the relay refused for good (5xx), or the address or
    /// message is unusable.
    Permanent(String),
}

impl SendError {
    fn kind(&self) -> &str {
        match self {
            SendError::Transient(k) | SendError::Permanent(k) => k,
        }
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let code = e.status().map(|c| c.to_string()).unwrap_or_default();
    if e.is_permanent() {
        SendError::Permanent(format!("rejected {code}"))
    } else if e.is_transient() {
        SendError::Transient(format!("refused {code}"))
    } else if e.is_timeout() {
        SendError::Transient("timeout".into())
    } else if e.is_tls() {
        SendError::Transient("tls".into())
    } else {
        SendError::Transient("connection".into())
    }
}

/// The longest one send may take, so a lease always outlives the send it covers.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a claimed notice is reserved for one worker.
const LEASE: chrono::Duration = chrono::Duration::seconds(120);

/// Notices claimed (and sent concurrently) per round.
const BATCH: i64 = 8;

impl Mailer {
    /// A mailer when `smtp_url` is configured.
    pub fn from_settings(s: &Settings) -> anyhow::Result<Option<Mailer>> {
        let Some(url) = &s.mail.smtp_url else {
            return Ok(None);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|e| anyhow::anyhow!("smtp_url: {e}"))?
            .timeout(Some(Duration::from_secs(10)))
            .build();
        let from = s
            .mail
            .mail_from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail_from: {e}"))?;
        Ok(Some(Mailer { transport, from }))
    }

    /// Sends one bilingual message.
    pub async fn send(&self, to: &str, notice: &NoticeRow) -> Result<(), SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| SendError::Permanent("bad address".into()))?;
        let body = format!(
            "{}\n\n{}\n\n—— 呼伦贝尔市一网通办 / Hulunbuir One-Window Services\n（本邮件由系统自动发送，请勿回复。This message was sent automatically; please do not reply.）\n",
            notice.body_zh, notice.body_en
        );
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("{} / {}", notice.title_zh, notice.title_en))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|_| SendError::Permanent("bad message".into()))?;
        match tokio::time::timeout(SEND_TIMEOUT, self.transport.send(msg)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(SendError::Transient("timeout".into())),
        }
    }
}

/// Waits after failed attempts 1, 2, … (1 min, 5 min, 15 min, 1 h, 3 h, 6 h, then 12 h
/// each): a relay that is down for a morning still gets the mail out the same day.
pub const BACKOFF_SECS: [i64; 7] = [60, 300, 900, 3_600, 10_800, 21_600, 43_200];

/// When to try again after `attempts` failed attempts, or `None` when that was the last
/// one allowed.
pub fn retry_at(attempts: i32, max_attempts: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if attempts < 1 || attempts as i64 >= i64::from(max_attempts) {
        return None;
    }
    let i = (attempts as usize - 1).min(BACKOFF_SECS.len() - 1);
    Some(now + chrono::Duration::seconds(BACKOFF_SECS[i]))
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Accepted by the relay.
    pub sent: usize,
    /// Failed, to be retried.
    pub retrying: usize,
    /// Failed for good.
    pub failed: usize,
    /// Nothing to send (no address, or no relay).
    pub none: usize,
}

/// Mails every notice due at `now` (in leased batches), returning what happened.
pub async fn send_due(app: &AppState, now: DateTime<Utc>) -> anyhow::Result<Report> {
    let mut report = Report::default();
    loop {
        let batch = app.store.claim_mail(now, now + LEASE, BATCH).await?;
        if batch.is_empty() {
            return Ok(report);
        }
        let mut set = tokio::task::JoinSet::new();
        for m in batch {
            let app = app.clone();
            set.spawn(async move { attempt(&app, m, now).await });
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(MailOutcome::Sent)) => report.sent += 1,
                Ok(Ok(MailOutcome::RetryAt { .. })) => report.retrying += 1,
                Ok(Ok(MailOutcome::Failed { .. })) => report.failed += 1,
                Ok(Ok(MailOutcome::NoMail)) => report.none += 1,
                Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "mail bookkeeping failed"),
                Err(e) => tracing::warn!(error = %e, "mail task failed"),
            }
        }
    }
}

/// One notice: look up the address, send, record the outcome.
async fn attempt(app: &AppState, m: QueuedMail, now: DateTime<Utc>) -> anyhow::Result<MailOutcome> {
    let n = &m.notice;
    let address = match &app.mailer {
        Some(_) => app.store.account(n.account_id).await?.and_then(|a| a.email),
        None => None,
    };
    let (attempts, outcome) = match (&app.mailer, address) {
        (Some(mailer), Some(to)) => {
            let attempts = m.attempts + 1;
            let outcome = match mailer.send(&to, n).await {
                Ok(()) => MailOutcome::Sent,
                Err(e) => {
                    let error = e.kind().to_owned();
                    let again = match e {
                        SendError::Transient(_) => {
                            retry_at(attempts, app.settings.mail.mail_max_attempts, now)
                        }
                        SendError::Permanent(_) => None,
                    };
                    // The address is personal data: only the notice and the kind are logged.
                    tracing::warn!(notice = %n.id, attempts, error = %error, final = again.is_none(), "notification mail failed");
                    match again {
                        Some(at) => MailOutcome::RetryAt { at, error },
                        None => MailOutcome::Failed { error },
                    }
                }
            };
            (attempts, outcome)
        }
        _ => (m.attempts, MailOutcome::NoMail),
    };
    app.store.finish_mail(n.id, attempts, &outcome).await?;
    let kind = match outcome {
        MailOutcome::Sent => "sent",
        MailOutcome::RetryAt { .. } => "retry",
        MailOutcome::Failed { .. } => "failed",
        MailOutcome::NoMail => "none",
    };
    metrics::counter!("onewindow_mail_total", "outcome" => kind).increment(1);
    Ok(outcome)
}

/// The background loop: a pass every second until `stop` is cancelled.
pub async fn run(app: AppState, stop: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                if let Err(e) = send_due(&app, Utc::now()).await {
                    tracing::warn!(error = %format!("{e:#}"), "mail pass failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("time")
    }

    #[test]
    fn the_backoff_grows_then_stays_at_twelve_hours() {
        let waits: Vec<i64> = (1..=10)
            .map(|n| (retry_at(n, 11, t0()).expect("retried") - t0()).num_seconds())
            .collect();
        assert_eq!(
            waits,
            [
                60, 300, 900, 3_600, 10_800, 21_600, 43_200, 43_200, 43_200, 43_200
            ]
        );
    }

    #[test]
    fn the_last_allowed_attempt_is_final() {
        assert!(retry_at(7, 8, t0()).is_some());
        assert_eq!(retry_at(8, 8, t0()), None);
        assert_eq!(retry_at(9, 8, t0()), None);
        assert_eq!(retry_at(1, 1, t0()), None, "one attempt allowed: no retry");
        assert_eq!(
            retry_at(1, 2, t0()),
            Some(t0() + chrono::Duration::seconds(60))
        );
    }

    #[test]
    fn the_default_schedule_spans_about_a_day() {
        // 8 attempts: 7 waits, about 23 h 21 min from the first to the last.
        let total: i64 = (1..8)
            .map(|n| (retry_at(n, 8, t0()).expect("retried") - t0()).num_seconds())
            .sum();
        assert_eq!(total, 60 + 300 + 900 + 3_600 + 10_800 + 21_600 + 43_200);
        assert!((20 * 3600..26 * 3600).contains(&total));
    }
}
