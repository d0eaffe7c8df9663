//! The audit trail's own tables (see `crate::audit`): staff, operator and department
//! actions in per-target chains (`audit_events`), the signed checkpoints of every
//! chain's head (`audit_checkpoints`), and the verifier's view of both record tables
//! (`data_access`, whose appends live in `shared.rs`, and `audit_events`).

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::db::{Exec, Lock, Q, Row, Tx};
use super::{SqlStore, StoreError, StoreResult, is_unique_violation};
use crate::audit::chain::{CHAIN_START, Checkpoint, LinkRow, link};

/// The key of the records' links, set once by the application (derived from the configured
/// audit secret, never stored). A store used without one (a test of the store alone) links
/// by plain SHA-256, which the verifier refuses beyond the first checkpoint.
#[derive(Default, Clone)]
pub struct LinkKey(Arc<OnceLock<Vec<u8>>>);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkKey(set: {})", self.0.get().is_some())
    }
}

impl LinkKey {
    /// Sets the key; a second call is ignored.
    pub fn set(&self, key: Vec<u8>) {
        let _ = self.0.set(key);
    }

    /// The key, once set.
    pub(crate) fn get(&self) -> Option<&[u8]> {
        self.0.get().map(Vec::as_slice)
    }
}

/// A staff, operator or department action to append to its target's chain.
#[derive(Debug, Clone, Serialize)]
pub struct NewAuditEvent {
    /// The chain: `case:<case no>`, `department:<uscc>`, `system:<id>`, `filing:<id>` ….
    pub chain: String,
    /// When.
    pub at: DateTime<Utc>,
    /// `applicant`, `clerk`, `officer`, `department`, `operator` or `system`.
    pub actor_kind: String,
    /// Account id, or `token:<id>` of a department system.
    pub actor_id: Option<String>,
    /// What was done (`case.accept`, `material.download`, `delivery.set` …).
    pub action: String,
    /// What it was done to (a case number, a department's USCC, an event id …).
    pub target: String,
    /// Particulars, never personal data (statuses, material ids, a mode).
    pub detail: Value,
}

impl NewAuditEvent {
    /// The canonical body its link covers.
    pub fn body(&self) -> String {
        serde_json::json!({
            "chain": self.chain,
            "at": self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "actor_kind": self.actor_kind,
            "actor_id": self.actor_id,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
        })
        .to_string()
    }
}

/// A stored action.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEventRow {
    /// Record id.
    pub id: Uuid,
    /// Position in its chain, from 1.
    pub seq: i64,
    /// The action.
    #[serde(flatten)]
    pub event: NewAuditEvent,
}

/// Which table of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditTable {
    /// Reads of personal data, one chain per subject (`access/<subject index>`).
    Access,
    /// Actions, one chain per target (`event/<chain>`).
    Events,
}

impl AuditTable {
    /// The prefix of its chains' names in checkpoints and reports.
    pub fn prefix(self) -> &'static str {
        match self {
            AuditTable::Access => "access/",
            AuditTable::Events => "event/",
        }
    }
}

/// The audit trail's records and checkpoints.
#[async_trait]
pub trait AuditStore {
    /// Appends actions to their chains (each its own transaction, retried on a
    /// concurrent append to the same chain).
    async fn append_audit_events(&self, events: &[NewAuditEvent]) -> StoreResult<()>;

    /// One chain's actions in order.
    async fn audit_events(&self, chain: &str) -> StoreResult<Vec<AuditEventRow>>;

    /// Records of one table in (chain, seq) order after `after`, at most `limit`.
    async fn audit_links(
        &self,
        table: AuditTable,
        after: Option<(String, i64)>,
        limit: i64,
    ) -> StoreResult<Vec<LinkRow>>;

    /// One chain's records from position `from` on (chain named with its prefix).
    async fn audit_chain_from(&self, chain: &str, from: i64) -> StoreResult<Vec<LinkRow>>;

    /// Every chain's last record: (chain with prefix, seq, link).
    async fn audit_heads(&self) -> StoreResult<Vec<(String, i64, String)>>;

    /// Stores a checkpoint; false when its position was taken (another instance's).
    async fn insert_audit_checkpoint(&self, cp: &Checkpoint) -> StoreResult<bool>;

    /// All checkpoints in order.
    async fn audit_checkpoints(&self) -> StoreResult<Vec<Checkpoint>>;
}

