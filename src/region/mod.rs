//! The cascade to the autonomous region's platform (接入自治区平台).
//!
//! - **Case reports** (办件信息汇聚): one per case history entry (submitted, accepted, each
//!   processing step, the conclusion), queued by [`sweep`] from the case history the
//!   case transaction wrote, so no case change is missed and none is reported twice (one
//!   row per history entry, unique in the store).
//! - **Catalogue changes** (目录同步): [`queue_catalogue_change`] queues one resource
//!   version (unique per code and version); at start [`queue_catalogue`] queues the TOML
//!   catalogue's resources the region has not received.
//!
//! Both go through the department exchange's machinery: the worker's
//! [`Dispatcher`](crate::exchange::worker::Dispatcher) over [`RegionQueue`], a CloudEvents
//! envelope signed with the exchange's Ed25519 keys (Standard Webhooks headers, the
//! report id as `webhook-id`, so the region dedupes), the same POST, the same retry
//! schedule, dead letters and redelivery. Reports of one case (or one resource) are
//! delivered in order. The field names and code lists the region receives come from the
//! mapping file ([`mapping::RegionMapping`]), applied when sending.
//!
//! Nothing is queued unless the region is configured (`region_enabled` and
//! `region_push_url`).

pub mod mapping;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::case::{Action, CaseStatus};
use crate::domain::catalogue::Service;
use crate::exchange::worker::{Dispatcher, Limits, Queue, Report, endpoint_allowed};
use crate::state::AppState;
use crate::store::{AttemptOutcome, NewRegionReport, RegionReport, RegionStage};
use crate::usecases::deliver::{Prepared, judge_attempt, send};
use mapping::RegionMapping;

/// The target name of the regional platform in the dispatcher (its attempts are
/// limited as one department's are).
pub const TARGET: &str = "region";

/// CloudEvents type of a case report.
pub const CASE_REPORT_TYPE: &str = "cn.gov.onewindow.region.case_report.v1";
/// CloudEvents type of a catalogue change.
pub const CATALOGUE_CHANGE_TYPE: &str = "cn.gov.onewindow.region.catalogue_change.v1";

/// How far back each sweep looks for history entries not yet queued (the first sweep of
/// a process looks at the whole history).
const SWEEP_WINDOW: chrono::Duration = chrono::Duration::minutes(10);
const SWEEP_BATCH: i64 = 500;

/// The mapping file the settings name.
pub fn mapping_path(app_settings: &crate::config::Settings) -> std::path::PathBuf {
    let r = &app_settings.region;
    if r.region_mapping.trim().is_empty() {
        app_settings
            .server
            .definitions_dir
            .join("region-mapping.toml")
    } else {
        std::path::PathBuf::from(&r.region_mapping)
    }
}

/// A case report in the gateway's field names (the mapping renames them when sending).
/// Pure.
pub fn case_report(id: Uuid, s: &RegionStage, service: Option<&Service>) -> Value {
    let stage = s
        .action
        .clone()
        .unwrap_or_else(|| Action::Submit.code().to_owned());
    let concluded = CaseStatus::from_code(&s.to_status).is_some_and(|st| st.is_terminal());
    let limit = |f: fn(&Service) -> crate::domain::catalogue::TimeLimit| {
        service.map(|sv| {
            let l = f(sv);
            (json!(l.value), json!(l.unit))
        })
    };
    let (legal, legal_unit) = limit(|sv| sv.guide.legal_limit).unwrap_or_default();
    let (promised, promised_unit) = limit(|sv| sv.guide.promised_limit).unwrap_or_default();
    json!({
        "report_id": id.to_string(),
        "case_no": s.case_no,
        "query_code": s.query_code,
        "item_code": s.service_code,
        "item_name": service.map(|sv| sv.name.clone()),
        "department": s.department,
        "stage_seq": s.seq,
        "stage": stage,
        "stage_time": s.at,
        "stage_result": s.to_status,
        "accepted_on": s.accepted_on,
        "legal_limit": legal,
        "legal_limit_unit": legal_unit,
        "promised_limit": promised,
        "promised_limit_unit": promised_unit,
        "legal_due_on": s.legal_due_on,
        "promised_due_on": s.due_on,
        "concluded": concluded,
        "conclusion": if concluded { json!(s.to_status) } else { Value::Null },
    })
}

