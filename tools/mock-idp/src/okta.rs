//! Okta's OAuth token endpoint (client credentials) and `/api/v1/users`, with the error format
//! and `Link` paging that the other Okta endpoints share. The submodules serve groups, apps and
//! factors.

pub(crate) mod apps;
pub(crate) mod expression;
pub(crate) mod factors;
pub(crate) mod groups;

use std::collections::HashMap;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::directory::{AccountState, User};
use crate::microsoft::{decode_offset, encode_offset};
use crate::state::{FaultKind, MockState};
use crate::urlencode::{HexCase, encode};
use crate::{Rejection, Shared, lock};
use expression::Expression;

/// Okta's maximum `limit` for `/api/v1/users`.
const MAX_LIMIT: usize = 200;
/// The `lastUpdated` of users whose `last_updated` is unset.
const DEFAULT_LAST_UPDATED: &str = "2026-11-30T08:12:00.000Z";

pub(crate) fn okta_error(status: StatusCode, code: &str, summary: &str) -> Response {
    let body = json!({"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": "oae0000000000000000", "errorCauses": []});
    (status, axum::Json(body)).into_response()
}

fn fault_response(kind: FaultKind) -> Option<Response> {
    let response = match kind {
        FaultKind::OktaRateLimit { reset_after_seconds } => {
            let now = chrono::Utc::now();
            let mut response = okta_error(StatusCode::TOO_MANY_REQUESTS, "E0000047", "API call exceeded rate limit due to too many requests.");
            let headers = response.headers_mut();
            headers.insert("x-rate-limit-limit", HeaderValue::from_static("600"));
            headers.insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
            headers.insert("x-rate-limit-reset", HeaderValue::from((now.timestamp() + reset_after_seconds).max(0)));
            if let Ok(date) = HeaderValue::from_str(&now.format("%a, %d %b %Y %H:%M:%S GMT").to_string()) {
                headers.insert("date", date);
            }
            response
        }
        FaultKind::ServerError => okta_error(StatusCode::SERVICE_UNAVAILABLE, "E0000009", "Internal Server Error"),
        FaultKind::OktaForbidden => okta_error(StatusCode::FORBIDDEN, "E0000006", "You do not have permission to perform the requested action"),
        FaultKind::InvalidGrant => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant", "error_description": "The credentials provided were invalid."}))).into_response(),
        FaultKind::UnauthorizedClient => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "unauthorized_client", "error_description": "The client is not authorized to use the provided grant type."}))).into_response(),
        _ => return None,
    };
    Some(response)
}

/// Counts an Okta management API request, checks its bearer token and applies a queued fault.
pub(crate) fn admit(
    state: &mut MockState,
    endpoint: &str,
    headers: &HeaderMap,
) -> Result<(), Rejection> {
    let fault = state.record(endpoint);
    if !state.authorised(headers) {
        return Err(okta_error(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            "Invalid token provided",
        )
        .into());
    }
    match fault.and_then(fault_response) {
        Some(response) => Err(response.into()),
        None => Ok(()),
    }
}

/// Reads `limit` (`default` when absent, values above `max` lowered to it) and the `after`
/// cursor, or returns Okta's 400.
pub(crate) fn page_bounds(
    query: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<(usize, usize), Rejection> {
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => default,
        Some(Ok(limit)) if limit >= 1 => limit.min(max),
        Some(_) => {
            return Err(okta_error(
                StatusCode::BAD_REQUEST,
                "E0000001",
                "Api validation failed: limit",
            )
            .into());
        }
    };
    let offset = match query.get("after").map(|a| decode_offset(a)) {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => {
            return Err(okta_error(
                StatusCode::BAD_REQUEST,
                "E0000001",
                "Api validation failed: after",
            )
            .into());
        }
    };
    Ok((offset, limit))
}

/// Sends a page as a JSON array with Okta's `Link` headers: `self`, and `next` while items
/// remain. Both repeat `params`, the request's other query parameters.
pub(crate) fn paged_response(
    base_url: &str,
    path: &str,
    params: &[(&str, &str)],
    (offset, limit): (usize, usize),
    total: usize,
    page: Vec<Value>,
) -> Response {
    let extra: String = params
        .iter()
        .map(|(name, value)| format!("&{name}={}", encode(value, HexCase::Upper)))
        .collect();
    let mut response = axum::Json(Value::Array(page)).into_response();
    let self_link = format!("<{base_url}{path}?limit={limit}{extra}>; rel=\"self\"");
    if let Ok(value) = HeaderValue::from_str(&self_link) {
        response.headers_mut().append("link", value);
    }
    if offset.saturating_add(limit) < total {
        let next = format!(
            "<{base_url}{path}?after={}&limit={limit}{extra}>; rel=\"next\"",
            encode_offset(offset + limit)
        );
        if let Ok(value) = HeaderValue::from_str(&next) {
            response.headers_mut().append("link", value);
        }
    }
    response
}

