//! Okta `/api/v1/logs`: the System Log, here only single sign-on events
//! (`user.authentication.sso`), one per user and assigned app, published a day before the
//! request. Supports `since`, `until`, `filter=eventType eq "…"`, `limit` and the `after`
//! cursor in the `Link` header.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::{admit, okta_error, paged_response, read_page};
use crate::directory::{AccountState, App, User};
use crate::{Rejection, Shared};

/// Okta's default and maximum `limit` for the System Log.
const DEFAULT_EVENTS: usize = 100;
const MAX_EVENTS: usize = 1000;
const SSO_EVENT: &str = "user.authentication.sso";

fn render(user: &User, app: &App, published: DateTime<Utc>, index: usize) -> Value {
    json!({
        "uuid": format!("{:08x}-sso0-4000-8000-{index:012x}", index),
        "published": published.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "eventType": SSO_EVENT,
        "version": "0",
        "severity": "INFO",
        "displayMessage": "User single sign on to app",
        "actor": {"id": user.id, "type": "User", "alternateId": user.email, "displayName": format!("{} {}", user.given_name, user.family_name)},
        "outcome": {"result": "SUCCESS", "reason": null},
        "target": [{"id": app.id, "type": "AppInstance", "alternateId": app.label, "displayName": app.label}],
        "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0", "os": "Mac OS X", "browser": "CHROME"}, "ipAddress": "198.51.100.23"},
    })
}

fn bad_request(summary: &str) -> Rejection {
    okta_error(axum::http::StatusCode::BAD_REQUEST, "E0000001", summary).into()
}

fn parse_time(value: Option<&String>, field: &str) -> Result<Option<DateTime<Utc>>, Rejection> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| bad_request(&format!("Api validation failed: {field}")))
        })
        .transpose()
}

pub async fn list(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "okta.logs", &headers)?;
    let page = read_page(&query, DEFAULT_EVENTS, MAX_EVENTS)?;
    let now = Utc::now();
    let since = parse_time(query.get("since"), "since")?.unwrap_or(now - Duration::days(7));
    let until = parse_time(query.get("until"), "until")?.unwrap_or(now);
    let event_type = match query.get("filter").map(String::as_str) {
        None => None,
        Some(filter) => Some(
            filter
                .strip_prefix("eventType eq \"")
                .and_then(|rest| rest.strip_suffix('"'))
                .ok_or_else(|| bad_request("Invalid search criteria."))?
                .to_owned(),
        ),
    };

    // The events are published a day before now, so a window that covers it lists them.
    let published = now - Duration::days(1);
    let directory = state.directory("okta");
    let mut pairs = Vec::new();
    if published >= since
        && published <= until
        && event_type.as_deref().is_none_or(|w| w == SSO_EVENT)
    {
        for app in &directory.apps {
            for user in directory.users_among(&app.assigned) {
                if user.state != AccountState::Deprovisioned {
                    pairs.push((user, app));
                }
            }
        }
    }
    let mut params = vec![
        (
            "since",
            since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
        (
            "until",
            until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
    ];
    if let Some(filter) = query.get("filter") {
        params.push(("filter", filter.clone()));
    }
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut index = 0;
    Ok(paged_response(
        &state.base_url,
        "/api/v1/logs",
        &params,
        page,
        &pairs,
        |(user, app)| {
            index += 1;
            render(user, app, published, index)
        },
    ))
}
