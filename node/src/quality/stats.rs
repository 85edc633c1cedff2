//! The association statistics root-cause ranking uses, pure: Fisher's exact
//! test on a 2x2 table (one-sided: is the factor over-represented among the
//! bad units?) and the Benjamini-Hochberg false discovery rate adjustment
//! over all factors tested.
//!
//! The hypergeometric terms are computed in log space from a table of
//! ln(k!) built once per analysis (n is the number of units compared), so
//! tables of hundreds of thousands of units neither overflow nor lose the
//! small p-values that matter.

/// ln(k!) for k in 0..=n.
#[derive(Debug)]
pub struct LogFactorials(Vec<f64>);

impl LogFactorials {
    pub fn new(n: u64) -> LogFactorials {
        let n = usize::try_from(n).unwrap_or(usize::MAX - 1);
        let mut table = Vec::with_capacity(n + 1);
        let mut sum = 0.0f64;
        table.push(0.0);
        for k in 1..=n {
            sum += (k as f64).ln();
            table.push(sum);
        }
        LogFactorials(table)
    }

    fn get(&self, k: u64) -> f64 {
        let index = usize::try_from(k).unwrap_or(usize::MAX);
        assert!(index < self.0.len(), "ln({k}!) is beyond the table");
        self.0[index]
    }

    fn ln_choose(&self, n: u64, k: u64) -> f64 {
        self.get(n) - self.get(k) - self.get(n - k)
    }
}

/// A 2x2 table: exposed to the factor or not, bad or good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    pub bad_exposed: u64,
    pub good_exposed: u64,
    pub bad_unexposed: u64,
    pub good_unexposed: u64,
}

impl Table {
    pub fn total(&self) -> u64 {
        self.bad_exposed + self.good_exposed + self.bad_unexposed + self.good_unexposed
    }

    /// The bad rate among the exposed over the bad rate overall (`None`
    /// when nothing is exposed or nothing is bad).
    pub fn lift(&self) -> Option<f64> {
        let exposed = self.bad_exposed + self.good_exposed;
        let bad = self.bad_exposed + self.bad_unexposed;
        if exposed == 0 || bad == 0 {
            return None;
        }
        let rate_exposed = self.bad_exposed as f64 / exposed as f64;
        let rate_all = bad as f64 / self.total() as f64;
        Some(rate_exposed / rate_all)
    }
}

/// One-sided Fisher exact p-value: the probability, with the margins fixed,
/// of at least `bad_exposed` bad units among the exposed. `logs` must cover
/// the table's total.
pub fn fisher_greater(table: Table, logs: &LogFactorials) -> f64 {
    let n = table.total();
    let exposed = table.bad_exposed + table.good_exposed;
    let bad = table.bad_exposed + table.bad_unexposed;
    let good = n - bad;
    let top = exposed.min(bad);
    let denominator = logs.ln_choose(n, exposed);
    let mut p = 0.0;
    for x in table.bad_exposed..=top {
        if exposed - x > good {
            continue;
        }
        p += (logs.ln_choose(bad, x) + logs.ln_choose(good, exposed - x) - denominator).exp();
    }
    p.min(1.0)
}

/// Benjamini-Hochberg adjusted p-values (q-values), in the order given.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut q = vec![1.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        let adjusted = p[i] * m as f64 / (rank + 1) as f64;
        running = running.min(adjusted).min(1.0);
        q[i] = running;
    }
    q
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * (1.0 + b.abs())
    }

    #[test]
    fn fisher_matches_the_lady_tasting_tea() {
        // Fisher's own example: 8 cups, 4 with milk first, the lady picks 4
        // and gets 3 right: P(X >= 3) = (16 + 1) / 70 = 0.242857; all 4
        // right: 1 / 70.
        let logs = LogFactorials::new(8);
        let table = |right| Table {
            bad_exposed: right,
            good_exposed: 4 - right,
            bad_unexposed: 4 - right,
            good_unexposed: right,
        };
        assert!(close(fisher_greater(table(3), &logs), 17.0 / 70.0));
        assert!(close(fisher_greater(table(4), &logs), 1.0 / 70.0));
        assert!(close(fisher_greater(table(0), &logs), 1.0));
    }

    #[test]
    fn fisher_matches_a_reference_value() {
        // Bad exposed 10, good exposed 3; bad unexposed 2, good unexposed
        // 15. Exact sum of hypergeometric terms for x = 10..=12, in
        // rational arithmetic: 0.000 465 180 943.
        let logs = LogFactorials::new(30);
        let p = fisher_greater(
            Table {
                bad_exposed: 10,
                good_exposed: 3,
                bad_unexposed: 2,
                good_unexposed: 15,
            },
            &logs,
        );
        assert!((p - 0.000_465_180_943).abs() < 1e-12, "{p}");
    }

    #[test]
    fn bh_matches_a_hand_computed_example() {
        // p = 0.01, 0.04, 0.03, 0.2 (m = 4): sorted 0.01, 0.03, 0.04, 0.2 ->
        // 0.04, 0.06, 0.0533, 0.2 -> monotone from the top: 0.04, 0.0533,
        // 0.0533, 0.2.
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.2]);
        let want = [0.04, 0.053_333, 0.053_333, 0.2];
        for (got, want) in q.iter().zip(want) {
            assert!((got - want).abs() < 1e-5, "{q:?}");
        }
    }

    #[test]
    fn lift_is_the_exposed_rate_over_the_overall_rate() {
        let table = Table {
            bad_exposed: 6,
            good_exposed: 18,
            bad_unexposed: 2,
            good_unexposed: 46,
        };
        // 6/24 over 8/72 = 0.25 / 0.1111 = 2.25.
        assert!(close(table.lift().expect("lift"), 2.25));
    }

    proptest! {
        #[test]
        fn p_values_are_probabilities_and_fall_as_exposure_concentrates(
            bad_exposed in 0u64..40,
            good_exposed in 0u64..40,
            bad_unexposed in 0u64..40,
            good_unexposed in 0u64..40,
        ) {
            let table = Table { bad_exposed, good_exposed, bad_unexposed, good_unexposed };
            let logs = LogFactorials::new(table.total() + 1);
            let p = fisher_greater(table, &logs);
            prop_assert!((0.0..=1.0 + 1e-9).contains(&p));
            // Moving one unit from good-exposed to bad-exposed (and one
            // from bad-unexposed to good-unexposed) keeps the margins and
            // can only make the table more extreme.
            if good_exposed > 0 && bad_unexposed > 0 {
                let more = Table {
                    bad_exposed: bad_exposed + 1,
                    good_exposed: good_exposed - 1,
                    bad_unexposed: bad_unexposed - 1,
                    good_unexposed: good_unexposed + 1,
                };
                prop_assert!(fisher_greater(more, &logs) <= p + 1e-12);
            }
        }

        #[test]
        fn q_values_are_at_least_p_and_keep_the_order(
            p in prop::collection::vec(0.0f64..=1.0, 1..50),
        ) {
            let q = benjamini_hochberg(&p);
            for i in 0..p.len() {
                prop_assert!(q[i] >= p[i] - 1e-12 && q[i] <= 1.0);
                for j in 0..p.len() {
                    if p[i] < p[j] {
                        prop_assert!(q[i] <= q[j] + 1e-12);
                    }
                }
            }
        }
    }
}
