//! Durable notification mail end to end: a notice is queued in its case's transaction
//! and mailed by whichever gateway's worker gets to it, retried while the relay refuses,
//! marked failed when it never takes it (and operators see that), and never sent twice.

use chrono::{Duration, Utc};
use onewindow::app::{AppState, Application};
use onewindow::auth::identity::{AccountKind, Identity, Role};
use onewindow::notify::{Report, send_due};
use onewindow::store::{CaseRow, CaseWrite, MailCounts, NoticeRow, WriteOutcome};
use serde_json::json;
use uuid::Uuid;

use crate::backend_tests;
use crate::cases::{SSC, Session, jpeg, valid_values};
use crate::harness::{Backend, Resources, TestApp, bind};
use crate::login::{LoginSetup, with_dev_idp};
use crate::smtp_sink::SmtpSink;

backend_tests!(
    mail_arrives_after_the_relay_refused_it,
    a_notice_left_by_a_stopped_gateway_is_mailed_by_the_next,
    a_relay_that_always_fails_ends_in_failed_and_operators_see_it,
    two_gateways_never_send_one_notice_twice,
    a_notice_without_an_address_or_a_relay_needs_no_mail,
);

const WANG_MAIL: &str = "wang.xiaoming@example.cn";

/// citizen-wang (who has a mail address) lodges an application; its case number.
async fn lodge(s: &LoginSetup) -> String {
    let citizen = Session::new(s, "/auth/login", "citizen-wang").await;
    let (_, photo) = citizen.upload("p.jpg", jpeg(7)).await;
    let materials = json!([
        { "material": "id_card", "substitute": true },
        { "material": "photo", "upload_id": photo["id"] },
    ]);
    let body = json!({ "service_code": SSC, "values": valid_values(), "materials": materials });
    let (status, lodged) = citizen.post("/api/v1/cases", &body).await;
    assert_eq!(status, 201, "{lodged}");
    lodged["case_no"].as_str().expect("case_no").to_owned()
}

fn smtp(sink: &SmtpSink) -> String {
    format!("smtp://{}", sink.addr)
}

async fn counts(state: &AppState) -> MailCounts {
    state.store.mail_counts().await.expect("counts")
}

async fn mail_arrives_after_the_relay_refused_it(b: Backend) {
    let sink = SmtpSink::refusing(2).await;
    let relay = smtp(&sink);
    let s = with_dev_idp(
        b,
        &[("smtp_url", relay.as_str()), ("worker_in_serve", "false")],
    )
    .await;
    let case_no = lodge(&s).await;
    let state = &s.app.state;
    assert_eq!(counts(state).await.pending, 1, "queued with the case");

    let t0 = Utc::now();
    let refused = Report {
        retrying: 1,
        ..Report::default()
    };
    assert_eq!(send_due(state, t0).await.expect("pass"), refused);
    let queued = state.store.mail(Some("pending"), 10).await.expect("queue");
    assert_eq!(queued[0].attempts, 1);
    assert_eq!(queued[0].last_error.as_deref(), Some("refused 451"));
    let first_wait = queued[0].next_attempt_at.expect("next") - t0;
    assert!(
        (first_wait - Duration::seconds(60))
            .num_milliseconds()
            .abs()
            <= 1
    );

    // Not due yet: nothing is tried.
    assert_eq!(
        send_due(state, t0 + Duration::seconds(59))
            .await
            .expect("pass"),
        Report::default()
    );
    assert_eq!(
        send_due(state, t0 + Duration::seconds(60))
            .await
            .expect("pass"),
        refused
    );
    assert!(sink.mails().is_empty());
    let sent = Report {
        sent: 1,
        ..Report::default()
    };
    assert_eq!(
        send_due(state, t0 + Duration::seconds(360))
            .await
            .expect("pass"),
        sent
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, [WANG_MAIL]);
    assert!(mails[0].text().contains(&case_no), "{}", mails[0].text());
    let done = state.store.mail(Some("sent"), 10).await.expect("sent");
    assert_eq!(
        (done[0].case_no.as_str(), done[0].attempts),
        (case_no.as_str(), 3)
    );
    assert_eq!(
        send_due(state, t0 + Duration::days(1)).await.expect("pass"),
        Report::default(),
        "sent once"
    );
}

