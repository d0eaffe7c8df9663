//! Where a resource's values come from. Two providers sit behind one trait:
//!
//! - [`BaseLibrary`]: the gateway's own copy (`base_records`), filled by `onewindow import`;
//! - [`DepartmentApi`]: the providing department's data API, called through the exchange.
//!   Each call is a signed POST (Standard Webhooks headers with the gateway's exchange key,
//!   the same signature departments already verify on deliveries) with a time limit. Answers
//!   are cached per resource for its `cache_ttl_secs`, and a circuit breaker per resource stops
//!   calling a department that keeps failing, so a form opens at once without prefill rather
//!   than waiting on a dead system.
//!
//! [`Providers`] picks by the resource's `access`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::seal::{Sealer, record_aad};
use crate::cache::Cache;
use crate::domain::catalogue::{Access, Resource, Subject};
use crate::exchange::keys::Keys;
use crate::store::{BaseRecord, Store, StoreResult, UpsertCounts};

/// One record a provider holds for a subject: its items, or one licence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Licence item id in a licence library, else empty.
    #[serde(default)]
    pub record: String,
    /// Item id → value.
    pub data: Map<String, Value>,
    /// How current the data is (the provider's last change).
    pub as_of: DateTime<Utc>,
}

/// Why a provider could not answer. Never carries personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The department has no data API configured.
    #[error("no data API is configured for department {0}")]
    NotConfigured(String),
    /// The circuit is open after repeated failures.
    #[error("circuit open after repeated failures; next trial in {0} s")]
    CircuitOpen(u64),
    /// The call failed or timed out.
    #[error("data API call failed: {0}")]
    Failed(String),
}

/// What the read is for, sent to a department's API so it can keep its own log.
#[derive(Debug, Clone, Serialize)]
pub struct ReadPurpose {
    /// Why, in the words the department logs (表单预填 …).
    pub purpose: String,
    /// The service the read is for, so the department can check it may share with it.
    pub service_code: Option<String>,
    /// The case, once there is one (substitute checks on submit), for the department's
    /// own trail.
    pub case_no: Option<String>,
}

/// A source of shared data.
#[async_trait]
pub trait DataProvider: Send + Sync {
    /// The subject's records of `resource`; empty when the provider holds none.
    async fn fetch(
        &self,
        resource: &Resource,
        subject: &str,
        why: &ReadPurpose,
    ) -> Result<Vec<Record>, ProviderError>;
}

/// The gateway's base library. Records are sealed (see [`super::seal`]): the subject is
/// stored as a blind index and the data encrypted, bound to its row.
pub struct BaseLibrary {
    store: Arc<dyn Store>,
    sealer: Arc<Sealer>,
}

impl BaseLibrary {
    /// Reads from this store, opening records with this sealer.
    pub fn new(store: Arc<dyn Store>, sealer: Arc<Sealer>) -> BaseLibrary {
        BaseLibrary { store, sealer }
    }

    /// A record as stored: the subject replaced by its blind index, the data sealed.
    pub fn seal(&self, r: &BaseRecord) -> BaseRecord {
        let subject = self.sealer.subject_ref(&r.resource, &r.subject);
        let aad = record_aad(&r.resource, &r.record, &subject);
        BaseRecord {
            resource: r.resource.clone(),
            data: self.sealer.seal(&aad, &r.data),
            subject,
            record: r.record.clone(),
            updated_at: r.updated_at,
        }
    }

    /// Seals and stores records (added, updated or left alone, as the store counts them).
    pub async fn put(&self, rows: &[BaseRecord]) -> StoreResult<UpsertCounts> {
        let sealed: Vec<BaseRecord> = rows.iter().map(|r| self.seal(r)).collect();
        self.store.upsert_base_records(&sealed).await
    }

    /// A subject's records of a resource, opened.
    pub async fn records(
        &self,
        resource: &str,
        subject: &str,
    ) -> Result<Vec<Record>, ProviderError> {
        let subject_ref = self.sealer.subject_ref(resource, subject);
        let rows = self
            .store
            .base_records(resource, &subject_ref)
            .await
            .map_err(|e| ProviderError::Failed(format!("base library: {e}")))?;
        rows.into_iter()
            .map(|r| {
                let aad = record_aad(&r.resource, &r.record, &subject_ref);
                let data = self
                    .sealer
                    .open(&aad, &r.data)
                    .map_err(|e| ProviderError::Failed(format!("base library: {e}")))?;
                Ok(Record {
                    record: r.record,
                    data: match data {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    },
                    as_of: r.updated_at,
                })
            })
            .collect()
    }
}

