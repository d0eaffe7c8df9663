//! Logging in through a gateway like a browser does: a cookie jar, redirects followed by
//! hand so a test can stop at (or tamper with) any step.

use std::sync::Arc;

use onewindow::devidp::{self, DevClient, DevIdp};
use reqwest::cookie::{CookieStore, Jar};

use crate::harness::{Backend, Resources, TestApp, bind};

/// A browser: cookies kept, redirects not followed automatically.
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
}

impl Browser {
    pub fn new() -> Browser {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .no_proxy()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Browser { client, jar }
    }

    /// GET a URL as a page navigation.
    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .expect("request")
    }

    /// Follows redirects from `url` until a non-redirect answer, or until `stop` says a
    /// URL should not be requested; returns the last response (if requested) and the
    /// URL where it stopped.
    pub async fn follow(
        &self,
        url: &str,
        stop: impl Fn(&str) -> bool,
    ) -> (Option<reqwest::Response>, String) {
        let mut current = url.to_owned();
        for _ in 0..15 {
            if stop(&current) {
                return (None, current);
            }
            let resp = self.get(&current).await;
            if !resp.status().is_redirection() {
                return (Some(resp), current);
            }
            let loc = resp.headers()["location"]
                .to_str()
                .expect("location")
                .to_owned();
            current = url::Url::parse(&current)
                .expect("url")
                .join(&loc)
                .expect("join")
                .to_string();
        }
        panic!("too many redirects from {url}");
    }

    /// The value of a cookie the browser would send to `url`.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let header = self.jar.cookies(&url::Url::parse(url).expect("url"))?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }
}

/// A gateway wired to a development identity provider (public and staff clients).
pub struct LoginSetup {
    pub app: TestApp,
    pub idp: Arc<DevIdp>,
    pub issuer: String,
}

/// Starts a dev IdP and a gateway using it, with extra settings.
pub async fn with_dev_idp(b: Backend, extra: &[(&str, &str)]) -> LoginSetup {
    let res = Resources::new(b).await;
    with_dev_idp_on(res, extra).await
}

/// The same on given resources (a second instance shares the first one's).
pub async fn with_dev_idp_on(res: Resources, extra: &[(&str, &str)]) -> LoginSetup {
    with_dev_idp_at(res, extra, false).await
}

/// The same, with PostgreSQL and Redis reached through proxies the test can cut.
pub async fn with_dev_idp_proxied(b: Backend, extra: &[(&str, &str)]) -> LoginSetup {
    with_dev_idp_at(Resources::new(b).await, extra, true).await
}

async fn with_dev_idp_at(res: Resources, extra: &[(&str, &str)], proxied: bool) -> LoginSetup {
    let listener = bind().await;
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let client = |id: &str| DevClient {
        client_id: id.into(),
        client_secret: format!("{id}-secret"),
        redirect_uris: vec![format!("{base}/auth/callback")],
        post_logout_redirect_uris: vec![format!("{base}/")],
    };
    let (idp, issuer, _task) = devidp::spawn(
        "127.0.0.1:0".parse().expect("addr"),
        vec![client("gw-public"), client("gw-staff")],
    )
    .await
    .expect("dev idp");
    let issuer = issuer.as_str().to_owned();
    let mut settings: Vec<(&str, &str)> = vec![
        ("oidc_issuer", issuer.as_str()),
        ("oidc_client_id", "gw-public"),
        ("oidc_client_secret", "gw-public-secret"),
        ("oidc_staff_client_id", "gw-staff"),
        ("oidc_staff_client_secret", "gw-staff-secret"),
    ];
    settings.extend_from_slice(extra);
    let app = TestApp::start_on(res, listener, proxied, &settings).await;
    LoginSetup { app, idp, issuer }
}

impl LoginSetup {
    /// Logs `persona` in through `login_path` and stops before requesting the gateway's
    /// callback; returns the callback URL.
    pub async fn callback_url(&self, browser: &Browser, login_path: &str, persona: &str) -> String {
        let start = self.app.url(&format!(
            "{login_path}{}login_hint={persona}",
            if login_path.contains('?') { "&" } else { "?" }
        ));
        let gw = format!("http://{}/auth/callback", self.app.addr);
        let (_, at) = browser.follow(&start, |u| u.starts_with(&gw)).await;
        assert!(
            at.starts_with(&gw),
            "the provider did not send the browser back: {at}"
        );
        at
    }

    /// Completes a login and returns the final response after the callback's redirect.
    pub async fn login(
        &self,
        browser: &Browser,
        login_path: &str,
        persona: &str,
    ) -> reqwest::Response {
        let cb = self.callback_url(browser, login_path, persona).await;
        browser.get(&cb).await
    }
}
