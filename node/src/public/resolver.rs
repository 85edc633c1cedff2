//! The GS1 Digital Link resolver every node serves.
//!
//! `GET /01/{gtin}[/10/{lot}][/21/{serial}]` and `GET /00/{sscc}`, decided in
//! this order:
//! 1. The path is parsed by `lotline_core::gs1` (the one GS1 parser): a bad
//!    check digit, a character outside set 82, qualifiers out of the
//!    standard's order, an unknown or missing qualifier give **400**
//!    `invalid-digital-link`.
//! 2. A valid but non-canonical spelling (GTIN-8/12/13, needless
//!    percent-escapes, a trailing `/`, a lot beside a serial) is answered
//!    **301** to the canonical path, query kept.
//! 3. A key this node holds no record of gives **404** `unknown-identifier`.
//! 4. `linkType`: `gs1:traceability` and `gs1:recallStatus` redirect
//!    (**307**) to the public JSON, `gs1:epcis` to the event listing,
//!    `untp:dpp` (serialised items) to the Digital Product Passport,
//!    `all` returns the linkset; any other type **404**
//!    `link-type-not-found`. Without `linkType`, `Accept:
//!    application/linkset+json` (or `application/json`) gets the RFC 9264
//!    linkset, anything else the provenance page (200 HTML, with a `Link`
//!    header naming the linkset).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use lotline_core::gs1::{CANONICAL_HOST, Identifier};
use serde::Deserialize;
use serde_json::{Value, json};

use super::i18n::Lang;
use super::{base_url, page};
use crate::api::{ApiContext, ApiError};

/// The GS1 link types this resolver answers, without the `gs1:` prefix.
pub const LINK_TYPES: [&str; 4] = ["defaultLink", "traceability", "epcis", "recallStatus"];
const VOC: &str = "https://gs1.org/voc/";
const LINKSET: &str = "application/linkset+json";
/// The link relation of a Digital Product Passport (UNTP's `dpp` link type,
/// `linkType=untp:dpp`).
pub const UNTP_DPP: &str = "https://test.uncefact.org/vocabulary/untp/linkType#dpp";

#[derive(Debug, Default, Deserialize)]
pub struct ResolverParams {
    #[serde(rename = "linkType")]
    link_type: Option<String>,
    lang: Option<String>,
}

/// A request path read as a Digital Link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub id: Identifier,
    /// The canonical Digital Link on `id.gs1.org`.
    pub canonical: String,
    /// Its path (`/01/09506000134352/10/ABC1`).
    pub canonical_path: String,
}

/// Parses a request path (`/01/...`, still percent-encoded, no query).
pub fn parse_path(path: &str) -> Result<Resolved, ApiError> {
    let invalid = |detail: String| ApiError::unprocessable("invalid-digital-link", detail);
    let id = Identifier::parse(&format!("{CANONICAL_HOST}{path}"))
        .map_err(|e| invalid(e.to_string()))?;
    if !matches!(
        id,
        Identifier::Item { .. }
            | Identifier::Lot { .. }
            | Identifier::Product { .. }
            | Identifier::Sscc(_)
    ) {
        return Err(invalid(format!(
            "{path:?} is not a (01) or (00) Digital Link"
        )));
    }
    let canonical = id.canonical();
    let canonical_path = canonical
        .strip_prefix(CANONICAL_HOST)
        .unwrap_or_default()
        .to_owned();
    Ok(Resolved {
        id,
        canonical,
        canonical_path,
    })
}

/// The node-local URL of a unit's Digital Link (what QR codes encode).
pub fn local_uri(base: &str, resolved: &Resolved) -> String {
    format!("{base}{}", resolved.canonical_path)
}

pub async fn resolve(
    State(ctx): State<Arc<ApiContext>>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<ResolverParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = query?;
    let resolved = parse_path(uri.path())?;
    if uri.path() != resolved.canonical_path {
        let location = match uri.query() {
            Some(q) => format!("{}?{q}", resolved.canonical_path),
            None => resolved.canonical_path.clone(),
        };
        return Ok(redirect(StatusCode::MOVED_PERMANENTLY, &location));
    }
    if !page::known(&ctx, &resolved.canonical)? {
        return Err(ApiError::not_found(format!(
            "this node holds no record of {}",
            resolved.canonical
        )));
    }
    let base = base_url(&headers)?;
    let links = Links::new(&base, &resolved);
    let lang = Lang::choose(
        params.lang.as_deref(),
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|h| h.to_str().ok()),
    );
    match params.link_type.as_deref() {
        None | Some("gs1:defaultLink") => {}
        Some("all") | Some("linkset") => return Ok(links.linkset_response()),
        Some("gs1:traceability") => {
            return Ok(redirect(
                StatusCode::TEMPORARY_REDIRECT,
                &links.traceability,
            ));
        }
        Some("gs1:recallStatus") => {
            return Ok(redirect(
                StatusCode::TEMPORARY_REDIRECT,
                &links.recall_status,
            ));
        }
        Some("gs1:epcis") => return Ok(redirect(StatusCode::TEMPORARY_REDIRECT, &links.epcis)),
        Some("untp:dpp") if links.passport.is_some() => {
            let passport = links.passport.as_deref().unwrap_or_default();
            return Ok(redirect(StatusCode::TEMPORARY_REDIRECT, passport));
        }
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "link-type-not-found",
                "Link type not available",
                format!(
                    "no {other:?} link for {}; available: all, {}",
                    resolved.canonical,
                    LINK_TYPES.map(|t| format!("gs1:{t}")).join(", ")
                ),
            ));
        }
    }
    if params.link_type.is_none() && wants_linkset(&headers) {
        return Ok(links.linkset_response());
    }
    let provenance = page::load_known(&ctx, resolved.canonical.clone()).await?;
    let mut response = page::render(&provenance, lang, &base)?;
    let link = format!(
        "<{}?linkType=all>; rel=\"linkset\"; type=\"{LINKSET}\"",
        links.anchor
    );
    if let Ok(value) = HeaderValue::from_str(&link) {
        response.headers_mut().insert(header::LINK, value);
    }
    Ok(response)
}

