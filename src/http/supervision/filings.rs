//! See `super`. Filings (备案) and their review, and the monthly progress reports.
//!
//! JSON, department officers (`/api/staff/v1/supervision/…`, their department only):
//! - `GET|POST /filings`, `GET /filings/{id}`, `POST /filings/{id}/resubmit`;
//! - `GET /plan-tasks` (the tasks the department reports on), `GET /reports` (the recent
//!   months and where the department stands), `GET|PUT /reports/{month}`.
//!
//! JSON, operators (`/api/ops/v1/supervision/…`): `GET /filings` (filters), `GET
//! /filings/{id}`, `POST /filings/{id}/review`, `GET /plan-tasks`, `GET /reports?month=`
//! (who reported on time, late, not at all), `GET /reports/{month}/{uscc}`.
//!
//! Pages: `/desk/supervision/filings…` and `/desk/supervision/reports…` for officers,
//! `/ops/supervision/filings…` and `/ops/supervision/reports…` for operators. Every change
//! is a POST form with the session's CSRF token, going through the same use case as the
//! JSON route.

use std::collections::HashMap;

use crate::http::path::Path;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, routing::post};
use chrono::{DateTime, NaiveDate, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::extract::{DepartmentOfficer, Operator};
use crate::domain::lang::Lang;
use crate::http::AcceptLang;
use crate::http::cases::{AppJson, query_params};
use crate::http::error::{AppError, AppResult, Message};
use crate::http::openapi::{Problem, RoleErrors};
use crate::http::pages::{PageCtx, check_csrf, cst};
use crate::state::AppState;
use crate::store::sup_filings::{FilingEventRow, FilingFilter, FilingRow, ReportRow};
use crate::supervision::filings::{
    self as rules, FilingInput, FilingKind, FilingState, ReportStatus, ReviewAction, ReviewReason,
    TaskProgress,
};
use crate::usecases::{self, Actor};

/// Operator API routes.
pub fn operator_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ops_filings))
        .routes(routes!(ops_filing))
        .routes(routes!(ops_review))
        .routes(routes!(ops_plan_tasks))
        .routes(routes!(ops_month))
        .routes(routes!(ops_report))
}

/// Department-officer API routes.
pub fn staff_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dept_filings, dept_file))
        .routes(routes!(dept_filing))
        .routes(routes!(dept_resubmit))
        .routes(routes!(dept_plan_tasks))
        .routes(routes!(dept_reports))
        .routes(routes!(dept_report, dept_put_report))
}

/// Pages.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route(
            "/desk/supervision/filings",
            get(page_dept_filings).post(page_dept_file),
        )
        .route("/desk/supervision/filings/new", get(page_dept_new))
        .route("/desk/supervision/filings/{id}", get(page_dept_filing))
        .route(
            "/desk/supervision/filings/{id}/resubmit",
            post(page_dept_resubmit),
        )
        .route("/desk/supervision/reports", get(page_dept_reports))
        .route(
            "/desk/supervision/reports/{month}",
            get(page_dept_report).post(page_dept_put_report),
        )
        .route("/ops/supervision/filings", get(page_ops_filings))
        .route("/ops/supervision/filings/{id}", get(page_ops_filing))
        .route(
            "/ops/supervision/filings/{id}/review",
            post(page_ops_review),
        )
        .route("/ops/supervision/reports", get(page_ops_month))
        .route(
            "/ops/supervision/reports/{month}/{uscc}",
            get(page_ops_report),
        )
}

// ---- views ----------------------------------------------------------------------------

/// A code with its label in the reader's language.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Labelled {
    /// Stable code.
    pub code: String,
    /// Its label.
    pub label: String,
}

fn labelled(code: &str, (zh, en): (&str, &str), lang: Lang) -> Labelled {
    Labelled {
        code: code.to_owned(),
        label: lang.pick(zh, en).to_owned(),
    }
}

/// The system a filing concerns.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SystemRef {
    /// Id in the registry.
    pub id: Uuid,
    /// Name.
    pub name: Option<String>,
}

/// One step of a filing's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FilingStep {
    /// 1, 2, …
    pub seq: i32,
    /// `submitted`, `returned`, `resubmitted`, `expert_review`, `approved`, `rejected`.
    pub action: String,
    /// Its label.
    pub label: String,
    /// Comments or note.
    pub comment: String,
    /// Who (name).
    pub actor_name: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A filing as its readers see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FilingView {
    /// Id.
    pub id: Uuid,
    /// The filing department (USCC).
    pub department: String,
    /// Its name.
    pub department_name: String,
    /// `construction` or `om`.
    pub kind: Labelled,
    /// Title.
    pub title: String,
    /// Yuan.
    pub amount: i64,
    /// Justification.
    pub justification: String,
    /// State.
    pub state: Labelled,
    /// The information system it concerns.
    pub system: Option<SystemRef>,
    /// Must be reviewed (an O&M request for a flagged or own-room system): it goes to
    /// expert review before it can be approved.
    pub must_review: bool,
    /// Why (`zombie`, `own_room`).
    pub review_reasons: Vec<Labelled>,
    /// What the operator may do now (`approve`, `return`, `expert_review`, `reject`).
    pub review_actions: Vec<String>,
    /// Filed.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// The history, oldest first (on a single filing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<FilingStep>>,
}

fn step_label(action: &str) -> (&'static str, &'static str) {
    match action {
        "submitted" => ("提交备案", "Filed"),
        "resubmitted" => ("修改后重新提交", "Resubmitted"),
        "returned" => ("退回修改", "Returned with comments"),
        "expert_review" => ("送专家评审", "Sent to expert review"),
        "approved" => ("审核通过", "Approved"),
        "rejected" => ("不予通过", "Rejected"),
        _ => ("其他", "Other"),
    }
}

fn department_name(app: &AppState, uscc: &str, lang: Lang) -> String {
    app.catalogue
        .department(uscc)
        .map(|d| lang.pick(&d.name, &d.name_en).to_owned())
        .unwrap_or_else(|| uscc.to_owned())
}

