//! The apply journey's pages through HTTP: the form in steps with the draft kept between
//! them (and resumed on coming back), check your answers, the submission from the draft,
//! a value too long named in the error with the rest of the form kept, an authoritative
//! value that does not apply left out, the receipt masking the e-licence number and
//! leading to the case page, the eligibility page, and English pages without Chinese
//! interface text.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::cases::{SSC, Session, jpeg, valid_values};
use crate::harness::Backend;
use crate::login::{LoginSetup, with_dev_idp};

backend_tests!(
    a_long_form_goes_step_by_step_with_its_draft_then_check_and_submit,
    a_value_too_long_is_named_and_the_rest_of_the_form_is_kept,
    an_authoritative_value_that_does_not_apply_may_be_left_out,
    the_english_pages_have_no_chinese_interface_text,
    too_low_an_assurance_level_says_why_and_where_to_go,
    a_rejected_upload_is_not_kept_ticked,
);

const HR: &str = "11150700MB15300034";
const HAN: &str = r"\p{Han}";

async fn setup(b: Backend) -> LoginSetup {
    with_dev_idp(
        b,
        &[
            ("worker_in_serve", "false"),
            ("exchange_allow_http", "true"),
        ],
    )
    .await
}

/// A page as a browser gets it: status, where it redirects, the HTML.
async fn page(c: &Session, path: &str) -> (u16, Option<String>, String) {
    let r =
        c.b.client
            .get(format!("{}{path}", c.base))
            .header("accept", "text/html")
            .send()
            .await
            .expect("page");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    (status, location, r.text().await.expect("html"))
}

/// A form post (`_csrf` first, as the pages send it).
async fn post_form(
    c: &Session,
    path: &str,
    fields: &[(&str, String)],
    files: &[(&str, &str, Vec<u8>)],
) -> (u16, Option<String>, String) {
    let mut form = reqwest::multipart::Form::new().text("_csrf", c.csrf.clone());
    for (k, v) in fields {
        form = form.text((*k).to_owned(), v.clone());
    }
    for (k, name, bytes) in files {
        form = form.part(
            (*k).to_owned(),
            reqwest::multipart::Part::bytes(bytes.clone()).file_name((*name).to_owned()),
        );
    }
    let r =
        c.b.client
            .post(format!("{}{path}", c.base))
            .header("x-csrf-token", &c.csrf)
            .header("accept", "text/html")
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
    (status, location, r.text().await.expect("html"))
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[at..].split('"').next().expect("value").to_owned()
}

fn draft_of(location: &str) -> String {
    location
        .split("draft=")
        .nth(1)
        .and_then(|r| r.split('&').next())
        .unwrap_or_else(|| panic!("no draft in {location}"))
        .to_owned()
}

fn value(key: &str) -> String {
    valid_values()[key].as_str().expect("text").to_owned()
}

async fn drafts(c: &Session) -> Vec<Value> {
    let (st, body) = c.get("/api/v1/drafts").await;
    assert_eq!(st, 200, "{body}");
    body["items"].as_array().expect("items").clone()
}

