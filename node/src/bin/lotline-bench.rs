//! `lotline-bench`: throughput of one node on this machine, as ratios of the
//! machine's own limits measured in the same run.
//!
//! ```text
//! cargo run --release -p lotline-node --bin lotline-bench -- [--seconds 10] [--clients 64]
//! ```
//! 1. Ed25519 (ZIP-215) verifications/s on all cores, single and batched: the
//!    floor cost of admitting an attestation.
//! 2. A real node (block log + fdatasync, sled, axum) in this process, fed
//!    by HTTP clients in this process with pre-signed attestations:
//!    committed attestations/s with `wait=committed`, single and batch
//!    submits, and commit latency percentiles.
//! 3. `verify_receipt` per second on one core.
//!
//! Clients share the two cores with the node, so the figures are a lower
//! bound of what a node does when clients are other machines.
//!
//! With `--validators 4`: four validators in this process over libp2p on
//! loopback (Simplex, one per org): blocks finalized while idle (an idle
//! chain makes none but a heartbeat); committed attestations/s; commit latency at
//! half that load, paced single submits from as many clients as the pace
//! needs (each waits for its commit), and what that latency is made of on
//! node 0; the bound is the all-core verify rate divided by 4 (each
//! node verifies each attestation once). Each phase also prints what it
//! cost this process (every node and client): CPU per committed
//! attestation and the share of the cores; and the paced phase's demand,
//! its rate times its CPU per single submit, says whether its latency
//! was measured on a machine with room or in a queue.
//!
//! `--rate R` paces that phase at R/s instead of half the saturated rate,
//! the same load for two builds compared side by side.
//!
//! `--heartbeat-ms N` sets every node's `[consensus] heartbeat_ms`: with
//! N = 1 the idle phase finalizes empty blocks back to back, the rate of the
//! consensus round alone.
//!
//! With `--validators 4 --stop-one` instead: `--clients` closed-loop clients
//! (single submits, wait=committed) on the three validators that stay up,
//! first with all four up, then after the fourth is shut down (its peers
//! see it gone, as after a kill): committed attestations/s and commit
//! latency p50/p99 of both phases, same run, same clients. The second phase
//! starts 2 s after the shutdown, past the dead leader's first turn (which
//! costs a whole leader timeout: the others learn it is gone).
//!
//! With `--validators 4 --private`: the same phases, but every attestation
//! seals its `ilmd` and `bizLocation` in a private section (statement
//! version 2) for three entitled orgs: the issuer, the regulator and the
//! manufacturer (the demo read policy plus one share rule for
//! commissioning to manufacturers, added here). Run it after the plain run
//! in the same bench call: the ratio of the two committed rates is the
//! cost of private fields. `--private-quality` seals the `lotline:quality`
//! member too, which the three recipients' nodes then open at commit for
//! the measurement series (`store::Opener`): the cost of that open.
//! Sections are compact (statement version 3); `--object-form` seals them
//! in the object form of statement version 2 instead, to measure what the
//! compact form saves in the same build.
//!
//! With `--capture N` instead (and `--validators 1` or `4`): one EPCIS 2.0
//! document of N events streamed to `POST /epcis/capture` of the first
//! validator (custodial signing, all-or-nothing), the client generating it
//! as it sends: events/s from the first byte sent to the job reporting
//! every event committed, the node's peak of events held in memory, and
//! the process's peak resident memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lotline_core::api::{Status, Wait};
use lotline_core::crypto::{BatchVerifier, SigningKey};
use lotline_core::{Envelope, Receipt};
use lotline_genesis::Genesis;
use lotline_node::metrics::Buckets;
use lotline_node::{Node, NodeConfig};
use lotline_sdk::{AttestationBuilder, Client, Signer};

/// The same allocator as the `lotline` binary, so figures match the node.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    seconds: u64,
    clients: usize,
    validators: usize,
    /// Measure with all validators up, then with one shut down.
    stop_one: bool,
    /// Stream one capture document of this many events instead.
    capture: Option<usize>,
    /// Seal private fields for three recipients (`--private`).
    private: bool,
    /// Seal `lotline:quality` too (`--private-quality`, implies `--private`).
    private_quality: bool,
    /// The private section's form (`--object-form`: version 2's).
    suite: lotline_core::private::Suite,
    /// Every node's `[consensus] heartbeat_ms` (`--heartbeat-ms`): a small
    /// one makes the idle phase propose empty blocks back to back, which
    /// measures the consensus round alone (the figure a published Simplex
    /// engine's own benchmark reports; docs/performance.md).
    heartbeat_ms: Option<std::num::NonZeroU64>,
    /// The paced phase's rate (`--rate`), instead of half the saturated
    /// rate: the same load for builds compared side by side.
    rate: Option<f64>,
}