async fn a_notice_left_by_a_stopped_gateway_is_mailed_by_the_next(b: Backend) {
    let sink = SmtpSink::start().await;
    let relay = smtp(&sink);
    // The first gateway's worker never gets to the notice (as if it died right after the
    // commit).
    let s = with_dev_idp(
        b,
        &[("smtp_url", relay.as_str()), ("worker_in_serve", "false")],
    )
    .await;
    let case_no = lodge(&s).await;
    assert_eq!(counts(&s.app.state).await.pending, 1);
    let LoginSetup { app, .. } = s;
    let res = app.stop().await;
    assert!(sink.mails().is_empty());

    // The next gateway on the same database mails it from its own worker.
    let next = TestApp::start_on(res, bind().await, false, &[("smtp_url", relay.as_str())]).await;
    let mails = sink.wait_for(1).await;
    assert_eq!(mails[0].to, [WANG_MAIL]);
    assert!(mails[0].text().contains(&case_no));
    for _ in 0..50 {
        if counts(&next.state).await.sent == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        counts(&next.state).await,
        MailCounts {
            sent: 1,
            ..MailCounts::default()
        }
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert_eq!(sink.mails().len(), 1, "sent once");
}

async fn a_relay_that_always_fails_ends_in_failed_and_operators_see_it(b: Backend) {
    // Nothing listens there.
    let closed = bind().await.local_addr().expect("addr");
    let relay = format!("smtp://{closed}");
    let s = with_dev_idp(
        b,
        &[
            ("smtp_url", relay.as_str()),
            ("worker_in_serve", "false"),
            ("mail_max_attempts", "3"),
        ],
    )
    .await;
    let case_no = lodge(&s).await;
    let state = &s.app.state;
    let t0 = Utc::now();
    for wait in [0, 60, 60 + 300] {
        send_due(state, t0 + Duration::seconds(wait))
            .await
            .expect("pass");
    }
    assert_eq!(
        counts(state).await,
        MailCounts {
            failed: 1,
            ..MailCounts::default()
        }
    );
    assert_eq!(
        send_due(state, t0 + Duration::days(2)).await.expect("pass"),
        Report::default(),
        "failed is final"
    );

    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    let (status, list) = op.get("/api/ops/v1/mail?state=failed").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["counts"]["failed"], 1);
    assert_eq!(list["counts"]["sent"], 0);
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["case_no"], case_no.as_str());
    assert_eq!(items[0]["state"], "failed");
    assert_eq!(items[0]["attempts"], 3);
    assert_eq!(items[0]["last_error"], "connection");
    let text = list.to_string();
    assert!(
        !text.contains(WANG_MAIL) && !text.contains('@'),
        "no address: {text}"
    );
    let (_, all) = op.get("/api/ops/v1/mail").await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1));
    let (_, sent) = op.get("/api/ops/v1/mail?state=sent").await;
    assert_eq!(sent["items"], json!([]));

    for bad in [
        "state=lost",
        "limit=0",
        "limit=many",
        "state=failed&limit=501",
    ] {
        let (status, problem) = op.get(&format!("/api/ops/v1/mail?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
        assert!(problem["title"].is_string(), "{bad}: a problem document");
    }
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    assert_eq!(citizen.get("/api/ops/v1/mail").await.0, 403);

    // The command line shows the same.
    let db = state.settings.database_url();
    let cli = |args: &[&str]| {
        crate::cli::onewindow()
            .args(args)
            .env("ONEWINDOW_DATABASE_URL", &db)
            .env("ONEWINDOW_DATA_DIR", &state.settings.server.data_dir)
            .env(
                "ONEWINDOW_DEFINITIONS_DIR",
                crate::harness::definitions_dir(),
            )
            .output()
            .expect("run onewindow")
    };
    let out = cli(&["mail", "--state", "failed"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "pending 0  sent 0  failed 1  none 0");
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[1].contains(&case_no)
            && lines[1].contains("failed")
            && lines[1].contains("attempts 3")
            && lines[1].contains("error: connection"),
        "{stdout}"
    );
    assert!(!stdout.contains('@'), "no address: {stdout}");
    assert_eq!(
        cli(&["mail", "--state", "sent"]).stdout.len(),
        lines[0].len() + 1
    );
    assert_eq!(cli(&["mail", "--state", "lost"]).status.code(), Some(2));
}

fn person(subject: &str, email: Option<&str>) -> Identity {
    Identity {
        issuer: "https://idp.example".into(),
        subject: subject.into(),
        kind: AccountKind::Person,
        name: "王小明".into(),
        id_number: None,
        phone: None,
        email: email.map(str::to_owned),
        assurance: 2,
        enterprise: None,
        roles: vec![Role::Citizen],
    }
}

/// Writes a case of `account` with one notice titled `title`, queued for mail.
async fn notice_to(state: &AppState, account: Uuid, title: &str) -> NoticeRow {
    let mut c: CaseRow = crate::store::case("A-0001", 0);
    c.applicant.account_id = Some(account);
    let n = crate::store::notice(&c, title, Utc::now());
    let e = crate::store::event(c.created_at, Some("submit"), Some("draft"), "submitted");
    let notices = [n.clone()];
    let w = CaseWrite {
        notices: &notices,
        ..crate::store::only(&e)
    };
    assert!(matches!(
        state.store.create_case(&c, w).await.expect("case"),
        WriteOutcome::Done
    ));
    n
}

async fn gateway(res: &Resources, extra: &[(&str, &str)]) -> AppState {
    let mut settings: Vec<(&str, &str)> = vec![("worker_in_serve", "false")];
    settings.extend_from_slice(extra);
    Application::build(res.settings_with(&settings))
        .await
        .expect("gateway")
        .state()
}

async fn two_gateways_never_send_one_notice_twice(b: Backend) {
    let res = Resources::new(b).await;
    let sink = SmtpSink::start().await;
    let relay = smtp(&sink);
    let one = gateway(&res, &[("smtp_url", relay.as_str())]).await;
    let two = gateway(&res, &[("smtp_url", relay.as_str())]).await;
    let account = one
        .store
        .upsert_account(&person("p-1", Some(WANG_MAIL)), Utc::now())
        .await
        .expect("account");
    for i in 0..20 {
        notice_to(&one, account, &format!("通知{i:02}")).await;
    }
    let now = Utc::now();
    let (a, b2) = tokio::join!(send_due(&one, now), send_due(&two, now));
    let (a, b2) = (a.expect("one"), b2.expect("two"));
    assert_eq!(a.sent + b2.sent, 20, "{a:?} {b2:?}");
    let mails = sink.wait_for(20).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(sink.mails().len(), 20, "no notice mailed twice");
    let mut titles: Vec<String> = mails
        .iter()
        .map(|m| {
            let text = decoded_words(&m.text());
            (0..20)
                .map(|i| format!("通知{i:02}"))
                .find(|t| text.contains(t.as_str()))
                .unwrap_or_else(|| panic!("a mail of one notice: {text}"))
        })
        .collect();
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), 20, "each notice once");
    assert_eq!(counts(&one).await.sent, 20);
}

