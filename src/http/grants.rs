//! Sharing requests and grants (`crate::sharing::grants`) over HTTP:
//!
//! - department officers (`/api/staff/v1/sharing/…`): their requests both ways, filing,
//!   the provider's decision, the requester's answer, grants given and received, revoking;
//! - operators: `GET /api/ops/v1/sharing/grants` (every grant and request);
//! - department systems: `POST /api/dept/v1/data/{resource}` (scope `data:read`);
//! - pages `/desk/sharing/requests` (file, inbox, decide, answer), `/desk/sharing/grants`
//!   (given and received, revoke) and `/ops/sharing/grants`.

use std::collections::HashMap;

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{NaiveDate, Utc};
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::extract::{DepartmentClient, DepartmentOfficer, Operator};
use crate::domain::catalogue::ShareType;
use crate::domain::lang::Lang;
use crate::http::cases::AppJson;
use crate::http::error::{AppError, AppResult, FieldError, Message};
use crate::http::openapi::{Problem, RoleErrors};
use crate::http::pages::PageCtx;
use crate::http::path::Path;
use crate::sharing::grants::{
    self as g, Author, DeptDataAnswer, DeptDataQuery, SharingAnswerInput, SharingDecisionInput,
    SharingGrantLists, SharingGrantView, SharingOverview, SharingRequestDetail,
    SharingRequestInput, SharingRequestLists, SharingRequestView, SharingRevokeInput,
};
use crate::state::AppState;

/// Department-officer API routes.
pub fn staff_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(staff_requests, staff_file))
        .routes(routes!(staff_request))
        .routes(routes!(staff_decide))
        .routes(routes!(staff_answer))
        .routes(routes!(staff_grants))
        .routes(routes!(staff_revoke))
}

/// Operator API routes.
pub fn operator_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ops_overview))
}

/// Department-system API routes.
pub fn department_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dept_read))
}

/// Pages.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route(
            "/desk/sharing/requests",
            get(desk_requests_page).post(desk_file_form),
        )
        .route("/desk/sharing/requests/new", get(desk_new_page))
        .route("/desk/sharing/requests/{id}", get(desk_request_page))
        .route(
            "/desk/sharing/requests/{id}/decision",
            post(desk_decide_form),
        )
        .route("/desk/sharing/requests/{id}/answer", post(desk_answer_form))
        .route("/desk/sharing/grants", get(desk_grants_page))
        .route("/desk/sharing/grants/{id}/revoke", post(desk_revoke_form))
        .route("/ops/sharing/grants", get(ops_grants_page))
}

fn parse_id(id: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| {
        AppError::NotFound(Message::new(
            "没有这个共享申请或授权。",
            "There is no such sharing request or grant.",
        ))
    })
}

fn author(o: &DepartmentOfficer) -> Author<'_> {
    Author {
        id: o.user.session.account_id.to_string(),
        name: &o.user.session.name,
        department: &o.department,
    }
}

// ---- staff API ---------------------------------------------------------------------------

