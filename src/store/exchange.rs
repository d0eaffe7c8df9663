//! Department exchange: how each department receives events, the delivery state of
//! every outbox event (leases, attempts, dead letters), and the keys that sign
//! deliveries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::db::{Claimed, Exec, Lock, Q, Row};
use super::{SqlStore, StoreResult};

/// One event for one department, with its delivery state.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// Event id (= CloudEvents id = webhook-id).
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// The history entry that caused it.
    pub case_seq: i32,
    /// Target department.
    pub department: String,
    /// CloudEvents type.
    pub event_type: String,
    /// What happened (case number, status, action …).
    pub payload: Value,
    /// Written.
    pub created_at: DateTime<Utc>,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts so far (numbering continues across redeliveries).
    pub attempts: i32,
    /// Attempts made before the last redelivery; the retry schedule restarts after them.
    pub retry_from: i32,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Last HTTP status.
    pub last_status: Option<i32>,
    /// Last error.
    pub last_error: Option<String>,
    /// Delivered (or acknowledged).
    pub delivered_at: Option<DateTime<Utc>>,
    /// The department's push endpoint, when it has one.
    pub endpoint: Option<String>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    /// Attempt number, from 1.
    pub attempt: i32,
    /// When.
    pub at: DateTime<Utc>,
    /// HTTP status, when the department answered.
    pub status: Option<i32>,
    /// Time to the answer (or the failure).
    pub latency_ms: i64,
    /// What went wrong.
    pub error: Option<String>,
}

/// What an attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// 2xx: durably received.
    Delivered,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// The schedule is exhausted: dead-lettered until someone redelivers.
    Dead,
}

/// How a department receives events.
#[derive(Debug, Clone, Serialize)]
pub struct DepartmentEndpoint {
    /// USCC.
    pub department: String,
    /// `push` or `pull`.
    pub mode: String,
    /// Push URL.
    pub endpoint: Option<String>,
    /// Base URL of the department's data API (for its `department_api` resources).
    pub data_api: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A stored signing key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// Key id.
    pub kid: String,
    /// Base64 seed (secret).
    pub secret: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Retires (rotation grace end).
    pub retires_at: Option<DateTime<Utc>>,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only this state.
    pub state: Option<String>,
    /// Only this department.
    pub department: Option<String>,
    /// Only this case.
    pub case_id: Option<Uuid>,
    /// Only the deliveries after this one (oldest first: created later, or at the same
    /// moment with a greater id), for keyset paging.
    pub after: Option<super::paging::Cursor>,
    /// At most.
    pub limit: i64,
}

/// Every delivery state: a list without a state filter merges one ordered walk per
/// state (see [`ExchangeStore::deliveries`]).
pub const DELIVERY_STATES: [&str; 3] = ["pending", "delivered", "dead"];

/// Endpoints, deliveries and signing keys.
#[async_trait]
pub trait ExchangeStore: Send + Sync {
    /// Sets how a department receives events (keeping its data API URL when `e` has
    /// none).
    async fn set_endpoint(&self, e: &DepartmentEndpoint) -> StoreResult<()>;

    /// Every configured department endpoint.
    async fn endpoints(&self) -> StoreResult<Vec<DepartmentEndpoint>>;

    /// Sets (or clears) a department's data API URL, keeping its delivery mode (a
    /// department without a row gets `pull`).
    async fn set_data_api(&self, department: &str, url: Option<&str>) -> StoreResult<()>;

    /// Leases up to `limit` push deliveries that are due at `now`, until `lease_until`:
    /// only the earliest undelivered event of each (case, department), so a case's events
    /// arrive in order. On PostgreSQL several workers claim with `FOR UPDATE SKIP LOCKED`.
    async fn claim_push(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        self.claim_push_except(now, lease_until, limit, &[]).await
    }

    /// As [`ExchangeStore::claim_push`], leaving out the events of these departments
    /// (those the worker already has enough attempts under way for).
    async fn claim_push_except(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        skip: &[String],
    ) -> StoreResult<Vec<Delivery>>;

    /// Gives claimed events back before their lease runs out (the worker claimed more
    /// than it could start).
    async fn release_push(&self, event_ids: &[Uuid]) -> StoreResult<()>;

