//! RFC 3339 <-> unix milliseconds: known values, round trips, rejections.

use lotline_core::time::{
    MAX_MS, MIN_MS, TimeError, format_offset_minutes, format_rfc3339_ms, parse_date_ms,
    parse_date_or_rfc3339_ms, parse_offset_minutes, parse_rfc3339_ms,
};
use proptest::prelude::*;

#[test]
fn known_values() {
    let cases = [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.001Z", 1),
        ("1969-12-31T23:59:59.999Z", -1),
        ("2013-06-08T14:58:56.591Z", 1_370_703_536_591),
        ("2013-10-31T14:58:56.591Z", 1_383_231_536_591),
        ("2000-02-29T00:00:00Z", 951_782_400_000),
        ("2038-01-19T03:14:07Z", 2_147_483_647_000),
        ("0000-01-01T00:00:00Z", MIN_MS),
        ("9999-12-31T23:59:59.999Z", MAX_MS),
        // EPCIS fixture forms: offsets, 1 and 6 fraction digits.
        ("2005-04-03T20:33:31.116000-06:00", 1_112_582_011_116),
        ("2005-07-11T11:30:47.0Z", 1_121_081_447_000),
        ("2013-06-04T14:59:02.099+02:00", 1_370_350_742_099),
        ("2020-01-15T07:47:21.677+00:00", 1_579_074_441_677),
        // Lowercase t/z, -00:00, 9 digits truncated (not rounded).
        ("2013-06-08t14:58:56.591z", 1_370_703_536_591),
        ("1970-01-01T00:00:00-00:00", 0),
        ("1970-01-01T00:00:00.999999999Z", 999),
        ("1970-01-01T00:00:00.5Z", 500),
        ("1970-01-01T00:00:00.05Z", 50),
    ];
    for (s, ms) in cases {
        assert_eq!(parse_rfc3339_ms(s), Ok(ms), "{s}");
    }
}

#[test]
fn offsets_shift_to_utc() {
    let utc = parse_rfc3339_ms("2019-04-02T14:00:00Z");
    assert_eq!(parse_rfc3339_ms("2019-04-02T15:00:00.000+01:00"), utc);
    assert_eq!(parse_rfc3339_ms("2019-04-02T08:30:00-05:30"), utc);
    assert_eq!(parse_rfc3339_ms("2019-04-03T03:59:00+13:59"), utc);
    assert_eq!(parse_rfc3339_ms("2019-04-02T00:00:00-14:00"), utc);
    assert_eq!(
        parse_rfc3339_ms("2019-04-02T14:00:00.001+00:00"),
        utc.map(|ms| ms + 1)
    );
}

#[test]
fn formats_utc_with_three_fraction_digits() {
    assert_eq!(
        format_rfc3339_ms(1_383_231_536_591),
        "2013-10-31T14:58:56.591Z"
    );
    assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    assert_eq!(format_rfc3339_ms(MIN_MS), "0000-01-01T00:00:00.000Z");
    assert_eq!(format_rfc3339_ms(MAX_MS), "9999-12-31T23:59:59.999Z");
    // Outside 0000..=9999: ISO 8601 expanded years, which parse rejects.
    assert_eq!(format_rfc3339_ms(MAX_MS + 1), "+10000-01-01T00:00:00.000Z");
    assert_eq!(format_rfc3339_ms(MIN_MS - 1), "-0001-12-31T23:59:59.999Z");
    assert!(parse_rfc3339_ms(&format_rfc3339_ms(MAX_MS + 1)).is_err());
    // Total over i64: never panics.
    let _ = format_rfc3339_ms(i64::MIN);
    let _ = format_rfc3339_ms(i64::MAX);
}

#[test]
fn leap_years() {
    assert!(parse_rfc3339_ms("2024-02-29T00:00:00Z").is_ok());
    assert!(parse_rfc3339_ms("2000-02-29T00:00:00Z").is_ok());
    assert!(parse_rfc3339_ms("0000-02-29T00:00:00Z").is_ok());
    for s in [
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
    ] {
        assert!(
            matches!(
                parse_rfc3339_ms(s),
                Err(TimeError::Day {
                    day: 29,
                    month: 2,
                    ..
                })
            ),
            "{s}"
        );
    }
}

#[test]
fn precise_errors() {
    let s = "2013-13-08T14:58:56Z";
    assert_eq!(
        parse_rfc3339_ms(s),
        Err(TimeError::Month {
            input: s.into(),
            month: 13
        })
    );
    let s = "2013-04-31T14:58:56Z";
    assert_eq!(
        parse_rfc3339_ms(s),
        Err(TimeError::Day {
            input: s.into(),
            year: 2013,
            month: 4,
            day: 31
        })
    );
    let s = "2013-04-00T14:58:56Z";
    assert!(matches!(
        parse_rfc3339_ms(s),
        Err(TimeError::Day { day: 0, .. })
    ));
    let s = "2013-04-08T24:00:00Z";
    assert_eq!(
        parse_rfc3339_ms(s),
        Err(TimeError::Hour {
            input: s.into(),
            hour: 24
        })
    );
    let s = "2013-04-08T23:60:00Z";
    assert_eq!(
        parse_rfc3339_ms(s),
        Err(TimeError::Minute {
            input: s.into(),
            minute: 60
        })
    );
    let s = "2016-12-31T23:59:60Z";
    assert_eq!(
        parse_rfc3339_ms(s),
        Err(TimeError::Second {
            input: s.into(),
            second: 60
        })
    );
    let s = "2013-04-08T23:00:00.Z";
    assert_eq!(
        parse_rfc3339_ms(s),
        Err(TimeError::Fraction {
            input: s.into(),
            digits: 0
        })
    );
    let s = "2013-04-08T23:00:00.1234567890Z";
    assert_eq!(
        parse_rfc3339_ms(s),
        Err(TimeError::Fraction {
            input: s.into(),
            digits: 10
        })
    );
    let s = "2013-04-08T23:00:00+24:00";
    assert_eq!(
        parse_rfc3339_ms(s),
        Err(TimeError::Offset {
            input: s.into(),
            hours: 24,
            minutes: 0
        })
    );
    let s = "2013-04-08 23:00:00Z";
    assert_eq!(
        parse_rfc3339_ms(s),
        Err(TimeError::Syntax {
            input: s.into(),
            expected: "'T'",
            at: 10
        })
    );
}

