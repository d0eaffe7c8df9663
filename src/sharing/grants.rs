//! Sharing requests and grants (共享申请与授权) for conditional (有条件共享) resources.
//!
//! A consuming department asks for a resource for one of its services or one of its
//! information systems, with a purpose, a legal basis, the items it needs and the period.
//! The providing department approves (perhaps fewer items, with an expiry), refuses with a
//! reason, or asks for more (the requester answers and it returns to the provider). Every
//! step is an event with its author and time. An approval makes a [`Grant`]; the
//! catalogue's `grants` become grants at start ([`import_catalogue`]: all items, no expiry,
//! idempotent, a revoked one stays revoked).
//!
//! Enforcement: every prefill asks [`service_entitlements`] (one indexed read, never cached)
//! and reads only granted items; the department data API ([`read_data`]) answers 无条件
//! resources to any department and 有条件 ones only under a live grant of the caller's
//! systems, limited to its items. Each read under a grant is counted on the grant.
//!
//! The rules that need no I/O ([`grant_state`], [`split_items`], [`may_request`],
//! [`check_request`], [`check_approval`], [`next_state`], [`catalogue_grants`],
//! [`read_basis`]) are unit-tested below.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{self, Reader};
use super::provider::ReadPurpose;
use crate::domain::catalogue::{Catalogue, Resource, ShareType, Subject};
use crate::domain::ids::{ResidentId, Uscc};
use crate::domain::lang::Lang;
use crate::http::error::{AppError, FieldError, Message};
use crate::state::AppState;
use crate::store::grants::{Grant, Party, RequestEvent, RequestStep, SharingRequest};
use crate::store::{NewAccess, Store, StoreError};

/// Request states.
pub mod state {
    /// Waiting for the provider.
    pub const PENDING: &str = "pending";
    /// The provider asked for more; waiting for the requester.
    pub const MORE_INFO: &str = "more_info";
    /// Approved: a grant was made.
    pub const APPROVED: &str = "approved";
    /// Refused, with a reason.
    pub const REFUSED: &str = "refused";
}

/// Longest purpose, legal basis, note or reason (characters).
pub const MAX_TEXT: usize = 2000;

// ---------------------------------------------------------------------------------------
// Pure rules
// ---------------------------------------------------------------------------------------

/// Where a grant stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    /// It may be read under.
    Live,
    /// Its validity has not begun.
    NotYet,
    /// Past its expiry.
    Expired,
    /// Revoked by the provider.
    Revoked,
}

impl GrantState {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            GrantState::Live => "live",
            GrantState::NotYet => "not_yet",
            GrantState::Expired => "expired",
            GrantState::Revoked => "revoked",
        }
    }

    /// Label.
    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            GrantState::Live => lang.pick("有效", "Live"),
            GrantState::NotYet => lang.pick("未生效", "Not yet valid"),
            GrantState::Expired => lang.pick("已到期", "Expired"),
            GrantState::Revoked => lang.pick("已撤销", "Revoked"),
        }
    }
}

/// A grant's state at `now`: a revocation wins over everything, then the validity window.
pub fn grant_state(g: &Grant, now: DateTime<Utc>) -> GrantState {
    if g.revoked_at.is_some_and(|r| r <= now) {
        GrantState::Revoked
    } else if g.valid_until.is_some_and(|u| u <= now) {
        GrantState::Expired
    } else if g.valid_from > now {
        GrantState::NotYet
    } else {
        GrantState::Live
    }
}

/// The wanted items a grant covers, and those it does not (in the order wanted).
pub fn split_items(wanted: &[String], granted: &[String]) -> (Vec<String>, Vec<String>) {
    wanted
        .iter()
        .cloned()
        .partition(|w| granted.iter().any(|g| g == w))
}

/// Whether a resource can be requested: only 有条件 ones (无条件 needs no request,
/// 不予共享 can never be shared).
pub fn may_request(res: &Resource) -> Result<(), AppError> {
    match res.share_type {
        ShareType::Conditional => Ok(()),
        ShareType::Unconditional => Err(AppError::Unprocessable(Message::new(
            format!(
                "“{}”（{}）为无条件共享资源，无需申请，可直接使用。",
                res.name, res.code
            ),
            format!(
                "\"{}\" ({}) is shared unconditionally: no request is needed, use it directly.",
                res.name_en, res.code
            ),
        ))),
        ShareType::NotShared => Err(AppError::Unprocessable(Message::new(
            format!(
                "“{}”（{}）为不予共享资源，不能申请共享。",
                res.name, res.code
            ),
            format!(
                "\"{}\" ({}) is not shared (不予共享) and cannot be requested.",
                res.name_en, res.code
            ),
        ))),
    }
}

fn field(name: &str, zh: impl Into<String>, en: impl Into<String>) -> FieldError {
    FieldError {
        field: name.to_owned(),
        message: Message::new(zh, en),
    }
}

fn check_text(errors: &mut Vec<FieldError>, name: &str, v: &str, zh: &str, en: &str) {
    if v.trim().is_empty() {
        errors.push(field(
            name,
            format!("请填写{zh}。"),
            format!("Please give the {en}."),
        ));
    } else if v.chars().count() > MAX_TEXT {
        errors.push(field(
            name,
            format!("{zh}不能超过{MAX_TEXT}字。"),
            format!("The {en} must be at most {MAX_TEXT} characters."),
        ));
    }
}

/// The items of a request or an approval: at least one, each an item of the resource,
/// none twice.
fn check_item_list(errors: &mut Vec<FieldError>, res: &Resource, items: &[String]) {
    if items.is_empty() {
        errors.push(field(
            "items",
            "请至少选择一个数据项。",
            "Choose at least one data item.",
        ));
    }
    for (i, it) in items.iter().enumerate() {
        if res.item(it).is_none() {
            errors.push(field(
                "items",
                format!("“{}”没有数据项“{it}”。", res.name),
                format!("\"{}\" has no data item \"{it}\".", res.name_en),
            ));
        } else if items[..i].contains(it) {
            errors.push(field(
                "items",
                format!("数据项“{it}”重复。"),
                format!("The data item \"{it}\" is listed twice."),
            ));
        }
    }
}

/// The checks of a new request's own fields (the consumer is checked against the
/// catalogue and the registry by the caller).
pub fn check_request(
    res: &Resource,
    purpose: &str,
    legal_basis: &str,
    items: &[String],
    from: NaiveDate,
    until: Option<NaiveDate>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_text(&mut errors, "purpose", purpose, "用途", "purpose");
    check_text(
        &mut errors,
        "legal_basis",
        legal_basis,
        "依据",
        "legal basis",
    );
    check_item_list(&mut errors, res, items);
    if until.is_some_and(|u| u < from) {
        errors.push(field(
            "period_until",
            "截止日期不能早于开始日期。",
            "The end date cannot be before the start date.",
        ));
    }
    errors
}

