//! Google's Admin SDK Directory API `users.list`, with the error formats and the `fields`
//! parameter that the other Google endpoints share. The submodules serve OAuth, the rest of the
//! Directory API and Gmail settings.

pub(crate) mod admin;
pub(crate) mod fields;
pub(crate) mod gmail;
pub(crate) mod oauth;

use std::collections::HashMap;
use std::sync::MutexGuard;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::admission::ErrorFormat;
use crate::directory::{AccountState, User};
use crate::oauth::oauth_error;
use crate::paging::{AboveMax, InvalidPage, Page, Paging};
use crate::state::{FaultKind, MockState};
use crate::{Rejection, Shared};

/// The Directory API's maximum `maxResults` for `users.list`.
const MAX_RESULTS: usize = 500;
const DEFAULT_RESULTS: usize = 100;

const ERRORS: ErrorFormat = ErrorFormat {
    unauthorized,
    fault: fault_response,
};

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

/// Google's 400 for a list request that names no customer or domain it may list.
pub(crate) fn bad_request() -> Rejection {
    google_error(
        StatusCode::BAD_REQUEST,
        "badRequest",
        "Bad Request",
        "INVALID_ARGUMENT",
    )
    .into()
}

fn unauthorized() -> Response {
    google_error(
        StatusCode::UNAUTHORIZED,
        "authError",
        "Invalid Credentials",
        "UNAUTHENTICATED",
    )
}

/// The customer id of the mock's Workspace account.
pub(crate) const CUSTOMER_ID: &str = "C01abc234";

pub(crate) fn fault_response(kind: FaultKind) -> Option<Response> {
    let response = match kind {
        FaultKind::GoogleForbidden { reason } => google_error(
            StatusCode::FORBIDDEN,
            &reason,
            "Request had insufficient authentication scopes or exceeded a limit.",
            "PERMISSION_DENIED",
        ),
        FaultKind::Throttle { retry_after } => {
            let mut response = google_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rateLimitExceeded",
                "Rate Limit Exceeded",
                "RESOURCE_EXHAUSTED",
            );
            if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                response.headers_mut().insert("retry-after", value);
            }
            response
        }
        FaultKind::ServerError => google_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "backendError",
            "Backend Error",
            "UNAVAILABLE",
        ),
        FaultKind::InvalidGrant => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Token has been expired or revoked.",
        ),
        FaultKind::UnauthorizedClient => oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        ),
        _ => return None,
    };
    Some(response)
}

/// Locks the state for a Google API request: counts it, checks its bearer token and applies a
/// queued fault.
pub(crate) fn admit<'a>(
    shared: &'a Shared,
    endpoint: &str,
    headers: &HeaderMap,
) -> Result<MutexGuard<'a, MockState>, Rejection> {
    ERRORS.admit(shared, endpoint, headers, |_| true)
}

/// Locks the state for a token request: counts it and applies a queued fault.
pub(crate) fn admit_token_request<'a>(
    shared: &'a Shared,
    invalid_scope: impl FnOnce() -> Response,
) -> Result<MutexGuard<'a, MockState>, Rejection> {
    ERRORS.admit_token_request(shared, "google.token", invalid_scope)
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
pub(crate) fn read_page(
    query: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<Page, Rejection> {
    let paging = Paging {
        size_parameter: "maxResults",
        token_parameter: "pageToken",
        default_size: default,
        max_size: max,
        above_max: AboveMax::Reject,
    };
    paging.read(query).map_err(|invalid| {
        let message = match invalid {
            InvalidPage::Size => "Invalid value for: maxResults",
            InvalidPage::Token => "Invalid page token",
        };
        google_error(
            StatusCode::BAD_REQUEST,
            "invalid",
            message,
            "INVALID_ARGUMENT",
        )
        .into()
    })
}

/// Builds a list body: `kind`, `etag` and, while items remain after `page`, `nextPageToken`.
pub(crate) fn list_body(kind: &str, etag: &str, page: &Page, total: usize) -> Value {
    let mut body = json!({"kind": kind, "etag": etag});
    if let Some(token) = page.next_token(total) {
        body["nextPageToken"] = json!(token);
    }
    body
}

/// Adds `items` to `body` under `field`, unless there are none: Google leaves out empty lists.
pub(crate) fn insert_list(body: &mut Value, field: &str, items: Vec<Value>) {
    if !items.is_empty() {
        body[field] = Value::Array(items);
    }
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
    let state = admit(&state, "google.users", &headers)?;
    if query.get("customer").map(String::as_str) != Some("my_customer")
        && !query.contains_key("domain")
    {
        return Err(bad_request());
    }
    let page = read_page(&query, DEFAULT_RESULTS, MAX_RESULTS)?;

    let users = &state.directory("google").users;
    let mut body = list_body("admin#directory#users", "\"directory\"", &page, users.len());
    // The mock keeps an empty `users` list, unlike the other lists.
    body["users"] = page.slice(users).map(render).collect();
    respond(&query, body)
}
