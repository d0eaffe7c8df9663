//! See `super`. The information-system registry, self-inspection reports and zombie
//! decisions (`crate::supervision::systems`):
//!
//! - operators: `GET /api/ops/v1/supervision/systems` (every department's, assessed),
//!   `GET …/systems/{id}` (with its decisions), `POST …/systems/{id}/decision`,
//!   `GET /api/ops/v1/supervision/self-inspections/{uscc}/{year}`; pages
//!   `/ops/supervision/systems`, `/ops/supervision/systems/{id}` (decide there),
//!   `/ops/supervision/reports/{uscc}` (a department's report, CSV and XLSX);
//! - department officers, their own department only: `GET|POST
//!   /api/staff/v1/supervision/systems`, `GET|PUT …/systems/{id}`, `GET|PUT
//!   /api/staff/v1/supervision/self-inspection/{year}`; pages `/desk/supervision/systems`
//!   (register, change), `/desk/supervision/report` (file it, CSV and XLSX).

use std::collections::HashMap;

use crate::http::path::Path;
use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::extract::{DepartmentOfficer, Operator};
use crate::domain::lang::Lang;
use crate::http::cases::AppJson;
use crate::http::error::{AppError, AppResult, FieldError, Message};
use crate::http::openapi::{Problem, RoleErrors};
use crate::http::pages::{PageCtx, i18n};
use crate::state::AppState;
use crate::supervision::systems::{
    self as sys, DataNeed, DecisionInput, Flag, ReportInput, SystemAssessment, SystemInput,
};

/// Operator API routes.
pub fn operator_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ops_list))
        .routes(routes!(ops_get))
        .routes(routes!(ops_decide))
        .routes(routes!(ops_report))
}

/// Department-officer API routes.
pub fn staff_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(staff_list, staff_register))
        .routes(routes!(staff_get, staff_update))
        .routes(routes!(staff_report, staff_file_report))
}

/// Pages.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/ops/supervision/systems", get(ops_systems_page))
        .route("/ops/supervision/systems/{id}", get(ops_system_page))
        .route(
            "/ops/supervision/systems/{id}/decision",
            post(ops_decide_form),
        )
        .route("/ops/supervision/reports/{uscc}", get(ops_report_page))
        .route(
            "/ops/supervision/reports/{uscc}/{year}/{format}",
            get(ops_report_download),
        )
        .route(
            "/desk/supervision/systems",
            get(desk_systems_page).post(desk_register_form),
        )
        .route("/desk/supervision/systems/new", get(desk_new_page))
        .route(
            "/desk/supervision/systems/{id}",
            get(desk_system_page).post(desk_update_form),
        )
        .route(
            "/desk/supervision/report",
            get(desk_report_page).post(desk_report_form),
        )
        .route(
            "/desk/supervision/report/{year}/{format}",
            get(desk_report_download),
        )
}

fn parse_id(id: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| {
        AppError::NotFound(Message::new(
            "没有这个信息系统。",
            "No such information system.",
        ))
    })
}

fn this_year() -> i32 {
    crate::http::pages::cst_date(Utc::now())[..4]
        .parse()
        .unwrap_or(2026)
}

// ---- API: operators ---------------------------------------------------------------

/// Systems with what the exchange's records say about them.
#[derive(Debug, Serialize, ToSchema)]
pub struct SystemList {
    /// The zombie thresholds in force.
    pub thresholds: sys::Thresholds,
    /// The systems, by department and name.
    pub systems: Vec<SystemAssessment>,
}

/// A system with its decisions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SystemDetail {
    /// The system and its assessment.
    #[serde(flatten)]
    pub assessment: SystemAssessment,
    /// The operators' decisions, newest first.
    #[schema(value_type = Vec<Object>)]
    pub decisions: Vec<Value>,
}

/// Filter of the operator's list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OpsListQuery {
    /// One department (USCC).
    pub department: Option<String>,
    /// One status: active, flagged, kept, cleared, merged.
    pub status: Option<String>,
}

fn filtered(list: Vec<SystemAssessment>, status: Option<&str>) -> Vec<SystemAssessment> {
    match status.filter(|s| !s.is_empty()) {
        Some(st) => list
            .into_iter()
            .filter(|a| a.system["status"] == st)
            .collect(),
        None => list,
    }
}

