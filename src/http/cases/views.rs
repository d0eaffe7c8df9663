//! What callers read about cases: typed answers (Serialize + `ToSchema`), built from the
//! stored rows in the caller's language. One shape per thing, shared by the applicant's,
//! the staff's and the department's routes; what differs by reader (the masked or full
//! ID number, the deliveries, the steps offered) is decided here from the reader's role.
//!
//! Stored JSON documents the gateway does not interpret (form values, provenance,
//! licence evidence) pass through as they are; their schemas are described by the
//! `…Doc` types, which nothing builds.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::calendar::HolidayCalendar;
use crate::domain::case::{Action, Actor as Role, CaseStatus};
use crate::domain::deadline;
use crate::domain::lang::Lang;
use crate::state::AppState;
use crate::store::{CaseKey, CaseRow, DeliveryFilter, EventRow, FullCase, MaterialRow, StoreError};
use crate::usecases::step::allowed_now;
use crate::usecases::{Actor, Lodged, Stepped, today};

/// Working days before the due date from which a case shows as "due soon".
pub const DUE_SOON_WORKING_DAYS: u32 = 3;

// ---- codes ----------------------------------------------------------------------------

/// A case status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatusCode {
    /// 已申报.
    Submitted,
    /// 已受理.
    Accepted,
    /// 不予受理.
    NotAccepted,
    /// 补齐补正.
    CorrectionRequested,
    /// 审查中.
    UnderReview,
    /// 特别程序 (the clock is paused).
    Suspended,
    /// 办结·准予.
    Approved,
    /// 办结·不予.
    Rejected,
    /// 已撤回.
    Withdrawn,
}

/// A deadline state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineStateCode {
    /// In time.
    OnTime,
    /// Due within a few working days.
    DueSoon,
    /// Past the deadline.
    Overdue,
    /// The clock is paused (special procedure, correction).
    Paused,
    /// Concluded in time.
    Met,
    /// Concluded late.
    Missed,
}

/// How the application was lodged.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// 网上申报.
    Online,
    /// 窗口受理.
    Window,
}

/// Whether the applicant is a person or an enterprise.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplicantKind {
    /// A natural person.
    Person,
    /// An enterprise or other legal person.
    Enterprise,
}

/// Any step of the case lifecycle, as recorded in the history and in events.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseAction {
    /// 提交申报.
    Submit,
    /// 受理.
    Accept,
    /// 不予受理.
    NotAccept,
    /// 要求补齐补正.
    RequestCorrection,
    /// 提交补正材料.
    SupplyCorrection,
    /// 开始审查.
    StartReview,
    /// 中止（特别程序）.
    Suspend,
    /// 恢复审查.
    Resume,
    /// 办结.
    Conclude,
    /// 撤回.
    Withdraw,
}

/// The result of a concluded case.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseResult {
    /// 准予.
    Approved,
    /// 不予.
    Rejected,
}

// ---- pieces ---------------------------------------------------------------------------

/// A status with its label.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusView {
    /// The status code.
    #[schema(value_type = CaseStatusCode)]
    pub code: String,
    /// Its label in the response's language (absent only for a status this version does
    /// not know).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub label: Option<String>,
}

impl StatusView {
    /// The stored status `code`, labelled in `lang`.
    pub fn of(code: &str, lang: Lang) -> StatusView {
        StatusView {
            code: code.to_owned(),
            label: CaseStatus::from_code(code).map(|s| {
                let (zh, en) = s.labels();
                lang.pick(zh, en).to_owned()
            }),
        }
    }
}

/// Where a case stands against its promised deadline. Before acceptance (the clock has
/// not started) only `due_on` and `state` are present, both `null`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Deadline {
    /// The promised deadline (承诺时限), counted in working days from acceptance.
    #[schema(required = true)]
    pub due_on: Option<NaiveDate>,
    /// The legal deadline (法定时限).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<NaiveDate>, required = false)]
    pub legal_due_on: Option<Option<NaiveDate>>,
    /// The state against the deadline; `null` when the holiday calendar lacks a year.
    #[schema(value_type = Option<DeadlineStateCode>, required = true)]
    pub state: Option<&'static str>,
    /// The state's label in the response's language.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, required = false)]
    pub label: Option<Option<String>>,
    /// Working days left until `due_on` (negative when overdue); `null` once concluded.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>, required = false)]
    pub working_days_left: Option<Option<i64>>,
    /// The due dates are provisional: counted in part by the weekday rule (Monday to
    /// Friday) because the official holiday calendar for a year they run into is not yet
    /// loaded; they are counted again when it is. Present only when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    pub provisional: bool,
}

