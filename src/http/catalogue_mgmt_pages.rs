//! Catalogue management pages: the department's resources, their edit form (the items
//! as a table whose rows are added and removed by the form's own buttons, so it works
//! without JavaScript), version history and one version (`/desk/catalogue/…`); the
//! operator's pending versions, each compared with the live one, published or returned
//! (`/ops/catalogue/…`).

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use minijinja::context;
use serde_json::Value;

use super::catalogue_mgmt::{CatItemInput, CatResourceInput, detail, entries};
use super::error::{AppError, AppResult};
use super::pages::{PageCtx, cst};
use crate::auth::extract::{DepartmentOfficer, Operator};
use crate::domain::catalogue::{DataType, OpenAttribute, ShareType, Subject, UpdateCycle};
use crate::domain::catalogue_edit::{self, code_of, cycle_label, open_label, share_label};
use crate::domain::lang::Lang;
use crate::http::path::Path;
use crate::state::AppState;
use crate::store::ResourceVersion;
use crate::usecases::catalogue_mgmt::{self as mgmt, Author};

/// The pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/desk/catalogue", get(desk_list))
        .route("/desk/catalogue/new", get(desk_new).post(desk_new_post))
        .route("/desk/catalogue/{code}", get(desk_history))
        .route(
            "/desk/catalogue/{code}/edit",
            get(desk_edit).post(desk_edit_post),
        )
        .route(
            "/desk/catalogue/{code}/versions/{version}",
            get(desk_version),
        )
        .route("/ops/catalogue", get(ops_pending))
        .route("/ops/catalogue/{code}/versions/{version}", get(ops_version))
        .route(
            "/ops/catalogue/{code}/versions/{version}/publish",
            post(ops_publish),
        )
        .route(
            "/ops/catalogue/{code}/versions/{version}/return",
            post(ops_return),
        )
}

fn status_label(s: &str, lang: Lang) -> &'static str {
    match s {
        "pending" => lang.pick("待发布", "Pending"),
        "published" => lang.pick("已发布", "Published"),
        "returned" => lang.pick("已退回", "Returned"),
        _ => lang.pick("已撤回", "Withdrawn"),
    }
}

fn opts<T: Copy + serde::Serialize>(
    all: &[T],
    label: fn(T) -> (&'static str, &'static str),
    lang: Lang,
) -> Vec<Value> {
    all.iter()
        .map(|v| serde_json::json!({"code": code_of(v), "label": lang.pick(label(*v).0, label(*v).1)}))
        .collect()
}

const TYPES: [DataType; 9] = [
    DataType::Text,
    DataType::Date,
    DataType::Number,
    DataType::IdNumber,
    DataType::Uscc,
    DataType::Phone,
    DataType::Address,
    DataType::Code,
    DataType::Licence,
];

fn type_label(t: DataType) -> (&'static str, &'static str) {
    match t {
        DataType::Text => ("文本", "Text"),
        DataType::Date => ("日期", "Date"),
        DataType::Number => ("数值", "Number"),
        DataType::IdNumber => ("身份证号", "ID number"),
        DataType::Uscc => ("统一社会信用代码", "USCC"),
        DataType::Phone => ("电话", "Phone"),
        DataType::Address => ("地址", "Address"),
        DataType::Code => ("代码", "Code"),
        DataType::Licence => ("电子证照", "E-licence"),
    }
}

fn subject_label(s: Subject) -> (&'static str, &'static str) {
    match s {
        Subject::Person => ("自然人", "Person"),
        Subject::Enterprise => ("法人", "Enterprise"),
    }
}

/// The form's option lists, in the page language.
fn choices(lang: Lang) -> Value {
    serde_json::json!({
        "share_types": opts(&[ShareType::Unconditional, ShareType::Conditional, ShareType::NotShared], share_label, lang),
        "opens": opts(&[OpenAttribute::Open, OpenAttribute::ConditionalOpen, OpenAttribute::NotOpen], open_label, lang),
        "cycles": opts(&[UpdateCycle::Realtime, UpdateCycle::Daily, UpdateCycle::Weekly, UpdateCycle::Monthly, UpdateCycle::Yearly], cycle_label, lang),
        "subjects": opts(&catalogue_edit::subject_choices(), subject_label, lang),
        "types": opts(&TYPES, type_label, lang),
    })
}

