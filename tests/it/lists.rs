//! Lists paged by cursor through HTTP (issue 14, item 5): "my cases" and the worklist,
//! as JSON and as pages, walked by their `next` cursor across pages, every case seen
//! once and in order (cases created at the same instant included); the older `page=`
//! still works; a malformed cursor is a 400 problem in the caller's language.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use onewindow::store::{CaseRow, Store};
use serde_json::Value;
use uuid::Uuid;

use crate::backend_tests;
use crate::cases::{SSC, Session};
use crate::harness::Backend;
use crate::login::with_dev_idp;
use crate::store::{at, case, date, event, only};

backend_tests!(my_cases_and_the_worklist_walk_by_cursor);

/// clerk-sun's hall.
const HALL: [&str; 3] = [
    "11150700MB1530001X",
    "11150700MB15300021",
    "11150700MB15300034",
];
/// A department outside it.
const ELSEWHERE: &str = "11150700MB15300047";

/// The list order (newest first), as the store keeps it.
fn newest_first(cases: &mut [&CaseRow]) {
    cases.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.id)));
}

async fn create(store: &dyn Store, c: &CaseRow) {
    let e = event(c.created_at, None, None, &c.status);
    let done = store.create_case(c, only(&e)).await.expect("create");
    assert!(matches!(done, onewindow::store::WriteOutcome::Done));
}

/// Walks a JSON list by its `next` cursor; answers the case numbers seen, in order, and
/// checks the count on every page.
async fn walk_json(who: &Session, path: &str, total: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut url = path.to_owned();
    for _ in 0..100 {
        let (status, list) = who.get(&url).await;
        assert_eq!(status, 200, "{url}: {list}");
        assert_eq!(list["total"], total as i64, "{url}");
        assert_eq!(list["total_capped"], false);
        for c in list["items"].as_array().expect("items") {
            seen.push(c["case_no"].as_str().expect("case_no").to_owned());
        }
        match list["next"].as_str() {
            Some(next) => {
                assert!(
                    next.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "URL-safe: {next}"
                );
                url = format!("{path}&before={next}");
            }
            None => {
                assert!(list["next"].is_null(), "the last page says so");
                return seen;
            }
        }
    }
    panic!("{path}: no end after 100 pages");
}

