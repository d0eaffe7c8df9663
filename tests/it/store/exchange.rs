//! Department exchange: endpoints, the delivery queue (ordering per case and
//! department, leases, retries, dead letters, the pull inbox) and signing keys.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use onewindow::store::{
    AttemptOutcome, AttemptRow, CaseRow, CaseWrite, Delivery, DeliveryFilter, DepartmentEndpoint,
    OutboxRow, Store, StoredKey, WriteOutcome,
};
use serde_json::json;
use uuid::Uuid;

use super::{DEPT, at, at_micros, case, claim_concurrently, connect, event, only, open, outbox};
use crate::backend_tests;
use crate::harness::Backend;

backend_tests!(
    push_claims_are_due_in_order_per_case_and_department_and_leased,
    a_dead_letter_blocks_its_case_until_redelivered,
    the_pull_inbox_leases_in_order_and_takes_acks,
    deliveries_filter_and_list_oldest_first,
    concurrent_claims_never_share_an_event,
    data_api_and_delivery_mode_are_kept_apart,
    the_first_signing_key_wins_and_a_rotation_replaces_the_set,
);

const PULL: &str = "12150700PULL00000X";
const URL: &str = "https://dept.example/events";

async fn push(s: &dyn Store, department: &str) {
    s.set_endpoint(&DepartmentEndpoint {
        department: department.into(),
        mode: "push".into(),
        endpoint: Some(URL.into()),
        data_api: None,
        updated_at: at(0),
    })
    .await
    .expect("endpoint");
}

/// Writes a case change at `secs` with these events; answers their ids.
async fn change(s: &dyn Store, c: &mut CaseRow, secs: i64, events: &[OutboxRow]) -> Vec<Uuid> {
    let e = event(at(secs), Some("step"), Some(&c.status), "accepted");
    let w = CaseWrite {
        outbox: events,
        ..only(&e)
    };
    let outcome = if c.version == 0 {
        c.version = 1;
        s.create_case(c, w).await
    } else {
        let r = s.update_case(c, w).await;
        c.version += 1;
        r
    };
    assert!(matches!(outcome.expect("write"), WriteOutcome::Done));
    events.iter().map(|o| o.id).collect()
}

fn new_case(secs: i64) -> CaseRow {
    CaseRow {
        version: 0,
        ..case("A-0001", secs)
    }
}

fn ids(ds: &[Delivery]) -> Vec<Uuid> {
    ds.iter().map(|d| d.id).collect()
}

fn attempt(n: i32, at: DateTime<Utc>, status: Option<i32>, error: Option<&str>) -> AttemptRow {
    AttemptRow {
        attempt: n,
        at,
        status,
        latency_ms: 1_234,
        error: error.map(str::to_owned),
    }
}

