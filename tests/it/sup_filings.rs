//! Supervision, filings and monthly progress (issue 15, items 3 and 4) through HTTP on
//! both backends: a filing returned, resubmitted and approved with its history; an O&M
//! request for an own-room or flagged system marked and sent to experts before approval;
//! reports on time, late and missing, and the operator's view of who has not reported;
//! who sees what; the same through the pages, in both languages.

use chrono::{Datelike, Utc};
use onewindow::supervision::filings::{
    china_date, last_reportable, month_code, previous_month, report_deadline,
};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::cases::Session;
use crate::desk_pages::page;
use crate::harness::Backend;
use crate::login::{LoginSetup, with_dev_idp};

backend_tests!(
    a_filing_is_returned_resubmitted_and_approved,
    an_om_request_for_an_own_room_or_flagged_system_goes_to_experts,
    monthly_reports_are_marked_late_and_missing_ones_are_listed,
    filings_and_reports_work_in_the_pages_in_both_languages,
    the_demo_has_filings_in_every_state_and_one_late_department,
);

const MARKET: &str = "11150700MB1530001X";
const HRSS: &str = "11150700MB15300034";

async fn staff(s: &LoginSetup, persona: &str) -> Session {
    Session::new(s, "/auth/staff/login", persona).await
}

async fn put(who: &Session, path: &str, body: &Value) -> (u16, Value) {
    who.send(reqwest::Method::PUT, path, body, None).await
}

fn construction() -> Value {
    json!({
        "kind": "construction",
        "title": "企业登记全程电子化系统升级改造",
        "amount": 1_850_000,
        "justification": "对接自治区企业登记系统，实现营业执照电子证照实时共享。",
    })
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Registers an information system straight in the registry's table (the registry's own
/// routes are another part's), as the systems part would hold it.
async fn register_system(
    s: &LoginSetup,
    department: &str,
    name: &str,
    status: &str,
    hosting: &str,
) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    let url = s.app.state.settings.database_url();
    let sql = format!(
        "INSERT INTO info_systems (id, department, name, function, users_scope, frequency, network, \
         hosting, status, created_by, created_at, updated_at) VALUES ('{id}', '{department}', '{name}', \
         '查询', '本部门', 'daily', 'intranet', '{hosting}', '{status}', 'test', \
         '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')"
    );
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&url).await.expect("sqlite");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .expect("insert");
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&url).await.expect("postgres");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .expect("insert");
        pool.close().await;
    }
    id
}

