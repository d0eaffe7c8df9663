//! The benchmark's load generator (driven by `bench/run`, see docs/PERFORMANCE.md).
//!
//! `loadgen run scenario=… base=… clients=N secs=T …` runs one scenario with N
//! closed-loop clients (each with its own session and connection), measures latency
//! with an HDR histogram after a warm-up, samples the CPU time of the gateway,
//! PostgreSQL, Redis and itself over the measured window, and appends one JSON line to
//! `out=`. `loadgen report results=… md=… svg=…` prints the table of all lines and
//! writes it as markdown and an SVG chart.

mod report;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The paging parameter of the lists, in one place: when keyset pagination
/// (`before=<cursor>`) lands, the deep page is reached by following cursors here.
const PER_PAGE: u64 = 20;
/// The deep page asked for (or the last page when a list is shorter).
const DEEP_PAGE: u64 = 500;
fn page_query(page: u64) -> String {
    format!("page={page}&per_page={PER_PAGE}")
}

/// The page that begins after `cursor` (a list answer's `next`).
fn cursor_query(cursor: &str) -> String {
    format!("before={cursor}&per_page={PER_PAGE}")
}

/// The service S1 submits: 城乡居民医保参保登记 (医保局), no upload needed (the ID card
/// stands in from the e-licence).
const SUBMIT_SERVICE: &str = "11150700MB1530007G-GG-0001";
/// The service S5 submits: 无犯罪记录证明 (公安局), whose deliveries bench/run points at
/// the loadgen's receiver.
const ROUTED_SERVICE: &str = "11150700MB15300021-GG-0001";

type Args = HashMap<String, String>;

fn arg<'a>(a: &'a Args, k: &str) -> &'a str {
    a.get(k)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("missing argument {k}="))
}

fn arg_or<'a>(a: &'a Args, k: &str, d: &'a str) -> &'a str {
    a.get(k).map(String::as_str).unwrap_or(d)
}

fn main() {
    let mut argv = std::env::args().skip(1);
    let cmd = argv.next().unwrap_or_default();
    let args: Args = argv
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    match cmd.as_str() {
        "run" => {
            let threads = arg_or(&args, "threads", "2").parse().unwrap_or(2);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
                .expect("runtime");
            if let Err(e) = rt.block_on(run(args)) {
                eprintln!("loadgen: {e}");
                std::process::exit(1);
            }
        }
        "report" => {
            if let Err(e) = report::report(&args) {
                eprintln!("loadgen report: {e}");
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!(
                "usage: loadgen run scenario=… base=… clients=N secs=T [...] | loadgen report results=FILE md=FILE svg=FILE"
            );
            std::process::exit(2);
        }
    }
}

type Res<T> = Result<T, String>;

fn e<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> String + '_ {
    move |err| format!("{what}: {err}")
}

/// A client with its own cookie jar (its own session) and connection.
fn client() -> Res<reqwest::Client> {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::limited(10))
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(2)
        .build()
        .map_err(e("client"))
}

/// Logs in as a persona with a client of its own and answers the session's `Cookie`
/// header and CSRF token, so one connection can act for many people in turn.
async fn session_of(base: &str, persona: &str) -> Res<(reqwest::header::HeaderValue, String)> {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let c = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::limited(10))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(e("client"))?;
    let csrf = login(&c, base, persona, false).await?;
    use reqwest::cookie::CookieStore;
    let url: reqwest::Url = base.parse().map_err(e("base"))?;
    let cookie = jar
        .cookies(&url)
        .ok_or_else(|| format!("login as {persona} left no session cookie"))?;
    Ok((cookie, csrf))
}

