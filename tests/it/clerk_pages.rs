//! The window clerk's pages through HTTP, as a browser uses them: the worklist and its
//! filters, the case page (masked ID number, an audited reveal, the steps), the printable
//! notices with their QR code, and a walk-in intake accepted at once.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::cases::{SSC, Session, jpeg, valid_values};
use crate::harness::Backend;
use crate::login::{Browser, with_dev_idp};

backend_tests!(
    the_worklist_filters_and_stays_within_the_hall,
    a_reveal_is_audited_and_notices_print,
    a_walk_in_is_taken_in_and_accepted_at_once,
);

const NEWBORN: &str = "11150700MB15300047-QT-0001"; // a department outside clerk-sun's hall
const WANG_ID: &str = "150702198506123025";

/// Chinese UI words of the clerk's pages that an English page must not show.
const ZH_UI: &[&str] = &[
    "受理工作台",
    "办件编号",
    "申请人",
    "状态",
    "时限",
    "筛选",
    "可办理的操作",
    "通知书",
    "查询码",
    "窗口受理",
];

impl Session {
    /// A page as HTML: status and body.
    async fn page(&self, path: &str) -> (u16, String) {
        let r = self
            .b
            .client
            .get(format!("{}{path}", self.base))
            .header("accept", "text/html")
            .send()
            .await
            .expect("page");
        let status = r.status().as_u16();
        // minijinja escapes `/` in values
        (status, r.text().await.expect("body").replace("&#x2f;", "/"))
    }

    /// A form post from the gateway's own page (its Origin), with the CSRF token unless
    /// `csrf` is false; returns the status, the Location and the body.
    async fn submit(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        csrf: bool,
    ) -> (u16, String, String) {
        let mut form: Vec<(&str, &str)> = Vec::new();
        if csrf {
            form.push(("_csrf", &self.csrf));
        }
        form.extend_from_slice(fields);
        let r = self
            .b
            .client
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .header("accept", "text/html")
            .form(&form)
            .send()
            .await
            .expect("post");
        let status = r.status().as_u16();
        let loc = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (
            status,
            loc,
            r.text().await.expect("body").replace("&#x2f;", "/"),
        )
    }
}

/// citizen-wang applies for a social security card online; the case number.
async fn wang_applies(wang: &Session) -> String {
    let (_, photo) = wang.upload("p.jpg", jpeg(7)).await;
    let (status, lodged) = wang
        .post(
            "/api/v1/cases",
            &json!({ "service_code": SSC, "values": valid_values(), "materials": [
                { "material": "id_card", "substitute": true },
                { "material": "photo", "upload_id": photo["id"] },
            ] }),
        )
        .await;
    assert_eq!(status, 201, "{lodged}");
    lodged["case_no"].as_str().expect("case_no").to_owned()
}

fn english_has_no_chinese_ui(html: &str, what: &str) {
    for zh in ZH_UI {
        assert!(!html.contains(zh), "{what} in English shows {zh:?}");
    }
}

