//! Shared-data routes: the resource catalogue, the prefill plan, consent and values, a
//! clerk's lookup at the window, a citizen's view of who read their data, and the
//! operator's sharing figures and department data-API settings.

use std::collections::{BTreeMap, HashMap};

use crate::http::path::Path;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AcceptLang;
use super::cases::AppJson;
use super::catalogue::find_service;
use super::error::{AppError, AppResult, FieldError, Message};
use super::openapi::{LoginErrors, Problem, RoleErrors};
use crate::app::AppState;
use crate::auth::extract::{Applicant, Clerk, CurrentUser, Operator};
use crate::domain::catalogue::{Access, DataType, ShareType, Subject, UpdateCycle};
use crate::domain::ids::{ResidentId, Uscc};
use crate::domain::lang::Lang;
use crate::sharing::audit;
use crate::sharing::prefill::{self, purpose_label};
use crate::sharing::provider::ReadPurpose;

fn share_type_label(t: ShareType, lang: Lang) -> &'static str {
    match t {
        ShareType::Unconditional => lang.pick("无条件共享", "Shared without conditions"),
        ShareType::Conditional => lang.pick("有条件共享", "Shared on conditions"),
        ShareType::NotShared => lang.pick("不予共享", "Not shared"),
    }
}

fn update_cycle_label(c: UpdateCycle, lang: Lang) -> &'static str {
    match c {
        UpdateCycle::Realtime => lang.pick("实时", "Real time"),
        UpdateCycle::Daily => lang.pick("每日", "Daily"),
        UpdateCycle::Weekly => lang.pick("每周", "Weekly"),
        UpdateCycle::Monthly => lang.pick("每月", "Monthly"),
        UpdateCycle::Yearly => lang.pick("每年", "Yearly"),
    }
}

/// The services whose forms or materials draw on a resource.
fn bound_by<'a>(
    app: &'a AppState,
    resource: &'a str,
) -> impl Iterator<Item = &'a crate::domain::catalogue::Service> + 'a {
    app.catalogue.services().iter().filter(move |s| {
        s.fields
            .iter()
            .filter_map(|f| f.prefill.as_deref())
            .chain(s.materials.iter().filter_map(|m| m.substitute.as_deref()))
            .any(|b| b.split_once('.').map(|x| x.0) == Some(resource))
    })
}

/// The government information resource catalogue (政务信息资源目录).
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceCatalogue<'a> {
    /// How many resources there are.
    total: usize,
    /// The resources.
    resources: Vec<ResourceView<'a>>,
}

/// A shared-data resource: what it holds, who provides it, and who may use it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceView<'a> {
    /// The resource's code, the part before the dot in a binding (`person`).
    code: &'a str,
    /// Its name.
    name: &'a str,
    /// The department that provides it.
    provider: ProviderRef<'a>,
    /// Its sharing class.
    share_type: ShareType,
    /// The sharing class in words.
    share_type_label: &'static str,
    /// The conditions of sharing, for a conditional resource.
    conditions: Option<&'a str>,
    /// How often the provider refreshes it.
    update_cycle: UpdateCycle,
    /// The refresh cycle in words.
    update_cycle_label: &'static str,
    /// Whose data it holds.
    subject: Subject,
    /// Where the gateway reads it.
    access: Access,
    /// How long a value read from the department's data API is cached, in seconds (for
    /// `department_api` resources only; `null` otherwise).
    cache_ttl_secs: Option<u64>,
    /// The services entitled to a conditional resource.
    grants: &'a [String],
    /// The services whose forms or materials draw on it.
    bound_by: Vec<&'a str>,
    /// Its data items.
    items: Vec<ResourceItemView<'a>>,
}

/// A department by code, with its name if the catalogue knows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderRef<'a> {
    /// Its unified social credit code (统一社会信用代码).
    uscc: &'a str,
    /// Its name; `null` if the catalogue does not know it.
    name: Option<&'a str>,
}

/// A data item of a resource.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceItemView<'a> {
    /// The item's id, the part after the dot in a binding.
    id: &'a str,
    /// Its name.
    name: &'a str,
    /// The kind of value it holds.
    #[serde(rename = "type")]
    data_type: DataType,
    /// Reading it is a read of personal data, recorded in the subject's trail.
    personal: bool,
    /// An authoritative value: a field prefilled from it cannot be changed.
    authoritative: bool,
    /// Whose data it is.
    subject: Subject,
}

