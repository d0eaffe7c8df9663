//! See `super` for what this file holds.
//! Catalogue management (政务信息资源目录, migration 0017): each shared-data resource
//! and its versions. A version's body is the resource as JSON (`domain::catalogue::Resource`),
//! so the live catalogue and every earlier version read back as the same type.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::db::{Exec, Q, Row};
use super::{SqlStore, StoreError, StoreResult};
use crate::domain::catalogue::Resource;

/// One version of a resource.
#[derive(Debug, Clone)]
pub struct ResourceVersion {
    /// The resource code.
    pub code: String,
    /// 1, 2, … per resource.
    pub version: i64,
    /// The resource as this version has it.
    pub body: Resource,
    /// The information system that holds it (`info_systems`).
    pub system_id: Option<Uuid>,
    /// `pending` | `published` | `returned` | `withdrawn`.
    pub status: String,
    /// The author's note on the change.
    pub note: String,
    /// Account id of the author, or `import`.
    pub author: String,
    /// The author's name.
    pub author_name: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// The operator who published or returned it.
    pub decided_by: Option<String>,
    /// Their name.
    pub decided_name: Option<String>,
    /// When.
    pub decided_at: Option<DateTime<Utc>>,
    /// The operator's comment on return.
    pub comment: Option<String>,
}

/// A resource of the managed catalogue with where its versions stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueEntry {
    /// The resource code.
    pub code: String,
    /// The providing department (USCC).
    pub provider: String,
    /// The live version (none for a proposal not yet published).
    pub published_version: Option<i64>,
    /// The newest version.
    pub latest_version: i64,
    /// The newest version's status.
    pub latest_status: String,
}

/// What adding a version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddedVersion {
    /// Written with this number.
    Added(i64),
    /// A new resource was proposed with a code that already exists.
    CodeTaken,
    /// The resource does not exist (an edit of an unknown code).
    NoResource,
}

/// Catalogue-management storage; see the file's doc.
#[async_trait]
pub trait ResourceCatalogueStore: Send + Sync {
    /// Imports a resource as version 1, published, by `import`, unless its code is
    /// already kept; true when it was imported.
    async fn import_resource(&self, r: &Resource, at: DateTime<Utc>) -> StoreResult<bool>;

    /// The live version of every published resource, by code.
    async fn published_resources(&self) -> StoreResult<Vec<Resource>>;

    /// A cheap fingerprint of what is published (count and sum of live version
    /// numbers): it changes on every publication.
    async fn catalogue_revision(&self) -> StoreResult<(i64, i64)>;

    /// The managed resources (of one provider, or all), by code.
    async fn catalogue_entries(&self, provider: Option<&str>) -> StoreResult<Vec<CatalogueEntry>>;

    /// One resource's versions, newest first.
    async fn resource_versions(&self, code: &str) -> StoreResult<Vec<ResourceVersion>>;

    /// One version.
    async fn resource_version(
        &self,
        code: &str,
        version: i64,
    ) -> StoreResult<Option<ResourceVersion>>;

    /// Every pending version, oldest first.
    async fn pending_versions(&self) -> StoreResult<Vec<ResourceVersion>>;

    /// Adds a pending version (its number is the next one; `v.version` is ignored); a
    /// pending version before it is withdrawn. With `new_resource`, the resource is
    /// created first (a department's proposal).
    async fn add_resource_version(
        &self,
        v: &ResourceVersion,
        new_resource: bool,
    ) -> StoreResult<AddedVersion>;

    /// Publishes (it becomes the live version) or returns a pending version; false when
    /// it is not pending (any more).
    async fn decide_resource_version(
        &self,
        code: &str,
        version: i64,
        publish: bool,
        by: (&str, &str),
        at: DateTime<Utc>,
        comment: Option<&str>,
    ) -> StoreResult<bool>;
}

const VERSION_COLUMNS: &str = "SELECT code, version, body, system_id, status, note, author, \
     author_name, created_at, decided_by, decided_name, decided_at, comment FROM catalogue_versions";

