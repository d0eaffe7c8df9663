//! Durable storage: everything the gateway keeps, on embedded SQLite (the zero-
//! configuration default) or PostgreSQL (production); the URL scheme picks.
//!
//! The store is split by capability, one trait per file with the row types it uses:
//!
//! | file | trait | tables |
//! | --- | --- | --- |
//! | `accounts.rs` | [`AccountStore`] | accounts, API tokens |
//! | `catalogue.rs` | [`CatalogueStore`] | service definition versions |
//! | `cases.rs` | [`CaseStore`] | cases, history, materials, idempotency, ratings, notices |
//! | `drafts.rs` | [`DraftStore`] | drafts, uploads |
//! | `exchange.rs` | [`ExchangeStore`] | department endpoints, outbox deliveries, attempts, signing keys |
//! | `shared.rs` | [`SharedDataStore`] | base library, data-access audit chains, consents, figures |
//! | `secrets.rs` | [`SecretStore`] | server secrets |
//! | `mail.rs` | [`MailStore`] | the mail queue over the notices |
//! | `hardening.rs` | [`HardeningStore`] | imported calendar years, sessions without Redis, retention marks |
//! | `stats.rs` | [`StatsStore`] | none of its own: the dashboard's aggregates over cases and the outbox |
//! | `sup_systems.rs` | [`SystemStore`] | information systems, zombie decisions, self-inspections, token usage |
//! | `sup_filings.rs` | [`FilingStore`] | filings and their events, monthly progress reports |
//! | `sup_figures.rs` | [`SupervisionFigureStore`] | none of its own: the assessment aggregates |
//! | `open_data.rs` | [`OpenDataStore`] | open datasets, their downloads, data requests |
//! | `audit.rs` | [`AuditStore`] | audit actions, audit checkpoints (and the verifier's view of data access) |
//! | `region.rs` | [`RegionStore`] | the queue of reports to the regional platform, their attempts |
//! | `cat_mgmt.rs` | [`ResourceCatalogueStore`] | the managed resource catalogue and its versions |
//!
//! [`Store`] combines them (with [`StoreAdmin`]: migrations, ping, close), so the
//! application holds one `Arc<dyn Store>`, on which every capability's methods can be
//! called; [`prelude`] names all the traits for code that needs them in scope.
//!
//! There is one implementation, [`SqlStore`], and each of its methods is written once
//! for both backends over the query layer in `db.rs`, which holds the only `match` on
//! the backend. Queries are checked at run time, so building needs no database. Each
//! backend has its own migrations in `migrations/<backend>/`, embedded in the binary.
//!
//! To add a capability: a file with its row types, `pub trait XStore` and `impl XStore
//! for SqlStore`; in this file its `mod` and `pub use` lines and its name in the
//! `capabilities!` list; its behavioural tests in `tests/it/store/`.

pub mod accounts;
pub mod audit;
pub mod case_lists;
pub mod cases;
pub mod cat_mgmt;
pub mod catalogue;
mod db;
pub mod drafts;
pub mod exchange;
pub mod grants;
pub mod hardening;
pub mod keys;
pub mod mail;
pub mod open_data;
pub mod paging;
pub mod region;
pub mod secrets;
pub mod shared;
mod sqlite_writer;
pub mod stats;
pub mod sup_figures;
pub mod sup_filings;
pub mod sup_systems;

use std::sync::Arc;

use async_trait::async_trait;

pub use accounts::{Account, AccountStore, ApiToken};
pub use audit::{AuditEventRow, AuditStore, AuditTable, NewAuditEvent};
pub use case_lists::CasePage;
pub use cases::{
    CaseApplicant, CaseFilter, CaseKey, CaseRow, CaseSort, CaseStore, CaseWrite, EventRow,
    FullCase, IdemRecord, MaterialRow, NewMaterial, NoticeRow, OutboxRow, WriteOutcome,
};
pub use cat_mgmt::{AddedVersion, CatalogueEntry, ResourceCatalogueStore, ResourceVersion};
pub use catalogue::{CatalogueStore, ServiceVersion, ServiceVersionInfo};
pub use drafts::{DraftRow, DraftStore, UploadRow};
pub use exchange::{
    AttemptOutcome, AttemptRow, Delivery, DeliveryFilter, DepartmentEndpoint, ExchangeStore,
    StoredKey,
};
pub use grants::GrantStore;
pub use hardening::{HardeningStore, ProvisionalCase};
pub use keys::{DataKeyRow, KeyStore, ResealCounts};
pub use mail::{MailCounts, MailOutcome, MailRow, MailStore, QueuedMail};
pub use open_data::OpenDataStore;
pub use paging::{COUNT_CAP, Cursor, MalformedCursor};
pub use region::{NewRegionReport, RegionCount, RegionReport, RegionStage, RegionStore};
pub use secrets::SecretStore;
pub use shared::{
    AccessRecord, BaseRecord, ConsentRow, NewAccess, SharedDataStore, SharingFigures, UpsertCounts,
};
pub use stats::{CaseFigures, Count, DeliveryFigures, LowRating, Span, StatsStore};
pub use sup_figures::SupervisionFigureStore;
pub use sup_filings::FilingStore;
pub use sup_systems::SystemStore;

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
    /// The blind index of a subject within a resource (`None` without a sealer).
    pub(crate) fn index(&self, resource: &str, subject: &str) -> Option<String> {
        self.0.get().map(|s| s.subject_ref(resource, subject))
    }

    /// The sealer, once set.
    pub(crate) fn sealer(&self) -> Option<Arc<crate::sharing::seal::Sealer>> {
        self.0.get().cloned()
    }

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

