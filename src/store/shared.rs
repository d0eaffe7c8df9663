//! Row types of the shared-data tables (base library, consents, the data-access audit
//! trail), shared by both store implementations.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

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
pub const CHAIN_START: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain hash of a record: SHA-256 over the previous hash, its position, id and the
/// canonical JSON of the read. Both stores use it; `verify_chain` checks it.
pub fn chain_hash(prev_hash: &str, seq: i64, id: Uuid, a: &NewAccess) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(seq.to_be_bytes());
    h.update(id.as_bytes());
    let body = serde_json::json!({
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
    });
    h.update(body.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Checks one subject's records (in `seq` order): consecutive positions from 1, each
/// linking to its predecessor's hash and hashing to its own. Answers the first broken
/// position, if any.
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