impl Deadline {
    /// The deadline facts of a case today.
    pub fn of(cal: &HolidayCalendar, c: &CaseRow, lang: Lang) -> Deadline {
        let Some(due) = c.due_on else {
            return Deadline {
                due_on: None,
                legal_due_on: None,
                state: None,
                label: None,
                working_days_left: None,
                provisional: false,
            };
        };
        let today = today();
        let cal = &*deadline::calendar_for_state(cal, due, today);
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
        Deadline {
            due_on: Some(due),
            legal_due_on: Some(c.legal_due_on),
            state: state.map(deadline::DeadlineState::code),
            label: Some(state.map(|s| {
                let (zh, en) = s.labels();
                lang.pick(zh, en).to_owned()
            })),
            working_days_left: Some(if c.concluded_on.is_some() { None } else { left }),
            provisional: c.due_provisional,
        }
    }
}

/// A service, by code and name.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceRef {
    /// The service code.
    pub code: String,
    /// Its name in the response's language; `null` if no longer in the catalogue.
    #[schema(required = true)]
    pub name: Option<String>,
}

/// A department.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DepartmentRef {
    /// Its unified social credit code (统一社会信用代码).
    #[schema(example = "11150700MB1530001X")]
    pub uscc: String,
    /// Its name in the response's language; `null` if not in the catalogue.
    #[schema(required = true)]
    pub name: Option<String>,
}

fn service_name(app: &AppState, code: &str, lang: Lang) -> Option<String> {
    app.catalogue
        .service(code)
        .map(|s| lang.pick(&s.name, &s.name_en).to_owned())
}

fn department_name(app: &AppState, uscc: &str, lang: Lang) -> Option<String> {
    app.catalogue
        .department(uscc)
        .map(|d| lang.pick(&d.name, &d.name_en).to_owned())
}

// ---- lists ----------------------------------------------------------------------------

/// A case in a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseSummary {
    /// The case number (办件编号).
    #[schema(example = "HLBE20250301-7KQ2M9XD")]
    pub case_no: String,
    /// The service.
    pub service: ServiceRef,
    /// The responsible department's USCC.
    pub department: String,
    /// The applicant's name.
    pub applicant_name: String,
    /// The current status.
    pub status: StatusView,
    /// How it was lodged.
    #[schema(value_type = Channel)]
    pub channel: String,
    /// When it was lodged.
    pub submitted_at: DateTime<Utc>,
    /// Deadline facts.
    pub deadline: Deadline,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl CaseSummary {
    /// A row of a list.
    pub fn of(app: &AppState, c: &CaseRow, lang: Lang) -> CaseSummary {
        CaseSummary {
            case_no: c.case_no.clone(),
            service: ServiceRef {
                code: c.service_code.clone(),
                name: service_name(app, &c.service_code, lang),
            },
            department: c.department.clone(),
            applicant_name: c.applicant.name.clone(),
            status: StatusView::of(&c.status, lang),
            channel: c.channel.clone(),
            submitted_at: c.created_at,
            deadline: Deadline::of(&app.calendar.current(), c, lang),
            updated_at: c.updated_at,
        }
    }
}

/// A page of cases, in the list's order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseList {
    /// The cases on this page.
    pub items: Vec<CaseSummary>,
    /// How many cases match the filter, counted up to 10,000: with more, `total` is
    /// 10000 and `total_capped` is true (show "10,000+").
    pub total: i64,
    /// More than 10,000 cases match; `total` is the cap.
    pub total_capped: bool,
    /// This page (from 1) when paged by `page`; 1 on a page reached by cursor.
    pub page: i64,
    /// Cases per page.
    pub per_page: i64,
    /// The cursor of the next page (pass it as `before`); `null` on the last page.
    #[schema(required = true)]
    pub next: Option<String>,
}

