//! A simulated regional platform for `onewindow demo` (模拟自治区平台). Never started by
//! `serve`.
//!
//! An axum receiver on `127.0.0.1:0` (`POST /region/reports`), configured as the
//! gateway's `region_push_url` before the gateway is built (unless the demo's settings
//! name a region of their own). It takes reports as a real regional platform would
//! through the push contract: every report's Standard Webhooks signature is verified
//! against the gateway's `/.well-known/jwks.json` (5-minute tolerance), a `webhook-id`
//! seen before is answered 200 and not counted again, and case reports and catalogue
//! changes are counted. The operator's page `/ops/region` shows the counts
//! ([`figures`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use serde_json::{Value, json};

use crate::exchange::signing;

/// What the simulated platform has received.
#[derive(Debug, Default)]
struct Figures {
    case_reports: u64,
    catalogue_changes: u64,
    duplicates: u64,
    refused: u64,
    seen: HashSet<String>,
    cases: HashSet<String>,
}

struct Sim {
    jwks_url: Mutex<String>,
    jwks: Mutex<Option<Value>>,
    figures: Mutex<Figures>,
    http: reqwest012::Client,
}

static SIM: OnceLock<Arc<Sim>> = OnceLock::new();

/// The simulated platform's counts, when it runs in this process (the demo).
pub fn figures() -> Option<Value> {
    let sim = SIM.get()?;
    let f = sim.figures.lock().ok()?;
    Some(json!({
        "case_reports": f.case_reports,
        "catalogue_changes": f.catalogue_changes,
        "cases": f.cases.len(),
        "duplicates": f.duplicates,
        "refused": f.refused,
    }))
}

/// A bound, not yet serving, simulated platform.
pub struct Bound {
    listener: tokio::net::TcpListener,
    /// Its push URL.
    pub url: String,
}

/// Binds the simulated platform's port (before the gateway is built, so its URL can be
/// configured).
pub async fn bind() -> anyhow::Result<Bound> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind the simulated regional platform")?;
    let url = format!("http://{}/region/reports", listener.local_addr()?);
    Ok(Bound { listener, url })
}

/// In the demo, unless its settings name a regional platform of their own: binds the
/// simulated platform and configures the gateway to report to it.
pub async fn configure(settings: &mut crate::config::Settings) -> anyhow::Result<Option<Bound>> {
    if settings.region.configured() {
        return Ok(None);
    }
    let bound = bind().await?;
    settings.region.region_enabled = true;
    settings.region.region_push_url = bound.url.clone();
    Ok(Some(bound))
}

/// Serves the simulated platform, trusting the keys the gateway at `gateway` publishes.
pub fn serve(bound: Bound, gateway: &str) {
    let sim = SIM
        .get_or_init(|| {
            Arc::new(Sim {
                jwks_url: Mutex::new(String::new()),
                jwks: Mutex::new(None),
                figures: Mutex::new(Figures::default()),
                http: reqwest012::Client::new(),
            })
        })
        .clone();
    if let Ok(mut u) = sim.jwks_url.lock() {
        *u = format!("{}/.well-known/jwks.json", gateway.trim_end_matches('/'));
    }
    let app = Router::new()
        .route("/region/reports", post(receive))
        .with_state(sim);
    tokio::spawn(async move {
        let _ = axum::serve(bound.listener, app).await;
    });
}

impl Sim {
    async fn keys(&self, fresh: bool) -> Option<Value> {
        if !fresh && let Some(k) = self.jwks.lock().ok()?.clone() {
            return Some(k);
        }
        let url = self.jwks_url.lock().ok()?.clone();
        let k: Value = self.http.get(&url).send().await.ok()?.json().await.ok()?;
        *self.jwks.lock().ok()? = Some(k.clone());
        Some(k)
    }

    fn count(&self, f: impl FnOnce(&mut Figures)) {
        if let Ok(mut g) = self.figures.lock() {
            f(&mut g);
        }
    }
}

/// `POST /region/reports`: verify, dedupe, count.
async fn receive(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (id, ts, sig) = (
        h(signing::HEADER_ID),
        h(signing::HEADER_TIMESTAMP),
        h(signing::HEADER_SIGNATURE),
    );
    let now = Utc::now().timestamp();
    let verify = |jwks: &Value| {
        signing::verify(
            jwks,
            id,
            ts,
            sig,
            &body,
            now,
            signing::DEFAULT_TOLERANCE_SECS,
        )
        .is_ok()
    };
    let mut ok = false;
    for fresh in [false, true] {
        match sim.keys(fresh).await {
            Some(k) if verify(&k) => {
                ok = true;
                break;
            }
            Some(_) => {}
            None => return (StatusCode::SERVICE_UNAVAILABLE, "cannot fetch the keys"),
        }
    }
    if !ok {
        sim.count(|f| f.refused += 1);
        tracing::warn!("simulated regional platform refused a report: bad signature");
        return (StatusCode::UNAUTHORIZED, "signature refused");
    }
    let ev: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let kind = ev["type"].as_str().unwrap_or("").to_owned();
    let subject = ev["subject"].as_str().unwrap_or("").to_owned();
    let mut dup = false;
    sim.count(|f| {
        if !f.seen.insert(id.to_owned()) {
            f.duplicates += 1;
            dup = true;
        } else if kind == crate::region::CATALOGUE_CHANGE_TYPE {
            f.catalogue_changes += 1;
        } else {
            f.case_reports += 1;
            f.cases.insert(subject);
        }
    });
    if dup {
        (StatusCode::OK, "duplicate; already received")
    } else {
        (StatusCode::OK, "received")
    }
}
