//! Okta `/api/v1/apps` and `/api/v1/apps/{id}/users` (the users assigned to an app).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::{admit, not_found, paged_response, read_page};
use crate::directory::{AccountState, App, User};
use crate::urlencode::encode_segment;
use crate::{Rejection, Shared};

/// Okta's default and maximum `limit` for `/api/v1/apps`.
const DEFAULT_APPS: usize = 20;
const MAX_APPS: usize = 200;
/// Okta's default and maximum `limit` for an app's users.
const DEFAULT_APP_USERS: usize = 50;
const MAX_APP_USERS: usize = 500;

/// Returns the app's `name`: the catalog integration's key, or for a custom SAML app one
/// derived from its label.
fn app_name(app: &App) -> String {
    match app.sign_on_mode.as_str() {
        "OPENID_CONNECT" => "oidc_client".to_owned(),
        "BOOKMARK" => "bookmark".to_owned(),
        _ => app
            .label
            .to_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect(),
    }
}

fn render_app(app: &App, base_url: &str) -> Value {
    let href = format!("{base_url}/api/v1/apps/{}", encode_segment(&app.id));
    let name = app_name(app);
    json!({
        "id": app.id,
        "name": name,
        "label": app.label,
        "status": "ACTIVE",
        "created": "2024-01-15T09:00:00.000Z",
        "lastUpdated": "2024-01-15T09:00:00.000Z",
        "accessibility": {"selfService": false, "errorRedirectUrl": null, "loginRedirectUrl": null},
        "visibility": {"autoSubmitToolbar": false, "hide": {"iOS": false, "web": false}},
        "features": [],
        "signOnMode": app.sign_on_mode,
        "credentials": {"userNameTemplate": {"template": "${source.login}", "type": "BUILT_IN"}},
        "_links": {
            "appLinks": [{"name": name, "href": format!("{base_url}/home/{name}/{}", app.id), "type": "text/html"}],
            "users": {"href": format!("{href}/users")},
            "groups": {"href": format!("{href}/groups")},
            "deactivate": {"href": format!("{href}/lifecycle/deactivate")},
        },
    })
}

pub async fn list(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "okta.apps", &headers)?;
    let page = read_page(&query, DEFAULT_APPS, MAX_APPS)?;
    Ok(paged_response(
        &state.base_url,
        "/api/v1/apps",
        &[],
        page,
        &state.directory("okta").apps,
        |a| render_app(a, &state.base_url),
    ))
}

fn render_assignment(user: &User, app: &App, base_url: &str) -> Value {
    json!({
        "id": user.id,
        "externalId": null,
        "created": "2024-01-15T09:00:00.000Z",
        "lastUpdated": "2024-01-15T09:00:00.000Z",
        "scope": "USER",
        "status": "ACTIVE",
        "statusChanged": "2024-01-15T09:00:00.000Z",
        "passwordChanged": null,
        "syncState": "DISABLED",
        "credentials": {"userName": user.email},
        "profile": {},
        "_links": {
            "app": {"href": format!("{base_url}/api/v1/apps/{}", encode_segment(&app.id))},
            "user": {"href": format!("{base_url}/api/v1/users/{}", encode_segment(&user.id))},
        },
    })
}

/// Lists the users assigned to an app. Deprovisioned users are left out, because Okta removes
/// their assignments when it deactivates them.
pub async fn users(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "okta.app_users", &headers)?;
    let page = read_page(&query, DEFAULT_APP_USERS, MAX_APP_USERS)?;
    let directory = state.directory("okta");
    let app = directory
        .app(&id)
        .ok_or_else(|| not_found(&id, "AppInstance"))?;
    let mut assigned = directory.users_among(&app.assigned);
    assigned.retain(|u| u.state != AccountState::Deprovisioned);
    let path = format!("/api/v1/apps/{}/users", encode_segment(&id));
    Ok(paged_response(
        &state.base_url,
        &path,
        &[],
        page,
        &assigned,
        |u| render_assignment(u, app, &state.base_url),
    ))
}
