//! Server-side validation of an application form (申请表) and its materials (申请材料)
//! against the service definition.
//!
//! The browser checks the form too, but only this module decides: [`validate_form`] turns
//! the submitted JSON object into normalised values (trimmed text, upper-case ID numbers,
//! numbers as numbers, dates as ISO strings …) or reports *every* problem at once, each
//! naming the field by its label in Chinese and English. [`check_materials`] does the same
//! for uploads and 免提交 substitutions. Nothing here touches HTTP or storage.
//!
//! Submitted values are never echoed beyond their first 50 characters, and identifiers
//! are only described (length, position of a bad character, check character), so a
//! message is safe to show, store or log.

use std::collections::HashSet;
use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;
use serde_json::{Map, Value};

use super::catalogue::{Choice, Condition, Field, FieldType, FileType, Service};
use super::ids::{IdError, ResidentId, Uscc};

/// One problem with one field, in both languages. `field` is the field id, or a path for
/// table cells: `family_members[1].id_number` (rows counted from 0); materials use
/// `materials.<id>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldIssue {
    /// Field id, cell path or `materials.<id>`.
    pub field: String,
    /// The problem in Chinese.
    pub zh: String,
    /// The problem in English.
    pub en: String,
}

/// How many files may be uploaded for one material (multi-page scans).
pub const MAX_UPLOADS_PER_MATERIAL: usize = 20;

/// Hard cap on table rows when a definition sets no `max_rows` (and above any it sets).
pub const MAX_TABLE_ROWS: usize = 1000;

/// How much of a submitted value a message may quote.
const ECHO_CHARS: usize = 50;

/// How many option labels a message lists before it abbreviates.
const LISTED_OPTIONS: usize = 10;

const BYTES_PER_MB: u64 = 1024 * 1024;

/// The effective maximum length in characters of a textual field: its `max_length`, or
/// the default for its type (text 200, address 300, textarea 2000, email 254). `None`
/// for types that are not free text.
pub fn max_length(field: &Field) -> Option<u32> {
    let default = match field.field_type {
        FieldType::Text => 200,
        FieldType::Address => 300,
        FieldType::Textarea => 2000,
        FieldType::Email => 254,
        _ => return None,
    };
    Some(field.max_length.unwrap_or(default))
}

/// Validates submitted values (a JSON object: field id → value) against the service's
/// form and returns the normalised values, or every problem found (never only the first).
///
/// Absent values (missing, `null`, blank strings, empty arrays) are left out of the
/// result, except checkboxes, which come out as `false` when not ticked. Issues are
/// ordered as the fields are defined, unknown fields last.
pub fn validate_form(
    service: &Service,
    values: &Map<String, Value>,
    today: NaiveDate,
) -> Result<Map<String, Value>, Vec<FieldIssue>> {
    let fields = &service.fields;
    let ctx = Ctx { fields, today };
    let mut out = Map::new();
    let mut per_field: Vec<Vec<FieldIssue>> = vec![Vec::new(); fields.len()];

    // Plain fields first, so that table cells can look at them for `required_if`.
    for tables in [false, true] {
        for (i, f) in fields.iter().enumerate() {
            if (f.field_type == FieldType::Table) != tables {
                continue;
            }
            let subject = Subject::field(f);
            let raw = present(values.get(&f.id));
            if let Some(v) = normalise_present(f, raw, &subject, &ctx, &out, &mut per_field[i]) {
                out.insert(f.id.clone(), v);
            }
        }
    }
    for (i, f) in fields.iter().enumerate() {
        let raw_present = present(values.get(&f.id)).is_some();
        let subject = Subject::field(f);
        if let Some(issue) = requirement_issue(f, &subject, raw_present, out.get(&f.id), &out, &ctx)
        {
            per_field[i].insert(0, issue);
        }
    }

    let mut issues: Vec<FieldIssue> = per_field.into_iter().flatten().collect();
    let known: HashSet<&str> = fields.iter().map(|f| f.id.as_str()).collect();
    for key in values.keys() {
        if !known.contains(key.as_str()) {
            issues.push(FieldIssue {
                field: echo(key),
                zh: format!("表单中没有“{}”这一项", echo(key)),
                en: format!("Unknown field “{}”: the form has no such field", echo(key)),
            });
        }
    }

    if issues.is_empty() {
        Ok(out)
    } else {
        Err(issues)
    }
}

/// A material the applicant provided: an upload (with its detected file type and size),
/// or a stand-in from shared data / an e-licence (免提交).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvidedMaterial {
    /// A file; several files per material are allowed (multi-page scans).
    Upload {
        /// Material id.
        material: String,
        /// The type detected from the content (not the name).
        file_type: FileType,
        /// Size in bytes.
        size: u64,
    },
    /// Shared data or an e-licence stands in for the upload.
    Substituted {
        /// Material id.
        material: String,
    },
}

impl ProvidedMaterial {
    /// The material id this refers to.
    pub fn material(&self) -> &str {
        match self {
            ProvidedMaterial::Upload { material, .. }
            | ProvidedMaterial::Substituted { material } => material,
        }
    }
}

/// Checks materials: every required material is provided (uploaded, or substituted where
/// the definition has a `substitute`), no unknown material ids, file types and sizes
/// within the material's limits, substitution only where the definition allows it, and
/// at most [`MAX_UPLOADS_PER_MATERIAL`] files per material. Returns every problem, in the
/// order the materials are defined, unknown ones last; an empty list means all is well.
pub fn check_materials(service: &Service, provided: &[ProvidedMaterial]) -> Vec<FieldIssue> {
    let materials = &service.materials;
    let mut per: Vec<Vec<FieldIssue>> = vec![Vec::new(); materials.len()];
    let mut uploads = vec![0usize; materials.len()];
    let mut attempted = vec![false; materials.len()];
    let mut unknown = Vec::new();

    for p in provided {
        let Some(i) = materials.iter().position(|m| m.id == p.material()) else {
            let id = echo(p.material());
            push_unique(
                &mut unknown,
                FieldIssue {
                    field: format!("materials.{id}"),
                    zh: format!("本事项没有“{id}”这项材料"),
                    en: format!("Unknown material “{id}”: this service asks for no such material"),
                },
            );
            continue;
        };
        let m = &materials[i];
        attempted[i] = true;
        let s = Subject {
            path: format!("materials.{}", m.id),
            zh: format!("“{}”", m.name),
            en: format!("“{}”", m.name_en),
        };
        match p {
            ProvidedMaterial::Upload {
                file_type, size, ..
            } => {
                uploads[i] += 1;
                if uploads[i] == MAX_UPLOADS_PER_MATERIAL + 1 {
                    per[i].push(s.issue(
                        format!("{}最多上传{MAX_UPLOADS_PER_MATERIAL}个文件", s.zh),
                        format!(
                            "{}: at most {MAX_UPLOADS_PER_MATERIAL} files may be uploaded",
                            s.en
                        ),
                    ));
                }
                if !m.file_types.contains(file_type) {
                    let accepted = file_type_list(&m.file_types);
                    let got = file_type_name(*file_type);
                    push_unique(
                        &mut per[i],
                        s.issue(
                            format!("{}只接受{}格式的文件，上传的是{got}文件", s.zh, accepted.0),
                            format!(
                                "{} accepts only {} files, got a {got} file",
                                s.en, accepted.1
                            ),
                        ),
                    );
                }
                let limit = u64::from(m.max_size_mb) * BYTES_PER_MB;
                if *size == 0 {
                    push_unique(
                        &mut per[i],
                        s.issue(
                            format!("{}上传的文件是空文件", s.zh),
                            format!("{}: the uploaded file is empty", s.en),
                        ),
                    );
                } else if *size > limit {
                    let mb = mb(*size);
                    per[i].push(s.issue(
                        format!(
                            "{}的文件不能超过{} MB，上传的文件为{mb} MB",
                            s.zh, m.max_size_mb
                        ),
                        format!(
                            "{}: a file may be at most {} MB, this one is {mb} MB",
                            s.en, m.max_size_mb
                        ),
                    ));
                }
            }
            ProvidedMaterial::Substituted { .. } => {
                if m.substitute.is_none() {
                    push_unique(
                        &mut per[i],
                        s.issue(
                            format!("{}不能免提交，请上传该材料", s.zh),
                            format!(
                                "{} cannot be replaced by shared data or an e-licence: upload it",
                                s.en
                            ),
                        ),
                    );
                }
            }
        }
    }

    for (i, m) in materials.iter().enumerate() {
        if m.required && !attempted[i] {
            let (zh, en) = if m.substitute.is_some() {
                (
                    format!("请上传“{}”，或选择由电子证照或共享数据免提交", m.name),
                    format!(
                        "“{}” is required: upload it or let the e-licence or shared data stand in",
                        m.name_en
                    ),
                )
            } else {
                (
                    format!("请上传“{}”", m.name),
                    format!("“{}” is required: upload it", m.name_en),
                )
            };
            per[i].insert(
                0,
                FieldIssue {
                    field: format!("materials.{}", m.id),
                    zh,
                    en,
                },
            );
        }
    }

    per.into_iter().flatten().chain(unknown).collect()
}

// ---------------------------------------------------------------------------------------
// Form internals

