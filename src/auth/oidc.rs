//! The OpenID Connect relying party: authorization code flow with PKCE (S256), `state`
//! bound to the browser by a cookie, `nonce`, the RFC 9207 `iss` check (openidconnect
//! does not do it), ID-token verification (signature, issuer, audience, expiry, nonce by
//! openidconnect), and claims merged from the ID token and the userinfo endpoint.
//!
//! Discovery is lazy and cached for an hour, so the gateway starts even when the provider
//! is briefly unreachable; a login attempt then answers 503 and says why.

use std::time::{Duration, Instant};

use base64::Engine;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::RwLock;

use super::identity::Audience;

/// Provider metadata beyond OpenID Connect Discovery's core fields.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraMetadata {
    /// RP-initiated logout endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// RFC 9207: the provider puts `iss` in authorization responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

struct Discovered {
    client: Client,
    issuer: String,
    extra: ExtraMetadata,
    userinfo: Option<String>,
    at: Instant,
}

const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// Why a login failed. Each variant is a refusal the user (or a test) can recognise.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The provider could not be reached or described itself badly.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The callback's `state` is unknown, used, expired, or not this browser's.
    #[error("the login request is unknown, expired or was already used")]
    BadState,
    /// RFC 9207: `iss` missing where required, or naming another issuer.
    #[error("the authorization response names the wrong issuer")]
    WrongIssuer,
    /// The provider returned an error (the user cancelled, …).
    #[error("the identity provider refused the login: {0}")]
    Provider(String),
    /// The code exchange failed (a replayed or expired code).
    #[error("the identity provider did not accept the authorization code")]
    CodeRejected,
    /// The ID token failed verification.
    #[error("the ID token is not valid: {0}")]
    BadIdToken(String),
    /// Userinfo failed or contradicted the ID token.
    #[error("the userinfo answer is not valid: {0}")]
    BadUserinfo(String),
}

/// What must survive between the redirect to the provider and the callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// Which client.
    pub audience: Audience,
    /// PKCE verifier (secret).
    pub pkce_verifier: String,
    /// Nonce expected in the ID token.
    pub nonce: String,
    /// Where to go afterwards (already checked to be local).
    pub return_to: String,
}

/// Start of a login: where to send the browser, and what to remember.
pub struct LoginStart {
    /// The provider's authorization URL.
    pub url: String,
    /// The `state` value (also the cache key and the login cookie).
    pub state: String,
    /// To be stored until the callback.
    pub pending: PendingLogin,
}

/// A verified login.
pub struct LoginResult {
    /// Issuer.
    pub issuer: String,
    /// Merged claims (ID token, then userinfo over it).
    pub claims: Map<String, Value>,
    /// The raw ID token (logout hint).
    pub id_token: String,
}

/// One configured client at one provider.
pub struct RelyingParty {
    audience: Audience,
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    scopes: Vec<String>,
    redirect: String,
    http: openidconnect::reqwest::Client,
    discovered: RwLock<Option<Discovered>>,
}

