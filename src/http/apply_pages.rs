//! The citizen's pages for applying online (server-rendered, no JavaScript needed), each
//! wholly in the reader's language (texts from `frontend/messages/apply.toml`).
//!
//! A form is split into steps (`steps_of`): the fields in sections of a few at a time,
//! then the documents, then "check your answers" with a change link to each step, then
//! the submission. Every step is saved as a draft (the drafts of `/api/v1/drafts`), so
//! leaving and coming back resumes where the applicant left off.
//!
//! - `GET /services/{code}/apply[?draft=<id>&step=<n>|check]`: one step. Without a draft,
//!   the applicant's newest draft of the service is resumed; otherwise step 1. Step 1
//!   shows where prefilled data would come from and why, and either the consent button
//!   or, with a current consent, the values filled from shared data with each value's
//!   source. Authoritative values are read-only (an optional one may be left out when it
//!   does not apply); materials an e-licence stands in for are offered as 免提交.
//! - `POST /services/{code}/apply/step`: saves one step (`multipart/form-data`, files of
//!   the documents step stored like `POST /api/v1/uploads`), checks that step's fields
//!   and goes on (303), or shows the step again (422) with the error summary.
//! - `POST /services/{code}/apply/consent`: records the consent, back to step 1.
//! - `POST /services/{code}/apply`: lodges the application like `POST /api/v1/cases`:
//!   from the saved draft (`_draft`, the check page's button), or from one whole form
//!   post (values, files and ticks in one multipart body). Problems are kept in the
//!   draft and shown at the step they belong to (422), with every problem in the
//!   summary; a value too long is named and not kept, the rest of the form is.
//! - `GET /cases/{case_no}/submitted`: the receipt, to the case's owner only.
//! - `GET /me/data-access`: who read my data, when and why.
//!
//! Form controls: a top-level field is named by its id, a table cell
//! `<table>[<row>].<column>`, a material's files `file.<material>`, a kept upload
//! `keep.<material>` (value: the upload id), a 免提交 tick `substitute.<material>`, an
//! authoritative value left out `omit.<field>`. The session's CSRF token travels in
//! `_csrf`, which must be the first part of a form; `_submission` is the one-time id of
//! the application (its idempotency key), `_draft` the draft, `_step` the step.
//!
//! A draft made here holds the values as the API takes them, plus `_page`: the step
//! reached, the fields saved, the ticks and the uploads kept.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::http::path::Path;
use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::cases::{multipart_error, save_draft_values, store_upload};
use super::catalogue::find_service;
use super::error::{AppError, AppResult, FieldError, Message};
use super::pages::{PageCtx, cst, cst_date, i18n, mask_id};
use super::sharing::plan_view;
use crate::auth::extract::{Applicant, ApplicantCase, CurrentUser};
use crate::auth::session::Session;
use crate::domain::case::CaseStatus;
use crate::domain::catalogue::{Field, FieldType, FileType, Material, Service};
use crate::domain::form::{self, MAX_UPLOADS_PER_MATERIAL};
use crate::domain::lang::Lang;
use crate::sharing::prefill::{self, Prefill};
use crate::state::AppState;
use crate::store::{ConsentRow, DraftRow};
use crate::usecases::{self, IdemKey, MaterialInput, apply};

/// The routes of these pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/services/{code}/apply", get(apply_page).post(submit))
        .route("/services/{code}/apply/step", post(save_step))
        .route("/services/{code}/apply/consent", post(consent))
        .route("/cases/{case_no}/submitted", get(submitted))
        .route("/me/data-access", get(data_access_page))
        // several materials' files in one form
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

/// The largest form post (all its files together).
const MAX_FORM_BYTES: usize = 110 * 1024 * 1024;
/// The largest text value of one form control; a longer one is named in an error and
/// not kept (the rest of the form is).
const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Distinct controls (and values of one control) a form post may carry.
const MAX_CONTROLS: usize = 2000;
/// Table rows a form shows at most (definitions with more use the API).
const MAX_SHOWN_ROWS: usize = 20;
/// How much a step may hold: a plain field weighs 1, a long text or a multiselect 2, a
/// table 4. A phone shows a step of this weight in a few screens.
const STEP_WEIGHT: usize = 6;
/// A form this light without documents stays on one page.
const ONE_PAGE_WEIGHT: usize = 8;
/// The key of the page's own state in a draft's values.
const PAGE_KEY: &str = "_page";

/// A catalogue text in a language, with its values filled in.
fn tx(lang: Lang, key: &str, args: &[(&str, String)]) -> String {
    i18n::text(lang, key, args).unwrap_or_else(|| key.to_owned())
}

/// A catalogue text in both languages (for errors, which are kept in both).
fn msg(key: &str, args: &[(&str, String)]) -> Message {
    Message::new(tx(Lang::Zh, key, args), tx(Lang::En, key, args))
}

/// The session's CSRF token must come back in the form's `_csrf` field (on top of the
/// Origin check every state-changing request passes).
fn check_form_token(sent: Option<&str>, session: &Session) -> AppResult<()> {
    if sent.is_some_and(|t| bool::from(t.as_bytes().ct_eq(session.csrf.as_bytes()))) {
        Ok(())
    } else {
        Err(AppError::Forbidden(msg("apply.page_expired", &[])))
    }
}

fn human_size(bytes: i64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", (bytes + 1023) / 1024)
    }
}

/// Text values by control name, in the order sent (several for a multiselect).
type Raw = HashMap<String, Vec<String>>;

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A value as the texts of its form control(s).
fn texts_of(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().map(text_of).collect(),
        Value::Bool(true) => vec!["true".to_owned()],
        Value::Bool(false) | Value::Null => Vec::new(),
        v => vec![text_of(v)],
    }
}

/// The raw form of the prefilled values (how the page shows them).
fn raw_from_prefill(served: Option<&Prefill>) -> Raw {
    served
        .map(|p| &p.fields)
        .into_iter()
        .flatten()
        .map(|(id, pv)| (id.clone(), texts_of(&pv.value)))
        .collect()
}

/// One control's value for validation, or `None` when nothing was given.
fn value_of(f: &Field, raw: &Raw, name: &str) -> Option<Value> {
    match f.field_type {
        FieldType::Multiselect => {
            let chosen: Vec<Value> = raw
                .get(name)
                .into_iter()
                .flatten()
                .filter(|t| !t.trim().is_empty())
                .map(|t| Value::String(t.clone()))
                .collect();
            (!chosen.is_empty()).then_some(Value::Array(chosen))
        }
        FieldType::Checkbox => raw
            .get(name)
            .is_some_and(|v| v.iter().any(|t| t == "true"))
            .then_some(Value::Bool(true)),
        FieldType::Table => None,
        _ => raw
            .get(name)
            .and_then(|v| v.first())
            .map(|t| Value::String(t.clone())),
    }
}

/// Row indexes sent for a table (`<table>[<row>].<column>`), ascending.
fn table_rows_sent(table: &Field, raw: &Raw) -> Vec<usize> {
    let prefix = format!("{}[", table.id);
    let mut rows: Vec<usize> = raw
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix))
        .filter_map(|rest| rest.split_once("].").map(|x| x.0))
        .filter_map(|n| n.parse::<usize>().ok())
        .filter(|n| *n < MAX_SHOWN_ROWS)
        .collect();
    rows.sort_unstable();
    rows.dedup();
    rows
}

fn cell_name(table: &Field, row: usize, col: &Field) -> String {
    format!("{}[{row}].{}", table.id, col.id)
}

/// The values to validate: text as sent (the domain normalises and checks), ticks as
/// `true`, multiselects as lists, tables as their non-empty rows.
fn values_from(service: &Service, raw: &Raw) -> Map<String, Value> {
    let mut values = Map::new();
    for f in &service.fields {
        if f.field_type != FieldType::Table {
            if let Some(v) = value_of(f, raw, &f.id) {
                values.insert(f.id.clone(), v);
            }
            continue;
        }
        let rows: Vec<Value> = table_rows_sent(f, raw)
            .into_iter()
            .filter_map(|i| {
                let mut row = Map::new();
                for c in &f.columns {
                    let name = cell_name(f, i, c);
                    if let Some(v) = value_of(c, raw, &name) {
                        row.insert(c.id.clone(), v);
                    }
                }
                let empty = row.values().all(|v| match v {
                    Value::String(s) => s.trim().is_empty(),
                    _ => false,
                });
                (!empty).then_some(Value::Object(row))
            })
            .collect();
        if !rows.is_empty() {
            values.insert(f.id.clone(), Value::Array(rows));
        }
    }
    values
}

// ---------- the form ----------

/// A form post, read.
#[derive(Default)]
struct Posted {
    raw: Raw,
    /// The form's one-time submission id: a second click replays the first answer.
    submission: Option<String>,
    substitute: HashSet<String>,
    /// Material id → upload ids (kept ones, then new ones).
    uploads: BTreeMap<String, Vec<Uuid>>,
    /// Files that could not be stored (wrong type, empty, too large).
    upload_errors: Vec<FieldError>,
    /// Values too long to keep, named by their control.
    too_long: Vec<FieldError>,
    /// Authoritative values the applicant leaves out (they do not apply).
    omit: HashSet<String>,
    /// The draft the post continues.
    draft: Option<Uuid>,
    /// The step posted (1-based).
    step: Option<usize>,
    /// The button pressed: `next` or `save`.
    go: Option<String>,
}

