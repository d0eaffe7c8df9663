//! Shared data: the base library, audit chains, consents, sharing figures and the
//! case columns that record what shared data did.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use onewindow::store::shared::verify_chain;
use onewindow::store::{
    BaseRecord, CaseRow, ConsentRow, NewAccess, NewMaterial, SharingFigures, UpsertCounts,
};
use serde_json::json;
use uuid::Uuid;

use super::{at, create, open};
use crate::backend_tests;
use crate::harness::Backend;

backend_tests!(
    base_records_upsert_counts_and_leaves_unchanged_rows_alone,
    concurrent_appends_to_one_subject_form_one_intact_chain,
    data_access_lists_several_subjects_newest_first,
    consents_answer_the_newest,
    a_batch_larger_than_a_statement_is_classified_in_order,
    sharing_figures_sum_over_cases_and_materials,
    case_provenance_and_material_evidence_round_trip,
);

fn base(resource: &str, subject: &str, record: &str, data: serde_json::Value) -> BaseRecord {
    BaseRecord {
        resource: resource.into(),
        subject: subject.into(),
        record: record.into(),
        data,
        updated_at: at(0),
    }
}

async fn base_records_upsert_counts_and_leaves_unchanged_rows_alone(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let (a, bb) = ("110101199003071234", "110101198001010011");
    assert_eq!(
        s.upsert_base_records(&[]).await.expect("empty"),
        UpsertCounts::default()
    );
    let first = [
        base(
            "person",
            a,
            "",
            json!({"name": "王小明", "phone": "13800000000"}),
        ),
        base(
            "person",
            bb,
            "",
            json!({"name": "李四", "phone": "13900000000"}),
        ),
        base(
            "driving_licence",
            a,
            "L1",
            json!({"class": "C1", "no": "L1"}),
        ),
        base(
            "driving_licence",
            a,
            "L2",
            json!({"class": "D", "no": "L2"}),
        ),
    ];
    assert_eq!(
        s.upsert_base_records(&first).await.expect("first import"),
        UpsertCounts {
            added: 4,
            updated: 0,
            unchanged: 0
        }
    );
    let stored_a = s.base_records("person", a).await.expect("read");
    assert_eq!(stored_a.len(), 1);
    assert_eq!(stored_a[0].updated_at, at(0));

    // The same file again, a day later: nothing is written.
    let again: Vec<BaseRecord> = first
        .iter()
        .map(|r| BaseRecord {
            updated_at: at(86_400),
            ..r.clone()
        })
        .collect();
    assert_eq!(
        s.upsert_base_records(&again).await.expect("re-import"),
        UpsertCounts {
            added: 0,
            updated: 0,
            unchanged: 4
        }
    );
    assert_eq!(
        s.base_records("person", a).await.expect("read")[0].updated_at,
        at(0),
        "an unchanged record keeps its updated_at"
    );

    // Keys in another order are the same data; a changed phone is an update; a new
    // licence is an addition.
    let second = [
        BaseRecord {
            updated_at: at(172_800),
            ..base(
                "person",
                a,
                "",
                serde_json::from_str(r#"{"phone": "13800000000", "name": "王小明"}"#)
                    .expect("json"),
            )
        },
        BaseRecord {
            updated_at: at(172_800),
            ..base(
                "person",
                bb,
                "",
                json!({"name": "李四", "phone": "13700000000"}),
            )
        },
        BaseRecord {
            updated_at: at(172_800),
            ..base(
                "driving_licence",
                a,
                "L3",
                json!({"class": "E", "no": "L3"}),
            )
        },
    ];
    assert_eq!(
        s.upsert_base_records(&second).await.expect("second import"),
        UpsertCounts {
            added: 1,
            updated: 1,
            unchanged: 1
        }
    );
    let a_now = s.base_records("person", a).await.expect("read");
    assert_eq!(a_now[0].updated_at, at(0));
    let b_now = s.base_records("person", bb).await.expect("read");
    assert_eq!(b_now.len(), 1);
    assert_eq!(b_now[0].updated_at, at(172_800));
    assert_eq!(
        b_now[0].data,
        json!({"name": "李四", "phone": "13700000000"})
    );

    // A licence library keeps one record per licence.
    let licences = s.base_records("driving_licence", a).await.expect("read");
    let ids: Vec<&str> = licences.iter().map(|r| r.record.as_str()).collect();
    assert_eq!(ids, ["L1", "L2", "L3"]);
    assert_eq!(licences[1].data, json!({"class": "D", "no": "L2"}));
    assert_eq!(licences[1].subject, a);
    assert_eq!(licences[1].resource, "driving_licence");
    assert!(
        s.base_records("driving_licence", bb)
            .await
            .expect("read")
            .is_empty()
    );

    assert_eq!(s.count_base_records("person").await.expect("count"), 2);
    assert_eq!(
        s.count_base_records("driving_licence")
            .await
            .expect("count"),
        3
    );
    assert_eq!(s.count_base_records("nothing").await.expect("count"), 0);

    // A record named twice in one batch: added, then updated; the last data stays.
    let c = "110101197001010022";
    let twice = [
        base("person", c, "", json!({"name": "张三"})),
        base("person", c, "", json!({"name": "张叁"})),
        base("person", c, "", json!({"name": "张叁"})),
    ];
    assert_eq!(
        s.upsert_base_records(&twice).await.expect("twice"),
        UpsertCounts {
            added: 1,
            updated: 1,
            unchanged: 1
        }
    );
    assert_eq!(
        s.base_records("person", c).await.expect("read")[0].data,
        json!({"name": "张叁"})
    );
    s.close().await;
}

fn read(subject_index: &str, at: DateTime<Utc>, purpose: &str) -> NewAccess {
    NewAccess {
        subject_index: subject_index.into(),
        subject_kind: "person".into(),
        at,
        resource: "person".into(),
        items: vec!["name".into(), "phone".into()],
        reader_kind: "applicant".into(),
        reader_id: Some(Uuid::now_v7().to_string()),
        reader_name: "王小明".into(),
        purpose: purpose.into(),
        service_code: Some("HLBE-0001".into()),
        case_no: None,
    }
}

async fn concurrent_appends_to_one_subject_form_one_intact_chain(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let subject = "idx-concurrent";
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                // Utc::now() carries nanoseconds: the store keeps microseconds, and the
                // chain must still verify after the round trip.
                let mut r = read(subject, Utc::now(), &format!("表单预填 {i}"));
                if i % 2 == 0 {
                    r.case_no = Some(format!("HLBE20260302-{i:08}"));
                    r.reader_id = None;
                }
                let other = read("idx-other", Utc::now(), "窗口受理核验");
                s.append_data_access(&[r, other]).await.expect("append");
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let chain = s.data_access_chain(subject).await.expect("chain");
    let seqs: Vec<i64> = chain.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    assert_eq!(verify_chain(&chain), Ok(()));
    assert!(chain.iter().all(|r| r.access.subject_index == subject));
    let mut purposes: Vec<String> = chain.iter().map(|r| r.access.purpose.clone()).collect();
    purposes.sort();
    purposes.dedup();
    assert_eq!(purposes.len(), 20, "every read is recorded once");
    assert_eq!(chain[0].prev_hash, onewindow::store::shared::CHAIN_START);

    let other = s.data_access_chain("idx-other").await.expect("chain");
    assert_eq!(other.len(), 20);
    assert_eq!(verify_chain(&other), Ok(()));

    // A record altered after the fact no longer verifies.
    let mut tampered = chain.clone();
    tampered[4].access.items.push("id_number".into());
    assert_eq!(verify_chain(&tampered), Err(5));

    assert!(
        s.data_access_chain("idx-none")
            .await
            .expect("chain")
            .is_empty()
    );
    s.close().await;
}

async fn data_access_lists_several_subjects_newest_first(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    // Sub-microsecond parts are dropped consistently.
    let t0 = at(0) + Duration::nanoseconds(123_456_789);
    let reads = [
        read("idx-a", t0, "a1"),
        read("idx-b", t0 + Duration::seconds(1), "b1"),
        read("idx-c", t0 + Duration::seconds(2), "c1"),
        read("idx-a", t0 + Duration::seconds(3), "a2"),
        read("idx-b", t0 + Duration::seconds(4), "b2"),
    ];
    s.append_data_access(&reads).await.expect("append");
    // Same time as the last record of idx-a: the later seq comes first.
    s.append_data_access(&[read("idx-a", t0 + Duration::seconds(3), "a3")])
        .await
        .expect("append");

    let both = s
        .data_access(&["idx-a".into(), "idx-b".into()], 100)
        .await
        .expect("list");
    let purposes: Vec<&str> = both.iter().map(|r| r.access.purpose.as_str()).collect();
    assert_eq!(purposes, ["b2", "a3", "a2", "b1", "a1"]);
    assert_eq!(both[4].access.at, at(0) + Duration::microseconds(123_456));
    assert_eq!(both[4].seq, 1);
    assert_eq!(both[1].seq, 3);
    assert_eq!(both[0].access.items, ["name", "phone"]);
    assert_eq!(both[0].access.service_code.as_deref(), Some("HLBE-0001"));

    let limited = s
        .data_access(&["idx-a".into(), "idx-b".into(), "idx-c".into()], 2)
        .await
        .expect("list");
    let purposes: Vec<&str> = limited.iter().map(|r| r.access.purpose.as_str()).collect();
    assert_eq!(purposes, ["b2", "a3"]);

    let one = s.data_access(&["idx-c".into()], 10).await.expect("list");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].access.purpose, "c1");
    assert!(s.data_access(&[], 10).await.expect("list").is_empty());
    assert!(
        s.data_access(&["idx-none".into()], 10)
            .await
            .expect("list")
            .is_empty()
    );
    for idx in ["idx-a", "idx-b", "idx-c"] {
        let chain = s.data_access_chain(idx).await.expect("chain");
        assert_eq!(verify_chain(&chain), Ok(()), "{idx}");
    }
    s.close().await;
}

