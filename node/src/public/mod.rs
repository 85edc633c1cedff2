//! The public edge of a node: what a phone, a consumer or a regulator meets.
//!
//! - [`resolver`]: the GS1 Digital Link resolver (`/01/{gtin}/10/{lot}`,
//!   `/00/{sscc}`, linkType, RFC 9264 linkset, `/.well-known/gs1resolver`).
//! - [`qr`]: QR codes (SVG, PNG) of a unit's Digital Link on this node.
//! - [`page`]: the consumer provenance page (HTML, English and Chinese) and
//!   its public JSON and proof bundle.
//! - [`report`]: regulator audit reports (HTML, CSV, proof bundle).
//! - [`view`]: the one place that decides what is public (R19).
//!
//! Non-features: no external CDN, fonts or scripts (a page must render on a
//! factory floor with no Internet); no authentication here. The consumer
//! routes are public by design; the report routes call [`authorize_report`]
//! first, which the access layer (`node/src/access/`) wires to real
//! credentials.

pub mod dpp;
pub mod i18n;
pub mod page;
pub mod qr;
pub mod report;
pub mod resolver;
pub mod view;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::get;

use crate::api::{ApiContext, ApiError};

pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/01/{*rest}", get(resolver::resolve))
        .route("/00/{*rest}", get(resolver::resolve))
        .route("/.well-known/gs1resolver", get(resolver::well_known))
        .route("/qr/01/{*rest}", get(qr::qr))
        .route("/qr/00/{*rest}", get(qr::qr))
        .route(
            "/public/v1/provenance/{identifier}",
            get(page::provenance_json),
        )
        .route(
            "/public/v1/recall-status/{identifier}",
            get(page::recall_status),
        )
        .route("/public/v1/proof/{identifier}", get(page::proof_bundle))
        .route("/public/v1/dpp/{identifier}", get(dpp::passport))
        .route("/.well-known/did.json", get(dpp::did_json))
        .route("/v1/reports/lots/{identifier}", get(report::lot))
        .route("/v1/reports/recalls/{attestation}", get(report::recall))
        .route("/v1/reports/orgs/{org}", get(report::org))
}

/// The scheme and authority this node is reached at, from the request's
/// `Host` (and `X-Forwarded-Proto` behind a TLS proxy), so links and QR codes
/// lead back to the node the phone already reached.
///
/// The Host header comes from the client: it is checked to be a plain
/// `host[:port]` so it cannot inject markup or a second URL into a page.
pub fn base_url(headers: &HeaderMap) -> Result<String, ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let plain = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !plain {
        return Err(ApiError::bad_request(
            "bad-host",
            "the Host header is not a plain host[:port]",
        ));
    }
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    Ok(format!("{scheme}://{host}"))
}

/// The node's clock as RFC 3339, for "generated at" stamps.
pub fn now_rfc3339() -> String {
    crate::clock::now_rfc3339()
}

/// Whether the caller may read a regulator report: reports cover every org's
/// records, so only roles the genesis read policy lets read everything
/// (regulator, auditor by default) may; anonymous 401, anyone else 403.
/// Every report handler calls it first.
pub fn authorize_report(
    genesis: &lotline_genesis::Genesis,
    identity: &crate::access::Identity,
) -> Result<(), ApiError> {
    use axum::http::StatusCode;
    match identity {
        crate::access::Identity::Anonymous => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Credential required",
            "regulator reports need a regulator's or auditor's bearer token",
        )),
        _ if crate::access::reads_everything(genesis, identity) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            "regulator reports are for roles that read every org's records",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_takes_the_host_and_rejects_markup() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(base_url(&headers).unwrap(), "http://127.0.0.1:8080");
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(base_url(&headers).unwrap(), "https://127.0.0.1:8080");
        headers.insert(header::HOST, "evil.example/\"><script>".parse().unwrap());
        assert_eq!(base_url(&headers).unwrap_err().slug, "bad-host");
    }
}