#[async_trait]
impl DataProvider for BaseLibrary {
    async fn fetch(
        &self,
        resource: &Resource,
        subject: &str,
        _why: &ReadPurpose,
    ) -> Result<Vec<Record>, ProviderError> {
        self.records(&resource.code, subject).await
    }
}

/// State of one circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the given instant.
    Open(Instant),
    /// One trial call is in flight; others are refused.
    HalfOpen,
}

/// How a call was let through: as an ordinary call of a closed circuit, or as the one
/// trial of a half-open circuit (numbered, so that only that trial can hand itself back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The circuit is closed.
    Call,
    /// The trial call with this number.
    Trial(u64),
}

/// A circuit breaker: `failures_to_open` consecutive failures open it for `open_for`; then
/// one trial call decides whether it closes again or stays open for another period.
///
/// A trial that never reports (its future was dropped, it panicked, or its answer says
/// nothing about the department) must not leave the circuit half-open for good, refusing
/// every call: [`Breaker::abandon`] hands it back at once, and a trial that has not
/// reported within `open_for` is given up on anyway, so the next call becomes the trial.
#[derive(Debug)]
pub struct Breaker {
    failures_to_open: u32,
    open_for: Duration,
    failures: u32,
    state: CircuitState,
    /// The number of the latest trial, and when it is given up on if still out.
    trial: u64,
    trial_until: Instant,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(failures_to_open: u32, open_for: Duration) -> Breaker {
        Breaker {
            failures_to_open: failures_to_open.max(1),
            open_for,
            failures: 0,
            state: CircuitState::Closed,
            trial: 0,
            trial_until: Instant::now(),
        }
    }

    /// Whether a call may go out now; `Err(seconds)` until the next trial when not.
    pub fn admit(&mut self, now: Instant) -> Result<Admission, u64> {
        match self.state {
            CircuitState::Closed => Ok(Admission::Call),
            CircuitState::HalfOpen if now < self.trial_until => {
                Err((self.trial_until - now).as_secs().max(1))
            }
            CircuitState::Open(until) if now < until => Err((until - now).as_secs().max(1)),
            // Open and its period is over, or half-open with a trial that never reported.
            CircuitState::Open(_) | CircuitState::HalfOpen => {
                self.state = CircuitState::HalfOpen;
                self.trial += 1;
                self.trial_until = now + self.open_for;
                Ok(Admission::Trial(self.trial))
            }
        }
    }

    /// Records a successful call: the circuit closes.
    pub fn success(&mut self) {
        self.failures = 0;
        self.state = CircuitState::Closed;
    }

    /// Records a failed call; answers whether this opened the circuit.
    pub fn failure(&mut self, now: Instant) -> bool {
        self.failures += 1;
        let open =
            matches!(self.state, CircuitState::HalfOpen) || self.failures >= self.failures_to_open;
        if open {
            self.state = CircuitState::Open(now + self.open_for);
        }
        open
    }

    /// Hands back trial `trial`, which ended without a verdict: the next call may try.
    /// An older trial's late hand-back does not cut short a newer one.
    pub fn abandon(&mut self, trial: u64, now: Instant) {
        if self.state == CircuitState::HalfOpen && self.trial == trial {
            self.state = CircuitState::Open(now);
        }
    }

    /// The current state.
    pub fn state(&self) -> CircuitState {
        self.state
    }
}

/// The breakers of every resource, shared by concurrent calls.
struct Breakers {
    failures_to_open: u32,
    open_for: Duration,
    map: Mutex<HashMap<String, Breaker>>,
}

impl Breakers {
    fn new(failures_to_open: u32, open_for: Duration) -> Breakers {
        Breakers {
            failures_to_open,
            open_for,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, resource: &str, f: impl FnOnce(&mut Breaker) -> T) -> T {
        // A panic while the lock was held cannot leave a breaker inconsistent: each
        // method sets its fields in one go. So a poisoned lock is taken over.
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let b = map
            .entry(resource.to_owned())
            .or_insert_with(|| Breaker::new(self.failures_to_open, self.open_for));
        f(b)
    }

    fn state(&self, resource: &str) -> CircuitState {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(resource)
            .map_or(CircuitState::Closed, Breaker::state)
    }

    /// Lets a call to `resource` go out, or says how many seconds until the next trial.
    fn admit(&self, resource: &str, now: Instant) -> Result<Call<'_>, u64> {
        let admission = self.with(resource, |b| b.admit(now))?;
        Ok(Call {
            breakers: self,
            resource: resource.to_owned(),
            trial: match admission {
                Admission::Trial(n) => Some(n),
                Admission::Call => None,
            },
        })
    }
}

