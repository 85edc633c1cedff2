//! The HTTP client of a Lotline node's API (`/v1/...`).
//!
//! The client trusts the node for *availability* only. Anything a node says
//! about commitment is checked offline against a genesis the caller pinned
//! ([`Client::submit_and_verify`], [`crate::verify_receipt`]); listings and
//! views are the node's word and are labelled so.

use std::time::Duration;

use lotline_core::api::{
    AttestationView, BatchResult, BlockView, Head, Health, Listing, Problem, Status, SubmitResult,
    Wait,
};
use lotline_core::{AttestationId, Envelope, Receipt, VerifiedReceipt, limits};
use lotline_genesis::Genesis;
use reqwest::{Response, StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::SdkError;
use crate::retry::RetryPolicy;

/// How long one request may take unless [`Client::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest response body read for ordinary requests.
const RESPONSE_BYTES_MAX: usize = limits::HTTP_BODY_BYTES_MAX;
/// The largest response body read for a batch submit (receipts for up to
/// [`limits::BATCH_ITEMS_MAX`] attestations).
const BATCH_RESPONSE_BYTES_MAX: usize = limits::BLOCK_BYTES_MAX;
/// The largest genesis file accepted from a node.
const GENESIS_BYTES_MAX: usize = 1024 * 1024;
/// Traces and recall scopes (tens of thousands of units, receipts).
const TRACE_BYTES_MAX: usize = 256 * 1024 * 1024;
/// How many bytes of an unexpected body an error quotes.
const SNIPPET_CHARS_MAX: usize = 200;

/// An async client of one node.
///
/// ```no_run
/// # async fn demo() -> Result<(), lotline_sdk::SdkError> {
/// let client = lotline_sdk::Client::new("http://127.0.0.1:8080")?;
/// let head = client.head().await?;
/// println!("height {}", head.height);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Scheme, authority and optional path prefix, without a trailing `/`.
    base: String,
    timeout: Duration,
    /// Sent as `Authorization: Bearer <token>` on every request.
    token: Option<String>,
    /// What to do when the node turns a request away for load.
    retry: RetryPolicy,
}

impl std::fmt::Debug for Client {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("retry", &self.retry)
            .finish()
    }
}

impl Client {
    /// A client of the node at `base_url` (e.g. `http://127.0.0.1:8080`,
    /// `https://node.example:8443`, or with a path prefix behind a proxy).
    /// `https` trusts the system's roots unless
    /// [`Client::with_root_certificates_pem`] pins the consortium's own.
    pub fn new(base_url: &str) -> Result<Client, SdkError> {
        let bad = |reason: &str| SdkError::Url {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let url = Url::parse(base_url).map_err(|e| bad(&e.to_string()))?;
        match url.scheme() {
            "http" | "https" => {}
            _ => return Err(bad("the scheme must be http or https")),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a base URL has no query or fragment"));
        }
        let http = reqwest::Client::builder().build()?;
        Ok(Client {
            http,
            base: url.as_str().trim_end_matches('/').to_owned(),
            timeout: DEFAULT_TIMEOUT,
            token: None,
            retry: RetryPolicy::default(),
        })
    }

    /// Sends `Authorization: Bearer <token>` with every request: an API
    /// credential from `lotline token new`, needed to read beyond the public
    /// projection.
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Client {
        self.token = Some(token.into());
        self
    }

    /// Trusts only the certificates in `pem` (one or more) for `https`:
    /// pins a consortium's own CA or a node's self-signed certificate
    /// instead of the system's roots.
    pub fn with_root_certificates_pem(mut self, pem: &[u8]) -> Result<Client, SdkError> {
        let certs = reqwest::Certificate::from_pem_bundle(pem)?;
        if certs.is_empty() {
            return Err(SdkError::Url {
                url: self.base.clone(),
                reason: "the PEM holds no certificate to trust".into(),
            });
        }
        self.http = reqwest::Client::builder().tls_certs_only(certs).build()?;
        Ok(self)
    }

    /// Sets the time limit of each request (default [`DEFAULT_TIMEOUT`]).
    /// A submit with [`Wait::Committed`] asks the node to answer within four
    /// fifths of it, so that a slow commit comes back as `pending` rather than
    /// as a transport timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// Sets what happens when the node answers `429 Too Many Requests`, or
    /// `503` with `Retry-After`: by default the request is sent again after
    /// the wait the node asks for (see [`RetryPolicy`]);
    /// [`RetryPolicy::never`] returns those answers as
    /// [`SdkError::Rejected`] at once.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Client {
        self.retry = retry;
        self
    }

