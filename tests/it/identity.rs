//! Single sign-on through the gateway: the whole flow, each refusal, sessions, CSRF,
//! roles, department tokens, and the assurance page.

use std::time::Duration;

use onewindow::auth::tokens;
use onewindow::devidp::Tamper;
use onewindow::store::ApiToken;

use crate::backend_tests;
use crate::harness::Backend;
use crate::login::{Browser, with_dev_idp, with_dev_idp_on};

backend_tests!(
    a_citizen_logs_in_and_sees_themselves,
    enterprise_and_staff_roles_come_from_claims,
    a_citizen_cannot_use_the_staff_login,
    a_wrong_state_is_refused,
    a_replayed_callback_or_code_is_refused,
    a_wrong_nonce_is_refused,
    a_wrong_audience_is_refused,
    a_wrong_or_missing_iss_is_refused,
    an_expired_id_token_is_refused,
    a_token_signed_by_another_key_is_refused,
    return_to_never_leaves_the_site,
    cross_site_posts_are_refused,
    an_idle_session_expires,
    logout_ends_the_session_and_the_providers,
    login_rotates_the_session_id,
    department_tokens_are_scoped_to_their_department,
    a_low_assurance_gets_a_page_explaining_what_to_do,
);

const ME: &str = "/api/v1/me";

async fn a_citizen_logs_in_and_sees_themselves(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let browser = Browser::new();
    let resp = s
        .login(&browser, "/auth/login?return_to=/api/v1/me", "citizen-wang")
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], ME);
    let set_cookie: Vec<&str> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let session = set_cookie
        .iter()
        .find(|c| c.starts_with("ow_session="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
            && session.contains("Path=/"),
        "{session}"
    );

    let me: serde_json::Value = browser
        .get(&s.app.url(ME))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["name"], "王小明");
    assert_eq!(me["kind"], "person");
    assert_eq!(
        me["id_number"], "150702********3025",
        "masked: first 6 and last 4"
    );
    assert_eq!(me["phone"], "138****0001");
    assert_eq!(me["assurance_level"], 2);
    assert_eq!(me["roles"], serde_json::json!([{"role": "citizen"}]));
    assert!(!me.to_string().contains("150702198506123025"));

    // not logged in: a 401 problem that says how to log in
    let anon = s.app.get_json(ME, None, 401).await;
    assert_eq!(anon["type"], "urn:onewindow:problem:unauthorized");
    assert!(
        anon["detail"]
            .as_str()
            .expect("detail")
            .contains("/auth/login")
    );
}

async fn enterprise_and_staff_roles_come_from_claims(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let browser = Browser::new();
    s.login(&browser, "/auth/login", "enterprise-chen").await;
    let me: serde_json::Value = browser
        .get(&s.app.url(ME))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["kind"], "enterprise");
    assert_eq!(me["enterprise"]["uscc"], "91150700MA0N2C3D40");
    assert_eq!(me["enterprise"]["role"], "legal_representative");
    assert_eq!(me["roles"][0]["role"], "enterprise_user");

    for (persona, role) in [
        ("officer-zhou", "department_officer"),
        ("clerk-sun", "clerk"),
        ("operator-wu", "operator"),
    ] {
        let browser = Browser::new();
        let resp = s.login(&browser, "/auth/staff/login", persona).await;
        assert_eq!(resp.status(), 303, "{persona}");
        let me: serde_json::Value = browser
            .get(&s.app.url(ME))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(me["kind"], "staff");
        assert_eq!(me["roles"][0]["role"], role, "{persona}: {me}");
        assert_eq!(me["session"]["audience"], "staff");
    }
    let browser = Browser::new();
    s.login(&browser, "/auth/staff/login", "officer-zhou").await;
    let me: serde_json::Value = browser
        .get(&s.app.url(ME))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["roles"][0]["department"], "11150700MB1530001X");
}

async fn a_citizen_cannot_use_the_staff_login(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let browser = Browser::new();
    let resp = s.login(&browser, "/auth/staff/login", "citizen-li").await;
    assert_eq!(resp.status(), 403);
    assert!(browser.cookie(&s.app.url("/"), "ow_session").is_none());
}

/// A refused callback: the right status, and no session.
async fn assert_refused(
    s: &crate::login::LoginSetup,
    browser: &Browser,
    resp: reqwest::Response,
    status: u16,
) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status);
    let body: serde_json::Value = resp.json().await.expect("problem");
    assert!(
        browser.cookie(&s.app.url("/"), "ow_session").is_none(),
        "no session after a refusal"
    );
    assert_eq!(browser.get(&s.app.url(ME)).await.status(), 401);
    body
}

