//! How much happens: the counts that size the story, its presets, and the
//! exact number of events a scale produces.
//!
//! Only counts scale; the shape does not. Every campaign runs the same five
//! transformation levels, so a bigger story has more campaigns, more cases
//! and more shipments, never a deeper chain. The width of the lineage graph
//! (units one raw lot reaches) is `campaigns_per_cure_lot` campaigns' worth
//! of units, independent of the number of campaigns once there are at least
//! that many.

use super::materials::Material;

/// The sizes of the story. Every count is taken as at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    /// Production campaigns: each takes fresh raw-material lots where needed
    /// and makes one finished lot through all five levels.
    pub campaigns: u32,
    /// Pallets (SSCC) per campaign; each is one serialisation run.
    pub pallets_per_campaign: u32,
    /// Cases (SSCC) per pallet.
    pub cases_per_pallet: u32,
    /// Serialised units (SGTIN) per case.
    pub items_per_case: u32,
    /// Cases per retail order (the last order of a campaign may be smaller).
    pub cases_per_order: u32,
    /// Cold-storage temperature readings per campaign at the distributor.
    pub storage_readings: u32,
    /// Campaigns one cure-agent lot lasts: the width of the graph.
    pub campaigns_per_cure_lot: u32,
    /// How item serials are issued (the counts above do not depend on it).
    pub serials: Serials,
}

/// How a manufacturer issues item serials.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Serials {
    /// In sequence, as a line's printer numbers them: a lot's units share
    /// all but their last digits.
    #[default]
    Sequential,
    /// Scattered over twelve digits, as many pharmaceutical serials are
    /// (so that a serial cannot be guessed from its neighbour's): no two
    /// units of a lot share a prefix beyond the GTIN.
    Randomised,
}

impl Serials {
    /// The serial the `n`th unit gets: `n` itself, or `n` scattered by an
    /// affine map modulo 10^12 (a permutation: the multiplier is prime to
    /// 10, so no two units share a serial).
    pub fn issue(self, n: u64) -> u64 {
        const MODULUS: u128 = 1_000_000_000_000;
        const MULTIPLIER: u128 = 614_889_782_588_491;
        match self {
            Serials::Sequential => n,
            Serials::Randomised => {
                let scattered = (u128::from(n) * MULTIPLIER + 7_919) % MODULUS;
                u64::try_from(scattered).unwrap_or(n)
            }
        }
    }
}

/// Events per campaign that do not depend on the scale: ten transformations
/// and nine in-process inspections.
const PRODUCTION_EVENTS: u64 = 10 + 9;
/// One-off events: the correction (re-sent event and corrective event), the
/// in-process non-conformance, the rejected incoming lot (commission,
/// inspection, non-conformance), the recall and the regulator's spot check.
const ONE_OFF_EVENTS: u64 = 2 + 1 + 3 + 1 + 1;
/// A cold-room excursion happens in every this many campaigns (and in the
/// first and the last).
const EXCURSION_EVERY_CAMPAIGNS: u32 = 100;

impl Scale {
    /// The `lotline demo` story: 157 events, loaded through four nodes in
    /// seconds. The cure-agent lot outlasts every other (3 campaigns), so
    /// the recalled lot is the widest.
    pub fn demo() -> Scale {
        Scale {
            campaigns: 3,
            pallets_per_campaign: 2,
            cases_per_pallet: 2,
            items_per_case: 6,
            cases_per_order: 2,
            storage_readings: 2,
            campaigns_per_cure_lot: 3,
            serials: Serials::Sequential,
        }
    }

    /// A small story for tests: every kind of event, a few hundred of them.
    pub fn small() -> Scale {
        Scale {
            campaigns: 5,
            pallets_per_campaign: 2,
            cases_per_pallet: 3,
            items_per_case: 4,
            cases_per_order: 2,
            storage_readings: 2,
            campaigns_per_cure_lot: 4,
            serials: Serials::Sequential,
        }
    }

