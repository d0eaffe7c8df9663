//! Catalogue management routes (政务信息资源目录): the providing department's resources
//! and their versions (`/api/staff/v1/catalogue/…`), the operator's pending versions with
//! their comparison, publication and return (`/api/ops/v1/catalogue/…`), and the public
//! search and 资源清单 export (`/api/v1/catalogue/search`, `/api/v1/catalogue/inventory.csv`).
//! The pages are in `catalogue_mgmt_pages.rs`; the rules in `usecases::catalogue_mgmt`.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AcceptLang;
use super::cases::AppJson;
use super::error::{AppError, AppResult, FieldError, Message};
use super::openapi::{Problem, RoleErrors};
use crate::auth::extract::{DepartmentOfficer, Operator};
use crate::domain::catalogue::{
    DataItem, DataType, OpenAttribute, Resource, ShareType, Subject, UpdateCycle,
};
use crate::domain::catalogue_edit::{self, Search};
use crate::domain::lang::Lang;
use crate::http::path::Path;
use crate::state::AppState;
use crate::store::{CatalogueEntry, ResourceVersion};
use crate::usecases::catalogue_mgmt::{self as mgmt, Author, Draft};

/// Department-officer routes.
pub fn staff_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(staff_list, staff_propose))
        .routes(routes!(staff_resource, staff_edit))
        .routes(routes!(staff_version))
}

/// Operator routes.
pub fn operator_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ops_pending))
        .routes(routes!(ops_version))
        .routes(routes!(ops_publish))
        .routes(routes!(ops_return))
}

/// Public routes.
pub fn public_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(inventory))
}

/// A data item as a department writes it.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatItemInput {
    /// Item id, the part after the dot in a binding (lower-case letters, digits, `_`).
    pub id: String,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// The kind of value.
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Reading it is a read of personal data.
    #[serde(default)]
    pub personal: bool,
    /// An authoritative value.
    #[serde(default)]
    pub authoritative: bool,
    /// Whose data, when it differs from the resource's.
    #[serde(default)]
    pub subject: Option<Subject>,
}

/// A resource as a department writes it: a new version of one of its resources, or a
/// proposal of a new one (then with `code`).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatResourceInput {
    /// The new resource's code (proposals only; ignored on an edit).
    #[serde(default)]
    pub code: Option<String>,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// The sharing class.
    pub share_type: ShareType,
    /// Conditions of sharing (Chinese); required when conditional.
    #[serde(default)]
    pub conditions: Option<String>,
    /// Conditions of sharing (English).
    #[serde(default)]
    pub conditions_en: Option<String>,
    /// The open attribute (开放属性): `open`, `conditional_open` or `not_open`.
    #[schema(value_type = String, example = "not_open")]
    pub open: OpenAttribute,
    /// How often the provider refreshes it.
    pub update_cycle: UpdateCycle,
    /// Whose data it holds (`person` when unsaid).
    #[serde(default)]
    pub subject: Subject,
    /// The data items.
    pub items: Vec<CatItemInput>,
    /// The information system (of the department's) that holds it.
    #[serde(default)]
    pub system_id: Option<String>,
    /// A note on the change, for the operator.
    #[serde(default)]
    pub note: Option<String>,
}

impl CatResourceInput {
    /// The use case's draft; a malformed system id is a field error.
    pub fn draft(&self) -> Result<Draft, AppError> {
        let system_id = match self.system_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(Uuid::parse_str(s).map_err(|_| {
                AppError::Invalid(vec![FieldError {
                    field: "system_id".into(),
                    message: Message::new("信息系统编号无效。", "The system id is not valid."),
                }])
            })?),
        };
        Ok(Draft {
            name: self.name.clone(),
            name_en: self.name_en.clone(),
            share_type: self.share_type,
            conditions: self.conditions.clone(),
            conditions_en: self.conditions_en.clone(),
            open: self.open,
            update_cycle: self.update_cycle,
            subject: self.subject,
            items: self
                .items
                .iter()
                .map(|i| DataItem {
                    id: i.id.clone(),
                    name: i.name.clone(),
                    name_en: i.name_en.clone(),
                    data_type: i.data_type,
                    personal: i.personal,
                    authoritative: i.authoritative,
                    subject: i.subject,
                })
                .collect(),
            system_id,
            note: self.note.clone().unwrap_or_default(),
        })
    }
}

