//! Case (办件) use cases: lodging an application (online or at a window), taking a step
//! of the state machine, and the views each kind of reader gets. Handlers parse and
//! authorise; this module validates with the domain core and writes through the store,
//! one transaction per change (case row, history entry, materials, outbox event and
//! notices together).

use axum::http::StatusCode;
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::app::AppState;
use crate::domain::calendar::HolidayCalendar;
use crate::domain::case::{
    self, Action, Actor, CaseFacts, CaseStatus, ConclusionResult, Request, TransitionError,
};
use crate::domain::catalogue::{CaseKind, FileType, Service};
use crate::domain::deadline::{self, DeadlineState, Pause};
use crate::domain::form::{self, FieldIssue, ProvidedMaterial};
use crate::domain::lang::Lang;
use crate::http::error::{AppError, FieldError, Message};
use crate::store::{
    CaseApplicant, CaseRow, CaseWrite, EventRow, IdemRecord, NewMaterial, NoticeRow, OutboxRow,
    WriteOutcome,
};

/// Working days before the due date from which a case shows as "due soon".
pub const DUE_SOON_WORKING_DAYS: u32 = 3;

/// Who is acting, for history entries.
#[derive(Debug, Clone)]
pub struct ActorRef {
    /// Role in the state machine.
    pub actor: Actor,
    /// Account or token id.
    pub id: Option<String>,
    /// Display name.
    pub name: String,
    /// The account, when the actor has one (uploads are owned by accounts).
    pub account: Option<Uuid>,
}

/// A material in a request: an upload, or a stand-in the definition allows.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MaterialInput {
    /// Material id from the service definition.
    pub material: String,
    /// An upload from `POST /api/v1/uploads`.
    #[serde(default)]
    pub upload_id: Option<Uuid>,
    /// Let shared data or the e-licence named in the definition stand in (免提交).
    #[serde(default)]
    pub substitute: bool,
}

/// An `Idempotency-Key` with whose it is and what it was sent with.
#[derive(Debug, Clone)]
pub struct IdemKey {
    /// Account or token id.
    pub scope: String,
    /// The key.
    pub key: String,
    /// Hash of the request body.
    pub request_hash: String,
}

/// Hash of a request body for idempotency checks.
pub fn request_hash(body: &Value) -> String {
    hex::encode(Sha256::digest(body.to_string().as_bytes()))
}

fn field_errors(issues: Vec<FieldIssue>) -> AppError {
    AppError::Invalid(
        issues
            .into_iter()
            .map(|i| FieldError {
                field: i.field,
                message: Message::new(i.zh, i.en),
            })
            .collect(),
    )
}

fn replay(prior: IdemRecord, key: &IdemKey) -> Result<(StatusCode, Value), AppError> {
    if prior.request_hash != key.request_hash {
        return Err(AppError::Unprocessable(Message::new(
            "该 Idempotency-Key 已用于另一个不同的请求，请为新请求使用新的键。",
            "This Idempotency-Key was already used for a different request; use a new key for a new request.",
        )));
    }
    let status = StatusCode::from_u16(prior.status).unwrap_or(StatusCode::OK);
    Ok((status, prior.response))
}

/// Looks up an earlier answer to the same key before doing any work.
pub async fn earlier_answer(
    app: &AppState,
    key: Option<&IdemKey>,
) -> Result<Option<(StatusCode, Value)>, AppError> {
    let Some(k) = key else { return Ok(None) };
    match app.store.idempotent(&k.scope, &k.key).await? {
        Some(prior) => replay(prior, k).map(Some),
        None => Ok(None),
    }
}

/// Resolves material inputs against uploads owned by `owner` and not yet attached.
async fn resolve_materials(
    app: &AppState,
    service: &Service,
    inputs: &[MaterialInput],
    owner: Option<Uuid>,
) -> Result<(Vec<ProvidedMaterial>, Vec<NewMaterial>, Vec<FieldIssue>), AppError> {
    let mut provided = Vec::new();
    let mut rows = Vec::new();
    let mut issues = Vec::new();
    for (i, m) in inputs.iter().enumerate() {
        let path = format!("materials[{i}]");
        match (m.upload_id, m.substitute) {
            (Some(id), false) => {
                let upload = app.store.upload(id).await?;
                let usable = upload
                    .as_ref()
                    .is_some_and(|u| Some(u.owner) == owner && u.case_id.is_none());
                match upload.filter(|_| usable) {
                    Some(u) => {
                        let ft = file_type_from_code(&u.file_type).unwrap_or(FileType::Pdf);
                        provided.push(ProvidedMaterial::Upload {
                            material: m.material.clone(),
                            file_type: ft,
                            size: u.size.max(0) as u64,
                        });
                        rows.push(NewMaterial {
                            material_id: m.material.clone(),
                            upload_id: Some(u.id),
                            substituted: false,
                            source: None,
                            evidence: None,
                        });
                    }
                    None => issues.push(FieldIssue {
                        field: path,
                        zh: "找不到该上传文件，或它已用于其他办件。请重新上传。".into(),
                        en: "That upload does not exist or is already part of another case. Please upload it again.".into(),
                    }),
                }
            }
            (None, true) => {
                let source = service
                    .materials
                    .iter()
                    .find(|d| d.id == m.material)
                    .and_then(|d| d.substitute.clone());
                provided.push(ProvidedMaterial::Substituted {
                    material: m.material.clone(),
                });
                rows.push(NewMaterial {
                    material_id: m.material.clone(),
                    upload_id: None,
                    substituted: true,
                    source,
                    evidence: None,
                });
            }
            _ => issues.push(FieldIssue {
                field: path,
                zh: "每项材料须给出 upload_id，或 substitute 为 true（二者取一）。".into(),
                en: "Give each material either an upload_id or substitute: true (one of the two)."
                    .into(),
            }),
        }
    }
    Ok((provided, rows, issues))
}

