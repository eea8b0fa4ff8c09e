//! Cron occurrences as instants in a time zone, with the DST policies.
//!
//! A cron pattern matches civil (wall-clock) times; croner finds them on a plain civil
//! calendar, blind to the zone. This module walks the zone's offset segments (the spans of
//! time between two transitions, each with one UTC offset) and turns each match into an
//! instant. Within a segment civil time and instants advance together. At a transition:
//!
//! - a gap (clocks jump forward) skips civil times: a match inside fires at the transition
//!   instant, the first valid instant after the gap (`shift`), or not at all (`skip`);
//! - an overlap (clocks fall back) repeats civil times: a match inside fires at its first,
//!   earlier instant only (`earlier`), or at both (`both`).
//!
//! Walking segments in time order keeps slots strictly increasing: matches that land on
//! the same instant (a shifted gap match and a match at the transition's wall-clock time)
//! are one slot. Each search crosses at most [`MAX_TRANSITIONS_PER_SEARCH`] transitions;
//! croner's civil search itself ends at the next match, which a validated pattern always
//! has (the calendar repeats every 400 years).

use croner::Cron;
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::recurrence::Slots;

/// Most zone transitions one slot search crosses: generous for the sparsest valid patterns
/// (29 February on a Monday recurs after up to 40 years; zones change offsets at most about
/// four times a year).
pub const MAX_TRANSITIONS_PER_SEARCH: usize = 1_000;

const ONE_SECOND: SignedDuration = SignedDuration::from_secs(1);
const ONE_NANOSECOND: SignedDuration = SignedDuration::from_nanos(1);

/// Where a match inside a spring-forward gap fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DstGap {
    /// At the transition instant, the first valid instant after the gap.
    #[default]
    Shift,
    /// Not at all.
    Skip,
}

impl DstGap {
    /// The name clients write in `dst_gap`.
    pub fn as_str(self) -> &'static str {
        match self {
            DstGap::Shift => "shift",
            DstGap::Skip => "skip",
        }
    }

    pub(super) fn from_json(value: &Value) -> Result<Self, String> {
        match value.as_str() {
            Some("shift") => Ok(DstGap::Shift),
            Some("skip") => Ok(DstGap::Skip),
            _ => Err("must be \"shift\" or \"skip\"".to_owned()),
        }
    }
}

/// Where a match inside a fall-back overlap fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DstOverlap {
    /// Once, at the earlier of its two instants.
    #[default]
    Earlier,
    /// Twice, at both instants.
    Both,
}

impl DstOverlap {
    /// The name clients write in `dst_overlap`.
    pub fn as_str(self) -> &'static str {
        match self {
            DstOverlap::Earlier => "earlier",
            DstOverlap::Both => "both",
        }
    }

    pub(super) fn from_json(value: &Value) -> Result<Self, String> {
        match value.as_str() {
            Some("earlier") => Ok(DstOverlap::Earlier),
            Some("both") => Ok(DstOverlap::Both),
            _ => Err("must be \"earlier\" or \"both\"".to_owned()),
        }
    }
}

/// A cron pattern read in a time zone under DST policies: the slots of a cron schedule.
pub(super) struct ZonedPattern<'a> {
    pub cron: &'a Cron,
    pub zone: &'a TimeZone,
    pub gap: DstGap,
    pub overlap: DstOverlap,
}

impl ZonedPattern<'_> {
    fn civil_at_or_after(&self, civil: DateTime) -> Option<DateTime> {
        self.cron.find_next_occurrence(&civil, true).ok()
    }

    fn civil_at_or_before(&self, civil: DateTime) -> Option<DateTime> {
        self.cron.find_previous_occurrence(&civil, true).ok()
    }

    /// When `instant` lies in the second pass of an overlap, the civil time where that
    /// overlap ends: civil times before it already had their (earlier) instant.
    fn overlap_end_around(&self, instant: Timestamp, offset: Offset) -> Option<DateTime> {
        let latest = self
            .zone
            .preceding(instant.checked_add(ONE_NANOSECOND).ok()?)
            .next()?;
        let before = self
            .zone
            .to_offset(latest.timestamp().checked_sub(ONE_NANOSECOND).ok()?);
        (before > offset).then(|| before.to_datetime(latest.timestamp()))
    }
}