async fn the_worklist_filters_and_stays_within_the_hall(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    // no login: to the staff login and back
    let r = Browser::new().get(&s.app.url("/staff/cases")).await;
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .expect("loc")
            .starts_with("/auth/staff/login")
    );

    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let wang = Session::new(&s, "/auth/login", "citizen-wang").await;
    let online = wang_applies(&wang).await;
    // a walk-in, through the JSON intake
    let (_, photo) = clerk.upload("w.jpg", jpeg(3)).await;
    let (status, lodged) = clerk
        .post(
            "/api/staff/v1/cases",
            &json!({
                "service_code": SSC,
                "applicant": { "kind": "person", "name": "孟淑华", "id_number": "150702199401162284" },
                "values": valid_values(),
                "materials": [{ "material": "id_card", "substitute": true }, { "material": "photo", "upload_id": photo["id"] }],
            }),
        )
        .await;
    assert_eq!(status, 201, "{lodged}");
    let window = lodged["case_no"].as_str().expect("case_no").to_owned();
    // a case of a department outside the hall
    let li = Session::new(&s, "/auth/login", "citizen-li").await;
    let birth = (onewindow::usecases::today() - chrono::Duration::days(10)).to_string();
    let (status, lodged) = li
        .post(
            "/api/v1/cases",
            &json!({
                "service_code": NEWBORN,
                "values": {
                    "declarant_name": "李芳", "declarant_id_number": "150702199203151541", "declarant_phone": "13800000002",
                    "declarant_relation": "mother", "other_parent_name": "张伟", "other_parent_id_number": "150702199009093077",
                    "baby_name": "张小宝", "baby_gender": "1", "baby_birth_date": birth, "birth_certificate_no": "P123456789",
                    "ethnicity_follows": "father", "hukou_follows": "father", "hukou_address": "呼伦贝尔市海拉尔区胜利大街1号",
                    "bundle_items": ["vaccination", "hukou", "medical_insurance", "social_security_card"],
                },
                "materials": [
                    { "material": "birth_medical_certificate", "substitute": true },
                    { "material": "parents_id_cards", "substitute": true },
                    { "material": "household_register", "substitute": true },
                ],
            }),
        )
        .await;
    assert_eq!(status, 201, "{lodged}");
    let elsewhere = lodged["case_no"].as_str().expect("case_no").to_owned();

    let (status, all) = clerk.page("/staff/cases").await;
    assert_eq!(status, 200);
    assert!(
        all.contains(&online) && all.contains(&window),
        "both of the hall's cases"
    );
    assert!(!all.contains(&elsewhere), "not another hall's case");
    assert!(
        all.contains("未开始计时"),
        "a submitted case's clock has not started"
    );
    let (status, page) = clerk.page(&format!("/staff/cases/{elsewhere}")).await;
    assert_eq!(
        status, 404,
        "a case outside the hall's departments is not found"
    );
    assert!(!page.contains("张小宝"));

    let shows = |html: &str| (html.contains(&online), html.contains(&window));
    let (_, html) = clerk.page("/staff/cases?channel=window").await;
    assert_eq!(shows(&html), (false, true), "by channel");
    let (_, html) = clerk.page("/staff/cases?q=%E5%AD%9F%E6%B7%91").await; // 孟淑
    assert_eq!(shows(&html), (false, true), "by applicant name");
    let part = online[online.len() - 6..].to_lowercase();
    let (_, html) = clerk.page(&format!("/staff/cases?q={part}")).await;
    assert_eq!(
        shows(&html),
        (true, false),
        "by part of the case number, any case"
    );
    let (_, html) = clerk.page("/staff/cases?status=accepted").await;
    assert_eq!(shows(&html), (false, false), "by status");
    let (status, html) = clerk
        .page("/staff/cases?status=nonsense&deadline=whenever&page=-3&sort=x&extra=1")
        .await;
    assert_eq!(
        status, 200,
        "nonsense in the query is ignored, not an error"
    );
    assert_eq!(shows(&html), (true, true));

    // accepted at the window: the clock runs, 15 working days ahead are "on time"
    let (status, loc, _) = clerk
        .submit(
            &format!("/staff/cases/{online}/step"),
            &[("action", "accept")],
            true,
        )
        .await;
    assert_eq!(
        (status, loc.as_str()),
        (303, format!("/staff/cases/{online}?done=accept").as_str())
    );
    let (_, html) = clerk.page("/staff/cases?status=accepted").await;
    assert_eq!(shows(&html), (true, false));
    let (_, html) = clerk.page("/staff/cases?deadline=on_time").await;
    assert_eq!(shows(&html), (true, false), "by deadline state");
    assert!(html.contains("正常"), "the badge says its state in words");
    let (_, html) = clerk.page("/staff/cases?deadline=overdue").await;
    assert_eq!(shows(&html), (false, false));
    let (_, html) = clerk.page("/staff/cases?sort=due").await;
    let (a, w) = (html.find(&online), html.find(&window));
    assert!(a < w, "soonest due first, cases without a due date last");

    // English: wholly English
    let (status, html) = clerk.page("/staff/cases?lang=en").await;
    assert_eq!(status, 200);
    assert!(html.contains("Worklist") && html.contains("On time"));
    english_has_no_chinese_ui(&html, "the worklist");
    let (_, html) = clerk.page(&format!("/staff/cases/{online}?lang=en")).await;
    assert!(html.contains("What you can do") || html.contains("Case "));
    english_has_no_chinese_ui(&html, "the case page");

    // a citizen is not staff
    let (status, _) = wang.page("/staff/cases").await;
    assert_eq!(status, 403);
}

