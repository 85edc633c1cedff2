//! Key files: Ed25519 signing keys and X25519 encryption keys.
//!
//! ```json
//! {"type":"lotline/ed25519-signing-key/v1","publicKey":"<64 hex>","seed":"<64 hex>"}
//! {"type":"lotline/x25519-encryption-key/v1","publicKey":"<64 hex>","seed":"<64 hex>"}
//! ```
//! An encryption key's `seed` is its X25519 secret; it opens every private
//! section wrapped to the org, so it is handled like a signing seed.
//! A key file is written once, with mode 0600, and never overwritten: it is
//! first written and fsync'd under a temporary name in the same directory
//! (created with `O_EXCL`), then hard-linked to its final name, which fails if
//! that name exists. A reader therefore sees either no file or a complete one.
//! Reading refuses files that the group or others may access, files whose
//! public key does not match the seed, and unknown types.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use lotline_core::private::{EncryptionPublicKey, EncryptionSecretKey};
use lotline_core::{PublicKey, SigningKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// The `type` of a version 1 key file.
pub const KEY_FILE_TYPE: &str = "lotline/ed25519-signing-key/v1";
/// The `type` of an org's encryption key file.
pub const ENCRYPTION_KEY_FILE_TYPE: &str = "lotline/x25519-encryption-key/v1";

/// Key files are a few hundred bytes; anything larger is not one.
const KEY_FILE_BYTES_MAX: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("key file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {} already exists; key files are never overwritten", path.display())]
    AlreadyExists { path: PathBuf },
    #[error("key file {} has mode {mode:04o}; it must not be accessible by group or others (chmod 600)", path.display())]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("key file {} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error("key file {} is {len} bytes, more than a key file can be", path.display())]
    TooLarge { path: PathBuf, len: u64 },
    #[error("key file {} is not a key file: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error("key file {} has type {found:?}, expected {expected:?}", path.display())]
    UnknownType {
        path: PathBuf,
        found: String,
        expected: &'static str,
    },
    #[error("key file {}: {field} must be 64 hex digits", path.display())]
    BadHex { path: PathBuf, field: &'static str },
    #[error("key file {} states public key {stated}, but its seed gives {derived}", path.display())]
    PublicKeyMismatch {
        path: PathBuf,
        stated: String,
        derived: PublicKey,
    },
    #[error("key file {} states encryption key {stated}, but its secret gives {derived}", path.display())]
    EncryptionKeyMismatch {
        path: PathBuf,
        stated: String,
        derived: EncryptionPublicKey,
    },
    #[error("key file {} does not hold a usable X25519 secret", path.display())]
    BadEncryptionSecret { path: PathBuf },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    public_key: String,
    seed: String,
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `key` to a new file at `path` with mode 0600. Fails with
/// [`KeyFileError::AlreadyExists`] if `path` exists.
pub fn write_signing_key(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    write_key_file(
        path,
        KeyFile {
            kind: KEY_FILE_TYPE.to_owned(),
            public_key: key.public_key().to_hex(),
            seed: hex::encode(*key.seed()),
        },
    )
}

/// Writes an org's encryption key like a signing key: a new file, 0600.
pub fn write_encryption_key(path: &Path, key: &EncryptionSecretKey) -> Result<(), KeyFileError> {
    write_key_file(
        path,
        KeyFile {
            kind: ENCRYPTION_KEY_FILE_TYPE.to_owned(),
            public_key: key.public_key().to_hex(),
            seed: hex::encode(key.secret_bytes()),
        },
    )
}

fn write_key_file(path: &Path, file: KeyFile) -> Result<(), KeyFileError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let json = match serde_json::to_string(&file) {
        Ok(json) => Zeroizing::new(json + "\n"),
        Err(e) => panic!("JSON encoding of a key file failed: {e}"),
    };
    if path.exists() {
        return Err(KeyFileError::AlreadyExists {
            path: path.to_path_buf(),
        });
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));

    let result = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        // The umask can only remove bits; set exactly 0600 regardless.
        out.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io(&tmp))?;
        out.write_all(json.as_bytes()).map_err(io(&tmp))?;
        out.sync_all().map_err(io(&tmp))?;
        fs::hard_link(&tmp, path).map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeyFileError::AlreadyExists {
                path: path.to_path_buf(),
            },
            _ => KeyFileError::Io {
                path: path.to_path_buf(),
                source,
            },
        })
    })();
    // The temporary name goes whether or not the link succeeded.
    let removed = fs::remove_file(&tmp);
    result?;
    removed.map_err(io(&tmp))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

