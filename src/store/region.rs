//! The cascade to the regional platform (接入自治区平台): the queue of reports the
//! region receives (case reports, one per case history entry; catalogue changes, one per
//! resource version), with the same delivery state as department events (leases,
//! attempts, dead letters, redelivery) and the same ordering rule, per `order_key`.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::db::{Claimed, Exec, Q, Row};
use super::exchange::{AttemptOutcome, AttemptRow};
use super::{SqlStore, StoreResult};

/// A report to queue.
#[derive(Debug, Clone)]
pub struct NewRegionReport {
    /// Report id (= webhook-id, the receiver's idempotency key).
    pub id: Uuid,
    /// `case_report` or `catalogue_change`.
    pub kind: &'static str,
    /// Reports with the same key are delivered one after the other, by `seq`.
    pub order_key: String,
    /// Order within the key.
    pub seq: i32,
    /// Case reports: the case and its history entry (unique together).
    pub case_id: Option<Uuid>,
    /// The history entry.
    pub case_seq: Option<i32>,
    /// Catalogue changes: the resource and its version (unique together).
    pub resource_code: Option<String>,
    /// The version.
    pub resource_version: Option<String>,
    /// The report, in the gateway's field names.
    pub payload: Value,
    /// Queued.
    pub created_at: DateTime<Utc>,
}

/// A queued report with its delivery state.
#[derive(Debug, Clone, Serialize)]
pub struct RegionReport {
    /// Report id (= webhook-id).
    pub id: Uuid,
    /// `case_report` or `catalogue_change`.
    pub kind: String,
    /// Ordering key.
    pub order_key: String,
    /// Order within the key.
    pub seq: i32,
    /// The case (case reports).
    pub case_id: Option<Uuid>,
    /// The resource (catalogue changes).
    pub resource_code: Option<String>,
    /// Its version.
    pub resource_version: Option<String>,
    /// The report, in the gateway's field names.
    pub payload: Value,
    /// Queued.
    pub created_at: DateTime<Utc>,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i32,
    /// Attempts before the last redelivery.
    pub retry_from: i32,
    /// Next attempt due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Last HTTP status.
    pub last_status: Option<i32>,
    /// Last error.
    pub last_error: Option<String>,
    /// Delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A case history entry not yet queued for the region, with what a report needs of
/// its case.
#[derive(Debug, Clone)]
pub struct RegionStage {
    /// The case.
    pub case_id: Uuid,
    /// History entry.
    pub seq: i32,
    /// When.
    pub at: DateTime<Utc>,
    /// The action (`None` for the creating entry).
    pub action: Option<String>,
    /// Status after it.
    pub to_status: String,
    /// Case number.
    pub case_no: String,
    /// Query code.
    pub query_code: String,
    /// Service (item) code.
    pub service_code: String,
    /// Responsible department (USCC).
    pub department: String,
    /// Accepted on.
    pub accepted_on: Option<NaiveDate>,
    /// Promised due date.
    pub due_on: Option<NaiveDate>,
    /// Legal due date.
    pub legal_due_on: Option<NaiveDate>,
}

/// How many reports of a kind are in a state.
#[derive(Debug, Clone, Serialize)]
pub struct RegionCount {
    /// `case_report` or `catalogue_change`.
    pub kind: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// How many.
    pub count: i64,
}

/// The region's queue.
/// Where a sweep over history entries stands: the last entry it saw, in the sweep's
/// order (time, case, position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageKey {
    /// The entry's time.
    pub at: DateTime<Utc>,
    /// Its case.
    pub case_id: Uuid,
    /// Its position in the case's history.
    pub seq: i32,
}

#[async_trait]
pub trait RegionStore: Send + Sync {
    /// Up to `limit` case history entries (at `since` or later, when given) that have no
    /// report yet, oldest first.
    async fn unqueued_stages(
        &self,
        since: Option<DateTime<Utc>>,
        after: Option<StageKey>,
        limit: i64,
    ) -> StoreResult<Vec<RegionStage>>;

    /// Queues reports; one already queued (the same history entry, or the same resource
    /// version) is left as it is. Returns how many were queued.
    async fn queue_region(&self, rows: &[NewRegionReport]) -> StoreResult<u64>;

