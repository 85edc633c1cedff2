//! The consumer provenance page and the regulator reports on a running node.
//!
//! The page of serial S1 shows product and lot, its raw materials and their
//! supplier, production and inspection steps, the cold-chain excursion, the
//! recall of R2 in a banner, and who certified the records; in English and
//! Chinese (Accept-Language and `?lang=`). The strings the chain holds but
//! the public must not see (a private measurement, a purchase order, an
//! invoice, a customer's GLN) are absent from the page, its JSON and its
//! proof bundle. Headless Chromium renders it at 375 px and keeps a
//! screenshot under `target/artifacts/`.

use crate::support;

use crate::support::browser::{artifacts, chromium, png_size};
use crate::support::public_story::{
    self, CUSTOMER_GLN, INVOICE, PRIVATE_MEASUREMENT, PURCHASE_ORDER,
};
use crate::support::{Consortium, client};
use lotline_core::Statement;
use lotline_core::bundle::ProofBundle;
use reqwest::header::{ACCEPT_LANGUAGE, CONTENT_TYPE};
use serde_json::Value;

fn assert_public(text: &str, what: &str) {
    for secret in [
        PRIVATE_MEASUREMENT,
        "12.345",
        PURCHASE_ORDER,
        INVOICE,
        CUSTOMER_GLN,
    ] {
        assert!(!text.contains(secret), "{what} leaks {secret:?}");
    }
}

