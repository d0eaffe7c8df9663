//! Simulated department back-ends for `onewindow demo` (演示部门), so that a newcomer
//! sees a case move on its own. Never started by `serve`.
//!
//! Two departments take part in the exchange exactly as a real back end does, through
//! the published contract (`docs/department-integration.md`) over HTTP to the gateway:
//!
//! - **人力资源和社会保障局** (`11150700MB15300034`) receives events by **push**: an axum
//!   receiver on `127.0.0.1:0` (`POST /events`), registered as the department's endpoint.
//!   Every delivery is verified with [`signing::verify`] against the gateway's
//!   `/.well-known/jwks.json` (5-minute tolerance), de-duplicated by `webhook-id`, answered
//!   200 at once and processed in a background task.
//! - **市场监督管理局** (`11150700MB1530001X`) **pulls**: it leases
//!   `GET /api/dept/v1/inbox?limit=10` every [`SimConfig::poll_every`] and acknowledges
//!   each event once it has been processed.
//!
//! Processing is the same for both. For a `submitted` or `corrected` event the department
//! reads the case (`GET /api/dept/v1/cases/{case_no}`) and, a [`SimConfig::step_delay`]
//! before each step, takes the next one its `status` and `allowed_actions` permit:
//! `accept` (only while `submitted`), `start_review`, then `conclude` with `approved`,
//! through `POST …/transitions` with an `Idempotency-Key` of `sim-{event id}-{action}`.
//! A case a clerk already accepted simply continues; a case waiting for a correction is
//! left alone until the `corrected` event; a refused step (409) is logged and the case
//! read again. In a joint case (联办件) of another responsible department, the simulated
//! department only concludes its own part, once a `review_started` event shows the
//! review under way. Each step is logged as one line with the case number and the action,
//! never personal data.
//!
//! The only shortcut is the departments' API tokens (scopes `cases:read cases:write
//! inbox`), written straight into the store since no operator is at hand; earlier demo
//! tokens of the same departments are revoked then.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::app::AppState;
use crate::auth::tokens;
use crate::domain::case::Action;
use crate::exchange::signing::{self, VerifyError};
use crate::store::ApiToken;
use crate::usecases::event_type;

/// 人力资源和社会保障局: receives by push.
pub const PUSH_DEPARTMENT: &str = "11150700MB15300034";
/// 市场监督管理局: pulls its inbox.
pub const PULL_DEPARTMENT: &str = "11150700MB1530001X";
/// The name of the simulated departments' tokens (earlier ones are revoked at start).
pub const TOKEN_NAME: &str = "演示部门模拟器（onewindow demo）";
/// The note of the simulated conclusion.
pub const CONCLUSION_NOTE: &str = "材料齐全，准予办理（演示部门自动办结）";

/// Most steps taken for one event (three when nothing interferes; refusals re-read).
const MAX_STEPS: usize = 6;
/// Recent event ids remembered for de-duplication.
const DEDUP_CAPACITY: usize = 10_000;
/// Largest delivery accepted.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Refetch the JWKS at least this often.
const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// After a signature failure, refetch the JWKS at most this often.
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);

/// How fast the simulated departments work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimConfig {
    /// Wait before each step (accept, start review, conclude).
    pub step_delay: Duration,
    /// How often the pull department asks its inbox.
    pub poll_every: Duration,
}

impl Default for SimConfig {
    /// About 3 s a step and a poll every 2 s: a case concludes about 10 s after it is
    /// submitted.
    fn default() -> Self {
        SimConfig {
            step_delay: Duration::from_secs(3),
            poll_every: Duration::from_secs(2),
        }
    }
}

/// The running simulated departments. Dropping it (or [`SimHandle::stop`]) stops them.
pub struct SimHandle {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    push_endpoint: Option<String>,
}

