//! A development OpenID Connect identity provider (开发用身份提供者) with demo personas,
//! in the spirit of GOV.UK One Login's simulator and Singpass's mockpass.
//!
//! `onewindow demo` runs it on its own port so a newcomer can log in as a made-up citizen,
//! enterprise user or member of staff; the gateway talks to it over real OIDC (discovery,
//! authorization code + PKCE, token, userinfo, JWKS, RP-initiated logout) exactly as it
//! would to a production provider, so the demo exercises the production login code.
//! `onewindow serve` must never start it: anyone can log in as anyone here.
//!
//! Integration tests use [`DevIdp::set_tamper`] to make it misbehave (wrong nonce,
//! audience, expiry, signing key or `iss` response parameter) and check that the gateway
//! refuses.
//!
//! Everything is in memory: keys are generated at start, codes and access tokens live in
//! maps that forget expired entries. There is no IdP-side session: every login shows the
//! picker (or honours `login_hint`).
//!
//! The issuer identifier is exactly [`url::Url::as_str`] of the configured issuer (so
//! `http://127.0.0.1:8081` is `http://127.0.0.1:8081/`, while `http://host/idp` stays
//! without a trailing slash); relying parties should build their expected issuer from
//! the same `Url`.

mod authorize;
mod discovery;
mod keys;
mod logout;
mod pages;
pub mod personas;
mod token;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use anyhow::{Context, bail};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use url::Url;

pub use personas::{LOA_1, LOA_2, LOA_3, Persona, find_persona, personas};

/// A relying party registered with the dev IdP (normally the gateway itself).
#[derive(Clone)]
pub struct DevClient {
    /// OAuth client id; `/authorize` refuses, with a page, any id not registered.
    pub client_id: String,
    /// Client secret, checked on the token endpoint (Basic or form body).
    pub client_secret: String,
    /// Redirect URIs the client may use; compared exactly, character for character.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the user back to; compared exactly.
    pub post_logout_redirect_uris: Vec<String>,
}

/// The secret stays out of logs.
impl fmt::Debug for DevClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uris", &self.redirect_uris)
            .field("post_logout_redirect_uris", &self.post_logout_redirect_uris)
            .finish()
    }
}

/// Switches that make the IdP misbehave, so tests can check that the gateway refuses
/// what a correct relying party must refuse. All off by default.
#[derive(Debug, Clone, Default)]
pub struct Tamper {
    /// The ID token carries a nonce other than the one in the authorization request.
    pub wrong_nonce: bool,
    /// The ID token's `aud` is `someone-else` instead of the client id.
    pub wrong_audience: bool,
    /// The ID token's `iat` and `exp` lie (at least) an hour in the past.
    pub expired_id_token: bool,
    /// The ID token is signed by a key that is not in the JWKS (with the published `kid`).
    pub foreign_key: bool,
    /// The authorization response has no `iss` parameter (RFC 9207).
    pub omit_iss_in_response: bool,
    /// The authorization response's `iss` parameter is `https://evil.example`.
    pub wrong_iss_in_response: bool,
}

/// What the dev IdP needs to know: who it is and who may use it.
#[derive(Debug, Clone)]
pub struct DevIdpConfig {
    /// The issuer; its path (if any) prefixes every endpoint.
    pub issuer: Url,
    /// The relying parties that may log in here; only their registered redirect URIs
    /// are ever redirected to.
    pub clients: Vec<DevClient>,
}

/// How long an authorization code can be redeemed.
const CODE_LIFETIME_SECS: u64 = 60;
/// Lifetime of access tokens and ID tokens.
const TOKEN_LIFETIME_SECS: u64 = 300;

/// A code issued at the authorization endpoint, waiting to be redeemed once.
#[derive(Clone)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    persona: &'static Persona,
    nonce: String,
    code_challenge: String,
    scope: String,
    auth_time: i64,
    expires_at: Instant,
    /// Set when redeemed: the access token it produced, revoked if the code is replayed.
    redeemed: Option<String>,
}

/// What an access token grants: the persona's userinfo.
struct AccessGrant {
    persona: &'static Persona,
    expires_at: Instant,
}

/// The development identity provider. Build with [`DevIdp::new`], serve [`DevIdp::router`]
/// (or use [`spawn`]).
pub struct DevIdp {
    /// The issuer identifier, exactly as put in `iss`.
    issuer: String,
    /// The issuer without a trailing slash, to which endpoint paths are appended.
    endpoint_base: String,
    /// The issuer URL's path without a trailing slash (`""` or e.g. `/idp`): the router's prefix.
    path_prefix: String,
    clients: Vec<DevClient>,
    keys: keys::SigningKeys,
    tamper: Mutex<Tamper>,
    codes: Mutex<HashMap<String, CodeGrant>>,
    tokens: Mutex<HashMap<String, AccessGrant>>,
}

