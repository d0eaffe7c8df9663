//! The public catalogue API: departments, services and their guides, in the caller's
//! language. No login needed: the service guide is public information (政务公开).

use crate::http::path::Path;
use axum::Json;
use axum::extract::{Query, State, rejection::QueryRejection};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AcceptLang;
use super::error::{AppError, AppResult, Message};
use super::openapi::Problem;
use crate::app::AppState;
use crate::domain::catalogue::{
    ApplicantType, CaseKind, Channel, Department, Field, FieldType, FileType, ItemType, LimitUnit,
    MaterialForm, Service, TimeLimit,
};
use crate::domain::ids::Uscc;
use crate::domain::lang::Lang;

/// A code with its label in the caller's language.
#[derive(Debug, Serialize, ToSchema)]
pub struct Coded {
    /// The stable code; branch on it.
    code: &'static str,
    /// Its label in the response's language.
    label: &'static str,
}

fn coded(lang: Lang, code: &'static str, (zh, en): (&'static str, &'static str)) -> Coded {
    Coded {
        code,
        label: lang.pick(zh, en),
    }
}

/// A department by its code, named in the response's language.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepartmentBrief<'a> {
    /// Its unified social credit code (统一社会信用代码).
    uscc: &'a str,
    /// Its name; the code again if the catalogue does not know it.
    name: &'a str,
}

fn dept_ref<'a>(app: &'a AppState, lang: Lang, uscc: &'a str) -> DepartmentBrief<'a> {
    DepartmentBrief {
        uscc,
        name: app
            .catalogue
            .department(uscc)
            .map(|d| lang.pick(&d.name, &d.name_en))
            .unwrap_or(uscc),
    }
}

/// A time limit (时限).
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitView {
    /// How many days; 0 means on the spot (即办).
    value: u32,
    /// `working_days` or `natural_days`.
    unit: &'static str,
    /// The limit in words, in the response's language.
    label: String,
}

fn limit(lang: Lang, l: TimeLimit) -> LimitView {
    let (unit, label) = match (l.unit, l.value, lang) {
        (_, 0, Lang::Zh) => ("working_days", "即办（当场办结）".to_owned()),
        (_, 0, Lang::En) => ("working_days", "On the spot".to_owned()),
        (LimitUnit::WorkingDays, n, Lang::Zh) => ("working_days", format!("{n}个工作日")),
        (LimitUnit::WorkingDays, n, Lang::En) => ("working_days", format!("{n} working days")),
        (LimitUnit::NaturalDays, n, Lang::Zh) => ("natural_days", format!("{n}个自然日")),
        (LimitUnit::NaturalDays, n, Lang::En) => ("natural_days", format!("{n} calendar days")),
    };
    LimitView {
        value: l.value,
        unit,
        label,
    }
}

fn case_kind(lang: Lang, k: CaseKind) -> Coded {
    let code = match k {
        CaseKind::Immediate => "immediate",
        CaseKind::Promised => "promised",
        CaseKind::Joint => "joint",
    };
    coded(lang, code, k.labels())
}

fn applicant(lang: Lang, a: ApplicantType) -> Coded {
    match a {
        ApplicantType::Person => coded(lang, "person", ("自然人", "Individual")),
        ApplicantType::Enterprise => coded(lang, "enterprise", ("法人", "Legal entity")),
    }
}

fn channel(lang: Lang, c: Channel) -> Coded {
    match c {
        Channel::Online => coded(lang, "online", ("网上办理", "Online")),
        Channel::Window => coded(lang, "window", ("窗口办理", "At a service window")),
    }
}

/// A department in lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepartmentView<'a> {
    /// Its unified social credit code (统一社会信用代码).
    uscc: &'a str,
    /// Its full name.
    name: &'a str,
    /// The short name lists use (市场监管局).
    short_name: &'a str,
    /// Where applicants can go; absent when the catalogue has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<&'a str>,
    /// Its public enquiry phone; absent when the catalogue has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
    /// How many services it is responsible for.
    service_count: usize,
}

fn department_view<'a>(app: &'a AppState, lang: Lang, d: &'a Department) -> DepartmentView<'a> {
    DepartmentView {
        uscc: &d.uscc,
        name: lang.pick(&d.name, &d.name_en),
        short_name: lang.pick(&d.short_name, &d.short_name_en),
        address: d.address.as_deref(),
        phone: d.phone.as_deref(),
        service_count: app
            .catalogue
            .services()
            .iter()
            .filter(|s| s.department == d.uscc)
            .count(),
    }
}

