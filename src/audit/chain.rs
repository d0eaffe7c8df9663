//! The pure logic of the audit chains and their checkpoints: link MACs, the verification
//! of a chain segment, the Merkle root over all heads and the signed checkpoint statement.
//! No I/O: the store and [`super::verify`] feed it rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, Verifier};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The hash of the first record's predecessor.
pub const CHAIN_START: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A record linked by HMAC-SHA256 under the audit link key.
pub const LINK_HMAC: &str = "hmac";
/// A record of an earlier version, linked by plain SHA-256 (legacy, see [`verify_segment`]).
pub const LINK_SHA256: &str = "sha256";

/// The link of a record: HMAC-SHA256 under `key` (or, without a key, the plain SHA-256 of
/// earlier versions) over the previous link, the position, the id and the canonical body.
/// Answers the link kind and the hex value.
pub fn link(
    key: Option<&[u8]>,
    prev: &str,
    seq: i64,
    id: Uuid,
    body: &str,
) -> (&'static str, String) {
    match key {
        Some(k) => {
            let mut mac = Hmac::<Sha256>::new_from_slice(k).expect("HMAC takes keys of any length");
            mac.update(prev.as_bytes());
            mac.update(&seq.to_be_bytes());
            mac.update(id.as_bytes());
            mac.update(body.as_bytes());
            (LINK_HMAC, hex::encode(mac.finalize().into_bytes()))
        }
        None => {
            let mut h = Sha256::new();
            h.update(prev.as_bytes());
            h.update(seq.to_be_bytes());
            h.update(id.as_bytes());
            h.update(body.as_bytes());
            (LINK_SHA256, hex::encode(h.finalize()))
        }
    }
}

/// One stored record as the verifier sees it, whichever table it is in.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRow {
    /// The chain: `access/<subject index>` or `event/<chain>`.
    pub chain: String,
    /// Position, from 1.
    pub seq: i64,
    /// Record id.
    pub id: Uuid,
    /// `hmac` or `sha256`.
    pub link: String,
    /// The previous record's link as stored.
    pub prev: String,
    /// This record's link as stored.
    pub hash: String,
    /// The canonical body the link covers.
    pub body: String,
}

/// What is wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A position is missing or repeated (a record deleted or inserted).
    Gap {
        /// The position expected here.
        expected: i64,
    },
    /// The record does not name its predecessor's link (inserted or reordered).
    PrevMismatch,
    /// The record's link does not match its content under the key (edited, or forged
    /// without the key).
    BadLink,
    /// A plain-hash record where only keyed ones may be (after a keyed one, or beyond what
    /// the first checkpoint covered): recomputed with a plain hash.
    Unkeyed,
    /// The chain is shorter than a signed checkpoint says (the newest records deleted).
    Truncated {
        /// The checkpoint.
        checkpoint: i64,
        /// The length it signed.
        signed: i64,
        /// The length found.
        found: i64,
    },
    /// The record at a checkpointed position is not the one signed (rewritten with the
    /// chain recomputed).
    NotAsSigned {
        /// The checkpoint.
        checkpoint: i64,
    },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Gap { expected } => write!(
                f,
                "position {expected} expected here: a record was deleted or inserted"
            ),
            Fault::PrevMismatch => write!(
                f,
                "does not link to the record before it: inserted or reordered"
            ),
            Fault::BadLink => write!(
                f,
                "its HMAC does not match its content: edited, or recomputed without the key"
            ),
            Fault::Unkeyed => write!(
                f,
                "linked by a plain hash where only keyed links may be: recomputed without the key"
            ),
            Fault::Truncated {
                checkpoint,
                signed,
                found,
            } => write!(
                f,
                "checkpoint {checkpoint} signed {signed} records, the chain has {found}: the newest were deleted"
            ),
            Fault::NotAsSigned { checkpoint } => write!(
                f,
                "not the record checkpoint {checkpoint} signed: rewritten with the chain recomputed"
            ),
        }
    }
}

