//! What every recurring schedule shares: the window it fires in (`start_at`, `end_at`), how
//! many times it may fire (`max_fires`), and what becomes of slots it missed (`on_missed`).
//!
//! A recurring schedule is a series of *slots*, the instants it is meant to fire at. The
//! pending slot is the earliest one not yet fired. When it is still in the future nothing
//! was missed. When it is already due, every slot from it up to now was missed (the timer was
//! paused, or no worker ran), and the policy picks the one to fire next:
//!
//! - `fire_once` (default): the latest due slot, at once; the older ones are dropped.
//! - `skip`: none of them; the first slot after now.
//! - `fire_all`: the oldest due slot, then each following one in turn, at most
//!   [`MAX_CATCH_UP_FIRES`] in all: older slots beyond that are dropped.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::parse_instant;
use crate::validation::Errors;

/// Most missed slots that `fire_all` replays; older ones are dropped. A timer paused for a
/// long time would otherwise flood its consumers (and a worker) with stale fires.
pub const MAX_CATCH_UP_FIRES: usize = 100;

/// The fields of this module, shared by every recurring kind of schedule.
pub(super) const FIELDS: [&str; 4] = ["start_at", "end_at", "max_fires", "on_missed"];

const ONE_NANOSECOND: SignedDuration = SignedDuration::from_nanos(1);

/// What a recurring timer does about slots that came due while it could not fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMissed {
    /// One fire at once, for the latest missed slot, then the schedule goes on.
    #[default]
    FireOnce,
    /// No catch-up fire: the next slot still in the future.
    Skip,
    /// Every missed slot in order, at most [`MAX_CATCH_UP_FIRES`].
    FireAll,
}

impl OnMissed {
    /// The name clients write in `on_missed`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnMissed::FireOnce => "fire_once",
            OnMissed::Skip => "skip",
            OnMissed::FireAll => "fire_all",
        }
    }

    fn from_json(value: &Value) -> Result<Self, String> {
        match value.as_str() {
            Some("fire_once") => Ok(OnMissed::FireOnce),
            Some("skip") => Ok(OnMissed::Skip),
            Some("fire_all") => Ok(OnMissed::FireAll),
            _ => Err("must be one of \"fire_once\", \"skip\" or \"fire_all\"".to_owned()),
        }
    }
}

/// The slots of one recurring schedule, found from any instant in either direction.
pub(super) trait Slots {
    /// The first slot strictly after `instant`.
    fn slot_after(&self, instant: Timestamp) -> Option<Timestamp>;

    /// The last slot at or before `instant`.
    fn slot_at_or_before(&self, instant: Timestamp) -> Option<Timestamp>;
}

/// The window, fire limit and missed-fire policy of a recurring schedule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recurrence {
    /// No slot before this instant; for `every`, the grid's anchor.
    pub start_at: Option<Timestamp>,
    /// No slot after this instant (a slot exactly at it still fires).
    pub end_at: Option<Timestamp>,
    /// The timer completes after this many fires (at least 1).
    pub max_fires: Option<i64>,
    pub on_missed: OnMissed,
}

impl Recurrence {
    /// Reads the shared fields of a recurring schedule, recording what is wrong with them.
    pub(super) fn from_object(object: &Map<String, Value>, errors: &mut Errors) -> Recurrence {
        let mut recurrence = Recurrence::default();
        let read = |field: &str, errors: &mut Errors| {
            let value = object.get(field)?;
            match parse_instant(value) {
                Ok(instant) => Some(instant),
                Err(detail) => {
                    errors.add(field, detail);
                    None
                }
            }
        };
        recurrence.start_at = read("start_at", errors);
        recurrence.end_at = read("end_at", errors);

        if let (Some(start_at), Some(end_at)) = (recurrence.start_at, recurrence.end_at)
            && end_at < start_at
        {
            errors.add("end_at", "must not be before start_at");
        }

        if let Some(value) = object.get("max_fires") {
            match parse_max_fires(value) {
                Ok(max_fires) => recurrence.max_fires = Some(max_fires),
                Err(detail) => errors.add("max_fires", detail),
            }
        }

        if let Some(value) = object.get("on_missed") {
            match OnMissed::from_json(value) {
                Ok(on_missed) => recurrence.on_missed = on_missed,
                Err(detail) => errors.add("on_missed", detail),
            }
        }
        recurrence
    }

