//! Wiring: [`Application::build`] turns [`Settings`] into a bound, ready server. `main`
//! and the tests use the same function, so tests exercise production wiring.

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cache::{self, Cache};
use crate::config::Settings;
use crate::domain::catalogue::{self, Catalogue};
use crate::store::{self, ServiceVersion, Store};

/// Shared state of one gateway process. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// What every handler can reach.
pub struct App {
    /// The effective configuration.
    pub settings: Settings,
    /// Durable storage.
    pub store: Arc<dyn Store>,
    /// Shared short-lived state.
    pub cache: Arc<dyn Cache>,
    /// The validated service catalogue.
    pub catalogue: Catalogue,
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
    catalogue::load_dir(&settings.definitions_dir).map_err(|errors| CatalogueError {
        dir: settings.definitions_dir.display().to_string(),
        errors,
    })
}

/// Connects the store (and migrates it when configured to).
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::connect(&settings.database_url(), settings.database_max_connections)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                crate::config::redact_url(&settings.database_url())
            )
        })?;
    if settings.migrate_on_start {
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
        let catalogue = load_catalogue(&settings)?;
        let store = open_store(&settings).await?;
        let cache = cache::connect(
            settings.redis_url.as_ref().map(|u| u.expose_secret()),
            &settings.cache_prefix,
        )
        .await
        .context("cannot connect to Redis")?;

        let now = Utc::now();
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

        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        crate::http::install_recorder();
        Ok(Application {
            listener,
            state: AppState(Arc::new(App {
                settings,
                store,
                cache,
                catalogue,
            })),
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.state.settings.listen)
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
        let grace = Duration::from_secs(self.state.settings.shutdown_grace_secs);
        let token = CancellationToken::new();
        let trigger = token.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.cancel();
        });

        let router = crate::http::router(self.state.clone());
        tracing::info!(addr = %addr, backend = self.state.store.backend(), cache = self.state.cache.backend(), "onewindow listening on http://{addr}");
        let graceful = token.clone();
        let server = axum::serve(self.listener, router)
            .with_graceful_shutdown(async move { graceful.cancelled().await });

        let forced = async {
            token.cancelled().await;
            tracing::info!(
                grace_secs = grace.as_secs(),
                "shutting down: finishing in-flight requests"
            );
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            r = server => r.context("server error")?,
            _ = forced => tracing::warn!("grace period over: closing remaining connections"),
        }
        self.state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
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
