//! The Digital Product Passport of a serialised item: a UN Transparency
//! Protocol (UNTP) `DigitalProductPassport` in JSON-LD, carrying the item's
//! public provenance (the consumer view, [`super::view`]) and the Lotline
//! attestations it rests on, issued as a W3C Verifiable Credential secured
//! with JOSE (VC-JOSE-COSE: a compact JWS, `typ` `vc+jwt`, `alg` `EdDSA`
//! over Ed25519) by the org whose `[capture]` key the node holds.
//!
//! **Issuer key.** Each node publishes its org's key as a `did:web`
//! document at `/.well-known/did.json` ([`did_document`]): the DID is
//! `did:web:<host>` (a port as `%3A<port>`), the key a `JsonWebKey`
//! (`OKP`/`Ed25519`) named `<did>#<org>`, which the JWS header's `kid`
//! names. Anyone can check a passport with any JOSE library and that
//! document, and each cited attestation with its receipt
//! (`/v1/attestations/{id}/receipt`), without trusting the node.
//!
//! **What it does not carry.** Only the public view: no parties, prices or
//! private measurements; a passport is as public as the consumer page.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lotline_core::api::AttestationSummary;
use lotline_core::gs1::Identifier;
use serde_json::{Value, json};

use super::base_url;
use super::view::Provenance;
use crate::api::{ApiContext, ApiError};
use crate::epcis::capture::Custodian;

/// The media type of a JOSE-secured credential.
pub const MEDIA_TYPE: &str = "application/vc+jwt";
/// UNTP's DPP context (the version whose shape the passport follows).
pub const UNTP_CONTEXT: &str = "https://test.uncefact.org/vocabulary/untp/dpp/0.5.0/";
const VC_CONTEXT: &str = "https://www.w3.org/ns/credentials/v2";

/// `did:web:<host>` for the host a request named (`:` as `%3A`).
pub fn did(base: &str) -> String {
    let host = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"))
        .unwrap_or(base);
    format!("did:web:{}", host.replace(':', "%3A"))
}

/// The verification method id of `org`'s key under `did`.
pub fn key_id(did: &str, org: &str) -> String {
    format!("{did}#{org}")
}

/// The node's DID document: its org's Ed25519 key as a JWK.
pub fn did_document(did: &str, custodian: &Custodian) -> Value {
    let kid = key_id(did, &custodian.org);
    json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/jwk/v1"],
        "id": did,
        "verificationMethod": [{
            "id": kid,
            "type": "JsonWebKey",
            "controller": did,
            "publicKeyJwk": {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(custodian.key.public_key().0),
                "kid": kid,
            }
        }],
        "assertionMethod": [kid],
    })
}

/// Attestations naming the item itself, cited by a passport.
pub const OWN_EVENTS_MAX: usize = 100;