/// `GET /api/v1/catalogue`: the government information resource catalogue.
#[utoipa::path(
    get,
    path = "/api/v1/catalogue",
    operation_id = "resourceCatalogue",
    summary = "The shared-data resource catalogue",
    description = "Every shared-data resource (政务信息资源目录): its items, provider, sharing \
        class and the services that draw on it.",
    responses((status = 200, description = "The catalogue.", body = ResourceCatalogue))
)]
pub async fn resource_catalogue(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
) -> Response {
    let all = app.catalogue.resources();
    let resources: Vec<ResourceView> = all
        .iter()
        .map(|r| ResourceView {
            code: &r.code,
            name: lang.pick(&r.name, &r.name_en),
            provider: ProviderRef {
                uscc: &r.provider,
                name: app
                    .catalogue
                    .department(&r.provider)
                    .map(|d| lang.pick(&d.name, &d.name_en)),
            },
            share_type: r.share_type,
            share_type_label: share_type_label(r.share_type, lang),
            conditions: conditions(lang, &r.conditions, &r.conditions_en),
            update_cycle: r.update_cycle,
            update_cycle_label: update_cycle_label(r.update_cycle, lang),
            subject: r.subject,
            access: r.access,
            cache_ttl_secs: (r.access == Access::DepartmentApi).then_some(r.cache_ttl_secs),
            grants: &r.grants,
            bound_by: bound_by(&app, &r.code).map(|s| s.code.as_str()).collect(),
            items: r
                .items
                .iter()
                .map(|i| ResourceItemView {
                    id: &i.id,
                    name: lang.pick(&i.name, &i.name_en),
                    data_type: i.data_type,
                    personal: i.personal,
                    authoritative: i.authoritative,
                    subject: r.subject_of(i),
                })
                .collect(),
        })
        .collect();
    Json(ResourceCatalogue {
        total: resources.len(),
        resources,
    })
    .into_response()
}

/// The conditions of sharing in `lang`; English falls back to Chinese.
fn conditions<'a>(lang: Lang, zh: &'a Option<String>, en: &'a Option<String>) -> Option<&'a str> {
    match lang {
        Lang::En => en.as_deref().or(zh.as_deref()),
        Lang::Zh => zh.as_deref(),
    }
}

/// What a service's form would be filled from and why, to read before consenting.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView<'a> {
    /// The service.
    service_code: &'a str,
    /// Where to consent (`POST`).
    consent_href: String,
    /// Where to read the values after consenting (`GET`).
    prefill_href: String,
    /// How long a consent lasts, in hours.
    consent_valid_hours: i64,
    /// The fields and materials that would be filled, each with its source.
    entries: Vec<PlanEntryView<'a>>,
    /// The resources that would be read, each with why the service may.
    resources: Vec<PlanResourceView<'a>>,
}

/// A field or material the plan fills, and from where.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanEntryView<'a> {
    /// `field` or `material`.
    target: &'static str,
    /// The field's or material's id.
    id: &'a str,
    /// Its label.
    label: &'a str,
    /// The shared-data item, `resource.item`.
    source: &'a str,
    /// The resource's name.
    resource: &'a str,
    /// The item's name.
    item: &'a str,
    /// The providing department's name.
    provider: &'a str,
    /// The value cannot be changed once filled.
    authoritative: bool,
    /// Personal data: its read is recorded in the subject's trail.
    personal: bool,
    /// Whose data: the applicant's (`person`) or their enterprise's (`enterprise`).
    whose: Subject,
}

/// A resource the plan reads, with the reason the service may.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanResourceView<'a> {
    /// The resource's code.
    code: &'a str,
    /// Its name.
    name: &'a str,
    /// The providing department's name.
    provider: &'a str,
    /// Its sharing class.
    share_type: ShareType,
    /// The sharing class in words.
    share_type_label: &'static str,
    /// The conditions of sharing: why this service may use it.
    why: Option<&'a str>,
}

/// The plan of a service in one language.
pub fn plan_of<'a>(plan: &'a prefill::Plan, lang: Lang) -> PlanView<'a> {
    PlanView {
        service_code: &plan.service_code,
        consent_href: format!("/api/v1/services/{}/prefill/consent", plan.service_code),
        prefill_href: format!("/api/v1/services/{}/prefill", plan.service_code),
        consent_valid_hours: prefill::CONSENT_VALID_HOURS,
        entries: plan
            .entries
            .iter()
            .map(|e| PlanEntryView {
                target: e.target,
                id: &e.id,
                label: lang.pick(&e.label, &e.label_en),
                source: &e.source.binding,
                resource: lang.pick(&e.source.resource_name, &e.source.resource_name_en),
                item: lang.pick(&e.source.item_name, &e.source.item_name_en),
                provider: lang.pick(&e.source.provider_name, &e.source.provider_name_en),
                authoritative: e.authoritative,
                personal: e.personal,
                whose: e.subject,
            })
            .collect(),
        resources: plan
            .resources
            .iter()
            .map(|r| PlanResourceView {
                code: &r.code,
                name: lang.pick(&r.name, &r.name_en),
                provider: lang.pick(&r.provider_name, &r.provider_name_en),
                share_type: r.share_type,
                share_type_label: share_type_label(r.share_type, lang),
                why: conditions(lang, &r.conditions, &r.conditions_en),
            })
            .collect(),
    }
}

