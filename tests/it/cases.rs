//! Cases end to end through HTTP: apply (with every field error), double submit, window
//! intake, accept, correction, review, conclusion, refusal, withdrawal, rating, the public
//! query, drafts, uploads, and who may see what.

use onewindow::domain::calendar::HolidayCalendar;
use onewindow::usecases::today;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::Backend;
use crate::login::{Browser, LoginSetup, with_dev_idp};

backend_tests!(
    the_whole_journey_of_an_application,
    window_intake_a_refusal_and_a_withdrawal,
    drafts_resume_on_another_device_and_expire,
    uploads_are_sniffed_and_stale_ones_removed,
    applicants_get_mail_when_smtp_is_configured,
);

pub(crate) const SSC: &str = "11150700MB15300034-GG-0002"; // 社会保障卡申领, promised 15 working days

/// A logged-in browser with its CSRF token.
pub(crate) struct Session {
    pub(crate) b: Browser,
    pub(crate) csrf: String,
    pub(crate) base: String,
}

impl Session {
    pub(crate) async fn new(s: &LoginSetup, path: &str, persona: &str) -> Session {
        let b = Browser::new();
        let resp = s.login(&b, path, persona).await;
        assert_eq!(resp.status(), 303, "{persona} logs in");
        let me: Value = b
            .get(&s.app.url("/api/v1/me"))
            .await
            .json()
            .await
            .expect("me");
        Session {
            csrf: me["session"]["csrf_token"]
                .as_str()
                .expect("csrf")
                .to_owned(),
            b,
            base: format!("http://{}", s.app.addr),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.b.get(&format!("{}{path}", self.base)).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut r = self
            .b
            .client
            .request(method, format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(body);
        if let Some(k) = key {
            r = r.header("idempotency-key", k);
        }
        let r = r.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body, None).await
    }

    pub(crate) async fn upload(&self, name: &str, bytes: Vec<u8>) -> (u16, Value) {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
        let form = reqwest::multipart::Form::new().part("file", part);
        let r = self
            .b
            .client
            .post(format!("{}/api/v1/uploads", self.base))
            .header("x-csrf-token", &self.csrf)
            .multipart(form)
            .send()
            .await
            .expect("upload");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// A small real JPEG (400×500 pixels, within the ID photo's sizes; uploads are decoded
/// whole), its colour from `seed` so that each seed gives a different file.
pub(crate) fn jpeg(seed: u8) -> Vec<u8> {
    jpeg_sized(seed, 400, 500)
}

/// A real JPEG of the given size.
pub(crate) fn jpeg_sized(seed: u8, width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([seed, (x % 251) as u8, (y % 241) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode jpeg");
    out.into_inner()
}

/// A real one-page PDF (uploads must parse), with `title` in its metadata so that each
/// title gives a different file.
pub(crate) fn pdf(title: &str) -> Vec<u8> {
    use lopdf::{Document, Object, dictionary};
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => vec![page_id.into()],
            "Count" => 1,
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    let info_id = doc.add_object(dictionary! { "Title" => Object::string_literal(title) });
    doc.trailer.set("Root", catalog_id);
    doc.trailer.set("Info", info_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save pdf");
    out
}

pub(crate) fn valid_values() -> Value {
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
}

fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn step(officer: &Session, case_no: &str, body: Value) -> (u16, Value) {
    officer
        .post(&format!("/api/staff/v1/cases/{case_no}/transitions"), &body)
        .await
}

async fn the_whole_journey_of_an_application(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;

    // A bad form: every mistake is reported at once, in both languages.
    let bad = json!({
        "service_code": SSC,
        "values": {
            "applicant_name": "",
            "applicant_id_number": "150702198506123026",
            "gender": "3",
            "phone": "12345",
            "application_type": "first",
            "bank": "icbc",
            "delivery": "post",
            "favourite_colour": "blue",
        },
        "materials": [],
    });
    let (status, problem) = citizen.post("/api/v1/cases", &bad).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["type"], "urn:onewindow:problem:invalid-input");
    let fields = error_fields(&problem);
    for f in [
        "applicant_name",
        "applicant_id_number",
        "gender",
        "phone",
        "mailing_address",
        "favourite_colour",
        "materials.id_card",
        "materials.photo",
    ] {
        assert!(
            fields.iter().any(|x| x == f),
            "no error for {f}: {fields:?}"
        );
    }
    let id_error = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .find(|e| e["field"] == "applicant_id_number")
        .expect("id error");
    assert!(
        id_error["message"]
            .as_str()
            .expect("message")
            .contains("校验码"),
        "{id_error}"
    );
    let (_, en) = {
        let r = citizen
            .b
            .client
            .post(format!("{}/api/v1/cases", citizen.base))
            .header("x-csrf-token", &citizen.csrf)
            .header("accept-language", "en")
            .json(&bad)
            .send()
            .await
            .expect("post");
        (r.status(), r.json::<Value>().await.expect("json"))
    };
    assert!(
        en["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .any(|e| e["message"]
                .as_str()
                .is_some_and(|m| m.contains("check character"))),
        "{en}"
    );
    let (_, mine) = citizen.get("/api/v1/cases").await;
    assert_eq!(mine["total"], 0, "nothing half-written");

    // A correct application; the same Idempotency-Key twice gives one case.
    let (status, photo) = citizen.upload("photo.jpg", jpeg(1)).await;
    assert_eq!(status, 201, "{photo}");
    assert_eq!(photo["file_type"], "jpg");
    assert_eq!(photo["sha256"].as_str().map(str::len), Some(64));
    let good = json!({
        "service_code": SSC,
        "values": valid_values(),
        "materials": [
            { "material": "id_card", "substitute": true },
            { "material": "photo", "upload_id": photo["id"] },
        ],
    });
    let (status, first) = citizen
        .send(
            reqwest::Method::POST,
            "/api/v1/cases",
            &good,
            Some("apply-1"),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let case_no = first["case_no"].as_str().expect("case_no").to_owned();
    let query_code = first["query_code"].as_str().expect("query code").to_owned();
    assert_eq!(query_code.len(), 6);
    assert!(query_code.chars().all(|c| c.is_ascii_digit()));
    let (status, again) = citizen
        .send(
            reqwest::Method::POST,
            "/api/v1/cases",
            &good,
            Some("apply-1"),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        again["case_no"],
        case_no.as_str(),
        "a double submit returns the first case"
    );
    let (status, _) = citizen
        .send(
            reqwest::Method::POST,
            "/api/v1/cases",
            &json!({ "service_code": SSC, "values": {} }),
            Some("apply-1"),
        )
        .await;
    assert_eq!(status, 422, "the key cannot be reused for another request");
    let (_, mine) = citizen.get("/api/v1/cases").await;
    assert_eq!(mine["total"], 1);

    let (_, case) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    assert_eq!(case["status"]["code"], "submitted");
    assert_eq!(case["status"]["label"], "已申报");
    assert_eq!(case["applicant"]["id_number"], "150702********3025");
    let materials = case["materials"].as_array().expect("materials");
    assert_eq!(materials.len(), 2);
    assert!(
        materials
            .iter()
            .any(|m| m["substituted"] == true && m["source"] == "elicence.resident_id_card")
    );
    assert!(materials.iter().any(|m| m["sha256"] == photo["sha256"]));

    // The clerk sees it in the worklist and accepts it at the window.
    let (status, work) = clerk.get("/api/staff/v1/cases?status=submitted").await;
    assert_eq!(status, 200, "{work}");
    assert!(
        work["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|c| c["case_no"] == case_no.as_str())
    );
    let (status, accepted) = step(&clerk, &case_no, json!({ "action": "accept" })).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["status"], "accepted");
    // past the calendar's last year the weekday rule gives a provisional date (issue 13)
    let expected_due = onewindow::domain::deadline::due_date_or_provisional(
        HolidayCalendar::builtin(),
        today(),
        onewindow::domain::catalogue::TimeLimit {
            value: 15,
            unit: onewindow::domain::catalogue::LimitUnit::WorkingDays,
        },
        &[],
        today(),
    )
    .ok()
    .map(|d| d.on);
    assert_eq!(
        accepted["due_on"],
        json!(expected_due.map(|d| d.to_string())),
        "promised limit in working days"
    );

    // The department asks for a correction: a reason is required, the clock pauses.
    let (status, problem) = step(
        &officer,
        &case_no,
        json!({ "action": "request_correction" }),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(error_fields(&problem), ["note"]);
    let (status, _) = step(
        &officer,
        &case_no,
        json!({ "action": "request_correction", "note": "照片不清晰，请重新上传" }),
    )
    .await;
    assert_eq!(status, 200);
    let (_, case) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    assert_eq!(case["status"]["code"], "correction_requested");
    assert_eq!(case["asked_of_applicant"], "照片不清晰，请重新上传");
    assert!(
        case["allowed_actions"]
            .as_array()
            .expect("allowed")
            .iter()
            .any(|a| a == "supply_correction")
    );
    // Outside the calendar's years there is no due date, so no deadline state either.
    let deadline_state = |s: &str| expected_due.map_or(Value::Null, |_| json!(s));
    assert_eq!(case["deadline"]["state"], deadline_state("paused"));
    let (_, notes) = citizen.get("/api/v1/notifications").await;
    assert!(
        notes["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|n| n["title"].as_str().is_some_and(|t| t.contains("补齐补正"))),
        "{notes}"
    );

    // An illegal step is a 409 that says what is allowed.
    let (status, problem) = step(
        &officer,
        &case_no,
        json!({ "action": "conclude", "result": "approved" }),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("补齐补正"),
        "{problem}"
    );

    // The citizen supplies a new photo; the case returns to review.
    let (_, photo2) = citizen.upload("photo2.jpg", jpeg(2)).await;
    let (status, corrected) = citizen
        .post(&format!("/api/v1/cases/{case_no}/correction"), &json!({ "note": "已重新上传", "materials": [{ "material": "photo", "upload_id": photo2["id"] }] }))
        .await;
    assert_eq!(status, 200, "{corrected}");
    assert_eq!(corrected["status"], "under_review");

    // The department concludes with approval; the idempotency key makes a retry harmless.
    let conclude = json!({ "action": "conclude", "result": "approved", "note": "准予发卡" });
    let (status, done) = officer
        .send(
            reqwest::Method::POST,
            &format!("/api/staff/v1/cases/{case_no}/transitions"),
            &conclude,
            Some("c-1"),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let (status, again) = officer
        .send(
            reqwest::Method::POST,
            &format!("/api/staff/v1/cases/{case_no}/transitions"),
            &conclude,
            Some("c-1"),
        )
        .await;
    assert_eq!((status, &again), (200, &done));

    let (_, case) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    assert_eq!(case["status"]["code"], "approved");
    assert_eq!(case["result"], "approved");
    let actions: Vec<&str> = case["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "submit",
            "accept",
            "request_correction",
            "supply_correction",
            "conclude"
        ]
    );
    assert_eq!(case["materials"].as_array().map(Vec::len), Some(3));
    assert_eq!(case["deadline"]["state"], deadline_state("met"));

    // Every change wrote an outbox event in the same transaction, in order.
    let id = s
        .app
        .state
        .store
        .case_by_no(&case_no)
        .await
        .expect("read")
        .expect("case")
        .id;
    let events: Vec<String> = s
        .app
        .state
        .store
        .case_outbox(id)
        .await
        .expect("outbox")
        .into_iter()
        .map(|o| o.event_type)
        .collect();
    assert_eq!(
        events,
        [
            "submitted",
            "accepted",
            "correction_requested",
            "corrected",
            "concluded"
        ]
        .map(|e| format!("cn.gov.onewindow.case.{e}.v1"))
    );

    // 好差评: a low rating needs a comment; one rating per case.
    let (status, problem) = citizen
        .post(
            &format!("/api/v1/cases/{case_no}/rating"),
            &json!({ "rating": 2 }),
        )
        .await;
    assert_eq!(
        (status, error_fields(&problem)),
        (422, vec!["comment".to_owned()])
    );
    let (status, rated) = citizen
        .post(
            &format!("/api/v1/cases/{case_no}/rating"),
            &json!({ "rating": 5 }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(rated["label"], "非常满意");
    let (status, _) = citizen
        .post(
            &format!("/api/v1/cases/{case_no}/rating"),
            &json!({ "rating": 4 }),
        )
        .await;
    assert_eq!(status, 409);

    // Another user's case is not found, for them.
    let other = Session::new(&s, "/auth/login", "citizen-li").await;
    let (status, _) = other.get(&format!("/api/v1/cases/{case_no}")).await;
    assert_eq!(status, 404);
    // A market-regulation officer cannot see an HR and social security case.
    let zhou = Session::new(&s, "/auth/staff/login", "officer-zhou").await;
    let (status, _) = zhou.get(&format!("/api/staff/v1/cases/{case_no}")).await;
    assert_eq!(status, 404);

    // The public query: status without personal data; wrong codes are limited.
    let anon = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = |code: &str| {
        s.app
            .url(&format!("/api/v1/public/cases/{case_no}?query_code={code}"))
    };
    let r = anon.get(url(&query_code)).send().await.expect("query");
    assert_eq!(r.status(), 200);
    let public: Value = r.json().await.expect("json");
    assert_eq!(public["status"]["code"], "approved");
    let text = public.to_string();
    assert!(
        !text.contains("王小明") && !text.contains("150702") && !text.contains("照片"),
        "no personal data: {text}"
    );
    let wrong = if query_code == "000000" {
        "000001"
    } else {
        "000000"
    };
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            anon.get(url(wrong))
                .send()
                .await
                .expect("query")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..5], [404; 5]);
    assert_eq!(statuses[6], 429, "{statuses:?}");
    assert_eq!(
        anon.get(url(&query_code))
            .send()
            .await
            .expect("query")
            .status(),
        429,
        "this case is locked for a while"
    );
}

async fn window_intake_a_refusal_and_a_withdrawal(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let (_, photo) = clerk.upload("walkin.jpg", jpeg(3)).await;
    let intake = json!({
        "service_code": SSC,
        "applicant": { "kind": "person", "name": "孟淑华", "id_number": "150702195001011233" },
        "values": valid_values(),
        "materials": [{ "material": "id_card", "substitute": true }, { "material": "photo", "upload_id": photo["id"] }],
    });
    let (status, problem) = clerk.post("/api/staff/v1/cases", &intake).await;
    assert_eq!(status, 422, "a bad walk-in ID number is refused: {problem}");
    assert_eq!(error_fields(&problem), ["applicant.id_number"]);
    let mut intake = intake;
    intake["applicant"]["id_number"] = json!("150702199401162284");
    let (status, lodged) = clerk.post("/api/staff/v1/cases", &intake).await;
    assert_eq!(status, 201, "{lodged}");
    let case_no = lodged["case_no"].as_str().expect("case_no").to_owned();
    let (_, case) = clerk.get(&format!("/api/staff/v1/cases/{case_no}")).await;
    assert_eq!(case["channel"], "window");
    assert_eq!(case["applicant"]["name"], "孟淑华");

    let (status, _) = step(&clerk, &case_no, json!({ "action": "not_accept" })).await;
    assert_eq!(status, 422, "a refusal needs a reason");
    let (status, refused) = step(
        &clerk,
        &case_no,
        json!({ "action": "not_accept", "note": "不属于本市参保人员" }),
    )
    .await;
    assert_eq!(
        (status, refused["status"].as_str()),
        (200, Some("not_accepted"))
    );
    let (status, problem) = step(&clerk, &case_no, json!({ "action": "accept" })).await;
    assert_eq!(status, 409, "a refused case is closed: {problem}");

    // A citizen withdraws their own application before conclusion, once.
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (_, photo) = citizen.upload("p.jpg", jpeg(4)).await;
    let (status, lodged) = citizen
        .post("/api/v1/cases", &json!({ "service_code": SSC, "values": valid_values(), "materials": [{ "material": "id_card", "substitute": true }, { "material": "photo", "upload_id": photo["id"] }] }))
        .await;
    assert_eq!(status, 201);
    let case_no = lodged["case_no"].as_str().expect("case_no");
    let (status, w) = citizen
        .post(
            &format!("/api/v1/cases/{case_no}/withdraw"),
            &json!({ "note": "信息填错了" }),
        )
        .await;
    assert_eq!((status, w["status"].as_str()), (200, Some("withdrawn")));
    let (status, _) = citizen
        .post(&format!("/api/v1/cases/{case_no}/withdraw"), &json!({}))
        .await;
    assert_eq!(status, 409);
    // the photo is now part of a case and cannot be reused
    let (status, problem) = citizen
        .post("/api/v1/cases", &json!({ "service_code": SSC, "values": valid_values(), "materials": [{ "material": "id_card", "substitute": true }, { "material": "photo", "upload_id": photo["id"] }] }))
        .await;
    assert_eq!(status, 422, "{problem}");
}

async fn drafts_resume_on_another_device_and_expire(b: Backend) {
    let s = with_dev_idp(b, &[("draft_ttl_secs", "3600")]).await;
    let laptop = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (status, d) = laptop
        .post(
            "/api/v1/drafts",
            &json!({ "service_code": SSC, "values": { "bank": "icbc" } }),
        )
        .await;
    assert_eq!(status, 201, "{d}");
    let id = d["id"].as_str().expect("id").to_owned();
    let (status, _) = laptop
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/drafts/{id}"),
            &json!({ "service_code": SSC, "values": { "bank": "boc", "gender": "1" } }),
            None,
        )
        .await;
    assert_eq!(status, 200);

    let phone = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (status, resumed) = phone.get(&format!("/api/v1/drafts/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(resumed["values"], json!({ "bank": "boc", "gender": "1" }));
    let (_, list) = phone.get("/api/v1/drafts").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));

    let stranger = Session::new(&s, "/auth/login", "citizen-li").await;
    assert_eq!(stranger.get(&format!("/api/v1/drafts/{id}")).await.0, 404);

    // housekeeping after the expiry removes it
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    let (_, drafts) = onewindow::app::housekeeping(&s.app.state, later)
        .await
        .expect("housekeeping");
    assert_eq!(drafts, 1);
    assert_eq!(phone.get(&format!("/api/v1/drafts/{id}")).await.0, 404);
}

async fn uploads_are_sniffed_and_stale_ones_removed(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (status, problem) = citizen
        .upload("fake.pdf", b"#!/bin/sh\necho not a pdf\n".to_vec())
        .await;
    assert_eq!(status, 415, "{problem}");
    let (status, up) = citizen.upload("scan.jpg", jpeg(9)).await;
    assert_eq!(status, 201);
    let id: uuid::Uuid = up["id"].as_str().expect("id").parse().expect("uuid");
    let row = s
        .app
        .state
        .store
        .upload(id)
        .await
        .expect("read")
        .expect("stored");
    assert!(s.app.state.files.get(&row.storage_key).await.is_ok());

    let (uploads, _) =
        onewindow::app::housekeeping(&s.app.state, chrono::Utc::now() + chrono::Duration::days(2))
            .await
            .expect("housekeeping");
    assert_eq!(uploads, 1);
    assert!(s.app.state.store.upload(id).await.expect("read").is_none());
    assert!(
        s.app.state.files.get(&row.storage_key).await.is_err(),
        "the file is gone too"
    );

    // without a session, no uploads
    let anon = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let r = anon
        .post(s.app.url("/api/v1/uploads"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
}

async fn applicants_get_mail_when_smtp_is_configured(b: Backend) {
    let sink = crate::smtp_sink::SmtpSink::start().await;
    let smtp = format!("smtp://{}", sink.addr);
    let s = with_dev_idp(b, &[("smtp_url", smtp.as_str())]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (_, photo) = citizen.upload("p.jpg", jpeg(5)).await;
    let (status, lodged) = citizen
        .post("/api/v1/cases", &json!({ "service_code": SSC, "values": valid_values(), "materials": [{ "material": "id_card", "substitute": true }, { "material": "photo", "upload_id": photo["id"] }] }))
        .await;
    assert_eq!(status, 201);
    let case_no = lodged["case_no"].as_str().expect("case_no").to_owned();
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    assert_eq!(
        step(&clerk, &case_no, json!({ "action": "accept" }))
            .await
            .0,
        200
    );

    let mails = sink.wait_for(2).await;
    assert!(
        mails.iter().all(|m| m.to == ["wang.xiaoming@example.cn"]),
        "{mails:?}"
    );
    let all = mails
        .iter()
        .map(|m| m.text())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(all.contains(&case_no), "the mail names the case: {all}");
    assert!(all.contains("Subject:") && all.contains("已受理"), "{all}");
    // the in-app messages are there too
    let (_, notes) = citizen.get("/api/v1/notifications").await;
    assert_eq!(notes["items"].as_array().map(Vec::len), Some(2));
}