/// `GET /api/staff/v1/sharing/requests`
#[utoipa::path(
    get,
    path = "/api/staff/v1/sharing/requests",
    operation_id = "listSharingRequests",
    summary = "Your department's sharing requests: filed, and for its resources (inbox)",
    responses(
        (status = 200, description = "Both lists, newest first.", body = SharingRequestLists),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn staff_requests(
    State(app): State<AppState>,
    o: DepartmentOfficer,
) -> AppResult<Json<SharingRequestLists>> {
    Ok(Json(g::department_requests(&app, &o.department).await?))
}

/// `POST /api/staff/v1/sharing/requests`
#[utoipa::path(
    post,
    path = "/api/staff/v1/sharing/requests",
    operation_id = "fileSharingRequest",
    summary = "Request a conditional resource for a service or system of yours (共享申请)",
    description = "Only 有条件共享 resources are requested: a 无条件 one needs no request and a \
        不予共享 one can never be shared (both 422, naming the resource).",
    request_body(content = SharingRequestInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Filed; waiting for the provider.", body = SharingRequestView),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such resource.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fields to correct, or a resource that is not requested (无条件, 不予共享, or your own).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_file(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    AppJson(body): AppJson<SharingRequestInput>,
) -> AppResult<Response> {
    let r = g::create_request(&app, &author(&o), &body, Utc::now()).await?;
    let names = g::Names::load(&app).await?;
    Ok((StatusCode::CREATED, Json(names.request(&app.catalogue, &r))).into_response())
}

/// `GET /api/staff/v1/sharing/requests/{id}`
#[utoipa::path(
    get,
    path = "/api/staff/v1/sharing/requests/{id}",
    operation_id = "getSharingRequest",
    summary = "A sharing request with its steps and what you may do now",
    params(("id" = String, Path, description = "The request's id.")),
    responses(
        (status = 200, description = "The request.", body = SharingRequestDetail),
        RoleErrors,
        (status = 404, description = "No such request between your department and another.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_request(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    Path(id): Path<String>,
) -> AppResult<Json<SharingRequestDetail>> {
    let id = parse_id(&id)?;
    Ok(Json(
        g::detail(&app, Some(&o.department), id, Utc::now()).await?,
    ))
}

/// `POST /api/staff/v1/sharing/requests/{id}/decision`
#[utoipa::path(
    post,
    path = "/api/staff/v1/sharing/requests/{id}/decision",
    operation_id = "decideSharingRequest",
    summary = "The provider approves (perhaps fewer items, with an expiry), refuses or asks for more",
    params(("id" = String, Path, description = "The request's id.")),
    request_body(content = SharingDecisionInput, content_type = "application/json"),
    responses(
        (status = 200, description = "The request after the step.", body = SharingRequestView),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such request.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending now.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fields to correct (items not asked for, a past expiry, no reason).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_decide(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    Path(id): Path<String>,
    AppJson(body): AppJson<SharingDecisionInput>,
) -> AppResult<Json<SharingRequestView>> {
    let id = parse_id(&id)?;
    let r = g::decide(&app, &author(&o), id, &body, Utc::now()).await?;
    let names = g::Names::load(&app).await?;
    Ok(Json(names.request(&app.catalogue, &r)))
}

/// `POST /api/staff/v1/sharing/requests/{id}/answer`
#[utoipa::path(
    post,
    path = "/api/staff/v1/sharing/requests/{id}/answer",
    operation_id = "answerSharingRequest",
    summary = "The requester answers what the provider asked; it returns to the provider",
    params(("id" = String, Path, description = "The request's id.")),
    request_body(content = SharingAnswerInput, content_type = "application/json"),
    responses(
        (status = 200, description = "The request, pending again.", body = SharingRequestView),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such request.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing was asked.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No answer.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_answer(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    Path(id): Path<String>,
    AppJson(body): AppJson<SharingAnswerInput>,
) -> AppResult<Json<SharingRequestView>> {
    let id = parse_id(&id)?;
    let r = g::answer(&app, &author(&o), id, &body, Utc::now()).await?;
    let names = g::Names::load(&app).await?;
    Ok(Json(names.request(&app.catalogue, &r)))
}

/// `GET /api/staff/v1/sharing/grants`
#[utoipa::path(
    get,
    path = "/api/staff/v1/sharing/grants",
    operation_id = "listSharingGrants",
    summary = "Grants your department gave and received, with read counts",
    responses(
        (status = 200, description = "Both lists.", body = SharingGrantLists),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn staff_grants(
    State(app): State<AppState>,
    o: DepartmentOfficer,
) -> AppResult<Json<SharingGrantLists>> {
    Ok(Json(
        g::department_grants(&app, &o.department, Utc::now()).await?,
    ))
}

/// `POST /api/staff/v1/sharing/grants/{id}/revoke`
#[utoipa::path(
    post,
    path = "/api/staff/v1/sharing/grants/{id}/revoke",
    operation_id = "revokeSharingGrant",
    summary = "The provider revokes a grant, with a reason; the next read is refused",
    params(("id" = String, Path, description = "The grant's id.")),
    request_body(content = SharingRevokeInput, content_type = "application/json"),
    responses(
        (status = 200, description = "The grant, revoked.", body = SharingGrantView),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such grant of your department's resources.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already revoked.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_revoke(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    Path(id): Path<String>,
    AppJson(body): AppJson<SharingRevokeInput>,
) -> AppResult<Json<SharingGrantView>> {
    let id = parse_id(&id)?;
    let now = Utc::now();
    let name = o.user.session.name.clone();
    let grant = g::revoke(&app, Some(&o.department), &name, id, &body, now).await?;
    let names = g::Names::load(&app).await?;
    Ok(Json(names.grant(&app.catalogue, &grant, now)))
}

// ---- operator API ------------------------------------------------------------------------

/// `GET /api/ops/v1/sharing/grants`
#[utoipa::path(
    get,
    path = "/api/ops/v1/sharing/grants",
    operation_id = "sharingOverview",
    summary = "Every sharing grant (with read counts) and request",
    responses(
        (status = 200, description = "Grants and requests.", body = SharingOverview),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn ops_overview(
    State(app): State<AppState>,
    _op: Operator,
) -> AppResult<Json<SharingOverview>> {
    Ok(Json(g::overview(&app, Utc::now()).await?))
}

// ---- department API ----------------------------------------------------------------------

/// `POST /api/dept/v1/data/{resource}`
#[utoipa::path(
    post,
    path = "/api/dept/v1/data/{resource}",
    tag = "data",
    operation_id = "readSharedData",
    summary = "Read a shared resource about one person or enterprise",
    description = "A 无条件共享 resource answers any department. A 有条件共享 one answers only \
        under a live grant of one of your department's information systems (name it in \
        `system`, or any holding one is used), and only the items granted: the others are \
        listed in `withheld`, not answered. A 不予共享 one is never answered. Every read is \
        recorded in the data subject's access trail with your purpose, before the answer, and \
        counted on the grant. Expired and revoked grants stop the next read.",
    params(("resource" = String, Path, description = "The resource's code.", example = "person")),
    request_body(content = DeptDataQuery, content_type = "application/json"),
    responses(
        (status = 200, description = "The items you may read.", body = DeptDataAnswer),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token; `WWW-Authenticate: Bearer realm=\"onewindow-dept\"`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks `data:read`, the resource is not shared, or no live grant of yours covers it.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such resource.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fields to correct: the subject, the purpose, unknown items.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider cannot be read now.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = ["data:read"]))
)]
pub async fn dept_read(
    State(app): State<AppState>,
    client: DepartmentClient,
    Path(resource): Path<String>,
    AppJson(body): AppJson<DeptDataQuery>,
) -> AppResult<Json<DeptDataAnswer>> {
    client.require("data:read")?;
    Ok(Json(
        g::read_data(&app, &client.token.department, &resource, &body, Utc::now()).await?,
    ))
}

// ---- pages -------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct DoneQuery {
    done: Option<String>,
    resource: Option<String>,
}

/// The confirmation after a page's step (an unknown code shows nothing).
fn done_message(done: Option<String>, lang: Lang) -> Option<&'static str> {
    Some(match done?.as_str() {
        "filed" => lang.pick(
            "申请已提交，等待提供部门审核。",
            "The request is filed and waits for the provider.",
        ),
        "approve" => lang.pick("已批准，授权即时生效。", "Approved; the grant is live now."),
        "refuse" => lang.pick("已拒绝。", "Refused."),
        "ask" => lang.pick("已要求申请部门补充。", "The requester was asked for more."),
        "answered" => lang.pick(
            "答复已提交，申请回到提供部门。",
            "Answer sent; the request is back with the provider.",
        ),
        "revoked" => lang.pick("授权已撤销。", "The grant is revoked."),
        "reason_missing" => lang.pick("撤销须填写理由。", "A revocation needs a reason."),
        _ => return None,
    })
}

fn state_label(s: &str, lang: Lang) -> &'static str {
    g::state_label(s, lang)
}