/// The checks of an approval: the items are some of those asked for, and an expiry is
/// in the future.
pub fn check_approval(
    res: &Resource,
    requested: &[String],
    approved: &[String],
    valid_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_item_list(&mut errors, res, approved);
    let (_, extra) = split_items(approved, requested);
    if !extra.is_empty() {
        errors.push(field(
            "items",
            format!("只能批准所申请的数据项（未申请：{}）。", extra.join("、")),
            format!(
                "Only the items asked for can be approved (not asked for: {}).",
                extra.join(", ")
            ),
        ));
    }
    if valid_until.is_some_and(|u| u <= now) {
        errors.push(field(
            "valid_until",
            "有效期须晚于现在。",
            "The expiry must be in the future.",
        ));
    }
    errors
}

/// Who acts on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The providing department.
    Provider,
    /// The requesting department.
    Consumer,
}

/// The state a step leads to, if `side` may take it in `from`: the provider approves,
/// refuses or asks while it is pending; the requester answers while more is asked for.
pub fn next_state(from: &str, action: &str, side: Side) -> Option<&'static str> {
    match (from, action, side) {
        (state::PENDING, "approve", Side::Provider) => Some(state::APPROVED),
        (state::PENDING, "refuse", Side::Provider) => Some(state::REFUSED),
        (state::PENDING, "ask", Side::Provider) => Some(state::MORE_INFO),
        (state::MORE_INFO, "answer", Side::Consumer) => Some(state::PENDING),
        _ => None,
    }
}

/// The steps `side` may take on a request in `state`.
pub fn actions(state: &str, side: Side) -> Vec<&'static str> {
    ["approve", "refuse", "ask", "answer"]
        .into_iter()
        .filter(|a| next_state(state, a, side).is_some())
        .collect()
}

/// The catalogue's grants (a conditional resource's `grants` naming services) as grants
/// of every item, without expiry, to the service's department. Pure.
pub fn catalogue_grants(cat: &Catalogue, now: DateTime<Utc>) -> Vec<Grant> {
    let mut out = Vec::new();
    for res in cat.resources().iter() {
        if res.share_type != ShareType::Conditional {
            continue;
        }
        for code in &res.grants {
            let Some(service) = cat.service(code) else {
                continue;
            };
            out.push(Grant {
                id: Uuid::now_v7(),
                resource: res.code.clone(),
                provider: res.provider.clone(),
                consumer_department: service.department.clone(),
                consumer_kind: "service".into(),
                consumer: code.clone(),
                items: res.items.iter().map(|i| i.id.clone()).collect(),
                valid_from: now,
                valid_until: None,
                revoked_at: None,
                revoked_by: None,
                revoked_reason: None,
                source: "import".into(),
                request_id: None,
                import_key: Some(format!("{}/{}", res.code, code)),
                reads: 0,
                last_read_at: None,
                created_at: now,
            });
        }
    }
    out
}

/// On what ground a department reads a resource through the data API.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadBasis {
    /// 无条件共享: any department.
    Open,
    /// The provider reads its own resource.
    Own,
    /// Under these live grants of the caller's systems (their items together).
    Granted(Vec<Grant>),
}

/// Whether `department` may read `res` through the data API, given the live grants of its
/// systems for it (already limited to one system if the caller named one). Pure.
pub fn read_basis(
    res: &Resource,
    department: &str,
    live: Vec<Grant>,
) -> Result<ReadBasis, AppError> {
    match res.share_type {
        ShareType::NotShared => Err(AppError::Forbidden(Message::new(
            format!("“{}”（{}）为不予共享资源。", res.name, res.code),
            format!("\"{}\" ({}) is not shared.", res.name_en, res.code),
        ))),
        ShareType::Unconditional => Ok(ReadBasis::Open),
        ShareType::Conditional if res.provider == department => Ok(ReadBasis::Own),
        ShareType::Conditional if !live.is_empty() => Ok(ReadBasis::Granted(live)),
        ShareType::Conditional => Err(AppError::Forbidden(Message::new(
            format!(
                "“{}”（{}）为有条件共享资源，贵部门的信息系统没有有效的共享授权。请先提交共享申请。",
                res.name, res.code
            ),
            format!(
                "\"{}\" ({}) is shared on conditions and no system of your department holds a live grant for it. File a sharing request first.",
                res.name_en, res.code
            ),
        ))),
    }
}

/// The end of a day in China time (UTC+8), as a moment.
pub fn end_of_day_china(d: NaiveDate) -> DateTime<Utc> {
    let next = d
        .succ_opt()
        .unwrap_or(d)
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default();
    // 00:00 of the next day at UTC+8 is 16:00 UTC of the day itself.
    Utc.from_utc_datetime(&next) - Duration::hours(8)
}

// ---------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------

/// A data item with its names.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SharingItemView {
    /// Item id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Name (English).
    pub name_en: String,
}

/// A grant, as the provider, the consumer and the operator see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SharingGrantView {
    /// Id.
    pub id: String,
    /// Resource code.
    pub resource: String,
    /// Resource name.
    pub resource_name: String,
    /// Resource name (English).
    pub resource_name_en: String,
    /// Providing department (USCC).
    pub provider: String,
    /// Its name.
    pub provider_name: String,
    /// Its name (English).
    pub provider_name_en: String,
    /// Consuming department (USCC).
    pub consumer_department: String,
    /// Its name.
    pub consumer_department_name: String,
    /// Its name (English).
    pub consumer_department_name_en: String,
    /// `service` or `system`.
    pub consumer_kind: String,
    /// Service code or system id.
    pub consumer: String,
    /// The service's or system's name.
    pub consumer_name: String,
    /// Its English name (a system's name is its only one).
    pub consumer_name_en: String,
    /// The items granted.
    pub items: Vec<SharingItemView>,
    /// Valid from.
    pub valid_from: DateTime<Utc>,
    /// Valid until (null: no expiry).
    pub valid_until: Option<DateTime<Utc>>,
    /// Revoked at.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Revoked by.
    pub revoked_by: Option<String>,
    /// Why.
    pub revoked_reason: Option<String>,
    /// `request` or `import` (the catalogue's bindings at start).
    pub source: String,
    /// The request it came from.
    pub request_id: Option<String>,
    /// `live`, `not_yet`, `expired` or `revoked`.
    pub state: String,
    /// Reads under it.
    pub reads: i64,
    /// The last read.
    pub last_read_at: Option<DateTime<Utc>>,
}

/// A sharing request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SharingRequestView {
    /// Id.
    pub id: String,
    /// Resource code.
    pub resource: String,
    /// Resource name.
    pub resource_name: String,
    /// Resource name (English).
    pub resource_name_en: String,
    /// Providing department (USCC).
    pub provider: String,
    /// Its name.
    pub provider_name: String,
    /// Its name (English).
    pub provider_name_en: String,
    /// Requesting department (USCC).
    pub consumer_department: String,
    /// Its name.
    pub consumer_department_name: String,
    /// Its name (English).
    pub consumer_department_name_en: String,
    /// `service` or `system`.
    pub consumer_kind: String,
    /// Service code or system id.
    pub consumer: String,
    /// The service's or system's name.
    pub consumer_name: String,
    /// Its English name.
    pub consumer_name_en: String,
    /// What for.
    pub purpose: String,
    /// The legal basis.
    pub legal_basis: String,
    /// The items asked for.
    pub items: Vec<SharingItemView>,
    /// From.
    pub period_from: NaiveDate,
    /// Until (null: open-ended).
    pub period_until: Option<NaiveDate>,
    /// `pending`, `more_info`, `approved` or `refused`.
    pub state: String,
    /// The grant an approval made.
    pub grant_id: Option<String>,
    /// Who asked.
    pub created_name: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last step.
    pub updated_at: DateTime<Utc>,
}

