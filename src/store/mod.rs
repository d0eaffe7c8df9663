//! Durable storage behind one trait, with an embedded SQLite implementation (the zero-
//! configuration default) and a PostgreSQL one for production; the URL scheme picks.
//!
//! Queries are checked at run time (`query` + `bind`), never with compile-time macros,
//! so building needs no database. Each backend has its own migrations in
//! `migrations/<backend>/`, embedded in the binary. The same behavioural tests run
//! against both implementations.

pub mod cases;
pub mod exchange;
mod postgres;
pub mod shared;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::auth::identity::{AccountKind, EnterpriseRep, Identity, Role};
use crate::config::DatabaseKind;
use crate::domain::ids::ResidentId;
pub use cases::{
    CaseApplicant, CaseFilter, CaseRow, CaseWrite, DraftRow, EventRow, IdemRecord, MaterialRow,
    NewMaterial, NoticeRow, OutboxRow, UploadRow, WriteOutcome,
};
pub use exchange::{
    AttemptOutcome, AttemptRow, Delivery, DeliveryFilter, DepartmentEndpoint, StoredKey,
};
pub use shared::{AccessRecord, BaseRecord, ConsentRow, NewAccess, SharingFigures, UpsertCounts};

/// Seals the personal data of case, account and draft rows at rest (AES-256-GCM, see
/// `sharing::seal`), once the application has set the sealer. Values are bound to their
/// row and column. A value that is not sealed (written before sealing existed, or by a
/// store used without one) is read as it is.
#[derive(Default, Clone)]
pub struct RowSeal(Arc<std::sync::OnceLock<Arc<crate::sharing::seal::Sealer>>>);

impl std::fmt::Debug for RowSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RowSeal(set: {})", self.0.get().is_some())
    }
}

impl RowSeal {
    /// Sets the sealer; a second call is ignored.
    pub fn set(&self, sealer: Arc<crate::sharing::seal::Sealer>) {
        let _ = self.0.set(sealer);
    }

    /// A text column's stored form.
    pub(crate) fn text(&self, aad: &str, v: Option<&str>) -> Option<String> {
        let v = v?;
        Some(match self.0.get() {
            Some(s) => s
                .seal(aad, &serde_json::Value::String(v.to_owned()))
                .to_string(),
            None => v.to_owned(),
        })
    }

    /// A text column read back.
    pub(crate) fn open_text(&self, aad: &str, v: Option<String>) -> StoreResult<Option<String>> {
        let Some(v) = v else { return Ok(None) };
        if !v.starts_with("{\"") {
            return Ok(Some(v));
        }
        let sealed: serde_json::Value = match serde_json::from_str(&v) {
            Ok(j) => j,
            Err(_) => return Ok(Some(v)),
        };
        match self.open_json(aad, sealed)? {
            serde_json::Value::String(t) => Ok(Some(t)),
            _ => Err(StoreError::Corrupt(format!(
                "{aad}: sealed text is not text"
            ))),
        }
    }

    /// A JSON column's stored form.
    pub(crate) fn json(&self, aad: &str, v: &serde_json::Value) -> serde_json::Value {
        match self.0.get() {
            Some(s) => s.seal(aad, v),
            None => v.clone(),
        }
    }

    /// A JSON column read back.
    pub(crate) fn open_json(
        &self,
        aad: &str,
        v: serde_json::Value,
    ) -> StoreResult<serde_json::Value> {
        let is_sealed = v.get("v").is_some() && v.get("sealed").is_some_and(|x| x.is_string());
        if !is_sealed {
            return Ok(v);
        }
        let s = self.0.get().ok_or_else(|| {
            StoreError::Corrupt(format!("{aad}: sealed, and this store has no key"))
        })?;
        s.open(aad, &v)
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", aad.replace('\0', "/"))))
    }
}

/// The associated data of a sealed column: table, column and the row's identity.
pub(crate) fn row_aad(table: &str, column: &str, row: &str) -> String {
    format!("{table}\0{column}\0{row}")
}

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

/// A local account as stored.
#[derive(Debug, Clone)]
pub struct Account {
    /// Account id.
    pub id: uuid::Uuid,
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
    pub id: uuid::Uuid,
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