/// Maps a stored file type code to the definition's enum.
pub fn file_type_from_code(code: &str) -> Option<FileType> {
    match code {
        "pdf" => Some(FileType::Pdf),
        "jpg" => Some(FileType::Jpg),
        "png" => Some(FileType::Png),
        "ofd" => Some(FileType::Ofd),
        _ => None,
    }
}

/// The CloudEvents type of the event an action causes.
pub fn event_type(action: Action) -> String {
    let name = match action {
        Action::Submit => "submitted",
        Action::Accept => "accepted",
        Action::NotAccept => "not_accepted",
        Action::RequestCorrection => "correction_requested",
        Action::SupplyCorrection => "corrected",
        Action::StartReview => "review_started",
        Action::Suspend => "suspended",
        Action::Resume => "resumed",
        Action::Conclude => "concluded",
        Action::Withdraw => "withdrawn",
    };
    format!("cn.gov.onewindow.case.{name}.v1")
}

/// Outbox rows for a change: one per routed department. The payload names the case and
/// what happened; the delivery side assembles the full application from the case when it
/// sends, so personal data is not copied into the outbox.
fn outbox_for(service: &Service, c: &CaseRow, action: Action) -> Vec<OutboxRow> {
    service
        .routing
        .departments
        .iter()
        .map(|d| OutboxRow {
            id: Uuid::now_v7(),
            case_seq: 0,
            department: d.clone(),
            event_type: event_type(action),
            payload: json!({
                "case_no": c.case_no,
                "service_code": c.service_code,
                "service_version": c.service_version,
                "department": d,
                "status": c.status,
                "action": action.code(),
            }),
        })
        .collect()
}

/// The in-app message an applicant gets for a step, if it is news to them.
fn notice_for(
    c: &CaseRow,
    service: &Service,
    action: Action,
    actor: Actor,
    note: Option<&str>,
) -> Option<NoticeRow> {
    let account = c.applicant.account_id?;
    if actor == Actor::Applicant {
        // They did it themselves; the submission itself still gets a receipt.
        if action != Action::Submit {
            return None;
        }
    }
    let status = CaseStatus::from_code(&c.status)?;
    let (s_zh, s_en) = status.labels();
    let (title_zh, title_en) = match action {
        Action::Submit => ("申请已提交", "Application received"),
        Action::Accept => ("申请已受理", "Application accepted"),
        Action::NotAccept => ("申请不予受理", "Application not accepted"),
        Action::RequestCorrection => ("请补齐补正材料", "Please supply or correct materials"),
        Action::Conclude => ("办件已办结", "Your case is concluded"),
        Action::Suspend => ("办件进入特别程序", "Your case is in a special procedure"),
        Action::Resume => ("办件恢复审查", "Review of your case resumed"),
        Action::StartReview => ("办件审查中", "Your case is under review"),
        Action::SupplyCorrection | Action::Withdraw => ("办件状态更新", "Case updated"),
    };
    let reason_zh = note.map(|n| format!("说明：{n}")).unwrap_or_default();
    let reason_en = note.map(|n| format!(" Note: {n}")).unwrap_or_default();
    Some(NoticeRow {
        id: Uuid::now_v7(),
        account_id: account,
        case_id: c.id,
        case_no: c.case_no.clone(),
        title_zh: format!("{title_zh}：{}", service.name),
        title_en: format!("{title_en}: {}", service.name_en),
        body_zh: format!("办件编号 {}，当前状态：{s_zh}。{reason_zh}", c.case_no),
        body_en: format!("Case {}, now: {s_en}.{reason_en}", c.case_no),
        created_at: Utc::now(),
        read_at: None,
    })
}

