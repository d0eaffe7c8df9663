//! The window clerk's workbench (一窗受理), server-rendered:
//!
//! - `GET /staff/cases`: the worklist of the hall's departments, with filters (status,
//!   service, department, deadline state, channel, text in the case number or the
//!   applicant's name), sort and pages. The same store query as the JSON worklist.
//! - `GET /staff/cases/{case_no}`: the case (read audited as the JSON `staff_get`):
//!   applicant with the ID number masked, form answers, materials with an inline
//!   preview, history, delivery per department, and the steps the clerk may take now.
//! - `POST /staff/cases/{case_no}/reveal`: shows the full ID number, recorded in the
//!   applicant's data-access trail first.
//! - `POST /staff/cases/{case_no}/step`: accept, not accept, request a correction (the
//!   `step` use case, as the JSON `staff_transition`).
//! - `GET /staff/cases/{case_no}/materials/{upload_id}`: a material's file, inline.
//! - `GET /staff/cases/{case_no}/notice/{kind}`: the printable 受理 / 不予受理 / 补正
//!   notice with a QR code of the public status query.
//! - `GET /staff/intake`, `POST /staff/intake/lookup`, `POST /staff/intake`: a walk-in
//!   applicant: choose the service, look the person up in the base library (audited, as
//!   the JSON `clerk_lookup`), the form prefilled, scanned materials, submit (the
//!   `intake` use case); then accept at once or hand over on the case page.

use std::collections::BTreeMap;

use crate::http::path::Path;
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Form, Multipart, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::paging::{ListAt, list_href, pager, shown_total};
use super::{PageCtx, check_csrf, cst, cst_date, mask_id};
use crate::auth::extract::{Clerk, Staff, StaffCase};
use crate::domain::case::{Action, CaseStatus, Request as StepRequest};
use crate::domain::catalogue::{
    ApplicantType, Channel as ServiceChannel, Field, FieldType, FileType, Service,
};
use crate::domain::lang::Lang;
use crate::http::cases::views::{CaseDetail, CaseSummary, DUE_SOON_WORKING_DAYS};
use crate::http::cases::{multipart_error, store_upload};
use crate::http::error::{AppError, AppResult, FieldError, Message};
use crate::sharing::audit;
use crate::sharing::prefill::{self, Prefill};
use crate::state::AppState;
use crate::store::{CaseFilter, CaseRow, CaseSort, NewAccess};
use crate::usecases::{MaterialInput, intake, step, today};

/// The routes of the clerk's pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/staff/cases", get(worklist))
        .route("/staff/cases/{case_no}", get(case_page))
        .route("/staff/cases/{case_no}/reveal", post(reveal))
        .route("/staff/cases/{case_no}/step", post(take_step))
        .route(
            "/staff/cases/{case_no}/materials/{upload_id}",
            get(material_file),
        )
        .route("/staff/cases/{case_no}/notice/{kind}", get(notice))
        .route("/staff/intake", get(intake_page).post(intake_submit))
        .route("/staff/intake/lookup", post(intake_lookup))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

/// The largest intake post (all its scanned files together).
const MAX_FORM_BYTES: usize = 110 * 1024 * 1024;
/// The largest text value of one intake control.
const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Cases per worklist page.
const PER_PAGE: i64 = 20;

/// An error summary entry: the text and the control it links to.
#[derive(Debug, Clone, Serialize)]
struct ErrorLink {
    anchor: String,
    text: String,
}

fn channel_label(ctx: &PageCtx, channel: &str) -> String {
    match channel {
        "window" => ctx.t("staff.channel_window"),
        "online" => ctx.t("staff.channel_online"),
        other => other.to_owned(),
    }
}

fn service_name(app: &AppState, code: &str, lang: Lang) -> String {
    app.catalogue
        .service(code)
        .map(|s| lang.pick(&s.name, &s.name_en).to_owned())
        .unwrap_or_else(|| code.to_owned())
}

fn department_name(app: &AppState, uscc: &str, lang: Lang) -> String {
    app.catalogue
        .department(uscc)
        .map(|d| lang.pick(&d.name, &d.name_en).to_owned())
        .unwrap_or_else(|| uscc.to_owned())
}

// ---------- the worklist ----------

/// The worklist's filters as typed (every one optional and forgiving: a value that
/// means nothing is ignored, never an error page).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct WorklistParams {
    status: Option<String>,
    service: Option<String>,
    department: Option<String>,
    deadline: Option<String>,
    channel: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    page: Option<i64>,
    before: Option<String>,
    from: Option<i64>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The statuses whose promised-time clock runs (not paused, not concluded).
fn running_statuses() -> Vec<CaseStatus> {
    CaseStatus::ALL
        .into_iter()
        .filter(|s| !s.is_terminal() && !s.clock_paused())
        .collect()
}

/// The last date that still counts as "due soon" today: the latest day at most
/// [`DUE_SOON_WORKING_DAYS`] working days ahead (as `deadline::state` counts them).
fn due_soon_until(cal: &crate::domain::calendar::HolidayCalendar, today: NaiveDate) -> NaiveDate {
    // a year the calendar lacks counts by the weekday rule, as provisional deadlines do
    let cal =
        crate::domain::deadline::calendar_for_state(cal, today + chrono::Duration::days(40), today);
    let mut last = today;
    for n in 1..=40 {
        let d = today + chrono::Duration::days(n);
        match cal.working_days_between(today, d) {
            Ok(w) if w <= DUE_SOON_WORKING_DAYS => last = d,
            _ => break,
        }
    }
    last
}

/// The store filter for the worklist's params, within `mine` (the hall's departments).
pub fn worklist_filter(
    p: &WorklistParams,
    mine: &[String],
    today: NaiveDate,
    soon_until: NaiveDate,
) -> CaseFilter {
    let departments = match non_empty(&p.department) {
        Some(d) => mine.iter().filter(|m| *m == d).cloned().collect(),
        None => mine.to_vec(),
    };
    let chosen: Vec<CaseStatus> = non_empty(&p.status)
        .and_then(CaseStatus::from_code)
        .into_iter()
        .collect();
    let mut f = CaseFilter {
        departments: Some(departments),
        statuses: chosen.iter().map(|s| s.code().to_owned()).collect(),
        service: non_empty(&p.service).map(str::to_owned),
        channel: non_empty(&p.channel)
            .filter(|c| matches!(*c, "online" | "window"))
            .map(str::to_owned),
        text: non_empty(&p.q).map(|q| q.chars().take(100).collect()),
        sort: match p.sort.as_deref() {
            Some("oldest") => CaseSort::Oldest,
            Some("due") => CaseSort::DueSoonest,
            _ => CaseSort::Newest,
        },
        ..CaseFilter::default()
    };
    let deadline = non_empty(&p.deadline);
    if let Some(state) = deadline.filter(|d| matches!(*d, "on_time" | "due_soon" | "overdue")) {
        // a deadline state is only had by a case whose clock runs
        let running: Vec<String> = running_statuses()
            .into_iter()
            .filter(|s| chosen.is_empty() || chosen.contains(s))
            .map(|s| s.code().to_owned())
            .collect();
        // none left: no status can match
        f.statuses = if running.is_empty() {
            vec![String::new()]
        } else {
            running
        };
        match state {
            "overdue" => f.due_by = today.pred_opt(),
            "due_soon" => {
                f.due_from = Some(today);
                f.due_by = Some(soon_until);
            }
            _ => f.due_from = soon_until.succ_opt(),
        }
    }
    f
}

