//! Microsoft identity platform (client-credentials token) and Microsoft Graph `/users` and
//! `/users/delta`.

use std::collections::HashMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::Shared;
use crate::directory::User;
use crate::state::FaultKind;

/// Graph's page size limit for `/users`.
const MAX_TOP: usize = 999;
const DEFAULT_TOP: usize = 100;

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "innerError": {"date": chrono::Utc::now().to_rfc3339(), "request-id": "00000000-0000-0000-0000-000000000000"}}});
    (status, axum::Json(body)).into_response()
}

fn identity_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, axum::Json(json!({"error": error, "error_description": description, "error_codes": [], "timestamp": chrono::Utc::now().to_rfc3339()}))).into_response()
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
        FaultKind::OktaRateLimit { .. } | FaultKind::GoogleForbidden { .. } => return None,
    };
    Some(response)
}

pub async fn token(
    State(state): State<Shared>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Ok(mut state) = state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Some(response) = state.record("microsoft.token").and_then(fault_response) {
        return response;
    }
    let credentials = &state.config.credentials;
    if tenant != credentials.microsoft_tenant {
        return identity_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS90002: Tenant not found.",
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return identity_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    if form.get("scope").map(String::as_str) != Some("https://graph.microsoft.com/.default") {
        return identity_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid.",
        );
    }
    let client_ok = form.get("client_id") == Some(&credentials.microsoft_client_id)
        && form.get("client_secret") == Some(&credentials.microsoft_client_secret);
    if !client_ok {
        return identity_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        );
    }
    let token = state.issue_token();
    axum::Json(json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})).into_response()
}

/// Renders a user with the properties named in `$select` (Graph returns only those; without
/// `$select` it returns its default set, which lacks `accountEnabled` and `userType`).
fn render(user: &User, domain: &str, select: Option<&[String]>) -> Value {
    let upn = if user.guest {
        format!(
            "{}#EXT#@{}.onmicrosoft.com",
            user.email.replace('@', "_"),
            domain.split('.').next().unwrap_or("tenant")
        )
    } else {
        user.email.clone()
    };
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
    const DEFAULT: [&str; 6] = [
        "id",
        "displayName",
        "givenName",
        "surname",
        "userPrincipalName",
        "mail",
    ];
    let selected: Vec<&str> = match select {
        Some(fields) => fields.iter().map(String::as_str).collect(),
        None => DEFAULT.to_vec(),
    };
    Value::Object(
        all.into_iter()
            .filter(|(k, _)| selected.contains(&k.as_str()))
            .collect(),
    )
}

fn select_fields(query: &HashMap<String, String>) -> Option<Vec<String>> {
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
) -> Response {
    let Ok(mut state) = state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let skip_token = query.get("$skiptoken");
    let fault = state.record_where("microsoft.users", |kind| {
        *kind != FaultKind::ExpiredPageToken || skip_token.is_some()
    });
    if !state.authorised(&headers) {
        return graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty or invalid.",
        );
    }
    if let Some(response) = fault.and_then(fault_response) {
        return response;
    }
    let top = match query.get("$top").map(|t| t.parse::<usize>()) {
        None => DEFAULT_TOP,
        Some(Ok(top)) if (1..=MAX_TOP).contains(&top) => top,
        Some(_) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Invalid page size specified: '$top'. Must be between 1 and 999 inclusive.",
            );
        }
    };
    let offset = match skip_token.map(|t| decode_offset(t)) {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Directory_InvalidPageToken",
                "The specified page token value is invalid.",
            );
        }
    };

    let select = select_fields(&query);
    let directory = state.directory("microsoft");
    let page: Vec<Value> = directory
        .users
        .iter()
        .skip(offset)
        .take(top)
        .map(|u| render(u, &directory.domain, select.as_deref()))
        .collect();
    let mut body = json!({"@odata.context": format!("{}/v1.0/$metadata#users", state.base_url), "value": page});
    if offset + top < directory.users.len() {
        let mut next = format!(
            "{}/v1.0/users?$top={top}&$skiptoken={}",
            state.base_url,
            encode_offset(offset + top)
        );
        if let Some(select) = query.get("$select") {
            next.push_str(&format!("&$select={select}"));
        }
        body["@odata.nextLink"] = json!(next);
    }
    axum::Json(body).into_response()
}

/// `/users/delta`: without a token, every user page by page, ending in a deltaLink; with a
/// `$deltatoken`, the users changed and removed since it was issued.
pub async fn users_delta(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Ok(mut state) = state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let delta_token = query.get("$deltatoken");
    let fault = state.record_where("microsoft.users_delta", |kind| {
        *kind != FaultKind::ExpiredDeltaToken || delta_token.is_some()
    });
    if !state.authorised(&headers) {
        return graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty or invalid.",
        );
    }
    if let Some(response) = fault.and_then(fault_response) {
        return response;
    }
    let select = select_fields(&query);
    let directory = state.directory("microsoft");
    let select_query = query
        .get("$select")
        .map(|s| format!("&$select={s}"))
        .unwrap_or_default();

    if let Some(token) = delta_token {
        let Some(since) = decode_offset(token) else {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "badRequest",
                "The delta token is not valid.",
            );
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
        return axum::Json(json!({"@odata.context": format!("{}/v1.0/$metadata#users", state.base_url), "value": changes, "@odata.deltaLink": link})).into_response();
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
    if offset + top < directory.users.len() {
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
    axum::Json(body).into_response()
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
