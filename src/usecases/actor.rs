//! Who acts: built once, at the edge, from a session or an API token, and handed to the
//! use cases as a value. A use case never parses an identity back out of a string, never
//! looks a token up again, and never guesses which of several roles was meant.

use uuid::Uuid;

use crate::auth::identity::AccountKind;
use crate::domain::case;
use crate::domain::catalogue::Catalogue;
use crate::store::CaseRow;

/// Someone acting on cases, with what their role binds them to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A citizen or an enterprise user, acting on their own applications.
    Applicant {
        /// Their account.
        account: Uuid,
        /// Their name, as the history shows it.
        name: String,
        /// The enterprise (USCC) their login says they act for, if any.
        enterprise: Option<String>,
        /// How strongly their identity was proven at login (1–3).
        assurance: u8,
    },
    /// A window clerk of one service hall, serving some departments' services.
    Clerk {
        /// Their account.
        account: Uuid,
        /// Their name.
        name: String,
        /// The service hall.
        hall: String,
        /// The departments (USCC) served at that hall.
        departments: Vec<String>,
    },
    /// An officer of one department, working on its cases in the gateway.
    Officer {
        /// Their account.
        account: Uuid,
        /// Their name.
        name: String,
        /// Their department's USCC.
        department: String,
    },
    /// An operator: sees every case, takes no step (the state machine's `system`).
    Operator {
        /// Their account.
        account: Uuid,
        /// Their name.
        name: String,
    },
    /// A department's back-end system, through the status API with its token.
    DepartmentSystem {
        /// The token's id.
        token: Uuid,
        /// The token's department (USCC).
        department: String,
        /// As the history shows it (`<department>业务系统`).
        name: String,
    },
}

impl Actor {
    /// The actor's role in the state machine.
    pub fn role(&self) -> case::Actor {
        match self {
            Actor::Applicant { .. } => case::Actor::Applicant,
            Actor::Clerk { .. } => case::Actor::Clerk,
            Actor::Officer { .. } => case::Actor::DepartmentOfficer,
            Actor::Operator { .. } => case::Actor::System,
            Actor::DepartmentSystem { .. } => case::Actor::DepartmentSystem,
        }
    }

    /// The id the history records and idempotency keys are scoped to: the account id, or
    /// `token:<id>` for a department system (so a token and an account never share a
    /// scope). Stored, so the format is kept as earlier versions wrote it.
    pub fn id(&self) -> String {
        match self {
            Actor::Applicant { account, .. }
            | Actor::Clerk { account, .. }
            | Actor::Officer { account, .. }
            | Actor::Operator { account, .. } => account.to_string(),
            Actor::DepartmentSystem { token, .. } => format!("token:{token}"),
        }
    }

    /// The name the history shows.
    pub fn name(&self) -> &str {
        match self {
            Actor::Applicant { name, .. }
            | Actor::Clerk { name, .. }
            | Actor::Officer { name, .. }
            | Actor::Operator { name, .. }
            | Actor::DepartmentSystem { name, .. } => name,
        }
    }

    /// The account, for actors who have one (uploads belong to accounts).
    pub fn account(&self) -> Option<Uuid> {
        match self {
            Actor::Applicant { account, .. }
            | Actor::Clerk { account, .. }
            | Actor::Officer { account, .. }
            | Actor::Operator { account, .. } => Some(*account),
            Actor::DepartmentSystem { .. } => None,
        }
    }

    /// The department the actor acts for, when it acts for exactly one (an officer, or a
    /// department system): the one that concludes its part of a joint case.
    pub fn acting_department(&self) -> Option<&str> {
        match self {
            Actor::Officer { department, .. } | Actor::DepartmentSystem { department, .. } => {
                Some(department)
            }
            _ => None,
        }
    }

    /// Whether the actor may see the case at all; a case they may not see answers as if
    /// it did not exist. Applicants see their own cases; clerks the cases of the
    /// departments their hall serves; operators all; an officer or a department system
    /// the cases their department is responsible for or routed to (a joint case).
    pub fn may_see(&self, c: &CaseRow, catalogue: &Catalogue) -> bool {
        match self {
            Actor::Applicant {
                account,
                enterprise,
                ..
            } => {
                c.applicant.account_id == Some(*account)
                    // an enterprise user acts for their enterprise: its cases, whoever lodged them
                    || (enterprise.is_some()
                        && c.applicant.kind == AccountKind::Enterprise
                        && c.applicant.uscc == *enterprise)
            }
            Actor::Clerk { departments, .. } => departments.contains(&c.department),
            Actor::Operator { .. } => true,
            // an officer stands in for a department without its own system: the same
            // cases as that system's
            Actor::Officer { department, .. } | Actor::DepartmentSystem { department, .. } => {
                c.department == *department
                    || catalogue
                        .service(&c.service_code)
                        .is_some_and(|s| s.routing.departments.contains(department))
            }
        }
    }