/// Queues a report for every case history entry not yet queued (at `since` or later,
/// when given); how many. Does nothing unless the region is configured.
pub async fn sweep(app: &AppState, since: Option<DateTime<Utc>>) -> anyhow::Result<usize> {
    sweep_some(app, since, &mut None, usize::MAX).await
}

/// [`sweep`], at most `batches` batches of [`SWEEP_BATCH`] stages: the background pass
/// queues a backlog (an import of old cases) a little at a time, so the worker loop it
/// shares with the department deliveries (and shutdown) never waits on all of it.
/// `after` is where the previous batch ended; it moves on with each batch, and is
/// `None` again once the sweep has seen everything.
pub async fn sweep_some(
    app: &AppState,
    since: Option<DateTime<Utc>>,
    after: &mut Option<crate::store::region::StageKey>,
    batches: usize,
) -> anyhow::Result<usize> {
    if !app.settings.region.configured() {
        return Ok(0);
    }
    let mut total = 0;
    for _ in 0..batches {
        let stages = app
            .store
            .unqueued_stages(since, *after, SWEEP_BATCH)
            .await?;
        if stages.is_empty() {
            *after = None;
            return Ok(total);
        }
        *after = stages.last().map(|s| crate::store::region::StageKey {
            at: s.at,
            case_id: s.case_id,
            seq: s.seq,
        });
        let now = Utc::now();
        let rows: Vec<NewRegionReport> = stages
            .iter()
            .map(|s| {
                let id = Uuid::now_v7();
                NewRegionReport {
                    id,
                    kind: "case_report",
                    order_key: format!("case:{}", s.case_id),
                    seq: s.seq,
                    case_id: Some(s.case_id),
                    case_seq: Some(s.seq),
                    resource_code: None,
                    resource_version: None,
                    payload: case_report(id, s, app.catalogue.service(&s.service_code)),
                    created_at: now,
                }
            })
            .collect();
        total += app.store.queue_region(&rows).await? as usize;
        if (stages.len() as i64) < SWEEP_BATCH {
            *after = None;
            return Ok(total);
        }
    }
    Ok(total)
}

/// Queues one catalogue change for the region: resource `code` at `version`, with its
/// JSON. A version already queued (or sent) is not queued again. Returns whether it was
/// queued; false as well when no region is configured. The catalogue's publish step
/// calls this for each published version.
pub async fn queue_catalogue_change(
    app: &AppState,
    code: &str,
    version: &str,
    resource: &Value,
) -> anyhow::Result<bool> {
    if !app.settings.region.configured() {
        return Ok(false);
    }
    let id = Uuid::now_v7();
    let now = Utc::now();
    let payload = json!({
        "report_id": id.to_string(),
        "resource_code": code,
        "resource_version": version,
        "resource_name": resource.get("name"),
        "provider": resource.get("provider"),
        "changed_at": now,
        "resource": resource,
    });
    let row = NewRegionReport {
        id,
        kind: "catalogue_change",
        order_key: format!("resource:{code}"),
        seq: 0,
        case_id: None,
        case_seq: None,
        resource_code: Some(code.to_owned()),
        resource_version: Some(version.to_owned()),
        payload,
        created_at: now,
    };
    Ok(app.store.queue_region(&[row]).await? == 1)
}

/// The version of a resource as the TOML catalogue holds it: `toml-` and the first 16
/// hex digits of the SHA-256 of its JSON. Pure.
pub fn toml_version(resource: &Value) -> String {
    use sha2::Digest;
    let bytes = serde_json::to_vec(resource).unwrap_or_default();
    format!("toml-{}", &hex::encode(sha2::Sha256::digest(&bytes))[..16])
}

