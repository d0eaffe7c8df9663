//! Build-time work: the page templates, and whether PostgreSQL and Redis are there to
//! test against.

/// The variables that point the tests at PostgreSQL and Redis.
const TEST_BACKENDS: [&str; 2] = ["ONEWINDOW_TEST_DATABASE_URL", "ONEWINDOW_TEST_REDIS_URL"];

fn main() {
    // Every page template is compiled into the binary, so an installed gateway (or the
    // development provider) serves its pages from any working directory. The macro also
    // tells cargo to rebuild when a template changes.
    minijinja_embed::embed_templates!("frontend/templates", &[".html"][..]);
    test_backends();
    println!("cargo::rerun-if-changed=build.rs");
}

/// libtest decides at compile time whether a test is ignored, so the PostgreSQL + Redis
/// copies of the tests can only be reported as "ignored, not configured" (rather than
/// passing without having run) when the build knows whether the servers are configured.
/// The `external_backends` cfg is set when both variables are; changing either rebuilds,
/// so a test run always matches the environment it was started in.
fn test_backends() {
    println!("cargo::rustc-check-cfg=cfg(external_backends)");
    for var in TEST_BACKENDS {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let set: Vec<&str> = TEST_BACKENDS
        .into_iter()
        .filter(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
        .collect();
    match set.len() {
        2 => println!("cargo::rustc-cfg=external_backends"),
        1 => println!(
            "cargo::warning=only {} is set; the PostgreSQL + Redis tests need both {} and {}, \
             so they are ignored",
            set[0], TEST_BACKENDS[0], TEST_BACKENDS[1]
        ),
        _ => {}
    }
}