/// The plan as JSON, for the apply page, which reads it by key.
pub fn plan_view(app: &AppState, service: &crate::domain::catalogue::Service, lang: Lang) -> Value {
    let plan = prefill::plan(&app.catalogue, service);
    serde_json::to_value(plan_of(&plan, lang)).unwrap_or_default()
}

/// `GET /api/v1/services/{code}/prefill/sources`: what the form would be filled from and
/// why, to be read before consenting.
#[utoipa::path(
    get,
    path = "/api/v1/services/{code}/prefill/sources",
    operation_id = "prefillSources",
    summary = "What the form would be prefilled from",
    description = "The fields and materials the gateway can fill from shared data for this \
        service, each with its source, and why the service may read each resource. Read it \
        before consenting; nothing is read to answer it.",
    params(("code" = String, Path, description = "The service code (事项编码).", example = "11150700MB15300034-GG-0002")),
    responses(
        (status = 200, description = "The plan.", body = PlanView),
        (status = 404, description = "No service has this code.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn sources(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    Path(code): Path<String>,
) -> AppResult<Response> {
    let service = find_service(&app, &code)?;
    let plan = prefill::plan(&app.catalogue, service);
    Ok(Json(plan_of(&plan, lang)).into_response())
}

/// A consent to prefill a service's form.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentAnswer {
    /// The consent's id.
    consent_id: Uuid,
    /// The service.
    service_code: String,
    /// The resources agreed to.
    resources: Vec<String>,
    /// When it was given.
    given_at: DateTime<Utc>,
    /// Until when the values may be read under it.
    valid_until: DateTime<Utc>,
    /// Where to read the values (`GET`).
    prefill_href: String,
}

/// `POST /api/v1/services/{code}/prefill/consent`: the applicant agrees.
#[utoipa::path(
    post,
    path = "/api/v1/services/{code}/prefill/consent",
    operation_id = "givePrefillConsent",
    summary = "Agree to prefill",
    description = "The applicant agrees that the gateway reads the resources of the plan \
        (`…/prefill/sources`) to fill in this service's form. Only someone who may apply \
        online may consent.",
    params(("code" = String, Path, description = "The service code (事项编码).", example = "11150700MB15300034-GG-0002")),
    responses(
        (status = 201, description = "The consent.", body = ConsentAnswer),
        RoleErrors,
        (status = 404, description = "No service has this code.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn consent(
    State(app): State<AppState>,
    applicant: Applicant,
    Path(code): Path<String>,
) -> AppResult<(StatusCode, Json<ConsentAnswer>)> {
    let service = find_service(&app, &code)?;
    // Only someone who may apply reads anything: no data is fetched for a form they
    // cannot send (wrong kind of account, too low an assurance level, window only).
    crate::usecases::apply::may_apply_online(service, &applicant.actor())?;
    let c = crate::usecases::prefill::give_consent(&app, applicant.0.session.account_id, service)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ConsentAnswer {
            consent_id: c.id,
            service_code: c.service_code,
            resources: c.resources,
            given_at: c.given_at,
            valid_until: c.given_at + chrono::Duration::hours(prefill::CONSENT_VALID_HOURS),
            prefill_href: format!("/api/v1/services/{}/prefill", service.code),
        }),
    ))
}

/// Query parameters that would name another subject are refused, not ignored, so that a
/// client that tries learns it cannot.
const SUBJECT_PARAMS: [&str; 5] = ["id_number", "uscc", "subject", "person", "enterprise"];

