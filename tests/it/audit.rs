//! The tamper-evident audit trail: every way of changing the trail behind the gateway's
//! back is reported by `audit verify` (deleting the newest records, inserting one,
//! editing one, editing one and recomputing the chain with a plain hash or with an HMAC
//! under a guessed key, even recomputing with the real key, and removing checkpoints);
//! staff transitions and department reads leave records; concurrent appends verify; old
//! plain-hash records stay verifiable as legacy; the command line says the same.

use onewindow::app::{AppState, Application};
use onewindow::audit::chain::{LinkRow, link};
use onewindow::audit::{self, Report, Who};
use onewindow::store::NewAccess;
use serde_json::json;

use crate::backend_tests;
use crate::cases::{SSC, Session, jpeg, step, valid_values};
use crate::harness::{Backend, Resources};
use crate::login::{LoginSetup, with_dev_idp};

backend_tests!(
    an_untouched_trail_verifies_with_its_counts,
    deleting_the_newest_records_is_reported,
    an_inserted_record_is_reported,
    an_edited_record_is_reported,
    an_edit_with_the_chain_recomputed_is_reported,
    deleted_checkpoints_are_reported_against_the_file,
    a_staff_transition_and_a_department_read_each_leave_a_record,
    concurrent_appends_to_many_chains_verify_intact,
    legacy_records_verify_once_the_first_checkpoint_covers_them,
);

const HRSS: &str = "11150700MB15300034";

/// A gateway's state without the server (so no background checkpoint runs).
async fn state(b: Backend) -> (Resources, AppState) {
    let res = Resources::new(b).await;
    let state = Application::build_state(res.settings())
        .await
        .expect("state");
    (res, state)
}

async fn act(app: &AppState, chain: &str, n: usize) {
    for i in 0..n {
        audit::action(
            app,
            &Who::system("test"),
            "case.note",
            format!("case:{chain}"),
            chain,
            json!({ "n": i }),
        )
        .await
        .expect("append");
    }
}

fn read(subject: &str) -> NewAccess {
    NewAccess {
        subject_index: subject.into(),
        subject_kind: "person".into(),
        at: chrono::Utc::now(),
        resource: "person".into(),
        items: vec!["name".into()],
        reader_kind: "department".into(),
        reader_id: Some("token:x".into()),
        reader_name: "人社局".into(),
        purpose: "部门审查".into(),
        service_code: Some(SSC.into()),
        case_no: Some("A1".into()),
    }
}

/// Two case chains of three actions, one subject's reads, and a checkpoint of them all.
async fn trail(b: Backend) -> (Resources, AppState) {
    let (res, app) = state(b).await;
    act(&app, "A1", 3).await;
    act(&app, "B2", 3).await;
    app.store
        .append_data_access(&[read("idx-1"), read("idx-1")])
        .await
        .expect("reads");
    let cp = audit::checkpoint(app.store.as_ref(), &app.audit, chrono::Utc::now())
        .await
        .expect("checkpoint")
        .expect("signed");
    assert_eq!((cp.seq, cp.records, cp.chains), (1, 8, 3));
    (res, app)
}

async fn verify(app: &AppState) -> Report {
    audit::verify(app.store.as_ref(), &app.audit)
        .await
        .expect("verify runs")
}

fn assert_bad(r: &Report, chain: &str, seq: i64, words: &str) {
    match r {
        Report::Bad {
            chain: c,
            seq: s,
            problem,
        } => {
            assert_eq!((c.as_str(), *s), (chain, seq), "{r}");
            assert!(problem.contains(words), "{r}");
        }
        Report::Intact { .. } => panic!("not reported: {r}"),
    }
}

/// Runs statements straight in the gateway's database, as someone with database access
/// (and no audit secret) would.
async fn sql(app: &AppState, statements: &[String]) {
    use sqlx::Connection;
    let url = app.settings.database_url();
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
        for st in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(st.clone()))
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{st}: {e}"));
        }
    } else {
        let mut c = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        for st in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(st.clone()))
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{st}: {e}"));
        }
    }
}

async fn rows(app: &AppState, chain: &str) -> Vec<LinkRow> {
    app.store.audit_chain_from(chain, 1).await.expect("rows")
}

