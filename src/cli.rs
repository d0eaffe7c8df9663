//! The `onewindow` command line. `main.rs` only calls [`run`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::{Application, open_store, shutdown_signal};
use crate::config::Settings;
use crate::domain::catalogue;

/// One-window online government-service gateway (一网通办).
#[derive(Debug, Parser)]
#[command(name = "onewindow", version, about)]
pub struct Cli {
    /// A TOML configuration file (values in ONEWINDOW_* variables override it).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (HTTP server).
    Serve {
        /// A development instance: without a configured key-encryption key, one is
        /// generated into the data directory (same as development_instance = true).
        #[arg(long)]
        dev: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Validate service definitions and report every mistake (exit 1 if any).
    Check {
        /// Definitions directory (default: the configured definitions_dir).
        dir: Option<PathBuf>,
    },
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Manage department API tokens.
    Token {
        /// What to do with tokens.
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Signing keys of department deliveries.
    Keys {
        /// What to do with the keys.
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Put dead-lettered deliveries back in the queue.
    Redeliver {
        /// Event ids; or use --all-dead.
        ids: Vec<uuid::Uuid>,
        /// Every dead letter (of --department, when given).
        #[arg(long)]
        all_dead: bool,
        /// Limit --all-dead to one department.
        #[arg(long)]
        department: Option<String>,
    },
    /// Set how a department receives events: --push URL or --pull.
    Delivery {
        /// The department's 统一社会信用代码.
        department: String,
        /// Push endpoint (https).
        #[arg(long, conflicts_with = "pull")]
        push: Option<String>,
        /// Pull from the inbox.
        #[arg(long)]
        pull: bool,
    },
    /// Set (or with --remove, clear) where a department's data API is, for its shared-data
    /// resources whose access is department_api.
    DataApi {
        /// The department's 统一社会信用代码.
        department: String,
        /// Base URL (https); the gateway POSTs signed queries to
        /// `<url>/resources/<resource>/query`.
        #[arg(required_unless_present = "remove")]
        url: Option<String>,
        /// Remove the department's data API.
        #[arg(long, conflicts_with = "url")]
        remove: bool,
    },
    /// Run only the background workers, delivery and mail (no HTTP server).
    Worker,
    /// Notification mail by state: the counts, then the newest notices (no addresses),
    /// so operators see what did not go out and why.
    Mail {
        /// Only notices in this state.
        #[arg(long, value_parser = crate::store::mail::MAIL_STATES)]
        state: Option<String>,
        /// At most this many notices.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Import a CSV or JSON-lines file into the base library (基础库).
    ///
    /// Rows are checked against the resource's items (ID numbers and USCCs by their check
    /// characters, dates, numbers, phones); a row that fails is skipped and listed with its
    /// line number. A column that is not an item, or a missing key column, refuses the
    /// whole file. Importing the same file again changes nothing.
    #[command(
        after_help = "Exit status: 0 every row imported; 3 some rows rejected \
        (listed, the others imported); 1 the file was refused or the import failed."
    )]
    Import {
        /// Resource code of the information resource catalogue (person, enterprise, credit,
        /// elicence …).
        resource: String,
        /// The file: CSV with a header row, or JSON lines (one object per line).
        file: PathBuf,
        /// The file's format; by default its extension decides (.csv, .jsonl, .ndjson).
        #[arg(long, value_enum)]
        format: Option<crate::sharing::import::Format>,
    },
    /// Check the configured identity providers: discovery document, key set, scopes and
    /// claim mapping (exit 1 when something is wrong).
    Doctor,
    /// The holiday calendar (working days for due dates).
    Calendar {
        /// What to do with the calendar.
        #[command(subcommand)]
        action: CalendarAction,
    },
    /// The tamper-evident audit trail: verify it, or sign a checkpoint now.
    Audit {
        /// What to do with the trail.
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Benchmark helpers for bench/run (seeding many historical cases). Never for
    /// production data.
    #[command(hide = true)]
    Bench {
        /// What to do.
        #[command(subcommand)]
        action: crate::bench_seed::BenchAction,
    },
    /// Run the gateway with a built-in development identity provider and demo personas.
    /// Never for production.
    Demo {
        /// Where the development identity provider listens.
        #[arg(long, default_value = "127.0.0.1:8081")]
        idp_listen: std::net::SocketAddr,
    },
}

/// Calendar subcommands.
#[derive(Debug, Subcommand)]
pub enum CalendarAction {
    /// Load the State Council's holiday notice for one or more years (a file in the
    /// built-in calendar's JSON format) into the database, where every instance picks it
    /// up within a minute, and count every provisional due date again.
    Import {
        /// The calendar file.
        file: PathBuf,
    },
    /// The years the calendar covers, those still needed, and the provisional cases.
    Status,
}

/// Audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check every record and checkpoint: prints the first bad record (chain, position,
    /// what is wrong) and exits 1, or "intact, N records …, last checkpoint at T".
    Verify,
    /// Sign a checkpoint of every chain's head now (when any moved since the last).
    Checkpoint,
}

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// A new key signs from now on; the previous one stays published for the grace period.
    Rotate {
        /// How long the previous key stays valid, e.g. 7d.
        #[arg(long, default_value = "7d")]
        grace: String,
    },
    /// The published keys.
    List,
    /// Re-seal all personal data (sealed columns, base library, materials) under a new
    /// personal-data key, while the gateway keeps serving. Resumable: run it again after
    /// an interruption and it continues the rotation under way.
    RotateData {
        /// Seconds to wait for every running instance to reload the keys (at least
        /// data_key_refresh_secs; 0 when no instance is running).
        #[arg(long)]
        settle_secs: Option<u64>,
        /// Rows per statement.
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
    /// Wrap every stored key again under the current key-encryption key (after
    /// configuring a new key_encryption_key with the old one as
    /// key_encryption_key_previous).
    Rewrap,
}

/// Token subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token; it is printed once and only its hash is kept.
    Create {
        /// The department's 统一社会信用代码.
        #[arg(long)]
        department: String,
        /// Scopes, comma-separated: cases:read, cases:write, inbox, materials:read.
        #[arg(long)]
        scope: String,
        /// What the token is for (shown in lists).
        #[arg(long, default_value = "department system")]
        name: String,
        /// Lifetime such as 365d or 12h; no expiry when omitted.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke {
        /// Token id from `token list`.
        id: uuid::Uuid,
    },
}

/// Parses arguments and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { dir: Some(dir) } => check(&dir),
        command => {
            let settings = match Settings::load(cli.config.as_deref()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("onewindow: {e}");
                    return ExitCode::from(2);
                }
            };
            match command {
                Command::Check { dir } => {
                    check(dir.as_deref().unwrap_or(&settings.server.definitions_dir))
                }
                Command::Config => {
                    print!("{}", settings.redacted());
                    ExitCode::SUCCESS
                }
                Command::Doctor => block_on_status(doctor(settings)),
                Command::Serve { dev } => {
                    let mut settings = settings;
                    settings.keys.development_instance |= dev;
                    block_on(serve(settings))
                }
                Command::Migrate => block_on(migrate(settings)),
                Command::Token { action } => block_on(token(settings, action)),
                Command::Keys { action } => block_on(keys(settings, action)),
                Command::Audit { action } => block_on_status(audit(settings, action)),
                Command::Redeliver {
                    ids,
                    all_dead,
                    department,
                } => block_on(redeliver(settings, ids, all_dead, department)),
                Command::Delivery {
                    department,
                    push,
                    pull,
                } => block_on(delivery(settings, department, push, pull)),
                Command::DataApi {
                    department, url, ..
                } => block_on(data_api(settings, department, url)),
                Command::Worker => block_on(worker(settings)),
                Command::Mail { state, limit } => block_on(mail(settings, state, limit)),
                Command::Demo { idp_listen } => block_on(crate::demo::run(settings, idp_listen)),
                Command::Bench { action } => block_on(crate::bench_seed::run_cli(settings, action)),
                Command::Calendar { action } => block_on(calendar(settings, action)),
                Command::Import {
                    resource,
                    file,
                    format,
                } => block_on_status(import(settings, resource, file, format)),
            }
        }
    }
}

