//! Operators' view of notification mail (`GET /api/ops/v1/mail?state=failed&limit=50`):
//! how many notices are in each mail state, and the newest notices of a state with their
//! attempts and the kind of their last failure, so mail that did not go out is seen. No
//! address or text is shown.

use axum::Json;
use axum::extract::{Query, State, rejection::QueryRejection};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{AppError, AppResult, Message};
use super::openapi::{Problem, RoleErrors};
use crate::app::AppState;
use crate::auth::extract::Operator;
use crate::store::mail::MAIL_STATES;
use crate::store::{MailCounts, MailRow};

/// Which notices to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MailQuery {
    /// Only notices in this mail state: `pending`, `sent`, `failed` or `none`.
    state: Option<String>,
    /// At most this many notices, 1–500.
    #[param(minimum = 1, maximum = 500, default = 100)]
    limit: Option<i64>,
}

/// The mail queue: counts by state, and the listed notices, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailList {
    /// Notices in each state.
    pub counts: MailCounts,
    /// The newest notices (of `state`, when given).
    pub items: Vec<MailRow>,
}

/// The most notices one answer lists.
const MAX_LIMIT: i64 = 500;

/// `GET /api/ops/v1/mail`: mail counts and the newest notices of a state.
#[utoipa::path(
    get,
    path = "/api/ops/v1/mail",
    operation_id = "mailQueue",
    summary = "Notification mail by state",
    description = "How many notices are pending, sent, failed or need no mail (no address, \
        or no SMTP relay), and the newest notices of one state with their attempts, the \
        next attempt and the kind of the last failure. Never an address.",
    params(MailQuery),
    responses(
        (status = 200, description = "The counts and the notices.", body = MailList),
        (status = 400, description = "An unknown state, a limit out of range, or an unknown parameter.", body = Problem, content_type = "application/problem+json"),
        RoleErrors,
    ),
    security(("session" = []))
)]
pub async fn list(
    State(app): State<AppState>,
    _op: Operator,
    query: Result<Query<MailQuery>, QueryRejection>,
) -> AppResult<Json<MailList>> {
    let bad = || {
        AppError::BadRequest(Message::new(
            format!(
                "查询参数有误：state 只能是 {}，limit 须为 1 到 {MAX_LIMIT} 之间的整数。",
                MAIL_STATES.join("、")
            ),
            format!(
                "Bad query parameters: state is one of {}, limit a whole number from 1 to {MAX_LIMIT}.",
                MAIL_STATES.join(", ")
            ),
        ))
    };
    let Query(q) = query.map_err(|_| bad())?;
    if q.state
        .as_deref()
        .is_some_and(|s| !MAIL_STATES.contains(&s))
    {
        return Err(bad());
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad());
    }
    Ok(Json(MailList {
        counts: app.store.mail_counts().await?,
        items: app.store.mail(q.state.as_deref(), limit).await?,
    }))
}
