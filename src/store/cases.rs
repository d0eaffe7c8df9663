//! Row types of the case tables, shared by both store implementations. Statuses,
//! actors and actions are their stable codes here; the domain types live in
//! `domain::case` and the HTTP layer converts.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::identity::AccountKind;
use crate::domain::ids::ResidentId;

/// Who applied. The ID number and phone are personal data: they are only read and
/// written through the store's case methods.
#[derive(Debug, Clone)]
pub struct CaseApplicant {
    /// The applicant's account, when they applied online (none for a walk-in).
    pub account_id: Option<Uuid>,
    /// Person or enterprise.
    pub kind: AccountKind,
    /// Name (of the person, or of the enterprise).
    pub name: String,
    /// Resident ID number of the person (or the enterprise's representative).
    pub id_number: Option<ResidentId>,
    /// The enterprise's USCC.
    pub uscc: Option<String>,
    /// Contact phone.
    pub phone: Option<String>,
}

/// A case row.
#[derive(Debug, Clone)]
pub struct CaseRow {
    /// Internal id.
    pub id: Uuid,
    /// Public case number.
    pub case_no: String,
    /// 6-digit query code for the public lookup.
    pub query_code: String,
    /// Service code.
    pub service_code: String,
    /// Definition version lodged against.
    pub service_version: String,
    /// Responsible department.
    pub department: String,
    /// The applicant.
    pub applicant: CaseApplicant,
    /// `online` or `window`.
    pub channel: String,
    /// Clerk who registered a window application.
    pub intake_account: Option<Uuid>,
    /// Hall of that clerk.
    pub intake_hall: Option<String>,
    /// Status code.
    pub status: String,
    /// Form values.
    pub form: Value,
    /// Acceptance date (the clock's start).
    pub accepted_on: Option<NaiveDate>,
    /// Promised due date.
    pub due_on: Option<NaiveDate>,
    /// Legal due date.
    pub legal_due_on: Option<NaiveDate>,
    /// Clock pauses, JSON `[{"from": date, "to": date|null}]`.
    pub pauses: Value,
    /// Joint cases: each routed department's conclusion, `{uscc: {"result", "on"}}`.
    pub parts: Value,
    /// Conclusion date.
    pub concluded_on: Option<NaiveDate>,
    /// `approved` or `rejected`.
    pub result: Option<String>,
    /// 好差评 rating 1–5.
    pub rating: Option<i16>,
    /// Rating comment.
    pub rating_comment: Option<String>,
    /// When rated.
    pub rated_at: Option<DateTime<Utc>>,
    /// Where prefilled fields came from: field id → `{source, as_of, authoritative}`.
    pub provenance: Value,
    /// Form fields with a value at submission.
    pub fields_filled: i32,
    /// Of which filled from shared data and left unchanged.
    pub fields_prefilled: i32,
    /// Optimistic concurrency version.
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One history entry (append-only).
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    /// Position in the case's history (assigned by the store).
    pub seq: i32,
    /// When.
    pub at: DateTime<Utc>,
    /// Actor code.
    pub actor: String,
    /// Account or token id of the actor.
    pub actor_id: Option<String>,
    /// Actor's display name.
    pub actor_name: String,
    /// Action code (none for the creating entry).
    pub action: Option<String>,
    /// Status before.
    pub from_status: Option<String>,
    /// Status after.
    pub to_status: String,
    /// Note / reason.
    pub note: Option<String>,
    /// Attachments (upload ids and names).
    pub attachments: Value,
}

/// A material to record with a write.
#[derive(Debug, Clone)]
pub struct NewMaterial {
    /// Material id from the definition.
    pub material_id: String,
    /// The uploaded file, if uploaded.
    pub upload_id: Option<Uuid>,
    /// Stood in for by shared data / an e-licence.
    pub substituted: bool,
    /// The data item or licence that stood in.
    pub source: Option<String>,
    /// The licence number, issuer, validity … that stood in.
    pub evidence: Option<Value>,
}