/// What a new application consists of.
pub struct NewApplication<'a> {
    /// The service.
    pub service: &'a Service,
    /// Who applies.
    pub applicant: CaseApplicant,
    /// `online` or `window`.
    pub channel: &'static str,
    /// The clerk and hall of a window intake.
    pub intake: Option<(Uuid, String)>,
    /// Form values as sent.
    pub values: &'a Map<String, Value>,
    /// Materials as sent.
    pub materials: &'a [MaterialInput],
    /// Who lodges it.
    pub actor: ActorRef,
    /// The idempotency key, if any.
    pub idem: Option<IdemKey>,
    /// Whose shared data backs the application and who reads it (for the re-check of
    /// prefilled values and of 免提交 materials); `None` skips both (no substitutes allowed).
    pub sharing: Option<crate::sharing::prefill::Who>,
    /// The account whose prefill snapshot applies (the applicant's, or the clerk's who
    /// looked the walk-in applicant up).
    pub snapshot_of: Option<Uuid>,
}

/// Validates and lodges an application; answers 201 with the case number and query code.
pub async fn lodge(app: &AppState, a: NewApplication<'_>) -> Result<(StatusCode, Value), AppError> {
    if let Some(answer) = earlier_answer(app, a.idem.as_ref()).await? {
        return Ok(answer);
    }
    let today = today();
    let mut issues = Vec::new();
    let values = match form::validate_form(a.service, a.values, today) {
        Ok(v) => v,
        Err(e) => {
            issues.extend(e);
            Map::new()
        }
    };
    let (provided, materials, material_issues) =
        resolve_materials(app, a.service, a.materials, a.actor.account).await?;
    issues.extend(material_issues);
    issues.extend(form::check_materials(a.service, &provided));
    if !issues.is_empty() {
        return Err(field_errors(issues));
    }
    let (materials, checked, reads) = check_shared_data(app, &a, &values, materials).await?;

    let now = Utc::now();
    for _ in 0..5 {
        let mut c = CaseRow {
            id: Uuid::now_v7(),
            case_no: case::new_case_number(today),
            query_code: case::new_query_code(),
            service_code: a.service.code.clone(),
            service_version: a.service.version(),
            department: a.service.department.clone(),
            applicant: a.applicant.clone(),
            channel: a.channel.to_owned(),
            intake_account: a.intake.as_ref().map(|i| i.0),
            intake_hall: a.intake.as_ref().map(|i| i.1.clone()),
            status: CaseStatus::Submitted.code().to_owned(),
            form: Value::Object(values.clone()),
            accepted_on: None,
            due_on: None,
            legal_due_on: None,
            pauses: json!([]),
            parts: json!({}),
            concluded_on: None,
            result: None,
            rating: None,
            rating_comment: None,
            rated_at: None,
            provenance: checked.provenance.clone(),
            fields_filled: checked.fields_filled,
            fields_prefilled: checked.fields_prefilled,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let event = EventRow {
            seq: 1,
            at: now,
            actor: a.actor.actor.code().to_owned(),
            actor_id: a.actor.id.clone(),
            actor_name: a.actor.name.clone(),
            action: Some(Action::Submit.code().to_owned()),
            from_status: Some(CaseStatus::Draft.code().to_owned()),
            to_status: c.status.clone(),
            note: None,
            attachments: json!([]),
        };
        let response = json!({
            "case_no": c.case_no,
            "query_code": c.query_code,
            "status": c.status,
            "href": format!("/api/v1/cases/{}", c.case_no),
        });
        let idem = a.idem.as_ref().map(|k| IdemRecord {
            scope: k.scope.clone(),
            key: k.key.clone(),
            request_hash: k.request_hash.clone(),
            status: 201,
            response: response.clone(),
        });
        let outbox = outbox_for(a.service, &c, Action::Submit);
        let notices: Vec<NoticeRow> =
            notice_for(&c, a.service, Action::Submit, a.actor.actor, None)
                .into_iter()
                .collect();
        c.version = 1;
        let w = CaseWrite {
            event: &event,
            materials: &materials,
            outbox: &outbox,
            notices: &notices,
            idem: idem.as_ref(),
            access: &reads,
        };
        match app.store.create_case(&c, w).await? {
            WriteOutcome::Done => {
                metrics::counter!("onewindow_cases_lodged_total", "channel" => a.channel)
                    .increment(1);
                record_sharing_metrics(&c, &materials);
                tracing::info!(case_no = %c.case_no, service = %c.service_code, channel = a.channel, "case lodged");
                return Ok((StatusCode::CREATED, response));
            }
            WriteOutcome::Replay(prior) => {
                let key = a
                    .idem
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("replay without a key"))?;
                return replay(prior, key);
            }
            WriteOutcome::Conflict => continue, // the case number was taken: draw again
        }
    }
    Err(AppError::Internal(anyhow::anyhow!(
        "could not draw a free case number in 5 attempts"
    )))
}