/// `GET /api/v1/services/{code}/prefill`: the values, with their sources.
#[utoipa::path(
    get,
    path = "/api/v1/services/{code}/prefill",
    operation_id = "prefill",
    summary = "Read the prefilled values",
    description = "Reads the applicant's own data (and their enterprise's) for the form, under \
        a consent given within `consent_valid_hours`. Every personal read is recorded in the \
        subject's data-access trail before the answer. A resource that cannot be read now is \
        listed in `unavailable`; the other fields still fill. Parameters naming another \
        person or enterprise are refused.",
    params(("code" = String, Path, description = "The service code (事项编码).", example = "11150700MB15300034-GG-0002")),
    responses(
        (status = 200, description = "The values with their sources.", body = PrefillView),
        (status = 401, description = "Not logged in, or the session has ended.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an applicant for this service, or a parameter names someone else.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No service has this code.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No valid consent: consent first.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn values(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    applicant: Applicant,
    Path(code): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    if q.keys().any(|k| SUBJECT_PARAMS.contains(&k.as_str())) {
        return Err(AppError::Forbidden(Message::new(
            "只能预填您本人或您所代表企业的数据，不能指定他人。",
            "Only your own data, or that of the enterprise you represent, can be prefilled; you cannot name someone else.",
        )));
    }
    let service = find_service(&app, &code)?;
    crate::usecases::apply::may_apply_online(service, &applicant.actor())?;
    let p = crate::usecases::prefill::for_applicant(&app, &applicant.0.session, service).await?;
    Ok(Json(prefill_view(&p, lang)).into_response())
}

/// Prefilled values with their sources.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrefillView<'a> {
    /// The service.
    service_code: &'a str,
    /// The consent the reads rest on; `null` for a clerk's lookup.
    consent_id: Option<Uuid>,
    /// When the sources were read.
    fetched_at: DateTime<Utc>,
    /// The values, by field id.
    fields: BTreeMap<&'a str, FilledValue<'a>>,
    /// What stands in for a material (免提交), by material id.
    materials: BTreeMap<&'a str, SubstituteView<'a>>,
    /// The fields and materials of the plan the sources hold nothing for.
    not_found: &'a [String],
    /// The resources that could not be read now; their fields are left to the applicant.
    unavailable: Vec<UnavailableView<'a>>,
    /// Every resource answered.
    complete: bool,
}

/// A prefilled value.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilledValue<'a> {
    /// The value, in the form's format.
    value: &'a Value,
    /// It cannot be changed in the form; it is checked again on submit.
    authoritative: bool,
    /// How current the source's data is.
    as_of: DateTime<Utc>,
    /// Where it came from.
    source: SourceNames<'a>,
}

/// Where a value came from, named in the response's language.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceNames<'a> {
    /// The shared-data item, `resource.item`.
    binding: &'a str,
    /// The resource's name.
    resource: &'a str,
    /// The item's name.
    item: &'a str,
    /// The providing department's name.
    provider: &'a str,
}

/// The e-licence (or shared data) that stands in for a material.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubstituteView<'a> {
    /// Always `true`: the material need not be uploaded.
    substitutable: bool,
    /// The licence number.
    licence_no: Option<&'a Value>,
    /// The issuing authority.
    issuer: Option<&'a Value>,
    /// Valid until (a date, or 长期).
    valid_until: Option<&'a Value>,
    /// How current the source's data is.
    as_of: DateTime<Utc>,
    /// Where it came from.
    source: SourceNames<'a>,
}

/// A resource that could not be read.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnavailableView<'a> {
    /// The resource's code.
    resource: &'a str,
    /// What happened.
    message: &'a str,
}

fn source_names(s: &prefill::Source, lang: Lang) -> SourceNames<'_> {
    SourceNames {
        binding: &s.binding,
        resource: lang.pick(&s.resource_name, &s.resource_name_en),
        item: lang.pick(&s.item_name, &s.item_name_en),
        provider: lang.pick(&s.provider_name, &s.provider_name_en),
    }
}

/// A prefill in one language.
pub fn prefill_view(p: &prefill::Prefill, lang: Lang) -> PrefillView<'_> {
    PrefillView {
        service_code: &p.service_code,
        consent_id: p.consent_id,
        fetched_at: p.fetched_at,
        fields: p
            .fields
            .iter()
            .map(|(id, v)| {
                let filled = FilledValue {
                    value: &v.value,
                    authoritative: v.authoritative,
                    as_of: v.as_of,
                    source: source_names(&v.source, lang),
                };
                (id.as_str(), filled)
            })
            .collect(),
        materials: p
            .materials
            .iter()
            .map(|(id, e)| {
                let substitute = SubstituteView {
                    substitutable: true,
                    licence_no: e.facts.get("licence_no"),
                    issuer: e.facts.get("issuer"),
                    valid_until: e.facts.get("valid_until"),
                    as_of: e.as_of,
                    source: source_names(&e.source, lang),
                };
                (id.as_str(), substitute)
            })
            .collect(),
        not_found: &p.not_found,
        unavailable: p
            .unavailable
            .iter()
            .map(|u| UnavailableView {
                resource: &u.resource,
                message: lang.pick(&u.message, &u.message_en),
            })
            .collect(),
        complete: p.unavailable.is_empty(),
    }
}

