//! Google's OAuth token endpoint (refresh-token grant) and the Admin SDK Directory API
//! `users.list`.

use std::collections::HashMap;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::Shared;
use crate::directory::{AccountState, User};
use crate::microsoft::{decode_offset, encode_offset};
use crate::state::FaultKind;

/// The Directory API's maximum `maxResults` for `users.list`.
const MAX_RESULTS: usize = 500;
const DEFAULT_RESULTS: usize = 100;

fn google_error(status: StatusCode, reason: &str, message: &str, status_text: &str) -> Response {
    let domain = if reason.ends_with("LimitExceeded") {
        "usageLimits"
    } else {
        "global"
    };
    let body = json!({"error": {"code": status.as_u16(), "message": message, "errors": [{"message": message, "domain": domain, "reason": reason}], "status": status_text}});
    (status, axum::Json(body)).into_response()
}

fn fault_response(kind: FaultKind) -> Option<Response> {
    let response = match kind {
        FaultKind::GoogleForbidden { reason } => google_error(StatusCode::FORBIDDEN, &reason, "Request had insufficient authentication scopes or exceeded a limit.", "PERMISSION_DENIED"),
        FaultKind::Throttle { retry_after } => {
            let mut response = google_error(StatusCode::TOO_MANY_REQUESTS, "rateLimitExceeded", "Rate Limit Exceeded", "RESOURCE_EXHAUSTED");
            if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                response.headers_mut().insert("retry-after", value);
            }
            response
        }
        FaultKind::ServerError => google_error(StatusCode::SERVICE_UNAVAILABLE, "backendError", "Backend Error", "UNAVAILABLE"),
        FaultKind::InvalidGrant => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}))).into_response(),
        FaultKind::UnauthorizedClient => (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "unauthorized_client", "error_description": "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."}))).into_response(),
        _ => return None,
    };
    Some(response)
}

pub async fn token(
    State(state): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Ok(mut state) = state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Some(response) = state.record("google.token").and_then(fault_response) {
        return response;
    }
    let credentials = &state.config.credentials;
    let client_ok = form.get("client_id") == Some(&credentials.google_client_id)
        && form.get("client_secret") == Some(&credentials.google_client_secret);
    if !client_ok {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client", "error_description": "The OAuth client was not found."}))).into_response();
    }
    match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") if form.get("refresh_token") == Some(&credentials.google_refresh_token) => {}
        Some("refresh_token") => {
            return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant", "error_description": "Bad Request"}))).into_response();
        }
        // NOTE: the authorization-code grant with PKCE and the JWT-bearer grant for domain-wide
        // delegation are not served yet.
        _ => return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}))).into_response(),
    }
    let token = state.issue_token();
    axum::Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer", "scope": "https://www.googleapis.com/auth/admin.directory.user.readonly"})).into_response()
}

fn render(user: &User) -> Value {
    let mut emails = vec![json!({"address": user.email, "primary": true})];
    emails.extend(user.aliases.iter().map(|a| json!({"address": a})));
    json!({
        "kind": "admin#directory#user",
        "id": user.id,
        "etag": format!("\"{}\"", user.id),
        "primaryEmail": user.email,
        "name": {"givenName": user.given_name, "familyName": user.family_name, "fullName": format!("{} {}", user.given_name, user.family_name)},
        "isAdmin": user.is_admin,
        "isDelegatedAdmin": false,
        "lastLoginTime": "2026-11-30T08:12:00.000Z",
        "creationTime": "2024-01-15T09:00:00.000Z",
        "agreedToTerms": true,
        "suspended": user.state == AccountState::Suspended || user.state == AccountState::Deprovisioned,
        "archived": user.state == AccountState::Archived,
        "changePasswordAtNextLogin": false,
        "ipWhitelisted": false,
        "emails": emails,
        "aliases": user.aliases,
        "customerId": "C01abc234",
        "orgUnitPath": "/",
        "isMailboxSetup": user.has_mailbox,
        "isEnrolledIn2Sv": user.mfa_enrolled,
        "isEnforcedIn2Sv": false,
        "includeInGlobalAddressList": true,
    })
}

pub async fn users(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Ok(mut state) = state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let fault = state.record("google.users");
    if !state.authorised(&headers) {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "authError",
            "Invalid Credentials",
            "UNAUTHENTICATED",
        );
    }
    if let Some(response) = fault.and_then(fault_response) {
        return response;
    }
    if query.get("customer").map(String::as_str) != Some("my_customer")
        && !query.contains_key("domain")
    {
        return google_error(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "Bad Request",
            "INVALID_ARGUMENT",
        );
    }
    let max_results = match query.get("maxResults").map(|m| m.parse::<usize>()) {
        None => DEFAULT_RESULTS,
        Some(Ok(max)) if (1..=MAX_RESULTS).contains(&max) => max,
        Some(_) => {
            return google_error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Invalid value for: maxResults",
                "INVALID_ARGUMENT",
            );
        }
    };
    let offset = match query.get("pageToken").map(|t| decode_offset(t)) {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => {
            return google_error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Invalid page token",
                "INVALID_ARGUMENT",
            );
        }
    };

    let users = &state.directory("google").users;
    let page: Vec<Value> = users
        .iter()
        .skip(offset)
        .take(max_results)
        .map(render)
        .collect();
    let mut body = json!({"kind": "admin#directory#users", "etag": "\"directory\"", "users": page});
    if offset + max_results < users.len() {
        body["nextPageToken"] = json!(encode_offset(offset + max_results));
    }
    axum::Json(body).into_response()
}
