//! The `Cache` contract, run against the in-memory cache and Redis alike.

use std::sync::Arc;
use std::time::Duration;

use onewindow::cache::{self, Cache};

use crate::backend_tests;
use crate::harness::{Backend, Resources};

backend_tests!(
    values_expire,
    counters_are_fixed_windows_and_atomic,
    prefixes_keep_deployments_apart,
);

async fn open(res: &Resources, prefix: &str) -> Arc<dyn Cache> {
    cache::connect(res.redis_url.as_deref(), prefix)
        .await
        .expect("cache")
}

async fn values_expire(b: Backend) {
    let res = Resources::new(b).await;
    let c = open(&res, &res.prefix).await;
    c.set("session:1", "值".as_bytes(), Duration::from_millis(300))
        .await
        .expect("set");
    assert_eq!(
        c.get("session:1").await.expect("get").as_deref(),
        Some("值".as_bytes())
    );
    assert_eq!(c.get("session:2").await.expect("get"), None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.get("session:1").await.expect("get"), None, "expired");
    c.set("k", b"v", Duration::from_secs(60))
        .await
        .expect("set");
    assert!(c.delete("k").await.expect("delete"));
    assert!(!c.delete("k").await.expect("delete again"));
    assert_eq!(c.get("k").await.expect("get"), None);
}

async fn counters_are_fixed_windows_and_atomic(b: Backend) {
    let res = Resources::new(b).await;
    let c = open(&res, &res.prefix).await;
    let ttl = Duration::from_millis(700);
    // 50 concurrent increments: no lost update
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.incr("rl:x", ttl).await.expect("incr")
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.expect("task"));
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=50).collect::<Vec<i64>>());
    // later increments do not extend the window
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(c.incr("rl:x", ttl).await.expect("incr"), 51);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.incr("rl:x", ttl).await.expect("incr"), 1, "a new window");
}

async fn prefixes_keep_deployments_apart(b: Backend) {
    let res = Resources::new(b).await;
    let a = open(&res, &res.prefix).await;
    let other = format!("{}other:", res.prefix);
    let b2 = open(&res, &other).await;
    a.set("shared-name", b"a", Duration::from_secs(60))
        .await
        .expect("set");
    b2.set("shared-name", b"b", Duration::from_secs(60))
        .await
        .expect("set");
    assert_eq!(
        a.get("shared-name").await.expect("get").as_deref(),
        Some(&b"a"[..])
    );
    assert_eq!(
        b2.get("shared-name").await.expect("get").as_deref(),
        Some(&b"b"[..])
    );
    assert!(b2.purge().await.expect("purge") >= 1);
    assert_eq!(b2.get("shared-name").await.expect("get"), None);
    // purging one prefix leaves the other's keys alone
    assert_eq!(
        a.get("shared-name").await.expect("get").as_deref(),
        Some(&b"a"[..])
    );
}