    /// Writes the shared fields in canonical form: instants in UTC, the policy always named.
    pub(super) fn write_json(&self, object: &mut Map<String, Value>) {
        if let Some(start_at) = self.start_at {
            object.insert("start_at".to_owned(), json!(start_at));
        }
        if let Some(end_at) = self.end_at {
            object.insert("end_at".to_owned(), json!(end_at));
        }
        if let Some(max_fires) = self.max_fires {
            object.insert("max_fires".to_owned(), json!(max_fires));
        }
        object.insert("on_missed".to_owned(), json!(self.on_missed.as_str()));
    }

    /// Whether a timer that fired `fire_count` times is done.
    pub(super) fn has_fired_enough(&self, fire_count: i64) -> bool {
        self.max_fires
            .is_some_and(|max_fires| fire_count >= max_fires)
    }

    /// The next fire of a timer whose earliest unfired slot is `pending`, by the missed-fire
    /// policy. It may be at or before `now`, meaning "fire at once"; `None` completes the
    /// timer.
    pub(super) fn catch_up(
        &self,
        slots: &impl Slots,
        pending: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let pending = pending?;
        if self.end_at.is_some_and(|end_at| pending > end_at) {
            return None;
        }
        if pending > now {
            return Some(pending);
        }

        // Slots after end_at were never due, even when now is past it.
        let last_due = self.end_at.map_or(now, |end_at| end_at.min(now));
        let latest_due = slots
            .slot_at_or_before(last_due)
            .filter(|slot| *slot >= pending)
            .unwrap_or(pending);
        let next = match self.on_missed {
            OnMissed::FireOnce => Some(latest_due),
            OnMissed::Skip => slots.slot_after(now),
            OnMissed::FireAll => Some(oldest_within_cap(slots, pending, latest_due)),
        };
        next.filter(|next| self.end_at.is_none_or(|end_at| *next <= end_at))
    }

    /// Up to `count` slots from `first` on, as a timer that has not fired yet would fire
    /// them: within end_at and max_fires.
    pub(super) fn preview(
        &self,
        slots: &impl Slots,
        first: Option<Timestamp>,
        count: usize,
    ) -> Vec<Timestamp> {
        let count = match self.max_fires {
            Some(max_fires) => count.min(usize::try_from(max_fires).unwrap_or(usize::MAX)),
            None => count,
        };
        let mut fires = Vec::with_capacity(count.min(super::MAX_PREVIEW_FIRES));
        let mut next = first;
        while let Some(fire) = next {
            if fires.len() >= count || self.end_at.is_some_and(|end_at| fire > end_at) {
                break;
            }
            fires.push(fire);
            next = slots.slot_after(fire);
        }
        fires
    }
}

/// The oldest of the due slots from `pending` to `latest_due` that `fire_all` still fires:
/// walking back from the latest, at most [`MAX_CATCH_UP_FIRES`] slots.
fn oldest_within_cap(slots: &impl Slots, pending: Timestamp, latest_due: Timestamp) -> Timestamp {
    let mut oldest = latest_due;
    for _ in 1..MAX_CATCH_UP_FIRES {
        let earlier = oldest
            .checked_sub(ONE_NANOSECOND)
            .ok()
            .and_then(|instant| slots.slot_at_or_before(instant));
        match earlier {
            Some(earlier) if earlier >= pending => oldest = earlier,
            // Reached the pending slot itself, which is due and fires first.
            _ => return pending,
        }
    }
    oldest
}

