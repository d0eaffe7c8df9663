//! Cases and everything written with a case change: history, materials, outbox,
//! notices, idempotency records, audit records, ratings.

use chrono::Duration;
use onewindow::auth::identity::AccountKind;
use onewindow::store::{
    CaseApplicant, CaseFilter, CaseRow, CaseSort, CaseWrite, IdemRecord, NewAccess, NewMaterial,
    StoreError, UploadRow, WriteOutcome,
};
use serde_json::json;
use uuid::Uuid;

use super::{
    DEPT, WANG_ID, at, at_micros, case, connect, create, date, event, notice, only, open,
    open_sealed, outbox,
};
use crate::backend_tests;
use crate::harness::Backend;

backend_tests!(
    a_case_round_trips_every_column_sealed,
    history_is_oldest_first_and_updates_check_the_version,
    idempotent_writes_replay_the_first_answer,
    a_taken_case_number_is_a_conflict_and_writes_nothing,
    case_lists_filter_count_and_page_newest_first,
    materials_attach_their_uploads_in_order,
    outbox_notices_and_reads_are_written_with_the_case,
    lodgings_reading_one_subject_at_once_all_land_in_one_chain,
    a_case_is_rated_once,
);

fn full_case() -> CaseRow {
    CaseRow {
        channel: "window".into(),
        intake_account: Some(Uuid::now_v7()),
        intake_hall: Some("hall-1".into()),
        applicant: CaseApplicant {
            account_id: None,
            kind: AccountKind::Enterprise,
            name: "呼伦贝尔某某有限公司".into(),
            id_number: Some(onewindow::domain::ids::ResidentId::parse(WANG_ID).expect("id")),
            uscc: Some("91150700MA0N000001".into()),
            phone: Some("13800000001".into()),
        },
        accepted_on: Some(date(2027, 1, 15)),
        due_on: Some(date(2027, 1, 29)),
        legal_due_on: Some(date(2027, 2, 26)),
        pauses: json!([{"from": "2027-01-18", "to": null}]),
        concluded_on: Some(date(2027, 1, 20)),
        result: Some("approved".into()),
        provenance: json!({"name": {"source": "enterprise", "as_of": "2027-01-01", "authoritative": true}}),
        fields_filled: 9,
        fields_prefilled: 4,
        status: "accepted".into(),
        ..case("A-0001", 0)
    }
}

async fn a_case_round_trips_every_column_sealed(b: Backend) {
    let Some((res, s)) = open_sealed(b).await else {
        return;
    };
    let c = full_case();
    create(&*s, &c, &[]).await;
    for got in [
        s.case_by_id(c.id).await.expect("by id").expect("present"),
        s.case_by_no(&c.case_no)
            .await
            .expect("by no")
            .expect("present"),
    ] {
        assert_eq!(got.id, c.id);
        assert_eq!(got.case_no, c.case_no);
        assert_eq!(got.query_code, "123456");
        assert_eq!(got.service_code, "A-0001");
        assert_eq!(got.service_version, "v1");
        assert_eq!(got.department, DEPT);
        assert_eq!(got.applicant.account_id, None);
        assert_eq!(got.applicant.kind, AccountKind::Enterprise);
        assert_eq!(got.applicant.name, c.applicant.name);
        assert_eq!(
            got.applicant.id_number.as_ref().map(|i| i.expose()),
            Some(WANG_ID)
        );
        assert_eq!(got.applicant.uscc, c.applicant.uscc);
        assert_eq!(got.applicant.phone.as_deref(), Some("13800000001"));
        assert_eq!(got.channel, "window");
        assert_eq!(got.intake_account, c.intake_account);
        assert_eq!(got.intake_hall.as_deref(), Some("hall-1"));
        assert_eq!(got.status, "accepted");
        assert_eq!(got.form, c.form);
        assert_eq!(got.accepted_on, c.accepted_on);
        assert_eq!(got.due_on, c.due_on);
        assert_eq!(got.legal_due_on, c.legal_due_on);
        assert_eq!(got.pauses, c.pauses);
        assert_eq!(got.parts, json!({}));
        assert_eq!(got.concluded_on, c.concluded_on);
        assert_eq!(got.result.as_deref(), Some("approved"));
        assert_eq!(
            (got.rating, got.rating_comment.as_deref(), got.rated_at),
            (None, None, None)
        );
        assert_eq!(got.provenance, c.provenance);
        assert_eq!((got.fields_filled, got.fields_prefilled), (9, 4));
        assert_eq!(got.version, 1);
        assert_eq!(got.created_at, at_micros(0, 1), "microseconds are kept");
        assert_eq!(got.updated_at, at_micros(0, 1));
    }
    assert!(s.case_by_id(Uuid::now_v7()).await.expect("by id").is_none());
    assert!(s.case_by_no("HLBE-none").await.expect("by no").is_none());

    // The ID number, phone and form are sealed at rest, bound to this case.
    let keyless = connect(&res).await;
    assert!(matches!(
        keyless.case_by_id(c.id).await,
        Err(StoreError::Corrupt(_))
    ));
    keyless.close().await;
    s.close().await;
}

