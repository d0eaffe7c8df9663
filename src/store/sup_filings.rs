//! Supervision: filings and their review, monthly progress reports (migration 0010).

use async_trait::async_trait;

use super::SqlStore;

/// Supervision storage; see the file's doc.
#[async_trait]
pub trait FilingStore: Send + Sync {}

#[async_trait]
impl FilingStore for SqlStore {}