/// A version's body as the form holds it (every value as the page shows it).
fn form_of(v: &ResourceVersion) -> Value {
    let r = &v.body;
    serde_json::json!({
        "code": r.code,
        "name": r.name,
        "name_en": r.name_en,
        "share_type": code_of(&r.share_type),
        "conditions": r.conditions.clone().unwrap_or_default(),
        "conditions_en": r.conditions_en.clone().unwrap_or_default(),
        "open": r.open.code(),
        "update_cycle": code_of(&r.update_cycle),
        "subject": r.subject.code(),
        "system_id": v.system_id.map(|s| s.to_string()).unwrap_or_default(),
        "note": "",
        "items": r.items.iter().map(|i| serde_json::json!({
            "id": i.id, "name": i.name, "name_en": i.name_en, "type": code_of(&i.data_type),
            "personal": i.personal, "authoritative": i.authoritative,
            "subject": i.subject.map(|s| s.code()).unwrap_or(""),
        })).collect::<Vec<_>>(),
    })
}

fn blank_form() -> Value {
    serde_json::json!({
        "code": "", "name": "", "name_en": "", "share_type": "unconditional", "conditions": "",
        "conditions_en": "", "open": "not_open", "update_cycle": "monthly", "subject": "person",
        "system_id": "", "note": "",
        "items": [{"id": "", "name": "", "name_en": "", "type": "text", "personal": false, "authoritative": false, "subject": ""}],
    })
}

/// The form as posted: the echo for the page, the rows in order.
fn posted(f: &HashMap<String, String>) -> Value {
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let rows: usize = f
        .get("rows")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
        .min(catalogue_edit::MAX_ITEMS + 1);
    let items: Vec<Value> = (0..rows)
        .map(|i| {
            let k = |c: &str| format!("items[{i}].{c}");
            serde_json::json!({
                "id": get(&k("id")), "name": get(&k("name")), "name_en": get(&k("name_en")),
                "type": get(&k("type")), "personal": f.contains_key(&k("personal")),
                "authoritative": f.contains_key(&k("authoritative")), "subject": get(&k("subject")),
            })
        })
        .collect();
    serde_json::json!({
        "code": get("code"), "name": get("name"), "name_en": get("name_en"),
        "share_type": get("share_type"), "conditions": get("conditions"),
        "conditions_en": get("conditions_en"), "open": get("open"),
        "update_cycle": get("update_cycle"), "subject": get("subject"),
        "system_id": get("system_id"), "note": get("note"), "items": items,
    })
}

/// The echo turned into the API's input; a value outside its list is an error at its field.
fn input_of(form: &Value, lang: Lang) -> Result<CatResourceInput, BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    let s = |k: &str| form[k].as_str().unwrap_or_default().to_owned();
    fn code<T: serde::de::DeserializeOwned>(
        v: &str,
        field: String,
        errors: &mut BTreeMap<String, String>,
        lang: Lang,
    ) -> Option<T> {
        serde_json::from_value(Value::String(v.to_owned()))
            .map_err(|_| {
                errors.insert(field, lang.pick("请选择一项。", "Choose one.").to_owned());
            })
            .ok()
    }
    let share_type = code::<ShareType>(&s("share_type"), "share_type".into(), &mut errors, lang);
    let open = code::<OpenAttribute>(&s("open"), "open".into(), &mut errors, lang);
    let update_cycle =
        code::<UpdateCycle>(&s("update_cycle"), "update_cycle".into(), &mut errors, lang);
    let subject = code::<Subject>(&s("subject"), "subject".into(), &mut errors, lang);
    let mut items = Vec::new();
    for (i, it) in form["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let t = it["type"].as_str().unwrap_or_default();
        let data_type = code::<DataType>(t, format!("items[{i}].type"), &mut errors, lang);
        let sub = it["subject"].as_str().unwrap_or_default();
        let subject = if sub.is_empty() {
            None
        } else {
            code::<Subject>(sub, format!("items[{i}].subject"), &mut errors, lang)
        };
        if let Some(data_type) = data_type {
            items.push(CatItemInput {
                id: it["id"].as_str().unwrap_or_default().to_owned(),
                name: it["name"].as_str().unwrap_or_default().to_owned(),
                name_en: it["name_en"].as_str().unwrap_or_default().to_owned(),
                data_type,
                personal: it["personal"].as_bool().unwrap_or(false),
                authoritative: it["authoritative"].as_bool().unwrap_or(false),
                subject,
            });
        }
    }
    match (share_type, open, update_cycle, subject) {
        (Some(share_type), Some(open), Some(update_cycle), Some(subject)) if errors.is_empty() => {
            Ok(CatResourceInput {
                code: Some(s("code")),
                name: s("name"),
                name_en: s("name_en"),
                share_type,
                conditions: Some(s("conditions")),
                conditions_en: Some(s("conditions_en")),
                open,
                update_cycle,
                subject,
                items,
                system_id: Some(s("system_id")),
                note: Some(s("note")),
            })
        }
        _ => Err(errors),
    }
}

