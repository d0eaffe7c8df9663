//! Identifier parsing: any text is refused with a message or parsed into an identifier
//! whose masked form and birth date can be had, and which parses again to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onewindow::domain::ids::{ResidentId, Uscc};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ResidentId::parse(text) {
        Ok(id) => {
            let _ = id.masked();
            let _ = id.birth_date();
            let again = ResidentId::parse(id.expose()).expect("a parsed ID number parses again");
            assert_eq!(again.expose(), id.expose());
        }
        Err(e) => {
            let _ = e.message_zh();
            let _ = e.to_string();
        }
    }
    match Uscc::parse(text) {
        Ok(code) => {
            let again = Uscc::parse(code.as_str()).expect("a parsed USCC parses again");
            assert_eq!(again.as_str(), code.as_str());
        }
        Err(e) => {
            let _ = e.message_zh();
            let _ = e.to_string();
        }
    }
});
