//! Shared-data routes: the resource catalogue, the prefill plan, consent and values, a
//! clerk's lookup at the window, a citizen's view of who read their data, and the
//! operator's sharing figures and department data-API settings.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

use super::AcceptLang;
use super::cases::AppJson;
use super::catalogue::find_service;
use super::error::{AppError, AppResult, FieldError, Message};
use crate::app::AppState;
use crate::auth::extract::{Applicant, Clerk, CurrentUser, Operator};
use crate::domain::catalogue::{Access, ShareType, UpdateCycle};
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

/// `GET /api/v1/catalogue`: the government information resource catalogue.
pub async fn resource_catalogue(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
) -> Json<Value> {
    let resources: Vec<Value> = app
        .catalogue
        .resources()
        .iter()
        .map(|r| {
            let dept = app.catalogue.department(&r.provider);
            let bound_by: Vec<&str> = bound_by(&app, &r.code).map(|s| s.code.as_str()).collect();
            json!({
                "code": r.code,
                "name": lang.pick(&r.name, &r.name_en),
                "provider": {
                    "uscc": r.provider,
                    "name": dept.map(|d| lang.pick(&d.name, &d.name_en)),
                },
                "share_type": r.share_type,
                "share_type_label": share_type_label(r.share_type, lang),
                "conditions": match lang {
                    Lang::En => r.conditions_en.as_deref().or(r.conditions.as_deref()),
                    Lang::Zh => r.conditions.as_deref(),
                },
                "update_cycle": r.update_cycle,
                "update_cycle_label": update_cycle_label(r.update_cycle, lang),
                "subject": r.subject.code(),
                "access": r.access,
                "cache_ttl_secs": (r.access == Access::DepartmentApi).then_some(r.cache_ttl_secs),
                "grants": r.grants,
                "bound_by": bound_by,
                "items": r.items.iter().map(|i| json!({
                    "id": i.id,
                    "name": lang.pick(&i.name, &i.name_en),
                    "type": i.data_type,
                    "personal": i.personal,
                    "authoritative": i.authoritative,
                    "subject": r.subject_of(i).code(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "total": resources.len(), "resources": resources }))
}

/// `GET /api/v1/services/{code}/prefill/sources`: what the form would be filled from and
/// why, to be read before consenting.
pub async fn sources(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    Path(code): Path<String>,
) -> AppResult<Json<Value>> {
    let service = find_service(&app, &code)?;
    Ok(Json(plan_view(&app, service, lang)))
}

/// The plan in one language.
pub fn plan_view(app: &AppState, service: &crate::domain::catalogue::Service, lang: Lang) -> Value {
    let p = prefill::plan(&app.catalogue, service);
    json!({
        "service_code": p.service_code,
        "consent_href": format!("/api/v1/services/{}/prefill/consent", service.code),
        "prefill_href": format!("/api/v1/services/{}/prefill", service.code),
        "consent_valid_hours": prefill::CONSENT_VALID_HOURS,
        "entries": p.entries.iter().map(|e| json!({
            "target": e.target,
            "id": e.id,
            "label": lang.pick(&e.label, &e.label_en),
            "source": e.source.binding,
            "resource": lang.pick(&e.source.resource_name, &e.source.resource_name_en),
            "item": lang.pick(&e.source.item_name, &e.source.item_name_en),
            "provider": lang.pick(&e.source.provider_name, &e.source.provider_name_en),
            "authoritative": e.authoritative,
            "personal": e.personal,
            "whose": e.subject.code(),
        })).collect::<Vec<_>>(),
        "resources": p.resources.iter().map(|r| json!({
            "code": r.code,
            "name": lang.pick(&r.name, &r.name_en),
            "provider": lang.pick(&r.provider_name, &r.provider_name_en),
            "share_type": r.share_type,
            "share_type_label": share_type_label(r.share_type, lang),
            "why": match lang {
                Lang::En => r.conditions_en.as_deref().or(r.conditions.as_deref()),
                Lang::Zh => r.conditions.as_deref(),
            },
        })).collect::<Vec<_>>(),
    })
}

/// `POST /api/v1/services/{code}/prefill/consent`: the applicant agrees.
pub async fn consent(
    State(app): State<AppState>,
    applicant: Applicant,
    Path(code): Path<String>,
) -> AppResult<Response> {
    let service = find_service(&app, &code)?;
    // Only someone who may apply reads anything: no data is fetched for a form they
    // cannot send (wrong kind of account, too low an assurance level, window only).
    super::cases::check_online_applicant(service, &applicant.0.session)?;
    let c = prefill::give_consent(&app, applicant.0.session.account_id, service).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "consent_id": c.id,
            "service_code": c.service_code,
            "resources": c.resources,
            "given_at": c.given_at,
            "valid_until": c.given_at + chrono::Duration::hours(prefill::CONSENT_VALID_HOURS),
            "prefill_href": format!("/api/v1/services/{}/prefill", service.code),
        })),
    )
        .into_response())
}

