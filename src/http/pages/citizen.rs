//! The citizen's and the enterprise user's pages, besides applying:
//!
//! - `GET /`: search, browse by department, by 个人 / 法人 and by life event (一件事), the
//!   public status query box and the login.
//! - `GET /services?q=&dept=&who=&event=`: the services found, each saying whether the
//!   reader can apply online and, if not, why and where to go instead.
//! - `GET /services/{code}`: the service guide (办事指南).
//! - `GET /status?case_no=&query_code=`: the public status query (no login).
//! - `/me/…`: my cases, a case with its actions, drafts, messages, who read my data
//!   ([`cases`]).
//!
//! Every text is a message of `frontend/messages/citizen.toml`; data held in both
//! languages is picked in the page language.

mod cases;

use std::collections::BTreeMap;

use crate::http::path::Path;
use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use minijinja::{Value, context};
use serde::Deserialize;

use super::PageCtx;
use crate::auth::identity::Role;
use crate::auth::session::Session;
use crate::domain::catalogue::{ApplicantType, Catalogue, Channel, LimitUnit, Service, TimeLimit};
use crate::domain::lang::Lang;
use crate::http::auth::eligibility_of;
use crate::http::cases::views::PublicCase;
use crate::http::cases::{PUBLIC_QUERY_WAIT_MINUTES, PublicAnswer, public_lookup};
use crate::http::error::AppResult;
use crate::state::AppState;

pub use cases::data_access;

/// The routes of these pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/services", get(services))
        .route("/services/{code}", get(guide))
        .route("/status", get(status))
        .merge(cases::routes())
}

/// The enterprise (USCC) an enterprise user acts for, from their login.
pub fn acting_enterprise(s: &Session) -> Option<String> {
    s.roles.iter().find_map(|r| match r {
        Role::EnterpriseUser { uscc } => Some(uscc.clone()),
        _ => None,
    })
}

pub(crate) use super::cst;

/// A time limit in words: `20 个工作日` / `20 working days`.
fn limit_text(l: &TimeLimit, lang: Lang) -> String {
    let key = match l.unit {
        _ if l.value == 0 => "citizen.limit_same_day",
        LimitUnit::WorkingDays => "citizen.limit_working_days",
        LimitUnit::NaturalDays => "citizen.limit_calendar_days",
    };
    super::i18n::text(lang, key, &[("n", l.value.to_string())]).unwrap_or_default()
}

fn applicant_types(s: &Service, lang: Lang) -> Vec<&'static str> {
    s.applicant_types
        .iter()
        .map(|t| match t {
            ApplicantType::Person => lang.pick("个人", "Individuals"),
            ApplicantType::Enterprise => lang.pick("法人", "Legal entities"),
        })
        .collect()
}

/// Where to go instead of applying online: the guide's first place.
fn place_of(s: &Service, lang: Lang) -> Value {
    match s.guide.places.first() {
        Some(p) => context! {
            name => lang.pick(&p.name, &p.name_en),
            address => match lang {
                Lang::En => p.address_en.clone().unwrap_or_else(|| p.address.clone()),
                Lang::Zh => p.address.clone(),
            },
            address_zh_only => lang == Lang::En && p.address_en.is_none(),
            hours => lang.pick(&p.hours, &p.hours_en),
            phone => p.phone.clone(),
        },
        None => Value::from(()),
    }
}

/// One service as a list shows it: its names, department, who applies, and whether this
/// reader can apply online (if not: why, and where to go instead).
pub(crate) fn service_card(
    cat: &Catalogue,
    s: &Service,
    lang: Lang,
    user: Option<&Session>,
) -> Value {
    let e = eligibility_of(s, user);
    let online = s.channels.contains(&Channel::Online);
    let reasons: Vec<String> = e
        .reasons
        .iter()
        .filter(|_| !e.needs_login || !online)
        .map(|r| r.get(lang).to_owned())
        .collect();
    context! {
        code => s.code.clone(),
        name => lang.pick(&s.name, &s.name_en),
        summary => lang.pick(&s.guide.summary, &s.guide.summary_en),
        department => cat.department(&s.department).map(|d| lang.pick(&d.short_name, &d.short_name_en).to_owned()),
        who => applicant_types(s, lang),
        online,
        can_apply => e.eligible,
        // not logged in, but online applications are possible: offer the login
        login_to_apply => e.needs_login && online && reasons.is_empty(),
        needs_assurance => e.needs_assurance,
        reasons,
        place => place_of(s, lang),
        promised => limit_text(&s.guide.promised_limit, lang),
    }
}

