//! Durations as the API accepts them: a friendly string (`1h30m`, `90s`, `250ms`), an
//! ISO 8601 string (`PT90M`), or a JSON integer of milliseconds. Every duration is a whole
//! number of milliseconds between zero and [`MAX_DURATION`], so arithmetic on instants
//! within the supported calendar never overflows.

use std::fmt;

use jiff::SignedDuration;
use jiff::fmt::friendly::{Designator, Spacing, SpanPrinter};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest accepted duration: 100 years of 365.25 days.
pub const MAX_DURATION: SignedDuration = SignedDuration::from_secs(36_525 * 86_400);

/// A non-negative duration with millisecond precision, at most [`MAX_DURATION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(i64);

impl Millis {
    pub fn from_millis(ms: i64) -> Result<Self, String> {
        if ms < 0 {
            return Err("must not be negative".to_owned());
        }
        if ms > MAX_DURATION.as_millis() as i64 {
            return Err(format!("must be at most {} (100 years)", Millis(MAX_DURATION.as_millis() as i64)));
        }
        Ok(Self(ms))
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn as_signed_duration(self) -> SignedDuration {
        SignedDuration::from_millis(self.0)
    }

    /// Reads a duration from a JSON value: an integer of milliseconds or a duration string.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::Number(number) => {
                if let Some(ms) = number.as_i64() {
                    Self::from_millis(ms)
                } else if number.as_u64().is_some() {
                    Err("is too large: at most 100 years".to_owned())
                } else {
                    match number.as_f64() {
                        Some(ms) if ms.fract() == 0.0 && ms < 0.0 => {
                            Err("must not be negative".to_owned())
                        }
                        Some(ms) if ms.fract() == 0.0 => {
                            Err("is too large: at most 100 years".to_owned())
                        }
                        _ => Err("must be a whole number of milliseconds".to_owned()),
                    }
                }
            }
            serde_json::Value::String(text) => text.parse(),
            _ => Err(
                "must be a duration string such as \"1h30m\" or \"PT90M\", or milliseconds"
                    .to_owned(),
            ),
        }
    }
}

impl std::str::FromStr for Millis {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err("must not be empty".to_owned());
        }
        let duration: SignedDuration = text.parse().map_err(|_| {
            format!("{text:?} is not a duration such as \"1h30m\", \"250ms\" or \"PT90M\"")
        })?;
        if duration.is_negative() {
            return Err("must not be negative".to_owned());
        }
        if duration > MAX_DURATION {
            return Err("is too large: at most 100 years".to_owned());
        }
        if duration.subsec_nanos() % 1_000_000 != 0 {
            return Err("must be a whole number of milliseconds".to_owned());
        }
        Self::from_millis(duration.as_millis() as i64)
    }
}

impl fmt::Display for Millis {
    /// The compact friendly form: `1h30m`, `250ms`, `0s`.
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
    fn large_millisecond_counts_stay_exact() {
        for ms in [2_147_483_648_i64, 4_294_967_296] {
            assert_eq!(Millis::from_json(&json!(ms)).unwrap().as_millis(), ms);
        }
    }

    #[test]
    fn negative_non_numeric_and_overflowing_values_are_refused() {
        assert!(Millis::from_json(&json!(-1)).is_err());
        assert!(Millis::from_json(&json!("NaN")).is_err());
        assert!(Millis::from_json(&json!(1e20)).is_err());
        assert!(Millis::from_json(&json!(1.5)).is_err());
        assert!(Millis::from_json(&json!("-5s")).is_err());
        assert!(Millis::from_json(&json!("")).is_err());
        assert!(Millis::from_json(&json!(null)).is_err());
    }
}
