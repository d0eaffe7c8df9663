//! The shared state of one gateway process: the settings, the store, the cache, the
//! catalogue and the clients every part reaches for.
//!
//! It is defined here, below everything that uses it (handlers, use cases, workers), and
//! built in [`crate::app`], on top of everything: that module wires the parts together,
//! so the modules that only *use* the state never depend on the wiring.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::identity::ClaimNames;
use crate::auth::oidc::RelyingParty;
use crate::auth::session::Sessions;
use crate::cache::Cache;
use crate::config::Settings;
use crate::domain::catalogue::Catalogue;
use crate::store::Store;

/// Shared state of one gateway process. Cheap to clone: handlers, background workers and
/// use cases each hold one.
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl AppState {
    /// Wraps finished parts. The wiring in [`crate::app`] is the usual caller; anything
    /// else that holds the parts (a test of one use case) can build a state without it.
    pub fn new(app: App) -> AppState {
        AppState(Arc::new(app))
    }
}

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// What handlers, use cases and workers can reach.
pub struct App {
    /// The effective configuration.
    pub settings: Settings,
    /// Durable storage.
    pub store: Arc<dyn Store>,
    /// Shared short-lived state.
    pub cache: Arc<dyn Cache>,
    /// The validated service catalogue.
    pub catalogue: Catalogue,
    /// The integration plan's key tasks (`plan-tasks.toml`), reported on monthly.
    pub plan_tasks: crate::supervision::filings::PlanTasks,
    /// Server-side sessions (in the cache).
    pub sessions: Sessions,
    /// OpenID Connect client for citizens and enterprises, when configured.
    pub public_login: Option<RelyingParty>,
    /// OpenID Connect client for staff, when configured.
    pub staff_login: Option<RelyingParty>,
    /// Claim names to read at login.
    pub claim_names: ClaimNames,
    /// Uploaded materials.
    pub files: Arc<dyn crate::files::FileStore>,
    /// Working days: the built-in calendar plus the configured and imported years
    /// (replaced when an operator imports a year).
    pub calendar: crate::domain::calendar::SharedCalendar,
    /// Notification mail, when SMTP is configured.
    pub mailer: Option<crate::notify::Mailer>,
    /// The keys that sign deliveries (and calls to departments' data APIs).
    pub keys: Arc<crate::exchange::keys::Keys>,
    /// Where shared data comes from: the base library and departments' data APIs.
    pub providers: crate::sharing::provider::Providers,
    /// Key of the audit trail's blind index of subjects.
    pub index_key: Vec<u8>,
    /// Seals personal data at rest (base library, cached shared data, prefill snapshots).
    pub sealer: Arc<crate::sharing::seal::Sealer>,
    /// HTTP client for deliveries (no redirects: a department answers, it does not send us on).
    pub http: reqwest012::Client,
    /// Rate limits (in process, or shared through Redis).
    pub limiter: Arc<crate::http::edge::limits::Limiter>,
    /// The largest bodies the upload routes take, from the catalogue's materials.
    pub edge_uploads: crate::http::edge::UploadAllowance,
    /// The audit trail's link and checkpoint keys (from configuration, not the store).
    pub audit: Arc<crate::audit::AuditKeys>,
    /// Reads under sharing grants, counted and written by one task at a time.
    pub grant_reads: Arc<crate::sharing::grants::ReadCounts>,
}
