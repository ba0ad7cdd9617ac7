//! Identifiers that appear in keys, messages and logs.

use std::fmt;

use serde::{Deserialize, Serialize};

const MAX_TENANT_ID_LEN: usize = 63;
const MAX_OPAQUE_ID_LEN: usize = 128;

/// A tenant (customer organisation) id: lowercase letters, digits and hyphens, starting with a
/// letter or digit, at most 63 characters, so it is safe inside a key and a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to {max} characters of {allowed}")]
pub struct InvalidId {
    max: usize,
    allowed: &'static str,
}

impl TenantId {
    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        let valid = !value.is_empty()
            && value.len() <= MAX_TENANT_ID_LEN
            && !value.starts_with('-')
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidId {
                max: MAX_TENANT_ID_LEN,
                allowed: "lowercase letters, digits and '-'",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidId;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

/// Checks an id chosen by a client (an install id, an event id): 1 to 128 characters of ASCII
/// letters, digits, `-`, `_`, `.` and `:`. Keys embed these ids, so `#` and whitespace are out.
pub fn validate_opaque_id(value: &str) -> Result<(), InvalidId> {
    let valid = !value.is_empty()
        && value.len() <= MAX_OPAQUE_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if valid {
        Ok(())
    } else {
        Err(InvalidId {
            max: MAX_OPAQUE_ID_LEN,
            allowed: "letters, digits, '-', '_', '.' and ':'",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_id_accepts_slug() {
        assert!(TenantId::parse("acme-corp-1").is_ok());
    }

    #[test]
    fn tenant_id_rejects_key_characters() {
        for bad in ["", "Acme", "a#b", "-a", "a b", &"a".repeat(64)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn opaque_id_rules() {
        assert!(validate_opaque_id("3f1c9a7e-0b7d-4c1e-9d0f-8a1b2c3d4e5f").is_ok());
        for bad in ["", "a#b", "a b", "é", &"x".repeat(129)] {
            assert!(validate_opaque_id(bad).is_err(), "{bad:?}");
        }
    }
}
