//! Lodging an application: it becomes a case.
//!
//! Three steps, each its own function: [`validate`] (the form, the materials, the shared
//! data; every problem at once), [`new_case`] (pure: the case row, its first history
//! entry, the events for the routed departments and the applicant's receipt), and
//! [`write`] (one transaction with the idempotency record; a case number already taken is
//! drawn again).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::effects::{notice_for, outbox_for};
use super::idempotency::{self, IdemKey, Kind};
use super::materials::{self, MaterialInput};
use super::prefill::{self, Confirmed, SharedData};
use super::{Actor, Error, Result, today};
use crate::domain::case::{self, Action, CaseStatus};
use crate::domain::catalogue::Service;
use crate::domain::form;
use crate::state::AppState;
use crate::store::{
    CaseApplicant, CaseRow, CaseWrite, EventRow, NewMaterial, NoticeRow, OutboxRow, WriteOutcome,
};

/// How an application arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// 网上申报: the applicant, logged in.
    Online,
    /// 窗口受理: a clerk, for a walk-in applicant.
    Window,
}

impl Channel {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Channel::Online => "online",
            Channel::Window => "window",
        }
    }
}

/// What a new application consists of.
pub struct NewApplication<'a> {
    /// The service applied for.
    pub service: &'a Service,
    /// Who applies (from their account, or as the clerk typed it in).
    pub applicant: CaseApplicant,
    /// How it arrived.
    pub channel: Channel,
    /// Form values as sent.
    pub values: &'a Map<String, Value>,
    /// Materials as sent.
    pub materials: &'a [MaterialInput],
    /// Who lodges it: the applicant, or the clerk at the window.
    pub actor: &'a Actor,
    /// The idempotency key, if the request carried one.
    pub idem: Option<IdemKey>,
    /// Whose shared data backs it, for the check of prefilled values and 免提交 materials.
    pub shared: SharedData,
}

/// The case an application became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lodged {
    /// The case number (办件编号).
    pub case_no: String,
    /// The applicant's query code (查询码) for the public status query.
    pub query_code: String,
    /// Its status: always submitted, unless this answers a repeat of an older request.
    pub status: CaseStatus,
}

/// Validates and lodges an application. A repeat with the same idempotency key answers
/// the first case.
pub async fn lodge(app: &AppState, a: NewApplication<'_>) -> Result<Lodged> {
    if let Some(earlier) = idempotency::earlier(app, a.idem.as_ref()).await? {
        return Ok(earlier);
    }
    let valid = validate(app, &a).await?;
    write(app, &a, valid).await
}

/// An application that passed every check.
pub struct Valid {
    /// The form values, normalised.
    pub values: Map<String, Value>,
    /// What the shared-data check confirmed (materials with evidence, provenance, reads).
    pub confirmed: Confirmed,
}

/// Checks the form and the materials, then the shared data; every problem is reported
/// at once, each at its field.
pub async fn validate(app: &AppState, a: &NewApplication<'_>) -> Result<Valid> {
    let mut issues = Vec::new();
    let values = form::validate_form(a.service, a.values, today()).unwrap_or_else(|e| {
        issues.extend(e);
        Map::new()
    });
    let resolved = materials::resolve(app, a.service, a.materials, a.actor.account()).await?;
    issues.extend(resolved.issues);
    issues.extend(form::check_materials(a.service, &resolved.provided));
    if !issues.is_empty() {
        return Err(Error::Invalid(issues));
    }
    let confirmed =
        prefill::check_shared_data(app, &a.shared, a.service, &values, resolved.rows).await?;
    Ok(Valid { values, confirmed })
}

/// Everything one attempt to lodge writes.
pub struct NewCase {
    /// The case row.
    pub case: CaseRow,
    /// Its first history entry (submit).
    pub event: EventRow,
    /// One event per routed department.
    pub outbox: Vec<OutboxRow>,
    /// The applicant's receipt, when they have an account.
    pub notices: Vec<NoticeRow>,
}

