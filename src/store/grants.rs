//! See `super` for what this file holds.
//! Sharing requests and grants (共享申请与授权, migration 0018).
//!
//! A request moves by `UPDATE … WHERE state IN (…)` together with its appended event (its
//! `seq` one more than the last) and, on approval, the grant it makes, all in one
//! transaction, so two providers deciding at once cannot both move it. A grant's liveness
//! is read on every use (`live_grants`, one indexed statement), never cached, so an
//! expiry or a revocation stops the next read.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::db::{Exec, Q, Row};
use super::{SqlStore, StoreError, StoreResult};

/// A consuming department's request for a conditional resource.
#[derive(Debug, Clone, PartialEq)]
pub struct SharingRequest {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// Resource code.
    pub resource: String,
    /// Providing department (USCC).
    pub provider: String,
    /// Requesting department (USCC).
    pub consumer_department: String,
    /// `service` | `system`.
    pub consumer_kind: String,
    /// Service code or information-system id.
    pub consumer: String,
    /// What for.
    pub purpose: String,
    /// The law or document that allows it.
    pub legal_basis: String,
    /// Item ids asked for.
    pub items: Vec<String>,
    /// From.
    pub period_from: NaiveDate,
    /// Until (none: open-ended).
    pub period_until: Option<NaiveDate>,
    /// `pending` | `more_info` | `approved` | `refused`.
    pub state: String,
    /// The grant an approval made.
    pub grant_id: Option<Uuid>,
    /// Account id of the requester.
    pub created_by: String,
    /// Their name.
    pub created_name: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last step.
    pub updated_at: DateTime<Utc>,
}

/// One step of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestEvent {
    /// 1, 2, … within the request.
    pub seq: i32,
    /// `submitted` | `approved` | `refused` | `asked` | `answered`.
    pub action: String,
    /// Reason, question or answer.
    pub note: String,
    /// The items approved (approval only).
    pub items: Option<Vec<String>>,
    /// The expiry given (approval only).
    pub valid_until: Option<DateTime<Utc>>,
    /// Account id.
    pub author_id: String,
    /// Name.
    pub author_name: String,
    /// The author's department.
    pub department: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// What a consumer may read of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// Resource code.
    pub resource: String,
    /// Providing department.
    pub provider: String,
    /// Consuming department.
    pub consumer_department: String,
    /// `service` | `system`.
    pub consumer_kind: String,
    /// Service code or system id.
    pub consumer: String,
    /// Item ids granted.
    pub items: Vec<String>,
    /// From.
    pub valid_from: DateTime<Utc>,
    /// Until (none: no expiry).
    pub valid_until: Option<DateTime<Utc>>,
    /// Revoked at.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Revoked by (name).
    pub revoked_by: Option<String>,
    /// Why.
    pub revoked_reason: Option<String>,
    /// `request` | `import`.
    pub source: String,
    /// The request it came from.
    pub request_id: Option<Uuid>,
    /// `resource/service` of a catalogue grant (unique: imports are idempotent).
    pub import_key: Option<String>,
    /// Reads under it.
    pub reads: i64,
    /// The last read.
    pub last_read_at: Option<DateTime<Utc>>,
    /// Made at.
    pub created_at: DateTime<Utc>,
}

/// Whose grants or requests to list.
#[derive(Debug, Clone, Copy)]
pub enum Party<'a> {
    /// Those a department provides.
    Provider(&'a str),
    /// Those a department consumes.
    Consumer(&'a str),
    /// Everyone's.
    All,
}

/// A move of a request: from one of `from` to `to`, with its event and, on approval,
/// the grant it makes.
#[derive(Debug, Clone)]
pub struct RequestStep<'a> {
    /// The request.
    pub id: Uuid,
    /// The states it may be in.
    pub from: &'a [&'a str],
    /// The state it goes to.
    pub to: &'a str,
    /// What happened (its `seq` is given by the store).
    pub event: RequestEvent,
    /// The grant an approval makes.
    pub grant: Option<Grant>,
}

