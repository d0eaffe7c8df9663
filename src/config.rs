//! Configuration in layers: built-in defaults, then an optional TOML file (`--config`),
//! then `ONEWINDOW_*` environment variables, with the conventional `DATABASE_URL` and
//! `REDIS_URL` honoured too (an `ONEWINDOW_`-prefixed variable wins over them).
//!
//! Each setting is written down once: a field of the group it belongs to (server,
//! database, cache, identity provider, claims, sessions, cases, exchange, shared data,
//! mail), with its default on the field. The groups are flattened, so operators still
//! write flat keys (`listen`, `oidc_claim_name`); the key is the field's name. Each group
//! is read from the same flat layers, which keeps figment's errors naming the key and
//! where it came from, and any key no group claims is refused.
//!
//! [`Settings::load`] validates everything before the program does anything else, and a
//! bad value stops it with a message naming the key and what is wrong. Secrets are
//! [`SecretString`]s: `Debug` hides them, and serializing the settings (which is how
//! [`Settings::redacted`] and the defaults layer are made) masks them.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::{Figment, Metadata};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use smart_default::SmartDefault;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The effective configuration of one gateway process, grouped by concern.
///
/// Serializing it gives the flat operator keys with every secret masked, never the
/// secrets themselves.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Settings {
    /// Where the gateway listens and what it serves.
    #[serde(flatten)]
    pub server: ServerSettings,
    /// Log format and filter.
    #[serde(flatten)]
    pub log: LogSettings,
    /// The database, and the key that seals personal data in it.
    #[serde(flatten)]
    pub database: DatabaseSettings,
    /// The cache (sessions, pending logins, rate limits, shared-data answers).
    #[serde(flatten)]
    pub cache: CacheSettings,
    /// The OpenID providers of the public and of staff.
    #[serde(flatten)]
    pub oidc: OidcSettings,
    /// Which claims of the providers carry what.
    #[serde(flatten)]
    pub claims: ClaimSettings,
    /// Session lifetimes and cookies.
    #[serde(flatten)]
    pub sessions: SessionSettings,
    /// Cases: drafts and the working-day calendar.
    #[serde(flatten)]
    pub cases: CaseSettings,
    /// Deliveries to departments: where the worker runs, pull leases.
    #[serde(flatten)]
    pub exchange: ExchangeSettings,
    /// Calls to departments' data APIs: time limit and circuit breaker.
    #[serde(flatten)]
    pub sharing: SharingSettings,
    /// Notification mail: relay and sender.
    #[serde(flatten)]
    pub mail: MailSettings,
    /// Rate limits, body limits and the header-read timeout (what a stranger can spend).
    #[serde(flatten)]
    pub limits: LimitSettings,
    /// The weights of the departments' assessment score (考核评价).
    #[serde(flatten)]
    pub assessment: AssessmentSettings,
    /// Supervision: the zombie-system thresholds.
    #[serde(flatten)]
    pub supervision_systems: SupervisionSystemSettings,
    /// The audit trail: its secret and how often its chains' heads are signed.
    #[serde(flatten)]
    pub audit: AuditSettings,
    /// The regional platform the city's gateway reports to (接入自治区平台).
    #[serde(flatten)]
    pub region: RegionSettings,
    /// Catalogue management: how soon a publication reaches the other instances.
    #[serde(flatten)]
    pub catalogue_mgmt: CatalogueMgmtSettings,
    /// Keys and materials at rest: the key-encryption key, where materials are kept.
    #[serde(flatten)]
    pub keys: KeySettings,
}

/// Where the gateway listens and what it serves.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct ServerSettings {
    /// Address to listen on (`ONEWINDOW_LISTEN`).
    #[default(SocketAddr::from(([127, 0, 0, 1], 8080)))]
    pub listen: SocketAddr,
    /// Public base URL, used for links in events and mail and as the origin that CSRF
    /// checks accept (`ONEWINDOW_PUBLIC_URL`).
    #[default(url::Url::parse("http://127.0.0.1:8080").expect("a valid URL"))]
    pub public_url: url::Url,
    /// Directory for the embedded database and stored files.
    #[default = "data"]
    pub data_dir: PathBuf,
    /// Directory of service definitions, departments and the data catalogue.
    #[default = "service-definitions"]
    pub definitions_dir: PathBuf,
    /// Longest time a request may take before it is answered 503.
    #[default = 30]
    pub request_timeout_secs: u64,
    /// How long a shutdown waits for in-flight requests.
    #[default = 20]
    pub shutdown_grace_secs: u64,
    /// The gateway sits behind a reverse proxy that sets X-Forwarded-For; use its last hop
    /// as the client address (for rate limits). Off: the TCP peer is the client.
    #[default = false]
    pub trust_forwarded_for: bool,
}

/// How logs are written and how much of them.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct LogSettings {
    /// Readable lines, or JSON for log shippers.
    #[default(LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Log filter (`info`, `onewindow=debug,tower_http=info` …); `RUST_LOG` overrides it.
    #[default = "info"]
    pub log_level: String,
}

/// The database, and the key that seals personal data in it.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct DatabaseSettings {
    /// Database URL; SQLite under `data_dir` when unset (`DATABASE_URL`). It may carry a
    /// password, so it is shown with the password masked.
    #[serde(serialize_with = "masked::url")]
    pub database_url: Option<SecretString>,
    /// Largest number of pooled database connections.
    #[default = 16]
    pub database_max_connections: u32,
    /// How long a request waits for a PostgreSQL connection before it is answered 503
    /// (milliseconds): short, so an outage fails fast.
    #[default = 2000]
    pub database_acquire_timeout_ms: u64,
    /// Apply pending migrations when the server starts.
    #[default = true]
    pub migrate_on_start: bool,
    /// Key that seals personal data at rest (the base library, cached shared data):
    /// 32 bytes in base64. Unset: a key generated on first start, kept in the database.
    #[serde(serialize_with = "masked::secret")]
    pub personal_data_key: Option<SecretString>,
}

