//! Server secrets generated on first start (the audit blind-index key, the personal-data
//! key when none is configured), kept in the database so every instance shares them,
//! wrapped by the key-encryption key (`crate::kek`): a value still in plain text (from
//! before wrapping) or wrapped by the previous KEK is wrapped again when read.

use async_trait::async_trait;
use chrono::Utc;

use super::db::{Exec, Q};
use super::{SqlStore, StoreResult};

/// Named server secrets.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The named server secret; stores `fresh` under that name first if there is none
    /// (the first of several racing instances wins and all get its value). Stored
    /// wrapped by the key-encryption key; fails without one.
    async fn secret(&self, name: &str, fresh: &str) -> StoreResult<String>;
}

#[async_trait]
impl SecretStore for SqlStore {
    async fn secret(&self, name: &str, fresh: &str) -> StoreResult<String> {
        let q = Q::new(
            "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(self.kek.wrap(name, fresh.as_bytes())?)
        .bind(Utc::now());
        self.db.execute(q).await?;
        let q = Q::new("SELECT value FROM secrets WHERE name = $1").bind(name);
        let stored: String = self.db.fetch_one(q).await?.get("value")?;
        let (plain, again) = self.kek.open(name, &stored)?;
        if let Some(again) = again
            && super::KeyStore::replace_secret(self, name, &stored, &again).await?
        {
            tracing::info!(
                key = name,
                "a stored key was wrapped with the current key-encryption key"
            );
        }
        String::from_utf8(plain)
            .map_err(|_| super::StoreError::Corrupt(format!("the secret {name} is not text")))
    }
}