/// What the validation of one form needs besides the field and its value.
struct Ctx<'a> {
    /// The top-level fields, to describe `required_if` conditions.
    fields: &'a [Field],
    today: NaiveDate,
}

/// Who a message is about: a field, a table cell or a material, with its path and its
/// quoted name in both languages.
struct Subject {
    path: String,
    zh: String,
    en: String,
}

impl Subject {
    fn field(f: &Field) -> Subject {
        Subject {
            path: f.id.clone(),
            zh: format!("“{}”", f.label),
            en: format!("“{}”", f.label_en),
        }
    }

    fn cell(table: &Field, row: usize, col: &Field) -> Subject {
        Subject {
            path: format!("{}[{row}].{}", table.id, col.id),
            zh: format!("“{}”第{}行的“{}”", table.label, row + 1, col.label),
            en: format!("“{}”, row {}, “{}”", table.label_en, row + 1, col.label_en),
        }
    }

    fn issue(&self, zh: impl Into<String>, en: impl Into<String>) -> FieldIssue {
        FieldIssue {
            field: self.path.clone(),
            zh: zh.into(),
            en: en.into(),
        }
    }
}

static NUMERIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[+-]?(\d+(\.\d*)?|\.\d+)$").expect("static regex"));
static DATE_SHAPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\d{4}-\d{2}-\d{2}$").expect("static regex"));
static MOBILE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^1[3-9]\d{9}$").expect("static regex"));
static LANDLINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^0\d{2,3}-?\d{7,8}$").expect("static regex"));

/// Null, blank strings and empty arrays (or arrays of only such) count as not given.
fn is_absent(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.iter().all(is_absent),
        _ => false,
    }
}

fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !is_absent(v))
}

/// Normalises a value that may be absent: absent checkboxes are `false`, other absent
/// values stay absent.
fn normalise_present(
    f: &Field,
    raw: Option<&Value>,
    s: &Subject,
    ctx: &Ctx<'_>,
    top: &Map<String, Value>,
    issues: &mut Vec<FieldIssue>,
) -> Option<Value> {
    match raw {
        Some(v) => normalise(f, v, s, ctx, top, issues),
        None if f.field_type == FieldType::Checkbox => Some(Value::Bool(false)),
        None => None,
    }
}

/// Checks and normalises one present value; `None` when it is invalid (issues pushed).
fn normalise(
    f: &Field,
    v: &Value,
    s: &Subject,
    ctx: &Ctx<'_>,
    top: &Map<String, Value>,
    issues: &mut Vec<FieldIssue>,
) -> Option<Value> {
    let result = match f.field_type {
        FieldType::Text | FieldType::Textarea | FieldType::Address | FieldType::Email => {
            text(f, v, s)
        }
        FieldType::Number => number(f, v, s),
        FieldType::Date => date(f, v, s, ctx.today),
        FieldType::Select => select(f, v, s),
        FieldType::Multiselect => multiselect(f, v, s),
        FieldType::Checkbox => checkbox(v, s),
        FieldType::IdNumber => id_number(v, s, ctx.today),
        FieldType::Uscc => uscc(v, s),
        FieldType::Phone => phone(v, s),
        FieldType::Table => return table(f, v, s, ctx, top, issues),
    };
    match result {
        Ok(v) => Some(v),
        Err(mut found) => {
            issues.append(&mut found);
            None
        }
    }
}

type Checked = Result<Value, Vec<FieldIssue>>;

fn fail(s: &Subject, zh: impl Into<String>, en: impl Into<String>) -> Checked {
    Err(vec![s.issue(zh, en)])
}

/// The string of a textual value, or the "must be text" issue.
fn want_string<'v>(v: &'v Value, s: &Subject) -> Result<&'v str, Vec<FieldIssue>> {
    match v {
        Value::String(t) => Ok(t),
        _ => Err(vec![s.issue(
            format!("{}应填写文本，而不是{}", s.zh, json_kind_zh(v)),
            format!("{} must be text, not {}", s.en, json_kind_en(v)),
        )]),
    }
}

fn text(f: &Field, v: &Value, s: &Subject) -> Checked {
    let raw = want_string(v, s)?;
    let multiline = f.field_type == FieldType::Textarea;
    let mut t = raw.trim().to_owned();
    if multiline {
        t = t.replace("\r\n", "\n").replace('\r', "\n");
    }
    if !multiline && t.contains(['\n', '\r']) {
        return fail(
            s,
            format!("{}只能填写一行，不能换行", s.zh),
            format!("{} must be a single line", s.en),
        );
    }
    if t.chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t')))
    {
        return fail(
            s,
            format!("{}含有不可见的控制字符", s.zh),
            format!("{} contains invisible control characters", s.en),
        );
    }

    let n = t.chars().count();
    let mut issues = Vec::new();
    if let Some(min) = f.min_length
        && n < min as usize
    {
        issues.push(s.issue(
            format!("{}至少应为{min}个字符，当前为{n}个字符", s.zh),
            format!("{} must be at least {min} characters long, got {n}", s.en),
        ));
    }
    if let Some(max) = max_length(f)
        && n > max as usize
    {
        issues.push(s.issue(
            format!("{}不能超过{max}个字符，当前为{n}个字符", s.zh),
            format!("{} must be at most {max} characters long, got {n}", s.en),
        ));
    }
    if !issues.is_empty() {
        return Err(issues);
    }

    if f.field_type == FieldType::Email && !plausible_email(&t) {
        return fail(
            s,
            format!(
                "{}“{}”不是有效的电子邮箱地址，应形如name@example.com",
                s.zh,
                echo(&t)
            ),
            format!(
                "{}: “{}” is not a valid email address; expected something like name@example.com",
                s.en,
                echo(&t)
            ),
        );
    }
    // The catalogue refuses definitions with a broken pattern, so one that does not
    // compile here cannot occur; it is skipped rather than failing every applicant.
    if let Some(p) = &f.pattern
        && let Ok(re) = Regex::new(&format!("^(?:{p})$"))
        && !re.is_match(&t)
    {
        let (hint_zh, hint_en) = match (&f.help, &f.help_en) {
            (Some(zh), Some(en)) => (format!("：{zh}"), format!(": {en}")),
            _ => (String::new(), String::new()),
        };
        return fail(
            s,
            format!("{}“{}”格式不正确{hint_zh}", s.zh, echo(&t)),
            format!(
                "{}: “{}” is not in the expected format{hint_en}",
                s.en,
                echo(&t)
            ),
        );
    }
    Ok(Value::String(t))
}

/// One @, something before it, a dotted domain after it, no spaces.
fn plausible_email(t: &str) -> bool {
    if t.chars().any(char::is_whitespace) {
        return false;
    }
    let mut parts = t.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    !local.is_empty()
        && local.chars().count() <= 64
        && labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'))
        && labels.last().is_some_and(|tld| tld.chars().count() >= 2)
}

fn number(f: &Field, v: &Value, s: &Subject) -> Checked {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(t) if NUMERIC.is_match(t.trim()) => t.trim().parse::<f64>().ok(),
        Value::String(t) => {
            return fail(
                s,
                format!("{}应为数字（如1000或12.5），“{}”不是数字", s.zh, echo(t)),
                format!(
                    "{} must be a number (like 1000 or 12.5); “{}” is not",
                    s.en,
                    echo(t)
                ),
            );
        }
        other => {
            return fail(
                s,
                format!("{}应为数字，而不是{}", s.zh, json_kind_zh(other)),
                format!("{} must be a number, not {}", s.en, json_kind_en(other)),
            );
        }
    };
    let Some(x) = x.filter(|x| x.is_finite()) else {
        return fail(
            s,
            format!("{}的数值超出范围", s.zh),
            format!("{} is out of range", s.en),
        );
    };
    let mut issues = Vec::new();
    if let Some(min) = f.min
        && x < min
    {
        issues.push(s.issue(
            format!("{}不能小于{min}，当前为{}", s.zh, show_number(x)),
            format!("{} must be at least {min}, got {}", s.en, show_number(x)),
        ));
    }
    if let Some(max) = f.max
        && x > max
    {
        issues.push(s.issue(
            format!("{}不能大于{max}，当前为{}", s.zh, show_number(x)),
            format!("{} must be at most {max}, got {}", s.en, show_number(x)),
        ));
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(number_value(x))
}

