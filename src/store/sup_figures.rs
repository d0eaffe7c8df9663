//! See `super` for what this file holds.
//! Supervision: the assessment figures' aggregates over systems, the exchange and cases.
//! Every count is an SQL aggregate grouped by department (or service); the lists behind
//! one department's figures (its systems with their last successful exchange, its cases,
//! its reads, its latest progress report) are what the figures trace back to.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::db::{Exec, Q};
use super::{SqlStore, StoreResult};

/// The period of the figures: cases lodged and rated in `[from, to)`, concluded on
/// `[from_day, to_day)`, systems live if they exchanged in `[live_since, to)`, the
/// progress report of `report_month` or the latest before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Start (inclusive).
    pub from: DateTime<Utc>,
    /// End (exclusive); systems registered before it count.
    pub to: DateTime<Utc>,
    /// First day (inclusive), for conclusion dates.
    pub from_day: NaiveDate,
    /// Last day (exclusive).
    pub to_day: NaiveDate,
    /// A successful exchange since then makes a system live.
    pub live_since: DateTime<Utc>,
    /// `YYYY-MM`: the latest progress report about this month or an earlier one.
    pub report_month: String,
}

/// A department's systems over the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemCounts {
    /// USCC.
    pub department: String,
    /// Registered, not cleared or merged (before the window's end).
    pub registered: i64,
    /// Of those, with a token, push endpoint or data API.
    pub connected: i64,
    /// Of those, meant to connect.
    pub meant: i64,
    /// Of those, with a successful exchange since `live_since`.
    pub live: i64,
}

/// Case outcomes of one service of one department.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseCounts {
    /// USCC of the responsible department.
    pub department: String,
    /// Service code.
    pub service_code: String,
    /// Lodged in the window.
    pub cases: i64,
    /// Concluded in the window with a promised date.
    pub concluded_with_due: i64,
    /// Of those, on or before it.
    pub concluded_on_time: i64,
    /// Fields filled, over the cases lodged.
    pub fields_filled: i64,
    /// Of which prefilled.
    pub fields_prefilled: i64,
    /// Materials, over the cases lodged.
    pub materials: i64,
    /// Of which substituted.
    pub materials_substituted: i64,
    /// Rated in the window.
    pub rated: i64,
    /// Sum of those ratings.
    pub rating_sum: i64,
}

/// Reads of shared data in the window for one service and resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCount {
    /// The service the read was for (none: not for a service).
    pub service_code: Option<String>,
    /// The resource read.
    pub resource: String,
    /// How many reads.
    pub n: i64,
}

/// A department's progress report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// USCC.
    pub department: String,
    /// The month reported on.
    pub month: String,
    /// `[{task, percent, note}]`.
    pub tasks: Value,
    /// Submitted after the deadline.
    pub late: bool,
    /// When submitted.
    pub submitted_at: DateTime<Utc>,
}

/// Every aggregate the figures of a period need.
#[derive(Debug, Clone, Default)]
pub struct AssessmentData {
    /// Systems by department.
    pub systems: Vec<SystemCounts>,
    /// Case outcomes by department and service.
    pub cases: Vec<CaseCounts>,
    /// Reads by service and resource.
    pub reads: Vec<ReadCount>,
    /// The latest report of each department for the window's month.
    pub reports: Vec<ReportRow>,
}

/// One system behind a department's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemTrace {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: String,
    /// Counted (registered before the window's end and not cleared or merged by then).
    pub counted: bool,
    /// Connected (a token, push endpoint or data API).
    pub connected: bool,
    /// Meant to connect.
    pub meant: bool,
    /// Last use of its token before the window's end.
    pub token_ok_at: Option<DateTime<Utc>>,
    /// Last 2xx delivery to its push endpoint before the window's end.
    pub push_ok_at: Option<DateTime<Utc>>,
}

/// One case behind a department's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseTrace {
    /// Case number.
    pub case_no: String,
    /// Service code.
    pub service_code: String,
    /// Status code.
    pub status: String,
    /// Lodged.
    pub created_at: DateTime<Utc>,
    /// Promised date.
    pub due_on: Option<NaiveDate>,
    /// Concluded on.
    pub concluded_on: Option<NaiveDate>,
    /// 1–5.
    pub rating: Option<i64>,
    /// Fields filled.
    pub fields_filled: i64,
    /// Of which prefilled.
    pub fields_prefilled: i64,
    /// Materials.
    pub materials: i64,
    /// Of which substituted.
    pub materials_substituted: i64,
}