/// One call let through a breaker. Its outcome is reported with [`Call::succeeded`] or
/// [`Call::failed`]; dropped without either (the caller's future was cancelled, the call
/// panicked, or the answer said nothing about the department's health), a trial call is
/// handed back so that the circuit does not stay half-open.
struct Call<'a> {
    breakers: &'a Breakers,
    resource: String,
    trial: Option<u64>,
}

impl Call<'_> {
    fn succeeded(mut self) {
        self.trial = None;
        self.breakers.with(&self.resource, Breaker::success);
    }

    /// Answers whether this failure opened the circuit.
    fn failed(mut self, now: Instant) -> bool {
        self.trial = None;
        self.breakers.with(&self.resource, |b| b.failure(now))
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if let Some(trial) = self.trial {
            self.breakers
                .with(&self.resource, |b| b.abandon(trial, Instant::now()));
        }
    }
}

/// The body a department's data API receives.
#[derive(Debug, Serialize)]
struct DataRequest<'a> {
    resource: &'a str,
    subject_kind: &'static str,
    subject: &'a str,
    items: Vec<&'a str>,
    #[serde(flatten)]
    why: &'a ReadPurpose,
}

/// What a department's data API answers.
#[derive(Debug, Deserialize)]
struct DataAnswer {
    #[serde(default)]
    records: Vec<Record>,
}

/// Departments' data APIs, reached through the exchange.
pub struct DepartmentApi {
    store: Arc<dyn Store>,
    cache: Arc<dyn Cache>,
    sealer: Arc<Sealer>,
    http: reqwest012::Client,
    keys: Arc<Keys>,
    timeout: Duration,
    breakers: Breakers,
}

/// Limits of [`DepartmentApi`] calls, from the `provider_*` settings.
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    /// Per-call time limit; a slow department must not hold a form open.
    pub timeout: Duration,
    /// Consecutive failures that open a circuit.
    pub failures_to_open: u32,
    /// How long it stays open.
    pub open_for: Duration,
}

impl DepartmentApi {
    /// A client for departments' data APIs.
    pub fn new(
        store: Arc<dyn Store>,
        cache: Arc<dyn Cache>,
        sealer: Arc<Sealer>,
        http: reqwest012::Client,
        keys: Arc<Keys>,
        limits: ApiLimits,
    ) -> DepartmentApi {
        DepartmentApi {
            store,
            cache,
            sealer,
            http,
            keys,
            timeout: limits.timeout,
            breakers: Breakers::new(limits.failures_to_open, limits.open_for),
        }
    }

    /// The circuit state of a resource (for `/readyz`-style reports and tests).
    pub fn circuit(&self, resource: &str) -> CircuitState {
        self.breakers.state(resource)
    }

    /// The cache key of a subject's answer: the subject is hashed, never stored as is.
    fn cache_key(resource: &str, subject: &str) -> String {
        let h = hex::encode(Sha256::digest(format!("{resource}\0{subject}").as_bytes()));
        format!("shared:{resource}:{h}")
    }

    async fn call(
        &self,
        resource: &Resource,
        subject: &str,
        why: &ReadPurpose,
    ) -> Result<Vec<Record>, ProviderError> {
        let endpoints = self
            .store
            .endpoints()
            .await
            .map_err(|e| ProviderError::Failed(format!("store: {e}")))?;
        let base = endpoints
            .into_iter()
            .find(|e| e.department == resource.provider)
            .and_then(|e| e.data_api)
            .ok_or_else(|| ProviderError::NotConfigured(resource.provider.clone()))?;
        let url = format!(
            "{}/resources/{}/query",
            base.trim_end_matches('/'),
            resource.code
        );
        let body = serde_json::to_vec(&DataRequest {
            resource: &resource.code,
            subject_kind: resource.subject.code(),
            subject,
            items: resource.items.iter().map(|i| i.id.as_str()).collect(),
            why,
        })
        .map_err(|e| ProviderError::Failed(e.to_string()))?;
        let msg_id = format!("req_{}", uuid::Uuid::now_v7());
        let ts = Utc::now().timestamp();
        let headers = self.keys.with(|ring| ring.sign(&msg_id, ts, &body));
        let mut req = self
            .http
            .post(&url)
            .timeout(self.timeout)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let res = req
            .send()
            .await
            .map_err(|e| ProviderError::Failed(describe(&e)))?;
        match res.status().as_u16() {
            200 => {
                let answer: DataAnswer = res
                    .json()
                    .await
                    .map_err(|e| ProviderError::Failed(format!("unreadable answer: {e}")))?;
                Ok(answer.records)
            }
            404 => Ok(Vec::new()),
            s => Err(ProviderError::Failed(format!("HTTP {s}"))),
        }
    }
}

