//! Configuration read once at cold start.
//!
//! In Lambda the values come from environment variables that the SAM template sets. The local
//! runner resolves the same variables from the same template and passes them through
//! [`Lookup`], so a function gets identical settings in both places.

/// A source of configuration values by name.
pub trait Lookup {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Lookup for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Lookup for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is missing or empty")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Returns the value of `name`, failing with a message that names the variable.
pub fn required(lookup: &dyn Lookup, name: &'static str) -> Result<String, ConfigError> {
    lookup
        .get(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

/// Returns the value of `name` parsed as `T`, or `default` when it is unset.
pub fn parsed_or<T: std::str::FromStr>(
    lookup: &dyn Lookup,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match lookup.get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            }),
    }
}
