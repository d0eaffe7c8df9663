//! A real OpenID provider for the tests: the npm package `oidc-provider` (pinned in
//! `tests/oidc/package.json`) run by Node.js from `tests/oidc/provider.mjs`, on a loopback
//! port of its own, with the accounts listed in `tests/oidc/README.md`.
//!
//! [`OidcProvider::start`] installs the package on first use (`npm ci`), starts the
//! provider with the given clients and waits for its issuer; [`OidcProvider::login`] plays
//! the browser on the provider's own login and consent pages and hands back the redirect to
//! the relying party. Node.js and npm are required: without them the tests fail, they
//! never skip.

// Not every test uses every helper.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use url::Url;

/// How long the provider may take to print its issuer.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Most requests one `login` or `logout` makes before it gives up.
const MAX_STEPS: usize = 12;
/// What to do when Node.js is missing.
const NEED_NODE: &str = "install Node.js 20 or later with npm (Debian: apt-get install nodejs npm)";
/// Provider stderr lines kept for failure messages.
const STDERR_KEPT: usize = 100;

/// A running provider. The process is killed when this is dropped.
pub struct OidcProvider {
    /// `http://127.0.0.1:<port>`, exactly as in the provider's discovery document.
    pub issuer: String,
    // The provider stops when its stdin closes, so it is held open for its lifetime.
    _stdin: ChildStdin,
    _child: Child,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

/// `tests/oidc`.
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("oidc")
}

impl OidcProvider {
    /// Installs the provider's npm packages if `tests/oidc/node_modules` lacks them (once
    /// per test process, and under a file lock so parallel test processes do not race),
    /// starts `provider.mjs` with `clients` (a JSON array of `{client_id, client_secret,
    /// redirect_uris, post_logout_redirect_uris}`; any other client metadata passes
    /// through), and waits for its issuer. Panics if Node.js is missing or the provider
    /// does not start.
    pub async fn start(clients: serde_json::Value) -> OidcProvider {
        let fixture = match clients {
            serde_json::Value::Array(_) => serde_json::json!({ "clients": clients }),
            serde_json::Value::Object(ref o) if o.contains_key("clients") => clients,
            other => panic!("OidcProvider::start takes a JSON array of clients, got {other}"),
        };
        if let Err(e) = tokio::task::spawn_blocking(ensure_installed)
            .await
            .expect("npm install task")
        {
            panic!("{e}");
        }

        let dir = fixture_dir();
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .current_dir(&dir)
            .env("OIDC_FIXTURE", fixture.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `node` for the OIDC fixture ({e}): {NEED_NODE}")
            });
        let stdin = child.stdin.take().expect("provider stdin");
        let stdout = child.stdout.take().expect("provider stdout");
        let stderr = child.stderr.take().expect("provider stderr");

