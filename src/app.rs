//! Wiring: [`Application::build`] turns [`Settings`] into a bound, ready server. `main`
//! and the tests use the same function, so tests exercise production wiring.
//!
//! This module sits on top of everything: it builds the [`AppState`] (defined below the
//! handlers and use cases, in [`crate::state`]) and hands it to the router and workers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::identity::{Audience, ClaimNames};
use crate::auth::oidc::RelyingParty;
use crate::auth::session::Sessions;
use crate::cache;
use crate::config::Settings;
use crate::domain::catalogue::{self, Catalogue};
use crate::store::{self, ServiceVersion, Store};

/// The state's definition moved to [`crate::state`]; these names stay so callers written
/// against `crate::app::AppState` keep compiling.
pub use crate::state::{App, AppState};

/// The audit's blind-index key and the sealer of personal data: the index key is
/// generated on first start and kept in the store; the data key comes from
/// `personal_data_key`, or else is generated and kept in the store too (with a warning).
/// Keys kept in the store are wrapped by the key-encryption key (`crate::kek`), which
/// this sets on the store when the settings give one. The data keys made by rotations
/// (`crate::datakeys`) are loaded into the sealer.
pub async fn personal_data_keys(
    settings: &Settings,
    store: &dyn Store,
) -> anyhow::Result<(Vec<u8>, Arc<crate::sharing::seal::Sealer>)> {
    if let Some(kek) = crate::kek::from_settings(settings)? {
        store.set_kek(Arc::new(kek));
    }
    let index_key = hex::decode(
        store
            .secret(
                crate::sharing::audit::INDEX_KEY_NAME,
                &hex::encode(rand::random::<[u8; 32]>()),
            )
            .await
            .context("cannot load the audit index key")?,
    )
    .context("the stored audit index key is not hex")?;
    let data_key = match &settings.database.personal_data_key {
        Some(k) => crate::sharing::seal::parse_key(k.expose_secret())
            .map_err(|e| anyhow::anyhow!("personal_data_key: {e}"))?,
        None => {
            tracing::warn!(
                "personal_data_key is not set: personal data is sealed with a key generated on first start and kept in the database; set personal_data_key (32 bytes, base64) to keep the key apart from the data"
            );
            let stored = store
                .secret(
                    crate::sharing::seal::DATA_KEY_NAME,
                    &base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        rand::random::<[u8; 32]>(),
                    ),
                )
                .await
                .context("cannot load the personal-data key")?;
            crate::sharing::seal::parse_key(&stored)
                .map_err(|e| anyhow::anyhow!("the stored personal-data key: {e}"))?
        }
    };
    let sealer = Arc::new(crate::sharing::seal::Sealer::new(&index_key, &data_key));
    crate::datakeys::refresh(store, &sealer).await?;
    Ok((index_key, sealer))
}

/// The catalogue could not be loaded; every mistake is listed.
#[derive(Debug, thiserror::Error)]
#[error("the service definitions in {dir} have {} error(s):\n{}", .errors.len(), .errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
pub struct CatalogueError {
    /// The directory read.
    pub dir: String,
    /// Every mistake found.
    pub errors: Vec<catalogue::DefinitionError>,
}

/// Loads and validates the definitions directory named in the settings.
pub fn load_catalogue(settings: &Settings) -> Result<Catalogue, CatalogueError> {
    catalogue::load_dir(&settings.server.definitions_dir).map_err(|errors| CatalogueError {
        dir: settings.server.definitions_dir.display().to_string(),
        errors,
    })
}

/// Connects the store (and migrates it when configured to).
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::connect_with(
        &settings.database_url(),
        settings.database.database_max_connections,
        std::time::Duration::from_millis(settings.database.database_acquire_timeout_ms.max(1)),
    )
    .await
    .with_context(|| {
        format!(
            "cannot open the database {}",
            crate::config::redact_url(&settings.database_url())
        )
    })?;
    // Keys kept in the store are wrapped by the key-encryption key, when there is one.
    if let Some(kek) = crate::kek::from_settings(settings)? {
        store.set_kek(Arc::new(kek));
    }
    if settings.database.migrate_on_start {
        let n = store.migrate().await.context("database migration failed")?;
        if n > 0 {
            tracing::info!(applied = n, backend = store.backend(), "database migrated");
        }
    }
    Ok(store)
}