/// One step of a request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SharingEventView {
    /// 1, 2, …
    pub seq: i32,
    /// `submitted`, `approved`, `refused`, `asked` or `answered`.
    pub action: String,
    /// Reason, question or answer.
    pub note: String,
    /// The items approved (approval only).
    pub items: Option<Vec<String>>,
    /// The expiry given (approval only).
    pub valid_until: Option<DateTime<Utc>>,
    /// Who.
    pub author_name: String,
    /// Their department (USCC).
    pub department: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A request with its steps and what the reader may do now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SharingRequestDetail {
    /// The request.
    pub request: SharingRequestView,
    /// Its steps, in order.
    pub events: Vec<SharingEventView>,
    /// The steps the reader's department may take now (`approve`, `refuse`, `ask`,
    /// `answer`).
    pub actions: Vec<String>,
    /// The grant an approval made.
    pub grant: Option<SharingGrantView>,
}

fn item_views(res: Option<&Resource>, ids: &[String]) -> Vec<SharingItemView> {
    ids.iter()
        .map(|id| {
            let it = res.and_then(|r| r.item(id));
            SharingItemView {
                id: id.clone(),
                name: it.map(|i| i.name.clone()).unwrap_or_else(|| id.clone()),
                name_en: it.map(|i| i.name_en.clone()).unwrap_or_else(|| id.clone()),
            }
        })
        .collect()
}

/// Names of departments, services and systems for views.
pub struct Names {
    systems: BTreeMap<Uuid, String>,
}

impl Names {
    /// Reads the registry's system names once.
    pub async fn load(app: &AppState) -> Result<Names, StoreError> {
        let systems = app
            .store
            .systems(None)
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
        Ok(Names { systems })
    }

    fn dept(cat: &Catalogue, uscc: &str) -> (String, String) {
        cat.department(uscc)
            .map(|d| (d.name.clone(), d.name_en.clone()))
            .unwrap_or_else(|| (uscc.to_owned(), uscc.to_owned()))
    }

    fn consumer(&self, cat: &Catalogue, kind: &str, id: &str) -> (String, String) {
        if kind == "service" {
            cat.service(id)
                .map(|s| (s.name.clone(), s.name_en.clone()))
                .unwrap_or_else(|| (id.to_owned(), id.to_owned()))
        } else {
            let n = Uuid::parse_str(id)
                .ok()
                .and_then(|u| self.systems.get(&u).cloned())
                .unwrap_or_else(|| id.to_owned());
            (n.clone(), n)
        }
    }

    /// A grant's view at `now`.
    pub fn grant(&self, cat: &Catalogue, g: &Grant, now: DateTime<Utc>) -> SharingGrantView {
        let res = cat.resource(&g.resource);
        let res = res.as_deref();
        let (pn, pe) = Names::dept(cat, &g.provider);
        let (cn, ce) = Names::dept(cat, &g.consumer_department);
        let (sn, se) = self.consumer(cat, &g.consumer_kind, &g.consumer);
        SharingGrantView {
            id: g.id.to_string(),
            resource: g.resource.clone(),
            resource_name: res.map(|r| r.name.clone()).unwrap_or_default(),
            resource_name_en: res.map(|r| r.name_en.clone()).unwrap_or_default(),
            provider: g.provider.clone(),
            provider_name: pn,
            provider_name_en: pe,
            consumer_department: g.consumer_department.clone(),
            consumer_department_name: cn,
            consumer_department_name_en: ce,
            consumer_kind: g.consumer_kind.clone(),
            consumer: g.consumer.clone(),
            consumer_name: sn,
            consumer_name_en: se,
            items: item_views(res, &g.items),
            valid_from: g.valid_from,
            valid_until: g.valid_until,
            revoked_at: g.revoked_at,
            revoked_by: g.revoked_by.clone(),
            revoked_reason: g.revoked_reason.clone(),
            source: g.source.clone(),
            request_id: g.request_id.map(|u| u.to_string()),
            state: grant_state(g, now).code().to_owned(),
            reads: g.reads,
            last_read_at: g.last_read_at,
        }
    }