async fn history_is_oldest_first_and_updates_check_the_version(b: Backend) {
    let Some((_res, s)) = open_sealed(b).await else {
        return;
    };
    let c = case("A-0001", 0);
    create(&*s, &c, &[]).await;

    let accepted = CaseRow {
        status: "accepted".into(),
        form: json!({"name": "王小明", "note": "补充"}),
        accepted_on: Some(date(2027, 1, 15)),
        parts: json!({DEPT: {"result": "approved", "on": "2027-01-16"}}),
        updated_at: at_micros(60, 999_999),
        ..c.clone()
    };
    let mut e = event(
        at_micros(60, 999_999),
        Some("accept"),
        Some("submitted"),
        "accepted",
    );
    e.actor = "clerk".into();
    e.actor_id = Some("token:abc".into());
    e.actor_name = "窗口 李四".into();
    e.note = Some("材料齐全".into());
    e.attachments = json!([{"upload": "u1", "name": "受理通知书.pdf"}]);
    assert!(matches!(
        s.update_case(&accepted, only(&e)).await.expect("update"),
        WriteOutcome::Done
    ));
    let got = s.case_by_id(c.id).await.expect("read").expect("present");
    assert_eq!(got.version, 2, "a write bumps the version");
    assert_eq!(got.status, "accepted");
    assert_eq!(got.form, accepted.form);
    assert_eq!(got.parts, accepted.parts);
    assert_eq!(got.updated_at, at_micros(60, 999_999));
    assert_eq!(got.created_at, c.created_at, "creation time stays");

    // A writer that read version 1 lost the race: nothing of its write lands.
    let stale = CaseRow {
        status: "rejected".into(),
        ..c.clone()
    };
    let late = event(at(120), Some("reject"), Some("submitted"), "rejected");
    assert!(matches!(
        s.update_case(&stale, only(&late)).await.expect("stale"),
        WriteOutcome::Conflict
    ));
    let got = s.case_by_id(c.id).await.expect("read").expect("present");
    assert_eq!((got.status.as_str(), got.version), ("accepted", 2));

    let history = s.case_events(c.id).await.expect("events");
    let seqs: Vec<i32> = history.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2], "oldest first, numbered by the store");
    assert_eq!(history[0].to_status, "submitted");
    let h = &history[1];
    assert_eq!(h.at, at_micros(60, 999_999));
    assert_eq!(h.actor, "clerk");
    assert_eq!(h.actor_id.as_deref(), Some("token:abc"));
    assert_eq!(h.actor_name, "窗口 李四");
    assert_eq!(h.action.as_deref(), Some("accept"));
    assert_eq!(h.from_status.as_deref(), Some("submitted"));
    assert_eq!(h.to_status, "accepted");
    assert_eq!(h.note.as_deref(), Some("材料齐全"));
    assert_eq!(h.attachments, e.attachments);
    assert!(
        s.case_events(Uuid::now_v7())
            .await
            .expect("none")
            .is_empty()
    );
    s.close().await;
}