async fn push_claims_are_due_in_order_per_case_and_department_and_leased(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    push(&*s, DEPT).await;
    let mut c1 = new_case(0);
    let first = change(
        &*s,
        &mut c1,
        0,
        &[outbox(DEPT, "submitted"), outbox(PULL, "submitted")],
    )
    .await;
    let mut c2 = new_case(1);
    let other_case = change(&*s, &mut c2, 1, &[outbox(DEPT, "submitted")]).await;
    let later = change(&*s, &mut c1, 2, &[outbox(DEPT, "accepted")]).await;
    let (e1, x1, f1, e2) = (first[0], first[1], other_case[0], later[0]);

    // The earliest undelivered event of each (case, department), push departments only.
    let claimed = s.claim_push(at(100), at(160), 10).await.expect("claim");
    assert_eq!(ids(&claimed), [e1, f1]);
    let d = &claimed[0];
    assert_eq!((d.case_id, d.case_seq), (c1.id, 1));
    assert_eq!(d.department, DEPT);
    assert_eq!(d.event_type, "gov.onewindow.case.submitted");
    assert_eq!(d.payload, json!({"status": "submitted"}));
    assert_eq!(d.created_at, at(0));
    assert_eq!(d.state, "pending");
    assert_eq!((d.attempts, d.retry_from), (0, 0));
    assert_eq!(d.next_attempt_at, None);
    assert_eq!((d.last_status, d.last_error.as_deref()), (None, None));
    assert_eq!(d.delivered_at, None);
    assert_eq!(d.endpoint.as_deref(), Some(URL));
    assert!(
        !ids(&claimed).contains(&x1),
        "a pull department's event is never pushed"
    );

    // Leased: nobody else takes them until the lease ends (a worker that died).
    assert!(
        s.claim_push(at(159), at(200), 10)
            .await
            .expect("leased")
            .is_empty()
    );
    assert_eq!(
        ids(&s.claim_push(at(161), at(220), 1).await.expect("expired")),
        [e1]
    );

    // Delivered: the case's next event for the department becomes claimable.
    s.finish_attempt(
        e1,
        &attempt(1, at_micros(170, 9), Some(204), None),
        AttemptOutcome::Delivered,
    )
    .await
    .expect("finish");
    // A retry waits for its time; the lease is released at once.
    s.finish_attempt(
        f1,
        &attempt(1, at(171), Some(503), Some("http 503")),
        AttemptOutcome::RetryAt(at(500)),
    )
    .await
    .expect("finish");
    assert_eq!(
        ids(&s.claim_push(at(172), at(232), 10).await.expect("claim")),
        [e2]
    );
    s.finish_attempt(
        e2,
        &attempt(1, at(173), Some(200), None),
        AttemptOutcome::Delivered,
    )
    .await
    .expect("finish");
    assert!(
        s.claim_push(at(499), at(559), 10)
            .await
            .expect("claim")
            .is_empty()
    );
    let due = s.claim_push(at(500), at(560), 10).await.expect("due");
    assert_eq!(ids(&due), [f1]);
    assert_eq!(due[0].attempts, 1);
    assert_eq!(due[0].next_attempt_at, Some(at(500)));
    assert_eq!(due[0].last_status, Some(503));
    assert_eq!(due[0].last_error.as_deref(), Some("http 503"));

    let done = s
        .deliveries(&DeliveryFilter {
            case_id: Some(c1.id),
            department: Some(DEPT.into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(done[0].state, "delivered");
    assert_eq!(done[0].delivered_at, Some(at_micros(170, 9)));
    assert_eq!(done[0].last_status, Some(204));
    let tried = s.attempts(f1).await.expect("attempts");
    assert_eq!(tried.len(), 1);
    assert_eq!(tried[0].attempt, 1);
    assert_eq!(tried[0].at, at(171));
    assert_eq!(tried[0].status, Some(503));
    assert_eq!(tried[0].latency_ms, 1_234);
    assert_eq!(tried[0].error.as_deref(), Some("http 503"));
    s.close().await;
}

async fn a_dead_letter_blocks_its_case_until_redelivered(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    push(&*s, DEPT).await;
    let mut c = new_case(0);
    let e1 = change(&*s, &mut c, 0, &[outbox(DEPT, "submitted")]).await[0];
    let e2 = change(&*s, &mut c, 1, &[outbox(DEPT, "accepted")]).await[0];
    for n in 1..=3 {
        assert_eq!(
            ids(&s
                .claim_push(at(n * 10), at(n * 10 + 5), 10)
                .await
                .expect("claim")),
            [e1]
        );
        let outcome = if n < 3 {
            AttemptOutcome::RetryAt(at(n * 10 + 1))
        } else {
            AttemptOutcome::Dead
        };
        s.finish_attempt(
            e1,
            &attempt(n as i32, at(n * 10), None, Some("connect refused")),
            outcome,
        )
        .await
        .expect("finish");
    }
    assert!(
        s.claim_push(at(1_000), at(1_060), 10)
            .await
            .expect("claim")
            .is_empty(),
        "a dead letter holds back its case's later events"
    );
    let dead = s
        .deliveries(&DeliveryFilter {
            state: Some("dead".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("dead");
    assert_eq!(ids(&dead), [e1]);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(s.attempts(e1).await.expect("attempts").len(), 3);

    assert!(!s.redeliver(e2).await.expect("not dead"));
    assert!(s.redeliver(e1).await.expect("redeliver"));
    assert!(!s.redeliver(e1).await.expect("once"));
    let again = s.claim_push(at(1_000), at(1_060), 10).await.expect("claim");
    assert_eq!(ids(&again), [e1]);
    assert_eq!(again[0].state, "pending");
    assert_eq!(
        (again[0].attempts, again[0].retry_from),
        (3, 3),
        "numbering continues"
    );
    assert_eq!(again[0].next_attempt_at, None, "due at once");
    s.finish_attempt(
        e1,
        &attempt(4, at(1_001), Some(200), None),
        AttemptOutcome::Delivered,
    )
    .await
    .expect("finish");
    assert_eq!(
        ids(&s.claim_push(at(1_002), at(1_060), 10).await.expect("claim")),
        [e2]
    );
    s.close().await;
}

async fn the_pull_inbox_leases_in_order_and_takes_acks(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    push(&*s, DEPT).await;
    let mut c = new_case(0);
    let first = change(
        &*s,
        &mut c,
        0,
        &[outbox(PULL, "submitted"), outbox(DEPT, "submitted")],
    )
    .await;
    let x2 = change(&*s, &mut c, 1, &[outbox(PULL, "accepted")]).await[0];
    let x1 = first[0];

    assert!(
        s.lease_inbox(DEPT, at(10), at(70), 10)
            .await
            .expect("push dept")
            .is_empty(),
        "a push department has no inbox"
    );
    let leased = s
        .lease_inbox(PULL, at(10), at(70), 10)
        .await
        .expect("lease");
    assert_eq!(
        ids(&leased),
        [x1],
        "one case's events one at a time, in order"
    );
    assert_eq!(leased[0].endpoint, None);
    assert!(
        s.lease_inbox(PULL, at(69), at(129), 10)
            .await
            .expect("held")
            .is_empty()
    );
    // Not acknowledged in time: it comes back.
    assert_eq!(
        ids(&s
            .lease_inbox(PULL, at(71), at(131), 10)
            .await
            .expect("back")),
        [x1]
    );

    assert!(!s.ack(DEPT, x1, at(80)).await.expect("other department"));
    assert!(s.ack(PULL, x1, at_micros(80, 3)).await.expect("ack"));
    assert!(!s.ack(PULL, x1, at(81)).await.expect("acked once"));
    let got = s
        .deliveries(&DeliveryFilter {
            case_id: Some(c.id),
            department: Some(PULL.into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(got[0].state, "delivered");
    assert_eq!(got[0].delivered_at, Some(at_micros(80, 3)));
    assert_eq!(
        ids(&s
            .lease_inbox(PULL, at(90), at(150), 10)
            .await
            .expect("next")),
        [x2]
    );
    s.close().await;
}

async fn deliveries_filter_and_list_oldest_first(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let mut c1 = new_case(0);
    let a = change(
        &*s,
        &mut c1,
        0,
        &[outbox(DEPT, "submitted"), outbox(PULL, "submitted")],
    )
    .await;
    let mut c2 = new_case(5);
    let b2 = change(&*s, &mut c2, 5, &[outbox(DEPT, "submitted")]).await;
    let all = DeliveryFilter {
        limit: 100,
        ..Default::default()
    };
    let mut first_two = a.clone();
    first_two.sort();
    let listed = ids(&s.deliveries(&all).await.expect("all"));
    assert_eq!(listed[..2], first_two[..]);
    assert_eq!(listed[2], b2[0]);
    let by = |f: DeliveryFilter| {
        let s = s.clone();
        async move { ids(&s.deliveries(&f).await.expect("list")) }
    };
    assert_eq!(
        by(DeliveryFilter {
            department: Some(DEPT.into()),
            ..all.clone()
        })
        .await,
        [a[0], b2[0]]
    );
    assert_eq!(
        by(DeliveryFilter {
            case_id: Some(c2.id),
            ..all.clone()
        })
        .await,
        [b2[0]]
    );
    assert_eq!(
        by(DeliveryFilter {
            state: Some("delivered".into()),
            ..all.clone()
        })
        .await,
        Vec::<Uuid>::new()
    );
    assert_eq!(
        by(DeliveryFilter {
            limit: 1,
            ..all.clone()
        })
        .await
        .len(),
        1
    );
    s.close().await;
}

async fn concurrent_claims_never_share_an_event(b: Backend) {
    let Some((res, s)) = open(b).await else {
        return;
    };
    push(&*s, DEPT).await;
    let mut all = HashSet::new();
    for i in 0..24 {
        let mut c = new_case(i);
        all.extend(change(&*s, &mut c, i, &[outbox(DEPT, "submitted")]).await);
    }
    // Four instances' workers claim at the same time until nothing is left.
    let claimed = claim_concurrently(&res, |worker| async move {
        ids(&worker
            .claim_push(at(100), at(10_000), 3)
            .await
            .expect("claim"))
    })
    .await;
    assert_eq!(claimed, all, "every due event was claimed");
    s.close().await;
}

async fn data_api_and_delivery_mode_are_kept_apart(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let find = |list: Vec<DepartmentEndpoint>, d: &str| {
        list.into_iter()
            .find(|e| e.department == d)
            .expect("endpoint row")
    };

    // No row yet: a data API alone makes a pull department.
    s.set_data_api(DEPT, Some("https://data.example/api"))
        .await
        .expect("set data api");
    let e = find(s.endpoints().await.expect("endpoints"), DEPT);
    assert_eq!(e.mode, "pull");
    assert_eq!(e.endpoint, None);
    assert_eq!(e.data_api.as_deref(), Some("https://data.example/api"));

    // Changing the delivery mode keeps the data API.
    s.set_endpoint(&DepartmentEndpoint {
        department: DEPT.into(),
        mode: "push".into(),
        endpoint: Some(URL.into()),
        data_api: None,
        updated_at: at_micros(0, 77),
    })
    .await
    .expect("set endpoint");
    let e = find(s.endpoints().await.expect("endpoints"), DEPT);
    assert_eq!(e.mode, "push");
    assert_eq!(e.endpoint.as_deref(), Some(URL));
    assert_eq!(e.data_api.as_deref(), Some("https://data.example/api"));
    assert_eq!(e.updated_at, at_micros(0, 77));

    // Changing the data API keeps the delivery mode and endpoint.
    s.set_data_api(DEPT, Some("https://data.example/v2"))
        .await
        .expect("set data api");
    let e = find(s.endpoints().await.expect("endpoints"), DEPT);
    assert_eq!(
        (e.mode.as_str(), e.endpoint.as_deref()),
        ("push", Some(URL))
    );
    assert_eq!(e.data_api.as_deref(), Some("https://data.example/v2"));

    // Clearing it clears only it.
    s.set_data_api(DEPT, None).await.expect("clear data api");
    let e = find(s.endpoints().await.expect("endpoints"), DEPT);
    assert_eq!(
        (e.mode.as_str(), e.endpoint.as_deref()),
        ("push", Some(URL))
    );
    assert_eq!(e.data_api, None);

    // Listed by department.
    s.set_endpoint(&DepartmentEndpoint {
        department: "0OTHER".into(),
        mode: "pull".into(),
        endpoint: None,
        data_api: None,
        updated_at: at(0),
    })
    .await
    .expect("set endpoint");
    let names: Vec<String> = s
        .endpoints()
        .await
        .expect("endpoints")
        .into_iter()
        .map(|e| e.department)
        .collect();
    assert_eq!(names, ["0OTHER", DEPT]);
    s.close().await;
}

fn key(kid: &str, secs: i64, retires: Option<i64>) -> StoredKey {
    StoredKey {
        kid: kid.into(),
        secret: format!("secret-{kid}"),
        created_at: at_micros(secs, 1),
        retires_at: retires.map(|r| at_micros(r, 2)),
    }
}

async fn the_first_signing_key_wins_and_a_rotation_replaces_the_set(b: Backend) {
    let Some((res, s)) = open(b).await else {
        return;
    };
    let kids = |keys: Vec<StoredKey>| keys.into_iter().map(|k| k.kid).collect::<Vec<_>>();
    // Two instances starting together: both end up with the first key stored.
    let other = connect(&res).await;
    let (k1, k2) = (key("k1", 0, None), key("k2", 0, None));
    let (a, b2) = tokio::join!(s.ensure_signing_key(&k1), other.ensure_signing_key(&k2));
    let (a, b2) = (kids(a.expect("ensure")), kids(b2.expect("ensure")));
    assert_eq!(a.len(), 1);
    assert_eq!(a, b2, "one key, the same for both");
    let first = a[0].clone();

    let rotated = [key(&first, 0, Some(7 * 86_400)), key("k3", 60, None)];
    s.save_signing_keys(&rotated).await.expect("rotate");
    let keys = s
        .ensure_signing_key(&key("k4", 120, None))
        .await
        .expect("ensure");
    assert_eq!(
        kids(keys.clone()),
        [first.clone(), "k3".to_owned()],
        "oldest first"
    );
    assert_eq!(keys[0].retires_at, Some(at_micros(7 * 86_400, 2)));
    assert_eq!(keys[1].secret, "secret-k3");
    assert_eq!(keys[1].created_at, at_micros(60, 1));
    assert_eq!(keys[1].retires_at, None);
    other.close().await;
    s.close().await;
}
