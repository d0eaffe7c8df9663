//! Router tests: the dev IdP is driven through `tower::ServiceExt::oneshot`, like a
//! relying party and a browser would drive it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use url::Url;

use super::*;
use crate::domain::ids::{ResidentId, Uscc};

const CLIENT_ID: &str = "onewindow";
const SECRET: &str = "s3cret:with+odd&chars";
const REDIRECT: &str = "http://rp.test/auth/callback";
const AFTER_LOGOUT: &str = "http://rp.test/signed-out";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const NONCE: &str = "n-0S6_WzA2Mj";
const STATE: &str = "af0ifjsldkj";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn idp_at(issuer: &str) -> Arc<DevIdp> {
    DevIdp::new(DevIdpConfig {
        issuer: Url::parse(issuer).expect("issuer"),
        clients: vec![
            DevClient {
                client_id: CLIENT_ID.into(),
                client_secret: SECRET.into(),
                redirect_uris: vec![REDIRECT.into()],
                post_logout_redirect_uris: vec![AFTER_LOGOUT.into()],
            },
            DevClient {
                client_id: "other".into(),
                client_secret: "other-secret".into(),
                redirect_uris: vec!["http://other.test/cb".into()],
                post_logout_redirect_uris: vec!["http://other.test/bye".into()],
            },
        ],
    })
    .expect("dev idp")
}

fn idp() -> Arc<DevIdp> {
    idp_at("http://idp.test")
}

async fn send(router: &Router, req: Request<Body>) -> Response {
    router.clone().oneshot(req).await.expect("response")
}

async fn get(router: &Router, uri: &str) -> Response {
    send(
        router,
        Request::get(uri).body(Body::empty()).expect("request"),
    )
    .await
}

