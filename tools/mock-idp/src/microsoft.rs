//! Microsoft identity platform (client-credentials token) and Microsoft Graph `/users` and
//! `/users/delta`. The submodules serve admin consent and the other Graph collections.

pub(crate) mod consent;
pub(crate) mod grants;
pub(crate) mod groups;
pub(crate) mod mail;
pub(crate) mod reports;

use std::collections::HashMap;
use std::sync::MutexGuard;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::admission::ErrorFormat;
use crate::directory::User;
use crate::paging::{AboveMax, InvalidPage, Page, Paging, decode_offset, encode_offset};
use crate::state::{FaultKind, MockState};
use crate::urlencode::{HexCase, encode};
use crate::{Rejection, Shared, parameter};

/// Graph's paging, with the `$top` limits of `/users` (1 to 999, 100 by default), which the mock
/// applies to every Graph list.
const PAGING: Paging = Paging {
    size_parameter: "$top",
    token_parameter: "$skiptoken",
    default_size: 100,
    max_size: 999,
    above_max: AboveMax::Reject,
};

const ERRORS: ErrorFormat = ErrorFormat {
    unauthorized,
    fault: fault_response,
};

pub(crate) fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "innerError": {"date": chrono::Utc::now().to_rfc3339(), "request-id": "00000000-0000-0000-0000-000000000000"}}});
    (status, axum::Json(body)).into_response()
}

/// Builds an identity platform error. `error_codes` repeats the number of the description's
/// `AADSTS` prefix, as Microsoft does.
pub(crate) fn identity_error(status: StatusCode, error: &str, description: &str) -> Response {
    let codes: Vec<u32> = description
        .strip_prefix("AADSTS")
        .and_then(|rest| rest.split(':').next())
        .and_then(|code| code.parse().ok())
        .into_iter()
        .collect();
    (status, axum::Json(json!({"error": error, "error_description": description, "error_codes": codes, "timestamp": chrono::Utc::now().to_rfc3339()}))).into_response()
}

fn unauthorized() -> Response {
    graph_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        "Access token is empty or invalid.",
    )
}

/// Builds the response for a fault in Microsoft's formats. Returns `None` for faults of other
/// providers, which let the request through.
fn fault_response(kind: FaultKind) -> Option<Response> {
    let response = match kind {
        FaultKind::Throttle { retry_after } => {
            let mut response = graph_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests.",
            );
            if let Some(value) = retry_after.and_then(|v| v.parse().ok()) {
                response.headers_mut().insert("retry-after", value);
            }
            response
        }
        FaultKind::ServerError => graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
        ),
        FaultKind::ExpiredPageToken => graph_error(
            StatusCode::BAD_REQUEST,
            "Directory_ExpiredPageToken",
            "The specified page token value has expired and can no longer be included in your request.",
        ),
        FaultKind::ExpiredDeltaToken => graph_error(
            StatusCode::GONE,
            "SyncStateNotFound",
            "The sync state generation is not found. Delta tokens may have expired; start a new full sync.",
        ),
        FaultKind::InvalidGrant => identity_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "AADSTS7000215: Invalid client secret provided.",
        ),
        FaultKind::UnauthorizedClient => identity_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "AADSTS700016: Application not found in the directory.",
        ),
        FaultKind::OktaRateLimit { .. }
        | FaultKind::GoogleForbidden { .. }
        | FaultKind::OktaForbidden
        | FaultKind::InvalidScope
        | FaultKind::ConsentDeclined
        | FaultKind::ConsentCancelled => return None,
    };
    Some(response)
}

/// Locks the state for a Graph data request: counts it, checks its bearer token and applies a
/// queued fault. A fault for an expired page token waits for a request that carries
/// `$skiptoken`.
pub(crate) fn admit<'a>(
    shared: &'a Shared,
    endpoint: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<MutexGuard<'a, MockState>, Rejection> {
    let has_skip_token = query.contains_key("$skiptoken");
    ERRORS.admit(shared, endpoint, headers, |kind| {
        *kind != FaultKind::ExpiredPageToken || has_skip_token
    })
}

/// Reads `$top` (1 to 999, default 100) and `$skiptoken`, or returns Graph's 400.
pub(crate) fn read_page(query: &HashMap<String, String>) -> Result<Page, Rejection> {
    PAGING.read(query).map_err(|invalid| {
        let response = match invalid {
            InvalidPage::Size => graph_error(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Invalid page size specified: '$top'. Must be between 1 and 999 inclusive.",
            ),
            InvalidPage::Token => graph_error(
                StatusCode::BAD_REQUEST,
                "Directory_InvalidPageToken",
                "The specified page token value is invalid.",
            ),
        };
        response.into()
    })
}

