//! The edge: what every request meets before a handler, and every answer on its way out.
//!
//! - [`guard`]: rate limits by kind of call and caller ([`limits`]), and a body limit per
//!   route ([`body_limit`]: JSON and forms at most `max_json_body_bytes`, uploads as the
//!   materials allow), both answered as problem+json (429 with `Retry-After`, 413)
//!   before the body is read.
//! - [`security_headers`]: CSP without inline script or style, `nosniff`,
//!   `frame-ancestors 'none'`, `Referrer-Policy`, HSTS over https, and `Cache-Control:
//!   no-store` on every answer that does not say it may be cached (so every answer with
//!   personal data).
//!
//! The header-read timeout is the server loop's ([`super::serve`]).

pub mod limits;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::auth::session::SESSION_COOKIE;
use crate::domain::catalogue::Catalogue;
use crate::domain::form::MAX_UPLOADS_PER_MATERIAL;
use crate::http::error::{AppError, Message};
use crate::state::AppState;
use limits::{Class, Verdict, retry_after_secs};

const MB: u64 = 1024 * 1024;
/// Room for the multipart framing and the text fields beside the files.
const FORM_ROOM: u64 = MB;
/// The most a page's multipart post may carry, whatever its materials (as before).
const PAGE_FORM_CEILING: u64 = 110 * MB;

/// The largest bodies the routes that take files accept, drawn from the catalogue.
#[derive(Debug, Clone)]
pub struct UploadAllowance {
    /// One file (the upload API, a step's result document): the largest material.
    pub single: u64,
    /// A service's application page: all its materials, each as many files as allowed.
    pub per_service: HashMap<String, u64>,
    /// A page whose service is not in its address (correction, window intake).
    pub any_form: u64,
}

impl UploadAllowance {
    /// The allowance of a catalogue.
    pub fn of(catalogue: &Catalogue) -> UploadAllowance {
        let largest = catalogue
            .services()
            .iter()
            .flat_map(|s| s.materials.iter().map(|m| u64::from(m.max_size_mb)))
            .max()
            .unwrap_or(1);
        let per_service: HashMap<String, u64> = catalogue
            .services()
            .iter()
            .map(|s| {
                let files: u64 = s
                    .materials
                    .iter()
                    .map(|m| u64::from(m.max_size_mb) * MB * MAX_UPLOADS_PER_MATERIAL as u64)
                    .sum();
                (s.code.clone(), (files + FORM_ROOM).min(PAGE_FORM_CEILING))
            })
            .collect();
        let any_form = per_service
            .values()
            .copied()
            .max()
            .unwrap_or(FORM_ROOM)
            .max(largest * MB + FORM_ROOM);
        UploadAllowance {
            single: largest * MB + 64 * 1024,
            per_service,
            any_form,
        }
    }
}

/// The largest body a route takes: the upload routes as their materials allow, every
/// other route (JSON, forms) `json_limit`.
pub fn body_limit(method: &Method, path: &str, uploads: &UploadAllowance, json_limit: u64) -> u64 {
    if *method != Method::POST {
        return json_limit;
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", "v1", "uploads"] => uploads.single,
        ["services", code, "apply"] | ["services", code, "apply", "step"] => uploads
            .per_service
            .get(*code)
            .copied()
            .unwrap_or(json_limit),
        ["me", "cases", _, "correction"] | ["staff", "intake"] => uploads.any_form,
        ["desk", "cases", _, "step"] => uploads.single + FORM_ROOM,
        _ => json_limit,
    }
}

/// Who is counted for a call: the client address, the session, or the department token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Address,
    SessionElseAddress,
    TokenElseAddress,
}

/// The kind of call a request is, if it is limited.
fn classify(method: &Method, path: &str, query: Option<&str>) -> Option<(Class, Caller)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let m = method.as_str();
    Some(match (m, parts.as_slice()) {
        ("GET", ["auth", "login"] | ["auth", "staff", "login"]) => {
            (Class::LoginStart, Caller::Address)
        }
        ("POST", ["api", "v1", "cases"] | ["api", "staff", "v1", "cases"])
        | ("POST", ["services", _, "apply"] | ["staff", "intake"]) => {
            (Class::Submission, Caller::SessionElseAddress)
        }
        ("POST", ["api", "v1", "uploads"]) => (Class::Upload, Caller::SessionElseAddress),
        ("POST", ["api", "v1", "drafts"])
        | ("PUT", ["api", "v1", "drafts", _])
        | ("POST", ["services", _, "apply", "step"]) => (Class::Draft, Caller::SessionElseAddress),
        ("GET", ["api", "v1", "public", "cases", _]) => (Class::PublicQuery, Caller::Address),
        ("GET", ["status"]) if query.is_some_and(|q| !q.is_empty()) => {
            (Class::PublicQuery, Caller::Address)
        }
        (_, ["api", "dept", "v1", ..]) => (Class::DeptApi, Caller::TokenElseAddress),
        _ => return None,
    })
}

