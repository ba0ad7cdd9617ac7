//! The telemetry payload a browser extension posts to `POST /v1/telemetry`, and its validation.
//!
//! The envelope (profile and identity) is checked as a whole: one bad field rejects the request.
//! Events are checked one by one, so one bad event never costs the extension its valid ones.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::email::{AddressError, Email, canonical_domain, canonical_email};
use crate::ids::validate_opaque_id;

/// Largest accepted request body, after any base64 decoding.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Most events accepted in one request.
pub const MAX_EVENTS: usize = 100;
/// How far an event time may lie ahead of the server clock (browser clocks drift).
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);
/// Oldest event accepted: an extension that was offline keeps its queue this long at most.
pub const MAX_EVENT_AGE: Duration = Duration::days(30);
const MAX_TEXT_LEN: usize = 200;

/// The current payload schema version.
pub const SCHEMA_VERSION: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentitySource {
    Gmail,
    Outlook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Login,
    Signup,
    Heartbeat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethod {
    Password,
    SsoSaml,
    OidcGoogle,
    OidcMicrosoft,
    Passkey,
    Other,
}

impl LoginMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::SsoSaml => "sso_saml",
            Self::OidcGoogle => "oidc_google",
            Self::OidcMicrosoft => "oidc_microsoft",
            Self::Passkey => "passkey",
            Self::Other => "other",
        }
    }
}

/// The signed-in work identity the extension found in an open mail tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub email: Email,
    pub source: IdentitySource,
}

/// The browser profile that sent a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub install_id: String,
    pub browser: String,
    pub browser_version: String,
    pub extension_version: String,
    /// True when the browser reports that the extension was installed by managed policy.
    pub managed: bool,
    pub identity: Option<Identity>,
}

/// A SaaS application, identified by its canonical host name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub domain: String,
    pub name: String,
}

/// One validated event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub time: DateTime<Utc>,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Present for logins and sign-ups.
    pub app: Option<App>,
    pub account_email: Option<Email>,
    pub login_method: Option<LoginMethod>,
    /// The identity provider that completed an SSO or OIDC login, such as `okta` or `google`.
    pub identity_provider: Option<String>,
}

/// A rejected event, reported back to the extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventError {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub field: String,
    pub reason: String,
}

/// A request-level validation failure that names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The reason a body was rejected as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("request has {count} events; the maximum is {MAX_EVENTS}")]
    TooManyEvents { count: usize },
}

/// A parsed request: the profile, the valid events and the rejected ones.
#[derive(Debug)]
pub struct ParsedBatch {
    pub profile: Profile,
    pub events: Vec<Event>,
    pub rejected: Vec<EventError>,
    /// Events dropped because an earlier event in the same request had the same id.
    pub duplicates: usize,
}

/// Parses and validates a telemetry body received at `now`.
pub fn parse_batch(body: &[u8], now: DateTime<Utc>) -> Result<ParsedBatch, PayloadError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| PayloadError::Json(e.to_string()))?;
    let object = value
        .as_object()
        .ok_or_else(|| FieldError::new("(body)", "must be a JSON object"))?;

    let version = object
        .get("schema_version")
        .and_then(Value::as_u64)
        .ok_or_else(|| FieldError::new("schema_version", "is required and must be an integer"))?;
    if version != SCHEMA_VERSION {
        return Err(FieldError::new(
            "schema_version",
            format!("{version} is not supported; use {SCHEMA_VERSION}"),
        )
        .into());
    }
    let profile = parse_profile(object)?;

    let events = object
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| FieldError::new("events", "is required and must be an array"))?;
    if events.is_empty() {
        return Err(FieldError::new("events", "must contain at least one event").into());
    }
    if events.len() > MAX_EVENTS {
        return Err(PayloadError::TooManyEvents {
            count: events.len(),
        });
    }

    let mut parsed = ParsedBatch {
        profile,
        events: Vec::new(),
        rejected: Vec::new(),
        duplicates: 0,
    };
    let mut seen_ids = std::collections::HashSet::new();
    for (index, raw) in events.iter().enumerate() {
        match parse_event(raw, now) {
            Ok(event) if !seen_ids.insert(event.id.clone()) => parsed.duplicates += 1,
            Ok(event) => parsed.events.push(event),
            Err(error) => parsed.rejected.push(EventError {
                index,
                event_id: raw
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .filter(|id| validate_opaque_id(id).is_ok()),
                field: error.field,
                reason: error.reason,
            }),
        }
    }
    Ok(parsed)
}

