//! The OpenAPI 3.1 documents, drawn from the handlers' `#[utoipa::path]` attributes and
//! their typed answers by the router itself (`utoipa-axum`, see `super::api`):
//!
//! - `GET /api/openapi.json`: every JSON route the gateway serves, each operation tagged
//!   with the caller group it is registered in (public, citizen, staff, operator,
//!   department, probes).
//! - `GET /api/dept/v1/openapi.json`: the department group alone, with the department
//!   tags and the push contract in its description. It is generated from the same group
//!   function as the whole document, so the two cannot disagree about a department route.
//!
//! What stays written by hand here: the documents' texts; `Problem`, the schema of the
//! problem documents `error::Problem` renders; the schemas of domain and identity enums
//! (by the codes serde writes for them); and the CloudEvents envelope departments
//! receive, which `exchange::envelope` builds as JSON. Push delivery is not a path the
//! gateway serves, so its contract (headers, signature, retries) is in the department
//! document's description.
//!
//! Both documents are built once per process and are deterministic (every map in them
//! is ordered), so the snapshot test shows each change to them in review.

use std::borrow::Cow;
use std::sync::LazyLock;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::openapi::info::{Info, InfoBuilder, LicenseBuilder};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{OpenApi, OpenApiBuilder, RefOr, Tag};
use utoipa::{IntoResponses, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use super::cases::views::{
    ApplicantKind, CaseAction, CaseStatusCode, Channel, EvidenceDoc, ProvenanceDoc,
};
use crate::app::AppState;
use crate::auth::identity::{AccountKind, Audience};
use crate::domain::catalogue::{
    Access, DataType, FieldType, FileType, ShareType, Subject, UpdateCycle,
};

/// The errors section both documents share: what an error looks like and what to
/// branch on.
macro_rules! errors_section {
    () => {
        r#"## Errors 错误

Every error is an RFC 9457 problem document (`application/problem+json`, schema
`Problem`), in Chinese by default and in English with `Accept-Language: en`. Branch on
`type` (`urn:onewindow:problem:<slug>`), never on the text; quote `request_id` when you
ask for help.
"#
    };
}

/// The whole document's title.
pub const API_TITLE: &str = "onewindow API / 一网通办接口";

/// The whole document's introduction: who calls what, sessions, errors.
pub const API_DESCRIPTION: &str = concat!(
    r#"The JSON interface of the onewindow gateway (一网通办). Every operation is tagged
with the callers it serves:

| Tag | Caller | Authentication |
| --- | --- | --- |
| `public` | anyone | none |
| `citizen` | citizens and enterprise users | session cookie from `/auth/login` (security scheme `session`) |
| `staff` | window clerks and department officers | session cookie from `/auth/staff/login` |
| `operator` | operators | session cookie from `/auth/staff/login`, with the operator role |
| `department` | departments' back-end systems | `Authorization: Bearer owt_…` (security scheme `bearerAuth`) |
| `probes` | load balancers and monitoring | none |

## Sessions 会话

Logging in is an OpenID Connect redirect flow in the browser (`/auth/login`,
`/auth/staff/login`, `/auth/callback`, `/auth/logout`); those addresses and the HTML pages
are not part of this document. The login sets the `ow_session` cookie. A call that
changes something (`POST`, `PUT`, `DELETE`) with that cookie must come from the gateway's
own origin (`Origin` header) or, without `Origin`, carry the session's CSRF token in
`X-CSRF-Token` (`session.csrf_token` of `GET /api/v1/me`). No session answers **401**;
a session without the needed role answers **403**.

"#,
    errors_section!(),
    r#"
## Departments 部门

The department operations, with the event envelope and the push-delivery contract, are
also published on their own at `/api/dept/v1/openapi.json`.
"#
);

/// The department document's title.
pub const TITLE: &str = "onewindow department API / 部门接口";

/// The document's introduction: authentication, errors, and the push contract.
pub const DESCRIPTION: &str = concat!(
    r#"The interface between the onewindow gateway (一网通办) and the back-end systems of
the departments that process its cases. The integration guide
(`docs/department-integration.md`) explains it step by step; this document is the
authoritative reference for paths and shapes.

## Authentication 认证

Every path except `/.well-known/jwks.json` and this document needs an API token scoped to
one department, sent as `Authorization: Bearer owt_…` (security scheme `bearerAuth`).
An operator creates it on the gateway host with
`onewindow token create --department <USCC> --scope cases:read,cases:write,inbox,materials:read`;
the secret is printed once. Scopes:

| Scope | Allows |
| --- | --- |
| `cases:read` | reading your department's cases and services |
| `cases:write` | reporting processing steps (transitions) |
| `inbox` | leasing and acknowledging events from the pull inbox |
| `materials:read` | downloading application materials |
| `data:read` | reading shared data resources: 无条件 ones, and 有条件 ones under your systems' grants |

A missing, unknown, expired or revoked token answers **401** (with
`WWW-Authenticate: Bearer realm="onewindow-dept"`); a valid token without the needed scope
answers **403**. A case of another department answers **404**, like a case that does not
exist.

"#,
    errors_section!(),
    r#"
## Events 事件

Every change to a case routed to your department produces one CloudEvents 1.0 event
(schema `CloudEvent`; its `data` is schema `CaseEventData`), received either by push or
from the pull inbox (`GET /api/dept/v1/inbox`). Delivery is at least once:
**de-duplicate by the event `id`**. Events may arrive out of order; use `time`, and read
the current state from `GET /api/dept/v1/cases/{case_no}` when in doubt.

## Push delivery 推送

The gateway `POST`s each event to the department's HTTPS endpoint, body the event in
structured mode with `content-type: application/cloudevents+json`, signed per Standard
Webhooks with Ed25519:

| Header | Meaning |
| --- | --- |
| `webhook-id` | the event id (= CloudEvents `id`), the same on every retry |
| `webhook-timestamp` | unix seconds when this attempt was signed (every attempt is signed afresh) |
| `webhook-signature` | one or more space-separated `v1a,<base64 Ed25519 signature>` entries (two during a key rotation) |

The signed bytes are `{webhook-id}.{webhook-timestamp}.{body}`, the body byte for byte as
received. Verify with each key of `GET /.well-known/jwks.json` (OKP/Ed25519); accept
when any `v1a,` entry verifies with any key; refetch the JWKS once when none does. Refuse
timestamps more than 5 minutes from your clock.

Answer **2xx** only after the event is stored durably. Anything else (any other status, a
timeout after 10 s, a connection error) is retried with ±10 % jitter after about
5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (ten attempts over about three
days); then the event is dead-lettered and an operator can redeliver it.
"#
);

/// Who calls a group of routes. The router registers each route in one group, and the
/// whole document tags every operation with its group, so a reader finds what a citizen
/// (or a department, or an operator) may call by its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No login.
    Public,
    /// Citizens and enterprise users.
    Citizen,
    /// Window clerks and department officers.
    Staff,
    /// Operators.
    Operator,
    /// Departments' back-end systems, with an API token.
    Department,
    /// Load balancers and monitoring.
    Probes,
}