async fn consents_answer_the_newest(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let account = Uuid::now_v7();
    let consent = |service: &str, resources: &[&str], secs: i64| ConsentRow {
        id: Uuid::now_v7(),
        account,
        service_code: service.into(),
        resources: resources.iter().map(|r| (*r).to_owned()).collect(),
        given_at: at(secs),
    };
    assert!(
        s.latest_consent(account, "S1")
            .await
            .expect("none")
            .is_none()
    );
    s.insert_consent(&consent("S1", &["person", "household"], 0))
        .await
        .expect("insert");
    s.insert_consent(&consent("S1", &["person"], 60))
        .await
        .expect("insert");
    s.insert_consent(&consent("S2", &["enterprise"], 120))
        .await
        .expect("insert");
    let latest = s
        .latest_consent(account, "S1")
        .await
        .expect("latest")
        .expect("present");
    assert_eq!(latest.resources, ["person"]);
    assert_eq!(latest.given_at, at(60));
    assert_eq!(latest.account, account);
    assert_eq!(latest.service_code, "S1");
    assert!(
        s.latest_consent(Uuid::now_v7(), "S1")
            .await
            .expect("other account")
            .is_none()
    );
    // Given in the same microsecond: the later consent (by its time-ordered id) counts.
    let earlier = consent("S3", &["person"], 180);
    let later = consent("S3", &["household"], 180);
    s.insert_consent(&later).await.expect("insert");
    s.insert_consent(&earlier).await.expect("insert");
    let latest = s
        .latest_consent(account, "S3")
        .await
        .expect("latest")
        .expect("present");
    assert_eq!(latest.id, later.id);
    s.close().await;
}

