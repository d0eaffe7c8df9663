//! onewindow — a one-window online government-service gateway (一网通办).
//!
//! The library holds everything; the `onewindow` binary is a thin command line over it,
//! so tests exercise exactly the wiring production runs. See `ARCHITECTURE.md`.

pub mod app;
pub mod audit;
pub mod auth;
pub mod bench_seed;
pub mod cache;
pub mod cli;
pub mod config;
pub mod content_check;
pub mod datakeys;
pub mod demo;
pub mod demo_departments;
pub mod demo_region;
pub mod demo_seed;
pub mod devidp;
pub mod domain;
pub mod exchange;
pub mod files;
pub mod http;
pub mod kek;
pub mod notify;
pub mod open;
pub mod region;
pub mod sharing;
pub mod state;
pub mod store;
pub mod supervision;
pub mod telemetry;
pub mod usecases;

/// Installs rustls's ring provider as the process default (once; later calls do nothing).
/// reqwest 0.13 is built with `rustls-no-provider` (so no aws-lc C build is needed), and
/// a client built before a provider is installed panics: every entry point that may build
/// one (the application, the file stores, tests) calls this first.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
