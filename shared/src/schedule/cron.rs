//! Cron schedules, `{"cron": "0 9 * * MON-FRI", "timezone": "Europe/Paris"}`: slots at the
//! civil times a pattern matches, in an IANA time zone (default `UTC`).
//!
//! Patterns follow croner (the Open Cron Pattern Specification): 5 fields (minute, hour,
//! day of month, month, day of week) or 6 with seconds first; names (`JAN`, `MON`), ranges,
//! steps, lists, `L`, `W`, `#`, `?` and the `@daily`-style nicknames. Day of month and day
//! of week combine with OR, as in classic cron, unless the day of week starts with `+`.
//!
//! A pattern is refused unless some day matches it. Whether a day matches depends only on
//! its month, the month's length and the weekday the month starts on, and every such
//! combination recurs in the Gregorian calendar (within each 400-year cycle), so checking
//! each combination once (fewer than 2,800 days) decides it exactly. After that, every search
//! for a next slot ends at a real match.
//!
//! Time zones are names of the IANA database bundled into the binary (not the machine's), so
//! every api and worker process agrees on the rules. Only `UTC` and `Area/Location` names
//! are accepted: abbreviations (`PST`) are not zones, and the legacy rule names the database
//! still carries (`EST`, `EST5EDT`, `PST8PDT`, `CET`) read like abbreviations while meaning
//! something else (`EST` never observes DST), so they are refused too.

use std::sync::LazyLock;

use croner::parser::{CronParser, Seconds, Year};
use croner::{Cron, CronPattern, Weekday};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::dst::{DstGap, DstOverlap, ZonedPattern};
use super::recurrence::{self, Recurrence, Slots};
use crate::validation::{Errors, FieldError};

/// Longest accepted pattern, in bytes: bounds the work of parsing one.
pub const MAX_PATTERN_LEN: usize = 256;

/// The zone of a cron schedule that names none.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// A leap year and a common year, to give February each of its lengths.
const LEAP_YEAR: i32 = 2000;
const COMMON_YEAR: i32 = 2001;

/// The fields of a cron schedule besides the shared recurring ones.
const FIELDS: [&str; 3] = ["timezone", "dst_gap", "dst_overlap"];

const ONE_NANOSECOND: SignedDuration = SignedDuration::from_nanos(1);

/// The IANA database compiled into the binary.
static TIME_ZONES: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// A cron schedule: a pattern, its time zone and DST policies, and the shared bounds.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    pattern: String,
    cron: Cron,
    timezone: String,
    zone: TimeZone,
    pub dst_gap: DstGap,
    pub dst_overlap: DstOverlap,
    pub recurrence: Recurrence,
}

impl PartialEq for CronSchedule {
    /// Equal when the canonical definitions are: the parsed forms follow from them.
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
            && self.timezone == other.timezone
            && self.dst_gap == other.dst_gap
            && self.dst_overlap == other.dst_overlap
            && self.recurrence == other.recurrence
    }
}

