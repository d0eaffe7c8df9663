//! Cases (办件) with everything written in the same transaction as a case change: the
//! history entry, materials, outbox events for departments, notices to the applicant,
//! the idempotency record and the audit records of reads made for the change. Statuses,
//! actors and actions are their stable codes here; the domain types live in
//! `domain::case` and the HTTP layer converts.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::db::{Exec, Q, Row, Tx};
use super::shared::append_access_in;
use super::{RowSeal, SqlStore, StoreError, StoreResult, is_unique_violation, row_aad};
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
    /// The due dates were counted in part by the weekday rule, the holiday calendar
    /// lacking a year (shown as provisional; counted again when the year is imported).
    pub due_provisional: bool,
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
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
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
    pub access: &'a [super::NewAccess],
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

/// How a case is named.
#[derive(Debug, Clone, Copy)]
pub enum CaseKey<'a> {
    /// By internal id.
    Id(Uuid),
    /// By its public number.
    No(&'a str),
}

/// A case with its history (oldest first) and its materials.
#[derive(Debug, Clone)]
pub struct FullCase {
    /// The case.
    pub case: CaseRow,
    /// Its history.
    pub events: Vec<EventRow>,
    /// Its materials with their files.
    pub materials: Vec<MaterialRow>,
}

/// Filters of case lists; every list is limited by who may see it.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Only this applicant's cases.
    pub applicant: Option<Uuid>,
    /// With `applicant`: also the cases of this enterprise (USCC) the applicant acts for,
    /// whoever lodged them.
    pub enterprise: Option<String>,
    /// Only cases of these departments.
    pub departments: Option<Vec<String>>,
    /// Only these statuses.
    pub statuses: Vec<String>,
    /// Only this service.
    pub service: Option<String>,
    /// Only cases due on or before.
    pub due_by: Option<NaiveDate>,
    /// Only cases due on or after.
    pub due_from: Option<NaiveDate>,
    /// Only cases changed since.
    pub updated_since: Option<DateTime<Utc>>,
    /// Only cases lodged through this channel (`online`, `window`).
    pub channel: Option<String>,
    /// Only cases whose number or applicant name contains this text (any case).
    pub text: Option<String>,
    /// The order of the list.
    pub sort: CaseSort,
    /// Page size.
    pub limit: i64,
    /// Rows to skip (`page=`; a cursor is cheaper).
    pub offset: i64,
    /// Only the cases after this one in the list's order (keyset paging).
    pub before: Option<super::paging::Cursor>,
}

/// The order of a case list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CaseSort {
    /// Newest first (by when lodged).
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
    /// Soonest due first; cases without a due date last.
    DueSoonest,
}

