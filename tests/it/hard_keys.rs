//! Issue 13, item 3: keys and files sealed. Keys in the database are wrapped by the
//! key-encryption key (and plain ones wrapped on start), the gateway refuses to start
//! without one, materials are sealed at rest and reach every instance (database or S3
//! store), a tampered material is refused, and `keys rotate-data` re-seals everything
//! while it all still reads.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use onewindow::datakeys::{RotateOptions, rotate_data};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::cases::{SSC, Session, jpeg, valid_values};
use crate::harness::{Backend, Resources, TestApp, bind, definitions_dir};
use crate::login::{LoginSetup, with_dev_idp};

backend_tests!(
    keys_in_the_database_are_wrapped_and_plain_ones_wrapped_on_start,
    a_new_kek_rewraps_every_key,
    materials_uploaded_through_one_instance_download_through_another,
    materials_in_an_s3_store_reach_every_instance,
    a_tampered_material_is_refused,
    rotate_data_reseals_and_everything_still_reads,
);

const DEPT: &str = "11150700MB15300034";

/// The test database, read and written without the gateway.
enum Raw {
    Lite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

impl Raw {
    async fn open(res: &Resources) -> Raw {
        let url = res.settings().database_url();
        if url.starts_with("postgres") {
            Raw::Pg(sqlx::PgPool::connect(&url).await.expect("pg"))
        } else {
            Raw::Lite(sqlx::SqlitePool::connect(&url).await.expect("sqlite"))
        }
    }

    /// Pairs of text (`SELECT a, b …`, both cast to text by the query).
    async fn pairs(&self, sql: &'static str) -> Vec<(String, String)> {
        match self {
            Raw::Lite(p) => sqlx::query_as(sql).fetch_all(p).await.expect(sql),
            Raw::Pg(p) => sqlx::query_as(sql).fetch_all(p).await.expect(sql),
        }
    }

    /// Runs a statement with text binds.
    async fn exec(&self, sql: &'static str, binds: &[&str]) -> u64 {
        match self {
            Raw::Lite(p) => {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(b.to_string());
                }
                q.execute(p).await.expect(sql).rows_affected()
            }
            Raw::Pg(p) => {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(b.to_string());
                }
                q.execute(p).await.expect(sql).rows_affected()
            }
        }
    }

    async fn blob(&self, key: &str) -> Vec<u8> {
        let sql = "SELECT bytes FROM material_blobs WHERE storage_key = $1";
        match self {
            Raw::Lite(p) => sqlx::query_scalar(sql).bind(key).fetch_one(p).await,
            Raw::Pg(p) => sqlx::query_scalar(sql).bind(key).fetch_one(p).await,
        }
        .expect("blob")
    }

    async fn set_blob(&self, key: &str, bytes: Vec<u8>) {
        let sql = "UPDATE material_blobs SET bytes = $1 WHERE storage_key = $2";
        let n = match self {
            Raw::Lite(p) => sqlx::query(sql)
                .bind(bytes)
                .bind(key)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Raw::Pg(p) => sqlx::query(sql)
                .bind(bytes)
                .bind(key)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        }
        .expect("set blob");
        assert_eq!(n, 1);
    }

    async fn close(self) {
        match self {
            Raw::Lite(p) => p.close().await,
            Raw::Pg(p) => p.close().await,
        }
    }
}

/// A citizen lodges a 社会保障卡申领 case with a photo: (case number, upload id, photo).
async fn lodge_with_photo(s: &LoginSetup) -> (String, String, Vec<u8>) {
    let citizen = Session::new(s, "/auth/login", "citizen-wang").await;
    let photo = jpeg(9);
    let (status, up) = citizen.upload("photo.jpg", photo.clone()).await;
    assert_eq!(status, 201, "{up}");
    let (status, case) = citizen
        .post(
            "/api/v1/cases",
            &json!({ "service_code": SSC, "values": valid_values(), "materials": [
                { "material": "id_card", "substitute": true },
                { "material": "photo", "upload_id": up["id"] }] }),
        )
        .await;
    assert_eq!(status, 201, "{case}");
    (
        case["case_no"].as_str().expect("case_no").to_owned(),
        up["id"].as_str().expect("id").to_owned(),
        photo,
    )
}