async fn an_untouched_trail_verifies_with_its_counts(b: Backend) {
    let (_res, app) = trail(b).await;
    act(&app, "A1", 1).await; // newer than the checkpoint: fine
    let r = verify(&app).await;
    match &r {
        Report::Intact {
            records,
            chains,
            last_checkpoint,
        } => {
            assert_eq!((*records, *chains), (9, 3));
            assert_eq!(last_checkpoint.map(|c| c.0), Some(1));
        }
        Report::Bad { .. } => panic!("{r}"),
    }
    assert!(
        r.to_string()
            .starts_with("intact, 9 records in 3 chains, last checkpoint at ")
    );
    // nothing new: no second checkpoint; one more record: a second one naming only it
    let again = audit::checkpoint(app.store.as_ref(), &app.audit, chrono::Utc::now())
        .await
        .expect("checkpoint")
        .expect("A1 moved");
    assert_eq!(again.heads.len(), 1);
    assert_eq!(again.heads[0].0, "event/case:A1");
    assert!(
        audit::checkpoint(app.store.as_ref(), &app.audit, chrono::Utc::now())
            .await
            .expect("checkpoint")
            .is_none()
    );
}

async fn deleting_the_newest_records_is_reported(b: Backend) {
    let (_res, app) = trail(b).await;
    sql(
        &app,
        &["DELETE FROM audit_events WHERE chain = 'case:B2' AND seq = 3".into()],
    )
    .await;
    assert_bad(
        &verify(&app).await,
        "event/case:B2",
        3,
        "the newest were deleted",
    );
    // and a checkpoint refuses to sign over it
    let e = audit::checkpoint(app.store.as_ref(), &app.audit, chrono::Utc::now())
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("not signing"), "{e}");
    // a whole subject's reads deleted
    let (_res, app) = trail(b).await;
    sql(
        &app,
        &["DELETE FROM data_access WHERE subject_index = 'idx-1'".into()],
    )
    .await;
    assert_bad(
        &verify(&app).await,
        "access/idx-1",
        1,
        "the newest were deleted",
    );
}

async fn an_inserted_record_is_reported(b: Backend) {
    let (_res, app) = trail(b).await;
    // a record added at the end, linked to the real head, with a made-up link
    let head = rows(&app, "event/case:A1").await.pop().expect("head");
    sql(
        &app,
        &[format!(
            "INSERT INTO audit_events (id, chain, seq, at, actor_kind, actor_id, action, target, \
             detail, link, prev_hash, hash) VALUES ('{}', 'case:A1', 4, '2026-01-01T00:00:00.000000Z', \
             'operator', 'x', 'case.approve', 'A1', '{{}}', 'hmac', '{}', '{}')",
            uuid::Uuid::now_v7(),
            head.hash,
            "ab".repeat(32)
        )],
    )
    .await;
    assert_bad(&verify(&app).await, "event/case:A1", 4, "HMAC");
    // one slipped into the middle, linked to its predecessor, the later ones renumbered
    let (_res, app) = trail(b).await;
    let first = rows(&app, "event/case:A1").await.remove(0);
    sql(
        &app,
        &[
            "UPDATE audit_events SET seq = seq + 10 WHERE chain = 'case:A1' AND seq >= 2".into(),
            "UPDATE audit_events SET seq = seq - 9 WHERE chain = 'case:A1' AND seq >= 12".into(),
            format!(
                "INSERT INTO audit_events (id, chain, seq, at, actor_kind, actor_id, action, \
                 target, detail, link, prev_hash, hash) VALUES ('{}', 'case:A1', 2, \
                 '2026-01-01T00:00:00.000000Z', 'operator', 'x', 'case.approve', 'A1', '{{}}', \
                 'hmac', '{}', '{}')",
                uuid::Uuid::now_v7(),
                first.hash,
                "cd".repeat(32)
            ),
        ],
    )
    .await;
    assert_bad(&verify(&app).await, "event/case:A1", 2, "HMAC");
}

async fn an_edited_record_is_reported(b: Backend) {
    let (_res, app) = trail(b).await;
    sql(
        &app,
        &[
            "UPDATE audit_events SET action = 'case.approve' WHERE chain = 'case:A1' AND seq = 2"
                .into(),
        ],
    )
    .await;
    assert_bad(
        &verify(&app).await,
        "event/case:A1",
        2,
        "HMAC does not match",
    );
    let (_res, app) = trail(b).await;
    sql(
        &app,
        &[
            "UPDATE data_access SET reader_name = '某人' WHERE subject_index = 'idx-1' AND seq = 1"
                .into(),
        ],
    )
    .await;
    assert_bad(
        &verify(&app).await,
        "access/idx-1",
        1,
        "HMAC does not match",
    );
}

