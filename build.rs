//! Tells the integration tests whether PostgreSQL and Redis are there to test against.
//!
//! libtest decides at compile time whether a test is ignored, so the PostgreSQL + Redis
//! copies of the tests can only be reported as "ignored, not configured" (rather than
//! passing without running) when the build knows whether the servers are configured. The
//! `external_backends` cfg is set when both `ONEWINDOW_TEST_DATABASE_URL` and
//! `ONEWINDOW_TEST_REDIS_URL` are; changing either rebuilds, so a test run always matches
//! the environment it was started in.

const VARS: [&str; 2] = ["ONEWINDOW_TEST_DATABASE_URL", "ONEWINDOW_TEST_REDIS_URL"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(external_backends)");
    for var in VARS {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let set: Vec<&str> = VARS
        .into_iter()
        .filter(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
        .collect();
    match set.len() {
        2 => println!("cargo::rustc-cfg=external_backends"),
        1 => println!(
            "cargo::warning=only {} is set; the PostgreSQL + Redis tests need both {} and {}, \
             so they are ignored",
            set[0], VARS[0], VARS[1]
        ),
        _ => {}
    }
    println!("cargo::rerun-if-changed=build.rs");
}
