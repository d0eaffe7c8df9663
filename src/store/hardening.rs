//! Issue 13's durable parts (items 7, 9, 10): imported holiday-calendar years and the
//! cases whose due dates are provisional until they arrive; sessions kept in the database
//! when no Redis is configured; and retention (the files of closed cases' materials).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::db::{Exec, Q, Row};
use super::drafts::UploadRow;
use super::{SqlStore, StoreResult, row_aad};

/// What counting a provisional due date again needs of a case (no personal data).
#[derive(Debug, Clone)]
pub struct ProvisionalCase {
    /// Case id.
    pub id: Uuid,
    /// Optimistic concurrency version.
    pub version: i64,
    /// The service (for its limits).
    pub service_code: String,
    /// Acceptance date.
    pub accepted_on: Option<NaiveDate>,
    /// Clock pauses, as stored on the case.
    pub pauses: Value,
    /// The promised due date as counted before.
    pub due_on: Option<NaiveDate>,
    /// The legal due date as counted before.
    pub legal_due_on: Option<NaiveDate>,
    /// The case's status (a history entry keeps it).
    pub status: String,
}

/// Calendar years, provisional due dates, database sessions and retention.
#[async_trait]
pub trait HardeningStore: Send + Sync {
    /// Imported calendar years: (year, calendar file holding only that year).
    async fn calendar_years(&self) -> StoreResult<Vec<(i32, String)>>;