fn version_from_row(r: &Row) -> StoreResult<ResourceVersion> {
    let code: String = r.get("code")?;
    let body: Value = r.get("body")?;
    let body: Resource = serde_json::from_value(body)
        .map_err(|e| StoreError::Corrupt(format!("catalogue version of {code}: {e}")))?;
    Ok(ResourceVersion {
        code,
        version: r.get("version")?,
        body,
        system_id: r.get("system_id")?,
        status: r.get("status")?,
        note: r.get("note")?,
        author: r.get("author")?,
        author_name: r.get("author_name")?,
        created_at: r.get("created_at")?,
        decided_by: r.get("decided_by")?,
        decided_name: r.get("decided_name")?,
        decided_at: r.get("decided_at")?,
        comment: r.get("comment")?,
    })
}

fn body_json(r: &Resource) -> StoreResult<Value> {
    serde_json::to_value(r).map_err(|e| StoreError::Corrupt(format!("resource {}: {e}", r.code)))
}

#[async_trait]
impl ResourceCatalogueStore for SqlStore {
    async fn import_resource(&self, r: &Resource, at: DateTime<Utc>) -> StoreResult<bool> {
        let body = body_json(r)?;
        let mut tx = self.db.begin_write().await?;
        let n = tx
            .execute(
                Q::new(
                    "INSERT INTO catalogue_resources (code, provider, published_version, \
                     created_at) VALUES ($1, $2, 1, $3) ON CONFLICT (code) DO NOTHING",
                )
                .bind(&r.code)
                .bind(&r.provider)
                .bind(at),
            )
            .await?;
        if n == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.execute(
            Q::new(
                "INSERT INTO catalogue_versions (code, version, body, status, note, author, \
                 author_name, created_at) VALUES ($1, 1, $2, 'published', '', 'import', \
                 'import', $3)",
            )
            .bind(&r.code)
            .bind(&body)
            .bind(at),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn published_resources(&self) -> StoreResult<Vec<Resource>> {
        let q = Q::new(
            "SELECT v.code, v.body FROM catalogue_resources r JOIN catalogue_versions v \
             ON v.code = r.code AND v.version = r.published_version ORDER BY r.code",
        );
        self.db
            .fetch_all_with(q, |r| {
                let code: String = r.get("code")?;
                let body: Value = r.get("body")?;
                serde_json::from_value(body)
                    .map_err(|e| StoreError::Corrupt(format!("catalogue version of {code}: {e}")))
            })
            .await
    }

    async fn catalogue_revision(&self) -> StoreResult<(i64, i64)> {
        let q = Q::new(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, \
             CAST(COALESCE(SUM(published_version), 0) AS BIGINT) AS s \
             FROM catalogue_resources WHERE published_version IS NOT NULL",
        );
        let r = self.db.fetch_one(q).await?;
        Ok((r.get("n")?, r.get("s")?))
    }

    async fn catalogue_entries(&self, provider: Option<&str>) -> StoreResult<Vec<CatalogueEntry>> {
        let base = "SELECT r.code, r.provider, r.published_version, v.version AS latest_version, \
             v.status AS latest_status FROM catalogue_resources r JOIN catalogue_versions v \
             ON v.code = r.code AND v.version = \
             (SELECT MAX(x.version) FROM catalogue_versions x WHERE x.code = r.code)";
        let q = match provider {
            Some(p) => Q::new(base)
                .push(" WHERE r.provider = $1 ORDER BY r.code")
                .bind(p),
            None => Q::new(base).push(" ORDER BY r.code"),
        };
        self.db
            .fetch_all_with(q, |r| {
                Ok(CatalogueEntry {
                    code: r.get("code")?,
                    provider: r.get("provider")?,
                    published_version: r.get("published_version")?,
                    latest_version: r.get("latest_version")?,
                    latest_status: r.get("latest_status")?,
                })
            })
            .await
    }

    async fn resource_versions(&self, code: &str) -> StoreResult<Vec<ResourceVersion>> {
        let q = Q::new(VERSION_COLUMNS)
            .push(" WHERE code = $1 ORDER BY version DESC")
            .bind(code);
        self.db.fetch_all_with(q, version_from_row).await
    }

    async fn resource_version(
        &self,
        code: &str,
        version: i64,
    ) -> StoreResult<Option<ResourceVersion>> {
        let q = Q::new(VERSION_COLUMNS)
            .push(" WHERE code = $1 AND version = $2")
            .bind(code)
            .bind(version);
        self.db.fetch_optional_with(q, version_from_row).await
    }

    async fn pending_versions(&self) -> StoreResult<Vec<ResourceVersion>> {
        let q = Q::new(VERSION_COLUMNS).push(" WHERE status = 'pending' ORDER BY created_at, code");
        self.db.fetch_all_with(q, version_from_row).await
    }

    async fn add_resource_version(
        &self,
        v: &ResourceVersion,
        new_resource: bool,
    ) -> StoreResult<AddedVersion> {
        let body = body_json(&v.body)?;
        let mut tx = self.db.begin_write().await?;
        if new_resource {
            let n = tx
                .execute(
                    Q::new(
                        "INSERT INTO catalogue_resources (code, provider, published_version, \
                         created_at) VALUES ($1, $2, NULL, $3) ON CONFLICT (code) DO NOTHING",
                    )
                    .bind(&v.code)
                    .bind(&v.body.provider)
                    .bind(v.created_at),
                )
                .await?;
            if n == 0 {
                tx.rollback().await?;
                return Ok(AddedVersion::CodeTaken);
            }
        }
        // Taking the resource row first queues concurrent edits of one resource.
        let exists = tx
            .execute(
                Q::new("UPDATE catalogue_resources SET provider = provider WHERE code = $1")
                    .bind(&v.code),
            )
            .await?;
        if exists == 0 {
            tx.rollback().await?;
            return Ok(AddedVersion::NoResource);
        }
        let next: i64 = tx
            .fetch_one(
                Q::new(
                    "SELECT CAST(COALESCE(MAX(version), 0) + 1 AS BIGINT) AS next \
                     FROM catalogue_versions WHERE code = $1",
                )
                .bind(&v.code),
            )
            .await?
            .get("next")?;
        tx.execute(
            Q::new(
                "UPDATE catalogue_versions SET status = 'withdrawn' \
                 WHERE code = $1 AND status = 'pending'",
            )
            .bind(&v.code),
        )
        .await?;
        tx.execute(
            Q::new(
                "INSERT INTO catalogue_versions (code, version, body, system_id, status, note, \
                 author, author_name, created_at) \
                 VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8)",
            )
            .bind(&v.code)
            .bind(next)
            .bind(&body)
            .bind(v.system_id)
            .bind(&v.note)
            .bind(&v.author)
            .bind(&v.author_name)
            .bind(v.created_at),
        )
        .await?;
        tx.commit().await?;
        Ok(AddedVersion::Added(next))
    }

    async fn decide_resource_version(
        &self,
        code: &str,
        version: i64,
        publish: bool,
        by: (&str, &str),
        at: DateTime<Utc>,
        comment: Option<&str>,
    ) -> StoreResult<bool> {
        let mut tx = self.db.begin_write().await?;
        let n = tx
            .execute(
                Q::new(
                    "UPDATE catalogue_versions SET status = $1, decided_by = $2, \
                     decided_name = $3, decided_at = $4, comment = $5 \
                     WHERE code = $6 AND version = $7 AND status = 'pending'",
                )
                .bind(if publish { "published" } else { "returned" })
                .bind(by.0)
                .bind(by.1)
                .bind(at)
                .bind(comment)
                .bind(code)
                .bind(version),
            )
            .await?;
        if n == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if publish {
            tx.execute(
                Q::new("UPDATE catalogue_resources SET published_version = $1 WHERE code = $2")
                    .bind(version)
                    .bind(code),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
