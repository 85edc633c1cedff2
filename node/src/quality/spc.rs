//! Statistical process control over one characteristic's measurements, as
//! pure functions of the series (no store, no clock).
//!
//! - **Individuals / moving range (I-MR)**: sigma within = mean moving range
//!   / d2(2); limits at the baseline mean +- 3 sigma; MR chart UCL = D4(2) MR.
//! - **X-bar / R by subgroup (lot)**: sigma = mean over baseline subgroups of
//!   R / d2(n); each subgroup gets its own limits for its size n.
//! - **p-chart** by subgroup: the share of points outside the spec limits;
//!   p-bar from the baseline, limits p-bar +- 3 sqrt(p-bar (1 - p-bar) / n).
//! - **Run rules** on the individuals chart: Western Electric 1-4 and
//!   Nelson's trend rule (see [`Rule`]).
//! - **Capability**: Cp and Cpk against the spec limits the measurements
//!   carry, with sigma within.
//! - **EWMA** (lambda 0.2, L 3, exact time-varying limits) and a tabular
//!   **CUSUM** (k = 0.5 sigma, h = 5 sigma) for drift, both anchored on the
//!   baseline mean and sigma.
//!
//! The baseline (phase I) is the first `baseline` points. Points of the
//! baseline outside its first-pass 3-sigma limits are removed once and the
//! limits computed again, the textbook phase I step (Montgomery, 6.3): a
//! rejected lot in the baseline must not widen the limits every later lot
//! is judged by.
//!
//! Non-features: no non-normal capability, no short-run charts; sigma is
//! never estimated from fewer than two baseline points.

use serde::Serialize;

/// d2 for subgroup sizes 2..=25 (ASTM E2587 / Montgomery Appendix VI).
const D2: [f64; 24] = [
    1.128, 1.693, 2.059, 2.326, 2.534, 2.704, 2.847, 2.970, 3.078, 3.173, 3.258, 3.336, 3.407,
    3.472, 3.532, 3.588, 3.640, 3.689, 3.735, 3.778, 3.819, 3.858, 3.895, 3.931,
];
/// D3 and D4 for subgroup sizes 2..=25 (range chart limits over R-bar).
const D3: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.076, 0.136, 0.184, 0.223, 0.256, 0.283, 0.307, 0.328, 0.347, 0.363,
    0.378, 0.391, 0.403, 0.415, 0.425, 0.434, 0.443, 0.451, 0.459,
];
const D4: [f64; 24] = [
    3.267, 2.574, 2.282, 2.114, 2.004, 1.924, 1.864, 1.816, 1.777, 1.744, 1.717, 1.693, 1.672,
    1.653, 1.637, 1.622, 1.608, 1.597, 1.585, 1.575, 1.566, 1.557, 1.548, 1.541,
];
/// Largest subgroup the tables cover; bigger subgroups are charted as
/// their first `SUBGROUP_MAX` points for the range (documented, rare).
pub const SUBGROUP_MAX: usize = 25;

pub const EWMA_LAMBDA: f64 = 0.2;
pub const EWMA_L: f64 = 3.0;
pub const CUSUM_K_SIGMA: f64 = 0.5;
pub const CUSUM_H_SIGMA: f64 = 5.0;

/// One measurement in chain order.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub value: f64,
    /// Rational subgroup (the lot); `None` when the point has none.
    pub subgroup: Option<String>,
    pub spec_min: Option<f64>,
    pub spec_max: Option<f64>,
}

impl Point {
    /// Outside the specification limits the measurement was stated with
    /// (the p-chart's defectives, a root cause's `failing` units).
    pub(crate) fn out_of_spec(&self) -> bool {
        self.spec_min.is_some_and(|min| self.value < min)
            || self.spec_max.is_some_and(|max| self.value > max)
    }
}

/// A run rule (Western Electric 1-4, Nelson 3), named as the handbooks do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Rule {
    /// One point beyond 3 sigma.
    BeyondThreeSigma,
    /// Two of three consecutive points beyond 2 sigma, same side.
    TwoOfThreeBeyondTwoSigma,
    /// Four of five consecutive points beyond 1 sigma, same side.
    FourOfFiveBeyondOneSigma,
    /// Eight consecutive points on one side of the center line.
    EightOnOneSide,
    /// Six points in a row steadily increasing or decreasing (Nelson 3).
    SixTrending,
}

