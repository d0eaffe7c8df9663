//! The regional platform (接入自治区平台) for operators: what was sent, what failed (with
//! the last error), what is pending, and redelivery of one or all dead reports.
//!
//! - `GET /api/ops/v1/region`, `POST /api/ops/v1/region/reports/{id}/redeliver`,
//!   `POST /api/ops/v1/region/redeliver` (JSON, operator session);
//! - `GET /ops/region` and its two POST forms (CSRF token), the same through a page.

use std::collections::HashMap;

use crate::http::path::Path;
use axum::Json;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{AppError, AppResult, Message};
use super::openapi::{Problem, RoleErrors};
use super::pages::PageCtx;
use super::pages::desk::local_time;
use crate::auth::extract::Operator;
use crate::state::AppState;
use crate::store::{RegionCount, RegionReport};

/// The delivery states a report can be in.
const STATES: [&str; 3] = ["pending", "delivered", "dead"];
/// How many reports a list shows.
const SHOWN: i64 = 200;

/// `?state=`
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RegionQuery {
    /// Only reports in this delivery state: `pending`, `delivered` or `dead`.
    state: Option<String>,
}

/// Reports of one kind in one state.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionCountView {
    /// `case_report` (办件信息汇聚) or `catalogue_change` (目录同步).
    #[schema(example = "case_report")]
    pub kind: String,
    /// `pending`, `delivered` or `dead`.
    #[schema(example = "delivered")]
    pub state: String,
    /// How many.
    pub count: i64,
}

impl From<RegionCount> for RegionCountView {
    fn from(c: RegionCount) -> Self {
        RegionCountView {
            kind: c.kind,
            state: c.state,
            count: c.count,
        }
    }
}

/// One report to the regional platform with its delivery state.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionReportView {
    /// The report id (= CloudEvents `id` = `webhook-id`; the region dedupes on it).
    pub id: Uuid,
    /// `case_report` or `catalogue_change`.
    pub kind: String,
    /// The case number (case reports).
    #[schema(required = true)]
    pub case_no: Option<String>,
    /// The stage (case reports): the gateway's action code.
    #[schema(required = true)]
    pub stage: Option<String>,
    /// The resource code (catalogue changes).
    #[schema(required = true)]
    pub resource_code: Option<String>,
    /// The resource version (catalogue changes).
    #[schema(required = true)]
    pub resource_version: Option<String>,
    /// The report in the gateway's field names (the mapping renames them when sending).
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Queued.
    pub created_at: DateTime<Utc>,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i32,
    /// When the next attempt is due.
    #[schema(required = true)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The region's last HTTP status.
    #[schema(required = true)]
    pub last_status: Option<i32>,
    /// What went wrong last.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When it was delivered.
    #[schema(required = true)]
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<RegionReport> for RegionReportView {
    fn from(r: RegionReport) -> Self {
        let text = |k: &str| r.payload.get(k).and_then(Value::as_str).map(str::to_owned);
        RegionReportView {
            id: r.id,
            case_no: text("case_no"),
            stage: text("stage"),
            kind: r.kind,
            resource_code: r.resource_code,
            resource_version: r.resource_version,
            payload: r.payload,
            created_at: r.created_at,
            state: r.state,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_status: r.last_status,
            last_error: r.last_error,
            delivered_at: r.delivered_at,
        }
    }
}

/// The regional platform's queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionOverview {
    /// Whether a regional platform is configured (`region_enabled` and
    /// `region_push_url`); without one nothing is queued.
    pub configured: bool,
    /// Where reports go.
    #[schema(required = true)]
    pub push_url: Option<String>,
    /// Reports by kind and delivery state.
    pub counts: Vec<RegionCountView>,
    /// Reports, newest first (at most 200), in the state asked for.
    pub items: Vec<RegionReportView>,
}