impl CronSchedule {
    /// The pattern in canonical form: upper case, fields separated by one space.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The IANA name of the zone, as the database spells it.
    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// Reads `{"cron": ..., "timezone"?, "dst_gap"?, "dst_overlap"?}` and the shared fields.
    pub(super) fn from_object(object: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Errors::default();
        let allowed: Vec<&str> = FIELDS.iter().chain(&recurrence::FIELDS).copied().collect();
        super::reject_unknown(object, "cron", &allowed, &mut errors);

        let pattern = parse_pattern(&object["cron"])
            .map_err(|detail| errors.add("cron", detail))
            .ok();
        let zone = match object.get("timezone") {
            None => Some(utc()),
            Some(value) => parse_timezone(value)
                .map_err(|detail| errors.add("timezone", detail))
                .ok(),
        };
        let dst_gap = match object.get("dst_gap").map(DstGap::from_json) {
            None => DstGap::default(),
            Some(Ok(dst_gap)) => dst_gap,
            Some(Err(detail)) => {
                errors.add("dst_gap", detail);
                DstGap::default()
            }
        };
        let dst_overlap = match object.get("dst_overlap").map(DstOverlap::from_json) {
            None => DstOverlap::default(),
            Some(Ok(dst_overlap)) => dst_overlap,
            Some(Err(detail)) => {
                errors.add("dst_overlap", detail);
                DstOverlap::default()
            }
        };
        let recurrence = Recurrence::from_object(object, &mut errors);

        match (pattern, zone) {
            (Some((pattern, cron)), Some((timezone, zone))) if errors.is_empty() => Ok(Self {
                pattern,
                cron,
                timezone,
                zone,
                dst_gap,
                dst_overlap,
                recurrence,
            }),
            _ => Err(errors.into_vec()),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("cron".to_owned(), json!(self.pattern));
        object.insert("timezone".to_owned(), json!(self.timezone));
        object.insert("dst_gap".to_owned(), json!(self.dst_gap.as_str()));
        object.insert("dst_overlap".to_owned(), json!(self.dst_overlap.as_str()));
        self.recurrence.write_json(&mut object);
        Value::Object(object)
    }

    /// The first slot at or after start_at (slots between a past start_at and the
    /// definition are missed fires), or the first slot after the definition.
    pub(super) fn first_fire(&self, defined_at: Timestamp) -> Option<Timestamp> {
        let slots = self.slots();
        let first = match self.recurrence.start_at {
            Some(start_at) => slots.slot_after(start_at.checked_sub(ONE_NANOSECOND).ok()?),
            None => slots.slot_after(defined_at),
        };
        self.recurrence.catch_up(&slots, first, defined_at)
    }

    pub(super) fn next_fire(
        &self,
        scheduled: Timestamp,
        fire_count: i64,
        now: Timestamp,
    ) -> Option<Timestamp> {
        if self.recurrence.has_fired_enough(fire_count) {
            return None;
        }
        let slots = self.slots();
        self.recurrence
            .catch_up(&slots, slots.slot_after(scheduled), now)
    }

    pub(super) fn resume_fire(&self, pending: Timestamp, now: Timestamp) -> Option<Timestamp> {
        self.recurrence.catch_up(&self.slots(), Some(pending), now)
    }

    /// Slots after `after`, and not before start_at.
    pub(super) fn preview(&self, after: Timestamp, count: usize) -> Vec<Timestamp> {
        let slots = self.slots();
        let from = match self.recurrence.start_at {
            Some(start_at) if start_at > after => start_at.checked_sub(ONE_NANOSECOND).ok(),
            _ => Some(after),
        };
        let first = from.and_then(|from| slots.slot_after(from));
        self.recurrence.preview(&slots, first, count)
    }

    fn slots(&self) -> ZonedPattern<'_> {
        ZonedPattern {
            cron: &self.cron,
            zone: &self.zone,
            gap: self.dst_gap,
            overlap: self.dst_overlap,
        }
    }
}

/// Reads a cron pattern: 5 or 6 fields that croner accepts and that some day matches.
fn parse_pattern(value: &Value) -> Result<(String, Cron), String> {
    let Some(text) = value.as_str() else {
        return Err("must be a cron pattern such as \"0 9 * * MON-FRI\"".to_owned());
    };
    if text.len() > MAX_PATTERN_LEN {
        return Err(format!("must be at most {MAX_PATTERN_LEN} bytes"));
    }
    let fields: Vec<&str> = text.split_whitespace().collect();
    let is_nickname = fields.len() == 1 && fields[0].starts_with('@');
    if !is_nickname && !(5..=6).contains(&fields.len()) {
        return Err(format!(
            "{text:?} has {} fields: a pattern has 5 (minute hour day-of-month month \
             day-of-week) or 6 with seconds first",
            fields.len()
        ));
    }

    let pattern = fields.join(" ").to_uppercase();
    let cron = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(&pattern)
        .map_err(|error| format!("{text:?} is not a valid cron pattern: {error}"))?;
    if !matches_some_day(&cron.pattern) {
        return Err(format!(
            "{text:?} never matches: no day satisfies its day-of-month, month and \
             day-of-week fields together"
        ));
    }
    Ok((pattern, cron))
}