async fn a_wrong_state_is_refused(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let browser = Browser::new();
    let cb = s
        .callback_url(&browser, "/auth/login", "citizen-wang")
        .await;
    let mut url = url::Url::parse(&cb).expect("url");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let forged = k == "state";
            (
                k.into_owned(),
                if forged {
                    "forged-state".into()
                } else {
                    v.into_owned()
                },
            )
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let resp = browser.get(url.as_str()).await;
    let body = assert_refused(&s, &browser, resp, 400).await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("登录请求无效")
    );

    // a callback from another browser (no login cookie) is refused too
    let other = Browser::new();
    assert_refused(&s, &other, other.get(&cb).await, 400).await;
}

async fn a_replayed_callback_or_code_is_refused(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let browser = Browser::new();
    let cb = s
        .callback_url(&browser, "/auth/login", "citizen-wang")
        .await;
    assert_eq!(
        browser.get(&cb).await.status(),
        303,
        "the first use logs in"
    );
    // the same callback again: its state was used up
    let again = Browser::new();
    let resp = again.get(&s.app.url("/auth/login")).await; // gets a fresh login cookie
    assert_eq!(resp.status(), 303);
    assert_eq!(again.get(&cb).await.status(), 400);

    // the old code under a fresh, valid state: the provider refuses the replayed code
    let fresh = Browser::new();
    let new_cb = s.callback_url(&fresh, "/auth/login", "citizen-wang").await;
    let old_code = url::Url::parse(&cb)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .expect("code")
        .1
        .into_owned();
    let mut url = url::Url::parse(&new_cb).expect("url");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let swap = k == "code";
            (
                k.into_owned(),
                if swap {
                    old_code.clone()
                } else {
                    v.into_owned()
                },
            )
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let body = assert_refused(&s, &fresh, fresh.get(url.as_str()).await, 401).await;
    assert!(
        body["detail"].as_str().expect("detail").contains("拒绝"),
        "{body}"
    );
}

async fn tampered(b: Backend, t: Tamper) -> serde_json::Value {
    let s = with_dev_idp(b, &[]).await;
    s.idp.set_tamper(t);
    let browser = Browser::new();
    let resp = s.login(&browser, "/auth/login", "citizen-wang").await;
    assert_refused(&s, &browser, resp, 401).await
}

async fn a_wrong_nonce_is_refused(b: Backend) {
    let body = tampered(
        b,
        Tamper {
            wrong_nonce: true,
            ..Tamper::default()
        },
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .to_lowercase()
            .contains("nonce"),
        "{body}"
    );
}

async fn a_wrong_audience_is_refused(b: Backend) {
    let body = tampered(
        b,
        Tamper {
            wrong_audience: true,
            ..Tamper::default()
        },
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .to_lowercase()
            .contains("audience"),
        "{body}"
    );
}

async fn a_wrong_or_missing_iss_is_refused(b: Backend) {
    let body = tampered(
        b,
        Tamper {
            wrong_iss_in_response: true,
            ..Tamper::default()
        },
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("未知的身份认证平台"),
        "{body}"
    );
    let body = tampered(
        b,
        Tamper {
            omit_iss_in_response: true,
            ..Tamper::default()
        },
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("未知的身份认证平台"),
        "{body}"
    );
}

async fn an_expired_id_token_is_refused(b: Backend) {
    let body = tampered(
        b,
        Tamper {
            expired_id_token: true,
            ..Tamper::default()
        },
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .to_lowercase()
            .contains("expired"),
        "{body}"
    );
}

async fn a_token_signed_by_another_key_is_refused(b: Backend) {
    let body = tampered(
        b,
        Tamper {
            foreign_key: true,
            ..Tamper::default()
        },
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .to_lowercase()
            .contains("signature"),
        "{body}"
    );
}

