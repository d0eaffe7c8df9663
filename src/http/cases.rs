//! Case routes: applicants (apply, list, read, correct, withdraw, rate, uploads, drafts,
//! notifications), window clerks and department officers (intake, worklist, steps), and
//! the public status query.
//!
//! Handlers parse, check who calls (the extractors) and answer; what happens is the use
//! cases' (`crate::usecases`), and what a reader sees of a case is [`views`].

pub mod views;

use std::time::Duration;

use crate::http::path::Path;
use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use self::views::{CaseDetail, CaseList, CaseLodged, PublicCase, TransitionAnswer};
use super::AcceptLang;
use super::error::{AppError, AppResult, FieldError, Message};
use super::openapi::{LoginErrors, Problem, RoleErrors};
use crate::auth::extract::{Applicant, ApplicantCase, Clerk, CurrentUser, Staff, StaffCase};
use crate::domain::case::{Action, CaseStatus, ConclusionResult, Request as StepRequest};
use crate::domain::catalogue::Material;
use crate::domain::catalogue::Service;
use crate::state::AppState;
use crate::store::{CaseFilter, CaseKey, Cursor, DraftRow, UploadRow};
use crate::usecases::{IdemKey, MaterialInput, apply, intake, rate, step};

/// JSON body whose rejections are the app's own problem+json.
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(AppJson(v)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

fn json_rejection(e: JsonRejection) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return AppError::PayloadTooLarge(Message::new(
            "请求内容超过此地址的上限。",
            "The request body is larger than this address accepts.",
        ));
    }
    AppError::BadRequest(Message::new(
        format!("请求体不是有效的 JSON 或字段不符：{}", e.body_text()),
        format!(
            "The body is not valid JSON of the expected shape: {}",
            e.body_text()
        ),
    ))
}

/// The query string's parameters, or a 400 problem saying what is wrong with them.
pub(super) fn query_params<T>(q: Result<Query<T>, QueryRejection>) -> AppResult<T> {
    q.map(|Query(v)| v).map_err(|e| {
        AppError::BadRequest(Message::new(
            format!("查询参数有误：{e}"),
            format!("Bad query parameters: {e}"),
        ))
    })
}

/// A comma-separated list of case statuses (`submitted,accepted`), each one known.
pub(super) fn case_statuses(list: Option<&str>) -> AppResult<Vec<String>> {
    let mut statuses = Vec::new();
    for s in list.unwrap_or("").split(',').filter(|s| !s.is_empty()) {
        if CaseStatus::from_code(s).is_none() {
            return Err(AppError::BadRequest(Message::new(
                format!("未知的办件状态“{s}”。"),
                format!("Unknown case status {s:?}."),
            )));
        }
        statuses.push(s.to_owned());
    }
    Ok(statuses)
}

const MAX_KEY_LEN: usize = 200;

/// The `Idempotency-Key` of a request, scoped to its caller and bound to the request's
/// content.
pub(super) fn idem_key(
    headers: &HeaderMap,
    scope: &str,
    request: &Value,
) -> AppResult<Option<IdemKey>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v.to_str().unwrap_or("").trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(AppError::BadRequest(Message::new(
            "Idempotency-Key 应为 1 到 200 个字符。",
            "Idempotency-Key must be 1 to 200 characters.",
        )));
    }
    Ok(Some(IdemKey::new(scope, key, request)))
}

/// A material in a request body.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaterialBody {
    /// Material id from the service definition.
    pub material: String,
    /// An upload from `POST /api/v1/uploads` (one of the caller's, not yet part of a case).
    #[serde(default)]
    pub upload_id: Option<Uuid>,
    /// Let shared data or the e-licence named in the definition stand in (免提交) instead
    /// of an upload.
    #[serde(default)]
    pub substitute: bool,
}

fn material_inputs(body: &[MaterialBody]) -> Vec<MaterialInput> {
    body.iter()
        .map(|m| MaterialInput {
            material: m.material.clone(),
            upload_id: m.upload_id,
            substitute: m.substitute,
        })
        .collect()
}

/// `POST /api/v1/cases` body.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyBody {
    /// The service applied for.
    service_code: String,
    /// Form values by field id.
    #[serde(default)]
    values: Map<String, Value>,
    /// The materials: uploads, or stand-ins (免提交).
    #[serde(default)]
    materials: Vec<MaterialBody>,
    /// A draft to delete once the application is lodged.
    #[serde(default)]
    draft_id: Option<Uuid>,
}

fn find_service<'a>(app: &'a AppState, code: &str) -> AppResult<&'a Service> {
    app.catalogue.service(code).ok_or_else(|| {
        AppError::Invalid(vec![FieldError {
            field: "service_code".into(),
            message: Message::new(
                format!("没有编码为“{code}”的事项。"),
                format!("There is no service {code:?}."),
            ),
        }])
    })
}

/// `POST /api/v1/cases`: apply online.
#[utoipa::path(
    post,
    path = "/api/v1/cases",
    tag = "citizen",
    operation_id = "applyOnline",
    summary = "Apply online (网上申报)",
    description = "Lodges an application for yourself, or for the enterprise your login \
        represents. The form is validated against the service's definition, prefilled values \
        are checked against what was served, and 免提交 materials against the e-licence \
        library; every problem is listed at its field. Send a fresh `Idempotency-Key` per \
        application and reuse it when retrying: a repeat answers the first case.",
    params(("Idempotency-Key" = Option<String>, Header, description = "A fresh key per intended application, 1–200 characters.")),
    request_body(content = ApplyBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Lodged (or, for a repeated `Idempotency-Key`, the first answer).", body = CaseLodged),
        (status = 400, description = "Not JSON of this shape, or a malformed `Idempotency-Key`.", body = Problem, content_type = "application/problem+json"),
        LoginErrors,
        (status = 403, description = "Not an applicant, the wrong kind of account, or too low an assurance level.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The service is only handled at a window.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fields or materials to correct (`errors`), or an `Idempotency-Key` used for another request.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn apply(
    State(app): State<AppState>,
    applicant: Applicant,
    headers: HeaderMap,
    AppJson(body): AppJson<ApplyBody>,
) -> AppResult<(StatusCode, Json<CaseLodged>)> {
    let raw = serde_json::to_value(&body).map_err(anyhow::Error::from)?;
    let service = find_service(&app, &body.service_code)?;
    let actor = applicant.actor();
    // before the Idempotency-Key, so a refusal reads the same with or without one
    apply::may_apply_online(service, &actor)?;
    let idem = idem_key(&headers, &actor.id(), &raw)?;
    let materials = material_inputs(&body.materials);
    let lodged = apply::apply_online(&app, &actor, service, &body.values, &materials, idem).await?;
    if let Some(d) = body.draft_id {
        app.store
            .delete_draft(d, applicant.0.session.account_id)
            .await?;
    }
    Ok((StatusCode::CREATED, Json(lodged.into())))
}

/// Paging of lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// The page, from 1.
    #[param(minimum = 1, default = 1)]
    page: Option<i64>,
    /// Items per page, 1–100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    per_page: Option<i64>,
    /// Continue after this cursor, the previous page's `next` (instead of `page`).
    #[param(max_length = 64)]
    before: Option<String>,
}

