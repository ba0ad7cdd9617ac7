//! The rest of the Admin SDK Directory API that the mock serves: the customer, groups and their
//! members, and the OAuth tokens users granted to third-party apps.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{
    CUSTOMER_ID, admit, bad_request, google_error, insert_list, list_body, read_page, respond,
};
use crate::directory::{Group, User};
use crate::{Rejection, Shared};

/// The Directory API's maximum `maxResults` for `groups.list` and `members.list`.
const MAX_RESULTS: usize = 200;

fn not_found(parameter: &str) -> Rejection {
    google_error(
        StatusCode::NOT_FOUND,
        "notFound",
        &format!("Resource Not Found: {parameter}"),
        "NOT_FOUND",
    )
    .into()
}

fn is_my_customer(key: &str) -> bool {
    key == "my_customer" || key == CUSTOMER_ID
}

/// Returns a group's address. Google groups always have one, so a group without an address in
/// the directory gets one derived from its name.
fn group_email(group: &Group, domain: &str) -> String {
    group
        .email
        .clone()
        .unwrap_or_else(|| format!("{}@{domain}", group.name.to_lowercase().replace(' ', "-")))
}

/// Finds a user by id, primary address or alias, as a `userKey` names one.
fn find_user<'a>(users: &'a [User], key: &str) -> Result<&'a User, Rejection> {
    users
        .iter()
        .find(|u| u.id == key || u.has_address(key))
        .ok_or_else(|| not_found("userKey"))
}

fn find_group<'a>(groups: &'a [Group], domain: &str, key: &str) -> Result<&'a Group, Rejection> {
    groups
        .iter()
        .find(|g| g.id == key || group_email(g, domain).eq_ignore_ascii_case(key))
        .ok_or_else(|| not_found("groupKey"))
}

/// `GET /admin/directory/v1/customers/{customerKey}`.
pub async fn customer(
    State(state): State<Shared>,
    Path(customer_key): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "google.customer", &headers)?;
    if !is_my_customer(&customer_key) {
        return Err(google_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not Authorized to access this resource/api",
            "PERMISSION_DENIED",
        )
        .into());
    }
    let body = json!({
        "kind": "admin#directory#customer",
        "id": CUSTOMER_ID,
        "etag": "\"customer\"",
        "customerDomain": state.directory("google").domain,
        "customerCreationTime": "2019-03-04T10:12:00.000Z",
        "language": "en",
    });
    respond(&query, body)
}

fn render_group(group: &Group, domain: &str) -> Value {
    let mut value = json!({
        "kind": "admin#directory#group",
        "id": group.id,
        "etag": format!("\"{}\"", group.id),
        "email": group_email(group, domain),
        "name": group.name,
        // int64 values are strings in Google's JSON.
        "directMembersCount": (group.members.len() + group.member_groups.len()).to_string(),
        "adminCreated": true,
    });
    if let Some(description) = &group.description {
        value["description"] = json!(description);
    }
    value
}

/// `groups.list`: all groups of `customer` or `domain`, or the groups `userKey` is a direct
/// member of.
pub async fn groups(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "google.groups", &headers)?;
    let page = read_page(&query, MAX_RESULTS, MAX_RESULTS)?;
    let directory = state.directory("google");
    let matching: Vec<&Group> = if let Some(key) = query.get("userKey") {
        let user = find_user(&directory.users, key)?;
        directory
            .groups
            .iter()
            .filter(|g| g.members.contains(&user.id))
            .collect()
    } else if query.get("customer").is_some_and(|c| is_my_customer(c))
        || query.get("domain") == Some(&directory.domain)
    {
        directory.groups.iter().collect()
    } else {
        return Err(bad_request());
    };

    let mut body = list_body(
        "admin#directory#groups",
        "\"groups\"",
        &page,
        matching.len(),
    );
    let groups = page
        .slice(&matching)
        .map(|g| render_group(g, &directory.domain))
        .collect();
    insert_list(&mut body, "groups", groups);
    respond(&query, body)
}