/// Re-checks prefilled values against what was served (authoritative ones must be
/// unchanged) and verifies each 免提交 material against the e-licence library, recording
/// the licence that stood in.
async fn check_shared_data(
    app: &AppState,
    a: &NewApplication<'_>,
    values: &Map<String, Value>,
    mut materials: Vec<NewMaterial>,
) -> Result<
    (
        Vec<NewMaterial>,
        crate::sharing::prefill::Checked,
        Vec<crate::store::NewAccess>,
    ),
    AppError,
> {
    use crate::sharing::prefill;
    let served = match (&a.sharing, a.snapshot_of) {
        (Some(who), Some(reader)) => prefill::snapshot(app, reader, who, &a.service.code).await,
        _ => None,
    };
    let mut issues = Vec::new();
    if let Some(who) = a.sharing.as_ref().filter(|w| w.reader.kind == "applicant") {
        issues.extend(prefill::check_identity(
            a.service,
            who.person.as_deref(),
            who.enterprise.as_deref(),
            values,
        ));
    }
    let checked = match prefill::recheck(a.service, served.as_ref(), values) {
        Ok(c) => Some(c),
        Err(e) => {
            issues.extend(e);
            None
        }
    };
    let mut reads = Vec::new();
    let wanted: Vec<String> = materials
        .iter()
        .filter(|m| m.substituted)
        .map(|m| m.material_id.clone())
        .collect();
    if !wanted.is_empty() {
        match &a.sharing {
            Some(who) => {
                let subs =
                    prefill::substitutes(app, who, a.service, &wanted, served.as_ref()).await?;
                issues.extend(subs.issues);
                reads = subs.reads;
                for m in materials.iter_mut().filter(|m| m.substituted) {
                    if let Some((binding, evidence)) = subs.found.get(&m.material_id) {
                        m.source = Some(binding.clone());
                        m.evidence = Some(evidence.clone());
                    }
                }
            }
            None => issues.extend(wanted.iter().map(|id| FieldIssue {
                field: format!("materials.{id}"),
                zh: "无法核验电子证照，请上传该材料。".into(),
                en: "The e-licence cannot be checked here; please upload the material.".into(),
            })),
        }
    }
    match checked {
        Some(c) if issues.is_empty() => Ok((materials, c, reads)),
        _ => {
            // No case comes of it, but the licence library was read: that stays on record.
            crate::sharing::audit::record(app, &reads).await?;
            Err(field_errors(issues))
        }
    }
}

/// Counts, per service, form fields filled from shared data and materials not uploaded.
fn record_sharing_metrics(c: &CaseRow, materials: &[NewMaterial]) {
    let svc = c.service_code.clone();
    metrics::counter!("onewindow_form_fields_total", "service" => svc.clone())
        .increment(c.fields_filled.max(0) as u64);
    metrics::counter!("onewindow_form_fields_prefilled_total", "service" => svc.clone())
        .increment(c.fields_prefilled.max(0) as u64);
    metrics::counter!("onewindow_materials_total", "service" => svc.clone())
        .increment(materials.len() as u64);
    metrics::counter!("onewindow_materials_substituted_total", "service" => svc)
        .increment(materials.iter().filter(|m| m.substituted).count() as u64);
}

/// Today in the city's time zone (China Standard Time, UTC+8), which decides working days.
pub fn today() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(8)).date_naive()
}

fn pauses_of(c: &CaseRow) -> Vec<Pause> {
    c.pauses
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    let from = p.get("from")?.as_str()?.parse().ok()?;
                    let to = p
                        .get("to")
                        .and_then(Value::as_str)
                        .and_then(|t| t.parse().ok());
                    Some(Pause { from, to })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pauses_json(p: &[Pause]) -> Value {
    Value::Array(
        p.iter()
            .map(|p| json!({ "from": p.from.to_string(), "to": p.to.map(|t| t.to_string()) }))
            .collect(),
    )
}

/// Due dates from the acceptance date and pauses. A year missing from the holiday
/// calendar is a loud warning and an unknown date, never a guess.
fn due_dates(
    cal: &HolidayCalendar,
    service: &Service,
    accepted: NaiveDate,
    pauses: &[Pause],
    today: NaiveDate,
) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let one = |limit| match deadline::due_date(cal, accepted, limit, pauses, today) {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!(service = %service.code, error = %e, "cannot compute a due date: the holiday calendar lacks a year; load it");
            None
        }
    };
    (
        one(service.guide.promised_limit),
        one(service.guide.legal_limit),
    )
}

/// The facts the state machine needs about a case.
pub fn facts(service: &Service, c: &CaseRow) -> CaseFacts {
    CaseFacts {
        accept_at_window: service.accept_at_window,
        immediate: service.case_kind == CaseKind::Immediate,
        was_accepted: c.accepted_on.is_some(),
    }
}

