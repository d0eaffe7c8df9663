//! The department exchange: signed push delivery with retries, dead letters and
//! redelivery, ordering per case, the pull inbox with leases, the department status API,
//! and several gateway instances sharing the work.

use chrono::Utc;
use onewindow::auth::tokens;
use onewindow::exchange::worker::deliver_due;
use onewindow::store::{ApiToken, DeliveryFilter};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::cases::{SSC, Session, jpeg, step, valid_values};
use crate::dept_server::DeptServer;
use crate::harness::Backend;
use crate::login::{LoginSetup, with_dev_idp};

backend_tests!(
    pushed_events_are_signed_complete_and_in_order,
    a_department_that_was_down_gets_every_event_once,
    failures_follow_the_schedule_then_dead_letter_and_redelivery,
    the_pull_inbox_leases_and_acknowledges,
    department_steps_are_idempotent_scoped_and_visible_to_the_citizen,
    a_joint_case_goes_to_every_department_and_concludes_with_the_last,
    key_rotation_keeps_the_old_key_published_for_the_grace_period,
    a_token_is_held_to_its_scope_before_any_case_is_read,
);

const HRSS: &str = "11150700MB15300034";

async fn setup(b: Backend, extra: &[(&str, &str)]) -> LoginSetup {
    let mut settings = vec![
        ("worker_in_serve", "false"),
        ("exchange_allow_http", "true"),
    ];
    settings.extend_from_slice(extra);
    with_dev_idp(b, &settings).await
}

/// A department API token with these scopes, stored as the CLI would.
pub(crate) async fn token(s: &LoginSetup, dept: &str, scopes: &[&str]) -> String {
    let secret = tokens::generate();
    let t = ApiToken {
        id: uuid::Uuid::now_v7(),
        department: dept.into(),
        name: "test".into(),
        scopes: scopes.iter().map(|x| x.to_string()).collect(),
        created_at: Utc::now(),
        expires_at: None,
        revoked_at: None,
    };
    s.app
        .state
        .store
        .insert_api_token(&t, &tokens::hash(&secret))
        .await
        .expect("token");
    secret
}

/// A citizen applies for a social security card and the clerk accepts: two events.
pub(crate) async fn apply_and_accept(s: &LoginSetup) -> String {
    let citizen = Session::new(s, "/auth/login", "citizen-wang").await;
    let (_, photo) = citizen.upload("p.jpg", jpeg(7)).await;
    let (status, lodged) = citizen
        .post(
            "/api/v1/cases",
            &json!({ "service_code": SSC, "values": valid_values(), "materials": [{ "material": "id_card", "substitute": true }, { "material": "photo", "upload_id": photo["id"] }] }),
        )
        .await;
    assert_eq!(status, 201, "{lodged}");
    let case_no = lodged["case_no"].as_str().expect("case_no").to_owned();
    let clerk = Session::new(s, "/auth/staff/login", "clerk-sun").await;
    assert_eq!(
        step(&clerk, &case_no, json!({ "action": "accept" }))
            .await
            .0,
        200
    );
    case_no
}

async fn push_to(s: &LoginSetup, dept: &DeptServer) {
    dept.trust(&format!("http://{}", s.app.addr));
    onewindow::http::dept::set_delivery(&s.app.state, HRSS, "push", Some(dept.url.clone()))
        .await
        .expect("push endpoint");
}

fn types(received: &[crate::dept_server::Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.event["type"].as_str().unwrap_or("").to_owned())
        .collect()
}