impl SimHandle {
    /// The push department's receiver (`http://127.0.0.1:…/events`), when it runs.
    pub fn push_endpoint(&self) -> Option<&str> {
        self.push_endpoint.as_deref()
    }

    /// Stops the receiver, the poller and every step in progress.
    pub fn stop(&self) {
        self.stop.cancel();
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts both simulated departments against the gateway at `state.settings.server.public_url`.
/// The gateway may not be serving yet: requests wait on its bound listener. Push needs
/// `exchange_allow_http` (the receiver is plain http on loopback). A department missing
/// from the catalogue is skipped with a warning.
pub async fn start(state: AppState, config: SimConfig) -> anyhow::Result<SimHandle> {
    let stop = CancellationToken::new();
    let mut handle = SimHandle {
        stop: stop.clone(),
        tasks: Vec::new(),
        push_endpoint: None,
    };
    let http = reqwest012::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .user_agent(concat!(
            "onewindow-demo-department/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .context("cannot build the simulated departments' HTTP client")?;
    let base = state.settings.server.public_url.clone();

    if let Some(dept) = Dept::new(&state, PUSH_DEPARTMENT, &http, &base, config, &stop).await? {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind the simulated push department's receiver")?;
        let endpoint = format!("http://{}/events", listener.local_addr()?);
        crate::http::dept::set_delivery(&state, PUSH_DEPARTMENT, "push", Some(endpoint.clone()))
            .await
            .context("cannot register the simulated push endpoint (needs exchange_allow_http)")?;
        let receiver = Arc::new(Receiver {
            jwks: JwksCache {
                url: base.join(".well-known/jwks.json")?,
                cached: tokio::sync::Mutex::new(None),
            },
            dept,
            seen: Mutex::new(RecentIds::new(DEDUP_CAPACITY)),
        });
        let data_api = format!("http://{}", listener.local_addr()?);
        state
            .store
            .set_data_api(PUSH_DEPARTMENT, Some(&data_api))
            .await
            .context("cannot register the simulated department's data API")?;
        let app = Router::new()
            .route("/events", post(receive))
            .route("/resources/social_insurance/query", post(social_insurance))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(receiver.clone());
        let graceful = stop.clone();
        handle.tasks.push(tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { graceful.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "the simulated push department's receiver stopped");
            }
        }));
        tracing::info!(
            department = %receiver.dept.name,
            endpoint = %endpoint,
            "demo department receives events by signed push"
        );
        handle.push_endpoint = Some(endpoint);
    }

    if let Some(dept) = Dept::new(&state, PULL_DEPARTMENT, &http, &base, config, &stop).await? {
        crate::http::dept::set_delivery(&state, PULL_DEPARTMENT, "pull", None)
            .await
            .context("cannot set the simulated pull department to pull")?;
        tracing::info!(
            department = %dept.name,
            every_ms = config.poll_every.as_millis() as u64,
            "demo department pulls its inbox"
        );
        let inbox = Arc::new(Inbox {
            dept,
            in_flight: Mutex::new(HashSet::new()),
            done: Mutex::new(RecentIds::new(DEDUP_CAPACITY)),
        });
        handle.tasks.push(tokio::spawn(poll_loop(inbox)));
    }
    Ok(handle)
}

/// A CloudEvents 1.0 event, as much as the simulation needs.
#[derive(Debug, Clone, Deserialize)]
struct Event {
    specversion: String,
    id: String,
    #[serde(rename = "type")]
    kind: String,
    /// The case number.
    subject: Option<String>,
}

/// One simulated department: its token, and how it talks to the gateway.
struct Dept {
    uscc: &'static str,
    /// Short name, for logs.
    name: String,
    token: String,
    http: reqwest012::Client,
    base: Url,
    config: SimConfig,
    stop: CancellationToken,
}

/// The next step the simulated department takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Accept,
    StartReview,
    Conclude,
}

