//! The path extractor every handler uses: axum's `Path`, with a malformed parameter (a
//! UUID that is not one, a number that is not a number) answered as a problem+json 400
//! naming the parameter, in the caller's language, instead of axum's plain-text 400.

use axum::extract::FromRequestParts;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::{AppError, Message};

/// Path parameters, deserialized as `T`.
#[derive(Debug, Clone, Copy)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(e) => {
                let names: Vec<String> =
                    axum::extract::RawPathParams::from_request_parts(parts, state)
                        .await
                        .map(|p| p.iter().map(|(k, _)| k.to_owned()).collect())
                        .unwrap_or_default();
                Err(rejection(e, &names))
            }
        }
    }
}

/// The problem for a path rejection. The offending value is not echoed.
fn rejection(e: PathRejection, names: &[String]) -> AppError {
    match e {
        PathRejection::FailedToDeserializePathParams(inner) => {
            let key = match inner.kind() {
                ErrorKind::ParseErrorAtKey { key, .. }
                | ErrorKind::InvalidUtf8InPathParam { key } => Some(key.clone()),
                ErrorKind::ParseErrorAtIndex { index, .. } => names.get(*index).cloned(),
                // a value's own parser failed (a UUID's says only "invalid character"):
                // the route's parameters are named instead
                _ if !names.is_empty() => Some(names.join(", ")),
                _ => None,
            };
            AppError::BadRequest(match key {
                Some(k) if k.contains(',') => Message::new(
                    format!("路径参数（{k}）的格式有误。"),
                    format!("A path parameter ({k}) is malformed."),
                ),
                Some(k) => Message::new(
                    format!("路径参数 {k} 的格式有误。"),
                    format!("The path parameter `{k}` is malformed."),
                ),
                None => Message::new("路径参数的格式有误。", "A path parameter is malformed."),
            })
        }
        // A route whose handler asks for parameters the route does not have: a bug.
        other => AppError::Internal(anyhow::anyhow!("path parameters: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_malformed_uuid_is_a_problem_naming_the_parameter() {
        async fn h(Path(id): Path<uuid::Uuid>) -> String {
            id.to_string()
        }
        let app = Router::new().route("/x/{event_id}", get(h));
        let resp = app
            .oneshot(
                Request::get("/x/not-a-uuid")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("event_id"), "{text}");
        assert!(
            !text.contains("not-a-uuid"),
            "the value is not echoed: {text}"
        );
    }
}
