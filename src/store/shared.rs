//! Shared data (数据共享): the base library, the data-access audit trail (one hash
//! chain per subject), consents to prefill, and the figures of how much shared data did
//! the work.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::db::{Arg, Exec, Lock, Q, ROWS_PER_STATEMENT, Row, Tx};
use super::{SqlStore, StoreError, StoreResult, is_unique_violation};

/// One record of the base library: a subject's items of one resource (or one licence).
#[derive(Debug, Clone, PartialEq)]
pub struct BaseRecord {
    /// Resource code.
    pub resource: String,
    /// Resident ID number or USCC.
    pub subject: String,
    /// Licence item id in a licence library, else empty.
    pub record: String,
    /// Item id → value.
    pub data: Value,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl BaseRecord {
    /// SHA-256 of the canonical JSON of the data (serde_json keeps object keys sorted),
    /// so that importing the same row again is recognised and writes nothing.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.data.to_string().as_bytes()))
    }
}

/// What an upsert of base records did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UpsertCounts {
    /// New records.
    pub added: u64,
    /// Records whose data changed.
    pub updated: u64,
    /// Records that were already exactly so.
    pub unchanged: u64,
}

/// A read of someone's data, to be appended to their audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct NewAccess {
    /// HMAC blind index of the subject (see `sharing::audit::subject_index`).
    pub subject_index: String,
    /// `person` or `enterprise`.
    pub subject_kind: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Resource code.
    pub resource: String,
    /// Item ids read.
    pub items: Vec<String>,
    /// `applicant`, `clerk`, `department` or `system`.
    pub reader_kind: String,
    /// Account id, department USCC or token id of the reader.
    pub reader_id: Option<String>,
    /// The reader's name as shown to the subject (a clerk's name and hall, a department).
    pub reader_name: String,
    /// Why (表单预填, 窗口受理核验, 部门审查 …).
    pub purpose: String,
    /// The service.
    pub service_code: Option<String>,
    /// The case, when there is one.
    pub case_no: Option<String>,
}

/// A stored audit record.
#[derive(Debug, Clone, Serialize)]
pub struct AccessRecord {
    /// Record id.
    pub id: Uuid,
    /// Position in the subject's chain, from 1.
    pub seq: i64,
    /// The read.
    #[serde(flatten)]
    pub access: NewAccess,
    /// Hash of the previous record in the chain (64 zeros for the first).
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// The hash of the first record's predecessor.
pub use crate::audit::chain::CHAIN_START;

/// The canonical body of a read, which its link covers.
pub fn access_body(a: &NewAccess) -> String {
    serde_json::json!({
        "subject_index": a.subject_index,
        "subject_kind": a.subject_kind,
        "at": a.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "resource": a.resource,
        "items": a.items,
        "reader_kind": a.reader_kind,
        "reader_id": a.reader_id,
        "reader_name": a.reader_name,
        "purpose": a.purpose,
        "service_code": a.service_code,
        "case_no": a.case_no,
    })
    .to_string()
}

/// The plain (unkeyed, legacy) chain hash of a record: SHA-256 over the previous hash,
/// its position, id and the canonical JSON of the read. A store without the audit link
/// key writes it; the gateway's records are linked by HMAC (see `crate::audit`).
pub fn chain_hash(prev_hash: &str, seq: i64, id: Uuid, a: &NewAccess) -> String {
    crate::audit::chain::link(None, prev_hash, seq, id, &access_body(a)).1
}

/// Checks one subject's plain-hash records (in `seq` order): consecutive positions from 1,
/// each linking to its predecessor's hash and hashing to its own. Answers the first broken
/// position, if any. The keyed check of the whole trail is `crate::audit::verify`.
pub fn verify_chain(records: &[AccessRecord]) -> Result<(), i64> {
    let mut prev = CHAIN_START.to_owned();
    for (i, r) in records.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        if r.seq != expected_seq
            || r.prev_hash != prev
            || chain_hash(&prev, r.seq, r.id, &r.access) != r.hash
        {
            return Err(expected_seq);
        }
        prev = r.hash.clone();
    }
    Ok(())
}