fn grant_state_label(s: &str, lang: Lang) -> &'static str {
    match s {
        "live" => g::GrantState::Live.label(lang),
        "not_yet" => g::GrantState::NotYet.label(lang),
        "expired" => g::GrantState::Expired.label(lang),
        _ => g::GrantState::Revoked.label(lang),
    }
}

fn request_row(r: &SharingRequestView, lang: Lang) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["state_label"] = json!(state_label(&r.state, lang));
    v["resource_label"] = json!(lang.pick(&r.resource_name, &r.resource_name_en));
    v["provider_label"] = json!(lang.pick(&r.provider_name, &r.provider_name_en));
    v["consumer_department_label"] =
        json!(lang.pick(&r.consumer_department_name, &r.consumer_department_name_en));
    v["consumer_label"] = json!(lang.pick(&r.consumer_name, &r.consumer_name_en));
    v["item_labels"] = json!(
        r.items
            .iter()
            .map(|i| lang.pick(&i.name, &i.name_en).to_owned())
            .collect::<Vec<_>>()
    );
    v["created_on"] = json!(r.created_at.format("%Y-%m-%d").to_string());
    v
}

fn grant_row(gr: &SharingGrantView, lang: Lang) -> Value {
    let mut v = serde_json::to_value(gr).unwrap_or_default();
    v["state_label"] = json!(grant_state_label(&gr.state, lang));
    v["resource_label"] = json!(lang.pick(&gr.resource_name, &gr.resource_name_en));
    v["provider_label"] = json!(lang.pick(&gr.provider_name, &gr.provider_name_en));
    v["consumer_department_label"] = json!(lang.pick(
        &gr.consumer_department_name,
        &gr.consumer_department_name_en
    ));
    v["consumer_label"] = json!(lang.pick(&gr.consumer_name, &gr.consumer_name_en));
    v["item_labels"] = json!(
        gr.items
            .iter()
            .map(|i| lang.pick(&i.name, &i.name_en).to_owned())
            .collect::<Vec<_>>()
    );
    let day = |t: Option<chrono::DateTime<Utc>>| t.map(|t| t.format("%Y-%m-%d %H:%M").to_string());
    v["until_label"] = json!(day(gr.valid_until));
    v["last_read_label"] = json!(day(gr.last_read_at));
    v["source_label"] = json!(if gr.source == "import" {
        lang.pick("目录导入", "Catalogue import")
    } else {
        lang.pick("共享申请", "Request")
    });
    v
}

