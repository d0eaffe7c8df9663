//! The citizen's pages for applying online (server-rendered, no JavaScript needed):
//!
//! - `GET /services/{code}/apply`: the form. When the service has a prefill plan, where
//!   the data would come from and why, and either the consent button or, with a current
//!   consent, the form filled from shared data with each value's source. Authoritative
//!   values are read-only; materials an e-licence stands in for are offered as 免提交.
//! - `POST /services/{code}/apply/consent`: records the consent, back to the form.
//! - `POST /services/{code}/apply`: the form as `multipart/form-data` (values, files,
//!   `substitute.<material>` ticks). Files are stored like `POST /api/v1/uploads`, the
//!   application is lodged like `POST /api/v1/cases`; problems re-render the form (422)
//!   with an error summary and a message at each field, and files already uploaded are
//!   kept so they need not be chosen again.
//! - `GET /cases/{case_no}/submitted`: the case number and query code, to its owner only.
//! - `GET /me/data-access`: who read my data, when and why.
//!
//! Form controls: a top-level field is named by its id, a table cell
//! `<table>[<row>].<column>`, a material's files `file.<material>`, a kept upload
//! `keep.<material>` (value: the upload id), a 免提交 tick `substitute.<material>`. The
//! session's CSRF token travels in `_csrf`, which must be the first part of a form.
//! Static texts are in both languages; data (names of resources, departments …) is in
//! the page language: `?lang=en|zh`, else `Accept-Language`.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::cases::{multipart_error, store_upload};
use super::catalogue::find_service;
use super::error::{AppError, AppResult, FieldError, Message};
use super::pages::{TEMPLATES, user_ctx};
use super::sharing::plan_view;
use crate::auth::extract::{Applicant, ApplicantCase, CurrentUser};
use crate::auth::session::Session;
use crate::domain::case::CaseStatus;
use crate::domain::catalogue::{Field, FieldType, FileType, Material, Service};
use crate::domain::form::{self, MAX_UPLOADS_PER_MATERIAL};
use crate::domain::lang::Lang;
use crate::sharing::prefill::{self, Prefill};
use crate::state::AppState;
use crate::store::ConsentRow;
use crate::usecases::{self, IdemKey, MaterialInput, apply};

/// The routes of these pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/services/{code}/apply", get(apply_page).post(submit))
        .route("/services/{code}/apply/consent", post(consent))
        .route("/cases/{case_no}/submitted", get(submitted))
        .route("/me/data-access", get(data_access_page))
        // several materials' files in one form
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

/// The largest form post (all its files together).
const MAX_FORM_BYTES: usize = 110 * 1024 * 1024;
/// The largest text value of one form control.
const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Distinct controls (and values of one control) a form post may carry.
const MAX_CONTROLS: usize = 2000;
/// Table rows a form shows at most (definitions with more use the API).
const MAX_SHOWN_ROWS: usize = 20;

/// A page in the page language, never cached (it shows personal data).
fn page(status: StatusCode, name: &str, lang: Lang, ctx: minijinja::Value) -> AppResult<Response> {
    let body = TEMPLATES
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| anyhow::anyhow!("page {name} does not render: {e}"))?;
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.tag()),
    );
    Ok(resp)
}

/// `?lang=` of every page.
#[derive(Debug, Default, Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

/// The page language and the query suffix that keeps it on links and form actions.
fn page_lang(q: &LangQuery, headers: &HeaderMap) -> (Lang, &'static str) {
    match q.lang.as_deref() {
        Some("en") => (Lang::En, "?lang=en"),
        Some("zh") | Some("zh-CN") => (Lang::Zh, "?lang=zh"),
        _ => (super::lang_of(headers), ""),
    }
}

fn html_lang(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "zh-CN",
        Lang::En => "en",
    }
}

/// The login, coming back to `here` afterwards.
fn to_login(here: &str) -> Response {
    let back: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    Redirect::to(&format!("/auth/login?return_to={back}")).into_response()
}