/// The cache: in memory for one instance, Redis when several share sessions and limits.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct CacheSettings {
    /// Redis URL; in-memory cache when unset (`REDIS_URL`). Unset suits one instance only:
    /// sessions and rate limits are then not shared.
    #[serde(serialize_with = "masked::url")]
    pub redis_url: Option<SecretString>,
    /// Prefix of every cache key, so several deployments can share one Redis.
    #[default = "onewindow:"]
    pub cache_prefix: String,
}

/// The OpenID providers of the public and of staff.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct OidcSettings {
    /// OpenID provider for citizens and enterprises (`ONEWINDOW_OIDC_ISSUER`); login is
    /// off when unset. Compared as written, so `http://x` is not `http://x/`.
    pub oidc_issuer: Option<String>,
    /// Client id registered with that provider.
    pub oidc_client_id: Option<String>,
    /// Client secret, sent to the provider's token endpoint; shown only as `***`.
    #[serde(serialize_with = "masked::secret")]
    pub oidc_client_secret: Option<SecretString>,
    /// Scopes asked for, space-separated.
    #[default = "openid profile phone onewindow"]
    pub oidc_scopes: String,
    /// Provider for staff (clerks, officers, operators); the citizen provider when unset.
    pub oidc_staff_issuer: Option<String>,
    /// Staff client id; staff login is off when unset.
    pub oidc_staff_client_id: Option<String>,
    /// Staff client secret; shown only as `***`.
    #[serde(serialize_with = "masked::secret")]
    pub oidc_staff_client_secret: Option<SecretString>,
    /// Scopes the staff client asks for (no phone: staff are not applicants).
    #[default = "openid profile onewindow"]
    pub oidc_staff_scopes: String,
}

/// Which claims carry what, so a provider that names them its own way needs no code.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct ClaimSettings {
    /// Claim holding the person's name.
    #[default = "name"]
    pub oidc_claim_name: String,
    /// Claim holding the resident ID number (身份证号).
    #[default = "id_number"]
    pub oidc_claim_id_number: String,
    /// Claim holding the phone number.
    #[default = "phone_number"]
    pub oidc_claim_phone: String,
    /// Claim holding the email address (for notifications).
    #[default = "email"]
    pub oidc_claim_email: String,
    /// Claim holding the assurance level (`acr`, or a provider's own claim).
    #[default = "acr"]
    pub oidc_claim_assurance: String,
    /// How claim values map to assurance levels 1–3: `value=level,…`. A value that is
    /// itself 1, 2 or 3 needs no entry.
    #[default = "urn:onewindow:loa:1=1,urn:onewindow:loa:2=2,urn:onewindow:loa:3=3"]
    pub oidc_acr_levels: String,
    /// Claim holding the represented enterprise's USCC.
    #[default = "uscc"]
    pub oidc_claim_uscc: String,
    /// Claim holding the enterprise name.
    #[default = "enterprise_name"]
    pub oidc_claim_enterprise_name: String,
    /// Claim holding the user's role in the enterprise.
    #[default = "enterprise_role"]
    pub oidc_claim_enterprise_role: String,
    /// Claim (array) holding staff roles: clerk, department_officer, operator.
    #[default = "roles"]
    pub oidc_claim_roles: String,
    /// Claim holding a department officer's department USCC.
    #[default = "department"]
    pub oidc_claim_department: String,
    /// Claim holding a clerk's service hall.
    #[default = "service_hall"]
    pub oidc_claim_service_hall: String,
    /// Claim (array) holding the departments a clerk's hall serves.
    #[default = "hall_departments"]
    pub oidc_claim_hall_departments: String,
}

/// Session lifetimes and cookies.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct SessionSettings {
    /// A session ends after this many seconds without a request.
    #[default(30 * 60)]
    pub session_idle_secs: u64,
    /// A session ends this many seconds after login, however busy.
    #[default(12 * 3600)]
    pub session_absolute_secs: u64,
    /// Mark cookies `Secure`; defaults to whether `public_url` is https.
    pub cookie_secure: Option<bool>,
}

/// Cases: drafts and the working-day calendar.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct CaseSettings {
    /// Drafts are deleted this many seconds after their last save.
    #[default(30 * 24 * 3600)]
    pub draft_ttl_secs: u64,
    /// A holiday calendar file (same format as the built-in one) with further years;
    /// its years are added to, or replace, the built-in 2018–2026 calendar.
    pub holidays_file: Option<PathBuf>,
    /// Uploads never attached to a case are deleted this many seconds after upload.
    #[default(24 * 3600)]
    pub upload_retention_secs: u64,
    /// The files of a closed case's materials are deleted this many days after the case
    /// closed (the record of what was filed stays); 0 keeps them.
    #[default(365)]
    pub closed_case_files_days: u64,
}