/// The passport credential (unsigned) of the item `view` describes;
/// `own` are the attestations that name the item itself (its events).
pub fn credential(
    view: &Provenance,
    own: &[AttestationSummary],
    base: &str,
    did: &str,
    issuer_name: &str,
    now: &str,
) -> Value {
    let segment = lotline_sdk::encode_segment(&view.id);
    let mut cited: BTreeMap<String, u64> = view
        .attestations
        .iter()
        .map(|c| (c.attestation.to_string(), c.height))
        .collect();
    cited.extend(own.iter().map(|a| (a.id.to_string(), a.height)));
    let proofs: Vec<Value> = cited
        .iter()
        .map(|(id, height)| {
            json!({
                "attestation": id,
                "height": height,
                "receipt": format!("{base}/v1/attestations/{id}/receipt"),
            })
        })
        .collect();
    let mut events: Vec<Value> = own
        .iter()
        .map(|a| {
            json!({
                "type": ["TraceabilityEvent"],
                "eventType": a.event_type,
                "bizStep": a.biz_step,
                "eventDate": a.event_time,
                "organisation": a.org,
                "subject": view.id,
                "attestation": a.id.to_string(),
                "blockHeight": a.height,
            })
        })
        .collect();
    events.extend(view.steps.iter().map(|step| {
        json!({
            "type": ["TraceabilityEvent"],
            "eventType": format!("{:?}", step.kind),
            "eventDate": step.time,
            "organisation": step.org,
            "subject": step.subject,
            "blockHeight": step.height,
        })
    }));
    let mut product = json!({
        "type": ["Product"],
        "id": view.id,
        "name": view.product_name.clone().unwrap_or_else(|| view.label.clone()),
        "idScheme": {"type": ["IdentifierScheme"], "id": "https://id.gs1.org/01/", "name": "Global Trade Item Number (GTIN)"},
    });
    let fields = [
        ("registeredId", view.gtin.clone()),
        ("serialNumber", view.serial.clone()),
        ("batchNumber", view.lot.clone()),
        ("brand", view.brand.clone()),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            product[key] = json!(value);
        }
    }
    json!({
        "@context": [VC_CONTEXT, UNTP_CONTEXT, {"lotline": "https://lotline.dev/epcis/"}],
        "type": ["DigitalProductPassport", "VerifiableCredential"],
        "id": format!("{base}/public/v1/dpp/{segment}"),
        "issuer": {"type": ["CredentialIssuer"], "id": did, "name": issuer_name},
        "validFrom": now,
        "credentialSubject": {
            "type": ["ProductPassport"],
            "id": view.id,
            "product": product,
            "traceabilityInformation": [{
                "type": ["TraceabilityPerformance"],
                "valueChainProcess": "manufacturing",
                "verifiedRatio": 1.0,
                "traceabilityEvent": events,
            }],
            "lotline:materials": view.materials.iter().map(|m| json!({"id": m.id, "label": m.label, "supplier": m.supplier})).collect::<Vec<_>>(),
            "lotline:coldChain": view.cold_chain.as_ref().map(|c| json!({"readings": c.readings, "minCelsius": c.min, "maxCelsius": c.max, "rangeCelsius": [c.range.0, c.range.1], "excursion": c.excursion})),
            "lotline:recall": view.recall.as_ref().map(|r| json!({"recallId": r.recall_id, "reason": r.reason, "issuedBy": r.issued_by})),
            "lotline:proofs": proofs,
            "lotline:proofBundle": format!("{base}/public/v1/proof/{segment}"),
            "lotline:verifiedBy": view.verified.iter().map(|v| json!({"org": v.org, "name": v.name})).collect::<Vec<_>>(),
        }
    })
}

/// The credential as a compact JWS (`header.payload.signature`).
pub fn sign(credential: &Value, kid: &str, custodian: &Custodian) -> String {
    let header = json!({"alg": "EdDSA", "typ": "vc+jwt", "cty": "vc", "kid": kid});
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default());
    let input = format!("{}.{}", encode(&header), encode(credential));
    let signature = custodian.key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.0))
}

fn issuer(ctx: &ApiContext) -> Result<&Custodian, ApiError> {
    ctx.epcis.custodian.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "no-issuer-key",
            "No issuer key",
            "this node holds no org key ([capture] in its config), so it issues no passports",
        )
    })
}

/// `GET /.well-known/did.json`.
pub async fn did_json(
    State(ctx): State<Arc<ApiContext>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let custodian = issuer(&ctx)?;
    let base = base_url(&headers)?;
    Ok(Json(did_document(&did(&base), custodian)))
}

/// `GET /public/v1/dpp/{identifier}`: the passport of a serialised item
/// (SGTIN), as `application/vc+jwt`.
pub async fn passport(
    State(ctx): State<Arc<ApiContext>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = path?;
    if !matches!(Identifier::parse(&raw), Ok(Identifier::Item { .. })) {
        return Err(ApiError::unprocessable(
            "not-an-item",
            format!("{raw:?} is not a serialised item (SGTIN); passports are per item"),
        ));
    }
    let custodian = issuer(&ctx)?;
    let base = base_url(&headers)?;
    let view = super::page::load(&ctx, &raw).await?;
    let task_ctx = ctx.clone();
    let id = view.id.clone();
    let own = tokio::task::spawn_blocking(move || {
        let genesis = task_ctx.rules();
        task_ctx.reader.list(
            crate::store::index::PREFIX_IDENTIFIER,
            &id,
            None,
            OWN_EVENTS_MAX,
            &|stored| genesis.org(&stored.meta.org).is_some(),
        )
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let did = did(&base);
    let issuer_name = ctx
        .rules()
        .org(&custodian.org)
        .map(|o| o.name.clone())
        .unwrap_or_else(|| custodian.org.clone());
    let now = crate::clock::now_rfc3339();
    let credential = credential(&view, &own.items, &base, &did, &issuer_name, &now);
    let token = sign(&credential, &key_id(&did, &custodian.org), custodian);
    let mut response = token.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    Ok(response)
}