/// Every department of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepartmentList<'a> {
    /// The departments.
    items: Vec<DepartmentView<'a>>,
    /// How many there are.
    total: usize,
}

/// `GET /api/v1/departments`
#[utoipa::path(
    get,
    path = "/api/v1/departments",
    operation_id = "listDepartments",
    summary = "The departments",
    description = "Every department of the city's catalogue, with how many services each is \
        responsible for.",
    responses((status = 200, description = "The departments.", body = DepartmentList))
)]
pub async fn list_departments(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
) -> Response {
    let items: Vec<_> = app
        .catalogue
        .departments()
        .iter()
        .map(|d| department_view(&app, lang, d))
        .collect();
    let total = items.len();
    Json(DepartmentList { items, total }).into_response()
}

/// Filters of the service list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ServiceQuery {
    /// Only the services of this department (its USCC).
    department: Option<String>,
    /// Only services of this item type (`permit`, `confirmation`, `benefit`, `public_service`,
    /// `adjudication`, `reward`, `other`).
    item_type: Option<String>,
    /// Only services whose name or guide mentions this keyword.
    q: Option<String>,
    /// The page, from 1.
    #[param(minimum = 1, default = 1)]
    page: Option<u32>,
    /// Services per page, 1–200.
    #[param(minimum = 1, maximum = 200, default = 50)]
    per_page: Option<u32>,
}

/// A service in lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceSummary<'a> {
    /// The service code (事项编码).
    code: &'a str,
    /// Its name.
    name: &'a str,
    /// The item type (事项类型).
    item_type: Coded,
    /// The responsible department.
    department: DepartmentBrief<'a>,
    /// Immediate (即办件), promised (承诺件) or joint (联办件).
    case_kind: Coded,
    /// Who may apply: `person`, `enterprise`.
    applicant_types: Vec<Coded>,
    /// Where it is handled: `online`, `window`.
    channels: Vec<Coded>,
    /// The identity assurance level an online applicant needs.
    min_assurance: u8,
    /// The legal time limit (法定时限).
    legal_limit: LimitView,
    /// The promised time limit (承诺时限).
    promised_limit: LimitView,
    /// At most how many visits in person (到现场次数).
    max_visits: u8,
    /// The service's own address in this API.
    href: String,
}

fn summary<'a>(app: &'a AppState, lang: Lang, s: &'a Service) -> ServiceSummary<'a> {
    ServiceSummary {
        code: &s.code,
        name: lang.pick(&s.name, &s.name_en),
        item_type: coded(lang, s.item_type.code(), s.item_type.labels()),
        department: dept_ref(app, lang, &s.department),
        case_kind: case_kind(lang, s.case_kind),
        applicant_types: s
            .applicant_types
            .iter()
            .map(|a| applicant(lang, *a))
            .collect(),
        channels: s.channels.iter().map(|c| channel(lang, *c)).collect(),
        min_assurance: s.min_assurance,
        legal_limit: limit(lang, s.guide.legal_limit),
        promised_limit: limit(lang, s.guide.promised_limit),
        max_visits: s.guide.max_visits,
        href: format!("/api/v1/services/{}", s.code),
    }
}

/// A page of services.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceList<'a> {
    /// The services on this page, in catalogue order.
    items: Vec<ServiceSummary<'a>>,
    /// How many services match the filters.
    total: usize,
    /// This page (from 1).
    page: u32,
    /// Services per page.
    per_page: u32,
}

const MAX_PER_PAGE: u32 = 200;

