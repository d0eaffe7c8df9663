//! Assessment figures (考核评价) through HTTP: systems, traffic, cases, reads and reports
//! are written straight into the tables (as the registry, the exchange and the case
//! paths would), then the figures, the ranking, the trace pages and the monthly export
//! must show exactly them: live systems make the connectivity rate, a cleared system
//! leaves its denominator, the ranking follows the on-time rate and reuse, the export
//! has one row per department, and each caller sees only what their role allows.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::backend_tests;
use crate::cases::Session;
use crate::desk_pages::{chinese_left, page};
use crate::harness::Backend;
use crate::login::{LoginSetup, with_dev_idp};

backend_tests!(
    connectivity_counts_live_systems_and_a_cleared_one_leaves_the_denominator,
    the_ranking_reflects_on_time_rate_and_reuse,
    the_monthly_export_has_one_row_per_department,
    the_pages_trace_the_figures_in_both_languages,
);

const HRSS: &str = "11150700MB15300034"; // officer-ma's department
const MARKET: &str = "11150700MB1530001X";
const POLICE: &str = "11150700MB15300021";
const HRSS_SERVICE: &str = "11150700MB15300034-GG-0002";
const MARKET_SERVICE: &str = "11150700MB1530001X-XK-0001";
const POLICE_SERVICE: &str = "11150700MB15300021-QR-0001";

/// The time text both backends read: fixed-width RFC 3339 (SQLite compares it as text).
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn id() -> String {
    Uuid::now_v7().to_string()
}

/// Runs statements straight in the gateway's database (one SQL text for both backends:
/// literals only, which PostgreSQL casts to each column's type).
async fn sql(s: &LoginSetup, statements: &[String]) {
    use sqlx::Connection;
    let url = s.app.state.settings.database_url();
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
        for st in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(st.clone()))
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{st}: {e}"));
        }
    } else {
        let mut c = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        for st in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(st.clone()))
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{st}: {e}"));
        }
    }
}

/// A registered system; answers its id.
fn system(
    dept: &str,
    name: &str,
    token: Option<&str>,
    push: Option<&str>,
    meant: bool,
    created: DateTime<Utc>,
) -> (String, String) {
    let sid = id();
    let opt = |v: Option<&str>| v.map(|v| format!("'{v}'")).unwrap_or("NULL".into());
    (
        sid.clone(),
        format!(
            "INSERT INTO info_systems (id, department, name, function, users_scope, frequency, \
             network, hosting, token_id, push_endpoint, meant_to_connect, status, created_by, \
             created_at, updated_at) VALUES ('{sid}', '{dept}', '{name}', '业务办理', '全市', \
             'daily', 'intranet', 'data_centre', {}, {}, '{}', 'active', 'test', '{c}', '{c}')",
            opt(token),
            opt(push),
            if meant { 1 } else { 0 },
            c = ts(created),
        ),
    )
}

fn token_use(token: &str, at: DateTime<Utc>) -> String {
    format!(
        "INSERT INTO token_usage (token_id, day, calls, failures, last_ok_at) \
         VALUES ('{token}', '{}', 12, 1, '{}')",
        at.date_naive(),
        ts(at)
    )
}

/// A case row with its outcome; answers (id, case number, statements).
#[allow(clippy::too_many_arguments)]
fn case(
    dept: &str,
    service: &str,
    created: DateTime<Utc>,
    due_days: Option<i64>,
    concluded_days: Option<i64>,
    filled: i64,
    prefilled: i64,
    rating: Option<i64>,
) -> (String, String, String) {
    let cid = id();
    let no = format!("T{}", &cid.replace('-', "")[20..]);
    let day = created.date_naive();
    let date = |d: Option<i64>| {
        d.map(|d| format!("'{}'", day + Duration::days(d)))
            .unwrap_or("NULL".into())
    };
    let concluded = concluded_days.is_some();
    (
        cid.clone(),
        no.clone(),
        format!(
            "INSERT INTO cases (id, case_no, query_code, service_code, service_version, department, \
             applicant_kind, applicant_name, channel, status, form, accepted_on, due_on, concluded_on, \
             result, rating, rated_at, fields_filled, fields_prefilled, created_at, updated_at) \
             VALUES ('{cid}', '{no}', '123456', '{service}', 'v1', '{dept}', 'person', '测试', 'online', \
             '{status}', '{{}}', '{day}', {due}, {done}, {result}, {rating}, {rated}, {filled}, {prefilled}, \
             '{c}', '{c}')",
            status = if concluded { "approved" } else { "accepted" },
            due = date(due_days),
            done = date(concluded_days),
            result = if concluded { "'approved'" } else { "NULL" },
            rating = rating.map(|r| r.to_string()).unwrap_or("NULL".into()),
            rated = if rating.is_some() {
                format!("'{}'", ts(created))
            } else {
                "NULL".into()
            },
            c = ts(created),
        ),
    )
}

