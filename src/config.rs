//! Configuration in layers: built-in defaults, then an optional TOML file (`--config`),
//! then `ONEWINDOW_*` environment variables, with the conventional `DATABASE_URL` and
//! `REDIS_URL` honoured too (an `ONEWINDOW_`-prefixed variable wins over them).
//!
//! [`Settings::load`] validates everything before the program does anything else, and a
//! bad value stops it with a message naming the key and what is wrong. Connection URLs
//! may carry passwords, so they are [`SecretString`]s and are only ever printed through
//! [`Settings::redacted`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The effective configuration of one gateway process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on (`ONEWINDOW_LISTEN`).
    pub listen: SocketAddr,
    /// Public base URL, used for links in events and mail (`ONEWINDOW_PUBLIC_URL`).
    pub public_url: url::Url,
    /// Directory for the embedded database and stored files.
    pub data_dir: PathBuf,
    /// Database URL; SQLite under `data_dir` when unset (`DATABASE_URL`).
    pub database_url: Option<SecretString>,
    /// Largest number of pooled database connections.
    pub database_max_connections: u32,
    /// Apply pending migrations when the server starts.
    pub migrate_on_start: bool,
    /// Redis URL; in-memory cache when unset (`REDIS_URL`).
    pub redis_url: Option<SecretString>,
    /// Prefix of every cache key, so several deployments can share one Redis.
    pub cache_prefix: String,
    /// Directory of service definitions.
    pub definitions_dir: PathBuf,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (`info`, `onewindow=debug,tower_http=info` …).
    pub log_level: String,
    /// Longest time a request may take before it is answered 503.
    pub request_timeout_secs: u64,
    /// How long a shutdown waits for in-flight requests.
    pub shutdown_grace_secs: u64,

    /// OpenID provider for citizens and enterprises (`ONEWINDOW_OIDC_ISSUER`); login is
    /// off when unset.
    pub oidc_issuer: Option<String>,
    /// Client id registered with that provider.
    pub oidc_client_id: Option<String>,
    /// Client secret.
    pub oidc_client_secret: Option<SecretString>,
    /// Scopes asked for, space-separated.
    pub oidc_scopes: String,
    /// Provider for staff (clerks, officers, operators); the citizen provider when unset.
    pub oidc_staff_issuer: Option<String>,
    /// Staff client id; staff login is off when unset.
    pub oidc_staff_client_id: Option<String>,
    /// Staff client secret.
    pub oidc_staff_client_secret: Option<SecretString>,
    /// Scopes the staff client asks for.
    pub oidc_staff_scopes: String,
    /// Claim holding the person's name.
    pub oidc_claim_name: String,
    /// Claim holding the resident ID number (身份证号).
    pub oidc_claim_id_number: String,
    /// Claim holding the phone number.
    pub oidc_claim_phone: String,
    /// Claim holding the email address (for notifications).
    pub oidc_claim_email: String,
    /// Claim holding the assurance level (`acr`, or a provider's own claim).
    pub oidc_claim_assurance: String,
    /// How claim values map to assurance levels 1–3: `value=level,…`. A value that is
    /// itself 1, 2 or 3 needs no entry.
    pub oidc_acr_levels: String,
    /// Claim holding the represented enterprise's USCC.
    pub oidc_claim_uscc: String,
    /// Claim holding the enterprise name.
    pub oidc_claim_enterprise_name: String,
    /// Claim holding the user's role in the enterprise.
    pub oidc_claim_enterprise_role: String,
    /// Claim (array) holding staff roles: clerk, department_officer, operator.
    pub oidc_claim_roles: String,
    /// Claim holding a department officer's department USCC.
    pub oidc_claim_department: String,
    /// Claim holding a clerk's service hall.
    pub oidc_claim_service_hall: String,
    /// Claim (array) holding the departments a clerk's hall serves.
    pub oidc_claim_hall_departments: String,
    /// A session ends after this many seconds without a request.
    pub session_idle_secs: u64,
    /// A session ends this many seconds after login, however busy.
    pub session_absolute_secs: u64,
    /// A holiday calendar file (same format as the built-in one) with further years;
    /// its years are added to, or replace, the built-in 2018–2026 calendar.
    pub holidays_file: Option<PathBuf>,
    /// SMTP relay for notification mail (`smtp://host:25`, `smtp://user:pass@host:587`);
    /// no mail is sent when unset.
    pub smtp_url: Option<SecretString>,
    /// Key that seals personal data at rest (the base library, cached shared data):
    /// 32 bytes in base64. Unset: a key generated on first start, kept in the database.
    pub personal_data_key: Option<SecretString>,
    /// Sender of notification mail.
    pub mail_from: String,
    /// Attempts at sending one notice's mail before it is marked failed (at least 1).
    pub mail_max_attempts: u32,
    /// The gateway sits behind a reverse proxy that sets X-Forwarded-For; use its last hop
    /// as the client address (for rate limits). Off: the TCP peer is the client.
    pub trust_forwarded_for: bool,
    /// Allow plain-http department endpoints (only for loopback tests and development).
    pub exchange_allow_http: bool,
    /// Run the delivery worker inside `serve` (turn off to run `onewindow worker` apart).
    pub worker_in_serve: bool,
    /// How long a pulled event stays leased before it comes back.
    pub inbox_lease_secs: u64,
    /// Time limit of one call to a department's data API (milliseconds).
    pub provider_timeout_ms: u64,
    /// Consecutive failures of a department's data API that open its circuit.
    pub provider_failures_to_open: u32,
    /// How long an open circuit refuses calls before one trial call (seconds).
    pub provider_open_secs: u64,
    /// Drafts are deleted this many seconds after their last save.
    pub draft_ttl_secs: u64,
    /// Mark cookies `Secure`; defaults to whether `public_url` is https.
    pub cookie_secure: Option<bool>,
}