/// `GET /api/ops/v1/region?state=dead`: the regional platform's queue.
#[utoipa::path(
    get,
    path = "/api/ops/v1/region",
    tag = "operator",
    operation_id = "regionOverview",
    summary = "Reports to the regional platform",
    description = "What was sent to the autonomous region's platform (case reports, one per \
        stage of a case, and catalogue changes), what is pending and what failed with its last \
        error; filtered by delivery state.",
    params(RegionQuery),
    responses(
        (status = 200, description = "The queue.", body = RegionOverview),
        (status = 400, description = "An unknown query parameter."),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn overview(
    State(app): State<AppState>,
    _op: Operator,
    Query(q): Query<RegionQuery>,
) -> AppResult<Json<RegionOverview>> {
    let state = q.state.filter(|s| STATES.contains(&s.as_str()));
    let counts = app.store.region_counts().await?;
    let items = app.store.region_reports(state.as_deref(), SHOWN).await?;
    let r = &app.settings.region;
    Ok(Json(RegionOverview {
        configured: r.configured(),
        push_url: r.configured().then(|| r.region_push_url.clone()),
        counts: counts.into_iter().map(Into::into).collect(),
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// How many reports went back into the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionRedelivered {
    /// How many.
    pub redelivered: u64,
}

fn not_dead() -> AppError {
    AppError::Conflict(Message::new(
        "只有投递失败（死信）的报送可以重新投递。",
        "Only a dead-lettered report can be redelivered.",
    ))
}

/// `POST /api/ops/v1/region/reports/{id}/redeliver`: one dead report back into the queue.
#[utoipa::path(
    post,
    path = "/api/ops/v1/region/reports/{id}/redeliver",
    tag = "operator",
    operation_id = "regionRedeliverReport",
    summary = "Redeliver a dead report to the region",
    description = "Puts a dead-lettered report back into the queue; its attempt numbers \
        continue and the retry schedule starts again.",
    params(("id" = Uuid, Path, description = "The report's id.")),
    responses(
        (status = 200, description = "Queued again.", body = RegionRedelivered),
        RoleErrors,
        (status = 409, description = "The report is not dead-lettered.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn redeliver_one(
    State(app): State<AppState>,
    _op: Operator,
    Path(id): Path<Uuid>,
) -> AppResult<Json<RegionRedelivered>> {
    let n = app.store.redeliver_region(Some(id)).await?;
    if n == 0 {
        return Err(not_dead());
    }
    tracing::info!(report = %id, "region redelivery requested");
    Ok(Json(RegionRedelivered { redelivered: n }))
}

/// `POST /api/ops/v1/region/redeliver`: every dead report back into the queue.
#[utoipa::path(
    post,
    path = "/api/ops/v1/region/redeliver",
    tag = "operator",
    operation_id = "regionRedeliverAll",
    summary = "Redeliver every dead report to the region",
    description = "Puts every dead-lettered report back into the queue (once the region \
        is reachable again); answers how many.",
    responses(
        (status = 200, description = "Queued again (possibly none).", body = RegionRedelivered),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn redeliver_all(
    State(app): State<AppState>,
    _op: Operator,
) -> AppResult<Json<RegionRedelivered>> {
    let n = app.store.redeliver_region(None).await?;
    tracing::info!(
        reports = n,
        "region redelivery of every dead report requested"
    );
    Ok(Json(RegionRedelivered { redelivered: n }))
}

/// The page routes.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/ops/region", get(page))
        .route(
            "/ops/region/reports/{id}/redeliver",
            post(page_redeliver_one),
        )
        .route("/ops/region/redeliver", post(page_redeliver_all))
}

/// `?state=&done=`
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    state: Option<String>,
    done: Option<u64>,
}

/// Counts as a table: one row per kind, one column per state. Pure.
pub fn count_table(counts: &[RegionCount]) -> Vec<Value> {
    ["case_report", "catalogue_change"]
        .iter()
        .map(|kind| {
            let n = |state: &str| {
                counts
                    .iter()
                    .filter(|c| c.kind == *kind && c.state == state)
                    .map(|c| c.count)
                    .sum::<i64>()
            };
            json!({
                "kind": kind,
                "pending": n("pending"),
                "delivered": n("delivered"),
                "dead": n("dead"),
            })
        })
        .collect()
}

/// `GET /ops/region`.
pub async fn page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Query(q): Query<PageQuery>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    let state = q.state.filter(|s| STATES.contains(&s.as_str()));
    let counts = app.store.region_counts().await?;
    let rows = app.store.region_reports(state.as_deref(), SHOWN).await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let v = RegionReportView::from(r);
            json!({
                "id": v.id,
                "kind": v.kind,
                "subject": v.case_no.clone().or(v.resource_code.clone()).unwrap_or_default(),
                "detail": v.stage.clone().or(v.resource_version.clone()).unwrap_or_default(),
                "created": local_time(v.created_at),
                "state": v.state,
                "attempts": v.attempts,
                "next_attempt": v.next_attempt_at.map(local_time),
                "last_status": v.last_status,
                "last_error": v.last_error,
            })
        })
        .collect();
    let dead: i64 = counts
        .iter()
        .filter(|c| c.state == "dead")
        .map(|c| c.count)
        .sum();
    let r = &app.settings.region;
    let sim = crate::demo_region::figures();
    Ok(ctx.render(
        StatusCode::OK,
        "region/ops.html",
        context! {
            configured => r.configured(),
            push_url => r.region_push_url.clone(),
            counts => count_table(&counts),
            dead,
            items,
            states => STATES,
            state => state.unwrap_or_default(),
            shown => SHOWN,
            done => q.done,
            sim,
        },
    ))
}

fn back_to(form: &HashMap<String, String>, n: u64) -> Response {
    let back = super::pages::local_path(form.get("back").map(String::as_str));
    let path = back.split('?').next().unwrap_or("");
    let base = if path == "/ops/region" {
        back.split('&')
            .filter(|kv| !kv.contains("done="))
            .collect::<Vec<_>>()
            .join("&")
    } else {
        "/ops/region".to_owned()
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{base}{sep}done={n}")).into_response()
}

/// `POST /ops/region/reports/{id}/redeliver`.
pub async fn page_redeliver_one(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path(id): Path<Uuid>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    if let Err(r) = ctx.form_user(who, true, &form) {
        return Ok(*r);
    }
    let n = app.store.redeliver_region(Some(id)).await?;
    if n == 0 {
        return Err(not_dead());
    }
    tracing::info!(report = %id, "region redelivery requested");
    Ok(back_to(&form, n))
}

/// `POST /ops/region/redeliver`.
pub async fn page_redeliver_all(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    if let Err(r) = ctx.form_user(who, true, &form) {
        return Ok(*r);
    }
    let n = app.store.redeliver_region(None).await?;
    tracing::info!(
        reports = n,
        "region redelivery of every dead report requested"
    );
    Ok(back_to(&form, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_become_one_row_per_kind() {
        let c = |kind: &str, state: &str, count| RegionCount {
            kind: kind.into(),
            state: state.into(),
            count,
        };
        let t = count_table(&[
            c("case_report", "delivered", 5),
            c("case_report", "dead", 1),
            c("catalogue_change", "pending", 2),
        ]);
        assert_eq!(
            t,
            vec![
                json!({ "kind": "case_report", "pending": 0, "delivered": 5, "dead": 1 }),
                json!({ "kind": "catalogue_change", "pending": 2, "delivered": 0, "dead": 0 }),
            ]
        );
    }
}
