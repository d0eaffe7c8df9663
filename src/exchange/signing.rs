//! Signing of pushed events per Standard Webhooks, with Ed25519 keys published as a JWKS.
//!
//! Every delivery carries three headers:
//!
//! - `webhook-id`: the event id (the CloudEvents `id`), the de-duplication key;
//! - `webhook-timestamp`: unix seconds when the delivery was signed;
//! - `webhook-signature`: `v1a,<base64 Ed25519 signature>` of the bytes
//!   `"{webhook-id}.{webhook-timestamp}.{body}"`.
//!
//! The public keys are served at `GET /.well-known/jwks.json` as OKP/Ed25519 JWKs.
//!
//! **Rotation.** [`KeyRing::rotate`] makes a new key current and gives the previous one a
//! retire time (`now + grace`). Until then both are published, and [`KeyRing::sign`] signs
//! every delivery with *each* published key, newest first, as space-separated `v1a,`
//! entries (Standard Webhooks allows several signatures in the header). So a receiver whose
//! cached JWKS still holds only the old key keeps verifying during the grace period, and
//! one that already has the new key verifies too; nobody has to time a switch. A receiver
//! accepts a delivery when any `v1a,` signature verifies with any key it trusts.
//!
//! This module does no I/O: storing keys, serving the JWKS and fetching it are the
//! caller's business. [`verify`] is the receiving side: the gateway's own tests, the
//! reference receiver (`examples/dept_receiver.rs`) and the department integration guide
//! (`docs/department-integration.md`) all use it.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Header carrying the message (event) id.
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the signing time in unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying one or more space-separated `v1a,<base64 signature>` entries.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The Standard Webhooks version tag of an asymmetric (Ed25519) signature.
pub const SIGNATURE_VERSION: &str = "v1a";
/// The replay window Standard Webhooks suggests, in seconds (5 minutes).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a key or key ring could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// A key ring needs at least one key.
    #[error("a key ring needs at least one signing key")]
    NoKeys,
    /// A key needs an id.
    #[error("a signing key needs a non-empty kid")]
    EmptyKid,
    /// Two keys in one ring share an id.
    #[error("two signing keys share the kid {0:?}")]
    DuplicateKid(String),
    /// The stored secret is not a base64 32-byte Ed25519 seed.
    #[error("the signing key secret is not a base64 (standard) 32-byte Ed25519 seed: {0}")]
    BadSecret(String),
}

/// Why a delivery was refused by [`verify`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// `webhook-id`, `webhook-timestamp` or `webhook-signature` is missing or empty.
    #[error("a webhook-id, webhook-timestamp or webhook-signature header is missing")]
    MissingHeader,
    /// `webhook-timestamp` is not an integer number of unix seconds.
    #[error("webhook-timestamp is not unix seconds")]
    BadTimestamp,
    /// The timestamp is further in the past than the tolerance (a replay, or a very late retry
    /// signed long ago — the gateway re-signs every attempt, so this does not happen to it).
    #[error("webhook-timestamp is too old")]
    TooOld,
    /// The timestamp is further in the future than the tolerance (clock skew or forgery).
    #[error("webhook-timestamp is too far in the future")]
    TooNew,
    /// No `v1a,` signature verified with any key of the JWKS.
    #[error("no v1a signature verifies with a published key")]
    NoValidSignature,
    /// The JWKS is not a `{"keys":[…]}` document with at least one usable Ed25519 key.
    #[error("unusable JWKS: {0}")]
    BadJwks(String),
}

/// One Ed25519 signing key with its id and validity.
#[derive(Clone)]
pub struct SigningKey {
    /// Key id, published as the JWK's `kid`.
    pub kid: String,
    key: ed25519_dalek::SigningKey,
    /// When the key was made; the newest key of a ring signs.
    pub created_at: DateTime<Utc>,
    /// When the key stops being published (set by rotation); `None` while it is current.
    pub retires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("public", &URL_SAFE_NO_PAD.encode(self.public_bytes()))
            .field("created_at", &self.created_at)
            .field("retires_at", &self.retires_at)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Makes a new random key; its kid is `ow-` and the first 16 hex digits of the SHA-256
    /// of the public key.
    pub fn generate(now: DateTime<Utc>) -> SigningKey {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let kid = kid_for(&key.verifying_key());
        SigningKey {
            kid,
            key,
            created_at: now,
            retires_at: None,
        }
    }

