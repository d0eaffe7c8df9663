//! OpenID Provider discovery (OpenID Connect Discovery 1.0) and the JWK Set, which is
//! all a relying party needs to find and trust this IdP.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::DevIdp;
use super::personas::{LOA_1, LOA_2, LOA_3};

/// Every claim a persona may carry, plus the protocol claims of the ID token.
pub(super) const CLAIMS_SUPPORTED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "acr",
    "name",
    "id_number",
    "phone_number",
    "uscc",
    "enterprise_name",
    "enterprise_role",
    "roles",
    "department",
    "service_hall",
    "hall_departments",
];

/// `GET /.well-known/openid-configuration`: the metadata the relying party discovers,
/// including RFC 9207's `authorization_response_iss_parameter_supported`, so the
/// gateway's check of the callback's `iss` is exercised.
pub(super) async fn configuration(State(idp): State<Arc<DevIdp>>) -> Json<Value> {
    Json(json!({
        "issuer": idp.issuer,
        "authorization_endpoint": idp.endpoint("/authorize"),
        "token_endpoint": idp.endpoint("/token"),
        "userinfo_endpoint": idp.endpoint("/userinfo"),
        "jwks_uri": idp.endpoint("/jwks"),
        "end_session_endpoint": idp.endpoint("/logout"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": ["openid", "profile", "phone", "onewindow"],
        "claims_supported": CLAIMS_SUPPORTED,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "grant_types_supported": ["authorization_code"],
        "acr_values_supported": [LOA_1, LOA_2, LOA_3],
        "ui_locales_supported": ["zh-CN", "en"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    }))
}

/// `GET /jwks`: the published key only, never the foreign one.
pub(super) async fn jwks(State(idp): State<Arc<DevIdp>>) -> Json<Value> {
    Json(idp.keys.jwks())
}
