//! Load benchmark: the gateway in this process on 127.0.0.1, driven over HTTP by a load
//! generator in the same process.
//!
//! ```text
//! cargo run --release --example bench -- [--clients 50] [--seconds 10]
//! ```
//!
//! The store and cache come from the environment like the server's (`DATABASE_URL`,
//! `REDIS_URL`, `ONEWINDOW_*`); without them it is SQLite in a temporary directory and
//! the in-memory cache. On PostgreSQL the benchmark writes accounts and cases into the
//! named database: point it at a throwaway one. Without `ONEWINDOW_CACHE_PREFIX` the cache
//! keys get a fresh prefix, purged at the end.
//!
//! Phases, each `--seconds` long, with `--clients` concurrent clients, each its own
//! citizen with its own session, over keep-alive connections:
//! 1. submissions: `POST /api/v1/cases` with a fresh `Idempotency-Key` each time;
//! 2. status reads: `GET /api/v1/cases/{case_no}` of the client's own cases from phase 1;
//! 3. catalogue reads: `GET /api/v1/services/{code}`.
//!
//! Per phase it prints requests, errors by status, throughput, latency percentiles (every
//! answered request, errors included), where the CPU went (threads of this process by
//! role, PostgreSQL and Redis processes, the rest of the machine) and the peak RSS. It
//! only measures: nothing is asserted, and the budgets of DESIGN.md are printed beside
//! the figures for reading.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use chrono::Utc;
use clap::Parser;
use figment::providers::Serialized;
use onewindow::app::{AppState, Application};
use onewindow::auth::identity::{AccountKind, Audience, Identity, Role};
use onewindow::auth::session::{SESSION_COOKIE, Session, random_token};
use onewindow::config::Settings;
use onewindow::domain::ids::ResidentId;
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE};
use serde_json::{Value, json};

/// 城乡居民基本医疗保险参保登记: persons apply online, and its one required material (the
/// identity card) can be substituted by the e-licence, so no uploads are needed.
const SERVICE: &str = "11150700MB1530007G-GG-0001";

/// Budgets from DESIGN.md, "Budgets the design must keep".
const BUDGET_SUBMIT_POSTGRES: f64 = 3_000.0;
const BUDGET_SUBMIT_SQLITE: f64 = 2_000.0;
const BUDGET_SUBMIT_P99_MS: f64 = 25.0;
const BUDGET_STATUS: f64 = 10_000.0;
const BUDGET_RSS_MB: f64 = 64.0;

/// Linux reports /proc/stat in USER_HZ, 100 on every mainstream architecture.
const USER_HZ: f64 = 100.0;

#[derive(Debug, Parser)]
#[command(about = "Load benchmark of the onewindow gateway (in-process, over HTTP)")]
struct Args {
    /// Concurrent clients, each a citizen with its own session.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Length of each phase in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// One simulated citizen.
struct User {
    idx: usize,
    cookie: String,
    csrf: String,
    body: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Submit,
    Status,
    Catalogue,
}

impl Kind {
    fn expected(self) -> u16 {
        match self {
            Kind::Submit => 201,
            Kind::Status | Kind::Catalogue => 200,
        }
    }

    /// The method and route template the gateway's metrics label it with.
    fn route(self) -> (&'static str, &'static str) {
        match self {
            Kind::Submit => ("POST", "/api/v1/cases"),
            Kind::Status => ("GET", "/api/v1/cases/{case_no}"),
            Kind::Catalogue => ("GET", "/api/v1/services/{code}"),
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Submit => "phase 1: submissions (POST /api/v1/cases)",
            Kind::Status => "phase 2: status reads (GET /api/v1/cases/{case_no}, own cases)",
            Kind::Catalogue => "phase 3: catalogue reads (GET /api/v1/services/{code})",
        }
    }
}

/// What the clients of a phase saw.
#[derive(Default)]
struct Tally {
    /// Latency of every answered request, in microseconds.
    lat_us: Vec<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    samples: BTreeMap<String, String>,
    case_nos: Vec<String>,
}

impl Tally {
    fn error(&mut self, label: String, sample: impl FnOnce() -> String) {
        if !self.samples.contains_key(&label) {
            self.samples.insert(label.clone(), sample());
        }
        *self.errors.entry(label).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.lat_us.extend(other.lat_us);
        self.ok += other.ok;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.samples {
            self.samples.entry(k).or_insert(v);
        }
        self.case_nos.extend(other.case_nos);
    }
}

/// The figures of one phase, for the summary.
struct PhaseResult {
    ok_per_sec: f64,
    p99_ms: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.clients == 0 || args.seconds == 0 {
        return Err(anyhow!("--clients and --seconds must be at least 1"));
    }
    let gateway_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gw-worker")
        .build()
        .context("gateway runtime")?;
    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("loadgen")
        .build()
        .context("load generator runtime")?;

