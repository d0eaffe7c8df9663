//! Prefill (表单预填): what a service's form may be filled from and why (the [`plan`]), the
//! values with their sources ([`fetch`], every read of personal data audited), the
//! snapshot of what was served, and the pure re-checks on submit ([`recheck`],
//! [`check_identity`]) and the licence reads behind 免提交 ([`substitutes`]).
//!
//! The decisions callers see (the consent, prefilling an applicant's form, the check of
//! an application's shared data on submit) are use cases: `crate::usecases::prefill`.
//!
//! Whose data: only the logged-in person's own (by the ID number their login proved) and
//! that of the enterprise they represent (by the USCC their login carries). Nothing in a
//! request can name another subject. A window clerk's lookup names the walk-in applicant
//! explicitly, states a purpose, and is audited as the clerk's read.
//!
//! What was served is kept (the snapshot, in the cache for the session's lifetime) so that
//! on submit the server knows which values came from shared data: an authoritative value
//! that differs is refused, the rest are recorded with their provenance (or as changed by
//! the applicant), and the case carries the counts the city is assessed on.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::audit::{self, Reader};
use super::provider::{ProviderError, ReadPurpose, Record, subject_key};
use crate::domain::catalogue::{
    Access, Catalogue, DataItem, Resource, Service, ShareType, Subject,
};
use crate::domain::form::FieldIssue;
use crate::domain::lang::Lang;
use crate::state::AppState;
use crate::store::{NewAccess, StoreError};

/// How long a consent lets the form be prefilled again without asking.
pub const CONSENT_VALID_HOURS: i64 = 24;

/// Purpose codes stored in the audit trail (free text is a clerk's own words).
pub mod purpose {
    /// The applicant's form was prefilled.
    pub const PREFILL: &str = "prefill";
    /// A 免提交 material was checked against the e-licence library on submit.
    pub const SUBSTITUTE_CHECK: &str = "substitute_check";
    /// A department received or read the application.
    pub const DEPARTMENT_REVIEW: &str = "department_review";
    /// Staff opened the case in the gateway (to take it in, review or decide it).
    pub const STAFF_CASE_VIEW: &str = "staff_case_view";
    /// A window clerk showed the applicant's full ID number on the case page.
    pub const STAFF_REVEAL_ID: &str = "staff_reveal_id";
}

/// A purpose as shown to the data subject.
pub fn purpose_label(code: &str, lang: Lang) -> String {
    match code {
        purpose::PREFILL => lang.pick("申请时预填表单", "Prefilling your application form"),
        purpose::SUBSTITUTE_CHECK => lang.pick(
            "核验免提交材料（以电子证照代替上传）",
            "Checking an e-licence that stood in for an upload",
        ),
        purpose::STAFF_CASE_VIEW => lang.pick(
            "工作人员查阅办件（受理、审查或决定）",
            "Staff opened the case (to take it in, review or decide it)",
        ),
        purpose::STAFF_REVEAL_ID => lang.pick(
            "窗口工作人员查看完整身份证号（核对身份）",
            "A clerk showed your full ID number (to check your identity)",
        ),
        purpose::DEPARTMENT_REVIEW => lang.pick(
            "审批部门接收、审查申请",
            "The department received and reviewed the application",
        ),
        other => return other.to_owned(),
    }
    .to_owned()
}

/// Where a value comes from, in both languages.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Source {
    /// `resource.item`.
    pub binding: String,
    /// Resource code.
    pub resource: String,
    /// Resource name.
    pub resource_name: String,
    /// Resource name (English).
    pub resource_name_en: String,
    /// Item name.
    pub item_name: String,
    /// Item name (English).
    pub item_name_en: String,
    /// Providing department's USCC.
    pub provider: String,
    /// Providing department's name.
    pub provider_name: String,
    /// Providing department's name (English).
    pub provider_name_en: String,
}

fn source(cat: &Catalogue, res: &Resource, item: &DataItem) -> Source {
    let dept = cat.department(&res.provider);
    Source {
        binding: format!("{}.{}", res.code, item.id),
        resource: res.code.clone(),
        resource_name: res.name.clone(),
        resource_name_en: res.name_en.clone(),
        item_name: item.name.clone(),
        item_name_en: item.name_en.clone(),
        provider: res.provider.clone(),
        provider_name: dept.map(|d| d.name.clone()).unwrap_or_default(),
        provider_name_en: dept.map(|d| d.name_en.clone()).unwrap_or_default(),
    }
}