/// The department downloads a material through `app`.
async fn download(app: &TestApp, token: &str, case_no: &str, upload: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/dept/v1/cases/{case_no}/materials/{upload}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("download")
}

/// A second gateway on the first one's database (its own data directory and port).
async fn second_instance(s: &LoginSetup, extra: &[(&str, &str)]) -> TestApp {
    let db = s.app.resources().settings().database_url();
    let res = Resources::new(s.app.resources().backend).await;
    let mut settings = vec![("database_url", db.as_str())];
    settings.extend_from_slice(extra);
    TestApp::start_on(res, bind().await, false, &settings).await
}

async fn storage_key(raw: &Raw, upload: &str) -> String {
    let rows = raw
        .pairs("SELECT CAST(id AS TEXT), storage_key FROM uploads")
        .await;
    rows.into_iter()
        .find(|(id, _)| id == upload)
        .map(|(_, k)| k)
        .expect("the upload's row")
}

/// Every key the database keeps is wrapped (the raw rows hold no key a reader could
/// use); keys kept in plain text by an older version are wrapped on the next start and
/// stay the same keys.
async fn keys_in_the_database_are_wrapped_and_plain_ones_wrapped_on_start(b: Backend) {
    let app = TestApp::spawn(b).await;
    let index_key = app.state.index_key.clone();
    let kid = app.state.keys.with(|r| r.current().kid.clone());
    let seed = app.state.keys.with(|r| r.current().secret_b64());
    let raw = Raw::open(app.resources()).await;
    let secrets = raw.pairs("SELECT name, value FROM secrets").await;
    assert!(secrets.len() >= 2, "{secrets:?}");
    for (name, value) in &secrets {
        assert!(value.starts_with("kek1:"), "{name} is not wrapped");
        assert!(!value.contains(&hex::encode(&index_key)), "{name}");
    }
    let signing = raw.pairs("SELECT kid, secret FROM signing_keys").await;
    assert_eq!(signing.len(), 1);
    assert!(signing[0].1.starts_with("kek1:"));
    assert!(
        !signing[0].1.contains(&seed),
        "the signing key is in plain text"
    );

    // an older version's plain keys: wrapped on the next start, the same keys
    let res = app.stop().await;
    let n = raw
        .exec(
            "UPDATE secrets SET value = $1 WHERE name = 'audit_blind_index'",
            &[&hex::encode(&index_key)],
        )
        .await;
    assert_eq!(n, 1, "the audit index key's row");
    raw.exec("UPDATE signing_keys SET secret = $1", &[&seed])
        .await;
    let app = TestApp::again(res).await;
    assert_eq!(app.state.index_key, index_key);
    assert_eq!(app.state.keys.with(|r| r.current().kid.clone()), kid);
    for (name, value) in raw.pairs("SELECT name, value FROM secrets").await {
        assert!(
            value.starts_with("kek1:"),
            "{name} was not wrapped on start"
        );
    }
    let signing = raw.pairs("SELECT kid, secret FROM signing_keys").await;
    assert!(
        signing[0].1.starts_with("kek1:"),
        "the signing key was not wrapped on start"
    );

    // without the KEK (another one) the gateway does not start: the keys do not open
    let res = app.stop().await;
    let other = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32]);
    let settings = res.settings_with(&[("key_encryption_key", other.as_str())]);
    let e = onewindow::app::Application::build_state(settings)
        .await
        .err()
        .expect("a gateway with another KEK must not start");
    assert!(format!("{e:#}").contains("key-encryption key"), "{e:#}");
    raw.close().await;
}

