//! The department officer's desk (部门工作台), for departments without their own back-end:
//!
//! - `GET /desk/cases`: the department's worklist, filtered by status and by deadline
//!   state, paged, each case with its deadline badge in words;
//! - `GET /desk/cases/{case_no}`: the application (form answers, materials), the history,
//!   a joint case's parts, and the steps the state allows the officer now;
//! - `POST /desk/cases/{case_no}/step`: one step (start review, suspend or resume with a
//!   reason, conclude with 准予 / 不予, a note and an optional result document), through
//!   `usecases::step` like the JSON staff transition; then back to the case (303).
//!
//! The case is read as the JSON staff route reads it: only a case of the officer's own
//! department is found, and the read is recorded in the applicant's data-access trail.

use crate::http::path::Path;
use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::paging::{self, ListAt, pager as keyset_pager, shown_total};
use super::{PageCtx, check_csrf};
use crate::auth::extract::DepartmentOfficer;
use crate::domain::case::{Action, CaseStatus, ConclusionResult, Request};
use crate::domain::catalogue::{CaseKind, Field, FieldType, Service};
use crate::domain::deadline;
use crate::domain::lang::Lang;
use crate::http::cases::views::{CaseDetail, Deadline};
use crate::http::cases::{multipart_error, store_upload};
use crate::http::error::{AppError, AppResult, Message};
use crate::state::AppState;
use crate::store::{CaseFilter, CaseKey, CaseRow};
use crate::usecases::step::{self, RESULT_DOCUMENT};
use crate::usecases::{self, Actor, MaterialInput};

/// The routes of the desk.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/desk/cases", get(worklist))
        .route("/desk/cases/{case_no}", get(case_page))
        .route(
            "/desk/cases/{case_no}/materials/{upload_id}",
            get(material_file),
        )
        .route(
            "/desk/cases/{case_no}/step",
            post(take_step).layer(DefaultBodyLimit::max(STEP_BODY_LIMIT)),
        )
}

/// A step's form with its result document (at most 50 MB) and its texts.
const STEP_BODY_LIMIT: usize = 52 * 1024 * 1024;
/// Cases per page.
const PER_PAGE: i64 = 20;
/// A deadline filter looks at this many of the department's cases at most.
const DEADLINE_SCAN: i64 = 1000;
/// The longest note kept.
const MAX_NOTE: usize = 2000;

/// The statuses an officer filters by, in lifecycle order.
const DESK_STATUSES: [CaseStatus; 6] = [
    CaseStatus::Accepted,
    CaseStatus::UnderReview,
    CaseStatus::Suspended,
    CaseStatus::CorrectionRequested,
    CaseStatus::Approved,
    CaseStatus::Rejected,
];

/// Cases still with the department (the default view).
const OPEN: [CaseStatus; 4] = [
    CaseStatus::Accepted,
    CaseStatus::UnderReview,
    CaseStatus::Suspended,
    CaseStatus::CorrectionRequested,
];

/// The deadline states an officer filters by.
const DEADLINE_STATES: [deadline::DeadlineState; 4] = [
    deadline::DeadlineState::OnTime,
    deadline::DeadlineState::DueSoon,
    deadline::DeadlineState::Overdue,
    deadline::DeadlineState::Paused,
];

/// A date and time in the city's time zone (UTC+8).
pub(crate) fn local_time(at: DateTime<Utc>) -> String {
    let cst = FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    at.with_timezone(&cst).format("%Y-%m-%d %H:%M").to_string()
}

/// Worklist filters (`?state=&deadline=&page=`).
#[derive(Debug, Default, Deserialize)]
pub struct DeskQuery {
    state: Option<String>,
    deadline: Option<String>,
    page: Option<i64>,
    before: Option<String>,
    from: Option<i64>,
}

/// Statuses to list for the `state` filter: `open` (the default), `all`, or one status.
fn statuses_for(state: &str) -> Option<Vec<String>> {
    match state {
        "" | "open" => Some(OPEN.iter().map(|s| s.code().to_owned()).collect()),
        "all" => Some(Vec::new()),
        code => DESK_STATUSES
            .iter()
            .find(|s| s.code() == code)
            .map(|s| vec![s.code().to_owned()]),
    }
}

