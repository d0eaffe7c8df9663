//! The open-data site's JSON and file routes (`crate::open`):
//!
//! - public: the CKAN Action API read subset at `/api/3/action/{action}` (and
//!   `/api/action/{action}`, where `ckanapi` calls by default), GET or POST, in CKAN's
//!   envelope; DCAT at `/open/catalog.jsonld` and `/open/catalog.ttl`; each dataset's
//!   files at `/open/datasets/{id}/{file}` (`data.csv`, `data.json`, downloads counted;
//!   `datapackage.json`); data requests `GET|POST /api/open/v1/requests`;
//! - department officers: `GET|POST /api/staff/v1/open/datasets` (their department's),
//!   `POST /api/staff/v1/open/requests/{id}/answer`;
//! - operators: `GET|POST /api/ops/v1/open/datasets`, `GET …/datasets/{id}`,
//!   `POST …/datasets/{id}/publish|return|refresh`, `POST /api/ops/v1/open/requests/{id}/answer`.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::extract::{DepartmentOfficer, Operator};
use crate::http::cases::AppJson;
use crate::http::error::{AppError, AppResult, Message};
use crate::http::openapi::{Problem, RoleErrors};
use crate::http::path::Path;
use crate::open::check::OpenField;
use crate::open::{self, OpenDraftInput, OpenRequestInput, formats};
use crate::state::AppState;
use crate::store::open_data::{OpenDataset, OpenRequest};

/// Public routes.
pub fn public_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ckan_get, ckan_post))
        .routes(routes!(ckan_legacy_get, ckan_legacy_post))
        .routes(routes!(dcat_jsonld))
        .routes(routes!(dcat_turtle))
        .routes(routes!(dataset_file))
        .routes(routes!(list_requests, create_request))
}

/// Department-officer routes.
pub fn staff_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(staff_datasets, staff_draft))
        .routes(routes!(staff_answer))
}

/// Operator routes.
pub fn operator_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ops_datasets, ops_draft))
        .routes(routes!(ops_dataset))
        .routes(routes!(ops_publish))
        .routes(routes!(ops_return))
        .routes(routes!(ops_refresh))
        .routes(routes!(ops_answer))
}

// ---- views ------------------------------------------------------------------------

/// A dataset as the staff API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenDatasetView {
    /// Stable name.
    pub id: String,
    /// Chinese title.
    pub title_zh: String,
    /// English title.
    pub title_en: String,
    /// Chinese description.
    pub description_zh: String,
    /// English description.
    pub description_en: String,
    /// Topic code.
    pub topic: String,
    /// Publisher (USCC).
    pub department: String,
    /// Licence code.
    pub licence: String,
    /// Update cycle code.
    pub update_cycle: String,
    /// `catalogue`, `case_stats`, `figures` or `upload`.
    pub source: String,
    /// The catalogue resource it opens.
    pub resource_code: Option<String>,
    /// Fields.
    pub schema: Vec<OpenField>,
    /// Rows in the current file.
    pub row_count: i64,
    /// `draft`, `published` or `returned`.
    pub status: String,
    /// Why the operator returned it.
    pub return_reason: Option<String>,
    /// Drafted at.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub modified_at: DateTime<Utc>,
    /// Published at.
    pub published_at: Option<DateTime<Utc>>,
    /// File last made.
    pub refreshed_at: Option<DateTime<Utc>>,
    /// Downloads per format (`csv`, `json`).
    pub downloads: BTreeMap<String, i64>,
}

async fn view(app: &AppState, d: OpenDataset) -> AppResult<OpenDatasetView> {
    let downloads = app.store.downloads(&d.id).await?.into_iter().collect();
    Ok(OpenDatasetView {
        schema: formats::schema(&d),
        id: d.id,
        title_zh: d.title_zh,
        title_en: d.title_en,
        description_zh: d.description_zh,
        description_en: d.description_en,
        topic: d.topic,
        department: d.department,
        licence: d.licence,
        update_cycle: d.update_cycle,
        source: d.source,
        resource_code: d.resource_code,
        row_count: d.row_count,
        status: d.status,
        return_reason: d.return_reason,
        created_at: d.created_at,
        modified_at: d.modified_at,
        published_at: d.published_at,
        refreshed_at: d.refreshed_at,
        downloads,
    })
}

