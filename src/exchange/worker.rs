//! Push delivery: claims due events and runs their attempts side by side, each department
//! apart from the others (see [`Dispatcher`]); each attempt
//! (sign, POST, record) is the use case `usecases::deliver`. Failed events are retried on
//! the published schedule with jitter until the department answers 2xx or the schedule
//! runs out (dead letter, redeliverable by operators).
//!
//! Time is a parameter (`deliver_due(app, now)`), so tests move it forward instead of
//! waiting hours; the background loop passes the real clock.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::state::AppState;
use crate::store::AttemptOutcome;

/// Waits after failed attempts 1, 2, … (about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
/// 20 h, 24 h); after the last one the event is dead-lettered.
pub const SCHEDULE_SECS: [i64; 9] = [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400];

/// How long a claimed event is reserved for one worker.
const LEASE: chrono::Duration = chrono::Duration::seconds(60);

/// Where the next attempt stands after failed attempt `attempt` (1-based), with ±10 %
/// jitter so a recovering department is not hit by every retry at once.
pub fn next_after_failure(attempt: i32, now: DateTime<Utc>, jitter: f64) -> AttemptOutcome {
    let idx = (attempt.max(1) - 1) as usize;
    match SCHEDULE_SECS.get(idx) {
        Some(&base) => {
            let ms = (base as f64 * 1000.0 * (1.0 + jitter.clamp(-0.1, 0.1))) as i64;
            AttemptOutcome::RetryAt(now + chrono::Duration::milliseconds(ms))
        }
        None => AttemptOutcome::Dead,
    }
}

/// Whether an endpoint may be used: https, or http where configuration allows it.
pub fn endpoint_allowed(url: &str, allow_http: bool) -> bool {
    match url::Url::parse(url) {
        Ok(u) => u.scheme() == "https" || (allow_http && u.scheme() == "http"),
        Err(_) => false,
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Delivered (2xx).
    pub delivered: usize,
    /// Failed, to be retried.
    pub retrying: usize,
    /// Failed for the last time.
    pub dead: usize,
}

/// How many attempts may be under way at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Over all departments.
    pub overall: usize,
    /// To one department that answers.
    pub per_department: usize,
}

impl Limits {
    /// The limits configuration sets.
    pub fn from_settings(app: &AppState) -> Limits {
        let ex = &app.settings.exchange;
        Limits {
            overall: ex.delivery_concurrency.max(1),
            per_department: ex.delivery_per_department.max(1),
        }
    }
}

/// What a [`Dispatcher`] delivers: a queue of signed pushes, each to a target (a
/// department, or the regional platform), claimed with a lease, attempted, and given
/// back when claimed beyond a target's share. Department events ([`Departments`]) and the
/// regional platform's reports (`crate::region::RegionQueue`) share the dispatcher, its
/// limits and its bookkeeping.
#[async_trait::async_trait]
pub trait Queue: Clone + Send + Sync + 'static {
    /// One claimed item.
    type Job: Send + 'static;
    /// Whom it goes to (attempts are limited per target).
    fn target(&self, job: &Self::Job) -> String;
    /// Its id (to give it back).
    fn id(&self, job: &Self::Job) -> uuid::Uuid;
    /// Leases up to `limit` items due at `now`, none for the targets in `skip`.
    async fn claim(
        &self,
        app: &AppState,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        skip: &[String],
    ) -> anyhow::Result<Vec<Self::Job>>;
    /// Gives claimed items back.
    async fn release(&self, app: &AppState, ids: &[uuid::Uuid]) -> anyhow::Result<()>;
    /// Makes one attempt and records it.
    async fn attempt(
        &self,
        app: &AppState,
        job: Self::Job,
        now: DateTime<Utc>,
    ) -> crate::usecases::Result<AttemptOutcome>;
}

/// The outbox of department events.
#[derive(Debug, Clone, Copy, Default)]
pub struct Departments;