/// Okta's 404 for an id that names no object of `kind` (`User`, `UserGroup`, `AppInstance`).
pub(crate) fn not_found(id: &str, kind: &str) -> Response {
    okta_error(
        StatusCode::NOT_FOUND,
        "E0000007",
        &format!("Not found: Resource not found: {id} ({kind})"),
    )
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Rejection {
    let body = json!({"error": error, "error_description": description});
    (status, axum::Json(body)).into_response().into()
}

fn invalid_client() -> Rejection {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Invalid value for 'client_id' parameter.",
    )
}

/// Reads the client credentials from HTTP Basic authentication (`client_secret_basic`) or from
/// the form (`client_secret_post`). Okta rejects a request that uses both.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(String, String), Rejection> {
    let Some(header) = headers.get("authorization") else {
        let id = form.get("client_id").cloned().unwrap_or_default();
        let secret = form.get("client_secret").cloned().unwrap_or_default();
        return Ok((id, secret));
    };
    if form.contains_key("client_secret") {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Cannot supply multiple client credentials. Use one of the following: credentials in the Authorization header, credentials in the post body, or a client_assertion in the post body.",
        ));
    }
    let decoded = header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match decoded.as_deref().and_then(|pair| pair.split_once(':')) {
        Some((id, secret)) => Ok((id.to_owned(), secret.to_owned())),
        None => Err(invalid_client()),
    }
}

pub async fn token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let mut state = lock(&state)?;
    match state.record("okta.token") {
        Some(FaultKind::InvalidScope) => {
            let scope = form.get("scope").map(String::as_str).unwrap_or_default();
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                &format!("The following scopes are not allowed: {scope}"),
            ));
        }
        Some(kind) => {
            if let Some(response) = fault_response(kind) {
                return Err(response.into());
            }
        }
        None => {}
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported.",
        ));
    }
    let (client_id, client_secret) = client_credentials(&headers, &form)?;
    let credentials = &state.config.credentials;
    if client_id != credentials.okta_client_id || client_secret != credentials.okta_client_secret {
        return Err(invalid_client());
    }
    let token = state.issue_token();
    let scope = form
        .get("scope")
        .cloned()
        .unwrap_or_else(|| "okta.users.read".to_owned());
    Ok(axum::Json(
        json!({"token_type": "Bearer", "expires_in": 3600, "access_token": token, "scope": scope}),
    )
    .into_response())
}

pub(crate) fn status(user: &User) -> &'static str {
    match user.state {
        AccountState::Active => "ACTIVE",
        AccountState::Suspended | AccountState::Archived => "SUSPENDED",
        AccountState::Deprovisioned => "DEPROVISIONED",
    }
}

pub(crate) fn last_updated(user: &User) -> &str {
    user.last_updated.as_deref().unwrap_or(DEFAULT_LAST_UPDATED)
}

pub(crate) fn render(user: &User) -> Value {
    json!({
        "id": user.id,
        "status": status(user),
        "created": "2024-01-15T09:00:00.000Z",
        "activated": "2024-01-15T09:05:00.000Z",
        "statusChanged": "2024-01-15T09:05:00.000Z",
        "lastLogin": "2026-11-30T08:12:00.000Z",
        "lastUpdated": last_updated(user),
        "passwordChanged": "2024-01-15T09:05:00.000Z",
        "type": {"id": "oty1a2b3c4d5e6f7g8h9"},
        "profile": {"firstName": user.given_name, "lastName": user.family_name, "login": user.email, "email": user.email, "secondEmail": user.aliases.first(), "mobilePhone": null},
        "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
        "_links": {"self": {"href": format!("/api/v1/users/{}", user.id)}},
    })
}

/// Lists users. Like Okta, the list leaves out DEPROVISIONED users unless the request has a
/// `filter` or `search` expression, which then decides. The next page is only in a `Link`
/// header.
pub async fn users(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let mut state = lock(&state)?;
    admit(&mut state, "okta.users", &headers)?;
    let bounds = page_bounds(&query, MAX_LIMIT, MAX_LIMIT)?;
    let mut expressions = Vec::new();
    let mut params: Vec<(&str, &str)> = Vec::new();
    for name in ["filter", "search"] {
        let Some(text) = query.get(name) else {
            continue;
        };
        let Some(expression) = Expression::parse(text) else {
            return Err(okta_error(
                StatusCode::BAD_REQUEST,
                "E0000031",
                "Invalid search criteria.",
            )
            .into());
        };
        expressions.push(expression);
        params.push((name, text));
    }

    let matching: Vec<&User> = state
        .directory("okta")
        .users
        .iter()
        .filter(|u| {
            if expressions.is_empty() {
                u.state != AccountState::Deprovisioned
            } else {
                expressions.iter().all(|e| e.matches(u))
            }
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(bounds.0)
        .take(bounds.1)
        .map(|u| render(u))
        .collect();
    Ok(paged_response(
        &state.base_url,
        "/api/v1/users",
        &params,
        bounds,
        matching.len(),
        page,
    ))
}