impl CaseList {
    /// A page of `rows` out of `total`.
    pub fn of(
        app: &AppState,
        rows: &[CaseRow],
        total: i64,
        page: i64,
        per_page: i64,
        lang: Lang,
    ) -> CaseList {
        CaseList {
            items: rows.iter().map(|c| CaseSummary::of(app, c, lang)).collect(),
            total,
            total_capped: false,
            page,
            per_page,
            next: None,
        }
    }

    /// A page from the store, with its capped count and the next page's cursor.
    pub fn page(
        app: &AppState,
        p: &crate::store::CasePage,
        page: i64,
        per_page: i64,
        lang: Lang,
    ) -> CaseList {
        CaseList {
            total_capped: p.total_capped,
            next: p.next.map(|c| c.encode()),
            ..CaseList::of(app, &p.rows, p.total, page, per_page, lang)
        }
    }
}

// ---- one case -------------------------------------------------------------------------

/// The service of a case.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseService {
    /// The service code.
    pub code: String,
    /// Its name in the response's language.
    #[schema(required = true)]
    pub name: Option<String>,
    /// The version of the definition the application was made under.
    pub version: String,
}

/// The applicant of a case.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = CaseApplicant)]
pub struct CaseApplicantView {
    /// Person or enterprise.
    #[schema(value_type = ApplicantKind)]
    pub kind: &'static str,
    /// Name (of the person, or of the enterprise).
    pub name: String,
    /// Resident ID number (公民身份号码): masked (first 6 and last 4) for the applicant and
    /// staff, in full for the processing department.
    #[schema(required = true)]
    pub id_number: Option<String>,
    /// The enterprise's USCC.
    #[schema(required = true)]
    pub uscc: Option<String>,
    /// Phone number: given to the processing department only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, required = false)]
    pub phone: Option<Option<String>>,
}

/// A material of a case. A department downloads its file with
/// `GET /api/dept/v1/cases/{case_no}/materials/{upload_id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseMaterial {
    /// The material's id in the service definition.
    pub material_id: String,
    /// The uploaded file; `null` when substituted.
    #[schema(required = true)]
    pub upload_id: Option<Uuid>,
    /// Substituted by shared data or an e-licence (免提交).
    pub substituted: bool,
    /// What stood in for it.
    #[schema(required = true)]
    pub source: Option<String>,
    /// For a substituted material, the licence (or data) that stood in.
    #[schema(value_type = Option<EvidenceDoc>, required = true)]
    pub evidence: Option<Value>,
    /// The history entry (`seq`) that added it.
    pub added_seq: i32,
    /// File name as uploaded.
    #[schema(required = true)]
    pub file_name: Option<String>,
    /// File type (`pdf`, `jpg`, `png`).
    #[schema(required = true)]
    pub file_type: Option<String>,
    /// Size in bytes.
    #[schema(required = true)]
    pub size: Option<i64>,
    /// SHA-256 of the file, hex.
    #[schema(required = true)]
    pub sha256: Option<String>,
}

impl From<MaterialRow> for CaseMaterial {
    fn from(m: MaterialRow) -> CaseMaterial {
        CaseMaterial {
            material_id: m.material_id,
            upload_id: m.upload_id,
            substituted: m.substituted,
            source: m.source,
            evidence: m.evidence,
            added_seq: m.added_seq,
            file_name: m.file_name,
            file_type: m.file_type,
            size: m.size,
            sha256: m.sha256,
        }
    }
}

/// The e-licence (or shared data) that stood in for a material (免提交), as recorded.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Evidence)]
#[allow(dead_code)] // a schema only: the evidence is a stored JSON document
pub struct EvidenceDoc {
    /// The shared-data item, `resource.item` (`elicence.resident_id_card`).
    source: String,
    /// The resource's name.
    source_name: String,
    /// The providing department's USCC.
    provider: String,
    /// How current the source's data was.
    as_of: DateTime<Utc>,
    /// Licence number.
    #[schema(required = false)]
    licence_no: Option<String>,
    /// Issuing authority.
    #[schema(required = false)]
    issuer: Option<String>,
    /// Issue date.
    #[schema(required = false)]
    issued_on: Option<String>,
    /// Valid until (a date, or 长期).
    #[schema(required = false)]
    valid_until: Option<String>,
    /// The holder's name.
    #[schema(required = false)]
    holder_name: Option<String>,
    /// For shared data that is not a licence: the value.
    #[schema(required = false)]
    value: Option<Value>,
}

