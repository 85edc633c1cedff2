//! The analytics projection over a real store: the generated demo story
//! signed and committed through the real commit path (block log, sled),
//! projected by the follower's catch-up, then checked against the store,
//! the API's visibility rule, SQL refusals, restart, compaction, exports
//! and the manifest check.

#![cfg(feature = "analytics")]

use std::path::Path;
use std::sync::Arc;

use lotline_analytics::export::{self, Audience, Target};
use lotline_analytics::follower::catch_up;
use lotline_analytics::manifest::{self, Mismatch};
use lotline_analytics::projection::Compaction;
use lotline_analytics::sql::{self, Limits, SqlError, Visibility};
use lotline_analytics::{Catalog, Manifest, Projection, Table};
use lotline_core::statement::Statement;
use lotline_genesis::governance::{Change, Membership};
use lotline_genesis::{Genesis, OrgFile, Role};
use lotline_node::access::{self, Caller, Identity};
use lotline_node::analytics::StoreSource;
use lotline_node::bulk_load;
use lotline_node::store::StoreReader;
use lotline_node::store::index::Position;
use lotline_sim::workload::Scale;

/// Every committed statement, in chain order.
fn statements(reader: &StoreReader, height: u64) -> Vec<Statement> {
    let mut out = Vec::new();
    for h in 1..=height {
        let meta = reader.block(h).unwrap().unwrap();
        for index in 0..meta.ids.len() as u32 {
            let (_, stored) = reader
                .attestation_at(Position { height: h, index })
                .unwrap()
                .unwrap();
            out.push(Statement::from_payload(&stored.envelope.payload).unwrap());
        }
    }
    out
}

fn caller(genesis: &Genesis, org: &str) -> Identity {
    Identity::Caller(Caller {
        org: org.into(),
        role: genesis.org(org).unwrap().role,
        credential: format!("{org}-test"),
        operator: false,
    })
}

/// What `org` reads by the API's rule under `rules`, as SQL and exports
/// take it (the node's `POST /v1/sql` builds the same).
fn view(rules: &Arc<Genesis>, org: &str) -> Visibility {
    if access::reads_everything(rules, &caller(rules, org)) {
        return Visibility::All;
    }
    org_view(rules, org)
}

/// [`view`] without the shortcut for full readers (an export names its
/// org).
fn org_view(rules: &Arc<Genesis>, org: &str) -> Visibility {
    let identity = caller(rules, org);
    let rules = rules.clone();
    Visibility::org(org, move |facts| {
        access::can_read_facts(&rules, &identity, facts)
    })
}

async fn count(catalog: &Catalog, who: &Visibility, sql_text: &str) -> i64 {
    let answer = sql::query(catalog, who, sql_text, Limits::default())
        .await
        .unwrap_or_else(|e| panic!("{sql_text}: {e}"));
    let batch = &answer.batches[0];
    batch
        .column(0)
        .as_any()
        .downcast_ref::<lotline_analytics::arrow::array::Int64Array>()
        .unwrap()
        .value(0)
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    genesis: Arc<Genesis>,
    reader: StoreReader,
    height: u64,
    events: u64,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let loaded = bulk_load::load(&tmp.path().join("chain"), Scale::demo(), 8, |_, _| {}).unwrap();
    let dir = tmp.path().join("analytics");
    Fixture {
        dir,
        genesis: Arc::new(loaded.genesis),
        reader: loaded.store.reader(),
        height: loaded.store.height(),
        events: loaded.events,
        _tmp: tmp,
    }
}

fn project(f: &Fixture) -> Manifest {
    let mut projection = Projection::open(&f.dir, f.genesis.clone()).unwrap();
    catch_up(&mut projection, &StoreSource(f.reader.clone()), None).unwrap();
    projection.manifest().clone()
}

