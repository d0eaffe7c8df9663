//! See `super` for what this file holds.
//! Supervision: filings and their review, monthly progress reports (migration 0010).
//!
//! A filing's state changes only from the state its reader saw (`UPDATE … WHERE state =
//! $from`), in one transaction with the step it appends to `filing_events`, so two
//! reviewers acting at once cannot both move it, and its history never skips a step.
//! Information systems are read here only for what a filing needs of them (department,
//! name, status, hosting); the registry itself is `sup_systems.rs`'s.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::db::{Exec, Q, Row};
use super::{SqlStore, StoreResult};

/// What a filing needs to know of an information system.
#[derive(Debug, Clone, Serialize)]
pub struct SystemFacts {
    /// The system.
    pub id: Uuid,
    /// Its department (USCC).
    pub department: String,
    /// Its name.
    pub name: String,
    /// Registry status: `active`, `flagged`, `kept`, `cleared`, `merged`.
    pub status: String,
    /// `data_centre` or `own_room`.
    pub hosting: String,
}

/// A project filing (备案) as stored, with its system's name.
#[derive(Debug, Clone, Serialize)]
pub struct FilingRow {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// The filing department (USCC).
    pub department: String,
    /// The system it concerns, if any.
    pub system_id: Option<Uuid>,
    /// The system's name (read with the filing).
    pub system_name: Option<String>,
    /// `construction` or `om`.
    pub kind: String,
    /// Project title.
    pub title: String,
    /// Amount in yuan.
    pub amount: i64,
    /// Why the money is needed.
    pub justification: String,
    /// `submitted`, `returned`, `expert_review`, `approved`, `rejected`.
    pub state: String,
    /// Why it must be reviewed (`zombie`, `own_room`); empty for most.
    pub review_reasons: Vec<String>,
    /// Account id of the officer who filed it.
    pub created_by: String,
    /// Filed.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// One step in a filing's history.
#[derive(Debug, Clone, Serialize)]
pub struct FilingEventRow {
    /// The filing.
    pub filing_id: Uuid,
    /// 1, 2, … in order.
    pub seq: i32,
    /// `submitted`, `returned`, `resubmitted`, `expert_review`, `approved`, `rejected`.
    pub action: String,
    /// The reviewer's comments or the department's note.
    pub comment: String,
    /// Account id.
    pub actor: String,
    /// Name, as shown.
    pub actor_name: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Which filings to list.
#[derive(Debug, Clone, Default)]
pub struct FilingFilter {
    /// Only this department's.
    pub department: Option<String>,
    /// Only in these states (empty: any).
    pub states: Vec<String>,
    /// Only those marked for review.
    pub must_review: bool,
    /// At most this many, newest first.
    pub limit: i64,
}

/// A change of a filing's state, with the step recorded for it.
#[derive(Debug, Clone)]
pub struct FilingChange {
    /// The filing.
    pub id: Uuid,
    /// The state the change was decided from.
    pub from: String,
    /// The new state.
    pub to: String,
    /// A resubmission's new contents (title, amount, justification, system, reasons).
    pub contents: Option<FilingContents>,
    /// The step for the history (its `seq` is assigned here).
    pub event: FilingEventRow,
}

/// What a department can change when it resubmits.
#[derive(Debug, Clone)]
pub struct FilingContents {
    /// Title.
    pub title: String,
    /// Yuan.
    pub amount: i64,
    /// Justification.
    pub justification: String,
    /// System.
    pub system_id: Option<Uuid>,
    /// Review reasons, computed again for the new contents.
    pub review_reasons: Vec<String>,
}

/// A department's monthly progress report (每月进展).
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    /// Department (USCC).
    pub department: String,
    /// The month reported on, `YYYY-MM`.
    pub month: String,
    /// `[{task, percent, note}]`.
    pub tasks: Value,
    /// Account id of the officer.
    pub submitted_by: String,
    /// Their name.
    pub submitted_name: String,
    /// When (the latest revision).
    pub submitted_at: DateTime<Utc>,
    /// Submitted after the deadline.
    pub late: bool,
}

/// Filings and reports.
#[async_trait]
pub trait FilingStore: Send + Sync {
    /// One information system, for a filing.
    async fn system_facts(&self, id: Uuid) -> StoreResult<Option<SystemFacts>>;

    /// A department's systems (by name), for a filing form.
    async fn department_systems(&self, department: &str) -> StoreResult<Vec<SystemFacts>>;

    /// Every registered system of any department with this name, for the demo.
    async fn systems_named(&self, name: &str) -> StoreResult<Vec<SystemFacts>>;

    /// Stores a new filing with its first step.
    async fn insert_filing(&self, f: &FilingRow, first: &FilingEventRow) -> StoreResult<()>;

    /// One filing.
    async fn filing(&self, id: Uuid) -> StoreResult<Option<FilingRow>>;

    /// A filing's history, oldest first.
    async fn filing_events(&self, id: Uuid) -> StoreResult<Vec<FilingEventRow>>;