/// A case of `service` with these field counts.
fn case(service: &str, filled: i32, prefilled: i32) -> CaseRow {
    CaseRow {
        fields_filled: filled,
        fields_prefilled: prefilled,
        ..super::case(service, 0)
    }
}

fn material(id: &str, substituted: bool) -> NewMaterial {
    NewMaterial {
        material_id: id.into(),
        upload_id: None,
        substituted,
        source: substituted.then(|| "household.register".to_owned()),
        evidence: substituted.then(|| json!({"licence_no": format!("{id}-0001")})),
    }
}

async fn sharing_figures_sum_over_cases_and_materials(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    assert!(s.sharing_figures().await.expect("figures").is_empty());
    create(
        &*s,
        &case("B-0001", 10, 4),
        &[
            material("m1", true),
            material("m2", false),
            material("m3", true),
        ],
    )
    .await;
    create(&*s, &case("B-0001", 6, 0), &[]).await;
    create(&*s, &case("A-0001", 3, 3), &[material("m1", true)]).await;
    create(
        &*s,
        &case("C-0001", 5, 1),
        &[material("m1", false), material("m2", false)],
    )
    .await;
    assert_eq!(
        s.sharing_figures().await.expect("figures"),
        [
            SharingFigures {
                service_code: "A-0001".into(),
                cases: 1,
                fields_filled: 3,
                fields_prefilled: 3,
                materials: 1,
                materials_substituted: 1,
            },
            SharingFigures {
                service_code: "B-0001".into(),
                cases: 2,
                fields_filled: 16,
                fields_prefilled: 4,
                materials: 3,
                materials_substituted: 2,
            },
            SharingFigures {
                service_code: "C-0001".into(),
                cases: 1,
                fields_filled: 5,
                fields_prefilled: 1,
                materials: 2,
                materials_substituted: 0,
            },
        ]
    );
    s.close().await;
}

