//! My cases, one case with the actions its state allows (supply a correction, withdraw
//! after a confirmation page, rate), my drafts, my messages and who read my data. The
//! actions run the same use cases as the JSON routes (`step::step`, `rate::rate`).

use crate::http::path::Path;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::{Value, context};
use serde::Deserialize;
use uuid::Uuid;

use super::super::check_csrf;
use super::{acting_enterprise, cst};
use crate::auth::extract::{Applicant, ApplicantCase, CurrentUser};
use crate::domain::case::{Action, Request as StepRequest};
use crate::domain::lang::Lang;
use crate::http::cases::views::CaseDetail;
use crate::http::cases::{multipart_error, store_upload};
use crate::http::error::{AppError, AppResult, Message};
use crate::http::pages::PageCtx;
use crate::http::pages::paging::{ListAt, list_href, pager, shown_total};
use crate::sharing::prefill::purpose_label;
use crate::state::AppState;
use crate::store::CaseFilter;
use crate::usecases::{self, MaterialInput, rate, step};

const PER_PAGE: i64 = 20;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/me/cases", get(my_cases))
        .route("/me/cases/{case_no}", get(my_case))
        .route(
            "/me/cases/{case_no}/correction",
            axum::routing::post(correction),
        )
        .route(
            "/me/cases/{case_no}/withdraw",
            get(withdraw_confirm).post(withdraw),
        )
        .route("/me/cases/{case_no}/rating", axum::routing::post(rating))
        .route("/me/drafts", get(drafts))
        .route(
            "/me/drafts/{id}/delete",
            get(delete_draft_confirm).post(delete_draft),
        )
        .route("/me/messages", get(messages))
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    page: Option<i64>,
    before: Option<String>,
    from: Option<i64>,
}

/// Whom the page's actions are for: the enterprise's name for an enterprise user.
fn acting_for(ctx: &PageCtx) -> Option<String> {
    ctx.session
        .as_ref()
        .and_then(|s| s.enterprise.as_ref().map(|e| e.name.clone()))
}

