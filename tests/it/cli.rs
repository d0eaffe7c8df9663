//! The `onewindow` binary as an operator runs it: check, config, serve and shutdown.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Backend, Resources, definitions_dir};

pub(crate) fn onewindow() -> Command {
    crate::harness::install_tls_provider();
    let mut c = Command::new(env!("CARGO_BIN_EXE_onewindow"));
    // a clean environment: only what the test sets
    for (k, _) in std::env::vars() {
        if k.starts_with("ONEWINDOW_") || k == "DATABASE_URL" || k == "REDIS_URL" || k == "RUST_LOG"
        {
            c.env_remove(k);
        }
    }
    // the test gateways' key-encryption key (tests of its absence remove it)
    c.env("ONEWINDOW_KEY_ENCRYPTION_KEY", crate::harness::TEST_KEK);
    c
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn check_accepts_the_shipped_definitions() {
    let out = onewindow()
        .arg("check")
        .arg(definitions_dir())
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok"), "{stdout}");
}

#[test]
fn check_names_every_file_and_field_that_is_wrong() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("defs");
    copy_dir(&definitions_dir(), &dir);
    let svc = dir.join("services/scjg-gtgsh-sl.toml");
    let text = std::fs::read_to_string(&svc).expect("read");
    let text = text.replacen("type = \"number\"", "type = \"money\"", 1);
    std::fs::write(&svc, text).expect("write");
    // a second file with two semantic mistakes
    let other = dir.join("services/ga-jzz-sl.toml");
    let text = std::fs::read_to_string(&other).expect("read");
    let text = text.replacen("min_assurance = ", "min_assurance = 7 # ", 1);
    let text = text.replacen("name_en = \"", "name_en = \"\" # \"", 1);
    std::fs::write(&other, text).expect("write");

    let out = onewindow().arg("check").arg(&dir).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let other_name = format!(
        "services/{}",
        other.file_name().expect("name").to_string_lossy()
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("services/scjg-gtgsh-sl.toml")
                && l.contains("type")
                && l.contains("money")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(&other_name) && l.contains("min_assurance")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(&other_name) && l.contains("name_en")),
        "{stdout}"
    );
    assert!(stderr.contains("3 error(s) in 2 file(s)"), "{stderr}");
}

#[test]
fn serve_refuses_to_start_on_a_broken_definition() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("defs");
    copy_dir(&definitions_dir(), &dir);
    std::fs::write(dir.join("services/broken.toml"), "code = \"X\"\n").expect("write");
    let out = onewindow()
        .arg("serve")
        .env("ONEWINDOW_DEFINITIONS_DIR", &dir)
        .env("ONEWINDOW_DATA_DIR", tmp.path().join("data"))
        .env("ONEWINDOW_LISTEN", "127.0.0.1:0")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("services/broken.toml"), "{stderr}");
}

#[test]
fn a_bad_setting_stops_the_program_naming_the_key() {
    let out = onewindow()
        .arg("config")
        .env("ONEWINDOW_LISTEN", "everywhere:80")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`listen`"), "{stderr}");

    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("gw.toml");
    std::fs::write(&file, "cache_prefix = \"\"\n").expect("write");
    let out = onewindow()
        .arg("--config")
        .arg(&file)
        .arg("config")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`cache_prefix`"));

    let out = onewindow()
        .arg("--config")
        .arg(tmp.path().join("missing.toml"))
        .arg("config")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn config_layers_file_then_environment_and_hides_secrets() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("gw.toml");
    std::fs::write(
        &file,
        "listen = \"0.0.0.0:9000\"\ncache_prefix = \"from-file:\"\ndatabase_url = \"postgres://gw:file-secret@db/gw\"\n",
    )
    .expect("write");
    let out = onewindow()
        .arg("--config")
        .arg(&file)
        .arg("config")
        .env("ONEWINDOW_LISTEN", "127.0.0.1:9100")
        .env("REDIS_URL", "redis://:env-secret@cache:6379")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("listen = \"127.0.0.1:9100\""),
        "env wins over file: {text}"
    );
    assert!(text.contains("cache_prefix = \"from-file:\""), "{text}");
    assert!(text.contains("postgres://gw:***@db/gw"), "{text}");
    assert!(text.contains("redis://:***@cache:6379"), "{text}");
    assert!(
        !text.contains("file-secret") && !text.contains("env-secret"),
        "{text}"
    );
}

#[test]
fn environment_variables_reach_every_group_and_unknown_ones_are_refused() {
    let out = onewindow()
        .arg("config")
        .env("ONEWINDOW_SESSION_IDLE_SECS", "600")
        .env("ONEWINDOW_OIDC_CLAIM_ID_NUMBER", "idcard")
        .env("ONEWINDOW_PROVIDER_OPEN_SECS", "45")
        .env("ONEWINDOW_WORKER_IN_SERVE", "false")
        .env("ONEWINDOW_MAIL_FROM", "政务服务 <zw@example.gov.cn>")
        .env("ONEWINDOW_OIDC_CLIENT_SECRET", "env-client-secret")
        .env("DATABASE_URL", "postgres://gw:plain-secret@plain/gw")
        .env(
            "ONEWINDOW_DATABASE_URL",
            "postgres://gw:prefixed-secret@prefixed/gw",
        )
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "session_idle_secs = 600",
        "oidc_claim_id_number = \"idcard\"",
        "provider_open_secs = 45",
        "worker_in_serve = false",
        "mail_from = \"政务服务 <zw@example.gov.cn>\"",
        "oidc_client_secret = \"***\"",
        "database_url = \"postgres://gw:***@prefixed/gw\"",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing: {text}");
    }
    assert!(
        !text.contains("secret@") && !text.contains("env-client-secret"),
        "{text}"
    );

    let out = onewindow()
        .arg("config")
        .env("ONEWINDOW_SESION_IDLE_SECS", "600")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`sesion_idle_secs`") && stderr.contains("unknown key"),
        "{stderr}"
    );
}