        // Forward the provider's stderr to the test's output and keep its tail.
        let kept: Arc<Mutex<VecDeque<String>>> = Arc::default();
        let kept2 = kept.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("oidc-provider: {line}");
                let mut k = kept2.lock().expect("stderr lock");
                if k.len() == STDERR_KEPT {
                    k.pop_front();
                }
                k.push_back(line);
            }
        });

        let mut lines = BufReader::new(stdout).lines();
        let waited = tokio::time::timeout(START_TIMEOUT, async {
            let mut other = Vec::new();
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                            && let Some(issuer) = v.get("issuer").and_then(|i| i.as_str())
                        {
                            return Ok(issuer.to_owned());
                        }
                        other.push(line);
                    }
                    Ok(None) => return Err(format!("it exited; stdout: {other:?}")),
                    Err(e) => return Err(format!("reading its stdout: {e}")),
                }
            }
        })
        .await;
        let issuer = match waited {
            Ok(Ok(issuer)) => issuer,
            Ok(Err(why)) => {
                let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                // Let the stderr task catch up.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "the OIDC provider fixture did not start: {why}; exit: {status:?}\nstderr:\n{}",
                    tail(&kept)
                );
            }
            Err(_) => panic!(
                "the OIDC provider fixture printed no issuer within {START_TIMEOUT:?}\nstderr:\n{}",
                tail(&kept)
            ),
        };
        // Nothing else should come on stdout; drain it anyway so the pipe never fills.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("oidc-provider (stdout): {line}");
            }
        });

        OidcProvider {
            issuer,
            _stdin: stdin,
            _child: child,
            stderr: kept,
        }
    }

    /// Signs `login` in, starting from `authorize_url` (where the gateway sent the
    /// browser): a fresh cookie jar, redirects followed by hand, the provider's login form
    /// (login name, any password) and consent form submitted, until the provider redirects
    /// outside itself. Returns that redirect (the relying party's `redirect_uri` with
    /// `code`, `state` and `iss`, or with `error` if the provider refused the request)
    /// without requesting it. Panics if the provider rejects the login name or answers
    /// with an error page.
    pub async fn login(&self, authorize_url: &str, login: &str) -> String {
        match self.try_login(authorize_url, login).await {
            Ok(url) => url,
            Err(e) => panic!(
                "OIDC login as {login:?} from {authorize_url} failed: {e:#}\nprovider stderr:\n{}",
                tail(&self.stderr)
            ),
        }
    }

    /// [`login`](Self::login), with the failure as an error: an unknown login name gives
    /// an error saying the provider showed its login form again.
    pub async fn try_login(&self, authorize_url: &str, login: &str) -> anyhow::Result<String> {
        self.drive(authorize_url, Some(login)).await
    }

    /// Follows an RP-initiated logout from `end_session_url` (where the gateway sent the
    /// browser, with `id_token_hint`, `post_logout_redirect_uri`, …): confirms the
    /// provider's "sign out?" form and returns the redirect outside the provider (the
    /// `post_logout_redirect_uri` with `state`) without requesting it, or the provider's
    /// own "signed out" page URL when no `post_logout_redirect_uri` was given. Uses a fresh
    /// cookie jar, like [`login`](Self::login).
    pub async fn logout(&self, end_session_url: &str) -> String {
        match self.drive(end_session_url, None).await {
            Ok(url) => url,
            Err(e) => panic!(
                "OIDC logout from {end_session_url} failed: {e:#}\nprovider stderr:\n{}",
                tail(&self.stderr)
            ),
        }
    }

    /// The provider's last stderr lines.
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr)
    }

    /// Plays the browser from `start`: follows redirects inside the provider, submits the
    /// login (when `login` is given), consent and logout-confirmation forms, and stops at
    /// the first redirect outside the provider.
    async fn drive(&self, start: &str, login: Option<&str>) -> anyhow::Result<String> {
        let issuer = Url::parse(&self.issuer).context("issuer")?;
        let mut url = Url::parse(start).with_context(|| format!("bad URL {start:?}"))?;
        if url.origin() != issuer.origin() {
            bail!("{url} is not on the provider {issuer}");
        }
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .context("http client")?;

        let mut post: Option<Vec<(String, String)>> = None;
        let (mut logins, mut consents, mut confirms) = (0, 0, 0);
        for _ in 0..MAX_STEPS {
            let method = if post.is_some() { "POST" } else { "GET" };
            let req = match post.take() {
                Some(fields) => client.post(url.clone()).form(&fields),
                None => client.get(url.clone()),
            };
            let resp = req
                .send()
                .await
                .with_context(|| format!("{method} {url}"))?;
            let status = resp.status();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .ok_or_else(|| anyhow!("{method} {url} answered {status} without Location"))?
                    .to_str()
                    .context("Location header")?;
                let next = url
                    .join(location)
                    .with_context(|| format!("bad Location {location:?}"))?;
                if next.origin() != issuer.origin() {
                    return Ok(next.into());
                }
                url = next;
                continue;
            }
            let body = resp.text().await.context("response body")?;
            if !status.is_success() {
                bail!("{method} {url} answered {status}: {}", page_text(&body));
            }
            let Some(form) = Form::parse(&body) else {
                // A page with nothing to submit: the end (the "signed out" page).
                if login.is_none() {
                    return Ok(url.into());
                }
                bail!(
                    "{method} {url} answered a page without a form: {}",
                    page_text(&body)
                );
            };
            let action = url
                .join(&form.action)
                .with_context(|| format!("bad form action {:?}", form.action))?;
            if action.origin() != issuer.origin() {
                bail!(
                    "the provider answered a form posting to {action} (response_mode=form_post?); \
                     the fixture follows only redirects out of the provider"
                );
            }
            let mut fields = form.fields.clone();
            match form.value("prompt") {
                Some("login") => {
                    let Some(name) = login else {
                        bail!("the provider asked for a login at {url}");
                    };
                    if logins > 0 {
                        bail!(
                            "the provider rejected the login {name:?}: it showed its login form again"
                        );
                    }
                    logins += 1;
                    set(&mut fields, "login", name);
                    set(&mut fields, "password", "fixture-password");
                }
                Some("consent") => {
                    consents += 1;
                    if consents > 2 {
                        bail!("the provider kept asking for consent");
                    }
                }
                None if form.value("xsrf").is_some() => {
                    // RP-initiated logout: "Yes, sign me out".
                    confirms += 1;
                    if confirms > 1 {
                        bail!("the provider kept asking to confirm the logout");
                    }
                    set(&mut fields, "logout", "yes");
                }
                other => bail!(
                    "unexpected form at {url} (prompt {other:?}): {}",
                    page_text(&body)
                ),
            }
            post = Some(fields);
            url = action;
        }
        bail!("no redirect out of the provider after {MAX_STEPS} requests (last: {url})")
    }
}