/// Logs in as a persona through the development provider; answers the CSRF token.
async fn login(c: &reqwest::Client, base: &str, persona: &str, staff: bool) -> Res<String> {
    let path = if staff {
        "/auth/staff/login"
    } else {
        "/auth/login"
    };
    let url = format!("{base}{path}?login_hint={persona}&return_to=%2Fapi%2Fv1%2Fme");
    let r = c.get(&url).send().await.map_err(e("login"))?;
    let status = r.status();
    let me: Value = r.json().await.map_err(e("login answer"))?;
    me.pointer("/session/csrf_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("login as {persona}: {status} {me}"))
}

/// One sample row: case_no, query_code, department, status, applicant.
#[derive(Clone)]
struct Sample {
    case_no: String,
    query_code: String,
    department: String,
    status: String,
}

fn read_sample(path: &str) -> Res<Vec<Sample>> {
    let text = std::fs::read_to_string(path).map_err(e("sample"))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 4).then(|| Sample {
                case_no: f[0].into(),
                query_code: f[1].into(),
                department: f[2].into(),
                status: f[3].into(),
            })
        })
        .collect())
}

/// CPU seconds (user + system) of a process, from /proc/<pid>/stat.
fn cpu_of(pid: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command is in parentheses and may contain spaces: count fields after it.
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}

/// CPU seconds of every process whose command name is `comm`.
fn cpu_of_comm(comm: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter(|d| {
            d.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|d| {
            std::fs::read_to_string(d.path().join("comm"))
                .map(|c| c.trim() == comm)
                .unwrap_or(false)
        })
        .map(|d| cpu_of(&d.file_name().to_string_lossy()))
        .sum()
}

/// (busy, total) jiffies of the whole machine, from /proc/stat.
fn machine() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

#[derive(Clone, Copy)]
struct CpuSnap {
    gateway: f64,
    postgres: f64,
    redis: f64,
    loadgen: f64,
    busy: f64,
    total: f64,
}

fn snap(gw: &str) -> CpuSnap {
    let (busy, total) = machine();
    CpuSnap {
        gateway: cpu_of(gw),
        postgres: cpu_of_comm("postgres"),
        redis: cpu_of_comm("redis-server"),
        loadgen: cpu_of("self"),
        busy,
        total,
    }
}

/// The gateway's peak resident set (VmHWM, MB), and its reset.
fn vm_hwm(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn reset_hwm(pid: &str) {
    // "5" resets the peak RSS counter (Linux ≥ 4.0); without permission the peak is
    // since the gateway's start.
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// What one client does once per loop: a request (or a few), timed as one.
#[derive(Clone)]
enum Work {
    /// Lodgings as each of `residents` in turn (their session cookie, CSRF token and
    /// form).
    Submit {
        service: &'static str,
        residents: Vec<(reqwest::header::HeaderValue, String, Value)>,
        routed: Option<Arc<Routing>>,
    },
    Status {
        sample: Arc<Vec<Sample>>,
    },
    List {
        path: String,
    },
    /// The client's own cases with the step each takes next (0 accept, 1 start
    /// review, then suspend and resume in turn), visited round-robin.
    Transition {
        token: String,
        cases: Arc<std::sync::Mutex<Vec<(String, u8)>>>,
    },
}

/// The S5 bookkeeping: when each case's submission was answered, and its delivery's
/// arrival.
#[derive(Default)]
struct Routing {
    committed: std::sync::Mutex<HashMap<String, Instant>>,
    received: std::sync::Mutex<HashMap<String, Instant>>,
    deliveries: AtomicU64,
}

/// The form of the submit service for a persona.
fn medical_values(resident: u64) -> Value {
    let (name, id, phone) = bench_identity(resident);
    json!({
        "insured_name": name, "insured_id_number": id, "gender": gender(&id), "phone": phone,
        "enrolment_basis": "hukou", "residence_address": "呼伦贝尔市海拉尔区胜利大街1号3单元502室",
        "person_category": "adult",
    })
}

fn no_record_values(resident: u64) -> Value {
    let (name, id, phone) = bench_identity(resident);
    json!({
        "applicant_name": name, "applicant_id_number": id, "applicant_phone": phone,
        "purpose": "employment", "receiving_organisation": "呼伦贝尔市第一人民医院",
        "delivery": "electronic",
    })
}

/// Who the development provider's benchmark resident `bench-citizen-N` is (name, ID
/// number, mobile): the same rule as `devidp::personas::bench_identity` in the gateway,
/// whose base library `onewindow bench seed --bench-personas` fills with them. A form
/// whose identifiers differ from the login's is refused, so a drift shows as errors.
/// The development provider's benchmark residents (`BENCH_PERSONAS` there; `bench/run`
/// seeds the base library with them all).
const BENCH_RESIDENTS: u64 = 1000;

fn bench_identity(n: u64) -> (String, String, String) {
    const SURNAMES: [&str; 8] = ["赵", "钱", "孙", "李", "周", "吴", "郑", "王"];
    const GIVEN: [&str; 10] = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰"];
    let n = n as usize;
    let name = format!(
        "{}{}{}",
        SURNAMES[n % 8],
        GIVEN[(n / 8) % 10],
        GIVEN[(n / 80) % 10]
    );
    let first17 = format!(
        "150702{}{:02}{:02}{:03}",
        1960 + n % 40,
        1 + (n / 40) % 12,
        1 + (n / 480) % 28,
        n % 1000
    );
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = first17
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
        .sum();
    let id = format!("{first17}{}", CHECK[(sum % 11) as usize]);
    (name, id, format!("139{n:08}"))
}

fn gender(id: &str) -> &'static str {
    match id.as_bytes().get(16).map(|b| b - b'0') {
        Some(d) if d % 2 == 1 => "1",
        _ => "2",
    }
}

/// A value of this process's own, so Idempotency-Keys never repeat across runs (a
/// repeated key would replay the earlier answer instead of making a case).
fn nonce() -> u64 {
    static N: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t ^ (u64::from(std::process::id()) << 32)
    })
}

