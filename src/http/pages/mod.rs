//! Server-rendered pages (minijinja, auto-escaped). Pages work without JavaScript.
//!
//! One template environment serves every page: the gateway's, the apply pages' and the
//! development identity provider's. Its templates live in `frontend/templates`, the
//! texts in `frontend/messages` ([`i18n`]) and the stylesheet and script in
//! `frontend/static` ([`assets`]); `build.rs` compiles all of them into the binary, so
//! nothing is read from disk at run time.
//!
//! A handler takes a [`PageCtx`] (the language, the user, the path) and calls
//! [`PageCtx::render`]; the base layout (`base.html`) draws the header with the
//! navigation for the user's roles, the language switch that keeps the reader on the
//! same page, the breadcrumbs and the footer. Shared pieces (form field with its error,
//! error summary, status tag, timeline, paged table, deadline badge, bar chart) are
//! macros in `components.html`.

pub mod assets;
pub mod citizen;
pub mod clerk;
pub mod desk;
pub mod i18n;
pub mod ops;
pub mod paging;

use std::sync::LazyLock;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use minijinja::Environment;
use serde::Deserialize;

use super::error::{AppError, Problem};
use crate::auth::identity::{AccountKind, Role};
use crate::auth::session::{Lookup, SESSION_COOKIE, Session};
use crate::domain::lang::Lang;
use crate::state::AppState;

/// The cookie that keeps the reader's language.
pub const LANG_COOKIE: &str = "lang";

/// Every template under `frontend/templates`, by its path there (`apply.html`,
/// `devidp/picker.html`). HTML is auto-escaped. A template that does not compile stops
/// the process on first use; `every_template_compiles` catches that before a release.
pub(crate) static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    minijinja_embed::load_templates!(&mut env);
    env.add_function("t", i18n::t);
    env.add_function("tr", i18n::tr);
    env.add_filter("mask_id", mask_id_filter);
    env
});

/// Every template's name and source text (for checks over all of them).
pub fn template_sources() -> Vec<(String, String)> {
    TEMPLATES
        .templates()
        .map(|(name, t)| (name.to_owned(), t.source().to_owned()))
        .collect()
}

/// `{{ value|mask_id }}`: an identifier that may equal an ID number (an ID card's
/// e-licence number, an ID number itself) with only its first 6 and last 4 characters
/// shown; anything of 10 characters or fewer is shown as `****`.
fn mask_id_filter(value: String) -> String {
    mask_id(&value)
}

/// See [`mask_id_filter`].
pub fn mask_id(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 10 {
        return "****".into();
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 10))
}

/// A time in China Standard Time (UTC+8), to the minute: how every page shows times.
pub fn cst(at: chrono::DateTime<chrono::Utc>) -> String {
    china_time(at).format("%Y-%m-%d %H:%M").to_string()
}

/// A date in China Standard Time.
pub fn cst_date(at: chrono::DateTime<chrono::Utc>) -> String {
    china_time(at).format("%Y-%m-%d").to_string()
}

fn china_time(at: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::FixedOffset> {
    let tz = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    at.with_timezone(&tz)
}

/// The language of a page request: `?lang=`, else the `lang` cookie, else
/// `Accept-Language`, else Chinese.
pub fn page_lang(query: Option<&str>, headers: &HeaderMap) -> Lang {
    match query {
        Some("en") => return Lang::En,
        Some("zh") | Some("zh-CN") => return Lang::Zh,
        _ => {}
    }
    match CookieJar::from_headers(headers)
        .get(LANG_COOKIE)
        .map(|c| c.value())
    {
        Some("en") => Lang::En,
        Some("zh-CN") | Some("zh") => Lang::Zh,
        _ => Lang::negotiate(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        ),
    }
}

#[derive(Debug, Default, Deserialize)]
struct LangParam {
    lang: Option<String>,
}

/// What every page needs: the reader's language, who is logged in, and where the page
/// is (for the language switch and for coming back after login).
#[derive(Debug, Clone)]
pub struct PageCtx {
    /// The page language.
    pub lang: Lang,
    /// The live session, if any.
    pub session: Option<Session>,
    /// The path and query of this page.
    pub path: String,
}

impl FromRequestParts<AppState> for PageCtx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let q: LangParam = Query::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_default();
        let lang = page_lang(q.lang.as_deref(), &parts.headers);
        let session = match parts.extensions.get::<crate::auth::extract::CurrentUser>() {
            Some(u) => Some(u.session.clone()),
            None => {
                let jar = CookieJar::from_headers(&parts.headers);
                match app
                    .sessions
                    .load(jar.get(SESSION_COOKIE).map(|c| c.value()))
                    .await
                {
                    Ok(Lookup::Live(s)) => Some(*s),
                    _ => None,
                }
            }
        };
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        Ok(PageCtx {
            lang,
            session,
            path,
        })
    }
}