fn describe(e: &reqwest012::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        // The URL holds no personal data (the subject travels in the body).
        format!("{e}")
    }
}

#[async_trait]
impl DataProvider for DepartmentApi {
    async fn fetch(
        &self,
        resource: &Resource,
        subject: &str,
        why: &ReadPurpose,
    ) -> Result<Vec<Record>, ProviderError> {
        let key = Self::cache_key(&resource.code, subject);
        if resource.cache_ttl_secs > 0
            && let Ok(Some(bytes)) = self.cache.get(&key).await
            && let Ok(sealed) = serde_json::from_slice::<Value>(&bytes)
            && let Ok(plain) = self.sealer.open(&key, &sealed)
            && let Ok(records) = serde_json::from_value::<Vec<Record>>(plain)
        {
            metrics::counter!("onewindow_shared_data_cache_total", "resource" => resource.code.clone(), "outcome" => "hit").increment(1);
            return Ok(records);
        }
        metrics::counter!("onewindow_shared_data_cache_total", "resource" => resource.code.clone(), "outcome" => "miss").increment(1);
        let admitted = self
            .breakers
            .admit(&resource.code, Instant::now())
            .map_err(ProviderError::CircuitOpen)?;
        match self.call(resource, subject, why).await {
            Ok(records) => {
                admitted.succeeded();
                if resource.cache_ttl_secs > 0
                    && let Ok(plain) = serde_json::to_value(&records)
                    && let Ok(bytes) = serde_json::to_vec(&self.sealer.seal(&key, &plain))
                    && let Err(e) = self
                        .cache
                        .set(&key, &bytes, Duration::from_secs(resource.cache_ttl_secs))
                        .await
                {
                    tracing::warn!(resource = %resource.code, error = %e, "cannot cache shared data");
                }
                Ok(records)
            }
            // Says nothing about the department's health; a trial is handed back on drop.
            Err(ProviderError::NotConfigured(d)) => Err(ProviderError::NotConfigured(d)),
            Err(e) => {
                let opened = admitted.failed(Instant::now());
                tracing::warn!(resource = %resource.code, error = %e, circuit_opened = opened, "department data API failed");
                if opened {
                    metrics::counter!("onewindow_shared_data_circuit_opened_total", "resource" => resource.code.clone()).increment(1);
                }
                Err(e)
            }
        }
    }
}

/// Both providers, chosen by a resource's `access`.
pub struct Providers {
    /// The base library.
    pub base: BaseLibrary,
    /// Departments' data APIs.
    pub api: DepartmentApi,
}

impl Providers {
    /// The provider for a resource.
    pub fn for_resource(&self, r: &Resource) -> &dyn DataProvider {
        match r.access {
            Access::BaseLibrary => &self.base,
            Access::DepartmentApi => &self.api,
        }
    }
}