fn idem(scope: &str, key: &str, body: &str) -> IdemRecord {
    IdemRecord {
        scope: scope.into(),
        key: key.into(),
        request_hash: format!("hash-of-{body}"),
        status: 201,
        response: json!({"answer": body}),
    }
}

async fn idempotent_writes_replay_the_first_answer(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let first = case("A-0001", 0);
    let e = event(first.created_at, Some("submit"), Some("draft"), "submitted");
    let key = idem("account-1", "key-1", "first");
    let w = CaseWrite {
        idem: Some(&key),
        ..only(&e)
    };
    assert!(matches!(
        s.create_case(&first, w).await.expect("create"),
        WriteOutcome::Done
    ));

    // The same key again (a double click): the first answer, and no second case.
    let second = case("A-0001", 1);
    let again = idem("account-1", "key-1", "second");
    match s
        .create_case(
            &second,
            CaseWrite {
                idem: Some(&again),
                ..only(&e)
            },
        )
        .await
        .expect("replay")
    {
        WriteOutcome::Replay(prior) => {
            assert_eq!(prior.request_hash, "hash-of-first");
            assert_eq!(prior.status, 201);
            assert_eq!(prior.response, json!({"answer": "first"}));
        }
        other => panic!("expected a replay, got {other:?}"),
    }
    assert!(s.case_by_id(second.id).await.expect("read").is_none());

    // An update under a used key changes nothing either.
    let changed = CaseRow {
        status: "withdrawn".into(),
        ..first.clone()
    };
    assert!(matches!(
        s.update_case(
            &changed,
            CaseWrite {
                idem: Some(&key),
                ..only(&e)
            }
        )
        .await
        .expect("update"),
        WriteOutcome::Replay(_)
    ));
    let got = s
        .case_by_id(first.id)
        .await
        .expect("read")
        .expect("present");
    assert_eq!((got.status.as_str(), got.version), ("submitted", 1));

    let stored = s
        .idempotent("account-1", "key-1")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(
        (stored.scope.as_str(), stored.key.as_str()),
        ("account-1", "key-1")
    );
    assert_eq!(stored.response, json!({"answer": "first"}));
    // Keys are scoped to their caller.
    assert!(
        s.idempotent("account-2", "key-1")
            .await
            .expect("read")
            .is_none()
    );
    let other_scope = idem("account-2", "key-1", "other");
    assert!(matches!(
        s.create_case(
            &second,
            CaseWrite {
                idem: Some(&other_scope),
                ..only(&e)
            }
        )
        .await
        .expect("create"),
        WriteOutcome::Done
    ));

    // Two identical requests racing: one writes, the other replays.
    let mut tasks = Vec::new();
    for i in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let c = case("A-0001", 10 + i);
            let e = event(c.created_at, Some("submit"), Some("draft"), "submitted");
            let key = idem("account-3", "raced", "same");
            let w = CaseWrite {
                idem: Some(&key),
                ..only(&e)
            };
            s.create_case(&c, w).await.expect("raced create")
        }));
    }
    let mut done = 0;
    for t in tasks {
        match t.await.expect("task") {
            WriteOutcome::Done => done += 1,
            WriteOutcome::Replay(r) => assert_eq!(r.request_hash, "hash-of-same"),
            WriteOutcome::Conflict => panic!("no case number was shared"),
        }
    }
    assert_eq!(done, 1, "exactly one of the racing requests writes");
    s.close().await;
}

