//! Every API error is an RFC 9457 `application/problem+json` document with a
//! stable `type`. [`classify`] is the one place that maps an admission error
//! to its status and type, the way rustls maps errors to alerts.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotline_core::api::{FieldProblem, PROBLEM_BASE, Problem, excerpt};

use crate::admission::{AdmissionError, LineageProblem};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub problems: Vec<FieldProblem>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            slug,
            title,
            detail: detail.into(),
            problems: Vec::new(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", "Not found", what)
    }

    pub fn bad_request(slug: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, slug, "Bad request", detail)
    }

    /// 422: the request fits the OpenAPI document, but a rule the document
    /// cannot state (a GS1 check digit, the grammar of an identifier or a
    /// time) refuses one of its values. 400 stays for requests that do not
    /// fit the document, so a client, and the contract fuzzer, can tell a
    /// malformed request from a well-formed one that means nothing here.
    pub fn unprocessable(slug: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            slug,
            "Unprocessable value",
            detail,
        )
    }

    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(%detail, "internal error serving a request");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the node failed to serve this request; see its log",
        )
    }

    /// The problem document served for this error. Detail and problems
    /// pass through [`excerpt`]: they may quote the rejected input, and an
    /// answer must stay small whatever the request held.
    pub fn to_problem(&self) -> Problem {
        Problem {
            kind: format!("{PROBLEM_BASE}{}", self.slug),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: excerpt(&self.detail),
            problems: self.problems.iter().map(FieldProblem::bounded).collect(),
        }
    }

    /// One API error for all problems of a rejected attestation: status and
    /// type from the first (most decisive), every problem listed.
    pub fn from_rejection(rejection: &[AdmissionError]) -> ApiError {
        let Some(first) = rejection.first() else {
            return ApiError::internal("empty rejection");
        };
        let (status, slug, title) = classify(first);
        let mut problems = Vec::new();
        for error in rejection {
            match error {
                AdmissionError::InvalidEvent(event_problems) => {
                    problems.extend(event_problems.iter().map(|p| FieldProblem {
                        field: format!("event.{}", p.field),
                        reason: p.reason.clone(),
                    }))
                }
                AdmissionError::Lineage(problem) => problems.push(FieldProblem {
                    field: format!("event.{}", problem.field()),
                    reason: problem.to_string(),
                }),
                other => problems.push(FieldProblem {
                    field: classify(other).1.to_owned(),
                    reason: other.to_string(),
                }),
            }
        }
        let detail = rejection
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        ApiError {
            status,
            slug,
            title,
            detail,
            problems,
        }
    }
}

/// Status, stable type slug and title of each admission error.
pub fn classify(error: &AdmissionError) -> (StatusCode, &'static str, &'static str) {
    use lotline_core::attestation::EnvelopeError as E;
    match error {
        AdmissionError::Decode(lotline_core::codec::DecodeError::TooLarge { .. }) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Attestation too large",
        ),
        AdmissionError::Decode(_) => (
            StatusCode::BAD_REQUEST,
            "malformed",
            "Malformed attestation",
        ),
        AdmissionError::Envelope(E::PayloadType(_)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported-payload-type",
            "Unsupported payload type",
        ),
        AdmissionError::Envelope(E::PayloadTooLarge { .. }) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Attestation too large",
        ),
        AdmissionError::Envelope(E::SignatureCount(_)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "signature-count",
            "Exactly one signature required",
        ),
        AdmissionError::Envelope(E::KeyId(_)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "malformed-keyid",
            "Malformed key id",
        ),
        AdmissionError::Envelope(E::Signature { .. }) | AdmissionError::BadSignature(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-signature",
            "Signature does not verify",
        ),
        AdmissionError::Envelope(E::Decode(_)) => (
            StatusCode::BAD_REQUEST,
            "malformed",
            "Malformed attestation",
        ),
        AdmissionError::Statement(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "malformed-statement",
            "Malformed statement",
        ),
        AdmissionError::Version(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported-version",
            "Unsupported statement version",
        ),
        AdmissionError::WrongChain { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong-chain",
            "Wrong chain",
        ),
        AdmissionError::Nonce(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad-nonce", "Bad nonce"),
        AdmissionError::UnknownKey(_) => {
            (StatusCode::FORBIDDEN, "unknown-key", "Unknown signing key")
        }
        AdmissionError::RevokedKey { .. } => {
            (StatusCode::FORBIDDEN, "revoked-key", "Signing key revoked")
        }
        AdmissionError::Governance(e) if e.wants_signatures() => (
            StatusCode::FORBIDDEN,
            "governance-under-threshold",
            "Not enough member orgs signed the governance change",
        ),
        AdmissionError::Governance(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "governance-invalid",
            "Invalid governance change",
        ),
        AdmissionError::KeyMismatch { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "key-mismatch",
            "Statement key is not the signer",
        ),
        AdmissionError::WrongOrg { .. } => (
            StatusCode::FORBIDDEN,
            "wrong-org",
            "Key belongs to another organisation",
        ),
        AdmissionError::Policy(_) => (
            StatusCode::FORBIDDEN,
            "policy-denied",
            "Role may not emit this event",
        ),
        AdmissionError::IssuedAt { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "issued-at-skew",
            "issuedAtMs too far from the node's clock",
        ),
        AdmissionError::PrivateRecipients(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "private-recipients",
            "Private fields not sealed for exactly the entitled orgs",
        ),
        AdmissionError::InvalidEvent(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-event",
            "Invalid EPCIS event",
        ),
        AdmissionError::Duplicate(_) => (
            StatusCode::CONFLICT,
            "duplicate",
            "Attestation already submitted",
        ),
        AdmissionError::Overloaded(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "Node overloaded",
        ),
        AdmissionError::StoreUnavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "Store unavailable; retry",
        ),
        AdmissionError::Lineage(LineageProblem::NotHolder { .. }) => (
            StatusCode::CONFLICT,
            "not-holder",
            "The org does not hold these goods",
        ),
        AdmissionError::Lineage(LineageProblem::Ended { .. }) => {
            (StatusCode::CONFLICT, "ended", "The goods no longer exist")
        }
        AdmissionError::Lineage(LineageProblem::Cycle { .. }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "cyclic-lineage",
            "Cyclic lineage",
        ),
        AdmissionError::DuplicateEvent { .. } => (
            StatusCode::CONFLICT,
            "duplicate-event",
            "Event already captured",
        ),
        AdmissionError::NotOwner { .. } => (
            StatusCode::FORBIDDEN,
            "not-owner",
            "Master data of an identifier the org does not own",
        ),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let body = serde_json::to_vec(&self.to_problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(r: axum::extract::rejection::BytesRejection) -> ApiError {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Request body too large",
                format!(
                    "the body exceeds the limit of {} bytes",
                    lotline_core::limits::HTTP_BODY_BYTES_MAX
                ),
            )
        } else {
            ApiError::bad_request("malformed", r.body_text())
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> ApiError {
        ApiError::bad_request("bad-query", r.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> ApiError {
        ApiError::bad_request("bad-path", r.body_text())
    }
}