    let tmp = tempfile::tempdir().context("temporary directory")?;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let own_prefix = std::env::var_os("ONEWINDOW_CACHE_PREFIX").is_none();
    let prefix = own_prefix.then(|| format!("onewindow-bench-{run_id}:"));

    // The gateway, as `serve` wires it, on a port of its own.
    let (state, addr, stop, server) = gateway_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind 127.0.0.1:0")?;
        let addr = listener.local_addr().context("local address")?;
        let settings = settings(addr, tmp.path(), prefix.as_deref())?;
        onewindow::telemetry::init(&settings);
        let app = Application::build_with_listener(settings, listener)
            .await
            .context("the gateway does not start")?;
        let state = app.state();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        anyhow::Ok((state, addr, stop, server))
    })?;

    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!("onewindow benchmark");
    println!(
        "  gateway      http://{addr}, in this process (tokio multi-thread runtime), delivery worker off"
    );
    println!(
        "  store        {} ({}), pool of {} connections",
        state.store.backend(),
        onewindow::config::redact_url(&state.settings.database_url()),
        state.settings.database.database_max_connections
    );
    println!(
        "  cache        {} (prefix {:?}{})",
        state.cache.backend(),
        state.settings.cache.cache_prefix,
        if own_prefix {
            ", purged at the end"
        } else {
            ", left in place"
        }
    );
    println!(
        "  log level    {} (ONEWINDOW_LOG_LEVEL or RUST_LOG change it)",
        std::env::var("RUST_LOG").unwrap_or_else(|_| state.settings.log.log_level.clone())
    );
    println!(
        "  load         {} clients, {} s per phase, on a second tokio runtime in the same process; {cores} cores",
        args.clients, args.seconds
    );

    let result = gateway_rt
        .block_on(make_users(&state, args.clients, &run_id))
        .and_then(|users| {
            load_rt.block_on(async {
                onewindow::install_tls_provider();
                let http = reqwest::Client::builder()
                    .no_proxy()
                    .pool_max_idle_per_host(args.clients)
                    .tcp_nodelay(true)
                    .timeout(Duration::from_secs(60))
                    .build()
                    .context("HTTP client")?;
                run(&args, &state, &http, users, addr, &run_id).await
            })
        });

    // Stop the gateway whatever happened, and clean up after ourselves.
    let _ = stop.send(());
    gateway_rt.block_on(async {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("the gateway stopped with an error: {e:#}"),
            Err(e) => eprintln!("the gateway task failed: {e}"),
        }
        if own_prefix && let Err(e) = state.cache.purge().await {
            eprintln!("could not purge the benchmark's cache keys: {e}");
        }
    });
    drop(load_rt);
    drop(gateway_rt);
    result
}

/// The server's settings (defaults, `DATABASE_URL`/`REDIS_URL`, `ONEWINDOW_*`) with what
/// the benchmark needs on top.
fn settings(
    addr: std::net::SocketAddr,
    data_dir: &Path,
    prefix: Option<&str>,
) -> anyhow::Result<Settings> {
    let mut f = Settings::figment(None)
        .merge(Serialized::default("listen", addr.to_string()))
        .merge(Serialized::default("public_url", format!("http://{addr}")))
        .merge(Serialized::default("data_dir", data_dir))
        .merge(Serialized::default(
            "definitions_dir",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("service-definitions"),
        ))
        .merge(Serialized::default("worker_in_serve", false))
        .merge(Serialized::default("shutdown_grace_secs", 5));
    if std::env::var_os("ONEWINDOW_LOG_LEVEL").is_none() {
        // Per-request info lines would measure the terminal.
        f = f.merge(Serialized::default("log_level", "warn"));
    }
    if let Some(p) = prefix {
        f = f.merge(Serialized::default("cache_prefix", p));
    }
    Ok(Settings::from_figment(f)?)
}

