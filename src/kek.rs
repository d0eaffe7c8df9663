//! The key-encryption key (KEK): every key the gateway keeps in its database (the
//! delivery signing keys, the personal-data keys, the blind-index key) is stored wrapped
//! by it, so a copy of the database alone opens nothing.
//!
//! - The KEK comes from the configuration: `key_encryption_key` (32 bytes, base64; also
//!   `ONEWINDOW_KEY_ENCRYPTION_KEY`) or `key_encryption_key_file` (a file holding it). It
//!   never enters the database.
//! - A wrapped key is `kek1:<kek id>:<base64 of nonce ‖ AES-256-GCM ciphertext>`, with
//!   the key's name (`signing_key:<kid>`, `personal_data_key` …) as associated data: a
//!   wrapped key copied under another name does not unwrap. The nonce is random.
//! - The KEK id is the first 8 bytes (hex) of an HMAC of the KEK, so a value wrapped by
//!   another KEK is recognised as such rather than failing as tampered.
//! - Rotating the KEK: configure the new one as `key_encryption_key` and the old one as
//!   `key_encryption_key_previous`; values wrapped by the previous KEK unwrap and are
//!   wrapped again by the new one when read (and all at once by `onewindow keys rewrap`).
//! - `serve` refuses to start without a KEK unless `development_instance` is set; a
//!   development instance (the demo, tests) without one generates it into
//!   `<data_dir>/key-encryption.key`, with a warning.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::config::Settings;

/// The prefix of a wrapped key.
const PREFIX: &str = "kek1:";

/// One key-encryption key.
pub struct Kek {
    id: String,
    cipher: Aes256Gcm,
    /// The KEK before a rotation, still accepted for unwrapping.
    previous: Option<Box<Kek>>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek({})", self.id)
    }
}

/// A wrapped key could not be unwrapped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnwrapError {
    /// Not in the wrapped form (a key still kept in plain text).
    #[error("the key is not wrapped")]
    NotWrapped,
    /// Wrapped by a KEK this instance does not have.
    #[error(
        "the key {name} is wrapped by the key-encryption key {kek_id}, which is not configured (key_encryption_key, key_encryption_key_previous)"
    )]
    UnknownKek {
        /// The key's name.
        name: String,
        /// The id of the KEK that wrapped it.
        kek_id: String,
    },
    /// Altered, moved under another name, or malformed.
    #[error("the wrapped key {0} does not open: altered, or stored under another name")]
    Tampered(String),
}

/// What unwrapping found.
#[derive(Debug, PartialEq, Eq)]
pub struct Unwrapped {
    /// The key.
    pub plain: Vec<u8>,
    /// True when the previous KEK wrapped it: it should be wrapped again.
    pub by_previous: bool,
}

fn id_of(key: &[u8; 32]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(b"onewindow kek id");
    hex::encode(&mac.finalize().into_bytes()[..8])
}

fn aad(name: &str) -> Vec<u8> {
    let mut a = b"onewindow kek\0".to_vec();
    a.extend_from_slice(name.as_bytes());
    a
}

impl Kek {
    /// A KEK from its 32 bytes.
    pub fn new(key: &[u8; 32]) -> Kek {
        Kek {
            id: id_of(key),
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key)),
            previous: None,
        }
    }

    /// Also accepts values wrapped by `previous` (during a KEK rotation).
    pub fn with_previous(mut self, previous: Kek) -> Kek {
        self.previous = Some(Box::new(previous));
        self
    }

    /// The KEK's id (not secret: it names the KEK, it does not reveal it).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether a stored value is in the wrapped form.
    pub fn is_wrapped(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// Wraps the key `plain` stored under `name`.
    pub fn wrap(&self, name: &str, plain: &[u8]) -> String {
        let nonce: [u8; 12] = rand::random();
        let ct = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: &aad(name),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer does not fail");
        let mut out = nonce.to_vec();
        out.extend(ct);
        format!("{PREFIX}{}:{}", self.id, STANDARD.encode(out))
    }

    /// Unwraps a value stored under `name`.
    pub fn unwrap(&self, name: &str, stored: &str) -> Result<Unwrapped, UnwrapError> {
        let rest = stored.strip_prefix(PREFIX).ok_or(UnwrapError::NotWrapped)?;
        let (kek_id, body) = rest
            .split_once(':')
            .ok_or_else(|| UnwrapError::Tampered(name.to_owned()))?;
        let (kek, by_previous) = if kek_id == self.id {
            (self, false)
        } else {
            match &self.previous {
                Some(p) if p.id == kek_id => (p.as_ref(), true),
                _ => {
                    return Err(UnwrapError::UnknownKek {
                        name: name.to_owned(),
                        kek_id: kek_id.to_owned(),
                    });
                }
            }
        };
        let bytes = STANDARD
            .decode(body)
            .ok()
            .filter(|b| b.len() >= 12 + 16)
            .ok_or_else(|| UnwrapError::Tampered(name.to_owned()))?;
        let (nonce, ct) = bytes.split_at(12);
        let mut n = [0u8; 12];
        n.copy_from_slice(nonce);
        let plain = kek
            .cipher
            .decrypt(
                &Nonce::from(n),
                Payload {
                    msg: ct,
                    aad: &aad(name),
                },
            )
            .map_err(|_| UnwrapError::Tampered(name.to_owned()))?;
        Ok(Unwrapped { plain, by_previous })
    }
}

