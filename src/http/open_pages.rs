//! The open-data site's pages (`crate::open`): the public `/open` (browse by topic and
//! department, search), `/open/datasets/{id}` (metadata, schema, a preview of the first
//! 20 rows, downloads) and `/open/requests` (data requests: file one without login, read
//! the answers); a department officer's `/desk/open` (draft a dataset, answer requests);
//! the operator's `/ops/open` (publish or return drafts, refresh files, answer requests).

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::extract::{DepartmentOfficer, Operator};
use crate::domain::lang::Lang;
use crate::http::error::{AppError, AppResult, FieldError, Message};
use crate::http::pages::{PageCtx, cst};
use crate::http::path::Path;
use crate::open::check::{FieldType, OpenField, parse_csv};
use crate::open::{self, CYCLES, LICENCES, OpenDraftInput, OpenRequestInput, TOPICS, formats};
use crate::state::AppState;
use crate::store::open_data::OpenDataset;

/// The pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/open", get(home))
        .route("/open/datasets/{id}", get(dataset_page))
        .route("/open/requests", get(requests_page).post(request_form))
        .route("/desk/open", get(desk_page))
        .route("/desk/open/datasets", post(desk_draft_form))
        .route("/desk/open/requests/{id}/answer", post(desk_answer_form))
        .route("/ops/open", get(ops_page))
        .route("/ops/open/datasets/{id}/{action}", post(ops_dataset_form))
        .route("/ops/open/requests/{id}/answer", post(ops_answer_form))
}

fn dept_name(app: &AppState, uscc: &str, lang: Lang) -> String {
    app.catalogue
        .department(uscc)
        .map(|d| lang.pick(&d.name, &d.name_en).to_owned())
        .unwrap_or_else(|| uscc.to_owned())
}

fn topic_label(code: &str, lang: Lang) -> String {
    open::topic(code)
        .map(|t| lang.pick(t.1, t.2).to_owned())
        .unwrap_or_else(|| code.to_owned())
}

fn card(app: &AppState, d: &OpenDataset, lang: Lang) -> Value {
    json!({
        "id": d.id,
        "title": lang.pick(&d.title_zh, &d.title_en),
        "description": lang.pick(&d.description_zh, &d.description_en),
        "topic": topic_label(&d.topic, lang),
        "department": dept_name(app, &d.department, lang),
        "status": d.status,
        "rows": d.row_count,
        "source": d.source,
        "return_reason": d.return_reason,
        "modified": cst(d.refreshed_at.unwrap_or(d.modified_at)),
    })
}

/// Filters of the home page.
#[derive(Debug, Default, Deserialize)]
pub struct HomeQuery {
    topic: Option<String>,
    dept: Option<String>,
    q: Option<String>,
}

async fn home(
    State(app): State<AppState>,
    ctx: PageCtx,
    Query(f): Query<HomeQuery>,
) -> AppResult<Response> {
    let lang = ctx.lang;
    let all = app.store.datasets(Some("published"), None).await?;
    let topic = f.topic.filter(|t| !t.is_empty());
    let dept = f.dept.filter(|t| !t.is_empty());
    let q = f.q.unwrap_or_default();
    let shown: Vec<Value> = all
        .iter()
        .filter(|d| topic.as_deref().is_none_or(|t| d.topic == t))
        .filter(|d| dept.as_deref().is_none_or(|x| d.department == x))
        .filter(|d| formats::matches(d, app.catalogue.department(&d.department), &q, &[]))
        .map(|d| card(&app, d, lang))
        .collect();
    let topics: Vec<Value> = TOPICS
        .iter()
        .map(|t| {
            let n = all.iter().filter(|d| d.topic == t.0).count();
            json!({ "code": t.0, "label": lang.pick(t.1, t.2), "n": n, "current": topic.as_deref() == Some(t.0) })
        })
        .filter(|t| t["n"].as_u64().unwrap_or(0) > 0)
        .collect();
    let mut depts: Vec<&str> = all.iter().map(|d| d.department.as_str()).collect();
    depts.sort();
    depts.dedup();
    let depts: Vec<Value> = depts
        .into_iter()
        .map(|u| {
            let n = all.iter().filter(|d| d.department == u).count();
            json!({ "code": u, "label": dept_name(&app, u, lang), "n": n, "current": dept.as_deref() == Some(u) })
        })
        .collect();
    Ok(ctx.render(
        StatusCode::OK,
        "open/home.html",
        context! { datasets => shown, total => all.len(), topics, depts, q, filtered => topic.is_some() || dept.is_some() },
    ))
}

