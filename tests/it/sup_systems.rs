//! Supervision, information systems: a department registers systems and files its
//! self-inspection report (page, CSV, XLSX); department API traffic moves a flagged
//! system back to active; a system idle past the threshold is flagged with its reason
//! and the operator clears it; a department sees and edits only its own systems, the
//! operator sees all.

use chrono::{Duration, Utc};
use onewindow::store::sup_systems::DayUse;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::cases::Session;
use crate::harness::Backend;
use crate::login::with_dev_idp;

backend_tests!(
    a_department_registers_systems_and_files_its_report,
    traffic_moves_a_flagged_system_back_to_active,
    an_idle_system_is_flagged_and_the_operator_clears_it,
    a_department_sees_and_edits_only_its_own_systems,
);

const HRSS: &str = "11150700MB15300034";

fn system(name: &str) -> Value {
    json!({
        "name": name,
        "function": "社保卡业务",
        "users_scope": "全市人社窗口",
        "frequency": "daily",
        "approved_by": "市发改委",
        "approved_on": "2016-05-20",
        "funding": "市本级财政",
        "build_cost": 1_000_000,
        "om_cost_per_year": 120_000,
        "network": "intranet",
        "hosting": "data_centre",
    })
}

async fn put(who: &Session, path: &str, body: &Value) -> (u16, Value) {
    who.send(reqwest::Method::PUT, path, body, None).await
}

fn find<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["systems"]
        .as_array()
        .expect("systems")
        .iter()
        .find(|a| a["system"]["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {list}"))
}

/// Chinese left on an English page once data marked `lang="zh-CN"` and the people's
/// names are taken out.
fn english_only(html: &str) -> Vec<String> {
    let mut rest = String::new();
    let mut tail = html;
    while let Some(i) = tail.find("lang=\"zh-CN\"") {
        rest.push_str(&tail[..i]);
        let after = &tail[i..];
        let open = after.find('>').map(|j| j + 1).unwrap_or(after.len());
        let close = after[open..]
            .find('<')
            .map(|j| open + j)
            .unwrap_or(after.len());
        tail = &after[close..];
    }
    rest.push_str(tail);
    crate::desk_pages::chinese_left(&rest, &["吴敏", "马强"])
}

