//! The message catalogue of the pages: every text a page prints by itself comes from
//! `frontend/messages/<area>.toml`, in zh-CN and en, so a page renders wholly in one
//! language. A key is `<area>.<name>` (`common.log_in`); a message may name values in
//! braces (`共 {n} 件`) that the template passes: `t("cases.count", n=3)`.
//!
//! A file holds one table per message:
//!
//! ```toml
//! [log_in]
//! zh = "登录"
//! en = "Log in"
//! ```
//!
//! A key a template uses but the catalogue lacks fails the render (and the tests), it
//! never prints the key to a citizen.

use std::collections::HashMap;
use std::sync::LazyLock;

use minijinja::value::Kwargs;
use minijinja::{Error, ErrorKind, State};
use serde::Deserialize;

use crate::domain::lang::Lang;

/// The catalogue files, by name (`common.toml`), embedded by `build.rs`.
const FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/messages.rs"));

/// One message in both languages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// 简体中文.
    pub zh: String,
    /// English.
    pub en: String,
}

impl Message {
    /// The text in a language.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }
}

/// Every message, by `<area>.<name>`.
pub static CATALOGUE: LazyLock<HashMap<String, Message>> =
    LazyLock::new(|| parse(FILES).unwrap_or_else(|e| panic!("message catalogue: {e}")));

fn parse(files: &[(&str, &[u8])]) -> Result<HashMap<String, Message>, String> {
    let mut all = HashMap::new();
    for (name, bytes) in files {
        let area = name.strip_suffix(".toml").unwrap_or(name);
        let text = std::str::from_utf8(bytes).map_err(|e| format!("{name}: {e}"))?;
        let table: HashMap<String, Message> =
            toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        for (key, m) in table {
            if m.zh.trim().is_empty() || m.en.trim().is_empty() {
                return Err(format!("{name}: {key} lacks a text in one language"));
            }
            all.insert(format!("{area}.{key}"), m);
        }
    }
    Ok(all)
}

/// A message in a language with its values filled in; `None` for an unknown key.
pub fn text(lang: Lang, key: &str, args: &[(&str, String)]) -> Option<String> {
    let m = CATALOGUE.get(key)?;
    let mut out = m.get(lang).to_owned();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    Some(out)
}

/// The language a template renders in: its `lang` variable (`zh-CN` or `en`).
pub fn lang_of_state(state: &State) -> Lang {
    match state.lookup("lang").as_ref().and_then(|v| v.as_str()) {
        Some("en") => Lang::En,
        _ => Lang::Zh,
    }
}

/// `t("area.name", n=3)`: the message in the page's language.
pub fn t(state: &State, key: &str, kwargs: Kwargs) -> Result<String, Error> {
    let lang = lang_of_state(state);
    let mut args = Vec::new();
    for name in kwargs.args() {
        let v: minijinja::Value = kwargs.get(name)?;
        args.push((name, v.to_string()));
    }
    text(lang, key, &args).ok_or_else(|| {
        Error::new(
            ErrorKind::UndefinedError,
            format!("no message `{key}` in frontend/messages"),
        )
    })
}

/// `tr(zh, en)`: data held in both languages (a service's name), in the page's
/// language; an empty English text falls back to the Chinese one.
pub fn tr(state: &State, zh: Option<String>, en: Option<String>) -> String {
    let zh = zh.unwrap_or_default();
    let en = en.unwrap_or_default();
    lang_of_state(state).pick(&zh, &en).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_parses_and_every_message_has_both_languages() {
        assert!(!CATALOGUE.is_empty());
        for (key, m) in CATALOGUE.iter() {
            assert!(!m.zh.is_empty() && !m.en.is_empty(), "{key}");
        }
        assert_eq!(
            text(Lang::En, "common.log_in", &[]).as_deref(),
            Some("Log in")
        );
    }

    #[test]
    fn values_fill_their_places() {
        let files: &[(&str, &[u8])] = &[(
            "x.toml",
            "[count]\nzh = \"共 {n} 件\"\nen = \"{n} cases\"\n".as_bytes(),
        )];
        let all = parse(files).expect("parses");
        assert!(all.contains_key("x.count"));
        let m = &all["x.count"];
        assert_eq!(m.get(Lang::En).replace("{n}", "3"), "3 cases");
    }

    #[test]
    fn a_message_without_english_is_refused() {
        let files: &[(&str, &[u8])] = &[("x.toml", "[a]\nzh = \"甲\"\nen = \"\"\n".as_bytes())];
        assert!(parse(files).is_err());
    }

    /// Every `t("…")` in a template names a message the catalogue holds, so no page
    /// can fail to render for a missing text.
    #[test]
    fn every_key_a_template_uses_exists() {
        let re = regex::Regex::new(r#"\bt\(\s*"([a-z0-9_]+\.[a-z0-9_.]+)""#).expect("regex");
        let mut missing = Vec::new();
        for (name, source) in crate::http::pages::template_sources() {
            for cap in re.captures_iter(&source) {
                if !CATALOGUE.contains_key(&cap[1]) {
                    missing.push(format!("{name}: {}", &cap[1]));
                }
            }
        }
        assert!(missing.is_empty(), "messages missing: {missing:#?}");
    }
}