/// The file a development instance keeps its generated KEK in.
pub const DEV_KEK_FILE: &str = "key-encryption.key";

/// The message `serve` refuses to start with when no KEK is configured.
pub const NO_KEK: &str = "no key-encryption key is configured: set key_encryption_key (32 bytes, base64; or ONEWINDOW_KEY_ENCRYPTION_KEY) or key_encryption_key_file, or set development_instance = true (ONEWINDOW_DEVELOPMENT_INSTANCE=true, or `serve --dev`) for a development instance that generates one into its data directory";

/// The KEK the settings give: configured, or on a development instance generated into
/// the data directory; `None` when there is none and this is not a development instance.
pub fn from_settings(settings: &Settings) -> anyhow::Result<Option<Kek>> {
    let k = &settings.keys;
    let current = if let Some(text) = &k.key_encryption_key {
        Some(
            crate::sharing::seal::parse_key(text.expose_secret())
                .map_err(|e| anyhow::anyhow!("key_encryption_key: {e}"))?,
        )
    } else if let Some(path) = &k.key_encryption_key_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("key_encryption_key_file {}", path.display()))?;
        Some(
            crate::sharing::seal::parse_key(&text)
                .map_err(|e| anyhow::anyhow!("key_encryption_key_file {}: {e}", path.display()))?,
        )
    } else if k.development_instance {
        Some(dev_kek(&settings.server.data_dir)?)
    } else {
        None
    };
    let Some(current) = current else {
        return Ok(None);
    };
    let mut kek = Kek::new(&current);
    if let Some(p) = &k.key_encryption_key_previous {
        let p = crate::sharing::seal::parse_key(p.expose_secret())
            .map_err(|e| anyhow::anyhow!("key_encryption_key_previous: {e}"))?;
        kek = kek.with_previous(Kek::new(&p));
    }
    Ok(Some(kek))
}

/// The generated KEK of a development instance (made on first use, readable by the
/// owner only).
fn dev_kek(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = data_dir.join(DEV_KEK_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return crate::sharing::seal::parse_key(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let key: [u8; 32] = rand::random();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(&path) {
        Ok(mut f) => {
            std::io::Write::write_all(&mut f, STANDARD.encode(key).as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::warn!(
                file = %path.display(),
                "development instance: a key-encryption key was generated into the data directory; production configures key_encryption_key or key_encryption_key_file"
            );
            Ok(key)
        }
        // Another process made it first.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            crate::sharing::seal::parse_key(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_opens_under_its_name_only() {
        let kek = Kek::new(&[1; 32]);
        let w = kek.wrap("personal_data_key", b"secret bytes");
        assert!(Kek::is_wrapped(&w));
        assert!(!w.contains("secret"));
        assert_eq!(
            kek.unwrap("personal_data_key", &w),
            Ok(Unwrapped {
                plain: b"secret bytes".to_vec(),
                by_previous: false
            })
        );
        assert_eq!(
            kek.unwrap("signing_key:x", &w),
            Err(UnwrapError::Tampered("signing_key:x".into()))
        );
        assert_ne!(
            w,
            kek.wrap("personal_data_key", b"secret bytes"),
            "random nonce"
        );
    }

    #[test]
    fn another_kek_is_named_and_a_previous_one_accepted() {
        let old = Kek::new(&[1; 32]);
        let w = old.wrap("k", b"v");
        let new = Kek::new(&[2; 32]);
        assert!(matches!(
            new.unwrap("k", &w),
            Err(UnwrapError::UnknownKek { .. })
        ));
        let rotating = Kek::new(&[2; 32]).with_previous(Kek::new(&[1; 32]));
        assert_eq!(
            rotating.unwrap("k", &w),
            Ok(Unwrapped {
                plain: b"v".to_vec(),
                by_previous: true
            })
        );
        assert_eq!(new.unwrap("k", "plain"), Err(UnwrapError::NotWrapped));
    }

    #[test]
    fn an_altered_wrapped_key_is_refused() {
        let kek = Kek::new(&[1; 32]);
        let w = kek.wrap("k", b"value");
        let (head, body) = w.rsplit_once(':').expect("form");
        let mut bytes = STANDARD.decode(body).expect("b64");
        bytes[20] ^= 1;
        let bad = format!("{head}:{}", STANDARD.encode(bytes));
        assert_eq!(
            kek.unwrap("k", &bad),
            Err(UnwrapError::Tampered("k".into()))
        );
    }

    #[test]
    fn a_development_instance_keeps_its_generated_kek() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = dev_kek(dir.path()).expect("made");
        let b = dev_kek(dir.path()).expect("read");
        assert_eq!(a, b);
    }
}
