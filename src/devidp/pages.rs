//! The dev IdP's few HTML pages: the persona picker, the error page shown when it cannot
//! safely redirect, and the signed-out page. They are templates in
//! `frontend/templates/devidp/`, rendered by the gateway's one template environment, so
//! every value that came from the request is escaped the same way as on the gateway's
//! own pages. Chinese first, English second; no JavaScript needed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::personas::Persona;
use crate::http::pages::render_text;

/// Renders a page into an HTML response with headers that keep it out of caches, frames
/// and referrers (the picker's URL carries `state`, `nonce` and the PKCE challenge).
fn html(status: StatusCode, template: &str, ctx: minijinja::Value) -> Response {
    let page = match render_text(template, ctx) {
        Ok(page) => page,
        Err(e) => {
            tracing::error!(template, error = %e, "dev IdP page rendering failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
    };
    let mut resp = (status, page).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    resp
}

/// A persona as the picker shows it, labels resolved.
#[derive(Serialize)]
struct PersonaView {
    id: &'static str,
    name: &'static str,
    kind_zh: &'static str,
    kind_en: &'static str,
    acr_zh: &'static str,
    acr_en: &'static str,
    description_zh: &'static str,
    description_en: &'static str,
}

/// One heading of the picker and the personas under it.
#[derive(Serialize)]
struct Group {
    kind: &'static str,
    zh: &'static str,
    en: &'static str,
    personas: Vec<PersonaView>,
}

/// The persona picker. `params` are the authorization request's parameters, carried on
/// as hidden inputs (without any previous `login_hint`) so each button replays the
/// request with `login_hint` added.
pub(super) fn picker(
    client_id: &str,
    params: &[(String, String)],
    personas: &[Persona],
    unknown_hint: Option<&str>,
) -> Response {
    let hidden: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "login_hint").collect();
    let groups: Vec<Group> = [
        ("citizen", "自然人", "Citizens"),
        ("enterprise", "法人", "Enterprises"),
        ("staff", "工作人员", "Staff"),
    ]
    .into_iter()
    .map(|(kind, zh, en)| Group {
        kind,
        zh,
        en,
        personas: personas
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| {
                let ((kind_zh, kind_en), (acr_zh, acr_en)) = (p.kind_label(), p.acr_label());
                PersonaView {
                    id: p.id,
                    name: p.name,
                    kind_zh,
                    kind_en,
                    acr_zh,
                    acr_en,
                    description_zh: p.description_zh,
                    description_en: p.description_en,
                }
            })
            .collect(),
    })
    .filter(|g| !g.personas.is_empty())
    .collect();
    html(
        StatusCode::OK,
        "devidp/picker.html",
        minijinja::context! { client_id, unknown_hint, hidden, groups },
    )
}

/// The page shown when a request cannot be answered with a redirect (unknown client or
/// unregistered `redirect_uri`): redirecting there would make this an open redirector.
pub(super) fn error_page(detail_zh: &str, detail_en: &str) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        "devidp/error.html",
        minijinja::context! { detail_zh, detail_en },
    )
}

/// The page shown after logout when there is nowhere registered to send the user back to.
pub(super) fn signed_out() -> Response {
    html(
        StatusCode::OK,
        "devidp/signed_out.html",
        minijinja::context! {},
    )
}
