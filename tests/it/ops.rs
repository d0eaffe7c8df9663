//! Operations: health, readiness (and naming what is down), metrics, request ids,
//! definition versions across restarts.

use crate::backend_tests;
use crate::harness::{Backend, TestApp};

backend_tests!(
    healthz_and_readyz_answer,
    metrics_count_requests_by_route_and_status,
    request_ids_are_returned_and_kept,
    definition_versions_are_recorded_once_across_restarts,
);

async fn healthz_and_readyz_answer(b: Backend) {
    let app = TestApp::spawn(b).await;
    let h = app.get_json("/healthz", None, 200).await;
    assert_eq!(h["status"], "alive");
    let r = app.get_json("/readyz", None, 200).await;
    assert_eq!(r["status"], "ready");
    let (db, cache) = match b {
        Backend::SqliteMemory => ("sqlite", "memory"),
        Backend::PostgresRedis => ("postgres", "redis"),
    };
    assert_eq!(r["checks"]["database"]["backend"], db);
    assert_eq!(r["checks"]["database"]["status"], "up");
    assert_eq!(r["checks"]["cache"]["backend"], cache);
    assert_eq!(r["checks"]["cache"]["status"], "up");
}

/// PostgreSQL and Redis are reached through proxies; taking each away turns /readyz
/// into a 503 that names it, and /healthz stays alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(external_backends),
    ignore = "PostgreSQL/Redis not configured: set ONEWINDOW_TEST_DATABASE_URL and ONEWINDOW_TEST_REDIS_URL"
)]
async fn readyz_names_the_dependency_that_is_down() {
    let app = TestApp::spawn_proxied(Backend::PostgresRedis).await;
    assert_eq!(app.get("/readyz", None).await.status(), 200);

    app.cache_proxy.as_ref().expect("proxy").stop();
    let r = app.get_json("/readyz", None, 503).await;
    assert_eq!(r["status"], "not_ready");
    assert_eq!(r["down"], serde_json::json!(["cache"]));
    assert_eq!(r["checks"]["cache"]["status"], "down");
    assert_eq!(r["checks"]["database"]["status"], "up");

    app.db_proxy.as_ref().expect("proxy").stop();
    let r = app.get_json("/readyz", None, 503).await;
    assert_eq!(r["down"], serde_json::json!(["database", "cache"]));
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    // nothing secret in the answer
    let text = r.to_string();
    assert!(
        !text.contains("postgres://") && !text.contains("redis://"),
        "{text}"
    );
}

async fn metrics_count_requests_by_route_and_status(b: Backend) {
    let app = TestApp::spawn(b).await;
    for _ in 0..3 {
        app.get("/api/v1/services/no-such-x", None).await;
    }
    app.get("/api/v1/departments", None).await;
    let resp = app.get("/metrics", None).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/plain")
    );
    let text = resp.text().await.expect("text");
    // labelled by the route template, never by the raw path
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains("route=\"/api/v1/services/{code}\"")
                && l.contains("status=\"404\"")
        })
        .unwrap_or_else(|| panic!("no counter for the 404s in:\n{text}"));
    let n: f64 = line
        .rsplit(' ')
        .next()
        .expect("value")
        .parse()
        .expect("number");
    assert!(n >= 3.0, "{line}");
    assert!(
        text.contains("http_request_duration_seconds_bucket{"),
        "latency histogram"
    );
    assert!(
        !text.contains("no-such"),
        "raw paths must not become labels"
    );
}

async fn request_ids_are_returned_and_kept(b: Backend) {
    let app = TestApp::spawn(b).await;
    let resp = app.get("/healthz", None).await;
    let generated = resp.headers()["x-request-id"].to_str().expect("id");
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "lb-abc-123")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.headers()["x-request-id"], "lb-abc-123");
}

async fn definition_versions_are_recorded_once_across_restarts(b: Backend) {
    let app = TestApp::spawn(b).await;
    let code = "11150700MB1530001X-XK-0001";
    let v1 = app
        .get_json(&format!("/api/v1/services/{code}/versions"), None, 200)
        .await;
    assert_eq!(v1["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(v1["items"][0]["version"], v1["current"]);
    let res = app.stop().await;

    // a restart on the same database records nothing new
    let app = TestApp::again(res).await;
    let v2 = app
        .get_json(&format!("/api/v1/services/{code}/versions"), None, 200)
        .await;
    assert_eq!(v2["items"], v1["items"]);
    let stored = app
        .state
        .store
        .service_version(code, v1["current"].as_str().expect("version"))
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.definition["name"], "个体工商户设立登记");
    app.get_json("/api/v1/services/NOPE/versions", None, 404)
        .await;
}

/// Further years of the holiday calendar come from a file; a broken file stops the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn further_holiday_years_load_from_a_file() {
    use crate::harness::Resources;
    let res = Resources::new(Backend::SqliteMemory).await;
    let file = res.tmp.path().join("holidays-2030.json");
    std::fs::write(
        &file,
        r#"{"years": {"2030": {"holidays": [{"date": "2030-01-01", "name": "New Year's Day"}], "makeup_workdays": []}}}"#,
    )
    .expect("write");
    let path = file.to_string_lossy().into_owned();
    let settings = res.settings_with(&[("holidays_file", path.as_str())]);
    let app = onewindow::app::Application::build(settings)
        .await
        .expect("builds");
    let cal = app.state().calendar.current();
    assert!(cal.covers(2030) && cal.covers(2026), "built-in years stay");
    let new_year = chrono::NaiveDate::from_ymd_opt(2030, 1, 1).expect("date");
    assert_eq!(cal.is_working_day(new_year), Ok(false));

    std::fs::write(
        &file,
        r#"{"years": {"2030": {"holidays": [{"date": "2031-01-01", "name": "x"}]}}}"#,
    )
    .expect("write");
    let settings = res.settings_with(&[("holidays_file", path.as_str())]);
    let err = onewindow::app::Application::build(settings)
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("holidays-2030.json"), "{err:#}");
}