    /// Restores a stored key from its base64 (standard alphabet) 32-byte seed.
    pub fn from_secret_b64(
        kid: &str,
        secret: &str,
        created_at: DateTime<Utc>,
    ) -> Result<SigningKey, SigningError> {
        if kid.trim().is_empty() {
            return Err(SigningError::EmptyKid);
        }
        let bytes = STANDARD
            .decode(secret.trim())
            .map_err(|e| SigningError::BadSecret(e.to_string()))?;
        let seed: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SigningError::BadSecret(format!("{} bytes, not 32", bytes.len())))?;
        Ok(SigningKey {
            kid: kid.to_owned(),
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
            created_at,
            retires_at: None,
        })
    }

    /// The 32-byte seed, base64 (standard alphabet), for storing. The caller keeps it
    /// secret; it is never logged (`Debug` leaves it out).
    pub fn secret_b64(&self) -> String {
        STANDARD.encode(self.key.to_bytes())
    }

    /// The public key as a JWK: `{"kty":"OKP","crv":"Ed25519","x":…,"kid":…,"use":"sig","alg":"EdDSA"}`.
    pub fn public_jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.public_bytes()),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
        })
    }

    /// Whether the key is still published at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.retires_at.is_none_or(|r| r > now)
    }

    /// Signs `"{msg_id}.{timestamp}.{body}"`; the base64 (standard) signature.
    fn signature_b64(&self, msg_id: &str, timestamp: &str, body: &[u8]) -> String {
        let sig = self.key.sign(&signed_content(msg_id, timestamp, body));
        STANDARD.encode(sig.to_bytes())
    }

    fn public_bytes(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }
}

/// `ow-` and the first 16 hex digits of the SHA-256 of the public key.
fn kid_for(public: &VerifyingKey) -> String {
    let digest = hex::encode(Sha256::digest(public.as_bytes()));
    format!("ow-{}", &digest[..16])
}

/// The exact bytes that are signed: `"{msg_id}.{timestamp}.{body}"`, with the timestamp as
/// it appears in the header.
pub fn signed_content(msg_id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg_id.len() + timestamp.len() + body.len() + 2);
    out.extend_from_slice(msg_id.as_bytes());
    out.push(b'.');
    out.extend_from_slice(timestamp.as_bytes());
    out.push(b'.');
    out.extend_from_slice(body);
    out
}

/// The keys in force: the newest signs; older ones not yet retired are still published
/// (rotation grace) and sign too (see the module documentation).
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// A ring of at least one key, with distinct kids.
    pub fn new(keys: Vec<SigningKey>) -> Result<KeyRing, SigningError> {
        if keys.is_empty() {
            return Err(SigningError::NoKeys);
        }
        for (i, k) in keys.iter().enumerate() {
            if k.kid.trim().is_empty() {
                return Err(SigningError::EmptyKid);
            }
            if keys[..i].iter().any(|o| o.kid == k.kid) {
                return Err(SigningError::DuplicateKid(k.kid.clone()));
            }
        }
        Ok(KeyRing { keys })
    }

    /// The key that signs: the newest `created_at` (on a tie, the later one in the ring).
    pub fn current(&self) -> &SigningKey {
        let mut cur = &self.keys[0];
        for k in &self.keys[1..] {
            if k.created_at >= cur.created_at {
                cur = k;
            }
        }
        cur
    }

    /// `{"keys":[…]}`: the current key first, then every other key not retired at `now`,
    /// newest first. The current key is always published, whatever its `retires_at`.
    pub fn jwks(&self, now: DateTime<Utc>) -> Value {
        let keys: Vec<Value> = self.active(now).iter().map(|k| k.public_jwk()).collect();
        json!({ "keys": keys })
    }

    /// The headers of one delivery: `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature`. The signature header holds a `v1a,` entry for each key published
    /// at `timestamp` (see [`KeyRing::jwks`]), the current key's first, separated by single
    /// spaces: one entry normally, two during a rotation's grace period.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
        let ts = timestamp.to_string();
        let at = DateTime::<Utc>::from_timestamp(timestamp, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let sigs: Vec<String> = self
            .active(at)
            .iter()
            .map(|k| format!("{SIGNATURE_VERSION},{}", k.signature_b64(msg_id, &ts, body)))
            .collect();
        vec![
            (HEADER_ID, msg_id.to_owned()),
            (HEADER_TIMESTAMP, ts),
            (HEADER_SIGNATURE, sigs.join(" ")),
        ]
    }

    /// Rotation: a new key becomes current; the previous current one retires at
    /// `now + grace` (or earlier, if it was already due to). Keys retired by `now` are
    /// dropped from the ring. The caller stores [`KeyRing::keys`] afterwards.
    pub fn rotate(&mut self, now: DateTime<Utc>, grace: chrono::Duration) -> &SigningKey {
        let prev = self.current();
        // The new key must be strictly newest even if a clock stepped back.
        let created_at = if now > prev.created_at {
            now
        } else {
            prev.created_at + chrono::Duration::seconds(1)
        };
        let prev_kid = prev.kid.clone();
        let retire = now + grace;
        for k in &mut self.keys {
            if k.kid == prev_kid {
                k.retires_at = Some(k.retires_at.map_or(retire, |r| r.min(retire)));
            }
        }
        self.keys.retain(|k| k.is_active(now));
        let mut new = SigningKey::generate(created_at);
        // A kid collision is astronomically unlikely; regenerate rather than publish two.
        while self.keys.iter().any(|k| k.kid == new.kid) {
            new = SigningKey::generate(created_at);
        }
        self.keys.push(new);
        self.current()
    }

    /// All keys of the ring, retired ones included until the next rotation drops them.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The published keys at `now`: current first, then the others newest first.
    fn active(&self, now: DateTime<Utc>) -> Vec<&SigningKey> {
        let current = self.current();
        let mut others: Vec<&SigningKey> = self
            .keys
            .iter()
            .filter(|k| k.kid != current.kid && k.is_active(now))
            .collect();
        others.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        let mut out = Vec::with_capacity(others.len() + 1);
        out.push(current);
        out.extend(others);
        out
    }
}