/// The store as a whole rather than any one capability: which backend, its schema, its
/// connections. Implementations must be safe to share between tasks and between gateway
/// instances using the same database.
#[async_trait]
pub trait StoreAdmin: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Applies pending migrations; returns how many were applied.
    async fn migrate(&self) -> StoreResult<usize>;

    /// Answers when the database is reachable (one trivial query).
    async fn ping(&self) -> StoreResult<()>;

    /// From now on, seal personal data in case, account and draft rows with this sealer
    /// (the application sets it once its keys are loaded from this very store).
    fn set_sealer(&self, sealer: Arc<crate::sharing::seal::Sealer>);

    /// From now on, link audit records by HMAC under this key (derived from the configured
    /// audit secret; see `crate::audit`).
    fn set_audit_key(&self, key: Vec<u8>);

    /// From now on, wrap and unwrap the keys this store keeps (secrets, signing keys,
    /// data keys) with this key-encryption key; without one, reading a key fails.
    fn set_kek(&self, kek: Arc<crate::kek::Kek>);

    /// Closes the pool, waiting for connections in use.
    async fn close(&self);
}

/// Declares [`Store`] over the capability traits, its blanket impl and the [`prelude`]
/// from one list, so that adding a capability is adding its name here.
macro_rules! capabilities {
    ($($capability:ident),+ $(,)?) => {
        /// Everything the gateway keeps durably: every capability in one trait object,
        /// which is what `AppState` holds. Implemented for whatever implements them all.
        pub trait Store: StoreAdmin $(+ $capability)+ {}

        impl<T: StoreAdmin $(+ $capability)+> Store for T {}

        /// Every capability trait, so that one `use crate::store::prelude::*;` brings all
        /// the store's methods into scope where a concrete store (not `dyn Store`, whose
        /// supertrait methods are always callable) or a generic bound is used.
        pub mod prelude {
            pub use super::{Store, StoreAdmin $(, $capability)+};
        }
    };
}

capabilities!(
    AccountStore,
    CatalogueStore,
    CaseStore,
    DraftStore,
    ExchangeStore,
    SharedDataStore,
    SecretStore,
    MailStore,
    StatsStore,
    SystemStore,
    FilingStore,
    SupervisionFigureStore,
    HardeningStore,
    OpenDataStore,
    AuditStore,
    RegionStore,
    ResourceCatalogueStore,
    GrantStore,
    KeyStore,
);

/// The one store implementation, on either backend: every capability's methods are
/// written once, over the query layer's pool.
#[derive(Debug, Clone)]
pub struct SqlStore {
    db: db::Db,
    seal: RowSeal,
    audit: audit::LinkKey,
    kek: keys::KekCell,
}

impl SqlStore {
    /// Opens the database the URL names (creating the SQLite file and its directory when
    /// needed).
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<SqlStore> {
        Self::connect_with(url, max_connections, DEFAULT_ACQUIRE_TIMEOUT).await
    }

    /// The same, waiting at most `acquire_timeout` for a PostgreSQL connection.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        acquire_timeout: std::time::Duration,
    ) -> StoreResult<SqlStore> {
        Ok(SqlStore {
            db: db::Db::connect(url, max_connections, acquire_timeout).await?,
            seal: RowSeal::default(),
            audit: audit::LinkKey::default(),
            kek: keys::KekCell::default(),
        })
    }
}

#[async_trait]
impl StoreAdmin for SqlStore {
    fn backend(&self) -> &'static str {
        self.db.backend()
    }

    async fn migrate(&self) -> StoreResult<usize> {
        self.db.migrate().await
    }

    async fn ping(&self) -> StoreResult<()> {
        use db::Exec;
        self.db.execute(db::Q::new("SELECT 1")).await?;
        Ok(())
    }

    fn set_sealer(&self, sealer: Arc<crate::sharing::seal::Sealer>) {
        self.seal.set(sealer);
    }

    fn set_audit_key(&self, key: Vec<u8>) {
        self.audit.set(key);
    }

    fn set_kek(&self, kek: Arc<crate::kek::Kek>) {
        self.kek.set(kek);
    }

    async fn close(&self) {
        self.db.close().await;
    }
}

/// Opens the store the URL names (creating the SQLite file and its directory when needed).
pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Arc<dyn Store>> {
    connect_with(url, max_connections, DEFAULT_ACQUIRE_TIMEOUT).await
}

/// How long a request waits for a PostgreSQL connection unless configured otherwise.
pub const DEFAULT_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The same, waiting at most `acquire_timeout` for a PostgreSQL connection.
pub async fn connect_with(
    url: &str,
    max_connections: u32,
    acquire_timeout: std::time::Duration,
) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(
        SqlStore::connect_with(url, max_connections, acquire_timeout).await?,
    ))
}

/// Whether a store error says the database cannot be reached (rather than a refused
/// statement or corrupt data): a pool wait that ran out, a lost or refused connection,
/// or PostgreSQL's connection-exception / operator-intervention classes (08, 57P).
pub fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// Whether a store error is a unique-constraint violation (a case number or an audit
/// chain position taken by a concurrent write).
pub(crate) fn is_unique_violation(e: &StoreError) -> bool {
    match e {
        StoreError::Database(e) => e
            .as_database_error()
            .is_some_and(|d| d.is_unique_violation()),
        _ => false,
    }
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