async fn dataset_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let lang = ctx.lang;
    let d = open::get_published(&app, &id).await?;
    let schema = formats::schema(&d);
    let fields: Vec<Value> = schema
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "title": lang.pick(&f.title_zh, &f.title_en),
                "type": f.kind.code(),
                "unit": f.unit,
            })
        })
        .collect();
    let table = parse_csv(&d.data_csv).unwrap_or_default();
    let preview: Vec<Vec<String>> = table.rows.iter().take(20).cloned().collect();
    let downloads: HashMap<String, i64> = app.store.downloads(&d.id).await?.into_iter().collect();
    let lic = open::licence(&d.licence);
    let meta = json!({
        "id": d.id,
        "title": lang.pick(&d.title_zh, &d.title_en),
        "description": lang.pick(&d.description_zh, &d.description_en),
        "topic": topic_label(&d.topic, lang),
        "topic_code": d.topic,
        "department": dept_name(&app, &d.department, lang),
        "department_code": d.department,
        "licence": lic.map(|l| lang.pick(l.title_zh, l.title_en)).unwrap_or(&d.licence),
        "licence_url": lic.map(|l| l.url),
        "cycle": open::cycle(&d.update_cycle).map(|c| lang.pick(c.1, c.2)).unwrap_or(&d.update_cycle),
        "created": cst(d.published_at.unwrap_or(d.created_at)),
        "modified": cst(d.refreshed_at.unwrap_or(d.modified_at)),
        "rows": d.row_count,
        "resource": d.resource_code.as_deref().and_then(|c| app.catalogue.resource(c)).map(|r| lang.pick(&r.name, &r.name_en).to_owned()),
        "csv_downloads": downloads.get("csv").copied().unwrap_or(0),
        "json_downloads": downloads.get("json").copied().unwrap_or(0),
    });
    Ok(ctx.render(
        StatusCode::OK,
        "open/dataset.html",
        context! { d => meta, fields, preview, more => table.rows.len() > 20 },
    ))
}

fn request_rows(
    app: &AppState,
    list: Vec<crate::store::open_data::OpenRequest>,
    lang: Lang,
) -> Vec<Value> {
    list.into_iter()
        .map(|r| {
            json!({
                "id": r.id,
                "title": r.title,
                "body": r.body,
                "department": r.department.as_deref().map(|d| dept_name(app, d, lang)),
                "department_code": r.department,
                "status": r.status,
                "answer": r.answer,
                "answered_by": r.answered_by.as_deref().map(|b| if b == "operator" { String::new() } else { dept_name(app, b, lang) }),
                "created": cst(r.created_at),
                "answered": r.answered_at.map(cst),
            })
        })
        .collect()
}

fn dept_options(app: &AppState, lang: Lang) -> Vec<Value> {
    app.catalogue
        .departments()
        .iter()
        .map(|d| json!({ "code": d.uscc, "label": lang.pick(&d.name, &d.name_en) }))
        .collect()
}

fn error_map(errors: &[FieldError], lang: Lang) -> (HashMap<String, String>, Vec<Value>) {
    let map = errors
        .iter()
        .map(|e| (e.field.clone(), e.message.get(lang).to_owned()))
        .collect();
    let list = errors
        .iter()
        .map(|e| {
            let anchor = e.field.split('.').next().unwrap_or("");
            json!({ "anchor": anchor, "text": e.message.get(lang) })
        })
        .collect();
    (map, list)
}

