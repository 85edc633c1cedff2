//! An append-only file of checksummed records, made durable with fdatasync.
//!
//! ```text
//! file   = magic (8 bytes) || version (u32 BE) || record*
//! record = len (u32 BE) || crc32c-of-body (u32 BE) || body (len bytes)
//! ```
//! The block log, its index and the vote journal are record files. On open
//! every record is read and checked ([`RecordFile::open`]), or every record
//! from a known record boundary on ([`RecordFile::open_from`], the block log
//! when its index vouches for what comes before). A bad or incomplete record
//! *at the end* is a torn write from a crash and is cut off; a bad record
//! followed by more data is damage in the middle and is reported, never
//! silently skipped or served. Records before the start of a partial open are
//! still checked whenever they are read ([`RecordFile::read_at`]).
//!
//! Appends go to the OS with `write_all`; nothing is durable until
//! [`RecordFile::sync`] returns. Callers group several appends under one sync.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes before the first record: magic and version.
pub const HEADER_LEN: u64 = 12;
/// Bytes before each record's body: length and checksum.
pub const RECORD_PREFIX_LEN: u64 = 8;

#[derive(Debug, thiserror::Error)]
pub enum RecordFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a {expected} file (bad magic)")]
    Magic {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{path}: format version {found} is not supported (expected {expected})")]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "{path}: record at offset {offset} is damaged ({reason}) and {following} bytes follow it; refusing to open"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: &'static str,
        following: u64,
    },
    #[error("{path}: is {len} bytes long, shorter than the record offset {start} to open from")]
    Short { path: PathBuf, len: u64, start: u64 },
    #[error("{path}: record of {len} bytes is larger than the limit {max}")]
    TooLarge {
        path: PathBuf,
        len: usize,
        max: usize,
    },
}

/// One intact record: where it starts and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub body: Vec<u8>,
}

/// A freshly opened file with every intact record, in order.
#[derive(Debug)]
pub struct Opened {
    pub file: RecordFile,
    pub records: Vec<Record>,
    pub report: OpenReport,
}

/// Damage that is not at the tail.
#[derive(Debug)]
struct Damage {
    offset: u64,
    reason: &'static str,
    following: u64,
}

/// What opening found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Bytes cut off the end (a torn last write), 0 if the file was clean.
    pub truncated_bytes: u64,
}

#[derive(Debug)]
pub struct RecordFile {
    file: File,
    path: PathBuf,
    len: u64,
    record_max: usize,
    /// The buffer a record is put together in, kept between appends up to
    /// [`KEPT_BUFFER_BYTES_MAX`]: a block is about a megabyte, and a fresh
    /// buffer for each cost the consensus thread the kernel's zeroing of
    /// fresh pages (docs/performance.md, "Gossip packed per message").
    buf: Vec<u8>,
}

/// The largest append buffer a record file (or its writer) keeps for the
/// next append; a rare larger record's buffer is freed after it.
pub const KEPT_BUFFER_BYTES_MAX: usize = 8 * 1024 * 1024;

impl RecordFile {
    /// Opens (or creates) the file and returns it with every intact record's
    /// (offset, body) in order.
    pub fn open(
        path: &Path,
        magic: &'static [u8; 8],
        version: u32,
        record_max: usize,
    ) -> Result<Opened, RecordFileError> {
        RecordFile::open_from(path, magic, version, record_max, HEADER_LEN)
    }