/// Whether calls of `method` on `path` (a concrete path or an OpenAPI template) are
/// rate-limited, for the API documents' 429 answers.
pub fn rate_limited(method: &Method, path: &str) -> bool {
    classify(method, path, Some("q")).is_some()
}

/// The client address as rate limits count it: the peer, or the last `X-Forwarded-For`
/// hop behind a trusted proxy; an IPv6 address counts by its /64, the block one
/// subscriber gets, so rotating addresses inside it buys nothing.
pub fn client_address(headers: &HeaderMap, peer: Option<SocketAddr>, trust_proxy: bool) -> String {
    let raw = crate::http::cases::client_of(headers, peer, trust_proxy);
    match raw.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(ip) => ip.to_string(),
        Err(_) => raw,
    }
}

/// A digest that names a secret (session id, token) in a key without holding it.
fn digest(secret: &str) -> String {
    hex::encode(&Sha256::digest(secret.as_bytes())[..12])
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, v)| *k == SESSION_COOKIE && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Rate limits and body limits, before anything reads the body.
pub async fn guard(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());

    if let Some((class, who)) = classify(&method, &path, req.uri().query()) {
        let headers = req.headers();
        let address = || {
            format!(
                "ip:{}",
                client_address(headers, peer, app.settings.server.trust_forwarded_for)
            )
        };
        let caller = match who {
            Caller::Address => address(),
            Caller::SessionElseAddress => session_cookie(headers)
                .map(|s| format!("s:{}", digest(&s)))
                .unwrap_or_else(address),
            Caller::TokenElseAddress => bearer(headers)
                .map(|t| format!("t:{}", digest(t)))
                .unwrap_or_else(address),
        };
        if let Verdict::Limited(wait) = app.limiter.check(class, &caller).await {
            let secs = retry_after_secs(wait);
            metrics::counter!("onewindow_rate_limited_total", "class" => class.code()).increment(1);
            let mut resp = AppError::TooManyRequests(class.message(secs)).into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return resp;
        }
    }

    let limit = body_limit(
        &method,
        &path,
        &app.edge_uploads,
        app.settings.limits.max_json_body_bytes,
    );
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large(limit);
    }
    // A body without a length (chunked) is cut off at the limit as it is read.
    let (parts, body) = req.into_parts();
    let limited = Body::new(http_body_util::Limited::new(
        body,
        usize::try_from(limit).unwrap_or(usize::MAX),
    ));
    next.run(Request::from_parts(parts, limited)).await
}

fn too_large(limit: u64) -> Response {
    let (n, zh_unit, en_unit) = if limit >= MB {
        (limit.div_ceil(MB), "MB", "MB")
    } else {
        (limit.div_ceil(1024), "KB", "KB")
    };
    AppError::PayloadTooLarge(Message::new(
        format!("请求内容超过此地址的上限（{n} {zh_unit}）。"),
        format!("The request body is larger than this address accepts ({n} {en_unit})."),
    ))
    .into_response()
}

/// The Content-Security-Policy of every answer: scripts and styles from this origin
/// only (no inline script, no inline style, no eval), plugin content only from this
/// origin (the staff's PDF previews of materials), no framing, no `<base>` rewriting.
/// `form-action` is left out on purpose: logging out posts a form whose answer
/// redirects to the identity provider, which `form-action 'self'` blocks.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'self'; \
    base-uri 'none'; frame-ancestors 'none'";

/// The policy of a material's file shown to staff: it may be embedded by this origin's
/// case page (the PDF preview), by nothing else, and runs no script.
pub const MATERIAL_CSP: &str = "default-src 'none'; img-src 'self'; object-src 'self'; \
    base-uri 'none'; frame-ancestors 'self'";

/// A material's file on a staff page (`/staff/cases/{no}/materials/{id}`,
/// `/desk/cases/{no}/materials/{id}`), which the case page embeds as a preview.
fn is_embedded_material(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(
        parts.as_slice(),
        ["staff" | "desk", "cases", _, "materials", _]
    )
}