/// A valid resident ID number (GB 11643) for the `i`th citizen: 海拉尔区, born from
/// 1980-01-01 on, sequence 001–999.
fn resident_id(i: usize) -> anyhow::Result<ResidentId> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let birth = chrono::NaiveDate::from_ymd_opt(1980, 1, 1).context("date")?
        + chrono::Duration::days(i64::try_from(i / 999).unwrap_or(0));
    let first17 = format!("150702{}{:03}", birth.format("%Y%m%d"), i % 999 + 1);
    let sum: u32 = first17
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
        .sum();
    let check = char::from(CHECK[(sum % 11) as usize]);
    ResidentId::parse(&format!("{first17}{check}"))
        .map_err(|e| anyhow!("generated resident ID for client {i}: {e}"))
}

/// Accounts, sessions and submission bodies, one per client.
async fn make_users(state: &AppState, n: usize, run_id: &str) -> anyhow::Result<Vec<Arc<User>>> {
    let mut users = Vec::with_capacity(n);
    let mut licences = Vec::with_capacity(n);
    for idx in 0..n {
        let id = resident_id(idx)?;
        let name = format!("压测居民{idx}");
        let phone = format!("138{:08}", idx % 100_000_000);
        let identity = Identity {
            issuer: "https://bench.invalid/".into(),
            subject: format!("bench-{run_id}-{idx}"),
            kind: AccountKind::Person,
            name: name.clone(),
            id_number: Some(id.clone()),
            phone: Some(phone.clone()),
            email: None,
            assurance: 3,
            enterprise: None,
            roles: vec![Role::Citizen],
        };
        let account_id = state
            .store
            .upsert_account(&identity, Utc::now())
            .await
            .context("create an account")?;
        let csrf = random_token();
        let session_id = state
            .sessions
            .create(Session {
                account_id,
                kind: AccountKind::Person,
                name: name.clone(),
                assurance: 3,
                enterprise: None,
                roles: vec![Role::Citizen],
                audience: Audience::Public,
                csrf: csrf.clone(),
                created_at: 0,
                last_seen: 0,
                id_token: None,
            })
            .await
            .context("create a session")?;
        // Every resident's ID card is in the e-licence library, so it stands in for the
        // upload (the submission checks it there).
        licences.push(onewindow::store::BaseRecord {
            resource: "elicence".into(),
            subject: id.expose().to_owned(),
            record: "resident_id_card".into(),
            data: json!({
                "licence_no": id.expose(),
                "issuer": "呼伦贝尔市公安局海拉尔区分局",
                "valid_until": "长期",
                "holder_name": name,
            }),
            updated_at: Utc::now(),
        });
        // The 17th digit is odd for men.
        let gender = if id.expose().as_bytes()[16] % 2 == 1 {
            "1"
        } else {
            "2"
        };
        let body = json!({
            "service_code": SERVICE,
            "values": {
                "insured_name": name,
                "insured_id_number": id.expose(),
                "gender": gender,
                "phone": phone,
                "enrolment_basis": "hukou",
                "residence_address": "内蒙古自治区呼伦贝尔市海拉尔区胜利大街1号",
                "person_category": "adult",
            },
            "materials": [{ "material": "id_card", "substitute": true }],
        });
        users.push(Arc::new(User {
            idx,
            cookie: format!("{SESSION_COOKIE}={session_id}"),
            csrf,
            body: serde_json::to_vec(&body).context("body")?,
        }));
    }
    state
        .providers
        .base
        .put(&licences)
        .await
        .context("store the clients' e-licences")?;
    Ok(users)
}

