//! The browser journeys (`tests/e2e/<journey>.mjs`): the app with the development
//! identity provider, the demo's cases seeded (`onewindow::demo_seed`), and a journey run
//! by Node.js in Debian's Chromium with axe-core on every page it checks. The test passes
//! when the journey exits 0; its output is printed either way, and its screenshots are in
//! `target/e2e/<journey>/`.
//!
//! Sets itself up like the other browser test: `npm ci` in `tests/e2e` when needed, and
//! Chromium when missing and installable (see `browser::ensure_chromium`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::backend_tests;
use crate::browser::{CHROMIUM, ensure_chromium};
use crate::harness::Backend;
use crate::login::{LoginSetup, with_dev_idp};
use crate::oidc_provider::ensure_npm_fixture;

backend_tests!(
    the_public_pages_journey,
    the_public_pages_work_without_javascript,
    the_citizen_journey,
    the_citizen_journey_without_javascript,
    the_apply_form_by_keyboard_only,
    the_window_journey,
    the_officer_and_operator_journey,
    the_sharing_and_open_data_pages
);

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

/// A test app with the dev IdP and the demo's cases, ready for a journey.
pub struct JourneyApp {
    /// The app and its identity provider.
    pub s: LoginSetup,
    /// The demo's cases: plan key → case number and status, handed to journeys as
    /// `ONEWINDOW_E2E_CASES` (`j.cases` in lib.mjs).
    pub cases: Value,
}

/// Starts a test app with the dev IdP and seeds the demo's cases into it.
pub async fn journey_app(b: Backend) -> JourneyApp {
    if let Err(e) = ensure_chromium() {
        panic!("{e}");
    }
    if let Err(e) = ensure_npm_fixture(&e2e_dir(), "axe-core") {
        panic!("{e}");
    }
    let s = with_dev_idp(b, &[("worker_in_serve", "false")]).await;
    let report = onewindow::demo_seed::seed(&s.app.state, &s.issuer).await;
    assert!(
        report.failed.is_empty(),
        "demo cases not made: {:?}",
        report.failed
    );
    eprintln!("seeded {}", report.summary());
    let cases = report
        .cases
        .iter()
        .map(|(key, case_no, status)| {
            (
                key.clone(),
                serde_json::json!({ "case_no": case_no, "status": status }),
            )
        })
        .collect::<serde_json::Map<_, _>>();
    JourneyApp {
        s,
        cases: Value::Object(cases),
    }
}

/// Runs `tests/e2e/<journey>.mjs` against the app; panics with its output unless it
/// exits 0. Answers the journey's result (the JSON line it printed last).
pub async fn run_journey(app: &JourneyApp, b: Backend, journey: &str) -> Value {
    run_journey_with(app, b, journey, &[]).await
}

/// The same with extra environment for the journey (`ONEWINDOW_E2E_JS=0`: no JavaScript).
pub async fn run_journey_with(
    app: &JourneyApp,
    b: Backend,
    journey: &str,
    env: &[(&str, &str)],
) -> Value {
    let base = format!("http://{}", app.s.app.addr);
    // The SQLite run's screenshots in target/e2e, the other backend's beside them.
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(match b {
        Backend::SqliteMemory => "target/e2e",
        _ => "target/e2e-postgres",
    });
    let run = tokio::process::Command::new("node")
        .arg(e2e_dir().join(format!("{journey}.mjs")))
        .arg(&base)
        .env("ONEWINDOW_CHROMIUM", CHROMIUM)
        .env("ONEWINDOW_E2E_OUT", &out_dir)
        .env("ONEWINDOW_E2E_CASES", app.cases.to_string())
        .envs(env.iter().copied())
        .current_dir(e2e_dir())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .unwrap_or_else(|_| panic!("the {journey} journey finishes within 4 minutes"))
        .expect("node runs (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("journey {journey} ({}):\n{stderr}\n{stdout}", out.status);
    assert!(
        out.status.success(),
        "the {journey} journey failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("the {journey} journey's result is not JSON ({e}): {stdout}"))
}

async fn the_public_pages_journey(b: Backend) {
    let app = journey_app(b).await;
    let result = run_journey(&app, b, "public").await;
    let steps = result["steps"].as_array().expect("steps");
    for page in [
        "home-en",
        "catalogue-en",
        "not-found-en",
        "eligibility-low-assurance-en",
    ] {
        assert!(
            steps.iter().any(|s| s == &format!("checked {page}")),
            "{page} was not checked: {result}"
        );
    }
}

async fn the_public_pages_work_without_javascript(b: Backend) {
    let app = journey_app(b).await;
    let result = run_journey_with(&app, b, "public", &[("ONEWINDOW_E2E_JS", "0")]).await;
    let steps = result["steps"].as_array().expect("steps");
    assert!(
        steps
            .iter()
            .any(|s| s == "checked eligibility-low-assurance-en"),
        "the login and the pages work without JavaScript: {result}"
    );
}

/// A journey's result must list every step the test names, so a journey that stopped
/// short (or skipped a part) does not pass.
fn assert_steps(result: &Value, wanted: &[&str]) {
    let steps = result["steps"].as_array().expect("steps");
    for want in wanted {
        assert!(
            steps.iter().any(|s| s == want),
            "the journey did not reach `{want}`: {result}"
        );
    }
}

/// A citizen applies with prefill and an upload, a clerk accepts, the department's
/// officer concludes, the citizen sees the approval and rates the case
/// (`tests/e2e/citizen.mjs`).
async fn the_citizen_journey(b: Backend) {
    let app = journey_app(b).await;
    let result = run_journey(&app, b, "citizen").await;
    assert_steps(&result, &["submitted", "approved", "rated"]);
}

/// The same journey with JavaScript disabled.
async fn the_citizen_journey_without_javascript(b: Backend) {
    let app = journey_app(b).await;
    let result = run_journey_with(&app, b, "citizen", &[("ONEWINDOW_E2E_JS", "0")]).await;
    assert_steps(&result, &["submitted", "approved", "rated"]);
}

/// The apply form filled and submitted with the keyboard alone (`tests/e2e/keyboard.mjs`).
async fn the_apply_form_by_keyboard_only(b: Backend) {
    let app = journey_app(b).await;
    let result = run_journey(&app, b, "keyboard").await;
    assert_steps(&result, &["submitted"]);
}

/// A clerk takes in a walk-in applicant and requests a correction; the applicant logs
/// in, finds the case in "my cases" and corrects it; the clerk accepts and prints the
/// notice (`tests/e2e/window.mjs`).
async fn the_window_journey(b: Backend) {
    let app = journey_app(b).await;
    let result = run_journey(&app, b, "window").await;
    assert_steps(
        &result,
        &["taken in", "correction requested", "corrected", "accepted"],
    );
}

/// An officer suspends, resumes and concludes a case; the operator's dashboard counts
/// it; the public status query shows it (`tests/e2e/officer.mjs`).
async fn the_officer_and_operator_journey(b: Backend) {
    let app = journey_app(b).await;
    let result = run_journey(&app, b, "officer").await;
    assert_steps(
        &result,
        &[
            "suspended",
            "resumed",
            "concluded",
            "dashboard",
            "status query",
        ],
    );
}

/// The open-data site, the catalogue's search, an officer's catalogue, sharing and
/// open-data pages and the operator's: every one passes axe and fits a phone, in both
/// languages.
async fn the_sharing_and_open_data_pages(b: Backend) {
    let app = journey_app(b).await;
    let result = run_journey(&app, b, "platform").await;
    assert_steps(&result, &["public", "officer", "operator"]);
}
