//! The backup and restore drill on four validators (real libp2p, sled and
//! block logs): a backup of a running validator taken while clients
//! submit, a damaged copy refused, the validator's machine "lost" and
//! restored into a new folder; the restored node rebuilds sled, catches up
//! from its peers to the identical chain, signs nothing while its restore
//! marker is there, and votes again after `resume-voting`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::support::commissioning;
use crate::support::n4::{Four, eventually, one_at_a_time};
use lotline_core::api::{Status, Wait};
use lotline_node::ops::backup::{self, Extras};
use lotline_node::ops::restore::{self, RestoreError};
use lotline_node::ops::restored::Marker;

async fn commit_some(four: &Four, url: &str, tag: &str, n: usize) -> u64 {
    let client = lotline_sdk::Client::new(url).expect("client");
    let envelopes: Vec<_> = (0..n)
        .map(|i| {
            lotline_sdk::AttestationBuilder::new(four.genesis.chain_id(), &four.signers["supplier"])
                .event(commissioning(&format!("{tag}-{i}")))
                .build()
                .expect("envelope")
        })
        .collect();
    let result = client
        .submit_batch(&envelopes, Wait::Committed)
        .await
        .expect("batch");
    let mut height = 0;
    for r in &result.results {
        assert_eq!(r.status, Status::Committed, "{tag}: {:?}", r.problem);
        height = height.max(r.height.unwrap_or(0));
    }
    height
}