fn parse_profile(object: &Map<String, Value>) -> Result<Profile, FieldError> {
    let install_id = required_str(object, "install_id", "install_id")?;
    validate_opaque_id(install_id).map_err(|e| FieldError::new("install_id", e.to_string()))?;

    let browser = object
        .get("browser")
        .and_then(Value::as_object)
        .ok_or_else(|| FieldError::new("browser", "is required and must be an object"))?;
    let browser_name = bounded_text(
        required_str(browser, "name", "browser.name")?,
        "browser.name",
    )?;
    let browser_version = bounded_text(
        required_str(browser, "version", "browser.version")?,
        "browser.version",
    )?;
    let extension_version = bounded_text(
        required_str(object, "extension_version", "extension_version")?,
        "extension_version",
    )?;
    let managed = object
        .get("managed")
        .and_then(Value::as_bool)
        .ok_or_else(|| FieldError::new("managed", "is required and must be true or false"))?;

    let identity = match object.get("identity") {
        None | Some(Value::Null) => None,
        Some(Value::Object(identity)) => {
            let email = required_str(identity, "email", "identity.email")?;
            let email = canonical_email(email)
                .map_err(|e| FieldError::new("identity.email", e.to_string()))?;
            let source = required_str(identity, "source", "identity.source")?;
            let source =
                serde_json::from_value(Value::String(source.to_owned())).map_err(|_| {
                    FieldError::new("identity.source", "must be \"gmail\" or \"outlook\"")
                })?;
            Some(Identity { email, source })
        }
        Some(_) => return Err(FieldError::new("identity", "must be an object or null")),
    };

    Ok(Profile {
        install_id: install_id.to_owned(),
        browser: browser_name.to_lowercase(),
        browser_version: browser_version.to_owned(),
        extension_version: extension_version.to_owned(),
        managed,
        identity,
    })
}

fn parse_event(raw: &Value, now: DateTime<Utc>) -> Result<Event, FieldError> {
    let object = raw
        .as_object()
        .ok_or_else(|| FieldError::new("(event)", "must be a JSON object"))?;

    let id = required_str(object, "id", "id")?;
    validate_opaque_id(id).map_err(|e| FieldError::new("id", e.to_string()))?;
    let time = parse_time(required_str(object, "time", "time")?, now)?;
    let event_type: EventType = serde_json::from_value(
        object.get("type").cloned().unwrap_or(Value::Null),
    )
    .map_err(|_| FieldError::new("type", "must be \"login\", \"signup\" or \"heartbeat\""))?;

    let mut event = Event {
        id: id.to_owned(),
        time,
        event_type,
        app: None,
        account_email: None,
        login_method: None,
        identity_provider: None,
    };
    if event_type == EventType::Heartbeat {
        for field in ["app", "account_email", "login_method", "identity_provider"] {
            if object.get(field).is_some_and(|v| !v.is_null()) {
                return Err(FieldError::new(field, "is not allowed on a heartbeat"));
            }
        }
        return Ok(event);
    }

    event.app = Some(parse_app(object)?);
    event.login_method = Some(
        serde_json::from_value(object.get("login_method").cloned().unwrap_or(Value::Null)).map_err(|_| {
            FieldError::new("login_method", "must be one of password, sso_saml, oidc_google, oidc_microsoft, passkey, other")
        })?,
    );
    event.account_email = match object.get("account_email") {
        None | Some(Value::Null) => None,
        Some(Value::String(email)) => Some(
            canonical_email(email)
                .map_err(|e: AddressError| FieldError::new("account_email", e.to_string()))?,
        ),
        Some(_) => return Err(FieldError::new("account_email", "must be a string or null")),
    };
    event.identity_provider = match object.get("identity_provider") {
        None | Some(Value::Null) => None,
        Some(Value::String(provider)) => Some(parse_identity_provider(provider)?),
        Some(_) => {
            return Err(FieldError::new(
                "identity_provider",
                "must be a string or null",
            ));
        }
    };
    Ok(event)
}

