//! The public catalogue API: departments, services, the guide, languages, errors.

use std::collections::HashSet;

use crate::backend_tests;
use crate::harness::{Backend, TestApp};

backend_tests!(
    lists_at_least_ten_services_across_six_departments,
    filters_services_by_department_item_type_and_keyword,
    paginates_the_service_list,
    shows_the_whole_guide_and_form_in_chinese_and_english,
    unknown_service_is_a_bilingual_problem,
    bad_filters_are_explained,
    unknown_routes_and_methods_are_problems,
);

async fn lists_at_least_ten_services_across_six_departments(b: Backend) {
    let app = TestApp::spawn(b).await;
    let body = app.get_json("/api/v1/services", None, 200).await;
    let items = body["items"].as_array().expect("items");
    assert!(items.len() >= 10, "only {} services", items.len());
    assert_eq!(body["total"].as_u64(), Some(items.len() as u64));
    let depts: HashSet<&str> = items
        .iter()
        .map(|s| s["department"]["uscc"].as_str().expect("uscc"))
        .collect();
    assert!(
        depts.len() >= 6,
        "services span only {} departments",
        depts.len()
    );

    let departments = app.get_json("/api/v1/departments", None, 200).await;
    let list = departments["items"].as_array().expect("items");
    assert!(list.len() >= 6);
    let counted: u64 = list
        .iter()
        .map(|d| d["service_count"].as_u64().expect("count"))
        .sum();
    assert_eq!(
        counted,
        items.len() as u64,
        "every service belongs to a listed department"
    );
    assert!(list.iter().any(|d| d["name"] == "呼伦贝尔市市场监督管理局"));
}

async fn filters_services_by_department_item_type_and_keyword(b: Backend) {
    let app = TestApp::spawn(b).await;
    let market = "11150700MB1530001X";
    let body = app
        .get_json(&format!("/api/v1/services?department={market}"), None, 200)
        .await;
    let items = body["items"].as_array().expect("items");
    assert!(!items.is_empty());
    assert!(items.iter().all(|s| s["department"]["uscc"] == market));

    let body = app
        .get_json("/api/v1/services?item_type=permit", None, 200)
        .await;
    let permits = body["items"].as_array().expect("items");
    assert!(!permits.is_empty());
    assert!(permits.iter().all(|s| s["item_type"]["code"] == "permit"));
    assert!(
        permits
            .iter()
            .all(|s| s["item_type"]["label"] == "行政许可")
    );

    // keyword matches the Chinese name, the English name and the keywords
    let body = app
        .get_json(
            "/api/v1/services?q=%E4%B8%AA%E4%BD%93%E5%B7%A5%E5%95%86%E6%88%B7",
            None,
            200,
        )
        .await; // 个体工商户
    let names: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert!(names.contains(&"个体工商户设立登记"), "{names:?}");
    let body = app
        .get_json("/api/v1/services?q=BUSINESS%20LICENCE", None, 200)
        .await;
    assert!(body["total"].as_u64().expect("total") >= 1);

    let body = app
        .get_json(
            &format!("/api/v1/services?department={market}&q=no-such-thing-xyz"),
            None,
            200,
        )
        .await;
    assert_eq!(body["total"], 0);
    assert_eq!(body["items"].as_array().map(Vec::len), Some(0));
}

async fn paginates_the_service_list(b: Backend) {
    let app = TestApp::spawn(b).await;
    let all = app.get_json("/api/v1/services", None, 200).await;
    let total = all["total"].as_u64().expect("total") as usize;
    let p1 = app
        .get_json("/api/v1/services?per_page=4&page=1", None, 200)
        .await;
    let p2 = app
        .get_json("/api/v1/services?per_page=4&page=2", None, 200)
        .await;
    assert_eq!(p1["items"].as_array().map(Vec::len), Some(4));
    assert_eq!(p1["total"].as_u64(), Some(total as u64));
    assert_ne!(p1["items"][0]["code"], p2["items"][0]["code"]);
    assert_eq!(p2["items"][0]["code"], all["items"][4]["code"]);
}

