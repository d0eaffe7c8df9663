//! Login, logout, the current user, eligibility, and the department token's own routes.

use std::time::Duration;

use crate::http::path::Path;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AcceptLang;
use super::catalogue::find_service;
use super::error::{AppError, AppResult, Message};
use super::openapi::{LoginErrors, Problem};
use crate::app::AppState;
use crate::auth::extract::{CurrentUser, DepartmentClient};
use crate::auth::identity::{self, AccountKind, Audience, EnterpriseRep, IdentityError, Role};
use crate::auth::oidc::{LoginError, PendingLogin, RelyingParty};
use crate::auth::session::{LOGIN_COOKIE, Lookup, SESSION_COOKIE, Session, random_token};
use crate::domain::catalogue::Service;
use crate::domain::ids::mask_middle;

const LOGIN_TTL: Duration = Duration::from_secs(600);

/// `?return_to=` of the login routes.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    /// Passed to the provider (OpenID Connect `login_hint`), e.g. a demo persona.
    login_hint: Option<String>,
}

fn not_configured() -> AppError {
    AppError::Unavailable(Message::new(
        "尚未配置统一身份认证，暂时无法登录。",
        "Single sign-on is not configured, so logging in is not possible yet.",
    ))
}

fn login_error(e: LoginError) -> AppError {
    tracing::warn!(reason = %e, "login refused");
    match e {
        LoginError::Unavailable(_) => AppError::Unavailable(Message::new(
            "统一身份认证平台暂时无法访问，请稍后再试。",
            "The identity provider cannot be reached. Please try again later.",
        )),
        LoginError::BadState => AppError::BadRequest(Message::new(
            "登录请求无效、已过期或已被使用，请重新登录。",
            "This login request is invalid, expired or already used. Please log in again.",
        )),
        LoginError::WrongIssuer => AppError::Unauthorized(Message::new(
            "登录响应来自未知的身份认证平台，已拒绝。",
            "The login response came from an unexpected identity provider and was refused.",
        )),
        LoginError::Provider(_) => AppError::Unauthorized(Message::new(
            "身份认证平台未完成登录（可能已取消）。",
            "The identity provider did not complete the login (it may have been cancelled).",
        )),
        LoginError::CodeRejected => AppError::Unauthorized(Message::new(
            "身份认证平台拒绝了本次登录凭证（可能已被使用），请重新登录。",
            "The identity provider rejected the login code (it may have been used already). Please log in again.",
        )),
        LoginError::BadIdToken(why) => AppError::Unauthorized(Message::new(
            format!("身份令牌校验失败：{why}"),
            format!("The identity token failed verification: {why}"),
        )),
        LoginError::BadUserinfo(_) => AppError::Unauthorized(Message::new(
            "身份认证平台返回的用户信息无效。",
            "The identity provider's user information was not valid.",
        )),
    }
}

async fn start_login(
    app: &AppState,
    rp: Option<&RelyingParty>,
    query: LoginQuery,
) -> AppResult<Response> {
    let rp = rp.ok_or_else(not_configured)?;
    let return_to = identity::safe_return_to(query.return_to.as_deref());
    let hint = query.login_hint.filter(|h| !h.is_empty() && h.len() <= 256);
    let start = rp.start(return_to, hint).await.map_err(login_error)?;
    let pending = serde_json::to_vec(&start.pending).map_err(anyhow::Error::from)?;
    app.cache
        .set(&format!("login:{}", start.state), &pending, LOGIN_TTL)
        .await
        .map_err(anyhow::Error::from)?;
    let jar = CookieJar::new().add(app.sessions.login_cookie(start.state));
    Ok((jar, Redirect::to(&start.url)).into_response())
}

/// `GET /auth/login`: citizens and enterprise users.
pub async fn login(
    State(app): State<AppState>,
    Query(q): Query<LoginQuery>,
) -> AppResult<Response> {
    start_login(&app, app.public_login.as_ref(), q).await
}

