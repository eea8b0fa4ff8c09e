//! Hostile input to the parsers that every request reaches: durations, schedules and whole
//! timer definitions, fed random strings, random JSON values and random objects shaped like
//! the real thing. None may panic or take long; whatever a parser accepts must round-trip
//! and compute fires without panicking either.

use std::time::{Duration, Instant};

use clockworks::duration::Millis;
use clockworks::schedule::Schedule;
use clockworks::timer::{Limits, NewTimer};
use jiff::Timestamp;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Number, Value};

/// Generous bound on one parse: a pathological input would take far longer.
const PARSE_BOUND: Duration = Duration::from_secs(5);
/// How deep generated JSON nests, and how wide its arrays and objects get.
const JSON_DEPTH: u32 = 4;
const JSON_WIDTH: usize = 6;
/// Fields a schedule object may have, and fields a timer object may have.
const SCHEDULE_FIELDS: [&str; 11] = [
    "at",
    "after",
    "every",
    "cron",
    "timezone",
    "start_at",
    "end_at",
    "max_fires",
    "on_missed",
    "dst_gap",
    "dst_overlap",
];
const TIMER_FIELDS: [&str; 8] = [
    "id",
    "group",
    "schedule",
    "routing_key",
    "payload",
    "headers",
    "expire_after",
    "state",
];

/// Runs `parse` and fails the case if it took longer than [`PARSE_BOUND`].
fn bounded<T>(what: &str, parse: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let started = Instant::now();
    let parsed = parse();
    let took = started.elapsed();
    prop_assert!(took < PARSE_BOUND, "{what} took {took:?}");
    Ok(parsed)
}

/// Text shaped like what the parsers expect: durations, instants, zones and cron fields.
fn near_miss_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9PTYMWDHSmshdwu.:+ -]{0,24}",
        concat!(
            "[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}T[0-9]{1,2}:[0-9]{2}:[0-9]{2}",
            "(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:?[0-9]{2})?"
        ),
        "(Europe|America|Asia|Etc|UTC|GMT)(/[A-Za-z_+-]{0,14})?",
        cron_text(),
    ]
}

/// Five to seven whitespace-separated tokens of cron syntax, valid or not.
fn cron_text() -> impl Strategy<Value = String> {
    let common = vec![
        "*", "0", "5", "30", "*/5", "*/15", "1-5", "MON-FRI", "1,15", "L",
    ];
    let token = prop_oneof![
        8 => select(common).prop_map(str::to_owned),
        1 => Just("?".to_owned()),
        1 => "[0-9]{1,3}",
        1 => "[0-9]{1,2}-[0-9]{1,3}",
        1 => "\\*/[0-9]{1,4}",
        1 => "[0-9]{1,2}(,[0-9]{1,2}){1,4}",
        1 => "[0-9]{0,2}[LW#][0-9]{0,2}",
        1 => "[A-Z]{3}(-[A-Z]{3})?",
        1 => "[0-9*/,LW#?A-Z-]{1,8}",
    ];
    prop::collection::vec(token, 5..=7).prop_map(|tokens| tokens.join(" "))
}

/// Any JSON scalar, strings favouring [`near_miss_text`].
fn json_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN or infinity", |f| {
            Number::from_f64(f).map(Value::Number)
        }),
        near_miss_text().prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ]
}