/// Builds the new case with a fresh number and query code. Pure but for the random draw.
pub fn new_case(
    a: &NewApplication<'_>,
    valid: &Valid,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> NewCase {
    let checked = &valid.confirmed.checked;
    let intake = match (a.channel, a.actor) {
        (Channel::Window, Actor::Clerk { account, hall, .. }) => Some((*account, hall.clone())),
        _ => None,
    };
    let c = CaseRow {
        id: Uuid::now_v7(),
        case_no: case::new_case_number(today),
        query_code: case::new_query_code(),
        service_code: a.service.code.clone(),
        service_version: a.service.version(),
        department: a.service.department.clone(),
        applicant: a.applicant.clone(),
        channel: a.channel.code().to_owned(),
        intake_account: intake.as_ref().map(|i| i.0),
        intake_hall: intake.map(|i| i.1),
        status: CaseStatus::Submitted.code().to_owned(),
        form: Value::Object(valid.values.clone()),
        accepted_on: None,
        due_on: None,
        legal_due_on: None,
        due_provisional: false,
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
        actor: a.actor.role().code().to_owned(),
        actor_id: Some(a.actor.id()),
        actor_name: a.actor.name().to_owned(),
        action: Some(Action::Submit.code().to_owned()),
        from_status: Some(CaseStatus::Draft.code().to_owned()),
        to_status: c.status.clone(),
        note: None,
        attachments: json!([]),
    };
    let outbox = outbox_for(a.service, &c, Action::Submit);
    let notices = notice_for(&c, a.service, Action::Submit, a.actor.role(), None)
        .into_iter()
        .collect();
    NewCase {
        case: c,
        event,
        outbox,
        notices,
    }
}

/// Case numbers drawn before giving up: a collision is rare (8 random characters per
/// day), five in a row means something else is wrong.
const DRAWS: usize = 5;

/// Writes the case in one transaction with its history entry, materials (uploads now
/// attached), events, receipt, the reads of the shared-data check and the idempotency
/// record; draws another number when the one drawn is taken.
pub async fn write(app: &AppState, a: &NewApplication<'_>, valid: Valid) -> Result<Lodged> {
    let now = Utc::now();
    for _ in 0..DRAWS {
        let new = new_case(a, &valid, today(), now);
        let lodged = Lodged {
            case_no: new.case.case_no.clone(),
            query_code: new.case.query_code.clone(),
            status: CaseStatus::Submitted,
        };
        let idem = a
            .idem
            .as_ref()
            .map(|k| idempotency::record(k, Kind::Created, &lodged))
            .transpose()?;
        let w = CaseWrite {
            event: &new.event,
            materials: &valid.confirmed.materials,
            outbox: &new.outbox,
            notices: &new.notices,
            idem: idem.as_ref(),
            access: &valid.confirmed.reads,
        };
        match app.store.create_case(&new.case, w).await? {
            WriteOutcome::Done => {
                record_metrics(&new.case, &valid.confirmed.materials, a.channel);
                tracing::info!(case_no = %new.case.case_no, service = %new.case.service_code, channel = a.channel.code(), "case lodged");
                return Ok(lodged);
            }
            WriteOutcome::Replay(prior) => {
                return idempotency::replay_after_race(prior, a.idem.as_ref());
            }
            WriteOutcome::Conflict => continue,
        }
    }
    Err(Error::Internal(anyhow::anyhow!(
        "could not draw a free case number in {DRAWS} attempts"
    )))
}

/// Counts lodged cases by channel, and per service the form fields filled from shared
/// data and the materials not uploaded (the figures the city is assessed on).
fn record_metrics(c: &CaseRow, materials: &[NewMaterial], channel: Channel) {
    metrics::counter!("onewindow_cases_lodged_total", "channel" => channel.code()).increment(1);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::identity::AccountKind;
    use crate::sharing::prefill::Checked;
    use crate::usecases::testing::{self, catalogue};

    fn applicant(account: Option<Uuid>) -> CaseApplicant {
        CaseApplicant {
            account_id: account,
            kind: AccountKind::Person,
            name: "孟淑华".into(),
            id_number: None,
            uscc: None,
            phone: None,
        }
    }

    fn valid() -> Valid {
        Valid {
            values: Map::new(),
            confirmed: Confirmed {
                materials: Vec::new(),
                checked: Checked {
                    provenance: json!({ "applicant_name": { "source": "person.name" } }),
                    fields_filled: 4,
                    fields_prefilled: 2,
                },
                reads: Vec::new(),
            },
        }
    }

    #[test]
    fn a_window_case_records_its_clerk_and_hall_and_every_routed_department_hears_of_it() {
        let cat = catalogue();
        let service = cat.service(testing::NEWBORN).expect("joint service");
        let clerk = Actor::Clerk {
            account: Uuid::now_v7(),
            name: "孙".into(),
            hall: "海拉尔区政务服务中心".into(),
            departments: vec![service.department.clone()],
        };
        let a = NewApplication {
            service,
            applicant: applicant(None),
            channel: Channel::Window,
            values: &Map::new(),
            materials: &[],
            actor: &clerk,
            idem: None,
            shared: SharedData {
                who: None,
                snapshot_of: None,
            },
        };
        let today = NaiveDate::from_ymd_opt(2026, 3, 2).expect("date");
        let new = new_case(&a, &valid(), today, Utc::now());
        assert!(new.case.case_no.contains("20260302"));
        assert_eq!(new.case.channel, "window");
        assert_eq!(new.case.intake_account, clerk.account());
        assert_eq!(
            new.case.intake_hall.as_deref(),
            Some("海拉尔区政务服务中心")
        );
        assert_eq!((new.case.fields_filled, new.case.fields_prefilled), (4, 2));
        assert_eq!(new.event.actor, "clerk");
        assert_eq!(new.event.to_status, "submitted");
        assert_eq!(new.outbox.len(), service.routing.departments.len());
        assert!(new.notices.is_empty(), "a walk-in applicant has no account");
    }

    #[test]
    fn an_online_applicant_gets_a_receipt() {
        let cat = catalogue();
        let service = cat.service(testing::SSC).expect("service");
        let account = Uuid::now_v7();
        let me = Actor::Applicant {
            account,
            name: "孟淑华".into(),
            enterprise: None,
            assurance: 3,
        };
        let a = NewApplication {
            service,
            applicant: applicant(Some(account)),
            channel: Channel::Online,
            values: &Map::new(),
            materials: &[],
            actor: &me,
            idem: None,
            shared: SharedData {
                who: None,
                snapshot_of: None,
            },
        };
        let new = new_case(&a, &valid(), today(), Utc::now());
        assert_eq!(new.case.intake_hall, None);
        assert_eq!(new.event.actor_id, Some(account.to_string()));
        assert_eq!(new.notices.len(), 1);
        assert_eq!(new.notices[0].account_id, account);
    }
}
