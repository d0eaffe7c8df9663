//! The store's contract, one module per capability, each test run against SQLite and
//! PostgreSQL alike (`backend_tests!`): what a user of the store would notice, through
//! the traits only. `sqlite_files` checks that SQLite keeps the encodings existing
//! database files hold.

mod accounts;
mod cases;
mod catalogue;
mod drafts;
mod exchange;
mod mail;
mod secrets;
mod shared;
mod sqlite_files;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use onewindow::auth::identity::AccountKind;
use onewindow::domain::ids::ResidentId;
use onewindow::sharing::seal::Sealer;
use onewindow::store::{
    self, CaseApplicant, CaseRow, CaseWrite, EventRow, NewMaterial, NoticeRow, OutboxRow, Store,
    WriteOutcome,
};
use serde_json::json;
use uuid::Uuid;

use crate::harness::{Backend, Resources};

/// A migrated store on fresh resources, or `None` when the backend is not configured.
pub async fn open(b: Backend) -> Option<(Resources, Arc<dyn Store>)> {
    let res = Resources::new(b).await;
    let s = connect(&res).await;
    s.migrate().await.expect("migrate");
    Some((res, s))
}

/// Another store on the same database (a second instance), not yet sealing; its keys
/// wrapped by the test key-encryption key, as the application sets it up.
pub async fn connect(res: &Resources) -> Arc<dyn Store> {
    let s = store::connect(&res.settings().database_url(), 4)
        .await
        .expect("connect");
    s.set_kek(test_kek());
    s
}

/// The test gateways' key-encryption key.
pub fn test_kek() -> Arc<onewindow::kek::Kek> {
    let key = onewindow::sharing::seal::parse_key(crate::harness::TEST_KEK).expect("test kek");
    Arc::new(onewindow::kek::Kek::new(&key))
}

/// A migrated store that seals personal data, as the application sets it up.
pub async fn open_sealed(b: Backend) -> Option<(Resources, Arc<dyn Store>)> {
    let (res, s) = open(b).await?;
    s.set_sealer(sealer());
    Some((res, s))
}

pub fn sealer() -> Arc<Sealer> {
    Arc::new(Sealer::new(b"index key", &[7; 32]))
}

/// A fixed instant, `secs` after 2027-01-15T08:00:00Z.
pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0)
        .single()
        .expect("time")
}

/// An instant with a microsecond part, which every timestamp column must keep.
pub fn at_micros(secs: i64, micros: i64) -> DateTime<Utc> {
    at(secs) + Duration::microseconds(micros)
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

pub const DEPT: &str = "11150700MB1234567X";
pub const WANG_ID: &str = "150702198506123025";

/// A submitted online case of `service`, created `secs` after [`at`]'s origin.
pub fn case(service: &str, secs: i64) -> CaseRow {
    let id = Uuid::now_v7();
    CaseRow {
        id,
        case_no: format!("HLBE20270115-{}", &id.simple().to_string()[24..]),
        query_code: "123456".into(),
        service_code: service.into(),
        service_version: "v1".into(),
        department: DEPT.into(),
        applicant: CaseApplicant {
            account_id: Some(Uuid::now_v7()),
            kind: AccountKind::Person,
            name: "王小明".into(),
            id_number: Some(ResidentId::parse(WANG_ID).expect("id")),
            uscc: None,
            phone: Some("13800000001".into()),
        },
        channel: "online".into(),
        intake_account: None,
        intake_hall: None,
        status: "submitted".into(),
        form: json!({"name": "王小明", "rooms": [{"area": 12.5}]}),
        accepted_on: None,
        due_on: None,
        legal_due_on: None,
        due_provisional: false,
        pauses: json!([]),
        parts: json!({}),
        concluded_on: None,
        result: None,
        rating: None,
        rating_comment: None,
        rated_at: None,
        provenance: json!({}),
        fields_filled: 0,
        fields_prefilled: 0,
        version: 1,
        created_at: at_micros(secs, 1),
        updated_at: at_micros(secs, 1),
    }
}

/// A history entry from `from` to `to`.
pub fn event(at: DateTime<Utc>, action: Option<&str>, from: Option<&str>, to: &str) -> EventRow {
    EventRow {
        seq: 0,
        at,
        actor: "applicant".into(),
        actor_id: None,
        actor_name: "王小明".into(),
        action: action.map(str::to_owned),
        from_status: from.map(str::to_owned),
        to_status: to.into(),
        note: None,
        attachments: json!([]),
    }
}

/// A write with this history entry and nothing else.
pub fn only(e: &EventRow) -> CaseWrite<'_> {
    CaseWrite {
        event: e,
        materials: &[],
        outbox: &[],
        notices: &[],
        idem: None,
        access: &[],
    }
}

/// An outbox event of `case` for `department`.
pub fn outbox(department: &str, status: &str) -> OutboxRow {
    OutboxRow {
        id: Uuid::now_v7(),
        case_seq: 0,
        department: department.into(),
        event_type: "gov.onewindow.case.submitted".into(),
        payload: json!({"status": status}),
    }
}

/// A notice about `c` to its applicant.
pub fn notice(c: &CaseRow, title: &str, at: DateTime<Utc>) -> NoticeRow {
    NoticeRow {
        id: Uuid::now_v7(),
        account_id: c.applicant.account_id.expect("online case"),
        case_id: c.id,
        case_no: c.case_no.clone(),
        title_zh: format!("{title}（中）"),
        title_en: format!("{title} (en)"),
        body_zh: "正文".into(),
        body_en: "Body".into(),
        created_at: at,
        read_at: None,
    }
}

/// Creates `c` with a submission entry and these materials; it must be written.
pub async fn create(s: &dyn Store, c: &CaseRow, materials: &[NewMaterial]) {
    let e = event(c.created_at, Some("submit"), Some("draft"), "submitted");
    let w = CaseWrite {
        materials,
        ..only(&e)
    };
    assert!(matches!(
        s.create_case(c, w).await.expect("create case"),
        WriteOutcome::Done
    ));
}

/// Four instances claim at the same time, each in rounds until a round gets nothing
/// (`claim` answers one round's ids); asserts no id was claimed twice and answers them
/// all.
pub async fn claim_concurrently<F, Fut>(res: &Resources, claim: F) -> HashSet<Uuid>
where
    F: Fn(Arc<dyn Store>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Vec<Uuid>> + Send,
{
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let instance = connect(res).await;
        let claim = claim.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let round = claim(instance.clone()).await;
                if round.is_empty() {
                    return mine;
                }
                mine.extend(round);
            }
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.expect("instance"));
    }
    let distinct: HashSet<Uuid> = claimed.iter().copied().collect();
    assert_eq!(distinct.len(), claimed.len(), "nothing was claimed twice");
    distinct
}