    /// Opens the file and returns the intact records from offset `start` on,
    /// which the caller knows to be a record boundary (an offset a previous
    /// [`append`](Self::append) returned). Nothing before `start` is read.
    /// The torn-tail and damage rules apply to what follows `start`.
    pub fn open_from(
        path: &Path,
        magic: &'static [u8; 8],
        version: u32,
        record_max: usize,
        start: u64,
    ) -> Result<Opened, RecordFileError> {
        let io_err = |source| RecordFileError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err)?;
        let file_len = file.metadata().map_err(io_err)?.len();
        let mut report = OpenReport::default();
        let start = start.max(HEADER_LEN);
        if file_len < HEADER_LEN && start > HEADER_LEN {
            return Err(RecordFileError::Short {
                path: path.to_owned(),
                len: file_len,
                start,
            });
        }
        if file_len < HEADER_LEN {
            // New file, or a crash while writing the header of a new file.
            file.set_len(0).map_err(io_err)?;
            let mut header = Vec::with_capacity(HEADER_LEN as usize);
            header.extend_from_slice(magic);
            header.extend_from_slice(&version.to_be_bytes());
            file.write_all(&header).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
            sync_parent_dir(path).map_err(io_err)?;
            report.truncated_bytes = file_len;
            let file = RecordFile {
                file,
                path: path.to_owned(),
                len: HEADER_LEN,
                record_max,
                buf: Vec::new(),
            };
            return Ok(Opened {
                file,
                records: Vec::new(),
                report,
            });
        }
        let mut header = [0u8; HEADER_LEN as usize];
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        file.read_exact(&mut header).map_err(io_err)?;
        check_header(path, &header, magic, version)?;
        if start > file_len {
            return Err(RecordFileError::Short {
                path: path.to_owned(),
                len: file_len,
                start,
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(file_len - start).unwrap_or(0));
        file.seek(SeekFrom::Start(start)).map_err(io_err)?;
        file.read_to_end(&mut bytes).map_err(io_err)?;
        let (records, good_len) =
            scan(&bytes, start, record_max).map_err(|damage| RecordFileError::Corrupt {
                path: path.to_owned(),
                offset: damage.offset,
                reason: damage.reason,
                following: damage.following,
            })?;
        if good_len < file_len {
            report.truncated_bytes = file_len - good_len;
            file.set_len(good_len).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
        }
        file.seek(SeekFrom::Start(good_len)).map_err(io_err)?;
        let file = RecordFile {
            file,
            path: path.to_owned(),
            len: good_len,
            record_max,
            buf: Vec::new(),
        };
        Ok(Opened {
            file,
            records,
            report,
        })
    }

    /// Appends one record; returns its offset. Not durable until [`sync`](Self::sync).
    pub fn append(&mut self, body: &[u8]) -> Result<u64, RecordFileError> {
        self.append_with(|out| out.extend_from_slice(body))
    }

    /// Appends one record whose body `write` puts at the end of the buffer
    /// it is given, so that an encoder writes straight into the file's
    /// kept buffer; returns the record's offset. Not durable until
    /// [`sync`](Self::sync). A body over the record limit is refused and
    /// nothing is written.
    pub fn append_with(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Result<u64, RecordFileError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(RECORD_PREFIX_LEN as usize, 0);
        write(&mut buf);
        let written = self.write_record(&mut buf);
        if buf.capacity() <= KEPT_BUFFER_BYTES_MAX {
            self.buf = buf;
        }
        written
    }

    /// Takes over `old`'s append buffer, for a file that replaces it (the
    /// vote journal's rewrite), so appends go on in the pages already held.
    pub fn keep_buffer_of(&mut self, old: &mut RecordFile) {
        self.buf = std::mem::take(&mut old.buf);
    }

    /// Writes `record`: a prefix's room, then the body, which it fills in.
    fn write_record(&mut self, record: &mut [u8]) -> Result<u64, RecordFileError> {
        let (prefix, body) = record.split_at_mut(RECORD_PREFIX_LEN as usize);
        if body.len() > self.record_max {
            return Err(RecordFileError::TooLarge {
                path: self.path.clone(),
                len: body.len(),
                max: self.record_max,
            });
        }
        let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
        prefix[..4].copy_from_slice(&len.to_be_bytes());
        prefix[4..].copy_from_slice(&crc32fast::hash(body).to_be_bytes());
        let offset = self.len;
        self.file
            .write_all(record)
            .map_err(|source| RecordFileError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.len += record.len() as u64;
        Ok(offset)
    }

    /// fdatasync: every appended record is durable when this returns.
    pub fn sync(&mut self) -> Result<(), RecordFileError> {
        self.file.sync_data().map_err(|source| RecordFileError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Reads the record body at `offset` (as returned by `append`/`open`).
    pub fn read_at(&self, offset: u64) -> Result<Vec<u8>, RecordFileError> {
        read_record_at(&self.file, &self.path, offset, self.record_max)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len <= HEADER_LEN
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads the one record body at `offset` of `file` (at `path`, for errors),
/// checking its length against `record_max` and its checksum. For readers
/// that locate records through an index and must get past a damaged one:
/// `lotline repair` reads a log read only, record by record.
pub fn read_record_at(
    file: &File,
    path: &Path,
    offset: u64,
    record_max: usize,
) -> Result<Vec<u8>, RecordFileError> {
    use std::os::unix::fs::FileExt;
    let io_err = |source| RecordFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut prefix = [0u8; RECORD_PREFIX_LEN as usize];
    file.read_exact_at(&mut prefix, offset).map_err(io_err)?;
    let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    let crc = u32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    if len > record_max {
        return Err(RecordFileError::TooLarge {
            path: path.to_owned(),
            len,
            max: record_max,
        });
    }
    let mut body = vec![0u8; len];
    file.read_exact_at(&mut body, offset + RECORD_PREFIX_LEN)
        .map_err(io_err)?;
    if crc32fast::hash(&body) != crc {
        return Err(RecordFileError::Corrupt {
            path: path.to_owned(),
            offset,
            reason: "checksum mismatch on read",
            following: 0,
        });
    }
    Ok(body)
}

/// Reads the intact records of the file at `path` without opening it for
/// writing: nothing is truncated or created. For readers beside a running
/// node (an online backup, `lotline doctor`), where a record being appended
/// right now looks like a torn tail and must be left alone. Returns the
/// records and the file length of their intact prefix; damage followed by
/// more data is [`RecordFileError::Corrupt`], as at open.
pub fn read_records(
    path: &Path,
    magic: &'static [u8; 8],
    version: u32,
    record_max: usize,
) -> Result<(Vec<Record>, u64), RecordFileError> {
    read_records_from(path, magic, version, record_max, HEADER_LEN)
}

/// [`read_records`] from offset `start` on, a record boundary the caller
/// knows (as [`RecordFile::open_from`]); nothing before it is read but the
/// header.
pub fn read_records_from(
    path: &Path,
    magic: &'static [u8; 8],
    version: u32,
    record_max: usize,
    start: u64,
) -> Result<(Vec<Record>, u64), RecordFileError> {
    let io_err = |source| RecordFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    let mut header = [0u8; HEADER_LEN as usize];
    file.read_exact(&mut header)
        .map_err(|source| match source.kind() {
            io::ErrorKind::UnexpectedEof => RecordFileError::Magic {
                path: path.to_owned(),
                expected: magic_name(magic),
            },
            _ => io_err(source),
        })?;
    check_header(path, &header, magic, version)?;
    let start = start.max(HEADER_LEN);
    if start > len {
        return Err(RecordFileError::Short {
            path: path.to_owned(),
            len,
            start,
        });
    }
    file.seek(SeekFrom::Start(start)).map_err(io_err)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(io_err)?;
    scan(&bytes, start, record_max).map_err(|damage| RecordFileError::Corrupt {
        path: path.to_owned(),
        offset: damage.offset,
        reason: damage.reason,
        following: damage.following,
    })
}

/// Checks the magic and version at the start of `bytes` (a whole file or
/// at least its header).
pub fn check_header(
    path: &Path,
    bytes: &[u8],
    magic: &'static [u8; 8],
    version: u32,
) -> Result<(), RecordFileError> {
    if bytes.len() < HEADER_LEN as usize || &bytes[..8] != magic {
        return Err(RecordFileError::Magic {
            path: path.to_owned(),
            expected: magic_name(magic),
        });
    }
    let found = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if found != version {
        return Err(RecordFileError::Version {
            path: path.to_owned(),
            found,
            expected: version,
        });
    }
    Ok(())
}

/// Scans the records in `bytes`, which start at file offset `base`. Returns
/// the intact records and the file length of the intact prefix, or
/// (offset, reason, bytes following) for damage that is not at the tail.
fn scan(bytes: &[u8], base: u64, record_max: usize) -> Result<(Vec<Record>, u64), Damage> {
    let mut records = Vec::new();
    let mut pos = 0;
    let total = bytes.len();
    while pos < total {
        let remaining = total - pos;
        if remaining < RECORD_PREFIX_LEN as usize {
            break; // torn prefix at the tail
        }
        let len = u32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]])
            as usize;
        let crc = u32::from_be_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]);
        let body_start = pos + RECORD_PREFIX_LEN as usize;
        if len > record_max {
            // A garbage length: damage unless it is the last thing in the file.
            if is_tail(bytes, body_start) {
                break;
            }
            return Err(Damage {
                offset: base + pos as u64,
                reason: "length beyond the record limit",
                following: (total - pos) as u64,
            });
        }
        let body_end = body_start + len;
        if body_end > total {
            break; // torn body at the tail
        }
        let body = &bytes[body_start..body_end];
        if crc32fast::hash(body) != crc {
            if body_end == total {
                break; // the last record was torn
            }
            return Err(Damage {
                offset: base + pos as u64,
                reason: "checksum mismatch",
                following: (total - body_end) as u64,
            });
        }
        records.push(Record {
            offset: base + pos as u64,
            body: body.to_vec(),
        });
        pos = body_end;
    }
    Ok((records, base + pos as u64))
}

/// True if everything from `from` on is zero bytes (a preallocated or torn tail).
fn is_tail(bytes: &[u8], from: usize) -> bool {
    bytes
        .get(from..)
        .is_none_or(|rest| rest.iter().all(|b| *b == 0))
}

fn magic_name(magic: &[u8; 8]) -> &'static str {
    match magic {
        b"LLBLKLOG" => "block log",
        b"LLVOTEJL" => "vote journal",
        b"LLBLKIDX" => "block index",
        _ => "record",
    }
}

