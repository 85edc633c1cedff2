//! What the fuzz targets share: one deterministic consortium and the
//! property checks every codec target makes.
//!
//! The consortium is fixed (keys from constant seeds, the default write and
//! read policy, four orgs that each run a validator) so that a target can
//! *sign* what the fuzzer wrote and reach the checks that sit behind a
//! signature (admission's policy and EPCIS rules, a consensus engine's view
//! logic), and so that the seed generator (`examples/seed_corpus.rs`) and
//! the targets agree on chain id and keys.

#![forbid(unsafe_code)]

use std::fmt::Debug;
use std::sync::OnceLock;

use lotline_core::SigningKey;
use lotline_genesis::{
    ConsensusParams, Genesis, Org, Role, Validator, default_policy, default_read_policy,
};

/// The orgs of the fixture consortium, in genesis (= validator) order; the
/// same ids as `lotline demo`, so the simulator's workload fits the policy.
pub const ORGS: [(&str, Role); 4] = [
    ("supplier", Role::Supplier),
    ("manufacturer", Role::Manufacturer),
    ("distributor", Role::Distributor),
    ("regulator", Role::Regulator),
];

/// The client (attestation) key of org `i`.
pub fn client_key(i: usize) -> SigningKey {
    SigningKey::from_seed(&[0x10 + seed_byte(i); 32])
}

/// The validator node key of org `i`.
pub fn node_key(i: usize) -> SigningKey {
    SigningKey::from_seed(&[0x20 + seed_byte(i); 32])
}

fn seed_byte(i: usize) -> u8 {
    u8::try_from(i % ORGS.len()).unwrap_or(0)
}

/// The fixture genesis (built once per process).
pub fn genesis() -> &'static Genesis {
    static GENESIS: OnceLock<Genesis> = OnceLock::new();
    GENESIS.get_or_init(|| {
        let orgs = ORGS
            .iter()
            .enumerate()
            .map(|(i, (id, role))| Org {
                id: (*id).to_owned(),
                name: format!("Fuzz {id}"),
                role: *role,
                client_keys: vec![client_key(i).public_key()],
                encryption_key: None,
            })
            .collect();
        let validators = ORGS
            .iter()
            .enumerate()
            .map(|(i, (id, _))| Validator {
                org: (*id).to_owned(),
                node_key: node_key(i).public_key(),
                p2p: None,
            })
            .collect();
        Genesis::from_parts(
            "lotline-fuzz".to_owned(),
            ConsensusParams::default(),
            orgs,
            validators,
            default_policy(),
            default_read_policy(),
        )
        .unwrap_or_else(|e| panic!("the fixture genesis is invalid: {e}"))
    })
}

/// The org index whose client key may sign a statement naming `org`.
pub fn org_index(org: &str) -> Option<usize> {
    ORGS.iter().position(|(id, _)| *id == org)
}

/// A consensus engine of validator `index` of the fixture consortium,
/// started (its first view's timers and, for the leader, a build request
/// are discarded).
pub fn engine(index: u16) -> lotline_consensus::Engine {
    let genesis = genesis();
    let validators = genesis.validator_set().validators;
    let config = lotline_consensus::Config::new(
        genesis.chain_id(),
        validators,
        index,
        node_key(usize::from(index)),
    );
    let mut engine = lotline_consensus::Engine::new(config);
    let _ = engine.start();
    engine
}

/// The property of every postcard codec that claims one encoding per value:
/// whatever `decode` accepted re-encodes to exactly the input bytes.
pub fn assert_canonical<T: Debug>(input: &[u8], value: &T, encode: impl Fn(&T) -> Vec<u8>) {
    let again = encode(value);
    assert!(
        again == input,
        "accepted a non-canonical encoding: {} bytes in, {} bytes out, value {value:?}",
        input.len(),
        again.len()
    );
}

/// JSON round trip: a decoded value serialises to JSON that decodes to the
/// same value, and serialising that again gives the same bytes.
pub fn check_json_round_trip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + Debug,
{
    let json = serde_json::to_vec(value).unwrap_or_else(|e| panic!("encode {value:?}: {e}"));
    let back: T = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "own JSON does not decode: {e}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(&back, value, "JSON round trip changed the value");
    let again = serde_json::to_vec(&back).unwrap_or_else(|e| panic!("encode {back:?}: {e}"));
    assert_eq!(again, json, "JSON encoding is not stable");
}

/// The node's admission over the fixture genesis.
pub fn admission() -> &'static lotline_node::admission::Admission {
    static ADMISSION: OnceLock<lotline_node::admission::Admission> = OnceLock::new();
    ADMISSION.get_or_init(|| {
        lotline_node::admission::Admission::new(std::sync::Arc::new(genesis().clone()))
    })
}

/// A few hundred valid events of every type (the simulator's demo story),
/// for targets that match fuzzed queries against real events.
pub fn story() -> &'static [lotline_sim::workload::WorkItem] {
    static STORY: OnceLock<Vec<lotline_sim::workload::WorkItem>> = OnceLock::new();
    STORY.get_or_init(|| {
        lotline_sim::workload::SupplyChainWorkload::generate(
            7,
            lotline_sim::workload::Scale::demo(),
        )
    })
}

/// A directory holding the files a node config may name (`genesis.toml`,
/// `node.key`, `client.key`, `cert.pem`, `key.pem`), so fuzzed configs that
/// name them get past the existence check to the checks behind it.
pub fn config_base() -> &'static std::path::Path {
    static BASE: OnceLock<std::path::PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = std::env::temp_dir().join("lotline-fuzz-config");
        let _ = std::fs::create_dir_all(&dir);
        for name in [
            "genesis.toml",
            "node.key",
            "client.key",
            "cert.pem",
            "key.pem",
        ] {
            let _ = std::fs::write(dir.join(name), b"");
        }
        dir
    })
}
