//! Abuse limits, the audit trail and HTTPS on a real node: 429 with
//! Retry-After that recovers (and an SDK that waits it out), an audit export that shows who read what and
//! whose chain verifies (and stops verifying when edited), and the API over
//! rustls with a client that pins the node's certificate.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::support::{Consortium, client, client_as, commissioning};
use lotline_core::api::{Problem, Wait};
use lotline_node::access::Rate;
use lotline_node::audit;

fn rate(per_s: u32, burst: u32) -> Rate {
    Rate {
        per_s: NonZeroU32::new(per_s).expect("non-zero"),
        burst: NonZeroU32::new(burst).expect("non-zero"),
    }
}

/// Goal: a client over its rate gets 429 + Retry-After + a problem
/// document, other clients are not affected, and it recovers after waiting.
/// Method: a node with a burst of 3 per IP and 2 per credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_gets_429_with_retry_after_and_recovers() {
    let mut c = Consortium::new();
    c.config.limits.per_ip = rate(2, 3);
    c.config.limits.per_credential = rate(2, 2);
    let node = c.start().await;
    let http = reqwest::Client::new();
    let head = format!("{}/v1/head", node.url());
    for _ in 0..3 {
        assert_eq!(http.get(&head).send().await.expect("get").status(), 200);
    }
    let refused = http.get(&head).send().await.expect("get");
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Problem = refused.json().await.expect("problem");
    assert_eq!((problem.status, problem.slug()), (429, "rate-limited"));

    // A credential has its own bucket, even from the same IP.
    let token = &c.tokens["supplier"];
    for _ in 0..2 {
        let ok = http
            .get(&head)
            .bearer_auth(token)
            .send()
            .await
            .expect("get");
        assert_eq!(ok.status(), 200);
    }
    let over = http
        .get(&head)
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    assert_eq!(over.status(), 429);

    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(http.get(&head).send().await.expect("get").status(), 200);
    node.shutdown().await;
}

/// Goal: the SDK is a well-behaved client by default: turned away with 429,
/// it waits what Retry-After asks and tries again, for reads and submits
/// alike, so a burst larger than the node's allowance still completes;
/// with retries off, the 429 reaches the caller as the node's problem.
/// Method: a node allowing 2 requests per second per IP (burst 2), and more
/// SDK calls than that from one address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_honours_retry_after_by_default() {
    let mut c = Consortium::new();
    c.config.limits.per_ip = rate(2, 2);
    let node = c.start().await;
    let patient = client(&node);
    for _ in 0..5 {
        patient
            .head()
            .await
            .expect("a rate-limited read is retried");
    }
    let envelope = c.attest("supplier", commissioning("RETRY-1"));
    let result = patient
        .submit(&envelope, Wait::Committed)
        .await
        .expect("a rate-limited submit is retried");
    assert_eq!(result.id, Some(envelope.id()));

    let impatient = client(&node).with_retry(lotline_sdk::RetryPolicy::never());
    let mut refused = None;
    for _ in 0..5 {
        if let Err(error) = impatient.head().await {
            refused = Some(error);
            break;
        }
    }
    match refused {
        Some(lotline_sdk::SdkError::Rejected { status, problem }) => {
            assert_eq!((status, problem.slug()), (429, "rate-limited"));
        }
        other => panic!("expected a 429 without retries, got {other:?}"),
    }
    node.shutdown().await;
}

