//! The `Store` contract, run against SQLite and PostgreSQL alike.

use chrono::{TimeZone, Utc};
use onewindow::store::{self, ServiceVersion};

use crate::backend_tests;
use crate::harness::{Backend, Resources};

backend_tests!(
    migrations_apply_once,
    service_versions_are_idempotent_and_ordered,
);

async fn open(b: Backend) -> (Resources, std::sync::Arc<dyn store::Store>) {
    let res = Resources::new(b).await;
    let url = res.settings().database_url();
    let s = store::connect(&url, 4).await.expect("connect");
    (res, s)
}

async fn migrations_apply_once(b: Backend) {
    let (_res, s) = open(b).await;
    let first = s.migrate().await.expect("migrate");
    assert!(first >= 1, "a fresh database gets every migration");
    assert_eq!(s.migrate().await.expect("migrate again"), 0);
    s.ping().await.expect("ping");
    s.close().await;
}

fn version(code: &str, v: &str, secs: i64) -> ServiceVersion {
    ServiceVersion {
        code: code.into(),
        version: v.into(),
        definition: serde_json::json!({ "code": code, "name": format!("事项 {v}"), "n": [1, 2] }),
        published_at: Utc
            .timestamp_opt(1_800_000_000 + secs, 0)
            .single()
            .expect("time"),
    }
}

async fn service_versions_are_idempotent_and_ordered(b: Backend) {
    let (_res, s) = open(b).await;
    s.migrate().await.expect("migrate");
    assert_eq!(s.record_service_versions(&[]).await.expect("empty"), 0);
    let batch = [version("A-0001", "v1", 0), version("B-0001", "v1", 0)];
    assert_eq!(s.record_service_versions(&batch).await.expect("record"), 2);
    assert_eq!(s.record_service_versions(&batch).await.expect("again"), 0);
    assert_eq!(
        s.record_service_versions(&[version("A-0001", "v2", 60)])
            .await
            .expect("new"),
        1
    );
    let list = s.service_versions("A-0001").await.expect("list");
    let names: Vec<&str> = list.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(names, ["v2", "v1"], "newest first");
    assert_eq!(
        list[0].published_at,
        Utc.timestamp_opt(1_800_000_060, 0).single().expect("t")
    );

    let got = s
        .service_version("A-0001", "v1")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.definition, version("A-0001", "v1", 0).definition);
    assert!(
        s.service_version("A-0001", "v9")
            .await
            .expect("get")
            .is_none()
    );
    assert!(s.service_versions("C-0001").await.expect("list").is_empty());
    s.close().await;
}