async fn a_department_registers_systems_and_files_its_report(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let (st, a) = officer
        .post("/api/staff/v1/supervision/systems", &system("社保卡系统"))
        .await;
    assert_eq!(st, 201, "{a}");
    assert_eq!(a["status"], "active");
    let (st, _) = officer
        .post(
            "/api/staff/v1/supervision/systems",
            &json!({ "name": "档案系统", "function": "查询", "users_scope": "档案室",
                     "frequency": "rarely", "network": "private", "hosting": "own_room" }),
        )
        .await;
    assert_eq!(st, 201);
    // bad input: every field named, in the asked language
    let r = officer
        .b
        .client
        .post(format!("{}/api/staff/v1/supervision/systems", officer.base))
        .header("x-csrf-token", &officer.csrf)
        .header("accept-language", "en")
        .json(&json!({ "name": "", "frequency": "hourly", "network": "x", "hosting": "cloud" }))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 422);
    let p: Value = r.json().await.expect("problem");
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for f in [
        "name",
        "function",
        "users_scope",
        "frequency",
        "network",
        "hosting",
    ] {
        assert!(fields.contains(&f), "{f}: {p}");
    }
    assert!(!p.to_string().contains("请填写"), "{p}");
    // the report: plan and a need, then the page, CSV and XLSX
    let year = Utc::now().format("%Y").to_string();
    let (st, rep) = put(
        &officer,
        &format!("/api/staff/v1/supervision/self-inspection/{year}"),
        &json!({ "integration_plan": "旧档案系统并入社保卡系统",
                 "data_needs": [{ "provider": "11150700MB15300021", "resource": "人口基础信息",
                                  "items": "姓名", "purpose": "核验身份" }] }),
    )
    .await;
    assert_eq!(st, 200, "{rep}");
    assert_eq!(rep["systems"].as_array().map(Vec::len), Some(2));
    assert_eq!(rep["filed"]["data_needs"][0]["resource"], "人口基础信息");
    let (st, bad) = put(
        &officer,
        &format!("/api/staff/v1/supervision/self-inspection/{year}"),
        &json!({ "integration_plan": " ", "data_needs": [{ "provider": HRSS, "resource": "x", "purpose": "y" }] }),
    )
    .await;
    assert_eq!(st, 422, "{bad}");
    let page = officer
        .b
        .get(&format!("{}/desk/supervision/report?lang=en", officer.base))
        .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("社保卡系统") && html.contains("旧档案系统并入社保卡系统"));
    assert!(html.contains("Integration plan"), "English page");
    let csv = officer
        .b
        .get(&format!(
            "{}/desk/supervision/report/{year}/csv",
            officer.base
        ))
        .await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/csv")
    );
    let text = csv.text().await.expect("csv");
    assert!(
        text.contains("社保卡系统") && text.contains("人口基础信息"),
        "{text}"
    );
    let xlsx = officer
        .b
        .get(&format!(
            "{}/desk/supervision/report/{year}/xlsx",
            officer.base
        ))
        .await;
    assert_eq!(xlsx.status(), 200);
    assert!(xlsx.bytes().await.expect("bytes").starts_with(b"PK"));
    // the operator opens the same report
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (st, r) = op
        .get(&format!(
            "/api/ops/v1/supervision/self-inspections/{HRSS}/{year}"
        ))
        .await;
    assert_eq!(st, 200);
    assert_eq!(r["filed"]["integration_plan"], "旧档案系统并入社保卡系统");
    let page =
        op.b.get(&format!("{}/ops/supervision/reports/{HRSS}", op.base))
            .await;
    assert_eq!(page.status(), 200);
}

