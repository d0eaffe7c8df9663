//! The one error type of the HTTP layer, answered as RFC 9457 problem+json.
//!
//! When to use which variant:
//! - [`AppError::NotFound`]: the thing named in the path does not exist *for this caller*
//!   (another user's case is also "not found", never "forbidden").
//! - [`AppError::BadRequest`]: a malformed query or body that is not a form submission.
//! - [`AppError::Unauthorized`]: no valid session or token; log in (again).
//! - [`AppError::Forbidden`]: authenticated, but the role does not allow it.
//! - [`AppError::Invalid`]: a form or structured input with per-field messages.
//! - [`AppError::Conflict`]: the request is well-formed but the current state forbids it.
//! - [`AppError::Unavailable`]: a dependency is down; try again later.
//! - [`AppError::Internal`]: anything else. Logged once here with the request's span;
//!   the client gets a generic message and the request id to quote.
//!
//! Every message exists in Chinese and English. The body is rendered in Chinese by
//! default; [`localize`](super::localize) re-renders it in English when the request asked for it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::lang::Lang;

mod outage;
mod usecase;

pub use outage::watch_recovery;
pub use outage::{Dependency, outage_of};

/// A text in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
}

impl Message {
    /// Builds a bilingual message.
    pub fn new(zh: impl Into<String>, en: impl Into<String>) -> Message {
        Message {
            zh: zh.into(),
            en: en.into(),
        }
    }

    /// The text in a language.
    pub fn get(&self, lang: Lang) -> &str {
        lang.pick(&self.zh, &self.en)
    }
}

/// A message about one input field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Field id (or dotted path for table cells: `members[0].name`).
    pub field: String,
    /// What is wrong.
    pub message: Message,
}

/// The HTTP layer's error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Nothing here for this caller.
    #[error("not found: {}", .0.en)]
    NotFound(Message),
    /// Malformed request.
    #[error("bad request: {}", .0.en)]
    BadRequest(Message),
    /// Not logged in (or the credentials are not valid).
    #[error("unauthorized: {}", .0.en)]
    Unauthorized(Message),
    /// Logged in, but this role may not do this.
    #[error("forbidden: {}", .0.en)]
    Forbidden(Message),
    /// Per-field input errors.
    #[error("invalid input ({} fields)", .0.len())]
    Invalid(Vec<FieldError>),
    /// Well-formed but cannot be processed (an Idempotency-Key reused for another request).
    #[error("unprocessable: {}", .0.en)]
    Unprocessable(Message),
    /// The body is too large.
    #[error("payload too large: {}", .0.en)]
    PayloadTooLarge(Message),
    /// The body's media type is not accepted.
    #[error("unsupported media: {}", .0.en)]
    UnsupportedMedia(Message),
    /// Too many attempts; try later.
    #[error("too many requests: {}", .0.en)]
    TooManyRequests(Message),
    /// Not allowed in the current state.
    #[error("conflict: {}", .0.en)]
    Conflict(Message),
    /// A dependency is down.
    #[error("unavailable: {}", .0.en)]
    Unavailable(Message),
    /// A bug or an unexpected failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        AppError::Internal(e.into())
    }
}

/// Result type of handlers.
pub type AppResult<T> = Result<T, AppError>;

/// A problem document, held in both languages until the response is written.
#[derive(Debug, Clone)]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable slug, made into the `type` URI.
    pub slug: &'static str,
    /// Short summary of the problem type.
    pub title: Message,
    /// This occurrence.
    pub detail: Message,
    /// Per-field messages.
    pub errors: Vec<FieldError>,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldErrorBody<'a>>,
}

#[derive(Serialize)]
struct FieldErrorBody<'a> {
    field: &'a str,
    message: &'a str,
}

impl Problem {
    /// Builds a problem of a given kind.
    pub fn new(status: StatusCode, slug: &'static str, title: Message, detail: Message) -> Problem {
        Problem {
            status,
            slug,
            title,
            detail,
            errors: Vec::new(),
        }
    }