impl Caller {
    /// Every caller, in the order the document lists them.
    pub const ALL: [Caller; 6] = [
        Caller::Public,
        Caller::Citizen,
        Caller::Staff,
        Caller::Operator,
        Caller::Department,
        Caller::Probes,
    ];

    /// The operations' tag.
    pub fn tag(self) -> &'static str {
        match self {
            Caller::Public => "public",
            Caller::Citizen => "citizen",
            Caller::Staff => "staff",
            Caller::Operator => "operator",
            Caller::Department => "department",
            Caller::Probes => "probes",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Caller::Public => {
                "No login: the catalogue, service guides, prefill plans, eligibility, the public case query. 公开"
            }
            Caller::Citizen => {
                "Citizens and enterprise users logged in at `/auth/login`: applications, drafts, prefill, their data-access trail. 个人与企业"
            }
            Caller::Staff => {
                "Window clerks and department officers logged in at `/auth/staff/login`. 工作人员"
            }
            Caller::Operator => {
                "Operators: sharing figures, providers, data APIs, event delivery. 运维"
            }
            Caller::Department => {
                "Departments' back-end systems with an API token; also published alone at `/api/dept/v1/openapi.json`. 部门系统"
            }
            Caller::Probes => "Liveness, readiness and metrics. 探针",
        }
    }
}

