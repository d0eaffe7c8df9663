//! Storage for uploaded materials behind a small trait; the filesystem implementation
//! keeps files under `<data_dir>/files/`, named by a random key (never the uploader's
//! file name).

use std::path::PathBuf;

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
        assert_eq!(files.get("abc-123").await.expect("get"), b"hello");
        assert!(files.get("../etc/passwd").await.is_err());
        files.delete("abc-123").await.expect("delete");
        files.delete("abc-123").await.expect("delete again");
    }
}