/// `GET /auth/staff/login`: clerks, department officers, operators.
pub async fn staff_login(
    State(app): State<AppState>,
    Query(q): Query<LoginQuery>,
) -> AppResult<Response> {
    start_login(&app, app.staff_login.as_ref(), q).await
}

/// The provider's answer.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// `GET /auth/callback`: finishes a login and starts a fresh session.
pub async fn callback(
    State(app): State<AppState>,
    jar: CookieJar,
    Query(q): Query<CallbackQuery>,
) -> AppResult<Response> {
    let bad_state = || login_error(LoginError::BadState);
    let state = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(bad_state)?;
    // The state must be the one this browser started (login CSRF), and is used once.
    if jar.get(LOGIN_COOKIE).map(|c| c.value()) != Some(state) {
        return Err(bad_state());
    }
    let key = format!("login:{state}");
    let bytes = app.cache.get(&key).await.map_err(anyhow::Error::from)?;
    let claimed = app.cache.delete(&key).await.map_err(anyhow::Error::from)?;
    let pending: PendingLogin = match (bytes, claimed) {
        (Some(b), true) => serde_json::from_slice(&b).map_err(|_| bad_state())?,
        _ => return Err(bad_state()),
    };
    let jar = jar.add(app.sessions.login_removal());
    if let Some(err) = q.error {
        return Err(login_error(LoginError::Provider(err)));
    }
    let code = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(bad_state)?;
    let rp = match pending.audience {
        Audience::Public => app.public_login.as_ref(),
        Audience::Staff => app.staff_login.as_ref(),
    }
    .ok_or_else(not_configured)?;

    let result = rp
        .finish(code, q.iss.as_deref(), &pending)
        .await
        .map_err(login_error)?;
    let who = identity::identity_from_claims(
        &result.issuer,
        pending.audience,
        &result.claims,
        &app.claim_names,
    )
    .map_err(|e| {
        tracing::warn!(reason = %e, "login refused after verification");
        match e {
            IdentityError::NoStaffRole => AppError::Forbidden(Message::new(
                "该账号没有工作人员角色，请使用个人/企业登录。",
                "This account has no staff role. Please use the citizen and enterprise login.",
            )),
            other => AppError::Unauthorized(Message::new(
                format!("身份信息不完整或有误：{other}"),
                format!("The identity information is incomplete or wrong: {other}"),
            )),
        }
    })?;
    for role in &who.roles {
        if let Role::DepartmentOfficer { department } = role
            && app.catalogue.department(department).is_none()
        {
            return Err(AppError::Forbidden(Message::new(
                "该账号所属部门不在本市部门目录中。",
                "This account's department is not one of the city's departments.",
            )));
        }
    }

    let account_id = app.store.upsert_account(&who, chrono::Utc::now()).await?;
    // Cases a clerk took in at a window for this person become theirs (matched by the
    // ID number's blind index); a failure here must not stop the login.
    if who.kind == AccountKind::Person
        && let Some(id) = &who.id_number
    {
        match app.store.claim_window_cases(account_id, id.expose()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(account = %account_id, cases = n, "window cases linked"),
            Err(e) => {
                tracing::warn!(account = %account_id, error = %e, "linking window cases failed")
            }
        }
    }
    // A new session id at every login; an earlier session of this browser ends.
    if let Some(old) = jar.get(SESSION_COOKIE) {
        app.sessions
            .destroy(old.value())
            .await
            .map_err(anyhow::Error::from)?;
    }
    let session = Session {
        account_id,
        kind: who.kind,
        name: who.name.clone(),
        assurance: who.assurance,
        enterprise: who.enterprise.clone(),
        roles: who.roles.clone(),
        audience: pending.audience,
        csrf: random_token(),
        created_at: 0,
        last_seen: 0,
        id_token: Some(result.id_token),
    };
    let id = app
        .sessions
        .create(session)
        .await
        .map_err(anyhow::Error::from)?;
    tracing::info!(account = %account_id, kind = who.kind.code(), "logged in");
    let jar = jar.add(app.sessions.cookie(id));
    Ok((jar, Redirect::to(&pending.return_to)).into_response())
}