/// A new KEK with the old one as `key_encryption_key_previous`: `keys rewrap` wraps every
/// key again, after which the old KEK is no longer needed.
async fn a_new_kek_rewraps_every_key(b: Backend) {
    let app = TestApp::spawn(b).await;
    let index_key = app.state.index_key.clone();
    let res = app.stop().await;
    let new = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [4u8; 32]);
    let mut cmd = crate::cli::onewindow();
    cmd.args(["keys", "rewrap"])
        .env("ONEWINDOW_DATA_DIR", res.tmp.path())
        .env("ONEWINDOW_DEFINITIONS_DIR", definitions_dir())
        .env("ONEWINDOW_KEY_ENCRYPTION_KEY", &new)
        .env(
            "ONEWINDOW_KEY_ENCRYPTION_KEY_PREVIOUS",
            crate::harness::TEST_KEK,
        );
    if let Some(db) = &res.database_url {
        cmd.env("DATABASE_URL", db);
    }
    let out = cmd.output().expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("stored key(s) wrapped again"), "{stdout}");
    let n: u64 = stdout
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .expect("a count");
    assert!(n >= 3, "index key, data key and signing key: {stdout}");
    // the new KEK alone opens everything
    let app = TestApp::start_on(
        res,
        bind().await,
        false,
        &[("key_encryption_key", new.as_str())],
    )
    .await;
    assert_eq!(app.state.index_key, index_key);
    let r = app.get("/readyz", None).await;
    assert_eq!(r.status(), 200);
}

/// The default on PostgreSQL (and `materials_store = "database"` on SQLite): materials
/// in the database, sealed, so a department's download through another instance works.
async fn materials_uploaded_through_one_instance_download_through_another(b: Backend) {
    let extra: &[(&str, &str)] = match b {
        Backend::SqliteMemory => &[("materials_store", "database")],
        Backend::PostgresRedis => &[], // auto: the database
    };
    let s = with_dev_idp(b, extra).await;
    let (case_no, upload, photo) = lodge_with_photo(&s).await;
    let other = second_instance(&s, extra).await;
    let token = crate::exchange::token(&s, DEPT, &["cases:read", "materials:read"]).await;
    let r = download(&other, &token, &case_no, &upload).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), photo.as_slice());
    // sealed at rest: the stored bytes are not the photo
    let raw = Raw::open(s.app.resources()).await;
    let stored = raw.blob(&storage_key(&raw, &upload).await).await;
    assert!(stored.starts_with(b"OWM1"), "not sealed");
    assert!(!stored.windows(16).any(|w| w == &photo[..16]));
    assert!(
        !s.app.resources().tmp.path().join("files/objects").exists()
            || std::fs::read_dir(s.app.resources().tmp.path().join("files/objects"))
                .expect("dir")
                .next()
                .is_none(),
        "nothing on the instance's disk"
    );
    raw.close().await;
}