impl PageCtx {
    /// The BCP 47 tag of the page language, for `<html lang>`.
    pub fn html_lang(&self) -> &'static str {
        self.lang.tag()
    }

    /// A message of the catalogue in the page language (for texts a handler builds,
    /// like a notice after an action); the key itself if the catalogue lacks it.
    pub fn t(&self, key: &str) -> String {
        i18n::text(self.lang, key, &[]).unwrap_or_else(|| key.to_owned())
    }

    /// Data held in both languages, in the page language.
    pub fn pick<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        self.lang.pick(zh, en)
    }

    /// What the base layout needs, merged under the page's own values.
    pub fn base(&self) -> minijinja::Value {
        minijinja::context! {
            lang => self.html_lang(),
            user => user_ctx(self.session.as_ref()),
            csrf => self.session.as_ref().map(|s| s.csrf.clone()),
            path => self.path.clone(),
            here => urlencode(&self.path),
            asset_v => assets::VERSION.as_str(),
        }
    }

    /// Renders a page in the reader's language. Pages are never cached (they may show
    /// personal data) and say their language.
    pub fn render(&self, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
        let ctx = minijinja::context! { ..ctx, ..self.base() };
        let mut resp = render(status, name, ctx);
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::CONTENT_LANGUAGE,
            HeaderValue::from_static(self.lang.tag()),
        );
        resp
    }

    /// The caller a role extractor found, or (when no one is logged in) the way to the
    /// login, coming back to this page; a wrong role stays its error page.
    pub fn logged_in<T>(&self, who: Result<T, AppError>, staff: bool) -> Result<T, Box<Response>> {
        match who {
            Ok(w) => Ok(w),
            Err(AppError::Unauthorized(_)) => Err(Box::new(self.to_login(staff))),
            Err(e) => Err(Box::new(e.into_response())),
        }
    }

    /// For a page's POST: the caller (as [`PageCtx::logged_in`]) whose session's CSRF
    /// token the form's `_csrf` carries. One call instead of the login-then-CSRF prologue.
    pub fn form_user<T: HasSession>(
        &self,
        who: Result<T, AppError>,
        staff: bool,
        form: &std::collections::HashMap<String, String>,
    ) -> Result<T, Box<Response>> {
        let w = self.logged_in(who, staff)?;
        check_csrf(form.get("_csrf").map(String::as_str), Some(w.session()))
            .map_err(|e| Box::new(e.into_response()))?;
        Ok(w)
    }

    /// The login page, coming back here afterwards.
    pub fn to_login(&self, staff: bool) -> Response {
        let login = if staff {
            "/auth/staff/login"
        } else {
            "/auth/login"
        };
        Redirect::to(&format!("{login}?return_to={}", urlencode(&self.path))).into_response()
    }
}

/// A logged-in caller of some role, whose session a page form's CSRF token is checked
/// against.
pub trait HasSession {
    /// The caller's session.
    fn session(&self) -> &Session;
}

impl HasSession for crate::auth::extract::CurrentUser {
    fn session(&self) -> &Session {
        &self.session
    }
}

impl HasSession for crate::auth::extract::Applicant {
    fn session(&self) -> &Session {
        &self.0.session
    }
}

impl HasSession for crate::auth::extract::Operator {
    fn session(&self) -> &Session {
        &self.0.session
    }
}

impl HasSession for crate::auth::extract::Clerk {
    fn session(&self) -> &Session {
        &self.user.session
    }
}

impl HasSession for crate::auth::extract::DepartmentOfficer {
    fn session(&self) -> &Session {
        &self.user.session
    }
}

