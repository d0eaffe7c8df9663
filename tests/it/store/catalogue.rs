//! Migrations and the catalogue's version history.

use std::sync::Arc;

use onewindow::store::ServiceVersion;

use super::{at, at_micros, connect, open};
use crate::backend_tests;
use crate::harness::{Backend, Resources};

backend_tests!(
    migrations_apply_once,
    service_versions_are_idempotent_and_ordered,
    instances_starting_together_record_each_version_once,
);

async fn migrations_apply_once(b: Backend) {
    let res = Resources::new(b).await;
    let s = connect(&res).await;
    let first = s.migrate().await.expect("migrate");
    assert!(
        first >= 7,
        "a fresh database gets every migration, got {first}"
    );
    assert_eq!(s.migrate().await.expect("migrate again"), 0);
    s.ping().await.expect("ping");
    assert_eq!(
        s.backend(),
        match b {
            Backend::SqliteMemory => "sqlite",
            Backend::PostgresRedis => "postgres",
        }
    );
    s.close().await;
}

fn version(code: &str, v: &str, secs: i64) -> ServiceVersion {
    ServiceVersion {
        code: code.into(),
        version: v.into(),
        definition: serde_json::json!({ "code": code, "name": format!("事项 {v}"), "n": [1, 2] }),
        published_at: at_micros(secs, 250_001),
    }
}

async fn service_versions_are_idempotent_and_ordered(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    assert_eq!(s.record_service_versions(&[]).await.expect("empty"), 0);
    let batch = [version("A-0001", "v1", 0), version("B-0001", "v1", 0)];
    assert_eq!(s.record_service_versions(&batch).await.expect("record"), 2);
    assert_eq!(s.record_service_versions(&batch).await.expect("again"), 0);
    assert_eq!(
        s.record_service_versions(&[version("A-0001", "v2", 60), version("A-0001", "v1", 0)])
            .await
            .expect("one new"),
        1
    );
    // Sub-second steps still order newest first (text timestamps compare as times).
    assert_eq!(
        s.record_service_versions(&[version("A-0001", "v3", 60)])
            .await
            .expect("later"),
        1
    );
    let mut v4 = version("A-0001", "v4", 60);
    v4.published_at = at_micros(60, 900_000);
    s.record_service_versions(&[v4]).await.expect("v4");
    let list = s.service_versions("A-0001").await.expect("list");
    let names: Vec<&str> = list.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(
        names,
        ["v4", "v2", "v3", "v1"],
        "newest first, then by version"
    );
    assert_eq!(list[0].published_at, at_micros(60, 900_000));
    assert_eq!(list[1].published_at, at_micros(60, 250_001));

    let got = s
        .service_version("A-0001", "v1")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.code, "A-0001");
    assert_eq!(got.version, "v1");
    assert_eq!(got.definition, version("A-0001", "v1", 0).definition);
    assert_eq!(got.published_at, at_micros(0, 250_001));
    assert!(
        s.service_version("A-0001", "v9")
            .await
            .expect("get")
            .is_none()
    );
    assert!(s.service_versions("C-0001").await.expect("list").is_empty());
    s.close().await;
}

async fn instances_starting_together_record_each_version_once(b: Backend) {
    let Some((res, s)) = open(b).await else {
        return;
    };
    // A catalogue larger than one statement's chunk of rows.
    let catalogue: Vec<ServiceVersion> = (0..1_500)
        .map(|i| version(&format!("S-{i:04}"), "v1", i))
        .collect();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let other = connect(&res).await;
        let catalogue = catalogue.clone();
        tasks.push(tokio::spawn(async move {
            other
                .record_service_versions(&catalogue)
                .await
                .expect("record")
        }));
    }
    let mut added = 0;
    for t in tasks {
        added += t.await.expect("task");
    }
    assert_eq!(added, 1_500, "each version is new to exactly one instance");
    let s: Arc<_> = s;
    assert_eq!(s.service_versions("S-1499").await.expect("list").len(), 1);
    assert_eq!(
        s.service_versions("S-0007").await.expect("list")[0].published_at,
        at(7) + chrono::Duration::microseconds(250_001)
    );
    s.close().await;
}