async fn systems_of(app: &AppState, department: &str) -> AppResult<Vec<Value>> {
    Ok(app
        .store
        .systems(Some(department))
        .await?
        .iter()
        .map(|s| serde_json::json!({"code": s.id.to_string(), "label": s.name}))
        .collect())
}

async fn edit_page(
    app: &AppState,
    ctx: &PageCtx,
    department: &str,
    code: Option<&str>,
    form: Value,
    errors: BTreeMap<String, String>,
) -> AppResult<Response> {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let action = match code {
        Some(c) => format!("/desk/catalogue/{c}/edit"),
        None => "/desk/catalogue/new".to_owned(),
    };
    let bound: Vec<Value> = code
        .map(|c| catalogue_edit::bound_items(app.catalogue.services(), c))
        .unwrap_or_default()
        .into_iter()
        .map(|b| serde_json::json!({"item": b.item, "service": b.service}))
        .collect();
    Ok(ctx.render(
        status,
        "catalogue_mgmt/edit.html",
        context! {
            code, action, form, errors, bound,
            rows => 0,
            choices => choices(ctx.lang),
            systems => systems_of(app, department).await?,
        },
    ))
}

async fn desk_list(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let list: Vec<Value> = entries(&app, Some(&o.department), ctx.lang)
        .await?
        .into_iter()
        .map(|(_, e)| {
            let label = status_label(&e.latest_status, ctx.lang);
            serde_json::json!({"entry": e, "status_label": label})
        })
        .collect();
    Ok(ctx.render(
        StatusCode::OK,
        "catalogue_mgmt/desk_list.html",
        context! { resources => list },
    ))
}

async fn desk_new(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    edit_page(
        &app,
        &ctx,
        &o.department,
        None,
        blank_form(),
        BTreeMap::new(),
    )
    .await
}

/// The add-row and remove-row buttons change the form and show it again.
fn row_action(form: &mut Value, action: &str) -> bool {
    let items = form["items"].as_array_mut();
    let Some(items) = items else { return false };
    if action == "add" {
        if items.len() < catalogue_edit::MAX_ITEMS {
            items.push(serde_json::json!({"id": "", "name": "", "name_en": "", "type": "text", "personal": false, "authoritative": false, "subject": ""}));
        }
        return true;
    }
    if let Some(i) = action
        .strip_prefix("remove:")
        .and_then(|i| i.parse::<usize>().ok())
    {
        if i < items.len() {
            items.remove(i);
        }
        return true;
    }
    false
}