/// Datasets.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenDatasetList {
    /// The datasets, by title.
    pub items: Vec<OpenDatasetView>,
}

/// A data request as the public sees it (the contact address is never shown).
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenRequestView {
    /// Id.
    pub id: Uuid,
    /// What is wanted.
    pub title: String,
    /// What for.
    pub body: String,
    /// The department it is meant for (USCC).
    pub department: Option<String>,
    /// `open` or `answered`.
    pub status: String,
    /// The answer.
    pub answer: Option<String>,
    /// Who answered: a department's USCC or `operator`.
    pub answered_by: Option<String>,
    /// Filed at.
    pub created_at: DateTime<Utc>,
    /// Answered at.
    pub answered_at: Option<DateTime<Utc>>,
}

impl From<OpenRequest> for OpenRequestView {
    fn from(r: OpenRequest) -> Self {
        OpenRequestView {
            id: r.id,
            title: r.title,
            body: r.body,
            department: r.department,
            status: r.status,
            answer: r.answer,
            answered_by: r.answered_by,
            created_at: r.created_at,
            answered_at: r.answered_at,
        }
    }
}

/// Data requests, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenRequestList {
    /// The requests.
    pub items: Vec<OpenRequestView>,
}

/// An answer to a data request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OpenAnswerInput {
    /// The answer (up to 4000 characters).
    pub answer: String,
}

/// Why a draft is returned.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OpenReturnInput {
    /// The reason.
    pub reason: String,
}

/// Filter of the operator's list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OpenListQuery {
    /// One status: draft, published, returned.
    pub status: Option<String>,
}

fn parse_request_id(id: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| {
        AppError::NotFound(Message::new("没有这条数据需求。", "No such data request."))
    })
}

// ---- CKAN -------------------------------------------------------------------------

fn ckan_ok(app: &AppState, action: &str, result: Value) -> Response {
    let help = format!(
        "{}/api/3/action/help_show?name={action}",
        formats::base(&app.settings.server.public_url)
    );
    Json(json!({ "help": help, "success": true, "result": result })).into_response()
}

fn ckan_err(
    app: &AppState,
    action: &str,
    status: StatusCode,
    kind: &str,
    message: &str,
) -> Response {
    let help = format!(
        "{}/api/3/action/help_show?name={action}",
        formats::base(&app.settings.server.public_url)
    );
    (
        status,
        Json(json!({
            "help": help,
            "success": false,
            "error": { "__type": kind, "message": format!("{kind}: {message}") },
        })),
    )
        .into_response()
}

fn param(p: &HashMap<String, Value>, k: &str) -> Option<String> {
    match p.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        v => Some(v.to_string()),
    }
}

fn int_param(p: &HashMap<String, Value>, k: &str) -> Result<Option<i64>, String> {
    match param(p, k) {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("{k}: Invalid integer")),
    }
}

async fn ckan(app: AppState, action: String, params: HashMap<String, Value>) -> Response {
    match ckan_action(&app, &action, &params).await {
        Ok(result) => ckan_ok(&app, &action, result),
        Err(CkanError::NotFound(m)) => {
            ckan_err(&app, &action, StatusCode::NOT_FOUND, "Not Found Error", &m)
        }
        Err(CkanError::Validation(m)) => {
            ckan_err(&app, &action, StatusCode::CONFLICT, "Validation Error", &m)
        }
        Err(CkanError::Search(m)) => ckan_err(
            &app,
            &action,
            StatusCode::CONFLICT,
            "Search Query Error",
            &m,
        ),
        Err(CkanError::BadAction) => ckan_err(
            &app,
            &action,
            StatusCode::BAD_REQUEST,
            "Bad request",
            &format!("Action name not known: {action}"),
        ),
        Err(CkanError::Internal(e)) => {
            tracing::error!(error = %e, "ckan action failed");
            ckan_err(
                &app,
                &action,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                "internal error",
            )
        }
    }
}

