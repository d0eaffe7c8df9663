//! Applying online: a logged-in applicant lodges an application for themselves or for
//! the enterprise they represent. The JSON API and the apply page both come here.
//!
//! [`may_apply_online`] decides (pure) whether and as whom; [`applicant_of`] builds the
//! applicant from the account (never from the request); [`apply_online`] reads the
//! account and lodges with the applicant's shared data, so prefilled values are
//! re-checked and 免提交 materials verified.

use serde_json::{Map, Value};

use super::lodge::{self, Channel, Lodged, NewApplication};
use super::prefill::{SharedData, account_gone};
use super::{Actor, Error, IdemKey, MaterialInput, Result};
use crate::auth::identity::AccountKind;
use crate::domain::catalogue::{ApplicantType, Channel as ServiceChannel, Service};
use crate::sharing::prefill::who_from_account;
use crate::state::AppState;
use crate::store::{Account, CaseApplicant};

/// Whether `actor` may apply online for `service`: the service takes online applications,
/// the kind of account fits (individual or enterprise), and their login's assurance level
/// is high enough. Answers the enterprise (USCC) the application is made for, or `None`
/// for an individual.
pub fn may_apply_online(service: &Service, actor: &Actor) -> Result<Option<String>> {
    let Actor::Applicant {
        enterprise,
        assurance,
        ..
    } = actor
    else {
        return Err(Error::not_allowed(
            "此功能仅供办事群众和企业使用。",
            "Only citizens and enterprise users can do this.",
        ));
    };
    if !service.channels.contains(&ServiceChannel::Online) {
        return Err(Error::conflict(
            "此事项只能到窗口办理。",
            "This service is only handled at a window.",
        ));
    }
    let as_enterprise =
        enterprise.is_some() && service.applicant_types.contains(&ApplicantType::Enterprise);
    let as_person =
        enterprise.is_none() && service.applicant_types.contains(&ApplicantType::Person);
    if !as_enterprise && !as_person {
        return Err(Error::not_allowed(
            "您的账户类型不能申请此事项（个人/企业不符）。",
            "Your kind of account cannot apply for this service (individual vs enterprise).",
        ));
    }
    if *assurance < service.min_assurance {
        return Err(Error::not_allowed(
            format!(
                "此事项要求实名认证等级不低于{}级，您当前为{}级。详见 /services/{}/eligibility",
                service.min_assurance, assurance, service.code
            ),
            format!(
                "This service needs assurance level {} (yours is {}). See /services/{}/eligibility",
                service.min_assurance, assurance, service.code
            ),
        ));
    }
    Ok(enterprise.clone().filter(|_| as_enterprise))
}

/// The applicant of an online case, from their account: the person, or the enterprise
/// they act for (by its USCC from the login and its name from the account).
pub fn applicant_of(account: &Account, enterprise: Option<String>) -> CaseApplicant {
    let as_enterprise = enterprise.is_some();
    CaseApplicant {
        account_id: Some(account.id),
        kind: if as_enterprise {
            AccountKind::Enterprise
        } else {
            AccountKind::Person
        },
        name: match (&account.enterprise, as_enterprise) {
            (Some(e), true) => e.name.clone(),
            _ => account.name.clone(),
        },
        id_number: account.id_number.clone(),
        uscc: enterprise,
        phone: account.phone.clone(),
    }
}

/// Lodges a logged-in applicant's online application.
pub async fn apply_online(
    app: &AppState,
    actor: &Actor,
    service: &Service,
    values: &Map<String, Value>,
    materials: &[MaterialInput],
    idem: Option<IdemKey>,
) -> Result<Lodged> {
    let enterprise = may_apply_online(service, actor)?;
    let account_id = actor.account().ok_or_else(account_gone)?;
    let account = app
        .store
        .account(account_id)
        .await?
        .ok_or_else(account_gone)?;
    let applicant = applicant_of(&account, enterprise);
    let who = who_from_account(&account, applicant.uscc.clone());
    lodge::lodge(
        app,
        NewApplication {
            service,
            applicant,
            channel: Channel::Online,
            values,
            materials,
            actor,
            idem,
            shared: SharedData {
                who: Some(who),
                snapshot_of: Some(account.id),
            },
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::testing::{self, catalogue};
    use uuid::Uuid;

    fn applicant(enterprise: Option<&str>, assurance: u8) -> Actor {
        Actor::Applicant {
            account: Uuid::now_v7(),
            name: "王小明".into(),
            enterprise: enterprise.map(str::to_owned),
            assurance,
        }
    }

    #[test]
    fn who_may_apply_online_and_as_whom() {
        let cat = catalogue();
        let person_only = cat.service(testing::SSC).expect("service");
        let need = person_only.min_assurance;
        assert_eq!(
            may_apply_online(person_only, &applicant(None, need)).expect("a person may"),
            None
        );
        assert!(matches!(
            may_apply_online(person_only, &applicant(Some("91150700MA0N1X2Y3Z"), need)),
            Err(Error::NotAllowed { .. })
        ));
        assert!(matches!(
            may_apply_online(person_only, &applicant(None, need - 1)),
            Err(Error::NotAllowed { .. })
        ));
        let staff = Actor::Operator {
            account: Uuid::now_v7(),
            name: "运维".into(),
        };
        assert!(may_apply_online(person_only, &staff).is_err());
        let mut window_only = person_only.clone();
        window_only.channels = vec![ServiceChannel::Window];
        assert!(matches!(
            may_apply_online(&window_only, &applicant(None, 3)),
            Err(Error::Conflict { .. })
        ));
        let for_enterprises = cat
            .services()
            .iter()
            .find(|s| {
                s.channels.contains(&ServiceChannel::Online)
                    && s.applicant_types.contains(&ApplicantType::Enterprise)
            })
            .expect("an online enterprise service");
        assert_eq!(
            may_apply_online(for_enterprises, &applicant(Some("91150700MA0N1X2Y3Z"), 3))
                .expect("an enterprise user may"),
            Some("91150700MA0N1X2Y3Z".to_owned())
        );
    }
}
