//! The audit log writer: one thread owns the file, appends entries in
//! batches and makes each batch durable with one fdatasync before any
//! caller in it is answered. A request is served only after its entry is
//! durable; if the log can not be written, the request fails (503) rather
//! than being served unaudited.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lotline_core::Digest;
use tokio::sync::{mpsc, oneshot};

use super::entry::{Access, Entry};
use super::verify::{Problem, verify_bytes};

/// Requests waiting for the writer; a full queue means the disk is not
/// keeping up, and callers wait (backpressure) rather than the queue growing.
const QUEUE_MAX: usize = 4096;
/// Entries written under one fdatasync at most.
const BATCH_MAX: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "audit log {path} is damaged: {problem}; check it with `lotline audit verify {path}` and move it aside to start a new one"
    )]
    Damaged { path: PathBuf, problem: Problem },
    #[error("the audit log writer has stopped after a write error")]
    Stopped,
}

type Reply = oneshot::Sender<Result<(), AuditError>>;

/// A handle to the audit log; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<(Access, Reply)>,
    path: Arc<PathBuf>,
    failed: Arc<AtomicBool>,
}

struct Writer {
    file: File,
    path: PathBuf,
    next_seq: u64,
    prev: Digest,
    failed: Arc<AtomicBool>,
}

impl AuditLog {
    /// Opens (or creates) `dir/audit.jsonl`, checks the chain, cuts a torn
    /// last line, and starts the writer thread.
    pub fn open(dir: &Path) -> Result<AuditLog, AuditError> {
        let path = dir.join(super::FILE_NAME);
        let io = |source| AuditError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let verdict = verify_bytes(&bytes);
        match verdict.problem {
            None => {}
            Some(Problem::TornTail { bytes: torn }) => {
                tracing::warn!(path = %path.display(), torn, "audit log: cutting a torn last line");
            }
            Some(problem) => return Err(AuditError::Damaged { path, problem }),
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        file.set_len(verdict.valid_bytes as u64).map_err(io)?;
        file.sync_all().map_err(io)?;
        if let Some(parent) = path.parent() {
            File::open(parent).and_then(|d| d.sync_all()).map_err(io)?;
        }
        let (next_seq, prev) = match verdict.head {
            Some((seq, hash)) => (seq + 1, hash),
            None => (0, Digest::ZERO),
        };
        let failed = Arc::new(AtomicBool::new(false));
        let mut writer = Writer {
            file,
            path: path.clone(),
            next_seq,
            prev,
            failed: failed.clone(),
        };
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || writer.run(rx))
            .map_err(io)?;
        Ok(AuditLog {
            tx,
            path: Arc::new(path),
            failed,
        })
    }

    /// Appends an entry and returns once it is durable.
    pub async fn record(&self, access: Access) -> Result<(), AuditError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(AuditError::Stopped);
        }
        let (reply, done) = oneshot::channel();
        self.tx
            .send((access, reply))
            .await
            .map_err(|_| AuditError::Stopped)?;
        done.await.map_err(|_| AuditError::Stopped)?
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every durable entry with `seq > after`, at most `limit`, and the head.
    /// Reads the file (the writer only appends whole, synced lines).
    pub fn read(&self, after: Option<u64>, limit: usize) -> Result<Vec<Entry>, AuditError> {
        let bytes = std::fs::read(self.path.as_ref()).map_err(|source| AuditError::Io {
            path: self.path.to_path_buf(),
            source,
        })?;
        let mut out = Vec::new();
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(entry) = serde_json::from_slice::<Entry>(line) else {
                continue;
            };
            if after.is_some_and(|a| entry.seq <= a) {
                continue;
            }
            if out.len() == limit {
                break;
            }
            out.push(entry);
        }
        Ok(out)
    }
}

impl Writer {
    fn run(&mut self, mut rx: mpsc::Receiver<(Access, Reply)>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < BATCH_MAX {
                match rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            let result = self.write_batch(batch.iter().map(|(a, _)| a.clone()).collect());
            let failed = result.is_err();
            for (_, reply) in batch {
                let _ = reply.send(match &result {
                    Ok(()) => Ok(()),
                    Err(_) => Err(AuditError::Stopped),
                });
            }
            if let Err(error) = result {
                tracing::error!(%error, "audit log write failed; audited requests now fail");
            }
            if failed {
                self.failed.store(true, Ordering::Release);
                return;
            }
        }
    }

    fn write_batch(&mut self, accesses: Vec<Access>) -> Result<(), AuditError> {
        let now_ms = crate::clock::unix_ms();
        let mut buf = Vec::new();
        let (mut seq, mut prev) = (self.next_seq, self.prev);
        for access in accesses {
            let entry = Entry::new(seq, now_ms, access, prev);
            buf.extend_from_slice(&entry.to_line());
            prev = entry.hash;
            seq += 1;
        }
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&buf).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.next_seq = seq;
        self.prev = prev;
        Ok(())
    }
}