/// A local S3-compatible server (moto), killed when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn moto(bucket: &str) -> Moto {
    crate::harness::install_tls_provider();
    let server = crate::pyenv::tool("moto_server");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new(server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server");
    let m = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let start = Instant::now();
    loop {
        if let Ok(r) = client.put(format!("{}/{bucket}", m.url)).send().await {
            assert!(r.status().is_success(), "create bucket: {}", r.status());
            return m;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "moto_server did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `materials_store = "s3"`: materials in an S3-compatible store, sealed, reach every
/// instance.
async fn materials_in_an_s3_store_reach_every_instance(b: Backend) {
    let m = moto("onewindow-materials").await;
    let extra = [
        ("materials_store", "s3"),
        ("s3_bucket", "onewindow-materials"),
        ("s3_endpoint", m.url.as_str()),
        ("s3_allow_http", "true"),
        ("s3_access_key_id", "testing"),
        ("s3_secret_access_key", "testing"),
    ];
    let s = with_dev_idp(b, &extra).await;
    let (case_no, upload, photo) = lodge_with_photo(&s).await;
    let other = second_instance(&s, &extra).await;
    let token = crate::exchange::token(&s, DEPT, &["cases:read", "materials:read"]).await;
    let r = download(&other, &token, &case_no, &upload).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), photo.as_slice());
    // in the bucket, sealed
    let raw = Raw::open(s.app.resources()).await;
    let key = storage_key(&raw, &upload).await;
    // read the object back with the S3 API itself (signed, as any S3 client would)
    use object_store::ObjectStoreExt as _;
    let bucket = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("onewindow-materials")
        .with_endpoint(m.url.as_str())
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .build()
        .expect("the S3 client");
    let stored = bucket
        .get(&object_store::path::Path::from(key.as_str()))
        .await
        .expect("the object is in the bucket")
        .bytes()
        .await
        .expect("its bytes");
    assert!(stored.starts_with(b"OWM1"), "not sealed in the bucket");
    assert!(!stored.windows(16).any(|w| w == &photo[..16]));
    raw.close().await;
}

/// A sealed material altered in the store is refused (a problem, not the bytes, not a
/// 500), and one moved under another upload's key as well.
async fn a_tampered_material_is_refused(b: Backend) {
    let extra = [("materials_store", "database")];
    let s = with_dev_idp(b, &extra).await;
    let (case_no, upload, _) = lodge_with_photo(&s).await;
    let token = crate::exchange::token(&s, DEPT, &["cases:read", "materials:read"]).await;
    assert_eq!(
        download(&s.app, &token, &case_no, &upload).await.status(),
        200
    );
    let raw = Raw::open(s.app.resources()).await;
    let key = storage_key(&raw, &upload).await;
    let mut stored = raw.blob(&key).await;
    let n = stored.len() - 20;
    stored[n] ^= 0x01;
    raw.set_blob(&key, stored).await;
    let r = download(&s.app, &token, &case_no, &upload).await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.expect("problem");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("完整性"),
        "{body}"
    );
    raw.close().await;
}

