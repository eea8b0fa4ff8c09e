//! Durations as the API accepts them: a friendly string (`1h30m`, `90s`, `250ms`, `1d`), an
//! ISO 8601 string (`PT90M`, `P1D`), or a JSON number of milliseconds (`5400000`).
//!
//! Every duration is a whole number of milliseconds between zero and [`MAX_DURATION`]
//! (100 years), kept exactly as an `i64`, so arithmetic on instants within the supported
//! calendar never overflows. A day (`d`, `P1D`) is always 24 hours and a week 7 days: a
//! duration is elapsed time, not a calendar step. Months and years are refused because
//! their length varies.

use std::fmt;

use jiff::fmt::friendly::{Designator, Spacing, SpanPrinter};
use jiff::{SignedDuration, Span, SpanRelativeTo};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest accepted duration: 100 years of 365.25 days.
pub const MAX_DURATION: SignedDuration = SignedDuration::from_secs(36_525 * 86_400);

/// [`MAX_DURATION`] in milliseconds.
const MAX_MILLIS: i64 = 36_525 * 86_400 * 1_000;

const TOO_LARGE: &str = "is too large: at most 100 years (876600h)";
const NEGATIVE: &str = "must not be negative";
const NOT_WHOLE_MILLIS: &str = "must be a whole number of milliseconds";

/// A non-negative duration with millisecond precision, at most [`MAX_DURATION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(i64);

impl Millis {
    /// The zero duration.
    pub const ZERO: Millis = Millis(0);

    /// One second.
    pub const SECOND: Millis = Millis(1_000);

    /// A duration of `ms` milliseconds, refused when negative or longer than 100 years.
    pub fn from_millis(ms: i64) -> Result<Self, String> {
        if ms < 0 {
            return Err(NEGATIVE.to_owned());
        }
        if ms > MAX_MILLIS {
            return Err(TOO_LARGE.to_owned());
        }
        Ok(Self(ms))
    }

    /// The length in milliseconds.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The same length as a jiff duration, for arithmetic on instants.
    pub const fn as_signed_duration(self) -> SignedDuration {
        SignedDuration::from_millis(self.0)
    }

    /// Reads a duration from a JSON value: a number of milliseconds or a duration string.
    ///
    /// A number must be whole (`5000` or `5e3`, not `1.5`); every whole number of
    /// milliseconds up to the 100-year limit is exact in a JSON double, so nothing is rounded.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::Number(number) => {
                if let Some(ms) = number.as_i64() {
                    Self::from_millis(ms)
                } else if number.as_u64().is_some() {
                    Err(TOO_LARGE.to_owned())
                } else {
                    Self::from_float_millis(number.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(text) => text.parse(),
            _ => Err(
                "must be a duration string such as \"1h30m\" or \"PT90M\", or milliseconds"
                    .to_owned(),
            ),
        }
    }

    fn from_float_millis(ms: f64) -> Result<Self, String> {
        if !ms.is_finite() || ms.fract() != 0.0 {
            return Err(NOT_WHOLE_MILLIS.to_owned());
        }
        if ms < 0.0 {
            return Err(NEGATIVE.to_owned());
        }
        if ms > MAX_MILLIS as f64 {
            return Err(TOO_LARGE.to_owned());
        }
        // Whole and below 2^53, so the conversion is exact.
        Self::from_millis(ms as i64)
    }

    fn from_signed_duration(duration: SignedDuration) -> Result<Self, String> {
        if duration.is_negative() {
            return Err(NEGATIVE.to_owned());
        }
        if duration > MAX_DURATION {
            return Err(TOO_LARGE.to_owned());
        }
        if duration.subsec_nanos() % 1_000_000 != 0 {
            return Err(NOT_WHOLE_MILLIS.to_owned());
        }
        Self::from_millis(duration.as_millis() as i64)
    }
}

impl std::str::FromStr for Millis {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err("must not be empty".to_owned());
        }

        // A span reads days and weeks; it refuses values too large for its units, which a
        // plain duration may still read, only to be refused below as too large.
        match text.parse::<Span>() {
            Ok(span) => {
                let duration = span
                    .to_duration(SpanRelativeTo::days_are_24_hours())
                    .map_err(|_| {
                        format!(
                            "{text:?} uses months or years, whose length varies: \
                             use weeks, days, hours, minutes, seconds or milliseconds"
                        )
                    })?;
                Self::from_signed_duration(duration)
            }
            Err(_) => match text.parse::<SignedDuration>() {
                Ok(duration) => Self::from_signed_duration(duration),
                Err(_) => Err(format!(
                    "{text:?} is not a duration such as \"1h30m\", \"250ms\", \"1d\" or \"PT90M\""
                )),
            },
        }
    }
}

