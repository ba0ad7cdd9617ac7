//! Okta's OAuth token endpoint (client credentials) and `/api/v1/users`, with the error format
//! and `Link` paging that the other Okta endpoints share. The submodules serve groups, apps and
//! factors.

pub(crate) mod apps;
pub(crate) mod expression;
pub(crate) mod factors;
pub(crate) mod groups;
pub(crate) mod logs;

use std::collections::HashMap;
use std::sync::MutexGuard;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::admission::ErrorFormat;
use crate::directory::{AccountState, User};
use crate::oauth::oauth_error;
use crate::paging::{AboveMax, InvalidPage, Page, Paging};
use crate::state::{FaultKind, MockState};
use crate::urlencode::{HexCase, encode};
use crate::{Rejection, Shared, parameter};
use expression::Expression;

/// Okta's maximum `limit` for `/api/v1/users`.
const MAX_LIMIT: usize = 200;
/// The `lastUpdated` of users whose `last_updated` is unset.
const DEFAULT_LAST_UPDATED: &str = "2026-11-30T08:12:00.000Z";

const ERRORS: ErrorFormat = ErrorFormat {
    unauthorized,
    fault: fault_response,
};

pub(crate) fn okta_error(status: StatusCode, code: &str, summary: &str) -> Response {
    let body = json!({"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": "oae0000000000000000", "errorCauses": []});
    (status, axum::Json(body)).into_response()
}

fn unauthorized() -> Response {
    okta_error(
        StatusCode::UNAUTHORIZED,
        "E0000011",
        "Invalid token provided",
    )
}

/// Builds Okta's 429. `Date` and `X-Rate-Limit-Reset` use the server's clock, which runs
/// `server_clock_offset_seconds` away from the real time, so that a test can put it behind or
/// ahead of the client's clock.
fn rate_limit(reset_after_seconds: i64, server_clock_offset_seconds: i64) -> Response {
    let server_now = chrono::Utc::now()
        .timestamp()
        .saturating_add(server_clock_offset_seconds);
    let reset = server_now.saturating_add(reset_after_seconds).max(0);
    let mut response = okta_error(
        StatusCode::TOO_MANY_REQUESTS,
        "E0000047",
        "API call exceeded rate limit due to too many requests.",
    );
    let headers = response.headers_mut();
    headers.insert("x-rate-limit-limit", HeaderValue::from_static("600"));
    headers.insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
    headers.insert("x-rate-limit-reset", HeaderValue::from(reset));
    // A server time that chrono cannot represent gets no `Date` here, so hyper adds one with the
    // real time.
    let date = chrono::DateTime::from_timestamp(server_now, 0)
        .map(|time| time.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .and_then(|text| HeaderValue::from_str(&text).ok());
    if let Some(date) = date {
        headers.insert("date", date);
    }
    response
}

fn fault_response(kind: FaultKind) -> Option<Response> {
    let response = match kind {
        FaultKind::OktaRateLimit {
            reset_after_seconds,
            server_clock_offset_seconds,
        } => rate_limit(reset_after_seconds, server_clock_offset_seconds),
        FaultKind::ServerError => okta_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "E0000009",
            "Internal Server Error",
        ),
        FaultKind::OktaForbidden => okta_error(
            StatusCode::FORBIDDEN,
            "E0000006",
            "You do not have permission to perform the requested action",
        ),
        FaultKind::InvalidGrant => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The credentials provided were invalid.",
        ),
        FaultKind::UnauthorizedClient => oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "The client is not authorized to use the provided grant type.",
        ),
        _ => return None,
    };
    Some(response)
}

/// Locks the state for an Okta management API request: counts it, checks its bearer token and
/// applies a queued fault.
pub(crate) fn admit<'a>(
    shared: &'a Shared,
    endpoint: &str,
    headers: &HeaderMap,
) -> Result<MutexGuard<'a, MockState>, Rejection> {
    ERRORS.admit(shared, endpoint, headers, |_| true)
}

/// Reads `limit` (`default` when absent, values above `max` lowered to it) and the `after`
/// cursor, or returns Okta's 400.
pub(crate) fn read_page(
    query: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<Page, Rejection> {
    let paging = Paging {
        size_parameter: "limit",
        token_parameter: "after",
        default_size: default,
        max_size: max,
        above_max: AboveMax::Lower,
    };
    paging.read(query).map_err(|invalid| {
        let parameter = match invalid {
            InvalidPage::Size => "limit",
            InvalidPage::Token => "after",
        };
        okta_error(
            StatusCode::BAD_REQUEST,
            "E0000001",
            &format!("Api validation failed: {parameter}"),
        )
        .into()
    })
}

/// Sends the page of `items`, each rendered by `render`, as a JSON array with Okta's `Link`
/// headers: `self`, and `next` while items remain. Both repeat `params`, the request's other
/// query parameters.
pub(crate) fn paged_response<T>(
    base_url: &str,
    path: &str,
    params: &[(&str, &str)],
    page: Page,
    items: &[T],
    render: impl FnMut(&T) -> Value,
) -> Response {
    let extra: String = params
        .iter()
        .map(|(name, value)| format!("&{name}={}", encode(value, HexCase::Upper)))
        .collect();
    let limit = page.size;
    let values: Vec<Value> = page.slice(items).map(render).collect();
    let mut response = axum::Json(Value::Array(values)).into_response();
    let self_link = format!("<{base_url}{path}?limit={limit}{extra}>; rel=\"self\"");
    if let Ok(value) = HeaderValue::from_str(&self_link) {
        response.headers_mut().append("link", value);
    }
    if let Some(after) = page.next_token(items.len()) {
        let next = format!("<{base_url}{path}?after={after}&limit={limit}{extra}>; rel=\"next\"");
        if let Ok(value) = HeaderValue::from_str(&next) {
            response.headers_mut().append("link", value);
        }
    }
    response
}

/// Okta's 404 for an id that names no object of `kind` (`User`, `UserGroup`, `AppInstance`).
pub(crate) fn not_found(id: &str, kind: &str) -> Rejection {
    okta_error(
        StatusCode::NOT_FOUND,
        "E0000007",
        &format!("Not found: Resource not found: {id} ({kind})"),
    )
    .into()
}

fn invalid_client() -> Rejection {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Invalid value for 'client_id' parameter.",
    )
    .into()
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
        ).into());
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
    let mut state = ERRORS.admit_token_request(&state, "okta.token", || {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!(
                "The following scopes are not allowed: {}",
                parameter(&form, "scope")
            ),
        )
    })?;
    if parameter(&form, "grant_type") != "client_credentials" {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported.",
        )
        .into());
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
    let state = admit(&state, "okta.users", &headers)?;
    let page = read_page(&query, MAX_LIMIT, MAX_LIMIT)?;
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
    Ok(paged_response(
        &state.base_url,
        "/api/v1/users",
        &params,
        page,
        &matching,
        |u| render(u),
    ))
}