/// Whether any day satisfies the pattern's date fields. croner reads a year only for the
/// length of its month, so one month of each length and each starting weekday stands for
/// all the months like it: at most 7 x (11 x 31 + 28 + 29) checks.
fn matches_some_day(pattern: &CronPattern) -> bool {
    (1..=12)
        .filter(|month| pattern.month_match(*month).unwrap_or(false))
        .any(|month| {
            let years: &[i32] = if month == 2 {
                &[LEAP_YEAR, COMMON_YEAR]
            } else {
                &[COMMON_YEAR]
            };
            years.iter().any(|year| {
                let length = croner::time::days_in_month(*year, month);
                (0..7).any(|first_weekday| {
                    let first = Weekday::from_days_from_sunday(first_weekday);
                    (1..=length).any(|day| {
                        let weekday = first.shift(day as i32 - 1);
                        pattern
                            .day_match(*year, month, day, weekday)
                            .unwrap_or(false)
                    })
                })
            })
        })
}

fn utc() -> (String, TimeZone) {
    (DEFAULT_TIMEZONE.to_owned(), TimeZone::UTC)
}

/// Reads an IANA zone name (`Europe/Paris`, `UTC`) and returns it as the database spells it.
fn parse_timezone(value: &Value) -> Result<(String, TimeZone), String> {
    let Some(name) = value.as_str() else {
        return Err("must be an IANA time zone name such as \"Europe/Paris\"".to_owned());
    };
    if name.is_empty() {
        return Err(
            "must not be empty: use an IANA time zone name such as \"Europe/Paris\" \
                    or \"UTC\""
                .to_owned(),
        );
    }
    let unknown = || format!("{name:?} is not an IANA time zone name such as \"Europe/Paris\"");
    let zone = TIME_ZONES.get(name).map_err(|_| unknown())?;
    let Some(canonical) = zone.iana_name().map(str::to_owned) else {
        return Err(unknown());
    };
    if canonical == DEFAULT_TIMEZONE {
        return Ok(utc());
    }
    if !canonical.contains('/') {
        return Err(format!(
            "{name:?} is a legacy zone name, not an Area/Location name: use one such as \
             \"America/New_York\", or \"UTC\""
        ));
    }
    Ok((canonical, zone))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cron(value: Value) -> Result<CronSchedule, Vec<FieldError>> {
        CronSchedule::from_object(value.as_object().unwrap())
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|error| error.field.as_str()).collect()
    }

    #[test]
    fn patterns_that_can_never_match_are_refused_on_the_cron_field() {
        for pattern in [
            "0 0 30 2 *",
            "0 0 31 4,6 *",
            "0 0 31 2,4,6,9,11 *",
            "0 0 1 * +MON#2",
        ] {
            let errors = cron(json!({"cron": pattern})).unwrap_err();
            assert_eq!(fields(&errors), ["cron"], "{pattern}");
            assert!(errors[0].detail.contains("never matches"), "{pattern}");
        }
    }

    #[test]
    fn patterns_that_match_rarely_are_accepted() {
        for pattern in [
            "0 0 29 2 *",
            "0 0 29 2 +MON",
            "0 0 * 2 MON#5",
            "0 0 31 4,5 *",
        ] {
            assert!(cron(json!({"cron": pattern})).is_ok(), "{pattern}");
        }
    }

    /// The slow, obvious answer: every day of a whole 400-year calendar cycle.
    fn some_day_of_the_cycle_matches(pattern: &CronPattern) -> bool {
        let mut first_of_month = Weekday::Saturday; // 1 January 2000
        for year in 2000..2400 {
            for month in 1..=12 {
                let length = croner::time::days_in_month(year, month);
                let month_matches = pattern.month_match(month).unwrap();
                for day in 1..=length {
                    let weekday = first_of_month.shift(day as i32 - 1);
                    if month_matches && pattern.day_match(year, month, day, weekday).unwrap() {
                        return true;
                    }
                }
                first_of_month = first_of_month.shift(length as i32);
            }
        }
        false
    }

    #[test]
    fn checking_one_month_of_each_kind_agrees_with_scanning_a_whole_calendar_cycle() {
        let days = ["*", "1", "29", "30", "31", "30,31", "L", "15W", "31W", "LW"];
        let months = ["*", "2", "4,6", "2,4,6,9,11", "2,3", "*/5", "9"];
        let weekdays = ["*", "MON", "+MON", "+MON#2", "+5L", "1#5", "+1#5", "+SUN#1"];
        let mut never = 0;
        for day in days {
            for month in months {
                for weekday in weekdays {
                    let pattern = format!("0 0 {day} {month} {weekday}");
                    let cron: Cron = CronParser::builder().build().parse(&pattern).unwrap();
                    let exact = some_day_of_the_cycle_matches(&cron.pattern);
                    assert_eq!(matches_some_day(&cron.pattern), exact, "{pattern}");
                    never += usize::from(!exact);
                }
            }
        }
        // The grid holds patterns that never match, or the comparison would prove little.
        assert!(never > 10, "only {never} patterns never match");
    }

    #[test]
    fn malformed_patterns_are_refused_on_the_cron_field() {
        for pattern in [
            json!(""),
            json!("* * * *"),
            json!("0 0 0 1 1 * 2027"),
            json!("61 * * * *"),
            json!("* * * * 8"),
            json!("*/0 * * * *"),
            json!("@reboot"),
            json!("x".repeat(300)),
            json!(5),
        ] {
            let errors = cron(json!({"cron": pattern})).unwrap_err();
            assert_eq!(fields(&errors), ["cron"], "{pattern}");
        }
    }

    #[test]
    fn patterns_are_stored_in_one_canonical_spelling() {
        let spaced = cron(json!({"cron": "  0  9 * *   mon-fri "})).unwrap();
        let plain = cron(json!({"cron": "0 9 * * MON-FRI"})).unwrap();
        assert_eq!(spaced, plain);
        assert_eq!(spaced.to_json(), plain.to_json());
        assert_eq!(spaced.pattern(), "0 9 * * MON-FRI");
    }

    #[test]
    fn unknown_abbreviated_legacy_and_empty_zones_are_refused_on_the_timezone_field() {
        for zone in [
            "America/New_Yrok",
            "Mars/Phobos",
            "PST",
            "",
            "EST",
            "PST8PDT",
            "CET",
        ] {
            let errors = cron(json!({"cron": "0 9 * * *", "timezone": zone})).unwrap_err();
            assert_eq!(fields(&errors), ["timezone"], "{zone:?}");
        }
        let errors = cron(json!({"cron": "0 9 * * *", "timezone": 1})).unwrap_err();
        assert_eq!(fields(&errors), ["timezone"]);
    }

    #[test]
    fn zone_names_are_stored_as_the_database_spells_them() {
        let schedule = cron(json!({"cron": "0 9 * * *", "timezone": "europe/PARIS"})).unwrap();
        assert_eq!(schedule.timezone(), "Europe/Paris");
        let utc = cron(json!({"cron": "0 9 * * *", "timezone": "utc"})).unwrap();
        assert_eq!(utc, cron(json!({"cron": "0 9 * * *"})).unwrap());
        assert_eq!(utc.timezone(), "UTC");
        assert!(cron(json!({"cron": "0 9 * * *", "timezone": "Etc/GMT+5"})).is_ok());
    }

    #[test]
    fn every_error_of_a_cron_schedule_is_reported_at_once() {
        let errors = cron(json!({
            "cron": "0 0 30 2 *",
            "timezone": "Mars/Phobos",
            "dst_gap": "later",
            "dst_overlap": "twice",
            "every": "1s",
        }))
        .unwrap_err();
        let mut named = fields(&errors);
        named.sort();
        assert_eq!(
            named,
            ["cron", "dst_gap", "dst_overlap", "every", "timezone"]
        );
    }
}
