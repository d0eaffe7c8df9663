//! See `super`.

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Operator API routes.
pub fn operator_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}

/// Department-officer API routes.
pub fn staff_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}

/// Pages.
pub fn pages() -> Router<AppState> {
    Router::new()
}