/// Flips one byte in the middle of `path`.
fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(path, bytes).expect("write");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_validator_restored_from_an_online_backup_rejoins_with_the_identical_chain() {
    let _serial = one_at_a_time().await;
    let four = Four::new();
    let mut nodes: Vec<Option<lotline_node::Node>> =
        four.start_all().await.into_iter().map(Some).collect();
    let url0 = nodes[0].as_ref().expect("node").url();
    commit_some(&four, &url0, "before", 10).await;

    // Clients keep submitting while validator 3 is backed up.
    let submitting = Arc::new(AtomicBool::new(true));
    let load = {
        let submitting = submitting.clone();
        let url = url0.clone();
        let four_genesis = four.genesis.chain_id();
        let signer = four.signers["supplier"].clone();
        tokio::spawn(async move {
            let client = lotline_sdk::Client::new(&url).expect("client");
            let mut round = 0;
            while submitting.load(Ordering::Relaxed) {
                let envelopes: Vec<_> = (0..5)
                    .map(|i| {
                        lotline_sdk::AttestationBuilder::new(four_genesis, &signer)
                            .event(commissioning(&format!("during-{round}-{i}")))
                            .build()
                            .expect("envelope")
                    })
                    .collect();
                client
                    .submit_batch(&envelopes, Wait::Committed)
                    .await
                    .expect("batch during the backup");
                round += 1;
            }
            round
        })
    };
    let node3 = nodes[3].as_ref().expect("node");
    let start_height = node3.shared.head().height;
    eventually("blocks commit under load", 60, || {
        node3.shared.head().height > start_height + 2
    })
    .await;
    let backup_dir = four.dir.path().join("backup");
    let data3 = four.configs[3].data_dir.clone();
    let extras = Extras {
        genesis: Some(four.configs[3].genesis.clone()),
        keys: Vec::new(),
    };
    let manifest = {
        let backup_dir = backup_dir.clone();
        tokio::task::spawn_blocking(move || backup::backup(&data3, &backup_dir, &extras))
            .await
            .expect("join")
            .expect("online backup")
    };
    assert!(
        manifest.height > start_height,
        "the backup holds the load's blocks"
    );
    assert!(!manifest.keys_included);
    assert!(!backup_dir.join("keys").exists(), "no keys by default");
    // The node went on committing after the backup.
    eventually("commits after the backup", 60, || {
        node3.shared.head().height > manifest.height + 2
    })
    .await;
    submitting.store(false, Ordering::Relaxed);
    let rounds = load.await.expect("load task");
    assert!(rounds > 0);

    // Validator 3's machine is lost: the node stops and its folder is gone
    // for this test (a new folder is restored below).
    if let Some(node) = nodes[3].take() {
        node.shutdown().await;
    }
    let set = four.genesis.validator_set();

    // A damaged backup file is refused, by name, and writes nothing.
    let damaged = four.dir.path().join("backup-damaged");
    copy_dir(&backup_dir, &damaged);
    damage(&damaged.join("blocks.log"));
    let target = four.dir.path().join("restored-from-damaged");
    match restore::restore(&damaged, &target, &set) {
        Err(error @ RestoreError::Damaged { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("blocks.log is damaged"),
                "the error names the file: {message}"
            );
        }
        other => panic!("a damaged backup must be refused, got {other:?}"),
    }
    assert!(!target.exists(), "nothing written from a damaged backup");
    // A backup without its manifest is not a finished backup.
    let unfinished = four.dir.path().join("backup-unfinished");
    copy_dir(&backup_dir, &unfinished);
    std::fs::remove_file(unfinished.join("manifest.json")).expect("rm");
    assert!(matches!(
        restore::restore(&unfinished, &target, &set),
        Err(RestoreError::Manifest(_))
    ));

    // Restore into a new folder and start validator 3 on it.
    let restored_dir = four.dir.path().join("data-restored");
    let restored_manifest = restore::restore(&backup_dir, &restored_dir, &set).expect("restore");
    assert_eq!(restored_manifest, manifest);
    let marker = Marker::read(&restored_dir)
        .expect("marker")
        .expect("marker");
    assert_eq!(marker.backup_height, manifest.height);
    assert!(
        !restored_dir.join("index.sled").exists(),
        "sled is built by the node"
    );
    // Blocks above this height were all made while the restored node ran.
    let before_start = lotline_sdk::Client::new(&url0)
        .expect("client")
        .head()
        .await
        .expect("head")
        .height;
    let mut config3 = four.configs[3].clone();
    config3.data_dir = restored_dir.clone();
    let restored = lotline_node::Node::start(&config3)
        .await
        .expect("restored node starts");
    assert_eq!(restored.open_report.height, manifest.height);
    assert_eq!(
        restored.open_report.reapplied_blocks, manifest.height,
        "sled rebuilt from the restored log"
    );
    assert_eq!(
        restored.open_report.verified_blocks, 0,
        "restore verified the log"
    );

    // The three others commit on; the restored node catches up.
    // Several rounds, so that validator 3's turns as leader come up.
    let mut after_restore = 0;
    for round in 0..6 {
        after_restore = commit_some(&four, &url0, &format!("after-restore-{round}"), 3).await;
    }
    eventually("the restored validator catches up", 90, || {
        restored.shared.head().height >= after_restore
    })
    .await;
    let client0 = lotline_sdk::Client::new(&url0).expect("client");
    let client3 = lotline_sdk::Client::new(&restored.url()).expect("client");
    let head0 = client0.head().await.expect("head");
    eventually("the restored validator reaches the head", 60, || {
        restored.shared.head().height >= head0.height
    })
    .await;
    for height in 1..=head0.height {
        let ours = client3.block(height).await.expect("block");
        let theirs = client0.block(height).await.expect("block");
        assert_eq!(ours.hash, theirs.hash, "height {height}");
        if height > before_start {
            // While restored, validator 3 signed nothing that others used.
            assert_ne!(
                ours.header.proposer, 3,
                "height {height} proposed by the restored node"
            );
            assert!(
                ours.finality
                    .certificate
                    .signatures
                    .iter()
                    .all(|s| s.signer != 3),
                "height {height} certified with the restored node's vote"
            );
        }
    }
    assert_eq!(
        client3
            .head()
            .await
            .expect("head")
            .hash
            .map(|h| h.to_string()),
        client0
            .block(head0.height)
            .await
            .ok()
            .map(|b| b.hash.to_string()),
    );

    // The operator lets it vote again; with validator 2 stopped the quorum
    // needs validator 3's votes, so progress proves it votes.
    restored.shutdown().await;
    assert!(Marker::clear(&restored_dir).expect("clear"));
    let resumed = lotline_node::Node::start(&config3)
        .await
        .expect("resumed node starts");
    eventually("the resumed validator is at the head", 60, || {
        resumed.shared.head().height >= head0.height
    })
    .await;
    if let Some(node) = nodes[2].take() {
        node.shutdown().await;
    }
    let after_resume = commit_some(&four, &url0, "after-resume", 5).await;
    assert!(after_resume > head0.height);
    resumed.shutdown().await;
    for node in nodes.into_iter().flatten() {
        node.shutdown().await;
    }
}

