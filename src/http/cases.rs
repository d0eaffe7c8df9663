//! Case routes: applicants (apply, list, read, correct, withdraw, rate, uploads, drafts,
//! notifications), window clerks and department officers (intake, worklist, steps), and
//! the public status query.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::AcceptLang;
use super::error::{AppError, AppResult, FieldError, Message};
use crate::app::AppState;
use crate::auth::extract::{Applicant, Clerk, CurrentUser};
use crate::auth::identity::{AccountKind, Role};
use crate::cases::{self, ActorRef, IdemKey, MaterialInput, NewApplication};
use crate::domain::case::{Action, Actor, ConclusionResult, Request as StepRequest};
use crate::domain::catalogue::{ApplicantType, Channel};
use crate::domain::ids::{ResidentId, Uscc};
use crate::store::{CaseApplicant, CaseFilter, CaseRow, DraftRow, UploadRow};

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
    AppError::BadRequest(Message::new(
        format!("请求体不是有效的 JSON 或字段不符：{}", e.body_text()),
        format!(
            "The body is not valid JSON of the expected shape: {}",
            e.body_text()
        ),
    ))
}

const MAX_KEY_LEN: usize = 200;

/// The `Idempotency-Key` of a request, scoped to its caller and bound to its body.
pub(super) fn idem_key(
    headers: &HeaderMap,
    scope: &str,
    body: &Value,
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
    Ok(Some(IdemKey {
        scope: scope.to_owned(),
        key: key.to_owned(),
        request_hash: cases::request_hash(body),
    }))
}

fn applicant_actor(a: &Applicant) -> ActorRef {
    ActorRef {
        actor: Actor::Applicant,
        id: Some(a.0.session.account_id.to_string()),
        name: a.0.session.name.clone(),
        account: Some(a.0.session.account_id),
    }
}

/// `POST /api/v1/cases` body.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyBody {
    service_code: String,
    #[serde(default)]
    values: Map<String, Value>,
    #[serde(default)]
    materials: Vec<MaterialInput>,
    /// A draft to delete once the application is lodged.
    #[serde(default)]
    draft_id: Option<Uuid>,
}

fn find_service<'a>(
    app: &'a AppState,
    code: &str,
) -> AppResult<&'a crate::domain::catalogue::Service> {
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
pub async fn apply(
    State(app): State<AppState>,
    applicant: Applicant,
    headers: HeaderMap,
    AppJson(body): AppJson<ApplyBody>,
) -> AppResult<Response> {
    let raw = serde_json::to_value(&body).map_err(anyhow::Error::from)?;
    let s = &applicant.0.session;
    let service = find_service(&app, &body.service_code)?;
    // before the Idempotency-Key, so a refusal reads the same with or without one
    check_online_applicant(service, s)?;
    let idem = idem_key(&headers, &s.account_id.to_string(), &raw)?;
    let (status, answer) = apply_online(
        &app,
        &applicant,
        service,
        &body.values,
        &body.materials,
        idem,
    )
    .await?;
    if let Some(d) = body.draft_id {
        app.store.delete_draft(d, s.account_id).await?;
    }
    Ok((status, Json(answer)).into_response())
}

/// Whether this logged-in applicant may apply online for `service`: the service takes
/// online applications, the kind of account fits (individual or enterprise), and the
/// assurance level is high enough. Answers the enterprise (USCC) the application is made
/// for, or `None` for an individual.
pub(crate) fn check_online_applicant(
    service: &crate::domain::catalogue::Service,
    s: &crate::auth::session::Session,
) -> AppResult<Option<String>> {
    if !service.channels.contains(&Channel::Online) {
        return Err(AppError::Conflict(Message::new(
            "此事项只能到窗口办理。",
            "This service is only handled at a window.",
        )));
    }
    let enterprise = s.roles.iter().find_map(|r| match r {
        Role::EnterpriseUser { uscc } => Some(uscc.clone()),
        _ => None,
    });
    let as_enterprise =
        enterprise.is_some() && service.applicant_types.contains(&ApplicantType::Enterprise);
    let as_person =
        enterprise.is_none() && service.applicant_types.contains(&ApplicantType::Person);
    if !as_enterprise && !as_person {
        return Err(AppError::Forbidden(Message::new(
            "您的账户类型不能申请此事项（个人/企业不符）。",
            "Your kind of account cannot apply for this service (individual vs enterprise).",
        )));
    }
    if s.assurance < service.min_assurance {
        return Err(AppError::Forbidden(Message::new(
            format!(
                "此事项要求实名认证等级不低于{}级，您当前为{}级。详见 /services/{}/eligibility",
                service.min_assurance, s.assurance, service.code
            ),
            format!(
                "This service needs assurance level {} (yours is {}). See /services/{}/eligibility",
                service.min_assurance, s.assurance, service.code
            ),
        )));
    }
    Ok(if as_enterprise { enterprise } else { None })
}