    /// The base URL requests are made against (no trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /v1/attestations`: submits one attestation.
    ///
    /// With [`Wait::Accepted`] the answer is `pending` once the node admitted
    /// it. With [`Wait::Committed`] it is `committed` with a receipt, or
    /// still `pending` if the node's wait ended first: that is *not* a
    /// rejection, the attestation may still commit (look it up by id). The
    /// receipt is the node's claim until verified; use
    /// [`Client::submit_and_verify`] to have it checked.
    ///
    /// Errors: [`SdkError::Rejected`] when the node refuses it (its problem
    /// says why); [`SdkError::Timeout`] when this client's own time limit
    /// ran out, again with an unknown outcome.
    pub async fn submit(&self, envelope: &Envelope, wait: Wait) -> Result<SubmitResult, SdkError> {
        let mut url = self.url("/v1/attestations")?;
        self.add_wait(&mut url, wait);
        let request = self.http.post(url).json(envelope);
        let id = envelope.id();
        let (status, body) = self
            .send(request, RESPONSE_BYTES_MAX)
            .await
            .map_err(|e| timeout_as_unknown(e, id))?;
        match status {
            StatusCode::OK | StatusCode::ACCEPTED => decode(status, &body),
            _ => Err(error_response(status, &body)),
        }
    }

    /// `POST /v1/attestations/batch`: submits up to
    /// [`limits::BATCH_ITEMS_MAX`] attestations; each is accepted or
    /// rejected on its own (a rejected item carries its problem).
    pub async fn submit_batch(
        &self,
        envelopes: &[Envelope],
        wait: Wait,
    ) -> Result<BatchResult, SdkError> {
        if envelopes.len() > limits::BATCH_ITEMS_MAX {
            return Err(SdkError::BatchTooLarge {
                len: envelopes.len(),
                max: limits::BATCH_ITEMS_MAX,
            });
        }
        let mut url = self.url("/v1/attestations/batch")?;
        self.add_wait(&mut url, wait);
        let (status, body) = self
            .send(
                self.http.post(url).json(envelopes),
                BATCH_RESPONSE_BYTES_MAX,
            )
            .await?;
        match status {
            StatusCode::OK => decode(status, &body),
            _ => Err(error_response(status, &body)),
        }
    }

    /// Submits with [`Wait::Committed`], then verifies the receipt offline
    /// against `genesis` (which the caller must have pinned itself, see
    /// [`Client::genesis`]) and checks it is the receipt of *this* envelope.
    ///
    /// Errors: [`SdkError::Timeout`] if it was not committed in time (it may
    /// still be); [`SdkError::Verify`] or [`SdkError::ReceiptMismatch`] if the
    /// node's proof does not hold.
    pub async fn submit_and_verify(
        &self,
        envelope: &Envelope,
        genesis: &Genesis,
    ) -> Result<VerifiedReceipt, SdkError> {
        let id = envelope.id();
        let result = self.submit(envelope, Wait::Committed).await?;
        let receipt = match result.status {
            Status::Committed => match result.receipt {
                Some(receipt) => receipt,
                None => self.receipt(&id).await?,
            },
            Status::Pending => return Err(SdkError::Timeout { id }),
            Status::Rejected => {
                return Err(match result.problem {
                    Some(problem) => SdkError::Rejected {
                        status: problem.status,
                        problem,
                    },
                    None => SdkError::UnexpectedResponse {
                        status: StatusCode::OK.as_u16(),
                        body_snippet: "status rejected without a problem".to_owned(),
                    },
                });
            }
        };
        crate::verify_receipt_for(&id, &receipt, genesis)
    }

    /// `GET /v1/attestations/{id}`: the node's view of an attestation.
    pub async fn attestation(&self, id: &AttestationId) -> Result<AttestationView, SdkError> {
        self.get_json(&format!("/v1/attestations/{id}"), &[]).await
    }

