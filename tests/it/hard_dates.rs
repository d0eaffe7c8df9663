//! Issue 13, items 7, 9, 10 and the upload content checks of item 4: due dates that do
//! not run out with the holiday calendar, sessions that survive a restart of the
//! embedded default, retention, and uploads checked whole.

use chrono::Datelike;
use onewindow::domain::calendar::HolidayCalendar;
use onewindow::domain::catalogue::{LimitUnit, TimeLimit};
use onewindow::domain::deadline::{due_date, due_date_or_provisional};
use onewindow::usecases::today;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::cases::{SSC, Session, jpeg, step, valid_values};
use crate::desk_pages::page;
use crate::harness::{Backend, definitions_dir};
use crate::login::{LoginSetup, with_dev_idp, with_dev_idp_on};

backend_tests!(
    provisional_due_dates_are_shown_and_counted_again_on_import,
    sessions_survive_a_restart,
    uploads_are_checked_whole,
    retention_removes_what_is_due,
    closed_case_files_are_kept_when_retention_is_off,
);

fn wd(value: u32) -> TimeLimit {
    TimeLimit {
        value,
        unit: LimitUnit::WorkingDays,
    }
}

/// A citizen's case of 社会保障卡申领 (15/20 working days), accepted today.
async fn accepted_ssc_case(s: &LoginSetup, citizen: &Session) -> String {
    let (status, photo) = citizen.upload("p.jpg", jpeg(3)).await;
    assert_eq!(status, 201, "{photo}");
    let (status, lodged) = citizen
        .post(
            "/api/v1/cases",
            &json!({ "service_code": SSC, "values": valid_values(), "materials": [
                { "material": "id_card", "substitute": true },
                { "material": "photo", "upload_id": photo["id"] }] }),
        )
        .await;
    assert_eq!(status, 201, "{lodged}");
    let case_no = lodged["case_no"].as_str().expect("case_no").to_owned();
    let clerk = Session::new(s, "/auth/staff/login", "clerk-sun").await;
    let (status, body) = step(&clerk, &case_no, json!({ "action": "accept" })).await;
    assert_eq!(status, 200, "{body}");
    case_no
}

