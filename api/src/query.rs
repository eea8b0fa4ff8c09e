//! Query strings, read strictly: each route names the parameters it knows, and any other
//! parameter, or one given twice, is refused, so that a misspelt filter is a 400 rather
//! than an answer that silently ignores it. Every problem is reported at once.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use clockworks::validation::Errors;

use crate::problem::ApiError;

/// The decoded `name=value` pairs of a request's query string, in order.
pub struct QueryString(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryString {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|rejection| ApiError::invalid_field("(query)", rejection.body_text()))?;
        Ok(QueryString(pairs))
    }
}

impl QueryString {
    /// The parameters, checked against the names a route knows.
    pub fn params(self, known: &[&str]) -> Params {
        let mut errors = Errors::default();
        let mut values = BTreeMap::new();
        for (name, value) in self.0 {
            if !known.contains(&name.as_str()) {
                errors.add(
                    name,
                    format!("is not a parameter here; known: {}", known.join(", ")),
                );
                continue;
            }
            match values.entry(name) {
                Entry::Vacant(vacant) => {
                    vacant.insert(value);
                }
                Entry::Occupied(occupied) => errors.add(occupied.key(), "is given more than once"),
            }
        }
        Params { values, errors }
    }
}

/// Known parameters, read one by one; problems are collected until [`Params::finish`].
pub struct Params {
    values: BTreeMap<String, String>,
    errors: Errors,
}

impl Params {
    /// The parameter `name` read by `parse`, or `None` when absent or refused.
    pub fn parse<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.values.get(name)?;
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err(detail) => {
                self.errors.add(name, detail);
                None
            }
        }
    }

    /// The whole number `name`, from 1 to `max`, or `default` when absent.
    pub fn count(&mut self, name: &str, default: usize, max: usize) -> usize {
        self.parse(name, |text| match text.parse::<usize>() {
            Ok(count) if (1..=max).contains(&count) => Ok(count),
            _ => Err(format!("must be a whole number from 1 to {max}")),
        })
        .unwrap_or(default)
    }

    /// Fails with every problem found, if any.
    pub fn finish(self) -> Result<(), ApiError> {
        self.errors
            .into_result(())
            .map_err(ApiError::invalid_fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> QueryString {
        QueryString(
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        )
    }

    fn refused_fields(params: Params) -> Vec<String> {
        match params.finish() {
            Err(ApiError::Invalid { errors, .. }) => {
                errors.into_iter().map(|error| error.field).collect()
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn counts_default_and_are_bounded() {
        let mut params = query(&[("limit", "1000")]).params(&["limit", "count"]);
        assert_eq!(params.count("limit", 100, 1000), 1000);
        assert_eq!(params.count("count", 10, 1000), 10);
        assert!(params.finish().is_ok());

        for refused in ["0", "1001", "-1", "ten", ""] {
            let mut params = query(&[("limit", refused)]).params(&["limit"]);
            params.count("limit", 100, 1000);
            assert_eq!(refused_fields(params), ["limit"], "{refused:?}");
        }
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let params =
            query(&[("stat", "paused"), ("limit", "1"), ("limit", "2")]).params(&["limit"]);
        assert_eq!(refused_fields(params), ["stat", "limit"]);
    }
}