/// The tags of the department document, by what a department does with them.
const DEPARTMENT_TAGS: [(&str, &str); 7] = [
    ("account", "The token and its department. 令牌与部门"),
    (
        "cases",
        "The status API: your cases and the steps you report. 办件状态",
    ),
    ("materials", "Application materials' files. 申请材料"),
    (
        "inbox",
        "The pull inbox: lease and acknowledge events. 拉取收件箱",
    ),
    ("keys", "The keys that sign pushed events. 签名公钥"),
    ("meta", "This document. 接口文档"),
    (
        "data",
        "Shared data: read a resource under its share type and your grants. 共享数据",
    ),
];

fn tags<'a>(list: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Vec<Tag>> {
    Some(
        list.into_iter()
            .map(|(name, description)| {
                TagBuilder::new()
                    .name(name)
                    .description(Some(description))
                    .build()
            })
            .collect(),
    )
}

fn bearer_scheme() -> SecurityScheme {
    SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("owt_…")
            .description(Some(
                "A department API token from `onewindow token create` \
                 (`Authorization: Bearer owt_…`). The scopes an operation needs are \
                 listed in its security requirement.",
            ))
            .build(),
    )
}

fn session_scheme() -> SecurityScheme {
    SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
        crate::auth::session::SESSION_COOKIE,
        "The session cookie a browser login sets (`/auth/login` for citizens and \
         enterprise users, `/auth/staff/login` for staff and operators). Changes also \
         need the gateway's `Origin` or the session's `X-CSRF-Token`.",
    )))
}

/// A document's title and text, with the gateway's version and licence.
fn info(title: &str, description: &str) -> Info {
    InfoBuilder::new()
        .title(title)
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(description))
        .license(Some(
            LicenseBuilder::new()
                .name(env!("CARGO_PKG_LICENSE"))
                .identifier(Some(env!("CARGO_PKG_LICENSE")))
                .build(),
        ))
        .build()
}