async fn traffic_moves_a_flagged_system_back_to_active(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let state = &s.app.state;
    let now = Utc::now();
    let (token, secret) = onewindow::auth::tokens::issue(
        state.store.as_ref(),
        HRSS,
        vec!["cases:read".into()],
        "社保卡系统".into(),
        None,
        now - Duration::days(300),
    )
    .await
    .expect("token");
    // last successful call 120 days ago
    let then = now - Duration::days(120);
    state
        .store
        .put_token_day(
            token.id,
            &DayUse {
                day: then.date_naive(),
                calls: 40,
                failures: 0,
                last_ok_at: Some(then),
            },
        )
        .await
        .expect("usage");
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let mut body = system("社保卡系统");
    body["token_id"] = json!(token.id);
    let (st, a) = officer
        .post("/api/staff/v1/supervision/systems", &body)
        .await;
    assert_eq!(st, 201, "{a}");
    let id = a["id"].as_str().expect("id").to_owned();
    let (_, list) = officer.get("/api/staff/v1/supervision/systems").await;
    let me = find(&list, &id);
    assert_eq!(me["system"]["status"], "flagged", "{me}");
    assert_eq!(me["flags"], json!(["long_idle"]), "{me}");
    // the system calls the department API with its token
    let r = s
        .app
        .client
        .get(s.app.url("/api/dept/v1/whoami"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("whoami");
    assert_eq!(r.status(), 200);
    let days = state
        .store
        .token_days(token.id, now.date_naive())
        .await
        .expect("days");
    assert_eq!(days.len(), 1, "{days:?}");
    assert_eq!((days[0].calls, days[0].failures), (1, 0));
    assert!(days[0].last_ok_at.is_some());
    let (_, list) = officer.get("/api/staff/v1/supervision/systems").await;
    let me = find(&list, &id);
    assert_eq!(me["system"]["status"], "active", "{me}");
    assert_eq!(me["flags"], json!([]));
    assert!(
        me["routes"]
            .as_array()
            .expect("routes")
            .contains(&json!("token"))
    );
    // a call that fails counts as a failure, without a new last success
    let r = s
        .app
        .client
        .get(s.app.url("/api/dept/v1/cases/NO-SUCH-CASE"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("get");
    assert!(r.status().is_client_error());
    let days = state
        .store
        .token_days(token.id, now.date_naive())
        .await
        .expect("days");
    assert_eq!((days[0].calls, days[0].failures), (2, 1));
}

async fn an_idle_system_is_flagged_and_the_operator_clears_it(b: Backend) {
    let s = with_dev_idp(b, &[("zombie_idle_days", "30")]).await;
    let state = &s.app.state;
    let now = Utc::now();
    let (token, _) = onewindow::auth::tokens::issue(
        state.store.as_ref(),
        HRSS,
        vec!["cases:read".into()],
        "旧版档案查询系统".into(),
        None,
        now - Duration::days(300),
    )
    .await
    .expect("token");
    let then = now - Duration::days(45);
    state
        .store
        .put_token_day(
            token.id,
            &DayUse {
                day: then.date_naive(),
                calls: 3,
                failures: 0,
                last_ok_at: Some(then),
            },
        )
        .await
        .expect("usage");
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let mut body = system("旧版档案查询系统");
    body["token_id"] = json!(token.id);
    let (_, a) = officer
        .post("/api/staff/v1/supervision/systems", &body)
        .await;
    let id = a["id"].as_str().expect("id").to_owned();
    let (_, other) = officer
        .post("/api/staff/v1/supervision/systems", &system("社保卡系统"))
        .await;
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (st, list) = op
        .get("/api/ops/v1/supervision/systems?status=flagged")
        .await;
    assert_eq!(st, 200);
    assert_eq!(list["thresholds"]["idle_days"], 30);
    let me = find(&list, &id);
    assert_eq!(me["flags"], json!(["long_idle"]), "{me}");
    // a decision needs a reason; merging needs a live system of the department
    let (st, p) = op
        .post(
            &format!("/api/ops/v1/supervision/systems/{id}/decision"),
            &json!({ "decision": "merge", "reason": "" }),
        )
        .await;
    assert_eq!(st, 422, "{p}");
    let (st, d) = op
        .post(
            &format!("/api/ops/v1/supervision/systems/{id}/decision"),
            &json!({ "decision": "clear", "reason": "功能已由社保卡系统覆盖" }),
        )
        .await;
    assert_eq!(st, 201, "{d}");
    assert_eq!(d["flags"], json!(["long_idle"]));
    assert_eq!(d["decided_name"], "吴敏");
    let (_, detail) = op
        .get(&format!("/api/ops/v1/supervision/systems/{id}"))
        .await;
    assert_eq!(detail["system"]["status"], "cleared");
    assert_eq!(detail["flags"], json!([]));
    assert_eq!(detail["decisions"][0]["decision"], "clear");
    // a second decision on a cleared system is refused
    let (st, _) = op
        .post(
            &format!("/api/ops/v1/supervision/systems/{id}/decision"),
            &json!({ "decision": "keep", "reason": "x" }),
        )
        .await;
    assert_eq!(st, 409);
    // an officer may not decide
    let (st, _) = officer
        .post(
            &format!(
                "/api/ops/v1/supervision/systems/{}/decision",
                other["id"].as_str().expect("id")
            ),
            &json!({ "decision": "keep", "reason": "x" }),
        )
        .await;
    assert_eq!(st, 403);
    // the pages: list, detail with the decision form, in English without Chinese texts
    for path in [
        "/ops/supervision/systems?lang=en",
        &format!("/ops/supervision/systems/{id}?lang=en"),
    ] {
        let r = op.b.get(&format!("{}{path}", op.base)).await;
        assert_eq!(r.status(), 200, "{path}");
        let html = r.text().await.expect("html");
        let left = english_only(&html);
        assert!(left.is_empty(), "{path}: {left:?}");
    }
}

async fn a_department_sees_and_edits_only_its_own_systems(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let ma = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let zhou = Session::new(&s, "/auth/staff/login", "officer-zhou").await;
    let (_, a) = ma
        .post("/api/staff/v1/supervision/systems", &system("社保卡系统"))
        .await;
    let ida = a["id"].as_str().expect("id").to_owned();
    let (_, z) = zhou
        .post("/api/staff/v1/supervision/systems", &system("企业登记系统"))
        .await;
    let idz = z["id"].as_str().expect("id").to_owned();
    let (_, mine) = ma.get("/api/staff/v1/supervision/systems").await;
    let names: Vec<&str> = mine["systems"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|x| x["system"]["name"].as_str())
        .collect();
    assert_eq!(names, ["社保卡系统"]);
    let (st, _) = ma
        .get(&format!("/api/staff/v1/supervision/systems/{idz}"))
        .await;
    assert_eq!(st, 404);
    let (st, _) = put(
        &ma,
        &format!("/api/staff/v1/supervision/systems/{idz}"),
        &system("改名"),
    )
    .await;
    assert_eq!(st, 404);
    let r =
        ma.b.get(&format!("{}/desk/supervision/systems/{idz}", ma.base))
            .await;
    assert_eq!(r.status(), 404);
    // its own: changed
    let (st, changed) = put(
        &ma,
        &format!("/api/staff/v1/supervision/systems/{ida}"),
        &system("社保卡管理系统"),
    )
    .await;
    assert_eq!(st, 200, "{changed}");
    assert_eq!(changed["name"], "社保卡管理系统");
    // another department's token cannot be named
    let (token, _) = onewindow::auth::tokens::issue(
        s.app.state.store.as_ref(),
        "11150700MB1530001X",
        vec!["cases:read".into()],
        "x".into(),
        None,
        Utc::now(),
    )
    .await
    .expect("token");
    let mut body = system("社保卡管理系统");
    body["token_id"] = json!(token.id);
    let (st, p) = put(
        &ma,
        &format!("/api/staff/v1/supervision/systems/{ida}"),
        &body,
    )
    .await;
    assert_eq!(st, 422, "{p}");
    assert_eq!(p["errors"][0]["field"], "token_id");
    // the operator sees both; an officer cannot use the operator's list
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (_, all) = op.get("/api/ops/v1/supervision/systems").await;
    find(&all, &ida);
    find(&all, &idz);
    let (st, _) = ma.get("/api/ops/v1/supervision/systems").await;
    assert_eq!(st, 403);
    // the officer's pages: list and register form (with a CSRF-checked post)
    let r =
        ma.b.get(&format!("{}/desk/supervision/systems?lang=en", ma.base))
            .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("html");
    assert!(html.contains("社保卡管理系统") && !html.contains("企业登记系统"));
    let left = english_only(&html);
    assert!(left.is_empty(), "{left:?}");
    let r =
        ma.b.client
            .post(format!("{}/desk/supervision/systems", ma.base))
            .header("accept", "text/html")
            .header("x-csrf-token", &ma.csrf)
            .form(&[
                ("_csrf", ma.csrf.as_str()),
                ("name", "就业登记系统"),
                ("function", "就业失业登记"),
                ("users_scope", "社区"),
                ("frequency", "weekly"),
                ("network", "intranet"),
                ("hosting", "data_centre"),
                ("meant_to_connect", "1"),
            ])
            .send()
            .await
            .expect("post");
    assert_eq!(r.status(), 303);
    let r =
        ma.b.client
            .post(format!("{}/desk/supervision/systems", ma.base))
            .header("accept", "text/html")
            .header("x-csrf-token", &ma.csrf)
            .form(&[
                ("_csrf", ma.csrf.as_str()),
                ("name", ""),
                ("build_cost", "lots"),
            ])
            .send()
            .await
            .expect("post");
    assert_eq!(r.status(), 422);
}
