//! SQLite keeps the encodings existing database files hold (uuids as hyphenated text,
//! timestamps as fixed-width RFC 3339 text, JSON as text, booleans as 0/1), so a file
//! written by an earlier gateway opens without a data migration, and text order stays
//! time order.

use chrono::{DateTime, SecondsFormat, Utc};
use onewindow::store::{CaseFilter, CaseRow, DraftRow, NewMaterial};
use serde_json::json;
use sqlx::{Connection, Row, SqliteConnection};
use uuid::Uuid;

use super::{at, at_micros, case, create, date, open};
use crate::harness::Backend;

/// How the earlier SQLite store wrote a timestamp.
fn old_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

async fn raw(url: &str) -> SqliteConnection {
    SqliteConnection::connect(url)
        .await
        .expect("raw connection")
}

#[tokio::test]
async fn rows_written_by_the_earlier_sqlite_store_read_back() {
    let (res, s) = open(Backend::SqliteMemory).await.expect("sqlite");
    let url = res.settings().database_url();
    let mut conn = raw(&url).await;
    let (case_id, account, upload_id, draft_id) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let created = at_micros(0, 120_000);
    // Exactly as the earlier store bound them: `?`, text ids and times, JSON text, 0/1.
    sqlx::query(
        "INSERT INTO cases (id, case_no, query_code, service_code, service_version, department, \
         applicant_account, applicant_kind, applicant_name, applicant_id_number, applicant_uscc, applicant_phone, \
         channel, intake_account, intake_hall, status, form, accepted_on, due_on, legal_due_on, pauses, \
         concluded_on, result, version, created_at, updated_at, provenance, fields_filled, fields_prefilled) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
    )
    .bind(case_id.to_string())
    .bind("HLBE20270115-old")
    .bind("654321")
    .bind("A-0001")
    .bind("v1")
    .bind(super::DEPT)
    .bind(account.to_string())
    .bind("person")
    .bind("王小明")
    .bind(super::WANG_ID)
    .bind(None::<String>)
    .bind("13800000001")
    .bind("online")
    .bind(None::<String>)
    .bind(None::<String>)
    .bind("accepted")
    .bind(json!({"name": "王小明"}).to_string())
    .bind(date(2027, 1, 15).to_string())
    .bind(date(2027, 1, 29).to_string())
    .bind(None::<String>)
    .bind(json!([{"from": "2027-01-18", "to": null}]).to_string())
    .bind(None::<String>)
    .bind(None::<String>)
    .bind(old_time(created))
    .bind(old_time(created))
    .bind(json!({}).to_string())
    .bind(3_i64)
    .bind(1_i64)
    .execute(&mut conn)
    .await
    .expect("old case row");
    sqlx::query(
        "INSERT INTO uploads (id, owner, file_name, file_type, size, sha256, storage_key, created_at, case_id) \
         VALUES (?, ?, 'a.pdf', 'pdf', 10, 'ff', 'k', ?, ?)",
    )
    .bind(upload_id.to_string())
    .bind(account.to_string())
    .bind(old_time(created))
    .bind(case_id.to_string())
    .execute(&mut conn)
    .await
    .expect("old upload row");
    sqlx::query(
        "INSERT INTO case_materials (case_id, material_id, upload_id, substituted, source, evidence, added_seq) \
         VALUES (?, 'id_card', ?, 0, NULL, NULL, 1), (?, 'household', NULL, 1, 'licence', ?, 1)",
    )
    .bind(case_id.to_string())
    .bind(upload_id.to_string())
    .bind(case_id.to_string())
    .bind(json!({"licence_no": "L-1"}).to_string())
    .execute(&mut conn)
    .await
    .expect("old material rows");
    sqlx::query(
        "INSERT INTO drafts (id, account_id, service_code, form, created_at, updated_at, expires_at) \
         VALUES (?, ?, 'A-0001', ?, ?, ?, ?)",
    )
    .bind(draft_id.to_string())
    .bind(account.to_string())
    .bind(json!({"x": 1}).to_string())
    .bind(old_time(created))
    .bind(old_time(at(60)))
    .bind(old_time(at(86_400)))
    .execute(&mut conn)
    .await
    .expect("old draft row");
    conn.close().await.expect("close");

    let c = s
        .case_by_no("HLBE20270115-old")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(c.id, case_id);
    assert_eq!(c.applicant.account_id, Some(account));
    assert_eq!(
        c.applicant.id_number.as_ref().map(|i| i.expose()),
        Some(super::WANG_ID),
        "a value written before sealing reads as it is"
    );
    assert_eq!(c.form, json!({"name": "王小明"}));
    assert_eq!(c.accepted_on, Some(date(2027, 1, 15)));
    assert_eq!(c.pauses, json!([{"from": "2027-01-18", "to": null}]));
    assert_eq!((c.fields_filled, c.fields_prefilled), (3, 1));
    assert_eq!(c.created_at, created);
    let ms = s.case_materials(case_id).await.expect("materials");
    assert_eq!(ms.len(), 2);
    assert_eq!(ms[0].upload_id, Some(upload_id));
    assert!(!ms[0].substituted);
    assert_eq!(ms[0].file_name.as_deref(), Some("a.pdf"));
    assert!(ms[1].substituted);
    assert_eq!(ms[1].evidence, Some(json!({"licence_no": "L-1"})));
    let d = s
        .draft(draft_id, account)
        .await
        .expect("read")
        .expect("present");
    assert_eq!(d.updated_at, at(60));
    assert_eq!(d.form, json!({"x": 1}));

    // Old and new rows filter and sort together: the new store writes the same text.
    let newer = case("A-0001", 1);
    create(&*s, &newer, &[]).await;
    let (list, total) = s
        .list_cases(&CaseFilter {
            updated_since: Some(created),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(total, 2);
    assert_eq!(
        list.iter().map(|c| c.id).collect::<Vec<_>>(),
        [newer.id, case_id]
    );
    s.close().await;
}

#[tokio::test]
async fn the_sqlite_store_writes_fixed_width_text() {
    let (res, s) = open(Backend::SqliteMemory).await.expect("sqlite");
    // A whole second, and times whose shortest forms would not sort as times.
    let whole = CaseRow {
        created_at: at(0),
        updated_at: at(0),
        accepted_on: Some(date(2027, 1, 5)),
        ..case("A-0001", 0)
    };
    let tenth = CaseRow {
        created_at: at_micros(0, 100_000),
        updated_at: at_micros(0, 100_000),
        ..case("A-0001", 0)
    };
    let ninetieth = CaseRow {
        created_at: at_micros(0, 90_000),
        updated_at: at_micros(0, 90_000),
        ..case("A-0001", 0)
    };
    let m = [NewMaterial {
        material_id: "household".into(),
        upload_id: None,
        substituted: true,
        source: None,
        evidence: None,
    }];
    create(&*s, &whole, &m).await;
    create(&*s, &tenth, &[]).await;
    create(&*s, &ninetieth, &[]).await;
    let draft = DraftRow {
        id: Uuid::now_v7(),
        account_id: Uuid::now_v7(),
        service_code: "A-0001".into(),
        form: json!({"a": [1, 2]}),
        created_at: at(0),
        updated_at: at(0),
        expires_at: at(1),
    };
    s.save_draft(&draft).await.expect("draft");

    let mut conn = raw(&res.settings().database_url()).await;
    let r = sqlx::query(
        "SELECT typeof(id) AS id_type, id, typeof(created_at) AS t_type, created_at, accepted_on, \
         typeof(form) AS form_type FROM cases WHERE case_no = ?",
    )
    .bind(&whole.case_no)
    .fetch_one(&mut conn)
    .await
    .expect("raw case");
    assert_eq!(r.get::<String, _>("id_type"), "text");
    assert_eq!(r.get::<String, _>("id"), whole.id.hyphenated().to_string());
    assert_eq!(r.get::<String, _>("t_type"), "text");
    assert_eq!(
        r.get::<String, _>("created_at"),
        "2027-01-15T08:00:00.000000Z",
        "six fraction digits even when they are zero"
    );
    assert_eq!(r.get::<String, _>("accepted_on"), "2027-01-05");
    assert_eq!(r.get::<String, _>("form_type"), "text");
    let order: Vec<String> = sqlx::query("SELECT created_at FROM cases ORDER BY created_at")
        .fetch_all(&mut conn)
        .await
        .expect("raw order")
        .iter()
        .map(|r| r.get("created_at"))
        .collect();
    assert_eq!(
        order,
        [
            "2027-01-15T08:00:00.000000Z",
            "2027-01-15T08:00:00.090000Z",
            "2027-01-15T08:00:00.100000Z"
        ],
        "text order is time order"
    );
    let substituted: i64 = sqlx::query("SELECT substituted FROM case_materials")
        .fetch_one(&mut conn)
        .await
        .expect("raw material")
        .get("substituted");
    assert_eq!(substituted, 1);
    let form: String = sqlx::query("SELECT form FROM drafts WHERE id = ?")
        .bind(draft.id.to_string())
        .fetch_one(&mut conn)
        .await
        .expect("raw draft")
        .get("form");
    assert_eq!(form, r#"{"a":[1,2]}"#);
    conn.close().await.expect("close");
    s.close().await;
}
