//! Optional HTTPS for the API: rustls with the *ring* provider, certificate
//! chain and key from PEM files named in `[api.tls]`.
//!
//! Why ring and not rustls's default (aws-lc-rs): ring is already in the
//! build for libp2p, while aws-lc-rs would add a C build (and cmake/clang
//! on some machines) for no gain at this scale. The provider is passed
//! explicitly, so nothing depends on a process-wide default.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::task::JoinHandle;

use crate::config::TlsPaths;

/// How long open connections get to finish when the node stops.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and checks the PEM files; the error names the file and the reason.
pub fn server_config(paths: &TlsPaths) -> Result<RustlsConfig, String> {
    let certs = read_certs(&paths.cert)?;
    let key = PrivateKeyDer::from_pem_file(&paths.key)
        .map_err(|e| format!("{}: no usable private key ({e})", paths.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "{} and {} do not make a certificate and key pair: {e}",
                paths.cert.display(),
                paths.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate chain ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: holds no certificate", path.display()));
    }
    Ok(certs)
}

/// Serves `app` over TLS on an already bound listener until `stop` fires.
pub fn serve(
    listener: tokio::net::TcpListener,
    app: IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr>,
    tls: RustlsConfig,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<JoinHandle<()>> {
    let listener = listener.into_std()?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = stop.await;
        stopper.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    let server = axum_server::from_tcp_rustls(listener, tls)?.handle(handle);
    Ok(tokio::spawn(async move {
        if let Err(error) = server.serve(app).await {
            tracing::error!(%error, "HTTPS server stopped");
        }
    }))
}
