//! Storage for uploaded materials behind a small trait; the filesystem implementation
//! keeps files under `<data_dir>/files/`, named by a random key (never the uploader's
//! file name).
//!
//! The gateway serves [`SealedFiles`]: every material is sealed at rest (AES-256-GCM under
//! the current personal-data key, bound to its storage key, see `sharing::seal`) and
//! checked and opened on every read; a sealed file that was altered or moved is refused.
//! The bytes live where `materials_store` says ([`Blobs`]): on the local disk (the
//! embedded SQLite default), in the database (`material_blobs`, the default on
//! PostgreSQL) or in an S3-compatible object store, so every instance reaches them.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

/// Where uploaded files live.
#[async_trait]
pub trait FileStore: Send + Sync + 'static {
    /// Moves a finished temporary file into the store under `key`.
    async fn put_file(&self, key: &str, temp: &std::path::Path) -> std::io::Result<()>;
    /// Reads a stored file.
    async fn get(&self, key: &str) -> std::io::Result<Vec<u8>>;
    /// Deletes a stored file (missing is fine).
    async fn delete(&self, key: &str) -> std::io::Result<()>;
    /// A directory for temporary files on the same filesystem (so `put_file` is a rename).
    fn temp_dir(&self) -> PathBuf;
    /// Seals a stored file again under the current data key when it is not sealed under
    /// it; true when it was rewritten (`keys rotate-data`). Stores that do not seal do
    /// nothing.
    async fn reseal(&self, _key: &str) -> std::io::Result<bool> {
        Ok(false)
    }
}

/// Files on the local filesystem.
pub struct LocalFiles {
    root: PathBuf,
}

impl LocalFiles {
    /// Creates the directories when needed.
    pub fn new(root: PathBuf) -> std::io::Result<LocalFiles> {
        std::fs::create_dir_all(root.join("tmp"))?;
        std::fs::create_dir_all(root.join("objects"))?;
        Ok(LocalFiles { root })
    }

    fn path(&self, key: &str) -> std::io::Result<PathBuf> {
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "bad file key",
            ));
        }
        Ok(self.root.join("objects").join(key))
    }
}

#[async_trait]
impl FileStore for LocalFiles {
    async fn put_file(&self, key: &str, temp: &std::path::Path) -> std::io::Result<()> {
        tokio::fs::rename(temp, self.path(key)?).await
    }

    async fn get(&self, key: &str) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.path(key)?).await
    }

    async fn delete(&self, key: &str) -> std::io::Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn temp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}

/// Where the (sealed) bytes of materials are kept.
#[async_trait]
pub trait Blobs: Send + Sync + 'static {
    /// Stores `bytes` under `key`, replacing what was there.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> std::io::Result<()>;
    /// The bytes under `key` (`NotFound` when there are none).
    async fn get(&self, key: &str) -> std::io::Result<Vec<u8>>;
    /// Deletes (missing is fine).
    async fn delete(&self, key: &str) -> std::io::Result<()>;
}

#[async_trait]
impl Blobs for LocalFiles {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> std::io::Result<()> {
        let path = self.path(key)?;
        let tmp = self
            .temp_dir()
            .join(format!("{key}.{}.put", uuid::Uuid::now_v7()));
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, path).await
    }

    async fn get(&self, key: &str) -> std::io::Result<Vec<u8>> {
        FileStore::get(self, key).await
    }

    async fn delete(&self, key: &str) -> std::io::Result<()> {
        FileStore::delete(self, key).await
    }
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Materials in the database's `material_blobs` table.
pub struct DbBlobs(pub Arc<dyn crate::store::Store>);

#[async_trait]
impl Blobs for DbBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> std::io::Result<()> {
        self.0
            .put_blob(key, bytes, chrono::Utc::now())
            .await
            .map_err(io_err)
    }

    async fn get(&self, key: &str) -> std::io::Result<Vec<u8>> {
        self.0
            .get_blob(key)
            .await
            .map_err(io_err)?
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such material"))
    }

    async fn delete(&self, key: &str) -> std::io::Result<()> {
        self.0.delete_blob(key).await.map_err(io_err)
    }
}

/// Materials in an S3-compatible object store (`object_store`).
pub struct S3Blobs(Arc<dyn object_store::ObjectStore>);

impl S3Blobs {
    /// The bucket and credentials from the settings.
    pub fn from_settings(k: &crate::config::KeySettings) -> anyhow::Result<S3Blobs> {
        use secrecy::ExposeSecret;
        crate::install_tls_provider();
        let mut b = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(k.s3_bucket.clone().unwrap_or_default())
            .with_region(&k.s3_region)
            .with_allow_http(k.s3_allow_http);
        if let Some(e) = &k.s3_endpoint {
            b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
        }
        if let Some(id) = &k.s3_access_key_id {
            b = b.with_access_key_id(id);
        }
        if let Some(secret) = &k.s3_secret_access_key {
            b = b.with_secret_access_key(secret.expose_secret());
        }
        Ok(S3Blobs(Arc::new(b.build()?)))
    }
}