async fn a_reveal_is_audited_and_notices_print(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let wang = Session::new(&s, "/auth/login", "citizen-wang").await;
    let case_no = wang_applies(&wang).await;

    let (status, html) = clerk.page(&format!("/staff/cases/{case_no}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("150702********3025"), "masked");
    assert!(!html.contains(WANG_ID), "never in full before the reveal");
    assert!(
        html.contains("name=\"action\" value=\"accept\""),
        "accept is offered"
    );
    assert!(html.contains("/materials/"), "the photo can be previewed");

    // the material is served inline to staff
    let href = html
        .split("src=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a preview")
        .to_owned();
    let r = clerk
        .b
        .client
        .get(format!("{}{href}", clerk.base))
        .send()
        .await
        .expect("file");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .expect("cd")
            .starts_with("inline")
    );
    let (status, _) = wang.page(&href).await;
    assert_eq!(status, 403, "not to the applicant through the staff route");

    // the reveal: refused without the form's token, then recorded and shown
    let reveal = format!("/staff/cases/{case_no}/reveal");
    let (status, _, _) = clerk.submit(&reveal, &[], false).await;
    assert_eq!(status, 403);
    let (status, _, html) = clerk.submit(&reveal, &[], true).await;
    assert_eq!(status, 200);
    assert!(html.contains(WANG_ID), "shown in full");
    let (status, trail) = wang.get("/api/v1/me/data-access").await;
    assert_eq!(status, 200);
    let reveals: Vec<&Value> = trail["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["purpose"] == "staff_reveal_id")
        .collect();
    assert_eq!(reveals.len(), 1, "one reveal, one record: {trail}");
    assert_eq!(reveals[0]["case_no"], case_no.as_str());
    assert_eq!(reveals[0]["reader_kind"], "clerk");
    let (_, page) = wang.page("/me/data-access").await;
    assert!(page.contains("查看完整身份证号"), "the citizen reads why");

    // no notice before its step
    let (status, _) = clerk
        .page(&format!("/staff/cases/{case_no}/notice/accepted"))
        .await;
    assert_eq!(status, 409);
    let (status, _) = clerk
        .page(&format!("/staff/cases/{case_no}/notice/other"))
        .await;
    assert_eq!(status, 404);

    // a correction needs to say what; the form keeps what was chosen
    let step = format!("/staff/cases/{case_no}/step");
    let (status, _, html) = clerk
        .submit(&step, &[("action", "request_correction")], true)
        .await;
    assert_eq!(status, 422);
    assert!(html.contains("error-summary") && html.contains("href=\"#note-request_correction\""));
    let (status, _, _) = clerk
        .submit(
            &step,
            &[
                ("action", "request_correction"),
                ("fix", "photo"),
                ("note", "白底照片"),
            ],
            true,
        )
        .await;
    assert_eq!(status, 303);
    let (status, html) = clerk
        .page(&format!("/staff/cases/{case_no}/notice/correction"))
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("补正材料通知书") && html.contains(&case_no));
    assert!(html.contains("<svg") && html.contains("aria-label=\"办件进度查询二维码\""));
    assert!(html.contains("白底照片"), "what to correct");
    assert!(
        html.contains("/status?case_no="),
        "the public query address"
    );
    let (_, wang_case) = wang.get(&format!("/api/v1/cases/{case_no}")).await;
    let code = wang_case["query_code"].as_str().expect("code");
    assert!(html.contains(code), "the query code");
    let (_, html) = clerk
        .page(&format!("/staff/cases/{case_no}/notice/correction?lang=en"))
        .await;
    assert!(html.contains("Notice to correct materials") && html.contains("<svg"));
    english_has_no_chinese_ui(&html, "the correction notice");

    // the citizen corrects; the clerk refuses, then the refusal notice prints
    let (_, photo) = wang.upload("p2.jpg", jpeg(9)).await;
    let (status, body) = wang
        .post(
            &format!("/api/v1/cases/{case_no}/correction"),
            &json!({ "note": "已换白底照片", "materials": [{ "material": "photo", "upload_id": photo["id"] }] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = clerk
        .submit(
            &step,
            &[("action", "not_accept"), ("note", "非本市参保人员")],
            true,
        )
        .await;
    assert_eq!(status, 303);
    let (status, html) = clerk
        .page(&format!("/staff/cases/{case_no}/notice/not-accepted"))
        .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("不予受理通知书") && html.contains("非本市参保人员") && html.contains("<svg")
    );

    // an accepted case's notice
    let other = wang_applies(&wang).await;
    let (status, _, _) = clerk
        .submit(
            &format!("/staff/cases/{other}/step"),
            &[("action", "accept")],
            true,
        )
        .await;
    assert_eq!(status, 303);
    let (status, html) = clerk
        .page(&format!("/staff/cases/{other}/notice/accepted"))
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("受理通知书") && html.contains(&other) && html.contains("<svg"));
}

async fn a_walk_in_is_taken_in_and_accepted_at_once(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let (status, html) = clerk.page("/staff/intake").await;
    assert_eq!(status, 200);
    assert!(html.contains(SSC), "the hall's window services are offered");
    let (status, html) = clerk.page(&format!("/staff/intake?service={SSC}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("action=\"/staff/intake/lookup\""));

    // the lookup: a bad number is named at its field; a good one fills the form
    let (status, _, html) = clerk
        .submit(
            "/staff/intake/lookup",
            &[
                ("service", SSC),
                ("id_number", "123"),
                ("purpose", "窗口受理核验"),
            ],
            true,
        )
        .await;
    assert_eq!(status, 422);
    assert!(html.contains("href=\"#id_number\""));
    let (status, _, html) = clerk
        .submit(
            "/staff/intake/lookup",
            &[
                ("service", SSC),
                ("id_number", WANG_ID),
                ("purpose", "窗口受理核验"),
            ],
            true,
        )
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("王小明"), "prefilled from the base library");
    let wang = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (_, trail) = wang.get("/api/v1/me/data-access").await;
    assert!(
        trail["records"]
            .as_array()
            .expect("records")
            .iter()
            .any(|r| r["reader_kind"] == "clerk" && r["purpose"] == "窗口受理核验"),
        "the lookup is in the citizen's trail: {trail}"
    );

    // submit the walk-in: values, a scanned photo, the ID card stood in for
    let submit = |fields: Vec<(String, String)>, scan: bool| {
        let mut form = reqwest::multipart::Form::new().text("_csrf", clerk.csrf.clone());
        for (k, v) in fields {
            form = form.text(k, v);
        }
        if scan {
            form = form.part(
                "file.photo",
                reqwest::multipart::Part::bytes(jpeg(5)).file_name("scan.jpg"),
            );
        }
        clerk
            .b
            .client
            .post(format!("{}/staff/intake", clerk.base))
            .header("origin", &clerk.base)
            .header("accept", "text/html")
            .multipart(form)
            .send()
    };
    let mut fields: Vec<(String, String)> = vec![
        ("service".into(), SSC.into()),
        ("applicant-kind".into(), "person".into()),
        ("applicant-id_number".into(), WANG_ID.into()),
        ("applicant-phone".into(), "13800000001".into()),
        ("substitute.id_card".into(), "true".into()),
    ];
    let mut values = valid_values();
    // as the base library has it (authoritative once looked up)
    values["gender"] = json!("2");
    for (k, v) in values.as_object().expect("values") {
        fields.push((format!("f-{k}"), v.as_str().expect("text").to_owned()));
    }
    let r = submit(fields.clone(), true).await.expect("post");
    assert_eq!(r.status(), 422, "the applicant's name is missing");
    let html = r.text().await.expect("body");
    assert!(
        html.contains("href=\"#applicant-name\""),
        "named at its field"
    );
    assert!(html.contains("13800000001"), "what was typed is kept");

    // the scan is kept: sent again without choosing the file
    let kept = html
        .split("name=\"keep.photo\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the scan is kept")
        .to_owned();
    fields.push(("keep.photo".into(), kept));
    fields.push(("applicant-name".into(), "王小明".into()));
    let r = submit(fields, false).await.expect("post");
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let loc = r.headers()["location"].to_str().expect("loc").to_owned();
    assert!(loc.ends_with("?done=intake"), "{loc}");
    let case_no = loc
        .trim_start_matches("/staff/cases/")
        .trim_end_matches("?done=intake")
        .to_owned();
    let (status, html) = clerk.page(&loc).await;
    assert_eq!(status, 200);
    assert!(html.contains("移交后台受理"), "hand over is offered");
    assert!(
        html.contains("name=\"action\" value=\"accept\""),
        "so is accepting at once"
    );
    let (_, case) = clerk.get(&format!("/api/staff/v1/cases/{case_no}")).await;
    assert_eq!(
        (case["channel"].as_str(), case["status"]["code"].as_str()),
        (Some("window"), Some("submitted"))
    );

    let (status, _, _) = clerk
        .submit(
            &format!("/staff/cases/{case_no}/step"),
            &[("action", "accept")],
            true,
        )
        .await;
    assert_eq!(status, 303);
    let (_, case) = clerk.get(&format!("/api/staff/v1/cases/{case_no}")).await;
    assert_eq!(case["status"]["code"], "accepted");

    let (_, html) = clerk
        .page(&format!("/staff/intake?service={SSC}&lang=en"))
        .await;
    assert!(html.contains("Window intake"));
    english_has_no_chinese_ui(&html, "the intake page");
}