#[async_trait::async_trait]
impl Queue for Departments {
    type Job = crate::store::Delivery;

    fn target(&self, job: &Self::Job) -> String {
        job.department.clone()
    }

    fn id(&self, job: &Self::Job) -> uuid::Uuid {
        job.id
    }

    async fn claim(
        &self,
        app: &AppState,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        skip: &[String],
    ) -> anyhow::Result<Vec<Self::Job>> {
        Ok(app
            .store
            .claim_push_except(now, lease_until, limit, skip)
            .await?)
    }

    async fn release(&self, app: &AppState, ids: &[uuid::Uuid]) -> anyhow::Result<()> {
        Ok(app.store.release_push(ids).await?)
    }

    async fn attempt(
        &self,
        app: &AppState,
        job: Self::Job,
        now: DateTime<Utc>,
    ) -> crate::usecases::Result<AttemptOutcome> {
        crate::usecases::deliver::deliver(app, job, now).await
    }
}

/// Attempts under way and each department's standing, so one department that does not
/// answer cannot hold up the others: every attempt runs as its own task, at most
/// `per_department` to one department (one while its last attempt failed: a failing
/// department backs off on its own) and `overall` in all. A pass claims only what can
/// start now and does not wait for what is under way. The same dispatcher, over another
/// [`Queue`], delivers the regional platform's reports.
pub struct Dispatcher<Q: Queue = Departments> {
    app: AppState,
    limits: Limits,
    queue: Q,
    tasks: tokio::task::JoinSet<crate::usecases::Result<AttemptOutcome>>,
    departments: HashMap<tokio::task::Id, String>,
    in_flight: HashMap<String, usize>,
    failing: HashSet<String>,
}

impl Dispatcher<Departments> {
    /// A dispatcher of department events with nothing under way.
    pub fn new(app: AppState, limits: Limits) -> Dispatcher {
        Dispatcher::with_queue(app, limits, Departments)
    }
}

impl<Q: Queue> Dispatcher<Q> {
    /// A dispatcher of `queue` with nothing under way.
    pub fn with_queue(app: AppState, limits: Limits, queue: Q) -> Dispatcher<Q> {
        Dispatcher {
            app,
            limits,
            queue,
            tasks: tokio::task::JoinSet::new(),
            departments: HashMap::new(),
            in_flight: HashMap::new(),
            failing: HashSet::new(),
        }
    }

    /// Attempts under way.
    pub fn under_way(&self) -> usize {
        self.tasks.len()
    }

    /// Attempts under way to one department.
    pub fn under_way_to(&self, department: &str) -> usize {
        self.in_flight.get(department).copied().unwrap_or(0)
    }

    /// How many attempts a department may have under way.
    fn capacity(&self, department: &str) -> usize {
        if self.failing.contains(department) {
            1
        } else {
            self.limits.per_department
        }
    }

    /// How many events one claim asks for: no more than one department may start (the
    /// rest would be given back at once, an extra write each), and at most 32.
    fn claim_size(&self, room: usize) -> i64 {
        room.min(self.limits.per_department.max(1)).min(32) as i64
    }

    fn full(&self, department: &str) -> bool {
        self.under_way_to(department) >= self.capacity(department)
    }

    /// Claims the events due at `now` that can start now and starts them; returns how
    /// many started. Events claimed beyond a department's share are given back at once.
    pub async fn start_due(&mut self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut started = 0;
        loop {
            let room = self.limits.overall.saturating_sub(self.tasks.len());
            if room == 0 {
                return Ok(started);
            }
            let skip: Vec<String> = self
                .in_flight
                .keys()
                .filter(|d| self.full(d))
                .cloned()
                .collect();
            let batch = self
                .queue
                .claim(&self.app, now, now + LEASE, self.claim_size(room), &skip)
                .await?;
            if batch.is_empty() {
                return Ok(started);
            }
            let mut give_back = Vec::new();
            for d in batch {
                let department = self.queue.target(&d);
                if self.full(&department) || self.tasks.len() >= self.limits.overall {
                    give_back.push(self.queue.id(&d));
                    continue;
                }
                *self.in_flight.entry(department.clone()).or_default() += 1;
                let app = self.app.clone();
                let queue = self.queue.clone();
                let task = self
                    .tasks
                    .spawn(async move { queue.attempt(&app, d, now).await });
                self.departments.insert(task.id(), department);
                started += 1;
            }
            self.queue.release(&self.app, &give_back).await?;
        }
    }

