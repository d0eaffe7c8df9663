//! Access rules as extractors, so a handler's signature says who may call it:
//! [`CurrentUser`] (anyone logged in), [`Applicant`] (citizen or enterprise user),
//! [`Clerk`], [`DepartmentOfficer`], [`Operator`], [`Staff`] (any of the three), and
//! [`DepartmentClient`] for department systems with an API token.
//!
//! The case extractors, [`ApplicantCase`], [`StaffCase`] and [`DepartmentCase`], read the
//! case named by the path's `{case_no}` once, scoped to the caller: a case the caller may
//! not see answers 404, as one that does not exist. Each role turns into the typed
//! [`Actor`] the use cases take.
//!
//! Also the CSRF guard for cookie-authenticated state-changing requests.

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::identity::Role;
use super::session::{Lookup, SESSION_COOKIE, Session};
use super::tokens;
use crate::domain::catalogue::Catalogue;
use crate::http::error::{AppError, Message};
use crate::state::AppState;
use crate::store::{ApiToken, CaseRow};
use crate::usecases::{self, Actor};

/// A logged-in user with a live session.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// The session.
    pub session: Session,
    /// The session id (cookie value), for logout.
    pub session_id: String,
}

fn login_required() -> AppError {
    AppError::Unauthorized(Message::new(
        "请先登录（/auth/login）。",
        "Please log in first (/auth/login).",
    ))
}

fn session_ended() -> AppError {
    AppError::Unauthorized(Message::new(
        "登录已过期，请重新登录（/auth/login）。",
        "Your session has ended. Please log in again (/auth/login).",
    ))
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        if let Some(u) = parts.extensions.get::<CurrentUser>() {
            return Ok(u.clone());
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let id = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned());
        match app
            .sessions
            .load(id.as_deref())
            .await
            .map_err(|e| AppError::Internal(e.into()))?
        {
            Lookup::Live(session) => {
                let user = CurrentUser {
                    session: *session,
                    session_id: id.unwrap_or_default(),
                };
                parts.extensions.insert(user.clone());
                Ok(user)
            }
            Lookup::Ended => Err(session_ended()),
            Lookup::None => Err(login_required()),
        }
    }
}

fn forbidden(zh: &str, en: &str) -> AppError {
    AppError::Forbidden(Message::new(zh, en))
}

/// A citizen or an enterprise user: someone who applies for services.
#[derive(Debug, Clone)]
pub struct Applicant(pub CurrentUser);

impl FromRequestParts<AppState> for Applicant {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        let u = CurrentUser::from_request_parts(parts, app).await?;
        if u.session.has_role("citizen") || u.session.has_role("enterprise_user") {
            Ok(Applicant(u))
        } else {
            Err(forbidden(
                "此功能仅供办事群众和企业使用。",
                "Only citizens and enterprise users can do this.",
            ))
        }
    }
}

impl Applicant {
    /// The applicant as the use cases see them.
    pub fn actor(&self) -> Actor {
        applicant_actor(&self.0.session)
    }
}

/// An applicant's session as the use cases see it: their account, and the enterprise and
/// assurance level their login carries.
pub fn applicant_actor(s: &Session) -> Actor {
    Actor::Applicant {
        account: s.account_id,
        name: s.name.clone(),
        enterprise: s.roles.iter().find_map(|r| match r {
            Role::EnterpriseUser { uscc } => Some(uscc.clone()),
            _ => None,
        }),
        assurance: s.assurance,
    }
}

/// A window clerk, with the hall and departments they serve.
#[derive(Debug, Clone)]
pub struct Clerk {
    /// The user.
    pub user: CurrentUser,
    /// Service hall.
    pub hall: String,
    /// Departments served at that hall.
    pub departments: Vec<String>,
}

impl FromRequestParts<AppState> for Clerk {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        let u = CurrentUser::from_request_parts(parts, app).await?;
        let found = u.session.roles.iter().find_map(|r| match r {
            Role::Clerk { hall, departments } => Some((hall.clone(), departments.clone())),
            _ => None,
        });
        match found {
            Some((hall, departments)) => Ok(Clerk {
                user: u,
                hall,
                departments,
            }),
            None => Err(forbidden(
                "此功能仅供窗口工作人员使用。",
                "Only window clerks can do this.",
            )),
        }
    }
}

impl Clerk {
    /// The clerk as the use cases see them.
    pub fn actor(&self) -> Actor {
        Actor::Clerk {
            account: self.user.session.account_id,
            name: self.user.session.name.clone(),
            hall: self.hall.clone(),
            departments: self.departments.clone(),
        }
    }
}

/// An officer of one department.
#[derive(Debug, Clone)]
pub struct DepartmentOfficer {
    /// The user.
    pub user: CurrentUser,
    /// The department's USCC.
    pub department: String,
}

impl FromRequestParts<AppState> for DepartmentOfficer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        let u = CurrentUser::from_request_parts(parts, app).await?;
        let found = u.session.roles.iter().find_map(|r| match r {
            Role::DepartmentOfficer { department } => Some(department.clone()),
            _ => None,
        });
        match found {
            Some(department) => Ok(DepartmentOfficer {
                user: u,
                department,
            }),
            None => Err(forbidden(
                "此功能仅供部门工作人员使用。",
                "Only department officers can do this.",
            )),
        }
    }
}

