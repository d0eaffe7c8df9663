//! The whole login against a real, independent OpenID provider (the npm package
//! `oidc-provider` 9.13.3, see tests/oidc): its own login and consent forms, RS256 keys,
//! claims only from userinfo, RFC 9207 `iss`, RP-initiated logout.

use crate::backend_tests;
use crate::harness::{Backend, Resources, TestApp, bind};
use crate::login::Browser;
use crate::oidc_provider::OidcProvider;

backend_tests!(
    citizens_enterprises_and_staff_log_in_through_a_real_provider,
    logout_goes_through_the_real_provider,
);

struct Setup {
    app: TestApp,
    provider: OidcProvider,
}

async fn setup(b: Backend) -> Setup {
    let res = Resources::new(b).await;
    let listener = bind().await;
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let client = |id: &str| {
        serde_json::json!({
            "client_id": id,
            "client_secret": format!("{id}-secret"),
            "redirect_uris": [format!("{base}/auth/callback")],
            "post_logout_redirect_uris": [format!("{base}/")],
        })
    };
    let provider = OidcProvider::start(serde_json::json!([client("gw"), client("gw-staff")])).await;
    let issuer = provider.issuer.clone();
    let app = TestApp::start_on(
        res,
        listener,
        false,
        &[
            ("oidc_issuer", issuer.as_str()),
            ("oidc_client_id", "gw"),
            ("oidc_client_secret", "gw-secret"),
            ("oidc_staff_client_id", "gw-staff"),
            ("oidc_staff_client_secret", "gw-staff-secret"),
            // this provider states assurance in its own claim, as plain levels
            ("oidc_claim_assurance", "assurance_level"),
        ],
    )
    .await;
    Setup { app, provider }
}

impl Setup {
    /// Logs `login` in through `path`, driving the provider's forms; returns the browser.
    async fn login(&self, path: &str, login: &str) -> (Browser, reqwest::Response) {
        let browser = Browser::new();
        let resp = browser.get(&self.app.url(path)).await;
        assert_eq!(resp.status(), 303, "the gateway redirects to the provider");
        let authorize = resp.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        assert!(authorize.starts_with(&self.provider.issuer), "{authorize}");
        assert!(
            authorize.contains("code_challenge_method=S256") && authorize.contains("nonce="),
            "{authorize}"
        );
        let callback = self.provider.login(&authorize, login).await;
        assert!(
            callback.contains("iss="),
            "RFC 9207 iss is sent: {callback}"
        );
        let done = browser.get(&callback).await;
        (browser, done)
    }
}

async fn citizens_enterprises_and_staff_log_in_through_a_real_provider(b: Backend) {
    let s = setup(b).await;
    let (browser, done) = s.login("/auth/login?return_to=/api/v1/me", "alice").await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/api/v1/me");
    let me: serde_json::Value = browser
        .get(&s.app.url("/api/v1/me"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["name"], "张丽");
    assert_eq!(me["kind"], "person");
    assert_eq!(me["id_number"], "150702********3077");
    assert_eq!(me["assurance_level"], 2);
    assert_eq!(me["identity_provider"], s.provider.issuer.as_str());

    let (browser, _) = s.login("/auth/login", "bob").await;
    let me: serde_json::Value = browser
        .get(&s.app.url("/api/v1/me"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["kind"], "enterprise");
    assert_eq!(me["enterprise"]["name"], "呼伦贝尔草原乳业有限公司");

    let (browser, _) = s.login("/auth/staff/login", "carol").await;
    let me: serde_json::Value = browser
        .get(&s.app.url("/api/v1/me"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["roles"][0]["role"], "clerk");
    assert_eq!(me["roles"][0]["hall"], "hlbe-zwfwzx");
    assert_eq!(
        me["roles"][0]["departments"].as_array().map(Vec::len),
        Some(2)
    );

    let (browser, _) = s.login("/auth/staff/login", "dave").await;
    let me: serde_json::Value = browser
        .get(&s.app.url("/api/v1/me"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["roles"][0]["department"], "11150700MB1530001X");

    // a citizen through the staff client has no staff role
    let (_, refused) = s.login("/auth/staff/login", "alice").await;
    assert_eq!(refused.status(), 403);

    let (browser, _) = s.login("/auth/login", "lowa").await;
    let me: serde_json::Value = browser
        .get(&s.app.url("/api/v1/me"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["assurance_level"], 1);
}

async fn logout_goes_through_the_real_provider(b: Backend) {
    let s = setup(b).await;
    let (browser, _) = s.login("/auth/login", "alice").await;
    let resp = browser
        .client
        .post(s.app.url("/auth/logout"))
        .header("origin", format!("http://{}", s.app.addr))
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 303);
    let end_session = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(
        end_session.starts_with(&format!("{}/session/end", s.provider.issuer)),
        "{end_session}"
    );
    let back = s.provider.logout(&end_session).await;
    assert_eq!(
        back,
        format!("http://{}/", s.app.addr),
        "the provider sends the browser home"
    );
    assert_eq!(browser.get(&s.app.url("/api/v1/me")).await.status(), 401);
}