async fn body_text(resp: Response) -> String {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

async fn body_json(resp: Response) -> Value {
    serde_json::from_str(&body_text(resp).await).expect("json")
}

fn location(resp: &Response) -> Url {
    let loc = resp.headers()[header::LOCATION].to_str().expect("location");
    Url::parse(loc).expect("absolute location")
}

fn query_map(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn encode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The parameters of a good authorization request, optionally naming a persona.
fn auth_params(login_hint: Option<&str>) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("response_type", "code".to_owned()),
        ("client_id", CLIENT_ID.to_owned()),
        ("redirect_uri", REDIRECT.to_owned()),
        ("scope", "openid profile phone onewindow".to_owned()),
        ("state", STATE.to_owned()),
        ("nonce", NONCE.to_owned()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".to_owned()),
    ];
    if let Some(h) = login_hint {
        p.push(("login_hint", h.to_owned()));
    }
    p
}

fn auth_uri(params: &[(&str, String)]) -> String {
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    format!("/authorize?{}", encode(&pairs))
}

/// Logs in as a persona and answers the code from the redirect.
async fn code_for(router: &Router, persona: &str) -> String {
    let resp = get(router, &auth_uri(&auth_params(Some(persona)))).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    query_map(&location(&resp))["code"].clone()
}

fn token_request(form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Request<Body> {
    let mut req =
        Request::post("/token").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let creds = STANDARD.encode(format!("{}:{}", enc(id), enc(secret)));
        req = req.header(header::AUTHORIZATION, format!("Basic {creds}"));
    }
    req.body(Body::from(encode(form))).expect("request")
}

async fn redeem(router: &Router, code: &str, verifier: &str) -> Response {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    send(router, token_request(&form, Some((CLIENT_ID, SECRET)))).await
}

/// Logs in as a persona and redeems the code: the token response.
async fn tokens_for(router: &Router, persona: &str) -> Value {
    let code = code_for(router, persona).await;
    let resp = redeem(router, &code, VERIFIER).await;
    assert_eq!(resp.status(), StatusCode::OK);
    body_json(resp).await
}

/// The published key, taken from the JWKS document as a relying party would.
async fn published_key(router: &Router) -> (DecodingKey, String) {
    let jwks = body_json(get(router, "/jwks").await).await;
    let key = &jwks["keys"][0];
    let decoding = DecodingKey::from_ec_components(
        key["x"].as_str().expect("x"),
        key["y"].as_str().expect("y"),
    )
    .expect("decoding key");
    (decoding, key["kid"].as_str().expect("kid").to_owned())
}

/// Verifies an ID token the way the gateway must: signature, issuer, audience, expiry.
async fn verify(
    router: &Router,
    idp: &DevIdp,
    id_token: &str,
) -> jsonwebtoken::errors::Result<Map<String, Value>> {
    let (key, _) = published_key(router).await;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[idp.issuer()]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Map<String, Value>>(id_token, &key, &validation).map(|d| d.claims)
}

/// The claims without checking anything, to look at what a tampered token says.
fn peek(id_token: &str) -> Map<String, Value> {
    let payload = id_token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

#[test]
fn persona_ids_and_usccs_pass_their_check_digits() {
    assert_eq!(personas().len(), 9);
    for p in personas() {
        if let Some(id) = p.id_number {
            ResidentId::parse(id).unwrap_or_else(|e| panic!("{}: {e:?}", p.id));
        }
        for uscc in p
            .uscc
            .iter()
            .chain(p.department.iter())
            .chain(p.hall_departments.iter())
        {
            Uscc::parse(uscc).unwrap_or_else(|e| panic!("{}: {e:?}", p.id));
        }
        assert!([LOA_1, LOA_2, LOA_3].contains(&p.acr));
        assert!(["citizen", "enterprise", "staff"].contains(&p.kind));
        // Debug must not leak the (fake) resident ID number.
        if let Some(id) = p.id_number {
            assert!(!format!("{p:?}").contains(id));
        }
    }
    let staff = find_persona("clerk-sun").expect("clerk").claims();
    assert!(!staff.contains_key("id_number"));
    assert!(!staff.contains_key("department"));
    assert_eq!(staff["roles"], serde_json::json!(["clerk"]));
}

#[test]
fn benchmark_residents_are_found_by_hint_valid_distinct_and_not_on_the_picker() {
    use super::personas::{BENCH_PERSONAS, bench_identity};
    let mut seen = std::collections::HashSet::new();
    for n in [0, 1, 7, 8, 80, 500, BENCH_PERSONAS - 1] {
        let p = find_persona(&format!("bench-citizen-{n}")).expect("bench persona");
        assert_eq!(p.kind, "citizen");
        let id = p.id_number.expect("id number");
        ResidentId::parse(id).unwrap_or_else(|e| panic!("{}: {e:?}", p.id));
        let (name, same_id, _) = bench_identity(n);
        assert_eq!((p.name, id), (name.as_str(), same_id.as_str()));
        assert!(seen.insert(id), "{} repeats an ID number", p.id);
    }
    assert!(find_persona(&format!("bench-citizen-{BENCH_PERSONAS}")).is_none());
    assert!(find_persona("bench-citizen-x").is_none());
    assert!(personas().iter().all(|p| !p.id.starts_with("bench-")));
}

#[tokio::test]
async fn discovery_document_describes_the_endpoints() {
    let idp = idp();
    let router = idp.router();
    let resp = get(&router, "/.well-known/openid-configuration").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let d = body_json(resp).await;
    assert_eq!(d["issuer"], "http://idp.test/");
    assert_eq!(d["authorization_endpoint"], "http://idp.test/authorize");
    assert_eq!(d["token_endpoint"], "http://idp.test/token");
    assert_eq!(d["userinfo_endpoint"], "http://idp.test/userinfo");
    assert_eq!(d["jwks_uri"], "http://idp.test/jwks");
    assert_eq!(d["end_session_endpoint"], "http://idp.test/logout");
    assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(d["subject_types_supported"], serde_json::json!(["public"]));
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    assert_eq!(
        d["scopes_supported"],
        serde_json::json!(["openid", "profile", "phone", "onewindow"])
    );
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        d["grant_types_supported"],
        serde_json::json!(["authorization_code"])
    );
    assert_eq!(
        d["acr_values_supported"],
        serde_json::json!([LOA_1, LOA_2, LOA_3])
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    let claims: Vec<&str> = d["claims_supported"]
        .as_array()
        .expect("claims")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for c in [
        "name",
        "id_number",
        "phone_number",
        "acr",
        "uscc",
        "enterprise_name",
        "enterprise_role",
        "roles",
        "department",
        "service_hall",
        "hall_departments",
    ] {
        assert!(claims.contains(&c), "{c} missing from claims_supported");
    }
}

#[tokio::test]
async fn an_issuer_with_a_path_prefixes_every_endpoint() {
    let idp = idp_at("http://idp.test/dev/idp");
    let router = idp.router();
    let d = body_json(get(&router, "/dev/idp/.well-known/openid-configuration").await).await;
    assert_eq!(d["issuer"], "http://idp.test/dev/idp");
    assert_eq!(
        d["authorization_endpoint"],
        "http://idp.test/dev/idp/authorize"
    );
    assert_eq!(d["jwks_uri"], "http://idp.test/dev/idp/jwks");
    assert_eq!(get(&router, "/dev/idp/jwks").await.status(), StatusCode::OK);
    assert_eq!(get(&router, "/jwks").await.status(), StatusCode::NOT_FOUND);

    let params = auth_params(Some("citizen-wang"));
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = get(&router, &format!("/dev/idp/authorize?{}", encode(&pairs))).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(
        query_map(&location(&resp))["iss"],
        "http://idp.test/dev/idp"
    );
}

#[tokio::test]
async fn jwks_publishes_one_p256_key() {
    let idp = idp();
    let router = idp.router();
    let jwks = body_json(get(&router, "/jwks").await).await;
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(k["kty"], "EC");
    assert_eq!(k["crv"], "P-256");
    assert_eq!(k["use"], "sig");
    assert_eq!(k["alg"], "ES256");
    assert_eq!(k["kid"], idp.keys.kid());
    for coord in ["x", "y"] {
        let s = k[coord].as_str().expect("coordinate");
        assert!(!s.contains('='), "no padding");
        assert_eq!(URL_SAFE_NO_PAD.decode(s).expect("base64url").len(), 32);
    }
    assert!(k.get("d").is_none(), "no private part");
}

#[tokio::test]
async fn login_hint_issues_a_code_and_redirects_with_state_and_iss() {
    let idp = idp();
    let router = idp.router();
    let resp = get(&router, &auth_uri(&auth_params(Some("citizen-wang")))).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = location(&resp);
    assert_eq!(&loc[..url::Position::AfterPath], REDIRECT);
    let q = query_map(&loc);
    assert!(q["code"].len() >= 40);
    assert_eq!(q["state"], STATE);
    assert_eq!(q["iss"], "http://idp.test/");
    assert!(!q.contains_key("error"));
}

#[tokio::test]
async fn picker_lists_every_persona_and_escapes_input() {
    let idp = idp();
    let router = idp.router();
    let mut params = auth_params(Some("<b>nobody</b>"));
    params.retain(|(k, _)| *k != "state");
    params.push(("state", "\"><script>alert(1)</script>".to_owned()));
    let resp = get(&router, &auth_uri(&params)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("type")
            .starts_with("text/html")
    );
    let html = body_text(resp).await;
    assert!(html.contains("<html lang=\"zh-CN\">"));
    assert!(html.contains("<title>"));
    assert!(html.contains("开发用身份提供者 — 仅供演示，切勿用于生产"));
    assert!(html.contains("Development identity provider — for demos only, never production"));
    for p in personas() {
        assert!(html.contains(p.name), "{} missing", p.id);
        assert!(html.contains(&format!("name=\"login_hint\" value=\"{}\"", p.id)));
        assert!(html.contains(&minijinja::HtmlEscape(p.description_zh).to_string()));
        assert!(html.contains(&minijinja::HtmlEscape(p.description_en).to_string()));
    }
    assert_eq!(
        html.matches("<form method=\"get\" action=\"authorize\">")
            .count(),
        personas().len()
    );
    // The original parameters ride along as hidden inputs …
    assert!(html.contains(&format!(
        "<input type=\"hidden\" name=\"nonce\" value=\"{NONCE}\">"
    )));
    assert!(html.contains(&format!(
        "<input type=\"hidden\" name=\"code_challenge\" value=\"{}\">",
        challenge(VERIFIER)
    )));
    // … escaped, and the unknown hint is neither a hidden input nor raw markup.
    assert!(!html.contains("<script>"));
    assert!(html.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
    assert!(!html.contains("<b>nobody</b>"));
    assert!(html.contains("&lt;b&gt;nobody&lt;&#x2f;b&gt;"));
    assert!(!html.contains("value=\"&lt;b&gt;nobody"));
}

#[tokio::test]
async fn unregistered_redirect_uri_or_client_never_redirects() {
    let idp = idp();
    let router = idp.router();
    let cases: Vec<Vec<(&str, String)>> = {
        let mut wrong_uri = auth_params(Some("citizen-wang"));
        wrong_uri.retain(|(k, _)| *k != "redirect_uri");
        wrong_uri.push(("redirect_uri", "http://rp.test/auth/callback/".into()));
        let mut other_clients_uri = auth_params(Some("citizen-wang"));
        other_clients_uri.retain(|(k, _)| *k != "redirect_uri");
        other_clients_uri.push(("redirect_uri", "http://other.test/cb".into()));
        let mut no_uri = auth_params(Some("citizen-wang"));
        no_uri.retain(|(k, _)| *k != "redirect_uri");
        let mut unknown_client = auth_params(Some("citizen-wang"));
        unknown_client.retain(|(k, _)| *k != "client_id");
        unknown_client.push(("client_id", "mallory".into()));
        let mut twice = auth_params(Some("citizen-wang"));
        twice.push(("redirect_uri", "http://evil.test/cb".into()));
        vec![wrong_uri, other_clients_uri, no_uri, unknown_client, twice]
    };
    for params in cases {
        let resp = get(&router, &auth_uri(&params)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{params:?}");
        assert!(resp.headers().get(header::LOCATION).is_none());
        let html = body_text(resp).await;
        assert!(html.contains("<html lang=\"zh-CN\">"));
        assert!(html.contains("请求无效"));
    }
    assert!(lock(&idp.codes).is_empty());
}

#[tokio::test]
async fn missing_or_plain_pkce_redirects_back_with_invalid_request() {
    let idp = idp();
    let router = idp.router();
    let mut plain = auth_params(Some("citizen-wang"));
    plain.retain(|(k, _)| *k != "code_challenge_method");
    plain.push(("code_challenge_method", "plain".into()));
    let mut missing = auth_params(Some("citizen-wang"));
    missing.retain(|(k, _)| !k.starts_with("code_challenge"));
    let mut no_nonce = auth_params(Some("citizen-wang"));
    no_nonce.retain(|(k, _)| *k != "nonce");
    for params in [plain, missing, no_nonce] {
        let resp = get(&router, &auth_uri(&params)).await;
        assert_eq!(resp.status(), StatusCode::FOUND);
        let q = query_map(&location(&resp));
        assert_eq!(q["error"], "invalid_request");
        assert_eq!(q["state"], STATE);
        assert_eq!(q["iss"], "http://idp.test/");
        assert!(!q.contains_key("code"));
    }
    let mut no_openid = auth_params(Some("citizen-wang"));
    no_openid.retain(|(k, _)| *k != "scope");
    no_openid.push(("scope", "profile".into()));
    let resp = get(&router, &auth_uri(&no_openid)).await;
    assert_eq!(query_map(&location(&resp))["error"], "invalid_scope");
    assert!(lock(&idp.codes).is_empty());
}

#[tokio::test]
async fn a_code_works_once_and_a_replay_revokes_its_token() {
    let idp = idp();
    let router = idp.router();
    let code = code_for(&router, "citizen-wang").await;

    let first = redeem(&router, &code, VERIFIER).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()[header::CACHE_CONTROL], "no-store");
    let tokens = body_json(first).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 300);
    assert_eq!(tokens["scope"], "openid profile phone onewindow");
    let access = tokens["access_token"].as_str().expect("access token");

    let replay = redeem(&router, &code, VERIFIER).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(replay).await["error"], "invalid_grant");

    let userinfo = Request::get("/userinfo")
        .header(header::AUTHORIZATION, format!("Bearer {access}"))
        .body(Body::empty())
        .expect("request");
    assert_eq!(
        send(&router, userinfo).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn wrong_verifier_redirect_uri_client_or_code_is_invalid_grant() {
    let idp = idp();
    let router = idp.router();

    let code = code_for(&router, "citizen-wang").await;
    let resp = redeem(
        &router,
        &code,
        "a-different-verifier-that-is-long-enough-0123456789",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(resp).await["error"], "invalid_grant");
    // The failed attempt used the code up.
    let resp = redeem(&router, &code, VERIFIER).await;
    assert_eq!(body_json(resp).await["error"], "invalid_grant");

    let code = code_for(&router, "citizen-wang").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://rp.test/elsewhere"),
        ("code_verifier", VERIFIER),
    ];
    let resp = send(&router, token_request(&form, Some((CLIENT_ID, SECRET)))).await;
    assert_eq!(body_json(resp).await["error"], "invalid_grant");

    let code = code_for(&router, "citizen-wang").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let resp = send(
        &router,
        token_request(&form, Some(("other", "other-secret"))),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(resp).await["error"], "invalid_grant");

    let resp = redeem(&router, "no-such-code", VERIFIER).await;
    assert_eq!(body_json(resp).await["error"], "invalid_grant");

    let code = code_for(&router, "citizen-wang").await;
    lock(&idp.codes).get_mut(&code).expect("grant").expires_at = Instant::now();
    let resp = redeem(&router, &code, VERIFIER).await;
    assert_eq!(body_json(resp).await["error"], "invalid_grant");
}

#[tokio::test]
async fn bad_client_credentials_are_invalid_client() {
    let idp = idp();
    let router = idp.router();
    let code = code_for(&router, "citizen-wang").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    for creds in [Some((CLIENT_ID, "wrong")), Some(("mallory", SECRET)), None] {
        let resp = send(&router, token_request(&form, creds)).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(body_json(resp).await["error"], "invalid_client");
    }
    // A failed client authentication does not use the code up; client_secret_post works.
    let mut post = form.to_vec();
    post.push(("client_id", CLIENT_ID));
    post.push(("client_secret", SECRET));
    let resp = send(&router, token_request(&post, None)).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn id_token_verifies_with_the_published_key_and_carries_the_claims() {
    let idp = idp();
    let router = idp.router();
    let tokens = tokens_for(&router, "enterprise-chen").await;
    let id_token = tokens["id_token"].as_str().expect("id token");

    let header = jsonwebtoken::decode_header(id_token).expect("header");
    assert_eq!(header.alg, Algorithm::ES256);
    let (_, kid) = published_key(&router).await;
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));

    let claims = verify(&router, &idp, id_token)
        .await
        .expect("valid id token");
    assert_eq!(claims["iss"], "http://idp.test/");
    assert_eq!(claims["sub"], "enterprise-chen");
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["nonce"], NONCE);
    assert_eq!(claims["acr"], LOA_2);
    assert_eq!(claims["name"], "陈静");
    assert_eq!(claims["id_number"], "150702200108081229");
    assert_eq!(claims["phone_number"], "13800000004");
    assert_eq!(claims["uscc"], "91150700MA0N2C3D40");
    assert_eq!(claims["enterprise_name"], "呼伦贝尔草原乳业有限公司");
    assert_eq!(claims["enterprise_role"], "legal_representative");
    assert!(!claims.contains_key("roles"));
    let now = chrono::Utc::now().timestamp();
    let exp = claims["exp"].as_i64().expect("exp");
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(exp - iat, 300);
    assert!((iat - now).abs() < 10);
    assert!(claims["auth_time"].as_i64().expect("auth_time") <= iat);
    let access = tokens["access_token"].as_str().expect("access token");
    let at_hash = URL_SAFE_NO_PAD.encode(&Sha256::digest(access.as_bytes())[..16]);
    assert_eq!(claims["at_hash"], at_hash.as_str());

    let staff = tokens_for(&router, "clerk-sun").await;
    let claims = verify(&router, &idp, staff["id_token"].as_str().expect("id token"))
        .await
        .expect("valid");
    assert_eq!(claims["roles"], serde_json::json!(["clerk"]));
    assert_eq!(claims["service_hall"], "hlbe-zwfwzx");
    assert_eq!(claims["hall_departments"].as_array().map(Vec::len), Some(3));
    assert!(!claims.contains_key("id_number"));
    assert!(!claims.contains_key("uscc"));

    let low = tokens_for(&router, "citizen-zhao").await;
    let claims = verify(&router, &idp, low["id_token"].as_str().expect("id token"))
        .await
        .expect("valid");
    assert_eq!(claims["acr"], LOA_1);
}