/// Defaults, written out so `onewindow config` can show where a value came from.
#[derive(Debug, Serialize)]
struct Defaults {
    listen: &'static str,
    public_url: &'static str,
    data_dir: &'static str,
    database_max_connections: u32,
    migrate_on_start: bool,
    cache_prefix: &'static str,
    definitions_dir: &'static str,
    log_format: &'static str,
    log_level: &'static str,
    request_timeout_secs: u64,
    shutdown_grace_secs: u64,
    oidc_scopes: &'static str,
    oidc_staff_scopes: &'static str,
    oidc_claim_name: &'static str,
    oidc_claim_id_number: &'static str,
    oidc_claim_phone: &'static str,
    oidc_claim_email: &'static str,
    mail_from: &'static str,
    mail_max_attempts: u32,
    oidc_claim_assurance: &'static str,
    oidc_acr_levels: &'static str,
    oidc_claim_uscc: &'static str,
    oidc_claim_enterprise_name: &'static str,
    oidc_claim_enterprise_role: &'static str,
    oidc_claim_roles: &'static str,
    oidc_claim_department: &'static str,
    oidc_claim_service_hall: &'static str,
    oidc_claim_hall_departments: &'static str,
    session_idle_secs: u64,
    session_absolute_secs: u64,
    draft_ttl_secs: u64,
    exchange_allow_http: bool,
    worker_in_serve: bool,
    inbox_lease_secs: u64,
    provider_timeout_ms: u64,
    provider_failures_to_open: u32,
    provider_open_secs: u64,
    trust_forwarded_for: bool,
}