/// Edits record 2 of case A1 and recomputes the chain from it with `key` (`None`: plain
/// SHA-256), writing the links back as `kind`.
async fn edit_and_recompute(app: &AppState, key: Option<&[u8]>, kind: &str) {
    sql(
        app,
        &[
            "UPDATE audit_events SET action = 'case.approve' WHERE chain = 'case:A1' AND seq = 2"
                .into(),
        ],
    )
    .await;
    let rows = rows(app, "event/case:A1").await;
    let mut prev = rows[0].hash.clone();
    let mut statements = Vec::new();
    for r in &rows[1..] {
        let (_, hash) = link(key, &prev, r.seq, r.id, &r.body);
        statements.push(format!(
            "UPDATE audit_events SET link = '{kind}', prev_hash = '{prev}', hash = '{hash}' \
             WHERE id = '{}'",
            r.id
        ));
        prev = hash;
    }
    sql(app, &statements).await;
}

async fn an_edit_with_the_chain_recomputed_is_reported(b: Backend) {
    // a plain SHA-256 chain, as before this version
    let (_res, app) = trail(b).await;
    edit_and_recompute(&app, None, "sha256").await;
    assert_bad(&verify(&app).await, "event/case:A1", 2, "plain hash");
    // an HMAC without the key (a guessed one)
    let (_res, app) = trail(b).await;
    edit_and_recompute(&app, Some(b"a guessed key"), "hmac").await;
    assert_bad(
        &verify(&app).await,
        "event/case:A1",
        2,
        "HMAC does not match",
    );
    // even with the link key (stolen from the host): the signed checkpoint does not match
    let (_res, app) = trail(b).await;
    edit_and_recompute(&app, Some(app.audit.link_key()), "hmac").await;
    assert_bad(
        &verify(&app).await,
        "event/case:A1",
        3,
        "not the record checkpoint 1 signed",
    );
}

async fn deleted_checkpoints_are_reported_against_the_file(b: Backend) {
    let (_res, app) = trail(b).await;
    act(&app, "A1", 1).await;
    audit::checkpoint(app.store.as_ref(), &app.audit, chrono::Utc::now())
        .await
        .expect("checkpoint")
        .expect("second");
    assert!(app.audit.checkpoint_file().exists());
    // the newest checkpoint and the record it covered removed: the table alone agrees
    sql(
        &app,
        &[
            "DELETE FROM audit_checkpoints WHERE seq = 2".into(),
            "DELETE FROM audit_events WHERE chain = 'case:A1' AND seq = 4".into(),
        ],
    )
    .await;
    assert_bad(
        &verify(&app).await,
        "checkpoints",
        2,
        "checkpoints were deleted",
    );
    // a checkpoint's counts edited: its signature no longer holds
    let (_res, app) = trail(b).await;
    sql(
        &app,
        &["UPDATE audit_checkpoints SET records = 7 WHERE seq = 1".into()],
    )
    .await;
    assert_bad(&verify(&app).await, "checkpoints", 1, "not signed");
}

/// A citizen applies; the clerk accepts. Answers the case number.
async fn apply_and_accept(s: &LoginSetup) -> String {
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
    let (status, body) = step(&clerk, &case_no, json!({ "action": "accept" })).await;
    assert_eq!(status, 200, "{body}");
    case_no
}