fn block_on(fut: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    block_on_status(async { fut.await.map(|()| ExitCode::SUCCESS) })
}

/// Runs a command that chooses its own exit status when it succeeds.
fn block_on_status(fut: impl Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("onewindow: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(fut) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("onewindow: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init(&settings);
    let app = Application::build(settings).await?;
    app.run_until(shutdown_signal()).await
}

/// Exit status of an import that rejected some rows.
const EXIT_REJECTED: u8 = 3;

async fn import(
    settings: Settings,
    resource: String,
    file: PathBuf,
    format: Option<crate::sharing::import::Format>,
) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;

    use crate::sharing::import;

    let catalogue = crate::app::load_catalogue(&settings)?;
    let resource = import::importable_resource(&catalogue, &resource)?;
    let format = import::resolve_format(&file, format)?;
    let len = std::fs::metadata(&file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?
        .len();
    let store = open_store(&settings).await?;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(len).with_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})",
            )?
            .progress_chars("=> "),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_message(resource.code.clone());
    let (_, sealer) = crate::app::personal_data_keys(&settings, store.as_ref()).await?;
    let base = crate::sharing::provider::BaseLibrary::new(store.clone(), sealer);
    let result = import::import_file(&base, &resource, &file, Some(format), &|n| {
        bar.set_position(n)
    })
    .await;
    bar.finish_and_clear();
    store.close().await;
    let report = result?;
    println!("{}", report.summary(&resource.code));
    for (line, reason) in &report.rejected {
        println!("line {line}: {reason}");
    }
    Ok(if report.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REJECTED)
    })
}