async fn return_to_never_leaves_the_site(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    for evil in [
        "//evil.example/x",
        "https://evil.example",
        "/\\evil.example",
    ] {
        let browser = Browser::new();
        let path = format!("/auth/login?return_to={}", urlencode(evil));
        let resp = s.login(&browser, &path, "citizen-wang").await;
        assert_eq!(resp.status(), 303);
        assert_eq!(resp.headers()["location"], "/", "{evil}");
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn cross_site_posts_are_refused(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let browser = Browser::new();
    s.login(&browser, "/auth/login", "citizen-wang").await;
    let logout = s.app.url("/auth/logout");
    let post = |origin: Option<&str>, site: Option<&str>, token: Option<&str>| {
        let mut r = browser.client.post(&logout);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(x) = site {
            r = r.header("sec-fetch-site", x);
        }
        if let Some(t) = token {
            r = r.header("x-csrf-token", t);
        }
        r.send()
    };
    for (origin, site, token) in [
        (Some("https://evil.example"), None, None),
        (None, Some("cross-site"), None),
        (None, None, None),
        (None, None, Some("not-the-token")),
    ] {
        let resp = post(origin, site, token).await.expect("post");
        assert_eq!(resp.status(), 403, "{origin:?} {site:?} {token:?}");
        let body: serde_json::Value = resp.json().await.expect("problem");
        assert_eq!(body["type"], "urn:onewindow:problem:forbidden");
    }
    // still logged in
    let me: serde_json::Value = browser
        .get(&s.app.url(ME))
        .await
        .json()
        .await
        .expect("json");
    let csrf = me["session"]["csrf_token"]
        .as_str()
        .expect("csrf")
        .to_owned();
    // a script with the session's token, and a same-origin form post, are accepted
    assert_eq!(
        post(None, None, Some(&csrf)).await.expect("post").status(),
        303
    );
    assert_eq!(
        browser.get(&s.app.url(ME)).await.status(),
        401,
        "logged out"
    );
    s.login(&browser, "/auth/login", "citizen-wang").await;
    let own = format!("http://{}", s.app.addr);
    assert_eq!(
        post(Some(&own), Some("same-origin"), None)
            .await
            .expect("post")
            .status(),
        303
    );
}

async fn an_idle_session_expires(b: Backend) {
    let s = with_dev_idp(
        b,
        &[
            ("session_idle_secs", "1"),
            ("session_absolute_secs", "3600"),
        ],
    )
    .await;
    let browser = Browser::new();
    s.login(&browser, "/auth/login", "citizen-wang").await;
    assert_eq!(browser.get(&s.app.url(ME)).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let resp = browser.get(&s.app.url(ME)).await;
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.expect("problem");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("登录已过期"),
        "{body}"
    );
}

async fn logout_ends_the_session_and_the_providers(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let browser = Browser::new();
    s.login(&browser, "/auth/login", "citizen-wang").await;
    let cookie = browser
        .cookie(&s.app.url("/"), "ow_session")
        .expect("session");

    // On PostgreSQL + Redis a second gateway instance shares the sessions.
    let second = if b == Backend::PostgresRedis {
        let mut res = crate::harness::Resources::new(b).await;
        res.prefix = s.app.state.settings.cache.cache_prefix.clone();
        res.database_url = s
            .app
            .state
            .settings
            .database
            .database_url
            .as_ref()
            .map(|u| secrecy::ExposeSecret::expose_secret(u).to_owned());
        Some(with_dev_idp_on(res, &[]).await)
    } else {
        None
    };
    let on = |base: std::net::SocketAddr| {
        let c = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let cookie = cookie.clone();
        async move {
            c.get(format!("http://{base}{ME}"))
                .header("cookie", format!("ow_session={cookie}"))
                .send()
                .await
                .expect("get")
                .status()
        }
    };
    if let Some(other) = &second {
        assert_eq!(
            on(other.app.addr).await,
            200,
            "the other instance knows the session"
        );
    }

    let resp = browser
        .client
        .post(s.app.url("/auth/logout"))
        .header("origin", format!("http://{}", s.app.addr))
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 303);
    let loc = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(
        loc.starts_with(&format!("{}logout", s.issuer))
            || loc.starts_with(&format!("{}/logout", s.issuer)),
        "RP-initiated logout: {loc}"
    );
    assert!(
        loc.contains("id_token_hint=") && loc.contains("post_logout_redirect_uri="),
        "{loc}"
    );
    assert_eq!(on(s.app.addr).await, 401);
    if let Some(other) = &second {
        assert_eq!(
            on(other.app.addr).await,
            401,
            "logout ends the session on every instance"
        );
    }
}

async fn login_rotates_the_session_id(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let browser = Browser::new();
    s.login(&browser, "/auth/login", "citizen-wang").await;
    let first = browser
        .cookie(&s.app.url("/"), "ow_session")
        .expect("session");
    s.login(&browser, "/auth/login", "citizen-li").await;
    let second = browser
        .cookie(&s.app.url("/"), "ow_session")
        .expect("session");
    assert_ne!(first, second);
    let c = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let old = c
        .get(s.app.url(ME))
        .header("cookie", format!("ow_session={first}"))
        .send()
        .await
        .expect("get");
    assert_eq!(old.status(), 401, "the earlier session ended");
    let me: serde_json::Value = browser
        .get(&s.app.url(ME))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["name"], "李芳");
}

