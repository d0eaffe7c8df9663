//! Personal data at rest: the base library and the cached shared data are sealed with
//! AES-256-GCM, and subjects are stored only as an HMAC-SHA256 blind index.
//!
//! - A subject (resident ID number or USCC) is stored as `HMAC(index key, resource:subject)`,
//!   so the gateway finds a person's record by exact match without holding the number.
//! - A record's data is encrypted under a key derived from the personal-data key. The
//!   nonce is synthetic: the first 12 bytes of an HMAC over the associated data and the
//!   plaintext (as in SIV constructions), so the same record seals to the same bytes.
//!   Re-importing an unchanged file is recognised (and writes nothing), and a nonce repeats
//!   only for the very same plaintext and context, which reveals only that equality.
//! - The associated data binds a sealed value to its place (resource, record, subject
//!   index): a value copied to another subject's row does not open.
//!
//! The keys come from `personal_data_key` in the settings (32 bytes, base64) and the
//! audit's index key; without the setting, a key is generated on first start and kept in
//! the store's `secrets` table (a warning says so: production keeps it apart from the data).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// Seals and opens personal data, and makes blind indexes.
///
/// Personal-data keys have ids: a value sealed under a key other than the legacy one
/// (id `""`, the key from before keys had ids) names it (`"k"`), and the sealer opens a
/// value under any key it holds while it seals under the current one, so a rotation
/// (`onewindow keys rotate-data`) re-seals while every instance keeps reading.
pub struct Sealer {
    index_key: Vec<u8>,
    /// The legacy key (id `""`), kept for rebuilding the ring.
    legacy: [u8; 32],
    ring: std::sync::RwLock<Ring>,
}

struct DataKey {
    kid: String,
    /// The cipher with its key schedule expanded once.
    cipher: Aes256Gcm,
    nonce_key: [u8; 32],
}

impl DataKey {
    fn new(kid: &str, data_key: &[u8; 32]) -> DataKey {
        DataKey {
            kid: kid.to_owned(),
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(hmac(
                data_key,
                &[b"onewindow seal: encryption"],
            ))),
            nonce_key: hmac(data_key, &[b"onewindow seal: nonce"]),
        }
    }
}

struct Ring {
    current: std::sync::Arc<DataKey>,
    all: std::collections::HashMap<String, std::sync::Arc<DataKey>>,
}

/// The first bytes of a sealed material (a file's bytes sealed at rest).
pub const MATERIAL_MAGIC: &[u8; 4] = b"OWM1";