    /// The benchmark shape (1,440 units per campaign, a cure-agent lot
    /// lasting 8 campaigns, so 11,520 units forward of one raw lot) with the
    /// fewest campaigns that give at least `events` events. The width
    /// target needs at least 8 campaigns, about 1,900 events.
    pub fn for_events(events: u64) -> Scale {
        let shape = Scale {
            campaigns: 1,
            pallets_per_campaign: 6,
            cases_per_pallet: 20,
            items_per_case: 12,
            cases_per_order: 4,
            storage_readings: 6,
            campaigns_per_cure_lot: 8,
            serials: Serials::Sequential,
        };
        // event_count grows strictly with campaigns: binary search.
        let (mut low, mut high) = (1u32, u32::try_from(events.max(1)).unwrap_or(u32::MAX));
        while low < high {
            let middle = low + (high - low) / 2;
            let candidate = Scale {
                campaigns: middle,
                ..shape
            };
            if candidate.event_count() >= events {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        Scale {
            campaigns: low,
            ..shape
        }
    }

    pub(super) fn at_least_one(self) -> Scale {
        Scale {
            campaigns: self.campaigns.max(1),
            pallets_per_campaign: self.pallets_per_campaign.max(1),
            cases_per_pallet: self.cases_per_pallet.max(1),
            items_per_case: self.items_per_case.max(1),
            cases_per_order: self.cases_per_order.max(1),
            storage_readings: self.storage_readings.max(1),
            campaigns_per_cure_lot: self.campaigns_per_cure_lot.max(1),
            serials: self.serials,
        }
    }

    /// Cases per campaign.
    pub fn cases_per_campaign(self) -> u64 {
        let s = self.at_least_one();
        u64::from(s.pallets_per_campaign) * u64::from(s.cases_per_pallet)
    }

    /// Serialised units per campaign.
    pub fn units_per_campaign(self) -> u64 {
        self.cases_per_campaign() * u64::from(self.at_least_one().items_per_case)
    }

    /// Retail orders per campaign.
    pub fn orders_per_campaign(self) -> u64 {
        self.cases_per_campaign()
            .div_ceil(u64::from(self.at_least_one().cases_per_order))
    }

    /// True when campaign `campaign`'s cold storage has a temperature
    /// excursion (followed by a non-conformance): the first campaign, the
    /// last, and every 100th.
    pub fn has_excursion(self, campaign: u32) -> bool {
        let last = self.at_least_one().campaigns - 1;
        campaign.is_multiple_of(EXCURSION_EVERY_CAMPAIGNS) || campaign == last
    }

    /// Campaigns with an excursion.
    pub fn excursions(self) -> u64 {
        let campaigns = self.at_least_one().campaigns;
        let regular = campaigns.div_ceil(EXCURSION_EVERY_CAMPAIGNS);
        let last_extra = !(campaigns - 1).is_multiple_of(EXCURSION_EVERY_CAMPAIGNS);
        u64::from(regular) + u64::from(last_extra)
    }

    /// Raw-material lots delivered over the story (not counting the one lot
    /// that fails incoming inspection).
    pub fn raw_lots(self) -> u64 {
        let s = self.at_least_one();
        Material::ALL
            .iter()
            .map(|m| {
                u64::from(s.campaigns)
                    .div_ceil(u64::from(m.life_campaigns(s.campaigns_per_cure_lot)))
            })
            .sum()
    }

    /// The exact number of events the story of this scale has, whatever the
    /// seed (the seed changes values, never counts).
    pub fn event_count(self) -> u64 {
        let s = self.at_least_one();
        let campaigns = u64::from(s.campaigns);
        let pallets = u64::from(s.pallets_per_campaign);
        // Per campaign: one delivery (commission and inspect each new lot,
        // one shipment, one receipt).
        let deliveries = 2 * self.raw_lots() + 2 * campaigns;
        // Serialise, pack cases, pack the pallet.
        let packing = pallets * (2 + u64::from(s.cases_per_pallet));
        // Ship, receive, storage readings, unpack each pallet, ship and
        // receive each retail order.
        let distribution =
            2 + u64::from(s.storage_readings) + pallets + 2 * self.orders_per_campaign();
        deliveries
            + campaigns * (PRODUCTION_EVENTS + packing + distribution)
            + self.excursions()
            + ONE_OFF_EVENTS
    }
}

impl Default for Scale {
    fn default() -> Scale {
        Scale::demo()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_documented_sizes() {
        assert_eq!(Scale::demo().event_count(), 157);
        assert_eq!(Scale::demo().excursions(), 2);
        assert!(Scale::small().event_count() < 500);
        assert_eq!(Scale::for_events(1_000_000).units_per_campaign(), 1_440);
    }

    #[test]
    fn for_events_is_the_smallest_scale_reaching_the_target() {
        // Goal: the benchmarks get at least what they ask for, and not a
        // whole campaign more.
        for target in [1, 500, 20_000, 100_000, 1_000_000] {
            let scale = Scale::for_events(target);
            assert!(scale.event_count() >= target, "{target}");
            let one_less = Scale {
                campaigns: scale.campaigns - 1,
                ..scale
            };
            assert!(scale.campaigns == 1 || one_less.event_count() < target);
        }
        // Same shape at both benchmark sizes: only campaigns differ.
        let (small, large) = (Scale::for_events(100_000), Scale::for_events(1_000_000));
        assert_eq!(
            Scale {
                campaigns: 1,
                ..small
            },
            Scale {
                campaigns: 1,
                ..large
            }
        );
        assert!(large.campaigns > 9 * small.campaigns);
    }

    #[test]
    fn excursions_are_counted_as_they_happen() {
        for campaigns in [1, 2, 3, 99, 100, 101, 102, 250] {
            let scale = Scale {
                campaigns,
                ..Scale::small()
            };
            let happen = (0..campaigns).filter(|c| scale.has_excursion(*c)).count();
            assert_eq!(happen as u64, scale.excursions(), "{campaigns}");
        }
    }

    /// Goal: randomised serials are a permutation that scatters a lot's
    /// consecutive units: no two share a serial, and (unlike sequential
    /// ones) they do not share all but their last three digits.
    #[test]
    fn randomised_serials_are_distinct_and_scattered() {
        let start = 100_000_000;
        let issued: Vec<u64> = (start..start + 10_000)
            .map(|n| Serials::Randomised.issue(n))
            .collect();
        let distinct: std::collections::BTreeSet<u64> = issued.iter().copied().collect();
        assert_eq!(distinct.len(), issued.len());
        assert!(issued.iter().all(|serial| *serial < 1_000_000_000_000));
        let prefixes = |serials: &[u64]| {
            serials
                .iter()
                .map(|serial| serial / 1_000)
                .collect::<std::collections::BTreeSet<u64>>()
                .len()
        };
        assert!(prefixes(&issued) > 9_900, "{}", prefixes(&issued));
        let sequential: Vec<u64> = (start..start + 10_000)
            .map(|n| Serials::Sequential.issue(n))
            .collect();
        assert_eq!(prefixes(&sequential), 10);
    }

    #[test]
    fn zero_counts_mean_one() {
        let zero = Scale {
            campaigns: 0,
            pallets_per_campaign: 0,
            cases_per_pallet: 0,
            items_per_case: 0,
            cases_per_order: 0,
            storage_readings: 0,
            campaigns_per_cure_lot: 0,
            serials: Serials::Sequential,
        };
        let one = Scale {
            campaigns: 1,
            pallets_per_campaign: 1,
            cases_per_pallet: 1,
            items_per_case: 1,
            cases_per_order: 1,
            storage_readings: 1,
            campaigns_per_cure_lot: 1,
            serials: Serials::Sequential,
        };
        assert_eq!(zero.event_count(), one.event_count());
    }
}
