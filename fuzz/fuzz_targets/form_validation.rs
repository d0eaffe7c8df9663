//! Form validation: any JSON object as the values of any service of the real catalogue is
//! validated without a panic; what passes is valid again (validation is idempotent).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use onewindow::domain::catalogue::{Catalogue, load_dir};
use onewindow::domain::form::validate_form;

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../service-definitions");
    load_dir(&dir).expect("the service definitions are valid")
});

fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else {
        return;
    };
    let Ok(serde_json::Value::Object(values)) = serde_json::from_slice(json) else {
        return;
    };
    let services = CATALOGUE.services();
    let service = &services[usize::from(pick) % services.len()];
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).expect("date");
    if let Ok(clean) = validate_form(service, &values, today) {
        let again = validate_form(service, &clean, today);
        assert!(again.is_ok(), "valid values are valid again: {again:?}");
    }
});