/// Whole numbers become JSON integers, others JSON floats.
fn number_value(x: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if x.fract() == 0.0 && x.abs() < EXACT {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

fn show_number(x: f64) -> String {
    echo(&x.to_string())
}

fn date(f: &Field, v: &Value, s: &Subject, today: NaiveDate) -> Checked {
    let t = want_string(v, s)?.trim();
    if !DATE_SHAPE.is_match(t) {
        return fail(
            s,
            format!(
                "{}应为“年-月-日”格式的日期（如2024-05-01），“{}”不符合",
                s.zh,
                echo(t)
            ),
            format!(
                "{} must be a date written YYYY-MM-DD (like 2024-05-01); “{}” is not",
                s.en,
                echo(t)
            ),
        );
    }
    let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") else {
        return fail(
            s,
            format!("{}“{t}”不是有效的日期", s.zh),
            format!("{}: “{t}” is not a real calendar date", s.en),
        );
    };
    let mut issues = Vec::new();
    if let Some((min, is_today)) = date_bound(f.min_date.as_deref(), today)
        && d < min
    {
        let (zh, en) = if is_today {
            (format!("今天（{min}）"), format!("today ({min})"))
        } else {
            (min.to_string(), min.to_string())
        };
        issues.push(s.issue(
            format!("{}不能早于{zh}，当前为{d}", s.zh),
            format!("{} must be {en} or later, got {d}", s.en),
        ));
    }
    if let Some((max, is_today)) = date_bound(f.max_date.as_deref(), today)
        && d > max
    {
        let (zh, en) = if is_today {
            (format!("今天（{max}）"), format!("today ({max})"))
        } else {
            (max.to_string(), max.to_string())
        };
        issues.push(s.issue(
            format!("{}不能晚于{zh}，当前为{d}", s.zh),
            format!("{} must be {en} or earlier, got {d}", s.en),
        ));
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Value::String(d.format("%Y-%m-%d").to_string()))
}

/// A `min_date`/`max_date` as a date, and whether it was the literal `today`.
fn date_bound(bound: Option<&str>, today: NaiveDate) -> Option<(NaiveDate, bool)> {
    let b = bound?.trim();
    if b == "today" {
        return Some((today, true));
    }
    NaiveDate::parse_from_str(b, "%Y-%m-%d")
        .ok()
        .map(|d| (d, false))
}

/// A select value as text: strings (trimmed) and numbers (`1` for option "1").
fn option_text(v: &Value) -> Option<String> {
    match v {
        Value::String(t) => Some(t.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn select(f: &Field, v: &Value, s: &Subject) -> Checked {
    let Some(t) = option_text(v) else {
        return fail(
            s,
            format!("{}应选择一项，而不是{}", s.zh, json_kind_zh(v)),
            format!("{} takes one option, not {}", s.en, json_kind_en(v)),
        );
    };
    match f.options.iter().find(|o| o.value == t) {
        Some(o) => Ok(Value::String(o.value.clone())),
        None => Err(vec![not_an_option(f, s, &t)]),
    }
}

fn not_an_option(f: &Field, s: &Subject, t: &str) -> FieldIssue {
    let (zh, en) = option_list(&f.options);
    s.issue(
        format!("{}的“{}”不是可选项，可选：{zh}", s.zh, echo(t)),
        format!("{}: “{}” is not one of the options ({en})", s.en, echo(t)),
    )
}

fn multiselect(f: &Field, v: &Value, s: &Subject) -> Checked {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().filter(|x| !is_absent(x)).collect(),
        // A single choice sent as a plain string (as an HTML form does) is a list of one.
        Value::String(_) => vec![v],
        other => {
            return fail(
                s,
                format!("{}应为所选项的列表，而不是{}", s.zh, json_kind_zh(other)),
                format!(
                    "{} must be a list of chosen options, not {}",
                    s.en,
                    json_kind_en(other)
                ),
            );
        }
    };
    let mut chosen: HashSet<&str> = HashSet::new();
    let mut issues = Vec::new();
    for item in items {
        let Some(t) = option_text(item) else {
            push_unique(
                &mut issues,
                s.issue(
                    format!("{}的每一项都应为选项值，而不是{}", s.zh, json_kind_zh(item)),
                    format!(
                        "{}: every entry must be an option value, not {}",
                        s.en,
                        json_kind_en(item)
                    ),
                ),
            );
            continue;
        };
        match f.options.iter().find(|o| o.value == t) {
            Some(o) => {
                if !chosen.insert(o.value.as_str()) {
                    push_unique(
                        &mut issues,
                        s.issue(
                            format!("{}重复选择了“{}”", s.zh, o.label),
                            format!("{}: “{}” is chosen more than once", s.en, o.label_en),
                        ),
                    );
                }
            }
            None => push_unique(&mut issues, not_an_option(f, s, &t)),
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    // In the order of the definition, so equal choices give equal values.
    Ok(Value::Array(
        f.options
            .iter()
            .filter(|o| chosen.contains(o.value.as_str()))
            .map(|o| Value::String(o.value.clone()))
            .collect(),
    ))
}

fn checkbox(v: &Value, s: &Subject) -> Checked {
    let b = match v {
        Value::Bool(b) => Some(*b),
        Value::String(t) if t.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(t) if t.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    };
    match b {
        Some(b) => Ok(Value::Bool(b)),
        None => fail(
            s,
            format!("{}只能是“是”或“否”（true/false）", s.zh),
            format!("{} must be yes or no (true/false)", s.en),
        ),
    }
}

/// The Chinese message for an identifier that failed to parse.
fn id_error_zh(s: &Subject, e: &IdError) -> String {
    let what = match e {
        IdError::Length { .. } => "位数有误",
        IdError::Character { .. } => "含有不允许的字符",
        IdError::BirthDate(_) => "出生日期有误",
        IdError::CheckCharacter { .. } => "校验码有误",
    };
    format!("{}{what}：{}", s.zh, e.message_zh())
}

fn id_number(v: &Value, s: &Subject, today: NaiveDate) -> Checked {
    let t = want_string(v, s)?;
    match ResidentId::parse(t) {
        Ok(id) => {
            if let Some(birth) = id.birth_date()
                && birth > today
            {
                return fail(
                    s,
                    format!("{}出生日期有误：出生日期{birth}晚于今天", s.zh),
                    format!("{}: the birth date {birth} is in the future", s.en),
                );
            }
            Ok(Value::String(id.expose().to_owned()))
        }
        Err(e) => fail(s, id_error_zh(s, &e), format!("{}: {e}", s.en)),
    }
}

fn uscc(v: &Value, s: &Subject) -> Checked {
    let t = want_string(v, s)?;
    match Uscc::parse(t) {
        Ok(code) => Ok(Value::String(code.as_str().to_owned())),
        Err(e) => fail(s, id_error_zh(s, &e), format!("{}: {e}", s.en)),
    }
}

/// A mainland mobile number (spaces, dashes and +86 dropped) or a landline with its area
/// code, in its stored form; `None` when it is neither. Forms and base-data imports share it.
pub fn normalise_phone(raw: &str) -> Option<String> {
    let t = raw.trim();
    let compact: String = t
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let mobile = compact.strip_prefix("+86").unwrap_or(&compact);
    if MOBILE.is_match(mobile) {
        return Some(mobile.to_owned());
    }
    let landline: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    LANDLINE.is_match(&landline).then_some(landline)
}

fn phone(v: &Value, s: &Subject) -> Checked {
    let t = want_string(v, s)?.trim();
    if let Some(p) = normalise_phone(t) {
        return Ok(Value::String(p));
    }
    fail(
        s,
        format!(
            "{}“{}”不是有效的电话号码：手机号码为1开头的11位数字（如13800138000），固定电话为区号加号码（如0470-8888008）",
            s.zh,
            echo(t)
        ),
        format!(
            "{}: “{}” is not a valid phone number: a mobile number is 11 digits starting with 1 (like 13800138000), a landline is the area code and number (like 0470-8888008)",
            s.en,
            echo(t)
        ),
    )
}

fn table(
    f: &Field,
    v: &Value,
    s: &Subject,
    ctx: &Ctx<'_>,
    top: &Map<String, Value>,
    issues: &mut Vec<FieldIssue>,
) -> Option<Value> {
    let Value::Array(rows) = v else {
        issues.push(s.issue(
            format!("{}应为表格行的列表，而不是{}", s.zh, json_kind_zh(v)),
            format!("{} must be a list of rows, not {}", s.en, json_kind_en(v)),
        ));
        return None;
    };
    let n = rows.len();
    if let Some(min) = f.min_rows
        && n < min as usize
    {
        issues.push(s.issue(
            format!("{}至少应填写{min}行，当前为{n}行", s.zh),
            format!("{} needs at least {min} rows, got {n}", s.en),
        ));
    }
    let cap = f
        .max_rows
        .map_or(MAX_TABLE_ROWS, |m| (m as usize).min(MAX_TABLE_ROWS));
    if n > cap {
        issues.push(s.issue(
            format!("{}最多填写{cap}行，当前为{n}行", s.zh),
            format!("{} may have at most {cap} rows, got {n}", s.en),
        ));
    }

    let mut out_rows = Vec::with_capacity(n.min(cap));
    // Rows beyond the cap are not looked at: the row count is already reported.
    for (i, row) in rows.iter().take(cap).enumerate() {
        let Value::Object(cells) = row else {
            issues.push(FieldIssue {
                field: format!("{}[{i}]", f.id),
                zh: format!(
                    "{}第{}行应为一组列值，而不是{}",
                    s.zh,
                    i + 1,
                    json_kind_zh(row)
                ),
                en: format!(
                    "{}, row {}: must be an object of column values, not {}",
                    s.en,
                    i + 1,
                    json_kind_en(row)
                ),
            });
            continue;
        };
        let mut out = Map::new();
        for col in &f.columns {
            let cs = Subject::cell(f, i, col);
            let raw = present(cells.get(&col.id));
            if let Some(v) = normalise_present(col, raw, &cs, ctx, top, issues) {
                out.insert(col.id.clone(), v);
            }
            if let Some(issue) =
                requirement_issue(col, &cs, raw.is_some(), out.get(&col.id), top, ctx)
            {
                issues.push(issue);
            }
        }
        for key in cells.keys() {
            if !f.columns.iter().any(|c| &c.id == key) {
                let key = echo(key);
                issues.push(FieldIssue {
                    field: format!("{}[{i}].{key}", f.id),
                    zh: format!("{}第{}行：表格中没有“{key}”这一列", s.zh, i + 1),
                    en: format!("{}, row {}: unknown column “{key}”", s.en, i + 1),
                });
            }
        }
        out_rows.push(Value::Object(out));
    }
    Some(Value::Array(out_rows))
}

/// The issue for a field that is required (always, or by its condition) but missing —
/// or, for a checkbox, not ticked. `cond_values` are the normalised top-level values
/// that `required_if` conditions refer to.
fn requirement_issue(
    f: &Field,
    s: &Subject,
    raw_present: bool,
    normalised: Option<&Value>,
    cond_values: &Map<String, Value>,
    ctx: &Ctx<'_>,
) -> Option<FieldIssue> {
    let missing = match f.field_type {
        FieldType::Checkbox => normalised == Some(&Value::Bool(false)),
        _ => !raw_present,
    };
    if !missing {
        return None;
    }
    if f.required {
        let (zh, en) = match f.field_type {
            FieldType::Checkbox => (
                format!("请勾选{}", s.zh),
                format!("{} must be ticked", s.en),
            ),
            FieldType::Select | FieldType::Multiselect => (
                format!("请选择{}", s.zh),
                format!("{} is required: choose an option", s.en),
            ),
            FieldType::Table => {
                let min = f.min_rows.unwrap_or(1).max(1);
                (
                    format!("请填写{}（至少{min}行）", s.zh),
                    format!("{} is required (at least {min} rows)", s.en),
                )
            }
            _ => (format!("请填写{}", s.zh), format!("{} is required", s.en)),
        };
        return Some(s.issue(zh, en));
    }
    let cond = f.required_if.as_ref()?;
    if !condition_met(cond, cond_values) {
        return None;
    }
    let (when_zh, when_en) = describe_condition(cond, ctx.fields);
    let (zh, en) = match f.field_type {
        FieldType::Checkbox => (
            format!("{when_zh}须勾选{}", s.zh),
            format!("{} must be ticked {when_en}", s.en),
        ),
        _ => (
            format!("{when_zh}须填写{}", s.zh),
            format!("{} is required {when_en}", s.en),
        ),
    };
    Some(s.issue(zh, en))
}

/// Whether the condition field's normalised value equals (or, for a multiselect,
/// contains) the condition's value; checkboxes compare as "true"/"false".
fn condition_met(cond: &Condition, values: &Map<String, Value>) -> bool {
    let want = cond.equals.trim();
    match values.get(&cond.field) {
        Some(Value::String(s)) => s == want,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(want)),
        Some(Value::Bool(b)) => want.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Some(Value::Number(n)) => want
            .parse::<f64>()
            .ok()
            .zip(n.as_f64())
            .is_some_and(|(a, b)| a == b),
        _ => false,
    }
}

/// "when “X” is “Y”" in both languages, with option labels for select fields.
fn describe_condition(cond: &Condition, fields: &[Field]) -> (String, String) {
    let Some(other) = fields.iter().find(|f| f.id == cond.field) else {
        return (
            format!("“{}”为“{}”时", cond.field, cond.equals),
            format!("when “{}” is “{}”", cond.field, cond.equals),
        );
    };
    let option = other.options.iter().find(|o| o.value == cond.equals);
    let (value_zh, value_en) = option.map_or((cond.equals.as_str(), cond.equals.as_str()), |o| {
        (o.label.as_str(), o.label_en.as_str())
    });
    match other.field_type {
        FieldType::Checkbox if cond.equals.trim().eq_ignore_ascii_case("false") => (
            format!("未勾选“{}”时", other.label),
            format!("when “{}” is not ticked", other.label_en),
        ),
        FieldType::Checkbox => (
            format!("勾选“{}”时", other.label),
            format!("when “{}” is ticked", other.label_en),
        ),
        FieldType::Multiselect => (
            format!("“{}”包含“{value_zh}”时", other.label),
            format!("when “{}” includes “{value_en}”", other.label_en),
        ),
        _ => (
            format!("“{}”为“{value_zh}”时", other.label),
            format!("when “{}” is “{value_en}”", other.label_en),
        ),
    }
}

/// The options' labels for a message, abbreviated after [`LISTED_OPTIONS`].
fn option_list(options: &[Choice]) -> (String, String) {
    let shown = &options[..options.len().min(LISTED_OPTIONS)];
    let mut zh = shown
        .iter()
        .map(|o| o.label.as_str())
        .collect::<Vec<_>>()
        .join("、");
    let mut en = shown
        .iter()
        .map(|o| o.label_en.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if options.len() > shown.len() {
        zh.push_str(&format!("等{}项", options.len()));
        en.push_str(&format!(", … ({} in all)", options.len()));
    }
    (zh, en)
}

fn json_kind_zh(v: &Value) -> &'static str {
    match v {
        Value::Null => "空值",
        Value::Bool(_) => "是/否值",
        Value::Number(_) => "数字",
        Value::String(_) => "文本",
        Value::Array(_) => "列表",
        Value::Object(_) => "对象",
    }
}

fn json_kind_en(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// At most the first [`ECHO_CHARS`] characters of a submitted value.
fn echo(s: &str) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(ECHO_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

fn push_unique(issues: &mut Vec<FieldIssue>, issue: FieldIssue) {
    if !issues.contains(&issue) {
        issues.push(issue);
    }
}

// ---------------------------------------------------------------------------------------
// Material internals

fn file_type_name(t: FileType) -> &'static str {
    match t {
        FileType::Pdf => "PDF",
        FileType::Jpg => "JPG",
        FileType::Png => "PNG",
        FileType::Ofd => "OFD",
    }
}

fn file_type_list(types: &[FileType]) -> (String, String) {
    let names: Vec<&str> = types.iter().map(|t| file_type_name(*t)).collect();
    (names.join("、"), names.join(", "))
}

/// Bytes as megabytes with one decimal, rounded up so that "10.0 MB" never hides a
/// file just over a 10 MB limit.
fn mb(bytes: u64) -> String {
    let tenths = bytes.saturating_mul(10).div_ceil(BYTES_PER_MB);
    format!("{}.{}", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalogue::Material;
    use serde_json::json;

    const HEADER: &str = r#"
code = "TEST-FORM-0001"
name = "测试事项"
name_en = "Test service"
item_type = "permit"
department = "11150700MB1530008K"
case_kind = "promised"
applicant_types = ["person"]
min_assurance = 2
channels = ["online"]
[guide]
summary = "测试"
summary_en = "Test"
conditions = ["无"]
conditions_en = ["None"]
legal_basis = ["测试"]
fee = "不收费"
fee_en = "Free"
legal_limit = { value = 20, unit = "working_days" }
promised_limit = { value = 5, unit = "working_days" }
max_visits = 0
[routing]
departments = ["11150700MB1530008K"]
"#;

    const FIELDS: &str = r#"
[[fields]]
id = "name"
label = "经营者姓名"
label_en = "Operator's name"
type = "text"
required = true
max_length = 10

[[fields]]
id = "id_number"
label = "经营者身份证号"
label_en = "Operator's resident ID number"
type = "id_number"
required = true

[[fields]]
id = "uscc"
label = "统一社会信用代码"
label_en = "Unified social credit code"
type = "uscc"

[[fields]]
id = "phone"
label = "联系电话"
label_en = "Contact phone"
type = "phone"

[[fields]]
id = "email"
label = "电子邮箱"
label_en = "Email"
type = "email"

[[fields]]
id = "address"
label = "经营场所"
label_en = "Premises address"
type = "address"

[[fields]]
id = "note"
label = "备注"
label_en = "Notes"
type = "textarea"
min_length = 5

[[fields]]
id = "staff"
label = "从业人数"
label_en = "Number of staff"
type = "number"
min = 1
max = 500

[[fields]]
id = "start"
label = "开业日期"
label_en = "Opening date"
type = "date"
min_date = "today"

[[fields]]
id = "founded"
label = "成立日期"
label_en = "Founding date"
type = "date"
min_date = "2000-01-01"
max_date = "today"

[[fields]]
id = "tenure"
label = "场所性质"
label_en = "Premises tenure"
type = "select"
required = true
options = [
  { value = "owned", label = "自有", label_en = "Owned" },
  { value = "leased", label = "租赁", label_en = "Leased" },
]

[[fields]]
id = "lease_end"
label = "租赁到期日"
label_en = "Lease end date"
type = "date"
required_if = { field = "tenure", equals = "leased" }

[[fields]]
id = "scope"
label = "经营项目"
label_en = "Business lines"
type = "multiselect"
options = [
  { value = "food", label = "食品", label_en = "Food" },
  { value = "drink", label = "饮品", label_en = "Drinks" },
  { value = "tobacco", label = "烟草", label_en = "Tobacco" },
]

[[fields]]
id = "tobacco_licence"
label = "烟草专卖许可证号"
label_en = "Tobacco licence number"
type = "text"
required_if = { field = "scope", equals = "tobacco" }
pattern = '\d{12}'
help = "12位数字。"
help_en = "12 digits."

[[fields]]
id = "by_post"
label = "邮寄送达"
label_en = "Delivery by post"
type = "checkbox"

[[fields]]
id = "postal_address"
label = "邮寄地址"
label_en = "Postal address"
type = "address"
required_if = { field = "by_post", equals = "true" }

[[fields]]
id = "collect_at_window"
label = "窗口领取地点"
label_en = "Window to collect at"
type = "text"
required_if = { field = "by_post", equals = "false" }

[[fields]]
id = "consent"
label = "本人承诺所填信息真实"
label_en = "I declare the information is true"
type = "checkbox"
required = true

[[fields]]
id = "family_members"
label = "家庭成员"
label_en = "Family members"
type = "table"
max_rows = 3
columns = [
  { id = "name", label = "姓名", label_en = "Name", type = "text", required = true, max_length = 20 },
  { id = "id_number", label = "身份证号", label_en = "Resident ID number", type = "id_number", required = true },
  { id = "relation", label = "关系", label_en = "Relation", type = "select", required = true, options = [
    { value = "spouse", label = "配偶", label_en = "Spouse" },
    { value = "child", label = "子女", label_en = "Child" },
  ] },
  { id = "income", label = "月收入", label_en = "Monthly income", type = "number", min = 0 },
  { id = "lease_share", label = "租金分担", label_en = "Share of the rent", type = "number", required_if = { field = "tenure", equals = "leased" } },
]
"#;

    const MATERIALS: &str = r#"
[[materials]]
id = "id_card"
name = "身份证"
name_en = "Identity card"
required = true
form = "copy"
file_types = ["pdf", "jpg"]
max_size_mb = 5
substitute = "elicence.resident_id_card"

[[materials]]
id = "lease"
name = "租赁合同"
name_en = "Lease contract"
required = true
form = "copy"
file_types = ["pdf"]
max_size_mb = 10

[[materials]]
id = "photo"
name = "场所照片"
name_en = "Photo of the premises"
required = false
form = "electronic"
file_types = ["jpg", "png"]
max_size_mb = 2
"#;

    const ID: &str = "11010519491231002X";
    const USCC: &str = "11150700MB1530008K";

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 16).expect("date")
    }

    fn service() -> Service {
        toml::from_str(&format!("{HEADER}{FIELDS}{MATERIALS}")).expect("test service")
    }

    /// A valid resident ID with the given first 17 characters.
    fn valid_id(first17: &str) -> String {
        match ResidentId::parse(&format!("{first17}0")) {
            Ok(id) => id.expose().to_owned(),
            Err(IdError::CheckCharacter { expected, .. }) => format!("{first17}{expected}"),
            Err(e) => panic!("bad test id {first17}: {e}"),
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    /// The smallest valid submission, with `extra` merged in.
    fn with(extra: Value) -> Map<String, Value> {
        let mut m = obj(json!({
            "name": "张三",
            "id_number": ID,
            "tenure": "owned",
            "consent": true,
            "collect_at_window": "政务服务大厅",
        }));
        m.extend(obj(extra));
        m
    }

    fn ok(values: Map<String, Value>) -> Map<String, Value> {
        validate_form(&service(), &values, today()).expect("valid submission")
    }

    fn issues(values: Map<String, Value>) -> Vec<FieldIssue> {
        validate_form(&service(), &values, today()).expect_err("invalid submission")
    }

    /// The only issue of a submission.
    fn one_issue(values: Map<String, Value>) -> FieldIssue {
        let mut all = issues(values);
        assert_eq!(all.len(), 1, "{all:#?}");
        all.remove(0)
    }

    fn fields_of(all: &[FieldIssue]) -> Vec<&str> {
        all.iter().map(|i| i.field.as_str()).collect()
    }

    // ---- basics ------------------------------------------------------------------

    #[test]
    fn minimal_submission_passes() {
        let out = ok(with(json!({})));
        assert_eq!(out["name"], json!("张三"));
        assert_eq!(out["tenure"], json!("owned"));
        assert_eq!(out["consent"], json!(true));
    }

    #[test]
    fn unticked_checkboxes_come_out_false_and_absent_values_are_left_out() {
        let out = ok(with(json!({})));
        assert_eq!(out["by_post"], json!(false));
        assert!(!out.contains_key("email"));
        assert!(!out.contains_key("family_members"));
    }

    #[test]
    fn text_is_trimmed_and_id_upper_cased() {
        let out = ok(with(json!({
            "name": "  张三 \n",
            "id_number": " 11010519491231002x ",
        })));
        assert_eq!(out["name"], json!("张三"));
        assert_eq!(out["id_number"], json!(ID));
    }

    #[test]
    fn unknown_fields_are_reported_each() {
        let all = issues(with(json!({ "nickname": "x", "age": 3 })));
        assert_eq!(fields_of(&all), vec!["age", "nickname"]);
        assert!(all[1].zh.contains("“nickname”"), "{:?}", all[1]);
        assert!(all[1].en.contains("Unknown field"), "{:?}", all[1]);
    }

    #[test]
    fn null_blank_and_empty_array_count_as_absent() {
        let all = issues(with(
            json!({ "name": null, "id_number": "   ", "email": "", "scope": [] }),
        ));
        assert_eq!(fields_of(&all), vec!["name", "id_number"]);
        assert_eq!(all[0].zh, "请填写“经营者姓名”");
        assert_eq!(all[0].en, "“Operator's name” is required");
    }

    #[test]
    fn required_select_asks_to_choose() {
        let mut values = with(json!({}));
        values.remove("tenure");
        let issue = one_issue(values);
        assert_eq!(issue.field, "tenure");
        assert_eq!(issue.zh, "请选择“场所性质”");
    }

    #[test]
    fn every_issue_is_reported_together() {
        let all = issues(obj(json!({
            "name": "一二三四五六七八九十十一",
            "phone": "123",
            "staff": 0,
            "start": "2025-06-15",
            "tenure": "rented",
            "consent": false,
            "extra": 1,
        })));
        assert_eq!(
            fields_of(&all),
            vec![
                "name",
                "id_number",
                "phone",
                "staff",
                "start",
                "tenure",
                "collect_at_window",
                "consent",
                "extra"
            ],
            "{all:#?}"
        );
    }

    #[test]
    fn echoes_at_most_fifty_characters_of_a_value() {
        let long = "甲".repeat(80);
        let issue = one_issue(with(json!({ "tenure": long })));
        assert!(
            issue.zh.contains(&format!("“{}…”", "甲".repeat(50))),
            "{issue:?}"
        );
        assert!(!issue.zh.contains(&"甲".repeat(51)));
        assert!(!issue.en.contains(&"甲".repeat(51)));
    }

    // ---- text ----------------------------------------------------------------------

    #[test]
    fn text_over_max_length_names_the_limit() {
        let issue = one_issue(with(json!({ "name": "一二三四五六七八九十十一" })));
        assert_eq!(issue.field, "name");
        assert_eq!(issue.zh, "“经营者姓名”不能超过10个字符，当前为12个字符");
        assert_eq!(
            issue.en,
            "“Operator's name” must be at most 10 characters long, got 12"
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        ok(with(json!({ "name": "一二三四五六七八九十" })));
    }

    #[test]
    fn text_under_min_length_names_the_limit() {
        let issue = one_issue(with(json!({ "note": "短" })));
        assert_eq!(issue.field, "note");
        assert!(issue.zh.contains("至少应为5个字符"), "{issue:?}");
        assert!(issue.en.contains("at least 5 characters"), "{issue:?}");
    }

    #[test]
    fn default_max_lengths_apply() {
        ok(with(json!({ "address": "路".repeat(300) })));
        let issue = one_issue(with(json!({ "address": "路".repeat(301) })));
        assert!(issue.en.contains("at most 300"), "{issue:?}");
        ok(with(json!({ "note": "字".repeat(2000) })));
        let issue = one_issue(with(json!({ "note": "字".repeat(2001) })));
        assert!(issue.en.contains("at most 2000"), "{issue:?}");
        let s = service();
        let by_id = |id: &str| s.fields.iter().find(|f| f.id == id).expect("field");
        assert_eq!(max_length(by_id("email")), Some(254));
        assert_eq!(max_length(by_id("tobacco_licence")), Some(200));
        assert_eq!(max_length(by_id("staff")), None);
    }

    #[test]
    fn text_must_be_a_string() {
        let issue = one_issue(with(json!({ "address": 42 })));
        assert_eq!(issue.zh, "“经营场所”应填写文本，而不是数字");
        assert_eq!(issue.en, "“Premises address” must be text, not a number");
    }

    #[test]
    fn single_line_text_refuses_line_breaks_but_textarea_keeps_them() {
        let issue = one_issue(with(json!({ "address": "一行\n两行" })));
        assert!(issue.en.contains("single line"), "{issue:?}");
        let out = ok(with(json!({ "note": "第一行内容\r\n第二行内容" })));
        assert_eq!(out["note"], json!("第一行内容\n第二行内容"));
    }

    #[test]
    fn control_characters_are_refused() {
        let issue = one_issue(with(json!({ "note": "正常文字\u{0}多一点" })));
        assert!(issue.en.contains("control characters"), "{issue:?}");
    }

    #[test]
    fn pattern_must_match_the_whole_value() {
        let base = json!({ "scope": ["tobacco"] });
        let mut v = with(base.clone());
        v.insert("tobacco_licence".into(), json!("123456789012"));
        ok(v);
        let mut v = with(base);
        v.insert("tobacco_licence".into(), json!("1234567890123"));
        let issue = one_issue(v);
        assert_eq!(issue.field, "tobacco_licence");
        assert_eq!(
            issue.zh,
            "“烟草专卖许可证号”“1234567890123”格式不正确：12位数字。"
        );
        assert!(
            issue.en.ends_with("not in the expected format: 12 digits."),
            "{issue:?}"
        );
    }

    #[test]
    fn plausible_emails_pass() {
        for e in [
            "a@example.com",
            "li.ming+tag@mail.gov.cn",
            " x_y@sub.example.org ",
        ] {
            let out = ok(with(json!({ "email": e })));
            assert_eq!(out["email"], json!(e.trim()));
        }
    }

    #[test]
    fn implausible_emails_fail() {
        for e in [
            "plain",
            "a@b",
            "a@@example.com",
            "a@b@example.com",
            "@example.com",
            "a b@example.com",
            "a@example..com",
            "a@.example.com",
            "a@example.c",
        ] {
            let issue = one_issue(with(json!({ "email": e })));
            assert_eq!(issue.field, "email", "{e}");
            assert!(issue.en.contains("not a valid email"), "{e}: {issue:?}");
        }
    }

    #[test]
    fn email_longer_than_254_fails_on_length() {
        let e = format!("{}@example.com", "a".repeat(250));
        let issue = one_issue(with(json!({ "email": e })));
        assert!(issue.en.contains("at most 254"), "{issue:?}");
    }

    // ---- numbers -------------------------------------------------------------------

    #[test]
    fn numbers_pass_as_json_numbers_and_numeric_strings() {
        assert_eq!(ok(with(json!({ "staff": 12 })))["staff"], json!(12));
        assert_eq!(ok(with(json!({ "staff": " 12 " })))["staff"], json!(12));
        assert_eq!(ok(with(json!({ "staff": "12.0" })))["staff"], json!(12));
        assert_eq!(ok(with(json!({ "staff": "12.5" })))["staff"], json!(12.5));
        assert_eq!(ok(with(json!({ "staff": 500.0 })))["staff"], json!(500));
    }

    #[test]
    fn numbers_out_of_range_name_the_bound() {
        let issue = one_issue(with(json!({ "staff": 0 })));
        assert_eq!(issue.zh, "“从业人数”不能小于1，当前为0");
        assert_eq!(issue.en, "“Number of staff” must be at least 1, got 0");
        let issue = one_issue(with(json!({ "staff": "501" })));
        assert_eq!(issue.zh, "“从业人数”不能大于500，当前为501");
    }

    #[test]
    fn non_numbers_are_refused() {
        for v in [
            json!("12人"),
            json!("1,000"),
            json!("NaN"),
            json!("inf"),
            json!(true),
        ] {
            let issue = one_issue(with(json!({ "staff": v })));
            assert_eq!(issue.field, "staff");
            assert!(issue.en.contains("must be a number"), "{v}: {issue:?}");
        }
    }

    // ---- dates ---------------------------------------------------------------------

    #[test]
    fn dates_are_checked_against_today() {
        assert_eq!(
            ok(with(json!({ "start": "2025-06-16" })))["start"],
            json!("2025-06-16")
        );
        ok(with(json!({ "start": "2026-01-01" })));
        let issue = one_issue(with(json!({ "start": "2025-06-15" })));
        assert_eq!(
            issue.zh,
            "“开业日期”不能早于今天（2025-06-16），当前为2025-06-15"
        );
        assert_eq!(
            issue.en,
            "“Opening date” must be today (2025-06-16) or later, got 2025-06-15"
        );
        ok(with(json!({ "founded": "2025-06-16" })));
        let issue = one_issue(with(json!({ "founded": "2025-06-17" })));
        assert!(issue.zh.contains("不能晚于今天（2025-06-16）"), "{issue:?}");
        assert!(
            issue.en.contains("today (2025-06-16) or earlier"),
            "{issue:?}"
        );
    }

    #[test]
    fn literal_date_bounds_apply() {
        ok(with(json!({ "founded": "2000-01-01" })));
        let issue = one_issue(with(json!({ "founded": "1999-12-31" })));
        assert_eq!(
            issue.en,
            "“Founding date” must be 2000-01-01 or later, got 1999-12-31"
        );
    }

    #[test]
    fn malformed_and_impossible_dates_are_refused() {
        for d in ["2025/07/01", "20250701", "2025-7-1", "tomorrow"] {
            let issue = one_issue(with(json!({ "start": d })));
            assert!(issue.en.contains("YYYY-MM-DD"), "{d}: {issue:?}");
        }
        let issue = one_issue(with(json!({ "start": "2026-02-30" })));
        assert!(issue.en.contains("not a real calendar date"), "{issue:?}");
    }

    // ---- choices -------------------------------------------------------------------

    #[test]
    fn select_refuses_unknown_values_listing_the_options() {
        let issue = one_issue(with(json!({ "tenure": "rented" })));
        assert_eq!(issue.zh, "“场所性质”的“rented”不是可选项，可选：自有、租赁");
        assert_eq!(
            issue.en,
            "“Premises tenure”: “rented” is not one of the options (Owned, Leased)"
        );
        let issue = one_issue(with(json!({ "tenure": ["owned"] })));
        assert!(issue.en.contains("takes one option"), "{issue:?}");
    }

    #[test]
    fn long_option_lists_are_abbreviated() {
        let options: Vec<Choice> = (0..14)
            .map(|i| Choice {
                value: i.to_string(),
                label: format!("选项{i}"),
                label_en: format!("Option {i}"),
            })
            .collect();
        let (zh, en) = option_list(&options);
        assert!(zh.ends_with("选项9等14项"), "{zh}");
        assert!(en.ends_with("Option 9, … (14 in all)"), "{en}");
    }

    #[test]
    fn multiselect_is_normalised_to_definition_order() {
        let out = ok(with(json!({ "scope": ["drink", "food"] })));
        assert_eq!(out["scope"], json!(["food", "drink"]));
        let out = ok(with(json!({ "scope": "drink" })));
        assert_eq!(out["scope"], json!(["drink"]));
    }

    #[test]
    fn multiselect_refuses_duplicates_unknowns_and_non_lists() {
        let all = issues(with(json!({ "scope": ["food", "food", "guns"] })));
        assert_eq!(fields_of(&all), vec!["scope", "scope"]);
        assert_eq!(all[0].zh, "“经营项目”重复选择了“食品”");
        assert!(
            all[1]
                .en
                .contains("“guns” is not one of the options (Food, Drinks, Tobacco)")
        );
        let issue = one_issue(with(json!({ "scope": { "food": true } })));
        assert!(issue.en.contains("list of chosen options"), "{issue:?}");
    }

    #[test]
    fn checkbox_takes_bools_and_true_false_strings() {
        let out = ok(with(json!({ "by_post": "false", "consent": "TRUE" })));
        assert_eq!(out["by_post"], json!(false));
        assert_eq!(out["consent"], json!(true));
        let issue = one_issue(with(json!({ "consent": "yes" })));
        assert_eq!(issue.field, "consent");
        assert!(issue.en.contains("true/false"), "{issue:?}");
    }

    #[test]
    fn required_checkbox_must_be_ticked() {
        let issue = one_issue(with(json!({ "consent": false })));
        assert_eq!(issue.zh, "请勾选“本人承诺所填信息真实”");
        assert_eq!(
            issue.en,
            "“I declare the information is true” must be ticked"
        );
        let mut values = with(json!({}));
        values.remove("consent");
        assert_eq!(one_issue(values).field, "consent");
    }

    // ---- identifiers and phones ----------------------------------------------------

    #[test]
    fn id_number_check_character_message() {
        let issue = one_issue(with(json!({ "id_number": "110105194912310021" })));
        assert_eq!(issue.field, "id_number");
        assert_eq!(
            issue.zh,
            "“经营者身份证号”校验码有误：校验码应为“X”，实际为“1”"
        );
        assert_eq!(
            issue.en,
            "“Operator's resident ID number”: check character is '1' but should be 'X'"
        );
    }

    #[test]
    fn id_number_length_character_and_birth_date() {
        let issue = one_issue(with(json!({ "id_number": "1101051949123100" })));
        assert_eq!(
            issue.zh,
            "“经营者身份证号”位数有误：长度应为18位，实际为16位"
        );
        let issue = one_issue(with(json!({ "id_number": "11010519491231A02X" })));
        assert!(issue.zh.contains("第15位字符“A”不合法"), "{issue:?}");
        let issue = one_issue(with(json!({ "id_number": "11010519491331002X" })));
        assert!(issue.zh.contains("出生日期有误"), "{issue:?}");
        let issue = one_issue(with(json!({ "id_number": valid_id("11010520300101002") })));
        assert!(issue.en.contains("in the future"), "{issue:?}");
        let issue = one_issue(with(json!({ "id_number": 110105194912310021u64 })));
        assert!(issue.en.contains("must be text"), "{issue:?}");
    }

    #[test]
    fn uscc_is_checked_and_upper_cased() {
        let out = ok(with(json!({ "uscc": USCC.to_lowercase() })));
        assert_eq!(out["uscc"], json!(USCC));
        let issue = one_issue(with(json!({ "uscc": "11150700MB15300081" })));
        assert_eq!(issue.field, "uscc");
        assert_eq!(
            issue.zh,
            "“统一社会信用代码”校验码有误：校验码应为“K”，实际为“1”"
        );
        assert!(
            issue
                .en
                .starts_with("“Unified social credit code”: check character")
        );
    }

    #[test]
    fn mobile_numbers_are_compacted() {
        for p in [
            "13800138000",
            "138 0013 8000",
            "138-0013-8000",
            "+86 138 0013 8000",
        ] {
            assert_eq!(
                ok(with(json!({ "phone": p })))["phone"],
                json!("13800138000"),
                "{p}"
            );
        }
    }

    #[test]
    fn landlines_pass() {
        for (p, want) in [
            ("0470-8888008", "0470-8888008"),
            ("04708888008", "04708888008"),
            ("010-12345678", "010-12345678"),
            ("0470 - 8888008", "0470-8888008"),
        ] {
            assert_eq!(ok(with(json!({ "phone": p })))["phone"], json!(want), "{p}");
        }
    }

    #[test]
    fn invalid_phones_fail() {
        for p in [
            "12800138000",
            "1380013800",
            "138001380001",
            "4708888008",
            "0470-888",
            "phone",
        ] {
            let issue = one_issue(with(json!({ "phone": p })));
            assert_eq!(issue.field, "phone", "{p}");
            assert!(
                issue.en.contains("not a valid phone number"),
                "{p}: {issue:?}"
            );
        }
    }

    // ---- required_if ---------------------------------------------------------------

    #[test]
    fn required_if_select_both_branches() {
        ok(with(json!({ "tenure": "owned" })));
        let all = issues(with(json!({ "tenure": "leased" })));
        assert_eq!(fields_of(&all), vec!["lease_end"]);
        assert_eq!(all[0].zh, "“场所性质”为“租赁”时须填写“租赁到期日”");
        assert_eq!(
            all[0].en,
            "“Lease end date” is required when “Premises tenure” is “Leased”"
        );
        ok(with(
            json!({ "tenure": "leased", "lease_end": "2027-01-01" }),
        ));
    }

    #[test]
    fn required_if_multiselect_means_contains() {
        ok(with(json!({ "scope": ["food"] })));
        let issue = one_issue(with(json!({ "scope": ["food", "tobacco"] })));
        assert_eq!(issue.field, "tobacco_licence");
        assert_eq!(issue.zh, "“经营项目”包含“烟草”时须填写“烟草专卖许可证号”");
        assert!(
            issue
                .en
                .ends_with("when “Business lines” includes “Tobacco”")
        );
    }

    #[test]
    fn required_if_checkbox_true_and_false() {
        let issue = one_issue(with(json!({ "by_post": true })));
        assert_eq!(issue.field, "postal_address");
        assert_eq!(issue.zh, "勾选“邮寄送达”时须填写“邮寄地址”");
        ok(with(
            json!({ "by_post": true, "postal_address": "海拉尔区胜利大街1号" }),
        ));

        let mut values = with(json!({}));
        values.remove("collect_at_window");
        let issue = one_issue(values);
        assert_eq!(issue.field, "collect_at_window");
        assert_eq!(
            issue.en,
            "“Window to collect at” is required when “Delivery by post” is not ticked"
        );
    }

    #[test]
    fn invalid_condition_field_does_not_trigger_required_if() {
        let issue = one_issue(with(json!({ "tenure": "rented" })));
        assert_eq!(issue.field, "tenure");
    }

    #[test]
    fn condition_matching_rules() {
        let cond = |equals: &str| Condition {
            field: "f".into(),
            equals: equals.into(),
        };
        let vals = |v: Value| obj(json!({ "f": v }));
        assert!(condition_met(&cond("a"), &vals(json!("a"))));
        assert!(!condition_met(&cond("a"), &vals(json!("b"))));
        assert!(condition_met(&cond("b"), &vals(json!(["a", "b"]))));
        assert!(condition_met(&cond("true"), &vals(json!(true))));
        assert!(condition_met(&cond("false"), &vals(json!(false))));
        assert!(!condition_met(&cond("true"), &vals(json!(false))));
        assert!(condition_met(&cond("3"), &vals(json!(3))));
        assert!(!condition_met(&cond("a"), &Map::new()));
    }

    // ---- tables --------------------------------------------------------------------

    fn member(name: &str, id: &str, relation: &str) -> Value {
        json!({ "name": name, "id_number": id, "relation": relation })
    }

    #[test]
    fn table_rows_are_normalised() {
        let out = ok(with(json!({ "family_members": [
            { "name": " 李四 ", "id_number": "11010519491231002x", "relation": "spouse", "income": "3000" },
            member("王五", &valid_id("15070220100101001"), "child"),
        ] })));
        assert_eq!(
            out["family_members"][0],
            json!({ "name": "李四", "id_number": ID, "relation": "spouse", "income": 3000 })
        );
        assert_eq!(out["family_members"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn table_cell_errors_carry_paths() {
        let all = issues(with(json!({ "family_members": [
            member("李四", ID, "spouse"),
            member("王五", "110105194912310021", "cousin"),
        ] })));
        assert_eq!(
            fields_of(&all),
            vec!["family_members[1].id_number", "family_members[1].relation"]
        );
        assert_eq!(
            all[0].zh,
            "“家庭成员”第2行的“身份证号”校验码有误：校验码应为“X”，实际为“1”"
        );
        assert_eq!(
            all[0].en,
            "“Family members”, row 2, “Resident ID number”: check character is '1' but should be 'X'"
        );
    }

    #[test]
    fn table_required_columns_and_unknown_columns() {
        let all = issues(with(json!({ "family_members": [
            { "name": "李四", "relation": "spouse", "age": 40 },
        ] })));
        assert_eq!(
            fields_of(&all),
            vec!["family_members[0].id_number", "family_members[0].age"]
        );
        assert_eq!(all[0].zh, "请填写“家庭成员”第1行的“身份证号”");
        assert_eq!(all[1].en, "“Family members”, row 1: unknown column “age”");
    }

    #[test]
    fn table_column_required_if_looks_at_top_level_fields() {
        let rows = json!([member("李四", ID, "spouse")]);
        ok(with(json!({ "family_members": rows.clone() })));
        let issue = one_issue(with(json!({
            "tenure": "leased",
            "lease_end": "2027-01-01",
            "family_members": rows,
        })));
        assert_eq!(issue.field, "family_members[0].lease_share");
        assert_eq!(
            issue.zh,
            "“场所性质”为“租赁”时须填写“家庭成员”第1行的“租金分担”"
        );
    }

    #[test]
    fn table_row_count_limits() {
        let row = member("李四", ID, "spouse");
        let issue = one_issue(with(
            json!({ "family_members": [row.clone(), row.clone(), row.clone(), row] }),
        ));
        assert_eq!(issue.field, "family_members");
        assert_eq!(issue.zh, "“家庭成员”最多填写3行，当前为4行");
        assert_eq!(issue.en, "“Family members” may have at most 3 rows, got 4");
    }

    #[test]
    fn table_min_rows_and_required_table() {
        let mut s = service();
        let t = s
            .fields
            .iter_mut()
            .find(|f| f.id == "family_members")
            .expect("table");
        t.min_rows = Some(2);
        t.required = true;
        let all = validate_form(&s, &with(json!({})), today()).expect_err("required");
        assert_eq!(all[0].zh, "请填写“家庭成员”（至少2行）");
        let values = with(json!({ "family_members": [member("李四", ID, "spouse")] }));
        let all = validate_form(&s, &values, today()).expect_err("too few");
        assert_eq!(all[0].en, "“Family members” needs at least 2 rows, got 1");
    }

    #[test]
    fn table_shape_errors() {
        let issue = one_issue(with(json!({ "family_members": { "name": "李四" } })));
        assert_eq!(issue.field, "family_members");
        assert!(issue.en.contains("list of rows"), "{issue:?}");
        let issue = one_issue(with(json!({ "family_members": ["李四"] })));
        assert_eq!(issue.field, "family_members[0]");
        assert!(issue.en.contains("row 1: must be an object"), "{issue:?}");
    }

    // ---- materials -----------------------------------------------------------------

    fn upload(material: &str, file_type: FileType, size: u64) -> ProvidedMaterial {
        ProvidedMaterial::Upload {
            material: material.into(),
            file_type,
            size,
        }
    }

    fn substituted(material: &str) -> ProvidedMaterial {
        ProvidedMaterial::Substituted {
            material: material.into(),
        }
    }

    #[test]
    fn complete_materials_pass() {
        let s = service();
        let got = check_materials(
            &s,
            &[
                upload("id_card", FileType::Jpg, 300_000),
                upload("id_card", FileType::Jpg, 300_000),
                upload("lease", FileType::Pdf, 5 * BYTES_PER_MB),
            ],
        );
        assert_eq!(got, vec![]);
    }

    #[test]
    fn required_materials_missing_are_reported() {
        let got = check_materials(&service(), &[]);
        assert_eq!(
            fields_of(&got),
            vec!["materials.id_card", "materials.lease"]
        );
        assert!(got[0].zh.contains("免提交"), "{:?}", got[0]);
        assert_eq!(got[1].zh, "请上传“租赁合同”");
        assert_eq!(got[1].en, "“Lease contract” is required: upload it");
    }

    #[test]
    fn substitution_only_where_the_definition_allows_it() {
        let got = check_materials(&service(), &[substituted("id_card"), substituted("lease")]);
        assert_eq!(fields_of(&got), vec!["materials.lease"]);
        assert_eq!(got[0].zh, "“租赁合同”不能免提交，请上传该材料");
        let got = check_materials(
            &service(),
            &[substituted("id_card"), upload("lease", FileType::Pdf, 1)],
        );
        assert_eq!(got, vec![]);
    }

    #[test]
    fn wrong_file_type_is_reported() {
        let got = check_materials(
            &service(),
            &[substituted("id_card"), upload("lease", FileType::Png, 1000)],
        );
        assert_eq!(fields_of(&got), vec!["materials.lease"]);
        assert_eq!(got[0].zh, "“租赁合同”只接受PDF格式的文件，上传的是PNG文件");
        assert_eq!(
            got[0].en,
            "“Lease contract” accepts only PDF files, got a PNG file"
        );
    }

    #[test]
    fn too_large_and_empty_files_are_reported() {
        let got = check_materials(
            &service(),
            &[
                upload("id_card", FileType::Pdf, 5 * BYTES_PER_MB + 1),
                upload("lease", FileType::Pdf, 0),
            ],
        );
        assert_eq!(
            fields_of(&got),
            vec!["materials.id_card", "materials.lease"]
        );
        assert_eq!(got[0].zh, "“身份证”的文件不能超过5 MB，上传的文件为5.1 MB");
        assert_eq!(
            got[0].en,
            "“Identity card”: a file may be at most 5 MB, this one is 5.1 MB"
        );
        assert!(got[1].en.contains("empty"), "{:?}", got[1]);
        assert_eq!(
            check_materials(
                &service(),
                &[
                    substituted("id_card"),
                    upload("lease", FileType::Pdf, 10 * BYTES_PER_MB)
                ]
            ),
            vec![]
        );
    }

    #[test]
    fn unknown_materials_are_reported_once() {
        let got = check_materials(
            &service(),
            &[
                substituted("id_card"),
                upload("lease", FileType::Pdf, 1),
                upload("passport", FileType::Pdf, 1),
                upload("passport", FileType::Pdf, 1),
            ],
        );
        assert_eq!(fields_of(&got), vec!["materials.passport"]);
        assert!(
            got[0].en.contains("Unknown material “passport”"),
            "{:?}",
            got[0]
        );
    }

    #[test]
    fn optional_material_is_checked_when_given() {
        let got = check_materials(
            &service(),
            &[
                substituted("id_card"),
                upload("lease", FileType::Pdf, 1),
                upload("photo", FileType::Pdf, 1),
            ],
        );
        assert_eq!(fields_of(&got), vec!["materials.photo"]);
        assert!(
            got[0].en.contains("accepts only JPG, PNG files"),
            "{:?}",
            got[0]
        );
    }

    #[test]
    fn at_most_twenty_uploads_per_material() {
        let mut provided = vec![substituted("id_card")];
        provided.extend((0..MAX_UPLOADS_PER_MATERIAL).map(|_| upload("lease", FileType::Pdf, 1)));
        assert_eq!(check_materials(&service(), &provided), vec![]);
        provided.push(upload("lease", FileType::Pdf, 1));
        provided.push(upload("lease", FileType::Pdf, 1));
        let got = check_materials(&service(), &provided);
        assert_eq!(fields_of(&got), vec!["materials.lease"]);
        assert!(got[0].zh.contains("最多上传20个文件"), "{:?}", got[0]);
    }

    #[test]
    fn megabytes_round_up() {
        assert_eq!(mb(BYTES_PER_MB), "1.0");
        assert_eq!(mb(BYTES_PER_MB + 1), "1.1");
        assert_eq!(mb(1), "0.1");
    }

    // ---- the real definitions ------------------------------------------------------

    /// A string matching the simple patterns definitions use: `\d`, `[A-Z]` classes,
    /// literal characters and `{n}` / `{n,m}` counts (the smallest count is used).
    fn sample_for_pattern(pattern: &str) -> String {
        let chars: Vec<char> = pattern
            .trim_start_matches('^')
            .trim_end_matches('$')
            .chars()
            .collect();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            let atom = match chars[i] {
                '\\' => {
                    i += 1;
                    match chars[i] {
                        'd' => '7',
                        c => c,
                    }
                }
                '[' => {
                    let first = chars[i + 1];
                    while chars[i] != ']' {
                        i += 1;
                    }
                    first
                }
                c => {
                    assert!(
                        !"()|*+?.".contains(c),
                        "extend sample_for_pattern for {pattern}"
                    );
                    c
                }
            };
            i += 1;
            let mut count = 1;
            if i < chars.len() && chars[i] == '{' {
                let end = i + chars[i..].iter().position(|&c| c == '}').expect("}");
                let inner: String = chars[i + 1..end].iter().collect();
                count = inner
                    .split(',')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("count");
                i = end + 1;
            }
            out.extend(std::iter::repeat_n(atom, count));
        }
        out
    }

    /// A valid value for any field, built from its definition alone.
    fn sample_value(f: &Field, service: &Service, today: NaiveDate) -> Value {
        match f.field_type {
            FieldType::Text | FieldType::Textarea | FieldType::Address => {
                if let Some(p) = &f.pattern {
                    return json!(sample_for_pattern(p));
                }
                let len = f
                    .min_length
                    .unwrap_or(4)
                    .max(4)
                    .min(max_length(f).unwrap_or(4)) as usize;
                json!("测".repeat(len))
            }
            FieldType::Email => json!("applicant@example.com"),
            FieldType::Number => {
                let x = f.min.unwrap_or(1.0).max(1.0).min(f.max.unwrap_or(f64::MAX));
                json!(x)
            }
            FieldType::Date => {
                let bound = f.min_date.as_deref().or(f.max_date.as_deref());
                let d = date_bound(bound, today).map_or(today, |(d, _)| d);
                json!(d.format("%Y-%m-%d").to_string())
            }
            FieldType::Select => json!(f.options[0].value),
            FieldType::Multiselect => json!([f.options[0].value]),
            FieldType::Checkbox => json!(true),
            FieldType::IdNumber => json!(ID),
            FieldType::Uscc => json!(service.department),
            FieldType::Phone => json!("13800138000"),
            FieldType::Table => {
                let rows = f.min_rows.unwrap_or(1).max(1);
                let row: Map<String, Value> = f
                    .columns
                    .iter()
                    .map(|c| (c.id.clone(), sample_value(c, service, today)))
                    .collect();
                Value::Array(vec![Value::Object(row); rows as usize])
            }
        }
    }

    #[test]
    fn sample_patterns_match() {
        for p in [
            r"^\d{16,19}$",
            r"^[A-Z]\d{9}$",
            r"^\d{12}[A-Z]{2}\d{5}[A-Z]\d{8}$",
        ] {
            let s = sample_for_pattern(p);
            assert!(Regex::new(p).expect("re").is_match(&s), "{p} {s}");
        }
    }

    #[test]
    fn every_real_definition_accepts_a_representative_submission() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("service-definitions/services");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("services dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        assert!(files.len() >= 10, "{} definitions", files.len());
        for path in files {
            let text = std::fs::read_to_string(&path).expect("read");
            let service: Service =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let values: Map<String, Value> = service
                .fields
                .iter()
                .map(|f| (f.id.clone(), sample_value(f, &service, today())))
                .collect();
            let out = validate_form(&service, &values, today())
                .unwrap_or_else(|e| panic!("{}: {e:#?}", path.display()));
            for f in service.fields.iter().filter(|f| f.required) {
                assert!(out.contains_key(&f.id), "{}: {}", path.display(), f.id);
            }

            let uploads: Vec<ProvidedMaterial> = service
                .materials
                .iter()
                .filter(|m| m.required)
                .map(|m: &Material| upload(&m.id, m.file_types[0], 1024))
                .collect();
            let got = check_materials(&service, &uploads);
            assert_eq!(got, vec![], "{}", path.display());
            let substituted_where_allowed: Vec<ProvidedMaterial> = service
                .materials
                .iter()
                .filter(|m| m.required)
                .map(|m| match m.substitute {
                    Some(_) => substituted(&m.id),
                    None => upload(
                        &m.id,
                        m.file_types[0],
                        u64::from(m.max_size_mb) * BYTES_PER_MB,
                    ),
                })
                .collect();
            let got = check_materials(&service, &substituted_where_allowed);
            assert_eq!(got, vec![], "{}", path.display());
        }
    }
}