/// A text part, or `None` when it is longer than [`MAX_TEXT_BYTES`] (the rest of it is
/// skipped, so the rest of the form can still be read).
async fn read_text(mut field: axum::extract::multipart::Field<'_>) -> AppResult<Option<String>> {
    let mut buf: Vec<u8> = Vec::new();
    let mut too_long = false;
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
        if too_long || buf.len() + chunk.len() > MAX_TEXT_BYTES {
            too_long = true;
            continue;
        }
        buf.extend_from_slice(&chunk);
    }
    if too_long {
        return Ok(None);
    }
    String::from_utf8(buf).map(Some).map_err(|_| {
        AppError::BadRequest(Message::new(
            "表单内容不是有效的 UTF-8 文本。",
            "The form's text is not valid UTF-8.",
        ))
    })
}

/// The labels of a control (a field, or a table's cell), both languages.
fn control_labels(service: &Service, name: &str) -> Option<(String, String)> {
    let (top, rest) = match name.split_once('[') {
        Some((t, r)) => (t, Some(r)),
        None => (name, None),
    };
    let f = service.fields.iter().find(|f| f.id == top)?;
    let Some(rest) = rest else {
        return Some((f.label.clone(), f.label_en.clone()));
    };
    let (row, col) = rest.split_once("].")?;
    let c = f.columns.iter().find(|c| c.id == col)?;
    let row: usize = row.parse().ok()?;
    Some((
        tx(
            Lang::Zh,
            "apply.table_cell",
            &[
                ("table", f.label.clone()),
                ("row", (row + 1).to_string()),
                ("column", c.label.clone()),
            ],
        ),
        tx(
            Lang::En,
            "apply.table_cell",
            &[
                ("table", f.label_en.clone()),
                ("row", (row + 1).to_string()),
                ("column", c.label_en.clone()),
            ],
        ),
    ))
}

/// The error for a value too long to keep, naming its field.
fn too_long_error(service: &Service, name: &str) -> FieldError {
    let (zh, en) = control_labels(service, name).unwrap_or_else(|| (name.into(), name.into()));
    let kb = (MAX_TEXT_BYTES / 1024).to_string();
    FieldError {
        field: name.to_owned(),
        message: Message::new(
            tx(
                Lang::Zh,
                "apply.too_long",
                &[("field", zh), ("kb", kb.clone())],
            ),
            tx(Lang::En, "apply.too_long", &[("field", en), ("kb", kb)]),
        ),
    }
}

/// Reads the form post: the CSRF token first (before any file is stored), then values,
/// ticks, kept uploads and files (stored as the applicant's uploads; a file for a
/// material that an e-licence stands in for is not stored).
async fn read_form(
    app: &AppState,
    service: &Service,
    session: &Session,
    multipart: &mut Multipart,
) -> AppResult<Posted> {
    let mut posted = Posted::default();
    let mut checked_token = false;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e))?
    {
        let name = field.name().unwrap_or("").to_owned();
        if !checked_token {
            let sent = if name == "_csrf" {
                read_text(field).await?
            } else {
                None
            };
            check_form_token(sent.as_deref(), session)?;
            checked_token = true;
            continue;
        }
        if let Some(mid) = name.strip_prefix("file.") {
            let Some(m) = service.materials.iter().find(|m| m.id == mid) else {
                continue;
            };
            // an empty file input still sends a part, without a file name
            if field.file_name().is_none_or(str::is_empty) || posted.substitute.contains(mid) {
                continue;
            }
            let count = posted.uploads.get(mid).map_or(0, Vec::len);
            if count >= MAX_UPLOADS_PER_MATERIAL {
                let n = MAX_UPLOADS_PER_MATERIAL.to_string();
                push_unique(
                    &mut posted.upload_errors,
                    FieldError {
                        field: format!("materials.{mid}"),
                        message: Message::new(
                            tx(
                                Lang::Zh,
                                "apply.too_many_files",
                                &[("name", m.name.clone()), ("n", n.clone())],
                            ),
                            tx(
                                Lang::En,
                                "apply.too_many_files",
                                &[("name", m.name_en.clone()), ("n", n)],
                            ),
                        ),
                    },
                );
                continue;
            }
            match store_upload(app, session.account_id, field, Some(m)).await {
                Ok(row) => posted.uploads.entry(m.id.clone()).or_default().push(row.id),
                Err(AppError::Internal(e)) => return Err(AppError::Internal(e)),
                Err(e) => {
                    let why = e.problem().detail;
                    posted.upload_errors.push(FieldError {
                        field: format!("materials.{mid}"),
                        message: Message::new(
                            tx(
                                Lang::Zh,
                                "apply.upload_failed",
                                &[("name", m.name.clone()), ("why", why.zh.clone())],
                            ),
                            tx(
                                Lang::En,
                                "apply.upload_failed",
                                &[("name", m.name_en.clone()), ("why", why.en.clone())],
                            ),
                        ),
                    });
                }
            }
            continue;
        }
        let Some(text) = read_text(field).await? else {
            if !name.starts_with('_') && posted.too_long.len() < MAX_CONTROLS {
                push_unique(&mut posted.too_long, too_long_error(service, &name));
            }
            continue;
        };
        match name.as_str() {
            "_submission" => {
                if !text.is_empty() && text.len() <= 64 {
                    posted.submission = Some(text);
                }
                continue;
            }
            "_draft" => {
                posted.draft = text.trim().parse().ok();
                continue;
            }
            "_step" => {
                posted.step = text.trim().parse().ok();
                continue;
            }
            "_go" => {
                posted.go = Some(text);
                continue;
            }
            _ => {}
        }
        if let Some(mid) = name.strip_prefix("substitute.") {
            if text == "true" && service.materials.iter().any(|m| m.id == mid) {
                posted.substitute.insert(mid.to_owned());
                posted.uploads.remove(mid);
            }
        } else if let Some(fid) = name.strip_prefix("omit.") {
            if text == "true" && service.fields.iter().any(|f| f.id == fid) {
                posted.omit.insert(fid.to_owned());
            }
        } else if let Some(mid) = name.strip_prefix("keep.") {
            if let Ok(id) = text.trim().parse::<Uuid>()
                && service.materials.iter().any(|m| m.id == mid)
                && !posted.substitute.contains(mid)
            {
                let ids = posted.uploads.entry(mid.to_owned()).or_default();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        } else if posted.raw.len() < MAX_CONTROLS || posted.raw.contains_key(&name) {
            let list = posted.raw.entry(name).or_default();
            if list.len() < MAX_CONTROLS {
                list.push(text);
            }
        }
    }
    if !checked_token {
        check_form_token(None, session)?;
    }
    Ok(posted)
}