#[tokio::test]
async fn tamper_switches_break_the_id_token_as_documented() {
    let idp = idp();
    let router = idp.router();

    idp.set_tamper(Tamper {
        wrong_nonce: true,
        ..Tamper::default()
    });
    let t = tokens_for(&router, "citizen-wang").await;
    let claims = verify(&router, &idp, t["id_token"].as_str().expect("id"))
        .await
        .expect("still validly signed");
    assert_ne!(claims["nonce"], NONCE);

    idp.set_tamper(Tamper {
        wrong_audience: true,
        ..Tamper::default()
    });
    let t = tokens_for(&router, "citizen-wang").await;
    let id = t["id_token"].as_str().expect("id");
    let err = verify(&router, &idp, id).await.expect_err("wrong audience");
    assert_eq!(
        *err.kind(),
        jsonwebtoken::errors::ErrorKind::InvalidAudience
    );
    assert_eq!(peek(id)["aud"], "someone-else");

    idp.set_tamper(Tamper {
        expired_id_token: true,
        ..Tamper::default()
    });
    let t = tokens_for(&router, "citizen-wang").await;
    let id = t["id_token"].as_str().expect("id");
    let err = verify(&router, &idp, id).await.expect_err("expired");
    assert_eq!(
        *err.kind(),
        jsonwebtoken::errors::ErrorKind::ExpiredSignature
    );
    let now = chrono::Utc::now().timestamp();
    let claims = peek(id);
    assert!(claims["exp"].as_i64().expect("exp") <= now - 3600);
    assert!(claims["iat"].as_i64().expect("iat") <= now - 3600);

    idp.set_tamper(Tamper {
        foreign_key: true,
        ..Tamper::default()
    });
    let t = tokens_for(&router, "citizen-wang").await;
    let id = t["id_token"].as_str().expect("id");
    let err = verify(&router, &idp, id).await.expect_err("foreign key");
    assert_eq!(
        *err.kind(),
        jsonwebtoken::errors::ErrorKind::InvalidSignature
    );
    let (_, kid) = published_key(&router).await;
    assert_eq!(
        jsonwebtoken::decode_header(id).expect("header").kid,
        Some(kid)
    );
    let jwks = body_json(get(&router, "/jwks").await).await;
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));

    idp.set_tamper(Tamper::default());
    let t = tokens_for(&router, "citizen-wang").await;
    verify(&router, &idp, t["id_token"].as_str().expect("id"))
        .await
        .expect("well-behaved again");
}