async fn save(
    app: &AppState,
    ctx: &PageCtx,
    o: &DepartmentOfficer,
    code: Option<&str>,
    f: &HashMap<String, String>,
) -> AppResult<Response> {
    let mut form = posted(f);
    if row_action(
        &mut form,
        f.get("action").map(String::as_str).unwrap_or("save"),
    ) {
        return edit_page(app, ctx, &o.department, code, form, BTreeMap::new()).await;
    }
    let input = match input_of(&form, ctx.lang) {
        Ok(i) => i,
        Err(errors) => return edit_page(app, ctx, &o.department, code, form, errors).await,
    };
    let id = o.user.session.account_id.to_string();
    let author = Author {
        id: &id,
        name: &o.user.session.name,
    };
    let result = match input.draft() {
        Ok(draft) => match code {
            Some(c) => mgmt::edit(app, &o.department, author, c, &draft, Utc::now()).await,
            None => {
                let c = input.code.clone().unwrap_or_default();
                mgmt::propose(app, &o.department, author, &c, &draft, Utc::now()).await
            }
        }
        .map_err(AppError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => Ok(Redirect::to(&format!(
            "/desk/catalogue/{}/versions/{}?done=saved",
            v.code, v.version
        ))
        .into_response()),
        Err(AppError::Invalid(list)) => {
            let mut errors = BTreeMap::new();
            for e in list {
                let text = ctx.pick(&e.message.zh, &e.message.en).to_owned();
                errors
                    .entry(e.field)
                    .and_modify(|t: &mut String| {
                        t.push(' ');
                        t.push_str(&text);
                    })
                    .or_insert(text);
            }
            edit_page(app, ctx, &o.department, code, form, errors).await
        }
        Err(e) => Err(e),
    }
}

async fn desk_new_post(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Form(f): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let o = match ctx.form_user(who, true, &f) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    save(&app, &ctx, &o, None, &f).await
}

async fn desk_edit(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path(code): Path<String>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let versions = mgmt::versions_of(&app, Some(&o.department), &code).await?;
    edit_page(
        &app,
        &ctx,
        &o.department,
        Some(&code),
        form_of(&versions[0]),
        BTreeMap::new(),
    )
    .await
}

async fn desk_edit_post(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path(code): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let o = match ctx.form_user(who, true, &f) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    mgmt::versions_of(&app, Some(&o.department), &code).await?;
    save(&app, &ctx, &o, Some(&code), &f).await
}

fn version_row(v: &ResourceVersion, live: Option<i64>, lang: Lang) -> Value {
    serde_json::json!({
        "version": v.version,
        "status": v.status,
        "status_label": status_label(&v.status, lang),
        "live": live == Some(v.version),
        "author": v.author_name,
        "at": cst(v.created_at),
        "note": v.note,
        "decided_name": v.decided_name,
        "decided_at": v.decided_at.map(cst),
        "comment": v.comment,
    })
}

async fn desk_history(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path(code): Path<String>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let versions = mgmt::versions_of(&app, Some(&o.department), &code).await?;
    let live = mgmt::published_of(&app, &code).await?.map(|v| v.version);
    let latest = &versions[0].body;
    Ok(ctx.render(
        StatusCode::OK,
        "catalogue_mgmt/history.html",
        context! {
            code,
            name => ctx.pick(&latest.name, &latest.name_en),
            versions => versions.iter().map(|v| version_row(v, live, ctx.lang)).collect::<Vec<_>>(),
        },
    ))
}

fn field_label(field: &str, lang: Lang) -> String {
    if let Some(id) = field.strip_prefix("items.") {
        return format!("{} {id}", lang.pick("数据项", "Item"));
    }
    let l = match field {
        "name" => ("中文名称", "Chinese name"),
        "name_en" => ("英文名称", "English name"),
        "provider" => ("提供部门", "Provider"),
        "share_type" => ("共享类型", "Sharing class"),
        "conditions" => ("共享条件", "Conditions"),
        "conditions_en" => ("共享条件（英文）", "Conditions (English)"),
        "open" => ("开放属性", "Open attribute"),
        "update_cycle" => ("更新周期", "Update cycle"),
        "subject" => ("数据主体", "Whose data"),
        _ => (field, field),
    };
    lang.pick(l.0, l.1).to_owned()
}

async fn version_page(
    app: &AppState,
    ctx: &PageCtx,
    department: Option<&str>,
    code: &str,
    version: &str,
    ops: bool,
    errors: BTreeMap<String, String>,
) -> AppResult<Response> {
    let d = detail(app, department, code, version).await?;
    let v = app
        .store
        .resource_version(code, d.version.version)
        .await?
        .ok_or_else(|| {
            AppError::NotFound(super::error::Message::new(
                "没有这个版本。",
                "No such version.",
            ))
        })?;
    let lang = ctx.lang;
    let r = &v.body;
    let changes: Vec<Value> = d
        .changes
        .iter()
        .map(|c| serde_json::json!({"field": field_label(&c.field, lang), "kind": c.kind, "before": c.before, "after": c.after}))
        .collect();
    let system = match v.system_id {
        Some(id) => app.store.system(id).await?.map(|s| s.name),
        None => None,
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(ctx.render(
        status,
        "catalogue_mgmt/version.html",
        context! {
            ops, errors, code, changes, system,
            v => version_row(&v, d.published_version, lang),
            published_version => d.published_version,
            r => serde_json::json!({
                "name": ctx.pick(&r.name, &r.name_en),
                "provider": super::catalogue_mgmt::dept_name(app, &r.provider, lang),
                "share_type": lang.pick(share_label(r.share_type).0, share_label(r.share_type).1),
                "conditions": r.conditions.as_ref().map(|c| lang.pick(c, r.conditions_en.as_deref().unwrap_or(c)).to_owned()),
                "open": lang.pick(open_label(r.open).0, open_label(r.open).1),
                "update_cycle": lang.pick(cycle_label(r.update_cycle).0, cycle_label(r.update_cycle).1),
                "items": r.items.iter().map(|i| serde_json::json!({
                    "id": i.id, "name": lang.pick(&i.name, &i.name_en),
                    "type": lang.pick(type_label(i.data_type).0, type_label(i.data_type).1),
                    "personal": i.personal, "authoritative": i.authoritative,
                })).collect::<Vec<_>>(),
            }),
        },
    ))
}

async fn desk_version(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path((code, version)): Path<(String, String)>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    version_page(
        &app,
        &ctx,
        Some(&o.department),
        &code,
        &version,
        false,
        BTreeMap::new(),
    )
    .await
}

async fn ops_pending(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    let mut rows = Vec::new();
    for v in app.store.pending_versions().await? {
        let d = detail(&app, None, &v.code, &v.version.to_string()).await?;
        rows.push(serde_json::json!({
            "code": v.code,
            "version": v.version,
            "name": ctx.pick(&v.body.name, &v.body.name_en),
            "provider": super::catalogue_mgmt::dept_name(&app, &v.body.provider, ctx.lang),
            "author": v.author_name,
            "at": cst(v.created_at),
            "new": d.published_version.is_none(),
            "changes": d.changes.len(),
        }));
    }
    Ok(ctx.render(
        StatusCode::OK,
        "catalogue_mgmt/ops_pending.html",
        context! { pending => rows },
    ))
}

async fn ops_version(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path((code, version)): Path<(String, String)>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    version_page(&app, &ctx, None, &code, &version, true, BTreeMap::new()).await
}

fn op_author(op: &Operator) -> (String, String) {
    (
        op.0.session.account_id.to_string(),
        op.0.session.name.clone(),
    )
}

async fn ops_publish(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path((code, version)): Path<(String, String)>,
    Form(f): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let op = match ctx.form_user(who, true, &f) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let n: i64 = version.parse().map_err(|_| {
        AppError::NotFound(super::error::Message::new(
            "没有这个版本。",
            "No such version.",
        ))
    })?;
    let (id, name) = op_author(&op);
    match mgmt::publish(
        &app,
        Author {
            id: &id,
            name: &name,
        },
        &code,
        n,
        Utc::now(),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to("/ops/catalogue?done=published").into_response()),
        Err(e) => match AppError::from(e) {
            AppError::Invalid(list) => {
                let errors = list
                    .into_iter()
                    .map(|e| (e.field, ctx.pick(&e.message.zh, &e.message.en).to_owned()))
                    .collect();
                version_page(&app, &ctx, None, &code, &version, true, errors).await
            }
            e => Err(e),
        },
    }
}

async fn ops_return(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path((code, version)): Path<(String, String)>,
    Form(f): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let op = match ctx.form_user(who, true, &f) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let n: i64 = version.parse().map_err(|_| {
        AppError::NotFound(super::error::Message::new(
            "没有这个版本。",
            "No such version.",
        ))
    })?;
    let (id, name) = op_author(&op);
    let comment = f.get("comment").map(String::as_str).unwrap_or_default();
    match mgmt::return_version(
        &app,
        Author {
            id: &id,
            name: &name,
        },
        &code,
        n,
        comment,
        Utc::now(),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to("/ops/catalogue?done=returned").into_response()),
        Err(e) => match AppError::from(e) {
            AppError::Invalid(list) => {
                let errors = list
                    .into_iter()
                    .map(|e| (e.field, ctx.pick(&e.message.zh, &e.message.en).to_owned()))
                    .collect();
                version_page(&app, &ctx, None, &code, &version, true, errors).await
            }
            e => Err(e),
        },
    }
}

