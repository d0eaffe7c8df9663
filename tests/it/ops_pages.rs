//! The operator's console through HTTP: the dashboard's figures match the cases made
//! here exactly; a token made on the department page works against the department API
//! until it is revoked there; a dead letter is redelivered from the deliveries page;
//! the delivery mode and the signing keys are set there; only operators get in; the
//! English pages carry no Chinese interface text.

use chrono::Utc;
use onewindow::exchange::worker::deliver_due;
use onewindow::store::DeliveryFilter;
use serde_json::json;

use crate::backend_tests;
use crate::cases::{Session, step};
use crate::desk_pages::{accepted_case, chinese_left, page};
use crate::harness::Backend;
use crate::login::with_dev_idp;

backend_tests!(
    the_dashboard_counts_the_cases_made,
    tokens_delivery_and_keys_are_managed_on_the_department_pages,
);

const HRSS: &str = "11150700MB15300034";

/// Posts a urlencoded form as the page does; answers the status and the redirect's
/// target or the page.
async fn post_form(who: &Session, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let mut all: Vec<(&str, &str)> = vec![("_csrf", who.csrf.as_str())];
    all.extend_from_slice(fields);
    let r = who
        .b
        .client
        .post(format!("{}{path}", who.base))
        .header("accept", "text/html")
        .header("x-csrf-token", &who.csrf)
        .form(&all)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    (
        status,
        location.unwrap_or(r.text().await.unwrap_or_default()),
    )
}

/// The text between `after` and the next `<` (a figure in a tag).
fn figure_after<'a>(html: &'a str, after: &str) -> &'a str {
    let at = html
        .find(after)
        .unwrap_or_else(|| panic!("{after} not in page"))
        + after.len();
    let rest = &html[at..];
    &rest[..rest.find('<').unwrap_or(rest.len())]
}

