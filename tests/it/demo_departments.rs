//! The simulated departments of `onewindow demo`: the push department (人社局) and the
//! pull department (市场监管局) take newly lodged cases to `approved` on their own, through
//! the department API only, without tripping over a step staff took first.

use std::time::{Duration, Instant};

use onewindow::app::AppState;
use onewindow::auth::identity::AccountKind;
use onewindow::demo_departments::{
    self, CONCLUSION_NOTE, PULL_DEPARTMENT, PUSH_DEPARTMENT, SimConfig,
};
use onewindow::domain::case::{Action, Request};
use onewindow::domain::ids::ResidentId;
use onewindow::store::{CaseApplicant, DeliveryFilter, EventRow, UploadRow};
use onewindow::usecases::lodge::{self, Channel, NewApplication};
use onewindow::usecases::prefill::SharedData;
use onewindow::usecases::{self, Actor, MaterialInput};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::backend_tests;
use crate::cases::{SSC, valid_values};
use crate::harness::{self, Backend, Resources, TestApp};

backend_tests!(simulated_departments_conclude_cases_on_their_own);

/// 个体工商户设立登记 (市场监管局).
const GETIHU: &str = "11150700MB1530001X-XK-0001";
/// 新生儿出生"一件事": a joint case of 卫健委 with 人社局 among its departments.
const NEWBORN: &str = "11150700MB15300047-QT-0001";

fn clerk() -> Actor {
    Actor::Clerk {
        account: Uuid::now_v7(),
        name: "孙丽".into(),
        hall: "hlbe-zwfwzx".into(),
        departments: vec![PUSH_DEPARTMENT.into(), PULL_DEPARTMENT.into()],
    }
}

fn officer() -> Actor {
    Actor::Officer {
        account: Uuid::now_v7(),
        name: "周涛".into(),
        department: PUSH_DEPARTMENT.into(),
    }
}

/// An upload owned by `owner`, its file written through the file store.
async fn upload(state: &AppState, owner: Uuid, file_type: &str, bytes: &[u8]) -> Uuid {
    let id = Uuid::now_v7();
    let key = id.to_string();
    let temp = state.files.temp_dir().join(format!("{key}.part"));
    tokio::fs::write(&temp, bytes)
        .await
        .expect("write temp file");
    state.files.put_file(&key, &temp).await.expect("store file");
    let row = UploadRow {
        id,
        owner,
        file_name: format!("material.{file_type}"),
        file_type: file_type.to_owned(),
        size: bytes.len() as i64,
        sha256: hex::encode(Sha256::digest(bytes)),
        storage_key: key,
        created_at: chrono::Utc::now(),
        case_id: None,
    };
    state.store.insert_upload(&row).await.expect("upload row");
    id
}

/// A walk-in application lodged by a clerk; the case number.
async fn lodge(
    state: &AppState,
    clerk: &Actor,
    service: &str,
    values: Value,
    materials: Value,
) -> String {
    let service = state.catalogue.service(service).expect("service");
    let values = values.as_object().cloned().expect("values object");
    let materials: Vec<MaterialInput> = materials
        .as_array()
        .expect("materials array")
        .iter()
        .map(|m| MaterialInput {
            material: m["material"].as_str().expect("material").to_owned(),
            upload_id: m["upload_id"].as_str().map(|u| u.parse().expect("uuid")),
            substitute: m["substitute"].as_bool().unwrap_or(false),
        })
        .collect();
    let lodged = lodge::lodge(
        state,
        NewApplication {
            service,
            applicant: CaseApplicant {
                account_id: None,
                kind: AccountKind::Person,
                name: "王小明".into(),
                id_number: Some(ResidentId::parse("150702198506123025").expect("id")),
                uscc: None,
                phone: Some("13800000001".into()),
            },
            channel: Channel::Window,
            values: &values,
            materials: &materials,
            actor: clerk,
            idem: None,
            shared: SharedData {
                who: Some(onewindow::sharing::prefill::who_at_window(
                    Some(&ResidentId::parse("150702198506123025").expect("id")),
                    None,
                    uuid::Uuid::now_v7(),
                    "孙丽",
                    "hlbe-zwfwzx",
                )),
                snapshot_of: None,
            },
        },
    )
    .await
    .expect("lodged");
    lodged.case_no
}

