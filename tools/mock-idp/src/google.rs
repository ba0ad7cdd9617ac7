//! Google's Admin SDK Directory API `users.list`, with the error formats and the `fields`
//! parameter that the other Google endpoints share. The submodules serve OAuth, the rest of the
//! Directory API and Gmail settings.

pub(crate) mod admin;
pub(crate) mod fields;
pub(crate) mod gmail;
pub(crate) mod oauth;

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::directory::{AccountState, User};
use crate::microsoft::{decode_offset, encode_offset};
use crate::state::{FaultKind, MockState};
use crate::{Rejection, Shared, lock};

/// The Directory API's maximum `maxResults` for `users.list`.
const MAX_RESULTS: usize = 500;
const DEFAULT_RESULTS: usize = 100;

pub(crate) fn google_error(
    status: StatusCode,
    reason: &str,
    message: &str,
    status_text: &str,
) -> Response {
    let domain = if reason.ends_with("LimitExceeded") {
        "usageLimits"
    } else {
        "global"
    };
    let body = json!({"error": {"code": status.as_u16(), "message": message, "errors": [{"message": message, "domain": domain, "reason": reason}], "status": status_text}});
    (status, axum::Json(body)).into_response()
}

/// The customer id of the mock's Workspace account.
pub(crate) const CUSTOMER_ID: &str = "C01abc234";

pub(crate) fn fault_response(kind: FaultKind) -> Option<Response> {
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

/// Counts a Google API request, checks its bearer token and applies a queued fault.
pub(crate) fn admit(
    state: &mut MockState,
    endpoint: &str,
    headers: &HeaderMap,
) -> Result<(), Rejection> {
    let fault = state.record(endpoint);
    if !state.authorised(headers) {
        return Err(google_error(
            StatusCode::UNAUTHORIZED,
            "authError",
            "Invalid Credentials",
            "UNAUTHENTICATED",
        )
        .into());
    }
    match fault.and_then(fault_response) {
        Some(response) => Err(response.into()),
        None => Ok(()),
    }
}

/// Sends `body`, trimmed to the request's `fields` parameter if it has one.
pub(crate) fn respond(query: &HashMap<String, String>, body: Value) -> Result<Response, Rejection> {
    let Some(spec) = query.get("fields") else {
        return Ok(axum::Json(body).into_response());
    };
    match fields::FieldMask::parse(spec) {
        Ok(mask) => Ok(axum::Json(mask.apply(&body)).into_response()),
        Err(message) => Err(google_error(
            StatusCode::BAD_REQUEST,
            "invalidParameter",
            &message,
            "INVALID_ARGUMENT",
        )
        .into()),
    }
}

/// Reads `maxResults` (1 to `max`) and `pageToken`, or returns Google's 400.
pub(crate) fn page_bounds(
    query: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<(usize, usize), Rejection> {
    let max_results = match query.get("maxResults").map(|m| m.parse::<usize>()) {
        None => default,
        Some(Ok(value)) if (1..=max).contains(&value) => value,
        Some(_) => {
            return Err(google_error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Invalid value for: maxResults",
                "INVALID_ARGUMENT",
            )
            .into());
        }
    };
    let offset = match query.get("pageToken").map(|t| decode_offset(t)) {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => {
            return Err(google_error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Invalid page token",
                "INVALID_ARGUMENT",
            )
            .into());
        }
    };
    Ok((offset, max_results))
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
        "customerId": CUSTOMER_ID,
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
) -> Result<Response, Rejection> {
    let mut state = lock(&state)?;
    admit(&mut state, "google.users", &headers)?;
    if query.get("customer").map(String::as_str) != Some("my_customer")
        && !query.contains_key("domain")
    {
        return Err(google_error(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "Bad Request",
            "INVALID_ARGUMENT",
        )
        .into());
    }
    let (offset, max_results) = page_bounds(&query, DEFAULT_RESULTS, MAX_RESULTS)?;

    let users = &state.directory("google").users;
    let page: Vec<Value> = users
        .iter()
        .skip(offset)
        .take(max_results)
        .map(render)
        .collect();
    let mut body = json!({"kind": "admin#directory#users", "etag": "\"directory\"", "users": page});
    if offset.saturating_add(max_results) < users.len() {
        body["nextPageToken"] = json!(encode_offset(offset + max_results));
    }
    respond(&query, body)
}
