//! Bad input gets a specific 4xx problem and loses nothing: every rejection
//! names its reason with a stable problem type, and what was committed
//! before is still there, unchanged, afterwards.

use crate::support::{Consortium, client, commissioning, statement};
use lotline_core::api::{Problem, Wait};
use lotline_core::{Envelope, SigningKey};

struct Case {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    status: u16,
    slug: &'static str,
}

fn json_case(name: &'static str, envelope: &Envelope, status: u16, slug: &'static str) -> Case {
    Case {
        name,
        path: "/v1/attestations?wait=committed",
        content_type: "application/json",
        body: serde_json::to_vec(envelope).expect("json"),
        status,
        slug,
    }
}

/// Goal: each kind of bad submission is refused with its own status and
/// problem type. Method: one committed attestation first, then every bad
/// case through real HTTP, then check the head and the first attestation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_submission_is_refused_with_its_reason_and_nothing_changes() {
    let c = Consortium::new();
    let node = c.start().await;
    let sdk = client(&node);
    let first = c.attest("supplier", commissioning("LOT-OK"));
    let committed = sdk
        .submit(&first, Wait::Committed)
        .await
        .expect("first submit");
    let head_before = sdk.head().await.expect("head");

    let supplier_key = &c.keys["supplier"];
    let sign = |statement: &lotline_core::Statement, key: &SigningKey| {
        Envelope::sign(statement.to_payload(), key)
    };

    // Unknown field inside the signed statement.
    let mut with_unknown: serde_json::Value =
        serde_json::to_value(statement(&c, "supplier", commissioning("LOT-U"))).expect("json");
    with_unknown["colour"] = "blue".into();
    let unknown_field = Envelope::sign(
        serde_json::to_vec(&with_unknown).expect("json"),
        supplier_key,
    );

    let mut wrong_chain = statement(&c, "supplier", commissioning("LOT-W"));
    wrong_chain.chain_id = lotline_core::Digest([7; 32]);

    let stranger = SigningKey::from_seed(&[42; 32]);
    let mut by_stranger = statement(&c, "supplier", commissioning("LOT-S"));
    by_stranger.key = stranger.public_key();

    // Supplier's key, claiming to be the manufacturer.
    let mut other_org = statement(&c, "manufacturer", commissioning("LOT-O"));
    other_org.key = supplier_key.public_key();

    let mut bad_gtin = serde_json::to_value(commissioning("LOT-G")).expect("json");
    bad_gtin["quantityList"][0]["epcClass"] =
        "https://id.gs1.org/01/09506000134353/10/LOT-G".into();
    let bad_gtin_event = serde_json::from_value(bad_gtin).expect("event");

    // issuedAtMs decides how long private fields are kept: a client may
    // not date a statement further than the node's bound (default 5
    // minutes) from its clock, ahead or behind.
    let mut ahead = statement(&c, "supplier", commissioning("LOT-AHEAD"));
    ahead.issued_at_ms += 10 * 60 * 1000;
    let mut behind = statement(&c, "supplier", commissioning("LOT-BEHIND"));
    behind.issued_at_ms -= 365 * 24 * 3600 * 1000;

    let mut bad_signature = c.attest("supplier", commissioning("LOT-SIG"));
    bad_signature.signatures[0].sig.0[10] ^= 0x01;

    let cases = vec![
        Case {
            name: "malformed JSON",
            path: "/v1/attestations",
            content_type: "application/json",
            body: b"{\"payloadType\": ".to_vec(),
            status: 400,
            slug: "malformed",
        },
        Case {
            name: "not an envelope",
            path: "/v1/attestations",
            content_type: "application/json",
            body: b"[1,2,3]".to_vec(),
            status: 400,
            slug: "malformed",
        },
        Case {
            name: "oversized body",
            path: "/v1/attestations",
            content_type: "application/json",
            body: vec![b' '; 9 * 1024 * 1024],
            status: 413,
            slug: "too-large",
        },
        json_case(
            "unknown field in the signed statement",
            &unknown_field,
            422,
            "malformed-statement",
        ),
        json_case(
            "wrong chain id",
            &sign(&wrong_chain, supplier_key),
            422,
            "wrong-chain",
        ),
        json_case(
            "unknown key",
            &sign(&by_stranger, &stranger),
            403,
            "unknown-key",
        ),
        json_case(
            "key of another org",
            &sign(&other_org, supplier_key),
            403,
            "wrong-org",
        ),
        json_case(
            "role not allowed to emit the event",
            &c.attest("regulator", commissioning("LOT-P")),
            403,
            "policy-denied",
        ),
        json_case("replayed id", &first, 409, "duplicate"),
        json_case(
            "invalid GTIN check digit",
            &sign(&statement(&c, "supplier", bad_gtin_event), supplier_key),
            422,
            "invalid-event",
        ),
        json_case(
            "issued 10 minutes ahead of the node's clock",
            &sign(&ahead, supplier_key),
            422,
            "issued-at-skew",
        ),
        json_case(
            "issued a year before the node's clock",
            &sign(&behind, supplier_key),
            422,
            "issued-at-skew",
        ),
        json_case(
            "signature does not verify",
            &bad_signature,
            422,
            "bad-signature",
        ),
        Case {
            name: "batch that is not an array",
            path: "/v1/attestations/batch",
            content_type: "application/json",
            body: b"{}".to_vec(),
            status: 400,
            slug: "malformed",
        },
        Case {
            name: "unknown query parameter",
            path: "/v1/attestations?wiat=committed",
            content_type: "application/json",
            body: serde_json::to_vec(&first).expect("json"),
            status: 400,
            slug: "bad-query",
        },
    ];

    // A fresh connection per case: after refusing an over-limit body unread,
    // the node closes the connection, which a pooled client could reuse.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    for case in &cases {
        // An over-limit body is refused (413) before it is read; the node
        // then closes the connection while the client may still be sending,
        // and the client can see the reset before the answer (an HTTP/1.1
        // race, seen about 1 run in 10). Only that transport error is retried.
        let mut attempts = 0;
        let response = loop {
            attempts += 1;
            match http
                .post(format!("{}{}", node.url(), case.path))
                .header("content-type", case.content_type)
                .body(case.body.clone())
                .send()
                .await
            {
                Ok(response) => break response,
                Err(error) if case.status == 413 && attempts < 10 => {
                    eprintln!("{}: {error}; retrying", case.name);
                }
                Err(error) => panic!("{}: {error}", case.name),
            }
        };
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let problem: Problem = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{}: problem body: {e}", case.name));
        assert_eq!(
            (status, problem.slug()),
            (case.status, case.slug),
            "{}: {problem:?}",
            case.name
        );
        assert_eq!(content_type, "application/problem+json", "{}", case.name);
        assert_eq!(problem.status, case.status, "{}", case.name);
        assert!(!problem.detail.is_empty(), "{}", case.name);
        if case.slug == "issued-at-skew" {
            assert!(
                problem.detail.contains("ahead of") || problem.detail.contains("behind"),
                "{}: {problem:?}",
                case.name
            );
        }
        if case.slug == "invalid-event" {
            assert!(
                problem.problems.iter().any(
                    |p| p.field.contains("quantityList[0]") && p.reason.contains("check digit")
                ),
                "the field and the reason are named: {problem:?}"
            );
        }
    }

    // Nothing already stored is affected.
    let head_after = sdk.head().await.expect("head");
    assert_eq!(head_after, head_before);
    assert_eq!(
        sdk.receipt(&first.id()).await.expect("receipt"),
        committed.receipt.expect("receipt")
    );
    node.shutdown().await;
}