enum CkanError {
    NotFound(String),
    Validation(String),
    Search(String),
    BadAction,
    Internal(String),
}

impl From<crate::store::StoreError> for CkanError {
    fn from(e: crate::store::StoreError) -> Self {
        CkanError::Internal(e.to_string())
    }
}

async fn ckan_action(
    app: &AppState,
    action: &str,
    p: &HashMap<String, Value>,
) -> Result<Value, CkanError> {
    let base = formats::base(&app.settings.server.public_url);
    let published = || app.store.datasets(Some("published"), None);
    let dept = |u: &str| app.catalogue.department(u);
    match action {
        "package_list" => {
            let limit = int_param(p, "limit").map_err(CkanError::Validation)?;
            let offset = int_param(p, "offset")
                .map_err(CkanError::Validation)?
                .unwrap_or(0);
            let mut names: Vec<String> = published().await?.into_iter().map(|d| d.id).collect();
            names.sort();
            let names = names
                .into_iter()
                .skip(usize::try_from(offset.max(0)).unwrap_or(0));
            Ok(match limit {
                Some(l) => json!(
                    names
                        .take(usize::try_from(l.max(0)).unwrap_or(0))
                        .collect::<Vec<_>>()
                ),
                None => json!(names.collect::<Vec<_>>()),
            })
        }
        "package_show" => {
            let id = param(p, "id")
                .or_else(|| param(p, "name"))
                .ok_or_else(|| CkanError::Validation("id: Missing value".into()))?;
            match app.store.dataset(&id).await? {
                Some(d) if d.status == "published" => {
                    Ok(formats::ckan_package(&base, &d, dept(&d.department)))
                }
                _ => Err(CkanError::NotFound("Dataset not found".into())),
            }
        }
        "resource_show" => {
            let id =
                param(p, "id").ok_or_else(|| CkanError::Validation("id: Missing value".into()))?;
            let found = id
                .rsplit_once('-')
                .filter(|(_, f)| formats::FORMATS.contains(f));
            let Some((ds, f)) = found else {
                return Err(CkanError::NotFound("Resource was not found.".into()));
            };
            match app.store.dataset(ds).await? {
                Some(d) if d.status == "published" => Ok(formats::ckan_resource(&base, &d, f)),
                _ => Err(CkanError::NotFound("Resource was not found.".into())),
            }
        }
        "package_search" => {
            let rows = int_param(p, "rows")
                .map_err(CkanError::Validation)?
                .unwrap_or(10);
            let start = int_param(p, "start")
                .map_err(CkanError::Validation)?
                .unwrap_or(0);
            if !(0..=1000).contains(&rows) || start < 0 {
                return Err(CkanError::Validation(
                    "rows: must be 0–1000, start ≥ 0".into(),
                ));
            }
            let q = param(p, "q").unwrap_or_default();
            let fq = formats::parse_fq(&param(p, "fq").unwrap_or_default())
                .map_err(CkanError::Search)?;
            let hits: Vec<OpenDataset> = published()
                .await?
                .into_iter()
                .filter(|d| formats::matches(d, dept(&d.department), &q, &fq))
                .collect();
            let results: Vec<Value> = hits
                .iter()
                .skip(start as usize)
                .take(rows as usize)
                .map(|d| formats::ckan_package(&base, d, dept(&d.department)))
                .collect();
            Ok(json!({
                "count": hits.len(),
                "results": results,
                "sort": "score desc, metadata_modified desc",
                "facets": {},
                "search_facets": {},
            }))
        }
        "organization_list" => {
            let all = published().await?;
            let all_fields = param(p, "all_fields").is_some_and(|v| v == "true" || v == "True");
            let mut orgs: Vec<&str> = all.iter().map(|d| d.department.as_str()).collect();
            orgs.sort();
            orgs.dedup();
            Ok(Value::Array(
                orgs.into_iter()
                    .map(|u| {
                        if all_fields {
                            let n = all.iter().filter(|d| d.department == u).count();
                            match dept(u) {
                                Some(dp) => formats::ckan_organization(dp, n),
                                None => json!({ "name": formats::org_name(u) }),
                            }
                        } else {
                            json!(formats::org_name(u))
                        }
                    })
                    .collect(),
            ))
        }
        "status_show" => Ok(json!({
            "site_title": "公共数据开放网站",
            "site_url": base,
            "ckan_version": "2.10.0",
            "extensions": [],
        })),
        _ => Err(CkanError::BadAction),
    }
}

