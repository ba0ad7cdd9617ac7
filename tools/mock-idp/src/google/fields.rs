//! Google's partial-response `fields` parameter, such as
//! `nextPageToken,users(id,primaryEmail,name/fullName)`. Only the selected fields are returned,
//! so a mask that leaves out `nextPageToken` also hides the next page.
//!
//! NOTE: Google rejects a mask that names a field its schema lacks. The mock has no schema, so
//! it returns nothing for such a field instead.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The deepest mask the mock accepts, counted in field names from the top. Parsing, merging and
/// dropping a mask recurse once per level, so an unbounded depth from a request could overflow
/// the stack and abort the server.
const MAX_DEPTH: usize = 32;

/// A parsed field mask: each selected field, with the mask for its sub-fields or `None` for
/// the whole value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMask(BTreeMap<String, Option<FieldMask>>);

impl FieldMask {
    /// Parses a mask, or returns Google's error message for an invalid one.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut parser = Parser {
            text: spec.as_bytes(),
            position: 0,
            depth: 0,
        };
        let mask = parser.list().ok_or_else(|| invalid(spec))?;
        if parser.position != parser.text.len() {
            return Err(invalid(spec));
        }
        Ok(mask)
    }

    /// Returns the parts of `value` the mask selects. A mask applies to each element of an
    /// array, and `*` selects every field of an object.
    pub fn apply(&self, value: &Value) -> Value {
        match value {
            Value::Array(items) => Value::Array(items.iter().map(|v| self.apply(v)).collect()),
            Value::Object(object) => {
                let mut selected = Map::new();
                for (name, sub_mask) in &self.0 {
                    let fields: Vec<(&String, &Value)> = if name == "*" {
                        object.iter().collect()
                    } else {
                        object.get_key_value(name).into_iter().collect()
                    };
                    for (key, field) in fields {
                        let field = match sub_mask {
                            Some(mask) => mask.apply(field),
                            None => field.clone(),
                        };
                        selected.insert(key.clone(), field);
                    }
                }
                Value::Object(selected)
            }
            scalar => scalar.clone(),
        }
    }

    /// Adds `path` with the mask below its last name, merging with what is already selected.
    fn insert(&mut self, path: &[String], leaf: Option<FieldMask>) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let child = if rest.is_empty() {
            leaf
        } else {
            let mut nested = FieldMask::default();
            nested.insert(rest, leaf);
            Some(nested)
        };
        match (self.0.get_mut(first), child) {
            // The whole value is already selected, or now is.
            (Some(existing @ Some(_)), None) => *existing = None,
            (Some(None), _) => {}
            (Some(Some(existing)), Some(child)) => {
                for (name, sub) in child.0 {
                    existing.insert(std::slice::from_ref(&name), sub);
                }
            }
            (None, child) => {
                self.0.insert(first.clone(), child);
            }
        }
    }
}

fn invalid(spec: &str) -> String {
    format!("Invalid field selection {spec}")
}

/// A recursive-descent parser for `list := item (',' item)*`,
/// `item := name ('/' name)* ['(' list ')']`.
struct Parser<'a> {
    text: &'a [u8],
    position: usize,
    /// The number of field names above the list being parsed.
    depth: usize,
}

impl Parser<'_> {
    fn list(&mut self) -> Option<FieldMask> {
        let mut mask = FieldMask::default();
        loop {
            let mut path = vec![self.name()?];
            while self.eat(b'/') {
                path.push(self.name()?);
            }
            if self.depth + path.len() > MAX_DEPTH {
                return None;
            }
            let sub_mask = if self.eat(b'(') {
                self.depth += path.len();
                let inner = self.list()?;
                self.depth -= path.len();
                if !self.eat(b')') {
                    return None;
                }
                Some(inner)
            } else {
                None
            };
            mask.insert(&path, sub_mask);
            if !self.eat(b',') {
                return Some(mask);
            }
        }
    }

    fn name(&mut self) -> Option<String> {
        while self.eat(b' ') {}
        let start = self.position;
        while self.text.get(self.position).is_some_and(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'*' | b'$' | b'#' | b'@' | b'-')
        }) {
            self.position += 1;
        }
        let name = std::str::from_utf8(&self.text[start..self.position]).ok()?;
        while self.eat(b' ') {}
        (!name.is_empty()).then(|| name.to_owned())
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.text.get(self.position) == Some(&byte) {
            self.position += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn apply(spec: &str, value: &Value) -> Value {
        FieldMask::parse(spec).expect("valid mask").apply(value)
    }

    #[test]
    fn mask_selects_nested_fields() {
        let body = json!({
            "kind": "admin#directory#users",
            "nextPageToken": "t",
            "users": [
                {"id": "1", "suspended": true, "name": {"fullName": "A B", "givenName": "A"}},
                {"id": "2", "suspended": false, "name": {"fullName": "C D", "givenName": "C"}},
            ],
        });
        assert_eq!(
            apply("users(id,name/fullName)", &body),
            json!({"users": [
                {"id": "1", "name": {"fullName": "A B"}},
                {"id": "2", "name": {"fullName": "C D"}},
            ]})
        );
        assert_eq!(
            apply("nextPageToken,users/id", &body),
            json!({"nextPageToken": "t", "users": [{"id": "1"}, {"id": "2"}]})
        );
        assert_eq!(apply("kind,users(*)", &body)["users"], body["users"]);
    }

    #[test]
    fn mask_merges_repeated_paths() {
        let body = json!({"a": {"b": 1, "c": 2, "d": 3}});
        assert_eq!(apply("a/b,a/c", &body), json!({"a": {"b": 1, "c": 2}}));
        assert_eq!(apply("a/b,a", &body), body);
    }

    #[test]
    fn mask_rejects_bad_syntax() {
        for spec in ["", "users(", "users(id", "a,,b", "a/", "users(id))", "a b"] {
            assert!(FieldMask::parse(spec).is_err(), "{spec:?} is invalid");
        }
    }

    #[test]
    fn mask_depth_is_bounded() {
        let nested = |depth: usize| "a(".repeat(depth - 1) + "a" + &")".repeat(depth - 1);
        let path = |depth: usize| vec!["a"; depth].join("/");
        assert!(FieldMask::parse(&nested(MAX_DEPTH)).is_ok());
        assert!(FieldMask::parse(&path(MAX_DEPTH)).is_ok());
        assert!(FieldMask::parse(&format!("a/a({})", path(MAX_DEPTH - 2))).is_ok());
        assert!(FieldMask::parse(&nested(MAX_DEPTH + 1)).is_err());
        assert!(FieldMask::parse(&path(MAX_DEPTH + 1)).is_err());
        assert!(FieldMask::parse(&format!("a/a({})", path(MAX_DEPTH - 1))).is_err());
        assert!(FieldMask::parse(&nested(20_000)).is_err());
        assert!(FieldMask::parse(&path(20_000)).is_err());
    }
}