async fn a_filing_is_returned_resubmitted_and_approved(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let zhou = staff(&s, "officer-zhou").await;
    let ma = staff(&s, "officer-ma").await;
    let wu = staff(&s, "operator-wu").await;

    // bad input: every field named, nothing stored
    let (status, p) = zhou
        .post(
            "/api/staff/v1/supervision/filings",
            &json!({"kind": "build", "title": "", "amount": 0, "justification": " "}),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(fields(&p), ["kind", "title", "amount", "justification"]);
    let (status, p) = zhou
        .post("/api/staff/v1/supervision/filings", &json!({"kind": "om"}))
        .await;
    assert_eq!(status, 400, "{p}");
    assert_eq!(p["type"], "urn:onewindow:problem:bad-request");

    let (status, f) = zhou
        .post("/api/staff/v1/supervision/filings", &construction())
        .await;
    assert_eq!(status, 201, "{f}");
    assert_eq!(f["state"]["code"], "submitted");
    assert_eq!(f["department"], MARKET);
    assert_eq!(f["must_review"], false);
    let id = f["id"].as_str().expect("id").to_owned();

    // access: another department does not see it; the operator does; roles are kept apart
    let (status, _) = ma
        .get(&format!("/api/staff/v1/supervision/filings/{id}"))
        .await;
    assert_eq!(status, 404);
    let (_, list) = ma.get("/api/staff/v1/supervision/filings").await;
    assert_eq!(list["filings"].as_array().expect("list").len(), 0);
    let (status, _) = ma
        .post(
            &format!("/api/staff/v1/supervision/filings/{id}/resubmit"),
            &construction(),
        )
        .await;
    assert_eq!(status, 404);
    let (_, list) = wu
        .get("/api/ops/v1/supervision/filings?state=submitted")
        .await;
    assert!(
        list["filings"]
            .as_array()
            .expect("list")
            .iter()
            .any(|x| x["id"] == id.as_str())
    );
    let (status, _) = zhou.get("/api/ops/v1/supervision/filings").await;
    assert_eq!(status, 403);
    let (status, _) = wu.get("/api/staff/v1/supervision/filings").await;
    assert_eq!(status, 403);
    let (status, _) = zhou
        .post(
            &format!("/api/ops/v1/supervision/filings/{id}/review"),
            &json!({"action": "approve"}),
        )
        .await;
    assert_eq!(status, 403);

    // resubmitting what was not returned is a conflict
    let (status, p) = zhou
        .post(
            &format!("/api/staff/v1/supervision/filings/{id}/resubmit"),
            &construction(),
        )
        .await;
    assert_eq!(status, 409, "{p}");

    // returning needs comments
    let review = format!("/api/ops/v1/supervision/filings/{id}/review");
    let (status, p) = wu.post(&review, &json!({"action": "return"})).await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(fields(&p), ["comment"]);
    let (status, p) = wu.post(&review, &json!({"action": "maybe"})).await;
    assert_eq!(status, 422, "{p}");
    let (status, f) = wu
        .post(
            &review,
            &json!({"action": "return", "comment": "请补充投资估算明细。"}),
        )
        .await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["state"]["code"], "returned");
    assert_eq!(f["review_actions"], json!([]));
    let (status, _) = wu.post(&review, &json!({"action": "approve"})).await;
    assert_eq!(status, 409, "a returned filing waits for the department");

    // the department resubmits, changed; the kind cannot change
    let mut changed = construction();
    changed["amount"] = json!(1_600_000);
    changed["note"] = json!("已补充投资估算明细，金额调整为160万元。");
    let resubmit = format!("/api/staff/v1/supervision/filings/{id}/resubmit");
    let mut other_kind = changed.clone();
    other_kind["kind"] = json!("om");
    other_kind["system_id"] = json!(null);
    let (status, p) = zhou.post(&resubmit, &other_kind).await;
    assert_eq!(status, 422, "{p}");
    let (status, f) = zhou.post(&resubmit, &changed).await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["state"]["code"], "submitted");
    assert_eq!(f["amount"], 1_600_000);

    let (status, f) = wu
        .post(
            &review,
            &json!({"action": "approve", "comment": "同意备案。"}),
        )
        .await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["state"]["code"], "approved");
    let (status, _) = wu
        .post(&review, &json!({"action": "reject", "comment": "x"}))
        .await;
    assert_eq!(status, 409, "an approved filing is final");

    // the history, as the department sees it
    let (status, f) = zhou
        .get(&format!("/api/staff/v1/supervision/filings/{id}"))
        .await;
    assert_eq!(status, 200);
    let steps: Vec<&str> = f["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(steps, ["submitted", "returned", "resubmitted", "approved"]);
    assert_eq!(f["history"][1]["comment"], "请补充投资估算明细。");
    assert_eq!(f["history"][1]["actor_name"], "吴敏");
    assert_eq!(f["history"][2]["actor_name"], "周涛");
    let seqs: Vec<i64> = f["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| e["seq"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);

    // English problems
    let r =
        wu.b.client
            .post(wu.base.clone() + &review)
            .header("x-csrf-token", &wu.csrf)
            .header("accept-language", "en")
            .json(&json!({"action": "approve"}))
            .send()
            .await
            .expect("post");
    assert_eq!(r.status().as_u16(), 409);
    let p: Value = r.json().await.expect("json");
    assert!(
        p["detail"].as_str().unwrap_or("").contains("Approved"),
        "{p}"
    );
}

async fn an_om_request_for_an_own_room_or_flagged_system_goes_to_experts(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let zhou = staff(&s, "officer-zhou").await;
    let wu = staff(&s, "operator-wu").await;
    let own = register_system(&s, MARKET, "市场主体登记系统", "active", "own_room").await;
    let flagged = register_system(&s, MARKET, "旧版档案查询系统", "flagged", "data_centre").await;
    let centre = register_system(&s, MARKET, "企业信用信息公示系统", "active", "data_centre").await;
    let cleared = register_system(&s, MARKET, "已清理系统", "cleared", "data_centre").await;
    let others = register_system(&s, HRSS, "社会保障卡服务系统", "active", "own_room").await;

    let om = |system: Option<&str>| {
        json!({
            "kind": "om", "title": "系统年度运维", "amount": 300_000,
            "justification": "保障系统日常运行。", "system_id": system,
        })
    };
    let file = "/api/staff/v1/supervision/filings";
    // an O&M request names a system of the department that is still in use
    for (system, why) in [
        (None, "none"),
        (Some(others.as_str()), "another department's"),
        (Some(cleared.as_str()), "cleared"),
    ] {
        let (status, p) = zhou.post(file, &om(system)).await;
        assert_eq!(status, 422, "{why}: {p}");
        assert_eq!(fields(&p), ["system_id"], "{why}");
    }

    let (status, f) = zhou.post(file, &om(Some(&own))).await;
    assert_eq!(status, 201, "{f}");
    assert_eq!(f["must_review"], true);
    assert_eq!(f["review_reasons"][0]["code"], "own_room");
    assert_eq!(f["system"]["name"], "市场主体登记系统");
    assert_eq!(
        f["review_actions"],
        json!(["expert_review", "return", "reject"])
    );
    let own_filing = f["id"].as_str().expect("id").to_owned();

    let (status, f) = zhou.post(file, &om(Some(&flagged))).await;
    assert_eq!(status, 201, "{f}");
    assert_eq!(f["review_reasons"][0]["code"], "zombie");
    let zombie_filing = f["id"].as_str().expect("id").to_owned();

    let (status, f) = zhou.post(file, &om(Some(&centre))).await;
    assert_eq!(status, 201, "{f}");
    assert_eq!(
        f["must_review"], false,
        "in the data centre and active: not marked"
    );
    let mut construction_own = om(Some(&own));
    construction_own["kind"] = json!("construction");
    let (status, f) = zhou.post(file, &construction_own).await;
    assert_eq!(status, 201, "{f}");
    assert_eq!(f["must_review"], false, "only O&M requests are marked");

    // the operator's list of marked filings has exactly the two
    let (_, list) = wu
        .get("/api/ops/v1/supervision/filings?must_review=true")
        .await;
    let mut ids: Vec<&str> = list["filings"]
        .as_array()
        .expect("list")
        .iter()
        .map(|f| f["id"].as_str().unwrap_or(""))
        .collect();
    ids.sort();
    let mut want = vec![own_filing.as_str(), zombie_filing.as_str()];
    want.sort();
    assert_eq!(ids, want);
    let (status, _) = wu.get("/api/ops/v1/supervision/filings?state=nope").await;
    assert_eq!(status, 400);

    // not approved before the experts have seen it
    let review = format!("/api/ops/v1/supervision/filings/{own_filing}/review");
    let (status, p) = wu.post(&review, &json!({"action": "approve"})).await;
    assert_eq!(status, 409, "{p}");
    let (status, f) = wu
        .post(
            &review,
            &json!({"action": "expert_review", "comment": "送第三方评估。"}),
        )
        .await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["state"]["code"], "expert_review");
    assert_eq!(f["review_actions"], json!(["approve", "return", "reject"]));
    let (status, f) = wu
        .post(
            &review,
            &json!({"action": "approve", "comment": "评估通过。"}),
        )
        .await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["state"]["code"], "approved");
}

