//! Who someone is once logged in, and how provider claims become that. Pure: the claim
//! mapping is tested without a provider.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::ids::{ResidentId, Uscc};

/// Which login a session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Citizens and enterprise users (the public client).
    Public,
    /// Clerks, department officers and operators (the staff client).
    Staff,
}

/// The kind of account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// 自然人.
    Person,
    /// Someone acting for a legal entity (法人).
    Enterprise,
    /// Government staff.
    Staff,
}

impl AccountKind {
    /// Stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            AccountKind::Person => "person",
            AccountKind::Enterprise => "enterprise",
            AccountKind::Staff => "staff",
        }
    }

    /// Parses a stored code.
    pub fn from_code(s: &str) -> Option<AccountKind> {
        match s {
            "person" => Some(AccountKind::Person),
            "enterprise" => Some(AccountKind::Enterprise),
            "staff" => Some(AccountKind::Staff),
            _ => None,
        }
    }
}

/// The enterprise a user represents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterpriseRep {
    /// The enterprise's 统一社会信用代码.
    pub uscc: String,
    /// Its name.
    pub name: String,
    /// The user's role in it (legal_representative, agent …).
    pub role: String,
}

/// A role, with what it is bound to. Role checks are extractors in `auth::extract`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// A citizen applying for themselves.
    Citizen,
    /// A user applying for an enterprise.
    EnterpriseUser {
        /// The enterprise's USCC.
        uscc: String,
    },
    /// A window clerk (窗口人员) of a service hall serving some departments.
    Clerk {
        /// Service hall id.
        hall: String,
        /// USCCs of the departments the hall takes applications for.
        departments: Vec<String>,
    },
    /// An officer of one department.
    DepartmentOfficer {
        /// The department's USCC.
        department: String,
    },
    /// Configures the system and sees the figures.
    Operator,
}

impl Role {
    /// The role's code.
    pub fn code(&self) -> &'static str {
        match self {
            Role::Citizen => "citizen",
            Role::EnterpriseUser { .. } => "enterprise_user",
            Role::Clerk { .. } => "clerk",
            Role::DepartmentOfficer { .. } => "department_officer",
            Role::Operator => "operator",
        }
    }
}

/// An identity as asserted by a provider, checked and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Provider issuer.
    pub issuer: String,
    /// Subject at that provider.
    pub subject: String,
    /// Account kind.
    pub kind: AccountKind,
    /// Display name.
    pub name: String,
    /// Resident ID number, when the provider gives one.
    pub id_number: Option<ResidentId>,
    /// Phone number.
    pub phone: Option<String>,
    /// Email address, for notifications.
    pub email: Option<String>,
    /// Identity assurance level, 1–3 (0 when the provider says nothing usable).
    pub assurance: u8,
    /// The represented enterprise.
    pub enterprise: Option<EnterpriseRep>,
    /// Roles.
    pub roles: Vec<Role>,
}

/// The claim names to read (configuration).
#[derive(Debug, Clone)]
pub struct ClaimNames {
    /// Name claim.
    pub name: String,
    /// 身份证号 claim.
    pub id_number: String,
    /// Phone claim.
    pub phone: String,
    /// Email claim.
    pub email: String,
    /// Assurance claim.
    pub assurance: String,
    /// value → level table for the assurance claim.
    pub acr_levels: Vec<(String, u8)>,
    /// Enterprise USCC claim.
    pub uscc: String,
    /// Enterprise name claim.
    pub enterprise_name: String,
    /// Enterprise role claim.
    pub enterprise_role: String,
    /// Staff roles claim.
    pub roles: String,
    /// Officer's department claim.
    pub department: String,
    /// Clerk's hall claim.
    pub service_hall: String,
    /// Clerk's departments claim.
    pub hall_departments: String,
}

