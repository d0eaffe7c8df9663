//! The demo's cases (`onewindow::demo_seed`): played twice on a test app wired to the
//! development identity provider, they are all there once, each in its planned state,
//! with the drafts and the ratings; and the personas see them after a real login.

use std::collections::BTreeMap;

use onewindow::demo_seed::{self, plan, planned_drafts};
use onewindow::store::CaseFilter;
use serde_json::Value;

use crate::backend_tests;
use crate::cases::Session;
use crate::harness::Backend;
use crate::login::with_dev_idp;

backend_tests!(
    the_demo_seed_makes_every_state_once_and_is_idempotent,
    the_persona_panel_is_served_in_the_demo_only,
);

/// `/demo` answers only when the app runs as the demo (its public client is the demo's),
/// with one login link per persona, in the reader's language only.
async fn the_persona_panel_is_served_in_the_demo_only(b: Backend) {
    let plain = with_dev_idp(b, &[("worker_in_serve", "false")]).await;
    let resp = plain
        .app
        .client
        .get(plain.app.url("/demo"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 404, "no persona panel outside the demo");

    let demo = with_dev_idp(
        b,
        &[
            ("worker_in_serve", "false"),
            ("oidc_client_id", onewindow::demo::DEMO_CLIENT_ID),
        ],
    )
    .await;
    let page = |lang: &'static str| {
        let req = demo
            .app
            .client
            .get(demo.app.url(&format!("/demo?lang={lang}")))
            .header("accept", "text/html");
        async move {
            let resp = req.send().await.expect("request");
            assert_eq!(resp.status(), 200);
            resp.text().await.expect("body")
        }
    };
    let en = page("en").await;
    assert!(en.contains("<html lang=\"en\">"), "{en}");
    assert!(en.contains("Demo personas"), "{en}");
    assert!(
        !en.contains("演示身份"),
        "the English page is English: {en}"
    );
    for id in [
        "citizen-wang",
        "enterprise-chen",
        "clerk-sun",
        "officer-zhou",
        "operator-wu",
    ] {
        assert!(en.contains(&format!("login_hint={id}")), "{id}: {en}");
    }
    let zh = page("zh-CN").await;
    assert!(
        zh.contains("演示身份") && !zh.contains("Demo personas"),
        "{zh}"
    );
}

async fn the_demo_seed_makes_every_state_once_and_is_idempotent(b: Backend) {
    let s = with_dev_idp(b, &[("worker_in_serve", "false")]).await;
    let state = &s.app.state;
    let first = demo_seed::seed(state, &s.issuer).await;
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    assert_eq!(first.lodged, plan().len(), "{first:?}");
    assert_eq!(first.drafts, planned_drafts().len(), "{first:?}");
    let second = demo_seed::seed(state, &s.issuer).await;
    assert!(second.failed.is_empty(), "{:?}", second.failed);
    assert_eq!(
        (second.lodged, second.stepped, second.drafts),
        (0, 0, 0),
        "a second start adds nothing: {second:?}"
    );
    assert_eq!(
        first.cases, second.cases,
        "the same cases, in the same states"
    );

    // Every planned case once, in its planned state.
    let (all, total) = state
        .store
        .list_cases(&CaseFilter {
            limit: 100,
            ..CaseFilter::default()
        })
        .await
        .expect("cases");
    assert_eq!(total as usize, plan().len(), "no second batch");
    let by_key: BTreeMap<&str, (&str, &str)> = second
        .cases
        .iter()
        .map(|(k, no, st)| (k.as_str(), (no.as_str(), st.as_str())))
        .collect();
    for p in plan() {
        let (case_no, status) = by_key[p.key];
        assert_eq!(status, p.ends_in.code(), "{}", p.key);
        let c = all
            .iter()
            .find(|c| c.case_no == case_no)
            .expect("the case is stored");
        assert_eq!(c.status, p.ends_in.code(), "{}", p.key);
        assert_eq!(c.service_code, p.service, "{}", p.key);
        assert_eq!(c.rating, p.rating.map(|(l, _)| l), "{}", p.key);
        let materials = state.store.case_materials(c.id).await.expect("materials");
        assert!(!materials.is_empty(), "{} has its materials", p.key);
    }

    // The personas find them after logging in like anyone: citizen-wang her cases and
    // her draft, clerk-sun a worklist, officer-zhou the suspended case.
    let wang = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (status, mine) = wang.get("/api/v1/cases").await;
    assert_eq!(status, 200, "{mine}");
    let mine = items(&mine);
    let mine_nos: Vec<&str> = mine.iter().filter_map(|c| c["case_no"].as_str()).collect();
    for p in plan()
        .iter()
        .filter(|p| p.by == demo_seed::By::Online("citizen-wang"))
    {
        assert!(
            mine_nos.contains(&by_key[p.key].0),
            "citizen-wang does not see {}: {mine:?}",
            p.key
        );
    }
    let (status, drafts) = wang.get("/api/v1/drafts").await;
    assert_eq!(status, 200, "{drafts}");
    assert_eq!(items(&drafts).len(), 1, "{drafts}");

    // Staff find work waiting: the clerk the walk-in's application, each persona officer
    // a suspended case of their department.
    for (persona, key) in [
        ("clerk-sun", "zhao-residence-permit-window"),
        ("officer-ma", "zhao-social-security-card-window"),
        ("officer-zhou", "chen-company-change-domicile"),
    ] {
        let staff = Session::new(&s, "/auth/staff/login", persona).await;
        let (status, list) = staff.get("/api/staff/v1/cases?per_page=100").await;
        assert_eq!(status, 200, "{persona}: {list}");
        assert!(
            items(&list)
                .iter()
                .any(|c| c["case_no"].as_str() == Some(by_key[key].0)),
            "{persona} does not see {key}: {list}"
        );
    }
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}