/// The `before` cursor of a list, or a 400 problem when it is not one the gateway gave.
pub(super) fn cursor(before: Option<&str>) -> AppResult<Option<Cursor>> {
    match before {
        None | Some("") => Ok(None),
        Some(text) => Cursor::decode(text).map(Some).map_err(|_| {
            AppError::BadRequest(Message::new(
                "before 不是有效的翻页游标：请使用上一页答复中的 next。",
                "before is not a valid cursor: pass the next of a previous page.",
            ))
        }),
    }
}

/// The rows to skip and the cursor of a list page: a cursor, when given, replaces the
/// page number.
pub(super) fn offset_and_cursor(
    page: i64,
    per: i64,
    before: Option<&str>,
) -> AppResult<(i64, Option<Cursor>)> {
    let before = cursor(before)?;
    let offset = if before.is_some() {
        0
    } else {
        (page - 1).saturating_mul(per)
    };
    Ok((offset, before))
}

fn paging(p: &Page) -> AppResult<(i64, i64)> {
    let per = p.per_page.unwrap_or(20);
    if !(1..=100).contains(&per) {
        return Err(AppError::BadRequest(Message::new(
            "per_page 应在 1 到 100 之间。",
            "per_page must be 1 to 100.",
        )));
    }
    // Refused, not clamped, as the document's minimum says (the department API does the same).
    let page = p.page.unwrap_or(1);
    if page < 1 {
        return Err(AppError::BadRequest(Message::new(
            "page 应不小于 1。",
            "page must be at least 1.",
        )));
    }
    Ok((page, per))
}

