//! Row types of the exchange tables: deliveries (outbox rows with their state), attempts,
//! department endpoints and signing keys.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// One event for one department, with its delivery state.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// Event id (= CloudEvents id = webhook-id).
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// The history entry that caused it.
    pub case_seq: i32,
    /// Target department.
    pub department: String,
    /// CloudEvents type.
    pub event_type: String,
    /// What happened (case number, status, action …).
    pub payload: Value,
    /// Written.
    pub created_at: DateTime<Utc>,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts so far (numbering continues across redeliveries).
    pub attempts: i32,
    /// Attempts made before the last redelivery; the retry schedule restarts after them.
    pub retry_from: i32,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Last HTTP status.
    pub last_status: Option<i32>,
    /// Last error.
    pub last_error: Option<String>,
    /// Delivered (or acknowledged).
    pub delivered_at: Option<DateTime<Utc>>,
    /// The department's push endpoint, when it has one.
    pub endpoint: Option<String>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    /// Attempt number, from 1.
    pub attempt: i32,
    /// When.
    pub at: DateTime<Utc>,
    /// HTTP status, when the department answered.
    pub status: Option<i32>,
    /// Time to the answer (or the failure).
    pub latency_ms: i64,
    /// What went wrong.
    pub error: Option<String>,
}

/// What an attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// 2xx: durably received.
    Delivered,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// The schedule is exhausted: dead-lettered until someone redelivers.
    Dead,
}

/// How a department receives events.
#[derive(Debug, Clone, Serialize)]
pub struct DepartmentEndpoint {
    /// USCC.
    pub department: String,
    /// `push` or `pull`.
    pub mode: String,
    /// Push URL.
    pub endpoint: Option<String>,
    /// Base URL of the department's data API (for its `department_api` resources).
    pub data_api: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A stored signing key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// Key id.
    pub kid: String,
    /// Base64 seed (secret).
    pub secret: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Retires (rotation grace end).
    pub retires_at: Option<DateTime<Utc>>,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only this state.
    pub state: Option<String>,
    /// Only this department.
    pub department: Option<String>,
    /// Only this case.
    pub case_id: Option<Uuid>,
    /// At most.
    pub limit: i64,
}
