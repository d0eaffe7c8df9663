//! `onewindow import`: CSV or JSON lines into the base library.
//!
//! A resource of the information resource catalogue whose `access` is `base_library` is
//! held by the gateway itself; providers hand it over as files and an operator loads them
//! with `onewindow import <resource> <file>`. This module has two halves:
//!
//! - pure parsing: [`check_columns`] decides whether a file's columns fit the resource
//!   (a file with a column that is not an item, or without its key, is refused whole), and
//!   [`parse_row`] turns one row into a [`BaseRecord`] or a one-line reason;
//! - [`import_file`], which streams a file through them and upserts batches of
//!   [`BATCH`] records. Rows that fail are skipped and listed in the [`ImportReport`] with
//!   their line numbers. Re-importing the same file writes nothing.
//!
//! Shapes of a row:
//!
//! - an ordinary resource has one row per subject, keyed by `id_number` (subject person,
//!   GB 11643 check digit) or `uscc` (subject enterprise, GB 32100 check character); the
//!   other columns are item ids, each checked against the item's data type. An empty
//!   cell leaves the item out.
//! - a licence library (电子证照, [`Resource::is_licence_library`]) has one row per
//!   licence: `holder`, `licence` (the licence item), `licence_no`, `issuer`, and the
//!   optional `issued_on`, `valid_until` (a date or 长期) and `holder_name`. The holder is
//!   a resident ID number or a USCC according to whose licence it is.
//!
//! Reasons never carry personal data in full: a resident ID number shows as its first 6
//! and last 4 characters, and other personal values are not repeated at all.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use regex::Regex;
use serde_json::{Map, Number, Value};

use super::provider::BaseLibrary;
use crate::domain::catalogue::{
    Access, Catalogue, DataItem, DataType, Resource, ShareType, Subject,
};
use crate::domain::ids::{IdError, ResidentId, Uscc, mask_middle};
use crate::store::{BaseRecord, StoreError, UpsertCounts};

/// How many records go to the store in one upsert (one transaction).
pub const BATCH: usize = 500;

/// The columns of a licence library's rows, in the order they are listed.
pub const LICENCE_COLUMNS: [&str; 7] = [
    "holder",
    "licence",
    "licence_no",
    "issuer",
    "issued_on",
    "valid_until",
    "holder_name",
];

/// The columns a licence library's file must have.
const LICENCE_REQUIRED: [&str; 4] = ["holder", "licence", "licence_no", "issuer"];

/// `valid_until` of a licence that does not expire.
pub const NO_EXPIRY: &str = "长期";

/// One input row: column → value. CSV cells are strings; JSON lines may hold numbers.
pub type Row = Map<String, Value>;

/// The format of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// CSV (UTF-8) with a header row naming the columns.
    Csv,
    /// JSON lines: one object per line.
    #[value(name = "jsonl")]
    JsonLines,
}

impl Format {
    /// The format a file's extension names: `.csv`, or `.jsonl` / `.ndjson`.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Records added, updated and found unchanged.
    pub counts: UpsertCounts,
    /// Rows skipped: (line number, reason), in file order.
    pub rejected: Vec<(u64, String)>,
}

impl ImportReport {
    /// `person: 52 added, 0 updated, 0 unchanged, 2 rejected`.
    pub fn summary(&self, resource: &str) -> String {
        format!(
            "{resource}: {} added, {} updated, {} unchanged, {} rejected",
            self.counts.added,
            self.counts.updated,
            self.counts.unchanged,
            self.rejected.len()
        )
    }
}

/// Why a whole file (or resource) was refused, or the import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// No such resource in the catalogue.
    #[error("unknown resource {code:?}; the resources that can be imported are: {valid}")]
    UnknownResource {
        /// The code given.
        code: String,
        /// The importable codes, comma-separated.
        valid: String,
    },
    /// 不予共享: the gateway does not hold the resource at all.
    #[error(
        "{resource} is not shared (不予共享): the gateway does not hold it, so it cannot be imported"
    )]
    NotShared {
        /// Resource code.
        resource: String,
    },
    /// The resource is read from its provider's data API.
    #[error(
        "{resource} is reached through the providing department's data API, not the base library, so it is not imported"
    )]
    DepartmentApi {
        /// Resource code.
        resource: String,
    },
    /// The format could not be told from the file name.
    #[error(
        "{path}: cannot tell the format from the file name; name it .csv, .jsonl or .ndjson, or give --format csv|jsonl"
    )]
    UnknownFormat {
        /// The file.
        path: String,
    },
    /// The file has no header (CSV) or no rows at all.
    #[error("{path} is empty: {what}")]
    Empty {
        /// The file.
        path: String,
        /// What is missing.
        what: &'static str,
    },
    /// Columns that are not items of the resource.
    #[error(
        "{resource}: unknown column(s) {unknown} (first on line {line}); the columns of {resource} are: {valid}"
    )]
    UnknownColumns {
        /// Resource code.
        resource: String,
        /// The unknown column names, comma-separated.
        unknown: String,
        /// Where the first one appears.
        line: u64,
        /// The valid columns, comma-separated.
        valid: String,
    },
    /// The key column (or another required column) is missing.
    #[error(
        "{resource}: the file has no {} column{}; the columns of {resource} are: {valid}",
        .missing.join(", "),
        if .missing.len() > 1 { "s" } else { "" }
    )]
    MissingColumns {
        /// Resource code.
        resource: String,
        /// The missing columns.
        missing: Vec<String>,
        /// The valid columns, comma-separated.
        valid: String,
    },
    /// A header names one column twice.
    #[error("{resource}: column {column} appears twice in the header")]
    DuplicateColumn {
        /// Resource code.
        resource: String,
        /// The column.
        column: String,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        error: std::io::Error,
    },
    /// The CSV header could not be read.
    #[error("{path}: the header row cannot be read: {error}")]
    Header {
        /// The file.
        path: String,
        /// What went wrong.
        error: String,
    },
    /// The store refused a batch; the batches before it are stored.
    #[error("storing the rows up to line {line} failed (earlier rows are stored): {error}")]
    Store {
        /// The last line of the batch.
        line: u64,
        /// The store's error.
        error: StoreError,
    },
}

