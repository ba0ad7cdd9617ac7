//! Graph `/reports/authenticationMethods/userRegistrationDetails`: which authentication methods
//! each user registered, derived from `User::mfa_enrolled`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{admit, collection, read_page, user_principal_name};
use crate::directory::{User, stable_hash};
use crate::{Rejection, Shared};

fn render(user: &User, domain: &str) -> Value {
    // Enrolled users get the Authenticator app, and about half of them a phone as well.
    let methods: Vec<&str> = match (user.mfa_enrolled, stable_hash(&user.id) % 2) {
        (false, _) => Vec::new(),
        (true, 0) => vec!["microsoftAuthenticatorPush", "softwareOneTimePasscode"],
        (true, _) => vec![
            "mobilePhone",
            "microsoftAuthenticatorPush",
            "softwareOneTimePasscode",
        ],
    };
    let preferred = if user.mfa_enrolled { "push" } else { "" };
    json!({
        "id": user.id,
        "userPrincipalName": user_principal_name(user, domain),
        "userDisplayName": format!("{} {}", user.given_name, user.family_name),
        "userType": if user.guest { "guest" } else { "member" },
        "isAdmin": user.is_admin,
        "isSsprRegistered": user.mfa_enrolled,
        "isSsprEnabled": true,
        "isSsprCapable": user.mfa_enrolled,
        "isMfaRegistered": user.mfa_enrolled,
        "isMfaCapable": user.mfa_enrolled,
        "isPasswordlessCapable": false,
        "methodsRegistered": methods,
        "isSystemPreferredAuthenticationMethodEnabled": true,
        "systemPreferredAuthenticationMethods": if user.mfa_enrolled { vec!["push"] } else { Vec::new() },
        "userPreferredMethodForSecondaryAuthentication": preferred,
        "lastUpdatedDateTime": "2026-11-30T08:12:00Z",
    })
}

// NOTE: Graph documents only `$filter` and `$orderby` here and not its page size. The mock
// ignores `$filter` and pages like `/users` (`$top`, 100 by default).
pub async fn registration_details(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "microsoft.registration_details", &headers, &query)?;
    let page = read_page(&query)?;
    let directory = state.directory("microsoft");
    let body = collection(
        &state,
        "/v1.0/reports/authenticationMethods/userRegistrationDetails",
        "reports/authenticationMethods/userRegistrationDetails",
        &query,
        &page,
        &directory.users,
        |u| render(u, &directory.domain),
    );
    Ok(axum::Json(body).into_response())
}
