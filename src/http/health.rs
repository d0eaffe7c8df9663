//! Probes: `/healthz` says the process is alive; `/readyz` says whether it can serve,
//! naming each dependency that does not answer.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is alive.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `alive`.
    status: Alive,
}

/// The only answer of the liveness probe: a process that cannot answer says nothing.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Alive {
    /// The process runs.
    Alive,
}

/// Alive: answers as long as the process runs its event loop.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    summary = "Liveness",
    description = "Answers as long as the process runs its event loop; checks nothing else.",
    responses((status = 200, description = "Alive.", body = Liveness))
)]
pub async fn healthz() -> Json<Liveness> {
    Json(Liveness {
        status: Alive::Alive,
    })
}

/// Whether the gateway can serve, and what is down if not.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, or `not_ready` when a dependency is down.
    status: Ready,
    /// What is down: `database`, `cache`.
    down: Vec<&'static str>,
    /// Each dependency's check.
    checks: Checks,
    /// How many services the catalogue serves.
    services: usize,
}

/// The overall answer of the readiness probe.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ready {
    /// Every dependency answered.
    Ready,
    /// At least one did not.
    NotReady,
}

/// The checks of the readiness probe.
#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    /// The store.
    database: Check,
    /// The cache.
    cache: Check,
}

/// One dependency's check. The reason is only a word; the details are in the server log.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// The backend (`sqlite`, `postgres`, `memory`, `redis`).
    backend: String,
    /// `up` or `down`.
    status: Up,
    /// Why it is down: `error` or `timeout`; absent when up.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Reason>,
}

/// Whether a dependency answered.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Up {
    /// It answered.
    Up,
    /// It did not.
    Down,
}

/// Why a dependency is down.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// It answered with an error.
    Error,
    /// It did not answer within two seconds.
    Timeout,
}

fn check<E: std::fmt::Display, T>(backend: &str, outcome: Result<Result<(), E>, T>) -> Check {
    let reason = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::warn!(backend, error = %e, "readiness check failed");
            Some(Reason::Error)
        }
        Err(_) => {
            tracing::warn!(backend, "readiness check timed out");
            Some(Reason::Timeout)
        }
    };
    Check {
        backend: backend.to_owned(),
        status: if reason.is_none() { Up::Up } else { Up::Down },
        reason,
    }
}

/// Ready: the database and (when configured) Redis answer within two seconds.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    summary = "Readiness",
    description = "Whether the store and the cache each answer within two seconds. A 503 \
        names what is down; the reason is only `error` or `timeout` (the details are in the \
        server log, never in the answer).",
    responses(
        (status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "Not ready: `down` says what does not answer.", body = Readiness),
    )
)]
pub async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let db = tokio::time::timeout(PROBE_TIMEOUT, app.store.ping()).await;
    let cache = tokio::time::timeout(PROBE_TIMEOUT, app.cache.ping()).await;
    let checks = Checks {
        database: check(app.store.backend(), db),
        cache: check(app.cache.backend(), cache),
    };
    let mut down = Vec::new();
    if checks.database.reason.is_some() {
        down.push("database");
    }
    if checks.cache.reason.is_some() {
        down.push("cache");
    }
    let (code, status) = if down.is_empty() {
        (StatusCode::OK, Ready::Ready)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Ready::NotReady)
    };
    (
        code,
        Json(Readiness {
            status,
            down,
            checks,
            services: app.catalogue.services().len(),
        }),
    )
}
