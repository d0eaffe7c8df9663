//! Reference receiver for events pushed by the onewindow gateway (一网通办 部门事件接收示例).
//!
//! A department back end can copy this file: it shows everything a receiver must do with a
//! push delivery, in order.
//!
//! 1. Read the raw body and the `webhook-id`, `webhook-timestamp` and `webhook-signature`
//!    headers. Verify over the bytes exactly as received — never over re-serialised JSON.
//! 2. Verify with [`onewindow::exchange::signing::verify`]: the timestamp within 5 minutes
//!    of our clock (replay window), and some `v1a,` Ed25519 signature valid under some key
//!    of the gateway's JWKS. The JWKS is fetched once and cached (refreshed hourly); when no
//!    key verifies it is fetched again, once, to follow a key rotation. A bad signature or a
//!    stale timestamp is answered 401.
//! 3. Parse the body as a CloudEvents 1.0 JSON event; anything else is answered 400.
//! 4. De-duplicate by `webhook-id` (delivery is at least once, so duplicates happen): a
//!    repeat is answered 200 and not processed again. This example keeps the last 10,000
//!    ids in memory; a real back end records the id in the same database transaction as
//!    the event, and answers 2xx only after that commit ("durably received").
//! 5. Process the event — here, print one line: id, type, subject (the case number).
//!
//! Run it next to a gateway:
//!
//! ```text
//! cargo run --example dept_receiver -- \
//!     --listen 127.0.0.1:9000 \
//!     --jwks http://127.0.0.1:8080/.well-known/jwks.json
//! ```
//!
//! and register `http://127.0.0.1:9000/events` as the department's push endpoint. Both
//! options have those defaults. Its tests: `cargo test --example dept_receiver`.
//!
//! The guide is `docs/department-integration.md`.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use onewindow::exchange::signing::{self, VerifyError};
use serde::Deserialize;
use serde_json::Value;

/// Replay window: Standard Webhooks suggests 5 minutes.
const TOLERANCE_SECS: i64 = 300;
/// How many recent `webhook-id`s are remembered for de-duplication.
const DEDUP_CAPACITY: usize = 10_000;
/// Largest accepted body. The event carries the application with links to materials,
/// never the files themselves.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Command line: `--listen ADDR` and `--jwks URL`.
#[derive(Debug, PartialEq)]
struct Args {
    listen: SocketAddr,
    jwks: String,
}

const USAGE: &str = "usage: dept_receiver [--listen 127.0.0.1:9000] \
[--jwks http://127.0.0.1:8080/.well-known/jwks.json]";

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut listen = "127.0.0.1:9000".to_owned();
    let mut jwks = "http://127.0.0.1:8080/.well-known/jwks.json".to_owned();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let target = match name.as_str() {
            "--listen" => &mut listen,
            "--jwks" => &mut jwks,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
        };
        *target = match inline {
            Some(v) => v,
            None => it
                .next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))?,
        };
    }
    let listen = listen
        .parse()
        .map_err(|e| format!("--listen {listen:?}: {e}"))?;
    if !(jwks.starts_with("http://") || jwks.starts_with("https://")) {
        return Err(format!("--jwks {jwks:?} is not an http(s) URL"));
    }
    Ok(Args { listen, jwks })
}

/// The gateway's published keys, fetched on demand and cached.
struct JwksCache {
    client: reqwest::Client,
    url: String,
    /// Refetch after this long even if every signature verifies (a withdrawn key stops
    /// being trusted).
    max_age: Duration,
    /// Never refetch more often than this because of a bad signature, so forged requests
    /// cannot make us hammer the gateway.
    min_refetch: Duration,
    cached: tokio::sync::Mutex<Option<(Arc<Value>, Instant)>>,
    fetches: AtomicU64,
}

impl JwksCache {
    fn new(url: String, max_age: Duration, min_refetch: Duration) -> anyhow::Result<JwksCache> {
        // reqwest is built without a default TLS provider (ring is installed once here)
        onewindow::install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(JwksCache {
            client,
            url,
            max_age,
            min_refetch,
            cached: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        })
    }

