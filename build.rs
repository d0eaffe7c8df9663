//! Build-time work: the page templates, and whether PostgreSQL and Redis are there to
//! test against.

/// The variables that point the tests at PostgreSQL and Redis.
const TEST_BACKENDS: [&str; 2] = ["ONEWINDOW_TEST_DATABASE_URL", "ONEWINDOW_TEST_REDIS_URL"];

fn main() {
    // Every page template is compiled into the binary, so an installed gateway (or the
    // development provider) serves its pages from any working directory. The macro also
    // tells cargo to rebuild when a template changes.
    minijinja_embed::embed_templates!("frontend/templates", &[".html"][..]);
    embed_dir("frontend/messages", "toml", "messages.rs");
    embed_dir("frontend/static", "", "static_files.rs");
    test_backends();
    println!("cargo::rerun-if-changed=build.rs");
}

/// Writes `$OUT_DIR/<out>`: a `&[(&str, &[u8])]` of every file in `dir` whose name ends
/// in `ext` (any file when empty), by its name there, each `include_bytes!`'d so the
/// binary carries it and cargo rebuilds when it changes. The message catalogue and the
/// stylesheet, script and images of the pages are embedded this way.
fn embed_dir(dir: &str, ext: &str, out: &str) {
    let root = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"))
        .join(dir);
    println!("cargo::rerun-if-changed={dir}");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext) && !n.starts_with('.'))
        .collect();
    names.sort();
    let mut code = String::from("&[\n");
    for name in names {
        let path = root.join(&name);
        println!("cargo::rerun-if-changed={}", path.display());
        code.push_str(&format!(
            "    ({name:?}, include_bytes!({:?}) as &[u8]),\n",
            path.display().to_string()
        ));
    }
    code.push_str("]\n");
    let out_dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    std::fs::write(std::path::Path::new(&out_dir).join(out), code).expect("write embed list");
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