fn filing_view(
    app: &AppState,
    f: &FilingRow,
    events: Option<&[FilingEventRow]>,
    lang: Lang,
) -> FilingView {
    let state = FilingState::from_code(&f.state).unwrap_or(FilingState::Submitted);
    let kind = FilingKind::from_code(&f.kind).unwrap_or(FilingKind::Construction);
    let must_review = !f.review_reasons.is_empty();
    FilingView {
        id: f.id,
        department: f.department.clone(),
        department_name: department_name(app, &f.department, lang),
        kind: labelled(kind.code(), kind.labels(), lang),
        title: f.title.clone(),
        amount: f.amount,
        justification: f.justification.clone(),
        state: labelled(state.code(), state.labels(), lang),
        system: f.system_id.map(|id| SystemRef {
            id,
            name: f.system_name.clone(),
        }),
        must_review,
        review_reasons: f
            .review_reasons
            .iter()
            .filter_map(|r| ReviewReason::from_code(r))
            .map(|r| labelled(r.code(), r.labels(), lang))
            .collect(),
        review_actions: rules::review_actions(state, must_review)
            .into_iter()
            .map(|a| a.code().to_owned())
            .collect(),
        created_at: f.created_at,
        updated_at: f.updated_at,
        history: events.map(|es| {
            es.iter()
                .map(|e| FilingStep {
                    seq: e.seq,
                    action: e.action.clone(),
                    label: lang
                        .pick(step_label(&e.action).0, step_label(&e.action).1)
                        .to_owned(),
                    comment: e.comment.clone(),
                    actor_name: e.actor_name.clone(),
                    at: e.at,
                })
                .collect()
        }),
    }
}

/// A list of filings, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilingList {
    /// The filings.
    pub filings: Vec<FilingView>,
}

/// A key task of the plan.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanTaskView {
    /// Code used in reports.
    pub code: String,
    /// The plan's numbering.
    pub number: String,
    /// Title.
    pub title: String,
    /// Lead department, as the plan names it.
    pub lead: String,
    /// Lead departments today (USCC).
    pub lead_departments: Vec<String>,
    /// Every department reports on it.
    pub all_departments: bool,
    /// The plan's completion date.
    pub deadline: Option<NaiveDate>,
}

/// The plan's key tasks.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanTaskList {
    /// In the plan's order.
    pub tasks: Vec<PlanTaskView>,
}

fn task_views(tasks: &[&rules::PlanTask], lang: Lang) -> PlanTaskList {
    PlanTaskList {
        tasks: tasks
            .iter()
            .map(|t| PlanTaskView {
                code: t.code.clone(),
                number: t.number.clone(),
                title: lang.pick(&t.title, &t.title_en).to_owned(),
                lead: lang.pick(&t.lead, &t.lead_en).to_owned(),
                lead_departments: t.lead_departments.clone(),
                all_departments: t.all_departments,
                deadline: t.deadline,
            })
            .collect(),
    }
}

/// One task's line in a report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportLine {
    /// Task code.
    pub task: String,
    /// The plan's numbering.
    pub number: String,
    /// Task title.
    pub title: String,
    /// 0–100.
    pub percent: i64,
    /// Note.
    pub note: String,
}

/// A department's report for a month.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportView {
    /// Department (USCC).
    pub department: String,
    /// Its name.
    pub department_name: String,
    /// `YYYY-MM`.
    pub month: String,
    /// The last on-time day (30th of the following month; last day of February).
    pub deadline: NaiveDate,
    /// `on_time`, `late`, `due` (not sent, deadline ahead) or `missing`.
    pub status: Labelled,
    /// Sent after the deadline.
    pub late: bool,
    /// Sent (latest revision), if sent.
    pub submitted_at: Option<DateTime<Utc>>,
    /// By whom.
    pub submitted_name: Option<String>,
    /// The mean percentage over its tasks.
    pub mean_percent: Option<f64>,
    /// Progress per task, in the plan's order (empty when not sent).
    pub tasks: Vec<ReportLine>,
    /// Can still be sent or revised by the department.
    pub open: bool,
}

fn report_view(
    app: &AppState,
    department: &str,
    month: NaiveDate,
    r: Option<&ReportRow>,
    today: NaiveDate,
    lang: Lang,
) -> ReportView {
    let status = rules::report_status(month, r.map(|r| r.late), today);
    let lines = r
        .and_then(|r| r.tasks.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|t| {
            let code = t["task"].as_str().unwrap_or_default();
            let task = app.plan_tasks.get(code);
            ReportLine {
                task: code.to_owned(),
                number: task.map(|t| t.number.clone()).unwrap_or_default(),
                title: task
                    .map(|t| lang.pick(&t.title, &t.title_en).to_owned())
                    .unwrap_or_else(|| code.to_owned()),
                percent: t["percent"].as_i64().unwrap_or(0),
                note: t["note"].as_str().unwrap_or_default().to_owned(),
            }
        })
        .collect();
    ReportView {
        department: department.to_owned(),
        department_name: department_name(app, department, lang),
        month: rules::month_code(month),
        deadline: rules::report_deadline(month),
        status: labelled(status.code(), status.labels(), lang),
        late: r.is_some_and(|r| r.late),
        submitted_at: r.map(|r| r.submitted_at),
        submitted_name: r.map(|r| r.submitted_name.clone()),
        mean_percent: r.and_then(|r| rules::mean_percent(&r.tasks)),
        tasks: lines,
        open: rules::reportable(month, today) && (r.is_none() || rules::may_revise(month, today)),
    }
}

/// The months a department is asked about, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportMonths {
    /// The last 12 ended months.
    pub months: Vec<ReportView>,
}

/// A month across the departments.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonthOverview {
    /// `YYYY-MM`.
    pub month: String,
    /// The last on-time day.
    pub deadline: NaiveDate,
    /// Every department, in the catalogue's order.
    pub departments: Vec<ReportView>,
    /// Departments (USCC) that have not reported (status `due` or `missing`).
    pub not_reported: Vec<String>,
    /// Departments (USCC) that reported late.
    pub late: Vec<String>,
}