/// Deliveries to departments: where the worker runs and how long pulled events are leased.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct ExchangeSettings {
    /// Allow plain-http department endpoints (only for loopback tests and development).
    #[default = false]
    pub exchange_allow_http: bool,
    /// Run the delivery worker inside `serve` (turn off to run `onewindow worker` apart).
    #[default = true]
    pub worker_in_serve: bool,
    /// How long a pulled event stays leased before it comes back.
    #[default = 300]
    pub inbox_lease_secs: u64,
    /// Push attempts one worker has under way at once, over all departments.
    #[default = 64]
    pub delivery_concurrency: usize,
    /// Push attempts one worker has under way at once to one department (a department
    /// whose last attempt failed gets one until it answers again).
    #[default = 4]
    pub delivery_per_department: usize,
    /// How often the worker looks for due deliveries (milliseconds).
    #[default = 100]
    pub delivery_poll_ms: u64,
}

/// Departments' data APIs: how long to wait, and when to stop asking one that fails.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct SharingSettings {
    /// Time limit of one call to a department's data API (milliseconds).
    #[default = 2000]
    pub provider_timeout_ms: u64,
    /// Consecutive failures of a department's data API that open its circuit.
    #[default = 5]
    pub provider_failures_to_open: u32,
    /// How long an open circuit refuses calls before one trial call (seconds).
    #[default = 30]
    pub provider_open_secs: u64,
}

/// The weights (points) of each part of the departments' assessment score, shown on the
/// ranking page; the score is the weighted mean of the parts, 0–100.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct AssessmentSettings {
    /// Systems integrated (connected ÷ registered).
    #[default = 15]
    pub assessment_weight_integration: u32,
    /// Connectivity (a successful exchange in 30 days ÷ meant to connect).
    #[default = 15]
    pub assessment_weight_connectivity: u32,
    /// Shared data items published and consumed.
    #[default = 10]
    pub assessment_weight_shared_items: u32,
    /// Collaborative applications and joint cases.
    #[default = 10]
    pub assessment_weight_collaboration: u32,
    /// Key-task progress (the latest monthly report).
    #[default = 15]
    pub assessment_weight_progress: u32,
    /// On-time rate.
    #[default = 15]
    pub assessment_weight_on_time: u32,
    /// Prefill and 免提交 reuse.
    #[default = 10]
    pub assessment_weight_reuse: u32,
    /// Rating average.
    #[default = 10]
    pub assessment_weight_rating: u32,
}

/// Notification mail: off until a relay is configured.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct MailSettings {
    /// SMTP relay for notification mail (`smtp://host:25`, `smtp://user:pass@host:587`);
    /// no mail is sent when unset.
    #[serde(serialize_with = "masked::url")]
    pub smtp_url: Option<SecretString>,
    /// Sender of notification mail.
    #[default = "呼伦贝尔市一网通办 <noreply@zwfw.example.gov.cn>"]
    pub mail_from: String,
    /// Attempts at sending one notice's mail before it is marked failed (at least 1):
    /// a relay that is down for an afternoon must not lose a citizen's notice.
    #[default = 8]
    pub mail_max_attempts: u32,
}

/// What a stranger can spend: calls per minute of each kind (the burst is the same
/// number; 0 turns a limit off), the largest JSON or form body, and how long a connection
/// may take to send a request's headers.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct LimitSettings {
    /// Login starts per client address per minute.
    #[default = 30]
    pub limit_login_per_minute: u32,
    /// Applications lodged per session (else client address) per minute.
    #[default = 20]
    pub limit_submit_per_minute: u32,
    /// Uploads per session (else client address) per minute.
    #[default = 60]
    pub limit_upload_per_minute: u32,
    /// Draft saves per session (else client address) per minute.
    #[default = 60]
    pub limit_draft_per_minute: u32,
    /// Public case queries per client address per minute.
    #[default = 30]
    pub limit_public_query_per_minute: u32,
    /// Department API calls per token per minute.
    #[default = 600]
    pub limit_dept_api_per_minute: u32,
    /// Largest body of a JSON or form route (uploads are bounded by the materials).
    #[default(1024 * 1024)]
    pub max_json_body_bytes: u64,
    /// Longest a connection may take to send a request's headers before it is closed.
    #[default = 10]
    pub header_read_timeout_secs: u64,
}

/// The audit trail (see `crate::audit`): the secret its links' HMAC key and its
/// checkpoints' Ed25519 key are derived from, kept out of the database.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct AuditSettings {
    /// The audit secret, at least 32 bytes in hex or base64 (`ONEWINDOW_AUDIT_SECRET`).
    #[serde(serialize_with = "masked::secret")]
    pub audit_secret: Option<SecretString>,
    /// A file holding the audit secret (used when `audit_secret` is unset). With neither,
    /// a secret is generated into `<data_dir>/audit/secret` (a development instance).
    pub audit_secret_file: Option<PathBuf>,
    /// Seconds between signed checkpoints of every audit chain's head (at least 1); the
    /// newest records are protected against deletion from their first checkpoint on.
    #[default = 60]
    pub audit_checkpoint_secs: u64,
}

/// Supervision: when a registered information system is flagged as a zombie (the city
/// plan's five reasons, see `supervision::systems::flags`).
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct SupervisionSystemSettings {
    /// Long idle (资源长期空闲): no successful exchange for this many days.
    #[default = 90]
    pub zombie_idle_days: u32,
    /// Unmaintained (运行维护停止更新): at least this share of the recent calls failed …
    #[default = 0.5]
    pub zombie_failure_share: f64,
    /// … out of at least this many calls (fewer say nothing).
    #[default = 20]
    pub zombie_failure_min_calls: u32,
    /// Unmaintained as well: no O&M budget and no change to its record for this many days.
    #[default = 365]
    pub zombie_unmaintained_days: u32,
    /// Small scope, low frequency (使用范围小、频度低): declared monthly or rarer and
    /// fewer exchanges than this per month on average over the recent months.
    #[default = 30]
    pub zombie_low_monthly_volume: u32,
    /// The recent months the failure share and monthly volume are taken over.
    #[default = 3]
    pub zombie_recent_months: u32,
}