/// Goal: a block log damaged in the middle (not a torn tail) is found,
/// never served, and mended from the other validators with verified
/// certificates. Method: four validators commit a dozen blocks; validator 3
/// stops and one byte inside the record of a middle block of its log is
/// flipped. The scan names exactly that block, a read of it fails (so a
/// sync answer stops before it), `repair` fetches it from the three running
/// peers, and the mended log verifies in full with every block's hash equal
/// to validator 0's; validator 3 then restarts and follows new commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_block_log_damaged_in_the_middle_is_repaired_from_peers() {
    let _serial = one_at_a_time().await;
    use lotline_node::ops::repair;
    let four = Four::new();
    let mut nodes = four.start_all().await;
    for round in 0..12 {
        commit_some(
            &four,
            &nodes[round % 3].url(),
            &format!("repair-{round}"),
            2,
        )
        .await;
    }
    let target = nodes[0].shared.head().height;
    assert!(target >= 6, "{target} blocks");
    eventually("validator 3 is at the head", 60, || {
        nodes[3].shared.head().height >= target
    })
    .await;
    let node3 = nodes.pop().expect("validator 3");
    node3.shutdown().await;
    let data3 = four.configs[3].data_dir.clone();

    let clean = repair::scan(&data3).expect("scan");
    assert!(clean.damaged.is_empty(), "{:?}", clean.damaged);
    let height = clean.entries.len() as u64;
    let middle = crate::support::n4::damage_block(&data3, height / 2 + 1);

    let scanned = repair::scan(&data3).expect("scan");
    let damaged: Vec<u64> = scanned.damaged.iter().map(|d| d.height).collect();
    assert_eq!(damaged, vec![middle.height]);
    {
        let (store, _) =
            lotline_node::store::Store::open(&data3, four.genesis.validator_set()).expect("open");
        assert!(
            store.read_block(middle.height).is_err(),
            "the damaged block must not read back"
        );
        assert!(store.read_block(middle.height - 1).expect("read").is_some());
    }

    let report = repair::repair(&four.configs[3], std::time::Duration::from_secs(60))
        .await
        .expect("repair");
    assert_eq!(
        report.repaired.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![middle.height]
    );
    assert!(report.height >= height);
    let aside = report.damaged_log.expect("the damaged log is kept");
    assert!(aside.exists());
    assert!(repair::scan(&data3).expect("scan").damaged.is_empty());

    let client0 = lotline_sdk::Client::new(&nodes[0].url()).expect("client");
    {
        let (store, _) =
            lotline_node::store::Store::open(&data3, four.genesis.validator_set()).expect("open");
        for h in 1..=report.height {
            let record = store.read_block(h).expect("read").expect("block");
            let theirs = client0.block(h).await.expect("block");
            assert_eq!(record.block.hash(), theirs.hash, "height {h}");
        }
    }
    let restarted = four.start(3).await;
    let after = commit_some(&four, &nodes[0].url(), "after-repair", 2).await;
    eventually("the repaired validator follows", 60, || {
        restarted.shared.head().height >= after
    })
    .await;
    restarted.shutdown().await;
    for node in nodes {
        node.shutdown().await;
    }
}

/// Goal: a running validator finds a record damaged in the middle of its
/// block log by itself (its scrub reads the log back), fetches the block
/// from the other validators, verifies it, and swaps the mended log in
/// without stopping; it keeps committing, and after a restart holds the
/// same chain as the others. Method: four validators, validator 3 scrubbing
/// every second; one byte of a middle record is flipped in place while it
/// runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_running_validator_mends_its_block_log_from_peers() {
    let _serial = one_at_a_time().await;
    use lotline_node::ops::repair;
    use std::os::unix::fs::FileExt;
    let mut four = Four::new();
    four.configs[3].scrub = Some(std::time::Duration::from_secs(1));
    let nodes = four.start_all().await;
    for round in 0..12 {
        commit_some(&four, &nodes[round % 3].url(), &format!("mend-{round}"), 2).await;
    }
    let target = nodes[0].shared.head().height;
    eventually("validator 3 is at the head", 60, || {
        nodes[3].shared.head().height >= target
    })
    .await;
    let data3 = four.configs[3].data_dir.clone();
    let scan = repair::scan(&data3).expect("scan beside the running node");
    assert!(scan.damaged.is_empty(), "{:?}", scan.damaged);
    let middle = scan.entries[scan.entries.len() / 2].clone();
    {
        let log = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(data3.join("blocks.log"))
            .expect("open the log");
        let at = middle.offset + 8 + 5;
        let mut byte = [0u8; 1];
        log.read_exact_at(&mut byte, at).expect("read");
        log.write_all_at(&[byte[0] ^ 0x55], at).expect("write");
        log.sync_all().expect("sync");
    }

    eventually("validator 3 mends its log", 90, || {
        nodes[3].shared.metrics.blocks_mended.get() >= 1
    })
    .await;
    assert!(
        repair::scan(&data3).expect("scan").damaged.is_empty(),
        "the mended log reads back whole"
    );
    let kept_aside = std::fs::read_dir(&data3)
        .expect("data dir")
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("blocks.log.damaged-")
        });
    assert!(kept_aside, "the damaged log is kept as evidence");

    let after = commit_some(&four, &nodes[0].url(), "after-mend", 2).await;
    eventually("the mended validator keeps following", 60, || {
        nodes[3].shared.head().height >= after
    })
    .await;
    let mut nodes = nodes;
    let node3 = nodes.pop().expect("validator 3");
    node3.shutdown().await;
    let client0 = lotline_sdk::Client::new(&nodes[0].url()).expect("client");
    {
        let (store, _) =
            lotline_node::store::Store::open(&data3, four.genesis.validator_set()).expect("open");
        for h in 1..=after {
            let ours = store.read_block(h).expect("read").expect("block");
            let theirs = client0.block(h).await.expect("block");
            assert_eq!(ours.block.hash(), theirs.hash, "height {h}");
        }
    }
    let restarted = four.start(3).await;
    assert!(restarted.shared.head().height >= after);
    restarted.shutdown().await;
    for node in nodes {
        node.shutdown().await;
    }
}
