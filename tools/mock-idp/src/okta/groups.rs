//! Okta `/api/v1/groups` and `/api/v1/groups/{id}/users`. Okta groups do not nest, so nested
//! groups in the directory are left out.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::{admit, not_found, paged_response, read_page, render};
use crate::directory::Group;
use crate::urlencode::encode_segment;
use crate::{Rejection, Shared};

/// The mock's default and maximum `limit` for `/api/v1/groups`. Okta accepts larger pages, but
/// 200 keeps paging visible in tests.
const MAX_GROUPS: usize = 200;
/// Okta's default and maximum `limit` for a group's users.
const MAX_GROUP_USERS: usize = 1000;

fn render_group(group: &Group, base_url: &str) -> Value {
    let href = format!("{base_url}/api/v1/groups/{}", encode_segment(&group.id));
    json!({
        "id": group.id,
        "created": "2024-01-15T09:00:00.000Z",
        "lastUpdated": "2024-01-15T09:00:00.000Z",
        "lastMembershipUpdated": "2026-11-30T08:12:00.000Z",
        "objectClass": ["okta:user_group"],
        "type": "OKTA_GROUP",
        "profile": {"name": group.name, "description": group.description},
        "_links": {
            "users": {"href": format!("{href}/users")},
            "apps": {"href": format!("{href}/apps")},
        },
    })
}

/// Lists groups, optionally those whose name starts with `q`.
pub async fn list(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "okta.groups", &headers)?;
    let page = read_page(&query, MAX_GROUPS, MAX_GROUPS)?;
    let prefix = query.get("q").map(|q| q.to_lowercase());
    let matching: Vec<&Group> = state
        .directory("okta")
        .groups
        .iter()
        .filter(|g| {
            prefix
                .as_ref()
                .is_none_or(|p| g.name.to_lowercase().starts_with(p))
        })
        .collect();
    let params: Vec<(&str, &str)> = query
        .get("q")
        .map(|q| ("q", q.as_str()))
        .into_iter()
        .collect();
    Ok(paged_response(
        &state.base_url,
        "/api/v1/groups",
        &params,
        page,
        &matching,
        |g| render_group(g, &state.base_url),
    ))
}

/// Lists a group's users, rendered as `/api/v1/users` renders them.
pub async fn users(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "okta.group_users", &headers)?;
    let page = read_page(&query, MAX_GROUP_USERS, MAX_GROUP_USERS)?;
    let directory = state.directory("okta");
    let group = directory
        .group(&id)
        .ok_or_else(|| not_found(&id, "UserGroup"))?;
    let path = format!("/api/v1/groups/{}/users", encode_segment(&id));
    Ok(paged_response(
        &state.base_url,
        &path,
        &[],
        page,
        &directory.users_among(&group.members),
        |u| render(u),
    ))
}