/// The records behind one department's figures.
#[derive(Debug, Clone, Default)]
pub struct DepartmentTrace {
    /// Every system the department registered (counted or not, with why).
    pub systems: Vec<SystemTrace>,
    /// Cases lodged, concluded or rated in the window, newest first (at most `limit`).
    pub cases: Vec<CaseTrace>,
    /// Reads for the department's services, by service and resource.
    pub reads: Vec<ReadCount>,
    /// The progress report counted.
    pub report: Option<ReportRow>,
}

/// Supervision storage; see the file's doc.
#[async_trait]
pub trait SupervisionFigureStore: Send + Sync {
    /// The aggregates of every department over a window.
    async fn assessment_data(&self, w: &Window) -> StoreResult<AssessmentData>;

    /// The records behind one department's figures; `services` are the department's
    /// service codes (for its reads), `limit` caps the cases listed.
    async fn department_trace(
        &self,
        department: &str,
        services: &[String],
        w: &Window,
        limit: i64,
    ) -> StoreResult<DepartmentTrace>;
}

/// A system counts at the window's end (`$1`) if it was registered before it and was not
/// cleared or merged by then (a decision after the end leaves it counted for that period).
/// Macros rather than constants, so that `concat!` makes each statement one static text.
macro_rules! in_scope {
    () => {
        "s.created_at < $1 AND (s.status NOT IN ('cleared', 'merged') \
         OR EXISTS (SELECT 1 FROM system_decisions d WHERE d.system_id = s.id \
         AND d.decision IN ('clear', 'merge') AND d.decided_at >= $1))"
    };
}

/// Connected: any of the three ways in.
macro_rules! connected {
    () => {
        "(s.token_id IS NOT NULL OR COALESCE(s.push_endpoint, '') <> '' \
         OR COALESCE(s.data_api, '') <> '')"
    };
}

/// A successful exchange in `[$2, $1)`: its token was used, or a delivery to its push
/// endpoint (the department's configured endpoint) was answered 2xx.
macro_rules! live {
    () => {
        "(EXISTS (SELECT 1 FROM token_usage u WHERE u.token_id = s.token_id \
         AND u.last_ok_at >= $2 AND u.last_ok_at < $1) \
         OR EXISTS (SELECT 1 FROM outbox o JOIN department_endpoints e ON e.department = o.department \
         JOIN delivery_attempts a ON a.event_id = o.id \
         WHERE o.department = s.department AND e.endpoint = s.push_endpoint \
         AND a.status >= 200 AND a.status < 300 AND a.at >= $2 AND a.at < $1))"
    };
}

fn read_report(r: &super::db::Row) -> StoreResult<ReportRow> {
    Ok(ReportRow {
        department: r.get("department")?,
        month: r.get("month")?,
        tasks: r.get("tasks")?,
        late: r.get::<i64>("late")? != 0,
        submitted_at: r.get("submitted_at")?,
    })
}

