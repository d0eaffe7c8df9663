//! See `super`. The assessment figures (考核评价):
//!
//! - `GET /api/ops/v1/supervision/figures?month=YYYY-MM`: every department ranked, with
//!   its counts, rates, scored parts and the weights (no month: everything up to now);
//! - `GET /api/ops/v1/supervision/figures/trends?months=N`: the last N months;
//! - `GET /api/ops/v1/supervision/figures/export?month=YYYY-MM&format=csv|xlsx`: the
//!   monthly export for the report to the city (one row per department, then the city);
//! - `GET /api/ops/v1/supervision/figures/departments/{uscc}?month=`: one department's
//!   figures with the records behind them (systems, cases, reads, progress report);
//! - `GET /api/staff/v1/supervision/figures?month=`: the same for the officer's own department;
//! - pages `/ops/supervision/figures` (ranking, weights, trends as SVG charts),
//!   `/ops/supervision/figures/{uscc}` and `/desk/supervision/figures` (the records behind).

use std::collections::HashMap;

use crate::http::path::Path;
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use minijinja::context;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{DepartmentOfficer, Operator};
use crate::domain::lang::Lang;
use crate::http::AcceptLang;
use crate::http::error::{AppError, AppResult, Message};
use crate::http::openapi::RoleErrors;
use crate::http::pages::PageCtx;
use crate::state::AppState;
use crate::store::sup_figures::{DepartmentTrace, Window};
use crate::supervision::figures::{
    self as fig, Assessment, MonthFigures, Ranked, Weights, export_csv, export_headers,
    export_rows, export_xlsx,
};

/// Cases listed at most behind one department's figures.
const CASES_LISTED: i64 = 200;
/// Months of trends by default, and at most.
const TREND_MONTHS: usize = 12;
const TREND_MONTHS_MAX: usize = 36;

/// Operator API routes.
pub fn operator_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ranking))
        .routes(routes!(trends))
        .routes(routes!(export))
        .routes(routes!(department))
}

/// Department-officer API routes.
pub fn staff_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(own_department))
}

/// Pages.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/ops/supervision/figures", get(ranking_page))
        .route("/ops/supervision/figures/{uscc}", get(department_page))
        .route("/desk/supervision/figures", get(desk_page))
}

// ---- the period -----------------------------------------------------------------------

fn weights(app: &AppState) -> Weights {
    Weights::from(&app.settings.assessment)
}

/// The period a `month` parameter names (none or empty: everything up to now).
fn period(q: &HashMap<String, String>, now: DateTime<Utc>) -> AppResult<(String, Window)> {
    match q.get("month").map(|m| m.trim()).filter(|m| !m.is_empty()) {
        None => Ok(("live".to_owned(), fig::live_window(now))),
        Some(m) => {
            let first = fig::parse_month(m, now).map_err(|e| {
                AppError::BadRequest(match e {
                    fig::MonthError::Malformed => Message::new(
                        "月份格式应为 YYYY-MM，例如 2026-11。",
                        "The month must be written YYYY-MM, for example 2026-11.",
                    ),
                    fig::MonthError::OutOfRange => Message::new(
                        "月份须在 2000 年 1 月至本月之间。",
                        "The month must lie between January 2000 and this month.",
                    ),
                })
            })?;
            Ok((
                first.format("%Y-%m").to_string(),
                fig::month_window(first, now),
            ))
        }
    }
}

fn trend_months(q: &HashMap<String, String>) -> AppResult<usize> {
    match q.get("months") {
        None => Ok(TREND_MONTHS),
        Some(m) => m
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=TREND_MONTHS_MAX).contains(n))
            .ok_or_else(|| {
                AppError::BadRequest(Message::new(
                    format!("months 应为 1 至 {TREND_MONTHS_MAX} 之间的整数。"),
                    format!("months must be a whole number from 1 to {TREND_MONTHS_MAX}."),
                ))
            }),
    }
}

