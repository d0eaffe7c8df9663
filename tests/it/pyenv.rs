#![allow(dead_code)] // each tool is used by the tests that need it
//! Python tools the tests use as real clients (from PyPI, pinned in
//! `tests/py/requirements.txt`), installed by the tests themselves into `tests/py/.venv`
//! the first time a test needs one: once per test process, under a file lock so parallel
//! test processes do not race, and again only when the requirements change (their
//! SHA-256 is kept in the venv as `requirements.sha256`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

const NEED_PYTHON: &str =
    "install Python 3 with venv and pip (Debian: apt-get install python3 python3-venv)";

/// `tests/py`.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("py")
}

/// The venv's `bin/` program `name` (e.g. `ckanapi`, `python`), installing the pinned
/// requirements first if they are not there. Panics with what to install when Python or
/// a package cannot be had: a test that needs a tool fails rather than passing without it.
pub fn tool(name: &str) -> PathBuf {
    static DONE: OnceLock<Mutex<Option<Result<(), String>>>> = OnceLock::new();
    let mut done = DONE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Err(e) = done.get_or_insert_with(install) {
        panic!("{e}");
    }
    let path = dir().join(".venv").join("bin").join(name);
    assert!(path.exists(), "{} is not in tests/py/.venv", name);
    path
}

fn wanted() -> Result<String, String> {
    let req = std::fs::read(dir().join("requirements.txt"))
        .map_err(|e| format!("tests/py/requirements.txt: {e}"))?;
    Ok(hex::encode(Sha256::digest(&req)))
}

fn current(venv: &Path) -> Option<String> {
    std::fs::read_to_string(venv.join("requirements.sha256"))
        .ok()
        .map(|s| s.trim().to_owned())
}

fn install() -> Result<(), String> {
    let venv = dir().join(".venv");
    let want = wanted()?;
    if current(&venv).as_deref() == Some(want.as_str()) {
        return Ok(());
    }
    let lock_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-venv.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("lock {}: {e}", lock_path.display()))?;
    if current(&venv).as_deref() == Some(want.as_str()) {
        return Ok(());
    }
    let run = |cmd: &mut Command, what: &str| -> Result<(), String> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {what} ({e}): {NEED_PYTHON}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    if !venv.join("bin").join("pip").exists() {
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv tests/py/.venv",
        )?;
    }
    run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(dir().join("requirements.txt")),
        "pip install -r tests/py/requirements.txt",
    )?;
    std::fs::write(venv.join("requirements.sha256"), &want)
        .map_err(|e| format!("{}: {e}", venv.display()))?;
    Ok(())
    // The lock is released when `lock` is dropped.
}