/// Goal: the projection holds one `events` row per committed attestation,
/// every table has rows, and each org's view holds exactly the records
/// the API's visibility rule (`access::can_read`) shows that org.
/// Method: project the demo story, count through SQL per org, and count
/// the store's statements with `can_read`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_matches_store_and_read_policy() {
    let f = fixture();
    let manifest = project(&f);
    assert_eq!(manifest.height, f.height);
    assert_eq!(manifest.rows_of(Table::Events), f.events);
    for table in Table::ALL {
        assert!(manifest.rows_of(table) > 0, "{} is empty", table.name());
    }
    let verified = manifest::verify(&f.dir).unwrap();
    assert_eq!(verified.mismatches, vec![]);

    let catalog = Catalog::new(f.dir.clone(), manifest.clone());
    let all = count(&catalog, &Visibility::All, "SELECT count(*) FROM events").await;
    assert_eq!(all as u64, f.events);

    let statements = statements(&f.reader, f.height);
    let mut some_hidden = false;
    for org in f.genesis.orgs() {
        let identity = caller(&f.genesis, &org.id);
        let visible = statements
            .iter()
            .filter(|s| access::can_read(&f.genesis, &identity, s))
            .count() as i64;
        let who = view(&f.genesis, &org.id);
        let seen = count(&catalog, &who, "SELECT count(*) FROM events").await;
        assert_eq!(seen, visible, "org {}", org.id);
        // The other tables are filtered by the same rule: no row of an
        // event the org cannot read.
        let leaked = count(
            &catalog,
            &who,
            "SELECT count(*) FROM measurements m WHERE m.attestation_id NOT IN (SELECT attestation_id FROM events)",
        )
        .await;
        assert_eq!(leaked, 0, "org {}", org.id);
        some_hidden |= visible < all;
    }
    assert!(
        some_hidden,
        "the demo read policy hides something from someone"
    );

    // The rule is asked when the query runs, with the membership in force:
    // an org voted in after the rows were projected reads by its role, and
    // a read-policy change by vote reaches rows already written.
    let newco_key = lotline_core::SigningKey::from_seed(&[9; 32]).public_key();
    let added = Membership::genesis(f.genesis.clone())
        .apply(
            &Change::AddOrg {
                org: OrgFile {
                    id: "newco".into(),
                    name: "New Co".into(),
                    role: Role::Supplier,
                    client_keys: vec![newco_key.to_hex()],
                    encryption_key: None,
                },
            },
            f.height + 1,
        )
        .unwrap();
    let by_rule = |rules: &Arc<Genesis>| {
        let identity = caller(rules, "newco");
        statements
            .iter()
            .filter(|s| access::can_read(rules, &identity, s))
            .count() as i64
    };
    let rules = added.rules_shared();
    let public = by_rule(&rules);
    let seen = count(
        &catalog,
        &view(&rules, "newco"),
        "SELECT count(*) FROM events",
    )
    .await;
    assert_eq!(seen, public, "newco voted in");
    assert!(seen > 0, "newco reads the public records");
    let (write_policy, mut read_policy) = rules.policy_files();
    read_policy.share.push(lotline_genesis::ShareFile {
        from: "*".into(),
        to: vec!["org:newco".into()],
        event_types: None,
        biz_steps: Some(vec!["shipping".into(), "receiving".into()]),
        quality: None,
    });
    let shared = added
        .apply(
            &Change::SetPolicy {
                policy: write_policy,
                read_policy: Some(read_policy),
            },
            f.height + 2,
        )
        .unwrap()
        .rules_shared();
    let more = by_rule(&shared);
    assert!(more > public, "the vote shares shipping with newco");
    let seen = count(
        &catalog,
        &view(&shared, "newco"),
        "SELECT count(*) FROM events",
    )
    .await;
    assert_eq!(seen, more, "newco after the read-policy vote");
    let leaked = count(
        &catalog,
        &view(&shared, "newco"),
        "SELECT count(*) FROM identifiers i WHERE i.attestation_id NOT IN (SELECT attestation_id FROM events)",
    )
    .await;
    assert_eq!(leaked, 0);
    // Not a member: reads like an anonymous caller (public rows only).
    let stranger = Visibility::org("stranger", {
        let rules = shared.clone();
        move |facts| access::can_read_facts(&rules, &Identity::Anonymous, facts)
    });
    let anonymous = statements
        .iter()
        .filter(|s| access::can_read(&shared, &Identity::Anonymous, s))
        .count() as i64;
    assert_eq!(
        count(&catalog, &stranger, "SELECT count(*) FROM events").await,
        anonymous
    );

    // Sample values: the measurement rows are the statements' measurements.
    let measured: usize = statements
        .iter()
        .filter_map(|s| match &s.event.quality {
            Some(lotline_core::epcis::QualityFact::Inspection { measurements, .. }) => {
                Some(measurements.len())
            }
            _ => None,
        })
        .sum();
    assert_eq!(manifest.rows_of(Table::Measurements), measured as u64);
}