    /// Records an attempt and its outcome, releasing the lease.
    async fn finish_attempt(
        &self,
        event_id: Uuid,
        attempt: &AttemptRow,
        outcome: AttemptOutcome,
    ) -> StoreResult<()>;

    /// Leases up to `limit` events of a pull department (same ordering rule as push).
    async fn lease_inbox(
        &self,
        department: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>>;

    /// Acknowledges a pulled event; false when it is not this department's pending event.
    async fn ack(&self, department: &str, event_id: Uuid, now: DateTime<Utc>) -> StoreResult<bool>;

    /// Deliveries matching a filter, oldest first. Each state is one walk along an
    /// index `(state, created_at, id)` or `(department, state, created_at, id)` from the
    /// cursor; without a state filter the walks of every state are merged, since one
    /// index cannot give the order across them.
    async fn deliveries(&self, f: &DeliveryFilter) -> StoreResult<Vec<Delivery>>;

    /// Puts a dead-lettered delivery back in the queue; false when it is not dead.
    async fn redeliver(&self, event_id: Uuid) -> StoreResult<bool>;

    /// The attempts of one delivery.
    async fn attempts(&self, event_id: Uuid) -> StoreResult<Vec<AttemptRow>>;

    /// Stores `first` if there is no signing key yet; returns all keys.
    async fn ensure_signing_key(&self, first: &StoredKey) -> StoreResult<Vec<StoredKey>>;

    /// Replaces the stored keys with this set (after a rotation).
    async fn save_signing_keys(&self, keys: &[StoredKey]) -> StoreResult<()>;
}

/// The delivery ordering rule, as SQL over an outbox row aliased `o`: no earlier event of
/// the same case for the same department is still undelivered. Both the push claim and
/// the pull inbox use it, so each department sees a case's events in order.
const NEXT_IN_ORDER: &str = "NOT EXISTS (SELECT 1 FROM outbox e \
     WHERE e.case_id = o.case_id AND e.department = o.department AND e.state <> 'delivered' \
     AND (e.case_seq < o.case_seq OR (e.case_seq = o.case_seq AND e.id < o.id)))";

const DELIVERY_SELECT: &str = "SELECT o.id, o.case_id, o.case_seq, o.department, o.event_type, \
     o.payload, o.created_at, o.state, o.attempts, o.retry_from, o.next_attempt_at, o.last_status, \
     o.last_error, o.delivered_at, d.endpoint \
     FROM outbox o LEFT JOIN department_endpoints d ON d.department = o.department";

#[async_trait]
impl ExchangeStore for SqlStore {
    async fn set_endpoint(&self, e: &DepartmentEndpoint) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO department_endpoints (department, mode, endpoint, data_api, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (department) DO UPDATE SET mode = excluded.mode, endpoint = excluded.endpoint, \
             data_api = COALESCE(excluded.data_api, department_endpoints.data_api), \
             updated_at = excluded.updated_at",
        )
        .bind(&e.department)
        .bind(&e.mode)
        .bind(&e.endpoint)
        .bind(&e.data_api)
        .bind(e.updated_at);
        self.db.execute(q).await?;
        Ok(())
    }

    async fn endpoints(&self) -> StoreResult<Vec<DepartmentEndpoint>> {
        let q = Q::new("SELECT * FROM department_endpoints ORDER BY department");
        self.db
            .fetch_all_with(q, |r| {
                Ok(DepartmentEndpoint {
                    department: r.get("department")?,
                    mode: r.get("mode")?,
                    endpoint: r.get("endpoint")?,
                    data_api: r.get("data_api")?,
                    updated_at: r.get("updated_at")?,
                })
            })
            .await
    }

