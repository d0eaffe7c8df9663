//! The HTTP surface: one router grouped by caller (public, citizen, staff, operator,
//! department, probes, pages), each group a function; and the middleware every request
//! passes through (request id, tracing, metrics, timeout, panic catcher, problem+json in
//! the caller's language). The JSON groups carry their OpenAPI description with them
//! (`utoipa-axum`), so the document at `/api/openapi.json` is drawn from the routes served.

pub mod apply_pages;
mod auth;
pub mod cases;
pub(crate) mod catalogue;
pub mod catalogue_mgmt;
pub mod catalogue_mgmt_pages;
pub mod dept;
pub mod edge;
pub mod error;
pub mod grants;
mod health;
mod mail;
mod metrics;
pub mod open;
pub mod open_pages;
pub mod openapi;
pub mod pages;
pub mod path;
pub mod region;
pub mod serve;
pub mod sharing;
pub mod supervision;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::domain::lang::Lang;
use error::{AppError, Message, Problem, internal_problem};
use openapi::Caller;

pub use self::metrics::install_recorder;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the whole router with its middleware: the JSON API (documented, grouped by
/// caller), the pages, and the fallbacks every unknown address or method gets.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.settings.server.request_timeout_secs);

    // Layers listed outermost first: the request id exists before the trace span opens,
    // and every answer (even a panic or a timeout) passes through `localize`.
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    // The path only: query strings may carry query codes or personal data.
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            edge::security_headers,
        ))
        .layer(middleware::from_fn(localize))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::extract::csrf_guard,
        ))
        .layer(middleware::from_fn(metrics::track))
        .layer(middleware::from_fn_with_state(state.clone(), edge::guard))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            internal_problem().render(Lang::Zh, None)
        }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ));

    Router::new()
        .merge(Router::from(api()))
        .merge(pages())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(layers)
        .with_state(state)
}

/// The largest body a case route takes: an upload, or an application with its form.
const CASE_BODY_LIMIT: usize = 52 * 1024 * 1024;

/// Every JSON route with its OpenAPI description, grouped by who calls it. The router
/// serves these routes and `openapi::api_document` is drawn from the same value, so a
/// route cannot be served undocumented by accident nor documented without being served.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(openapi::for_caller(Caller::Public, public()))
        .merge(openapi::for_caller(Caller::Citizen, citizen()))
        .merge(openapi::for_caller(Caller::Staff, staff()))
        .merge(openapi::for_caller(Caller::Operator, operator()))
        .merge(openapi::for_caller(Caller::Department, department()))
        .merge(openapi::for_caller(Caller::Probes, probes()))
}

/// No login: the catalogue, the service guides, the prefill plan, eligibility, the
/// public case query and this API's document.
fn public() -> OpenApiRouter<AppState> {
    let cases = OpenApiRouter::new()
        .routes(routes!(cases::public_case))
        .layer(DefaultBodyLimit::max(CASE_BODY_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(catalogue::list_departments))
        .routes(routes!(catalogue::list_services))
        .routes(routes!(catalogue::get_service))
        .routes(routes!(catalogue::list_versions))
        .routes(routes!(auth::eligibility))
        .routes(routes!(sharing::resource_catalogue))
        .routes(routes!(sharing::sources))
        .routes(routes!(openapi::whole))
        .merge(open::public_api())
        .merge(catalogue_mgmt::public_api())
        .merge(cases)
}

/// A logged-in citizen or enterprise user (the public login): their account, their
/// applications, drafts and uploads, prefill with consent, and who read their data.
fn citizen() -> OpenApiRouter<AppState> {
    let cases = OpenApiRouter::new()
        .routes(routes!(cases::my_cases, cases::apply))
        .routes(routes!(cases::my_case))
        .routes(routes!(cases::supply_correction))
        .routes(routes!(cases::withdraw))
        .routes(routes!(cases::rate))
        .routes(routes!(cases::upload))
        .routes(routes!(cases::list_drafts, cases::create_draft))
        .routes(routes!(
            cases::get_draft,
            cases::update_draft,
            cases::delete_draft
        ))
        .routes(routes!(cases::notifications))
        .layer(DefaultBodyLimit::max(CASE_BODY_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(auth::me))
        .routes(routes!(sharing::consent))
        .routes(routes!(sharing::values))
        .routes(routes!(sharing::my_data_access))
        .merge(cases)
}

/// Window clerks and department officers (the staff login): the worklist, intake at the
/// window, steps, and a clerk's audited lookup of a walk-in applicant's data.
fn staff() -> OpenApiRouter<AppState> {
    let cases = OpenApiRouter::new()
        .routes(routes!(cases::worklist, cases::intake))
        .routes(routes!(cases::staff_get))
        .routes(routes!(cases::staff_transition))
        .layer(DefaultBodyLimit::max(CASE_BODY_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(sharing::clerk_lookup))
        .merge(supervision::staff_api())
        .merge(open::staff_api())
        .merge(catalogue_mgmt::staff_api())
        .merge(grants::staff_api())
        .merge(cases)
}

/// Operators: sharing figures, the providers' state, departments' data APIs, event
/// delivery and the mail queue.
fn operator() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sharing::figures))
        .routes(routes!(sharing::providers))
        .routes(routes!(sharing::put_data_api))
        .routes(routes!(mail::list))
        .routes(routes!(dept::deliveries))
        .routes(routes!(dept::redeliver))
        .routes(routes!(dept::put_delivery))
        .routes(routes!(region::overview))
        .routes(routes!(region::redeliver_one))
        .routes(routes!(region::redeliver_all))
        .merge(supervision::operator_api())
        .merge(open::operator_api())
        .merge(catalogue_mgmt::operator_api())
        .merge(grants::operator_api())
}