const DEFAULTS: Defaults = Defaults {
    listen: "127.0.0.1:8080",
    public_url: "http://127.0.0.1:8080",
    data_dir: "data",
    database_max_connections: 16,
    migrate_on_start: true,
    cache_prefix: "onewindow:",
    definitions_dir: "service-definitions",
    log_format: "pretty",
    log_level: "info",
    request_timeout_secs: 30,
    shutdown_grace_secs: 20,
    oidc_scopes: "openid profile phone onewindow",
    oidc_staff_scopes: "openid profile onewindow",
    oidc_claim_name: "name",
    oidc_claim_id_number: "id_number",
    oidc_claim_phone: "phone_number",
    oidc_claim_email: "email",
    mail_from: "呼伦贝尔市一网通办 <noreply@zwfw.example.gov.cn>",
    mail_max_attempts: 8,
    oidc_claim_assurance: "acr",
    oidc_acr_levels: "urn:onewindow:loa:1=1,urn:onewindow:loa:2=2,urn:onewindow:loa:3=3",
    oidc_claim_uscc: "uscc",
    oidc_claim_enterprise_name: "enterprise_name",
    oidc_claim_enterprise_role: "enterprise_role",
    oidc_claim_roles: "roles",
    oidc_claim_department: "department",
    oidc_claim_service_hall: "service_hall",
    oidc_claim_hall_departments: "hall_departments",
    session_idle_secs: 30 * 60,
    session_absolute_secs: 12 * 3600,
    draft_ttl_secs: 30 * 24 * 3600,
    exchange_allow_http: false,
    worker_in_serve: true,
    inbox_lease_secs: 300,
    provider_timeout_ms: 2000,
    provider_failures_to_open: 5,
    provider_open_secs: 30,
    trust_forwarded_for: false,
};

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

    /// The built-in defaults alone (tests layer their own values on top).
    pub fn defaults() -> Figment {
        Figment::from(Serialized::defaults(DEFAULTS))
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
        let settings: Settings = figment.extract().map_err(|e| {
            let mut msgs = Vec::new();
            for err in e {
                let key = if err.path.is_empty() {
                    String::from("(file)")
                } else {
                    err.path.join(".")
                };
                let source = err
                    .metadata
                    .as_ref()
                    .and_then(|m| m.source.as_ref().map(|s| format!(" (from {s})")))
                    .unwrap_or_default();
                msgs.push(format!("key `{key}`{source}: {}", err.kind));
            }
            ConfigError(msgs.join("; "))
        })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| Err(ConfigError(format!("key `{key}`: {why}")));
        if !matches!(self.public_url.scheme(), "http" | "https") {
            return bad("public_url", "must be an http:// or https:// URL".into());
        }
        if let Some(url) = &self.database_url
            && let Err(why) = database_kind(url.expose_secret())
        {
            return bad("database_url", why);
        }
        if let Some(url) = &self.redis_url {
            let u = url.expose_secret();
            if !(u.starts_with("redis://") || u.starts_with("rediss://")) {
                return bad("redis_url", "must start with redis:// or rediss://".into());
            }
        }
        if self.cache_prefix.is_empty() || self.cache_prefix.contains(char::is_whitespace) {
            return bad(
                "cache_prefix",
                "must be non-empty and contain no spaces".into(),
            );
        }
        if !(1..=256).contains(&self.database_max_connections) {
            return bad(
                "database_max_connections",
                "must be between 1 and 256".into(),
            );
        }
        if self.provider_timeout_ms == 0 || self.provider_failures_to_open == 0 {
            return bad(
                "provider_timeout_ms / provider_failures_to_open",
                "must be at least 1".into(),
            );
        }
        if self.request_timeout_secs == 0 {
            return bad("request_timeout_secs", "must be at least 1".into());
        }
        for (key, issuer, id) in [
            ("oidc_issuer", &self.oidc_issuer, &self.oidc_client_id),
            (
                "oidc_staff_issuer",
                &self.oidc_staff_issuer,
                &self.oidc_staff_client_id,
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
        if self.oidc_staff_client_id.is_some() && self.staff_issuer().is_none() {
            return bad(
                "oidc_staff_issuer",
                "staff login needs oidc_staff_issuer or oidc_issuer".into(),
            );
        }
        if let Some(k) = &self.personal_data_key
            && let Err(why) = crate::sharing::seal::parse_key(k.expose_secret())
        {
            return bad("personal_data_key", why);
        }
        if let Some(u) = &self.smtp_url {
            let u = u.expose_secret();
            if !(u.starts_with("smtp://") || u.starts_with("smtps://")) {
                return bad("smtp_url", "must start with smtp:// or smtps://".into());
            }
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return bad(
                "mail_from",
                format!(
                    "{:?} is not a mailbox like 名称 <user@example.gov.cn>",
                    self.mail_from
                ),
            );
        }
        if self.mail_max_attempts == 0 {
            return bad("mail_max_attempts", "must be at least 1".into());
        }
        if let Err(why) = parse_acr_levels(&self.oidc_acr_levels) {
            return bad("oidc_acr_levels", why);
        }
        if self.session_idle_secs == 0 || self.session_absolute_secs < self.session_idle_secs {
            return bad(
                "session_absolute_secs",
                "session timeouts must be positive, the absolute one at least the idle one".into(),
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return bad(
                "log_level",
                format!(
                    "{:?} is not a log filter (try info or debug)",
                    self.log_level
                ),
            );
        }
        Ok(())
    }

    /// The staff provider: its own issuer, or the citizen one.
    pub fn staff_issuer(&self) -> Option<&String> {
        self.oidc_staff_issuer
            .as_ref()
            .or(self.oidc_issuer.as_ref())
    }

    /// Whether cookies carry `Secure`.
    pub fn cookies_secure(&self) -> bool {
        self.cookie_secure
            .unwrap_or(self.public_url.scheme() == "https")
    }

    /// The configured `acr` value → level table.
    pub fn acr_levels(&self) -> Vec<(String, u8)> {
        parse_acr_levels(&self.oidc_acr_levels).unwrap_or_default()
    }

    /// The database URL in effect: the configured one, or SQLite under `data_dir`.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.expose_secret().to_owned(),
            None => format!(
                "sqlite://{}",
                self.data_dir.join("onewindow.db").to_string_lossy()
            ),
        }
    }

    /// Which backend the database URL selects.
    pub fn database_kind(&self) -> DatabaseKind {
        database_kind(&self.database_url()).unwrap_or(DatabaseKind::Sqlite)
    }

    /// The configuration as TOML with passwords in URLs replaced by `***`.
    pub fn redacted(&self) -> String {
        let redis = self
            .redis_url
            .as_ref()
            .map(|u| redact_url(u.expose_secret()));
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{k} = {v}\n"));
        let q = |s: &str| format!("{s:?}");
        line("listen", q(&self.listen.to_string()));
        line("public_url", q(self.public_url.as_str()));
        line("data_dir", q(&self.data_dir.to_string_lossy()));
        line("database_url", q(&redact_url(&self.database_url())));
        line(
            "database_max_connections",
            self.database_max_connections.to_string(),
        );
        line("migrate_on_start", self.migrate_on_start.to_string());
        line(
            "redis_url",
            redis
                .map(|r| q(&r))
                .unwrap_or_else(|| "\"\" # in-memory cache".into()),
        );
        line("cache_prefix", q(&self.cache_prefix));
        line(
            "definitions_dir",
            q(&self.definitions_dir.to_string_lossy()),
        );
        line(
            "log_format",
            q(match self.log_format {
                LogFormat::Pretty => "pretty",
                LogFormat::Json => "json",
            }),
        );
        line("log_level", q(&self.log_level));
        line(
            "request_timeout_secs",
            self.request_timeout_secs.to_string(),
        );
        line("shutdown_grace_secs", self.shutdown_grace_secs.to_string());
        let opt = |u: &Option<String>| q(u.as_deref().unwrap_or(""));
        let set = |s: &Option<SecretString>| {
            if s.is_some() {
                "\"***\"".to_owned()
            } else {
                "\"\"".to_owned()
            }
        };
        line("oidc_issuer", opt(&self.oidc_issuer));
        line(
            "oidc_client_id",
            q(self.oidc_client_id.as_deref().unwrap_or("")),
        );
        line("oidc_client_secret", set(&self.oidc_client_secret));
        line("personal_data_key", set(&self.personal_data_key));
        line("oidc_scopes", q(&self.oidc_scopes));
        line("oidc_staff_issuer", opt(&self.oidc_staff_issuer));
        line(
            "oidc_staff_client_id",
            q(self.oidc_staff_client_id.as_deref().unwrap_or("")),
        );
        line(
            "oidc_staff_client_secret",
            set(&self.oidc_staff_client_secret),
        );
        line("oidc_staff_scopes", q(&self.oidc_staff_scopes));
        for (k, v) in [
            ("oidc_claim_name", &self.oidc_claim_name),
            ("oidc_claim_id_number", &self.oidc_claim_id_number),
            ("oidc_claim_phone", &self.oidc_claim_phone),
            ("oidc_claim_email", &self.oidc_claim_email),
            ("oidc_claim_assurance", &self.oidc_claim_assurance),
            ("oidc_acr_levels", &self.oidc_acr_levels),
            ("oidc_claim_uscc", &self.oidc_claim_uscc),
            (
                "oidc_claim_enterprise_name",
                &self.oidc_claim_enterprise_name,
            ),
            (
                "oidc_claim_enterprise_role",
                &self.oidc_claim_enterprise_role,
            ),
            ("oidc_claim_roles", &self.oidc_claim_roles),
            ("oidc_claim_department", &self.oidc_claim_department),
            ("oidc_claim_service_hall", &self.oidc_claim_service_hall),
            (
                "oidc_claim_hall_departments",
                &self.oidc_claim_hall_departments,
            ),
        ] {
            line(k, q(v));
        }
        line("session_idle_secs", self.session_idle_secs.to_string());
        line(
            "session_absolute_secs",
            self.session_absolute_secs.to_string(),
        );
        line(
            "holidays_file",
            q(&self
                .holidays_file
                .as_deref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()),
        );
        line(
            "smtp_url",
            self.smtp_url
                .as_ref()
                .map(|u| q(&redact_url(u.expose_secret())))
                .unwrap_or_else(|| "\"\" # no mail".into()),
        );
        line("mail_from", q(&self.mail_from));
        line("mail_max_attempts", self.mail_max_attempts.to_string());
        line("draft_ttl_secs", self.draft_ttl_secs.to_string());
        line("exchange_allow_http", self.exchange_allow_http.to_string());
        line("worker_in_serve", self.worker_in_serve.to_string());
        line("inbox_lease_secs", self.inbox_lease_secs.to_string());
        line("provider_timeout_ms", self.provider_timeout_ms.to_string());
        line(
            "provider_failures_to_open",
            self.provider_failures_to_open.to_string(),
        );
        line("provider_open_secs", self.provider_open_secs.to_string());
        line("trust_forwarded_for", self.trust_forwarded_for.to_string());
        line("cookie_secure", self.cookies_secure().to_string());
        out
    }
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
        let mut f = Figment::from(Serialized::defaults(DEFAULTS));
        for (k, v) in pairs {
            f = f.merge(Serialized::default(k, v));
        }
        Settings::from_figment(f)
    }

    #[test]
    fn defaults_are_valid_and_use_embedded_sqlite() {
        let s = with(&[]).expect("defaults");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_kind(), DatabaseKind::Sqlite);
        assert!(s.database_url().ends_with("data/onewindow.db"));
        assert!(s.redis_url.is_none());
    }

    #[test]
    fn a_bad_listen_address_names_the_key() {
        let e = with(&[("listen", "localhost:eighty")]).expect_err("bad");
        assert!(e.to_string().contains("`listen`"), "{e}");
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
        assert!(e.to_string().contains("lisen"), "{e}");
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