/// The query string of the worklist's filters (without the page), for links.
fn filter_query(p: &WorklistParams) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("status", &p.status),
        ("service", &p.service),
        ("department", &p.department),
        ("deadline", &p.deadline),
        ("channel", &p.channel),
        ("q", &p.q),
        ("sort", &p.sort),
    ] {
        if let Some(v) = non_empty(v) {
            q.append_pair(k, v);
        }
    }
    q.finish()
}

#[derive(Serialize)]
struct Opt {
    value: String,
    label: String,
}

#[derive(Serialize)]
struct Row {
    case_no: String,
    service: String,
    department: String,
    applicant: String,
    status: String,
    status_label: String,
    channel: String,
    submitted: String,
    deadline_code: String,
    deadline_label: String,
    due_on: Option<String>,
    provisional: bool,
}

fn row_of(app: &AppState, ctx: &PageCtx, c: &CaseRow) -> Row {
    let s = CaseSummary::of(app, c, ctx.lang);
    let (deadline_code, deadline_label) = match (s.deadline.state, s.deadline.label.flatten()) {
        (Some(code), Some(label)) => (code.to_owned(), label),
        _ => ("none".to_owned(), ctx.t("staff.clock_not_started")),
    };
    Row {
        case_no: s.case_no,
        service: s.service.name.unwrap_or(s.service.code),
        department: department_name(app, &c.department, ctx.lang),
        applicant: s.applicant_name,
        status: s.status.code,
        status_label: s.status.label.unwrap_or_default(),
        channel: channel_label(ctx, &s.channel),
        submitted: cst(s.submitted_at),
        deadline_code,
        deadline_label,
        due_on: s.deadline.due_on.map(|d| d.to_string()),
        provisional: s.deadline.provisional,
    }
}

async fn worklist(
    State(app): State<AppState>,
    ctx: PageCtx,
    clerk: Result<Clerk, AppError>,
    q: Result<Query<WorklistParams>, QueryRejection>,
) -> AppResult<Response> {
    let clerk = match ctx.logged_in(clerk, true) {
        Ok(c) => c,
        Err(r) => return Ok(*r),
    };
    let p = q.map(|q| q.0).unwrap_or_default();
    let at = ListAt::of(p.before.as_deref(), p.from, p.page, PER_PAGE);
    let today = today();
    let soon = due_soon_until(&app.calendar.current(), today);
    let mut filter = worklist_filter(&p, &clerk.departments, today, soon);
    filter.limit = PER_PAGE;
    filter.offset = at.offset(PER_PAGE);
    filter.before = at.before;
    let found = app.store.case_page(&filter).await?;
    let lang = ctx.lang;
    let rows: Vec<Row> = found.rows.iter().map(|c| row_of(&app, &ctx, c)).collect();
    let filters = filter_query(&p);
    let total = shown_total(found.total, found.total_capped, lang);
    let pager = pager(
        |paging| list_href("/staff/cases", &filters, paging),
        at,
        rows.len(),
        total.clone(),
        found.next,
    );
    let statuses: Vec<Opt> = CaseStatus::ALL
        .into_iter()
        .map(|s| {
            let (zh, en) = s.labels();
            Opt {
                value: s.code().into(),
                label: lang.pick(zh, en).into(),
            }
        })
        .collect();
    let services: Vec<Opt> = app
        .catalogue
        .services()
        .iter()
        .filter(|s| clerk.departments.contains(&s.department))
        .map(|s| Opt {
            value: s.code.clone(),
            label: lang.pick(&s.name, &s.name_en).into(),
        })
        .collect();
    let departments: Vec<Opt> = clerk
        .departments
        .iter()
        .map(|d| Opt {
            value: d.clone(),
            label: department_name(&app, d, lang),
        })
        .collect();
    let filtered = !filters.is_empty();
    Ok(ctx.render(
        StatusCode::OK,
        "staff/worklist.html",
        context! {
            rows => rows,
            pager => pager,
            total => total,
            f => context! {
                status => non_empty(&p.status),
                service => non_empty(&p.service),
                department => non_empty(&p.department),
                deadline => non_empty(&p.deadline),
                channel => non_empty(&p.channel),
                q => non_empty(&p.q),
                sort => non_empty(&p.sort),
            },
            filtered => filtered,
            statuses => statuses,
            services => services,
            departments => departments,
            hall => clerk.hall.clone(),
        },
    ))
}

// ---------- one case ----------

#[derive(Serialize)]
struct Answer {
    label: String,
    lines: Vec<String>,
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A form value as the lines a reader sees: option labels for choices, yes/no for a
/// tick, identifiers that may be ID numbers masked, a table a line per row.
fn answer_lines(f: &Field, v: &Value, ctx: &PageCtx) -> Vec<String> {
    let lang = ctx.lang;
    let option = |s: &str| {
        f.options
            .iter()
            .find(|o| o.value == s)
            .map(|o| lang.pick(&o.label, &o.label_en).to_owned())
            .unwrap_or_else(|| s.to_owned())
    };
    match f.field_type {
        FieldType::Select => vec![option(&text_of(v))],
        FieldType::Multiselect => match v {
            Value::Array(a) => vec![
                a.iter()
                    .map(|x| option(&text_of(x)))
                    .collect::<Vec<_>>()
                    .join(lang.pick("、", ", ")),
            ],
            v => vec![option(&text_of(v))],
        },
        FieldType::Checkbox => vec![if v == &Value::Bool(true) {
            ctx.t("staff.yes")
        } else {
            ctx.t("staff.no")
        }],
        FieldType::IdNumber => vec![mask_id(&text_of(v))],
        FieldType::Table => match v {
            Value::Array(rows) => rows
                .iter()
                .map(|r| {
                    f.columns
                        .iter()
                        .filter_map(|c| {
                            let cell = r.get(&c.id)?;
                            if cell.is_null() || cell == "" {
                                return None;
                            }
                            let text = answer_lines(c, cell, ctx).join(" ");
                            Some(format!(
                                "{}{}{}",
                                lang.pick(&c.label, &c.label_en),
                                lang.pick("：", ": "),
                                text
                            ))
                        })
                        .collect::<Vec<_>>()
                        .join(lang.pick("；", "; "))
                })
                .collect(),
            v => vec![text_of(v)],
        },
        _ => vec![text_of(v)],
    }
}

fn answers(service: Option<&Service>, form: &Map<String, Value>, ctx: &PageCtx) -> Vec<Answer> {
    let Some(service) = service else {
        // without its definition, the values as stored (identifiers masked)
        return form
            .iter()
            .map(|(k, v)| Answer {
                label: k.clone(),
                lines: vec![mask_id(&text_of(v))],
            })
            .collect();
    };
    service
        .fields
        .iter()
        .filter_map(|f| {
            let v = form.get(&f.id)?;
            if v.is_null() || v == "" {
                return None;
            }
            Some(Answer {
                label: ctx.pick(&f.label, &f.label_en).to_owned(),
                lines: answer_lines(f, v, ctx),
            })
        })
        .collect()
}

#[derive(Serialize)]
struct MaterialItem {
    name: String,
    file_name: Option<String>,
    file_type: Option<String>,
    size: Option<String>,
    href: Option<String>,
    preview: Option<&'static str>,
    substituted: bool,
}

fn human_size(bytes: i64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", (bytes + 1023) / 1024)
    }
}

