//! Error bodies for HTTP APIs: `application/problem+json` (RFC 9457).

use serde::Serialize;
use serde_json::Value;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// A problem details document. `detail` is written for the client and never carries internal
/// error text; extension members (such as a list of rejected events) go in `extensions`.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(flatten)]
    pub extensions: serde_json::Map<String, Value>,
}

impl Problem {
    pub fn new(status: u16, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            problem_type: "about:blank",
            title,
            status,
            detail: detail.into(),
            instance: None,
            extensions: serde_json::Map::new(),
        }
    }

    /// Adds an extension member.
    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                "{{\"title\":\"{}\",\"status\":{}}}",
                self.title, self.status
            )
        })
    }
}
