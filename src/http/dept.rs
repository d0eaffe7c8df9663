//! The department API (bearer token scoped to one department): the status API, the pull
//! inbox, material downloads; the published signing keys; and the operator's delivery
//! controls (endpoints, dead letters, redelivery).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AcceptLang;
use super::cases::AppJson;
use super::error::{AppError, AppResult, FieldError, Message};
use crate::app::AppState;
use crate::auth::extract::{DepartmentClient, Operator};
use crate::cases::{self, ActorRef, IdemKey};
use crate::domain::case::{Action, Actor, CaseStatus, Request as StepRequest};
use crate::exchange::{envelope, worker};
use crate::store::{CaseFilter, CaseRow, DeliveryFilter, DepartmentEndpoint};

/// `GET /.well-known/jwks.json`: the keys that sign deliveries (two during a rotation).
pub async fn jwks(State(app): State<AppState>) -> Response {
    let body = app.keys.with(|ring| ring.jwks(Utc::now()));
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(body)).into_response()
}

/// `?status=&updated_since=&page=&per_page=`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeptCaseQuery {
    status: Option<String>,
    updated_since: Option<DateTime<Utc>>,
    page: Option<i64>,
    per_page: Option<i64>,
}

/// `GET /api/dept/v1/cases`: this department's cases.
pub async fn list(
    State(app): State<AppState>,
    client: DepartmentClient,
    AcceptLang(lang): AcceptLang,
    q: Result<Query<DeptCaseQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Json<Value>> {
    client.require("cases:read")?;
    let Query(q) = q.map_err(|e| {
        AppError::BadRequest(Message::new(
            format!("查询参数有误：{e}"),
            format!("Bad query parameters: {e}"),
        ))
    })?;
    let mut statuses = Vec::new();
    for s in q
        .status
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
    {
        if CaseStatus::from_code(s).is_none() {
            return Err(AppError::BadRequest(Message::new(
                format!("未知的办件状态“{s}”。"),
                format!("Unknown status {s:?}."),
            )));
        }
        statuses.push(s.to_owned());
    }
    let per = q.per_page.unwrap_or(50).clamp(1, 200);
    let page = q.page.unwrap_or(1).max(1);
    let (rows, total) = app
        .store
        .list_cases(&CaseFilter {
            departments: Some(vec![client.token.department.clone()]),
            statuses,
            updated_since: q.updated_since,
            limit: per,
            offset: (page - 1) * per,
            ..CaseFilter::default()
        })
        .await?;
    let items: Vec<Value> = rows.iter().map(|c| cases::summary(&app, c, lang)).collect();
    Ok(Json(
        json!({ "items": items, "total": total, "page": page, "per_page": per }),
    ))
}

/// A case routed to the token's department (the responsible one, or a joint target).
async fn dept_case(app: &AppState, client: &DepartmentClient, case_no: &str) -> AppResult<CaseRow> {
    let c = app.store.case_by_no(case_no).await?;
    let ours = |c: &CaseRow| {
        c.department == client.token.department
            || app
                .catalogue
                .service(&c.service_code)
                .is_some_and(|s| s.routing.departments.contains(&client.token.department))
    };
    match c {
        Some(c) if ours(&c) => Ok(c),
        _ => Err(cases::not_found(case_no)),
    }
}

/// `GET /api/dept/v1/cases/{case_no}`: one case with its full application.
pub async fn get(
    State(app): State<AppState>,
    client: DepartmentClient,
    AcceptLang(lang): AcceptLang,
    Path(case_no): Path<String>,
) -> AppResult<Json<Value>> {
    client.require("cases:read")?;
    let c = dept_case(&app, &client, &case_no).await?;
    let mut view = cases::full_view(&app, &c, lang, Actor::DepartmentSystem).await?;
    // Departments process the application: they get the full ID number.
    view["applicant"]["id_number"] = json!(
        c.applicant
            .id_number
            .as_ref()
            .map(|i| i.expose().to_owned())
    );
    view["applicant"]["phone"] = json!(c.applicant.phone);
    Ok(Json(view))
}

/// Body of a department step.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeptTransition {
    action: String,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/dept/v1/cases/{case_no}/transitions` (Idempotency-Key honoured).
pub async fn transition(
    State(app): State<AppState>,
    client: DepartmentClient,
    headers: HeaderMap,
    Path(case_no): Path<String>,
    AppJson(body): AppJson<DeptTransition>,
) -> AppResult<Response> {
    client.require("cases:write")?;
    dept_case(&app, &client, &case_no).await?;
    let action = Action::from_code(&body.action).ok_or_else(|| {
        let known: Vec<&str> = Action::ALL.iter().map(|a| a.code()).collect();
        AppError::Invalid(vec![FieldError {
            field: "action".into(),
            message: Message::new(
                format!("未知的操作“{}”，可选：{}", body.action, known.join("、")),
                format!(
                    "Unknown action {:?}; one of {}",
                    body.action,
                    known.join(", ")
                ),
            ),
        }])
    })?;
    let result = cases::parse_result(body.result.as_deref())?;
    let raw = json!({ "case_no": case_no, "body": body });
    let idem = match headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        Some(k) if !k.is_empty() && k.len() <= 200 => Some(IdemKey {
            scope: format!("token:{}", client.token.id),
            key: k.to_owned(),
            request_hash: cases::request_hash(&raw),
        }),
        Some(_) => {
            return Err(AppError::BadRequest(Message::new(
                "Idempotency-Key 应为 1 到 200 个字符。",
                "Idempotency-Key must be 1 to 200 characters.",
            )));
        }
        None => None,
    };
    let dept_name = app
        .catalogue
        .department(&client.token.department)
        .map(|d| d.short_name.clone())
        .unwrap_or_else(|| client.token.department.clone());
    let actor = ActorRef {
        actor: Actor::DepartmentSystem,
        id: Some(format!("token:{}", client.token.id)),
        name: format!("{dept_name}业务系统"),
        account: None,
    };
    let req = StepRequest {
        action,
        result,
        note: body.note.clone(),
    };
    let (status, answer) = cases::step(&app, &case_no, &actor, req, &[], idem).await?;
    Ok((status, Json(answer)).into_response())
}

/// `GET /api/dept/v1/cases/{case_no}/materials/{upload_id}`: a material's file.
pub async fn material(
    State(app): State<AppState>,
    client: DepartmentClient,
    Path((case_no, upload_id)): Path<(String, Uuid)>,
) -> AppResult<Response> {
    client.require("materials:read")?;
    let c = dept_case(&app, &client, &case_no).await?;
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
    let bytes = app
        .files
        .get(&upload.storage_key)
        .await
        .map_err(anyhow::Error::from)?;
    let mime = match upload.file_type.as_str() {
        "pdf" => "application/pdf",
        "jpg" => "image/jpeg",
        "png" => "image/png",
        _ => "application/octet-stream",
    };
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
#[derive(Debug, Deserialize)]
pub struct InboxQuery {
    limit: Option<i64>,
}

/// `GET /api/dept/v1/inbox?limit=N`: leases the department's next events (same envelope
/// as push). Unacknowledged events come back when the lease ends.
pub async fn inbox(
    State(app): State<AppState>,
    client: DepartmentClient,
    Query(q): Query<InboxQuery>,
) -> AppResult<Json<Value>> {
    client.require("inbox")?;
    let limit = q.limit.unwrap_or(10).clamp(1, 100);
    let now = Utc::now();
    let lease_until = now + chrono::Duration::seconds(app.settings.inbox_lease_secs as i64);
    let leased = app
        .store
        .lease_inbox(&client.token.department, now, lease_until, limit)
        .await?;
    let mut events = Vec::new();
    for d in &leased {
        if let Some(e) = envelope::build(&app, d).await? {
            events.push(e);
        }
    }
    Ok(Json(
        json!({ "events": events, "lease_until": lease_until }),
    ))
}

/// `POST /api/dept/v1/inbox/{event_id}/ack`: the event is durably received.
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    state: Option<String>,
    department: Option<String>,
}

/// `GET /api/ops/v1/deliveries?state=dead`: deliveries for operators.
pub async fn deliveries(
    State(app): State<AppState>,
    _op: Operator,
    Query(q): Query<DeliveryQuery>,
) -> AppResult<Json<Value>> {
    let rows = app
        .store
        .deliveries(&DeliveryFilter {
            state: q.state,
            department: q.department,
            case_id: None,
            limit: 500,
        })
        .await?;
    Ok(Json(json!({ "items": rows })))
}

/// `POST /api/ops/v1/deliveries/{event_id}/redeliver`: a dead letter back into the queue.
pub async fn redeliver(
    State(app): State<AppState>,
    _op: Operator,
    Path(event_id): Path<Uuid>,
) -> AppResult<Json<Value>> {
    if app.store.redeliver(event_id).await? {
        tracing::info!(event = %event_id, "redelivery requested");
        Ok(Json(json!({ "id": event_id, "state": "pending" })))
    } else {
        Err(AppError::Conflict(Message::new(
            "只有投递失败（死信）的事件可以重新投递。",
            "Only a dead-lettered event can be redelivered.",
        )))
    }
}

/// Body of an endpoint change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    mode: String,
    #[serde(default)]
    endpoint: Option<String>,
}

/// Validates and stores how a department receives events.
pub async fn set_delivery(
    app: &AppState,
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
        ("push", Some(url)) if worker::endpoint_allowed(&url, app.settings.exchange_allow_http) => {
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
        updated_at: Utc::now(),
    };
    app.store.set_endpoint(&e).await?;
    Ok(e)
}

/// `PUT /api/ops/v1/departments/{uscc}/delivery`.
pub async fn put_delivery(
    State(app): State<AppState>,
    _op: Operator,
    Path(uscc): Path<String>,
    AppJson(b): AppJson<EndpointBody>,
) -> AppResult<Json<Value>> {
    let e = set_delivery(&app, &uscc, &b.mode, b.endpoint).await?;
    Ok(Json(json!(e)))
}