async fn case_provenance_and_material_evidence_round_trip(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let provenance = json!({
        "name": {"source": "person", "as_of": "2026-03-01", "authoritative": true},
        "address": {"source": "household", "as_of": "2025-12-31", "authoritative": false},
    });
    let c = CaseRow {
        provenance: provenance.clone(),
        ..case("A-0001", 7, 2)
    };
    let evidence = json!({
        "licence_no": "BZ-2026-000123",
        "issuer": "呼伦贝尔市公安局",
        "valid_until": "2030-01-01",
    });
    let materials = [
        NewMaterial {
            material_id: "household_register".into(),
            upload_id: None,
            substituted: true,
            source: Some("licence.household".into()),
            evidence: Some(evidence.clone()),
        },
        material("photo", false),
    ];
    create(&*s, &c, &materials).await;

    let got = s
        .case_by_no(&c.case_no)
        .await
        .expect("case")
        .expect("present");
    assert_eq!(got.provenance, provenance);
    assert_eq!(got.fields_filled, 7);
    assert_eq!(got.fields_prefilled, 2);
    let by_id = s.case_by_id(c.id).await.expect("case").expect("present");
    assert_eq!(by_id.provenance, provenance);

    let ms = s.case_materials(c.id).await.expect("materials");
    assert_eq!(ms.len(), 2);
    assert_eq!(ms[0].material_id, "household_register");
    assert!(ms[0].substituted);
    assert_eq!(ms[0].source.as_deref(), Some("licence.household"));
    assert_eq!(ms[0].evidence, Some(evidence));
    assert_eq!(ms[1].material_id, "photo");
    assert!(!ms[1].substituted);
    assert_eq!(ms[1].evidence, None);

    // A case without shared data reads back empty provenance and zero counts.
    let plain = case("A-0001", 0, 0);
    create(&*s, &plain, &[]).await;
    let got = s
        .case_by_id(plain.id)
        .await
        .expect("case")
        .expect("present");
    assert_eq!(got.provenance, json!({}));
    assert_eq!((got.fields_filled, got.fields_prefilled), (0, 0));
    s.close().await;
}

async fn a_batch_larger_than_a_statement_is_classified_in_order(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let subject = |i: usize| format!("1101011990{i:08}");
    let batch: Vec<BaseRecord> = (0..2_500)
        .map(|i| base("person", &subject(i), "", json!({"n": i})))
        .collect();
    assert_eq!(
        s.upsert_base_records(&batch).await.expect("import"),
        UpsertCounts {
            added: 2_500,
            updated: 0,
            unchanged: 0
        }
    );
    // Again, with every tenth record changed and the last repeated with new data.
    let mut again: Vec<BaseRecord> = batch
        .iter()
        .enumerate()
        .map(|(i, r)| BaseRecord {
            data: if i % 10 == 0 {
                json!({"n": i, "v": 2})
            } else {
                r.data.clone()
            },
            updated_at: at(60),
            ..r.clone()
        })
        .collect();
    again.push(base(
        "person",
        &subject(2_499),
        "",
        json!({"n": 2_499, "v": 3}),
    ));
    assert_eq!(
        s.upsert_base_records(&again).await.expect("re-import"),
        UpsertCounts {
            added: 0,
            updated: 251,
            unchanged: 2_250
        }
    );
    assert_eq!(s.count_base_records("person").await.expect("count"), 2_500);
    let changed = s
        .base_records("person", &subject(1_230))
        .await
        .expect("read");
    assert_eq!(changed[0].data, json!({"n": 1_230, "v": 2}));
    assert_eq!(changed[0].updated_at, at(60));
    let kept = s
        .base_records("person", &subject(1_231))
        .await
        .expect("read");
    assert_eq!(kept[0].updated_at, at(0), "unchanged data is not written");
    let last = s
        .base_records("person", &subject(2_499))
        .await
        .expect("read");
    assert_eq!(
        last[0].data,
        json!({"n": 2_499, "v": 3}),
        "the last of a repeated record wins"
    );
    s.close().await;
}
