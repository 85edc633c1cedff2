//! Cold-chain excursions, pure: given one logger's temperature readings and
//! a product's storage limits, the stretches of time the load spent outside
//! them, how long, and how far.
//!
//! Time outside is measured, not guessed from a maximum: between two
//! readings the temperature is taken to move linearly, so a crossing is
//! placed where the line meets the limit and each stretch runs from its
//! upward crossing to its downward one. A stretch still open at the last
//! reading ends there (the answer says `open`). Readings further apart than
//! [`GAP_MAX_MS`] are not joined: nothing is known in between, and an
//! interpolation over hours would invent minutes above the limit.
//!
//! Non-features: no mean kinetic temperature, no stability budgets; one
//! series per logger (readings of different loggers are never mixed).

use serde::Serialize;

/// Readings further apart than this are separate series (one hour).
pub const GAP_MAX_MS: i64 = 60 * 60 * 1000;

/// One reading: unix milliseconds and degrees Celsius.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    pub at_ms: i64,
    pub value: f64,
}

/// A product's storage limits (degrees Celsius); either may be absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Limits {
    /// The stricter of two products' limits (a container of both must
    /// satisfy both).
    pub fn tighten(self, other: Limits) -> Limits {
        let pick = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        };
        Limits {
            min: pick(self.min, other.min, f64::max),
            max: pick(self.max, other.max, f64::min),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Side {
    Above,
    Below,
}

/// One stretch outside the limits.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Excursion {
    pub side: Side,
    pub limit: f64,
    pub start_ms: i64,
    pub end_ms: i64,
    /// `end_ms - start_ms`, in minutes.
    pub minutes: f64,
    /// The furthest reading from the limit (the highest above a max, the
    /// lowest below a min).
    pub peak: f64,
    /// Still outside at the last reading.
    pub open: bool,
}

/// The excursions of one logger's readings (sorted here by time).
pub fn excursions(readings: &[Reading], limits: Limits) -> Vec<Excursion> {
    let mut sorted: Vec<Reading> = readings
        .iter()
        .copied()
        .filter(|r| r.value.is_finite())
        .collect();
    sorted.sort_by_key(|r| r.at_ms);
    let mut out = Vec::new();
    if let Some(max) = limits.max {
        out.extend(side(&sorted, max, Side::Above));
    }
    if let Some(min) = limits.min {
        out.extend(side(&sorted, min, Side::Below));
    }
    out.sort_by_key(|e| e.start_ms);
    out
}