/// `POST /auth/logout`: ends the session everywhere and, where the provider offers it,
/// the provider's session too.
pub async fn logout(State(app): State<AppState>, jar: CookieJar) -> AppResult<Response> {
    let mut target = "/".to_owned();
    if let Some(c) = jar.get(SESSION_COOKIE) {
        if let Ok(Lookup::Live(s)) = app.sessions.load(Some(c.value())).await {
            let rp = match s.audience {
                Audience::Public => app.public_login.as_ref(),
                Audience::Staff => app.staff_login.as_ref(),
            };
            if let Some(rp) = rp
                && let Some(url) = rp
                    .logout_url(
                        s.id_token.as_deref(),
                        app.settings.server.public_url.as_str(),
                    )
                    .await
            {
                target = url;
            }
        }
        app.sessions
            .destroy(c.value())
            .await
            .map_err(anyhow::Error::from)?;
    }
    let jar = jar.add(app.sessions.removal());
    Ok((jar, Redirect::to(&target)).into_response())
}

pub(super) async fn optional_user(app: &AppState, jar: &CookieJar) -> Option<Session> {
    match app
        .sessions
        .load(jar.get(SESSION_COOKIE).map(|c| c.value()))
        .await
    {
        Ok(Lookup::Live(s)) => Some(*s),
        _ => None,
    }
}

/// `GET /auth/logout`: a page with the logout button (a GET never changes state).
pub async fn logout_page(ctx: super::pages::PageCtx) -> Response {
    ctx.render(StatusCode::OK, "logout.html", minijinja::context! {})
}

/// The logged-in user, as `GET /api/v1/me` shows it: personal numbers masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The account's id.
    id: Uuid,
    /// The kind of account.
    kind: AccountKind,
    /// The name the identity provider asserted.
    name: String,
    /// The resident ID number, masked (first 6 and last 4 shown).
    #[schema(example = "150702********3025")]
    id_number: Option<String>,
    /// The phone number, masked (first 3 and last 4 shown).
    phone: Option<String>,
    /// The mail address notices go to.
    email: Option<String>,
    /// The identity assurance level (实名认证等级), 1–3.
    assurance_level: u8,
    /// The enterprise the user acts for, if any.
    enterprise: Option<EnterpriseView>,
    /// The roles, with what each is bound to.
    roles: Vec<RoleView>,
    /// This session.
    session: SessionView,
    /// The issuer of the identity provider the user logged in with.
    identity_provider: String,
    /// When the user last logged in.
    last_login_at: DateTime<Utc>,
}

/// The enterprise a user acts for.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnterpriseView {
    /// Its unified social credit code (统一社会信用代码).
    uscc: String,
    /// Its name.
    name: String,
    /// The user's role in it (`legal_representative`, `agent` …).
    role: String,
}

impl From<EnterpriseRep> for EnterpriseView {
    fn from(e: EnterpriseRep) -> EnterpriseView {
        EnterpriseView {
            uscc: e.uscc,
            name: e.name,
            role: e.role,
        }
    }
}

/// A role with what it is bound to; `role` says which.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum RoleView {
    /// A citizen applying for themselves.
    Citizen,
    /// A user applying for an enterprise.
    EnterpriseUser {
        /// The enterprise's USCC.
        uscc: String,
    },
    /// A window clerk (窗口人员) of a service hall.
    Clerk {
        /// The service hall's id.
        hall: String,
        /// The USCCs of the departments the hall takes applications for.
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

impl From<Role> for RoleView {
    fn from(r: Role) -> RoleView {
        match r {
            Role::Citizen => RoleView::Citizen,
            Role::EnterpriseUser { uscc } => RoleView::EnterpriseUser { uscc },
            Role::Clerk { hall, departments } => RoleView::Clerk { hall, departments },
            Role::DepartmentOfficer { department } => RoleView::DepartmentOfficer { department },
            Role::Operator => RoleView::Operator,
        }
    }
}

/// The session a request came with.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Which login it came from.
    audience: Audience,
    /// The token to send as `X-CSRF-Token` with changes that carry no `Origin` header.
    csrf_token: String,
    /// When the session ends at the latest, however active it is.
    expires_at: Option<DateTime<Utc>>,
    /// How long the session lasts without a request.
    idle_timeout_secs: u64,
}