/// Goal: independent problems are reported together (R7), so a caller fixes
/// them in one round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_problems_are_all_reported() {
    let c = Consortium::new();
    let node = c.start().await;
    let mut event = serde_json::to_value(commissioning("LOT-M")).expect("json");
    event["quantityList"][0]["quantity"] = (-5.0).into();
    let mut s = statement(
        &c,
        "regulator",
        serde_json::from_value(event).expect("event"),
    );
    s.chain_id = lotline_core::Digest([1; 32]);
    let envelope = Envelope::sign(s.to_payload(), &c.keys["regulator"]);
    let error = client(&node)
        .submit(&envelope, Wait::Accepted)
        .await
        .expect_err("rejected");
    let problem = error.problem().expect("problem");
    let fields: Vec<&str> = problem.problems.iter().map(|p| p.field.as_str()).collect();
    assert!(fields.contains(&"wrong-chain"), "{fields:?}");
    assert!(fields.contains(&"policy-denied"), "{fields:?}");
    assert!(fields.iter().any(|f| f.contains("quantity")), "{fields:?}");
    node.shutdown().await;
}

/// Goal: reads with bad parameters, unknown routes and wrong methods also
/// answer with problem documents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_routes_answer_with_problems() {
    let c = Consortium::new();
    let node = c.start().await;
    let http = reqwest::Client::new();
    let cases = [
        ("GET", "/v1/attestations/xyz", 400, "bad-id"),
        (
            "GET",
            &format!("/v1/attestations/{}", "ab".repeat(32)),
            404,
            "not-found",
        ),
        (
            "GET",
            &format!("/v1/attestations/{}/receipt", "ab".repeat(32)),
            404,
            "not-found",
        ),
        ("GET", "/v1/blocks/notanumber", 400, "bad-path"),
        ("GET", "/v1/blocks/99", 404, "not-found"),
        (
            "GET",
            "/v1/identifiers/not%20an%20identifier/attestations",
            422,
            "invalid-identifier",
        ),
        ("GET", "/v1/orgs/nobody/attestations", 404, "not-found"),
        (
            "GET",
            "/v1/orgs/supplier/attestations?limit=0",
            400,
            "bad-query",
        ),
        (
            "GET",
            "/v1/orgs/supplier/attestations?after=zzz",
            400,
            "bad-query",
        ),
        ("GET", "/v1/nothing-here", 404, "not-found"),
        ("DELETE", "/v1/head", 405, "method-not-allowed"),
    ];
    for (method, path, status, slug) in cases {
        let response = http
            .request(
                method.parse().expect("method"),
                format!("{}{path}", node.url()),
            )
            .send()
            .await
            .expect("request");
        let got = response.status().as_u16();
        let problem: Problem = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert_eq!((got, problem.slug()), (status, slug), "{method} {path}");
    }
    node.shutdown().await;
}

