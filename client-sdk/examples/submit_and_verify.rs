//! Commissions a lot with a passed inspection, submits it, waits for the
//! commit and verifies the receipt offline against the local genesis file.
//!
//! ```text
//! cargo run -p lotline-sdk --example submit_and_verify -- \
//!     --url http://127.0.0.1:8080 --genesis demo/genesis.toml \
//!     --org supplier --key demo/supplier/client.key
//! ```
//! Exits with status 1 if anything fails, 2 on bad arguments.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lotline_sdk::{AttestationBuilder, Client, Genesis, SdkError, Signer};
use serde_json::json;

const USAGE: &str = "usage: submit_and_verify --url http://127.0.0.1:8080 --genesis GENESIS.toml --org ORG --key CLIENT.key";

struct Args {
    url: String,
    genesis: String,
    org: String,
    key: String,
}

fn parse_args() -> Result<Args, String> {
    let (mut url, mut genesis, mut org, mut key) = (None, None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--url" => &mut url,
            "--genesis" => &mut genesis,
            "--org" => &mut org,
            "--key" => &mut key,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        };
        *slot = Some(
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?,
        );
    }
    let missing = |name: &str| format!("missing --{name}\n{USAGE}");
    Ok(Args {
        url: url.unwrap_or_else(|| "http://127.0.0.1:8080".to_owned()),
        genesis: genesis.ok_or_else(|| missing("genesis"))?,
        org: org.ok_or_else(|| missing("org"))?,
        key: key.ok_or_else(|| missing("key"))?,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    // The trust anchor is the local genesis file, never the node's copy.
    let genesis = Genesis::load(&args.genesis).map_err(|e| e.to_string())?;
    let signer = Signer::from_key_file(&args.org, &args.key).map_err(|e| e.to_string())?;
    match genesis.org(&args.org) {
        None => {
            return Err(format!(
                "org {:?} is not in genesis {}",
                args.org, args.genesis
            ));
        }
        Some(org) if !org.client_keys.contains(&signer.public_key()) => {
            return Err(format!(
                "key {} is not a client key of org {:?} in genesis {}",
                signer.public_key(),
                args.org,
                args.genesis
            ));
        }
        Some(_) => {}
    }

    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis();
    let now =
        lotline_core::time::format_rfc3339_ms(i64::try_from(now_ms).map_err(|e| e.to_string())?);
    let event = json!({
        "type": "ObjectEvent",
        "eventTime": now,
        "eventTimeZoneOffset": "+00:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "quantityList": [
            { "epcClass": "https://id.gs1.org/01/09506000134352/10/LOT-1", "quantity": 500.0, "uom": "KGM" }
        ],
        "readPoint": { "id": "https://id.gs1.org/414/9506000134376" },
        "lotline:quality": {
            "kind": "inspection",
            "result": "pass",
            "method": "incoming inspection",
            "measurements": [
                { "name": "moisture", "value": 0.06, "uom": "P1", "specMax": 0.10 },
                { "name": "meltFlowRate", "value": 12.1, "specMin": 10.0, "specMax": 14.0 }
            ]
        }
    });
    let envelope = AttestationBuilder::new(genesis.chain_id(), &signer)
        .event_json(event)
        .and_then(AttestationBuilder::build)
        .map_err(|e| e.to_string())?;
    println!("attestation {}", envelope.id());

    let client = Client::new(&args.url)
        .map_err(|e| e.to_string())?
        .with_timeout(Duration::from_secs(30));
    let verified = match client.submit_and_verify(&envelope, &genesis).await {
        Ok(verified) => verified,
        Err(SdkError::Timeout { id }) => {
            return Err(format!(
                "not committed within the wait; it may still be: look up {id}"
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    println!(
        "committed at height {} in block {}",
        verified.height, verified.block
    );
    println!(
        "receipt verified offline against chain {}",
        genesis.chain_id()
    );
    for index in &verified.certified_by {
        let validator = genesis.validators().get(usize::from(*index));
        match validator {
            Some(v) => println!(
                "  certified by validator {index} (org {}, key {})",
                v.org, v.node_key
            ),
            None => println!("  certified by validator {index}"),
        }
    }
    Ok(())
}
