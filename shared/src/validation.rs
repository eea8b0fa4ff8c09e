//! Field errors: what is wrong with a request, named by the path of the offending field
//! (`schedule.at`, `headers.trace-id`, `[3].routing_key`).

use serde::Serialize;

/// One reason a request was refused, tied to the field that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Dotted path of the field, as the client wrote it.
    pub field: String,
    /// What is wrong, in a sentence a client developer can act on.
    pub detail: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            detail: detail.into(),
        }
    }

    /// The same error reported under an enclosing field (`schedule` + `at` = `schedule.at`).
    pub fn within(mut self, parent: &str) -> Self {
        if !parent.is_empty() {
            self.field = if self.field.is_empty() {
                parent.to_owned()
            } else if self.field.starts_with('[') {
                format!("{parent}{}", self.field)
            } else {
                format!("{parent}.{}", self.field)
            };
        }
        self
    }
}

/// Collects every field error of a request so that a client sees all of them at once.
#[derive(Debug, Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn add(&mut self, field: impl Into<String>, detail: impl Into<String>) {
        self.0.push(FieldError::new(field, detail));
    }

    pub fn extend(&mut self, errors: impl IntoIterator<Item = FieldError>) {
        self.0.extend(errors);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    /// `Ok(value)` when nothing was recorded, otherwise every recorded error.
    pub fn into_result<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }
}