/// The whole document before any route is added: its texts, tags and security schemes.
/// `super::api` adds every route's operation to it.
pub(super) fn base() -> OpenApi {
    let mut doc = OpenApiBuilder::new()
        .info(info(API_TITLE, API_DESCRIPTION))
        .tags(tags(Caller::ALL.map(|c| (c.tag(), c.description()))))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme("bearerAuth", bearer_scheme());
    components.add_security_scheme("session", session_scheme());
    doc
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Tags every operation of a group with its caller (replacing the handler's own tags,
/// which serve the department document).
pub(super) fn for_caller(
    caller: Caller,
    mut group: OpenApiRouter<AppState>,
) -> OpenApiRouter<AppState> {
    for item in group.get_openapi_mut().paths.paths.values_mut() {
        for op in operations_mut(item) {
            op.tags = Some(vec![caller.tag().to_owned()]);
        }
    }
    group
}

/// Adds the answers given before any handler runs: the edge's (`super::edge`) 429 with
/// `Retry-After` on every rate-limited operation and 413 on every operation that takes a
/// body, and the path extractor's (`super::path`) 400 on every operation with a path
/// parameter that does not document one. Which operations are limited is asked of the
/// same classification the edge uses, so the document and the answers cannot drift apart.
pub(super) fn document_common_answers(doc: &mut OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let methods = [
            (axum::http::Method::GET, &mut item.get),
            (axum::http::Method::PUT, &mut item.put),
            (axum::http::Method::POST, &mut item.post),
            (axum::http::Method::DELETE, &mut item.delete),
            (axum::http::Method::PATCH, &mut item.patch),
        ];
        for (method, op) in methods {
            let Some(op) = op.as_mut() else { continue };
            let answers = &mut op.responses.responses;
            if super::edge::rate_limited(&method, path) {
                answers.entry("429".to_owned()).or_insert_with(|| {
                    ResponseBuilder::new()
                        .description(
                            "Too many calls of this kind from this caller: wait the \
                             `Retry-After` seconds.",
                        )
                        .header(
                            "Retry-After",
                            HeaderBuilder::new()
                                .schema(ObjectBuilder::new().schema_type(Type::Integer))
                                .description(Some("Seconds to wait before calling again."))
                                .build(),
                        )
                        .content("application/problem+json", problem())
                        .build()
                        .into()
                });
            }
            let path_params = op.parameters.as_ref().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Path)
            });
            if path_params {
                answers.entry("400".to_owned()).or_insert_with(|| {
                    ResponseBuilder::new()
                        .description(
                            "A path parameter that does not parse (a malformed UUID, a number \
                             out of range); the problem names the parameter.",
                        )
                        .content("application/problem+json", problem())
                        .build()
                        .into()
                });
            }
            if op.request_body.is_some() {
                answers.entry("413".to_owned()).or_insert_with(|| {
                    ResponseBuilder::new()
                        .description(
                            "The body is larger than this operation accepts (JSON at most \
                             `max_json_body_bytes`, 1 MB by default; uploads as the material \
                             allows).",
                        )
                        .content("application/problem+json", problem())
                        .build()
                        .into()
                });
            }
        }
    }
}

static API: LazyLock<OpenApi> = LazyLock::new(|| {
    let mut doc = super::api().into_openapi();
    document_common_answers(&mut doc);
    doc
});

static DEPARTMENT: LazyLock<OpenApi> = LazyLock::new(|| {
    let mut doc = super::department().into_openapi();
    doc.info = info(TITLE, DESCRIPTION);
    doc.tags = tags(DEPARTMENT_TAGS);
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme("bearerAuth", bearer_scheme());
    document_common_answers(&mut doc);
    doc
});

/// The whole API document, without servers (they depend on the deployment).
pub fn api_document() -> OpenApi {
    API.clone()
}

/// The department document, without servers.
pub fn department_document() -> OpenApi {
    DEPARTMENT.clone()
}

/// A document with this gateway's public URL as its server, cacheable for five minutes.
fn serve(doc: &OpenApi, public_url: &str) -> Response {
    let mut doc = doc.clone();
    doc.servers = Some(vec![Server::new(public_url.trim_end_matches('/'))]);
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(doc)).into_response()
}

/// `GET /api/openapi.json`: the whole document (no login needed).
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "apiDocument",
    summary = "This OpenAPI document",
    description = "The OpenAPI 3.1 document of every JSON route, tagged by caller. The \
        department routes are also published alone at `/api/dept/v1/openapi.json`.",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document.", body = Object, content_type = "application/json"),
    )
)]
pub async fn whole(State(app): State<AppState>) -> Response {
    serve(&API, app.settings.server.public_url.as_str())
}

/// `GET /api/dept/v1/openapi.json`: the department document (no token needed).
#[utoipa::path(
    get,
    path = "/api/dept/v1/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    summary = "This OpenAPI document",
    description = "The OpenAPI 3.1 document of the department API. No token is needed.",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document.", body = Object, content_type = "application/json"),
    )
)]
pub async fn department(State(app): State<AppState>) -> Response {
    serve(&DEPARTMENT, app.settings.server.public_url.as_str())
}