fn query_params(q: HashMap<String, String>) -> HashMap<String, Value> {
    q.into_iter().map(|(k, v)| (k, Value::String(v))).collect()
}

fn body_params(body: &Bytes) -> Result<HashMap<String, Value>, ()> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(HashMap::new());
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return serde_json::from_slice::<HashMap<String, Value>>(body).map_err(|_| ());
    }
    if std::str::from_utf8(body).is_err() {
        return Err(());
    }
    Ok(url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect())
}

async fn ckan_from_post(app: AppState, action: String, body: Bytes) -> Response {
    match body_params(&body) {
        Ok(p) => ckan(app, action, p).await,
        Err(()) => ckan_err(
            &app,
            &action,
            StatusCode::BAD_REQUEST,
            "Bad request",
            "the body is neither JSON nor a form",
        ),
    }
}

/// `GET /api/3/action/{action}`
#[utoipa::path(
    get,
    path = "/api/3/action/{action}",
    operation_id = "ckanActionGet",
    summary = "CKAN Action API (read subset)",
    description = "CKAN's Action API for the published datasets, so CKAN clients and \
        harvesters work unchanged: `package_list` (`limit`, `offset`), `package_show` (`id`), \
        `package_search` (`q`, `fq` with `organization:`, `tags:`, `res_format:`, `name:`, \
        `license_id:` terms, `rows` up to 1000, `start`), `organization_list` (`all_fields`), \
        `resource_show` (`id`, e.g. `service-catalogue-csv`), `status_show`. Answers are CKAN's \
        envelope `{help, success, result}`; errors have `success: false` and `error.__type` \
        (`Not Found Error` 404, `Validation Error` 409, `Search Query Error` 409, an unknown \
        action 400).",
    params(("action" = String, Path, description = "The action name.")),
    responses(
        (status = 200, description = "CKAN's envelope with the result.", body = Object),
        (status = 400, description = "Unknown action.", body = Object),
        (status = 404, description = "No such dataset or resource.", body = Object),
        (status = 409, description = "A parameter is missing or malformed.", body = Object),
    )
)]
pub async fn ckan_get(
    State(app): State<AppState>,
    Path(action): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    ckan(app, action, query_params(q)).await
}

/// `POST /api/3/action/{action}`
#[utoipa::path(
    post,
    path = "/api/3/action/{action}",
    operation_id = "ckanActionPost",
    summary = "CKAN Action API (read subset), parameters in a JSON body",
    description = "As the GET, with the parameters in a JSON object (or a form), as CKAN \
        clients such as `ckanapi` send them.",
    params(("action" = String, Path, description = "The action name.")),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "CKAN's envelope with the result.", body = Object),
        (status = 400, description = "Unknown action, or a body that is not JSON.", body = Object),
        (status = 404, description = "No such dataset or resource.", body = Object),
        (status = 409, description = "A parameter is missing or malformed.", body = Object),
    )
)]
pub async fn ckan_post(
    State(app): State<AppState>,
    Path(action): Path<String>,
    body: Bytes,
) -> Response {
    ckan_from_post(app, action, body).await
}

