//! Supervision: information systems, zombie decisions, self-inspections, token usage (migration 0010).

use async_trait::async_trait;

use super::SqlStore;

/// Supervision storage; see the file's doc.
#[async_trait]
pub trait SystemStore: Send + Sync {}

#[async_trait]
impl SystemStore for SqlStore {}
