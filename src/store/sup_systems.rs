//! See `super` for what this file holds.
//! Supervision: information systems, zombie decisions, self-inspections, token usage (migration 0010).
//!
//! The activity a zombie check needs comes from the exchange's own tables: the
//! department API's use per token and day (`token_usage`, written by one upsert where a
//! token authenticates), delivery attempts to the department's push endpoint, and reads
//! of the department's shared resources (`data_access`). Monthly volumes are counted by
//! SQL over month boundaries the caller binds, so the same statement runs on both
//! backends.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::db::{Exec, Q, Row};
use super::{SqlStore, StoreError, StoreResult};

/// A registered information system (政务信息系统), as the self-inspection lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct InfoSystem {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// Owning department (USCC).
    pub department: String,
    /// Name.
    pub name: String,
    /// What it does (功能).
    pub function: String,
    /// Who uses it and where (使用范围).
    pub users_scope: String,
    /// `daily` | `weekly` | `monthly` | `rarely`.
    pub frequency: String,
    /// Approving department (审批部门).
    pub approved_by: String,
    /// Approval date.
    pub approved_on: Option<NaiveDate>,
    /// Funding source.
    pub funding: String,
    /// Build cost in yuan.
    pub build_cost: i64,
    /// O&M cost in yuan per year.
    pub om_cost_per_year: i64,
    /// `internet` | `intranet` | `private`.
    pub network: String,
    /// `data_centre` | `own_room`.
    pub hosting: String,
    /// Its department API token.
    pub token_id: Option<Uuid>,
    /// Where the exchange pushes its events.
    pub push_endpoint: Option<String>,
    /// Its data API.
    pub data_api: Option<String>,
    /// Counted in the connectivity denominator.
    pub meant_to_connect: bool,
    /// `active` | `flagged` | `kept` | `cleared` | `merged`.
    pub status: String,
    /// The system it was merged into.
    pub merged_into: Option<Uuid>,
    /// Account id (or `seed`) of who registered it.
    pub created_by: String,
    /// Registered at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// An operator's decision on a system's zombie flags.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemDecision {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// The system.
    pub system_id: Uuid,
    /// The flag codes shown when deciding.
    pub flags: Vec<String>,
    /// `clear` | `merge` | `keep`.
    pub decision: String,
    /// For `merge`: the system it goes into.
    pub merged_into: Option<Uuid>,
    /// Why.
    pub reason: String,
    /// Operator's account id.
    pub decided_by: String,
    /// Operator's name.
    pub decided_name: String,
    /// When.
    pub decided_at: DateTime<Utc>,
}

/// A department's self-inspection report for a year.
#[derive(Debug, Clone, PartialEq)]
pub struct SelfInspection {
    /// Department (USCC).
    pub department: String,
    /// Year.
    pub year: i32,
    /// Integration plan (整合共享计划).
    pub integration_plan: String,
    /// Data needs: `[{provider, resource, items, purpose}]`.
    pub data_needs: Value,
    /// Account id of the submitter.
    pub submitted_by: String,
    /// Their name.
    pub submitted_name: String,
    /// When.
    pub submitted_at: DateTime<Utc>,
}

/// One token's use on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayUse {
    /// The day (UTC).
    pub day: NaiveDate,
    /// Calls.
    pub calls: i64,
    /// Calls that failed.
    pub failures: i64,
    /// Last successful call that day.
    pub last_ok_at: Option<DateTime<Utc>>,
}

/// Counts between consecutive boundaries: `totals[i]` and `oks[i]` fall in
/// `[bounds[i], bounds[i + 1])`; with the last success ever.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Buckets {
    /// Everything in each bucket.
    pub totals: Vec<i64>,
    /// The successful ones.
    pub oks: Vec<i64>,
    /// The last success, at any time.
    pub last_ok: Option<DateTime<Utc>>,
}

/// The most months one bucket query counts.
pub const MAX_BUCKETS: usize = 12;

const TOTAL_AS: [&str; MAX_BUCKETS] = [
    " AS t0", " AS t1", " AS t2", " AS t3", " AS t4", " AS t5", " AS t6", " AS t7", " AS t8",
    " AS t9", " AS t10", " AS t11",
];
const OK_AS: [&str; MAX_BUCKETS] = [
    " AS o0", " AS o1", " AS o2", " AS o3", " AS o4", " AS o5", " AS o6", " AS o7", " AS o8",
    " AS o9", " AS o10", " AS o11",
];