// ---- JSON: department officers ----------------------------------------------------------

fn officer_filter() -> FilingFilter {
    FilingFilter {
        limit: 200,
        ..FilingFilter::default()
    }
}

/// `GET /api/staff/v1/supervision/filings`.
#[utoipa::path(
    get,
    path = "/api/staff/v1/supervision/filings",
    operation_id = "departmentFilings",
    summary = "My department's filings",
    description = "The project filings (备案) of the officer's department, newest first, with \
        their review state.",
    responses((status = 200, description = "The filings.", body = FilingList), RoleErrors),
    security(("session" = []))
)]
pub async fn dept_filings(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    o: DepartmentOfficer,
) -> AppResult<Json<FilingList>> {
    let rows = rules::list(&app, &o.actor(), officer_filter()).await?;
    Ok(Json(FilingList {
        filings: rows
            .iter()
            .map(|f| filing_view(&app, f, None, lang))
            .collect(),
    }))
}

/// `POST /api/staff/v1/supervision/filings`.
#[utoipa::path(
    post,
    path = "/api/staff/v1/supervision/filings",
    operation_id = "fileProject",
    summary = "File a project",
    description = "Files a construction or O&M project (备案) for the officer's department. An \
        O&M request names the department's system; one for a system the registry flags as a \
        suspected zombie, or that runs in an own machine room, is marked `must_review` and \
        goes to expert review before it can be approved.",
    request_body(content = FilingInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Filed; waiting for review.", body = FilingView),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 422, description = "A field is missing or wrong (`errors` names it).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn dept_file(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    o: DepartmentOfficer,
    AppJson(body): AppJson<FilingInput>,
) -> AppResult<(StatusCode, Json<FilingView>)> {
    let actor = o.actor();
    let f = rules::file(&app, &actor, &body, Utc::now()).await?;
    let (f, events) = rules::visible_filing(&app, &actor, f.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(filing_view(&app, &f, Some(&events), lang)),
    ))
}

/// `GET /api/staff/v1/supervision/filings/{id}`.
#[utoipa::path(
    get,
    path = "/api/staff/v1/supervision/filings/{id}",
    operation_id = "departmentFiling",
    summary = "One of my department's filings",
    description = "A filing with its history. Another department's filing answers 404.",
    params(("id" = Uuid, Path, description = "The filing.")),
    responses(
        (status = 200, description = "The filing.", body = FilingView),
        RoleErrors,
        (status = 404, description = "No such filing of this department.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn dept_filing(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    o: DepartmentOfficer,
    Path(id): Path<Uuid>,
) -> AppResult<Json<FilingView>> {
    let (f, events) = rules::visible_filing(&app, &o.actor(), id).await?;
    Ok(Json(filing_view(&app, &f, Some(&events), lang)))
}

/// What a department resubmits: the filing's contents as changed, and a note.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResubmitBody {
    /// The kind (cannot change).
    pub kind: String,
    /// Title.
    pub title: String,
    /// Yuan.
    pub amount: i64,
    /// Justification.
    pub justification: String,
    /// The system.
    #[serde(default)]
    pub system_id: Option<Uuid>,
    /// What was changed, for the reviewer.
    #[serde(default)]
    pub note: String,
}

/// `POST /api/staff/v1/supervision/filings/{id}/resubmit`.
#[utoipa::path(
    post,
    path = "/api/staff/v1/supervision/filings/{id}/resubmit",
    operation_id = "resubmitFiling",
    summary = "Resubmit a returned filing",
    description = "The department sends a returned filing again, changed as the comments asked; \
        it waits for review again. Only a returned filing can be resubmitted (409 otherwise).",
    params(("id" = Uuid, Path, description = "The filing.")),
    request_body(content = ResubmitBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Resubmitted.", body = FilingView),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such filing of this department.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The filing is not returned.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or wrong.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn dept_resubmit(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    o: DepartmentOfficer,
    Path(id): Path<Uuid>,
    AppJson(body): AppJson<ResubmitBody>,
) -> AppResult<Json<FilingView>> {
    let actor = o.actor();
    let input = FilingInput {
        kind: body.kind,
        title: body.title,
        amount: body.amount,
        justification: body.justification,
        system_id: body.system_id,
    };
    rules::resubmit(&app, &actor, id, &input, &body.note, Utc::now()).await?;
    let (f, events) = rules::visible_filing(&app, &actor, id).await?;
    Ok(Json(filing_view(&app, &f, Some(&events), lang)))
}

/// `GET /api/staff/v1/supervision/plan-tasks`.
#[utoipa::path(
    get,
    path = "/api/staff/v1/supervision/plan-tasks",
    operation_id = "departmentPlanTasks",
    summary = "The key tasks my department reports on",
    description = "The plan's key tasks (重点工作任务) the officer's department takes part in, \
        which its monthly report covers.",
    responses((status = 200, description = "The tasks.", body = PlanTaskList), RoleErrors),
    security(("session" = []))
)]
pub async fn dept_plan_tasks(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    o: DepartmentOfficer,
) -> Json<PlanTaskList> {
    Json(task_views(
        &app.plan_tasks.for_department(&o.department),
        lang,
    ))
}

const MONTHS_SHOWN: usize = 12;

/// `GET /api/staff/v1/supervision/reports`.
#[utoipa::path(
    get,
    path = "/api/staff/v1/supervision/reports",
    operation_id = "departmentReports",
    summary = "My department's monthly reports",
    description = "The last 12 ended months, newest first: each month's deadline (the 30th of \
        the following month; the last day of February) and whether the department reported \
        on time, late, or not yet.",
    responses((status = 200, description = "The months.", body = ReportMonths), RoleErrors),
    security(("session" = []))
)]
pub async fn dept_reports(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    o: DepartmentOfficer,
) -> AppResult<Json<ReportMonths>> {
    Ok(Json(ReportMonths {
        months: dept_months(&app, &o.department, lang).await?,
    }))
}

