//! Service definitions: any text as one more service file beside the real departments,
//! data catalogue and services is parsed and checked without a panic (refused with
//! messages, or accepted into a catalogue whose forms validate an empty submission
//! without a panic).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use onewindow::domain::catalogue::load_texts;
use onewindow::domain::form::validate_form;

const DEPARTMENTS: &str = include_str!("../../service-definitions/departments.toml");
const CATALOGUE: &str = include_str!("../../service-definitions/data-catalogue.toml");

/// The real service files (the data catalogue grants reference them).
static SERVICES: LazyLock<Vec<(String, String)>> = LazyLock::new(|| {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../service-definitions/services");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("services")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("read"))
        })
        .collect();
    files.sort();
    files
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut files: Vec<(&str, &str)> = SERVICES.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    files.push(("zz-fuzz.toml", text));
    match load_texts(DEPARTMENTS, CATALOGUE, &files) {
        Ok(c) => {
            let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).expect("date");
            for s in c.services() {
                let _ = validate_form(s, &serde_json::Map::new(), today);
            }
        }
        Err(errors) => assert!(!errors.is_empty()),
    }
});
