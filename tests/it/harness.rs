//! Test harness: a gateway on port 0 against a fresh database and key prefix.
//!
//! Every test runs on SQLite with the in-memory cache, and again on PostgreSQL with
//! Redis. The PostgreSQL + Redis copies run when `ONEWINDOW_TEST_DATABASE_URL` and
//! `ONEWINDOW_TEST_REDIS_URL` are set (CI sets both); otherwise `build.rs` leaves the
//! `external_backends` cfg off and they are reported as ignored, with the reason, rather
//! than passing without having run. Each PostgreSQL test gets its own database and each
//! Redis test its own key prefix; both are removed when the test ends, pass or fail.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::Serialized;
use onewindow::app::{AppState, Application};
use onewindow::config::Settings;
use sqlx::Connection;
use tokio::sync::oneshot;

use crate::proxy::Proxy;

/// The storage and cache combination under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite + in-memory cache (the zero-configuration default).
    SqliteMemory,
    /// PostgreSQL + Redis (production).
    PostgresRedis,
}

/// The repository's real service definitions.
pub fn definitions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("service-definitions")
}

/// The PostgreSQL (admin) and Redis URLs under test.
///
/// Tests that need them are ignored unless both variables were set when the tests were
/// built (see `build.rs`), so reaching this without them means the ignored test was run
/// by hand (`--ignored`); that fails, as does a configured server that does not answer.
/// Nothing here ever skips quietly.
pub fn external_backends() -> (String, String) {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: the PostgreSQL + Redis tests need \
                 ONEWINDOW_TEST_DATABASE_URL and ONEWINDOW_TEST_REDIS_URL"
            )
        })
    };
    (
        var("ONEWINDOW_TEST_DATABASE_URL"),
        var("ONEWINDOW_TEST_REDIS_URL"),
    )
}

/// The key-encryption key of every test gateway (and of the binary the tests run), so
/// instances on one database share it.
pub const TEST_KEK: &str = "dGVzdCBrZXktZW5jcnlwdGlvbiBrZXkgMzIgYnl0ZXM=";

/// reqwest 0.13 is built with `rustls-no-provider` (for object_store without aws-lc), so
/// every process installs rustls' ring provider before building a client.
pub fn install_tls_provider() {
    onewindow::install_tls_provider();
}

/// Per-test resources: a temp directory, and on PostgreSQL a database and a key prefix.
pub struct Resources {
    pub backend: Backend,
    pub tmp: tempfile::TempDir,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub prefix: String,
    pg_cleanup: Option<(String, String)>,
}

impl Resources {
    /// Makes fresh resources: on PostgreSQL + Redis a new database and key prefix.
    pub async fn new(backend: Backend) -> Resources {
        install_tls_provider();
        let tmp = tempfile::tempdir().expect("temp dir");
        let id = uuid::Uuid::now_v7().simple().to_string();
        let prefix = format!("onewindow-test-{id}:");
        match backend {
            Backend::SqliteMemory => Resources {
                backend,
                tmp,
                database_url: None,
                redis_url: None,
                prefix,
                pg_cleanup: None,
            },
            Backend::PostgresRedis => {
                let (admin, redis) = external_backends();
                let name = format!("onewindow_t_{id}");
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("ONEWINDOW_TEST_DATABASE_URL is set but PostgreSQL does not answer");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let _ = conn.close().await;
                let mut url = url::Url::parse(&admin).expect("database url");
                url.set_path(&format!("/{name}"));
                let r = redis::Client::open(redis.as_str()).expect("redis url");
                let mut c = r
                    .get_multiplexed_async_connection()
                    .await
                    .expect("ONEWINDOW_TEST_REDIS_URL is set but Redis does not answer");
                let _: String = redis::cmd("PING")
                    .query_async(&mut c)
                    .await
                    .expect("redis ping");
                Resources {
                    backend,
                    tmp,
                    database_url: Some(url.to_string()),
                    redis_url: Some(redis),
                    prefix,
                    pg_cleanup: Some((admin, name)),
                }
            }
        }
    }

    /// Settings for a gateway on these resources, listening on port 0.
    pub fn settings(&self) -> Settings {
        self.settings_with(&[])
    }

