//! Local accounts (upserted at every login) and department systems' API tokens.
//!
//! The ID number, phone and email are personal data: they are written and read only
//! here, sealed per row, so that how they are kept at rest is this file's business.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::db::{Exec, Q, Row};
use super::{SqlStore, StoreError, StoreResult, row_aad};
use crate::auth::identity::{AccountKind, EnterpriseRep, Identity, Role};
use crate::domain::ids::ResidentId;

/// A local account as stored.
#[derive(Debug, Clone)]
pub struct Account {
    /// Account id.
    pub id: Uuid,
    /// Provider issuer.
    pub issuer: String,
    /// Subject at the provider.
    pub subject: String,
    /// Kind.
    pub kind: AccountKind,
    /// Display name.
    pub name: String,
    /// Resident ID number (personal data: only through these methods).
    pub id_number: Option<ResidentId>,
    /// Phone number (personal data).
    pub phone: Option<String>,
    /// Email address (personal data), for notifications.
    pub email: Option<String>,
    /// Assurance level at the last login.
    pub assurance: u8,
    /// Represented enterprise.
    pub enterprise: Option<EnterpriseRep>,
    /// Roles at the last login.
    pub roles: Vec<Role>,
    /// First login.
    pub created_at: DateTime<Utc>,
    /// Latest login.
    pub last_login_at: DateTime<Utc>,
}

/// A department system's API token (without the token itself).
#[derive(Debug, Clone, Serialize)]
pub struct ApiToken {
    /// Token id (shown in lists, used to revoke).
    pub id: Uuid,
    /// The department's USCC.
    pub department: String,
    /// What the token is for.
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Usable now: not revoked and not expired.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// Accounts and API tokens.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates or updates the account of a provider subject at login; returns its id.
    async fn upsert_account(&self, identity: &Identity, now: DateTime<Utc>) -> StoreResult<Uuid>;

    /// One account.
    async fn account(&self, id: Uuid) -> StoreResult<Option<Account>>;

    /// Stores a new API token by its hash.
    async fn insert_api_token(&self, token: &ApiToken, token_hash: &str) -> StoreResult<()>;

    /// Finds a token by the hash of its secret.
    async fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>>;

    /// Every token, newest first.
    async fn api_tokens(&self) -> StoreResult<Vec<ApiToken>>;

    /// Revokes a token; false when there is no such active token.
    async fn revoke_api_token(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool>;
}

/// The row identity that seals an account's columns: (issuer, subject), which an upsert
/// keeps, unlike the id it draws for a new row.
fn sealed_as(issuer: &str, subject: &str, column: &str) -> String {
    row_aad("accounts", column, &format!("{issuer}\0{subject}"))
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn upsert_account(&self, who: &Identity, now: DateTime<Utc>) -> StoreResult<Uuid> {
        let roles =
            serde_json::to_value(&who.roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let seal = |column: &str, v: Option<&str>| {
            self.seal
                .text(&sealed_as(&who.issuer, &who.subject, column), v)
        };
        let enterprise = who.enterprise.as_ref();
        let q = Q::new(
            "INSERT INTO accounts (id, issuer, subject, kind, name, id_number, phone, assurance, \
             enterprise_uscc, enterprise_name, enterprise_role, roles, created_at, last_login_at, email) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14) \
             ON CONFLICT (issuer, subject) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
             id_number = excluded.id_number, phone = excluded.phone, email = excluded.email, \
             assurance = excluded.assurance, enterprise_uscc = excluded.enterprise_uscc, \
             enterprise_name = excluded.enterprise_name, enterprise_role = excluded.enterprise_role, \
             roles = excluded.roles, last_login_at = excluded.last_login_at \
             RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(&who.issuer)
        .bind(&who.subject)
        .bind(who.kind.code())
        .bind(&who.name)
        .bind(seal("id_number", who.id_number.as_ref().map(|i| i.expose())))
        .bind(seal("phone", who.phone.as_deref()))
        .bind(i16::from(who.assurance))
        .bind(enterprise.map(|e| e.uscc.clone()))
        .bind(enterprise.map(|e| e.name.clone()))
        .bind(enterprise.map(|e| e.role.clone()))
        .bind(roles)
        .bind(now)
        .bind(seal("email", who.email.as_deref()));
        self.db.fetch_one(q).await?.get("id")
    }

    async fn account(&self, id: Uuid) -> StoreResult<Option<Account>> {
        let q = Q::new("SELECT * FROM accounts WHERE id = $1").bind(id);
        let Some(r) = self.db.fetch_optional(q).await? else {
            return Ok(None);
        };
        let issuer: String = r.get("issuer")?;
        let subject: String = r.get("subject")?;
        let open = |column: &str| {
            self.seal
                .open_text(&sealed_as(&issuer, &subject, column), r.get(column)?)
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("account {id}: bad {what}"));
        let kind: String = r.get("kind")?;
        let id_number = open("id_number")?
            .map(|s| ResidentId::parse(&s).map_err(|_| corrupt("id_number")))
            .transpose()?;
        let roles = serde_json::from_value(r.get("roles")?).map_err(|_| corrupt("roles"))?;
        let enterprise = match (r.get("enterprise_uscc")?, r.get("enterprise_name")?) {
            (Some(uscc), Some(name)) => Some(EnterpriseRep {
                uscc,
                name,
                role: r
                    .get::<Option<String>>("enterprise_role")?
                    .unwrap_or_default(),
            }),
            _ => None,
        };
        Ok(Some(Account {
            id: r.get("id")?,
            kind: AccountKind::from_code(&kind).ok_or_else(|| corrupt("kind"))?,
            name: r.get("name")?,
            id_number,
            phone: open("phone")?,
            email: open("email")?,
            assurance: r.get::<i16>("assurance")?.clamp(0, 3) as u8,
            enterprise,
            roles,
            created_at: r.get("created_at")?,
            last_login_at: r.get("last_login_at")?,
            issuer,
            subject,
        }))
    }

    async fn insert_api_token(&self, t: &ApiToken, token_hash: &str) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO api_tokens (id, department, name, scopes, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(t.id)
        .bind(&t.department)
        .bind(&t.name)
        .bind(t.scopes.join(" "))
        .bind(token_hash)
        .bind(t.created_at)
        .bind(t.expires_at);
        self.db.execute(q).await?;
        Ok(())
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>> {
        let q = Q::new(TOKEN_SELECT)
            .push(" WHERE token_hash = $1")
            .bind(token_hash);
        self.db.fetch_optional_with(q, token_from_row).await
    }

    async fn api_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let q = Q::new(TOKEN_SELECT).push(" ORDER BY created_at DESC, id DESC");
        self.db.fetch_all_with(q, token_from_row).await
    }

    async fn revoke_api_token(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
        let q =
            Q::new("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id);
        Ok(self.db.execute(q).await? == 1)
    }
}

const TOKEN_SELECT: &str =
    "SELECT id, department, name, scopes, created_at, expires_at, revoked_at FROM api_tokens";

fn token_from_row(r: &Row) -> StoreResult<ApiToken> {
    Ok(ApiToken {
        id: r.get("id")?,
        department: r.get("department")?,
        name: r.get("name")?,
        scopes: r
            .get::<String>("scopes")?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
        revoked_at: r.get("revoked_at")?,
    })
}
