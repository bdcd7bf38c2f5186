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

/// Checks a free-text name: trimmed, non-empty, at most `max` characters, no control
/// characters (a name is one line of text, shown in lists and written into logs).
pub fn validate_name(field: &'static str, value: &str, max: usize) -> ValidationResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::new(field, "must not contain control characters"));
    }
    if trimmed.chars().count() > max {
        return Err(ValidationError::new(field, format!("must be at most {max} characters")));
    }
    Ok(trimmed.to_owned())
}

/// Checks free text of several lines: no control characters but line breaks and tabs.
pub fn validate_text(field: &'static str, value: &str) -> ValidationResult<()> {
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(ValidationError::new(field, "must not contain control characters other than line breaks and tabs"));
    }
    Ok(())
}

/// Checks that a float is finite and inside `[min, max]`.
pub fn validate_range(field: &'static str, value: f64, min: f64, max: f64) -> ValidationResult<f64> {
    if !value.is_finite() || value < min || value > max {
        return Err(ValidationError::new(field, format!("must be between {min} and {max}, got {value}")));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_refuse_control_characters_and_text_keeps_line_breaks() {
        assert!(super::validate_name("name", "\u{0}", 10).is_err());
        assert!(super::validate_name("name", "a\u{1b}[31mb", 10).is_err());
        assert!(super::validate_name("name", "a\nb", 10).is_err());
        assert_eq!(super::validate_name("name", "  Take 1 ", 10).unwrap(), "Take 1");
        assert!(super::validate_text("description", "verse\n\tchorus").is_ok());
        assert!(super::validate_text("description", "bell\u{7}").is_err());
    }
}