/// A gateway bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Loads the catalogue, opens the store and cache, records the served definition
    /// versions and binds the listen address (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        crate::install_tls_provider();
        let listener = TcpListener::bind(settings.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
        Self::build_with_listener(settings, listener).await
    }

    /// Like [`Application::build`] on an already bound listener (tests bind first to
    /// learn the port, then set `public_url` and the provider's redirect URI from it).
    pub async fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Application> {
        let state = Self::build_state(settings).await?;
        Ok(Application { listener, state })
    }

    /// Builds the state of a gateway from its settings without binding a port: loads the
    /// catalogue, opens (and migrates) the store, connects the cache, records the served
    /// definition versions, loads the signing and personal-data keys and builds the clients.
    /// [`Application`] serves it; a background command or a test of a use case can use it
    /// alone.
    pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
        // Every key kept in the database is wrapped: no gateway runs without the KEK.
        let kek = crate::kek::from_settings(&settings)?
            .ok_or_else(|| anyhow::anyhow!(crate::kek::NO_KEK))?;
        let catalogue = load_catalogue(&settings)?;
        let plan_tasks = crate::supervision::filings::PlanTasks::load(
            &settings.server.definitions_dir,
            &catalogue,
        )
        .map_err(|errors| anyhow::anyhow!("the plan's key tasks:\n  {}", errors.join("\n  ")))?;
        let store = open_store(&settings).await?;
        store.set_kek(Arc::new(kek));
        let cache = cache::connect(
            settings.cache.redis_url.as_ref().map(|u| u.expose_secret()),
            &settings.cache.cache_prefix,
        )
        .await
        .context("cannot connect to Redis")?;

        let now = Utc::now();
        let imported =
            crate::usecases::catalogue_mgmt::import_and_load(store.as_ref(), &catalogue, now)
                .await
                .context("cannot import or load the resource catalogue")?;
        tracing::info!(
            imported,
            resources = catalogue.resources().len(),
            "resource catalogue loaded"
        );
        let versions: Vec<ServiceVersion> = catalogue
            .services()
            .iter()
            .map(|s| ServiceVersion {
                code: s.code.clone(),
                version: s.version(),
                definition: serde_json::to_value(s).unwrap_or_default(),
                published_at: now,
            })
            .collect();
        let new = store
            .record_service_versions(&versions)
            .await
            .context("cannot record service versions")?;
        tracing::info!(
            services = catalogue.services().len(),
            departments = catalogue.departments().len(),
            new_versions = new,
            "service catalogue loaded"
        );
        metrics::gauge!("onewindow_catalogue_services").set(catalogue.services().len() as f64);
        let imported = crate::sharing::grants::import_catalogue(&catalogue, store.as_ref(), now)
            .await
            .context("cannot import the catalogue's sharing grants")?;
        tracing::info!(new_grants = imported, "catalogue grants imported");

        crate::http::install_recorder();
        // Without Redis, sessions live in the database so a restart logs nobody out.
        let sessions = if settings.cache.redis_url.is_some() {
            Sessions::new(
                cache.clone(),
                Duration::from_secs(settings.sessions.session_idle_secs),
                Duration::from_secs(settings.sessions.session_absolute_secs),
                settings.cookies_secure(),
            )
        } else {
            Sessions::in_store(
                store.clone(),
                Duration::from_secs(settings.sessions.session_idle_secs),
                Duration::from_secs(settings.sessions.session_absolute_secs),
                settings.cookies_secure(),
            )
        };
        let (public_login, staff_login) = relying_parties(&settings)?;
        let claim_names = claim_names(&settings);
        let calendar = crate::usecases::dates::load_calendar(&settings, store.as_ref()).await?;
        crate::usecases::dates::warn_missing_years(&calendar, crate::usecases::today());
        let calendar = crate::domain::calendar::SharedCalendar::new(calendar);
        let mailer = crate::notify::Mailer::from_settings(&settings)?;
        let keys = Arc::new(crate::exchange::keys::Keys::new(
            crate::exchange::keys::load(store.as_ref(), Utc::now())
                .await
                .context("cannot load the signing keys")?,
        ));
        let (index_key, sealer) = personal_data_keys(&settings, store.as_ref()).await?;
        store.set_sealer(sealer.clone());
        let audit = Arc::new(crate::audit::load_keys(&settings)?);
        store.set_audit_key(audit.link_key().to_vec());
        let http = reqwest012::Client::builder()
            .redirect(reqwest012::redirect::Policy::none())
            .user_agent(concat!("onewindow/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        let providers = crate::sharing::provider::Providers {
            base: crate::sharing::provider::BaseLibrary::new(store.clone(), sealer.clone()),
            api: crate::sharing::provider::DepartmentApi::new(
                store.clone(),
                cache.clone(),
                sealer.clone(),
                http.clone(),
                keys.clone(),
                crate::sharing::provider::ApiLimits {
                    timeout: Duration::from_millis(settings.sharing.provider_timeout_ms),
                    failures_to_open: settings.sharing.provider_failures_to_open,
                    open_for: Duration::from_secs(settings.sharing.provider_open_secs),
                },
            ),
        };
        let files = crate::files::SealedFiles::from_settings(&settings, &store, sealer.clone())
            .context("cannot open the materials store")?;
        tracing::info!(store = files.kind, "materials are sealed at rest");
        let files: Arc<dyn crate::files::FileStore> = Arc::new(files);
        let limiter = Arc::new(
            crate::http::edge::limits::Limiter::connect(
                &settings.limits,
                settings.cache.redis_url.as_ref().map(|u| u.expose_secret()),
                &settings.cache.cache_prefix,
            )
            .await
            .context("cannot connect the rate limits to Redis")?,
        );
        let edge_uploads = crate::http::edge::UploadAllowance::of(&catalogue);
        let state = AppState::new(App {
            settings,
            store,
            cache,
            catalogue,
            plan_tasks,
            sessions,
            public_login,
            staff_login,
            claim_names,
            files,
            calendar,
            mailer,
            keys,
            providers,
            index_key,
            sealer,
            http,
            limiter,
            edge_uploads,
            grant_reads: Default::default(),
            audit,
        });
        crate::region::start(&state).await?;
        Ok(state)
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.state.settings.server.listen)
    }

    /// The shared state, for tests and background workers.
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
    /// finish, for at most the configured grace period.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.local_addr();
        let grace = Duration::from_secs(self.state.settings.server.shutdown_grace_secs);
        let token = CancellationToken::new();
        let trigger = token.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.cancel();
        });

        let router = crate::http::router(self.state.clone());
        let worker = self.state.settings.exchange.worker_in_serve.then(|| {
            tokio::spawn(crate::exchange::worker::run(
                self.state.clone(),
                token.clone(),
            ))
        });
        let mail = self
            .state
            .settings
            .exchange
            .worker_in_serve
            .then(|| tokio::spawn(crate::notify::run(self.state.clone(), token.clone())));
        // Logs "recovered" once a dependency that turned requests away answers again.
        tokio::spawn(crate::http::error::watch_recovery(
            self.state.clone(),
            token.clone(),
        ));
        let housekeeper = {
            let state = self.state.clone();
            let token = token.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(600));
                // An imported calendar year reaches every instance within a minute.
                let mut calendar = tokio::time::interval(Duration::from_secs(60));
                calendar.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                // A resource version published on another instance goes live here too.
                let mut resources = tokio::time::interval(Duration::from_secs(
                    state.settings.catalogue_mgmt.catalogue_refresh_secs,
                ));
                resources.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut published = None;
                // A data-key rotation reaches every instance within this period.
                let mut data_keys = tokio::time::interval(Duration::from_secs(
                    state.settings.keys.data_key_refresh_secs.max(1),
                ));
                data_keys.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tick.tick() => {
                            if let Err(e) = housekeeping(&state, Utc::now()).await {
                                tracing::warn!(error = %format!("{e:#}"), "housekeeping failed");
                            }
                            crate::open::refresh_logged(&state, Utc::now()).await;
                        }
                        _ = resources.tick() => {
                            if let Err(e) = crate::usecases::catalogue_mgmt::refresh(&state, &mut published).await {
                                tracing::warn!(error = %e, "cannot refresh the resource catalogue");
                            }
                        }
                        _ = data_keys.tick() => {
                            if let Err(e) = crate::datakeys::refresh(state.store.as_ref(), &state.sealer).await {
                                tracing::warn!(error = %format!("{e:#}"), "cannot reload the personal-data keys");
                            }
                        }
                        _ = calendar.tick() => {
                            if let Err(e) = crate::usecases::dates::refresh_calendar(&state).await {
                                tracing::warn!(error = %format!("{e:#}"), "cannot refresh the holiday calendar");
                            }
                        }
                    }
                }
            })
        };
        let audit_checkpoints = tokio::spawn(crate::audit::run_checkpoints(
            self.state.clone(),
            token.clone(),
        ));
        tracing::info!(addr = %addr, backend = self.state.store.backend(), cache = self.state.cache.backend(), "onewindow listening on http://{addr}");
        let graceful = token.clone();
        let server = crate::http::serve::serve(
            self.listener,
            router,
            Duration::from_secs(self.state.settings.limits.header_read_timeout_secs),
            async move { graceful.cancelled().await },
        );

        let forced = async {
            token.cancelled().await;
            tracing::info!(
                grace_secs = grace.as_secs(),
                "shutting down: finishing in-flight requests"
            );
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            () = server => {},
            _ = forced => tracing::warn!("grace period over: closing remaining connections"),
        }
        housekeeper.abort();
        audit_checkpoints.abort();
        for w in [worker, mail].into_iter().flatten() {
            let _ = w.await;
        }
        self.state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