    /// Stores imported years, replacing a year imported before.
    async fn save_calendar_years(
        &self,
        years: &[(i32, String)],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Cases whose due dates are provisional.
    async fn provisional_cases(&self) -> StoreResult<Vec<ProvisionalCase>>;

    /// Sets a case's due dates counted again, with `history` appended to the case's
    /// history in the same transaction (its seq assigned) when given; false when the case
    /// changed meanwhile (its version moved), so the caller leaves it for the next pass.
    async fn set_due_dates(
        &self,
        id: Uuid,
        version: i64,
        due_on: Option<NaiveDate>,
        legal_due_on: Option<NaiveDate>,
        provisional: bool,
        history: Option<&super::EventRow>,
    ) -> StoreResult<bool>;

    /// A live session's value by key (expired ones are not answered).
    async fn session_get(&self, key: &str, now: i64) -> StoreResult<Option<String>>;

    /// Stores a session value until `expires_at` (unix seconds).
    async fn session_put(&self, key: &str, value: &str, expires_at: i64) -> StoreResult<()>;

    /// Removes a session; whether it existed.
    async fn session_delete(&self, key: &str) -> StoreResult<bool>;

    /// Removes expired sessions; how many.
    async fn purge_expired_sessions(&self, now: i64) -> StoreResult<u64>;

    /// Marks the files of materials of cases closed (terminal) before `before` as
    /// removed and answers the uploads marked, so the caller deletes their files. At most
    /// `limit` per call.
    async fn purge_closed_case_materials(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<UploadRow>>;

    /// When an upload's file was removed by retention, if it was.
    async fn upload_purged_at(&self, id: Uuid) -> StoreResult<Option<DateTime<Utc>>>;
}

/// Marks the files of closed (terminal) cases' materials as removed: $1 now, $2 closed
/// before, $3 at most this many.
const PURGE_SQL: &str = concat!(
    "UPDATE uploads SET purged_at = $1 WHERE id IN (",
    "SELECT u.id FROM uploads u JOIN cases c ON c.id = u.case_id ",
    "WHERE u.purged_at IS NULL AND c.updated_at < $2 AND c.status IN ",
    "('not_accepted', 'approved', 'rejected', 'withdrawn')",
    " ORDER BY u.id LIMIT $3) RETURNING *"
);

#[async_trait]
impl HardeningStore for SqlStore {
    async fn calendar_years(&self) -> StoreResult<Vec<(i32, String)>> {
        let q = Q::new("SELECT year, data FROM calendar_years ORDER BY year");
        self.db
            .fetch_all_with(q, |r| Ok((r.get::<i32>("year")?, r.get::<String>("data")?)))
            .await
    }

    async fn save_calendar_years(
        &self,
        years: &[(i32, String)],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        for (year, data) in years {
            let q = Q::new(
                "INSERT INTO calendar_years (year, data, imported_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (year) DO UPDATE SET data = excluded.data, \
                 imported_at = excluded.imported_at",
            )
            .bind(*year)
            .bind(data)
            .bind(now);
            tx.execute(q).await?;
        }
        tx.commit().await
    }

    async fn provisional_cases(&self) -> StoreResult<Vec<ProvisionalCase>> {
        let q = Q::new(
            "SELECT id, version, service_code, accepted_on, pauses, due_on, legal_due_on, \
             status FROM cases WHERE due_provisional = $1 ORDER BY id",
        )
        .bind(true);
        self.db.fetch_all_with(q, provisional_from_row).await
    }

    async fn set_due_dates(
        &self,
        id: Uuid,
        version: i64,
        due_on: Option<NaiveDate>,
        legal_due_on: Option<NaiveDate>,
        provisional: bool,
        history: Option<&super::EventRow>,
    ) -> StoreResult<bool> {
        let mut tx = self.db.begin().await?;
        let q = Q::new(
            "UPDATE cases SET due_on = $1, legal_due_on = $2, due_provisional = $3, \
             version = version + 1 WHERE id = $4 AND version = $5",
        )
        .bind(due_on)
        .bind(legal_due_on)
        .bind(provisional)
        .bind(id)
        .bind(version);
        if tx.execute(q).await? != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(e) = history {
            let q = Q::new(
                "SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM case_events WHERE case_id = $1",
            )
            .bind(id);
            let seq = tx.fetch_one(q).await?.get::<i32>("seq")?;
            tx.execute(super::cases::event_insert(id, seq, e)).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn session_get(&self, key: &str, now: i64) -> StoreResult<Option<String>> {
        let q = Q::new("SELECT value FROM sessions WHERE key = $1 AND expires_at > $2")
            .bind(key)
            .bind(now);
        let Some(row) = self.db.fetch_optional(q).await? else {
            return Ok(None);
        };
        self.seal
            .open_text(&session_aad(key), Some(row.get::<String>("value")?))
    }

    async fn session_put(&self, key: &str, value: &str, expires_at: i64) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO sessions (key, value, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
             expires_at = excluded.expires_at",
        )
        .bind(key)
        .bind(self.seal.text(&session_aad(key), Some(value)))
        .bind(expires_at);
        self.db.execute(q).await?;
        Ok(())
    }

    async fn session_delete(&self, key: &str) -> StoreResult<bool> {
        let q = Q::new("DELETE FROM sessions WHERE key = $1").bind(key);
        Ok(self.db.execute(q).await? == 1)
    }

    async fn purge_expired_sessions(&self, now: i64) -> StoreResult<u64> {
        let q = Q::new("DELETE FROM sessions WHERE expires_at <= $1").bind(now);
        self.db.execute(q).await
    }

    async fn purge_closed_case_materials(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<UploadRow>> {
        let q = Q::new(PURGE_SQL).bind(now).bind(before).bind(limit);
        self.db
            .fetch_all_with(q, super::drafts::upload_from_row)
            .await
    }

    async fn upload_purged_at(&self, id: Uuid) -> StoreResult<Option<DateTime<Utc>>> {
        let q = Q::new("SELECT purged_at FROM uploads WHERE id = $1").bind(id);
        match self.db.fetch_optional(q).await? {
            Some(r) => r.get("purged_at"),
            None => Ok(None),
        }
    }
}

fn provisional_from_row(r: &Row) -> StoreResult<ProvisionalCase> {
    Ok(ProvisionalCase {
        id: r.get("id")?,
        version: r.get("version")?,
        service_code: r.get("service_code")?,
        accepted_on: r.get("accepted_on")?,
        pauses: r.get("pauses")?,
        due_on: r.get("due_on")?,
        legal_due_on: r.get("legal_due_on")?,
        status: r.get("status")?,
    })
}

/// A session value is sealed bound to its key.
fn session_aad(key: &str) -> String {
    row_aad("sessions", "value", key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn terminal_statuses_match_the_domain() {
        use crate::domain::case::CaseStatus;
        let listed: Vec<&str> = CaseStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(CaseStatus::code)
            .collect();
        for code in &listed {
            assert!(super::PURGE_SQL.contains(&format!("'{code}'")), "{code}");
        }
        assert_eq!(super::PURGE_SQL.matches('\'').count(), listed.len() * 2);
    }
}
