//! `onewindow bench seed` (hidden): fills a database with many historical cases fast, for
//! the benchmark (`bench/run`, docs/PERFORMANCE.md). Never for production data.
//!
//! Rows are sealed exactly as the store seals them (`RowSeal` with the personal-data key
//! of this database, bound to table, column and row id), so the gateway reads a seeded
//! case like any other. They are written without the use cases: on PostgreSQL through
//! `COPY … FROM STDIN` (text format), on SQLite through multi-row `INSERT`s in one
//! transaction. Each case gets its first history entry (submit) and, when it has moved
//! on, one entry for its present state, taken by the department's system.
//!
//! A seeded case is an **imported historical case**: it has no audit records (the audit
//! chain `case:<case_no>` starts at the case's first step taken after the import), no
//! outbox events, no notices and no materials.
//!
//! The applicants are `--applicants` bench accounts (issuer [`BENCH_ISSUER`], nobody can
//! log in as them) and, with `--persona-issuer`, the demo's citizen personas at that
//! issuer (the accounts their login will find), each with `--persona-cases` cases, so
//! "my cases" of a logged-in persona has pages to turn.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

use crate::config::Settings;
use crate::store::{RowSeal, row_aad};

/// The issuer of the bench's own applicant accounts (no provider answers for it).
pub const BENCH_ISSUER: &str = "urn:onewindow:bench-seed";

/// What `bench` does.
#[derive(Debug, clap::Subcommand)]
pub enum BenchAction {
    /// Seed historical cases (and their applicants) into the configured database.
    Seed(SeedOptions),
}

/// Options of `bench seed`.
#[derive(Debug, Clone, clap::Args)]
pub struct SeedOptions {
    /// Cases to make.
    #[arg(long, default_value_t = 1_000_000)]
    pub cases: u64,
    /// Bench applicant accounts the cases are spread over.
    #[arg(long, default_value_t = 200_000)]
    pub applicants: u64,
    /// The demo identity provider's issuer (`http://127.0.0.1:8081/`): the citizen
    /// personas get accounts there and cases of their own.
    #[arg(long)]
    pub persona_issuer: Option<String>,
    /// Cases per citizen persona (default: cases / 1000, at least 100).
    #[arg(long)]
    pub persona_cases: Option<u64>,
    /// Write a tab-separated sample (case_no, query_code, department, status,
    /// applicant) of the seeded cases here: every open case (submitted, accepted, under
    /// review), and about `--sample-size` others.
    #[arg(long)]
    pub sample: Option<PathBuf>,
    /// How many cases besides the submitted ones go into the sample.
    #[arg(long, default_value_t = 20_000)]
    pub sample_size: u64,
    /// Put the first N of the development provider's benchmark residents
    /// (`bench-citizen-N`) in the base library: their population record and their resident
    /// ID card e-licence, so their forms prefill and their ID card is stood in for, as for
    /// the demo personas.
    #[arg(long, default_value_t = 0)]
    pub bench_personas: usize,
}

/// What a seeding run made.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    /// Accounts written.
    pub accounts: u64,
    /// Cases written.
    pub cases: u64,
    /// History entries written.
    pub events: u64,
    /// Wall time.
    pub secs: f64,
}

/// The command line's entry.
pub async fn run_cli(settings: Settings, action: BenchAction) -> anyhow::Result<()> {
    match action {
        BenchAction::Seed(o) => {
            let r = seed(&settings, &o).await?;
            println!(
                "seeded {} cases ({} history entries) and {} accounts in {:.1} s: {:.0} cases/s, {:.0} rows/s",
                r.cases,
                r.events,
                r.accounts,
                r.secs,
                r.cases as f64 / r.secs.max(1e-9),
                (r.cases + r.events + r.accounts) as f64 / r.secs.max(1e-9)
            );
            Ok(())
        }
    }
}

/// One applicant a case can belong to.
#[derive(Debug, Clone)]
struct Applicant {
    account: Uuid,
    name: String,
    id_number: String,
    phone: String,
}

/// A service a case can be lodged for.
#[derive(Debug, Clone)]
struct Svc {
    code: String,
    version: String,
    department: String,
}

/// Everything the pure row builder needs.
struct Plan {
    cases: u64,
    applicants: Vec<Applicant>,
    /// Indexes into `applicants` of the personas, and every how many cases one of them
    /// applies.
    personas: Vec<usize>,
    persona_stride: u64,
    services: Vec<Svc>,
    now: DateTime<Utc>,
}