/// The regional platform (接入自治区平台): where case reports and catalogue changes go.
/// Nothing is queued for it unless it is enabled and has a push URL.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct RegionSettings {
    /// Send case reports and catalogue changes to the regional platform.
    #[default = false]
    pub region_enabled: bool,
    /// The regional platform's push URL (https; http only with `exchange_allow_http`).
    #[default = ""]
    pub region_push_url: String,
    /// The field mapping file; empty: `region-mapping.toml` in the definitions directory.
    #[default = ""]
    pub region_mapping: String,
}

impl RegionSettings {
    /// Whether the region is configured: enabled, with a push URL.
    pub fn configured(&self) -> bool {
        self.region_enabled && !self.region_push_url.trim().is_empty()
    }
}

/// Catalogue management (政务信息资源目录): the live catalogue is re-read from the
/// published versions when they change.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct CatalogueMgmtSettings {
    /// How often each instance checks whether a resource version was published elsewhere
    /// (seconds; the publishing instance applies it at once).
    #[default = 5]
    pub catalogue_refresh_secs: u64,
}

/// Keys and materials at rest (`crate::kek`, `crate::files`): the key-encryption key
/// that wraps every key kept in the database, and where uploaded materials live.
#[derive(Debug, Clone, SmartDefault, Serialize, Deserialize)]
pub struct KeySettings {
    /// The key-encryption key: 32 bytes, base64 (or 64 hex digits).
    #[serde(serialize_with = "masked::secret")]
    pub key_encryption_key: Option<SecretString>,
    /// A file holding the key-encryption key (instead of `key_encryption_key`).
    pub key_encryption_key_file: Option<PathBuf>,
    /// The key-encryption key before a rotation, accepted until everything is re-wrapped.
    #[serde(serialize_with = "masked::secret")]
    pub key_encryption_key_previous: Option<SecretString>,
    /// A development instance may run without a configured key-encryption key (one is
    /// generated into the data directory); `serve` refuses to start without one otherwise.
    #[default = false]
    pub development_instance: bool,
    /// Where uploaded materials are kept: `auto` (the database on PostgreSQL, the local
    /// disk on SQLite), `local`, `database` or `s3`.
    #[default = "auto"]
    pub materials_store: String,
    /// The S3 bucket (with `materials_store = "s3"`).
    pub s3_bucket: Option<String>,
    /// The S3 endpoint of an S3-compatible store (empty: AWS).
    pub s3_endpoint: Option<String>,
    /// The S3 region.
    #[default = "us-east-1"]
    pub s3_region: String,
    /// The S3 access key id.
    pub s3_access_key_id: Option<String>,
    /// The S3 secret access key.
    #[serde(serialize_with = "masked::secret")]
    pub s3_secret_access_key: Option<SecretString>,
    /// Allow a plain-http S3 endpoint (development only).
    #[default = false]
    pub s3_allow_http: bool,
    /// How often a running instance reloads the personal-data keys (a rotation reaches it
    /// within this many seconds).
    #[default = 30]
    pub data_key_refresh_secs: u64,
}

/// Serializers that keep secrets out of every serialized form of the settings: the
/// redacted view, and the defaults layer (where all secrets are unset anyway).
mod masked {
    use secrecy::{ExposeSecret, SecretString};
    use serde::Serializer;