/// Department back-end systems (API token): the status API, the pull inbox, materials,
/// the keys that sign pushed events, and the department document. Its document alone is
/// `/api/dept/v1/openapi.json`.
fn department() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(auth::dept_whoami))
        .routes(routes!(auth::dept_services))
        .routes(routes!(dept::list))
        .routes(routes!(dept::get))
        .routes(routes!(dept::transition))
        .routes(routes!(dept::material))
        .routes(routes!(dept::inbox))
        .routes(routes!(dept::ack))
        .routes(routes!(dept::jwks))
        .routes(routes!(openapi::department))
        .merge(grants::department_api())
        .layer(middleware::from_fn(
            crate::supervision::systems::count_token_use,
        ))
}

/// Load balancers and monitoring: liveness, readiness, Prometheus metrics.
fn probes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::render))
}

/// Browsers: the HTML pages and the login redirects. Not in the API document: they answer
/// pages and redirects, not JSON.
fn pages() -> Router<AppState> {
    Router::new()
        .route("/lang/{code}", get(pages::switch_lang))
        .route("/static/{name}", get(pages::assets::serve))
        .route("/auth/login", get(auth::login))
        .route("/auth/staff/login", get(auth::staff_login))
        .route("/auth/callback", get(auth::callback))
        .route("/auth/logout", get(auth::logout_page).post(auth::logout))
        .route("/services/{code}/eligibility", get(auth::eligibility_page))
        .route("/catalogue", get(sharing::catalogue_page))
        .merge(apply_pages::routes())
        .merge(pages::desk::routes())
        .merge(pages::ops::routes())
        .merge(pages::clerk::routes())
        .merge(pages::citizen::routes())
        .merge(supervision::pages())
        .merge(open_pages::routes())
        .merge(region::pages())
        .merge(catalogue_mgmt_pages::routes())
        .merge(grants::pages())
        .merge(crate::demo::routes())
}

async fn not_found() -> AppError {
    AppError::NotFound(Message::new(
        "没有这个地址。接口列表见 README。",
        "There is nothing at this address. See the README for the API.",
    ))
}

async fn method_not_allowed() -> Response {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        Message::new("不支持该请求方法", "Method not allowed"),
        Message::new(
            "此地址不支持该请求方法。",
            "This address does not accept that method.",
        ),
    )
    .render(Lang::Zh, None)
}

/// The caller's language, from `Accept-Language`. Never fails.
#[derive(Debug, Clone, Copy)]
pub struct AcceptLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for AcceptLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(AcceptLang(lang_of(&parts.headers)))
    }
}

/// The caller's language: the `lang` cookie a reader chose on a page, else
/// `Accept-Language`, else Chinese.
fn lang_of(headers: &axum::http::HeaderMap) -> Lang {
    pages::page_lang(None, headers)
}

/// Renders problem documents in the caller's language with the request id to quote,
/// and turns a bare timeout 503 into a problem document too.
async fn localize(req: Request, next: Next) -> Response {
    let lang = lang_of(req.headers());
    let html = pages::wants_html(req.headers());
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let resp = next.run(req).await;
    let problem = resp.extensions().get::<Problem>().cloned();
    let timed_out = resp.status() == StatusCode::SERVICE_UNAVAILABLE
        && !resp.headers().contains_key(header::CONTENT_TYPE);
    let rerender = |p: &Problem, original: &Response| {
        let mut fresh = if html {
            pages::problem_page(p, lang, request_id.as_deref())
        } else {
            p.render(lang, request_id.as_deref())
        };
        // keep what the handler set besides the body (WWW-Authenticate, Set-Cookie …)
        for (k, v) in original.headers() {
            if k != header::CONTENT_TYPE
                && k != header::CONTENT_LENGTH
                && k != header::CONTENT_LANGUAGE
            {
                fresh.headers_mut().append(k.clone(), v.clone());
            }
        }
        fresh
    };
    let mut resp = match problem {
        Some(p) => rerender(&p, &resp),
        None if timed_out => AppError::Unavailable(Message::new(
            "请求处理超时，请稍后重试。",
            "The request took too long. Please try again later.",
        ))
        .problem()
        .render(lang, request_id.as_deref()),
        None => resp,
    };
    if !resp.headers().contains_key(header::CONTENT_LANGUAGE)
        && let Ok(v) = HeaderValue::from_str(lang.tag())
    {
        resp.headers_mut().insert(header::CONTENT_LANGUAGE, v);
    }
    resp.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Cookie"),
    );
    resp
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.render(Lang::Zh, None)
    }
}
