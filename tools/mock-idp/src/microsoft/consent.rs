//! The Microsoft identity platform's v2 admin consent endpoint. It sends the administrator's
//! browser back to the app's redirect URI with the outcome, or shows an error page (here a JSON
//! body) when it cannot trust the redirect URI.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::identity_error;
use crate::oauth::{UntrustedClient, check_client};
use crate::state::FaultKind;
use crate::urlencode::{HexCase, append_query};
use crate::{Rejection, Shared, lock, parameter, redirect};

/// `GET /{tenant}/v2.0/adminconsent`. `tenant` is `organizations`, the tenant id or the
/// directory's domain.
pub async fn admin_consent(
    State(state): State<Shared>,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let mut state = lock(&state)?;
    let fault = state.record("microsoft.admin_consent");
    let credentials = &state.config.credentials;
    let tenant_id = credentials.microsoft_tenant.clone();
    if tenant != "organizations" && tenant != tenant_id && tenant != state.config.microsoft.domain {
        return Err(identity_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        ).into());
    }
    let client_id = parameter(&query, "client_id");
    let redirect_uri = parameter(&query, "redirect_uri");
    let checked = check_client(
        "microsoft.admin_consent",
        &credentials.microsoft_client_id,
        &credentials.redirect_uris,
        client_id,
        redirect_uri,
    );
    match checked {
        Ok(()) => {}
        Err(UntrustedClient::UnknownClientId) => return Err(identity_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!("AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{tenant}'."),
        ).into()),
        Err(UntrustedClient::UnregisteredRedirectUri) => return Err(identity_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("AADSTS50011: The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."),
        ).into()),
    }

    // From here on errors go back to the app, since the redirect URI is trusted.
    let scope = parameter(&query, "scope");
    let mut granted = false;
    let mut pairs: Vec<(&str, &str)> = if scope.trim().is_empty() {
        vec![
            ("error", "invalid_request"),
            (
                "error_description",
                "AADSTS900144: The request body must contain the following parameter: 'scope'.",
            ),
        ]
    } else if fault == Some(FaultKind::ConsentDeclined) {
        vec![
            ("error", "access_denied"),
            (
                "error_description",
                "AADSTS65004: User declined to consent to access the app.",
            ),
            ("admin_consent", "True"),
        ]
    } else if fault == Some(FaultKind::ConsentCancelled) {
        vec![("error", "access_denied"), ("error_subcode", "cancel")]
    } else {
        let scopes = scope.split_whitespace().map(str::to_owned).collect();
        state.consented_scopes.insert(tenant_id.clone(), scopes);
        granted = true;
        vec![("admin_consent", "True"), ("tenant", &tenant_id)]
    };
    if let Some(value) = query.get("state") {
        pairs.push(("state", value));
    }
    if granted {
        pairs.push(("scope", scope));
    }
    Ok(redirect(&append_query(
        redirect_uri,
        &pairs,
        HexCase::Lower,
    )))
}