fn s3_err(e: object_store::Error) -> std::io::Error {
    match e {
        object_store::Error::NotFound { .. } => {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such material")
        }
        e => io_err(e),
    }
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> std::io::Result<()> {
        use object_store::ObjectStoreExt;
        self.0
            .put(&object_store::path::Path::from(key), bytes.into())
            .await
            .map(|_| ())
            .map_err(s3_err)
    }

    async fn get(&self, key: &str) -> std::io::Result<Vec<u8>> {
        use object_store::ObjectStoreExt;
        let got = self
            .0
            .get(&object_store::path::Path::from(key))
            .await
            .map_err(s3_err)?;
        Ok(got.bytes().await.map_err(s3_err)?.to_vec())
    }

    async fn delete(&self, key: &str) -> std::io::Result<()> {
        use object_store::ObjectStoreExt;
        match self.0.delete(&object_store::path::Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_err(e)),
        }
    }
}

/// Materials sealed at rest: bytes sealed under the current personal-data key and bound
/// to their storage key, kept in any [`Blobs`]; a file from before sealing is read as it
/// is (and sealed by `keys rotate-data`).
pub struct SealedFiles {
    blobs: Arc<dyn Blobs>,
    sealer: Arc<crate::sharing::seal::Sealer>,
    tmp: PathBuf,
    /// `local`, `database` or `s3`, for logs.
    pub kind: &'static str,
}

/// A sealed material that does not open (altered, moved to another key, or under a data
/// key this instance does not hold): the read fails with this error's kind.
pub const TAMPERED: std::io::ErrorKind = std::io::ErrorKind::InvalidData;

fn valid_key(key: &str) -> std::io::Result<()> {
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "bad file key",
        ));
    }
    Ok(())
}

impl SealedFiles {
    /// Seals into `blobs`; temporary files go to `tmp`.
    pub fn new(
        blobs: Arc<dyn Blobs>,
        sealer: Arc<crate::sharing::seal::Sealer>,
        tmp: PathBuf,
        kind: &'static str,
    ) -> std::io::Result<SealedFiles> {
        std::fs::create_dir_all(&tmp)?;
        Ok(SealedFiles {
            blobs,
            sealer,
            tmp,
            kind,
        })
    }

    /// The store the settings choose: `materials_store` (`auto`: the database on
    /// PostgreSQL, the local disk on SQLite).
    pub fn from_settings(
        settings: &crate::config::Settings,
        store: &Arc<dyn crate::store::Store>,
        sealer: Arc<crate::sharing::seal::Sealer>,
    ) -> anyhow::Result<SealedFiles> {
        let root = settings.server.data_dir.join("files");
        let kind = match settings.keys.materials_store.as_str() {
            "auto" if store.backend() == "postgres" => "database",
            "auto" => "local",
            "database" => "database",
            "s3" => "s3",
            _ => "local",
        };
        let blobs: Arc<dyn Blobs> = match kind {
            "database" => Arc::new(DbBlobs(store.clone())),
            "s3" => Arc::new(S3Blobs::from_settings(&settings.keys)?),
            _ => Arc::new(LocalFiles::new(root.clone())?),
        };
        Ok(SealedFiles::new(blobs, sealer, root.join("tmp"), kind)?)
    }
}

#[async_trait]
impl FileStore for SealedFiles {
    async fn put_file(&self, key: &str, temp: &std::path::Path) -> std::io::Result<()> {
        valid_key(key)?;
        let plain = tokio::fs::read(temp).await?;
        let sealed = self.sealer.seal_bytes(key, &plain);
        drop(plain);
        self.blobs.put(key, sealed).await?;
        let _ = tokio::fs::remove_file(temp).await;
        Ok(())
    }

    async fn get(&self, key: &str) -> std::io::Result<Vec<u8>> {
        valid_key(key)?;
        let stored = self.blobs.get(key).await?;
        match self.sealer.open_bytes(key, &stored) {
            Ok(Some(plain)) => Ok(plain),
            Ok(None) => Ok(stored),
            Err(e) => {
                tracing::error!(error = %e, "a sealed material does not open: refused");
                Err(std::io::Error::new(TAMPERED, e))
            }
        }
    }

    async fn delete(&self, key: &str) -> std::io::Result<()> {
        valid_key(key)?;
        self.blobs.delete(key).await
    }

    fn temp_dir(&self) -> PathBuf {
        self.tmp.clone()
    }

