//! Server secrets generated on first start (the audit blind-index key, the personal-data
//! key when none is configured), kept in the database so every instance shares them.

use async_trait::async_trait;
use chrono::Utc;

use super::db::{Exec, Q};
use super::{SqlStore, StoreResult};

/// Named server secrets.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The named server secret; stores `fresh` under that name first if there is none
    /// (the first of several racing instances wins and all get its value).
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
        .bind(fresh)
        .bind(Utc::now());
        self.db.execute(q).await?;
        let q = Q::new("SELECT value FROM secrets WHERE name = $1").bind(name);
        self.db.fetch_one(q).await?.get("value")
    }
}