impl DepartmentOfficer {
    /// The officer as the use cases see them.
    pub fn actor(&self) -> Actor {
        Actor::Officer {
            account: self.user.session.account_id,
            name: self.user.session.name.clone(),
            department: self.department.clone(),
        }
    }
}

/// An operator.
#[derive(Debug, Clone)]
pub struct Operator(pub CurrentUser);

impl Operator {
    /// The operator as the use cases see them.
    pub fn actor(&self) -> Actor {
        Actor::Operator {
            account: self.0.session.account_id,
            name: self.0.session.name.clone(),
        }
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        let u = CurrentUser::from_request_parts(parts, app).await?;
        if u.session.has_role("operator") {
            Ok(Operator(u))
        } else {
            Err(forbidden(
                "此功能仅供系统运维人员使用。",
                "Only operators can do this.",
            ))
        }
    }
}

/// A department back-end system authenticated by its API token.
#[derive(Debug, Clone)]
pub struct DepartmentClient {
    /// The token (its department and scopes).
    pub token: ApiToken,
}

impl DepartmentClient {
    /// Refuses unless the token carries `scope`.
    pub fn require(&self, scope: &str) -> Result<(), AppError> {
        if self.token.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(forbidden(
                &format!("该令牌没有 {scope} 权限。"),
                &format!("This token lacks the {scope} scope."),
            ))
        }
    }

    /// The department's system as the use cases see it, named as the history shows it
    /// (`<department's short name>业务系统`).
    pub fn actor(&self, catalogue: &Catalogue) -> Actor {
        let department = &self.token.department;
        let short = catalogue
            .department(department)
            .map(|d| d.short_name.clone())
            .unwrap_or_else(|| department.clone());
        Actor::DepartmentSystem {
            token: self.token.id,
            department: department.clone(),
            name: format!("{short}业务系统"),
        }
    }

    /// Refuses unless the token belongs to `department`.
    pub fn require_department(&self, department: &str) -> Result<(), AppError> {
        if self.token.department == department {
            Ok(())
        } else {
            Err(forbidden(
                "该令牌属于其他部门，不能访问本部门的数据。",
                "This token belongs to another department.",
            ))
        }
    }
}

impl FromRequestParts<AppState> for DepartmentClient {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let unauthorized = || {
            let mut r = AppError::Unauthorized(Message::new(
                "需要有效的部门接口令牌（Authorization: Bearer …）。",
                "A valid department API token is required (Authorization: Bearer …).",
            ))
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"onewindow-dept\""),
            );
            r
        };
        let Some(bearer) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return Err(unauthorized());
        };
        if !bearer.starts_with(tokens::TOKEN_PREFIX) {
            return Err(unauthorized());
        }
        let token = app
            .store
            .api_token_by_hash(&tokens::hash(bearer))
            .await
            .map_err(|e| AppError::from(e).into_response())?;
        // Supervision counts every call of a known token (token_usage).
        if let Some(t) = &token {
            let active = t.is_active(chrono::Utc::now());
            crate::supervision::systems::note_token_use(parts, app, t.id, active).await;
        }
        match token {
            // Unknown, revoked and expired tokens get the same answer: no oracle.
            Some(t) if t.is_active(chrono::Utc::now()) => Ok(DepartmentClient { token: t }),
            _ => Err(unauthorized()),
        }
    }
}

/// Any staff member: a clerk, a department officer or an operator. Someone holding
/// several staff roles acts in the first one their login lists.
#[derive(Debug, Clone)]
pub enum Staff {
    /// A window clerk.
    Clerk(Clerk),
    /// A department officer.
    Officer(DepartmentOfficer),
    /// An operator.
    Operator(Operator),
}

impl Staff {
    /// The staff member as the use cases see them.
    pub fn actor(&self) -> Actor {
        match self {
            Staff::Clerk(c) => c.actor(),
            Staff::Officer(o) => o.actor(),
            Staff::Operator(o) => o.actor(),
        }
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        let u = CurrentUser::from_request_parts(parts, app).await?;
        let first = u.session.roles.iter().find_map(|r| match r {
            Role::Clerk { hall, departments } => Some(Staff::Clerk(Clerk {
                user: u.clone(),
                hall: hall.clone(),
                departments: departments.clone(),
            })),
            Role::DepartmentOfficer { department } => Some(Staff::Officer(DepartmentOfficer {
                user: u.clone(),
                department: department.clone(),
            })),
            Role::Operator => Some(Staff::Operator(Operator(u.clone()))),
            _ => None,
        });
        first.ok_or_else(|| forbidden("此功能仅供工作人员使用。", "Only staff can do this."))
    }
}