async fn pushed_events_are_signed_complete_and_in_order(b: Backend) {
    let s = setup(b, &[]).await;
    let dept = DeptServer::start().await;
    push_to(&s, &dept).await;
    let case_no = apply_and_accept(&s).await;

    let report = deliver_due(&s.app.state, Utc::now())
        .await
        .expect("deliver");
    assert_eq!(report.delivered, 2, "{report:?}");
    assert_eq!(dept.bad_signatures(), 0);
    let got = dept.received();
    assert_eq!(
        types(&got),
        [
            "cn.gov.onewindow.case.submitted.v1",
            "cn.gov.onewindow.case.accepted.v1"
        ]
    );
    let e = &got[0].event;
    assert_eq!(e["specversion"], "1.0");
    assert_eq!(e["id"], got[0].id.as_str(), "CloudEvents id = webhook-id");
    assert_eq!(e["subject"], case_no.as_str());
    let data = &e["data"];
    assert_eq!(data["service"]["code"], SSC);
    assert_eq!(
        data["applicant"]["id_number"], "150702198506123025",
        "departments get the whole application"
    );
    assert_eq!(data["form"]["bank"], "icbc");
    let photo = data["materials"]
        .as_array()
        .expect("materials")
        .iter()
        .find(|m| m["material"] == "photo")
        .expect("photo");
    assert_eq!(photo["sha256"].as_str().map(str::len), Some(64));

    // the download link works with the department's token and returns those bytes
    let t = token(&s, HRSS, &["materials:read"]).await;
    let r = s
        .app
        .client
        .get(photo["download_url"].as_str().expect("url"))
        .bearer_auth(&t)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.expect("bytes");
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&bytes)),
        photo["sha256"].as_str().expect("sha")
    );
    let other = token(&s, "11150700MB1530001X", &["materials:read"]).await;
    let r = s
        .app
        .client
        .get(photo["download_url"].as_str().expect("url"))
        .bearer_auth(&other)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 404, "another department cannot fetch it");

    // nothing is sent twice
    assert_eq!(
        deliver_due(&s.app.state, Utc::now())
            .await
            .expect("deliver")
            .delivered,
        0
    );
    // a tampered body fails verification against the published keys
    let jwks: Value = s
        .app
        .client
        .get(s.app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let ring_headers = s
        .app
        .state
        .keys
        .with(|r| r.sign("evt-1", Utc::now().timestamp(), b"{\"a\":1}"));
    let sig = &ring_headers
        .iter()
        .find(|(k, _)| *k == "webhook-signature")
        .expect("sig")
        .1;
    let ts = Utc::now().timestamp().to_string();
    assert!(
        onewindow::exchange::signing::verify(
            &jwks,
            "evt-1",
            &ts,
            sig,
            b"{\"a\":1}",
            Utc::now().timestamp(),
            300
        )
        .is_ok()
    );
    assert!(
        onewindow::exchange::signing::verify(
            &jwks,
            "evt-1",
            &ts,
            sig,
            b"{\"a\":2}",
            Utc::now().timestamp(),
            300
        )
        .is_err()
    );
}

async fn a_department_that_was_down_gets_every_event_once(b: Backend) {
    let s = setup(b, &[]).await;
    let dept = DeptServer::start().await;
    push_to(&s, &dept).await;
    dept.go_down(503);
    let case_no = apply_and_accept(&s).await;
    let t0 = Utc::now();
    let report = deliver_due(&s.app.state, t0).await.expect("deliver");
    assert_eq!(
        (report.delivered, report.retrying),
        (0, 1),
        "the second event waits behind the first"
    );

    // Back, but the first answer is lost: it stores the event and answers 500.
    dept.be_flaky(500);
    let t1 = t0 + chrono::Duration::seconds(10);
    deliver_due(&s.app.state, t1).await.expect("deliver");
    dept.come_back();
    let t2 = t1 + chrono::Duration::minutes(10);
    let report = deliver_due(&s.app.state, t2).await.expect("deliver");
    assert_eq!(report.delivered, 2, "{report:?}");

    let got = dept.received();
    assert_eq!(got.len(), 3, "at least once: one duplicate");
    let mut unique: Vec<&str> = Vec::new();
    for r in &got {
        if !unique.contains(&r.id.as_str()) {
            unique.push(&r.id);
        }
    }
    assert_eq!(
        unique.len(),
        2,
        "exactly once after de-duplication by webhook-id"
    );
    let ordered: Vec<&str> = unique
        .iter()
        .map(|id| {
            got.iter()
                .find(|r| r.id == *id)
                .map(|r| r.event["type"].as_str().unwrap_or(""))
                .unwrap_or("")
        })
        .collect();
    assert_eq!(
        ordered,
        [
            "cn.gov.onewindow.case.submitted.v1",
            "cn.gov.onewindow.case.accepted.v1"
        ]
    );
    assert!(got.iter().all(|r| r.event["subject"] == case_no.as_str()));
    assert_eq!(dept.bad_signatures(), 0, "every retry is signed afresh");
}