/// A query string for the worklist with these filters and page.
fn list_href(state: &str, deadline: &str, page: i64) -> String {
    let mut q: Vec<String> = Vec::new();
    if !state.is_empty() {
        q.push(format!("state={state}"));
    }
    if !deadline.is_empty() {
        q.push(format!("deadline={deadline}"));
    }
    if page > 1 {
        q.push(format!("page={page}"));
    }
    if q.is_empty() {
        "/desk/cases".into()
    } else {
        format!("/desk/cases?{}", q.join("&"))
    }
}

/// The filters of the worklist as a query string (without paging).
fn filter_query(state: &str, deadline: &str) -> String {
    let mut q: Vec<String> = Vec::new();
    if !state.is_empty() {
        q.push(format!("state={state}"));
    }
    if !deadline.is_empty() {
        q.push(format!("deadline={deadline}"));
    }
    q.join("&")
}

/// The pager's values: rows `from`–`to` of `total`, links to the neighbours (the
/// deadline-filtered list, which is paged by number over what was scanned).
fn pager(state: &str, deadline: &str, page: i64, shown: usize, total: i64) -> Value {
    let from = if shown == 0 {
        0
    } else {
        (page - 1) * PER_PAGE + 1
    };
    let to = (page - 1) * PER_PAGE + shown as i64;
    serde_json::json!({
        "from": from,
        "to": to,
        "total": total,
        "prev": (page > 1).then(|| list_href(state, deadline, page - 1)),
        "next": (to < total).then(|| list_href(state, deadline, page + 1)),
    })
}

/// One row of the worklist.
#[derive(Debug, Serialize)]
struct Row {
    case_no: String,
    service: String,
    applicant: String,
    status: String,
    status_label: String,
    deadline: Deadline,
    submitted: String,
}

fn row_of(app: &AppState, c: &CaseRow, lang: Lang) -> Row {
    Row {
        case_no: c.case_no.clone(),
        service: app
            .catalogue
            .service(&c.service_code)
            .map(|s| lang.pick(&s.name, &s.name_en).to_owned())
            .unwrap_or_else(|| c.service_code.clone()),
        applicant: c.applicant.name.clone(),
        status: c.status.clone(),
        status_label: status_label(&c.status, lang),
        deadline: Deadline::of(&app.calendar.current(), c, lang),
        submitted: local_time(c.created_at),
    }
}

fn status_label(code: &str, lang: Lang) -> String {
    CaseStatus::from_code(code)
        .map(|s| {
            let (zh, en) = s.labels();
            lang.pick(zh, en).to_owned()
        })
        .unwrap_or_else(|| code.to_owned())
}