impl Slots for ZonedPattern<'_> {
    fn slot_after(&self, instant: Timestamp) -> Option<Timestamp> {
        let mut offset = self.zone.to_offset(instant);
        let mut lower = whole_second(offset.to_datetime(instant))?
            .checked_add(ONE_SECOND)
            .ok()?;
        if self.overlap == DstOverlap::Earlier
            && let Some(overlap_end) = self.overlap_end_around(instant, offset)
        {
            lower = lower.max(overlap_end);
        }
        let mut candidate = self.civil_at_or_after(lower)?;

        // Walk forward segment by segment until the candidate lies inside one.
        let mut boundary = self.zone.following(instant).next();
        for _ in 0..MAX_TRANSITIONS_PER_SEARCH {
            let Some(transition) = boundary else {
                return offset.to_timestamp(candidate).ok();
            };
            let at = transition.timestamp();
            if candidate < offset.to_datetime(at) {
                return offset.to_timestamp(candidate).ok();
            }

            let next_offset = transition.offset();
            let next_start = next_offset.to_datetime(at);
            if next_offset > offset && candidate < next_start {
                match self.gap {
                    DstGap::Shift => return Some(at),
                    DstGap::Skip => candidate = self.civil_at_or_after(next_start)?,
                }
            } else if next_offset < offset && self.overlap == DstOverlap::Both {
                // The repeated civil times come again, at their later instants.
                candidate = self.civil_at_or_after(next_start)?;
            }
            offset = next_offset;
            boundary = self.zone.following(at).next();
        }
        None
    }

    fn slot_at_or_before(&self, instant: Timestamp) -> Option<Timestamp> {
        let mut offset = self.zone.to_offset(instant);
        let upper = whole_second(offset.to_datetime(instant))?;
        let mut candidate = self.civil_at_or_before(upper)?;

        // Walk back segment by segment until the candidate lies inside one.
        let mut boundary = self
            .zone
            .preceding(instant.checked_add(ONE_NANOSECOND).ok()?)
            .next();
        for _ in 0..MAX_TRANSITIONS_PER_SEARCH {
            let Some(transition) = boundary else {
                return offset.to_timestamp(candidate).ok();
            };
            let at = transition.timestamp();
            let previous_offset = self.zone.to_offset(at.checked_sub(ONE_NANOSECOND).ok()?);
            let segment_start = offset.to_datetime(at);
            let previous_end = previous_offset.to_datetime(at);
            let lower = if previous_offset > offset && self.overlap == DstOverlap::Earlier {
                // The repeated civil times belong to the segment before, once.
                previous_end
            } else {
                segment_start
            };
            if candidate >= lower {
                return offset.to_timestamp(candidate).ok();
            }

            let previous_last = previous_end.checked_sub(ONE_SECOND).ok()?;
            if offset > previous_offset && candidate >= previous_end {
                match self.gap {
                    DstGap::Shift => return Some(at),
                    DstGap::Skip => candidate = self.civil_at_or_before(previous_last)?,
                }
            } else if previous_offset > offset {
                // Every civil time of the segment before, repeated ones included, is earlier
                // than this transition and so at or before `instant`.
                candidate = self.civil_at_or_before(previous_last)?;
            }
            offset = previous_offset;
            boundary = self.zone.preceding(at).next();
        }
        None
    }
}

