//! The mail queue over the notices: every notice is written `pending` in its case's
//! transaction, so a mail is never lost to a crash between the commit and the send; the
//! mail worker leases due notices, sends, and records the outcome here.
//!
//! `email_state` is `pending` (to send, perhaps after a failed attempt), `sent`,
//! `failed` (refused for good, or out of attempts) or `none` (no address, or no SMTP
//! relay). The recorded error is a kind (`refused 451`, `connection` …), never the
//! address or the relay's words, which may quote it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::db::{Claimed, Exec, Q, Row};
use super::{NoticeRow, SqlStore, StoreResult};

/// The mail states, in the order operators see them counted.
pub const MAIL_STATES: [&str; 4] = ["pending", "sent", "failed", "none"];

/// A notice to mail, leased to one worker.
#[derive(Debug, Clone)]
pub struct QueuedMail {
    /// The notice (recipient account, case, bilingual title and body).
    pub notice: NoticeRow,
    /// Attempts made so far.
    pub attempts: i32,
}

/// What became of one attempt (or of a notice that needs none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailOutcome {
    /// The relay accepted it.
    Sent,
    /// It failed; try again at this time.
    RetryAt {
        /// When the next attempt is due.
        at: DateTime<Utc>,
        /// The kind of failure.
        error: String,
    },
    /// It failed for the last time.
    Failed {
        /// The kind of failure.
        error: String,
    },
    /// Nothing to send: the account has no address, or no relay is configured.
    NoMail,
}

/// One notice's mail, as operators see it (no address, no text).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MailRow {
    /// The notice.
    pub id: Uuid,
    /// The case it is about.
    pub case_no: String,
    /// When the notice was written.
    pub created_at: DateTime<Utc>,
    /// `pending`, `sent`, `failed` or `none`.
    pub state: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (pending after a failure).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last failure's kind.
    pub last_error: Option<String>,
}

/// How many notices are in each mail state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MailCounts {
    /// Waiting to be sent (or retried).
    pub pending: i64,
    /// Accepted by the relay.
    pub sent: i64,
    /// Given up on.
    pub failed: i64,
    /// Nothing to send.
    pub none: i64,
}

/// The mail queue.
#[async_trait]
pub trait MailStore: Send + Sync {
    /// Leases up to `limit` pending notices due at `now` until `lease_until`, oldest
    /// first. On PostgreSQL concurrent workers claim with `FOR UPDATE SKIP LOCKED`, so
    /// no two gateways send one notice; a worker that dies leaves its lease to expire.
    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<QueuedMail>>;

    /// Records what became of a leased notice's mail (after `attempts` attempts in all)
    /// and releases the lease.
    async fn finish_mail(&self, id: Uuid, attempts: i32, outcome: &MailOutcome) -> StoreResult<()>;

    /// Notices' mail in one state (or any), newest first, at most `limit`.
    async fn mail(&self, state: Option<&str>, limit: i64) -> StoreResult<Vec<MailRow>>;

    /// How many notices are in each mail state.
    async fn mail_counts(&self) -> StoreResult<MailCounts>;
}

#[async_trait]
impl MailStore for SqlStore {
    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<QueuedMail>> {
        let q = Q::new(
            "UPDATE notifications SET email_lease_until = $1 WHERE id IN ( \
               SELECT n.id FROM notifications n WHERE n.email_state = 'pending' \
                 AND (n.email_next_at IS NULL OR n.email_next_at <= $2) \
                 AND (n.email_lease_until IS NULL OR n.email_lease_until < $2) \
               ORDER BY n.created_at, n.id LIMIT $3",
        )
        .push(self.db.skip_locked(Claimed::Notices))
        .push(
            ") RETURNING id, account_id, case_id, case_no, title_zh, title_en, body_zh, body_en, \
             created_at, read_at, email_attempts",
        )
        .bind(lease_until)
        .bind(now)
        .bind(limit);
        let mut queued = self
            .db
            .fetch_all_with(q, |r| {
                Ok(QueuedMail {
                    notice: super::cases::notice_from_row(r)?,
                    attempts: r.get("email_attempts")?,
                })
            })
            .await?;
        // `RETURNING` gives no order: oldest first, as claimed.
        queued.sort_by_key(|m| (m.notice.created_at, m.notice.id));
        Ok(queued)
    }

    async fn finish_mail(&self, id: Uuid, attempts: i32, outcome: &MailOutcome) -> StoreResult<()> {
        let (state, next, error) = match outcome {
            MailOutcome::Sent => ("sent", None, None),
            MailOutcome::RetryAt { at, error } => ("pending", Some(*at), Some(error.as_str())),
            MailOutcome::Failed { error } => ("failed", None, Some(error.as_str())),
            MailOutcome::NoMail => ("none", None, None),
        };
        let q = Q::new(
            "UPDATE notifications SET email_state = $1, email_attempts = $2, email_next_at = $3, \
             email_error = $4, email_lease_until = NULL WHERE id = $5",
        )
        .bind(state)
        .bind(attempts)
        .bind(next)
        .bind(error)
        .bind(id);
        self.db.execute(q).await?;
        Ok(())
    }

    async fn mail(&self, state: Option<&str>, limit: i64) -> StoreResult<Vec<MailRow>> {
        let mut q = Q::new(
            "SELECT id, case_no, created_at, email_state, email_attempts, email_next_at, \
             email_error FROM notifications",
        );
        if let Some(s) = state {
            q = q.push(" WHERE email_state = ").push_bind(s);
        }
        let q = q
            .push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(limit);
        self.db.fetch_all_with(q, mail_from_row).await
    }

    async fn mail_counts(&self) -> StoreResult<MailCounts> {
        let q = Q::new("SELECT email_state, COUNT(*) AS n FROM notifications GROUP BY email_state");
        let mut counts = MailCounts::default();
        for r in self.db.fetch_all(q).await? {
            let n: i64 = r.get("n")?;
            match r.get::<String>("email_state")?.as_str() {
                "pending" => counts.pending += n,
                "sent" => counts.sent += n,
                "failed" => counts.failed += n,
                _ => counts.none += n,
            }
        }
        Ok(counts)
    }
}

fn mail_from_row(r: &Row) -> StoreResult<MailRow> {
    Ok(MailRow {
        id: r.get("id")?,
        case_no: r.get("case_no")?,
        created_at: r.get("created_at")?,
        state: r.get("email_state")?,
        attempts: r.get("email_attempts")?,
        next_attempt_at: r.get("email_next_at")?,
        last_error: r.get("email_error")?,
    })
}