/// Supervision storage; see the file's doc.
#[async_trait]
pub trait SystemStore: Send + Sync {
    /// Registers a system.
    async fn insert_system(&self, s: &InfoSystem) -> StoreResult<()>;

    /// Rewrites a system's registered fields (not its status); false when there is no
    /// such system in that department.
    async fn update_system(&self, s: &InfoSystem) -> StoreResult<bool>;

    /// One system.
    async fn system(&self, id: Uuid) -> StoreResult<Option<InfoSystem>>;

    /// The systems of one department, or of all, by department and name.
    async fn systems(&self, department: Option<&str>) -> StoreResult<Vec<InfoSystem>>;

    /// Changes a system's status (the detector flagging it, or traffic making it active
    /// again); false when it was not in one of `from`.
    async fn set_system_status(
        &self,
        id: Uuid,
        from: &[&str],
        to: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Records an operator's decision and sets the system's status (and what it was
    /// merged into) in one transaction.
    async fn record_decision(&self, d: &SystemDecision, status: &str) -> StoreResult<()>;

    /// A system's decisions, newest first.
    async fn decisions(&self, system_id: Uuid) -> StoreResult<Vec<SystemDecision>>;

    /// Writes (or rewrites) a department's report for a year.
    async fn upsert_self_inspection(&self, r: &SelfInspection) -> StoreResult<()>;

    /// A department's report for a year.
    async fn self_inspection(
        &self,
        department: &str,
        year: i32,
    ) -> StoreResult<Option<SelfInspection>>;

    /// Counts one call of a token on the department API (one statement: an upsert of
    /// the token's row for the day).
    async fn record_token_use(&self, token: Uuid, at: DateTime<Utc>, ok: bool) -> StoreResult<()>;

    /// Sets a token's figures for a day (demo data and imports).
    async fn put_token_day(&self, token: Uuid, day: &DayUse) -> StoreResult<()>;

    /// A token's days from `since` on, oldest first.
    async fn token_days(&self, token: Uuid, since: NaiveDate) -> StoreResult<Vec<DayUse>>;

    /// A token's last successful call ever.
    async fn token_last_ok(&self, token: Uuid) -> StoreResult<Option<DateTime<Utc>>>;

    /// Delivery attempts to a department's events between the boundaries (ok: a 2xx
    /// answer), and its last successful delivery.
    async fn delivery_buckets(
        &self,
        department: &str,
        bounds: &[DateTime<Utc>],
    ) -> StoreResult<Buckets>;

    /// Reads of the named shared resources between the boundaries, and the last read.
    async fn data_access_buckets(
        &self,
        resources: &[String],
        bounds: &[DateTime<Utc>],
    ) -> StoreResult<Buckets>;
}

const SYSTEM_COLUMNS: &str = "SELECT id, department, name, function, users_scope, frequency, \
     approved_by, approved_on, funding, build_cost, om_cost_per_year, network, hosting, \
     token_id, push_endpoint, data_api, meant_to_connect, status, merged_into, created_by, \
     created_at, updated_at FROM info_systems";

fn system_from_row(r: &Row) -> StoreResult<InfoSystem> {
    Ok(InfoSystem {
        id: r.get("id")?,
        department: r.get("department")?,
        name: r.get("name")?,
        function: r.get("function")?,
        users_scope: r.get("users_scope")?,
        frequency: r.get("frequency")?,
        approved_by: r.get("approved_by")?,
        approved_on: r.get("approved_on")?,
        funding: r.get("funding")?,
        build_cost: r.get("build_cost")?,
        om_cost_per_year: r.get("om_cost_per_year")?,
        network: r.get("network")?,
        hosting: r.get("hosting")?,
        token_id: r.get("token_id")?,
        push_endpoint: r.get("push_endpoint")?,
        data_api: r.get("data_api")?,
        meant_to_connect: r.get("meant_to_connect")?,
        status: r.get("status")?,
        merged_into: r.get("merged_into")?,
        created_by: r.get("created_by")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn decision_from_row(r: &Row) -> StoreResult<SystemDecision> {
    let id: Uuid = r.get("id")?;
    let flags: Value = r.get("flags")?;
    let flags = serde_json::from_value(flags)
        .map_err(|_| StoreError::Corrupt(format!("system decision {id}: bad flags")))?;
    Ok(SystemDecision {
        id,
        system_id: r.get("system_id")?,
        flags,
        decision: r.get("decision")?,
        merged_into: r.get("merged_into")?,
        reason: r.get("reason")?,
        decided_by: r.get("decided_by")?,
        decided_name: r.get("decided_name")?,
        decided_at: r.get("decided_at")?,
    })
}

fn day_from_row(r: &Row) -> StoreResult<DayUse> {
    Ok(DayUse {
        day: r.get("day")?,
        calls: r.get("calls")?,
        failures: r.get("failures")?,
        last_ok_at: r.get("last_ok_at")?,
    })
}

/// `SELECT <count per bucket>, <ok count per bucket>` over `time` (a column), the ok
/// condition being `ok` (SQL text, or `1 = 1`).
fn bucket_select(bounds: &[DateTime<Utc>], time: &'static str, ok: &'static str) -> Q {
    let n = bounds.len().saturating_sub(1).min(MAX_BUCKETS);
    let mut q = Q::new("SELECT ");
    for (i, total_as) in TOTAL_AS.iter().enumerate().take(n) {
        q = q
            .push("CAST(COALESCE(SUM(CASE WHEN ")
            .push(time)
            .push(" >= ")
            .push_bind(bounds[i])
            .push(" AND ")
            .push(time)
            .push(" < ")
            .push_bind(bounds[i + 1])
            .push(" THEN 1 ELSE 0 END), 0) AS BIGINT)")
            .push(total_as)
            .push(", ");
    }
    for (i, ok_as) in OK_AS.iter().enumerate().take(n) {
        q = q
            .push("CAST(COALESCE(SUM(CASE WHEN ")
            .push(time)
            .push(" >= ")
            .push_bind(bounds[i])
            .push(" AND ")
            .push(time)
            .push(" < ")
            .push_bind(bounds[i + 1])
            .push(" AND ")
            .push(ok)
            .push(" THEN 1 ELSE 0 END), 0) AS BIGINT)")
            .push(ok_as)
            .push(", ");
    }
    q.push("1 AS one")
}

fn read_buckets(r: &Row, n: usize) -> StoreResult<(Vec<i64>, Vec<i64>)> {
    let n = n.min(MAX_BUCKETS);
    let totals = TOTAL_AS[..n]
        .iter()
        .map(|a| r.get::<i64>(&a[4..]))
        .collect::<StoreResult<Vec<_>>>()?;
    let oks = OK_AS[..n]
        .iter()
        .map(|a| r.get::<i64>(&a[4..]))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok((totals, oks))
}

#[async_trait]
impl SystemStore for SqlStore {
    async fn insert_system(&self, s: &InfoSystem) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO info_systems (id, department, name, function, users_scope, frequency, \
             approved_by, approved_on, funding, build_cost, om_cost_per_year, network, hosting, \
             token_id, push_endpoint, data_api, meant_to_connect, status, merged_into, \
             created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
        )
        .bind(s.id)
        .bind(&s.department)
        .bind(&s.name)
        .bind(&s.function)
        .bind(&s.users_scope)
        .bind(&s.frequency)
        .bind(&s.approved_by)
        .bind(s.approved_on)
        .bind(&s.funding)
        .bind(s.build_cost)
        .bind(s.om_cost_per_year)
        .bind(&s.network)
        .bind(&s.hosting)
        .bind(s.token_id)
        .bind(&s.push_endpoint)
        .bind(&s.data_api)
        .bind(s.meant_to_connect)
        .bind(&s.status)
        .bind(s.merged_into)
        .bind(&s.created_by)
        .bind(s.created_at)
        .bind(s.updated_at);
        self.db.execute(q).await?;
        Ok(())
    }

    async fn update_system(&self, s: &InfoSystem) -> StoreResult<bool> {
        let q = Q::new(
            "UPDATE info_systems SET name = $1, function = $2, users_scope = $3, frequency = $4, \
             approved_by = $5, approved_on = $6, funding = $7, build_cost = $8, \
             om_cost_per_year = $9, network = $10, hosting = $11, token_id = $12, \
             push_endpoint = $13, data_api = $14, meant_to_connect = $15, updated_at = $16 \
             WHERE id = $17 AND department = $18",
        )
        .bind(&s.name)
        .bind(&s.function)
        .bind(&s.users_scope)
        .bind(&s.frequency)
        .bind(&s.approved_by)
        .bind(s.approved_on)
        .bind(&s.funding)
        .bind(s.build_cost)
        .bind(s.om_cost_per_year)
        .bind(&s.network)
        .bind(&s.hosting)
        .bind(s.token_id)
        .bind(&s.push_endpoint)
        .bind(&s.data_api)
        .bind(s.meant_to_connect)
        .bind(s.updated_at)
        .bind(s.id)
        .bind(&s.department);
        Ok(self.db.execute(q).await? == 1)
    }

    async fn system(&self, id: Uuid) -> StoreResult<Option<InfoSystem>> {
        let q = Q::new(SYSTEM_COLUMNS).push(" WHERE id = $1").bind(id);
        self.db.fetch_optional_with(q, system_from_row).await
    }

    async fn systems(&self, department: Option<&str>) -> StoreResult<Vec<InfoSystem>> {
        let q = match department {
            Some(d) => Q::new(SYSTEM_COLUMNS)
                .push(" WHERE department = $1 ORDER BY department, name, id")
                .bind(d),
            None => Q::new(SYSTEM_COLUMNS).push(" ORDER BY department, name, id"),
        };
        self.db.fetch_all_with(q, system_from_row).await
    }

    async fn set_system_status(
        &self,
        id: Uuid,
        from: &[&str],
        to: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        if from.is_empty() {
            return Ok(false);
        }
        // `updated_at` is when the record was last changed by people: the detector's
        // status changes leave it (the `unmaintained` rule reads it).
        let _ = now;
        let q = Q::new("UPDATE info_systems SET status = $1 WHERE id = $2")
            .bind(to)
            .bind(id)
            .push(" AND status IN (")
            .push_list(from.iter().copied())
            .push(")");
        Ok(self.db.execute(q).await? == 1)
    }

    async fn record_decision(&self, d: &SystemDecision, status: &str) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        tx.execute(
            Q::new(
                "INSERT INTO system_decisions (id, system_id, flags, decision, merged_into, \
                 reason, decided_by, decided_name, decided_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(d.id)
            .bind(d.system_id)
            .bind(serde_json::json!(d.flags))
            .bind(&d.decision)
            .bind(d.merged_into)
            .bind(&d.reason)
            .bind(&d.decided_by)
            .bind(&d.decided_name)
            .bind(d.decided_at),
        )
        .await?;
        tx.execute(
            Q::new(
                "UPDATE info_systems SET status = $1, merged_into = $2, updated_at = $3 \
                 WHERE id = $4",
            )
            .bind(status)
            .bind(d.merged_into)
            .bind(d.decided_at)
            .bind(d.system_id),
        )
        .await?;
        tx.commit().await
    }

    async fn decisions(&self, system_id: Uuid) -> StoreResult<Vec<SystemDecision>> {
        let q = Q::new(
            "SELECT id, system_id, flags, decision, merged_into, reason, decided_by, \
             decided_name, decided_at FROM system_decisions WHERE system_id = $1 \
             ORDER BY decided_at DESC, id DESC",
        )
        .bind(system_id);
        self.db.fetch_all_with(q, decision_from_row).await
    }

    async fn upsert_self_inspection(&self, r: &SelfInspection) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO self_inspections (department, year, integration_plan, data_needs, \
             submitted_by, submitted_name, submitted_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (department, year) DO UPDATE SET \
             integration_plan = excluded.integration_plan, data_needs = excluded.data_needs, \
             submitted_by = excluded.submitted_by, submitted_name = excluded.submitted_name, \
             submitted_at = excluded.submitted_at",
        )
        .bind(&r.department)
        .bind(r.year)
        .bind(&r.integration_plan)
        .bind(&r.data_needs)
        .bind(&r.submitted_by)
        .bind(&r.submitted_name)
        .bind(r.submitted_at);
        self.db.execute(q).await?;
        Ok(())
    }

    async fn self_inspection(
        &self,
        department: &str,
        year: i32,
    ) -> StoreResult<Option<SelfInspection>> {
        let q = Q::new(
            "SELECT department, year, integration_plan, data_needs, submitted_by, \
             submitted_name, submitted_at FROM self_inspections \
             WHERE department = $1 AND year = $2",
        )
        .bind(department)
        .bind(year);
        self.db
            .fetch_optional_with(q, |r| {
                Ok(SelfInspection {
                    department: r.get("department")?,
                    year: r.get("year")?,
                    integration_plan: r.get("integration_plan")?,
                    data_needs: r.get("data_needs")?,
                    submitted_by: r.get("submitted_by")?,
                    submitted_name: r.get("submitted_name")?,
                    submitted_at: r.get("submitted_at")?,
                })
            })
            .await
    }

    async fn record_token_use(&self, token: Uuid, at: DateTime<Utc>, ok: bool) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO token_usage (token_id, day, calls, failures, last_ok_at) \
             VALUES ($1, $2, 1, $3, $4) \
             ON CONFLICT (token_id, day) DO UPDATE SET calls = token_usage.calls + 1, \
             failures = token_usage.failures + excluded.failures, \
             last_ok_at = COALESCE(excluded.last_ok_at, token_usage.last_ok_at)",
        )
        .bind(token)
        .bind(at.date_naive())
        .bind(if ok { 0i64 } else { 1i64 })
        .bind(ok.then_some(at));
        self.db.execute(q).await?;
        Ok(())
    }

    async fn put_token_day(&self, token: Uuid, d: &DayUse) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO token_usage (token_id, day, calls, failures, last_ok_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (token_id, day) DO UPDATE SET calls = excluded.calls, \
             failures = excluded.failures, last_ok_at = excluded.last_ok_at",
        )
        .bind(token)
        .bind(d.day)
        .bind(d.calls)
        .bind(d.failures)
        .bind(d.last_ok_at);
        self.db.execute(q).await?;
        Ok(())
    }