/// `GET /api/v1/services?department=&item_type=&q=&page=&per_page=`
#[utoipa::path(
    get,
    path = "/api/v1/services",
    operation_id = "listServices",
    summary = "Find services",
    description = "The catalogue's services, filtered by department, item type and keyword.",
    params(ServiceQuery),
    responses(
        (status = 200, description = "A page of services.", body = ServiceList),
        (status = 400, description = "An unknown parameter, a malformed department code, an unknown item type, `page` below 1 or `per_page` out of range.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_services(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    query: Result<Query<ServiceQuery>, QueryRejection>,
) -> AppResult<Response> {
    let Query(query) = query.map_err(|e| {
        AppError::BadRequest(Message::new(
            format!("查询参数有误：{e}。可用参数：department、item_type、q、page、per_page。"),
            format!("Bad query parameters: {e}. Known parameters: department, item_type, q, page, per_page."),
        ))
    })?;
    let department = match query.department.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => Some(Uscc::parse(d).map_err(|e| {
            AppError::BadRequest(Message::new(
                format!("department 不是有效的统一社会信用代码：{}", e.message_zh()),
                format!("department is not a valid unified social credit code: {e}"),
            ))
        })?),
        None => None,
    };
    let item_type = match query.item_type.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => Some(ItemType::from_code(t).ok_or_else(|| {
            let known: Vec<&str> = ItemType::ALL.iter().map(|t| t.code()).collect();
            AppError::BadRequest(Message::new(
                format!("未知的事项类型“{t}”，可选：{}", known.join("、")),
                format!("Unknown item_type {t:?}; one of {}", known.join(", ")),
            ))
        })?),
        None => None,
    };
    let per_page = query.per_page.unwrap_or(50);
    if per_page == 0 || per_page > MAX_PER_PAGE {
        return Err(AppError::BadRequest(Message::new(
            format!("per_page 应在 1 到 {MAX_PER_PAGE} 之间"),
            format!("per_page must be between 1 and {MAX_PER_PAGE}"),
        )));
    }
    let page = query.page.unwrap_or(1);
    if page == 0 {
        return Err(AppError::BadRequest(Message::new(
            "page 应不小于 1",
            "page must be at least 1",
        )));
    }

    let matching: Vec<&Service> = app
        .catalogue
        .services()
        .iter()
        .filter(|s| {
            department
                .as_ref()
                .is_none_or(|d| s.department == d.as_str())
        })
        .filter(|s| item_type.is_none_or(|t| s.item_type == t))
        .filter(|s| query.q.as_deref().is_none_or(|q| s.matches_keyword(q)))
        .collect();
    let total = matching.len();
    let items: Vec<_> = matching
        .into_iter()
        .skip(usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX))
        .take(per_page as usize)
        .map(|s| summary(&app, lang, s))
        .collect();
    Ok(Json(ServiceList {
        items,
        total,
        page,
        per_page,
    })
    .into_response())
}

/// An option of a select field.
#[derive(Debug, Serialize, ToSchema)]
pub struct OptionView<'a> {
    /// The value to submit.
    value: &'a str,
    /// Its label.
    label: &'a str,
}

/// Where a field's (or material's) value can come from in shared data.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceView<'a> {
    /// The shared-data item, `resource.item` (`person.name`).
    binding: &'a str,
    /// The resource's code.
    resource: &'a str,
    /// The resource and its provider in words; empty if the catalogue lacks the resource.
    source: String,
}

/// "Required when another field has this value".
#[derive(Debug, Serialize, ToSchema)]
pub struct ConditionView<'a> {
    /// The id of a top-level field.
    field: &'a str,
    /// The value of it that makes this field required.
    equals: &'a str,
}

/// A form field. The limits are present only where the definition sets them.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldView<'a> {
    /// The field's id: the key of its value in an application's `values`.
    id: &'a str,
    /// Its label.
    label: &'a str,
    /// Its type.
    #[serde(rename = "type")]
    field_type: FieldType,
    /// Always required.
    required: bool,
    /// Required only when another field has a value.
    #[serde(skip_serializing_if = "Option::is_none")]
    required_if: Option<ConditionView<'a>>,
    /// Minimum length in characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    min_length: Option<u32>,
    /// Maximum length in characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_length: Option<u32>,
    /// A regular expression the whole value must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pattern: Option<&'a str>,
    /// The smallest number allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    min: Option<f64>,
    /// The largest number allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    max: Option<f64>,
    /// The earliest date allowed, `YYYY-MM-DD` or `today`.
    #[serde(skip_serializing_if = "Option::is_none")]
    min_date: Option<&'a str>,
    /// The latest date allowed, `YYYY-MM-DD` or `today`.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_date: Option<&'a str>,
    /// The options of a select field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<OptionView<'a>>,
    /// The columns of a table field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    columns: Vec<FieldView<'a>>,
    /// The fewest rows of a table.
    #[serde(skip_serializing_if = "Option::is_none")]
    min_rows: Option<u32>,
    /// The most rows of a table.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_rows: Option<u32>,
    /// Help text.
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<&'a str>,
    /// Where the value can be prefilled from.
    #[serde(skip_serializing_if = "Option::is_none")]
    prefill: Option<SourceView<'a>>,
}