    fn finished(
        &mut self,
        joined: Result<
            (tokio::task::Id, crate::usecases::Result<AttemptOutcome>),
            tokio::task::JoinError,
        >,
        report: &mut Report,
    ) {
        let (id, outcome) = match joined {
            Ok(x) => (x.0, Some(x.1)),
            Err(e) => {
                tracing::warn!(error = %e, "delivery task failed");
                (e.id(), None)
            }
        };
        let Some(department) = self.departments.remove(&id) else {
            return;
        };
        if let Some(n) = self.in_flight.get_mut(&department) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(&department);
            }
        }
        match outcome {
            Some(Ok(AttemptOutcome::Delivered)) => {
                report.delivered += 1;
                self.failing.remove(&department);
            }
            Some(Ok(AttemptOutcome::RetryAt(_))) => {
                report.retrying += 1;
                self.failing.insert(department);
            }
            Some(Ok(AttemptOutcome::Dead)) => {
                report.dead += 1;
                self.failing.insert(department);
            }
            Some(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "delivery bookkeeping failed")
            }
            None => {}
        }
    }

    /// Whether an attempt is under way.
    pub fn busy(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// Waits for the next attempt under way to end (at once `None` when none is).
    pub async fn join_one(&mut self) -> Option<Report> {
        let joined = self.tasks.join_next_with_id().await?;
        let mut report = Report::default();
        self.finished(joined, &mut report);
        Some(report)
    }

    /// Collects the attempts that have ended, without waiting.
    pub fn reap(&mut self) -> Report {
        let mut report = Report::default();
        while let Some(joined) = self.tasks.try_join_next_with_id() {
            self.finished(joined, &mut report);
        }
        report
    }

    /// Waits for every attempt under way.
    pub async fn drain(&mut self) -> Report {
        let mut report = Report::default();
        while let Some(joined) = self.tasks.join_next_with_id().await {
            self.finished(joined, &mut report);
        }
        report
    }
}

/// Delivers every push event due at `now` and waits for every attempt, returning what
/// happened (for tests and one-off runs; the background loop does not wait).
pub async fn deliver_due(app: &AppState, now: DateTime<Utc>) -> anyhow::Result<Report> {
    let mut d = Dispatcher::new(app.clone(), Limits::from_settings(app));
    let mut report = Report::default();
    loop {
        let started = d.start_due(now).await?;
        let r = d.drain().await;
        report.delivered += r.delivered;
        report.retrying += r.retrying;
        report.dead += r.dead;
        if started == 0 {
            return Ok(report);
        }
    }
}

