//! The dev IdP's few HTML pages: the persona picker, the error page shown when it cannot
//! safely redirect, and the signed-out page. Chinese first, English second; every value
//! that came from the request is escaped; no JavaScript needed.

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::personas::Persona;

/// The label every page carries, so nobody mistakes this for a real login.
const BANNER_ZH: &str = "开发用身份提供者 — 仅供演示，切勿用于生产";
const BANNER_EN: &str = "Development identity provider — for demos only, never production";

const STYLE: &str = "body{font-family:system-ui,\"PingFang SC\",\"Microsoft YaHei\",sans-serif;\
margin:0;color:#1b1b1b;background:#fff;line-height:1.5}\
main{max-width:48rem;margin:0 auto;padding:1rem}\
.banner{margin:0;padding:.75rem 1rem;background:#8a1c1c;color:#fff;text-align:center}\
.notice{border-left:.3rem solid #8a1c1c;padding:.5rem 1rem;background:#fdf0f0}\
ul.personas{list-style:none;padding:0}\
ul.personas li{border:1px solid #767676;border-radius:.4rem;margin:.75rem 0;padding:.75rem 1rem}\
ul.personas h3{margin:0 0 .25rem}\
.meta{margin:.25rem 0;color:#3d3d3d}\
button{font:inherit;padding:.4rem 1rem;border:2px solid #0b4f9c;border-radius:.3rem;\
background:#0b4f9c;color:#fff;cursor:pointer}\
button:focus{outline:3px solid #f9a825;outline-offset:2px}";

/// Escapes text for HTML element content and attribute values.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A whole page around `body`; `title` is plain text and is escaped here.
fn layout(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"robots\" content=\"noindex, nofollow\">\n<title>{title}</title>\n\
<style>{STYLE}</style>\n</head>\n<body>\n\
<p class=\"banner\" role=\"note\"><strong>{BANNER_ZH}</strong><br>\
<span lang=\"en\">{BANNER_EN}</span></p>\n<main>\n{body}</main>\n</body>\n</html>\n",
        title = escape(title),
    )
}

/// An HTML response with headers that keep the page out of caches, frames and referrers
/// (its URL carries `state`, `nonce` and the PKCE challenge).
pub(super) fn html(status: StatusCode, page: String) -> Response {
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

/// The persona picker. `params` are the authorization request's parameters, carried on
/// as hidden inputs (without any previous `login_hint`) so each button replays the
/// request with `login_hint` added.
pub(super) fn picker(
    client_id: &str,
    params: &[(String, String)],
    personas: &[Persona],
    unknown_hint: Option<&str>,
) -> String {
    let mut body = String::new();
    body.push_str(
        "<h1>选择演示身份登录 <span lang=\"en\">/ Choose a demo persona to sign in</span></h1>\n",
    );
    let _ = writeln!(
        body,
        "<p>应用 <code>{c}</code> 请求登录。以下均为虚构人员，数据仅供演示。<br>\
<span lang=\"en\">The application <code>{c}</code> asks you to sign in. \
These people are made up; their data is for demos only.</span></p>",
        c = escape(client_id)
    );
    if let Some(hint) = unknown_hint {
        let _ = writeln!(
            body,
            "<p class=\"notice\" role=\"alert\">没有名为 <code>{h}</code> 的演示身份，请从下列身份中选择。<br>\
<span lang=\"en\">There is no demo persona called <code>{h}</code>; please choose one below.</span></p>",
            h = escape(hint)
        );
    }

    let mut hidden = String::new();
    for (k, v) in params.iter().filter(|(k, _)| k != "login_hint") {
        let _ = writeln!(
            hidden,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(k),
            escape(v)
        );
    }

    let groups = [
        ("citizen", "自然人", "Citizens"),
        ("enterprise", "法人", "Enterprises"),
        ("staff", "工作人员", "Staff"),
    ];
    for (kind, zh, en) in groups {
        let members: Vec<&Persona> = personas.iter().filter(|p| p.kind == kind).collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(
            body,
            "<section aria-labelledby=\"group-{kind}\">\n\
<h2 id=\"group-{kind}\">{zh} <span lang=\"en\">/ {en}</span></h2>\n<ul class=\"personas\">"
        );
        for p in members {
            persona_item(&mut body, p, &hidden);
        }
        body.push_str("</ul>\n</section>\n");
    }
    layout(
        "开发用身份提供者：选择演示身份 / Dev identity provider: choose a persona",
        &body,
    )
}

fn persona_item(body: &mut String, p: &Persona, hidden: &str) {
    let id = escape(p.id);
    let name = escape(p.name);
    let (kind_zh, kind_en) = p.kind_label();
    let (acr_zh, acr_en) = p.acr_label();
    let _ = writeln!(
        body,
        "<li>\n<form method=\"get\" action=\"authorize\">\n{hidden}\
<input type=\"hidden\" name=\"login_hint\" value=\"{id}\">\n\
<h3 id=\"name-{id}\">{name}</h3>\n\
<p class=\"meta\" id=\"meta-{id}\">{kind_zh} · {acr_zh} <span lang=\"en\">/ {kind_en} · {acr_en}</span> · <code>{id}</code></p>\n\
<p id=\"desc-{id}\">{dzh}<br><span lang=\"en\">{den}</span></p>\n\
<button type=\"submit\" aria-describedby=\"meta-{id} desc-{id}\">以{name}的身份登录 <span lang=\"en\">/ Sign in as {name}</span></button>\n\
</form>\n</li>",
        dzh = escape(p.description_zh),
        den = escape(p.description_en),
    );
}

/// The page shown when a request cannot be answered with a redirect (unknown client or
/// unregistered `redirect_uri`): redirecting there would make this an open redirector.
pub(super) fn error_page(detail_zh: &str, detail_en: &str) -> String {
    let body = format!(
        "<h1>请求无效 <span lang=\"en\">/ Invalid request</span></h1>\n\
<p class=\"notice\" role=\"alert\">{}<br><span lang=\"en\">{}</span></p>\n\
<p>为安全起见，本页不会跳转回发起请求的应用。<br>\
<span lang=\"en\">For safety, this page does not send you back to the application that made the request.</span></p>\n",
        escape(detail_zh),
        escape(detail_en)
    );
    layout("请求无效 / Invalid request", &body)
}

/// The page shown after logout when there is nowhere registered to send the user back to.
pub(super) fn signed_out() -> String {
    let body = "<h1>您已退出 <span lang=\"en\">/ You are signed out</span></h1>\n\
<p>您已退出开发用身份提供者。可以关闭此页面。<br>\
<span lang=\"en\">You have signed out of the development identity provider. You can close this page.</span></p>\n";
    layout("已退出 / Signed out", body)
}