/// An object key: usually a field a schedule or a timer has, sometimes anything.
fn json_key() -> impl Strategy<Value = String> {
    let known: Vec<&str> = SCHEDULE_FIELDS
        .iter()
        .chain(&TIMER_FIELDS)
        .copied()
        .collect();
    prop_oneof![
        3 => select(known).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Any JSON value, nested up to [`JSON_DEPTH`].
fn json_value() -> impl Strategy<Value = Value> {
    json_scalar().prop_recursive(JSON_DEPTH, 64, JSON_WIDTH as u32, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..JSON_WIDTH).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..JSON_WIDTH)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// An instant as RFC 3339 text, from before the earliest a schedule may name (1970) to after
/// the latest (the year 4000).
fn instant_text() -> impl Strategy<Value = String> {
    (-100_000_000_i64..70_000_000_000).prop_map(|second| {
        Timestamp::from_second(second).map_or_else(|_| String::new(), |at| at.to_string())
    })
}

/// A duration as friendly or ISO 8601 text, zero and far too long ones included.
fn duration_text() -> impl Strategy<Value = String> {
    let units = vec!["ms", "s", "m", "h", "d", "w"];
    prop_oneof![
        (0_u64..100_000, select(units.clone())).prop_map(|(n, unit)| format!("{n}{unit}")),
        (0_u64..1_000, select(units), 0_u64..100).prop_map(|(n, unit, m)| format!("{n}{unit}{m}s")),
        (0_u64..100_000, select(vec!["S", "M", "H"])).prop_map(|(n, unit)| format!("PT{n}{unit}")),
        (0_u64..100_000).prop_map(|days| format!("P{days}D")),
    ]
}

/// A value for a schedule field: usually one of the right shape (valid or nearly), now and
/// then any scalar at all.
fn schedule_field(name: &'static str) -> BoxedStrategy<Value> {
    let plausible: BoxedStrategy<Value> = match name {
        "at" | "start_at" | "end_at" => instant_text().prop_map(Value::String).boxed(),
        "after" | "every" => duration_text().prop_map(Value::String).boxed(),
        "cron" => cron_text().prop_map(Value::String).boxed(),
        "timezone" => select(vec![
            "UTC",
            "Europe/Paris",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
            "Mars/Olympus_Mons",
        ])
        .prop_map(Value::from)
        .boxed(),
        "max_fires" => (-2_i64..6).prop_map(Value::from).boxed(),
        "on_missed" => select(vec!["fire_once", "skip", "fire_all", "later"])
            .prop_map(Value::from)
            .boxed(),
        "dst_gap" => select(vec!["shift", "skip", "drop"])
            .prop_map(Value::from)
            .boxed(),
        _ => select(vec!["earlier", "both", "later"])
            .prop_map(Value::from)
            .boxed(),
    };
    prop_oneof![6 => plausible, 1 => json_scalar()].boxed()
}

/// A schedule object of one kind with some of the optional fields that kind takes, and now
/// and then a field that does not belong.
fn schedule_like() -> impl Strategy<Value = Value> {
    select(vec!["at", "after", "every", "cron"])
        .prop_flat_map(|kind| {
            let optional: Vec<&'static str> = match kind {
                "every" => vec!["start_at", "end_at", "max_fires", "on_missed"],
                "cron" => SCHEDULE_FIELDS[4..].to_vec(),
                _ => Vec::new(),
            };
            let count = optional.len();
            (
                Just(kind),
                prop::sample::subsequence(optional, 0..=count),
                prop::option::weighted(0.1, select(SCHEDULE_FIELDS.to_vec())),
            )
        })
        .prop_flat_map(|(kind, optional, stray)| {
            std::iter::once(kind)
                .chain(optional)
                .chain(stray)
                .map(|name| schedule_field(name).prop_map(move |value| (name, value)))
                .collect::<Vec<_>>()
        })
        .prop_map(|fields| {
            Value::Object(
                fields
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value))
                    .collect::<Map<String, Value>>(),
            )
        })
}

/// A string matching `pattern`, now and then any JSON value instead.
fn matching_or_any(pattern: &'static str) -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => pattern.prop_map(Value::String),
        1 => json_value(),
    ]
}

/// A timer object: a schedule shaped like one and the other fields, each usually of the
/// right shape and now and then anything.
fn timer_like() -> impl Strategy<Value = Value> {
    let headers = prop::collection::btree_map("[A-Za-z-]{1,12}", "[ -~]{0,16}", 0..4)
        .prop_map(|headers| serde_json::json!(headers));
    (
        schedule_like(),
        prop::option::of(matching_or_any("[A-Za-z0-9._~:-]{1,24}")),
        prop::option::of(matching_or_any("[a-z]{1,10}")),
        prop::option::weighted(0.9, matching_or_any("[a-z]{1,8}(\\.[a-z]{1,8}){0,3}")),
        prop::option::of(json_value()),
        prop::option::of(prop_oneof![3 => headers, 1 => json_value()]),
        prop::option::of(duration_text().prop_map(Value::String)),
        prop::option::weighted(0.1, (json_key(), json_value())),
    )
        .prop_map(
            |(schedule, id, group, routing_key, payload, headers, expire_after, extra)| {
                let mut timer = Map::new();
                timer.insert("schedule".to_owned(), schedule);
                let fields = [
                    ("id", id),
                    ("group", group),
                    ("routing_key", routing_key),
                    ("payload", payload),
                    ("headers", headers),
                    ("expire_after", expire_after),
                ];
                for (name, value) in fields {
                    if let Some(value) = value {
                        timer.insert(name.to_owned(), value);
                    }
                }
                if let Some((name, value)) = extra {
                    timer.insert(name, value);
                }
                Value::Object(timer)
            },
        )
}