async fn assess(app: &AppState, name: &str, w: &Window) -> AppResult<Assessment> {
    Ok(fig::assess(app.store.as_ref(), &app.catalogue, &weights(app), name, w).await?)
}

// ---- one department's records ---------------------------------------------------------

/// A system behind the integration and connectivity figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SystemRecord {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// active | flagged | kept | cleared | merged.
    pub status: String,
    /// Counted in the period (registered before its end, not cleared or merged by then).
    pub counted: bool,
    /// Connected to the exchange (token, push endpoint or data API).
    pub connected: bool,
    /// Meant to connect (in the connectivity denominator when counted).
    pub meant_to_connect: bool,
    /// Its last successful exchange before the period's end (token use or 2xx push).
    pub last_ok_at: Option<DateTime<Utc>>,
    /// That exchange lies within 30 days before the period's end.
    pub live: bool,
}

/// A case behind the outcome figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseRecord {
    /// Case number.
    pub case_no: String,
    /// Service code.
    pub service_code: String,
    /// Status code.
    pub status: String,
    /// Lodged.
    pub created_at: DateTime<Utc>,
    /// Promised date.
    pub due_on: Option<NaiveDate>,
    /// Concluded on.
    pub concluded_on: Option<NaiveDate>,
    /// Concluded on or before the promised date (none: not concluded or no date).
    pub on_time: Option<bool>,
    /// 1–5.
    pub rating: Option<i64>,
    /// Fields filled / prefilled.
    pub fields_filled: i64,
    /// Of which prefilled.
    pub fields_prefilled: i64,
    /// Materials.
    pub materials: i64,
    /// Of which substituted (免提交).
    pub materials_substituted: i64,
}

/// Reads of shared data for one of the department's services.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadRecord {
    /// Service code.
    pub service_code: String,
    /// Resource read.
    pub resource: String,
    /// How many reads in the period.
    pub reads: i64,
}

/// A resource the department publishes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublishedRecord {
    /// Resource code.
    pub resource: String,
    /// Its items.
    pub items: Vec<String>,
}

/// A service using another department's data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CollaborationRecord {
    /// Service code.
    pub service_code: String,
    /// The other departments' resources it prefills or substitutes from.
    pub resources: Vec<String>,
    /// Routed to more than one department (联办).
    pub joint: bool,
}

/// The progress report counted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportRecord {
    /// The month reported on.
    pub month: String,
    /// `[{task, percent, note}]`.
    pub tasks: Value,
    /// Submitted after the deadline.
    pub late: bool,
    /// When.
    pub submitted_at: DateTime<Utc>,
}

/// One department's figures with every record behind them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DepartmentFigures {
    /// `YYYY-MM` or `live`.
    pub period: String,
    /// The weights of the score.
    pub weights: Weights,
    /// The department's place, counts, rates and scored parts.
    pub figures: Ranked,
    /// Departments ranked.
    pub of: usize,
    /// Systems (integration, connectivity).
    pub systems: Vec<SystemRecord>,
    /// Catalogue resources it provides (items published).
    pub published: Vec<PublishedRecord>,
    /// Reads for its services (items consumed).
    pub reads: Vec<ReadRecord>,
    /// Services using another department's data, and joint services.
    pub collaboration: Vec<CollaborationRecord>,
    /// The progress report counted.
    pub report: Option<ReportRecord>,
    /// Cases lodged, concluded or rated in the period, newest first (at most 200).
    pub cases: Vec<CaseRecord>,
}