/// A case's columns, sealed and ready to write.
#[derive(Debug, Clone)]
pub struct SeedCase {
    /// Row id (UUIDv7 of `created_at`).
    pub id: Uuid,
    /// Case number.
    pub case_no: String,
    /// Query code.
    pub query_code: String,
    service_code: String,
    service_version: String,
    /// Responsible department.
    pub department: String,
    /// Applicant account.
    pub account: Uuid,
    name: String,
    id_number_sealed: Option<String>,
    phone_sealed: Option<String>,
    /// Status code.
    pub status: &'static str,
    form_sealed: String,
    accepted_on: Option<NaiveDate>,
    due_on: Option<NaiveDate>,
    legal_due_on: Option<NaiveDate>,
    concluded_on: Option<NaiveDate>,
    result: Option<&'static str>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    events: Vec<SeedEvent>,
}

#[derive(Debug, Clone)]
struct SeedEvent {
    seq: i32,
    at: DateTime<Utc>,
    actor: &'static str,
    actor_id: Option<String>,
    actor_name: String,
    action: &'static str,
    from_status: Option<&'static str>,
    to_status: &'static str,
    note: Option<&'static str>,
}

/// splitmix64: a fixed, well-spread hash of the case index, so a seed is reproducible.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const ALPHABET: &[u8; 30] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `HLBE<date>-<8 characters>`: the index in base 30 (unique for any index below
/// 30⁸), so two seeded cases never share a number, in the shape the routes accept.
fn case_number(date: NaiveDate, i: u64) -> String {
    let mut tail = [b'2'; 8];
    let mut n = i;
    for c in tail.iter_mut().rev() {
        *c = ALPHABET[(n % 30) as usize];
        n /= 30;
    }
    format!(
        "{}{}-{}",
        crate::domain::case::CASE_NUMBER_PREFIX,
        date.format("%Y%m%d"),
        String::from_utf8_lossy(&tail)
    )
}

/// A made-up resident ID number with a correct GB 11643 check character.
fn resident_id(n: u64) -> String {
    let h = mix(n ^ 0x1D);
    let birth =
        NaiveDate::from_ymd_opt(1950, 1, 1).expect("date") + Duration::days((h % 20_000) as i64);
    let body = format!("150702{}{:03}", birth.format("%Y%m%d"), (n % 1000) as u32);
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙",
];
const GIVEN: [&str; 12] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳",
];

fn bench_applicant_name(n: u64) -> String {
    let h = mix(n ^ 0xA11);
    format!(
        "{}{}{}",
        SURNAMES[(h % 12) as usize],
        GIVEN[((h >> 8) % 12) as usize],
        GIVEN[((h >> 16) % 12) as usize]
    )
}

/// The status of a case by its age and its hash: older cases are mostly concluded.
fn status_of(age_days: i64, h: u64) -> &'static str {
    let p = h % 100;
    if age_days > 60 {
        match p {
            0..85 => "approved",
            85..93 => "rejected",
            93..97 => "withdrawn",
            _ => "not_accepted",
        }
    } else {
        match p {
            0..30 => "submitted",
            30..55 => "accepted",
            55..80 => "under_review",
            80..95 => "approved",
            _ => "rejected",
        }
    }
}

/// The step that brought a case from submitted to `status` (none for submitted).
fn step_to(status: &str) -> Option<&'static str> {
    match status {
        "accepted" => Some("accept"),
        "under_review" => Some("start_review"),
        "approved" | "rejected" => Some("conclude"),
        "withdrawn" => Some("withdraw"),
        "not_accepted" => Some("not_accept"),
        _ => None,
    }
}

const IMPORT_NOTE: &str = "历史办件导入（基准测试数据）";

impl Plan {
    /// Who applied for case `i`.
    fn applicant_of(&self, i: u64, h: u64) -> usize {
        if !self.personas.is_empty() && i.is_multiple_of(self.persona_stride) {
            return self.personas[((i / self.persona_stride) as usize) % self.personas.len()];
        }
        let bench = self.applicants.len() - self.personas.len();
        self.personas.len() + (h % bench.max(1) as u64) as usize
    }