/// Runs the `onewindow` binary against the test's database.
fn onewindow(s: &LoginSetup, args: &[&str]) -> (bool, String) {
    let res = s.app.resources();
    let mut c = crate::cli::onewindow();
    c.args(args)
        .env("ONEWINDOW_DATA_DIR", res.tmp.path())
        .env("ONEWINDOW_DEFINITIONS_DIR", definitions_dir());
    if let Some(db) = &res.database_url {
        c.env("DATABASE_URL", db);
    }
    let out = c.output().expect("run onewindow");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn provisional_due_dates_are_shown_and_counted_again_on_import(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let builtin = HolidayCalendar::builtin();
    let today = today();
    let promised = due_date_or_provisional(builtin, today, wd(15), &[], today).expect("promised");
    let legal = due_date_or_provisional(builtin, today, wd(20), &[], today).expect("legal");
    assert!(
        promised.provisional || legal.provisional,
        "this test needs a due date past the built-in calendar's end (2026)"
    );

    let case_no = accepted_ssc_case(&s, &citizen).await;
    // the API gives the weekday-rule dates, marked provisional, to the applicant …
    let (_, case) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    let d = &case["deadline"];
    assert_eq!(d["due_on"], json!(promised.on.to_string()), "{case}");
    assert_eq!(d["legal_due_on"], json!(legal.on.to_string()), "{case}");
    assert_eq!(d["provisional"], true, "{case}");
    assert!(d["state"].is_string(), "the state is known too: {case}");
    // … and to staff
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let (_, staff) = officer.get(&format!("/api/staff/v1/cases/{case_no}")).await;
    assert_eq!(staff["deadline"]["provisional"], true, "{staff}");

    // pages say so in both languages
    let (status, html) = page(&citizen, &format!("/me/cases/{case_no}?lang=en")).await;
    assert_eq!(status, 200);
    assert!(html.contains("provisional"), "{html}");
    let (_, html) = page(&citizen, &format!("/me/cases/{case_no}")).await;
    assert!(html.contains("暂定"), "{html}");
    let (_, html) = page(&officer, &format!("/desk/cases/{case_no}?lang=en")).await;
    assert!(html.contains("provisional"), "{html}");
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let (_, html) = page(&clerk, &format!("/staff/cases/{case_no}?lang=en")).await;
    assert!(html.contains("provisional"), "{html}");

    // the operator is warned from 1 November of the year before
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let needed = builtin.years_needed(today);
    let (_, html) = page(&op, "/ops?lang=en").await;
    if needed.is_empty() {
        assert!(!html.contains("calendar-warning"), "{html}");
    } else {
        assert!(html.contains("id=\"calendar-warning\""), "{html}");
        assert!(html.contains(&needed[0].to_string()), "{html}");
        assert!(html.contains("onewindow calendar import"), "{html}");
    }

    // the operator imports the missing years: the first week of January off
    let years: Vec<i32> = [today.year(), today.year() + 1, today.year() + 2]
        .into_iter()
        .filter(|y| !builtin.covers(*y))
        .collect();
    let mut doc = serde_json::Map::new();
    for y in &years {
        let days: Vec<Value> = (1..=7)
            .map(|day| json!({ "date": format!("{y}-01-{day:02}"), "name": "元旦及测试假期" }))
            .collect();
        doc.insert(
            y.to_string(),
            json!({ "holidays": days, "makeup_workdays": [] }),
        );
    }
    let file = s.app.resources().tmp.path().join("holidays.json");
    std::fs::write(&file, json!({ "years": doc }).to_string()).expect("write");
    // a broken file is refused, naming the problem, and changes nothing
    let bad = s.app.resources().tmp.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"years": {"2027": {"holidays": [{"date": "2027-02-30", "name": "x"}]}}}"#,
    )
    .expect("write");
    let (ok, out) = onewindow(&s, &["calendar", "import", bad.to_str().expect("path")]);
    assert!(!ok, "{out}");
    assert!(out.contains("2027-02-30"), "{out}");

    let (ok, out) = onewindow(&s, &["calendar", "import", file.to_str().expect("path")]);
    assert!(ok, "{out}");
    assert!(out.contains("1 now final"), "{out}");

    let merged = builtin.merged(
        &HolidayCalendar::from_json(&std::fs::read_to_string(&file).expect("read"))
            .expect("parses"),
    );
    let final_promised = due_date(&merged, today, wd(15), &[], today).expect("final");
    let final_legal = due_date(&merged, today, wd(20), &[], today).expect("final");
    let (_, case) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    let d = &case["deadline"];
    assert_eq!(d["due_on"], json!(final_promised.to_string()), "{case}");
    assert_eq!(d["legal_due_on"], json!(final_legal.to_string()), "{case}");
    assert!(
        d.get("provisional").is_none(),
        "no longer provisional: {case}"
    );
    if legal.provisional {
        assert_ne!(
            json!(legal.on.to_string()),
            d["legal_due_on"],
            "the holidays moved the legal due date"
        );
    }
    // the recount is in the case's history: the gateway as actor, old and new dates
    let timeline = case["timeline"].as_array().expect("timeline");
    let recounts: Vec<&Value> = timeline
        .iter()
        .filter(|e| {
            e["note"]
                .as_str()
                .is_some_and(|n| n.contains("counted again with the imported holiday calendar"))
        })
        .collect();
    let moved = promised.on != final_promised || legal.on != final_legal;
    assert_eq!(recounts.len(), usize::from(moved), "{case}");
    if let Some(e) = recounts.first() {
        let note = e["note"].as_str().expect("note");
        if promised.on != final_promised {
            assert!(
                note.contains(&format!("due date {} → {}", promised.on, final_promised)),
                "{note}"
            );
        }
        assert_eq!(
            e["status"],
            timeline[timeline.len() - 2]["status"],
            "{case}"
        );
    }

    // the running gateway picks the years up (every instance does, within a minute)
    let state = &s.app.state;
    assert!(!state.calendar.current().covers(years[0]));
    let r = onewindow::usecases::dates::refresh_calendar(state)
        .await
        .expect("refresh")
        .expect("the calendar changed");
    assert_eq!(r.checked, 0, "the import already counted them again");
    assert!(state.calendar.current().covers(years[0]));
    assert!(
        onewindow::usecases::dates::refresh_calendar(state)
            .await
            .expect("refresh")
            .is_none(),
        "nothing new the second time"
    );
    let (_, html) = page(&op, "/ops?lang=en").await;
    assert!(!html.contains("calendar-warning"), "{html}");

    // a case accepted now is final at once
    let second = accepted_ssc_case(&s, &citizen).await;
    let (_, case) = citizen.get(&format!("/api/v1/cases/{second}")).await;
    assert!(case["deadline"].get("provisional").is_none(), "{case}");
    assert_eq!(
        case["deadline"]["due_on"],
        json!(final_promised.to_string())
    );
}

