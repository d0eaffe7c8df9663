//! The department officer's desk through HTTP, as a browser uses it: the worklist, the
//! case page, and the steps (start review, suspend with the clock paused, resume,
//! conclude with a result document), which the citizen then sees; another department's
//! officer cannot open the case; the English pages carry no Chinese interface text.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::cases::{SSC, Session, jpeg, step, valid_values};
use crate::harness::Backend;
use crate::login::{LoginSetup, with_dev_idp};

backend_tests!(
    an_officer_reviews_suspends_resumes_and_concludes_in_the_browser,
    an_officer_concludes_the_departments_part_of_a_joint_case,
);

/// A citizen applies for a social security card and the clerk accepts it.
pub(crate) async fn accepted_case(s: &LoginSetup, citizen: &Session) -> String {
    let (_, photo) = citizen.upload("p.jpg", jpeg(3)).await;
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

/// A page as HTML: its status and text.
pub(crate) async fn page(who: &Session, path: &str) -> (u16, String) {
    let r = who
        .b
        .client
        .get(format!("{}{path}", who.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    (r.status().as_u16(), r.text().await.expect("text"))
}

/// Posts a step form (multipart, as the page's form does); answers the status and the
/// redirect's target or the page.
async fn post_step(
    who: &Session,
    case_no: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, Vec<u8>)>,
    csrf: Option<&str>,
) -> (u16, String) {
    let mut form =
        reqwest::multipart::Form::new().text("_csrf", csrf.unwrap_or(&who.csrf).to_owned());
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    if let Some((name, bytes)) = file {
        form = form.part(
            "result_document",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
    }
    let r = who
        .b
        .client
        .post(format!("{}/desk/cases/{case_no}/step", who.base))
        .header("accept", "text/html")
        .header("x-csrf-token", &who.csrf)
        .multipart(form)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    (
        status,
        location.unwrap_or(r.text().await.unwrap_or_default()),
    )
}

/// The link to the result document on the case page.
fn mine_doc_href(html: &str) -> String {
    let end = html
        .find("\">decision.jpg</a>")
        .expect("a link to the document");
    let start = html[..end].rfind("href=\"").expect("href") + "href=\"".len();
    // the page escapes `/` in attribute values, as a browser reads them back
    html[start..end].replace("&#x2f;", "/")
}

/// Chinese characters left in a page once the data it shows is taken out.
pub(crate) fn chinese_left(html: &str, data: &[&str]) -> Vec<String> {
    // the language switch names Chinese in Chinese; the filing number is a number in
    // its own script
    let mut rest = html.replace("中文", "").replace("蒙ICP备", "");
    for d in data {
        rest = rest.replace(d, "");
    }
    let mut found = Vec::new();
    for line in rest.lines() {
        if line.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) {
            found.push(line.trim().to_owned());
        }
    }
    found
}

async fn an_officer_reviews_suspends_resumes_and_concludes_in_the_browser(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let case_no = accepted_case(&s, &citizen).await;
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;

    // the worklist shows the accepted case with its deadline in words
    let (status, list) = page(&officer, "/desk/cases").await;
    assert_eq!(status, 200, "{list}");
    assert!(list.contains(&case_no), "the case is on the worklist");
    assert!(
        list.contains("正常"),
        "the deadline badge says on time: {list}"
    );
    let (_, suspended_only) = page(&officer, "/desk/cases?state=suspended").await;
    assert!(!suspended_only.contains(&case_no), "filtered by status");
    let (_, paused_only) = page(&officer, "/desk/cases?deadline=paused").await;
    assert!(
        !paused_only.contains(&case_no),
        "filtered by deadline state"
    );

    // the case page offers the review
    let (status, html) = page(&officer, &format!("/desk/cases/{case_no}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("value=\"start_review\""), "{html}");
    assert!(html.contains("150702********3025"), "the ID number masked");
    assert!(!html.contains("150702198506123025"), "never in full");

    // a forged form (wrong token) changes nothing
    let (status, _) = post_step(
        &officer,
        &case_no,
        &[("action", "start_review")],
        None,
        Some("forged"),
    )
    .await;
    assert_eq!(status, 403);

    let (status, to) = post_step(
        &officer,
        &case_no,
        &[("action", "start_review")],
        None,
        None,
    )
    .await;
    assert_eq!(status, 303, "{to}");
    assert_eq!(to, format!("/desk/cases/{case_no}?done=start_review"));

    // suspending needs a reason: the page comes back with the error at the field
    let (status, html) = post_step(&officer, &case_no, &[("action", "suspend")], None, None).await;
    assert_eq!(status, 422);
    assert!(html.contains("error-summary"), "{html}");
    assert!(
        html.contains("href=\"#note-suspend\""),
        "linked to the field"
    );
    let (status, _) = post_step(
        &officer,
        &case_no,
        &[("action", "suspend"), ("note", "On-site check needed")],
        None,
        None,
    )
    .await;
    assert_eq!(status, 303);
    let (_, html) = page(&officer, &format!("/desk/cases/{case_no}")).await;
    assert!(
        html.contains("id=\"clock-paused\""),
        "the clock is shown paused"
    );
    assert!(html.contains("计时已暂停"), "{html}");
    assert!(html.contains("value=\"resume\""));
    let (_, paused) = page(&officer, "/desk/cases?deadline=paused").await;
    assert!(paused.contains(&case_no), "listed as paused");

    let (status, _) = post_step(
        &officer,
        &case_no,
        &[("action", "resume"), ("note", "Check done")],
        None,
        None,
    )
    .await;
    assert_eq!(status, 303);
    let (_, html) = page(&officer, &format!("/desk/cases/{case_no}")).await;
    assert!(
        !html.contains("id=\"clock-paused\""),
        "the clock runs again"
    );

    // concluding without a decision is refused at the field; with one, and a document
    let (status, html) = post_step(&officer, &case_no, &[("action", "conclude")], None, None).await;
    assert_eq!(status, 422);
    assert!(html.contains("href=\"#result-approved\""), "{html}");
    let (status, to) = post_step(
        &officer,
        &case_no,
        &[
            ("action", "conclude"),
            ("result", "approved"),
            ("note", "Granted"),
        ],
        Some(("decision.jpg", jpeg(9))),
        None,
    )
    .await;
    assert_eq!(status, 303, "{to}");
    let (_, html) = page(&officer, &format!("/desk/cases/{case_no}")).await;
    assert!(html.contains("id=\"result\""), "{html}");
    assert!(html.contains("decision.jpg"), "the result document is kept");
    assert!(html.contains("id=\"no-actions\""), "nothing left to do");
    // the officer downloads it again; another department cannot
    let doc = mine_doc_href(&html);
    let r = officer
        .b
        .client
        .get(format!("{}{doc}", officer.base))
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("bytes").to_vec(), jpeg(9));

    // the citizen sees the decision and the document
    let (status, mine) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    assert_eq!(status, 200);
    assert_eq!(mine["status"]["code"], "approved");
    assert_eq!(mine["result"], "approved");
    assert!(
        mine["materials"]
            .as_array()
            .expect("materials")
            .iter()
            .any(|m| m["material_id"] == "result_document" && m["file_name"] == "decision.jpg"),
        "{mine}"
    );
    let history: Vec<Value> = mine["timeline"].as_array().expect("timeline").clone();
    let actions: Vec<&str> = history
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "submit",
            "accept",
            "start_review",
            "suspend",
            "resume",
            "conclude"
        ]
    );

    // another department's officer finds neither the case nor it on their worklist
    let other = Session::new(&s, "/auth/staff/login", "officer-zhou").await;
    let (status, _) = page(&other, &format!("/desk/cases/{case_no}")).await;
    assert_eq!(status, 404);
    let (status, _) = post_step(&other, &case_no, &[("action", "resume")], None, None).await;
    assert_eq!(status, 404);
    let (status, _) = page(&other, &doc).await;
    assert_eq!(status, 404, "not another department's file");
    let (_, theirs) = page(&other, "/desk/cases?state=all").await;
    assert!(!theirs.contains(&case_no));
    // nor does a citizen, nor a stranger (sent to the staff login)
    let (status, _) = page(&citizen, "/desk/cases").await;
    assert_eq!(status, 403);
    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = stranger
        .get(s.app.url("/desk/cases"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .expect("location")
            .starts_with("/auth/staff/login")
    );

    // in English, nothing but the data is Chinese
    let address = valid_values()["mailing_address"]
        .as_str()
        .expect("address")
        .to_owned();
    let data = ["王小明", "马强", address.as_str()];
    for path in [
        format!("/desk/cases/{case_no}?lang=en"),
        "/desk/cases?state=all&lang=en".to_owned(),
    ] {
        let (status, html) = page(&officer, &path).await;
        assert_eq!(status, 200);
        assert!(html.contains("<html lang=\"en\""));
        let left = chinese_left(&html, &data);
        assert!(
            left.is_empty(),
            "{path}: Chinese text in English: {left:#?}"
        );
    }
}