/// `GET /api/action/{action}`
#[utoipa::path(
    get,
    path = "/api/action/{action}",
    operation_id = "ckanActionGetUnversioned",
    summary = "CKAN Action API at its unversioned address",
    description = "The same as `/api/3/action/{action}`; CKAN serves both, and `ckanapi` calls this one.",
    params(("action" = String, Path, description = "The action name.")),
    responses(
        (status = 200, description = "CKAN's envelope with the result.", body = Object),
        (status = 400, description = "Unknown action.", body = Object),
        (status = 404, description = "No such dataset or resource.", body = Object),
        (status = 409, description = "A parameter is missing or malformed.", body = Object),
    )
)]
pub async fn ckan_legacy_get(
    State(app): State<AppState>,
    Path(action): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    ckan(app, action, query_params(q)).await
}

/// `POST /api/action/{action}`
#[utoipa::path(
    post,
    path = "/api/action/{action}",
    operation_id = "ckanActionPostUnversioned",
    summary = "CKAN Action API at its unversioned address, parameters in a JSON body",
    params(("action" = String, Path, description = "The action name.")),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "CKAN's envelope with the result.", body = Object),
        (status = 400, description = "Unknown action, or a body that is not JSON.", body = Object),
        (status = 404, description = "No such dataset or resource.", body = Object),
        (status = 409, description = "A parameter is missing or malformed.", body = Object),
    )
)]
pub async fn ckan_legacy_post(
    State(app): State<AppState>,
    Path(action): Path<String>,
    body: Bytes,
) -> Response {
    ckan_from_post(app, action, body).await
}

// ---- DCAT and files ---------------------------------------------------------------

async fn graph(app: &AppState) -> AppResult<Vec<formats::Triple>> {
    let published = app.store.datasets(Some("published"), None).await?;
    let base = formats::base(&app.settings.server.public_url);
    Ok(formats::dcat_graph(&base, &published, |u| {
        app.catalogue.department(u).cloned()
    }))
}

fn with_type(body: impl IntoResponse, media: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    r
}

/// `GET /open/catalog.jsonld`
#[utoipa::path(
    get,
    path = "/open/catalog.jsonld",
    operation_id = "openCatalogJsonLd",
    summary = "The open-data catalogue as DCAT, JSON-LD",
    description = "A `dcat:Catalog` with every published `dcat:Dataset` (titles and \
        descriptions in zh and en, publisher, issued, modified, licence, update frequency, \
        theme) and its `dcat:Distribution`s (CSV and JSON), for harvesters.",
    responses((status = 200, description = "The catalogue.", body = Object, content_type = "application/ld+json"))
)]
pub async fn dcat_jsonld(State(app): State<AppState>) -> AppResult<Response> {
    let g = graph(&app).await?;
    Ok(with_type(Json(formats::jsonld(&g)), "application/ld+json"))
}

/// `GET /open/catalog.ttl`
#[utoipa::path(
    get,
    path = "/open/catalog.ttl",
    operation_id = "openCatalogTurtle",
    summary = "The open-data catalogue as DCAT, Turtle",
    description = "The same graph as `/open/catalog.jsonld`, in Turtle.",
    responses((status = 200, description = "The catalogue.", body = String, content_type = "text/turtle"))
)]
pub async fn dcat_turtle(State(app): State<AppState>) -> AppResult<Response> {
    let g = graph(&app).await?;
    Ok(with_type(formats::turtle(&g), "text/turtle; charset=utf-8"))
}

