//! The public catalogue API: departments, services and their guides, in the caller's
//! language. No login needed: the service guide is public information (政务公开).

use axum::Json;
use axum::extract::{Path, Query, State, rejection::QueryRejection};
use serde::{Deserialize, Serialize};

use super::AcceptLang;
use super::error::{AppError, AppResult, Message};
use crate::app::AppState;
use crate::domain::catalogue::{
    ApplicantType, CaseKind, Channel, Department, Field, FileType, ItemType, LimitUnit,
    MaterialForm, Service, TimeLimit,
};
use crate::domain::ids::Uscc;
use crate::domain::lang::Lang;
use crate::store::ServiceVersionInfo;

/// A code with its label in the caller's language.
#[derive(Debug, Serialize)]
pub struct Coded {
    code: &'static str,
    label: &'static str,
}

fn coded(lang: Lang, code: &'static str, (zh, en): (&'static str, &'static str)) -> Coded {
    Coded {
        code,
        label: lang.pick(zh, en),
    }
}

#[derive(Debug, Serialize)]
struct DepartmentRef<'a> {
    uscc: &'a str,
    name: &'a str,
}

fn dept_ref<'a>(app: &'a AppState, lang: Lang, uscc: &'a str) -> DepartmentRef<'a> {
    DepartmentRef {
        uscc,
        name: app
            .catalogue
            .department(uscc)
            .map(|d| lang.pick(&d.name, &d.name_en))
            .unwrap_or(uscc),
    }
}

#[derive(Debug, Serialize)]
struct LimitView {
    value: u32,
    unit: &'static str,
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
#[derive(Debug, Serialize)]
pub struct DepartmentView<'a> {
    uscc: &'a str,
    name: &'a str,
    short_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
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

/// `GET /api/v1/departments`
pub async fn list_departments(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
) -> Json<serde_json::Value> {
    let items: Vec<_> = app
        .catalogue
        .departments()
        .iter()
        .map(|d| department_view(&app, lang, d))
        .collect();
    Json(serde_json::json!({ "items": items, "total": items.len() }))
}

/// Filters of the service list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceQuery {
    department: Option<String>,
    item_type: Option<String>,
    q: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

/// A service in lists.
#[derive(Debug, Serialize)]
struct ServiceSummary<'a> {
    code: &'a str,
    name: &'a str,
    item_type: Coded,
    department: DepartmentRef<'a>,
    case_kind: Coded,
    applicant_types: Vec<Coded>,
    channels: Vec<Coded>,
    min_assurance: u8,
    legal_limit: LimitView,
    promised_limit: LimitView,
    max_visits: u8,
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

const MAX_PER_PAGE: u32 = 200;

/// `GET /api/v1/services?department=&item_type=&q=&page=&per_page=`
pub async fn list_services(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    query: Result<Query<ServiceQuery>, QueryRejection>,
) -> AppResult<Json<serde_json::Value>> {
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
    let page = query.page.unwrap_or(1).max(1);

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
        .skip(((page - 1) * per_page) as usize)
        .take(per_page as usize)
        .map(|s| summary(&app, lang, s))
        .collect();
    Ok(Json(serde_json::json!({
        "items": items,
        "total": total,
        "page": page,
        "per_page": per_page,
    })))
}

#[derive(Debug, Serialize)]
struct OptionView<'a> {
    value: &'a str,
    label: &'a str,
}

#[derive(Debug, Serialize)]
struct PrefillView<'a> {
    binding: &'a str,
    resource: &'a str,
    source: String,
}

#[derive(Debug, Serialize)]
struct FieldView<'a> {
    id: &'a str,
    label: &'a str,
    #[serde(rename = "type")]
    field_type: crate::domain::catalogue::FieldType,
    required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    required_if: Option<&'a crate::domain::catalogue::Condition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pattern: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_date: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<OptionView<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    columns: Vec<FieldView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_rows: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_rows: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefill: Option<PrefillView<'a>>,
}

fn field_view<'a>(app: &'a AppState, lang: Lang, f: &'a Field) -> FieldView<'a> {
    FieldView {
        id: &f.id,
        label: lang.pick(&f.label, &f.label_en),
        field_type: f.field_type,
        required: f.required,
        required_if: f.required_if.as_ref(),
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
        prefill: f.prefill.as_deref().map(|b| prefill_view(app, lang, b)),
    }
}

fn prefill_view<'a>(app: &'a AppState, lang: Lang, binding: &'a str) -> PrefillView<'a> {
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
    PrefillView {
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

/// `GET /api/v1/services/{code}`: the whole guide and form.
pub async fn get_service(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    Path(code): Path<String>,
) -> AppResult<Json<serde_json::Value>> {
    let s = find_service(&app, &code)?;
    let g = &s.guide;
    let places: Vec<_> = g
        .places
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": lang.pick(&p.name, &p.name_en),
                "address": pick_opt(lang, &Some(p.address.clone()), &p.address_en),
                "hours": lang.pick(&p.hours, &p.hours_en),
                "phone": p.phone,
            })
        })
        .collect();
    let conditions = match lang {
        Lang::En => &g.conditions_en,
        Lang::Zh => &g.conditions,
    };
    let materials: Vec<_> = s
        .materials
        .iter()
        .map(|m| {
            serde_json::json!({
                "id": m.id,
                "name": lang.pick(&m.name, &m.name_en),
                "required": m.required,
                "form": material_form(lang, m.form),
                "copies": m.copies,
                "file_types": m.file_types.iter().map(|t| match t {
                    FileType::Pdf => "pdf", FileType::Jpg => "jpg", FileType::Png => "png", FileType::Ofd => "ofd",
                }).collect::<Vec<_>>(),
                "max_size_mb": m.max_size_mb,
                "substitute": m.substitute.as_deref().map(|b| prefill_view(&app, lang, b)),
                "help": pick_opt(lang, &m.help, &m.help_en),
            })
        })
        .collect();
    let fields: Vec<_> = s.fields.iter().map(|f| field_view(&app, lang, f)).collect();
    let routing: Vec<_> = s
        .routing
        .departments
        .iter()
        .map(|d| dept_ref(&app, lang, d))
        .collect();
    let mut body = serde_json::to_value(summary(&app, lang, s)).map_err(anyhow::Error::from)?;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("version".into(), s.version().into());
        obj.insert("accept_at_window".into(), s.accept_at_window.into());
        obj.insert(
            "guide".into(),
            serde_json::json!({
                "summary": lang.pick(&g.summary, &g.summary_en),
                "conditions": conditions,
                "legal_basis": g.legal_basis,
                "fee": lang.pick(&g.fee, &g.fee_en),
                "result": pick_opt(lang, &g.result, &g.result_en),
                "places": places,
            }),
        );
        obj.insert("form".into(), serde_json::json!({ "fields": fields }));
        obj.insert("materials".into(), serde_json::Value::Array(materials));
        obj.insert(
            "routing".into(),
            serde_json::json!({ "departments": routing }),
        );
    }
    Ok(Json(body))
}

/// `GET /api/v1/services/{code}/versions`: every version this gateway has served.
pub async fn list_versions(
    State(app): State<AppState>,
    Path(code): Path<String>,
) -> AppResult<Json<serde_json::Value>> {
    let s = find_service(&app, &code)?;
    let versions: Vec<ServiceVersionInfo> = app.store.service_versions(&s.code).await?;
    Ok(Json(serde_json::json!({
        "code": s.code,
        "current": s.version(),
        "items": versions,
    })))
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
