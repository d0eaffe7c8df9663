//! The citizen's and enterprise user's pages through HTTP, as a browser uses them: home
//! and services, the guide, the public status query (and its limit), my cases with
//! correction, withdrawal (confirmed) and rating, drafts, messages, who read my data,
//! a window case found by the ID number's blind index, and an enterprise's cases.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::cases::{SSC, Session, jpeg, step, valid_values};
use crate::harness::Backend;
use crate::login::{LoginSetup, with_dev_idp};

backend_tests!(
    home_services_and_guide_are_pages_in_one_language,
    the_public_status_query_explains_its_limit,
    my_case_correction_withdrawal_and_rating,
    a_window_case_appears_in_my_cases_after_login,
    enterprise_users_see_and_act_for_their_enterprise,
    drafts_messages_and_data_access,
);

/// GET a page as a browser (HTML).
async fn page(s: &Session, path: &str) -> (u16, String) {
    let r =
        s.b.client
            .get(format!("{}{path}", s.base))
            .header("accept", "text/html")
            .send()
            .await
            .expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// POST a form as a browser (the `_csrf` field and the same-origin header a browser sends).
async fn form(s: &Session, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut all: Vec<(&str, &str)> = vec![("_csrf", s.csrf.as_str())];
    all.extend_from_slice(fields);
    s.b.client
        .post(format!("{}{path}", s.base))
        .header("accept", "text/html")
        .header("origin", &s.base)
        .form(&all)
        .send()
        .await
        .expect("request")
}

async fn anonymous(s: &LoginSetup, path: &str) -> (u16, String) {
    let r = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(s.app.url(path))
        .header("accept", "text/html")
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

fn has_han(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// The page's own texts (the markup without data the test put there): no Chinese in an
/// English page. Data held only in Chinese (a person's name) is left out by `allow`.
fn english_ui(html: &str, allow: &[&str]) -> Vec<String> {
    let mut text = html.to_owned();
    for a in allow {
        text = text.replace(a, "");
    }
    // the language switch names its language in that language; the filing number is
    // the province's registration mark; the logged-in personas' names are data
    text = text.replace(">中文<", "><").replace("蒙ICP备", "");
    for name in ["王小明", "李芳", "赵强", "陈静", "呼伦贝尔草原乳业有限公司"]
    {
        text = text.replace(name, "");
    }
    let stripped = regex_lite_strip(&text);
    stripped
        .lines()
        .map(str::trim)
        .filter(|l| has_han(l))
        .map(str::to_owned)
        .collect()
}

fn regex_lite_strip(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push('\n');
            }
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

async fn lodge(citizen: &Session) -> String {
    let (_, photo) = citizen.upload("p.jpg", jpeg(7)).await;
    let (status, lodged) = citizen
        .post(
            "/api/v1/cases",
            &json!({ "service_code": SSC, "values": valid_values(), "materials": [
                { "material": "id_card", "substitute": true },
                { "material": "photo", "upload_id": photo["id"] }] }),
        )
        .await;
    assert_eq!(status, 201, "{lodged}");
    lodged["case_no"].as_str().expect("case_no").to_owned()
}

async fn home_services_and_guide_are_pages_in_one_language(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let (status, home) = anonymous(&s, "/").await;
    assert_eq!(status, 200);
    for want in [
        "action=\"/services\"",
        "action=\"/status\"",
        "/services?event=newborn",
        "/services?who=enterprise",
        "/auth/login",
    ] {
        assert!(home.contains(want), "home lacks {want}");
    }
    assert!(!home.contains("/api/v1/services/"), "no link to raw JSON");
    let (_, en) = anonymous(&s, "/?lang=en").await;
    assert_eq!(
        english_ui(&en, &[]),
        Vec::<String>::new(),
        "English home shows Chinese"
    );

    let (status, found) = anonymous(&s, "/services?q=社会保障卡").await;
    assert_eq!(status, 200);
    assert!(
        found.contains(&format!("/services/{SSC}\"")),
        "the search finds the service"
    );
    let (_, born) = anonymous(&s, "/services?event=newborn&lang=en").await;
    assert!(born.contains("Life event: A baby is born"), "{born}");
    assert_eq!(english_ui(&born, &[]), Vec::<String>::new());

    // The guide: limits, materials (免提交), places; the apply button or why not.
    let (status, guide) = anonymous(&s, &format!("/services/{SSC}?lang=en")).await;
    assert_eq!(status, 200);
    for want in [
        "Promised time limit",
        "Legal time limit",
        "Not needed",
        "Where and when",
        "Log in to apply online",
    ] {
        assert!(guide.contains(want), "the guide lacks {want}");
    }
    // the legal basis and some addresses exist in Chinese only (data, marked lang="zh-CN")
    assert!(guide.contains("<li lang=\"zh-CN\">"));
    assert_eq!(
        english_ui(
            &guide,
            &[
                "《中华人民共和国社会保险法》第五十八条",
                "呼伦贝尔市海拉尔区政务服务中心三楼"
            ]
        ),
        Vec::<String>::new()
    );
    // citizen-zhao's assurance is too low for 无犯罪记录证明 (level 3): says why, where to go
    let zhao = Session::new(&s, "/auth/login", "citizen-zhao").await;
    let (_, guide) = page(&zhao, "/services/11150700MB15300021-GG-0001?lang=en").await;
    assert!(guide.contains("You cannot apply online"), "{guide}");
    assert!(guide.contains("assurance level 3"), "the reason is named");
    assert!(guide.contains("Go to "), "where to go instead");
    assert!(!guide.contains("/services/11150700MB15300021-GG-0001/apply\""));
    let (_, list) = page(&zhao, "/services?q=无犯罪&lang=en").await;
    assert!(
        list.contains("You cannot apply online"),
        "the list says so too"
    );
    let (status, _) = anonymous(&s, "/services/NO-SUCH").await;
    assert_eq!(status, 404);
}

async fn the_public_status_query_explains_its_limit(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let case_no = lodge(&citizen).await;
    let (_, case) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    let code = case["query_code"].as_str().expect("code").to_owned();

    let (status, ok) = anonymous(
        &s,
        &format!("/status?case_no={case_no}&query_code={code}&lang=en"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(ok.contains(&case_no) && ok.contains("Submitted"), "{ok}");
    assert!(
        !ok.contains("王小明"),
        "no personal data in the public answer"
    );
    assert_eq!(english_ui(&ok, &[]), Vec::<String>::new());

    let (status, missing) = anonymous(&s, "/status?case_no=&query_code=").await;
    assert_eq!(status, 422);
    assert!(missing.contains("href=\"#case_no\"") && missing.contains("href=\"#query_code\""));

    let mut last = (0, String::new());
    for _ in 0..7 {
        last = anonymous(
            &s,
            &format!("/status?case_no={case_no}&query_code=000000&lang=en"),
        )
        .await;
    }
    assert_eq!(last.0, 429, "too many wrong codes");
    assert!(
        last.1.contains("try again in 15 minutes"),
        "the wait is explained: {}",
        last.1
    );
    assert!(last.1.contains("<form"), "a page, not a bare 429");
}

async fn my_case_correction_withdrawal_and_rating(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let case_no = lodge(&citizen).await;

    let (status, list) = page(&citizen, "/me/cases?lang=en").await;
    assert_eq!(status, 200);
    assert!(list.contains(&format!("/me/cases/{case_no}")), "{list}");
    assert!(list.contains("tag blue"), "a status tag");
    assert_eq!(english_ui(&list, &[]), Vec::<String>::new());

    // A correction is asked: the case page says what, and takes the upload.
    let (st, _) = step(&clerk, &case_no, json!({ "action": "accept" })).await;
    assert_eq!(st, 200);
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let (st, _) = step(
        &officer,
        &case_no,
        json!({ "action": "request_correction", "note": "照片不清晰，请重新上传" }),
    )
    .await;
    assert_eq!(st, 200);
    let (status, html) = page(&citizen, &format!("/me/cases/{case_no}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("照片不清晰，请重新上传"),
        "what is asked is shown"
    );
    assert!(html.contains(&format!("action=\"/me/cases/{case_no}/correction\"")));
    assert!(
        html.contains("150702********3025"),
        "the ID number is masked"
    );
    assert!(!html.contains("150702198506123025"));

    let part = reqwest::multipart::Part::bytes(jpeg(9)).file_name("new.jpg");
    let mp = reqwest::multipart::Form::new()
        .text("_csrf", citizen.csrf.clone())
        .part("file.photo", part)
        .text("note", "已重新拍照");
    let r = citizen
        .b
        .client
        .post(format!("{}/me/cases/{case_no}/correction", citizen.base))
        .header("origin", &citizen.base)
        .multipart(mp)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let (_, case) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    assert_ne!(
        case["status"]["code"], "correction_requested",
        "the correction was taken: {case}"
    );
    assert!(case["materials"].to_string().contains("new.jpg"), "{case}");

    // Someone else's case is not found, on the page and for its actions.
    let li = Session::new(&s, "/auth/login", "citizen-li").await;
    let (status, _) = page(&li, &format!("/me/cases/{case_no}")).await;
    assert_eq!(status, 404);
    let r = form(
        &li,
        &format!("/me/cases/{case_no}/withdraw"),
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = form(
        &li,
        &format!("/me/cases/{case_no}/rating"),
        &[("rating", "5")],
    )
    .await;
    assert_eq!(r.status(), 404);

    // The department concludes; rating: below 3 stars needs a comment, the field is named.
    let (st, body) = step(
        &officer,
        &case_no,
        json!({ "action": "conclude", "result": "approved", "note": "准予发卡" }),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (_, html) = page(&citizen, &format!("/me/cases/{case_no}")).await;
    assert!(
        html.contains(&format!("action=\"/me/cases/{case_no}/rating\"")),
        "a concluded case can be rated"
    );
    assert!(
        !html.contains(&format!("/me/cases/{case_no}/withdraw")),
        "and no longer withdrawn"
    );
    // a form without the session's token is refused
    let r = citizen
        .b
        .client
        .post(format!("{}/me/cases/{case_no}/rating", citizen.base))
        .header("origin", &citizen.base)
        .form(&[("_csrf", "forged"), ("rating", "5")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    let r = form(
        &citizen,
        &format!("/me/cases/{case_no}/rating"),
        &[("rating", "2"), ("comment", "")],
    )
    .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.expect("body");
    assert!(
        html.contains("href=\"#comment\""),
        "the error summary links the comment: {html}"
    );
    assert!(html.contains("aria-invalid=\"true\""));
    assert!(
        html.contains("value=\"2\" checked"),
        "the chosen level is kept"
    );
    let r = form(
        &citizen,
        &format!("/me/cases/{case_no}/rating"),
        &[("rating", "2"), ("comment", "等待太久")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, case) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    assert_eq!(case["rating"]["level"], 2);
    let (_, html) = page(&citizen, &format!("/me/cases/{case_no}?lang=en")).await;
    assert!(html.contains("Your rating: 2 stars"));
    assert_eq!(
        english_ui(
            &html,
            &[
                "王小明",
                "等待太久",
                "照片不清晰，请重新上传",
                "已重新拍照",
                "准予发卡",
                "呼伦贝尔市海拉尔区胜利大街1号"
            ]
        ),
        Vec::<String>::new()
    );

    // Withdrawal needs the confirmation page's answer.
    let other = lodge(&citizen).await;
    let (status, confirm) = page(&citizen, &format!("/me/cases/{other}/withdraw?lang=en")).await;
    assert_eq!(status, 200);
    assert!(confirm.contains("Yes, withdraw it"));
    let r = form(&citizen, &format!("/me/cases/{other}/withdraw"), &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/me/cases/{other}/withdraw")
    );
    let (_, case) = citizen.get(&format!("/api/v1/cases/{other}")).await;
    assert_eq!(
        case["status"]["code"], "submitted",
        "not withdrawn without confirming"
    );
    let r = form(
        &citizen,
        &format!("/me/cases/{other}/withdraw"),
        &[("confirm", "yes"), ("note", "不需要了")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, case) = citizen.get(&format!("/api/v1/cases/{other}")).await;
    assert_eq!(case["status"]["code"], "withdrawn");
}

async fn a_window_case_appears_in_my_cases_after_login(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let (_, photo) = clerk.upload("walkin.jpg", jpeg(3)).await;
    let intake = json!({
        "service_code": SSC,
        "applicant": { "kind": "person", "name": "王小明", "id_number": "150702198506123025" },
        "values": valid_values(),
        "materials": [{ "material": "id_card", "substitute": true }, { "material": "photo", "upload_id": photo["id"] }],
    });
    let (status, lodged) = clerk.post("/api/staff/v1/cases", &intake).await;
    assert_eq!(status, 201, "{lodged}");
    let case_no = lodged["case_no"].as_str().expect("case_no").to_owned();

    // Stored as a blind index, never the number; a case lodged before the index existed
    // (emulated: index removed) is indexed and found all the same.
    let index = forget_index(&s, &case_no).await;
    assert_eq!(index.len(), 64, "an HMAC in hex: {index}");
    assert!(!index.contains("150702198506123025"));

    // someone else does not get it
    let li = Session::new(&s, "/auth/login", "citizen-li").await;
    let (_, list) = page(&li, "/me/cases").await;
    assert!(!list.contains(&case_no));

    let wang = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (status, list) = page(&wang, "/me/cases").await;
    assert_eq!(status, 200);
    assert!(
        list.contains(&case_no),
        "the window case is in my cases: {list}"
    );
    let (status, html) = page(&wang, &format!("/me/cases/{case_no}")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&case_no));
    let (_, api) = wang.get("/api/v1/cases").await;
    assert!(
        api["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|c| c["case_no"] == case_no.as_str()),
        "the API lists it too"
    );
    // and it is theirs to act on: withdraw
    let r = form(
        &wang,
        &format!("/me/cases/{case_no}/withdraw"),
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, case) = wang.get(&format!("/api/v1/cases/{case_no}")).await;
    assert_eq!(case["status"]["code"], "withdrawn");
}

/// Reads a case's stored applicant index and then removes it, straight in the database.
async fn forget_index(s: &LoginSetup, case_no: &str) -> String {
    use sqlx::{Connection, Row};
    let url = s.app.state.settings.database_url();
    macro_rules! run {
        ($conn:ty, $select:literal, $update:literal) => {{
            let mut c = <$conn>::connect(&url).await.expect("connect");
            let r = sqlx::query($select)
                .bind(case_no)
                .fetch_one(&mut c)
                .await
                .expect("case");
            let index: Option<String> = r.get("applicant_index");
            sqlx::query($update)
                .bind(case_no)
                .execute(&mut c)
                .await
                .expect("update");
            index.unwrap_or_default()
        }};
    }
    if url.starts_with("postgres") {
        run!(
            sqlx::PgConnection,
            "SELECT applicant_index FROM cases WHERE case_no = $1",
            "UPDATE cases SET applicant_index = NULL WHERE case_no = $1"
        )
    } else {
        run!(
            sqlx::SqliteConnection,
            "SELECT applicant_index FROM cases WHERE case_no = ?",
            "UPDATE cases SET applicant_index = NULL WHERE case_no = ?"
        )
    }
}

async fn enterprise_users_see_and_act_for_their_enterprise(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    // an enterprise service taken in at the window for 呼伦贝尔草原乳业有限公司
    let service = "11150700MB1530001X-XK-0002"; // 企业变更登记
    let (_, form_pdf) = clerk
        .upload("form.pdf", crate::cases::pdf("application form"))
        .await;
    let (_, resolution) = clerk
        .upload("resolution.pdf", crate::cases::pdf("resolution"))
        .await;
    let intake = json!({
        "service_code": service,
        "applicant": { "kind": "enterprise", "name": "呼伦贝尔草原乳业有限公司", "id_number": "150702200108081229", "uscc": "91150700MA0N2C3D40" },
        "values": {
            "enterprise_uscc": "91150700MA0N2C3D40",
            "enterprise_name": "呼伦贝尔草原乳业有限公司",
            "legal_rep": "陈静",
            "change_items": ["scope"],
            "new_business_scope": "乳制品生产、销售",
            "resolution_date": "2026-01-05",
            "contact_name": "陈静",
            "contact_phone": "13800000009",
        },
        "materials": [
            { "material": "application_form", "upload_id": form_pdf["id"] },
            { "material": "resolution", "upload_id": resolution["id"] },
            { "material": "business_licence", "substitute": true },
        ],
    });
    let (status, lodged) = clerk.post("/api/staff/v1/cases", &intake).await;
    assert_eq!(status, 201, "{lodged}");
    let case_no = lodged["case_no"].as_str().expect("case_no").to_owned();
    let chen = Session::new(&s, "/auth/login", "enterprise-chen").await;
    let (status, list) = page(&chen, "/me/cases?lang=en").await;
    assert_eq!(status, 200);
    assert!(
        list.contains(&case_no),
        "the enterprise's case is listed: {list}"
    );
    assert!(
        list.contains("You are acting for"),
        "the page says whom they act for"
    );
    let (status, _) = page(&chen, &format!("/me/cases/{case_no}")).await;
    assert_eq!(status, 200);
    let wang = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (status, _) = page(&wang, &format!("/me/cases/{case_no}")).await;
    assert_eq!(status, 404, "a person does not see an enterprise's case");
    // and the enterprise user acts for it: withdraws it
    let r = form(
        &chen,
        &format!("/me/cases/{case_no}/withdraw"),
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, case) = chen.get(&format!("/api/v1/cases/{case_no}")).await;
    assert_eq!(case["status"]["code"], "withdrawn");
}

async fn drafts_messages_and_data_access(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (status, d) = citizen
        .post(
            "/api/v1/drafts",
            &json!({ "service_code": SSC, "values": { "phone": "13800000001" } }),
        )
        .await;
    assert_eq!(status, 201, "{d}");
    let id = d["id"].as_str().expect("id").to_owned();
    let (status, html) = page(&citizen, "/me/drafts?lang=en").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("/services/{SSC}/apply?draft={id}")),
        "resume link"
    );
    assert!(html.contains(&format!("/me/drafts/{id}/delete")));
    assert_eq!(english_ui(&html, &[]), Vec::<String>::new());
    let (status, confirm) = page(&citizen, &format!("/me/drafts/{id}/delete")).await;
    assert_eq!(status, 200);
    assert!(confirm.contains("method=\"post\""));
    let other = Session::new(&s, "/auth/login", "citizen-li").await;
    let r = form(&other, &format!("/me/drafts/{id}/delete"), &[]).await;
    assert_eq!(r.status(), 404, "not someone else's draft");
    let r = form(&citizen, &format!("/me/drafts/{id}/delete"), &[]).await;
    assert_eq!(r.status(), 303);
    let (_, list) = citizen.get("/api/v1/drafts").await;
    assert_eq!(list["items"], json!([]));

    // messages: a lodged case writes one
    let case_no = lodge(&citizen).await;
    let (status, html) = page(&citizen, "/me/messages").await;
    assert_eq!(status, 200);
    assert!(html.contains(&case_no), "{html}");

    // who read my data: a prefill read is one row
    let (status, html) = page(&citizen, "/me/data-access?lang=en").await;
    assert_eq!(status, 200);
    assert!(html.contains("Who read my data"));
    let rows = html.matches("<tr class=\"read\"").count();
    let (_, api) = citizen.get("/api/v1/me/data-access").await;
    let records = api["records"].as_array().map(Vec::len).unwrap_or(0);
    assert!(rows <= records, "{rows} rows for {records} records");

    // not logged in: to the login, coming back here
    let (status, _) = anonymous(&s, "/me/cases").await;
    assert_eq!(status, 303);
    let v: Value = json!(null);
    let _ = v;
}