fn args() -> Args {
    let mut out = Args {
        seconds: 10,
        clients: 64,
        validators: 1,
        stop_one: false,
        capture: None,
        private: false,
        private_quality: false,
        suite: lotline_core::private::Suite::Compact,
        heartbeat_ms: None,
        rate: None,
    };
    let argv: Vec<String> = std::env::args().collect();
    out.stop_one = argv.iter().any(|a| a == "--stop-one");
    out.private_quality = argv.iter().any(|a| a == "--private-quality");
    if argv.iter().any(|a| a == "--object-form") {
        out.suite = lotline_core::private::Suite::Object;
    }
    out.private = out.private_quality || argv.iter().any(|a| a == "--private");
    for pair in argv.windows(2) {
        match pair[0].as_str() {
            "--seconds" => out.seconds = pair[1].parse().unwrap_or(out.seconds),
            "--clients" => out.clients = pair[1].parse().unwrap_or(out.clients),
            "--validators" => out.validators = pair[1].parse().unwrap_or(out.validators),
            "--capture" => out.capture = pair[1].parse().ok(),
            "--heartbeat-ms" => out.heartbeat_ms = pair[1].parse().ok(),
            "--rate" => out.rate = pair[1].parse().ok(),
            _ => {}
        }
    }
    out
}

fn main() -> Result<()> {
    let args = args();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "# lotline-bench ({cores} cores, {} s per phase)\n",
        args.seconds
    );

    let single = verify_rate(cores, Duration::from_secs(3), false);
    let batched = verify_rate(cores, Duration::from_secs(3), true);
    println!("Ed25519 ZIP-215 verify, all cores: single {single:.0}/s, batch(64) {batched:.0}/s\n");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(events) = args.capture {
        return rt.block_on(capture_phase(&args, events, single, cores));
    }
    if args.validators > 1 {
        return rt.block_on(consortium_phases(&args, single, cores));
    }
    let NodeFigures {
        single_rate,
        single_lat,
        batch_rate,
        batch_lat,
        receipt,
        validators,
    } = rt.block_on(node_phases(&args))?;
    let verify = receipt_verify_rate(&receipt, &validators, Duration::from_secs(3))?;

    println!("| measure | value | ratio to the machine's bound |");
    println!("|---|---|---|");
    println!("| Ed25519 verify, single, {cores} cores | {single:.0}/s | 1.00 (the bound) |");
    println!(
        "| Ed25519 verify, batch of 64, {cores} cores | {batched:.0}/s | {:.2} |",
        batched / single
    );
    println!(
        "| committed att/s, single submits, {} clients, wait=committed | {single_rate:.0}/s | {:.2} |",
        args.clients,
        single_rate / single
    );
    println!(
        "| commit latency (single), p50 / p99 | {:.1} ms / {:.1} ms | |",
        single_lat.0, single_lat.1
    );
    println!(
        "| committed att/s, batch submits (100/batch), wait=committed | {batch_rate:.0}/s | {:.2} |",
        batch_rate / single
    );
    println!(
        "| batch round trip, p50 / p99 | {:.1} ms / {:.1} ms | |",
        batch_lat.0, batch_lat.1
    );
    println!(
        "| verify_receipt, 1 core | {verify:.0}/s | {:.2} of 1-core verify |",
        verify / (single / cores as f64)
    );
    Ok(())
}

/// ZIP-215 verifications per second on `threads` threads.
fn verify_rate(threads: usize, duration: Duration, batch: bool) -> f64 {
    let total = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let total = total.clone();
            std::thread::spawn(move || {
                let keys: Vec<SigningKey> = (0..64u8)
                    .map(|i| SigningKey::from_seed(&[i ^ t as u8; 32]))
                    .collect();
                let msgs: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 600]).collect();
                let sigs: Vec<_> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
                let start = Instant::now();
                let mut n = 0u64;
                while start.elapsed() < duration {
                    if batch {
                        let mut b = BatchVerifier::with_capacity(64);
                        for ((k, m), s) in keys.iter().zip(&msgs).zip(&sigs) {
                            b.push(k.public_key(), m, *s);
                        }
                        assert!(b.verify().iter().all(Result::is_ok));
                        n += 64;
                    } else {
                        let i = (n % 64) as usize;
                        assert!(keys[i].public_key().verify(&msgs[i], &sigs[i]).is_ok());
                        n += 1;
                    }
                }
                total.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    total.load(Ordering::Relaxed) as f64 / duration.as_secs_f64()
}

type Latency = (f64, f64);

struct NodeFigures {
    single_rate: f64,
    single_lat: Latency,
    batch_rate: f64,
    batch_lat: Latency,
    receipt: Receipt,
    validators: lotline_core::ValidatorSet,
}

