//! Idempotency: a change sent again with the same `Idempotency-Key` (a retry after a lost
//! answer, a double click) answers the first result instead of happening twice.
//!
//! The key is scoped to the caller (an account, or a department token) and bound to a
//! hash of the request. The result is remembered in the same transaction as the change
//! (`CaseWrite::idem`), so a change and its remembered answer exist together or not at
//! all; two identical requests racing are serialised by the record's primary key, and
//! the loser answers the winner's result.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Error, Result};
use crate::state::AppState;
use crate::store::IdemRecord;

/// An `Idempotency-Key` with whose it is and what it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemKey {
    /// The caller's scope ([`Actor::id`](super::Actor::id)): an account id or a token.
    pub scope: String,
    /// The key as sent.
    pub key: String,
    /// Hash of the request it came with ([`request_hash`]).
    pub request_hash: String,
}

impl IdemKey {
    /// A key sent by `scope` with a request whose meaningful content is `request`.
    pub fn new(scope: impl Into<String>, key: impl Into<String>, request: &Value) -> IdemKey {
        IdemKey {
            scope: scope.into(),
            key: key.into(),
            request_hash: request_hash(request),
        }
    }
}

/// Hash of a request for idempotency checks: the same content hashes the same, so a
/// retry matches and another request under the same key does not.
pub fn request_hash(request: &Value) -> String {
    hex::encode(Sha256::digest(request.to_string().as_bytes()))
}

/// Which kind of change a remembered result answered. The record keeps it as the HTTP
/// status the first answer had (201 for a creation, 200 for a change), which is what
/// earlier versions stored and what any version replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Something new was made (a case).
    Created,
    /// Something existing changed (a step).
    Changed,
}

impl Kind {
    fn stored(self) -> u16 {
        match self {
            Kind::Created => 201,
            Kind::Changed => 200,
        }
    }
}

/// The record to write with a change, remembering `result` under `key`.
pub(super) fn record<T: Serialize>(key: &IdemKey, kind: Kind, result: &T) -> Result<IdemRecord> {
    Ok(IdemRecord {
        scope: key.scope.clone(),
        key: key.key.clone(),
        request_hash: key.request_hash.clone(),
        status: kind.stored(),
        response: serde_json::to_value(result).map_err(anyhow::Error::from)?,
    })
}

/// The remembered result of an earlier request under the same key: the same request
/// answers it again; another request under that key is refused.
pub(super) fn replay<T: DeserializeOwned>(prior: IdemRecord, key: &IdemKey) -> Result<T> {
    if prior.request_hash != key.request_hash {
        return Err(Error::IdempotencyMismatch);
    }
    serde_json::from_value(prior.response).map_err(|e| {
        Error::Internal(anyhow::anyhow!(
            "the remembered answer to an idempotency key does not read back: {e}"
        ))
    })
}

/// Looks up an earlier answer to the same key before doing any work.
pub(super) async fn earlier<T: DeserializeOwned>(
    app: &AppState,
    key: Option<&IdemKey>,
) -> Result<Option<T>> {
    let Some(k) = key else { return Ok(None) };
    match app.store.idempotent(&k.scope, &k.key).await? {
        Some(prior) => replay(prior, k).map(Some),
        None => Ok(None),
    }
}

/// The answer when the store refused a write because the key was taken meanwhile (an
/// identical request won the race). Only a write that carried a key can meet one.
pub(super) fn replay_after_race<T: DeserializeOwned>(
    prior: IdemRecord,
    key: Option<&IdemKey>,
) -> Result<T> {
    let key = key.ok_or_else(|| anyhow::anyhow!("the store replayed a write that had no key"))?;
    replay(prior, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Answer {
        case_no: String,
    }

    #[test]
    fn a_repeat_answers_the_first_result_and_another_request_is_refused() {
        let key = IdemKey::new("acct", "k1", &json!({ "a": 1 }));
        let first = Answer {
            case_no: "HLBE20260302-ABCDEFGH".into(),
        };
        let rec = record(&key, Kind::Created, &first).expect("record");
        assert_eq!(rec.status, 201);
        let again: Answer = replay(rec.clone(), &key).expect("replay");
        assert_eq!(again, first);
        let other = IdemKey::new("acct", "k1", &json!({ "a": 2 }));
        assert!(matches!(
            replay::<Answer>(rec, &other),
            Err(Error::IdempotencyMismatch)
        ));
    }

    #[test]
    fn records_written_by_earlier_versions_still_replay() {
        // they stored the HTTP answer, with fields the typed result does not have
        let key = IdemKey::new("acct", "k1", &json!({}));
        let prior = IdemRecord {
            scope: "acct".into(),
            key: "k1".into(),
            request_hash: key.request_hash.clone(),
            status: 201,
            response: json!({ "case_no": "X", "href": "/api/v1/cases/X" }),
        };
        let a: Answer = replay(prior, &key).expect("replay");
        assert_eq!(a.case_no, "X");
    }
}
