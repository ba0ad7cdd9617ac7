//! Okta's OAuth token endpoint (client credentials) and `/api/v1/users`.

use std::collections::HashMap;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::Shared;
use crate::directory::{AccountState, User};
use crate::microsoft::{decode_offset, encode_offset};
use crate::state::FaultKind;

/// Okta's maximum `limit` for `/api/v1/users`.
const MAX_LIMIT: usize = 200;

fn okta_error(status: StatusCode, code: &str, summary: &str) -> Response {
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
        FaultKind::InvalidGrant => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant", "error_description": "The credentials provided were invalid."}))).into_response(),
        FaultKind::UnauthorizedClient => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "unauthorized_client", "error_description": "The client is not authorized to use the provided grant type."}))).into_response(),
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
    if let Some(response) = state.record("okta.token").and_then(fault_response) {
        return response;
    }
    let credentials = &state.config.credentials;
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "unsupported_grant_type", "error_description": "The authorization grant type is not supported."}))).into_response();
    }
    let client_ok = form.get("client_id") == Some(&credentials.okta_client_id)
        && form.get("client_secret") == Some(&credentials.okta_client_secret);
    if !client_ok {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client", "error_description": "Invalid value for 'client_id' parameter."}))).into_response();
    }
    let token = state.issue_token();
    let scope = form
        .get("scope")
        .cloned()
        .unwrap_or_else(|| "okta.users.read".to_owned());
    axum::Json(
        json!({"token_type": "Bearer", "expires_in": 3600, "access_token": token, "scope": scope}),
    )
    .into_response()
}

fn render(user: &User) -> Value {
    let status = match user.state {
        AccountState::Active => "ACTIVE",
        AccountState::Suspended | AccountState::Archived => "SUSPENDED",
        AccountState::Deprovisioned => "DEPROVISIONED",
    };
    json!({
        "id": user.id,
        "status": status,
        "created": "2024-01-15T09:00:00.000Z",
        "activated": "2024-01-15T09:05:00.000Z",
        "statusChanged": "2024-01-15T09:05:00.000Z",
        "lastLogin": "2026-11-30T08:12:00.000Z",
        "lastUpdated": "2026-11-30T08:12:00.000Z",
        "passwordChanged": "2024-01-15T09:05:00.000Z",
        "type": {"id": "oty1a2b3c4d5e6f7g8h9"},
        "profile": {"firstName": user.given_name, "lastName": user.family_name, "login": user.email, "email": user.email, "secondEmail": user.aliases.first(), "mobilePhone": null},
        "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
        "_links": {"self": {"href": format!("/api/v1/users/{}", user.id)}},
    })
}

/// Lists users. Like Okta, the default list leaves out DEPROVISIONED users; the filter
/// `status eq "DEPROVISIONED"` lists only them. The next page is only in a `Link` header.
pub async fn users(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Ok(mut state) = state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let fault = state.record("okta.users");
    if !state.authorised(&headers) {
        return okta_error(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            "Invalid token provided",
        );
    }
    if let Some(response) = fault.and_then(fault_response) {
        return response;
    }
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => MAX_LIMIT,
        Some(Ok(limit)) if limit >= 1 => limit.min(MAX_LIMIT),
        Some(_) => {
            return okta_error(
                StatusCode::BAD_REQUEST,
                "E0000001",
                "Api validation failed: limit",
            );
        }
    };
    let deprovisioned_only = match query.get("filter").map(String::as_str) {
        None => false,
        Some("status eq \"DEPROVISIONED\"") => true,
        Some(_) => {
            return okta_error(
                StatusCode::BAD_REQUEST,
                "E0000031",
                "Invalid search criteria.",
            );
        }
    };
    let offset = match query.get("after").map(|a| decode_offset(a)) {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => {
            return okta_error(
                StatusCode::BAD_REQUEST,
                "E0000001",
                "Api validation failed: after",
            );
        }
    };

    let matching: Vec<&User> = state
        .directory("okta")
        .users
        .iter()
        .filter(|u| (u.state == AccountState::Deprovisioned) == deprovisioned_only)
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|u| render(u))
        .collect();
    let filter = query
        .get("filter")
        .map(|f| format!("&filter={}", f.replace('"', "%22").replace(' ', "%20")))
        .unwrap_or_default();
    let mut response = axum::Json(Value::Array(page)).into_response();
    let self_link = format!(
        "<{}/api/v1/users?limit={limit}{filter}>; rel=\"self\"",
        state.base_url
    );
    if let Ok(value) = HeaderValue::from_str(&self_link) {
        response.headers_mut().append("link", value);
    }
    if offset + limit < matching.len() {
        let next = format!(
            "<{}/api/v1/users?after={}&limit={limit}{filter}>; rel=\"next\"",
            state.base_url,
            encode_offset(offset + limit)
        );
        if let Ok(value) = HeaderValue::from_str(&next) {
            response.headers_mut().append("link", value);
        }
    }
    response
}
