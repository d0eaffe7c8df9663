//! Server-rendered pages (minijinja, auto-escaped). Pages work without JavaScript.

use std::sync::LazyLock;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;

use super::error::Problem;
use crate::auth::session::Session;
use crate::domain::lang::Lang;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, text) in [
        ("base.html", include_str!("../../templates/base.html")),
        ("home.html", include_str!("../../templates/home.html")),
        ("error.html", include_str!("../../templates/error.html")),
        ("logout.html", include_str!("../../templates/logout.html")),
        (
            "catalogue.html",
            include_str!("../../templates/catalogue.html"),
        ),
        (
            "eligibility.html",
            include_str!("../../templates/eligibility.html"),
        ),
    ] {
        if let Err(e) = env.add_template(name, text) {
            tracing::error!(template = name, error = %e, "template does not compile");
        }
    }
    env
});

/// Renders a template to an HTML response with a status.
pub fn render(status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    let html = TEMPLATES.get_template(name).and_then(|t| t.render(ctx));
    match html {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "page rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// The user shown in the page header.
pub fn user_ctx(session: Option<&Session>) -> minijinja::Value {
    match session {
        Some(s) => minijinja::context! { name => s.name.clone(), assurance => s.assurance },
        None => minijinja::Value::from(()),
    }
}

/// A problem as an HTML page, for browsers.
pub fn problem_page(p: &Problem, lang: Lang, request_id: Option<&str>) -> Response {
    let other = match lang {
        Lang::Zh => &p.detail.en,
        Lang::En => &p.detail.zh,
    };
    let mut resp = render(
        p.status,
        "error.html",
        minijinja::context! {
            title => format!("{} {}", p.title.zh, p.title.en),
            detail => p.detail.get(lang),
            detail_other => other,
            status => p.status.as_u16(),
            request_id => request_id,
        },
    );
    resp.extensions_mut().insert(p.clone());
    resp
}

/// Whether the client prefers HTML (a browser navigating) over JSON.
pub fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}