    async fn fetch(&self) -> Result<Arc<Value>, String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| format!("fetching {}: {e}", self.url))?;
        if !resp.status().is_success() {
            return Err(format!("fetching {}: HTTP {}", self.url, resp.status()));
        }
        let jwks: Value = resp
            .json()
            .await
            .map_err(|e| format!("fetching {}: not JSON: {e}", self.url))?;
        // Refuse a document without a usable key instead of caching it.
        signing::jwks_keys(&jwks).map_err(|e| format!("fetching {}: {e}", self.url))?;
        Ok(Arc::new(jwks))
    }

    /// The cached JWKS (fetched if there is none or it is older than `max_age`), and
    /// whether it was fetched just now.
    async fn get(&self) -> Result<(Arc<Value>, bool), String> {
        let mut cached = self.cached.lock().await;
        if let Some((jwks, at)) = cached.as_ref()
            && at.elapsed() < self.max_age
        {
            return Ok((jwks.clone(), false));
        }
        match self.fetch().await {
            Ok(jwks) => {
                *cached = Some((jwks.clone(), Instant::now()));
                Ok((jwks, true))
            }
            // Keep using a stale copy while the gateway is unreachable.
            Err(e) => match cached.as_ref() {
                Some((jwks, _)) => {
                    eprintln!("warning: {e}; using the cached JWKS");
                    Ok((jwks.clone(), false))
                }
                None => Err(e),
            },
        }
    }

    /// Fetches again after a signature failed with the cached keys (the gateway may have
    /// rotated). `None` when the cache is too recent to justify a refetch.
    async fn refresh(&self) -> Result<Option<Arc<Value>>, String> {
        let mut cached = self.cached.lock().await;
        if let Some((_, at)) = cached.as_ref()
            && at.elapsed() < self.min_refetch
        {
            return Ok(None);
        }
        let jwks = self.fetch().await?;
        *cached = Some((jwks.clone(), Instant::now()));
        Ok(Some(jwks))
    }
}

/// The last `capacity` message ids seen.
struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl RecentIds {
    fn new(capacity: usize) -> RecentIds {
        RecentIds {
            set: HashSet::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Records `id`; `false` if it was already there.
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.set.remove(&oldest);
        }
        self.set.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }
}

/// A CloudEvents 1.0 event in the JSON (structured) format.
#[derive(Debug, Deserialize)]
struct CloudEvent {
    specversion: String,
    id: String,
    source: String,
    #[serde(rename = "type")]
    kind: String,
    /// The case number (办件编号).
    subject: Option<String>,
    time: Option<String>,
    /// `application/json`; the application itself is in `data`.
    #[allow(dead_code)] // a real back end stores these two
    datacontenttype: Option<String>,
    #[allow(dead_code)]
    #[serde(default)]
    data: Value,
}

impl CloudEvent {
    fn parse(body: &[u8]) -> Result<CloudEvent, String> {
        let ev: CloudEvent =
            serde_json::from_slice(body).map_err(|e| format!("not a CloudEvents event: {e}"))?;
        if ev.specversion != "1.0" {
            return Err(format!("specversion {:?} is not \"1.0\"", ev.specversion));
        }
        for (name, value) in [("id", &ev.id), ("source", &ev.source), ("type", &ev.kind)] {
            if value.is_empty() {
                return Err(format!("{name} is empty"));
            }
        }
        if let Some(t) = &ev.time {
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| format!("time {t:?} is not RFC 3339: {e}"))?;
        }
        Ok(ev)
    }
}

/// The receiver's state.
struct Receiver {
    jwks: JwksCache,
    seen: Mutex<RecentIds>,
    processed: AtomicU64,
}

type Reply = (StatusCode, String);