/// Checks that each kind of request succeeds once, then runs the three phases.
async fn run(
    args: &Args,
    state: &AppState,
    http: &reqwest::Client,
    users: Vec<Arc<User>>,
    addr: std::net::SocketAddr,
    run_id: &str,
) -> anyhow::Result<()> {
    let base = Arc::new(format!("http://{addr}"));
    let first = users.first().context("no clients")?;
    println!(
        "  request      {} bytes of JSON per submission (service {SERVICE}, its ID card substituted)",
        first.body.len()
    );

    // One of each, so a broken request is reported instead of measured.
    let mut first_case = None;
    for kind in [Kind::Submit, Kind::Status, Kind::Catalogue] {
        let cases: Vec<String> = first_case.iter().cloned().collect();
        let (status, body) = request(http, &base, first, kind, &cases, run_id, u64::MAX).await?;
        if status != kind.expected() {
            return Err(anyhow!(
                "the first request of {} answered {status}, not {}:\n{}",
                kind.title(),
                kind.expected(),
                String::from_utf8_lossy(&body)
            ));
        }
        if kind == Kind::Submit {
            first_case = Some(case_no(&body).context("the first submission has no case_no")?);
        }
    }
    println!(
        "  checked      one submission, one status read and one catalogue read answer as expected"
    );
    println!(
        "  memory       VmRSS {} before the load",
        mem_line("VmRSS").unwrap_or_else(|| "n/a".into())
    );

    let mut own_cases: Vec<Vec<String>> = vec![Vec::new(); users.len()];
    if let (Some(c), Some(list)) = (first_case, own_cases.first_mut()) {
        list.push(c);
    }
    let mut results = Vec::new();
    for kind in [Kind::Submit, Kind::Status, Kind::Catalogue] {
        let (result, tally) = phase(kind, args, http, &base, &users, &own_cases, run_id).await?;
        if kind == Kind::Submit {
            for (idx, no) in tally {
                if let Some(list) = own_cases.get_mut(idx) {
                    list.extend(no);
                }
            }
        }
        results.push(result);
    }

    let peak = mem_kb("VmHWM").map(|kb| kb as f64 / 1024.0);
    let pg = state.store.backend() == "postgres";
    let submit_budget = if pg {
        BUDGET_SUBMIT_POSTGRES
    } else {
        BUDGET_SUBMIT_SQLITE
    };
    println!();
    println!("summary (budgets from DESIGN.md beside the figures; nothing is asserted)");
    if let [submit, status, catalogue] = results.as_slice() {
        println!(
            "  submissions      {:>9.0}/s  p99 {:>6.1} ms   budget ≥ {submit_budget:.0}/s on {}, p99 < {BUDGET_SUBMIT_P99_MS} ms at 50 clients",
            submit.ok_per_sec,
            submit.p99_ms,
            state.store.backend()
        );
        println!(
            "  status reads     {:>9.0}/s  p99 {:>6.1} ms   budget ≥ {BUDGET_STATUS:.0}/s",
            status.ok_per_sec, status.p99_ms
        );
        println!(
            "  catalogue reads  {:>9.0}/s  p99 {:>6.1} ms   (no budget)",
            catalogue.ok_per_sec, catalogue.p99_ms
        );
    }
    match peak {
        Some(mb) => println!(
            "  peak RSS         {mb:>9.1} MB                budget < {BUDGET_RSS_MB:.0} MB (the figure includes the load generator and its recorded latencies)"
        ),
        None => println!("  peak RSS         n/a (no /proc/self/status)"),
    }
    Ok(())
}