/// Collects a group's members as `(user or group, role)`. With `derived`, users of nested groups
/// are included too, once each, after the direct members.
fn collect_members<'a>(
    root: &'a Group,
    users: &'a [User],
    groups: &'a [Group],
    derived: bool,
) -> Vec<(Result<&'a User, &'a Group>, &'static str)> {
    let by_id: HashMap<&str, &User> = users.iter().map(|u| (u.id.as_str(), u)).collect();
    let mut members = Vec::new();
    let mut seen_users = HashSet::new();
    let mut seen_groups = HashSet::from([root.id.as_str()]);
    let mut pending = vec![root];
    while let Some(group) = pending.pop() {
        for (index, id) in group.members.iter().enumerate() {
            if let Some(user) = by_id
                .get(id.as_str())
                .filter(|_| seen_users.insert(id.as_str()))
            {
                let owner = index == 0 && group.id == root.id;
                members.push((Ok(*user), if owner { "OWNER" } else { "MEMBER" }));
            }
        }
        for id in &group.member_groups {
            let Some(nested) = groups.iter().find(|g| &g.id == id) else {
                continue;
            };
            if group.id == root.id {
                members.push((Err(nested), "MEMBER"));
            }
            if derived && seen_groups.insert(nested.id.as_str()) {
                pending.push(nested);
            }
        }
    }
    members
}

/// `members.list`. Supports `roles` (such as `OWNER,MANAGER`) and `includeDerivedMembership`.
pub async fn members(
    State(state): State<Shared>,
    Path(group_key): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "google.members", &headers)?;
    let page = read_page(&query, MAX_RESULTS, MAX_RESULTS)?;
    let directory = state.directory("google");
    let group = find_group(&directory.groups, &directory.domain, &group_key)?;
    let derived = query.get("includeDerivedMembership").map(String::as_str) == Some("true");
    let roles: Option<Vec<&str>> = query
        .get("roles")
        .map(|r| r.split(',').map(str::trim).collect());

    let members: Vec<_> = collect_members(group, &directory.users, &directory.groups, derived)
        .into_iter()
        .filter(|(_, role)| roles.as_ref().is_none_or(|roles| roles.contains(role)))
        .collect();
    let mut body = list_body(
        "admin#directory#members",
        "\"members\"",
        &page,
        members.len(),
    );
    let rendered = page
        .slice(&members)
        .map(|(member, role)| {
            let (id, email, kind) = match member {
                Ok(user) => (&user.id, user.email.clone(), "USER"),
                Err(group) => (&group.id, group_email(group, &directory.domain), "GROUP"),
            };
            json!({
                "kind": "admin#directory#member",
                "etag": format!("\"{id}\""),
                "id": id,
                "email": email,
                "role": role,
                "type": kind,
                "status": "ACTIVE",
            })
        })
        .collect();
    insert_list(&mut body, "members", rendered);
    respond(&query, body)
}

/// `tokens.list`: the OAuth tokens a user granted to third-party apps.
pub async fn tokens(
    State(state): State<Shared>,
    Path(user_key): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "google.tokens", &headers)?;
    let user = find_user(&state.directory("google").users, &user_key)?;
    let items = user
        .grants
        .iter()
        .filter(|grant| !grant.google_scopes().is_empty())
        .map(|grant| {
            json!({
                "kind": "admin#directory#token",
                "etag": format!("\"{}/{}\"", user.id, grant.client_id),
                "clientId": grant.client_id,
                "displayText": grant.app_name,
                "anonymous": false,
                "nativeApp": false,
                "userKey": user.id,
                "scopes": grant.google_scopes(),
            })
        })
        .collect();
    let mut body = json!({"kind": "admin#directory#tokenList", "etag": "\"tokens\""});
    insert_list(&mut body, "items", items);
    respond(&query, body)
}