/// Runs `onewindow serve` on port 0, waits for it to listen, checks it serves, then
/// sends SIGTERM and expects a clean exit.
fn serve_and_stop(envs: &[(&str, &str)]) {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut cmd = onewindow();
    cmd.arg("serve")
        .env("ONEWINDOW_LISTEN", "127.0.0.1:0")
        .env("ONEWINDOW_DATA_DIR", tmp.path().join("data"))
        .env("ONEWINDOW_DEFINITIONS_DIR", definitions_dir())
        .env("ONEWINDOW_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut addr = None;
    let mut logs = Vec::new();
    while addr.is_none() && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(a) = v["addr"].as_str()
            {
                addr = Some(a.to_owned());
            }
            logs.push(line);
        }
    }
    let Some(addr) = addr else {
        let _ = child.kill();
        panic!(
            "the server never said where it listens:\n{}",
            logs.join("\n")
        );
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let c = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let r = c
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .expect("readyz");
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = c
            .get(format!("http://{addr}/api/v1/services"))
            .send()
            .await
            .expect("services")
            .json()
            .await
            .expect("json");
        assert!(v["total"].as_u64().expect("total") >= 10);
    });
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            assert!(s.success(), "exit status after SIGTERM: {s}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // every log line is JSON, and none carries a secret
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
        logs.push(line);
    }
    for line in &logs {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
        assert!(
            !line.contains("@127.0.0.1"),
            "a connection URL reached the log: {line}"
        );
    }
    assert!(
        logs.iter().any(|l| l.contains("stopped")),
        "{}",
        logs.join("\n")
    );
}

#[test]
fn serve_with_no_configuration_then_stop_on_sigterm() {
    serve_and_stop(&[]);
}

#[test]
#[cfg_attr(
    not(external_backends),
    ignore = "PostgreSQL/Redis not configured: set ONEWINDOW_TEST_DATABASE_URL and ONEWINDOW_TEST_REDIS_URL"
)]
fn serve_on_postgres_and_redis_from_the_usual_variables() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let res = rt.block_on(Resources::new(Backend::PostgresRedis));
    let db = res.database_url.clone().expect("db");
    let rd = res.redis_url.clone().expect("redis");
    serve_and_stop(&[
        ("DATABASE_URL", db.as_str()),
        ("REDIS_URL", rd.as_str()),
        ("ONEWINDOW_CACHE_PREFIX", res.prefix.as_str()),
    ]);
    drop(res);
}

#[test]
fn migrate_applies_and_reports() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = || {
        onewindow()
            .arg("migrate")
            .env("ONEWINDOW_DATA_DIR", tmp.path())
            .output()
            .expect("run")
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        first.contains("migration(s) applied to the sqlite database") && !first.starts_with('0'),
        "{first}"
    );
    assert!(
        tmp.path().join("onewindow.db").exists(),
        "the database file is created on first run"
    );
    let out = run();
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 migration(s)"));
}

#[test]
fn check_rejects_a_binding_the_service_is_not_entitled_to() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("defs");
    copy_dir(&definitions_dir(), &dir);
    // Take 社会保障卡申领 off the population data's grants, and bind a field of 居住证申领
    // to the criminal records, which are never shared.
    let cat = dir.join("data-catalogue.toml");
    let text = std::fs::read_to_string(&cat).expect("read");
    let text = text.replacen(
        "  \"11150700MB15300034-GG-0002\",   # 社会保障卡申领\n",
        "",
        1,
    );
    std::fs::write(&cat, text).expect("write");
    let svc = dir.join("services/ga-jzz-sl.toml");
    let text = std::fs::read_to_string(&svc).expect("read");
    let text = text.replacen(
        "prefill = \"person.household_address\"",
        "prefill = \"criminal_record.record_details\"",
        1,
    );
    std::fs::write(&svc, text).expect("write");
    let out = onewindow().arg("check").arg(&dir).output().expect("run");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("services/rs-sbk-sl.toml")
            && all.contains("grants this service no entitlement"),
        "{all}"
    );
    assert!(
        all.contains("services/ga-jzz-sl.toml") && all.contains("不予共享"),
        "{all}"
    );
}

#[test]
fn data_api_is_set_by_command_and_must_be_https() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = |args: &[&str]| {
        onewindow()
            .args(args)
            .env("ONEWINDOW_DATA_DIR", tmp.path())
            .env("ONEWINDOW_DEFINITIONS_DIR", definitions_dir())
            .output()
            .expect("run")
    };
    let out = run(&["data-api", "11150700MB15300034", "http://hr.example/api"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("https"));
    let out = run(&["data-api", "11150700MB15300034", "https://hr.example/api/"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("https://hr.example/api"));
    let out = run(&["data-api", "NOPE", "https://x.example"]);
    assert!(!out.status.success());
    let out = run(&["data-api", "11150700MB15300034", "--remove"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_names_the_region_mappings_mistakes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("defs");
    copy_dir(&definitions_dir(), &dir);
    let file = dir.join("region-mapping.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    let text = text
        .replacen("query_code = \"CXM\"", "colour = \"YS\"", 1)
        .replacen("accept = \"02\"", "accept = \"\"", 1);
    std::fs::write(&file, text).expect("write");
    let out = onewindow().arg("check").arg(&dir).output().expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for want in [
        "case_report.query_code: missing",
        "case_report.colour: unknown",
        "stages.accept: empty",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains("region-mapping.toml") && l.contains(want)),
            "{want}: {stdout}"
        );
    }
}