#[test]
fn rejects_malformed() {
    let bad = [
        "",
        "2013",
        "2013-06-08",
        "2013-06-08T14:58Z",
        "2013-06-08T14:58:56",
        "2013-06-08T14:58:56+0200",
        "2013-06-08T14:58:56+02",
        "2013-06-08T14:58:56ZZ",
        "2013-06-08T14:58:56Z ",
        " 2013-06-08T14:58:56Z",
        "13-06-08T14:58:56Z",
        "+2013-06-08T14:58:56Z",
        "2013-6-08T14:58:56Z",
        "2013-06-08T4:58:56Z",
        "２013-06-08T14:58:56Z",
        "2013-06-08T14:58:56,5Z",
        "-0001-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
    ];
    for s in bad {
        assert!(parse_rfc3339_ms(s).is_err(), "{s:?} should be rejected");
    }
}

#[test]
fn long_inputs_are_clipped_in_errors() {
    let s = format!("2013-06-08T14:58:56Z{}", "x".repeat(10_000));
    let Err(e) = parse_rfc3339_ms(&s) else {
        panic!("accepted")
    };
    assert!(e.to_string().len() < 300, "{e}");
}

#[test]
fn event_time_zone_offsets() {
    assert_eq!(parse_offset_minutes("+02:00"), Ok(120));
    assert_eq!(parse_offset_minutes("-05:30"), Ok(-330));
    assert_eq!(parse_offset_minutes("+00:00"), Ok(0));
    assert_eq!(parse_offset_minutes("-00:00"), Ok(0));
    assert_eq!(parse_offset_minutes("+14:00"), Ok(840));
    assert_eq!(parse_offset_minutes("-14:00"), Ok(-840));
    assert_eq!(parse_offset_minutes("+13:59"), Ok(839));
    assert_eq!(
        parse_offset_minutes("+14:01"),
        Err(TimeError::OffsetRange {
            input: "+14:01".into(),
            minutes: 841
        })
    );
    assert!(matches!(
        parse_offset_minutes("-15:00"),
        Err(TimeError::OffsetRange { minutes: -900, .. })
    ));
    for bad in [
        "Z",
        "z",
        "02:00",
        "+2:00",
        "+0200",
        "+02:0",
        "+02:60",
        "+02:00 ",
        "",
        "+02:00:00",
    ] {
        assert!(
            parse_offset_minutes(bad).is_err(),
            "{bad:?} should be rejected"
        );
    }
    for minutes in -840..=840 {
        assert_eq!(
            parse_offset_minutes(&format_offset_minutes(minutes)),
            Ok(minutes)
        );
    }
}

#[test]
fn dates() {
    assert_eq!(parse_date_ms("1970-01-02"), Ok(86_400_000));
    assert_eq!(
        parse_date_ms("2014-12-10"),
        parse_rfc3339_ms("2014-12-10T00:00:00Z")
    );
    assert!(matches!(
        parse_date_ms("2014-02-30"),
        Err(TimeError::Day { .. })
    ));
    assert!(parse_date_ms("2014-12-10T00:00:00Z").is_err());
    assert_eq!(
        parse_date_or_rfc3339_ms("2014-12-10"),
        parse_date_ms("2014-12-10")
    );
    assert_eq!(
        parse_date_or_rfc3339_ms("2014-12-10T01:00:00+01:00"),
        parse_date_ms("2014-12-10")
    );
    assert!(parse_date_or_rfc3339_ms("2014-12-1").is_err());
}

proptest! {
    #[test]
    fn format_then_parse_round_trips(ms in MIN_MS..=MAX_MS) {
        let s = format_rfc3339_ms(ms);
        prop_assert_eq!(s.len(), 24);
        prop_assert_eq!(parse_rfc3339_ms(&s), Ok(ms));
    }

    #[test]
    fn round_trips_near_the_epoch(ms in -10_000_000_000_000i64..10_000_000_000_000) {
        prop_assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Ok(ms));
    }

    #[test]
    fn an_offset_is_a_shift(ms in 0i64..=253_000_000_000_000, minutes in -840i32..=840) {
        // Write the same instant as local time at `minutes` east of UTC.
        let local = format_rfc3339_ms(ms + i64::from(minutes) * 60_000);
        let with_offset = format!("{}{}", &local[..23], format_offset_minutes(minutes));
        prop_assert_eq!(parse_rfc3339_ms(&with_offset), Ok(ms));
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,40}") {
        let _ = parse_rfc3339_ms(&s);
        let _ = parse_offset_minutes(&s);
        let _ = parse_date_or_rfc3339_ms(&s);
    }

    #[test]
    fn parse_never_panics_on_near_misses(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,11})?([Zz]|[+-][0-9]{2}:[0-9]{2})?") {
        if let Ok(ms) = parse_rfc3339_ms(&s) {
            prop_assert!((MIN_MS - 24 * 3_600_000..=MAX_MS + 24 * 3_600_000).contains(&ms));
        }
    }
}