/// Sharing requests and grants; see the file's doc.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Stores a new request with its first event.
    async fn insert_sharing_request(
        &self,
        r: &SharingRequest,
        first: &RequestEvent,
    ) -> StoreResult<()>;

    /// One request.
    async fn sharing_request(&self, id: Uuid) -> StoreResult<Option<SharingRequest>>;

    /// Requests of a party, newest first.
    async fn sharing_requests(&self, party: Party<'_>) -> StoreResult<Vec<SharingRequest>>;

    /// A request's steps, in order.
    async fn request_events(&self, id: Uuid) -> StoreResult<Vec<RequestEvent>>;

    /// Moves a request (see [`RequestStep`]); false when it was not in one of `from`.
    async fn step_request(&self, step: &RequestStep<'_>) -> StoreResult<bool>;

    /// Stores catalogue grants whose `import_key` is not there yet (a revoked one stays
    /// revoked); answers how many were new.
    async fn import_grants(&self, grants: &[Grant]) -> StoreResult<usize>;

    /// One grant.
    async fn grant(&self, id: Uuid) -> StoreResult<Option<Grant>>;

    /// Grants of a party, by resource, consumer and time.
    async fn grants(&self, party: Party<'_>) -> StoreResult<Vec<Grant>>;

    /// The grants of a consumer live at `now` (not revoked, begun, not expired), of one
    /// resource or of all.
    async fn live_grants(
        &self,
        consumer_kind: &str,
        consumer: &str,
        resource: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Grant>>;

    /// The live grants of a department's systems for a resource.
    async fn live_system_grants(
        &self,
        department: &str,
        resource: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Grant>>;

    /// Revokes a grant of `provider` not revoked yet; false otherwise.
    async fn revoke_grant(
        &self,
        id: Uuid,
        provider: Option<&str>,
        by: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Counts `n` reads under a grant, the latest at `at` (one statement).
    async fn count_grant_reads(&self, id: Uuid, n: i64, at: DateTime<Utc>) -> StoreResult<()>;
}

const REQUEST_COLUMNS: &str = "SELECT id, resource, provider, consumer_department, \
     consumer_kind, consumer, purpose, legal_basis, items, period_from, period_until, state, \
     grant_id, created_by, created_name, created_at, updated_at FROM sharing_requests";

const GRANT_COLUMNS: &str = "SELECT id, resource, provider, consumer_department, \
     consumer_kind, consumer, items, valid_from, valid_until, revoked_at, revoked_by, \
     revoked_reason, source, request_id, import_key, reads, last_read_at, created_at \
     FROM sharing_grants";

fn items_of(v: Value, what: &str) -> StoreResult<Vec<String>> {
    serde_json::from_value(v).map_err(|_| StoreError::Corrupt(format!("{what}: bad items")))
}

fn request_from_row(r: &Row) -> StoreResult<SharingRequest> {
    let id: Uuid = r.get("id")?;
    Ok(SharingRequest {
        id,
        resource: r.get("resource")?,
        provider: r.get("provider")?,
        consumer_department: r.get("consumer_department")?,
        consumer_kind: r.get("consumer_kind")?,
        consumer: r.get("consumer")?,
        purpose: r.get("purpose")?,
        legal_basis: r.get("legal_basis")?,
        items: items_of(r.get("items")?, &format!("request {id}"))?,
        period_from: r.get("period_from")?,
        period_until: r.get("period_until")?,
        state: r.get("state")?,
        grant_id: r.get("grant_id")?,
        created_by: r.get("created_by")?,
        created_name: r.get("created_name")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn event_from_row(r: &Row) -> StoreResult<RequestEvent> {
    let items: Option<Value> = r.get("items")?;
    Ok(RequestEvent {
        seq: r.get("seq")?,
        action: r.get("action")?,
        note: r.get("note")?,
        items: items.map(|v| items_of(v, "request event")).transpose()?,
        valid_until: r.get("valid_until")?,
        author_id: r.get("author_id")?,
        author_name: r.get("author_name")?,
        department: r.get("department")?,
        at: r.get("at")?,
    })
}

fn grant_from_row(r: &Row) -> StoreResult<Grant> {
    let id: Uuid = r.get("id")?;
    Ok(Grant {
        id,
        resource: r.get("resource")?,
        provider: r.get("provider")?,
        consumer_department: r.get("consumer_department")?,
        consumer_kind: r.get("consumer_kind")?,
        consumer: r.get("consumer")?,
        items: items_of(r.get("items")?, &format!("grant {id}"))?,
        valid_from: r.get("valid_from")?,
        valid_until: r.get("valid_until")?,
        revoked_at: r.get("revoked_at")?,
        revoked_by: r.get("revoked_by")?,
        revoked_reason: r.get("revoked_reason")?,
        source: r.get("source")?,
        request_id: r.get("request_id")?,
        import_key: r.get("import_key")?,
        reads: r.get("reads")?,
        last_read_at: r.get("last_read_at")?,
        created_at: r.get("created_at")?,
    })
}

fn insert_grant(g: &Grant) -> Q {
    Q::new(
        "INSERT INTO sharing_grants (id, resource, provider, consumer_department, \
         consumer_kind, consumer, items, valid_from, valid_until, revoked_at, revoked_by, \
         revoked_reason, source, request_id, import_key, reads, last_read_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(g.id)
    .bind(&g.resource)
    .bind(&g.provider)
    .bind(&g.consumer_department)
    .bind(&g.consumer_kind)
    .bind(&g.consumer)
    .bind(serde_json::json!(g.items))
    .bind(g.valid_from)
    .bind(g.valid_until)
    .bind(g.revoked_at)
    .bind(&g.revoked_by)
    .bind(&g.revoked_reason)
    .bind(&g.source)
    .bind(g.request_id)
    .bind(&g.import_key)
    .bind(g.reads)
    .bind(g.last_read_at)
    .bind(g.created_at)
}

fn insert_event(id: Uuid, seq: i32, e: &RequestEvent) -> Q {
    Q::new(
        "INSERT INTO sharing_request_events (request_id, seq, action, note, items, \
         valid_until, author_id, author_name, department, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(seq)
    .bind(&e.action)
    .bind(&e.note)
    .bind(e.items.as_ref().map(|i| serde_json::json!(i)))
    .bind(e.valid_until)
    .bind(&e.author_id)
    .bind(&e.author_name)
    .bind(&e.department)
    .bind(e.at)
}

/// `WHERE` for a party over tables with `provider` and `consumer_department`.
fn party_filter(q: Q, party: Party<'_>) -> Q {
    match party {
        Party::Provider(d) => q.push(" WHERE provider = ").push_bind(d),
        Party::Consumer(d) => q.push(" WHERE consumer_department = ").push_bind(d),
        Party::All => q,
    }
}

#[async_trait]
impl GrantStore for SqlStore {
    async fn insert_sharing_request(
        &self,
        r: &SharingRequest,
        first: &RequestEvent,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        tx.execute(
            Q::new(
                "INSERT INTO sharing_requests (id, resource, provider, consumer_department, \
                 consumer_kind, consumer, purpose, legal_basis, items, period_from, \
                 period_until, state, grant_id, created_by, created_name, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                 $14, $15, $16, $17)",
            )
            .bind(r.id)
            .bind(&r.resource)
            .bind(&r.provider)
            .bind(&r.consumer_department)
            .bind(&r.consumer_kind)
            .bind(&r.consumer)
            .bind(&r.purpose)
            .bind(&r.legal_basis)
            .bind(serde_json::json!(r.items))
            .bind(r.period_from)
            .bind(r.period_until)
            .bind(&r.state)
            .bind(r.grant_id)
            .bind(&r.created_by)
            .bind(&r.created_name)
            .bind(r.created_at)
            .bind(r.updated_at),
        )
        .await?;
        tx.execute(insert_event(r.id, 1, first)).await?;
        tx.commit().await
    }

    async fn sharing_request(&self, id: Uuid) -> StoreResult<Option<SharingRequest>> {
        let q = Q::new(REQUEST_COLUMNS).push(" WHERE id = $1").bind(id);
        self.db.fetch_optional_with(q, request_from_row).await
    }

    async fn sharing_requests(&self, party: Party<'_>) -> StoreResult<Vec<SharingRequest>> {
        let q = party_filter(Q::new(REQUEST_COLUMNS), party).push(" ORDER BY created_at DESC, id");
        self.db.fetch_all_with(q, request_from_row).await
    }

    async fn request_events(&self, id: Uuid) -> StoreResult<Vec<RequestEvent>> {
        let q = Q::new(
            "SELECT seq, action, note, items, valid_until, author_id, author_name, department, \
             at FROM sharing_request_events WHERE request_id = $1 ORDER BY seq",
        )
        .bind(id);
        self.db.fetch_all_with(q, event_from_row).await
    }

    async fn step_request(&self, step: &RequestStep<'_>) -> StoreResult<bool> {
        if step.from.is_empty() {
            return Ok(false);
        }
        let mut tx = self.db.begin_write().await?;
        let moved = tx
            .execute(
                Q::new("UPDATE sharing_requests SET state = $1, updated_at = $2, grant_id = ")
                    .bind(step.to)
                    .bind(step.event.at)
                    .push("COALESCE(")
                    .push_bind(step.grant.as_ref().map(|g| g.id))
                    .push(", grant_id) WHERE id = ")
                    .push_bind(step.id)
                    .push(" AND state IN (")
                    .push_list(step.from.iter().copied())
                    .push(")"),
            )
            .await?;
        if moved != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let last = tx
            .fetch_one(
                Q::new(
                    "SELECT CAST(COALESCE(MAX(seq), 0) AS INTEGER) AS last \
                     FROM sharing_request_events WHERE request_id = $1",
                )
                .bind(step.id),
            )
            .await?;
        let seq: i32 = last.get("last")?;
        tx.execute(insert_event(step.id, seq + 1, &step.event))
            .await?;
        if let Some(g) = &step.grant {
            tx.execute(insert_grant(g)).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn import_grants(&self, grants: &[Grant]) -> StoreResult<usize> {
        let mut made = 0;
        for g in grants {
            let q = insert_grant(g).push(" ON CONFLICT (import_key) DO NOTHING");
            made += self.db.execute(q).await? as usize;
        }
        Ok(made)
    }

    async fn grant(&self, id: Uuid) -> StoreResult<Option<Grant>> {
        let q = Q::new(GRANT_COLUMNS).push(" WHERE id = $1").bind(id);
        self.db.fetch_optional_with(q, grant_from_row).await
    }

    async fn grants(&self, party: Party<'_>) -> StoreResult<Vec<Grant>> {
        let q = party_filter(Q::new(GRANT_COLUMNS), party)
            .push(" ORDER BY resource, consumer_department, consumer, created_at, id");
        self.db.fetch_all_with(q, grant_from_row).await
    }

    async fn live_grants(
        &self,
        consumer_kind: &str,
        consumer: &str,
        resource: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Grant>> {
        let mut q = Q::new(GRANT_COLUMNS)
            .push(" WHERE consumer_kind = ")
            .push_bind(consumer_kind)
            .push(" AND consumer = ")
            .push_bind(consumer);
        if let Some(r) = resource {
            q = q.push(" AND resource = ").push_bind(r);
        }
        let q = q
            .push(" AND revoked_at IS NULL AND valid_from <= ")
            .push_bind(now)
            .push(" AND (valid_until IS NULL OR valid_until > ")
            .push_bind(now)
            .push(") ORDER BY created_at DESC, id");
        self.db.fetch_all_with(q, grant_from_row).await
    }

    async fn live_system_grants(
        &self,
        department: &str,
        resource: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Grant>> {
        let q = Q::new(GRANT_COLUMNS)
            .push(
                " WHERE consumer_kind = 'system' AND consumer_department = $1 AND resource = $2 \
                 AND revoked_at IS NULL AND valid_from <= $3 \
                 AND (valid_until IS NULL OR valid_until > $4) ORDER BY created_at DESC, id",
            )
            .bind(department)
            .bind(resource)
            .bind(now)
            .bind(now);
        self.db.fetch_all_with(q, grant_from_row).await
    }

    async fn revoke_grant(
        &self,
        id: Uuid,
        provider: Option<&str>,
        by: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut q = Q::new(
            "UPDATE sharing_grants SET revoked_at = $1, revoked_by = $2, revoked_reason = $3 \
             WHERE id = $4 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(by)
        .bind(reason)
        .bind(id);
        if let Some(p) = provider {
            q = q.push(" AND provider = ").push_bind(p);
        }
        Ok(self.db.execute(q).await? == 1)
    }

    async fn count_grant_reads(&self, id: Uuid, n: i64, at: DateTime<Utc>) -> StoreResult<()> {
        let q = Q::new(
            "UPDATE sharing_grants SET reads = reads + $1, \
             last_read_at = CASE WHEN last_read_at IS NULL OR last_read_at < $2 THEN $2 ELSE last_read_at END \
             WHERE id = $3",
        )
        .bind(n)
        .bind(at)
        .bind(id);
        self.db.execute(q).await?;
        Ok(())
    }
}
