//! The node's operator config (TOML): parse and validate, relative paths
//! against a directory that holds the files a config may name; then the API
//! credentials it lists, checked against the genesis as at node start.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_fuzz::{config_base, genesis};
use lotline_node::NodeConfig;
use lotline_node::access::credentials::Credentials;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = NodeConfig::parse(text, config_base()) else {
        return;
    };
    let _ = Credentials::from_entries(&config.credentials, genesis(), "supplier");
});