impl Step {
    fn action(self) -> Action {
        match self {
            Step::Accept => Action::Accept,
            Step::StartReview => Action::StartReview,
            Step::Conclude => Action::Conclude,
        }
    }

    fn body(self) -> Value {
        match self {
            Step::Conclude => json!({
                "action": "conclude",
                "result": "approved",
                "note": CONCLUSION_NOTE,
            }),
            other => json!({ "action": other.action().code() }),
        }
    }
}

/// What the case's `status` and `allowed_actions` let the department do next, if
/// anything. Only the responsible department accepts and starts the review; a further
/// department of a joint case (联办件) only concludes its own part once review is under way.
fn next_step(status: &str, allowed: &[&str], responsible: bool) -> Option<Step> {
    let step = match status {
        "submitted" if responsible => Step::Accept,
        "accepted" if responsible => Step::StartReview,
        "under_review" => Step::Conclude,
        _ => return None,
    };
    allowed.contains(&step.action().code()).then_some(step)
}

/// Whether a case number is safe to put in a path (the gateway's are `[A-Z0-9-]`).
fn plain_case_no(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// How a transition went.
enum Stepped {
    /// Done (or an earlier identical request's answer).
    Done,
    /// Refused as not possible now (409): read the case again.
    Refused,
    /// Refused for good (another 4xx): stop.
    Stop,
}

impl Dept {
    /// A token for the department, or `None` when the catalogue lacks it.
    async fn new(
        state: &AppState,
        uscc: &'static str,
        http: &reqwest012::Client,
        base: &Url,
        config: SimConfig,
        stop: &CancellationToken,
    ) -> anyhow::Result<Option<Arc<Dept>>> {
        let Some(d) = state.catalogue.department(uscc) else {
            tracing::warn!(
                department = uscc,
                "the catalogue has no such department: its simulation is not started"
            );
            return Ok(None);
        };
        let token = issue_token(state, uscc).await?;
        Ok(Some(Arc::new(Dept {
            uscc,
            name: d.short_name.clone(),
            token,
            http: http.clone(),
            base: base.clone(),
            config,
            stop: stop.clone(),
        })))
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        Ok(self.base.join(path)?)
    }

    /// Runs `work` in the background until it ends or the simulation stops.
    fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let stop = self.stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = work => {}
            }
        });
    }

    /// Processes one event. `Err` is a transient failure (the gateway unreachable or
    /// answering 5xx); refusals are logged and end in `Ok`.
    async fn process(&self, ev: &Event) -> anyhow::Result<()> {
        let review_started = ev.kind == event_type(Action::StartReview);
        if ev.kind != event_type(Action::Submit)
            && ev.kind != event_type(Action::SupplyCorrection)
            && !review_started
        {
            return Ok(()); // the department's own steps, and the rest: nothing to do
        }
        let Some(case_no) = ev.subject.as_deref().filter(|s| plain_case_no(s)) else {
            tracing::warn!(
                department = %self.name,
                event = %ev.id,
                "event without a usable case number; ignored",
            );
            return Ok(());
        };
        let mut refused = None;
        for _ in 0..MAX_STEPS {
            tokio::time::sleep(self.config.step_delay).await;
            let Some(case) = self.read_case(case_no).await? else {
                tracing::warn!(
                    department = %self.name,
                    case_no,
                    "the case is not visible to the department; nothing to do",
                );
                return Ok(());
            };
            let responsible = case["department"]["uscc"].as_str() == Some(self.uscc);
            if review_started && responsible {
                // Its own review (or its staff's): the submitted event drives that case.
                return Ok(());
            }
            let status = case["status"]["code"].as_str().unwrap_or("");
            let allowed: Vec<&str> = case["allowed_actions"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let part_done = case["joint_parts"][self.uscc].is_object();
            let step = next_step(status, &allowed, responsible)
                .filter(|s| !part_done && refused != Some(*s));
            let Some(step) = step else {
                tracing::info!(
                    department = %self.name,
                    case_no,
                    status,
                    "demo department {}: case {case_no} is {status}, nothing for it to do now",
                    self.name
                );
                return Ok(());
            };
            match self.transition(case_no, &ev.id, step).await? {
                Stepped::Done if step == Step::Conclude => return Ok(()),
                Stepped::Done => {}
                Stepped::Refused => refused = Some(step),
                Stepped::Stop => return Ok(()),
            }
        }
        Ok(())
    }

    /// `GET /api/dept/v1/cases/{case_no}`; `None` on 404.
    async fn read_case(&self, case_no: &str) -> anyhow::Result<Option<Value>> {
        let resp = self
            .http
            .get(self.url(&format!("api/dept/v1/cases/{case_no}"))?)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("reading case {case_no}"))?;
        match resp.status().as_u16() {
            200 => Ok(Some(resp.json().await.context("the case is not JSON")?)),
            404 => Ok(None),
            s => anyhow::bail!("reading case {case_no}: HTTP {s}"),
        }
    }

    /// `POST /api/dept/v1/cases/{case_no}/transitions` with an `Idempotency-Key`.
    async fn transition(
        &self,
        case_no: &str,
        event_id: &str,
        step: Step,
    ) -> anyhow::Result<Stepped> {
        let action = step.action();
        let resp = self
            .http
            .post(self.url(&format!("api/dept/v1/cases/{case_no}/transitions"))?)
            .bearer_auth(&self.token)
            .header(
                "idempotency-key",
                format!("sim-{event_id}-{}", action.code()),
            )
            .json(&step.body())
            .send()
            .await
            .with_context(|| format!("{} on case {case_no}", action.code()))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            let answer: Value = resp.json().await.unwrap_or_default();
            let now = answer["status"].as_str().unwrap_or("?");
            tracing::info!(
                department = %self.name,
                case_no,
                action = action.code(),
                "demo department {}: case {case_no} {}（{}）→ {now}",
                self.name,
                action.labels().0,
                action.code()
            );
            return Ok(Stepped::Done);
        }
        if status >= 500 || status == 429 {
            anyhow::bail!("{} on case {case_no}: HTTP {status}", action.code());
        }
        let problem: Value = resp.json().await.unwrap_or_default();
        let detail = problem["detail"].as_str().unwrap_or("");
        if status == 409 {
            tracing::info!(
                department = %self.name,
                case_no,
                action = action.code(),
                "demo department {}: case {case_no} {} refused (409), skipped: {detail}",
                self.name,
                action.code()
            );
            Ok(Stepped::Refused)
        } else {
            tracing::warn!(
                department = %self.name,
                case_no,
                action = action.code(),
                status,
                "demo department {}: case {case_no} {} refused (HTTP {status}): {detail}",
                self.name,
                action.code()
            );
            Ok(Stepped::Stop)
        }
    }
}