async fn a_long_form_goes_step_by_step_with_its_draft_then_check_and_submit(b: Backend) {
    let s = setup(b).await;
    let c = Session::new(&s, "/auth/login", "citizen-wang").await;
    let apply = format!("/services/{SSC}/apply");
    let step = format!("/services/{SSC}/apply/step");

    // Step 1 of 4: a few fields, no documents yet.
    let (st, _, html) = page(&c, &apply).await;
    assert_eq!(st, 200, "{html}");
    assert!(html.contains("第 1 步，共 4 步"), "{html}");
    assert!(html.contains("id=\"f-applicant_name\""));
    assert!(!html.contains("id=\"f-bank\""), "bank is on a later step");
    assert!(
        !html.contains("type=\"file\""),
        "documents are their own step"
    );
    let submission = hidden(&html, "_submission");
    let mut first = vec![("_submission", submission.clone()), ("_step", "1".into())];
    for k in [
        "applicant_name",
        "applicant_id_number",
        "gender",
        "phone",
        "application_type",
    ] {
        first.push((k, value(k)));
    }
    let (st, to, html) = post_form(&c, &step, &first, &[]).await;
    assert_eq!(st, 303, "{html}");
    let to = to.expect("to step 2");
    assert!(to.contains("step=2"), "{to}");
    let draft = draft_of(&to);

    // The draft is kept as the drafts API shows it.
    let saved = drafts(&c).await;
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(saved[0]["id"], draft.as_str());
    assert_eq!(saved[0]["values"]["applicant_name"], "王小明");

    // Leaving and coming back resumes at step 2.
    let (st, back, _) = page(&c, &apply).await;
    assert_eq!(st, 303);
    let back = back.expect("to the draft");
    assert!(
        back.contains(&format!("draft={draft}")) && back.contains("step=2"),
        "{back}"
    );
    let (st, _, html) = page(&c, &back).await;
    assert_eq!(st, 200);
    assert!(html.contains("id=\"f-bank\""), "{html}");
    assert!(html.contains("id=\"resumed\""));

    // Step 2: a problem is shown at its field, what was typed is kept.
    let second = |address: Option<&str>| {
        let mut v = vec![
            ("_submission", submission.clone()),
            ("_draft", draft.clone()),
            ("_step", "2".into()),
            ("bank", "icbc".to_owned()),
            ("delivery", "post".to_owned()),
        ];
        if let Some(a) = address {
            v.push(("mailing_address", a.to_owned()));
        }
        v
    };
    let (st, _, html) = post_form(&c, &step, &second(None), &[]).await;
    assert_eq!(st, 422, "{html}");
    assert!(html.contains("id=\"error-summary\""), "{html}");
    assert!(html.contains("href=\"#f-mailing_address\""), "{html}");
    assert!(html.contains("<option value=\"icbc\" selected>"), "{html}");
    let (st, to, html) = post_form(&c, &step, &second(Some(&value("mailing_address"))), &[]).await;
    assert_eq!(st, 303, "{html}");
    assert!(to.expect("to step 3").contains("step=3"));

    // Step 3: the documents, uploaded.
    let (st, to, html) = post_form(
        &c,
        &step,
        &[
            ("_submission", submission.clone()),
            ("_draft", draft.clone()),
            ("_step", "3".into()),
        ],
        &[
            ("file.id_card", "id-card.jpg", jpeg(1)),
            ("file.photo", "photo.jpg", jpeg(2)),
        ],
    )
    .await;
    assert_eq!(st, 303, "{html}");
    let check = to.expect("to the check page");
    assert!(check.contains("step=check"), "{check}");

    // Check your answers: every answer, with a way back to change it.
    let (st, _, html) = page(&c, &check).await;
    assert_eq!(st, 200, "{html}");
    for shown in [
        "王小明",
        "150702********3025",
        "中国工商银行",
        "免费邮寄到家",
        "id-card.jpg",
        "photo.jpg",
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }
    assert!(
        !html.contains("150702198506123025"),
        "the ID number is masked"
    );
    assert!(
        html.contains(&format!("draft={draft}&amp;step=1#f-applicant_name")),
        "no change link: {html}"
    );

    // Submit: the case is lodged, the draft is gone, the receipt leads to the case.
    let (st, to, html) = post_form(
        &c,
        &apply,
        &[
            ("_submission", submission.clone()),
            ("_draft", draft.clone()),
        ],
        &[],
    )
    .await;
    assert_eq!(st, 303, "{html}");
    let receipt = to.expect("to the receipt");
    assert!(receipt.starts_with("/cases/HLBE"), "{receipt}");
    assert!(drafts(&c).await.is_empty(), "the draft is gone");
    let (st, body) = c.get("/api/v1/cases").await;
    assert_eq!(st, 200);
    assert_eq!(body["total"], 1, "{body}");
    let case_no = body["items"][0]["case_no"]
        .as_str()
        .expect("case no")
        .to_owned();
    assert_eq!(body["items"][0]["service"]["code"], SSC, "{body}");
    let (st, _, html) = page(&c, &receipt).await;
    assert_eq!(st, 200);
    assert!(
        html.contains(&format!("href=\"/me/cases/{case_no}\"")),
        "{html}"
    );
    assert!(
        !html.contains("/api/v1/cases"),
        "no link to raw JSON: {html}"
    );

    // Submitting again (a second click) gets the same case.
    let (st, to, _) = post_form(
        &c,
        &apply,
        &[
            ("_submission", submission.clone()),
            ("_draft", draft.clone()),
        ],
        &[],
    )
    .await;
    assert_eq!(st, 303, "the second click gets the first receipt");
    assert_eq!(to.as_deref(), Some(receipt.as_str()));
    let (_, body) = c.get("/api/v1/cases").await;
    assert_eq!(body["total"], 1, "one case: {body}");
}