/// One version of a resource.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatVersionView {
    /// The resource code.
    pub code: String,
    /// The version number (1, 2, …).
    pub version: i64,
    /// `pending`, `published`, `returned` or `withdrawn` (replaced by a later edit
    /// before it was decided).
    pub status: String,
    /// Whether this is the live version.
    pub live: bool,
    /// The author's note.
    pub note: String,
    /// Who wrote it (`import` for the initial import).
    pub author_name: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The operator who published or returned it.
    pub decided_name: Option<String>,
    /// When.
    pub decided_at: Option<DateTime<Utc>>,
    /// The operator's comment on return.
    pub comment: Option<String>,
    /// The information system that holds it.
    pub system_id: Option<Uuid>,
    /// The resource as this version has it (the catalogue's resource document: code,
    /// names, provider, share_type, conditions, open, update_cycle, subject, access,
    /// grants, items).
    #[schema(value_type = Object)]
    pub resource: Value,
}

fn version_view(v: &ResourceVersion, live: Option<i64>) -> CatVersionView {
    CatVersionView {
        code: v.code.clone(),
        version: v.version,
        status: v.status.clone(),
        live: live == Some(v.version),
        note: v.note.clone(),
        author_name: v.author_name.clone(),
        created_at: v.created_at,
        decided_name: v.decided_name.clone(),
        decided_at: v.decided_at,
        comment: v.comment.clone(),
        system_id: v.system_id,
        resource: serde_json::to_value(&v.body).unwrap_or_default(),
    }
}

/// A resource of the managed catalogue and where its versions stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatEntryView {
    /// The resource code.
    pub code: String,
    /// Its name (of the newest version).
    pub name: String,
    /// The providing department (USCC).
    pub provider: String,
    /// The live version; `null` for a proposal not yet published.
    pub published_version: Option<i64>,
    /// The newest version.
    pub latest_version: i64,
    /// The newest version's status.
    pub latest_status: String,
}

/// The department's resources.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatEntryList {
    /// The resources, by code.
    pub resources: Vec<CatEntryView>,
}

pub(crate) async fn entries(
    app: &AppState,
    department: Option<&str>,
    lang: Lang,
) -> AppResult<Vec<(CatalogueEntry, CatEntryView)>> {
    let list = app.store.catalogue_entries(department).await?;
    let mut out = Vec::new();
    for e in list {
        let name = app
            .store
            .resource_version(&e.code, e.latest_version)
            .await?
            .map(|v| lang.pick(&v.body.name, &v.body.name_en).to_owned())
            .unwrap_or_default();
        out.push((
            e.clone(),
            CatEntryView {
                code: e.code,
                name,
                provider: e.provider,
                published_version: e.published_version,
                latest_version: e.latest_version,
                latest_status: e.latest_status,
            },
        ));
    }
    Ok(out)
}

/// `GET /api/staff/v1/catalogue/resources`
#[utoipa::path(
    get,
    path = "/api/staff/v1/catalogue/resources",
    operation_id = "catMgmtListOwn",
    summary = "The officer's department's resources (政务信息资源目录) and their versions' state",
    responses(
        (status = 200, description = "The resources.", body = CatEntryList),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn staff_list(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    AcceptLang(lang): AcceptLang,
) -> AppResult<Json<CatEntryList>> {
    let resources = entries(&app, Some(&o.department), lang)
        .await?
        .into_iter()
        .map(|e| e.1)
        .collect();
    Ok(Json(CatEntryList { resources }))
}

fn author(o: &DepartmentOfficer) -> (String, String) {
    (
        o.user.session.account_id.to_string(),
        o.user.session.name.clone(),
    )
}

/// `POST /api/staff/v1/catalogue/resources`
#[utoipa::path(
    post,
    path = "/api/staff/v1/catalogue/resources",
    operation_id = "catMgmtPropose",
    summary = "Propose a new resource (pending until the operator publishes it)",
    request_body(content = CatResourceInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Proposed: version 1, pending.", body = CatVersionView),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 422, description = "Every problem of the proposal, each at its field (a taken code too).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_propose(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    AppJson(body): AppJson<CatResourceInput>,
) -> AppResult<Response> {
    let draft = body.draft()?;
    let (id, name) = author(&o);
    let code = body.code.clone().unwrap_or_default();
    let v = mgmt::propose(
        &app,
        &o.department,
        Author {
            id: &id,
            name: &name,
        },
        &code,
        &draft,
        Utc::now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(version_view(&v, None))).into_response())
}

/// A resource's versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatHistory {
    /// The resource code.
    pub code: String,
    /// The live version; `null` when none is published yet.
    pub published_version: Option<i64>,
    /// Every version, newest first.
    pub versions: Vec<CatVersionView>,
}