impl DevIdp {
    /// Checks the configuration and generates a fresh P-256 signing key, plus a second
    /// "foreign" key that is never published (for [`Tamper::foreign_key`]).
    pub fn new(config: DevIdpConfig) -> anyhow::Result<Arc<DevIdp>> {
        let issuer = config.issuer;
        if !matches!(issuer.scheme(), "http" | "https") {
            bail!(
                "dev IdP issuer must be an http(s) URL, got scheme {}",
                issuer.scheme()
            );
        }
        if issuer.query().is_some() || issuer.fragment().is_some() {
            bail!("dev IdP issuer must not have a query or fragment");
        }
        let mut seen = std::collections::HashSet::new();
        for client in &config.clients {
            if client.client_id.is_empty() || !seen.insert(client.client_id.as_str()) {
                bail!("dev IdP client ids must be non-empty and unique");
            }
            for uri in client
                .redirect_uris
                .iter()
                .chain(&client.post_logout_redirect_uris)
            {
                let parsed = Url::parse(uri)
                    .with_context(|| format!("client {}: bad URI {uri}", client.client_id))?;
                if parsed.fragment().is_some() {
                    bail!("client {}: URI {uri} has a fragment", client.client_id);
                }
            }
        }
        let issuer_str = issuer.as_str().to_owned();
        Ok(Arc::new(DevIdp {
            endpoint_base: issuer_str.trim_end_matches('/').to_owned(),
            path_prefix: issuer.path().trim_end_matches('/').to_owned(),
            issuer: issuer_str,
            clients: config.clients,
            keys: keys::SigningKeys::generate()?,
            tamper: Mutex::new(Tamper::default()),
            codes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }))
    }

    /// All endpoints, at paths under the issuer URL's path: discovery, JWKS, authorize,
    /// token, userinfo and logout.
    pub fn router(self: &Arc<Self>) -> Router {
        let p = &self.path_prefix;
        Router::new()
            .route(
                &format!("{p}/.well-known/openid-configuration"),
                get(discovery::configuration),
            )
            .route(&format!("{p}/jwks"), get(discovery::jwks))
            .route(&format!("{p}/authorize"), get(authorize::authorize))
            .route(&format!("{p}/token"), axum::routing::post(token::token))
            .route(
                &format!("{p}/userinfo"),
                get(token::userinfo).post(token::userinfo),
            )
            .route(
                &format!("{p}/logout"),
                get(logout::logout_get).post(logout::logout_post),
            )
            .with_state(Arc::clone(self))
    }

    /// Turns misbehaviour on or off; takes effect for the next request.
    pub fn set_tamper(&self, t: Tamper) {
        *lock(&self.tamper) = t;
    }

    /// The tamper switches in force.
    pub fn tamper(&self) -> Tamper {
        lock(&self.tamper).clone()
    }

    /// The issuer identifier as put in `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint_base)
    }

    fn client(&self, client_id: &str) -> Option<&DevClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

/// Binds `listen` (port 0 picks a free port), builds the IdP with issuer
/// `http://<actual address>` and serves it in a tokio task.
///
/// An unspecified listen address (`0.0.0.0`, `::`) is named as loopback in the issuer,
/// since browsers cannot reach "0.0.0.0".
pub async fn spawn(
    listen: SocketAddr,
    clients: Vec<DevClient>,
) -> anyhow::Result<(Arc<DevIdp>, Url, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the dev IdP to {listen}"))?;
    let mut addr = listener.local_addr().context("dev IdP local address")?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let issuer = Url::parse(&format!("http://{addr}")).context("dev IdP issuer URL")?;
    let idp = DevIdp::new(DevIdpConfig {
        issuer: issuer.clone(),
        clients,
    })?;
    let app = idp.router();
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "dev identity provider stopped");
        }
    });
    tracing::warn!(
        issuer = %issuer,
        "development identity provider running: demo personas only, never production"
    );
    Ok((idp, issuer, handle))
}

/// Locks a map or switch set; a panic elsewhere cannot leave these half-updated in a
/// way that matters, so a poisoned lock is simply taken over.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// 256 random bits, base64url: codes and access tokens.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Parses `application/x-www-form-urlencoded` text (a query string or a form body).
fn parse_form(input: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(input)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The single value of a parameter: `Ok(None)` if absent or empty, `Err(())` if repeated
/// (RFC 6749 §3.1: parameters must not be included more than once).
fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ()> {
    let mut found = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
    match (found.next(), found.next()) {
        (Some(_), Some(_)) => Err(()),
        (Some(v), None) if !v.is_empty() => Ok(Some(v.as_str())),
        _ => Ok(None),
    }
}