async fn department_tokens_are_scoped_to_their_department(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let market = "11150700MB1530001X";
    let police = "11150700MB15300021";
    let store = &s.app.state.store;
    let now = chrono::Utc::now();
    let make = |dept: &str, expires: Option<chrono::DateTime<chrono::Utc>>| ApiToken {
        id: uuid::Uuid::now_v7(),
        department: dept.into(),
        name: "test".into(),
        scopes: vec!["cases:read".into()],
        created_at: now,
        expires_at: expires,
        revoked_at: None,
    };
    let (t_market, t_police, t_expired) =
        (tokens::generate(), tokens::generate(), tokens::generate());
    let m = make(market, None);
    store
        .insert_api_token(&m, &tokens::hash(&t_market))
        .await
        .expect("insert");
    store
        .insert_api_token(&make(police, None), &tokens::hash(&t_police))
        .await
        .expect("insert");
    store
        .insert_api_token(
            &make(market, Some(now - chrono::Duration::hours(1))),
            &tokens::hash(&t_expired),
        )
        .await
        .expect("insert");

    let get = |path: String, token: Option<String>| {
        let mut r = s.app.client.get(s.app.url(&path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let own = format!("/api/dept/v1/departments/{market}/services");
    let resp = get(own.clone(), Some(t_market.clone())).await.expect("get");
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert!(!body["items"].as_array().expect("items").is_empty());

    let resp = get(own.clone(), Some(t_police.clone())).await.expect("get");
    assert_eq!(resp.status(), 403, "another department's token");
    let resp = get(own.clone(), None).await.expect("get");
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    assert_eq!(
        get(own.clone(), Some(t_expired))
            .await
            .expect("get")
            .status(),
        401,
        "expired"
    );
    assert_eq!(
        get(own.clone(), Some("owt_made-up".into()))
            .await
            .expect("get")
            .status(),
        401
    );

    let who: serde_json::Value = get("/api/dept/v1/whoami".into(), Some(t_market.clone()))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(who["department"]["uscc"], market);

    assert!(
        store
            .revoke_api_token(m.id, chrono::Utc::now())
            .await
            .expect("revoke")
    );
    assert_eq!(
        get(own, Some(t_market)).await.expect("get").status(),
        401,
        "revoked"
    );
    assert!(
        !store
            .revoke_api_token(m.id, chrono::Utc::now())
            .await
            .expect("revoke again")
    );
    // only hashes are stored
    let listed = store.api_tokens().await.expect("list");
    assert_eq!(listed.len(), 3);
}

async fn a_low_assurance_gets_a_page_explaining_what_to_do(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let browser = Browser::new();
    s.login(&browser, "/auth/login", "citizen-zhao").await; // level 1
    let code = "11150700MB1530001X-XK-0001"; // needs level 2
    let api: serde_json::Value = browser
        .get(&s.app.url(&format!("/api/v1/services/{code}/eligibility")))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(api["eligible"], false);
    assert_eq!(api["required_assurance"], 2);
    assert_eq!(api["your_assurance"], 1);
    let resp = browser
        .client
        .get(s.app.url(&format!("/services/{code}/eligibility")))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    assert_eq!(resp.status(), 403);
    let html = resp.text().await.expect("html");
    assert!(
        html.contains("实名认证等级不低于2级，您当前为1级"),
        "{html}"
    );
    assert!(html.contains("如何提升实名认证等级"), "{html}");
    // One language at a time: the English page says the same in English.
    let en = browser
        .client
        .get(s.app.url(&format!("/services/{code}/eligibility?lang=en")))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    assert_eq!(en.status(), 403);
    let html = en.text().await.expect("html");
    assert!(html.contains("How to raise your assurance level"), "{html}");
    assert!(!html.contains("如何提升实名认证等级"), "{html}");

    let ok = Browser::new();
    s.login(&ok, "/auth/login", "citizen-wang").await;
    let api: serde_json::Value = ok
        .get(&s.app.url(&format!("/api/v1/services/{code}/eligibility")))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(api["eligible"], true, "{api}");
}