/// Query parameters that would name another subject are refused, not ignored, so that a
/// client that tries learns it cannot.
const SUBJECT_PARAMS: [&str; 5] = ["id_number", "uscc", "subject", "person", "enterprise"];

/// `GET /api/v1/services/{code}/prefill`: the values, with their sources.
pub async fn values(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    applicant: Applicant,
    Path(code): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Json<Value>> {
    if q.keys().any(|k| SUBJECT_PARAMS.contains(&k.as_str())) {
        return Err(AppError::Forbidden(Message::new(
            "只能预填您本人或您所代表企业的数据，不能指定他人。",
            "Only your own data, or that of the enterprise you represent, can be prefilled; you cannot name someone else.",
        )));
    }
    let service = find_service(&app, &code)?;
    super::cases::check_online_applicant(service, &applicant.0.session)?;
    let p = prefill::for_applicant(&app, &applicant.0.session, service).await?;
    Ok(Json(prefill_view(&p, lang)))
}

/// A prefill in one language.
pub fn prefill_view(p: &prefill::Prefill, lang: Lang) -> Value {
    json!({
        "service_code": p.service_code,
        "consent_id": p.consent_id,
        "fetched_at": p.fetched_at,
        "fields": p.fields.iter().map(|(id, v)| (id.clone(), json!({
            "value": v.value,
            "authoritative": v.authoritative,
            "as_of": v.as_of,
            "source": {
                "binding": v.source.binding,
                "resource": lang.pick(&v.source.resource_name, &v.source.resource_name_en),
                "item": lang.pick(&v.source.item_name, &v.source.item_name_en),
                "provider": lang.pick(&v.source.provider_name, &v.source.provider_name_en),
            },
        }))).collect::<serde_json::Map<_, _>>(),
        "materials": p.materials.iter().map(|(id, e)| (id.clone(), json!({
            "substitutable": true,
            "licence_no": e.facts.get("licence_no"),
            "issuer": e.facts.get("issuer"),
            "valid_until": e.facts.get("valid_until"),
            "as_of": e.as_of,
            "source": {
                "binding": e.source.binding,
                "resource": lang.pick(&e.source.resource_name, &e.source.resource_name_en),
                "item": lang.pick(&e.source.item_name, &e.source.item_name_en),
                "provider": lang.pick(&e.source.provider_name, &e.source.provider_name_en),
            },
        }))).collect::<serde_json::Map<_, _>>(),
        "not_found": p.not_found,
        "unavailable": p.unavailable.iter().map(|u| json!({
            "resource": u.resource,
            "message": lang.pick(&u.message, &u.message_en),
        })).collect::<Vec<_>>(),
        "complete": p.unavailable.is_empty(),
    })
}

/// A clerk's lookup of a walk-in applicant's data.
#[derive(Debug, Deserialize)]
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
pub async fn clerk_lookup(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    clerk: Clerk,
    AppJson(body): AppJson<LookupBody>,
) -> AppResult<Json<Value>> {
    let service = find_service(&app, &body.service_code)?;
    if !clerk.departments.contains(&service.department) {
        return Err(AppError::Forbidden(Message::new(
            "本大厅不受理该部门的事项。",
            "This service hall does not take applications for that department.",
        )));
    }
    let mut errors = Vec::new();
    let person = match ResidentId::parse(&body.id_number) {
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
    let enterprise = match body
        .uscc
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
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
    let purpose = body.purpose.trim();
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
    let p = prefill::fetch(&app, &who, service, &why, None).await?;
    prefill::save_snapshot(&app, s.account_id, &who, &p).await;
    Ok(Json(prefill_view(&p, lang)))
}

/// `GET /api/v1/me/data-access`: who read my data (and my enterprise's), and why.
pub async fn my_data_access(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    user: CurrentUser,
) -> AppResult<Json<Value>> {
    let (list, intact) = data_access_of(&app, &user, lang).await?;
    let records: Vec<Value> = list
        .iter()
        .map(|a| {
            let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
            v["purpose_label"] = Value::String(purpose_label(&a.purpose, lang));
            v
        })
        .collect();
    Ok(Json(json!({
        "total": records.len(),
        "records": records,
        "chain_intact": intact,
    })))
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
            let chain = app
                .store
                .data_access_chain(&audit::subject_index(&app.index_key, kind, id))
                .await?;
            intact &= crate::store::shared::verify_chain(&chain).is_ok();
        }
    }
    Ok((list, intact))
}

/// The logged-in user's ID number and represented enterprise.
pub async fn subjects_of(
    app: &AppState,
    user: &CurrentUser,
) -> AppResult<(Option<String>, Option<String>)> {
    let who = prefill::who_for_applicant(app, &user.session).await?;
    Ok((who.person, who.enterprise))
}

