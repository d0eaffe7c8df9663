//! Figures for the operator's dashboard, each computed by an SQL aggregate (never by
//! loading every case): cases by status, service and department, the time limits met,
//! the processing spans (grouped by their acceptance and conclusion dates, so the
//! caller can count working days with the holiday calendar), ratings, and the health of
//! event delivery.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::db::{Exec, Q};
use super::{SqlStore, StoreResult};

/// A count per key (a status, service code or department).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    /// The key.
    pub key: String,
    /// How many.
    pub n: i64,
}

/// Concluded cases accepted on one day and concluded on another, with how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Accepted on.
    pub accepted_on: NaiveDate,
    /// Concluded on.
    pub concluded_on: NaiveDate,
    /// Cases with these two dates.
    pub n: i64,
}

/// A low rating to follow up.
#[derive(Debug, Clone)]
pub struct LowRating {
    /// The case number.
    pub case_no: String,
    /// The service code.
    pub service_code: String,
    /// The department.
    pub department: String,
    /// 1–5.
    pub rating: i16,
    /// The applicant's comment.
    pub comment: Option<String>,
    /// When rated.
    pub rated_at: Option<DateTime<Utc>>,
}

/// Every figure of the dashboard.
#[derive(Debug, Clone, Default)]
pub struct CaseFigures {
    /// Cases by status code.
    pub by_status: Vec<Count>,
    /// Cases by service code.
    pub by_service: Vec<Count>,
    /// Cases by responsible department.
    pub by_department: Vec<Count>,
    /// Concluded cases that had a promised due date.
    pub concluded_with_due: i64,
    /// Of those, concluded on or before it.
    pub concluded_on_time: i64,
    /// Concluded cases grouped by (accepted on, concluded on).
    pub spans: Vec<Span>,
    /// Rated cases.
    pub rated: i64,
    /// Sum of their ratings.
    pub rating_sum: i64,
    /// Ratings of 1 or 2, newest first (at most 20).
    pub low_ratings: Vec<LowRating>,
}

/// Delivery figures.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFigures {
    /// Events by delivery state (`pending`, `delivered`, `dead`).
    pub by_state: Vec<Count>,
    /// Dead letters by department.
    pub dead_by_department: Vec<Count>,
    /// When the oldest pending event was written.
    pub oldest_pending: Option<DateTime<Utc>>,
}

/// The dashboard's figures.
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// The case figures.
    async fn case_figures(&self) -> StoreResult<CaseFigures>;

    /// The delivery figures.
    async fn delivery_figures(&self) -> StoreResult<DeliveryFigures>;
}

async fn counts(s: &SqlStore, sql: &'static str) -> StoreResult<Vec<Count>> {
    s.db.fetch_all_with(Q::new(sql), |r| {
        Ok(Count {
            key: r.get("k")?,
            n: r.get("n")?,
        })
    })
    .await
}

#[async_trait]
impl StatsStore for SqlStore {
    async fn case_figures(&self) -> StoreResult<CaseFigures> {
        let by_status = counts(
            self,
            "SELECT status AS k, COUNT(*) AS n FROM cases GROUP BY status ORDER BY n DESC, k",
        )
        .await?;
        let by_service = counts(
            self,
            "SELECT service_code AS k, COUNT(*) AS n FROM cases GROUP BY service_code ORDER BY n DESC, k",
        )
        .await?;
        let by_department = counts(
            self,
            "SELECT department AS k, COUNT(*) AS n FROM cases GROUP BY department ORDER BY n DESC, k",
        )
        .await?;
        // CAST: PostgreSQL sums to NUMERIC.
        let on_time = self
            .db
            .fetch_one(Q::new(
                "SELECT COUNT(*) AS n, \
                 CAST(COALESCE(SUM(CASE WHEN concluded_on <= due_on THEN 1 ELSE 0 END), 0) AS BIGINT) AS met \
                 FROM cases WHERE concluded_on IS NOT NULL AND due_on IS NOT NULL",
            ))
            .await?;
        let spans = self
            .db
            .fetch_all_with(
                Q::new(
                    "SELECT accepted_on, concluded_on, COUNT(*) AS n FROM cases \
                     WHERE accepted_on IS NOT NULL AND concluded_on IS NOT NULL \
                     GROUP BY accepted_on, concluded_on",
                ),
                |r| {
                    Ok(Span {
                        accepted_on: r.get("accepted_on")?,
                        concluded_on: r.get("concluded_on")?,
                        n: r.get("n")?,
                    })
                },
            )
            .await?;
        let ratings = self
            .db
            .fetch_one(Q::new(
                "SELECT COUNT(rating) AS n, CAST(COALESCE(SUM(rating), 0) AS BIGINT) AS total \
                 FROM cases WHERE rating IS NOT NULL",
            ))
            .await?;
        let low_ratings = self
            .db
            .fetch_all_with(
                Q::new(
                    "SELECT case_no, service_code, department, rating, rating_comment, rated_at \
                     FROM cases WHERE rating IS NOT NULL AND rating <= 2 \
                     ORDER BY rated_at DESC LIMIT 20",
                ),
                |r| {
                    Ok(LowRating {
                        case_no: r.get("case_no")?,
                        service_code: r.get("service_code")?,
                        department: r.get("department")?,
                        rating: r.get("rating")?,
                        comment: r.get("rating_comment")?,
                        rated_at: r.get("rated_at")?,
                    })
                },
            )
            .await?;
        Ok(CaseFigures {
            by_status,
            by_service,
            by_department,
            concluded_with_due: on_time.get("n")?,
            concluded_on_time: on_time.get("met")?,
            spans,
            rated: ratings.get("n")?,
            rating_sum: ratings.get("total")?,
            low_ratings,
        })
    }

    async fn delivery_figures(&self) -> StoreResult<DeliveryFigures> {
        let by_state = counts(
            self,
            "SELECT state AS k, COUNT(*) AS n FROM outbox GROUP BY state ORDER BY k",
        )
        .await?;
        let dead_by_department = counts(
            self,
            "SELECT department AS k, COUNT(*) AS n FROM outbox WHERE state = 'dead' \
             GROUP BY department ORDER BY n DESC, k",
        )
        .await?;
        let oldest = self
            .db
            .fetch_optional(Q::new(
                "SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY created_at LIMIT 1",
            ))
            .await?;
        Ok(DeliveryFigures {
            by_state,
            dead_by_department,
            oldest_pending: match oldest {
                Some(r) => Some(r.get("created_at")?),
                None => None,
            },
        })
    }
}
