//! The development upstream: messages as files in a directory.

use std::path::{Path, PathBuf};

use super::{DeliveryError, Envelope, SetupError};

/// Development upstream: each message becomes `<name>.eml` plus
/// `<name>.json` with the envelope, written atomically.
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub(super) fn new(dir: PathBuf) -> Result<Self, SetupError> {
        std::fs::create_dir_all(&dir).map_err(|source| SetupError::Outbox {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn check(&self) -> Result<(), SetupError> {
        let probe = self.dir.join(".write-test");
        std::fs::write(&probe, b"")
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(|source| SetupError::Outbox {
                path: self.dir.clone(),
                source,
            })
    }

    pub(super) async fn deliver(
        &self,
        envelope: &Envelope<'_>,
        message: &[u8],
    ) -> Result<(), DeliveryError> {
        let name = format!(
            "{}-{}",
            crate::core::clock::now_unix(),
            uuid::Uuid::new_v4().simple()
        );
        let meta =
            serde_json::json!({ "mail_from": envelope.mail_from, "rcpt_to": envelope.rcpt_to });
        let io = |_| DeliveryError::Temporary("outbox write failed".into());
        self.write_atomic(&format!("{name}.json"), meta.to_string().as_bytes())
            .await
            .map_err(io)?;
        self.write_atomic(&format!("{name}.eml"), message)
            .await
            .map_err(io)?;
        Ok(())
    }

    /// Writes a temporary file (mode 0600: it holds a body and a real
    /// address) and renames it, so readers never see half a file. A failed
    /// write leaves no temporary file behind.
    async fn write_atomic(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let written = async {
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .await?;
            file.write_all(bytes).await?;
            file.flush().await?;
            drop(file);
            tokio::fs::rename(&tmp, self.dir.join(name)).await
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The development outbox holds bodies and real addresses: 0600.
    #[tokio::test]
    async fn outbox_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path().join("outbox")).unwrap();
        let envelope = Envelope {
            mail_from: "",
            rcpt_to: "alice@a.example",
        };
        outbox
            .deliver(&envelope, b"Subject: x\r\n\r\nbody\r\n")
            .await
            .unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(files.len(), 2, "{files:?}");
        for file in files {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }
}