/// Lodges a logged-in applicant's online application (the JSON API and the apply page
/// both come here): checks that they may apply online, builds the applicant from their
/// account, and lodges with their shared data and prefill snapshot, so prefilled values
/// are re-checked and 免提交 materials verified. Answers 201 with the case number and
/// query code.
pub(crate) async fn apply_online(
    app: &AppState,
    applicant: &Applicant,
    service: &crate::domain::catalogue::Service,
    values: &Map<String, Value>,
    materials: &[MaterialInput],
    idem: Option<IdemKey>,
) -> AppResult<(StatusCode, Value)> {
    let s = &applicant.0.session;
    let enterprise = check_online_applicant(service, s)?;
    let account = app.store.account(s.account_id).await?.ok_or_else(|| {
        AppError::Unauthorized(Message::new(
            "账户不存在，请重新登录。",
            "The account no longer exists; log in again.",
        ))
    })?;
    let as_enterprise = enterprise.is_some();
    let applicant_row = CaseApplicant {
        account_id: Some(account.id),
        kind: if as_enterprise {
            AccountKind::Enterprise
        } else {
            AccountKind::Person
        },
        name: match (&account.enterprise, as_enterprise) {
            (Some(e), true) => e.name.clone(),
            _ => account.name.clone(),
        },
        id_number: account.id_number.clone(),
        uscc: enterprise,
        phone: account.phone.clone(),
    };
    let sharing = crate::sharing::prefill::who_from_account(&account, applicant_row.uscc.clone());
    cases::lodge(
        app,
        NewApplication {
            service,
            applicant: applicant_row,
            channel: "online",
            intake: None,
            values,
            materials,
            actor: applicant_actor(applicant),
            idem,
            sharing: Some(sharing),
            snapshot_of: Some(account.id),
        },
    )
    .await
}

/// Paging of lists.
#[derive(Debug, Deserialize)]
pub struct Page {
    page: Option<i64>,
    per_page: Option<i64>,
}

fn paging(p: &Page) -> AppResult<(i64, i64)> {
    let per = p.per_page.unwrap_or(20);
    if !(1..=100).contains(&per) {
        return Err(AppError::BadRequest(Message::new(
            "per_page 应在 1 到 100 之间。",
            "per_page must be 1 to 100.",
        )));
    }
    let page = p.page.unwrap_or(1).max(1);
    Ok((page, per))
}

