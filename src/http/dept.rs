//! The department API (bearer token scoped to one department): the status API, the pull
//! inbox, material downloads; the published signing keys; and the operator's delivery
//! controls (endpoints, dead letters, redelivery).

use crate::http::path::Path;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AcceptLang;
use super::cases::views::{CaseDetail, CaseList, CaseResult, TransitionAnswer};
use super::cases::{AppJson, case_statuses, query_params};
use super::error::{AppError, AppResult, FieldError, Message};
use super::openapi::{CloudEvent, Problem, RoleErrors};
use crate::auth::extract::{
    CasesRead, CasesWrite, DepartmentCase, DepartmentClient, MaterialsRead, Operator,
};
use crate::domain::case::Request as StepRequest;
use crate::exchange::{envelope, worker};
use crate::state::AppState;
use crate::store::{CaseFilter, CaseKey, Delivery, DeliveryFilter, DepartmentEndpoint};
use crate::usecases::step;

/// `GET /.well-known/jwks.json`: the keys that sign deliveries (two during a rotation).
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "keys",
    operation_id = "jwks",
    summary = "The keys that sign pushed events (JWKS)",
    description = "The Ed25519 public keys that sign pushed events, as a JSON Web Key Set. \
        No token is needed. Two keys are published during a rotation's grace period, and \
        each delivery is then signed with both. Cache it (it answers \
        `Cache-Control: public, max-age=300`) and refetch once when no key verifies a delivery.",
    responses(
        (status = 200, description = "The published keys, current first.", body = Jwks,
            headers(("cache-control" = String, description = "`public, max-age=300`"))),
    )
)]
pub async fn jwks(
    State(app): State<AppState>,
) -> AppResult<([(header::HeaderName, &'static str); 1], Json<Jwks>)> {
    let set = app.keys.with(|ring| ring.jwks(Utc::now()));
    let set: Jwks = serde_json::from_value(set).map_err(anyhow::Error::from)?;
    Ok(([(header::CACHE_CONTROL, "public, max-age=300")], Json(set)))
}

/// The JSON Web Key Set of the keys that sign pushed events (RFC 7517, RFC 8037): the
/// current key first; two keys during a rotation's grace period.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    /// The published keys.
    pub keys: Vec<Jwk>,
}

/// An Ed25519 public key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    /// Key type.
    #[schema(schema_with = always_okp)]
    pub kty: String,
    /// Curve.
    #[schema(schema_with = always_ed25519)]
    pub crv: String,
    /// The 32-byte public key, base64url without padding.
    pub x: String,
    /// `ow-` and the first 16 hex digits of the SHA-256 of the public key.
    #[schema(example = "ow-21fe31dfa154a261")]
    pub kid: String,
    /// Use.
    #[serde(rename = "use")]
    #[schema(schema_with = always_sig)]
    pub key_use: String,
    /// Algorithm.
    #[schema(schema_with = always_eddsa)]
    pub alg: String,
}

/// A string that has one value in every key the gateway publishes.
fn always(value: &'static str, description: &'static str) -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some([value]))
        .description(Some(description))
        .build()
}

fn always_okp() -> utoipa::openapi::schema::Object {
    always("OKP", "Key type: always `OKP`.")
}

fn always_ed25519() -> utoipa::openapi::schema::Object {
    always("Ed25519", "Curve: always `Ed25519`.")
}

fn always_sig() -> utoipa::openapi::schema::Object {
    always("sig", "Use: always `sig` (signatures).")
}

fn always_eddsa() -> utoipa::openapi::schema::Object {
    always("EdDSA", "Algorithm: always `EdDSA`.")
}

/// `?status=&updated_since=&page=&per_page=`
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeptCaseQuery {
    /// Only cases in these statuses, comma-separated (`submitted,accepted`).
    #[param(value_type = Option<Vec<super::cases::views::CaseStatusCode>>, style = Form, explode = false)]
    status: Option<String>,
    /// Only cases changed at or after this time (RFC 3339), for reconciliation.
    updated_since: Option<DateTime<Utc>>,
    /// The page, from 1.
    #[param(minimum = 1, default = 1)]
    page: Option<i64>,
    /// Cases per page, 1–200.
    #[param(minimum = 1, maximum = 200, default = 50)]
    per_page: Option<i64>,
    /// Continue after this cursor, the previous page's `next` (instead of `page`).
    #[param(max_length = 64)]
    before: Option<String>,
}