async fn a_staff_transition_and_a_department_read_each_leave_a_record(b: Backend) {
    let s = with_dev_idp(b, &[("worker_in_serve", "false")]).await;
    let case_no = apply_and_accept(&s).await;
    let token = crate::exchange::token(&s, HRSS, &["cases:read", "materials:read"]).await;
    let r = s
        .app
        .client
        .get(s.app.url(&format!("/api/dept/v1/cases/{case_no}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("read");
    assert_eq!(r.status(), 200);
    let upload = r.json::<serde_json::Value>().await.expect("json")["materials"]
        .as_array()
        .expect("materials")
        .iter()
        .find_map(|m| m["upload_id"].as_str().map(str::to_owned))
        .expect("an uploaded material");
    let r = s
        .app
        .client
        .get(
            s.app
                .url(&format!("/api/dept/v1/cases/{case_no}/materials/{upload}")),
        )
        .bearer_auth(&token)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    let state = &s.app.state;
    let events = state
        .store
        .audit_events(&audit::case_chain(&case_no))
        .await
        .expect("events");
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.event.actor_kind.as_str(), e.event.action.as_str()))
        .collect();
    assert_eq!(seen[0], ("applicant", "case.submit"), "{seen:?}");
    assert!(seen.contains(&("clerk", "case.accept")), "{seen:?}");
    assert!(seen.contains(&("department", "case.read")), "{seen:?}");
    assert!(
        seen.contains(&("department", "material.download")),
        "{seen:?}"
    );
    let accept = events
        .iter()
        .find(|e| e.event.action == "case.accept")
        .expect("accept");
    assert_eq!(accept.event.detail["to"], "accepted");
    assert!(accept.event.actor_id.is_some());
    // no personal data in clear: not the applicant's name, ID number or phone
    let all = serde_json::to_string(&events).expect("json");
    let values = valid_values();
    for v in ["applicant_name", "applicant_id_number", "phone"] {
        let v = values[v].as_str().expect("value");
        assert!(!all.contains(v), "{v} in {all}");
    }
    // an operator's setting is recorded as well
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (status, body) = op
        .send(
            reqwest::Method::PUT,
            &format!("/api/ops/v1/departments/{HRSS}/delivery"),
            &json!({ "mode": "pull" }),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let set = state
        .store
        .audit_events(&format!("department:{HRSS}"))
        .await
        .expect("events");
    assert_eq!(
        set.last().map(|e| e.event.action.as_str()),
        Some("delivery.set")
    );
    assert_eq!(
        set.last().map(|e| e.event.actor_kind.as_str()),
        Some("operator")
    );
    let r = audit::verify(state.store.as_ref(), &state.audit)
        .await
        .expect("verify");
    assert!(r.is_intact(), "{r}");
}

async fn concurrent_appends_to_many_chains_verify_intact(b: Backend) {
    let (_res, app) = state(b).await;
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                // eight cases, four tasks each, and reads of four subjects
                act(&app, &format!("C{}", i % 8), 5).await;
                app.store
                    .append_data_access(&[read(&format!("idx-{}", i % 4))])
                    .await
                    .expect("read");
            })
        })
        .collect();
    let checkpointer = {
        let app = app.clone();
        tokio::spawn(async move {
            for _ in 0..5 {
                let _ = audit::checkpoint(app.store.as_ref(), &app.audit, chrono::Utc::now())
                    .await
                    .expect("checkpoint while appending");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };
    for t in tasks {
        t.await.expect("task");
    }
    checkpointer.await.expect("checkpointer");
    audit::checkpoint(app.store.as_ref(), &app.audit, chrono::Utc::now())
        .await
        .expect("checkpoint");
    match verify(&app).await {
        Report::Intact {
            records, chains, ..
        } => assert_eq!((records, chains), (32 * 5 + 32, 12)),
        r => panic!("{r}"),
    }
}

async fn legacy_records_verify_once_the_first_checkpoint_covers_them(b: Backend) {
    let (_res, app) = state(b).await;
    // a store without the audit key writes plain-hash records, as earlier versions did
    let old = onewindow::store::connect(&app.settings.database_url(), 2)
        .await
        .expect("store");
    old.append_data_access(&[read("idx-old"), read("idx-old")])
        .await
        .expect("legacy");
    let legacy = rows(&app, "access/idx-old").await;
    assert!(legacy.iter().all(|r| r.link == "sha256"));
    // the first checkpoint (at the first start after the migration) takes them in
    audit::checkpoint(app.store.as_ref(), &app.audit, chrono::Utc::now())
        .await
        .expect("checkpoint")
        .expect("first");
    app.store
        .append_data_access(&[read("idx-old")])
        .await
        .expect("keyed");
    let all = rows(&app, "access/idx-old").await;
    assert_eq!(all[2].link, "hmac");
    assert!(verify(&app).await.is_intact());
    // a plain-hash record after the first checkpoint is not legacy: it is a forgery
    old.append_data_access(&[read("idx-old")])
        .await
        .expect("unkeyed");
    assert_bad(&verify(&app).await, "access/idx-old", 4, "plain hash");
}