#[tokio::test]
async fn tamper_switches_change_the_iss_response_parameter() {
    let idp = idp();
    let router = idp.router();
    idp.set_tamper(Tamper {
        omit_iss_in_response: true,
        ..Tamper::default()
    });
    let resp = get(&router, &auth_uri(&auth_params(Some("citizen-wang")))).await;
    let q = query_map(&location(&resp));
    assert!(q.contains_key("code"));
    assert!(!q.contains_key("iss"));

    idp.set_tamper(Tamper {
        wrong_iss_in_response: true,
        ..Tamper::default()
    });
    let resp = get(&router, &auth_uri(&auth_params(Some("citizen-wang")))).await;
    assert_eq!(query_map(&location(&resp))["iss"], "https://evil.example");
    assert!(idp.tamper().wrong_iss_in_response);
}

#[tokio::test]
async fn userinfo_needs_the_access_token() {
    let idp = idp();
    let router = idp.router();
    let tokens = tokens_for(&router, "officer-zhou").await;
    let access = tokens["access_token"].as_str().expect("access token");

    for method in ["GET", "POST"] {
        let req = Request::builder()
            .method(method)
            .uri("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {access}"))
            .body(Body::empty())
            .expect("request");
        let resp = send(&router, req).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let info = body_json(resp).await;
        assert_eq!(info["sub"], "officer-zhou");
        assert_eq!(info["name"], "周涛");
        assert_eq!(info["roles"], serde_json::json!(["department_officer"]));
        assert_eq!(info["department"], "11150700MB1530001X");
        assert_eq!(info["acr"], LOA_2);
        assert!(info.get("phone_number").is_none());
    }

    let no_header = Request::get("/userinfo")
        .body(Body::empty())
        .expect("request");
    let wrong = Request::get("/userinfo")
        .header(header::AUTHORIZATION, "Bearer not-a-token")
        .body(Body::empty())
        .expect("request");
    let basic = Request::get("/userinfo")
        .header(header::AUTHORIZATION, format!("Basic {access}"))
        .body(Body::empty())
        .expect("request");
    for req in [no_header, wrong, basic] {
        let resp = send(&router, req).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\""
        );
    }
}