/// The page (from 1) and page size (1–200, default 50) of a list, as the OpenAPI document
/// declares them; anything outside is refused, not clamped.
fn page_and_size(page: Option<i64>, per_page: Option<i64>) -> AppResult<(i64, i64)> {
    let page = page.unwrap_or(1);
    if page < 1 {
        return Err(AppError::BadRequest(Message::new(
            "page 应不小于 1。",
            "page must be at least 1.",
        )));
    }
    let per = per_page.unwrap_or(50);
    if !(1..=200).contains(&per) {
        return Err(AppError::BadRequest(Message::new(
            "per_page 应在 1 到 200 之间。",
            "per_page must be 1 to 200.",
        )));
    }
    Ok((page, per))
}

/// `GET /api/dept/v1/cases`: this department's cases.
#[utoipa::path(
    get,
    path = "/api/dept/v1/cases",
    tag = "cases",
    operation_id = "listCases",
    summary = "List your department's cases",
    description = "The cases routed to your department (as the responsible department or a \
        joint one), newest first, filtered by status and by last change. Page with `before` \
        (the previous answer's `next`); `page` still works but costs more deep into the list.",
    params(DeptCaseQuery),
    responses(
        (status = 200, description = "A page of cases.", body = CaseList),
        (status = 400, description = "An unknown query parameter or status, a malformed time, `page` / `per_page` out of range, or a malformed `before` cursor.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token (missing, unknown, expired or revoked); `WWW-Authenticate: Bearer realm=\"onewindow-dept\"`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the `cases:read` scope.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = ["cases:read"]))
)]
pub async fn list(
    State(app): State<AppState>,
    client: DepartmentClient,
    AcceptLang(lang): AcceptLang,
    q: Result<Query<DeptCaseQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Json<CaseList>> {
    client.require("cases:read")?;
    let q = query_params(q)?;
    let statuses = case_statuses(q.status.as_deref())?;
    let (page, per) = page_and_size(q.page, q.per_page)?;
    let (offset, before) = super::cases::offset_and_cursor(page, per, q.before.as_deref())?;
    let found = app
        .store
        .case_page(&CaseFilter {
            departments: Some(vec![client.token.department.clone()]),
            statuses,
            updated_since: q.updated_since,
            limit: per,
            offset,
            before,
            ..CaseFilter::default()
        })
        .await?;
    let page = if before.is_some() { 1 } else { page };
    Ok(Json(CaseList::page(&app, &found, page, per, lang)))
}

/// `GET /api/dept/v1/cases/{case_no}`: one case with its full application.
#[utoipa::path(
    get,
    path = "/api/dept/v1/cases/{case_no}",
    tag = "cases",
    operation_id = "getCase",
    summary = "One case with its whole application",
    description = "The case's current status, deadline, applicant (with the full ID number), \
        form values, materials, history, and the actions your system may report now.",
    params(("case_no" = String, Path, description = "The case number (办件编号).", example = "HLBE20250301-7KQ2M9XD")),
    responses(
        (status = 200, description = "The case.", body = CaseDetail),
        (status = 401, description = "No valid token (missing, unknown, expired or revoked); `WWW-Authenticate: Bearer realm=\"onewindow-dept\"`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the `cases:read` scope.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such case for your department (another department's case answers the same).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = ["cases:read"]))
)]
pub async fn get(
    State(app): State<AppState>,
    DepartmentCase { client, case, .. }: DepartmentCase<CasesRead>,
    AcceptLang(lang): AcceptLang,
) -> AppResult<Json<CaseDetail>> {
    // One read of the case's history and materials serves the data-access record and the
    // detail.
    let full = app.store.case_full(CaseKey::Id(case.id)).await?;
    if let Some(full) = &full {
        audit_read(&app, &case, &full.materials, &client).await?;
    }
    // Departments process the application: the detail gives them the full ID number.
    let reader = client.actor(&app.catalogue);
    Ok(Json(
        CaseDetail::of_full(&app, &case, full, lang, &reader).await?,
    ))
}

/// Body of a department step.
#[derive(Debug, Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"action": "conclude", "result": "approved", "note": "准予许可"}))]
pub struct DeptTransition {
    /// The step to take.
    #[schema(value_type = DeptAction)]
    action: String,
    /// With `conclude` only (and then required): `approved` (准予) or `rejected` (不予).
    #[serde(default)]
    #[schema(value_type = Option<CaseResult>)]
    result: Option<String>,
    /// The reason or remark; required (non-blank, at most 2,000 characters) for
    /// `not_accept`, `request_correction`, `suspend` and a rejected `conclude`.
    #[serde(default)]
    #[schema(max_length = 2000)]
    note: Option<String>,
}

/// A step a department system may report.
///
/// `not_accept`, `request_correction` and `suspend` need a `note` (the reason, what is
/// missing); `conclude` needs a `result`, and a rejection a `note`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeptAction {
    /// 受理.
    Accept,
    /// 不予受理 (`note` required).
    NotAccept,
    /// 要求补齐补正 (`note` required).
    RequestCorrection,
    /// 开始审查.
    StartReview,
    /// 中止（特别程序） (`note` required).
    Suspend,
    /// 恢复审查.
    Resume,
    /// 办结 (`result` required).
    Conclude,
}