    /// A request's view.
    pub fn request(&self, cat: &Catalogue, r: &SharingRequest) -> SharingRequestView {
        let res = cat.resource(&r.resource);
        let res = res.as_deref();
        let (pn, pe) = Names::dept(cat, &r.provider);
        let (cn, ce) = Names::dept(cat, &r.consumer_department);
        let (sn, se) = self.consumer(cat, &r.consumer_kind, &r.consumer);
        SharingRequestView {
            id: r.id.to_string(),
            resource: r.resource.clone(),
            resource_name: res.map(|x| x.name.clone()).unwrap_or_default(),
            resource_name_en: res.map(|x| x.name_en.clone()).unwrap_or_default(),
            provider: r.provider.clone(),
            provider_name: pn,
            provider_name_en: pe,
            consumer_department: r.consumer_department.clone(),
            consumer_department_name: cn,
            consumer_department_name_en: ce,
            consumer_kind: r.consumer_kind.clone(),
            consumer: r.consumer.clone(),
            consumer_name: sn,
            consumer_name_en: se,
            purpose: r.purpose.clone(),
            legal_basis: r.legal_basis.clone(),
            items: item_views(res, &r.items),
            period_from: r.period_from,
            period_until: r.period_until,
            state: r.state.clone(),
            grant_id: r.grant_id.map(|u| u.to_string()),
            created_name: r.created_name.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn event_view(e: &RequestEvent) -> SharingEventView {
    SharingEventView {
        seq: e.seq,
        action: e.action.clone(),
        note: e.note.clone(),
        items: e.items.clone(),
        valid_until: e.valid_until,
        author_name: e.author_name.clone(),
        department: e.department.clone(),
        at: e.at,
    }
}

// ---------------------------------------------------------------------------------------
// Use cases
// ---------------------------------------------------------------------------------------

/// Makes the catalogue's grants at start; answers how many were new.
pub async fn import_catalogue(
    cat: &Catalogue,
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    store.import_grants(&catalogue_grants(cat, now)).await
}

/// Who acts: account id, name, department.
#[derive(Debug, Clone)]
pub struct Author<'a> {
    /// Account id.
    pub id: String,
    /// Name.
    pub name: &'a str,
    /// Department (USCC).
    pub department: &'a str,
}

/// A new sharing request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharingRequestInput {
    /// The resource's code.
    pub resource: String,
    /// For one of your department's services (its code) …
    #[serde(default)]
    pub service: Option<String>,
    /// … or for one of your department's information systems (its id).
    #[serde(default)]
    pub system: Option<String>,
    /// What the data is for.
    pub purpose: String,
    /// The law, regulation or document that allows it.
    pub legal_basis: String,
    /// The item ids needed.
    pub items: Vec<String>,
    /// From (defaults to today).
    #[serde(default)]
    pub period_from: Option<NaiveDate>,
    /// Until (null: as long as the need lasts).
    #[serde(default)]
    pub period_until: Option<NaiveDate>,
}

fn no_resource(code: &str) -> AppError {
    AppError::NotFound(Message::new(
        format!("目录中没有资源“{code}”。"),
        format!("The catalogue has no resource \"{code}\"."),
    ))
}

/// Files a request of `author`'s department.
pub async fn create_request(
    app: &AppState,
    author: &Author<'_>,
    input: &SharingRequestInput,
    now: DateTime<Utc>,
) -> Result<SharingRequest, AppError> {
    let cat = &app.catalogue;
    let res = cat
        .resource(&input.resource)
        .ok_or_else(|| no_resource(&input.resource))?;
    let res = &*res;
    may_request(res)?;
    if res.provider == author.department {
        return Err(AppError::Unprocessable(Message::new(
            format!("“{}”由贵部门提供，无需申请。", res.name),
            format!(
                "\"{}\" is provided by your own department: no request is needed.",
                res.name_en
            ),
        )));
    }
    let from = input.period_from.unwrap_or_else(crate::usecases::today);
    let mut errors = check_request(
        res,
        &input.purpose,
        &input.legal_basis,
        &input.items,
        from,
        input.period_until,
    );
    let (kind, consumer) = match (input.service.as_deref(), input.system.as_deref()) {
        (Some(code), None) if !code.trim().is_empty() => match cat.service(code.trim()) {
            Some(s) if s.department == author.department => ("service", s.code.clone()),
            _ => {
                errors.push(field(
                    "service",
                    "请选择贵部门的一个事项。",
                    "Choose one of your department's services.",
                ));
                ("service", String::new())
            }
        },
        (None, Some(id)) if !id.trim().is_empty() => {
            let sys = match Uuid::parse_str(id.trim()) {
                Ok(u) => app.store.system(u).await?,
                Err(_) => None,
            };
            match sys {
                Some(s)
                    if s.department == author.department
                        && !matches!(s.status.as_str(), "cleared" | "merged") =>
                {
                    ("system", s.id.to_string())
                }
                _ => {
                    errors.push(field(
                        "system",
                        "请选择贵部门在用的一个信息系统。",
                        "Choose one of your department's systems in use.",
                    ));
                    ("system", String::new())
                }
            }
        }
        _ => {
            errors.push(field(
                "consumer",
                "请选择一个事项或一个信息系统（二选一）。",
                "Choose either a service or an information system (one of them).",
            ));
            ("service", String::new())
        }
    };
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let r = SharingRequest {
        id: Uuid::now_v7(),
        resource: res.code.clone(),
        provider: res.provider.clone(),
        consumer_department: author.department.to_owned(),
        consumer_kind: kind.to_owned(),
        consumer,
        purpose: input.purpose.trim().to_owned(),
        legal_basis: input.legal_basis.trim().to_owned(),
        items: input.items.clone(),
        period_from: from,
        period_until: input.period_until,
        state: state::PENDING.into(),
        grant_id: None,
        created_by: author.id.clone(),
        created_name: author.name.to_owned(),
        created_at: now,
        updated_at: now,
    };
    let first = RequestEvent {
        seq: 1,
        action: "submitted".into(),
        note: String::new(),
        items: None,
        valid_until: None,
        author_id: author.id.clone(),
        author_name: author.name.to_owned(),
        department: author.department.to_owned(),
        at: now,
    };
    app.store.insert_sharing_request(&r, &first).await?;
    Ok(r)
}

fn no_request() -> AppError {
    AppError::NotFound(Message::new(
        "没有这个共享申请。",
        "There is no such sharing request.",
    ))
}

/// A request the department is party to, and on which side (another's is not found).
pub async fn request_for(
    app: &AppState,
    department: Option<&str>,
    id: Uuid,
) -> Result<(SharingRequest, Option<Side>), AppError> {
    let r = app
        .store
        .sharing_request(id)
        .await?
        .ok_or_else(no_request)?;
    let side = match department {
        None => None,
        Some(d) if d == r.provider => Some(Side::Provider),
        Some(d) if d == r.consumer_department => Some(Side::Consumer),
        Some(_) => return Err(no_request()),
    };
    Ok((r, side))
}

/// A request with its steps, as `department` (or the operator, with none) sees it.
pub async fn detail(
    app: &AppState,
    department: Option<&str>,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<SharingRequestDetail, AppError> {
    let (r, side) = request_for(app, department, id).await?;
    let names = Names::load(app).await?;
    let events = app.store.request_events(id).await?;
    let grant = match r.grant_id {
        Some(g) => app
            .store
            .grant(g)
            .await?
            .map(|g| names.grant(&app.catalogue, &g, now)),
        None => None,
    };
    Ok(SharingRequestDetail {
        request: names.request(&app.catalogue, &r),
        events: events.iter().map(event_view).collect(),
        actions: side
            .map(|s| {
                actions(&r.state, s)
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        grant,
    })
}

/// The provider's decision on a request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharingDecisionInput {
    /// `approve`, `refuse` or `ask` (for more).
    pub action: String,
    /// Approval: the items granted (some of those asked for; default all of them).
    #[serde(default)]
    pub items: Option<Vec<String>>,
    /// Approval: when the grant expires (default: the end of the period asked for, in
    /// China time; none when it was open-ended).
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    /// The reason (refusal), the question (ask), or a remark (approval).
    #[serde(default)]
    pub note: String,
}

fn not_now(r: &SharingRequest, action: &str) -> AppError {
    AppError::Conflict(Message::new(
        format!(
            "该申请当前状态（{}）下不能执行“{action}”。",
            state_label(&r.state, Lang::Zh)
        ),
        format!(
            "The request is {} now; \"{action}\" is not possible.",
            state_label(&r.state, Lang::En)
        ),
    ))
}

/// A request state's label.
pub fn state_label(s: &str, lang: Lang) -> &'static str {
    match s {
        state::PENDING => lang.pick("待提供部门审核", "Waiting for the provider"),
        state::MORE_INFO => lang.pick("待申请部门补充", "More asked of the requester"),
        state::APPROVED => lang.pick("已批准", "Approved"),
        state::REFUSED => lang.pick("已拒绝", "Refused"),
        _ => lang.pick("未知", "Unknown"),
    }
}

/// The provider approves, refuses or asks for more.
pub async fn decide(
    app: &AppState,
    author: &Author<'_>,
    id: Uuid,
    input: &SharingDecisionInput,
    now: DateTime<Utc>,
) -> Result<SharingRequest, AppError> {
    let (r, side) = request_for(app, Some(author.department), id).await?;
    if side != Some(Side::Provider) {
        return Err(AppError::Forbidden(Message::new(
            "只有提供部门可以审核共享申请。",
            "Only the providing department decides a sharing request.",
        )));
    }
    let action = input.action.trim();
    if !matches!(action, "approve" | "refuse" | "ask") {
        return Err(AppError::Invalid(vec![field(
            "action",
            "请选择批准、拒绝或要求补充。",
            "Choose approve, refuse or ask.",
        )]));
    }
    let Some(to) = next_state(&r.state, action, Side::Provider) else {
        return Err(not_now(&r, action));
    };
    let res = app
        .catalogue
        .resource(&r.resource)
        .ok_or_else(|| no_resource(&r.resource))?;
    let res = &*res;
    let mut errors = Vec::new();
    let mut grant = None;
    let mut items = None;
    let mut valid_until = None;
    if action == "approve" {
        let approved = input.items.clone().unwrap_or_else(|| r.items.clone());
        let until = input
            .valid_until
            .or_else(|| r.period_until.map(end_of_day_china));
        errors.extend(check_approval(res, &r.items, &approved, until, now));
        if input.note.chars().count() > MAX_TEXT {
            check_text(&mut errors, "note", &input.note, "说明", "note");
        }
        grant = Some(Grant {
            id: Uuid::now_v7(),
            resource: r.resource.clone(),
            provider: r.provider.clone(),
            consumer_department: r.consumer_department.clone(),
            consumer_kind: r.consumer_kind.clone(),
            consumer: r.consumer.clone(),
            items: approved.clone(),
            valid_from: now,
            valid_until: until,
            revoked_at: None,
            revoked_by: None,
            revoked_reason: None,
            source: "request".into(),
            request_id: Some(r.id),
            import_key: None,
            reads: 0,
            last_read_at: None,
            created_at: now,
        });
        items = Some(approved);
        valid_until = until;
    } else {
        let (zh, en) = if action == "refuse" {
            ("拒绝理由", "reason for the refusal")
        } else {
            ("需补充的内容", "question")
        };
        check_text(&mut errors, "note", &input.note, zh, en);
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let event = RequestEvent {
        seq: 0,
        action: match action {
            "approve" => "approved",
            "refuse" => "refused",
            _ => "asked",
        }
        .into(),
        note: input.note.trim().to_owned(),
        items,
        valid_until,
        author_id: author.id.clone(),
        author_name: author.name.to_owned(),
        department: author.department.to_owned(),
        at: now,
    };
    let step = RequestStep {
        id,
        from: &[state::PENDING],
        to,
        event,
        grant,
    };
    if !app.store.step_request(&step).await? {
        return Err(not_now(&r, action));
    }
    Ok(app.store.sharing_request(id).await?.unwrap_or(r))
}

/// The requester's answer to a question.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharingAnswerInput {
    /// The answer.
    pub note: String,
}

/// The requester answers what the provider asked; the request returns to the provider.
pub async fn answer(
    app: &AppState,
    author: &Author<'_>,
    id: Uuid,
    input: &SharingAnswerInput,
    now: DateTime<Utc>,
) -> Result<SharingRequest, AppError> {
    let (r, side) = request_for(app, Some(author.department), id).await?;
    if side != Some(Side::Consumer) {
        return Err(AppError::Forbidden(Message::new(
            "只有申请部门可以答复。",
            "Only the requesting department answers.",
        )));
    }
    let Some(to) = next_state(&r.state, "answer", Side::Consumer) else {
        return Err(not_now(&r, "answer"));
    };
    let mut errors = Vec::new();
    check_text(&mut errors, "note", &input.note, "答复", "answer");
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let step = RequestStep {
        id,
        from: &[state::MORE_INFO],
        to,
        event: RequestEvent {
            seq: 0,
            action: "answered".into(),
            note: input.note.trim().to_owned(),
            items: None,
            valid_until: None,
            author_id: author.id.clone(),
            author_name: author.name.to_owned(),
            department: author.department.to_owned(),
            at: now,
        },
        grant: None,
    };
    if !app.store.step_request(&step).await? {
        return Err(not_now(&r, "answer"));
    }
    Ok(app.store.sharing_request(id).await?.unwrap_or(r))
}

/// A revocation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharingRevokeInput {
    /// Why.
    pub reason: String,
}

/// The provider (or, with `provider` none, the operator) revokes a grant.
pub async fn revoke(
    app: &AppState,
    provider: Option<&str>,
    by: &str,
    id: Uuid,
    input: &SharingRevokeInput,
    now: DateTime<Utc>,
) -> Result<Grant, AppError> {
    let g = app
        .store
        .grant(id)
        .await?
        .filter(|g| provider.is_none_or(|p| p == g.provider))
        .ok_or_else(|| {
            AppError::NotFound(Message::new(
                "贵部门提供的授权中没有这一项。",
                "No such grant among those your department gave.",
            ))
        })?;
    let mut errors = Vec::new();
    check_text(&mut errors, "reason", &input.reason, "撤销理由", "reason");
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    if !app
        .store
        .revoke_grant(id, provider, by, input.reason.trim(), now)
        .await?
    {
        return Err(AppError::Conflict(Message::new(
            "该授权已撤销。",
            "The grant is already revoked.",
        )));
    }
    Ok(app.store.grant(id).await?.unwrap_or(g))
}

/// A department's grants, given and received, with read counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SharingGrantLists {
    /// Grants of the resources the department provides.
    pub given: Vec<SharingGrantView>,
    /// Grants to the department's services and systems.
    pub received: Vec<SharingGrantView>,
}