// ---- problem documents -------------------------------------------------------------------

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:onewindow:problem:forbidden",
    "title": "Forbidden",
    "status": 403,
    "detail": "This token lacks the cases:write scope.",
    "request_id": "0195a0c4-5f5e-7d2a-9a41-1f3c2b7d9e10"
}))]
pub struct Problem {
    /// Stable problem type, `urn:onewindow:problem:<slug>`: `bad-request`,
    /// `unauthorized`, `forbidden`, `not-found`, `conflict`, `invalid-input`,
    /// `unprocessable`, `unavailable`, `internal` …
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type, in the response's language.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// This occurrence, in the response's language.
    pub detail: String,
    /// The request id (also in the `x-request-id` header); quote it when asking for help.
    #[schema(required = false, nullable = false)]
    pub request_id: Option<String>,
    /// Per-field messages (`invalid-input` only).
    #[schema(required = false, nullable = false)]
    pub errors: Option<Vec<ProblemFieldError>>,
}

/// A message about one input field.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemFieldError {
    /// The field (`action`, `result`, `note` …).
    pub field: String,
    /// What is wrong, in the response's language.
    pub message: String,
}

// ---- errors shared by many operations ----------------------------------------------------

/// The errors of an operation that needs a login, whatever the role.
#[derive(IntoResponses)]
#[allow(dead_code)] // describes answers `AppError` renders; never built
pub enum LoginErrors {
    /// Not logged in, or the session has ended: log in at `/auth/login` (staff at
    /// `/auth/staff/login`).
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
}

/// The errors of an operation that needs a role (applicant, clerk, operator …).
#[derive(IntoResponses)]
#[allow(dead_code)] // describes answers `AppError` renders; never built
pub enum RoleErrors {
    /// Not logged in, or the session has ended: log in at `/auth/login` (staff at
    /// `/auth/staff/login`).
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// Logged in, but without the role this operation needs.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
}

// ---- enums of other layers, by the codes serde writes -----------------------------------

/// A string schema listing the codes serde writes for `variants`.
fn codes<T: Serialize>(variants: &[T], description: &str) -> RefOr<Schema> {
    let codes: Vec<String> = variants
        .iter()
        .filter_map(|v| match serde_json::to_value(v) {
            Ok(Value::String(s)) => Some(s),
            _ => None,
        })
        .collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes))
        .description(Some(description))
        .into()
}

/// Gives an enum of the domain or identity layer (which know nothing of OpenAPI) a schema:
/// the codes serde writes for its variants. The `match` stops compiling when a variant is
/// added, so the list cannot fall behind the type.
macro_rules! code_schema {
    ($($ty:ident: $description:literal { $($variant:ident),+ $(,)? })+) => {$(
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                fn _every_variant_is_listed(v: $ty) {
                    match v {
                        $($ty::$variant => {}),+
                    }
                }
                codes(&[$($ty::$variant),+], $description)
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($ty))
            }
        }
    )+};
}

code_schema! {
    ShareType: "The sharing class (国发〔2016〕51号): 无条件共享, 有条件共享 (only services named in \
        the grants), 不予共享." {
        Unconditional, Conditional, NotShared
    }
    UpdateCycle: "How often the provider refreshes the resource." {
        Realtime, Daily, Weekly, Monthly, Yearly
    }
    Access: "Where the gateway reads the resource: its own base library, or the providing \
        department's data API." {
        BaseLibrary, DepartmentApi
    }
    DataType: "The kind of value a data item holds." {
        Text, Date, Number, IdNumber, Uscc, Phone, Address, Code, Licence
    }
    Subject: "Whose data: a person's (keyed by resident ID number) or an enterprise's \
        (keyed by USCC)." {
        Person, Enterprise
    }
    FieldType: "A form field's type." {
        Text, Textarea, Number, Date, Select, Multiselect, Checkbox, IdNumber, Uscc, Phone,
        Email, Address, Table
    }
    FileType: "A file type an upload may have." {
        Pdf, Jpg, Png, Ofd
    }
    AccountKind: "The kind of account: a person, someone acting for an enterprise, or staff." {
        Person, Enterprise, Staff
    }
    Audience: "Which login the session came from: `public` (citizens and enterprise users) \
        or `staff`." {
        Public, Staff
    }
}

