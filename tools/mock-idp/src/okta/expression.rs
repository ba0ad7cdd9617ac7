//! Okta's `filter` and `search` expressions for `/api/v1/users`, in the forms a sync uses:
//! `status eq "ACTIVE"`, `lastUpdated gt "2026-01-01T00:00:00.000Z"` (also `ge`, `lt`, `le`,
//! `eq`), `id eq "…"`, `profile.login eq "…"` and `profile.email eq "…"`, joined by `and`.
//!
//! NOTE: `or`, parentheses and other properties are rejected as invalid, though Okta accepts
//! them.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

use super::{last_updated, status};
use crate::directory::User;

enum Condition {
    Equals(Property, String),
    LastUpdated(Vec<Ordering>, DateTime<Utc>),
}

#[derive(Clone, Copy)]
enum Property {
    Status,
    Id,
    Login,
    Email,
}

/// A conjunction of conditions on a user.
pub struct Expression(Vec<Condition>);

impl Expression {
    /// Parses an expression, or returns `None` for one the mock does not support.
    pub fn parse(text: &str) -> Option<Self> {
        let mut conditions = Vec::new();
        let mut rest = text.trim();
        loop {
            let (attribute, after) = rest.split_once(' ')?;
            let (operator, after) = after.trim_start().split_once(' ')?;
            let (value, after) = quoted(after.trim_start())?;
            conditions.push(condition(attribute, operator, value)?);
            let after = after.trim_start();
            if after.is_empty() {
                return Some(Self(conditions));
            }
            rest = after.strip_prefix("and ")?.trim_start();
        }
    }

    pub fn matches(&self, user: &User) -> bool {
        self.0.iter().all(|condition| match condition {
            Condition::Equals(property, value) => {
                let actual = match property {
                    Property::Status => status(user),
                    Property::Id => &user.id,
                    Property::Login | Property::Email => &user.email,
                };
                actual == value
            }
            Condition::LastUpdated(accepted, bound) => {
                DateTime::parse_from_rfc3339(last_updated(user))
                    .is_ok_and(|time| accepted.contains(&time.with_timezone(&Utc).cmp(bound)))
            }
        })
    }
}

/// Splits a leading double-quoted string (`\"` escapes a quote) from the rest.
fn quoted(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?.1),
            '"' => return Some((value, &body[index + 1..])),
            c => value.push(c),
        }
    }
    None
}

fn condition(attribute: &str, operator: &str, value: String) -> Option<Condition> {
    if attribute == "lastUpdated" {
        let accepted = match operator {
            "eq" => vec![Ordering::Equal],
            "gt" => vec![Ordering::Greater],
            "ge" => vec![Ordering::Greater, Ordering::Equal],
            "lt" => vec![Ordering::Less],
            "le" => vec![Ordering::Less, Ordering::Equal],
            _ => return None,
        };
        let bound = DateTime::parse_from_rfc3339(&value)
            .ok()?
            .with_timezone(&Utc);
        return Some(Condition::LastUpdated(accepted, bound));
    }
    let property = match attribute {
        "status" => Property::Status,
        "id" => Property::Id,
        "profile.login" => Property::Login,
        "profile.email" => Property::Email,
        _ => return None,
    };
    (operator == "eq").then_some(Condition::Equals(property, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Directory;

    fn user(last_updated: &str) -> User {
        let mut user = Directory::generate("initech.example", 1, 3).users.remove(0);
        user.last_updated = Some(last_updated.to_owned());
        user
    }

    #[test]
    fn expression_compares_last_updated() {
        let recent = user("2027-02-01T10:00:00.000Z");
        let old = user("2025-02-01T10:00:00.000Z");
        let after = Expression::parse(r#"lastUpdated gt "2026-01-01T00:00:00.000Z""#).unwrap();
        assert!(after.matches(&recent));
        assert!(!after.matches(&old));
        let both =
            Expression::parse(r#"status eq "ACTIVE" and lastUpdated lt "2026-01-01T00:00:00Z""#)
                .unwrap();
        assert!(both.matches(&old));
        assert!(!both.matches(&recent));
    }

    #[test]
    fn expression_rejects_unsupported_forms() {
        for text in [
            r#"status eq "ACTIVE" or status eq "SUSPENDED""#,
            r#"(status eq "ACTIVE")"#,
            r#"lastUpdated gt "yesterday""#,
            r#"status gt "ACTIVE""#,
            r#"status eq ACTIVE"#,
            r#"status eq "ACTIVE"#,
            "",
        ] {
            assert!(Expression::parse(text).is_none(), "{text} is rejected");
        }
    }
}