async fn desk_requests_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let lang = ctx.lang;
    let lists = g::department_requests(&app, &o.department).await?;
    let mine: Vec<Value> = lists.mine.iter().map(|r| request_row(r, lang)).collect();
    let inbox: Vec<Value> = lists.inbox.iter().map(|r| request_row(r, lang)).collect();
    Ok(ctx.render(
        StatusCode::OK,
        "sharing_grants/requests.html",
        context! { mine, inbox, done => done_message(q.done, lang) },
    ))
}

/// The resources a department may request (conditional, not its own).
fn requestable(app: &AppState, dept: &str, lang: Lang) -> Vec<Value> {
    app.catalogue
        .resources()
        .iter()
        .filter(|r| r.share_type == ShareType::Conditional && r.provider != dept)
        .map(|r| {
            let p = app.catalogue.department(&r.provider);
            json!({
                "code": r.code,
                "label": format!(
                    "{} — {}",
                    lang.pick(&r.name, &r.name_en),
                    p.map(|d| lang.pick(&d.name, &d.name_en).to_owned()).unwrap_or_default()
                ),
            })
        })
        .collect()
}

async fn new_page(
    app: &AppState,
    ctx: &PageCtx,
    dept: &str,
    resource: Option<&str>,
    errors: Option<Vec<FieldError>>,
    form: Option<&HashMap<String, String>>,
) -> AppResult<Response> {
    let lang = ctx.lang;
    let res = resource
        .and_then(|c| app.catalogue.resource(c))
        .filter(|r| r.share_type == ShareType::Conditional && r.provider != dept);
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
    let Some(res) = res else {
        return Ok(ctx.render(
            status,
            "sharing_grants/new.html",
            context! { resources => requestable(app, dept, lang), chosen => Value::Null, errors => errs },
        ));
    };
    let picked = |id: &str| form.is_none_or(|f| f.contains_key(&format!("item.{id}")));
    let items: Vec<Value> = res
        .items
        .iter()
        .map(|i| {
            json!({
                "id": i.id,
                "label": lang.pick(&i.name, &i.name_en),
                "checked": form.is_some() && picked(&i.id),
            })
        })
        .collect();
    let mut consumers: Vec<Value> = app
        .catalogue
        .services()
        .iter()
        .filter(|s| s.department == dept)
        .map(|s| json!({ "code": format!("service:{}", s.code), "label": format!("{} {}", lang.pick("事项", "Service"), lang.pick(&s.name, &s.name_en)) }))
        .collect();
    for s in app.store.systems(Some(dept)).await? {
        if matches!(s.status.as_str(), "cleared" | "merged") {
            continue;
        }
        consumers.push(json!({
            "code": format!("system:{}", s.id),
            "label": format!("{} {}", lang.pick("系统", "System"), s.name),
        }));
    }
    let get = |k: &str| form.and_then(|f| f.get(k)).cloned().unwrap_or_default();
    let conditions = match lang {
        Lang::Zh => res.conditions.clone(),
        Lang::En => res.conditions_en.clone(),
    };
    Ok(ctx.render(
        status,
        "sharing_grants/new.html",
        context! {
            resources => requestable(app, dept, lang),
            chosen => json!({
                "code": res.code,
                "label": lang.pick(&res.name, &res.name_en),
                "conditions": conditions,
            }),
            items, consumers, errors => errs,
            form => json!({
                "consumer": get("consumer"),
                "purpose": get("purpose"),
                "legal_basis": get("legal_basis"),
                "period_from": get("period_from"),
                "period_until": get("period_until"),
            }),
        },
    ))
}