/// An applicant's consent to prefill a service's form from the named resources.
#[derive(Debug, Clone)]
pub struct ConsentRow {
    /// Consent id.
    pub id: Uuid,
    /// The applicant's account.
    pub account: Uuid,
    /// The service.
    pub service_code: String,
    /// Resource codes agreed to.
    pub resources: Vec<String>,
    /// When.
    pub given_at: DateTime<Utc>,
}

/// Per-service figures of how much shared data did the work (the city's assessment).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SharingFigures {
    /// Service code.
    pub service_code: String,
    /// Cases lodged.
    pub cases: i64,
    /// Form fields with a value, over those cases.
    pub fields_filled: i64,
    /// Of which filled from shared data and not changed.
    pub fields_prefilled: i64,
    /// Materials provided, over those cases (uploaded or substituted).
    pub materials: i64,
    /// Of which not uploaded because shared data or an e-licence stood in (免提交).
    pub materials_substituted: i64,
}

/// The base library, audit chains, consents and sharing figures.
#[async_trait]
pub trait SharedDataStore: Send + Sync {
    /// Inserts or updates base-library records in one transaction. A record whose data
    /// is unchanged (same digest) is not written at all, so re-importing a file changes
    /// nothing, `updated_at` included.
    async fn upsert_base_records(&self, rows: &[BaseRecord]) -> StoreResult<UpsertCounts>;

    /// A subject's records of one resource (one, or one per licence in a licence library).
    async fn base_records(&self, resource: &str, subject: &str) -> StoreResult<Vec<BaseRecord>>;

    /// How many records a resource holds.
    async fn count_base_records(&self, resource: &str) -> StoreResult<i64>;

    /// Appends reads to their subjects' audit chains (each gets the next `seq` of its
    /// subject and `chain_hash` over the previous record's hash); retried on a concurrent
    /// append to the same chain.
    async fn append_data_access(&self, reads: &[NewAccess]) -> StoreResult<()>;

    /// The audit records of these subjects, newest first, at most `limit`.
    async fn data_access(
        &self,
        subject_indexes: &[String],
        limit: i64,
    ) -> StoreResult<Vec<AccessRecord>>;

    /// One subject's whole chain in `seq` order, to verify it.
    async fn data_access_chain(&self, subject_index: &str) -> StoreResult<Vec<AccessRecord>>;

    /// Records a consent to prefill.
    async fn insert_consent(&self, c: &ConsentRow) -> StoreResult<()>;

    /// The newest consent of an account for a service.
    async fn latest_consent(
        &self,
        account: Uuid,
        service_code: &str,
    ) -> StoreResult<Option<ConsentRow>>;

    /// Per-service figures of prefilled fields and substituted materials over all cases.
    async fn sharing_figures(&self) -> StoreResult<Vec<SharingFigures>>;
}

/// How often one read is tried when concurrent appends to its subject's chain collide.
const APPEND_ATTEMPTS: u32 = 8;

/// A base record's key: (resource, subject, record).
type RecordKey<'a> = (&'a str, &'a str, &'a str);

