//! The analytics export read by tools that are not ours. A real node holds
//! the public-edge story (lots, inspections with a private measurement, a
//! temperature excursion, shipments, a recall); its projection is queried
//! through `POST /v1/sql` and exported per org, and pyarrow and DuckDB
//! (from PyPI, in a venv `scripts/analytics-readers` makes) read each
//! export. Row counts and sample values must match what the node's API
//! shows that org, and an edited file must fail the manifest check.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{Consortium, client_as, http_as, public_story};
use lotline_analytics::export::Target;
use lotline_core::api::AttestationSummary;
use lotline_node::analytics;
use serde_json::{Value, json};

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

    // The projection's height and lag are on /metrics (operator only).
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", node.url()))
        .bearer_auth(&c.operator_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gauge = |name: &str| -> u64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{metrics}"));
        line[name.len() + 1..].parse().unwrap()
    };
    let (height, projected) = (
        gauge("lotline_store_height"),
        gauge("lotline_analytics_height"),
    );
    assert!(
        projected > 0 && projected <= height,
        "{projected} of {height}"
    );
    assert_eq!(gauge("lotline_analytics_lag_blocks"), height - projected);
    assert!(gauge("lotline_analytics_rows") >= committed);

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

    heavy_queries_leave_the_api_answering(&c, &node).await;

    let data_dir = c.config.data_dir.clone();
    node.shutdown().await;

    // Export per org; read each export with pyarrow and DuckDB.
    let out = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/read_export.py");
    for org in &orgs {
        let to = out.path().join(org);
        analytics::cli::export(
            &data_dir,
            Some(&c.genesis_path),
            &Target::Dir(to.clone()),
            Some(org),
        )
        .unwrap();
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
            // Hive-partitioned by the UTC month of the event time.
            assert!(
                row["event_time"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{}-", row["event_month"].as_str().unwrap())),
                "{row}"
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
    // The same exports in an S3-compatible object store.
    s3_exports_match_folder_exports(&venv, &data_dir, &c.genesis_path, out.path()).await;

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

/// Goal: a heavy query does not stall the API's request handling (SQL
/// runs on a runtime of its own, `Analytics::run`). Method: every query
/// slot (`QUERIES_MAX`) holds a query that cannot finish before its time
/// limit (a recursive count to 4 billion, one row per step, no memory);
/// while both run, the API answers `/health`, a read of the chain and
/// `/metrics` (which counts them running). Then each query ends as a
/// `sql-limit` refusal naming the time limit, not a crash.
async fn heavy_queries_leave_the_api_answering(c: &Consortium, node: &lotline_node::Node) {
    let spin = "WITH RECURSIVE spin(i) AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM spin WHERE i < 4000000000) SELECT max(i) AS i FROM spin";
    let heavy: Vec<_> = (0..analytics::QUERIES_MAX)
        .map(|_| {
            let request = http_as(c, "regulator")
                .post(format!("{}/v1/sql", node.url()))
                .json(&json!({ "sql": spin }))
                .send();
            tokio::spawn(request)
        })
        .collect();
    let running = || async {
        let metrics = reqwest::Client::new()
            .get(format!("{}/metrics", node.url()))
            .bearer_auth(&c.operator_token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("lotline_analytics_queries_running "))
            .map(|v| v.parse::<usize>().unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while running().await != Some(analytics::QUERIES_MAX) {
        assert!(
            Instant::now() < deadline,
            "the heavy queries never ran together"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = reqwest::get(format!("{}/health", node.url()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let head = client_as(c, node, "supplier").head().await.unwrap();
    assert!(head.height > 0);
    assert_eq!(running().await, Some(analytics::QUERIES_MAX));
    assert!(
        heavy.iter().all(|q| !q.is_finished()),
        "the API answered only after a heavy query ended"
    );
    for query in heavy {
        let refused = query.await.unwrap().unwrap();
        assert_eq!(refused.status(), 422);
        let problem: Value = refused.json().await.unwrap();
        assert!(
            problem["type"].as_str().unwrap().ends_with("sql-limit")
                && problem["detail"].as_str().unwrap().contains("longer than"),
            "{problem}"
        );
    }
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
    analytics::cli::verify(&Target::Dir(dir.to_owned())) == std::process::ExitCode::SUCCESS
}

/// moto's S3-compatible server (PyPI, in the readers' venv) on a free
/// local port; stopped when dropped.
struct MotoServer {
    child: std::process::Child,
    endpoint: String,
}

impl MotoServer {
    fn start(venv: &Path) -> MotoServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("moto_server from the readers' venv (scripts/analytics-readers)");
        // Werkzeug names the port it bound: "Running on http://127.0.0.1:N".
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let endpoint = loop {
            let line = lines
                .next()
                .expect("moto_server exited before listening")
                .unwrap();
            if let Some(at) = line.find("http://127.0.0.1:") {
                break line[at..].trim().to_owned();
            }
        };
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        MotoServer { child, endpoint }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Goal: `lotline export --to s3://...` writes the layout a folder export
/// has, byte for byte, and a reader that is not ours finds it there.
/// Method: a real S3-compatible server (moto); export the regulator's, the
/// supplier's and the full view to it through the CLI's code; compare each
/// manifest with the folder export's, list and read the objects with
/// pyarrow's own S3 client, verify in place, then tamper with an object.
async fn s3_exports_match_folder_exports(
    venv: &Path,
    data_dir: &Path,
    genesis: &Path,
    folders: &Path,
) {
    let moto = MotoServer::start(venv);
    let bucket = "lotline-exports";
    let created = reqwest::Client::new()
        .put(format!("{}/{bucket}", moto.endpoint))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{created:?}");
    // Credentials as an operator's environment holds them; moto accepts any.
    let secret = "lotline-test-secret-0123456789";
    let env: Vec<(String, String)> = [
        ("AWS_ACCESS_KEY_ID", "lotline-test-key"),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into();
    let target = |prefix: &str| {
        Target::parse(&format!("s3://{bucket}/exports/{prefix}"), env.clone()).unwrap()
    };
    // The CLI's code runs its own runtime: off this one.
    let blocking = |work: Box<dyn FnOnce() + Send>| tokio::task::spawn_blocking(work);

    for (name, org) in [
        ("regulator", Some("regulator")),
        ("supplier", Some("supplier")),
        ("all", None),
    ] {
        let at = target(name);
        assert!(!format!("{at:?}").contains(secret));
        let (dir, to, genesis) = (data_dir.to_owned(), at.clone(), genesis.to_owned());
        blocking(Box::new(move || {
            analytics::cli::export(&dir, Some(&genesis), &to, org).unwrap();
        }))
        .await
        .unwrap();
        let read = std::process::Command::new(venv.join("bin/python"))
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/read_s3_export.py"))
            .arg(at.to_string())
            .envs(env.iter().cloned())
            .output()
            .unwrap();
        assert!(
            read.status.success(),
            "{}",
            String::from_utf8_lossy(&read.stderr)
        );
        let read: Value = serde_json::from_slice(&read.stdout).unwrap();
        let manifest: lotline_analytics::Manifest =
            serde_json::from_value(read["manifest"].clone()).unwrap();
        // The folder export of the same view (the projection itself for
        // everyone): the same files, hashes and row counts.
        let local = match org {
            Some(org) => folders.join(org),
            None => lotline_node::analytics::dir(data_dir),
        };
        let local_manifest = lotline_analytics::Manifest::load(&local).unwrap().unwrap();
        assert_eq!(manifest.files, local_manifest.files, "{name}");
        let mut keys: Vec<String> = manifest.files.iter().map(|f| f.path.clone()).collect();
        keys.push("manifest.json".into());
        keys.sort();
        assert_eq!(
            read["keys"],
            json!(keys),
            "{name}: the objects are the files and the manifest"
        );
        for table in lotline_analytics_tables() {
            let table = lotline_analytics::Table::parse(table).unwrap();
            assert_eq!(
                read["rows"][table.name()],
                json!(manifest.rows_of(table)),
                "{name} {}",
                table.name()
            );
        }
        let (to, ok) = (
            at.clone(),
            std::sync::Arc::new(std::sync::Mutex::new(false)),
        );
        let result = ok.clone();
        blocking(Box::new(move || {
            *result.lock().unwrap() =
                analytics::cli::verify(&to) == std::process::ExitCode::SUCCESS;
        }))
        .await
        .unwrap();
        assert!(*ok.lock().unwrap(), "{name}: export verify s3://");
    }

    // A second export into a used prefix is refused; an edited object
    // fails the check in place.
    let at = target("supplier");
    let Target::S3(location) = at.clone() else {
        unreachable!()
    };
    let (dir, genesis) = (data_dir.to_owned(), genesis.to_owned());
    let again = tokio::task::spawn_blocking({
        let at = at.clone();
        move || analytics::cli::export(&dir, Some(&genesis), &at, Some("supplier"))
    })
    .await
    .unwrap();
    assert!(format!("{:#}", again.unwrap_err()).contains("not empty"));
    let manifest = lotline_analytics::Manifest::load(&folders.join("supplier"))
        .unwrap()
        .unwrap();
    let victim = &manifest.files[0].path;
    let mut bytes = std::fs::read(folders.join("supplier").join(victim)).unwrap();
    let at_byte = bytes.len() / 2;
    bytes[at_byte] ^= 1;
    location.put(victim, bytes).await.unwrap();
    let verified = lotline_analytics::remote::verify(&location).await.unwrap();
    assert!(
        matches!(&verified.mismatches[..], [lotline_analytics::manifest::Mismatch::Hash { path, .. }] if path == victim),
        "{:?}",
        verified.mismatches
    );
}