/// The query of `/services`.
#[derive(Debug, Default, Deserialize)]
pub struct ServiceQuery {
    /// Words to search for.
    q: Option<String>,
    /// A department's USCC.
    dept: Option<String>,
    /// `person` or `enterprise`.
    who: Option<String>,
    /// A life event's code.
    event: Option<String>,
}

/// The services matching a query, in catalogue order (a life event's in its order).
pub(crate) fn find_services<'a>(cat: &'a Catalogue, q: &ServiceQuery) -> Vec<&'a Service> {
    let words = q.q.as_deref().unwrap_or("").trim();
    let event = q
        .event
        .as_deref()
        .and_then(|e| cat.life_events().iter().find(|x| x.code == e));
    let base: Vec<&Service> = match event {
        Some(e) => e.services.iter().filter_map(|c| cat.service(c)).collect(),
        None => cat.services().iter().collect(),
    };
    base.into_iter()
        .filter(|s| words.split_whitespace().all(|w| s.matches_keyword(w)))
        .filter(|s| {
            q.dept
                .as_deref()
                .filter(|d| !d.is_empty())
                .is_none_or(|d| s.department == d)
        })
        .filter(|s| match q.who.as_deref() {
            Some("person") => s.applicant_types.contains(&ApplicantType::Person),
            Some("enterprise") => s.applicant_types.contains(&ApplicantType::Enterprise),
            _ => true,
        })
        .collect()
}

fn departments(cat: &Catalogue, lang: Lang) -> Vec<Value> {
    cat.departments()
        .iter()
        .map(|d| {
            let n = cat
                .services()
                .iter()
                .filter(|s| s.department == d.uscc)
                .count();
            context! { uscc => d.uscc.clone(), name => lang.pick(&d.short_name, &d.short_name_en), count => n }
        })
        .filter(|d| d.get_attr("count").ok().and_then(|c| c.as_usize()) != Some(0))
        .collect()
}

fn life_events(cat: &Catalogue, lang: Lang) -> Vec<Value> {
    cat.life_events()
        .iter()
        .map(|e| context! { code => e.code.clone(), name => lang.pick(&e.name, &e.name_en), count => e.services.len() })
        .collect()
}

/// `GET /`: the home page.
pub async fn home(State(app): State<AppState>, ctx: PageCtx) -> Response {
    let cat = &app.catalogue;
    let count = |t: ApplicantType| {
        cat.services()
            .iter()
            .filter(|s| s.applicant_types.contains(&t))
            .count()
    };
    ctx.render(
        StatusCode::OK,
        "home.html",
        context! {
            departments => departments(cat, ctx.lang),
            events => life_events(cat, ctx.lang),
            persons => count(ApplicantType::Person),
            enterprises => count(ApplicantType::Enterprise),
            total => cat.services().len(),
            demo => crate::demo::personas_view(&app.settings, ctx.lang),
        },
    )
}

/// `GET /services`: the search and browse results.
pub async fn services(
    State(app): State<AppState>,
    ctx: PageCtx,
    q: Result<Query<ServiceQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = q.map(|q| q.0).unwrap_or_default();
    let cat = &app.catalogue;
    let found: Vec<Value> = find_services(cat, &q)
        .into_iter()
        .map(|s| service_card(cat, s, ctx.lang, ctx.session.as_ref()))
        .collect();
    let event = q
        .event
        .as_deref()
        .and_then(|e| cat.life_events().iter().find(|x| x.code == e))
        .map(|e| ctx.pick(&e.name, &e.name_en).to_owned());
    ctx.render(
        StatusCode::OK,
        "citizen/services.html",
        context! {
            found,
            q => q.q.clone().unwrap_or_default(),
            dept => q.dept.clone().unwrap_or_default(),
            who => q.who.clone().unwrap_or_default(),
            event_code => q.event.clone().unwrap_or_default(),
            event,
            departments => departments(cat, ctx.lang),
            events => life_events(cat, ctx.lang),
        },
    )
}