/// The background loop: looks for due deliveries every `delivery_poll_ms` (and reloads
/// the signing keys every minute) until `stop` is cancelled, then lets the attempts
/// under way finish (at most the send timeout and a little).
pub async fn run(app: AppState, stop: tokio_util::sync::CancellationToken) {
    let poll = Duration::from_millis(app.settings.exchange.delivery_poll_ms.max(1));
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dispatcher = Dispatcher::new(app.clone(), Limits::from_settings(&app));
    let mut last_refresh = std::time::Instant::now();
    let mut failed_pass = false;
    // The regional cascade has a loop of its own: a pass of it (a sweep of history not
    // yet queued, its claims) awaited in this loop held up every department's next
    // delivery until it ended. Behind a backlog of imported cases that was most of the
    // time: 5 deliveries/s on PostgreSQL and 0.1/s on SQLite under S5's load.
    let region = crate::region::RegionWorker::start(&app).map(|mut r| {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => r.pass(Utc::now()).await,
                }
            }
            let _ = tokio::time::timeout(
                crate::usecases::deliver::SEND_TIMEOUT + Duration::from_secs(5),
                r.drain(),
            )
            .await;
        })
    });
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            // An attempt ended: its department has room for the next event now, not at
            // the next tick (otherwise one department gets at most
            // `delivery_per_department` deliveries per poll).
            Some(_) = dispatcher.join_one(), if dispatcher.busy() => {
                dispatcher.reap();
                let _ = dispatcher.start_due(Utc::now()).await;
            }
            _ = tick.tick() => {
                dispatcher.reap();
                if last_refresh.elapsed() >= Duration::from_secs(60) {
                    last_refresh = std::time::Instant::now();
                    if let Err(e) = app.keys.refresh(app.store.as_ref()).await {
                        tracing::warn!(error = %format!("{e:#}"), "cannot reload signing keys");
                    }
                }
                match dispatcher.start_due(Utc::now()).await {
                    Ok(_) if failed_pass => {
                        failed_pass = false;
                        tracing::info!("delivery passes work again");
                    }
                    Ok(_) => {}
                    // Logged once per outage, not on every pass.
                    Err(e) if !failed_pass => {
                        failed_pass = true;
                        tracing::warn!(error = %format!("{e:#}"), "delivery pass failed");
                    }
                    Err(_) => {}
                }
            }
        }
    }
    if let Some(r) = region {
        let _ = r.await;
    }
    let _ = tokio::time::timeout(
        crate::usecases::deliver::SEND_TIMEOUT + Duration::from_secs(5),
        dispatcher.drain(),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_runs_out_after_nine_retries() {
        let now = Utc::now();
        match next_after_failure(1, now, 0.0) {
            AttemptOutcome::RetryAt(t) => assert_eq!((t - now).num_seconds(), 5),
            other => panic!("{other:?}"),
        }
        match next_after_failure(9, now, 0.0) {
            AttemptOutcome::RetryAt(t) => assert_eq!((t - now).num_hours(), 24),
            other => panic!("{other:?}"),
        }
        assert_eq!(next_after_failure(10, now, 0.0), AttemptOutcome::Dead);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let now = Utc::now();
        for (i, &base) in SCHEDULE_SECS.iter().enumerate() {
            let attempt = i as i32 + 1;
            let base_ms = base * 1000;
            // Jitter beyond ±10 % is clamped to it; within, it scales the wait.
            for (jitter, expected_ms) in [
                (-0.5, base_ms * 9 / 10),
                (-0.1, base_ms * 9 / 10),
                (0.0, base_ms),
                (0.05, base_ms * 21 / 20),
                (0.1, base_ms * 11 / 10),
                (0.5, base_ms * 11 / 10),
            ] {
                let AttemptOutcome::RetryAt(t) = next_after_failure(attempt, now, jitter) else {
                    panic!("attempt {attempt} is within the schedule and must be retried");
                };
                let waited = (t - now).num_milliseconds();
                // Float arithmetic may land a millisecond short of the exact figure.
                assert!(
                    (waited - expected_ms).abs() <= 1,
                    "attempt {attempt}, jitter {jitter}: waited {waited} ms, expected {expected_ms} ms"
                );
            }
        }
    }

    #[test]
    fn plain_http_needs_permission() {
        assert!(endpoint_allowed("https://dept.example/events", false));
        assert!(!endpoint_allowed("http://dept.example/events", false));
        assert!(endpoint_allowed("http://127.0.0.1:9000/events", true));
        assert!(!endpoint_allowed("ftp://x", true));
    }
}