/// The step a transition body asks for, checked as the handler checks it before it looks
/// at the case (also the fuzz target `dept_bodies`'s way in).
pub fn transition_request(body: &DeptTransition) -> AppResult<StepRequest> {
    Ok(StepRequest {
        action: super::cases::parse_action(&body.action)?,
        result: super::cases::parse_result(body.result.as_deref())?,
        note: body.note.clone(),
    })
}

/// `POST /api/dept/v1/cases/{case_no}/transitions` (Idempotency-Key honoured).
#[utoipa::path(
    post,
    path = "/api/dept/v1/cases/{case_no}/transitions",
    tag = "cases",
    operation_id = "reportTransition",
    summary = "Report a processing step (回传办理环节)",
    description = "Takes one step of the case's lifecycle on behalf of your department's \
        system. The step also produces an event. Send a fresh `Idempotency-Key` per intended \
        step and reuse it when retrying: a repeat returns the first answer and does not apply \
        the step twice.",
    params(
        ("case_no" = String, Path, description = "The case number (办件编号).", example = "HLBE20250301-7KQ2M9XD"),
        ("Idempotency-Key" = Option<String>, Header, description = "A fresh key (a UUID) per intended step, 1–200 characters; reuse it when retrying the same request.", example = "3f1c2a9e-6b1d-4f7e-9a35-0c8b2d7e4f10"),
    ),
    request_body(content = DeptTransition, content_type = "application/json"),
    responses(
        (status = 200, description = "The step was taken (or, for a repeated `Idempotency-Key`, the first answer).", body = TransitionAnswer),
        (status = 400, description = "The body is not JSON of this shape, or the `Idempotency-Key` is empty or longer than 200 characters.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token (missing, unknown, expired or revoked); `WWW-Authenticate: Bearer realm=\"onewindow-dept\"`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the `cases:write` scope, or the action is not one a department system may take.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such case for your department (another department's case answers the same).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The case's current status does not allow this action (the detail says which are possible), or the case changed at the same moment.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown `action` or `result`, a missing `note` or `result` (`errors` names the field), or the `Idempotency-Key` was already used for a different request.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = ["cases:write"]))
)]
pub async fn transition(
    State(app): State<AppState>,
    DepartmentCase { client, case, .. }: DepartmentCase<CasesWrite>,
    headers: HeaderMap,
    AppJson(body): AppJson<DeptTransition>,
) -> AppResult<Json<TransitionAnswer>> {
    let req = transition_request(&body)?;
    let actor = client.actor(&app.catalogue);
    let raw = json!({ "case_no": case.case_no, "body": body });
    let idem = super::cases::idem_key(&headers, &actor.id(), &raw)?;
    let stepped = step::step(&app, case, &actor, req, &[], idem).await?;
    Ok(Json(stepped.into()))
}