async fn history(app: &AppState, department: Option<&str>, code: &str) -> AppResult<CatHistory> {
    let versions = mgmt::versions_of(app, department, code).await?;
    let live = versions
        .iter()
        .filter(|v| v.status == "published")
        .map(|v| v.version)
        .max();
    let live = match live {
        Some(_) => mgmt::published_of(app, code).await?.map(|p| p.version),
        None => None,
    };
    Ok(CatHistory {
        code: code.to_owned(),
        published_version: live,
        versions: versions.iter().map(|v| version_view(v, live)).collect(),
    })
}

/// `GET /api/staff/v1/catalogue/resources/{code}`
#[utoipa::path(
    get,
    path = "/api/staff/v1/catalogue/resources/{code}",
    operation_id = "catMgmtHistory",
    summary = "One of the department's resources with every version (newest first)",
    params(("code" = String, Path, description = "The resource code.")),
    responses(
        (status = 200, description = "The versions.", body = CatHistory),
        RoleErrors,
        (status = 404, description = "No such resource.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_resource(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    Path(code): Path<String>,
) -> AppResult<Json<CatHistory>> {
    Ok(Json(history(&app, Some(&o.department), &code).await?))
}

/// `POST /api/staff/v1/catalogue/resources/{code}`
#[utoipa::path(
    post,
    path = "/api/staff/v1/catalogue/resources/{code}",
    operation_id = "catMgmtEdit",
    summary = "Write a new version of one of the department's resources",
    description = "The version is pending until the operator publishes it; a pending \
        version before it is withdrawn. Refused (422, every problem at its field) when it \
        removes or retypes an item a service binds, or stops sharing the resource with a \
        service that binds it (the services are named); 403 for a resource another \
        department provides.",
    params(("code" = String, Path, description = "The resource code.")),
    request_body(content = CatResourceInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Written, pending.", body = CatVersionView),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such resource.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Changed concurrently.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every problem of the edit, each at its field.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_edit(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    Path(code): Path<String>,
    AppJson(body): AppJson<CatResourceInput>,
) -> AppResult<Response> {
    let draft = body.draft()?;
    let (id, name) = author(&o);
    let v = mgmt::edit(
        &app,
        &o.department,
        Author {
            id: &id,
            name: &name,
        },
        &code,
        &draft,
        Utc::now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(version_view(&v, None))).into_response())
}

/// One version compared with the live one.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatVersionDetail {
    /// The version.
    #[serde(flatten)]
    pub version: CatVersionView,
    /// The live version it is compared with; `null` when none is published.
    pub published_version: Option<i64>,
    /// What it changes of the live version.
    pub changes: Vec<CatChange>,
}

/// One difference from the live version.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatChange {
    /// A field name, or `items.<id>` for a data item.
    pub field: String,
    /// `added`, `removed` or `changed`.
    pub kind: &'static str,
    /// The live value (empty when added).
    pub before: String,
    /// This version's value (empty when removed).
    pub after: String,
}

pub(crate) async fn detail(
    app: &AppState,
    department: Option<&str>,
    code: &str,
    version: &str,
) -> AppResult<CatVersionDetail> {
    let versions = mgmt::versions_of(app, department, code).await?;
    let Some(v) = version
        .parse::<i64>()
        .ok()
        .and_then(|n| versions.iter().find(|v| v.version == n))
    else {
        return Err(AppError::NotFound(Message::new(
            format!("资源 {code} 没有这个版本。"),
            format!("The resource {code} has no such version."),
        )));
    };
    let live = mgmt::published_of(app, code).await?;
    let changes = catalogue_edit::diff(live.as_ref().map(|l| &l.body), &v.body)
        .into_iter()
        .map(|c| CatChange {
            field: c.field,
            kind: c.kind,
            before: c.before,
            after: c.after,
        })
        .collect();
    let live_no = live.as_ref().map(|l| l.version);
    Ok(CatVersionDetail {
        version: version_view(v, live_no),
        published_version: live_no,
        changes,
    })
}

/// `GET /api/staff/v1/catalogue/resources/{code}/versions/{version}`
#[utoipa::path(
    get,
    path = "/api/staff/v1/catalogue/resources/{code}/versions/{version}",
    operation_id = "catMgmtStaffVersion",
    summary = "One version of a department's resource, compared with the live one",
    params(
        ("code" = String, Path, description = "The resource code."),
        ("version" = i64, Path, description = "The version number."),
    ),
    responses(
        (status = 200, description = "The version.", body = CatVersionDetail),
        RoleErrors,
        (status = 404, description = "No such resource or version.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn staff_version(
    State(app): State<AppState>,
    o: DepartmentOfficer,
    Path((code, version)): Path<(String, String)>,
) -> AppResult<Json<CatVersionDetail>> {
    Ok(Json(
        detail(&app, Some(&o.department), &code, &version).await?,
    ))
}

/// The versions waiting for the operator.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatPendingList {
    /// Pending versions, oldest first, each with what it changes.
    pub pending: Vec<CatVersionDetail>,
}