/// Runs one phase and prints its figures; hands back the case numbers each client made.
async fn phase(
    kind: Kind,
    args: &Args,
    http: &reqwest::Client,
    base: &Arc<String>,
    users: &[Arc<User>],
    own_cases: &[Vec<String>],
    run_id: &str,
) -> anyhow::Result<(PhaseResult, Vec<(usize, Vec<String>)>)> {
    let before = Snapshot::take();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut handles = Vec::with_capacity(users.len());
    for user in users {
        let http = http.clone();
        let base = base.clone();
        let user = user.clone();
        let cases = own_cases.get(user.idx).cloned().unwrap_or_default();
        let run_id = run_id.to_owned();
        handles.push(tokio::spawn(async move {
            let idx = user.idx;
            (
                idx,
                drive(kind, &http, &base, &user, &cases, &run_id, deadline).await,
            )
        }));
    }
    let mut total = Tally::default();
    let mut made = Vec::new();
    for h in handles {
        let (idx, mut t) = h.await.context("a client task failed")?;
        made.push((idx, std::mem::take(&mut t.case_nos)));
        total.merge(t);
    }
    let wall = started.elapsed().as_secs_f64();
    let after = Snapshot::take();

    let answered = total.lat_us.len() as u64;
    let transport: u64 = total
        .errors
        .iter()
        .filter(|(k, _)| !k.starts_with("HTTP"))
        .map(|(_, v)| v)
        .sum();
    let requests = answered + transport;
    let mut lat = std::mem::take(&mut total.lat_us);
    lat.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    let mean = if lat.is_empty() {
        0.0
    } else {
        ms(lat.iter().sum::<u64>()) / lat.len() as f64
    };
    let ok_per_sec = total.ok as f64 / wall;

    println!();
    println!("{} — {} clients, {wall:.2} s", kind.title(), args.clients);
    println!(
        "  requests     {requests} ({} answered {})",
        total.ok,
        kind.expected()
    );
    if total.errors.is_empty() {
        println!("  errors       none");
    } else {
        let list: Vec<String> = total
            .errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        println!("  errors       {}", list.join(", "));
        for (k, sample) in &total.samples {
            let short: String = sample.chars().take(400).collect();
            println!("    first {k}: {short}");
        }
    }
    println!(
        "  throughput   {:.0} requests/s, {ok_per_sec:.0} successful/s",
        requests as f64 / wall
    );
    println!(
        "  latency      mean {mean:.2}  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2} ms (client-side, send to last byte)",
        ms(percentile(&lat, 50.0)),
        ms(percentile(&lat, 90.0)),
        ms(percentile(&lat, 99.0)),
        ms(lat.last().copied().unwrap_or(0))
    );
    match after.server_mean_ms(&before, kind.route()) {
        Some((mean, n)) => println!(
            "  gateway      mean {mean:.2} ms per request inside the gateway ({n:.0} requests in its http_request_duration_seconds: the handler, not HTTP parsing, the CSRF guard or waiting for a thread)"
        ),
        None => println!("  gateway      no timings in its http_request_duration_seconds"),
    }
    after.print_since(&before, wall, total.ok);
    println!(
        "  memory       peak RSS (VmHWM) {} so far, VmRSS {} now — the whole process: gateway, load generator and the recorded latencies",
        mem_line("VmHWM").unwrap_or_else(|| "n/a".into()),
        mem_line("VmRSS").unwrap_or_else(|| "n/a".into())
    );
    Ok((
        PhaseResult {
            ok_per_sec,
            p99_ms: ms(percentile(&lat, 99.0)),
        },
        made,
    ))
}

/// One client's loop until the deadline.
async fn drive(
    kind: Kind,
    http: &reqwest::Client,
    base: &str,
    user: &User,
    cases: &[String],
    run_id: &str,
    deadline: Instant,
) -> Tally {
    let mut t = Tally::default();
    if kind == Kind::Status && cases.is_empty() {
        t.error("no case of its own to read".into(), || {
            format!("client {} lodged nothing in phase 1", user.idx)
        });
        return t;
    }
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        n += 1;
        let started = Instant::now();
        let answer = request(http, base, user, kind, cases, run_id, n).await;
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match answer {
            Ok((status, body)) => {
                t.lat_us.push(us);
                if status == kind.expected() {
                    t.ok += 1;
                    if kind == Kind::Submit
                        && let Some(no) = case_no(&body)
                    {
                        t.case_nos.push(no);
                    }
                } else {
                    t.error(format!("HTTP {status}"), || {
                        String::from_utf8_lossy(&body).into_owned()
                    });
                }
            }
            Err(e) => {
                let label = match e.downcast_ref::<reqwest::Error>() {
                    Some(r) if r.is_timeout() => "timeout",
                    Some(r) if r.is_connect() => "connect error",
                    _ => "transport error",
                };
                t.error(label.into(), || format!("{e:#}"));
            }
        }
    }
    t
}