/// The resource named `code`, if the gateway imports it.
pub fn importable_resource(
    catalogue: &Catalogue,
    code: &str,
) -> Result<std::sync::Arc<Resource>, ImportError> {
    match catalogue.resource(code) {
        Some(r) => {
            check_importable(&r)?;
            Ok(r)
        }
        None => Err(ImportError::UnknownResource {
            code: code.to_owned(),
            valid: catalogue
                .resources()
                .iter()
                .filter(|r| check_importable(r).is_ok())
                .map(|r| r.code.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Refuses a resource the base library does not hold: 不予共享, or read from a
/// department's data API.
pub fn check_importable(resource: &Resource) -> Result<(), ImportError> {
    if resource.share_type == ShareType::NotShared {
        return Err(ImportError::NotShared {
            resource: resource.code.clone(),
        });
    }
    if resource.access == Access::DepartmentApi {
        return Err(ImportError::DepartmentApi {
            resource: resource.code.clone(),
        });
    }
    Ok(())
}

/// The key column of an ordinary resource's rows.
fn key_column(subject: Subject) -> &'static str {
    match subject {
        Subject::Person => "id_number",
        Subject::Enterprise => "uscc",
    }
}

/// The columns a file of this resource may have, key first.
pub fn valid_columns(resource: &Resource) -> Vec<String> {
    if resource.is_licence_library() {
        return LICENCE_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    }
    let key = key_column(resource.subject);
    std::iter::once(key.to_owned())
        .chain(
            resource
                .items
                .iter()
                .filter(|i| i.id != key)
                .map(|i| i.id.clone()),
        )
        .collect()
}

/// The columns a file of this resource must have.
fn required_columns(resource: &Resource) -> Vec<&'static str> {
    if resource.is_licence_library() {
        LICENCE_REQUIRED.to_vec()
    } else {
        vec![key_column(resource.subject)]
    }
}

/// Checks a file's columns (a CSV header, or every key used in a JSON-lines file):
/// each must be a column of the resource, and the required ones must be there.
/// `first_line` says where each column first appears (all 1 for a CSV header).
pub fn check_columns(resource: &Resource, columns: &[(String, u64)]) -> Result<(), ImportError> {
    let valid = valid_columns(resource);
    let mut seen: HashMap<&str, u64> = HashMap::new();
    let mut unknown: Vec<(&str, u64)> = Vec::new();
    for (c, line) in columns {
        if seen.insert(c.as_str(), *line).is_some() {
            return Err(ImportError::DuplicateColumn {
                resource: resource.code.clone(),
                column: c.clone(),
            });
        }
        if !valid.iter().any(|v| v == c) {
            unknown.push((c.as_str(), *line));
        }
    }
    if !unknown.is_empty() {
        let line = unknown.iter().map(|(_, l)| *l).min().unwrap_or(1);
        return Err(ImportError::UnknownColumns {
            resource: resource.code.clone(),
            unknown: unknown
                .iter()
                .map(|(c, _)| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            line,
            valid: valid.join(", "),
        });
    }
    let missing: Vec<&str> = required_columns(resource)
        .into_iter()
        .filter(|c| !seen.contains_key(c))
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::MissingColumns {
            resource: resource.code.clone(),
            missing: missing.into_iter().map(str::to_owned).collect(),
            valid: valid.join(", "),
        });
    }
    Ok(())
}

/// Turns one row into a base-library record, or says in one line why it cannot be one.
pub fn parse_row(
    resource: &Resource,
    row: &Row,
    updated_at: DateTime<Utc>,
) -> Result<BaseRecord, String> {
    if resource.is_licence_library() {
        parse_licence_row(resource, row, updated_at)
    } else {
        parse_subject_row(resource, row, updated_at)
    }
}

fn parse_subject_row(
    resource: &Resource,
    row: &Row,
    updated_at: DateTime<Utc>,
) -> Result<BaseRecord, String> {
    let key = key_column(resource.subject);
    let subject = match row.get(key).map(|v| text(key, v)).transpose()?.flatten() {
        Some(raw) => parse_subject(key, resource.subject, &raw)?,
        None => return Err(format!("{key} is missing")),
    };
    let mut data = Map::new();
    for (column, value) in row {
        if column == key {
            continue;
        }
        let Some(item) = resource.item(column) else {
            return Err(format!(
                "{column} is not a column of {}; the columns are: {}",
                resource.code,
                valid_columns(resource).join(", ")
            ));
        };
        if let Some(v) = item_value(item, value)? {
            data.insert(item.id.clone(), v);
        }
    }
    if data.is_empty() {
        return Err(format!("no values besides {key}"));
    }
    if resource.item(key).is_some() {
        data.insert(key.to_owned(), Value::String(subject.clone()));
    }
    Ok(BaseRecord {
        resource: resource.code.clone(),
        subject,
        record: String::new(),
        data: Value::Object(data),
        updated_at,
    })
}

fn parse_licence_row(
    resource: &Resource,
    row: &Row,
    updated_at: DateTime<Utc>,
) -> Result<BaseRecord, String> {
    if let Some(column) = row.keys().find(|c| !LICENCE_COLUMNS.contains(&c.as_str())) {
        return Err(format!(
            "{column} is not a column of {}; the columns are: {}",
            resource.code,
            LICENCE_COLUMNS.join(", ")
        ));
    }
    let get = |column: &str| -> Result<Option<String>, String> {
        match row.get(column) {
            Some(v) => text(column, v),
            None => Ok(None),
        }
    };
    let required = |column: &str| -> Result<String, String> {
        get(column)?.ok_or_else(|| format!("{column} is missing"))
    };

    let licence_id = required("licence")?;
    let item = resource
        .item(&licence_id)
        .filter(|i| i.data_type == DataType::Licence)
        .ok_or_else(|| {
            format!(
                "licence {licence_id:?} is not a licence of {}; the licences are: {}",
                resource.code,
                resource
                    .items
                    .iter()
                    .map(|i| i.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    let holder_kind = resource.subject_of(item);
    let holder = parse_subject("holder", holder_kind, &required("holder")?).map_err(|e| {
        let whose = match holder_kind {
            Subject::Person => "a person",
            Subject::Enterprise => "an enterprise",
        };
        format!("{e} (a {licence_id} is held by {whose})")
    })?;

    let mut data = Map::new();
    data.insert("licence_no".into(), Value::String(required("licence_no")?));
    data.insert("issuer".into(), Value::String(required("issuer")?));
    let issued_on = match get("issued_on")? {
        Some(raw) => {
            let d = date(&raw).ok_or_else(|| not_a_date("issued_on", item.personal, &raw))?;
            data.insert("issued_on".into(), Value::String(raw));
            Some(d)
        }
        None => None,
    };
    if let Some(raw) = get("valid_until")? {
        if raw != NO_EXPIRY {
            let until = date(&raw).ok_or_else(|| {
                format!(
                    "{} (or {NO_EXPIRY} for no expiry)",
                    not_a_date("valid_until", item.personal, &raw)
                )
            })?;
            if issued_on.is_some_and(|from| until < from) {
                return Err("valid_until is before issued_on".into());
            }
        }
        data.insert("valid_until".into(), Value::String(raw));
    }
    if let Some(name) = get("holder_name")? {
        data.insert("holder_name".into(), Value::String(name));
    }
    Ok(BaseRecord {
        resource: resource.code.clone(),
        subject: holder,
        record: licence_id,
        data: Value::Object(data),
        updated_at,
    })
}

/// A cell as trimmed text; `None` when empty (the item is absent). JSON numbers are
/// taken as their text; booleans, arrays and objects are refused.
fn text(column: &str, v: &Value) -> Result<Option<String>, String> {
    let s = match v {
        Value::Null => return Ok(None),
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(_) => return Err(format!("{column} must be text, not true or false")),
        Value::Array(_) => return Err(format!("{column} must be text, not a list")),
        Value::Object(_) => return Err(format!("{column} must be text, not an object")),
    };
    Ok((!s.is_empty()).then_some(s))
}

/// Parses a subject key (a resident ID number or a USCC) into its normalised form.
fn parse_subject(column: &str, kind: Subject, raw: &str) -> Result<String, String> {
    match kind {
        Subject::Person => ResidentId::parse(raw)
            .map(|id| id.expose().to_owned())
            .map_err(|e| id_problem(column, kind, raw, &e)),
        Subject::Enterprise => Uscc::parse(raw)
            .map(|c| c.as_str().to_owned())
            .map_err(|e| id_problem(column, kind, raw, &e)),
    }
}

/// A resident ID number for messages: first 6 and last 4 characters, the rest starred.
pub fn mask_id_number(raw: &str) -> String {
    match ResidentId::parse(raw) {
        Ok(id) => id.masked(),
        Err(_) => mask_middle(raw.trim(), 6, 4),
    }
}

/// Why an identifier was refused, with a resident ID number masked (a USCC is not
/// personal data and is shown in full).
fn id_problem(column: &str, kind: Subject, raw: &str, e: &IdError) -> String {
    if kind == Subject::Enterprise && ResidentId::parse(raw).is_ok() {
        return format!(
            "{column} {} is a resident ID number, not a unified social credit code",
            mask_id_number(raw)
        );
    }
    let (shown, what, standard, check) = match kind {
        Subject::Person => (
            mask_id_number(raw),
            "a resident ID number",
            "GB 11643",
            "digit",
        ),
        Subject::Enterprise => (
            raw.trim().to_owned(),
            "a unified social credit code",
            "GB 32100",
            "character",
        ),
    };
    match e {
        IdError::CheckCharacter { .. } => {
            format!("{column} {shown} fails the {standard} check {check}")
        }
        IdError::Length { expected, got } => {
            format!("{column} {shown} is not {what}: it has {got} characters, not {expected}")
        }
        IdError::Character { pos, .. } => match kind {
            // the character itself could be a digit of the real number: do not show it
            Subject::Person => format!(
                "{column} {shown} is not {what}: the character at position {pos} is not allowed"
            ),
            Subject::Enterprise => format!("{column} {shown} is not {what}: {e}"),
        },
        IdError::BirthDate(_) => {
            format!("{column} {shown} is not {what}: the birth date in it is not a real date")
        }
    }
}

static DATE_SHAPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\d{4}-\d{2}-\d{2}$").expect("static regex"));
static DECIMAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[+-]?\d+(\.\d+)?$").expect("static regex"));

/// A real calendar date written `YYYY-MM-DD`.
fn date(raw: &str) -> Option<NaiveDate> {
    if !DATE_SHAPE.is_match(raw) {
        return None;
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()
}

/// ` “value”` for a value that may be repeated in a message; nothing for personal data.
fn quoted(personal: bool, raw: &str) -> String {
    if personal {
        String::new()
    } else {
        let short: String = raw.chars().take(40).collect();
        let more = if raw.chars().count() > 40 { "…" } else { "" };
        format!(" “{short}{more}”")
    }
}

fn not_a_date(column: &str, personal: bool, raw: &str) -> String {
    format!(
        "{column}{} is not a real date written YYYY-MM-DD",
        quoted(personal, raw)
    )
}

/// An item's value checked against its data type; `None` for an empty cell.
fn item_value(item: &DataItem, v: &Value) -> Result<Option<Value>, String> {
    let column = item.id.as_str();
    let Some(raw) = text(column, v)? else {
        return Ok(None);
    };
    let value = match item.data_type {
        DataType::IdNumber => Value::String(parse_subject(column, Subject::Person, &raw)?),
        DataType::Uscc => Value::String(parse_subject(column, Subject::Enterprise, &raw)?),
        DataType::Date => {
            date(&raw).ok_or_else(|| not_a_date(column, item.personal, &raw))?;
            Value::String(raw)
        }
        DataType::Number => Value::Number(number(v, &raw).ok_or_else(|| {
            format!(
                "{column}{} is not a number",
                quoted(item.personal, &raw)
            )
        })?),
        DataType::Phone => Value::String(phone(&raw).ok_or_else(|| {
            format!(
                "{column}{} is not a mobile number (11 digits, 1[3-9]…) or a landline (like 0470-8221234)",
                quoted(item.personal, &raw)
            )
        })?),
        DataType::Text
        | DataType::Address
        | DataType::Code
        | DataType::Licence => Value::String(raw),
    };
    Ok(Some(value))
}

/// A JSON number as given, or a decimal written as text (an integer stays an integer).
fn number(v: &Value, raw: &str) -> Option<Number> {
    if let Value::Number(n) = v {
        return Some(n.clone());
    }
    if !DECIMAL.is_match(raw) {
        return None;
    }
    if let Ok(i) = raw.parse::<i64>() {
        return Some(Number::from(i));
    }
    raw.parse::<f64>().ok().and_then(Number::from_f64)
}

/// A phone number as the form would store it.
fn phone(raw: &str) -> Option<String> {
    crate::domain::form::normalise_phone(raw)
}

/// Collects accepted records, refuses repeats within the file and upserts full batches.
struct Batcher<'a> {
    store: &'a BaseLibrary,
    pending: Vec<BaseRecord>,
    /// (subject, record) → the line it was first accepted on.
    seen: HashMap<(String, String), u64>,
    report: ImportReport,
}

impl<'a> Batcher<'a> {
    fn new(store: &'a BaseLibrary) -> Self {
        Batcher {
            store,
            pending: Vec::with_capacity(BATCH),
            seen: HashMap::new(),
            report: ImportReport::default(),
        }
    }

    async fn row(
        &mut self,
        line: u64,
        parsed: Result<BaseRecord, String>,
    ) -> Result<(), ImportError> {
        let record = match parsed {
            Ok(r) => r,
            Err(reason) => {
                self.report.rejected.push((line, reason));
                return Ok(());
            }
        };
        let key = (record.subject.clone(), record.record.clone());
        if let Some(first) = self.seen.get(&key) {
            self.report
                .rejected
                .push((line, format!("duplicate of line {first}")));
            return Ok(());
        }
        self.seen.insert(key, line);
        self.pending.push(record);
        if self.pending.len() >= BATCH {
            self.flush(line).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, line: u64) -> Result<(), ImportError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let c = self
            .store
            .put(&self.pending)
            .await
            .map_err(|error| ImportError::Store { line, error })?;
        self.report.counts.added += c.added;
        self.report.counts.updated += c.updated;
        self.report.counts.unchanged += c.unchanged;
        self.pending.clear();
        Ok(())
    }
}

/// Imports a CSV or JSON-lines file into the base library, streaming it: rows are read
/// one at a time and stored in batches of [`BATCH`]. The format comes from the file's
/// extension unless given. `progress` is told how many bytes have been read so far.
///
/// The whole file is refused before anything is stored when the resource is not held by
/// the base library or a column does not fit the resource. Rows that fail are skipped
/// and listed in the report; so is a subject (or a holder's licence) that an earlier line
/// of the file already gave.
///
/// The file is read with blocking I/O between the store's awaits: fit for the command line
/// and the demo's start, not for a request handler.
pub async fn import_file(
    store: &BaseLibrary,
    resource: &Resource,
    path: &Path,
    format: Option<Format>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ImportReport, ImportError> {
    check_importable(resource)?;
    let format = resolve_format(path, format)?;
    let updated_at = Utc::now();
    match format {
        Format::Csv => import_csv(store, resource, path, updated_at, progress).await,
        Format::JsonLines => import_jsonl(store, resource, path, updated_at, progress).await,
    }
}

/// The format given, or else the one the file's extension names.
pub fn resolve_format(path: &Path, format: Option<Format>) -> Result<Format, ImportError> {
    format
        .or_else(|| Format::from_path(path))
        .ok_or_else(|| ImportError::UnknownFormat {
            path: path.display().to_string(),
        })
}

fn open(path: &Path) -> Result<File, ImportError> {
    File::open(path).map_err(|error| ImportError::Io {
        path: path.display().to_string(),
        error,
    })
}

async fn import_csv(
    store: &BaseLibrary,
    resource: &Resource,
    path: &Path,
    updated_at: DateTime<Utc>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ImportReport, ImportError> {
    let shown = path.display().to_string();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(BufReader::new(open(path)?));
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ImportError::Header {
            path: shown.clone(),
            error: e.to_string(),
        })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(ImportError::Empty {
            path: shown,
            what: "no header row",
        });
    }
    check_columns(
        resource,
        &header.iter().map(|h| (h.clone(), 1)).collect::<Vec<_>>(),
    )?;

    let mut batcher = Batcher::new(store);
    let mut record = csv::StringRecord::new();
    let mut last_line = 1;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(last_line + 1, |p| p.line());
                last_line = line;
                let row: Row = header
                    .iter()
                    .zip(record.iter())
                    .map(|(h, v)| (h.clone(), Value::String(v.to_owned())))
                    .collect();
                batcher
                    .row(line, parse_row(resource, &row, updated_at))
                    .await?;
            }
            Err(e) => {
                let line = e.position().map_or(last_line + 1, |p| p.line());
                last_line = line;
                let reason = match e.kind() {
                    csv::ErrorKind::UnequalLengths { len, .. } => {
                        format!("has {len} fields but the header has {}", header.len())
                    }
                    csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_owned(),
                    _ => {
                        return Err(ImportError::Io {
                            path: shown,
                            error: std::io::Error::other(e.to_string()),
                        });
                    }
                };
                batcher.report.rejected.push((line, reason));
            }
        }
        progress(reader.position().byte());
    }
    batcher.flush(last_line).await?;
    Ok(batcher.report)
}

/// Reads the next line into `buf` (without its line ending); `None` at the end.
fn next_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    path: &Path,
) -> Result<Option<u64>, ImportError> {
    buf.clear();
    let n = reader
        .read_until(b'\n', buf)
        .map_err(|error| ImportError::Io {
            path: path.display().to_string(),
            error,
        })?;
    if n == 0 {
        return Ok(None);
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(Some(n as u64))
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

async fn import_jsonl(
    store: &BaseLibrary,
    resource: &Resource,
    path: &Path,
    updated_at: DateTime<Utc>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ImportReport, ImportError> {
    // A first pass reads only the keys, so that a file with an unknown column is refused
    // before anything is stored, wherever that column first appears.
    let mut columns: BTreeMap<String, u64> = BTreeMap::new();
    let mut reader = BufReader::new(open(path)?);
    let mut buf = Vec::new();
    let mut line = 0u64;
    let mut objects = 0u64;
    while next_line(&mut reader, &mut buf, path)?.is_some() {
        line += 1;
        if let Ok(keys) = serde_json::from_slice::<BTreeMap<String, serde::de::IgnoredAny>>(&buf) {
            objects += 1;
            for k in keys.into_keys() {
                columns.entry(k).or_insert(line);
            }
        }
    }
    if line == 0 || (objects == 0 && is_blank_file(path)?) {
        return Err(ImportError::Empty {
            path: path.display().to_string(),
            what: "no rows",
        });
    }
    if objects > 0 {
        check_columns(resource, &columns.into_iter().collect::<Vec<_>>())?;
    }

    let mut batcher = Batcher::new(store);
    let mut reader = BufReader::new(open(path)?);
    let (mut line, mut read) = (0u64, 0u64);
    while let Some(n) = next_line(&mut reader, &mut buf, path)? {
        line += 1;
        read += n;
        if is_blank(&buf) {
            continue;
        }
        let parsed = match serde_json::from_slice::<Value>(&buf) {
            Ok(Value::Object(row)) => parse_row(resource, &row, updated_at),
            Ok(_) => Err("is not a JSON object".to_owned()),
            Err(e) => Err(format!("is not valid JSON ({e})")),
        };
        batcher.row(line, parsed).await?;
        progress(read);
    }
    batcher.flush(line).await?;
    Ok(batcher.report)
}

/// Whether a file holds nothing but white space (a second, cheap pass: only reached
/// when no line held an object).
fn is_blank_file(path: &Path) -> Result<bool, ImportError> {
    let mut reader = BufReader::new(open(path)?);
    let mut buf = Vec::new();
    while next_line(&mut reader, &mut buf, path)?.is_some() {
        if !is_blank(&buf) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resource(toml_text: &str) -> Resource {
        toml::from_str(toml_text).expect("resource")
    }

    fn person() -> Resource {
        resource(
            r#"
code = "person"
name = "人口基础信息"
name_en = "Population"
provider = "11150700MB15300021"
share_type = "conditional"
update_cycle = "daily"
subject = "person"
items = [
  { id = "name", name = "姓名", name_en = "Name", type = "text", personal = true },
  { id = "id_number", name = "身份号码", name_en = "ID", type = "id_number", personal = true },
  { id = "gender", name = "性别", name_en = "Sex", type = "code", personal = true },
  { id = "birth_date", name = "出生日期", name_en = "Birth", type = "date", personal = true },
  { id = "phone", name = "电话", name_en = "Phone", type = "phone", personal = true },
  { id = "household_address", name = "户籍地址", name_en = "Address", type = "address", personal = true },
]
"#,
        )
    }

    fn enterprise() -> Resource {
        resource(
            r#"
code = "enterprise"
name = "法人基础信息"
name_en = "Legal entities"
provider = "11150700MB1530001X"
share_type = "conditional"
update_cycle = "daily"
subject = "enterprise"
items = [
  { id = "uscc", name = "代码", name_en = "USCC", type = "uscc" },
  { id = "name", name = "名称", name_en = "Name", type = "text" },
  { id = "legal_rep_id_number", name = "法人身份证号", name_en = "Rep ID", type = "id_number", personal = true },
  { id = "registered_capital", name = "注册资本", name_en = "Capital", type = "number" },
  { id = "established_on", name = "成立日期", name_en = "Established", type = "date" },
  { id = "phone", name = "电话", name_en = "Phone", type = "phone" },
]
"#,
        )
    }

    fn credit() -> Resource {
        resource(
            r#"
code = "credit"
name = "公共信用信息"
name_en = "Credit"
provider = "11150700MB1530010U"
share_type = "conditional"
update_cycle = "daily"
subject = "enterprise"
items = [
  { id = "dishonest_list_status", name = "状态", name_en = "Status", type = "code" },
]
"#,
        )
    }

    fn elicence() -> Resource {
        resource(
            r#"
code = "elicence"
name = "电子证照"
name_en = "E-licences"
provider = "11150700MB1530009N"
share_type = "conditional"
update_cycle = "realtime"
subject = "person"
items = [
  { id = "resident_id_card", name = "居民身份证", name_en = "ID card", type = "licence", personal = true },
  { id = "business_licence", name = "营业执照", name_en = "Business licence", type = "licence", subject = "enterprise" },
]
"#,
        )
    }

    const WANG: &str = "150702198506123025";
    const DAIRY: &str = "91150700MA0N2C3D40";

    fn row(v: Value) -> Row {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn parse(r: &Resource, v: Value) -> Result<BaseRecord, String> {
        parse_row(r, &row(v), Utc::now())
    }

    fn reason(r: &Resource, v: Value) -> String {
        parse(r, v).expect_err("should be rejected")
    }

    fn cols(names: &[&str]) -> Vec<(String, u64)> {
        names.iter().map(|n| ((*n).to_owned(), 1)).collect()
    }

    #[test]
    fn a_person_row_becomes_a_record_keyed_by_the_id_number() {
        let r = parse(
            &person(),
            json!({
                "id_number": "150702198506123025",
                "name": " 王小明 ",
                "gender": "2",
                "birth_date": "1985-06-12",
                "phone": "138 0000 0001",
                "household_address": "",
            }),
        )
        .expect("valid");
        assert_eq!(r.resource, "person");
        assert_eq!(r.subject, WANG);
        assert_eq!(r.record, "");
        assert_eq!(
            r.data,
            json!({
                "id_number": WANG,
                "name": "王小明",
                "gender": "2",
                "birth_date": "1985-06-12",
                "phone": "13800000001",
            }),
            "the key is stored as an item, an empty cell is left out, values are trimmed"
        );
    }

    #[test]
    fn a_lowercase_check_x_is_normalised() {
        let r = parse(
            &person(),
            json!({"id_number": "15070219900307123x", "name": "某"}),
        )
        .expect("valid");
        assert_eq!(r.subject, "15070219900307123X");
        assert_eq!(r.data["id_number"], "15070219900307123X");
    }

    #[test]
    fn a_missing_or_empty_key_is_rejected() {
        assert_eq!(
            reason(&person(), json!({"name": "王"})),
            "id_number is missing"
        );
        assert_eq!(
            reason(&person(), json!({"id_number": " ", "name": "王"})),
            "id_number is missing"
        );
        assert_eq!(
            reason(&credit(), json!({"dishonest_list_status": "0"})),
            "uscc is missing"
        );
    }

    #[test]
    fn a_bad_id_number_is_rejected_and_masked() {
        let e = reason(
            &person(),
            json!({"id_number": "150702198506121234", "name": "王"}),
        );
        assert_eq!(
            e,
            "id_number 150702********1234 fails the GB 11643 check digit"
        );
        let e = reason(&person(), json!({"id_number": "1507021985", "name": "王"}));
        assert_eq!(
            e,
            "id_number ********** is not a resident ID number: it has 10 characters, not 18"
        );
        let e = reason(
            &person(),
            json!({"id_number": "150702198502301234", "name": "王"}),
        );
        assert!(
            e.contains("150702********1234") && e.contains("birth date"),
            "{e}"
        );
        assert!(!e.contains("19850230"), "{e}");
        let e = reason(
            &person(),
            json!({"id_number": "15070219850A123025", "name": "王"}),
        );
        assert!(e.contains("position 12") && !e.contains("'A'"), "{e}");
    }

    #[test]
    fn a_bad_uscc_is_rejected_in_full() {
        let e = reason(
            &credit(),
            json!({"uscc": "91150700MA0N2C3D41", "dishonest_list_status": "0"}),
        );
        assert_eq!(
            e,
            "uscc 91150700MA0N2C3D41 fails the GB 32100 check character"
        );
        let e = reason(
            &credit(),
            json!({"uscc": "91150700MA0N2C3DI0", "dishonest_list_status": "0"}),
        );
        assert!(e.contains("'I'"), "{e}");
    }

    #[test]
    fn an_unknown_column_in_a_row_is_rejected() {
        let e = reason(
            &person(),
            json!({"id_number": WANG, "name": "王", "nickname": "小王"}),
        );
        assert!(e.starts_with("nickname is not a column of person"), "{e}");
    }

    #[test]
    fn a_row_with_only_the_key_is_rejected() {
        assert_eq!(
            reason(&person(), json!({"id_number": WANG, "name": ""})),
            "no values besides id_number"
        );
    }

    #[test]
    fn id_number_items_are_checked_and_masked() {
        let ok = parse(
            &enterprise(),
            json!({"uscc": DAIRY, "legal_rep_id_number": "150702200108081229"}),
        )
        .expect("valid");
        assert_eq!(ok.data["legal_rep_id_number"], "150702200108081229");
        assert_eq!(ok.data["uscc"], DAIRY, "the key is an item of enterprise");
        let e = reason(
            &enterprise(),
            json!({"uscc": DAIRY, "legal_rep_id_number": "150702200108081220"}),
        );
        assert_eq!(
            e,
            "legal_rep_id_number 150702********1220 fails the GB 11643 check digit"
        );
    }

    #[test]
    fn credit_has_a_uscc_key_that_is_not_an_item() {
        let r = parse(
            &credit(),
            json!({"uscc": DAIRY, "dishonest_list_status": 0}),
        )
        .expect("valid");
        assert_eq!(r.subject, DAIRY);
        assert_eq!(r.data, json!({"dishonest_list_status": "0"}));
    }

    #[test]
    fn dates_must_be_real_and_written_iso() {
        for bad in ["1985-02-30", "1985/06/12", "19850612", "85-6-12"] {
            let e = reason(&enterprise(), json!({"uscc": DAIRY, "established_on": bad}));
            assert_eq!(
                e,
                format!("established_on “{bad}” is not a real date written YYYY-MM-DD")
            );
        }
        // personal values are not repeated
        let e = reason(
            &person(),
            json!({"id_number": WANG, "birth_date": "1985-02-30"}),
        );
        assert_eq!(e, "birth_date is not a real date written YYYY-MM-DD");
    }

    #[test]
    fn numbers_are_stored_as_json_numbers() {
        let n = |v: Value| {
            parse(
                &enterprise(),
                json!({"uscc": DAIRY, "registered_capital": v}),
            )
            .map(|r| r.data["registered_capital"].clone())
        };
        assert_eq!(n(json!("500")), Ok(json!(500)));
        assert_eq!(n(json!(" 12.5 ")), Ok(json!(12.5)));
        assert_eq!(n(json!(-3)), Ok(json!(-3)));
        assert_eq!(n(json!(1.25)), Ok(json!(1.25)));
        assert_eq!(
            n(json!("五百")),
            Err("registered_capital “五百” is not a number".into())
        );
        assert!(n(json!("1e5")).is_err());
        assert!(n(json!("1,000")).is_err());
    }

    #[test]
    fn phones_are_mobiles_or_landlines() {
        let p = |v: &str| {
            parse(&enterprise(), json!({"uscc": DAIRY, "phone": v}))
                .map(|r| r.data["phone"].clone())
        };
        assert_eq!(p("13800000001"), Ok(json!("13800000001")));
        assert_eq!(p("+86 138-0000-0001"), Ok(json!("13800000001")));
        assert_eq!(p("0470-8221234"), Ok(json!("0470-8221234")));
        assert_eq!(p("04708221234"), Ok(json!("04708221234")));
        for bad in ["12800000001", "1380000000", "8221234", "phone"] {
            let e = p(bad).expect_err(bad);
            assert!(
                e.starts_with(&format!("phone “{bad}” is not a mobile")),
                "{e}"
            );
        }
        // a resident's phone is personal data: not repeated
        let e = reason(&person(), json!({"id_number": WANG, "phone": "12345"}));
        assert!(e.starts_with("phone is not a mobile number"), "{e}");
        assert!(!e.contains("12345"), "{e}");
    }

    #[test]
    fn text_code_and_address_take_any_non_empty_text() {
        let r = parse(
            &person(),
            json!({"id_number": WANG, "name": "王小明", "gender": 1, "household_address": "内蒙古自治区呼伦贝尔市海拉尔区"}),
        )
        .expect("valid");
        assert_eq!(r.data["gender"], "1", "a JSON number is taken as its text");
        assert_eq!(
            r.data["household_address"],
            "内蒙古自治区呼伦贝尔市海拉尔区"
        );
        assert_eq!(
            reason(&person(), json!({"id_number": WANG, "name": ["王"]})),
            "name must be text, not a list"
        );
        assert_eq!(
            reason(&person(), json!({"id_number": WANG, "name": true})),
            "name must be text, not true or false"
        );
        let r = parse(
            &person(),
            json!({"id_number": WANG, "name": "王", "gender": null}),
        )
        .expect("null is absent");
        assert!(r.data.get("gender").is_none());
    }

    #[test]
    fn a_licence_row_becomes_one_record_per_licence() {
        let r = parse(
            &elicence(),
            json!({
                "holder": WANG,
                "licence": "resident_id_card",
                "licence_no": WANG,
                "issuer": "呼伦贝尔市公安局海拉尔区分局",
                "issued_on": "2015-03-01",
                "valid_until": "2035-03-01",
                "holder_name": "王小明",
            }),
        )
        .expect("valid");
        assert_eq!(r.subject, WANG);
        assert_eq!(r.record, "resident_id_card");
        assert_eq!(
            r.data,
            json!({
                "licence_no": WANG,
                "issuer": "呼伦贝尔市公安局海拉尔区分局",
                "issued_on": "2015-03-01",
                "valid_until": "2035-03-01",
                "holder_name": "王小明",
            })
        );
    }

    #[test]
    fn an_enterprise_licence_is_held_by_a_uscc() {
        let r = parse(
            &elicence(),
            json!({"holder": DAIRY, "licence": "business_licence", "licence_no": DAIRY,
                   "issuer": "呼伦贝尔市市场监督管理局", "valid_until": "长期"}),
        )
        .expect("valid");
        assert_eq!(r.subject, DAIRY);
        assert_eq!(r.data["valid_until"], "长期");
        assert!(r.data.get("issued_on").is_none());

        let e = reason(
            &elicence(),
            json!({"holder": WANG, "licence": "business_licence", "licence_no": "x", "issuer": "y"}),
        );
        assert_eq!(
            e,
            "holder 150702********3025 is a resident ID number, not a unified social credit code (a business_licence is held by an enterprise)"
        );
        let e = reason(
            &elicence(),
            json!({"holder": DAIRY, "licence": "resident_id_card", "licence_no": "x", "issuer": "y"}),
        );
        assert!(e.contains("911507********3D40"), "{e}");
        assert!(
            e.ends_with("(a resident_id_card is held by a person)"),
            "{e}"
        );
    }

    #[test]
    fn licence_rows_are_checked() {
        let base = || json!({"holder": WANG, "licence": "resident_id_card", "licence_no": "1", "issuer": "公安局"});
        let with = |k: &str, v: Value| {
            let mut r = base();
            r[k] = v;
            reason(&elicence(), r)
        };
        assert_eq!(with("licence_no", json!("")), "licence_no is missing");
        assert_eq!(with("issuer", json!(null)), "issuer is missing");
        assert_eq!(with("holder", json!("")), "holder is missing");
        assert!(
            with("licence", json!("passport")).starts_with("licence \"passport\" is not a licence of elicence; the licences are: resident_id_card, business_licence"),
        );
        assert_eq!(
            with("issued_on", json!("2015-02-30")),
            "issued_on is not a real date written YYYY-MM-DD"
        );
        assert_eq!(
            with("valid_until", json!("永久")),
            "valid_until is not a real date written YYYY-MM-DD (or 长期 for no expiry)"
        );
        assert_eq!(
            with("holder", json!("150702198506123020")),
            "holder 150702********3020 fails the GB 11643 check digit (a resident_id_card is held by a person)"
        );
        assert!(
            with("expires", json!("2030-01-01")).starts_with("expires is not a column of elicence")
        );
        let mut r = base();
        r["issued_on"] = json!("2020-01-01");
        r["valid_until"] = json!("2019-12-31");
        assert_eq!(reason(&elicence(), r), "valid_until is before issued_on");
    }

    #[test]
    fn masking_keeps_six_and_four() {
        assert_eq!(mask_id_number(WANG), "150702********3025");
        assert_eq!(mask_id_number("15070219900307123x"), "150702********123X");
        assert_eq!(mask_id_number(" 150702198506121234 "), "150702********1234");
        assert_eq!(mask_id_number("12345"), "*****");
    }

    #[test]
    fn columns_must_be_items_and_include_the_key() {
        assert!(check_columns(&person(), &cols(&["id_number", "name", "phone"])).is_ok());
        assert!(check_columns(&credit(), &cols(&["uscc", "dishonest_list_status"])).is_ok());
        let e = check_columns(&person(), &cols(&["id_number", "nickname", "name"]))
            .expect_err("unknown")
            .to_string();
        assert_eq!(
            e,
            "person: unknown column(s) \"nickname\" (first on line 1); the columns of person are: id_number, name, gender, birth_date, phone, household_address"
        );
        let e = check_columns(&person(), &cols(&["name", "phone"]))
            .expect_err("no key")
            .to_string();
        assert!(
            e.starts_with("person: the file has no id_number column"),
            "{e}"
        );
        let e = check_columns(&person(), &cols(&["id_number", "name", "name"]))
            .expect_err("twice")
            .to_string();
        assert_eq!(e, "person: column name appears twice in the header");
        let e = check_columns(&elicence(), &cols(&["holder", "licence", "issuer"]))
            .expect_err("licence_no")
            .to_string();
        assert!(
            e.starts_with("elicence: the file has no licence_no column;"),
            "{e}"
        );
        let e = check_columns(&elicence(), &cols(&["holder", "licence_no"]))
            .expect_err("licence and issuer")
            .to_string();
        assert!(
            e.starts_with("elicence: the file has no licence, issuer columns;"),
            "{e}"
        );
        let e = check_columns(
            &elicence(),
            &cols(&[
                "holder",
                "licence",
                "licence_no",
                "issuer",
                "resident_id_card",
            ]),
        )
        .expect_err("item is not a licence column")
        .to_string();
        assert!(
            e.contains("\"resident_id_card\"")
                && e.contains(
                    "holder, licence, licence_no, issuer, issued_on, valid_until, holder_name"
                ),
            "{e}"
        );
    }

    #[test]
    fn not_shared_and_department_api_resources_are_not_imported() {
        let mut r = person();
        r.share_type = ShareType::NotShared;
        assert!(matches!(
            check_importable(&r),
            Err(ImportError::NotShared { .. })
        ));
        let mut r = person();
        r.access = Access::DepartmentApi;
        let e = check_importable(&r).expect_err("api").to_string();
        assert!(e.contains("data API"), "{e}");
        assert!(check_importable(&person()).is_ok());
    }

    #[test]
    fn the_format_comes_from_the_extension() {
        assert_eq!(
            Format::from_path(Path::new("a/person.csv")),
            Some(Format::Csv)
        );
        assert_eq!(Format::from_path(Path::new("x.CSV")), Some(Format::Csv));
        assert_eq!(
            Format::from_path(Path::new("x.jsonl")),
            Some(Format::JsonLines)
        );
        assert_eq!(
            Format::from_path(Path::new("x.ndjson")),
            Some(Format::JsonLines)
        );
        assert_eq!(Format::from_path(Path::new("x.json")), None);
        assert_eq!(Format::from_path(Path::new("x")), None);
    }

    #[test]
    fn the_summary_counts_everything() {
        let r = ImportReport {
            counts: UpsertCounts {
                added: 52,
                updated: 0,
                unchanged: 1,
            },
            rejected: vec![(7, "x".into()), (9, "y".into())],
        };
        assert_eq!(
            r.summary("person"),
            "person: 52 added, 0 updated, 1 unchanged, 2 rejected"
        );
    }
}