fn transition_error(e: TransitionError) -> AppError {
    let zh = e.message_zh();
    let en = e.to_string();
    match e {
        TransitionError::NotInState { .. } => AppError::Conflict(Message::new(zh, en)),
        TransitionError::NotForActor { .. } => AppError::Forbidden(Message::new(zh, en)),
        TransitionError::ReasonRequired(_) => AppError::Invalid(vec![FieldError {
            field: "note".into(),
            message: Message::new(zh, en),
        }]),
        _ => AppError::Invalid(vec![FieldError {
            field: "result".into(),
            message: Message::new(zh, en),
        }]),
    }
}

/// Takes one step of the state machine on a case, with optional new materials (for a
/// correction). Retries on a concurrent change by re-reading the case.
pub async fn step(
    app: &AppState,
    case_no: &str,
    actor: &ActorRef,
    req: Request,
    new_materials: &[MaterialInput],
    idem: Option<IdemKey>,
) -> Result<(StatusCode, Value), AppError> {
    if let Some(answer) = earlier_answer(app, idem.as_ref()).await? {
        return Ok(answer);
    }
    for _ in 0..3 {
        let current = app
            .store
            .case_by_no(case_no)
            .await?
            .ok_or_else(|| not_found(case_no))?;
        let service = app
            .catalogue
            .service(&current.service_code)
            .ok_or_else(|| anyhow::anyhow!("case {case_no} names an unknown service"))?;
        let from = CaseStatus::from_code(&current.status)
            .ok_or_else(|| anyhow::anyhow!("case {case_no} has an unknown status"))?;
        let mut to = case::transition(from, &req, actor.actor, facts(service, &current))
            .map_err(transition_error)?;
        // 联办件: each routed department concludes its own part; the case concludes when
        // the last one has (approved only if every part is approved).
        let mut joint_part: Option<(String, String)> = None;
        let mut next_parts = current.parts.clone();
        if req.action == Action::Conclude && service.case_kind == CaseKind::Joint {
            let dept = acting_department(app, actor)
                .await?
                .filter(|d| service.routing.departments.contains(d))
                .ok_or_else(|| {
                    AppError::Forbidden(Message::new(
                        "联办件由各承办部门分别办结。",
                        "Each department of a joint case concludes its own part.",
                    ))
                })?;
            let mut parts = current.parts.as_object().cloned().unwrap_or_default();
            if parts.contains_key(&dept) {
                return Err(AppError::Conflict(Message::new(
                    "本部门已办结其承办部分。",
                    "This department has already concluded its part.",
                )));
            }
            let result = req
                .result
                .map(|r| r.code())
                .unwrap_or("approved")
                .to_owned();
            parts.insert(
                dept.clone(),
                json!({ "result": result, "on": today().to_string() }),
            );
            let done = service
                .routing
                .departments
                .iter()
                .all(|d| parts.contains_key(d));
            let all_approved = parts.values().all(|p| p["result"] == "approved");
            to = match (done, all_approved) {
                (false, _) => from,
                (true, true) => CaseStatus::Approved,
                (true, false) => CaseStatus::Rejected,
            };
            next_parts = Value::Object(parts);
            joint_part = Some((dept, result));
        }

        let (provided, materials, issues) =
            resolve_materials(app, service, new_materials, actor.account).await?;
        if !issues.is_empty() {
            return Err(field_errors(issues));
        }
        if req.action != Action::SupplyCorrection && !provided.is_empty() {
            return Err(AppError::BadRequest(Message::new(
                "只有提交补正时可以附加材料。",
                "Materials can only be added when supplying a correction.",
            )));
        }

        let today = today();
        let mut next = current.clone();
        next.parts = next_parts;
        next.status = to.code().to_owned();
        next.updated_at = Utc::now();
        let mut pauses = pauses_of(&current);
        if req.action == Action::Accept {
            next.accepted_on = Some(today);
        }
        if let Some(accepted) = next.accepted_on {
            let entering_pause = to.clock_paused() && !from.clock_paused();
            let leaving_pause = from.clock_paused() && !to.clock_paused();
            if entering_pause && current.accepted_on.is_some() {
                pauses.push(Pause {
                    from: today,
                    to: None,
                });
            }
            if leaving_pause && let Some(open) = pauses.iter_mut().rev().find(|p| p.to.is_none()) {
                open.to = Some(today);
            }
            let (due, legal) = due_dates(&app.calendar, service, accepted, &pauses, today);
            next.due_on = due;
            next.legal_due_on = legal;
        }
        next.pauses = pauses_json(&pauses);
        if matches!(to, CaseStatus::Approved | CaseStatus::Rejected) {
            next.concluded_on = Some(today);
            let approved = to == CaseStatus::Approved;
            next.result = Some(if approved { "approved" } else { "rejected" }.to_owned());
        }
        let partial = joint_part.is_some() && to == from;

        let event = EventRow {
            seq: 0,
            at: next.updated_at,
            actor: actor.actor.code().to_owned(),
            actor_id: actor.id.clone(),
            actor_name: actor.name.clone(),
            action: Some(req.action.code().to_owned()),
            from_status: Some(from.code().to_owned()),
            to_status: to.code().to_owned(),
            note: req.note.clone().filter(|n| !n.trim().is_empty()),
            attachments: match &joint_part {
                Some((dept, result)) => json!([{ "department": dept, "result": result }]),
                None => json!(materials
                    .iter()
                    .map(|m| json!({ "material": m.material_id, "upload_id": m.upload_id, "substituted": m.substituted }))
                    .collect::<Vec<_>>()),
            },
        };
        let response = json!({
            "case_no": next.case_no,
            "status": next.status,
            "from": from.code(),
            "action": req.action.code(),
            "due_on": next.due_on,
        });
        let idem_row = idem.as_ref().map(|k| IdemRecord {
            scope: k.scope.clone(),
            key: k.key.clone(),
            request_hash: k.request_hash.clone(),
            status: 200,
            response: response.clone(),
        });
        // a department's part of a joint case is not news to the others, nor to the applicant
        let outbox = if partial {
            Vec::new()
        } else {
            outbox_for(service, &next, req.action)
        };
        let notices: Vec<NoticeRow> = if partial {
            Vec::new()
        } else {
            notice_for(&next, service, req.action, actor.actor, req.note.as_deref())
                .into_iter()
                .collect()
        };
        let w = CaseWrite {
            event: &event,
            materials: &materials,
            outbox: &outbox,
            notices: &notices,
            idem: idem_row.as_ref(),
            access: &[],
        };
        match app.store.update_case(&next, w).await? {
            WriteOutcome::Done => {
                tracing::info!(case_no = %next.case_no, action = req.action.code(), to = to.code(), "case step");
                return Ok((StatusCode::OK, response));
            }
            WriteOutcome::Replay(prior) => {
                let key = idem
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("replay without a key"))?;
                return replay(prior, key);
            }
            WriteOutcome::Conflict => continue,
        }
    }
    Err(AppError::Conflict(Message::new(
        "办件正被他人同时处理，请刷新后重试。",
        "The case was changed by someone else at the same moment; reload and try again.",
    )))
}