/// The Ed25519 public keys of a JWKS. Keys of other types or algorithms, and keys marked
/// for a use other than `sig`, are skipped; an Ed25519 key with a malformed `x` is an
/// error.
pub fn jwks_keys(jwks: &Value) -> Result<Vec<VerifyingKey>, VerifyError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| VerifyError::BadJwks("no \"keys\" array".into()))?;
    let mut out = Vec::new();
    for k in keys {
        let s = |name: &str| k.get(name).and_then(Value::as_str);
        if s("kty") != Some("OKP") || s("crv") != Some("Ed25519") {
            continue;
        }
        if s("use").is_some_and(|u| u != "sig")
            || s("alg").is_some_and(|a| a != "EdDSA" && a != "Ed25519")
        {
            continue;
        }
        let kid = s("kid").unwrap_or("(no kid)");
        let x = s("x").ok_or_else(|| VerifyError::BadJwks(format!("key {kid}: no \"x\"")))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(x.trim_end_matches('='))
            .map_err(|e| VerifyError::BadJwks(format!("key {kid}: \"x\" is not base64url: {e}")))?;
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            VerifyError::BadJwks(format!("key {kid}: \"x\" is {} bytes, not 32", bytes.len()))
        })?;
        let vk = VerifyingKey::from_bytes(&arr)
            .map_err(|_| VerifyError::BadJwks(format!("key {kid}: not an Ed25519 point")))?;
        out.push(vk);
    }
    if out.is_empty() {
        return Err(VerifyError::BadJwks("no Ed25519 signing key".into()));
    }
    Ok(out)
}