/// Reads a key file written by [`write_signing_key`] (or by hand, with the
/// same format and permissions).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyFileError> {
    let (stated_hex, seed) = read_key_file(path, KEY_FILE_TYPE)?;
    let stated = PublicKey::from_hex(&stated_hex).map_err(|_| KeyFileError::BadHex {
        path: path.to_path_buf(),
        field: "publicKey",
    })?;
    let key = SigningKey::from_seed(&seed);
    if key.public_key() != stated {
        return Err(KeyFileError::PublicKeyMismatch {
            path: path.to_path_buf(),
            stated: stated_hex,
            derived: key.public_key(),
        });
    }
    Ok(key)
}

/// Reads an org's encryption key file written by [`write_encryption_key`].
pub fn read_encryption_key(path: &Path) -> Result<EncryptionSecretKey, KeyFileError> {
    let (stated_hex, secret) = read_key_file(path, ENCRYPTION_KEY_FILE_TYPE)?;
    let stated = EncryptionPublicKey::from_hex(&stated_hex).map_err(|_| KeyFileError::BadHex {
        path: path.to_path_buf(),
        field: "publicKey",
    })?;
    let key = EncryptionSecretKey::from_bytes(&secret).map_err(|_| {
        KeyFileError::BadEncryptionSecret {
            path: path.to_path_buf(),
        }
    })?;
    if key.public_key() != stated {
        return Err(KeyFileError::EncryptionKeyMismatch {
            path: path.to_path_buf(),
            stated: stated_hex,
            derived: key.public_key(),
        });
    }
    Ok(key)
}

