//! See `super` for what this file holds.
//! The open-data site (migration 0019): datasets with their metadata, schema and current
//! file, download counts per dataset and format, and the public's data requests.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::db::{Exec, Q, Row};
use super::{SqlStore, StoreResult};

/// A dataset as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenDataset {
    /// Stable name (lower case, digits, hyphens).
    pub id: String,
    /// Chinese title.
    pub title_zh: String,
    /// English title.
    pub title_en: String,
    /// Chinese description.
    pub description_zh: String,
    /// English description.
    pub description_en: String,
    /// Topic code.
    pub topic: String,
    /// Publisher (USCC).
    pub department: String,
    /// Licence code.
    pub licence: String,
    /// Update cycle code.
    pub update_cycle: String,
    /// `catalogue` | `case_stats` | `figures` | `upload`.
    pub source: String,
    /// The catalogue resource it opens.
    pub resource_code: Option<String>,
    /// The schema (a JSON list of `check::OpenField`).
    pub schema: Value,
    /// The current file, CSV.
    pub data_csv: String,
    /// Its rows.
    pub row_count: i64,
    /// `draft` | `published` | `returned`.
    pub status: String,
    /// Why the operator returned it.
    pub return_reason: Option<String>,
    /// Account id (or `seed`) of who drafted it.
    pub created_by: String,
    /// Drafted at.
    pub created_at: DateTime<Utc>,
    /// Metadata or data last changed.
    pub modified_at: DateTime<Utc>,
    /// First published at.
    pub published_at: Option<DateTime<Utc>>,
    /// File last regenerated.
    pub refreshed_at: Option<DateTime<Utc>>,
}

/// A data request (数据需求) and its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenRequest {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// What is wanted, in short.
    pub title: String,
    /// What for, in full.
    pub body: String,
    /// Optional contact address (never shown publicly).
    pub email: Option<String>,
    /// The department it is meant for (USCC).
    pub department: Option<String>,
    /// `open` | `answered`.
    pub status: String,
    /// The answer.
    pub answer: Option<String>,
    /// Who answered: the department's USCC, or `operator`.
    pub answered_by: Option<String>,
    /// Filed at.
    pub created_at: DateTime<Utc>,
    /// Answered at.
    pub answered_at: Option<DateTime<Utc>>,
}

/// Open-data storage; see the file's doc.
#[async_trait]
pub trait OpenDataStore: Send + Sync {
    /// Writes a dataset (insert or full rewrite), keeping its download counts.
    async fn put_dataset(&self, d: &OpenDataset) -> StoreResult<()>;

    /// One dataset.
    async fn dataset(&self, id: &str) -> StoreResult<Option<OpenDataset>>;

    /// Datasets in one status (or all), of one department (or all), by title.
    async fn datasets(
        &self,
        status: Option<&str>,
        department: Option<&str>,
    ) -> StoreResult<Vec<OpenDataset>>;