/// `keys rotate-data` while two instances serve: every sealed column, the base library
/// and the materials are sealed under the new key, the old key is retired, and
/// everything still reads through both instances.
async fn rotate_data_reseals_and_everything_still_reads(b: Backend) {
    let extra = [("materials_store", "database")];
    let s = with_dev_idp(b, &extra).await;
    let (case_no, upload, photo) = lodge_with_photo(&s).await;
    let other = second_instance(&s, &extra).await;
    let raw = Raw::open(s.app.resources()).await;
    let forms_before = raw
        .pairs("SELECT case_no, CAST(form AS TEXT) FROM cases")
        .await;
    assert!(forms_before.iter().all(|(_, f)| !f.contains("\"k\"")));

    let mut lines = Vec::new();
    let report = rotate_data(
        &s.app.state,
        RotateOptions {
            settle: Duration::ZERO,
            batch: 2,
        },
        &mut |l| lines.push(l),
    )
    .await
    .expect("rotate");
    let out = lines.join("\n");
    assert!(!report.current.is_empty(), "{out}");
    assert_eq!(report.retired, vec![String::new()], "{out}");
    let count = |what: &str| {
        report
            .resealed
            .iter()
            .find(|(k, _)| k == what)
            .map(|(_, n)| *n)
            .unwrap_or_default()
    };
    assert!(count("cases.form") >= 1, "{out}");
    assert!(count("base_records.data") >= 10, "{out}");
    assert_eq!(count("materials"), 1, "{out}");
    assert!(out.contains("done: everything is sealed under"), "{out}");

    // at rest: every case form and base record names the new key; the material too
    let tag = format!("\"k\":\"{}\"", report.current);
    let tag_pg = format!("\"k\": \"{}\"", report.current);
    let has = |t: &str| t.contains(&tag) || t.contains(&tag_pg);
    for (no, form) in raw
        .pairs("SELECT case_no, CAST(form AS TEXT) FROM cases")
        .await
    {
        assert!(has(&form), "case {no}: {form}");
    }
    for (r, data) in raw
        .pairs("SELECT resource, CAST(data AS TEXT) FROM base_records")
        .await
    {
        assert!(has(&data), "base record of {r}");
    }
    let key = storage_key(&raw, &upload).await;
    let stored = raw.blob(&key).await;
    assert_eq!(&stored[4..5], &[report.current.len() as u8]);
    assert_eq!(
        &stored[5..5 + report.current.len()],
        report.current.as_bytes()
    );
    // the legacy key is gone from the database
    let secrets = raw.pairs("SELECT name, value FROM secrets").await;
    assert!(
        !secrets.iter().any(|(n, _)| n == "personal_data_key"),
        "{secrets:?}"
    );

    // the other instance reloads the keys (as it does every data_key_refresh_secs)
    onewindow::datakeys::refresh(other.state.store.as_ref(), &other.state.sealer)
        .await
        .expect("refresh");
    assert_eq!(other.state.sealer.current_kid(), report.current);
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (status, case) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    assert_eq!(status, 200, "{case}");
    let token = crate::exchange::token(&s, DEPT, &["cases:read", "materials:read"]).await;
    for app in [&s.app, &other] {
        let r = download(app, &token, &case_no, &upload).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.expect("bytes").as_ref(), photo.as_slice());
        let r = app
            .client
            .get(app.url(&format!("/api/dept/v1/cases/{case_no}")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("dept read");
        assert_eq!(r.status(), 200);
    }
    // the command line: a second rotation, with counts
    let res = s.app.resources();
    let mut cmd = crate::cli::onewindow();
    cmd.args(["keys", "rotate-data", "--settle-secs", "0"])
        .env("ONEWINDOW_DATA_DIR", res.tmp.path())
        .env("ONEWINDOW_DEFINITIONS_DIR", definitions_dir())
        .env("ONEWINDOW_MATERIALS_STORE", "database");
    if let Some(db) = &res.database_url {
        cmd.env("DATABASE_URL", db);
    }
    let out = cmd.output().expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("materials: 1 files, 1 re-sealed"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("retired: {}", report.current)),
        "{stdout}"
    );
    onewindow::datakeys::refresh(s.app.state.store.as_ref(), &s.app.state.sealer)
        .await
        .expect("refresh");
    let r = download(&s.app, &token, &case_no, &upload).await;
    assert_eq!(r.status(), 200);
    let (status, _) = citizen.get(&format!("/api/v1/cases/{case_no}")).await;
    assert_eq!(status, 200);
    raw.close().await;
}

/// `serve` without a key-encryption key refuses to start and says what to set; a
/// development instance generates one into its data directory.
#[test]
fn serve_without_a_kek_refuses_to_start() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = crate::cli::onewindow()
        .arg("serve")
        .env_remove("ONEWINDOW_KEY_ENCRYPTION_KEY")
        .env("ONEWINDOW_DEFINITIONS_DIR", definitions_dir())
        .env("ONEWINDOW_DATA_DIR", tmp.path().join("data"))
        .env("ONEWINDOW_LISTEN", "127.0.0.1:0")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no key-encryption key is configured")
            && stderr.contains("key_encryption_key_file")
            && stderr.contains("development_instance"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_development_instance_generates_its_kek() {
    let res = Resources::new(Backend::SqliteMemory).await;
    let mut settings = res.settings();
    settings.keys.key_encryption_key = None;
    settings.keys.development_instance = true;
    let state = onewindow::app::Application::build_state(settings.clone())
        .await
        .expect("a development instance starts");
    let index_key = state.index_key.clone();
    state.store.close().await;
    let file = res.tmp.path().join(onewindow::kek::DEV_KEK_FILE);
    assert!(file.exists());
    // and keeps it: the same keys on the next start
    let state = onewindow::app::Application::build_state(settings)
        .await
        .expect("again");
    assert_eq!(state.index_key, index_key);
    state.store.close().await;
}