async fn shows_the_whole_guide_and_form_in_chinese_and_english(b: Backend) {
    let app = TestApp::spawn(b).await;
    let code = "11150700MB1530001X-XK-0001";
    let resp = app.get(&format!("/api/v1/services/{code}"), None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-language"], "zh-CN");
    let zh: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(zh["name"], "个体工商户设立登记");
    assert_eq!(zh["case_kind"]["label"], "即办件");
    assert_eq!(zh["legal_limit"]["value"], 3);
    assert_eq!(zh["legal_limit"]["label"], "3个工作日");
    assert!(
        zh["guide"]["conditions"]
            .as_array()
            .expect("conditions")
            .len()
            >= 2
    );
    assert!(
        zh["guide"]["legal_basis"][0]
            .as_str()
            .expect("basis")
            .contains("条例")
    );
    assert_eq!(zh["guide"]["fee"], "不收费");
    let fields = zh["form"]["fields"].as_array().expect("fields");
    let id_field = fields
        .iter()
        .find(|f| f["id"] == "operator_id_number")
        .expect("id field");
    assert_eq!(id_field["type"], "id_number");
    assert_eq!(id_field["prefill"]["binding"], "person.id_number");
    let table = fields
        .iter()
        .find(|f| f["type"] == "table")
        .expect("a table field");
    assert!(!table["columns"].as_array().expect("columns").is_empty());
    assert_eq!(table["required_if"]["field"], "organisation_form");
    let mats = zh["materials"].as_array().expect("materials");
    assert!(
        mats.iter()
            .any(|m| m["substitute"]["binding"] == "elicence.resident_id_card")
    );
    assert_eq!(zh["version"].as_str().map(str::len), Some(64));

    let resp = app
        .get(&format!("/api/v1/services/{code}"), Some("en-GB,en;q=0.9"))
        .await;
    assert_eq!(resp.headers()["content-language"], "en");
    let en: serde_json::Value = resp.json().await.expect("json");
    assert!(
        en["name"]
            .as_str()
            .expect("name")
            .starts_with("Registration")
    );
    assert_eq!(en["case_kind"]["label"], "Immediate");
    assert_eq!(en["legal_limit"]["label"], "3 working days");
    assert_eq!(en["guide"]["fee"], "Free of charge");
    assert_eq!(en["form"]["fields"][0]["label"], "Operator's name");
    assert_eq!(
        en["guide"]["conditions"].as_array().map(Vec::len),
        zh["guide"]["conditions"].as_array().map(Vec::len)
    );
    assert_eq!(en["version"], zh["version"]);
}

async fn unknown_service_is_a_bilingual_problem(b: Backend) {
    let app = TestApp::spawn(b).await;
    let resp = app.get("/api/v1/services/NO-SUCH-CODE", None).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let id = resp.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let zh: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(zh["type"], "urn:onewindow:problem:not-found");
    assert_eq!(zh["status"], 404);
    assert!(
        zh["detail"]
            .as_str()
            .expect("detail")
            .contains("NO-SUCH-CODE")
    );
    assert!(zh["detail"].as_str().expect("detail").contains("没有编码"));
    assert_eq!(zh["request_id"], id.as_str());

    let en = app
        .get_json("/api/v1/services/NO-SUCH-CODE", Some("en"), 404)
        .await;
    assert!(
        en["detail"]
            .as_str()
            .expect("detail")
            .starts_with("There is no service")
    );
    assert_eq!(en["title"], "Not found");
}

async fn bad_filters_are_explained(b: Backend) {
    let app = TestApp::spawn(b).await;
    for (query, needle_zh, needle_en) in [
        ("item_type=licence", "未知的事项类型", "Unknown item_type"),
        (
            "department=11150700MB15300011",
            "统一社会信用代码",
            "unified social credit code",
        ),
        ("per_page=0", "per_page", "per_page"),
        ("page=abc", "查询参数有误", "Bad query parameters"),
        ("colour=red", "查询参数有误", "Bad query parameters"),
    ] {
        let zh = app
            .get_json(&format!("/api/v1/services?{query}"), None, 400)
            .await;
        assert_eq!(zh["type"], "urn:onewindow:problem:bad-request", "{query}");
        assert!(
            zh["detail"].as_str().expect("detail").contains(needle_zh),
            "{query}: {zh}"
        );
        let en = app
            .get_json(&format!("/api/v1/services?{query}"), Some("en"), 400)
            .await;
        assert!(
            en["detail"].as_str().expect("detail").contains(needle_en),
            "{query}: {en}"
        );
    }
}

async fn unknown_routes_and_methods_are_problems(b: Backend) {
    let app = TestApp::spawn(b).await;
    let v = app.get_json("/api/v1/nothing-here", Some("en"), 404).await;
    assert_eq!(v["type"], "urn:onewindow:problem:not-found");
    let resp = app
        .client
        .delete(app.url("/api/v1/services"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(v["type"], "urn:onewindow:problem:method-not-allowed");
}