fn field_view<'a>(app: &'a AppState, lang: Lang, f: &'a Field) -> FieldView<'a> {
    FieldView {
        id: &f.id,
        label: lang.pick(&f.label, &f.label_en),
        field_type: f.field_type,
        required: f.required,
        required_if: f.required_if.as_ref().map(|c| ConditionView {
            field: &c.field,
            equals: &c.equals,
        }),
        min_length: f.min_length,
        max_length: f.max_length,
        pattern: f.pattern.as_deref(),
        min: f.min,
        max: f.max,
        min_date: f.min_date.as_deref(),
        max_date: f.max_date.as_deref(),
        options: f
            .options
            .iter()
            .map(|o| OptionView {
                value: &o.value,
                label: lang.pick(&o.label, &o.label_en),
            })
            .collect(),
        columns: f.columns.iter().map(|c| field_view(app, lang, c)).collect(),
        min_rows: f.min_rows,
        max_rows: f.max_rows,
        help: pick_opt(lang, &f.help, &f.help_en),
        prefill: f.prefill.as_deref().map(|b| source_view(app, lang, b)),
    }
}

fn source_view<'a>(app: &'a AppState, lang: Lang, binding: &'a str) -> SourceView<'a> {
    let res_code = binding.split('.').next().unwrap_or(binding);
    let source = app
        .catalogue
        .resources()
        .iter()
        .find(|r| r.code == res_code)
        .map(|r| {
            let provider = app
                .catalogue
                .department(&r.provider)
                .map(|d| lang.pick(&d.short_name, &d.short_name_en))
                .unwrap_or(&r.provider);
            format!("{}（{}）", lang.pick(&r.name, &r.name_en), provider)
        })
        .unwrap_or_default();
    SourceView {
        binding,
        resource: res_code,
        source,
    }
}

fn pick_opt<'a>(lang: Lang, zh: &'a Option<String>, en: &'a Option<String>) -> Option<&'a str> {
    zh.as_deref()
        .map(|z| lang.pick(z, en.as_deref().unwrap_or("")))
}

fn material_form(lang: Lang, f: MaterialForm) -> Coded {
    match f {
        MaterialForm::Original => coded(lang, "original", ("原件", "Original")),
        MaterialForm::Copy => coded(lang, "copy", ("复印件", "Copy")),
        MaterialForm::OriginalAndCopy => coded(
            lang,
            "original_and_copy",
            ("原件和复印件", "Original and copy"),
        ),
        MaterialForm::Electronic => coded(lang, "electronic", ("电子材料", "Electronic")),
    }
}

/// A service with its whole guide (办事指南), form and materials.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceDetail<'a> {
    /// What lists show of it.
    #[serde(flatten)]
    summary: ServiceSummary<'a>,
    /// The version of the definition (a content hash); applications record it.
    version: String,
    /// Whether a window clerk may lodge it for a walk-in applicant.
    accept_at_window: bool,
    /// The guide.
    guide: GuideView<'a>,
    /// The application form.
    form: FormView<'a>,
    /// The materials to provide.
    materials: Vec<MaterialView<'a>>,
    /// Where applications go.
    routing: RoutingView<'a>,
}

/// A service guide (办事指南).
#[derive(Debug, Serialize, ToSchema)]
pub struct GuideView<'a> {
    /// One paragraph on what the service is.
    summary: &'a str,
    /// The conditions of acceptance (受理条件).
    conditions: &'a [String],
    /// The legal basis (设定依据), as written.
    legal_basis: &'a [String],
    /// The fee (收费标准).
    fee: &'a str,
    /// What the applicant receives (办理结果).
    result: Option<&'a str>,
    /// Where to go.
    places: Vec<PlaceView<'a>>,
}

/// A place where the service is handled.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaceView<'a> {
    /// Its name.
    name: &'a str,
    /// Its address.
    address: &'a str,
    /// Its opening hours.
    hours: &'a str,
    /// Its phone.
    phone: Option<&'a str>,
}

/// An application form.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormView<'a> {
    /// Its fields, in order.
    fields: Vec<FieldView<'a>>,
}

/// A material to provide (申请材料).
#[derive(Debug, Serialize, ToSchema)]
pub struct MaterialView<'a> {
    /// Its id: the `material` of an application's materials.
    id: &'a str,
    /// Its name.
    name: &'a str,
    /// It must be provided (or substituted).
    required: bool,
    /// Original, copy …
    form: Coded,
    /// How many copies.
    copies: u32,
    /// The file types an upload may have.
    file_types: &'a [FileType],
    /// The largest upload, in MB.
    max_size_mb: u32,
    /// The shared data or e-licence that can stand in for an upload (免提交).
    substitute: Option<SourceView<'a>>,
    /// Help text.
    help: Option<&'a str>,
}

