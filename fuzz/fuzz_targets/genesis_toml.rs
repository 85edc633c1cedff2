//! Genesis files (TOML): parse and validate; a valid genesis written back
//! as TOML parses to the same genesis and chain id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_genesis::Genesis;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(genesis) = Genesis::from_toml(text) else {
        return;
    };
    let written = genesis.to_toml();
    match Genesis::from_toml(&written) {
        Ok(again) => {
            assert_eq!(again, genesis, "TOML round trip changed the genesis");
            assert_eq!(
                again.chain_id(),
                genesis.chain_id(),
                "TOML round trip changed the chain id"
            );
            assert_eq!(again.to_toml(), written, "TOML form is not stable");
        }
        Err(e) => panic!("own TOML does not parse: {e}\n{written}"),
    }
    let _ = genesis.validator_set();
});