/// One field or material the plan fills, and from where.
#[derive(Debug, Clone, Serialize)]
pub struct PlanEntry {
    /// `field` or `material`.
    pub target: &'static str,
    /// Field or material id.
    pub id: String,
    /// Its label.
    pub label: String,
    /// Its label (English).
    pub label_en: String,
    /// The source.
    pub source: Source,
    /// Cannot be changed once filled.
    pub authoritative: bool,
    /// Personal data (its reads are audited).
    pub personal: bool,
    /// Whose data: `person` (you) or `enterprise` (the enterprise you represent).
    pub subject: Subject,
}

/// A resource the plan reads, with the reason it may.
#[derive(Debug, Clone, Serialize)]
pub struct PlanResource {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Name (English).
    pub name_en: String,
    /// Providing department.
    pub provider_name: String,
    /// Providing department (English).
    pub provider_name_en: String,
    /// Share type.
    pub share_type: ShareType,
    /// Conditions of sharing: why this service may use it.
    pub conditions: Option<String>,
    /// Conditions (English).
    pub conditions_en: Option<String>,
    /// Base library or department API.
    pub access: Access,
}

/// What a service's form would be filled from, and why: shown before consent.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The service.
    pub service_code: String,
    /// Fields and materials with their sources.
    pub entries: Vec<PlanEntry>,
    /// The resources read.
    pub resources: Vec<PlanResource>,
}

/// The plan of a service: its bound top-level fields and its substitutable materials.
/// Bindings inside table columns are not prefilled (a table holds other people's rows).
pub fn plan(cat: &Catalogue, service: &Service) -> Plan {
    let mut entries = Vec::new();
    let mut used: Vec<std::sync::Arc<Resource>> = Vec::new();
    let mut add = |target, id: &str, label: &str, label_en: &str, binding: &str| {
        if let Some((res, item)) = cat.binding(binding)
            && res.entitles(&service.code)
        {
            entries.push(PlanEntry {
                target,
                id: id.to_owned(),
                label: label.to_owned(),
                label_en: label_en.to_owned(),
                source: source(cat, &res, &item),
                authoritative: item.authoritative,
                personal: item.personal,
                subject: res.subject_of(&item),
            });
            if !used.iter().any(|r| r.code == res.code) {
                used.push(res);
            }
        }
    };
    for f in &service.fields {
        if let Some(b) = &f.prefill {
            add("field", &f.id, &f.label, &f.label_en, b);
        }
    }
    for m in &service.materials {
        if let Some(b) = &m.substitute {
            add("material", &m.id, &m.name, &m.name_en, b);
        }
    }
    let resources = used
        .into_iter()
        .map(|r| {
            let dept = cat.department(&r.provider);
            PlanResource {
                code: r.code.clone(),
                name: r.name.clone(),
                name_en: r.name_en.clone(),
                provider_name: dept.map(|d| d.name.clone()).unwrap_or_default(),
                provider_name_en: dept.map(|d| d.name_en.clone()).unwrap_or_default(),
                share_type: r.share_type,
                conditions: r.conditions.clone(),
                conditions_en: r.conditions_en.clone(),
                access: r.access,
            }
        })
        .collect();
    Plan {
        service_code: service.code.clone(),
        entries,
        resources,
    }
}

/// Whose data is read, and who reads it. Not `Debug`: it holds a full ID number.
#[derive(Clone)]
pub struct Who {
    /// The applicant's account (none for a walk-in at the window).
    pub account: Option<Uuid>,
    /// The person's resident ID number.
    pub person: Option<String>,
    /// The represented enterprise's USCC.
    pub enterprise: Option<String>,
    /// The reader, for the audit trail.
    pub reader: Reader,
}

/// A prefilled field value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrefilledValue {
    /// The value, in the form's format.
    pub value: Value,
    /// Where it came from.
    pub source: Source,
    /// How current the source's data is.
    pub as_of: DateTime<Utc>,
    /// Cannot be changed in the form; re-checked on submit.
    pub authoritative: bool,
}

/// What stands in for a material (免提交).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    /// Where it came from.
    pub source: Source,
    /// The licence's facts (licence_no, issuer, issued_on, valid_until, holder_name), or
    /// `{"value": …}` for a shared-data item.
    pub facts: Map<String, Value>,
    /// How current the source's data is.
    pub as_of: DateTime<Utc>,
}

