//! The operator's console (运维控制台):
//!
//! - `GET /ops`: the dashboard. Cases by status, service and department, the promised
//!   time limits met, the average processing time in working days, prefill and 免提交
//!   reuse, ratings with the low ones to follow up, and the health of event delivery.
//!   Every figure is an SQL aggregate (`StatsStore`, `SharedDataStore::sharing_figures`);
//!   the charts are SVG drawn here with their figures as tables.
//! - `GET /ops/departments` and `GET /ops/departments/{uscc}`: how each department
//!   receives events (set like `PUT /api/ops/v1/departments/{uscc}/delivery`), its API
//!   tokens (made like `onewindow token create`, the secret shown once; revoked like
//!   `onewindow token revoke`) and the signing keys (rotated like `onewindow keys rotate`).
//! - `GET /ops/deliveries`: events by department and state; a dead letter is redelivered
//!   like `POST /api/ops/v1/deliveries/{id}/redeliver`.
//!
//! Every change is a POST form carrying the session's CSRF token, answered by a redirect
//! to a page (or, for a new token, the page showing its secret once).

use std::collections::HashMap;

use crate::http::path::Path;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::desk::local_time;
use super::{PageCtx, check_csrf};
use crate::auth::extract::Operator;
use crate::auth::tokens;
use crate::domain::calendar::HolidayCalendar;
use crate::domain::case::CaseStatus;
use crate::domain::lang::Lang;
use crate::http::error::{AppError, AppResult, Message};
use crate::state::AppState;
use crate::store::{CaseFigures, DeliveryFilter, SharingFigures, Span};

/// The routes of the console.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ops", get(dashboard))
        .route("/ops/departments", get(departments))
        .route("/ops/departments/{uscc}", get(department))
        .route("/ops/departments/{uscc}/delivery", post(set_mode))
        .route("/ops/departments/{uscc}/tokens", post(create_token))
        .route(
            "/ops/departments/{uscc}/tokens/{id}/revoke",
            post(revoke_token),
        )
        .route("/ops/keys/rotate", post(rotate_keys))
        .route("/ops/deliveries", get(deliveries))
        .route("/ops/deliveries/{id}/redeliver", post(redeliver))
}

/// Lifetimes offered for a new token (none: no expiry).
const LIFETIMES: [&str; 4] = ["", "30d", "90d", "365d"];
/// Deliveries listed at most.
const DELIVERIES_SHOWN: i64 = 200;
/// Delivery states.
const DELIVERY_STATES: [&str; 3] = ["pending", "delivered", "dead"];

fn department_name(app: &AppState, uscc: &str, lang: Lang) -> String {
    app.catalogue
        .department(uscc)
        .map(|d| lang.pick(&d.name, &d.name_en).to_owned())
        .unwrap_or_else(|| uscc.to_owned())
}

fn service_name(app: &AppState, code: &str, lang: Lang) -> String {
    app.catalogue
        .service(code)
        .map(|s| lang.pick(&s.name, &s.name_en).to_owned())
        .unwrap_or_else(|| code.to_owned())
}

// ---- dashboard ------------------------------------------------------------------------

/// Average working days from acceptance to conclusion over the spans, with how many
/// cases it counts; spans the calendar cannot count (a missing year) are left out.
fn average_working_days(cal: &HolidayCalendar, spans: &[Span]) -> Option<(f64, i64)> {
    let mut days: i64 = 0;
    let mut n: i64 = 0;
    for s in spans {
        if let Ok(d) = cal.working_days_between(s.accepted_on, s.concluded_on) {
            days += i64::from(d) * s.n;
            n += s.n;
        }
    }
    (n > 0).then(|| (days as f64 / n as f64, n))
}

/// `part` of `whole` as a percentage with one decimal, or none of nothing.
fn percent(part: i64, whole: i64) -> Option<String> {
    (whole > 0).then(|| format!("{:.1}", part as f64 * 100.0 / whole as f64))
}