    /// `GET /v1/attestations/{id}/receipt`: the receipt of a committed
    /// attestation, unverified ([`crate::verify_receipt`] checks it).
    /// A `not-found` problem means unknown *or not committed yet*.
    pub async fn receipt(&self, id: &AttestationId) -> Result<Receipt, SdkError> {
        let url = self.url(&format!("/v1/attestations/{id}/receipt"))?;
        let (status, body) = self
            .send(self.http.get(url), limits::RECEIPT_BYTES_MAX)
            .await?;
        if status != StatusCode::OK {
            return Err(error_response(status, &body));
        }
        Receipt::from_json(&body).map_err(|e| unexpected(status, &e.to_string()))
    }

    /// `GET /v1/attestations/{id}/private`: the private fields of a
    /// committed attestation, decrypted by the node (which must hold the
    /// key of a recipient org) for a caller the private read rule entitles.
    /// Each field carries its salt: any one can be handed on as a selective
    /// disclosure and checked with `Genesis::verify_disclosure`. An org
    /// holding its own key can instead open the envelope locally with
    /// [`crate::open_private`].
    pub async fn private_fields(
        &self,
        id: &AttestationId,
    ) -> Result<Vec<lotline_core::private::Disclosure>, SdkError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            fields: Vec<lotline_core::private::Disclosure>,
        }
        let answer: Answer = self
            .get_json(&format!("/v1/attestations/{id}/private"), &[])
            .await?;
        Ok(answer.fields)
    }

    /// `GET /v1/blocks/{height}`.
    pub async fn block(&self, height: u64) -> Result<BlockView, SdkError> {
        self.get_json(&format!("/v1/blocks/{height}"), &[]).await
    }

    /// `GET /v1/head`: the node's latest committed block.
    pub async fn head(&self) -> Result<Head, SdkError> {
        self.get_json("/v1/head", &[]).await
    }

    /// `GET /v1/governance/history`: the membership-history file. Like
    /// every node answer it is checked, not trusted: follow it from a pinned
    /// genesis ([`lotline_genesis::HistoryFile::follow`]) and verify
    /// receipts with [`lotline_genesis::Genesis::verify_receipt_in`].
    pub async fn membership_history(&self) -> Result<lotline_genesis::HistoryFile, SdkError> {
        self.get_json("/v1/governance/history", &[]).await
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<Health, SdkError> {
        self.get_json("/health", &[]).await
    }

    /// `GET /v1/genesis`: the genesis the node runs, parsed.
    ///
    /// **Not a trust anchor.** A node controlled by an attacker can serve a
    /// genesis of its own making, whose validators certify anything. A
    /// verifier must load the genesis file it was given out of band
    /// (`Genesis::load`) and pin it; use this to *compare* (e.g. the chain
    /// ids) or for convenience in development.
    pub async fn genesis(&self) -> Result<Genesis, SdkError> {
        let url = self.url("/v1/genesis")?;
        let (status, body) = self.send(self.http.get(url), GENESIS_BYTES_MAX).await?;
        if status != StatusCode::OK {
            return Err(error_response(status, &body));
        }
        let text = std::str::from_utf8(&body).map_err(|e| unexpected(status, &e.to_string()))?;
        Genesis::from_toml(text).map_err(SdkError::Genesis)
    }

    /// `GET /v1/identifiers/{identifier}/attestations`: attestations about
    /// a Digital Link URI or EPC URN, oldest first. Pass the previous page's
    /// `next` as `after`.
    pub async fn by_identifier(
        &self,
        identifier: &str,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<Listing, SdkError> {
        let path = format!(
            "/v1/identifiers/{}/attestations",
            encode_segment(identifier)
        );
        self.get_json(&path, &page_query(limit, after)).await
    }

    /// `GET /v1/trace/{identifier}`: the lineage graph backward (inputs,
    /// suppliers) or forward (products, shipments) from an identifier. With
    /// `proofs`, check it offline with [`crate::verify_trace`].
    pub async fn trace(
        &self,
        identifier: &str,
        direction: lotline_core::trace::Direction,
        depth: Option<u32>,
        proofs: bool,
    ) -> Result<lotline_core::trace::Trace, SdkError> {
        let path = format!("/v1/trace/{}", encode_segment(identifier));
        let direction = match direction {
            lotline_core::trace::Direction::Backward => "backward",
            lotline_core::trace::Direction::Forward => "forward",
        };
        let mut query = vec![
            ("direction", direction.to_owned()),
            ("proofs", proofs.to_string()),
        ];
        if let Some(depth) = depth {
            query.push(("depth", depth.to_string()));
        }
        let mut url = self.url(&path)?;
        url.query_pairs_mut().extend_pairs(&query);
        let (status, body) = self.send(self.http.get(url), TRACE_BYTES_MAX).await?;
        match status {
            StatusCode::OK => decode(status, &body),
            _ => Err(error_response(status, &body)),
        }
    }

    /// `POST /v1/recalls/scope`: everything downstream of suspect lots, who
    /// holds it and how much.
    pub async fn recall_scope(
        &self,
        request: &lotline_core::trace::RecallScopeRequest,
    ) -> Result<lotline_core::trace::RecallScope, SdkError> {
        let url = self.url("/v1/recalls/scope")?;
        let (status, body) = self
            .send(self.http.post(url).json(request), TRACE_BYTES_MAX)
            .await?;
        match status {
            StatusCode::OK => decode(status, &body),
            _ => Err(error_response(status, &body)),
        }
    }

    /// `GET /v1/orgs/{org}/attestations`: attestations issued by an org.
    pub async fn by_org(
        &self,
        org: &str,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<Listing, SdkError> {
        let path = format!("/v1/orgs/{}/attestations", encode_segment(org));
        self.get_json(&path, &page_query(limit, after)).await
    }

    fn url(&self, path: &str) -> Result<Url, SdkError> {
        let full = format!("{}{path}", self.base);
        Url::parse(&full).map_err(|e| SdkError::Url {
            url: full.clone(),
            reason: e.to_string(),
        })
    }

    fn add_wait(&self, url: &mut Url, wait: Wait) {
        let mut query = url.query_pairs_mut();
        match wait {
            Wait::Accepted => {
                query.append_pair("wait", "accepted");
            }
            Wait::Committed => {
                // Within the node's documented maximum, which refuses more.
                let node_wait = (self.timeout * 4 / 5)
                    .min(Duration::from_millis(lotline_core::api::WAIT_MAX_MS));
                query.append_pair("wait", "committed");
                query.append_pair("timeoutMs", &node_wait.as_millis().to_string());
            }
        }
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, SdkError> {
        let mut url = self.url(path)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let (status, body) = self.send(self.http.get(url), RESPONSE_BYTES_MAX).await?;
        if status != StatusCode::OK {
            return Err(error_response(status, &body));
        }
        decode(status, &body)
    }

    /// Sends and reads the body, refusing to read more than `max` bytes.
    /// A request the node turned away for load is sent again as the retry
    /// policy says (every request this client makes is safe to repeat).
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        max: usize,
    ) -> Result<(StatusCode, Vec<u8>), SdkError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .timeout(self.timeout);
        let mut retry = 0;
        loop {
            // Bodies here are in-memory JSON, so a request always clones;
            // were it a stream, it is sent once.
            let Some(again) = request.try_clone() else {
                return read_body(request.send().await?, max).await;
            };
            let response = again.send().await?;
            match self
                .retry
                .wait(retry, response.status(), response.headers())
            {
                Some(wait) => {
                    drop(response);
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                None => return read_body(response, max).await,
            }
        }
    }
}

async fn read_body(mut response: Response, max: usize) -> Result<(StatusCode, Vec<u8>), SdkError> {
    let status = response.status();
    let too_large = || {
        unexpected(
            status,
            &format!("the response body is larger than {max} bytes"),
        )
    };
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// A client-side timeout of a submit leaves its fate unknown: say so.
fn timeout_as_unknown(error: SdkError, id: AttestationId) -> SdkError {
    match error {
        SdkError::Http(e) if e.is_timeout() => SdkError::Timeout { id },
        other => other,
    }
}

fn decode<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<T, SdkError> {
    serde_json::from_slice(body)
        .map_err(|e| unexpected(status, &format!("{e}; body: {}", snippet(body))))
}

/// A non-success answer: the node's problem if it sent one, else the body.
fn error_response(status: StatusCode, body: &[u8]) -> SdkError {
    match serde_json::from_slice::<Problem>(body) {
        Ok(problem) if !status.is_success() => SdkError::Rejected {
            status: status.as_u16(),
            problem,
        },
        _ => unexpected(status, &snippet(body)),
    }
}

fn unexpected(status: StatusCode, what: &str) -> SdkError {
    SdkError::UnexpectedResponse {
        status: status.as_u16(),
        body_snippet: truncate(what),
    }
}

fn snippet(body: &[u8]) -> String {
    truncate(&String::from_utf8_lossy(body))
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(SNIPPET_CHARS_MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

fn page_query(limit: Option<u32>, after: Option<&str>) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(limit) = limit {
        query.push(("limit", limit.to_string()));
    }
    if let Some(after) = after {
        query.push(("after", after.to_owned()));
    }
    query
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so that an
/// identifier such as `https://id.gs1.org/01/...` travels as one path segment.
/// Percent-encodes everything but RFC 3986 unreserved characters, so a URI
/// (a Digital Link, an EPC URN) travels as one path segment.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len() * 3);
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_one_path_segment() {
        assert_eq!(
            encode_segment("https://id.gs1.org/01/09506000134352/10/LOT-1"),
            "https%3A%2F%2Fid.gs1.org%2F01%2F09506000134352%2F10%2FLOT-1"
        );
        assert_eq!(
            encode_segment("urn:epc:id:sgtin:4012345.011111.98 76"),
            "urn%3Aepc%3Aid%3Asgtin%3A4012345.011111.98%2076"
        );
        assert_eq!(encode_segment("lötte"), "l%C3%B6tte");
        let client = Client::new("http://127.0.0.1:8080/").unwrap();
        let url = client
            .url(&format!(
                "/v1/identifiers/{}/attestations",
                encode_segment("https://x/01/1")
            ))
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/v1/identifiers/https%3A%2F%2Fx%2F01%2F1/attestations"
        );
        assert_eq!(url.path_segments().map(|s| s.count()), Some(4));
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(matches!(
            Client::new("127.0.0.1:8080"),
            Err(SdkError::Url { .. })
        ));
        assert!(Client::new("https://node.example").is_ok());
        assert!(matches!(
            Client::new("ftp://node.example"),
            Err(SdkError::Url { .. })
        ));
        assert!(matches!(
            Client::new("https://node.example")
                .unwrap()
                .with_root_certificates_pem(b"not a pem"),
            Err(SdkError::Url { .. })
        ));
        let with_token = Client::new("http://node.example")
            .unwrap()
            .with_bearer_token("sup.secret");
        assert!(!format!("{with_token:?}").contains("secret"));
        assert!(matches!(
            Client::new("http://node.example/?x=1"),
            Err(SdkError::Url { .. })
        ));
        let client = Client::new("http://node.example/lotline/").unwrap();
        assert_eq!(client.base_url(), "http://node.example/lotline");
        assert_eq!(
            client.url("/v1/head").unwrap().as_str(),
            "http://node.example/lotline/v1/head"
        );
    }

    #[test]
    fn committed_waits_ask_the_node_to_answer_before_the_client_gives_up() {
        let client = Client::new("http://127.0.0.1:8080")
            .unwrap()
            .with_timeout(Duration::from_secs(10));
        let mut url = client.url("/v1/attestations").unwrap();
        client.add_wait(&mut url, Wait::Committed);
        assert_eq!(url.query(), Some("wait=committed&timeoutMs=8000"));
        let mut url = client.url("/v1/attestations").unwrap();
        client.add_wait(&mut url, Wait::Accepted);
        assert_eq!(url.query(), Some("wait=accepted"));
        // A long client timeout never asks for more than the node allows.
        let patient = client.with_timeout(Duration::from_secs(600));
        let mut url = patient.url("/v1/attestations").unwrap();
        patient.add_wait(&mut url, Wait::Committed);
        assert_eq!(url.query(), Some("wait=committed&timeoutMs=50000"));
    }

    #[test]
    fn error_bodies_become_problems_or_snippets() {
        let problem = Problem {
            kind: format!("{}duplicate", lotline_core::api::PROBLEM_BASE),
            title: "Duplicate".into(),
            status: 409,
            detail: "already known".into(),
            problems: vec![],
        };
        let body = serde_json::to_vec(&problem).unwrap();
        match error_response(StatusCode::CONFLICT, &body) {
            SdkError::Rejected {
                status: 409,
                problem: p,
            } => assert_eq!(p.slug(), "duplicate"),
            other => panic!("{other:?}"),
        }
        let long = "x".repeat(1000);
        match error_response(StatusCode::BAD_GATEWAY, long.as_bytes()) {
            SdkError::UnexpectedResponse {
                status: 502,
                body_snippet,
            } => {
                assert_eq!(body_snippet.len(), SNIPPET_CHARS_MAX + 3)
            }
            other => panic!("{other:?}"),
        }
    }
}