/// HSTS for a gateway served over https: a year, subdomains included.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The security headers of every answer (see the module's description).
pub async fn security_headers(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let https = app.settings.server.public_url.scheme() == "https"
        || req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let embedded = is_embedded_material(req.uri().path());
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    let (csp, frames) = if embedded {
        (MATERIAL_CSP, "SAMEORIGIN")
    } else {
        (CSP, "DENY")
    };
    set(h, header::CONTENT_SECURITY_POLICY, csp);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static(frames));
    // `same-origin`, not `no-referrer`: forms posted to this origin keep their Origin
    // header (the CSRF check reads it); other sites learn nothing, not even the address
    // of a status page with a query code in it.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    set(
        h,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    // Only answers that say they may be cached are (the versioned static files, the
    // public keys, the API documents); everything else, personal data included, is not
    // stored by browsers or shared caches.
    set(h, header::CACHE_CONTROL, "no-store");
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_classified_by_method_and_route() {
        let get = Method::GET;
        let post = Method::POST;
        let c = |m: &Method, p: &str, q: Option<&str>| classify(m, p, q).map(|x| x.0);
        assert_eq!(c(&get, "/auth/login", None), Some(Class::LoginStart));
        assert_eq!(c(&get, "/auth/staff/login", None), Some(Class::LoginStart));
        assert_eq!(c(&get, "/auth/callback", None), None);
        assert_eq!(c(&post, "/api/v1/cases", None), Some(Class::Submission));
        assert_eq!(c(&get, "/api/v1/cases", None), None);
        assert_eq!(
            c(&post, "/services/hlbe-x/apply", None),
            Some(Class::Submission)
        );
        assert_eq!(
            c(&post, "/services/hlbe-x/apply/step", None),
            Some(Class::Draft)
        );
        assert_eq!(c(&put(), "/api/v1/drafts/abc", None), Some(Class::Draft));
        assert_eq!(c(&post, "/api/v1/uploads", None), Some(Class::Upload));
        assert_eq!(
            c(&get, "/api/v1/public/cases/X1", Some("query_code=1")),
            Some(Class::PublicQuery)
        );
        assert_eq!(c(&get, "/status", None), None, "the empty form is free");
        assert_eq!(
            c(&get, "/status", Some("case_no=1&query_code=2")),
            Some(Class::PublicQuery)
        );
        assert_eq!(c(&get, "/api/dept/v1/cases", None), Some(Class::DeptApi));
        assert_eq!(c(&get, "/services", None), None);
    }

    #[test]
    fn only_staff_material_files_may_be_embedded_and_only_here() {
        assert!(is_embedded_material("/staff/cases/X/materials/u"));
        assert!(is_embedded_material("/desk/cases/X/materials/u"));
        assert!(!is_embedded_material("/staff/cases/X"));
        assert!(!is_embedded_material("/api/dept/v1/cases/X/materials/u"));
        assert!(MATERIAL_CSP.contains("frame-ancestors 'self'"));
        assert!(!MATERIAL_CSP.contains("script-src"), "no script at all");
    }

    fn put() -> Method {
        Method::PUT
    }

    #[test]
    fn json_routes_take_a_megabyte_and_uploads_what_materials_allow() {
        let cat = crate::domain::catalogue::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("service-definitions"),
        )
        .expect("catalogue");
        let a = UploadAllowance::of(&cat);
        let largest = cat
            .services()
            .iter()
            .flat_map(|s| s.materials.iter().map(|m| u64::from(m.max_size_mb)))
            .max()
            .expect("materials");
        assert_eq!(a.single, largest * MB + 64 * 1024);
        let j = 1024 * 1024;
        assert_eq!(body_limit(&Method::POST, "/api/v1/cases", &a, j), j);
        assert_eq!(body_limit(&Method::PUT, "/api/v1/drafts/x", &a, j), j);
        assert_eq!(
            body_limit(&Method::POST, "/api/v1/uploads", &a, j),
            a.single
        );
        let code = &cat.services()[0].code;
        let page = body_limit(&Method::POST, &format!("/services/{code}/apply"), &a, j);
        assert!(page > a.single && page <= PAGE_FORM_CEILING, "{page}");
        assert_eq!(
            body_limit(&Method::POST, "/services/no-such/apply", &a, j),
            j
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_64_block() {
        let peer = |s: &str| Some(s.parse::<SocketAddr>().expect("addr"));
        let h = HeaderMap::new();
        assert_eq!(
            client_address(&h, peer("[2001:db8:1:2:aaaa::1]:5000"), false),
            client_address(&h, peer("[2001:db8:1:2:bbbb::9]:5001"), false)
        );
        assert_ne!(
            client_address(&h, peer("[2001:db8:1:2::1]:5000"), false),
            client_address(&h, peer("[2001:db8:1:3::1]:5000"), false)
        );
        assert_eq!(
            client_address(&h, peer("[::ffff:10.0.0.1]:1"), false),
            "10.0.0.1"
        );
        assert_eq!(client_address(&h, peer("10.0.0.1:1"), false), "10.0.0.1");
    }

    #[test]
    fn session_and_token_are_read_without_being_kept() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("lang=en; ow_session=abc; x=y"),
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tok"),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        assert_eq!(bearer(&h), Some("tok"));
        assert_eq!(digest("abc").len(), 24);
        assert!(!digest("abc").contains("abc"));
    }
}
