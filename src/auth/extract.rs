//! Access rules as extractors, so a handler's signature says who may call it:
//! [`CurrentUser`] (anyone logged in), [`Applicant`] (citizen or enterprise user),
//! [`Clerk`], [`DepartmentOfficer`], [`Operator`], and [`DepartmentClient`] for
//! department systems with an API token. Also the CSRF guard for cookie-authenticated
//! state-changing requests.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::identity::Role;
use super::session::{Lookup, SESSION_COOKIE, Session};
use super::tokens;
use crate::app::AppState;
use crate::http::error::{AppError, Message};
use crate::store::ApiToken;

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

/// An operator.
#[derive(Debug, Clone)]
pub struct Operator(pub CurrentUser);

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
        match token {
            // Unknown, revoked and expired tokens get the same answer: no oracle.
            Some(t) if t.is_active(chrono::Utc::now()) => Ok(DepartmentClient { token: t }),
            _ => Err(unauthorized()),
        }
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