/// Whatever a schedule parser accepted must round-trip through its stored form and compute
/// fires without panicking; a preview strictly increases.
fn exercise(schedule: &Schedule) -> Result<(), TestCaseError> {
    let stored = Schedule::from_stored(&schedule.to_json());
    prop_assert_eq!(stored.as_ref(), Ok(schedule));

    let now = Timestamp::from_second(1_798_761_600).expect("2027-01-01 is an instant");
    bounded("computing fires", || {
        let first = schedule.first_fire(now);
        if let Some(first) = first {
            schedule.next_fire(first, 1, now);
            schedule.resume_fire(Some(first), now);
        }
        let fires = schedule.preview(now, 5);
        prop_assert!(fires.windows(2).all(|pair| pair[0] < pair[1]), "{fires:?}");
        Ok(())
    })?
}

proptest! {
    // A failing case prints its input; integration tests have no source file to save it in.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_string_read_as_a_duration_is_answered_without_panicking(text in any::<String>()) {
        bounded("a duration", || text.parse::<Millis>())?.ok();
    }

    #[test]
    fn near_miss_durations_are_answered_and_accepted_ones_are_in_range(
        text in near_miss_text()
    ) {
        if let Ok(duration) = bounded("a duration", || text.parse::<Millis>())? {
            prop_assert!(duration.as_millis() >= 0);
            prop_assert_eq!(duration.to_string().parse::<Millis>(), Ok(duration));
        }
    }

    #[test]
    fn any_json_read_as_a_duration_is_answered_without_panicking(value in json_value()) {
        bounded("a duration", || Millis::from_json(&value))?.ok();
    }

    #[test]
    fn any_json_read_as_a_schedule_is_answered_and_accepted_ones_compute(value in json_value()) {
        if let Ok(schedule) = bounded("a schedule", || Schedule::from_json(&value))? {
            exercise(&schedule)?;
        }
    }

    #[test]
    fn schedule_shaped_objects_are_answered_and_accepted_ones_compute(
        value in schedule_like()
    ) {
        match bounded("a schedule", || Schedule::from_json(&value))? {
            Ok(schedule) => exercise(&schedule)?,
            Err(errors) => prop_assert!(!errors.is_empty()),
        }
    }

    #[test]
    fn cron_patterns_are_answered_and_accepted_ones_compute(
        pattern in cron_text(),
        zone in select(vec!["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"]),
    ) {
        let value = serde_json::json!({"cron": pattern, "timezone": zone});
        if let Ok(schedule) = bounded("a cron schedule", || Schedule::from_json(&value))? {
            exercise(&schedule)?;
        }
    }

    #[test]
    fn any_json_read_as_a_timer_is_answered_with_a_reason_when_refused(value in json_value()) {
        let parsed = bounded("a timer", || NewTimer::from_json(&value, Limits::default()))?;
        if let Err(errors) = parsed {
            prop_assert!(!errors.is_empty());
        }
    }

    #[test]
    fn timer_shaped_objects_are_answered_with_a_reason_when_refused(value in timer_like()) {
        match bounded("a timer", || NewTimer::from_json(&value, Limits::default()))? {
            Ok(timer) => exercise(&timer.definition.schedule)?,
            Err(errors) => prop_assert!(!errors.is_empty()),
        }
    }
}

#[test]
fn json_nested_beyond_the_parsers_depth_limit_is_refused_not_overflowed() {
    // The api parses every body with serde_json, whose recursion limit (128) turns a deeply
    // nested document into an error instead of a stack overflow.
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    assert!(serde_json::from_str::<Value>(&deep).is_err());
    let deep_object = "{\"a\":".repeat(100_000) + "1" + &"}".repeat(100_000);
    assert!(serde_json::from_str::<Value>(&deep_object).is_err());
}