fn reply(status: StatusCode, text: impl Into<String>) -> Reply {
    (status, text.into())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Receiver {
    fn new(jwks: JwksCache) -> Receiver {
        Receiver {
            jwks,
            seen: Mutex::new(RecentIds::new(DEDUP_CAPACITY)),
            processed: AtomicU64::new(0),
        }
    }

    /// Steps 1–2: the headers and the signature.
    async fn authenticate(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Reply> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        let id = header(signing::HEADER_ID);
        let ts = header(signing::HEADER_TIMESTAMP);
        let sig = header(signing::HEADER_SIGNATURE);
        let unavailable = |e: String| {
            eprintln!("error: cannot verify: {e}");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot fetch the signing keys",
            )
        };
        let check =
            |jwks: &Value| signing::verify(jwks, id, ts, sig, body, unix_now(), TOLERANCE_SECS);
        let (jwks, fresh) = self.jwks.get().await.map_err(unavailable)?;
        let mut outcome = check(&jwks);
        if outcome == Err(VerifyError::NoValidSignature) && !fresh {
            // Perhaps the gateway rotated its key since we fetched: look once more.
            if let Some(newer) = self.jwks.refresh().await.map_err(unavailable)? {
                outcome = check(&newer);
            }
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(VerifyError::BadJwks(e)) => Err(unavailable(e)),
            Err(e) => Err(reply(StatusCode::UNAUTHORIZED, e.to_string())),
        }
    }

    /// The whole delivery.
    async fn receive(&self, headers: &HeaderMap, body: &[u8]) -> Reply {
        if let Err(r) = self.authenticate(headers, body).await {
            return r;
        }
        let ev = match CloudEvent::parse(body) {
            Ok(ev) => ev,
            Err(e) => return reply(StatusCode::BAD_REQUEST, e),
        };
        let id = headers
            .get(signing::HEADER_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if ev.id != id {
            return reply(
                StatusCode::BAD_REQUEST,
                "the event id differs from webhook-id",
            );
        }
        let first_time = match self.seen.lock() {
            Ok(mut seen) => seen.insert(id),
            Err(poisoned) => poisoned.into_inner().insert(id),
        };
        if !first_time {
            return reply(StatusCode::OK, "duplicate; already received");
        }
        self.process(&ev);
        reply(StatusCode::OK, "received")
    }

    /// Step 5. A real back end stores the event (and the id) durably here.
    fn process(&self, ev: &CloudEvent) {
        self.processed.fetch_add(1, Ordering::Relaxed);
        println!(
            "accepted id={} type={} subject={}",
            ev.id,
            ev.kind,
            ev.subject.as_deref().unwrap_or("-")
        );
    }
}

async fn post_event(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    receiver.receive(&headers, &body).await
}

fn router(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route("/events", post(post_event))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(receiver)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let jwks = JwksCache::new(
        args.jwks.clone(),
        Duration::from_secs(3600),
        Duration::from_secs(30),
    )?;
    let receiver = Arc::new(Receiver::new(jwks));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!(
        "dept_receiver: POST http://{}/events, keys from {}",
        listener.local_addr()?,
        args.jwks
    );
    axum::serve(listener, router(receiver))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use chrono::Utc;
    use onewindow::exchange::signing::{KeyRing, SigningKey};
    use tower::ServiceExt;

    /// A stand-in for the gateway's `/.well-known/jwks.json`, whose keys a test can change.
    async fn jwks_server(jwks: Arc<Mutex<Value>>) -> String {
        let app = Router::new().route(
            "/.well-known/jwks.json",
            get(move || {
                let jwks = jwks.clone();
                async move {
                    let v = jwks.lock().map(|v| v.clone()).unwrap_or_default();
                    axum::Json(v)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/.well-known/jwks.json")
    }

    struct Harness {
        ring: KeyRing,
        published: Arc<Mutex<Value>>,
        receiver: Arc<Receiver>,
    }

    async fn harness() -> Harness {
        let ring = KeyRing::new(vec![SigningKey::generate(Utc::now())]).expect("ring");
        let published = Arc::new(Mutex::new(ring.jwks(Utc::now())));
        let url = jwks_server(published.clone()).await;
        let cache = JwksCache::new(url, Duration::from_secs(3600), Duration::ZERO).expect("cache");
        Harness {
            ring,
            published,
            receiver: Arc::new(Receiver::new(cache)),
        }
    }

    fn event(id: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "specversion": "1.0",
            "id": id,
            "source": "https://onewindow.example",
            "type": "cn.gov.onewindow.case.submitted.v1",
            "subject": "HLBE20250301-7KQ2M9XD",
            "time": "2025-03-01T08:00:00Z",
            "datacontenttype": "application/json",
            "data": { "case_no": "HLBE20250301-7KQ2M9XD" },
        }))
        .expect("json")
    }

    fn request(headers: &[(&'static str, String)], body: Vec<u8>) -> Request<Body> {
        let mut req =
            Request::post("/events").header("content-type", "application/cloudevents+json");
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        req.body(Body::from(body)).expect("request")
    }

    async fn deliver(h: &Harness, req: Request<Body>) -> StatusCode {
        router(h.receiver.clone())
            .oneshot(req)
            .await
            .expect("response")
            .status()
    }

    fn processed(h: &Harness) -> u64 {
        h.receiver.processed.load(Ordering::Relaxed)
    }

    #[tokio::test]
    async fn a_signed_event_is_accepted() {
        let h = harness().await;
        let body = event("evt-1");
        let headers = h.ring.sign("evt-1", unix_now(), &body);
        assert_eq!(deliver(&h, request(&headers, body)).await, StatusCode::OK);
        assert_eq!(processed(&h), 1);
    }

    #[tokio::test]
    async fn a_tampered_body_is_refused() {
        let h = harness().await;
        let body = event("evt-1");
        let headers = h.ring.sign("evt-1", unix_now(), &body);
        let tampered = String::from_utf8(body)
            .expect("utf8")
            .replace("7KQ2M9XD", "7KQ2M9XE")
            .into_bytes();
        assert_eq!(
            deliver(&h, request(&headers, tampered)).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(processed(&h), 0);
    }

    #[tokio::test]
    async fn a_replayed_id_is_accepted_once() {
        let h = harness().await;
        let body = event("evt-1");
        let headers = h.ring.sign("evt-1", unix_now(), &body);
        assert_eq!(
            deliver(&h, request(&headers, body.clone())).await,
            StatusCode::OK
        );
        // The same delivery again, and a retry re-signed a little later: both 200, neither
        // processed a second time.
        assert_eq!(
            deliver(&h, request(&headers, body.clone())).await,
            StatusCode::OK
        );
        let retry = h.ring.sign("evt-1", unix_now() + 5, &body);
        assert_eq!(deliver(&h, request(&retry, body)).await, StatusCode::OK);
        assert_eq!(processed(&h), 1);
    }

    #[tokio::test]
    async fn stale_timestamps_and_missing_headers_are_refused() {
        let h = harness().await;
        let body = event("evt-1");
        let old = h
            .ring
            .sign("evt-1", unix_now() - TOLERANCE_SECS - 60, &body);
        assert_eq!(
            deliver(&h, request(&old, body.clone())).await,
            StatusCode::UNAUTHORIZED
        );
        let good = h.ring.sign("evt-1", unix_now(), &body);
        let without_signature: Vec<_> = good
            .iter()
            .filter(|(n, _)| *n != signing::HEADER_SIGNATURE)
            .cloned()
            .collect();
        assert_eq!(
            deliver(&h, request(&without_signature, body)).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(processed(&h), 0);
    }

    #[tokio::test]
    async fn a_signed_body_that_is_not_a_cloudevent_is_a_bad_request() {
        let h = harness().await;
        for body in [
            br#"{"hello":"world"}"#.to_vec(),
            br#"{"specversion":"0.3","id":"evt-1","source":"s","type":"t"}"#.to_vec(),
            b"not json".to_vec(),
        ] {
            let headers = h.ring.sign("evt-1", unix_now(), &body);
            assert_eq!(
                deliver(&h, request(&headers, body)).await,
                StatusCode::BAD_REQUEST
            );
        }
        // The id in the body must be the webhook-id.
        let body = event("evt-2");
        let headers = h.ring.sign("evt-1", unix_now(), &body);
        assert_eq!(
            deliver(&h, request(&headers, body)).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(processed(&h), 0);
    }

    #[tokio::test]
    async fn a_key_rotation_is_followed_by_one_refetch() {
        let mut h = harness().await;
        let body = event("evt-1");
        let headers = h.ring.sign("evt-1", unix_now(), &body);
        assert_eq!(deliver(&h, request(&headers, body)).await, StatusCode::OK);
        assert_eq!(h.receiver.jwks.fetches.load(Ordering::Relaxed), 1);

        // The gateway rotates with no grace: only the new key is published and signs.
        let now = Utc::now();
        h.ring.rotate(now, chrono::Duration::zero());
        *h.published.lock().expect("lock") = h.ring.jwks(now);
        let body = event("evt-2");
        let headers = h.ring.sign("evt-2", now.timestamp(), &body);
        assert!(!headers[2].1.contains(' '), "one signature: {headers:?}");
        assert_eq!(deliver(&h, request(&headers, body)).await, StatusCode::OK);
        assert_eq!(h.receiver.jwks.fetches.load(Ordering::Relaxed), 2);

        // A forged signature costs one refetch and is still refused.
        let stranger = KeyRing::new(vec![SigningKey::generate(now)]).expect("ring");
        let body = event("evt-3");
        let headers = stranger.sign("evt-3", unix_now(), &body);
        assert_eq!(
            deliver(&h, request(&headers, body)).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(h.receiver.jwks.fetches.load(Ordering::Relaxed), 3);
        assert_eq!(processed(&h), 2);
    }

    #[test]
    fn recent_ids_forget_the_oldest_beyond_capacity() {
        let mut ids = RecentIds::new(2);
        assert!(ids.insert("a"));
        assert!(ids.insert("b"));
        assert!(!ids.insert("a"));
        assert!(ids.insert("c"));
        assert!(ids.insert("a"), "a was forgotten when c came");
        assert!(!ids.insert("c"));
    }

    #[test]
    fn arguments_are_parsed() {
        let args = |v: &[&str]| parse_args(v.iter().map(|s| (*s).to_owned()));
        let defaults = args(&[]).expect("defaults");
        assert_eq!(defaults.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(defaults.jwks, "http://127.0.0.1:8080/.well-known/jwks.json");
        let a = args(&[
            "--listen",
            "0.0.0.0:9100",
            "--jwks=https://gw.example/.well-known/jwks.json",
        ])
        .expect("args");
        assert_eq!(a.listen.to_string(), "0.0.0.0:9100");
        assert_eq!(a.jwks, "https://gw.example/.well-known/jwks.json");
        assert!(args(&["--listen"]).is_err());
        assert!(args(&["--listen", "nowhere"]).is_err());
        assert!(args(&["--jwks", "ftp://x"]).is_err());
        assert!(args(&["--verbose"]).is_err());
    }
}