async fn node_phases(args: &Args) -> Result<NodeFigures> {
    let dir = std::env::temp_dir().join(format!("lotline-bench-{}", std::process::id()));
    let orgs = lotline_node::demo::parse_orgs(lotline_node::demo::DEMO_ORGS)?;
    let layout = lotline_node::demo::create_consortium(
        &dir,
        "bench",
        &orgs,
        &["manufacturer".into()],
        0,
        0,
    )?;
    let mut config = NodeConfig::load(&layout.node_configs[0])?;
    config.listen = ([127, 0, 0, 1], 0).into();
    lift_rate_limits(&mut config);
    let genesis = Genesis::load(&layout.genesis_path)?;
    let signer = Signer::from_key_file("supplier", &layout.client_keys["supplier"])?;
    let node = Node::start(&config).await?;
    let url = node.url();

    // Enough pre-signed attestations for both phases at up to 20k/s.
    let needed = (args.seconds as usize * 20_000).clamp(20_000, 400_000);
    println!("pre-signing {needed} attestations ...");
    let envelopes = Arc::new(presign(&genesis, &signer, needed)?);
    let next = Arc::new(AtomicU64::new(0));

    let (single_rate, single_lat) = drive(&url, args, envelopes.clone(), next.clone(), 1).await?;
    println!("single submits: {single_rate:.0} committed/s");
    let (batch_rate, batch_lat) = drive(&url, args, envelopes.clone(), next.clone(), 100).await?;
    println!("batch submits:  {batch_rate:.0} committed/s\n");

    let client = Client::new(&url)?;
    let receipt = client
        .receipt(&envelopes[0].id())
        .await
        .context("receipt of the first attestation")?;
    node.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(NodeFigures {
        single_rate,
        single_lat,
        batch_rate,
        batch_lat,
        receipt,
        validators: genesis.validator_set(),
    })
}

/// The private fields `--private` seals (members of the commissioning
/// template that no policy check reads).
const PRIVATE_PATHS: [&str; 2] = ["/ilmd", "/bizLocation"];

/// The genesis with commissioning also shared to manufacturers, so a
/// supplier's commissioning record has three private readers (issuer,
/// regulator, manufacturer).
fn with_three_private_readers(genesis: &Genesis) -> Result<Genesis> {
    let mut read_policy = genesis.read_policy().clone();
    read_policy.share.push(lotline_genesis::ShareRule {
        from: None,
        to: vec![lotline_genesis::Audience::Role(
            lotline_genesis::Role::Manufacturer,
        )],
        event_types: None,
        biz_steps: Some(vec!["commissioning".to_owned()]),
        quality: None,
    });
    Ok(Genesis::from_parts(
        genesis.chain_name().to_owned(),
        *genesis.consensus(),
        genesis.orgs().to_vec(),
        genesis.validators().to_vec(),
        genesis.policy().to_vec(),
        read_policy,
    )?)
}

fn presign(genesis: &Genesis, signer: &Signer, n: usize) -> Result<Vec<Envelope>> {
    presign_sealed(genesis, signer, n, None, Default::default())
}

/// [`presign`], with the template's `private` paths sealed if any.
fn presign_sealed(
    genesis: &Genesis,
    signer: &Signer,
    n: usize,
    private: Option<&[String]>,
    suite: lotline_core::private::Suite,
) -> Result<Vec<Envelope>> {
    let template = lotline_sim::workload::SupplyChainWorkload::generate(
        7,
        lotline_sim::workload::Scale::demo(),
    )
    .into_iter()
    .find(|w| w.org == "supplier" && w.event.biz_step.as_deref() == Some("commissioning"))
    .context("the workload has a supplier commissioning event")?;
    (0..n)
        .map(|i| {
            let builder = AttestationBuilder::new(genesis.chain_id(), signer)
                .event(nth_event(&template.event, i)?)
                .nonce(format!("bench-{i}"));
            let builder = match private {
                Some(paths) => builder
                    .private_fields(genesis, paths.to_vec())
                    .private_suite(suite),
                None => builder,
            };
            builder.build().map_err(Into::into)
        })
        .collect()
}

/// Attestation `i`'s event: the template commissioning a lot of its own,
/// `{lot}-{i}`, under an eventID of its own, as a supplier's ERP sends
/// them. The same event again and again would make every attestation after
/// the first a repeated capture (`store::events`), which the index treats
/// differently from a new event.
fn nth_event(
    template: &lotline_core::epcis::Event,
    i: usize,
) -> Result<lotline_core::epcis::Event> {
    let mut event = template.clone();
    let lot = event
        .ilmd
        .as_mut()
        .and_then(|ilmd| ilmd.get_mut("cbvmda:lotNumber"))
        .context("the template names its lot in its ILMD")?;
    let old = lot
        .as_str()
        .context("the lot number is a string")?
        .to_owned();
    let new = format!("{old}-{i}");
    *lot = serde_json::Value::from(new.clone());
    for quantity in &mut event.quantity_list {
        let renamed = quantity
            .epc_class
            .replace(&format!("/10/{old}"), &format!("/10/{new}"));
        anyhow::ensure!(
            renamed != quantity.epc_class,
            "the template's class {} is not a Digital Link of lot {old}",
            quantity.epc_class
        );
        quantity.epc_class = renamed;
    }
    event.event_id = Some(format!("urn:uuid:00000000-0000-4000-8000-{i:012}"));
    Ok(event)
}

