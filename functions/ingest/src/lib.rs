//! `POST /v1/telemetry`: a browser extension reports its profile, the work identity it found and
//! a batch of events. The handler authenticates the extension key, validates each event, queues
//! the valid ones on the telemetry queue and returns 202 with counts.

mod auth;
mod enqueue;

use chrono::Utc;
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use rollcall::aws::Clients;
use rollcall::config::{ConfigError, Lookup, required};
use rollcall::envelope::{TELEMETRY_MESSAGE_VERSION, TelemetryMessage};
use rollcall::problem::{self, Problem};
use rollcall::store::Store;
use rollcall::telemetry::{self, PayloadError};
use serde_json::json;
use tracing::{info, warn};

pub use auth::AuthError;
pub use enqueue::{EnqueueError, QueueSender};

/// Settings read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub telemetry_queue_url: String,
}

impl Config {
    pub fn from_lookup(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(lookup, "TABLE_NAME")?,
            telemetry_queue_url: required(lookup, "TELEMETRY_QUEUE_URL")?,
        })
    }
}

/// The ingest function's state, built once per Lambda instance.
#[derive(Debug, Clone)]
pub struct Ingest {
    store: Store,
    queue: QueueSender,
}

impl Ingest {
    pub fn new(clients: &Clients, config: Config) -> Self {
        let store = Store::new(clients.dynamodb.clone(), config.table_name);
        let queue = QueueSender::new(clients.sqs.clone(), config.telemetry_queue_url);
        Self { store, queue }
    }

    /// Handles one request. Every outcome is an HTTP response; nothing here returns an error
    /// to the runtime, so a bad request can never become a Lambda failure.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let request_id = request_id(&request);
        match self.process(&request).await {
            Ok(response) => {
                info!(
                    request_id,
                    status = response.status().as_u16(),
                    "telemetry request handled"
                );
                response
            }
            Err(problem) => {
                // The detail never contains the key or the body, only what was wrong with them.
                info!(
                    request_id,
                    status = problem.status,
                    reason = problem.detail,
                    "telemetry request rejected"
                );
                problem_response(&problem)
            }
        }
    }

    async fn process(&self, request: &Request) -> Result<Response<Body>, Problem> {
        if request.method() != Method::POST {
            return Err(Problem::new(
                405,
                "Method Not Allowed",
                "use POST for /v1/telemetry",
            ));
        }
        let credential = auth::authenticate(&self.store, request.headers())
            .await
            .map_err(AuthError::into_problem)?;
        let body = body_bytes(request.body())?;
        check_content_type(request)?;

        let received_at = Utc::now();
        let parsed = telemetry::parse_batch(body, received_at).map_err(payload_problem)?;
        if parsed.events.is_empty() {
            let detail = format!(
                "all {} events were rejected or duplicated; see errors",
                parsed.rejected.len() + parsed.duplicates
            );
            return Err(
                Problem::new(400, "Bad Request", detail).with("errors", json!(parsed.rejected))
            );
        }

        let accepted = parsed.events.len();
        let message = TelemetryMessage {
            version: TELEMETRY_MESSAGE_VERSION,
            tenant_id: credential.tenant_id.clone(),
            received_at,
            profile: parsed.profile,
            events: parsed.events,
        };
        if let Err(error) = self.queue.send(&message).await {
            warn!(tenant_id = %credential.tenant_id, install_id = %message.profile.install_id, error = %error, "telemetry could not be queued");
            return Err(Problem::new(
                503,
                "Service Unavailable",
                "telemetry could not be queued; retry later",
            ));
        }

        info!(
            tenant_id = %credential.tenant_id,
            key_id = %credential.key_id,
            install_id = %message.profile.install_id,
            accepted,
            rejected = parsed.rejected.len(),
            duplicates = parsed.duplicates,
            "telemetry queued"
        );
        let answer = json!({
            "accepted": accepted,
            "rejected": parsed.rejected.len(),
            "duplicates": parsed.duplicates,
            "errors": parsed.rejected,
        });
        Ok(json_response(StatusCode::ACCEPTED, answer.to_string()))
    }
}

/// Returns the body's bytes, rejecting bodies over the size limit. lambda_http has already
/// decoded a base64-encoded body (`isBase64Encoded`), so the limit applies to decoded bytes.
fn body_bytes(body: &Body) -> Result<&[u8], Problem> {
    let bytes: &[u8] = match body {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if bytes.len() > telemetry::MAX_BODY_BYTES {
        let detail = format!(
            "body is {} bytes; the maximum is {} bytes",
            bytes.len(),
            telemetry::MAX_BODY_BYTES
        );
        return Err(Problem::new(413, "Content Too Large", detail));
    }
    if bytes.is_empty() {
        return Err(Problem::new(
            400,
            "Bad Request",
            "body is empty; send a JSON telemetry batch",
        ));
    }
    Ok(bytes)
}

/// Accepts JSON and `text/plain`, which `navigator.sendBeacon` uses for a string body.
fn check_content_type(request: &Request) -> Result<(), Problem> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/json" | "text/plain" => Ok(()),
        "" => Err(Problem::new(
            415,
            "Unsupported Media Type",
            "Content-Type is missing; use application/json or text/plain",
        )),
        other => Err(Problem::new(
            415,
            "Unsupported Media Type",
            format!("Content-Type {other} is not supported; use application/json or text/plain"),
        )),
    }
}

fn payload_problem(error: PayloadError) -> Problem {
    match error {
        PayloadError::TooManyEvents { .. } => {
            Problem::new(413, "Content Too Large", error.to_string())
        }
        PayloadError::Json(_) => Problem::new(400, "Bad Request", error.to_string()),
        PayloadError::Field(field) => {
            Problem::new(400, "Bad Request", field.to_string()).with("field", json!(field.field))
        }
    }
}

fn request_id(request: &Request) -> String {
    match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => {
            context.request_id.clone().unwrap_or_default()
        }
        _ => String::new(),
    }
}

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Builds the response for a problem, with the headers its status calls for.
pub fn problem_response(problem: &Problem) -> Response<Body> {
    let mut response = Response::new(Body::Text(problem.to_json()));
    *response.status_mut() =
        StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(problem::CONTENT_TYPE),
    );
    match problem.status {
        401 => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"rollcall\""),
            );
        }
        503 => {
            headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        _ => {}
    }
    response
}
