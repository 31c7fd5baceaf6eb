//! Configuration from environment variables, read once at cold start.
//!
//! Each service declares a typed struct and builds it with [`required`] and
//! [`optional`]; a missing variable fails the cold start with a message naming it,
//! instead of failing some later request.

use std::env;

/// Why a configuration value could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable the function needs is not set (or is empty).
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// A variable is set but its value cannot be used.
    #[error("environment variable {name} has an invalid value: {reason}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads a variable that must be set and non-empty.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// Reads a variable that may be absent; an empty value counts as absent.
pub fn optional(name: &'static str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The name this function runs under: Lambda's `AWS_LAMBDA_FUNCTION_NAME`, which
/// cargo lambda watch sets to the binary name locally. Read once per cold start; every
/// invocation's span and metrics line carries it.
pub fn function_name() -> &'static str {
    static NAME: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        optional("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "unknown".to_owned())
    });
    &NAME
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_variable_is_named_in_the_error() {
        let err = required("COMMERCE_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable COMMERCE_TEST_SURELY_UNSET_VARIABLE is not set"
        );
    }
}