/// Where a prefilled field came from, as recorded on submit.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Provenance)]
#[allow(dead_code)] // a schema only: provenance is a stored JSON document
pub struct ProvenanceDoc {
    /// The shared-data item, `resource.item` (`person.name`).
    source: String,
    /// The resource's name.
    resource_name: String,
    /// The providing department's USCC.
    provider: String,
    /// How current the source's data was.
    as_of: DateTime<Utc>,
    /// An authoritative value: the gateway refused any change to it.
    authoritative: bool,
    /// The applicant changed the prefilled value (only for non-authoritative items).
    changed: bool,
}

/// One department's conclusion of its part of a joint case, as recorded.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = JointPart)]
#[allow(dead_code)] // a schema only: the parts are a stored JSON document
pub struct JointPartDoc {
    /// Its result.
    result: CaseResult,
    /// When it concluded its part.
    on: NaiveDate,
}

/// What a history entry carried: the materials a correction added, or a department's
/// conclusion of its part of a joint case.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = TimelineAttachment)]
#[allow(dead_code)] // a schema only: attachments are a stored JSON document
pub enum TimelineAttachmentDoc {
    /// A material added by a correction.
    Material {
        /// The material's id.
        material: String,
        /// The uploaded file.
        #[schema(required = true)]
        upload_id: Option<Uuid>,
        /// Substituted (免提交).
        substituted: bool,
    },
    /// A department's conclusion of its part of a joint case.
    Part {
        /// The department (USCC).
        department: String,
        /// Its result.
        result: CaseResult,
    },
}

/// An entry of a case's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntry {
    /// Sequence number within the case, from 1.
    pub seq: i32,
    /// When.
    pub at: DateTime<Utc>,
    /// The action taken.
    #[schema(value_type = Option<CaseAction>, required = true)]
    pub action: Option<String>,
    /// The action's label in the response's language.
    #[schema(required = true)]
    pub action_label: Option<String>,
    /// The status after it.
    pub status: StatusView,
    /// Who took it (a label in the response's language).
    pub by: String,
    /// The note given with it (a reason, what is missing …); not in the public query,
    /// where notes may carry personal details.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, required = false)]
    pub note: Option<Option<String>>,
    /// What it carried; not in the public query.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<TimelineAttachmentDoc>, required = false)]
    pub attachments: Option<Value>,
}

/// The timeline; `with_notes` is false for the public view (notes may carry personal
/// details).
pub fn timeline(events: &[EventRow], lang: Lang, with_notes: bool) -> Vec<TimelineEntry> {
    events
        .iter()
        .map(|e| TimelineEntry {
            seq: e.seq,
            at: e.at,
            action: e.action.clone(),
            action_label: e.action.as_deref().and_then(Action::from_code).map(|a| {
                let (zh, en) = a.labels();
                lang.pick(zh, en).to_owned()
            }),
            status: StatusView::of(&e.to_status, lang),
            by: Role::from_code(&e.actor)
                .map(|a| {
                    let (zh, en) = a.labels();
                    lang.pick(zh, en).to_owned()
                })
                .unwrap_or_else(|| e.actor.clone()),
            note: with_notes.then(|| e.note.clone()),
            attachments: with_notes.then(|| e.attachments.clone()),
        })
        .collect()
}

/// The applicant's rating (好差评).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Rating)]
pub struct RatingView {
    /// 5 (非常满意) to 1 (非常不满意).
    #[schema(minimum = 1, maximum = 5)]
    pub level: i16,
    /// The applicant's comment.
    #[schema(required = true)]
    pub comment: Option<String>,
    /// When it was given.
    #[schema(required = true)]
    pub at: Option<DateTime<Utc>>,
}

/// The delivery of a case's events to one department.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryCounts {
    /// The department's USCC.
    pub department: String,
    /// Events not yet delivered (or, for pull, not yet acknowledged).
    pub pending: i64,
    /// Events delivered.
    pub delivered: i64,
    /// Events dead-lettered after the last retry.
    pub dead: i64,
    /// The dead-lettered event, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub failed_event: Option<FailedEvent>,
}