async fn department_figures(
    app: &AppState,
    uscc: &str,
    q: &HashMap<String, String>,
) -> AppResult<DepartmentFigures> {
    if app.catalogue.department(uscc).is_none() {
        return Err(AppError::NotFound(Message::new(
            "没有这个部门。",
            "There is no such department.",
        )));
    }
    let (name, w) = period(q, Utc::now())?;
    let a = assess(app, &name, &w).await?;
    let of = a.departments.len();
    let figures = a
        .departments
        .into_iter()
        .find(|r| r.department == uscc)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("department missing from ranking")))?;
    let services: Vec<String> = app
        .catalogue
        .services()
        .iter()
        .filter(|s| s.department == uscc)
        .map(|s| s.code.clone())
        .collect();
    let t: DepartmentTrace = app
        .store
        .department_trace(uscc, &services, &w, CASES_LISTED)
        .await?;
    let mut collaboration: Vec<CollaborationRecord> =
        fig::collaborative_services(&app.catalogue, uscc)
            .into_iter()
            .map(|(code, resources)| CollaborationRecord {
                joint: is_joint(app, &code),
                service_code: code,
                resources,
            })
            .collect();
    for code in &services {
        if is_joint(app, code) && !collaboration.iter().any(|c| &c.service_code == code) {
            collaboration.push(CollaborationRecord {
                service_code: code.clone(),
                resources: Vec::new(),
                joint: true,
            });
        }
    }
    Ok(DepartmentFigures {
        period: name,
        weights: a.weights,
        of,
        systems: t
            .systems
            .into_iter()
            .map(|s| {
                let last = s.token_ok_at.max(s.push_ok_at);
                SystemRecord {
                    id: s.id.to_string(),
                    live: s.meant && last.is_some_and(|l| l >= w.live_since),
                    name: s.name,
                    status: s.status,
                    counted: s.counted,
                    connected: s.connected,
                    meant_to_connect: s.meant,
                    last_ok_at: last,
                }
            })
            .collect(),
        published: app
            .catalogue
            .resources()
            .iter()
            .filter(|r| r.provider == uscc)
            .map(|r| PublishedRecord {
                resource: r.code.clone(),
                items: r.items.iter().map(|i| i.id.clone()).collect(),
            })
            .collect(),
        reads: t
            .reads
            .into_iter()
            .map(|r| ReadRecord {
                service_code: r.service_code.unwrap_or_default(),
                resource: r.resource,
                reads: r.n,
            })
            .collect(),
        collaboration,
        report: t.report.map(|r| ReportRecord {
            month: r.month,
            tasks: r.tasks,
            late: r.late,
            submitted_at: r.submitted_at,
        }),
        cases: t
            .cases
            .into_iter()
            .map(|c| CaseRecord {
                on_time: match (c.concluded_on, c.due_on) {
                    (Some(done), Some(due)) => Some(done <= due),
                    _ => None,
                },
                case_no: c.case_no,
                service_code: c.service_code,
                status: c.status,
                created_at: c.created_at,
                due_on: c.due_on,
                concluded_on: c.concluded_on,
                rating: c.rating,
                fields_filled: c.fields_filled,
                fields_prefilled: c.fields_prefilled,
                materials: c.materials,
                materials_substituted: c.materials_substituted,
            })
            .collect(),
        figures,
    })
}

fn is_joint(app: &AppState, code: &str) -> bool {
    app.catalogue
        .service(code)
        .is_some_and(|s| s.routing.departments.len() > 1)
}

// ---- API --------------------------------------------------------------------------------