    /// Creates or updates the account of a provider subject at login; returns its id.
    async fn upsert_account(
        &self,
        identity: &Identity,
        now: DateTime<Utc>,
    ) -> StoreResult<uuid::Uuid>;

    /// One account.
    async fn account(&self, id: uuid::Uuid) -> StoreResult<Option<Account>>;

    /// Stores a new API token by its hash.
    async fn insert_api_token(&self, token: &ApiToken, token_hash: &str) -> StoreResult<()>;

    /// Finds a token by the hash of its secret.
    async fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>>;

    /// Every token, newest first.
    async fn api_tokens(&self) -> StoreResult<Vec<ApiToken>>;

    /// Revokes a token; false when there is no such active token.
    async fn revoke_api_token(&self, id: uuid::Uuid, now: DateTime<Utc>) -> StoreResult<bool>;

    /// Inserts a new case with its first history entry, materials, outbox events and
    /// notices, attaching the uploads, all in one transaction.
    async fn create_case(&self, case: &CaseRow, w: CaseWrite<'_>) -> StoreResult<WriteOutcome>;

    /// Writes a case's new state if its version is still `case.version` (then bumps it),
    /// with the history entry and everything else, in one transaction.
    async fn update_case(&self, case: &CaseRow, w: CaseWrite<'_>) -> StoreResult<WriteOutcome>;

    /// A case by internal id.
    async fn case_by_id(&self, id: uuid::Uuid) -> StoreResult<Option<CaseRow>>;

    /// A case by its public number.
    async fn case_by_no(&self, case_no: &str) -> StoreResult<Option<CaseRow>>;

    /// A case's history, oldest first.
    async fn case_events(&self, case_id: uuid::Uuid) -> StoreResult<Vec<EventRow>>;

    /// A case's materials with their files.
    async fn case_materials(&self, case_id: uuid::Uuid) -> StoreResult<Vec<MaterialRow>>;

    /// Cases matching a filter, newest first, with the total count.
    async fn list_cases(&self, filter: &CaseFilter) -> StoreResult<(Vec<CaseRow>, i64)>;

    /// The outbox events of a case, in order.
    async fn case_outbox(&self, case_id: uuid::Uuid) -> StoreResult<Vec<OutboxRow>>;

    /// A remembered idempotent answer.
    async fn idempotent(&self, scope: &str, key: &str) -> StoreResult<Option<IdemRecord>>;

    /// Sets the rating once; false when the case was already rated.
    async fn rate_case(
        &self,
        case_id: uuid::Uuid,
        rating: i16,
        comment: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Records an upload.
    async fn insert_upload(&self, u: &UploadRow) -> StoreResult<()>;

    /// One upload.
    async fn upload(&self, id: uuid::Uuid) -> StoreResult<Option<UploadRow>>;

    /// Removes uploads never attached and older than `before`; returns them so their
    /// files can be deleted.
    async fn remove_stale_uploads(&self, before: DateTime<Utc>) -> StoreResult<Vec<UploadRow>>;

    /// Creates or replaces a draft of its owner.
    async fn save_draft(&self, d: &DraftRow) -> StoreResult<bool>;

    /// One draft of an owner.
    async fn draft(&self, id: uuid::Uuid, owner: uuid::Uuid) -> StoreResult<Option<DraftRow>>;

    /// An owner's drafts, newest first.
    async fn drafts(&self, owner: uuid::Uuid) -> StoreResult<Vec<DraftRow>>;

    /// Deletes a draft of its owner.
    async fn delete_draft(&self, id: uuid::Uuid, owner: uuid::Uuid) -> StoreResult<bool>;

    /// Deletes expired drafts; returns how many.
    async fn purge_expired_drafts(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    /// An account's notifications, newest first.
    async fn notifications(&self, account: uuid::Uuid, limit: i64) -> StoreResult<Vec<NoticeRow>>;

    /// Sets how a department receives events.
    async fn set_endpoint(&self, e: &DepartmentEndpoint) -> StoreResult<()>;

    /// Every configured department endpoint.
    async fn endpoints(&self) -> StoreResult<Vec<DepartmentEndpoint>>;

    /// Leases up to `limit` push deliveries that are due at `now`, until `lease_until`:
    /// only the earliest undelivered event of each (case, department), so a case's events
    /// arrive in order. On PostgreSQL several workers claim with `FOR UPDATE SKIP LOCKED`.
    async fn claim_push(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>>;

    /// Records an attempt and its outcome, releasing the lease.
    async fn finish_attempt(
        &self,
        event_id: uuid::Uuid,
        attempt: &AttemptRow,
        outcome: AttemptOutcome,
    ) -> StoreResult<()>;

    /// Leases up to `limit` events of a pull department (same ordering rule as push).
    async fn lease_inbox(
        &self,
        department: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>>;

    /// Acknowledges a pulled event; false when it is not this department's pending event.
    async fn ack(
        &self,
        department: &str,
        event_id: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Deliveries matching a filter, oldest first.
    async fn deliveries(&self, f: &DeliveryFilter) -> StoreResult<Vec<Delivery>>;

    /// Puts a dead-lettered delivery back in the queue; false when it is not dead.
    async fn redeliver(&self, event_id: uuid::Uuid) -> StoreResult<bool>;

    /// The attempts of one delivery.
    async fn attempts(&self, event_id: uuid::Uuid) -> StoreResult<Vec<AttemptRow>>;

    /// Stores `first` if there is no signing key yet; returns all keys.
    async fn ensure_signing_key(&self, first: &StoredKey) -> StoreResult<Vec<StoredKey>>;

    /// Replaces the stored keys with this set (after a rotation).
    async fn save_signing_keys(&self, keys: &[StoredKey]) -> StoreResult<()>;

    /// Records whether a notice's mail went out.
    async fn set_notice_email_state(&self, id: uuid::Uuid, state: &str) -> StoreResult<()>;

    /// Inserts or updates base-library records in one transaction. A record whose data
    /// is unchanged (same digest) is not written at all, so re-importing a file changes
    /// nothing, `updated_at` included.
    async fn upsert_base_records(&self, rows: &[BaseRecord]) -> StoreResult<UpsertCounts>;

    /// A subject's records of one resource (one, or one per licence in a licence library).
    async fn base_records(&self, resource: &str, subject: &str) -> StoreResult<Vec<BaseRecord>>;

    /// How many records a resource holds.
    async fn count_base_records(&self, resource: &str) -> StoreResult<i64>;

    /// Appends reads to their subjects' audit chains (each gets the next `seq` of its
    /// subject and `shared::chain_hash` over the previous record's hash); retried on a
    /// concurrent append to the same chain.
    async fn append_data_access(&self, reads: &[NewAccess]) -> StoreResult<()>;

    /// The audit records of these subjects, newest first, at most `limit`.
    async fn data_access(
        &self,
        subject_indexes: &[String],
        limit: i64,
    ) -> StoreResult<Vec<AccessRecord>>;

    /// One subject's whole chain in `seq` order, to verify it.
    async fn data_access_chain(&self, subject_index: &str) -> StoreResult<Vec<AccessRecord>>;

    /// Records a consent to prefill.
    async fn insert_consent(&self, c: &ConsentRow) -> StoreResult<()>;

    /// The newest consent of an account for a service.
    async fn latest_consent(
        &self,
        account: uuid::Uuid,
        service_code: &str,
    ) -> StoreResult<Option<ConsentRow>>;

    /// The named server secret; stores `fresh` under that name first if there is none
    /// (the first of several racing instances wins and all get its value).
    async fn secret(&self, name: &str, fresh: &str) -> StoreResult<String>;

    /// Sets (or clears) a department's data API URL, keeping its delivery mode (a
    /// department without a row gets `pull`).
    async fn set_data_api(&self, department: &str, url: Option<&str>) -> StoreResult<()>;

    /// Per-service figures of prefilled fields and substituted materials over all cases.
    async fn sharing_figures(&self) -> StoreResult<Vec<SharingFigures>>;

    /// From now on, seal personal data in case, account and draft rows with this sealer
    /// (the application sets it once its keys are loaded from this very store).
    fn set_sealer(&self, sealer: Arc<crate::sharing::seal::Sealer>);

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

/// Columns shared by both backends' account rows, decoded once.
pub(crate) struct AccountRow {
    pub id: uuid::Uuid,
    pub issuer: String,
    pub subject: String,
    pub kind: String,
    pub name: String,
    pub id_number: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub assurance: i64,
    pub enterprise_uscc: Option<String>,
    pub enterprise_name: Option<String>,
    pub enterprise_role: Option<String>,
    pub roles: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub last_login_at: DateTime<Utc>,
}

impl AccountRow {
    pub(crate) fn into_account(self) -> StoreResult<Account> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("account {}: bad {what}", self.id));
        let kind = AccountKind::from_code(&self.kind).ok_or_else(|| corrupt("kind"))?;
        let id_number = match &self.id_number {
            Some(s) => Some(ResidentId::parse(s).map_err(|_| corrupt("id_number"))?),
            None => None,
        };
        let roles: Vec<Role> =
            serde_json::from_value(self.roles.clone()).map_err(|_| corrupt("roles"))?;
        let enterprise = match (self.enterprise_uscc, self.enterprise_name) {
            (Some(uscc), Some(name)) => Some(EnterpriseRep {
                uscc,
                name,
                role: self.enterprise_role.unwrap_or_default(),
            }),
            _ => None,
        };
        Ok(Account {
            id: self.id,
            issuer: self.issuer,
            subject: self.subject,
            kind,
            name: self.name,
            id_number,
            phone: self.phone,
            email: self.email,
            assurance: self.assurance.clamp(0, 3) as u8,
            enterprise,
            roles,
            created_at: self.created_at,
            last_login_at: self.last_login_at,
        })
    }
}

/// Splits the stored space-separated scope list.
pub(crate) fn split_scopes(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// The delivery ordering rule, as SQL over an outbox row aliased `o`: no earlier event of
/// the same case for the same department is still undelivered. Both the push claim and
/// the pull inbox use it, so each department sees a case's events in order.
pub(crate) const NEXT_IN_ORDER: &str = "NOT EXISTS (SELECT 1 FROM outbox e \
     WHERE e.case_id = o.case_id AND e.department = o.department AND e.state <> 'delivered' \
     AND (e.case_seq < o.case_seq OR (e.case_seq = o.case_seq AND e.id < o.id)))";

/// Whether a database error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed() -> RowSeal {
        let s = RowSeal::default();
        s.set(Arc::new(crate::sharing::seal::Sealer::new(b"i", &[3; 32])));
        s
    }

    #[test]
    fn a_sealed_column_reads_back_only_in_its_own_row() {
        let s = sealed();
        let a = row_aad("cases", "applicant_phone", "row-1");
        let stored = s.text(&a, Some("13800000001")).expect("stored");
        assert!(!stored.contains("13800000001"));
        assert_eq!(
            s.open_text(&a, Some(stored.clone())).expect("opens"),
            Some("13800000001".to_owned())
        );
        let other = row_aad("cases", "applicant_phone", "row-2");
        assert!(matches!(
            s.open_text(&other, Some(stored)),
            Err(StoreError::Corrupt(_))
        ));
        let form = serde_json::json!({"name": "王小明"});
        let f = row_aad("cases", "form", "row-1");
        assert_eq!(s.open_json(&f, s.json(&f, &form)).expect("opens"), form);
    }

    #[test]
    fn values_written_before_sealing_read_as_they_are() {
        let s = sealed();
        let a = row_aad("accounts", "phone", "x");
        assert_eq!(
            s.open_text(&a, Some("13800000001".into())).expect("plain"),
            Some("13800000001".into())
        );
        let form = serde_json::json!({"a": 1});
        assert_eq!(s.open_json(&a, form.clone()).expect("plain"), form);
        assert_eq!(s.open_text(&a, None).expect("none"), None);
    }

    #[test]
    fn without_a_sealer_nothing_is_sealed_and_sealed_values_are_refused() {
        let plain = RowSeal::default();
        let a = row_aad("cases", "form", "r");
        assert_eq!(plain.text(&a, Some("x")), Some("x".into()));
        let sealed_value = sealed().json(&a, &serde_json::json!({"a": 1}));
        assert!(plain.open_json(&a, sealed_value).is_err());
    }
}
