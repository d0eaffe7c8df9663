//! Catalogue management (政务信息资源目录): a department edits a resource and the
//! operator publishes it; the old version stays readable; prefill and the catalogue
//! serve the new version without a restart; an edit that drops a bound item is refused
//! naming the service; another department cannot edit it; the 资源清单 CSV lists items.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::cases::{SSC, Session};
use crate::harness::Backend;
use crate::login::with_dev_idp;

backend_tests!(
    a_department_edits_a_resource_and_the_operator_publishes_it,
    edits_that_break_bindings_or_come_from_another_department_are_refused,
    search_and_the_inventory_csv_list_published_items,
    the_edit_page_adds_and_removes_rows_without_script,
);

const HR: &str = "11150700MB15300034"; // provides social_insurance
const CARD_SERVICE: &str = "11150700MB15300034-GG-0002"; // binds social_security_card_no
const PENSION_SERVICE: &str = "11150700MB15300034-GG-0001"; // binds insured_status

/// The social-insurance resource as its department would send it, with `edit` applied.
fn social_insurance(edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = json!({
        "name": "社会保险参保信息",
        "name_en": "Social insurance records",
        "share_type": "conditional",
        "conditions": "仅用于本人办理社会保险、医疗保障相关事项时的参保状态核验和表单预填。",
        "conditions_en": "Only to check insurance status and prefill forms.",
        "open": "not_open",
        "update_cycle": "daily",
        "subject": "person",
        "items": [
            {"id": "insured_status", "name": "基本养老保险参保状态", "name_en": "Basic pension insurance status",
             "type": "code", "personal": true, "authoritative": true},
            {"id": "social_security_card_no", "name": "社会保障卡卡号", "name_en": "Social security card number",
             "type": "text", "personal": true, "authoritative": true},
        ],
        "note": "更新英文名称，增加参保地",
    });
    edit(&mut v);
    v
}

fn resource<'a>(catalogue: &'a Value, code: &str) -> &'a Value {
    catalogue["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["code"] == code)
        .unwrap_or_else(|| panic!("{code} in {catalogue}"))
}