/// A resource that could not be read, so its fields are left for the applicant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Unavailable {
    /// Resource code.
    pub resource: String,
    /// What happened (Chinese).
    pub message: String,
    /// What happened (English).
    pub message_en: String,
}

/// The prefill of one service's form.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Prefill {
    /// The service.
    pub service_code: String,
    /// The consent it rests on (none for a clerk's lookup).
    pub consent_id: Option<Uuid>,
    /// When it was read.
    pub fetched_at: DateTime<Utc>,
    /// Field id → value with source.
    pub fields: BTreeMap<String, PrefilledValue>,
    /// Material id → what stands in for it.
    pub materials: BTreeMap<String, Evidence>,
    /// Fields and materials of the plan the sources hold nothing for.
    pub not_found: Vec<String>,
    /// Resources that could not be read now.
    pub unavailable: Vec<Unavailable>,
}

/// The subjects and reader of an applicant's account (and the enterprise they act for).
pub fn who_from_account(account: &crate::store::Account, enterprise: Option<String>) -> Who {
    Who {
        account: Some(account.id),
        person: account.id_number.as_ref().map(|i| i.expose().to_owned()),
        enterprise,
        reader: Reader {
            kind: "applicant",
            id: Some(account.id.to_string()),
            name: account.name.clone(),
        },
    }
}

/// A walk-in applicant at a window, read by a clerk.
pub fn who_at_window(
    person: Option<&crate::domain::ids::ResidentId>,
    enterprise: Option<&str>,
    clerk_account: Uuid,
    clerk_name: &str,
    hall: &str,
) -> Who {
    Who {
        account: None,
        person: person.map(|p| p.expose().to_owned()),
        enterprise: enterprise.map(str::to_owned),
        reader: Reader {
            kind: "clerk",
            id: Some(clerk_account.to_string()),
            name: format!("{clerk_name}（{hall}）"),
        },
    }
}

fn snapshot_key(account: Uuid, service: &str) -> String {
    format!("prefill:{account}:{service}")
}

/// What was served, and to whose data it belongs (blind indexes, so a clerk's lookup for
/// one walk-in applicant is never taken for another's).
#[derive(Serialize, Deserialize)]
struct Snapshot {
    subject: String,
    prefill: Prefill,
}

fn subject_fingerprint(app: &AppState, who: &Who) -> String {
    let p = who
        .person
        .as_deref()
        .map(|p| audit::subject_index(&app.index_key, Subject::Person, p))
        .unwrap_or_default();
    let e = who
        .enterprise
        .as_deref()
        .map(|e| audit::subject_index(&app.index_key, Subject::Enterprise, e))
        .unwrap_or_default();
    format!("{p}/{e}")
}

