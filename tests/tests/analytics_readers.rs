//! The analytics export read by tools that are not ours. A real node holds
//! the public-edge story (lots, inspections with a private measurement, a
//! temperature excursion, shipments, a recall); its projection is queried
//! through `POST /v1/sql` and exported per org, and pyarrow and DuckDB
//! (from PyPI, in a venv `scripts/analytics-readers` makes) read each
//! export. Row counts and sample values must match what the node's API
//! shows that org, and an edited file must fail the manifest check.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lotline_core::api::AttestationSummary;
use lotline_node::analytics;
use serde_json::{Value, json};
use support::{Consortium, client_as, http_as, public_story};

/// The venv with pyarrow and duckdb: `$LOTLINE_ANALYTICS_VENV` if it works,
/// else made by `scripts/analytics-readers`. Never skipped: without it the
/// test fails.
fn readers_venv() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/analytics-readers");
    let out = std::process::Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/analytics-readers failed (python3-venv and PyPI are needed): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Every attestation `org` reads through the API: the listing of every
/// org's records, page by page, as `org`.
async fn api_visible(
    c: &Consortium,
    node: &lotline_node::Node,
    org: &str,
) -> BTreeMap<String, AttestationSummary> {
    let client = client_as(c, node, org);
    let mut out = BTreeMap::new();
    for issuer in c.genesis.orgs() {
        let mut after: Option<String> = None;
        loop {
            let page = client
                .by_org(&issuer.id, Some(100), after.as_deref())
                .await
                .unwrap();
            for item in page.items {
                out.insert(item.id.to_string(), item);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    out
}

async fn sql(
    c: &Consortium,
    node: &lotline_node::Node,
    org: &str,
    body: Value,
) -> reqwest::Response {
    http_as(c, org)
        .post(format!("{}/v1/sql", node.url()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The JSON answer (`columns`, `rows`, ...) to `text` as `org`.
async fn sql_answer(c: &Consortium, node: &lotline_node::Node, org: &str, text: &str) -> Value {
    let response = sql(c, node, org, json!({"sql": text})).await;
    assert_eq!(response.status(), 200, "{text}");
    response.json().await.unwrap()
}

async fn sql_rows(c: &Consortium, node: &lotline_node::Node, org: &str, text: &str) -> Vec<Value> {
    sql_answer(c, node, org, text).await["rows"]
        .as_array()
        .unwrap()
        .clone()
}

/// Goal: see the module doc. Method: one real node, the API as the
/// reference, pyarrow and DuckDB as the readers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_read_by_pyarrow_and_duckdb_match_the_api() {
    let venv = readers_venv();
    let c = Consortium::new();
    let node = c.start().await;
    let writer = client_as(&c, &node, "manufacturer");
    public_story::load(&c, &writer).await;
    let committed = writer.head().await.unwrap().attestations;

    // The follower catches up off the commit path: wait for it (generous:
    // other builds share the machine).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = sql_rows(&c, &node, "regulator", "SELECT count(*) AS n FROM events").await;
        if rows[0]["n"] == json!(committed) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "projection stuck at {rows:?} of {committed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every org sees through SQL exactly what it sees through the API.
    let orgs: Vec<String> = c.genesis.orgs().iter().map(|o| o.id.clone()).collect();
    let mut visible = BTreeMap::new();
    for org in &orgs {
        let api = api_visible(&c, &node, org).await;
        let rows = sql_rows(&c, &node, org, "SELECT attestation_id FROM events").await;
        let seen: BTreeSet<String> = rows
            .iter()
            .map(|r| r["attestation_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(seen, api.keys().cloned().collect::<BTreeSet<_>>(), "{org}");
        visible.insert(org.clone(), api);
    }
    assert!(visible["supplier"].len() < visible["regulator"].len());

    // Formats and refusals over HTTP.
    let csv = sql(&c, &node, "regulator", json!({"sql": "SELECT org, count(*) AS n FROM events GROUP BY org ORDER BY org", "format": "csv"})).await;
    assert_eq!(csv.headers()["content-type"], "text/csv");
    assert!(csv.text().await.unwrap().starts_with("org,n\n"));
    let arrow = http_as(&c, "regulator")
        .post(format!("{}/v1/sql", node.url()))
        .header("accept", "application/vnd.apache.arrow.stream")
        .json(&json!({"sql": "SELECT * FROM lineage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(arrow.status(), 200);
    assert_eq!(
        arrow.headers()["content-type"],
        "application/vnd.apache.arrow.stream"
    );
    for (text, reason) in [
        ("DELETE FROM events", "sql-not-read-only"),
        ("SELECT * FROM blocks", "sql-unknown-table"),
        ("SELECT * FROM (", "sql-syntax"),
    ] {
        let refused = sql(&c, &node, "supplier", json!({"sql": text})).await;
        assert_eq!(refused.status(), 422, "{text}");
        assert_eq!(
            refused.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = refused.json().await.unwrap();
        assert!(
            problem["type"].as_str().unwrap().ends_with(reason),
            "{text}: {problem}"
        );
    }
    let anonymous = reqwest::Client::new()
        .post(format!("{}/v1/sql", node.url()))
        .json(&json!({"sql": "SELECT 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // The inspection that states the private measurement, as the API's
    // full reader finds it.
    let private = sql_rows(
        &c,
        &node,
        "regulator",
        &format!(
            "SELECT DISTINCT attestation_id FROM measurements WHERE name = '{}'",
            public_story::PRIVATE_MEASUREMENT
        ),
    )
    .await;
    assert_eq!(private.len(), 1, "{private:?}");
    let private_id = private[0]["attestation_id"].as_str().unwrap().to_owned();

    // The documented queries, answered by DataFusion in the node.
    let queries = doc_queries();
    assert_eq!(queries.len(), 4);
    let mut datafusion = BTreeMap::new();
    for (name, text) in &queries {
        datafusion.insert(name.clone(), sql_answer(&c, &node, "regulator", text).await);
    }

    let data_dir = c.config.data_dir.clone();
    node.shutdown().await;

    // Export per org; read each export with pyarrow and DuckDB.
    let out = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/read_export.py");
    for org in &orgs {
        let to = out.path().join(org);
        analytics::cli::export(&data_dir, None, &to, Some(org)).unwrap();
        let run = std::process::Command::new(venv.join("bin/python"))
            .arg(&script)
            .arg(&to)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let read: Value = serde_json::from_slice(&run.stdout).unwrap();
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(to.join("manifest.json")).unwrap()).unwrap();
        for table in lotline_analytics_tables() {
            let listed: u64 = manifest["files"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["table"] == table)
                .map(|f| f["rows"].as_u64().unwrap())
                .sum();
            assert_eq!(
                read["pyarrow"][table],
                json!(listed),
                "{org} {table} (pyarrow)"
            );
            assert_eq!(
                read["duckdb"][table],
                json!(listed),
                "{org} {table} (duckdb)"
            );
        }
        // Sample values: every event row matches the API's summary of it.
        let api = &visible[org];
        let events = read["events"].as_array().unwrap();
        assert_eq!(events.len(), api.len(), "{org}");
        for row in events {
            let id = row["attestation_id"].as_str().unwrap();
            let summary = api
                .get(id)
                .unwrap_or_else(|| panic!("{org} reads {id} only in the export"));
            assert_eq!(row["org"], json!(summary.org));
            assert_eq!(row["event_type"], json!(summary.event_type));
            assert_eq!(row["height"], json!(summary.height));
            assert!(
                summary
                    .event_time
                    .starts_with(row["event_time"].as_str().unwrap()),
                "{row} vs {}",
                summary.event_time
            );
        }
        // The private measurement is in an export only if the org reads
        // the inspection that states it.
        let has_private = read["measurements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == public_story::PRIVATE_MEASUREMENT);
        assert_eq!(has_private, api.contains_key(&private_id), "{org}");
        assert!(analytics_verify_clean(&to), "{org}");
    }
    // The regulator reads the excursion.
    let regulator = out.path().join("regulator");
    let queries_file = out.path().join("queries.json");
    let map: BTreeMap<&String, &String> = queries.iter().map(|(n, t)| (n, t)).collect();
    std::fs::write(&queries_file, serde_json::to_vec(&map).unwrap()).unwrap();
    let run = std::process::Command::new(venv.join("bin/python"))
        .arg(&script)
        .arg(&regulator)
        .arg(&queries_file)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let read: Value = serde_json::from_slice(&run.stdout).unwrap();
    // The documented queries give DuckDB the answers DataFusion gave: the
    // same rows, and the same values where the first column is a string.
    // (The story is small: its two spec-limited measurements are equal, so
    // Cpk has no row; node/tests/analytics.rs runs every query on the
    // generated story, where each finds rows.)
    let answered = datafusion
        .values()
        .filter(|a| !a["rows"].as_array().unwrap().is_empty())
        .count();
    assert!(answered >= 3, "{datafusion:?}");
    for (name, answer) in &datafusion {
        let rows = answer["rows"].as_array().unwrap();
        let first = answer["columns"][0]["name"].as_str().unwrap();
        let duck = read["queries"][name].as_array().unwrap();
        assert_eq!(
            duck.len(),
            rows.len(),
            "{name}: duckdb {duck:?}, datafusion {rows:?}"
        );
        for (d, f) in duck.iter().zip(rows) {
            if let Some(text) = f[first].as_str() {
                assert_eq!(d[0].as_str(), Some(text), "{name}");
            }
        }
    }
    let high = read["sensor_max"]["Temperature"]
        .as_f64()
        .expect("temperature readings");
    assert!(
        high > 8.0,
        "the story's excursion is above 8 CEL, read {high}"
    );

    // An edited file fails the manifest check.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(regulator.join("manifest.json")).unwrap()).unwrap();
    let victim = regulator.join(manifest["files"][0]["path"].as_str().unwrap());
    let mut bytes = std::fs::read(&victim).unwrap();
    let at = bytes.len() / 3;
    bytes[at] = bytes[at].wrapping_add(1);
    std::fs::write(&victim, bytes).unwrap();
    assert!(!analytics_verify_clean(&regulator));
}

fn lotline_analytics_tables() -> [&'static str; 6] {
    [
        "events",
        "identifiers",
        "measurements",
        "sensor_reports",
        "lineage",
        "custody",
    ]
}

/// The `-- query:` blocks of docs/analytics.md, by name.
fn doc_queries() -> Vec<(String, String)> {
    let doc = include_str!("../../docs/analytics.md");
    doc.split("```sql\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .filter_map(|text| {
            let name = text.lines().next()?.strip_prefix("-- query: ")?;
            Some((name.to_owned(), text.to_owned()))
        })
        .collect()
}

fn analytics_verify_clean(dir: &Path) -> bool {
    analytics::cli::verify(dir) == std::process::ExitCode::SUCCESS
}