/// `GET /api/v1/me`: the logged-in user. The ID number is masked (first 6, last 4).
#[utoipa::path(
    get,
    path = "/api/v1/me",
    operation_id = "me",
    summary = "The logged-in user",
    description = "The account and session of the caller (citizens, enterprise users and \
        staff alike), with the CSRF token that changes need. The ID number and the phone \
        are masked. Answered with `Cache-Control: no-store`.",
    responses(
        (status = 200, description = "The user.", body = Me),
        LoginErrors,
    ),
    security(("session" = []))
)]
pub async fn me(State(app): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    let account = app
        .store
        .account(user.session.account_id)
        .await?
        .ok_or_else(|| {
            AppError::Unauthorized(Message::new(
                "账户不存在，请重新登录。",
                "The account no longer exists. Please log in again.",
            ))
        })?;
    let expires = user.session.created_at + app.settings.sessions.session_absolute_secs as i64;
    let body = Me {
        id: account.id,
        kind: account.kind,
        name: account.name,
        id_number: account.id_number.as_ref().map(|i| i.masked()),
        phone: account.phone.as_deref().map(|p| mask_middle(p, 3, 4)),
        email: account.email,
        assurance_level: account.assurance,
        enterprise: account.enterprise.map(EnterpriseView::from),
        roles: account.roles.into_iter().map(RoleView::from).collect(),
        session: SessionView {
            audience: user.session.audience,
            csrf_token: user.session.csrf.clone(),
            expires_at: DateTime::from_timestamp(expires, 0),
            idle_timeout_secs: app.settings.sessions.session_idle_secs,
        },
        identity_provider: account.issuer,
        last_login_at: account.last_login_at,
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// Whether a person may apply for a service online, and why not.
pub(crate) struct Eligibility {
    pub(crate) eligible: bool,
    pub(crate) needs_login: bool,
    pub(crate) needs_assurance: bool,
    pub(crate) reasons: Vec<Message>,
}

/// May this user (or nobody logged in) apply for the service online? Checks the channel,
/// the kind of applicant and the assurance level, as `GET /api/v1/services/{code}/eligibility`.
pub(crate) fn eligibility_of(service: &Service, user: Option<&Session>) -> Eligibility {
    use crate::domain::catalogue::{ApplicantType, Channel};
    let mut e = Eligibility {
        eligible: true,
        needs_login: false,
        needs_assurance: false,
        reasons: Vec::new(),
    };
    if !service.channels.contains(&Channel::Online) {
        e.eligible = false;
        e.reasons.push(Message::new(
            "此事项只能到窗口办理。",
            "This service is only handled at a service window.",
        ));
    }
    let Some(u) = user else {
        e.eligible = false;
        e.needs_login = true;
        e.reasons
            .push(Message::new("请先登录。", "Please log in first."));
        return e;
    };
    let person = u.has_role("citizen") && service.applicant_types.contains(&ApplicantType::Person);
    let enterprise = u.has_role("enterprise_user")
        && service.applicant_types.contains(&ApplicantType::Enterprise);
    if !person && !enterprise {
        e.eligible = false;
        let who = if service.applicant_types.contains(&ApplicantType::Enterprise) {
            Message::new(
                "此事项由企业（法人）申请，请以企业经办人身份登录。",
                "Enterprises apply for this service: log in as an enterprise user.",
            )
        } else {
            Message::new(
                "此事项由个人申请，请以个人身份登录。",
                "Individuals apply for this service: log in as a citizen.",
            )
        };
        e.reasons.push(who);
    }
    if u.assurance < service.min_assurance {
        e.eligible = false;
        e.needs_assurance = true;
        e.reasons.push(Message::new(
            format!(
                "此事项要求实名认证等级不低于{}级，您当前为{}级。",
                service.min_assurance, u.assurance
            ),
            format!(
                "This service needs identity assurance level {} or higher; yours is {}.",
                service.min_assurance, u.assurance
            ),
        ));
    }
    e
}

/// Whether the caller may apply for a service online, and if not, why.
#[derive(Debug, Serialize, ToSchema)]
pub struct EligibilityAnswer {
    /// The service code.
    code: String,
    /// The caller may apply online now.
    eligible: bool,
    /// The identity assurance level the service needs.
    required_assurance: u8,
    /// The caller's level; `null` when not logged in.
    your_assurance: Option<u8>,
    /// Why not, in the caller's language (empty when eligible).
    reasons: Vec<String>,
    /// A page explaining how to raise the assurance level, when that is what is missing.
    help: Option<String>,
}

/// `GET /api/v1/services/{code}/eligibility`: may the caller apply online, and if not, why.
#[utoipa::path(
    get,
    path = "/api/v1/services/{code}/eligibility",
    operation_id = "eligibility",
    summary = "May I apply online?",
    description = "Whether the caller (logged in or not) may apply for the service online: \
        the channel, the kind of applicant and the identity assurance level are checked. \
        Not logged in answers 200 with `eligible: false`.",
    params(("code" = String, Path, description = "The service code (事项编码).", example = "11150700MB15300034-GG-0002")),
    responses(
        (status = 200, description = "The answer, with the reasons.", body = EligibilityAnswer),
        (status = 404, description = "No service has this code.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn eligibility(
    State(app): State<AppState>,
    AcceptLang(lang): AcceptLang,
    jar: CookieJar,
    Path(code): Path<String>,
) -> AppResult<Json<EligibilityAnswer>> {
    let service = find_service(&app, &code)?;
    let user = optional_user(&app, &jar).await;
    let e = eligibility_of(service, user.as_ref());
    Ok(Json(EligibilityAnswer {
        code: service.code.clone(),
        eligible: e.eligible,
        required_assurance: service.min_assurance,
        your_assurance: user.as_ref().map(|u| u.assurance),
        reasons: e.reasons.iter().map(|r| r.get(lang).to_owned()).collect(),
        help: e
            .needs_assurance
            .then(|| format!("/services/{}/eligibility", service.code)),
    }))
}

/// `GET /services/{code}/eligibility`: the same as a page, explaining what to do: log
/// in, raise the assurance level, or go to a window (the guide's places, hours and
/// phone).
pub async fn eligibility_page(
    State(app): State<AppState>,
    ctx: super::pages::PageCtx,
    Path(code): Path<String>,
) -> AppResult<Response> {
    let service = find_service(&app, &code)?;
    let lang = ctx.lang;
    let user = ctx.session.as_ref();
    let e = eligibility_of(service, user);
    let status = if e.eligible {
        StatusCode::OK
    } else if e.needs_login {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::FORBIDDEN
    };
    let reasons: Vec<&str> = e.reasons.iter().map(|r| r.get(lang)).collect();
    let places: Vec<minijinja::Value> = service
        .guide
        .places
        .iter()
        .map(|p| {
            minijinja::context! {
                name => lang.pick(&p.name, &p.name_en),
                address => lang.pick(&p.address, p.address_en.as_deref().unwrap_or(&p.address)),
                hours => lang.pick(&p.hours, &p.hours_en),
                phone => p.phone.clone(),
            }
        })
        .collect();
    Ok(ctx.render(
        status,
        "eligibility.html",
        minijinja::context! {
            service => minijinja::context! { code => service.code.clone(), name => service.name.clone(), name_en => service.name_en.clone() },
            eligible => e.eligible,
            needs_login => e.needs_login,
            needs_assurance => e.needs_assurance,
            need_level => service.min_assurance,
            have_level => user.map(|u| u.assurance),
            reasons,
            places,
            return_to => format!("/services/{}/eligibility", service.code),
        },
    ))
}

/// A token scope.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // scopes are stored as text; this enum lists them for the document
pub enum Scope {
    /// Read the department's cases.
    #[serde(rename = "cases:read")]
    CasesRead,
    /// Report processing steps.
    #[serde(rename = "cases:write")]
    CasesWrite,
    /// Lease and acknowledge events from the pull inbox.
    #[serde(rename = "inbox")]
    Inbox,
    /// Download application materials.
    #[serde(rename = "materials:read")]
    MaterialsRead,
}

/// The token that made the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// The token's id (as in `onewindow token list`).
    token_id: Uuid,
    /// The token's name.
    token_name: String,
    /// The department the token belongs to.
    department: TokenDepartment,
    /// Granted scopes.
    #[schema(value_type = Vec<Scope>)]
    scopes: Vec<String>,
    /// When the token expires; `null` if never.
    #[schema(required = true)]
    expires_at: Option<DateTime<Utc>>,
}

/// The department a token belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenDepartment {
    /// Its unified social credit code (统一社会信用代码).
    #[schema(example = "11150700MB1530001X")]
    uscc: String,
    /// Its name in the response's language; `null` if not in the catalogue.
    #[schema(required = true)]
    name: Option<String>,
}

/// `GET /api/dept/v1/whoami`: which department and scopes a token carries.
#[utoipa::path(
    get,
    path = "/api/dept/v1/whoami",
    tag = "account",
    operation_id = "whoami",
    summary = "The token's department and scopes",
    description = "Which department and scopes the token carries, and when it expires. Any \
        valid token may call it; use it to check a token during setup.",
    responses(
        (status = 200, description = "The token.", body = WhoAmI),
        (status = 401, description = "No valid token (missing, unknown, expired or revoked); `WWW-Authenticate: Bearer realm=\"onewindow-dept\"`.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
pub async fn dept_whoami(
    State(app): State<AppState>,
    client: DepartmentClient,
    AcceptLang(lang): AcceptLang,
) -> Json<WhoAmI> {
    let t = client.token;
    let name = app
        .catalogue
        .department(&t.department)
        .map(|d| lang.pick(&d.name, &d.name_en).to_owned());
    Json(WhoAmI {
        token_id: t.id,
        token_name: t.name,
        department: TokenDepartment {
            uscc: t.department,
            name,
        },
        scopes: t.scopes,
        expires_at: t.expires_at,
    })
}

/// The services routed to a department.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepartmentServices {
    /// The department's USCC.
    department: String,
    /// Its services.
    items: Vec<RoutedService>,
}

/// A service routed to the department.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutedService {
    /// The service code (事项编码).
    code: String,
    /// Its name in the response's language.
    name: String,
    /// The current version of its definition (a content hash).
    version: String,
}

/// `GET /api/dept/v1/departments/{uscc}/services`: the services routed to a department;
/// only that department's own token may read it.
#[utoipa::path(
    get,
    path = "/api/dept/v1/departments/{uscc}/services",
    tag = "account",
    operation_id = "departmentServices",
    summary = "The services routed to your department",
    description = "The catalogue's services whose cases are routed to the department. Only \
        the department's own token may read it.",
    params(("uscc" = String, Path, description = "The department's unified social credit code (统一社会信用代码).", example = "11150700MB1530001X")),
    responses(
        (status = 200, description = "The department's services.", body = DepartmentServices),
        (status = 401, description = "No valid token (missing, unknown, expired or revoked); `WWW-Authenticate: Bearer realm=\"onewindow-dept\"`.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the `cases:read` scope, or belongs to another department.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = ["cases:read"]))
)]
pub async fn dept_services(
    State(app): State<AppState>,
    client: DepartmentClient,
    AcceptLang(lang): AcceptLang,
    Path(uscc): Path<String>,
) -> AppResult<Json<DepartmentServices>> {
    client.require("cases:read")?;
    client.require_department(&uscc)?;
    let items = app
        .catalogue
        .services()
        .iter()
        .filter(|s| s.routing.departments.contains(&uscc))
        .map(|s| RoutedService {
            code: s.code.clone(),
            name: lang.pick(&s.name, &s.name_en).to_owned(),
            version: s.version(),
        })
        .collect();
    Ok(Json(DepartmentServices {
        department: uscc,
        items,
    }))
}