/// The baseline the charts are judged against.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Baseline {
    /// Points asked for (the first ones of the series).
    pub points: usize,
    /// Indexes of baseline points left out by the phase I step.
    pub excluded: Vec<usize>,
    pub mean: f64,
    /// Sigma within (mean moving range / d2(2)).
    pub sigma: f64,
    pub mean_moving_range: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub center: f64,
    pub lcl: f64,
    pub ucl: f64,
}

/// The individuals / moving range chart.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Individuals {
    pub limits: Limits,
    pub moving_range: Limits,
    /// `moving_ranges[i]` is |x_i - x_{i-1}| (`None` for the first point).
    pub moving_ranges: Vec<Option<f64>>,
    /// Rules each point completes (empty for most).
    pub violations: Vec<Vec<Rule>>,
}

/// One subgroup of the X-bar/R and p charts.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subgroup {
    pub key: String,
    pub n: usize,
    /// Index of its first point in the series (subgroups are in that order).
    pub first: usize,
    pub mean: f64,
    pub range: f64,
    pub mean_limits: Limits,
    pub range_limits: Limits,
    pub out_of_control: bool,
    /// Points outside the spec limits.
    pub defectives: usize,
    pub p: f64,
    pub p_limits: Limits,
    pub p_out_of_control: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subgroups {
    /// Sigma estimated from the baseline subgroups' ranges (the
    /// individuals' sigma when no baseline subgroup has two points).
    pub sigma: f64,
    pub grand_mean: f64,
    pub p_bar: f64,
    pub groups: Vec<Subgroup>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Capability {
    pub spec_min: Option<f64>,
    pub spec_max: Option<f64>,
    /// Needs both limits.
    pub cp: Option<f64>,
    /// Needs one limit at least.
    pub cpk: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ewma {
    pub lambda: f64,
    pub l: f64,
    pub z: Vec<f64>,
    pub lcl: Vec<f64>,
    pub ucl: Vec<f64>,
    /// The first point whose EWMA leaves its limits.
    pub first_signal: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cusum {
    pub k: f64,
    pub h: f64,
    pub upper: Vec<f64>,
    pub lower: Vec<f64>,
    pub first_signal: Option<usize>,
}

/// Everything computed for one series.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    pub baseline: Baseline,
    pub individuals: Individuals,
    pub subgroups: Subgroups,
    pub capability: Capability,
    pub ewma: Ewma,
    pub cusum: Cusum,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpcError {
    #[error("a chart needs at least 2 baseline points; {0} asked for")]
    BaselineTooSmall(usize),
    #[error("{points} measurements are fewer than the {baseline} baseline points asked for")]
    TooFewPoints { points: usize, baseline: usize },
    #[error("measurement {index} is not a finite number")]
    NotFinite { index: usize },
}

/// Analyses `points` (chain order) with the first `baseline` as phase I.
pub fn analyse(points: &[Point], baseline: usize) -> Result<Analysis, SpcError> {
    if baseline < 2 {
        return Err(SpcError::BaselineTooSmall(baseline));
    }
    if points.len() < baseline {
        return Err(SpcError::TooFewPoints {
            points: points.len(),
            baseline,
        });
    }
    if let Some(index) = points.iter().position(|p| !p.value.is_finite()) {
        return Err(SpcError::NotFinite { index });
    }
    let values: Vec<f64> = points.iter().map(|p| p.value).collect();
    let baseline = phase_one(&values, baseline);
    let individuals = individuals(&values, &baseline);
    let subgroups = subgroups(points, &baseline);
    let capability = capability(points, &baseline);
    let ewma = ewma(&values, baseline.mean, baseline.sigma, &baseline.excluded);
    let cusum = cusum(&values, baseline.mean, baseline.sigma, &baseline.excluded);
    Ok(Analysis {
        baseline,
        individuals,
        subgroups,
        capability,
        ewma,
        cusum,
    })
}

/// Mean and mean moving range of the values at `kept` (moving ranges only
/// between neighbours that are both kept, in series order).
fn mean_and_mr(values: &[f64], kept: &[usize]) -> (f64, f64) {
    assert!(!kept.is_empty());
    let mean = kept.iter().map(|&i| values[i]).sum::<f64>() / kept.len() as f64;
    let ranges: Vec<f64> = kept
        .windows(2)
        .map(|w| (values[w[1]] - values[w[0]]).abs())
        .collect();
    let mr = if ranges.is_empty() {
        0.0
    } else {
        ranges.iter().sum::<f64>() / ranges.len() as f64
    };
    (mean, mr)
}

/// The phase I baseline: limits from the first `count` points, points
/// beyond them removed once, limits again (never fewer than two points).
pub fn phase_one(values: &[f64], count: usize) -> Baseline {
    assert!(count >= 2 && count <= values.len());
    let all: Vec<usize> = (0..count).collect();
    let (mean, mr) = mean_and_mr(values, &all);
    let sigma = mr / D2[0];
    let kept: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| sigma == 0.0 || (values[i] - mean).abs() <= 3.0 * sigma)
        .collect();
    let (kept, excluded) = if kept.len() >= 2 && kept.len() < count {
        let excluded = all.iter().copied().filter(|i| !kept.contains(i)).collect();
        (kept, excluded)
    } else {
        (all, Vec::new())
    };
    let (mean, mr) = mean_and_mr(values, &kept);
    Baseline {
        points: count,
        excluded,
        mean,
        sigma: mr / D2[0],
        mean_moving_range: mr,
    }
}

fn individuals(values: &[f64], baseline: &Baseline) -> Individuals {
    let (mean, sigma) = (baseline.mean, baseline.sigma);
    let moving_ranges = std::iter::once(None)
        .chain(values.windows(2).map(|w| Some((w[1] - w[0]).abs())))
        .collect();
    Individuals {
        limits: Limits {
            center: mean,
            lcl: mean - 3.0 * sigma,
            ucl: mean + 3.0 * sigma,
        },
        moving_range: Limits {
            center: baseline.mean_moving_range,
            lcl: 0.0,
            ucl: D4[0] * baseline.mean_moving_range,
        },
        moving_ranges,
        violations: run_rules(values, mean, sigma),
    }
}

/// The run rules each point completes, judged on the zones of `mean` and
/// `sigma`. With sigma 0 only the side rules can fire (every point off the
/// center is "beyond" nothing measurable).
pub fn run_rules(values: &[f64], mean: f64, sigma: f64) -> Vec<Vec<Rule>> {
    let zone = |x: f64| if sigma > 0.0 { (x - mean) / sigma } else { 0.0 };
    let z: Vec<f64> = values.iter().map(|&x| zone(x)).collect();
    let mut out = vec![Vec::new(); values.len()];
    for i in 0..values.len() {
        let rules = &mut out[i];
        if z[i].abs() > 3.0 {
            rules.push(Rule::BeyondThreeSigma);
        }
        let window = |n: usize| (i + 1 >= n).then(|| &z[i + 1 - n..=i]);
        let same_side_beyond = |w: &[f64], limit: f64, need: usize| {
            let up = w.iter().filter(|&&v| v > limit).count();
            let down = w.iter().filter(|&&v| v < -limit).count();
            // The point itself must be one of them, on the side counted.
            (up >= need && z[i] > limit) || (down >= need && z[i] < -limit)
        };
        if window(3).is_some_and(|w| same_side_beyond(w, 2.0, 2)) {
            rules.push(Rule::TwoOfThreeBeyondTwoSigma);
        }
        if window(5).is_some_and(|w| same_side_beyond(w, 1.0, 4)) {
            rules.push(Rule::FourOfFiveBeyondOneSigma);
        }
        let side = |v: f64| values_side(v);
        if let Some(w) = window(8)
            && side(w[0]) != 0
            && w.iter().all(|&v| side(v) == side(w[0]))
        {
            rules.push(Rule::EightOnOneSide);
        }
        if i >= 5 {
            let w = &values[i - 5..=i];
            let up = w.windows(2).all(|p| p[1] > p[0]);
            let down = w.windows(2).all(|p| p[1] < p[0]);
            if up || down {
                rules.push(Rule::SixTrending);
            }
        }
    }
    out
}

fn values_side(z: f64) -> i8 {
    if z > 0.0 {
        1
    } else if z < 0.0 {
        -1
    } else {
        0
    }
}

fn table(table: &[f64; 24], n: usize) -> f64 {
    table[n.clamp(2, SUBGROUP_MAX) - 2]
}

/// Groups consecutive-or-not points by subgroup key, in order of first
/// appearance; points without a key are left out of the subgroup charts.
fn group(points: &[Point]) -> Vec<(String, Vec<usize>)> {
    let mut order: Vec<(String, Vec<usize>)> = Vec::new();
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, point) in points.iter().enumerate() {
        let Some(key) = point.subgroup.as_deref() else {
            continue;
        };
        match at.get(key) {
            Some(&g) => order[g].1.push(i),
            None => {
                at.insert(key, order.len());
                order.push((key.to_owned(), vec![i]));
            }
        }
    }
    order
}

fn subgroups(points: &[Point], baseline: &Baseline) -> Subgroups {
    let groups = group(points);
    let stats: Vec<(f64, f64, usize)> = groups
        .iter()
        .map(|(_, members)| {
            let values: Vec<f64> = members.iter().map(|&i| points[i].value).collect();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let ranged = &values[..values.len().min(SUBGROUP_MAX)];
            let max = ranged.iter().copied().fold(f64::MIN, f64::max);
            let min = ranged.iter().copied().fold(f64::MAX, f64::min);
            let defectives = members.iter().filter(|&&i| points[i].out_of_spec()).count();
            (mean, max - min, defectives)
        })
        .collect();
    // Baseline subgroups: those whose first point is in the baseline.
    let in_baseline: Vec<usize> = (0..groups.len())
        .filter(|&g| groups[g].1[0] < baseline.points)
        .collect();
    let ranged: Vec<f64> = in_baseline
        .iter()
        .filter(|&&g| groups[g].1.len() >= 2)
        .map(|&g| stats[g].1 / table(&D2, groups[g].1.len()))
        .collect();
    let sigma = if ranged.is_empty() {
        baseline.sigma
    } else {
        ranged.iter().sum::<f64>() / ranged.len() as f64
    };
    let (mut sum, mut count, mut bad, mut inspected) = (0.0, 0usize, 0usize, 0usize);
    for &g in &in_baseline {
        let n = groups[g].1.len();
        sum += stats[g].0 * n as f64;
        count += n;
        bad += stats[g].2;
        inspected += n;
    }
    let grand_mean = if count == 0 {
        baseline.mean
    } else {
        sum / count as f64
    };
    let p_bar = if inspected == 0 {
        0.0
    } else {
        bad as f64 / inspected as f64
    };
    let groups = groups
        .into_iter()
        .zip(stats)
        .map(|((key, members), (mean, range, defectives))| {
            let n = members.len();
            let spread = 3.0 * sigma / (n as f64).sqrt();
            let mean_limits = Limits {
                center: grand_mean,
                lcl: grand_mean - spread,
                ucl: grand_mean + spread,
            };
            let r_bar = table(&D2, n) * sigma;
            let range_limits = Limits {
                center: r_bar,
                lcl: table(&D3, n) * r_bar,
                ucl: table(&D4, n) * r_bar,
            };
            let out_of_control = n >= 2
                && (mean > mean_limits.ucl
                    || mean < mean_limits.lcl
                    || range > range_limits.ucl
                    || range < range_limits.lcl);
            let p = defectives as f64 / n as f64;
            let p_spread = 3.0 * (p_bar * (1.0 - p_bar) / n as f64).sqrt();
            let p_limits = Limits {
                center: p_bar,
                lcl: (p_bar - p_spread).max(0.0),
                ucl: (p_bar + p_spread).min(1.0),
            };
            Subgroup {
                key,
                n,
                first: members[0],
                mean,
                range,
                mean_limits,
                range_limits,
                out_of_control,
                defectives,
                p,
                p_out_of_control: p > p_limits.ucl || p < p_limits.lcl,
                p_limits,
            }
        })
        .collect();
    Subgroups {
        sigma,
        grand_mean,
        p_bar,
        groups,
    }
}

/// Cp and Cpk with the spec limits of the latest point that carries any
/// (a spec change applies from then on).
fn capability(points: &[Point], baseline: &Baseline) -> Capability {
    let spec = points
        .iter()
        .rev()
        .find(|p| p.spec_min.is_some() || p.spec_max.is_some());
    let (spec_min, spec_max) = spec.map_or((None, None), |p| (p.spec_min, p.spec_max));
    let sigma = baseline.sigma;
    let usable = sigma > 0.0;
    let cp = match (spec_min, spec_max) {
        (Some(min), Some(max)) if usable => Some((max - min) / (6.0 * sigma)),
        _ => None,
    };
    let upper = spec_max.map(|max| (max - baseline.mean) / (3.0 * sigma));
    let lower = spec_min.map(|min| (baseline.mean - min) / (3.0 * sigma));
    let cpk = match (upper, lower) {
        _ if !usable => None,
        (Some(u), Some(l)) => Some(u.min(l)),
        (u, l) => u.or(l),
    };
    Capability {
        spec_min,
        spec_max,
        cp,
        cpk,
    }
}

/// EWMA with exact limits mu0 +- L sigma sqrt(lambda/(2-lambda) (1-(1-lambda)^2i)).
/// Points in `skip` (phase I outliers, whose cause is known) leave the
/// statistic as it was.
pub fn ewma(values: &[f64], mean: f64, sigma: f64, skip: &[usize]) -> Ewma {
    let mut state = EwmaState::new(mean, sigma);
    let mut z = Vec::with_capacity(values.len());
    let mut lcl = Vec::with_capacity(values.len());
    let mut ucl = Vec::with_capacity(values.len());
    let mut first_signal = None;
    for (i, &x) in values.iter().enumerate() {
        let step = state.step(x, skip.contains(&i));
        z.push(step.z);
        lcl.push(mean - step.width);
        ucl.push(mean + step.width);
        if first_signal.is_none() && step.signals {
            first_signal = Some(i);
        }
    }
    Ewma {
        lambda: EWMA_LAMBDA,
        l: EWMA_L,
        z,
        lcl,
        ucl,
        first_signal,
    }
}

/// The EWMA carried from point to point: the one definition both the
/// chart ([`ewma`]) and the alert follower's incremental judging use.
#[derive(Clone, Debug, PartialEq)]
pub struct EwmaState {
    mean: f64,
    sigma: f64,
    previous: f64,
    decay: f64,
}

/// One point's EWMA.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EwmaStep {
    pub z: f64,
    /// Half the width of the limits at this point.
    pub width: f64,
    /// The statistic is outside its limits at a point not skipped.
    pub signals: bool,
}