/// A dead-lettered event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FailedEvent {
    /// The event id.
    pub id: Uuid,
    /// Its CloudEvents type.
    #[serde(rename = "type")]
    #[schema(value_type = crate::http::openapi::EventType)]
    pub kind: String,
    /// Attempts made.
    pub attempts: i32,
    /// What went wrong on the last attempt.
    #[schema(required = true)]
    pub last_error: Option<String>,
}

/// Delivery to each routed department, for staff: counts by state, and the failed event
/// if one is dead-lettered (failed deliveries are shown to clerks and operators).
async fn deliveries(app: &AppState, c: &CaseRow) -> Result<Vec<DeliveryCounts>, StoreError> {
    let filter = DeliveryFilter {
        case_id: Some(c.id),
        limit: 1000,
        ..Default::default()
    };
    let mut per: BTreeMap<String, DeliveryCounts> = BTreeMap::new();
    for d in app.store.deliveries(&filter).await? {
        let entry = per
            .entry(d.department.clone())
            .or_insert_with(|| DeliveryCounts {
                department: d.department.clone(),
                pending: 0,
                delivered: 0,
                dead: 0,
                failed_event: None,
            });
        match d.state.as_str() {
            "pending" => entry.pending += 1,
            "delivered" => entry.delivered += 1,
            "dead" => {
                entry.dead += 1;
                entry.failed_event = Some(FailedEvent {
                    id: d.id,
                    kind: d.event_type,
                    attempts: d.attempts,
                    last_error: d.last_error,
                });
            }
            _ => {}
        }
    }
    Ok(per.into_values().collect())
}

