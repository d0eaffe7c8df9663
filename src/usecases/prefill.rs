//! Shared data around an application form (表单预填 and 免提交):
//!
//! - before: the applicant's consent to the plan ([`give_consent`]) and the prefill of
//!   their form from it ([`for_applicant`]);
//! - on submit: the check of what comes back ([`check_shared_data`]): prefilled values
//!   against what was served (authoritative ones must be unchanged), bound identifiers
//!   against the login, and each 免提交 material against the e-licence library.
//!
//! Reading the sources, the audit of every read and the snapshot of what was served are
//! the sharing layer's (`crate::sharing::prefill`, `crate::sharing::audit`); these are the
//! decisions a caller sees.

use chrono::Utc;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Error, Result, Text};
use crate::auth::identity::Role;
use crate::auth::session::Session;
use crate::domain::catalogue::Service;
use crate::domain::form::FieldIssue;
use crate::sharing::prefill::{
    self as sharing, CONSENT_VALID_HOURS, Checked, Prefill, Substitutes, Who, purpose,
};
use crate::sharing::provider::ReadPurpose;
use crate::state::AppState;
use crate::store::{ConsentRow, NewAccess, NewMaterial};

/// The subjects and reader of a logged-in applicant: their account's proven ID number and
/// the enterprise their login says they act for (never anything from the request).
pub async fn who_for_applicant(app: &AppState, session: &Session) -> Result<Who> {
    let account = app
        .store
        .account(session.account_id)
        .await?
        .ok_or_else(account_gone)?;
    let enterprise = session.roles.iter().find_map(|r| match r {
        Role::EnterpriseUser { uscc } => Some(uscc.clone()),
        _ => None,
    });
    Ok(sharing::who_from_account(&account, enterprise))
}

/// The refusal when a session outlives its account.
pub(super) fn account_gone() -> Error {
    Error::Unauthenticated(Text::new(
        "账户不存在，请重新登录。",
        "The account no longer exists; log in again.",
    ))
}

/// Records the applicant's consent to the service's plan (which resources, why); it lets
/// the form be prefilled for [`CONSENT_VALID_HOURS`].
pub async fn give_consent(app: &AppState, account: Uuid, service: &Service) -> Result<ConsentRow> {
    let p = sharing::plan(&app.catalogue, service);
    if p.entries.is_empty() {
        return Err(Error::conflict(
            "此事项没有可预填的字段或可免提交的材料。",
            "This service has no fields to prefill and no materials that shared data can stand in for.",
        ));
    }
    let c = ConsentRow {
        id: Uuid::now_v7(),
        account,
        service_code: service.code.clone(),
        resources: p.resources.iter().map(|r| r.code.clone()).collect(),
        given_at: Utc::now(),
    };
    app.store.insert_consent(&c).await?;
    Ok(c)
}

/// The applicant's consent for the service, if given within [`CONSENT_VALID_HOURS`].
pub async fn current_consent(
    app: &AppState,
    account: Uuid,
    service: &Service,
) -> Result<Option<ConsentRow>> {
    let c = app.store.latest_consent(account, &service.code).await?;
    Ok(c.filter(|c| Utc::now() - c.given_at < chrono::Duration::hours(CONSENT_VALID_HOURS)))
}

/// The refusal when prefill is asked for without consent: where to read the sources and
/// where to agree.
pub fn consent_required(service: &Service) -> Error {
    Error::not_allowed(
        format!(
            "预填前需要您的同意：请先查看将使用的数据来源（GET /api/v1/services/{0}/prefill/sources），再表示同意（POST /api/v1/services/{0}/prefill/consent）。",
            service.code
        ),
        format!(
            "Prefill needs your consent: review the sources (GET /api/v1/services/{0}/prefill/sources), then agree (POST /api/v1/services/{0}/prefill/consent).",
            service.code
        ),
    )
}

/// Prefills an applicant's form: needs their current consent, reads the sources (each
/// read of personal data audited before it is handed out), and keeps what was served for
/// the check on submit.
pub async fn for_applicant(
    app: &AppState,
    session: &Session,
    service: &Service,
) -> Result<Prefill> {
    let Some(consent) = current_consent(app, session.account_id, service).await? else {
        return Err(consent_required(service));
    };
    let who = who_for_applicant(app, session).await?;
    let why = ReadPurpose {
        purpose: purpose::PREFILL.into(),
        service_code: Some(service.code.clone()),
        case_no: None,
    };
    let mut p = sharing::fetch(app, &who, service, &why, None).await?;
    p.consent_id = Some(consent.id);
    sharing::save_snapshot(app, session.account_id, &who, &p).await;
    Ok(p)
}

/// Whose shared data an application rests on, for the check on submit.
pub struct SharedData {
    /// The subjects and the reader (the applicant, or the clerk at the window); `None`
    /// checks nothing and lets no material be stood in for.
    pub who: Option<Who>,
    /// The account whose prefill snapshot applies (the applicant's, or the clerk's who
    /// looked the walk-in applicant up).
    pub snapshot_of: Option<Uuid>,
}

/// What the check on submit established, for the case to record.
#[derive(Debug)]
pub struct Confirmed {
    /// The materials, stand-ins now carrying their source and evidence.
    pub materials: Vec<NewMaterial>,
    /// Provenance of the prefilled fields and the counts the city is assessed on.
    pub checked: Checked,
    /// Reads of personal data made for the check, to record with the case.
    pub reads: Vec<NewAccess>,
}

