//! The embedded SQLite store: one file under the data directory, WAL journal,
//! `synchronous=FULL` (a submission acknowledged is a submission kept).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{ServiceVersion, ServiceVersionInfo, Store, StoreError, StoreResult};

/// SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (and creates, with its parent directory) the database file.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let file = options.get_filename();
        if let Some(parent) = file.parent()
            && !parent.as_os_str().is_empty()
            && file.as_os_str() != ":memory:"
        {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Database(e.into()))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.clamp(1, 16))
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool })
    }
}

fn parse_time(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {s:?}: {e}")))
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<usize> {
        let migrator = sqlx::migrate!("migrations/sqlite");
        let before = applied_count(&self.pool).await;
        migrator.run(&self.pool).await?;
        Ok(applied_count(&self.pool).await.saturating_sub(before))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn record_service_versions(&self, versions: &[ServiceVersion]) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for v in versions {
            let r = sqlx::query(
                "INSERT INTO service_versions (code, version, definition, published_at) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (code, version) DO NOTHING",
            )
            .bind(&v.code)
            .bind(&v.version)
            .bind(v.definition.to_string())
            .bind(v.published_at.to_rfc3339())
            .execute(&mut *tx)
            .await?;
            added += r.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn service_versions(&self, code: &str) -> StoreResult<Vec<ServiceVersionInfo>> {
        let rows = sqlx::query(
            "SELECT version, published_at FROM service_versions WHERE code = ? \
             ORDER BY published_at DESC, version",
        )
        .bind(code)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ServiceVersionInfo {
                    version: r.try_get("version")?,
                    published_at: parse_time(r.try_get("published_at")?)?,
                })
            })
            .collect()
    }

    async fn service_version(
        &self,
        code: &str,
        version: &str,
    ) -> StoreResult<Option<ServiceVersion>> {
        let row = sqlx::query(
            "SELECT code, version, definition, published_at FROM service_versions \
             WHERE code = ? AND version = ?",
        )
        .bind(code)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let def: String = r.try_get("definition")?;
            Ok(ServiceVersion {
                code: r.try_get("code")?,
                version: r.try_get("version")?,
                definition: serde_json::from_str(&def)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                published_at: parse_time(r.try_get("published_at")?)?,
            })
        })
        .transpose()
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

async fn applied_count(pool: &SqlitePool) -> usize {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map(|n| n as usize)
        .unwrap_or(0)
}