/// `GET /me/cases`: my cases (and my enterprise's), newest first, paged.
pub async fn my_cases(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Applicant, AppError>,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Response> {
    let who = match ctx.logged_in(who, false) {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let q = q.map(|q| q.0).unwrap_or_default();
    let at = ListAt::of(q.before.as_deref(), q.from, q.page, PER_PAGE);
    let s = &who.0.session;
    let found = app
        .store
        .case_page(&CaseFilter {
            applicant: Some(s.account_id),
            enterprise: acting_enterprise(s),
            limit: PER_PAGE,
            offset: at.offset(PER_PAGE),
            before: at.before,
            ..CaseFilter::default()
        })
        .await?;
    let rows = &found.rows;
    let lang = ctx.lang;
    let items: Vec<Value> = rows
        .iter()
        .map(|c| {
            let v = crate::http::cases::views::CaseSummary::of(&app, c, lang);
            context! {
                case_no => v.case_no,
                service => v.service.name,
                status => v.status,
                deadline => v.deadline,
                channel => c.channel.clone(),
                submitted_at => cst(v.submitted_at),
                updated_at => cst(v.updated_at),
                enterprise => c.applicant.kind == crate::auth::identity::AccountKind::Enterprise,
            }
        })
        .collect();
    let total = shown_total(found.total, found.total_capped, lang);
    let pager = pager(
        |paging| list_href("/me/cases", "", paging),
        at,
        rows.len(),
        total.clone(),
        found.next,
    );
    Ok(ctx.render(
        StatusCode::OK,
        "citizen/cases.html",
        context! { items, pager, total, acting_for => acting_for(&ctx) },
    ))
}

/// What the case page shows besides the case: errors of a form sent, and what was typed.
#[derive(Default)]
struct Posted {
    errors: Vec<(String, String)>,
    rating: Option<String>,
    comment: Option<String>,
    note: Option<String>,
}

async fn case_page(
    app: &AppState,
    ctx: &PageCtx,
    ApplicantCase { applicant, case }: &ApplicantCase,
    status: StatusCode,
    posted: Posted,
) -> AppResult<Response> {
    let lang = ctx.lang;
    let d = CaseDetail::build(app, case, lang, &applicant.actor()).await?;
    let service = app.catalogue.service(&case.service_code);
    let material_name = |id: &str| {
        service
            .and_then(|s| s.materials.iter().find(|m| m.id == id))
            .map(|m| lang.pick(&m.name, &m.name_en).to_owned())
            .unwrap_or_else(|| id.to_owned())
    };
    let materials: Vec<Value> = d
        .materials
        .iter()
        .map(|m| {
            context! {
                name => material_name(&m.material_id),
                file_name => m.file_name.clone(),
                substituted => m.substituted,
                added => m.added_seq > 1,
            }
        })
        .collect();
    let correctable: Vec<Value> = service
        .map(|s| {
            s.materials
                .iter()
                .map(|m| context! { id => m.id.clone(), name => lang.pick(&m.name, &m.name_en) })
                .collect()
        })
        .unwrap_or_default();
    let who = by_whom(app, case, lang);
    let timeline: Vec<Value> = d
        .timeline
        .iter()
        .map(|e| {
            context! {
                when => cst(e.at),
                who => who(&e.by),
                what => e.action_label.clone().or_else(|| e.status.label.clone()),
                note => e.note.clone().flatten(),
            }
        })
        .collect();
    let errors: Vec<Value> = posted
        .errors
        .iter()
        .map(|(a, t)| context! { anchor => a, text => t })
        .collect();
    let field_error = |f: &str| {
        posted
            .errors
            .iter()
            .find(|(a, _)| a == f)
            .map(|(_, t)| t.clone())
    };
    let can_rate = case.concluded_on.is_some() && case.rating.is_none();
    let rating_labels: Vec<Value> = (1..=5)
        .rev()
        .map(|l| {
            let (zh, en) = rate::rating_labels(l).unwrap_or(("", ""));
            context! { level => l, label => lang.pick(zh, en) }
        })
        .collect();
    Ok(ctx.render(
        status,
        "citizen/case.html",
        context! {
            cs => context! {
                case_no => d.case_no.clone(),
                query_code => d.query_code.clone(),
                service => d.service.name.clone(),
                service_code => d.service.code.clone(),
                department => d.department.name.clone(),
                status => d.status.clone(),
                deadline => d.deadline.clone(),
                submitted_at => cst(d.submitted_at),
                accepted_on => d.accepted_on.map(|x| x.to_string()),
                concluded_on => d.concluded_on.map(|x| x.to_string()),
                result => d.result.clone(),
                asked => d.asked_of_applicant.clone(),
                applicant_name => d.applicant.name.clone(),
                applicant_id => d.applicant.id_number.clone(),
                applicant_uscc => d.applicant.uscc.clone(),
                enterprise => d.applicant.kind == "enterprise",
                channel => d.channel.clone(),
                rating => d.rating.as_ref().map(|r| context! {
                    level => r.level,
                    label => rate::rating_labels(r.level).map(|(zh, en)| lang.pick(zh, en)),
                    comment => r.comment.clone(),
                }),
            },
            materials,
            timeline,
            correctable,
            can_correct => d.allowed_actions.contains(&Action::SupplyCorrection),
            can_withdraw => d.allowed_actions.contains(&Action::Withdraw),
            can_rate,
            rating_labels,
            errors,
            rating_error => field_error("rating"),
            comment_error => field_error("comment"),
            note_error => field_error("note"),
            rating_value => posted.rating,
            comment_value => posted.comment,
            note_value => posted.note,
            acting_for => acting_for(ctx),
            done => ctx.path.contains("done="),
        },
    ))
}

/// Who took a step, as the history shows it: a department's step names the department
/// (not for a joint case, whose steps may be any routed department's).
fn by_whom(app: &AppState, case: &crate::store::CaseRow, lang: Lang) -> impl Fn(&str) -> String {
    use crate::domain::case::Actor;
    let joint = app
        .catalogue
        .service(&case.service_code)
        .is_some_and(|s| s.routing.departments.len() > 1);
    let dept = app
        .catalogue
        .department(&case.department)
        .map(|d| lang.pick(&d.short_name, &d.short_name_en).to_owned())
        .filter(|_| !joint);
    let dept_roles: Vec<String> = [Actor::DepartmentOfficer, Actor::DepartmentSystem]
        .iter()
        .map(|a| {
            let (zh, en) = a.labels();
            lang.pick(zh, en).to_owned()
        })
        .collect();
    move |by: &str| match &dept {
        Some(d) if dept_roles.iter().any(|r| r == by) => format!("{d} · {by}"),
        _ => by.to_owned(),
    }
}

/// `GET /me/cases/{case_no}`: the case, what is asked of me and what I can do now.
pub async fn my_case(
    State(app): State<AppState>,
    ctx: PageCtx,
    c: Result<ApplicantCase, AppError>,
) -> AppResult<Response> {
    let c = match ctx.logged_in(c, false) {
        Ok(c) => c,
        Err(r) => return Ok(*r),
    };
    case_page(&app, &ctx, &c, StatusCode::OK, Posted::default()).await
}

/// A use case's field issues as (anchor, text) for the page, or the error itself.
fn issues_of(e: usecases::Error, lang: Lang) -> Result<Vec<(String, String)>, AppError> {
    match e {
        usecases::Error::Invalid(issues) => Ok(issues
            .into_iter()
            .map(|i| {
                let anchor = if i.field.starts_with("materials") {
                    "files".to_owned()
                } else {
                    i.field.clone()
                };
                (anchor, lang.pick(&i.zh, &i.en).to_owned())
            })
            .collect()),
        other => Err(other.into()),
    }
}

fn to_case(case_no: &str, done: &str) -> Response {
    Redirect::to(&format!("/me/cases/{case_no}?done={done}")).into_response()
}

/// `POST /me/cases/{case_no}/correction`: the corrected materials (multipart: `_csrf`,
/// `note`, `file.<material>`), as `POST /api/v1/cases/{case_no}/correction`.
pub async fn correction(
    State(app): State<AppState>,
    ctx: PageCtx,
    c: Result<ApplicantCase, AppError>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> AppResult<Response> {
    let c = match ctx.logged_in(c, false) {
        Ok(c) => c,
        Err(r) => return Ok(*r),
    };
    let mut multipart = multipart.map_err(|_| {
        AppError::BadRequest(Message::new("表单格式有误。", "The form is malformed."))
    })?;
    let owner = c.applicant.0.session.account_id;
    let mut csrf = None;
    let mut note = String::new();
    let mut materials = Vec::new();
    let mut rejected = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e))?
    {
        let name = field.name().unwrap_or("").to_owned();
        if name == "_csrf" {
            csrf = Some(field.text().await.map_err(|e| multipart_error(&e))?);
            check_csrf(csrf.as_deref(), Some(&c.applicant.0.session))?;
        } else if name == "note" {
            note = field.text().await.map_err(|e| multipart_error(&e))?;
        } else if let Some(material) = name.strip_prefix("file.") {
            if field.file_name().is_none_or(str::is_empty) {
                continue;
            }
            let material = material.to_owned();
            let def = app
                .catalogue
                .service(&c.case.service_code)
                .and_then(|s| s.materials.iter().find(|m| m.id == material));
            match store_upload(&app, owner, field, def).await {
                Ok(u) => materials.push(MaterialInput {
                    material,
                    upload_id: Some(u.id),
                    substitute: false,
                }),
                Err(e) => rejected.push((
                    "files".to_owned(),
                    e.problem().detail.get(ctx.lang).to_owned(),
                )),
            }
        }
    }
    check_csrf(csrf.as_deref(), Some(&c.applicant.0.session))?;
    let posted = |errors| Posted {
        errors,
        note: Some(note.clone()),
        ..Posted::default()
    };
    if !rejected.is_empty() {
        return case_page(
            &app,
            &ctx,
            &c,
            StatusCode::UNPROCESSABLE_ENTITY,
            posted(rejected),
        )
        .await;
    }
    if materials.is_empty() && note.trim().is_empty() {
        let e = vec![("files".to_owned(), ctx.t("citizen.correction_empty"))];
        return case_page(&app, &ctx, &c, StatusCode::UNPROCESSABLE_ENTITY, posted(e)).await;
    }
    let req = StepRequest {
        action: Action::SupplyCorrection,
        result: None,
        note: Some(note.trim().to_owned()).filter(|n| !n.is_empty()),
    };
    let actor = c.applicant.actor();
    match step::step(&app, c.case.clone(), &actor, req, &materials, None).await {
        Ok(_) => Ok(to_case(&c.case.case_no, "corrected")),
        Err(e) => {
            let errors = issues_of(e, ctx.lang)?;
            case_page(
                &app,
                &ctx,
                &c,
                StatusCode::UNPROCESSABLE_ENTITY,
                posted(errors),
            )
            .await
        }
    }
}

/// `GET /me/cases/{case_no}/withdraw`: are you sure? (a page, so it works without JS)
pub async fn withdraw_confirm(
    State(app): State<AppState>,
    ctx: PageCtx,
    c: Result<ApplicantCase, AppError>,
) -> AppResult<Response> {
    let c = match ctx.logged_in(c, false) {
        Ok(c) => c,
        Err(r) => return Ok(*r),
    };
    let d = CaseDetail::build(&app, &c.case, ctx.lang, &c.applicant.actor()).await?;
    if !d.allowed_actions.contains(&Action::Withdraw) {
        // concluded or closed: nothing to withdraw any more
        return Ok(Redirect::to(&format!("/me/cases/{}", c.case.case_no)).into_response());
    }
    let service = d.service.name;
    Ok(ctx.render(
        StatusCode::OK,
        "citizen/withdraw.html",
        context! { case_no => c.case.case_no.clone(), service, acting_for => acting_for(&ctx) },
    ))
}

#[derive(Debug, Deserialize)]
pub struct WithdrawForm {
    _csrf: Option<String>,
    confirm: Option<String>,
    note: Option<String>,
}

/// `POST /me/cases/{case_no}/withdraw`: withdraws, once confirmed, as
/// `POST /api/v1/cases/{case_no}/withdraw`.
pub async fn withdraw(
    State(app): State<AppState>,
    ctx: PageCtx,
    c: Result<ApplicantCase, AppError>,
    form: Result<Form<WithdrawForm>, FormRejection>,
) -> AppResult<Response> {
    let c = match ctx.logged_in(c, false) {
        Ok(c) => c,
        Err(r) => return Ok(*r),
    };
    let Ok(Form(f)) = form else {
        return Err(AppError::BadRequest(Message::new(
            "表单格式有误。",
            "The form is malformed.",
        )));
    };
    check_csrf(f._csrf.as_deref(), Some(&c.applicant.0.session))?;
    if f.confirm.as_deref() != Some("yes") {
        // not confirmed: ask again
        return Ok(Redirect::to(&format!("/me/cases/{}/withdraw", c.case.case_no)).into_response());
    }
    let req = StepRequest {
        action: Action::Withdraw,
        result: None,
        note: f
            .note
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty()),
    };
    let actor = c.applicant.actor();
    step::step(&app, c.case.clone(), &actor, req, &[], None).await?;
    Ok(to_case(&c.case.case_no, "withdrawn"))
}

