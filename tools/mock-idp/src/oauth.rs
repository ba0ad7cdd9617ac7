//! OAuth pieces that more than one provider uses: the RFC 6749 error body and the client check
//! of the browser flows (Google's authorization endpoint, Microsoft's admin consent).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Builds an RFC 6749 error response (`error`, `error_description`), as Google's and Okta's
/// token endpoints send it.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// The parameter that makes a browser flow reject the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UntrustedClient {
    UnknownClientId,
    UnregisteredRedirectUri,
}

/// Checks the `client_id` and `redirect_uri` of a browser flow, which must pass before the
/// redirect URI may receive the outcome. The redirect URI must equal a registered one byte for
/// byte. A rejection is logged, because the provider shows it to the user and the app never
/// receives it.
pub(crate) fn check_client(
    endpoint: &str,
    expected_client_id: &str,
    registered_redirect_uris: &[String],
    client_id: &str,
    redirect_uri: &str,
) -> Result<(), UntrustedClient> {
    if client_id != expected_client_id {
        tracing::warn!(endpoint, client_id, "rejected an unknown client_id");
        return Err(UntrustedClient::UnknownClientId);
    }
    if !registered_redirect_uris
        .iter()
        .any(|uri| uri == redirect_uri)
    {
        tracing::warn!(
            endpoint,
            redirect_uri,
            registered = ?registered_redirect_uris,
            "rejected a redirect_uri that is not registered"
        );
        return Err(UntrustedClient::UnregisteredRedirectUri);
    }
    Ok(())
}