fn material(case_id: &str, n: i64, substituted: bool) -> String {
    format!(
        "INSERT INTO case_materials (case_id, material_id, substituted, added_seq) \
         VALUES ('{case_id}', 'm{n}', '{}', 1)",
        if substituted { 1 } else { 0 }
    )
}

fn read(service: &str, resource: &str, at: DateTime<Utc>) -> String {
    format!(
        "INSERT INTO data_access (id, subject_index, seq, at, subject_kind, resource, items, \
         reader_kind, reader_name, purpose, service_code, prev_hash, hash) VALUES ('{}', '{}', 1, \
         '{}', 'person', '{resource}', '[\"name\"]', 'applicant', 'x', 'prefill', '{service}', 'p', 'h')",
        id(),
        id(),
        ts(at)
    )
}

fn department<'a>(figures: &'a Value, uscc: &str) -> &'a Value {
    figures["departments"]
        .as_array()
        .expect("departments")
        .iter()
        .find(|d| d["department"] == uscc)
        .unwrap_or_else(|| panic!("{uscc} ranked"))
}

async fn connectivity_counts_live_systems_and_a_cleared_one_leaves_the_denominator(b: Backend) {
    let s = with_dev_idp(b, &[("worker_in_serve", "false")]).await;
    let now = Utc::now();
    let long_ago = now - Duration::days(200);
    let (t_live, t_idle) = (id(), id());
    let (_, live) = system(HRSS, "社保经办系统", Some(&t_live), None, true, long_ago);
    let (idle_id, idle) = system(
        HRSS,
        "旧版档案查询系统",
        Some(&t_idle),
        None,
        true,
        long_ago,
    );
    let (_, unconnected) = system(HRSS, "内部排班系统", None, None, true, long_ago);
    let (_, internal) = system(HRSS, "内部办公系统", None, None, false, long_ago);
    let hook = "https://hrss.example.gov.cn/hook";
    let (_, pushed) = system(HRSS, "就业服务系统", None, Some(hook), true, long_ago);
    // a case for the push evidence, delivered 2xx yesterday
    let (cid, _, c) = case(
        HRSS,
        HRSS_SERVICE,
        now - Duration::days(1),
        None,
        None,
        0,
        0,
        None,
    );
    let event = id();
    sql(
        &s,
        &[
            live,
            idle,
            unconnected,
            internal,
            pushed,
            token_use(&t_live, now - Duration::days(2)),
            token_use(&t_idle, now - Duration::days(90)),
            c,
            format!(
                "INSERT INTO department_endpoints (department, mode, endpoint, updated_at) \
                 VALUES ('{HRSS}', 'push', '{hook}', '{}')",
                ts(long_ago)
            ),
            format!(
                "INSERT INTO outbox (id, case_id, case_seq, event_type, payload, created_at, department, state) \
                 VALUES ('{event}', '{cid}', 1, 'cn.gov.onewindow.case.submitted.v1', '{{}}', '{t}', '{HRSS}', 'delivered')",
                t = ts(now - Duration::days(1))
            ),
            format!(
                "INSERT INTO delivery_attempts (event_id, attempt, at, status, latency_ms) \
                 VALUES ('{event}', 1, '{}', 200, 12)",
                ts(now - Duration::days(1))
            ),
        ],
    )
    .await;

    let operator = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (status, f) = operator.get("/api/ops/v1/supervision/figures").await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["period"], "live");
    let h = department(&f, HRSS);
    let c = &h["counts"];
    assert_eq!(c["systems_registered"], 5, "{h}");
    assert_eq!(c["systems_connected"], 3, "token, token, push endpoint");
    assert_eq!(
        c["systems_meant"], 4,
        "the internal system is not meant to connect"
    );
    assert_eq!(c["systems_live"], 2, "used two days ago, pushed yesterday");
    assert_eq!(h["rates"]["connectivity"], 0.5);
    assert_eq!(h["rates"]["integration"], 0.6);
    assert_eq!(f["city"]["systems_live"], 2);

    // the operator clears the idle system: it leaves both denominators from now on
    sql(
        &s,
        &[
            format!("UPDATE info_systems SET status = 'cleared' WHERE id = '{idle_id}'"),
            format!(
                "INSERT INTO system_decisions (id, system_id, flags, decision, reason, decided_by, \
                 decided_name, decided_at) VALUES ('{}', '{idle_id}', '[\"long_idle\"]', 'clear', \
                 '长期未使用', 'op', '吴运维', '{}')",
                id(),
                ts(Utc::now())
            ),
        ],
    )
    .await;
    let (_, f) = operator.get("/api/ops/v1/supervision/figures").await;
    let c = &department(&f, HRSS)["counts"];
    assert_eq!(c["systems_registered"], 4);
    assert_eq!(c["systems_meant"], 3);
    assert_eq!(c["systems_live"], 2);
    assert_eq!(department(&f, HRSS)["rates"]["connectivity"], 0.6667);
    // … but a month that ended before the decision still counted it
    let last = (now - Duration::days(40)).format("%Y-%m").to_string();
    let (status, f) = operator
        .get(&format!("/api/ops/v1/supervision/figures?month={last}"))
        .await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["period"], last.as_str());
    assert_eq!(department(&f, HRSS)["counts"]["systems_meant"], 4);

    // the records behind: every system, the cleared one marked as not counted
    let (status, d) = operator
        .get(&format!(
            "/api/ops/v1/supervision/figures/departments/{HRSS}"
        ))
        .await;
    assert_eq!(status, 200, "{d}");
    let systems = d["systems"].as_array().expect("systems");
    assert_eq!(systems.len(), 5);
    let idle = systems
        .iter()
        .find(|x| x["id"] == idle_id.as_str())
        .expect("idle");
    assert_eq!(idle["counted"], false);
    assert_eq!(idle["live"], false);
    assert!(
        idle["last_ok_at"].is_string(),
        "its last use is shown: {idle}"
    );
    let pushed = systems
        .iter()
        .find(|x| x["name"] == "就业服务系统")
        .expect("pushed");
    assert_eq!(pushed["live"], true);

    // the department's officer sees the same through the staff API, and nothing else
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let (status, own) = officer.get("/api/staff/v1/supervision/figures").await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["figures"]["department"], HRSS);
    assert_eq!(own["figures"]["counts"], d["figures"]["counts"]);
    let (status, p) = officer.get("/api/ops/v1/supervision/figures").await;
    assert_eq!(status, 403, "{p}");
    let (status, _) = officer
        .get(&format!(
            "/api/ops/v1/supervision/figures/departments/{MARKET}"
        ))
        .await;
    assert_eq!(status, 403);
    let (status, _) = operator.get("/api/staff/v1/supervision/figures").await;
    assert_eq!(status, 403, "an operator has no department of their own");
    let (status, p) = operator
        .get("/api/ops/v1/supervision/figures/departments/11150700MB000000XX")
        .await;
    assert_eq!(status, 404, "{p}");
}