async fn render_requests(
    app: &AppState,
    ctx: &PageCtx,
    status: StatusCode,
    errors: Vec<FieldError>,
    form: Value,
    done: bool,
) -> AppResult<Response> {
    let lang = ctx.lang;
    let list = request_rows(app, app.store.requests(200).await?, lang);
    let (errs, summary) = error_map(&errors, lang);
    Ok(ctx.render(
        status,
        "open/requests.html",
        context! { requests => list, errors => errs, summary, form, done, departments => dept_options(app, lang) },
    ))
}

/// `?done=` on a page after an action.
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

async fn requests_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    render_requests(
        &app,
        &ctx,
        StatusCode::OK,
        Vec::new(),
        json!({}),
        q.done.is_some(),
    )
    .await
}

async fn request_form(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    // Anyone may file; a logged-in visitor's form carries the session's CSRF token.
    if let Some(s) = &ctx.session {
        crate::http::pages::check_csrf(form.get("_csrf").map(String::as_str), Some(s))?;
    }
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let input = OpenRequestInput {
        title: get("title"),
        body: get("body"),
        email: Some(get("email")),
        department: Some(get("department")),
    };
    match open::file_request(&app, input, chrono::Utc::now()).await {
        Ok(_) => Ok(Redirect::to("/open/requests?done=filed").into_response()),
        Err(AppError::Invalid(errors)) => {
            let f = json!({ "title": get("title"), "body": get("body"), "email": get("email"), "department": get("department") });
            render_requests(
                &app,
                &ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
                f,
                false,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

// ---- department officers ----------------------------------------------------------

fn choices(lang: Lang, app: &AppState) -> Value {
    json!({
        "topics": TOPICS.iter().map(|t| json!({"code": t.0, "label": lang.pick(t.1, t.2)})).collect::<Vec<_>>(),
        "licences": LICENCES.iter().map(|l| json!({"code": l.code, "label": lang.pick(l.title_zh, l.title_en)})).collect::<Vec<_>>(),
        "cycles": CYCLES.iter().map(|c| json!({"code": c.0, "label": lang.pick(c.1, c.2)})).collect::<Vec<_>>(),
        "sources": open::SOURCES.iter().map(|s| json!({"code": s, "label": source_label(s, lang)})).collect::<Vec<_>>(),
        "resources": app.catalogue.resources().iter().filter(|r| r.open.publishable()).map(|r| json!({"code": r.code, "label": lang.pick(&r.name, &r.name_en)})).collect::<Vec<_>>(),
    })
}

fn source_label(s: &str, lang: Lang) -> &'static str {
    match s {
        "catalogue" => lang.pick("生成：政务服务事项目录", "Generated: the service catalogue"),
        "case_stats" => lang.pick(
            "生成：办件统计（按月、事项、部门）",
            "Generated: case statistics by month, service and department",
        ),
        "figures" => lang.pick("生成：汇总指标", "Generated: aggregated figures"),
        _ => lang.pick("上传 CSV 文件", "Upload a CSV file"),
    }
}

/// The schema typed into a form: one line per field, `name,title_zh,title_en,type,unit`.
pub fn schema_from_lines(text: &str) -> Result<Vec<OpenField>, FieldError> {
    let bad = |n: usize| FieldError {
        field: "schema".into(),
        message: Message::new(
            format!(
                "数据结构第 {n} 行应为“字段名,中文名称,英文名称,类型,单位”，类型为 string、integer、number、date 或 boolean。"
            ),
            format!(
                "Schema line {n} should be “name,Chinese title,English title,type,unit” with type string, integer, number, date or boolean."
            ),
        ),
    };
    let mut out = Vec::new();
    let lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    for (i, line) in lines.enumerate() {
        let t = parse_csv(&format!(
            "a,b,c,d,e\n{line}{}",
            ",".repeat(4usize.saturating_sub(line.matches(',').count()))
        ))
        .map_err(|_| bad(i + 1))?;
        let r = t.rows.first().ok_or_else(|| bad(i + 1))?;
        let kind = FieldType::parse(&r[3]).ok_or_else(|| bad(i + 1))?;
        out.push(OpenField {
            name: r[0].clone(),
            title_zh: r[1].clone(),
            title_en: r[2].clone(),
            kind,
            unit: Some(r[4].clone()).filter(|u| !u.is_empty()),
        });
    }
    Ok(out)
}

async fn render_desk(
    app: &AppState,
    ctx: &PageCtx,
    dept: &str,
    status: StatusCode,
    errors: Vec<FieldError>,
    form: Value,
    done: Option<String>,
) -> AppResult<Response> {
    let lang = ctx.lang;
    let mine: Vec<Value> = app
        .store
        .datasets(None, Some(dept))
        .await?
        .iter()
        .map(|d| card(app, d, lang))
        .collect();
    let requests: Vec<Value> = request_rows(app, app.store.requests(200).await?, lang)
        .into_iter()
        .filter(|r| r["department_code"].is_null() || r["department_code"] == dept)
        .collect();
    let (errs, summary) = error_map(&errors, lang);
    Ok(ctx.render(
        status,
        "open/desk.html",
        context! {
            datasets => mine, requests, errors => errs, summary, form, done,
            choices => choices(lang, app), department => dept_name(app, dept, lang),
        },
    ))
}

async fn desk_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    let o = match ctx.logged_in(who, true) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let form = json!({ "source": "upload", "licence": "cc-by-4.0", "update_cycle": "monthly", "topic": "government" });
    render_desk(
        &app,
        &ctx,
        &o.department,
        StatusCode::OK,
        Vec::new(),
        form,
        q.done,
    )
    .await
}

async fn desk_draft_form(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let o = match ctx.form_user(who, true, &form) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let upload = get("source") == "upload";
    let schema = if upload {
        schema_from_lines(&get("schema"))
    } else {
        Ok(Vec::new())
    };
    let echo = json!({
        "id": get("id"), "title_zh": get("title_zh"), "title_en": get("title_en"),
        "description_zh": get("description_zh"), "description_en": get("description_en"),
        "topic": get("topic"), "licence": get("licence"), "update_cycle": get("update_cycle"),
        "source": get("source"), "resource_code": get("resource_code"), "schema": get("schema"), "csv": get("csv"),
    });
    let schema = match schema {
        Ok(s) => s,
        Err(e) => {
            return render_desk(
                &app,
                &ctx,
                &o.department,
                StatusCode::UNPROCESSABLE_ENTITY,
                vec![e],
                echo,
                None,
            )
            .await;
        }
    };
    let input = OpenDraftInput {
        id: get("id").trim().to_owned(),
        title_zh: get("title_zh"),
        title_en: get("title_en"),
        description_zh: get("description_zh"),
        description_en: get("description_en"),
        topic: get("topic"),
        licence: get("licence"),
        update_cycle: get("update_cycle"),
        source: get("source"),
        resource_code: Some(get("resource_code")),
        schema: upload.then_some(schema),
        csv: upload.then(|| get("csv")),
        department: None,
    };
    let by = o.user.session.account_id.to_string();
    match open::draft(&app, &o.department, &by, input, chrono::Utc::now()).await {
        Ok(_) => Ok(Redirect::to("/desk/open?done=drafted").into_response()),
        Err(AppError::Invalid(errors)) => {
            render_desk(
                &app,
                &ctx,
                &o.department,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
                echo,
                None,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

fn parse_id(id: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| {
        AppError::NotFound(Message::new("没有这条数据需求。", "No such data request."))
    })
}

async fn desk_answer_form(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<DepartmentOfficer, AppError>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    let o = match ctx.form_user(who, true, &form) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let id = parse_id(&id)?;
    let answer = form.get("answer").cloned().unwrap_or_default();
    match open::answer_request(&app, id, &answer, &o.department, chrono::Utc::now()).await {
        Ok(_) => Ok(Redirect::to("/desk/open?done=answered").into_response()),
        Err(AppError::Invalid(errors)) => {
            render_desk(
                &app,
                &ctx,
                &o.department,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
                json!({}),
                None,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

// ---- operators --------------------------------------------------------------------

async fn render_ops(
    app: &AppState,
    ctx: &PageCtx,
    status: StatusCode,
    errors: Vec<FieldError>,
    done: Option<String>,
) -> AppResult<Response> {
    let lang = ctx.lang;
    let all = app.store.datasets(None, None).await?;
    let mut rows = Vec::new();
    for d in &all {
        let mut c = card(app, d, lang);
        let dl: i64 = app.store.downloads(&d.id).await?.iter().map(|x| x.1).sum();
        c["downloads"] = json!(dl);
        rows.push(c);
    }
    let drafts: Vec<&Value> = rows.iter().filter(|r| r["status"] == "draft").collect();
    let published: Vec<&Value> = rows.iter().filter(|r| r["status"] == "published").collect();
    let returned: Vec<&Value> = rows.iter().filter(|r| r["status"] == "returned").collect();
    let requests = request_rows(app, app.store.requests(200).await?, lang);
    let (errs, summary) = error_map(&errors, lang);
    Ok(ctx.render(
        status,
        "open/ops.html",
        context! { drafts, published, returned, requests, errors => errs, summary, done },
    ))
}

async fn ops_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Query(q): Query<DoneQuery>,
) -> AppResult<Response> {
    if let Err(r) = ctx.logged_in(who, true) {
        return Ok(*r);
    }
    render_ops(&app, &ctx, StatusCode::OK, Vec::new(), q.done).await
}

async fn ops_dataset_form(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    if let Err(r) = ctx.form_user(who, true, &form) {
        return Ok(*r);
    }
    let now = chrono::Utc::now();
    let result = match action.as_str() {
        "publish" => open::publish(&app, &id, now).await,
        "return" => {
            let reason = form.get("reason").cloned().unwrap_or_default();
            open::return_draft(&app, &id, &reason, now).await
        }
        "refresh" => open::refresh(&app, &id, now).await,
        _ => {
            return Err(AppError::NotFound(Message::new(
                "没有这个操作。",
                "No such action.",
            )));
        }
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/ops/open?done={action}")).into_response()),
        Err(AppError::Invalid(errors)) => {
            render_ops(&app, &ctx, StatusCode::UNPROCESSABLE_ENTITY, errors, None).await
        }
        Err(e) => Err(e),
    }
}

async fn ops_answer_form(
    State(app): State<AppState>,
    ctx: PageCtx,
    who: Result<Operator, AppError>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> AppResult<Response> {
    if let Err(r) = ctx.form_user(who, true, &form) {
        return Ok(*r);
    }
    let id = parse_id(&id)?;
    let answer = form.get("answer").cloned().unwrap_or_default();
    match open::answer_request(&app, id, &answer, "operator", chrono::Utc::now()).await {
        Ok(_) => Ok(Redirect::to("/ops/open?done=answered").into_response()),
        Err(AppError::Invalid(errors)) => {
            render_ops(&app, &ctx, StatusCode::UNPROCESSABLE_ENTITY, errors, None).await
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_lines() {
        let s = schema_from_lines("street,街道,Street,string\n\ncount,件数,Count,integer,件\n")
            .expect("ok");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].unit.as_deref(), Some("件"));
        assert_eq!(s[0].unit, None);
        assert!(schema_from_lines("a,b,c,colour").is_err());
        assert!(schema_from_lines("a").is_err());
    }
}
