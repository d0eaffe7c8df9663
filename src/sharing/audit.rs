//! The data-access audit trail (数据调用留痕): every read of personal data, by whom, whose,
//! which items, why and for which case, and what a citizen sees of it.
//!
//! Records name their subject only by a blind index, HMAC-SHA256 of `kind:id` under a key
//! the gateway generates on first start and keeps in the store (`secrets`), so the trail
//! answers "who read this person's data" by exact match without holding ID numbers. Each
//! subject's records are their own hash chain (see `store::shared::chain_hash`).

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::domain::catalogue::Subject;
use crate::domain::lang::Lang;
use crate::state::AppState;
use crate::store::{AccessRecord, NewAccess, StoreError};

/// The name of the blind-index key in the store's secrets.
pub const INDEX_KEY_NAME: &str = "audit_blind_index";

/// The blind index of a subject: hex HMAC-SHA256 of `person:<ID number>` or
/// `enterprise:<USCC>` under the gateway's index key.
pub fn subject_index(key: &[u8], subject: Subject, id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(subject.code().as_bytes());
    mac.update(b":");
    mac.update(id.trim().to_uppercase().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Who is reading.
#[derive(Debug, Clone)]
pub struct Reader {
    /// `applicant`, `clerk`, `department` or `system`.
    pub kind: &'static str,
    /// Account id, or department USCC.
    pub id: Option<String>,
    /// As shown to the subject.
    pub name: String,
}

/// Appends reads to the trail. Callers do this *before* handing the data out: a read that
/// cannot be recorded does not happen.
pub async fn record(app: &AppState, reads: &[NewAccess]) -> Result<(), StoreError> {
    if reads.is_empty() {
        return Ok(());
    }
    app.store.append_data_access(reads).await?;
    for r in reads {
        metrics::counter!("onewindow_personal_data_reads_total", "reader" => r.reader_kind.clone(), "resource" => r.resource.clone()).increment(1);
    }
    Ok(())
}

/// The pseudo-resource of a department's read of a whole application.
pub const APPLICATION: &str = "application";

/// Records that a department received or read a case's application: the applicant's
/// personal fields and the materials, for the applicant (and, for an enterprise case,
/// the enterprise).
pub async fn department_read(
    app: &AppState,
    c: &crate::store::CaseRow,
    materials: &[crate::store::MaterialRow],
    department: &str,
    reader_id: Option<String>,
) -> Result<(), StoreError> {
    let name = app
        .catalogue
        .department(department)
        .map(|d| d.name.clone())
        .unwrap_or_else(|| department.to_owned());
    let reader = Reader {
        kind: "department",
        id: reader_id,
        name,
    };
    case_read_of(
        app,
        c,
        materials,
        &reader,
        crate::sharing::prefill::purpose::DEPARTMENT_REVIEW,
    )
    .await
}

/// Records that someone read a case's application (its personal fields and materials),
/// for the applicant and, for an enterprise case, the enterprise.
pub async fn case_read(
    app: &AppState,
    c: &crate::store::CaseRow,
    reader: &Reader,
    purpose: &str,
) -> Result<(), StoreError> {
    let materials = app.store.case_materials(c.id).await.unwrap_or_default();
    case_read_of(app, c, &materials, reader, purpose).await
}

/// [`case_read`] with the case's materials already read (for the list of what was seen).
pub async fn case_read_of(
    app: &AppState,
    c: &crate::store::CaseRow,
    materials: &[crate::store::MaterialRow],
    reader: &Reader,
    purpose: &str,
) -> Result<(), StoreError> {
    use crate::domain::catalogue::FieldType;
    crate::audit::action(
        app,
        &crate::audit::Who {
            kind: reader.kind,
            id: reader.id.clone(),
        },
        "case.read",
        crate::audit::case_chain(&c.case_no),
        &c.case_no,
        serde_json::json!({ "purpose": purpose }),
    )
    .await?;
    let Some(service) = app.catalogue.service(&c.service_code) else {
        return Ok(());
    };
    let form = c.form.as_object();
    let has = |id: &str| {
        form.and_then(|f| f.get(id))
            .is_some_and(|v| !v.is_null() && v != "")
    };
    let mut items: Vec<String> = service
        .fields
        .iter()
        .filter(|f| has(&f.id))
        .filter(|f| {
            matches!(
                f.field_type,
                FieldType::IdNumber | FieldType::Phone | FieldType::Address
            ) || f
                .prefill
                .as_deref()
                .and_then(|b| app.catalogue.binding(b))
                .is_some_and(|(_, i)| i.personal)
        })
        .map(|f| format!("field:{}", f.id))
        .collect();
    for m in materials {
        let k = format!("material:{}", m.material_id);
        if !items.contains(&k) {
            items.push(k);
        }
    }
    let mut reads = Vec::new();
    let mut push = |kind: Subject, id: &str| {
        reads.push(NewAccess {
            subject_index: subject_index(&app.index_key, kind, id),
            subject_kind: kind.code().to_owned(),
            at: chrono::Utc::now(),
            resource: APPLICATION.to_owned(),
            items: items.clone(),
            reader_kind: reader.kind.to_owned(),
            reader_id: reader.id.clone(),
            reader_name: reader.name.clone(),
            purpose: purpose.to_owned(),
            service_code: Some(c.service_code.clone()),
            case_no: Some(c.case_no.clone()),
        });
    };
    if let Some(p) = &c.applicant.id_number {
        push(Subject::Person, p.expose());
    }
    if let Some(u) = &c.applicant.uscc {
        push(Subject::Enterprise, u);
    }
    record(app, &reads).await
}

/// One read as the subject sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccessView {
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who read: a kind label and a name.
    pub reader_kind: String,
    /// The reader's kind in the asked language (本人 / 窗口工作人员 / 部门 / 系统).
    pub reader_kind_label: String,
    /// The reader's name.
    pub reader: String,
    /// The resource, by name.
    pub resource: String,
    /// Resource code.
    pub resource_code: String,
    /// The items, by name.
    pub items: Vec<String>,
    /// Why.
    pub purpose: String,
    /// The service, by name.
    pub service: Option<String>,
    /// The case number.
    pub case_no: Option<String>,
    /// Whose data: `person` (you) or `enterprise` (the enterprise you represent).
    pub subject_kind: String,
}

/// Reader kind labels.
pub fn reader_kind_label(kind: &str, lang: Lang) -> &'static str {
    match kind {
        "applicant" => lang.pick("本人（申请时预填）", "You (prefill when applying)"),
        "clerk" => lang.pick("窗口工作人员", "Service-hall clerk"),
        "department" => lang.pick("审批部门", "Processing department"),
        "officer" => lang.pick("部门工作人员", "Department officer"),
        "operator" => lang.pick("系统运维人员", "Operator"),
        _ => lang.pick("系统", "System"),
    }
}