async fn a_taken_case_number_is_a_conflict_and_writes_nothing(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let first = case("A-0001", 0);
    create(&*s, &first, &[]).await;
    let clash = CaseRow {
        case_no: first.case_no.clone(),
        ..case("A-0001", 1)
    };
    let e = event(clash.created_at, Some("submit"), Some("draft"), "submitted");
    let key = idem("account-1", "key-clash", "clash");
    let ob = [outbox(DEPT, "submitted")];
    let w = CaseWrite {
        idem: Some(&key),
        outbox: &ob,
        ..only(&e)
    };
    assert!(matches!(
        s.create_case(&clash, w).await.expect("clash"),
        WriteOutcome::Conflict
    ));
    assert!(s.case_by_id(clash.id).await.expect("read").is_none());
    assert!(
        s.idempotent("account-1", "key-clash")
            .await
            .expect("read")
            .is_none(),
        "the key is free for the retry with a new number"
    );
    assert!(s.case_outbox(clash.id).await.expect("outbox").is_empty());
    // The retry with a fresh number and the same key is written.
    let retry = case("A-0001", 1);
    let w = CaseWrite {
        idem: Some(&key),
        ..only(&e)
    };
    assert!(matches!(
        s.create_case(&retry, w).await.expect("retry"),
        WriteOutcome::Done
    ));
    s.close().await;
}

async fn case_lists_filter_count_and_page_newest_first(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let alice = Uuid::now_v7();
    let mk = |service: &str, secs: i64, dept: &str, status: &str, due: Option<(i32, u32, u32)>| {
        let mut c = case(service, secs);
        c.department = dept.into();
        c.status = status.into();
        c.due_on = due.map(|(y, m, d)| date(y, m, d));
        c
    };
    let mut cases = vec![
        mk("A-0001", 0, DEPT, "submitted", None),
        mk("A-0001", 10, DEPT, "accepted", Some((2027, 2, 1))),
        mk("B-0001", 20, "OTHER", "accepted", Some((2027, 3, 1))),
        mk("B-0001", 30, DEPT, "approved", Some((2027, 1, 20))),
        mk("A-0001", 40, "OTHER", "submitted", None),
    ];
    cases[1].applicant.account_id = Some(alice);
    cases[3].applicant.account_id = Some(alice);
    cases[4].channel = "window".into();
    cases[4].applicant.name = "Meng Shuhua 孟淑华".into();
    for c in &cases {
        create(&*s, c, &[]).await;
    }
    let nos = |list: &[CaseRow]| -> Vec<usize> {
        list.iter()
            .map(|r| cases.iter().position(|c| c.id == r.id).expect("known"))
            .collect()
    };
    let all = CaseFilter {
        limit: 100,
        ..CaseFilter::default()
    };
    let (list, total) = s.list_cases(&all).await.expect("list");
    assert_eq!(nos(&list), [4, 3, 2, 1, 0], "newest first");
    assert_eq!(total, 5);

    let page = CaseFilter {
        limit: 2,
        offset: 1,
        ..all.clone()
    };
    let (list, total) = s.list_cases(&page).await.expect("page");
    assert_eq!(nos(&list), [3, 2]);
    assert_eq!(total, 5, "the total counts every match, not the page");
    let beyond = CaseFilter {
        offset: 10,
        ..page.clone()
    };
    let (list, total) = s.list_cases(&beyond).await.expect("beyond");
    assert!(list.is_empty());
    assert_eq!(total, 5);

    let check = |f: CaseFilter, want: &[usize]| {
        let s = s.clone();
        let f = CaseFilter { limit: 100, ..f };
        let want = want.to_vec();
        async move {
            let (list, total) = s.list_cases(&f).await.expect("list");
            assert_eq!(nos(&list), want, "{f:?}");
            assert_eq!(total, want.len() as i64, "{f:?}");
        }
    };
    check(
        CaseFilter {
            applicant: Some(alice),
            ..Default::default()
        },
        &[3, 1],
    )
    .await;
    check(
        CaseFilter {
            departments: Some(vec!["OTHER".into()]),
            ..Default::default()
        },
        &[4, 2],
    )
    .await;
    check(
        CaseFilter {
            departments: Some(vec![]),
            ..Default::default()
        },
        &[],
    )
    .await;
    check(
        CaseFilter {
            statuses: vec!["accepted".into(), "approved".into()],
            ..Default::default()
        },
        &[3, 2, 1],
    )
    .await;
    check(
        CaseFilter {
            service: Some("B-0001".into()),
            ..Default::default()
        },
        &[3, 2],
    )
    .await;
    check(
        CaseFilter {
            due_by: Some(date(2027, 2, 1)),
            ..Default::default()
        },
        &[3, 1],
    )
    .await;
    // Changed since: compared as times, to the microsecond.
    check(
        CaseFilter {
            updated_since: Some(at_micros(30, 1)),
            ..Default::default()
        },
        &[4, 3],
    )
    .await;
    check(
        CaseFilter {
            updated_since: Some(at_micros(30, 2)),
            ..Default::default()
        },
        &[4],
    )
    .await;
    check(
        CaseFilter {
            applicant: Some(alice),
            departments: Some(vec![DEPT.into(), "OTHER".into()]),
            statuses: vec!["approved".into()],
            service: Some("B-0001".into()),
            ..Default::default()
        },
        &[3],
    )
    .await;
    // the worklist's filters: channel, text in the number or the name (any case, the
    // LIKE wildcards taken literally), a due range, and the orders
    check(
        CaseFilter {
            channel: Some("window".into()),
            ..Default::default()
        },
        &[4],
    )
    .await;
    for text in ["淑华", "meng", "SHUHUA"] {
        check(
            CaseFilter {
                text: Some(text.into()),
                ..Default::default()
            },
            &[4],
        )
        .await;
    }
    check(
        CaseFilter {
            text: Some(cases[1].case_no[9..].to_lowercase()),
            ..Default::default()
        },
        &[1],
    )
    .await;
    check(
        CaseFilter {
            text: Some("%".into()),
            ..Default::default()
        },
        &[],
    )
    .await;
    check(
        CaseFilter {
            due_from: Some(date(2027, 2, 1)),
            ..Default::default()
        },
        &[2, 1],
    )
    .await;
    check(
        CaseFilter {
            due_from: Some(date(2027, 1, 21)),
            due_by: Some(date(2027, 2, 28)),
            ..Default::default()
        },
        &[1],
    )
    .await;
    check(
        CaseFilter {
            sort: CaseSort::DueSoonest,
            ..Default::default()
        },
        &[3, 1, 2, 4, 0],
    )
    .await;
    check(
        CaseFilter {
            sort: CaseSort::Oldest,
            ..Default::default()
        },
        &[0, 1, 2, 3, 4],
    )
    .await;
    s.close().await;
}

