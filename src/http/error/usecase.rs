//! How the use cases' errors answer over HTTP: each kind of refusal gets its status and
//! problem type, with the use case's own bilingual message. The use cases never see a
//! status code; this is the only place that decides one for them.

use super::{AppError, FieldError, Message};
use crate::usecases::{Error, Text};

impl From<Text> for Message {
    fn from(t: Text) -> Message {
        Message { zh: t.zh, en: t.en }
    }
}

impl From<Error> for AppError {
    fn from(e: Error) -> AppError {
        match e {
            Error::NotFound(t) => AppError::NotFound(t.into()),
            Error::Invalid(issues) => AppError::Invalid(
                issues
                    .into_iter()
                    .map(|i| FieldError {
                        field: i.field,
                        message: Message::new(i.zh, i.en),
                    })
                    .collect(),
            ),
            Error::Malformed(t) => AppError::BadRequest(t.into()),
            Error::NotAllowed { message, .. } => AppError::Forbidden(message.into()),
            Error::Conflict { message, .. } => AppError::Conflict(message.into()),
            Error::Stale => AppError::Conflict(Message::new(
                "办件正被他人同时处理，请刷新后重试。",
                "The case was changed by someone else at the same moment; reload and try again.",
            )),
            Error::Unauthenticated(t) => AppError::Unauthorized(t.into()),
            Error::IdempotencyMismatch => AppError::Unprocessable(Message::new(
                "该 Idempotency-Key 已用于另一个不同的请求，请为新请求使用新的键。",
                "This Idempotency-Key was already used for a different request; use a new key for a new request.",
            )),
            Error::Storage(e) => AppError::Internal(e.into()),
            Error::Internal(e) => AppError::Internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::form::FieldIssue;
    use axum::http::StatusCode;

    fn status(e: Error) -> StatusCode {
        AppError::from(e).problem().status
    }

    #[test]
    fn each_refusal_has_its_status() {
        assert_eq!(status(Error::case_not_found("X")), StatusCode::NOT_FOUND);
        assert_eq!(
            status(Error::Invalid(vec![FieldIssue {
                field: "note".into(),
                zh: "z".into(),
                en: "e".into(),
            }])),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(Error::Malformed(Text::new("z", "e"))),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status(Error::not_allowed("z", "e")), StatusCode::FORBIDDEN);
        assert_eq!(status(Error::conflict("z", "e")), StatusCode::CONFLICT);
        assert_eq!(status(Error::Stale), StatusCode::CONFLICT);
        assert_eq!(
            status(Error::Unauthenticated(Text::new("z", "e"))),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(Error::IdempotencyMismatch),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(Error::Internal(anyhow::anyhow!("x"))),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn field_issues_keep_their_field_and_both_languages() {
        let p =
            AppError::from(Error::invalid_field("applicant.name", "请填写", "Give it")).problem();
        assert_eq!(p.errors[0].field, "applicant.name");
        assert_eq!(p.errors[0].message, Message::new("请填写", "Give it"));
    }
}
