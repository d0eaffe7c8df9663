//! Issue 13, items 7, 9, 10 and the upload content checks of item 4: due dates that do
//! not run out with the holiday calendar, sessions that survive a restart of the
//! embedded default, retention, and uploads checked whole.

use chrono::Datelike;
use onewindow::domain::calendar::HolidayCalendar;
use onewindow::domain::catalogue::{LimitUnit, TimeLimit};
use onewindow::domain::deadline::{due_date, due_date_or_provisional};
use onewindow::usecases::today;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::cases::{SSC, Session, jpeg, step, valid_values};
use crate::desk_pages::page;
use crate::harness::{Backend, definitions_dir};
use crate::login::{LoginSetup, with_dev_idp, with_dev_idp_on};

backend_tests!(
    provisional_due_dates_are_shown_and_counted_again_on_import,
    sessions_survive_a_restart,
);

fn wd(value: u32) -> TimeLimit {
    TimeLimit {
        value,
        unit: LimitUnit::WorkingDays,
    }
}

/// A citizen's case of 社会保障卡申领 (15/20 working days), accepted today.
async fn accepted_ssc_case(s: &LoginSetup, citizen: &Session) -> String {
    let (status, photo) = citizen.upload("p.jpg", jpeg(3)).await;
    assert_eq!(status, 201, "{photo}");
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

/// Runs the `onewindow` binary against the test's database.
fn onewindow(s: &LoginSetup, args: &[&str]) -> (bool, String) {
    let res = s.app.resources();
    let mut c = crate::cli::onewindow();
    c.args(args)
        .env("ONEWINDOW_DATA_DIR", res.tmp.path())
        .env("ONEWINDOW_DEFINITIONS_DIR", definitions_dir());
    if let Some(db) = &res.database_url {
        c.env("DATABASE_URL", db);
    }
    let out = c.output().expect("run onewindow");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn provisional_due_dates_are_shown_and_counted_again_on_import(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let builtin = HolidayCalendar::builtin();
    let today = today();
    let promised = due_date_or_provisional(builtin, today, wd(15), &[], today).expect("promised");
    let legal = due_date_or_provisional(builtin, today, wd(20), &[], today).expect("legal");
    assert!(
        promised.provisional || legal.provisional,
        "this test needs a due date past the built-in calendar's end (2026)"
    );

    let case_no = accepted_ssc_case(&s, &citizen).await;
    // the API gives the weekday-rule dates, marked provisional, to the applicant …
    let (_, case) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    let d = &case["deadline"];
    assert_eq!(d["due_on"], json!(promised.on.to_string()), "{case}");
    assert_eq!(d["legal_due_on"], json!(legal.on.to_string()), "{case}");
    assert_eq!(d["provisional"], true, "{case}");
    assert!(d["state"].is_string(), "the state is known too: {case}");
    // … and to staff
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let (_, staff) = officer.get(&format!("/api/staff/v1/cases/{case_no}")).await;
    assert_eq!(staff["deadline"]["provisional"], true, "{staff}");

    // pages say so in both languages
    let (status, html) = page(&citizen, &format!("/me/cases/{case_no}?lang=en")).await;
    assert_eq!(status, 200);
    assert!(html.contains("provisional"), "{html}");
    let (_, html) = page(&citizen, &format!("/me/cases/{case_no}")).await;
    assert!(html.contains("暂定"), "{html}");
    let (_, html) = page(&officer, &format!("/desk/cases/{case_no}?lang=en")).await;
    assert!(html.contains("provisional"), "{html}");
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let (_, html) = page(&clerk, &format!("/staff/cases/{case_no}?lang=en")).await;
    assert!(html.contains("provisional"), "{html}");

    // the operator is warned from 1 November of the year before
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let needed = builtin.years_needed(today);
    let (_, html) = page(&op, "/ops?lang=en").await;
    if needed.is_empty() {
        assert!(!html.contains("calendar-warning"), "{html}");
    } else {
        assert!(html.contains("id=\"calendar-warning\""), "{html}");
        assert!(html.contains(&needed[0].to_string()), "{html}");
        assert!(html.contains("onewindow calendar import"), "{html}");
    }

    // the operator imports the missing years: the first week of January off
    let years: Vec<i32> = [today.year(), today.year() + 1, today.year() + 2]
        .into_iter()
        .filter(|y| !builtin.covers(*y))
        .collect();
    let mut doc = serde_json::Map::new();
    for y in &years {
        let days: Vec<Value> = (1..=7)
            .map(|day| json!({ "date": format!("{y}-01-{day:02}"), "name": "元旦及测试假期" }))
            .collect();
        doc.insert(
            y.to_string(),
            json!({ "holidays": days, "makeup_workdays": [] }),
        );
    }
    let file = s.app.resources().tmp.path().join("holidays.json");
    std::fs::write(&file, json!({ "years": doc }).to_string()).expect("write");
    // a broken file is refused, naming the problem, and changes nothing
    let bad = s.app.resources().tmp.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"years": {"2027": {"holidays": [{"date": "2027-02-30", "name": "x"}]}}}"#,
    )
    .expect("write");
    let (ok, out) = onewindow(&s, &["calendar", "import", bad.to_str().expect("path")]);
    assert!(!ok, "{out}");
    assert!(out.contains("2027-02-30"), "{out}");

    let (ok, out) = onewindow(&s, &["calendar", "import", file.to_str().expect("path")]);
    assert!(ok, "{out}");
    assert!(out.contains("1 now final"), "{out}");

    let merged = builtin.merged(
        &HolidayCalendar::from_json(&std::fs::read_to_string(&file).expect("read"))
            .expect("parses"),
    );
    let final_promised = due_date(&merged, today, wd(15), &[], today).expect("final");
    let final_legal = due_date(&merged, today, wd(20), &[], today).expect("final");
    let (_, case) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    let d = &case["deadline"];
    assert_eq!(d["due_on"], json!(final_promised.to_string()), "{case}");
    assert_eq!(d["legal_due_on"], json!(final_legal.to_string()), "{case}");
    assert!(
        d.get("provisional").is_none(),
        "no longer provisional: {case}"
    );
    if legal.provisional {
        assert_ne!(
            json!(legal.on.to_string()),
            d["legal_due_on"],
            "the holidays moved the legal due date"
        );
    }

    // the running gateway picks the years up (every instance does, within a minute)
    let state = &s.app.state;
    assert!(!state.calendar.current().covers(years[0]));
    let r = onewindow::usecases::dates::refresh_calendar(state)
        .await
        .expect("refresh")
        .expect("the calendar changed");
    assert_eq!(r.checked, 0, "the import already counted them again");
    assert!(state.calendar.current().covers(years[0]));
    assert!(
        onewindow::usecases::dates::refresh_calendar(state)
            .await
            .expect("refresh")
            .is_none(),
        "nothing new the second time"
    );
    let (_, html) = page(&op, "/ops?lang=en").await;
    assert!(!html.contains("calendar-warning"), "{html}");

    // a case accepted now is final at once
    let second = accepted_ssc_case(&s, &citizen).await;
    let (_, case) = citizen.get(&format!("/api/v1/cases/{second}")).await;
    assert!(case["deadline"].get("provisional").is_none(), "{case}");
    assert_eq!(
        case["deadline"]["due_on"],
        json!(final_promised.to_string())
    );
}

async fn sessions_survive_a_restart(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (status, me) = citizen.get("/api/v1/me").await;
    assert_eq!(status, 200, "{me}");
    let LoginSetup { app, idp, .. } = s;
    let res = app.stop().await;
    drop(idp);
    let s = with_dev_idp_on(res, &[]).await;
    // the same browser (its cookie) against the restarted gateway
    let r = citizen.b.get(&s.app.url("/api/v1/me")).await;
    assert_eq!(r.status(), 200, "still logged in after the restart");
    let again: Value = r.json().await.expect("json");
    assert_eq!(again["id"], me["id"], "{again}");
    assert!(me["id"].is_string(), "{me}");
    // logging out still ends it
    let r = citizen
        .b
        .client
        .post(s.app.url("/auth/logout"))
        .header("x-csrf-token", &citizen.csrf)
        .send()
        .await
        .expect("logout");
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    let r = citizen.b.get(&s.app.url("/api/v1/me")).await;
    assert_eq!(r.status(), 401);
}