/// The dashboard's values, from the figures (pure, for tests).
fn dashboard_view(
    app: &AppState,
    f: &CaseFigures,
    sharing: &[SharingFigures],
    lang: Lang,
) -> Value {
    let by_status: Vec<Value> = f
        .by_status
        .iter()
        .map(|c| {
            let label = CaseStatus::from_code(&c.key)
                .map(|s| {
                    let (zh, en) = s.labels();
                    lang.pick(zh, en).to_owned()
                })
                .unwrap_or_else(|| c.key.clone());
            json!({ "label": label, "value": c.n })
        })
        .collect();
    let by_service: Vec<Value> = f
        .by_service
        .iter()
        .map(|c| json!({ "label": service_name(app, &c.key, lang), "value": c.n }))
        .collect();
    let by_department: Vec<Value> = f
        .by_department
        .iter()
        .map(|c| json!({ "label": department_name(app, &c.key, lang), "value": c.n }))
        .collect();
    let total: i64 = f.by_status.iter().map(|c| c.n).sum();
    let avg = average_working_days(&app.calendar.current(), &f.spans);
    let filled: i64 = sharing.iter().map(|s| s.fields_filled).sum();
    let prefilled: i64 = sharing.iter().map(|s| s.fields_prefilled).sum();
    let materials: i64 = sharing.iter().map(|s| s.materials).sum();
    let substituted: i64 = sharing.iter().map(|s| s.materials_substituted).sum();
    let reuse: Vec<Value> = sharing
        .iter()
        .filter(|s| s.fields_prefilled > 0 || s.materials_substituted > 0)
        .map(|s| {
            json!({
                "service": service_name(app, &s.service_code, lang),
                "cases": s.cases,
                "fields_filled": s.fields_filled,
                "fields_prefilled": s.fields_prefilled,
                "materials": s.materials,
                "materials_substituted": s.materials_substituted,
            })
        })
        .collect();
    let low: Vec<Value> = f
        .low_ratings
        .iter()
        .map(|r| {
            json!({
                "case_no": r.case_no,
                "service": service_name(app, &r.service_code, lang),
                "department": department_name(app, &r.department, lang),
                "rating": r.rating,
                "comment": r.comment,
                "rated_at": r.rated_at.map(local_time),
            })
        })
        .collect();
    json!({
        "total": total,
        "by_status": by_status,
        "by_service": by_service,
        "by_department": by_department,
        "concluded_with_due": f.concluded_with_due,
        "concluded_on_time": f.concluded_on_time,
        "on_time_percent": percent(f.concluded_on_time, f.concluded_with_due),
        "avg_days": avg.map(|(d, _)| format!("{d:.1}")),
        "avg_counted": avg.map(|(_, n)| n).unwrap_or(0),
        "fields_filled": filled,
        "fields_prefilled": prefilled,
        "prefill_percent": percent(prefilled, filled),
        "materials": materials,
        "materials_substituted": substituted,
        "substitute_percent": percent(substituted, materials),
        "reuse": reuse,
        "rated": f.rated,
        "rating_avg": (f.rated > 0).then(|| format!("{:.1}", f.rating_sum as f64 / f.rated as f64)),
        "low_ratings": low,
    })
}

/// How long ago, in whole minutes, hours or days, in the page language.
fn age(since: DateTime<Utc>, now: DateTime<Utc>, lang: Lang) -> String {
    let mins = (now - since).num_minutes().max(0);
    let (n, zh, en) = if mins < 60 {
        (mins, "分钟", "min")
    } else if mins < 60 * 48 {
        (mins / 60, "小时", "h")
    } else {
        (mins / (60 * 24), "天", "days")
    };
    match lang {
        Lang::Zh => format!("{n} {zh}"),
        Lang::En => format!("{n} {en}"),
    }
}

