//! The supervision API (`/api/ops/v1/supervision/…` for operators,
//! `/api/staff/v1/supervision/…` for department officers) and its pages (`/ops/supervision/…`,
//! `/desk/supervision/…`), one file per area as in `crate::supervision`.

pub mod figures;
pub mod filings;
pub mod systems;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Operator routes of every area.
pub fn operator_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(systems::operator_api())
        .merge(filings::operator_api())
        .merge(figures::operator_api())
}

/// Department-officer routes of every area.
pub fn staff_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(systems::staff_api())
        .merge(filings::staff_api())
        .merge(figures::staff_api())
}

/// Pages of every area.
pub fn pages() -> Router<AppState> {
    Router::new()
        .merge(systems::pages())
        .merge(filings::pages())
        .merge(figures::pages())
}
