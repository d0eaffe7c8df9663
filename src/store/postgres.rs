//! The PostgreSQL store for production: several gateway instances share one database.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use chrono::{DateTime, Utc};

use super::{
    Account, AccountRow, ApiToken, ServiceVersion, ServiceVersionInfo, Store, StoreError,
    StoreResult, split_scopes,
};
use crate::auth::identity::Identity;

fn token_from_row(r: &sqlx::postgres::PgRow) -> StoreResult<ApiToken> {
    Ok(ApiToken {
        id: r.try_get("id")?,
        department: r.try_get("department")?,
        name: r.try_get("name")?,
        scopes: split_scopes(r.try_get("scopes")?),
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

const TOKEN_COLUMNS: &str = "id, department, name, scopes, created_at, expires_at, revoked_at";

/// PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects a pool; fails when the server does not answer within a few seconds.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<PgStore> {
        let options = PgConnectOptions::from_str(url)?.application_name("onewindow");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(PgStore { pool })
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<usize> {
        let migrator = sqlx::migrate!("migrations/postgres");
        let before = applied_count(&self.pool).await;
        migrator.run(&self.pool).await?;
        Ok(applied_count(&self.pool).await.saturating_sub(before))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn record_service_versions(&self, versions: &[ServiceVersion]) -> StoreResult<u64> {
        if versions.is_empty() {
            return Ok(0);
        }
        // One statement for the whole catalogue: one round trip however many services.
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO service_versions (code, version, definition, published_at) ",
        );
        qb.push_values(versions, |mut b, v| {
            b.push_bind(&v.code)
                .push_bind(&v.version)
                .push_bind(&v.definition)
                .push_bind(v.published_at);
        });
        qb.push(" ON CONFLICT (code, version) DO NOTHING");
        let r = qb.build().execute(&self.pool).await?;
        Ok(r.rows_affected())
    }

    async fn service_versions(&self, code: &str) -> StoreResult<Vec<ServiceVersionInfo>> {
        let rows = sqlx::query(
            "SELECT version, published_at FROM service_versions WHERE code = $1 \
             ORDER BY published_at DESC, version",
        )
        .bind(code)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ServiceVersionInfo {
                    version: r.try_get("version")?,
                    published_at: r.try_get("published_at")?,
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
             WHERE code = $1 AND version = $2",
        )
        .bind(code)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok::<_, StoreError>(ServiceVersion {
                code: r.try_get("code")?,
                version: r.try_get("version")?,
                definition: r.try_get("definition")?,
                published_at: r.try_get("published_at")?,
            })
        })
        .transpose()
    }

    async fn upsert_account(&self, who: &Identity, now: DateTime<Utc>) -> StoreResult<uuid::Uuid> {
        let roles =
            serde_json::to_value(&who.roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO accounts (id, issuer, subject, kind, name, id_number, phone, assurance, \
             enterprise_uscc, enterprise_name, enterprise_role, roles, created_at, last_login_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
             ON CONFLICT (issuer, subject) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
             id_number = excluded.id_number, phone = excluded.phone, assurance = excluded.assurance, \
             enterprise_uscc = excluded.enterprise_uscc, enterprise_name = excluded.enterprise_name, \
             enterprise_role = excluded.enterprise_role, roles = excluded.roles, \
             last_login_at = excluded.last_login_at \
             RETURNING id",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(&who.issuer)
        .bind(&who.subject)
        .bind(who.kind.code())
        .bind(&who.name)
        .bind(who.id_number.as_ref().map(|i| i.expose().to_owned()))
        .bind(&who.phone)
        .bind(i16::from(who.assurance))
        .bind(who.enterprise.as_ref().map(|e| e.uscc.clone()))
        .bind(who.enterprise.as_ref().map(|e| e.name.clone()))
        .bind(who.enterprise.as_ref().map(|e| e.role.clone()))
        .bind(roles)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn account(&self, id: uuid::Uuid) -> StoreResult<Option<Account>> {
        let row = sqlx::query("SELECT * FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            AccountRow {
                id: r.try_get("id")?,
                issuer: r.try_get("issuer")?,
                subject: r.try_get("subject")?,
                kind: r.try_get("kind")?,
                name: r.try_get("name")?,
                id_number: r.try_get("id_number")?,
                phone: r.try_get("phone")?,
                assurance: i64::from(r.try_get::<i16, _>("assurance")?),
                enterprise_uscc: r.try_get("enterprise_uscc")?,
                enterprise_name: r.try_get("enterprise_name")?,
                enterprise_role: r.try_get("enterprise_role")?,
                roles: r.try_get("roles")?,
                created_at: r.try_get("created_at")?,
                last_login_at: r.try_get("last_login_at")?,
            }
            .into_account()
        })
        .transpose()
    }

    async fn insert_api_token(&self, t: &ApiToken, token_hash: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, department, name, scopes, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(t.id)
        .bind(&t.department)
        .bind(&t.name)
        .bind(t.scopes.join(" "))
        .bind(token_hash)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
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
        let r = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

async fn applied_count(pool: &PgPool) -> usize {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map(|n| n as usize)
        .unwrap_or(0)
}