    async fn token_days(&self, token: Uuid, since: NaiveDate) -> StoreResult<Vec<DayUse>> {
        let q = Q::new(
            "SELECT day, calls, failures, last_ok_at FROM token_usage \
             WHERE token_id = $1 AND day >= $2 ORDER BY day",
        )
        .bind(token)
        .bind(since);
        self.db.fetch_all_with(q, day_from_row).await
    }

    async fn token_last_ok(&self, token: Uuid) -> StoreResult<Option<DateTime<Utc>>> {
        let q = Q::new(
            "SELECT last_ok_at FROM token_usage WHERE token_id = $1 AND last_ok_at IS NOT NULL \
             ORDER BY last_ok_at DESC LIMIT 1",
        )
        .bind(token);
        self.db
            .fetch_optional_with(q, |r| r.get("last_ok_at"))
            .await
    }

    async fn delivery_buckets(
        &self,
        department: &str,
        bounds: &[DateTime<Utc>],
    ) -> StoreResult<Buckets> {
        let n = bounds.len().saturating_sub(1).min(MAX_BUCKETS);
        let q = bucket_select(bounds, "a.at", "a.status BETWEEN 200 AND 299")
            .push(" FROM delivery_attempts a JOIN outbox o ON o.id = a.event_id WHERE o.department = ")
            .push_bind(department);
        let row = self.db.fetch_one(q).await?;
        let (totals, oks) = read_buckets(&row, n)?;
        let last = Q::new(
            "SELECT a.at FROM delivery_attempts a JOIN outbox o ON o.id = a.event_id \
             WHERE o.department = $1 AND a.status BETWEEN 200 AND 299 ORDER BY a.at DESC LIMIT 1",
        )
        .bind(department);
        let last_ok = self.db.fetch_optional_with(last, |r| r.get("at")).await?;
        Ok(Buckets {
            totals,
            oks,
            last_ok,
        })
    }

    async fn data_access_buckets(
        &self,
        resources: &[String],
        bounds: &[DateTime<Utc>],
    ) -> StoreResult<Buckets> {
        let n = bounds.len().saturating_sub(1).min(MAX_BUCKETS);
        if resources.is_empty() {
            return Ok(Buckets {
                totals: vec![0; n],
                oks: vec![0; n],
                last_ok: None,
            });
        }
        let q = bucket_select(bounds, "at", "1 = 1")
            .push(" FROM data_access WHERE resource IN (")
            .push_list(resources.iter())
            .push(")");
        let row = self.db.fetch_one(q).await?;
        let (totals, oks) = read_buckets(&row, n)?;
        let last = Q::new("SELECT at FROM data_access WHERE resource IN (")
            .push_list(resources.iter())
            .push(") ORDER BY at DESC LIMIT 1");
        let last_ok = self.db.fetch_optional_with(last, |r| r.get("at")).await?;
        Ok(Buckets {
            totals,
            oks,
            last_ok,
        })
    }
}