/// `GET /ops`.
pub async fn dashboard(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    let lang = ctx.lang;
    let figures = app.store.case_figures().await?;
    let sharing = app.store.sharing_figures().await?;
    let d = app.store.delivery_figures().await?;
    let count = |state: &str| {
        d.by_state
            .iter()
            .find(|c| c.key == state)
            .map(|c| c.n)
            .unwrap_or(0)
    };
    let delivery = json!({
        "pending": count("pending"),
        "delivered": count("delivered"),
        "dead": count("dead"),
        "oldest_pending": d.oldest_pending.map(local_time),
        "oldest_age": d.oldest_pending.map(|t| age(t, Utc::now(), lang)),
        "dead_by_department": d.dead_by_department.iter()
            .map(|c| json!({ "label": department_name(&app, &c.key, lang), "value": c.n }))
            .collect::<Vec<_>>(),
    });
    // Issue 13 item 7: from 1 November, a missing next-year holiday calendar is announced.
    let missing_years = app
        .calendar
        .current()
        .years_needed(crate::usecases::today());
    let calendar = json!({
        "missing": missing_years.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        "provisional": if missing_years.is_empty() { 0 } else { app.store.provisional_cases().await?.len() },
    });
    Ok(ctx.render(
        StatusCode::OK,
        "ops/dashboard.html",
        context! {
            f => dashboard_view(&app, &figures, &sharing, lang),
            calendar,
            delivery,
            now => local_time(Utc::now()),
        },
    ))
}

// ---- departments ----------------------------------------------------------------------

/// `GET /ops/departments`: every department with how it receives events and its
/// active tokens; the signing keys.
pub async fn departments(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    let lang = ctx.lang;
    let now = Utc::now();
    let endpoints = app.store.endpoints().await?;
    let tokens = app.store.api_tokens().await?;
    let rows: Vec<Value> = app
        .catalogue
        .departments()
        .iter()
        .map(|d| {
            let e = endpoints.iter().find(|e| e.department == d.uscc);
            json!({
                "uscc": d.uscc,
                "name": lang.pick(&d.name, &d.name_en),
                "mode": e.map(|e| e.mode.as_str()).unwrap_or("pull"),
                "endpoint": e.and_then(|e| e.endpoint.clone()),
                "tokens": tokens.iter().filter(|t| t.department == d.uscc && t.is_active(now)).count(),
            })
        })
        .collect();
    let keys = keys_view(&app, now).await?;
    Ok(ctx.render(
        StatusCode::OK,
        "ops/departments.html",
        context! {
            rows,
            keys,
            rotated => q.contains_key("rotated"),
        },
    ))
}

/// The signing keys, current first.
async fn keys_view(app: &AppState, now: DateTime<Utc>) -> AppResult<Vec<Value>> {
    let ring = crate::exchange::keys::load(app.store.as_ref(), now).await?;
    let current = ring.current().kid.clone();
    let mut keys: Vec<Value> = ring
        .keys()
        .iter()
        .map(|k| {
            json!({
                "kid": k.kid,
                "current": k.kid == current,
                "created": local_time(k.created_at),
                "retires": k.retires_at.map(local_time),
                "retired": k.retires_at.is_some_and(|r| r <= now),
            })
        })
        .collect();
    keys.sort_by_key(|k| !k["current"].as_bool().unwrap_or(false));
    Ok(keys)
}

/// A token form's values kept after a refusal, with the errors at its fields.
#[derive(Debug, Default, Serialize)]
struct TokenForm {
    name: String,
    scopes: Vec<String>,
    lifetime: String,
    errors: Vec<Value>,
    name_error: Option<String>,
    scopes_error: Option<String>,
}

/// An endpoint form's values kept after a refusal.
#[derive(Debug, Default, Serialize)]
struct EndpointForm {
    mode: String,
    endpoint: String,
    errors: Vec<Value>,
    endpoint_error: Option<String>,
}

/// What the department page shows besides the department.
#[derive(Debug, Default)]
struct DeptExtras {
    token_form: TokenForm,
    endpoint_form: Option<EndpointForm>,
    /// A token just made: its id and secret, shown this once.
    created: Option<(Uuid, String)>,
    /// What was just done (`delivery`, `revoked`).
    done: Option<String>,
}