#[derive(Serialize)]
struct ActionItem {
    code: &'static str,
    label: String,
    why: String,
    needs_note: bool,
    note_label: String,
    button: &'static str,
}

fn action_item(a: Action, ctx: &PageCtx) -> ActionItem {
    let (zh, en) = a.labels();
    let code = a.code();
    ActionItem {
        code,
        label: ctx.pick(zh, en).to_owned(),
        why: ctx.t(&format!("staff.why_{code}")),
        needs_note: matches!(
            a,
            Action::NotAccept | Action::RequestCorrection | Action::Suspend
        ),
        note_label: ctx.t(&format!("staff.note_{code}")),
        button: match a {
            Action::NotAccept => "warning",
            Action::Accept => "",
            _ => "secondary",
        },
    }
}

/// What the case page shows after a step or an intake, from `?done=`.
#[derive(Debug, Default, Deserialize)]
pub struct CaseParams {
    done: Option<String>,
}

/// Why there is nothing for the clerk to do on a case in this state.
fn no_action_reason(status: &str, ctx: &PageCtx) -> String {
    match CaseStatus::from_code(status) {
        Some(s) if s.is_terminal() => ctx.t("staff.none_terminal"),
        Some(CaseStatus::CorrectionRequested) => ctx.t("staff.none_correction"),
        Some(_) => ctx.t("staff.none_department"),
        None => ctx.t("staff.none_department"),
    }
}

struct CaseView<'a> {
    revealed: Option<String>,
    done: Option<&'a str>,
    note: &'a str,
    errors: Vec<ErrorLink>,
    chosen: Option<&'a str>,
    fix: Vec<String>,
}

async fn render_case(
    app: &AppState,
    ctx: &PageCtx,
    staff: &Staff,
    case: &CaseRow,
    v: CaseView<'_>,
    status: StatusCode,
) -> AppResult<Response> {
    let actor = staff.actor();
    let lang = ctx.lang;
    let d = CaseDetail::build(app, case, lang, &actor).await?;
    let service = app.catalogue.service(&case.service_code);
    let materials: Vec<MaterialItem> = d
        .materials
        .iter()
        .map(|m| {
            let name = service
                .and_then(|s| s.materials.iter().find(|x| x.id == m.material_id))
                .map(|x| lang.pick(&x.name, &x.name_en).to_owned())
                .unwrap_or_else(|| m.material_id.clone());
            let href = m
                .upload_id
                .map(|u| format!("/staff/cases/{}/materials/{u}", case.case_no));
            MaterialItem {
                name,
                file_name: m.file_name.clone(),
                file_type: m.file_type.clone(),
                size: m.size.map(human_size),
                preview: match m.file_type.as_deref() {
                    Some("jpg") | Some("png") => Some("image"),
                    Some("pdf") => Some("pdf"),
                    _ => None,
                },
                href,
                substituted: m.substituted,
            }
        })
        .collect();
    let correctable: Vec<Opt> = service
        .map(|s| {
            s.materials
                .iter()
                .map(|m| Opt {
                    value: m.id.clone(),
                    label: lang.pick(&m.name, &m.name_en).to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    let timeline: Vec<minijinja::Value> = d
        .timeline
        .iter()
        .map(|e| {
            context! {
                when => cst(e.at),
                who => e.by.clone(),
                what => match &e.action_label {
                    Some(a) => format!("{a} → {}", e.status.label.clone().unwrap_or_default()),
                    None => e.status.label.clone().unwrap_or_default(),
                },
                note => e.note.clone().flatten(),
            }
        })
        .collect();
    let deliveries: Vec<minijinja::Value> = d
        .deliveries
        .iter()
        .flatten()
        .map(|x| {
            context! {
                department => department_name(app, &x.department, lang),
                pending => x.pending,
                delivered => x.delivered,
                dead => x.dead,
                error => x.failed_event.as_ref().and_then(|f| f.last_error.clone()),
            }
        })
        .collect();
    // the window's steps; a department's own steps are on its desk
    let actions: Vec<ActionItem> = d
        .allowed_actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Accept | Action::NotAccept | Action::RequestCorrection
            )
        })
        .map(|a| action_item(*a, ctx))
        .collect();
    let events = app.store.case_events(case.id).await?;
    let has = |a: Action| events.iter().any(|e| e.action.as_deref() == Some(a.code()));
    let notices: Vec<Opt> = [
        (
            "accepted",
            case.accepted_on.is_some(),
            "staff.notice_accepted",
        ),
        (
            "not-accepted",
            case.status == CaseStatus::NotAccepted.code(),
            "staff.notice_not_accepted",
        ),
        (
            "correction",
            has(Action::RequestCorrection),
            "staff.notice_correction",
        ),
    ]
    .into_iter()
    .filter(|(_, ok, _)| *ok)
    .map(|(k, _, key)| Opt {
        value: format!("/staff/cases/{}/notice/{k}", case.case_no),
        label: ctx.t(key),
    })
    .collect();
    let (deadline_code, deadline_label) =
        match (d.deadline.state, d.deadline.label.clone().flatten()) {
            (Some(code), Some(label)) => (code.to_owned(), label),
            _ => ("none".to_owned(), ctx.t("staff.clock_not_started")),
        };
    let done = v.done.and_then(|k| match k {
        "intake" => Some(ctx.t("staff.done_intake")),
        "accept" | "not_accept" | "request_correction" => Action::from_code(k).map(|a| {
            let (zh, en) = a.labels();
            ctx.t("staff.done_step")
                .replace("{action}", ctx.pick(zh, en))
        }),
        _ => None,
    });
    let can_accept = d.allowed_actions.contains(&Action::Accept);
    Ok(ctx.render(
        status,
        "staff/case.html",
        context! {
            c => context! {
                case_no => d.case_no.clone(),
                query_code => d.query_code.clone(),
                service => d.service.name.clone().unwrap_or(d.service.code.clone()),
                service_code => d.service.code.clone(),
                department => d.department.name.clone().unwrap_or(d.department.uscc.clone()),
                status => d.status.code.clone(),
                status_label => d.status.label.clone().unwrap_or_default(),
                channel => channel_label(ctx, &d.channel),
                submitted => cst(d.submitted_at),
                accepted_on => d.accepted_on.map(|x| x.to_string()),
                due_on => d.deadline.due_on.map(|x| x.to_string()),
                provisional => d.deadline.provisional,
                deadline_code => deadline_code,
                deadline_label => deadline_label,
                concluded_on => d.concluded_on.map(|x| x.to_string()),
                asked => d.asked_of_applicant.clone(),
                applicant => context! {
                    kind => if d.applicant.kind == "enterprise" { ctx.t("staff.kind_enterprise") } else { ctx.t("staff.kind_person") },
                    name => d.applicant.name.clone(),
                    id_masked => d.applicant.id_number.clone(),
                    uscc => d.applicant.uscc.clone(),
                },
            },
            revealed => v.revealed,
            answers => answers(service, &d.form, ctx),
            materials => materials,
            timeline => timeline,
            deliveries => deliveries,
            actions => actions,
            no_action => no_action_reason(&d.status.code, ctx),
            correctable => correctable,
            notices => notices,
            done => done,
            show_intake_choice => v.done == Some("intake") && can_accept,
            errors => v.errors,
            note => v.note,
            chosen => v.chosen,
            fix => v.fix,
        },
    ))
}

async fn case_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    sc: Result<StaffCase, AppError>,
    q: Result<Query<CaseParams>, QueryRejection>,
) -> AppResult<Response> {
    let StaffCase { staff, case } = match ctx.logged_in(sc, true) {
        Ok(s) => s,
        Err(r) => return Ok(*r),
    };
    let q = q.map(|q| q.0).unwrap_or_default();
    // the read is recorded as the JSON route records it, before anything is shown
    audit::case_read(
        &app,
        &case,
        &reader_of(&staff),
        prefill::purpose::STAFF_CASE_VIEW,
    )
    .await?;
    render_case(
        &app,
        &ctx,
        &staff,
        &case,
        CaseView {
            revealed: None,
            done: q.done.as_deref(),
            note: "",
            errors: Vec::new(),
            chosen: None,
            fix: Vec::new(),
        },
        StatusCode::OK,
    )
    .await
}