#[derive(Debug, Deserialize)]
pub struct RatingForm {
    _csrf: Option<String>,
    rating: Option<String>,
    comment: Option<String>,
}

/// `POST /me/cases/{case_no}/rating`: 好差评, as `POST /api/v1/cases/{case_no}/rating`.
pub async fn rating(
    State(app): State<AppState>,
    ctx: PageCtx,
    c: Result<ApplicantCase, AppError>,
    form: Result<Form<RatingForm>, FormRejection>,
) -> AppResult<Response> {
    let c = match ctx.logged_in(c, false) {
        Ok(c) => c,
        Err(r) => return Ok(*r),
    };
    let Ok(Form(f)) = form else {
        return Err(AppError::BadRequest(Message::new(
            "表单格式有误。",
            "The form is malformed.",
        )));
    };
    check_csrf(f._csrf.as_deref(), Some(&c.applicant.0.session))?;
    let level: i16 = f
        .rating
        .as_deref()
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(0);
    match rate::rate(&app, &c.case, level, f.comment.as_deref()).await {
        Ok(_) => Ok(to_case(&c.case.case_no, "rated")),
        Err(e) => {
            let errors = issues_of(e, ctx.lang)?;
            let posted = Posted {
                errors,
                rating: f.rating,
                comment: f.comment,
                ..Posted::default()
            };
            case_page(&app, &ctx, &c, StatusCode::UNPROCESSABLE_ENTITY, posted).await
        }
    }
}

