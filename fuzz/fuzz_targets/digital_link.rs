//! GS1 identifiers as members and phones send them: Digital Link URIs on any
//! host, EPC URNs, other URIs. Property: the canonical form of a parsed
//! identifier parses back to the same identifier, and so does its EPC URN.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_core::gs1::Identifier;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(id) = Identifier::parse(text) else {
        return;
    };
    let canonical = id.canonical();
    match Identifier::parse(&canonical) {
        Ok(again) => {
            assert_eq!(
                again, id,
                "{text:?}: canonical form {canonical:?} parses differently"
            );
            assert_eq!(again.canonical(), canonical, "canonical form is not stable");
        }
        Err(e) => panic!("{text:?}: canonical form {canonical:?} does not parse: {e}"),
    }
    if !id.is_gs1() {
        assert_eq!(canonical, text, "a non-GS1 URI is kept verbatim");
        return;
    }
    let _ = id.class();
    for prefix in 6..=12 {
        let Ok(urn) = id.to_epc_urn(prefix) else {
            continue;
        };
        match Identifier::parse(&urn) {
            Ok(again) => assert_eq!(again, id, "{text:?}: EPC URN {urn:?} parses differently"),
            Err(e) => panic!("{text:?}: own EPC URN {urn:?} does not parse: {e}"),
        }
    }
});
