//! The citizen's whole online application in a real browser (Debian's Chromium driven
//! by playwright-core, `tests/browser/apply_with_prefill.mjs`): login, the sources of the
//! prefill, consent, the prefilled form step by step, a tampered authoritative value
//! refused, the documents with only the photo uploaded, check your answers, the receipt
//! and the data-access page. Then the store is
//! checked: the ID card stood in for by its e-licence, provenance recorded, and exactly
//! the reads the browser saw.
//!
//! Needs `/usr/bin/chromium` and `npm ci --prefix tests/browser` (`.ci/run` does both);
//! without them the test fails, it never skips.

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

const CHROMIUM: &str = "/usr/bin/chromium";
const WANG_ID: &str = "150702198506123025"; // citizen-wang's resident ID number
const WANG_LICENCE: &str = "150702198506123025"; // her resident ID card e-licence number
const WANG_LICENCE_MASKED: &str = "150702********3025"; // as the pages show it

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Chromium and the driver must be there: a missing one fails the test.
fn require_browser() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install it with `apt-get install -y chromium` (.ci/run does)"
    );
    assert!(
        browser_dir()
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is missing: run `npm ci --prefix tests/browser` (.ci/run does)"
    );
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
