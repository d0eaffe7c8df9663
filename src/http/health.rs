//! Probes: `/healthz` says the process is alive; `/readyz` says whether it can serve,
//! naming each dependency that does not answer.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::AppState;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Alive: answers as long as the process runs its event loop.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

/// Ready: the database and (when configured) Redis answer within two seconds.
pub async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    let db = tokio::time::timeout(PROBE_TIMEOUT, app.store.ping()).await;
    let cache = tokio::time::timeout(PROBE_TIMEOUT, app.cache.ping()).await;

    let check = |backend: &str, outcome: Result<Result<(), String>, _>| match outcome {
        Ok(Ok(())) => (true, json!({ "backend": backend, "status": "up" })),
        Ok(Err(e)) => {
            tracing::warn!(backend, error = %e, "readiness check failed");
            (
                false,
                json!({ "backend": backend, "status": "down", "reason": "error" }),
            )
        }
        Err(_) => {
            tracing::warn!(backend, "readiness check timed out");
            (
                false,
                json!({ "backend": backend, "status": "down", "reason": "timeout" }),
            )
        }
    };
    let (db_up, db_json) = check(
        app.store.backend(),
        db.map(|r| r.map_err(|e| e.to_string())),
    );
    let (cache_up, cache_json) = check(
        app.cache.backend(),
        cache.map(|r| r.map_err(|e| e.to_string())),
    );

    let mut down = Vec::new();
    if !db_up {
        down.push("database");
    }
    if !cache_up {
        down.push("cache");
    }
    let status = if down.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if down.is_empty() { "ready" } else { "not_ready" },
            "down": down,
            "checks": { "database": db_json, "cache": cache_json },
            "services": app.catalogue.services().len(),
        })),
    )
}