    async fn set_data_api(&self, department: &str, url: Option<&str>) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO department_endpoints (department, mode, endpoint, data_api, updated_at) \
             VALUES ($1, 'pull', NULL, $2, $3) \
             ON CONFLICT (department) DO UPDATE SET data_api = excluded.data_api, \
             updated_at = excluded.updated_at",
        )
        .bind(department)
        .bind(url)
        .bind(Utc::now());
        self.db.execute(q).await?;
        Ok(())
    }

    async fn claim_push_except(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        skip: &[String],
    ) -> StoreResult<Vec<Delivery>> {
        // One walk per push department along `(department, state, created_at, id)`,
        // each stopping after `limit` claimable events, merged oldest first: a backlog of
        // one department, or a pull department's pending events, costs the claim
        // nothing. (One query over every pending event joined to the push departments
        // read and sorted the whole backlog: 185 ms at 1,700 pending events.)
        let departments = self
            .db
            .fetch_all_with(
                Q::new(
                    "SELECT department FROM department_endpoints WHERE mode = 'push' \
                     ORDER BY department",
                ),
                |r| r.get::<String>("department"),
            )
            .await?;
        let departments: Vec<String> = departments
            .into_iter()
            .filter(|d| !skip.contains(d))
            .collect();
        if departments.is_empty() || limit <= 0 {
            return Ok(Vec::new());
        }
        let mut q = Q::new("UPDATE outbox SET lease_until = ")
            .push_bind(lease_until)
            .push(" WHERE id IN (SELECT id FROM (");
        for (i, d) in departments.iter().enumerate() {
            if i > 0 {
                q = q.push(" UNION ALL ");
            }
            q = q
                .push("SELECT * FROM (SELECT o.id, o.created_at FROM outbox o WHERE o.department = ")
                .push_bind(d.as_str())
                .push(" AND o.state = 'pending' AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ")
                .push_bind(now)
                .push(") AND (o.lease_until IS NULL OR o.lease_until < ")
                .push_bind(now)
                .push(") AND ")
                .push(NEXT_IN_ORDER)
                .push(" ORDER BY o.created_at, o.id LIMIT ")
                .push_bind(limit)
                .push(self.db.skip_locked(Claimed::Outbox))
                .push(") AS w");
        }
        let q = q
            .push(") AS u ORDER BY created_at, id LIMIT ")
            .push_bind(limit)
            .push(") RETURNING id");
        self.leased(q).await
    }

    async fn release_push(&self, event_ids: &[Uuid]) -> StoreResult<()> {
        if event_ids.is_empty() {
            return Ok(());
        }
        let q = Q::new("UPDATE outbox SET lease_until = NULL WHERE state = 'pending' AND id IN (")
            .push_list(event_ids.iter().copied())
            .push(")");
        self.db.execute(q).await?;
        Ok(())
    }

    async fn finish_attempt(
        &self,
        event_id: Uuid,
        a: &AttemptRow,
        outcome: AttemptOutcome,
    ) -> StoreResult<()> {
        let (state, next, delivered) = match outcome {
            AttemptOutcome::Delivered => ("delivered", None, Some(a.at)),
            AttemptOutcome::RetryAt(t) => ("pending", Some(t), None),
            AttemptOutcome::Dead => ("dead", None, None),
        };
        let latency = a.latency_ms.clamp(0, i64::from(i32::MAX)) as i32;
        // The delivery's new state: `$1` … `$7`.
        let update = |q: Q| {
            q.push(
                "UPDATE outbox SET state = $1, attempts = $2, next_attempt_at = $3, \
                 delivered_at = $4, lease_until = NULL, last_status = $5, last_error = $6 \
                 WHERE id = $7",
            )
            .bind(state)
            .bind(a.attempt)
            .bind(next)
            .bind(delivered)
            .bind(a.status)
            .bind(&a.error)
            .bind(event_id)
        };
        if self.db.backend() == "postgres" {
            // The attempt and the delivery's new state in one statement (one round trip).
            let q = update(Q::new(
                "WITH a AS (INSERT INTO delivery_attempts (event_id, attempt, at, status, \
                   latency_ms, error) VALUES ($7, $2, $8, $5, $9, $6)) ",
            ))
            .bind(a.at)
            .bind(latency);
            self.db.execute(q).await?;
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        let q = Q::new(
            "INSERT INTO delivery_attempts (event_id, attempt, at, status, latency_ms, error) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(event_id)
        .bind(a.attempt)
        .bind(a.at)
        .bind(a.status)
        .bind(latency)
        .bind(&a.error);
        tx.execute(q).await?;
        tx.execute(update(Q::new(""))).await?;
        tx.commit().await
    }

    async fn lease_inbox(
        &self,
        department: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        let q = Q::new(
            "UPDATE outbox SET lease_until = $1 WHERE id IN ( \
               SELECT o.id FROM outbox o \
               WHERE o.department = $2 AND o.state = 'pending' \
                 AND NOT EXISTS (SELECT 1 FROM department_endpoints d \
                   WHERE d.department = o.department AND d.mode = 'push') \
                 AND (o.lease_until IS NULL OR o.lease_until < $3)",
        )
        .bind(lease_until)
        .bind(department)
        .bind(now);
        self.lease(q, limit).await
    }

    async fn ack(&self, department: &str, event_id: Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
        let q = Q::new(
            "UPDATE outbox SET state = 'delivered', delivered_at = $1, lease_until = NULL \
             WHERE id = $2 AND department = $3 AND state = 'pending'",
        )
        .bind(now)
        .bind(event_id)
        .bind(department);
        Ok(self.db.execute(q).await? == 1)
    }

    async fn deliveries(&self, f: &DeliveryFilter) -> StoreResult<Vec<Delivery>> {
        // one case's deliveries are few: no need to walk each state
        let states: Vec<Option<&str>> = match (&f.state, f.case_id) {
            (Some(s), _) => vec![Some(s.as_str())],
            (None, Some(_)) => vec![None],
            (None, None) => DELIVERY_STATES.into_iter().map(Some).collect(),
        };
        // one walk: the deliveries of one state (and department, case) after the cursor
        let walk = |mut q: Q, alias: &'static str, state: Option<&str>| {
            q = q.push("1 = 1");
            if let Some(s) = state {
                q = q.push(" AND ").push(alias).push("state = ").push_bind(s);
            }
            if let Some(d) = &f.department {
                q = q
                    .push(" AND ")
                    .push(alias)
                    .push("department = ")
                    .push_bind(d);
            }
            if let Some(c) = f.case_id {
                q = q.push(" AND ").push(alias).push("case_id = ").push_bind(c);
            }
            if let Some(c) = &f.after {
                q = q
                    .push(" AND (")
                    .push(alias)
                    .push("created_at, ")
                    .push(alias)
                    .push("id) > (")
                    .push_bind(c.at)
                    .push(", ")
                    .push_bind(c.id)
                    .push(")");
            }
            q
        };
        let q = if let [state] = states.as_slice() {
            walk(Q::new(DELIVERY_SELECT).push(" WHERE "), "o.", *state)
        } else {
            let mut q = Q::new(DELIVERY_SELECT).push(" WHERE o.id IN (SELECT id FROM (");
            for (i, state) in states.iter().enumerate() {
                if i > 0 {
                    q = q.push(" UNION ALL ");
                }
                q = walk(
                    q.push("SELECT * FROM (SELECT id, created_at FROM outbox WHERE "),
                    "",
                    *state,
                )
                .push(" ORDER BY created_at, id LIMIT ")
                .push_bind(f.limit)
                .push(") AS b");
            }
            q.push(") AS u ORDER BY created_at, id LIMIT ")
                .push_bind(f.limit)
                .push(")")
        };
        let q = q
            .push(" ORDER BY o.created_at, o.id LIMIT ")
            .push_bind(f.limit);
        self.db.fetch_all_with(q, delivery_from_row).await
    }

    async fn redeliver(&self, event_id: Uuid) -> StoreResult<bool> {
        // Attempt numbers continue; the retry schedule restarts after `retry_from`.
        let q = Q::new(
            "UPDATE outbox SET state = 'pending', retry_from = attempts, next_attempt_at = NULL, \
             lease_until = NULL WHERE id = $1 AND state = 'dead'",
        )
        .bind(event_id);
        Ok(self.db.execute(q).await? == 1)
    }

    async fn attempts(&self, event_id: Uuid) -> StoreResult<Vec<AttemptRow>> {
        let q = Q::new("SELECT * FROM delivery_attempts WHERE event_id = $1 ORDER BY attempt")
            .bind(event_id);
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

    async fn ensure_signing_key(&self, first: &StoredKey) -> StoreResult<Vec<StoredKey>> {
        // Instances starting together take turns, so exactly one first key is stored.
        // Secrets are stored wrapped by the key-encryption key and unwrapped here; one
        // kept in plain text (from before wrapping) is wrapped now.
        let mut tx = self.db.begin_write().await?;
        tx.lock(Lock::Keyring, "signing_keys").await?;
        let q = Q::new(
            "INSERT INTO signing_keys (kid, secret, created_at, retires_at) \
             SELECT $1, $2, $3, NULL WHERE NOT EXISTS (SELECT 1 FROM signing_keys)",
        )
        .bind(&first.kid)
        .bind(
            self.kek
                .wrap(&signing_key_name(&first.kid), first.secret.as_bytes())?,
        )
        .bind(first.created_at);
        tx.execute(q).await?;
        let q = Q::new("SELECT * FROM signing_keys ORDER BY created_at");
        let stored = tx
            .fetch_all_with(q, |r| {
                Ok(StoredKey {
                    kid: r.get("kid")?,
                    secret: r.get("secret")?,
                    created_at: r.get("created_at")?,
                    retires_at: r.get("retires_at")?,
                })
            })
            .await?;
        let mut keys = Vec::with_capacity(stored.len());
        for k in stored {
            let (plain, again) = self.kek.open(&signing_key_name(&k.kid), &k.secret)?;
            if let Some(again) = again {
                let q = Q::new("UPDATE signing_keys SET secret = $1 WHERE kid = $2")
                    .bind(again)
                    .bind(&k.kid);
                tx.execute(q).await?;
                tracing::info!(
                    kid = %k.kid,
                    "a delivery signing key was wrapped with the current key-encryption key"
                );
            }
            keys.push(StoredKey {
                secret: String::from_utf8(plain).map_err(|_| {
                    super::StoreError::Corrupt(format!("signing key {} is not text", k.kid))
                })?,
                ..k
            });
        }
        tx.commit().await?;
        Ok(keys)
    }

    async fn save_signing_keys(&self, keys: &[StoredKey]) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        tx.execute(Q::new("DELETE FROM signing_keys")).await?;
        for k in keys {
            let q = Q::new(
                "INSERT INTO signing_keys (kid, secret, created_at, retires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&k.kid)
            .bind(
                self.kek
                    .wrap(&signing_key_name(&k.kid), k.secret.as_bytes())?,
            )
            .bind(k.created_at)
            .bind(k.retires_at);
            tx.execute(q).await?;
        }
        tx.commit().await
    }
}

impl SqlStore {
    /// Completes a lease statement (`UPDATE outbox SET lease_until … WHERE id IN
    /// (SELECT o.id … WHERE <which events>`) with the ordering rule, the limit and, on
    /// PostgreSQL, the row locks that keep concurrent claims apart; runs it and reads
    /// the leased deliveries, in delivery order.
    async fn lease(&self, which: Q, limit: i64) -> StoreResult<Vec<Delivery>> {
        let lease = which
            .push(" AND ")
            .push(NEXT_IN_ORDER)
            .push(" ORDER BY o.created_at, o.id LIMIT ")
            .push_bind(limit)
            .push(self.db.skip_locked(Claimed::Outbox))
            .push(") RETURNING id");
        self.leased(lease).await
    }

    /// Runs a lease (`UPDATE … RETURNING id`) and reads the leased events, oldest first.
    async fn leased(&self, lease: Q) -> StoreResult<Vec<Delivery>> {
        let ids = self
            .db
            .fetch_all_with(lease, |r| r.get::<Uuid>("id"))
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let q = Q::new(DELIVERY_SELECT)
            .push(" WHERE o.id IN (")
            .push_list(ids)
            .push(") ORDER BY o.created_at, o.id");
        self.db.fetch_all_with(q, delivery_from_row).await
    }
}

fn delivery_from_row(r: &Row) -> StoreResult<Delivery> {
    Ok(Delivery {
        id: r.get("id")?,
        case_id: r.get("case_id")?,
        case_seq: r.get("case_seq")?,
        department: r.get("department")?,
        event_type: r.get("event_type")?,
        payload: r.get("payload")?,
        created_at: r.get("created_at")?,
        state: r.get("state")?,
        attempts: r.get("attempts")?,
        retry_from: r.get("retry_from")?,
        next_attempt_at: r.get("next_attempt_at")?,
        last_status: r.get("last_status")?,
        last_error: r.get("last_error")?,
        delivered_at: r.get("delivered_at")?,
        endpoint: r.get("endpoint")?,
    })
}

/// The name a signing key is wrapped under (its associated data).
fn signing_key_name(kid: &str) -> String {
    format!("signing_key:{kid}")
}
