//! The token endpoint (code → ID token + access token, RFC 6749 §4.1.3 with PKCE,
//! RFC 7636) and the userinfo endpoint (access token → claims).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    AccessGrant, CodeGrant, DevClient, DevIdp, TOKEN_LIFETIME_SECS, lock, parse_form, random_token,
    single,
};

/// The audience used by [`Tamper::wrong_audience`](super::Tamper::wrong_audience).
const WRONG_AUDIENCE: &str = "someone-else";

/// An RFC 6749 §5.2 error answer.
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
}

impl OAuthError {
    fn bad(error: &'static str, description: &'static str) -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error,
            description,
        }
    }

    fn grant(description: &'static str) -> OAuthError {
        OAuthError::bad("invalid_grant", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut resp = (self.status, no_store(), axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"onewindow-dev-idp\""),
            );
        }
        resp
    }
}

fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// `POST /token`: redeems a single-use code for an ID token and an access token after
/// checking the client's secret and the PKCE verifier (authorization code grant only).
pub(super) async fn token(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match exchange(&idp, &headers, &body) {
        Ok(body) => (StatusCode::OK, no_store(), axum::Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn exchange(idp: &DevIdp, headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::bad(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let params = parse_form(body);
    let mut names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(OAuthError::bad(
            "invalid_request",
            "a parameter is repeated",
        ));
    }
    let get = |name: &str| single(&params, name).ok().flatten();

    let client = authenticate(idp, headers, get("client_id"), get("client_secret"))?;

    match get("grant_type") {
        Some("authorization_code") => {}
        Some(_) => {
            return Err(OAuthError::bad(
                "unsupported_grant_type",
                "only authorization_code is supported",
            ));
        }
        None => return Err(OAuthError::bad("invalid_request", "grant_type is required")),
    }
    let Some(code) = get("code") else {
        return Err(OAuthError::bad("invalid_request", "code is required"));
    };

    let (grant, access_token) = redeem(
        idp,
        code,
        &client.client_id,
        get("redirect_uri"),
        get("code_verifier"),
    )?;

    let id_token = id_token(idp, &grant, &access_token).map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "dev IdP: cannot sign an ID token");
        OAuthError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "the ID token could not be signed",
        }
    })?;
    tracing::info!(
        persona = grant.persona.id,
        client_id = %client.client_id,
        "dev IdP: tokens issued"
    );
    Ok(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME_SECS,
        "id_token": id_token,
        "scope": grant.scope,
    }))
}

