//! The HTTP surface: one flat router grouped by caller, and the middleware every request
//! passes through (request id, tracing, metrics, timeout, panic catcher, problem+json in
//! the caller's language).

pub mod apply_pages;
mod auth;
pub mod cases;
pub(crate) mod catalogue;
pub mod dept;
pub mod error;
mod health;
mod mail;
mod metrics;
pub mod openapi;
pub mod pages;
pub mod sharing;

use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::app::AppState;
use crate::domain::lang::Lang;
use error::{AppError, Message, Problem, internal_problem};

pub use self::metrics::install_recorder;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the whole router with its middleware.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.settings.request_timeout_secs);

    let public_api = Router::new()
        .route("/api/v1/departments", get(catalogue::list_departments))
        .route("/api/v1/services", get(catalogue::list_services))
        .route("/api/v1/services/{code}", get(catalogue::get_service))
        .route(
            "/api/v1/services/{code}/versions",
            get(catalogue::list_versions),
        )
        .route("/api/v1/catalogue", get(sharing::resource_catalogue))
        .route("/catalogue", get(sharing::catalogue_page))
        .route(
            "/api/v1/services/{code}/prefill/sources",
            get(sharing::sources),
        )
        .route(
            "/api/v1/services/{code}/prefill/consent",
            post(sharing::consent),
        )
        .route("/api/v1/services/{code}/prefill", get(sharing::values))
        .route("/api/staff/v1/prefill", post(sharing::clerk_lookup))
        .route("/api/v1/me/data-access", get(sharing::my_data_access))
        .route("/api/ops/v1/sharing", get(sharing::figures))
        .route("/api/ops/v1/providers", get(sharing::providers))
        .route(
            "/api/ops/v1/departments/{uscc}/data-api",
            axum::routing::put(sharing::put_data_api),
        );

    let identity = Router::new()
        .route("/", get(auth::home))
        .route("/auth/login", get(auth::login))
        .route("/auth/staff/login", get(auth::staff_login))
        .route("/auth/callback", get(auth::callback))
        .route("/auth/logout", get(auth::logout_page).post(auth::logout))
        .route("/api/v1/me", get(auth::me))
        .route(
            "/api/v1/services/{code}/eligibility",
            get(auth::eligibility),
        )
        .route("/services/{code}/eligibility", get(auth::eligibility_page));

    let case_routes = Router::new()
        .route("/api/v1/cases", get(cases::my_cases).post(cases::apply))
        .route("/api/v1/cases/{case_no}", get(cases::my_case))
        .route(
            "/api/v1/cases/{case_no}/correction",
            post(cases::supply_correction),
        )
        .route("/api/v1/cases/{case_no}/withdraw", post(cases::withdraw))
        .route("/api/v1/cases/{case_no}/rating", post(cases::rate))
        .route("/api/v1/uploads", post(cases::upload))
        .route(
            "/api/v1/drafts",
            get(cases::list_drafts).post(cases::create_draft),
        )
        .route(
            "/api/v1/drafts/{id}",
            get(cases::get_draft)
                .put(cases::update_draft)
                .delete(cases::delete_draft),
        )
        .route("/api/v1/notifications", get(cases::notifications))
        .route("/api/v1/public/cases/{case_no}", get(cases::public_case))
        .route(
            "/api/staff/v1/cases",
            get(cases::worklist).post(cases::intake),
        )
        .route("/api/staff/v1/cases/{case_no}", get(cases::staff_get))
        .route(
            "/api/staff/v1/cases/{case_no}/transitions",
            post(cases::staff_transition),
        )
        .layer(axum::extract::DefaultBodyLimit::max(52 * 1024 * 1024));

    let department_api = Router::new()
        .route("/.well-known/jwks.json", get(dept::jwks))
        .route("/api/dept/v1/cases", get(dept::list))
        .route("/api/dept/v1/cases/{case_no}", get(dept::get))
        .route(
            "/api/dept/v1/cases/{case_no}/transitions",
            post(dept::transition),
        )
        .route(
            "/api/dept/v1/cases/{case_no}/materials/{upload_id}",
            get(dept::material),
        )
        .route("/api/dept/v1/inbox", get(dept::inbox))
        .route("/api/dept/v1/inbox/{event_id}/ack", post(dept::ack))
        .route("/api/ops/v1/mail", get(mail::list))
        .route("/api/ops/v1/deliveries", get(dept::deliveries))
        .route(
            "/api/ops/v1/deliveries/{event_id}/redeliver",
            post(dept::redeliver),
        )
        .route(
            "/api/ops/v1/departments/{uscc}/delivery",
            axum::routing::put(dept::put_delivery),
        )
        .route("/api/dept/v1/openapi.json", get(openapi::department))
        .route("/api/dept/v1/whoami", get(auth::dept_whoami))
        .route(
            "/api/dept/v1/departments/{uscc}/services",
            get(auth::dept_services),
        );

    let ops = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render));

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
        .layer(middleware::from_fn(localize))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::extract::csrf_guard,
        ))
        .layer(middleware::from_fn(metrics::track))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            internal_problem().render(Lang::Zh, None)
        }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ));

    Router::new()
        .merge(public_api)
        .merge(identity)
        .merge(case_routes)
        .merge(apply_pages::routes())
        .merge(department_api)
        .merge(ops)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(layers)
        .with_state(state)
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

fn lang_of(headers: &axum::http::HeaderMap) -> Lang {
    Lang::negotiate(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
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
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    resp
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.render(Lang::Zh, None)
    }
}
