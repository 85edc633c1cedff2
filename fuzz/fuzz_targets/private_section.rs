//! A statement's private section, in either form (version 2's object,
//! version 3's compact base64 string). Decoding must give a typed
//! error or a section that passes its checks, re-encodes to itself, and
//! opens for nobody but a recipient with the right key: a fuzzed section
//! that names the fixture key as a recipient must still fail to open
//! (its wrap was not made to that key), never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_core::private::{EncryptionSecretKey, PrivateSection};
use lotline_fuzz::check_json_round_trip;

fuzz_target!(|data: &[u8]| {
    let Ok(section) = serde_json::from_slice::<PrivateSection>(data) else {
        return;
    };
    check_json_round_trip(&section);
    if section.check().is_err() {
        return;
    }
    let _ = section.binding();
    let key = EncryptionSecretKey::derive(&[7u8; 32]);
    for recipient in &section.recipients {
        assert!(
            section.open(&recipient.org, &key).is_err(),
            "a fuzzed section opened"
        );
    }
});
