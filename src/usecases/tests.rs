//! The use cases end to end on a scratch SQLite database, without HTTP: an intake and its
//! idempotent repeat, and a step that meets a concurrent change.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::intake::{self, WalkIn};
use super::testing::{SSC, state};
use super::{Actor, Error, IdemKey, MaterialInput, step};
use crate::domain::case::{Action, CaseStatus, Request};
use crate::state::AppState;
use crate::store::{CaseFilter, CaseWrite, EventRow, UploadRow};

fn values() -> Map<String, Value> {
    json!({
        "applicant_name": "王小明",
        "applicant_id_number": "150702198506123025",
        "gender": "1",
        "phone": "13800000001",
        "application_type": "first",
        "bank": "icbc",
        "delivery": "post",
        "mailing_address": "呼伦贝尔市海拉尔区胜利大街1号",
    })
    .as_object()
    .cloned()
    .expect("object")
}

fn walk_in() -> WalkIn {
    WalkIn {
        kind: "person".into(),
        name: "王小明".into(),
        id_number: Some("150702198506123025".into()),
        ..WalkIn::default()
    }
}

/// A JPG upload of `owner`'s, recorded but not attached: the row, and a real picture
/// of 358×441 pixels in the file store (lodging checks a photo's pixel sizes).
async fn upload(app: &AppState, owner: Uuid) -> Uuid {
    let id = Uuid::now_v7();
    let img = image::RgbImage::from_pixel(358, 441, image::Rgb([200, 180, 160]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut bytes, image::ImageFormat::Jpeg)
        .expect("encode");
    let temp = app.files.temp_dir().join(format!("{id}.jpg"));
    std::fs::write(&temp, bytes.into_inner()).expect("write the picture");
    app.files
        .put_file(&id.to_string(), &temp)
        .await
        .expect("store the picture");
    app.store
        .insert_upload(&UploadRow {
            id,
            owner,
            file_name: "scan.jpg".into(),
            file_type: "jpg".into(),
            size: 2048,
            sha256: "00".repeat(32),
            storage_key: id.to_string(),
            created_at: chrono::Utc::now(),
            case_id: None,
        })
        .await
        .expect("upload");
    id
}

/// A clerk of a hall serving `department`, and the walk-in applicant's two scans they
/// uploaded (the ID card and the photo the service asks for).
async fn clerk_with_scans(app: &AppState, department: &str) -> (Actor, Vec<MaterialInput>) {
    let account = Uuid::now_v7();
    let clerk = Actor::Clerk {
        account,
        name: "孙丽".into(),
        hall: "hlbe-zwfwzx".into(),
        departments: vec![department.to_owned()],
    };
    let mut materials = Vec::new();
    for material in ["id_card", "photo"] {
        materials.push(MaterialInput {
            material: material.into(),
            upload_id: Some(upload(app, account).await),
            substitute: false,
        });
    }
    (clerk, materials)
}

#[tokio::test]
async fn an_intake_repeated_with_its_key_answers_the_first_case() {
    let dir = tempfile::tempdir().expect("dir");
    let app = state(dir.path()).await;
    let service = app.catalogue.service(SSC).expect("service");
    let (clerk, materials) = clerk_with_scans(&app, &service.department).await;
    let key = |request: Value| Some(IdemKey::new(clerk.id(), "k-1", &request));
    let (who, form) = (walk_in(), values());
    let lodge = |idem| intake::intake(&app, &clerk, service, &who, &form, &materials, idem);
    let first = lodge(key(json!({ "n": 1 }))).await.expect("lodged");
    assert_eq!(first.status, CaseStatus::Submitted);
    let again = lodge(key(json!({ "n": 1 }))).await.expect("replayed");
    assert_eq!(again, first, "the same request answers the first case");
    let other = lodge(key(json!({ "n": 2 }))).await;
    assert!(
        matches!(other, Err(Error::IdempotencyMismatch)),
        "{other:?}"
    );
    let (_, total) = app
        .store
        .list_cases(&CaseFilter {
            limit: 10,
            ..CaseFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(total, 1, "one case, however often it was sent");

    let stored = app
        .store
        .case_by_no(&first.case_no)
        .await
        .expect("read")
        .expect("case");
    assert_eq!(stored.channel, "window");
    assert_eq!(stored.intake_account, clerk.account());
    let attached = app
        .store
        .case_materials(stored.id)
        .await
        .expect("materials");
    assert_eq!(attached.len(), 2, "both uploads are now the case's");
}

#[tokio::test]
async fn a_step_decides_again_when_the_case_changed_meanwhile() {
    let dir = tempfile::tempdir().expect("dir");
    let app = state(dir.path()).await;
    let service = app.catalogue.service(SSC).expect("service");
    let (clerk, materials) = clerk_with_scans(&app, &service.department).await;
    let lodged = intake::intake(
        &app,
        &clerk,
        service,
        &walk_in(),
        &values(),
        &materials,
        None,
    )
    .await
    .expect("lodged");
    let stale = app
        .store
        .case_by_no(&lodged.case_no)
        .await
        .expect("read")
        .expect("case");
    // someone else writes to the case between our read and our step
    let note = EventRow {
        seq: 0,
        at: chrono::Utc::now(),
        actor: "system".into(),
        actor_id: None,
        actor_name: "系统".into(),
        action: None,
        from_status: Some("submitted".into()),
        to_status: "submitted".into(),
        note: Some("concurrent".into()),
        attachments: json!([]),
    };
    let w = CaseWrite {
        event: &note,
        materials: &[],
        outbox: &[],
        notices: &[],
        idem: None,
        access: &[],
    };
    app.store
        .update_case(&stale, w)
        .await
        .expect("concurrent write");

    let stepped = step::step(&app, stale, &clerk, Request::new(Action::Accept), &[], None)
        .await
        .expect("accepted after deciding again");
    assert_eq!(
        (stepped.from, stepped.status),
        (CaseStatus::Submitted, CaseStatus::Accepted)
    );
    let now = app
        .store
        .case_by_no(&lodged.case_no)
        .await
        .expect("read")
        .expect("case");
    assert_eq!(now.version, 3, "lodged, the other write, the step");
    let history = app.store.case_events(now.id).await.expect("events");
    let actions: Vec<Option<&str>> = history.iter().map(|e| e.action.as_deref()).collect();
    assert_eq!(actions, [Some("submit"), None, Some("accept")]);
}