/// `GET /api/ops/v1/catalogue/pending`
#[utoipa::path(
    get,
    path = "/api/ops/v1/catalogue/pending",
    operation_id = "catMgmtPending",
    summary = "Resource versions waiting to be published, each compared with the live one",
    responses(
        (status = 200, description = "The pending versions.", body = CatPendingList),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn ops_pending(
    State(app): State<AppState>,
    _op: Operator,
) -> AppResult<Json<CatPendingList>> {
    let mut pending = Vec::new();
    for v in app.store.pending_versions().await? {
        pending.push(detail(&app, None, &v.code, &v.version.to_string()).await?);
    }
    Ok(Json(CatPendingList { pending }))
}

/// `GET /api/ops/v1/catalogue/resources/{code}/versions/{version}`
#[utoipa::path(
    get,
    path = "/api/ops/v1/catalogue/resources/{code}/versions/{version}",
    operation_id = "catMgmtOpsVersion",
    summary = "One version of any resource, compared with the live one",
    params(
        ("code" = String, Path, description = "The resource code."),
        ("version" = i64, Path, description = "The version number."),
    ),
    responses(
        (status = 200, description = "The version.", body = CatVersionDetail),
        RoleErrors,
        (status = 404, description = "No such resource or version.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_version(
    State(app): State<AppState>,
    _op: Operator,
    Path((code, version)): Path<(String, String)>,
) -> AppResult<Json<CatVersionDetail>> {
    Ok(Json(detail(&app, None, &code, &version).await?))
}

fn version_no(v: &str) -> AppResult<i64> {
    v.parse().map_err(|_| {
        AppError::NotFound(Message::new("没有这个版本。", "There is no such version."))
    })
}

/// `POST /api/ops/v1/catalogue/resources/{code}/versions/{version}/publish`
#[utoipa::path(
    post,
    path = "/api/ops/v1/catalogue/resources/{code}/versions/{version}/publish",
    operation_id = "catMgmtPublish",
    summary = "Publish a pending version: it becomes the live one",
    description = "Prefill, the sharing checks, `/catalogue` and the catalogue API serve it \
        at once on this instance and within `catalogue_refresh_secs` on the others.",
    params(
        ("code" = String, Path, description = "The resource code."),
        ("version" = i64, Path, description = "The version number."),
    ),
    responses(
        (status = 200, description = "Published.", body = CatVersionView),
        RoleErrors,
        (status = 404, description = "No such resource or version.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "It no longer fits the live catalogue.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_publish(
    State(app): State<AppState>,
    op: Operator,
    Path((code, version)): Path<(String, String)>,
) -> AppResult<Json<CatVersionView>> {
    let n = version_no(&version)?;
    let s = &op.0.session;
    let id = s.account_id.to_string();
    let v = mgmt::publish(
        &app,
        Author {
            id: &id,
            name: &s.name,
        },
        &code,
        n,
        Utc::now(),
    )
    .await?;
    Ok(Json(version_view(&v, Some(v.version))))
}

/// Why a version is returned.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatReturnInput {
    /// The comment for the department (required).
    pub comment: String,
}

/// `POST /api/ops/v1/catalogue/resources/{code}/versions/{version}/return`
#[utoipa::path(
    post,
    path = "/api/ops/v1/catalogue/resources/{code}/versions/{version}/return",
    operation_id = "catMgmtReturn",
    summary = "Return a pending version to its department with a comment",
    params(
        ("code" = String, Path, description = "The resource code."),
        ("version" = i64, Path, description = "The version number."),
    ),
    request_body(content = CatReturnInput, content_type = "application/json"),
    responses(
        (status = 200, description = "Returned.", body = CatVersionView),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No such resource or version.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No comment.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn ops_return(
    State(app): State<AppState>,
    op: Operator,
    Path((code, version)): Path<(String, String)>,
    AppJson(body): AppJson<CatReturnInput>,
) -> AppResult<Json<CatVersionView>> {
    let n = version_no(&version)?;
    let s = &op.0.session;
    let id = s.account_id.to_string();
    let v = mgmt::return_version(
        &app,
        Author {
            id: &id,
            name: &s.name,
        },
        &code,
        n,
        &body.comment,
        Utc::now(),
    )
    .await?;
    Ok(Json(version_view(&v, None)))
}

/// The public catalogue search.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatSearchQuery {
    /// Text in the code, names, conditions or a data item's id or names.
    pub q: Option<String>,
    /// The providing department (USCC).
    pub department: Option<String>,
    /// `unconditional`, `conditional` or `not_shared`.
    pub share_type: Option<String>,
    /// `open`, `conditional_open` or `not_open`.
    pub open: Option<String>,
}

impl CatSearchQuery {
    /// The domain search; an unknown code is a 400.
    pub fn search(&self) -> AppResult<Search> {
        fn parse<T: serde::de::DeserializeOwned>(
            v: &Option<String>,
            key: &str,
        ) -> AppResult<Option<T>> {
            match v.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(s) => serde_json::from_value(Value::String(s.to_owned()))
                    .map(Some)
                    .map_err(|_| {
                        AppError::BadRequest(Message::new(
                            format!("{key} 的取值无效。"),
                            format!("The value of {key} is not valid."),
                        ))
                    }),
            }
        }
        Ok(Search {
            q: self.q.clone(),
            department: self.department.clone().filter(|d| !d.trim().is_empty()),
            share_type: parse(&self.share_type, "share_type")?,
            open: parse(&self.open, "open")?,
        })
    }
}

/// A resource found by the search.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatSearchHit {
    /// The resource code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// The providing department (USCC).
    pub provider: String,
    /// The provider's name.
    pub provider_name: String,
    /// The sharing class.
    pub share_type: ShareType,
    /// The open attribute: `open`, `conditional_open` or `not_open`.
    pub open: &'static str,
    /// The update cycle.
    pub update_cycle: UpdateCycle,
    /// Its data items' names.
    pub items: Vec<String>,
}

/// The search's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatSearchResult {
    /// How many resources match.
    pub total: usize,
    /// The matching published resources, by code.
    pub resources: Vec<CatSearchHit>,
}