/// A sealed value could not be opened (wrong key, or moved or altered).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a sealed value could not be opened: {0}")]
pub struct SealError(pub &'static str);

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(&(p.len() as u64).to_be_bytes());
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

impl Sealer {
    /// A sealer from the blind-index key and the 32-byte personal-data key (the legacy
    /// key, id `""`).
    pub fn new(index_key: &[u8], data_key: &[u8; 32]) -> Sealer {
        let legacy = std::sync::Arc::new(DataKey::new("", data_key));
        Sealer {
            index_key: index_key.to_vec(),
            legacy: *data_key,
            ring: std::sync::RwLock::new(Ring {
                current: legacy.clone(),
                all: [(String::new(), legacy)].into_iter().collect(),
            }),
        }
    }

    /// Replaces the data keys: `keys` by id, and the legacy key (id `""`) unless it is
    /// retired, sealing under `current` from now on. A current id not among the keys is
    /// refused.
    pub fn set_keys(
        &self,
        current: &str,
        keys: &[(String, [u8; 32])],
        with_legacy: bool,
    ) -> Result<(), SealError> {
        let legacy = with_legacy.then(|| (String::new(), self.legacy));
        let all: std::collections::HashMap<_, _> = keys
            .iter()
            .chain(legacy.as_ref())
            .map(|(kid, k)| (kid.clone(), std::sync::Arc::new(DataKey::new(kid, k))))
            .collect();
        let cur = all
            .get(current)
            .cloned()
            .ok_or(SealError("the current data key is not among the keys"))?;
        let ring = Ring { current: cur, all };
        match self.ring.write() {
            Ok(mut g) => *g = ring,
            Err(p) => *p.into_inner() = ring,
        }
        Ok(())
    }

    fn with_ring<T>(&self, f: impl FnOnce(&Ring) -> T) -> T {
        match self.ring.read() {
            Ok(g) => f(&g),
            Err(p) => f(&p.into_inner()),
        }
    }

    /// The id of the key new values are sealed under (`""`: the legacy key).
    pub fn current_kid(&self) -> String {
        self.with_ring(|r| r.current.kid.clone())
    }

    /// The ids of every key held.
    pub fn kids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.with_ring(|r| r.all.keys().cloned().collect());
        v.sort();
        v
    }

    fn key(&self, kid: &str) -> Result<std::sync::Arc<DataKey>, SealError> {
        self.with_ring(|r| r.all.get(kid).cloned()).ok_or(SealError(
            "sealed under a data key this instance does not hold",
        ))
    }

    /// The id of the key a sealed JSON value was sealed under (`None`: not sealed).
    pub fn kid_of(sealed: &Value) -> Option<&str> {
        let is_sealed =
            sealed.get("v").is_some() && sealed.get("sealed").is_some_and(Value::is_string);
        is_sealed.then(|| sealed.get("k").and_then(Value::as_str).unwrap_or(""))
    }

    /// Seals a material's bytes for the place `aad` (its storage key): a random nonce,
    /// the current key's id in the clear, `MATERIAL_MAGIC` first.
    pub fn seal_bytes(&self, aad: &str, plain: &[u8]) -> Vec<u8> {
        let key = self.with_ring(|r| r.current.clone());
        let nonce: [u8; 12] = rand::random();
        let ct = key
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: &material_aad(aad, &key.kid),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer does not fail");
        let mut out = Vec::with_capacity(plain.len() + 64);
        out.extend_from_slice(MATERIAL_MAGIC);
        out.push(key.kid.len() as u8);
        out.extend_from_slice(key.kid.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend(ct);
        out
    }

    /// The key id of sealed bytes (`None`: not sealed, a file from before sealing).
    pub fn bytes_kid(data: &[u8]) -> Option<&str> {
        let rest = data.strip_prefix(MATERIAL_MAGIC.as_slice())?;
        let (&n, rest) = rest.split_first()?;
        rest.get(..n as usize)
            .and_then(|k| std::str::from_utf8(k).ok())
    }

    /// Opens sealed bytes for the place `aad`; bytes that are not sealed are refused
    /// (`Ok(None)`: the caller decides whether a file from before sealing is acceptable).
    pub fn open_bytes(&self, aad: &str, data: &[u8]) -> Result<Option<Vec<u8>>, SealError> {
        let Some(kid) = Self::bytes_kid(data) else {
            return Ok(None);
        };
        let body = &data[MATERIAL_MAGIC.len() + 1 + kid.len()..];
        if body.len() < 12 + 16 {
            return Err(SealError("malformed"));
        }
        let key = self.key(kid)?;
        let (nonce, ct) = body.split_at(12);
        let mut n = [0u8; 12];
        n.copy_from_slice(nonce);
        key.cipher
            .decrypt(
                &Nonce::from(n),
                Payload {
                    msg: ct,
                    aad: &material_aad(aad, kid),
                },
            )
            .map(Some)
            .map_err(|_| SealError("authentication failed"))
    }

    /// The blind index of a subject within a resource.
    pub fn subject_ref(&self, resource: &str, subject: &str) -> String {
        let s = subject.trim().to_uppercase();
        hex::encode(hmac(
            &self.index_key,
            &[b"base", resource.as_bytes(), s.as_bytes()],
        ))
    }

    /// Seals a JSON value for a place described by `aad`.
    pub fn seal(&self, aad: &str, plain: &Value) -> Value {
        let key = self.with_ring(|r| r.current.clone());
        let msg = plain.to_string();
        let n = hmac(&key.nonce_key, &[aad.as_bytes(), msg.as_bytes()]);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&n[..12]);
        let ct = key
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: msg.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer does not fail");
        let mut out = n[..12].to_vec();
        out.extend(ct);
        if key.kid.is_empty() {
            json!({ "v": 1, "sealed": STANDARD.encode(out) })
        } else {
            json!({ "v": 1, "k": key.kid, "sealed": STANDARD.encode(out) })
        }
    }

    /// Opens a value sealed for the same place.
    pub fn open(&self, aad: &str, sealed: &Value) -> Result<Value, SealError> {
        if sealed.get("v").and_then(Value::as_i64) != Some(1) {
            return Err(SealError("not a sealed value of version 1"));
        }
        let bytes = sealed
            .get("sealed")
            .and_then(Value::as_str)
            .and_then(|s| STANDARD.decode(s).ok())
            .filter(|b| b.len() > 12 + 16)
            .ok_or(SealError("malformed"))?;
        let key = self.key(sealed.get("k").and_then(Value::as_str).unwrap_or(""))?;
        let (nonce, ct) = bytes.split_at(12);
        let mut n = [0u8; 12];
        n.copy_from_slice(nonce);
        let plain = key
            .cipher
            .decrypt(
                &Nonce::from(n),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError("authentication failed"))?;
        serde_json::from_slice(&plain).map_err(|_| SealError("not JSON inside"))
    }
}

fn material_aad(place: &str, kid: &str) -> Vec<u8> {
    format!("material\0{place}\0{kid}").into_bytes()
}

