//! Uploads waiting for a case and drafts: an applicant's own, cleaned up when old.

use onewindow::store::{DraftRow, StoreError, UploadRow};
use serde_json::json;
use uuid::Uuid;

use super::{at, at_micros, case, connect, create, open, open_sealed};
use crate::backend_tests;
use crate::harness::Backend;

backend_tests!(
    uploads_round_trip_and_only_old_unattached_ones_are_removed,
    drafts_are_their_owners_only_and_expire,
);

fn upload(owner: Uuid, name: &str, secs: i64) -> UploadRow {
    UploadRow {
        id: Uuid::now_v7(),
        owner,
        file_name: name.into(),
        file_type: "jpg".into(),
        size: 123_456,
        sha256: "cd".repeat(32),
        storage_key: format!("store/{name}"),
        created_at: at_micros(secs, 500),
        case_id: None,
    }
}

async fn uploads_round_trip_and_only_old_unattached_ones_are_removed(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let owner = Uuid::now_v7();
    let old = upload(owner, "old.jpg", 0);
    let young = upload(owner, "young.jpg", 3_600);
    let attached = upload(owner, "attached.jpg", 0);
    for u in [&old, &young, &attached] {
        s.insert_upload(u).await.expect("insert");
    }
    let got = s.upload(old.id).await.expect("read").expect("present");
    assert_eq!(got.id, old.id);
    assert_eq!(got.owner, owner);
    assert_eq!(got.file_name, "old.jpg");
    assert_eq!(got.file_type, "jpg");
    assert_eq!(got.size, 123_456);
    assert_eq!(got.sha256, "cd".repeat(32));
    assert_eq!(got.storage_key, "store/old.jpg");
    assert_eq!(got.created_at, at_micros(0, 500));
    assert_eq!(got.case_id, None);
    assert!(s.upload(Uuid::now_v7()).await.expect("read").is_none());

    let c = case("A-0001", 0);
    let m = [onewindow::store::NewMaterial {
        material_id: "photo".into(),
        upload_id: Some(attached.id),
        substituted: false,
        source: None,
        evidence: None,
    }];
    create(&*s, &c, &m).await;

    // Older than a cut-off a microsecond after the old ones: only the unattached old
    // upload goes, and it is handed back so its file can be deleted.
    let removed = s
        .remove_stale_uploads(at_micros(0, 501))
        .await
        .expect("housekeeping");
    let ids: Vec<Uuid> = removed.iter().map(|u| u.id).collect();
    assert_eq!(ids, [old.id]);
    assert_eq!(removed[0].storage_key, "store/old.jpg");
    assert!(s.upload(old.id).await.expect("read").is_none());
    assert!(s.upload(young.id).await.expect("read").is_some());
    assert_eq!(
        s.upload(attached.id)
            .await
            .expect("read")
            .expect("kept")
            .case_id,
        Some(c.id)
    );
    // A cut-off equal to a creation time keeps that upload (strictly older only).
    assert!(
        s.remove_stale_uploads(at_micros(3_600, 500))
            .await
            .expect("again")
            .is_empty()
    );
    s.close().await;
}

fn draft(owner: Uuid, service: &str, secs: i64) -> DraftRow {
    DraftRow {
        id: Uuid::now_v7(),
        account_id: owner,
        service_code: service.into(),
        form: json!({"name": "王小明", "phone": "13800000001"}),
        created_at: at_micros(secs, 3),
        updated_at: at_micros(secs, 3),
        expires_at: at(secs + 86_400),
    }
}

async fn drafts_are_their_owners_only_and_expire(b: Backend) {
    let Some((res, s)) = open_sealed(b).await else {
        return;
    };
    let (me, you) = (Uuid::now_v7(), Uuid::now_v7());
    let first = draft(me, "A-0001", 0);
    let second = draft(me, "B-0001", 60);
    let yours = draft(you, "A-0001", 30);
    for d in [&first, &second, &yours] {
        assert!(s.save_draft(d).await.expect("save"));
    }
    let got = s.draft(first.id, me).await.expect("read").expect("mine");
    assert_eq!(got.id, first.id);
    assert_eq!(got.account_id, me);
    assert_eq!(got.service_code, "A-0001");
    assert_eq!(got.form, first.form);
    assert_eq!(got.created_at, at_micros(0, 3));
    assert_eq!(got.updated_at, at_micros(0, 3));
    assert_eq!(got.expires_at, at(86_400));
    assert!(
        s.draft(first.id, you).await.expect("read").is_none(),
        "another's draft is not found"
    );

    // Saving again replaces the form and times, never the owner or the service.
    let edited = DraftRow {
        form: json!({"name": "王小明", "phone": "13900000002"}),
        updated_at: at(120),
        expires_at: at(120 + 86_400),
        ..first.clone()
    };
    assert!(s.save_draft(&edited).await.expect("save again"));
    let got = s.draft(first.id, me).await.expect("read").expect("mine");
    assert_eq!(got.form, edited.form);
    assert_eq!(got.updated_at, at(120));
    assert_eq!(got.created_at, at_micros(0, 3), "creation stays");
    let hijack = DraftRow {
        account_id: you,
        form: json!({"name": "冒名"}),
        ..first.clone()
    };
    assert!(!s.save_draft(&hijack).await.expect("refused"));
    let other_service = DraftRow {
        service_code: "B-0001".into(),
        ..edited.clone()
    };
    assert!(!s.save_draft(&other_service).await.expect("refused"));
    assert_eq!(
        s.draft(first.id, me)
            .await
            .expect("read")
            .expect("mine")
            .form,
        edited.form
    );

    let mine: Vec<Uuid> = s
        .drafts(me)
        .await
        .expect("list")
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(mine, [first.id, second.id], "most recently saved first");

    assert!(!s.delete_draft(first.id, you).await.expect("not yours"));
    assert!(s.delete_draft(first.id, me).await.expect("delete"));
    assert!(!s.delete_draft(first.id, me).await.expect("gone"));

    // Expired drafts go; others stay.
    assert_eq!(
        s.purge_expired_drafts(at(30 + 86_400))
            .await
            .expect("purge"),
        0
    );
    assert_eq!(
        s.purge_expired_drafts(at(30 + 86_401))
            .await
            .expect("purge"),
        1
    );
    assert!(s.draft(yours.id, you).await.expect("read").is_none());
    assert!(s.draft(second.id, me).await.expect("read").is_some());

    // The form is sealed at rest, bound to the draft.
    let keyless = connect(&res).await;
    assert!(matches!(
        keyless.draft(second.id, me).await,
        Err(StoreError::Corrupt(_))
    ));
    keyless.close().await;
    s.close().await;
}