fn upload(owner: Uuid, name: &str, secs: i64) -> UploadRow {
    UploadRow {
        id: Uuid::now_v7(),
        owner,
        file_name: name.into(),
        file_type: "pdf".into(),
        size: 4_200_000_000,
        sha256: "ab".repeat(32),
        storage_key: format!("key-{name}"),
        created_at: at_micros(secs, 7),
        case_id: None,
    }
}

async fn materials_attach_their_uploads_in_order(b: Backend) {
    let Some((_res, s)) = open_sealed(b).await else {
        return;
    };
    let c = case("A-0001", 0);
    let owner = c.applicant.account_id.expect("online");
    let id_card = upload(owner, "身份证.pdf", -60);
    let photo = upload(owner, "photo.pdf", -30);
    for u in [&id_card, &photo] {
        s.insert_upload(u).await.expect("upload");
    }
    let evidence = json!({"licence_no": "BZ-1", "issuer": "公安局"});
    let materials = [
        NewMaterial {
            material_id: "z_id_card".into(),
            upload_id: Some(id_card.id),
            substituted: false,
            source: None,
            evidence: None,
        },
        NewMaterial {
            material_id: "a_household".into(),
            upload_id: None,
            substituted: true,
            source: Some("licence.household".into()),
            evidence: Some(evidence.clone()),
        },
    ];
    create(&*s, &c, &materials).await;
    // A later step adds the photo.
    let next = CaseRow {
        status: "accepted".into(),
        ..c.clone()
    };
    let e = event(at(60), Some("supplement"), Some("submitted"), "accepted");
    let more = [NewMaterial {
        material_id: "b_photo".into(),
        upload_id: Some(photo.id),
        substituted: false,
        source: None,
        evidence: None,
    }];
    let w = CaseWrite {
        materials: &more,
        ..only(&e)
    };
    assert!(matches!(
        s.update_case(&next, w).await.expect("update"),
        WriteOutcome::Done
    ));

    let ms = s.case_materials(c.id).await.expect("materials");
    let ids: Vec<&str> = ms.iter().map(|m| m.material_id.as_str()).collect();
    assert_eq!(
        ids,
        ["z_id_card", "a_household", "b_photo"],
        "by the entry that added them, then as written"
    );
    assert_eq!(ms[0].upload_id, Some(id_card.id));
    assert_eq!(ms[0].file_name.as_deref(), Some("身份证.pdf"));
    assert_eq!(ms[0].file_type.as_deref(), Some("pdf"));
    assert_eq!(ms[0].size, Some(4_200_000_000));
    assert_eq!(ms[0].sha256, Some("ab".repeat(32)));
    assert!(!ms[0].substituted);
    assert_eq!(ms[0].added_seq, 1);
    assert!(ms[1].substituted);
    assert_eq!(ms[1].upload_id, None);
    assert_eq!(ms[1].file_name, None);
    assert_eq!(ms[1].source.as_deref(), Some("licence.household"));
    assert_eq!(ms[1].evidence, Some(evidence));
    assert_eq!(ms[2].added_seq, 2);

    // Attached uploads belong to the case and are never removed as stale.
    let got = s.upload(id_card.id).await.expect("read").expect("present");
    assert_eq!(got.case_id, Some(c.id));
    assert!(
        s.remove_stale_uploads(at(86_400))
            .await
            .expect("housekeeping")
            .is_empty()
    );
    s.close().await;
}

