//! The versions of service definitions the gateway has served, so a case can point at
//! the exact form that was filled in even after the definition changed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::db::{Arg, Exec, Q, ROWS_PER_STATEMENT, Row};
use super::{SqlStore, StoreResult};

/// One published version of a service definition.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceVersion {
    /// Service code.
    pub code: String,
    /// Content hash of the definition.
    pub version: String,
    /// The definition as JSON.
    pub definition: serde_json::Value,
    /// When this gateway first served it.
    pub published_at: DateTime<Utc>,
}

/// A version without its body, for history lists.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceVersionInfo {
    /// Content hash of the definition.
    pub version: String,
    /// When this gateway first served it.
    pub published_at: DateTime<Utc>,
}

/// The catalogue's version history.
#[async_trait]
pub trait CatalogueStore: Send + Sync {
    /// Records definitions not seen before (idempotent; safe when several instances
    /// start at once). Returns how many versions were new.
    async fn record_service_versions(&self, versions: &[ServiceVersion]) -> StoreResult<u64>;

    /// The versions of one service this gateway has served, newest first.
    async fn service_versions(&self, code: &str) -> StoreResult<Vec<ServiceVersionInfo>>;

    /// One stored version with its definition.
    async fn service_version(
        &self,
        code: &str,
        version: &str,
    ) -> StoreResult<Option<ServiceVersion>>;
}

#[async_trait]
impl CatalogueStore for SqlStore {
    async fn record_service_versions(&self, versions: &[ServiceVersion]) -> StoreResult<u64> {
        // One statement per chunk of the catalogue: one round trip for any real catalogue,
        // and `DO NOTHING` makes instances starting together harmless.
        let mut added = 0;
        for chunk in versions.chunks(ROWS_PER_STATEMENT) {
            let q = Q::new(
                "INSERT INTO service_versions (code, version, definition, published_at) VALUES ",
            )
            .push_rows(chunk.iter().map(|v| {
                [
                    Arg::from(&v.code),
                    Arg::from(&v.version),
                    Arg::from(&v.definition),
                    Arg::from(v.published_at),
                ]
            }))
            .push(" ON CONFLICT (code, version) DO NOTHING");
            added += self.db.execute(q).await?;
        }
        Ok(added)
    }

    async fn service_versions(&self, code: &str) -> StoreResult<Vec<ServiceVersionInfo>> {
        let q = Q::new(
            "SELECT version, published_at FROM service_versions WHERE code = $1 \
             ORDER BY published_at DESC, version",
        )
        .bind(code);
        self.db
            .fetch_all_with(q, |r| {
                Ok(ServiceVersionInfo {
                    version: r.get("version")?,
                    published_at: r.get("published_at")?,
                })
            })
            .await
    }

    async fn service_version(
        &self,
        code: &str,
        version: &str,
    ) -> StoreResult<Option<ServiceVersion>> {
        let q = Q::new(
            "SELECT code, version, definition, published_at FROM service_versions \
             WHERE code = $1 AND version = $2",
        )
        .bind(code)
        .bind(version);
        self.db.fetch_optional_with(q, version_from_row).await
    }
}

fn version_from_row(r: &Row) -> StoreResult<ServiceVersion> {
    Ok(ServiceVersion {
        code: r.get("code")?,
        version: r.get("version")?,
        definition: r.get("definition")?,
        published_at: r.get("published_at")?,
    })
}
