//! Hardening at the edge (issue 13, items 4 and 5): rate limits with 429 + Retry-After,
//! body limits per route, the header-read timeout, wrong query codes counted by the
//! caller, and the security headers of every answer.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::backend_tests;
use crate::cases::{SSC, Session, jpeg, valid_values};
use crate::harness::{Backend, Resources, TestApp, bind};
use crate::login::with_dev_idp;

backend_tests!(
    every_answer_carries_the_security_headers,
    personal_data_is_never_stored_by_caches,
    limits_answer_429_with_retry_after_in_both_languages,
    a_strangers_wrong_codes_do_not_lock_the_owner_out,
    json_bodies_over_the_limit_are_refused_before_they_are_read,
    chunked_bodies_are_cut_at_the_limit,
    slow_headers_are_cut_off,
);

async fn app_with(b: Backend, extra: &[(&str, &str)]) -> TestApp {
    let res = Resources::new(b).await;
    TestApp::start_on(res, bind().await, false, extra).await
}

/// The CSP, nosniff, framing, referrer and HSTS headers on pages, JSON, problems and
/// static files.
async fn every_answer_carries_the_security_headers(b: Backend) {
    let app = app_with(b, &[]).await;
    for (path, accept) in [
        ("/", "text/html"),
        ("/services", "text/html"),
        ("/api/v1/services", "application/json"),
        ("/no/such/address", "application/json"),
        ("/no/such/page", "text/html"),
        ("/static/app.css", "text/css"),
        ("/healthz", "application/json"),
    ] {
        let r = app
            .client
            .get(app.url(path))
            .header("accept", accept)
            .send()
            .await
            .expect("request");
        let h = r.headers();
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no CSP"))
            .to_str()
            .expect("csp");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("object-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("base-uri 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "{path}: no HSTS over plain http"
        );
    }
    // behind a TLS-terminating proxy, HSTS
    let r = app
        .client
        .get(app.url("/"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("request");
    let hsts = r.headers()["strict-transport-security"]
        .to_str()
        .expect("hsts");
    assert!(hsts.starts_with("max-age=31536000"), "{hsts}");
    app.stop().await;

    // and always when the public URL is https
    let res = Resources::new(b).await;
    let listener = bind().await;
    let addr = listener.local_addr().expect("addr");
    let url = format!("https://{addr}");
    let app = TestApp::start_on(res, listener, false, &[("public_url", url.as_str())]).await;
    let r = app.get("/api/v1/services", None).await;
    assert!(r.headers().contains_key("strict-transport-security"));
    app.stop().await;
}

/// Pages carry no inline script, no event handler attribute and no inline style, so the
/// CSP (which allows neither) costs them nothing.
fn inline_code(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("<script") {
        let tag_end = rest[i..].find('>').map_or(rest.len(), |e| i + e);
        let tag = &rest[i..tag_end];
        if !tag.contains(" src=") {
            found.push(format!("inline <script>: {tag}"));
        }
        rest = &rest[tag_end..];
    }
    if lower.contains("<style") {
        found.push("a <style> element".into());
    }
    for attr in [
        " style=",
        " onclick=",
        " onload=",
        " onsubmit=",
        " onchange=",
        " oninput=",
        "javascript:",
    ] {
        if lower.contains(attr) {
            found.push(format!("{attr} in the markup"));
        }
    }
    found
}

/// Personal data (case lists and views, data access, the department's case reads and
/// material downloads) is answered `no-store`; material downloads carry `nosniff`.
async fn personal_data_is_never_stored_by_caches(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (status, photo) = citizen.upload("photo.jpg", jpeg(7)).await;
    assert_eq!(status, 201, "{photo}");
    let (status, case) = citizen
        .post(
            "/api/v1/cases",
            &json!({
                "service_code": SSC,
                "values": valid_values(),
                "materials": [
                    { "material": "id_card", "substitute": true },
                    { "material": "photo", "upload_id": photo["id"] },
                ],
            }),
        )
        .await;
    assert_eq!(status, 201, "{case}");
    let case_no = case["case_no"].as_str().expect("case_no").to_owned();

    let base = format!("http://{}", s.app.addr);
    let mut pages = Vec::new();
    for (path, accept) in [
        ("/api/v1/cases".to_owned(), "application/json"),
        (format!("/api/v1/cases/{case_no}"), "application/json"),
        ("/api/v1/me".to_owned(), "application/json"),
        ("/api/v1/me/data-access".to_owned(), "application/json"),
        ("/me/cases".to_owned(), "text/html"),
        (format!("/me/cases/{case_no}"), "text/html"),
        ("/me/data-access".to_owned(), "text/html"),
        ("/".to_owned(), "text/html"),
        (format!("/services/{SSC}/apply"), "text/html"),
    ] {
        let r = citizen
            .b
            .client
            .get(format!("{base}{path}"))
            .header("accept", accept)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
        if accept == "text/html" {
            let html = r.text().await.expect("html");
            assert!(
                html.contains("王小明") || !path.starts_with("/me/cases/"),
                "{path}"
            );
            pages.push((path, html));
        }
    }
    for (path, html) in &pages {
        assert_eq!(inline_code(html), Vec::<String>::new(), "{path}");
    }

    // the department reads the case and downloads the photo
    let t =
        crate::exchange::token(&s, "11150700MB15300034", &["cases:read", "materials:read"]).await;
    let r = s
        .app
        .client
        .get(s.app.url(&format!("/api/dept/v1/cases/{case_no}")))
        .bearer_auth(&t)
        .send()
        .await
        .expect("dept read");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let read: Value = r.json().await.expect("json");
    let upload = read["materials"]
        .as_array()
        .and_then(|m| m.iter().find_map(|m| m["upload_id"].as_str()))
        .unwrap_or_else(|| panic!("an uploaded material: {read}"))
        .to_owned();
    let download = s
        .app
        .url(&format!("/api/dept/v1/cases/{case_no}/materials/{upload}"));
    let r = s
        .app
        .client
        .get(&download)
        .bearer_auth(&t)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    // the versioned static files may still be cached
    let css = s.app.get("/static/app.css", None).await;
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .expect("cc")
            .contains("immutable")
    );
}

async fn problem(r: reqwest::Response) -> (u16, Option<u64>, Value) {
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if status == 429 {
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

/// Login starts, public queries, drafts, uploads, submissions and department API calls
/// each have a budget per caller; past it, 429 with `Retry-After` and a problem in the
/// caller's language. Another caller keeps its own budget.
async fn limits_answer_429_with_retry_after_in_both_languages(b: Backend) {
    let app = app_with(
        b,
        &[
            ("trust_forwarded_for", "true"),
            ("limit_login_per_minute", "3"),
            ("limit_public_query_per_minute", "2"),
            ("limit_draft_per_minute", "2"),
            ("limit_upload_per_minute", "2"),
            ("limit_submit_per_minute", "2"),
            ("limit_dept_api_per_minute", "2"),
        ],
    )
    .await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let from = |ip: &'static str, path: &str| {
        client
            .get(app.url(path))
            .header("x-forwarded-for", ip)
            .header("accept", "application/json")
    };

    // login starts, per address (no provider configured: 503 problem, but counted)
    for _ in 0..3 {
        let (status, _, _) =
            problem(from("192.0.2.1", "/auth/login").send().await.expect("r")).await;
        assert_ne!(status, 429);
    }
    let (status, retry, zh) =
        problem(from("192.0.2.1", "/auth/login").send().await.expect("r")).await;
    assert_eq!(status, 429, "{zh}");
    let retry = retry.expect("Retry-After");
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(zh["type"], "urn:onewindow:problem:too-many-requests");
    assert!(
        zh["detail"]
            .as_str()
            .expect("detail")
            .contains("登录过于频繁"),
        "{zh}"
    );
    let (_, _, en) = problem(
        from("192.0.2.1", "/auth/staff/login")
            .header("accept-language", "en")
            .send()
            .await
            .expect("r"),
    )
    .await;
    assert!(
        en["detail"]
            .as_str()
            .expect("detail")
            .contains("Too many login attempts"),
        "{en}"
    );
    let (status, _, _) = problem(from("192.0.2.2", "/auth/login").send().await.expect("r")).await;
    assert_ne!(status, 429, "another address has its own budget");

    // public queries, per address
    let q = "/api/v1/public/cases/NOSUCH?query_code=000000";
    for _ in 0..2 {
        let (status, _, _) = problem(from("192.0.2.3", q).send().await.expect("r")).await;
        assert_eq!(status, 404);
    }
    let (status, retry, _) = problem(from("192.0.2.3", q).send().await.expect("r")).await;
    assert_eq!((status, retry.is_some()), (429, true));
    let page = client
        .get(app.url("/status?case_no=NOSUCH&query_code=000000"))
        .header("x-forwarded-for", "192.0.2.3")
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 429, "the status page shares the budget");
    assert!(page.headers().contains_key("retry-after"));

    // drafts, uploads and submissions: per session (not logged in: 401, yet counted)
    for (method, path, class) in [
        (reqwest::Method::POST, "/api/v1/drafts", "drafts"),
        (reqwest::Method::POST, "/api/v1/uploads", "uploads"),
        (reqwest::Method::POST, "/api/v1/cases", "submissions"),
    ] {
        let send = |session: &'static str| {
            client
                .request(method.clone(), app.url(path))
                .header("cookie", format!("ow_session={session}"))
                .header("content-type", "application/json")
                .body("{}")
                .send()
        };
        for _ in 0..2 {
            let (status, _, _) = problem(send("one").await.expect("r")).await;
            assert_ne!(status, 429, "{class}");
        }
        let (status, retry, body) = problem(send("one").await.expect("r")).await;
        assert_eq!((status, retry.is_some()), (429, true), "{class}: {body}");
        let (status, _, _) = problem(send("two").await.expect("r")).await;
        assert_ne!(status, 429, "{class}: another session has its own budget");
    }

    // the department API, per token
    let dept = |token: &str| {
        client
            .get(app.url("/api/dept/v1/whoami"))
            .bearer_auth(token)
            .send()
    };
    for _ in 0..2 {
        assert_ne!(dept("aaa").await.expect("r").status(), 429);
    }
    let (status, retry, body) = problem(dept("aaa").await.expect("r")).await;
    assert_eq!((status, retry.is_some()), (429, true), "{body}");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("接口调用"),
        "{body}"
    );
    assert_ne!(dept("bbb").await.expect("r").status(), 429);
    app.stop().await;
}