    /// Leases up to `limit` reports due at `now` until `lease_until`: only the earliest
    /// undelivered report of each ordering key. On PostgreSQL with `SKIP LOCKED`.
    async fn claim_region(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<RegionReport>>;

    /// Gives claimed reports back before their lease runs out.
    async fn release_region(&self, ids: &[Uuid]) -> StoreResult<()>;

    /// Records an attempt and its outcome, releasing the lease.
    async fn finish_region_attempt(
        &self,
        id: Uuid,
        attempt: &AttemptRow,
        outcome: AttemptOutcome,
    ) -> StoreResult<()>;

    /// Reports, newest first; only one state when given.
    async fn region_reports(
        &self,
        state: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<RegionReport>>;

    /// One report.
    async fn region_report(&self, id: Uuid) -> StoreResult<Option<RegionReport>>;

    /// The attempts of one report.
    async fn region_attempts(&self, id: Uuid) -> StoreResult<Vec<AttemptRow>>;

    /// Puts dead reports back in the queue (one, or all when `id` is `None`); how many.
    async fn redeliver_region(&self, id: Option<Uuid>) -> StoreResult<u64>;

    /// Counts by kind and state.
    async fn region_counts(&self) -> StoreResult<Vec<RegionCount>>;
}

/// The ordering rule over a row aliased `o`: no earlier report of the same key is still
/// undelivered.
const NEXT_IN_ORDER: &str = "NOT EXISTS (SELECT 1 FROM region_outbox e \
     WHERE e.order_key = o.order_key AND e.state <> 'delivered' \
     AND (e.seq < o.seq OR (e.seq = o.seq AND e.id < o.id)))";

const REPORT_SELECT: &str = "SELECT o.id, o.kind, o.order_key, o.seq, o.case_id, o.resource_code, \
     o.resource_version, o.payload, o.created_at, o.state, o.attempts, o.retry_from, \
     o.next_attempt_at, o.last_status, o.last_error, o.delivered_at FROM region_outbox o";

fn report_from_row(r: &Row) -> StoreResult<RegionReport> {
    Ok(RegionReport {
        id: r.get("id")?,
        kind: r.get("kind")?,
        order_key: r.get("order_key")?,
        seq: r.get("seq")?,
        case_id: r.get("case_id")?,
        resource_code: r.get("resource_code")?,
        resource_version: r.get("resource_version")?,
        payload: r.get("payload")?,
        created_at: r.get("created_at")?,
        state: r.get("state")?,
        attempts: r.get("attempts")?,
        retry_from: r.get("retry_from")?,
        next_attempt_at: r.get("next_attempt_at")?,
        last_status: r.get("last_status")?,
        last_error: r.get("last_error")?,
        delivered_at: r.get("delivered_at")?,
    })
}

#[async_trait]
impl RegionStore for SqlStore {
    async fn unqueued_stages(
        &self,
        since: Option<DateTime<Utc>>,
        after: Option<StageKey>,
        limit: i64,
    ) -> StoreResult<Vec<RegionStage>> {
        let mut q = Q::new(
            "SELECT e.case_id, e.seq, e.at, e.action, e.to_status, c.case_no, c.query_code, \
             c.service_code, c.department, c.accepted_on, c.due_on, c.legal_due_on \
             FROM case_events e JOIN cases c ON c.id = e.case_id \
             WHERE NOT EXISTS (SELECT 1 FROM region_outbox r \
               WHERE r.case_id = e.case_id AND r.case_seq = e.seq)",
        );
        if let Some(t) = since {
            q = q.push(" AND e.at >= ").push_bind(t);
        }
        // A sweep in batches continues after the last stage of the previous batch
        // instead of passing over every queued stage again.
        if let Some(k) = after {
            q = q
                .push(" AND (e.at, e.case_id, e.seq) > (")
                .push_bind(k.at)
                .push(", ")
                .push_bind(k.case_id)
                .push(", ")
                .push_bind(k.seq)
                .push(")");
        }
        let q = q
            .push(" ORDER BY e.at, e.case_id, e.seq LIMIT ")
            .push_bind(limit);
        self.db
            .fetch_all_with(q, |r| {
                Ok(RegionStage {
                    case_id: r.get("case_id")?,
                    seq: r.get("seq")?,
                    at: r.get("at")?,
                    action: r.get("action")?,
                    to_status: r.get("to_status")?,
                    case_no: r.get("case_no")?,
                    query_code: r.get("query_code")?,
                    service_code: r.get("service_code")?,
                    department: r.get("department")?,
                    accepted_on: r.get("accepted_on")?,
                    due_on: r.get("due_on")?,
                    legal_due_on: r.get("legal_due_on")?,
                })
            })
            .await
    }

    async fn queue_region(&self, rows: &[NewRegionReport]) -> StoreResult<u64> {
        let mut tx = self.db.begin().await?;
        let mut queued = 0;
        for n in rows {
            let q = Q::new(
                "INSERT INTO region_outbox (id, kind, order_key, seq, case_id, case_seq, \
                 resource_code, resource_version, payload, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            )
            .bind(n.id)
            .bind(n.kind)
            .bind(&n.order_key)
            .bind(n.seq)
            .bind(n.case_id)
            .bind(n.case_seq)
            .bind(&n.resource_code)
            .bind(&n.resource_version)
            .bind(&n.payload)
            .bind(n.created_at);
            queued += tx.execute(q).await?;
        }
        tx.commit().await?;
        Ok(queued)
    }

    async fn claim_region(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<RegionReport>> {
        let q = Q::new(
            "UPDATE region_outbox SET lease_until = $1 WHERE id IN ( \
               SELECT o.id FROM region_outbox o \
               WHERE o.state = 'pending' AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= $2) \
                 AND (o.lease_until IS NULL OR o.lease_until < $2) AND ",
        )
        .bind(lease_until)
        .bind(now)
        .push(NEXT_IN_ORDER)
        .push(" ORDER BY o.created_at, o.id LIMIT ")
        .push_bind(limit)
        .push(self.db.skip_locked(Claimed::Outbox))
        .push(") RETURNING id");
        let ids = self.db.fetch_all_with(q, |r| r.get::<Uuid>("id")).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let q = Q::new(REPORT_SELECT)
            .push(" WHERE o.id IN (")
            .push_list(ids)
            .push(") ORDER BY o.created_at, o.id");
        self.db.fetch_all_with(q, report_from_row).await
    }

    async fn release_region(&self, ids: &[Uuid]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let q = Q::new(
            "UPDATE region_outbox SET lease_until = NULL WHERE state = 'pending' AND id IN (",
        )
        .push_list(ids.iter().copied())
        .push(")");
        self.db.execute(q).await?;
        Ok(())
    }

    async fn finish_region_attempt(
        &self,
        id: Uuid,
        a: &AttemptRow,
        outcome: AttemptOutcome,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        let q = Q::new(
            "INSERT INTO region_attempts (event_id, attempt, at, status, latency_ms, error) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(a.attempt)
        .bind(a.at)
        .bind(a.status)
        .bind(a.latency_ms.clamp(0, i64::from(i32::MAX)) as i32)
        .bind(&a.error);
        tx.execute(q).await?;
        let (state, next, delivered) = match outcome {
            AttemptOutcome::Delivered => ("delivered", None, Some(a.at)),
            AttemptOutcome::RetryAt(t) => ("pending", Some(t), None),
            AttemptOutcome::Dead => ("dead", None, None),
        };
        let q = Q::new(
            "UPDATE region_outbox SET state = $1, attempts = $2, next_attempt_at = $3, \
             delivered_at = $4, lease_until = NULL, last_status = $5, last_error = $6 WHERE id = $7",
        )
        .bind(state)
        .bind(a.attempt)
        .bind(next)
        .bind(delivered)
        .bind(a.status)
        .bind(&a.error)
        .bind(id);
        tx.execute(q).await?;
        tx.commit().await
    }

    async fn region_reports(
        &self,
        state: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<RegionReport>> {
        let mut q = Q::new(REPORT_SELECT).push(" WHERE 1 = 1");
        if let Some(s) = state {
            q = q.push(" AND o.state = ").push_bind(s);
        }
        let q = q
            .push(" ORDER BY o.created_at DESC, o.id DESC LIMIT ")
            .push_bind(limit);
        self.db.fetch_all_with(q, report_from_row).await
    }

    async fn region_report(&self, id: Uuid) -> StoreResult<Option<RegionReport>> {
        let q = Q::new(REPORT_SELECT).push(" WHERE o.id = ").push_bind(id);
        Ok(self
            .db
            .fetch_all_with(q, report_from_row)
            .await?
            .into_iter()
            .next())
    }

    async fn region_attempts(&self, id: Uuid) -> StoreResult<Vec<AttemptRow>> {
        let q =
            Q::new("SELECT * FROM region_attempts WHERE event_id = $1 ORDER BY attempt").bind(id);
        self.db
            .fetch_all_with(q, |r| {
                Ok(AttemptRow {
                    attempt: r.get("attempt")?,
                    at: r.get("at")?,
                    status: r.get("status")?,
                    latency_ms: i64::from(r.get::<i32>("latency_ms")?),
                    error: r.get("error")?,
                })
            })
            .await
    }

    async fn redeliver_region(&self, id: Option<Uuid>) -> StoreResult<u64> {
        // Attempt numbers continue; the retry schedule restarts after `retry_from`.
        let mut q = Q::new(
            "UPDATE region_outbox SET state = 'pending', retry_from = attempts, \
             next_attempt_at = NULL, lease_until = NULL WHERE state = 'dead'",
        );
        if let Some(id) = id {
            q = q.push(" AND id = ").push_bind(id);
        }
        self.db.execute(q).await
    }

    async fn region_counts(&self) -> StoreResult<Vec<RegionCount>> {
        let q = Q::new(
            "SELECT kind, state, COUNT(*) AS n FROM region_outbox GROUP BY kind, state \
             ORDER BY kind, state",
        );
        self.db
            .fetch_all_with(q, |r| {
                Ok(RegionCount {
                    kind: r.get("kind")?,
                    state: r.get("state")?,
                    count: r.get("n")?,
                })
            })
            .await
    }
}