async fn a_notice_without_an_address_or_a_relay_needs_no_mail(b: Backend) {
    let res = Resources::new(b).await;
    let sink = SmtpSink::start().await;
    let relay = smtp(&sink);
    let none = Report {
        none: 1,
        ..Report::default()
    };
    // No relay configured: nothing can be sent, whatever the address.
    let without_relay = gateway(&res, &[]).await;
    let with_address = without_relay
        .store
        .upsert_account(&person("p-1", Some(WANG_MAIL)), Utc::now())
        .await
        .expect("account");
    let n1 = notice_to(&without_relay, with_address, "无中继").await;
    assert_eq!(
        send_due(&without_relay, Utc::now()).await.expect("pass"),
        none
    );

    // A relay, but the account has no address.
    let with_relay = gateway(&res, &[("smtp_url", relay.as_str())]).await;
    let no_address = with_relay
        .store
        .upsert_account(&person("p-2", None), Utc::now())
        .await
        .expect("account");
    let n2 = notice_to(&with_relay, no_address, "无地址").await;
    assert_eq!(send_due(&with_relay, Utc::now()).await.expect("pass"), none);

    let listed: Vec<(Uuid, String, i32)> = with_relay
        .store
        .mail(Some("none"), 10)
        .await
        .expect("none")
        .into_iter()
        .map(|m| (m.id, m.state, m.attempts))
        .collect();
    assert_eq!(
        listed,
        [(n2.id, "none".to_owned(), 0), (n1.id, "none".to_owned(), 0)]
    );
    assert!(sink.mails().is_empty());
}

/// The mail's text with its RFC 2047 `=?utf-8?b?…?=` words (a non-ASCII subject)
/// decoded.
fn decoded_words(text: &str) -> String {
    use base64::Engine;
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("=?utf-8?b?") {
        out.push_str(&rest[..start]);
        let word = &rest[start + 10..];
        let end = word.find("?=").expect("end of an encoded word");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&word[..end])
            .expect("base64 word");
        out.push_str(&String::from_utf8_lossy(&bytes));
        rest = &word[end + 2..];
    }
    out.push_str(rest);
    out
}