/// A clerk's lookup of a walk-in applicant's data.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupBody {
    /// The service applied for.
    pub service_code: String,
    /// The applicant's (or agent's) resident ID number.
    pub id_number: String,
    /// The enterprise's USCC, for an enterprise application.
    #[serde(default)]
    pub uscc: Option<String>,
    /// Why, in the clerk's words (shown to the applicant in their data-access page).
    pub purpose: String,
}

/// `POST /api/staff/v1/prefill`: a window clerk reads a walk-in applicant's shared data
/// for an intake, stating why; the read is audited as the clerk's.
#[utoipa::path(
    post,
    path = "/api/staff/v1/prefill",
    operation_id = "clerkLookup",
    summary = "Look up a walk-in applicant's shared data",
    description = "A window clerk reads the shared data of the applicant at the window for \
        an intake, stating why in their own words. The read is recorded as the clerk's in \
        the applicant's data-access trail, and its values serve the intake that follows.",
    request_body(content = LookupBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The values with their sources.", body = PrefillView),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No service has this code.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A malformed ID number or USCC, or a purpose that is too short or too long (`errors` names the field).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn clerk_lookup(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    clerk: Clerk,
    AppJson(body): AppJson<LookupBody>,
) -> AppResult<Response> {
    let service = find_service(&app, &body.service_code)?;
    let p = lookup_at_window(
        &app,
        &clerk,
        service,
        &body.id_number,
        body.uscc.as_deref(),
        &body.purpose,
    )
    .await?;
    Ok(Json(prefill_view(&p, lang)).into_response())
}

/// A clerk's audited lookup of a walk-in applicant's shared data for `service` (the
/// JSON route's and the intake page's): the hall must serve the service's department,
/// the ID number (and USCC, if given) must be valid and the purpose 4–200 characters
/// (`errors` at `id_number`, `uscc`, `purpose`). The read is recorded as the clerk's in
/// the applicant's data-access trail and kept as the snapshot the intake re-checks.
pub async fn lookup_at_window(
    app: &AppState,
    clerk: &Clerk,
    service: &crate::domain::catalogue::Service,
    id_number: &str,
    uscc: Option<&str>,
    purpose: &str,
) -> AppResult<prefill::Prefill> {
    if !clerk.departments.contains(&service.department) {
        return Err(AppError::Forbidden(Message::new(
            "本大厅不受理该部门的事项。",
            "This service hall does not take applications for that department.",
        )));
    }
    let mut errors = Vec::new();
    let person = match ResidentId::parse(id_number) {
        Ok(p) => Some(p),
        Err(e) => {
            errors.push(FieldError {
                field: "id_number".into(),
                message: Message::new(
                    format!("身份证号有误：{}", e.message_zh()),
                    format!("Invalid resident ID number: {e}"),
                ),
            });
            None
        }
    };
    let enterprise = match uscc.map(str::trim).filter(|u| !u.is_empty()) {
        None => None,
        Some(u) => match Uscc::parse(u) {
            Ok(u) => Some(u.as_str().to_owned()),
            Err(e) => {
                errors.push(FieldError {
                    field: "uscc".into(),
                    message: Message::new(
                        format!("统一社会信用代码有误：{}", e.message_zh()),
                        format!("Invalid unified social credit code: {e}"),
                    ),
                });
                None
            }
        },
    };
    let purpose = purpose.trim();
    if purpose.chars().count() < 4 || purpose.chars().count() > 200 {
        errors.push(FieldError {
            field: "purpose".into(),
            message: Message::new(
                "请说明查询目的（4–200 字），它会显示给申请人本人。",
                "State the purpose (4–200 characters); the applicant will see it.",
            ),
        });
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let s = &clerk.user.session;
    let who = prefill::who_at_window(
        person.as_ref(),
        enterprise.as_deref(),
        s.account_id,
        &s.name,
        &clerk.hall,
    );
    let why = ReadPurpose {
        purpose: purpose.to_owned(),
        service_code: Some(service.code.clone()),
        case_no: None,
    };
    let p = prefill::fetch(app, &who, service, &why, None).await?;
    prefill::save_snapshot(app, s.account_id, &who, &p).await;
    Ok(p)
}

/// Who read the caller's data (and their enterprise's), and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataAccessTrail {
    /// How many reads are listed.
    total: usize,
    /// The reads, newest first (at most 500).
    records: Vec<AccessRecord>,
    /// Every subject's hash chain verifies: no record was changed or removed.
    chain_intact: bool,
}

