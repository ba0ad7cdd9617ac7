//! Request parsing and responses shared by the admin routes.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use rollcall::problem::{self, Problem};
use rollcall::store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::error;

/// Largest JSON body a route accepts.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most employees one bulk request may name.
pub const MAX_BULK_IDS: usize = 100;

pub fn bad_request(field: &str, reason: impl Into<String>) -> Problem {
    let reason = reason.into();
    Problem::new(400, "Bad Request", format!("{field}: {reason}")).with("field", json!(field))
}

pub fn not_found(what: &str) -> Problem {
    Problem::new(404, "Not Found", format!("{what} was not found"))
}

/// Logs a storage failure and returns a problem that reveals nothing internal.
pub fn internal(error: StoreError) -> Problem {
    error!(error = %error, "storage request failed");
    if error.is_retryable() {
        Problem::new(
            503,
            "Service Unavailable",
            "the request could not be completed now; retry later",
        )
    } else {
        Problem::new(
            500,
            "Internal Server Error",
            "the request could not be completed",
        )
    }
}

/// Parses a JSON body into `T`. Unknown fields are rejected so that a typo is not ignored.
pub fn json_body<T: DeserializeOwned>(request: &Request) -> Result<T, Problem> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Problem::new(
            413,
            "Content Too Large",
            format!("body is over {MAX_BODY_BYTES} bytes"),
        ));
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err(Problem::new(
            415,
            "Unsupported Media Type",
            "send the body as application/json",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let field = field_of(&error);
        bad_request(&field, format!("the body is not valid: {}", error.inner()))
    })
}

/// Names the field a body error is about: the path to the failing value. A missing field's
/// path is the enclosing object, so its name comes from serde's message.
fn field_of(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = error.path().to_string();
    let message = error.inner().to_string();
    let missing = message
        .strip_prefix("missing field")
        .and_then(|rest| rest.split('`').nth(1));
    match (missing, path.as_str()) {
        (Some(field), "." | "") => field.to_owned(),
        (Some(field), path) => format!("{path}.{field}"),
        (None, "." | "") => "(body)".to_owned(),
        (None, path) => path.to_owned(),
    }
}

/// Returns the route key API Gateway matched, such as `GET /v1/admin/employees`.
pub fn route_key(request: &Request) -> String {
    match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => {
            context.route_key.clone().unwrap_or_default()
        }
        _ => String::new(),
    }
}

pub fn query_parameter(request: &Request, name: &str) -> Option<String> {
    request
        .query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_owned)
}

pub fn path_parameter(request: &Request, name: &str) -> Result<String, Problem> {
    request
        .path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
        .ok_or_else(|| bad_request(name, "is missing from the path"))
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

pub fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

pub fn problem_response(problem: &Problem) -> Response<Body> {
    let mut response = Response::new(Body::Text(problem.to_json()));
    *response.status_mut() =
        StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(problem::CONTENT_TYPE),
    );
    if problem.status == 503 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    response
}