/// The subject key of a resource for an applicant: their ID number or their enterprise's
/// USCC, whichever the item's subject is.
pub fn subject_key<'a>(
    subject: Subject,
    person: Option<&'a str>,
    enterprise: Option<&'a str>,
) -> Option<&'a str> {
    match subject {
        Subject::Person => person,
        Subject::Enterprise => enterprise,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_consecutive_failures_only() {
        let t = Instant::now();
        let mut b = Breaker::new(3, Duration::from_secs(30));
        assert!(!b.failure(t));
        assert!(!b.failure(t));
        b.success();
        assert!(!b.failure(t));
        assert!(!b.failure(t));
        assert!(b.failure(t), "the third consecutive failure opens it");
        assert_eq!(b.admit(t + Duration::from_secs(1)), Err(29));
    }

    #[test]
    fn an_open_breaker_lets_one_trial_through_after_the_period() {
        let t = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(10));
        assert!(b.failure(t));
        assert!(b.admit(t + Duration::from_secs(5)).is_err());
        assert_eq!(
            b.admit(t + Duration::from_secs(10)),
            Ok(Admission::Trial(1))
        );
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert!(
            b.admit(t + Duration::from_secs(10)).is_err(),
            "only one trial at a time"
        );
        b.success();
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.admit(t + Duration::from_secs(11)), Ok(Admission::Call));
    }

    #[test]
    fn a_failed_trial_opens_the_circuit_again() {
        let t = Instant::now();
        let mut b = Breaker::new(5, Duration::from_secs(10));
        for _ in 0..5 {
            b.failure(t);
        }
        let later = t + Duration::from_secs(10);
        assert_eq!(b.admit(later), Ok(Admission::Trial(1)));
        assert!(b.failure(later), "one failed trial is enough");
        assert!(matches!(b.state(), CircuitState::Open(_)));
    }

    #[test]
    fn a_trial_that_never_reports_is_given_up_after_one_period() {
        let t = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(10));
        b.failure(t);
        let trial = t + Duration::from_secs(10);
        assert_eq!(b.admit(trial), Ok(Admission::Trial(1)));
        assert_eq!(b.admit(trial + Duration::from_secs(4)), Err(6));
        assert_eq!(
            b.admit(trial + Duration::from_secs(10)),
            Ok(Admission::Trial(2)),
            "the silent trial is given up on and the next call tries"
        );
    }

    #[test]
    fn an_abandoned_trial_lets_the_next_call_try_at_once() {
        let t = Instant::now();
        let mut b = Breaker::new(1, Duration::from_secs(10));
        b.failure(t);
        let trial = t + Duration::from_secs(10);
        assert_eq!(b.admit(trial), Ok(Admission::Trial(1)));
        b.abandon(1, trial);
        assert_eq!(b.admit(trial), Ok(Admission::Trial(2)));
        b.abandon(1, trial);
        assert_eq!(
            b.state(),
            CircuitState::HalfOpen,
            "a late hand-back of trial 1 does not end trial 2"
        );
        b.success();
        b.abandon(2, trial);
        assert_eq!(b.state(), CircuitState::Closed, "a verdict stands");
    }

    /// Breakers whose circuit `r` opened for 30 s, and an instant when that is over
    /// (the trial's own 30 s lease is then far from over).
    fn opened() -> (Breakers, Instant) {
        let breakers = Breakers::new(1, Duration::from_secs(30));
        let call = breakers.admit("r", Instant::now()).expect("closed");
        assert!(call.failed(Instant::now()));
        (breakers, Instant::now() + Duration::from_secs(30))
    }

    #[tokio::test]
    async fn a_cancelled_trial_call_hands_the_trial_back() {
        let (breakers, t) = opened();
        let trial = async {
            let _call = breakers.admit("r", t).expect("trial");
            std::future::pending::<()>().await;
        };
        // The caller gives up: the future holding the trial is dropped mid-call.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), trial)
                .await
                .is_err()
        );
        assert!(matches!(breakers.state("r"), CircuitState::Open(_)));
        let next = breakers.admit("r", t).expect("next trial");
        assert_eq!(next.trial, Some(2));
        next.succeeded();
        assert_eq!(breakers.state("r"), CircuitState::Closed);
    }

    #[test]
    fn a_panicking_trial_call_hands_the_trial_back() {
        let (breakers, t) = opened();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _call = breakers.admit("r", t).expect("trial");
            panic!("the call panicked while the trial was out");
        }));
        assert!(panicked.is_err());
        assert_eq!(
            breakers.admit("r", t).map(|c| c.trial).ok(),
            Some(Some(2)),
            "not stuck half-open"
        );
    }

    #[test]
    fn while_a_trial_is_out_other_calls_are_refused() {
        let (breakers, t) = opened();
        let _trial = breakers.admit("r", t).expect("trial");
        assert_eq!(breakers.admit("r", t).err(), Some(30));
        assert_eq!(breakers.state("other"), CircuitState::Closed);
    }

    #[test]
    fn cache_keys_do_not_hold_the_subject() {
        let k = DepartmentApi::cache_key("social_insurance", "150702199001011234");
        assert!(k.starts_with("shared:social_insurance:"));
        assert!(!k.contains("150702199001011234"));
    }
}
