//! The cascade to the regional platform (接入自治区平台): case reports reach a simulated
//! regional platform exactly once and in order per case after it was down (refusing
//! connections, then answering 503), with the field names and codes of the mapping file;
//! catalogue changes too; the operator API redelivers dead reports; nothing is queued
//! without a configured region.

use chrono::{Duration, Utc};
use onewindow::region;
use serde_json::Value;

use crate::backend_tests;
use crate::cases::{SSC, Session, step};
use crate::dept_server::{DeptServer, Received};
use crate::exchange::apply_and_accept;
use crate::harness::Backend;
use crate::login::{LoginSetup, with_dev_idp};

backend_tests!(
    reports_reach_the_region_once_and_in_order_after_it_was_down,
    a_custom_mapping_renames_and_the_operator_redelivers_dead_reports,
    nothing_is_queued_without_a_region,
    a_backlog_is_swept_a_batch_at_a_time_each_entry_once,
);

/// A free loopback address nobody listens on (yet).
async fn reserve() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("addr").to_string()
}

async fn setup(b: Backend, push_url: &str, extra: &[(&str, &str)]) -> LoginSetup {
    let mut settings = vec![
        ("worker_in_serve", "false"),
        ("exchange_allow_http", "true"),
        ("region_enabled", "true"),
        ("region_push_url", push_url),
    ];
    settings.extend_from_slice(extra);
    with_dev_idp(b, &settings).await
}

/// A page as a browser gets it.
async fn page(op: &Session, url: &str) -> String {
    let r =
        op.b.client
            .get(url)
            .header("accept", "text/html")
            .send()
            .await
            .expect("page");
    assert_eq!(r.status(), 200);
    r.text().await.expect("text")
}

fn of_type<'a>(got: &'a [Received], kind: &str) -> Vec<&'a Received> {
    got.iter().filter(|r| r.event["type"] == kind).collect()
}

/// The stage codes (the region's `HJDM`) of one case's reports, in arrival order.
fn stages_of(got: &[Received], case_no: &str) -> Vec<String> {
    of_type(got, region::CASE_REPORT_TYPE)
        .iter()
        .filter(|r| r.event["data"]["SBLSH"] == case_no)
        .map(|r| r.event["data"]["HJDM"].as_str().unwrap_or("").to_owned())
        .collect()
}