/// `text` as a `LIKE` pattern matching it anywhere, lower-cased, its wildcards escaped
/// (with `\`).
pub(super) fn contains_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for ch in text.trim().to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// Cases and what hangs off them.
#[async_trait]
pub trait CaseStore: Send + Sync {
    /// Inserts a new case with its first history entry, materials, outbox events and
    /// notices, attaching the uploads, all in one transaction.
    async fn create_case(&self, case: &CaseRow, w: CaseWrite<'_>) -> StoreResult<WriteOutcome>;

    /// Writes a case's new state if its version is still `case.version` (then bumps it),
    /// with the history entry and everything else, in one transaction.
    async fn update_case(&self, case: &CaseRow, w: CaseWrite<'_>) -> StoreResult<WriteOutcome>;

    /// A case by internal id.
    async fn case_by_id(&self, id: Uuid) -> StoreResult<Option<CaseRow>>;

    /// A case by its public number.
    async fn case_by_no(&self, case_no: &str) -> StoreResult<Option<CaseRow>>;

    /// A case's history, oldest first.
    async fn case_events(&self, case_id: Uuid) -> StoreResult<Vec<EventRow>>;

    /// A case's materials with their files.
    async fn case_materials(&self, case_id: Uuid) -> StoreResult<Vec<MaterialRow>>;

    /// A case with its history and materials, read in one statement.
    async fn case_full(&self, key: CaseKey<'_>) -> StoreResult<Option<FullCase>>;

    /// Cases matching a filter, in its order, with the count (capped at
    /// [`super::paging::COUNT_CAP`]).
    async fn list_cases(&self, filter: &CaseFilter) -> StoreResult<(Vec<CaseRow>, i64)> {
        let page = self.case_page(filter).await?;
        Ok((page.rows, page.total))
    }

    /// A page of the cases matching a filter (from its cursor or offset), with the
    /// capped count and where the next page begins.
    async fn case_page(&self, filter: &CaseFilter) -> StoreResult<super::CasePage>;

    /// The outbox events of a case, in order.
    async fn case_outbox(&self, case_id: Uuid) -> StoreResult<Vec<OutboxRow>>;

    /// A remembered idempotent answer.
    async fn idempotent(&self, scope: &str, key: &str) -> StoreResult<Option<IdemRecord>>;

    /// Sets the rating once; false when the case was already rated.
    async fn rate_case(
        &self,
        case_id: Uuid,
        rating: i16,
        comment: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// An account's notifications, newest first.
    async fn notifications(&self, account: Uuid, limit: i64) -> StoreResult<Vec<NoticeRow>>;

    /// Gives a person's account the cases taken in at a window for their resident ID
    /// number (matched by its blind index) that no account holds yet; answers how many.
    async fn claim_window_cases(&self, account: Uuid, id_number: &str) -> StoreResult<u64>;
}

/// The resource name of a case applicant's blind index.
const APPLICANT_INDEX: &str = "cases.applicant";

#[async_trait]
impl CaseStore for SqlStore {
    async fn create_case(&self, c: &CaseRow, w: CaseWrite<'_>) -> StoreResult<WriteOutcome> {
        if self.db.backend() == "postgres" {
            // `None`: a read of personal data lost the race for its subject's chain head
            // to another write; the transaction below queues on the chain's lock instead
            // of trying again and again (one applicant lodging many at once).
            if let Some(outcome) = self.create_case_at_once(c, w).await? {
                return Ok(outcome);
            }
        }
        retry_on_chain_race(|| self.create_case_tx(c, w)).await
    }

    async fn update_case(&self, c: &CaseRow, w: CaseWrite<'_>) -> StoreResult<WriteOutcome> {
        retry_on_chain_race(|| self.update_case_tx(c, w)).await
    }

    async fn case_by_id(&self, id: Uuid) -> StoreResult<Option<CaseRow>> {
        let q = Q::new("SELECT * FROM cases WHERE id = $1").bind(id);
        self.db
            .fetch_optional_with(q, |r| case_from_row(r, &self.seal))
            .await
    }

    async fn case_by_no(&self, case_no: &str) -> StoreResult<Option<CaseRow>> {
        let q = Q::new("SELECT * FROM cases WHERE case_no = $1").bind(case_no);
        self.db
            .fetch_optional_with(q, |r| case_from_row(r, &self.seal))
            .await
    }

    async fn case_events(&self, case_id: Uuid) -> StoreResult<Vec<EventRow>> {
        let q = Q::new("SELECT * FROM case_events WHERE case_id = $1 ORDER BY seq").bind(case_id);
        self.db
            .fetch_all_with(q, |r| {
                Ok(EventRow {
                    seq: r.get("seq")?,
                    at: r.get("at")?,
                    actor: r.get("actor")?,
                    actor_id: r.get("actor_id")?,
                    actor_name: r.get("actor_name")?,
                    action: r.get("action")?,
                    from_status: r.get("from_status")?,
                    to_status: r.get("to_status")?,
                    note: r.get("note")?,
                    attachments: r.get("attachments")?,
                })
            })
            .await
    }

    async fn case_materials(&self, case_id: Uuid) -> StoreResult<Vec<MaterialRow>> {
        let q = Q::new(
            "SELECT m.material_id, m.upload_id, m.substituted, m.source, m.evidence, m.added_seq, \
             u.file_name, u.file_type, u.size, u.sha256 \
             FROM case_materials m LEFT JOIN uploads u ON u.id = m.upload_id \
             WHERE m.case_id = $1 ORDER BY m.added_seq, ",
        )
        .push(self.db.material_order())
        .bind(case_id);
        self.db
            .fetch_all_with(q, |r| {
                let material_id: String = r.get("material_id")?;
                let evidence = r
                    .get::<Option<Value>>("evidence")?
                    .map(|v| self.seal.open_json(&evidence_aad(case_id, &material_id), v))
                    .transpose()?;
                Ok(MaterialRow {
                    evidence,
                    material_id,
                    upload_id: r.get("upload_id")?,
                    substituted: r.get("substituted")?,
                    source: r.get("source")?,
                    added_seq: r.get("added_seq")?,
                    file_name: r.get("file_name")?,
                    file_type: r.get("file_type")?,
                    size: r.get("size")?,
                    sha256: r.get("sha256")?,
                })
            })
            .await
    }

    async fn case_full(&self, key: CaseKey<'_>) -> StoreResult<Option<FullCase>> {
        let q = Q::new("SELECT c.*, ")
            .push(self.db.case_aggregates())
            .push(" FROM cases c");
        let q = match key {
            CaseKey::Id(id) => q.push(" WHERE c.id = ").push_bind(id),
            CaseKey::No(no) => q.push(" WHERE c.case_no = ").push_bind(no),
        };
        self.db
            .fetch_optional_with(q, |r| {
                let case = case_from_row(r, &self.seal)?;
                let bad = |what: &str, e: serde_json::Error| {
                    StoreError::Corrupt(format!("case {}: {what}: {e}", case.id))
                };
                let events: Vec<EventRow> =
                    serde_json::from_value(r.get("events_json")?).map_err(|e| bad("history", e))?;
                let found: Vec<MaterialJson> = serde_json::from_value(r.get("materials_json")?)
                    .map_err(|e| bad("materials", e))?;
                let materials = found
                    .into_iter()
                    .map(|m| m.open(case.id, &self.seal))
                    .collect::<StoreResult<_>>()?;
                Ok(FullCase {
                    case,
                    events,
                    materials,
                })
            })
            .await
    }

    async fn case_page(&self, f: &CaseFilter) -> StoreResult<super::CasePage> {
        self.case_page_of(f).await
    }

    async fn case_outbox(&self, case_id: Uuid) -> StoreResult<Vec<OutboxRow>> {
        let q = Q::new(
            "SELECT id, case_seq, department, event_type, payload FROM outbox \
             WHERE case_id = $1 ORDER BY case_seq, id",
        )
        .bind(case_id);
        self.db
            .fetch_all_with(q, |r| {
                Ok(OutboxRow {
                    id: r.get("id")?,
                    case_seq: r.get("case_seq")?,
                    department: r.get("department")?,
                    event_type: r.get("event_type")?,
                    payload: r.get("payload")?,
                })
            })
            .await
    }

    async fn idempotent(&self, scope: &str, key: &str) -> StoreResult<Option<IdemRecord>> {
        let q = Q::new(IDEM_SELECT).bind(scope).bind(key);
        self.db.fetch_optional_with(q, idem_from_row).await
    }

    async fn rate_case(
        &self,
        case_id: Uuid,
        rating: i16,
        comment: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let q = Q::new(
            "UPDATE cases SET rating = $1, rating_comment = $2, rated_at = $3 \
             WHERE id = $4 AND rating IS NULL",
        )
        .bind(rating)
        .bind(comment)
        .bind(at)
        .bind(case_id);
        Ok(self.db.execute(q).await? == 1)
    }

    async fn claim_window_cases(&self, account: Uuid, id_number: &str) -> StoreResult<u64> {
        let Some(index) = self
            .seal
            .index(APPLICANT_INDEX, &format!("person:{id_number}"))
        else {
            return Ok(0);
        };
        // Walk-in cases lodged before the index existed get theirs first (once: later
        // cases are indexed when lodged).
        let q = Q::new(
            "SELECT id, applicant_id_number FROM cases WHERE applicant_account IS NULL \
             AND applicant_index IS NULL AND applicant_kind = $1 AND applicant_id_number IS NOT NULL",
        )
        .bind(AccountKind::Person.code());
        for r in self.db.fetch_all(q).await? {
            let id: Uuid = r.get("id")?;
            let number = self.seal.open_text(
                &row_aad("cases", "applicant_id_number", &id.to_string()),
                r.get("applicant_id_number")?,
            )?;
            let Some(number) = number else { continue };
            let q = Q::new("UPDATE cases SET applicant_index = $1 WHERE id = $2")
                .bind(
                    self.seal
                        .index(APPLICANT_INDEX, &format!("person:{number}")),
                )
                .bind(id);
            self.db.execute(q).await?;
        }
        let q = Q::new(
            "UPDATE cases SET applicant_account = $1 \
             WHERE applicant_index = $2 AND applicant_account IS NULL AND applicant_kind = $3",
        )
        .bind(account)
        .bind(index)
        .bind(AccountKind::Person.code());
        self.db.execute(q).await
    }

    async fn notifications(&self, account: Uuid, limit: i64) -> StoreResult<Vec<NoticeRow>> {
        let q = Q::new(
            "SELECT * FROM notifications WHERE account_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(account)
        .bind(limit);
        self.db.fetch_all_with(q, notice_from_row).await
    }
}

/// Seals a case row's personal columns, bound to the case's id.
struct CaseSeal<'a> {
    seal: &'a RowSeal,
    id: String,
}

impl<'a> CaseSeal<'a> {
    fn new(seal: &'a RowSeal, id: Uuid) -> CaseSeal<'a> {
        CaseSeal {
            seal,
            id: id.to_string(),
        }
    }

    fn aad(&self, column: &str) -> String {
        row_aad("cases", column, &self.id)
    }

    fn text(&self, column: &str, v: Option<&str>) -> Option<String> {
        self.seal.text(&self.aad(column), v)
    }

    fn json(&self, column: &str, v: &Value) -> Value {
        self.seal.json(&self.aad(column), v)
    }
}

/// The columns of a new case row, in the order [`case_values`] binds them (`version`
/// is the 24th column and always 1).
macro_rules! case_columns {
    () => {
        "id, case_no, query_code, service_code, service_version, department, \
         applicant_account, applicant_kind, applicant_name, applicant_id_number, applicant_uscc, \
         applicant_phone, channel, intake_account, intake_hall, status, form, accepted_on, due_on, \
         legal_due_on, pauses, concluded_on, result, version, created_at, updated_at, provenance, \
         fields_filled, fields_prefilled, applicant_index, due_provisional"
    };
}

/// The values of a new case row: `$1` … `$30` (see [`case_values`]).
macro_rules! case_params {
    () => {
        "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22, $23, 1, $24, $25, $26, $27, $28, $29, $30"
    };
}

/// The `INSERT` of a case row.
const CASE_INSERT: &str = concat!(
    "INSERT INTO cases (",
    case_columns!(),
    ") VALUES (",
    case_params!(),
    ")"
);

/// PostgreSQL: a whole lodging as one statement (one round trip, no lock): claims the
/// idempotency key, then inserts the case with its first history entry, its audit record
/// (the first of the case's own chain, so linked to the chain's start without a read),
/// its materials (attaching their uploads), its outbox events and its notices. `$1` …
/// `$30` are the case ([`case_values`]); the idempotency record is `$31` … `$36` (all
/// null without a key); the history entry `$37` … `$45`; the audit record `$46` …
/// `$57`; materials, outbox events and notices are JSON arrays `$58` … `$60`; the
/// reads of personal data made for the lodging (a 免提交 check), linked onto their
/// subjects' chains from heads read just before, are `$61`. Two lodgings that read the
/// same subject at once collide on `(subject_index, seq)`: the loser's statement writes
/// nothing and the loser takes the transaction path, which queues on the chain's lock. Every
/// part but the key's claim hangs off `c`, which is empty when the key was used before:
/// then nothing is written and `created` is 0. Data-modifying CTEs all run, and the
/// foreign keys are checked at the statement's end, when the case row exists.
const LODGE_AT_ONCE: &str = concat!(
    "WITH idem AS (\
       INSERT INTO idempotency (scope, key, request_hash, status, response, created_at) \
       SELECT $31, $32, $33, $34, $35, $36 WHERE $31::text IS NOT NULL \
       ON CONFLICT (scope, key) DO NOTHING RETURNING 1), \
     go AS (SELECT 1 AS go WHERE $31::text IS NULL OR EXISTS (SELECT 1 FROM idem)), \
     c AS (INSERT INTO cases (",
    case_columns!(),
    ") SELECT ",
    case_params!(),
    " FROM go RETURNING id), \
     ev AS (INSERT INTO case_events (case_id, seq, at, actor, actor_id, actor_name, action, \
       from_status, to_status, note, attachments) \
       SELECT c.id, 1, $37, $38, $39, $40, $41, $42, $43, $44, $45 FROM c), \
     au AS (INSERT INTO audit_events (id, chain, seq, at, actor_kind, actor_id, action, target, \
       detail, link, prev_hash, hash) \
       SELECT $46, $47, $48, $49, $50, $51, $52, $53, $54, $55, $56, $57 FROM c), \
     mat AS (INSERT INTO case_materials (case_id, material_id, upload_id, substituted, source, \
       evidence, added_seq) \
       SELECT c.id, m.material_id, m.upload_id, m.substituted, m.source, m.evidence, 1 \
       FROM c, jsonb_to_recordset($58::jsonb) AS m(material_id text, upload_id uuid, \
         substituted boolean, source text, evidence jsonb)), \
     up AS (UPDATE uploads SET case_id = c.id FROM c WHERE uploads.id IN \
       (SELECT (x->>'upload_id')::uuid FROM jsonb_array_elements($58::jsonb) AS x \
        WHERE jsonb_typeof(x->'upload_id') = 'string')), \
     ob AS (INSERT INTO outbox (id, case_id, case_seq, event_type, payload, created_at, department) \
       SELECT o.id, c.id, 1, o.event_type, o.payload, $37, o.department \
       FROM c, jsonb_to_recordset($59::jsonb) AS o(id uuid, event_type text, payload jsonb, \
         department text)), \
     nt AS (INSERT INTO notifications (id, account_id, case_id, case_no, title_zh, title_en, \
       body_zh, body_en, created_at, email_state) \
       SELECT n.id, n.account_id, c.id, n.case_no, n.title_zh, n.title_en, n.body_zh, n.body_en, \
         n.created_at, 'pending' \
       FROM c, jsonb_to_recordset($60::jsonb) AS n(id uuid, account_id uuid, case_no text, \
         title_zh text, title_en text, body_zh text, body_en text, created_at timestamptz)), \
     acc AS (INSERT INTO data_access (id, subject_index, seq, at, subject_kind, resource, items, \
       reader_kind, reader_id, reader_name, purpose, service_code, case_no, prev_hash, hash, link) \
       SELECT a.id, a.subject_index, a.seq, a.at, a.subject_kind, a.resource, a.items, \
         a.reader_kind, a.reader_id, a.reader_name, a.purpose, a.service_code, a.case_no, \
         a.prev_hash, a.hash, a.link \
       FROM c, jsonb_to_recordset($61::jsonb) AS a(id uuid, subject_index text, seq bigint, \
         at timestamptz, subject_kind text, resource text, items jsonb, reader_kind text, \
         reader_id text, reader_name text, purpose text, service_code text, case_no text, \
         prev_hash text, hash text, link text)) \
     SELECT (SELECT COUNT(*) FROM c) AS created"
);

/// Binds a new case's row, sealed, as `$1` … `$30` of `q`.
fn case_values(q: Q, c: &CaseRow, seal: &RowSeal) -> Q {
    let sealed = CaseSeal::new(seal, c.id);
    q.bind(c.id)
        .bind(&c.case_no)
        .bind(&c.query_code)
        .bind(&c.service_code)
        .bind(&c.service_version)
        .bind(&c.department)
        .bind(c.applicant.account_id)
        .bind(c.applicant.kind.code())
        .bind(&c.applicant.name)
        .bind(sealed.text(
            "applicant_id_number",
            c.applicant.id_number.as_ref().map(|i| i.expose()),
        ))
        .bind(&c.applicant.uscc)
        .bind(sealed.text("applicant_phone", c.applicant.phone.as_deref()))
        .bind(&c.channel)
        .bind(c.intake_account)
        .bind(&c.intake_hall)
        .bind(&c.status)
        .bind(sealed.json("form", &c.form))
        .bind(c.accepted_on)
        .bind(c.due_on)
        .bind(c.legal_due_on)
        .bind(&c.pauses)
        .bind(c.concluded_on)
        .bind(&c.result)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(&c.provenance)
        .bind(c.fields_filled)
        .bind(c.fields_prefilled)
        .bind(applicant_index(seal, c))
        .bind(c.due_provisional)
}

/// A material as the one-statement read aggregates it (see `Db::case_aggregates`).
#[derive(serde::Deserialize)]
struct MaterialJson {
    material_id: String,
    upload_id: Option<Uuid>,
    /// A boolean on PostgreSQL, 0 or 1 on SQLite.
    substituted: Value,
    source: Option<String>,
    /// Sealed; on SQLite the JSON text it is stored as.
    evidence: Option<Value>,
    added_seq: i32,
    file_name: Option<String>,
    file_type: Option<String>,
    size: Option<i64>,
    sha256: Option<String>,
}

impl MaterialJson {
    fn open(self, case_id: Uuid, seal: &RowSeal) -> StoreResult<MaterialRow> {
        let evidence = self
            .evidence
            .filter(|v| !v.is_null())
            .map(|v| seal.open_json(&evidence_aad(case_id, &self.material_id), v))
            .transpose()?;
        Ok(MaterialRow {
            evidence,
            substituted: matches!(self.substituted, Value::Bool(true))
                || self.substituted.as_i64() == Some(1),
            material_id: self.material_id,
            upload_id: self.upload_id,
            source: self.source,
            added_seq: self.added_seq,
            file_name: self.file_name,
            file_type: self.file_type,
            size: self.size,
            sha256: self.sha256,
        })
    }
}

impl SqlStore {
    /// A new case in one transaction (SQLite; PostgreSQL when the one statement lost a
    /// race for a subject's chain head).
    async fn create_case_tx(&self, c: &CaseRow, w: CaseWrite<'_>) -> StoreResult<WriteOutcome> {
        let mut tx = self.db.begin().await?;
        if let Some(prior) = claim_idem(&mut tx, w.idem).await? {
            tx.rollback().await?;
            return Ok(WriteOutcome::Replay(prior));
        }
        let q = case_values(Q::new(CASE_INSERT), c, &self.seal);
        match tx.execute(q).await {
            Ok(_) => {}
            // The case number is taken: the caller draws another.
            Err(e) if is_unique_violation(&e) => {
                tx.rollback().await?;
                return Ok(WriteOutcome::Conflict);
            }
            Err(e) => return Err(e),
        }
        write_side_effects(&mut tx, c, 1, w, &self.seal, &self.audit).await?;
        tx.commit().await?;
        Ok(WriteOutcome::Done)
    }

    /// A case's new state in one transaction.
    async fn update_case_tx(&self, c: &CaseRow, w: CaseWrite<'_>) -> StoreResult<WriteOutcome> {
        let mut tx = self.db.begin().await?;
        if let Some(prior) = claim_idem(&mut tx, w.idem).await? {
            tx.rollback().await?;
            return Ok(WriteOutcome::Replay(prior));
        }
        let q = Q::new(
            "UPDATE cases SET status = $1, form = $2, accepted_on = $3, due_on = $4, \
             legal_due_on = $5, pauses = $6, parts = $7, concluded_on = $8, result = $9, \
             updated_at = $10, due_provisional = $13, version = version + 1 \
             WHERE id = $11 AND version = $12",
        )
        .bind(&c.status)
        .bind(CaseSeal::new(&self.seal, c.id).json("form", &c.form))
        .bind(c.accepted_on)
        .bind(c.due_on)
        .bind(c.legal_due_on)
        .bind(&c.pauses)
        .bind(&c.parts)
        .bind(c.concluded_on)
        .bind(&c.result)
        .bind(c.updated_at)
        .bind(c.id)
        .bind(c.version)
        .bind(c.due_provisional);
        if tx.execute(q).await? != 1 {
            // Changed meanwhile: the caller re-reads and decides again.
            tx.rollback().await?;
            return Ok(WriteOutcome::Conflict);
        }
        let q =
            Q::new("SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM case_events WHERE case_id = $1")
                .bind(c.id);
        let seq = tx.fetch_one(q).await?.get::<i32>("seq")?;
        write_side_effects(&mut tx, c, seq, w, &self.seal, &self.audit).await?;
        tx.commit().await?;
        Ok(WriteOutcome::Done)
    }
}

/// The uniqueness of a position in a subject's `data_access` chain.
const ACCESS_SEQ_KEY: &str = "data_access_subject_index_seq_key";

/// Runs of a case transaction that lose a subject's chain head, before it fails.
const CHAIN_RACE_TRIES: u32 = 20;

/// Runs a case transaction again when its append to a subject's chain was refused: a
/// transaction appends under the chain's lock, but a one-statement lodging (which takes
/// no lock) can take the head between the read and the insert. Nothing was written; the
/// next run reads the new head.
async fn retry_on_chain_race<F, Fut>(mut run: F) -> StoreResult<WriteOutcome>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<WriteOutcome>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match run().await {
            Err(e) if tries < CHAIN_RACE_TRIES && constraint_of(&e) == Some(ACCESS_SEQ_KEY) => {}
            other => return other,
        }
    }
}

/// The blind index of a walk-in person's resident ID number, by which the case finds
/// its owner's account later; none for an online application (it has its account) or
/// an enterprise's case (its users see it by USCC).
fn applicant_index(seal: &RowSeal, c: &CaseRow) -> Option<String> {
    if c.applicant.account_id.is_some() || c.applicant.kind != AccountKind::Person {
        return None;
    }
    let id = c.applicant.id_number.as_ref()?;
    seal.index(APPLICANT_INDEX, &format!("person:{}", id.expose()))
}

/// A material's evidence is bound to its case and material id.
fn evidence_aad(case_id: Uuid, material_id: &str) -> String {
    row_aad(
        "case_materials",
        "evidence",
        &format!("{case_id}/{material_id}"),
    )
}

const IDEM_SELECT: &str = "SELECT * FROM idempotency WHERE scope = $1 AND key = $2";

/// Inserts the idempotency record, if the request carried a key; when the key was used
/// before, returns that answer instead. Two identical requests racing are serialised by
/// the primary key: one inserts, the other reads its answer.
async fn claim_idem(tx: &mut Tx, idem: Option<&IdemRecord>) -> StoreResult<Option<IdemRecord>> {
    let Some(idem) = idem else { return Ok(None) };
    let q = Q::new(
        "INSERT INTO idempotency (scope, key, request_hash, status, response, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(&idem.scope)
    .bind(&idem.key)
    .bind(&idem.request_hash)
    .bind(idem.status as i16)
    .bind(&idem.response)
    .bind(Utc::now());
    if tx.execute(q).await? == 1 {
        return Ok(None);
    }
    let q = Q::new(IDEM_SELECT).bind(&idem.scope).bind(&idem.key);
    idem_from_row(&tx.fetch_one(q).await?).map(Some)
}

fn idem_from_row(r: &Row) -> StoreResult<IdemRecord> {
    Ok(IdemRecord {
        scope: r.get("scope")?,
        key: r.get("key")?,
        request_hash: r.get("request_hash")?,
        status: r.get::<i16>("status")? as u16,
        response: r.get("response")?,
    })
}

/// The `INSERT` of a history entry at position `seq` of case `case_id`.
pub(super) fn event_insert(case_id: Uuid, seq: i32, e: &EventRow) -> Q {
    event_values(
        Q::new(
            "INSERT INTO case_events (case_id, seq, at, actor, actor_id, actor_name, action, \
             from_status, to_status, note, attachments) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(case_id)
        .bind(seq),
        e,
    )
}

/// Binds a history entry's nine values (`at` … `attachments`) as the next placeholders.
fn event_values(q: Q, e: &EventRow) -> Q {
    q.bind(e.at)
        .bind(&e.actor)
        .bind(&e.actor_id)
        .bind(&e.actor_name)
        .bind(&e.action)
        .bind(&e.from_status)
        .bind(&e.to_status)
        .bind(&e.note)
        .bind(&e.attachments)
}

/// The audit record of a case write at history position `seq`.
fn case_action(c: &CaseRow, seq: i32, w: &CaseWrite<'_>) -> super::audit::NewAuditEvent {
    let e = w.event;
    super::audit::NewAuditEvent {
        chain: format!("case:{}", c.case_no),
        at: e.at.trunc_subsecs(6),
        actor_kind: e.actor.clone(),
        actor_id: e.actor_id.clone(),
        action: format!("case.{}", e.action.as_deref().unwrap_or("lodge")),
        target: c.case_no.clone(),
        detail: serde_json::json!({
            "history_seq": seq,
            "from": e.from_status,
            "to": e.to_status,
            "materials": w.materials.iter().map(|m| m.material_id.as_str()).collect::<Vec<_>>(),
        }),
    }
}

impl SqlStore {
    /// [`LODGE_AT_ONCE`] with its values: a new case in one round trip (two when the
    /// lodging read personal data: the subjects' chain heads first). `None` when such a
    /// read lost the race for its chain head: nothing was written.
    async fn create_case_at_once(
        &self,
        c: &CaseRow,
        w: CaseWrite<'_>,
    ) -> StoreResult<Option<WriteOutcome>> {
        let e = w.event;
        let action = case_action(c, 1, &w);
        let audit_id = Uuid::now_v7();
        let (link_kind, hash) = crate::audit::chain::link(
            self.audit.get(),
            crate::audit::chain::CHAIN_START,
            1,
            audit_id,
            &action.body(),
        );
        let materials: Vec<Value> = w
            .materials
            .iter()
            .map(|m| {
                serde_json::json!({
                    "material_id": m.material_id,
                    "upload_id": m.upload_id,
                    "substituted": m.substituted,
                    "source": m.source,
                    "evidence": m.evidence.as_ref()
                        .map(|v| self.seal.json(&evidence_aad(c.id, &m.material_id), v)),
                })
            })
            .collect();
        let outbox: Vec<Value> = w
            .outbox
            .iter()
            .map(|o| {
                serde_json::json!({
                    "id": o.id,
                    "event_type": o.event_type,
                    "payload": o.payload,
                    "department": o.department,
                })
            })
            .collect();
        let notices: Vec<Value> = w
            .notices
            .iter()
            .map(|n| {
                serde_json::json!({
                    "id": n.id,
                    "account_id": n.account_id,
                    "case_no": n.case_no,
                    "title_zh": n.title_zh,
                    "title_en": n.title_en,
                    "body_zh": n.body_zh,
                    "body_en": n.body_en,
                    "created_at": n.created_at.trunc_subsecs(6),
                })
            })
            .collect();
        let idem = w.idem;
        let access = self.linked_access(c, w.access).await?;
        let q = case_values(Q::new(LODGE_AT_ONCE), c, &self.seal)
            .bind(idem.map(|i| i.scope.clone()))
            .bind(idem.map(|i| i.key.clone()))
            .bind(idem.map(|i| i.request_hash.clone()))
            .bind(idem.map(|i| i.status as i16))
            .bind(idem.map(|i| i.response.clone()))
            .bind(idem.map(|_| Utc::now()));
        let q = event_values(q, e);
        let link = super::audit::Link {
            id: audit_id,
            seq: 1,
            kind: link_kind,
            prev: crate::audit::chain::CHAIN_START,
            hash: &hash,
        };
        let q = super::audit::event_values(q, &action, &link)
            .bind(Value::Array(materials))
            .bind(Value::Array(outbox))
            .bind(Value::Array(notices))
            .bind(Value::Array(access));
        let created = match self.db.fetch_one(q).await {
            Ok(r) => r.get::<i64>("created")?,
            // Another write appended to a subject's chain first: nothing was written.
            Err(e) if constraint_of(&e) == Some(ACCESS_SEQ_KEY) => {
                return Ok(None);
            }
            // The case number is taken (or, as unlikely, its audit chain exists): the
            // caller draws another. Nothing was written, the key's claim included.
            Err(e) if is_unique_violation(&e) => return Ok(Some(WriteOutcome::Conflict)),
            Err(e) => return Err(e),
        };
        match (created, idem) {
            (1, _) => Ok(Some(WriteOutcome::Done)),
            // The key was used before: its answer, read after the statement so it is the
            // committed one.
            (_, Some(idem)) => {
                let q = Q::new(IDEM_SELECT).bind(&idem.scope).bind(&idem.key);
                let prior = idem_from_row(&self.db.fetch_one(q).await?)?;
                Ok(Some(WriteOutcome::Replay(prior)))
            }
            (n, None) => Err(StoreError::Corrupt(format!(
                "a lodging without a key wrote {n} cases"
            ))),
        }
    }
}

/// The constraint a database error names, if any.
fn constraint_of(e: &StoreError) -> Option<&str> {
    match e {
        StoreError::Database(e) => e.as_database_error().and_then(|d| d.constraint()),
        _ => None,
    }
}

impl SqlStore {
    /// A lodging's reads of personal data as `data_access` rows (JSON), each linked onto
    /// its subject's chain head as it stands now (read in one statement, without a lock:
    /// the insert's `(subject_index, seq)` uniqueness catches a race).
    async fn linked_access(
        &self,
        c: &CaseRow,
        reads: &[super::NewAccess],
    ) -> StoreResult<Vec<Value>> {
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        let subjects: Vec<&str> = reads.iter().map(|r| r.subject_index.as_str()).collect();
        let q = Q::new(
            "SELECT DISTINCT ON (subject_index) subject_index, seq, hash FROM data_access \
             WHERE subject_index IN (",
        )
        .push_list(subjects)
        .push(") ORDER BY subject_index, seq DESC");
        let mut heads = std::collections::HashMap::new();
        for r in self.db.fetch_all(q).await? {
            heads.insert(
                r.get::<String>("subject_index")?,
                (r.get::<i64>("seq")?, r.get::<String>("hash")?),
            );
        }
        let mut rows = Vec::with_capacity(reads.len());
        for read in reads {
            let read = super::NewAccess {
                at: read.at.trunc_subsecs(6),
                case_no: Some(c.case_no.clone()),
                ..read.clone()
            };
            let (seq, prev) = heads
                .get(&read.subject_index)
                .map(|(seq, hash)| (seq + 1, hash.clone()))
                .unwrap_or((1, crate::audit::chain::CHAIN_START.to_owned()));
            let id = Uuid::now_v7();
            let (link, hash) = crate::audit::chain::link(
                self.audit.get(),
                &prev,
                seq,
                id,
                &super::shared::access_body(&read),
            );
            heads.insert(read.subject_index.clone(), (seq, hash.clone()));
            rows.push(serde_json::json!({
                "id": id,
                "subject_index": read.subject_index,
                "seq": seq,
                "at": read.at,
                "subject_kind": read.subject_kind,
                "resource": read.resource,
                "items": read.items,
                "reader_kind": read.reader_kind,
                "reader_id": read.reader_id,
                "reader_name": read.reader_name,
                "purpose": read.purpose,
                "service_code": read.service_code,
                "case_no": read.case_no,
                "prev_hash": prev,
                "hash": hash,
                "link": link,
            }));
        }
        Ok(rows)
    }
}

/// History entry, materials, uploads, outbox, notices (queued for mail: `pending`) and
/// audit records of one case write, at history position `seq`.
async fn write_side_effects(
    tx: &mut Tx,
    c: &CaseRow,
    seq: i32,
    w: CaseWrite<'_>,
    seal: &RowSeal,
    audit: &super::audit::LinkKey,
) -> StoreResult<()> {
    let e = w.event;
    // Every case write is an action on the case: its own chain's record, in the same
    // transaction (a step that cannot be recorded does not happen).
    let action = case_action(c, seq, &w);
    super::audit::append_event_in(tx, &action, audit).await?;
    tx.execute(event_insert(c.id, seq, e)).await?;
    for m in w.materials {
        let evidence = m
            .evidence
            .as_ref()
            .map(|v| seal.json(&evidence_aad(c.id, &m.material_id), v));
        let q = Q::new(
            "INSERT INTO case_materials (case_id, material_id, upload_id, substituted, source, \
             evidence, added_seq) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.id)
        .bind(&m.material_id)
        .bind(m.upload_id)
        .bind(m.substituted)
        .bind(&m.source)
        .bind(evidence)
        .bind(seq);
        tx.execute(q).await?;
        if let Some(u) = m.upload_id {
            let q = Q::new("UPDATE uploads SET case_id = $1 WHERE id = $2")
                .bind(c.id)
                .bind(u);
            tx.execute(q).await?;
        }
    }
    for o in w.outbox {
        let q = Q::new(
            "INSERT INTO outbox (id, case_id, case_seq, event_type, payload, created_at, department) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(o.id)
        .bind(c.id)
        .bind(seq)
        .bind(&o.event_type)
        .bind(&o.payload)
        .bind(e.at)
        .bind(&o.department);
        tx.execute(q).await?;
    }
    for n in w.notices {
        let q = Q::new(
            "INSERT INTO notifications (id, account_id, case_id, case_no, title_zh, title_en, \
             body_zh, body_en, created_at, email_state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending')",
        )
        .bind(n.id)
        .bind(n.account_id)
        .bind(c.id)
        .bind(&n.case_no)
        .bind(&n.title_zh)
        .bind(&n.title_en)
        .bind(&n.body_zh)
        .bind(&n.body_en)
        .bind(n.created_at);
        tx.execute(q).await?;
    }
    for read in w.access {
        let read = super::NewAccess {
            at: read.at.trunc_subsecs(6),
            case_no: Some(c.case_no.clone()),
            ..read.clone()
        };
        append_access_in(tx, &read, audit).await?;
    }
    Ok(())
}

pub(super) fn case_from_row(r: &Row, seal: &RowSeal) -> StoreResult<CaseRow> {
    let id: Uuid = r.get("id")?;
    let aad = |column: &str| row_aad("cases", column, &id.to_string());
    let corrupt = |what: &str| StoreError::Corrupt(format!("case {id}: bad {what}"));
    let kind: String = r.get("applicant_kind")?;
    let id_number = seal
        .open_text(&aad("applicant_id_number"), r.get("applicant_id_number")?)?
        .map(|s| ResidentId::parse(&s).map_err(|_| corrupt("id number")))
        .transpose()?;
    Ok(CaseRow {
        id,
        case_no: r.get("case_no")?,
        query_code: r.get("query_code")?,
        service_code: r.get("service_code")?,
        service_version: r.get("service_version")?,
        department: r.get("department")?,
        applicant: CaseApplicant {
            account_id: r.get("applicant_account")?,
            kind: AccountKind::from_code(&kind).ok_or_else(|| corrupt("applicant kind"))?,
            name: r.get("applicant_name")?,
            id_number,
            uscc: r.get("applicant_uscc")?,
            phone: seal.open_text(&aad("applicant_phone"), r.get("applicant_phone")?)?,
        },
        channel: r.get("channel")?,
        intake_account: r.get("intake_account")?,
        intake_hall: r.get("intake_hall")?,
        status: r.get("status")?,
        form: seal.open_json(&aad("form"), r.get("form")?)?,
        accepted_on: r.get("accepted_on")?,
        due_on: r.get("due_on")?,
        legal_due_on: r.get("legal_due_on")?,
        due_provisional: r.get("due_provisional")?,
        pauses: r.get("pauses")?,
        parts: r.get("parts")?,
        concluded_on: r.get("concluded_on")?,
        result: r.get("result")?,
        rating: r.get("rating")?,
        rating_comment: r.get("rating_comment")?,
        rated_at: r.get("rated_at")?,
        provenance: r.get("provenance")?,
        fields_filled: r.get("fields_filled")?,
        fields_prefilled: r.get("fields_prefilled")?,
        version: r.get("version")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

/// A notice as the applicant sees it (the mail queue reads the same columns).
pub(super) fn notice_from_row(r: &Row) -> StoreResult<NoticeRow> {
    Ok(NoticeRow {
        id: r.get("id")?,
        account_id: r.get("account_id")?,
        case_id: r.get("case_id")?,
        case_no: r.get("case_no")?,
        title_zh: r.get("title_zh")?,
        title_en: r.get("title_en")?,
        body_zh: r.get("body_zh")?,
        body_en: r.get("body_en")?,
        created_at: r.get("created_at")?,
        read_at: r.get("read_at")?,
    })
}
