//! The citizen's whole online application in a real browser (Debian's Chromium driven
//! by playwright-core, `tests/browser/apply_with_prefill.mjs`): login, the sources of the
//! prefill, consent, the prefilled form step by step, a tampered authoritative value
//! refused, the documents with only the photo uploaded, check your answers, the receipt
//! and the data-access page. Then the store is
//! checked: the ID card stood in for by its e-licence, provenance recorded, and exactly
//! the reads the browser saw.
//!
//! Sets itself up: `npm ci` in `tests/browser` when its `node_modules` lacks the pinned
//! driver, and Debian's `chromium` (with CJK fonts) when `/usr/bin/chromium` is missing
//! and the test may install packages (root, or `sudo -n`); otherwise it fails with the
//! command to run. It never skips.

use std::path::{Path, PathBuf};
use std::time::Duration;

use onewindow::domain::lang::Lang;
use onewindow::sharing::audit;
use serde_json::Value;

use crate::backend_tests;
use crate::cases::{SSC, jpeg};
use crate::harness::Backend;
use crate::login::{Browser, with_dev_idp};

backend_tests!(a_citizen_applies_online_with_prefill_in_a_real_browser);

pub const CHROMIUM: &str = "/usr/bin/chromium";
const WANG_ID: &str = "150702198506123025"; // citizen-wang's resident ID number
const WANG_LICENCE: &str = "150702198506123025"; // her resident ID card e-licence number
const WANG_LICENCE_MASKED: &str = "150702********3025"; // as the pages show it

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Chromium and the driver must be there: installed when missing, else the test fails.
fn require_browser() {
    if let Err(e) = ensure_chromium() {
        panic!("{e}");
    }
    if let Err(e) = crate::oidc_provider::ensure_npm_fixture(&browser_dir(), "playwright-core") {
        panic!("{e}");
    }
}

/// What to run when Chromium is missing and this process may not install it.
pub const INSTALL_CHROMIUM: &str =
    "sudo apt-get update && sudo apt-get install -y chromium fonts-noto-cjk";

/// Makes sure Debian's Chromium is at [`CHROMIUM`]: when it is missing, installs
/// `chromium` and `fonts-noto-cjk` with apt-get if this process is root or `sudo -n`
/// works (once per test process, under a file lock across processes); otherwise an error
/// with the command to run.
pub fn ensure_chromium() -> Result<(), String> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(install_chromium).clone()
}

