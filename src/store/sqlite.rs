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

use super::{
    Account, AccountRow, ApiToken, ServiceVersion, ServiceVersionInfo, Store, StoreError,
    StoreResult, split_scopes,
};
use crate::auth::identity::Identity;

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

fn parse_uuid(s: &str) -> StoreResult<uuid::Uuid> {
    uuid::Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("bad id {s:?}: {e}")))
}

fn opt_time(s: Option<String>) -> StoreResult<Option<DateTime<Utc>>> {
    s.as_deref().map(parse_time).transpose()
}

fn token_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<ApiToken> {
    Ok(ApiToken {
        id: parse_uuid(r.try_get("id")?)?,
        department: r.try_get("department")?,
        name: r.try_get("name")?,
        scopes: split_scopes(r.try_get("scopes")?),
        created_at: parse_time(r.try_get("created_at")?)?,
        expires_at: opt_time(r.try_get("expires_at")?)?,
        revoked_at: opt_time(r.try_get("revoked_at")?)?,
    })
}

const TOKEN_COLUMNS: &str = "id, department, name, scopes, created_at, expires_at, revoked_at";

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

    async fn upsert_account(&self, who: &Identity, now: DateTime<Utc>) -> StoreResult<uuid::Uuid> {
        let roles =
            serde_json::to_string(&who.roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id: String = sqlx::query_scalar(
            "INSERT INTO accounts (id, issuer, subject, kind, name, id_number, phone, assurance, \
             enterprise_uscc, enterprise_name, enterprise_role, roles, created_at, last_login_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (issuer, subject) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
             id_number = excluded.id_number, phone = excluded.phone, assurance = excluded.assurance, \
             enterprise_uscc = excluded.enterprise_uscc, enterprise_name = excluded.enterprise_name, \
             enterprise_role = excluded.enterprise_role, roles = excluded.roles, \
             last_login_at = excluded.last_login_at \
             RETURNING id",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&who.issuer)
        .bind(&who.subject)
        .bind(who.kind.code())
        .bind(&who.name)
        .bind(who.id_number.as_ref().map(|i| i.expose().to_owned()))
        .bind(&who.phone)
        .bind(i64::from(who.assurance))
        .bind(who.enterprise.as_ref().map(|e| e.uscc.clone()))
        .bind(who.enterprise.as_ref().map(|e| e.name.clone()))
        .bind(who.enterprise.as_ref().map(|e| e.role.clone()))
        .bind(roles)
        .bind(now.to_rfc3339())
        .bind(now.to_rfc3339())
        .fetch_one(&self.pool)
        .await?;
        parse_uuid(&id)
    }

    async fn account(&self, id: uuid::Uuid) -> StoreResult<Option<Account>> {
        let row = sqlx::query("SELECT * FROM accounts WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let roles: String = r.try_get("roles")?;
            AccountRow {
                id: parse_uuid(r.try_get("id")?)?,
                issuer: r.try_get("issuer")?,
                subject: r.try_get("subject")?,
                kind: r.try_get("kind")?,
                name: r.try_get("name")?,
                id_number: r.try_get("id_number")?,
                phone: r.try_get("phone")?,
                assurance: r.try_get("assurance")?,
                enterprise_uscc: r.try_get("enterprise_uscc")?,
                enterprise_name: r.try_get("enterprise_name")?,
                enterprise_role: r.try_get("enterprise_role")?,
                roles: serde_json::from_str(&roles)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                created_at: parse_time(r.try_get("created_at")?)?,
                last_login_at: parse_time(r.try_get("last_login_at")?)?,
            }
            .into_account()
        })
        .transpose()
    }

    async fn insert_api_token(&self, t: &ApiToken, token_hash: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, department, name, scopes, token_hash, created_at, expires_at, revoked_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
        )
        .bind(t.id.to_string())
        .bind(&t.department)
        .bind(&t.name)
        .bind(t.scopes.join(" "))
        .bind(token_hash)
        .bind(t.created_at.to_rfc3339())
        .bind(t.expires_at.map(|e| e.to_rfc3339()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?"
        )))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn api_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at DESC, id DESC"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_api_token(&self, id: uuid::Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
        let r =
            sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now.to_rfc3339())
                .bind(id.to_string())
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() == 1)
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