/// The logged-in caller, or the way to the login (a wrong role stays an error page).
fn logged_in<T>(who: Result<T, AppError>, here: &str) -> Result<T, Box<Response>> {
    match who {
        Ok(w) => Ok(w),
        Err(AppError::Unauthorized(_)) => Err(Box::new(to_login(here))),
        Err(e) => Err(Box::new(e.into_response())),
    }
}

/// The session's CSRF token must come back in the form's `_csrf` field (on top of the
/// Origin check every state-changing request passes).
fn check_form_token(sent: Option<&str>, session: &Session) -> AppResult<()> {
    if sent.is_some_and(|t| bool::from(t.as_bytes().ct_eq(session.csrf.as_bytes()))) {
        Ok(())
    } else {
        Err(AppError::Forbidden(Message::new(
            "此页面已过期（或并非从本网站提交），请返回申请页面重新打开后再提交。",
            "This page has expired (or was not sent from this site). Go back, open the application page again and resubmit.",
        )))
    }
}

/// Chinese Standard Time, to the minute.
fn cst(at: DateTime<Utc>) -> String {
    (at + chrono::Duration::hours(8))
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn cst_date(at: DateTime<Utc>) -> String {
    (at + chrono::Duration::hours(8))
        .format("%Y-%m-%d")
        .to_string()
}

fn human_size(bytes: i64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", (bytes + 1023) / 1024)
    }
}

// ---------- the form ----------

/// Text values by control name, in the order sent (several for a multiselect).
type Raw = HashMap<String, Vec<String>>;

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
}

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