async fn render_department(
    app: &AppState,
    ctx: &PageCtx,
    uscc: &str,
    status: StatusCode,
    x: DeptExtras,
) -> AppResult<Response> {
    let lang = ctx.lang;
    let Some(d) = app.catalogue.department(uscc) else {
        return Err(AppError::NotFound(Message::new(
            "没有这个部门。",
            "There is no such department.",
        )));
    };
    let now = Utc::now();
    let e = app
        .store
        .endpoints()
        .await?
        .into_iter()
        .find(|e| e.department == uscc);
    let endpoint_form = x.endpoint_form.unwrap_or_else(|| EndpointForm {
        mode: e
            .as_ref()
            .map(|e| e.mode.clone())
            .unwrap_or_else(|| "pull".into()),
        endpoint: e
            .as_ref()
            .and_then(|e| e.endpoint.clone())
            .unwrap_or_default(),
        ..EndpointForm::default()
    });
    let tokens: Vec<Value> = app
        .store
        .api_tokens()
        .await?
        .into_iter()
        .filter(|t| t.department == uscc)
        .map(|t| {
            let state = if t.revoked_at.is_some() {
                "revoked"
            } else if !t.is_active(now) {
                "expired"
            } else {
                "active"
            };
            json!({
                "id": t.id,
                "name": t.name,
                "scopes": t.scopes,
                "created": local_time(t.created_at),
                "expires": t.expires_at.map(local_time),
                "state": state,
            })
        })
        .collect();
    let scopes: Vec<&str> = tokens::SCOPES.iter().map(|(k, _)| *k).collect();
    Ok(ctx.render(
        status,
        "ops/department.html",
        context! {
            dept => json!({
                "uscc": d.uscc,
                "name": lang.pick(&d.name, &d.name_en),
                "mode": e.as_ref().map(|e| e.mode.as_str()).unwrap_or("pull"),
                "endpoint": e.as_ref().and_then(|e| e.endpoint.clone()),
                "updated": e.as_ref().map(|e| local_time(e.updated_at)),
            }),
            endpoint_form,
            tokens,
            scopes,
            lifetimes => LIFETIMES,
            token_form => x.token_form,
            created => x.created.map(|(id, secret)| json!({ "id": id, "secret": secret })),
            done => x.done,
        },
    ))
}

/// `GET /ops/departments/{uscc}`.
pub async fn department(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path(uscc): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    let done = q
        .get("done")
        .filter(|d| ["delivery", "revoked"].contains(&d.as_str()))
        .cloned();
    render_department(
        &app,
        &ctx,
        &uscc,
        StatusCode::OK,
        DeptExtras {
            done,
            ..DeptExtras::default()
        },
    )
    .await
}

/// `POST /ops/departments/{uscc}/delivery` (`mode`, `endpoint`).
pub async fn set_mode(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path(uscc): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let op = match ctx.form_user(who, true, &form) {
        Ok(op) => op,
        Err(r) => return Ok(*r),
    };
    let mode = form.get("mode").cloned().unwrap_or_default();
    let endpoint = form
        .get("endpoint")
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty());
    // a pull department keeps no address, whatever the field still held
    let endpoint = if mode == "pull" { None } else { endpoint };
    let by = crate::audit::Who::of(&op.actor());
    match crate::http::dept::set_delivery_as(&app, &by, &uscc, &mode, endpoint.clone()).await {
        Ok(_) => {
            tracing::info!(department = %uscc, mode = %mode, "delivery mode set");
            Ok(Redirect::to(&format!("/ops/departments/{uscc}?done=delivery")).into_response())
        }
        Err(AppError::Invalid(errors)) => {
            let mut f = EndpointForm {
                mode,
                endpoint: endpoint.unwrap_or_default(),
                ..EndpointForm::default()
            };
            for e in errors {
                let text = e.message.get(ctx.lang).to_owned();
                f.errors
                    .push(json!({ "anchor": if e.field == "mode" { "mode-push" } else { "endpoint" }, "text": text }));
                f.endpoint_error = Some(text);
            }
            render_department(
                &app,
                &ctx,
                &uscc,
                StatusCode::UNPROCESSABLE_ENTITY,
                DeptExtras {
                    endpoint_form: Some(f),
                    ..DeptExtras::default()
                },
            )
            .await
        }
        Err(e) => Err(e),
    }
}