async fn the_ranking_reflects_on_time_rate_and_reuse(b: Backend) {
    // only the on-time rate (3 points) and reuse (1 point) are weighed
    let s = with_dev_idp(
        b,
        &[
            ("worker_in_serve", "false"),
            ("assessment_weight_integration", "0"),
            ("assessment_weight_connectivity", "0"),
            ("assessment_weight_shared_items", "0"),
            ("assessment_weight_collaboration", "0"),
            ("assessment_weight_progress", "0"),
            ("assessment_weight_on_time", "3"),
            ("assessment_weight_reuse", "1"),
            ("assessment_weight_rating", "0"),
        ],
    )
    .await;
    let t = Utc::now() - Duration::days(15);
    // market regulation: both on time, 8 of 10 fields prefilled, one of two materials 免提交
    let (m1, _, c1) = case(MARKET, MARKET_SERVICE, t, Some(10), Some(5), 5, 4, Some(5));
    let (_, _, c2) = case(MARKET, MARKET_SERVICE, t, Some(10), Some(10), 5, 4, Some(4));
    // public security: one late, nothing prefilled or substituted
    let (_, late_no, c3) = case(POLICE, POLICE_SERVICE, t, Some(3), Some(6), 6, 0, Some(2));
    let (_, _, c4) = case(POLICE, POLICE_SERVICE, t, Some(3), Some(1), 6, 0, None);
    // still open: lodged, not in the on-time figures
    let (_, _, c5) = case(POLICE, POLICE_SERVICE, t, Some(3), None, 6, 0, None);
    sql(
        &s,
        &[
            c1,
            c2,
            c3,
            c4,
            c5,
            material(&m1, 1, true),
            material(&m1, 2, false),
            read(MARKET_SERVICE, "person", t),
            read(MARKET_SERVICE, "person", t),
            read(POLICE_SERVICE, "person", t),
            format!(
                "INSERT INTO progress_reports (department, month, tasks, submitted_by, submitted_name, \
                 submitted_at, late) VALUES ('{POLICE}', '{}', '[{{\"task\": \"二(一)\", \"percent\": 60}}, \
                 {{\"task\": \"二(六)\", \"percent\": 30}}]', 'x', '公安', '{}', '1')",
                (t - Duration::days(35)).format("%Y-%m"),
                ts(t)
            ),
        ],
    )
    .await;
    let operator = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (status, f) = operator.get("/api/ops/v1/supervision/figures").await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["weights"]["on_time"], 3);
    assert_eq!(f["weights"]["reuse"], 1);
    assert_eq!(f["weights"]["integration"], 0);
    let list = f["departments"].as_array().expect("list");
    assert_eq!(list.len(), 10, "every department of the catalogue");
    assert_eq!(list[0]["department"], MARKET);
    assert_eq!(list[0]["rank"], 1);
    // on time 1.0 × 3 + reuse (0.8 + 0.5) / 2 × 1 → (3 + 0.65) / 4 = 91.25 %
    assert_eq!(list[0]["score"], 91.3);
    assert_eq!(list[1]["department"], POLICE);
    assert_eq!(list[1]["rank"], 2);
    // on time 0.5 × 3, no reuse → 37.5 %
    assert_eq!(list[1]["score"], 37.5);
    // the other eight share third place with nothing to show
    assert!(
        list[2..]
            .iter()
            .all(|r| r["rank"] == 3 && r["score"] == 0.0)
    );
    let m = department(&f, MARKET);
    assert_eq!(m["counts"]["cases"], 2);
    assert_eq!(m["counts"]["concluded_on_time"], 2);
    assert_eq!(m["counts"]["fields_prefilled"], 8);
    assert_eq!(m["counts"]["materials_substituted"], 1);
    assert_eq!(m["counts"]["reads_consumed"], 2);
    assert_eq!(m["rates"]["rating"], 4.5);
    let p = department(&f, POLICE);
    assert_eq!(p["counts"]["cases"], 3);
    assert_eq!(p["counts"]["concluded_with_due"], 2);
    assert_eq!(p["rates"]["on_time"], 0.5);
    assert_eq!(p["rates"]["task_progress"], 45.0);
    assert_eq!(
        p["counts"]["report_month"],
        (t - Duration::days(35)).format("%Y-%m").to_string()
    );
    assert_eq!(f["city"]["concluded_with_due"], 4);
    assert_eq!(f["city_rates"]["on_time"], 0.75);

    // the police's figures trace back to its cases, the late one marked
    let (_, d) = operator
        .get(&format!(
            "/api/ops/v1/supervision/figures/departments/{POLICE}"
        ))
        .await;
    let cases = d["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 3);
    let late = cases
        .iter()
        .find(|c| c["case_no"] == late_no.as_str())
        .expect("late");
    assert_eq!(late["on_time"], false);
    assert_eq!(d["report"]["late"], true);
    assert_eq!(d["reads"][0]["reads"], 1);

    // a month without records ranks everyone equal
    let empty = (Utc::now() - Duration::days(400))
        .format("%Y-%m")
        .to_string();
    let (_, f) = operator
        .get(&format!("/api/ops/v1/supervision/figures?month={empty}"))
        .await;
    assert!(
        f["departments"]
            .as_array()
            .expect("list")
            .iter()
            .all(|r| r["rank"] == 1)
    );

    // the trends carry this month's scores
    let (status, tr) = operator
        .get("/api/ops/v1/supervision/figures/trends?months=3")
        .await;
    assert_eq!(status, 200, "{tr}");
    let months = tr.as_array().expect("months");
    assert_eq!(months.len(), 3);
    let this = months
        .iter()
        .find(|m| m["month"] == t.format("%Y-%m").to_string());
    if let Some(this) = this {
        let police = this["departments"]
            .as_array()
            .expect("scores")
            .iter()
            .find(|d| d["department"] == POLICE)
            .expect("police");
        assert_eq!(police["rank"], 2);
    }
    let (status, p) = operator
        .get("/api/ops/v1/supervision/figures/trends?months=99")
        .await;
    assert_eq!(status, 400, "{p}");
}

