//! GS1 identifiers: check digits, Digital Link and EPC URN forms, the
//! canonical form, rejections, and properties over random keys.

use lotline_core::gs1::{Gln, Gs1Error, Gtin, Identifier, Sscc, check_digit, is_cset82};
use lotline_core::limits::IDENTIFIER_BYTES_MAX;
use proptest::prelude::*;

fn parse(s: &str) -> Identifier {
    match Identifier::parse(s) {
        Ok(id) => id,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

fn gtin(s: &str) -> Gtin {
    Gtin::parse(s).unwrap()
}

#[test]
fn check_digits_of_known_keys() {
    // GTIN-14, -13, -12, -8 from GS1 examples.
    assert_eq!(check_digit("0950600013435"), Some(2));
    assert_eq!(check_digit("401234500000"), Some(9));
    assert_eq!(check_digit("03600029145"), Some(2));
    assert_eq!(check_digit("9638507"), Some(4));
    // SSCC and GLN use the same algorithm.
    assert_eq!(check_digit("10614141234567890"), Some(8));
    assert_eq!(check_digit("061414107346"), Some(7));

    assert_eq!(gtin("09506000134352").as_str(), "09506000134352");
    assert_eq!(gtin("9506000134352").as_str(), "09506000134352");
    assert_eq!(gtin("4012345000009").as_str(), "04012345000009");
    assert_eq!(gtin("036000291452").as_str(), "00036000291452");
    assert_eq!(gtin("96385074").as_str(), "00000096385074");
    assert_eq!(Gtin::from_body("0950600013435"), Ok(gtin("09506000134352")));
    assert_eq!(
        Sscc::parse("106141412345678908").map(|s| s.to_string()),
        Ok("106141412345678908".into())
    );
    assert_eq!(
        Gln::parse("0614141073467").map(|g| g.to_string()),
        Ok("0614141073467".into())
    );
    assert_eq!("09506000134352".parse::<Gtin>(), Ok(gtin("09506000134352")));
}

#[test]
fn bad_keys_say_what_is_wrong() {
    assert_eq!(
        Gtin::parse("09506000134353"),
        Err(Gs1Error::CheckDigit {
            key: "GTIN",
            value: "09506000134353".into(),
            expected: 2,
            got: 3
        })
    );
    assert_eq!(
        Gtin::parse("0950600013435"),
        Err(Gs1Error::CheckDigit {
            key: "GTIN",
            value: "0950600013435".into(),
            expected: 9,
            got: 5
        })
    );
    assert!(matches!(
        Gtin::parse("095060001343"),
        Err(Gs1Error::CheckDigit { .. })
    ));
    assert!(matches!(
        Gtin::parse("950600013435"),
        Err(Gs1Error::CheckDigit { .. })
    ));
    assert_eq!(
        Gtin::parse("0950600013435x"),
        Err(Gs1Error::NotDigits {
            key: "GTIN",
            value: "0950600013435x".into(),
            ch: 'x'
        })
    );
    assert!(matches!(
        Gtin::parse("123456789"),
        Err(Gs1Error::KeyLength { len: 9, .. })
    ));
    assert!(matches!(
        Gtin::parse(""),
        Err(Gs1Error::KeyLength { len: 0, .. })
    ));
    assert!(matches!(
        Sscc::parse("106141412345678909"),
        Err(Gs1Error::CheckDigit {
            expected: 8,
            got: 9,
            ..
        })
    ));
    assert!(matches!(
        Gln::parse("0614141073468"),
        Err(Gs1Error::CheckDigit {
            expected: 7,
            got: 8,
            ..
        })
    ));
    let message = Gtin::parse("09506000134353").unwrap_err().to_string();
    assert!(message.contains("check digit 3, expected 2"), "{message}");
}

#[test]
fn digital_link_examples() {
    let lot = parse("https://id.gs1.org/01/09506000134352/10/ABC1");
    assert_eq!(
        lot,
        Identifier::Lot {
            gtin: gtin("09506000134352"),
            lot: "ABC1".into()
        }
    );
    assert_eq!(
        lot.canonical(),
        "https://id.gs1.org/01/09506000134352/10/ABC1"
    );

    // Any host, GTIN-13 padded, http, query string ignored.
    let item = parse("https://example.com/01/9506000134352/21/12345");
    assert_eq!(
        item,
        Identifier::Item {
            gtin: gtin("09506000134352"),
            serial: "12345".into()
        }
    );
    assert_eq!(
        item.canonical(),
        "https://id.gs1.org/01/09506000134352/21/12345"
    );
    assert_eq!(
        parse("http://example.com/01/09506000134352/21/12345?17=250101&linkType=gs1:pip"),
        item
    );
    assert_eq!(
        parse("HTTPS://brand.example:8443/01/09506000134352/21/12345#x"),
        item
    );
    assert_eq!(
        parse("https://example.com/01/09506000134352/21/12345/"),
        item
    );

    let product = parse("https://id.gs1.org/01/04012345666663");
    assert_eq!(
        product,
        Identifier::Product {
            gtin: gtin("04012345666663")
        }
    );
    assert_eq!(
        parse("https://example.com/01/96385074").canonical(),
        "https://id.gs1.org/01/00000096385074"
    );

    // Lot and serial together: the serial identifies the item.
    assert_eq!(
        parse("https://id.gs1.org/01/09506000134352/10/ABC1/21/12345"),
        item
    );

    // Percent-decoding and canonical re-encoding (RFC 3986 unreserved kept).
    let odd = parse("https://example.com/01/09506000134352/21/A%2FB!c");
    assert_eq!(
        odd,
        Identifier::Item {
            gtin: gtin("09506000134352"),
            serial: "A/B!c".into()
        }
    );
    assert_eq!(
        odd.canonical(),
        "https://id.gs1.org/01/09506000134352/21/A%2FB%21c"
    );
    assert_eq!(parse(&odd.canonical()), odd);
    assert_eq!(
        parse("https://id.gs1.org/01/09506000134352/21/a-b_c.d").canonical(),
        "https://id.gs1.org/01/09506000134352/21/a-b_c.d"
    );

    let sscc = parse("https://id.gs1.org/00/106141412345678908");
    assert_eq!(
        sscc,
        Identifier::Sscc(Sscc::parse("106141412345678908").unwrap())
    );
    assert_eq!(sscc.canonical(), "https://id.gs1.org/00/106141412345678908");

    let gln = parse("https://example.org/414/0614141073467/254/1234");
    assert_eq!(
        gln,
        Identifier::Location {
            gln: Gln::parse("0614141073467").unwrap(),
            extension: Some("1234".into())
        }
    );
    assert_eq!(
        gln.canonical(),
        "https://id.gs1.org/414/0614141073467/254/1234"
    );
    assert_eq!(
        parse("https://id.gs1.org/414/0614141073467").canonical(),
        "https://id.gs1.org/414/0614141073467"
    );

    // A custom path prefix is read only when the rest parses.
    assert_eq!(
        parse("https://brand.example/dl/01/09506000134352/10/ABC1"),
        lot
    );
    let blog = "https://example.com/blog/01/hello";
    assert_eq!(parse(blog), Identifier::Other(blog.into()));
}

#[test]
fn other_uris_are_kept_verbatim() {
    for s in [
        "urn:uuid:374d95fc-9457-4a51-bd6a-0bba133845a8",
        "https://example.com/x",
        "https://example.com",
        "https://id.gs1.org/8004/4000001111",
        "urn:epc:id:giai:4000001.111",
        "urn:epc:id:gsrn:95252084.000000001",
        "ni:///sha-256;df7bb3c352fef055578554f09f5e2aa41782150ced7bd0b8af24dd3ccb30ba69?ver=CBV2.0",
        "http://transaction.acme.com/po/12345678",
        "example:thing",
    ] {
        let id = parse(s);
        assert_eq!(id, Identifier::Other(s.into()));
        assert_eq!(id.canonical(), s);
        assert_eq!(id.to_string(), s);
        assert!(!id.is_gs1());
        assert_eq!(id.class(), None);
        assert_eq!(
            id.to_epc_urn(7),
            Err(Gs1Error::NotAGs1Key { input: s.into() })
        );
    }
}

/// (EPC URN, canonical Digital Link, company prefix length).
const URN_ROUND_TRIPS: &[(&str, &str, usize)] = &[
    (
        "urn:epc:id:sgtin:0614141.107346.2017",
        "https://id.gs1.org/01/10614141073464/21/2017",
        7,
    ),
    (
        "urn:epc:id:sgtin:0614141.812345.6789",
        "https://id.gs1.org/01/80614141123458/21/6789",
        7,
    ),
    (
        "urn:epc:id:sgtin:4012345.033333.AGHFG",
        "https://id.gs1.org/01/04012345333336/21/AGHFG",
        7,
    ),
    (
        "urn:epc:id:sgtin:0614141.107346.A%2FB%25C",
        "https://id.gs1.org/01/10614141073464/21/A%2FB%25C",
        7,
    ),
    (
        "urn:epc:id:sgtin:0614141.107346.x!y.z",
        "https://id.gs1.org/01/10614141073464/21/x%21y.z",
        7,
    ),
    (
        "urn:epc:class:lgtin:4012345.012345.998877",
        "https://id.gs1.org/01/04012345123456/10/998877",
        7,
    ),
    (
        "urn:epc:class:lgtin:0614141.077777.987",
        "https://id.gs1.org/01/00614141777778/10/987",
        7,
    ),
    (
        "urn:epc:idpat:sgtin:4012345.066666.*",
        "https://id.gs1.org/01/04012345666663",
        7,
    ),
    (
        "urn:epc:id:sscc:0614141.1234567890",
        "https://id.gs1.org/00/106141412345678908",
        7,
    ),
    (
        "urn:epc:id:sgln:0614141.07346.1234",
        "https://id.gs1.org/414/0614141073467/254/1234",
        7,
    ),
    (
        "urn:epc:id:sgln:0614141.00777.0",
        "https://id.gs1.org/414/0614141007776",
        7,
    ),
    (
        "urn:epc:id:sgln:952005385.011.ts4711",
        "https://id.gs1.org/414/9520053850113/254/ts4711",
        9,
    ),
    (
        "urn:epc:id:sgln:061414107346..0",
        "https://id.gs1.org/414/0614141073467",
        12,
    ),
    (
        "urn:epc:id:sgtin:061414112345.0.1",
        "https://id.gs1.org/01/00614141123452/21/1",
        12,
    ),
    (
        "urn:epc:id:sgtin:950600.0013435.7",
        "https://id.gs1.org/01/09506000134352/21/7",
        6,
    ),
];

#[test]
fn epc_urns_and_digital_links_round_trip() {
    for &(urn, link, prefix_len) in URN_ROUND_TRIPS {
        let from_urn = parse(urn);
        let from_link = parse(link);
        assert_eq!(from_urn, from_link, "{urn} vs {link}");
        assert_eq!(from_urn.canonical(), link, "{urn}");
        assert_eq!(
            from_link.to_epc_urn(prefix_len).as_deref(),
            Ok(urn),
            "{link}"
        );
    }
}

#[test]
fn urn_details() {
    // URN namespaces are case-insensitive; the serial is not.
    assert_eq!(
        parse("URN:EPC:ID:SGTIN:0614141.107346.Ab"),
        parse("urn:epc:id:sgtin:0614141.107346.Ab")
    );
    assert_ne!(
        parse("urn:epc:id:sgtin:0614141.107346.ab"),
        parse("urn:epc:id:sgtin:0614141.107346.Ab")
    );
    // Escapes that need not be there still decode to the same serial.
    assert_eq!(
        parse("urn:epc:id:sgtin:0614141.107346.%41"),
        parse("urn:epc:id:sgtin:0614141.107346.A")
    );
    // The same key with another company prefix length is the same key.
    assert_eq!(
        parse("urn:epc:id:sgtin:06141410.17346.2017"),
        parse("urn:epc:id:sgtin:0614141.107346.2017")
    );
    let item = parse("urn:epc:id:sgtin:0614141.107346.2017");
    assert_eq!(
        item.to_epc_urn(8).as_deref(),
        Ok("urn:epc:id:sgtin:06141410.17346.2017")
    );
    assert_eq!(
        item.to_epc_urn(5),
        Err(Gs1Error::CompanyPrefixLength { len: 5 })
    );
    assert_eq!(
        item.to_epc_urn(13),
        Err(Gs1Error::CompanyPrefixLength { len: 13 })
    );
    // Escaping on the way out.
    let slash = Identifier::item(gtin("10614141073464"), "a/b&c\"d<e>f?g%h").unwrap();
    let urn = slash.to_epc_urn(7).unwrap();
    assert_eq!(
        urn,
        "urn:epc:id:sgtin:0614141.107346.a%2Fb%26c%22d%3Ce%3Ef%3Fg%25h"
    );
    assert_eq!(parse(&urn), slash);
}

#[test]
fn class_rolls_items_and_lots_up_to_products() {
    let product = Identifier::Product {
        gtin: gtin("09506000134352"),
    };
    assert_eq!(
        parse("https://id.gs1.org/01/09506000134352/10/ABC1").class(),
        Some(product.clone())
    );
    assert_eq!(
        parse("urn:epc:id:sgtin:9506000.013435.9").class(),
        Some(product.clone())
    );
    assert_eq!(product.class(), None);
    assert_eq!(parse("urn:epc:id:sscc:0614141.1234567890").class(), None);
    assert_eq!(
        parse("https://id.gs1.org/01/09506000134352/21/1").gtin(),
        Some(&gtin("09506000134352"))
    );
}

#[test]
fn display_and_from_str_use_the_canonical_form() {
    let id: Identifier = "urn:epc:class:lgtin:0614141.077777.987".parse().unwrap();
    assert_eq!(
        id.to_string(),
        "https://id.gs1.org/01/00614141777778/10/987"
    );
}

#[test]
fn rejections() {
    use Gs1Error::*;
    let cases: Vec<(&str, Gs1Error)> = vec![
        ("", Empty),
        (
            "not a uri",
            NotAUri {
                input: "not a uri".into(),
            },
        ),
        (
            "09506000134352",
            NotAUri {
                input: "09506000134352".into(),
            },
        ),
        (
            "urn:uuid:1 2",
            NotAUri {
                input: "urn:uuid:1 2".into(),
            },
        ),
        (
            "https://id.gs1.org/01/09506000134353",
            CheckDigit {
                key: "GTIN",
                value: "09506000134353".into(),
                expected: 2,
                got: 3,
            },
        ),
        (
            "https://id.gs1.org/01/09506000134352/10/AB%20C",
            BadChar {
                field: "lot (AI 10)",
                value: "AB C".into(),
                ch: ' ',
            },
        ),
        (
            "https://id.gs1.org/01/09506000134352/21/s/10/l",
            AiOrder {
                input: "https://id.gs1.org/01/09506000134352/21/s/10/l".into(),
                ai: "10".into(),
                after: "21".into(),
            },
        ),
        (
            "https://id.gs1.org/01/09506000134352/10/a/10/b",
            AiOrder {
                input: "https://id.gs1.org/01/09506000134352/10/a/10/b".into(),
                ai: "10".into(),
                after: "10".into(),
            },
        ),
        (
            "https://id.gs1.org/01/09506000134352/17/250101",
            UnknownAi {
                input: "https://id.gs1.org/01/09506000134352/17/250101".into(),
                ai: "17".into(),
                key: "01".into(),
            },
        ),
        (
            "https://id.gs1.org/01/09506000134352/22/2A",
            UnsupportedQualifier {
                input: "https://id.gs1.org/01/09506000134352/22/2A".into(),
                ai: "22".into(),
            },
        ),
        (
            "https://id.gs1.org/00/106141412345678908/21/1",
            UnknownAi {
                input: "https://id.gs1.org/00/106141412345678908/21/1".into(),
                ai: "21".into(),
                key: "00".into(),
            },
        ),
        (
            "https://id.gs1.org/01/09506000134352/21",
            MissingValue {
                input: "https://id.gs1.org/01/09506000134352/21".into(),
                ai: "21".into(),
            },
        ),
        (
            "https://id.gs1.org/01",
            MissingValue {
                input: "https://id.gs1.org/01".into(),
                ai: "01".into(),
            },
        ),
        (
            "https://id.gs1.org/01/09506000134352/21/%zz",
            PercentEncoding {
                input: "https://id.gs1.org/01/09506000134352/21/%zz".into(),
                escape: "%zz".into(),
            },
        ),
        (
            "https://id.gs1.org/01/09506000134352/21/123456789012345678901",
            ValueLength {
                field: "serial (AI 21)",
                value: "123456789012345678901".into(),
                len: 21,
            },
        ),
        (
            "urn:epc:id:sgtin:0614141.10734.2017",
            UrnDigitCount {
                input: "urn:epc:id:sgtin:0614141.10734.2017".into(),
                reference: "item reference",
                prefix_digits: 7,
                reference_digits: 5,
                expected: 13,
            },
        ),
        (
            "urn:epc:id:sgtin:0614141.107346",
            UrnParts {
                input: "urn:epc:id:sgtin:0614141.107346".into(),
                scheme: "sgtin",
                expected: 3,
                found: 2,
            },
        ),
        (
            "urn:epc:id:sgtin:06141.1073460.1",
            CompanyPrefixLength { len: 5 },
        ),
        (
            "urn:epc:id:sgtin:0614141.107346.a~b",
            BadChar {
                field: "serial (AI 21)",
                value: "a~b".into(),
                ch: '~',
            },
        ),
        (
            "urn:epc:id:sgtin:0614141.10734x.1",
            NotDigits {
                key: "item reference",
                value: "10734x".into(),
                ch: 'x',
            },
        ),
        (
            "urn:epc:idpat:sgtin:0614141.*.*",
            UrnPattern {
                input: "urn:epc:idpat:sgtin:0614141.*.*".into(),
            },
        ),
        (
            "urn:epc:id:sscc:0614141.123456789",
            UrnDigitCount {
                input: "urn:epc:id:sscc:0614141.123456789".into(),
                reference: "serial reference",
                prefix_digits: 7,
                reference_digits: 9,
                expected: 17,
            },
        ),
        (
            "urn:epc:id:sgln:0614141.0734.0",
            UrnDigitCount {
                input: "urn:epc:id:sgln:0614141.0734.0".into(),
                reference: "location reference",
                prefix_digits: 7,
                reference_digits: 4,
                expected: 12,
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(Identifier::parse(input), Err(expected), "{input}");
    }
    // '#' starts the fragment, which is not identity: the lot is "AB".
    assert_eq!(
        parse("https://id.gs1.org/01/09506000134352/10/AB#C").canonical(),
        "https://id.gs1.org/01/09506000134352/10/AB"
    );
}

#[test]
fn too_long_is_rejected_before_anything_else() {
    let long = format!("urn:uuid:{}", "a".repeat(IDENTIFIER_BYTES_MAX));
    assert_eq!(
        Identifier::parse(&long),
        Err(Gs1Error::TooLong {
            len: long.len(),
            max: IDENTIFIER_BYTES_MAX
        })
    );
    let fits = format!("urn:x:{}", "a".repeat(IDENTIFIER_BYTES_MAX - 6));
    assert!(Identifier::parse(&fits).is_ok());
}

#[test]
fn constructors_check_values() {
    let g = gtin("09506000134352");
    assert!(Identifier::item(g.clone(), "").is_err());
    assert!(Identifier::lot(g.clone(), "ü").is_err());
    assert_eq!(
        Identifier::lot(g.clone(), "L1"),
        Ok(Identifier::Lot {
            gtin: g,
            lot: "L1".into()
        })
    );
}

/// A string of 1..=20 characters of set 82.
fn ai_value() -> impl Strategy<Value = String> {
    let cset82: Vec<char> = (0u8..128)
        .map(char::from)
        .filter(|c| is_cset82(*c))
        .collect();
    assert_eq!(cset82.len(), 82);
    proptest::collection::vec(proptest::sample::select(cset82), 1..=20)
        .prop_map(|v| v.into_iter().collect())
}

fn any_gtin() -> impl Strategy<Value = Gtin> {
    "[0-9]{13}".prop_map(|body| Gtin::from_body(&body).unwrap())
}

fn any_gs1_identifier() -> impl Strategy<Value = Identifier> {
    prop_oneof![
        (any_gtin(), ai_value()).prop_map(|(gtin, serial)| Identifier::Item { gtin, serial }),
        (any_gtin(), ai_value()).prop_map(|(gtin, lot)| Identifier::Lot { gtin, lot }),
        any_gtin().prop_map(|gtin| Identifier::Product { gtin }),
        "[0-9]{17}".prop_map(|body| Identifier::Sscc(Sscc::from_body(&body).unwrap())),
        ("[0-9]{12}", proptest::option::of(ai_value())).prop_map(|(body, extension)| {
            Identifier::Location {
                gln: Gln::from_body(&body).unwrap(),
                extension: extension.filter(|e| e != "0"),
            }
        }),
    ]
}

proptest! {
    #[test]
    fn canonical_parses_back(id in any_gs1_identifier()) {
        let canonical = id.canonical();
        prop_assert_eq!(Identifier::parse(&canonical), Ok(id.clone()));
        prop_assert_eq!(parse(&canonical).canonical(), canonical);
    }

    #[test]
    fn epc_urn_parses_back(id in any_gs1_identifier(), prefix_len in 6usize..=12) {
        let urn = id.to_epc_urn(prefix_len).unwrap();
        prop_assert_eq!(Identifier::parse(&urn), Ok(id));
    }

    #[test]
    fn a_wrong_check_digit_is_always_caught(body in "[0-9]{13}", delta in 1u8..=9) {
        let right = check_digit(&body).unwrap();
        let wrong = (right + delta) % 10;
        let link = format!("https://id.gs1.org/01/{body}{wrong}");
        let is_check_digit_error = matches!(Identifier::parse(&link), Err(Gs1Error::CheckDigit { .. }));
        prop_assert!(is_check_digit_error);
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,80}") {
        let _ = Identifier::parse(&s);
    }

    #[test]
    fn parse_never_panics_on_near_misses(
        s in "(https?://[a-z.]{0,8}|urn:epc:(id|class|idpat):(sgtin|lgtin|sscc|sgln):)[0-9./%A-Za-z*!~]{0,40}"
    ) {
        if let Ok(id) = Identifier::parse(&s) {
            // Whatever parses has a canonical form that parses to the same.
            prop_assert_eq!(Identifier::parse(&id.canonical()), Ok(id));
        }
    }

    #[test]
    fn digital_link_paths_never_panic(segments in proptest::collection::vec("(00|01|10|21|22|254|414|[0-9]{1,14}|%[0-9A-F]{2}|[A-Za-z%]{0,5})", 0..8)) {
        let link = format!("https://example.com/{}", segments.join("/"));
        let _ = Identifier::parse(&link);
    }
}