/// `onewindow doctor`: one line per finding, exit 1 when any is a failure.
async fn doctor(settings: Settings) -> anyhow::Result<ExitCode> {
    use crate::auth::doctor::Severity;
    let report = crate::auth::doctor::run(&settings).await;
    if report.is_empty() {
        println!("no identity provider is configured (oidc_issuer): login is off");
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = false;
    for (audience, issuer, findings) in report {
        println!("{audience} identity provider {issuer}");
        for f in findings {
            let mark = match f.severity {
                Severity::Ok => "ok  ",
                Severity::Note => "note",
                Severity::Fail => {
                    failed = true;
                    "FAIL"
                }
            };
            println!("  {mark} {}", f.text);
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init(&settings);
    let mut settings = settings;
    settings.database.migrate_on_start = false;
    let store = open_store(&settings).await?;
    let n = store.migrate().await?;
    println!(
        "{} migration(s) applied to the {} database",
        n,
        store.backend()
    );
    store.close().await;
    Ok(())
}

async fn token(settings: Settings, action: TokenAction) -> anyhow::Result<()> {
    use crate::auth::tokens;
    use crate::domain::ids::Uscc;

    let store = open_store(&settings).await?;
    let catalogue = crate::app::load_catalogue(&settings)?;
    let now = chrono::Utc::now();
    match action {
        TokenAction::Create {
            department,
            scope,
            name,
            expires_in,
        } => {
            let uscc = Uscc::parse(&department)
                .map_err(|e| anyhow::anyhow!("--department is not a valid USCC: {e}"))?;
            if catalogue.department(uscc.as_str()).is_none() {
                anyhow::bail!("--department {uscc} is not in departments.toml");
            }
            let scopes =
                tokens::parse_scopes(&scope).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
            let expires_at = match expires_in {
                Some(l) => Some(
                    now + tokens::parse_lifetime(&l)
                        .map_err(|e| anyhow::anyhow!("--expires-in: {e}"))?,
                ),
                None => None,
            };
            let (t, secret) =
                tokens::issue(store.as_ref(), uscc.as_str(), scopes, name, expires_at, now).await?;
            eprintln!(
                "token {} created for {} with scopes {}{}. It is shown only this once:",
                t.id,
                t.department,
                t.scopes.join(","),
                t.expires_at
                    .map(|e| format!(", expiring {e}"))
                    .unwrap_or_default()
            );
            println!("{secret}");
        }
        TokenAction::List => {
            println!(
                "{:<36}  {:<18}  {:<8}  {:<40}  name",
                "id", "department", "state", "scopes"
            );
            for t in store.api_tokens().await? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if !t.is_active(now) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<36}  {:<18}  {:<8}  {:<40}  {}",
                    t.id,
                    t.department,
                    state,
                    t.scopes.join(","),
                    t.name
                );
            }
        }
        TokenAction::Revoke { id } => {
            if store.revoke_api_token(id, now).await? {
                println!("token {id} revoked");
            } else {
                anyhow::bail!("no active token {id}");
            }
        }
    }
    store.close().await;
    Ok(())
}