/// Five wrong codes from a stranger's address leave the owner's query working; the
/// stranger alone is refused.
async fn a_strangers_wrong_codes_do_not_lock_the_owner_out(b: Backend) {
    let s = with_dev_idp(b, &[("trust_forwarded_for", "true")]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (_, photo) = citizen.upload("photo.jpg", jpeg(3)).await;
    let (status, case) = citizen
        .post(
            "/api/v1/cases",
            &json!({
                "service_code": SSC,
                "values": valid_values(),
                "materials": [
                    { "material": "id_card", "substitute": true },
                    { "material": "photo", "upload_id": photo["id"] },
                ],
            }),
        )
        .await;
    assert_eq!(status, 201, "{case}");
    let case_no = case["case_no"].as_str().expect("case_no");
    let code = case["query_code"].as_str().expect("code");
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let query = |ip: &'static str, code: &str| {
        s.app
            .client
            .get(
                s.app
                    .url(&format!("/api/v1/public/cases/{case_no}?query_code={code}")),
            )
            .header("x-forwarded-for", ip)
            .send()
    };
    let mut stranger = Vec::new();
    for _ in 0..7 {
        stranger.push(
            query("198.51.100.7", wrong)
                .await
                .expect("q")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(stranger[..5], [404; 5], "{stranger:?}");
    assert_eq!(stranger[6], 429, "the stranger is refused: {stranger:?}");
    let owner = query("203.0.113.9", code).await.expect("q");
    assert_eq!(owner.status(), 200, "the owner is not locked out");
    let page = s
        .app
        .client
        .get(
            s.app
                .url(&format!("/status?case_no={case_no}&query_code={code}")),
        )
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200, "nor on the status page");
    // nor by a stranger who rotates addresses inside one IPv6 /64
    let v6 = s.app.url(&format!(
        "/api/v1/public/cases/{case_no}?query_code={wrong}"
    ));
    let mut rotating = Vec::new();
    for i in 0..7 {
        rotating.push(
            s.app
                .client
                .get(&v6)
                .header("x-forwarded-for", format!("2001:db8:7:7::{i:x}"))
                .send()
                .await
                .expect("q")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(rotating[6], 429, "one /64 is one caller: {rotating:?}");
}

/// Reads an HTTP answer's status line and headers from a raw connection.
async fn raw_answer(stream: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 16 * 1024];
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A JSON route refuses a body over `max_json_body_bytes` from its `Content-Length`,
/// without reading it, and one sent in chunks once the limit is passed; the upload route
/// takes what the materials allow.
async fn json_bodies_over_the_limit_are_refused_before_they_are_read(b: Backend) {
    let app = app_with(b, &[]).await;
    // 60 MB announced, a few bytes sent: answered at once
    let started = Instant::now();
    let mut s = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/drafts HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Accept-Language: en\r\nContent-Length: 60000000\r\n\r\n{{\"service_code\":",
        app.addr
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let answer = raw_answer(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // the upload route takes a file of the largest material's size
    let mut s = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/uploads HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary=x\r\n\
         Content-Length: {}\r\n\r\n--x\r\n",
        app.addr,
        8 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let answer = raw_answer(&mut s).await;
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "past the body limit, to the login check: {answer}"
    );
    let mut s = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/uploads HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary=x\r\n\
         Content-Length: {}\r\n\r\n--x\r\n",
        app.addr,
        200 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let answer = raw_answer(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    app.stop().await;
}

/// A logged-in citizen's draft sent in chunks, without a length, past the limit: cut
/// off at the limit as it is read, answered 413.
async fn chunked_bodies_are_cut_at_the_limit(b: Backend) {
    let s = with_dev_idp(b, &[]).await;
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let session = citizen
        .b
        .cookie(&s.app.url("/"), "ow_session")
        .expect("session cookie");
    let mut conn = TcpStream::connect(s.app.addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/drafts HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Cookie: ow_session={session}\r\nX-CSRF-Token: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        s.app.addr, citizen.csrf
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    let mut body =
        format!("{{\"service_code\":\"{}\"}}", "x".repeat(1024 * 1024 + 16)).into_bytes();
    let mut sent = 0;
    while !body.is_empty() {
        let chunk: Vec<u8> = body.drain(..body.len().min(64 * 1024)).collect();
        let frame = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk,
            b"\r\n".to_vec(),
        ]
        .concat();
        if conn.write_all(&frame).await.is_err() {
            break; // the server has answered and closed
        }
        sent += frame.len();
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let answer = raw_answer(&mut conn).await;
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "after {sent} bytes: {answer}"
    );
    assert!(answer.contains("application/problem+json"), "{answer}");
}

/// Connections that send their headers slowly, or nothing at all, are closed after
/// `header_read_timeout_secs`; a prompt request on another connection is served.
async fn slow_headers_are_cut_off(b: Backend) {
    let app = app_with(b, &[("header_read_timeout_secs", "1")]).await;
    let started = Instant::now();
    let mut conns = Vec::new();
    for i in 0..40 {
        let mut s = TcpStream::connect(app.addr).await.expect("connect");
        if i % 2 == 0 {
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .expect("write");
        }
        conns.push(s);
    }
    let ok = app.get("/healthz", None).await;
    assert_eq!(ok.status(), 200, "a prompt request is served meanwhile");
    let mut closed_after = Vec::new();
    for mut s in conns {
        let mut buf = [0u8; 1024];
        let closed = loop {
            match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(_)) => continue, // a 408 answer before the close
                Err(_) => break false,
            }
        };
        assert!(closed, "a slow connection is still open after 10 s");
        closed_after.push(started.elapsed());
    }
    let last = closed_after.iter().max().expect("some");
    assert!(
        *last < Duration::from_secs(5),
        "all 40 slow connections closed within {last:?}"
    );
    app.stop().await;
}

/// With Redis, two instances share one budget per caller: the GCRA script runs in Redis
/// on Redis's clock, so calls spread over both instances are counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(external_backends),
    ignore = "PostgreSQL/Redis not configured: set ONEWINDOW_TEST_DATABASE_URL and ONEWINDOW_TEST_REDIS_URL"
)]
async fn two_instances_share_one_budget_through_redis() {
    use onewindow::http::edge::limits::{Class, Limiter, Verdict};
    let (_, redis) = crate::harness::external_backends();
    let res = Resources::new(Backend::PostgresRedis).await;
    let mut settings = res.settings().limits;
    settings.limit_public_query_per_minute = 6;
    let one = Limiter::connect(&settings, Some(&redis), &res.prefix)
        .await
        .expect("one");
    let two = Limiter::connect(&settings, Some(&redis), &res.prefix)
        .await
        .expect("two");
    assert_eq!((one.backend(), two.backend()), ("redis", "redis"));
    let mut allowed = 0;
    let mut waits = Vec::new();
    for i in 0..12 {
        let l = if i % 2 == 0 { &one } else { &two };
        match l.check(Class::PublicQuery, "ip:192.0.2.50").await {
            Verdict::Allowed => allowed += 1,
            Verdict::Limited(w) => waits.push(w),
        }
    }
    assert_eq!(allowed, 6, "one budget of 6 across both instances");
    assert!(
        waits
            .iter()
            .all(|w| *w > Duration::from_secs(5) && *w <= Duration::from_secs(10)),
        "one call comes back every 10 s: {waits:?}"
    );
    assert_eq!(
        one.check(Class::PublicQuery, "ip:192.0.2.51").await,
        Verdict::Allowed,
        "another caller is not affected"
    );
    drop(res);
}
