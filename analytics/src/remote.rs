//! Data sets in an S3-compatible object store: where `lotline export --to
//! s3://bucket/prefix` writes and what `lotline export verify s3://...`
//! reads, through the `object_store` crate DataFusion already builds.
//!
//! The layout is the folder's, byte for byte: `prefix/manifest.json` and
//! `prefix/{table}/event_month=YYYY-MM/part-NNNNNNNN.parquet`, so Spark, Trino,
//! DuckDB or pyarrow read an export from either place alike. The manifest
//! is uploaded last: a reader never sees a manifest naming a file that is
//! not there yet.
//!
//! Credentials and endpoint come from `AWS_*` variables (the names the AWS
//! tools use: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`
//! ...), passed in by the caller rather than read here, so a test or a
//! config can supply them. They are never printed: [`Location`]'s `Debug`
//! and every error name only the `s3://` URL and object keys.
//!
//! Not here: which rows an export holds (see [`crate::export`]); buckets
//! are not created.

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use tokio::io::AsyncWriteExt;

use crate::manifest::{self, FILE_NAME, Manifest, Mismatch, Verified};
use crate::schema::Table;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{url:?} is not s3://bucket[/prefix]: {reason}")]
    Url { url: String, reason: String },
    #[error("{url}: {source}")]
    Store {
        url: String,
        source: object_store::Error,
    },
    #[error("{url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("{url}: no {FILE_NAME}")]
    NoManifest { url: String },
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
}

/// A bucket and a key prefix in an S3-compatible store.
#[derive(Clone)]
pub struct Location {
    url: String,
    prefix: Key,
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Location {
    // The store's own Debug holds its configuration, credentials included.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location").field("url", &self.url).finish()
    }
}

impl Location {
    /// `s3://bucket[/prefix]`, configured by the `AWS_*` pairs of `env`
    /// (others are ignored, as are `AWS_*` names the S3 client does not
    /// know). Builds the client; does not contact the store.
    pub fn s3(
        url: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Location, RemoteError> {
        let bad = |reason: &str| RemoteError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = url.strip_prefix("s3://").ok_or_else(|| bad("not s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket"));
        }
        let prefix = prefix.trim_end_matches('/');
        if prefix.split('/').any(|c| c == "." || c == "..") {
            return Err(bad("prefix with . or .."));
        }
        let prefix = Key::parse(prefix).map_err(|e| bad(&e.to_string()))?;
        let mut builder = AmazonS3Builder::new();
        for (name, value) in env {
            if !name.starts_with("AWS_") {
                continue;
            }
            if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value);
            }
        }
        let store =
            builder
                .with_bucket_name(bucket)
                .build()
                .map_err(|source| RemoteError::Store {
                    url: url.to_owned(),
                    source,
                })?;
        Ok(Location {
            url: format!("s3://{bucket}/{prefix}"),
            prefix,
            store: Arc::new(store),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key of `rel`, a `/`-separated path inside the data set.
    fn key(&self, rel: &str) -> Key {
        rel.split('/')
            .fold(self.prefix.clone(), |key, part| key.child(part))
    }

    fn store_error(&self, source: object_store::Error) -> RemoteError {
        RemoteError::Store {
            url: self.url.clone(),
            source,
        }
    }

    fn io_error(&self, source: std::io::Error) -> RemoteError {
        RemoteError::Io {
            url: self.url.clone(),
            source,
        }
    }

    /// Every object under the prefix, as paths relative to it.
    pub async fn list(&self) -> Result<Vec<String>, RemoteError> {
        let mut listing = self.store.list(Some(&self.prefix));
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.store_error(e))?;
            if let Some(parts) = meta.location.prefix_match(&self.prefix) {
                out.push(
                    parts
                        .map(|p| p.as_ref().to_owned())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
        out.sort();
        Ok(out)
    }

    /// Streams the local file `from` to `rel` (multipart for large files;
    /// memory stays at a few parts).
    pub async fn upload(&self, from: &Path, rel: &str) -> Result<(), RemoteError> {
        let mut file = tokio::fs::File::open(from)
            .await
            .map_err(|e| self.io_error(e))?;
        let mut writer = object_store::buffered::BufWriter::new(self.store.clone(), self.key(rel));
        if let Err(e) = tokio::io::copy(&mut file, &mut writer).await {
            let _ = writer.abort().await;
            return Err(self.io_error(e));
        }
        writer.shutdown().await.map_err(|e| self.io_error(e))
    }

    pub async fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), RemoteError> {
        self.store
            .put(&self.key(rel), bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| self.store_error(e))
    }

    /// Streams `rel` into the local file `to`; `false` if there is no such
    /// object.
    pub async fn download(&self, rel: &str, to: &Path) -> Result<bool, RemoteError> {
        let got = match self.store.get(&self.key(rel)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.store_error(e)),
        };
        let mut file = tokio::fs::File::create(to)
            .await
            .map_err(|e| self.io_error(e))?;
        let mut chunks = got.into_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| self.store_error(e))?;
            file.write_all(&chunk).await.map_err(|e| self.io_error(e))?;
        }
        file.flush().await.map_err(|e| self.io_error(e))?;
        Ok(true)
    }
}