/// Keeps what was served, under the reader's account (the applicant's, or the clerk's
/// for a window lookup), for the re-check on submit.
pub async fn save_snapshot(app: &AppState, reader_account: Uuid, who: &Who, p: &Prefill) {
    let ttl = Duration::from_secs(app.settings.sessions.session_absolute_secs.max(3600));
    let snap = Snapshot {
        subject: subject_fingerprint(app, who),
        prefill: p.clone(),
    };
    let key = snapshot_key(reader_account, &p.service_code);
    let sealed = serde_json::to_value(&snap).map(|v| app.sealer.seal(&key, &v));
    match sealed.and_then(|v| serde_json::to_vec(&v)) {
        Ok(bytes) => {
            if let Err(e) = app.cache.set(&key, &bytes, ttl).await {
                tracing::warn!(error = %e, "cannot keep the prefill snapshot; provenance will be missing on submit");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot encode the prefill snapshot"),
    }
}

/// What was last served to this reader for this service about `who`, if still kept.
pub async fn snapshot(
    app: &AppState,
    reader_account: Uuid,
    who: &Who,
    service: &str,
) -> Option<Prefill> {
    let key = snapshot_key(reader_account, service);
    let bytes = app.cache.get(&key).await.ok()??;
    let sealed: Value = serde_json::from_slice(&bytes).ok()?;
    let snap: Snapshot = serde_json::from_value(app.sealer.open(&key, &sealed).ok()?).ok()?;
    (snap.subject == subject_fingerprint(app, who)).then_some(snap.prefill)
}

/// The licence or item facts of a record for a material's evidence.
fn evidence_facts(
    res: &Resource,
    item: &DataItem,
    records: &[Record],
) -> Option<(Map<String, Value>, DateTime<Utc>)> {
    if res.is_licence_library() {
        let r = records.iter().find(|r| r.record == item.id)?;
        Some((r.data.clone(), r.as_of))
    } else {
        let r = records.first()?;
        let v = r.data.get(&item.id)?.clone();
        let mut m = Map::new();
        m.insert("value".into(), v);
        Some((m, r.as_of))
    }
}

/// Whether a licence is still valid on `today` (no `valid_until`, or 长期, or not past).
pub fn licence_valid(facts: &Map<String, Value>, today: NaiveDate) -> bool {
    match facts.get("valid_until").and_then(Value::as_str) {
        None | Some("长期") | Some("") => true,
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map(|until| until >= today)
            .unwrap_or(false),
    }
}

/// Reads the plan's sources for `who`, audits every read of personal data, and maps the
/// answers onto the form. Resources that cannot be read are listed in `unavailable`;
/// the rest still fill. `only_materials` limits the read to those materials (the check
/// of 免提交 materials on submit).
pub async fn fetch(
    app: &AppState,
    who: &Who,
    service: &Service,
    why: &ReadPurpose,
    only_materials: Option<&[String]>,
) -> Result<Prefill, StoreError> {
    let (p, reads) = read_sources(app, who, service, why, only_materials).await?;
    // A read that cannot be recorded is not handed out.
    audit::record(app, &reads).await?;
    Ok(p)
}

/// [`fetch`] without recording: answers the reads of personal data to be recorded by the
/// caller (a case write records them in its own transaction, with the case number).
async fn read_sources(
    app: &AppState,
    who: &Who,
    service: &Service,
    why: &ReadPurpose,
    only_materials: Option<&[String]>,
) -> Result<(Prefill, Vec<NewAccess>), StoreError> {
    let cat = &app.catalogue;
    let mut p = plan(cat, service);
    if let Some(only) = only_materials {
        p.entries
            .retain(|e| e.target == "material" && only.iter().any(|m| m == &e.id));
    }
    // A conditional resource is read only under a live grant of the service, and only the
    // items it grants: checked on every read (one indexed query), never cached.
    let now = Utc::now();
    let entitled = super::grants::service_entitlements(app, &service.code, now).await?;
    let mut ungranted: Vec<std::sync::Arc<Resource>> = Vec::new();
    p.entries.retain(|e| {
        let Some(res) = cat.resource(&e.source.resource) else {
            return false;
        };
        if res.share_type != ShareType::Conditional {
            return true;
        }
        let item = e.source.binding.split_once('.').map_or("", |x| x.1);
        match entitled.get(&res.code) {
            Some(ent) => ent.items.iter().any(|i| i == item),
            None => {
                if !ungranted.iter().any(|r| r.code == res.code) {
                    ungranted.push(res);
                }
                false
            }
        }
    });
    // One read per (resource, subject kind).
    let mut groups: Vec<((String, Subject), Vec<&PlanEntry>)> = Vec::new();
    for e in &p.entries {
        let k = (e.source.resource.clone(), e.subject);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, v)) => v.push(e),
            None => groups.push((k, vec![e])),
        }
    }
    let mut out = Prefill {
        service_code: service.code.clone(),
        consent_id: None,
        fetched_at: now,
        fields: BTreeMap::new(),
        materials: BTreeMap::new(),
        not_found: Vec::new(),
        unavailable: ungranted
            .iter()
            .map(|res| Unavailable {
                resource: res.code.clone(),
                message: format!(
                    "本事项使用{}的共享授权已到期或被撤销，相关内容请您自行填写（或上传材料）。",
                    res.name
                ),
                message_en: format!(
                    "This service's grant to use {} has expired or been revoked; please fill these in yourself (or upload the materials).",
                    res.name_en
                ),
            })
            .collect(),
    };
    let mut reads: Vec<(NewAccess, Vec<Record>, Vec<&PlanEntry>)> = Vec::new();
    for ((res_code, subject), entries) in groups {
        let Some(res) = cat.resource(&res_code) else {
            continue;
        };
        let Some(key) = subject_key(subject, who.person.as_deref(), who.enterprise.as_deref())
        else {
            // Enterprise data for a person acting alone (or a person without an ID number).
            out.not_found.extend(entries.iter().map(|e| e.id.clone()));
            continue;
        };
        match app.providers.for_resource(&res).fetch(&res, key, why).await {
            Ok(records) => {
                if let Some(ent) = entitled.get(&res.code) {
                    super::grants::count_reads(app, &ent.grants, now).await;
                }
                let mut items: Vec<String> = Vec::new();
                for e in &entries {
                    let item_id = e.source.binding.split_once('.').map(|x| x.1).unwrap_or("");
                    if e.personal && !items.iter().any(|i| i == item_id) {
                        items.push(item_id.to_owned());
                    }
                }
                let access = NewAccess {
                    subject_index: audit::subject_index(&app.index_key, subject, key),
                    subject_kind: subject.code().to_owned(),
                    at: now,
                    resource: res.code.clone(),
                    items,
                    reader_kind: who.reader.kind.to_owned(),
                    reader_id: who.reader.id.clone(),
                    reader_name: who.reader.name.clone(),
                    purpose: why.purpose.clone(),
                    service_code: why.service_code.clone(),
                    case_no: why.case_no.clone(),
                };
                reads.push((access, records, entries));
            }
            Err(e) => {
                let (zh, en) = match &e {
                    ProviderError::CircuitOpen(_) | ProviderError::Failed(_) => (
                        format!(
                            "{}暂时无法访问，相关内容请您自行填写（或上传材料）；系统恢复后可再次预填。",
                            res.name
                        ),
                        format!(
                            "{} cannot be reached just now; please fill these in yourself (or upload the materials). You can prefill again once it is back.",
                            res.name_en
                        ),
                    ),
                    ProviderError::NotConfigured(_) => (
                        format!("{}尚未接入，相关内容请您自行填写。", res.name),
                        format!(
                            "{} is not connected yet; please fill these in yourself.",
                            res.name_en
                        ),
                    ),
                };
                out.unavailable.push(Unavailable {
                    resource: res.code.clone(),
                    message: zh,
                    message_en: en,
                });
            }
        }
    }
    let to_record: Vec<NewAccess> = reads
        .iter()
        .filter(|(a, _, _)| !a.items.is_empty())
        .map(|(a, _, _)| a.clone())
        .collect();

    let today = crate::usecases::today();
    for (_, records, entries) in &reads {
        for e in entries {
            let Some((res, item)) = cat.binding(&e.source.binding) else {
                continue;
            };
            if e.target == "field" {
                let value = records
                    .first()
                    .filter(|_| !res.is_licence_library())
                    .and_then(|r| r.data.get(&item.id).map(|v| (v.clone(), r.as_of)));
                match value {
                    Some((v, as_of)) if !v.is_null() => {
                        out.fields.insert(
                            e.id.clone(),
                            PrefilledValue {
                                value: v,
                                source: e.source.clone(),
                                as_of,
                                authoritative: e.authoritative,
                            },
                        );
                    }
                    _ => out.not_found.push(e.id.clone()),
                }
            } else {
                match evidence_facts(&res, &item, records) {
                    Some((facts, as_of)) if licence_valid(&facts, today) => {
                        out.materials.insert(
                            e.id.clone(),
                            Evidence {
                                source: e.source.clone(),
                                facts,
                                as_of,
                            },
                        );
                    }
                    _ => out.not_found.push(e.id.clone()),
                }
            }
        }
    }
    Ok((out, to_record))
}

