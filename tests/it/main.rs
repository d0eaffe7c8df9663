//! Integration tests: the gateway through HTTP on a real port, the stores and caches
//! through their traits, and the `onewindow` binary as an operator runs it.

mod dept_server;
mod harness;
mod login;
mod oidc_provider;
mod proxy;
mod pyenv;
mod smtp_sink;

mod apply_pages;
mod audit;
mod bench_seed;
mod browser;
mod cache;
mod cases;
mod cat_mgmt;
mod catalogue_api;
mod citizen_pages;
mod clerk_pages;
mod cli;
mod demo_departments;
mod demo_seed;
mod desk_pages;
mod e2e;
mod exchange;
mod hard_dates;
mod hard_deliv;
mod hard_edge;
mod hard_keys;
mod identity;
mod import;
mod lists;
mod mail;
mod open_data;
mod openapi;
mod ops;
mod ops_pages;
mod real_provider;
mod region;
mod sharing;
mod sharing_grants;
mod store;
mod sup_figures;
mod sup_filings;
mod sup_systems;