/// `GET /api/v1/cases`: my cases, newest first.
pub async fn my_cases(
    State(app): State<AppState>,
    applicant: Applicant,
    AcceptLang(lang): AcceptLang,
    Query(p): Query<Page>,
) -> AppResult<Json<Value>> {
    let (page, per) = paging(&p)?;
    let (rows, total) = app
        .store
        .list_cases(&CaseFilter {
            applicant: Some(applicant.0.session.account_id),
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

/// Loads a case the applicant owns; anyone else's is "not found".
async fn own_case(app: &AppState, applicant: &Applicant, case_no: &str) -> AppResult<CaseRow> {
    let c = app.store.case_by_no(case_no).await?;
    match c {
        Some(c) if c.applicant.account_id == Some(applicant.0.session.account_id) => Ok(c),
        _ => Err(cases::not_found(case_no)),
    }
}

/// `GET /api/v1/cases/{case_no}`: status, timeline, deadlines, what is asked of me.
pub async fn my_case(
    State(app): State<AppState>,
    applicant: Applicant,
    AcceptLang(lang): AcceptLang,
    Path(case_no): Path<String>,
) -> AppResult<Json<Value>> {
    let c = own_case(&app, &applicant, &case_no).await?;
    Ok(Json(
        cases::full_view(&app, &c, lang, Actor::Applicant).await?,
    ))
}

/// Body of the applicant's steps.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicantStepBody {
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    materials: Vec<MaterialInput>,
}

async fn applicant_step(
    app: AppState,
    applicant: Applicant,
    headers: HeaderMap,
    case_no: String,
    action: Action,
    body: ApplicantStepBody,
) -> AppResult<Response> {
    own_case(&app, &applicant, &case_no).await?;
    let raw = json!({ "case_no": case_no, "action": action.code(), "body": body });
    let idem = idem_key(&headers, &applicant.0.session.account_id.to_string(), &raw)?;
    let req = StepRequest {
        action,
        result: None,
        note: body.note.clone(),
    };
    let (status, answer) = cases::step(
        &app,
        &case_no,
        &applicant_actor(&applicant),
        req,
        &body.materials,
        idem,
    )
    .await?;
    Ok((status, Json(answer)).into_response())
}

/// `POST /api/v1/cases/{case_no}/correction`: supply corrected materials.
pub async fn supply_correction(
    State(app): State<AppState>,
    applicant: Applicant,
    headers: HeaderMap,
    Path(case_no): Path<String>,
    AppJson(body): AppJson<ApplicantStepBody>,
) -> AppResult<Response> {
    applicant_step(
        app,
        applicant,
        headers,
        case_no,
        Action::SupplyCorrection,
        body,
    )
    .await
}

/// `POST /api/v1/cases/{case_no}/withdraw`: withdraw before conclusion.
pub async fn withdraw(
    State(app): State<AppState>,
    applicant: Applicant,
    headers: HeaderMap,
    Path(case_no): Path<String>,
    AppJson(body): AppJson<ApplicantStepBody>,
) -> AppResult<Response> {
    applicant_step(app, applicant, headers, case_no, Action::Withdraw, body).await
}

/// `POST /api/v1/cases/{case_no}/rating` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingBody {
    rating: i16,
    #[serde(default)]
    comment: Option<String>,
}

/// `POST /api/v1/cases/{case_no}/rating`: 好差评, once, after conclusion.
pub async fn rate(
    State(app): State<AppState>,
    applicant: Applicant,
    AcceptLang(lang): AcceptLang,
    Path(case_no): Path<String>,
    AppJson(body): AppJson<RatingBody>,
) -> AppResult<Json<Value>> {
    let c = own_case(&app, &applicant, &case_no).await?;
    if c.concluded_on.is_none() {
        return Err(AppError::Conflict(Message::new(
            "办结后才能评价。",
            "A case can be rated once it is concluded.",
        )));
    }
    cases::check_rating(body.rating, body.comment.as_deref()).map_err(AppError::Invalid)?;
    let comment = body
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if !app
        .store
        .rate_case(c.id, body.rating, comment, chrono::Utc::now())
        .await?
    {
        return Err(AppError::Conflict(Message::new(
            "该办件已评价过，每件只能评价一次。",
            "This case has already been rated; each case is rated once.",
        )));
    }
    let (zh, en) = cases::rating_labels(body.rating).unwrap_or(("", ""));
    metrics::counter!("onewindow_ratings_total", "level" => body.rating.to_string()).increment(1);
    Ok(Json(
        json!({ "case_no": c.case_no, "rating": body.rating, "label": lang.pick(zh, en) }),
    ))
}

/// `POST /api/v1/uploads`: one file per request (multipart field `file`), streamed to
/// disk with its SHA-256, type sniffed from the content.
pub async fn upload(
    State(app): State<AppState>,
    user: CurrentUser,
    mut multipart: Multipart,
) -> AppResult<Response> {
    let field = loop {
        match multipart.next_field().await {
            Ok(Some(f)) if f.name() == Some("file") => break f,
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
    let row = store_upload(&app, user.session.account_id, field).await?;
    Ok((StatusCode::CREATED, Json(json!(row))).into_response())
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
/// hashed (at most [`MAX_UPLOAD_BYTES`]), its type sniffed from the first bytes (the
/// name does not count), then moved into the file store under a random key and recorded
/// as an upload not yet attached to a case.
pub(crate) async fn store_upload(
    app: &AppState,
    owner: Uuid,
    mut field: axum::extract::multipart::Field<'_>,
) -> AppResult<UploadRow> {
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
            if size > MAX_UPLOAD_BYTES {
                return Err(AppError::PayloadTooLarge(Message::new(
                    "文件超过50MB上限。",
                    "The file exceeds the 50 MB limit.",
                )));
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftBody {
    service_code: String,
    #[serde(default)]
    values: Map<String, Value>,
}

fn draft_view(d: &DraftRow) -> Value {
    json!({
        "id": d.id, "service_code": d.service_code, "values": d.form,
        "created_at": d.created_at, "updated_at": d.updated_at, "expires_at": d.expires_at,
    })
}

async fn save(
    app: &AppState,
    owner: Uuid,
    id: Uuid,
    body: DraftBody,
    created: Option<chrono::DateTime<chrono::Utc>>,
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
    let now = chrono::Utc::now();
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

/// `POST /api/v1/drafts`: save a partly filled application.
pub async fn create_draft(
    State(app): State<AppState>,
    a: Applicant,
    AppJson(body): AppJson<DraftBody>,
) -> AppResult<Response> {
    let d = save(&app, a.0.session.account_id, Uuid::now_v7(), body, None).await?;
    Ok((StatusCode::CREATED, Json(draft_view(&d))).into_response())
}

fn draft_not_found() -> AppError {
    AppError::NotFound(Message::new(
        "没有这个草稿（可能已过期）。",
        "There is no such draft (it may have expired).",
    ))
}

/// `PUT /api/v1/drafts/{id}`: save again (resume from any device).
pub async fn update_draft(
    State(app): State<AppState>,
    a: Applicant,
    Path(id): Path<Uuid>,
    AppJson(body): AppJson<DraftBody>,
) -> AppResult<Json<Value>> {
    let owner = a.0.session.account_id;
    let existing = app
        .store
        .draft(id, owner)
        .await?
        .ok_or_else(draft_not_found)?;
    let d = save(&app, owner, id, body, Some(existing.created_at)).await?;
    Ok(Json(draft_view(&d)))
}

/// `GET /api/v1/drafts`.
pub async fn list_drafts(State(app): State<AppState>, a: Applicant) -> AppResult<Json<Value>> {
    let now = chrono::Utc::now();
    let items: Vec<Value> = app
        .store
        .drafts(a.0.session.account_id)
        .await?
        .iter()
        .filter(|d| d.expires_at > now)
        .map(draft_view)
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// `GET /api/v1/drafts/{id}`.
pub async fn get_draft(
    State(app): State<AppState>,
    a: Applicant,
    Path(id): Path<Uuid>,
) -> AppResult<Json<Value>> {
    let d = app.store.draft(id, a.0.session.account_id).await?;
    match d {
        Some(d) if d.expires_at > chrono::Utc::now() => Ok(Json(draft_view(&d))),
        _ => Err(draft_not_found()),
    }
}

/// `DELETE /api/v1/drafts/{id}`.
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

/// `GET /api/v1/notifications`: my messages, newest first.
pub async fn notifications(
    State(app): State<AppState>,
    user: CurrentUser,
    AcceptLang(lang): AcceptLang,
) -> AppResult<Json<Value>> {
    let items: Vec<Value> = app
        .store
        .notifications(user.session.account_id, 100)
        .await?
        .iter()
        .map(|n| {
            json!({
                "id": n.id, "case_no": n.case_no,
                "title": lang.pick(&n.title_zh, &n.title_en),
                "body": lang.pick(&n.body_zh, &n.body_en),
                "created_at": n.created_at, "read_at": n.read_at,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// `?query_code=` of the public query.
#[derive(Debug, Deserialize)]
pub struct PublicQuery {
    query_code: Option<String>,
}

/// Wrong query codes allowed per case, and per client address, in each window.
const WRONG_CODES_PER_CASE: i64 = 5;
const WRONG_CODES_PER_CLIENT: i64 = 20;
const WRONG_CODE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The client address for rate limits: the peer, or, only when the gateway is
/// configured to sit behind a proxy it trusts, the last X-Forwarded-For hop (the one the
/// proxy added; earlier hops are whatever the client claimed).
fn client_of(headers: &HeaderMap, peer: Option<std::net::SocketAddr>, trust_proxy: bool) -> String {
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

/// `GET /api/v1/public/cases/{case_no}?query_code=`: status without login, no personal data.
pub async fn public_case(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    headers: HeaderMap,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    Path(case_no): Path<String>,
    Query(q): Query<PublicQuery>,
) -> AppResult<Response> {
    let client = client_of(
        &headers,
        Some(peer),
        app.settings.server.trust_forwarded_for,
    );
    let case_key = format!("rl:qc:case:{case_no}");
    let client_key = format!("rl:qc:client:{client}");
    let limited = || {
        let mut r = AppError::TooManyRequests(Message::new(
            "查询码错误次数过多，请15分钟后再试。",
            "Too many wrong query codes. Please try again in 15 minutes.",
        ))
        .into_response();
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("900"));
        r
    };
    // Refuse early when either budget is spent.
    for (k, max) in [
        (&case_key, WRONG_CODES_PER_CASE),
        (&client_key, WRONG_CODES_PER_CLIENT),
    ] {
        if app.cache.counter(k).await.map_err(anyhow::Error::from)? >= max {
            return Ok(limited());
        }
    }
    let code = q.query_code.unwrap_or_default();
    let c = app.store.case_by_no(&case_no).await?;
    let matches = c
        .as_ref()
        .is_some_and(|c| constant_time_eq(c.query_code.as_bytes(), code.trim().as_bytes()));
    let Some(c) = c.filter(|_| matches) else {
        let a = app
            .cache
            .incr(&case_key, WRONG_CODE_WINDOW)
            .await
            .map_err(anyhow::Error::from)?;
        let b = app
            .cache
            .incr(&client_key, WRONG_CODE_WINDOW)
            .await
            .map_err(anyhow::Error::from)?;
        if a > WRONG_CODES_PER_CASE || b > WRONG_CODES_PER_CLIENT {
            return Ok(limited());
        }
        // Unknown number and wrong code answer alike: no oracle for case numbers.
        return Err(AppError::NotFound(Message::new(
            "办件编号或查询码不正确。",
            "The case number or query code is not correct.",
        )));
    };
    let events = app.store.case_events(c.id).await?;
    let service = app.catalogue.service(&c.service_code);
    let status = crate::domain::case::CaseStatus::from_code(&c.status);
    Ok(Json(json!({
        "case_no": c.case_no,
        "service": service.map(|s| lang.pick(&s.name, &s.name_en).to_owned()),
        "department": app.catalogue.department(&c.department).map(|d| lang.pick(&d.name, &d.name_en).to_owned()),
        "status": status.map(|s| { let (zh, en) = s.labels(); json!({ "code": s.code(), "label": lang.pick(zh, en) }) }),
        "submitted_at": c.created_at,
        "deadline": cases::deadline_view(&app.calendar, &c, lang),
        "result": c.result,
        "timeline": cases::timeline(&events, lang, false),
    }))
    .into_response())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

/// Walk-in applicant at a window.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WalkInApplicant {
    kind: String,
    name: String,
    #[serde(default)]
    id_number: Option<String>,
    #[serde(default)]
    uscc: Option<String>,
    #[serde(default)]
    phone: Option<String>,
}

/// `POST /api/staff/v1/cases` body: window intake (一窗受理).
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeBody {
    service_code: String,
    applicant: WalkInApplicant,
    #[serde(default)]
    values: Map<String, Value>,
    #[serde(default)]
    materials: Vec<MaterialInput>,
}

fn clerk_actor(c: &Clerk) -> ActorRef {
    ActorRef {
        actor: Actor::Clerk,
        id: Some(c.user.session.account_id.to_string()),
        name: c.user.session.name.clone(),
        account: Some(c.user.session.account_id),
    }
}

/// `POST /api/staff/v1/cases`: a clerk registers a walk-in application.
pub async fn intake(
    State(app): State<AppState>,
    clerk: Clerk,
    headers: HeaderMap,
    AppJson(body): AppJson<IntakeBody>,
) -> AppResult<Response> {
    let raw = serde_json::to_value(&body).map_err(anyhow::Error::from)?;
    let service = find_service(&app, &body.service_code)?;
    if !clerk.departments.contains(&service.department) {
        return Err(AppError::Forbidden(Message::new(
            "本大厅不受理该部门的事项。",
            "This service hall does not take applications for that department.",
        )));
    }
    if !service.channels.contains(&Channel::Window) {
        return Err(AppError::Conflict(Message::new(
            "此事项不在窗口办理。",
            "This service is not handled at a window.",
        )));
    }
    let a = &body.applicant;
    let mut errors = Vec::new();
    let kind = match a.kind.as_str() {
        "person" if service.applicant_types.contains(&ApplicantType::Person) => AccountKind::Person,
        "enterprise" if service.applicant_types.contains(&ApplicantType::Enterprise) => {
            AccountKind::Enterprise
        }
        _ => {
            errors.push(FieldError {
                field: "applicant.kind".into(),
                message: Message::new(
                    "申请人类型与事项不符（person 或 enterprise）。",
                    "The applicant kind does not fit the service (person or enterprise).",
                ),
            });
            AccountKind::Person
        }
    };
    if a.name.trim().is_empty() || a.name.chars().count() > 100 {
        errors.push(FieldError {
            field: "applicant.name".into(),
            message: Message::new(
                "请填写申请人姓名或名称（不超过100字）。",
                "Give the applicant's name (at most 100 characters).",
            ),
        });
    }
    let id_number = match a.id_number.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => match ResidentId::parse(s) {
            Ok(id) => Some(id),
            Err(e) => {
                errors.push(FieldError {
                    field: "applicant.id_number".into(),
                    message: Message::new(
                        format!("身份证号有误：{}", e.message_zh()),
                        format!("Invalid resident ID number: {e}"),
                    ),
                });
                None
            }
        },
        None => {
            errors.push(FieldError {
                field: "applicant.id_number".into(),
                message: Message::new(
                    "请填写申请人（或经办人）的身份证号。",
                    "Give the applicant's (or agent's) resident ID number.",
                ),
            });
            None
        }
    };
    let uscc = match (kind, a.uscc.as_deref()) {
        (AccountKind::Enterprise, Some(u)) => match Uscc::parse(u) {
            Ok(u) => Some(u.as_str().to_owned()),
            Err(e) => {
                errors.push(FieldError {
                    field: "applicant.uscc".into(),
                    message: Message::new(
                        format!("统一社会信用代码有误：{}", e.message_zh()),
                        format!("Invalid unified social credit code: {e}"),
                    ),
                });
                None
            }
        },
        (AccountKind::Enterprise, None) => {
            errors.push(FieldError {
                field: "applicant.uscc".into(),
                message: Message::new(
                    "企业申请须填写统一社会信用代码。",
                    "An enterprise application needs the unified social credit code.",
                ),
            });
            None
        }
        _ => None,
    };
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let idem = idem_key(&headers, &clerk.user.session.account_id.to_string(), &raw)?;
    let sharing = crate::sharing::prefill::who_at_window(
        id_number.as_ref(),
        uscc.as_deref(),
        clerk.user.session.account_id,
        &clerk.user.session.name,
        &clerk.hall,
    );
    let (status, answer) = cases::lodge(
        &app,
        NewApplication {
            service,
            applicant: CaseApplicant {
                account_id: None,
                kind,
                name: a.name.trim().to_owned(),
                id_number,
                uscc,
                phone: a.phone.clone(),
            },
            channel: "window",
            intake: Some((clerk.user.session.account_id, clerk.hall.clone())),
            values: &body.values,
            materials: &body.materials,
            actor: clerk_actor(&clerk),
            idem,
            sharing: Some(sharing),
            snapshot_of: Some(clerk.user.session.account_id),
        },
    )
    .await?;
    Ok((status, Json(answer)).into_response())
}

/// A staff member's view: which role acts and which departments they cover.
struct Staff {
    actor: ActorRef,
    departments: Option<Vec<String>>,
}

fn staff_of(user: &CurrentUser) -> AppResult<Staff> {
    let s = &user.session;
    let base = |actor| ActorRef {
        actor,
        id: Some(s.account_id.to_string()),
        name: s.name.clone(),
        account: Some(s.account_id),
    };
    for r in &s.roles {
        match r {
            Role::DepartmentOfficer { department } => {
                return Ok(Staff {
                    actor: base(Actor::DepartmentOfficer),
                    departments: Some(vec![department.clone()]),
                });
            }
            Role::Clerk { departments, .. } => {
                return Ok(Staff {
                    actor: base(Actor::Clerk),
                    departments: Some(departments.clone()),
                });
            }
            Role::Operator => {
                return Ok(Staff {
                    actor: base(Actor::System),
                    departments: None,
                });
            }
            _ => {}
        }
    }
    Err(AppError::Forbidden(Message::new(
        "此功能仅供工作人员使用。",
        "Only staff can do this.",
    )))
}

/// Worklist filters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorklistQuery {
    status: Option<String>,
    service: Option<String>,
    department: Option<String>,
    /// Only cases due within this many days (by date).
    due_by: Option<chrono::NaiveDate>,
    page: Option<i64>,
    per_page: Option<i64>,
}

/// `GET /api/staff/v1/cases`: the worklist, limited to what the role covers.
pub async fn worklist(
    State(app): State<AppState>,
    user: CurrentUser,
    AcceptLang(lang): AcceptLang,
    q: Result<Query<WorklistQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Json<Value>> {
    let Query(q) = q.map_err(|e| {
        AppError::BadRequest(Message::new(
            format!("查询参数有误：{e}"),
            format!("Bad query parameters: {e}"),
        ))
    })?;
    let staff = staff_of(&user)?;
    let (page, per) = paging(&Page {
        page: q.page,
        per_page: q.per_page,
    })?;
    let statuses: Vec<String> = match q.status.as_deref() {
        Some(list) => {
            let mut v = Vec::new();
            for s in list.split(',').filter(|s| !s.is_empty()) {
                if crate::domain::case::CaseStatus::from_code(s).is_none() {
                    return Err(AppError::BadRequest(Message::new(
                        format!("未知的办件状态“{s}”。"),
                        format!("Unknown case status {s:?}."),
                    )));
                }
                v.push(s.to_owned());
            }
            v
        }
        None => Vec::new(),
    };
    let departments = match (staff.departments, q.department) {
        (Some(mine), Some(d)) => Some(mine.into_iter().filter(|m| *m == d).collect()),
        (Some(mine), None) => Some(mine),
        (None, Some(d)) => Some(vec![d]),
        (None, None) => None,
    };
    let (rows, total) = app
        .store
        .list_cases(&CaseFilter {
            departments,
            statuses,
            service: q.service,
            due_by: q.due_by,
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

async fn staff_case(app: &AppState, staff: &Staff, case_no: &str) -> AppResult<CaseRow> {
    let c = app.store.case_by_no(case_no).await?;
    match c {
        Some(c)
            if staff
                .departments
                .as_ref()
                .is_none_or(|d| d.contains(&c.department)) =>
        {
            Ok(c)
        }
        _ => Err(cases::not_found(case_no)),
    }
}

/// `GET /api/staff/v1/cases/{case_no}`.
pub async fn staff_get(
    State(app): State<AppState>,
    user: CurrentUser,
    AcceptLang(lang): AcceptLang,
    Path(case_no): Path<String>,
) -> AppResult<Json<Value>> {
    let staff = staff_of(&user)?;
    let c = staff_case(&app, &staff, &case_no).await?;
    let kind = match staff.actor.actor {
        Actor::Clerk => "clerk",
        Actor::DepartmentOfficer => "officer",
        _ => "operator",
    };
    let reader = crate::sharing::audit::Reader {
        kind,
        id: staff.actor.id.clone(),
        name: staff.actor.name.clone(),
    };
    crate::sharing::audit::case_read(
        &app,
        &c,
        &reader,
        crate::sharing::prefill::purpose::STAFF_CASE_VIEW,
    )
    .await?;
    Ok(Json(
        cases::full_view(&app, &c, lang, staff.actor.actor).await?,
    ))
}

/// Body of a staff step.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    action: String,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    materials: Vec<MaterialInput>,
}

/// `POST /api/staff/v1/cases/{case_no}/transitions`: accept, refuse, request correction,
/// review, suspend, resume, conclude (what the role and the state allow).
pub async fn staff_transition(
    State(app): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(case_no): Path<String>,
    AppJson(body): AppJson<TransitionBody>,
) -> AppResult<Response> {
    let staff = staff_of(&user)?;
    staff_case(&app, &staff, &case_no).await?;
    let action = parse_action(&body.action)?;
    let result: Option<ConclusionResult> = cases::parse_result(body.result.as_deref())?;
    let raw = json!({ "case_no": case_no, "body": body });
    let idem = idem_key(&headers, &user.session.account_id.to_string(), &raw)?;
    let req = StepRequest {
        action,
        result,
        note: body.note.clone(),
    };
    let (status, answer) =
        cases::step(&app, &case_no, &staff.actor, req, &body.materials, idem).await?;
    Ok((status, Json(answer)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

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