    /// Settings with extra overrides (`("database_url", "…")`).
    pub fn settings_with(&self, extra: &[(&str, &str)]) -> Settings {
        let mut f = Settings::defaults()
            .merge(Serialized::default("listen", "127.0.0.1:0"))
            .merge(Serialized::default("data_dir", self.tmp.path()))
            .merge(Serialized::default("definitions_dir", definitions_dir()))
            .merge(Serialized::default("cache_prefix", &self.prefix))
            .merge(Serialized::default("shutdown_grace_secs", 2))
            .merge(Serialized::default("key_encryption_key", TEST_KEK));
        if let Some(db) = &self.database_url {
            f = f.merge(Serialized::default("database_url", db));
        }
        if let Some(r) = &self.redis_url {
            f = f.merge(Serialized::default("redis_url", r));
        }
        for (k, v) in extra {
            // as the environment provider would: numbers and booleans are not strings
            f = if let Ok(n) = v.parse::<u64>() {
                f.merge(Serialized::default(k, n))
            } else if let Ok(b) = v.parse::<bool>() {
                f.merge(Serialized::default(k, b))
            } else {
                f.merge(Serialized::default(k, v))
            };
        }
        Settings::from_figment(f).expect("test settings")
    }
}

impl Drop for Resources {
    fn drop(&mut self) {
        let pg = self.pg_cleanup.take();
        let redis = self.redis_url.clone();
        let prefix = self.prefix.clone();
        // Drop cannot await: clean up on a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Some((admin, name)) = pg
                    && let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await
                {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
                if let Some(url) = redis
                    && let Ok(cache) = onewindow::cache::RedisCache::connect(&url, &prefix).await
                {
                    use onewindow::cache::Cache;
                    let _ = cache.purge().await;
                }
            });
        })
        .join();
    }
}

/// Fills the base library with the shipped demo data (the personas' own records and
/// licences among them), as a city's gateway holds its base data before anyone applies.
pub async fn seed_base_library(state: &AppState) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference-data/demo");
    for (code, file) in [
        ("person", "person.csv"),
        ("enterprise", "enterprise.csv"),
        ("credit", "credit.csv"),
        ("elicence", "elicence.jsonl"),
    ] {
        let resource = state.catalogue.resource(code).expect("resource");
        let report = onewindow::sharing::import::import_file(
            &state.providers.base,
            &resource,
            &dir.join(file),
            None,
            &|_| {},
        )
        .await
        .expect("demo data imports");
        assert!(report.rejected.is_empty(), "{file}: {:?}", report.rejected);
    }
}

/// Binds a loopback listener on a free port.
pub async fn bind() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
}

/// A running gateway and an HTTP client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    // Proxies in front of PostgreSQL and Redis, so tests can take them away.
    pub db_proxy: Option<Proxy>,
    pub cache_proxy: Option<Proxy>,
    // Last: dropped after the server has stopped.
    res: Option<Resources>,
}

impl TestApp {
    /// Starts a gateway on `backend`.
    pub async fn spawn(backend: Backend) -> TestApp {
        let res = Resources::new(backend).await;
        Self::start(res, false).await
    }

    /// Like `spawn`, with PostgreSQL and Redis reached through proxies the test controls.
    pub async fn spawn_proxied(backend: Backend) -> TestApp {
        let res = Resources::new(backend).await;
        Self::start(res, true).await
    }

    async fn start(res: Resources, proxied: bool) -> TestApp {
        let listener = bind().await;
        Self::start_on(res, listener, proxied, &[]).await
    }