fn parse_app(object: &Map<String, Value>) -> Result<App, FieldError> {
    let app = object
        .get("app")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            FieldError::new(
                "app",
                "is required for logins and sign-ups and must be an object",
            )
        })?;
    let domain = required_str(app, "domain", "app.domain")?;
    let domain =
        canonical_domain(domain).map_err(|e| FieldError::new("app.domain", e.to_string()))?;
    let name = match app.get("name") {
        None | Some(Value::Null) => domain.clone(),
        Some(Value::String(name)) if !name.trim().is_empty() => {
            bounded_text(name.trim(), "app.name")?.to_owned()
        }
        Some(_) => {
            return Err(FieldError::new(
                "app.name",
                "must be a non-empty string or null",
            ));
        }
    };
    Ok(App { domain, name })
}

fn parse_identity_provider(provider: &str) -> Result<String, FieldError> {
    let provider = provider.trim().to_lowercase();
    let valid = !provider.is_empty()
        && provider.len() <= 100
        && provider
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(provider)
    } else {
        Err(FieldError::new(
            "identity_provider",
            "must be 1 to 100 characters of letters, digits, '-', '_' and '.'",
        ))
    }
}

fn parse_time(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, FieldError> {
    let time = DateTime::parse_from_rfc3339(value)
        .map_err(|_| {
            FieldError::new(
                "time",
                "must be an RFC 3339 timestamp such as 2026-01-31T09:30:00Z",
            )
        })?
        .with_timezone(&Utc);
    if time > now + MAX_CLOCK_SKEW {
        return Err(FieldError::new(
            "time",
            "is more than 5 minutes in the future",
        ));
    }
    if time < now - MAX_EVENT_AGE {
        return Err(FieldError::new("time", "is more than 30 days in the past"));
    }
    Ok(time)
}

fn required_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<&'a str, FieldError> {
    object
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new(field, "is required and must be a string"))
}

fn bounded_text<'a>(value: &'a str, field: &str) -> Result<&'a str, FieldError> {
    if value.is_empty()
        || value.chars().count() > MAX_TEXT_LEN
        || value.chars().any(char::is_control)
    {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {MAX_TEXT_LEN} characters without control characters"),
        ));
    }
    Ok(value)
}