fn reader_of(staff: &Staff) -> audit::Reader {
    let actor = staff.actor();
    audit::Reader {
        kind: match staff {
            Staff::Clerk(_) => "clerk",
            Staff::Officer(_) => "officer",
            Staff::Operator(_) => "operator",
        },
        id: Some(actor.id()),
        name: actor.name().to_owned(),
    }
}

/// A form with the CSRF token only.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// The audit record of showing a case's full ID number to `reader`.
fn reveal_record(
    app: &AppState,
    c: &CaseRow,
    id_number: &str,
    reader: &audit::Reader,
) -> NewAccess {
    let item = app
        .catalogue
        .service(&c.service_code)
        .and_then(|s| {
            s.fields
                .iter()
                .find(|f| f.field_type == FieldType::IdNumber)
        })
        .map(|f| format!("field:{}", f.id))
        .unwrap_or_else(|| "id_number".to_owned());
    NewAccess {
        subject_index: audit::subject_index(
            &app.index_key,
            crate::domain::catalogue::Subject::Person,
            id_number,
        ),
        subject_kind: crate::domain::catalogue::Subject::Person.code().to_owned(),
        at: Utc::now(),
        resource: audit::APPLICATION.to_owned(),
        items: vec![item],
        reader_kind: reader.kind.to_owned(),
        reader_id: reader.id.clone(),
        reader_name: reader.name.clone(),
        purpose: prefill::purpose::STAFF_REVEAL_ID.to_owned(),
        service_code: Some(c.service_code.clone()),
        case_no: Some(c.case_no.clone()),
    }
}

async fn reveal(
    State(app): State<AppState>,
    ctx: PageCtx,
    sc: Result<StaffCase, AppError>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> AppResult<Response> {
    let StaffCase { staff, case } = match ctx.logged_in(sc, true) {
        Ok(s) => s,
        Err(r) => return Ok(*r),
    };
    check_csrf(
        form.ok().and_then(|f| f.0.csrf).as_deref(),
        ctx.session.as_ref(),
    )?;
    if !matches!(staff, Staff::Clerk(_)) {
        return Err(AppError::Forbidden(Message::new(
            "只有窗口工作人员可以查看完整身份证号。",
            "Only window clerks can show the full ID number.",
        )));
    }
    let Some(id) = case.applicant.id_number.as_ref() else {
        return Err(AppError::Conflict(Message::new(
            "该办件没有身份证号。",
            "This case has no ID number.",
        )));
    };
    // recorded first: a read that cannot be recorded does not happen
    audit::record(
        &app,
        &[reveal_record(&app, &case, id.expose(), &reader_of(&staff))],
    )
    .await?;
    render_case(
        &app,
        &ctx,
        &staff,
        &case,
        CaseView {
            revealed: Some(id.expose().to_owned()),
            done: None,
            note: "",
            errors: Vec::new(),
            chosen: None,
            fix: Vec::new(),
        },
        StatusCode::OK,
    )
    .await
}

/// A step as posted: the action, the reason, and for a correction the materials to fix.
#[derive(Debug, Deserialize)]
pub struct StepForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    action: String,
    #[serde(default)]
    note: Option<String>,
    /// Materials to correct (ids), repeated.
    #[serde(default)]
    fix: Vec<String>,
}

/// The reason of a correction request: the materials to correct by name, then what the
/// clerk wrote.
fn correction_note(names: &[String], note: &str, lang: Lang) -> String {
    let note = note.trim();
    if names.is_empty() {
        return note.to_owned();
    }
    let list = names.join(lang.pick("、", ", "));
    let head = match lang {
        Lang::Zh => format!("请补正：{list}。"),
        Lang::En => format!("Please correct: {list}."),
    };
    if note.is_empty() {
        head
    } else {
        format!("{head}{}{note}", lang.pick("", " "))
    }
}