    /// Case `i` (0 the oldest, two years ago; the last one about now), sealed with `seal`.
    fn case(&self, i: u64, seal: &RowSeal) -> SeedCase {
        let h = mix(i);
        let span = Duration::days(730).num_seconds();
        let back = span - (span as i128 * i as i128 / self.cases.max(1) as i128) as i64;
        let created_at =
            (self.now - Duration::seconds(back) - Duration::milliseconds((h % 997) as i64))
                .trunc_subsecs_micros();
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            created_at.timestamp() as u64,
            created_at.timestamp_subsec_nanos(),
        );
        let id = Uuid::new_v7(ts);
        let date = created_at.date_naive();
        let a = &self.applicants[self.applicant_of(i, h >> 7)];
        let svc = &self.services[((h >> 20) % self.services.len() as u64) as usize];
        let age = (self.now - created_at).num_days();
        let status = status_of(age, h >> 33);
        let sid = id.to_string();
        let aad = |column: &str| row_aad("cases", column, &sid);
        let form = json!({
            "applicant_name": a.name,
            "applicant_id_number": a.id_number,
            "applicant_phone": a.phone,
            "residence_address": "呼伦贝尔市海拉尔区胜利大街1号3单元502室",
            "remark": "历史办件导入",
        });
        let submitted = SeedEvent {
            seq: 1,
            at: created_at,
            actor: "applicant",
            actor_id: Some(a.account.to_string()),
            actor_name: a.name.clone(),
            action: "submit",
            from_status: None,
            to_status: "submitted",
            note: None,
        };
        let mut events = vec![submitted];
        let accepted = matches!(
            status,
            "accepted" | "under_review" | "approved" | "rejected"
        );
        let accepted_on = accepted.then(|| date + Duration::days(1));
        let concluded = matches!(status, "approved" | "rejected");
        let concluded_on = concluded.then(|| date + Duration::days(2 + (h % 12) as i64));
        let mut updated_at = created_at;
        if let Some(action) = step_to(status) {
            let at = match (concluded_on, accepted_on) {
                (Some(d), _) | (None, Some(d)) => d
                    .and_hms_opt(10, 0, 0)
                    .expect("time")
                    .and_utc()
                    .min(self.now),
                _ => (created_at + Duration::hours(2)).min(self.now),
            };
            updated_at = at.max(created_at);
            let by_applicant = status == "withdrawn";
            events.push(SeedEvent {
                seq: 2,
                at: updated_at,
                actor: if by_applicant {
                    "applicant"
                } else {
                    "department_system"
                },
                actor_id: by_applicant.then(|| a.account.to_string()),
                actor_name: if by_applicant {
                    a.name.clone()
                } else {
                    "部门业务系统（历史导入）".to_owned()
                },
                action,
                from_status: Some("submitted"),
                to_status: status,
                note: Some(IMPORT_NOTE),
            });
        }
        SeedCase {
            id,
            case_no: case_number(date, i),
            query_code: format!("{:06}", mix(i ^ 0x5EED) % 1_000_000),
            service_code: svc.code.clone(),
            service_version: svc.version.clone(),
            department: svc.department.clone(),
            account: a.account,
            name: a.name.clone(),
            id_number_sealed: seal.text(&aad("applicant_id_number"), Some(&a.id_number)),
            phone_sealed: seal.text(&aad("applicant_phone"), Some(&a.phone)),
            status,
            form_sealed: seal.json(&aad("form"), &form).to_string(),
            accepted_on,
            due_on: accepted_on.map(|d| d + Duration::days(20)),
            legal_due_on: accepted_on.map(|d| d + Duration::days(30)),
            concluded_on,
            result: match status {
                "approved" => Some("approved"),
                "rejected" => Some("rejected"),
                _ => None,
            },
            created_at,
            updated_at,
            events,
        }
    }
}

trait TruncMicros {
    fn trunc_subsecs_micros(self) -> Self;
}

impl TruncMicros for DateTime<Utc> {
    fn trunc_subsecs_micros(self) -> Self {
        chrono::SubsecRound::trunc_subsecs(self, 6)
    }
}

