//! Shared data end to end through HTTP: the resource catalogue, prefill with consent for a
//! person and for an enterprise representative, refusal to prefill anyone else, the
//! re-check of authoritative values on submit, e-licences standing in for materials, a
//! department data API (signed calls, cache, circuit breaker), a clerk's lookup, the
//! data-access trail a citizen sees, and the sharing figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::cases::{SSC, Session, jpeg};
use crate::harness::Backend;
use crate::login::{LoginSetup, with_dev_idp};

backend_tests!(
    the_resource_catalogue_lists_share_types_and_items,
    prefill_needs_consent_then_fills_a_persons_form_with_sources,
    an_enterprise_representative_gets_the_enterprises_data,
    nobody_can_prefill_someone_elses_data,
    authoritative_values_are_rechecked_on_submit,
    an_e_licence_stands_in_for_a_material_only_when_held,
    a_department_api_answers_signed_calls_and_is_cached,
    a_department_api_that_fails_opens_its_circuit_and_the_form_still_works,
    department_api_cache_entries_expire,
    a_clerk_lookup_and_a_department_read_are_in_the_citizens_trail,
    sharing_figures_count_prefilled_fields_and_substituted_materials,
    the_apply_page_lodges_once_even_when_the_form_is_sent_twice,
);

const HR: &str = "11150700MB15300034"; // provides social_insurance (department API)
const RESIDENCE_PERMIT: &str = "11150700MB15300021-QR-0001"; // 居住证申领
const FOOD: &str = "11150700MB1530001X-XK-0003"; // 食品经营许可（新办）, enterprise data + credit

async fn setup(b: Backend, extra: &[(&str, &str)]) -> LoginSetup {
    let mut settings = vec![
        ("worker_in_serve", "false"),
        ("exchange_allow_http", "true"),
    ];
    settings.extend_from_slice(extra);
    with_dev_idp(b, &settings).await
}