#[tokio::test]
async fn logout_redirects_only_to_registered_uris() {
    let idp = idp();
    let router = idp.router();

    let uri = format!(
        "/logout?{}",
        encode(&[("post_logout_redirect_uri", AFTER_LOGOUT), ("state", "xyz")])
    );
    let resp = get(&router, &uri).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = location(&resp);
    assert_eq!(&loc[..url::Position::AfterPath], AFTER_LOGOUT);
    assert_eq!(query_map(&loc)["state"], "xyz");

    // With an ID token hint, the URI must belong to the token's client.
    let tokens = tokens_for(&router, "citizen-wang").await;
    let hint = tokens["id_token"].as_str().expect("id token");
    let uri = format!(
        "/logout?{}",
        encode(&[
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", AFTER_LOGOUT)
        ])
    );
    assert_eq!(get(&router, &uri).await.status(), StatusCode::FOUND);
    let uri = format!(
        "/logout?{}",
        encode(&[
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", "http://other.test/bye")
        ])
    );
    assert_eq!(get(&router, &uri).await.status(), StatusCode::OK);

    for target in ["http://evil.test/", "http://rp.test/signed-out/"] {
        let uri = format!(
            "/logout?{}",
            encode(&[("post_logout_redirect_uri", target)])
        );
        let resp = get(&router, &uri).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers().get(header::LOCATION).is_none());
        let html = body_text(resp).await;
        assert!(html.contains("已退出"));
        assert!(html.contains("You are signed out"));
    }
    assert_eq!(get(&router, "/logout").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn spawn_serves_on_a_free_port() {
    crate::install_tls_provider();
    let listen: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let (idp, issuer, handle) = spawn(
        listen,
        vec![DevClient {
            client_id: CLIENT_ID.into(),
            client_secret: SECRET.into(),
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![],
        }],
    )
    .await
    .expect("spawn");
    assert_ne!(issuer.port(), Some(0));
    assert_eq!(idp.issuer(), issuer.as_str());
    let url = issuer
        .join(".well-known/openid-configuration")
        .expect("discovery url");
    let doc: Value = reqwest::get(url)
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["issuer"], issuer.as_str());
    handle.abort();
}
