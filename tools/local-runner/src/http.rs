//! Serves the template's HTTP API routes the way API Gateway (HTTP API, payload format 2.0)
//! does: each request becomes a payload 2.0 event in JSON, which lambda_http converts exactly
//! as it does in Lambda.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body as AxumBody, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};
use tracing::{error, info};

use crate::functions::Handler;
use crate::jwt::LocalJwt;
use crate::schedule::Schedules;

/// API Gateway's payload size limit for HTTP APIs.
const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

#[derive(Clone)]
pub struct Route {
    pub function: String,
    pub method: String,
    pub path: String,
    /// The JWT authorizer that guards the route, if any.
    pub authorizer: Option<String>,
    pub handler: Handler,
}

#[derive(Clone)]
pub struct HttpState {
    pub routes: Arc<Vec<Route>>,
    pub schedules: Schedules,
    pub jwt: LocalJwt,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/_local/health", axum::routing::get(|| async { "ok" }))
        .route(
            "/_local/schedules/{function}",
            axum::routing::post(fire_schedule),
        )
        .fallback(serve_route)
        .with_state(state)
}

async fn fire_schedule(
    State(state): State<HttpState>,
    axum::extract::Path(function): axum::extract::Path<String>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let time = match query
        .get("time")
        .map(|t| chrono::DateTime::parse_from_rfc3339(t))
    {
        None => None,
        Some(Ok(time)) => Some(time.with_timezone(&chrono::Utc)),
        Some(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"message": "time must be an RFC 3339 time, such as 2027-03-04T05:00:00Z"})),
            )
                .into_response();
        }
    };
    match state.schedules.fire(&function, time).await {
        Ok(fired) => (
            StatusCode::OK,
            axum::Json(json!({"function": function, "schedules_fired": fired})),
        )
            .into_response(),
        Err(crate::schedule::FireError::Unknown) => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": format!("no schedule for function {function}")})),
        )
            .into_response(),
        Err(crate::schedule::FireError::Failed(reason)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"function": function, "error": reason})),
        )
            .into_response(),
    }
}