async fn monthly_reports_are_marked_late_and_missing_ones_are_listed(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let zhou = staff(&s, "officer-zhou").await;
    let ma = staff(&s, "officer-ma").await;
    let wu = staff(&s, "operator-wu").await;
    let today = china_date(Utc::now());
    let m1 = last_reportable(today);
    let m2 = previous_month(m1);
    let (last, before) = (month_code(m1), month_code(m2));

    let (status, tasks) = zhou.get("/api/staff/v1/supervision/plan-tasks").await;
    assert_eq!(status, 200);
    let codes: Vec<String> = tasks["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["code"].as_str().unwrap_or("").to_owned())
        .collect();
    // market regulation leads 二(八) and takes part in every task all departments do
    assert!(codes.contains(&"t08".to_owned()) && codes.contains(&"t01".to_owned()));
    assert!(!codes.contains(&"t02".to_owned()));
    let (_, all) = wu.get("/api/ops/v1/supervision/plan-tasks").await;
    assert_eq!(all["tasks"].as_array().expect("tasks").len(), 13);
    let body = |percent: i64| json!({"tasks": codes.iter().map(|c| json!({"task": c, "percent": percent, "note": "按计划推进"})).collect::<Vec<_>>()});

    // bad months and bad entries
    let (status, _) = put(
        &zhou,
        "/api/staff/v1/supervision/reports/2026-13",
        &body(50),
    )
    .await;
    assert_eq!(status, 400);
    let this_month = month_code(today.with_day(1).unwrap_or(today));
    let (status, p) = put(
        &zhou,
        &format!("/api/staff/v1/supervision/reports/{this_month}"),
        &body(50),
    )
    .await;
    assert_eq!(status, 409, "the current month has not ended: {p}");
    let (status, p) = put(
        &zhou,
        &format!("/api/staff/v1/supervision/reports/{last}"),
        &body(150),
    )
    .await;
    assert_eq!(status, 422, "{p}");
    let mut short = body(50);
    short["tasks"].as_array_mut().expect("tasks").pop();
    let (status, p) = put(
        &zhou,
        &format!("/api/staff/v1/supervision/reports/{last}"),
        &short,
    )
    .await;
    assert_eq!(status, 422, "{p}");
    assert!(fields(&p)[0].starts_with("task."), "{p}");

    // last month: on time (unless today is past the 30th)
    let last_late = today > report_deadline(m1);
    let (status, r) = put(
        &zhou,
        &format!("/api/staff/v1/supervision/reports/{last}"),
        &body(60),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["late"], last_late);
    assert_eq!(r["mean_percent"], 60.0);
    if !last_late {
        let (status, r) = put(
            &zhou,
            &format!("/api/staff/v1/supervision/reports/{last}"),
            &body(70),
        )
        .await;
        assert_eq!(status, 200, "revised before the deadline: {r}");
        assert_eq!(r["status"]["code"], "on_time");
        assert_eq!(r["mean_percent"], 70.0);
    }
    // the month before: its deadline has passed, so it is late, and then final
    let (status, r) = put(
        &zhou,
        &format!("/api/staff/v1/supervision/reports/{before}"),
        &body(40),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["late"], true);
    assert_eq!(r["status"]["code"], "late");
    let (status, p) = put(
        &zhou,
        &format!("/api/staff/v1/supervision/reports/{before}"),
        &body(45),
    )
    .await;
    assert_eq!(status, 409, "{p}");

    // the department's own months
    let (_, months) = zhou.get("/api/staff/v1/supervision/reports").await;
    let months = months["months"].as_array().expect("months");
    assert_eq!(months.len(), 12);
    assert_eq!(months[0]["month"], last.as_str());
    assert_eq!(months[1]["status"]["code"], "late");
    assert_eq!(months[2]["status"]["code"], "missing");

    // another department sees its own (empty) report, never market regulation's
    let (status, r) = ma
        .get(&format!("/api/staff/v1/supervision/reports/{before}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(r["department"], HRSS);
    assert_eq!(r["tasks"], json!([]));
    assert_eq!(r["status"]["code"], "missing");
    let (status, _) = ma.get("/api/ops/v1/supervision/reports").await;
    assert_eq!(status, 403);

    // the operator: who has not reported, who was late
    let (status, o) = wu
        .get(&format!("/api/ops/v1/supervision/reports?month={before}"))
        .await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["late"], json!([MARKET]));
    let missing = o["not_reported"].as_array().expect("list");
    assert!(missing.contains(&json!(HRSS)) && !missing.contains(&json!(MARKET)));
    assert_eq!(
        missing.len(),
        o["departments"].as_array().expect("all").len() - 1
    );
    let (_, o) = wu.get("/api/ops/v1/supervision/reports").await;
    assert_eq!(o["month"], last.as_str(), "the last ended month by default");
    let hrss = o["departments"]
        .as_array()
        .expect("all")
        .iter()
        .find(|d| d["department"] == HRSS)
        .expect("hrss")
        .clone();
    assert_eq!(
        hrss["status"]["code"],
        if last_late { "missing" } else { "due" }
    );
    let (status, r) = wu
        .get(&format!(
            "/api/ops/v1/supervision/reports/{before}/{MARKET}"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(r["tasks"].as_array().expect("lines").len(), codes.len());
    assert_eq!(r["tasks"][0]["percent"], 40);
    let (status, _) = wu
        .get(&format!("/api/ops/v1/supervision/reports/{before}/NOPE"))
        .await;
    assert_eq!(status, 404);
}

/// Chinese text left on an English page once what is marked as Chinese data is taken out
/// (and the logged-in user's name in the header, which the layout shows as it is).
fn chinese_outside_data(html: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"lang="zh-CN"[^>]*>[^<]*"#).expect("regex");
    let rest = re
        .replace_all(html, "")
        .replace("<span>周涛</span>", "")
        .replace("<span>吴敏</span>", "");
    rest.lines()
        .filter(|l| l.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)))
        .map(|l| l.trim().to_owned())
        .collect()
}

/// Posts a page form; answers the status and the redirect target or the page.
async fn form(who: &Session, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let mut pairs: Vec<(String, String)> = vec![("_csrf".into(), who.csrf.clone())];
    pairs.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let r = who
        .b
        .client
        .post(format!("{}{path}", who.base))
        .header("accept", "text/html")
        .header("x-csrf-token", &who.csrf)
        .form(&pairs)
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

async fn english(who: &Session, path: &str) -> String {
    let r = who
        .b
        .client
        .get(format!("{}{path}?lang=en", who.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    assert_eq!(r.status().as_u16(), 200, "{path}");
    let html = r.text().await.expect("text");
    let left = chinese_outside_data(&html);
    assert!(
        left.is_empty(),
        "{path} in English shows Chinese: {left:#?}"
    );
    html
}

async fn filings_and_reports_work_in_the_pages_in_both_languages(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let zhou = staff(&s, "officer-zhou").await;
    let wu = staff(&s, "operator-wu").await;
    let own = register_system(&s, MARKET, "市场主体登记系统", "active", "own_room").await;

    let (status, html) = page(&zhou, "/desk/supervision/filings/new").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("市场主体登记系统"),
        "the department's systems are offered"
    );
    // a form with mistakes comes back with them, keeping what was typed
    let (status, html) = form(
        &zhou,
        "/desk/supervision/filings",
        &[
            ("kind", "om"),
            ("title", "年度运维"),
            ("amount", "十万"),
            ("justification", ""),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        html.contains("error-summary") && html.contains("年度运维"),
        "{html}"
    );
    // a forged form is refused
    let r = zhou
        .b
        .client
        .post(format!("{}/desk/supervision/filings", zhou.base))
        .header("x-csrf-token", &zhou.csrf)
        .form(&[("_csrf", "forged"), ("kind", "om")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);

    let (status, to) = form(
        &zhou,
        "/desk/supervision/filings",
        &[
            ("kind", "om"),
            ("title", "市场主体登记系统年度运维"),
            ("amount", "320,000"),
            ("justification", "系统部署在本局机房，保障日常运行。"),
            ("system_id", &own),
        ],
    )
    .await;
    assert_eq!(status, 303, "{to}");
    assert!(to.starts_with("/desk/supervision/filings/") && to.ends_with("?done=filed"));
    let id = to
        .trim_start_matches("/desk/supervision/filings/")
        .trim_end_matches("?done=filed")
        .to_owned();
    let (_, html) = page(&zhou, &to).await;
    assert!(
        html.contains("id=\"review-reasons\"") && html.contains("320,000"),
        "{html}"
    );

    // the operator sees it marked, and cannot approve it before expert review
    let (_, html) = page(&wu, "/ops/supervision/filings?review=1").await;
    assert!(html.contains(&format!("filing-{id}")));
    let (_, html) = page(&wu, &format!("/ops/supervision/filings/{id}")).await;
    assert!(
        !html.contains("value=\"approve\""),
        "approve is not offered yet"
    );
    let review = format!("/ops/supervision/filings/{id}/review");
    let (status, html) = form(&wu, &review, &[("action", "return"), ("comment", "")]).await;
    assert_eq!(status, 422);
    assert!(html.contains("error-summary"));
    let (status, to) = form(
        &wu,
        &review,
        &[
            ("action", "return"),
            ("comment", "请说明迁移至大数据中心的计划。"),
        ],
    )
    .await;
    assert_eq!(status, 303, "{to}");
    let (_, html) = page(&zhou, &format!("/desk/supervision/filings/{id}")).await;
    assert!(html.contains("id=\"returned-comments\"") && html.contains("resubmit-form"));
    let (status, to) = form(
        &zhou,
        &format!("/desk/supervision/filings/{id}/resubmit"),
        &[
            ("title", "市场主体登记系统年度运维"),
            ("amount", "280000"),
            (
                "justification",
                "明年迁移至大数据中心，本年度按迁移前标准测算。",
            ),
            ("system_id", &own),
            ("note", "已补充迁移计划。"),
        ],
    )
    .await;
    assert_eq!(status, 303, "{to}");
    let (status, _) = form(
        &wu,
        &review,
        &[("action", "expert_review"), ("comment", "")],
    )
    .await;
    assert_eq!(status, 303);
    let (status, _) = form(
        &wu,
        &review,
        &[("action", "approve"), ("comment", "评估通过。")],
    )
    .await;
    assert_eq!(status, 303);
    let (_, f) = wu
        .get(&format!("/api/ops/v1/supervision/filings/{id}"))
        .await;
    assert_eq!(f["state"]["code"], "approved");
    assert_eq!(f["amount"], 280_000);
    assert_eq!(f["history"].as_array().expect("history").len(), 5);

    // a monthly report through its form
    let last = month_code(last_reportable(china_date(Utc::now())));
    let (_, tasks) = zhou.get("/api/staff/v1/supervision/plan-tasks").await;
    let codes: Vec<String> = tasks["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["code"].as_str().unwrap_or("").to_owned())
        .collect();
    let mut fields: Vec<(String, String)> = Vec::new();
    for c in &codes {
        fields.push((format!("percent_{c}"), "80".into()));
        fields.push((format!("note_{c}"), "已完成大部分工作。".into()));
    }
    fields[0].1 = "abc".into();
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let path = format!("/desk/supervision/reports/{last}");
    let (status, html) = form(&zhou, &path, &refs).await;
    assert_eq!(status, 422);
    assert!(
        html.contains(&format!("#percent_{}", codes[0])),
        "the summary links to the field"
    );
    fields[0].1 = "80".into();
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, to) = form(&zhou, &path, &refs).await;
    assert_eq!(status, 303, "{to}");
    assert_eq!(to, "/desk/supervision/reports?done=sent");
    let (_, html) = page(&zhou, &to).await;
    assert!(html.contains(&format!("id=\"month-{last}\"")));
    let (_, html) = page(&wu, &format!("/ops/supervision/reports?month={last}")).await;
    assert!(
        html.contains(&format!("id=\"dept-{HRSS}\" data-status=")),
        "every department is listed"
    );
    assert!(!html.contains(&format!("id=\"dept-{MARKET}\" data-status=\"due\"")));

    // the pages in English carry no Chinese but the data
    for p in [
        "/desk/supervision/filings".to_owned(),
        "/desk/supervision/filings/new".to_owned(),
        format!("/desk/supervision/filings/{id}"),
        "/desk/supervision/reports".to_owned(),
        path.clone(),
    ] {
        english(&zhou, &p).await;
    }
    for p in [
        "/ops/supervision/filings".to_owned(),
        format!("/ops/supervision/filings/{id}"),
        "/ops/supervision/reports".to_owned(),
        format!("/ops/supervision/reports/{last}/{MARKET}"),
    ] {
        let html = english(&wu, &p).await;
        assert!(
            html.contains("Filings &amp; progress") || html.contains("Filings & progress"),
            "{p}: nav"
        );
    }
    // and in Chinese
    let (_, html) = page(&wu, "/ops/supervision/filings").await;
    assert!(html.contains("备案申请"));

    // an officer cannot open the operator's pages
    let (status, _) = page(&zhou, "/ops/supervision/filings").await;
    assert_eq!(status, 403);
}

async fn the_demo_has_filings_in_every_state_and_one_late_department(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    // the registry as the systems part seeds it: the zombie, and systems to run
    register_system(
        &s,
        "11150700MB1530009N",
        "旧版档案查询系统",
        "flagged",
        "own_room",
    )
    .await;
    register_system(&s, HRSS, "社会保障卡服务系统", "active", "data_centre").await;
    register_system(
        &s,
        "11150700MB15300047",
        "公共场所卫生许可系统",
        "active",
        "own_room",
    )
    .await;
    register_system(
        &s,
        "11150700MB1530007G",
        "医保结算系统",
        "active",
        "own_room",
    )
    .await;
    let state = &s.app.state;
    onewindow::supervision::filings::seed_demo(state, &s.issuer)
        .await
        .expect("seeds");
    let wu = staff(&s, "operator-wu").await;
    let (_, list) = wu.get("/api/ops/v1/supervision/filings").await;
    let filings = list["filings"].as_array().expect("filings").clone();
    assert_eq!(filings.len(), 9, "{list}");
    let states: std::collections::BTreeSet<&str> = filings
        .iter()
        .map(|f| f["state"]["code"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        states.into_iter().collect::<Vec<_>>(),
        [
            "approved",
            "expert_review",
            "rejected",
            "returned",
            "submitted"
        ]
    );
    let zombie = filings
        .iter()
        .find(|f| f["system"]["name"] == "旧版档案查询系统")
        .expect("the zombie's O&M request");
    assert_eq!(zombie["state"]["code"], "expert_review");
    let reasons: Vec<&str> = zombie["review_reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| r["code"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(reasons, ["zombie", "own_room"]);
    let (_, marked) = wu
        .get("/api/ops/v1/supervision/filings?must_review=true")
        .await;
    // the zombie's, the medical own room's, and health's (own room too: approved only
    // after the experts the seed sends it to)
    assert_eq!(marked["filings"].as_array().expect("marked").len(), 3);

    let today = china_date(Utc::now());
    let m1 = last_reportable(today);
    let m2 = previous_month(m1);
    let (_, o) = wu
        .get(&format!(
            "/api/ops/v1/supervision/reports?month={}",
            month_code(m2)
        ))
        .await;
    assert_eq!(o["late"], json!(["11150700MB1530008K"]), "民政局 was late");
    assert_eq!(o["not_reported"], json!([]));
    let (_, o) = wu
        .get(&format!(
            "/api/ops/v1/supervision/reports?month={}",
            month_code(m1)
        ))
        .await;
    assert_eq!(o["not_reported"].as_array().expect("list").len(), 4, "{o}");
    assert!(
        o["not_reported"]
            .as_array()
            .expect("list")
            .contains(&json!(MARKET))
    );

    // a second start adds nothing
    onewindow::supervision::filings::seed_demo(state, &s.issuer)
        .await
        .expect("seeds again");
    let (_, again) = wu.get("/api/ops/v1/supervision/filings").await;
    assert_eq!(again["filings"].as_array().expect("filings").len(), 9);
}