/// Checks an application's shared data when it is submitted: the prefilled values and
/// bound identifiers ([`check_values`], pure), and each 免提交 material against the
/// e-licence library ([`stand_ins`], which may read). Every problem is reported at once.
/// A refused application still leaves its licence reads on record.
pub async fn check_shared_data(
    app: &AppState,
    shared: &SharedData,
    service: &Service,
    values: &Map<String, Value>,
    mut materials: Vec<NewMaterial>,
) -> Result<Confirmed> {
    let served = match (&shared.who, shared.snapshot_of) {
        (Some(who), Some(reader)) => sharing::snapshot(app, reader, who, &service.code).await,
        _ => None,
    };
    let checked = check_values(service, shared.who.as_ref(), served.as_ref(), values);
    let wanted: Vec<String> = materials
        .iter()
        .filter(|m| m.substituted)
        .map(|m| m.material_id.clone())
        .collect();
    let subs = stand_ins(app, shared.who.as_ref(), service, &wanted, served.as_ref()).await?;
    attach_evidence(&mut materials, &subs);
    match checked {
        Ok(checked) if subs.issues.is_empty() => Ok(Confirmed {
            materials,
            checked,
            reads: subs.reads,
        }),
        checked => {
            // No case comes of it, but the licence library was read: that stays on record.
            crate::sharing::audit::record(app, &subs.reads).await?;
            let mut issues = checked.err().unwrap_or_default();
            issues.extend(subs.issues);
            Err(Error::Invalid(issues))
        }
    }
}

/// The pure half of the check: an applicant's bound identifiers must be the ones their
/// login proved, and prefilled values are re-checked against what was served (see
/// `sharing::prefill::recheck`). A clerk's intake is not held to a login's identifiers.
pub fn check_values(
    service: &Service,
    who: Option<&Who>,
    served: Option<&Prefill>,
    values: &Map<String, Value>,
) -> std::result::Result<Checked, Vec<FieldIssue>> {
    let mut issues = Vec::new();
    if let Some(who) = who.filter(|w| w.reader.kind == "applicant") {
        issues.extend(sharing::check_identity(
            service,
            who.person.as_deref(),
            who.enterprise.as_deref(),
            values,
        ));
    }
    match sharing::recheck(service, served, values) {
        Ok(c) if issues.is_empty() => Ok(c),
        Ok(_) => Err(issues),
        Err(e) => {
            issues.extend(e);
            Err(issues)
        }
    }
}

/// Looks up what stands in for each wanted material: from the snapshot, or with an
/// audited read. Without anyone whose data could be read, every wanted material is an
/// issue (upload it instead).
async fn stand_ins(
    app: &AppState,
    who: Option<&Who>,
    service: &Service,
    wanted: &[String],
    served: Option<&Prefill>,
) -> Result<Substitutes> {
    if wanted.is_empty() {
        return Ok(Substitutes {
            found: Default::default(),
            issues: Vec::new(),
            reads: Vec::new(),
        });
    }
    match who {
        Some(who) => Ok(sharing::substitutes(app, who, service, wanted, served).await?),
        None => Ok(Substitutes {
            found: Default::default(),
            issues: wanted
                .iter()
                .map(|id| FieldIssue {
                    field: format!("materials.{id}"),
                    zh: "无法核验电子证照，请上传该材料。".into(),
                    en: "The e-licence cannot be checked here; please upload the material.".into(),
                })
                .collect(),
            reads: Vec::new(),
        }),
    }
}

/// Records on each stood-in material the source and the evidence found for it. Pure.
fn attach_evidence(materials: &mut [NewMaterial], subs: &Substitutes) {
    for m in materials.iter_mut().filter(|m| m.substituted) {
        if let Some((binding, evidence)) = subs.found.get(&m.material_id) {
            m.source = Some(binding.clone());
            m.evidence = Some(evidence.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sharing::audit::Reader;
    use crate::usecases::testing::{self, catalogue};
    use serde_json::json;

    fn who(kind: &'static str, person: &str) -> Who {
        Who {
            account: None,
            person: Some(person.into()),
            enterprise: None,
            reader: Reader {
                kind,
                id: None,
                name: "x".into(),
            },
        }
    }

    #[test]
    fn only_an_applicant_is_held_to_the_identifiers_of_their_login() {
        let cat = catalogue();
        let service = cat.service(testing::SSC).expect("service");
        let mut values = Map::new();
        values.insert("applicant_id_number".into(), json!("150702199203151541"));
        let mine = "150702198506123025";
        let refused = check_values(service, Some(&who("applicant", mine)), None, &values)
            .expect_err("someone else's number");
        assert_eq!(refused[0].field, "applicant_id_number");
        // at the window the clerk types the walk-in applicant's number
        assert!(check_values(service, Some(&who("clerk", mine)), None, &values).is_ok());
        assert!(check_values(service, None, None, &values).is_ok());
    }

    #[test]
    fn evidence_lands_on_the_stood_in_material_only() {
        let mut materials = vec![
            NewMaterial {
                material_id: "id_card".into(),
                upload_id: None,
                substituted: true,
                source: None,
                evidence: None,
            },
            NewMaterial {
                material_id: "photo".into(),
                upload_id: Some(Uuid::now_v7()),
                substituted: false,
                source: None,
                evidence: None,
            },
        ];
        let mut found = std::collections::HashMap::new();
        found.insert(
            "id_card".to_owned(),
            (
                "elicence.resident_id_card".to_owned(),
                json!({ "licence_no": "1" }),
            ),
        );
        found.insert("photo".to_owned(), ("elicence.photo".to_owned(), json!({})));
        let subs = Substitutes {
            found,
            issues: Vec::new(),
            reads: Vec::new(),
        };
        attach_evidence(&mut materials, &subs);
        assert_eq!(
            materials[0].source.as_deref(),
            Some("elicence.resident_id_card")
        );
        assert!(materials[1].source.is_none(), "an upload keeps no evidence");
    }
}
