//! The GS1 Digital Link resolver and QR codes on a running node: valid and
//! invalid Digital Link URIs give the documented status (200, 301 to the
//! canonical form, 400 for wrong order / bad check digit / bad characters,
//! 404 for unknown keys and link types), linkType redirects and the RFC 9264
//! linkset, `/.well-known/gs1resolver`, and a QR PNG that a real decoder
//! (zbarimg) reads back as the node's Digital Link URL.

use crate::support::public_story::{self, gtin};
use crate::support::{Consortium, GTIN, client};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LINK, LOCATION};
use serde_json::Value;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

async fn get(url: &str, accept: &str) -> reqwest::Response {
    http()
        .get(url)
        .header(ACCEPT, accept)
        .send()
        .await
        .expect("request")
}

async fn problem(url: &str) -> (StatusCode, String) {
    let response = get(url, "text/html").await;
    let status = response.status();
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/problem+json",
        "{url}"
    );
    let body: Value = response.json().await.expect("problem json");
    let kind = body["type"].as_str().unwrap_or_default();
    (
        status,
        kind.rsplit('/').next().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digital_links_resolve_redirect_or_fail_as_documented() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let story = public_story::load(&consortium, &client(&node)).await;
    let base = node.url();
    let f = gtin(3);

    // Canonical forms resolve to the page, with the linkset named.
    for path in [
        format!("/01/{GTIN}/10/R1"),
        format!("/01/{f}/21/1"),
        format!("/01/{f}/10/F1"),
        story.pallet.replace("https://id.gs1.org", ""),
    ] {
        let response = get(&format!("{base}{path}"), "text/html").await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            response.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let link = response.headers()[LINK].to_str().unwrap().to_owned();
        assert!(link.contains("rel=\"linkset\""), "{link}");
    }

    // Valid but not canonical: 301 to the canonical path, query kept.
    let gtin13 = &GTIN[1..];
    for (from, to) in [
        (
            format!("/01/{gtin13}/10/R1?lang=zh"),
            format!("/01/{GTIN}/10/R1?lang=zh"),
        ),
        (format!("/01/{GTIN}/10/R1/"), format!("/01/{GTIN}/10/R1")),
        (format!("/01/{GTIN}/10/%52%31"), format!("/01/{GTIN}/10/R1")),
        (format!("/01/{f}/10/F1/21/1"), format!("/01/{f}/21/1")),
    ] {
        let response = get(&format!("{base}{from}"), "text/html").await;
        assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY, "{from}");
        assert_eq!(response.headers()[LOCATION], to.as_str(), "{from}");
    }

    // Invalid Digital Links: 422 invalid-digital-link (the request fits the
    // API document; GS1's rules refuse the link).
    let bad_check = format!("{}{}", &GTIN[..13], (GTIN.as_bytes()[13] - b'0' + 1) % 10);
    for path in [
        format!("/01/{f}/21/1/10/F1"),      // qualifiers in the wrong order
        format!("/01/{bad_check}/10/R1"),   // bad GTIN check digit
        format!("/01/{GTIN}/10/R%201"),     // space is not in set 82
        format!("/01/{GTIN}/10/%E6%89%B9"), // non-ASCII lot
        format!("/01/{GTIN}/10/ABCDEFGHIJKLMNOPQRSTU"), // 21 characters
        format!("/01/{GTIN}/17/261231"),    // (17) is not a path qualifier
        format!("/01/{GTIN}/10"),           // qualifier without value
        "/01/95060001343X/10/R1".to_owned(), // letter in the GTIN
        "/00/095060000000000018".to_owned(), // bad SSCC check digit
    ] {
        assert_eq!(
            problem(&format!("{base}{path}")).await,
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-digital-link".to_owned()
            ),
            "{path}"
        );
    }

    // Well-formed but unknown here.
    assert_eq!(
        problem(&format!("{base}/01/{GTIN}/10/NOPE")).await,
        (StatusCode::NOT_FOUND, "not-found".to_owned())
    );

    // linkType.
    let serial_path = format!("{base}/01/{f}/21/1");
    let to =
        |response: &reqwest::Response| response.headers()[LOCATION].to_str().unwrap().to_owned();
    let trace = get(&format!("{serial_path}?linkType=gs1:traceability"), "*/*").await;
    assert_eq!(trace.status(), StatusCode::TEMPORARY_REDIRECT);
    let provenance: Value = reqwest::get(to(&trace))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(provenance["id"], story.serials[0].as_str());

    let recall = get(&format!("{serial_path}?linkType=gs1:recallStatus"), "*/*").await;
    assert_eq!(recall.status(), StatusCode::TEMPORARY_REDIRECT);
    let status: Value = reqwest::get(to(&recall))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["recalled"], true, "S1 is made from recalled R2");
    assert_eq!(status["recall"]["recallId"], "RC-2026-042");

    let epcis = get(&format!("{serial_path}?linkType=gs1:epcis"), "*/*").await;
    assert_eq!(epcis.status(), StatusCode::TEMPORARY_REDIRECT);
    assert!(to(&epcis).contains("/v1/identifiers/"));

    assert_eq!(
        problem(&format!("{serial_path}?linkType=gs1:pip")).await,
        (StatusCode::NOT_FOUND, "link-type-not-found".to_owned())
    );

    // The linkset, by linkType=all or by Accept.
    for (url, accept) in [
        (format!("{serial_path}?linkType=all"), "text/html"),
        (serial_path.clone(), "application/linkset+json"),
    ] {
        let response = get(&url, accept).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/linkset+json");
        let linkset: Value = response.json().await.unwrap();
        let set = &linkset["linkset"][0];
        assert_eq!(set["anchor"], serial_path.as_str());
        for rel in ["defaultLink", "traceability", "recallStatus", "epcis"] {
            assert!(
                set[format!("https://gs1.org/voc/{rel}")][0]["href"].is_string(),
                "{rel}"
            );
        }
    }

    let resolver: Value = reqwest::get(format!("{base}/.well-known/gs1resolver"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resolver["resolverRoot"], base.as_str());
    assert!(
        resolver["supportedPrimaryKeys"]
            .as_array()
            .unwrap()
            .contains(&Value::from("01"))
    );
    node.shutdown().await;
}