/// `GET /api/ops/v1/supervision/systems`
#[utoipa::path(
    get,
    path = "/api/ops/v1/supervision/systems",
    operation_id = "listInfoSystems",
    summary = "Every department's information systems, assessed (僵尸信息系统)",
    description = "Each registered system with its routes to the exchange, last successful \
        exchange, monthly volumes, failure share, overlapping systems and zombie flags \
        (`long_idle`, `detached`, `replaceable`, `unmaintained`, `small_low`), computed now \
        from the exchange's records. Statuses are brought up to date as a side effect: an \
        active system with flags becomes `flagged`, a flagged one without flags `active`.",
    params(OpsListQuery),
    responses(
        (status = 200, description = "The systems.", body = SystemList),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn ops_list(
    State(app): State<AppState>,
    _op: Operator,
    Query(q): Query<OpsListQuery>,
) -> AppResult<Json<SystemList>> {
    let dept = q.department.as_deref().filter(|d| !d.is_empty());
    let list = sys::assess(&app, dept, Utc::now()).await?;
    Ok(Json(SystemList {
        thresholds: sys::Thresholds::from(&app.settings.supervision_systems),
        systems: filtered(list, q.status.as_deref()),
    }))
}

/// `GET /api/ops/v1/supervision/systems/{id}`
#[utoipa::path(
    get,
    path = "/api/ops/v1/supervision/systems/{id}",
    operation_id = "getInfoSystem",
    summary = "One information system, assessed, with its decisions",
    params(("id" = String, Path, description = "The system's id.")),
    responses(
        (status = 200, description = "The system.", body = SystemDetail),
        RoleErrors,
        (status = 404, description = "No such system.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_get(
    State(app): State<AppState>,
    _op: Operator,
    Path(id): Path<String>,
) -> AppResult<Json<SystemDetail>> {
    let id = parse_id(&id)?;
    detail(&app, id, None).await.map(Json)
}

async fn detail(app: &AppState, id: Uuid, department: Option<&str>) -> AppResult<SystemDetail> {
    let assessment = sys::assess_one(app, id, department, Utc::now()).await?;
    let decisions = app
        .store
        .decisions(id)
        .await?
        .iter()
        .map(sys::decision_json)
        .collect();
    Ok(SystemDetail {
        assessment,
        decisions,
    })
}

/// `POST /api/ops/v1/supervision/systems/{id}/decision`
#[utoipa::path(
    post,
    path = "/api/ops/v1/supervision/systems/{id}/decision",
    operation_id = "decideInfoSystem",
    summary = "Decide on a system: clear, merge into another, or keep with a reason",
    description = "Records the decision with the flags shown at that moment and its author, \
        and sets the system's status (`cleared`, `merged`, `kept`). A cleared or merged system \
        leaves the connectivity denominator.",
    params(("id" = String, Path, description = "The system's id.")),
    request_body(content = DecisionInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Recorded.", body = Object),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such system.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already cleared or merged.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown decision, no reason, or no (valid) system to merge into.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_decide(
    State(app): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    AppJson(body): AppJson<DecisionInput>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let s = &op.0.session;
    let d = sys::decide(&app, id, &body, (s.account_id, &s.name), Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(sys::decision_json(&d))).into_response())
}

/// A department's self-inspection report.
#[derive(Debug, Serialize, ToSchema)]
pub struct Report {
    /// The department (USCC).
    pub department: String,
    /// The year.
    pub year: i32,
    /// Filed: the plan and needs (null when not filed yet).
    #[schema(value_type = Option<Object>)]
    pub filed: Option<Value>,
    /// The department's systems, assessed.
    pub systems: Vec<SystemAssessment>,
}

async fn report(app: &AppState, department: &str, year: i32) -> AppResult<Report> {
    let systems = sys::assess(app, Some(department), Utc::now()).await?;
    let filed = app.store.self_inspection(department, year).await?.map(|r| {
        json!({
            "integration_plan": r.integration_plan,
            "data_needs": sys::needs_of(&r),
            "submitted_name": r.submitted_name,
            "submitted_at": r.submitted_at,
        })
    });
    Ok(Report {
        department: department.to_owned(),
        year,
        filed,
        systems,
    })
}

/// `GET /api/ops/v1/supervision/self-inspections/{uscc}/{year}`
#[utoipa::path(
    get,
    path = "/api/ops/v1/supervision/self-inspections/{uscc}/{year}",
    operation_id = "getSelfInspection",
    summary = "A department's self-inspection report (自查报告)",
    params(
        ("uscc" = String, Path, description = "The department's USCC."),
        ("year" = i32, Path, description = "The year."),
    ),
    responses(
        (status = 200, description = "The report: the systems, the plan and the data needs.", body = Report),
        RoleErrors,
        (status = 404, description = "No such department.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_report(
    State(app): State<AppState>,
    _op: Operator,
    Path((uscc, year)): Path<(String, i32)>,
) -> AppResult<Json<Report>> {
    known_department(&app, &uscc)?;
    report(&app, &uscc, year).await.map(Json)
}

fn known_department(app: &AppState, uscc: &str) -> AppResult<()> {
    if app.catalogue.department(uscc).is_none() {
        return Err(AppError::NotFound(Message::new(
            format!("没有统一社会信用代码为 {uscc} 的部门。"),
            format!("There is no department {uscc}."),
        )));
    }
    Ok(())
}

// ---- API: department officers ---------------------------------------------------------

/// `GET /api/staff/v1/supervision/systems`
#[utoipa::path(
    get,
    path = "/api/staff/v1/supervision/systems",
    operation_id = "listOwnInfoSystems",
    summary = "Your department's information systems, assessed",
    responses(
        (status = 200, description = "The systems.", body = SystemList),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn staff_list(
    State(app): State<AppState>,
    o: DepartmentOfficer,
) -> AppResult<Json<SystemList>> {
    let list = sys::assess(&app, Some(&o.department), Utc::now()).await?;
    Ok(Json(SystemList {
        thresholds: sys::Thresholds::from(&app.settings.supervision_systems),
        systems: list,
    }))
}

/// `POST /api/staff/v1/supervision/systems`
#[utoipa::path(
    post,
    path = "/api/staff/v1/supervision/systems",
    operation_id = "registerInfoSystem",
    summary = "Register an information system of your department (自查登记)",
    request_body(content = SystemInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered.", body = Object),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 422, description = "Fields to correct (`errors` names them); a token must be one of your department's.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_register(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    AppJson(body): AppJson<SystemInput>,
) -> AppResult<Response> {
    let by = o.user.session.account_id.to_string();
    let s = sys::register(&app, &o.department, &by, &body, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(sys::system_json(&s))).into_response())
}

/// `GET /api/staff/v1/supervision/systems/{id}`
#[utoipa::path(
    get,
    path = "/api/staff/v1/supervision/systems/{id}",
    operation_id = "getOwnInfoSystem",
    summary = "One of your department's systems, assessed, with decisions on it",
    params(("id" = String, Path, description = "The system's id.")),
    responses(
        (status = 200, description = "The system.", body = SystemDetail),
        RoleErrors,
        (status = 404, description = "No such system in your department (another department's answers the same).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_get(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    Path(id): Path<String>,
) -> AppResult<Json<SystemDetail>> {
    let id = parse_id(&id)?;
    detail(&app, id, Some(&o.department)).await.map(Json)
}

/// `PUT /api/staff/v1/supervision/systems/{id}`
#[utoipa::path(
    put,
    path = "/api/staff/v1/supervision/systems/{id}",
    operation_id = "updateOwnInfoSystem",
    summary = "Change one of your department's systems",
    params(("id" = String, Path, description = "The system's id.")),
    request_body(content = SystemInput, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed.", body = Object),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such system in your department.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fields to correct.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_update(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    Path(id): Path<String>,
    AppJson(body): AppJson<SystemInput>,
) -> AppResult<Json<Value>> {
    let id = parse_id(&id)?;
    let s = sys::update(&app, &o.department, id, &body, Utc::now()).await?;
    Ok(Json(sys::system_json(&s)))
}

/// `GET /api/staff/v1/supervision/self-inspection/{year}`
#[utoipa::path(
    get,
    path = "/api/staff/v1/supervision/self-inspection/{year}",
    operation_id = "getOwnSelfInspection",
    summary = "Your department's self-inspection report for a year",
    params(("year" = i32, Path, description = "The year.")),
    responses(
        (status = 200, description = "The report.", body = Report),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn staff_report(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    Path(year): Path<i32>,
) -> AppResult<Json<Report>> {
    report(&app, &o.department, year).await.map(Json)
}

/// `PUT /api/staff/v1/supervision/self-inspection/{year}`
#[utoipa::path(
    put,
    path = "/api/staff/v1/supervision/self-inspection/{year}",
    operation_id = "fileSelfInspection",
    summary = "File your department's report: integration plan and data needs",
    description = "The integration plan (整合共享计划) and the needs for other departments' \
        data (跨部门信息资源需求); the systems are those registered. Filing again replaces it.",
    params(("year" = i32, Path, description = "The year.")),
    request_body(content = ReportInput, content_type = "application/json"),
    responses(
        (status = 200, description = "Filed; the report.", body = Report),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 422, description = "No plan, a need without provider, resource or purpose.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_file_report(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    Path(year): Path<i32>,
    AppJson(body): AppJson<ReportInput>,
) -> AppResult<Json<Report>> {
    let s = &o.user.session;
    sys::file_report(
        &app,
        &o.department,
        year,
        &body,
        (s.account_id, &s.name),
        Utc::now(),
    )
    .await?;
    report(&app, &o.department, year).await.map(Json)
}

// ---- pages ------------------------------------------------------------------------------

fn dept_name(app: &AppState, uscc: &str, lang: Lang) -> String {
    app.catalogue
        .department(uscc)
        .map(|d| lang.pick(&d.name, &d.name_en).to_owned())
        .unwrap_or_else(|| uscc.to_owned())
}

fn options(table: &[(&str, &'static str, &'static str)], lang: Lang) -> Vec<Value> {
    table
        .iter()
        .map(|(c, zh, en)| json!({ "code": c, "label": lang.pick(zh, en) }))
        .collect()
}

fn flag_view(f: Flag, lang: Lang) -> Value {
    let (zh, en) = f.labels();
    json!({ "code": f.code(), "label": lang.pick(zh, en) })
}

fn date(at: Option<DateTime<Utc>>) -> Option<String> {
    at.map(crate::http::pages::cst_date)
}

/// What a page row shows of an assessed system.
fn row_view(app: &AppState, a: &SystemAssessment, lang: Lang) -> Value {
    let v = &a.system;
    let code = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    let lab = |table: &[(&str, &'static str, &'static str)], k: &str| {
        let (zh, en) = sys::label(table, &code(k));
        lang.pick(&zh, &en).to_owned()
    };
    let max = a.monthly.iter().map(|m| m.calls).max().unwrap_or(0).max(1);
    json!({
        "id": code("id"),
        "name": code("name"),
        "department": code("department"),
        "department_name": dept_name(app, &code("department"), lang),
        "function": code("function"),
        "users_scope": code("users_scope"),
        "frequency": lab(&sys::FREQUENCIES, "frequency"),
        "network": lab(&sys::NETWORKS, "network"),
        "hosting": lab(&sys::HOSTINGS, "hosting"),
        "status": code("status"),
        "status_label": lab(&sys::STATUSES, "status"),
        "approved_by": code("approved_by"),
        "approved_on": code("approved_on"),
        "funding": code("funding"),
        "build_cost": v["build_cost"],
        "om_cost_per_year": v["om_cost_per_year"],
        "token_id": code("token_id"),
        "push_endpoint": code("push_endpoint"),
        "data_api": code("data_api"),
        "meant_to_connect": v["meant_to_connect"],
        "routes": a.routes,
        "route_labels": a.routes.iter().map(|r| {
            i18n::text(lang, &format!("sup_systems.route_{r}"), &[]).unwrap_or_else(|| r.clone())
        }).collect::<Vec<_>>(),
        "connected": a.connected,
        "last_ok": date(a.last_ok),
        "volume": a.monthly.iter().map(|m| m.calls).sum::<i64>(),
        "monthly": a.monthly.iter().map(|m| json!({
            "label": m.month, "value": m.calls, "failures": m.failures,
            "pct": m.calls * 100 / max,
        })).collect::<Vec<_>>(),
        "failure_share": a.failure_share.map(|f| format!("{:.1}", f * 100.0)),
        "services": a.services.len(),
        "overlaps": a.overlaps,
        "flags": a.flags.iter().map(|f| flag_view(*f, lang)).collect::<Vec<_>>(),
    })
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    department: Option<String>,
    status: Option<String>,
    done: Option<String>,
    year: Option<i32>,
}

async fn ops_systems_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Query(q): Query<ListQuery>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    let lang = ctx.lang;
    let dept = q.department.as_deref().filter(|d| !d.is_empty());
    let all = sys::assess(&app, dept, Utc::now()).await?;
    let count = |st: &str| all.iter().filter(|a| a.system["status"] == st).count();
    let counts = json!({
        "all": all.len(),
        "active": count("active"),
        "flagged": count("flagged"),
        "kept": count("kept"),
        "cleared": count("cleared"),
        "merged": count("merged"),
    });
    let list = filtered(all, q.status.as_deref());
    let rows: Vec<Value> = list.iter().map(|a| row_view(&app, a, lang)).collect();
    let departments: Vec<Value> = app
        .catalogue
        .departments()
        .iter()
        .map(|d| json!({ "uscc": d.uscc, "name": lang.pick(&d.name, &d.name_en) }))
        .collect();
    let t = sys::Thresholds::from(&app.settings.supervision_systems);
    Ok(ctx.render(
        StatusCode::OK,
        "supervision/systems/ops_list.html",
        context! {
            rows, counts, departments,
            statuses => options(&sys::STATUSES, lang),
            department => dept.unwrap_or(""),
            status => q.status.clone().unwrap_or_default(),
            thresholds => t,
        },
    ))
}

async fn ops_system_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    let id = parse_id(&id)?;
    system_page(&app, &ctx, id, None, q.done.as_deref(), None, None).await
}

/// The detail page: the system, its activity and flags, its decisions, and (for an
/// operator) the decision form or (for the officer) the edit form.
async fn system_page(
    app: &AppState,
    ctx: &PageCtx,
    id: Uuid,
    department: Option<&str>,
    done: Option<&str>,
    errors: Option<Vec<FieldError>>,
    form: Option<Value>,
) -> AppResult<Response> {
    let lang = ctx.lang;
    let d = detail(app, id, department).await?;
    let row = row_view(app, &d.assessment, lang);
    let decisions: Vec<Value> = d
        .decisions
        .iter()
        .map(|x| {
            let (zh, en) = sys::label(&sys::DECISIONS, x["decision"].as_str().unwrap_or(""));
            let flags: Vec<Value> = x["flags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.as_str().and_then(Flag::from_code))
                        .map(|f| flag_view(f, lang))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "decision": lang.pick(&zh, &en),
                "reason": x["reason"],
                "by": x["decided_name"],
                "at": x["decided_at"].as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| crate::http::pages::cst(t.with_timezone(&Utc))),
                "flags": flags,
                "merged_into": x["merged_into"],
            })
        })
        .collect();
    let dept = row["department"].as_str().unwrap_or("").to_owned();
    let siblings: Vec<Value> = app
        .store
        .systems(Some(&dept))
        .await?
        .into_iter()
        .filter(|s| s.id != id && !matches!(s.status.as_str(), "cleared" | "merged"))
        .map(|s| json!({ "id": s.id, "name": s.name }))
        .collect();
    let errs: HashMap<String, String> = errors
        .as_ref()
        .map(|e| {
            e.iter()
                .map(|f| (f.field.clone(), f.message.get(lang).to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let status = if errors.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let officer = department.is_some();
    let tokens = if officer {
        department_tokens(app, &dept).await?
    } else {
        Vec::new()
    };
    Ok(ctx.render(
        status,
        if officer {
            "supervision/systems/desk_system.html"
        } else {
            "supervision/systems/ops_system.html"
        },
        context! {
            s => row, decisions, siblings, errors => errs, done,
            form => form.unwrap_or_else(|| edit_values(&d.assessment.system)),
            decision_options => options(&sys::DECISIONS, lang),
            frequencies => options(&sys::FREQUENCIES, lang),
            networks => options(&sys::NETWORKS, lang),
            hostings => options(&sys::HOSTINGS, lang),
            tokens,
        },
    ))
}

async fn department_tokens(app: &AppState, dept: &str) -> AppResult<Vec<Value>> {
    let now = Utc::now();
    Ok(app
        .store
        .api_tokens()
        .await?
        .into_iter()
        .filter(|t| t.department == dept && t.is_active(now))
        .map(|t| json!({ "code": t.id.to_string(), "label": t.name }))
        .collect())
}

fn edit_values(v: &Value) -> Value {
    let mut out = v.clone();
    for k in ["approved_on", "token_id", "push_endpoint", "data_api"] {
        if out[k].is_null() {
            out[k] = json!("");
        }
    }
    out
}

async fn ops_decide_form(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let o = match ctx.form_user(who, true, &form) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let id = parse_id(&id)?;
    let input = DecisionInput {
        decision: form.get("decision").cloned().unwrap_or_default(),
        merged_into: form
            .get("merged_into")
            .and_then(|m| Uuid::parse_str(m.trim()).ok()),
        reason: form.get("reason").cloned().unwrap_or_default(),
    };
    let s = &o.0.session;
    match sys::decide(&app, id, &input, (s.account_id, &s.name), Utc::now()).await {
        Ok(_) => Ok(
            Redirect::to(&format!("/ops/supervision/systems/{id}?done=decided")).into_response(),
        ),
        Err(AppError::Invalid(errors)) => {
            let f = json!({ "decision": input.decision, "reason": input.reason });
            system_page(&app, &ctx, id, None, None, Some(errors), Some(f)).await
        }
        Err(e) => Err(e),
    }
}

async fn ops_report_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path(uscc): Path<String>,
    Query(q): Query<ListQuery>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    known_department(&app, &uscc)?;
    report_page(
        &app,
        &ctx,
        &uscc,
        q.year.unwrap_or_else(this_year),
        false,
        None,
        None,
    )
    .await
}

async fn report_page(
    app: &AppState,
    ctx: &PageCtx,
    uscc: &str,
    year: i32,
    officer: bool,
    errors: Option<Vec<FieldError>>,
    form: Option<Value>,
) -> AppResult<Response> {
    let lang = ctx.lang;
    let r = report(app, uscc, year).await?;
    let rows: Vec<Value> = r.systems.iter().map(|a| row_view(app, a, lang)).collect();
    let needs: Vec<Value> = r
        .filed
        .as_ref()
        .and_then(|f| serde_json::from_value::<Vec<DataNeed>>(f["data_needs"].clone()).ok())
        .unwrap_or_default()
        .iter()
        .map(|n| {
            json!({
                "provider": dept_name(app, &n.provider, lang),
                "provider_code": n.provider,
                "resource": n.resource, "items": n.items, "purpose": n.purpose,
            })
        })
        .collect();
    let filed = r.filed.as_ref().map(|f| {
        json!({
            "integration_plan": f["integration_plan"],
            "submitted_name": f["submitted_name"],
            "submitted_at": f["submitted_at"].as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| crate::http::pages::cst(t.with_timezone(&Utc))),
        })
    });
    let providers: Vec<Value> = app
        .catalogue
        .departments()
        .iter()
        .filter(|d| d.uscc != uscc)
        .map(|d| json!({ "uscc": d.uscc, "name": lang.pick(&d.name, &d.name_en) }))
        .collect();
    let errs: HashMap<String, String> = errors
        .as_ref()
        .map(|e| {
            e.iter()
                .map(|f| (f.field.clone(), f.message.get(lang).to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let base = if officer {
        "/desk/supervision/report".to_owned()
    } else {
        format!("/ops/supervision/reports/{uscc}")
    };
    let flagged = rows.iter().filter(|r| r["status"] == "flagged").count();
    let connected = rows.iter().filter(|r| r["connected"] == true).count();
    Ok(ctx.render(
        if errors.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        "supervision/systems/report.html",
        context! {
            department => dept_name(app, uscc, lang), uscc, year, rows, needs, filed,
            officer, providers, errors => errs, base, flagged, connected,
            form => form.unwrap_or_else(|| json!({
                "integration_plan": r.filed.as_ref().map(|f| f["integration_plan"].clone()).unwrap_or(json!("")),
            })),
            years => (year - 2..=this_year()).rev().collect::<Vec<_>>(),
        },
    ))
}

async fn ops_report_download(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path((uscc, year, format)): Path<(String, i32, String)>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    known_department(&app, &uscc)?;
    download(&app, ctx.lang, &uscc, year, &format).await
}

async fn desk_report_download(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path((year, format)): Path<(i32, String)>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    download(&app, ctx.lang, &o.department, year, &format).await
}

/// The report as CSV or XLSX: the systems; the integration plan; the data needs.
async fn download(
    app: &AppState,
    lang: Lang,
    uscc: &str,
    year: i32,
    format: &str,
) -> AppResult<Response> {
    if !matches!(format, "csv" | "xlsx") {
        return Err(AppError::NotFound(Message::new(
            "下载格式应为 csv 或 xlsx。",
            "The download format is csv or xlsx.",
        )));
    }
    let r = report(app, uscc, year).await?;
    let t = |k: &str| i18n::text(lang, k, &[]).unwrap_or_else(|| k.to_owned());
    let systems = sys::report_rows(lang, &r.systems, t);
    let plan = vec![
        vec![t("sup_systems.integration_plan")],
        vec![
            r.filed
                .as_ref()
                .and_then(|f| f["integration_plan"].as_str())
                .unwrap_or("")
                .to_owned(),
        ],
    ];
    let mut needs = vec![vec![
        t("sup_systems.col_provider"),
        t("sup_systems.col_resource"),
        t("sup_systems.col_items"),
        t("sup_systems.col_purpose"),
    ]];
    if let Some(f) = &r.filed
        && let Ok(list) = serde_json::from_value::<Vec<DataNeed>>(f["data_needs"].clone())
    {
        for n in list {
            needs.push(vec![
                dept_name(app, &n.provider, lang),
                n.resource,
                n.items,
                n.purpose,
            ]);
        }
    }
    let sections = vec![
        (t("sup_systems.sheet_systems"), systems),
        (t("sup_systems.sheet_plan"), plan),
        (t("sup_systems.sheet_needs"), needs),
    ];
    let name = format!("self-inspection-{uscc}-{year}.{format}");
    let (body, ct) = if format == "csv" {
        (sys::to_csv(&sections)?, "text/csv; charset=utf-8")
    } else {
        (
            sys::to_xlsx(&sections)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    };
    Ok((
        [
            (header::CONTENT_TYPE, ct.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

async fn desk_systems_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Query(q): Query<ListQuery>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let lang = ctx.lang;
    let list = sys::assess(&app, Some(&o.department), Utc::now()).await?;
    let rows: Vec<Value> = list.iter().map(|a| row_view(&app, a, lang)).collect();
    Ok(ctx.render(
        StatusCode::OK,
        "supervision/systems/desk_list.html",
        context! {
            rows, done => q.done,
            department => dept_name(&app, &o.department, lang),
        },
    ))
}

async fn desk_new_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    new_page(&app, &ctx, &o.department, None, None).await
}

async fn new_page(
    app: &AppState,
    ctx: &PageCtx,
    dept: &str,
    errors: Option<Vec<FieldError>>,
    form: Option<Value>,
) -> AppResult<Response> {
    let lang = ctx.lang;
    let errs: HashMap<String, String> = errors
        .as_ref()
        .map(|e| {
            e.iter()
                .map(|f| (f.field.clone(), f.message.get(lang).to_owned()))
                .collect()
        })
        .unwrap_or_default();
    Ok(ctx.render(
        if errors.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        "supervision/systems/desk_new.html",
        context! {
            errors => errs,
            form => form.unwrap_or_else(|| json!({ "meant_to_connect": true })),
            frequencies => options(&sys::FREQUENCIES, lang),
            networks => options(&sys::NETWORKS, lang),
            hostings => options(&sys::HOSTINGS, lang),
            tokens => department_tokens(app, dept).await?,
        },
    ))
}

/// A system form as posted.
fn input_from_form(f: &HashMap<String, String>) -> (SystemInput, Vec<FieldError>) {
    let g = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let mut errors = Vec::new();
    let mut money = |k: &str| -> i64 {
        let v = g(k);
        if v.is_empty() {
            return 0;
        }
        v.parse().unwrap_or_else(|_| {
            errors.push(FieldError {
                field: k.to_owned(),
                message: Message::new("请填写整数金额（元）。", "Give a whole number of yuan."),
            });
            0
        })
    };
    let build_cost = money("build_cost");
    let om_cost_per_year = money("om_cost_per_year");
    let approved_on = match g("approved_on") {
        d if d.is_empty() => None,
        d => match NaiveDate::parse_from_str(&d, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                errors.push(FieldError {
                    field: "approved_on".into(),
                    message: Message::new(
                        "日期格式应为 年-月-日，如 2016-05-20。",
                        "A date like 2016-05-20.",
                    ),
                });
                None
            }
        },
    };
    let token_id = match g("token_id") {
        t if t.is_empty() => None,
        t => match Uuid::parse_str(&t) {
            Ok(u) => Some(u),
            Err(_) => {
                errors.push(FieldError {
                    field: "token_id".into(),
                    message: Message::new(
                        "该令牌不是本部门的接口令牌。",
                        "This is not one of the department's API tokens.",
                    ),
                });
                None
            }
        },
    };
    let opt = |k: &str| Some(g(k)).filter(|v| !v.is_empty());
    (
        SystemInput {
            name: g("name"),
            function: g("function"),
            users_scope: g("users_scope"),
            frequency: g("frequency"),
            approved_by: g("approved_by"),
            approved_on,
            funding: g("funding"),
            build_cost,
            om_cost_per_year,
            network: g("network"),
            hosting: g("hosting"),
            token_id,
            push_endpoint: opt("push_endpoint"),
            data_api: opt("data_api"),
            meant_to_connect: f.contains_key("meant_to_connect"),
        },
        errors,
    )
}

fn form_echo(f: &HashMap<String, String>) -> Value {
    let mut v = json!(f);
    v["meant_to_connect"] = json!(f.contains_key("meant_to_connect"));
    v
}

async fn desk_register_form(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let o = match ctx.form_user(who, true, &form) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let (input, mut errors) = input_from_form(&form);
    let by = o.user.session.account_id.to_string();
    let result = if errors.is_empty() {
        sys::register(&app, &o.department, &by, &input, Utc::now()).await
    } else {
        Err(AppError::Invalid(Vec::new()))
    };
    match result {
        Ok(s) => Ok(Redirect::to(&format!(
            "/desk/supervision/systems/{}?done=registered",
            s.id
        ))
        .into_response()),
        Err(AppError::Invalid(more)) => {
            errors.extend(more);
            new_page(
                &app,
                &ctx,
                &o.department,
                Some(errors),
                Some(form_echo(&form)),
            )
            .await
        }
        Err(e) => Err(e),
    }
}

async fn desk_system_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let id = parse_id(&id)?;
    system_page(
        &app,
        &ctx,
        id,
        Some(&o.department),
        q.done.as_deref(),
        None,
        None,
    )
    .await
}

async fn desk_update_form(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let o = match ctx.form_user(who, true, &form) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let id = parse_id(&id)?;
    let (input, mut errors) = input_from_form(&form);
    let result = if errors.is_empty() {
        sys::update(&app, &o.department, id, &input, Utc::now()).await
    } else {
        // still answers 404 for another department's system
        sys::find(&app, id, Some(&o.department)).await?;
        Err(AppError::Invalid(Vec::new()))
    };
    match result {
        Ok(_) => {
            Ok(Redirect::to(&format!("/desk/supervision/systems/{id}?done=saved")).into_response())
        }
        Err(AppError::Invalid(more)) => {
            errors.extend(more);
            let echo = form_echo(&form);
            system_page(
                &app,
                &ctx,
                id,
                Some(&o.department),
                None,
                Some(errors),
                Some(echo),
            )
            .await
        }
        Err(e) => Err(e),
    }
}

async fn desk_report_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Query(q): Query<ListQuery>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let year = q.year.unwrap_or_else(this_year);
    report_page(&app, &ctx, &o.department, year, true, None, None).await
}

/// The report form: the plan, and up to five needs (`provider_N`, `resource_N`,
/// `items_N`, `purpose_N`; a row with none of them is skipped).
async fn desk_report_form(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let o = match ctx.form_user(who, true, &form) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let g = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let year: i32 = g("year").parse().unwrap_or_else(|_| this_year());
    let mut needs = Vec::new();
    for i in 0..5 {
        let n = DataNeed {
            provider: g(&format!("provider_{i}")),
            resource: g(&format!("resource_{i}")),
            items: g(&format!("items_{i}")),
            purpose: g(&format!("purpose_{i}")),
        };
        if !(n.resource.is_empty() && n.items.is_empty() && n.purpose.is_empty()) {
            needs.push(n);
        }
    }
    let input = ReportInput {
        integration_plan: g("integration_plan"),
        data_needs: needs,
    };
    let s = &o.user.session;
    match sys::file_report(
        &app,
        &o.department,
        year,
        &input,
        (s.account_id, &s.name),
        Utc::now(),
    )
    .await
    {
        Ok(_) => Ok(
            Redirect::to(&format!("/desk/supervision/report?year={year}&done=filed"))
                .into_response(),
        ),
        Err(AppError::Invalid(errors)) => {
            let f = json!({ "integration_plan": input.integration_plan });
            report_page(&app, &ctx, &o.department, year, true, Some(errors), Some(f)).await
        }
        Err(e) => Err(e),
    }
}
