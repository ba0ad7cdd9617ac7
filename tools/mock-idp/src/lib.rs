//! A mock of the identity providers Rollcall syncs from, for tests, the local stack and
//! benchmarks. It speaks the wire formats of the Microsoft identity platform and Microsoft Graph,
//! Google OAuth, the Admin SDK Directory API and Gmail settings, and Okta's OAuth and management
//! API: paging, token checks, throttling, expired page and delta tokens. Faults are injected on
//! demand, and it counts the requests it receives per endpoint so that tests can check cost.
//!
//! Endpoints, with the name that faults and request counts use:
//!
//! | Path | Endpoint name |
//! |---|---|
//! | `POST /{tenant}/oauth2/v2.0/token` (client credentials) | `microsoft.token` |
//! | `GET /{tenant}/v2.0/adminconsent` (redirects to the app) | `microsoft.admin_consent` |
//! | `GET /v1.0/users` | `microsoft.users` |
//! | `GET /v1.0/users/delta` | `microsoft.users_delta` |
//! | `GET /v1.0/groups` | `microsoft.groups` |
//! | `GET /v1.0/groups/{id}/members` | `microsoft.group_members` |
//! | `GET /v1.0/reports/authenticationMethods/userRegistrationDetails` | `microsoft.registration_details` |
//! | `GET /v1.0/oauth2PermissionGrants` | `microsoft.permission_grants` |
//! | `GET /v1.0/servicePrincipals` | `microsoft.service_principals` |
//! | `GET /v1.0/users/{id}/mailFolders/inbox/messageRules` | `microsoft.message_rules` |
//! | `GET /o/oauth2/v2/auth` (authorization code with PKCE) | `google.authorize` |
//! | `POST /token` (authorization code, refresh token, JWT bearer) | `google.token` |
//! | `GET /admin/directory/v1/customers/{customerKey}` | `google.customer` |
//! | `GET /admin/directory/v1/users` | `google.users` |
//! | `GET /admin/directory/v1/groups` | `google.groups` |
//! | `GET /admin/directory/v1/groups/{groupKey}/members` | `google.members` |
//! | `GET /admin/directory/v1/users/{userKey}/tokens` | `google.tokens` |
//! | `GET /gmail/v1/users/{userId}/settings/filters` | `google.gmail_filters` |
//! | `GET /gmail/v1/users/{userId}/settings/forwardingAddresses` | `google.gmail_forwarding_addresses` |
//! | `POST /oauth2/v1/token` (client credentials, secret in form or Basic) | `okta.token` |
//! | `GET /api/v1/users` | `okta.users` |
//! | `GET /api/v1/groups` | `okta.groups` |
//! | `GET /api/v1/groups/{id}/users` | `okta.group_users` |
//! | `GET /api/v1/apps` | `okta.apps` |
//! | `GET /api/v1/apps/{id}/users` | `okta.app_users` |
//! | `GET /api/v1/logs` (single sign-on events) | `okta.logs` |
//! | `GET /api/v1/users/{id}/factors` | `okta.factors` |
//!
//! Data endpoints need a bearer token that the mock issued, and list endpoints page as the
//! provider does: Graph with `@odata.nextLink`, Google with `nextPageToken`, Okta with `Link`
//! headers. Control endpoints under `/_mock/` (inject a fault, read the counts) are the mock's
//! own and exist on no real provider.
//!
//! NOTE: the mock does not serve single-object reads (`/v1.0/groups/{id}`, `/api/v1/apps/{id}`),
//! Graph's `transitiveMembers`, Okta's group rules or Microsoft's delegated authorization-code
//! flow. Tokens carry no scopes, so every endpoint accepts any token the mock issued.

mod admission;
pub mod directory;
mod google;
mod microsoft;
mod oauth;
mod okta;
mod paging;
mod state;
mod urlencode;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

pub use directory::{AccountState, App, Directory, Grant, Group, IdStyle, MailRule, User};
pub use state::{AuthorizationCode, Credentials, Fault, FaultKind, MockState, UnknownProvider};

/// The three directories and the credentials the mock accepts.
#[derive(Debug, Clone)]
pub struct MockConfig {
    pub microsoft: Directory,
    pub google: Directory,
    pub okta: Directory,
    pub credentials: Credentials,
}