/// `GET /api/ops/v1/supervision/figures`.
#[utoipa::path(
    get,
    path = "/api/ops/v1/supervision/figures",
    operation_id = "supervisionFigures",
    tag = "operator",
    summary = "Assessment figures and ranking",
    description = "Per department and city-wide, computed from the records (考核评价): systems \
        integrated, connectivity, shared items published and consumed, collaborative \
        applications, key-task progress, on-time rate, prefill and 免提交 reuse, rating; the \
        weighted score (weights from the configuration, in the answer) and the rank (equal \
        scores share a rank). Without `month`, everything up to now.",
    params(("month" = Option<String>, Query, description = "A month, YYYY-MM.", example = "2026-11")),
    responses(
        (status = 200, description = "The figures.", body = Assessment),
        (status = 400, description = "The month is malformed or out of range.", body = crate::http::openapi::Problem, content_type = "application/problem+json"),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn ranking(
    State(app): State<AppState>,
    _op: Operator,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<Assessment>> {
    let (name, w) = period(&q, Utc::now())?;
    Ok(Json(assess(&app, &name, &w).await?))
}

/// `GET /api/ops/v1/supervision/figures/trends`.
#[utoipa::path(
    get,
    path = "/api/ops/v1/supervision/figures/trends",
    operation_id = "supervisionTrends",
    tag = "operator",
    summary = "Monthly trends of the figures",
    description = "For each of the last `months` months (the current one up to now), oldest \
        first: the city-wide counts and rates and each department's score and rank.",
    params(("months" = Option<u32>, Query, description = "How many months, 1–36 (12 when absent).")),
    responses(
        (status = 200, description = "The months.", body = Vec<MonthFigures>),
        (status = 400, description = "`months` is out of range.", body = crate::http::openapi::Problem, content_type = "application/problem+json"),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn trends(
    State(app): State<AppState>,
    _op: Operator,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<Vec<MonthFigures>>> {
    let n = trend_months(&q)?;
    Ok(Json(
        fig::trends(
            app.store.as_ref(),
            &app.catalogue,
            &weights(&app),
            Utc::now(),
            n,
        )
        .await?,
    ))
}

/// `GET /api/ops/v1/supervision/figures/export`.
#[utoipa::path(
    get,
    path = "/api/ops/v1/supervision/figures/export",
    operation_id = "supervisionExport",
    tag = "operator",
    summary = "Monthly export of the figures (CSV or XLSX)",
    description = "The figures of one month for the report to the city: a header, one row per \
        department in rank order, then the city-wide row. Headers in the caller's language. \
        Without `month`, the previous month.",
    params(
        ("month" = Option<String>, Query, description = "A month, YYYY-MM.", example = "2026-11"),
        ("format" = Option<String>, Query, description = "`csv` (default) or `xlsx`."),
    ),
    responses(
        (status = 200, description = "The file, `attachment; filename=\"assessment-{month}.{csv|xlsx}\"`.",
            content(("text/csv"), ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 400, description = "The month or format is not valid.", body = crate::http::openapi::Problem, content_type = "application/problem+json"),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn export(
    State(app): State<AppState>,
    _op: Operator,
    AcceptLang(lang): AcceptLang,
    Query(mut q): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let lang = match q.get("lang").map(String::as_str) {
        Some("en") => Lang::En,
        Some("zh") | Some("zh-CN") => Lang::Zh,
        _ => lang,
    };
    let format = q.get("format").map(|f| f.trim().to_owned());
    let xlsx = match format.as_deref() {
        None | Some("") | Some("csv") => false,
        Some("xlsx") => true,
        Some(_) => {
            return Err(AppError::BadRequest(Message::new(
                "format 应为 csv 或 xlsx。",
                "format must be csv or xlsx.",
            )));
        }
    };
    let now = Utc::now();
    if q.get("month").is_none_or(|m| m.trim().is_empty()) {
        let last = fig::previous_month(fig::this_month(now));
        q.insert("month".into(), last.format("%Y-%m").to_string());
    }
    let (name, w) = period(&q, now)?;
    let a = assess(&app, &name, &w).await?;
    let headers = export_headers(lang);
    let rows = export_rows(&a, &app.catalogue, lang);
    let (body, content_type, ext) = if xlsx {
        (
            export_xlsx(&name, &headers, &rows)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("xlsx export: {e}")))?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        )
    } else {
        (
            export_csv(&headers, &rows)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("csv export: {e}")))?,
            "text/csv; charset=utf-8",
            "csv",
        )
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) =
        HeaderValue::from_str(&format!("attachment; filename=\"assessment-{name}.{ext}\""))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET /api/ops/v1/supervision/figures/departments/{uscc}`.
#[utoipa::path(
    get,
    path = "/api/ops/v1/supervision/figures/departments/{uscc}",
    operation_id = "supervisionDepartmentFigures",
    tag = "operator",
    summary = "One department's figures and the records behind them",
    description = "The department's rank, counts, rates and scored parts, with the records \
        each figure counts: its systems (with their last successful exchange), the resources \
        it publishes, the reads for its services, its collaborative and joint services, the \
        progress report counted and the cases (at most 200, newest first).",
    params(
        ("uscc" = String, Path, description = "The department's USCC."),
        ("month" = Option<String>, Query, description = "A month, YYYY-MM.", example = "2026-11"),
    ),
    responses(
        (status = 200, description = "The figures and records.", body = DepartmentFigures),
        (status = 400, description = "The month is not valid.", body = crate::http::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such department.", body = crate::http::openapi::Problem, content_type = "application/problem+json"),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn department(
    State(app): State<AppState>,
    _op: Operator,
    Path(uscc): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<DepartmentFigures>> {
    Ok(Json(department_figures(&app, &uscc, &q).await?))
}

/// `GET /api/staff/v1/supervision/figures`.
#[utoipa::path(
    get,
    path = "/api/staff/v1/supervision/figures",
    operation_id = "supervisionOwnFigures",
    tag = "staff",
    summary = "My department's figures and the records behind them",
    description = "The officer's own department: as the operator's \
        `/api/ops/v1/supervision/figures/departments/{uscc}`.",
    params(("month" = Option<String>, Query, description = "A month, YYYY-MM.", example = "2026-11")),
    responses(
        (status = 200, description = "The figures and records.", body = DepartmentFigures),
        (status = 400, description = "The month is not valid.", body = crate::http::openapi::Problem, content_type = "application/problem+json"),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn own_department(
    State(app): State<AppState>,
    officer: DepartmentOfficer,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<DepartmentFigures>> {
    Ok(Json(
        department_figures(&app, &officer.department, &q).await?,
    ))
}

// ---- pages ----------------------------------------------------------------------------

fn dept_name(app: &AppState, uscc: &str, lang: Lang) -> String {
    app.catalogue
        .department(uscc)
        .map(|d| lang.pick(&d.short_name, &d.short_name_en).to_owned())
        .unwrap_or_else(|| uscc.to_owned())
}

fn service_name(app: &AppState, code: &str, lang: Lang) -> String {
    app.catalogue
        .service(code)
        .map(|s| lang.pick(&s.name, &s.name_en).to_owned())
        .unwrap_or_else(|| code.to_owned())
}

fn resource_name(app: &AppState, code: &str, lang: Lang) -> String {
    app.catalogue
        .resource(code)
        .map(|r| lang.pick(&r.name, &r.name_en).to_owned())
        .unwrap_or_else(|| code.to_owned())
}

/// A rate in percent with one decimal, or none.
fn pct(v: Option<f64>) -> Option<String> {
    v.map(|x| format!("{:.1}", x * 100.0))
}

/// The months offered in the period picker: the last 12, newest first.
fn month_options(now: DateTime<Utc>) -> Vec<String> {
    let mut m: Vec<String> = fig::last_months(now, TREND_MONTHS)
        .into_iter()
        .map(|d| d.format("%Y-%m").to_string())
        .collect();
    m.reverse();
    m
}

/// A line chart's geometry (drawn by the template): points of each series over the
/// months, values 0–100, in a 560 × 200 plot.
fn line_chart(months: &[String], series: Vec<(String, Vec<Option<f64>>)>) -> Value {
    const W: f64 = 560.0;
    const H: f64 = 200.0;
    const LEFT: f64 = 36.0;
    const TOP: f64 = 10.0;
    let n = months.len().max(1);
    let x = |i: usize| {
        if n == 1 {
            LEFT + W / 2.0
        } else {
            LEFT + W * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| TOP + H - H * v.clamp(0.0, 100.0) / 100.0;
    let colours = [
        "#0b4f8a", "#b3261e", "#1d7044", "#8a5a00", "#5b3f8c", "#00707a",
    ];
    let lines: Vec<Value> = series
        .into_iter()
        .enumerate()
        .map(|(k, (label, values))| {
            let pts: Vec<Value> = values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    v.map(|v| json!({ "x": format!("{:.1}", x(i)), "y": format!("{:.1}", y(v)), "v": format!("{v:.1}") }))
                })
                .collect();
            let path = pts
                .iter()
                .map(|p| format!("{},{}", p["x"].as_str().unwrap_or("0"), p["y"].as_str().unwrap_or("0")))
                .collect::<Vec<_>>()
                .join(" ");
            json!({
                "label": label,
                "colour": colours[k % colours.len()],
                "points": pts,
                "path": path,
                "values": values.iter().map(|v| v.map(|v| format!("{v:.1}"))).collect::<Vec<_>>(),
                "dash": if k >= colours.len() { "4 3" } else { "" },
            })
        })
        .collect();
    let ticks: Vec<Value> = [0, 25, 50, 75, 100]
        .iter()
        .map(|t| json!({ "y": format!("{:.1}", y(f64::from(*t))), "label": t }))
        .collect();
    let xs: Vec<Value> = months
        .iter()
        .enumerate()
        .map(|(i, m)| json!({ "x": format!("{:.1}", x(i)), "label": &m[2..] }))
        .collect();
    json!({
        "width": LEFT + W + 24.0,
        "height": TOP + H + 30.0,
        "left": LEFT,
        "right": LEFT + W,
        "bottom": TOP + H,
        "ticks": ticks,
        "xs": xs,
        "months": months,
        "lines": lines,
    })
}

/// `GET /ops/supervision/figures`.
async fn ranking_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    let lang = ctx.lang;
    let now = Utc::now();
    let (name, w) = period(&q, now)?;
    let a = assess(&app, &name, &w).await?;
    let suffix = if name == "live" {
        String::new()
    } else {
        format!("?month={name}")
    };
    let rows: Vec<Value> = a
        .departments
        .iter()
        .map(|r| {
            json!({
                "uscc": r.department,
                "name": dept_name(&app, &r.department, lang),
                "rank": r.rank,
                "score": format!("{:.1}", r.score),
                "c": r.counts,
                "integration": pct(r.rates.integration),
                "connectivity": pct(r.rates.connectivity),
                "progress": r.rates.task_progress.map(|p| format!("{p:.1}")),
                "on_time": pct(r.rates.on_time),
                "prefill": pct(r.rates.prefill),
                "substitution": pct(r.rates.substitution),
                "rating": r.rates.rating.map(|v| format!("{v:.2}")),
            })
        })
        .collect();
    let cr = &a.city_rates;
    let city = json!({
        "c": a.city,
        "integration": pct(cr.integration),
        "connectivity": pct(cr.connectivity),
        "progress": cr.task_progress.map(|p| format!("{p:.1}")),
        "on_time": pct(cr.on_time),
        "prefill": pct(cr.prefill),
        "substitution": pct(cr.substitution),
        "rating": cr.rating.map(|v| format!("{v:.2}")),
    });
    let wt = a.weights;
    let weights: Vec<Value> = [
        ("integration", wt.integration),
        ("connectivity", wt.connectivity),
        ("shared_items", wt.shared_items),
        ("collaboration", wt.collaboration),
        ("progress", wt.progress),
        ("on_time", wt.on_time),
        ("reuse", wt.reuse),
        ("rating", wt.rating),
    ]
    .into_iter()
    .map(|(key, points)| {
        json!({ "key": key, "label": ctx.t(&format!("sup_figures.{key}")), "points": points })
    })
    .collect();
    let months = fig::trends(app.store.as_ref(), &app.catalogue, &wt, now, TREND_MONTHS).await?;
    let labels: Vec<String> = months.iter().map(|m| m.month.clone()).collect();
    let rate_series = |key: &str, f: &dyn Fn(&MonthFigures) -> Option<f64>| {
        (
            ctx.t(&format!("sup_figures.{key}")),
            months.iter().map(f).collect(),
        )
    };
    let city_chart = line_chart(
        &labels,
        vec![
            rate_series("integration", &|m| {
                m.city_rates.integration.map(|v| v * 100.0)
            }),
            rate_series("connectivity", &|m| {
                m.city_rates.connectivity.map(|v| v * 100.0)
            }),
            rate_series("on_time", &|m| m.city_rates.on_time.map(|v| v * 100.0)),
            rate_series("prefill", &|m| m.city_rates.prefill.map(|v| v * 100.0)),
            rate_series("substitution", &|m| {
                m.city_rates.substitution.map(|v| v * 100.0)
            }),
            rate_series("progress", &|m| m.city_rates.task_progress),
        ],
    );
    // the five best departments of the period, their scores month by month
    let top: Vec<&Ranked> = a.departments.iter().take(5).collect();
    let score_chart = line_chart(
        &labels,
        top.iter()
            .map(|r| {
                (
                    dept_name(&app, &r.department, lang),
                    months
                        .iter()
                        .map(|m| {
                            m.departments
                                .iter()
                                .find(|d| d.department == r.department)
                                .map(|d| d.score)
                        })
                        .collect(),
                )
            })
            .collect(),
    );
    Ok(ctx.render(
        StatusCode::OK,
        "supervision/figures/ranking.html",
        context! {
            period => name,
            months => month_options(now),
            suffix,
            rows,
            city,
            weights,
            weight_total => wt.integration + wt.connectivity + wt.shared_items + wt.collaboration
                + wt.progress + wt.on_time + wt.reuse + wt.rating,
            city_chart,
            score_chart,
            export_month => if name == "live" {
                fig::previous_month(fig::this_month(now)).format("%Y-%m").to_string()
            } else { name.clone() },
            now => crate::http::pages::cst(now),
        },
    ))
}

/// A message of the catalogue whose key is made at run time (a status code's label).
fn label(lang: Lang, key: &str) -> Option<String> {
    crate::http::pages::i18n::text(lang, key, &[])
}

/// The department page's values.
fn department_view(app: &AppState, d: &DepartmentFigures, lang: Lang) -> Value {
    let r = &d.figures;
    let systems: Vec<Value> = d
        .systems
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "status": label(lang, &format!("sup_figures.status_{}", s.status))
                    .unwrap_or_else(|| s.status.clone()),
                "counted": s.counted,
                "connected": s.connected,
                "meant": s.meant_to_connect,
                "last_ok": s.last_ok_at.map(crate::http::pages::cst),
                "live": s.live,
            })
        })
        .collect();
    let cases: Vec<Value> = d
        .cases
        .iter()
        .map(|c| {
            json!({
                "case_no": c.case_no,
                "service": service_name(app, &c.service_code, lang),
                "status": c.status,
                "lodged": crate::http::pages::cst_date(c.created_at),
                "due_on": c.due_on.map(|d| d.to_string()),
                "concluded_on": c.concluded_on.map(|d| d.to_string()),
                "on_time": c.on_time,
                "rating": c.rating,
                "fields": format!("{} / {}", c.fields_prefilled, c.fields_filled),
                "materials": format!("{} / {}", c.materials_substituted, c.materials),
            })
        })
        .collect();
    let tasks: Vec<Value> = d
        .report
        .as_ref()
        .and_then(|r| r.tasks.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let code = t.get("task").map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            });
            // the plan's number and title in the reader's language, else the bare code
            let title = code
                .as_deref()
                .and_then(|c| app.plan_tasks.get(c))
                .map(|p| {
                    if lang == Lang::En {
                        p.title_en.clone()
                    } else {
                        format!("{} {}", p.number, p.title)
                    }
                });
            json!({
                "task": code,
                "title": title,
                "percent": t.get("percent").and_then(Value::as_f64),
                "note": t.get("note").and_then(Value::as_str),
            })
        })
        .collect();
    json!({
        "uscc": r.department,
        "name": app.catalogue.department(&r.department).map(|x| lang.pick(&x.name, &x.name_en).to_owned()),
        "rank": r.rank,
        "of": d.of,
        "score": format!("{:.1}", r.score),
        "c": r.counts,
        "integration": pct(r.rates.integration),
        "connectivity": pct(r.rates.connectivity),
        "progress": r.rates.task_progress.map(|p| format!("{p:.1}")),
        "on_time": pct(r.rates.on_time),
        "prefill": pct(r.rates.prefill),
        "substitution": pct(r.rates.substitution),
        "rating": r.rates.rating.map(|v| format!("{v:.2}")),
        "systems": systems,
        "published": d.published.iter().map(|p| json!({
            "name": resource_name(app, &p.resource, lang), "items": p.items.len(),
        })).collect::<Vec<_>>(),
        "reads": d.reads.iter().map(|x| json!({
            "service": service_name(app, &x.service_code, lang),
            "resource": resource_name(app, &x.resource, lang),
            "reads": x.reads,
        })).collect::<Vec<_>>(),
        "collaboration": d.collaboration.iter().map(|x| json!({
            "service": service_name(app, &x.service_code, lang),
            "resources": x.resources.iter().map(|c| {
                let provider = app.catalogue.resource(c).map(|r| dept_name(app, &r.provider, lang)).unwrap_or_default();
                format!("{} ({provider})", resource_name(app, c, lang))
            }).collect::<Vec<_>>(),
            "joint": x.joint,
        })).collect::<Vec<_>>(),
        "report": d.report.as_ref().map(|x| json!({
            "month": x.month, "late": x.late, "submitted": crate::http::pages::cst(x.submitted_at),
        })),
        "tasks": tasks,
        "cases": cases,
        "cases_capped": d.cases.len() as i64 >= CASES_LISTED,
    })
}

/// `GET /ops/supervision/figures/{uscc}`.
async fn department_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path(uscc): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    let d = department_figures(&app, &uscc, &q).await?;
    render_department(&app, &ctx, &d, false)
}

/// `GET /desk/supervision/figures`.
async fn desk_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let officer = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let d = department_figures(&app, &officer.department, &q).await?;
    render_department(&app, &ctx, &d, true)
}

fn render_department(
    app: &AppState,
    ctx: &PageCtx,
    d: &DepartmentFigures,
    desk: bool,
) -> AppResult<Response> {
    let now = Utc::now();
    Ok(ctx.render(
        StatusCode::OK,
        "supervision/figures/department.html",
        context! {
            d => department_view(app, d, ctx.lang),
            period => d.period.clone(),
            months => month_options(now),
            desk,
            here_path => if desk { "/desk/supervision/figures".to_owned() } else { format!("/ops/supervision/figures/{}", d.figures.department) },
            now => crate::http::pages::cst(now),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_chart_places_points_by_month_and_percent() {
        let months = vec![
            "2026-10".to_owned(),
            "2026-11".to_owned(),
            "2026-12".to_owned(),
        ];
        let c = line_chart(
            &months,
            vec![("a".into(), vec![Some(0.0), None, Some(100.0)])],
        );
        let pts = c["lines"][0]["points"].as_array().expect("points");
        assert_eq!(pts.len(), 2, "a month without data has no point");
        assert_eq!(pts[0]["x"], "36.0");
        assert_eq!(pts[0]["y"], "210.0");
        assert_eq!(pts[1]["x"], "596.0");
        assert_eq!(pts[1]["y"], "10.0");
        assert_eq!(c["lines"][0]["path"], "36.0,210.0 596.0,10.0");
        assert_eq!(c["xs"][1]["label"], "26-11");
    }

    #[test]
    fn a_period_is_live_without_a_month_and_a_bad_month_is_refused() {
        let now = Utc::now();
        let (name, _) = period(&HashMap::new(), now).expect("live");
        assert_eq!(name, "live");
        let q = HashMap::from([("month".to_owned(), "2026-13".to_owned())]);
        assert!(matches!(period(&q, now), Err(AppError::BadRequest(_))));
        let q = HashMap::from([("months".to_owned(), "0".to_owned())]);
        assert!(trend_months(&q).is_err());
        assert_eq!(trend_months(&HashMap::new()).expect("default"), 12);
    }
}