async fn a_department_edits_a_resource_and_the_operator_publishes_it(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let operator = Session::new(&s, "/auth/staff/login", "operator-wu").await;

    // The TOML was imported as version 1, published, by `import`.
    let (st, own) = officer.get("/api/staff/v1/catalogue/resources").await;
    assert_eq!(st, 200, "{own}");
    let si = resource(&own, "social_insurance");
    assert_eq!(si["published_version"], 1);
    assert_eq!(si["provider"], HR);
    assert!(
        own["resources"]
            .as_array()
            .expect("list")
            .iter()
            .all(|r| r["provider"] == HR),
        "only the department's own: {own}"
    );

    // A new version: renamed in English, one item added.
    let body = social_insurance(|v| {
        v["name_en"] = json!("Social insurance register");
        v["items"].as_array_mut().expect("items").push(json!({
            "id": "insured_place", "name": "参保地", "name_en": "Place insured",
            "type": "address", "personal": true}));
    });
    let (st, v2) = officer
        .post("/api/staff/v1/catalogue/resources/social_insurance", &body)
        .await;
    assert_eq!(st, 201, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["status"], "pending");

    // Until published, nothing changes for the gateway.
    let en = s.app.get_json("/api/v1/catalogue", Some("en"), 200).await;
    assert_eq!(
        resource(&en, "social_insurance")["name"],
        "Social insurance records"
    );

    // The operator sees it pending, compared with the live version.
    let (st, pending) = operator.get("/api/ops/v1/catalogue/pending").await;
    assert_eq!(st, 200, "{pending}");
    let p = pending["pending"]
        .as_array()
        .expect("pending")
        .iter()
        .find(|p| p["code"] == "social_insurance")
        .unwrap_or_else(|| panic!("pending: {pending}"));
    assert_eq!(p["published_version"], 1);
    let changed: Vec<(&str, &str)> = p["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap_or(""),
                c["kind"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(changed.contains(&("name_en", "changed")), "{changed:?}");
    assert!(
        changed.contains(&("items.insured_place", "added")),
        "{changed:?}"
    );
    // the department cannot publish its own edit
    let (st, _) = officer
        .post(
            "/api/ops/v1/catalogue/resources/social_insurance/versions/2/publish",
            &json!({}),
        )
        .await;
    assert_eq!(st, 403);

    let revision = s
        .app
        .state
        .store
        .catalogue_revision()
        .await
        .expect("revision");
    let (st, published) = operator
        .post(
            "/api/ops/v1/catalogue/resources/social_insurance/versions/2/publish",
            &json!({}),
        )
        .await;
    assert_eq!(st, 200, "{published}");
    assert_eq!(published["status"], "published");
    assert_eq!(published["live"], true);
    // again: it is not pending any more
    let (st, _) = operator
        .post(
            "/api/ops/v1/catalogue/resources/social_insurance/versions/2/publish",
            &json!({}),
        )
        .await;
    assert_eq!(st, 409);

    // Served at once, without a restart: the catalogue API and page, and prefill.
    let en = s.app.get_json("/api/v1/catalogue", Some("en"), 200).await;
    let r = resource(&en, "social_insurance");
    assert_eq!(r["name"], "Social insurance register");
    assert!(
        r["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|i| i["id"] == "insured_place"),
        "{r}"
    );
    let page = s
        .app
        .get("/catalogue?lang=en", None)
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("Social insurance register"));
    let plan = s
        .app
        .get_json(
            &format!("/api/v1/services/{SSC}/prefill/sources"),
            Some("en"),
            200,
        )
        .await;
    assert!(
        plan.to_string().contains("Social insurance register"),
        "prefill reads the published version: {plan}"
    );

    // The old version is still readable, and the history says which one is live.
    let (st, v1) = officer
        .get("/api/staff/v1/catalogue/resources/social_insurance/versions/1")
        .await;
    assert_eq!(st, 200, "{v1}");
    assert_eq!(v1["status"], "published");
    assert_eq!(v1["live"], false);
    assert_eq!(v1["author_name"], "import");
    assert_eq!(v1["resource"]["name_en"], "Social insurance records");
    let (st, hist) = officer
        .get("/api/staff/v1/catalogue/resources/social_insurance")
        .await;
    assert_eq!(st, 200);
    assert_eq!(hist["published_version"], 2);
    assert_eq!(hist["versions"].as_array().expect("versions").len(), 2);
    assert_eq!(hist["versions"][0]["author_name"], "马强");

    // Another instance sees the publication on its next check: the fingerprint changed.
    let state = &s.app.state;
    let mut last = Some(revision);
    state.catalogue.set_resources(vec![]);
    assert!(
        onewindow::usecases::catalogue_mgmt::refresh(state, &mut last)
            .await
            .expect("refresh")
    );
    assert_eq!(
        state
            .catalogue
            .resource("social_insurance")
            .expect("live")
            .name_en,
        "Social insurance register"
    );
    assert!(
        !onewindow::usecases::catalogue_mgmt::refresh(state, &mut last)
            .await
            .expect("refresh"),
        "unchanged: not re-read"
    );
    // A restart imports nothing twice.
    let again = onewindow::usecases::catalogue_mgmt::import_and_load(
        state.store.as_ref(),
        &state.catalogue,
        chrono::Utc::now(),
    )
    .await
    .expect("import");
    assert_eq!(again, 0);

    // A returned version needs a comment, and stays readable with it.
    let (st, v3) = officer
        .post(
            "/api/staff/v1/catalogue/resources/social_insurance",
            &social_insurance(|v| v["update_cycle"] = json!("weekly")),
        )
        .await;
    assert_eq!(st, 201, "{v3}");
    let path = "/api/ops/v1/catalogue/resources/social_insurance/versions/3/return";
    let (st, _) = operator.post(path, &json!({"comment": " "})).await;
    assert_eq!(st, 422);
    let (st, ret) = operator
        .post(path, &json!({"comment": "更新周期请与实际一致"}))
        .await;
    assert_eq!(st, 200, "{ret}");
    assert_eq!(ret["status"], "returned");
    let (_, v3) = officer
        .get("/api/staff/v1/catalogue/resources/social_insurance/versions/3")
        .await;
    assert_eq!(v3["comment"], "更新周期请与实际一致");
    assert_eq!(
        state
            .catalogue
            .resource("social_insurance")
            .expect("live")
            .update_cycle,
        onewindow::domain::catalogue::UpdateCycle::Daily
    );
}

fn problem_fields(p: &Value) -> Vec<String> {
    p["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn edits_that_break_bindings_or_come_from_another_department_are_refused(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let other = Session::new(&s, "/auth/staff/login", "officer-zhou").await;

    // Dropping the card number, which the card service's form binds.
    let body = social_insurance(|v| {
        v["items"].as_array_mut().expect("items").remove(1);
    });
    let (st, p) = officer
        .post("/api/staff/v1/catalogue/resources/social_insurance", &body)
        .await;
    assert_eq!(st, 422, "{p}");
    assert_eq!(problem_fields(&p), vec!["items"]);
    assert!(
        p.to_string().contains(CARD_SERVICE),
        "names the service: {p}"
    );

    // Retyping a bound item, making it not shared, a duplicate id, a blank name: all at once.
    let body = social_insurance(|v| {
        v["name"] = json!("");
        v["share_type"] = json!("not_shared");
        v["items"][0]["type"] = json!("text");
        v["items"].as_array_mut().expect("items").push(json!({
            "id": "insured_status", "name": "重复", "name_en": "Again", "type": "text"}));
    });
    let (st, p) = officer
        .post("/api/staff/v1/catalogue/resources/social_insurance", &body)
        .await;
    assert_eq!(st, 422, "{p}");
    let fields = problem_fields(&p);
    for f in ["name", "items[2].id", "items[0].type", "share_type"] {
        assert!(fields.iter().any(|x| x == f), "{f}: {p}");
    }
    assert!(p.to_string().contains(PENSION_SERVICE), "{p}");

    // Another department may neither edit nor read it.
    let (st, p) = other
        .post(
            "/api/staff/v1/catalogue/resources/social_insurance",
            &social_insurance(|_| {}),
        )
        .await;
    assert_eq!(st, 403, "{p}");
    let (st, _) = other
        .get("/api/staff/v1/catalogue/resources/social_insurance")
        .await;
    assert_eq!(st, 403);
    // Unknown resources and versions are 404s, not 500s.
    let (st, _) = officer.get("/api/staff/v1/catalogue/resources/nope").await;
    assert_eq!(st, 404);
    let (st, _) = officer
        .get("/api/staff/v1/catalogue/resources/social_insurance/versions/x")
        .await;
    assert_eq!(st, 404);

    // A proposal: a taken code is refused, a new one is pending and not live.
    let (st, p) = officer
        .post(
            "/api/staff/v1/catalogue/resources",
            &social_insurance(|v| v["code"] = json!("person")),
        )
        .await;
    assert_eq!(st, 422, "{p}");
    assert_eq!(problem_fields(&p), vec!["code"]);
    let (st, v) = officer
        .post(
            "/api/staff/v1/catalogue/resources",
            &social_insurance(|v| {
                v["code"] = json!("employment");
                v["name"] = json!("就业登记信息");
                v["name_en"] = json!("Employment registrations");
                v["share_type"] = json!("unconditional");
            }),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["version"], 1);
    assert!(s.app.state.catalogue.resource("employment").is_none());
    let (_, own) = officer.get("/api/staff/v1/catalogue/resources").await;
    assert_eq!(
        resource(&own, "employment")["published_version"],
        Value::Null
    );
}

async fn search_and_the_inventory_csv_list_published_items(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let found = s
        .app
        .get_json("/api/v1/catalogue/search?q=%E5%8D%A1%E5%8F%B7", None, 200)
        .await; // 卡号
    let codes: Vec<&str> = found["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["code"].as_str())
        .collect();
    assert_eq!(codes, vec!["social_insurance"]);
    let found = s
        .app
        .get_json(
            &format!(
                "/api/v1/catalogue/search?department={HR}&share_type=conditional&open=not_open"
            ),
            None,
            200,
        )
        .await;
    assert_eq!(found["total"], 1, "{found}");
    let bad = s.app.get("/api/v1/catalogue/search?open=maybe", None).await;
    assert_eq!(bad.status(), 400);

    let r = s.app.get("/api/v1/catalogue/inventory.csv", None).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    let csv = r.text().await.expect("csv");
    let lines: Vec<&str> = csv.trim_end().lines().collect();
    let items: usize = s
        .app
        .state
        .catalogue
        .resources()
        .iter()
        .map(|r| r.items.len())
        .sum();
    assert_eq!(lines.len(), items + 1, "a header and one row per item");
    assert!(lines[0].contains("资源代码"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("social_insurance,") && l.contains(",social_security_card_no,")),
        "{csv}"
    );
    let en = s
        .app
        .get(
            &format!("/api/v1/catalogue/inventory.csv?department={HR}"),
            Some("en"),
        )
        .await
        .text()
        .await
        .expect("csv");
    assert!(en.contains("resource_code"));
    assert_eq!(en.trim_end().lines().count(), 3, "{en}");
    // the public page searches too
    let page = s
        .app
        .get("/catalogue?q=%E5%8D%A1%E5%8F%B7", None)
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("社会保险参保信息"));
    assert!(!page.contains("人口基础信息"));
}

async fn the_edit_page_adds_and_removes_rows_without_script(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let operator = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let page = officer
        .b
        .get(&format!("{}/desk/catalogue", officer.base))
        .await
        .text()
        .await
        .expect("list");
    assert!(
        page.contains("/desk/catalogue/social_insurance/edit"),
        "{page}"
    );
    let form = officer
        .b
        .get(&format!(
            "{}/desk/catalogue/social_insurance/edit",
            officer.base
        ))
        .await
        .text()
        .await
        .expect("edit");
    assert!(
        form.contains("name=\"items[1].id\" value=\"social_security_card_no\""),
        "{form}"
    );
    let mut fields: Vec<(String, String)> = vec![
        ("_csrf".into(), officer.csrf.clone()),
        ("rows".into(), "2".into()),
        ("name".into(), "社会保险参保信息".into()),
        ("name_en".into(), "Social insurance records".into()),
        ("share_type".into(), "conditional".into()),
        ("conditions".into(), "仅用于本人办理".into()),
        ("open".into(), "not_open".into()),
        ("update_cycle".into(), "daily".into()),
        ("subject".into(), "person".into()),
    ];
    for (i, (id, t)) in [
        ("insured_status", "code"),
        ("social_security_card_no", "text"),
    ]
    .iter()
    .enumerate()
    {
        fields.push((format!("items[{i}].id"), (*id).into()));
        fields.push((format!("items[{i}].name"), format!("项{i}")));
        fields.push((format!("items[{i}].name_en"), format!("Item {i}")));
        fields.push((format!("items[{i}].type"), (*t).into()));
    }
    let post = |extra: Vec<(String, String)>| {
        let mut f = fields.clone();
        f.extend(extra);
        let url = format!("{}/desk/catalogue/social_insurance/edit", officer.base);
        let client = officer.b.client.clone();
        let origin = officer.base.clone();
        async move {
            let r = client
                .post(url)
                .header("origin", origin)
                .form(&f)
                .send()
                .await
                .expect("post");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    };
    // add a row: the form comes back with three rows, nothing saved
    let (st, html) = post(vec![("action".into(), "add".into())]).await;
    assert_eq!(st, 200);
    assert!(html.contains("name=\"items[2].id\""), "{html}");
    // remove the bound row: refused on save, the message at the items with the service
    let (st, html) = post(vec![("action".into(), "remove:1".into())]).await;
    assert_eq!(st, 200);
    assert!(!html.contains("name=\"items[1].id\""));
    let mut one_row: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| !k.starts_with("items[1]") && k != "rows")
        .cloned()
        .collect();
    one_row.push(("rows".into(), "1".into()));
    one_row.push(("action".into(), "save".into()));
    let r = officer
        .b
        .client
        .post(format!(
            "{}/desk/catalogue/social_insurance/edit",
            officer.base
        ))
        .header("origin", &officer.base)
        .form(&one_row)
        .send()
        .await
        .expect("save");
    assert_eq!(r.status(), 422);
    let html = r.text().await.expect("body");
    assert!(
        html.contains("error-summary") && html.contains(CARD_SERVICE),
        "{html}"
    );
    // saved: a redirect to the new version, which the operator then publishes on the page
    let (st, _) = post(vec![("action".into(), "save".into())]).await;
    assert_eq!(st, 303, "on to the version page");
    let list = operator
        .b
        .get(&format!("{}/ops/catalogue", operator.base))
        .await
        .text()
        .await
        .expect("ops");
    assert!(
        list.contains("/ops/catalogue/social_insurance/versions/2"),
        "{list}"
    );
    let v = operator
        .b
        .get(&format!(
            "{}/ops/catalogue/social_insurance/versions/2",
            operator.base
        ))
        .await
        .text()
        .await
        .expect("version");
    assert!(
        v.contains("<del>") && v.contains("<ins>"),
        "a comparison: {v}"
    );
    let r = operator
        .b
        .client
        .post(format!(
            "{}/ops/catalogue/social_insurance/versions/2/publish",
            operator.base
        ))
        .header("origin", &operator.base)
        .form(&[("_csrf", operator.csrf.as_str())])
        .send()
        .await
        .expect("publish");
    assert_eq!(r.status(), 303);
    assert_eq!(
        s.app
            .state
            .catalogue
            .resource("social_insurance")
            .expect("live")
            .items[0]
            .name,
        "项0"
    );
}