/// Reads `max_fires`: a whole number, at least 1.
fn parse_max_fires(value: &Value) -> Result<i64, String> {
    let Some(number) = value.as_number() else {
        return Err("must be a whole number of fires, at least 1".to_owned());
    };
    let max_fires = match number.as_i64() {
        Some(max_fires) => max_fires,
        None if number.as_u64().is_some() => return Err("is too large".to_owned()),
        None => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            if float.fract() != 0.0 || !float.is_finite() {
                return Err("must be a whole number of fires, at least 1".to_owned());
            }
            if float >= i64::MAX as f64 {
                return Err("is too large".to_owned());
            }
            float as i64
        }
    };
    if max_fires < 1 {
        return Err("must be at least 1".to_owned());
    }
    Ok(max_fires)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot every 10 seconds from the epoch.
    struct TenSeconds;

    impl Slots for TenSeconds {
        fn slot_after(&self, instant: Timestamp) -> Option<Timestamp> {
            let second = instant.as_second().div_euclid(10) * 10 + 10;
            Timestamp::from_second(second).ok()
        }

        fn slot_at_or_before(&self, instant: Timestamp) -> Option<Timestamp> {
            let second = instant.as_second() - i64::from(instant.subsec_nanosecond() < 0);
            Timestamp::from_second(second.div_euclid(10) * 10).ok()
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn policy(on_missed: OnMissed) -> Recurrence {
        Recurrence {
            on_missed,
            ..Recurrence::default()
        }
    }

    #[test]
    fn a_pending_slot_in_the_future_is_kept_by_every_policy() {
        for on_missed in [OnMissed::FireOnce, OnMissed::Skip, OnMissed::FireAll] {
            assert_eq!(
                policy(on_missed).catch_up(&TenSeconds, Some(at(100)), at(95)),
                Some(at(100))
            );
        }
    }

    #[test]
    fn missed_slots_are_fired_once_skipped_or_replayed() {
        let now = at(155);
        let fired = |on_missed| policy(on_missed).catch_up(&TenSeconds, Some(at(100)), now);
        assert_eq!(fired(OnMissed::FireOnce), Some(at(150)));
        assert_eq!(fired(OnMissed::Skip), Some(at(160)));
        assert_eq!(fired(OnMissed::FireAll), Some(at(100)));
    }

    #[test]
    fn fire_all_drops_the_oldest_slots_beyond_the_cap() {
        let now = at(100_000);
        let oldest = policy(OnMissed::FireAll)
            .catch_up(&TenSeconds, Some(at(0)), now)
            .unwrap();
        let cap = MAX_CATCH_UP_FIRES as i64;
        assert_eq!(oldest, at(100_000 - (cap - 1) * 10));
    }

    #[test]
    fn slots_after_end_at_are_never_due() {
        let recurrence = Recurrence {
            end_at: Some(at(125)),
            ..Recurrence::default()
        };
        assert_eq!(
            recurrence.catch_up(&TenSeconds, Some(at(100)), at(500)),
            Some(at(120))
        );
        assert_eq!(
            recurrence.catch_up(&TenSeconds, Some(at(130)), at(100)),
            None
        );
        let skipping = Recurrence {
            on_missed: OnMissed::Skip,
            ..recurrence
        };
        assert_eq!(skipping.catch_up(&TenSeconds, Some(at(100)), at(500)), None);
    }

    #[test]
    fn max_fires_must_be_a_positive_whole_number() {
        assert_eq!(parse_max_fires(&json!(3)), Ok(3));
        assert_eq!(parse_max_fires(&json!(3.0)), Ok(3));
        for value in [
            json!(0),
            json!(-1),
            json!(1.5),
            json!("3"),
            json!(1e20),
            json!(u64::MAX),
        ] {
            assert!(parse_max_fires(&value).is_err(), "{value} was accepted");
        }
    }

    #[test]
    fn a_preview_stops_at_max_fires_and_end_at() {
        let limited = Recurrence {
            max_fires: Some(3),
            ..Recurrence::default()
        };
        assert_eq!(
            limited.preview(&TenSeconds, Some(at(0)), 10),
            [at(0), at(10), at(20)]
        );
        let ending = Recurrence {
            end_at: Some(at(15)),
            ..Recurrence::default()
        };
        assert_eq!(
            ending.preview(&TenSeconds, Some(at(0)), 10),
            [at(0), at(10)]
        );
    }
}