/// The outcome of the re-check on submit.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// Field id → `{source, as_of, authoritative, changed}` for every field that was
    /// prefilled.
    pub provenance: Value,
    /// Top-level fields with a value.
    pub fields_filled: i32,
    /// Of which prefilled and unchanged.
    pub fields_prefilled: i32,
}

/// Two form values are the same when their text is (numbers by value, identifiers without
/// regard to case).
fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    fn text(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.trim().to_uppercase()),
            Value::Number(n) => n.as_f64().map(|f| format!("{f}")),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
    match (a, b) {
        (Value::String(s), Value::Number(_)) | (Value::Number(_), Value::String(s)) => {
            let other = if a.is_number() { a } else { b };
            s.trim().parse::<f64>().ok().map(|f| format!("{f}")) == text(other)
        }
        _ => text(a) == text(b),
    }
}

/// The identifiers a login proves: a field bound to `person.id_number` must hold the
/// logged-in person's own number, and one bound to `enterprise.uscc` the USCC of the
/// enterprise they act for, whether or not the form was prefilled (a bound field is, by
/// definition, the applicant's own data). Pure.
pub fn check_identity(
    service: &Service,
    person: Option<&str>,
    enterprise: Option<&str>,
    values: &Map<String, Value>,
) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    for f in &service.fields {
        let expected = match f.prefill.as_deref() {
            Some("person.id_number") => person,
            Some("enterprise.uscc") => enterprise,
            _ => continue,
        };
        let (Some(expected), Some(given)) = (expected, values.get(&f.id)) else {
            continue;
        };
        if given.is_null() || same_value(given, &Value::String(expected.to_owned())) {
            continue;
        }
        issues.push(FieldIssue {
            field: f.id.clone(),
            zh: format!(
                "“{}”须为您本人（或您所代表企业）经登录核验的号码，不能填写他人的。",
                f.label
            ),
            en: format!(
                "\"{}\" must be the number your login proved (yours, or your enterprise's); it cannot be someone else's.",
                f.label_en
            ),
        });
    }
    issues
}