fn install_chromium() -> Result<(), String> {
    if Path::new(CHROMIUM).exists() {
        return Ok(());
    }
    let lock_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chromium-install.lock");
    let lock =
        std::fs::File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("lock {}: {e}", lock_path.display()))?;
    if Path::new(CHROMIUM).exists() {
        return Ok(());
    }
    let run = |cmd: &[&str]| {
        std::process::Command::new(cmd[0])
            .args(&cmd[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null())
            .output()
    };
    let root = run(&["id", "-u"])
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let sudo: &[&str] = if root {
        &[]
    } else if run(&["sudo", "-n", "true"]).is_ok_and(|o| o.status.success()) {
        &["sudo", "-n"]
    } else {
        return Err(format!(
            "{CHROMIUM} is missing and this test may not install it: run `{INSTALL_CHROMIUM}`"
        ));
    };
    eprintln!("{CHROMIUM} is missing: installing chromium and fonts-noto-cjk with apt-get");
    for step in [
        &["apt-get", "update", "-qq"][..],
        &[
            "apt-get",
            "install",
            "-y",
            "-qq",
            "chromium",
            "fonts-noto-cjk",
        ][..],
    ] {
        let cmd: Vec<&str> = sudo.iter().chain(step).copied().collect();
        let out =
            run(&cmd).map_err(|e| format!("cannot run {cmd:?} ({e}): run `{INSTALL_CHROMIUM}`"))?;
        if !out.status.success() {
            return Err(format!(
                "{cmd:?} failed ({}): {}\nrun `{INSTALL_CHROMIUM}`",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    if Path::new(CHROMIUM).exists() {
        Ok(())
    } else {
        Err(format!(
            "apt-get installed chromium but {CHROMIUM} is still missing: run `{INSTALL_CHROMIUM}`"
        ))
    }
}

async fn a_citizen_applies_online_with_prefill_in_a_real_browser(b: Backend) {
    require_browser();
    let s = with_dev_idp(b, &[("worker_in_serve", "false")]).await;
    let state = &s.app.state;
    // The test app's base library holds the shipped demo data (harness::seed_base_library,
    // imported with `sharing::import::import_file`), the persona's records among them.
    for resource in ["person", "elicence"] {
        let held = state
            .providers
            .base
            .records(resource, WANG_ID)
            .await
            .expect("base library");
        assert!(!held.is_empty(), "no {resource} records of citizen-wang");
    }
    let photo = tempfile::Builder::new()
        .suffix(".jpg")
        .tempfile()
        .expect("photo file");
    std::fs::write(photo.path(), jpeg(42)).expect("write photo");

    let base = format!("http://{}", s.app.addr);
    let script = browser_dir().join("apply_with_prefill.mjs");
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&base)
        .arg(photo.path())
        .env("ONEWINDOW_CHROMIUM", CHROMIUM)
        .current_dir(browser_dir())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser journey finishes within 3 minutes")
        .expect("node runs (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser journey failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    let result: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("the journey's result is not JSON ({e}): {stdout}"));
    eprintln!("browser journey ({b:?}): {}", result["steps"]);
    let case_no = result["case_no"].as_str().expect("case number");
    assert_eq!(result["licence_no"], WANG_LICENCE_MASKED, "{result}");

    // The case: the ID card stood in for by the e-licence, the photo uploaded.
    let c = state
        .store
        .case_by_no(case_no)
        .await
        .expect("store")
        .expect("the case exists");
    assert_eq!(c.service_code, SSC);
    assert_eq!(c.channel, "online");
    assert_eq!(
        c.query_code,
        result["query_code"].as_str().expect("query code")
    );
    let account = c
        .applicant
        .account_id
        .expect("an online case has its account");
    let materials = state.store.case_materials(c.id).await.expect("materials");
    assert_eq!(materials.len(), 2, "{materials:?}");
    let id_card = materials
        .iter()
        .find(|m| m.material_id == "id_card")
        .expect("id_card");
    assert!(id_card.substituted, "{id_card:?}");
    assert!(id_card.upload_id.is_none());
    assert_eq!(id_card.source.as_deref(), Some("elicence.resident_id_card"));
    let evidence = id_card.evidence.as_ref().expect("evidence of the licence");
    assert_eq!(evidence["licence_no"], WANG_LICENCE, "{evidence}");
    assert_eq!(
        evidence["source"], "elicence.resident_id_card",
        "{evidence}"
    );
    let photo_row = materials
        .iter()
        .find(|m| m.material_id == "photo")
        .expect("photo");
    assert!(!photo_row.substituted);
    assert_eq!(photo_row.file_type.as_deref(), Some("jpg"));
    let upload = state
        .store
        .upload(photo_row.upload_id.expect("photo upload"))
        .await
        .expect("store")
        .expect("upload");
    assert_eq!(upload.owner, account, "the upload is the applicant's");
    assert_eq!(upload.case_id, Some(c.id));

    // Provenance: which values came from shared data, unchanged.
    for (field, source) in [
        ("applicant_name", "person.name"),
        ("applicant_id_number", "person.id_number"),
        ("gender", "person.gender"),
        ("phone", "person.phone"),
    ] {
        let p = &c.provenance[field];
        assert_eq!(p["source"], source, "{field}: {}", c.provenance);
        assert_eq!(p["changed"], false, "{field}: {}", c.provenance);
    }
    assert_eq!(c.provenance["applicant_name"]["authoritative"], true);
    assert!(
        c.provenance.get("old_card_no").is_none(),
        "the unavailable source filled nothing: {}",
        c.provenance
    );
    assert_eq!(c.form["applicant_name"], "王小明");
    assert!(c.fields_prefilled >= 4, "{}", c.fields_prefilled);

    // Exactly the reads the browser saw: person and e-licence, by the citizen, to prefill.
    let reads = audit::for_subjects(state, Some(WANG_ID), None, Lang::Zh, 100)
        .await
        .expect("trail");
    let mut resources: Vec<&str> = reads.iter().map(|r| r.resource_code.as_str()).collect();
    resources.sort_unstable();
    assert_eq!(resources, ["elicence", "person"], "{reads:?}");
    for r in &reads {
        assert_eq!(r.reader_kind, "applicant", "{r:?}");
        assert_eq!(r.purpose, "prefill", "{r:?}");
        assert_eq!(r.service.as_deref(), Some("社会保障卡申领"), "{r:?}");
        assert!(r.case_no.is_none(), "{r:?}");
    }
    // The page shows the prefill as one read (one row) naming both resources.
    let shown = result["data_access"].as_array().expect("rows");
    assert_eq!(shown.len(), 1, "one read, one row: {result}");
    assert_eq!(shown[0]["purpose"], "申请时预填表单", "{result}");

    // The receipt with the query code is its owner's only.
    let anonymous = Browser::new();
    let resp = anonymous
        .get(&s.app.url(&format!("/cases/{case_no}/submitted")))
        .await;
    assert_eq!(resp.status(), 303, "not logged in: to the login");
    assert!(
        resp.headers()["location"]
            .to_str()
            .expect("location")
            .starts_with("/auth/login?return_to=%2Fcases%2F")
    );
    let other = Browser::new();
    s.login(&other, "/auth/login", "citizen-li").await;
    let resp = other
        .client
        .get(s.app.url(&format!("/cases/{case_no}/submitted")))
        .header("accept", "text/html")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 404, "another citizen cannot see the receipt");
    let body = resp.text().await.expect("body");
    assert!(!body.contains(&c.query_code), "the query code leaked");
}