/// One case with its whole application, for its applicant, for staff, or for the
/// processing department.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseDetail {
    /// The case number (办件编号).
    #[schema(example = "HLBE20250301-7KQ2M9XD")]
    pub case_no: String,
    /// The applicant's query code (查询码).
    pub query_code: String,
    /// The service and the version of its definition the application was made under.
    pub service: CaseService,
    /// The responsible department.
    pub department: DepartmentRef,
    /// The current status.
    pub status: StatusView,
    /// How it was lodged.
    #[schema(value_type = Channel)]
    pub channel: String,
    /// The applicant.
    pub applicant: CaseApplicantView,
    /// When it was lodged.
    pub submitted_at: DateTime<Utc>,
    /// When it was accepted.
    #[schema(required = true)]
    pub accepted_on: Option<NaiveDate>,
    /// Deadline facts.
    pub deadline: Deadline,
    /// When it was concluded.
    #[schema(required = true)]
    pub concluded_on: Option<NaiveDate>,
    /// The conclusion.
    #[schema(value_type = Option<CaseResult>, required = true)]
    pub result: Option<String>,
    /// While a correction is requested: what was asked of the applicant.
    #[schema(required = true)]
    pub asked_of_applicant: Option<String>,
    /// The steps the reader may take now.
    #[schema(value_type = Vec<CaseAction>)]
    pub allowed_actions: Vec<Action>,
    /// Form values by field id, as defined by the service's form.
    pub form: Map<String, Value>,
    /// Where prefilled fields came from, by field id.
    #[schema(value_type = BTreeMap<String, ProvenanceDoc>)]
    pub provenance: Value,
    /// The materials provided or substituted.
    pub materials: Vec<CaseMaterial>,
    /// The case's history, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// The applicant's rating (好差评), if given.
    #[schema(required = true)]
    pub rating: Option<RatingView>,
    /// A joint case (联办件): each routed department's conclusion of its part, by USCC;
    /// `null` until a part is concluded, and for other cases. The case concludes when the
    /// last part has (approved only if every part is approved).
    #[schema(value_type = Option<BTreeMap<String, JointPartDoc>>, required = true)]
    pub joint_parts: Option<Value>,
    /// How the case's events are being delivered to each routed department; `null` for
    /// the applicant.
    #[schema(required = true)]
    pub deliveries: Option<Vec<DeliveryCounts>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl CaseDetail {
    /// The case as `reader` sees it: departments process the application, so they get the
    /// full ID number and the phone; others see the number masked. Staff and departments
    /// see how its events are delivered; the applicant does not.
    pub async fn build(
        app: &AppState,
        c: &CaseRow,
        lang: Lang,
        reader: &Actor,
    ) -> Result<CaseDetail, StoreError> {
        let full = app.store.case_full(CaseKey::Id(c.id)).await?;
        Self::of_full(app, c, full, lang, reader).await
    }

    /// [`CaseDetail::build`] from the case's history and materials already read (one
    /// statement, [`crate::store::Store::case_full`]); the case row comes with them again,
    /// but the caller's copy `c` is the one it checked access on.
    pub async fn of_full(
        app: &AppState,
        c: &CaseRow,
        full: Option<FullCase>,
        lang: Lang,
        reader: &Actor,
    ) -> Result<CaseDetail, StoreError> {
        let (events, materials) = match full {
            Some(full) => (full.events, full.materials),
            None => (Vec::new(), Vec::new()),
        };
        let service = app.catalogue.service(&c.service_code);
        let role = reader.role();
        // What is asked of the applicant: the reason of the latest correction request.
        let asked = if c.status == CaseStatus::CorrectionRequested.code() {
            events
                .iter()
                .rev()
                .find(|e| e.action.as_deref() == Some(Action::RequestCorrection.code()))
                .and_then(|e| e.note.clone())
        } else {
            None
        };
        let department_reads = matches!(reader, Actor::DepartmentSystem { .. });
        let applicant = CaseApplicantView {
            kind: c.applicant.kind.code(),
            name: c.applicant.name.clone(),
            id_number: c.applicant.id_number.as_ref().map(|i| {
                if department_reads {
                    i.expose().to_owned()
                } else {
                    i.masked()
                }
            }),
            uscc: c.applicant.uscc.clone(),
            phone: department_reads.then(|| c.applicant.phone.clone()),
        };
        Ok(CaseDetail {
            case_no: c.case_no.clone(),
            query_code: c.query_code.clone(),
            service: CaseService {
                code: c.service_code.clone(),
                name: service.map(|s| lang.pick(&s.name, &s.name_en).to_owned()),
                version: c.service_version.clone(),
            },
            department: DepartmentRef {
                uscc: c.department.clone(),
                name: department_name(app, &c.department, lang),
            },
            status: StatusView::of(&c.status, lang),
            channel: c.channel.clone(),
            applicant,
            submitted_at: c.created_at,
            accepted_on: c.accepted_on,
            deadline: Deadline::of(&app.calendar.current(), c, lang),
            concluded_on: c.concluded_on,
            result: c.result.clone(),
            asked_of_applicant: asked,
            allowed_actions: allowed_now(service, c, role),
            form: c.form.as_object().cloned().unwrap_or_default(),
            provenance: c.provenance.clone(),
            materials: materials.into_iter().map(CaseMaterial::from).collect(),
            timeline: timeline(&events, lang, true),
            rating: c.rating.map(|level| RatingView {
                level,
                comment: c.rating_comment.clone(),
                at: c.rated_at,
            }),
            joint_parts: c
                .parts
                .as_object()
                .filter(|p| !p.is_empty())
                .map(|_| c.parts.clone()),
            deliveries: if role == Role::Applicant {
                None
            } else {
                Some(deliveries(app, c).await?)
            },
            updated_at: c.updated_at,
        })
    }
}

/// A case's status without login (number and query code): no personal data, and no
/// notes in its history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicCase {
    /// The case number.
    pub case_no: String,
    /// The service's name in the response's language.
    #[schema(required = true)]
    pub service: Option<String>,
    /// The responsible department's name in the response's language.
    #[schema(required = true)]
    pub department: Option<String>,
    /// The current status.
    #[schema(required = true)]
    pub status: Option<StatusView>,
    /// When it was lodged.
    pub submitted_at: DateTime<Utc>,
    /// Deadline facts.
    pub deadline: Deadline,
    /// The conclusion.
    #[schema(value_type = Option<CaseResult>, required = true)]
    pub result: Option<String>,
    /// The history, without notes.
    pub timeline: Vec<TimelineEntry>,
}

