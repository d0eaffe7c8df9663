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
    /// Why (表单预填 …).
    pub purpose: String,
    /// The service.
    pub service_code: Option<String>,
    /// The case, if any.
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

/// A circuit breaker: `failures_to_open` consecutive failures open it for `open_for`; then
/// one trial call decides whether it closes again or stays open for another period.
#[derive(Debug)]
pub struct Breaker {
    failures_to_open: u32,
    open_for: Duration,
    failures: u32,
    state: CircuitState,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(failures_to_open: u32, open_for: Duration) -> Breaker {
        Breaker {
            failures_to_open: failures_to_open.max(1),
            open_for,
            failures: 0,
            state: CircuitState::Closed,
        }
    }

    /// Whether a call may go out now; `Err(seconds)` until the next trial when not.
    pub fn admit(&mut self, now: Instant) -> Result<(), u64> {
        match self.state {
            CircuitState::Closed => Ok(()),
            CircuitState::HalfOpen => Err(1),
            CircuitState::Open(until) if now >= until => {
                self.state = CircuitState::HalfOpen;
                Ok(())
            }
            CircuitState::Open(until) => Err((until - now).as_secs().max(1)),
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

    /// The current state.
    pub fn state(&self) -> CircuitState {
        self.state
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
    failures_to_open: u32,
    open_for: Duration,
    breakers: Mutex<HashMap<String, Breaker>>,
}

/// Settings of [`DepartmentApi`].
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    /// Per-call time limit.
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
            failures_to_open: limits.failures_to_open,
            open_for: limits.open_for,
            breakers: Mutex::new(HashMap::new()),
        }
    }

    /// The circuit state of a resource (for `/readyz`-style reports and tests).
    pub fn circuit(&self, resource: &str) -> CircuitState {
        self.breakers
            .lock()
            .map(|b| {
                b.get(resource)
                    .map(Breaker::state)
                    .unwrap_or(CircuitState::Closed)
            })
            .unwrap_or(CircuitState::Closed)
    }

    fn with_breaker<T>(&self, resource: &str, f: impl FnOnce(&mut Breaker) -> T) -> T {
        let mut map = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        let b = map
            .entry(resource.to_owned())
            .or_insert_with(|| Breaker::new(self.failures_to_open, self.open_for));
        f(b)
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
        if let Err(wait) = self.with_breaker(&resource.code, |b| b.admit(Instant::now())) {
            return Err(ProviderError::CircuitOpen(wait));
        }
        match self.call(resource, subject, why).await {
            Ok(records) => {
                self.with_breaker(&resource.code, Breaker::success);
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
            Err(ProviderError::NotConfigured(d)) => Err(ProviderError::NotConfigured(d)),
            Err(e) => {
                let opened = self.with_breaker(&resource.code, |b| b.failure(Instant::now()));
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
        assert_eq!(b.admit(t + Duration::from_secs(10)), Ok(()));
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert!(
            b.admit(t + Duration::from_secs(10)).is_err(),
            "only one trial at a time"
        );
        b.success();
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.admit(t + Duration::from_secs(11)), Ok(()));
    }

    #[test]
    fn a_failed_trial_opens_the_circuit_again() {
        let t = Instant::now();
        let mut b = Breaker::new(5, Duration::from_secs(10));
        for _ in 0..5 {
            b.failure(t);
        }
        let later = t + Duration::from_secs(10);
        assert_eq!(b.admit(later), Ok(()));
        assert!(b.failure(later), "one failed trial is enough");
        assert!(matches!(b.state(), CircuitState::Open(_)));
    }

    #[test]
    fn cache_keys_do_not_hold_the_subject() {
        let k = DepartmentApi::cache_key("social_insurance", "150702199001011234");
        assert!(k.starts_with("shared:social_insurance:"));
        assert!(!k.contains("150702199001011234"));
    }
}
