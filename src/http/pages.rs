//! Server-rendered pages (minijinja, auto-escaped). Pages work without JavaScript.
//!
//! One template environment serves every page: the gateway's, the apply pages' and the
//! development identity provider's. Its templates live in `frontend/templates` and are
//! compiled into the binary by `build.rs`, so nothing is read from disk at run time.

use std::sync::LazyLock;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;

use super::error::Problem;
use crate::auth::session::Session;
use crate::domain::lang::Lang;

/// Every template under `frontend/templates`, by its path there (`apply.html`,
/// `devidp/picker.html`). HTML is auto-escaped. A template that does not compile stops
/// the process on first use; `every_template_compiles` catches that before a release.
pub(crate) static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    minijinja_embed::load_templates!(&mut env);
    env
});

/// Renders a template to HTML text.
pub(crate) fn render_text(name: &str, ctx: minijinja::Value) -> Result<String, minijinja::Error> {
    TEMPLATES.get_template(name).and_then(|t| t.render(ctx))
}

/// Renders a template to an HTML response with a status.
pub fn render(status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    let html = render_text(name, ctx);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let names: Vec<&str> = TEMPLATES.templates().map(|(name, _)| name).collect();
        // The gateway's own pages, the apply pages and the development provider's pages.
        for expected in [
            "base.html",
            "home.html",
            "error.html",
            "apply.html",
            "data_access.html",
            "devidp/layout.html",
            "devidp/picker.html",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
    }

    #[test]
    fn values_are_escaped() {
        let html = render_text(
            "error.html",
            minijinja::context! {
                title => "错误 Error",
                detail => "<script>alert(1)</script>",
                detail_other => "",
                status => 400,
            },
        )
        .expect("renders");
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)"), "{html}");
    }
}