/// Goal: every refusal names its reason, and limits hold.
/// Method: one query per refusal over the projected demo story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_refusals_name_their_reason() {
    let f = fixture();
    let catalog = Catalog::new(f.dir.clone(), project(&f));
    let run = |sql_text: &'static str, limits: Limits| {
        let catalog = &catalog;
        async move { sql::query(catalog, &Visibility::All, sql_text, limits).await }
    };
    let d = Limits::default();
    for (text, reason) in [
        ("SELEC * FROM events", "sql-syntax"),
        ("SELECT 1; SELECT 2", "sql-syntax"),
        ("INSERT INTO events VALUES (1)", "sql-not-read-only"),
        ("CREATE TABLE x AS SELECT 1", "sql-not-read-only"),
        (
            "COPY events TO '/tmp/lotline-copy.parquet'",
            "sql-not-read-only",
        ),
        ("DROP TABLE events", "sql-not-read-only"),
        (
            "SET datafusion.execution.batch_size = 1",
            "sql-not-read-only",
        ),
        ("SELECT * FROM blocks", "sql-unknown-table"),
        (
            "SELECT * FROM information_schema.tables",
            "sql-unknown-table",
        ),
        ("SELECT no_such_column FROM events", "sql-invalid"),
    ] {
        let e = run(text, d).await.expect_err(text);
        assert_eq!(e.reason(), reason, "{text}: {e}");
    }
    assert!(!Path::new("/tmp/lotline-copy.parquet").exists());
    let rows = Limits { rows_max: 3, ..d };
    let e = run("SELECT * FROM events", rows)
        .await
        .expect_err("more than 3 rows");
    assert!(
        matches!(&e, SqlError::Limit(m) if m.contains("download it as csv")),
        "{e}"
    );
    // A download is bounded by the answer's memory, not by JSON's rows.
    assert!(Limits::download().rows_max > d.rows_max);
    assert_eq!(Limits::download().answer_bytes_max, d.answer_bytes_max);
    let bytes = Limits {
        answer_bytes_max: 1024,
        ..Limits::download()
    };
    let e = run("SELECT * FROM identifiers", bytes)
        .await
        .expect_err("identifiers in 1 KiB");
    assert!(
        matches!(&e, SqlError::Limit(m) if m.contains("bytes;")),
        "{e}"
    );
    let scan = Limits {
        scan_bytes_max: 1,
        ..d
    };
    assert!(matches!(
        run("SELECT count(*) FROM events", scan).await,
        Err(SqlError::Limit(_))
    ));
    let memory = Limits {
        memory_bytes_max: 1024,
        ..d
    };
    let e = run(
        "SELECT a.identifier FROM identifiers a JOIN identifiers b ON a.identifier = b.identifier ORDER BY 1",
        memory,
    )
    .await
    .expect_err("a join and sort in 1 KiB");
    assert!(matches!(e, SqlError::Limit(_)), "{e}");
    // Within the limits, the same kinds of query answer.
    assert!(run("SELECT count(*) FROM events", d).await.is_ok());
}