fn context_url(state: &MockState, context: &str) -> String {
    format!("{}/v1.0/$metadata#{context}", state.base_url)
}

/// Builds a Graph collection body with the page of `items` at `path`, each rendered by
/// `render`, and an `@odata.nextLink` that repeats `$select` and `$filter` while items remain.
pub(crate) fn collection<T>(
    state: &MockState,
    path: &str,
    context: &str,
    query: &HashMap<String, String>,
    page: &Page,
    items: &[T],
    render: impl FnMut(&T) -> Value,
) -> Value {
    let values: Vec<Value> = page.slice(items).map(render).collect();
    let mut body = json!({"@odata.context": context_url(state, context), "value": values});
    if let Some(next_token) = page.next_token(items.len()) {
        let mut next = format!(
            "{}{path}?$top={}&$skiptoken={next_token}",
            state.base_url, page.size
        );
        if let Some(select) = query.get("$select") {
            next.push_str(&format!("&$select={select}"));
        }
        if let Some(filter) = query.get("$filter") {
            next.push_str(&format!("&$filter={}", encode(filter, HexCase::Upper)));
        }
        body["@odata.nextLink"] = json!(next);
    }
    body
}

/// Keeps the properties named in `$select`, or the `default` set without one.
pub(crate) fn select(
    all: Map<String, Value>,
    select: Option<&[String]>,
    default: &[&str],
) -> Value {
    let selected: Vec<&str> = match select {
        Some(fields) => fields.iter().map(String::as_str).collect(),
        None => default.to_vec(),
    };
    Value::Object(
        all.into_iter()
            .filter(|(k, _)| selected.contains(&k.as_str()))
            .collect(),
    )
}

/// Finds a user by object id or, case-insensitively, by user principal name, as Graph's
/// `/users/{id | userPrincipalName}` does.
pub(crate) fn find_user<'a>(users: &'a [User], domain: &str, key: &str) -> Option<&'a User> {
    users
        .iter()
        .find(|u| u.id == key || user_principal_name(u, domain).eq_ignore_ascii_case(key))
}

/// Graph's 404 for an id that names no object.
pub(crate) fn not_found(id: &str) -> Rejection {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
    .into()
}

pub async fn token(
    State(state): State<Shared>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let mut state = ERRORS.admit_token_request(&state, "microsoft.token", || {
        identity_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!(
                "AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope {} is not valid.",
                parameter(&form, "scope")
            ),
        )
    })?;
    let credentials = &state.config.credentials;
    if tenant != credentials.microsoft_tenant {
        return Err(identity_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS90002: Tenant not found.",
        )
        .into());
    }
    if parameter(&form, "grant_type") != "client_credentials" {
        return Err(identity_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        )
        .into());
    }
    if parameter(&form, "scope") != "https://graph.microsoft.com/.default" {
        return Err(identity_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid.",
        )
        .into());
    }
    let client_ok = form.get("client_id") == Some(&credentials.microsoft_client_id)
        && form.get("client_secret") == Some(&credentials.microsoft_client_secret);
    if !client_ok {
        return Err(identity_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        )
        .into());
    }
    let token = state.issue_token();
    Ok(axum::Json(json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})).into_response())
}

/// Returns a user's principal name: the address, or for a guest the `#EXT#` form.
pub(crate) fn user_principal_name(user: &User, domain: &str) -> String {
    if user.guest {
        format!(
            "{}#EXT#@{}.onmicrosoft.com",
            user.email.replace('@', "_"),
            domain.split('.').next().unwrap_or("tenant")
        )
    } else {
        user.email.clone()
    }
}

/// The properties Graph returns for a user without `$select`.
pub(crate) const DEFAULT_USER_PROPERTIES: [&str; 6] = [
    "id",
    "displayName",
    "givenName",
    "surname",
    "userPrincipalName",
    "mail",
];

/// Renders a user with the properties named in `$select` (Graph returns only those; without
/// `$select` it returns its default set, which lacks `accountEnabled` and `userType`).
pub(crate) fn render(user: &User, domain: &str, select: Option<&[String]>) -> Value {
    self::select(
        user_properties(user, domain),
        select,
        &DEFAULT_USER_PROPERTIES,
    )
}