/// One read of the caller's data.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessRecord {
    /// The read.
    #[serde(flatten)]
    read: audit::AccessView,
    /// The purpose in words, in the response's language.
    purpose_label: String,
}

/// `GET /api/v1/me/data-access`: who read my data (and my enterprise's), and why.
#[utoipa::path(
    get,
    path = "/api/v1/me/data-access",
    operation_id = "myDataAccess",
    summary = "Who read my data",
    description = "The caller's data-access trail: every read of their data (and of the \
        enterprise they act for) by the gateway, a window clerk or a department, with its \
        purpose, and whether the trail's hash chains are intact.",
    responses(
        (status = 200, description = "The trail.", body = DataAccessTrail),
        LoginErrors,
    ),
    security(("session" = []))
)]
pub async fn my_data_access(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    user: CurrentUser,
) -> AppResult<Json<DataAccessTrail>> {
    let (list, intact) = data_access_of(&app, &user, lang).await?;
    let records: Vec<AccessRecord> = list
        .into_iter()
        .map(|read| AccessRecord {
            purpose_label: purpose_label(&read.purpose, lang),
            read,
        })
        .collect();
    Ok(Json(DataAccessTrail {
        total: records.len(),
        records,
        chain_intact: intact,
    }))
}

/// The reads of the logged-in user's data (and their enterprise's), newest first, with
/// names in `lang`, and whether every subject's hash chain is intact.
pub async fn data_access_of(
    app: &AppState,
    user: &CurrentUser,
    lang: Lang,
) -> AppResult<(Vec<audit::AccessView>, bool)> {
    let (person, enterprise) = subjects_of(app, user).await?;
    let list =
        audit::for_subjects(app, person.as_deref(), enterprise.as_deref(), lang, 500).await?;
    let mut intact = true;
    for (kind, id) in [
        (crate::domain::catalogue::Subject::Person, person.as_deref()),
        (
            crate::domain::catalogue::Subject::Enterprise,
            enterprise.as_deref(),
        ),
    ] {
        if let Some(id) = id {
            let chain = format!(
                "{}{}",
                crate::store::AuditTable::Access.prefix(),
                audit::subject_index(&app.index_key, kind, id)
            );
            intact &= crate::audit::chain_intact(app, &chain).await?;
        }
    }
    Ok((list, intact))
}

/// The logged-in user's ID number and represented enterprise.
pub async fn subjects_of(
    app: &AppState,
    user: &CurrentUser,
) -> AppResult<(Option<String>, Option<String>)> {
    let who = crate::usecases::prefill::who_for_applicant(app, &user.session).await?;
    Ok((who.person, who.enterprise))
}

/// How much of the work shared data did: per service and overall.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharingReport {
    /// Per service with cases.
    services: Vec<ServiceFigures>,
    /// Over every service.
    overall: Figures,
}

/// The figures of one service.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceFigures {
    /// The service code.
    service_code: String,
    /// Its Chinese name; `null` if it is no longer in the catalogue.
    service: Option<String>,
    /// Its figures.
    #[serde(flatten)]
    figures: Figures,
}

/// Counts over lodged cases, and the shares they give.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Figures {
    /// Cases lodged.
    cases: i64,
    /// Form fields with a value.
    fields_filled: i64,
    /// Of which filled from shared data and not changed.
    fields_prefilled: i64,
    /// `fields_prefilled / fields_filled`, to three decimals; `null` without fields.
    prefilled_share: Option<f64>,
    /// Materials provided (uploaded or substituted).
    materials: i64,
    /// Of which not uploaded because shared data or an e-licence stood in (免提交).
    materials_substituted: i64,
    /// `materials_substituted / materials`, to three decimals; `null` without materials.
    substituted_share: Option<f64>,
}

impl Figures {
    fn of(cases: i64, fields: (i64, i64), materials: (i64, i64)) -> Figures {
        let share = |part: i64, whole: i64| {
            (whole > 0).then(|| (part as f64 / whole as f64 * 1000.0).round() / 1000.0)
        };
        Figures {
            cases,
            fields_filled: fields.0,
            fields_prefilled: fields.1,
            prefilled_share: share(fields.1, fields.0),
            materials: materials.0,
            materials_substituted: materials.1,
            substituted_share: share(materials.1, materials.0),
        }
    }
}

