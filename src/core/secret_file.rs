//! Secret files — the server secret, the hook's token, the DKIM key — read
//! and created under one rule: nobody but the owner may write one, and
//! nobody outside its group may read one (whoever reads the server secret
//! can forge bounce addresses, the token opens the hook, the key signs as
//! us). Group read is allowed because systemd hands credentials over as
//! root-owned 0400 files with an ACL for the service user, and `stat` shows
//! the ACL's mask in the group bits (mode 0440). A new one is created only
//! where none exists, mode 0600, and is on disk (file and directory
//! fsynced) before it is used.
//!
//! The TLS private key is not read here: certbot and the README's setup
//! share it with the daemon through a group (0640), and rustls reads it.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Bits of the mode refused: group write or execute, and any access for
/// others.
const REFUSED_BITS: u32 = 0o037;
/// Secrets are a few hundred bytes; a larger file is not one of ours.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("{path} does not exist")]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_SECRET_BYTES} bytes: not a secret file")]
    TooLarge { path: PathBuf },
    #[error(
        "{path} may be written by others than its owner or read outside its group (mode {mode:o}); chmod 600 it"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads a secret file under the rule above. The mode is checked on the
/// open file, so it is the file that was read.
pub fn read(path: &Path) -> Result<Vec<u8>, SecretFileError> {
    let read_error = |source: std::io::Error| SecretFileError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            SecretFileError::Missing {
                path: path.to_owned(),
            }
        } else {
            read_error(source)
        }
    })?;
    let metadata = file.metadata().map_err(read_error)?;
    let mode = metadata.permissions().mode();
    if mode & REFUSED_BITS != 0 {
        return Err(SecretFileError::Exposed {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(SecretFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// Creates a new secret file (never overwriting one), mode 0600, and
/// fsyncs it and its directory.
pub fn create(path: &Path, contents: &[u8]) -> Result<(), SecretFileError> {
    let create_error = |source| SecretFileError::Create {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(create_error)?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(create_error)?;
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(create_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_secret_is_owner_only_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        create(&path, b"hush\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read(&path).unwrap(), b"hush\n");
        assert!(
            matches!(create(&path, b"other"), Err(SecretFileError::Create { .. })),
            "an existing secret is never overwritten"
        );
        assert_eq!(read(&path).unwrap(), b"hush\n");
    }

    #[test]
    fn writing_beyond_the_owner_or_reading_beyond_the_group_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        create(&path, b"hush").unwrap();
        for mode in [0o604, 0o620, 0o602, 0o644, 0o660, 0o610, 0o601, 0o666] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = read(&path).unwrap_err();
            assert!(
                matches!(err, SecretFileError::Exposed { mode: m, .. } if m == mode),
                "{mode:o}: {err}"
            );
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        // 0440 is a systemd credential (root:root 0400 plus an ACL for the
        // service user: the group bits show the ACL's mask).
        for mode in [0o400, 0o440, 0o640, 0o600] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(read(&path).unwrap(), b"hush", "{mode:o}");
        }
    }

    #[test]
    fn missing_and_oversized_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none");
        assert!(matches!(
            read(&missing),
            Err(SecretFileError::Missing { .. })
        ));
        let large = dir.path().join("large");
        create(&large, &vec![b'x'; MAX_SECRET_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            read(&large),
            Err(SecretFileError::TooLarge { .. })
        ));
    }
}