/// Verifies consecutive records of one chain, in `seq` order, continuing from `from`
/// (the last verified position and link; `None` from the start). Plain-hash (legacy)
/// records are accepted only before any keyed one and at positions up to `legacy_upto`.
/// Answers the last position and link, or the first bad position and why.
pub fn verify_segment(
    key: &[u8],
    from: Option<(i64, String, bool)>,
    rows: &[LinkRow],
    legacy_upto: i64,
) -> Result<(i64, String, bool), (i64, Fault)> {
    let (mut seq, mut prev, mut keyed) = from.unwrap_or((0, CHAIN_START.to_owned(), false));
    for r in rows {
        let expected = seq + 1;
        if r.seq != expected {
            return Err((r.seq.min(expected), Fault::Gap { expected }));
        }
        if r.prev != prev {
            return Err((r.seq, Fault::PrevMismatch));
        }
        let k = match r.link.as_str() {
            LINK_HMAC => Some(key),
            LINK_SHA256 if !keyed && r.seq <= legacy_upto => None,
            _ => return Err((r.seq, Fault::Unkeyed)),
        };
        if link(k, &r.prev, r.seq, r.id, &r.body).1 != r.hash {
            return Err((r.seq, Fault::BadLink));
        }
        keyed |= k.is_some();
        seq = r.seq;
        prev = r.hash.clone();
    }
    Ok((seq, prev, keyed))
}

/// The heads of all chains: chain → (length, last link).
pub type Heads = BTreeMap<String, (i64, String)>;

/// The Merkle tree hash (RFC 6962) over the heads in chain order: a leaf is
/// SHA-256(0x00 ‖ chain ‖ 0x00 ‖ seq ‖ link), a node SHA-256(0x01 ‖ left ‖ right).
pub fn merkle_root(heads: &Heads) -> String {
    let leaves: Vec<[u8; 32]> = heads
        .iter()
        .map(|(chain, (seq, hash))| {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(chain.as_bytes());
            h.update([0u8]);
            h.update(seq.to_be_bytes());
            h.update(hash.as_bytes());
            h.finalize().into()
        })
        .collect();
    fn mth(l: &[[u8; 32]]) -> [u8; 32] {
        match l.len() {
            0 => Sha256::digest(b"").into(),
            1 => l[0],
            n => {
                let k = n.next_power_of_two() / 2;
                let mut h = Sha256::new();
                h.update([1u8]);
                h.update(mth(&l[..k]));
                h.update(mth(&l[k..]));
                h.finalize().into()
            }
        }
    }
    hex::encode(mth(&leaves))
}

/// A signed checkpoint of every chain's head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Position in the checkpoints' own chain, from 1.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Records covered (the sum of all heads' lengths).
    pub records: i64,
    /// Chains covered.
    pub chains: i64,
    /// Merkle root over all heads.
    pub root: String,
    /// The heads that moved since the checkpoint before: `[chain, seq, link]`.
    pub heads: Vec<(String, i64, String)>,
    /// The digest of the checkpoint before (64 zeros for the first).
    pub prev: String,
    /// The signer's Ed25519 public key (hex).
    pub public_key: String,
    /// Ed25519 signature (hex) over [`Checkpoint::statement`].
    pub signature: String,
}

impl Checkpoint {
    /// What is signed: every field but the signature, the moved heads by their Merkle root
    /// among all heads.
    pub fn statement(&self) -> String {
        format!(
            "onewindow-audit-checkpoint/v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
            self.seq,
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            self.records,
            self.chains,
            self.root,
            self.prev,
            self.public_key,
        )
    }

    /// The digest the next checkpoint links to.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.statement().as_bytes());
        h.update(self.signature.as_bytes());
        hex::encode(h.finalize())
    }

    /// Signs a new checkpoint after `before` (the previous one, with all heads up to it),
    /// given all heads now.
    pub fn sign(
        key: &ed25519_dalek::SigningKey,
        before: Option<&Checkpoint>,
        old: &Heads,
        now: &Heads,
        at: DateTime<Utc>,
    ) -> Checkpoint {
        let heads = now
            .iter()
            .filter(|(c, h)| old.get(*c) != Some(h))
            .map(|(c, (s, l))| (c.clone(), *s, l.clone()))
            .collect();
        let mut cp = Checkpoint {
            seq: before.map(|b| b.seq + 1).unwrap_or(1),
            at: chrono::SubsecRound::trunc_subsecs(at, 6),
            records: now.values().map(|(s, _)| s).sum(),
            chains: now.len() as i64,
            root: merkle_root(now),
            heads,
            prev: before
                .map(Checkpoint::digest)
                .unwrap_or_else(|| CHAIN_START.to_owned()),
            public_key: hex::encode(key.verifying_key().as_bytes()),
            signature: String::new(),
        };
        cp.signature = hex::encode(key.sign(cp.statement().as_bytes()).to_bytes());
        cp
    }
}