async fn failures_follow_the_schedule_then_dead_letter_and_redelivery(b: Backend) {
    let s = setup(b, &[]).await;
    let dept = DeptServer::start().await;
    push_to(&s, &dept).await;
    dept.go_down(500);
    apply_and_accept(&s).await;
    let store = &s.app.state.store;
    let mut now = Utc::now();
    let mut waits = Vec::new();
    for _ in 0..10 {
        deliver_due(&s.app.state, now).await.expect("deliver");
        let first = store
            .deliveries(&DeliveryFilter {
                limit: 1,
                ..DeliveryFilter::default()
            })
            .await
            .expect("list")
            .remove(0);
        match first.next_attempt_at {
            Some(next) => {
                waits.push((next - now).num_seconds());
                now = next + chrono::Duration::seconds(1);
            }
            None => break,
        }
    }
    let expected = [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400];
    assert_eq!(waits.len(), expected.len());
    for (w, e) in waits.iter().zip(expected) {
        let (lo, hi) = ((e as f64 * 0.89) as i64, (e as f64 * 1.11) as i64 + 1);
        assert!(
            (lo..=hi).contains(w),
            "wait {w}s, schedule {e}s ±10 %: {waits:?}"
        );
    }
    let dead = store
        .deliveries(&DeliveryFilter {
            state: Some("dead".into()),
            limit: 10,
            ..DeliveryFilter::default()
        })
        .await
        .expect("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        store.attempts(dead[0].id).await.expect("attempts").len(),
        10,
        "every attempt recorded"
    );
    assert_eq!(dead[0].last_status, Some(500));

    // operators see the dead letter and redeliver it; the department is back
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (status, list) = op.get("/api/ops/v1/deliveries?state=dead").await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (status, _) = citizen.get("/api/ops/v1/deliveries?state=dead").await;
    assert_eq!(status, 403, "only operators");
    let (status, _) = op
        .post(
            &format!("/api/ops/v1/deliveries/{}/redeliver", dead[0].id),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    dept.come_back();
    let report = deliver_due(&s.app.state, Utc::now())
        .await
        .expect("deliver");
    assert_eq!(
        report.delivered, 2,
        "the dead letter, then the event waiting behind it"
    );
    let (status, _) = op
        .post(
            &format!("/api/ops/v1/deliveries/{}/redeliver", dead[0].id),
            &json!({}),
        )
        .await;
    assert_eq!(status, 409, "only dead letters");
    assert_eq!(
        store.attempts(dead[0].id).await.expect("attempts").len(),
        11,
        "the redelivery is attempt 11"
    );
}

async fn the_pull_inbox_leases_and_acknowledges(b: Backend) {
    let s = setup(b, &[("inbox_lease_secs", "1")]).await;
    let case_no = apply_and_accept(&s).await;
    let t = token(&s, HRSS, &["inbox"]).await;
    let inbox = || async {
        let r = s
            .app
            .client
            .get(s.app.url("/api/dept/v1/inbox?limit=10"))
            .bearer_auth(&t)
            .send()
            .await
            .expect("inbox");
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.expect("json")["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let first = inbox().await;
    assert_eq!(first.len(), 1, "one event at a time per case, in order");
    assert_eq!(first[0]["type"], "cn.gov.onewindow.case.submitted.v1");
    assert_eq!(first[0]["subject"], case_no.as_str());
    assert!(inbox().await.is_empty(), "leased");
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let again = inbox().await;
    assert_eq!(again.len(), 1, "an unacknowledged event comes back");
    assert_eq!(again[0]["id"], first[0]["id"]);

    let ack = |id: String| {
        let c = s.app.client.clone();
        let url = s.app.url(&format!("/api/dept/v1/inbox/{id}/ack"));
        let t = t.clone();
        async move {
            c.post(url)
                .bearer_auth(t)
                .send()
                .await
                .expect("ack")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        ack(first[0]["id"].as_str().expect("id").to_owned()).await,
        204
    );
    assert_eq!(
        ack(first[0]["id"].as_str().expect("id").to_owned()).await,
        404,
        "once"
    );
    let next = inbox().await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["type"], "cn.gov.onewindow.case.accepted.v1");
    // without the inbox scope
    let reader = token(&s, HRSS, &["cases:read"]).await;
    let r = s
        .app
        .client
        .get(s.app.url("/api/dept/v1/inbox"))
        .bearer_auth(&reader)
        .send()
        .await
        .expect("inbox");
    assert_eq!(r.status(), 403);
}

async fn department_steps_are_idempotent_scoped_and_visible_to_the_citizen(b: Backend) {
    let s = setup(b, &[]).await;
    let case_no = apply_and_accept(&s).await;
    let t = token(&s, HRSS, &["cases:read", "cases:write"]).await;
    let post = |body: Value, key: &str| {
        let c = s.app.client.clone();
        let url = s
            .app
            .url(&format!("/api/dept/v1/cases/{case_no}/transitions"));
        let (t, key) = (t.clone(), key.to_owned());
        async move {
            let r = c
                .post(url)
                .bearer_auth(t)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .expect("post");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json"))
        }
    };
    let first = post(json!({ "action": "start_review" }), "k-1").await;
    assert_eq!(first.0, 200, "{:?}", first.1);
    let second = post(json!({ "action": "start_review" }), "k-1").await;
    assert_eq!(first, second, "a repeated key returns the first answer");
    let (status, _) = post(json!({ "action": "start_review" }), "k-2").await;
    assert_eq!(
        status, 409,
        "a new key is a new request, and review has started already"
    );
    let (status, _) = post(
        json!({ "action": "conclude", "result": "approved", "note": "同意" }),
        "k-3",
    )
    .await;
    assert_eq!(status, 200);

    let list: Value = s
        .app
        .client
        .get(s.app.url("/api/dept/v1/cases?status=approved"))
        .bearer_auth(&t)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert!(
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|c| c["case_no"] == case_no.as_str())
    );
    let one: Value = s
        .app
        .client
        .get(s.app.url(&format!("/api/dept/v1/cases/{case_no}")))
        .bearer_auth(&t)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(one["applicant"]["id_number"], "150702198506123025");

    let market = token(&s, "11150700MB1530001X", &["cases:read", "cases:write"]).await;
    let r = s
        .app
        .client
        .get(s.app.url(&format!("/api/dept/v1/cases/{case_no}")))
        .bearer_auth(&market)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404, "another department's case");

    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (_, case) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    let steps: Vec<&str> = case["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        steps,
        ["submit", "accept", "start_review", "conclude"],
        "one entry per step, none for the repeat"
    );
    assert_eq!(case["timeline"][2]["by"], "部门业务系统");
}

/// Two gateway instances on one PostgreSQL deliver every event once between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(external_backends),
    ignore = "PostgreSQL/Redis not configured: set ONEWINDOW_TEST_DATABASE_URL and ONEWINDOW_TEST_REDIS_URL"
)]
async fn two_instances_on_postgres_deliver_each_event_once() {
    let s = setup(Backend::PostgresRedis, &[]).await;
    let dept = DeptServer::start().await;
    push_to(&s, &dept).await;
    let mut cases = Vec::new();
    for _ in 0..6 {
        cases.push(apply_and_accept(&s).await);
    }
    let mut res = crate::harness::Resources::new(Backend::PostgresRedis).await;
    res.prefix = s.app.state.settings.cache.cache_prefix.clone();
    res.database_url = s
        .app
        .state
        .settings
        .database
        .database_url
        .as_ref()
        .map(|u| secrecy::ExposeSecret::expose_secret(u).to_owned());
    let other = crate::login::with_dev_idp_on(
        res,
        &[
            ("worker_in_serve", "false"),
            ("exchange_allow_http", "true"),
        ],
    )
    .await;
    let now = Utc::now();
    let (a, b) = tokio::join!(
        deliver_due(&s.app.state, now),
        deliver_due(&other.app.state, now)
    );
    let (a, b) = (a.expect("a"), b.expect("b"));
    // the second event of each case becomes due once the first is delivered
    let (c, d) = tokio::join!(
        deliver_due(&s.app.state, now),
        deliver_due(&other.app.state, now)
    );
    let total = a.delivered + b.delivered + c.expect("c").delivered + d.expect("d").delivered;
    assert_eq!(total, 12, "{a:?} {b:?}");
    let got = dept.received();
    let mut ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "no event was sent twice");
    assert_eq!(got.len(), 12);
    for case_no in &cases {
        let order: Vec<String> = types(
            &got.iter()
                .filter(|r| r.event["subject"] == case_no.as_str())
                .cloned()
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            order,
            [
                "cn.gov.onewindow.case.submitted.v1",
                "cn.gov.onewindow.case.accepted.v1"
            ]
        );
    }
}