async fn sessions_survive_a_restart(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (status, me) = citizen.get("/api/v1/me").await;
    assert_eq!(status, 200, "{me}");
    let LoginSetup { app, idp, .. } = s;
    let res = app.stop().await;
    drop(idp);
    let s = with_dev_idp_on(res, &[]).await;
    // the same browser (its cookie) against the restarted gateway
    let r = citizen.b.get(&s.app.url("/api/v1/me")).await;
    assert_eq!(r.status(), 200, "still logged in after the restart");
    let again: Value = r.json().await.expect("json");
    assert_eq!(again["id"], me["id"], "{again}");
    assert!(me["id"].is_string(), "{me}");
    // logging out still ends it
    let r = citizen
        .b
        .client
        .post(s.app.url("/auth/logout"))
        .header("x-csrf-token", &citizen.csrf)
        .send()
        .await
        .expect("logout");
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    let r = citizen.b.get(&s.app.url("/api/v1/me")).await;
    assert_eq!(r.status(), 401);
}

/// Posts a multipart upload with extra text fields first; status and body.
async fn upload_with(
    who: &Session,
    fields: &[(&str, &str)],
    name: &str,
    bytes: Vec<u8>,
    lang: &str,
) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
    );
    let r = who
        .b
        .client
        .post(format!("{}/api/v1/uploads", who.base))
        .header("x-csrf-token", &who.csrf)
        .header("accept-language", lang)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "{status}");
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

fn jpeg_header_then_zeros(total: usize) -> Vec<u8> {
    let mut v = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01,
    ];
    v.resize(total, 0);
    v
}