/// `GET /api/v1/cases`: my cases, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/cases",
    tag = "citizen",
    operation_id = "listMyCases",
    summary = "My cases",
    description = "The cases you applied for, newest first. Page with `before` (the \
        previous answer's `next`); `page` still works but costs more deep into the list.",
    params(Page),
    responses(
        (status = 200, description = "A page of your cases.", body = CaseList),
        (status = 400, description = "A malformed parameter, `page` below 1, `per_page` out of range or a malformed `before` cursor.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn my_cases(
    State(app): State<AppState>,
    applicant: Applicant,
    AcceptLang(lang): AcceptLang,
    p: Result<Query<Page>, QueryRejection>,
) -> AppResult<Json<CaseList>> {
    let p = query_params(p)?;
    let (page, per) = paging(&p)?;
    let (offset, before) = offset_and_cursor(page, per, p.before.as_deref())?;
    let found = app
        .store
        .case_page(&CaseFilter {
            applicant: Some(applicant.0.session.account_id),
            enterprise: super::pages::citizen::acting_enterprise(&applicant.0.session),
            limit: per,
            offset,
            before,
            ..CaseFilter::default()
        })
        .await?;
    let page = if before.is_some() { 1 } else { page };
    Ok(Json(CaseList::page(&app, &found, page, per, lang)))
}

/// `GET /api/v1/cases/{case_no}`: status, timeline, deadlines, what is asked of me.
#[utoipa::path(
    get,
    path = "/api/v1/cases/{case_no}",
    tag = "citizen",
    operation_id = "getMyCase",
    summary = "One of my cases",
    description = "Its status, deadline, history, what is asked of you (during a correction) \
        and the steps you may take now. Someone else's case answers 404.",
    params(("case_no" = String, Path, description = "The case number (办件编号).")),
    responses(
        (status = 200, description = "The case (the ID number masked; `deliveries` is `null`).", body = CaseDetail),
        RoleErrors,
        (status = 404, description = "No such case of yours.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn my_case(
    State(app): State<AppState>,
    ApplicantCase { applicant, case }: ApplicantCase,
    AcceptLang(lang): AcceptLang,
) -> AppResult<Json<CaseDetail>> {
    Ok(Json(
        CaseDetail::build(&app, &case, lang, &applicant.actor()).await?,
    ))
}

/// Body of the applicant's steps.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicantStepBody {
    /// A remark.
    #[serde(default)]
    note: Option<String>,
    /// With a correction: the corrected or missing materials.
    #[serde(default)]
    materials: Vec<MaterialBody>,
}

async fn applicant_step(
    app: AppState,
    ApplicantCase { applicant, case }: ApplicantCase,
    headers: HeaderMap,
    action: Action,
    body: ApplicantStepBody,
) -> AppResult<Json<TransitionAnswer>> {
    let actor = applicant.actor();
    let raw = json!({ "case_no": case.case_no, "action": action.code(), "body": body });
    let idem = idem_key(&headers, &actor.id(), &raw)?;
    let req = StepRequest {
        action,
        result: None,
        note: body.note.clone(),
    };
    let materials = material_inputs(&body.materials);
    let stepped = step::step(&app, case, &actor, req, &materials, idem).await?;
    Ok(Json(stepped.into()))
}

/// `POST /api/v1/cases/{case_no}/correction`: supply corrected materials.
#[utoipa::path(
    post,
    path = "/api/v1/cases/{case_no}/correction",
    tag = "citizen",
    operation_id = "supplyCorrection",
    summary = "Supply a correction (补齐补正)",
    description = "Answers a correction request with the materials asked for; the case goes \
        back to where it was, and the paused clock runs again.",
    params(
        ("case_no" = String, Path, description = "The case number (办件编号)."),
        ("Idempotency-Key" = Option<String>, Header, description = "A fresh key per intended step, 1–200 characters."),
    ),
    request_body(content = ApplicantStepBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The step was taken (or, for a repeated `Idempotency-Key`, the first answer).", body = TransitionAnswer),
        (status = 400, description = "Not JSON of this shape, or a malformed `Idempotency-Key`.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such case of yours.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No correction is asked for now, or the case changed at the same moment.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Materials that cannot be used (`errors`), or an `Idempotency-Key` used for another request.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn supply_correction(
    State(app): State<AppState>,
    case: ApplicantCase,
    headers: HeaderMap,
    AppJson(body): AppJson<ApplicantStepBody>,
) -> AppResult<Json<TransitionAnswer>> {
    applicant_step(app, case, headers, Action::SupplyCorrection, body).await
}

/// `POST /api/v1/cases/{case_no}/withdraw`: withdraw before conclusion.
#[utoipa::path(
    post,
    path = "/api/v1/cases/{case_no}/withdraw",
    tag = "citizen",
    operation_id = "withdrawCase",
    summary = "Withdraw an application (撤回)",
    description = "Withdraws the application while it is not yet decided.",
    params(
        ("case_no" = String, Path, description = "The case number (办件编号)."),
        ("Idempotency-Key" = Option<String>, Header, description = "A fresh key per intended step, 1–200 characters."),
    ),
    request_body(content = ApplicantStepBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Withdrawn (or, for a repeated `Idempotency-Key`, the first answer).", body = TransitionAnswer),
        (status = 400, description = "Not JSON of this shape, materials sent with it, or a malformed `Idempotency-Key`.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such case of yours.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The case is concluded or closed, or changed at the same moment.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An `Idempotency-Key` used for another request.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn withdraw(
    State(app): State<AppState>,
    case: ApplicantCase,
    headers: HeaderMap,
    AppJson(body): AppJson<ApplicantStepBody>,
) -> AppResult<Json<TransitionAnswer>> {
    applicant_step(app, case, headers, Action::Withdraw, body).await
}

/// `POST /api/v1/cases/{case_no}/rating` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingBody {
    /// 5 (非常满意) to 1 (非常不满意).
    #[schema(minimum = 1, maximum = 5)]
    rating: i16,
    /// Why; required below 3, at most 1,000 characters.
    #[serde(default)]
    comment: Option<String>,
}

/// The answer to a rating.
#[derive(Debug, Serialize, ToSchema)]
pub struct RatingAnswer {
    /// The case number.
    pub case_no: String,
    /// The level given.
    pub rating: i16,
    /// Its label in the response's language (非常满意 …).
    pub label: String,
}

/// `POST /api/v1/cases/{case_no}/rating`: 好差评, once, after conclusion.
#[utoipa::path(
    post,
    path = "/api/v1/cases/{case_no}/rating",
    tag = "citizen",
    operation_id = "rateCase",
    summary = "Rate a concluded case (好差评)",
    description = "Once per case, after it is concluded. Below 3, say why.",
    params(("case_no" = String, Path, description = "The case number (办件编号).")),
    request_body(content = RatingBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Rated.", body = RatingAnswer),
        (status = 400, description = "Not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such case of yours.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not concluded yet, or already rated.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A level out of range, or a low rating without a comment (`errors`).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn rate(
    State(app): State<AppState>,
    ApplicantCase { case, .. }: ApplicantCase,
    AcceptLang(lang): AcceptLang,
    AppJson(body): AppJson<RatingBody>,
) -> AppResult<Json<RatingAnswer>> {
    let rated = rate::rate(&app, &case, body.rating, body.comment.as_deref()).await?;
    let (zh, en) = rate::rating_labels(rated.level).unwrap_or(("", ""));
    Ok(Json(RatingAnswer {
        case_no: rated.case_no,
        rating: rated.level,
        label: lang.pick(zh, en).to_owned(),
    }))
}

/// An uploaded file, not yet (or already) part of a case.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadView {
    /// Its id: name it as `upload_id` of a material.
    pub id: Uuid,
    /// The account that uploaded it.
    pub owner: Uuid,
    /// The file name as uploaded.
    pub file_name: String,
    /// The type recognised from the content: `pdf`, `jpg`, `png` or `ofd`.
    pub file_type: String,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// The case it is part of; `null` until it is (unattached uploads are removed after a day).
    #[schema(required = true)]
    pub case_id: Option<Uuid>,
}

impl From<UploadRow> for UploadView {
    fn from(u: UploadRow) -> UploadView {
        UploadView {
            id: u.id,
            owner: u.owner,
            file_name: u.file_name,
            file_type: u.file_type,
            size: u.size,
            sha256: u.sha256,
            created_at: u.created_at,
            case_id: u.case_id,
        }
    }
}

/// `POST /api/v1/uploads`: one file per request (multipart field `file`), streamed to
/// disk with its SHA-256, type sniffed from the content.
#[utoipa::path(
    post,
    path = "/api/v1/uploads",
    tag = "citizen",
    operation_id = "uploadFile",
    summary = "Upload a material's file",
    description = "One file per request, as the multipart field `file` (at most 50 MB). The \
        type is recognised from the content, not the name: PDF, JPG, PNG or OFD; the whole file \
        is checked (an image must decode, a PDF must parse). Name the material it is for with \
        the text fields `service_code` and `material`, sent before `file`, and the material's \
        file types, size limit and pixel sizes apply at once. Clerks upload a walk-in \
        applicant's files the same way.",
    request_body(content_type = "multipart/form-data", description = "The multipart field `file`; optionally `service_code` and `material` before it."),
    responses(
        (status = 201, description = "Stored.", body = UploadView),
        (status = 400, description = "No `file` field, a malformed or empty upload, or an unknown service or material.", body = Problem, content_type = "application/problem+json"),
        LoginErrors,
        (status = 413, description = "Larger than 50 MB, or than the material allows.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a PDF, JPG, PNG or OFD file, or not a type the material accepts.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The content is not what its type claims (an image that does not decode, a PDF that does not parse), or an image outside the material's pixel sizes.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn upload(
    State(app): State<AppState>,
    user: CurrentUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> AppResult<(StatusCode, Json<UploadView>)> {
    // Not multipart, or no boundary: a problem, as documented, not axum's plain text.
    let mut multipart = multipart.map_err(|e| {
        AppError::BadRequest(Message::new(
            format!("请以 multipart/form-data 上传文件：{e}"),
            format!("Send the file as multipart/form-data: {e}"),
        ))
    })?;
    let (mut service_code, mut material_id) = (None::<String>, None::<String>);
    let field = loop {
        match multipart.next_field().await {
            Ok(Some(f)) if f.name() == Some("file") => break f,
            Ok(Some(f)) if matches!(f.name(), Some("service_code" | "material")) => {
                let name = f.name().unwrap_or_default().to_owned();
                let text = f.text().await.map_err(|e| multipart_error(&e))?;
                let text = text.trim().chars().take(200).collect::<String>();
                if name == "service_code" {
                    service_code = Some(text);
                } else {
                    material_id = Some(text);
                }
            }
            Ok(Some(_)) => continue,
            Ok(None) => {
                return Err(AppError::BadRequest(Message::new(
                    "请以 multipart 字段 file 上传文件。",
                    "Send the file as the multipart field `file`.",
                )));
            }
            Err(e) => return Err(multipart_error(&e)),
        }
    };
    let material = match (&service_code, &material_id) {
        (None, None) => None,
        (Some(code), Some(id)) => Some(
            app.catalogue
                .service(code)
                .and_then(|s| s.materials.iter().find(|m| &m.id == id))
                .ok_or_else(|| {
                    AppError::BadRequest(Message::new(
                        "找不到该事项的这项材料。",
                        "That service has no such material.",
                    ))
                })?,
        ),
        _ => {
            return Err(AppError::BadRequest(Message::new(
                "请同时给出 service_code 和 material，或都不给。",
                "Give both service_code and material, or neither.",
            )));
        }
    };
    let row = store_upload(&app, user.session.account_id, field, material).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// The stored file of a case's material, or a 404 problem saying it was removed under the
/// retention period (`closed_case_files_days`); every download reads through here.
pub(crate) async fn material_file(app: &AppState, upload: &UploadRow) -> AppResult<Vec<u8>> {
    if app.store.upload_purged_at(upload.id).await?.is_some() {
        return Err(AppError::NotFound(Message::new(
            "该材料文件已按保存期限删除（办件的材料记录和文件摘要仍保留）。",
            "This material's file was deleted at the end of its retention period (the record of the material and its hash remain).",
        )));
    }
    match app.files.get(&upload.storage_key).await {
        Ok(bytes) => Ok(bytes),
        // Sealed at rest: a file that does not open was altered or moved.
        Err(e) if e.kind() == crate::files::TAMPERED => Err(AppError::Conflict(Message::new(
            "该材料文件未通过完整性校验（已被改动），不予提供；请联系运维人员。",
            "This material's file failed its integrity check (it was altered) and is not served; please tell the operators.",
        ))),
        Err(e) => Err(anyhow::Error::from(e).into()),
    }
}

/// The largest file one upload may hold.
pub(crate) const MAX_UPLOAD_BYTES: u64 = 50 * 1024 * 1024;

/// A multipart body that cannot be read: too large, or malformed.
pub(crate) fn multipart_error(e: &axum::extract::multipart::MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge(Message::new(
            "上传内容超过大小上限。",
            "The upload is larger than allowed.",
        ))
    } else {
        AppError::BadRequest(Message::new(
            "上传内容格式有误。",
            format!("Malformed multipart body: {e}"),
        ))
    }
}

/// Stores one uploaded file owned by `owner`: streamed to a temporary file while it is
/// hashed (at most [`MAX_UPLOAD_BYTES`], or the material's `max_size_mb` when the
/// upload is for a known material), its type sniffed from the first bytes (the name does
/// not count), its whole content checked (an image decodes and meets the material's
/// pixel sizes, a PDF parses: [`crate::content_check`]), then moved into the file store
/// under a random key and recorded as an upload not yet attached to a case.
pub(crate) async fn store_upload(
    app: &AppState,
    owner: Uuid,
    mut field: axum::extract::multipart::Field<'_>,
    material: Option<&Material>,
) -> AppResult<UploadRow> {
    let limit = material.map_or(MAX_UPLOAD_BYTES, |m| {
        (u64::from(m.max_size_mb) * 1024 * 1024).min(MAX_UPLOAD_BYTES)
    });
    let bad = |zh: &str, en: &str| AppError::BadRequest(Message::new(zh, en));
    let file_name: String = field
        .file_name()
        .unwrap_or("upload")
        .chars()
        .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
        .take(200)
        .collect();
    let id = Uuid::now_v7();
    let key = id.to_string();
    let temp = app.files.temp_dir().join(format!("{key}.part"));
    let mut out = tokio::fs::File::create(&temp)
        .await
        .map_err(anyhow::Error::from)?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut head: Vec<u8> = Vec::new();
    let result: AppResult<()> = async {
        loop {
            let chunk = match field.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(multipart_error(&e));
                }
                Err(e) => {
                    return Err(bad(
                        "上传中断。",
                        &format!("The upload was interrupted: {e}"),
                    ));
                }
            };
            size += chunk.len() as u64;
            if size > limit {
                let mb = limit / (1024 * 1024);
                return Err(AppError::PayloadTooLarge(match material {
                    Some(m) => Message::new(
                        format!("“{}”的文件不能超过{mb}MB。", m.name),
                        format!("A file for “{}” may be at most {mb} MB.", m.name_en),
                    ),
                    None => Message::new("文件超过50MB上限。", "The file exceeds the 50 MB limit."),
                }));
            }
            if head.len() < 64 {
                head.extend_from_slice(&chunk[..chunk.len().min(64 - head.len())]);
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(anyhow::Error::from)?;
        }
        out.flush().await.map_err(anyhow::Error::from)?;
        Ok(())
    }
    .await;
    drop(out);
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(e);
    }
    let Some(file_type) = crate::files::sniff(&head, &file_name) else {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(AppError::UnsupportedMedia(Message::new(
            "只接受 PDF、JPG、PNG 或 OFD 文件（按文件内容识别，而非文件名）。",
            "Only PDF, JPG, PNG or OFD files are accepted (recognised by content, not by name).",
        )));
    };
    if size == 0 {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(bad("文件为空。", "The file is empty."));
    }
    if let Some(m) = material
        && !m
            .file_types
            .iter()
            .any(|t| crate::usecases::materials::file_type_code(*t) == file_type)
    {
        let _ = tokio::fs::remove_file(&temp).await;
        let types = m
            .file_types
            .iter()
            .map(|t| crate::usecases::materials::file_type_code(*t).to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(AppError::UnsupportedMedia(Message::new(
            format!("“{}”只接受 {types} 文件。", m.name),
            format!("“{}” accepts {types} files only.", m.name_en),
        )));
    }
    // the whole content, on a blocking thread: decoding is CPU work
    let checked = {
        let path = temp.clone();
        let ft = file_type.to_owned();
        let m = material.cloned();
        tokio::task::spawn_blocking(move || {
            crate::content_check::check_file(&path, &ft, m.as_ref())
        })
        .await
        .map_err(anyhow::Error::from)?
    };
    match checked {
        Ok(Ok(_)) => {}
        Ok(Err(refusal)) => {
            let _ = tokio::fs::remove_file(&temp).await;
            let (zh, en) = refusal.message();
            tracing::info!(file_type, reason = ?std::mem::discriminant(&refusal), "upload refused by its content");
            return Err(AppError::Unprocessable(Message::new(zh, en)));
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(anyhow::Error::from(e).into());
        }
    }
    app.files
        .put_file(&key, &temp)
        .await
        .map_err(anyhow::Error::from)?;
    let row = UploadRow {
        id,
        owner,
        file_name,
        file_type: file_type.to_owned(),
        size: size as i64,
        sha256: hex::encode(hasher.finalize()),
        storage_key: key,
        created_at: chrono::Utc::now(),
        case_id: None,
    };
    app.store.insert_upload(&row).await?;
    Ok(row)
}

/// Draft body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftBody {
    /// The service the draft is for (it cannot change later).
    service_code: String,
    /// The values filled in so far (at most 256 KB).
    #[serde(default)]
    values: Map<String, Value>,
}

/// A saved, unsubmitted application.
#[derive(Debug, Serialize, ToSchema)]
pub struct DraftView {
    /// Its id.
    pub id: Uuid,
    /// The service.
    pub service_code: String,
    /// The values filled in so far.
    pub values: Value,
    /// When it was first saved.
    pub created_at: DateTime<Utc>,
    /// When it was last saved.
    pub updated_at: DateTime<Utc>,
    /// When it is deleted unless saved again.
    pub expires_at: DateTime<Utc>,
}

impl From<&DraftRow> for DraftView {
    fn from(d: &DraftRow) -> DraftView {
        DraftView {
            id: d.id,
            service_code: d.service_code.clone(),
            values: d.form.clone(),
            created_at: d.created_at,
            updated_at: d.updated_at,
            expires_at: d.expires_at,
        }
    }
}

/// My drafts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DraftList {
    /// The drafts not yet expired.
    pub items: Vec<DraftView>,
}

async fn save(
    app: &AppState,
    owner: Uuid,
    id: Uuid,
    body: DraftBody,
    created: Option<DateTime<Utc>>,
) -> AppResult<DraftRow> {
    find_service(app, &body.service_code)?;
    if serde_json::to_vec(&body.values)
        .map(|v| v.len())
        .unwrap_or(0)
        > 256 * 1024
    {
        return Err(AppError::PayloadTooLarge(Message::new(
            "草稿过大。",
            "The draft is too large.",
        )));
    }
    let now = Utc::now();
    let d = DraftRow {
        id,
        account_id: owner,
        service_code: body.service_code,
        form: Value::Object(body.values),
        created_at: created.unwrap_or(now),
        updated_at: now,
        expires_at: now + chrono::Duration::seconds(app.settings.cases.draft_ttl_secs as i64),
    };
    if !app.store.save_draft(&d).await? {
        return Err(AppError::Conflict(Message::new(
            "草稿不能换成另一个事项。",
            "A draft cannot change its service.",
        )));
    }
    Ok(d)
}

/// Saves a draft as `POST`/`PUT /api/v1/drafts` do (same checks: a known service, the
/// size limit, the owner and service kept), for the apply pages' steps.
pub(crate) async fn save_draft_values(
    app: &AppState,
    owner: Uuid,
    id: Uuid,
    service_code: String,
    values: Map<String, Value>,
    created: Option<DateTime<Utc>>,
) -> AppResult<DraftRow> {
    save(
        app,
        owner,
        id,
        DraftBody {
            service_code,
            values,
        },
        created,
    )
    .await
}

/// `POST /api/v1/drafts`: save a partly filled application.
#[utoipa::path(
    post,
    path = "/api/v1/drafts",
    tag = "citizen",
    operation_id = "createDraft",
    summary = "Save a draft",
    description = "Saves a partly filled application, to resume later from any device.",
    request_body(content = DraftBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Saved.", body = DraftView),
        (status = 400, description = "Not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 413, description = "The draft is too large.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown service.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn create_draft(
    State(app): State<AppState>,
    a: Applicant,
    AppJson(body): AppJson<DraftBody>,
) -> AppResult<(StatusCode, Json<DraftView>)> {
    let d = save(&app, a.0.session.account_id, Uuid::now_v7(), body, None).await?;
    Ok((StatusCode::CREATED, Json(DraftView::from(&d))))
}

fn draft_not_found() -> AppError {
    AppError::NotFound(Message::new(
        "没有这个草稿（可能已过期）。",
        "There is no such draft (it may have expired).",
    ))
}

/// `PUT /api/v1/drafts/{id}`: save again (resume from any device).
#[utoipa::path(
    put,
    path = "/api/v1/drafts/{id}",
    tag = "citizen",
    operation_id = "updateDraft",
    summary = "Save a draft again",
    params(("id" = Uuid, Path, description = "The draft's id.")),
    request_body(content = DraftBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Saved.", body = DraftView),
        (status = 400, description = "Not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such draft of yours (it may have expired).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A draft cannot change its service.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The draft is too large.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown service.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn update_draft(
    State(app): State<AppState>,
    a: Applicant,
    Path(id): Path<Uuid>,
    AppJson(body): AppJson<DraftBody>,
) -> AppResult<Json<DraftView>> {
    let owner = a.0.session.account_id;
    let existing = app
        .store
        .draft(id, owner)
        .await?
        .ok_or_else(draft_not_found)?;
    let d = save(&app, owner, id, body, Some(existing.created_at)).await?;
    Ok(Json(DraftView::from(&d)))
}

/// `GET /api/v1/drafts`.
#[utoipa::path(
    get,
    path = "/api/v1/drafts",
    tag = "citizen",
    operation_id = "listDrafts",
    summary = "My drafts",
    responses(
        (status = 200, description = "The drafts not yet expired.", body = DraftList),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn list_drafts(State(app): State<AppState>, a: Applicant) -> AppResult<Json<DraftList>> {
    let now = Utc::now();
    let items = app
        .store
        .drafts(a.0.session.account_id)
        .await?
        .iter()
        .filter(|d| d.expires_at > now)
        .map(DraftView::from)
        .collect();
    Ok(Json(DraftList { items }))
}

/// `GET /api/v1/drafts/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/drafts/{id}",
    tag = "citizen",
    operation_id = "getDraft",
    summary = "One of my drafts",
    params(("id" = Uuid, Path, description = "The draft's id.")),
    responses(
        (status = 200, description = "The draft.", body = DraftView),
        RoleErrors,
        (status = 404, description = "No such draft of yours (it may have expired).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn get_draft(
    State(app): State<AppState>,
    a: Applicant,
    Path(id): Path<Uuid>,
) -> AppResult<Json<DraftView>> {
    let d = app.store.draft(id, a.0.session.account_id).await?;
    match d {
        Some(d) if d.expires_at > Utc::now() => Ok(Json(DraftView::from(&d))),
        _ => Err(draft_not_found()),
    }
}

/// `DELETE /api/v1/drafts/{id}`.
#[utoipa::path(
    delete,
    path = "/api/v1/drafts/{id}",
    tag = "citizen",
    operation_id = "deleteDraft",
    summary = "Delete a draft",
    params(("id" = Uuid, Path, description = "The draft's id.")),
    responses(
        (status = 204, description = "Deleted."),
        RoleErrors,
        (status = 404, description = "No such draft of yours.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn delete_draft(
    State(app): State<AppState>,
    a: Applicant,
    Path(id): Path<Uuid>,
) -> AppResult<StatusCode> {
    if app.store.delete_draft(id, a.0.session.account_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(draft_not_found())
    }
}

/// An in-app message about one of my cases.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    /// Its id.
    pub id: Uuid,
    /// The case it is about.
    pub case_no: String,
    /// The title in the response's language.
    pub title: String,
    /// The text in the response's language.
    pub body: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When it was read; `null` while unread.
    #[schema(required = true)]
    pub read_at: Option<DateTime<Utc>>,
}

/// My messages, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    /// The latest 100.
    pub items: Vec<NotificationView>,
}

/// `GET /api/v1/notifications`: my messages, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    tag = "citizen",
    operation_id = "listNotifications",
    summary = "My messages",
    description = "What happened to my cases (accepted, a correction asked for, concluded …), \
        newest first, at most 100.",
    responses(
        (status = 200, description = "The messages.", body = NotificationList),
        LoginErrors,
    ),
    security(("session" = []))
)]
pub async fn notifications(
    State(app): State<AppState>,
    user: CurrentUser,
    AcceptLang(lang): AcceptLang,
) -> AppResult<Json<NotificationList>> {
    let items = app
        .store
        .notifications(user.session.account_id, 100)
        .await?
        .into_iter()
        .map(|n| NotificationView {
            id: n.id,
            title: lang.pick(&n.title_zh, &n.title_en).to_owned(),
            body: lang.pick(&n.body_zh, &n.body_en).to_owned(),
            case_no: n.case_no,
            created_at: n.created_at,
            read_at: n.read_at,
        })
        .collect();
    Ok(Json(NotificationList { items }))
}

/// `?query_code=` of the public query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PublicQuery {
    /// The 6-digit query code (查询码) given when the application was lodged.
    query_code: Option<String>,
}

/// Wrong query codes allowed from one client address for one case, and from one client
/// address overall, in each window. Counted by the caller, never by the case alone: a
/// stranger's wrong codes must not lock the case's owner out.
const WRONG_CODES_PER_CLIENT_AND_CASE: i64 = 5;
const WRONG_CODES_PER_CLIENT: i64 = 20;
/// Wrong codes for one case (from anyone) in a window that make the gateway warn
/// operators: someone may be guessing from many addresses.
const WRONG_CODES_CASE_ALARM: i64 = 50;
const WRONG_CODE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The client address for rate limits: the peer, or, only when the gateway is
/// configured to sit behind a proxy it trusts, the last X-Forwarded-For hop (the one the
/// proxy added; earlier hops are whatever the client claimed).
pub(crate) fn client_of(
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    trust_proxy: bool,
) -> String {
    let forwarded = trust_proxy
        .then(|| {
            headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .map(|v| v.trim().to_owned())
        })
        .flatten();
    forwarded
        .or_else(|| peer.map(|p| p.ip().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

/// The answer once either budget of wrong query codes is spent.
fn limited() -> Response {
    let mut r = AppError::TooManyRequests(Message::new(
        "查询码错误次数过多，请15分钟后再试。",
        "Too many wrong query codes. Please try again in 15 minutes.",
    ))
    .into_response();
    r.headers_mut()
        .insert("retry-after", axum::http::HeaderValue::from_static("900"));
    r
}

/// `GET /api/v1/public/cases/{case_no}?query_code=`: status without login, no personal data.
#[utoipa::path(
    get,
    path = "/api/v1/public/cases/{case_no}",
    tag = "public",
    operation_id = "queryCaseStatus",
    summary = "A case's status, by number and query code (办件查询)",
    description = "No login: the case number and the query code given at lodging. No personal \
        data, and no notes in the history. An unknown number and a wrong code answer alike; \
        wrong codes are limited per client, for one case and overall (15 minutes), never per \
        case alone, so a stranger's guesses cannot lock the owner out. Queries are also \
        limited per client per minute.",
    params(
        ("case_no" = String, Path, description = "The case number (办件编号)."),
        PublicQuery,
    ),
    responses(
        (status = 200, description = "The case's status.", body = PublicCase),
        (status = 404, description = "The case number or query code is not correct.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong query codes; `Retry-After` says when to try again.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn public_case(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    headers: HeaderMap,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    Path(case_no): Path<String>,
    Query(q): Query<PublicQuery>,
) -> Result<Json<PublicCase>, Response> {
    let client = crate::http::edge::client_address(
        &headers,
        Some(peer),
        app.settings.server.trust_forwarded_for,
    );
    let code = q.query_code.unwrap_or_default();
    match public_lookup(&app, &client, &case_no, &code)
        .await
        .map_err(IntoResponse::into_response)?
    {
        PublicAnswer::Found(c, events) => Ok(Json(PublicCase::of(&app, &c, &events, lang))),
        PublicAnswer::Limited => Err(limited()),
        // Unknown number and wrong code answer alike: no oracle for case numbers.
        PublicAnswer::Wrong => Err(AppError::NotFound(Message::new(
            "办件编号或查询码不正确。",
            "The case number or query code is not correct.",
        ))
        .into_response()),
    }
}

/// What the public query found.
pub(crate) enum PublicAnswer {
    /// The case and its history.
    Found(Box<crate::store::CaseRow>, Vec<crate::store::EventRow>),
    /// The number or the code is not correct (the same answer for both).
    Wrong,
    /// Too many wrong codes for this case or from this client: wait 15 minutes.
    Limited,
}

/// How long the public query is refused after too many wrong codes.
pub(crate) const PUBLIC_QUERY_WAIT_MINUTES: u64 = WRONG_CODE_WINDOW.as_secs() / 60;

/// The public query (case number and query code, no login) with its limits on wrong
/// codes per case and per client; the JSON route and the status page both ask it.
pub(crate) async fn public_lookup(
    app: &AppState,
    client: &str,
    case_no: &str,
    code: &str,
) -> AppResult<PublicAnswer> {
    let pair_key = format!("rl:qc:pair:{client}:{case_no}");
    let client_key = format!("rl:qc:client:{client}");
    let case_key = format!("rl:qc:case:{case_no}");
    let internal = |e: anyhow::Error| AppError::Internal(e);
    // Refuse early when either of the caller's budgets is spent.
    for (k, max) in [
        (&pair_key, WRONG_CODES_PER_CLIENT_AND_CASE),
        (&client_key, WRONG_CODES_PER_CLIENT),
    ] {
        if app.cache.counter(k).await.map_err(|e| internal(e.into()))? >= max {
            return Ok(PublicAnswer::Limited);
        }
    }
    // The case with its history in one statement: the answer needs both.
    let full = app.store.case_full(CaseKey::No(case_no)).await?;
    let (c, events) = match full {
        Some(f) => (Some(f.case), f.events),
        None => (None, Vec::new()),
    };
    let matches = c
        .as_ref()
        .is_some_and(|c| bool::from(c.query_code.as_bytes().ct_eq(code.trim().as_bytes())));
    let exists = c.is_some();
    let Some(c) = c.filter(|_| matches) else {
        let a = app
            .cache
            .incr(&pair_key, WRONG_CODE_WINDOW)
            .await
            .map_err(|e| internal(e.into()))?;
        let b = app
            .cache
            .incr(&client_key, WRONG_CODE_WINDOW)
            .await
            .map_err(|e| internal(e.into()))?;
        if exists {
            // Counted for the operators' warning only; it refuses no one.
            let n = app
                .cache
                .incr(&case_key, WRONG_CODE_WINDOW)
                .await
                .map_err(|e| internal(e.into()))?;
            if n == WRONG_CODES_CASE_ALARM {
                tracing::warn!(
                    wrong_codes = n,
                    window_minutes = PUBLIC_QUERY_WAIT_MINUTES,
                    "one case received many wrong query codes: someone may be guessing from many addresses"
                );
            }
        }
        if a > WRONG_CODES_PER_CLIENT_AND_CASE || b > WRONG_CODES_PER_CLIENT {
            return Ok(PublicAnswer::Limited);
        }
        return Ok(PublicAnswer::Wrong);
    };
    Ok(PublicAnswer::Found(Box::new(c), events))
}

// ---------- staff ----------

/// Parses a step's action code, naming the known ones when it is unknown.
pub(super) fn parse_action(code: &str) -> AppResult<Action> {
    Action::from_code(code).ok_or_else(|| {
        let known: Vec<&str> = Action::ALL.iter().map(|a| a.code()).collect();
        AppError::Invalid(vec![FieldError {
            field: "action".into(),
            message: Message::new(
                format!("未知的操作“{code}”，可选：{}", known.join("、")),
                format!("Unknown action {code:?}; one of {}", known.join(", ")),
            ),
        }])
    })
}

/// Parses a conclusion's result code.
pub(super) fn parse_result(s: Option<&str>) -> AppResult<Option<ConclusionResult>> {
    match s {
        None => Ok(None),
        Some(r) => ConclusionResult::from_code(r).map(Some).ok_or_else(|| {
            AppError::Invalid(vec![FieldError {
                field: "result".into(),
                message: Message::new(
                    "result 应为 approved 或 rejected。",
                    "result must be approved or rejected.",
                ),
            }])
        }),
    }
}

/// Walk-in applicant at a window.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalkInApplicant {
    /// `person` or `enterprise` (as the service allows).
    kind: String,
    /// The person's or the enterprise's name (at most 100 characters).
    name: String,
    /// The person's (or the enterprise's agent's) resident ID number.
    #[serde(default)]
    id_number: Option<String>,
    /// The enterprise's USCC (required for an enterprise).
    #[serde(default)]
    uscc: Option<String>,
    /// A contact phone.
    #[serde(default)]
    phone: Option<String>,
}

/// `POST /api/staff/v1/cases` body: window intake (一窗受理).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntakeBody {
    /// The service applied for.
    service_code: String,
    /// The walk-in applicant.
    applicant: WalkInApplicant,
    /// Form values by field id.
    #[serde(default)]
    values: Map<String, Value>,
    /// The materials: the clerk's uploads of the applicant's papers, or stand-ins.
    #[serde(default)]
    materials: Vec<MaterialBody>,
}

/// `POST /api/staff/v1/cases`: a clerk registers a walk-in application.
#[utoipa::path(
    post,
    path = "/api/staff/v1/cases",
    tag = "staff",
    operation_id = "windowIntake",
    summary = "Register a walk-in application (一窗受理)",
    description = "A window clerk lodges an application for a walk-in applicant, for a \
        department their hall serves. A prefill lookup the clerk made for this applicant \
        (`POST /api/staff/v1/prefill`) is re-checked like an applicant's own.",
    params(("Idempotency-Key" = Option<String>, Header, description = "A fresh key per intended application, 1–200 characters.")),
    request_body(content = IntakeBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Lodged (or, for a repeated `Idempotency-Key`, the first answer).", body = CaseLodged),
        (status = 400, description = "Not JSON of this shape, or a malformed `Idempotency-Key`.", body = Problem, content_type = "application/problem+json"),
        LoginErrors,
        (status = 403, description = "Not a clerk, or the hall does not serve the service's department.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The service is not handled at a window.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The applicant, fields or materials to correct (`errors`), or an `Idempotency-Key` used for another request.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn intake(
    State(app): State<AppState>,
    clerk: Clerk,
    headers: HeaderMap,
    AppJson(body): AppJson<IntakeBody>,
) -> AppResult<(StatusCode, Json<CaseLodged>)> {
    let raw = serde_json::to_value(&body).map_err(anyhow::Error::from)?;
    let service = find_service(&app, &body.service_code)?;
    let actor = clerk.actor();
    let idem = idem_key(&headers, &actor.id(), &raw)?;
    let a = &body.applicant;
    let walk_in = intake::WalkIn {
        kind: a.kind.clone(),
        name: a.name.clone(),
        id_number: a.id_number.clone(),
        uscc: a.uscc.clone(),
        phone: a.phone.clone(),
    };
    let materials = material_inputs(&body.materials);
    let lodged = intake::intake(
        &app,
        &actor,
        service,
        &walk_in,
        &body.values,
        &materials,
        idem,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(lodged.into())))
}

/// Worklist filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WorklistQuery {
    /// Only cases in these statuses, comma-separated (`submitted,accepted`).
    status: Option<String>,
    /// Only cases of this service.
    service: Option<String>,
    /// Only cases of this department (within those the role covers).
    department: Option<String>,
    /// Only cases due on or before this date.
    due_by: Option<chrono::NaiveDate>,
    /// The page, from 1.
    #[param(minimum = 1, default = 1)]
    page: Option<i64>,
    /// Cases per page, 1–100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    per_page: Option<i64>,
    /// Continue after this cursor, the previous page's `next` (instead of `page`).
    #[param(max_length = 64)]
    before: Option<String>,
}

/// `GET /api/staff/v1/cases`: the worklist, limited to what the role covers.
#[utoipa::path(
    get,
    path = "/api/staff/v1/cases",
    tag = "staff",
    operation_id = "staffWorklist",
    summary = "The worklist",
    description = "The cases the caller's role covers (a clerk's hall departments, an \
        officer's department, all for an operator), newest first. Page with `before` (the \
        previous answer's `next`); `page` still works but costs more deep into the list.",
    params(WorklistQuery),
    responses(
        (status = 200, description = "A page of cases.", body = CaseList),
        (status = 400, description = "An unknown parameter or status, `page` below 1, `per_page` out of range or a malformed `before` cursor.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn worklist(
    State(app): State<AppState>,
    staff: Staff,
    AcceptLang(lang): AcceptLang,
    q: Result<Query<WorklistQuery>, QueryRejection>,
) -> AppResult<Json<CaseList>> {
    let q = query_params(q)?;
    let (page, per) = paging(&Page {
        page: q.page,
        per_page: q.per_page,
        before: None,
    })?;
    let (offset, before) = offset_and_cursor(page, per, q.before.as_deref())?;
    let statuses = case_statuses(q.status.as_deref())?;
    let departments = match (staff.actor().departments_covered(), q.department) {
        (Some(mine), Some(d)) => Some(mine.into_iter().filter(|m| *m == d).collect()),
        (Some(mine), None) => Some(mine),
        (None, Some(d)) => Some(vec![d]),
        (None, None) => None,
    };
    let found = app
        .store
        .case_page(&CaseFilter {
            departments,
            statuses,
            service: q.service,
            due_by: q.due_by,
            limit: per,
            offset,
            before,
            ..CaseFilter::default()
        })
        .await?;
    let page = if before.is_some() { 1 } else { page };
    Ok(Json(CaseList::page(&app, &found, page, per, lang)))
}

/// `GET /api/staff/v1/cases/{case_no}`.
#[utoipa::path(
    get,
    path = "/api/staff/v1/cases/{case_no}",
    tag = "staff",
    operation_id = "staffGetCase",
    summary = "One case, for staff",
    description = "The case with its application (the ID number masked), its history, how \
        its events are delivered, and the steps the caller's role may take now. The read is \
        recorded in the applicant's data-access trail.",
    params(("case_no" = String, Path, description = "The case number (办件编号).")),
    responses(
        (status = 200, description = "The case.", body = CaseDetail),
        RoleErrors,
        (status = 404, description = "No such case within the role's departments.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_get(
    State(app): State<AppState>,
    StaffCase { staff, case }: StaffCase,
    AcceptLang(lang): AcceptLang,
) -> AppResult<Json<CaseDetail>> {
    let actor = staff.actor();
    let kind = match staff {
        Staff::Clerk(_) => "clerk",
        Staff::Officer(_) => "officer",
        Staff::Operator(_) => "operator",
    };
    let reader = crate::sharing::audit::Reader {
        kind,
        id: Some(actor.id()),
        name: actor.name().to_owned(),
    };
    let full = app.store.case_full(CaseKey::Id(case.id)).await?;
    crate::sharing::audit::case_read_of(
        &app,
        &case,
        full.as_ref().map_or(&[][..], |f| &f.materials),
        &reader,
        crate::sharing::prefill::purpose::STAFF_CASE_VIEW,
    )
    .await?;
    Ok(Json(
        CaseDetail::of_full(&app, &case, full, lang, &actor).await?,
    ))
}

/// Body of a staff step.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// The step to take.
    #[schema(value_type = views::CaseAction)]
    action: String,
    /// With `conclude` only (and then required): `approved` (准予) or `rejected` (不予).
    #[serde(default)]
    #[schema(value_type = Option<views::CaseResult>)]
    result: Option<String>,
    /// The reason or remark; required for `not_accept`, `request_correction`, `suspend`
    /// and a rejected `conclude`.
    #[serde(default)]
    note: Option<String>,
    /// Materials (a correction only).
    #[serde(default)]
    materials: Vec<MaterialBody>,
}

/// `POST /api/staff/v1/cases/{case_no}/transitions`: accept, refuse, request correction,
/// review, suspend, resume, conclude (what the role and the state allow).
#[utoipa::path(
    post,
    path = "/api/staff/v1/cases/{case_no}/transitions",
    tag = "staff",
    operation_id = "staffTransition",
    summary = "Take a step on a case",
    description = "Accept, refuse, request a correction, review, suspend, resume or \
        conclude: what the caller's role and the case's status allow (the case's \
        `allowed_actions`).",
    params(
        ("case_no" = String, Path, description = "The case number (办件编号)."),
        ("Idempotency-Key" = Option<String>, Header, description = "A fresh key per intended step, 1–200 characters."),
    ),
    request_body(content = TransitionBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The step was taken (or, for a repeated `Idempotency-Key`, the first answer).", body = TransitionAnswer),
        (status = 400, description = "Not JSON of this shape, materials with another step than a correction, or a malformed `Idempotency-Key`.", body = Problem, content_type = "application/problem+json"),
        LoginErrors,
        (status = 403, description = "Not staff, or a step the role may not take.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such case within the role's departments.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The status does not allow the step (the detail says which are possible), or the case changed at the same moment.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown `action` or `result`, a missing `note` or `result` (`errors`), or an `Idempotency-Key` used for another request.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_transition(
    State(app): State<AppState>,
    StaffCase { staff, case }: StaffCase,
    headers: HeaderMap,
    AppJson(body): AppJson<TransitionBody>,
) -> AppResult<Json<TransitionAnswer>> {
    let actor = staff.actor();
    let action = parse_action(&body.action)?;
    let result = parse_result(body.result.as_deref())?;
    let raw = json!({ "case_no": case.case_no, "body": body });
    let idem = idem_key(&headers, &actor.id(), &raw)?;
    let req = StepRequest {
        action,
        result,
        note: body.note.clone(),
    };
    let materials = material_inputs(&body.materials);
    let stepped = step::step(&app, case, &actor, req, &materials, idem).await?;
    Ok(Json(stepped.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_refuses_what_the_document_excludes_rather_than_clamping() {
        let p = |page, per_page| {
            paging(&Page {
                page,
                per_page,
                before: None,
            })
        };
        assert_eq!(p(None, None).ok(), Some((1, 20)));
        assert_eq!(p(Some(3), Some(100)).ok(), Some((3, 100)));
        for (page, per) in [
            (Some(0), None),
            (Some(-1), None),
            (None, Some(0)),
            (None, Some(101)),
        ] {
            assert!(
                matches!(p(page, per), Err(AppError::BadRequest(_))),
                "{page:?} {per:?}"
            );
        }
    }

    #[test]
    fn a_cursor_replaces_the_page_and_a_malformed_one_is_refused() {
        let c = Cursor {
            at: Utc::now(),
            id: Uuid::now_v7(),
            due: None,
        };
        let text = c.encode();
        assert_eq!(offset_and_cursor(3, 20, None).ok(), Some((40, None)));
        assert_eq!(offset_and_cursor(3, 20, Some("")).ok(), Some((40, None)));
        let (offset, back) = offset_and_cursor(3, 20, Some(&text)).expect("cursor");
        assert_eq!(offset, 0);
        assert_eq!(back.map(|b| b.id), Some(c.id));
        for bad in ["x", "not-a-cursor", "%2F", &text[..text.len() - 2]] {
            assert!(
                matches!(
                    offset_and_cursor(1, 20, Some(bad)),
                    Err(AppError::BadRequest(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "1.2.3.4, 10.0.0.7".parse().expect("header"),
        );
        let peer: std::net::SocketAddr = "192.0.2.1:5000".parse().expect("addr");
        assert_eq!(
            client_of(&h, Some(peer), false),
            "192.0.2.1",
            "a client cannot pick its own address"
        );
        assert_eq!(
            client_of(&h, Some(peer), true),
            "10.0.0.7",
            "the hop our proxy added"
        );
        assert_eq!(client_of(&HeaderMap::new(), None, true), "unknown");
    }
}