async fn take_step(
    State(app): State<AppState>,
    ctx: PageCtx,
    sc: Result<StaffCase, AppError>,
    body: axum::body::Bytes,
) -> AppResult<Response> {
    let StaffCase { staff, case } = match ctx.logged_in(sc, true) {
        Ok(s) => s,
        Err(r) => return Ok(*r),
    };
    // `serde_html_form`-like: repeated `fix` values are collected by hand
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let form = StepForm {
        csrf: get("_csrf"),
        action: get("action").unwrap_or_default(),
        note: get("note"),
        fix: pairs
            .iter()
            .filter(|(n, _)| n == "fix")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    check_csrf(form.csrf.as_deref(), ctx.session.as_ref())?;
    let Some(action) = Action::from_code(&form.action).filter(|a| {
        matches!(
            a,
            Action::Accept | Action::NotAccept | Action::RequestCorrection
        )
    }) else {
        return Err(AppError::BadRequest(Message::new(
            "不认识的操作。",
            "Unknown step.",
        )));
    };
    let typed = form.note.clone().unwrap_or_default();
    let service = app.catalogue.service(&case.service_code);
    let fix_names: Vec<String> = form
        .fix
        .iter()
        .filter_map(|id| {
            service
                .and_then(|s| s.materials.iter().find(|m| &m.id == id))
                .map(|m| ctx.pick(&m.name, &m.name_en).to_owned())
        })
        .collect();
    let note = match action {
        Action::RequestCorrection => correction_note(&fix_names, &typed, ctx.lang),
        _ => typed.trim().to_owned(),
    };
    let req = StepRequest {
        action,
        result: None,
        note: (!note.is_empty()).then_some(note),
    };
    let case_no = case.case_no.clone();
    match step::step(&app, case.clone(), &staff.actor(), req, &[], None).await {
        Ok(_) => Ok(
            Redirect::to(&format!("/staff/cases/{case_no}?done={}", action.code())).into_response(),
        ),
        Err(e) => match AppError::from(e) {
            AppError::Invalid(errors) => {
                let errors = errors
                    .iter()
                    .map(|e| ErrorLink {
                        anchor: format!("note-{}", action.code()),
                        text: e.message.get(ctx.lang).to_owned(),
                    })
                    .collect();
                render_case(
                    &app,
                    &ctx,
                    &staff,
                    &case,
                    CaseView {
                        revealed: None,
                        done: None,
                        note: &typed,
                        errors,
                        chosen: Some(action.code()),
                        fix: form.fix.clone(),
                    },
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            other => Err(other),
        },
    }
}

async fn material_file(
    State(app): State<AppState>,
    ctx: PageCtx,
    sc: Result<StaffCase, AppError>,
    Path((_case_no, upload_id)): Path<(String, String)>,
) -> AppResult<Response> {
    let StaffCase { case, staff } = match ctx.logged_in(sc, true) {
        Ok(s) => s,
        Err(r) => return Ok(*r),
    };
    let not_found = || {
        AppError::NotFound(Message::new(
            "该办件没有这个材料文件。",
            "This case has no such material file.",
        ))
    };
    let id = Uuid::parse_str(&upload_id).map_err(|_| not_found())?;
    let upload = app
        .store
        .upload(id)
        .await?
        .filter(|u| u.case_id == Some(case.id))
        .ok_or_else(not_found)?;
    crate::audit::download(
        &app,
        &crate::audit::Who::of(&staff.actor()),
        &case.case_no,
        &upload,
    )
    .await?;
    let bytes = crate::http::cases::material_file(&app, &upload).await?;
    let mime = crate::files::mime_of(&upload.file_type);
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "inline; filename=\"{}.{}\"",
        upload.id, upload.file_type
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

// ---------- notices ----------

/// The public status query's URL for a case (what the notice's QR code holds).
pub fn status_url(public_url: &str, case_no: &str, code: &str) -> String {
    let base = if public_url.ends_with('/') {
        public_url.to_owned()
    } else {
        format!("{public_url}/")
    };
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("case_no", case_no)
        .append_pair("code", code)
        .finish();
    format!("{base}status?{q}")
}

/// A QR code of `text` as inline SVG (no XML declaration), labelled for screen readers.
pub fn qr_svg(text: &str, label: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(160, 160)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg")?;
    let label: String = label
        .chars()
        .filter(|c| !matches!(c, '"' | '<' | '>' | '&'))
        .collect();
    Some(svg[start..].replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{label}\" "),
        1,
    ))
}

async fn notice(
    State(app): State<AppState>,
    ctx: PageCtx,
    sc: Result<StaffCase, AppError>,
    Path((_case_no, kind)): Path<(String, String)>,
) -> AppResult<Response> {
    let StaffCase { case, .. } = match ctx.logged_in(sc, true) {
        Ok(s) => s,
        Err(r) => return Ok(*r),
    };
    let events = app.store.case_events(case.id).await?;
    let last_note = |a: Action| {
        events
            .iter()
            .rev()
            .find(|e| e.action.as_deref() == Some(a.code()))
            .map(|e| (e.note.clone().unwrap_or_default(), e.at))
    };
    let not_now = || {
        AppError::Conflict(Message::new(
            "该办件当前没有这种通知书。",
            "This case has no notice of that kind.",
        ))
    };
    let (title_key, body, reason, issued) = match kind.as_str() {
        "accepted" => {
            let on = case.accepted_on.ok_or_else(not_now)?;
            (
                "staff.notice_accepted",
                "staff.notice_accepted_body",
                None,
                on.to_string(),
            )
        }
        "not-accepted" => {
            if case.status != CaseStatus::NotAccepted.code() {
                return Err(not_now());
            }
            let (note, at) = last_note(Action::NotAccept).ok_or_else(not_now)?;
            (
                "staff.notice_not_accepted",
                "staff.notice_not_accepted_body",
                Some(note),
                cst_date(at),
            )
        }
        "correction" => {
            let (note, at) = last_note(Action::RequestCorrection).ok_or_else(not_now)?;
            (
                "staff.notice_correction",
                "staff.notice_correction_body",
                Some(note),
                cst_date(at),
            )
        }
        _ => {
            return Err(AppError::NotFound(Message::new(
                "没有这种通知书。",
                "There is no such notice.",
            )));
        }
    };
    let url = status_url(
        app.settings.server.public_url.as_str(),
        &case.case_no,
        &case.query_code,
    );
    let qr = qr_svg(&url, &ctx.t("staff.qr_label"));
    let lang = ctx.lang;
    Ok(ctx.render(
        StatusCode::OK,
        "staff/notice.html",
        context! {
            kind => kind,
            title_key => title_key,
            body_key => body,
            reason => reason,
            issued => issued,
            qr => qr.map(minijinja::Value::from_safe_string),
            status_url => url,
            n => context! {
                case_no => case.case_no.clone(),
                query_code => case.query_code.clone(),
                applicant => case.applicant.name.clone(),
                service => service_name(&app, &case.service_code, lang),
                department => department_name(&app, &case.department, lang),
                submitted => cst_date(case.created_at),
                accepted_on => case.accepted_on.map(|d| d.to_string()),
                due_on => case.due_on.map(|d| d.to_string()),
            },
        },
    ))
}

// ---------- window intake ----------

/// The services this clerk's hall takes in at the window.
fn window_services<'a>(app: &'a AppState, clerk: &Clerk) -> Vec<&'a Service> {
    app.catalogue
        .services()
        .iter()
        .filter(|s| {
            clerk.departments.contains(&s.department)
                && s.channels.contains(&ServiceChannel::Window)
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
pub struct IntakeParams {
    service: Option<String>,
}

#[derive(Serialize)]
struct FieldItem {
    name: String,
    id: String,
    label: String,
    hint: Option<String>,
    kind: &'static str,
    required: bool,
    value: String,
    values: Vec<String>,
    options: Vec<Opt>,
    source: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct MaterialSlot {
    id: String,
    name: String,
    required: bool,
    types: String,
    substitute: Option<String>,
    substituted: bool,
    kept: Vec<String>,
    error: Option<String>,
}

/// What the intake form shows: the service, the applicant as typed (or looked up), the
/// form values, and problems by control.
#[derive(Default)]
struct IntakeForm {
    kind: String,
    name: String,
    id_number: String,
    uscc: String,
    phone: String,
    values: BTreeMap<String, Vec<String>>,
    sources: BTreeMap<String, String>,
    evidence: BTreeMap<String, String>,
    substitute: Vec<String>,
    /// Files already stored, by material: kept on a form sent back with problems.
    kept: BTreeMap<String, Vec<Uuid>>,
    errors: Vec<FieldError>,
    looked_up: bool,
}

fn control_kind(t: FieldType) -> &'static str {
    match t {
        FieldType::Textarea | FieldType::Address => "textarea",
        FieldType::Number => "number",
        FieldType::Date => "date",
        FieldType::Select => "select",
        FieldType::Multiselect => "multiselect",
        FieldType::Checkbox => "checkbox",
        FieldType::Phone => "tel",
        FieldType::Email => "email",
        FieldType::Table => "table",
        _ => "text",
    }
}

/// The anchor (control id) of a problem's field path.
fn intake_anchor(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("lookup.") {
        return rest.to_owned();
    }
    if let Some(rest) = path.strip_prefix("applicant.") {
        return format!("applicant-{rest}");
    }
    if let Some(rest) = path.strip_prefix("materials.") {
        return format!("file-{rest}");
    }
    if path.starts_with("materials[") {
        return "materials".into();
    }
    let top = path.split(['[', '.']).next().unwrap_or(path);
    format!("f-{top}")
}

fn error_at(errors: &[FieldError], anchor: &str, lang: Lang) -> Option<String> {
    let texts: Vec<&str> = errors
        .iter()
        .filter(|e| intake_anchor(&e.field) == anchor)
        .map(|e| e.message.get(lang))
        .collect();
    (!texts.is_empty()).then(|| texts.join(" "))
}

fn render_intake(
    ctx: &PageCtx,
    app: &AppState,
    clerk: &Clerk,
    service: Option<&Service>,
    form: &IntakeForm,
    status: StatusCode,
) -> Response {
    let lang = ctx.lang;
    let services: Vec<Opt> = window_services(app, clerk)
        .into_iter()
        .map(|s| Opt {
            value: s.code.clone(),
            label: lang.pick(&s.name, &s.name_en).to_owned(),
        })
        .collect();
    let fields: Vec<FieldItem> = service
        .map(|s| {
            s.fields
                .iter()
                .map(|f| {
                    let values = form.values.get(&f.id).cloned().unwrap_or_default();
                    FieldItem {
                        name: format!("f-{}", f.id),
                        id: format!("f-{}", f.id),
                        label: lang.pick(&f.label, &f.label_en).to_owned(),
                        hint: match lang {
                            Lang::Zh => f.help.clone(),
                            Lang::En => f.help_en.clone(),
                        },
                        kind: control_kind(f.field_type),
                        required: f.required,
                        value: values.first().cloned().unwrap_or_default(),
                        values,
                        options: f
                            .options
                            .iter()
                            .map(|o| Opt {
                                value: o.value.clone(),
                                label: lang.pick(&o.label, &o.label_en).to_owned(),
                            })
                            .collect(),
                        source: form.sources.get(&f.id).cloned(),
                        error: error_at(&form.errors, &format!("f-{}", f.id), lang),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let materials: Vec<MaterialSlot> = service
        .map(|s| {
            s.materials
                .iter()
                .map(|m| MaterialSlot {
                    id: m.id.clone(),
                    name: lang.pick(&m.name, &m.name_en).to_owned(),
                    required: m.required,
                    types: m
                        .file_types
                        .iter()
                        .map(|t| match t {
                            FileType::Pdf => ".pdf",
                            FileType::Jpg => ".jpg,.jpeg",
                            FileType::Png => ".png",
                            FileType::Ofd => ".ofd",
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    substitute: form.evidence.get(&m.id).cloned(),
                    substituted: form.substitute.contains(&m.id),
                    kept: form
                        .kept
                        .get(&m.id)
                        .into_iter()
                        .flatten()
                        .map(Uuid::to_string)
                        .collect(),
                    error: error_at(&form.errors, &format!("file-{}", m.id), lang),
                })
                .collect()
        })
        .unwrap_or_default();
    let errors: Vec<ErrorLink> = form
        .errors
        .iter()
        .map(|e| ErrorLink {
            anchor: intake_anchor(&e.field),
            text: e.message.get(lang).to_owned(),
        })
        .collect();
    let kinds: Vec<Opt> = service
        .map(|s| {
            s.applicant_types
                .iter()
                .map(|t| {
                    let code = match t {
                        ApplicantType::Person => "person",
                        ApplicantType::Enterprise => "enterprise",
                    };
                    Opt {
                        value: code.to_owned(),
                        label: ctx.t(&format!("staff.kind_{code}")),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let err = |a: &str| error_at(&form.errors, a, lang);
    ctx.render(
        status,
        "staff/intake.html",
        context! {
            services => services,
            service => service.map(|s| context! {
                code => s.code.clone(),
                name => lang.pick(&s.name, &s.name_en).to_owned(),
                department => department_name(app, &s.department, lang),
            }),
            fields => fields,
            materials => materials,
            kinds => kinds,
            a => context! {
                kind => if form.kind.is_empty() { "person".to_owned() } else { form.kind.clone() },
                name => form.name.clone(),
                id_number => form.id_number.clone(),
                uscc => form.uscc.clone(),
                phone => form.phone.clone(),
            },
            looked_up => form.looked_up,
            errors => errors,
            e => context! {
                id_number => err("id_number"),
                uscc => err("uscc"),
                applicant_id => err("applicant-id_number"),
                applicant_uscc => err("applicant-uscc"),
                purpose => err("purpose"),
                kind => err("applicant-kind"),
                name => err("applicant-name"),
                phone => err("applicant-phone"),
                materials => err("materials"),
            },
            hall => clerk.hall.clone(),
        },
    )
}

async fn intake_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    clerk: Result<Clerk, AppError>,
    q: Result<Query<IntakeParams>, QueryRejection>,
) -> AppResult<Response> {
    let clerk = match ctx.logged_in(clerk, true) {
        Ok(c) => c,
        Err(r) => return Ok(*r),
    };
    let q = q.map(|q| q.0).unwrap_or_default();
    let service = non_empty(&q.service)
        .and_then(|c| app.catalogue.service(c))
        .filter(|s| {
            window_services(&app, &clerk)
                .iter()
                .any(|w| w.code == s.code)
        });
    Ok(render_intake(
        &ctx,
        &app,
        &clerk,
        service,
        &IntakeForm::default(),
        StatusCode::OK,
    ))
}

/// The lookup as posted.
#[derive(Debug, Deserialize)]
pub struct LookupForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    service: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    uscc: Option<String>,
    #[serde(default)]
    purpose: String,
}

/// The form filled from a lookup: values by field, where each came from, and the
/// materials an e-licence can stand in for.
fn filled_from(p: &Prefill, lang: Lang, form: &mut IntakeForm) {
    for (id, v) in &p.fields {
        let texts = match &v.value {
            Value::Array(a) => a.iter().map(text_of).collect(),
            Value::Bool(true) => vec!["true".to_owned()],
            Value::Bool(false) | Value::Null => Vec::new(),
            other => vec![text_of(other)],
        };
        form.values.insert(id.clone(), texts);
        let s = &v.source;
        form.sources.insert(
            id.clone(),
            format!(
                "{} · {}",
                lang.pick(&s.resource_name, &s.resource_name_en),
                lang.pick(&s.provider_name, &s.provider_name_en)
            ),
        );
    }
    for (id, e) in &p.materials {
        form.evidence.insert(id.clone(), evidence_label(e, lang));
    }
}

fn evidence_label(e: &prefill::Evidence, lang: Lang) -> String {
    let s = &e.source;
    format!(
        "{} · {}",
        lang.pick(&s.resource_name, &s.resource_name_en),
        lang.pick(&s.provider_name, &s.provider_name_en)
    )
}

async fn intake_lookup(
    State(app): State<AppState>,
    ctx: PageCtx,
    clerk: Result<Clerk, AppError>,
    form: Result<Form<LookupForm>, FormRejection>,
) -> AppResult<Response> {
    let clerk = match ctx.logged_in(clerk, true) {
        Ok(c) => c,
        Err(r) => return Ok(*r),
    };
    let Ok(Form(f)) = form else {
        return Err(AppError::BadRequest(Message::new(
            "表单内容有误，请重新打开页面。",
            "The form could not be read. Open the page again.",
        )));
    };
    check_csrf(f.csrf.as_deref(), ctx.session.as_ref())?;
    let Some(service) = app.catalogue.service(&f.service).filter(|s| {
        window_services(&app, &clerk)
            .iter()
            .any(|w| w.code == s.code)
    }) else {
        return Ok(Redirect::to("/staff/intake").into_response());
    };
    let mut form = IntakeForm {
        id_number: f.id_number.trim().to_owned(),
        uscc: f.uscc.clone().unwrap_or_default().trim().to_owned(),
        kind: if f.uscc.as_deref().is_some_and(|u| !u.trim().is_empty()) {
            "enterprise".into()
        } else {
            "person".into()
        },
        ..IntakeForm::default()
    };
    match crate::http::sharing::lookup_at_window(
        &app,
        &clerk,
        service,
        &f.id_number,
        f.uscc.as_deref(),
        &f.purpose,
    )
    .await
    {
        Ok(p) => {
            filled_from(&p, ctx.lang, &mut form);
            form.looked_up = true;
            // the applicant's name, if the lookup filled a name field
            if let Some(name) = service
                .fields
                .iter()
                .find(|x| x.prefill.as_deref().is_some_and(|b| b.ends_with(".name")))
                .and_then(|x| form.values.get(&x.id))
                .and_then(|v| v.first())
            {
                form.name = name.clone();
            }
            Ok(render_intake(
                &ctx,
                &app,
                &clerk,
                Some(service),
                &form,
                StatusCode::OK,
            ))
        }
        Err(AppError::Invalid(errors)) => {
            form.errors = errors
                .into_iter()
                .map(|mut e| {
                    e.field = format!("lookup.{}", e.field);
                    e
                })
                .collect();
            Ok(render_intake(
                &ctx,
                &app,
                &clerk,
                Some(service),
                &form,
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
        Err(e) => Err(e),
    }
}

/// A text value of an intake control, at most [`MAX_TEXT_BYTES`].
async fn read_text(field: axum::extract::multipart::Field<'_>) -> AppResult<String> {
    let bytes = field.bytes().await.map_err(|e| multipart_error(&e))?;
    if bytes.len() > MAX_TEXT_BYTES {
        return Err(AppError::PayloadTooLarge(Message::new(
            "某一项填写的内容过长。",
            "A value is too long.",
        )));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A form control's texts as the JSON value of its field, as the apply pages send them:
/// text as typed (the domain normalises and checks it), a tick as `true`, several
/// choices as a list.
fn value_of(f: &Field, texts: &[String]) -> Option<Value> {
    match f.field_type {
        FieldType::Checkbox => texts
            .iter()
            .any(|t| t == "true")
            .then_some(Value::Bool(true)),
        FieldType::Multiselect => {
            let v: Vec<Value> = texts
                .iter()
                .filter(|t| !t.trim().is_empty())
                .map(|t| Value::String(t.clone()))
                .collect();
            (!v.is_empty()).then_some(Value::Array(v))
        }
        FieldType::Table => None,
        _ => texts.first().map(|t| Value::String(t.clone())),
    }
}

async fn intake_submit(
    State(app): State<AppState>,
    ctx: PageCtx,
    clerk: Result<Clerk, AppError>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> AppResult<Response> {
    let clerk = match ctx.logged_in(clerk, true) {
        Ok(c) => c,
        Err(r) => return Ok(*r),
    };
    let mut mp = multipart.map_err(|_| {
        AppError::BadRequest(Message::new(
            "表单内容有误，请重新打开页面。",
            "The form could not be read. Open the page again.",
        ))
    })?;
    let owner = clerk.user.session.account_id;
    let mut raw: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut uploads: BTreeMap<String, Vec<Uuid>> = BTreeMap::new();
    let mut upload_errors: Vec<FieldError> = Vec::new();
    let mut csrf_checked = false;
    while let Some(field) = mp.next_field().await.map_err(|e| multipart_error(&e))? {
        let name = field.name().unwrap_or_default().to_owned();
        if !csrf_checked {
            // the token comes first: nothing is stored for a forged form
            let sent = if name == "_csrf" {
                Some(read_text(field).await?)
            } else {
                None
            };
            check_csrf(sent.as_deref(), ctx.session.as_ref())?;
            csrf_checked = true;
            continue;
        }
        if let Some(material) = name.strip_prefix("file.") {
            let material = material.to_owned();
            if field.file_name().is_none_or(str::is_empty) {
                // an empty file input
                let _ = field.bytes().await;
                continue;
            }
            // the service's field comes before the files: its material's limits apply
            let def = raw
                .get("service")
                .and_then(|v| v.first())
                .and_then(|code| app.catalogue.service(code.trim()))
                .and_then(|s| s.materials.iter().find(|m| m.id == material));
            match store_upload(&app, owner, field, def).await {
                Ok(u) => uploads.entry(material).or_default().push(u.id),
                Err(AppError::BadRequest(m))
                | Err(AppError::PayloadTooLarge(m))
                | Err(AppError::UnsupportedMedia(m))
                | Err(AppError::Unprocessable(m)) => upload_errors.push(FieldError {
                    field: format!("materials.{material}"),
                    message: m,
                }),
                Err(e) => return Err(e),
            }
            continue;
        }
        let text = read_text(field).await?;
        raw.entry(name).or_default().push(text);
    }
    if !csrf_checked {
        check_csrf(None, ctx.session.as_ref())?;
    }
    let one = |k: &str| {
        raw.get(k)
            .and_then(|v| v.first())
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let Some(service) = app.catalogue.service(&one("service")).filter(|s| {
        window_services(&app, &clerk)
            .iter()
            .any(|w| w.code == s.code)
    }) else {
        return Ok(Redirect::to("/staff/intake").into_response());
    };
    let mut values = Map::new();
    let mut form = IntakeForm {
        kind: one("applicant-kind"),
        name: one("applicant-name"),
        id_number: one("applicant-id_number"),
        uscc: one("applicant-uscc"),
        phone: one("applicant-phone"),
        looked_up: true,
        ..IntakeForm::default()
    };
    for f in &service.fields {
        let texts = raw.get(&format!("f-{}", f.id)).cloned().unwrap_or_default();
        if let Some(v) = value_of(f, &texts) {
            values.insert(f.id.clone(), v);
        }
        form.values.insert(f.id.clone(), texts);
    }
    // files kept from a form sent back with problems come before new ones
    for m in &service.materials {
        let kept: Vec<Uuid> = raw
            .get(&format!("keep.{}", m.id))
            .into_iter()
            .flatten()
            .filter_map(|v| Uuid::parse_str(v.trim()).ok())
            .collect();
        if !kept.is_empty() {
            let entry = uploads.entry(m.id.clone()).or_default();
            let new = std::mem::take(entry);
            *entry = kept.into_iter().chain(new).collect();
        }
    }
    form.kept = uploads.clone();
    let mut materials = Vec::new();
    for m in &service.materials {
        let sub = raw
            .get(&format!("substitute.{}", m.id))
            .is_some_and(|v| v.iter().any(|x| x == "true"));
        if sub {
            form.substitute.push(m.id.clone());
            materials.push(MaterialInput {
                material: m.id.clone(),
                upload_id: None,
                substitute: true,
            });
        }
        for u in uploads.get(&m.id).into_iter().flatten() {
            materials.push(MaterialInput {
                material: m.id.clone(),
                upload_id: Some(*u),
                substitute: false,
            });
        }
    }
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let walk_in = intake::WalkIn {
        kind: form.kind.clone(),
        name: form.name.clone(),
        id_number: opt(&form.id_number),
        uscc: opt(&form.uscc),
        phone: opt(&form.phone),
    };
    if !upload_errors.is_empty() {
        form.errors = upload_errors;
        return Ok(render_intake(
            &ctx,
            &app,
            &clerk,
            Some(service),
            &form,
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    match intake::intake(
        &app,
        &clerk.actor(),
        service,
        &walk_in,
        &values,
        &materials,
        None,
    )
    .await
    {
        Ok(lodged) => Ok(
            Redirect::to(&format!("/staff/cases/{}?done=intake", lodged.case_no)).into_response(),
        ),
        Err(e) => match AppError::from(e) {
            AppError::Invalid(errors) => {
                // a material error names its input's position: point it at the material
                form.errors = errors
                    .into_iter()
                    .map(|mut e| {
                        if let Some(i) = e
                            .field
                            .strip_prefix("materials[")
                            .and_then(|r| r.split(']').next())
                            .and_then(|n| n.parse::<usize>().ok())
                            && let Some(m) = materials.get(i)
                        {
                            e.field = format!("materials.{}", m.material);
                        }
                        e
                    })
                    .collect();
                Ok(render_intake(
                    &ctx,
                    &app,
                    &clerk,
                    Some(service),
                    &form,
                    StatusCode::UNPROCESSABLE_ENTITY,
                ))
            }
            other => Err(other),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(deadline: &str, status: &str) -> WorklistParams {
        WorklistParams {
            deadline: Some(deadline.into()),
            status: Some(status.into()),
            ..WorklistParams::default()
        }
    }

    #[test]
    fn deadline_filters_bound_the_due_date_of_running_cases() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 10).expect("date");
        let soon = NaiveDate::from_ymd_opt(2026, 3, 13).expect("date");
        let mine = vec!["D1".to_owned(), "D2".to_owned()];
        let f = worklist_filter(&params("overdue", ""), &mine, today, soon);
        assert_eq!(f.due_by, NaiveDate::from_ymd_opt(2026, 3, 9));
        assert!(f.due_from.is_none());
        assert!(f.statuses.contains(&"accepted".to_owned()));
        assert!(
            !f.statuses.contains(&"suspended".to_owned()),
            "paused clocks have no state"
        );
        assert!(!f.statuses.contains(&"approved".to_owned()));
        let f = worklist_filter(&params("due_soon", ""), &mine, today, soon);
        assert_eq!((f.due_from, f.due_by), (Some(today), Some(soon)));
        let f = worklist_filter(&params("on_time", ""), &mine, today, soon);
        assert_eq!(f.due_from, soon.succ_opt());
        // a concluded status with a deadline filter matches nothing
        let f = worklist_filter(&params("overdue", "approved"), &mine, today, soon);
        assert_eq!(f.statuses, vec![String::new()]);
    }

    #[test]
    fn other_filters_stay_within_the_hall() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 10).expect("date");
        let mine = vec!["D1".to_owned()];
        let p = WorklistParams {
            department: Some("ELSEWHERE".into()),
            channel: Some("carrier-pigeon".into()),
            status: Some("nonsense".into()),
            q: Some("  HLBE  ".into()),
            sort: Some("due".into()),
            ..WorklistParams::default()
        };
        let f = worklist_filter(&p, &mine, today, today);
        assert_eq!(
            f.departments,
            Some(vec![]),
            "another hall's department: nothing"
        );
        assert!(f.channel.is_none() && f.statuses.is_empty());
        assert_eq!(f.text.as_deref(), Some("HLBE"));
        assert_eq!(f.sort, CaseSort::DueSoonest);
        assert_eq!(
            filter_query(&p),
            "status=nonsense&department=ELSEWHERE&channel=carrier-pigeon&q=HLBE&sort=due"
        );
    }

    #[test]
    fn the_qr_code_holds_the_public_query_url() {
        let url = status_url("https://gov.example/", "HLBE20260301-AB", "042917");
        assert_eq!(
            url,
            "https://gov.example/status?case_no=HLBE20260301-AB&code=042917"
        );
        assert_eq!(
            status_url("https://gov.example", "A", "1"),
            "https://gov.example/status?case_no=A&code=1"
        );
        let svg = qr_svg(&url, "QR \"x\"").expect("svg");
        assert!(
            svg.starts_with("<svg role=\"img\" aria-label=\"QR x\""),
            "{svg}"
        );
        assert!(!svg.contains("<?xml"));
    }

    #[test]
    fn a_correction_note_lists_the_materials_first() {
        let names = vec!["身份证".to_owned(), "照片".to_owned()];
        assert_eq!(
            correction_note(&names, "照片需白底", Lang::Zh),
            "请补正：身份证、照片。照片需白底"
        );
        assert_eq!(correction_note(&[], " x ", Lang::En), "x");
        assert_eq!(
            correction_note(&["ID card".to_owned()], "", Lang::En),
            "Please correct: ID card."
        );
    }

    #[test]
    fn problems_point_at_their_controls() {
        assert_eq!(intake_anchor("applicant.id_number"), "applicant-id_number");
        assert_eq!(intake_anchor("materials.photo"), "file-photo");
        assert_eq!(intake_anchor("members[0].name"), "f-members");
        assert_eq!(intake_anchor("name"), "f-name");
        assert_eq!(intake_anchor("lookup.id_number"), "id_number");
    }
}