async fn a_value_too_long_is_named_and_the_rest_of_the_form_is_kept(b: Backend) {
    let s = setup(b).await;
    let c = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (_, _, html) = page(&c, &format!("/services/{SSC}/apply")).await;
    let submission = hidden(&html, "_submission");
    let mut fields = vec![("_submission", submission)];
    let all = valid_values();
    for (k, v) in all.as_object().expect("values") {
        let v = if k == "mailing_address" {
            "长".repeat(35_000) // about 100 KB
        } else {
            v.as_str().expect("text").to_owned()
        };
        fields.push((k.as_str(), v));
    }
    fields.push(("substitute.id_card", "true".into()));
    let (st, _, html) = post_form(
        &c,
        &format!("/services/{SSC}/apply"),
        &fields,
        &[("file.photo", "photo.jpg", jpeg(3))],
    )
    .await;
    assert_eq!(st, 422, "not a 413 page: {}", &html[..html.len().min(2000)]);
    assert!(
        html.contains("“邮寄地址”的内容过长"),
        "the error names the field: {html}"
    );
    assert!(html.contains("href=\"#f-mailing_address\""), "{html}");
    // Shown at the field's step, with the other values of that step kept …
    assert!(html.contains("<option value=\"icbc\" selected>"), "{html}");
    assert!(html.contains("<option value=\"post\" selected>"), "{html}");
    // … and the rest of the form kept in the draft, the photo among it.
    let saved = drafts(&c).await;
    assert_eq!(saved.len(), 1, "{saved:?}");
    let v = &saved[0]["values"];
    assert_eq!(v["applicant_name"], "王小明", "{v}");
    assert_eq!(v["phone"], "13800000001", "{v}");
    assert!(
        v.get("mailing_address").is_none(),
        "the long value is not kept"
    );
    let draft = saved[0]["id"].as_str().expect("id");
    let (st, _, html) = page(&c, &format!("/services/{SSC}/apply?draft={draft}&step=3")).await;
    assert_eq!(st, 200);
    assert!(html.contains("photo.jpg"), "the upload is kept: {html}");

    // A step post with a value too long is refused the same way.
    let (st, _, html) = post_form(
        &c,
        &format!("/services/{SSC}/apply/step"),
        &[
            ("_draft", draft.to_owned()),
            ("_step", "2".into()),
            ("bank", "boc".into()),
            ("delivery", "post".into()),
            ("mailing_address", "x".repeat(100 * 1024)),
        ],
        &[],
    )
    .await;
    assert_eq!(st, 422);
    assert!(html.contains("“邮寄地址”的内容过长"), "{html}");
    assert!(html.contains("<option value=\"boc\" selected>"), "{html}");
}