async fn audit(settings: Settings, action: AuditAction) -> anyhow::Result<ExitCode> {
    let store = open_store(&settings).await?;
    let keys = crate::audit::load_keys(&settings)?;
    store.set_audit_key(keys.link_key().to_vec());
    let code = match action {
        AuditAction::Verify => {
            let report = crate::audit::verify(store.as_ref(), &keys).await?;
            println!("{report}");
            if report.is_intact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        AuditAction::Checkpoint => {
            match crate::audit::checkpoint(store.as_ref(), &keys, chrono::Utc::now()).await? {
                Some(cp) => println!(
                    "checkpoint {} signed: {} records in {} chains, root {}",
                    cp.seq, cp.records, cp.chains, cp.root
                ),
                None => println!("nothing new to sign"),
            }
            ExitCode::SUCCESS
        }
    };
    store.close().await;
    Ok(code)
}

async fn keys(settings: Settings, action: KeysAction) -> anyhow::Result<()> {
    if let KeysAction::RotateData { settle_secs, batch } = action {
        crate::telemetry::init(&settings);
        let settle = settle_secs.unwrap_or(settings.keys.data_key_refresh_secs * 2 + 5);
        let state = Application::build_state(settings).await?;
        let report = crate::datakeys::rotate_data(
            &state,
            crate::datakeys::RotateOptions {
                settle: std::time::Duration::from_secs(settle),
                batch,
            },
            &mut |line| println!("{line}"),
        )
        .await;
        state.store.close().await;
        let report = report?;
        let total: u64 = report.resealed.iter().map(|(_, n)| n).sum();
        println!(
            "re-sealed {total} of {} values under data key {}",
            report.seen, report.current
        );
        return Ok(());
    }
    let store = open_store(&settings).await?;
    if let KeysAction::Rewrap = action {
        let kek = crate::kek::from_settings(&settings)?
            .ok_or_else(|| anyhow::anyhow!(crate::kek::NO_KEK))?;
        let n = store.rewrap_keys().await?;
        println!(
            "{n} stored key(s) wrapped again under the key-encryption key {}",
            kek.id()
        );
        store.close().await;
        return Ok(());
    }
    let now = chrono::Utc::now();
    let ring = match action {
        KeysAction::Rotate { grace } => {
            let grace = crate::auth::tokens::parse_lifetime(&grace)
                .map_err(|e| anyhow::anyhow!("--grace: {e}"))?;
            let ring = crate::exchange::keys::rotate(store.as_ref(), now, grace).await?;
            println!(
                "rotated: {} signs from now on (running instances pick it up within a minute)",
                ring.current().kid
            );
            ring
        }
        KeysAction::List => crate::exchange::keys::load(store.as_ref(), now).await?,
        KeysAction::RotateData { .. } | KeysAction::Rewrap => unreachable!("handled above"),
    };
    for k in ring.keys() {
        let current = if k.kid == ring.current().kid {
            "current"
        } else {
            "previous"
        };
        println!(
            "{}  {current:<8}  created {}  {}",
            k.kid,
            k.created_at.format("%Y-%m-%d %H:%M"),
            k.retires_at
                .map(|r| format!("retires {}", r.format("%Y-%m-%d %H:%M")))
                .unwrap_or_default()
        );
    }
    store.close().await;
    Ok(())
}

async fn redeliver(
    settings: Settings,
    ids: Vec<uuid::Uuid>,
    all_dead: bool,
    department: Option<String>,
) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    store.set_audit_key(crate::audit::load_keys(&settings)?.link_key().to_vec());
    let mut ids = ids;
    if all_dead {
        let dead = store
            .deliveries(&crate::store::DeliveryFilter {
                state: Some("dead".into()),
                department,
                case_id: None,
                after: None,
                limit: 100_000,
            })
            .await?;
        ids.extend(dead.into_iter().map(|d| d.id));
    }
    if ids.is_empty() {
        anyhow::bail!("nothing to redeliver: give event ids or --all-dead");
    }
    let mut n = 0;
    for id in &ids {
        if store.redeliver(*id).await? {
            crate::audit::redelivered(store.as_ref(), &crate::audit::Who::system("cli"), *id)
                .await?;
            n += 1;
        } else {
            eprintln!("{id}: not a dead letter, left alone");
        }
    }
    println!("{n} delivery(ies) queued again");
    store.close().await;
    Ok(())
}