/// `civil` without its fraction of a second: cron matches whole seconds.
fn whole_second(civil: DateTime) -> Option<DateTime> {
    civil.with().subsec_nanosecond(0).build().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use croner::parser::{CronParser, Seconds, Year};
    use jiff::tz::AmbiguousOffset;
    use proptest::prelude::*;
    use proptest::sample::select;

    /// Zones with DST of an hour, of half an hour (Lord Howe), with a 45-minute offset
    /// (Chatham, Kathmandu), in the southern hemisphere, and none at all.
    const ZONES: [&str; 8] = [
        "UTC",
        "America/New_York",
        "Europe/Paris",
        "Australia/Sydney",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "Asia/Kathmandu",
        "America/Santiago",
    ];

    fn parse(pattern: &str) -> Cron {
        CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(pattern)
            .unwrap()
    }

    fn zone(name: &str) -> TimeZone {
        jiff::tz::TimeZoneDatabase::bundled().get(name).unwrap()
    }

    /// A pattern built from choices for each field: plain values, lists, ranges and steps.
    fn patterns() -> impl Strategy<Value = String> {
        let second = select(vec!["0", "30", "*/20", "*"]);
        let minute = select(vec!["0", "30", "15,45", "*/10", "0-5", "*", "59"]);
        let hour = select(vec!["*", "0", "1", "2", "3", "1-3", "*/2", "0,2,4", "23"]);
        let day = select(vec!["*", "*", "1", "15", "L", "28-31", "29"]);
        let month = select(vec!["*", "*", "MAR,APR,OCT,NOV", "2", "9-12", "*/3"]);
        let weekday = select(vec!["*", "*", "MON-FRI", "SUN", "6#2", "0L"]);
        let with_seconds = any::<bool>();
        (second, minute, hour, day, month, weekday, with_seconds).prop_map(
            |(second, minute, hour, day, month, weekday, with_seconds)| {
                let fields = format!("{minute} {hour} {day} {month} {weekday}");
                if with_seconds {
                    format!("{second} {fields}")
                } else {
                    fields
                }
            },
        )
    }

    /// Instants from 2020 to 2040, whole seconds or not.
    fn instants() -> impl Strategy<Value = Timestamp> {
        (1_577_836_800_i64..2_208_988_800, 0..1_000_000_000_i32)
            .prop_map(|(second, nanos)| Timestamp::new(second, nanos).unwrap())
    }

    fn policies() -> impl Strategy<Value = (DstGap, DstOverlap)> {
        (
            prop_oneof![Just(DstGap::Shift), Just(DstGap::Skip)],
            prop_oneof![Just(DstOverlap::Earlier), Just(DstOverlap::Both)],
        )
    }

    /// The slots of a minute pattern between two civil times, computed the slow way: every
    /// civil minute, resolved by jiff's own view of gaps and overlaps.
    fn brute_force_slots(
        cron: &Cron,
        zone: &TimeZone,
        gap: DstGap,
        overlap: DstOverlap,
        from: DateTime,
        to: DateTime,
    ) -> Vec<Timestamp> {
        let mut slots = Vec::new();
        let mut civil = from;
        while civil < to {
            if cron.is_time_matching(&civil).unwrap() {
                let at = |offset: Offset| offset.to_timestamp(civil).unwrap();
                match zone.to_ambiguous_timestamp(civil).offset() {
                    AmbiguousOffset::Unambiguous { offset } => slots.push(at(offset)),
                    AmbiguousOffset::Gap { before, .. } => {
                        if gap == DstGap::Shift {
                            // Read with the offset before the gap, a skipped civil time is
                            // an instant at or after the transition.
                            let past_gap = at(before).checked_add(ONE_NANOSECOND).unwrap();
                            slots.push(zone.preceding(past_gap).next().unwrap().timestamp());
                        }
                    }
                    AmbiguousOffset::Fold { before, after } => {
                        slots.push(at(before));
                        if overlap == DstOverlap::Both {
                            slots.push(at(after));
                        }
                    }
                }
            }
            civil = civil.checked_add(SignedDuration::from_mins(1)).unwrap();
        }
        slots.sort();
        slots.dedup();
        slots
    }

    #[test]
    fn gap_and_overlap_policies_match_the_brute_force_around_every_new_york_transition() {
        let zone = zone("America/New_York");
        let cron = parse("*/15 0-3 * * *");
        let from: DateTime = "2027-03-13T00:00".parse().unwrap();
        let to: DateTime = "2027-11-09T00:00".parse().unwrap();
        let (first, last) = (
            zone.to_timestamp(from).unwrap(),
            zone.to_timestamp(to.checked_sub(SignedDuration::from_hours(24)).unwrap())
                .unwrap(),
        );
        for (gap, overlap) in [
            (DstGap::Shift, DstOverlap::Earlier),
            (DstGap::Skip, DstOverlap::Both),
        ] {
            let slots = ZonedPattern {
                cron: &cron,
                zone: &zone,
                gap,
                overlap,
            };
            let expected: Vec<_> = brute_force_slots(&cron, &zone, gap, overlap, from, to)
                .into_iter()
                .filter(|slot| *slot > first && *slot <= last)
                .collect();
            let mut walked = Vec::new();
            let mut at = first;
            while let Some(next) = slots.slot_after(at).filter(|next| *next <= last) {
                walked.push(next);
                at = next;
            }
            assert_eq!(walked, expected, "{gap:?} {overlap:?}");
        }
    }

    #[test]
    fn a_match_on_the_first_skipped_minute_fires_at_the_transition() {
        let zone = zone("Australia/Sydney");
        let cron = parse("0 2 * * *");
        let slots = ZonedPattern {
            cron: &cron,
            zone: &zone,
            gap: DstGap::Shift,
            overlap: DstOverlap::Earlier,
        };
        let after: Timestamp = "2024-10-04T16:00:00Z".parse().unwrap();
        let transition: Timestamp = "2024-10-05T16:00:00Z".parse().unwrap();
        assert_eq!(slots.slot_after(after), Some(transition));
        assert_eq!(slots.slot_at_or_before(transition), Some(transition));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Each next slot is strictly later, is a real instant whose civil time in the zone
        /// matches the pattern (or is the end of a gap holding a match), and the backward
        /// search from any instant agrees with the forward search.
        #[test]
        fn slots_increase_strictly_and_both_search_directions_agree(
            pattern in patterns(),
            zone_index in 0..ZONES.len(),
            start in instants(),
            (gap, overlap) in policies(),
        ) {
            let cron = parse(&pattern);
            let zone = zone(ZONES[zone_index]);
            let slots = ZonedPattern { cron: &cron, zone: &zone, gap, overlap };

            let mut previous = start;
            for _ in 0..4 {
                let Some(next) = slots.slot_after(previous) else { break };
                let zone_name = ZONES[zone_index];
                prop_assert!(next > previous, "{pattern} in {zone_name}: {next} after {previous}");

                let civil = zone.to_datetime(next);
                let at_transition = zone
                    .preceding(next.checked_add(ONE_NANOSECOND).unwrap())
                    .next()
                    .is_some_and(|transition| transition.timestamp() == next);
                prop_assert!(
                    cron.is_time_matching(&civil).unwrap() || at_transition,
                    "{pattern} in {zone_name}: {civil} does not match"
                );

                prop_assert_eq!(slots.slot_at_or_before(next), Some(next));
                let just_before = next.checked_sub(ONE_NANOSECOND).unwrap();
                let earlier = slots.slot_at_or_before(just_before);
                prop_assert!(earlier.is_none_or(|earlier| earlier < next));
                if let Some(earlier) = earlier {
                    prop_assert_eq!(slots.slot_after(earlier), Some(next));
                }
                previous = next;
            }
        }

        /// Around DST transitions, a minute pattern's slots are exactly the ones found by
        /// resolving every civil minute on its own.
        #[test]
        fn slots_match_a_minute_by_minute_brute_force_near_transitions(
            minute in select(vec!["0", "30", "*/15", "45", "*/7"]),
            hour in select(vec!["*", "1", "2", "0-3", "*/2"]),
            zone_index in 1..ZONES.len(),
            year in 2024_i16..2032,
            which in 0..2_usize,
            (gap, overlap) in policies(),
        ) {
            let cron = parse(&format!("{minute} {hour} * * *"));
            let zone = zone(ZONES[zone_index]);
            let slots = ZonedPattern { cron: &cron, zone: &zone, gap, overlap };
            let january = jiff::civil::date(year, 1, 1).at(0, 0, 0, 0);
            let new_year = zone.to_timestamp(january).unwrap();
            let Some(transition) = zone.following(new_year).nth(which) else {
                return Ok(());
            };

            let hours = SignedDuration::from_hours;
            let from = zone.to_datetime(transition.timestamp()).saturating_sub(hours(30));
            let to = from.saturating_add(hours(60));
            let first = zone.to_timestamp(from.saturating_add(hours(3))).unwrap();
            let last = zone.to_timestamp(to.saturating_sub(hours(3))).unwrap();
            let expected: Vec<_> = brute_force_slots(&cron, &zone, gap, overlap, from, to)
                .into_iter()
                .filter(|slot| *slot > first && *slot <= last)
                .collect();

            let mut walked = Vec::new();
            let mut at = first;
            while let Some(next) = slots.slot_after(at).filter(|next| *next <= last) {
                walked.push(next);
                at = next;
            }
            prop_assert_eq!(&walked, &expected);

            let mut walked_back = Vec::new();
            let mut at = last;
            while let Some(slot) = slots.slot_at_or_before(at).filter(|slot| *slot > first) {
                walked_back.push(slot);
                at = slot.checked_sub(ONE_NANOSECOND).unwrap();
            }
            walked_back.reverse();
            prop_assert_eq!(&walked_back, &expected);
        }
    }
}