    /// Starts a gateway on an already bound listener with extra settings (`public_url`
    /// is always the listener's address, so the CSRF origin check sees the real origin).
    pub async fn start_on(
        res: Resources,
        listener: tokio::net::TcpListener,
        proxied: bool,
        extra: &[(&str, &str)],
    ) -> TestApp {
        let addr = listener.local_addr().expect("addr");
        let public_url = format!("http://{addr}");
        let mut overrides: Vec<(&str, &str)> = vec![("public_url", public_url.as_str())];
        overrides.extend_from_slice(extra);
        let (mut db_proxy, mut cache_proxy) = (None, None);
        let (db_url, redis_url);
        if proxied && res.backend == Backend::PostgresRedis {
            let db = url::Url::parse(res.database_url.as_deref().expect("db")).expect("url");
            let rd = url::Url::parse(res.redis_url.as_deref().expect("redis")).expect("url");
            let dp = Proxy::start(target(&db)).await;
            let cp = Proxy::start(target(&rd)).await;
            let mut db2 = db.clone();
            db2.set_port(Some(dp.addr.port())).expect("port");
            db2.set_host(Some("127.0.0.1")).expect("host");
            let mut rd2 = rd.clone();
            rd2.set_port(Some(cp.addr.port())).expect("port");
            rd2.set_host(Some("127.0.0.1")).expect("host");
            db_proxy = Some(dp);
            cache_proxy = Some(cp);
            db_url = db2.to_string();
            redis_url = rd2.to_string();
            overrides.push(("database_url", db_url.as_str()));
            overrides.push(("redis_url", redis_url.as_str()));
        }
        let settings = res.settings_with(&overrides);
        let app = Application::build_with_listener(settings, listener)
            .await
            .expect("application builds");
        let state = app.state();
        seed_base_library(&state).await;
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        TestApp {
            addr,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            state,
            stop: Some(tx),
            server: Some(server),
            db_proxy,
            cache_proxy,
            res: Some(res),
        }
    }

    /// The resources under this gateway (its database, data directory).
    pub fn resources(&self) -> &Resources {
        self.res.as_ref().expect("resources")
    }

    /// Absolute URL of a path on this gateway.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GET with an optional `Accept-Language`.
    pub async fn get(&self, path: &str, lang: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(l) = lang {
            req = req.header("accept-language", l);
        }
        req.send().await.expect("request")
    }

    /// GET and parse JSON, asserting the status.
    pub async fn get_json(&self, path: &str, lang: Option<&str>, status: u16) -> serde_json::Value {
        let resp = self.get(path, lang).await;
        assert_eq!(resp.status().as_u16(), status, "GET {path}");
        resp.json().await.expect("json body")
    }

    /// Stops the server gracefully, waits for it, and hands back the resources.
    pub async fn stop(mut self) -> Resources {
        self.shutdown().await;
        self.res.take().expect("resources")
    }

    async fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }

    /// Starts another gateway on the same resources (a restart, or a second instance).
    pub async fn again(res: Resources) -> TestApp {
        Self::start(res, false).await
    }
}

fn target(u: &url::Url) -> String {
    format!(
        "{}:{}",
        u.host_str().expect("host"),
        u.port_or_known_default().unwrap_or(match u.scheme() {
            "redis" => 6379,
            _ => 5432,
        })
    )
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Generates one test per backend for each listed fn taking a [`Backend`]: async fns
/// become `#[tokio::test]`s, and after `sync:` plain fns become `#[test]`s. The
/// PostgreSQL + Redis copies are ignored, saying why, when `build.rs` found the servers
/// not configured.
///
/// A test of its own that needs PostgreSQL + Redis carries the same attribute:
/// `#[cfg_attr(not(external_backends), ignore = "PostgreSQL/Redis not configured …")]`.
#[macro_export]
macro_rules! backend_tests {
    (sync: $($name:ident),* $(,)?) => {
        mod sqlite_memory {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::harness::Backend::SqliteMemory)
                }
            )*
        }
        mod postgres_redis {
            $(
                #[test]
                #[cfg_attr(
                    not(external_backends),
                    ignore = "PostgreSQL/Redis not configured: set ONEWINDOW_TEST_DATABASE_URL and ONEWINDOW_TEST_REDIS_URL"
                )]
                fn $name() {
                    super::$name($crate::harness::Backend::PostgresRedis)
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::SqliteMemory).await
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    not(external_backends),
                    ignore = "PostgreSQL/Redis not configured: set ONEWINDOW_TEST_DATABASE_URL and ONEWINDOW_TEST_REDIS_URL"
                )]
                async fn $name() {
                    super::$name($crate::harness::Backend::PostgresRedis).await
                }
            )*
        }
    };
}