/// `GET /me/drafts`: my drafts not yet expired, to resume or delete.
pub async fn drafts(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Applicant, AppError>,
) -> AppResult<Response> {
    let who = match ctx.logged_in(who, false) {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let now = chrono::Utc::now();
    let items: Vec<Value> = app
        .store
        .drafts(who.0.session.account_id)
        .await?
        .into_iter()
        .filter(|d| d.expires_at > now)
        .map(|d| {
            let service = app.catalogue.service(&d.service_code);
            context! {
                id => d.id.to_string(),
                service_code => d.service_code.clone(),
                service => service.map(|s| ctx.pick(&s.name, &s.name_en).to_owned()).unwrap_or(d.service_code.clone()),
                updated_at => cst(d.updated_at),
                expires_at => cst(d.expires_at),
                filled => d.form.as_object().map(|o| o.values().filter(|v| !v.is_null() && v.as_str() != Some("")).count()).unwrap_or(0),
            }
        })
        .collect();
    Ok(ctx.render(
        StatusCode::OK,
        "citizen/drafts.html",
        context! { items, deleted => ctx.path.contains("deleted=1") },
    ))
}

/// `GET /me/drafts/{id}/delete`: are you sure?
pub async fn delete_draft_confirm(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Applicant, AppError>,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let who = match ctx.logged_in(who, false) {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let d = match Uuid::parse_str(&id) {
        Ok(id) => app.store.draft(id, who.0.session.account_id).await?,
        Err(_) => None,
    };
    let Some(d) = d else {
        return Err(draft_not_found());
    };
    let service = app
        .catalogue
        .service(&d.service_code)
        .map(|s| ctx.pick(&s.name, &s.name_en).to_owned());
    Ok(ctx.render(
        StatusCode::OK,
        "citizen/draft_delete.html",
        context! { id => d.id.to_string(), service, updated_at => cst(d.updated_at) },
    ))
}

fn draft_not_found() -> AppError {
    AppError::NotFound(Message::new(
        "没有这个草稿（可能已过期）。",
        "There is no such draft (it may have expired).",
    ))
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    _csrf: Option<String>,
}

/// `POST /me/drafts/{id}/delete`: deletes it, as `DELETE /api/v1/drafts/{id}`.
pub async fn delete_draft(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Applicant, AppError>,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> AppResult<Response> {
    let who = match ctx.logged_in(who, false) {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let sent = form.ok().and_then(|f| f.0._csrf);
    check_csrf(sent.as_deref(), Some(&who.0.session))?;
    let id = Uuid::parse_str(&id).map_err(|_| draft_not_found())?;
    if app.store.delete_draft(id, who.0.session.account_id).await? {
        Ok(Redirect::to("/me/drafts?deleted=1").into_response())
    } else {
        Err(draft_not_found())
    }
}

/// `GET /me/messages`: my messages, newest first (the notifications API's list).
pub async fn messages(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<CurrentUser, AppError>,
) -> AppResult<Response> {
    let who = match ctx.logged_in(who, false) {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let items: Vec<Value> = app
        .store
        .notifications(who.session.account_id, 100)
        .await?
        .into_iter()
        .map(|n| {
            context! {
                case_no => n.case_no.clone(),
                title => ctx.pick(&n.title_zh, &n.title_en).to_owned(),
                body => ctx.pick(&n.body_zh, &n.body_en).to_owned(),
                at => cst(n.created_at),
                unread => n.read_at.is_none(),
            }
        })
        .collect();
    Ok(ctx.render(StatusCode::OK, "citizen/messages.html", context! { items }))
}

/// One read of my data as the page shows it: the records a single read wrote (one per
/// resource, at the same moment, by the same reader, for the same purpose and case) make
/// one row; a department reading one case's application again and again (at each step)
/// is one row too, with how many times and when first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReadRow {
    /// The latest read.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The earliest read this row stands for.
    pub first_at: chrono::DateTime<chrono::Utc>,
    /// How many reads (distinct moments) the row stands for.
    pub times: usize,
    pub reader_kind: String,
    pub reader: String,
    pub purpose: String,
    pub service: Option<String>,
    pub case_no: Option<String>,
    /// `resource: items` per resource read.
    pub data: Vec<(String, Vec<String>)>,
    pub enterprise: bool,
}

/// Groups the trail (newest first) into rows, see [`ReadRow`].
pub(crate) fn group_reads(list: &[crate::sharing::audit::AccessView]) -> Vec<ReadRow> {
    let mut out: Vec<ReadRow> = Vec::new();
    for a in list {
        let same_moment = |r: &ReadRow| (r.first_at - a.at).num_seconds().abs() <= 1;
        let found = out.iter_mut().find(|r| {
            r.reader_kind == a.reader_kind_label
                && r.reader == a.reader
                && r.purpose == a.purpose
                && r.service == a.service
                && r.case_no == a.case_no
                && (r.case_no.is_some() || same_moment(r))
        });
        let Some(row) = found else {
            out.push(ReadRow {
                at: a.at,
                first_at: a.at,
                times: 1,
                reader_kind: a.reader_kind_label.clone(),
                reader: a.reader.clone(),
                purpose: a.purpose.clone(),
                service: a.service.clone(),
                case_no: a.case_no.clone(),
                data: vec![(a.resource.clone(), a.items.clone())],
                enterprise: a.subject_kind == "enterprise",
            });
            continue;
        };
        if !same_moment(row) {
            row.times += 1;
            row.first_at = a.at;
        }
        match row.data.iter_mut().find(|(r, _)| *r == a.resource) {
            Some((_, items)) => {
                for i in &a.items {
                    if !items.contains(i) {
                        items.push(i.clone());
                    }
                }
            }
            None => row.data.push((a.resource.clone(), a.items.clone())),
        }
        row.enterprise |= a.subject_kind == "enterprise";
    }
    out
}

/// `GET /me/data-access`: who read my data (and my enterprise's), one row per read.
pub async fn data_access(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<CurrentUser, AppError>,
) -> AppResult<Response> {
    let who = match ctx.logged_in(who, false) {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let lang = ctx.lang;
    let (list, intact) = crate::http::sharing::data_access_of(&app, &who, lang).await?;
    let sep = lang.pick("、", ", ");
    let reads: Vec<Value> = group_reads(&list)
        .into_iter()
        .map(|r| {
            context! {
                at => cst(r.at),
                at_iso => r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                times => r.times,
                first_at => cst(r.first_at),
                reader_kind => r.reader_kind,
                reader => r.reader,
                data => r.data.iter().map(|(res, items)| context! { resource => res, items => items.join(sep) }).collect::<Vec<_>>(),
                purpose => purpose_label(&r.purpose, lang),
                service => r.service,
                case_no => r.case_no,
                enterprise => r.enterprise,
            }
        })
        .collect();
    Ok(ctx.render(
        StatusCode::OK,
        "data_access.html",
        context! { records => reads, chain_intact => intact },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sharing::audit::AccessView;

    fn read(at: i64, resource: &str, item: &str, case_no: Option<&str>) -> AccessView {
        AccessView {
            at: chrono::DateTime::from_timestamp(at, 0).expect("a time"),
            reader_kind: "applicant".into(),
            reader_kind_label: "本人".into(),
            reader: "王".into(),
            resource: resource.into(),
            resource_code: resource.into(),
            items: vec![item.into()],
            purpose: "prefill".into(),
            service: Some("社会保障卡申领".into()),
            case_no: case_no.map(str::to_owned),
            subject_kind: "person".into(),
        }
    }

    #[test]
    fn one_prefill_read_is_one_row() {
        let list = vec![
            read(1000, "户籍", "姓名", None),
            read(1000, "户籍", "住址", None),
            read(1000, "社保", "参保状态", None),
            read(500, "户籍", "姓名", None),
            read(500, "户籍", "姓名", Some("C1")),
        ];
        let rows = group_reads(&list);
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[0].times, 1);
        assert_eq!(
            rows[0].data,
            vec![
                (
                    "户籍".to_owned(),
                    vec!["姓名".to_owned(), "住址".to_owned()]
                ),
                ("社保".to_owned(), vec!["参保状态".to_owned()]),
            ]
        );
    }

    #[test]
    fn a_department_reading_one_case_again_is_one_row_with_a_count() {
        let dept = |at: i64, case_no: &str| AccessView {
            reader_kind: "department".into(),
            reader_kind_label: "审批部门".into(),
            reader: "人社局".into(),
            purpose: "process".into(),
            ..read(at, "申请表和申请材料", "姓名", Some(case_no))
        };
        let list = vec![
            dept(900, "C1"),
            dept(850, "C2"),
            dept(800, "C1"),
            dept(700, "C1"),
        ];
        let rows = group_reads(&list);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!((rows[0].times, rows[1].times), (3, 1));
        assert_eq!(rows[0].first_at.timestamp(), 700);
        assert_eq!(rows[0].at.timestamp(), 900);
    }
}