fn user_properties(user: &User, domain: &str) -> Map<String, Value> {
    let upn = user_principal_name(user, domain);
    let mut all = Map::new();
    all.insert("id".into(), json!(user.id));
    all.insert(
        "displayName".into(),
        json!(format!("{} {}", user.given_name, user.family_name)),
    );
    all.insert("givenName".into(), json!(user.given_name));
    all.insert("surname".into(), json!(user.family_name));
    all.insert("userPrincipalName".into(), json!(upn));
    all.insert(
        "mail".into(),
        if user.has_mailbox {
            json!(user.email)
        } else {
            Value::Null
        },
    );
    all.insert("otherMails".into(), json!(user.aliases));
    all.insert(
        "proxyAddresses".into(),
        json!(
            user.aliases
                .iter()
                .map(|a| format!("smtp:{a}"))
                .collect::<Vec<_>>()
        ),
    );
    all.insert(
        "accountEnabled".into(),
        json!(user.state == crate::AccountState::Active),
    );
    all.insert(
        "userType".into(),
        json!(if user.guest { "Guest" } else { "Member" }),
    );
    all
}

pub(crate) fn select_fields(query: &HashMap<String, String>) -> Option<Vec<String>> {
    query.get("$select").map(|s| {
        s.split(',')
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .collect()
    })
}

pub async fn users(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = admit(&state, "microsoft.users", &headers, &query)?;
    let page = read_page(&query)?;
    let select = select_fields(&query);
    let directory = state.directory("microsoft");
    let body = collection(
        &state,
        "/v1.0/users",
        "users",
        &query,
        &page,
        &directory.users,
        |u| render(u, &directory.domain, select.as_deref()),
    );
    Ok(axum::Json(body).into_response())
}

/// Returns the link to the changes after the current directory version, repeating `$select`.
fn delta_link(state: &MockState, query: &HashMap<String, String>) -> String {
    let mut link = format!(
        "{}/v1.0/users/delta?$deltatoken={}",
        state.base_url,
        encode_offset(state.version as usize)
    );
    if let Some(select) = query.get("$select") {
        link.push_str(&format!("&$select={select}"));
    }
    link
}

/// `/users/delta`: without a token, every user page by page, ending in a deltaLink; with a
/// `$deltatoken`, the users changed and removed since it was issued; with `$deltatoken=latest`,
/// only a deltaLink from now on.
pub async fn users_delta(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let has_skip_token = query.contains_key("$skiptoken");
    let delta_token = query.get("$deltatoken");
    // A token fault waits for a request that carries that kind of token.
    let state = ERRORS.admit(
        &state,
        "microsoft.users_delta",
        &headers,
        |kind| match kind {
            FaultKind::ExpiredPageToken => has_skip_token,
            FaultKind::ExpiredDeltaToken => delta_token.is_some(),
            _ => true,
        },
    )?;
    let select = select_fields(&query);
    let directory = state.directory("microsoft");
    let render_user = |u: &User| render(u, &directory.domain, select.as_deref());

    // `$deltatoken=latest` returns no users and a deltaLink for changes from now on.
    if delta_token.is_some_and(|t| t == "latest") {
        let body = json!({"@odata.context": context_url(&state, "users"), "value": [], "@odata.deltaLink": delta_link(&state, &query)});
        return Ok(axum::Json(body).into_response());
    }
    if let Some(token) = delta_token {
        let Some(since) = decode_offset(token) else {
            return Err(graph_error(
                StatusCode::BAD_REQUEST,
                "badRequest",
                "The delta token is not valid.",
            )
            .into());
        };
        let mut changes: Vec<Value> = directory
            .users
            .iter()
            .filter(|u| {
                state
                    .changed_at
                    .get(&u.id)
                    .is_some_and(|v| *v as usize > since)
            })
            .map(render_user)
            .collect();
        for (id, version) in &state.removed {
            if *version as usize > since {
                changes.push(json!({"id": id, "@removed": {"reason": "changed"}}));
            }
        }
        let body = json!({"@odata.context": context_url(&state, "users"), "value": changes, "@odata.deltaLink": delta_link(&state, &query)});
        return Ok(axum::Json(body).into_response());
    }

    // NOTE: unlike `/users`, the initial delta sync falls back to the default for an invalid
    // `$top` or `$skiptoken` instead of returning 400.
    let page = Page {
        offset: PAGING.read_offset(&query).unwrap_or(0),
        size: PAGING.read_size(&query).unwrap_or(PAGING.default_size),
    };
    let mut body = collection(
        &state,
        "/v1.0/users/delta",
        "users",
        &query,
        &page,
        &directory.users,
        render_user,
    );
    if body.get("@odata.nextLink").is_none() {
        body["@odata.deltaLink"] = json!(delta_link(&state, &query));
    }
    Ok(axum::Json(body).into_response())
}