/// Runs `args.clients` clients for `args.seconds`, each submitting `per`
/// attestations per request with wait=committed.
async fn drive(
    url: &str,
    args: &Args,
    envelopes: Arc<Vec<Envelope>>,
    next: Arc<AtomicU64>,
    per: usize,
) -> Result<(f64, Latency)> {
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let clients = if per == 1 {
        args.clients
    } else {
        (args.clients / 8).max(2)
    };
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, envelopes, next, stop, committed) = (
            Client::new(url)?,
            envelopes.clone(),
            next.clone(),
            stop.clone(),
            committed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let start = next.fetch_add(per as u64, Ordering::Relaxed) as usize;
                if start + per > envelopes.len() {
                    break;
                }
                let t = Instant::now();
                let ok = if per == 1 {
                    matches!(client.submit(&envelopes[start], Wait::Committed).await, Ok(r) if r.status == Status::Committed)
                        .then_some(1)
                        .unwrap_or(0)
                } else {
                    match client.submit_batch(&envelopes[start..start + per], Wait::Committed).await {
                        Ok(r) => r.results.iter().filter(|x| x.status == Status::Committed).count(),
                        Err(_) => 0,
                    }
                };
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                committed.fetch_add(ok as u64, Ordering::Relaxed);
            }
            latencies
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Ok((
        committed.load(Ordering::Relaxed) as f64 / elapsed,
        (pct(0.5), pct(0.99)),
    ))
}

