//! Operators' view of notification mail (`GET /api/ops/v1/mail?state=failed&limit=50`):
//! how many notices are in each mail state, and the newest notices of a state with their
//! attempts and the kind of their last failure, so mail that did not go out is seen. No
//! address or text is shown.

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;

use super::error::{AppError, AppResult, Message};
use crate::app::AppState;
use crate::auth::extract::Operator;
use crate::store::mail::MAIL_STATES;
use crate::store::{MailCounts, MailRow};

/// The answer: counts by state, and the listed notices, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MailList {
    /// Notices in each state.
    pub counts: MailCounts,
    /// The newest notices (of `state`, when given).
    pub items: Vec<MailRow>,
}

/// The most notices one answer lists.
const MAX_LIMIT: i64 = 500;

/// `GET /api/ops/v1/mail`: mail counts and the newest notices of a state.
pub async fn list(
    State(app): State<AppState>,
    _op: Operator,
    RawQuery(query): RawQuery,
) -> AppResult<Json<MailList>> {
    // Read by hand so that any malformed query is a bilingual problem, not a bare 400.
    let (mut state, mut limit) = (None, 100);
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "state" if MAIL_STATES.contains(&v.as_ref()) => state = Some(v.into_owned()),
            "state" => {
                return Err(AppError::BadRequest(Message::new(
                    format!("邮件状态只能是 {}。", MAIL_STATES.join("、")),
                    format!("The mail state is one of {}.", MAIL_STATES.join(", ")),
                )));
            }
            "limit" => match v.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => limit = n,
                _ => {
                    return Err(AppError::BadRequest(Message::new(
                        format!("limit 须为 1 到 {MAX_LIMIT} 之间的整数。"),
                        format!("limit is a whole number from 1 to {MAX_LIMIT}."),
                    )));
                }
            },
            _ => {}
        }
    }
    Ok(Json(MailList {
        counts: app.store.mail_counts().await?,
        items: app.store.mail(state.as_deref(), limit).await?,
    }))
}