/// Goal: the projection resumes from its manifest after a restart, drops
/// files a crash left unlisted, and compaction keeps every row.
/// Method: project block by block with a flush each (many small files),
/// plant an orphan, reopen, compact, compare counts and verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_orphans_and_compaction() {
    let f = fixture();
    let source = StoreSource(f.reader.clone());
    {
        let mut projection = Projection::open(&f.dir, f.genesis.clone()).unwrap();
        use lotline_analytics::Source;
        for h in 1..=f.height / 2 {
            projection.add(&source.block(h).unwrap().unwrap()).unwrap();
            projection.flush().unwrap();
        }
        assert_eq!(projection.height(), f.height / 2);
    }
    let orphan = f
        .dir
        .join("events/event_month=2026-01/part-99999999.parquet");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"torn").unwrap();
    let policy = Compaction {
        fanout: 2,
        ..Compaction::default()
    };
    let mut projection = Projection::open(&f.dir, f.genesis.clone())
        .unwrap()
        .with_compaction(policy);
    assert!(!orphan.exists(), "an unlisted file is removed on open");
    assert_eq!(
        projection.height(),
        f.height / 2,
        "resumes from the manifest"
    );
    let mut merged = 0;
    {
        use lotline_analytics::Source;
        for h in f.height / 2 + 1..=f.height {
            projection.add(&source.block(h).unwrap().unwrap()).unwrap();
            projection.flush().unwrap();
            merged += projection.compact().unwrap();
        }
    }
    assert!(
        merged > 0,
        "flushing every block fills a size tier somewhere"
    );
    // No size tier of any partition is left full.
    let mut tiers = std::collections::BTreeMap::new();
    for file in &projection.manifest().files {
        if let Some(tier) = policy.tier(file.rows) {
            *tiers
                .entry((file.table.clone(), file.month.clone(), tier))
                .or_insert(0) += 1;
        }
    }
    assert!(tiers.values().all(|&n| n < policy.fanout), "{tiers:?}");
    catch_up(&mut projection, &source, None).unwrap();
    assert_eq!(projection.height(), f.height);
    // Reopened, every partition is cold: its small files become one.
    drop(projection);
    let mut projection = Projection::open(&f.dir, f.genesis.clone()).unwrap();
    projection.compact().unwrap();
    projection.delete_retired(std::time::Duration::ZERO);
    let mut per_partition = std::collections::BTreeMap::new();
    for file in &projection.manifest().files {
        *per_partition
            .entry((file.table.clone(), file.month.clone()))
            .or_insert(0) += 1;
    }
    assert!(per_partition.values().all(|&n| n == 1), "{per_partition:?}");
    assert_eq!(projection.manifest().rows_of(Table::Events), f.events);
    assert_eq!(manifest::verify(&f.dir).unwrap().mismatches, vec![]);
    let catalog = Catalog::new(f.dir.clone(), projection.manifest().clone());
    let all = count(
        &catalog,
        &Visibility::All,
        "SELECT count(DISTINCT attestation_id) FROM events",
    )
    .await;
    assert_eq!(all as u64, f.events);

    // A projection of an older layout (here format 2, whose rows carry
    // `readers` judged at projection time; a stray `date=` folder of
    // format 1) is derived data: opening it rebuilds it from block 1.
    drop(projection);
    let old = f.dir.join("events/date=2026-01-01/part-00000001.parquet");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::write(&old, b"old").unwrap();
    let text = std::fs::read_to_string(f.dir.join("manifest.json")).unwrap();
    let text = text.replacen("\"format\": 3", "\"format\": 2", 1);
    std::fs::write(f.dir.join("manifest.json"), text).unwrap();
    let mut projection = Projection::open(&f.dir, f.genesis.clone()).unwrap();
    assert_eq!(projection.height(), 0, "rebuilt from block 1");
    assert!(!f.dir.join("events/date=2026-01-01").exists());
    catch_up(&mut projection, &source, None).unwrap();
    assert_eq!(projection.manifest().rows_of(Table::Events), f.events);
    assert_eq!(manifest::verify(&f.dir).unwrap().mismatches, vec![]);
}

