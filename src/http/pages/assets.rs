//! The pages' stylesheet, script and images (`frontend/static`), embedded by `build.rs`
//! and served at `/static/<name>`. Each URL carries the build's version
//! (`/static/app.css?v=…`), so the files may be cached for a year.

use crate::http::path::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Every file under `frontend/static`, by name.
const FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/static_files.rs"));

/// The version in asset URLs: the crate's version and a digest of the files, so a new
/// stylesheet is never served from a browser's stale cache.
pub static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (name, bytes) in FILES {
        h.update(name.as_bytes());
        h.update(bytes);
    }
    hex::encode(&h.finalize()[..6])
});

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// `GET /static/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _)| *n == name) {
        Some((n, bytes)) => {
            let mut resp = (StatusCode::OK, *bytes).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(n)),
            );
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            resp
        }
        None => super::super::error::AppError::NotFound(super::super::error::Message::new(
            "没有这个文件。",
            "There is no such file.",
        ))
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stylesheet_is_embedded() {
        assert!(FILES.iter().any(|(n, _)| *n == "app.css"));
        assert_eq!(content_type("app.css"), "text/css; charset=utf-8");
        assert_eq!(VERSION.len(), 12);
    }
}