async fn uploads_are_checked_whole(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;

    // a 15-byte "PDF" and 20 MB of zeros behind a JPEG header: refused, in both languages
    let (status, p) =
        upload_with(&citizen, &[], "x.pdf", b"%PDF-1.4\n%%EOF\n".to_vec(), "en").await;
    assert_eq!(status, 422, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("PDF cannot be read")),
        "{p}"
    );
    let (status, p) = upload_with(
        &citizen,
        &[],
        "x.pdf",
        b"%PDF-1.4\n%%EOF\n".to_vec(),
        "zh-CN",
    )
    .await;
    assert_eq!(status, 422, "{p}");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("无法读取")),
        "{p}"
    );
    let (status, p) = upload_with(
        &citizen,
        &[],
        "big.jpg",
        jpeg_header_then_zeros(20 * 1024 * 1024),
        "en",
    )
    .await;
    assert_eq!(status, 422, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("image cannot be read")),
        "{p}"
    );
    // nothing of them is kept
    let files = s.app.resources().tmp.path().join("files");
    let kept = std::fs::read_dir(&files)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .count()
        })
        .unwrap_or(0);
    assert_eq!(kept, 0, "refused files are not stored");

    // real files pass
    let (status, p) = upload_with(&citizen, &[], "a.pdf", crate::cases::pdf("a"), "en").await;
    assert_eq!(status, 201, "{p}");
    let (status, p) = upload_with(&citizen, &[], "a.jpg", jpeg(1), "en").await;
    assert_eq!(status, 201, "{p}");

    // naming the material applies its limits at upload: 社保卡 photo, JPG, 1 MB, ≥358×441
    let photo = [("service_code", SSC), ("material", "photo")];
    let (status, p) = upload_with(&citizen, &photo, "p.jpg", jpeg(2), "en").await;
    assert_eq!(status, 201, "{p}");
    let (status, p) = upload_with(
        &citizen,
        &photo,
        "small.jpg",
        crate::cases::jpeg_sized(3, 100, 120),
        "en",
    )
    .await;
    assert_eq!(status, 422, "{p}");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("358×441")),
        "{p}"
    );
    let (status, p) = upload_with(&citizen, &photo, "p.pdf", crate::cases::pdf("p"), "en").await;
    assert_eq!(status, 415, "{p}");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("JPG")),
        "{p}"
    );
    let (status, p) = upload_with(
        &citizen,
        &photo,
        "huge.jpg",
        jpeg_header_then_zeros(2 * 1024 * 1024),
        "en",
    )
    .await;
    assert_eq!(status, 413, "{p}");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("1 MB")),
        "{p}"
    );
    // without the material the same 2 MB is only refused for its content
    let (status, _) = upload_with(
        &citizen,
        &[],
        "huge.jpg",
        jpeg_header_then_zeros(2 * 1024 * 1024),
        "en",
    )
    .await;
    assert_eq!(status, 422);
    let (status, p) = upload_with(
        &citizen,
        &[("service_code", SSC), ("material", "no_such")],
        "p.jpg",
        jpeg(4),
        "en",
    )
    .await;
    assert_eq!(status, 400, "{p}");
    let (status, p) = upload_with(&citizen, &[("material", "photo")], "p.jpg", jpeg(4), "en").await;
    assert_eq!(status, 400, "{p}");

    // an image uploaded without naming its material meets the sizes when it is used
    let (status, small) = upload_with(
        &citizen,
        &[],
        "small.jpg",
        crate::cases::jpeg_sized(5, 100, 120),
        "en",
    )
    .await;
    assert_eq!(status, 201, "{small}");
    let (status, problem) = citizen
        .post(
            "/api/v1/cases",
            &json!({ "service_code": SSC, "values": valid_values(), "materials": [
                { "material": "id_card", "substitute": true },
                { "material": "photo", "upload_id": small["id"] }] }),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem.to_string().contains("materials[1]"), "{problem}");
    assert!(problem.to_string().contains("358×441"), "{problem}");
}