    /// Renders the problem+json response in a language.
    pub fn render(&self, lang: Lang, request_id: Option<&str>) -> Response {
        let body = ProblemBody {
            kind: format!("urn:onewindow:problem:{}", self.slug),
            title: self.title.get(lang),
            status: self.status.as_u16(),
            detail: self.detail.get(lang),
            request_id,
            errors: self
                .errors
                .iter()
                .map(|e| FieldErrorBody {
                    field: &e.field,
                    message: e.message.get(lang),
                })
                .collect(),
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp = (self.status, json).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(
            header::CONTENT_LANGUAGE,
            HeaderValue::from_static(lang.tag()),
        );
        resp.extensions_mut().insert(self.clone());
        resp
    }
}

impl AppError {
    /// The problem document this error is answered with.
    pub fn problem(&self) -> Problem {
        match self {
            AppError::NotFound(m) => Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                Message::new("未找到", "Not found"),
                m.clone(),
            ),
            AppError::BadRequest(m) => Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-request",
                Message::new("请求有误", "Bad request"),
                m.clone(),
            ),
            AppError::Unauthorized(m) => Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                Message::new("未登录或登录已失效", "Not logged in"),
                m.clone(),
            ),
            AppError::Forbidden(m) => Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                Message::new("无权进行此操作", "Forbidden"),
                m.clone(),
            ),
            AppError::Invalid(errors) => {
                let mut p = Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-input",
                    Message::new("填写内容有误", "Invalid input"),
                    Message::new(
                        format!("有{}处填写内容需要修改。", errors.len()),
                        format!("{} field(s) need correcting.", errors.len()),
                    ),
                );
                p.errors = errors.clone();
                p
            }
            AppError::Unprocessable(m) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                Message::new("请求无法处理", "Unprocessable request"),
                m.clone(),
            ),
            AppError::PayloadTooLarge(m) => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                Message::new("内容过大", "Payload too large"),
                m.clone(),
            ),
            AppError::UnsupportedMedia(m) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                Message::new("不支持的文件类型", "Unsupported file type"),
                m.clone(),
            ),
            AppError::TooManyRequests(m) => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                Message::new("请求过于频繁", "Too many requests"),
                m.clone(),
            ),
            AppError::Conflict(m) => Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                Message::new("当前状态不允许此操作", "Not allowed in the current state"),
                m.clone(),
            ),
            AppError::Unavailable(m) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                Message::new("服务暂不可用", "Service unavailable"),
                m.clone(),
            ),
            AppError::Internal(_) => internal_problem(),
        }
    }
}

/// The generic answer to an internal error: no detail that could leak data.
pub fn internal_problem() -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        Message::new("系统内部错误", "Internal error"),
        Message::new(
            "系统出现内部错误，请稍后重试；如问题持续，请联系客服并提供请求编号。",
            "Something went wrong on our side. Please try again later; if it persists, contact support with the request id.",
        ),
    )
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(e) = &self {
            if let Some(dep) = outage_of(e) {
                // A fault, not a bug: 503, logged once a minute rather than per request.
                outage::record(dep, e);
                return AppError::Unavailable(outage::unavailable_message()).into_response();
            }
            // Logged once, here, inside the request's span (which carries the request id).
            tracing::error!(error = %format!("{e:#}"), "internal error");
        }
        let mut resp = self.problem().render(Lang::Zh, None);
        if matches!(self, AppError::Unavailable(_)) {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(outage::RETRY_AFTER_SECS),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_problem_json_in_the_asked_language() {
        let err = AppError::NotFound(Message::new("没有该事项", "No such service"));
        let resp = err.problem().render(Lang::En, Some("req-1"));
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .expect("body");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["type"], "urn:onewindow:problem:not-found");
        assert_eq!(v["detail"], "No such service");
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["status"], 404);
    }

    #[tokio::test]
    async fn internal_errors_say_nothing_of_the_cause() {
        let err = AppError::Internal(anyhow::anyhow!("password=hunter2 failed"));
        let resp = err.into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .expect("body");
        assert!(!String::from_utf8_lossy(&body).contains("hunter2"));
    }
}