/// `GET /open/datasets/{id}/{file}`
#[utoipa::path(
    get,
    path = "/open/datasets/{id}/{file}",
    operation_id = "openDatasetFile",
    summary = "A published dataset's file or data package",
    description = "`data.csv` (the file, UTF-8, header first), `data.json` (its rows as \
        objects, typed by the schema) or `datapackage.json` (the dataset as a Frictionless \
        Data Package: one tabular-data-resource with a table schema). Each download of \
        `data.csv` or `data.json` is counted.",
    params(
        ("id" = String, Path, description = "The dataset's name."),
        ("file" = String, Path, description = "`data.csv`, `data.json` or `datapackage.json`."),
    ),
    responses(
        (status = 200, description = "The file.", content(
            (String = "text/csv"),
            (serde_json::Value = "application/json"),
        )),
        (status = 404, description = "No such published dataset or file.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn dataset_file(
    State(app): State<AppState>,
    Path((id, file)): Path<(String, String)>,
) -> AppResult<Response> {
    let d = open::get_published(&app, &id).await?;
    let base = formats::base(&app.settings.server.public_url);
    let disposition = |name: &str| {
        HeaderValue::from_str(&format!("inline; filename=\"{}-{name}\"", d.id))
            .unwrap_or_else(|_| HeaderValue::from_static("inline"))
    };
    let mut r = match file.as_str() {
        "data.csv" => {
            app.store.count_download(&d.id, "csv").await?;
            let mut r = with_type(d.data_csv.clone(), "text/csv; charset=utf-8");
            r.headers_mut()
                .insert(header::CONTENT_DISPOSITION, disposition("data.csv"));
            r
        }
        "data.json" => {
            app.store.count_download(&d.id, "json").await?;
            let mut r = Json(formats::json_rows(&d)).into_response();
            r.headers_mut()
                .insert(header::CONTENT_DISPOSITION, disposition("data.json"));
            r
        }
        "datapackage.json" => Json(formats::datapackage(
            &base,
            &d,
            app.catalogue.department(&d.department),
        ))
        .into_response(),
        _ => {
            return Err(AppError::NotFound(Message::new(
                "没有这个文件。",
                "No such file.",
            )));
        }
    };
    // Open data: any site may fetch it.
    r.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(r)
}

// ---- data requests ----------------------------------------------------------------

/// `GET /api/open/v1/requests`
#[utoipa::path(
    get,
    path = "/api/open/v1/requests",
    operation_id = "listOpenDataRequests",
    summary = "Data requests from the public (数据需求), with their answers",
    responses((status = 200, description = "The latest 200 requests, newest first.", body = OpenRequestList))
)]
pub async fn list_requests(State(app): State<AppState>) -> AppResult<Json<OpenRequestList>> {
    let items = app.store.requests(200).await?;
    Ok(Json(OpenRequestList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// `POST /api/open/v1/requests`
#[utoipa::path(
    post,
    path = "/api/open/v1/requests",
    operation_id = "fileOpenDataRequest",
    summary = "File a data request (no login)",
    description = "What data is wanted and what for; a contact email is optional and \
        never shown publicly.",
    request_body = OpenRequestInput,
    responses(
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "Filed.", body = OpenRequestView),
        (status = 422, description = "A field is missing or malformed.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_request(
    State(app): State<AppState>,
    AppJson(input): AppJson<OpenRequestInput>,
) -> AppResult<Response> {
    let r = open::file_request(&app, input, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(OpenRequestView::from(r))).into_response())
}

// ---- staff ------------------------------------------------------------------------

async fn list_view(app: &AppState, list: Vec<OpenDataset>) -> AppResult<OpenDatasetList> {
    let mut items = Vec::with_capacity(list.len());
    for d in list {
        items.push(view(app, d).await?);
    }
    Ok(OpenDatasetList { items })
}

/// `GET /api/staff/v1/open/datasets`
#[utoipa::path(
    get,
    path = "/api/staff/v1/open/datasets",
    operation_id = "listOwnOpenDatasets",
    summary = "The officer's department's open datasets, any status",
    responses((status = 200, description = "The datasets.", body = OpenDatasetList), RoleErrors),
    security(("session" = []))
)]
pub async fn staff_datasets(
    State(app): State<AppState>,
    o: DepartmentOfficer,
) -> AppResult<Json<OpenDatasetList>> {
    let list = app.store.datasets(None, Some(&o.department)).await?;
    Ok(Json(list_view(&app, list).await?))
}