/// `GET /desk/cases`.
pub async fn worklist(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Query(q): Query<DeskQuery>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let lang = ctx.lang;
    let state = q.state.clone().unwrap_or_default();
    let statuses = statuses_for(&state).ok_or_else(|| {
        AppError::BadRequest(Message::new(
            "没有这个办件状态。",
            "There is no such status.",
        ))
    })?;
    let wanted_deadline = q
        .deadline
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(|d| {
            DEADLINE_STATES
                .iter()
                .copied()
                .find(|s| s.code() == d)
                .ok_or_else(|| {
                    AppError::BadRequest(Message::new(
                        "没有这个时限状态。",
                        "There is no such deadline state.",
                    ))
                })
        })
        .transpose()?;
    let page = q.page.unwrap_or(1).max(1);
    let deadline_code = wanted_deadline.map(|d| d.code()).unwrap_or("");
    let mut filter = CaseFilter {
        departments: Some(vec![o.department.clone()]),
        statuses,
        limit: PER_PAGE,
        offset: (page - 1) * PER_PAGE,
        ..CaseFilter::default()
    };
    let (rows, total, pager) = match wanted_deadline {
        None => {
            // paged by cursor: the next page continues after the last row
            let at = ListAt::of(q.before.as_deref(), q.from, q.page, PER_PAGE);
            filter.offset = at.offset(PER_PAGE);
            filter.before = at.before;
            let found = app.store.case_page(&filter).await?;
            let rows = found
                .rows
                .iter()
                .map(|c| row_of(&app, c, lang))
                .collect::<Vec<_>>();
            let total = shown_total(found.total, found.total_capped, lang);
            let filters = filter_query(&state, deadline_code);
            let pager = keyset_pager(
                |paging| paging::list_href("/desk/cases", &filters, paging),
                at,
                rows.len(),
                total.clone(),
                found.next,
            );
            (rows, total, pager)
        }
        Some(want) => {
            // The deadline state is a working-day count: computed here over the
            // department's cases (at most DEADLINE_SCAN), then paged.
            filter.limit = DEADLINE_SCAN;
            filter.offset = 0;
            let (rows, _) = app.store.list_cases(&filter).await?;
            let all: Vec<Row> = rows
                .iter()
                .map(|c| row_of(&app, c, lang))
                .filter(|r| r.deadline.state == Some(want.code()))
                .collect();
            let total = all.len() as i64;
            let page_rows: Vec<Row> = all
                .into_iter()
                .skip(((page - 1) * PER_PAGE) as usize)
                .take(PER_PAGE as usize)
                .collect();
            let pager = pager(&state, deadline_code, page, page_rows.len(), total);
            (
                page_rows,
                minijinja::Value::from(total),
                minijinja::Value::from_serialize(&pager),
            )
        }
    };
    let status_options: Vec<Value> = DESK_STATUSES
        .iter()
        .map(|s| {
            let (zh, en) = s.labels();
            serde_json::json!({ "code": s.code(), "label": lang.pick(zh, en) })
        })
        .collect();
    let deadline_options: Vec<Value> = DEADLINE_STATES
        .iter()
        .map(|s| {
            let (zh, en) = s.labels();
            serde_json::json!({ "code": s.code(), "label": lang.pick(zh, en) })
        })
        .collect();
    let department = app
        .catalogue
        .department(&o.department)
        .map(|d| lang.pick(&d.name, &d.name_en).to_owned())
        .unwrap_or_else(|| o.department.clone());
    let joint = joint_cases(&app, &o.department, lang).await?;
    Ok(ctx.render(
        StatusCode::OK,
        "desk/cases.html",
        context! {
            department,
            rows,
            total,
            state => if state.is_empty() { "open".to_owned() } else { state },
            deadline => deadline_code,
            status_options,
            deadline_options,
            pager,
            joint,
        },
    ))
}

/// Open joint cases (联办件) another department leads and this one is routed to, each
/// with whether this department has concluded its part (at most 50 per service).
async fn joint_cases(app: &AppState, department: &str, lang: Lang) -> AppResult<Vec<Value>> {
    let mut out = Vec::new();
    let services = app.catalogue.services().iter().filter(|s| {
        s.case_kind == CaseKind::Joint
            && s.department != department
            && s.routing.departments.iter().any(|d| d == department)
    });
    for s in services {
        let (rows, _) = app
            .store
            .list_cases(&CaseFilter {
                service: Some(s.code.clone()),
                statuses: OPEN.iter().map(|x| x.code().to_owned()).collect(),
                limit: 50,
                ..CaseFilter::default()
            })
            .await?;
        for c in &rows {
            let mut v = serde_json::to_value(row_of(app, c, lang)).unwrap_or_default();
            v["part_done"] = Value::Bool(c.parts.get(department).is_some());
            out.push(v);
        }
    }
    Ok(out)
}

/// A form answer for display: the field's label and its value as text.
#[derive(Debug, Serialize)]
struct Answer {
    label: String,
    value: String,
}