/// What the public catalogue's search form shows: the values given, the departments
/// that provide resources, the option lists and the CSV link for the same selection.
pub fn search_form(app: &AppState, lang: Lang, q: &super::catalogue_mgmt::CatSearchQuery) -> Value {
    let all = app.catalogue.resources();
    let mut providers: Vec<&str> = all.iter().map(|r| r.provider.as_str()).collect();
    providers.sort_unstable();
    providers.dedup();
    let departments: Vec<Value> = providers
        .iter()
        .map(|u| serde_json::json!({"code": u, "label": super::catalogue_mgmt::dept_name(app, u, lang)}))
        .collect();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("q", &q.q),
        ("department", &q.department),
        ("share_type", &q.share_type),
        ("open", &q.open),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            query.append_pair(k, v);
        }
    }
    let query = query.finish();
    serde_json::json!({
        "q": q.q.clone().unwrap_or_default(),
        "department": q.department.clone().unwrap_or_default(),
        "share_type": q.share_type.clone().unwrap_or_default(),
        "open": q.open.clone().unwrap_or_default(),
        "departments": departments,
        "choices": choices(lang),
        "csv": if query.is_empty() { "/api/v1/catalogue/inventory.csv".to_owned() } else { format!("/api/v1/catalogue/inventory.csv?{query}") },
    })
}