    /// A set secret shows as `***`.
    pub fn secret<S: Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(_) => s.serialize_some("***"),
            None => s.serialize_none(),
        }
    }

    /// A URL keeps its scheme, host and path, so an operator sees where it points; its
    /// password (and any `password=` parameter) shows as `***`.
    pub fn url<S: Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(u) => s.serialize_some(&super::redact_url(u.expose_secret())),
            None => s.serialize_none(),
        }
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// Which database a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Settings {
    /// Loads from defaults, the optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::from_figment(Self::figment(file))
    }

    /// The built-in defaults alone (tests layer their own values on top). Kept as a
    /// layer of its own so `onewindow config` can tell a default from a set value.
    pub fn defaults() -> Figment {
        Figment::from(Serialized::defaults(Settings::default()))
    }

    /// The layered sources: defaults, file, environment.
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut f = Self::defaults();
        if let Some(path) = file {
            f = f.merge(Toml::file_exact(path));
        }
        f.merge(
            Env::raw()
                .only(&["DATABASE_URL", "REDIS_URL"])
                .map(|k| k.as_str().to_ascii_lowercase().into()),
        )
        // ONEWINDOW_TEST_* is reserved for the test harness (backends under test).
        .merge(
            Env::prefixed("ONEWINDOW_")
                .filter(|k| !k.as_str().to_ascii_lowercase().starts_with("test_")),
        )
    }

    /// Extracts and validates settings from any figment.
    pub fn from_figment(figment: Figment) -> Result<Settings, ConfigError> {
        if let Some(path) = figment.metadata().find_map(|m| {
            m.source
                .as_ref()
                .and_then(|s| s.file_path().map(Path::to_owned))
        }) && !path.exists()
        {
            return Err(ConfigError(format!(
                "configuration file {} does not exist",
                path.display()
            )));
        }
        // Every group reads the same flat layers; a group's error keeps its key's name.
        let mut errors = Vec::new();
        let settings = Settings {
            server: group(&figment, &mut errors),
            log: group(&figment, &mut errors),
            database: group(&figment, &mut errors),
            cache: group(&figment, &mut errors),
            oidc: group(&figment, &mut errors),
            claims: group(&figment, &mut errors),
            sessions: group(&figment, &mut errors),
            cases: group(&figment, &mut errors),
            exchange: group(&figment, &mut errors),
            sharing: group(&figment, &mut errors),
            mail: group(&figment, &mut errors),
            limits: group(&figment, &mut errors),
            assessment: group(&figment, &mut errors),
            supervision_systems: group(&figment, &mut errors),
            audit: group(&figment, &mut errors),
            region: group(&figment, &mut errors),
            catalogue_mgmt: group(&figment, &mut errors),
            keys: group(&figment, &mut errors),
        };
        let mut msgs: Vec<String> = errors
            .into_iter()
            .flatten()
            .map(|err| {
                let key = if err.path.is_empty() {
                    String::from("(file)")
                } else {
                    err.path.join(".")
                };
                format!("key `{key}`{}: {}", origin(err.metadata.as_ref()), err.kind)
            })
            .collect();
        // Flattened groups cannot refuse unknown keys themselves (serde allows no
        // `deny_unknown_fields` with `flatten`), so a key no group claims is found here.
        let known = Self::keys();
        let given: Dict = figment.extract().unwrap_or_default();
        for key in given.keys().filter(|k| !known.contains(k.as_str())) {
            msgs.push(format!(
                "key `{key}`{}: unknown key (`onewindow config` lists every key)",
                origin(figment.find_metadata(key))
            ));
        }
        if !msgs.is_empty() {
            return Err(ConfigError(msgs.join("; ")));
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Every key an operator may set, from the settings' own serialized form.
    pub fn keys() -> BTreeSet<String> {
        flat(&Settings::default()).into_keys().collect()
    }

    /// These settings listening on `listen` instead: for commands that build the whole
    /// application but serve nothing, so they never compete for the server's port.
    pub fn with_listen(mut self, listen: SocketAddr) -> Settings {
        self.server.listen = listen;
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| Err(ConfigError(format!("key `{key}`: {why}")));
        let (server, database, oidc, sharing) =
            (&self.server, &self.database, &self.oidc, &self.sharing);
        if !matches!(server.public_url.scheme(), "http" | "https") {
            return bad("public_url", "must be an http:// or https:// URL".into());
        }
        if let Some(url) = &database.database_url
            && let Err(why) = database_kind(url.expose_secret())
        {
            return bad("database_url", why);
        }
        if let Some(url) = &self.cache.redis_url {
            let u = url.expose_secret();
            if !(u.starts_with("redis://") || u.starts_with("rediss://")) {
                return bad("redis_url", "must start with redis:// or rediss://".into());
            }
        }
        let prefix = &self.cache.cache_prefix;
        if prefix.is_empty() || prefix.contains(char::is_whitespace) {
            return bad(
                "cache_prefix",
                "must be non-empty and contain no spaces".into(),
            );
        }
        let a = &self.assessment;
        let weights = [
            a.assessment_weight_integration,
            a.assessment_weight_connectivity,
            a.assessment_weight_shared_items,
            a.assessment_weight_collaboration,
            a.assessment_weight_progress,
            a.assessment_weight_on_time,
            a.assessment_weight_reuse,
            a.assessment_weight_rating,
        ];
        if weights.iter().any(|w| *w > 1000) || weights.iter().sum::<u32>() == 0 {
            return bad(
                "assessment_weight_*",
                "each weight must be 0–1000 and at least one above 0".into(),
            );
        }
        if !(1..=256).contains(&database.database_max_connections) {
            return bad(
                "database_max_connections",
                "must be between 1 and 256".into(),
            );
        }
        if sharing.provider_timeout_ms == 0 || sharing.provider_failures_to_open == 0 {
            return bad(
                "provider_timeout_ms / provider_failures_to_open",
                "must be at least 1".into(),
            );
        }
        if self.limits.max_json_body_bytes < 1024 || self.limits.header_read_timeout_secs == 0 {
            return bad(
                "max_json_body_bytes / header_read_timeout_secs",
                "the body limit must be at least 1024 bytes and the timeout at least 1 s".into(),
            );
        }
        if server.request_timeout_secs == 0 {
            return bad("request_timeout_secs", "must be at least 1".into());
        }
        let ex = &self.exchange;
        if ex.delivery_concurrency == 0
            || ex.delivery_per_department == 0
            || ex.delivery_poll_ms == 0
        {
            return bad(
                "delivery_concurrency / delivery_per_department / delivery_poll_ms",
                "must be at least 1".into(),
            );
        }
        if self.region.region_enabled && self.region.region_push_url.trim().is_empty() {
            return bad(
                "region_push_url",
                "must be set when region_enabled is true".into(),
            );
        }
        if self.catalogue_mgmt.catalogue_refresh_secs == 0 {
            return bad("catalogue_refresh_secs", "must be at least 1".into());
        }
        let z = &self.supervision_systems;
        if !(z.zombie_failure_share > 0.0 && z.zombie_failure_share <= 1.0) {
            return bad(
                "zombie_failure_share",
                "must be above 0 and at most 1".into(),
            );
        }
        if z.zombie_idle_days == 0 || z.zombie_recent_months == 0 || z.zombie_recent_months > 6 {
            return bad(
                "zombie_idle_days / zombie_recent_months",
                "zombie_idle_days must be at least 1, zombie_recent_months 1 to 6".into(),
            );
        }
        for (key, issuer, id) in [
            ("oidc_issuer", &oidc.oidc_issuer, &oidc.oidc_client_id),
            (
                "oidc_staff_issuer",
                &oidc.oidc_staff_issuer,
                &oidc.oidc_staff_client_id,
            ),
        ] {
            if let Some(raw) = issuer {
                let Ok(u) = url::Url::parse(raw) else {
                    return bad(key, format!("{raw:?} is not a URL"));
                };
                let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
                if u.scheme() != "https" && !(u.scheme() == "http" && loopback) {
                    return bad(
                        key,
                        "must be an https:// URL (plain http only on loopback, for development)"
                            .into(),
                    );
                }
            }
            if key == "oidc_issuer" && issuer.is_some() != id.is_some() {
                return bad(
                    "oidc_client_id",
                    "oidc_issuer and oidc_client_id are set together".into(),
                );
            }
        }
        if oidc.oidc_staff_client_id.is_some() && self.staff_issuer().is_none() {
            return bad(
                "oidc_staff_issuer",
                "staff login needs oidc_staff_issuer or oidc_issuer".into(),
            );
        }
        if let Some(k) = &database.personal_data_key
            && let Err(why) = crate::sharing::seal::parse_key(k.expose_secret())
        {
            return bad("personal_data_key", why);
        }
        for (key, v) in [
            ("key_encryption_key", &self.keys.key_encryption_key),
            (
                "key_encryption_key_previous",
                &self.keys.key_encryption_key_previous,
            ),
        ] {
            if let Some(k) = v
                && let Err(why) = crate::sharing::seal::parse_key(k.expose_secret())
            {
                return bad(key, why);
            }
        }
        if !["auto", "local", "database", "s3"].contains(&self.keys.materials_store.as_str()) {
            return bad(
                "materials_store",
                "must be auto, local, database or s3".into(),
            );
        }
        if self.keys.materials_store == "s3" && self.keys.s3_bucket.is_none() {
            return bad(
                "s3_bucket",
                "materials_store = \"s3\" needs s3_bucket".into(),
            );
        }
        if let Some(u) = &self.mail.smtp_url {
            let u = u.expose_secret();
            if !(u.starts_with("smtp://") || u.starts_with("smtps://")) {
                return bad("smtp_url", "must start with smtp:// or smtps://".into());
            }
        }
        if self.mail.mail_max_attempts == 0 {
            return bad("mail_max_attempts", "must be at least 1".into());
        }
        let mail_from = &self.mail.mail_from;
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return bad(
                "mail_from",
                format!("{mail_from:?} is not a mailbox like 名称 <user@example.gov.cn>"),
            );
        }
        if let Err(why) = parse_acr_levels(&self.claims.oidc_acr_levels) {
            return bad("oidc_acr_levels", why);
        }
        let sessions = &self.sessions;
        if sessions.session_idle_secs == 0
            || sessions.session_absolute_secs < sessions.session_idle_secs
        {
            return bad(
                "session_absolute_secs",
                "session timeouts must be positive, the absolute one at least the idle one".into(),
            );
        }
        let level = &self.log.log_level;
        if tracing_subscriber::EnvFilter::try_new(level).is_err() {
            return bad(
                "log_level",
                format!("{level:?} is not a log filter (try info or debug)"),
            );
        }
        Ok(())
    }

    /// The staff provider: its own issuer, or the citizen one.
    pub fn staff_issuer(&self) -> Option<&String> {
        self.oidc
            .oidc_staff_issuer
            .as_ref()
            .or(self.oidc.oidc_issuer.as_ref())
    }

    /// Whether cookies carry `Secure`.
    pub fn cookies_secure(&self) -> bool {
        self.sessions
            .cookie_secure
            .unwrap_or(self.server.public_url.scheme() == "https")
    }

    /// The configured `acr` value → level table.
    pub fn acr_levels(&self) -> Vec<(String, u8)> {
        parse_acr_levels(&self.claims.oidc_acr_levels).unwrap_or_default()
    }

    /// The database URL in effect: the configured one, or SQLite under `data_dir`.
    pub fn database_url(&self) -> String {
        match &self.database.database_url {
            Some(u) => u.expose_secret().to_owned(),
            None => format!(
                "sqlite://{}",
                self.server.data_dir.join("onewindow.db").to_string_lossy()
            ),
        }
    }

    /// Which backend the database URL selects.
    pub fn database_kind(&self) -> DatabaseKind {
        database_kind(&self.database_url()).unwrap_or(DatabaseKind::Sqlite)
    }

    /// The configuration as TOML, one key a line in alphabetical order, with secrets
    /// masked (see [`masked`]). The database URL and `cookie_secure` show the values in
    /// effect when unset; other unset keys are listed as comments.
    pub fn redacted(&self) -> String {
        let mut out = String::new();
        for (key, value) in flat(self) {
            let value = match key.as_str() {
                "database_url" => Value::from(redact_url(&self.database_url())),
                "cookie_secure" => Value::from(self.cookies_secure()),
                _ => value,
            };
            match toml::Value::try_from(&value) {
                Ok(v) => out.push_str(&format!("{key} = {v}\n")),
                Err(_) => out.push_str(&format!("# {key} is not set\n")),
            }
        }
        out
    }
}

