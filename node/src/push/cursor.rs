//! The persisted position of one endpoint: `<dir>/<endpoint id>.position`,
//! eight bytes little-endian, replaced atomically (temporary file,
//! fdatasync, rename, fsync of the folder) after each acknowledged payload.

use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: a position file holds 8 bytes, not {len}")]
    Damaged { path: PathBuf, len: usize },
}

#[derive(Debug)]
pub struct Cursor {
    dir: PathBuf,
    path: PathBuf,
}

impl Cursor {
    pub fn new(dir: &Path, endpoint: &str) -> Cursor {
        Cursor {
            dir: dir.to_owned(),
            path: dir.join(format!("{endpoint}.position")),
        }
    }

    /// The saved position; 0 (before everything) when none was saved.
    pub fn load(&self) -> Result<u64, CursorError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let array: [u8; 8] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| CursorError::Damaged {
                            path: self.path.clone(),
                            len: bytes.len(),
                        })?;
                Ok(u64::from_le_bytes(array))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(source) => Err(CursorError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    pub fn save(&self, position: u64) -> Result<(), CursorError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CursorError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let tmp = self.path.with_extension("position.tmp");
        {
            let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            file.write_all(&position.to_le_bytes()).map_err(io(&tmp))?;
            file.sync_data().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_and_refuses_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let cursor = Cursor::new(dir.path(), "qa");
        assert_eq!(cursor.load().unwrap(), 0);
        cursor.save(42).unwrap();
        assert_eq!(cursor.load().unwrap(), 42);
        cursor.save(u64::MAX).unwrap();
        assert_eq!(cursor.load().unwrap(), u64::MAX);
        std::fs::write(dir.path().join("qa.position"), b"abc").unwrap();
        assert!(matches!(
            cursor.load(),
            Err(CursorError::Damaged { len: 3, .. })
        ));
    }
}
