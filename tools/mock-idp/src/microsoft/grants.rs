//! Graph `/oauth2PermissionGrants` (delegated permissions users granted to apps) and
//! `/servicePrincipals` (the apps' identities in the tenant, to name the grants' clients).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::{admit, collection, graph_error, read_page, select, select_fields};
use crate::directory::{Grant, User, stable_hash};
use crate::{Rejection, Shared};

/// Microsoft Graph's application id, the same in every tenant.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// The tenant that owns Microsoft's first-party apps.
const MICROSOFT_SERVICES_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";

/// Derives a stable GUID from `key`, for the object ids of service principals.
fn derived_guid(key: &str) -> String {
    let high = stable_hash(key);
    let low = stable_hash(&format!("{key}/low"));
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xfff,
        low >> 52,
        low & 0xffff_ffff_ffff
    )
}

fn service_principal_id(app_id: &str) -> String {
    derived_guid(&format!("servicePrincipal/{app_id}"))
}

/// Returns the users' grants that hold Graph scopes, in directory order.
fn graph_grants(users: &[User]) -> Vec<(&User, &Grant)> {
    users
        .iter()
        .flat_map(|u| u.grants.iter().map(move |g| (u, g)))
        .filter(|(_, g)| !g.graph_scopes().is_empty())
        .collect()
}

/// Reads a `$filter` of the form `property eq 'value'`, the one form the mock supports.
fn equality_filter<'a>(
    query: &'a HashMap<String, String>,
    properties: &[&str],
) -> Result<Option<(&'a str, &'a str)>, Rejection> {
    let Some(filter) = query.get("$filter") else {
        return Ok(None);
    };
    let parsed = filter.split_once(" eq ").and_then(|(property, value)| {
        let value = value.trim().strip_prefix('\'')?.strip_suffix('\'')?;
        Some((property.trim(), value))
    });
    match parsed {
        Some((property, value)) if properties.contains(&property) => Ok(Some((property, value))),
        _ => Err(graph_error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            &format!("Unsupported or invalid query filter clause specified: '{filter}'."),
        )
        .into()),
    }
}

/// Lists delegated grants, one per user and app, each with `consentType: Principal`. Supports
/// `$filter=clientId eq '…'` and `$filter=principalId eq '…'`.
pub async fn permission_grants(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "microsoft.permission_grants", &headers, &query)?;
    let page = read_page(&query)?;
    let filter = equality_filter(&query, &["clientId", "principalId"])?;
    let graph_id = service_principal_id(GRAPH_APP_ID);
    let grants: Vec<Value> = graph_grants(&state.directory("microsoft").users)
        .into_iter()
        .map(|(user, grant)| {
            let client = service_principal_id(&grant.client_id);
            json!({
                "id": URL_SAFE_NO_PAD.encode(format!("{client}:{graph_id}:{}", user.id)),
                "clientId": client,
                "consentType": "Principal",
                "principalId": user.id,
                "resourceId": graph_id,
                "scope": grant.graph_scopes().join(" "),
            })
        })
        .filter(|grant| match filter {
            Some((property, value)) => grant[property] == value,
            None => true,
        })
        .collect();
    let body = collection(
        &state,
        "/v1.0/oauth2PermissionGrants",
        "oauth2PermissionGrants",
        &query,
        &page,
        &grants,
        Value::clone,
    );
    Ok(axum::Json(body).into_response())
}

const SERVICE_PRINCIPAL_PROPERTIES: [&str; 8] = [
    "id",
    "appId",
    "displayName",
    "servicePrincipalType",
    "accountEnabled",
    "appOwnerOrganizationId",
    "signInAudience",
    "servicePrincipalNames",
];

fn render_service_principal(
    app_id: &str,
    name: &str,
    owner_tenant: &str,
    fields: Option<&[String]>,
) -> Value {
    let mut all = Map::new();
    all.insert("id".into(), json!(service_principal_id(app_id)));
    all.insert("appId".into(), json!(app_id));
    all.insert("displayName".into(), json!(name));
    all.insert("servicePrincipalType".into(), json!("Application"));
    all.insert("accountEnabled".into(), json!(true));
    all.insert("appOwnerOrganizationId".into(), json!(owner_tenant));
    all.insert("signInAudience".into(), json!("AzureADMultipleOrgs"));
    all.insert("servicePrincipalNames".into(), json!([app_id]));
    select(all, fields, &SERVICE_PRINCIPAL_PROPERTIES)
}

/// Lists Microsoft Graph's service principal and one for each app that users granted Graph
/// scopes to. Supports `$filter=appId eq '…'` and `$filter=id eq '…'`.
pub async fn service_principals(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "microsoft.service_principals", &headers, &query)?;
    let page = read_page(&query)?;
    let filter = equality_filter(&query, &["appId", "id"])?;
    let fields = select_fields(&query);
    let mut apps: Vec<(&str, &str, String)> = vec![(
        GRAPH_APP_ID,
        "Microsoft Graph",
        MICROSOFT_SERVICES_TENANT.to_owned(),
    )];
    for (_, grant) in graph_grants(&state.directory("microsoft").users) {
        if !apps.iter().any(|(id, _, _)| *id == grant.client_id) {
            let owner = derived_guid(&format!("tenant/{}", grant.app_name));
            apps.push((&grant.client_id, &grant.app_name, owner));
        }
    }
    let matching: Vec<&(&str, &str, String)> = apps
        .iter()
        .filter(|(app_id, _, _)| match filter {
            Some(("appId", value)) => *app_id == value,
            Some((_, value)) => service_principal_id(app_id) == value,
            None => true,
        })
        .collect();
    let body = collection(
        &state,
        "/v1.0/servicePrincipals",
        "servicePrincipals",
        &query,
        &page,
        &matching,
        |(app_id, name, owner)| render_service_principal(app_id, name, owner, fields.as_deref()),
    );
    Ok(axum::Json(body).into_response())
}