/// The grants a department gave and received.
pub async fn department_grants(
    app: &AppState,
    department: &str,
    now: DateTime<Utc>,
) -> Result<SharingGrantLists, AppError> {
    let names = Names::load(app).await?;
    let cat = &app.catalogue;
    let given = app.store.grants(Party::Provider(department)).await?;
    let received = app.store.grants(Party::Consumer(department)).await?;
    Ok(SharingGrantLists {
        given: given.iter().map(|g| names.grant(cat, g, now)).collect(),
        received: received.iter().map(|g| names.grant(cat, g, now)).collect(),
    })
}

/// A department's requests: those it filed and those it is asked to decide.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SharingRequestLists {
    /// Filed by the department.
    pub mine: Vec<SharingRequestView>,
    /// For the department's resources (its inbox).
    pub inbox: Vec<SharingRequestView>,
}

/// A department's requests, both ways.
pub async fn department_requests(
    app: &AppState,
    department: &str,
) -> Result<SharingRequestLists, AppError> {
    let names = Names::load(app).await?;
    let cat = &app.catalogue;
    let mine = app
        .store
        .sharing_requests(Party::Consumer(department))
        .await?;
    let inbox = app
        .store
        .sharing_requests(Party::Provider(department))
        .await?;
    Ok(SharingRequestLists {
        mine: mine.iter().map(|r| names.request(cat, r)).collect(),
        inbox: inbox.iter().map(|r| names.request(cat, r)).collect(),
    })
}

/// Every grant and request, for the operator.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SharingOverview {
    /// Every grant.
    pub grants: Vec<SharingGrantView>,
    /// Every request.
    pub requests: Vec<SharingRequestView>,
}

/// Every grant and request.
pub async fn overview(app: &AppState, now: DateTime<Utc>) -> Result<SharingOverview, AppError> {
    let names = Names::load(app).await?;
    let cat = &app.catalogue;
    let grants = app.store.grants(Party::All).await?;
    let requests = app.store.sharing_requests(Party::All).await?;
    Ok(SharingOverview {
        grants: grants.iter().map(|g| names.grant(cat, g, now)).collect(),
        requests: requests.iter().map(|r| names.request(cat, r)).collect(),
    })
}

// ---------------------------------------------------------------------------------------
// Enforcement
// ---------------------------------------------------------------------------------------

/// What a service may read of one conditional resource now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entitlement {
    /// The live grants (each read is counted on each).
    pub grants: Vec<Uuid>,
    /// Their items together.
    pub items: Vec<String>,
}