/// `POST /api/staff/v1/open/datasets`
#[utoipa::path(
    post,
    path = "/api/staff/v1/open/datasets",
    operation_id = "draftOpenDataset",
    summary = "Draft an open dataset for the officer's department",
    description = "Metadata, and for `source: upload` a schema and a CSV file. The file is \
        checked now: a column holding resident ID numbers, mobile numbers or personal names \
        is refused with the column named (`errors[].field` is `csv.<column>`), and so is a \
        file that does not match its schema. A dataset opening a catalogue resource that is \
        不予开放 is refused. The operator publishes it.",
    request_body = OpenDraftInput,
    responses(
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "Drafted.", body = OpenDatasetView),
        RoleErrors,
        (status = 409, description = "A published or another department's dataset has this name.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Metadata or file refused.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_draft(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    AppJson(input): AppJson<OpenDraftInput>,
) -> AppResult<Response> {
    let by = o.user.session.account_id.to_string();
    let d = open::draft(&app, &o.department, &by, input, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(view(&app, d).await?)).into_response())
}

/// `POST /api/staff/v1/open/requests/{id}/answer`
#[utoipa::path(
    post,
    path = "/api/staff/v1/open/requests/{id}/answer",
    operation_id = "answerOpenDataRequestAsOfficer",
    summary = "Answer a data request meant for the officer's department (or for none)",
    params(("id" = String, Path, description = "The request's id.")),
    request_body = OpenAnswerInput,
    responses(
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Answered.", body = OpenRequestView),
        RoleErrors,
        (status = 404, description = "No such request.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No answer.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_answer(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    Path(id): Path<String>,
    AppJson(input): AppJson<OpenAnswerInput>,
) -> AppResult<Json<OpenRequestView>> {
    let id = parse_request_id(&id)?;
    let r = open::answer_request(&app, id, &input.answer, &o.department, Utc::now()).await?;
    Ok(Json(r.into()))
}

// ---- operators --------------------------------------------------------------------

/// `GET /api/ops/v1/open/datasets`
#[utoipa::path(
    get,
    path = "/api/ops/v1/open/datasets",
    operation_id = "listOpenDatasets",
    summary = "Every open dataset, any status",
    params(OpenListQuery),
    responses((status = 200, description = "The datasets.", body = OpenDatasetList), RoleErrors),
    security(("session" = []))
)]
pub async fn ops_datasets(
    State(app): State<AppState>,
    _op: Operator,
    Query(q): Query<OpenListQuery>,
) -> AppResult<Json<OpenDatasetList>> {
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    let list = app.store.datasets(status, None).await?;
    Ok(Json(list_view(&app, list).await?))
}

/// `POST /api/ops/v1/open/datasets`
#[utoipa::path(
    post,
    path = "/api/ops/v1/open/datasets",
    operation_id = "draftOpenDatasetForDepartment",
    summary = "Draft an open dataset for a department (`department` required)",
    request_body = OpenDraftInput,
    responses(
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "Drafted.", body = OpenDatasetView),
        RoleErrors,
        (status = 409, description = "A published or another department's dataset has this name.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Metadata or file refused.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_draft(
    State(app): State<AppState>,
    op: Operator,
    AppJson(input): AppJson<OpenDraftInput>,
) -> AppResult<Response> {
    let dept = input.department.clone().unwrap_or_default();
    let by = op.0.session.account_id.to_string();
    let d = open::draft(&app, &dept, &by, input, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(view(&app, d).await?)).into_response())
}

