//! Supervision: the assessment figures' aggregates over systems, the exchange and cases.

use async_trait::async_trait;

use super::SqlStore;

/// Supervision storage; see the file's doc.
#[async_trait]
pub trait SupervisionFigureStore: Send + Sync {}

#[async_trait]
impl SupervisionFigureStore for SqlStore {}