pub(crate) fn dept_name(app: &AppState, uscc: &str, lang: Lang) -> String {
    app.catalogue.department(uscc).map_or_else(
        || uscc.to_owned(),
        |d| lang.pick(&d.name, &d.name_en).to_owned(),
    )
}

/// `GET /api/v1/catalogue/search`
#[utoipa::path(
    get,
    path = "/api/v1/catalogue/search",
    operation_id = "catMgmtSearch",
    summary = "Search the published resource catalogue",
    description = "By text (code, names, conditions, data items), providing department, \
        sharing class and open attribute; every given criterion must hold.",
    params(CatSearchQuery),
    responses(
        (status = 200, description = "The matching resources.", body = CatSearchResult),
        (status = 400, description = "An unknown sharing class or open attribute.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn search(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    Query(q): Query<CatSearchQuery>,
) -> AppResult<Json<CatSearchResult>> {
    let s = q.search()?;
    let all = app.catalogue.resources();
    let resources: Vec<CatSearchHit> = all
        .iter()
        .filter(|r| s.matches(r))
        .map(|r| CatSearchHit {
            code: r.code.clone(),
            name: lang.pick(&r.name, &r.name_en).to_owned(),
            provider: r.provider.clone(),
            provider_name: dept_name(&app, &r.provider, lang),
            share_type: r.share_type,
            open: r.open.code(),
            update_cycle: r.update_cycle,
            items: r
                .items
                .iter()
                .map(|i| lang.pick(&i.name, &i.name_en).to_owned())
                .collect(),
        })
        .collect();
    Ok(Json(CatSearchResult {
        total: resources.len(),
        resources,
    }))
}

/// `GET /api/v1/catalogue/inventory.csv`
#[utoipa::path(
    get,
    path = "/api/v1/catalogue/inventory.csv",
    operation_id = "catMgmtInventory",
    summary = "The resource inventory (资源清单) as CSV: one row per data item",
    description = "The published resources the search criteria select (all without any), one \
        row per data item with the resource's columns; headers in the caller's language.",
    params(CatSearchQuery),
    responses(
        (status = 200, description = "The inventory.", body = String, content_type = "text/csv"),
        (status = 400, description = "An unknown sharing class or open attribute.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn inventory(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    Query(q): Query<CatSearchQuery>,
) -> AppResult<Response> {
    let s = q.search()?;
    let all = app.catalogue.resources();
    let picked: Vec<&Resource> = all.iter().filter(|r| s.matches(r)).map(|r| &**r).collect();
    let body =
        catalogue_edit::inventory_csv(&picked, lang == Lang::Zh, &|u| dept_name(&app, u, lang));
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"resource-inventory.csv\""),
    );
    Ok(resp)
}