async fn dept_months(app: &AppState, department: &str, lang: Lang) -> AppResult<Vec<ReportView>> {
    let today = rules::china_date(Utc::now());
    let months = rules::department_months(app, department, today, MONTHS_SHOWN).await?;
    Ok(months
        .iter()
        .map(|(m, _, r)| report_view(app, department, *m, r.as_ref(), today, lang))
        .collect())
}

/// `GET /api/staff/v1/supervision/reports/{month}`.
#[utoipa::path(
    get,
    path = "/api/staff/v1/supervision/reports/{month}",
    operation_id = "departmentReport",
    summary = "My department's report for a month",
    description = "The report (empty `tasks` and status `due` or `missing` when not sent).",
    params(("month" = String, Path, description = "The month reported on, `YYYY-MM`.", example = "2026-11")),
    responses(
        (status = 200, description = "The report.", body = ReportView),
        (status = 400, description = "The month is not `YYYY-MM`.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn dept_report(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    o: DepartmentOfficer,
    Path(month): Path<String>,
) -> AppResult<Json<ReportView>> {
    let m = rules::month_of(&month)?;
    let r = app
        .store
        .report(&o.department, &rules::month_code(m))
        .await?;
    let today = rules::china_date(Utc::now());
    Ok(Json(report_view(
        &app,
        &o.department,
        m,
        r.as_ref(),
        today,
        lang,
    )))
}

/// A monthly report: progress on each key task the department reports on.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// One entry per task of `GET /api/staff/v1/supervision/plan-tasks`.
    pub tasks: Vec<TaskProgress>,
}

/// `PUT /api/staff/v1/supervision/reports/{month}`.
#[utoipa::path(
    put,
    path = "/api/staff/v1/supervision/reports/{month}",
    operation_id = "putDepartmentReport",
    summary = "Report a month's progress",
    description = "Sends (201) or, until the deadline, revises (200) the department's progress \
        report for an ended month. Sent after the deadline it is marked `late`; after the \
        deadline a sent report is final (409).",
    params(("month" = String, Path, description = "The month reported on, `YYYY-MM`.", example = "2026-11")),
    request_body(content = ReportBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Revised.", body = ReportView),
        (status = 201, description = "Sent.", body = ReportView),
        (status = 400, description = "The month is not `YYYY-MM`, or the body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 409, description = "The month has not ended, or its report is final.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A task is missing, unknown or twice, or a percentage is outside 0–100.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn dept_put_report(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    o: DepartmentOfficer,
    Path(month): Path<String>,
    AppJson(body): AppJson<ReportBody>,
) -> AppResult<(StatusCode, Json<ReportView>)> {
    let now = Utc::now();
    let done = rules::submit_report(&app, &o.actor(), &month, &body.tasks, now).await?;
    let m = rules::month_of(&month)?;
    let view = report_view(
        &app,
        &o.department,
        m,
        Some(&done.report),
        rules::china_date(now),
        lang,
    );
    let status = if done.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

// ---- JSON: operators ------------------------------------------------------------------

/// Filing filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilingQuery {
    /// Comma-separated states (`submitted,expert_review`); all when absent.
    pub state: Option<String>,
    /// One department (USCC).
    pub department: Option<String>,
    /// Only filings marked for review.
    pub must_review: Option<bool>,
}

fn filter_of(q: &FilingQuery) -> AppResult<FilingFilter> {
    let mut states = Vec::new();
    for s in q
        .state
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
    {
        if FilingState::from_code(s).is_none() {
            return Err(AppError::BadRequest(Message::new(
                format!("未知的备案状态“{s}”。"),
                format!("Unknown filing state {s:?}."),
            )));
        }
        states.push(s.to_owned());
    }
    Ok(FilingFilter {
        department: q.department.clone().filter(|d| !d.is_empty()),
        states,
        must_review: q.must_review.unwrap_or(false),
        limit: 200,
    })
}

/// `GET /api/ops/v1/supervision/filings`.
#[utoipa::path(
    get,
    path = "/api/ops/v1/supervision/filings",
    operation_id = "filings",
    summary = "Every department's filings",
    description = "Project filings of every department, newest first (at most 200), by state, \
        department, and whether they are marked for review.",
    params(FilingQuery),
    responses(
        (status = 200, description = "The filings.", body = FilingList),
        (status = 400, description = "An unknown state.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn ops_filings(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    op: Operator,
    q: Result<Query<FilingQuery>, QueryRejection>,
) -> AppResult<Json<FilingList>> {
    let q = query_params(q)?;
    let rows = rules::list(&app, &op.actor(), filter_of(&q)?).await?;
    Ok(Json(FilingList {
        filings: rows
            .iter()
            .map(|f| filing_view(&app, f, None, lang))
            .collect(),
    }))
}

/// `GET /api/ops/v1/supervision/filings/{id}`.
#[utoipa::path(
    get,
    path = "/api/ops/v1/supervision/filings/{id}",
    operation_id = "filing",
    summary = "One filing",
    description = "A filing with its history and the review actions its state allows.",
    params(("id" = Uuid, Path, description = "The filing.")),
    responses(
        (status = 200, description = "The filing.", body = FilingView),
        RoleErrors,
        (status = 404, description = "No such filing.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_filing(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    op: Operator,
    Path(id): Path<Uuid>,
) -> AppResult<Json<FilingView>> {
    let (f, events) = rules::visible_filing(&app, &op.actor(), id).await?;
    Ok(Json(filing_view(&app, &f, Some(&events), lang)))
}

/// A review decision.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// `approve`, `return` (comments required), `expert_review`, `reject` (reasons required).
    pub action: String,
    /// Comments for the department.
    #[serde(default)]
    pub comment: String,
}

fn review_action(code: &str) -> AppResult<ReviewAction> {
    ReviewAction::from_code(code).ok_or_else(|| {
        AppError::Invalid(vec![crate::http::error::FieldError {
            field: "action".into(),
            message: Message::new(
                "审核操作应为 approve、return、expert_review 或 reject。",
                "The action must be approve, return, expert_review or reject.",
            ),
        }])
    })
}

/// `POST /api/ops/v1/supervision/filings/{id}/review`.
#[utoipa::path(
    post,
    path = "/api/ops/v1/supervision/filings/{id}/review",
    operation_id = "reviewFiling",
    summary = "Review a filing",
    description = "Approve, return with comments, send to expert review, or reject. A filing \
        marked for review cannot be approved before expert review; a returned, approved or \
        rejected filing takes no review (409).",
    params(("id" = Uuid, Path, description = "The filing.")),
    request_body(content = ReviewBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Reviewed.", body = FilingView),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such filing.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The filing's state does not take this action.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown action, or comments missing or too long.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_review(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    op: Operator,
    Path(id): Path<Uuid>,
    AppJson(body): AppJson<ReviewBody>,
) -> AppResult<Json<FilingView>> {
    let action = review_action(&body.action)?;
    let actor = op.actor();
    rules::review(&app, &actor, id, action, &body.comment, Utc::now()).await?;
    let (f, events) = rules::visible_filing(&app, &actor, id).await?;
    Ok(Json(filing_view(&app, &f, Some(&events), lang)))
}

/// `GET /api/ops/v1/supervision/plan-tasks`.
#[utoipa::path(
    get,
    path = "/api/ops/v1/supervision/plan-tasks",
    operation_id = "planTasks",
    summary = "The plan's key tasks",
    description = "Every key task of the integration plan (`plan-tasks.toml`), with who leads \
        and who reports on it.",
    responses((status = 200, description = "The tasks.", body = PlanTaskList), RoleErrors),
    security(("session" = []))
)]
pub async fn ops_plan_tasks(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    _op: Operator,
) -> Json<PlanTaskList> {
    let all: Vec<&rules::PlanTask> = app.plan_tasks.all().iter().collect();
    Json(task_views(&all, lang))
}

/// The month to look at.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthQuery {
    /// `YYYY-MM`; the last ended month when absent.
    pub month: Option<String>,
}