    /// Replaces a dataset's file (a refresh): data, rows, refreshed and modified times.
    async fn refresh_dataset(
        &self,
        id: &str,
        data_csv: &str,
        row_count: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Counts one download of a dataset's file.
    async fn count_download(&self, id: &str, format: &str) -> StoreResult<()>;

    /// A dataset's downloads per format.
    async fn downloads(&self, id: &str) -> StoreResult<Vec<(String, i64)>>;

    /// Files a data request.
    async fn insert_open_request(&self, r: &OpenRequest) -> StoreResult<()>;

    /// Answers a request (again, if it was answered); false when there is none.
    async fn answer_request(
        &self,
        id: Uuid,
        answer: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// One request.
    async fn request(&self, id: Uuid) -> StoreResult<Option<OpenRequest>>;

    /// Requests, newest first.
    async fn requests(&self, limit: i64) -> StoreResult<Vec<OpenRequest>>;

    /// Case statistics for one period: per service and department, cases lodged in
    /// `[from, to)`, how many are concluded and how many of those on time.
    async fn case_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<CaseCount>>;
}

/// Cases of one service and department in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseCount {
    /// Service code.
    pub service: String,
    /// Department (USCC).
    pub department: String,
    /// Lodged.
    pub lodged: i64,
    /// Concluded (办结).
    pub concluded: i64,
    /// Concluded by their due date.
    pub on_time: i64,
}

const DATASET_COLUMNS: &str = "SELECT id, title_zh, title_en, description_zh, description_en, \
     topic, department, licence, update_cycle, source, resource_code, schema, data_csv, \
     row_count, status, return_reason, created_by, created_at, modified_at, published_at, \
     refreshed_at FROM open_datasets";

fn dataset_from_row(r: &Row) -> StoreResult<OpenDataset> {
    Ok(OpenDataset {
        id: r.get("id")?,
        title_zh: r.get("title_zh")?,
        title_en: r.get("title_en")?,
        description_zh: r.get("description_zh")?,
        description_en: r.get("description_en")?,
        topic: r.get("topic")?,
        department: r.get("department")?,
        licence: r.get("licence")?,
        update_cycle: r.get("update_cycle")?,
        source: r.get("source")?,
        resource_code: r.get("resource_code")?,
        schema: r.get("schema")?,
        data_csv: r.get("data_csv")?,
        row_count: r.get("row_count")?,
        status: r.get("status")?,
        return_reason: r.get("return_reason")?,
        created_by: r.get("created_by")?,
        created_at: r.get("created_at")?,
        modified_at: r.get("modified_at")?,
        published_at: r.get("published_at")?,
        refreshed_at: r.get("refreshed_at")?,
    })
}

const REQUEST_COLUMNS: &str = "SELECT id, title, body, email, department, status, answer, \
     answered_by, created_at, answered_at FROM open_requests";

fn request_from_row(r: &Row) -> StoreResult<OpenRequest> {
    Ok(OpenRequest {
        id: r.get("id")?,
        title: r.get("title")?,
        body: r.get("body")?,
        email: r.get("email")?,
        department: r.get("department")?,
        status: r.get("status")?,
        answer: r.get("answer")?,
        answered_by: r.get("answered_by")?,
        created_at: r.get("created_at")?,
        answered_at: r.get("answered_at")?,
    })
}

#[async_trait]
impl OpenDataStore for SqlStore {
    async fn put_dataset(&self, d: &OpenDataset) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO open_datasets (id, title_zh, title_en, description_zh, description_en, \
             topic, department, licence, update_cycle, source, resource_code, schema, data_csv, \
             row_count, status, return_reason, created_by, created_at, modified_at, \
             published_at, refreshed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) \
             ON CONFLICT (id) DO UPDATE SET title_zh = excluded.title_zh, \
             title_en = excluded.title_en, description_zh = excluded.description_zh, \
             description_en = excluded.description_en, topic = excluded.topic, \
             department = excluded.department, licence = excluded.licence, \
             update_cycle = excluded.update_cycle, source = excluded.source, \
             resource_code = excluded.resource_code, schema = excluded.schema, \
             data_csv = excluded.data_csv, row_count = excluded.row_count, \
             status = excluded.status, return_reason = excluded.return_reason, \
             modified_at = excluded.modified_at, published_at = excluded.published_at, \
             refreshed_at = excluded.refreshed_at",
        )
        .bind(&d.id)
        .bind(&d.title_zh)
        .bind(&d.title_en)
        .bind(&d.description_zh)
        .bind(&d.description_en)
        .bind(&d.topic)
        .bind(&d.department)
        .bind(&d.licence)
        .bind(&d.update_cycle)
        .bind(&d.source)
        .bind(&d.resource_code)
        .bind(&d.schema)
        .bind(&d.data_csv)
        .bind(d.row_count)
        .bind(&d.status)
        .bind(&d.return_reason)
        .bind(&d.created_by)
        .bind(d.created_at)
        .bind(d.modified_at)
        .bind(d.published_at)
        .bind(d.refreshed_at);
        self.db.execute(q).await?;
        Ok(())
    }

    async fn dataset(&self, id: &str) -> StoreResult<Option<OpenDataset>> {
        let q = Q::new(DATASET_COLUMNS).push(" WHERE id = $1").bind(id);
        self.db.fetch_optional_with(q, dataset_from_row).await
    }

    async fn datasets(
        &self,
        status: Option<&str>,
        department: Option<&str>,
    ) -> StoreResult<Vec<OpenDataset>> {
        let mut q = Q::new(DATASET_COLUMNS).push(" WHERE 1 = 1");
        if let Some(s) = status {
            q = q.push(" AND status = ").push_bind(s);
        }
        if let Some(d) = department {
            q = q.push(" AND department = ").push_bind(d);
        }
        q = q.push(" ORDER BY title_zh, id");
        self.db.fetch_all_with(q, dataset_from_row).await
    }

    async fn refresh_dataset(
        &self,
        id: &str,
        data_csv: &str,
        row_count: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let q = Q::new(
            "UPDATE open_datasets SET data_csv = $1, row_count = $2, refreshed_at = $3, \
             modified_at = $4 WHERE id = $5",
        )
        .bind(data_csv)
        .bind(row_count)
        .bind(at)
        .bind(at)
        .bind(id);
        Ok(self.db.execute(q).await? == 1)
    }

    async fn count_download(&self, id: &str, format: &str) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO open_downloads (dataset_id, format, count) VALUES ($1, $2, 1) \
             ON CONFLICT (dataset_id, format) DO UPDATE SET count = open_downloads.count + 1",
        )
        .bind(id)
        .bind(format);
        self.db.execute(q).await?;
        Ok(())
    }

    async fn downloads(&self, id: &str) -> StoreResult<Vec<(String, i64)>> {
        let q = Q::new(
            "SELECT format, count FROM open_downloads WHERE dataset_id = $1 ORDER BY format",
        )
        .bind(id);
        self.db
            .fetch_all_with(q, |r| Ok((r.get("format")?, r.get("count")?)))
            .await
    }

    async fn insert_open_request(&self, r: &OpenRequest) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO open_requests (id, title, body, email, department, status, answer, \
             answered_by, created_at, answered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(r.id)
        .bind(&r.title)
        .bind(&r.body)
        .bind(&r.email)
        .bind(&r.department)
        .bind(&r.status)
        .bind(&r.answer)
        .bind(&r.answered_by)
        .bind(r.created_at)
        .bind(r.answered_at);
        self.db.execute(q).await?;
        Ok(())
    }

    async fn answer_request(
        &self,
        id: Uuid,
        answer: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let q = Q::new(
            "UPDATE open_requests SET status = 'answered', answer = $1, answered_by = $2, \
             answered_at = $3 WHERE id = $4",
        )
        .bind(answer)
        .bind(by)
        .bind(at)
        .bind(id);
        Ok(self.db.execute(q).await? == 1)
    }

    async fn request(&self, id: Uuid) -> StoreResult<Option<OpenRequest>> {
        let q = Q::new(REQUEST_COLUMNS).push(" WHERE id = $1").bind(id);
        self.db.fetch_optional_with(q, request_from_row).await
    }

    async fn requests(&self, limit: i64) -> StoreResult<Vec<OpenRequest>> {
        let q = Q::new(REQUEST_COLUMNS)
            .push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(limit);
        self.db.fetch_all_with(q, request_from_row).await
    }

    async fn case_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<CaseCount>> {
        // CAST: PostgreSQL sums to NUMERIC.
        let q = Q::new(
            "SELECT service_code, department, COUNT(*) AS lodged, \
             CAST(COALESCE(SUM(CASE WHEN concluded_on IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS concluded, \
             CAST(COALESCE(SUM(CASE WHEN concluded_on IS NOT NULL AND due_on IS NOT NULL \
             AND concluded_on <= due_on THEN 1 ELSE 0 END), 0) AS BIGINT) AS on_time \
             FROM cases WHERE created_at >= $1 AND created_at < $2 \
             GROUP BY service_code, department ORDER BY service_code, department",
        )
        .bind(from)
        .bind(to);
        self.db
            .fetch_all_with(q, |r| {
                Ok(CaseCount {
                    service: r.get("service_code")?,
                    department: r.get("department")?,
                    lodged: r.get("lodged")?,
                    concluded: r.get("concluded")?,
                    on_time: r.get("on_time")?,
                })
            })
            .await
    }
}