/// How often one append is tried when concurrent appends to its chain collide.
const APPEND_ATTEMPTS: u32 = 5;

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit_events(&self, events: &[NewAuditEvent]) -> StoreResult<()> {
        for ev in events {
            let ev = NewAuditEvent {
                at: ev.at.trunc_subsecs(6),
                ..ev.clone()
            };
            let mut attempt = 1;
            loop {
                let mut tx = self.db.begin_write().await?;
                let appended = match append_event_in(&mut tx, &ev, &self.audit).await {
                    Ok(()) => tx.commit().await,
                    Err(e) => Err(e),
                };
                match appended {
                    Err(e) if is_unique_violation(&e) && attempt < APPEND_ATTEMPTS => attempt += 1,
                    other => break other?,
                }
            }
        }
        Ok(())
    }

    async fn audit_events(&self, chain: &str) -> StoreResult<Vec<AuditEventRow>> {
        let q = Q::new("SELECT * FROM audit_events WHERE chain = $1 ORDER BY seq").bind(chain);
        self.db
            .fetch_all_with(q, |r| {
                Ok(AuditEventRow {
                    id: r.get("id")?,
                    seq: r.get("seq")?,
                    event: event_from_row(r)?,
                })
            })
            .await
    }

    async fn audit_links(
        &self,
        table: AuditTable,
        after: Option<(String, i64)>,
        limit: i64,
    ) -> StoreResult<Vec<LinkRow>> {
        let (chain, seq) = after.unwrap_or_default();
        let q = match table {
            AuditTable::Access => Q::new(
                "SELECT * FROM data_access WHERE subject_index > $1 \
                 OR (subject_index = $1 AND seq > $2) ORDER BY subject_index, seq LIMIT $3",
            ),
            AuditTable::Events => Q::new(
                "SELECT * FROM audit_events WHERE chain > $1 \
                 OR (chain = $1 AND seq > $2) ORDER BY chain, seq LIMIT $3",
            ),
        }
        .bind(chain)
        .bind(seq)
        .bind(limit);
        self.db.fetch_all_with(q, |r| link_row(table, r)).await
    }

    async fn audit_chain_from(&self, chain: &str, from: i64) -> StoreResult<Vec<LinkRow>> {
        let (table, q, name) = if let Some(c) = chain.strip_prefix(AuditTable::Access.prefix()) {
            (
                AuditTable::Access,
                Q::new(
                    "SELECT * FROM data_access WHERE subject_index = $1 AND seq >= $2 ORDER BY seq",
                ),
                c,
            )
        } else if let Some(c) = chain.strip_prefix(AuditTable::Events.prefix()) {
            (
                AuditTable::Events,
                Q::new("SELECT * FROM audit_events WHERE chain = $1 AND seq >= $2 ORDER BY seq"),
                c,
            )
        } else {
            return Ok(Vec::new());
        };
        let q = q.bind(name).bind(from);
        self.db.fetch_all_with(q, |r| link_row(table, r)).await
    }

    async fn audit_heads(&self) -> StoreResult<Vec<(String, i64, String)>> {
        let q = Q::new(
            "SELECT d.subject_index AS chain, d.seq, d.hash FROM data_access d \
             JOIN (SELECT subject_index, MAX(seq) AS m FROM data_access GROUP BY subject_index) t \
             ON t.subject_index = d.subject_index AND t.m = d.seq",
        );
        let mut heads = self
            .db
            .fetch_all_with(q, |r| {
                Ok((
                    format!(
                        "{}{}",
                        AuditTable::Access.prefix(),
                        r.get::<String>("chain")?
                    ),
                    r.get::<i64>("seq")?,
                    r.get::<String>("hash")?,
                ))
            })
            .await?;
        let q = Q::new(
            "SELECT e.chain, e.seq, e.hash FROM audit_events e \
             JOIN (SELECT chain, MAX(seq) AS m FROM audit_events GROUP BY chain) t \
             ON t.chain = e.chain AND t.m = e.seq",
        );
        heads.extend(
            self.db
                .fetch_all_with(q, |r| {
                    Ok((
                        format!(
                            "{}{}",
                            AuditTable::Events.prefix(),
                            r.get::<String>("chain")?
                        ),
                        r.get::<i64>("seq")?,
                        r.get::<String>("hash")?,
                    ))
                })
                .await?,
        );
        Ok(heads)
    }

    async fn insert_audit_checkpoint(&self, cp: &Checkpoint) -> StoreResult<bool> {
        let q = Q::new(
            "INSERT INTO audit_checkpoints (seq, at, records, chains, root, heads, prev, \
             public_key, signature) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(cp.seq)
        .bind(cp.at)
        .bind(cp.records)
        .bind(cp.chains)
        .bind(&cp.root)
        .bind(serde_json::json!(cp.heads))
        .bind(&cp.prev)
        .bind(&cp.public_key)
        .bind(&cp.signature);
        match self.db.execute(q).await {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn audit_checkpoints(&self) -> StoreResult<Vec<Checkpoint>> {
        let q = Q::new("SELECT * FROM audit_checkpoints ORDER BY seq");
        self.db
            .fetch_all_with(q, |r| {
                Ok(Checkpoint {
                    seq: r.get("seq")?,
                    at: r.get("at")?,
                    records: r.get("records")?,
                    chains: r.get("chains")?,
                    root: r.get("root")?,
                    heads: serde_json::from_value(r.get("heads")?)
                        .map_err(|e| StoreError::Corrupt(format!("bad checkpoint heads: {e}")))?,
                    prev: r.get("prev")?,
                    public_key: r.get("public_key")?,
                    signature: r.get("signature")?,
                })
            })
            .await
    }
}

/// Appends one action (its `at` already at microsecond precision) to its chain inside a
/// transaction: a case write's, or its own. The chain lock queues appends to one chain;
/// different chains never wait on each other.
pub(super) async fn append_event_in(
    tx: &mut Tx,
    ev: &NewAuditEvent,
    key: &LinkKey,
) -> StoreResult<()> {
    tx.lock(Lock::Chain, &ev.chain).await?;
    let q = Q::new("SELECT seq, hash FROM audit_events WHERE chain = $1 ORDER BY seq DESC LIMIT 1")
        .bind(&ev.chain);
    let (seq, prev) = match tx.fetch_optional(q).await? {
        Some(r) => (r.get::<i64>("seq")? + 1, r.get::<String>("hash")?),
        None => (1, CHAIN_START.to_owned()),
    };
    let id = Uuid::now_v7();
    let (kind, hash) = link(key.get(), &prev, seq, id, &ev.body());
    let q = Q::new(
        "INSERT INTO audit_events (id, chain, seq, at, actor_kind, actor_id, action, target, \
         detail, link, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    );
    let link = Link {
        id,
        seq,
        kind,
        prev: &prev,
        hash: &hash,
    };
    tx.execute(event_values(q, ev, &link)).await?;
    Ok(())
}

/// Where a record sits in its chain and how it is linked there.
pub(super) struct Link<'a> {
    pub id: Uuid,
    pub seq: i64,
    pub kind: &'static str,
    pub prev: &'a str,
    pub hash: &'a str,
}

/// Binds a record's twelve values (`id`, `chain`, `seq`, `at` … `detail`, `link`,
/// `prev_hash`, `hash`) as the next placeholders.
pub(super) fn event_values(q: Q, ev: &NewAuditEvent, l: &Link<'_>) -> Q {
    q.bind(l.id)
        .bind(&ev.chain)
        .bind(l.seq)
        .bind(ev.at)
        .bind(&ev.actor_kind)
        .bind(&ev.actor_id)
        .bind(&ev.action)
        .bind(&ev.target)
        .bind(ev.detail.clone())
        .bind(l.kind)
        .bind(l.prev)
        .bind(l.hash)
}

fn event_from_row(r: &Row) -> StoreResult<NewAuditEvent> {
    Ok(NewAuditEvent {
        chain: r.get("chain")?,
        at: r.get("at")?,
        actor_kind: r.get("actor_kind")?,
        actor_id: r.get("actor_id")?,
        action: r.get("action")?,
        target: r.get("target")?,
        detail: r.get("detail")?,
    })
}

fn link_row(table: AuditTable, r: &Row) -> StoreResult<LinkRow> {
    let (chain, body) = match table {
        AuditTable::Access => {
            let a = super::shared::access_from_row(r)?;
            (
                a.access.subject_index.clone(),
                super::shared::access_body(&a.access),
            )
        }
        AuditTable::Events => {
            let e = event_from_row(r)?;
            (e.chain.clone(), e.body())
        }
    };
    Ok(LinkRow {
        chain: format!("{}{chain}", table.prefix()),
        seq: r.get("seq")?,
        id: r.get("id")?,
        link: r.get("link")?,
        prev: r.get("prev_hash")?,
        hash: r.get("hash")?,
        body,
    })
}