async fn consent_and_prefill(c: &Session, service: &str) -> Value {
    let (st, body) = c
        .post(
            &format!("/api/v1/services/{service}/prefill/consent"),
            &json!({}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = c.get(&format!("/api/v1/services/{service}/prefill")).await;
    assert_eq!(st, 200, "{body}");
    body
}

/// Form values of the social security card service: the prefilled ones as served, the
/// rest chosen by the applicant.
fn ssc_values(prefill: &Value) -> Value {
    let mut v = json!({
        "application_type": "first",
        "bank": "icbc",
        "delivery": "post",
    });
    for (k, f) in prefill["fields"].as_object().expect("fields") {
        v[k] = f["value"].clone();
    }
    v
}

/// Applies for a social security card with these values, the ID card stood in for by the
/// e-licence and a photo uploaded.
async fn apply_ssc(c: &Session, values: Value, seed: u8) -> (u16, Value) {
    let (_, photo) = c.upload("photo.jpg", jpeg(seed)).await;
    c.post(
        "/api/v1/cases",
        &json!({
            "service_code": SSC,
            "values": values,
            "materials": [
                { "material": "id_card", "substitute": true },
                { "material": "photo", "upload_id": photo["id"] },
            ],
        }),
    )
    .await
}

/// The stored text of the personal columns of a case and of every account, read straight
/// from the database as a copy of it would show them.
async fn raw_personal_columns(s: &LoginSetup, case_no: &str) -> Vec<String> {
    use sqlx::{Connection, Row};
    let url = s.app.state.settings.database_url();
    // The same reads on either backend; only the connection type and placeholder differ.
    macro_rules! read {
        ($conn:ty, $placeholder:literal) => {{
            let mut c = <$conn>::connect(&url).await.expect("connect");
            let mut out = Vec::new();
            let sql = concat!(
                "SELECT applicant_id_number, applicant_phone, CAST(form AS TEXT) AS form \
                 FROM cases WHERE case_no = ",
                $placeholder
            );
            let r = sqlx::query(sql)
                .bind(case_no)
                .fetch_one(&mut c)
                .await
                .expect("case");
            for col in ["applicant_id_number", "applicant_phone", "form"] {
                out.push(r.get::<Option<String>, _>(col).unwrap_or_default());
            }
            for r in sqlx::query("SELECT id_number, phone, email FROM accounts")
                .fetch_all(&mut c)
                .await
                .expect("accounts")
            {
                for col in ["id_number", "phone", "email"] {
                    out.push(r.get::<Option<String>, _>(col).unwrap_or_default());
                }
            }
            for r in sqlx::query("SELECT CAST(evidence AS TEXT) AS evidence FROM case_materials")
                .fetch_all(&mut c)
                .await
                .expect("materials")
            {
                out.push(r.get::<Option<String>, _>("evidence").unwrap_or_default());
            }
            out
        }};
    }
    if url.starts_with("postgres") {
        read!(sqlx::PgConnection, "$1")
    } else {
        read!(sqlx::SqliteConnection, "?")
    }
}

async fn data_access(c: &Session) -> Value {
    let (st, body) = c.get("/api/v1/me/data-access").await;
    assert_eq!(st, 200, "{body}");
    body
}

async fn the_resource_catalogue_lists_share_types_and_items(b: Backend) {
    let s = setup(b, &[]).await;
    let cat = s.app.get_json("/api/v1/catalogue", None, 200).await;
    let res = cat["resources"].as_array().expect("resources");
    let find = |code: &str| {
        res.iter()
            .find(|r| r["code"] == code)
            .unwrap_or_else(|| panic!("{code} listed"))
            .clone()
    };
    let person = find("person");
    assert_eq!(person["share_type"], "conditional");
    assert_eq!(person["share_type_label"], "有条件共享");
    assert_eq!(person["provider"]["name"], "呼伦贝尔市公安局");
    assert!(
        person["grants"]
            .as_array()
            .expect("array")
            .iter()
            .any(|g| g == SSC)
    );
    let name = person["items"]
        .as_array()
        .expect("array")
        .iter()
        .find(|i| i["id"] == "name")
        .expect("name item")
        .clone();
    assert_eq!(name["authoritative"], true);
    assert_eq!(name["personal"], true);
    assert_eq!(find("criminal_record")["share_type"], "not_shared");
    assert!(
        find("criminal_record")["bound_by"]
            .as_array()
            .expect("array")
            .is_empty()
    );
    assert_eq!(find("social_insurance")["access"], "department_api");
    // And as a page, linked from the home page.
    let page = s.app.get("/catalogue", None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    for text in [
        "人口基础信息",
        "有条件共享",
        "不予共享",
        "呼伦贝尔市公安局",
        "社会保障卡申领",
    ] {
        assert!(html.contains(text), "the catalogue page shows {text}");
    }
    let home = s.app.get("/", None).await.text().await.expect("home");
    assert!(home.contains("href=\"/catalogue\""));
    let en = s.app.get_json("/api/v1/catalogue", Some("en"), 200).await;
    assert!(
        en["resources"]
            .as_array()
            .expect("array")
            .iter()
            .any(|r| r["name"] == "Population base data"
                && r["share_type_label"] == "Shared on conditions")
    );
}

async fn prefill_needs_consent_then_fills_a_persons_form_with_sources(b: Backend) {
    let s = setup(b, &[]).await;
    // The sources can be read before logging in.
    let plan = s
        .app
        .get_json(
            &format!("/api/v1/services/{SSC}/prefill/sources"),
            None,
            200,
        )
        .await;
    let entry = |id: &str| {
        plan["entries"]
            .as_array()
            .expect("array")
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("{id} in the plan"))
            .clone()
    };
    assert_eq!(entry("applicant_name")["resource"], "人口基础信息");
    assert_eq!(entry("applicant_name")["authoritative"], true);
    assert_eq!(entry("phone")["authoritative"], false);
    assert_eq!(entry("id_card")["target"], "material");
    assert!(
        plan["resources"]
            .as_array()
            .expect("array")
            .iter()
            .any(|r| r["code"] == "person" && r["why"].as_str().expect("text").contains("本人"))
    );

    let c = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (st, body) = c.get(&format!("/api/v1/services/{SSC}/prefill")).await;
    assert_eq!(st, 403, "no prefill before consent: {body}");
    assert!(
        body["detail"].as_str().expect("text").contains("同意"),
        "{body}"
    );
    assert_eq!(
        data_access(&c).await["total"],
        0,
        "nothing was read before consent"
    );

    let p = consent_and_prefill(&c, SSC).await;
    let f = &p["fields"];
    assert_eq!(f["applicant_name"]["value"], "王小明");
    assert_eq!(f["applicant_name"]["authoritative"], true);
    assert_eq!(f["applicant_name"]["source"]["resource"], "人口基础信息");
    assert_eq!(
        f["applicant_name"]["source"]["provider"],
        "呼伦贝尔市公安局"
    );
    assert_eq!(f["applicant_id_number"]["value"], "150702198506123025");
    assert_eq!(f["phone"]["value"], "13800000001");
    assert_eq!(f["phone"]["authoritative"], false);
    assert!(f["applicant_name"]["as_of"].is_string());
    let card = &p["materials"]["id_card"];
    assert_eq!(card["licence_no"], "150702198506123025");
    assert_eq!(card["source"]["resource"], "电子证照");
    // The social insurance API is not connected here: said so, the rest still fills.
    assert_eq!(p["complete"], false);
    assert!(
        p["unavailable"]
            .as_array()
            .expect("array")
            .iter()
            .any(|u| u["resource"] == "social_insurance")
    );

    // Exactly two reads: the population base data and the e-licence library, by the citizen.
    let trail = data_access(&c).await;
    assert_eq!(trail["total"], 2, "{trail}");
    assert_eq!(trail["chain_intact"], true);
    let recs = trail["records"].as_array().expect("array");
    let mut resources: Vec<&str> = recs
        .iter()
        .map(|r| r["resource_code"].as_str().expect("text"))
        .collect();
    resources.sort();
    assert_eq!(resources, ["elicence", "person"]);
    for r in recs {
        assert_eq!(r["reader_kind"], "applicant");
        assert_eq!(r["reader"], "王小明");
        assert_eq!(r["purpose"], "prefill");
        assert_eq!(r["purpose_label"], "申请时预填表单");
        assert_eq!(r["service"], "社会保障卡申领");
    }
    let person = recs
        .iter()
        .find(|r| r["resource_code"] == "person")
        .expect("present");
    let items: Vec<&str> = person["items"]
        .as_array()
        .expect("array")
        .iter()
        .map(|i| i.as_str().expect("text"))
        .collect();
    assert!(
        items.contains(&"姓名") && items.contains(&"公民身份号码"),
        "{items:?}"
    );
    // And in English.
    let r =
        c.b.client
            .get(format!("{}/api/v1/me/data-access", c.base))
            .header("accept-language", "en")
            .send()
            .await
            .expect("answered");
    let en: Value = r.json().await.expect("answered");
    assert!(
        en["records"]
            .as_array()
            .expect("array")
            .iter()
            .any(|r| r["resource"] == "Population base data"
                && r["purpose_label"] == "Prefilling your application form")
    );
}

async fn an_enterprise_representative_gets_the_enterprises_data(b: Backend) {
    let s = setup(b, &[]).await;
    let c = Session::new(&s, "/auth/login", "enterprise-chen").await;
    let p = consent_and_prefill(&c, FOOD).await;
    let uscc = "91150700MA0N2C3D40";
    let stored = s
        .app
        .state
        .providers
        .base
        .records("enterprise", uscc)
        .await
        .expect("records");
    assert_eq!(
        stored.len(),
        1,
        "the demo data holds the persona's enterprise"
    );
    let data = &stored[0].data;
    let fields = p["fields"].as_object().expect("object");
    let by_binding = |b: &str| {
        fields
            .values()
            .find(|f| f["source"]["binding"] == b)
            .unwrap_or_else(|| panic!("{b} prefilled: {p}"))
            .clone()
    };
    assert_eq!(by_binding("enterprise.uscc")["value"], uscc);
    assert_eq!(by_binding("enterprise.name")["value"], data["name"]);
    assert_eq!(
        by_binding("enterprise.legal_rep")["value"],
        data["legal_rep"]
    );
    assert_eq!(by_binding("credit.dishonest_list_status")["value"], "0");
    let trail = data_access(&c).await;
    let recs = trail["records"].as_array().expect("array");
    assert!(
        recs.iter()
            .any(|r| r["subject_kind"] == "enterprise" && r["resource_code"] == "enterprise"),
        "the enterprise's own trail shows the read of its legal representative's name: {trail}"
    );
    // Credit status is not personal data: not in the personal-data trail.
    assert!(!recs.iter().any(|r| r["resource_code"] == "credit"));
}

async fn nobody_can_prefill_someone_elses_data(b: Backend) {
    let s = setup(b, &[]).await;
    let c = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (st, _) = c
        .post(
            &format!("/api/v1/services/{SSC}/prefill/consent"),
            &json!({}),
        )
        .await;
    assert_eq!(st, 201);
    let (st, body) = c
        .get(&format!(
            "/api/v1/services/{SSC}/prefill?id_number=150702199203151541"
        ))
        .await;
    assert_eq!(st, 403, "{body}");
    assert!(body["detail"].as_str().expect("text").contains("本人"));
    // A citizen is not a clerk: the window lookup is refused.
    let (st, _) = c
        .post(
            "/api/staff/v1/prefill",
            &json!({ "service_code": SSC, "id_number": "150702199203151541", "purpose": "想看看邻居" }),
        )
        .await;
    assert_eq!(st, 403);
    // Someone who may not apply gets nothing read: 赵强's assurance level is too low for
    // the social security card.
    let zhao = Session::new(&s, "/auth/login", "citizen-zhao").await;
    let (st, body) = zhao
        .post(
            &format!("/api/v1/services/{SSC}/prefill/consent"),
            &json!({}),
        )
        .await;
    assert_eq!(st, 403, "{body}");
    let (st, _) = zhao.get(&format!("/api/v1/services/{SSC}/prefill")).await;
    assert_eq!(st, 403);
    assert_eq!(data_access(&zhao).await["total"], 0);
    // Not logged in: no prefill at all.
    let r = s
        .app
        .get(&format!("/api/v1/services/{SSC}/prefill"), None)
        .await;
    assert_eq!(r.status(), 401);
    // Li's trail is untouched.
    let li = Session::new(&s, "/auth/login", "citizen-li").await;
    assert_eq!(data_access(&li).await["total"], 0);
    // Nor can Li apply under Wang's ID number: a field bound to the applicant's own ID
    // number must hold the number her login proved.
    let (_, photo) = li.upload("photo.jpg", jpeg(9)).await;
    let (st, body) = li
        .post(
            "/api/v1/cases",
            &json!({
                "service_code": SSC,
                "values": crate::cases::valid_values(),
                "materials": [{ "material": "photo", "upload_id": photo["id"] }, { "material": "id_card", "upload_id": photo["id"] }],
            }),
        )
        .await;
    assert_eq!(st, 422, "{body}");
    assert!(
        body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .any(|e| e["field"] == "applicant_id_number"),
        "{body}"
    );
}

async fn authoritative_values_are_rechecked_on_submit(b: Backend) {
    let s = setup(b, &[]).await;
    let c = Session::new(&s, "/auth/login", "citizen-wang").await;
    let p = consent_and_prefill(&c, SSC).await;
    let (_, photo) = c.upload("photo.jpg", jpeg(3)).await;
    let materials = json!([
        { "material": "id_card", "substitute": true },
        { "material": "photo", "upload_id": photo["id"] },
    ]);

    let mut tampered = ssc_values(&p);
    tampered["applicant_name"] = json!("王大明");
    let (st, body) = c
        .post(
            "/api/v1/cases",
            &json!({ "service_code": SSC, "values": tampered, "materials": materials }),
        )
        .await;
    assert_eq!(st, 422, "{body}");
    let err = body["errors"]
        .as_array()
        .expect("array")
        .iter()
        .find(|e| e["field"] == "applicant_name")
        .expect("the name is named");
    assert!(
        err["message"].as_str().expect("text").contains("权威"),
        "{err}"
    );

    // The phone is not authoritative: a new number is accepted and recorded as changed.
    let mut values = ssc_values(&p);
    values["phone"] = json!("13900000009");
    let (st, body) = c
        .post(
            "/api/v1/cases",
            &json!({ "service_code": SSC, "values": values, "materials": materials }),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let case_no = body["case_no"].as_str().expect("text").to_owned();
    let row = s
        .app
        .state
        .store
        .case_by_no(&case_no)
        .await
        .expect("answered")
        .expect("present");
    let prov = &row.provenance;
    assert_eq!(prov["applicant_name"]["source"], "person.name");
    assert_eq!(prov["applicant_name"]["changed"], false);
    assert_eq!(prov["applicant_name"]["authoritative"], true);
    assert_eq!(prov["phone"]["changed"], true);
    assert!(row.fields_prefilled >= 3, "{}", row.fields_prefilled);
    // At rest, the case's ID number, phone and form, the licence that stood in for the ID
    // card, and the account's ID number are sealed: a copy of the database shows none.
    let raw = raw_personal_columns(&s, &case_no).await;
    assert!(!raw.is_empty());
    for text in &raw {
        assert!(
            !text.contains("150702198506123025") && !text.contains("13900000009"),
            "stored in clear: {text}"
        );
    }
    assert!(raw.iter().any(|t| t.contains("sealed")));
    assert!(row.fields_filled > row.fields_prefilled);
    // The department sees where each value came from.
    let token = crate::exchange::token(&s, HR, &["cases:read"]).await;
    let r = s
        .app
        .client
        .get(s.app.url(&format!("/api/dept/v1/cases/{case_no}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 200);
    let view: Value = r.json().await.expect("answered");
    let m = view["materials"]
        .as_array()
        .expect("array")
        .iter()
        .find(|m| m["material_id"] == "id_card")
        .expect("id_card")
        .clone();
    assert_eq!(m["substituted"], true);
    assert_eq!(m["evidence"]["licence_no"], "150702198506123025", "{m}");
    assert_eq!(
        view["provenance"]["applicant_name"]["source"],
        "person.name"
    );
}

async fn an_e_licence_stands_in_for_a_material_only_when_held(b: Backend) {
    let s = setup(b, &[]).await;
    // Without prefill: the licence is looked up (and the read audited) on submit.
    let c = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (st, body) = apply_ssc(&c, crate::cases::valid_values(), 4).await;
    assert_eq!(st, 201, "{body}");
    let row = s
        .app
        .state
        .store
        .case_by_no(body["case_no"].as_str().expect("text"))
        .await
        .expect("answered")
        .expect("present");
    let ms = s
        .app
        .state
        .store
        .case_materials(row.id)
        .await
        .expect("answered");
    let card = ms
        .iter()
        .find(|m| m.material_id == "id_card")
        .expect("present");
    assert_eq!(card.source.as_deref(), Some("elicence.resident_id_card"));
    assert_eq!(
        card.evidence.as_ref().expect("present")["issuer"],
        "呼伦贝尔市公安局海拉尔区分局"
    );
    let trail = data_access(&c).await;
    assert_eq!(trail["total"], 1, "{trail}");
    assert_eq!(trail["records"][0]["purpose"], "substitute_check");
    assert_eq!(
        trail["records"][0]["case_no"], body["case_no"],
        "recorded with the case, in the same transaction"
    );
    assert_eq!(trail["records"][0]["resource_code"], "elicence");

    // A licence past its validity does not stand in: Wang's real-estate title is made to
    // have expired, so the residence-permit application's proof of residence must be
    // uploaded.
    let mut title = s
        .app
        .state
        .providers
        .base
        .records("elicence", "150702198506123025")
        .await
        .expect("answered")
        .into_iter()
        .find(|r| r.record == "real_estate_certificate")
        .expect("Wang holds a real-estate title");
    title.data.insert("valid_until".into(), json!("2020-01-01"));
    let counts = s
        .app
        .state
        .providers
        .base
        .put(&[onewindow::store::BaseRecord {
            resource: "elicence".into(),
            subject: "150702198506123025".into(),
            record: title.record.clone(),
            data: Value::Object(title.data),
            updated_at: Utc::now(),
        }])
        .await
        .expect("answered");
    assert_eq!(counts.updated, 1);
    let (_, photo) = c.upload("photo.jpg", jpeg(5)).await;
    let values = json!({
        "applicant_name": "王小明",
        "applicant_id_number": "150702198506123025",
        "applicant_phone": "13800000001",
        "household_address": "内蒙古自治区呼伦贝尔市海拉尔区胜利街道巴彦托海路184号3单元202室",
        "residence_address": "呼伦贝尔市海拉尔区胜利大街8号3号楼2单元501室",
        "residence_since": "2024-01-01",
        "basis": "housing",
        "pickup": "station",
    });
    let (st, body) = c
        .post(
            "/api/v1/cases",
            &json!({
                "service_code": RESIDENCE_PERMIT,
                "values": values,
                "materials": [
                    { "material": "id_card", "substitute": true },
                    { "material": "photo", "upload_id": photo["id"] },
                    { "material": "residence_proof", "substitute": true },
                ],
            }),
        )
        .await;
    assert_eq!(st, 422, "{body}");
    let err = body["errors"]
        .as_array()
        .expect("array")
        .iter()
        .find(|e| e["field"] == "materials.residence_proof")
        .unwrap_or_else(|| panic!("the material is named: {body}"))
        .clone();
    assert!(
        err["message"]
            .as_str()
            .expect("text")
            .contains("没有找到您有效的"),
        "{err}"
    );
    assert_eq!(
        body["errors"].as_array().expect("array").len(),
        1,
        "the ID card is held: {body}"
    );
    // The refused submission read the licence library all the same, and that is on record.
    let trail = data_access(&c).await;
    assert_eq!(trail["total"], 2, "{trail}");
    assert_eq!(trail["records"][0]["purpose"], "substitute_check");
    assert!(trail["records"][0]["case_no"].is_null());
}

/// A department data API for `social_insurance`: mode 0 fails with 500, mode 1 answers.
struct FakeHr {
    url: String,
    hits: Arc<AtomicUsize>,
    mode: Arc<AtomicU8>,
    verified: Arc<AtomicUsize>,
}

async fn fake_hr(jwks: Value) -> FakeHr {
    let hits = Arc::new(AtomicUsize::new(0));
    let verified = Arc::new(AtomicUsize::new(0));
    let mode = Arc::new(AtomicU8::new(1));
    let (h, m, v) = (hits.clone(), mode.clone(), verified.clone());
    let app = axum::Router::new().route(
        "/resources/social_insurance/query",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (h, m, v, jwks) = (h.clone(), m.clone(), v.clone(), jwks.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let hv = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|x| x.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                if onewindow::exchange::signing::verify(
                    &jwks,
                    &hv("webhook-id"),
                    &hv("webhook-timestamp"),
                    &hv("webhook-signature"),
                    &body,
                    Utc::now().timestamp(),
                    300,
                )
                .is_ok()
                {
                    v.fetch_add(1, Ordering::SeqCst);
                }
                let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if m.load(Ordering::SeqCst) == 0 {
                    return (StatusCode::INTERNAL_SERVER_ERROR, "down".to_owned());
                }
                if req["subject"] != "150702198506123025" || req["purpose"] != "prefill" {
                    return (StatusCode::NOT_FOUND, "{}".to_owned());
                }
                let answer = json!({ "records": [{
                    "data": { "insured_status": "2", "social_security_card_no": "H15070212345" },
                    "as_of": "2026-11-01T00:00:00Z",
                }]});
                (StatusCode::OK, answer.to_string())
            }
        }),
    );
    let listener = crate::harness::bind().await;
    let url = format!("http://{}", listener.local_addr().expect("present"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    FakeHr {
        url,
        hits,
        mode,
        verified,
    }
}

async fn a_department_api_answers_signed_calls_and_is_cached(b: Backend) {
    let s = setup(b, &[]).await;
    let jwks = s.app.get_json("/.well-known/jwks.json", None, 200).await;
    let hr = fake_hr(jwks).await;
    // The operator connects the department's data API.
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (st, body) = op
        .send(
            reqwest::Method::PUT,
            &format!("/api/ops/v1/departments/{HR}/data-api"),
            &json!({ "url": hr.url }),
            None,
        )
        .await;
    assert_eq!(st, 200, "{body}");

    let c = Session::new(&s, "/auth/login", "citizen-wang").await;
    let p = consent_and_prefill(&c, SSC).await;
    assert_eq!(p["complete"], true, "{p}");
    assert_eq!(p["fields"]["old_card_no"]["value"], "H15070212345");
    assert_eq!(
        p["fields"]["old_card_no"]["source"]["provider"],
        "呼伦贝尔市人力资源和社会保障局"
    );
    assert_eq!(hr.hits.load(Ordering::SeqCst), 1);
    assert_eq!(hr.verified.load(Ordering::SeqCst), 1, "the call is signed");
    // Again within the resource's TTL: from the cache, no second call.
    let (st, again) = c.get(&format!("/api/v1/services/{SSC}/prefill")).await;
    assert_eq!(st, 200);
    assert_eq!(again["fields"]["old_card_no"]["value"], "H15070212345");
    assert_eq!(hr.hits.load(Ordering::SeqCst), 1, "served from the cache");
    // Both reads are in the trail, cached or not.
    let trail = data_access(&c).await;
    let si = trail["records"]
        .as_array()
        .expect("array")
        .iter()
        .filter(|r| r["resource_code"] == "social_insurance")
        .count();
    assert_eq!(si, 2, "{trail}");
}

async fn a_department_api_that_fails_opens_its_circuit_and_the_form_still_works(b: Backend) {
    let s = setup(
        b,
        &[
            ("provider_failures_to_open", "2"),
            ("provider_open_secs", "600"),
        ],
    )
    .await;
    let jwks = s.app.get_json("/.well-known/jwks.json", None, 200).await;
    let hr = fake_hr(jwks).await;
    hr.mode.store(0, Ordering::SeqCst);
    s.app
        .state
        .store
        .set_data_api(HR, Some(&hr.url))
        .await
        .expect("answered");
    let c = Session::new(&s, "/auth/login", "citizen-wang").await;
    let p = consent_and_prefill(&c, SSC).await;
    for _ in 0..3 {
        let (st, p) = c.get(&format!("/api/v1/services/{SSC}/prefill")).await;
        assert_eq!(st, 200);
        assert_eq!(p["complete"], false);
        assert_eq!(p["fields"]["applicant_name"]["value"], "王小明");
        let u = p["unavailable"]
            .as_array()
            .expect("array")
            .iter()
            .find(|u| u["resource"] == "social_insurance")
            .expect("said which source is down")
            .clone();
        assert!(
            u["message"].as_str().expect("text").contains("自行填写"),
            "{u}"
        );
    }
    assert_eq!(
        hr.hits.load(Ordering::SeqCst),
        2,
        "after two failures the circuit is open and the department is left alone"
    );
    // The form still works without that prefill.
    let (st, body) = apply_ssc(&c, ssc_values(&p), 6).await;
    assert_eq!(st, 201, "{body}");
    // The operator sees the circuit open, and the base library's holdings.
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (st, prov) = op.get("/api/ops/v1/providers").await;
    assert_eq!(st, 200, "{prov}");
    let list = prov["resources"].as_array().expect("resources");
    let si = list
        .iter()
        .find(|r| r["resource"] == "social_insurance")
        .expect("social insurance");
    assert_eq!(si["circuit"], "open");
    assert_eq!(si["data_api"], hr.url.as_str());
    let person = list
        .iter()
        .find(|r| r["resource"] == "person")
        .expect("person");
    assert_eq!(person["records"], 60, "the demo residents");
    let metrics = s
        .app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("answered");
    assert!(metrics.contains("onewindow_shared_data_circuit_opened_total"));
}

async fn department_api_cache_entries_expire(b: Backend) {
    use onewindow::sharing::provider::{ApiLimits, DataProvider, DepartmentApi, ReadPurpose};
    let s = setup(b, &[]).await;
    let jwks = s.app.get_json("/.well-known/jwks.json", None, 200).await;
    let hr = fake_hr(jwks).await;
    let st = &s.app.state;
    st.store
        .set_data_api(HR, Some(&hr.url))
        .await
        .expect("answered");
    let mut res = (*st.catalogue.resource("social_insurance").expect("present")).clone();
    res.cache_ttl_secs = 1;
    let api = DepartmentApi::new(
        st.store.clone(),
        st.cache.clone(),
        st.sealer.clone(),
        st.http.clone(),
        st.keys.clone(),
        ApiLimits {
            timeout: Duration::from_secs(2),
            failures_to_open: 5,
            open_for: Duration::from_secs(30),
        },
    );
    let why = ReadPurpose {
        purpose: "prefill".into(),
        service_code: Some(SSC.into()),
        case_no: None,
    };
    let first = api
        .fetch(&res, "150702198506123025", &why)
        .await
        .expect("answered");
    assert_eq!(first[0].data["insured_status"], "2");
    api.fetch(&res, "150702198506123025", &why)
        .await
        .expect("answered");
    assert_eq!(hr.hits.load(Ordering::SeqCst), 1, "a hit within the TTL");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let later = api
        .fetch(&res, "150702198506123025", &why)
        .await
        .expect("answered");
    assert_eq!(later, first);
    assert_eq!(
        hr.hits.load(Ordering::SeqCst),
        2,
        "expired, so called again"
    );
    // A subject the department does not know: no records, not an error.
    assert!(
        api.fetch(&res, "150702199203151541", &why)
            .await
            .expect("answered")
            .is_empty()
    );
}

async fn a_clerk_lookup_and_a_department_read_are_in_the_citizens_trail(b: Backend) {
    let s = setup(b, &[]).await;
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let (st, body) = clerk
        .post(
            "/api/staff/v1/prefill",
            &json!({ "service_code": SSC, "id_number": "150702198506123025", "purpose": "x" }),
        )
        .await;
    assert_eq!(st, 422, "a purpose must be stated: {body}");
    let (st, body) = clerk
        .post(
            "/api/staff/v1/prefill",
            &json!({ "service_code": SSC, "id_number": "150702198506123026", "purpose": "窗口受理社保卡申领" }),
        )
        .await;
    assert_eq!(st, 422, "a bad ID number is refused: {body}");
    let (st, p) = clerk
        .post(
            "/api/staff/v1/prefill",
            &json!({ "service_code": SSC, "id_number": "150702198506123025", "purpose": "窗口受理社保卡申领" }),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["fields"]["applicant_name"]["value"], "王小明");

    // The clerk registers the walk-in application with the prefilled values.
    let (_, photo) = clerk.upload("photo.jpg", jpeg(7)).await;
    let (st, body) = clerk
        .post(
            "/api/staff/v1/cases",
            &json!({
                "service_code": SSC,
                "applicant": { "kind": "person", "name": "王小明", "id_number": "150702198506123025", "phone": "13800000001" },
                "values": ssc_values(&p),
                "materials": [
                    { "material": "id_card", "substitute": true },
                    { "material": "photo", "upload_id": photo["id"] },
                ],
            }),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let case_no = body["case_no"].as_str().expect("text").to_owned();
    let row = s
        .app
        .state
        .store
        .case_by_no(&case_no)
        .await
        .expect("answered")
        .expect("present");
    assert_eq!(row.provenance["applicant_name"]["source"], "person.name");

    // The department reads the case.
    let token = crate::exchange::token(&s, HR, &["cases:read"]).await;
    let r = s
        .app
        .client
        .get(s.app.url(&format!("/api/dept/v1/cases/{case_no}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 200);

    let c = Session::new(&s, "/auth/login", "citizen-wang").await;
    let trail = data_access(&c).await;
    let recs = trail["records"].as_array().expect("array");
    let clerk_reads: Vec<&Value> = recs
        .iter()
        .filter(|r| r["reader_kind"] == "clerk")
        .collect();
    assert_eq!(clerk_reads.len(), 2, "person and e-licence: {trail}");
    for r in &clerk_reads {
        assert_eq!(r["purpose"], "窗口受理社保卡申领");
        assert!(r["reader"].as_str().expect("text").contains("孙丽"), "{r}");
    }
    let dept = recs
        .iter()
        .find(|r| r["reader_kind"] == "department")
        .expect("the department's read");
    assert_eq!(dept["case_no"], case_no);
    assert_eq!(dept["reader"], "呼伦贝尔市人力资源和社会保障局");
    assert_eq!(dept["resource"], "申请表和申请材料");
    assert!(
        dept["items"]
            .as_array()
            .expect("array")
            .iter()
            .any(|i| i == "居民身份证"),
        "{dept}"
    );
    assert_eq!(
        trail["records"][0]["reader_kind"], "department",
        "newest first"
    );
    assert_eq!(trail["chain_intact"], true);
    assert_eq!(trail["total"], 3);

    // An officer opening the case in the gateway is a read too.
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let (st, _) = officer.get(&format!("/api/staff/v1/cases/{case_no}")).await;
    assert_eq!(st, 200);
    let trail = data_access(&c).await;
    assert_eq!(trail["total"], 4);
    let newest = &trail["records"][0];
    assert_eq!(newest["reader_kind"], "officer");
    assert_eq!(newest["reader"], "马强");
    assert_eq!(newest["purpose"], "staff_case_view");
    assert_eq!(newest["case_no"], case_no);
}

async fn sharing_figures_count_prefilled_fields_and_substituted_materials(b: Backend) {
    let s = setup(b, &[]).await;
    let c = Session::new(&s, "/auth/login", "citizen-wang").await;
    let p = consent_and_prefill(&c, SSC).await;
    let (st, body) = apply_ssc(&c, ssc_values(&p), 8).await;
    assert_eq!(st, 201, "{body}");
    let filled = ssc_values(&p).as_object().expect("object").len() as i64;
    let prefilled = p["fields"].as_object().expect("object").len() as i64;

    let (st, _) = c.get("/api/ops/v1/sharing").await;
    assert_eq!(st, 403, "operators only");
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (st, f) = op.get("/api/ops/v1/sharing").await;
    assert_eq!(st, 200, "{f}");
    let svc = f["services"]
        .as_array()
        .expect("array")
        .iter()
        .find(|x| x["service_code"] == SSC)
        .expect("the service")
        .clone();
    assert_eq!(svc["cases"], 1);
    assert_eq!(svc["fields_filled"], filled);
    assert_eq!(svc["fields_prefilled"], prefilled);
    assert_eq!(svc["materials"], 2);
    assert_eq!(svc["materials_substituted"], 1);
    assert_eq!(svc["substituted_share"], 0.5);
    assert_eq!(f["overall"]["materials_substituted"], 1);
    let metrics = s
        .app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("answered");
    assert!(
        metrics.contains("onewindow_form_fields_prefilled_total"),
        "exposed in /metrics"
    );
    assert!(metrics.contains("onewindow_materials_substituted_total"));
}

async fn the_apply_page_lodges_once_even_when_the_form_is_sent_twice(b: Backend) {
    let s = setup(b, &[]).await;
    let c = Session::new(&s, "/auth/login", "citizen-wang").await;
    let page =
        c.b.client
            .get(format!("{}/services/{SSC}/apply", c.base))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html");
    let marker = "name=\"_submission\" value=\"";
    let at = page.find(marker).expect("the form carries a submission id") + marker.len();
    let submission = page[at..].split('"').next().expect("id").to_owned();
    let send = || async {
        let mut form = reqwest::multipart::Form::new()
            .text("_csrf", c.csrf.clone())
            .text("_submission", submission.clone());
        for (k, v) in crate::cases::valid_values().as_object().expect("values") {
            form = form.text(k.clone(), v.as_str().expect("text").to_owned());
        }
        form = form.text("substitute.id_card", "true").part(
            "file.photo",
            reqwest::multipart::Part::bytes(jpeg(11)).file_name("photo.jpg"),
        );
        let r =
            c.b.client
                .post(format!("{}/services/{SSC}/apply", c.base))
                .header("x-csrf-token", &c.csrf)
                .multipart(form)
                .send()
                .await
                .expect("post");
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
        r.headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .expect("redirect")
            .to_owned()
    };
    let first = send().await;
    let second = send().await;
    assert!(first.starts_with("/cases/HLBE"), "{first}");
    assert_eq!(first, second, "the second click gets the first case");
    let (_, mine) = c.get("/api/v1/cases").await;
    assert_eq!(mine["total"], 1, "{mine}");
}