/// A page as HTML with its escapes undone where links need it.
async fn page(who: &Session, path: &str) -> (u16, String) {
    let r = who
        .b
        .client
        .get(format!("{}{path}", who.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    let status = r.status().as_u16();
    let body = r.text().await.expect("body");
    (status, body.replace("&#x2f;", "/").replace("&amp;", "&"))
}

/// Walks a list page by its "next" links; answers the case numbers (linked under
/// `prefix`) seen, in order.
async fn walk_pages(who: &Session, path: &str, prefix: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut url = path.to_owned();
    for _ in 0..100 {
        let (status, body) = page(who, &url).await;
        assert_eq!(status, 200, "{url}");
        seen.extend(links(&body, prefix));
        let next = body
            .split("rel=\"next\"")
            .next()
            .and_then(|before| before.rsplit("href=\"").next())
            .filter(|_| body.contains("rel=\"next\""))
            .map(|h| h.split('"').next().expect("href").to_owned());
        match next {
            Some(n) => {
                assert!(n.contains("before="), "next pages by cursor: {n}");
                url = n;
            }
            None => return seen,
        }
    }
    panic!("{path}: no end after 100 pages");
}

/// The case numbers a page links to under `prefix`, in order.
fn links(body: &str, prefix: &str) -> Vec<String> {
    body.split(&format!("href=\"{prefix}"))
        .skip(1)
        .map(|part| part.split('"').next().expect("case number").to_owned())
        .filter(|no| !no.contains('/'))
        .collect()
}

fn nos(cases: &[&CaseRow]) -> Vec<String> {
    cases.iter().map(|c| c.case_no.clone()).collect()
}

fn once(seen: &[String]) {
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "every case once: {seen:?}");
}

async fn my_cases_and_the_worklist_walk_by_cursor(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let wang = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (_, me) = wang.get("/api/v1/me").await;
    let account: Uuid = me["id"].as_str().expect("id").parse().expect("uuid");
    let store = s.app.state.store.clone();

    // 45 cases of wang's and 15 of others', created in pairs at the same instant, over
    // the hall's departments (and one outside), three statuses, some without a due date
    let statuses = ["submitted", "accepted", "approved"];
    let mut all: Vec<CaseRow> = Vec::new();
    for i in 0..60i64 {
        let mut c = case(SSC, (i / 2) * 60);
        let t: DateTime<Utc> = at((i / 2) * 60);
        c.created_at = t;
        c.updated_at = t;
        c.department = if i % 10 == 9 {
            ELSEWHERE.to_owned()
        } else {
            HALL[(i % 3) as usize].to_owned()
        };
        c.status = statuses[((i / 3) % 3) as usize].to_owned();
        c.due_on = (i % 4 != 0).then(|| date(2027, 3, 1 + (i % 7) as u32));
        c.applicant.account_id = Some(if i < 45 { account } else { Uuid::now_v7() });
        create(store.as_ref(), &c).await;
        all.push(c);
    }

    // my cases, 7 a page: every one of wang's once, newest first
    let mut mine: Vec<&CaseRow> = all
        .iter()
        .filter(|c| c.applicant.account_id == Some(account))
        .collect();
    newest_first(&mut mine);
    let seen = walk_json(&wang, "/api/v1/cases?per_page=7", mine.len()).await;
    once(&seen);
    assert_eq!(seen, nos(&mine), "my cases by cursor, in order");
    // `page=` still works, and matches the walk
    let (_, p3) = wang.get("/api/v1/cases?per_page=7&page=3").await;
    let p3: Vec<&str> = p3["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["case_no"].as_str().expect("no"))
        .collect();
    assert_eq!(
        p3,
        seen[14..21].iter().map(String::as_str).collect::<Vec<_>>()
    );
    // and as a page (20 a page), by its "next" links
    let seen = walk_pages(&wang, "/me/cases", "/me/cases/").await;
    assert_eq!(seen, nos(&mine), "my cases page by cursor, in order");
    let (_, second) = page(&wang, "/me/cases?page=2").await;
    assert!(
        second.contains("21–40"),
        "page= still shows its rows' positions"
    );

    // a malformed cursor: 400, a problem in the caller's language
    for bad in ["x", "not-a-cursor", "AAAA", "%2F%2F"] {
        let r = wang
            .b
            .client
            .get(format!("{}/api/v1/cases?before={bad}", wang.base))
            .header("accept-language", "en")
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(
            r.headers()["content-type"].to_str().expect("type"),
            "application/problem+json"
        );
        let p: Value = r.json().await.expect("problem");
        assert!(p["detail"].as_str().unwrap_or("").contains("before"), "{p}");
        let (status, p) = wang.get(&format!("/api/v1/cases?before={bad}")).await;
        assert_eq!(status, 400);
        assert!(p["detail"].as_str().unwrap_or("").contains("游标"), "{p}");
    }

    // the worklist of clerk-sun's hall, two statuses, 4 a page (6 walks merged)
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let mut hall: Vec<&CaseRow> = all
        .iter()
        .filter(|c| HALL.contains(&c.department.as_str()))
        .filter(|c| c.status == "submitted" || c.status == "accepted")
        .collect();
    newest_first(&mut hall);
    let seen = walk_json(
        &clerk,
        "/api/staff/v1/cases?status=submitted,accepted&per_page=4",
        hall.len(),
    )
    .await;
    once(&seen);
    assert_eq!(seen, nos(&hall), "the worklist by cursor, in order");
    let (status, _) = clerk.get("/api/staff/v1/cases?before=nope").await;
    assert_eq!(status, 400);

    // the worklist page, every status: newest, oldest, and soonest due first
    let mut hall: Vec<&CaseRow> = all
        .iter()
        .filter(|c| HALL.contains(&c.department.as_str()))
        .collect();
    newest_first(&mut hall);
    let seen = walk_pages(&clerk, "/staff/cases", "/staff/cases/").await;
    assert_eq!(
        seen,
        nos(&hall),
        "the worklist page by cursor, newest first"
    );
    hall.reverse();
    let seen = walk_pages(&clerk, "/staff/cases?sort=oldest", "/staff/cases/").await;
    assert_eq!(seen, nos(&hall), "oldest first");
    newest_first(&mut hall);
    // stable: among equal due dates, newest first; no due date last
    hall.sort_by_key(|c| (c.due_on.is_none(), c.due_on));
    let seen = walk_pages(&clerk, "/staff/cases?sort=due", "/staff/cases/").await;
    assert_eq!(seen, nos(&hall), "soonest due first");
    // a malformed cursor on a page shows the list from its start
    let (status, body) = page(&clerk, "/staff/cases?before=nope").await;
    assert_eq!(status, 200);
    let (_, top) = page(&clerk, "/staff/cases").await;
    assert_eq!(links(&body, "/staff/cases/"), links(&top, "/staff/cases/"));
}
