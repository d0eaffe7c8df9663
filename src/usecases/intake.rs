//! Window intake (一窗受理): a clerk registers a walk-in applicant's application.
//!
//! [`check_hall`] decides whether this clerk's hall takes the service, [`walk_in_applicant`]
//! checks the applicant as typed in (both pure); [`intake`] then lodges with the
//! applicant's shared data read as the clerk's (their prefill lookup is the snapshot).

use serde_json::{Map, Value};

use super::lodge::{self, Channel, Lodged, NewApplication};
use super::prefill::SharedData;
use super::{Actor, Error, IdemKey, MaterialInput, Result};
use crate::auth::identity::AccountKind;
use crate::domain::catalogue::{ApplicantType, Channel as ServiceChannel, Service};
use crate::domain::form::FieldIssue;
use crate::domain::ids::{ResidentId, Uscc};
use crate::sharing::prefill::who_at_window;
use crate::state::AppState;
use crate::store::CaseApplicant;

/// A walk-in applicant as the clerk typed them in.
#[derive(Debug, Clone, Default)]
pub struct WalkIn {
    /// `person` or `enterprise`.
    pub kind: String,
    /// The person's or the enterprise's name.
    pub name: String,
    /// The person's (or the enterprise's agent's) resident ID number.
    pub id_number: Option<String>,
    /// The enterprise's USCC.
    pub uscc: Option<String>,
    /// A contact phone.
    pub phone: Option<String>,
}

/// Whether a hall serving `departments` may take the service in: it serves the service's
/// department, and the service is handled at a window at all.
pub fn check_hall(service: &Service, departments: &[String]) -> Result<()> {
    if !departments.contains(&service.department) {
        return Err(Error::not_allowed(
            "本大厅不受理该部门的事项。",
            "This service hall does not take applications for that department.",
        ));
    }
    if !service.channels.contains(&ServiceChannel::Window) {
        return Err(Error::conflict(
            "此事项不在窗口办理。",
            "This service is not handled at a window.",
        ));
    }
    Ok(())
}

fn issue(field: &str, zh: impl Into<String>, en: impl Into<String>) -> FieldIssue {
    FieldIssue {
        field: field.into(),
        zh: zh.into(),
        en: en.into(),
    }
}

/// Checks a walk-in applicant: a kind the service takes, a name, a valid resident ID
/// number, and a valid USCC for an enterprise. Every problem at once, each at
/// `applicant.<field>`.
pub fn walk_in_applicant(
    service: &Service,
    w: &WalkIn,
) -> std::result::Result<CaseApplicant, Vec<FieldIssue>> {
    let mut issues = Vec::new();
    let kind = match w.kind.as_str() {
        "person" if service.applicant_types.contains(&ApplicantType::Person) => AccountKind::Person,
        "enterprise" if service.applicant_types.contains(&ApplicantType::Enterprise) => {
            AccountKind::Enterprise
        }
        _ => {
            issues.push(issue(
                "applicant.kind",
                "申请人类型与事项不符（person 或 enterprise）。",
                "The applicant kind does not fit the service (person or enterprise).",
            ));
            AccountKind::Person
        }
    };
    if w.name.trim().is_empty() || w.name.chars().count() > 100 {
        issues.push(issue(
            "applicant.name",
            "请填写申请人姓名或名称（不超过100字）。",
            "Give the applicant's name (at most 100 characters).",
        ));
    }
    let id_number = match w.id_number.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => match ResidentId::parse(s) {
            Ok(id) => Some(id),
            Err(e) => {
                issues.push(issue(
                    "applicant.id_number",
                    format!("身份证号有误：{}", e.message_zh()),
                    format!("Invalid resident ID number: {e}"),
                ));
                None
            }
        },
        None => {
            issues.push(issue(
                "applicant.id_number",
                "请填写申请人（或经办人）的身份证号。",
                "Give the applicant's (or agent's) resident ID number.",
            ));
            None
        }
    };
    let uscc = match (kind, w.uscc.as_deref()) {
        (AccountKind::Enterprise, Some(u)) => match Uscc::parse(u) {
            Ok(u) => Some(u.as_str().to_owned()),
            Err(e) => {
                issues.push(issue(
                    "applicant.uscc",
                    format!("统一社会信用代码有误：{}", e.message_zh()),
                    format!("Invalid unified social credit code: {e}"),
                ));
                None
            }
        },
        (AccountKind::Enterprise, None) => {
            issues.push(issue(
                "applicant.uscc",
                "企业申请须填写统一社会信用代码。",
                "An enterprise application needs the unified social credit code.",
            ));
            None
        }
        _ => None,
    };
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(CaseApplicant {
        account_id: None,
        kind,
        name: w.name.trim().to_owned(),
        id_number,
        uscc,
        phone: w.phone.clone(),
    })
}

/// Registers a walk-in applicant's application at the clerk's window.
pub async fn intake(
    app: &AppState,
    clerk: &Actor,
    service: &Service,
    walk_in: &WalkIn,
    values: &Map<String, Value>,
    materials: &[MaterialInput],
    idem: Option<IdemKey>,
) -> Result<Lodged> {
    let Actor::Clerk {
        account,
        name,
        hall,
        departments,
    } = clerk
    else {
        return Err(Error::not_allowed(
            "此功能仅供窗口工作人员使用。",
            "Only window clerks can do this.",
        ));
    };
    check_hall(service, departments)?;
    let applicant = walk_in_applicant(service, walk_in).map_err(Error::Invalid)?;
    let who = who_at_window(
        applicant.id_number.as_ref(),
        applicant.uscc.as_deref(),
        *account,
        name,
        hall,
    );
    lodge::lodge(
        app,
        NewApplication {
            service,
            applicant,
            channel: Channel::Window,
            values,
            materials,
            actor: clerk,
            idem,
            shared: SharedData {
                who: Some(who),
                snapshot_of: Some(*account),
            },
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::testing::{self, catalogue};

    #[test]
    fn a_hall_takes_only_its_departments_services() {
        let cat = catalogue();
        let s = cat.service(testing::SSC).expect("service");
        let mine = [s.department.clone()];
        assert!(check_hall(s, &mine).is_ok());
        assert!(matches!(
            check_hall(s, &["other".to_owned()]),
            Err(Error::NotAllowed { .. })
        ));
        let mut online_only = s.clone();
        online_only.channels = vec![ServiceChannel::Online];
        assert!(matches!(
            check_hall(&online_only, &mine),
            Err(Error::Conflict { .. })
        ));
    }

    #[test]
    fn every_problem_of_a_walk_in_applicant_is_named() {
        let cat = catalogue();
        let s = cat.service(testing::SSC).expect("a person-only service");
        let bad = WalkIn {
            kind: "enterprise".into(),
            name: " ".into(),
            id_number: Some("150702198506123026".into()),
            ..WalkIn::default()
        };
        let issues = walk_in_applicant(s, &bad).expect_err("refused");
        let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(
            fields,
            ["applicant.kind", "applicant.name", "applicant.id_number"]
        );
        let good = WalkIn {
            kind: "person".into(),
            name: " 孟淑华 ".into(),
            id_number: Some("150702198506123025".into()),
            phone: Some("13800000000".into()),
            ..WalkIn::default()
        };
        let a = walk_in_applicant(s, &good).expect("accepted");
        assert_eq!(a.name, "孟淑华");
        assert_eq!(a.account_id, None);
        assert!(a.id_number.is_some());
    }
}
