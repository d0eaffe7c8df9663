//! Service definitions: any text as a service file beside the real departments and data
//! catalogue is parsed and checked without a panic (refused with messages, or accepted
//! into a catalogue whose forms validate an empty submission without a panic).
#![no_main]

use libfuzzer_sys::fuzz_target;
use onewindow::domain::catalogue::load_texts;
use onewindow::domain::form::validate_form;

const DEPARTMENTS: &str = include_str!("../../service-definitions/departments.toml");
const CATALOGUE: &str = include_str!("../../service-definitions/data-catalogue.toml");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match load_texts(DEPARTMENTS, CATALOGUE, &[("fuzz.toml", text)]) {
        Ok(c) => {
            let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).expect("date");
            for s in c.services() {
                let _ = validate_form(s, &serde_json::Map::new(), today);
            }
        }
        Err(errors) => assert!(!errors.is_empty()),
    }
});