/// Queues the TOML catalogue's resources the region has not received (at start); how
/// many were queued.
pub async fn queue_catalogue(app: &AppState) -> anyhow::Result<usize> {
    let mut n = 0;
    for r in app.catalogue.resources().iter() {
        let json = serde_json::to_value(&**r)?;
        if queue_catalogue_change(app, &r.code, &toml_version(&json), &json).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// At start, when a region is configured: checks the mapping file (a gateway with a
/// region and no valid mapping does not start) and queues the TOML catalogue's resources
/// the region has not received.
pub async fn start(app: &AppState) -> anyhow::Result<()> {
    if RegionQueue::from_settings(app)?.is_none() {
        return Ok(());
    }
    let queued = queue_catalogue(app)
        .await
        .map_err(|e| anyhow::anyhow!("cannot queue the catalogue for the region: {e:#}"))?;
    tracing::info!(catalogue_changes = queued, "regional platform configured");
    Ok(())
}

/// The regional platform's reports, as a [`Queue`] for the exchange's dispatcher.
#[derive(Clone)]
pub struct RegionQueue {
    endpoint: String,
    mapping: Arc<RegionMapping>,
}

impl RegionQueue {
    /// The queue for the configured region; `None` when none is configured.
    pub fn from_settings(app: &AppState) -> anyhow::Result<Option<RegionQueue>> {
        let r = &app.settings.region;
        if !r.configured() {
            return Ok(None);
        }
        let path = mapping_path(&app.settings);
        let mapping = RegionMapping::load(&path)
            .map_err(|errs| anyhow::anyhow!("{}: {}", path.display(), errs.join("; ")))?;
        Ok(Some(RegionQueue {
            endpoint: r.region_push_url.trim().to_owned(),
            mapping: Arc::new(mapping),
        }))
    }

    /// The CloudEvents envelope of a report, in the region's names. Pure.
    pub fn envelope(&self, public_url: &str, r: &RegionReport) -> Value {
        let (kind, data, subject) = if r.kind == "catalogue_change" {
            (
                CATALOGUE_CHANGE_TYPE,
                self.mapping.catalogue_change(&r.payload),
                r.resource_code.clone().unwrap_or_default(),
            )
        } else {
            (
                CASE_REPORT_TYPE,
                self.mapping.case_report(&r.payload),
                r.payload["case_no"].as_str().unwrap_or("").to_owned(),
            )
        };
        json!({
            "specversion": "1.0",
            "id": r.id.to_string(),
            "source": format!("{}/", public_url.trim_end_matches('/')),
            "type": kind,
            "subject": subject,
            "time": r.created_at,
            "datacontenttype": "application/json",
            "data": data,
        })
    }
}

#[async_trait::async_trait]
impl Queue for RegionQueue {
    type Job = RegionReport;

    fn target(&self, _job: &RegionReport) -> String {
        TARGET.to_owned()
    }

    fn id(&self, job: &RegionReport) -> Uuid {
        job.id
    }

    async fn claim(
        &self,
        app: &AppState,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        skip: &[String],
    ) -> anyhow::Result<Vec<RegionReport>> {
        if skip.iter().any(|t| t == TARGET) {
            return Ok(Vec::new());
        }
        Ok(app.store.claim_region(now, lease_until, limit).await?)
    }

    async fn release(&self, app: &AppState, ids: &[Uuid]) -> anyhow::Result<()> {
        Ok(app.store.release_region(ids).await?)
    }

    async fn attempt(
        &self,
        app: &AppState,
        r: RegionReport,
        now: DateTime<Utc>,
    ) -> crate::usecases::Result<AttemptOutcome> {
        let started = Instant::now();
        let sent = if endpoint_allowed(&self.endpoint, app.settings.exchange.exchange_allow_http) {
            let event = self.envelope(app.settings.server.public_url.as_str(), &r);
            match serde_json::to_vec(&event) {
                Ok(body) => {
                    let headers = app
                        .keys
                        .with(|ring| ring.sign(&r.id.to_string(), Utc::now().timestamp(), &body));
                    send(
                        &app.http,
                        Prepared {
                            endpoint: self.endpoint.clone(),
                            body,
                            headers,
                        },
                    )
                    .await
                }
                Err(e) => Err(e.to_string()),
            }
        } else {
            Err(
                "the region's push URL is not https (plain http is not allowed by configuration)"
                    .into(),
            )
        };
        let latency_ms = started.elapsed().as_millis() as i64;
        let jitter = rand::thread_rng().gen_range(-0.1..=0.1);
        let (row, outcome) =
            judge_attempt(r.attempts, r.retry_from, &sent, now, latency_ms, jitter);
        app.store.finish_region_attempt(r.id, &row, outcome).await?;
        let kind = match outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::RetryAt(_) => "retry",
            AttemptOutcome::Dead => "dead",
        };
        metrics::counter!("onewindow_region_reports_total", "outcome" => kind).increment(1);
        if outcome == AttemptOutcome::Dead {
            tracing::warn!(report = %r.id, kind = %r.kind, attempts = row.attempt, "region report dead-lettered");
        }
        Ok(outcome)
    }
}

/// The region's part of the exchange worker: each pass queues the new case history
/// entries and starts the due deliveries.
pub struct RegionWorker {
    app: AppState,
    dispatcher: Dispatcher<RegionQueue>,
    swept: Option<DateTime<Utc>>,
    /// Where a sweep that has not yet seen everything goes on from.
    sweeping: Option<crate::store::region::StageKey>,
    failed: bool,
}

impl RegionWorker {
    /// The worker when a region is configured (a mapping that cannot be read is logged
    /// and leaves the region unserved; `Application::build` refuses it earlier).
    pub fn start(app: &AppState) -> Option<RegionWorker> {
        match RegionQueue::from_settings(app) {
            Ok(Some(queue)) => Some(RegionWorker {
                app: app.clone(),
                dispatcher: Dispatcher::with_queue(app.clone(), Limits::from_settings(app), queue),
                swept: None,
                sweeping: None,
                failed: false,
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "the regional platform is not served");
                None
            }
        }
    }

    /// One pass at `now`: sweep, reap, start what is due.
    pub async fn pass(&mut self, now: DateTime<Utc>) {
        self.dispatcher.reap();
        let since = self.swept.map(|t| t - SWEEP_WINDOW);
        let result = async {
            sweep_some(&self.app, since, &mut self.sweeping, 1).await?;
            self.dispatcher.start_due(now).await?;
            anyhow::Ok(())
        }
        .await;
        match result {
            // A sweep under way: it goes on after its last entry next pass.
            Ok(()) if self.sweeping.is_some() => {}
            Ok(_) => {
                self.swept = Some(now);
                if self.failed {
                    self.failed = false;
                    tracing::info!("region passes work again");
                }
            }
            Err(e) if !self.failed => {
                self.failed = true;
                tracing::warn!(error = %format!("{e:#}"), "region pass failed");
            }
            Err(_) => {}
        }
    }

    /// Waits for the attempts under way.
    pub async fn drain(&mut self) -> Report {
        self.dispatcher.drain().await
    }
}

/// Queues what is new and delivers every report due at `now`, waiting for each attempt
/// (for tests and one-off runs; the background worker does not wait).
pub async fn deliver_due(app: &AppState, now: DateTime<Utc>) -> anyhow::Result<Report> {
    let Some(queue) = RegionQueue::from_settings(app)? else {
        return Ok(Report::default());
    };
    sweep(app, None).await?;
    let mut d = Dispatcher::with_queue(app.clone(), Limits::from_settings(app), queue);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(action: Option<&str>, to: &str) -> RegionStage {
        RegionStage {
            case_id: Uuid::now_v7(),
            seq: 3,
            at: Utc::now(),
            action: action.map(str::to_owned),
            to_status: to.into(),
            case_no: "2026000001".into(),
            query_code: "QC1234".into(),
            service_code: "S1".into(),
            department: "D1".into(),
            accepted_on: None,
            due_on: None,
            legal_due_on: None,
        }
    }

    #[test]
    fn a_report_names_its_stage_result_and_conclusion() {
        let id = Uuid::now_v7();
        let r = case_report(id, &stage(None, "submitted"), None);
        assert_eq!(r["stage"], "submit", "the creating entry is the submission");
        assert_eq!(r["stage_result"], "submitted");
        assert_eq!(r["concluded"], false);
        assert!(r["conclusion"].is_null());
        assert_eq!(r["report_id"], id.to_string());
        for f in mapping::CASE_REPORT_FIELDS {
            assert!(r.get(f).is_some(), "{f} missing from {r}");
        }
        let r = case_report(id, &stage(Some("conclude"), "approved"), None);
        assert_eq!(
            (r["concluded"].clone(), r["conclusion"].clone()),
            (json!(true), json!("approved"))
        );
        assert_eq!(r["stage_seq"], 3);
    }

    #[test]
    fn toml_versions_follow_the_content() {
        let a = toml_version(&json!({ "code": "x", "name": "一" }));
        assert_eq!(a, toml_version(&json!({ "code": "x", "name": "一" })));
        assert_ne!(a, toml_version(&json!({ "code": "x", "name": "二" })));
        assert!(a.starts_with("toml-") && a.len() == 21);
    }
}