/// `GET /api/dept/v1/cases/{case_no}/materials/{upload_id}`: a material's file.
#[utoipa::path(
    get,
    path = "/api/dept/v1/cases/{case_no}/materials/{upload_id}",
    tag = "materials",
    operation_id = "downloadMaterial",
    summary = "Download a material's file",
    description = "The file of one of the case's materials, as uploaded. Events carry this \
        link as `download_url`; check the bytes against the `sha256` they also carry.",
    params(
        ("case_no" = String, Path, description = "The case number (办件编号).", example = "HLBE20250301-7KQ2M9XD"),
        ("upload_id" = Uuid, Path, description = "The file's id (`upload_id` of the material)."),
    ),
    responses(
        (status = 200, description = "The file.",
            content(("application/pdf"), ("image/jpeg"), ("image/png"), ("application/octet-stream")),
            headers(
                ("content-disposition" = String, description = "`attachment; filename=\"{upload_id}.{file_type}\"`"),
                ("x-content-sha256" = String, description = "The SHA-256 of the file, hex."),
            )),
        (status = 401, description = "No valid token (missing, unknown, expired or revoked); `WWW-Authenticate: Bearer realm=\"onewindow-dept\"`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the `materials:read` scope.", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`upload_id` is not a UUID.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such case for your department, or the case has no such file.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = ["materials:read"]))
)]
pub async fn material(
    State(app): State<AppState>,
    DepartmentCase {
        client, case: c, ..
    }: DepartmentCase<MaterialsRead>,
    Path((_case_no, upload_id)): Path<(String, Uuid)>,
) -> AppResult<Response> {
    let materials = app.store.case_materials(c.id).await?;
    audit_read(&app, &c, &materials, &client).await?;
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
    crate::audit::download(
        &app,
        &crate::audit::Who {
            kind: "department",
            id: Some(format!("token:{}", client.token.id)),
        },
        &c.case_no,
        &upload,
    )
    .await?;
    let bytes = crate::http::cases::material_file(&app, &upload).await?;
    let mime = crate::files::mime_of(&upload.file_type);
    let disposition = format!(
        "attachment; filename=\"{}.{}\"",
        upload.id, upload.file_type
    );
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::HeaderName::from_static("x-content-sha256"),
                upload.sha256.clone(),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `?limit=`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// How many events to lease at most (clamped to 1–100).
    #[param(minimum = 1, maximum = 100, default = 10)]
    limit: Option<i64>,
}

/// `GET /api/dept/v1/inbox?limit=N`: leases the department's next events (same envelope
/// as push). Unacknowledged events come back when the lease ends.
#[utoipa::path(
    get,
    path = "/api/dept/v1/inbox",
    tag = "inbox",
    operation_id = "leaseEvents",
    summary = "Lease your next events",
    description = "Leases up to `limit` of your department's unacknowledged events, oldest \
        first (at most one event per case at a time, in order), in the same CloudEvents \
        envelope as a push. A leased event is not handed out again until `lease_until` \
        (the gateway's `inbox_lease_secs`, 300 s by default); an event not acknowledged by \
        then comes back. De-duplicate by event id.",
    params(InboxQuery),
    responses(
        (status = 200, description = "The leased events (possibly none).", body = InboxPage),
        (status = 400, description = "`limit` is not an integer."),
        (status = 401, description = "No valid token (missing, unknown, expired or revoked); `WWW-Authenticate: Bearer realm=\"onewindow-dept\"`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the `inbox` scope.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = ["inbox"]))
)]
pub async fn inbox(
    State(app): State<AppState>,
    client: DepartmentClient,
    q: Result<Query<InboxQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Json<InboxPage>> {
    let q = query_params(q)?;
    client.require("inbox")?;
    let limit = q.limit.unwrap_or(10).clamp(1, 100);
    let now = Utc::now();
    let lease_until =
        now + chrono::Duration::seconds(app.settings.exchange.inbox_lease_secs as i64);
    let leased = app
        .store
        .lease_inbox(&client.token.department, now, lease_until, limit)
        .await?;
    let mut events = Vec::new();
    for d in &leased {
        // One read of the case serves the envelope and the data-access record.
        if let Some(full) = app.store.case_full(CaseKey::Id(d.case_id)).await? {
            audit_read(&app, &full.case, &full.materials, &client).await?;
            events.push(envelope::of_full(&app, d, &full));
        }
    }
    Ok(Json(InboxPage {
        events,
        lease_until,
    }))
}

/// Leased events from the pull inbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPage {
    /// Up to `limit` unacknowledged events, oldest first, in the same envelope as a push.
    /// Empty when there is nothing new.
    #[schema(value_type = Vec<CloudEvent>)]
    pub events: Vec<Value>,
    /// Until when these events are leased to you. Acknowledge each stored event before
    /// then; the others come back in a later `GET`.
    pub lease_until: DateTime<Utc>,
}

