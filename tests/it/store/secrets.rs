//! Server secrets: the first value stored under a name is everyone's.

use std::sync::Arc;

use super::{connect, open};
use crate::backend_tests;
use crate::harness::Backend;

backend_tests!(a_secret_keeps_its_first_value_even_when_instances_race);

async fn a_secret_keeps_its_first_value_even_when_instances_race(b: Backend) {
    let Some((res, s)) = open(b).await else {
        return;
    };
    assert_eq!(
        s.secret("blind_index_key", "first").await.expect("secret"),
        "first"
    );
    assert_eq!(
        s.secret("blind_index_key", "second").await.expect("secret"),
        "first"
    );
    assert_eq!(s.secret("other", "x").await.expect("secret"), "x");

    // Racing instances all get the value of whoever stored first.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let instance = if i % 2 == 0 {
            Arc::clone(&s)
        } else {
            connect(&res).await
        };
        tasks.push(tokio::spawn(async move {
            instance
                .secret("raced", &format!("v{i}"))
                .await
                .expect("secret")
        }));
    }
    let mut values = Vec::new();
    for t in tasks {
        values.push(t.await.expect("task"));
    }
    values.dedup();
    assert_eq!(values.len(), 1, "{values:?}");
    assert!(values[0].starts_with('v'));
    assert_eq!(s.secret("raced", "late").await.expect("secret"), values[0]);
    s.close().await;
}