async fn delivery(
    settings: Settings,
    department: String,
    push: Option<String>,
    pull: bool,
) -> anyhow::Result<()> {
    if push.is_none() && !pull {
        anyhow::bail!("give --push URL or --pull");
    }
    let app = crate::app::Application::build(settings.with_listen("127.0.0.1:0".parse()?)).await?;
    let state = app.state();
    let mode = if pull { "pull" } else { "push" };
    let who = crate::audit::Who::system("cli");
    let e = crate::http::dept::set_delivery_as(&state, &who, &department, mode, push)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{} receives events by {}{}",
        e.department,
        e.mode,
        e.endpoint.map(|u| format!(" at {u}")).unwrap_or_default()
    );
    state.store.close().await;
    Ok(())
}

async fn data_api(
    settings: Settings,
    department: String,
    url: Option<String>,
) -> anyhow::Result<()> {
    let app = crate::app::Application::build(settings.with_listen("127.0.0.1:0".parse()?)).await?;
    let state = app.state();
    if state.catalogue.department(&department).is_none() {
        anyhow::bail!("there is no department {department} in departments.toml");
    }
    let url = match url {
        Some(u) => Some(
            crate::http::sharing::check_data_api_url(&state, &u)
                .map_err(|m| anyhow::anyhow!("{} ({})", m.en, m.zh))?,
        ),
        None => None,
    };
    state
        .store
        .set_data_api(&department, url.as_deref())
        .await?;
    crate::audit::action(
        &state,
        &crate::audit::Who::system("cli"),
        "data_api.set",
        format!("department:{department}"),
        &department,
        serde_json::json!({ "url": url }),
    )
    .await?;
    match url {
        Some(u) => println!("{department} answers data queries at {u}"),
        None => println!("{department} has no data API now"),
    }
    state.store.close().await;
    Ok(())
}

async fn worker(settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init(&settings);
    let app = crate::app::Application::build(settings.with_listen("127.0.0.1:0".parse()?)).await?;
    let token = tokio_util::sync::CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.cancel();
    });
    tracing::info!("delivery and mail workers running");
    tokio::join!(
        crate::exchange::worker::run(app.state(), token.clone()),
        crate::notify::run(app.state(), token)
    );
    Ok(())
}