/// The 免提交 check's read of a subject's e-licence, made for a lodging.
fn licence_read(subject_index: &str, at: chrono::DateTime<chrono::Utc>) -> NewAccess {
    NewAccess {
        subject_index: subject_index.into(),
        subject_kind: "person".into(),
        at,
        resource: "elicence".into(),
        items: vec!["licence_no".into()],
        reader_kind: "system".into(),
        reader_id: None,
        reader_name: "免提交核验".into(),
        purpose: "substitute_check".into(),
        service_code: Some("A-0001".into()),
        case_no: None,
    }
}

async fn outbox_notices_and_reads_are_written_with_the_case(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let c = case("A-0001", 0);
    let e = event(c.created_at, Some("submit"), Some("draft"), "submitted");
    let first_out = [outbox(DEPT, "submitted"), outbox("OTHER", "submitted")];
    let n1 = notice(&c, "已提交", at_micros(0, 5));
    let reads = [licence_read(
        "idx-wang",
        at(0) + Duration::nanoseconds(1_234_567),
    )];
    let notices = [n1.clone()];
    let w = CaseWrite {
        outbox: &first_out,
        notices: &notices,
        access: &reads,
        ..only(&e)
    };
    assert!(matches!(
        s.create_case(&c, w).await.expect("create"),
        WriteOutcome::Done
    ));
    let next = CaseRow {
        status: "accepted".into(),
        ..c.clone()
    };
    let e2 = event(at(60), Some("accept"), Some("submitted"), "accepted");
    let second_out = [outbox(DEPT, "accepted")];
    let n2 = notice(&c, "已受理", at_micros(60, 5));
    let notices = [n2.clone()];
    let w = CaseWrite {
        outbox: &second_out,
        notices: &notices,
        ..only(&e2)
    };
    assert!(matches!(
        s.update_case(&next, w).await.expect("update"),
        WriteOutcome::Done
    ));

    let out = s.case_outbox(c.id).await.expect("outbox");
    let seqs: Vec<(i32, &str)> = out
        .iter()
        .map(|o| (o.case_seq, o.department.as_str()))
        .collect();
    let mut first_two = [(1, DEPT), (1, "OTHER")];
    first_two.sort_by_key(|(_, d)| {
        first_out
            .iter()
            .find(|o| o.department == *d)
            .expect("written")
            .id
    });
    assert_eq!(seqs[..2], first_two[..], "same entry: by event id");
    assert_eq!(
        seqs[2],
        (2, DEPT),
        "each event carries the entry that caused it"
    );
    assert_eq!(out[2].id, second_out[0].id);
    assert_eq!(out[2].event_type, "gov.onewindow.case.submitted");
    assert_eq!(out[2].payload, json!({"status": "accepted"}));

    let account = c.applicant.account_id.expect("online");
    let inbox = s.notifications(account, 10).await.expect("notices");
    let titles: Vec<&str> = inbox.iter().map(|n| n.title_en.as_str()).collect();
    assert_eq!(titles, ["已受理 (en)", "已提交 (en)"], "newest first");
    let got = &inbox[1];
    assert_eq!(got.id, n1.id);
    assert_eq!(
        (got.case_id, got.case_no.as_str()),
        (c.id, c.case_no.as_str())
    );
    assert_eq!(got.title_zh, "已提交（中）");
    assert_eq!(
        (got.body_zh.as_str(), got.body_en.as_str()),
        ("正文", "Body")
    );
    assert_eq!(got.created_at, at_micros(0, 5));
    assert_eq!(got.read_at, None);
    assert_eq!(s.notifications(account, 1).await.expect("limit").len(), 1);
    assert!(
        s.notifications(Uuid::now_v7(), 10)
            .await
            .expect("none")
            .is_empty()
    );
    // Both are queued for mail, in the transaction that wrote them.
    let queued: Vec<Uuid> = s
        .mail(Some("pending"), 10)
        .await
        .expect("mail queue")
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(queued, [n2.id, n1.id]);

    // The read made for the write is in the subject's chain, with the case number
    // and its time at the microseconds kept.
    let chain = s.data_access_chain("idx-wang").await.expect("chain");
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].access.case_no.as_deref(), Some(c.case_no.as_str()));
    assert_eq!(chain[0].access.at, at(0) + Duration::microseconds(1_234));
    assert_eq!(
        onewindow::store::shared::verify_chain(&chain),
        Ok(()),
        "the stored record hashes as written"
    );
    s.close().await;
}