/// Folds live grants into one entitlement per resource. Pure.
pub fn entitlements(live: &[Grant]) -> BTreeMap<String, Entitlement> {
    let mut out: BTreeMap<String, Entitlement> = BTreeMap::new();
    for g in live {
        let e = out.entry(g.resource.clone()).or_default();
        e.grants.push(g.id);
        for i in &g.items {
            if !e.items.contains(i) {
                e.items.push(i.clone());
            }
        }
    }
    out
}

/// A service's entitlements now: one read of its live grants, on every prefill (never
/// cached, so an expiry or a revocation stops the next read).
pub async fn service_entitlements(
    app: &AppState,
    service: &str,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, Entitlement>, StoreError> {
    let live = app.store.live_grants("service", service, None, now).await?;
    Ok(entitlements(&live))
}

/// Reads counted under grants and not yet written, and the one writer of them.
///
/// Every read under a grant adds to its row's `reads`. Written one UPDATE per read,
/// concurrent lodgings reading under the same grant queued on that row's lock, one commit
/// each: the busiest lock of the benchmark's submissions (issue 14). Now one task at a
/// time writes, and the reads counted while it writes go into its next UPDATE, summed.
#[derive(Debug, Default)]
pub struct ReadCounts {
    pending: std::sync::Mutex<HashMap<Uuid, (i64, DateTime<Utc>)>>,
    writing: tokio::sync::Mutex<()>,
}

impl ReadCounts {
    /// Adds one read at `at` under each grant.
    pub fn add(&self, grants: &[Uuid], at: DateTime<Utc>) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for g in grants {
            let e = p.entry(*g).or_insert((0, at));
            e.0 += 1;
            e.1 = e.1.max(at);
        }
    }

    /// Takes everything counted so far: (grant, reads, latest read).
    pub fn take(&self) -> Vec<(Uuid, i64, DateTime<Utc>)> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.drain().map(|(g, (n, at))| (g, n, at)).collect()
    }

    fn is_empty(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

/// Counts one read on each grant it was made under. Written at once unless another
/// request is writing counts, which then writes this one too. A failure is logged: the
/// read has been audited, and the count is a figure.
pub async fn count_reads(app: &AppState, grants: &[Uuid], at: DateTime<Utc>) {
    let counts = &app.grant_reads;
    counts.add(grants, at);
    // A count added after the writer's last look but before it let go would be left
    // behind: so whoever lets go looks once more.
    while let Ok(writer) = counts.writing.try_lock() {
        loop {
            let batch = counts.take();
            if batch.is_empty() {
                break;
            }
            for (g, n, at) in batch {
                if let Err(e) = app.store.count_grant_reads(g, n, at).await {
                    tracing::warn!(error = %e, "cannot count reads under a grant");
                }
            }
        }
        drop(writer);
        if counts.is_empty() {
            break;
        }
    }
}

/// A department system's read of a resource.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeptDataQuery {
    /// Whose data: a resident ID number or a USCC.
    pub subject: String,
    /// The items wanted (empty: every item the caller may read).
    #[serde(default)]
    pub items: Vec<String>,
    /// What for (kept in the data-access trail the subject sees).
    pub purpose: String,
    /// The caller's system the read is for (its id); without it, any of the department's
    /// systems holding a live grant.
    #[serde(default)]
    pub system: Option<String>,
}

/// One record of the answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeptDataRecord {
    /// The licence item of a licence library, else empty.
    pub record: String,
    /// Item id → value, only the items answered.
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    /// How current it is.
    pub as_of: DateTime<Utc>,
}

/// The answer to a department's read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeptDataAnswer {
    /// Resource code.
    pub resource: String,
    /// `person` or `enterprise`.
    pub subject_kind: String,
    /// `open` (无条件共享), `own` (the caller provides it) or `grant`.
    pub basis: String,
    /// The grants read under.
    pub grants: Vec<String>,
    /// The items answered.
    pub items: Vec<String>,
    /// Items asked for that the caller may not read (not answered).
    pub withheld: Vec<String>,
    /// What the provider holds (empty when nothing).
    pub records: Vec<DeptDataRecord>,
}