/// `POST /api/dept/v1/inbox/{event_id}/ack`: the event is durably received.
#[utoipa::path(
    post,
    path = "/api/dept/v1/inbox/{event_id}/ack",
    tag = "inbox",
    operation_id = "ackEvent",
    summary = "Acknowledge an event",
    description = "Tells the gateway the event is stored durably; it is never returned again.",
    params(("event_id" = Uuid, Path, description = "The event's CloudEvents `id`.")),
    responses(
        (status = 204, description = "Acknowledged."),
        (status = 401, description = "No valid token (missing, unknown, expired or revoked); `WWW-Authenticate: Bearer realm=\"onewindow-dept\"`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the `inbox` scope.", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`event_id` is not a UUID.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event pending for your department (it may already be acknowledged).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = ["inbox"]))
)]
pub async fn ack(
    State(app): State<AppState>,
    client: DepartmentClient,
    Path(event_id): Path<Uuid>,
) -> AppResult<StatusCode> {
    client.require("inbox")?;
    if app
        .store
        .ack(&client.token.department, event_id, Utc::now())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound(Message::new(
            "没有这个待确认的事件（可能已确认过）。",
            "There is no such unacknowledged event (it may already be acknowledged).",
        )))
    }
}

/// `?state=&department=`
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only events in this delivery state: `pending`, `delivered` or `dead`.
    state: Option<String>,
    /// Only events for this department (USCC).
    department: Option<String>,
    /// Continue after this cursor: the `next` of the previous page.
    #[param(max_length = 64)]
    before: Option<String>,
}

/// One event for one department, with its delivery state.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// The event id (= CloudEvents `id` = `webhook-id`).
    pub id: Uuid,
    /// The case (internal id).
    pub case_id: Uuid,
    /// The history entry that caused it.
    pub case_seq: i32,
    /// The department it is for (USCC).
    pub department: String,
    /// Its CloudEvents type.
    pub event_type: String,
    /// What happened: case number, service, status, action.
    pub payload: Value,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts so far (numbering continues across redeliveries).
    pub attempts: i32,
    /// Attempts made before the last redelivery; the retry schedule restarts after them.
    pub retry_from: i32,
    /// When the next attempt is due.
    #[schema(required = true)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The department's last HTTP status.
    #[schema(required = true)]
    pub last_status: Option<i32>,
    /// What went wrong last.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When it was delivered (or acknowledged).
    #[schema(required = true)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The department's push endpoint; `null` for a department that pulls.
    #[schema(required = true)]
    pub endpoint: Option<String>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> DeliveryView {
        DeliveryView {
            id: d.id,
            case_id: d.case_id,
            case_seq: d.case_seq,
            department: d.department,
            event_type: d.event_type,
            payload: d.payload,
            created_at: d.created_at,
            state: d.state,
            attempts: d.attempts,
            retry_from: d.retry_from,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            delivered_at: d.delivered_at,
            endpoint: d.endpoint,
        }
    }
}

/// Deliveries, oldest first (at most 500 a page).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// The deliveries.
    pub items: Vec<DeliveryView>,
    /// The cursor of the next page (pass it as `before`); `null` on the last page.
    #[schema(required = true)]
    pub next: Option<String>,
}

/// Deliveries on a page of the operator's list (API and page).
pub const DELIVERIES_PER_PAGE: i64 = 500;