// ---- the event envelope -------------------------------------------------------------
//
// `exchange::envelope` builds the CloudEvents envelope as JSON, for push and for the pull
// inbox alike; these types describe it (nothing builds an event from them). The codes
// they share with the case views (statuses, actions, channels …) are the views' own.

fn string_const(value: &'static str, description: &'static str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
        .description(Some(description))
        .build()
}

fn const_specversion() -> Object {
    string_const("1.0", "The CloudEvents version: always `1.0`.")
}

fn const_datacontenttype() -> Object {
    string_const(
        "application/json",
        "The media type of `data`: always `application/json`.",
    )
}

/// A CloudEvents 1.0 event (structured JSON mode): one change to a case. Pushed with
/// `content-type: application/cloudevents+json`, or pulled from the inbox.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "specversion": "1.0",
    "id": "019550b8-2400-7c3e-9f2a-4b1d2e3f4a5b",
    "source": "https://onewindow.example/",
    "type": "cn.gov.onewindow.case.submitted.v1",
    "subject": "HLBE20250301-7KQ2M9XD",
    "time": "2025-03-01T08:00:00Z",
    "datacontenttype": "application/json",
    "data": { "case_no": "HLBE20250301-7KQ2M9XD" }
}))]
pub struct CloudEvent {
    /// Always `1.0`.
    #[schema(schema_with = const_specversion)]
    pub specversion: String,
    /// The event id (a time-ordered UUID); equal to `webhook-id` of a push. Your
    /// de-duplication key.
    pub id: Uuid,
    /// The gateway that produced the event: its public URL.
    pub source: String,
    /// What happened. An incompatible change to `data` gets a new type (`….v2`).
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The case number.
    pub subject: String,
    /// When the change happened.
    pub time: DateTime<Utc>,
    /// Always `application/json`.
    #[schema(schema_with = const_datacontenttype)]
    pub datacontenttype: String,
    /// The case as it stands when the event is sent, and what happened.
    pub data: CaseEventData,
}

/// A CloudEvents `type`.
#[derive(Debug, Serialize, ToSchema)]
pub enum EventType {
    /// 已申报: an application was lodged and routed to you.
    #[serde(rename = "cn.gov.onewindow.case.submitted.v1")]
    Submitted,
    /// 已受理.
    #[serde(rename = "cn.gov.onewindow.case.accepted.v1")]
    Accepted,
    /// 不予受理.
    #[serde(rename = "cn.gov.onewindow.case.not_accepted.v1")]
    NotAccepted,
    /// 补齐补正: the applicant was asked to supply or correct materials.
    #[serde(rename = "cn.gov.onewindow.case.correction_requested.v1")]
    CorrectionRequested,
    /// 已补正: the applicant supplied the correction.
    #[serde(rename = "cn.gov.onewindow.case.corrected.v1")]
    Corrected,
    /// 审查中.
    #[serde(rename = "cn.gov.onewindow.case.review_started.v1")]
    ReviewStarted,
    /// 特别程序.
    #[serde(rename = "cn.gov.onewindow.case.suspended.v1")]
    Suspended,
    /// 恢复审查.
    #[serde(rename = "cn.gov.onewindow.case.resumed.v1")]
    Resumed,
    /// 办结.
    #[serde(rename = "cn.gov.onewindow.case.concluded.v1")]
    Concluded,
    /// 已撤回.
    #[serde(rename = "cn.gov.onewindow.case.withdrawn.v1")]
    Withdrawn,
}