/// The raw values without the fields left out.
fn effective_raw(raw: &Raw, omit: &HashSet<String>) -> Raw {
    raw.iter()
        .filter(|(k, _)| !omit.contains(top_field(k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The top-level field a control or problem path belongs to (`t[2].c` → `t`).
fn top_field(path: &str) -> &str {
    let end = path.find(['[', '.']).unwrap_or(path.len());
    &path[..end]
}

/// An API value (as a draft holds it) as the raw texts of the form, tables cell by cell.
fn raw_from_values(service: &Service, values: &Map<String, Value>) -> Raw {
    let mut raw = Raw::new();
    for f in &service.fields {
        let Some(v) = values.get(&f.id) else {
            continue;
        };
        if f.field_type == FieldType::Table {
            for (i, row) in v.as_array().into_iter().flatten().enumerate() {
                for c in &f.columns {
                    if let Some(cv) = row.get(&c.id) {
                        raw.insert(cell_name(f, i, c), texts_of(cv));
                    }
                }
            }
        } else {
            raw.insert(f.id.clone(), texts_of(v));
        }
    }
    raw
}

/// Removes a field's controls (all its cells for a table) from raw values.
fn remove_field(raw: &mut Raw, f: &Field) {
    let prefix = format!("{}[", f.id);
    raw.retain(|k, _| k != &f.id && !k.starts_with(&prefix));
}

// ---------- steps ----------

/// What a step of the form holds.
#[derive(Debug, Clone, PartialEq)]
enum StepKind {
    /// These fields (indexes into the definition's fields).
    Fields(Vec<usize>),
    /// The documents.
    Materials,
}

fn weight(f: &Field) -> usize {
    match f.field_type {
        FieldType::Table => 4,
        FieldType::Textarea | FieldType::Multiselect => 2,
        _ => 1,
    }
}

/// The steps of a form: its fields in sections of about equal weight (at most
/// [`STEP_WEIGHT`] each, in the definition's order), then the documents. A light form
/// without documents is one step. "Check your answers" follows the last step.
fn steps_of(service: &Service) -> Vec<StepKind> {
    let total: usize = service.fields.iter().map(weight).sum();
    let all: Vec<usize> = (0..service.fields.len()).collect();
    if service.materials.is_empty() && total <= ONE_PAGE_WEIGHT {
        return vec![StepKind::Fields(all)];
    }
    let mut steps = Vec::new();
    if total > 0 {
        let parts = total.div_ceil(STEP_WEIGHT);
        let target = total.div_ceil(parts);
        let mut current = Vec::new();
        let mut w = 0;
        for (i, f) in service.fields.iter().enumerate() {
            let fw = weight(f);
            if !current.is_empty() && w + fw > target {
                steps.push(StepKind::Fields(std::mem::take(&mut current)));
                w = 0;
            }
            current.push(i);
            w += fw;
        }
        if !current.is_empty() {
            steps.push(StepKind::Fields(current));
        }
    }
    if !service.materials.is_empty() {
        steps.push(StepKind::Materials);
    }
    steps
}

/// The step (1-based) a problem path belongs to; `None` when no step holds it.
fn step_of_path(service: &Service, steps: &[StepKind], path: &str) -> Option<usize> {
    if path.starts_with("materials") {
        return steps
            .iter()
            .position(|s| *s == StepKind::Materials)
            .map(|i| i + 1);
    }
    let top = top_field(path);
    let fi = service.fields.iter().position(|f| f.id == top)?;
    steps
        .iter()
        .position(|s| matches!(s, StepKind::Fields(idx) if idx.contains(&fi)))
        .map(|i| i + 1)
}

fn step_title(steps: &[StepKind], n: usize, lang: Lang) -> String {
    match steps.get(n.wrapping_sub(1)) {
        Some(StepKind::Materials) => tx(lang, "apply.step_materials", &[]),
        Some(StepKind::Fields(_)) => {
            let parts = steps
                .iter()
                .filter(|s| matches!(s, StepKind::Fields(_)))
                .count();
            if parts <= 1 {
                tx(lang, "apply.step_fields", &[])
            } else {
                tx(
                    lang,
                    "apply.step_fields_part",
                    &[("n", n.to_string()), ("k", parts.to_string())],
                )
            }
        }
        None => tx(lang, "apply.step_check", &[]),
    }
}

/// The address of a step (`n` past the last step is the check page).
fn step_href(code: &str, steps: &[StepKind], draft: Option<Uuid>, n: usize) -> String {
    let step = if n > steps.len() {
        "check".to_owned()
    } else {
        n.to_string()
    };
    match draft {
        Some(d) => format!("/services/{code}/apply?draft={d}&step={step}"),
        None => format!("/services/{code}/apply?step={step}"),
    }
}

// ---------- drafts ----------

/// The page's own state in a draft.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct PageState {
    /// The step to come back to (1-based; past the last is the check page).
    #[serde(default)]
    step: usize,
    /// Fields saved by a step (their values override the prefill, even when empty).
    #[serde(default)]
    touched: Vec<String>,
    /// Authoritative values left out.
    #[serde(default)]
    omit: Vec<String>,
    /// Materials an e-licence stands in for.
    #[serde(default)]
    substitute: Vec<String>,
    /// Uploads kept, by material.
    #[serde(default)]
    uploads: BTreeMap<String, Vec<Uuid>>,
    /// Whether the documents step was saved (before, 免提交 is offered ticked).
    #[serde(default)]
    materials_seen: bool,
    /// The application's one-time id.
    #[serde(default)]
    submission: Option<String>,
}

/// A draft as the pages use it.
struct Draft {
    id: Uuid,
    created: Option<DateTime<Utc>>,
    raw: Raw,
    state: PageState,
}

impl Draft {
    fn new() -> Draft {
        Draft {
            id: Uuid::now_v7(),
            created: None,
            raw: Raw::new(),
            state: PageState::default(),
        }
    }

    fn from_row(service: &Service, row: &DraftRow) -> Draft {
        let empty = Map::new();
        let values = row.form.as_object().unwrap_or(&empty);
        let state = values
            .get(PAGE_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_else(|| PageState {
                // a draft saved through the API: its values count as given
                touched: values.keys().cloned().collect(),
                ..PageState::default()
            });
        Draft {
            id: row.id,
            created: Some(row.created_at),
            raw: raw_from_values(service, values),
            state,
        }
    }

    fn omit(&self) -> HashSet<String> {
        self.state.omit.iter().cloned().collect()
    }

    /// The values to save: as the API takes them, with the page's state.
    fn values(&self, service: &Service) -> Map<String, Value> {
        let mut values = values_from(service, &effective_raw(&self.raw, &self.omit()));
        if let Ok(state) = serde_json::to_value(&self.state) {
            values.insert(PAGE_KEY.into(), state);
        }
        values
    }

    async fn save(&self, app: &AppState, service: &Service, owner: Uuid) -> AppResult<()> {
        save_draft_values(
            app,
            owner,
            self.id,
            service.code.clone(),
            self.values(service),
            self.created,
        )
        .await?;
        Ok(())
    }
}

fn draft_not_found() -> AppError {
    AppError::NotFound(Message::new(
        "没有这个草稿（可能已过期或已提交）。",
        "There is no such draft (it may have expired or been submitted).",
    ))
}

/// One of the applicant's drafts of this service.
async fn load_draft(app: &AppState, service: &Service, owner: Uuid, id: Uuid) -> AppResult<Draft> {
    match app.store.draft(id, owner).await? {
        Some(row) if row.expires_at > Utc::now() && row.service_code == service.code => {
            Ok(Draft::from_row(service, &row))
        }
        _ => Err(draft_not_found()),
    }
}

/// The applicant's newest draft of this service, if any.
async fn latest_draft(app: &AppState, service: &Service, owner: Uuid) -> AppResult<Option<Draft>> {
    let now = Utc::now();
    Ok(app
        .store
        .drafts(owner)
        .await?
        .iter()
        .filter(|d| d.service_code == service.code && d.expires_at > now)
        .max_by_key(|d| d.updated_at)
        .map(|row| Draft::from_row(service, row)))
}

/// What the form shows: the prefilled values, replaced by what the draft saved.
fn shown_raw(service: &Service, served: Option<&Prefill>, draft: Option<&Draft>) -> Raw {
    let mut raw = raw_from_prefill(served);
    if let Some(d) = draft {
        for id in &d.state.touched {
            if let Some(f) = service.fields.iter().find(|f| &f.id == id) {
                remove_field(&mut raw, f);
            }
        }
        for (k, v) in &d.raw {
            raw.insert(k.clone(), v.clone());
        }
    }
    raw
}

/// What was served to prefill this form (no new read when it is kept), else a fresh
/// prefill when the applicant has consented, else nothing.
async fn served_for(
    app: &AppState,
    session: &Session,
    service: &Service,
    consent: Option<&ConsentRow>,
    fresh: bool,
) -> AppResult<Option<Prefill>> {
    if consent.is_none() {
        return Ok(None);
    }
    let who = usecases::prefill::who_for_applicant(app, session).await?;
    if let Some(p) = prefill::snapshot(app, session.account_id, &who, &service.code).await {
        return Ok(Some(p));
    }
    if fresh {
        Ok(Some(
            usecases::prefill::for_applicant(app, session, service).await?,
        ))
    } else {
        Ok(None)
    }
}

/// The use cases' field issues as the page shows them.
fn field_errors(issues: Vec<form::FieldIssue>) -> Vec<FieldError> {
    issues
        .into_iter()
        .map(|i| FieldError {
            field: i.field,
            message: Message::new(i.zh, i.en),
        })
        .collect()
}

fn push_unique(list: &mut Vec<FieldError>, e: FieldError) {
    if !list.contains(&e) {
        list.push(e);
    }
}

/// The materials as the lodge function takes them.
fn material_inputs(service: &Service, posted: &Posted) -> Vec<MaterialInput> {
    let mut out = Vec::new();
    for m in &service.materials {
        if posted.substitute.contains(&m.id) {
            out.push(MaterialInput {
                material: m.id.clone(),
                upload_id: None,
                substitute: true,
            });
            continue;
        }
        for id in posted.uploads.get(&m.id).into_iter().flatten() {
            out.push(MaterialInput {
                material: m.id.clone(),
                upload_id: Some(*id),
                substitute: false,
            });
        }
    }
    out
}

/// Field errors of the lodge function, with `materials[i]` (an index into what was sent)
/// named by its material.
fn remap(errors: Vec<FieldError>, inputs: &[MaterialInput]) -> Vec<FieldError> {
    errors
        .into_iter()
        .map(|mut e| {
            if let Some(i) = e
                .field
                .strip_prefix("materials[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<usize>().ok())
                && let Some(m) = inputs.get(i)
            {
                e.field = format!("materials.{}", m.material);
            }
            e
        })
        .collect()
}

/// The HTML id of a field, cell or material control for a problem path.
fn anchor_of(path: &str) -> String {
    if let Some(m) = path.strip_prefix("materials.") {
        return format!("file-{m}");
    }
    let mut a = String::from("f-");
    for c in path.chars() {
        match c {
            '[' | '.' => a.push('-'),
            ']' => {}
            c => a.push(c),
        }
    }
    a
}

fn kinds(
    t: FieldType,
) -> (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
) {
    // (kind, input type, autocomplete, inputmode)
    match t {
        FieldType::Text => ("text", "text", None, None),
        FieldType::Textarea => ("textarea", "text", None, None),
        FieldType::Number => ("text", "text", None, Some("decimal")),
        FieldType::Date => ("text", "date", None, None),
        FieldType::Select => ("select", "text", None, None),
        FieldType::Multiselect => ("multiselect", "checkbox", None, None),
        FieldType::Checkbox => ("checkbox", "checkbox", None, None),
        FieldType::IdNumber => ("text", "text", Some("off"), None),
        FieldType::Uscc => ("text", "text", Some("off"), None),
        FieldType::Phone => ("text", "tel", Some("tel"), Some("tel")),
        FieldType::Email => ("text", "email", Some("email"), Some("email")),
        FieldType::Address => ("text", "text", Some("street-address"), None),
        FieldType::Table => ("table", "text", None, None),
    }
}

// ---------- views for the templates ----------

#[derive(Serialize)]
struct OptionView {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Serialize)]
struct SourceView {
    resource: String,
    provider: String,
    as_of: String,
    authoritative: bool,
}

#[derive(Serialize)]
struct FieldView {
    id: String,
    /// HTML id of the control.
    anchor: String,
    /// Form control name.
    name: String,
    label: String,
    /// `text`, `textarea`, `select`, `multiselect`, `checkbox`, `table`.
    kind: &'static str,
    /// The `type` of an `<input>`.
    input_type: &'static str,
    autocomplete: Option<&'static str>,
    inputmode: Option<&'static str>,
    required: bool,
    /// "Required when …".
    required_when: Option<String>,
    help: Option<String>,
    maxlength: Option<u32>,
    value: String,
    /// A read-only select shows its option's label.
    value_label: String,
    checked: bool,
    options: Vec<OptionView>,
    readonly: bool,
    /// An optional authoritative value may be left out when it does not apply.
    omittable: bool,
    omitted: bool,
    source: Option<SourceView>,
    /// The name of the source that could not be read now.
    unavailable: Option<String>,
    errors: Vec<String>,
    describedby: String,
    /// Accessible name of a table cell (its column header is not a `<label>`).
    aria_label: Option<String>,
    columns: Vec<FieldView>,
    rows: Vec<Vec<FieldView>>,
}

struct FieldCtx<'a> {
    raw: &'a Raw,
    served: Option<&'a Prefill>,
    /// Resources that could not be read: code → name in the page language.
    unavailable: &'a HashMap<String, String>,
    errors: &'a HashMap<String, Vec<String>>,
    omit: &'a HashSet<String>,
    lang: Lang,
    fields: &'a [Field],
}

fn required_when(f: &Field, fields: &[Field], lang: Lang) -> Option<String> {
    let cond = f.required_if.as_ref()?;
    let other = fields.iter().find(|o| o.id == cond.field)?;
    let opt = other.options.iter().find(|o| o.value == cond.equals);
    let value = opt.map_or(cond.equals.clone(), |o| {
        lang.pick(&o.label, &o.label_en).to_owned()
    });
    Some(tx(
        lang,
        "apply.required_when",
        &[
            ("field", lang.pick(&other.label, &other.label_en).to_owned()),
            ("value", value),
        ],
    ))
}

fn field_view(f: &Field, name: String, cx: &FieldCtx<'_>, top_level: bool) -> FieldView {
    let lang = cx.lang;
    let (kind, input_type, autocomplete, inputmode) = kinds(f.field_type);
    let anchor = anchor_of(&name);
    let served = if top_level {
        cx.served.and_then(|p| p.fields.get(&f.id))
    } else {
        None
    };
    let readonly = served.is_some_and(|pv| pv.authoritative);
    // An authoritative value always shows as served: it cannot be changed here.
    let chosen: Vec<String> = match served.filter(|_| readonly) {
        Some(pv) => texts_of(&pv.value),
        None => cx.raw.get(&name).cloned().unwrap_or_default(),
    };
    let value = chosen.first().cloned().unwrap_or_default();
    let options: Vec<OptionView> = f
        .options
        .iter()
        .map(|o| OptionView {
            value: o.value.clone(),
            label: lang.pick(&o.label, &o.label_en).to_owned(),
            selected: chosen.iter().any(|c| c == &o.value),
        })
        .collect();
    let value_label = f
        .options
        .iter()
        .find(|o| o.value == value)
        .map(|o| lang.pick(&o.label, &o.label_en).to_owned())
        .unwrap_or_else(|| value.clone());
    let source = served.map(|pv| SourceView {
        resource: lang
            .pick(&pv.source.resource_name, &pv.source.resource_name_en)
            .to_owned(),
        provider: lang
            .pick(&pv.source.provider_name, &pv.source.provider_name_en)
            .to_owned(),
        as_of: cst_date(pv.as_of),
        authoritative: pv.authoritative,
    });
    let errors: Vec<String> = cx.errors.get(&name).cloned().unwrap_or_default();
    let unavailable = f
        .prefill
        .as_deref()
        .and_then(|b| b.split_once('.'))
        .and_then(|(res, _)| cx.unavailable.get(res))
        .filter(|_| top_level && served.is_none())
        .cloned();
    let help = if top_level {
        f.help
            .as_ref()
            .map(|h| lang.pick(h, f.help_en.as_deref().unwrap_or(h)).to_owned())
    } else {
        None
    };
    let mut describedby = Vec::new();
    if help.is_some() {
        describedby.push(format!("{anchor}-hint"));
    }
    if unavailable.is_some() {
        describedby.push(format!("{anchor}-unavailable"));
    }
    if source.is_some() {
        describedby.push(format!("{anchor}-source"));
    }
    if !errors.is_empty() {
        describedby.push(format!("{anchor}-error"));
    }
    let label = lang.pick(&f.label, &f.label_en).to_owned();
    let (columns, rows) = if f.field_type == FieldType::Table {
        let mut shown = f.min_rows.unwrap_or(0).max(3) as usize;
        if let Some(max) = f.max_rows {
            shown = shown.min(max.max(1) as usize);
        }
        let sent = table_rows_sent(f, cx.raw);
        shown = shown
            .max(sent.last().map_or(0, |n| n + 1))
            .min(MAX_SHOWN_ROWS);
        let columns = f
            .columns
            .iter()
            .map(|c| field_view(c, c.id.clone(), cx, false))
            .collect();
        let rows = (0..shown)
            .map(|i| {
                f.columns
                    .iter()
                    .map(|c| {
                        let mut v = field_view(c, cell_name(f, i, c), cx, false);
                        v.aria_label = Some(tx(
                            lang,
                            "apply.table_cell",
                            &[
                                ("table", label.clone()),
                                ("row", (i + 1).to_string()),
                                ("column", lang.pick(&c.label, &c.label_en).to_owned()),
                            ],
                        ));
                        v
                    })
                    .collect()
            })
            .collect();
        (columns, rows)
    } else {
        (Vec::new(), Vec::new())
    };
    let omittable = top_level && readonly && !f.required && f.field_type != FieldType::Table;
    FieldView {
        id: f.id.clone(),
        anchor,
        name,
        label,
        kind,
        input_type,
        autocomplete,
        inputmode,
        required: f.required,
        required_when: if top_level {
            required_when(f, cx.fields, lang)
        } else {
            None
        },
        help,
        maxlength: form::max_length(f),
        checked: chosen.iter().any(|c| c == "true"),
        value,
        value_label,
        options,
        readonly,
        omittable,
        omitted: omittable && cx.omit.contains(&f.id),
        source,
        unavailable,
        errors,
        describedby: describedby.join(" "),
        aria_label: None,
        columns,
        rows,
    }
}

#[derive(Serialize)]
struct EvidenceView {
    licence_no: String,
    issuer: String,
    valid_until: String,
    resource: String,
    item: String,
    provider: String,
    as_of: String,
}

#[derive(Serialize)]
struct KeptView {
    id: Uuid,
    file_name: String,
    size: String,
}

#[derive(Serialize)]
struct MaterialView {
    id: String,
    name: String,
    required: bool,
    help: Option<String>,
    file_types: String,
    accept: String,
    max_size_mb: u32,
    evidence: Option<EvidenceView>,
    substitute_checked: bool,
    kept: Vec<KeptView>,
    errors: Vec<String>,
    describedby: String,
}

fn evidence_view(served: Option<&Prefill>, m: &Material, lang: Lang) -> Option<EvidenceView> {
    served.and_then(|p| p.materials.get(&m.id)).map(|e| {
        let fact = |k: &str| e.facts.get(k).map(text_of).unwrap_or_default();
        EvidenceView {
            licence_no: fact("licence_no"),
            issuer: fact("issuer"),
            valid_until: fact("valid_until"),
            resource: lang
                .pick(&e.source.resource_name, &e.source.resource_name_en)
                .to_owned(),
            item: lang
                .pick(&e.source.item_name, &e.source.item_name_en)
                .to_owned(),
            provider: lang
                .pick(&e.source.provider_name, &e.source.provider_name_en)
                .to_owned(),
            as_of: cst_date(e.as_of),
        }
    })
}

/// The applicant's uploads still waiting for a case, among `ids`.
async fn kept_uploads(app: &AppState, account: Uuid, ids: &[Uuid]) -> AppResult<Vec<KeptView>> {
    let mut kept = Vec::new();
    for id in ids {
        if let Some(u) = app.store.upload(*id).await?
            && u.owner == account
            && u.case_id.is_none()
        {
            kept.push(KeptView {
                id: u.id,
                file_name: u.file_name,
                size: human_size(u.size),
            });
        }
    }
    Ok(kept)
}

/// What the page shows of a material: the e-licence that may stand in for it, uploads
/// kept, its problems.
async fn material_view(
    app: &AppState,
    m: &Material,
    account: Uuid,
    served: Option<&Prefill>,
    state: &PageState,
    errors: &HashMap<String, Vec<String>>,
    lang: Lang,
) -> AppResult<MaterialView> {
    let (file_types, accept) = file_type_names(&m.file_types);
    let evidence = evidence_view(served, m, lang);
    // Offered ticked for a required material; an optional one only when asked for.
    let substitute_checked = if state.materials_seen {
        state.substitute.contains(&m.id)
    } else {
        evidence.is_some() && m.required
    };
    let kept = if state.substitute.contains(&m.id) {
        Vec::new()
    } else {
        let ids = state.uploads.get(&m.id).cloned().unwrap_or_default();
        kept_uploads(app, account, &ids).await?
    };
    let errors: Vec<String> = errors
        .get(&format!("materials.{}", m.id))
        .cloned()
        .unwrap_or_default();
    let mut describedby = vec![format!("m-{}-hint", m.id)];
    if !errors.is_empty() {
        describedby.push(format!("m-{}-error", m.id));
    }
    Ok(MaterialView {
        id: m.id.clone(),
        name: lang.pick(&m.name, &m.name_en).to_owned(),
        required: m.required,
        help: m
            .help
            .as_ref()
            .map(|h| lang.pick(h, m.help_en.as_deref().unwrap_or(h)).to_owned()),
        file_types,
        accept,
        max_size_mb: m.max_size_mb,
        evidence,
        substitute_checked,
        kept,
        errors,
        describedby: describedby.join(" "),
    })
}

fn file_type_names(types: &[FileType]) -> (String, String) {
    let names: Vec<&str> = types
        .iter()
        .map(|t| match t {
            FileType::Pdf => "PDF",
            FileType::Jpg => "JPG",
            FileType::Png => "PNG",
            FileType::Ofd => "OFD",
        })
        .collect();
    let accept: Vec<&str> = types
        .iter()
        .map(|t| match t {
            FileType::Pdf => ".pdf,application/pdf",
            FileType::Jpg => ".jpg,.jpeg,image/jpeg",
            FileType::Png => ".png,image/png",
            FileType::Ofd => ".ofd",
        })
        .collect();
    (names.join(" / "), accept.join(","))
}

#[derive(Serialize)]
struct PlanItemView {
    label: String,
    target: String,
    item: String,
    authoritative: bool,
}

#[derive(Serialize)]
struct PlanResourceView {
    code: String,
    name: String,
    provider: String,
    share_type_label: String,
    why: String,
    entries: Vec<PlanItemView>,
}

/// The plan grouped by resource: each with its provider and why it may be used, and the
/// fields and materials it fills.
fn plan_groups(app: &AppState, service: &Service, lang: Lang) -> Vec<PlanResourceView> {
    let plan = plan_view(app, service, lang);
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let entries = plan["entries"].as_array().cloned().unwrap_or_default();
    plan["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let code = s(&r["code"]);
            let entries = entries
                .iter()
                .filter(|e| {
                    e["source"]
                        .as_str()
                        .and_then(|b| b.split_once('.'))
                        .is_some_and(|(res, _)| res == code)
                })
                .map(|e| PlanItemView {
                    label: s(&e["label"]),
                    target: s(&e["target"]),
                    item: s(&e["item"]),
                    authoritative: e["authoritative"].as_bool().unwrap_or(false),
                })
                .collect();
            PlanResourceView {
                name: s(&r["name"]),
                provider: s(&r["provider"]),
                share_type_label: s(&r["share_type_label"]),
                why: s(&r["why"]),
                code,
                entries,
            }
        })
        .collect()
}

// ---------- the pages of the form ----------

/// The error summary: each problem linked to its control, on this step or another one.
fn summary(
    service: &Service,
    steps: &[StepKind],
    draft: Option<Uuid>,
    here: usize,
    errors: &[FieldError],
    lang: Lang,
) -> Vec<minijinja::Value> {
    errors
        .iter()
        .map(|e| {
            let text = e.message.get(lang).to_owned();
            let known = match e.field.strip_prefix("materials.") {
                Some(mid) => service.materials.iter().any(|m| m.id == mid),
                None => service.fields.iter().any(|f| f.id == top_field(&e.field)),
            };
            let at = known
                .then(|| step_of_path(service, steps, &e.field))
                .flatten();
            let anchor = anchor_of(&e.field);
            let (href, text) = match at {
                Some(k) if k == here => (Some(format!("#{anchor}")), text),
                Some(k) => (
                    Some(format!(
                        "{}#{anchor}",
                        step_href(&service.code, steps, draft, k)
                    )),
                    tx(
                        lang,
                        "apply.error_in_step",
                        &[("step", step_title(steps, k, lang)), ("message", text)],
                    ),
                ),
                None => (None, text),
            };
            minijinja::context! { href, text }
        })
        .collect()
}

/// The step list for the indicator.
fn step_list(
    service: &Service,
    steps: &[StepKind],
    draft: Option<&Draft>,
    here: usize,
    lang: Lang,
) -> Vec<minijinja::Value> {
    let reached = draft.map_or(1, |d| d.state.step.max(here));
    (1..=steps.len() + 1)
        .map(|k| {
            minijinja::context! {
                n => k,
                title => step_title(steps, k, lang),
                href => (draft.is_some() && k <= reached).then(|| step_href(&service.code, steps, draft.map(|d| d.id), k)),
                current => k == here,
                done => k < reached && k != here,
            }
        })
        .collect()
}

fn service_ctx(app: &AppState, service: &Service, lang: Lang) -> minijinja::Value {
    let department = app
        .catalogue
        .department(&service.department)
        .map(|d| lang.pick(&d.name, &d.name_en).to_owned());
    minijinja::context! {
        code => service.code.clone(),
        name => service.name.clone(),
        name_en => service.name_en.clone(),
        department,
    }
}

fn errors_by_field(errors: &[FieldError], lang: Lang) -> HashMap<String, Vec<String>> {
    let mut by_field: HashMap<String, Vec<String>> = HashMap::new();
    for e in errors {
        by_field
            .entry(e.field.clone())
            .or_default()
            .push(e.message.get(lang).to_owned());
    }
    by_field
}

/// Everything a step page shows.
struct StepPage<'a> {
    ctx: &'a PageCtx,
    service: &'a Service,
    session: &'a Session,
    steps: &'a [StepKind],
    /// The step (1-based).
    n: usize,
    draft: Option<&'a Draft>,
    raw: &'a Raw,
    consent: Option<&'a ConsentRow>,
    served: Option<&'a Prefill>,
    errors: &'a [FieldError],
    saved: bool,
    resumed: bool,
}

async fn render_step(app: &AppState, p: StepPage<'_>, status: StatusCode) -> AppResult<Response> {
    let lang = p.ctx.lang;
    let service = p.service;
    let by_field = errors_by_field(p.errors, lang);
    let unavailable: HashMap<String, String> = p
        .served
        .map(|s| s.unavailable.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|u| {
            let name = app.catalogue.resource(&u.resource).map_or_else(
                || u.resource.clone(),
                |r| lang.pick(&r.name, &r.name_en).to_owned(),
            );
            (u.resource.clone(), name)
        })
        .collect();
    let omit: HashSet<String> = p.draft.map(Draft::omit).unwrap_or_default();
    let empty_state = PageState::default();
    let state = p.draft.map_or(&empty_state, |d| &d.state);
    let cx = FieldCtx {
        raw: p.raw,
        served: p.served,
        unavailable: &unavailable,
        errors: &by_field,
        omit: &omit,
        lang,
        fields: &service.fields,
    };
    let mut fields = Vec::new();
    let mut materials = Vec::new();
    match &p.steps[p.n - 1] {
        StepKind::Fields(idx) => {
            for &i in idx {
                let f = &service.fields[i];
                fields.push(field_view(f, f.id.clone(), &cx, true));
            }
        }
        StepKind::Materials => {
            for m in &service.materials {
                materials.push(
                    material_view(
                        app,
                        m,
                        p.session.account_id,
                        p.served,
                        state,
                        &by_field,
                        lang,
                    )
                    .await?,
                );
            }
        }
    }
    // Where the data comes from, and the consent, open the form.
    let first = p.n == 1;
    let plan = if first {
        plan_groups(app, service, lang)
    } else {
        Vec::new()
    };
    let banner: Vec<String> = p
        .served
        .filter(|_| first)
        .map(|s| {
            s.unavailable
                .iter()
                .map(|u| lang.pick(&u.message, &u.message_en).to_owned())
                .collect()
        })
        .unwrap_or_default();
    let draft_id = p.draft.map(|d| d.id);
    let submission = state
        .submission
        .clone()
        .unwrap_or_else(|| Uuid::now_v7().simple().to_string());
    let ctx = minijinja::context! {
        service => service_ctx(app, service, lang),
        steps => step_list(service, p.steps, p.draft, p.n, lang),
        step => minijinja::context! { n => p.n, title => step_title(p.steps, p.n, lang) },
        draft => draft_id.map(|d| d.to_string()),
        submission,
        errors => summary(service, p.steps, draft_id, p.n, p.errors, lang),
        unavailable => banner,
        plan,
        consent => p.consent.map(|c| minijinja::context! {
            given_at => cst(c.given_at),
            valid_until => cst(c.given_at + chrono::Duration::hours(prefill::CONSENT_VALID_HOURS)),
        }),
        prefilled => p.served.is_some(),
        consent_hours => prefill::CONSENT_VALID_HOURS,
        fields,
        materials,
        saved => p.saved,
        resumed => p.resumed,
        back_href => (p.n > 1).then(|| step_href(&service.code, p.steps, draft_id, p.n - 1)),
    };
    Ok(p.ctx.render(status, "apply.html", ctx))
}

/// A field's answer as lines of text in the page language (empty: not given).
fn answer_lines(f: &Field, raw: &Raw, omitted: bool, lang: Lang) -> Vec<String> {
    if omitted {
        return vec![tx(lang, "apply.left_out", &[])];
    }
    let label_of = |f: &Field, v: &str| {
        f.options.iter().find(|o| o.value == v).map_or_else(
            || v.to_owned(),
            |o| lang.pick(&o.label, &o.label_en).to_owned(),
        )
    };
    let texts = |name: &str| -> Vec<String> {
        raw.get(name)
            .into_iter()
            .flatten()
            .filter(|t| !t.trim().is_empty())
            .cloned()
            .collect()
    };
    match f.field_type {
        FieldType::Table => table_rows_sent(f, raw)
            .into_iter()
            .filter_map(|i| {
                let cells: Vec<String> = f
                    .columns
                    .iter()
                    .filter_map(|c| {
                        let v = texts(&cell_name(f, i, c));
                        let v = v.first()?;
                        let shown = match c.field_type {
                            FieldType::Select => label_of(c, v),
                            FieldType::IdNumber => mask_id(v),
                            _ => v.clone(),
                        };
                        Some(format!(
                            "{}{}{shown}",
                            lang.pick(&c.label, &c.label_en),
                            lang.pick("：", ": ")
                        ))
                    })
                    .collect();
                (!cells.is_empty()).then(|| {
                    format!(
                        "{}{}{}",
                        tx(lang, "apply.row_n", &[("n", (i + 1).to_string())]),
                        lang.pick("：", ": "),
                        cells.join(lang.pick("；", "; "))
                    )
                })
            })
            .collect(),
        FieldType::Checkbox => {
            let ticked = raw
                .get(&f.id)
                .is_some_and(|v| v.iter().any(|t| t == "true"));
            vec![tx(lang, if ticked { "apply.yes" } else { "apply.no" }, &[])]
        }
        FieldType::Select | FieldType::Multiselect => {
            let labels: Vec<String> = texts(&f.id).iter().map(|v| label_of(f, v)).collect();
            if labels.is_empty() {
                labels
            } else {
                vec![labels.join(lang.pick("、", ", "))]
            }
        }
        // an ID number is shown masked, as on every page but the form itself
        FieldType::IdNumber => texts(&f.id).iter().map(|v| mask_id(v)).collect(),
        _ => texts(&f.id),
    }
}

/// Check your answers: every step's answers with a link to change them.
#[allow(clippy::too_many_arguments)]
async fn render_check(
    app: &AppState,
    ctx: &PageCtx,
    service: &Service,
    session: &Session,
    steps: &[StepKind],
    draft: &Draft,
    raw: &Raw,
    served: Option<&Prefill>,
    errors: &[FieldError],
    status: StatusCode,
) -> AppResult<Response> {
    let lang = ctx.lang;
    let here = steps.len() + 1;
    let omit = draft.omit();
    let not_given = tx(lang, "apply.not_given", &[]);
    let mut sections = Vec::new();
    for (k, step) in steps.iter().enumerate() {
        let n = k + 1;
        let href = step_href(&service.code, steps, Some(draft.id), n);
        let rows: Vec<minijinja::Value> = match step {
            StepKind::Fields(idx) => idx
                .iter()
                .map(|&i| {
                    let f = &service.fields[i];
                    minijinja::context! {
                        id => f.id.clone(),
                        label => lang.pick(&f.label, &f.label_en),
                        lines => answer_lines(f, raw, omit.contains(&f.id), lang),
                        empty => not_given.clone(),
                        href => format!("{href}#{}", anchor_of(&f.id)),
                    }
                })
                .collect(),
            StepKind::Materials => {
                let mut rows = Vec::new();
                for m in &service.materials {
                    let lines: Vec<String> = if draft.state.substitute.contains(&m.id) {
                        let no = evidence_view(served, m, lang)
                            .map(|e| mask_id(&e.licence_no))
                            .unwrap_or_default();
                        vec![tx(lang, "apply.licence_used", &[("no", no)])]
                    } else {
                        let ids = draft.state.uploads.get(&m.id).cloned().unwrap_or_default();
                        kept_uploads(app, session.account_id, &ids)
                            .await?
                            .into_iter()
                            .map(|u| format!("{}（{}）", u.file_name, u.size))
                            .collect()
                    };
                    rows.push(minijinja::context! {
                        id => format!("m-{}", m.id),
                        label => lang.pick(&m.name, &m.name_en),
                        lines,
                        empty => tx(lang, "apply.no_files", &[]),
                        href => format!("{href}#file-{}", m.id),
                    });
                }
                rows
            }
        };
        sections.push(minijinja::context! {
            n,
            title => step_title(steps, n, lang),
            href,
            rows,
        });
    }
    let page_ctx = minijinja::context! {
        service => service_ctx(app, service, lang),
        steps => step_list(service, steps, Some(draft), here, lang),
        step => minijinja::context! { n => here, title => step_title(steps, here, lang) },
        draft => draft.id.to_string(),
        submission => draft.state.submission.clone().unwrap_or_else(|| Uuid::now_v7().simple().to_string()),
        errors => summary(service, steps, Some(draft.id), here, errors, lang),
        sections,
        back_href => step_href(&service.code, steps, Some(draft.id), steps.len()),
    };
    Ok(ctx.render(status, "apply_check.html", page_ctx))
}

// ---------- handlers ----------

/// `?draft=&step=` of the apply page.
#[derive(Debug, Default, Deserialize)]
pub struct StepQuery {
    draft: Option<String>,
    step: Option<String>,
    saved: Option<String>,
    resumed: Option<String>,
}

/// Sends an applicant who may not apply online to the page that says why and what to do.
fn check_may_apply(service: &Service, applicant: &Applicant) -> AppResult<Option<Response>> {
    match apply::may_apply_online(service, &applicant.actor()) {
        Ok(_) => Ok(None),
        Err(usecases::Error::NotAllowed { .. } | usecases::Error::Conflict { .. }) => Ok(Some(
            Redirect::to(&format!("/services/{}/eligibility", service.code)).into_response(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// `GET /services/{code}/apply`: one step of the application, or the check page;
/// without a draft named, the newest draft of the service is resumed.
pub async fn apply_page(
    State(app): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<StepQuery>,
    ctx: PageCtx,
    applicant: Result<Applicant, AppError>,
) -> AppResult<Response> {
    let service = find_service(&app, &code)?;
    let applicant = match ctx.logged_in(applicant, false) {
        Ok(a) => a,
        Err(to) => return Ok(*to),
    };
    if let Some(to) = check_may_apply(service, &applicant)? {
        return Ok(to);
    }
    let s = &applicant.0.session;
    let steps = steps_of(service);
    let draft = match q.draft.as_deref().map(|d| d.parse::<Uuid>()) {
        Some(Ok(id)) => Some(load_draft(&app, service, s.account_id, id).await?),
        Some(Err(_)) => return Err(draft_not_found()),
        None => {
            if q.step.is_none()
                && let Some(d) = latest_draft(&app, service, s.account_id).await?
            {
                let at = d.state.step.clamp(1, steps.len() + 1);
                let to = format!(
                    "{}&resumed=1",
                    step_href(&service.code, &steps, Some(d.id), at)
                );
                return Ok(Redirect::to(&to).into_response());
            }
            None
        }
    };
    let consent = usecases::prefill::current_consent(&app, s.account_id, service).await?;
    let served = served_for(&app, s, service, consent.as_ref(), true).await?;
    let raw = shown_raw(service, served.as_ref(), draft.as_ref());
    if q.step.as_deref() == Some("check") {
        let Some(d) = &draft else {
            return Ok(Redirect::to(&step_href(&service.code, &steps, None, 1)).into_response());
        };
        return render_check(
            &app,
            &ctx,
            service,
            s,
            &steps,
            d,
            &raw,
            served.as_ref(),
            &[],
            StatusCode::OK,
        )
        .await;
    }
    let n = q
        .step
        .as_deref()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, steps.len());
    render_step(
        &app,
        StepPage {
            ctx: &ctx,
            service,
            session: s,
            steps: &steps,
            n,
            draft: draft.as_ref(),
            raw: &raw,
            consent: consent.as_ref(),
            served: served.as_ref(),
            errors: &[],
            saved: q.saved.is_some(),
            resumed: q.resumed.is_some(),
        },
        StatusCode::OK,
    )
    .await
}

/// The problems of the fields of one step, among all the form's.
fn issues_of_step(
    service: &Service,
    idx: &[usize],
    issues: Vec<form::FieldIssue>,
    skip: &HashSet<&str>,
) -> Vec<FieldError> {
    let ids: HashSet<&str> = idx.iter().map(|&i| service.fields[i].id.as_str()).collect();
    field_errors(issues)
        .into_iter()
        .filter(|e| ids.contains(top_field(&e.field)) && !skip.contains(e.field.as_str()))
        .collect()
}

/// `POST /services/{code}/apply/step`: saves one step in the draft and goes on to the
/// next (or back to the same step, saved, with "save and come back later"); problems
/// with this step's values show it again (422), with what was typed.
pub async fn save_step(
    State(app): State<AppState>,
    Path(code): Path<String>,
    ctx: PageCtx,
    applicant: Result<Applicant, AppError>,
    multipart: Result<Multipart, MultipartRejection>,
) -> AppResult<Response> {
    let service = find_service(&app, &code)?;
    let applicant = match ctx.logged_in(applicant, false) {
        Ok(a) => a,
        Err(to) => return Ok(*to),
    };
    let s = &applicant.0.session;
    apply::may_apply_online(service, &applicant.actor())?;
    let mut multipart = multipart.map_err(|_| not_multipart())?;
    let posted = read_form(&app, service, s, &mut multipart).await?;
    let steps = steps_of(service);
    let n = posted.step.unwrap_or(1).clamp(1, steps.len());
    let mut d = match posted.draft {
        Some(id) => load_draft(&app, service, s.account_id, id).await?,
        None => Draft::new(),
    };
    let save_only = posted.go.as_deref() == Some("save");
    let mut errors: Vec<FieldError> = Vec::new();
    match &steps[n - 1] {
        StepKind::Fields(idx) => {
            for &i in idx {
                let f = &service.fields[i];
                remove_field(&mut d.raw, f);
                let prefix = format!("{}[", f.id);
                for (k, v) in &posted.raw {
                    if k == &f.id || k.starts_with(&prefix) {
                        d.raw.insert(k.clone(), v.clone());
                    }
                }
                if !d.state.touched.contains(&f.id) {
                    d.state.touched.push(f.id.clone());
                }
                d.state.omit.retain(|o| o != &f.id);
                if posted.omit.contains(&f.id) {
                    d.state.omit.push(f.id.clone());
                }
            }
            errors.extend(posted.too_long.iter().cloned());
            if !save_only {
                let values = values_from(service, &effective_raw(&d.raw, &d.omit()));
                let skip: HashSet<&str> =
                    posted.too_long.iter().map(|e| e.field.as_str()).collect();
                if let Err(issues) = form::validate_form(service, &values, usecases::today()) {
                    errors.extend(issues_of_step(service, idx, issues, &skip));
                }
                // an authoritative value changed is refused at once, not only on submit
                let who = usecases::prefill::who_for_applicant(&app, s).await?;
                let served = prefill::snapshot(&app, s.account_id, &who, &service.code).await;
                // (on the values as given: the later steps are not filled in yet)
                if let Err(issues) = prefill::recheck(service, served.as_ref(), &values) {
                    errors.extend(issues_of_step(service, idx, issues, &skip));
                }
            }
        }
        StepKind::Materials => {
            d.state.substitute = posted.substitute.iter().cloned().collect();
            d.state.substitute.sort();
            d.state.uploads = posted.uploads.clone();
            d.state.materials_seen = true;
            errors.extend(posted.upload_errors.iter().cloned());
            if !save_only {
                for m in service.materials.iter().filter(|m| m.required) {
                    let given = posted.substitute.contains(&m.id)
                        || posted.uploads.get(&m.id).is_some_and(|u| !u.is_empty());
                    let field = format!("materials.{}", m.id);
                    if !given && !errors.iter().any(|e| e.field == field) {
                        let key = if m.substitute.is_some() {
                            "apply.material_required"
                        } else {
                            "apply.material_required_plain"
                        };
                        errors.push(FieldError {
                            field,
                            message: Message::new(
                                tx(Lang::Zh, key, &[("name", m.name.clone())]),
                                tx(Lang::En, key, &[("name", m.name_en.clone())]),
                            ),
                        });
                    }
                }
            }
        }
    }
    if d.state.submission.is_none() {
        d.state.submission = posted
            .submission
            .clone()
            .or_else(|| Some(Uuid::now_v7().simple().to_string()));
    }
    let next = if errors.is_empty() && !save_only {
        n + 1
    } else {
        n
    };
    d.state.step = d.state.step.max(next).min(steps.len() + 1);
    if !errors.is_empty() || save_only {
        d.state.step = d.state.step.max(n);
    }
    d.save(&app, service, s.account_id).await?;
    if errors.is_empty() {
        let mut to = step_href(&service.code, &steps, Some(d.id), next);
        if save_only {
            to.push_str("&saved=1");
        }
        return Ok(Redirect::to(&to).into_response());
    }
    let consent = usecases::prefill::current_consent(&app, s.account_id, service).await?;
    let served = served_for(&app, s, service, consent.as_ref(), false).await?;
    let raw = shown_raw(service, served.as_ref(), Some(&d));
    render_step(
        &app,
        StepPage {
            ctx: &ctx,
            service,
            session: s,
            steps: &steps,
            n,
            draft: Some(&d),
            raw: &raw,
            consent: consent.as_ref(),
            served: served.as_ref(),
            errors: &errors,
            saved: false,
            resumed: false,
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

fn not_multipart() -> AppError {
    AppError::BadRequest(Message::new(
        "请从申请页面提交表单（multipart/form-data）。",
        "Submit the form from the application page (multipart/form-data).",
    ))
}

/// The consent form.
#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    /// The draft to come back to.
    draft: Option<String>,
}

/// `POST /services/{code}/apply/consent`: the applicant agrees to the plan; back to the
/// form's first step, which is now prefilled.
pub async fn consent(
    State(app): State<AppState>,
    Path(code): Path<String>,
    ctx: PageCtx,
    applicant: Result<Applicant, AppError>,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> AppResult<Response> {
    let service = find_service(&app, &code)?;
    let applicant = match ctx.logged_in(applicant, false) {
        Ok(a) => a,
        Err(to) => return Ok(*to),
    };
    let s = &applicant.0.session;
    // a form that cannot be read carries no token either
    let form = form.ok().map(|Form(f)| f);
    let sent = form.as_ref().and_then(|f| f.csrf.clone());
    check_form_token(sent.as_deref(), s)?;
    apply::may_apply_online(service, &applicant.actor())?;
    usecases::prefill::give_consent(&app, s.account_id, service).await?;
    let draft = form
        .and_then(|f| f.draft)
        .and_then(|d| d.parse::<Uuid>().ok());
    let steps = steps_of(service);
    Ok(Redirect::to(&format!(
        "{}#application",
        step_href(&service.code, &steps, draft, 1)
    ))
    .into_response())
}

/// Drops what the lodge refused from a post, so it is not offered again as ticked: a
/// 免提交 tick whose licence did not hold, an upload the material does not accept (its
/// type or size).
async fn drop_rejected(
    app: &AppState,
    service: &Service,
    errors: &[FieldError],
    inputs: &[MaterialInput],
    posted: &mut Posted,
) -> AppResult<()> {
    for e in errors {
        let mid = match e.field.strip_prefix("materials.") {
            Some(mid) => mid.to_owned(),
            None => {
                let Some(input) = e
                    .field
                    .strip_prefix("materials[")
                    .and_then(|r| r.split(']').next())
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|i| inputs.get(i))
                else {
                    continue;
                };
                input.material.clone()
            }
        };
        let Some(m) = service.materials.iter().find(|m| m.id == mid) else {
            continue;
        };
        posted.substitute.remove(&mid);
        let Some(list) = posted.uploads.get(&mid).cloned() else {
            continue;
        };
        let mut kept = Vec::new();
        for id in list {
            if let Some(u) = app.store.upload(id).await?
                && m.file_types
                    .iter()
                    .any(|t| file_type_code(*t) == u.file_type)
                && u.size > 0
                && u.size <= i64::from(m.max_size_mb) * 1024 * 1024
            {
                kept.push(id);
            }
        }
        posted.uploads.insert(mid, kept);
    }
    Ok(())
}

fn file_type_code(t: FileType) -> &'static str {
    match t {
        FileType::Pdf => "pdf",
        FileType::Jpg => "jpg",
        FileType::Png => "png",
        FileType::Ofd => "ofd",
    }
}

/// Where a submitted draft's case number is remembered (for a second click).
fn submitted_key(account: Uuid, draft: Uuid) -> String {
    format!("apply:submitted:{account}:{draft}")
}

/// `POST /services/{code}/apply`: lodges the application, from the saved draft (the
/// check page) or from one whole form post. Problems are saved in the draft and shown
/// at the step of the first one (422).
pub async fn submit(
    State(app): State<AppState>,
    Path(code): Path<String>,
    ctx: PageCtx,
    applicant: Result<Applicant, AppError>,
    multipart: Result<Multipart, MultipartRejection>,
) -> AppResult<Response> {
    let service = find_service(&app, &code)?;
    let applicant = match ctx.logged_in(applicant, false) {
        Ok(a) => a,
        Err(to) => return Ok(*to),
    };
    let s = &applicant.0.session;
    let actor = applicant.actor();
    apply::may_apply_online(service, &actor)?;
    let mut multipart = multipart.map_err(|_| not_multipart())?;
    let mut posted = read_form(&app, service, s, &mut multipart).await?;
    let mut draft = match posted.draft {
        Some(id) => {
            // the draft's answers are the application
            let d = match load_draft(&app, service, s.account_id, id).await {
                Ok(d) => d,
                Err(e) => {
                    // a second click on the check page: the first one's receipt
                    if let Ok(Some(no)) = app.cache.get(&submitted_key(s.account_id, id)).await {
                        let no = String::from_utf8_lossy(&no).into_owned();
                        return Ok(Redirect::to(&format!("/cases/{no}/submitted")).into_response());
                    }
                    return Err(e);
                }
            };
            posted.raw = d.raw.clone();
            posted.omit = d.omit();
            posted.substitute = d.state.substitute.iter().cloned().collect();
            posted.uploads = d.state.uploads.clone();
            if let Some(sub) = &d.state.submission {
                posted.submission = Some(sub.clone());
            }
            d
        }
        None => {
            let mut d = Draft::new();
            d.raw = posted.raw.clone();
            d.state.omit = posted.omit.iter().cloned().collect();
            d.state.touched = service.fields.iter().map(|f| f.id.clone()).collect();
            d
        }
    };
    let values = values_from(service, &effective_raw(&posted.raw, &posted.omit));
    let inputs = material_inputs(service, &posted);
    let mut errors = posted.too_long.clone();
    errors.extend(posted.upload_errors.iter().cloned());
    if errors.is_empty() {
        // A double click sends the same submission id: the second gets the first's case.
        let idem = posted.submission.as_ref().map(|id| {
            IdemKey::new(
                actor.id(),
                format!("page:{id}"),
                &serde_json::json!({ "service": service.code, "values": values }),
            )
        });
        match apply::apply_online(&app, &actor, service, &values, &inputs, idem).await {
            Ok(lodged) => {
                if posted.draft.is_some() {
                    app.store.delete_draft(draft.id, s.account_id).await?;
                    let key = submitted_key(s.account_id, draft.id);
                    let day = std::time::Duration::from_secs(24 * 3600);
                    if let Err(e) = app.cache.set(&key, lodged.case_no.as_bytes(), day).await {
                        tracing::warn!(error = %e, "cannot remember the submitted draft");
                    }
                }
                return Ok(
                    Redirect::to(&format!("/cases/{}/submitted", lodged.case_no)).into_response(),
                );
            }
            Err(usecases::Error::Invalid(issues)) => {
                let raw_errors = field_errors(issues);
                drop_rejected(&app, service, &raw_errors, &inputs, &mut posted).await?;
                errors = remap(raw_errors, &inputs);
            }
            Err(e) => return Err(e.into()),
        }
    } else if let Err(issues) = form::validate_form(service, &values, usecases::today()) {
        // the rest of the form is checked too, so every problem shows at once
        let skip: HashSet<String> = posted.too_long.iter().map(|e| e.field.clone()).collect();
        errors.extend(
            field_errors(issues)
                .into_iter()
                .filter(|e| !skip.contains(&e.field)),
        );
    }
    // Kept in the draft, so nothing typed is lost; shown at the first problem's step.
    let steps = steps_of(service);
    draft.state.substitute = posted.substitute.iter().cloned().collect();
    draft.state.uploads = posted.uploads.clone();
    draft.state.materials_seen = true;
    draft.state.submission = posted.submission.clone();
    let n = errors
        .iter()
        .find_map(|e| step_of_path(service, &steps, &e.field))
        .unwrap_or(1);
    draft.state.step = draft.state.step.max(n);
    draft.save(&app, service, s.account_id).await?;
    // Shown again from what was served (no new read of anyone's data).
    let consent = usecases::prefill::current_consent(&app, s.account_id, service).await?;
    let served = served_for(&app, s, service, consent.as_ref(), false).await?;
    let raw = shown_raw(service, served.as_ref(), Some(&draft));
    render_step(
        &app,
        StepPage {
            ctx: &ctx,
            service,
            session: s,
            steps: &steps,
            n,
            draft: Some(&draft),
            raw: &raw,
            consent: consent.as_ref(),
            served: served.as_ref(),
            errors: &errors,
            saved: false,
            resumed: false,
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// `GET /cases/{case_no}/submitted`: the receipt, with the query code; only the
/// applicant who owns the case sees it (anyone else: not found). Identifiers that may
/// equal an ID number (an ID card's e-licence number) are masked.
pub async fn submitted(
    State(app): State<AppState>,
    ctx: PageCtx,
    own: Result<ApplicantCase, AppError>,
) -> AppResult<Response> {
    let ApplicantCase { case: c, .. } = match ctx.logged_in(own, false) {
        Ok(a) => a,
        Err(to) => return Ok(*to),
    };
    let lang = ctx.lang;
    let service = app.catalogue.service(&c.service_code);
    let status = CaseStatus::from_code(&c.status)
        .map(|s| {
            let (zh, en) = s.labels();
            lang.pick(zh, en).to_owned()
        })
        .unwrap_or_else(|| c.status.clone());
    let materials: Vec<minijinja::Value> = app
        .store
        .case_materials(c.id)
        .await?
        .into_iter()
        .map(|m| {
            let def = service.and_then(|s| s.materials.iter().find(|d| d.id == m.material_id));
            let ev = |k: &str| {
                m.evidence
                    .as_ref()
                    .and_then(|e| e.get(k))
                    .map(text_of)
                    .unwrap_or_default()
            };
            minijinja::context! {
                id => m.material_id.clone(),
                name => def.map_or_else(|| m.material_id.clone(), |d| lang.pick(&d.name, &d.name_en).to_owned()),
                substituted => m.substituted,
                licence_no => ev("licence_no"),
                issuer => ev("issuer"),
                file_name => m.file_name.clone(),
                size => m.size.map(human_size),
            }
        })
        .collect();
    let page_ctx = minijinja::context! {
        case_no => c.case_no.clone(),
        query_code => c.query_code.clone(),
        service => service.map(|s| minijinja::context! { code => s.code.clone(), name => s.name.clone(), name_en => s.name_en.clone() }),
        status,
        submitted_at => cst(c.created_at),
        fields_filled => c.fields_filled,
        fields_prefilled => c.fields_prefilled,
        materials,
    };
    Ok(ctx.render(StatusCode::OK, "applied.html", page_ctx))
}

/// `GET /me/data-access`: who read my data, one row per read (the citizen pages' own
/// handler, `pages::citizen::data_access`).
pub async fn data_access_page(
    state: State<AppState>,
    ctx: super::pages::PageCtx,
    user: Result<CurrentUser, AppError>,
) -> AppResult<Response> {
    super::pages::citizen::data_access(state, ctx, user).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_name_fields_cells_and_materials() {
        assert_eq!(anchor_of("applicant_name"), "f-applicant_name");
        assert_eq!(
            anchor_of("household_members[2].id_number"),
            "f-household_members-2-id_number"
        );
        assert_eq!(anchor_of("materials.photo"), "file-photo");
    }

    #[test]
    fn lodge_errors_name_materials_by_id() {
        let inputs = vec![
            MaterialInput {
                material: "id_card".into(),
                upload_id: None,
                substitute: true,
            },
            MaterialInput {
                material: "photo".into(),
                upload_id: Some(Uuid::nil()),
                substitute: false,
            },
        ];
        let e = remap(
            vec![FieldError {
                field: "materials[1]".into(),
                message: Message::new("x", "x"),
            }],
            &inputs,
        );
        assert_eq!(e[0].field, "materials.photo");
    }

    fn service(code: &str) -> Service {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("service-definitions");
        let cat = crate::domain::catalogue::load_dir(&dir).expect("catalogue");
        cat.service(code).expect("service").clone()
    }

    #[test]
    fn a_long_form_is_split_into_sections_then_the_documents() {
        let ssc = service("11150700MB15300034-GG-0002");
        let steps = steps_of(&ssc);
        assert_eq!(
            steps,
            vec![
                StepKind::Fields(vec![0, 1, 2, 3, 4]),
                StepKind::Fields(vec![5, 6, 7, 8]),
                StepKind::Materials,
            ]
        );
        assert_eq!(step_of_path(&ssc, &steps, "bank"), Some(2));
        assert_eq!(step_of_path(&ssc, &steps, "materials.photo"), Some(3));
        assert_eq!(step_of_path(&ssc, &steps, "nothing"), None);
        assert_eq!(step_title(&steps, 2, Lang::En), "Your application (2 of 2)");
        assert_eq!(step_title(&steps, 4, Lang::Zh), "核对并提交");
        assert_eq!(
            step_href(&ssc.code, &steps, None, 4),
            format!("/services/{}/apply?step=check", ssc.code)
        );
        // no step of any shipped form is heavier than a phone can show comfortably
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("service-definitions");
        let cat = crate::domain::catalogue::load_dir(&dir).expect("catalogue");
        for s in cat.services() {
            for step in steps_of(s) {
                if let StepKind::Fields(idx) = step {
                    let w: usize = idx.iter().map(|&i| weight(&s.fields[i])).sum();
                    assert!(w <= STEP_WEIGHT.max(4), "{}: {w}", s.code);
                }
            }
        }
    }

    #[test]
    fn a_drafts_values_come_back_as_the_forms_controls() {
        let ssc = service("11150700MB15300034-GG-0002");
        let mut raw = Raw::new();
        raw.insert("applicant_name".into(), vec!["王小明".into()]);
        raw.insert("bank".into(), vec!["icbc".into()]);
        raw.insert("old_card_no".into(), vec!["H1".into()]);
        let mut d = Draft::new();
        d.raw = raw;
        d.state.omit = vec!["old_card_no".into()];
        let values = d.values(&ssc);
        assert_eq!(values["applicant_name"], "王小明");
        assert!(values.get("old_card_no").is_none(), "left out: {values:?}");
        assert!(values.contains_key(PAGE_KEY));
        let row = DraftRow {
            id: d.id,
            account_id: Uuid::nil(),
            service_code: ssc.code.clone(),
            form: Value::Object(values),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            expires_at: Utc::now(),
        };
        let back = Draft::from_row(&ssc, &row);
        assert_eq!(back.raw["bank"], vec!["icbc".to_owned()]);
        assert_eq!(back.state.omit, vec!["old_card_no".to_owned()]);
        assert_eq!(
            answer_lines(&ssc.fields[6], &back.raw, false, Lang::En),
            vec!["Industrial and Commercial Bank of China".to_owned()]
        );
        assert_eq!(
            answer_lines(&ssc.fields[5], &back.raw, true, Lang::Zh),
            vec!["不适用，未填写".to_owned()]
        );
        assert!(answer_lines(&ssc.fields[8], &back.raw, false, Lang::Zh).is_empty());
    }

    #[test]
    fn controls_are_named_by_their_field() {
        assert_eq!(
            top_field("household_members[2].id_number"),
            "household_members"
        );
        assert_eq!(top_field("materials.photo"), "materials");
        assert_eq!(top_field("bank"), "bank");
        let ssc = service("11150700MB15300034-GG-0002");
        let e = too_long_error(&ssc, "mailing_address");
        assert!(
            e.message.zh.contains("“邮寄地址”的内容过长"),
            "{}",
            e.message.zh
        );
        assert!(
            e.message.en.contains("“Postal address” is too long"),
            "{}",
            e.message.en
        );
    }
}