async fn an_officer_concludes_the_departments_part_of_a_joint_case(b: Backend) {
    const NEWBORN: &str = "11150700MB15300047-QT-0001"; // 出生一件事, led by 卫健委
    let s = with_dev_idp(b, &[("worker_in_serve", "false")]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-li").await;
    let birth = (onewindow::usecases::today() - chrono::Duration::days(10)).to_string();
    let (status, lodged) = citizen
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
    let case_no = lodged["case_no"].as_str().expect("case_no").to_owned();
    // the leading department's system accepts it
    let lead =
        crate::exchange::token(&s, "11150700MB15300047", &["cases:read", "cases:write"]).await;
    let r = s
        .app
        .client
        .post(
            s.app
                .url(&format!("/api/dept/v1/cases/{case_no}/transitions")),
        )
        .bearer_auth(lead)
        .json(&json!({ "action": "accept" }))
        .send()
        .await
        .expect("accept");
    assert_eq!(r.status(), 200);

    // the social security bureau's officer finds it among the joint cases and concludes
    // the bureau's part; the case waits for the other departments
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let (_, list) = page(&officer, "/desk/cases").await;
    assert!(list.contains("id=\"desk-joint\""), "{list}");
    assert!(list.contains(&case_no));
    assert!(list.contains("待本部门办结"));
    let (status, html) = page(&officer, &format!("/desk/cases/{case_no}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("id=\"joint-parts\""),
        "each department's part is shown"
    );
    let (status, to) = post_step(
        &officer,
        &case_no,
        &[("action", "conclude"), ("result", "approved")],
        None,
        None,
    )
    .await;
    assert_eq!(status, 303, "{to}");
    let (_, html) = page(&officer, &format!("/desk/cases/{case_no}?lang=en")).await;
    let parts = &html[html.find("id=\"joint-parts\"").expect("parts")..];
    let parts = &parts[..parts.find("</table>").expect("end")];
    assert_eq!(
        parts.matches("Granted").count(),
        1,
        "one part concluded: {parts}"
    );
    assert_eq!(
        parts.matches("In progress").count(),
        3,
        "three to go: {parts}"
    );
    let (_, mine) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    assert_eq!(
        mine["status"]["code"], "accepted",
        "the case waits for the others"
    );
    let (_, list) = page(&officer, "/desk/cases").await;
    assert!(
        list.contains("本部门已办结"),
        "the worklist says the part is done"
    );
    // a second conclusion of the same part is refused
    let (status, _) = post_step(
        &officer,
        &case_no,
        &[("action", "conclude"), ("result", "approved")],
        None,
        None,
    )
    .await;
    assert_eq!(status, 409);
}