/// A page of deliveries: at most `per` of `rows` (read with one more, to know whether
/// another page follows) and the cursor of the next page.
pub fn delivery_page(mut rows: Vec<Delivery>, per: i64) -> (Vec<Delivery>, Option<String>) {
    if rows.len() as i64 > per {
        rows.truncate(per.max(0) as usize);
        let next = rows.last().map(|d| {
            crate::store::Cursor {
                at: d.created_at,
                id: d.id,
                due: None,
            }
            .encode()
        });
        (rows, next)
    } else {
        (rows, None)
    }
}

/// `GET /api/ops/v1/deliveries?state=dead`: deliveries for operators.
#[utoipa::path(
    get,
    path = "/api/ops/v1/deliveries",
    tag = "operator",
    operation_id = "listDeliveries",
    summary = "Deliveries to departments",
    description = "Events and their delivery state, filtered by state (`dead` for the dead \
        letters to look into) and by department, oldest first, 500 a page (continue with \
        `before`, the previous answer's `next`).",
    params(DeliveryQuery),
    responses(
        (status = 200, description = "The deliveries.", body = DeliveryList),
        (status = 400, description = "An unknown query parameter, or a malformed `before` cursor.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn deliveries(
    State(app): State<AppState>,
    _op: Operator,
    q: Result<Query<DeliveryQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Json<DeliveryList>> {
    let q = query_params(q)?;
    let after = super::cases::cursor(q.before.as_deref())?;
    let rows = app
        .store
        .deliveries(&DeliveryFilter {
            state: q.state,
            department: q.department,
            case_id: None,
            after,
            limit: DELIVERIES_PER_PAGE + 1,
        })
        .await?;
    let (rows, next) = delivery_page(rows, DELIVERIES_PER_PAGE);
    Ok(Json(DeliveryList {
        items: rows.into_iter().map(DeliveryView::from).collect(),
        next,
    }))
}

/// The answer to a redelivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct Redelivered {
    /// The event.
    pub id: Uuid,
    /// Its delivery state now: `pending`.
    #[schema(example = "pending")]
    pub state: String,
}

/// `POST /api/ops/v1/deliveries/{event_id}/redeliver`: a dead letter back into the queue.
#[utoipa::path(
    post,
    path = "/api/ops/v1/deliveries/{event_id}/redeliver",
    tag = "operator",
    operation_id = "redeliverEvent",
    summary = "Redeliver a dead letter",
    description = "Puts a dead-lettered event back into the queue; its attempt numbers \
        continue and the retry schedule starts again.",
    params(("event_id" = Uuid, Path, description = "The event's id.")),
    responses(
        (status = 200, description = "Queued again.", body = Redelivered),
        RoleErrors,
        (status = 409, description = "The event is not dead-lettered.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn redeliver(
    State(app): State<AppState>,
    op: Operator,
    Path(event_id): Path<Uuid>,
) -> AppResult<Json<Redelivered>> {
    if app.store.redeliver(event_id).await? {
        crate::audit::redelivered(
            app.store.as_ref(),
            &crate::audit::Who::of(&op.actor()),
            event_id,
        )
        .await?;
        tracing::info!(event = %event_id, "redelivery requested");
        Ok(Json(Redelivered {
            id: event_id,
            state: "pending".into(),
        }))
    } else {
        Err(AppError::Conflict(Message::new(
            "只有投递失败（死信）的事件可以重新投递。",
            "Only a dead-lettered event can be redelivered.",
        )))
    }
}

/// Body of an endpoint change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    /// `push` (the gateway POSTs events to `endpoint`) or `pull` (the department leases
    /// them from its inbox).
    mode: String,
    /// The https:// endpoint, for `push` only.
    #[serde(default)]
    endpoint: Option<String>,
}

impl EndpointBody {
    /// The endpoint asked for, if any (the fuzz target `dept_bodies` checks it).
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }
}

/// How a department receives events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    /// The department (USCC).
    pub department: String,
    /// `push` or `pull`.
    pub mode: String,
    /// The push endpoint.
    #[schema(required = true)]
    pub endpoint: Option<String>,
    /// The base URL of the department's data API; this answer leaves it out (`null`), the
    /// stored one is kept.
    #[schema(required = true)]
    pub data_api: Option<String>,
    /// When this was set.
    pub updated_at: DateTime<Utc>,
}