/// The department an actor acts for: a department system's token, or an officer's role.
async fn acting_department(app: &AppState, actor: &ActorRef) -> Result<Option<String>, AppError> {
    match actor.actor {
        Actor::DepartmentSystem => {
            let id = actor
                .id
                .as_deref()
                .and_then(|i| i.strip_prefix("token:"))
                .and_then(|i| i.parse::<Uuid>().ok());
            let Some(id) = id else { return Ok(None) };
            let tokens = app.store.api_tokens().await?;
            Ok(tokens
                .into_iter()
                .find(|t| t.id == id)
                .map(|t| t.department))
        }
        Actor::DepartmentOfficer => {
            let Some(account) = actor.account else {
                return Ok(None);
            };
            Ok(app.store.account(account).await?.and_then(|a| {
                a.roles.into_iter().find_map(|r| match r {
                    crate::auth::identity::Role::DepartmentOfficer { department } => {
                        Some(department)
                    }
                    _ => None,
                })
            }))
        }
        _ => Ok(None),
    }
}

/// The answer for a case that does not exist for this caller.
pub fn not_found(case_no: &str) -> AppError {
    AppError::NotFound(Message::new(
        format!("没有编号为“{case_no}”的办件。"),
        format!("There is no case {case_no:?}."),
    ))
}

/// Deadline facts for display.
pub fn deadline_view(cal: &HolidayCalendar, c: &CaseRow, lang: Lang) -> Value {
    let Some(due) = c.due_on else {
        return json!({ "state": Value::Null, "due_on": Value::Null });
    };
    let today = today();
    let paused = CaseStatus::from_code(&c.status).is_some_and(CaseStatus::clock_paused);
    let state = deadline::state(
        cal,
        due,
        today,
        paused,
        c.concluded_on,
        DUE_SOON_WORKING_DAYS,
    )
    .ok();
    let left = deadline::working_days_left(cal, due, today).ok();
    json!({
        "due_on": due,
        "legal_due_on": c.legal_due_on,
        "state": state.map(DeadlineState::code),
        "label": state.map(|s| { let (zh, en) = s.labels(); lang.pick(zh, en).to_owned() }),
        "working_days_left": if c.concluded_on.is_some() { None } else { left },
    })
}

fn status_view(code: &str, lang: Lang) -> Value {
    match CaseStatus::from_code(code) {
        Some(s) => {
            let (zh, en) = s.labels();
            json!({ "code": code, "label": lang.pick(zh, en) })
        }
        None => json!({ "code": code }),
    }
}