const NEWBORN: &str = "11150700MB15300047-QT-0001"; // 新生儿出生“一件事”, 4 departments

async fn a_joint_case_goes_to_every_department_and_concludes_with_the_last(b: Backend) {
    let s = setup(b, &[]).await;
    let depts = [
        "11150700MB15300047",
        "11150700MB15300021",
        "11150700MB1530007G",
        HRSS,
    ];
    // one department by push, the others pull
    let pushed = DeptServer::start().await;
    pushed.trust(&format!("http://{}", s.app.addr));
    onewindow::http::dept::set_delivery(&s.app.state, depts[1], "push", Some(pushed.url.clone()))
        .await
        .expect("push");

    let citizen = Session::new(&s, "/auth/login", "citizen-li").await; // assurance 3
    let birth = (onewindow::usecases::today() - chrono::Duration::days(10)).to_string();
    let (status, lodged) = citizen
        .post(
            "/api/v1/cases",
            &json!({
                "service_code": NEWBORN,
                "values": {
                    "declarant_name": "李芳", "declarant_id_number": "150702199203151541", "declarant_phone": "13800000002",
                    "declarant_relation": "mother", "other_parent_name": "张伟", "other_parent_id_number": "150702199009093077",
                    "baby_name": "张小宝", "baby_gender": "1", "baby_birth_date": birth, "birth_certificate_no": "P123456789",
                    "ethnicity_follows": "father", "hukou_follows": "father", "hukou_address": "呼伦贝尔市海拉尔区胜利大街1号",
                    "bundle_items": ["vaccination", "hukou", "medical_insurance", "social_security_card"],
                },
                "materials": [
                    { "material": "birth_medical_certificate", "substitute": true },
                    { "material": "parents_id_cards", "substitute": true },
                    { "material": "household_register", "substitute": true },
                ],
            }),
        )
        .await;
    assert_eq!(status, 201, "{lodged}");
    let case_no = lodged["case_no"].as_str().expect("case_no").to_owned();

    // one delivery per department, tracked apart
    let id = s
        .app
        .state
        .store
        .case_by_no(&case_no)
        .await
        .expect("read")
        .expect("case")
        .id;
    let rows = s
        .app
        .state
        .store
        .deliveries(&DeliveryFilter {
            case_id: Some(id),
            limit: 100,
            ..DeliveryFilter::default()
        })
        .await
        .expect("deliveries");
    let mut got: Vec<&str> = rows.iter().map(|d| d.department.as_str()).collect();
    got.sort_unstable();
    let mut want = depts.to_vec();
    want.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(
        deliver_due(&s.app.state, Utc::now())
            .await
            .expect("deliver")
            .delivered,
        1,
        "only the push department is pushed"
    );
    assert_eq!(pushed.received().len(), 1);

    let mut tokens = Vec::new();
    for d in depts {
        tokens.push(token(&s, d, &["cases:read", "cases:write", "inbox"]).await);
    }
    let post = |t: String, body: Value| {
        let c = s.app.client.clone();
        let url = s
            .app
            .url(&format!("/api/dept/v1/cases/{case_no}/transitions"));
        async move {
            let r = c
                .post(url)
                .bearer_auth(t)
                .json(&body)
                .send()
                .await
                .expect("post");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json"))
        }
    };
    // the pull departments each see the event in their own inbox
    let r: Value = s
        .app
        .client
        .get(s.app.url("/api/dept/v1/inbox"))
        .bearer_auth(&tokens[2])
        .send()
        .await
        .expect("inbox")
        .json()
        .await
        .expect("json");
    assert_eq!(r["events"][0]["subject"], case_no.as_str());

    assert_eq!(
        post(tokens[0].clone(), json!({ "action": "accept" }))
            .await
            .0,
        200
    );
    for (i, t) in tokens.iter().enumerate() {
        let (status, answer) = post(
            t.clone(),
            json!({ "action": "conclude", "result": "approved", "note": "本部门事项已办结" }),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        let expected = if i + 1 < tokens.len() {
            "accepted"
        } else {
            "approved"
        };
        assert_eq!(
            answer["status"],
            expected,
            "after {} of {} departments",
            i + 1,
            tokens.len()
        );
        if i == 0 {
            let (again, _) = post(
                t.clone(),
                json!({ "action": "conclude", "result": "approved", "note": "再次" }),
            )
            .await;
            assert_eq!(again, 409, "a department concludes its part once");
        }
    }
    let (_, case) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    assert_eq!(case["status"]["code"], "approved");
    assert_eq!(case["joint_parts"].as_object().map(|p| p.len()), Some(4));
}

async fn key_rotation_keeps_the_old_key_published_for_the_grace_period(b: Backend) {
    let s = setup(b, &[]).await;
    let jwks = || async {
        s.app
            .client
            .get(s.app.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("jwks")
            .json::<Value>()
            .await
            .expect("json")
    };
    let before = jwks().await;
    assert_eq!(before["keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(before["keys"][0]["kty"], "OKP");
    assert_eq!(before["keys"][0]["crv"], "Ed25519");
    let old_kid = before["keys"][0]["kid"].as_str().expect("kid").to_owned();

    onewindow::exchange::keys::rotate(
        s.app.state.store.as_ref(),
        Utc::now(),
        chrono::Duration::days(7),
    )
    .await
    .expect("rotate");
    s.app
        .state
        .keys
        .refresh(s.app.state.store.as_ref())
        .await
        .expect("refresh");
    let after = jwks().await;
    let kids: Vec<&str> = after["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(kids.len(), 2, "two keys valid during the rotation");
    assert!(kids.contains(&old_kid.as_str()));
    assert_ne!(kids[0], old_kid, "the new key signs");

    // a receiver that still caches the old key set verifies the new deliveries
    let now = Utc::now().timestamp();
    let headers = s.app.state.keys.with(|r| r.sign("evt-rot", now, b"{}"));
    let sig = &headers
        .iter()
        .find(|(k, _)| *k == "webhook-signature")
        .expect("sig")
        .1;
    assert!(
        onewindow::exchange::signing::verify(
            &before,
            "evt-rot",
            &now.to_string(),
            sig,
            b"{}",
            now,
            300
        )
        .is_ok()
    );
    assert!(
        onewindow::exchange::signing::verify(
            &after,
            "evt-rot",
            &now.to_string(),
            sig,
            b"{}",
            now,
            300
        )
        .is_ok()
    );
}

/// The case routes check the token's scope before they read the case: a token without
/// the scope learns nothing (403 for a case that exists and for one that does not), and
/// a token with it is told 404 for a case of another department, as for no case at all.
async fn a_token_is_held_to_its_scope_before_any_case_is_read(b: Backend) {
    let s = setup(b, &[]).await;
    let case_no = apply_and_accept(&s).await;
    let inbox_only = token(&s, HRSS, &["inbox"]).await;
    let reader = token(&s, HRSS, &["cases:read"]).await;
    let other = token(&s, "11150700MB1530001X", &["cases:read", "materials:read"]).await;
    let status = |method: reqwest::Method, path: String, bearer: String| {
        let r = s
            .app
            .client
            .request(method, s.app.url(&path))
            .bearer_auth(bearer)
            .json(&json!({ "action": "start_review" }));
        async move { r.send().await.expect("request").status().as_u16() }
    };
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let one = format!("/api/dept/v1/cases/{case_no}");
    let none = "/api/dept/v1/cases/HLBE20000101-NOSUCHNO".to_owned();
    let file = format!("{one}/materials/{}", uuid::Uuid::now_v7());
    let steps = format!("{one}/transitions");

    assert_eq!(
        status(get.clone(), one.clone(), inbox_only.clone()).await,
        403
    );
    assert_eq!(
        status(get.clone(), none.clone(), inbox_only.clone()).await,
        403
    );
    assert_eq!(status(get.clone(), file.clone(), reader.clone()).await, 403);
    assert_eq!(
        status(post.clone(), steps.clone(), reader.clone()).await,
        403
    );
    assert_eq!(status(get.clone(), one.clone(), reader.clone()).await, 200);
    assert_eq!(status(get.clone(), none, reader).await, 404);
    assert_eq!(status(get.clone(), one, other.clone()).await, 404);
    assert_eq!(status(get, file, other).await, 404);
}