impl RelyingParty {
    /// A relying party for one client; nothing is fetched yet.
    pub fn new(
        audience: Audience,
        issuer: &str,
        client_id: String,
        client_secret: Option<String>,
        scopes: &str,
        redirect: String,
    ) -> anyhow::Result<RelyingParty> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(RelyingParty {
            audience,
            // Issuer identifiers compare as exact strings ("http://x/" is not "http://x"),
            // so the configured text is kept as written.
            issuer: issuer.to_owned(),
            client_id,
            client_secret,
            scopes: scopes.split_whitespace().map(str::to_owned).collect(),
            redirect,
            http,
            discovered: RwLock::new(None),
        })
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    async fn discover(&self) -> Result<(), LoginError> {
        if let Some(d) = self.discovered.read().await.as_ref()
            && d.at.elapsed() < DISCOVERY_TTL
        {
            return Ok(());
        }
        let issuer = IssuerUrl::new(self.issuer.clone())
            .map_err(|e| LoginError::Unavailable(format!("bad issuer: {e}")))?;
        let metadata = Metadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| LoginError::Unavailable(format!("discovery failed: {e}")))?;
        let extra = metadata.additional_metadata().clone();
        let userinfo = metadata.userinfo_endpoint().map(|u| u.url().to_string());
        let redirect = RedirectUrl::new(self.redirect.clone())
            .map_err(|e| LoginError::Unavailable(format!("bad redirect URL: {e}")))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.client_id.clone()),
            self.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect);
        *self.discovered.write().await = Some(Discovered {
            client,
            issuer: self.issuer.clone(),
            extra,
            userinfo,
            at: Instant::now(),
        });
        Ok(())
    }

    /// Builds the authorization request (PKCE S256, state, nonce).
    pub async fn start(
        &self,
        return_to: String,
        login_hint: Option<String>,
    ) -> Result<LoginStart, LoginError> {
        self.discover().await?;
        let guard = self.discovered.read().await;
        let d = guard
            .as_ref()
            .ok_or_else(|| LoginError::Unavailable("not discovered".into()))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = d.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in self.scopes.iter().filter(|s| s.as_str() != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        if let Some(h) = login_hint {
            req = req.add_extra_param("login_hint", h);
        }
        let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
        Ok(LoginStart {
            url: url.to_string(),
            state: state.secret().clone(),
            pending: PendingLogin {
                audience: self.audience,
                pkce_verifier: verifier.secret().clone(),
                nonce: nonce.secret().clone(),
                return_to,
            },
        })
    }

    /// Completes a login from the callback's `code` and `iss` and the pending state.
    pub async fn finish(
        &self,
        code: &str,
        iss: Option<&str>,
        pending: &PendingLogin,
    ) -> Result<LoginResult, LoginError> {
        self.discover().await?;
        let guard = self.discovered.read().await;
        let d = guard
            .as_ref()
            .ok_or_else(|| LoginError::Unavailable("not discovered".into()))?;

        // RFC 9207: a mix-up attack shows as an `iss` naming another provider.
        let iss_required = d.extra.authorization_response_iss_parameter_supported == Some(true);
        match iss {
            Some(i) if i == d.issuer => {}
            Some(_) => return Err(LoginError::WrongIssuer),
            None if iss_required => return Err(LoginError::WrongIssuer),
            None => {}
        }

        let token = d
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| LoginError::Unavailable(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "authorization code exchange failed");
                LoginError::CodeRejected
            })?;

        let id_token = token
            .id_token()
            .ok_or_else(|| LoginError::BadIdToken("the token response has no ID token".into()))?;
        let verified = id_token
            .claims(
                &d.client.id_token_verifier(),
                &Nonce::new(pending.nonce.clone()),
            )
            .map_err(|e| LoginError::BadIdToken(e.to_string()))?;
        let subject = verified.subject().as_str().to_owned();
        let raw = id_token.to_string();
        // The signature is verified: the payload may now be read for the claims
        // openidconnect's typed struct does not carry.
        let mut claims =
            jwt_payload(&raw).ok_or_else(|| LoginError::BadIdToken("unreadable payload".into()))?;

        if let Some(endpoint) = &d.userinfo {
            let info = self
                .userinfo(endpoint, token.access_token().secret())
                .await?;
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(LoginError::BadUserinfo(
                    "its subject differs from the ID token's".into(),
                ));
            }
            for (k, v) in info {
                if !matches!(k.as_str(), "iss" | "aud" | "exp" | "iat" | "nonce") {
                    claims.insert(k, v);
                }
            }
        }
        Ok(LoginResult {
            issuer: d.issuer.clone(),
            claims,
            id_token: raw,
        })
    }

    async fn userinfo(
        &self,
        endpoint: &str,
        access_token: &str,
    ) -> Result<Map<String, Value>, LoginError> {
        let resp = self
            .http
            .get(endpoint)
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| LoginError::BadUserinfo(format!("request failed: {e}")))?;
        if !resp.status().is_success() {
            return Err(LoginError::BadUserinfo(format!("status {}", resp.status())));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| LoginError::BadUserinfo(format!("unreadable: {e}")))?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| LoginError::BadUserinfo(format!("not JSON: {e}")))?;
        match v {
            Value::Object(m) => Ok(m),
            _ => Err(LoginError::BadUserinfo("not a JSON object".into())),
        }
    }

    /// Where to send the browser to end the provider's session too, if it offers that.
    pub async fn logout_url(&self, id_token: Option<&str>, post_logout: &str) -> Option<String> {
        self.discover().await.ok()?;
        let guard = self.discovered.read().await;
        let d = guard.as_ref()?;
        let mut url = url::Url::parse(d.extra.end_session_endpoint.as_deref()?).ok()?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(t) = id_token {
                q.append_pair("id_token_hint", t);
            }
            q.append_pair("client_id", &self.client_id);
            q.append_pair("post_logout_redirect_uri", post_logout);
        }
        Some(url.to_string())
    }
}

/// Decodes the (already verified) payload of a compact JWS.
fn jwt_payload(jwt: &str) -> Option<Map<String, Value>> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_jwt_payload() {
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"a","id_number":"x"}"#);
        let m = jwt_payload(&format!("h.{body}.s")).expect("payload");
        assert_eq!(m["sub"], "a");
        assert!(jwt_payload("nonsense").is_none());
    }
}