/// A form's `_csrf` must be the session's token (compared in constant time), on top of
/// the Origin check every state-changing request passes.
pub fn check_csrf(sent: Option<&str>, session: Option<&Session>) -> Result<(), AppError> {
    use subtle::ConstantTimeEq;
    match (sent, session) {
        (Some(t), Some(s)) if bool::from(t.as_bytes().ct_eq(s.csrf.as_bytes())) => Ok(()),
        _ => Err(AppError::Forbidden(super::error::Message::new(
            "此页面已过期（或并非从本网站提交），请重新打开页面后再提交。",
            "This page has expired (or was not sent from this site). Open the page again and send it again.",
        ))),
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A local path to come back to: it starts with one `/` (never `//host` or a scheme).
pub fn local_path(back: Option<&str>) -> &str {
    match back {
        Some(b) if b.starts_with('/') && !b.starts_with("//") && !b.starts_with("/\\") => b,
        _ => "/",
    }
}

#[derive(Debug, Deserialize)]
pub struct SwitchQuery {
    /// The page to go back to (a local path).
    pub back: Option<String>,
}

/// `GET /lang/{code}?back=/path`: keeps the language in a cookie and goes back to the
/// page the reader was on (a link, so it works without JavaScript).
pub async fn switch_lang(
    crate::http::path::Path(code): crate::http::path::Path<String>,
    Query(q): Query<SwitchQuery>,
    jar: CookieJar,
) -> Response {
    let value = if code == "en" { "en" } else { "zh-CN" };
    let cookie = Cookie::build((LANG_COOKIE, value))
        .path("/")
        .same_site(SameSite::Lax)
        .max_age(time::Duration::days(365))
        .build();
    let back = local_path(q.back.as_deref());
    // drop a `lang=` the page carried, so the cookie decides from now on
    let back = strip_lang_param(back);
    (jar.add(cookie), Redirect::to(&back)).into_response()
}

fn strip_lang_param(path: &str) -> String {
    let Some((p, query)) = path.split_once('?') else {
        return path.to_owned();
    };
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.starts_with("lang=") && !kv.is_empty())
        .collect();
    if rest.is_empty() {
        p.to_owned()
    } else {
        format!("{p}?{}", rest.join("&"))
    }
}

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

/// The user shown in the page header, with what the navigation needs to know.
pub fn user_ctx(session: Option<&Session>) -> minijinja::Value {
    match session {
        Some(s) => {
            let applicant = s
                .roles
                .iter()
                .any(|r| matches!(r, Role::Citizen | Role::EnterpriseUser { .. }));
            minijinja::context! {
                name => s.name.clone(),
                assurance => s.assurance,
                enterprise => s.enterprise.as_ref().map(|e| e.name.clone()),
                is_enterprise => matches!(s.kind, AccountKind::Enterprise),
                is_applicant => applicant,
                is_clerk => s.roles.iter().any(|r| matches!(r, Role::Clerk { .. })),
                is_officer => s.roles.iter().any(|r| matches!(r, Role::DepartmentOfficer { .. })),
                is_operator => s.roles.iter().any(|r| matches!(r, Role::Operator)),
                roles => s.roles.iter().map(|r| r.code()).collect::<Vec<_>>(),
            }
        }
        None => minijinja::Value::from(()),
    }
}

/// A problem as an HTML page, for browsers, wholly in the reader's language.
pub fn problem_page(p: &Problem, lang: Lang, request_id: Option<&str>) -> Response {
    let mut resp = render(
        p.status,
        "error.html",
        minijinja::context! {
            lang => lang.tag(),
            title => p.title.get(lang),
            detail => p.detail.get(lang),
            status => p.status.as_u16(),
            request_id => request_id,
            asset_v => assets::VERSION.as_str(),
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
    fn identifiers_are_masked_but_for_their_ends() {
        assert_eq!(mask_id("150702198506123025"), "150702********3025");
        assert_eq!(mask_id("12345"), "****");
    }

    #[test]
    fn only_local_paths_are_gone_back_to() {
        assert_eq!(local_path(Some("/me/cases?page=2")), "/me/cases?page=2");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(None), "/");
        assert_eq!(strip_lang_param("/a?lang=en&page=2"), "/a?page=2");
        assert_eq!(strip_lang_param("/a?lang=en"), "/a");
    }

    #[test]
    fn a_page_renders_wholly_in_its_language() {
        for (lang, want, not) in [("en", "Log in", "登录"), ("zh-CN", "登录", "Log in")] {
            let html = render_text(
                "error.html",
                minijinja::context! { lang => lang, title => "x", detail => "y", status => 404 },
            )
            .expect("renders");
            assert!(html.contains(want), "{lang}: {html}");
            assert!(
                !html.contains(not),
                "{lang} shows the other language: {html}"
            );
        }
    }

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
            "components.html",
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
                title => "错误",
                detail => "<script>alert(1)</script>",
                status => 400,
            },
        )
        .expect("renders");
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)"), "{html}");
    }
}