/// A running mock server. Dropping it stops the server.
pub struct MockIdp {
    addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = Arc<Mutex<MockState>>;

impl MockIdp {
    /// Starts the mock on `addr` (port 0 picks a free port).
    pub async fn start(addr: SocketAddr, config: MockConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state: Shared = Arc::new(Mutex::new(MockState::new(config, format!("http://{addr}"))));
        let app = router(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, state, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a fault for the next requests to an endpoint.
    pub fn inject(&self, fault: Fault) {
        if let Ok(mut state) = self.state.lock() {
            state.faults.push(fault);
        }
    }

    /// Returns how many requests each endpoint received.
    pub fn request_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.state
            .lock()
            .map(|s| s.counts.clone())
            .unwrap_or_default()
    }

    /// Runs `change` on the mock's state, to add, change or remove directory users.
    pub fn with_state<T>(&self, change: impl FnOnce(&mut MockState) -> T) -> Option<T> {
        self.state.lock().ok().map(|mut state| change(&mut state))
    }
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(microsoft::token))
        .route(
            "/{tenant}/v2.0/adminconsent",
            get(microsoft::consent::admin_consent),
        )
        .route("/v1.0/users", get(microsoft::users))
        .route("/v1.0/users/delta", get(microsoft::users_delta))
        .route(
            "/v1.0/users/{id}/mailFolders/inbox/messageRules",
            get(microsoft::mail::message_rules),
        )
        .route("/v1.0/groups", get(microsoft::groups::list))
        .route("/v1.0/groups/{id}/members", get(microsoft::groups::members))
        .route(
            "/v1.0/reports/authenticationMethods/userRegistrationDetails",
            get(microsoft::reports::registration_details),
        )
        .route(
            "/v1.0/oauth2PermissionGrants",
            get(microsoft::grants::permission_grants),
        )
        .route(
            "/v1.0/servicePrincipals",
            get(microsoft::grants::service_principals),
        )
        .route("/oauth2/v1/token", post(okta::token))
        .route("/api/v1/users", get(okta::users))
        .route("/api/v1/users/{id}/factors", get(okta::factors::list))
        .route("/api/v1/groups", get(okta::groups::list))
        .route("/api/v1/groups/{id}/users", get(okta::groups::users))
        .route("/api/v1/apps", get(okta::apps::list))
        .route("/api/v1/apps/{id}/users", get(okta::apps::users))
        .route("/api/v1/logs", get(okta::logs::list))
        .route("/o/oauth2/v2/auth", get(google::oauth::authorize))
        .route("/token", post(google::oauth::token))
        .route("/admin/directory/v1/users", get(google::users))
        .route(
            "/admin/directory/v1/customers/{customer}",
            get(google::admin::customer),
        )
        .route("/admin/directory/v1/groups", get(google::admin::groups))
        .route(
            "/admin/directory/v1/groups/{group}/members",
            get(google::admin::members),
        )
        .route(
            "/admin/directory/v1/users/{user}/tokens",
            get(google::admin::tokens),
        )
        .route(
            "/gmail/v1/users/{user}/settings/filters",
            get(google::gmail::filters),
        )
        .route(
            "/gmail/v1/users/{user}/settings/forwardingAddresses",
            get(google::gmail::forwarding_addresses),
        )
        .route("/_mock/requests", get(request_counts))
        .route("/_mock/faults", post(inject_fault))
        .with_state(state)
}

/// An error response. It is boxed because `Response` is too large to return in every `Err`.
pub(crate) struct Rejection(Box<Response>);

impl From<Response> for Rejection {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// Locks the shared state. A poisoned lock, left by a panic elsewhere, returns 500.
fn lock(state: &Shared) -> Result<MutexGuard<'_, MockState>, Rejection> {
    state.lock().map_err(|_| {
        tracing::error!("mock state lock is poisoned by an earlier panic");
        StatusCode::INTERNAL_SERVER_ERROR.into_response().into()
    })
}

/// Returns a query or form parameter, or `""` when the request lacks it.
fn parameter<'a>(parameters: &'a HashMap<String, String>, name: &str) -> &'a str {
    parameters.get(name).map(String::as_str).unwrap_or_default()
}

/// Builds a 302 redirect to `location`.
fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn request_counts(State(state): State<Shared>) -> impl IntoResponse {
    let counts = state.lock().map(|s| s.counts.clone()).unwrap_or_default();
    axum::Json(json!(counts))
}

async fn inject_fault(
    State(state): State<Shared>,
    axum::Json(fault): axum::Json<Fault>,
) -> impl IntoResponse {
    if let Ok(mut state) = state.lock() {
        state.faults.push(fault);
    }
    axum::http::StatusCode::NO_CONTENT
}