/// Stretches beyond `limit` on one side. Works on the signed distance
/// beyond the limit, so both sides share one routine.
fn side(readings: &[Reading], limit: f64, side: Side) -> Vec<Excursion> {
    let beyond = |v: f64| match side {
        Side::Above => v - limit,
        Side::Below => limit - v,
    };
    let mut out = Vec::new();
    // The stretch being measured: (start, peak distance, peak value).
    let mut current: Option<(f64, f64, f64)> = None;
    let mut previous: Option<Reading> = None;
    let close = |out: &mut Vec<Excursion>, (start, _, peak): (f64, f64, f64), end: f64, open| {
        out.push(Excursion {
            side,
            limit,
            start_ms: start.round() as i64,
            end_ms: end.round() as i64,
            minutes: (end - start) / 60_000.0,
            peak,
            open,
        });
    };
    for &reading in readings {
        let d = beyond(reading.value);
        match previous {
            Some(p) if reading.at_ms - p.at_ms <= GAP_MAX_MS => {
                let dp = beyond(p.value);
                let (t0, t1) = (p.at_ms as f64, reading.at_ms as f64);
                // Where the line from p to reading meets the limit.
                let crossing = || t0 + (t1 - t0) * dp / (dp - d);
                if dp <= 0.0 && d > 0.0 {
                    current = Some((crossing(), d, reading.value));
                } else if dp > 0.0 && d <= 0.0 {
                    if let Some(stretch) = current.take() {
                        close(&mut out, stretch, crossing(), false);
                    }
                } else if d > 0.0
                    && let Some((_, peak_d, peak)) = current.as_mut()
                    && d > *peak_d
                {
                    (*peak_d, *peak) = (d, reading.value);
                }
            }
            _ => {
                // A new series: close what was open at the last reading.
                if let (Some(stretch), Some(p)) = (current.take(), previous) {
                    close(&mut out, stretch, p.at_ms as f64, true);
                }
                if d > 0.0 {
                    current = Some((reading.at_ms as f64, d, reading.value));
                }
            }
        }
        previous = Some(reading);
    }
    if let (Some(stretch), Some(p)) = (current, previous) {
        close(&mut out, stretch, p.at_ms as f64, true);
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MIN: i64 = 60_000;

    fn series(values: &[f64], every_minutes: i64) -> Vec<Reading> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| Reading {
                at_ms: i as i64 * every_minutes * MIN,
                value,
            })
            .collect()
    }

    fn above(max: f64) -> Limits {
        Limits {
            min: None,
            max: Some(max),
        }
    }

    #[test]
    fn time_above_is_measured_between_the_crossings() {
        // Readings every 10 minutes: 6, 10, 10, 6 with max 8. Up-crossing
        // halfway between 0 and 10 (t = 5), down-crossing halfway between
        // 20 and 30 (t = 25): 20 minutes above, peak 10.
        let found = excursions(&series(&[6.0, 10.0, 10.0, 6.0], 10), above(8.0));
        assert_eq!(found.len(), 1);
        let e = &found[0];
        assert_eq!((e.start_ms, e.end_ms), (5 * MIN, 25 * MIN));
        assert!((e.minutes - 20.0).abs() < 1e-9 && e.peak == 10.0 && !e.open);
    }

    #[test]
    fn a_spike_counts_less_than_a_slow_rise_with_the_same_maximum() {
        // Goal: the point of measuring time, not the maximum.
        let spike = excursions(&series(&[5.0, 11.0, 5.0], 10), above(8.0));
        let slow = excursions(
            &series(&[5.0, 9.0, 10.0, 11.0, 10.0, 9.0, 5.0], 10),
            above(8.0),
        );
        assert_eq!((spike[0].peak, slow[0].peak), (11.0, 11.0));
        assert!((spike[0].minutes - 10.0).abs() < 1e-9);
        assert!(slow[0].minutes > 4.0 * spike[0].minutes);
    }

    #[test]
    fn both_limits_gaps_and_open_ends() {
        let limits = Limits {
            min: Some(2.0),
            max: Some(8.0),
        };
        // Below 2 from t = 5 (1 -> 3 crosses 2 at the middle of 0..10)...
        let found = excursions(&series(&[3.0, 1.0, 3.0, 9.0], 10), limits);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].side, Side::Below);
        assert_eq!((found[0].start_ms, found[0].end_ms), (5 * MIN, 15 * MIN));
        // ... and above 8 from 2/6 of the way from 20 to 30, still open.
        assert_eq!(found[1].side, Side::Above);
        assert!(found[1].open);
        // Two readings above, two hours apart: two separate open stretches
        // of zero length, never two hours invented.
        let gap = excursions(&series(&[9.0, 9.0], 120), above(8.0));
        assert_eq!(gap.len(), 2);
        assert!(gap.iter().all(|e| e.minutes == 0.0 && e.open));
    }

    #[test]
    fn product_limits_tighten() {
        let a = Limits {
            min: Some(2.0),
            max: Some(8.0),
        };
        let b = Limits {
            min: None,
            max: Some(25.0),
        };
        assert_eq!(a.tighten(b), a);
        assert_eq!(b.tighten(Limits::default()), b);
    }

    proptest! {
        #[test]
        fn time_outside_is_bounded_and_shrinks_as_the_limit_rises(
            values in prop::collection::vec(-20.0f64..40.0, 1..60),
            every in 1i64..90,
            max in -10.0f64..30.0,
            raise in 0.0f64..10.0,
        ) {
            let readings = series(&values, every);
            let span = (readings.len() as i64 - 1) * every;
            let total = |limit: f64| -> f64 {
                excursions(&readings, above(limit)).iter().map(|e| e.minutes).sum()
            };
            let low = total(max);
            prop_assert!(low >= 0.0 && low <= span as f64 + 1e-6);
            prop_assert!(total(max + raise) <= low + 1e-6);
            for e in excursions(&readings, above(max)) {
                prop_assert!(e.start_ms <= e.end_ms && e.peak > max);
            }
        }
    }
}