fn action_label(code: Option<&str>, lang: Lang) -> Option<String> {
    let a = Action::from_code(code?)?;
    let (zh, en) = a.labels();
    Some(lang.pick(zh, en).to_owned())
}

fn actor_label(code: &str, lang: Lang) -> String {
    Actor::from_code(code)
        .map(|a| {
            let (zh, en) = a.labels();
            lang.pick(zh, en).to_owned()
        })
        .unwrap_or_else(|| code.to_owned())
}

/// The timeline; `with_notes` is false for the public view (notes may carry personal
/// details).
pub fn timeline(events: &[EventRow], lang: Lang, with_notes: bool) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let mut v = json!({
                "seq": e.seq,
                "at": e.at,
                "action": e.action,
                "action_label": action_label(e.action.as_deref(), lang),
                "status": status_view(&e.to_status, lang),
                "by": actor_label(&e.actor, lang),
            });
            if with_notes && let Some(obj) = v.as_object_mut() {
                obj.insert("note".into(), json!(e.note));
                obj.insert("attachments".into(), e.attachments.clone());
            }
            v
        })
        .collect()
}

/// A case for its applicant or for staff: everything but the internal ids.
pub async fn full_view(
    app: &AppState,
    c: &CaseRow,
    lang: Lang,
    viewer: Actor,
) -> Result<Value, AppError> {
    let events = app.store.case_events(c.id).await?;
    let materials = app.store.case_materials(c.id).await?;
    let service = app.catalogue.service(&c.service_code);
    let status = CaseStatus::from_code(&c.status);
    let allowed: Vec<&str> = match (status, service) {
        (Some(s), Some(svc)) => case::allowed_actions(s, viewer, facts(svc, c))
            .into_iter()
            .map(Action::code)
            .collect(),
        _ => Vec::new(),
    };
    // What is asked of the applicant: the reason of the latest correction request.
    let asked = if status == Some(CaseStatus::CorrectionRequested) {
        events
            .iter()
            .rev()
            .find(|e| e.action.as_deref() == Some(Action::RequestCorrection.code()))
            .and_then(|e| e.note.clone())
    } else {
        None
    };
    let dept_name = app
        .catalogue
        .department(&c.department)
        .map(|d| lang.pick(&d.name, &d.name_en).to_owned());
    Ok(json!({
        "case_no": c.case_no,
        "query_code": c.query_code,
        "service": {
            "code": c.service_code,
            "name": service.map(|s| lang.pick(&s.name, &s.name_en).to_owned()),
            "version": c.service_version,
        },
        "department": { "uscc": c.department, "name": dept_name },
        "status": status_view(&c.status, lang),
        "channel": c.channel,
        "applicant": {
            "kind": c.applicant.kind.code(),
            "name": c.applicant.name,
            "id_number": c.applicant.id_number.as_ref().map(|i| i.masked()),
            "uscc": c.applicant.uscc,
        },
        "submitted_at": c.created_at,
        "accepted_on": c.accepted_on,
        "deadline": deadline_view(&app.calendar, c, lang),
        "concluded_on": c.concluded_on,
        "result": c.result,
        "asked_of_applicant": asked,
        "allowed_actions": allowed,
        "form": c.form,
        "provenance": c.provenance,
        "materials": materials,
        "timeline": timeline(&events, lang, true),
        "rating": c.rating.map(|r| json!({ "level": r, "comment": c.rating_comment, "at": c.rated_at })),
        "joint_parts": if c.parts.as_object().is_some_and(|p| !p.is_empty()) { c.parts.clone() } else { Value::Null },
        "deliveries": if viewer == Actor::Applicant { Value::Null } else { deliveries_view(app, c).await? },
        "updated_at": c.updated_at,
    }))
}

/// Delivery to each department, for staff: counts by state, and the failed event if one
/// is dead-lettered (failed deliveries are shown to clerks and operators).
async fn deliveries_view(app: &AppState, c: &CaseRow) -> Result<Value, AppError> {
    let filter = crate::store::DeliveryFilter {
        case_id: Some(c.id),
        limit: 1000,
        ..Default::default()
    };
    let rows = app.store.deliveries(&filter).await?;
    let mut per: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
    for d in rows {
        let entry = per.entry(d.department.clone()).or_insert_with(
            || json!({ "department": d.department, "pending": 0, "delivered": 0, "dead": 0 }),
        );
        let key = d.state.as_str();
        if let Some(n) = entry.get(key).and_then(Value::as_i64) {
            entry[key] = json!(n + 1);
        }
        if d.state == "dead" {
            entry["failed_event"] = json!({ "id": d.id, "type": d.event_type, "attempts": d.attempts, "last_error": d.last_error });
        }
    }
    Ok(Value::Array(per.into_values().collect()))
}