/// Sixteen lodgings at once, each with a 免提交 read of the same person: every one is
/// written (on PostgreSQL each tries one statement; one that loses the race for the
/// chain head takes the transaction that queues on the chain's lock), and the person's
/// chain holds sixteen records, consecutive and linked.
async fn lodgings_reading_one_subject_at_once_all_land_in_one_chain(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let s = std::sync::Arc::new(s);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let c = case(&format!("A-{i:04}"), i);
                let e = event(c.created_at, Some("submit"), Some("draft"), "submitted");
                let reads = [licence_read("idx-same", at(i))];
                let w = CaseWrite {
                    access: &reads,
                    ..only(&e)
                };
                let outcome = s.create_case(&c, w).await.expect("create");
                assert!(matches!(outcome, WriteOutcome::Done), "{outcome:?}");
                c.case_no
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.expect("task"));
    }
    let chain = s.data_access_chain("idx-same").await.expect("chain");
    let seqs: Vec<i64> = chain.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=16).collect::<Vec<i64>>());
    assert_eq!(onewindow::store::shared::verify_chain(&chain), Ok(()));
    let mut recorded: Vec<String> = chain
        .iter()
        .filter_map(|r| r.access.case_no.clone())
        .collect();
    recorded.sort();
    numbers.sort();
    assert_eq!(recorded, numbers, "each read names its own case");
}

async fn a_case_is_rated_once(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let c = case("A-0001", 0);
    create(&*s, &c, &[]).await;
    assert!(
        s.rate_case(c.id, 5, Some("很满意"), at_micros(90, 11))
            .await
            .expect("rate")
    );
    assert!(
        !s.rate_case(c.id, 1, None, at(120)).await.expect("again"),
        "the first rating stays"
    );
    assert!(
        !s.rate_case(Uuid::now_v7(), 3, None, at(120))
            .await
            .expect("unknown")
    );
    let got = s.case_by_id(c.id).await.expect("read").expect("present");
    assert_eq!(got.rating, Some(5));
    assert_eq!(got.rating_comment.as_deref(), Some("很满意"));
    assert_eq!(got.rated_at, Some(at_micros(90, 11)));
    s.close().await;
}