#[async_trait]
impl SupervisionFigureStore for SqlStore {
    async fn assessment_data(&self, w: &Window) -> StoreResult<AssessmentData> {
        // CAST: PostgreSQL sums to NUMERIC and CASE answers INTEGER.
        let systems_sql = concat!(
            "SELECT s.department, COUNT(*) AS registered, CAST(SUM(CASE WHEN ",
            connected!(),
            " THEN 1 ELSE 0 END) AS BIGINT) AS connected, \
             CAST(SUM(CASE WHEN s.meant_to_connect THEN 1 ELSE 0 END) AS BIGINT) AS meant, \
             CAST(SUM(CASE WHEN s.meant_to_connect AND ",
            live!(),
            " THEN 1 ELSE 0 END) AS BIGINT) AS live FROM info_systems s WHERE ",
            in_scope!(),
            " GROUP BY s.department ORDER BY s.department"
        );
        let systems = self
            .db
            .fetch_all_with(Q::new(systems_sql).bind(w.to).bind(w.live_since), |r| {
                Ok(SystemCounts {
                    department: r.get("department")?,
                    registered: r.get("registered")?,
                    connected: r.get("connected")?,
                    meant: r.get("meant")?,
                    live: r.get("live")?,
                })
            })
            .await?;
        let cases = self
            .db
            .fetch_all_with(
                Q::new(
                    "SELECT c.department, c.service_code, \
                     CAST(SUM(CASE WHEN c.created_at >= $1 AND c.created_at < $2 THEN 1 ELSE 0 END) AS BIGINT) AS cases, \
                     CAST(SUM(CASE WHEN c.created_at >= $1 AND c.created_at < $2 THEN c.fields_filled ELSE 0 END) AS BIGINT) AS fields_filled, \
                     CAST(SUM(CASE WHEN c.created_at >= $1 AND c.created_at < $2 THEN c.fields_prefilled ELSE 0 END) AS BIGINT) AS fields_prefilled, \
                     CAST(SUM(CASE WHEN c.created_at >= $1 AND c.created_at < $2 THEN COALESCE(m.n, 0) ELSE 0 END) AS BIGINT) AS materials, \
                     CAST(SUM(CASE WHEN c.created_at >= $1 AND c.created_at < $2 THEN COALESCE(m.s, 0) ELSE 0 END) AS BIGINT) AS substituted, \
                     CAST(SUM(CASE WHEN c.concluded_on >= $3 AND c.concluded_on < $4 AND c.due_on IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS with_due, \
                     CAST(SUM(CASE WHEN c.concluded_on >= $3 AND c.concluded_on < $4 AND c.due_on IS NOT NULL AND c.concluded_on <= c.due_on THEN 1 ELSE 0 END) AS BIGINT) AS on_time, \
                     CAST(SUM(CASE WHEN c.rating IS NOT NULL AND c.rated_at >= $1 AND c.rated_at < $2 THEN 1 ELSE 0 END) AS BIGINT) AS rated, \
                     CAST(SUM(CASE WHEN c.rating IS NOT NULL AND c.rated_at >= $1 AND c.rated_at < $2 THEN c.rating ELSE 0 END) AS BIGINT) AS rating_sum \
                     FROM cases c LEFT JOIN ( \
                       SELECT case_id, COUNT(*) AS n, SUM(CASE WHEN substituted THEN 1 ELSE 0 END) AS s \
                       FROM case_materials GROUP BY case_id) m ON m.case_id = c.id \
                     WHERE (c.created_at >= $1 AND c.created_at < $2) \
                        OR (c.concluded_on >= $3 AND c.concluded_on < $4) \
                        OR (c.rated_at >= $1 AND c.rated_at < $2) \
                     GROUP BY c.department, c.service_code ORDER BY c.department, c.service_code",
                )
                .bind(w.from)
                .bind(w.to)
                .bind(w.from_day)
                .bind(w.to_day),
                |r| {
                    Ok(CaseCounts {
                        department: r.get("department")?,
                        service_code: r.get("service_code")?,
                        cases: r.get("cases")?,
                        concluded_with_due: r.get("with_due")?,
                        concluded_on_time: r.get("on_time")?,
                        fields_filled: r.get("fields_filled")?,
                        fields_prefilled: r.get("fields_prefilled")?,
                        materials: r.get("materials")?,
                        materials_substituted: r.get("substituted")?,
                        rated: r.get("rated")?,
                        rating_sum: r.get("rating_sum")?,
                    })
                },
            )
            .await?;
        let reads = self
            .db
            .fetch_all_with(
                Q::new(
                    "SELECT service_code, resource, COUNT(*) AS n FROM data_access \
                     WHERE at >= $1 AND at < $2 GROUP BY service_code, resource \
                     ORDER BY service_code, resource",
                )
                .bind(w.from)
                .bind(w.to),
                read_count,
            )
            .await?;
        let reports = self
            .db
            .fetch_all_with(
                Q::new(
                    "SELECT p.department, p.month, p.tasks, CAST(CASE WHEN p.late THEN 1 ELSE 0 END AS BIGINT) AS late, p.submitted_at \
                     FROM progress_reports p WHERE p.month = (SELECT MAX(q.month) FROM progress_reports q \
                     WHERE q.department = p.department AND q.month <= $1) \
                     ORDER BY p.department",
                )
                .bind(&w.report_month),
                read_report,
            )
            .await?;
        Ok(AssessmentData {
            systems,
            cases,
            reads,
            reports,
        })
    }