async fn desk_new_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    new_page(&app, &ctx, &o.department, q.resource.as_deref(), None, None).await
}

fn date_of(
    form: &HashMap<String, String>,
    key: &str,
    errors: &mut Vec<FieldError>,
) -> Option<NaiveDate> {
    let v = form.get(key).map(|s| s.trim()).unwrap_or("");
    if v.is_empty() {
        return None;
    }
    match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(FieldError {
                field: key.to_owned(),
                message: Message::new(
                    "日期格式应为 年-月-日（如 2026-12-31）。",
                    "Dates are year-month-day (2026-12-31).",
                ),
            });
            None
        }
    }
}

fn checked_items(form: &HashMap<String, String>) -> Vec<String> {
    let mut items: Vec<String> = form
        .keys()
        .filter_map(|k| k.strip_prefix("item."))
        .map(str::to_owned)
        .collect();
    items.sort();
    items
}

async fn desk_file_form(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let o = match ctx.form_user(who, true, &form) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let mut errors = Vec::new();
    let consumer = form.get("consumer").cloned().unwrap_or_default();
    let (service, system) = match consumer.split_once(':') {
        Some(("service", c)) => (Some(c.to_owned()), None),
        Some(("system", s)) => (None, Some(s.to_owned())),
        _ => (None, None),
    };
    let input = SharingRequestInput {
        resource: form.get("resource").cloned().unwrap_or_default(),
        service,
        system,
        purpose: form.get("purpose").cloned().unwrap_or_default(),
        legal_basis: form.get("legal_basis").cloned().unwrap_or_default(),
        items: checked_items(&form),
        period_from: date_of(&form, "period_from", &mut errors),
        period_until: date_of(&form, "period_until", &mut errors),
    };
    let result = if errors.is_empty() {
        g::create_request(&app, &author(&o), &input, Utc::now()).await
    } else {
        Err(AppError::Invalid(Vec::new()))
    };
    match result {
        Ok(r) => Ok(
            Redirect::to(&format!("/desk/sharing/requests/{}?done=filed", r.id)).into_response(),
        ),
        Err(AppError::Invalid(more)) => {
            errors.extend(more);
            for e in &mut errors {
                if e.field == "service" || e.field == "system" {
                    e.field = "consumer".into();
                }
            }
            new_page(
                &app,
                &ctx,
                &o.department,
                Some(&input.resource),
                Some(errors),
                Some(&form),
            )
            .await
        }
        Err(e) => Err(e),
    }
}