async fn the_dashboard_counts_the_cases_made(b: Backend) {
    let s = with_dev_idp(b, &[("worker_in_serve", "false")]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    // case A: accepted, reviewed and granted today, then rated 1 star
    let a = accepted_case(&s, &citizen).await;
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    for body in [
        json!({ "action": "start_review" }),
        json!({ "action": "conclude", "result": "approved" }),
    ] {
        let (status, answer) = step(&officer, &a, body).await;
        assert_eq!(status, 200, "{answer}");
    }
    let (status, rated) = citizen
        .post(
            &format!("/api/v1/cases/{a}/rating"),
            &json!({ "rating": 1, "comment": "Too slow at the window" }),
        )
        .await;
    assert_eq!(status, 200, "{rated}");
    // case B: accepted only
    let b_no = accepted_case(&s, &citizen).await;

    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    s.app
        .state
        .store
        .case_figures()
        .await
        .expect("case figures");
    s.app
        .state
        .store
        .delivery_figures()
        .await
        .expect("delivery figures");
    let (status, html) = page(&op, "/ops?lang=en").await;
    assert_eq!(status, 200, "{html}");
    let value =
        |id: &str| figure_after(&html, &format!("id=\"{id}\"><span class=\"value\">")).to_owned();
    assert_eq!(value("stat-total"), "2");
    assert_eq!(
        value("stat-on-time"),
        "100.0%",
        "A concluded before its due date"
    );
    assert_eq!(
        value("stat-avg-days"),
        "0.0",
        "accepted and concluded the same day"
    );
    assert_eq!(value("stat-rating"), "1.0");
    assert!(html.contains("(1 of 1)"), "the on-time figures");
    // by status: one granted, one accepted (the figures' table beside the chart)
    assert_eq!(
        figure_after(
            &html,
            "<tr><th scope=\"row\">Concluded: approved</th><td class=\"num\">"
        ),
        "1"
    );
    assert_eq!(
        figure_after(
            &html,
            "<tr><th scope=\"row\">Accepted</th><td class=\"num\">"
        ),
        "1"
    );
    assert!(html.contains("<svg"), "charts are drawn");
    // the low rating links to its case
    assert!(
        html.contains(&format!("href=\"/staff/cases/{a}\"")),
        "{html}"
    );
    assert!(html.contains("Too slow at the window"));
    assert!(!html.contains(&format!("href=\"/staff/cases/{b_no}\"")));
    // events wait for delivery (no worker runs here)
    assert_ne!(value("stat-backlog"), "0");
    assert_eq!(value("stat-dead"), "0");
    let left = chinese_left(&html, &["吴敏"]);
    assert!(left.is_empty(), "Chinese text in English: {left:#?}");

    // only operators
    for path in [
        "/ops",
        "/ops/departments",
        "/ops/deliveries",
        &format!("/ops/departments/{HRSS}"),
    ] {
        let (status, _) = page(&officer, path).await;
        assert_eq!(status, 403, "{path}");
        let (status, _) = page(&citizen, path).await;
        assert_eq!(status, 403, "{path}");
    }
    let (status, _) = post_form(&officer, "/ops/keys/rotate", &[]).await;
    assert_eq!(status, 403);
}

async fn tokens_delivery_and_keys_are_managed_on_the_department_pages(b: Backend) {
    let s = with_dev_idp(
        b,
        &[
            ("worker_in_serve", "false"),
            ("exchange_allow_http", "true"),
        ],
    )
    .await;
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let dept_page = format!("/ops/departments/{HRSS}");

    // a token: refused without a scope, then made and shown once
    let tokens_path = format!("{dept_page}/tokens");
    let (status, html) = post_form(&op, &tokens_path, &[("name", "Licensing system")]).await;
    assert_eq!(status, 422);
    assert!(html.contains("href=\"#scope-0\""), "{html}");
    assert!(
        html.contains("value=\"Licensing system\""),
        "what was typed is kept"
    );
    let (status, html) = post_form(
        &op,
        &tokens_path,
        &[
            ("name", "Licensing system"),
            ("scope", "cases:read"),
            ("scope", "inbox"),
            ("lifetime", "90d"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let at = html.find("value=\"owt_").expect("the secret is shown") + "value=\"".len();
    let secret = html[at..at + html[at..].find('"').expect("end")].to_owned();
    let whoami = |token: String| {
        let url = s.app.url("/api/dept/v1/whoami");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("whoami")
                .status()
                .as_u16()
        }
    };
    assert_eq!(whoami(secret.clone()).await, 200, "the new token works");
    let (_, later) = page(&op, &dept_page).await;
    assert!(!later.contains(&secret), "shown only once");
    assert!(later.contains("Licensing system"));
    let id_at = later.find("id=\"token-").expect("listed") + "id=\"token-".len();
    let token_id = later[id_at..id_at + 36].to_owned();
    let (status, to) = post_form(&op, &format!("{tokens_path}/{token_id}/revoke"), &[]).await;
    assert_eq!(status, 303, "{to}");
    assert_eq!(to, format!("{dept_page}?done=revoked"));
    assert_eq!(
        whoami(secret).await,
        401,
        "revoked on the page, refused by the API"
    );

    // the delivery mode: push needs an http(s) address, then pull again
    let delivery = format!("{dept_page}/delivery");
    let (status, html) = post_form(&op, &delivery, &[("mode", "push"), ("endpoint", "")]).await;
    assert_eq!(status, 422);
    assert!(html.contains("href=\"#endpoint\""), "{html}");
    let (status, _) = post_form(
        &op,
        &delivery,
        &[("mode", "push"), ("endpoint", "http://127.0.0.1:9/events")],
    )
    .await;
    assert_eq!(status, 303);
    let endpoints = s.app.state.store.endpoints().await.expect("endpoints");
    let e = endpoints
        .iter()
        .find(|e| e.department == HRSS)
        .expect("set");
    assert_eq!(e.mode, "push");

    // a case whose events cannot be delivered becomes a dead letter …
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    accepted_case(&s, &citizen).await;
    let store = &s.app.state.store;
    let mut now = Utc::now();
    for _ in 0..12 {
        deliver_due(&s.app.state, now).await.expect("deliver");
        now += chrono::Duration::days(2);
    }
    let dead = store
        .deliveries(&DeliveryFilter {
            state: Some("dead".into()),
            department: Some(HRSS.into()),
            limit: 10,
            ..DeliveryFilter::default()
        })
        .await
        .expect("dead");
    assert_eq!(
        dead.len(),
        1,
        "the first event is dead; the next waits behind it"
    );
    let (_, html) = page(
        &op,
        &format!("/ops/deliveries?state=dead&department={HRSS}"),
    )
    .await;
    assert!(
        html.contains(&format!("id=\"event-{}\"", dead[0].id)),
        "{html}"
    );
    assert!(html.contains(&format!("/ops/deliveries/{}/redeliver", dead[0].id)));
    // … which the operator redelivers from the page
    let (status, to) = post_form(
        &op,
        &format!("/ops/deliveries/{}/redeliver", dead[0].id),
        &[("back", "/ops/deliveries?state=dead")],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(to, "/ops/deliveries?state=dead&done=redelivered");
    let again = store
        .deliveries(&DeliveryFilter {
            department: Some(HRSS.into()),
            limit: 10,
            ..DeliveryFilter::default()
        })
        .await
        .expect("list");
    let it = again
        .iter()
        .find(|d| d.id == dead[0].id)
        .expect("the event");
    assert_eq!(it.state, "pending", "back in the queue");
    let (status, _) = post_form(
        &op,
        &format!("/ops/deliveries/{}/redeliver", dead[0].id),
        &[],
    )
    .await;
    assert_eq!(status, 409, "only a dead letter is redelivered");

    let (status, _) = post_form(&op, &delivery, &[("mode", "pull"), ("endpoint", "")]).await;
    assert_eq!(status, 303);

    // the signing key is rotated; the old one stays published in its grace period
    let (status, to) = post_form(&op, "/ops/keys/rotate", &[]).await;
    assert_eq!(status, 303);
    assert!(to.starts_with("/ops/departments?rotated=1"));
    let (_, html) = page(&op, "/ops/departments?lang=en").await;
    assert!(
        html.contains("Signing now") && html.contains("In grace period"),
        "{html}"
    );
    let jwks: serde_json::Value = reqwest::get(s.app.url("/.well-known/jwks.json"))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));

    // English pages: only department names from data may remain (none are Chinese in en)
    for path in [
        "/ops/departments?lang=en".to_owned(),
        format!("{dept_page}?lang=en"),
        "/ops/deliveries?lang=en".to_owned(),
    ] {
        let (status, html) = page(&op, &path).await;
        assert_eq!(status, 200);
        let left = chinese_left(&html, &["吴敏"]);
        assert!(
            left.is_empty(),
            "{path}: Chinese text in English: {left:#?}"
        );
    }
}