fn relying_parties(s: &Settings) -> anyhow::Result<(Option<RelyingParty>, Option<RelyingParty>)> {
    let callback = s
        .server
        .public_url
        .join("auth/callback")
        .context("public_url cannot take a path")?
        .to_string();
    let public = match (&s.oidc.oidc_issuer, &s.oidc.oidc_client_id) {
        (Some(issuer), Some(id)) => Some(RelyingParty::new(
            Audience::Public,
            issuer,
            id.clone(),
            s.oidc
                .oidc_client_secret
                .as_ref()
                .map(|x| x.expose_secret().to_owned()),
            &s.oidc.oidc_scopes,
            callback.clone(),
        )?),
        _ => None,
    };
    let staff = match (s.staff_issuer(), &s.oidc.oidc_staff_client_id) {
        (Some(issuer), Some(id)) => Some(RelyingParty::new(
            Audience::Staff,
            issuer,
            id.clone(),
            s.oidc
                .oidc_staff_client_secret
                .as_ref()
                .map(|x| x.expose_secret().to_owned()),
            &s.oidc.oidc_staff_scopes,
            callback,
        )?),
        _ => None,
    };
    Ok((public, staff))
}

fn claim_names(s: &Settings) -> ClaimNames {
    ClaimNames {
        name: s.claims.oidc_claim_name.clone(),
        id_number: s.claims.oidc_claim_id_number.clone(),
        phone: s.claims.oidc_claim_phone.clone(),
        email: s.claims.oidc_claim_email.clone(),
        assurance: s.claims.oidc_claim_assurance.clone(),
        acr_levels: s.acr_levels(),
        uscc: s.claims.oidc_claim_uscc.clone(),
        enterprise_name: s.claims.oidc_claim_enterprise_name.clone(),
        enterprise_role: s.claims.oidc_claim_enterprise_role.clone(),
        roles: s.claims.oidc_claim_roles.clone(),
        department: s.claims.oidc_claim_department.clone(),
        service_hall: s.claims.oidc_claim_service_hall.clone(),
        hall_departments: s.claims.oidc_claim_hall_departments.clone(),
    }
}

/// Retention (see [`crate::usecases::dates::run_retention`]): removes stale uploads,
/// expired drafts, closed cases' files and expired sessions; returns how many uploads and
/// drafts went.
pub async fn housekeeping(
    state: &AppState,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<(usize, u64)> {
    let r = crate::usecases::dates::run_retention(state, now).await?;
    Ok((r.unattached_uploads, r.drafts))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