/// `POST /ops/departments/{uscc}/tokens` (`name`, `scope` repeated, `lifetime`): the
/// page answers with the secret, shown this once.
pub async fn create_token(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path(uscc): Path<String>,
    body: axum::body::Bytes,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    // `scope` repeats, so the pairs are read as a list
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let form: HashMap<String, String> = pairs.iter().cloned().collect();
    check_csrf(form.get("_csrf").map(String::as_str), Some(&o.0.session))?;
    if app.catalogue.department(&uscc).is_none() {
        return Err(AppError::NotFound(Message::new(
            "没有这个部门。",
            "There is no such department.",
        )));
    }
    let mut f = TokenForm {
        name: form
            .get("name")
            .map(|n| n.trim().to_owned())
            .unwrap_or_default(),
        scopes: pairs
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .collect(),
        lifetime: form.get("lifetime").cloned().unwrap_or_default(),
        ..TokenForm::default()
    };
    if f.name.is_empty() || f.name.chars().count() > 100 {
        let text = ctx.t("ops.error_token_name");
        f.errors
            .push(json!({ "anchor": "token-name", "text": text }));
        f.name_error = Some(text);
    }
    let scopes = match tokens::parse_scopes(&f.scopes.join(",")) {
        Ok(s) => Some(s),
        Err(_) => {
            let text = ctx.t("ops.error_token_scopes");
            f.errors.push(json!({ "anchor": "scope-0", "text": text }));
            f.scopes_error = Some(text);
            None
        }
    };
    let now = Utc::now();
    let expires_at = match f.lifetime.as_str() {
        "" => None,
        l if LIFETIMES.contains(&l) => tokens::parse_lifetime(l).ok().map(|d| now + d),
        _ => {
            return Err(AppError::BadRequest(Message::new(
                "没有这个有效期选项。",
                "There is no such lifetime.",
            )));
        }
    };
    let Some(scopes) = scopes.filter(|_| f.errors.is_empty()) else {
        return render_department(
            &app,
            &ctx,
            &uscc,
            StatusCode::UNPROCESSABLE_ENTITY,
            DeptExtras {
                token_form: f,
                ..DeptExtras::default()
            },
        )
        .await;
    };
    let (t, secret) = tokens::issue(
        app.store.as_ref(),
        &uscc,
        scopes,
        f.name.clone(),
        expires_at,
        now,
    )
    .await?;
    render_department(
        &app,
        &ctx,
        &uscc,
        StatusCode::OK,
        DeptExtras {
            created: Some((t.id, secret)),
            ..DeptExtras::default()
        },
    )
    .await
}

/// `POST /ops/departments/{uscc}/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path((uscc, id)): Path<(String, Uuid)>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    if let Err(r) = ctx.form_user(who, true, &form) {
        return Ok(*r);
    }
    let belongs = app
        .store
        .api_tokens()
        .await?
        .iter()
        .any(|t| t.id == id && t.department == uscc);
    if !belongs || !app.store.revoke_api_token(id, Utc::now()).await? {
        return Err(AppError::Conflict(Message::new(
            "该部门没有这个有效的令牌。",
            "This department has no such active token.",
        )));
    }
    tracing::info!(token = %id, department = %uscc, "API token revoked");
    Ok(Redirect::to(&format!("/ops/departments/{uscc}?done=revoked")).into_response())
}

/// `POST /ops/keys/rotate`: a new key signs from now on; the previous one stays
/// published for the default grace period.
pub async fn rotate_keys(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    if let Err(r) = ctx.form_user(who, true, &form) {
        return Ok(*r);
    }
    let ring = crate::exchange::keys::rotate(
        app.store.as_ref(),
        Utc::now(),
        crate::exchange::keys::DEFAULT_GRACE,
    )
    .await?;
    // this instance signs with the new key at once; others reload within a minute
    app.keys.refresh(app.store.as_ref()).await?;
    tracing::info!(kid = %ring.current().kid, "signing key rotated");
    Ok(Redirect::to("/ops/departments?rotated=1#keys").into_response())
}