async fn overview(app: &AppState, month: NaiveDate, lang: Lang) -> AppResult<MonthOverview> {
    let today = rules::china_date(Utc::now());
    let lines = rules::month_overview(app, month, today).await?;
    let departments: Vec<ReportView> = lines
        .iter()
        .map(|l| report_view(app, &l.department, month, l.report.as_ref(), today, lang))
        .collect();
    Ok(MonthOverview {
        month: rules::month_code(month),
        deadline: rules::report_deadline(month),
        not_reported: lines
            .iter()
            .filter(|l| matches!(l.status, ReportStatus::Due | ReportStatus::Missing))
            .map(|l| l.department.clone())
            .collect(),
        late: lines
            .iter()
            .filter(|l| l.status == ReportStatus::Late)
            .map(|l| l.department.clone())
            .collect(),
        departments,
    })
}

fn month_or_last(month: Option<&str>) -> AppResult<NaiveDate> {
    match month.filter(|m| !m.is_empty()) {
        Some(m) => Ok(rules::month_of(m)?),
        None => Ok(rules::last_reportable(rules::china_date(Utc::now()))),
    }
}

/// `GET /api/ops/v1/supervision/reports`.
#[utoipa::path(
    get,
    path = "/api/ops/v1/supervision/reports",
    operation_id = "monthReports",
    summary = "Who reported for a month",
    description = "Every department for a month: reported on time, late, not yet (deadline \
        ahead) or missing (deadline passed), with the mean progress of each report.",
    params(MonthQuery),
    responses(
        (status = 200, description = "The month.", body = MonthOverview),
        (status = 400, description = "The month is not `YYYY-MM`.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn ops_month(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    _op: Operator,
    q: Result<Query<MonthQuery>, QueryRejection>,
) -> AppResult<Json<MonthOverview>> {
    let q = query_params(q)?;
    let month = month_or_last(q.month.as_deref())?;
    Ok(Json(overview(&app, month, lang).await?))
}

fn known_department(app: &AppState, uscc: &str) -> AppResult<()> {
    if app.catalogue.department(uscc).is_none() {
        return Err(AppError::NotFound(Message::new(
            "没有这个部门。",
            "There is no such department.",
        )));
    }
    Ok(())
}

/// `GET /api/ops/v1/supervision/reports/{month}/{uscc}`.
#[utoipa::path(
    get,
    path = "/api/ops/v1/supervision/reports/{month}/{uscc}",
    operation_id = "departmentMonthReport",
    summary = "A department's report for a month",
    description = "The report with its progress per task (empty when not sent).",
    params(
        ("month" = String, Path, description = "`YYYY-MM`.", example = "2026-11"),
        ("uscc" = String, Path, description = "The department's USCC.", example = "11150700MB1530001X"),
    ),
    responses(
        (status = 200, description = "The report.", body = ReportView),
        (status = 400, description = "The month is not `YYYY-MM`.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such department.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_report(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    _op: Operator,
    Path((month, uscc)): Path<(String, String)>,
) -> AppResult<Json<ReportView>> {
    let m = rules::month_of(&month)?;
    known_department(&app, &uscc)?;
    let r = app.store.report(&uscc, &rules::month_code(m)).await?;
    let today = rules::china_date(Utc::now());
    Ok(Json(report_view(&app, &uscc, m, r.as_ref(), today, lang)))
}

// ---- pages ----------------------------------------------------------------------------

fn amount_text(yuan: i64) -> String {
    // thousands separated, as on a budget sheet
    let digits = yuan.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if yuan < 0 { format!("-{out}") } else { out }
}

/// A filing for a page: the view with times and amount as text.
fn page_filing(
    app: &AppState,
    f: &FilingRow,
    events: Option<&[FilingEventRow]>,
    lang: Lang,
) -> Value {
    let v = filing_view(app, f, events, lang);
    let mut j = serde_json::to_value(&v).unwrap_or(Value::Null);
    j["amount_text"] = Value::from(amount_text(f.amount));
    j["created"] = Value::from(cst(f.created_at));
    j["updated"] = Value::from(cst(f.updated_at));
    if let Some(es) = events {
        j["timeline"] = Value::from(
            es.iter()
                .map(|e| {
                    let (zh, en) = step_label(&e.action);
                    json!({ "what": lang.pick(zh, en), "who": e.actor_name, "when": cst(e.at), "note": e.comment, "action": e.action })
                })
                .collect::<Vec<_>>(),
        );
        // the reviewer's latest comments, for a returned filing
        j["last_comment"] = Value::from(
            es.iter()
                .rev()
                .find(|e| e.action == "returned")
                .map(|e| e.comment.clone()),
        );
    }
    j
}

fn state_options(lang: Lang) -> Vec<Labelled> {
    FilingState::ALL
        .iter()
        .map(|s| labelled(s.code(), s.labels(), lang))
        .collect()
}

/// A form's problems: a list for the summary and one text per field.
#[derive(Debug, Default, Serialize)]
struct FormErrors {
    list: Vec<Value>,
    fields: HashMap<String, String>,
}

impl FormErrors {
    fn add(&mut self, field: &str, anchor: &str, text: String) {
        self.list.push(json!({ "anchor": anchor, "text": text }));
        self.fields.entry(field.to_owned()).or_insert(text);
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Field anchors of the filing form.
fn filing_anchor(field: &str) -> &str {
    match field {
        "kind" => "kind-construction",
        "title" | "amount" | "justification" | "system_id" | "comment" | "note" => field,
        _ => "title",
    }
}

fn form_errors_of(e: usecases::Error, lang: Lang) -> Result<FormErrors, AppError> {
    let mut errors = FormErrors::default();
    match e {
        usecases::Error::Invalid(issues) => {
            for i in issues {
                let text = lang.pick(&i.zh, &i.en).to_owned();
                errors.add(&i.field, filing_anchor(&i.field), text);
            }
            Ok(errors)
        }
        usecases::Error::Conflict { message, .. } => {
            errors
                .list
                .push(json!({ "anchor": null, "text": lang.pick(&message.zh, &message.en) }));
            Ok(errors)
        }
        other => Err(other.into()),
    }
}

/// A filing form's values, as posted.
fn input_of(form: &HashMap<String, String>) -> FilingInput {
    let get = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let amount_text: String = get("amount")
        .chars()
        .filter(|c| *c != ',' && !c.is_whitespace())
        .collect();
    FilingInput {
        kind: get("kind"),
        title: get("title"),
        // not a whole number: the amount check refuses it with its own message
        amount: amount_text.parse().unwrap_or(-1),
        justification: get("justification"),
        system_id: match get("system_id").as_str() {
            "" => None,
            s => Some(s.parse().unwrap_or(Uuid::nil())),
        },
    }
}

async fn system_options(app: &AppState, department: &str) -> AppResult<Vec<Value>> {
    Ok(app
        .store
        .department_systems(department)
        .await?
        .into_iter()
        .filter(|s| rules::system_takes_filings(&s.status))
        .map(|s| json!({ "id": s.id, "name": s.name, "own_room": s.hosting == "own_room", "flagged": s.status == "flagged" }))
        .collect())
}

fn kind_options(lang: Lang) -> Vec<Labelled> {
    FilingKind::ALL
        .iter()
        .map(|k| labelled(k.code(), k.labels(), lang))
        .collect()
}

/// `GET /desk/supervision/filings`.
async fn page_dept_filings(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let rows = rules::list(&app, &o.actor(), officer_filter()).await?;
    let filings: Vec<Value> = rows
        .iter()
        .map(|f| page_filing(&app, f, None, ctx.lang))
        .collect();
    Ok(ctx.render(
        StatusCode::OK,
        "supervision/filings/list.html",
        context! {
            area => "desk",
            department => department_name(&app, &o.department, ctx.lang),
            filings,
            state => "",
            must_review => false,
            state_options => state_options(ctx.lang),
        },
    ))
}

async fn render_new(
    app: &AppState,
    ctx: &PageCtx,
    o: &DepartmentOfficer,
    status: StatusCode,
    input: &FilingInput,
    errors: FormErrors,
) -> AppResult<Response> {
    Ok(ctx.render(
        status,
        "supervision/filings/new.html",
        context! {
            department => department_name(app, &o.department, ctx.lang),
            form => input,
            amount => if input.amount > 0 { input.amount.to_string() } else { String::new() },
            errors => errors.list,
            field_errors => errors.fields,
            kinds => kind_options(ctx.lang),
            systems => system_options(app, &o.department).await?,
        },
    ))
}

/// `GET /desk/supervision/filings/new`.
async fn page_dept_new(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    render_new(
        &app,
        &ctx,
        &o,
        StatusCode::OK,
        &FilingInput::default(),
        FormErrors::default(),
    )
    .await
}

/// `POST /desk/supervision/filings`.
async fn page_dept_file(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let o = match ctx.form_user(who, true, &form) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let input = input_of(&form);
    match rules::file(&app, &o.actor(), &input, Utc::now()).await {
        Ok(f) => Ok(
            Redirect::to(&format!("/desk/supervision/filings/{}?done=filed", f.id)).into_response(),
        ),
        Err(e) => {
            let errors = form_errors_of(e, ctx.lang)?;
            render_new(
                &app,
                &ctx,
                &o,
                StatusCode::UNPROCESSABLE_ENTITY,
                &input,
                errors,
            )
            .await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn render_filing(
    app: &AppState,
    ctx: &PageCtx,
    actor: &Actor,
    id: Uuid,
    area: &str,
    status: StatusCode,
    done: Option<String>,
    form: Option<Value>,
    errors: FormErrors,
) -> AppResult<Response> {
    let (f, events) = rules::visible_filing(app, actor, id).await?;
    let filing = page_filing(app, &f, Some(&events), ctx.lang);
    let actions: Vec<Labelled> = FilingState::from_code(&f.state)
        .map(|s| rules::review_actions(s, !f.review_reasons.is_empty()))
        .unwrap_or_default()
        .into_iter()
        .map(|a| labelled(a.code(), a.labels(), ctx.lang))
        .collect();
    let systems = if area == "desk" && f.state == "returned" {
        system_options(app, &f.department).await?
    } else {
        Vec::new()
    };
    let form = form.unwrap_or_else(|| {
        json!({ "title": f.title, "amount": f.amount.to_string(), "justification": f.justification,
                "system_id": f.system_id, "kind": f.kind, "note": "", "action": "", "comment": "" })
    });
    Ok(ctx.render(
        status,
        "supervision/filings/detail.html",
        context! {
            area,
            filing,
            actions,
            systems,
            done,
            form,
            errors => errors.list,
            field_errors => errors.fields,
        },
    ))
}

/// `GET /desk/supervision/filings/{id}`.
async fn page_dept_filing(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path(id): Path<Uuid>,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    render_filing(
        &app,
        &ctx,
        &o.actor(),
        id,
        "desk",
        StatusCode::OK,
        q.done,
        None,
        FormErrors::default(),
    )
    .await
}

/// `POST /desk/supervision/filings/{id}/resubmit`.
async fn page_dept_resubmit(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path(id): Path<Uuid>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let o = match ctx.form_user(who, true, &form) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let actor = o.actor();
    let (f, _) = rules::visible_filing(&app, &actor, id).await?;
    let mut input = input_of(&form);
    input.kind = f.kind.clone();
    let note = form.get("note").cloned().unwrap_or_default();
    match rules::resubmit(&app, &actor, id, &input, &note, Utc::now()).await {
        Ok(_) => Ok(
            Redirect::to(&format!("/desk/supervision/filings/{id}?done=resubmitted"))
                .into_response(),
        ),
        Err(e) => {
            let errors = form_errors_of(e, ctx.lang)?;
            let values = json!({ "title": input.title, "amount": form.get("amount").cloned().unwrap_or_default(),
                "justification": input.justification, "system_id": input.system_id, "note": note });
            render_filing(
                &app,
                &ctx,
                &actor,
                id,
                "desk",
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(values),
                errors,
            )
            .await
        }
    }
}

/// Operator list filters (`?state=&review=1`).
#[derive(Debug, Default, Deserialize)]
struct OpsListQuery {
    state: Option<String>,
    review: Option<String>,
}

/// `GET /ops/supervision/filings`.
async fn page_ops_filings(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Query(q): Query<OpsListQuery>,
) -> AppResult<Response> {
    let op = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let state = q.state.clone().unwrap_or_default();
    let must_review = q.review.as_deref() == Some("1");
    let filter = filter_of(&FilingQuery {
        state: Some(state.clone()),
        department: None,
        must_review: Some(must_review),
    })?;
    let rows = rules::list(&app, &op.actor(), filter).await?;
    let filings: Vec<Value> = rows
        .iter()
        .map(|f| page_filing(&app, f, None, ctx.lang))
        .collect();
    Ok(ctx.render(
        StatusCode::OK,
        "supervision/filings/list.html",
        context! {
            area => "ops",
            filings,
            state,
            must_review,
            state_options => state_options(ctx.lang),
        },
    ))
}

/// `GET /ops/supervision/filings/{id}`.
async fn page_ops_filing(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path(id): Path<Uuid>,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let op = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    render_filing(
        &app,
        &ctx,
        &op.actor(),
        id,
        "ops",
        StatusCode::OK,
        q.done,
        None,
        FormErrors::default(),
    )
    .await
}

/// `POST /ops/supervision/filings/{id}/review` (`action`, `comment`).
async fn page_ops_review(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path(id): Path<Uuid>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let op = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    check_csrf(form.get("_csrf").map(String::as_str), Some(&op.0.session))?;
    let actor = op.actor();
    let action_code = form.get("action").cloned().unwrap_or_default();
    let comment = form.get("comment").cloned().unwrap_or_default();
    let values = json!({ "action": action_code, "comment": comment });
    let Some(action) = ReviewAction::from_code(&action_code) else {
        let mut errors = FormErrors::default();
        errors.add("action", "action-0", ctx.t("sup_filings.error_action"));
        return render_filing(
            &app,
            &ctx,
            &actor,
            id,
            "ops",
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(values),
            errors,
        )
        .await;
    };
    match rules::review(&app, &actor, id, action, &comment, Utc::now()).await {
        Ok(_) => Ok(Redirect::to(&format!(
            "/ops/supervision/filings/{id}?done={}",
            action.code()
        ))
        .into_response()),
        Err(e) => {
            let errors = form_errors_of(e, ctx.lang)?;
            render_filing(
                &app,
                &ctx,
                &actor,
                id,
                "ops",
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(values),
                errors,
            )
            .await
        }
    }
}

fn report_page_value(v: &ReportView) -> Value {
    let mut j = serde_json::to_value(v).unwrap_or(Value::Null);
    j["submitted"] = Value::from(v.submitted_at.map(cst));
    j
}

/// `GET /desk/supervision/reports`.
async fn page_dept_reports(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let months: Vec<Value> = dept_months(&app, &o.department, ctx.lang)
        .await?
        .iter()
        .map(report_page_value)
        .collect();
    Ok(ctx.render(
        StatusCode::OK,
        "supervision/filings/reports.html",
        context! {
            department => department_name(&app, &o.department, ctx.lang),
            months,
            done => q.done,
        },
    ))
}

/// The report form's lines: every task of the department with the values sent or posted.
fn form_lines(
    app: &AppState,
    department: &str,
    sent: &[ReportLine],
    posted: Option<&HashMap<String, String>>,
    lang: Lang,
) -> Vec<Value> {
    app.plan_tasks
        .for_department(department)
        .iter()
        .map(|t| {
            let was = sent.iter().find(|l| l.task == t.code);
            let percent = posted
                .and_then(|p| p.get(&format!("percent_{}", t.code)).cloned())
                .or_else(|| was.map(|l| l.percent.to_string()))
                .unwrap_or_default();
            let note = posted
                .and_then(|p| p.get(&format!("note_{}", t.code)).cloned())
                .or_else(|| was.map(|l| l.note.clone()))
                .unwrap_or_default();
            json!({
                "code": t.code, "number": t.number, "title": lang.pick(&t.title, &t.title_en),
                "lead": lang.pick(&t.lead, &t.lead_en), "deadline": t.deadline,
                "percent": percent,
                // typed text in Chinese is marked as such on an English page
                "note_zh": note.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "note": note,
            })
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn render_report(
    app: &AppState,
    ctx: &PageCtx,
    area: &str,
    department: &str,
    month: NaiveDate,
    status: StatusCode,
    posted: Option<&HashMap<String, String>>,
    errors: FormErrors,
) -> AppResult<Response> {
    let r = app
        .store
        .report(department, &rules::month_code(month))
        .await?;
    let today = rules::china_date(Utc::now());
    let view = report_view(app, department, month, r.as_ref(), today, ctx.lang);
    let lines = form_lines(app, department, &view.tasks, posted, ctx.lang);
    Ok(ctx.render(
        status,
        "supervision/filings/report.html",
        context! {
            area,
            report => report_page_value(&view),
            lines,
            editable => area == "desk" && view.open,
            reportable => rules::reportable(month, today),
            errors => errors.list,
            field_errors => errors.fields,
        },
    ))
}

/// `GET /desk/supervision/reports/{month}`.
async fn page_dept_report(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path(month): Path<String>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let m = rules::month_of(&month)?;
    render_report(
        &app,
        &ctx,
        "desk",
        &o.department,
        m,
        StatusCode::OK,
        None,
        FormErrors::default(),
    )
    .await
}

/// `POST /desk/supervision/reports/{month}` (`percent_<task>`, `note_<task>` per task).
async fn page_dept_put_report(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path(month): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let o = match ctx.form_user(who, true, &form) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let m = rules::month_of(&month)?;
    let mut errors = FormErrors::default();
    let mut entries = Vec::new();
    for t in app.plan_tasks.for_department(&o.department) {
        let raw = form
            .get(&format!("percent_{}", t.code))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        match raw.parse::<i64>() {
            Ok(p) => entries.push(TaskProgress {
                task: t.code.clone(),
                percent: p,
                note: form
                    .get(&format!("note_{}", t.code))
                    .cloned()
                    .unwrap_or_default(),
            }),
            Err(_) => errors.add(
                &format!("percent_{}", t.code),
                &format!("percent_{}", t.code),
                ctx.t("sup_filings.error_percent"),
            ),
        }
    }
    if errors.is_empty() {
        match rules::submit_report(&app, &o.actor(), &month, &entries, Utc::now()).await {
            Ok(r) => {
                let done = if r.created { "sent" } else { "revised" };
                return Ok(
                    Redirect::to(&format!("/desk/supervision/reports?done={done}")).into_response(),
                );
            }
            Err(usecases::Error::Invalid(issues)) => {
                for i in issues {
                    // `tasks[n].percent` → the n-th entry's task
                    let field = i
                        .field
                        .strip_prefix("tasks[")
                        .and_then(|r| r.split_once(']'))
                        .and_then(|(n, rest)| {
                            let e = entries.get(n.parse::<usize>().ok()?)?;
                            Some(format!("{}_{}", rest.trim_start_matches('.'), e.task))
                        })
                        .unwrap_or_else(|| i.field.clone());
                    errors.add(&field, &field, ctx.lang.pick(&i.zh, &i.en).to_owned());
                }
            }
            Err(e) => {
                let e = form_errors_of(e, ctx.lang)?;
                errors.list.extend(e.list);
            }
        }
    }
    render_report(
        &app,
        &ctx,
        "desk",
        &o.department,
        m,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(&form),
        errors,
    )
    .await
}

/// `GET /ops/supervision/reports?month=`.
async fn page_ops_month(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Query(q): Query<MonthQuery>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    let month = month_or_last(q.month.as_deref())?;
    let o = overview(&app, month, ctx.lang).await?;
    let departments: Vec<Value> = o.departments.iter().map(report_page_value).collect();
    let last = rules::last_reportable(rules::china_date(Utc::now()));
    let prev = rules::previous_month(month);
    let next = if month < last {
        // the month after, by stepping back from the last one
        let mut m = last;
        while rules::previous_month(m) > month {
            m = rules::previous_month(m);
        }
        Some(rules::month_code(m))
    } else {
        None
    };
    Ok(ctx.render(
        StatusCode::OK,
        "supervision/filings/month.html",
        context! {
            month => o.month,
            deadline => o.deadline,
            departments,
            not_reported => o.not_reported.len(),
            late => o.late.len(),
            on_time => o.departments.iter().filter(|d| d.status.code == "on_time").count(),
            prev => rules::month_code(prev),
            next,
        },
    ))
}

/// `GET /ops/supervision/reports/{month}/{uscc}`.
async fn page_ops_report(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path((month, uscc)): Path<(String, String)>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    let m = rules::month_of(&month)?;
    known_department(&app, &uscc)?;
    render_report(
        &app,
        &ctx,
        "ops",
        &uscc,
        m,
        StatusCode::OK,
        None,
        FormErrors::default(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_shown_in_thousands() {
        assert_eq!(amount_text(0), "0");
        assert_eq!(amount_text(999), "999");
        assert_eq!(amount_text(1_850_000), "1,850,000");
        assert_eq!(amount_text(12_345), "12,345");
    }

    #[test]
    fn every_label_exists_in_both_languages() {
        for a in ReviewAction::ALL {
            let (zh, en) = a.labels();
            assert!(!zh.is_empty() && !en.is_empty());
        }
        for s in [
            "submitted",
            "resubmitted",
            "returned",
            "expert_review",
            "approved",
            "rejected",
        ] {
            assert_ne!(step_label(s).1, "Other", "{s}");
        }
    }

    #[test]
    fn posted_amounts_may_carry_separators() {
        let mut f = HashMap::new();
        f.insert("amount".to_owned(), " 1,200,000 ".to_owned());
        f.insert("system_id".to_owned(), "nonsense".to_owned());
        let i = input_of(&f);
        assert_eq!(i.amount, 1_200_000);
        assert_eq!(i.system_id, Some(Uuid::nil()));
        f.insert("amount".to_owned(), "12.5".to_owned());
        assert_eq!(input_of(&f).amount, -1);
    }
}