/// Decodes a PNG QR code with zbarimg (Debian's zbar-tools).
fn zbar(png: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("qr.png");
    std::fs::write(&path, png).expect("write png");
    let out = std::process::Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&path)
        .output()
        .expect("zbarimg is installed (apt-get install zbar-tools; .ci/run does)");
    assert!(out.status.success(), "zbarimg failed: {out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim_end()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_codes_decode_to_the_nodes_digital_link() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let base = node.url();
    let f = gtin(3);
    for path in [format!("/01/{f}/21/1"), format!("/01/{GTIN}/10/R1")] {
        let png = get(&format!("{base}/qr{path}?format=png"), "*/*").await;
        assert_eq!(png.status(), StatusCode::OK);
        assert_eq!(png.headers()[CONTENT_TYPE], "image/png");
        let bytes = png.bytes().await.unwrap();
        assert_eq!(zbar(&bytes), format!("{base}{path}"));

        let svg = get(&format!("{base}/qr{path}"), "*/*").await;
        assert_eq!(svg.headers()[CONTENT_TYPE], "image/svg+xml");
        assert!(svg.text().await.unwrap().contains("<svg"));
    }
    // A non-canonical QR request redirects; an invalid one is refused.
    let redirect = get(&format!("{base}/qr/01/{}/10/R1", &GTIN[1..]), "*/*").await;
    assert_eq!(redirect.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        redirect.headers()[LOCATION],
        format!("/qr/01/{GTIN}/10/R1").as_str()
    );
    let (status, kind) = {
        let r = get(&format!("{base}/qr/01/{GTIN}/21/A%20B?format=png"), "*/*").await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        (status, body["type"].as_str().unwrap().to_owned())
    };
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(kind.ends_with("invalid-digital-link"));
    let bad_format = get(&format!("{base}/qr/01/{GTIN}/10/R1?format=gif"), "*/*").await;
    assert_eq!(bad_format.status(), StatusCode::BAD_REQUEST);
    node.shutdown().await;
}