/// Why a login was refused after the provider vouched for the user. The messages are
/// shown to the user; they never contain the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// A claim is missing.
    #[error("the identity provider did not send the {0} claim")]
    Missing(String),
    /// A claim has an invalid value.
    #[error("the identity provider sent an invalid {claim}: {reason}")]
    Invalid {
        /// Claim name.
        claim: String,
        /// Why.
        reason: String,
    },
    /// A staff login without any staff role.
    #[error("this account has no staff role (clerk, department_officer or operator)")]
    NoStaffRole,
}

fn string(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn strings(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => s
            .split([' ', ','])
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Maps an assurance claim value to a level: the configured table first, then a bare
/// `1`–`3`. Anything else is level 0 (nothing asserted).
pub fn assurance_level(value: Option<&str>, table: &[(String, u8)]) -> u8 {
    let Some(v) = value else { return 0 };
    if let Some((_, l)) = table.iter().find(|(k, _)| k == v) {
        return *l;
    }
    v.trim()
        .parse::<u8>()
        .ok()
        .filter(|l| (1..=3).contains(l))
        .unwrap_or(0)
}

/// Builds an [`Identity`] from the merged ID-token and userinfo claims.
pub fn identity_from_claims(
    issuer: &str,
    audience: Audience,
    claims: &Map<String, Value>,
    names: &ClaimNames,
) -> Result<Identity, IdentityError> {
    let subject = string(claims, "sub").ok_or_else(|| IdentityError::Missing("sub".into()))?;
    let name =
        string(claims, &names.name).ok_or_else(|| IdentityError::Missing(names.name.clone()))?;
    let id_number = match string(claims, &names.id_number) {
        Some(v) => Some(ResidentId::parse(&v).map_err(|e| IdentityError::Invalid {
            claim: names.id_number.clone(),
            reason: e.to_string(),
        })?),
        None => None,
    };
    let phone = string(claims, &names.phone);
    // Only a plausible address is kept; anything else is dropped, not an error.
    let email = string(claims, &names.email).filter(|e| {
        e.len() <= 254
            && e.split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
            && !e.contains(char::is_whitespace)
    });
    let assurance = assurance_level(
        string(claims, &names.assurance).as_deref(),
        &names.acr_levels,
    );

    match audience {
        Audience::Public => {
            // A citizen or enterprise login needs who they are and how sure the provider
            // is: a provider that does not send the configured claims is refused (naming
            // the claim), never let in with no ID number or a silent assurance level 0.
            // (an enterprise representative is identified by the enterprise's code)
            if id_number.is_none() && string(claims, &names.uscc).is_none() {
                return Err(IdentityError::Missing(names.id_number.clone()));
            }
            if string(claims, &names.assurance).is_none() {
                return Err(IdentityError::Missing(names.assurance.clone()));
            }
            if assurance == 0 {
                return Err(IdentityError::Invalid {
                    claim: names.assurance.clone(),
                    reason: "the value is not a level 1–3 nor one mapped by oidc_acr_levels".into(),
                });
            }
            let enterprise = match string(claims, &names.uscc) {
                Some(code) => {
                    let uscc = Uscc::parse(&code).map_err(|e| IdentityError::Invalid {
                        claim: names.uscc.clone(),
                        reason: e.to_string(),
                    })?;
                    Some(EnterpriseRep {
                        uscc: uscc.as_str().to_owned(),
                        name: string(claims, &names.enterprise_name)
                            .ok_or_else(|| IdentityError::Missing(names.enterprise_name.clone()))?,
                        role: string(claims, &names.enterprise_role)
                            .unwrap_or_else(|| "agent".into()),
                    })
                }
                None => None,
            };
            let (kind, roles) = match &enterprise {
                Some(e) => (
                    AccountKind::Enterprise,
                    vec![Role::EnterpriseUser {
                        uscc: e.uscc.clone(),
                    }],
                ),
                None => (AccountKind::Person, vec![Role::Citizen]),
            };
            Ok(Identity {
                issuer: issuer.to_owned(),
                subject,
                kind,
                name,
                id_number,
                phone,
                email,
                assurance,
                enterprise,
                roles,
            })
        }
        Audience::Staff => {
            let mut roles = Vec::new();
            for r in strings(claims, &names.roles) {
                match r.as_str() {
                    "clerk" => {
                        let hall = string(claims, &names.service_hall)
                            .ok_or_else(|| IdentityError::Missing(names.service_hall.clone()))?;
                        let departments = strings(claims, &names.hall_departments)
                            .into_iter()
                            .map(|d| {
                                Uscc::parse(&d).map(|u| u.as_str().to_owned()).map_err(|e| {
                                    IdentityError::Invalid {
                                        claim: names.hall_departments.clone(),
                                        reason: e.to_string(),
                                    }
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        roles.push(Role::Clerk { hall, departments });
                    }
                    "department_officer" => {
                        let d = string(claims, &names.department)
                            .ok_or_else(|| IdentityError::Missing(names.department.clone()))?;
                        let uscc = Uscc::parse(&d).map_err(|e| IdentityError::Invalid {
                            claim: names.department.clone(),
                            reason: e.to_string(),
                        })?;
                        roles.push(Role::DepartmentOfficer {
                            department: uscc.as_str().to_owned(),
                        });
                    }
                    "operator" => roles.push(Role::Operator),
                    _ => {} // roles of other systems are none of our business
                }
            }
            if roles.is_empty() {
                return Err(IdentityError::NoStaffRole);
            }
            Ok(Identity {
                issuer: issuer.to_owned(),
                subject,
                kind: AccountKind::Staff,
                name,
                id_number,
                phone,
                email,
                assurance,
                enterprise: None,
                roles,
            })
        }
    }
}

/// Accepts only local paths as a place to return to after login, so the login endpoint
/// cannot be used as an open redirect (`//evil.example`, `/\\evil`, `https://…`).
pub fn safe_return_to(candidate: Option<&str>) -> String {
    let Some(p) = candidate else {
        return "/".into();
    };
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && !p.chars().any(|c| c.is_control() || c == '\\')
        && p.len() <= 2048;
    if ok { p.to_owned() } else { "/".into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> ClaimNames {
        ClaimNames {
            name: "name".into(),
            id_number: "id_number".into(),
            phone: "phone_number".into(),
            email: "email".into(),
            assurance: "acr".into(),
            acr_levels: vec![("urn:onewindow:loa:2".into(), 2)],
            uscc: "uscc".into(),
            enterprise_name: "enterprise_name".into(),
            enterprise_role: "enterprise_role".into(),
            roles: "roles".into(),
            department: "department".into(),
            service_hall: "service_hall".into(),
            hall_departments: "hall_departments".into(),
        }
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn a_citizen_gets_the_citizen_role_and_a_checked_id_number() {
        let c = map(
            json!({"sub": "u1", "name": "王小明", "id_number": "150702198506123025", "acr": "urn:onewindow:loa:2"}),
        );
        let id = identity_from_claims("https://idp", Audience::Public, &c, &names()).expect("ok");
        assert_eq!(id.kind, AccountKind::Person);
        assert_eq!(id.roles, vec![Role::Citizen]);
        assert_eq!(id.assurance, 2);
        assert_eq!(id.id_number.expect("id").masked(), "150702********3025");
    }

    #[test]
    fn a_citizen_login_without_the_configured_claims_is_refused_naming_the_claim() {
        let full = json!({"sub": "u1", "name": "王小明", "id_number": "150702198506123025", "acr": "urn:onewindow:loa:2"});
        for (drop, claim) in [("id_number", "id_number"), ("acr", "acr")] {
            let mut c = map(full.clone());
            c.remove(drop);
            let e = identity_from_claims("i", Audience::Public, &c, &names()).expect_err(drop);
            assert_eq!(e, IdentityError::Missing(claim.into()));
            assert!(e.to_string().contains(claim), "{e}");
        }
        let mut c = map(full);
        c.insert("acr".into(), json!("urn:unknown:level"));
        let e = identity_from_claims("i", Audience::Public, &c, &names()).expect_err("unmapped");
        assert!(
            matches!(&e, IdentityError::Invalid { claim, .. } if claim == "acr"),
            "never a silent level 0: {e}"
        );
    }

    #[test]
    fn an_invalid_id_number_refuses_the_login_without_echoing_it() {
        let c = map(json!({"sub": "u1", "name": "x", "id_number": "150702198506123026"}));
        let e = identity_from_claims("i", Audience::Public, &c, &names()).expect_err("bad");
        assert!(matches!(e, IdentityError::Invalid { .. }));
        assert!(!e.to_string().contains("150702198506123026"));
    }

    #[test]
    fn an_enterprise_user_is_bound_to_the_enterprise() {
        let c = map(
            json!({"sub": "u2", "name": "陈静", "uscc": "91150700MA0N2C3D40", "enterprise_name": "草原乳业", "enterprise_role": "legal_representative", "acr": "3"}),
        );
        let id = identity_from_claims("i", Audience::Public, &c, &names()).expect("ok");
        assert_eq!(id.kind, AccountKind::Enterprise);
        assert_eq!(
            id.roles,
            vec![Role::EnterpriseUser {
                uscc: "91150700MA0N2C3D40".into()
            }]
        );
        assert_eq!(id.assurance, 3);
    }

    #[test]
    fn staff_roles_carry_their_bindings() {
        let c = map(
            json!({"sub": "s", "name": "孙丽", "roles": ["clerk", "operator", "auditor"], "service_hall": "hall-1", "hall_departments": ["11150700MB1530001X"]}),
        );
        let id = identity_from_claims("i", Audience::Staff, &c, &names()).expect("ok");
        assert_eq!(id.kind, AccountKind::Staff);
        assert_eq!(
            id.roles,
            vec![
                Role::Clerk {
                    hall: "hall-1".into(),
                    departments: vec!["11150700MB1530001X".into()]
                },
                Role::Operator
            ]
        );
        let c = map(
            json!({"sub": "s", "name": "x", "roles": "department_officer", "department": "11150700MB1530001X"}),
        );
        let id = identity_from_claims("i", Audience::Staff, &c, &names()).expect("ok");
        assert_eq!(
            id.roles,
            vec![Role::DepartmentOfficer {
                department: "11150700MB1530001X".into()
            }]
        );
    }

    #[test]
    fn a_staff_login_without_a_staff_role_is_refused() {
        let c = map(json!({"sub": "s", "name": "x", "roles": ["citizen"]}));
        assert_eq!(
            identity_from_claims("i", Audience::Staff, &c, &names()),
            Err(IdentityError::NoStaffRole)
        );
        let c = map(json!({"sub": "s", "name": "x", "roles": ["department_officer"]}));
        assert_eq!(
            identity_from_claims("i", Audience::Staff, &c, &names()),
            Err(IdentityError::Missing("department".into()))
        );
    }

    #[test]
    fn assurance_levels_map_from_the_table_or_a_bare_digit() {
        let t = vec![("urn:x:high".to_owned(), 3)];
        assert_eq!(assurance_level(Some("urn:x:high"), &t), 3);
        assert_eq!(assurance_level(Some("2"), &t), 2);
        assert_eq!(assurance_level(Some("7"), &t), 0);
        assert_eq!(assurance_level(Some("urn:other"), &t), 0);
        assert_eq!(assurance_level(None, &t), 0);
    }

    #[test]
    fn only_local_paths_are_return_targets() {
        assert_eq!(safe_return_to(Some("/api/v1/me")), "/api/v1/me");
        assert_eq!(safe_return_to(Some("/services?q=x")), "/services?q=x");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "evil",
            "/a\nb",
            "/\\/x",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_to(None), "/");
    }
}