/// A row of a list.
pub fn summary(app: &AppState, c: &CaseRow, lang: Lang) -> Value {
    let service = app.catalogue.service(&c.service_code);
    json!({
        "case_no": c.case_no,
        "service": {
            "code": c.service_code,
            "name": service.map(|s| lang.pick(&s.name, &s.name_en).to_owned()),
        },
        "department": c.department,
        "applicant_name": c.applicant.name,
        "status": status_view(&c.status, lang),
        "channel": c.channel,
        "submitted_at": c.created_at,
        "deadline": deadline_view(&app.calendar, c, lang),
        "updated_at": c.updated_at,
    })
}

/// The 好差评 levels, 5 (非常满意) to 1 (非常不满意).
pub fn rating_labels(level: i16) -> Option<(&'static str, &'static str)> {
    match level {
        5 => Some(("非常满意", "Very satisfied")),
        4 => Some(("满意", "Satisfied")),
        3 => Some(("基本满意", "Neutral")),
        2 => Some(("不满意", "Dissatisfied")),
        1 => Some(("非常不满意", "Very dissatisfied")),
        _ => None,
    }
}

/// Checks a rating: one of five levels, with a comment below 3 (差评 must say why).
pub fn check_rating(level: i16, comment: Option<&str>) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if rating_labels(level).is_none() {
        errors.push(FieldError {
            field: "rating".into(),
            message: Message::new("评价等级应为 1 到 5。", "The rating must be 1 to 5."),
        });
    } else if level < 3 && comment.is_none_or(|c| c.trim().is_empty()) {
        errors.push(FieldError {
            field: "comment".into(),
            message: Message::new(
                "不满意的评价请说明原因，以便改进。",
                "Please say what went wrong when you are dissatisfied, so it can be improved.",
            ),
        });
    }
    if comment.is_some_and(|c| c.chars().count() > 1000) {
        errors.push(FieldError {
            field: "comment".into(),
            message: Message::new(
                "评价内容不超过1000字。",
                "The comment may be at most 1000 characters.",
            ),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Parses a conclusion result code.
pub fn parse_result(s: Option<&str>) -> Result<Option<ConclusionResult>, AppError> {
    match s {
        None => Ok(None),
        Some(r) => ConclusionResult::from_code(r).map(Some).ok_or_else(|| {
            AppError::Invalid(vec![FieldError {
                field: "result".into(),
                message: Message::new(
                    "result 应为 approved 或 rejected。",
                    "result must be approved or rejected.",
                ),
            }])
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_ratings_need_a_comment() {
        assert!(check_rating(5, None).is_ok());
        assert!(check_rating(3, None).is_ok());
        assert_eq!(
            check_rating(2, None).expect_err("comment")[0].field,
            "comment"
        );
        assert!(check_rating(1, Some("等了很久")).is_ok());
        assert_eq!(check_rating(6, None).expect_err("range")[0].field, "rating");
    }

    #[test]
    fn event_types_follow_the_contract() {
        assert_eq!(
            event_type(Action::Submit),
            "cn.gov.onewindow.case.submitted.v1"
        );
        assert_eq!(
            event_type(Action::SupplyCorrection),
            "cn.gov.onewindow.case.corrected.v1"
        );
        assert_eq!(
            event_type(Action::Withdraw),
            "cn.gov.onewindow.case.withdrawn.v1"
        );
    }

    #[test]
    fn pauses_round_trip_through_json() {
        let p = vec![
            Pause {
                from: NaiveDate::from_ymd_opt(2026, 3, 2).expect("d"),
                to: NaiveDate::from_ymd_opt(2026, 3, 5),
            },
            Pause {
                from: NaiveDate::from_ymd_opt(2026, 3, 9).expect("d"),
                to: None,
            },
        ];
        let c = CaseRow {
            pauses: pauses_json(&p),
            ..sample()
        };
        assert_eq!(pauses_of(&c), p);
    }

    fn sample() -> CaseRow {
        CaseRow {
            id: Uuid::now_v7(),
            case_no: "HLBE20260302-ABCDEFGH".into(),
            query_code: "123456".into(),
            service_code: "X".into(),
            service_version: "v".into(),
            department: "D".into(),
            applicant: CaseApplicant {
                account_id: None,
                kind: crate::auth::identity::AccountKind::Person,
                name: "n".into(),
                id_number: None,
                uscc: None,
                phone: None,
            },
            channel: "online".into(),
            intake_account: None,
            intake_hall: None,
            status: "submitted".into(),
            form: json!({}),
            accepted_on: None,
            due_on: None,
            legal_due_on: None,
            pauses: json!([]),
            parts: json!({}),
            concluded_on: None,
            result: None,
            rating: None,
            rating_comment: None,
            rated_at: None,
            provenance: json!({}),
            fields_filled: 0,
            fields_prefilled: 0,
            version: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }
}