/// Makes a newly created file's directory entry durable.
pub fn sync_parent_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: &[u8; 8] = b"LLTESTRF";

    fn open(path: &Path) -> Result<Opened, RecordFileError> {
        RecordFile::open(path, MAGIC, 1, 1024)
    }

    #[test]
    fn empty_then_one_then_many_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let Opened {
            file: mut f,
            records,
            ..
        } = open(&path).unwrap();
        assert!(records.is_empty() && f.is_empty());
        f.append(b"one").unwrap();
        f.sync().unwrap();
        drop(f);
        let Opened {
            file: mut f,
            records,
            report,
        } = open(&path).unwrap();
        assert_eq!(
            records.iter().map(|r| r.body.clone()).collect::<Vec<_>>(),
            vec![b"one".to_vec()]
        );
        assert_eq!(report.truncated_bytes, 0);
        let offset = f.append(&[7u8; 1024]).unwrap();
        f.sync().unwrap();
        assert_eq!(f.read_at(offset).unwrap(), vec![7u8; 1024]);
        assert!(matches!(
            f.append(&[0u8; 1025]),
            Err(RecordFileError::TooLarge { .. })
        ));
    }

    #[test]
    fn torn_tail_is_truncated_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let Opened { file: mut f, .. } = open(&path).unwrap();
        f.append(b"first").unwrap();
        f.append(b"second").unwrap();
        f.sync().unwrap();
        let full = f.len();
        drop(f);
        // Cut into the middle of the second record, as a crash would.
        for cut in [full - 1, full - 6, full - 10] {
            let bytes = std::fs::read(&path).unwrap();
            let file = OpenOptions::new().write(true).open(&path).unwrap();
            file.set_len(cut).unwrap();
            let Opened {
                file: f,
                records,
                report,
            } = open(&path).unwrap();
            assert_eq!(records.len(), 1, "cut at {cut}");
            assert_eq!(report.truncated_bytes, cut - f.len());
            drop(f);
            std::fs::write(&path, bytes).unwrap();
        }
    }

    #[test]
    fn damage_in_the_middle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let Opened { file: mut f, .. } = open(&path).unwrap();
        let first = f.append(b"first").unwrap();
        f.append(b"second").unwrap();
        f.sync().unwrap();
        drop(f);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[first as usize + 9] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(open(&path), Err(RecordFileError::Corrupt { .. })));
    }

    #[test]
    fn open_from_reads_only_what_follows_and_keeps_the_tail_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let Opened { file: mut f, .. } = open(&path).unwrap();
        let first = f.append(b"first").unwrap();
        let second = f.append(b"second").unwrap();
        f.append(b"third").unwrap();
        f.sync().unwrap();
        let full = f.len();
        drop(f);
        // Damage before `start` is not read; a torn tail after it is cut.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[first as usize + 9] ^= 0xff;
        std::fs::write(&path, &bytes[..full as usize - 2]).unwrap();
        let Opened {
            file: f,
            records,
            report,
        } = RecordFile::open_from(&path, MAGIC, 1, 1024, second).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(
            (records[0].offset, &records[0].body[..]),
            (second, &b"second"[..])
        );
        assert_eq!(report.truncated_bytes, 8 + 5 - 2);
        assert!(matches!(
            f.read_at(first),
            Err(RecordFileError::Corrupt { .. })
        ));
        drop(f);
        assert!(matches!(
            RecordFile::open_from(&path, MAGIC, 1, 1024, full + 100),
            Err(RecordFileError::Short { .. })
        ));
    }

    #[test]
    fn wrong_magic_or_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        drop(open(&path).unwrap());
        assert!(matches!(
            RecordFile::open(&path, b"LLOTHER!", 1, 10),
            Err(RecordFileError::Magic { .. })
        ));
        assert!(matches!(
            RecordFile::open(&path, MAGIC, 2, 10),
            Err(RecordFileError::Version { .. })
        ));
    }
}
