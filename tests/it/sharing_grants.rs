//! Sharing requests and grants (issue 16, item 2): a request for a conditional resource is
//! asked about, answered and approved for two items, and the prefill then gets those two
//! only; an expired or a revoked grant stops the next read; a 不予共享 resource cannot be
//! requested; the department data API answers a granted department (items limited to the
//! grant, counted, in the subject's trail) and refuses another; the pages file, decide and
//! revoke.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::cases::{SSC, Session};
use crate::exchange::token;
use crate::harness::Backend;
use crate::login::{LoginSetup, with_dev_idp};

backend_tests!(
    a_request_approved_for_two_items_limits_the_prefill_to_them,
    an_expired_or_revoked_grant_stops_the_next_read,
    a_resource_that_is_not_shared_cannot_be_requested,
    the_data_api_answers_a_granted_department_and_refuses_another,
    the_pages_file_decide_and_revoke,
);

const POLICE: &str = "11150700MB15300021"; // provides `person`
const HR: &str = "11150700MB15300034"; // 人社局, owns SSC
const MARKET: &str = "11150700MB1530001X";
const WANG: &str = "150702198506123025"; // citizen-wang, in the base library

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

/// The provider revokes the catalogue's grant of `person` to the social security card
/// service, so what the service may read comes from requests alone.
async fn revoke_import(gao: &Session) {
    let (st, lists) = gao.get("/api/staff/v1/sharing/grants").await;
    assert_eq!(st, 200, "{lists}");
    let g = lists["given"]
        .as_array()
        .expect("given")
        .iter()
        .find(|g| g["resource"] == "person" && g["consumer"] == SSC && g["source"] == "import")
        .unwrap_or_else(|| panic!("the import grant in {lists}"))
        .clone();
    assert_eq!(g["state"], "live");
    assert_eq!(g["items"].as_array().expect("items").len(), 8);
    let (st, r) = gao
        .post(
            &format!(
                "/api/staff/v1/sharing/grants/{}/revoke",
                g["id"].as_str().expect("id")
            ),
            &json!({ "reason": "改由共享申请逐项授权" }),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["state"], "revoked");
    assert_eq!(r["revoked_by"], "高峰");
}

