//! Graph `/groups` and `/groups/{id}/members`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{admit, collection, not_found, read_page, render, select, select_fields};
use crate::directory::{Group, User};
use crate::urlencode::encode_segment;
use crate::{Rejection, Shared};

/// The properties the mock renders for a group. Graph's default set is larger.
const GROUP_PROPERTIES: [&str; 10] = [
    "id",
    "displayName",
    "description",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
    "groupTypes",
    "visibility",
    "createdDateTime",
];

/// Renders a group: one with an address as a Microsoft 365 group, one without as a security
/// group.
fn render_group(group: &Group, fields: Option<&[String]>) -> Value {
    let unified = group.email.is_some();
    let nickname = match &group.email {
        Some(email) => email.split('@').next().unwrap_or_default().to_owned(),
        None => group.name.to_lowercase().replace(' ', "-"),
    };

    let mut all = Map::new();
    all.insert("id".into(), json!(group.id));
    all.insert("displayName".into(), json!(group.name));
    all.insert("description".into(), json!(group.description));
    all.insert("mail".into(), json!(group.email));
    all.insert("mailEnabled".into(), json!(unified));
    all.insert("mailNickname".into(), json!(nickname));
    all.insert("securityEnabled".into(), json!(!unified));
    all.insert(
        "groupTypes".into(),
        if unified {
            json!(["Unified"])
        } else {
            json!([])
        },
    );
    all.insert(
        "visibility".into(),
        if unified {
            json!("Private")
        } else {
            Value::Null
        },
    );
    all.insert("createdDateTime".into(), json!("2024-01-15T09:00:00Z"));
    select(all, fields, &GROUP_PROPERTIES)
}

pub async fn list(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "microsoft.groups", &headers, &query)?;
    let page = read_page(&query)?;
    let fields = select_fields(&query);
    let body = collection(
        &state,
        "/v1.0/groups",
        "groups",
        &query,
        &page,
        &state.directory("microsoft").groups,
        |g| render_group(g, fields.as_deref()),
    );
    Ok(axum::Json(body).into_response())
}

enum Member<'a> {
    User(&'a User),
    Group(&'a Group),
}

/// Lists a group's direct members: users first, then nested groups, each with its
/// `@odata.type`.
pub async fn members(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "microsoft.group_members", &headers, &query)?;
    let page = read_page(&query)?;
    let directory = state.directory("microsoft");
    let group = directory.group(&id).ok_or_else(|| not_found(&id))?;

    let members: Vec<Member> = directory
        .users_among(&group.members)
        .into_iter()
        .map(Member::User)
        .chain(
            directory
                .groups
                .iter()
                .filter(|g| group.member_groups.contains(&g.id))
                .map(Member::Group),
        )
        .collect();
    let fields = select_fields(&query);
    let path = format!("/v1.0/groups/{}/members", encode_segment(&id));
    let body = collection(
        &state,
        &path,
        "directoryObjects",
        &query,
        &page,
        &members,
        |member| {
            let (mut value, odata_type) = match member {
                Member::User(user) => (
                    render(user, &directory.domain, fields.as_deref()),
                    "#microsoft.graph.user",
                ),
                Member::Group(group) => (
                    render_group(group, fields.as_deref()),
                    "#microsoft.graph.group",
                ),
            };
            value["@odata.type"] = json!(odata_type);
            value
        },
    );
    Ok(axum::Json(body).into_response())
}