    async fn department_trace(
        &self,
        department: &str,
        services: &[String],
        w: &Window,
        limit: i64,
    ) -> StoreResult<DepartmentTrace> {
        let systems_sql = concat!(
            "SELECT s.id, s.name, s.status, CAST(CASE WHEN ",
            in_scope!(),
            " THEN 1 ELSE 0 END AS BIGINT) AS counted, CAST(CASE WHEN ",
            connected!(),
            " THEN 1 ELSE 0 END AS BIGINT) AS connected, \
             CAST(CASE WHEN s.meant_to_connect THEN 1 ELSE 0 END AS BIGINT) AS meant, \
             (SELECT MAX(u.last_ok_at) FROM token_usage u WHERE u.token_id = s.token_id \
               AND u.last_ok_at < $1) AS token_ok_at, \
             (SELECT MAX(a.at) FROM outbox o JOIN department_endpoints e ON e.department = o.department \
               JOIN delivery_attempts a ON a.event_id = o.id \
               WHERE o.department = s.department AND e.endpoint = s.push_endpoint \
               AND a.status >= 200 AND a.status < 300 AND a.at < $1) AS push_ok_at \
             FROM info_systems s WHERE s.department = $2 ORDER BY s.created_at, s.name"
        );
        let systems = self
            .db
            .fetch_all_with(Q::new(systems_sql).bind(w.to).bind(department), |r| {
                Ok(SystemTrace {
                    id: r.get("id")?,
                    name: r.get("name")?,
                    status: r.get("status")?,
                    counted: r.get::<i64>("counted")? != 0,
                    connected: r.get::<i64>("connected")? != 0,
                    meant: r.get::<i64>("meant")? != 0,
                    token_ok_at: r.get("token_ok_at")?,
                    push_ok_at: r.get("push_ok_at")?,
                })
            })
            .await?;
        let cases = self
            .db
            .fetch_all_with(
                Q::new(
                    "SELECT c.case_no, c.service_code, c.status, c.created_at, c.due_on, c.concluded_on, \
                     CAST(c.rating AS BIGINT) AS rating, CAST(c.fields_filled AS BIGINT) AS fields_filled, \
                     CAST(c.fields_prefilled AS BIGINT) AS fields_prefilled, \
                     CAST(COALESCE(m.n, 0) AS BIGINT) AS materials, CAST(COALESCE(m.s, 0) AS BIGINT) AS substituted \
                     FROM cases c LEFT JOIN ( \
                       SELECT case_id, COUNT(*) AS n, SUM(CASE WHEN substituted THEN 1 ELSE 0 END) AS s \
                       FROM case_materials GROUP BY case_id) m ON m.case_id = c.id \
                     WHERE c.department = $1 AND ((c.created_at >= $2 AND c.created_at < $3) \
                        OR (c.concluded_on >= $4 AND c.concluded_on < $5) \
                        OR (c.rated_at >= $2 AND c.rated_at < $3)) \
                     ORDER BY c.created_at DESC LIMIT $6",
                )
                .bind(department)
                .bind(w.from)
                .bind(w.to)
                .bind(w.from_day)
                .bind(w.to_day)
                .bind(limit),
                |r| {
                    Ok(CaseTrace {
                        case_no: r.get("case_no")?,
                        service_code: r.get("service_code")?,
                        status: r.get("status")?,
                        created_at: r.get("created_at")?,
                        due_on: r.get("due_on")?,
                        concluded_on: r.get("concluded_on")?,
                        rating: r.get("rating")?,
                        fields_filled: r.get("fields_filled")?,
                        fields_prefilled: r.get("fields_prefilled")?,
                        materials: r.get("materials")?,
                        materials_substituted: r.get("substituted")?,
                    })
                },
            )
            .await?;
        let reads = if services.is_empty() {
            Vec::new()
        } else {
            self.db
                .fetch_all_with(
                    Q::new(
                        "SELECT service_code, resource, COUNT(*) AS n FROM data_access \
                         WHERE at >= $1 AND at < $2 AND service_code IN (",
                    )
                    .bind(w.from)
                    .bind(w.to)
                    .push_list(services.iter())
                    .push(") GROUP BY service_code, resource ORDER BY service_code, resource"),
                    read_count,
                )
                .await?
        };
        let report = self
            .db
            .fetch_optional_with(
                Q::new(
                    "SELECT department, month, tasks, CAST(CASE WHEN late THEN 1 ELSE 0 END AS BIGINT) AS late, submitted_at \
                     FROM progress_reports WHERE department = $1 AND month <= $2 \
                     ORDER BY month DESC LIMIT 1",
                )
                .bind(department)
                .bind(&w.report_month),
                read_report,
            )
            .await?;
        Ok(DepartmentTrace {
            systems,
            cases,
            reads,
            report,
        })
    }
}

fn read_count(r: &super::db::Row) -> StoreResult<ReadCount> {
    Ok(ReadCount {
        service_code: r.get("service_code")?,
        resource: r.get("resource")?,
        n: r.get("n")?,
    })
}