/// Reads a text part, refusing one that is too large.
async fn read_text(mut field: axum::extract::multipart::Field<'_>) -> AppResult<String> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
        if buf.len() + chunk.len() > MAX_TEXT_BYTES {
            return Err(AppError::PayloadTooLarge(Message::new(
                "表单中某一项的内容过长。",
                "One of the form's values is too long.",
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| {
        AppError::BadRequest(Message::new(
            "表单内容不是有效的 UTF-8 文本。",
            "The form's text is not valid UTF-8.",
        ))
    })
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
                Some(read_text(field).await?)
            } else {
                None
            };
            check_form_token(sent.as_deref(), session)?;
            checked_token = true;
            continue;
        }
        if name == "_submission" {
            let id = read_text(field).await?;
            if !id.is_empty() && id.len() <= 64 {
                posted.submission = Some(id);
            }
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
                push_unique(
                    &mut posted.upload_errors,
                    FieldError {
                        field: format!("materials.{mid}"),
                        message: Message::new(
                            format!("“{}”最多上传{MAX_UPLOADS_PER_MATERIAL}个文件", m.name),
                            format!(
                                "“{}”: at most {MAX_UPLOADS_PER_MATERIAL} files may be uploaded",
                                m.name_en
                            ),
                        ),
                    },
                );
                continue;
            }
            match store_upload(app, session.account_id, field).await {
                Ok(row) => posted.uploads.entry(m.id.clone()).or_default().push(row.id),
                Err(AppError::Internal(e)) => return Err(AppError::Internal(e)),
                Err(e) => {
                    let why = e.problem().detail;
                    posted.upload_errors.push(FieldError {
                        field: format!("materials.{mid}"),
                        message: Message::new(
                            format!("“{}”的文件未能上传：{}", m.name, why.zh),
                            format!("“{}”: the file was not uploaded: {}", m.name_en, why.en),
                        ),
                    });
                }
            }
            continue;
        }
        let text = read_text(field).await?;
        if let Some(mid) = name.strip_prefix("substitute.") {
            if text == "true" && service.materials.iter().any(|m| m.id == mid) {
                posted.substitute.insert(mid.to_owned());
                posted.uploads.remove(mid);
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

// ---------- views for the templates ----------

#[derive(Serialize)]
struct Msg {
    zh: String,
    en: String,
}

impl From<&Message> for Msg {
    fn from(m: &Message) -> Msg {
        Msg {
            zh: m.zh.clone(),
            en: m.en.clone(),
        }
    }
}

#[derive(Serialize)]
struct OptionView {
    value: String,
    label: String,
    label_en: String,
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
    label_en: String,
    /// `text`, `textarea`, `select`, `multiselect`, `checkbox`, `table`.
    kind: &'static str,
    /// The `type` of an `<input>`.
    input_type: &'static str,
    autocomplete: Option<&'static str>,
    inputmode: Option<&'static str>,
    required: bool,
    /// "Required when …", both languages.
    required_when: Option<Msg>,
    help: Option<String>,
    help_en: Option<String>,
    maxlength: Option<u32>,
    value: String,
    /// A read-only select shows its option's label.
    value_label: String,
    checked: bool,
    options: Vec<OptionView>,
    readonly: bool,
    source: Option<SourceView>,
    /// The source that could not be read now (its name, both languages).
    unavailable: Option<Msg>,
    errors: Vec<Msg>,
    describedby: String,
    /// Accessible name of a table cell (its column header is not a `<label>`).
    aria_label: Option<String>,
    columns: Vec<FieldView>,
    rows: Vec<Vec<FieldView>>,
}

struct FieldCtx<'a> {
    raw: &'a Raw,
    served: Option<&'a Prefill>,
    /// Resources that could not be read: code → name.
    unavailable: &'a HashMap<String, Msg>,
    errors: &'a HashMap<String, Vec<Msg>>,
    lang: Lang,
    fields: &'a [Field],
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

fn required_when(f: &Field, fields: &[Field]) -> Option<Msg> {
    let cond = f.required_if.as_ref()?;
    let other = fields.iter().find(|o| o.id == cond.field)?;
    let opt = other.options.iter().find(|o| o.value == cond.equals);
    let (v, v_en) = opt.map_or((cond.equals.as_str(), cond.equals.as_str()), |o| {
        (o.label.as_str(), o.label_en.as_str())
    });
    Some(Msg {
        zh: format!("“{}”为“{v}”时必填", other.label),
        en: format!("required when “{}” is “{v_en}”", other.label_en),
    })
}

fn field_view(f: &Field, name: String, cx: &FieldCtx<'_>, top_level: bool) -> FieldView {
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
            label: o.label.clone(),
            label_en: o.label_en.clone(),
            selected: chosen.iter().any(|c| c == &o.value),
        })
        .collect();
    let value_label = f
        .options
        .iter()
        .find(|o| o.value == value)
        .map(|o| format!("{} {}", o.label, o.label_en))
        .unwrap_or_else(|| value.clone());
    let source = served.map(|pv| SourceView {
        resource: cx
            .lang
            .pick(&pv.source.resource_name, &pv.source.resource_name_en)
            .to_owned(),
        provider: cx
            .lang
            .pick(&pv.source.provider_name, &pv.source.provider_name_en)
            .to_owned(),
        as_of: cst_date(pv.as_of),
        authoritative: pv.authoritative,
    });
    let errors: Vec<Msg> = cx
        .errors
        .get(&name)
        .map(|list| {
            list.iter()
                .map(|m| Msg {
                    zh: m.zh.clone(),
                    en: m.en.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let unavailable = f
        .prefill
        .as_deref()
        .and_then(|b| b.split_once('.'))
        .and_then(|(res, _)| cx.unavailable.get(res))
        .filter(|_| top_level && served.is_none())
        .map(|m| Msg {
            zh: m.zh.clone(),
            en: m.en.clone(),
        });
    let mut describedby = Vec::new();
    if f.help.is_some() && top_level {
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
                        v.aria_label = Some(format!(
                            "{} 第{}行 {} / {} row {} {}",
                            f.label,
                            i + 1,
                            c.label,
                            f.label_en,
                            i + 1,
                            c.label_en
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
    FieldView {
        id: f.id.clone(),
        anchor,
        name,
        label: f.label.clone(),
        label_en: f.label_en.clone(),
        kind,
        input_type,
        autocomplete,
        inputmode,
        required: f.required,
        required_when: if top_level {
            required_when(f, cx.fields)
        } else {
            None
        },
        help: f.help.clone(),
        help_en: f.help_en.clone(),
        maxlength: form::max_length(f),
        checked: chosen.iter().any(|c| c == "true"),
        value,
        value_label,
        options,
        readonly,
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
    name_en: String,
    required: bool,
    help: Option<String>,
    help_en: Option<String>,
    file_types: String,
    accept: String,
    max_size_mb: u32,
    evidence: Option<EvidenceView>,
    substitute_checked: bool,
    kept: Vec<KeptView>,
    errors: Vec<Msg>,
    describedby: String,
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

/// What the page shows of a material: the e-licence that may stand in for it, uploads
/// kept from an earlier attempt, its problems.
async fn material_view(
    app: &AppState,
    m: &Material,
    account: Uuid,
    served: Option<&Prefill>,
    posted: Option<&Posted>,
    errors: &HashMap<String, Vec<Msg>>,
    lang: Lang,
) -> AppResult<MaterialView> {
    let (file_types, accept) = file_type_names(&m.file_types);
    let evidence = served.and_then(|p| p.materials.get(&m.id)).map(|e| {
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
    });
    // Offered ticked for a required material; an optional one only when asked for.
    let substitute_checked = match posted {
        Some(p) => p.substitute.contains(&m.id),
        None => evidence.is_some() && m.required,
    };
    let mut kept = Vec::new();
    if let Some(p) = posted
        && !p.substitute.contains(&m.id)
    {
        for id in p.uploads.get(&m.id).into_iter().flatten() {
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
    }
    let key = format!("materials.{}", m.id);
    let errors: Vec<Msg> = errors
        .get(&key)
        .map(|l| {
            l.iter()
                .map(|x| Msg {
                    zh: x.zh.clone(),
                    en: x.en.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut describedby = vec![format!("m-{}-hint", m.id)];
    if !errors.is_empty() {
        describedby.push(format!("m-{}-error", m.id));
    }
    Ok(MaterialView {
        id: m.id.clone(),
        name: m.name.clone(),
        name_en: m.name_en.clone(),
        required: m.required,
        help: m.help.clone(),
        help_en: m.help_en.clone(),
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

/// Everything the apply page shows.
struct ApplyPage<'a> {
    service: &'a Service,
    session: &'a Session,
    lang: Lang,
    suffix: &'static str,
    consent: Option<&'a ConsentRow>,
    served: Option<&'a Prefill>,
    /// The post being shown again, with its problems; `None` for a fresh form.
    posted: Option<&'a Posted>,
    errors: &'a [FieldError],
}

async fn render_apply(app: &AppState, p: ApplyPage<'_>, status: StatusCode) -> AppResult<Response> {
    let service = p.service;
    let fresh;
    let raw = match p.posted {
        Some(posted) => &posted.raw,
        None => {
            fresh = raw_from_prefill(p.served);
            &fresh
        }
    };
    let mut by_field: HashMap<String, Vec<Msg>> = HashMap::new();
    for e in p.errors {
        by_field
            .entry(e.field.clone())
            .or_default()
            .push(Msg::from(&e.message));
    }
    let known: HashSet<String> = service
        .fields
        .iter()
        .flat_map(|f| {
            let mut names = vec![f.id.clone()];
            if f.field_type == FieldType::Table {
                for i in 0..MAX_SHOWN_ROWS {
                    for c in &f.columns {
                        names.push(cell_name(f, i, c));
                    }
                }
            }
            names
        })
        .chain(
            service
                .materials
                .iter()
                .map(|m| format!("materials.{}", m.id)),
        )
        .collect();
    let summary: Vec<minijinja::Value> = p
        .errors
        .iter()
        .map(|e| {
            minijinja::context! {
                zh => e.message.zh.clone(),
                en => e.message.en.clone(),
                anchor => known.contains(&e.field).then(|| anchor_of(&e.field)),
            }
        })
        .collect();
    let unavailable: HashMap<String, Msg> = p
        .served
        .map(|s| s.unavailable.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|u| {
            let name = app.catalogue.resource(&u.resource);
            let msg = Msg {
                zh: name.map_or_else(|| u.resource.clone(), |r| r.name.clone()),
                en: name.map_or_else(|| u.resource.clone(), |r| r.name_en.clone()),
            };
            (u.resource.clone(), msg)
        })
        .collect();
    let cx = FieldCtx {
        raw,
        served: p.served,
        unavailable: &unavailable,
        errors: &by_field,
        lang: p.lang,
        fields: &service.fields,
    };
    let fields: Vec<FieldView> = service
        .fields
        .iter()
        .map(|f| field_view(f, f.id.clone(), &cx, true))
        .collect();
    let mut materials = Vec::new();
    for m in &service.materials {
        materials.push(
            material_view(
                app,
                m,
                p.session.account_id,
                p.served,
                p.posted,
                &by_field,
                p.lang,
            )
            .await?,
        );
    }
    let plan = plan_groups(app, service, p.lang);
    let banner: Vec<Msg> = p
        .served
        .map(|s| {
            s.unavailable
                .iter()
                .map(|u| Msg {
                    zh: u.message.clone(),
                    en: u.message_en.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let department = app
        .catalogue
        .department(&service.department)
        .map(|d| p.lang.pick(&d.name, &d.name_en).to_owned());
    let ctx = minijinja::context! {
        user => user_ctx(Some(p.session)),
        lang => html_lang(p.lang),
        suffix => p.suffix,
        csrf => p.session.csrf.clone(),
        submission => p
            .posted
            .and_then(|x| x.submission.clone())
            .unwrap_or_else(|| Uuid::now_v7().simple().to_string()),
        service => minijinja::context! {
            code => service.code.clone(),
            name => service.name.clone(),
            name_en => service.name_en.clone(),
            department,
        },
        errors => summary,
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
    };
    page(status, "apply.html", p.lang, ctx)
}

// ---------- handlers ----------

/// `GET /services/{code}/apply`: the application form, prefilled when consented to.
pub async fn apply_page(
    State(app): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
    applicant: Result<Applicant, AppError>,
) -> AppResult<Response> {
    let service = find_service(&app, &code)?;
    let (lang, suffix) = page_lang(&q, &headers);
    let applicant = match logged_in(
        applicant,
        &format!("/services/{}/apply{suffix}", service.code),
    ) {
        Ok(a) => a,
        Err(to) => return Ok(*to),
    };
    let s = &applicant.0.session;
    if let Err(e) = apply::may_apply_online(service, &applicant.actor()) {
        return match e {
            // the eligibility page explains why, and what to do
            usecases::Error::NotAllowed { .. } | usecases::Error::Conflict { .. } => Ok(
                Redirect::to(&format!("/services/{}/eligibility", service.code)).into_response(),
            ),
            e => Err(e.into()),
        };
    }
    let consent = usecases::prefill::current_consent(&app, s.account_id, service).await?;
    let served = match consent {
        Some(_) => Some(usecases::prefill::for_applicant(&app, s, service).await?),
        None => None,
    };
    render_apply(
        &app,
        ApplyPage {
            service,
            session: s,
            lang,
            suffix,
            consent: consent.as_ref(),
            served: served.as_ref(),
            posted: None,
            errors: &[],
        },
        StatusCode::OK,
    )
    .await
}

/// The consent form.
#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// `POST /services/{code}/apply/consent`: the applicant agrees to the plan; back to the
/// form, which is now prefilled.
pub async fn consent(
    State(app): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
    applicant: Result<Applicant, AppError>,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> AppResult<Response> {
    let service = find_service(&app, &code)?;
    let (_, suffix) = page_lang(&q, &headers);
    let back = format!("/services/{}/apply{suffix}", service.code);
    let applicant = match logged_in(applicant, &back) {
        Ok(a) => a,
        Err(to) => return Ok(*to),
    };
    let s = &applicant.0.session;
    // a form that cannot be read carries no token either
    let sent = form.ok().and_then(|Form(f)| f.csrf);
    check_form_token(sent.as_deref(), s)?;
    apply::may_apply_online(service, &applicant.actor())?;
    usecases::prefill::give_consent(&app, s.account_id, service).await?;
    Ok(Redirect::to(&format!("{back}#application")).into_response())
}

/// `POST /services/{code}/apply`: lodges the application from the form.
pub async fn submit(
    State(app): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
    applicant: Result<Applicant, AppError>,
    multipart: Result<Multipart, MultipartRejection>,
) -> AppResult<Response> {
    let service = find_service(&app, &code)?;
    let (lang, suffix) = page_lang(&q, &headers);
    let applicant = match logged_in(
        applicant,
        &format!("/services/{}/apply{suffix}", service.code),
    ) {
        Ok(a) => a,
        Err(to) => return Ok(*to),
    };
    let s = &applicant.0.session;
    let actor = applicant.actor();
    apply::may_apply_online(service, &actor)?;
    let mut multipart = multipart.map_err(|_| {
        AppError::BadRequest(Message::new(
            "请从申请页面提交表单（multipart/form-data）。",
            "Submit the form from the application page (multipart/form-data).",
        ))
    })?;
    let posted = read_form(&app, service, s, &mut multipart).await?;
    let values = values_from(service, &posted.raw);
    let inputs = material_inputs(service, &posted);
    let mut errors = posted.upload_errors.clone();
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
                return Ok(
                    Redirect::to(&format!("/cases/{}/submitted{suffix}", lodged.case_no))
                        .into_response(),
                );
            }
            Err(usecases::Error::Invalid(issues)) => {
                errors = remap(field_errors(issues), &inputs);
            }
            Err(e) => return Err(e.into()),
        }
    } else if let Err(issues) = form::validate_form(service, &values, usecases::today()) {
        // the rest of the form is checked too, so every problem shows at once
        errors.extend(field_errors(issues));
    }
    // Shown again from what was served (no new read of anyone's data).
    let who = usecases::prefill::who_for_applicant(&app, s).await?;
    let served = prefill::snapshot(&app, s.account_id, &who, &service.code).await;
    let consent = usecases::prefill::current_consent(&app, s.account_id, service).await?;
    render_apply(
        &app,
        ApplyPage {
            service,
            session: s,
            lang,
            suffix,
            consent: consent.as_ref(),
            served: served.as_ref(),
            posted: Some(&posted),
            errors: &errors,
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// `GET /cases/{case_no}/submitted`: the receipt, with the query code; only the
/// applicant who owns the case sees it (anyone else: not found).
pub async fn submitted(
    State(app): State<AppState>,
    Path(case_no): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
    own: Result<ApplicantCase, AppError>,
) -> AppResult<Response> {
    let (lang, suffix) = page_lang(&q, &headers);
    let here = format!(
        "/cases/{}/submitted{suffix}",
        url::form_urlencoded::byte_serialize(case_no.as_bytes()).collect::<String>()
    );
    let ApplicantCase { applicant, case: c } = match logged_in(own, &here) {
        Ok(a) => a,
        Err(to) => return Ok(*to),
    };
    let service = app.catalogue.service(&c.service_code);
    let (status_zh, status_en) = CaseStatus::from_code(&c.status)
        .map(CaseStatus::labels)
        .unwrap_or(("", ""));
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
                name => def.map(|d| d.name.clone()).unwrap_or_else(|| m.material_id.clone()),
                name_en => def.map(|d| d.name_en.clone()).unwrap_or_default(),
                substituted => m.substituted,
                licence_no => ev("licence_no"),
                issuer => ev("issuer"),
                file_name => m.file_name.clone(),
                size => m.size.map(human_size),
            }
        })
        .collect();
    let ctx = minijinja::context! {
        user => user_ctx(Some(&applicant.0.session)),
        lang => html_lang(lang),
        suffix,
        case_no => c.case_no.clone(),
        query_code => c.query_code.clone(),
        service => service.map(|s| minijinja::context! { code => s.code.clone(), name => s.name.clone(), name_en => s.name_en.clone() }),
        status_zh,
        status_en,
        submitted_at => cst(c.created_at),
        fields_filled => c.fields_filled,
        fields_prefilled => c.fields_prefilled,
        materials,
    };
    page(StatusCode::OK, "applied.html", lang, ctx)
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
}
