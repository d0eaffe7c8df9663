//! The authorization endpoint: checks the request, shows the persona picker, and on a
//! choice (`login_hint`) sends the browser back with a one-time code.
//!
//! Order matters: the client and its exact redirect URI are checked first and any problem
//! there is an HTML page, never a redirect (otherwise this would be an open redirector);
//! every later problem is reported to the client by redirect, as RFC 6749 §4.1.2.1 says.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use super::personas::{find_persona, personas};
use super::{CODE_LIFETIME_SECS, CodeGrant, DevIdp, lock, pages, parse_form, random_token, single};

/// The `iss` value used by [`Tamper::wrong_iss_in_response`](super::Tamper::wrong_iss_in_response).
const EVIL_ISSUER: &str = "https://evil.example";

/// `GET /authorize`: a request with a known `login_hint` gets a code at once (scripts
/// and tests log in without a page); otherwise the persona picker. Until the client and
/// its `redirect_uri` are known to be registered, errors are a page, never a redirect.
pub(super) async fn authorize(
    State(idp): State<Arc<DevIdp>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes());

    let Ok(Some(client_id)) = single(&params, "client_id") else {
        return bad_request_page(
            "缺少 client_id 参数，或该参数出现了多次。",
            "The client_id parameter is missing or repeated.",
        );
    };
    let Some(client) = idp.client(client_id) else {
        return bad_request_page(
            "未登记的客户端（client_id）。",
            "Unknown client (client_id).",
        );
    };
    let redirect_uri = match single(&params, "redirect_uri") {
        Ok(Some(uri)) if client.redirect_uris.iter().any(|r| r == uri) => uri,
        Ok(Some(_)) => {
            return bad_request_page(
                "redirect_uri 与该客户端登记的地址不完全一致。",
                "The redirect_uri is not exactly one registered for this client.",
            );
        }
        _ => {
            return bad_request_page(
                "缺少 redirect_uri 参数，或该参数出现了多次。",
                "The redirect_uri parameter is missing or repeated.",
            );
        }
    };

    // From here on the redirect URI is trusted: errors go back to the client.
    let reply = Reply {
        idp: &idp,
        redirect_uri,
        state: single(&params, "state").ok().flatten(),
    };
    let mut names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return reply.error("invalid_request", "a parameter is repeated");
    }
    let get = |name: &str| single(&params, name).ok().flatten();

    match get("response_type") {
        Some("code") => {}
        Some(_) => {
            return reply.error(
                "unsupported_response_type",
                "only response_type=code is supported",
            );
        }
        None => return reply.error("invalid_request", "response_type is required"),
    }
    let scope = get("scope").unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return reply.error("invalid_scope", "scope must include openid");
    }
    if reply.state.is_none() {
        return reply.error("invalid_request", "state is required");
    }
    let Some(nonce) = get("nonce") else {
        return reply.error("invalid_request", "nonce is required");
    };
    if get("code_challenge_method") != Some("S256") {
        return reply.error(
            "invalid_request",
            "PKCE is required with code_challenge_method=S256",
        );
    }
    let Some(code_challenge) = get("code_challenge").filter(|c| is_s256_challenge(c)) else {
        return reply.error(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 value (43 characters)",
        );
    };
    if get("request").is_some() || get("request_uri").is_some() {
        return reply.error("request_not_supported", "request objects are not supported");
    }

    let hint = get("login_hint");
    if let Some(persona) = hint.and_then(find_persona) {
        let code = random_token();
        let grant = CodeGrant {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            persona,
            nonce: nonce.to_owned(),
            code_challenge: code_challenge.to_owned(),
            scope: scope.to_owned(),
            auth_time: chrono::Utc::now().timestamp(),
            expires_at: Instant::now() + Duration::from_secs(CODE_LIFETIME_SECS),
            redeemed: None,
        };
        {
            let mut codes = lock(&idp.codes);
            let now = Instant::now();
            codes.retain(|_, g| g.expires_at > now);
            codes.insert(code.clone(), grant);
        }
        tracing::info!(
            persona = persona.id,
            client_id = %client.client_id,
            "dev IdP: authorization code issued"
        );
        return reply.redirect(&[("code", &code)]);
    }

    if get("prompt").is_some_and(|p| p.split(' ').any(|v| v == "none")) {
        return reply.error("login_required", "prompt=none needs a known login_hint");
    }
    pages::picker(client_id, &params, personas(), hint)
}

/// RFC 7636: BASE64URL(SHA-256(verifier)) is 43 characters of the URL-safe alphabet.
fn is_s256_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn bad_request_page(zh: &str, en: &str) -> Response {
    pages::error_page(zh, en)
}

/// Where and how the authorization response goes back to the client.
struct Reply<'a> {
    idp: &'a DevIdp,
    redirect_uri: &'a str,
    state: Option<&'a str>,
}

impl Reply<'_> {
    fn error(&self, error: &str, description: &str) -> Response {
        self.redirect(&[("error", error), ("error_description", description)])
    }

    /// 302 to the redirect URI with `pairs`, `state` and (unless tampered with) `iss`
    /// (RFC 9207) added to whatever query it was registered with.
    fn redirect(&self, pairs: &[(&str, &str)]) -> Response {
        let mut url = match Url::parse(self.redirect_uri) {
            Ok(url) => url,
            // Registered URIs were parsed in `DevIdp::new`; this cannot happen.
            Err(_) => {
                return bad_request_page(
                    "redirect_uri 无法解析。",
                    "The redirect_uri cannot be parsed.",
                );
            }
        };
        let tamper = self.idp.tamper();
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(state) = self.state {
                q.append_pair("state", state);
            }
            if tamper.wrong_iss_in_response {
                q.append_pair("iss", EVIL_ISSUER);
            } else if !tamper.omit_iss_in_response {
                q.append_pair("iss", &self.idp.issuer);
            }
        }
        let location = match HeaderValue::from_str(url.as_str()) {
            Ok(v) => v,
            Err(_) => {
                return bad_request_page(
                    "redirect_uri 无法使用。",
                    "The redirect_uri cannot be used.",
                );
            }
        };
        (
            StatusCode::FOUND,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ),
            ],
        )
            .into_response()
    }
}