/// `GET /api/ops/v1/sharing`: per service and overall, the share of form fields filled
/// from shared data and of materials not uploaded.
#[utoipa::path(
    get,
    path = "/api/ops/v1/sharing",
    operation_id = "sharingFigures",
    summary = "How much shared data did",
    description = "Per service and overall, over the lodged cases: the share of form fields \
        filled from shared data and of materials not uploaded because shared data or an \
        e-licence stood in.",
    responses(
        (status = 200, description = "The figures.", body = SharingReport),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn figures(State(app): State<AppState>, _op: Operator) -> AppResult<Json<SharingReport>> {
    let rows = app.store.sharing_figures().await?;
    let mut total = crate::store::SharingFigures::default();
    let services = rows
        .into_iter()
        .map(|r| {
            total.cases += r.cases;
            total.fields_filled += r.fields_filled;
            total.fields_prefilled += r.fields_prefilled;
            total.materials += r.materials;
            total.materials_substituted += r.materials_substituted;
            ServiceFigures {
                service: app
                    .catalogue
                    .service(&r.service_code)
                    .map(|s| s.name.clone()),
                figures: Figures::of(
                    r.cases,
                    (r.fields_filled, r.fields_prefilled),
                    (r.materials, r.materials_substituted),
                ),
                service_code: r.service_code,
            }
        })
        .collect();
    Ok(Json(SharingReport {
        services,
        overall: Figures::of(
            total.cases,
            (total.fields_filled, total.fields_prefilled),
            (total.materials, total.materials_substituted),
        ),
    }))
}

/// Body of `PUT /api/ops/v1/departments/{uscc}/data-api`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataApiBody {
    /// Base URL of the department's data API; null to remove it.
    pub url: Option<String>,
}

/// Checks a department data-API URL: https, or http only where allowed.
pub fn check_data_api_url(app: &AppState, url: &str) -> Result<String, Message> {
    let u = url::Url::parse(url.trim())
        .map_err(|_| Message::new("url 不是有效的地址。", "url is not a valid URL."))?;
    match u.scheme() {
        "https" => {}
        "http" if app.settings.exchange.exchange_allow_http => {}
        _ => {
            return Err(Message::new(
                "数据接口须使用 https。",
                "A data API must use https.",
            ));
        }
    }
    Ok(u.to_string().trim_end_matches('/').to_owned())
}

/// Where a department's data API is.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataApiAnswer {
    /// The department's USCC.
    department: String,
    /// The base URL of its data API, as stored; `null` when removed.
    data_api: Option<String>,
}