    /// Filings, newest first.
    async fn list_filings(&self, filter: &FilingFilter) -> StoreResult<Vec<FilingRow>>;

    /// Moves a filing from `from` to `to` and appends the step; false (and nothing
    /// changed) when the filing is no longer in `from`.
    async fn change_filing(&self, c: &FilingChange) -> StoreResult<bool>;

    /// Stores a first report for its month; false when there is one already.
    async fn insert_report(&self, r: &ReportRow) -> StoreResult<bool>;

    /// Replaces a report of its month (a revision); false when there is none.
    async fn replace_report(&self, r: &ReportRow) -> StoreResult<bool>;

    /// One department's report for a month.
    async fn report(&self, department: &str, month: &str) -> StoreResult<Option<ReportRow>>;

    /// Every report for a month.
    async fn reports_for_month(&self, month: &str) -> StoreResult<Vec<ReportRow>>;

    /// A department's reports, newest month first (at most `limit`).
    async fn department_reports(&self, department: &str, limit: i64)
    -> StoreResult<Vec<ReportRow>>;
}

const FILING_COLUMNS: &str = "SELECT f.id, f.department, f.system_id, s.name AS system_name, f.kind, f.title, \
     f.amount, f.justification, f.state, f.review_reasons, f.created_by, f.created_at, f.updated_at \
     FROM filings f LEFT JOIN info_systems s ON s.id = f.system_id";

fn filing_from_row(r: &Row) -> StoreResult<FilingRow> {
    let reasons: Value = r.get("review_reasons")?;
    Ok(FilingRow {
        id: r.get("id")?,
        department: r.get("department")?,
        system_id: r.get("system_id")?,
        system_name: r.get("system_name")?,
        kind: r.get("kind")?,
        title: r.get("title")?,
        amount: r.get("amount")?,
        justification: r.get("justification")?,
        state: r.get("state")?,
        review_reasons: reasons
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        created_by: r.get("created_by")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn event_from_row(r: &Row) -> StoreResult<FilingEventRow> {
    Ok(FilingEventRow {
        filing_id: r.get("filing_id")?,
        seq: r.get("seq")?,
        action: r.get("action")?,
        comment: r.get("comment")?,
        actor: r.get("actor")?,
        actor_name: r.get("actor_name")?,
        at: r.get("at")?,
    })
}

fn system_from_row(r: &Row) -> StoreResult<SystemFacts> {
    Ok(SystemFacts {
        id: r.get("id")?,
        department: r.get("department")?,
        name: r.get("name")?,
        status: r.get("status")?,
        hosting: r.get("hosting")?,
    })
}

fn report_from_row(r: &Row) -> StoreResult<ReportRow> {
    Ok(ReportRow {
        department: r.get("department")?,
        month: r.get("month")?,
        tasks: r.get("tasks")?,
        submitted_by: r.get("submitted_by")?,
        submitted_name: r.get("submitted_name")?,
        submitted_at: r.get("submitted_at")?,
        late: r.get("late")?,
    })
}

fn reasons_json(reasons: &[String]) -> Value {
    Value::from(reasons.to_vec())
}

/// Appends a step to a filing's history, numbered after the last one.
fn event_insert(e: &FilingEventRow) -> Q {
    Q::new(
        "INSERT INTO filing_events (filing_id, seq, action, comment, actor, actor_name, at) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6 FROM filing_events WHERE filing_id = $1",
    )
    .bind(e.filing_id)
    .bind(&e.action)
    .bind(&e.comment)
    .bind(&e.actor)
    .bind(&e.actor_name)
    .bind(e.at)
}

const SYSTEM_COLUMNS: &str = "SELECT id, department, name, status, hosting FROM info_systems";

#[async_trait]
impl FilingStore for SqlStore {
    async fn system_facts(&self, id: Uuid) -> StoreResult<Option<SystemFacts>> {
        let q = Q::new(SYSTEM_COLUMNS).push(" WHERE id = ").push_bind(id);
        self.db.fetch_optional_with(q, system_from_row).await
    }

    async fn department_systems(&self, department: &str) -> StoreResult<Vec<SystemFacts>> {
        let q = Q::new(SYSTEM_COLUMNS)
            .push(" WHERE department = ")
            .push_bind(department)
            .push(" ORDER BY name, id");
        self.db.fetch_all_with(q, system_from_row).await
    }

    async fn systems_named(&self, name: &str) -> StoreResult<Vec<SystemFacts>> {
        let q = Q::new(SYSTEM_COLUMNS)
            .push(" WHERE name = ")
            .push_bind(name)
            .push(" ORDER BY id");
        self.db.fetch_all_with(q, system_from_row).await
    }

    async fn insert_filing(&self, f: &FilingRow, first: &FilingEventRow) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        tx.execute(
            Q::new(
                "INSERT INTO filings (id, department, system_id, kind, title, amount, justification, \
                 state, review_reasons, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(f.id)
            .bind(&f.department)
            .bind(f.system_id)
            .bind(&f.kind)
            .bind(&f.title)
            .bind(f.amount)
            .bind(&f.justification)
            .bind(&f.state)
            .bind(reasons_json(&f.review_reasons))
            .bind(&f.created_by)
            .bind(f.created_at)
            .bind(f.updated_at),
        )
        .await?;
        tx.execute(event_insert(first)).await?;
        tx.commit().await
    }

    async fn filing(&self, id: Uuid) -> StoreResult<Option<FilingRow>> {
        let q = Q::new(FILING_COLUMNS).push(" WHERE f.id = ").push_bind(id);
        self.db.fetch_optional_with(q, filing_from_row).await
    }

    async fn filing_events(&self, id: Uuid) -> StoreResult<Vec<FilingEventRow>> {
        let q = Q::new("SELECT * FROM filing_events WHERE filing_id = $1 ORDER BY seq").bind(id);
        self.db.fetch_all_with(q, event_from_row).await
    }

    async fn list_filings(&self, filter: &FilingFilter) -> StoreResult<Vec<FilingRow>> {
        let mut q = Q::new(FILING_COLUMNS).push(" WHERE 1 = 1");
        if let Some(d) = &filter.department {
            q = q.push(" AND f.department = ").push_bind(d);
        }
        if !filter.states.is_empty() {
            q = q
                .push(" AND f.state IN (")
                .push_list(filter.states.iter())
                .push(")");
        }
        if filter.must_review {
            q = q.push(" AND f.review_reasons <> '[]'");
        }
        let limit = if filter.limit > 0 { filter.limit } else { 200 };
        q = q
            .push(" ORDER BY f.created_at DESC, f.id DESC LIMIT ")
            .push_bind(limit);
        self.db.fetch_all_with(q, filing_from_row).await
    }

    async fn change_filing(&self, c: &FilingChange) -> StoreResult<bool> {
        let mut tx = self.db.begin_write().await?;
        let q = match &c.contents {
            None => Q::new(
                "UPDATE filings SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4",
            )
            .bind(&c.to)
            .bind(c.event.at)
            .bind(c.id)
            .bind(&c.from),
            Some(n) => Q::new(
                "UPDATE filings SET state = $1, updated_at = $2, title = $5, amount = $6, \
                 justification = $7, system_id = $8, review_reasons = $9 \
                 WHERE id = $3 AND state = $4",
            )
            .bind(&c.to)
            .bind(c.event.at)
            .bind(c.id)
            .bind(&c.from)
            .bind(&n.title)
            .bind(n.amount)
            .bind(&n.justification)
            .bind(n.system_id)
            .bind(reasons_json(&n.review_reasons)),
        };
        if tx.execute(q).await? == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.execute(event_insert(&c.event)).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_report(&self, r: &ReportRow) -> StoreResult<bool> {
        let q = Q::new(
            "INSERT INTO progress_reports (department, month, tasks, submitted_by, submitted_name, \
             submitted_at, late) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (department, month) DO NOTHING",
        )
        .bind(&r.department)
        .bind(&r.month)
        .bind(&r.tasks)
        .bind(&r.submitted_by)
        .bind(&r.submitted_name)
        .bind(r.submitted_at)
        .bind(r.late);
        Ok(self.db.execute(q).await? == 1)
    }

    async fn replace_report(&self, r: &ReportRow) -> StoreResult<bool> {
        let q = Q::new(
            "UPDATE progress_reports SET tasks = $3, submitted_by = $4, submitted_name = $5, \
             submitted_at = $6, late = $7 WHERE department = $1 AND month = $2",
        )
        .bind(&r.department)
        .bind(&r.month)
        .bind(&r.tasks)
        .bind(&r.submitted_by)
        .bind(&r.submitted_name)
        .bind(r.submitted_at)
        .bind(r.late);
        Ok(self.db.execute(q).await? == 1)
    }

    async fn report(&self, department: &str, month: &str) -> StoreResult<Option<ReportRow>> {
        let q = Q::new("SELECT * FROM progress_reports WHERE department = $1 AND month = $2")
            .bind(department)
            .bind(month);
        self.db.fetch_optional_with(q, report_from_row).await
    }

    async fn reports_for_month(&self, month: &str) -> StoreResult<Vec<ReportRow>> {
        let q = Q::new("SELECT * FROM progress_reports WHERE month = $1 ORDER BY department")
            .bind(month);
        self.db.fetch_all_with(q, report_from_row).await
    }

    async fn department_reports(
        &self,
        department: &str,
        limit: i64,
    ) -> StoreResult<Vec<ReportRow>> {
        let q = Q::new(
            "SELECT * FROM progress_reports WHERE department = $1 ORDER BY month DESC LIMIT $2",
        )
        .bind(department)
        .bind(limit);
        self.db.fetch_all_with(q, report_from_row).await
    }
}