impl PublicCase {
    /// The public view of a case and its history.
    pub fn of(app: &AppState, c: &CaseRow, events: &[EventRow], lang: Lang) -> PublicCase {
        PublicCase {
            case_no: c.case_no.clone(),
            service: service_name(app, &c.service_code, lang),
            department: department_name(app, &c.department, lang),
            status: CaseStatus::from_code(&c.status).map(|s| StatusView::of(s.code(), lang)),
            submitted_at: c.created_at,
            deadline: Deadline::of(&app.calendar.current(), c, lang),
            result: c.result.clone(),
            timeline: timeline(events, lang, false),
        }
    }
}

// ---- answers to changes ----------------------------------------------------------------

/// The answer to an application: the case it became. A repeat with the same
/// `Idempotency-Key` returns the first answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseLodged {
    /// The case number (办件编号).
    #[schema(example = "HLBE20250301-7KQ2M9XD")]
    pub case_no: String,
    /// The query code (查询码) for the public status query; keep it.
    #[schema(example = "042917")]
    pub query_code: String,
    /// The status: `submitted`.
    #[schema(value_type = CaseStatusCode)]
    pub status: CaseStatus,
    /// Where the applicant reads the case.
    #[schema(example = "/api/v1/cases/HLBE20250301-7KQ2M9XD")]
    pub href: String,
}

impl From<Lodged> for CaseLodged {
    fn from(l: Lodged) -> CaseLodged {
        CaseLodged {
            href: format!("/api/v1/cases/{}", l.case_no),
            case_no: l.case_no,
            query_code: l.query_code,
            status: l.status,
        }
    }
}

/// The answer to a step. A repeat with the same `Idempotency-Key` returns the first answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransitionAnswer {
    /// The case number.
    pub case_no: String,
    /// The status after the step.
    #[schema(value_type = CaseStatusCode)]
    pub status: CaseStatus,
    /// The status before it.
    #[schema(value_type = CaseStatusCode)]
    pub from: CaseStatus,
    /// The step taken.
    #[schema(value_type = CaseAction)]
    pub action: Action,
    /// The promised deadline after the step (it moves when the clock pauses).
    #[schema(required = true)]
    pub due_on: Option<NaiveDate>,
}

impl From<Stepped> for TransitionAnswer {
    fn from(s: Stepped) -> TransitionAnswer {
        TransitionAnswer {
            case_no: s.case_no,
            status: s.status,
            from: s.from,
            action: s.action,
            due_on: s.due_on,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_deadline_before_acceptance_has_only_its_two_nulls() {
        let d = Deadline {
            due_on: None,
            legal_due_on: None,
            state: None,
            label: None,
            working_days_left: None,
            provisional: false,
        };
        assert_eq!(
            serde_json::to_value(d).expect("json"),
            json!({ "due_on": null, "state": null })
        );
        let running = Deadline {
            due_on: NaiveDate::from_ymd_opt(2026, 3, 20),
            legal_due_on: Some(None),
            state: Some("on_time"),
            label: Some(Some("正常".into())),
            working_days_left: Some(None),
            provisional: false,
        };
        assert_eq!(
            serde_json::to_value(running.clone()).expect("json"),
            json!({ "due_on": "2026-03-20", "legal_due_on": null, "state": "on_time", "label": "正常", "working_days_left": null })
        );
        let provisional = Deadline {
            provisional: true,
            ..running
        };
        assert_eq!(
            serde_json::to_value(provisional).expect("json")["provisional"],
            json!(true)
        );
    }

    #[test]
    fn the_public_timeline_carries_no_notes() {
        let e = EventRow {
            seq: 2,
            at: Utc::now(),
            actor: "clerk".into(),
            actor_id: Some("x".into()),
            actor_name: "孙".into(),
            action: Some("not_accept".into()),
            from_status: Some("submitted".into()),
            to_status: "not_accepted".into(),
            note: Some("身份证号 150702198506123025 与本人不符".into()),
            attachments: json!([]),
        };
        let public = serde_json::to_value(timeline(std::slice::from_ref(&e), Lang::En, false))
            .expect("json");
        assert!(public[0].get("note").is_none() && public[0].get("attachments").is_none());
        assert_eq!(public[0]["by"], "Window clerk");
        assert_eq!(public[0]["status"]["code"], "not_accepted");
        let full = serde_json::to_value(timeline(&[e], Lang::Zh, true)).expect("json");
        assert!(full[0]["note"].is_string());
    }
}