async fn social_security_card(state: &AppState, clerk: &Actor) -> String {
    let owner = clerk.account().expect("clerk account");
    let photo = upload(state, owner, "jpg", &crate::cases::jpeg(21)).await;
    lodge(
        state,
        clerk,
        SSC,
        valid_values(),
        json!([
            { "material": "id_card", "substitute": true },
            { "material": "photo", "upload_id": photo },
        ]),
    )
    .await
}

async fn individual_business(state: &AppState, clerk: &Actor) -> String {
    let owner = clerk.account().expect("clerk account");
    let form = upload(state, owner, "pdf", b"%PDF-1.4\n% application form\n").await;
    let premises = upload(state, owner, "pdf", b"%PDF-1.4\n% lease\n").await;
    lodge(
        state,
        clerk,
        GETIHU,
        json!({
            "operator_name": "王小明",
            "operator_id_number": "150702198506123025",
            "operator_phone": "13800000001",
            "organisation_form": "individual",
            "business_scope": "餐饮服务",
            "premises_address": "呼伦贝尔市海拉尔区胜利大街1号",
            "employees": 2,
        }),
        json!([
            { "material": "application_form", "upload_id": form },
            { "material": "operator_id_card", "substitute": true },
            { "material": "premises_proof", "upload_id": premises },
        ]),
    )
    .await
}

async fn newborn(state: &AppState, clerk: &Actor) -> String {
    let birth = (usecases::today() - chrono::Duration::days(10)).to_string();
    lodge(
        state,
        clerk,
        NEWBORN,
        json!({
            "declarant_name": "王小明", "declarant_id_number": "150702198506123025",
            "declarant_phone": "13800000001", "declarant_relation": "father",
            "other_parent_name": "李芳", "other_parent_id_number": "150702199203151541",
            "baby_name": "王小宝", "baby_gender": "1", "baby_birth_date": birth,
            "birth_certificate_no": "P123456789", "ethnicity_follows": "father",
            "hukou_follows": "father", "hukou_address": "呼伦贝尔市海拉尔区胜利大街1号",
            "bundle_items": ["vaccination", "hukou", "medical_insurance", "social_security_card"],
        }),
        json!([
            { "material": "birth_medical_certificate", "substitute": true },
            { "material": "parents_id_cards", "substitute": true },
            { "material": "household_register", "substitute": true },
        ]),
    )
    .await
}

async fn staff_step(state: &AppState, case_no: &str, actor: &Actor, req: Request) {
    let case = state
        .store
        .case_by_no(case_no)
        .await
        .expect("store")
        .expect("case");
    usecases::step::step(state, case, actor, req, &[], None)
        .await
        .unwrap_or_else(|e| panic!("{case_no}: staff step refused: {e}"));
}

async fn status_of(state: &AppState, case_no: &str) -> String {
    state
        .store
        .case_by_no(case_no)
        .await
        .expect("store")
        .expect("case")
        .status
}

async fn history(state: &AppState, case_no: &str) -> Vec<EventRow> {
    let c = state
        .store
        .case_by_no(case_no)
        .await
        .expect("store")
        .expect("case");
    state.store.case_events(c.id).await.expect("events")
}

