//! Validation errors: which field was wrong and why, in words a client can show to a user.

use std::fmt;

/// A rejected value: the field it belongs to and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The field name as clients spell it (`track_index`, `end`, ...).
    pub field: &'static str,
    /// Why the value was rejected.
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ValidationError {}

pub type ValidationResult<T> = Result<T, ValidationError>;

/// Checks a free-text name: trimmed, non-empty, at most `max` characters.
pub fn validate_name(field: &'static str, value: &str, max: usize) -> ValidationResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(ValidationError::new(field, format!("must be at most {max} characters")));
    }
    Ok(trimmed.to_owned())
}

/// Checks that a float is finite and inside `[min, max]`.
pub fn validate_range(field: &'static str, value: f64, min: f64, max: f64) -> ValidationResult<f64> {
    if !value.is_finite() || value < min || value > max {
        return Err(ValidationError::new(field, format!("must be between {min} and {max}, got {value}")));
    }
    Ok(value)
}