/// Where applications go.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingView<'a> {
    /// The departments that process them; several for a joint case.
    departments: Vec<DepartmentBrief<'a>>,
}

/// `GET /api/v1/services/{code}`: the whole guide and form.
#[utoipa::path(
    get,
    path = "/api/v1/services/{code}",
    operation_id = "getService",
    summary = "A service's guide and form",
    description = "Everything about one service: its guide, the form to fill in (with every \
        field's rules and where it can be prefilled from) and the materials to provide.",
    params(("code" = String, Path, description = "The service code (事项编码).", example = "11150700MB15300034-GG-0002")),
    responses(
        (status = 200, description = "The service.", body = ServiceDetail),
        (status = 404, description = "No service has this code.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_service(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    Path(code): Path<String>,
) -> AppResult<Response> {
    let s = find_service(&app, &code)?;
    let g = &s.guide;
    let places = g
        .places
        .iter()
        .map(|p| PlaceView {
            name: lang.pick(&p.name, &p.name_en),
            address: lang.pick(&p.address, p.address_en.as_deref().unwrap_or("")),
            hours: lang.pick(&p.hours, &p.hours_en),
            phone: p.phone.as_deref(),
        })
        .collect();
    let conditions = match lang {
        Lang::En => &g.conditions_en,
        Lang::Zh => &g.conditions,
    };
    let materials = s
        .materials
        .iter()
        .map(|m| MaterialView {
            id: &m.id,
            name: lang.pick(&m.name, &m.name_en),
            required: m.required,
            form: material_form(lang, m.form),
            copies: m.copies,
            file_types: &m.file_types,
            max_size_mb: m.max_size_mb,
            substitute: m.substitute.as_deref().map(|b| source_view(&app, lang, b)),
            help: pick_opt(lang, &m.help, &m.help_en),
        })
        .collect();
    let detail = ServiceDetail {
        summary: summary(&app, lang, s),
        version: s.version(),
        accept_at_window: s.accept_at_window,
        guide: GuideView {
            summary: lang.pick(&g.summary, &g.summary_en),
            conditions,
            legal_basis: &g.legal_basis,
            fee: lang.pick(&g.fee, &g.fee_en),
            result: pick_opt(lang, &g.result, &g.result_en),
            places,
        },
        form: FormView {
            fields: s.fields.iter().map(|f| field_view(&app, lang, f)).collect(),
        },
        materials,
        routing: RoutingView {
            departments: s
                .routing
                .departments
                .iter()
                .map(|d| dept_ref(&app, lang, d))
                .collect(),
        },
    };
    Ok(Json(detail).into_response())
}

/// Every version of a service's definition this gateway has served.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionList {
    /// The service code.
    code: String,
    /// The version served now.
    current: String,
    /// Every version served, with when it was first served.
    items: Vec<VersionView>,
}

/// A version of a service's definition.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    /// The content hash of the definition.
    version: String,
    /// When this gateway first served it.
    published_at: DateTime<Utc>,
}

/// `GET /api/v1/services/{code}/versions`: every version this gateway has served.
#[utoipa::path(
    get,
    path = "/api/v1/services/{code}/versions",
    operation_id = "listServiceVersions",
    summary = "A service's definition versions",
    description = "Every version of the service's definition this gateway has served; a case \
        records the version it was filled in under.",
    params(("code" = String, Path, description = "The service code (事项编码).", example = "11150700MB15300034-GG-0002")),
    responses(
        (status = 200, description = "The versions.", body = VersionList),
        (status = 404, description = "No service has this code.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_versions(
    State(app): State<AppState>,
    Path(code): Path<String>,
) -> AppResult<Json<VersionList>> {
    let s = find_service(&app, &code)?;
    let items = app
        .store
        .service_versions(&s.code)
        .await?
        .into_iter()
        .map(|v| VersionView {
            version: v.version,
            published_at: v.published_at,
        })
        .collect();
    Ok(Json(VersionList {
        code: s.code.clone(),
        current: s.version(),
        items,
    }))
}

pub(super) fn find_service<'a>(app: &'a AppState, code: &str) -> AppResult<&'a Service> {
    app.catalogue.service(code).ok_or_else(|| {
        AppError::NotFound(Message::new(
            format!("没有编码为“{code}”的事项。可在 /api/v1/services 查找全部事项。"),
            format!(
                "There is no service with code {code:?}. See /api/v1/services for all services."
            ),
        ))
    })
}