/// Goal: every non-public read is in the audit trail with caller, org and
/// resource; anonymous reads are not; regulators can export it; the file's
/// chain verifies, and an edit is found. Method: real reads, the export
/// route, then the file in the node's data dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_audited_and_the_export_verifies() {
    let c = Consortium::new();
    let node = c.start().await;
    let envelope = c.attest("supplier", commissioning("LOT-AUD"));
    let id = client(&node)
        .submit(&envelope, Wait::Committed)
        .await
        .expect("submit")
        .id
        .expect("id");
    client(&node)
        .attestation(&id)
        .await
        .expect("anonymous read");
    client_as(&c, &node, "distributor")
        .attestation(&id)
        .await
        .expect("distributor read");
    let http = reqwest::Client::new();
    let refused = http
        .get(format!("{}/v1/head", node.url()))
        .bearer_auth("supplier-reader.nope")
        .send()
        .await
        .expect("get");
    assert_eq!(refused.status(), 401);

    let export: serde_json::Value = http
        .get(format!("{}/v1/audit", node.url()))
        .bearer_auth(&c.tokens["regulator"])
        .send()
        .await
        .expect("export")
        .json()
        .await
        .expect("json");
    let entries: Vec<audit::Entry> =
        serde_json::from_value(export["entries"].clone()).expect("entries");
    let resource = format!("GET /v1/attestations/{id}");
    let reads: Vec<_> = entries.iter().filter(|e| e.resource == resource).collect();
    assert_eq!(
        reads.len(),
        1,
        "only the credentialed read is logged: {entries:?}"
    );
    assert_eq!(reads[0].caller, "distributor-reader");
    assert_eq!(reads[0].org.as_deref(), Some("distributor"));
    assert_eq!(
        (reads[0].action, reads[0].outcome),
        (audit::Action::Read, 200)
    );
    assert!(
        entries
            .iter()
            .any(|e| e.action == audit::Action::AuthFailure && e.outcome == 401)
    );
    assert_eq!(
        entries[0].action,
        audit::Action::Admin,
        "node start comes first"
    );
    node.shutdown().await;

    // The export itself was logged, after the entries it returned.
    let (file, verdict) = audit::verify_path(&c.config.data_dir).expect("audit file");
    assert_eq!(verdict.problem, None);
    assert_eq!(verdict.valid_entries, entries.len() as u64 + 1);
    let text = std::fs::read_to_string(&file).expect("read");
    let edited = text.replacen("distributor-reader", "supplier-reader", 1);
    assert!(matches!(
        audit::verify_bytes(edited.as_bytes()).problem,
        Some(audit::Problem::Edited { .. })
    ));
}

/// Goal: with `[api.tls]` the API is HTTPS only, and an SDK client that pins
/// the node's certificate reads through it. Method: an rcgen self-signed
/// certificate for localhost, a real node, plain HTTP refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_pinned_certificate() {
    let mut c = Consortium::new();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let cert_pem = cert.cert.pem();
    let tls_dir = c.dir.path().join("tls");
    std::fs::create_dir_all(&tls_dir).expect("dir");
    std::fs::write(tls_dir.join("cert.pem"), &cert_pem).expect("write");
    std::fs::write(tls_dir.join("key.pem"), cert.key_pair.serialize_pem()).expect("write");
    c.config.tls = Some(lotline_node::config::TlsPaths {
        cert: tls_dir.join("cert.pem"),
        key: tls_dir.join("key.pem"),
    });
    let node = c.start().await;
    let port = node.api_addr.port();
    let url = format!("https://localhost:{port}");

    let pinned = lotline_sdk::Client::new(&url)
        .expect("client")
        .with_root_certificates_pem(cert_pem.as_bytes())
        .expect("pin")
        .with_bearer_token(c.tokens["regulator"].clone());
    let envelope = c.attest("supplier", commissioning("LOT-TLS"));
    let result = pinned
        .submit_and_verify(&envelope, &c.genesis)
        .await
        .expect("submit over https");
    assert_eq!(result.id, envelope.id());
    assert_eq!(pinned.head().await.expect("head").height, result.height);

    // Without the pin the certificate is not trusted; plain HTTP gets no answer.
    let unpinned = lotline_sdk::Client::new(&url).expect("client");
    assert!(unpinned.head().await.is_err());
    let plain = lotline_sdk::Client::new(&format!("http://127.0.0.1:{port}"))
        .expect("client")
        .with_timeout(Duration::from_secs(3));
    assert!(plain.head().await.is_err());
    node.shutdown().await;
}