/// `GET /services/{code}`: the service guide.
pub async fn guide(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
) -> AppResult<Response> {
    let cat = &app.catalogue;
    let s = crate::http::catalogue::find_service(&app, &code)?;
    let lang = ctx.lang;
    let card = service_card(cat, s, lang, ctx.session.as_ref());
    let conditions: Vec<&String> = match lang {
        Lang::Zh => s.guide.conditions.iter().collect(),
        Lang::En => s.guide.conditions_en.iter().collect(),
    };
    let materials: Vec<Value> = s
        .materials
        .iter()
        .map(|m| {
            let substitute = m.substitute.as_deref().and_then(|b| cat.binding(b)).map(
                |(r, i)| {
                    format!(
                        "{} · {}",
                        lang.pick(&r.name, &r.name_en),
                        lang.pick(&i.name, &i.name_en)
                    )
                },
            );
            context! {
                name => lang.pick(&m.name, &m.name_en),
                required => m.required,
                copies => m.copies,
                types => m.file_types.iter().map(|t| format!("{t:?}").to_uppercase()).collect::<Vec<_>>(),
                max_mb => m.max_size_mb,
                help => match lang { Lang::Zh => m.help.clone(), Lang::En => m.help_en.clone() },
                substitute,
                free => m.substitute.is_some(),
            }
        })
        .collect();
    let places: Vec<Value> = s
        .guide
        .places
        .iter()
        .map(|p| {
            context! {
                name => lang.pick(&p.name, &p.name_en),
                address => match lang { Lang::En => p.address_en.clone().unwrap_or_else(|| p.address.clone()), Lang::Zh => p.address.clone() },
                address_zh_only => lang == Lang::En && p.address_en.is_none(),
                hours => lang.pick(&p.hours, &p.hours_en),
                phone => p.phone.clone(),
            }
        })
        .collect();
    let dept = cat.department(&s.department);
    Ok(ctx.render(
        StatusCode::OK,
        "citizen/guide.html",
        context! {
            s => card,
            department_name => dept.map(|d| lang.pick(&d.name, &d.name_en).to_owned()),
            department_phone => dept.and_then(|d| d.phone.clone()),
            conditions,
            materials,
            places,
            legal_limit => limit_text(&s.guide.legal_limit, lang),
            promised_limit => limit_text(&s.guide.promised_limit, lang),
            fee => lang.pick(&s.guide.fee, &s.guide.fee_en),
            legal_basis => s.guide.legal_basis.clone(),
            max_visits => s.guide.max_visits,
            result => match lang { Lang::Zh => s.guide.result.clone(), Lang::En => s.guide.result_en.clone() },
            channels => s.channels.iter().map(|c| match c {
                Channel::Online => ctx.t("citizen.channel_online"),
                Channel::Window => ctx.t("citizen.channel_window"),
            }).collect::<Vec<_>>(),
            min_assurance => s.min_assurance,
            joint => s.routing.departments.len() > 1,
        },
    ))
}

/// The query of `/status`.
#[derive(Debug, Default, Deserialize)]
pub struct StatusQuery {
    case_no: Option<String>,
    query_code: Option<String>,
}