    async fn reseal(&self, key: &str) -> std::io::Result<bool> {
        valid_key(key)?;
        let stored = match self.blobs.get(key).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let current = self.sealer.current_kid();
        if crate::sharing::seal::Sealer::bytes_kid(&stored) == Some(current.as_str()) {
            return Ok(false);
        }
        let plain = match self.sealer.open_bytes(key, &stored) {
            Ok(Some(p)) => p,
            Ok(None) => stored,
            Err(e) => return Err(std::io::Error::new(TAMPERED, e)),
        };
        self.blobs
            .put(key, self.sealer.seal_bytes(key, &plain))
            .await?;
        Ok(true)
    }
}

/// The media type of a stored file by its file type code (`pdf`, `jpg` …), for serving it.
pub fn mime_of(file_type: &str) -> &'static str {
    match file_type {
        "pdf" => "application/pdf",
        "jpg" => "image/jpeg",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

/// The file type detected from the first bytes, as a definition's file type code.
/// OFD documents are ZIP containers; a ZIP counts as OFD only when named `.ofd`.
pub fn sniff(head: &[u8], file_name: &str) -> Option<&'static str> {
    let kind = infer::get(head)?;
    match kind.mime_type() {
        "application/pdf" => Some("pdf"),
        "image/jpeg" => Some("jpg"),
        "image/png" => Some("png"),
        "application/zip" if file_name.to_ascii_lowercase().ends_with(".ofd") => Some("ofd"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content_not_name() {
        assert_eq!(sniff(b"%PDF-1.7\n...", "scan.jpg"), Some("pdf"));
        assert_eq!(
            sniff(
                &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0],
                "a.pdf"
            ),
            Some("png")
        );
        assert_eq!(
            sniff(
                &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'],
                "x"
            ),
            Some("jpg")
        );
        assert_eq!(sniff(b"MZ\x90\x00 not a document", "evil.pdf"), None);
        assert_eq!(sniff(b"plain text", "a.pdf"), None);
    }

    #[tokio::test]
    async fn stores_by_key_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let files = LocalFiles::new(dir.path().to_path_buf()).expect("store");
        let tmp = files.temp_dir().join("t1");
        tokio::fs::write(&tmp, b"hello").await.expect("write");
        files.put_file("abc-123", &tmp).await.expect("put");
        assert_eq!(
            FileStore::get(&files, "abc-123").await.expect("get"),
            b"hello"
        );
        assert!(FileStore::get(&files, "../etc/passwd").await.is_err());
        FileStore::delete(&files, "abc-123").await.expect("delete");
        FileStore::delete(&files, "abc-123")
            .await
            .expect("delete again");
    }

    #[tokio::test]
    async fn sealed_files_are_sealed_on_disk_and_refused_when_altered() {
        let dir = tempfile::tempdir().expect("tmp");
        let local = Arc::new(LocalFiles::new(dir.path().to_path_buf()).expect("store"));
        let sealer = Arc::new(crate::sharing::seal::Sealer::new(b"i", &[5; 32]));
        let files = SealedFiles::new(
            local.clone(),
            sealer.clone(),
            dir.path().join("tmp"),
            "local",
        )
        .expect("sealed");
        let tmp = files.temp_dir().join("t1");
        tokio::fs::write(&tmp, b"%PDF-1.7 secret scan")
            .await
            .expect("write");
        files.put_file("k-1", &tmp).await.expect("put");
        let raw = Blobs::get(local.as_ref(), "k-1").await.expect("raw");
        assert!(raw.starts_with(crate::sharing::seal::MATERIAL_MAGIC));
        assert!(!raw.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            FileStore::get(&files, "k-1").await.expect("get"),
            b"%PDF-1.7 secret scan"
        );
        // moved to another key: refused
        local.put("k-2", raw.clone()).await.expect("copy");
        let e = FileStore::get(&files, "k-2").await.expect_err("moved");
        assert_eq!(e.kind(), TAMPERED);
        // altered: refused
        let mut bad = raw;
        let n = bad.len() - 3;
        bad[n] ^= 0x40;
        local.put("k-1", bad).await.expect("alter");
        assert_eq!(
            FileStore::get(&files, "k-1")
                .await
                .expect_err("altered")
                .kind(),
            TAMPERED
        );
        // a file from before sealing is read as it is, and re-sealing seals it
        local.put("k-3", b"%PDF old".to_vec()).await.expect("plain");
        assert_eq!(
            FileStore::get(&files, "k-3").await.expect("plain"),
            b"%PDF old"
        );
        assert!(files.reseal("k-3").await.expect("reseal"));
        assert!(
            !files.reseal("k-3").await.expect("again"),
            "already under the current key"
        );
        assert_eq!(
            FileStore::get(&files, "k-3").await.expect("sealed"),
            b"%PDF old"
        );
    }
}
