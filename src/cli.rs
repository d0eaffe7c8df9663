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
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Validate service definitions and report every mistake (exit 1 if any).
    Check {
        /// Definitions directory (default: the configured definitions_dir).
        dir: Option<PathBuf>,
    },
    /// Print the effective configuration, secrets redacted.
    Config,
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
                    check(dir.as_deref().unwrap_or(&settings.definitions_dir))
                }
                Command::Config => {
                    print!("{}", settings.redacted());
                    ExitCode::SUCCESS
                }
                Command::Serve => block_on(serve(settings)),
                Command::Migrate => block_on(migrate(settings)),
            }
        }
    }
}

fn block_on(fut: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
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
        Ok(()) => ExitCode::SUCCESS,
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

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init(&settings);
    let mut settings = settings;
    settings.migrate_on_start = false;
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

fn check(dir: &std::path::Path) -> ExitCode {
    match catalogue::load_dir(dir) {
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