/// `GET /api/ops/v1/sharing`: per service and overall, the share of form fields filled
/// from shared data and of materials not uploaded.
pub async fn figures(State(app): State<AppState>, _op: Operator) -> AppResult<Json<Value>> {
    let rows = app.store.sharing_figures().await?;
    let share = |part: i64, whole: i64| {
        if whole > 0 {
            Some((part as f64 / whole as f64 * 1000.0).round() / 1000.0)
        } else {
            None
        }
    };
    let mut total = crate::store::SharingFigures::default();
    let services: Vec<Value> = rows
        .iter()
        .map(|r| {
            total.cases += r.cases;
            total.fields_filled += r.fields_filled;
            total.fields_prefilled += r.fields_prefilled;
            total.materials += r.materials;
            total.materials_substituted += r.materials_substituted;
            json!({
                "service_code": r.service_code,
                "service": app.catalogue.service(&r.service_code).map(|s| s.name.clone()),
                "cases": r.cases,
                "fields_filled": r.fields_filled,
                "fields_prefilled": r.fields_prefilled,
                "prefilled_share": share(r.fields_prefilled, r.fields_filled),
                "materials": r.materials,
                "materials_substituted": r.materials_substituted,
                "substituted_share": share(r.materials_substituted, r.materials),
            })
        })
        .collect();
    Ok(Json(json!({
        "services": services,
        "overall": {
            "cases": total.cases,
            "fields_filled": total.fields_filled,
            "fields_prefilled": total.fields_prefilled,
            "prefilled_share": share(total.fields_prefilled, total.fields_filled),
            "materials": total.materials,
            "materials_substituted": total.materials_substituted,
            "substituted_share": share(total.materials_substituted, total.materials),
        },
    })))
}

/// Body of `PUT /api/ops/v1/departments/{uscc}/data-api`.
#[derive(Debug, Deserialize)]
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

/// `PUT /api/ops/v1/departments/{uscc}/data-api`: where a department's data API is.
pub async fn put_data_api(
    State(app): State<AppState>,
    _op: Operator,
    Path(uscc): Path<String>,
    AppJson(body): AppJson<DataApiBody>,
) -> AppResult<Json<Value>> {
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
    Ok(Json(json!({ "department": uscc, "data_api": url })))
}

/// `GET /catalogue`: the resource catalogue as a page, for citizens and staff.
pub async fn catalogue_page(
    State(app): State<AppState>,
    jar: axum_extra::extract::CookieJar,
) -> Response {
    let user = super::auth::optional_user(&app, &jar).await;
    let resources: Vec<minijinja::Value> = app
        .catalogue
        .resources()
        .iter()
        .map(|r| {
            let dept = app.catalogue.department(&r.provider);
            let services: Vec<minijinja::Value> = bound_by(&app, &r.code)
                .map(|s| minijinja::context! { code => s.code.clone(), name => s.name.clone() })
                .collect();
            minijinja::context! {
                code => r.code.clone(),
                name => r.name.clone(),
                name_en => r.name_en.clone(),
                provider => dept.map(|d| d.name.clone()).unwrap_or_else(|| r.provider.clone()),
                share_type_zh => share_type_label(r.share_type, Lang::Zh),
                share_type_en => share_type_label(r.share_type, Lang::En),
                conditions => r.conditions.clone(),
                conditions_en => r.conditions_en.clone(),
                update_cycle_zh => update_cycle_label(r.update_cycle, Lang::Zh),
                update_cycle_en => update_cycle_label(r.update_cycle, Lang::En),
                services,
                items => r.items.iter().map(|i| minijinja::context! {
                    name => i.name.clone(),
                    name_en => i.name_en.clone(),
                    personal => i.personal,
                    authoritative => i.authoritative,
                }).collect::<Vec<_>>(),
            }
        })
        .collect();
    super::pages::render(
        StatusCode::OK,
        "catalogue.html",
        minijinja::context! {
            user => super::pages::user_ctx(user.as_ref()),
            resources,
        },
    )
}

/// `GET /api/ops/v1/providers`: where each shared resource comes from and whether it is
/// answering: records held in the base library, or the department's data API with its
/// circuit state.
pub async fn providers(State(app): State<AppState>, _op: Operator) -> AppResult<Json<Value>> {
    use crate::sharing::provider::CircuitState;
    let endpoints = app.store.endpoints().await?;
    let mut out = Vec::new();
    for r in app.catalogue.resources() {
        let mut v = json!({
            "resource": r.code,
            "name": r.name,
            "provider": r.provider,
            "share_type": r.share_type,
            "access": r.access,
        });
        match r.access {
            Access::BaseLibrary => {
                v["records"] = json!(app.store.count_base_records(&r.code).await?);
            }
            Access::DepartmentApi => {
                v["data_api"] = json!(
                    endpoints
                        .iter()
                        .find(|e| e.department == r.provider)
                        .and_then(|e| e.data_api.clone())
                );
                v["cache_ttl_secs"] = json!(r.cache_ttl_secs);
                v["circuit"] = json!(match app.providers.api.circuit(&r.code) {
                    CircuitState::Closed => "closed",
                    CircuitState::Open(_) => "open",
                    CircuitState::HalfOpen => "half_open",
                });
            }
        }
        out.push(v);
    }
    Ok(Json(json!({ "resources": out })))
}