/// Re-checks submitted (validated, normalised) values against what was served: an
/// authoritative value must be unchanged; the rest are recorded as prefilled or changed.
/// Without a snapshot every value counts as the applicant's own.
pub fn recheck(
    service: &Service,
    served: Option<&Prefill>,
    values: &Map<String, Value>,
) -> Result<Checked, Vec<FieldIssue>> {
    let filled = service
        .fields
        .iter()
        .filter(|f| values.get(&f.id).is_some_and(|v| !v.is_null() && v != ""))
        .count() as i32;
    let mut provenance = Map::new();
    let mut prefilled = 0;
    let mut issues = Vec::new();
    if let Some(p) = served.filter(|p| p.service_code == service.code) {
        for (field_id, pv) in &p.fields {
            let Some(field) = service.fields.iter().find(|f| &f.id == field_id) else {
                continue;
            };
            let submitted = values.get(field_id).unwrap_or(&Value::Null);
            // An optional value left out (it does not apply to the option chosen, like
            // the old card number on a first card) is not forced on the applicant; a
            // required one is refused by the form's own check.
            if is_empty_value(submitted) {
                continue;
            }
            let unchanged = same_value(submitted, &pv.value);
            if pv.authoritative && !unchanged {
                issues.push(FieldIssue {
                    field: field_id.clone(),
                    zh: format!(
                        "“{}”来自{}（{}），是权威数据，不能修改。如信息有误，请先到{}更正。",
                        field.label,
                        pv.source.resource_name,
                        pv.source.provider_name,
                        pv.source.provider_name
                    ),
                    en: format!(
                        "\"{}\" comes from {} ({}) and is authoritative: it cannot be changed here. If it is wrong, have {} correct it first.",
                        field.label_en,
                        pv.source.resource_name_en,
                        pv.source.provider_name_en,
                        pv.source.provider_name_en
                    ),
                });
                continue;
            }
            if unchanged {
                prefilled += 1;
            }
            provenance.insert(
                field_id.clone(),
                json!({
                    "source": pv.source.binding,
                    "resource_name": pv.source.resource_name,
                    "provider": pv.source.provider,
                    "as_of": pv.as_of,
                    "authoritative": pv.authoritative,
                    "changed": !unchanged,
                }),
            );
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Checked {
        provenance: Value::Object(provenance),
        fields_filled: filled,
        fields_prefilled: prefilled,
    })
}

/// What [`substitutes`] found.
pub struct Substitutes {
    /// Material id → (binding, evidence JSON).
    pub found: HashMap<String, (String, Value)>,
    /// Materials nothing valid stands in for.
    pub issues: Vec<FieldIssue>,
    /// Reads of personal data made to check them (not yet recorded).
    pub reads: Vec<NewAccess>,
}

/// Checks the materials the applicant asked to have stood in for (免提交): each must be
/// held by the e-licence library (or shared data) for this applicant and still valid.
/// Uses what was served at prefill when it covers a material, and reads (audited) for
/// the rest. Answers material id → (binding, evidence JSON), a problem for each material
/// that cannot be stood in for, and the reads made, for the case write to record.
pub async fn substitutes(
    app: &AppState,
    who: &Who,
    service: &Service,
    material_ids: &[String],
    served: Option<&Prefill>,
) -> Result<Substitutes, StoreError> {
    let mut found: HashMap<String, (String, Value)> = HashMap::new();
    let mut missing: Vec<String> = Vec::new();
    for id in material_ids {
        match served.and_then(|p| p.materials.get(id)) {
            Some(ev) => {
                found.insert(id.clone(), (ev.source.binding.clone(), evidence_json(ev)));
            }
            None => missing.push(id.clone()),
        }
    }
    let mut issues = Vec::new();
    let mut reads = Vec::new();
    if !missing.is_empty() {
        let why = ReadPurpose {
            purpose: purpose::SUBSTITUTE_CHECK.into(),
            service_code: Some(service.code.clone()),
            case_no: None,
        };
        let (p, made) = read_sources(app, who, service, &why, Some(&missing)).await?;
        reads = made;
        for id in &missing {
            let Some(m) = service.materials.iter().find(|m| &m.id == id) else {
                continue;
            };
            match p.materials.get(id) {
                Some(ev) => {
                    found.insert(id.clone(), (ev.source.binding.clone(), evidence_json(ev)));
                }
                None => {
                    let down = !p.unavailable.is_empty();
                    let (zh, en) = if down {
                        (
                            format!(
                                "电子证照库暂时无法访问，无法核验“{}”。请上传该材料，或稍后再试。",
                                m.name
                            ),
                            format!(
                                "The e-licence library cannot be reached, so \"{}\" cannot be checked. Please upload it, or try again later.",
                                m.name_en
                            ),
                        )
                    } else {
                        (
                            format!("没有找到您有效的“{}”电子证照，请上传该材料。", m.name),
                            format!(
                                "No valid e-licence for \"{}\" was found for you; please upload it.",
                                m.name_en
                            ),
                        )
                    };
                    issues.push(FieldIssue {
                        field: format!("materials.{id}"),
                        zh,
                        en,
                    });
                }
            }
        }
    }
    Ok(Substitutes {
        found,
        issues,
        reads,
    })
}

fn evidence_json(ev: &Evidence) -> Value {
    let mut m = ev.facts.clone();
    m.insert("source".into(), Value::String(ev.source.binding.clone()));
    m.insert(
        "source_name".into(),
        Value::String(ev.source.resource_name.clone()),
    );
    m.insert("provider".into(), Value::String(ev.source.provider.clone()));
    m.insert("as_of".into(), json!(ev.as_of));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_by_text_numbers_by_value() {
        assert!(same_value(&json!("王小明"), &json!(" 王小明 ")));
        assert!(same_value(
            &json!("15070219900101123x"),
            &json!("15070219900101123X")
        ));
        assert!(same_value(&json!(100), &json!(100.0)));
        assert!(same_value(&json!("100"), &json!(100)));
        assert!(!same_value(&json!("王小明"), &json!("王大明")));
        assert!(!same_value(&Value::Null, &json!("x")));
    }

    #[test]
    fn bound_identifiers_must_be_the_logged_in_ones() {
        // 社会保障卡申领: applicant_id_number is bound to person.id_number.
        let service: Service = toml::from_str(include_str!(
            "../../service-definitions/services/rs-sbk-sl.toml"
        ))
        .expect("service");
        let mine = "150702198506123025";
        let values = |idno: &str| {
            let mut m = Map::new();
            m.insert("applicant_id_number".into(), json!(idno));
            m.insert("applicant_name".into(), json!("王小明"));
            m
        };
        assert!(check_identity(&service, Some(mine), None, &values(mine)).is_empty());
        let issues = check_identity(&service, Some(mine), None, &values("150702199203151541"));
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].field, "applicant_id_number");
        // Without a proven number there is nothing to compare with.
        assert!(check_identity(&service, None, None, &values("150702199203151541")).is_empty());
    }

    #[test]
    fn licences_past_their_date_are_not_valid() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).expect("date");
        let f = |v: Value| {
            let mut m = Map::new();
            m.insert("valid_until".into(), v);
            m
        };
        assert!(licence_valid(&Map::new(), today));
        assert!(licence_valid(&f(json!("长期")), today));
        assert!(licence_valid(&f(json!("2026-11-27")), today));
        assert!(!licence_valid(&f(json!("2026-11-26")), today));
        assert!(!licence_valid(&f(json!("not a date")), today));
    }
}