/// The person-resource fields of a prefill of the SSC form.
async fn person_fields(c: &Session) -> (Vec<String>, Value) {
    let (st, body) = c
        .post(
            &format!("/api/v1/services/{SSC}/prefill/consent"),
            &json!({}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let (st, p) = c.get(&format!("/api/v1/services/{SSC}/prefill")).await;
    assert_eq!(st, 200, "{p}");
    let mut fields: Vec<String> = p["fields"]
        .as_object()
        .expect("fields")
        .iter()
        .filter(|(_, f)| {
            f["source"]["binding"]
                .as_str()
                .is_some_and(|b| b.starts_with("person."))
        })
        .map(|(k, _)| k.clone())
        .collect();
    fields.sort();
    (fields, p)
}

fn person_unavailable(p: &Value) -> bool {
    p["unavailable"]
        .as_array()
        .expect("unavailable")
        .iter()
        .any(|u| u["resource"] == "person")
}

async fn file(ma: &Session, body: Value) -> (u16, Value) {
    ma.post("/api/staff/v1/sharing/requests", &body).await
}

fn ssc_request(items: &[&str]) -> Value {
    json!({
        "resource": "person",
        "service": SSC,
        "purpose": "社会保障卡申领时预填申请人身份信息",
        "legal_basis": "《社会保险法》第五十八条",
        "items": items,
        "period_from": "2026-01-01",
    })
}

async fn approve(gao: &Session, id: &str, body: Value) -> Value {
    let (st, r) = gao
        .post(
            &format!("/api/staff/v1/sharing/requests/{id}/decision"),
            &body,
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["state"], "approved");
    r
}

async fn a_request_approved_for_two_items_limits_the_prefill_to_them(b: Backend) {
    let s = setup(b).await;
    let gao = Session::new(&s, "/auth/staff/login", "officer-gao").await;
    let ma = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let wang = Session::new(&s, "/auth/login", "citizen-wang").await;

    // with the catalogue's grant every person field fills
    let (all, _) = person_fields(&wang).await;
    assert!(all.len() > 2, "{all:?}");
    revoke_import(&gao).await;
    let (none, p) = person_fields(&wang).await;
    assert!(none.is_empty(), "no grant, no person data: {none:?}");
    assert!(person_unavailable(&p), "{p}");

    let (st, r) = file(&ma, ssc_request(&["name", "id_number", "phone"])).await;
    assert_eq!(st, 201, "{r}");
    assert_eq!(r["state"], "pending");
    assert_eq!(r["provider"], POLICE);
    assert_eq!(r["consumer_department"], HR);
    let id = r["id"].as_str().expect("id").to_owned();
    // the requester cannot decide its own request; the provider asks, the requester answers
    let (st, _) = ma
        .post(
            &format!("/api/staff/v1/sharing/requests/{id}/decision"),
            &json!({ "action": "approve" }),
        )
        .await;
    assert_eq!(st, 403);
    let (st, r) = gao
        .post(
            &format!("/api/staff/v1/sharing/requests/{id}/decision"),
            &json!({ "action": "ask", "note": "为何需要联系电话？" }),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["state"], "more_info");
    let (st, r) = gao
        .post(
            &format!("/api/staff/v1/sharing/requests/{id}/decision"),
            &json!({ "action": "approve" }),
        )
        .await;
    assert_eq!(st, 409, "not pending while more is asked: {r}");
    let (st, r) = ma
        .post(
            &format!("/api/staff/v1/sharing/requests/{id}/answer"),
            &json!({ "note": "用于制卡进度短信通知" }),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["state"], "pending");
    // an item not asked for cannot be approved; two of the three can
    let (st, r) = gao
        .post(
            &format!("/api/staff/v1/sharing/requests/{id}/decision"),
            &json!({ "action": "approve", "items": ["name", "gender"] }),
        )
        .await;
    assert_eq!(st, 422, "{r}");
    let r = approve(
        &gao,
        &id,
        json!({ "action": "approve", "items": ["name", "id_number"], "note": "联系电话请由申请人填写" }),
    )
    .await;
    assert!(r["grant_id"].is_string());

    // every step with its author, as both departments see it
    let (st, d) = ma
        .get(&format!("/api/staff/v1/sharing/requests/{id}"))
        .await;
    assert_eq!(st, 200, "{d}");
    let steps: Vec<(&str, &str)> = d["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().expect("action"),
                e["author_name"].as_str().expect("author"),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("submitted", "马强"),
            ("asked", "高峰"),
            ("answered", "马强"),
            ("approved", "高峰")
        ]
    );
    assert_eq!(d["grant"]["state"], "live");
    assert_eq!(d["grant"]["source"], "request");
    let zhou = Session::new(&s, "/auth/staff/login", "officer-zhou").await;
    let (st, _) = zhou
        .get(&format!("/api/staff/v1/sharing/requests/{id}"))
        .await;
    assert_eq!(st, 404, "a third department does not see it");

    let (two, p) = person_fields(&wang).await;
    assert_eq!(two, ["applicant_id_number", "applicant_name"], "{p}");
    assert_eq!(p["fields"]["applicant_name"]["value"], "王小明");
    assert!(p["fields"].get("phone").is_none(), "phone was not granted");
    assert!(!person_unavailable(&p));

    let (_, lists) = ma.get("/api/staff/v1/sharing/grants").await;
    let g = lists["received"]
        .as_array()
        .expect("received")
        .iter()
        .find(|g| g["request_id"] == id.as_str())
        .expect("the grant received")
        .clone();
    assert_eq!(g["reads"], 1, "{g}");
    assert!(g["last_read_at"].is_string());
}

async fn an_expired_or_revoked_grant_stops_the_next_read(b: Backend) {
    let s = setup(b).await;
    let gao = Session::new(&s, "/auth/staff/login", "officer-gao").await;
    let ma = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let wang = Session::new(&s, "/auth/login", "citizen-wang").await;
    revoke_import(&gao).await;

    // a grant that expires two seconds from now
    let (_, r) = file(&ma, ssc_request(&["name"])).await;
    let id = r["id"].as_str().expect("id").to_owned();
    let until = Utc::now() + chrono::Duration::seconds(2);
    approve(
        &gao,
        &id,
        json!({ "action": "approve", "valid_until": until.to_rfc3339() }),
    )
    .await;
    let (f, _) = person_fields(&wang).await;
    assert_eq!(f, ["applicant_name"]);
    let wait = (until - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(300);
    tokio::time::sleep(wait).await;
    let (f, p) = person_fields(&wang).await;
    assert!(f.is_empty(), "expired: {f:?}");
    assert!(person_unavailable(&p));
    let (_, lists) = gao.get("/api/staff/v1/sharing/grants").await;
    let g = lists["given"]
        .as_array()
        .expect("given")
        .iter()
        .find(|g| g["request_id"] == id.as_str())
        .expect("grant")
        .clone();
    assert_eq!(g["state"], "expired");
    assert_eq!(g["reads"], 1, "only the read before the expiry counts");

    // a grant without expiry, revoked by the provider
    let (_, r) = file(&ma, ssc_request(&["name", "gender"])).await;
    let id = r["id"].as_str().expect("id").to_owned();
    let r = approve(&gao, &id, json!({ "action": "approve" })).await;
    let grant = r["grant_id"].as_str().expect("grant").to_owned();
    let (f, _) = person_fields(&wang).await;
    assert_eq!(f, ["applicant_name", "gender"]);
    // only the provider revokes, and only with a reason
    let (st, _) = ma
        .post(
            &format!("/api/staff/v1/sharing/grants/{grant}/revoke"),
            &json!({ "reason": "不再需要" }),
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = gao
        .post(
            &format!("/api/staff/v1/sharing/grants/{grant}/revoke"),
            &json!({ "reason": " " }),
        )
        .await;
    assert_eq!(st, 422);
    let (st, _) = gao
        .post(
            &format!("/api/staff/v1/sharing/grants/{grant}/revoke"),
            &json!({ "reason": "申请部门超范围使用" }),
        )
        .await;
    assert_eq!(st, 200);
    let (f, p) = person_fields(&wang).await;
    assert!(f.is_empty(), "revoked: {f:?}");
    assert!(person_unavailable(&p));
    let (st, _) = gao
        .post(
            &format!("/api/staff/v1/sharing/grants/{grant}/revoke"),
            &json!({ "reason": "again" }),
        )
        .await;
    assert_eq!(st, 409);
}

async fn a_resource_that_is_not_shared_cannot_be_requested(b: Backend) {
    let s = setup(b).await;
    let ma = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let mut body = ssc_request(&["has_record"]);
    body["resource"] = json!("criminal_record");
    let (st, p) = file(&ma, body).await;
    assert_eq!(st, 422, "{p}");
    let detail = p["detail"].as_str().expect("detail");
    assert!(
        detail.contains("criminal_record") && detail.contains("不予共享"),
        "{detail}"
    );
    // one's own resource needs no request; an unknown one is not found
    let mut body = ssc_request(&["insured_status"]);
    body["resource"] = json!("social_insurance");
    let (st, p) = file(&ma, body).await;
    assert_eq!(st, 422, "{p}");
    let mut body = ssc_request(&["x"]);
    body["resource"] = json!("no_such_resource");
    let (st, _) = file(&ma, body).await;
    assert_eq!(st, 404);
    // fields are checked together: a service of another department, no items, no purpose
    let (st, p) = file(
        &ma,
        json!({
            "resource": "person",
            "service": "11150700MB1530001X-XK-0001",
            "purpose": "",
            "legal_basis": "x",
            "items": [],
        }),
    )
    .await;
    assert_eq!(st, 422, "{p}");
    let mut fields: Vec<&str> = p["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    fields.sort();
    assert_eq!(fields, ["items", "purpose", "service"]);
    let (_, lists) = ma.get("/api/staff/v1/sharing/requests").await;
    assert_eq!(lists["mine"].as_array().expect("mine").len(), 0);
    // a citizen is no officer
    let wang = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (st, _) = wang.get("/api/staff/v1/sharing/requests").await;
    assert_eq!(st, 403);
}

async fn read(s: &LoginSetup, token: &str, resource: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(s.app.url(&format!("/api/dept/v1/data/{resource}")))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("send");
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn the_data_api_answers_a_granted_department_and_refuses_another(b: Backend) {
    let s = setup(b).await;
    let gao = Session::new(&s, "/auth/staff/login", "officer-gao").await;
    let ma = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let (st, sys) = ma
        .post(
            "/api/staff/v1/supervision/systems",
            &json!({
                "name": "社保待遇资格认证系统",
                "function": "待遇领取资格认证",
                "users_scope": "全市人社窗口",
                "frequency": "daily",
                "network": "intranet",
                "hosting": "data_centre",
            }),
        )
        .await;
    assert_eq!(st, 201, "{sys}");
    let system = sys["id"].as_str().expect("id").to_owned();
    let hr = token(&s, HR, &["data:read"]).await;
    let market = token(&s, MARKET, &["data:read"]).await;
    let hr_cases = token(&s, HR, &["cases:read"]).await;
    let query = json!({
        "subject": WANG,
        "items": ["name", "gender", "phone"],
        "purpose": "核验社保待遇资格",
    });
    let (st, p) = read(&s, &hr, "person", &query).await;
    assert_eq!(st, 403, "no grant for a system yet: {p}");

    let (st, r) = file(
        &ma,
        json!({
            "resource": "person",
            "system": system,
            "purpose": "待遇领取资格认证",
            "legal_basis": "《社会保险法》",
            "items": ["name", "gender"],
        }),
    )
    .await;
    assert_eq!(st, 201, "{r}");
    assert_eq!(r["consumer_kind"], "system");
    assert_eq!(r["consumer_name"], "社保待遇资格认证系统");
    let id = r["id"].as_str().expect("id").to_owned();
    let r = approve(&gao, &id, json!({ "action": "approve" })).await;
    let grant = r["grant_id"].as_str().expect("grant").to_owned();

    let (st, a) = read(&s, &hr, "person", &query).await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["basis"], "grant");
    assert_eq!(a["grants"], json!([grant]));
    assert_eq!(a["items"], json!(["name", "gender"]));
    assert_eq!(a["withheld"], json!(["phone"]));
    let data = &a["records"][0]["data"];
    assert_eq!(data["name"], "王小明");
    assert!(data.get("gender").is_some());
    assert!(data.get("phone").is_none(), "{data}");
    assert!(data.get("household_address").is_none(), "{data}");

    // another department, a token without the scope, a resource never shared, a bad subject
    let (st, p) = read(&s, &market, "person", &query).await;
    assert_eq!(st, 403, "{p}");
    let (st, _) = read(&s, &hr_cases, "person", &query).await;
    assert_eq!(st, 403);
    let (st, p) = read(&s, &hr, "criminal_record", &query).await;
    assert_eq!(st, 403, "{p}");
    let (st, p) = read(
        &s,
        &hr,
        "person",
        &json!({ "subject": "123", "items": [], "purpose": "" }),
    )
    .await;
    assert_eq!(st, 422, "{p}");
    let (st, _) = read(&s, "owt_nonsense", "person", &query).await;
    assert_eq!(st, 401);

    // counted on the grant, and in the citizen's trail
    let (_, lists) = ma.get("/api/staff/v1/sharing/grants").await;
    let g = lists["received"]
        .as_array()
        .expect("received")
        .iter()
        .find(|g| g["id"] == grant.as_str())
        .expect("grant")
        .clone();
    assert_eq!(g["reads"], 1, "{g}");
    let wang = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (_, trail) = wang.get("/api/v1/me/data-access").await;
    let rec = trail["records"]
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["purpose"] == "核验社保待遇资格")
        .unwrap_or_else(|| panic!("the read in {trail}"))
        .clone();
    assert_eq!(rec["reader_kind"], "department");
    assert_eq!(rec["resource_code"], "person");
    assert_eq!(trail["chain_intact"], true);

    // revoked: the next read is refused
    let (st, _) = gao
        .post(
            &format!("/api/staff/v1/sharing/grants/{grant}/revoke"),
            &json!({ "reason": "认证系统停用" }),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = read(&s, &hr, "person", &query).await;
    assert_eq!(st, 403);

    // the operator sees every grant with its count
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (st, all) = op.get("/api/ops/v1/sharing/grants").await;
    assert_eq!(st, 200, "{all}");
    let g = all["grants"]
        .as_array()
        .expect("grants")
        .iter()
        .find(|g| g["id"] == grant.as_str())
        .expect("grant")
        .clone();
    assert_eq!(
        (g["reads"].clone(), g["state"].clone()),
        (json!(1), json!("revoked"))
    );
    let (st, _) = ma.get("/api/ops/v1/sharing/grants").await;
    assert_eq!(st, 403);
}

async fn post_form(who: &Session, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let mut all = vec![("_csrf", who.csrf.as_str())];
    all.extend_from_slice(form);
    who.b
        .client
        .post(format!("{}{path}", who.base))
        .header("accept", "text/html")
        .header("x-csrf-token", &who.csrf)
        .form(&all)
        .send()
        .await
        .expect("post")
}

async fn page(who: &Session, path: &str) -> (u16, String) {
    let r = who.b.get(&format!("{}{path}", who.base)).await;
    (r.status().as_u16(), r.text().await.expect("html"))
}

async fn the_pages_file_decide_and_revoke(b: Backend) {
    let s = setup(b).await;
    let gao = Session::new(&s, "/auth/staff/login", "officer-gao").await;
    let ma = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    // the form offers the resource's items as checkboxes and the department's services
    let (st, html) = page(&ma, "/desk/sharing/requests/new?resource=person").await;
    assert_eq!(st, 200);
    assert!(html.contains("name=\"item.id_number\"") && html.contains("name=\"item.phone\""));
    assert!(html.contains(&format!("value=\"service:{SSC}\"")));
    let (st, html) = page(&ma, "/desk/sharing/requests/new?lang=en").await;
    assert_eq!(st, 200);
    assert!(
        !html.contains("criminal_record"),
        "not-shared resources are not offered"
    );
    // a post without a purpose comes back with the error, the ticks kept
    let r = post_form(
        &ma,
        "/desk/sharing/requests",
        &[
            ("resource", "person"),
            ("consumer", &format!("service:{SSC}")),
            ("legal_basis", "《社会保险法》"),
            ("item.name", "1"),
        ],
    )
    .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.expect("html");
    assert!(
        html.contains("id=\"purpose-error\"") || html.contains("请填写用途"),
        "{html}"
    );
    assert!(html.contains("name=\"item.name\" value=\"1\" checked"));
    let r = post_form(
        &ma,
        "/desk/sharing/requests",
        &[
            ("resource", "person"),
            ("consumer", &format!("service:{SSC}")),
            ("purpose", "预填申请人姓名"),
            ("legal_basis", "《社会保险法》"),
            ("item.name", "1"),
            ("item.phone", "1"),
            ("period_until", "2027-12-31"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let id = to
        .trim_start_matches("/desk/sharing/requests/")
        .split('?')
        .next()
        .expect("id")
        .to_owned();
    // a post without the CSRF token is refused
    let r =
        ma.b.client
            .post(format!("{}/desk/sharing/requests/{id}/answer", ma.base))
            .header("accept", "text/html")
            .form(&[("answer", "x")])
            .send()
            .await
            .expect("post");
    assert_eq!(r.status(), 403);
    // the provider's inbox lists it; it approves one of the two items on the page
    let (st, html) = page(&gao, "/desk/sharing/requests").await;
    assert_eq!(st, 200);
    assert!(html.contains(&format!("data-id=\"{id}\" data-state=\"pending\"")));
    let (st, html) = page(&gao, &format!("/desk/sharing/requests/{id}")).await;
    assert_eq!(st, 200);
    assert!(html.contains("id=\"approve-form\"") && html.contains("id=\"refuse-form\""));
    assert!(
        html.contains("value=\"2027-12-31\""),
        "the period's end is the default expiry"
    );
    let r = post_form(
        &gao,
        &format!("/desk/sharing/requests/{id}/decision"),
        &[
            ("action", "approve"),
            ("item.name", "1"),
            ("valid_until", "2027-12-31"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, d) = ma
        .get(&format!("/api/staff/v1/sharing/requests/{id}"))
        .await;
    assert_eq!(d["grant"]["items"][0]["id"], "name");
    assert_eq!(d["grant"]["items"].as_array().expect("items").len(), 1);
    assert_eq!(d["grant"]["valid_until"], "2027-12-31T16:00:00Z");
    let grant = d["grant"]["id"].as_str().expect("grant").to_owned();
    // grants page, in English, then the revocation from the page
    let (st, html) = page(&gao, "/desk/sharing/grants?lang=en").await;
    assert_eq!(st, 200);
    assert!(html.contains(&format!("data-id=\"{grant}\" data-state=\"live\"")));
    assert!(html.contains("Grants you gave"));
    let r = post_form(
        &gao,
        &format!("/desk/sharing/grants/{grant}/revoke"),
        &[("reason", "试运行结束")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, html) = page(&ma, "/desk/sharing/grants").await;
    assert!(html.contains(&format!("data-id=\"{grant}\" data-state=\"revoked\"")));
    // the operator's overview
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (st, html) = page(&op, "/ops/sharing/grants?lang=en").await;
    assert_eq!(st, 200);
    assert!(html.contains(&format!("data-id=\"{grant}\" data-state=\"revoked\"")));
    assert!(html.contains("All requests"));
    let (st, _) = page(&ma, "/ops/sharing/grants").await;
    assert_eq!(st, 403);
}