// ---- deliveries -----------------------------------------------------------------------

/// Delivery filters.
#[derive(Debug, Default, Deserialize)]
pub struct DeliveriesQuery {
    department: Option<String>,
    state: Option<String>,
    done: Option<String>,
    before: Option<String>,
    from: Option<i64>,
}

/// `GET /ops/deliveries?department=&state=`.
pub async fn deliveries(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Query(q): Query<DeliveriesQuery>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    let lang = ctx.lang;
    let department = q.department.filter(|d| !d.is_empty());
    let state = q.state.filter(|s| DELIVERY_STATES.contains(&s.as_str()));
    let at = super::paging::ListAt::of(q.before.as_deref(), q.from, None, DELIVERIES_SHOWN);
    let rows = app
        .store
        .deliveries(&DeliveryFilter {
            state: state.clone(),
            department: department.clone(),
            case_id: None,
            after: at.before,
            limit: DELIVERIES_SHOWN + 1,
        })
        .await?;
    // one more than shown tells whether another page follows
    let next = (rows.len() as i64 > DELIVERIES_SHOWN).then(|| DELIVERIES_SHOWN as usize - 1);
    let next = next
        .and_then(|i| rows.get(i))
        .map(|d| crate::store::Cursor {
            at: d.created_at,
            id: d.id,
            due: None,
        });
    let rows = &rows[..rows.len().min(DELIVERIES_SHOWN as usize)];
    let items: Vec<Value> = rows
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "case_no": d.payload.get("case_no").and_then(Value::as_str)
                    .or_else(|| d.payload.get("data").and_then(|x| x.get("case_no")).and_then(Value::as_str)),
                "department": department_name(&app, &d.department, lang),
                "event_type": d.event_type,
                "state": d.state,
                "attempts": d.attempts,
                "created": local_time(d.created_at),
                "next_attempt": d.next_attempt_at.map(local_time),
                "last_status": d.last_status,
                "last_error": d.last_error,
                "mode": if d.endpoint.is_some() { "push" } else { "pull" },
            })
        })
        .collect();
    let departments: Vec<Value> = app
        .catalogue
        .departments()
        .iter()
        .map(|d| json!({ "uscc": d.uscc, "name": lang.pick(&d.name, &d.name_en) }))
        .collect();
    let filters = {
        let mut f = url::form_urlencoded::Serializer::new(String::new());
        if let Some(d) = &department {
            f.append_pair("department", d);
        }
        if let Some(s) = &state {
            f.append_pair("state", s);
        }
        f.finish()
    };
    let pager = super::paging::pager(
        |paging| super::paging::list_href("/ops/deliveries", &filters, paging),
        at,
        items.len(),
        minijinja::Value::from(()),
        next,
    );
    Ok(ctx.render(
        StatusCode::OK,
        "ops/deliveries.html",
        context! {
            items,
            departments,
            states => DELIVERY_STATES,
            department => department.unwrap_or_default(),
            state => state.unwrap_or_default(),
            shown => DELIVERIES_SHOWN,
            pager,
            done => q.done.filter(|d| d == "redelivered"),
        },
    ))
}

/// `POST /ops/deliveries/{id}/redeliver`: a dead letter back into the queue.
pub async fn redeliver(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path(id): Path<Uuid>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let op = match ctx.form_user(who, true, &form) {
        Ok(op) => op,
        Err(r) => return Ok(*r),
    };
    if !app.store.redeliver(id).await? {
        return Err(AppError::Conflict(Message::new(
            "只有投递失败（死信）的事件可以重新投递。",
            "Only a dead-lettered event can be redelivered.",
        )));
    }
    crate::audit::redelivered(app.store.as_ref(), &crate::audit::Who::of(&op.actor()), id).await?;
    tracing::info!(event = %id, "redelivery requested");
    let back = super::local_path(form.get("back").map(String::as_str));
    let back = if back.starts_with("/ops/deliveries") {
        back
    } else {
        "/ops/deliveries"
    };
    Ok(Redirect::to(&with_done(back)).into_response())
}