/// Tiny xorshift per client, so clients pick sample rows independently.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One loop of a client: Some(true) a success, Some(false) an error answer, None
/// nothing left to do (S4 ran out of cases).
async fn once(c: &reqwest::Client, base: &str, w: &Work, n: u64, rng: &mut Rng) -> Option<bool> {
    Some(match w {
        Work::Submit {
            service,
            residents,
            routed,
        } => {
            let (cookie, csrf, values) = &residents[(n as usize) % residents.len()];
            let body = json!({
                "service_code": service, "values": values,
                "materials": [{"material": "id_card", "substitute": true}],
            });
            let r = c
                .post(format!("{base}/api/v1/cases"))
                .header(reqwest::header::COOKIE, cookie)
                .header("x-csrf-token", csrf)
                .header(
                    "idempotency-key",
                    format!("bench-{:x}-{:x}-{n}", nonce(), rng.next()),
                )
                .json(&body)
                .send()
                .await;
            match r {
                Ok(r) if r.status().as_u16() == 201 => {
                    if let Some(rt) = routed {
                        let at = Instant::now();
                        if let Ok(v) = r.json::<Value>().await
                            && let Some(no) = v.get("case_no").and_then(Value::as_str)
                        {
                            rt.committed.lock().expect("lock").insert(no.to_owned(), at);
                        }
                    } else {
                        let _ = r.bytes().await;
                    }
                    true
                }
                Ok(r) => {
                    let s = r.status();
                    let t = r.text().await.unwrap_or_default();
                    if n < 2 {
                        eprintln!(
                            "  submit answered {s}: {}",
                            t.chars().take(300).collect::<String>()
                        );
                    }
                    false
                }
                Err(_) => false,
            }
        }
        Work::Status { sample } => {
            let s = &sample[(rng.next() % sample.len() as u64) as usize];
            let r = c
                .get(format!(
                    "{base}/api/v1/public/cases/{}?query_code={}",
                    s.case_no, s.query_code
                ))
                .send()
                .await;
            ok_body(r, 200).await
        }
        Work::List { path } => ok_body(c.get(format!("{base}{path}")).send().await, 200).await,
        Work::Transition { token, cases } => {
            let (no, step) = {
                let mut cs = cases.lock().expect("lock");
                if cs.is_empty() {
                    return None;
                }
                let k = (n % cs.len() as u64) as usize;
                let (no, step) = cs[k].clone();
                cs[k].1 = if step >= 3 { 2 } else { step + 1 };
                (no, step)
            };
            let body = match step {
                0 => json!({"action": "accept"}),
                1 => json!({"action": "start_review"}),
                2 => json!({"action": "suspend", "note": "现场核查（基准测试）"}),
                _ => json!({"action": "resume"}),
            };
            let r = c
                .post(format!("{base}/api/dept/v1/cases/{no}/transitions"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await;
            ok_body(r, 200).await
        }
    })
}

async fn ok_body(r: reqwest::Result<reqwest::Response>, want: u16) -> bool {
    match r {
        Ok(r) => {
            let good = r.status().as_u16() == want;
            let _ = r.bytes().await;
            good
        }
        Err(_) => false,
    }
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram")
}

/// The S5 receiver: a minimal HTTP/1.1 server (keep-alive, Content-Length bodies) that
/// answers 200 to every delivery and notes when each case's event arrived.
async fn receiver(port: u16, rt: Arc<Routing>) -> Res<()> {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(e("receiver bind"))?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let rt = rt.clone();
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(16 * 1024);
                let mut tmp = [0u8; 16 * 1024];
                loop {
                    // headers
                    let head_end = loop {
                        if let Some(p) = find(&buf, b"\r\n\r\n") {
                            break p + 4;
                        }
                        match s.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        match s.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    let at = Instant::now();
                    if let Ok(v) = serde_json::from_slice::<Value>(&buf[head_end..head_end + len])
                        && let Some(no) = v.get("subject").and_then(Value::as_str)
                    {
                        rt.deliveries.fetch_add(1, Ordering::Relaxed);
                        rt.received
                            .lock()
                            .expect("lock")
                            .entry(no.to_owned())
                            .or_insert(at);
                    }
                    buf.drain(..head_end + len);
                    if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(())
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

async fn run(a: Args) -> Res<()> {
    let scenario = arg(&a, "scenario").to_owned();
    let base = arg(&a, "base").trim_end_matches('/').to_owned();
    let clients: u64 = arg(&a, "clients").parse().map_err(e("clients"))?;
    let secs: f64 = arg(&a, "secs").parse().map_err(e("secs"))?;
    let warmup: f64 = arg_or(&a, "warmup", "1").parse().map_err(e("warmup"))?;
    let gw = arg_or(&a, "gateway_pid", "0").to_owned();
    let label = arg_or(&a, "label", &scenario).to_owned();
    let backend = arg_or(&a, "backend", "?").to_owned();
    let mut extra = serde_json::Map::new();

    // Set up each client's work (logins happen here, before the clock starts).
    let mut works = Vec::new();
    let mut routing = None;
    let sample = match a.get("sample") {
        Some(p) => Arc::new(read_sample(p)?),
        None => Arc::new(Vec::new()),
    };
    match scenario.as_str() {
        "submit" | "route" => {
            let rt = (scenario == "route").then(|| Arc::new(Routing::default()));
            if let Some(rt) = &rt {
                receiver(
                    arg(&a, "receiver").parse().map_err(e("receiver"))?,
                    rt.clone(),
                )
                .await?;
            }
            // A city's load is many people, each lodging now and then: every client
            // acts for its own residents in turn (up to 10 each, of the provider's
            // 1,000), so no one person lodges back to back. S5's residents follow S1's.
            let per = (BENCH_RESIDENTS / clients.max(1)).clamp(1, 10);
            for k in 0..clients {
                let c = client()?;
                let mut residents = Vec::new();
                for j in 0..per {
                    let resident = if rt.is_some() { 500 } else { 0 } + k * per + j;
                    let values = if rt.is_some() {
                        no_record_values(resident)
                    } else {
                        medical_values(resident)
                    };
                    let (cookie, csrf) =
                        session_of(&base, &format!("bench-citizen-{resident}")).await?;
                    residents.push((cookie, csrf, values));
                }
                let service = if rt.is_some() {
                    ROUTED_SERVICE
                } else {
                    SUBMIT_SERVICE
                };
                works.push((
                    c,
                    Work::Submit {
                        service,
                        residents,
                        routed: rt.clone(),
                    },
                ));
            }
            routing = rt;
        }
        "status" => {
            if sample.is_empty() {
                return Err("status needs sample=".into());
            }
            for _ in 0..clients {
                works.push((
                    client()?,
                    Work::Status {
                        sample: sample.clone(),
                    },
                ));
            }
        }
        "my-cases" | "worklist" => {
            let (persona, staff, path) = if scenario == "my-cases" {
                ("citizen-wang", false, "/api/v1/cases")
            } else {
                ("clerk-sun", true, "/api/staff/v1/cases")
            };
            let deep = arg_or(&a, "page", "first") == "deep";
            let mut page = 1;
            let mut deep_query: Option<String> = None;
            for k in 0..clients {
                let c = client()?;
                login(&c, &base, persona, staff).await?;
                if k == 0 {
                    let list = |query: String| {
                        let req = c.get(format!("{base}{path}?{query}"));
                        async move {
                            req.send()
                                .await
                                .map_err(e("list"))?
                                .json::<Value>()
                                .await
                                .map_err(e("list answer"))
                        }
                    };
                    let v = list(page_query(1)).await?;
                    let total = v.get("total").and_then(Value::as_u64).unwrap_or(0);
                    extra.insert("list_total".into(), json!(total));
                    if total == 0 {
                        eprintln!("  warning: {persona}'s list is empty");
                    }
                    // A deep page is reached as a person reaches it: by following each
                    // page's `next` cursor (walked once here; every client then asks
                    // for that page).
                    let mut next = v.get("next").and_then(Value::as_str).map(str::to_owned);
                    while deep && page < DEEP_PAGE {
                        let Some(cursor) = next.take() else { break };
                        let v = list(cursor_query(&cursor)).await?;
                        page += 1;
                        deep_query = Some(cursor_query(&cursor));
                        next = v.get("next").and_then(Value::as_str).map(str::to_owned);
                    }
                    extra.insert("page".into(), json!(page));
                }
                works.push((
                    c,
                    Work::List {
                        path: format!(
                            "{path}?{}",
                            deep_query.clone().unwrap_or_else(|| page_query(1))
                        ),
                    },
                ));
            }
        }
        "transitions" => {
            let dept = arg(&a, "department");
            let cases: Vec<(String, u8)> = sample
                .iter()
                .filter(|s| s.department == dept)
                .filter_map(|s| {
                    let step = match s.status.as_str() {
                        "submitted" => 0,
                        "accepted" => 1,
                        "under_review" => 2,
                        _ => return None,
                    };
                    Some((s.case_no.clone(), step))
                })
                .collect();
            extra.insert("cases_available".into(), json!(cases.len()));
            let token = arg(&a, "token").to_owned();
            for k in 0..clients as usize {
                let mine: Vec<(String, u8)> = cases
                    .iter()
                    .skip(k)
                    .step_by(clients.max(1) as usize)
                    .cloned()
                    .collect();
                works.push((
                    client()?,
                    Work::Transition {
                        token: token.clone(),
                        cases: Arc::new(std::sync::Mutex::new(mine)),
                    },
                ));
            }
        }
        other => return Err(format!("unknown scenario {other}")),
    }

    // Run: every client loops until the end; only requests that start after the
    // warm-up and end before the end are measured.
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(warmup);
    let end = measure_from + Duration::from_secs_f64(secs);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (k, (c, w)) in works.into_iter().enumerate() {
        let base = base.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = hist();
            let (mut ok, mut err) = (0u64, 0u64);
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((k as u64 + 1) * 0x1000_0001));
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let Some(good) = once(&c, &base, &w, n, &mut rng).await else {
                    break;
                };
                n += 1;
                let t1 = Instant::now();
                if t0 >= measure_from && t1 <= end {
                    h.record((t1 - t0).as_micros().max(1) as u64).ok();
                    if good {
                        ok += 1;
                    } else {
                        err += 1;
                    }
                }
                if t1 >= end {
                    break;
                }
            }
            (h, ok, err)
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    reset_hwm(&gw);
    let before = snap(&gw);
    let delivered_before = routing
        .as_ref()
        .map_or(0, |r| r.deliveries.load(Ordering::Relaxed));
    tokio::time::sleep_until(end.into()).await;
    let after = snap(&gw);
    let delivered_in_window = routing
        .as_ref()
        .map_or(0, |r| r.deliveries.load(Ordering::Relaxed))
        - delivered_before;
    let rss = vm_hwm(&gw);
    stop.store(true, Ordering::Relaxed);
    let mut h = hist();
    let (mut ok, mut err) = (0, 0);
    for t in tasks {
        let (th, o, er) = t.await.map_err(e("client task"))?;
        h.add(th).ok();
        ok += o;
        err += er;
    }

    if let Some(rt) = &routing {
        // Let the deliveries of the last submissions arrive (at most 30 s).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pending = {
                let c = rt.committed.lock().expect("lock");
                let r = rt.received.lock().expect("lock");
                c.keys().filter(|k| !r.contains_key(*k)).count()
            };
            if pending == 0 || Instant::now() > deadline {
                extra.insert("undelivered".into(), json!(pending));
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let c = rt.committed.lock().expect("lock");
        let r = rt.received.lock().expect("lock");
        let mut lat = hist();
        for (no, at) in c.iter() {
            if let Some(got) = r.get(no) {
                lat.record(got.saturating_duration_since(*at).as_micros().max(1) as u64)
                    .ok();
            }
        }
        extra.insert(
            "deliveries_per_s".into(),
            json!(delivered_in_window as f64 / secs),
        );
        extra.insert(
            "commit_to_receipt_p50_ms".into(),
            json!(lat.value_at_quantile(0.5) as f64 / 1000.0),
        );
        extra.insert(
            "commit_to_receipt_p99_ms".into(),
            json!(lat.value_at_quantile(0.99) as f64 / 1000.0),
        );
        extra.insert("routed_cases".into(), json!(lat.len()));
    }

    let wall = (after.busy - before.busy).max(0.0);
    let total = (after.total - before.total).max(1.0);
    let line = json!({
        "kind": "scenario",
        "scenario": label,
        "backend": backend,
        "clients": clients,
        "secs": secs,
        "requests": ok + err,
        "rps": ok as f64 / secs,
        "p50_ms": h.value_at_quantile(0.5) as f64 / 1000.0,
        "p99_ms": h.value_at_quantile(0.99) as f64 / 1000.0,
        "errors": err,
        "rss_mb": rss,
        "cpu": {
            "gateway": (after.gateway - before.gateway).max(0.0),
            // processes that exit within the window take their time with them
            "postgres": (after.postgres - before.postgres).max(0.0),
            "redis": (after.redis - before.redis).max(0.0),
            "loadgen": (after.loadgen - before.loadgen).max(0.0),
        },
        "machine_busy_pct": 100.0 * wall / total,
        "extra": extra,
    });
    println!("{line}");
    if let Some(out) = a.get("out") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .map_err(e("out"))?;
        writeln!(f, "{line}").map_err(e("out"))?;
    }
    Ok(())
}