/// A recorded material with its file's facts.
#[derive(Debug, Clone, Serialize)]
pub struct MaterialRow {
    /// Material id.
    pub material_id: String,
    /// Upload id.
    pub upload_id: Option<Uuid>,
    /// Substituted (免提交).
    pub substituted: bool,
    /// What stood in.
    pub source: Option<String>,
    /// For a substituted material: the licence number, issuer, validity … that stood in.
    pub evidence: Option<Value>,
    /// History entry that added it.
    pub added_seq: i32,
    /// File name as uploaded.
    pub file_name: Option<String>,
    /// Sniffed type.
    pub file_type: Option<String>,
    /// Size in bytes.
    pub size: Option<i64>,
    /// SHA-256 of the content.
    pub sha256: Option<String>,
}

/// An event for department systems, written in the same transaction as its cause.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    /// Event id.
    pub id: Uuid,
    /// History entry that caused it (assigned by the store).
    pub case_seq: i32,
    /// The department it is for.
    pub department: String,
    /// CloudEvents type.
    pub event_type: String,
    /// The event's data.
    pub payload: Value,
}

/// An in-app message to an applicant.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeRow {
    /// Id.
    pub id: Uuid,
    /// Recipient.
    pub account_id: Uuid,
    /// Case.
    pub case_id: Uuid,
    /// Case number.
    pub case_no: String,
    /// Title (Chinese).
    pub title_zh: String,
    /// Title (English).
    pub title_en: String,
    /// Body (Chinese).
    pub body_zh: String,
    /// Body (English).
    pub body_en: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Read.
    pub read_at: Option<DateTime<Utc>>,
}

/// A remembered answer to an idempotent request.
#[derive(Debug, Clone)]
pub struct IdemRecord {
    /// Whose key (account or token id).
    pub scope: String,
    /// The Idempotency-Key.
    pub key: String,
    /// Hash of the request it answered.
    pub request_hash: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// The answer's body.
    pub response: Value,
}

/// Everything written together with a case change, in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct CaseWrite<'a> {
    /// The history entry (its seq is assigned).
    pub event: &'a EventRow,
    /// Materials added.
    pub materials: &'a [NewMaterial],
    /// Events for departments.
    pub outbox: &'a [OutboxRow],
    /// Messages to the applicant.
    pub notices: &'a [NoticeRow],
    /// The idempotency record, if the request carried a key.
    pub idem: Option<&'a IdemRecord>,
    /// Reads of personal data made for this write (a 免提交 check), appended to their
    /// subjects' audit chains in the same transaction, with the case number.
    pub access: &'a [crate::store::NewAccess],
}

/// Result of a case write.
#[derive(Debug, Clone)]
pub enum WriteOutcome {
    /// Written.
    Done,
    /// Not written: the case number was taken (create) or the case changed meanwhile
    /// (update). The caller retries.
    Conflict,
    /// Not written: the idempotency key was used before; here is that answer.
    Replay(IdemRecord),
}

/// An uploaded file not yet (or already) attached to a case.
#[derive(Debug, Clone, Serialize)]
pub struct UploadRow {
    /// Id.
    pub id: Uuid,
    /// Uploader's account.
    pub owner: Uuid,
    /// Original file name.
    pub file_name: String,
    /// Sniffed type code.
    pub file_type: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256 hex.
    pub sha256: String,
    /// Key in the file store.
    #[serde(skip)]
    pub storage_key: String,
    /// Uploaded.
    pub created_at: DateTime<Utc>,
    /// Attached to.
    pub case_id: Option<Uuid>,
}

/// A saved, unsubmitted application.
#[derive(Debug, Clone, Serialize)]
pub struct DraftRow {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub account_id: Uuid,
    /// Service.
    pub service_code: String,
    /// Values so far.
    pub form: Value,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last saved.
    pub updated_at: DateTime<Utc>,
    /// Deleted after.
    pub expires_at: DateTime<Utc>,
}

/// Filters of case lists; every list is limited by who may see it.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Only this applicant's cases.
    pub applicant: Option<Uuid>,
    /// Only cases of these departments.
    pub departments: Option<Vec<String>>,
    /// Only these statuses.
    pub statuses: Vec<String>,
    /// Only this service.
    pub service: Option<String>,
    /// Only cases due on or before.
    pub due_by: Option<NaiveDate>,
    /// Only cases changed since.
    pub updated_since: Option<DateTime<Utc>>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}
