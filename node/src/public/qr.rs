//! QR codes of a unit's Digital Link on this node, as SVG (for label
//! layouts) or PNG (for printers and phones that want a bitmap).
//!
//! `GET /qr/01/{gtin}/10/{lot}?format=svg|png&scale=N`. The encoded URI is
//! the node's own resolver URL for the canonical Digital Link, so a scan
//! opens the provenance page on the node that printed the code.
//!
//! PNG: the `qrcode` crate's `image` feature would pull in the `image` crate
//! (decoders, codecs, `bytemuck`, ...) to write one grayscale picture; we
//! take the module matrix from `qrcode` and write it with the `png` crate,
//! which `image` would have used anyway, so the tree is a strict subset.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use qrcode::{Color, EcLevel, QrCode};
use serde::Deserialize;

use super::base_url;
use super::resolver::{local_uri, parse_path};
use crate::api::ApiError;

/// Quiet zone around the code, in modules (ISO/IEC 18004 asks for 4).
const QUIET_MODULES: usize = 4;
/// PNG pixels per module: default and bounds (a version-10 code at 32 px is
/// about 2 000 px square; more is no use to anyone).
const SCALE_DEFAULT: u32 = 8;
const SCALE_MAX: u32 = 32;

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("the data does not fit a QR code: {0}")]
    Encode(#[from] qrcode::types::QrError),
    #[error("PNG encoding failed: {0}")]
    Png(#[from] png::EncodingError),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QrParams {
    format: Option<String>,
    scale: Option<u32>,
}

fn code(data: &str) -> Result<QrCode, QrError> {
    // Level M survives a scuffed label (15 % damage) and keeps typical
    // Digital Links (~60 characters) at version 4 or 5.
    Ok(QrCode::with_error_correction_level(data, EcLevel::M)?)
}

/// An SVG of `data`.
pub fn svg(data: &str) -> Result<String, QrError> {
    Ok(code(data)?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// A grayscale PNG of `data`, `scale` pixels per module.
pub fn png(data: &str, scale: u32) -> Result<Vec<u8>, QrError> {
    let code = code(data)?;
    let modules = code.width();
    let colors = code.to_colors();
    let scale = scale.clamp(1, SCALE_MAX) as usize;
    let side = (modules + 2 * QUIET_MODULES) * scale;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (x, y) = (i % modules + QUIET_MODULES, i / modules + QUIET_MODULES);
        for row in y * scale..(y + 1) * scale {
            let start = row * side + x * scale;
            pixels[start..start + scale].fill(0);
        }
    }
    let side_px = u32::try_from(side).unwrap_or(u32::MAX);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side_px, side_px);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}

/// `GET /qr/01/...` and `/qr/00/...`.
pub async fn qr(
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<QrParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = query?;
    // The query is checked before the path may redirect: a bad request is
    // refused, not forwarded.
    let scale = params.scale.unwrap_or(SCALE_DEFAULT);
    if scale == 0 || scale > SCALE_MAX {
        return Err(ApiError::bad_request(
            "bad-query",
            format!("scale must be 1 to {SCALE_MAX}, got {scale}"),
        ));
    }
    let png_wanted = match params.format.as_deref().unwrap_or("svg") {
        "svg" => false,
        "png" => true,
        other => {
            return Err(ApiError::bad_request(
                "bad-query",
                format!("format must be svg or png, got {other:?}"),
            ));
        }
    };
    let path = uri.path().strip_prefix("/qr").unwrap_or_default();
    let resolved = parse_path(path)?;
    if path != resolved.canonical_path {
        let mut location = format!("/qr{}", resolved.canonical_path);
        if let Some(q) = uri.query() {
            location = format!("{location}?{q}");
        }
        let mut response = StatusCode::MOVED_PERMANENTLY.into_response();
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        return Ok(response);
    }
    let data = local_uri(&base_url(&headers)?, &resolved);
    let unencodable = |e: QrError| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "qr-too-long",
            "Does not fit a QR code",
            e.to_string(),
        )
    };
    let (kind, body) = if png_wanted {
        ("image/png", png(&data, scale).map_err(unencodable)?)
    } else {
        (
            "image/svg+xml",
            svg(&data).map_err(unencodable)?.into_bytes(),
        )
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(value) = HeaderValue::from_str(&data) {
        response.headers_mut().insert("x-qr-data", value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_is_square_with_a_quiet_zone() {
        let bytes = png("http://127.0.0.1:8080/01/09506000134352/10/ABC1", 4).unwrap();
        let decoder = ::png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert_eq!(info.width % 4, 0);
        let svg = svg("http://127.0.0.1:8080/01/09506000134352/10/ABC1").unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"));
    }
}