async fn page(url: &str, accept_language: &str) -> String {
    let response = reqwest::Client::new()
        .get(url)
        .header(ACCEPT_LANGUAGE, accept_language)
        .send()
        .await
        .expect("page");
    assert_eq!(response.status(), 200, "{url}");
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    response.text().await.expect("html")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provenance_page_shows_the_public_story_in_two_languages() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let story = public_story::load(&consortium, &client(&node)).await;
    let base = node.url();
    let s1 = story.serials[0].replace("https://id.gs1.org", &base);

    let en = page(&format!("{s1}?lang=en"), "zh-CN,zh;q=0.9").await;
    for shown in [
        "RECALLED",
        "RC-2026-042",
        "supplier reported contamination",
        "LOT R1",
        "LOT R2",
        "LOT F1",
        "Jiangsu Polymer Materials Co.",
        "tensile strength",
        "within spec",
        "final functional test",
        "measurements not public",
        "Temperature excursion",
        "9.5",
        "Shenzhen Precision Devices Ltd.",
        "/public/v1/proof/",
    ] {
        assert!(en.contains(shown), "the English page shows {shown:?}");
    }
    assert!(en.contains("<html lang=\"en\">"));
    assert_public(&en, "the page");

    let zh = page(&s1, "zh-CN,zh;q=0.9,en;q=0.8").await;
    for shown in [
        "<html lang=\"zh\">",
        "已召回",
        "关键原料来源",
        "温度超限",
        "已验证",
    ] {
        assert!(zh.contains(shown), "the Chinese page shows {shown:?}");
    }
    assert_public(&zh, "the Chinese page");

    // A lot that nothing recalled says so, and has no excursion of its own.
    let r1 = story.r1.replace("https://id.gs1.org", &base);
    let r1_page = page(&format!("{r1}?lang=en"), "en").await;
    assert!(r1_page.contains("No recall affects this product."));
    assert!(!r1_page.contains("id=\"recall\""));

    // The JSON behind the page carries the same projection.
    let json = reqwest::get(format!(
        "{base}/public/v1/provenance/{}",
        lotline_sdk::encode_segment(&story.serials[0])
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_public(&json, "the provenance JSON");
    let view: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(view["coldChain"]["excursion"], true);
    assert_eq!(view["recall"]["class"], "I");

    // The public proof bundle: every receipt verifies offline, and the
    // records with private fields are withheld, not published.
    let bundle_bytes = reqwest::get(format!(
        "{base}/public/v1/proof/{}",
        lotline_sdk::encode_segment(&story.serials[0])
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    let bundle = ProofBundle::from_json(&bundle_bytes).expect("a proof bundle");
    let report = lotline_sdk::verify_bundle(&bundle, &consortium.genesis);
    assert!(report.all_ok(), "{report:?}");
    assert!(bundle.receipts.len() >= 5);
    assert!(
        !bundle.withheld.is_empty(),
        "the private inspection is withheld"
    );
    for receipt in &bundle.receipts {
        let payload = String::from_utf8_lossy(&receipt.attestation.payload).into_owned();
        assert_public(&payload, "a public receipt");
        let statement = Statement::from_payload(&receipt.attestation.payload).unwrap();
        assert!(!lotline_node::public::view::discloses_private(&statement));
        assert!(
            lotline_node::access::can_read(
                &consortium.genesis,
                &lotline_node::access::Identity::Anonymous,
                &statement
            ),
            "a public bundle holds only records anonymous callers may read"
        );
    }

    // Headless Chromium at phone width, screenshots kept as artefacts.
    for (lang, expect) in [("zh", "已召回"), ("en", "RECALLED")] {
        let shot = artifacts().join(format!("provenance-{lang}.png"));
        let _ = std::fs::remove_file(&shot);
        let dom = chromium(&format!("{s1}?lang={lang}"), &shot);
        assert!(dom.contains(expect), "Chromium rendered the {lang} page");
        assert!(dom.contains("id=\"recall\""));
        let png = std::fs::read(&shot).expect("screenshot written");
        assert_eq!(png_size(&png).0, 375, "rendered at phone width");
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regulator_reports_cover_a_lot_a_recall_and_an_org_period() {
    let consortium = Consortium::new();
    let node = consortium.start().await;
    let story = public_story::load(&consortium, &client(&node)).await;
    let base = node.url();
    let base = base.as_str();
    // Reports are for roles that read every org's records.
    let anonymous = reqwest::get(format!("{base}/v1/reports/orgs/distributor"))
        .await
        .expect("report");
    assert_eq!(anonymous.status(), 401);
    let supplier = support::http_as(&consortium, "supplier")
        .get(format!("{base}/v1/reports/orgs/distributor"))
        .send()
        .await
        .expect("report");
    assert_eq!(supplier.status(), 403);
    let regulator = support::http_as(&consortium, "regulator");
    let regulator = &regulator;
    let get = |path: String| async move {
        let response = regulator
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("report");
        let status = response.status();
        let kind = response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        (status, kind, response.bytes().await.unwrap().to_vec())
    };
    let f1 = lotline_sdk::encode_segment(&story.f1);

    // A lot: the printable HTML, a CSV row per event, a receipt per event.
    let (status, kind, html) = get(format!("/v1/reports/lots/{f1}")).await;
    assert_eq!(
        (status.as_u16(), kind.as_str()),
        (200, "text/html; charset=utf-8")
    );
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("Lot report") && html.contains("@media print"));
    assert!(
        html.contains(PRIVATE_MEASUREMENT),
        "regulators see private measurements"
    );
    let (_, kind, csv) = get(format!("/v1/reports/lots/{f1}?format=csv")).await;
    assert_eq!(kind, "text/csv; charset=utf-8");
    let csv = String::from_utf8(csv).unwrap();
    let rows = csv.lines().count() - 1;
    assert!(csv.starts_with("attestation,height,index,org,event_type"));
    let (_, _, json) = get(format!("/v1/reports/lots/{f1}?format=json")).await;
    let bundle = ProofBundle::from_json(&json).expect("bundle");
    assert_eq!(bundle.receipts.len(), rows, "one receipt per CSV row");
    assert!(rows >= 10, "F1's history and its future: {rows} events");
    for receipt in &bundle.receipts {
        assert!(csv.contains(&receipt.attestation.id().to_string()));
    }
    let report = lotline_sdk::verify_bundle(&bundle, &consortium.genesis);
    assert!(report.all_ok());

    // A tampered bundle: the SDK names the one receipt that fails.
    let mut tampered = bundle.clone();
    tampered.receipts[2].leaf_index += 1;
    let report = lotline_sdk::verify_bundle(&tampered, &consortium.genesis);
    let failed: Vec<usize> = report.failures().map(|v| v.index).collect();
    assert_eq!(failed, vec![2]);

    // A recall: every affected unit, with the order and the links as events.
    let (status, _, recall) = get(format!("/v1/reports/recalls/{}", story.recall_order)).await;
    assert_eq!(status, 200);
    let recall = String::from_utf8(recall).unwrap();
    for unit in story
        .serials
        .iter()
        .chain(&story.cases)
        .chain([&story.pallet, &story.m1])
    {
        assert!(
            recall.contains(unit.as_str()),
            "the recall report lists {unit}"
        );
    }
    assert!(recall.contains(&story.recall_order.to_string()));
    let (_, _, recall_json) = get(format!(
        "/v1/reports/recalls/{}?format=json",
        story.recall_order
    ))
    .await;
    let recall_bundle = ProofBundle::from_json(&recall_json).unwrap();
    assert!(lotline_sdk::verify_bundle(&recall_bundle, &consortium.genesis).all_ok());

    // An org over a period: the distributor's events from 10:00 on.
    let (_, _, csv) = get("/v1/reports/orgs/distributor?format=csv&from=2026-03-02T10:00:00Z&until=2026-03-03T00:00:00Z".to_owned()).await;
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(
        csv.lines().count() - 1,
        3,
        "receiving, storing and shipping: {csv}"
    );
    assert!(csv.contains(INVOICE) || csv.contains("shipping"));

    // Bad input gets a specific 4xx.
    for (path, status, slug) in [
        (
            "/v1/reports/lots/not%20a%20uri".to_owned(),
            422,
            "invalid-identifier",
        ),
        (
            format!("/v1/reports/lots/{f1}?format=pdf"),
            400,
            "bad-query",
        ),
        ("/v1/reports/recalls/xyz".to_owned(), 400, "bad-id"),
        (
            format!(
                "/v1/reports/recalls/{}",
                bundle.receipts[0].attestation.id()
            ),
            422,
            "not-a-recall",
        ),
        ("/v1/reports/orgs/nobody".to_owned(), 404, "not-found"),
        (
            "/v1/reports/orgs/supplier?from=yesterday".to_owned(),
            422,
            "bad-query",
        ),
        (
            "/v1/reports/orgs/supplier?from=2026-03-03T00:00:00Z&until=2026-03-02T00:00:00Z"
                .to_owned(),
            422,
            "bad-query",
        ),
    ] {
        let (got, kind, body) = get(path.clone()).await;
        assert_eq!(got.as_u16(), status, "{path}");
        assert_eq!(kind, "application/problem+json", "{path}");
        let problem: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            problem["type"].as_str().unwrap().ends_with(slug),
            "{path}: {problem}"
        );
    }
    node.shutdown().await;
}