/// The deliveries page to go back to, saying the redelivery was done (once).
fn with_done(back: &str) -> String {
    let (path, query) = back.split_once('?').unwrap_or((back, ""));
    let mut q: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("done="))
        .collect();
    q.push("done=redelivered");
    format!("{path}?{}", q.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn going_back_keeps_the_filters_and_says_done_once() {
        assert_eq!(
            with_done("/ops/deliveries?state=dead&done=redelivered"),
            "/ops/deliveries?state=dead&done=redelivered"
        );
        assert_eq!(
            with_done("/ops/deliveries"),
            "/ops/deliveries?done=redelivered"
        );
    }

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).expect("date")
    }

    #[test]
    fn the_average_counts_working_days_weighted_by_cases() {
        let cal = HolidayCalendar::builtin();
        // Mon 2 Mar → Wed 4 Mar: 2 working days; Fri 6 Mar → Mon 9 Mar: 1 (the weekend
        // does not count)
        let spans = [
            Span {
                accepted_on: day(3, 2),
                concluded_on: day(3, 4),
                n: 3,
            },
            Span {
                accepted_on: day(3, 6),
                concluded_on: day(3, 9),
                n: 1,
            },
        ];
        let (avg, n) = average_working_days(cal, &spans).expect("an average");
        assert_eq!(n, 4);
        assert!((avg - 7.0 / 4.0).abs() < 1e-9, "{avg}");
        assert_eq!(average_working_days(cal, &[]), None);
    }

    #[test]
    fn the_dashboard_renders_with_every_part_filled() {
        let f = json!({
            "total": 2, "by_status": [{"label": "Approved", "value": 1}],
            "by_service": [], "by_department": [],
            "concluded_with_due": 1, "concluded_on_time": 1, "on_time_percent": "100.0",
            "avg_days": "0.0", "avg_counted": 1, "fields_filled": 8, "fields_prefilled": 2,
            "prefill_percent": "25.0", "materials": 2, "materials_substituted": 1,
            "substitute_percent": "50.0",
            "reuse": [{"service": "S", "cases": 1, "fields_filled": 8, "fields_prefilled": 2,
                       "materials": 2, "materials_substituted": 1}],
            "rated": 1, "rating_avg": "1.0",
            "low_ratings": [{"case_no": "HLBE1", "service": "S", "department": "D", "rating": 1,
                             "comment": "slow", "rated_at": "2026-03-02 10:00"}],
        });
        let delivery = json!({"pending": 1, "delivered": 0, "dead": 1,
            "oldest_pending": "2026-03-02 10:00", "oldest_age": "5 min",
            "dead_by_department": [{"label": "D", "value": 1}]});
        let calendar = json!({"missing": "2027", "provisional": 3});
        for lang in ["en", "zh-CN"] {
            let html = super::super::render_text(
                "ops/dashboard.html",
                minijinja::context! { f, calendar, delivery, now => "x", lang },
            );
            let html = html.unwrap_or_else(|e| panic!("{lang}: {e:#}"));
            assert!(html.contains("HLBE1"));
            assert!(
                html.contains("calendar-warning") && html.contains("2027"),
                "{html}"
            );
        }
    }

    #[test]
    fn percentages_have_one_decimal_and_none_of_nothing() {
        assert_eq!(percent(2, 3).as_deref(), Some("66.7"));
        assert_eq!(percent(0, 0), None);
    }

    #[test]
    fn ages_are_in_words_of_the_page_language() {
        let now = Utc::now();
        assert_eq!(
            age(now - chrono::Duration::minutes(5), now, Lang::En),
            "5 min"
        );
        assert_eq!(
            age(now - chrono::Duration::hours(3), now, Lang::Zh),
            "3 小时"
        );
        assert_eq!(
            age(now - chrono::Duration::days(4), now, Lang::En),
            "4 days"
        );
    }
}
