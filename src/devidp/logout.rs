//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
//!
//! The dev IdP keeps no session of its own, so logging out only means sending the user
//! back where the relying party asked — if that place is registered — or saying so.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use super::{DevIdp, pages, parse_form, single};

/// `GET /logout` (RP-initiated logout): back to a registered `post_logout_redirect_uri`,
/// or the signed-out page.
pub(super) async fn logout_get(
    State(idp): State<Arc<DevIdp>>,
    RawQuery(query): RawQuery,
) -> Response {
    logout(&idp, &parse_form(query.unwrap_or_default().as_bytes()))
}

/// `POST /logout` (form-encoded), which the specification also allows.
pub(super) async fn logout_post(State(idp): State<Arc<DevIdp>>, body: Bytes) -> Response {
    logout(&idp, &parse_form(&body))
}

fn logout(idp: &DevIdp, params: &[(String, String)]) -> Response {
    match return_to(idp, params) {
        Some(url) => match HeaderValue::from_str(url.as_str()) {
            Ok(location) => (
                StatusCode::FOUND,
                [
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
            )
                .into_response(),
            Err(_) => pages::signed_out(),
        },
        None => pages::signed_out(),
    }
}

/// Where to send the user after logout, if anywhere.
///
/// `post_logout_redirect_uri` must be registered exactly. When the request names the
/// client (by `client_id`, or by the audience of an `id_token_hint` this IdP signed), it
/// must be registered for that client; otherwise for any client. An `id_token_hint` that
/// does not verify, or disagrees with `client_id`, means no redirect at all.
fn return_to(idp: &DevIdp, params: &[(String, String)]) -> Option<Url> {
    let get = |name: &str| single(params, name).ok().flatten();
    let target = get("post_logout_redirect_uri")?;

    let hinted_client = match get("id_token_hint") {
        None => None,
        Some(hint) => {
            let claims = idp.keys.verify_ignoring_expiry(hint)?;
            if claims.get("iss").and_then(|v| v.as_str()) != Some(idp.issuer.as_str()) {
                return None;
            }
            claims
                .get("aud")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        }
    };
    let named_client = match (get("client_id"), hinted_client.as_deref()) {
        (Some(a), Some(b)) if a != b => return None,
        (Some(a), _) => Some(a),
        (None, b) => b,
    };
    let registered = match named_client {
        Some(id) => idp
            .client(id)?
            .post_logout_redirect_uris
            .iter()
            .any(|u| u == target),
        None => idp
            .clients
            .iter()
            .any(|c| c.post_logout_redirect_uris.iter().any(|u| u == target)),
    };
    if !registered {
        return None;
    }
    let mut url = Url::parse(target).ok()?;
    if let Some(state) = get("state") {
        url.query_pairs_mut().append_pair("state", state);
    }
    Some(url)
}