/// `GET /api/ops/v1/open/datasets/{id}`
#[utoipa::path(
    get,
    path = "/api/ops/v1/open/datasets/{id}",
    operation_id = "getOpenDataset",
    summary = "One open dataset, any status, with its downloads",
    params(("id" = String, Path, description = "The dataset's name.")),
    responses(
        (status = 200, description = "The dataset.", body = OpenDatasetView),
        RoleErrors,
        (status = 404, description = "No such dataset.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_dataset(
    State(app): State<AppState>,
    _op: Operator,
    Path(id): Path<String>,
) -> AppResult<Json<OpenDatasetView>> {
    let d = open::get(&app, &id).await?;
    Ok(Json(view(&app, d).await?))
}

/// `POST /api/ops/v1/open/datasets/{id}/publish`
#[utoipa::path(
    post,
    path = "/api/ops/v1/open/datasets/{id}/publish",
    operation_id = "publishOpenDataset",
    summary = "Publish a draft",
    description = "Checks the resource's open attribute again, regenerates a generated file \
        and checks the file again; then the dataset is public.",
    params(("id" = String, Path, description = "The dataset's name.")),
    responses(
        (status = 200, description = "Published.", body = OpenDatasetView),
        RoleErrors,
        (status = 404, description = "No such dataset.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a draft.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The file or the resource refused.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_publish(
    State(app): State<AppState>,
    _op: Operator,
    Path(id): Path<String>,
) -> AppResult<Json<OpenDatasetView>> {
    let d = open::publish(&app, &id, Utc::now()).await?;
    Ok(Json(view(&app, d).await?))
}

/// `POST /api/ops/v1/open/datasets/{id}/return`
#[utoipa::path(
    post,
    path = "/api/ops/v1/open/datasets/{id}/return",
    operation_id = "returnOpenDataset",
    summary = "Return a draft to its department with a reason",
    params(("id" = String, Path, description = "The dataset's name.")),
    request_body = OpenReturnInput,
    responses(
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Returned.", body = OpenDatasetView),
        RoleErrors,
        (status = 404, description = "No such dataset.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a draft.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_return(
    State(app): State<AppState>,
    _op: Operator,
    Path(id): Path<String>,
    AppJson(input): AppJson<OpenReturnInput>,
) -> AppResult<Json<OpenDatasetView>> {
    let d = open::return_draft(&app, &id, &input.reason, Utc::now()).await?;
    Ok(Json(view(&app, d).await?))
}

/// `POST /api/ops/v1/open/datasets/{id}/refresh`
#[utoipa::path(
    post,
    path = "/api/ops/v1/open/datasets/{id}/refresh",
    operation_id = "refreshOpenDataset",
    summary = "Regenerate a published generated dataset's file now",
    params(("id" = String, Path, description = "The dataset's name.")),
    responses(
        (status = 200, description = "Regenerated.", body = OpenDatasetView),
        RoleErrors,
        (status = 404, description = "No such published dataset.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An uploaded dataset.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_refresh(
    State(app): State<AppState>,
    _op: Operator,
    Path(id): Path<String>,
) -> AppResult<Json<OpenDatasetView>> {
    let d = open::refresh(&app, &id, Utc::now()).await?;
    Ok(Json(view(&app, d).await?))
}

/// `POST /api/ops/v1/open/requests/{id}/answer`
#[utoipa::path(
    post,
    path = "/api/ops/v1/open/requests/{id}/answer",
    operation_id = "answerOpenDataRequest",
    summary = "Answer any data request",
    params(("id" = String, Path, description = "The request's id.")),
    request_body = OpenAnswerInput,
    responses(
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "Answered.", body = OpenRequestView),
        RoleErrors,
        (status = 404, description = "No such request.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No answer.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_answer(
    State(app): State<AppState>,
    _op: Operator,
    Path(id): Path<String>,
    AppJson(input): AppJson<OpenAnswerInput>,
) -> AppResult<Json<OpenRequestView>> {
    let id = parse_request_id(&id)?;
    let r = open::answer_request(&app, id, &input.answer, "operator", Utc::now()).await?;
    Ok(Json(r.into()))
}