async fn mail(settings: Settings, state: Option<String>, limit: i64) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let c = store.mail_counts().await?;
    println!(
        "pending {}  sent {}  failed {}  none {}",
        c.pending, c.sent, c.failed, c.none
    );
    for m in store.mail(state.as_deref(), limit.max(1)).await? {
        let time =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut line = format!(
            "{}  {}  {:<7}  attempts {}",
            time(m.created_at),
            m.case_no,
            m.state,
            m.attempts
        );
        if let Some(e) = &m.last_error {
            line.push_str(&format!("  error: {e}"));
        }
        if let Some(t) = m.next_attempt_at {
            line.push_str(&format!("  next: {}", time(t)));
        }
        println!("{line}");
    }
    store.close().await;
    Ok(())
}

fn check(dir: &std::path::Path) -> ExitCode {
    // The regional platform's field mapping, when the directory has one.
    let mapping = dir.join("region-mapping.toml");
    let mapping_ok = match mapping
        .exists()
        .then(|| crate::region::mapping::RegionMapping::load(&mapping))
    {
        Some(Err(errors)) => {
            for e in &errors {
                println!("{}: {e}", mapping.display());
            }
            eprintln!("{} error(s) in {}", errors.len(), mapping.display());
            false
        }
        _ => true,
    };
    match catalogue::load_dir(dir) {
        Ok(_) if !mapping_ok => ExitCode::FAILURE,
        Ok(c) => {
            println!(
                "{}: ok — {} services, {} departments, {} shared-data resources",
                dir.display(),
                c.services().len(),
                c.departments().len(),
                c.resources().len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                println!("{}/{e}", dir.display());
            }
            let files: std::collections::BTreeSet<&str> =
                errors.iter().map(|e| e.file.as_str()).collect();
            eprintln!(
                "{} error(s) in {} file(s) under {}",
                errors.len(),
                files.len(),
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// `onewindow calendar import|status`.
async fn calendar(settings: Settings, action: CalendarAction) -> anyhow::Result<()> {
    use crate::domain::calendar::HolidayCalendar;
    use crate::usecases::dates;
    use anyhow::Context;
    let store = open_store(&settings).await?;
    let today = crate::usecases::today();
    match action {
        CalendarAction::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let cal = HolidayCalendar::from_json(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let years: Vec<(i32, String)> = cal
                .years()
                .into_iter()
                .filter_map(|y| cal.year_json(y).map(|j| (y, j)))
                .collect();
            if years.is_empty() {
                anyhow::bail!("{}: the file holds no year", file.display());
            }
            store
                .save_calendar_years(&years, chrono::Utc::now())
                .await?;
            let catalogue = crate::app::load_catalogue(&settings)?;
            let merged = dates::load_calendar(&settings, store.as_ref()).await?;
            let r = dates::recount_provisional(store.as_ref(), &catalogue, &merged, today).await?;
            let list: Vec<String> = years.iter().map(|(y, _)| y.to_string()).collect();
            println!("imported the holiday calendar for {}", list.join(", "));
            println!(
                "provisional due dates counted again: {} cases, {} now final, {} still provisional, {} left for the gateway's next pass",
                r.checked, r.settled, r.still_provisional, r.skipped
            );
            let missing = merged.years_needed(today);
            if !missing.is_empty() {
                println!("still missing: {missing:?}");
            }
        }
        CalendarAction::Status => {
            let cal = dates::load_calendar(&settings, store.as_ref()).await?;
            let years = cal.years();
            println!(
                "covered: {}",
                years
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let missing = cal.years_needed(today);
            if missing.is_empty() {
                println!("needed soon: none");
            } else {
                println!(
                    "needed soon: {missing:?} (import with `onewindow calendar import <file>`)"
                );
            }
            println!(
                "provisional cases: {}",
                store.provisional_cases().await?.len()
            );
        }
    }
    store.close().await;
    Ok(())
}