/// Seeds the database `settings` names (migrating it first, as the gateway would).
pub async fn seed(settings: &Settings, o: &SeedOptions) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let store = crate::app::open_store(settings).await?;
    let (_, sealer) = crate::app::personal_data_keys(settings, store.as_ref()).await?;
    store.close().await;
    let seal = RowSeal::default();
    seal.set(sealer);
    let catalogue = crate::app::load_catalogue(settings)?;
    let services: Vec<Svc> = catalogue
        .services()
        .iter()
        .map(|s| Svc {
            code: s.code.clone(),
            version: s.version(),
            department: s.department.clone(),
        })
        .collect();
    anyhow::ensure!(!services.is_empty(), "the catalogue has no services");
    let now = Utc::now();
    let url = settings.database_url();
    let mut db = Db::connect(&url).await?;

    // The applicants: the personas first (their accounts as their login will find them).
    let mut applicants = Vec::new();
    let mut personas = Vec::new();
    if let Some(issuer) = &o.persona_issuer {
        for p in crate::devidp::personas::personas()
            .iter()
            .filter(|p| p.kind == "citizen")
        {
            let account = db.persona_account(issuer, p.id, p.name, now).await?;
            personas.push(applicants.len());
            applicants.push(Applicant {
                account,
                name: p.name.to_owned(),
                id_number: p.id_number.unwrap_or_default().to_owned(),
                phone: p.phone_number.unwrap_or("13800000009").to_owned(),
            });
        }
    }
    let mut accounts = Vec::with_capacity(o.applicants as usize);
    for n in 0..o.applicants.max(1) {
        let a = Applicant {
            account: Uuid::now_v7(),
            name: bench_applicant_name(n),
            id_number: resident_id(n),
            phone: format!("139{:08}", n % 100_000_000),
        };
        accounts.push((format!("bench-{n}"), a.clone()));
        applicants.push(a);
    }
    let written_accounts = db.accounts(&accounts, &seal, now).await?;
    let persona_cases = o.persona_cases.unwrap_or((o.cases / 1000).max(100)).max(1);
    let persona_stride = if personas.is_empty() {
        u64::MAX
    } else {
        (o.cases / (persona_cases * personas.len() as u64)).max(2)
    };
    let plan = Arc::new(Plan {
        cases: o.cases,
        applicants,
        personas,
        persona_stride,
        services,
        now,
    });

    // Rows are built (and sealed) on blocking threads, CHUNK at a time, while the
    // writer sends the previous chunk.
    const CHUNK: u64 = 5_000;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<SeedCase>>(4);
    let builders = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4) as u64;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..builders {
        let (plan, seal, tx, next) = (plan.clone(), seal.clone(), tx.clone(), next.clone());
        handles.push(tokio::task::spawn_blocking(move || {
            loop {
                let start = next.fetch_add(CHUNK, std::sync::atomic::Ordering::Relaxed);
                if start >= plan.cases {
                    break;
                }
                let end = (start + CHUNK).min(plan.cases);
                let rows: Vec<SeedCase> = (start..end).map(|i| plan.case(i, &seal)).collect();
                if tx.blocking_send(rows).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut sample = match &o.sample {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => None,
    };
    let every = (o.cases / o.sample_size.max(1)).max(1);
    let (mut cases, mut events) = (0u64, 0u64);
    db.begin().await?;
    let mut last_print = Instant::now();
    while let Some(rows) = rx.recv().await {
        if let Some(w) = sample.as_mut() {
            for c in &rows {
                let open = matches!(c.status, "submitted" | "accepted" | "under_review");
                if open || mix(c.id.as_u128() as u64).is_multiple_of(every) {
                    writeln!(
                        w,
                        "{}\t{}\t{}\t{}\t{}",
                        c.case_no, c.query_code, c.department, c.status, c.account
                    )?;
                }
            }
        }
        events += rows.iter().map(|c| c.events.len() as u64).sum::<u64>();
        cases += rows.len() as u64;
        db.write(&rows).await?;
        if last_print.elapsed().as_secs() >= 5 {
            last_print = Instant::now();
            eprintln!(
                "  … {cases} cases ({:.0}/s)",
                cases as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    for h in handles {
        h.await?;
    }
    db.commit().await?;
    if let Some(mut w) = sample {
        w.flush()?;
    }
    db.analyze().await?;
    db.close().await;
    if o.bench_personas > 0 {
        import_bench_personas(settings, &catalogue, o.bench_personas).await?;
    }
    Ok(SeedReport {
        accounts: written_accounts,
        cases,
        events,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// The benchmark residents' base-library records, written as the files an operator
/// imports and imported through the same code (`sharing::import`).
async fn import_bench_personas(
    settings: &Settings,
    catalogue: &crate::domain::catalogue::Catalogue,
    count: usize,
) -> anyhow::Result<()> {
    use crate::devidp::personas::BENCH_PERSONAS;
    anyhow::ensure!(
        count <= BENCH_PERSONAS,
        "the development provider has {BENCH_PERSONAS} benchmark residents"
    );
    let (person, licence) = bench_persona_records(count);
    let dir = std::env::temp_dir().join(format!("onewindow-bench-personas-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let files = [
        ("person", "person.csv", person),
        ("elicence", "elicence.jsonl", licence),
    ];
    let store = crate::app::open_store(settings).await?;
    let (_, sealer) = crate::app::personal_data_keys(settings, store.as_ref()).await?;
    let base = crate::sharing::provider::BaseLibrary::new(store.clone(), sealer);
    let mut result = Ok(());
    for (code, name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        let resource = crate::sharing::import::importable_resource(catalogue, code)?;
        match crate::sharing::import::import_file(&base, &resource, &path, None, &|_| {}).await {
            Ok(r) if r.rejected.is_empty() => {}
            Ok(r) => {
                result = Err(anyhow::anyhow!("{name}: rows refused: {:?}", r.rejected));
                break;
            }
            Err(e) => {
                result = Err(e.into());
                break;
            }
        }
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// `person.csv` and `elicence.jsonl` for the first `count` benchmark residents.
fn bench_persona_records(count: usize) -> (String, String) {
    let mut person = String::from(
        "id_number,name,gender,birth_date,ethnicity,phone,household_address,residence_address\n",
    );
    let mut licence = String::new();
    for n in 0..count {
        let (name, id, phone) = crate::devidp::personas::bench_identity(n);
        let born = format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14]);
        let gender = if (id.as_bytes()[16] - b'0') % 2 == 1 {
            1
        } else {
            2
        };
        let address = format!(
            "内蒙古自治区呼伦贝尔市海拉尔区胜利街道巴彦托海路{}号",
            n + 1
        );
        person.push_str(&format!(
            "{id},{name},{gender},{born},汉族,{phone},{address},{address}\n"
        ));
        licence.push_str(
            &json!({
                "holder": id, "licence": "resident_id_card", "licence_no": id,
                "issuer": "呼伦贝尔市公安局海拉尔区分局", "issued_on": "2020-01-01",
                "valid_until": "2040-01-01", "holder_name": name,
            })
            .to_string(),
        );
        licence.push('\n');
    }
    (person, licence)
}

const CASE_COLUMNS: &str = "id, case_no, query_code, service_code, service_version, department, \
     applicant_account, applicant_kind, applicant_name, applicant_id_number, applicant_phone, \
     channel, status, form, accepted_on, due_on, legal_due_on, concluded_on, result, version, \
     created_at, updated_at";
const EVENT_COLUMNS: &str =
    "case_id, seq, at, actor, actor_id, actor_name, action, from_status, to_status, note";

/// A raw connection of either backend (the store's own `Db` does not do `COPY`).
enum Db {
    Pg(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

/// One field of PostgreSQL's `COPY … (FORMAT text)`.
fn pg_field(out: &mut String, v: Option<&str>) {
    match v {
        None => out.push_str("\\N"),
        Some(s) => {
            for ch in s.chars() {
                match ch {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

fn pg_line(out: &mut String, fields: &[Option<&str>]) {
    for (n, f) in fields.iter().enumerate() {
        if n > 0 {
            out.push('\t');
        }
        pg_field(out, *f);
    }
    out.push('\n');
}

fn time_text(t: DateTime<Utc>) -> String {
    // The store's text for SQLite (fixed width, so text order is time order); PostgreSQL
    // parses the same RFC 3339.
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The `COPY` text of a chunk of cases and of their history entries.
pub fn copy_text(rows: &[SeedCase]) -> (String, String) {
    let mut cases = String::with_capacity(rows.len() * 1200);
    let mut events = String::with_capacity(rows.len() * 300);
    for c in rows {
        let (id, account) = (c.id.to_string(), c.account.to_string());
        let dates = [c.accepted_on, c.due_on, c.legal_due_on, c.concluded_on]
            .map(|d| d.map(|d| d.format("%Y-%m-%d").to_string()));
        let (created, updated) = (time_text(c.created_at), time_text(c.updated_at));
        pg_line(
            &mut cases,
            &[
                Some(&id),
                Some(&c.case_no),
                Some(&c.query_code),
                Some(&c.service_code),
                Some(&c.service_version),
                Some(&c.department),
                Some(&account),
                Some("person"),
                Some(&c.name),
                c.id_number_sealed.as_deref(),
                c.phone_sealed.as_deref(),
                Some("online"),
                Some(c.status),
                Some(&c.form_sealed),
                dates[0].as_deref(),
                dates[1].as_deref(),
                dates[2].as_deref(),
                dates[3].as_deref(),
                c.result,
                Some(if c.events.len() > 1 { "2" } else { "1" }),
                Some(&created),
                Some(&updated),
            ],
        );
        for e in &c.events {
            let (seq, at) = (e.seq.to_string(), time_text(e.at));
            pg_line(
                &mut events,
                &[
                    Some(&id),
                    Some(&seq),
                    Some(&at),
                    Some(e.actor),
                    e.actor_id.as_deref(),
                    Some(&e.actor_name),
                    Some(e.action),
                    e.from_status,
                    Some(e.to_status),
                    e.note,
                ],
            );
        }
    }
    (cases, events)
}

impl Db {
    async fn connect(url: &str) -> anyhow::Result<Db> {
        Ok(if url.starts_with("postgres") {
            Db::Pg(sqlx::PgConnection::connect(url).await?)
        } else {
            let opts: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
            let opts = opts
                .busy_timeout(std::time::Duration::from_secs(30))
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
            Db::Sqlite(sqlx::SqliteConnection::connect_with(&opts).await?)
        })
    }

    async fn exec(&mut self, sql: &'static str) -> anyhow::Result<()> {
        match self {
            Db::Pg(c) => sqlx::query(sql).execute(c).await.map(|_| ())?,
            Db::Sqlite(c) => sqlx::query(sql).execute(c).await.map(|_| ())?,
        }
        Ok(())
    }

    async fn begin(&mut self) -> anyhow::Result<()> {
        match self {
            Db::Pg(_) => self.exec("BEGIN").await,
            Db::Sqlite(_) => self.exec("BEGIN IMMEDIATE").await,
        }
    }

    async fn commit(&mut self) -> anyhow::Result<()> {
        self.exec("COMMIT").await
    }

    async fn analyze(&mut self) -> anyhow::Result<()> {
        self.exec("ANALYZE").await
    }

    async fn close(self) {
        let _ = match self {
            Db::Pg(c) => c.close().await,
            Db::Sqlite(c) => c.close().await,
        };
    }

    /// The persona's account at `issuer` (made as a first login would leave it, minus
    /// what the login fills in), so their login finds it.
    async fn persona_account(
        &mut self,
        issuer: &str,
        subject: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Uuid> {
        let id = Uuid::now_v7();
        match self {
            Db::Pg(c) => {
                sqlx::query(
                    "INSERT INTO accounts (id, issuer, subject, kind, name, assurance, roles, created_at, last_login_at) \
                     VALUES ($1, $2, $3, 'person', $4, 2, '[]', $5, $5) ON CONFLICT (issuer, subject) DO NOTHING",
                )
                .bind(id)
                .bind(issuer)
                .bind(subject)
                .bind(name)
                .bind(now)
                .execute(&mut *c)
                .await?;
                let (id,): (Uuid,) =
                    sqlx::query_as("SELECT id FROM accounts WHERE issuer = $1 AND subject = $2")
                        .bind(issuer)
                        .bind(subject)
                        .fetch_one(&mut *c)
                        .await?;
                Ok(id)
            }
            Db::Sqlite(c) => {
                sqlx::query(
                    "INSERT INTO accounts (id, issuer, subject, kind, name, assurance, roles, created_at, last_login_at) \
                     VALUES ($1, $2, $3, 'person', $4, 2, '[]', $5, $5) ON CONFLICT (issuer, subject) DO NOTHING",
                )
                .bind(id.hyphenated().to_string())
                .bind(issuer)
                .bind(subject)
                .bind(name)
                .bind(time_text(now))
                .execute(&mut *c)
                .await?;
                let (id,): (String,) =
                    sqlx::query_as("SELECT id FROM accounts WHERE issuer = $1 AND subject = $2")
                        .bind(issuer)
                        .bind(subject)
                        .fetch_one(&mut *c)
                        .await?;
                Ok(Uuid::parse_str(&id)?)
            }
        }
    }

    /// The bench applicants' accounts (ID number and phone sealed as the account store
    /// seals them).
    async fn accounts(
        &mut self,
        accounts: &[(String, Applicant)],
        seal: &RowSeal,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let aad = |subject: &str, column: &str| {
            row_aad("accounts", column, &format!("{BENCH_ISSUER}\0{subject}"))
        };
        let now_text = time_text(now);
        self.begin().await?;
        for chunk in accounts.chunks(2_000) {
            let sealed: Vec<(String, String, Option<String>, Option<String>)> = chunk
                .iter()
                .map(|(subject, a)| {
                    (
                        a.account.to_string(),
                        subject.clone(),
                        seal.text(&aad(subject, "id_number"), Some(&a.id_number)),
                        seal.text(&aad(subject, "phone"), Some(&a.phone)),
                    )
                })
                .collect();
            match self {
                Db::Pg(c) => {
                    let mut text = String::with_capacity(chunk.len() * 400);
                    for ((id, subject, idn, phone), (_, a)) in sealed.iter().zip(chunk) {
                        pg_line(
                            &mut text,
                            &[
                                Some(id),
                                Some(BENCH_ISSUER),
                                Some(subject),
                                Some("person"),
                                Some(&a.name),
                                idn.as_deref(),
                                phone.as_deref(),
                                Some("2"),
                                Some("[]"),
                                Some(&now_text),
                                Some(&now_text),
                            ],
                        );
                    }
                    let mut copy = c
                        .copy_in_raw(
                            "COPY accounts (id, issuer, subject, kind, name, id_number, phone, assurance, roles, created_at, last_login_at) FROM STDIN",
                        )
                        .await?;
                    copy.send(text.as_bytes()).await?;
                    copy.finish().await?;
                }
                Db::Sqlite(c) => {
                    let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                        "INSERT INTO accounts (id, issuer, subject, kind, name, id_number, phone, assurance, roles, created_at, last_login_at) ",
                    );
                    qb.push_values(
                        sealed.iter().zip(chunk),
                        |mut b, ((id, subject, idn, phone), (_, a))| {
                            b.push_bind(id.clone())
                                .push_bind(BENCH_ISSUER)
                                .push_bind(subject.clone())
                                .push_bind("person")
                                .push_bind(a.name.clone())
                                .push_bind(idn.clone())
                                .push_bind(phone.clone())
                                .push_bind(2i64)
                                .push_bind("[]")
                                .push_bind(now_text.clone())
                                .push_bind(now_text.clone());
                        },
                    );
                    qb.build().execute(&mut *c).await?;
                }
            }
        }
        self.commit().await?;
        Ok(accounts.len() as u64)
    }

    /// Writes a chunk of cases with their history.
    async fn write(&mut self, rows: &[SeedCase]) -> anyhow::Result<()> {
        match self {
            Db::Pg(c) => {
                let (cases, events) = copy_text(rows);
                let mut copy = c
                    .copy_in_raw(&format!("COPY cases ({CASE_COLUMNS}) FROM STDIN"))
                    .await?;
                copy.send(cases.as_bytes()).await?;
                copy.finish().await?;
                let mut copy = c
                    .copy_in_raw(&format!("COPY case_events ({EVENT_COLUMNS}) FROM STDIN"))
                    .await?;
                copy.send(events.as_bytes()).await?;
                copy.finish().await?;
            }
            Db::Sqlite(c) => {
                // 22 binds a row: 1,000 rows stay under SQLite's 32,766 variables.
                for chunk in rows.chunks(1_000) {
                    let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
                        "INSERT INTO cases ({CASE_COLUMNS}) "
                    ));
                    qb.push_values(chunk, |mut b, c| {
                        let d = |d: Option<NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
                        b.push_bind(c.id.hyphenated().to_string())
                            .push_bind(c.case_no.clone())
                            .push_bind(c.query_code.clone())
                            .push_bind(c.service_code.clone())
                            .push_bind(c.service_version.clone())
                            .push_bind(c.department.clone())
                            .push_bind(c.account.hyphenated().to_string())
                            .push_bind("person")
                            .push_bind(c.name.clone())
                            .push_bind(c.id_number_sealed.clone())
                            .push_bind(c.phone_sealed.clone())
                            .push_bind("online")
                            .push_bind(c.status)
                            .push_bind(c.form_sealed.clone())
                            .push_bind(d(c.accepted_on))
                            .push_bind(d(c.due_on))
                            .push_bind(d(c.legal_due_on))
                            .push_bind(d(c.concluded_on))
                            .push_bind(c.result)
                            .push_bind(c.events.len() as i64)
                            .push_bind(time_text(c.created_at))
                            .push_bind(time_text(c.updated_at));
                    });
                    qb.build().execute(&mut *c).await?;
                    let events: Vec<(&SeedCase, &SeedEvent)> = chunk
                        .iter()
                        .flat_map(|c| c.events.iter().map(move |e| (c, e)))
                        .collect();
                    let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
                        "INSERT INTO case_events ({EVENT_COLUMNS}) "
                    ));
                    qb.push_values(events, |mut b, (c, e)| {
                        b.push_bind(c.id.hyphenated().to_string())
                            .push_bind(e.seq)
                            .push_bind(time_text(e.at))
                            .push_bind(e.actor)
                            .push_bind(e.actor_id.clone())
                            .push_bind(e.actor_name.clone())
                            .push_bind(e.action)
                            .push_bind(e.from_status)
                            .push_bind(e.to_status)
                            .push_bind(e.note);
                    });
                    qb.build().execute(&mut *c).await?;
                }
            }
        }
        Ok(())
    }
}

/// Builds `n` cases over `applicants` bench applicants without sealing (for tests of the
/// pure row building).
pub fn preview(n: u64, applicants: u64) -> Vec<SeedCase> {
    let plan = Plan {
        cases: n,
        applicants: (0..applicants.max(1))
            .map(|k| Applicant {
                account: Uuid::from_u128(u128::from(k) + 1),
                name: bench_applicant_name(k),
                id_number: resident_id(k),
                phone: format!("139{:08}", k),
            })
            .collect(),
        personas: vec![],
        persona_stride: u64::MAX,
        services: vec![Svc {
            code: "S".into(),
            version: "v".into(),
            department: "D".into(),
        }],
        now: Utc::now(),
    };
    (0..n).map(|i| plan.case(i, &RowSeal::default())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_identifiers_have_the_shapes_the_gateway_accepts() {
        for n in [0, 1, 7, 999, 123_456, 10_000_000] {
            let id = resident_id(n);
            assert!(
                crate::domain::ids::ResidentId::parse(&id).is_ok(),
                "{id} is a valid resident ID number"
            );
        }
        let d = NaiveDate::from_ymd_opt(2026, 1, 31).expect("date");
        let a = case_number(d, 0);
        let b = case_number(d, 29);
        let c = case_number(d, 1_000_000);
        assert!(crate::domain::case::is_case_number(&a), "{a}");
        assert!(crate::domain::case::is_case_number(&c), "{c}");
        assert_ne!(a, b);
    }

    #[test]
    fn rows_are_unique_spread_over_two_years_and_consistent() {
        let rows = preview(2_000, 50);
        let numbers: std::collections::HashSet<_> = rows.iter().map(|c| &c.case_no).collect();
        assert_eq!(numbers.len(), rows.len(), "case numbers are unique");
        let first = rows.first().expect("rows").created_at;
        let last = rows.last().expect("rows").created_at;
        assert!((last - first).num_days() >= 700, "two years of cases");
        assert!(rows.windows(2).all(|w| w[0].created_at <= w[1].created_at));
        let statuses: std::collections::HashSet<_> = rows.iter().map(|c| c.status).collect();
        for s in [
            "submitted",
            "accepted",
            "under_review",
            "approved",
            "rejected",
        ] {
            assert!(statuses.contains(s), "some {s}");
        }
        for c in &rows {
            assert_eq!(c.events[0].to_status, "submitted");
            assert_eq!(c.events.last().expect("event").to_status, c.status);
            assert_eq!(c.events.len() == 1, c.status == "submitted");
            assert_eq!(c.query_code.len(), 6);
            assert!(c.updated_at >= c.created_at);
        }
        // The COPY text has one line per case and per history entry, 22 and 10 fields.
        let (cases, events) = copy_text(&rows[..10]);
        assert_eq!(cases.lines().count(), 10);
        assert!(cases.lines().all(|l| l.split('\t').count() == 22));
        assert!(events.lines().all(|l| l.split('\t').count() == 10));
    }

    #[test]
    fn copy_text_escapes_what_the_text_format_needs() {
        let mut s = String::new();
        pg_line(&mut s, &[Some("a\tb\\c\nd"), None]);
        assert_eq!(s, "a\\tb\\\\c\\nd\t\\N\n");
    }
}