async fn serve_route(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let Some((route, path_parameters)) = match_route(&state.routes, &method, &path) else {
        return gateway_message(StatusCode::NOT_FOUND, "Not Found");
    };
    let Handler::Http(handler) = &route.handler else {
        return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };

    let (parts, body) = request.into_parts();
    let claims = match &route.authorizer {
        None => None,
        Some(_) => {
            let authorization = parts
                .headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match state.jwt.verify(authorization) {
                Some(claims) => Some(claims),
                None => return gateway_message(StatusCode::UNAUTHORIZED, "Unauthorized"),
            }
        }
    };
    let Ok(body) = to_bytes(body, MAX_PAYLOAD_BYTES).await else {
        return gateway_message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let mut event = payload_v2_event(route, &parts, &body, path_parameters, peer);
    if let Some(claims) = claims {
        event["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    }
    let lambda_request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(conversion) => {
            error!(function = route.function, error = %conversion, "payload 2.0 event did not convert");
            return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };

    let response = handler(lambda_request).await;
    info!(
        function = route.function,
        method,
        path,
        status = response.status().as_u16(),
        "HTTP API request"
    );
    let (parts, body) = response.into_parts();
    let bytes: Vec<u8> = match body {
        lambda_http::Body::Text(text) => text.into_bytes(),
        lambda_http::Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    };
    Response::from_parts(parts, AxumBody::from(bytes))
}

/// Returns API Gateway's own error body, which it sends when no function handled the request.
fn gateway_message(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

/// Finds the route for a request. Exact paths win over paths with parameters, as in API Gateway.
fn match_route<'a>(
    routes: &'a [Route],
    method: &str,
    path: &str,
) -> Option<(&'a Route, Map<String, Value>)> {
    let candidates = routes
        .iter()
        .filter(|route| route.method == "ANY" || route.method == method);
    let mut best: Option<(&Route, Map<String, Value>, usize)> = None;
    for route in candidates {
        if let Some(parameters) = match_path(&route.path, path) {
            let literal_segments = route
                .path
                .split('/')
                .filter(|s| !s.starts_with('{'))
                .count();
            if best
                .as_ref()
                .is_none_or(|(_, _, score)| literal_segments > *score)
            {
                best = Some((route, parameters, literal_segments));
            }
        }
    }
    best.map(|(route, parameters, _)| (route, parameters))
}

fn match_path(pattern: &str, path: &str) -> Option<Map<String, Value>> {
    let mut parameters = Map::new();
    let pattern_segments: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let path_segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for (index, segment) in pattern_segments.iter().enumerate() {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
            parameters.insert(
                name.to_owned(),
                Value::String(path_segments.get(index..)?.join("/")),
            );
            return Some(parameters);
        }
        let actual = path_segments.get(index)?;
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if !actual.is_empty() => {
                parameters.insert(name.to_owned(), Value::String((*actual).to_owned()));
            }
            Some(_) => return None,
            None if segment == actual => {}
            None => return None,
        }
    }
    (pattern_segments.len() == path_segments.len()).then_some(parameters)
}

/// Builds the JSON event API Gateway sends for an HTTP API route with payload format 2.0.
fn payload_v2_event(
    route: &Route,
    parts: &http::request::Parts,
    body: &[u8],
    path_parameters: Map<String, Value>,
    peer: SocketAddr,
) -> Value {
    let now = Utc::now();
    let route_key = format!("{} {}", route.method, route.path);
    let (headers, cookies) = event_headers(&parts.headers);
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let mut query = Map::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let entry = query
            .entry(key.to_owned())
            .or_insert_with(|| Value::String(String::new()));
        let joined = match entry.as_str() {
            Some("") => value.to_owned(),
            Some(existing) => format!("{existing},{value}"),
            None => value.to_owned(),
        };
        *entry = Value::String(joined);
    }

    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (body, is_base64) = match std::str::from_utf8(body) {
        Ok(text) if is_text_media_type(content_type) => (text.to_owned(), false),
        _ if body.is_empty() => (String::new(), false),
        _ => (STANDARD.encode(body), true),
    };

    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": parts.headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost"),
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": is_base64,
    });
    let object = event.as_object_mut().expect("event is an object");
    if !body.is_empty() {
        object.insert("body".into(), Value::String(body));
    }
    if !cookies.is_empty() {
        object.insert("cookies".into(), json!(cookies));
    }
    if !query.is_empty() {
        object.insert("queryStringParameters".into(), Value::Object(query));
    }
    if !path_parameters.is_empty() {
        object.insert("pathParameters".into(), Value::Object(path_parameters));
    }
    event
}

/// Lowercases header names and joins repeated headers with commas; cookies move to their own
/// list, as in payload format 2.0.
fn event_headers(headers: &HeaderMap) -> (Map<String, Value>, Vec<String>) {
    let mut joined = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in headers {
        let Ok(value) = value.to_str() else { continue };
        if name == http::header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        let entry = joined
            .entry(name.as_str().to_owned())
            .or_insert_with(|| Value::String(String::new()));
        let combined = match entry.as_str() {
            Some("") | None => value.to_owned(),
            Some(existing) => format!("{existing},{value}"),
        };
        *entry = Value::String(combined);
    }
    (joined, cookies)
}

fn is_text_media_type(content_type: &str) -> bool {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media_type.starts_with("text/")
        || media_type.ends_with("+json")
        || media_type.ends_with("+xml")
        || matches!(
            media_type.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_match() {
        let parameters = match_path(
            "/v1/admin/employees/{employee_id}",
            "/v1/admin/employees/e-1",
        )
        .unwrap();
        assert_eq!(parameters["employee_id"], "e-1");
        assert!(match_path("/v1/admin/employees/{employee_id}", "/v1/admin/employees/").is_none());
        assert!(match_path("/v1/telemetry", "/v1/telemetry/extra").is_none());
        let greedy = match_path("/files/{proxy+}", "/files/a/b").unwrap();
        assert_eq!(greedy["proxy"], "a/b");
    }

    #[test]
    fn binary_bodies_are_base64() {
        assert!(is_text_media_type("application/json; charset=utf-8"));
        assert!(is_text_media_type("text/plain;charset=UTF-8"));
        assert!(!is_text_media_type("application/octet-stream"));
        assert!(!is_text_media_type(""));
    }
}
