//! The steps every request takes before its handler's own work: it is counted, it takes a
//! queued fault, and a data request must carry a bearer token the mock issued. Each provider
//! supplies the responses in its own error format.

use std::sync::MutexGuard;

use axum::http::HeaderMap;
use axum::response::Response;

use crate::state::{FaultKind, MockState};
use crate::{Rejection, Shared, lock};

/// A provider's responses to a request that fails admission.
pub(crate) struct ErrorFormat {
    /// The 401 for a request without a bearer token that the mock issued.
    pub unauthorized: fn() -> Response,
    /// The response to a fault, or `None` for a kind the provider has no response for. Such a
    /// fault is used up and the request proceeds normally.
    pub fault: fn(FaultKind) -> Option<Response>,
}

impl ErrorFormat {
    /// Locks the state, counts a data request, checks its bearer token and applies the first
    /// fault queued for `endpoint` that `applies` to the request. A fault that does not apply
    /// stays queued.
    pub(crate) fn admit<'a>(
        &self,
        shared: &'a Shared,
        endpoint: &str,
        headers: &HeaderMap,
        applies: impl Fn(&FaultKind) -> bool,
    ) -> Result<MutexGuard<'a, MockState>, Rejection> {
        let mut state = lock(shared)?;
        let fault = state.record_where(endpoint, applies);
        if !state.authorised(headers) {
            return Err((self.unauthorized)().into());
        }
        match fault.and_then(self.fault) {
            Some(response) => Err(response.into()),
            None => Ok(state),
        }
    }

    /// Locks the state, counts a token request and applies a queued fault. `invalid_scope`
    /// builds the response to `InvalidScope`, because that names the scopes of the request.
    pub(crate) fn admit_token_request<'a>(
        &self,
        shared: &'a Shared,
        endpoint: &str,
        invalid_scope: impl FnOnce() -> Response,
    ) -> Result<MutexGuard<'a, MockState>, Rejection> {
        let mut state = lock(shared)?;
        let response = match state.record(endpoint) {
            None => None,
            Some(FaultKind::InvalidScope) => Some(invalid_scope()),
            Some(kind) => (self.fault)(kind),
        };
        match response {
            Some(response) => Err(response.into()),
            None => Ok(state),
        }
    }
}
