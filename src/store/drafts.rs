//! Uploads waiting to be attached to a case, and saved, unsubmitted applications.
//! Both are an applicant's own: every read and change names the owner.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::db::{Exec, Q, Row};
use super::{RowSeal, SqlStore, StoreResult, row_aad};

/// An uploaded file not yet (or already) attached to a case.
#[derive(Debug, Clone, Serialize)]
pub struct UploadRow {
    /// Id.
    pub id: Uuid,
    /// Uploader's account.
    pub owner: Uuid,
    /// Original file name.
    pub file_name: String,
    /// Sniffed type code.
    pub file_type: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256 hex.
    pub sha256: String,
    /// Key in the file store.
    #[serde(skip)]
    pub storage_key: String,
    /// Uploaded.
    pub created_at: DateTime<Utc>,
    /// Attached to.
    pub case_id: Option<Uuid>,
}

/// A saved, unsubmitted application.
#[derive(Debug, Clone, Serialize)]
pub struct DraftRow {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub account_id: Uuid,
    /// Service.
    pub service_code: String,
    /// Values so far.
    pub form: Value,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last saved.
    pub updated_at: DateTime<Utc>,
    /// Deleted after.
    pub expires_at: DateTime<Utc>,
}

/// Uploads and drafts.
#[async_trait]
pub trait DraftStore: Send + Sync {
    /// Records an upload.
    async fn insert_upload(&self, u: &UploadRow) -> StoreResult<()>;

    /// One upload.
    async fn upload(&self, id: Uuid) -> StoreResult<Option<UploadRow>>;

    /// Removes uploads never attached and older than `before`; returns them so their
    /// files can be deleted.
    async fn remove_stale_uploads(&self, before: DateTime<Utc>) -> StoreResult<Vec<UploadRow>>;

    /// Creates or replaces a draft of its owner; false when the id is another owner's
    /// (or another service's) draft, which is then left alone.
    async fn save_draft(&self, d: &DraftRow) -> StoreResult<bool>;

    /// One draft of an owner.
    async fn draft(&self, id: Uuid, owner: Uuid) -> StoreResult<Option<DraftRow>>;

    /// An owner's drafts, newest first.
    async fn drafts(&self, owner: Uuid) -> StoreResult<Vec<DraftRow>>;

    /// Deletes a draft of its owner.
    async fn delete_draft(&self, id: Uuid, owner: Uuid) -> StoreResult<bool>;

    /// Deletes expired drafts; returns how many.
    async fn purge_expired_drafts(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

#[async_trait]
impl DraftStore for SqlStore {
    async fn insert_upload(&self, u: &UploadRow) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO uploads (id, owner, file_name, file_type, size, sha256, storage_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(u.id)
        .bind(u.owner)
        .bind(&u.file_name)
        .bind(&u.file_type)
        .bind(u.size)
        .bind(&u.sha256)
        .bind(&u.storage_key)
        .bind(u.created_at);
        self.db.execute(q).await?;
        Ok(())
    }

    async fn upload(&self, id: Uuid) -> StoreResult<Option<UploadRow>> {
        let q = Q::new("SELECT * FROM uploads WHERE id = $1").bind(id);
        self.db.fetch_optional_with(q, upload_from_row).await
    }

    async fn remove_stale_uploads(&self, before: DateTime<Utc>) -> StoreResult<Vec<UploadRow>> {
        let q = Q::new("DELETE FROM uploads WHERE case_id IS NULL AND created_at < $1 RETURNING *")
            .bind(before);
        self.db.fetch_all_with(q, upload_from_row).await
    }

    async fn save_draft(&self, d: &DraftRow) -> StoreResult<bool> {
        let q = Q::new(
            "INSERT INTO drafts (id, account_id, service_code, form, created_at, updated_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET form = excluded.form, updated_at = excluded.updated_at, \
             expires_at = excluded.expires_at WHERE drafts.account_id = excluded.account_id \
             AND drafts.service_code = excluded.service_code",
        )
        .bind(d.id)
        .bind(d.account_id)
        .bind(&d.service_code)
        .bind(self.seal.json(&form_aad(d.id), &d.form))
        .bind(d.created_at)
        .bind(d.updated_at)
        .bind(d.expires_at);
        Ok(self.db.execute(q).await? == 1)
    }

    async fn draft(&self, id: Uuid, owner: Uuid) -> StoreResult<Option<DraftRow>> {
        let q = Q::new("SELECT * FROM drafts WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(owner);
        self.db
            .fetch_optional_with(q, |r| draft_from_row(r, &self.seal))
            .await
    }

    async fn drafts(&self, owner: Uuid) -> StoreResult<Vec<DraftRow>> {
        let q = Q::new("SELECT * FROM drafts WHERE account_id = $1 ORDER BY updated_at DESC")
            .bind(owner);
        self.db
            .fetch_all_with(q, |r| draft_from_row(r, &self.seal))
            .await
    }

    async fn delete_draft(&self, id: Uuid, owner: Uuid) -> StoreResult<bool> {
        let q = Q::new("DELETE FROM drafts WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(owner);
        Ok(self.db.execute(q).await? == 1)
    }

    async fn purge_expired_drafts(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let q = Q::new("DELETE FROM drafts WHERE expires_at < $1").bind(now);
        self.db.execute(q).await
    }
}

/// A draft's form is sealed bound to the draft's id.
fn form_aad(id: Uuid) -> String {
    row_aad("drafts", "form", &id.to_string())
}

pub(super) fn upload_from_row(r: &Row) -> StoreResult<UploadRow> {
    Ok(UploadRow {
        id: r.get("id")?,
        owner: r.get("owner")?,
        file_name: r.get("file_name")?,
        file_type: r.get("file_type")?,
        size: r.get("size")?,
        sha256: r.get("sha256")?,
        storage_key: r.get("storage_key")?,
        created_at: r.get("created_at")?,
        case_id: r.get("case_id")?,
    })
}

fn draft_from_row(r: &Row, seal: &RowSeal) -> StoreResult<DraftRow> {
    let id: Uuid = r.get("id")?;
    Ok(DraftRow {
        form: seal.open_json(&form_aad(id), r.get("form")?)?,
        id,
        account_id: r.get("account_id")?,
        service_code: r.get("service_code")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        expires_at: r.get("expires_at")?,
    })
}