/// Checks a code against the token request and marks it used; answers the grant and a
/// fresh, already valid access token.
///
/// A code is good once: the first attempt to redeem it (right or wrong) consumes it, and
/// a replay also revokes the access token the first redemption produced (RFC 6749
/// §4.1.2). All of this happens under the code map's lock, so two racing redemptions
/// cannot both succeed.
fn redeem(
    idp: &DevIdp,
    code: &str,
    client_id: &str,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> Result<(CodeGrant, String), OAuthError> {
    let mut codes = lock(&idp.codes);
    let Some(grant) = codes.get_mut(code) else {
        return Err(OAuthError::grant("unknown or expired code"));
    };
    if grant.client_id != client_id {
        // Not this client's code: leave it alone for its rightful owner.
        return Err(OAuthError::grant("the code was issued to another client"));
    }
    if let Some(issued) = &grant.redeemed {
        lock(&idp.tokens).remove(issued);
        return Err(OAuthError::grant("the code has already been used"));
    }
    if grant.expires_at <= Instant::now() {
        codes.remove(code);
        return Err(OAuthError::grant("unknown or expired code"));
    }
    let access_token = random_token();
    grant.redeemed = Some(access_token.clone());
    let grant = grant.clone();
    // `codes` stays locked until the access token exists, so a replay racing this
    // redemption always finds the token to revoke.

    if redirect_uri != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    let Some(verifier) = verifier else {
        return Err(OAuthError::grant("code_verifier is required"));
    };
    if !pkce_matches(verifier, &grant.code_challenge) {
        return Err(OAuthError::grant(
            "code_verifier does not match code_challenge",
        ));
    }
    let mut tokens = lock(&idp.tokens);
    let now = Instant::now();
    tokens.retain(|_, g| g.expires_at > now);
    tokens.insert(
        access_token.clone(),
        AccessGrant {
            persona: grant.persona,
            expires_at: now + Duration::from_secs(TOKEN_LIFETIME_SECS),
        },
    );
    Ok((grant, access_token))
}

/// RFC 7636 §4.6: BASE64URL(SHA-256(ASCII(code_verifier))) == code_challenge.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    // In constant time, so the answer's timing does not tell how much of a guess was right.
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// Client authentication by HTTP Basic (`client_secret_basic`) or form fields
/// (`client_secret_post`), exactly one of them (RFC 6749 §2.3.1).
fn authenticate<'a>(
    idp: &'a DevIdp,
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<&'a DevClient, OAuthError> {
    let invalid_client = OAuthError {
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        description: "client authentication failed",
    };
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => match basic_credentials(value) {
            Some(creds) => Some(creds),
            None => return Err(invalid_client),
        },
    };
    let (id, secret) = match (basic, form_id, form_secret) {
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::bad(
                "invalid_request",
                "use one client authentication method, not two",
            ));
        }
        (Some((id, secret)), form_id, None) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::bad(
                    "invalid_request",
                    "client_id differs from the authenticated client",
                ));
            }
            (id, secret)
        }
        (None, Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
        (None, _, _) => return Err(invalid_client),
    };
    match idp.client(&id) {
        Some(c) if bool::from(c.client_secret.as_bytes().ct_eq(secret.as_bytes())) => Ok(c),
        _ => Err(invalid_client),
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))`, decoded.
fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

/// Undoes `application/x-www-form-urlencoded` encoding of one value.
fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(s.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

/// Builds and signs the ID token, applying the tamper switches.
fn id_token(idp: &DevIdp, grant: &CodeGrant, access_token: &str) -> anyhow::Result<String> {
    let tamper = idp.tamper();
    let now = chrono::Utc::now().timestamp();
    let lifetime = i64::try_from(TOKEN_LIFETIME_SECS)?;
    let (iat, exp, auth_time) = if tamper.expired_id_token {
        let exp = now - 3600;
        (exp - lifetime, exp, exp - lifetime)
    } else {
        (now, now + lifetime, grant.auth_time)
    };
    let nonce = if tamper.wrong_nonce {
        format!("not-{}", grant.nonce)
    } else {
        grant.nonce.clone()
    };
    let aud = if tamper.wrong_audience {
        WRONG_AUDIENCE
    } else {
        grant.client_id.as_str()
    };
    // OIDC Core §3.1.3.6: left half of the SHA-256 of the access token (ES256 → SHA-256).
    let digest = Sha256::digest(access_token.as_bytes());
    let at_hash = URL_SAFE_NO_PAD.encode(&digest[..16]);

    let mut claims = Map::new();
    claims.insert("iss".into(), Value::from(idp.issuer.as_str()));
    claims.insert("sub".into(), Value::from(grant.persona.id));
    claims.insert("aud".into(), Value::from(aud));
    claims.insert("exp".into(), Value::from(exp));
    claims.insert("iat".into(), Value::from(iat));
    claims.insert("auth_time".into(), Value::from(auth_time));
    claims.insert("nonce".into(), Value::from(nonce));
    claims.insert("at_hash".into(), Value::from(at_hash));
    claims.extend(grant.persona.claims());
    idp.keys.sign(&claims, tamper.foreign_key)
}

/// `GET` or `POST /userinfo` with `Authorization: Bearer <access token>`.
pub(super) async fn userinfo(State(idp): State<Arc<DevIdp>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let persona = token.and_then(|t| {
        let tokens = lock(&idp.tokens);
        tokens
            .get(t)
            .filter(|g| g.expires_at > Instant::now())
            .map(|g| g.persona)
    });
    let Some(persona) = persona else {
        return (
            StatusCode::UNAUTHORIZED,
            [
                (
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response();
    };
    let mut body = Map::new();
    body.insert("sub".into(), Value::from(persona.id));
    body.extend(persona.claims());
    (StatusCode::OK, no_store(), axum::Json(Value::Object(body))).into_response()
}