/// What a receiver does with a delivery.
///
/// 1. All three headers must be present (`MissingHeader`).
/// 2. `timestamp` must be integer unix seconds (`BadTimestamp`) within `tolerance_secs` of
///    `now` either way (`TooOld`, `TooNew`): the replay window.
/// 3. Some `v1a,` entry of the space-separated `signature_header` must verify over
///    `"{msg_id}.{timestamp}.{body}"` with some Ed25519 key of `jwks` (each key is tried; the
///    header names no kid). Entries of other versions (such as HMAC `v1,`) and malformed
///    entries are ignored (`NoValidSignature` if none verifies).
///
/// The signature check uses Ed25519 strict verification (no weak keys, no malleable
/// signatures).
pub fn verify(
    jwks: &Value,
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    if msg_id.is_empty() || timestamp.is_empty() || signature_header.trim().is_empty() {
        return Err(VerifyError::MissingHeader);
    }
    if !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::BadTimestamp);
    }
    let ts: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
    let tolerance = tolerance_secs.max(0);
    if ts < now.saturating_sub(tolerance) {
        return Err(VerifyError::TooOld);
    }
    if ts > now.saturating_add(tolerance) {
        return Err(VerifyError::TooNew);
    }
    let keys = jwks_keys(jwks)?;
    let content = signed_content(msg_id, timestamp, body);
    let good = signature_header
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == SIGNATURE_VERSION)
        .filter_map(|(_, sig)| STANDARD.decode(sig).ok())
        .filter_map(|bytes| Signature::from_slice(&bytes).ok())
        .any(|sig| keys.iter().any(|k| k.verify_strict(&content, &sig).is_ok()));
    if good {
        Ok(())
    } else {
        Err(VerifyError::NoValidSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const TOL: i64 = DEFAULT_TOLERANCE_SECS;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0)
            .single()
            .expect("valid time")
    }

    fn header<'a>(h: &'a [(&'static str, String)], name: &str) -> &'a str {
        h.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .expect("header present")
    }

    /// Verifies `body` against headers made by `sign`, at the signing time.
    fn check(jwks: &Value, h: &[(&'static str, String)], body: &[u8]) -> Result<(), VerifyError> {
        let ts = header(h, HEADER_TIMESTAMP);
        let now: i64 = ts.parse().expect("timestamp");
        verify(
            jwks,
            header(h, HEADER_ID),
            ts,
            header(h, HEADER_SIGNATURE),
            body,
            now,
            TOL,
        )
    }

    const BODY: &[u8] =
        br#"{"specversion":"1.0","id":"evt-1","type":"cn.gov.onewindow.case.submitted.v1"}"#;

    #[test]
    fn sign_then_verify_round_trips() {
        let ring = KeyRing::new(vec![SigningKey::generate(t0())]).expect("ring");
        let h = ring.sign("evt-1", t0().timestamp(), BODY);
        assert_eq!(h.len(), 3);
        assert_eq!(header(&h, HEADER_ID), "evt-1");
        assert_eq!(header(&h, HEADER_TIMESTAMP), t0().timestamp().to_string());
        let sig = header(&h, HEADER_SIGNATURE);
        assert!(sig.starts_with("v1a,"), "{sig}");
        assert!(!sig.contains(' '), "one key, one signature: {sig}");
        assert_eq!(check(&ring.jwks(t0()), &h, BODY), Ok(()));
    }

    #[test]
    fn tampered_body_id_or_timestamp_fails() {
        let ring = KeyRing::new(vec![SigningKey::generate(t0())]).expect("ring");
        let jwks = ring.jwks(t0());
        let ts = t0().timestamp();
        let h = ring.sign("evt-1", ts, BODY);
        let sig = header(&h, HEADER_SIGNATURE);
        let now = ts;
        let mut body = BODY.to_vec();
        body[5] ^= 1;
        assert_eq!(
            verify(&jwks, "evt-1", &ts.to_string(), sig, &body, now, TOL),
            Err(VerifyError::NoValidSignature)
        );
        assert_eq!(
            verify(&jwks, "evt-2", &ts.to_string(), sig, BODY, now, TOL),
            Err(VerifyError::NoValidSignature)
        );
        assert_eq!(
            verify(&jwks, "evt-1", &(ts + 1).to_string(), sig, BODY, now, TOL),
            Err(VerifyError::NoValidSignature)
        );
        // A trailing newline is a different body too.
        let mut nl = BODY.to_vec();
        nl.push(b'\n');
        assert_eq!(
            verify(&jwks, "evt-1", &ts.to_string(), sig, &nl, now, TOL),
            Err(VerifyError::NoValidSignature)
        );
        assert_eq!(
            verify(&jwks, "evt-1", &ts.to_string(), sig, BODY, now, TOL),
            Ok(())
        );
    }

    #[test]
    fn a_key_outside_the_jwks_fails() {
        let ours = KeyRing::new(vec![SigningKey::generate(t0())]).expect("ring");
        let theirs = KeyRing::new(vec![SigningKey::generate(t0())]).expect("ring");
        let h = theirs.sign("evt-1", t0().timestamp(), BODY);
        assert_eq!(
            check(&ours.jwks(t0()), &h, BODY),
            Err(VerifyError::NoValidSignature)
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_fail_both_ways() {
        let ring = KeyRing::new(vec![SigningKey::generate(t0())]).expect("ring");
        let jwks = ring.jwks(t0());
        let ts = t0().timestamp();
        let h = ring.sign("evt-1", ts, BODY);
        let sig = header(&h, HEADER_SIGNATURE);
        let v = |now: i64| verify(&jwks, "evt-1", &ts.to_string(), sig, BODY, now, TOL);
        assert_eq!(v(ts + TOL), Ok(()));
        assert_eq!(v(ts - TOL), Ok(()));
        assert_eq!(v(ts + TOL + 1), Err(VerifyError::TooOld));
        assert_eq!(v(ts - TOL - 1), Err(VerifyError::TooNew));
    }

    #[test]
    fn missing_headers_and_bad_timestamps_are_named() {
        let ring = KeyRing::new(vec![SigningKey::generate(t0())]).expect("ring");
        let jwks = ring.jwks(t0());
        let ts = t0().timestamp();
        let h = ring.sign("evt-1", ts, BODY);
        let sig = header(&h, HEADER_SIGNATURE);
        let tss = ts.to_string();
        assert_eq!(
            verify(&jwks, "", &tss, sig, BODY, ts, TOL),
            Err(VerifyError::MissingHeader)
        );
        assert_eq!(
            verify(&jwks, "evt-1", "", sig, BODY, ts, TOL),
            Err(VerifyError::MissingHeader)
        );
        assert_eq!(
            verify(&jwks, "evt-1", &tss, " ", BODY, ts, TOL),
            Err(VerifyError::MissingHeader)
        );
        for bad in [
            "abc",
            "-5",
            "+1740816000",
            "1740816000.5",
            "99999999999999999999",
        ] {
            assert_eq!(
                verify(&jwks, "evt-1", bad, sig, BODY, ts, TOL),
                Err(VerifyError::BadTimestamp),
                "{bad}"
            );
        }
    }

    #[test]
    fn rotation_publishes_the_old_key_until_it_retires_and_signs_with_the_new() {
        let first = SigningKey::generate(t0());
        let old_kid = first.kid.clone();
        let mut ring = KeyRing::new(vec![first]).expect("ring");
        let old_only_jwks = ring.jwks(t0());

        let now = t0() + chrono::Duration::days(30);
        let grace = chrono::Duration::hours(24);
        let new_kid = ring.rotate(now, grace).kid.clone();
        assert_ne!(new_kid, old_kid);
        assert_eq!(ring.current().kid, new_kid);
        assert_eq!(ring.keys().len(), 2);
        let old = ring.keys().iter().find(|k| k.kid == old_kid).expect("old");
        assert_eq!(old.retires_at, Some(now + grace));

        let kids = |jwks: &Value| -> Vec<String> {
            jwks["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .map(|k| k["kid"].as_str().expect("kid").to_owned())
                .collect()
        };
        // During the grace period both are published, the new one first.
        let during = ring.jwks(now + grace - chrono::Duration::seconds(1));
        assert_eq!(kids(&during), vec![new_kid.clone(), old_kid.clone()]);
        // From the retire time on only the new one.
        let after = ring.jwks(now + grace);
        assert_eq!(kids(&after), vec![new_kid.clone()]);

        // During the grace period a delivery carries two signatures, the new key's first;
        // a receiver with a stale JWKS (old key only) still verifies it.
        let ts = (now + chrono::Duration::hours(1)).timestamp();
        let h = ring.sign("evt-9", ts, BODY);
        let sig = header(&h, HEADER_SIGNATURE);
        let entries: Vec<&str> = sig.split(' ').collect();
        assert_eq!(entries.len(), 2, "{sig}");
        assert_eq!(check(&during, &h, BODY), Ok(()));
        assert_eq!(check(&old_only_jwks, &h, BODY), Ok(()));
        // The first entry is the new key's: it verifies with the new key alone.
        let first_only = vec![
            h[0].clone(),
            h[1].clone(),
            (HEADER_SIGNATURE, entries[0].to_owned()),
        ];
        assert_eq!(check(&after, &first_only, BODY), Ok(()));
        assert_eq!(
            check(&old_only_jwks, &first_only, BODY),
            Err(VerifyError::NoValidSignature)
        );

        // After the grace period only the new key signs.
        let h = ring.sign("evt-10", (now + grace).timestamp(), BODY);
        assert!(!header(&h, HEADER_SIGNATURE).contains(' '));
        assert_eq!(check(&after, &h, BODY), Ok(()));
        assert_eq!(
            check(&old_only_jwks, &h, BODY),
            Err(VerifyError::NoValidSignature)
        );

        // The next rotation drops the retired key from the ring.
        let later = now + chrono::Duration::days(30);
        ring.rotate(later, grace);
        assert_eq!(ring.keys().len(), 2);
        assert!(ring.keys().iter().all(|k| k.kid != old_kid));
    }

    #[test]
    fn rotation_with_a_clock_behind_still_makes_the_new_key_current() {
        let mut ring = KeyRing::new(vec![SigningKey::generate(t0())]).expect("ring");
        let kid = ring
            .rotate(
                t0() - chrono::Duration::hours(1),
                chrono::Duration::hours(2),
            )
            .kid
            .clone();
        assert_eq!(ring.current().kid, kid);
    }

    #[test]
    fn jwk_has_the_published_shape() {
        let k = SigningKey::generate(t0());
        let jwk = k.public_jwk();
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["kid"], k.kid.as_str());
        let x = jwk["x"].as_str().expect("x");
        assert!(!x.contains('='), "no padding: {x}");
        let bytes = URL_SAFE_NO_PAD.decode(x).expect("base64url");
        assert_eq!(bytes.len(), 32);
        let expect = format!("ow-{}", &hex::encode(Sha256::digest(&bytes))[..16]);
        assert_eq!(k.kid, expect);
        assert_eq!(k.kid.len(), 3 + 16);
        let ring = KeyRing::new(vec![k]).expect("ring");
        let jwks = ring.jwks(t0());
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));
        assert_eq!(jwks_keys(&jwks).map(|v| v.len()), Ok(1));
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused() {
        let k = SigningKey::generate(t0());
        let secret = k.secret_b64();
        let back = SigningKey::from_secret_b64(&k.kid, &secret, k.created_at).expect("restore");
        assert_eq!(back.public_jwk(), k.public_jwk());
        assert_eq!(back.secret_b64(), secret);
        // Signatures by the restored key verify with the original's JWK.
        let h = KeyRing::new(vec![back])
            .expect("ring")
            .sign("e", 1_000, b"x");
        let jwks = json!({ "keys": [k.public_jwk()] });
        assert_eq!(check(&jwks, &h, b"x"), Ok(()));
        // Debug never shows the secret.
        assert!(!format!("{k:?}").contains(&secret));

        assert!(matches!(
            SigningKey::from_secret_b64("k", "not base64!", t0()),
            Err(SigningError::BadSecret(_))
        ));
        assert!(matches!(
            SigningKey::from_secret_b64("k", &STANDARD.encode([0u8; 31]), t0()),
            Err(SigningError::BadSecret(_))
        ));
        assert!(matches!(
            SigningKey::from_secret_b64(" ", &secret, t0()),
            Err(SigningError::EmptyKid)
        ));
    }

    #[test]
    fn key_rings_need_distinct_keys() {
        assert!(matches!(KeyRing::new(vec![]), Err(SigningError::NoKeys)));
        let k = SigningKey::generate(t0());
        assert!(matches!(
            KeyRing::new(vec![k.clone(), k]),
            Err(SigningError::DuplicateKid(_))
        ));
    }

    #[test]
    fn current_is_the_newest_key() {
        let old = SigningKey::generate(t0());
        let new = SigningKey::generate(t0() + chrono::Duration::days(1));
        let new_kid = new.kid.clone();
        let ring = KeyRing::new(vec![new, old]).expect("ring");
        assert_eq!(ring.current().kid, new_kid);
    }

    #[test]
    fn one_good_v1a_among_several_signatures_verifies() {
        let ring = KeyRing::new(vec![SigningKey::generate(t0())]).expect("ring");
        let stranger = KeyRing::new(vec![SigningKey::generate(t0())]).expect("ring");
        let ts = t0().timestamp();
        let h = ring.sign("evt-1", ts, BODY);
        let good = header(&h, HEADER_SIGNATURE);
        let bad = header(&stranger.sign("evt-1", ts, BODY), HEADER_SIGNATURE).to_owned();
        let hmac = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=";
        let header_value = format!("{hmac} v1a,!!notbase64!! {bad} v1a,AAAA v1,x {good}");
        let tss = ts.to_string();
        let jwks = ring.jwks(t0());
        assert_eq!(
            verify(&jwks, "evt-1", &tss, &header_value, BODY, ts, TOL),
            Ok(())
        );
        // Without the good one nothing verifies; an HMAC entry never counts.
        let without = format!("{hmac} {bad}");
        assert_eq!(
            verify(&jwks, "evt-1", &tss, &without, BODY, ts, TOL),
            Err(VerifyError::NoValidSignature)
        );
        // Our signature under another version tag does not count either.
        let retagged = good.replacen("v1a,", "v1,", 1);
        assert_eq!(
            verify(&jwks, "evt-1", &tss, &retagged, BODY, ts, TOL),
            Err(VerifyError::NoValidSignature)
        );
    }

    #[test]
    fn jwks_with_foreign_keys_are_tolerated_and_empty_ones_refused() {
        let k = SigningKey::generate(t0());
        let h = KeyRing::new(vec![k.clone()])
            .expect("ring")
            .sign("e", t0().timestamp(), BODY);
        let mixed = json!({ "keys": [
            { "kty": "EC", "crv": "P-256", "x": "abc", "y": "def", "kid": "p" },
            { "kty": "OKP", "crv": "X25519", "x": "abc", "kid": "dh" },
            k.public_jwk(),
        ]});
        assert_eq!(check(&mixed, &h, BODY), Ok(()));
        assert!(matches!(
            check(&json!({ "keys": [] }), &h, BODY),
            Err(VerifyError::BadJwks(_))
        ));
        assert!(matches!(
            check(&json!({}), &h, BODY),
            Err(VerifyError::BadJwks(_))
        ));
        let short =
            json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "s" }] });
        assert!(matches!(
            check(&short, &h, BODY),
            Err(VerifyError::BadJwks(_))
        ));
    }

    /// The worked example of `docs/department-integration.md`; if this fails, update the
    /// guide with the new values.
    #[test]
    fn the_guides_worked_example_holds() {
        let key = SigningKey::from_secret_b64(WORKED_KID, WORKED_SECRET, t0()).expect("key");
        let ring = KeyRing::new(vec![key]).expect("ring");
        let jwks = ring.jwks(t0());
        assert_eq!(jwks["keys"][0]["x"], WORKED_X);
        assert_eq!(jwks["keys"][0]["kid"], WORKED_KID);
        let generated_style = kid_for(&ring.current().key.verifying_key());
        assert_eq!(generated_style, WORKED_KID, "the kid generate() would give");
        let h = ring.sign(WORKED_ID, WORKED_TS, WORKED_BODY.as_bytes());
        assert_eq!(header(&h, HEADER_SIGNATURE), WORKED_SIGNATURE);
        assert_eq!(
            verify(
                &jwks,
                WORKED_ID,
                &WORKED_TS.to_string(),
                WORKED_SIGNATURE,
                WORKED_BODY.as_bytes(),
                WORKED_TS + 10,
                TOL,
            ),
            Ok(())
        );
    }

    // The secret is the seed of RFC 8032 section 7.1, TEST 1, so the public key can be
    // checked against the RFC (d75a9801…511a).
    const WORKED_KID: &str = "ow-21fe31dfa154a261";
    const WORKED_SECRET: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    const WORKED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const WORKED_ID: &str = "019550b8-2400-7c3e-9f2a-4b1d2e3f4a5b";
    const WORKED_TS: i64 = 1_740_816_000;
    const WORKED_BODY: &str = r#"{"specversion":"1.0","id":"019550b8-2400-7c3e-9f2a-4b1d2e3f4a5b","source":"https://onewindow.example","type":"cn.gov.onewindow.case.submitted.v1","subject":"HLBE20250301-7KQ2M9XD","time":"2025-03-01T08:00:00Z","datacontenttype":"application/json","data":{"case_no":"HLBE20250301-7KQ2M9XD","service":"scjg-gtgsh-sl"}}"#;
    const WORKED_SIGNATURE: &str = "v1a,cCgazBO3FxW/SVwiVJqwDYodRcIpex0OajDZc8RMzphZwITatvQRQORnf9X1jSGUGGrsirHwe9ujCkq78LhdDQ==";
}