/// The associated data of a base-library record.
pub fn record_aad(resource: &str, record: &str, subject_ref: &str) -> String {
    format!("base_records\0{resource}\0{record}\0{subject_ref}")
}

/// The settings key of the personal-data key, and its name in the store's secrets.
pub const DATA_KEY_NAME: &str = "personal_data_key";

/// Parses a configured key: 32 bytes in base64 (or 64 hex digits).
pub fn parse_key(text: &str) -> Result<[u8; 32], String> {
    let t = text.trim();
    let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(t).map_err(|e| e.to_string())?
    } else {
        STANDARD
            .decode(t)
            .map_err(|_| "must be 32 bytes in base64 (or 64 hex digits)".to_owned())?
    };
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("must be 32 bytes, not {}", b.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(k: u8) -> Sealer {
        Sealer::new(b"index key", &[k; 32])
    }

    #[test]
    fn a_sealed_value_opens_in_its_place_only() {
        let s = sealer(1);
        let v = json!({"name": "王小明", "phone": "13800000001"});
        let sealed = s.seal("place-a", &v);
        assert!(!sealed.to_string().contains("王小明"));
        assert_eq!(s.open("place-a", &sealed), Ok(v));
        assert!(s.open("place-b", &sealed).is_err(), "moved to another row");
        assert!(sealer(2).open("place-a", &sealed).is_err(), "another key");
    }

    #[test]
    fn sealing_is_deterministic_per_place_and_value() {
        let s = sealer(1);
        let v = json!({"a": 1});
        assert_eq!(s.seal("p", &v), s.seal("p", &v));
        assert_ne!(s.seal("p", &v), s.seal("q", &v));
        assert_ne!(s.seal("p", &v), s.seal("p", &json!({"a": 2})));
    }

    #[test]
    fn an_altered_ciphertext_does_not_open() {
        let s = sealer(1);
        let mut sealed = s.seal("p", &json!({"a": 1}));
        let mut bytes = STANDARD
            .decode(sealed["sealed"].as_str().expect("text"))
            .expect("b64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        sealed["sealed"] = json!(STANDARD.encode(bytes));
        assert_eq!(
            s.open("p", &sealed),
            Err(SealError("authentication failed"))
        );
        assert!(s.open("p", &json!({"v": 2})).is_err());
    }

    #[test]
    fn subject_refs_hide_the_subject_and_ignore_case() {
        let s = sealer(1);
        let a = s.subject_ref("person", "15070219850612302x");
        assert_eq!(a, s.subject_ref("person", "15070219850612302X"));
        assert_ne!(a, s.subject_ref("elicence", "15070219850612302X"));
        assert!(!a.contains("150702"));
    }

    #[test]
    fn values_name_their_key_and_open_under_any_key_held() {
        let s = sealer(1);
        let v = json!({"a": 1});
        let legacy = s.seal("p", &v);
        assert_eq!(Sealer::kid_of(&legacy), Some(""));
        s.set_keys("d2", &[("d2".into(), [2; 32])], true)
            .expect("keys");
        let new = s.seal("p", &v);
        assert_eq!(Sealer::kid_of(&new), Some("d2"));
        assert_eq!(s.open("p", &legacy), Ok(v.clone()));
        assert_eq!(s.open("p", &new), Ok(v.clone()));
        s.set_keys("d2", &[("d2".into(), [2; 32])], false)
            .expect("keys");
        assert!(s.open("p", &legacy).is_err(), "the legacy key is gone");
        assert_eq!(Sealer::kid_of(&json!({"a": 1})), None);
        assert!(s.set_keys("d3", &[], true).is_err());
    }

    #[test]
    fn material_bytes_open_in_their_place_and_refuse_tampering() {
        let s = sealer(1);
        let sealed = s.seal_bytes("key-1", b"%PDF-1.7 content");
        assert_eq!(Sealer::bytes_kid(&sealed), Some(""));
        assert!(!sealed.windows(4).any(|w| w == b"%PDF"));
        assert_eq!(
            s.open_bytes("key-1", &sealed),
            Ok(Some(b"%PDF-1.7 content".to_vec()))
        );
        assert!(s.open_bytes("key-2", &sealed).is_err(), "moved");
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            s.open_bytes("key-1", &bad),
            Err(SealError("authentication failed"))
        );
        assert_eq!(s.open_bytes("key-1", b"%PDF plain"), Ok(None));
    }

    #[test]
    fn keys_are_read_from_base64_or_hex() {
        let b64 = STANDARD.encode([7u8; 32]);
        assert_eq!(parse_key(&b64), Ok([7u8; 32]));
        assert_eq!(parse_key(&hex::encode([9u8; 32])), Ok([9u8; 32]));
        assert!(parse_key("short").is_err());
        assert!(parse_key(&STANDARD.encode([1u8; 16])).is_err());
    }
}