/// One group of settings, read from the flat layers; a failure is recorded and the
/// group's defaults stand in so the other groups are still checked.
fn group<T: DeserializeOwned + Default>(figment: &Figment, errors: &mut Vec<figment::Error>) -> T {
    figment.extract().unwrap_or_else(|e| {
        errors.push(e);
        T::default()
    })
}

/// The settings as flat keys and values (masked), unset keys included as empty.
fn flat(settings: &Settings) -> Dict {
    Figment::from(Serialized::defaults(settings))
        .extract()
        .unwrap_or_default()
}

/// ` (from …)`: the file or the environment a value came from.
fn origin(metadata: Option<&Metadata>) -> String {
    metadata
        .map(|m| match &m.source {
            Some(source) => format!(" (from {source})"),
            None => format!(" (from {})", m.name),
        })
        .unwrap_or_default()
}

fn parse_acr_levels(spec: &str) -> Result<Vec<(String, u8)>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (value, level) = pair
                .rsplit_once('=')
                .ok_or_else(|| format!("{pair:?} is not value=level"))?;
            match level.trim().parse::<u8>() {
                Ok(l @ 1..=3) => Ok((value.trim().to_owned(), l)),
                _ => Err(format!("level in {pair:?} must be 1, 2 or 3")),
            }
        })
        .collect()
}