/// `GET /status`: the public status query (case number and query code, no login). The
/// same lookup and limits as `GET /api/v1/public/cases/{case_no}`.
pub async fn status(
    State(app): State<AppState>,
    ctx: PageCtx,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    q: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Response> {
    let q = q.map(|q| q.0).unwrap_or_default();
    let case_no = q.case_no.as_deref().unwrap_or("").trim().to_owned();
    let code = q.query_code.as_deref().unwrap_or("").trim().to_owned();
    let asked = q.case_no.is_some() || q.query_code.is_some();
    let mut errors: Vec<Value> = Vec::new();
    let mut field_errors: BTreeMap<&str, String> = BTreeMap::new();
    if asked && case_no.is_empty() {
        field_errors.insert("case_no", ctx.t("citizen.status_need_case_no"));
    }
    if asked && code.is_empty() {
        field_errors.insert("query_code", ctx.t("citizen.status_need_code"));
    }
    for (k, v) in &field_errors {
        errors.push(context! { anchor => *k, text => v });
    }
    let mut found = Value::from(());
    let mut limited = false;
    let mut status = StatusCode::OK;
    if asked && field_errors.is_empty() {
        let client = crate::http::edge::client_address(
            &headers,
            Some(peer),
            app.settings.server.trust_forwarded_for,
        );
        match public_lookup(&app, &client, &case_no, &code).await? {
            PublicAnswer::Found(c, events) => {
                let p = PublicCase::of(&app, &c, &events, ctx.lang);
                found = context! {
                    case_no => p.case_no,
                    service => p.service,
                    department => p.department,
                    status => p.status,
                    submitted_at => cst(p.submitted_at),
                    deadline => p.deadline,
                    timeline => p.timeline.iter().map(|e| context! {
                        when => cst(e.at),
                        who => e.by.clone(),
                        what => e.action_label.clone().or_else(|| e.status.label.clone()),
                    }).collect::<Vec<_>>(),
                };
            }
            PublicAnswer::Wrong => {
                status = StatusCode::NOT_FOUND;
                errors
                    .push(context! { anchor => "case_no", text => ctx.t("citizen.status_wrong") });
            }
            PublicAnswer::Limited => {
                status = StatusCode::TOO_MANY_REQUESTS;
                limited = true;
            }
        }
    } else if !field_errors.is_empty() {
        status = StatusCode::UNPROCESSABLE_ENTITY;
    }
    let mut resp = ctx.render(
        status,
        "citizen/status.html",
        context! {
            case_no, query_code => code, errors, field_errors => Value::from_serialize(&field_errors),
            found, limited, wait => PUBLIC_QUERY_WAIT_MINUTES,
        },
    );
    if limited {
        let secs = (PUBLIC_QUERY_WAIT_MINUTES * 60).to_string();
        if let Ok(v) = axum::http::HeaderValue::from_str(&secs) {
            resp.headers_mut().insert("retry-after", v);
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        crate::domain::catalogue::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("service-definitions"),
        )
        .expect("the shipped definitions load")
    }

    #[test]
    fn search_browse_and_life_events_narrow_the_services() {
        let cat = catalogue();
        let all = find_services(&cat, &ServiceQuery::default()).len();
        assert_eq!(all, cat.services().len());
        let q = |q: &str, who: &str, event: &str| ServiceQuery {
            q: Some(q.into()),
            dept: None,
            who: Some(who.into()),
            event: Some(event.into()),
        };
        let found = find_services(&cat, &q("社会保障卡", "", ""));
        assert!(
            found.iter().any(|s| s.name == "社会保障卡申领"),
            "{found:?}"
        );
        let firms = find_services(&cat, &q("", "enterprise", ""));
        assert!(!firms.is_empty());
        assert!(
            firms
                .iter()
                .all(|s| s.applicant_types.contains(&ApplicantType::Enterprise))
        );
        let born = find_services(&cat, &q("", "", "newborn"));
        assert_eq!(born[0].code, cat.life_events()[0].services[0]);
        assert!(find_services(&cat, &q("没有这种事项xyz", "", "")).is_empty());
    }

    #[test]
    fn a_window_only_service_says_where_to_go() {
        let cat = catalogue();
        let mut s = cat.services()[0].clone();
        s.channels = vec![Channel::Window];
        let card = service_card(&cat, &s, Lang::En, None);
        let attr = |k: &str| card.get_attr(k).expect("attribute");
        assert!(!attr("can_apply").is_true());
        assert!(!attr("login_to_apply").is_true());
        let reasons = attr("reasons");
        assert!(reasons.to_string().contains("service window"), "{reasons}");
        assert!(!attr("place").is_none());
    }

    #[test]
    fn times_are_shown_in_china_time() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-01-01T16:30:00Z")
            .expect("a time")
            .with_timezone(&chrono::Utc);
        assert_eq!(cst(at), "2026-01-02 00:30");
    }
}