/// Sends one request of a kind and reads the whole answer.
async fn request(
    http: &reqwest::Client,
    base: &str,
    user: &User,
    kind: Kind,
    cases: &[String],
    run_id: &str,
    n: u64,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let req = match kind {
        Kind::Submit => http
            .post(format!("{base}/api/v1/cases"))
            .header(COOKIE, &user.cookie)
            .header("x-csrf-token", &user.csrf)
            .header(CONTENT_TYPE, "application/json")
            .header("idempotency-key", format!("{run_id}-{}-{n}", user.idx))
            .body(user.body.clone()),
        Kind::Status => {
            let len = u64::try_from(cases.len()).unwrap_or(1).max(1);
            let i = usize::try_from(n % len).unwrap_or(0);
            let no = cases.get(i).context("no case to read")?;
            http.get(format!("{base}/api/v1/cases/{no}"))
                .header(COOKIE, &user.cookie)
        }
        Kind::Catalogue => http.get(format!("{base}/api/v1/services/{SERVICE}")),
    };
    let resp = req.header(ACCEPT, "application/json").send().await?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await?;
    Ok((status, body.to_vec()))
}

fn case_no(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("case_no")?.as_str().map(str::to_owned)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A `Vm*` line of /proc/self/status in kB.
fn mem_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn mem_line(key: &str) -> Option<String> {
    mem_kb(key).map(|kb| format!("{:.1} MB", kb as f64 / 1024.0))
}

/// Counters read before and after a phase: CPU time of the threads of this process (by
/// tid), of the PostgreSQL and Redis processes on this host (by pid and tid) and of the
/// machine; this process's storage writes; the gateway's own request timings.
struct Snapshot {
    /// tid → (role, run ns, runnable-but-waiting ns).
    own: HashMap<String, (&'static str, u64, u64)>,
    /// "pid/tid" → (process, run ns).
    external: HashMap<String, (&'static str, u64)>,
    /// (busy, iowait, total) jiffies of all cores.
    machine: Option<(u64, u64, u64)>,
    /// Bytes this process caused to be written to storage (/proc/self/io write_bytes).
    written: Option<u64>,
    /// (method, route) → (sum of seconds, count) of `http_request_duration_seconds`.
    server: HashMap<(String, String), (f64, f64)>,
}

const ROLES: [&str; 4] = [
    "gateway: tokio threads",
    "gateway: SQLite threads",
    "load generator",
    "rest of this process",
];
const EXTERNAL: [&str; 2] = ["postgres", "redis-server"];

fn role_of(comm: &str) -> &'static str {
    if comm.starts_with("gw-worker") {
        ROLES[0]
    } else if comm.starts_with("sqlx-sqlite") {
        ROLES[1]
    } else if comm.starts_with("loadgen") {
        ROLES[2]
    } else {
        ROLES[3]
    }
}

/// `http_request_duration_seconds` sums and counts by (method, route), all statuses.
fn server_timings() -> HashMap<(String, String), (f64, f64)> {
    let text = onewindow::http::install_recorder().render();
    let label = |labels: &str, name: &str| -> Option<String> {
        let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
        let len = labels[start..].find('"')?;
        Some(labels[start..start + len].to_owned())
    };
    let mut out: HashMap<(String, String), (f64, f64)> = HashMap::new();
    for line in text.lines() {
        let (is_sum, rest) =
            if let Some(r) = line.strip_prefix("http_request_duration_seconds_sum{") {
                (true, r)
            } else if let Some(r) = line.strip_prefix("http_request_duration_seconds_count{") {
                (false, r)
            } else {
                continue;
            };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let (Some(method), Some(route), Ok(v)) = (
            label(labels, "method"),
            label(labels, "route"),
            value.trim().parse::<f64>(),
        ) else {
            continue;
        };
        let e = out.entry((method, route)).or_default();
        if is_sum {
            e.0 += v;
        } else {
            e.1 += v;
        }
    }
    out
}

/// (run ns, wait ns) from a schedstat file.
fn schedstat(path: &Path) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(path).ok()?;
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().ok());
    Some((it.next()??, it.next()??))
}

fn tasks(dir: &Path) -> Vec<(String, String, u64, u64)> {
    let Ok(entries) = std::fs::read_dir(dir.join("task")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            let comm = std::fs::read_to_string(p.join("comm")).ok()?;
            let (run, wait) = schedstat(&p.join("schedstat"))?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                comm.trim().to_owned(),
                run,
                wait,
            ))
        })
        .collect()
}