    /// The departments whose cases a staff member's lists cover; `None` for all (an
    /// operator), and for applicants, whose lists are by account instead.
    pub fn departments_covered(&self) -> Option<Vec<String>> {
        match self {
            Actor::Clerk { departments, .. } => Some(departments.clone()),
            Actor::Officer { department, .. } | Actor::DepartmentSystem { department, .. } => {
                Some(vec![department.clone()])
            }
            Actor::Applicant { .. } | Actor::Operator { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::testing::{self, case_row, catalogue};

    const HRSS: &str = "11150700MB15300034";

    #[test]
    fn each_actor_sees_only_its_cases() {
        let cat = catalogue();
        let owner = Uuid::now_v7();
        let mut c = case_row(testing::SSC);
        c.department = HRSS.into();
        c.applicant.account_id = Some(owner);
        let applicant = |account| Actor::Applicant {
            account,
            name: "王".into(),
            enterprise: None,
            assurance: 3,
        };
        assert!(applicant(owner).may_see(&c, &cat));
        assert!(!applicant(Uuid::now_v7()).may_see(&c, &cat));
        let clerk = |departments: Vec<String>| Actor::Clerk {
            account: Uuid::now_v7(),
            name: "孙".into(),
            hall: "hall".into(),
            departments,
        };
        assert!(clerk(vec![HRSS.into()]).may_see(&c, &cat));
        assert!(!clerk(vec!["other".into()]).may_see(&c, &cat));
        let officer = Actor::Officer {
            account: Uuid::now_v7(),
            name: "李".into(),
            department: "other".into(),
        };
        assert!(!officer.may_see(&c, &cat));
        let joint = testing::case_row(testing::NEWBORN);
        let routed = cat
            .service(testing::NEWBORN)
            .expect("joint")
            .routing
            .departments
            .iter()
            .find(|d| **d != joint.department)
            .expect("a routed department")
            .clone();
        let co_officer = Actor::Officer {
            account: Uuid::now_v7(),
            name: "马".into(),
            department: routed,
        };
        assert!(
            co_officer.may_see(&joint, &cat),
            "a joint case's routed department"
        );
        assert!(!co_officer.may_see(&c, &cat));
        let system = |department: &str| Actor::DepartmentSystem {
            token: Uuid::now_v7(),
            department: department.into(),
            name: "系统".into(),
        };
        assert!(system(HRSS).may_see(&c, &cat));
        assert!(!system("other").may_see(&c, &cat));
        let op = Actor::Operator {
            account: Uuid::now_v7(),
            name: "运维".into(),
        };
        assert!(op.may_see(&c, &cat));
        assert_eq!(op.role(), case::Actor::System, "operators take no step");
    }

    #[test]
    fn enterprise_users_see_their_enterprise_cases_whoever_lodged_them() {
        let cat = catalogue();
        let mut c = case_row(testing::SSC);
        c.applicant.account_id = None;
        c.applicant.kind = AccountKind::Enterprise;
        c.applicant.uscc = Some("91150700MA0N00000X".into());
        let user = |enterprise: Option<&str>| Actor::Applicant {
            account: Uuid::now_v7(),
            name: "赵".into(),
            enterprise: enterprise.map(str::to_owned),
            assurance: 3,
        };
        assert!(user(Some("91150700MA0N00000X")).may_see(&c, &cat));
        assert!(!user(Some("91150700MA0N11111X")).may_see(&c, &cat));
        assert!(!user(None).may_see(&c, &cat));
        c.applicant.kind = AccountKind::Person;
        assert!(
            !user(Some("91150700MA0N00000X")).may_see(&c, &cat),
            "a person's case is not the enterprise's"
        );
    }

    #[test]
    fn department_systems_are_scoped_by_token_id() {
        let token = Uuid::now_v7();
        let a = Actor::DepartmentSystem {
            token,
            department: HRSS.into(),
            name: "人社局业务系统".into(),
        };
        assert_eq!(a.id(), format!("token:{token}"));
        assert_eq!(a.account(), None);
        assert_eq!(a.acting_department(), Some(HRSS));
        assert_eq!(a.role(), case::Actor::DepartmentSystem);
    }
}