async fn request_page(
    app: &AppState,
    ctx: &PageCtx,
    dept: &str,
    id: Uuid,
    done: Option<String>,
    errors: Option<Vec<FieldError>>,
) -> AppResult<Response> {
    let lang = ctx.lang;
    let d = g::detail(app, Some(dept), id, Utc::now()).await?;
    let res = app.catalogue.resource(&d.request.resource);
    let events: Vec<Value> = d
        .events
        .iter()
        .map(|e| {
            let action = match e.action.as_str() {
                "submitted" => lang.pick("提交申请", "Filed"),
                "approved" => lang.pick("批准", "Approved"),
                "refused" => lang.pick("拒绝", "Refused"),
                "asked" => lang.pick("要求补充", "Asked for more"),
                _ => lang.pick("答复", "Answered"),
            };
            let items: Vec<String> = e
                .items
                .iter()
                .flatten()
                .map(|i| {
                    res.as_deref().and_then(|r| r.item(i))
                        .map(|x| lang.pick(&x.name, &x.name_en).to_owned())
                        .unwrap_or_else(|| i.clone())
                })
                .collect();
            json!({
                "action": action, "note": e.note, "author": e.author_name,
                "department": app.catalogue.department(&e.department).map(|x| lang.pick(&x.name, &x.name_en).to_owned()),
                "at": e.at.format("%Y-%m-%d %H:%M").to_string(),
                "items": items,
                "until": e.valid_until.map(|t| t.format("%Y-%m-%d %H:%M").to_string()),
            })
        })
        .collect();
    let items: Vec<Value> = d
        .request
        .items
        .iter()
        .map(|i| json!({ "id": i.id, "label": lang.pick(&i.name, &i.name_en) }))
        .collect();
    let errs: HashMap<String, String> = errors
        .as_ref()
        .map(|e| {
            e.iter()
                .map(|f| (f.field.clone(), f.message.get(lang).to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let default_until = d.request.period_until.map(|p| p.to_string());
    Ok(ctx.render(
        if errors.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        "sharing_grants/request.html",
        context! {
            r => request_row(&d.request, lang),
            events, items, actions => d.actions,
            grant => d.grant.as_ref().map(|x| grant_row(x, lang)),
            done => done_message(done, lang), errors => errs, default_until,
        },
    ))
}

async fn desk_request_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let id = parse_id(&id)?;
    request_page(&app, &ctx, &o.department, id, q.done, None).await
}

async fn desk_decide_form(
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
    let action = form.get("action").cloned().unwrap_or_default();
    let mut errors = Vec::new();
    let until = date_of(&form, "valid_until", &mut errors).map(g::end_of_day_china);
    let input = SharingDecisionInput {
        items: (action == "approve").then(|| checked_items(&form)),
        valid_until: until,
        note: form.get("note").cloned().unwrap_or_default(),
        action: action.clone(),
    };
    let result = if errors.is_empty() {
        g::decide(&app, &author(&o), id, &input, Utc::now()).await
    } else {
        Err(AppError::Invalid(Vec::new()))
    };
    match result {
        Ok(_) => {
            Ok(Redirect::to(&format!("/desk/sharing/requests/{id}?done={action}")).into_response())
        }
        Err(AppError::Invalid(more)) => {
            errors.extend(more);
            request_page(&app, &ctx, &o.department, id, None, Some(errors)).await
        }
        Err(e) => Err(e),
    }
}

async fn desk_answer_form(
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
    let input = SharingAnswerInput {
        note: form.get("answer").cloned().unwrap_or_default(),
    };
    match g::answer(&app, &author(&o), id, &input, Utc::now()).await {
        Ok(_) => {
            Ok(Redirect::to(&format!("/desk/sharing/requests/{id}?done=answered")).into_response())
        }
        Err(AppError::Invalid(mut errors)) => {
            for e in &mut errors {
                e.field = "answer".into();
            }
            request_page(&app, &ctx, &o.department, id, None, Some(errors)).await
        }
        Err(e) => Err(e),
    }
}

async fn desk_grants_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let lang = ctx.lang;
    let lists = g::department_grants(&app, &o.department, Utc::now()).await?;
    let given: Vec<Value> = lists.given.iter().map(|x| grant_row(x, lang)).collect();
    let received: Vec<Value> = lists.received.iter().map(|x| grant_row(x, lang)).collect();
    Ok(ctx.render(
        StatusCode::OK,
        "sharing_grants/grants.html",
        context! { given, received, done => done_message(q.done, lang) },
    ))
}

async fn desk_revoke_form(
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
    let input = SharingRevokeInput {
        reason: form.get("reason").cloned().unwrap_or_default(),
    };
    let name = o.user.session.name.clone();
    match g::revoke(&app, Some(&o.department), &name, id, &input, Utc::now()).await {
        Ok(_) => Ok(Redirect::to("/desk/sharing/grants?done=revoked").into_response()),
        Err(AppError::Invalid(_)) => {
            Ok(Redirect::to("/desk/sharing/grants?done=reason_missing").into_response())
        }
        Err(e) => Err(e),
    }
}

async fn ops_grants_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    let lang = ctx.lang;
    let o = g::overview(&app, Utc::now()).await?;
    let grants: Vec<Value> = o.grants.iter().map(|x| grant_row(x, lang)).collect();
    let requests: Vec<Value> = o.requests.iter().map(|r| request_row(r, lang)).collect();
    let live = o.grants.iter().filter(|x| x.state == "live").count();
    let reads: i64 = o.grants.iter().map(|x| x.reads).sum();
    let pending = o
        .requests
        .iter()
        .filter(|r| r.state == "pending" || r.state == "more_info")
        .count();
    Ok(ctx.render(
        StatusCode::OK,
        "sharing_grants/ops.html",
        context! { grants, requests, live, reads, pending },
    ))
}