/// (action, actor) pairs of a case's history.
async fn steps(state: &AppState, case_no: &str) -> Vec<(String, String)> {
    history(state, case_no)
        .await
        .into_iter()
        .map(|e| (e.action.unwrap_or_default(), e.actor))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

async fn pending_deliveries(state: &AppState, department: &str) -> usize {
    state
        .store
        .deliveries(&DeliveryFilter {
            state: Some("pending".into()),
            department: Some(department.into()),
            case_id: None,
            after: None,
            limit: 500,
        })
        .await
        .expect("deliveries")
        .len()
}

async fn simulated_departments_conclude_cases_on_their_own(b: Backend) {
    let res = Resources::new(b).await;
    let app = TestApp::start_on(
        res,
        harness::bind().await,
        false,
        &[("exchange_allow_http", "true"), ("worker_in_serve", "true")],
    )
    .await;
    let state = app.state.clone();
    let sims = demo_departments::start(
        state.clone(),
        SimConfig {
            step_delay: Duration::from_millis(300),
            poll_every: Duration::from_millis(200),
        },
    )
    .await
    .expect("simulated departments start");
    let endpoint = sims.push_endpoint().expect("push receiver").to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let clerk = clerk();
    let officer = officer();

    // Left alone: one case for each department.
    let push_case = social_security_card(&state, &clerk).await;
    let pull_case = individual_business(&state, &clerk).await;
    // An officer accepts before the department system does: it carries on from there.
    let accepted_first = social_security_card(&state, &clerk).await;
    staff_step(
        &state,
        &accepted_first,
        &officer,
        Request::new(Action::Accept),
    )
    .await;
    // An officer asks for a correction: the department waits for it, then concludes.
    let corrected = individual_business(&state, &clerk).await;
    staff_step(
        &state,
        &corrected,
        &officer,
        Request::new(Action::RequestCorrection).with_note("请补充经营场所照片"),
    )
    .await;
    // A joint case of another department: 人社局 concludes only its own part, once the
    // responsible department has started the review.
    let joint = newborn(&state, &clerk).await;
    staff_step(&state, &joint, &officer, Request::new(Action::Accept)).await;
    staff_step(&state, &joint, &officer, Request::new(Action::StartReview)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(status_of(&state, &corrected).await, "correction_requested");
    staff_step(
        &state,
        &corrected,
        &clerk,
        Request::new(Action::SupplyCorrection),
    )
    .await;

    let all = [&push_case, &pull_case, &accepted_first, &corrected];
    let started = Instant::now();
    loop {
        let mut statuses = Vec::new();
        for c in all {
            statuses.push(status_of(&state, c).await);
        }
        let settled = pending_deliveries(&state, PUSH_DEPARTMENT).await == 0
            && pending_deliveries(&state, PULL_DEPARTMENT).await == 0;
        let joint_parts = state
            .store
            .case_by_no(&joint)
            .await
            .expect("store")
            .expect("case")
            .parts;
        if statuses.iter().all(|s| s == "approved")
            && joint_parts.get(PUSH_DEPARTMENT).is_some()
            && settled
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not all approved and delivered within 15 s: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let sys = "department_system";
    let by_system = pairs(&[
        ("submit", "clerk"),
        ("accept", sys),
        ("start_review", sys),
        ("conclude", sys),
    ]);
    assert_eq!(steps(&state, &push_case).await, by_system);
    assert_eq!(steps(&state, &pull_case).await, by_system);
    assert_eq!(
        steps(&state, &accepted_first).await,
        pairs(&[
            ("submit", "clerk"),
            ("accept", "department_officer"),
            ("start_review", sys),
            ("conclude", sys),
        ])
    );
    assert_eq!(
        steps(&state, &corrected).await,
        pairs(&[
            ("submit", "clerk"),
            ("request_correction", "department_officer"),
            ("supply_correction", "clerk"),
            ("accept", sys),
            ("start_review", sys),
            ("conclude", sys),
        ])
    );
    let joint_case = state
        .store
        .case_by_no(&joint)
        .await
        .expect("store")
        .expect("case");
    assert_eq!(
        joint_case.status, "under_review",
        "the other parts are open"
    );
    let parts = joint_case.parts.as_object().expect("parts");
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(parts[PUSH_DEPARTMENT]["result"], "approved");
    assert_eq!(
        steps(&state, &joint).await,
        pairs(&[
            ("submit", "clerk"),
            ("accept", "department_officer"),
            ("start_review", "department_officer"),
            ("conclude", sys),
        ])
    );
    let last = history(&state, &push_case).await.pop().expect("history");
    assert_eq!(last.note.as_deref(), Some(CONCLUSION_NOTE));
    assert_eq!(last.actor_name, "人社局业务系统");

    // Push really went to the receiver; pull was acknowledged.
    let delivered = state
        .store
        .deliveries(&DeliveryFilter {
            state: Some("delivered".into()),
            department: Some(PUSH_DEPARTMENT.into()),
            case_id: None,
            after: None,
            limit: 500,
        })
        .await
        .expect("deliveries");
    assert!(!delivered.is_empty());
    assert!(
        delivered
            .iter()
            .all(|d| d.endpoint.as_deref() == Some(&*endpoint) && d.last_status == Some(200)),
        "{delivered:?}"
    );

    sims.stop();
    app.stop().await;
}
