//! Graph `/users/{id | userPrincipalName}/mailFolders/inbox/messageRules`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{admit, find_user, graph_error, not_found};
use crate::directory::MailRule;
use crate::{Rejection, Shared};

fn recipients(addresses: &[String]) -> Value {
    addresses
        .iter()
        .map(|address| json!({"emailAddress": {"name": address, "address": address}}))
        .collect()
}

/// Renders a rule. Like Graph, `actions` holds only the actions the rule takes, and a rule
/// without conditions (`{}`) applies to every message.
fn render(rule: &MailRule, sequence: usize) -> Value {
    let mut actions = Map::new();
    if !rule.forward_to.is_empty() {
        actions.insert("forwardTo".into(), recipients(&rule.forward_to));
    }
    if !rule.redirect_to.is_empty() {
        actions.insert("redirectTo".into(), recipients(&rule.redirect_to));
    }
    if rule.delete {
        actions.insert("delete".into(), json!(true));
    }
    if rule.mark_read {
        actions.insert("markAsRead".into(), json!(true));
    }
    if let Some(folder) = &rule.move_to_folder {
        actions.insert("moveToFolder".into(), json!(folder));
    }
    actions.insert("stopProcessingRules".into(), json!(true));
    json!({
        "id": rule.id,
        "displayName": rule.name,
        "sequence": sequence,
        "isEnabled": true,
        "hasError": false,
        "isReadOnly": false,
        "conditions": {},
        "actions": actions,
    })
}

/// Lists a user's inbox rules, all on one page as Graph does. `{id}` is an object id or a user
/// principal name. A guest's name contains `#`, so it arrives as `%23`.
pub async fn message_rules(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "microsoft.message_rules", &headers, &query)?;
    let directory = state.directory("microsoft");
    let user = find_user(&directory.users, &directory.domain, &id).ok_or_else(|| not_found(&id))?;
    if !user.has_mailbox {
        return Err(graph_error(
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )
        .into());
    }
    let values: Vec<Value> = user
        .mail_rules
        .iter()
        .enumerate()
        .map(|(index, rule)| render(rule, index + 1))
        .collect();
    let context = format!(
        "{}/v1.0/$metadata#users('{}')/mailFolders('inbox')/messageRules",
        state.base_url, user.id
    );
    Ok(axum::Json(json!({"@odata.context": context, "value": values})).into_response())
}