fn database_kind(url: &str) -> Result<DatabaseKind, String> {
    if url.starts_with("sqlite:") {
        Ok(DatabaseKind::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        url::Url::parse(url).map_err(|e| format!("not a valid URL: {e}"))?;
        Ok(DatabaseKind::Postgres)
    } else {
        Err("must start with sqlite:, postgres:// or postgresql://".into())
    }
}

/// Replaces the password (and any `password=` query value) of a URL with `***`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.has_host() => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let secret = k.eq_ignore_ascii_case("password");
                    (
                        k.into_owned(),
                        if secret { "***".into() } else { v.into_owned() },
                    )
                })
                .collect();
            if !pairs.is_empty() {
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Ok(_) => raw.to_owned(),
        Err(_) => "(unparseable URL hidden)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut f = Settings::defaults();
        for (k, v) in pairs {
            f = f.merge(Serialized::default(k, v));
        }
        Settings::from_figment(f)
    }

    /// The defaults with a TOML file's text layered on top, as `--config` would.
    fn with_file(text: &str) -> Result<Settings, ConfigError> {
        Settings::from_figment(Settings::defaults().merge(Toml::string(text)))
    }

    #[test]
    fn defaults_are_valid_and_use_embedded_sqlite() {
        let s = with(&[]).expect("defaults");
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_kind(), DatabaseKind::Sqlite);
        assert!(s.database_url().ends_with("data/onewindow.db"));
        assert!(s.cache.redis_url.is_none());
    }

    #[test]
    fn each_group_brings_its_defaults() {
        let s = with(&[]).expect("defaults");
        assert_eq!(s.server.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(s.server.request_timeout_secs, 30);
        assert_eq!(s.log.log_format, LogFormat::Pretty);
        assert_eq!(s.database.database_max_connections, 16);
        assert!(s.database.migrate_on_start);
        assert_eq!(s.cache.cache_prefix, "onewindow:");
        assert_eq!(s.oidc.oidc_scopes, "openid profile phone onewindow");
        assert!(s.oidc.oidc_issuer.is_none() && s.oidc.oidc_client_secret.is_none());
        assert_eq!(s.claims.oidc_claim_id_number, "id_number");
        assert_eq!(s.acr_levels().len(), 3);
        assert_eq!(
            (
                s.sessions.session_idle_secs,
                s.sessions.session_absolute_secs
            ),
            (1800, 43200)
        );
        assert_eq!(s.cases.draft_ttl_secs, 30 * 24 * 3600);
        assert!(s.exchange.worker_in_serve && !s.exchange.exchange_allow_http);
        assert_eq!(s.exchange.inbox_lease_secs, 300);
        assert_eq!(
            (
                s.sharing.provider_timeout_ms,
                s.sharing.provider_failures_to_open,
                s.sharing.provider_open_secs
            ),
            (2000, 5, 30)
        );
        assert_eq!(
            s.mail.mail_from,
            "呼伦贝尔市一网通办 <noreply@zwfw.example.gov.cn>"
        );
    }

    #[test]
    fn flat_keys_from_a_file_reach_their_groups() {
        let s = with_file(
            "listen = \"0.0.0.0:9000\"\nsession_idle_secs = 60\nworker_in_serve = false\n\
             oidc_claim_name = \"xm\"\nprovider_open_secs = 5\nmail_from = \"局 <a@b.cn>\"\n",
        )
        .expect("valid");
        assert_eq!(s.server.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(s.sessions.session_idle_secs, 60);
        assert!(!s.exchange.worker_in_serve);
        assert_eq!(s.claims.oidc_claim_name, "xm");
        assert_eq!(s.sharing.provider_open_secs, 5);
        assert_eq!(s.mail.mail_from, "局 <a@b.cn>");
        // A later layer wins over an earlier one.
        let s = Settings::from_figment(
            Settings::defaults()
                .merge(Toml::string("session_idle_secs = 60"))
                .merge(Serialized::default("session_idle_secs", 90)),
        )
        .expect("valid");
        assert_eq!(s.sessions.session_idle_secs, 90);
    }

    #[test]
    fn a_bad_listen_address_names_the_key() {
        let e = with(&[("listen", "localhost:eighty")]).expect_err("bad");
        assert!(e.to_string().contains("`listen`"), "{e}");
    }

    #[test]
    fn bad_values_in_several_groups_are_all_named_with_their_source() {
        let e = with_file("listen = \"nowhere\"\nsession_idle_secs = \"long\"\n").expect_err("bad");
        let e = e.to_string();
        assert!(
            e.contains("`listen`") && e.contains("`session_idle_secs`"),
            "{e}"
        );
        assert!(e.contains("TOML"), "the layer is named: {e}");
    }

    #[test]
    fn a_bad_database_url_names_the_key() {
        let e = with(&[("database_url", "mysql://x")]).expect_err("bad");
        assert!(e.to_string().contains("`database_url`"), "{e}");
    }

    #[test]
    fn a_short_personal_data_key_is_refused_and_a_good_one_hidden() {
        let e = with(&[("personal_data_key", "c2hvcnQ=")]).expect_err("bad");
        assert!(e.to_string().contains("`personal_data_key`"), "{e}");
        let key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        let s = with(&[("personal_data_key", key)]).expect("good");
        assert!(!s.redacted().contains(key), "the key is never printed");
    }

    #[test]
    fn a_bad_redis_url_names_the_key() {
        let e = with(&[("redis_url", "http://x")]).expect_err("bad");
        assert!(e.to_string().contains("`redis_url`"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = with(&[("lisen", "127.0.0.1:1")]).expect_err("bad");
        assert!(e.to_string().contains("`lisen`"), "{e}");
        // Groups are not keys: a file cannot nest settings under a group's name.
        let e = with_file("[server]\nlisten = \"127.0.0.1:1\"\n").expect_err("bad");
        assert!(e.to_string().contains("`server`"), "{e}");
        let e = with_file("session_idle_secs = 60\nsesion_absolute_secs = 90\n").expect_err("bad");
        assert!(e.to_string().contains("`sesion_absolute_secs`"), "{e}");
    }

    #[test]
    fn redaction_hides_passwords() {
        let s = with(&[
            (
                "database_url",
                "postgres://app:hunter2@db:5432/gw?password=x2&sslmode=require",
            ),
            ("redis_url", "redis://:s3cret@cache:6379/0"),
        ])
        .expect("valid");
        let out = s.redacted();
        assert!(
            !out.contains("hunter2") && !out.contains("s3cret") && !out.contains("x2"),
            "{out}"
        );
        assert!(out.contains("postgres://app:***@db:5432/gw"), "{out}");
        assert!(
            format!("{s:?}").contains("SecretBox"),
            "Debug must not show secrets"
        );
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn redaction_hides_every_secret_and_lists_every_key() {
        let secrets = [
            (
                "database_url",
                "postgres://app:db-pass-1@db:5432/gw?password=db-pass-2",
                "db-pass",
            ),
            (
                "redis_url",
                "redis://:cache-pass@cache:6379/0",
                "cache-pass",
            ),
            ("smtp_url", "smtp://mailer:mail-pass@relay:587", "mail-pass"),
            ("oidc_issuer", "https://idp.example.gov.cn", ""),
            ("oidc_client_id", "gw", ""),
            ("oidc_client_secret", "client-secret-value", "client-secret"),
            (
                "oidc_staff_client_secret",
                "staff-secret-value",
                "staff-secret",
            ),
            (
                "personal_data_key",
                "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
                "AQEBAQEB",
            ),
        ];
        let pairs: Vec<(&str, &str)> = secrets.iter().map(|(k, v, _)| (*k, *v)).collect();
        let s = with(&pairs).expect("valid");
        let shown = [
            s.redacted(),
            format!("{s:?}"),
            serde_json::to_string(&s).expect("json"),
        ];
        for text in &shown {
            for (key, _, secret) in secrets.iter().filter(|(_, _, x)| !x.is_empty()) {
                assert!(!text.contains(secret), "{key} leaked: {text}");
            }
        }
        let out = &shown[0];
        assert!(out.contains("oidc_client_secret = \"***\""), "{out}");
        assert!(
            out.contains("smtp_url = \"smtp://mailer:***@relay:587\""),
            "{out}"
        );
        assert!(out.contains("# holidays_file is not set"), "{out}");
        for key in Settings::keys() {
            assert!(
                out.lines()
                    .any(|l| l.starts_with(&format!("{key} = "))
                        || l == format!("# {key} is not set")),
                "{key} missing from {out}"
            );
        }
    }

    #[test]
    fn the_readme_documents_every_key_and_no_other() {
        let readme = include_str!("../README.md");
        let table = readme
            .split("## Configuration")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("README has a Configuration section");
        let documented: BTreeSet<String> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split(" | ").next())
            .flat_map(|first| first.split(", "))
            .map(|k| k.trim_matches('`').trim_start_matches("| `").to_owned())
            .collect();
        assert_eq!(documented, Settings::keys());
    }

    #[test]
    fn oidc_settings_are_checked() {
        let e = with(&[("oidc_issuer", "http://idp.example.com")]).expect_err("http");
        assert!(e.to_string().contains("`oidc_issuer`"), "{e}");
        let e = with(&[("oidc_issuer", "https://idp.example.com")]).expect_err("no client");
        assert!(e.to_string().contains("`oidc_client_id`"), "{e}");
        let s = with(&[
            ("oidc_issuer", "http://127.0.0.1:8081"),
            ("oidc_client_id", "gw"),
            ("oidc_client_secret", "very-secret"),
        ])
        .expect("loopback http is fine");
        assert!(!s.redacted().contains("very-secret"));
        let e = with(&[("oidc_acr_levels", "gold=9")]).expect_err("bad level");
        assert!(e.to_string().contains("`oidc_acr_levels`"), "{e}");
        assert!(!with(&[]).expect("defaults").cookies_secure());
        assert!(
            with(&[("public_url", "https://zwfw.example.gov.cn")])
                .expect("https")
                .cookies_secure()
        );
    }
}