fn set(fields: &mut Vec<(String, String)>, name: &str, value: &str) {
    fields.retain(|(n, _)| n != name);
    fields.push((name.to_owned(), value.to_owned()));
}

fn tail(kept: &Mutex<VecDeque<String>>) -> String {
    let k = kept.lock().expect("stderr lock");
    k.iter().cloned().collect::<Vec<_>>().join("\n")
}

/// Installs `tests/oidc/node_modules` with `npm ci` unless the pinned `oidc-provider` is
/// already there. Once per process (a failure is remembered, not retried); a file lock
/// keeps parallel test processes apart.
fn ensure_installed() -> Result<(), String> {
    ensure_npm_fixture(&fixture_dir(), "oidc-provider")
}

/// Installs an npm fixture under `tests/` (`npm ci` in `dir`) unless its `node_modules`
/// already holds the version of `package` that `package.json` pins: once per test process
/// and fixture, and under a file lock so parallel test processes do not race. Used by the
/// OIDC provider (`tests/oidc`), the browser test (`tests/browser`) and the journeys
/// (`tests/e2e`).
pub fn ensure_npm_fixture(dir: &Path, package: &str) -> Result<(), String> {
    static DONE: OnceLock<Mutex<std::collections::HashMap<PathBuf, Result<(), String>>>> =
        OnceLock::new();
    let mut done = DONE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    done.entry(dir.to_path_buf())
        .or_insert_with(|| install(dir, package))
        .clone()
}

fn install(dir: &Path, package: &str) -> Result<(), String> {
    if installed(dir, package) {
        return Ok(());
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lock_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-fixture-npm.lock"));
    let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("lock {}: {e}", lock_path.display()))?;
    // Another process may have installed it while this one waited.
    if installed(dir, package) {
        return Ok(());
    }
    let out = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "cannot run `npm ci` in {} for the {name} fixture ({e}): {NEED_NODE}",
                dir.display()
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "`npm ci` in {} failed ({}):\n{}\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if !installed(dir, package) {
        return Err(format!(
            "`npm ci` in {} did not install the pinned {package}",
            dir.display()
        ));
    }
    Ok(())
    // The lock is released when `lock` is dropped.
}

/// Whether `node_modules` holds the `package` version `package.json` pins.
fn installed(dir: &Path, package: &str) -> bool {
    let read = |p: PathBuf| -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(p).ok()?).ok()
    };
    let wanted = read(dir.join("package.json"))
        .and_then(|p| p["dependencies"][package].as_str().map(str::to_owned));
    let have = read(dir.join("node_modules").join(package).join("package.json"))
        .and_then(|p| p["version"].as_str().map(str::to_owned));
    wanted.is_some() && wanted == have
}

/// The first `<form>` of a page: its action and its inputs (in order).
struct Form {
    action: String,
    fields: Vec<(String, String)>,
}

impl Form {
    fn parse(html: &str) -> Option<Form> {
        let start = html.find("<form")?;
        let end = html[start..]
            .find("</form>")
            .map_or(html.len(), |e| start + e);
        let form = &html[start..end];
        let action = attrs(tag_body(form)?)
            .into_iter()
            .find_map(|(k, v)| (k == "action").then_some(v))?;
        let mut fields = Vec::new();
        let mut rest = form;
        while let Some(i) = rest.find("<input") {
            rest = &rest[i..];
            let body = tag_body(rest)?;
            let a = attrs(body);
            let get = |name: &str| a.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            if let Some(name) = get("name") {
                fields.push((name, get("value").unwrap_or_default()));
            }
            rest = &rest[body.len()..];
        }
        Some(Form { action, fields })
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `<tag a="b" c>…` → `tag a="b" c` (up to the first `>` outside quotes).
fn tag_body(s: &str) -> Option<&str> {
    let s = s.strip_prefix('<')?;
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(&s[..i]),
            _ => {}
        }
    }
    None
}

/// The attributes of a tag body, names lowercased, values unescaped.
fn attrs(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = body
        .trim_start_matches(|c: char| c.is_ascii_alphanumeric())
        .trim_start();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let mut value = String::new();
        if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start();
            let (v, r) = match r.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let r = &r[1..];
                    let e = r.find(q).unwrap_or(r.len());
                    (&r[..e], r.get(e + 1..).unwrap_or(""))
                }
                _ => {
                    let e = r.find(char::is_whitespace).unwrap_or(r.len());
                    (&r[..e], &r[e..])
                }
            };
            value = unescape(v);
            rest = r;
        }
        if !name.is_empty() {
            out.push((name, value));
        }
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest.find(';').filter(|&j| j <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e => e
                .strip_prefix("#x")
                .or_else(|| e.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A page's text without its tags, squeezed, for error messages.
fn page_text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = unescape(&text.split_whitespace().collect::<Vec<_>>().join(" "));
    if text.chars().count() > 600 {
        format!("{}…", text.chars().take(600).collect::<String>())
    } else {
        text
    }
}