/// `PUT /api/ops/v1/departments/{uscc}/data-api`: where a department's data API is.
#[utoipa::path(
    put,
    path = "/api/ops/v1/departments/{uscc}/data-api",
    operation_id = "putDataApi",
    summary = "Set a department's data API",
    description = "Where the gateway reads the department's `department_api` resources: an \
        https base URL (http only where `exchange_allow_http` is on), or `null` to remove it.",
    params(("uscc" = String, Path, description = "The department's unified social credit code (统一社会信用代码).", example = "11150700MB1530001X")),
    request_body(content = DataApiBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored.", body = DataApiAnswer),
        (status = 400, description = "The body is not JSON of this shape.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
        (status = 404, description = "No department has this code.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a URL, or not https (`errors` names `url`).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
pub async fn put_data_api(
    State(app): State<AppState>,
    op: Operator,
    Path(uscc): Path<String>,
    AppJson(body): AppJson<DataApiBody>,
) -> AppResult<Json<DataApiAnswer>> {
    if app.catalogue.department(&uscc).is_none() {
        return Err(AppError::NotFound(Message::new(
            format!("没有统一社会信用代码为 {uscc} 的部门。"),
            format!("There is no department {uscc}."),
        )));
    }
    let url = match body.url.as_deref() {
        Some(u) => Some(check_data_api_url(&app, u).map_err(|message| {
            AppError::Invalid(vec![FieldError {
                field: "url".into(),
                message,
            }])
        })?),
        None => None,
    };
    app.store.set_data_api(&uscc, url.as_deref()).await?;
    crate::audit::action(
        &app,
        &crate::audit::Who::of(&op.actor()),
        "data_api.set",
        format!("department:{uscc}"),
        &uscc,
        serde_json::json!({ "url": url }),
    )
    .await?;
    Ok(Json(DataApiAnswer {
        department: uscc,
        data_api: url,
    }))
}

/// `GET /catalogue`: the resource catalogue as a page, for citizens and staff, in the
/// reader's language.
pub async fn catalogue_page(
    State(app): State<AppState>,
    ctx: super::pages::PageCtx,
    Query(q): Query<super::catalogue_mgmt::CatSearchQuery>,
) -> Response {
    let lang = ctx.lang;
    let search = match q.search() {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let all = app.catalogue.resources();
    let resources: Vec<minijinja::Value> = all
        .iter()
        .filter(|r| search.matches(r))
        .map(|r| {
            let dept = app.catalogue.department(&r.provider);
            let services: Vec<minijinja::Value> = bound_by(&app, &r.code)
                .map(|s| minijinja::context! { code => s.code.clone(), name => lang.pick(&s.name, &s.name_en) })
                .collect();
            minijinja::context! {
                code => r.code.clone(),
                name => lang.pick(&r.name, &r.name_en),
                provider => dept.map_or_else(|| r.provider.clone(), |d| lang.pick(&d.name, &d.name_en).to_owned()),
                share_type => share_type_label(r.share_type, lang),
                conditions => r.conditions.as_ref().map(|c| lang.pick(c, r.conditions_en.as_deref().unwrap_or(c)).to_owned()),
                update_cycle => update_cycle_label(r.update_cycle, lang),
                services,
                items => r.items.iter().map(|i| minijinja::context! {
                    name => lang.pick(&i.name, &i.name_en),
                    personal => i.personal,
                    authoritative => i.authoritative,
                }).collect::<Vec<_>>(),
            }
        })
        .collect();
    let search_form = super::catalogue_mgmt_pages::search_form(&app, lang, &q);
    ctx.render(
        StatusCode::OK,
        "catalogue.html",
        minijinja::context! { resources, search => search_form },
    )
}

/// Where each shared resource comes from and whether it answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderReport {
    /// Every resource of the catalogue.
    resources: Vec<ProviderState>,
}

/// A resource and the state of its source.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderState {
    /// The resource's code.
    resource: String,
    /// Its Chinese name.
    name: String,
    /// The providing department's USCC.
    provider: String,
    /// Its sharing class.
    share_type: ShareType,
    /// Where the gateway reads it.
    access: Access,
    /// The state of that source.
    #[serde(flatten)]
    source: SourceState,
}

/// The state of a resource's source: records in the base library, or the department's
/// data API with its circuit breaker.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum SourceState {
    /// A `base_library` resource.
    BaseLibrary {
        /// Records held for it.
        records: i64,
    },
    /// A `department_api` resource.
    DepartmentApi {
        /// The department's data API; `null` when not configured.
        data_api: Option<String>,
        /// How long a value read is cached, in seconds.
        cache_ttl_secs: u64,
        /// The circuit breaker: `open` means calls are not made for now.
        circuit: Circuit,
    },
}

/// A circuit breaker's state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Circuit {
    /// Calls go through.
    Closed,
    /// Recent calls failed; calls are not made until the breaker tries again.
    Open,
    /// One trial call is out.
    HalfOpen,
}

/// `GET /api/ops/v1/providers`: where each shared resource comes from and whether it is
/// answering: records held in the base library, or the department's data API with its
/// circuit state.
#[utoipa::path(
    get,
    path = "/api/ops/v1/providers",
    operation_id = "providers",
    summary = "The state of the shared-data sources",
    description = "Every resource with its source: the records held in the base library, or \
        the department's data API with its cache time and circuit-breaker state.",
    responses(
        (status = 200, description = "The resources.", body = ProviderReport),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn providers(
    State(app): State<AppState>,
    _op: Operator,
) -> AppResult<Json<ProviderReport>> {
    use crate::sharing::provider::CircuitState;
    let endpoints = app.store.endpoints().await?;
    let mut resources = Vec::new();
    for r in app.catalogue.resources().iter() {
        let source = match r.access {
            Access::BaseLibrary => SourceState::BaseLibrary {
                records: app.store.count_base_records(&r.code).await?,
            },
            Access::DepartmentApi => SourceState::DepartmentApi {
                data_api: endpoints
                    .iter()
                    .find(|e| e.department == r.provider)
                    .and_then(|e| e.data_api.clone()),
                cache_ttl_secs: r.cache_ttl_secs,
                circuit: match app.providers.api.circuit(&r.code) {
                    CircuitState::Closed => Circuit::Closed,
                    CircuitState::Open(_) => Circuit::Open,
                    CircuitState::HalfOpen => Circuit::HalfOpen,
                },
            },
        };
        resources.push(ProviderState {
            resource: r.code.clone(),
            name: r.name.clone(),
            provider: r.provider.clone(),
            share_type: r.share_type,
            access: r.access,
            source,
        });
    }
    Ok(Json(ProviderReport { resources }))
}