async fn retention_removes_what_is_due(b: Backend) {
    let s = with_dev_idp(b, &[("closed_case_files_days", "30")]).await;
    let state = &s.app.state;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    // an upload never used, a draft, a withdrawn case with a photo, an open case with one
    let (_, loose) = citizen.upload("loose.jpg", jpeg(11)).await;
    let (status, draft) = citizen
        .post(
            "/api/v1/drafts",
            &json!({ "service_code": SSC, "values": {} }),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let lodge = |photo: Value| {
        json!({ "service_code": SSC, "values": valid_values(), "materials": [
            { "material": "id_card", "substitute": true },
            { "material": "photo", "upload_id": photo["id"] }] })
    };
    let (_, p1) = citizen.upload("p1.jpg", jpeg(12)).await;
    let (status, closed) = citizen.post("/api/v1/cases", &lodge(p1.clone())).await;
    assert_eq!(status, 201, "{closed}");
    let closed_no = closed["case_no"].as_str().expect("case_no").to_owned();
    let (status, body) = citizen
        .post(&format!("/api/v1/cases/{closed_no}/withdraw"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, p2) = citizen.upload("p2.jpg", jpeg(13)).await;
    let (status, open) = citizen.post("/api/v1/cases", &lodge(p2.clone())).await;
    assert_eq!(status, 201, "{open}");
    let open_no = open["case_no"].as_str().expect("case_no").to_owned();

    let row = |v: &Value| {
        let id: uuid::Uuid = v["id"].as_str().expect("id").parse().expect("uuid");
        id
    };
    let key_of = |id| async move {
        state
            .store
            .upload(id)
            .await
            .expect("read")
            .map(|u| u.storage_key)
    };
    let (loose_id, p1_id, p2_id) = (row(&loose), row(&p1), row(&p2));
    let p1_key = key_of(p1_id).await.expect("p1 stored");
    let p2_key = key_of(p2_id).await.expect("p2 stored");
    let loose_key = key_of(loose_id).await.expect("loose stored");

    // nothing is due yet
    let now = chrono::Utc::now();
    let r = onewindow::usecases::dates::run_retention(state, now)
        .await
        .expect("retention");
    assert_eq!(
        (r.unattached_uploads, r.drafts, r.closed_case_files),
        (0, 0, 0),
        "{r:?}"
    );

    // two days on: the loose upload goes; the closed case keeps its files for 30 days
    let r = onewindow::usecases::dates::run_retention(state, now + chrono::Duration::days(2))
        .await
        .expect("retention");
    assert_eq!((r.unattached_uploads, r.closed_case_files), (1, 0), "{r:?}");
    assert!(state.files.get(&loose_key).await.is_err());
    assert!(state.files.get(&p1_key).await.is_ok());

    // 31 days on: the withdrawn case's photo file goes, the open case's stays, the draft
    // (30 days) goes; a second run finds nothing more
    let later = now + chrono::Duration::days(31);
    let r = onewindow::usecases::dates::run_retention(state, later)
        .await
        .expect("retention");
    assert_eq!((r.drafts, r.closed_case_files), (1, 1), "{r:?}");
    assert!(
        state.files.get(&p1_key).await.is_err(),
        "the closed case's file is gone"
    );
    assert!(
        state.files.get(&p2_key).await.is_ok(),
        "the open case's file stays"
    );
    let again = onewindow::usecases::dates::run_retention(state, later)
        .await
        .expect("retention");
    assert_eq!(again.closed_case_files, 0, "{again:?}");

    // the record of what was filed stays: the material, its size and hash
    let (_, case) = citizen.get(&format!("/api/v1/cases/{closed_no}")).await;
    assert!(
        case["materials"]
            .to_string()
            .contains(p1["sha256"].as_str().expect("sha")),
        "{case}"
    );
    // staff asking for the file are told why it is gone, not given a 500
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let r = clerk
        .b
        .client
        .get(
            s.app
                .url(&format!("/staff/cases/{closed_no}/materials/{p1_id}")),
        )
        .header("accept-language", "en")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    let text = r.text().await.expect("text");
    assert!(text.contains("retention period"), "{text}");
    let r = clerk
        .b
        .client
        .get(
            s.app
                .url(&format!("/staff/cases/{open_no}/materials/{p2_id}")),
        )
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
}

async fn closed_case_files_are_kept_when_retention_is_off(b: Backend) {
    let s = with_dev_idp(b, &[("closed_case_files_days", "0")]).await;
    let state = &s.app.state;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (_, p1) = citizen.upload("p1.jpg", jpeg(14)).await;
    let (status, closed) = citizen
        .post(
            "/api/v1/cases",
            &json!({ "service_code": SSC, "values": valid_values(), "materials": [
                { "material": "id_card", "substitute": true },
                { "material": "photo", "upload_id": p1["id"] }] }),
        )
        .await;
    assert_eq!(status, 201, "{closed}");
    let no = closed["case_no"].as_str().expect("case_no");
    let (status, _) = citizen
        .post(&format!("/api/v1/cases/{no}/withdraw"), &json!({}))
        .await;
    assert_eq!(status, 200);
    let r = onewindow::usecases::dates::run_retention(
        state,
        chrono::Utc::now() + chrono::Duration::days(3650),
    )
    .await
    .expect("retention");
    assert_eq!(r.closed_case_files, 0);
}
