//! A mock of the identity providers Rollcall syncs from, for tests, the local stack and
//! benchmarks. It speaks the wire formats of the Microsoft identity platform and Microsoft Graph,
//! Google OAuth and the Admin SDK Directory API, and Okta's OAuth and management API: paging,
//! token checks, throttling, expired page and delta tokens. Faults are injected on demand, and
//! it counts the requests it receives per endpoint so that tests can check cost.
//!
//! Control endpoints under `/_mock/` (inject a fault, read the counts) are the mock's own and
//! exist on no real provider.
//!
//! NOTE: only tokens and user listings are served so far. Groups and members, apps, factors,
//! OAuth grants, mailbox rules and the consent redirects are not.

pub mod directory;
mod google;
mod microsoft;
mod okta;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;

pub use directory::{AccountState, Directory, User};
pub use state::{Credentials, Fault, FaultKind, MockState};

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
        .route("/v1.0/users", get(microsoft::users))
        .route("/v1.0/users/delta", get(microsoft::users_delta))
        .route("/oauth2/v1/token", post(okta::token))
        .route("/api/v1/users", get(okta::users))
        .route("/token", post(google::token))
        .route("/admin/directory/v1/users", get(google::users))
        .route("/_mock/requests", get(request_counts))
        .route("/_mock/faults", post(inject_fault))
        .with_state(state)
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
