//! Durable storage behind one trait, with an embedded SQLite implementation (the zero-
//! configuration default) and a PostgreSQL one for production; the URL scheme picks.
//!
//! Queries are checked at run time (`query` + `bind`), never with compile-time macros,
//! so building needs no database. Each backend has its own migrations in
//! `migrations/<backend>/`, embedded in the binary. The same behavioural tests run
//! against both implementations.

mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::config::DatabaseKind;

/// A storage failure. Callers map it to a generic 500; the detail is logged once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed or the database is ahead of this binary.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

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

/// Everything the gateway keeps durably. Implementations must be safe to share between
/// tasks and between gateway instances using the same database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Applies pending migrations; returns how many were applied.
    async fn migrate(&self) -> StoreResult<usize>;

    /// Answers when the database is reachable (one trivial query).
    async fn ping(&self) -> StoreResult<()>;

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

    /// Closes the pool, waiting for connections in use.
    async fn close(&self);
}

/// Opens the store the URL names (creating the SQLite file and its directory when needed).
pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Arc<dyn Store>> {
    let kind = if url.starts_with("sqlite:") {
        DatabaseKind::Sqlite
    } else {
        DatabaseKind::Postgres
    };
    Ok(match kind {
        DatabaseKind::Sqlite => Arc::new(SqliteStore::connect(url, max_connections).await?),
        DatabaseKind::Postgres => Arc::new(PgStore::connect(url, max_connections).await?),
    })
}