/// Goal: an org's export holds exactly that org's view; the regulator's
/// everything; any edit, removal or addition of a file fails the check.
/// Method: export for every org, compare with SQL per org; then tamper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_follow_the_read_policy_and_verify() {
    let f = fixture();
    let manifest = project(&f);
    let catalog = Catalog::new(f.dir.clone(), manifest.clone());
    let out = tempfile::tempdir().unwrap();
    for org in f.genesis.orgs() {
        let to = out.path().join(&org.id);
        let exported = export::export(
            &f.dir,
            &manifest,
            &org_view(&f.genesis, &org.id),
            &Target::Dir(to.clone()),
            |_| {},
        )
        .unwrap();
        assert_eq!(exported.reader, org.id);
        let who = view(&f.genesis, &org.id);
        for table in Table::ALL {
            let sql_text = format!("SELECT count(*) FROM {}", table.name());
            let seen = count(&catalog, &who, &sql_text).await;
            assert_eq!(
                exported.rows_of(table),
                seen as u64,
                "{} {}",
                org.id,
                table.name()
            );
        }
        assert_eq!(manifest::verify(&to).unwrap().mismatches, vec![]);
    }
    let to = out.path().join("all");
    let exported = export::export(
        &f.dir,
        &manifest,
        &Audience::All,
        &Target::Dir(to.clone()),
        |_| {},
    )
    .unwrap();
    assert_eq!(
        exported.files, manifest.files,
        "a full export is the projection's files"
    );
    assert!(matches!(
        export::export(
            &f.dir,
            &manifest,
            &Audience::All,
            &Target::Dir(to.clone()),
            |_| {}
        ),
        Err(export::ExportError::NotEmpty(_))
    ));

    // Tamper: flip one byte in the middle of a file.
    let victim = &exported.files[0];
    let path = to.join(&victim.path);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let v = manifest::verify(&to).unwrap();
    assert!(
        matches!(&v.mismatches[..], [Mismatch::Hash { .. }]),
        "{:?}",
        v.mismatches
    );
    // Remove another; add one the manifest does not list.
    std::fs::remove_file(to.join(&exported.files[1].path)).unwrap();
    std::fs::write(to.join("lineage/extra.parquet"), b"x").unwrap();
    let v = manifest::verify(&to).unwrap();
    assert_eq!(v.mismatches.len(), 3, "{:?}", v.mismatches);
    assert!(
        v.mismatches
            .iter()
            .any(|m| matches!(m, Mismatch::Missing { .. }))
    );
    assert!(
        v.mismatches
            .iter()
            .any(|m| matches!(m, Mismatch::Unlisted { .. }))
    );

    // A file moved to another month, with its entry edited to match: its
    // bytes are intact, its rows' event times say it is misfiled.
    let org_dir = out.path().join(&f.genesis.orgs()[0].id);
    let mut m = Manifest::load(&org_dir).unwrap().unwrap();
    let entry = &mut m.files[0];
    let moved = format!("{}/event_month=1999-01/moved.parquet", entry.table);
    std::fs::create_dir_all(org_dir.join(&moved).parent().unwrap()).unwrap();
    std::fs::rename(org_dir.join(&entry.path), org_dir.join(&moved)).unwrap();
    entry.path = moved;
    entry.month = "1999-01".into();
    m.store(&org_dir).unwrap();
    let v = manifest::verify(&org_dir).unwrap();
    assert!(
        matches!(&v.mismatches[..], [Mismatch::Month { expected, .. }] if expected == "1999-01"),
        "{:?}",
        v.mismatches
    );
}

/// The `-- query:` blocks of docs/analytics.md, by name.
pub fn doc_queries() -> Vec<(String, String)> {
    let doc = include_str!("../../docs/analytics.md");
    let mut out = Vec::new();
    for block in doc.split("```sql\n").skip(1) {
        let Some(text) = block.split("```").next() else {
            continue;
        };
        if let Some(name) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("-- query: "))
        {
            out.push((name.to_owned(), text.to_owned()));
        }
    }
    out
}

/// Goal: the documented quality queries run in DataFusion and find what
/// the generated story holds: a failed incoming inspection of a supplier
/// lot, capability figures, the cold-room excursion above 8 CEL, one lot's
/// measurements. Method: run every `-- query:` block of docs/analytics.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_queries_answer() {
    let f = fixture();
    let catalog = Catalog::new(f.dir.clone(), project(&f));
    let queries = doc_queries();
    assert_eq!(
        queries.len(),
        4,
        "{:?}",
        queries.iter().map(|q| &q.0).collect::<Vec<_>>()
    );
    for (name, text) in &queries {
        let answer = sql::query(&catalog, &Visibility::All, text, Limits::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(answer.rows > 0, "{name} found nothing");
        let json =
            lotline_analytics::answer::encode(&answer, lotline_analytics::answer::Format::Json)
                .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let rows = json["rows"].as_array().unwrap();
        match name.as_str() {
            "defect-rate-by-supplier-lot-and-week" => {
                assert!(
                    rows.iter().any(|r| r["failed"].as_i64() > Some(0)),
                    "{rows:?}"
                );
            }
            "minutes-above-8c-by-shipment" => {
                assert!(
                    rows.iter().all(|r| r["max_celsius"].as_f64() > Some(8.0)),
                    "{rows:?}"
                );
                assert!(
                    rows.iter()
                        .any(|r| r["minutes_above_8"].as_f64() > Some(0.0)),
                    "{rows:?}"
                );
            }
            "cpk-by-characteristic" => {
                assert!(rows.iter().all(|r| r["cpk"].is_number()), "{rows:?}");
            }
            _ => {}
        }
    }
}