/// What is wrong with a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointFault {
    /// Not signed by the configured key, or the signature does not match.
    BadSignature,
    /// Not the next position, or not linked to the one before (one removed or inserted).
    Broken,
    /// The root or the counts do not match the heads (the heads edited).
    BadRoot,
    /// A chain went backwards between two checkpoints.
    Shrunk(String),
}

impl std::fmt::Display for CheckpointFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointFault::BadSignature => write!(f, "not signed by the configured audit key"),
            CheckpointFault::Broken => write!(
                f,
                "does not follow the checkpoint before it: one was removed or inserted"
            ),
            CheckpointFault::BadRoot => write!(f, "its root does not match its heads"),
            CheckpointFault::Shrunk(c) => write!(f, "chain {c} went backwards"),
        }
    }
}

/// Replays checkpoints in order, checking each against the public key and the one before,
/// and answers all heads as the last one signed them; or the first bad checkpoint.
pub fn replay(
    public: &ed25519_dalek::VerifyingKey,
    cps: &[Checkpoint],
) -> Result<Heads, (i64, CheckpointFault)> {
    let mut heads = Heads::new();
    let mut prev: Option<&Checkpoint> = None;
    for cp in cps {
        let sig_ok = hex::decode(&cp.signature)
            .ok()
            .and_then(|s| ed25519_dalek::Signature::from_slice(&s).ok())
            .is_some_and(|s| {
                cp.public_key == hex::encode(public.as_bytes())
                    && public.verify(cp.statement().as_bytes(), &s).is_ok()
            });
        if !sig_ok {
            return Err((cp.seq, CheckpointFault::BadSignature));
        }
        let expected_prev = prev
            .map(Checkpoint::digest)
            .unwrap_or_else(|| CHAIN_START.to_owned());
        if cp.seq != prev.map(|p| p.seq + 1).unwrap_or(1) || cp.prev != expected_prev {
            return Err((cp.seq, CheckpointFault::Broken));
        }
        for (c, s, l) in &cp.heads {
            if heads.get(c).is_some_and(|(old, _)| old > s) {
                return Err((cp.seq, CheckpointFault::Shrunk(c.clone())));
            }
            heads.insert(c.clone(), (*s, l.clone()));
        }
        if merkle_root(&heads) != cp.root
            || heads.len() as i64 != cp.chains
            || heads.values().map(|(s, _)| s).sum::<i64>() != cp.records
        {
            return Err((cp.seq, CheckpointFault::BadRoot));
        }
        prev = Some(cp);
    }
    Ok(heads)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"link key";

    fn chain(name: &str, n: i64, key: Option<&[u8]>) -> Vec<LinkRow> {
        let mut prev = CHAIN_START.to_owned();
        (1..=n)
            .map(|seq| {
                let id = Uuid::now_v7();
                let body = format!("{{\"n\":{seq}}}");
                let (kind, hash) = link(key, &prev, seq, id, &body);
                let r = LinkRow {
                    chain: name.into(),
                    seq,
                    id,
                    link: kind.into(),
                    prev: prev.clone(),
                    hash: hash.clone(),
                    body,
                };
                prev = hash;
                r
            })
            .collect()
    }

    fn relink(rows: &mut [LinkRow], from: usize, key: Option<&[u8]>) {
        for i in from..rows.len() {
            let prev = if i == 0 {
                CHAIN_START.to_owned()
            } else {
                rows[i - 1].hash.clone()
            };
            let r = &mut rows[i];
            let (kind, hash) = link(key, &prev, r.seq, r.id, &r.body);
            r.prev = prev;
            r.link = kind.into();
            r.hash = hash;
        }
    }

    #[test]
    fn an_intact_keyed_chain_verifies_and_continues() {
        let c = chain("c", 5, Some(KEY));
        let (seq, last, keyed) = verify_segment(KEY, None, &c[..3], 0).expect("first part");
        assert_eq!((seq, keyed), (3, true));
        assert_eq!(
            verify_segment(KEY, Some((seq, last, keyed)), &c[3..], 0).map(|r| r.0),
            Ok(5)
        );
    }

    #[test]
    fn each_kind_of_tampering_is_named_at_its_position() {
        let c = chain("c", 5, Some(KEY));
        // deleted from the middle
        let mut d = c.clone();
        d.remove(2);
        assert_eq!(
            verify_segment(KEY, None, &d, 0),
            Err((3, Fault::Gap { expected: 3 }))
        );
        // inserted, numbered in
        let mut ins = c.clone();
        let mut extra = c[1].clone();
        extra.id = Uuid::now_v7();
        ins.insert(2, extra);
        for (i, r) in ins.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
        }
        assert_eq!(
            verify_segment(KEY, None, &ins, 0),
            Err((3, Fault::PrevMismatch))
        );
        // edited
        let mut e = c.clone();
        e[3].body = "{\"n\":99}".into();
        assert_eq!(verify_segment(KEY, None, &e, 0), Err((4, Fault::BadLink)));
        // edited, recomputed with a plain hash
        let mut p = e.clone();
        relink(&mut p, 3, None);
        assert_eq!(verify_segment(KEY, None, &p, 0), Err((4, Fault::Unkeyed)));
        // edited, recomputed with an HMAC under a guessed key
        let mut g = e.clone();
        relink(&mut g, 3, Some(b"guess"));
        assert_eq!(verify_segment(KEY, None, &g, 0), Err((4, Fault::BadLink)));
    }

    #[test]
    fn legacy_records_verify_only_at_the_start_and_as_far_as_allowed() {
        let mut c = chain("c", 3, None);
        assert_eq!(verify_segment(KEY, None, &c, 3).map(|r| r.0), Ok(3));
        assert_eq!(
            verify_segment(KEY, None, &c, 2),
            Err((3, Fault::Unkeyed)),
            "beyond the first checkpoint"
        );
        // keyed records continue a legacy chain; a plain one after them is refused
        relink(&mut c, 2, Some(KEY));
        assert_eq!(verify_segment(KEY, None, &c, 3).map(|r| r.0), Ok(3));
        let mut after = c.clone();
        after.push(c[2].clone());
        after[3].seq = 4;
        relink(&mut after, 3, None);
        assert_eq!(
            verify_segment(KEY, None, &after, 9),
            Err((4, Fault::Unkeyed))
        );
    }

    fn heads(list: &[(&str, i64)]) -> Heads {
        list.iter()
            .map(|(c, s)| (c.to_string(), (*s, format!("h{c}{s}"))))
            .collect()
    }

    #[test]
    fn checkpoints_replay_to_the_heads_and_refuse_forgery() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let h1 = heads(&[("a", 2), ("b", 1)]);
        let c1 = Checkpoint::sign(&key, None, &Heads::new(), &h1, t);
        let h2 = heads(&[("a", 2), ("b", 3), ("c", 1)]);
        let c2 = Checkpoint::sign(&key, Some(&c1), &h1, &h2, t);
        assert_eq!(c2.heads.len(), 2, "only the moved heads");
        assert_eq!(c2.records, 6);
        let public = key.verifying_key();
        assert_eq!(replay(&public, &[c1.clone(), c2.clone()]), Ok(h2.clone()));
        // one removed from the middle of the checkpoints' chain
        let c3 = Checkpoint::sign(
            &key,
            Some(&c2),
            &h2,
            &heads(&[("a", 3), ("b", 3), ("c", 1)]),
            t,
        );
        assert_eq!(
            replay(&public, &[c1.clone(), c3.clone()]).map(|_| ()),
            Err((3, CheckpointFault::Broken))
        );
        // heads edited after signing
        let mut bad = c2.clone();
        bad.heads[0].1 = 9;
        assert_eq!(
            replay(&public, &[c1.clone(), bad]).map(|_| ()),
            Err((2, CheckpointFault::BadRoot))
        );
        // signed by another key
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let forged = Checkpoint::sign(&other, None, &Heads::new(), &h1, t);
        assert_eq!(
            replay(&public, &[forged]).map(|_| ()),
            Err((1, CheckpointFault::BadSignature))
        );
        // a count edited (the signature covers it)
        let mut edited = c1.clone();
        edited.records = 1;
        assert_eq!(
            replay(&public, &[edited]).map(|_| ()),
            Err((1, CheckpointFault::BadSignature))
        );
    }

    #[test]
    fn the_merkle_root_depends_on_every_head() {
        let a = heads(&[("a", 1), ("b", 2), ("c", 3)]);
        let mut b = a.clone();
        b.insert("c".into(), (4, "x".into()));
        assert_ne!(merkle_root(&a), merkle_root(&b));
        let mut c = a.clone();
        c.remove("b");
        assert_ne!(merkle_root(&a), merkle_root(&c));
        assert_eq!(merkle_root(&a), merkle_root(&a.clone()));
        assert_eq!(merkle_root(&a).len(), 64);
    }
}
