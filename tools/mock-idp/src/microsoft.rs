//! Microsoft identity platform (client-credentials token) and Microsoft Graph `/users` and
//! `/users/delta`. The submodules serve admin consent and the other Graph collections.

pub(crate) mod consent;
pub(crate) mod grants;
pub(crate) mod groups;
pub(crate) mod mail;
pub(crate) mod reports;

use std::collections::HashMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::directory::User;
use crate::state::{FaultKind, MockState};
use crate::urlencode::{HexCase, encode};
use crate::{Rejection, Shared, lock};

/// Graph's page size limit for `/users`.
const MAX_TOP: usize = 999;
const DEFAULT_TOP: usize = 100;

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

/// Counts a Graph data request, checks its bearer token and applies a queued fault. A fault for
/// an expired page token waits for a request that carries `$skiptoken`.
pub(crate) fn admit(
    state: &mut MockState,
    endpoint: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), Rejection> {
    let has_skip_token = query.contains_key("$skiptoken");
    let fault = state.record_where(endpoint, |kind| {
        *kind != FaultKind::ExpiredPageToken || has_skip_token
    });
    if !state.authorised(headers) {
        return Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty or invalid.",
        )
        .into());
    }
    match fault.and_then(fault_response) {
        Some(response) => Err(response.into()),
        None => Ok(()),
    }
}

/// The slice of a collection that a Graph list request selects.
pub(crate) struct Page {
    pub offset: usize,
    pub top: usize,
}

impl Page {
    /// Reads `$top` (1 to 999, default 100) and `$skiptoken`, or returns Graph's 400.
    pub(crate) fn from_query(query: &HashMap<String, String>) -> Result<Self, Rejection> {
        let top = match query.get("$top").map(|t| t.parse::<usize>()) {
            None => DEFAULT_TOP,
            Some(Ok(top)) if (1..=MAX_TOP).contains(&top) => top,
            Some(_) => {
                return Err(graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    "Invalid page size specified: '$top'. Must be between 1 and 999 inclusive.",
                )
                .into());
            }
        };
        let offset = match query.get("$skiptoken").map(|t| decode_offset(t)) {
            None => 0,
            Some(Some(offset)) => offset,
            Some(None) => {
                return Err(graph_error(
                    StatusCode::BAD_REQUEST,
                    "Directory_InvalidPageToken",
                    "The specified page token value is invalid.",
                )
                .into());
            }
        };
        Ok(Self { offset, top })
    }

    /// Returns this page of `items`.
    pub(crate) fn slice<'a, T>(&self, items: &'a [T]) -> impl Iterator<Item = &'a T> {
        items.iter().skip(self.offset).take(self.top)
    }
}

/// Builds a Graph collection body for the page of `total` items at `path`, with an
/// `@odata.nextLink` that repeats `$select` and `$filter` while items remain.
pub(crate) fn collection(
    state: &MockState,
    path: &str,
    context: &str,
    query: &HashMap<String, String>,
    page: &Page,
    total: usize,
    values: Vec<Value>,
) -> Value {
    let mut body = json!({"@odata.context": format!("{}/v1.0/$metadata#{context}", state.base_url), "value": values});
    if page.offset.saturating_add(page.top) < total {
        let mut next = format!(
            "{}{path}?$top={}&$skiptoken={}",
            state.base_url,
            page.top,
            encode_offset(page.offset + page.top)
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
pub(crate) fn not_found(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

pub async fn token(
    State(state): State<Shared>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let mut state = lock(&state)?;
    match state.record("microsoft.token") {
        Some(FaultKind::InvalidScope) => {
            let scope = form.get("scope").map(String::as_str).unwrap_or_default();
            return Err(identity_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                &format!("AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
            ).into());
        }
        Some(kind) => {
            if let Some(response) = fault_response(kind) {
                return Err(response.into());
            }
        }
        None => {}
    }
    let credentials = &state.config.credentials;
    if tenant != credentials.microsoft_tenant {
        return Err(identity_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS90002: Tenant not found.",
        )
        .into());
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return Err(identity_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        )
        .into());
    }
    if form.get("scope").map(String::as_str) != Some("https://graph.microsoft.com/.default") {
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
    let mut state = lock(&state)?;
    admit(&mut state, "microsoft.users", &headers, &query)?;
    let page = Page::from_query(&query)?;
    let select = select_fields(&query);
    let directory = state.directory("microsoft");
    let values: Vec<Value> = page
        .slice(&directory.users)
        .map(|u| render(u, &directory.domain, select.as_deref()))
        .collect();
    let body = collection(
        &state,
        "/v1.0/users",
        "users",
        &query,
        &page,
        directory.users.len(),
        values,
    );
    Ok(axum::Json(body).into_response())
}

/// `/users/delta`: without a token, every user page by page, ending in a deltaLink; with a
/// `$deltatoken`, the users changed and removed since it was issued.
pub async fn users_delta(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let mut state = lock(&state)?;
    let delta_token = query.get("$deltatoken");
    let fault = state.record_where("microsoft.users_delta", |kind| {
        *kind != FaultKind::ExpiredDeltaToken || delta_token.is_some()
    });
    if !state.authorised(&headers) {
        return Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty or invalid.",
        )
        .into());
    }
    if let Some(response) = fault.and_then(fault_response) {
        return Err(response.into());
    }
    let select = select_fields(&query);
    let directory = state.directory("microsoft");
    let select_query = query
        .get("$select")
        .map(|s| format!("&$select={s}"))
        .unwrap_or_default();

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
            .map(|u| render(u, &directory.domain, select.as_deref()))
            .collect();
        for (id, version) in &state.removed {
            if *version as usize > since {
                changes.push(json!({"id": id, "@removed": {"reason": "changed"}}));
            }
        }
        let link = format!(
            "{}/v1.0/users/delta?$deltatoken={}{select_query}",
            state.base_url,
            encode_offset(state.version as usize)
        );
        return Ok(axum::Json(json!({"@odata.context": format!("{}/v1.0/$metadata#users", state.base_url), "value": changes, "@odata.deltaLink": link})).into_response());
    }

    let top = query
        .get("$top")
        .and_then(|t| t.parse::<usize>().ok())
        .filter(|t| (1..=MAX_TOP).contains(t))
        .unwrap_or(DEFAULT_TOP);
    let offset = query
        .get("$skiptoken")
        .and_then(|t| decode_offset(t))
        .unwrap_or(0);
    let page: Vec<Value> = directory
        .users
        .iter()
        .skip(offset)
        .take(top)
        .map(|u| render(u, &directory.domain, select.as_deref()))
        .collect();
    let mut body = json!({"@odata.context": format!("{}/v1.0/$metadata#users", state.base_url), "value": page});
    if offset.saturating_add(top) < directory.users.len() {
        body["@odata.nextLink"] = json!(format!(
            "{}/v1.0/users/delta?$top={top}&$skiptoken={}{select_query}",
            state.base_url,
            encode_offset(offset + top)
        ));
    } else {
        body["@odata.deltaLink"] = json!(format!(
            "{}/v1.0/users/delta?$deltatoken={}{select_query}",
            state.base_url,
            encode_offset(state.version as usize)
        ));
    }
    Ok(axum::Json(body).into_response())
}

pub fn encode_offset(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

pub fn decode_offset(token: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("o:")?
        .parse()
        .ok()
}