async fn the_monthly_export_has_one_row_per_department(b: Backend) {
    let s = with_dev_idp(b, &[("worker_in_serve", "false")]).await;
    let t = Utc::now();
    let (_, _, c) = case(MARKET, MARKET_SERVICE, t, Some(5), Some(0), 4, 2, Some(5));
    sql(&s, &[c]).await;
    let operator = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let month = t.format("%Y-%m").to_string();
    let r = operator
        .b
        .client
        .get(format!(
            "{}/api/ops/v1/supervision/figures/export?month={month}&format=csv",
            operator.base
        ))
        .header("accept-language", "en")
        .send()
        .await
        .expect("csv");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .expect("disposition")
            .contains(&format!("assessment-{month}.csv"))
    );
    let text = r.text().await.expect("text");
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    assert_eq!(&headers[0], "rank");
    assert_eq!(&headers[1], "uscc");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 11, "ten departments and the city");
    let depts: Vec<&str> = rows[..10].iter().map(|r| &r[1]).collect();
    let mut unique = depts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10, "one row per department: {depts:?}");
    assert_eq!(&rows[0][1], MARKET, "the only department with cases leads");
    assert_eq!(&rows[10][2], "City-wide");
    let on_time = headers
        .iter()
        .position(|h| h == "on_time_percent")
        .expect("column");
    assert_eq!(&rows[0][on_time], "100");
    assert_eq!(&rows[1][on_time], "", "nothing concluded: no rate");

    let r = operator
        .b
        .get(&format!(
            "{}/api/ops/v1/supervision/figures/export?month={month}&format=xlsx",
            operator.base
        ))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let bytes = r.bytes().await.expect("bytes");
    assert!(bytes.starts_with(b"PK"), "a zip container");

    // bad parameters are refused in the caller's language
    for (q, lang) in [
        ("month=2026-13", "zh-CN"),
        ("month=9999-01", "en"),
        ("format=pdf", "en"),
    ] {
        let r = operator
            .b
            .client
            .get(format!(
                "{}/api/ops/v1/supervision/figures/export?{q}",
                operator.base
            ))
            .header("accept-language", lang)
            .send()
            .await
            .expect("bad");
        assert_eq!(r.status(), 400, "{q}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{q}"
        );
        let p: Value = r.json().await.expect("problem");
        let detail = p["detail"].as_str().unwrap_or_default().to_owned();
        let chinese = detail
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        assert_eq!(chinese, lang == "zh-CN", "{q}: {p}");
    }
    // a clerk may not export
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let (status, _) = clerk
        .get("/api/ops/v1/supervision/figures/export?format=csv")
        .await;
    assert_eq!(status, 403);
}