/// Goal: an error answer never echoes the rejected input whole (defect 7:
/// a batch of one 8 MB string was answered with 16.8 MB, the string in
/// `detail` and again in `problems[0].reason`). Method: the largest string
/// the body limit lets through, as a one-item batch and as a single submit,
/// over real HTTP; each answer stays small, is a problem (or a batch result
/// with one) that still says what was wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_answer_quotes_only_a_short_excerpt_of_bad_input() {
    /// Generous: the problem texts plus two excerpts are about 1 KB.
    const ANSWER_BYTES_MAX: usize = 4096;
    let c = Consortium::new();
    let node = c.start().await;
    let http = reqwest::Client::new();
    let huge = "A".repeat(lotline_core::limits::HTTP_BODY_BYTES_MAX - 64);
    let batch = serde_json::to_vec(&[huge.as_str()]).expect("json");
    let answer = http
        .post(format!("{}/v1/attestations/batch", node.url()))
        .header("content-type", "application/json")
        .body(batch)
        .send()
        .await
        .expect("batch");
    assert_eq!(answer.status().as_u16(), 200);
    let body = answer.bytes().await.expect("body");
    assert!(
        body.len() <= ANSWER_BYTES_MAX,
        "batch answer of {} bytes",
        body.len()
    );
    let result: lotline_core::api::BatchResult = serde_json::from_slice(&body).expect("json");
    let problem = result.results[0].problem.as_ref().expect("problem");
    assert_eq!(problem.slug(), "malformed");
    assert!(problem.detail.contains("expected"), "{}", problem.detail);
    assert!(
        problem.detail.contains("bytes elided"),
        "{}",
        problem.detail
    );

    let single = serde_json::to_vec(&serde_json::json!({
        "payloadType": huge,
        "payload": "",
        "signatures": []
    }))
    .expect("json");
    let answer = http
        .post(format!("{}/v1/attestations", node.url()))
        .header("content-type", "application/json")
        .body(single)
        .send()
        .await
        .expect("submit");
    let status = answer.status().as_u16();
    let body = answer.bytes().await.expect("body");
    assert!(
        body.len() <= ANSWER_BYTES_MAX,
        "answer of {} bytes",
        body.len()
    );
    let problem: Problem = serde_json::from_slice(&body).expect("problem");
    assert!((400..500).contains(&status), "{status} {problem:?}");
    assert!(!problem.detail.is_empty());
    node.shutdown().await;
}