/// The `data` of an event: the whole application as it stands when the event is sent,
/// and what happened at the time of the event. Ignore fields you do not know.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseEventData {
    /// The case number.
    pub case_no: String,
    /// What happened (at the time of the event).
    pub event: EventFacts,
    /// The department the event is for (your USCC).
    pub department: String,
    /// The service.
    pub service: EventService,
    /// How it was lodged.
    pub channel: Channel,
    /// The applicant, with the full ID number.
    pub applicant: EventApplicant,
    /// Form values by field id.
    pub form: Map<String, Value>,
    /// The fields the gateway prefilled from shared data, with their source.
    pub prefill: Vec<PrefilledField>,
    /// The materials, with their checksums and download links.
    pub materials: Vec<EventMaterial>,
    /// The case's status now (when sent; may be later than `event.status`).
    pub status: CaseStatusCode,
    /// When it was lodged.
    pub submitted_at: DateTime<Utc>,
    /// When it was accepted.
    #[schema(required = true)]
    pub accepted_on: Option<NaiveDate>,
    /// The promised deadline.
    #[schema(required = true)]
    pub due_on: Option<NaiveDate>,
    /// The legal deadline.
    #[schema(required = true)]
    pub legal_due_on: Option<NaiveDate>,
}

/// What happened, as recorded when the event was written.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventFacts {
    /// The step taken.
    #[schema(required = true)]
    pub action: Option<CaseAction>,
    /// The status it led to.
    #[schema(required = true)]
    pub status: Option<CaseStatusCode>,
    /// The note given with it.
    #[schema(required = true)]
    pub note: Option<String>,
    /// Who took it.
    #[schema(required = true)]
    pub actor: Option<ActorCode>,
    /// The history entry's sequence number within the case.
    pub seq: i32,
}

/// Who took a step.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorCode {
    /// The applicant.
    Applicant,
    /// A window clerk.
    Clerk,
    /// A department officer on the gateway.
    DepartmentOfficer,
    /// A department's back-end system (through this API).
    DepartmentSystem,
    /// The gateway itself.
    System,
}

/// The service of an event's case.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventService {
    /// The service code.
    pub code: String,
    /// The version of its definition the application was made under.
    pub version: String,
    /// Its Chinese name.
    #[schema(required = true)]
    pub name: Option<String>,
}

/// The applicant, as sent to departments.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventApplicant {
    /// Person or enterprise.
    pub kind: ApplicantKind,
    /// Name.
    pub name: String,
    /// Resident ID number, in full.
    #[schema(required = true)]
    pub id_number: Option<String>,
    /// The enterprise's USCC.
    #[schema(required = true)]
    pub uscc: Option<String>,
    /// Phone number.
    #[schema(required = true)]
    pub phone: Option<String>,
}

/// A material in an event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventMaterial {
    /// The material's id in the service definition.
    pub material: String,
    /// Substituted by shared data or an e-licence (免提交).
    pub substituted: bool,
    /// What stood in for it.
    #[schema(required = true)]
    pub source: Option<String>,
    /// For a substituted material, the licence (or data) that stood in.
    #[schema(required = true)]
    pub evidence: Option<EvidenceDoc>,
    /// File name as uploaded.
    #[schema(required = true)]
    pub file_name: Option<String>,
    /// File type (`pdf`, `jpg`, `png`).
    #[schema(required = true)]
    pub file_type: Option<String>,
    /// Size in bytes.
    #[schema(required = true)]
    pub size: Option<i64>,
    /// SHA-256 of the file, hex.
    #[schema(required = true)]
    pub sha256: Option<String>,
    /// Where to download the file (`GET`, bearer token with scope `materials:read`);
    /// `null` when substituted.
    #[schema(required = true)]
    pub download_url: Option<String>,
}

/// A prefilled field in an event.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrefilledField {
    /// The field's id.
    pub field: String,
    /// Its provenance.
    #[serde(flatten)]
    pub provenance: ProvenanceDoc,
}