impl From<DepartmentEndpoint> for EndpointView {
    fn from(e: DepartmentEndpoint) -> EndpointView {
        EndpointView {
            department: e.department,
            mode: e.mode,
            endpoint: e.endpoint,
            data_api: e.data_api,
            updated_at: e.updated_at,
        }
    }
}

/// Validates and stores how a department receives events.
pub async fn set_delivery(
    app: &AppState,
    department: &str,
    mode: &str,
    endpoint: Option<String>,
) -> AppResult<DepartmentEndpoint> {
    set_delivery_as(
        app,
        &crate::audit::Who::system("gateway"),
        department,
        mode,
        endpoint,
    )
    .await
}

/// [`set_delivery`] by someone, whom the audit trail names.
pub async fn set_delivery_as(
    app: &AppState,
    who: &crate::audit::Who,
    department: &str,
    mode: &str,
    endpoint: Option<String>,
) -> AppResult<DepartmentEndpoint> {
    if app.catalogue.department(department).is_none() {
        return Err(AppError::NotFound(Message::new(
            "没有这个部门。",
            "There is no such department.",
        )));
    }
    let endpoint = match (mode, endpoint) {
        ("push", Some(url))
            if worker::endpoint_allowed(&url, app.settings.exchange.exchange_allow_http) =>
        {
            Some(url)
        }
        ("push", _) => {
            return Err(AppError::Invalid(vec![FieldError {
                field: "endpoint".into(),
                message: Message::new(
                    "推送方式需要 https:// 地址。",
                    "Push needs an https:// endpoint.",
                ),
            }]));
        }
        ("pull", None) => None,
        ("pull", Some(_)) => {
            return Err(AppError::Invalid(vec![FieldError {
                field: "endpoint".into(),
                message: Message::new("拉取方式不需要地址。", "Pull takes no endpoint."),
            }]));
        }
        _ => {
            return Err(AppError::Invalid(vec![FieldError {
                field: "mode".into(),
                message: Message::new("mode 应为 push 或 pull。", "mode must be push or pull."),
            }]));
        }
    };
    let e = DepartmentEndpoint {
        department: department.to_owned(),
        mode: mode.to_owned(),
        endpoint,
        data_api: None, // set_endpoint keeps the stored data API
        updated_at: Utc::now(),
    };
    app.store.set_endpoint(&e).await?;
    crate::audit::action(
        app,
        who,
        "delivery.set",
        format!("department:{department}"),
        department,
        serde_json::json!({ "mode": e.mode, "endpoint": e.endpoint }),
    )
    .await?;
    Ok(e)
}

/// `PUT /api/ops/v1/departments/{uscc}/delivery`.
#[utoipa::path(
    put,
    path = "/api/ops/v1/departments/{uscc}/delivery",
    tag = "operator",
    operation_id = "setDepartmentDelivery",
    summary = "Set how a department receives events",
    description = "Push to an https:// endpoint, or pull from the inbox. A department with \
        no setting pulls.",
    params(("uscc" = String, Path, description = "The department's USCC.")),
    request_body(content = EndpointBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Set.", body = EndpointView),
        (status = 400, description = "Not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such department.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A mode other than push or pull, push without an https:// endpoint, or pull with one (`errors`).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn put_delivery(
    State(app): State<AppState>,
    op: Operator,
    Path(uscc): Path<String>,
    AppJson(b): AppJson<EndpointBody>,
) -> AppResult<Json<EndpointView>> {
    let who = crate::audit::Who::of(&op.actor());
    let e = set_delivery_as(&app, &who, &uscc, &b.mode, b.endpoint).await?;
    Ok(Json(e.into()))
}

/// Records the department's read of a case in the applicant's data-access trail.
async fn audit_read(
    app: &AppState,
    c: &crate::store::CaseRow,
    materials: &[crate::store::MaterialRow],
    client: &DepartmentClient,
) -> AppResult<()> {
    crate::sharing::audit::department_read(
        app,
        c,
        materials,
        &client.token.department,
        Some(client.token.id.to_string()),
    )
    .await?;
    Ok(())
}