/// A department data API for `social_insurance` that knows citizen-wang's old card.
async fn fake_hr() -> String {
    let app = axum::Router::new().route(
        "/resources/social_insurance/query",
        axum::routing::post(|| async {
            axum::Json(json!({ "records": [{
                "data": { "insured_status": "2", "social_security_card_no": "H15070212345" },
                "as_of": "2026-11-01T00:00:00Z",
            }]}))
        }),
    );
    let listener = crate::harness::bind().await;
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

async fn an_authoritative_value_that_does_not_apply_may_be_left_out(b: Backend) {
    let s = setup(b).await;
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (st, body) = op
        .send(
            reqwest::Method::PUT,
            &format!("/api/ops/v1/departments/{HR}/data-api"),
            &json!({ "url": fake_hr().await }),
            None,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let c = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (st, _, html) = page(&c, &format!("/services/{SSC}/apply")).await;
    assert_eq!(st, 200);
    let r =
        c.b.client
            .post(format!("{}/services/{SSC}/apply/consent", c.base))
            .header("x-csrf-token", &c.csrf)
            .form(&[("_csrf", c.csrf.as_str())])
            .send()
            .await
            .expect("consent");
    let st = r.status().as_u16();
    let to = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    assert_eq!(st, 303, "consented");
    assert!(to.expect("back").contains("step=1"));
    let submission = hidden(&html, "_submission");
    // Step 1, prefilled: the values as served (an authoritative one changed is refused).
    let (st, _, html) = page(&c, &format!("/services/{SSC}/apply?step=1")).await;
    assert_eq!(st, 200);
    let step = format!("/services/{SSC}/apply/step");
    let mut first = vec![("_submission", submission.clone()), ("_step", "1".into())];
    for k in ["applicant_name", "applicant_id_number", "gender", "phone"] {
        first.push((k, hidden(&html, k)));
    }
    first.push(("application_type", "first".into()));
    let mut tampered = first.clone();
    tampered[2].1 = "王大明".into();
    let (st, _, html) = post_form(&c, &step, &tampered, &[]).await;
    assert_eq!(st, 422, "{html}");
    assert!(html.contains("是权威数据，不能修改"), "{html}");
    // The old card number is on step 2, read-only, with the way to leave it out.
    let (st, to, html) = post_form(&c, &step, &first, &[]).await;
    assert_eq!(st, 303, "{html}");
    let to = to.expect("step 2");
    let draft = draft_of(&to);
    let (_, _, html) = page(&c, &to).await;
    assert!(html.contains("value=\"H15070212345\""), "{html}");
    assert!(html.contains("name=\"omit.old_card_no\""), "{html}");
    // A first card: the applicant leaves the old number out.
    let (st, to, html) = post_form(
        &c,
        &step,
        &[
            ("_draft", draft.clone()),
            ("_step", "2".into()),
            ("old_card_no", "H15070212345".into()),
            ("omit.old_card_no", "true".into()),
            ("bank", "icbc".into()),
            ("delivery", "branch".into()),
        ],
        &[],
    )
    .await;
    assert_eq!(st, 303, "{html}");
    assert!(to.expect("step 3").contains("step=3"));
    let (st, to, html) = post_form(
        &c,
        &step,
        &[
            ("_draft", draft.clone()),
            ("_step", "3".into()),
            ("substitute.id_card", "true".into()),
        ],
        &[("file.photo", "photo.jpg", jpeg(4))],
    )
    .await;
    assert_eq!(st, 303, "{html}");
    let (_, _, html) = page(&c, &to.expect("check")).await;
    assert!(html.contains("不适用，未填写"), "{html}");
    assert!(
        html.contains("150702********3025"),
        "the e-licence number is masked: {html}"
    );
    assert!(!html.contains("150702198506123025</"), "{html}");
    let (st, to, html) = post_form(
        &c,
        &format!("/services/{SSC}/apply"),
        &[("_draft", draft.clone())],
        &[],
    )
    .await;
    assert_eq!(st, 303, "{html}");
    let receipt = to.expect("receipt");
    let case_no = receipt
        .trim_start_matches("/cases/")
        .split('/')
        .next()
        .expect("case no")
        .to_owned();
    let case = s
        .app
        .state
        .store
        .case_by_no(&case_no)
        .await
        .expect("store")
        .expect("case");
    assert!(case.form.get("old_card_no").is_none(), "{}", case.form);
    assert_eq!(case.provenance["applicant_name"]["changed"], false);
    // The receipt masks the e-licence number (it equals the ID number).
    let (_, _, html) = page(&c, &receipt).await;
    assert!(html.contains("150702********3025"), "{html}");
    assert!(!html.contains("150702198506123025"), "{html}");
}

/// The interface text of an English page: everything but what the data brings (the
/// names of people and places are data).
fn chinese_lines(html: &str, allowed: &[&str]) -> Vec<String> {
    let han = regex::Regex::new(HAN).expect("regex");
    let mut text = html.to_owned();
    for a in allowed {
        text = text.replace(a, "");
    }
    // the language switch names itself in its own language; the site's filing number
    // is written as issued; the logged-in person's name is data
    for fixed in [">中文<", "蒙ICP备", "王小明", "赵强"] {
        text = text.replace(fixed, "");
    }
    text.lines()
        .filter(|l| han.is_match(l))
        .map(|l| l.trim().to_owned())
        .collect()
}

async fn the_english_pages_have_no_chinese_interface_text(b: Backend) {
    let s = setup(b).await;
    let c = Session::new(&s, "/auth/login", "citizen-wang").await;
    let apply = format!("/services/{SSC}/apply");
    let (_, _, html) = page(&c, &format!("{apply}?lang=en")).await;
    assert!(html.contains("<html lang=\"en\""));
    assert!(html.contains("Step 1 of 4"), "{html}");
    let left = chinese_lines(&html, &[]);
    assert!(left.is_empty(), "Chinese on the English step: {left:?}");
    let mut first = vec![("_step", "1".to_owned())];
    for k in [
        "applicant_name",
        "applicant_id_number",
        "gender",
        "phone",
        "application_type",
    ] {
        first.push((k, value(k)));
    }
    let (_, to, _) = post_form(&c, &format!("{apply}/step"), &first, &[]).await;
    let draft = draft_of(&to.expect("step 2"));
    for n in ["2", "3", "check"] {
        let (st, _, html) = page(&c, &format!("{apply}?draft={draft}&step={n}&lang=en")).await;
        assert_eq!(st, 200, "{html}");
        let left = chinese_lines(&html, &["王小明", "150702198506123025"]);
        assert!(left.is_empty(), "Chinese on English step {n}: {left:?}");
    }
    // An English error names the field in English.
    let (st, _, html) = post_form(
        &c,
        &format!("{apply}/step?lang=en"),
        &[
            ("_draft", draft.clone()),
            ("_step", "2".into()),
            ("delivery", "post".into()),
        ],
        &[],
    )
    .await;
    assert_eq!(st, 422);
    assert!(
        html.contains("There is a problem") || html.contains("problem"),
        "{html}"
    );
    let left = chinese_lines(&html, &[]);
    assert!(
        left.is_empty(),
        "Chinese on the English error page: {left:?}"
    );
    for path in ["/catalogue?lang=en", "/auth/logout?lang=en"] {
        let (st, _, html) = page(&c, path).await;
        assert_eq!(st, 200, "{path}");
        let left = chinese_lines(&html, &["王小明"]);
        assert!(left.is_empty(), "Chinese on {path}: {left:?}");
    }
}

async fn too_low_an_assurance_level_says_why_and_where_to_go(b: Backend) {
    let s = setup(b).await;
    let c = Session::new(&s, "/auth/login", "citizen-zhao").await;
    let (st, to, _) = page(&c, &format!("/services/{SSC}/apply")).await;
    assert_eq!(st, 303);
    assert_eq!(
        to.as_deref(),
        Some(format!("/services/{SSC}/eligibility").as_str())
    );
    let (st, _, html) = page(&c, &format!("/services/{SSC}/eligibility")).await;
    assert_eq!(st, 403);
    assert!(html.contains("如何提升实名认证等级"), "{html}");
    assert!(
        html.contains("此事项要求实名认证等级不低于2级，您当前为1级"),
        "{html}"
    );
    assert!(
        html.contains("呼伦贝尔市海拉尔区政务服务中心三楼"),
        "the window's address: {html}"
    );
    assert!(html.contains("0470-8888003"), "the window's phone: {html}");
    assert!(html.contains("周一至周五"), "the window's hours: {html}");
    let (st, _, html) = page(&c, &format!("/services/{SSC}/eligibility?lang=en")).await;
    assert_eq!(st, 403);
    assert!(html.contains("How to raise your assurance level"), "{html}");
    assert!(html.contains("Mon-Fri 9:00-12:00"), "{html}");
    let left = chinese_lines(&html, &["呼伦贝尔市海拉尔区政务服务中心三楼", "赵强"]);
    assert!(left.is_empty(), "Chinese on the English page: {left:?}");
}

async fn a_rejected_upload_is_not_kept_ticked(b: Backend) {
    let s = setup(b).await;
    let c = Session::new(&s, "/auth/login", "citizen-wang").await;
    let mut fields = Vec::new();
    let all = valid_values();
    for (k, v) in all.as_object().expect("values") {
        fields.push((k.as_str(), v.as_str().expect("text").to_owned()));
    }
    // The photo must be a JPG: a PNG is stored, then refused by the application.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(std::iter::repeat_n(7u8, 2048));
    let (st, _, html) = post_form(
        &c,
        &format!("/services/{SSC}/apply"),
        &fields,
        &[
            ("file.id_card", "id-card.jpg", jpeg(5)),
            ("file.photo", "photo.png", png),
        ],
    )
    .await;
    assert_eq!(st, 422, "{html}");
    assert!(html.contains("href=\"#file-photo\""), "{html}");
    assert!(html.contains("id=\"m-photo-error\""), "{html}");
    assert!(
        !html.contains("name=\"keep.photo\""),
        "the refused photo is offered again: {html}"
    );
    assert!(
        html.contains("name=\"keep.id_card\""),
        "the good upload is kept: {html}"
    );
    // Saying "save and continue" now is refused until a photo is given.
    let saved = drafts(&c).await;
    let draft = saved[0]["id"].as_str().expect("id").to_owned();
    let keep = hidden(&html, "keep.id_card");
    let (st, _, html) = post_form(
        &c,
        &format!("/services/{SSC}/apply/step"),
        &[
            ("_draft", draft.clone()),
            ("_step", "3".into()),
            ("keep.id_card", keep.clone()),
        ],
        &[],
    )
    .await;
    assert_eq!(st, 422);
    assert!(
        html.contains("请上传“本人近期白底彩色证件照片（电子版）”"),
        "{html}"
    );
    // "Save and come back later" keeps the step without checking it.
    let (st, to, _) = post_form(
        &c,
        &format!("/services/{SSC}/apply/step"),
        &[
            ("_draft", draft.clone()),
            ("_step", "3".into()),
            ("_go", "save".into()),
            ("keep.id_card", keep),
        ],
        &[],
    )
    .await;
    assert_eq!(st, 303);
    let to = to.expect("back to the step");
    assert!(to.contains("step=3") && to.contains("saved=1"), "{to}");
    let (_, _, html) = page(&c, &to).await;
    assert!(html.contains("id=\"saved\""), "{html}");
    assert!(html.contains("id-card.jpg"), "{html}");
}