async fn reports_reach_the_region_once_and_in_order_after_it_was_down(b: Backend) {
    let addr = reserve().await;
    let s = setup(b, &format!("http://{addr}/events"), &[]).await;
    let app = &s.app.state;
    let resources = app.catalogue.resources().len();
    assert!(resources > 0);

    // Case A is submitted, accepted, reviewed and approved; case B submitted and accepted.
    let a = apply_and_accept(&s).await;
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let (st, body) = step(
        &officer,
        &a,
        serde_json::json!({ "action": "start_review" }),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = step(
        &officer,
        &a,
        serde_json::json!({ "action": "conclude", "result": "approved", "note": "同意" }),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let b_case = apply_and_accept(&s).await;

    // The region refuses connections: the first of each case (and each resource) fails.
    let t0 = Utc::now();
    let r = region::deliver_due(app, t0).await.expect("deliver");
    assert_eq!(r.delivered, 0, "{r:?}");
    assert_eq!(
        r.retrying,
        resources + 2,
        "one per resource and per case: {r:?}"
    );
    let (_, overview) = {
        let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
        op.get("/api/ops/v1/region?state=pending").await
    };
    let errors: Vec<&str> = overview["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["last_error"].as_str())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("cannot connect")),
        "{overview}"
    );

    // Up, but answering 503.
    let region_up = DeptServer::start_at(&addr).await;
    region_up.trust(&format!("http://{}", s.app.addr));
    region_up.go_down(503);
    let t1 = t0 + Duration::seconds(10);
    let r = region::deliver_due(app, t1).await.expect("deliver");
    assert_eq!((r.delivered, r.retrying), (0, resources + 2), "{r:?}");

    // Back: every report arrives, each case's in order.
    region_up.come_back();
    let t2 = t1 + Duration::minutes(10);
    let r = region::deliver_due(app, t2).await.expect("deliver");
    assert_eq!(
        r.delivered,
        resources + 6,
        "4 + 2 stages, every resource: {r:?}"
    );
    assert_eq!(region_up.bad_signatures(), 0);
    let got = region_up.received();
    let mut ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "exactly once");
    assert_eq!(stages_of(&got, &a), ["01", "02", "06", "09"], "in order");
    assert_eq!(stages_of(&got, &b_case), ["01", "02"]);

    // The report in the region's names: case, query code, item, limits, conclusion.
    let last = of_type(&got, region::CASE_REPORT_TYPE)
        .into_iter()
        .find(|r| r.event["data"]["SBLSH"] == a.as_str() && r.event["data"]["HJDM"] == "09")
        .expect("conclusion report");
    let d = &last.event["data"];
    assert_eq!(
        last.event["id"],
        last.id.as_str(),
        "CloudEvents id = webhook-id"
    );
    assert_eq!(
        d["BWBS"],
        last.id.as_str(),
        "the report id is the idempotency key"
    );
    assert_eq!(d["SXBM"], SSC);
    assert_eq!(d["HJJG"], "6", "approved, in the region's result code");
    assert_eq!(d["BJJG"], "6");
    assert_eq!(d["SFBJ"], true);
    assert!(d["CXM"].as_str().is_some_and(|q| !q.is_empty()), "{d}");
    assert!(
        d["FDBJSX"].as_u64().is_some() && d["CNSXDW"].is_string(),
        "{d}"
    );
    assert!(
        d.get("case_no").is_none() && d.get("stage").is_none(),
        "{d}"
    );
    assert!(
        got.iter()
            .all(|r| r.event["data"].get("applicant").is_none()),
        "no personal data goes to the region"
    );

    // Catalogue changes: one per resource.
    let changes = of_type(&got, region::CATALOGUE_CHANGE_TYPE);
    assert_eq!(changes.len(), resources);
    assert!(
        changes
            .iter()
            .all(|c| c.event["data"]["ZYDM"].is_string() && c.event["data"]["ZYNR"].is_object())
    );

    // Nothing is sent twice, and a restart queues no catalogue version again.
    let r = region::deliver_due(app, t2 + Duration::hours(1))
        .await
        .expect("deliver");
    assert_eq!(r, Default::default());
    assert_eq!(region::queue_catalogue(app).await.expect("queue"), 0);
    let json = serde_json::json!({ "code": "x", "name": "新资源" });
    assert!(
        region::queue_catalogue_change(app, "x", "v2", &json)
            .await
            .expect("q")
    );
    assert!(
        !region::queue_catalogue_change(app, "x", "v2", &json)
            .await
            .expect("q")
    );
    let r = region::deliver_due(app, t2 + Duration::hours(2))
        .await
        .expect("deliver");
    assert_eq!(r.delivered, 1);
    assert_eq!(region_up.received().len(), got.len() + 1);
}

async fn a_custom_mapping_renames_and_the_operator_redelivers_dead_reports(b: Backend) {
    let dir = tempfile::tempdir().expect("tmp");
    let shipped =
        std::fs::read_to_string(crate::harness::definitions_dir().join("region-mapping.toml"))
            .expect("shipped mapping");
    let custom = shipped
        .replace("case_no = \"SBLSH\"", "case_no = \"BJLSH\"")
        .replace("accept = \"02\"", "accept = \"SL\"");
    assert_ne!(custom, shipped);
    let mapping = dir.path().join("mapping.toml");
    std::fs::write(&mapping, custom).expect("write");

    let region_srv = DeptServer::start().await;
    let s = setup(
        b,
        &region_srv.url,
        &[("region_mapping", mapping.to_str().expect("path"))],
    )
    .await;
    region_srv.trust(&format!("http://{}", s.app.addr));
    region_srv.go_down(503);
    let app = &s.app.state;
    let case_no = apply_and_accept(&s).await;

    // Down through the whole schedule: the first reports die, the rest wait behind them.
    let mut t = Utc::now();
    for _ in 0..10 {
        region::deliver_due(app, t).await.expect("deliver");
        // beyond the longest wait (24 h) with its jitter (+10 %)
        t += Duration::hours(27);
    }
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (st, dead) = op.get("/api/ops/v1/region?state=dead").await;
    assert_eq!(st, 200);
    let items = dead["items"].as_array().expect("items");
    assert!(!items.is_empty());
    assert!(
        items
            .iter()
            .all(|i| i["last_error"] == "HTTP 503" && i["attempts"] == 10)
    );
    let first = items
        .iter()
        .find(|i| i["case_no"] == case_no.as_str())
        .unwrap_or_else(|| panic!("the case's first report is dead: {dead}"));
    let dead_count = items.len() as u64;
    assert!(
        dead["counts"]
            .as_array()
            .expect("counts")
            .iter()
            .any(|c| { c["kind"] == "case_report" && c["state"] == "pending" && c["count"] == 1 }),
        "the accept report waits behind the dead one: {dead}"
    );

    // The page shows the failures with the last error.
    let page = page(&op, &s.app.url("/ops/region?state=dead")).await;
    assert!(page.contains("region-counts") && page.contains("HTTP 503"));

    // One report redelivered, the rest all at once.
    region_srv.come_back();
    let id = first["id"].as_str().expect("id");
    let (st, r) = op
        .post(
            &format!("/api/ops/v1/region/reports/{id}/redeliver"),
            &Value::Null,
        )
        .await;
    assert_eq!((st, r["redelivered"].as_u64()), (200, Some(1)), "{r}");
    let (st, _) = op
        .post(
            &format!("/api/ops/v1/region/reports/{id}/redeliver"),
            &Value::Null,
        )
        .await;
    assert_eq!(st, 409, "no longer dead");
    let (st, r) = op.post("/api/ops/v1/region/redeliver", &Value::Null).await;
    assert_eq!(
        (st, r["redelivered"].as_u64()),
        (200, Some(dead_count - 1)),
        "{r}"
    );
    let rep = region::deliver_due(app, t).await.expect("deliver");
    assert_eq!(rep.delivered as u64, dead_count + 1, "{rep:?}");

    let got = region_srv.received();
    let stages: Vec<&Value> = got
        .iter()
        .filter(|r| r.event["data"]["BJLSH"] == case_no.as_str())
        .map(|r| &r.event["data"]["HJDM"])
        .collect();
    assert_eq!(
        stages,
        ["01", "SL"],
        "renamed field and stage code, in order"
    );
    assert!(got.iter().all(|r| r.event["data"].get("SBLSH").is_none()));
}

async fn nothing_is_queued_without_a_region(b: Backend) {
    let s = with_dev_idp(b, &[("worker_in_serve", "false")]).await;
    let app = &s.app.state;
    apply_and_accept(&s).await;
    assert_eq!(region::sweep(app, None).await.expect("sweep"), 0);
    let r = region::deliver_due(app, Utc::now()).await.expect("deliver");
    assert_eq!(r, Default::default());
    let json = serde_json::json!({ "code": "x" });
    assert!(
        !region::queue_catalogue_change(app, "x", "v1", &json)
            .await
            .expect("q")
    );
    assert!(app.store.region_counts().await.expect("counts").is_empty());
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (st, overview) = op.get("/api/ops/v1/region").await;
    assert_eq!(st, 200);
    assert_eq!(overview["configured"], false);
    assert_eq!(overview["items"], serde_json::json!([]));
    let page = page(&op, &s.app.url("/ops/region")).await;
    assert!(
        page.contains("region-off"),
        "the page says no region is configured"
    );
}

/// An import of old cases leaves a backlog of history entries: the background pass
/// queues one batch (500) at a time, each pass going on after the last entry of the one
/// before, until every entry is queued exactly once; then a pass finds nothing new.
async fn a_backlog_is_swept_a_batch_at_a_time_each_entry_once(b: Backend) {
    let res = crate::harness::Resources::new(b).await;
    let mut settings = res.settings();
    settings.region.region_enabled = true;
    settings.region.region_push_url = format!("http://{}/events", reserve().await);
    let report = onewindow::bench_seed::seed(
        &settings,
        &onewindow::bench_seed::SeedOptions {
            cases: 700,
            applicants: 20,
            persona_issuer: None,
            persona_cases: None,
            sample: None,
            sample_size: 0,
            bench_personas: 0,
        },
    )
    .await
    .expect("seed");
    assert!(report.events > 1_000, "{}", report.events);
    let app = onewindow::app::Application::build_state(settings)
        .await
        .expect("state");
    let mut after = None;
    let mut passes = 0;
    let mut queued = 0;
    loop {
        passes += 1;
        queued += region::sweep_some(&app, None, &mut after, 1)
            .await
            .expect("sweep");
        if after.is_none() {
            break;
        }
        assert!(passes < 10, "the sweep does not end");
    }
    assert_eq!(queued as u64, report.events, "every entry once");
    assert_eq!(
        passes as u64,
        report.events.div_ceil(500),
        "one batch per pass"
    );
    assert_eq!(region::sweep(&app, None).await.expect("again"), 0);
}