impl EwmaState {
    pub fn new(mean: f64, sigma: f64) -> EwmaState {
        EwmaState {
            mean,
            sigma,
            previous: mean,
            decay: 1.0,
        }
    }

    pub fn step(&mut self, x: f64, skipped: bool) -> EwmaStep {
        let (lambda, l) = (EWMA_LAMBDA, EWMA_L);
        if !skipped {
            self.previous = lambda * x + (1.0 - lambda) * self.previous;
            self.decay *= (1.0 - lambda) * (1.0 - lambda);
        }
        let width = l * self.sigma * (lambda / (2.0 - lambda) * (1.0 - self.decay)).sqrt();
        EwmaStep {
            z: self.previous,
            width,
            signals: !skipped && self.sigma > 0.0 && (self.previous - self.mean).abs() > width,
        }
    }
}

/// Tabular CUSUM: C+ = max(0, x - (mu0 + k) + C+), C- = max(0, (mu0 - k) - x + C-).
/// Points in `skip` leave the sums as they were.
pub fn cusum(values: &[f64], mean: f64, sigma: f64, skip: &[usize]) -> Cusum {
    let mut state = CusumState::new(mean, sigma);
    let mut upper = Vec::with_capacity(values.len());
    let mut lower = Vec::with_capacity(values.len());
    let mut first_signal = None;
    for (i, &x) in values.iter().enumerate() {
        let signals = state.step(x, skip.contains(&i));
        upper.push(state.upper);
        lower.push(state.lower);
        if first_signal.is_none() && signals {
            first_signal = Some(i);
        }
    }
    Cusum {
        k: state.k,
        h: state.h,
        upper,
        lower,
        first_signal,
    }
}