async fn the_pages_trace_the_figures_in_both_languages(b: Backend) {
    let s = with_dev_idp(b, &[("worker_in_serve", "false")]).await;
    let now = Utc::now();
    let token = id();
    let (_, sys) = system(
        HRSS,
        "社保经办系统",
        Some(&token),
        None,
        true,
        now - Duration::days(9),
    );
    let (_, _, c) = case(HRSS, HRSS_SERVICE, now, Some(5), Some(0), 4, 3, Some(4));
    sql(&s, &[sys, token_use(&token, now - Duration::hours(3)), c]).await;
    let operator = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    for lang in ["zh", "en"] {
        let (status, html) =
            page(&operator, &format!("/ops/supervision/figures?lang={lang}")).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("id=\"ranking\""));
        assert!(html.contains(&format!("href=\"/ops/supervision/figures/{HRSS}\"")));
        assert!(html.contains("id=\"weight-on_time\""));
        assert!(html.contains("<svg"), "trend charts are drawn");
        assert!(html.contains("/api/ops/v1/supervision/figures/export?month="));
        let (status, d) = page(
            &operator,
            &format!("/ops/supervision/figures/{HRSS}?lang={lang}"),
        )
        .await;
        assert_eq!(status, 200, "{d}");
        assert!(d.contains("社保经办系统"), "the system behind the figure");
        assert!(d.contains("id=\"cases\""));
        if lang == "en" {
            for html in [&html, &d] {
                // the operator's own name in the header is data
                let left =
                    chinese_left(html, &["<span lang=\"zh-CN\">社保经办系统</span>", "吴敏"]);
                assert!(left.is_empty(), "Chinese on an English page: {left:?}");
            }
        }
    }
    let (status, _) = page(&operator, "/ops/supervision/figures?month=2026-99").await;
    assert_eq!(status, 400);

    // the officer's own page; the operator's pages are not theirs
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let (status, html) = page(&officer, "/desk/supervision/figures?lang=en").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("社保经办系统"));
    assert!(
        html.contains("/desk/cases/T"),
        "cases link to the officer's desk"
    );
    let left = chinese_left(&html, &["<span lang=\"zh-CN\">社保经办系统</span>", "马强"]);
    assert!(left.is_empty(), "Chinese on an English page: {left:?}");
    let (status, _) = page(&officer, "/ops/supervision/figures").await;
    assert_eq!(status, 403);
}