/// The trail of a person (and of the enterprise they represent), newest first, with names
/// in the asked language.
pub async fn for_subjects(
    app: &AppState,
    person: Option<&str>,
    enterprise: Option<&str>,
    lang: Lang,
    limit: i64,
) -> Result<Vec<AccessView>, StoreError> {
    let mut indexes = Vec::new();
    if let Some(p) = person {
        indexes.push(subject_index(&app.index_key, Subject::Person, p));
    }
    if let Some(e) = enterprise {
        indexes.push(subject_index(&app.index_key, Subject::Enterprise, e));
    }
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let rows = app.store.data_access(&indexes, limit).await?;
    Ok(rows.iter().map(|r| view(app, r, lang)).collect())
}

fn view(app: &AppState, r: &AccessRecord, lang: Lang) -> AccessView {
    let a = &r.access;
    let res = app.catalogue.resource(&a.resource);
    let service = a
        .service_code
        .as_deref()
        .and_then(|c| app.catalogue.service(c));
    let items = a
        .items
        .iter()
        .map(|id| {
            if let Some(f) = id.strip_prefix("field:") {
                return service
                    .and_then(|s| s.fields.iter().find(|x| x.id == f))
                    .map(|x| lang.pick(&x.label, &x.label_en).to_owned())
                    .unwrap_or_else(|| f.to_owned());
            }
            if let Some(m) = id.strip_prefix("material:") {
                return service
                    .and_then(|s| s.materials.iter().find(|x| x.id == m))
                    .map(|x| lang.pick(&x.name, &x.name_en).to_owned())
                    .unwrap_or_else(|| m.to_owned());
            }
            res.as_ref()
                .and_then(|res| res.item(id))
                .map(|i| lang.pick(&i.name, &i.name_en).to_owned())
                .unwrap_or_else(|| id.clone())
        })
        .collect();
    AccessView {
        at: a.at,
        reader_kind: a.reader_kind.clone(),
        reader_kind_label: reader_kind_label(&a.reader_kind, lang).to_owned(),
        reader: a.reader_name.clone(),
        resource: match &res {
            Some(r) => lang.pick(&r.name, &r.name_en).to_owned(),
            None if a.resource == APPLICATION => lang
                .pick("申请表和申请材料", "Application form and materials")
                .to_owned(),
            None => a.resource.clone(),
        },
        resource_code: a.resource.clone(),
        items,
        purpose: a.purpose.clone(),
        service: a.service_code.as_deref().map(|c| {
            app.catalogue
                .service(c)
                .map(|s| lang.pick(&s.name, &s.name_en).to_owned())
                .unwrap_or_else(|| c.to_owned())
        }),
        case_no: a.case_no.clone(),
        subject_kind: a.subject_kind.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_depends_on_key_kind_and_id_but_not_case() {
        let k = b"key one";
        let a = subject_index(k, Subject::Person, "15070219900101123x");
        assert_eq!(a, subject_index(k, Subject::Person, "15070219900101123X"));
        assert_ne!(
            a,
            subject_index(b"key two", Subject::Person, "15070219900101123X")
        );
        assert_ne!(
            a,
            subject_index(k, Subject::Enterprise, "15070219900101123X")
        );
        assert_eq!(a.len(), 64);
        assert!(!a.contains("150702"));
    }
}