/// Reads and checks a key file of type `expected`: its permissions, size,
/// shape and hex. Returns the stated public key (hex) and the secret.
fn read_key_file(
    path: &Path,
    expected: &'static str,
) -> Result<(String, Zeroizing<[u8; 32]>), KeyFileError> {
    let file = File::open(path).map_err(io(path))?;
    let meta = file.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(KeyFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.len() > KEY_FILE_BYTES_MAX {
        return Err(KeyFileError::TooLarge {
            path: path.to_path_buf(),
            len: meta.len(),
        });
    }
    let mut text = Zeroizing::new(String::new());
    file.take(KEY_FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .map_err(io(path))?;
    let parsed: KeyFile = serde_json::from_str(&text).map_err(|e| KeyFileError::Malformed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if parsed.kind != expected {
        return Err(KeyFileError::UnknownType {
            path: path.to_path_buf(),
            found: parsed.kind.clone(),
            expected,
        });
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    if parsed.seed.len() != 64 || hex::decode_to_slice(&parsed.seed, seed.as_mut()).is_err() {
        return Err(KeyFileError::BadHex {
            path: path.to_path_buf(),
            field: "seed",
        });
    }
    Ok((parsed.public_key.clone(), seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_seed(&[42; 32])
    }

    #[test]
    fn written_file_has_mode_0600_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.key");
        write_signing_key(&path, &key()).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = read_signing_key(&path).unwrap();
        assert_eq!(back.public_key(), key().public_key());
        assert_eq!(*back.seed(), *key().seed());
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["type"], KEY_FILE_TYPE);
        assert_eq!(json["publicKey"], key().public_key().to_hex());
        assert_eq!(json["seed"], hex::encode([42u8; 32]));
    }

    #[test]
    fn refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        write_signing_key(&path, &key()).unwrap();
        let other = SigningKey::from_seed(&[1; 32]);
        assert!(matches!(
            write_signing_key(&path, &other),
            Err(KeyFileError::AlreadyExists { .. })
        ));
        assert_eq!(
            read_signing_key(&path).unwrap().public_key(),
            key().public_key()
        );
        // A file the writer did not create is not overwritten either.
        let foreign = dir.path().join("foreign.key");
        fs::write(&foreign, "x").unwrap();
        assert!(matches!(
            write_signing_key(&foreign, &other),
            Err(KeyFileError::AlreadyExists { .. })
        ));
        assert_eq!(fs::read_to_string(&foreign).unwrap(), "x");
    }

    #[test]
    fn refuses_a_file_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.key");
        write_signing_key(&path, &key()).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            match read_signing_key(&path) {
                Err(KeyFileError::InsecurePermissions { mode: got, .. }) => assert_eq!(got, mode),
                other => panic!("mode {mode:o}: expected InsecurePermissions, got {other:?}"),
            }
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(read_signing_key(&path).is_ok());
    }

    fn write_raw(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    #[test]
    fn rejects_bad_contents_precisely() {
        let dir = tempfile::tempdir().unwrap();
        let public = key().public_key().to_hex();
        let seed = hex::encode([42u8; 32]);
        let file = |kind: &str, public: &str, seed: &str| {
            format!(r#"{{"type":"{kind}","publicKey":"{public}","seed":"{seed}"}}"#)
        };

        let path = write_raw(
            dir.path(),
            "a",
            &file("lotline/ed25519-signing-key/v2", &public, &seed),
        );
        assert!(
            matches!(read_signing_key(&path), Err(KeyFileError::UnknownType { found, .. }) if found.ends_with("v2"))
        );

        let path = write_raw(
            dir.path(),
            "b",
            &file(KEY_FILE_TYPE, &public, &"zz".repeat(32)),
        );
        assert!(matches!(
            read_signing_key(&path),
            Err(KeyFileError::BadHex { field: "seed", .. })
        ));

        let path = write_raw(dir.path(), "c", &file(KEY_FILE_TYPE, "abcd", &seed));
        assert!(matches!(
            read_signing_key(&path),
            Err(KeyFileError::BadHex {
                field: "publicKey",
                ..
            })
        ));

        let other = SigningKey::from_seed(&[1; 32]).public_key().to_hex();
        let path = write_raw(dir.path(), "d", &file(KEY_FILE_TYPE, &other, &seed));
        assert!(matches!(
            read_signing_key(&path),
            Err(KeyFileError::PublicKeyMismatch { derived, .. }) if derived == key().public_key()
        ));

        let path = write_raw(dir.path(), "e", "not json");
        assert!(matches!(
            read_signing_key(&path),
            Err(KeyFileError::Malformed { .. })
        ));

        let extra =
            format!(r#"{{"type":"{KEY_FILE_TYPE}","publicKey":"{public}","seed":"{seed}","x":1}}"#);
        let path = write_raw(dir.path(), "f", &extra);
        assert!(matches!(
            read_signing_key(&path),
            Err(KeyFileError::Malformed { .. })
        ));

        let path = write_raw(dir.path(), "g", &" ".repeat(5000));
        assert!(matches!(
            read_signing_key(&path),
            Err(KeyFileError::TooLarge { len: 5000, .. })
        ));

        assert!(matches!(
            read_signing_key(dir.path()),
            Err(KeyFileError::NotAFile { .. })
        ));
        assert!(matches!(
            read_signing_key(&dir.path().join("missing")),
            Err(KeyFileError::Io { .. })
        ));
    }

    #[test]
    fn encryption_keys_are_0600_read_back_and_never_read_as_signing_keys() {
        // Goal: an org's encryption key file has the signing key file's
        // guarantees, and one kind of key file is never taken for the other.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("encryption.key");
        let key = EncryptionSecretKey::derive(&[9; 32]);
        write_encryption_key(&path, &key).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            read_encryption_key(&path).unwrap().public_key(),
            key.public_key()
        );
        assert!(matches!(
            read_signing_key(&path),
            Err(KeyFileError::UnknownType {
                expected: KEY_FILE_TYPE,
                ..
            })
        ));
        assert!(matches!(
            write_encryption_key(&path, &key),
            Err(KeyFileError::AlreadyExists { .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            read_encryption_key(&path),
            Err(KeyFileError::InsecurePermissions { .. })
        ));
        let other = EncryptionSecretKey::derive(&[8; 32]).public_key().to_hex();
        let text = format!(
            r#"{{"type":"{ENCRYPTION_KEY_FILE_TYPE}","publicKey":"{other}","seed":"{}"}}"#,
            hex::encode(key.secret_bytes())
        );
        let path = write_raw(dir.path(), "mismatch", &text);
        assert!(matches!(
            read_encryption_key(&path),
            Err(KeyFileError::EncryptionKeyMismatch { derived, .. }) if derived == key.public_key()
        ));
    }
}