/// The text of a stored value: a select's option label, a boolean in words, a table's
/// rows as lines.
fn value_text(f: &Field, v: &Value, lang: Lang) -> String {
    match v {
        Value::Null => String::new(),
        // an ID number (or anything that is one) shows only its ends
        Value::String(s)
            if f.field_type == FieldType::IdNumber
                || crate::domain::ids::ResidentId::parse(s).is_ok() =>
        {
            super::mask_id(s)
        }
        Value::String(s) => match f.options.iter().find(|o| &o.value == s) {
            Some(o) => lang.pick(&o.label, &o.label_en).to_owned(),
            None => s.clone(),
        },
        Value::Bool(b) => lang
            .pick(if *b { "是" } else { "否" }, if *b { "Yes" } else { "No" })
            .to_owned(),
        Value::Array(items) if f.field_type == FieldType::Table => items
            .iter()
            .map(|row| {
                f.columns
                    .iter()
                    .filter_map(|c| {
                        let t = value_text(c, row.get(&c.id).unwrap_or(&Value::Null), lang);
                        (!t.is_empty())
                            .then(|| format!("{}: {t}", lang.pick(&c.label, &c.label_en)))
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Array(items) => items
            .iter()
            .map(|i| value_text(f, i, lang))
            .collect::<Vec<_>>()
            .join(lang.pick("、", ", ")),
        other => other.to_string(),
    }
}

/// The answers of a form, in the definition's order (values of fields it no longer
/// has come last, under their ids).
fn answers(
    service: Option<&Service>,
    form: &serde_json::Map<String, Value>,
    lang: Lang,
) -> Vec<Answer> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    if let Some(s) = service {
        for f in &s.fields {
            if let Some(v) = form.get(&f.id) {
                seen.insert(f.id.clone());
                let value = value_text(f, v, lang);
                if !value.is_empty() {
                    out.push(Answer {
                        label: lang.pick(&f.label, &f.label_en).to_owned(),
                        value,
                    });
                }
            }
        }
    }
    for (k, v) in form {
        if !seen.contains(k) && !v.is_null() {
            out.push(Answer {
                label: k.clone(),
                value: match v {
                    Value::String(s) if crate::domain::ids::ResidentId::parse(s).is_ok() => {
                        super::mask_id(s)
                    }
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            });
        }
    }
    out
}

/// The day the clock stopped, when it is stopped now.
fn paused_since(pauses: &Value) -> Option<NaiveDate> {
    pauses
        .as_array()?
        .iter()
        .rev()
        .find(|p| p.get("to").is_none_or(Value::is_null))
        .and_then(|p| p.get("from")?.as_str()?.parse().ok())
}

/// A step form's values kept after a refusal, and the errors at its fields.
#[derive(Debug, Default, Serialize)]
struct StepForm {
    action: String,
    result: String,
    note: String,
    errors: Vec<Value>,
    note_error: Option<String>,
    result_error: Option<String>,
    file_error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CaseQuery {
    done: Option<String>,
}

/// `GET /desk/cases/{case_no}`.
pub async fn case_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path(case_no): Path<String>,
    Query(q): Query<CaseQuery>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let c = visible(&app, &o.actor(), &case_no).await?;
    let done = q
        .done
        .as_deref()
        .and_then(Action::from_code)
        .map(|a| action_label(a, ctx.lang));
    render_case(
        &app,
        &ctx,
        &o,
        &c,
        StatusCode::OK,
        StepForm::default(),
        done,
    )
    .await
}

/// The case if it is the officer's department's (as the staff API finds it), else 404.
async fn visible(app: &AppState, actor: &Actor, case_no: &str) -> AppResult<CaseRow> {
    match app.store.case_by_no(case_no).await? {
        Some(c) if actor.may_see(&c, &app.catalogue) => Ok(c),
        _ => Err(usecases::Error::case_not_found(case_no).into()),
    }
}

fn action_label(a: Action, lang: Lang) -> String {
    let (zh, en) = a.labels();
    lang.pick(zh, en).to_owned()
}

/// The order steps are offered in: the usual next step first, the exceptions after.
fn step_order(a: Action) -> u8 {
    match a {
        Action::Accept => 0,
        Action::StartReview => 1,
        Action::Resume => 2,
        Action::Conclude => 3,
        Action::RequestCorrection => 4,
        Action::Suspend => 5,
        Action::NotAccept => 6,
        _ => 7,
    }
}

/// A step offered on the case page: its code, name, what it does and what its note is
/// for, in the page language.
fn action_view(ctx: &PageCtx, a: Action) -> Value {
    let code = a.code();
    serde_json::json!({
        "code": code,
        "label": ctx.t(&format!("desk.action_{code}")),
        "hint": ctx.t(&format!("desk.action_{code}_hint")),
        "note_hint": ctx.t(&format!("desk.note_hint_{code}")),
    })
}

/// Renders the case page (recording the read in the applicant's data-access trail).
async fn render_case(
    app: &AppState,
    ctx: &PageCtx,
    o: &DepartmentOfficer,
    c: &CaseRow,
    status: StatusCode,
    form: StepForm,
    done: Option<String>,
) -> AppResult<Response> {
    let lang = ctx.lang;
    let actor = o.actor();
    let reader = crate::sharing::audit::Reader {
        kind: "officer",
        id: Some(actor.id()),
        name: actor.name().to_owned(),
    };
    let full = app.store.case_full(CaseKey::Id(c.id)).await?;
    crate::sharing::audit::case_read_of(
        app,
        c,
        full.as_ref().map_or(&[][..], |f| &f.materials),
        &reader,
        crate::sharing::prefill::purpose::STAFF_CASE_VIEW,
    )
    .await?;
    let detail = CaseDetail::of_full(app, c, full, lang, &actor).await?;
    let service = app.catalogue.service(&c.service_code);
    let answers = answers(service, &detail.form, lang);
    let materials: Vec<Value> = detail
        .materials
        .iter()
        .map(|m| {
            let name = if m.material_id == RESULT_DOCUMENT {
                ctx.t("desk.result_document")
            } else {
                service
                    .and_then(|s| s.materials.iter().find(|d| d.id == m.material_id))
                    .map(|d| lang.pick(&d.name, &d.name_en).to_owned())
                    .unwrap_or_else(|| m.material_id.clone())
            };
            serde_json::json!({
                "name": name,
                "href": m.upload_id.map(|u| format!("/desk/cases/{}/materials/{u}", c.case_no)),
                "substituted": m.substituted,
                "file_name": m.file_name,
                "file_type": m.file_type,
                "size_kb": m.size.map(|s| (s + 1023) / 1024),
            })
        })
        .collect();
    let timeline: Vec<Value> = detail
        .timeline
        .iter()
        .map(|e| {
            serde_json::json!({
                "when": local_time(e.at),
                "who": e.by,
                "what": match &e.action_label {
                    Some(a) => format!("{a} → {}", e.status.label.clone().unwrap_or_default()),
                    None => e.status.label.clone().unwrap_or_default(),
                },
                "note": e.note.clone().flatten(),
            })
        })
        .collect();
    let joint = service.is_some_and(|s| s.case_kind == CaseKind::Joint);
    let parts: Vec<Value> = if joint {
        service
            .map(|s| {
                s.routing
                    .departments
                    .iter()
                    .map(|d| {
                        let part = c.parts.get(d);
                        let result = part.and_then(|p| p.get("result")).and_then(Value::as_str);
                        serde_json::json!({
                            "department": app.catalogue.department(d)
                                .map(|x| lang.pick(&x.name, &x.name_en).to_owned())
                                .unwrap_or_else(|| d.clone()),
                            "mine": *d == o.department,
                            "result": result,
                            "on": part.and_then(|p| p.get("on")).and_then(Value::as_str),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut allowed = detail.allowed_actions.clone();
    allowed.sort_by_key(|a| step_order(*a));
    let actions: Vec<Value> = allowed.iter().map(|a| action_view(ctx, *a)).collect();
    let paused_since = CaseStatus::from_code(&c.status)
        .is_some_and(CaseStatus::clock_paused)
        .then(|| paused_since(&c.pauses))
        .flatten();
    let service_name = detail
        .service
        .name
        .clone()
        .unwrap_or_else(|| c.service_code.clone());
    Ok(ctx.render(
        status,
        "desk/case.html",
        context! {
            case => detail,
            service_name,
            answers,
            materials,
            timeline,
            joint,
            parts,
            actions,
            paused_since,
            form,
            done,
        },
    ))
}

/// `GET /desk/cases/{case_no}/materials/{upload_id}`: a material's file (or the result
/// document), as the department API serves it; the read is recorded in the applicant's
/// data-access trail.
pub async fn material_file(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path((case_no, upload_id)): Path<(String, uuid::Uuid)>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let actor = o.actor();
    let c = visible(&app, &actor, &case_no).await?;
    let upload = app
        .store
        .upload(upload_id)
        .await?
        .filter(|u| u.case_id == Some(c.id))
        .ok_or_else(|| {
            AppError::NotFound(Message::new(
                "该办件没有这个材料文件。",
                "This case has no such material file.",
            ))
        })?;
    let reader = crate::sharing::audit::Reader {
        kind: "officer",
        id: Some(actor.id()),
        name: actor.name().to_owned(),
    };
    crate::sharing::audit::case_read(
        &app,
        &c,
        &reader,
        crate::sharing::prefill::purpose::STAFF_CASE_VIEW,
    )
    .await?;
    crate::audit::download(&app, &crate::audit::Who::of(&actor), &c.case_no, &upload).await?;
    let bytes = crate::http::cases::material_file(&app, &upload).await?;
    let mime = crate::files::mime_of(&upload.file_type);
    let disposition = format!(
        "attachment; filename=\"{}.{}\"",
        upload.id, upload.file_type
    );
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, mime.to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
            (axum::http::header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

/// What a step form posts.
#[derive(Debug, Default)]
struct Posted {
    csrf: Option<String>,
    action: String,
    result: String,
    note: String,
    file: Option<MaterialInput>,
}

/// `POST /desk/cases/{case_no}/step` (multipart: `_csrf`, `action`, `result`, `note`,
/// `result_document`).
pub async fn take_step(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path(case_no): Path<String>,
    body: Result<Multipart, MultipartRejection>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let c = visible(&app, &o.actor(), &case_no).await?;
    let mut mp = body.map_err(|e| {
        AppError::BadRequest(Message::new(
            "表单格式有误。",
            format!("Malformed form: {e}"),
        ))
    })?;
    let mut p = Posted::default();
    while let Some(field) = mp.next_field().await.map_err(|e| multipart_error(&e))? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "result_document" => {
                let has_file = field.file_name().is_some_and(|n| !n.is_empty());
                if !has_file {
                    continue;
                }
                // the token first: nothing is stored for a forged form
                check_csrf(p.csrf.as_deref(), Some(&o.user.session))?;
                let upload = store_upload(&app, o.user.session.account_id, field, None).await?;
                if upload.size > 0 {
                    p.file = Some(MaterialInput {
                        material: RESULT_DOCUMENT.to_owned(),
                        upload_id: Some(upload.id),
                        substitute: false,
                    });
                }
            }
            "_csrf" | "action" | "result" | "note" => {
                let text = field.text().await.map_err(|e| multipart_error(&e))?;
                match name.as_str() {
                    "_csrf" => p.csrf = Some(text),
                    "action" => p.action = text,
                    "result" => p.result = text,
                    _ => p.note = text.chars().take(MAX_NOTE).collect(),
                }
            }
            _ => {}
        }
    }
    check_csrf(p.csrf.as_deref(), Some(&o.user.session))?;
    let lang = ctx.lang;
    let mut form = StepForm {
        action: p.action.clone(),
        result: p.result.clone(),
        note: p.note.clone(),
        ..StepForm::default()
    };
    let Some(action) = Action::from_code(&p.action) else {
        return Err(AppError::BadRequest(Message::new(
            "没有这个办理步骤。",
            "There is no such step.",
        )));
    };
    let result = match (action, p.result.as_str()) {
        (Action::Conclude, "") => {
            let text = ctx.t("desk.error_result");
            form.errors
                .push(serde_json::json!({"anchor": "result-approved", "text": text}));
            form.result_error = Some(text);
            None
        }
        (Action::Conclude, r) => ConclusionResult::from_code(r),
        _ => None,
    };
    if form.errors.is_empty() {
        let req = Request {
            action,
            result,
            note: Some(p.note.trim().to_owned()).filter(|n| !n.is_empty()),
        };
        let files: Vec<MaterialInput> = p.file.into_iter().collect();
        match step::step(&app, c.clone(), &o.actor(), req, &files, None).await {
            Ok(s) => {
                return Ok(Redirect::to(&format!(
                    "/desk/cases/{}?done={}",
                    s.case_no,
                    action.code()
                ))
                .into_response());
            }
            Err(usecases::Error::Invalid(issues)) => {
                for i in issues {
                    let text = lang.pick(&i.zh, &i.en).to_owned();
                    let anchor = match i.field.as_str() {
                        "note" => {
                            form.note_error = Some(text.clone());
                            format!("note-{}", action.code())
                        }
                        "result" => {
                            form.result_error = Some(text.clone());
                            "result-approved".to_owned()
                        }
                        _ => {
                            form.file_error = Some(text.clone());
                            "result_document".to_owned()
                        }
                    };
                    form.errors
                        .push(serde_json::json!({"anchor": anchor, "text": text}));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    // the case as it is now (a refused step changed nothing)
    let c = visible(&app, &o.actor(), &case_no).await?;
    render_case(
        &app,
        &ctx,
        &o,
        &c,
        StatusCode::UNPROCESSABLE_ENTITY,
        form,
        None,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worklist_keeps_its_filters_across_pages() {
        assert_eq!(list_href("", "", 1), "/desk/cases");
        assert_eq!(
            list_href("suspended", "paused", 2),
            "/desk/cases?state=suspended&deadline=paused&page=2"
        );
        let p = pager("open", "", 2, 5, 25);
        assert_eq!(p["from"], 21);
        assert_eq!(p["to"], 25);
        assert_eq!(p["prev"], "/desk/cases?state=open");
        assert!(p["next"].is_null());
    }

    #[test]
    fn status_filters_are_open_all_or_one_of_the_desks() {
        assert_eq!(statuses_for("").expect("open").len(), OPEN.len());
        assert_eq!(statuses_for("all"), Some(Vec::new()));
        assert_eq!(
            statuses_for("suspended"),
            Some(vec!["suspended".to_owned()])
        );
        assert_eq!(statuses_for("draft"), None);
    }

    #[test]
    fn id_numbers_in_answers_are_masked() {
        let f: Field = serde_json::from_value(serde_json::json!({
            "id": "x", "label": "证件号", "label_en": "ID", "type": "text"
        }))
        .expect("field");
        assert_eq!(
            value_text(&f, &Value::String("150702198506123025".into()), Lang::Zh),
            "150702********3025"
        );
        assert_eq!(value_text(&f, &Value::String("王".into()), Lang::Zh), "王");
    }

    #[test]
    fn every_step_has_its_texts_in_both_languages() {
        for a in Action::ALL {
            for key in [
                format!("desk.action_{}", a.code()),
                format!("desk.action_{}_hint", a.code()),
                format!("desk.note_hint_{}", a.code()),
            ] {
                for lang in [Lang::Zh, Lang::En] {
                    assert!(
                        crate::http::pages::i18n::text(lang, &key, &[]).is_some(),
                        "{key} missing"
                    );
                }
            }
        }
    }

    #[test]
    fn an_open_pause_is_the_clocks_stop() {
        let pauses = serde_json::json!([
            {"from": "2026-03-02", "to": "2026-03-04"},
            {"from": "2026-03-09", "to": null}
        ]);
        assert_eq!(paused_since(&pauses), NaiveDate::from_ymd_opt(2026, 3, 9));
        let closed = serde_json::json!([{"from": "2026-03-02", "to": "2026-03-04"}]);
        assert_eq!(paused_since(&closed), None);
    }
}
