//! A department back-end for tests: receives pushed events, verifies every signature
//! against the gateway's published keys, and can be made to fail.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use onewindow::exchange::signing;
use serde_json::Value;

/// One received (and verified) event.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub event: Value,
}

#[derive(Default)]
struct Inner {
    /// Answer this status instead of 200 (and do not record), when set.
    down_with: Option<u16>,
    /// Record, but answer this status (a department that stored it yet failed to say so).
    flaky_with: Option<u16>,
    received: Vec<Received>,
    bad_signatures: usize,
}

/// The running department.
#[derive(Clone)]
pub struct DeptServer {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    jwks_url: Arc<Mutex<String>>,
}

impl DeptServer {
    pub async fn start() -> DeptServer {
        DeptServer::start_at("127.0.0.1:0").await
    }

    /// On a given address (a test reserves a port, lets the gateway fail to connect to
    /// it for a while, then starts the receiver there).
    pub async fn start_at(addr: &str) -> DeptServer {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = DeptServer {
            url: format!("http://{addr}/events"),
            inner: Arc::default(),
            jwks_url: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/events", post(receive))
            .with_state(server.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        server
    }

    /// Where to fetch the gateway's keys.
    pub fn trust(&self, gateway: &str) {
        *self.jwks_url.lock().expect("lock") = format!("{gateway}/.well-known/jwks.json");
    }

    pub fn go_down(&self, status: u16) {
        self.inner.lock().expect("lock").down_with = Some(status);
    }

    pub fn be_flaky(&self, status: u16) {
        let mut i = self.inner.lock().expect("lock");
        i.down_with = None;
        i.flaky_with = Some(status);
    }

    pub fn come_back(&self) {
        let mut i = self.inner.lock().expect("lock");
        i.down_with = None;
        i.flaky_with = None;
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().expect("lock").received.clone()
    }

    pub fn bad_signatures(&self) -> usize {
        self.inner.lock().expect("lock").bad_signatures
    }
}

async fn receive(State(s): State<DeptServer>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if let Some(code) = s.inner.lock().expect("lock").down_with {
        return StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    }
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let jwks_url = s.jwks_url.lock().expect("lock").clone();
    let jwks: Value = match reqwest::get(&jwks_url).await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let now = chrono::Utc::now().timestamp();
    if signing::verify(
        &jwks,
        &h("webhook-id"),
        &h("webhook-timestamp"),
        &h("webhook-signature"),
        &body,
        now,
        300,
    )
    .is_err()
        || h("content-type") != "application/cloudevents+json"
    {
        s.inner.lock().expect("lock").bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut i = s.inner.lock().expect("lock");
    i.received.push(Received {
        id: h("webhook-id"),
        event,
    });
    match i.flaky_with {
        Some(code) => StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        None => StatusCode::OK,
    }
}