impl fmt::Display for Millis {
    /// The compact friendly form, in hours at most: `1h30m`, `250ms`, `24h`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let printer = SpanPrinter::new()
            .designator(Designator::Compact)
            .spacing(Spacing::None);
        f.write_str(&printer.duration_to_string(&self.as_signed_duration()))
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Millis::from_json(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn friendly_iso_and_millisecond_forms_agree() {
        let friendly: Millis = "1h30m".parse().unwrap();
        let iso: Millis = "PT90M".parse().unwrap();
        let millis = Millis::from_json(&json!(5_400_000)).unwrap();
        assert_eq!(friendly, iso);
        assert_eq!(friendly, millis);
        assert_eq!(friendly.to_string(), "1h30m");
    }

    #[test]
    fn days_and_weeks_are_24_hours_and_7_days() {
        let day = 86_400_000;
        assert_eq!("1d".parse::<Millis>().unwrap().as_millis(), day);
        assert_eq!("P1D".parse::<Millis>().unwrap().as_millis(), day);
        assert_eq!(
            "P1DT1H".parse::<Millis>().unwrap().as_millis(),
            day + 3_600_000
        );
        assert_eq!("1w".parse::<Millis>().unwrap().as_millis(), 7 * day);
        assert_eq!("1d".parse::<Millis>().unwrap().to_string(), "24h");
    }

    #[test]
    fn months_and_years_are_refused_because_their_length_varies() {
        for text in ["1mo", "P1M", "1y", "P1Y"] {
            let error = text.parse::<Millis>().unwrap_err();
            assert!(error.contains("months or years"), "{text}: {error}");
        }
    }

    #[test]
    fn large_millisecond_counts_stay_exact() {
        for ms in [2_147_483_648_i64, 4_294_967_296, MAX_MILLIS] {
            assert_eq!(Millis::from_json(&json!(ms)).unwrap().as_millis(), ms);
        }
        assert_eq!(Millis::from_json(&json!(5e3)).unwrap().as_millis(), 5_000);
    }

    #[test]
    fn the_hundred_year_horizon_is_inclusive_in_every_form() {
        assert_eq!(
            Millis::from_millis(MAX_MILLIS)
                .unwrap()
                .as_signed_duration(),
            MAX_DURATION
        );
        assert!(Millis::from_millis(MAX_MILLIS + 1).is_err());
        assert!("876600h".parse::<Millis>().is_ok());
        assert!("876600h1ms".parse::<Millis>().is_err());
        assert!("36525d".parse::<Millis>().is_ok());
        assert!("36526d".parse::<Millis>().is_err());
        assert!(Millis::from_json(&json!(MAX_MILLIS as f64 + 1.0)).is_err());
    }

    #[test]
    fn negative_non_numeric_fractional_and_overflowing_values_are_refused() {
        for value in [
            json!(-1),
            json!(-1.0),
            json!("NaN"),
            json!("inf"),
            json!(1e20),
            json!(u64::MAX),
            json!(1.5),
            json!("-5s"),
            json!("0.0001s"),
            json!("100000000000h"),
            json!("5"),
            json!(""),
            json!("   "),
            json!(null),
            json!(true),
            json!([1]),
        ] {
            assert!(Millis::from_json(&value).is_err(), "{value} was accepted");
        }
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        assert_eq!(Millis::from_json(&json!(-1)).unwrap_err(), NEGATIVE);
        assert_eq!(Millis::from_json(&json!(1e20)).unwrap_err(), TOO_LARGE);
        assert_eq!(
            Millis::from_json(&json!("100000000000h")).unwrap_err(),
            TOO_LARGE
        );
        assert_eq!(
            Millis::from_json(&json!(1.5)).unwrap_err(),
            NOT_WHOLE_MILLIS
        );
        assert_eq!(
            Millis::from_json(&json!("1.0005s")).unwrap_err(),
            NOT_WHOLE_MILLIS
        );
    }

    proptest! {
        #[test]
        fn every_duration_prints_as_a_string_that_reads_back_the_same(
            ms in 0..=MAX_MILLIS
        ) {
            let duration = Millis::from_millis(ms).unwrap();
            let printed = duration.to_string();
            prop_assert_eq!(printed.parse::<Millis>().unwrap(), duration);
            prop_assert_eq!(Millis::from_json(&json!(printed)).unwrap(), duration);
            prop_assert_eq!(serde_json::from_value::<Millis>(json!(ms)).unwrap(), duration);
        }
    }
}