fn receipt_verify_rate(
    receipt: &Receipt,
    validators: &lotline_core::ValidatorSet,
    duration: Duration,
) -> Result<f64> {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < duration {
        lotline_core::verify_receipt(std::hint::black_box(receipt), validators)
            .context("receipt verifies")?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Four validators in this process: empty-block rate and finality latency,
/// saturated throughput, and commit latency at half of it.
async fn consortium_phases(args: &Args, verify_single: f64, cores: usize) -> Result<()> {
    let n = args.validators;
    let dir = std::env::temp_dir().join(format!("lotline-bench-n{n}-{}", std::process::id()));
    let orgs = lotline_node::demo::parse_orgs(lotline_node::demo::DEMO_ORGS)?;
    let validators: Vec<String> = orgs.iter().take(n).map(|o| o.id.clone()).collect();
    let p2p = lotline_node::demo::free_port_range(u16::try_from(validators.len())?);
    let layout = lotline_node::demo::create_consortium(&dir, "bench", &orgs, &validators, 0, p2p)?;
    let mut genesis = Genesis::load(&layout.genesis_path)?;
    if args.private {
        genesis = with_three_private_readers(&genesis)?;
        std::fs::write(&layout.genesis_path, genesis.to_toml())?;
    }
    let signer = Signer::from_key_file("supplier", &layout.client_keys["supplier"])?;
    let mut nodes = Vec::new();
    for path in &layout.node_configs {
        let mut config = NodeConfig::load(path)?;
        config.listen = ([127, 0, 0, 1], 0).into();
        lift_rate_limits(&mut config);
        if let Some(heartbeat_ms) = args.heartbeat_ms {
            config.heartbeat_ms = heartbeat_ms;
        }
        nodes.push(Node::start(&config).await?);
    }
    let urls: Vec<String> = nodes.iter().map(Node::url).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    if args.stop_one {
        let result = one_down_phases(args, nodes, &urls, &genesis, &signer).await;
        let _ = std::fs::remove_dir_all(&dir);
        return result;
    }

    // 1. Idle: no attestations. An idle chain makes no empty blocks (one
    // heartbeat block at most every `heartbeat_ms`, docs/protocol.md).
    let h0 = nodes[0].shared.head().height;
    const FINALITY: &str = "lotline_consensus_finality_seconds";
    let before = Buckets::parse(&nodes[0].shared.metrics.text(), FINALITY);
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let blocks = nodes[0].shared.head().height - h0;
    let blocks_rate = blocks as f64 / t.elapsed().as_secs_f64();
    // Quantiles of the node's finality histogram over the idle phase,
    // interpolated inside buckets 1.5x wide as Prometheus does.
    let finality = Buckets::parse(&nodes[0].shared.metrics.text(), FINALITY).since(&before);
    let finality_text = match (finality.quantile(0.5), finality.quantile(0.99)) {
        (Some(p50), Some(p99)) if blocks > 0 => {
            format!("{:.1} ms / {:.1} ms (histogram)", p50 * 1e3, p99 * 1e3)
        }
        _ => "none".to_string(),
    };
    println!(
        "idle: {blocks} block(s) finalized in {} s, proposal->finality p50 / p99 {finality_text}",
        args.seconds
    );

    // 2. Saturated: batch submits spread over the nodes.
    let needed = (args.seconds as usize * 12_000).clamp(20_000, 300_000);
    println!("pre-signing {needed} attestations ...");
    let t = Instant::now();
    let mut sealed: Vec<String> = PRIVATE_PATHS.map(str::to_owned).to_vec();
    if args.private_quality {
        sealed.push("/lotline:quality".to_owned());
    }
    let envelopes = Arc::new(presign_sealed(
        &genesis,
        &signer,
        needed,
        args.private.then_some(sealed.as_slice()),
        args.suite,
    )?);
    let presign_secs = t.elapsed().as_secs_f64();
    let sample = lotline_core::Statement::from_payload(&envelopes[0].payload)?;
    // What one attestation weighs at rest: sled's `a` record (zstd, before
    // the store trains its record dictionary).
    let record = lotline_node::store::index::Record {
        id: envelopes[0].id(),
        meta: lotline_node::store::index::AttestationMeta::of(&sample).record_meta(),
        envelope: envelopes[0].clone(),
    };
    println!(
        "pre-signed in {presign_secs:.1} s ({:.0}/s); statement version {}, private recipients per attestation: {}; statement {} bytes, envelope JSON {} bytes, stored record {} bytes without a dictionary",
        needed as f64 / presign_secs,
        sample.version,
        sample.private.as_ref().map_or(0, |p| p.recipients.len()),
        envelopes[0].payload.len(),
        serde_json::to_vec(&envelopes[0])?.len(),
        lotline_node::store::index::Record::stored(&record.encode(), None).len(),
    );
    let next = Arc::new(AtomicU64::new(0));
    let saturated = drive_many(&urls, args, envelopes.clone(), next.clone(), 100, None).await?;
    let rate = saturated.rate;
    println!(
        "saturated (batches of 100): {rate:.0} committed/s, round trip p50 {:.1} ms p99 {:.1} ms; {}",
        saturated.latency.0,
        saturated.latency.1,
        saturated.cost(cores)
    );

    // 3. Half of that load, single submits at a fixed rate.
    let stages_before = nodes[0].shared.metrics.text();
    let asked = args.rate.unwrap_or(rate / 2.0);
    let half = drive_many(&urls, args, envelopes, next, 1, Some(asked)).await?;
    let (half_rate, half_latency) = (half.rate, half.latency);
    println!(
        "half load: {half_rate:.0} committed/s of {asked:.0}/s asked (single submits), commit latency p50 {:.1} ms p99 {:.1} ms; {}",
        half_latency.0,
        half_latency.1,
        half.cost(cores)
    );
    print_stages(&stages_before, &nodes[0].shared.metrics.text());

    let bound = verify_single / n as f64;
    println!("\n| measure ({n} validators, one process, {cores} cores) | value | ratio |");
    println!("|---|---|---|");
    println!("| Ed25519 verify bound: all-core single verify / {n} nodes | {bound:.0}/s | 1.00 |");
    println!(
        "| committed attestations/s, saturated, batch submits | {rate:.0}/s | {:.2} |",
        rate / bound
    );
    println!(
        "| commit latency at half load ({half_rate:.0}/s), p50 / p99 | {:.1} ms / {:.1} ms | |",
        half_latency.0, half_latency.1
    );
    // What the two phases cost per attestation, and so what the paced phase
    // asked of the machine: a latency measured on cores the load asks all
    // of is a queue's, not the commit path's.
    if let (Some(batched), Some(single)) = (saturated.cpu_ms_per_commit(), half.cpu_ms_per_commit())
    {
        println!(
            "| CPU per committed attestation (this process: nodes and clients), batch / single submits | {batched:.3} ms / {single:.3} ms | x{:.2} |",
            single / batched
        );
        let demand = asked * single / 1000.0;
        println!(
            "| the paced phase's demand at the single-submit cost ({asked:.0}/s x {single:.3} ms) | {demand:.2} cores of {cores} | {:.2} |",
            demand / cores as f64
        );
    }
    println!("| blocks finalized while idle (heartbeat only) | {blocks_rate:.2}/s | |");
    println!("| proposal -> finality of those, p50 / p99 | {finality_text} | |");
    for node in nodes {
        node.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Where a commit's time went during a phase, from one node's own
/// histograms (the differences of two scrapes): what the clients' latency
/// is made of, for the half-load row.
fn print_stages(before: &str, after: &str) {
    const STAGES: [(&str, &str); 5] = [
        (
            "lotline_ingest_submit_commit_seconds",
            "a waiting submission, admission to commit here",
        ),
        (
            "lotline_consensus_finality_seconds",
            "a block, its proposer's timestamp to commit here",
        ),
        (
            "lotline_consensus_vote_sync_seconds",
            "the vote journal's fdatasync",
        ),
        (
            "lotline_store_log_append_seconds",
            "a block's log check, append and fdatasync",
        ),
        ("lotline_store_index_apply_seconds", "one indexer batch"),
    ];
    println!("| node 0, this phase (histograms) | p50 | p99 |");
    println!("|---|---|---|");
    for (name, what) in STAGES {
        let phase = Buckets::parse(after, name).since(&Buckets::parse(before, name));
        let ms = |q| {
            phase
                .quantile(q)
                .map_or("-".to_owned(), |s| format!("{:.1} ms", s * 1e3))
        };
        println!("| {what} | {} | {} |", ms(0.5), ms(0.99));
    }
    // What the mempool gossip costs in messages: each one is a libp2p
    // publish to every peer, so items per message is the packing won.
    let delta = |name| counter(after, name) - counter(before, name);
    let (out, items, into) = (
        delta("lotline_net_gossip_out_total"),
        delta("lotline_net_gossip_items_out_total"),
        delta("lotline_net_gossip_in_total"),
    );
    println!(
        "| gossip messages published / received, items per published message | {out:.0} / {into:.0} | {:.1} |",
        items / out.max(1.0)
    );
    println!(
        "| gossip publishes failed; attestations asked of proposers | {:.0}; {:.0} | |",
        delta("lotline_net_gossip_failed_total"),
        delta("lotline_consensus_bodies_wanted_total")
    );
    // What each block costs the transport: every consensus frame is a
    // request-response exchange on a stream of its own (`net/codec.rs`).
    let (frames, blocks) = (
        delta("lotline_net_frames_out_total"),
        delta("lotline_consensus_blocks_total"),
    );
    println!(
        "| consensus frames sent / blocks committed, frames per block | {frames:.0} / {blocks:.0} | {:.1} |",
        frames / blocks.max(1.0)
    );
    // What each block costs the disk besides its own append: the vote
    // journal's fdatasyncs (own votes, notarized blocks, certificates).
    let syncs = delta("lotline_consensus_vote_sync_seconds_count");
    println!(
        "| vote journal fdatasyncs / blocks committed, per block | {syncs:.0} / {blocks:.0} | {:.1} |",
        syncs / blocks.max(1.0)
    );
}

/// A counter's value in OpenMetrics `text` (0 when absent).
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// Closed-loop clients on all validators but the last, with every
/// validator up, then with the last one shut down.
async fn one_down_phases(
    args: &Args,
    mut nodes: Vec<Node>,
    urls: &[String],
    genesis: &Genesis,
    signer: &Signer,
) -> Result<()> {
    let n = nodes.len();
    let up = &urls[..n - 1];
    // Two phases of closed-loop single submits: a few hundred per second.
    let needed = (args.seconds as usize * 2 * 1_000).clamp(5_000, 100_000);
    println!("pre-signing {needed} attestations ...");
    let envelopes = Arc::new(presign(genesis, signer, needed)?);
    let next = Arc::new(AtomicU64::new(0));
    let all = drive_many(up, args, envelopes.clone(), next.clone(), 1, None).await?;
    let (all_rate, all_latency) = (all.rate, all.latency);
    println!(
        "all {n} up: {all_rate:.1} committed/s, commit latency p50 {:.1} ms p99 {:.1} ms",
        all_latency.0, all_latency.1
    );
    if let Some(stopped) = nodes.pop() {
        stopped.shutdown().await;
    }
    println!("validator {} shut down", n - 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let down = drive_many(up, args, envelopes, next, 1, None).await?;
    let (down_rate, down_latency) = (down.rate, down.latency);
    println!(
        "one down: {down_rate:.1} committed/s, commit latency p50 {:.1} ms p99 {:.1} ms",
        down_latency.0, down_latency.1
    );
    println!(
        "\n| {} closed-loop clients, {n} validators | committed/s | commit p50 | commit p99 |",
        args.clients
    );
    println!("|---|---|---|---|");
    println!(
        "| all up | {all_rate:.1} | {:.1} ms | {:.1} ms |",
        all_latency.0, all_latency.1
    );
    println!(
        "| one validator shut down | {down_rate:.1} | {:.1} ms | {:.1} ms |",
        down_latency.0, down_latency.1
    );
    println!(
        "| ratio (down / up) | {:.2} | {:.2} | {:.2} |",
        down_rate / all_rate,
        down_latency.0 / all_latency.0,
        down_latency.1 / all_latency.1
    );
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

fn percentiles(samples: &[f64]) -> Latency {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    (pct(0.5), pct(0.99))
}

/// Clients spread over `urls`; closed loop, or open loop at `rate`/s.
async fn drive_many(
    urls: &[String],
    args: &Args,
    envelopes: Arc<Vec<Envelope>>,
    next: Arc<AtomicU64>,
    per: usize,
    rate: Option<f64>,
) -> Result<Phase> {
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    // Paced single submits each wait for their commit: enough clients that
    // the pace holds while each waits up to 250 ms, else the phase runs at
    // what `--clients` round trips allow, below the rate asked.
    let clients = match (per, rate) {
        (1, Some(rate)) => args.clients.max((rate / 4.0).ceil() as usize),
        (1, None) => args.clients,
        _ => (args.clients / 4).max(urls.len()),
    };
    // Built before the clock starts: each loads the TLS roots, which for
    // hundreds of paced clients took the first second of the phase.
    let built = (0..clients)
        .map(|c| Ok(Client::new(&urls[c % urls.len()])?.with_timeout(Duration::from_secs(60))))
        .collect::<Result<Vec<Client>>>()?;
    let started = Instant::now();
    let cpu_before = process_cpu();
    let mut tasks = Vec::new();
    for (c, client) in built.into_iter().enumerate() {
        let (envelopes, next, stop, committed) = (
            envelopes.clone(),
            next.clone(),
            stop.clone(),
            committed.clone(),
        );
        let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r.max(1.0)));
        // Paced clients start spread evenly over one interval, so the
        // submits arrive at the rate asked from the first one on. (Session
        // 26 found them started within the first 100 ms: at 1,800/s, 450
        // clients sent their submits in bursts of 4,500/s every 250 ms.)
        let first = interval.map_or(Duration::ZERO, |i| i.mul_f64(c as f64 / clients as f64));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut due = Instant::now() + first;
            while !stop.load(Ordering::Relaxed) {
                if let Some(interval) = interval {
                    tokio::time::sleep_until(due.into()).await;
                    due += interval;
                }
                let start = next.fetch_add(per as u64, Ordering::Relaxed) as usize;
                if start + per > envelopes.len() {
                    break;
                }
                let t = Instant::now();
                let ok = if per == 1 {
                    usize::from(matches!(client.submit(&envelopes[start], Wait::Committed).await, Ok(r) if r.status == Status::Committed))
                } else {
                    match client.submit_batch(&envelopes[start..start + per], Wait::Committed).await {
                        Ok(r) => r.results.iter().filter(|x| x.status == Status::Committed).count(),
                        Err(_) => 0,
                    }
                };
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                committed.fetch_add(ok as u64, Ordering::Relaxed);
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap_or_default());
    }
    let wall = started.elapsed();
    let committed = committed.load(Ordering::Relaxed);
    Ok(Phase {
        rate: committed as f64 / wall.as_secs_f64(),
        latency: percentiles(&latencies),
        committed,
        wall,
        cpu: cpu_since(cpu_before),
    })
}

/// What a driven phase reached, and what it cost this process.
struct Phase {
    /// Committed attestations per second.
    rate: f64,
    latency: Latency,
    committed: u64,
    wall: Duration,
    /// This process's CPU time over the phase: every node and every client,
    /// which share the machine's cores.
    cpu: Option<Duration>,
}

impl Phase {
    fn cpu_ms_per_commit(&self) -> Option<f64> {
        let cpu = self.cpu?;
        (self.committed > 0).then(|| cpu.as_secs_f64() * 1e3 / self.committed as f64)
    }

    /// CPU per committed attestation, and the share of the machine used.
    fn cost(&self, cores: usize) -> String {
        match (self.cpu, self.cpu_ms_per_commit()) {
            (Some(cpu), Some(per)) => format!(
                "CPU {per:.3} ms per committed attestation, {:.0} % of {cores} cores",
                100.0 * busy(cpu, self.wall, cores)
            ),
            _ => "CPU not measured".to_owned(),
        }
    }
}

/// This process's CPU time so far, user and system, every thread
/// (`/proc/self/stat` fields 14 and 15, in clock ticks: Linux reports
/// them in `USER_HZ`, 1/100 s). `None` off Linux.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, field 2, is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    Some(Duration::from_millis((ticks(14)? + ticks(15)?) * 10))
}

/// The CPU time this process used since `before` (from [`process_cpu`]).
fn cpu_since(before: Option<Duration>) -> Option<Duration> {
    Some(process_cpu()?.saturating_sub(before?))
}

/// The share of `cores` that `cpu` over `wall` is.
fn busy(cpu: Duration, wall: Duration, cores: usize) -> f64 {
    cpu.as_secs_f64() / (wall.as_secs_f64() * cores as f64)
}

/// Streams one document of `events` events to the first validator's
/// `POST /epcis/capture` and waits for its job to report every event
/// committed.
async fn capture_phase(args: &Args, events: usize, verify_single: f64, cores: usize) -> Result<()> {
    let n = args.validators;
    let dir = std::env::temp_dir().join(format!("lotline-bench-capture-{}", std::process::id()));
    let orgs = lotline_node::demo::parse_orgs(lotline_node::demo::DEMO_ORGS)?;
    let validators: Vec<String> = if n == 1 {
        vec!["manufacturer".into()]
    } else {
        orgs.iter().take(n).map(|o| o.id.clone()).collect()
    };
    let p2p = lotline_node::demo::free_port_range(u16::try_from(validators.len())?);
    let layout = lotline_node::demo::create_consortium(&dir, "bench", &orgs, &validators, 0, p2p)?;
    let mut nodes = Vec::new();
    for path in &layout.node_configs {
        let mut config = NodeConfig::load(path)?;
        config.listen = ([127, 0, 0, 1], 0).into();
        lift_rate_limits(&mut config);
        if let Some(heartbeat_ms) = args.heartbeat_ms {
            config.heartbeat_ms = heartbeat_ms;
        }
        nodes.push(Node::start(&config).await?);
    }
    tokio::time::sleep(Duration::from_secs(if n > 1 { 2 } else { 0 })).await;
    let capturing = &validators[0];
    let token = std::fs::read_to_string(&layout.tokens[capturing.as_str()])?;
    let template = lotline_sim::workload::SupplyChainWorkload::generate(
        7,
        lotline_sim::workload::Scale::demo(),
    )
    .into_iter()
    .find(|w| &w.org == capturing && w.event.event_type.as_str() == "ObjectEvent")
    .with_context(|| format!("the workload has an ObjectEvent of {capturing}"))?;
    let base_ms = template.event.event_time_ms().unwrap_or(0);
    let mut event = serde_json::to_value(&template.event)?;
    if let Some(map) = event.as_object_mut() {
        map.remove("eventID");
    }

    // The document, generated a thousand events at a time as it is sent:
    // each event its template at its own time, so no two are the same event.
    let head = "{\"@context\": [\"https://ref.gs1.org/standards/epcis/epcis-context.jsonld\"], \
         \"type\": \"EPCISDocument\", \"schemaVersion\": \"2.0\", \
         \"creationDate\": \"2026-03-02T08:00:00Z\", \"epcisBody\": {\"eventList\": [";
    let chunks = std::iter::once(head.as_bytes().to_vec())
        .chain((0..events.div_ceil(1000)).map(move |chunk| {
            let mut out = Vec::new();
            for i in chunk * 1000..((chunk + 1) * 1000).min(events) {
                if i > 0 {
                    out.push(b',');
                }
                event["eventTime"] =
                    lotline_core::time::format_rfc3339_ms(base_ms + i as i64).into();
                serde_json::to_writer(&mut out, &event).unwrap_or_default();
            }
            out
        }))
        .chain(std::iter::once(b"]}}".to_vec()));
    let body = reqwest::Body::wrap_stream(futures::stream::iter(
        chunks.map(Ok::<Vec<u8>, std::io::Error>),
    ));
    let url = nodes[0].url();
    let http = reqwest::Client::new();
    println!("streaming a document of {events} events to {capturing}'s node ...");
    let started = Instant::now();
    let cpu_before = process_cpu();
    let response = http
        .post(format!("{url}/epcis/capture"))
        .bearer_auth(token.trim())
        .header("content-type", "application/ld+json")
        .body(body)
        .send()
        .await?;
    let accepted_after = started.elapsed();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(location) = location else {
        anyhow::bail!("capture refused: {status} {}", response.text().await?);
    };
    let job = loop {
        let job: serde_json::Value = http
            .get(format!("{url}{location}"))
            .bearer_auth(token.trim())
            .send()
            .await?
            .json()
            .await?;
        if job["running"] == false {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let cpu = cpu_since(cpu_before);
    let elapsed = started.elapsed().as_secs_f64();
    let captured = job["lotline:eventsCaptured"].as_u64().unwrap_or(0);
    anyhow::ensure!(
        captured == events as u64,
        "the job captured {captured} of {events} events: {job}"
    );
    let rate = events as f64 / elapsed;
    let held = held_events_max(&nodes[0], &layout, capturing).await;
    let rss = peak_rss_mib();
    let bound = verify_single / n as f64;
    println!(
        "\n| measure (capture, {n} validator(s), one process, {cores} cores) | value | ratio |"
    );
    println!("|---|---|---|");
    println!(
        "| Ed25519 verify bound: all-core single verify / {n} node(s) | {bound:.0}/s | 1.00 |"
    );
    println!(
        "| events/s, one {events}-event document, first byte to all committed | {rate:.0}/s | {:.2} |",
        rate / bound
    );
    println!(
        "| document read and checked (202 Accepted) after | {:.1} s | |",
        accepted_after.as_secs_f64()
    );
    if let Some(cpu) = cpu {
        // Every validator indexes every event: with four on this machine's
        // cores, the CPU per event is what bounds the rate.
        println!(
            "| CPU per committed event (this process: every node and the client) | {:.3} ms, {:.0} % of {cores} cores | |",
            cpu.as_secs_f64() * 1e3 / events as f64,
            100.0 * busy(cpu, Duration::from_secs_f64(elapsed), cores)
        );
    }
    println!("| events held in memory by the node, peak | {held} | |");
    println!("| resident memory of the process, peak | {rss} MiB | |");
    for node in nodes {
        node.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `lotline_epcis_capture_held_events_max` from the node's `/metrics`.
async fn held_events_max(
    node: &Node,
    layout: &lotline_node::demo::ConsortiumLayout,
    org: &str,
) -> String {
    let token = layout
        .operator_tokens
        .get(org)
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default();
    let text = match reqwest::Client::new()
        .get(format!("{}/metrics", node.url()))
        .bearer_auth(token.trim())
        .send()
        .await
    {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    text.lines()
        .find_map(|l| l.strip_prefix("lotline_epcis_capture_held_events_max "))
        .unwrap_or("unknown")
        .trim()
        .to_owned()
}

/// The process's peak resident memory (`VmHWM`), in MiB.
fn peak_rss_mib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map_or_else(|| "unknown".into(), |kb| (kb / 1024).to_string())
}

/// Every bench client calls from 127.0.0.1, so the per-IP limit (200
/// requests/s by default) would measure the limiter, not the commit path.
/// The limits are an operator's choice; the bench lifts them.
fn lift_rate_limits(config: &mut NodeConfig) {
    let lifted = lotline_node::access::rate_limit::Rate {
        per_s: std::num::NonZeroU32::MAX,
        burst: std::num::NonZeroU32::MAX,
    };
    config.limits.per_ip = lifted;
    config.limits.per_credential = lifted;
}
