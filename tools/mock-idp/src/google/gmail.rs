//! Gmail settings: `users.settings.filters.list` and `users.settings.forwardingAddresses.list`,
//! rendered from the directory's mail rules.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{admit, google_error, insert_list, respond};
use crate::directory::{MailRule, User, stable_hash};
use crate::state::{MockState, bearer_token};
use crate::{Rejection, Shared};

/// Resolves Gmail's `userId`: an address or alias, or `me` for the user a JWT-bearer token acts
/// as.
fn resolve_user<'a>(
    state: &'a MockState,
    headers: &HeaderMap,
    user_id: &str,
) -> Result<&'a User, Rejection> {
    let key = if user_id == "me" {
        bearer_token(headers)
            .and_then(|token| state.token_subjects.get(token))
            .map(String::as_str)
            .unwrap_or_default()
    } else {
        user_id
    };
    // NOTE: Gmail accepts only a token that acts as this user (`sub`). The mock lets any token
    // it issued read any user's settings.
    let users = &state.directory("google").users;
    let user = users.iter().find(|u| u.has_address(key)).ok_or_else(|| {
        google_error(
            StatusCode::BAD_REQUEST,
            "invalidArgument",
            "Invalid user id specified in request/Delegation denied",
            "INVALID_ARGUMENT",
        )
    })?;
    if !user.has_mailbox {
        return Err(google_error(
            StatusCode::BAD_REQUEST,
            "failedPrecondition",
            "Mail service not enabled",
            "FAILED_PRECONDITION",
        )
        .into());
    }
    Ok(user)
}

/// Returns the id of the user label that stands for a folder.
fn label_id(folder: &str) -> String {
    format!("Label_{}", stable_hash(folder) % 1_000_000_000)
}

/// Renders a rule as a filter that matches all mail to the user, since rules have no conditions.
/// Gmail forwards to one address only, so the filter forwards to the first.
fn render_filter(rule: &MailRule, user: &User) -> Value {
    let mut add = Vec::new();
    let mut remove = Vec::new();
    if rule.delete {
        add.push("TRASH".to_owned());
    }
    if let Some(folder) = &rule.move_to_folder {
        add.push(label_id(folder));
        remove.push("INBOX".to_owned());
    }
    if rule.mark_read {
        remove.push("UNREAD".to_owned());
    }
    // Gmail leaves out empty lists and unset fields.
    let mut action = Map::new();
    if !add.is_empty() {
        action.insert("addLabelIds".into(), json!(add));
    }
    if !remove.is_empty() {
        action.insert("removeLabelIds".into(), json!(remove));
    }
    if let Some(address) = rule.forward_to.first() {
        action.insert("forward".into(), json!(address));
    }
    json!({"id": rule.id, "criteria": {"to": user.email}, "action": action})
}

pub async fn filters(
    State(state): State<Shared>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "google.gmail_filters", &headers)?;
    let user = resolve_user(&state, &headers, &user_id)?;
    let filters = user
        .mail_rules
        .iter()
        .map(|rule| render_filter(rule, user))
        .collect();
    let mut body = json!({});
    insert_list(&mut body, "filter", filters);
    respond(&query, body)
}

/// Lists the addresses the user's filters forward to, all verified.
pub async fn forwarding_addresses(
    State(state): State<Shared>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "google.gmail_forwarding_addresses", &headers)?;
    let user = resolve_user(&state, &headers, &user_id)?;
    let mut addresses: Vec<&str> = Vec::new();
    for address in user.mail_rules.iter().filter_map(|r| r.forward_to.first()) {
        if !addresses.contains(&address.as_str()) {
            addresses.push(address);
        }
    }
    let forwarding = addresses
        .iter()
        .map(|a| json!({"forwardingEmail": a, "verificationStatus": "accepted"}))
        .collect();
    let mut body = json!({});
    insert_list(&mut body, "forwardingAddresses", forwarding);
    respond(&query, body)
}
