//! The signing key ring: generated on first start and kept in the store, so every
//! instance signs with the same keys; reloaded periodically so a rotation made by
//! `onewindow keys rotate` reaches running instances.

use std::sync::RwLock;

use chrono::{DateTime, Utc};

use super::signing::{KeyRing, SigningKey};
use crate::store::{Store, StoredKey};

/// How long the previous key stays valid after a rotation, by default.
pub const DEFAULT_GRACE: chrono::Duration = chrono::Duration::days(7);

fn to_stored(k: &SigningKey) -> StoredKey {
    StoredKey {
        kid: k.kid.clone(),
        secret: k.secret_b64(),
        created_at: k.created_at,
        retires_at: k.retires_at,
    }
}

fn from_stored(rows: &[StoredKey]) -> anyhow::Result<KeyRing> {
    let keys = rows
        .iter()
        .map(|r| {
            let mut k = SigningKey::from_secret_b64(&r.kid, &r.secret, r.created_at)?;
            k.retires_at = r.retires_at;
            Ok(k)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(KeyRing::new(keys)?)
}

/// Loads the ring, creating the first key when there is none.
pub async fn load(store: &dyn Store, now: DateTime<Utc>) -> anyhow::Result<KeyRing> {
    let first = to_stored(&SigningKey::generate(now));
    let rows = store.ensure_signing_key(&first).await?;
    from_stored(&rows)
}

/// Rotates: a new key signs from now on; the previous one stays published for `grace`.
pub async fn rotate(
    store: &dyn Store,
    now: DateTime<Utc>,
    grace: chrono::Duration,
) -> anyhow::Result<KeyRing> {
    let mut ring = load(store, now).await?;
    ring.rotate(now, grace);
    let rows: Vec<StoredKey> = ring.keys().iter().map(to_stored).collect();
    store.save_signing_keys(&rows).await?;
    Ok(ring)
}

/// The ring an instance holds, refreshed from the store.
pub struct Keys(RwLock<KeyRing>);

impl Keys {
    /// Wraps a loaded ring.
    pub fn new(ring: KeyRing) -> Keys {
        Keys(RwLock::new(ring))
    }

    /// Runs `f` with the current ring.
    pub fn with<T>(&self, f: impl FnOnce(&KeyRing) -> T) -> T {
        match self.0.read() {
            Ok(g) => f(&g),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// Reloads from the store (after a rotation elsewhere).
    pub async fn refresh(&self, store: &dyn Store) -> anyhow::Result<()> {
        let ring = load(store, Utc::now()).await?;
        match self.0.write() {
            Ok(mut g) => *g = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        Ok(())
    }
}