#[async_trait]
impl SharedDataStore for SqlStore {
    async fn upsert_base_records(&self, rows: &[BaseRecord]) -> StoreResult<UpsertCounts> {
        let mut counts = UpsertCounts::default();
        if rows.is_empty() {
            return Ok(counts);
        }
        // Reads the digests and then writes: on SQLite this must hold the write lock
        // from the start, or a concurrent importer's commit would void the read.
        let mut tx = self.db.begin_write().await?;
        // The stored digests of the batch, a chunk of keys per round trip …
        let batch: HashMap<RecordKey, usize> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (record_key(r), i))
            .collect();
        let mut current: HashMap<RecordKey, String> = HashMap::new();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let q = Q::new(
                "SELECT resource, subject, record, digest FROM base_records \
                 WHERE (resource, subject, record) IN (VALUES ",
            )
            .push_rows(chunk.iter().map(|r| {
                [
                    Arg::from(&r.resource),
                    Arg::from(&r.subject),
                    Arg::from(&r.record),
                ]
            }))
            .push(")");
            for r in tx.fetch_all(q).await? {
                let (resource, subject, record): (String, String, String) =
                    (r.get("resource")?, r.get("subject")?, r.get("record")?);
                // Only keys of this batch come back; key the map by the batch's strings.
                if let Some(&i) = batch.get(&(resource.as_str(), subject.as_str(), record.as_str()))
                {
                    current.insert(record_key(&rows[i]), r.get("digest")?);
                }
            }
        }
        // … classified in order, as if the rows were written one by one; a record named
        // twice in the batch is written once, with its last data …
        let mut writes: HashMap<RecordKey, (&BaseRecord, String)> = HashMap::new();
        for row in rows {
            let key = record_key(row);
            let digest = row.digest();
            match current.get(&key) {
                Some(d) if *d == digest => {
                    counts.unchanged += 1;
                    continue;
                }
                Some(_) => counts.updated += 1,
                None => counts.added += 1,
            }
            current.insert(key, digest.clone());
            writes.insert(key, (row, digest));
        }
        // … and one statement per chunk for the writes, in key order (a consistent lock
        // order for concurrent importers). The WHERE keeps a record whose data ends up
        // as stored untouched, `updated_at` included.
        let mut writes: Vec<_> = writes.into_values().collect();
        writes.sort_by(|a, b| record_key(a.0).cmp(&record_key(b.0)));
        for chunk in writes.chunks(ROWS_PER_STATEMENT) {
            let q = Q::new(
                "INSERT INTO base_records (resource, subject, record, data, digest, updated_at) VALUES ",
            )
            .push_rows(chunk.iter().map(|(row, digest)| {
                [
                    Arg::from(&row.resource),
                    Arg::from(&row.subject),
                    Arg::from(&row.record),
                    Arg::from(&row.data),
                    Arg::from(digest),
                    Arg::from(row.updated_at),
                ]
            }))
            .push(
                " ON CONFLICT (resource, subject, record) DO UPDATE SET data = excluded.data, \
                 digest = excluded.digest, updated_at = excluded.updated_at \
                 WHERE base_records.digest <> excluded.digest",
            );
            tx.execute(q).await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn base_records(&self, resource: &str, subject: &str) -> StoreResult<Vec<BaseRecord>> {
        let q = Q::new(
            "SELECT resource, subject, record, data, updated_at FROM base_records \
             WHERE resource = $1 AND subject = $2 ORDER BY record",
        )
        .bind(resource)
        .bind(subject);
        self.db
            .fetch_all_with(q, |r| {
                Ok(BaseRecord {
                    resource: r.get("resource")?,
                    subject: r.get("subject")?,
                    record: r.get("record")?,
                    data: r.get("data")?,
                    updated_at: r.get("updated_at")?,
                })
            })
            .await
    }

    async fn count_base_records(&self, resource: &str) -> StoreResult<i64> {
        let q = Q::new("SELECT COUNT(*) AS n FROM base_records WHERE resource = $1").bind(resource);
        self.db.fetch_one(q).await?.get("n")
    }

    async fn append_data_access(&self, reads: &[NewAccess]) -> StoreResult<()> {
        for read in reads {
            // The hash covers the time at microsecond precision, which is what is stored.
            let read = NewAccess {
                at: read.at.trunc_subsecs(6),
                ..read.clone()
            };
            let mut attempt = 1;
            loop {
                let mut tx = self.db.begin_write().await?;
                let appended = match append_access_in(&mut tx, &read, &self.audit).await {
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

    async fn data_access(
        &self,
        subject_indexes: &[String],
        limit: i64,
    ) -> StoreResult<Vec<AccessRecord>> {
        if subject_indexes.is_empty() {
            return Ok(Vec::new());
        }
        let q = Q::new("SELECT * FROM data_access WHERE subject_index IN (")
            .push_list(subject_indexes)
            .push(") ORDER BY at DESC, seq DESC, id DESC LIMIT ")
            .push_bind(limit);
        self.db.fetch_all_with(q, access_from_row).await
    }

    async fn data_access_chain(&self, subject_index: &str) -> StoreResult<Vec<AccessRecord>> {
        let q = Q::new("SELECT * FROM data_access WHERE subject_index = $1 ORDER BY seq")
            .bind(subject_index);
        self.db.fetch_all_with(q, access_from_row).await
    }

    async fn insert_consent(&self, c: &ConsentRow) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO consents (id, account, service_code, resources, given_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(c.id)
        .bind(c.account)
        .bind(&c.service_code)
        .bind(serde_json::json!(c.resources))
        .bind(c.given_at);
        self.db.execute(q).await?;
        Ok(())
    }

    async fn latest_consent(
        &self,
        account: Uuid,
        service_code: &str,
    ) -> StoreResult<Option<ConsentRow>> {
        let q = Q::new(
            "SELECT * FROM consents WHERE account = $1 AND service_code = $2 \
             ORDER BY given_at DESC, id DESC LIMIT 1",
        )
        .bind(account)
        .bind(service_code);
        let Some(r) = self.db.fetch_optional(q).await? else {
            return Ok(None);
        };
        Ok(Some(ConsentRow {
            id: r.get("id")?,
            account: r.get("account")?,
            service_code: r.get("service_code")?,
            resources: serde_json::from_value(r.get("resources")?)
                .map_err(|e| StoreError::Corrupt(format!("bad consent resources: {e}")))?,
            given_at: r.get("given_at")?,
        }))
    }

    async fn sharing_figures(&self) -> StoreResult<Vec<SharingFigures>> {
        // CAST: PostgreSQL sums BIGINT counts to NUMERIC.
        let q = Q::new(
            "SELECT c.service_code, COUNT(*) AS cases, \
             CAST(COALESCE(SUM(c.fields_filled), 0) AS BIGINT) AS fields_filled, \
             CAST(COALESCE(SUM(c.fields_prefilled), 0) AS BIGINT) AS fields_prefilled, \
             CAST(COALESCE(SUM(m.n), 0) AS BIGINT) AS materials, \
             CAST(COALESCE(SUM(m.s), 0) AS BIGINT) AS materials_substituted \
             FROM cases c LEFT JOIN ( \
               SELECT case_id, COUNT(*) AS n, SUM(CASE WHEN substituted THEN 1 ELSE 0 END) AS s \
               FROM case_materials GROUP BY case_id) m ON m.case_id = c.id \
             GROUP BY c.service_code ORDER BY c.service_code",
        );
        self.db
            .fetch_all_with(q, |r| {
                Ok(SharingFigures {
                    service_code: r.get("service_code")?,
                    cases: r.get("cases")?,
                    fields_filled: r.get("fields_filled")?,
                    fields_prefilled: r.get("fields_prefilled")?,
                    materials: r.get("materials")?,
                    materials_substituted: r.get("materials_substituted")?,
                })
            })
            .await
    }
}

fn record_key(r: &BaseRecord) -> RecordKey<'_> {
    (r.resource.as_str(), r.subject.as_str(), r.record.as_str())
}

/// Appends one read (its `at` already at microsecond precision) to its subject's chain,
/// inside a transaction: a case write's, or its own. The chain lock queues concurrent
/// appends to one subject; should two still collide on `(subject_index, seq)`, the
/// unique violation aborts the transaction and the caller retries.
pub(super) async fn append_access_in(
    tx: &mut Tx,
    a: &NewAccess,
    key: &super::audit::LinkKey,
) -> StoreResult<()> {
    tx.lock(Lock::Chain, &a.subject_index).await?;
    let q = Q::new(
        "SELECT seq, hash FROM data_access WHERE subject_index = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(&a.subject_index);
    let (seq, prev_hash) = match tx.fetch_optional(q).await? {
        Some(r) => (r.get::<i64>("seq")? + 1, r.get::<String>("hash")?),
        None => (1, CHAIN_START.to_owned()),
    };
    let id = Uuid::now_v7();
    let (link, hash) = crate::audit::chain::link(key.get(), &prev_hash, seq, id, &access_body(a));
    let q = Q::new(
        "INSERT INTO data_access (id, subject_index, seq, at, subject_kind, resource, items, \
         reader_kind, reader_id, reader_name, purpose, service_code, case_no, prev_hash, hash, \
         link) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(id)
    .bind(&a.subject_index)
    .bind(seq)
    .bind(a.at)
    .bind(&a.subject_kind)
    .bind(&a.resource)
    .bind(serde_json::json!(a.items))
    .bind(&a.reader_kind)
    .bind(&a.reader_id)
    .bind(&a.reader_name)
    .bind(&a.purpose)
    .bind(&a.service_code)
    .bind(&a.case_no)
    .bind(&prev_hash)
    .bind(&hash)
    .bind(link);
    tx.execute(q).await?;
    Ok(())
}

pub(super) fn access_from_row(r: &Row) -> StoreResult<AccessRecord> {
    Ok(AccessRecord {
        id: r.get("id")?,
        seq: r.get("seq")?,
        access: NewAccess {
            subject_index: r.get("subject_index")?,
            subject_kind: r.get("subject_kind")?,
            at: r.get("at")?,
            resource: r.get("resource")?,
            items: serde_json::from_value(r.get("items")?)
                .map_err(|e| StoreError::Corrupt(format!("bad access items: {e}")))?,
            reader_kind: r.get("reader_kind")?,
            reader_id: r.get("reader_id")?,
            reader_name: r.get("reader_name")?,
            purpose: r.get("purpose")?,
            service_code: r.get("service_code")?,
            case_no: r.get("case_no")?,
        },
        prev_hash: r.get("prev_hash")?,
        hash: r.get("hash")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(n: i64) -> NewAccess {
        NewAccess {
            subject_index: "idx".into(),
            subject_kind: "person".into(),
            at: DateTime::from_timestamp(1_700_000_000 + n, 0).expect("time"),
            resource: "person".into(),
            items: vec!["name".into()],
            reader_kind: "applicant".into(),
            reader_id: None,
            reader_name: "王小明".into(),
            purpose: "表单预填".into(),
            service_code: Some("X".into()),
            case_no: None,
        }
    }

    fn chain(n: i64) -> Vec<AccessRecord> {
        let mut prev = CHAIN_START.to_owned();
        (1..=n)
            .map(|seq| {
                let id = Uuid::now_v7();
                let a = access(seq);
                let hash = chain_hash(&prev, seq, id, &a);
                let r = AccessRecord {
                    id,
                    seq,
                    access: a,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                r
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify_chain(&chain(4)), Ok(()));
        assert_eq!(verify_chain(&[]), Ok(()));
    }

    #[test]
    fn an_edited_record_breaks_the_chain_at_its_position() {
        let mut c = chain(4);
        c[2].access.purpose = "另作他用".into();
        assert_eq!(verify_chain(&c), Err(3));
    }

    #[test]
    fn a_removed_record_breaks_the_chain() {
        let mut c = chain(4);
        c.remove(1);
        assert_eq!(verify_chain(&c), Err(2));
    }

    #[test]
    fn the_digest_ignores_key_order_but_not_values() {
        let r = |data: Value| BaseRecord {
            resource: "person".into(),
            subject: "s".into(),
            record: String::new(),
            data,
            updated_at: Utc::now(),
        };
        let a = r(serde_json::json!({"name": "王", "phone": "1"}));
        let b = r(serde_json::from_str(r#"{"phone": "1", "name": "王"}"#).expect("json"));
        let c = r(serde_json::json!({"name": "王", "phone": "2"}));
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
    }
}