/// Creates the department's token (after revoking earlier demo tokens of it) and returns
/// the secret.
async fn issue_token(state: &AppState, uscc: &str) -> anyhow::Result<String> {
    let now = Utc::now();
    for t in state.store.api_tokens().await? {
        if t.department == uscc && t.name == TOKEN_NAME && t.is_active(now) {
            state.store.revoke_api_token(t.id, now).await?;
        }
    }
    let secret = tokens::generate();
    let token = ApiToken {
        id: uuid::Uuid::now_v7(),
        department: uscc.to_owned(),
        name: TOKEN_NAME.to_owned(),
        scopes: ["cases:read", "cases:write", "inbox"]
            .map(str::to_owned)
            .to_vec(),
        created_at: now,
        expires_at: None,
        revoked_at: None,
    };
    state
        .store
        .insert_api_token(&token, &tokens::hash(&secret))
        .await
        .with_context(|| format!("cannot create the demo token of {uscc}"))?;
    Ok(secret)
}

/// The last `capacity` ids seen.
struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl RecentIds {
    fn new(capacity: usize) -> RecentIds {
        RecentIds {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---- push ----

/// The gateway's published keys, fetched on demand and cached.
struct JwksCache {
    url: Url,
    cached: tokio::sync::Mutex<Option<(Arc<Value>, Instant)>>,
}

impl JwksCache {
    async fn fetch(&self, http: &reqwest012::Client) -> Result<Arc<Value>, String> {
        let resp = http
            .get(self.url.clone())
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
        signing::jwks_keys(&jwks).map_err(|e| format!("fetching {}: {e}", self.url))?;
        Ok(Arc::new(jwks))
    }

    /// The cached keys (fetched when missing or old), and whether they were just fetched.
    async fn get(&self, http: &reqwest012::Client) -> Result<(Arc<Value>, bool), String> {
        let mut cached = self.cached.lock().await;
        if let Some((jwks, at)) = cached.as_ref()
            && at.elapsed() < JWKS_MAX_AGE
        {
            return Ok((jwks.clone(), false));
        }
        match self.fetch(http).await {
            Ok(jwks) => {
                *cached = Some((jwks.clone(), Instant::now()));
                Ok((jwks, true))
            }
            Err(e) => match cached.as_ref() {
                Some((jwks, _)) => Ok((jwks.clone(), false)),
                None => Err(e),
            },
        }
    }

    /// Fetches again after a signature failed (the gateway may have rotated its key);
    /// `None` when the cached copy is too recent to justify it.
    async fn refresh(&self, http: &reqwest012::Client) -> Result<Option<Arc<Value>>, String> {
        let mut cached = self.cached.lock().await;
        if let Some((_, at)) = cached.as_ref()
            && at.elapsed() < JWKS_MIN_REFETCH
        {
            return Ok(None);
        }
        let jwks = self.fetch(http).await?;
        *cached = Some((jwks.clone(), Instant::now()));
        Ok(Some(jwks))
    }
}

/// The push department's receiver.
struct Receiver {
    dept: Arc<Dept>,
    jwks: JwksCache,
    seen: Mutex<RecentIds>,
}

type Reply = (StatusCode, &'static str);

impl Receiver {
    /// The signature and the timestamp (5-minute window) against the gateway's JWKS.
    async fn authenticate(&self, id: &str, ts: &str, sig: &str, body: &[u8]) -> Result<(), Reply> {
        let now = Utc::now().timestamp();
        let check = |jwks: &Value| {
            signing::verify(
                jwks,
                id,
                ts,
                sig,
                body,
                now,
                signing::DEFAULT_TOLERANCE_SECS,
            )
        };
        let unavailable = |e: String| {
            tracing::warn!(
                department = %self.dept.name,
                error = %e,
                "demo department cannot fetch the gateway's signing keys",
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot fetch the signing keys",
            )
        };
        let (jwks, fresh) = self.jwks.get(&self.dept.http).await.map_err(unavailable)?;
        let mut outcome = check(&jwks);
        if outcome == Err(VerifyError::NoValidSignature)
            && !fresh
            && let Some(newer) = self
                .jwks
                .refresh(&self.dept.http)
                .await
                .map_err(unavailable)?
        {
            outcome = check(&newer);
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(VerifyError::BadJwks(e)) => Err(unavailable(e)),
            Err(e) => {
                tracing::warn!(
                    department = %self.dept.name,
                    error = %e,
                    "demo department refused a delivery",
                );
                Err((StatusCode::UNAUTHORIZED, "signature or timestamp refused"))
            }
        }
    }
}

/// `POST /events`: verify, de-duplicate, answer; process in the background.
async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Reply {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let id = header(signing::HEADER_ID);
    let ts = header(signing::HEADER_TIMESTAMP);
    let sig = header(signing::HEADER_SIGNATURE);
    if let Err(reply) = r.authenticate(id, ts, sig, &body).await {
        return reply;
    }
    let ev: Event = match serde_json::from_slice(&body) {
        Ok(ev) => ev,
        Err(_) => return (StatusCode::BAD_REQUEST, "not a CloudEvents event"),
    };
    if ev.specversion != "1.0" || ev.id != id {
        return (
            StatusCode::BAD_REQUEST,
            "not CloudEvents 1.0, or the id differs from webhook-id",
        );
    }
    if !lock(&r.seen).insert(id) {
        return (StatusCode::OK, "duplicate; already received");
    }
    let dept = r.dept.clone();
    r.dept.spawn(async move {
        if let Err(e) = dept.process(&ev).await {
            tracing::warn!(
                department = %dept.name,
                event = %ev.id,
                error = %format!("{e:#}"),
                "demo department could not finish processing an event",
            );
        }
    });
    (StatusCode::OK, "received")
}

/// The simulated department's own social-insurance records (its data API's answers).
const INSURED: [(&str, &str, &str); 4] = [
    ("150702198506123025", "2", "H15070212345"), // 王小明: residents' scheme
    ("150702199203151541", "1", "H15070288410"), // 李芳: employees' scheme
    ("150721197809234018", "0", ""),             // 赵强: not insured
    ("150702200108081229", "1", "H15070230977"), // 陈静: employees' scheme
];

/// `POST /resources/social_insurance/query`: the department's data API, as the gateway's
/// department-API provider calls it (signed like a delivery; the subject in the body).
async fn social_insurance(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if let Err(reply) = r
        .authenticate(
            header(signing::HEADER_ID),
            header(signing::HEADER_TIMESTAMP),
            header(signing::HEADER_SIGNATURE),
            &body,
        )
        .await
    {
        return reply.into_response();
    }
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let subject = req["subject"].as_str().unwrap_or("");
    match INSURED.iter().find(|(id, _, _)| *id == subject) {
        Some((_, status, card)) => {
            let mut data = serde_json::Map::new();
            data.insert("insured_status".into(), Value::String((*status).into()));
            if !card.is_empty() {
                data.insert(
                    "social_security_card_no".into(),
                    Value::String((*card).into()),
                );
            }
            axum::Json(serde_json::json!({
                "records": [{ "data": data, "as_of": "2026-11-01T00:00:00Z" }]
            }))
            .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such insured person").into_response(),
    }
}

// ---- pull ----

/// The pull department's inbox state.
struct Inbox {
    dept: Arc<Dept>,
    /// Leased and being processed.
    in_flight: Mutex<HashSet<String>>,
    /// Processed (acknowledged, or to be acknowledged again if it comes back).
    done: Mutex<RecentIds>,
}

async fn poll_loop(inbox: Arc<Inbox>) {
    let mut tick = tokio::time::interval(inbox.dept.config.poll_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = inbox.dept.stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        match poll_once(&inbox).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!(
                    department = %inbox.dept.name,
                    "demo department reaches its inbox again",
                );
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(
                    department = %inbox.dept.name,
                    error = %format!("{e:#}"),
                    "demo department cannot read its inbox (will keep trying)",
                );
            }
            Err(_) => {}
        }
    }
}

/// One lease of the inbox; each new event is processed (then acknowledged) in the
/// background.
async fn poll_once(inbox: &Arc<Inbox>) -> anyhow::Result<()> {
    let dept = &inbox.dept;
    let resp = dept
        .http
        .get(dept.url("api/dept/v1/inbox?limit=10")?)
        .bearer_auth(&dept.token)
        .send()
        .await
        .context("leasing the inbox")?;
    let status = resp.status();
    if !status.is_success() {
        anyhow::bail!("leasing the inbox: HTTP {status}");
    }
    let page: Value = resp.json().await.context("the inbox is not JSON")?;
    for raw in page["events"].as_array().into_iter().flatten() {
        let ev: Event = match serde_json::from_value(raw.clone()) {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(
                    department = %dept.name,
                    error = %e,
                    "demo department got an unreadable event",
                );
                continue;
            }
        };
        if lock(&inbox.done).contains(&ev.id) {
            // Processed before, but the acknowledgement was lost: acknowledge again.
            let inbox = inbox.clone();
            dept.spawn(async move {
                let _ = ack(&inbox.dept, &ev.id).await;
            });
            continue;
        }
        if !lock(&inbox.in_flight).insert(ev.id.clone()) {
            continue;
        }
        let inbox = inbox.clone();
        dept.spawn(async move {
            let dept = &inbox.dept;
            match dept.process(&ev).await {
                Ok(()) => {
                    lock(&inbox.done).insert(&ev.id);
                    if let Err(e) = ack(dept, &ev.id).await {
                        tracing::warn!(
                            department = %dept.name,
                            event = %ev.id,
                            error = %format!("{e:#}"),
                            "demo department could not acknowledge an event (it will come back)",
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        department = %dept.name,
                        event = %ev.id,
                        error = %format!("{e:#}"),
                        "demo department could not finish processing an event (it comes back when the lease ends)",
                    );
                }
            }
            lock(&inbox.in_flight).remove(&ev.id);
        });
    }
    Ok(())
}

/// `POST /api/dept/v1/inbox/{event_id}/ack`; a 404 (already acknowledged) is fine.
async fn ack(dept: &Dept, event_id: &str) -> anyhow::Result<()> {
    let id: uuid::Uuid = event_id.parse().context("the event id is not a UUID")?;
    let resp = dept
        .http
        .post(dept.url(&format!("api/dept/v1/inbox/{id}/ack"))?)
        .bearer_auth(&dept.token)
        .send()
        .await
        .context("acknowledging")?;
    match resp.status().as_u16() {
        200..=299 | 404 => Ok(()),
        s => anyhow::bail!("acknowledging {id} ({}): HTTP {s}", dept.uscc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_step_follows_status_and_allowed_actions() {
        let all = ["accept", "start_review", "conclude", "request_correction"];
        assert_eq!(next_step("submitted", &all, true), Some(Step::Accept));
        assert_eq!(next_step("accepted", &all, true), Some(Step::StartReview));
        assert_eq!(next_step("under_review", &all, true), Some(Step::Conclude));
        // A clerk's correction request, a suspension or a concluded case: nothing to do.
        assert_eq!(next_step("correction_requested", &all, true), None);
        assert_eq!(next_step("suspended", &all, true), None);
        assert_eq!(next_step("approved", &all, true), None);
        // Not allowed for this department now.
        assert_eq!(next_step("submitted", &["request_correction"], true), None);
        // Another department's joint case: only its own part, once under review.
        assert_eq!(next_step("submitted", &all, false), None);
        assert_eq!(next_step("accepted", &all, false), None);
        assert_eq!(next_step("under_review", &all, false), Some(Step::Conclude));
    }

    #[test]
    fn the_conclusion_is_approved_with_a_note() {
        let b = Step::Conclude.body();
        assert_eq!(b["action"], "conclude");
        assert_eq!(b["result"], "approved");
        assert_eq!(b["note"], CONCLUSION_NOTE);
        assert_eq!(Step::Accept.body(), json!({ "action": "accept" }));
    }

    #[test]
    fn only_plain_case_numbers_go_into_paths() {
        assert!(plain_case_no("HLBE20250301-7KQ2M9XD"));
        assert!(!plain_case_no("../ops"));
        assert!(!plain_case_no(""));
    }

    #[test]
    fn recent_ids_forget_the_oldest() {
        let mut r = RecentIds::new(2);
        assert!(r.insert("a"));
        assert!(!r.insert("a"));
        assert!(r.insert("b"));
        assert!(r.insert("c"));
        assert!(!r.contains("a"));
        assert!(r.contains("c"));
    }
}