/// Formats a time the way items store it: RFC 3339, UTC, milliseconds, so that string order is
/// time order in DynamoDB conditions.
pub fn storage_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn body(events: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "schema_version": 1,
            "install_id": "inst-1",
            "browser": {"name": "Chrome", "version": "131.0.6778.86"},
            "extension_version": "1.0.0",
            "managed": true,
            "identity": {"email": "Ada@Example.com", "source": "gmail"},
            "events": events,
        }))
        .unwrap()
    }

    fn login(id: &str) -> Value {
        json!({"id": id, "time": "2026-03-02T09:59:00Z", "type": "login",
               "app": {"domain": "App.Example.", "name": "Example App"},
               "account_email": "ada@example.com", "login_method": "sso_saml", "identity_provider": "Okta"})
    }

    #[test]
    fn valid_batch_parses() {
        let parsed = parse_batch(&body(json!([login("e1")])), now()).unwrap();
        assert_eq!(
            parsed.profile.identity.as_ref().unwrap().email.as_str(),
            "ada@example.com"
        );
        assert_eq!(parsed.profile.browser, "chrome");
        let event = &parsed.events[0];
        assert_eq!(event.app.as_ref().unwrap().domain, "app.example");
        assert_eq!(event.identity_provider.as_deref(), Some("okta"));
        assert!(parsed.rejected.is_empty());
    }

    #[test]
    fn invalid_events_listed_with_index() {
        let events = json!([
            login("e1"),
            {"id": "e2", "time": "yesterday", "type": "login"},
            {"id": "e3", "time": "2026-03-02T09:59:00Z", "type": "heartbeat", "app": {"domain": "x.example"}},
            {"id": "e4", "time": "2026-03-02T10:30:00Z", "type": "heartbeat"},
            {"id": "e5", "time": "2026-03-02T09:00:00Z", "type": "login", "app": {"domain": "x.example"}, "login_method": "telepathy"},
            {"id": "e6", "time": "2026-03-02T09:00:00Z", "type": "signup", "app": {"domain": "x.example"}, "login_method": "password", "account_email": "x@@example.com"},
            "not an object",
            {"id": "bad id#", "time": "2026-03-02T09:00:00Z", "type": "heartbeat"},
        ]);
        let parsed = parse_batch(&body(events), now()).unwrap();
        assert_eq!(parsed.events.len(), 1);
        let fields: Vec<(usize, &str)> = parsed
            .rejected
            .iter()
            .map(|e| (e.index, e.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![
                (1, "time"),
                (2, "app"),
                (3, "time"),
                (4, "login_method"),
                (5, "account_email"),
                (6, "(event)"),
                (7, "id")
            ]
        );
        assert_eq!(parsed.rejected[0].event_id.as_deref(), Some("e2"));
        assert_eq!(parsed.rejected[6].event_id, None);
    }

    #[test]
    fn duplicate_ids_in_request_counted() {
        let parsed = parse_batch(&body(json!([login("e1"), login("e1")])), now()).unwrap();
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.duplicates, 1);
    }

    #[test]
    fn envelope_errors_name_field() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"schema_version": 2}), "schema_version"),
            (
                json!({"schema_version": 1, "install_id": "a b"}),
                "install_id",
            ),
            (
                json!({"schema_version": 1, "install_id": "i", "browser": "chrome"}),
                "browser",
            ),
            (
                json!({"schema_version": 1, "install_id": "i", "browser": {"name": "c", "version": "1"}, "extension_version": "1", "managed": "yes"}),
                "managed",
            ),
            (
                json!({"schema_version": 1, "install_id": "i", "browser": {"name": "c", "version": "1"}, "extension_version": "1", "managed": true, "identity": {"email": "nope", "source": "gmail"}}),
                "identity.email",
            ),
            (
                json!({"schema_version": 1, "install_id": "i", "browser": {"name": "c", "version": "1"}, "extension_version": "1", "managed": true, "events": []}),
                "events",
            ),
        ];
        for (value, field) in cases {
            let error = parse_batch(&serde_json::to_vec(&value).unwrap(), now()).unwrap_err();
            match error {
                PayloadError::Field(error) => assert_eq!(error.field, field, "{value}"),
                other => panic!("{value}: expected a field error, got {other:?}"),
            }
        }
    }

    #[test]
    fn too_many_events_rejected() {
        let events: Vec<Value> = (0..=MAX_EVENTS).map(|i| login(&format!("e{i}"))).collect();
        let error = parse_batch(&body(Value::Array(events)), now()).unwrap_err();
        assert_eq!(
            error,
            PayloadError::TooManyEvents {
                count: MAX_EVENTS + 1
            }
        );
    }

    #[test]
    fn non_json_rejected() {
        assert!(matches!(
            parse_batch(b"{not json", now()),
            Err(PayloadError::Json(_))
        ));
        assert!(matches!(
            parse_batch(b"[1,2]", now()),
            Err(PayloadError::Field(_))
        ));
    }

    #[test]
    fn truncated_or_corrupted_bodies_never_panic() {
        let valid = body(
            json!([login("e1"), {"id": "e2", "time": "2026-03-02T09:59:00Z", "type": "heartbeat"}]),
        );
        for end in 0..valid.len() {
            let _ = parse_batch(&valid[..end], now());
        }
        for position in 0..valid.len() {
            for replacement in [b'"', b'{', b']', 0xff, b'0'] {
                let mut corrupted = valid.clone();
                corrupted[position] = replacement;
                let _ = parse_batch(&corrupted, now());
            }
        }
        let deeply_nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_batch(deeply_nested.as_bytes(), now()).is_err());
    }

    #[test]
    fn storage_time_sorts_as_time() {
        let early = storage_time(now());
        let late = storage_time(now() + Duration::milliseconds(1));
        assert!(early < late);
        assert_eq!(early, "2026-03-02T10:00:00.000Z");
    }
}