/// The CUSUM sums carried from point to point (see [`EwmaState`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CusumState {
    mean: f64,
    sigma: f64,
    k: f64,
    h: f64,
    pub upper: f64,
    pub lower: f64,
}

impl CusumState {
    pub fn new(mean: f64, sigma: f64) -> CusumState {
        CusumState {
            mean,
            sigma,
            k: CUSUM_K_SIGMA * sigma,
            h: CUSUM_H_SIGMA * sigma,
            upper: 0.0,
            lower: 0.0,
        }
    }

    /// Adds one point; true if either sum is beyond h after it.
    pub fn step(&mut self, x: f64, skipped: bool) -> bool {
        if !skipped {
            self.upper = (x - (self.mean + self.k) + self.upper).max(0.0);
            self.lower = ((self.mean - self.k) - x + self.lower).max(0.0);
        }
        self.sigma > 0.0 && (self.upper > self.h || self.lower > self.h)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn plain(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .map(|&value| Point {
                value,
                subgroup: None,
                spec_min: None,
                spec_max: None,
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-3
    }

    #[test]
    fn individuals_limits_match_a_hand_computed_example() {
        // Goal: the I-MR arithmetic of the textbook. Values 10, 12, 11, 13,
        // 12: mean 11.6; moving ranges 2, 1, 2, 1, mean 1.5; sigma =
        // 1.5 / 1.128 = 1.3298; limits 11.6 +- 3.9894; MR UCL = 3.267 * 1.5.
        let values = [10.0, 12.0, 11.0, 13.0, 12.0];
        let analysis = analyse(&plain(&values), 5).expect("analyse");
        let b = &analysis.baseline;
        assert!(close(b.mean, 11.6) && close(b.mean_moving_range, 1.5));
        assert!(close(b.sigma, 1.329_79));
        let limits = &analysis.individuals.limits;
        assert!(close(limits.ucl, 15.5894) && close(limits.lcl, 7.6106));
        assert!(close(analysis.individuals.moving_range.ucl, 4.9005));
        assert!(analysis.individuals.violations.iter().all(Vec::is_empty));
    }

    #[test]
    fn capability_matches_a_hand_computed_example() {
        // Same series with spec 8..16: Cp = 8 / (6 * 1.3298) = 1.0027,
        // Cpk = min(16 - 11.6, 11.6 - 8) / (3 * 1.3298) = 3.6 / 3.9894 = 0.9024.
        let points: Vec<Point> = [10.0, 12.0, 11.0, 13.0, 12.0]
            .iter()
            .map(|&value| Point {
                value,
                subgroup: None,
                spec_min: Some(8.0),
                spec_max: Some(16.0),
            })
            .collect();
        let capability = analyse(&points, 5).expect("analyse").capability;
        assert!(close(capability.cp.expect("cp"), 1.0027));
        assert!(close(capability.cpk.expect("cpk"), 0.9024));
    }

    #[test]
    fn xbar_r_by_subgroup_matches_a_hand_computed_example() {
        // Two lots of three: (10, 12, 11) mean 11 range 2; (13, 12, 14) mean
        // 13 range 2. Sigma = 2 / d2(3) = 2 / 1.693 = 1.1813; grand mean 12;
        // X-bar limits 12 +- 3 * 1.1813 / sqrt 3 = 12 +- 2.0461 (A2 R-bar =
        // 1.023 * 2); R chart UCL = D4(3) R-bar = 2.574 * 2 = 5.148.
        let mut points = Vec::new();
        for (lot, values) in [("a", [10.0, 12.0, 11.0]), ("b", [13.0, 12.0, 14.0])] {
            for value in values {
                points.push(Point {
                    value,
                    subgroup: Some(lot.to_owned()),
                    spec_min: None,
                    spec_max: Some(13.5),
                });
            }
        }
        let analysis = analyse(&points, 6).expect("analyse");
        let s = &analysis.subgroups;
        assert!(close(s.sigma, 1.1813) && close(s.grand_mean, 12.0));
        let a = &s.groups[0];
        assert!(close(a.mean_limits.ucl, 14.0461) && close(a.range_limits.ucl, 5.148));
        assert!(close(a.range_limits.center, 2.0));
        // p-chart: one of six above 13.5 -> p-bar 1/6.
        assert!(close(s.p_bar, 1.0 / 6.0));
        assert_eq!((s.groups[0].defectives, s.groups[1].defectives), (0, 1));
        let spread = 3.0 * ((1.0 / 6.0) * (5.0 / 6.0) / 3.0f64).sqrt();
        assert!(close(
            s.groups[1].p_limits.ucl,
            (1.0 / 6.0 + spread).min(1.0)
        ));
    }

    #[test]
    fn run_rules_fire_on_their_textbook_patterns() {
        // Goal: each rule fires on the pattern that defines it, and only
        // from the point that completes it. Zones with mean 0, sigma 1.
        let rules = |v: &[f64]| run_rules(v, 0.0, 1.0);
        assert_eq!(rules(&[0.0, 3.5])[1], vec![Rule::BeyondThreeSigma]);
        let two = rules(&[2.5, 0.0, 2.2]);
        assert!(two[2].contains(&Rule::TwoOfThreeBeyondTwoSigma));
        assert!(!two[0].contains(&Rule::TwoOfThreeBeyondTwoSigma));
        let opposite = rules(&[2.5, 0.0, -2.2]);
        assert!(!opposite[2].contains(&Rule::TwoOfThreeBeyondTwoSigma));
        let four = rules(&[1.5, 1.2, 0.0, 1.1, 1.3]);
        assert!(four[4].contains(&Rule::FourOfFiveBeyondOneSigma));
        let eight = rules(&[0.1, 0.5, 0.2, 0.3, 0.9, 0.4, 0.2, 0.6]);
        assert!(eight[7].contains(&Rule::EightOnOneSide));
        assert!(!eight[6].contains(&Rule::EightOnOneSide));
        let trend = rules(&[-1.0, -0.5, 0.0, 0.2, 0.4, 0.5]);
        assert!(trend[5].contains(&Rule::SixTrending));
        assert!(!trend[4].contains(&Rule::SixTrending));
    }

    #[test]
    fn phase_one_drops_an_outlier_from_the_baseline() {
        // A rejected lot (far out) in the baseline must not widen limits.
        let mut values = vec![45.0, 45.5, 44.8, 45.2, 44.9, 45.3, 45.1, 44.7, 45.4, 45.0];
        values.insert(3, 60.0);
        let baseline = phase_one(&values, values.len());
        assert_eq!(baseline.excluded, vec![3]);
        assert!(baseline.sigma < 1.0, "{baseline:?}");
    }

    #[test]
    fn ewma_and_cusum_see_a_slow_drift_before_the_spec_limit() {
        // Goal: early warning. A mean climbing 0.3 sigma per point from
        // point 20 on: both detectors fire before the mean is 3 sigma up
        // (point 30), and neither fires in the flat part.
        let mut values = Vec::new();
        for i in 0..40 {
            let wobble = if i % 2 == 0 { 0.5 } else { -0.5 };
            let drift = if i >= 20 {
                0.3 * f64::from(i - 19)
            } else {
                0.0
            };
            values.push(10.0 + wobble + drift);
        }
        let analysis = analyse(&plain(&values), 20).expect("analyse");
        let ewma = analysis.ewma.first_signal.expect("ewma fires");
        let cusum = analysis.cusum.first_signal.expect("cusum fires");
        assert!((20..30).contains(&ewma), "ewma at {ewma}");
        assert!((20..30).contains(&cusum), "cusum at {cusum}");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(
            analyse(&plain(&[1.0]), 1),
            Err(SpcError::BaselineTooSmall(1))
        );
        assert_eq!(
            analyse(&plain(&[1.0, 2.0]), 3),
            Err(SpcError::TooFewPoints {
                points: 2,
                baseline: 3
            })
        );
        assert_eq!(
            analyse(&plain(&[1.0, f64::NAN]), 2),
            Err(SpcError::NotFinite { index: 1 })
        );
    }

    proptest! {
        #[test]
        fn invariants_hold_for_any_series(
            values in prop::collection::vec(-1e6f64..1e6, 2..80),
            baseline_share in 0.1f64..1.0,
            shift in -1e3f64..1e3,
        ) {
            let baseline = ((values.len() as f64 * baseline_share) as usize).clamp(2, values.len());
            let a = analyse(&plain(&values), baseline).expect("analyse");
            // Limits are ordered and symmetric about the center.
            let l = &a.individuals.limits;
            prop_assert!(l.lcl <= l.center && l.center <= l.ucl);
            prop_assert!(((l.ucl - l.center) - (l.center - l.lcl)).abs() <= 1e-6 * (1.0 + l.center.abs()));
            prop_assert!(a.baseline.sigma >= 0.0);
            // One verdict per point, EWMA limits widen monotonically.
            prop_assert_eq!(a.individuals.violations.len(), values.len());
            prop_assert!(a.ewma.ucl.windows(2).all(|w| w[1] >= w[0] - 1e-9));
            prop_assert!(a.cusum.upper.iter().all(|&c| c >= 0.0));
            // Shifting every value shifts the center and nothing else.
            let shifted: Vec<f64> = values.iter().map(|v| v + shift).collect();
            let b = analyse(&plain(&shifted), baseline).expect("analyse");
            let tolerance = 1e-6 * (1.0 + l.center.abs() + shift.abs());
            prop_assert!((b.individuals.limits.center - l.center - shift).abs() <= tolerance);
            prop_assert!((b.baseline.sigma - a.baseline.sigma).abs() <= tolerance);
        }
    }
}