/// A blocking face for the CLI: its own small runtime (the object store
/// client is async). Not for use inside an async context.
pub fn block_on<T>(work: impl std::future::Future<Output = T>) -> Result<T, std::io::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(work))
}

/// [`manifest::verify`] for a data set in an object store: downloads the
/// manifest, then each file it lists into a scratch folder (one at a time)
/// and checks it exactly as a local file; lists the prefix for files the
/// manifest does not name.
pub async fn verify(at: &Location) -> Result<Verified, RemoteError> {
    let scratch = tempfile::tempdir().map_err(|e| at.io_error(e))?;
    let manifest_file = scratch.path().join(FILE_NAME);
    if !at.download(FILE_NAME, &manifest_file).await? {
        return Err(RemoteError::NoManifest {
            url: at.url.clone(),
        });
    }
    let manifest = Manifest::load(scratch.path())?.ok_or_else(|| RemoteError::NoManifest {
        url: at.url.clone(),
    })?;
    let mut mismatches = Vec::new();
    let (mut rows, mut bytes) = (0, 0);
    let file = scratch.path().join("file.parquet");
    for entry in &manifest.files {
        rows += entry.rows;
        bytes += entry.bytes;
        if let Some(bad) = manifest::check_entry_path(entry) {
            mismatches.push(bad);
            continue;
        }
        if !at.download(&entry.path, &file).await? {
            mismatches.push(Mismatch::Missing {
                path: entry.path.clone(),
            });
            continue;
        }
        if let Some(m) = manifest::check_file(&file, entry) {
            mismatches.push(m);
        }
    }
    for path in at.list().await? {
        let in_table = path
            .split('/')
            .next()
            .is_some_and(|first| Table::parse(first).is_some());
        if in_table && !manifest.files.iter().any(|f| f.path == path) {
            mismatches.push(Mismatch::Unlisted { path });
        }
    }
    Ok(Verified {
        files: manifest.files.len(),
        manifest,
        rows,
        bytes,
        mismatches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: a location is only ever shown by its URL, never with the
    /// credentials it was configured with. Method: configure a secret and
    /// look for it in the Debug output and in an error.
    #[test]
    fn credentials_never_shown() {
        let env = [
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret"),
            ("AWS_REGION", "us-east-1"),
            ("HOME", "/ignored"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let at = Location::s3("s3://bucket/some/prefix/", env).unwrap();
        assert_eq!(at.url(), "s3://bucket/some/prefix");
        let shown = format!("{at:?}");
        assert!(shown.contains("s3://bucket/some/prefix"), "{shown}");
        assert!(
            !shown.contains("secret") && !shown.contains("AKID"),
            "{shown}"
        );
        assert_eq!(
            at.key("events/event_month=2026-01/part-1.parquet").as_ref(),
            "some/prefix/events/event_month=2026-01/part-1.parquet"
        );
    }

    /// Goal: a URL that is not `s3://bucket[/prefix]` is refused by name.
    #[test]
    fn bad_urls_refused() {
        for url in ["/tmp/x", "s3://", "s3:///prefix", "s3://b/../x", "gs://b/p"] {
            let err = Location::s3(url, []).unwrap_err();
            assert!(matches!(err, RemoteError::Url { .. }), "{url}: {err}");
        }
        let root = Location::s3("s3://bucket", []).unwrap();
        assert_eq!(root.key(FILE_NAME).as_ref(), FILE_NAME);
    }
}