/// The `{case_no}` of the request's path, read for the case the caller may see.
async fn visible_case(
    parts: &mut Parts,
    app: &AppState,
    actor: &Actor,
) -> Result<CaseRow, AppError> {
    let params = RawPathParams::from_request_parts(parts, app)
        .await
        .map_err(|e| {
            AppError::Internal(anyhow::anyhow!("a case route without its case number: {e}"))
        })?;
    let case_no = params
        .iter()
        .find(|(k, _)| *k == "case_no")
        .map(|(_, v)| v.to_owned())
        .ok_or_else(|| anyhow::anyhow!("a case route without {{case_no}}"))?;
    match app.store.case_by_no(&case_no).await? {
        Some(c) if actor.may_see(&c, &app.catalogue) => Ok(c),
        _ => Err(usecases::Error::case_not_found(&case_no).into()),
    }
}

/// The applicant's own case named in the path; anyone else's is not found.
#[derive(Debug, Clone)]
pub struct ApplicantCase {
    /// The applicant.
    pub applicant: Applicant,
    /// Their case.
    pub case: CaseRow,
}

impl FromRequestParts<AppState> for ApplicantCase {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        let applicant = Applicant::from_request_parts(parts, app).await?;
        let case = visible_case(parts, app, &applicant.actor()).await?;
        Ok(ApplicantCase { applicant, case })
    }
}

/// A case named in the path that the staff member's role covers (a clerk's hall
/// departments, an officer's department, any for an operator); others are not found.
#[derive(Debug, Clone)]
pub struct StaffCase {
    /// The staff member.
    pub staff: Staff,
    /// The case.
    pub case: CaseRow,
}

impl FromRequestParts<AppState> for StaffCase {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        let staff = Staff::from_request_parts(parts, app).await?;
        let case = visible_case(parts, app, &staff.actor()).await?;
        Ok(StaffCase { staff, case })
    }
}

/// A scope a department token must carry for a route.
pub trait Scope: Send + Sync + 'static {
    /// The scope's name, as granted to tokens.
    const NAME: &'static str;
}

/// Reading the department's cases and services.
#[derive(Debug, Clone, Copy)]
pub struct CasesRead;
impl Scope for CasesRead {
    const NAME: &'static str = "cases:read";
}

/// Reporting processing steps.
#[derive(Debug, Clone, Copy)]
pub struct CasesWrite;
impl Scope for CasesWrite {
    const NAME: &'static str = "cases:write";
}

/// Downloading application materials.
#[derive(Debug, Clone, Copy)]
pub struct MaterialsRead;
impl Scope for MaterialsRead {
    const NAME: &'static str = "materials:read";
}

/// A case named in the path that is routed to the token's department (the responsible
/// one, or a joint target), for a token carrying scope `S`. A token without the scope
/// is refused (403) before the case is read; another department's case is not found.
#[derive(Debug, Clone)]
pub struct DepartmentCase<S: Scope> {
    /// The department system.
    pub client: DepartmentClient,
    /// The case.
    pub case: CaseRow,
    scope: PhantomData<S>,
}

impl<S: Scope> FromRequestParts<AppState> for DepartmentCase<S> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let client = DepartmentClient::from_request_parts(parts, app).await?;
        client
            .require(S::NAME)
            .map_err(IntoResponse::into_response)?;
        let case = visible_case(parts, app, &client.actor(&app.catalogue))
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(DepartmentCase {
            client,
            case,
            scope: PhantomData,
        })
    }
}

/// CSRF protection for requests that carry the session cookie and change state.
///
/// Browsers send `Origin` on every cross-origin request and on same-origin POSTs, so a
/// request is accepted when its `Origin` is the gateway's own public origin, or, when
/// there is no `Origin` at all (a script), when it carries the session's
/// `X-CSRF-Token`. `Sec-Fetch-Site: cross-site` is refused outright. Requests without
/// the session cookie carry no ambient authority and pass (API tokens are not cookies).
pub async fn csrf_guard(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let jar = CookieJar::from_headers(req.headers());
    let Some(cookie) = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
        return next.run(req).await;
    };
    let refuse = || {
        AppError::Forbidden(Message::new(
            "跨站请求已被拒绝。请从本网站页面提交。",
            "Cross-site request refused. Please submit from this site's own pages.",
        ))
        .into_response()
    };
    let headers = req.headers();
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return refuse();
    }
    let own_origin = app
        .settings
        .server
        .public_url
        .origin()
        .ascii_serialization();
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) if origin == own_origin => next.run(req).await,
        Some(_) => refuse(),
        None => {
            let sent = headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match app.sessions.load(Some(&cookie)).await {
                Ok(Lookup::Live(s)) if sent.as_deref() == Some(s.csrf.as_str()) => {
                    // The handler's `CurrentUser` reads this one: the session is read
                    // once per request, not once by the guard and again by the handler.
                    let mut req = req;
                    req.extensions_mut().insert(CurrentUser {
                        session: *s,
                        session_id: cookie,
                    });
                    next.run(req).await
                }
                Ok(Lookup::Live(_)) => refuse(),
                // a dead session grants nothing; the handler answers 401 if it needs one
                Ok(_) => next.run(req).await,
                Err(e) => AppError::Internal(e.into()).into_response(),
            }
        }
    }
}