/// A department system reads a resource: the share type and the caller's live grants
/// decide; only the items it may read are answered; the read is audited before the
/// answer and counted on the grants.
pub async fn read_data(
    app: &AppState,
    department: &str,
    resource: &str,
    q: &DeptDataQuery,
    now: DateTime<Utc>,
) -> Result<DeptDataAnswer, AppError> {
    let res = app
        .catalogue
        .resource(resource)
        .ok_or_else(|| no_resource(resource))?;
    let res = &*res;
    if res.share_type == ShareType::NotShared {
        // never answered, whatever is asked
        read_basis(res, department, Vec::new())?;
    }
    let mut errors = Vec::new();
    let subject = q.subject.trim();
    let kind = if ResidentId::parse(subject).is_ok() {
        Subject::Person
    } else if Uscc::parse(subject).is_ok() {
        Subject::Enterprise
    } else {
        errors.push(field(
            "subject",
            "请给出有效的公民身份号码或统一社会信用代码。",
            "Give a valid resident ID number or unified social credit code.",
        ));
        Subject::Person
    };
    check_text(&mut errors, "purpose", &q.purpose, "用途", "purpose");
    for it in &q.items {
        if res.item(it).is_none() {
            errors.push(field(
                "items",
                format!("“{}”没有数据项“{it}”。", res.name),
                format!("\"{}\" has no data item \"{it}\".", res.name_en),
            ));
        }
    }
    let system = match q.system.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => match Uuid::parse_str(s) {
            Ok(u) => Some(u.to_string()),
            Err(_) => {
                errors.push(field(
                    "system",
                    "系统编号格式不正确。",
                    "The system id is not valid.",
                ));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let mut live = if res.share_type == ShareType::Conditional {
        app.store
            .live_system_grants(department, &res.code, now)
            .await?
    } else {
        Vec::new()
    };
    if let Some(s) = &system {
        live.retain(|g| &g.consumer == s);
    }
    let basis = read_basis(res, department, live)?;
    // The items about this kind of subject, as asked (or all).
    let wanted: Vec<String> = if q.items.is_empty() {
        res.items.iter().map(|i| i.id.clone()).collect()
    } else {
        q.items.clone()
    };
    let (about, other): (Vec<String>, Vec<String>) = wanted
        .into_iter()
        .partition(|id| res.item(id).is_some_and(|i| res.subject_of(i) == kind));
    let (items, mut withheld, grants) = match &basis {
        ReadBasis::Granted(gs) => {
            let e = entitlements(gs);
            let e = e.get(&res.code).cloned().unwrap_or_default();
            let (given, held) = split_items(&about, &e.items);
            (given, held, e.grants)
        }
        _ => (about, Vec::new(), Vec::new()),
    };
    withheld.extend(other);
    let name = app
        .catalogue
        .department(department)
        .map(|d| d.name.clone())
        .unwrap_or_else(|| department.to_owned());
    let mut records = Vec::new();
    if !items.is_empty() {
        let why = ReadPurpose {
            purpose: q.purpose.trim().to_owned(),
            service_code: None,
            case_no: None,
        };
        let found = app
            .providers
            .for_resource(res)
            .fetch(res, subject, &why)
            .await
            .map_err(|e| {
                tracing::warn!(resource = %res.code, error = %e, "department data read failed");
                AppError::Unavailable(Message::new(
                    format!("“{}”暂时无法读取，请稍后再试。", res.name),
                    format!(
                        "\"{}\" cannot be read just now; try again later.",
                        res.name_en
                    ),
                ))
            })?;
        for r in found {
            if res.is_licence_library() {
                if items.contains(&r.record) {
                    records.push(DeptDataRecord {
                        record: r.record,
                        data: r.data,
                        as_of: r.as_of,
                    });
                }
            } else {
                let data: Map<String, Value> = r
                    .data
                    .into_iter()
                    .filter(|(k, _)| items.contains(k))
                    .collect();
                records.push(DeptDataRecord {
                    record: r.record,
                    data,
                    as_of: r.as_of,
                });
            }
        }
        let personal: Vec<String> = items
            .iter()
            .filter(|i| res.item(i).is_some_and(|x| x.personal))
            .cloned()
            .collect();
        let reader = Reader {
            kind: "department",
            id: Some(department.to_owned()),
            name,
        };
        let access = NewAccess {
            subject_index: audit::subject_index(&app.index_key, kind, subject),
            subject_kind: kind.code().to_owned(),
            at: now,
            resource: res.code.clone(),
            items: personal,
            reader_kind: reader.kind.to_owned(),
            reader_id: reader.id.clone(),
            reader_name: reader.name.clone(),
            purpose: q.purpose.trim().to_owned(),
            service_code: None,
            case_no: None,
        };
        // A read that cannot be recorded is not handed out.
        audit::record(app, &[access]).await?;
        count_reads(app, &grants, now).await;
    }
    Ok(DeptDataAnswer {
        resource: res.code.clone(),
        subject_kind: kind.code().to_owned(),
        basis: match basis {
            ReadBasis::Open => "open",
            ReadBasis::Own => "own",
            ReadBasis::Granted(_) => "grant",
        }
        .to_owned(),
        grants: grants.iter().map(Uuid::to_string).collect(),
        items,
        withheld,
        records,
    })
}

/// The demo's requests and grants: one pending request (人社局 asks 市场监管局 for the
/// legal-entity data), and two approved grants with reads. Idempotent: nothing is seeded
/// when a seeded request exists.
pub async fn seed_demo(app: &AppState, now: DateTime<Utc>) -> anyhow::Result<usize> {
    const HR: &str = "11150700MB15300034";
    const HEALTH: &str = "11150700MB15300047";
    const CIVIL: &str = "11150700MB1530008K";
    let existing = app.store.sharing_requests(Party::All).await?;
    if existing.iter().any(|r| r.created_by == "seed") {
        return Ok(0);
    }
    let officer = |dept: &'static str, name: &'static str| Author {
        id: "seed".into(),
        name,
        department: dept,
    };
    let mut made = 0;
    // Pending: 人社局, for one of its systems (or its social security card service).
    let hr_system = app
        .store
        .systems(Some(HR))
        .await?
        .into_iter()
        .find(|s| !matches!(s.status.as_str(), "cleared" | "merged"));
    let (service, system) = match hr_system {
        Some(s) => (None, Some(s.id.to_string())),
        None => (Some(format!("{HR}-GG-0002")), None),
    };
    let today = crate::usecases::today();
    let pending = SharingRequestInput {
        resource: "enterprise".into(),
        service,
        system,
        purpose: "核验参保单位的名称与统一社会信用代码，减少企业重复提交营业执照。".into(),
        legal_basis: "《社会保险法》第五十七条；《政务信息资源共享管理暂行办法》".into(),
        items: vec!["uscc".into(), "name".into(), "legal_rep".into()],
        period_from: Some(today),
        period_until: today.checked_add_months(chrono::Months::new(12)),
    };
    if app.catalogue.resource("enterprise").is_some() {
        create_request(app, &officer(HR, "马强"), &pending, now).await?;
        made += 1;
    }
    // Approved with reads: 卫健委 reads credit data for its public-place hygiene licence,
    // 民政局 reads insurance status for the minimum living allowance.
    let approved = [
        (
            HEALTH,
            "李敏",
            "credit",
            format!("{HEALTH}-XK-0001"),
            vec!["dishonest_list_status"],
            "发改委审核员",
            "11150700MB1530010U",
            7,
        ),
        (
            CIVIL,
            "赵静",
            "social_insurance",
            format!("{CIVIL}-GF-0001"),
            vec!["insured_status"],
            "马强",
            HR,
            3,
        ),
    ];
    for (dept, name, resource, service, items, approver, provider, reads) in approved {
        if app.catalogue.resource(resource).is_none() || app.catalogue.service(&service).is_none() {
            continue;
        }
        let input = SharingRequestInput {
            resource: resource.into(),
            service: Some(service),
            system: None,
            purpose: "审批时核验申请人情况，减少申请人提交证明材料。".into(),
            legal_basis: "《优化营商环境条例》；《政务信息资源共享管理暂行办法》".into(),
            items: items.iter().map(|s| s.to_string()).collect(),
            period_from: Some(today),
            period_until: None,
        };
        let r = create_request(app, &officer(dept, name), &input, now).await?;
        let decision = SharingDecisionInput {
            action: "approve".into(),
            items: None,
            valid_until: Some(now + Duration::days(365)),
            note: "同意，仅限所述用途。".into(),
        };
        let r = decide(app, &officer(provider, approver), r.id, &decision, now).await?;
        if let Some(g) = r.grant_id {
            for i in (0..reads).rev() {
                app.store
                    .count_grant_reads(g, 1, now - Duration::hours(i * 5))
                    .await?;
            }
        }
        made += 1;
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_reads_are_summed_per_grant_with_the_latest_time_and_taken_once() {
        let counts = ReadCounts::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let t0 = Utc::now();
        let t1 = t0 + Duration::seconds(5);
        counts.add(&[a, b], t1);
        counts.add(&[a], t0);
        let mut taken = counts.take();
        taken.sort();
        let mut want = vec![(a, 2, t1), (b, 1, t1)];
        want.sort();
        assert_eq!(taken, want);
        assert!(counts.take().is_empty(), "taken once");
        assert!(counts.is_empty());
    }

    fn catalogue() -> Catalogue {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("service-definitions");
        crate::domain::catalogue::load_dir(&dir).expect("the shipped catalogue")
    }

    fn grant(items: &[&str]) -> Grant {
        let now = Utc::now();
        Grant {
            id: Uuid::now_v7(),
            resource: "person".into(),
            provider: "P".into(),
            consumer_department: "C".into(),
            consumer_kind: "service".into(),
            consumer: "S".into(),
            items: items.iter().map(|s| s.to_string()).collect(),
            valid_from: now - Duration::days(1),
            valid_until: None,
            revoked_at: None,
            revoked_by: None,
            revoked_reason: None,
            source: "request".into(),
            request_id: None,
            import_key: None,
            reads: 0,
            last_read_at: None,
            created_at: now,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_grant_is_live_until_it_expires_or_is_revoked() {
        let now = Utc::now();
        let mut g = grant(&["name"]);
        assert_eq!(grant_state(&g, now), GrantState::Live);
        g.valid_until = Some(now + Duration::hours(1));
        assert_eq!(grant_state(&g, now), GrantState::Live);
        assert_eq!(
            grant_state(&g, now + Duration::hours(1)),
            GrantState::Expired,
            "the expiry moment itself is past"
        );
        g.valid_from = now + Duration::minutes(5);
        assert_eq!(grant_state(&g, now), GrantState::NotYet);
        g.valid_from = now - Duration::days(1);
        g.revoked_at = Some(now - Duration::seconds(1));
        assert_eq!(grant_state(&g, now), GrantState::Revoked);
        assert_eq!(
            grant_state(&g, now + Duration::hours(2)),
            GrantState::Revoked,
            "a revocation wins over an expiry"
        );
    }

    #[test]
    fn only_granted_items_are_given() {
        let (given, held) = split_items(
            &s(&["name", "phone", "gender"]),
            &s(&["gender", "name", "id_number"]),
        );
        assert_eq!(given, s(&["name", "gender"]));
        assert_eq!(held, s(&["phone"]));
        let (given, held) = split_items(&s(&["name"]), &[]);
        assert!(given.is_empty());
        assert_eq!(held, s(&["name"]));
    }

    #[test]
    fn entitlements_join_the_items_of_live_grants_per_resource() {
        let a = grant(&["name", "gender"]);
        let b = grant(&["gender", "phone"]);
        let mut c = grant(&["uscc"]);
        c.resource = "enterprise".into();
        let e = entitlements(&[a.clone(), b.clone(), c]);
        assert_eq!(e["person"].items, s(&["name", "gender", "phone"]));
        assert_eq!(e["person"].grants, vec![a.id, b.id]);
        assert_eq!(e["enterprise"].items, s(&["uscc"]));
    }

    #[test]
    fn only_conditional_resources_can_be_requested() {
        let cat = catalogue();
        let person = cat.resource("person").expect("person");
        let person = &*person;
        assert!(may_request(person).is_ok());
        let crim = cat.resource("criminal_record").expect("criminal record");
        let crim = &*crim;
        match may_request(crim) {
            Err(AppError::Unprocessable(m)) => {
                assert!(m.zh.contains("不予共享") && m.zh.contains("criminal_record"))
            }
            other => panic!("{other:?}"),
        }
        let mut open = person.clone();
        open.share_type = ShareType::Unconditional;
        match may_request(&open) {
            Err(AppError::Unprocessable(m)) => assert!(m.zh.contains("无需申请"), "{}", m.zh),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_request_needs_its_fields_and_known_items() {
        let cat = catalogue();
        let person = cat.resource("person").expect("person");
        let person = &*person;
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let ok = check_request(
            person,
            "社保卡",
            "《社会保险法》",
            &s(&["name", "id_number"]),
            d("2026-01-01"),
            Some(d("2026-12-31")),
        );
        assert!(ok.is_empty(), "{ok:?}");
        let bad = check_request(
            person,
            " ",
            "",
            &s(&["name", "shoe_size", "name"]),
            d("2026-02-01"),
            Some(d("2026-01-01")),
        );
        let fields: Vec<&str> = bad.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["purpose", "legal_basis", "items", "items", "period_until"]
        );
        assert!(
            !check_request(person, "x", "y", &[], d("2026-01-01"), None).is_empty(),
            "no items"
        );
    }

    #[test]
    fn an_approval_gives_some_of_the_items_asked_for_until_a_future_time() {
        let cat = catalogue();
        let person = cat.resource("person").expect("person");
        let person = &*person;
        let now = Utc::now();
        let asked = s(&["name", "id_number", "phone"]);
        assert!(check_approval(person, &asked, &s(&["name", "id_number"]), None, now).is_empty());
        let more = check_approval(person, &asked, &s(&["name", "gender"]), None, now);
        assert_eq!(more.len(), 1);
        assert!(more[0].message.zh.contains("gender"));
        let past = check_approval(person, &asked, &s(&["name"]), Some(now), now);
        assert_eq!(past[0].field, "valid_until");
        assert!(!check_approval(person, &asked, &[], None, now).is_empty());
    }

    #[test]
    fn each_side_takes_only_its_own_steps() {
        use Side::*;
        assert_eq!(next_state("pending", "approve", Provider), Some("approved"));
        assert_eq!(next_state("pending", "refuse", Provider), Some("refused"));
        assert_eq!(next_state("pending", "ask", Provider), Some("more_info"));
        assert_eq!(next_state("more_info", "answer", Consumer), Some("pending"));
        assert_eq!(next_state("pending", "approve", Consumer), None);
        assert_eq!(next_state("more_info", "approve", Provider), None);
        assert_eq!(next_state("pending", "answer", Consumer), None);
        assert_eq!(next_state("approved", "refuse", Provider), None);
        assert_eq!(next_state("refused", "approve", Provider), None);
        assert_eq!(actions("pending", Provider), ["approve", "refuse", "ask"]);
        assert_eq!(actions("more_info", Consumer), ["answer"]);
        assert!(actions("approved", Consumer).is_empty());
    }

    #[test]
    fn catalogue_grants_cover_every_item_of_each_named_service_without_expiry() {
        let cat = catalogue();
        let now = Utc::now();
        let gs = catalogue_grants(&cat, now);
        let person = cat.resource("person").expect("person");
        let person = &*person;
        let of_person: Vec<&Grant> = gs.iter().filter(|g| g.resource == "person").collect();
        assert_eq!(of_person.len(), person.grants.len());
        for g in &of_person {
            assert_eq!(g.items.len(), person.items.len());
            assert_eq!(g.valid_until, None);
            assert_eq!(g.source, "import");
            assert_eq!(
                cat.service(&g.consumer).expect("service").department,
                g.consumer_department
            );
            assert_eq!(
                g.import_key.as_deref(),
                Some(format!("person/{}", g.consumer).as_str())
            );
        }
        assert!(
            !gs.iter().any(|g| g.resource == "criminal_record"),
            "not shared: never granted"
        );
    }

    #[test]
    fn the_data_api_answers_open_resources_to_anyone_and_conditional_ones_under_a_grant() {
        let cat = catalogue();
        let person = cat.resource("person").expect("person");
        let person = &*person;
        let mut open = person.clone();
        open.share_type = ShareType::Unconditional;
        assert_eq!(read_basis(&open, "X", vec![]).ok(), Some(ReadBasis::Open));
        assert!(matches!(
            read_basis(person, "X", vec![]),
            Err(AppError::Forbidden(_))
        ));
        assert_eq!(
            read_basis(person, &person.provider, vec![]).ok(),
            Some(ReadBasis::Own)
        );
        let g = grant(&["name"]);
        assert_eq!(
            read_basis(person, "X", vec![g.clone()]).ok(),
            Some(ReadBasis::Granted(vec![g]))
        );
        let crim = cat.resource("criminal_record").expect("criminal record");
        let crim = &*crim;
        assert!(matches!(
            read_basis(crim, &crim.provider, vec![]),
            Err(AppError::Forbidden(_))
        ));
    }

    #[test]
    fn a_period_ends_at_midnight_china_time() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 31).expect("date");
        assert_eq!(
            end_of_day_china(d).to_rfc3339(),
            "2026-12-31T16:00:00+00:00"
        );
    }
}