/// True when the client asks for a linkset rather than a page: it names
/// `application/linkset+json` or `application/json` and not `text/html`.
fn wants_linkset(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    (accept.contains(LINKSET) || accept.contains("application/json"))
        && !accept.contains("text/html")
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The links this node offers for one unit.
struct Links {
    anchor: String,
    page: String,
    traceability: String,
    recall_status: String,
    epcis: String,
    /// A serialised item's Digital Product Passport (`super::dpp`).
    passport: Option<String>,
}

impl Links {
    fn new(base: &str, resolved: &Resolved) -> Links {
        let segment = lotline_sdk::encode_segment(&resolved.canonical);
        Links {
            anchor: local_uri(base, resolved),
            page: local_uri(base, resolved),
            traceability: format!("{base}/public/v1/provenance/{segment}"),
            recall_status: format!("{base}/public/v1/recall-status/{segment}"),
            epcis: format!("{base}/v1/identifiers/{segment}/attestations"),
            passport: matches!(resolved.id, Identifier::Item { .. })
                .then(|| format!("{base}/public/v1/dpp/{segment}")),
        }
    }

    /// RFC 9264 linkset, link relations as GS1 vocabulary URIs.
    fn linkset(&self) -> Value {
        let target = |href: &str, title: &str, kind: &str| json!([{ "href": href, "title": title, "type": kind, "hreflang": ["en", "zh"] }]);
        let mut set = json!({ "linkset": [{
            "anchor": self.anchor,
            format!("{VOC}defaultLink"): target(&self.page, "Product provenance", "text/html"),
            format!("{VOC}traceability"): target(&self.traceability, "Traceability (public view)", "application/json"),
            format!("{VOC}recallStatus"): target(&self.recall_status, "Recall status", "application/json"),
            format!("{VOC}epcis"): target(&self.epcis, "Events (authorised readers)", "application/json"),
        }]});
        if let Some(passport) = &self.passport {
            set["linkset"][0][UNTP_DPP] = target(
                passport,
                "Digital Product Passport (W3C VC, JOSE)",
                super::dpp::MEDIA_TYPE,
            );
        }
        set
    }

    fn linkset_response(&self) -> Response {
        let body = serde_json::to_vec(&self.linkset()).unwrap_or_default();
        let mut response = body.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(LINKSET));
        response
    }
}

/// `GET /.well-known/gs1resolver`: what this resolver supports.
pub async fn well_known(headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let base = base_url(&headers)?;
    Ok(Json(json!({
        "name": "Lotline node resolver",
        "resolverRoot": base,
        "supportedPrimaryKeys": ["01", "00"],
        "supportedQualifiers": {"01": ["10", "21"]},
        "supportedLinkType": LINK_TYPES
            .map(|t| format!("gs1:{t}"))
            .into_iter()
            .chain(["untp:dpp".to_owned()])
            .collect::<Vec<_>>(),
        "linkTypeDefaultCanBeAll": false,
        "supportedContextValuesEnumerated": {"lang": ["en", "zh"]},
        "supportsSemanticWeb": false,
        "linksetMediaType": LINKSET,
        "canonicalHost": CANONICAL_HOST,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths_come_from_the_gs1_parser() {
        let r = parse_path("/01/9506000134352/10/ABC1").unwrap();
        assert_eq!(r.canonical_path, "/01/09506000134352/10/ABC1");
        let r = parse_path("/00/095060000000000015").unwrap();
        assert_eq!(r.canonical_path, "/00/095060000000000015");
        for bad in [
            "/01/09506000134353/10/ABC1",     // check digit
            "/01/09506000134352/21/S1/10/L1", // order
            "/01/09506000134352/10/A%20B",    // space is not in set 82
            "/01/09506000134352/17/261231",   // not a key qualifier
            "/01/09506000134352/10",          // missing value
        ] {
            let e = parse_path(bad).unwrap_err();
            assert_eq!(e.slug, "invalid-digital-link", "{bad}");
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        }
    }
}