impl Snapshot {
    fn take() -> Snapshot {
        let own = tasks(Path::new("/proc/self"))
            .into_iter()
            .map(|(tid, comm, run, wait)| (tid, (role_of(&comm), run, wait)))
            .collect();
        let mut external = HashMap::new();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for e in procs.flatten() {
                let pid = e.file_name().to_string_lossy().into_owned();
                if !pid.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) else {
                    continue;
                };
                let Some(name) = EXTERNAL.iter().find(|n| comm.trim() == **n) else {
                    continue;
                };
                for (tid, _, run, _) in tasks(&e.path()) {
                    external.insert(format!("{pid}/{tid}"), (*name, run));
                }
            }
        }
        let machine = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            let line = s.lines().next()?;
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().sum();
            let (idle, iowait) = (*v.get(3)?, *v.get(4)?);
            Some((total - idle - iowait, iowait, total))
        });
        let written = std::fs::read_to_string("/proc/self/io").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("write_bytes:")?.trim().parse::<u64>().ok())
        });
        Snapshot {
            own,
            external,
            machine,
            written,
            server: server_timings(),
        }
    }

    /// The gateway's mean handling time of one route since `before`, and how many.
    fn server_mean_ms(&self, before: &Snapshot, route: (&str, &str)) -> Option<(f64, f64)> {
        let key = (route.0.to_owned(), route.1.to_owned());
        let (s1, c1) = self.server.get(&key)?;
        let (s0, c0) = before.server.get(&key).copied().unwrap_or_default();
        let n = c1 - c0;
        (n > 0.0).then(|| ((s1 - s0) / n * 1000.0, n))
    }

    /// Prints, per role, the cores kept busy over `wall` seconds since `before`.
    fn print_since(&self, before: &Snapshot, wall: f64, ok: u64) {
        let cores = |ns: u64| ns as f64 / 1e9 / wall;
        let mut run: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for (tid, (role, r, w)) in &self.own {
            let (r0, w0) = before.own.get(tid).map_or((0, 0), |(_, r0, w0)| (*r0, *w0));
            let e = run.entry(role).or_default();
            e.0 += r.saturating_sub(r0);
            e.1 += w.saturating_sub(w0);
        }
        let mut ext: BTreeMap<&str, u64> = BTreeMap::new();
        for (key, (name, r)) in &self.external {
            let r0 = before.external.get(key).map_or(0, |(_, r0)| *r0);
            *ext.entry(name).or_default() += r.saturating_sub(r0);
        }
        println!(
            "  CPU          cores kept busy over the phase (threads that ended during it are not counted):"
        );
        let mut accounted = 0.0;
        for role in ROLES {
            let (r, w) = run.get(role).copied().unwrap_or_default();
            accounted += cores(r);
            println!(
                "    {role:<32} {:>5.2}   (runnable but waiting for a core: {:.2})",
                cores(r),
                cores(w)
            );
        }
        for name in EXTERNAL {
            let r = ext.get(name).copied().unwrap_or_default();
            accounted += cores(r);
            println!(
                "    {:<32} {:>5.2}",
                format!("{name} (all on this host)"),
                cores(r)
            );
        }
        if let (Some((b1, w1, t1)), Some((b0, w0, t0))) = (self.machine, before.machine) {
            let n = std::thread::available_parallelism().map_or(1, usize::from) as f64;
            let dt = t1.saturating_sub(t0) as f64;
            if dt > 0.0 {
                let busy = b1.saturating_sub(b0) as f64 / dt * n;
                let iowait = w1.saturating_sub(w0) as f64 / dt * n;
                println!(
                    "    {:<32} {:>5.2}",
                    "everything else on this host",
                    (busy - accounted).max(0.0)
                );
                println!(
                    "    {:<32} {:>5.2} of {n:.0}, idle in iowait {iowait:.2} (/proc/stat, {USER_HZ:.0} Hz ticks)",
                    "whole machine busy", busy
                );
            }
        }
        if let (Some(b1), Some(b0)) = (self.written, before.written) {
            let bytes = b1.saturating_sub(b0);
            println!(
                "  storage      this process wrote {:.1} MB to storage, {:.1} kB per successful request (/proc/self/io write_bytes)",
                bytes as f64 / 1048576.0,
                bytes as f64 / 1024.0 / ok.max(1) as f64
            );
        }
    }
}
