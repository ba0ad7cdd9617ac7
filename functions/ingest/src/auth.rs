//! Extension key authentication.

use lambda_http::http::HeaderMap;
use lambda_http::http::header::AUTHORIZATION;
use rollcall::extension_key;
use rollcall::ids::TenantId;
use rollcall::problem::Problem;
use rollcall::store::{Store, StoreError};
use tracing::{debug, error};

/// The verified credential of a request.
#[derive(Debug, Clone)]
pub struct Credential {
    pub tenant_id: TenantId,
    pub key_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token in the Authorization header")]
    Missing,
    #[error("the Authorization header uses a scheme other than Bearer")]
    Scheme,
    #[error("the extension key is malformed, unknown, revoked or wrong")]
    Invalid,
    #[error("extension key lookup failed: {0}")]
    Store(#[from] StoreError),
}

impl AuthError {
    pub fn into_problem(self) -> Problem {
        match self {
            Self::Missing => Problem::new(
                401,
                "Unauthorized",
                "send the extension key as 'Authorization: Bearer <key>'",
            ),
            Self::Scheme => Problem::new(
                401,
                "Unauthorized",
                "use the Bearer scheme: 'Authorization: Bearer <key>'",
            ),
            Self::Invalid => Problem::new(401, "Unauthorized", "the extension key is not valid"),
            Self::Store(source) => {
                error!(error = %source, "extension key lookup failed");
                Problem::new(
                    503,
                    "Service Unavailable",
                    "the request could not be authenticated now; retry later",
                )
            }
        }
    }
}

/// Verifies the bearer extension key and returns the tenant it belongs to.
pub async fn authenticate(store: &Store, headers: &HeaderMap) -> Result<Credential, AuthError> {
    let header = headers.get(AUTHORIZATION).ok_or(AuthError::Missing)?;
    let header = header.to_str().map_err(|_| AuthError::Invalid)?;
    let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::Scheme)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Scheme);
    }

    let presented = extension_key::parse(token.trim()).ok_or(AuthError::Invalid)?;
    let stored = store
        .extension_key(&presented.tenant_id, &presented.key_id)
        .await?;
    let Some(stored) = stored else {
        debug!(tenant_id = %presented.tenant_id, key_id = %presented.key_id, "extension key not found");
        return Err(AuthError::Invalid);
    };
    if stored.revoked_at.is_some() || !presented.matches(&stored.secret_sha256) {
        debug!(tenant_id = %presented.tenant_id, key_id = %presented.key_id, "extension key revoked or secret mismatch");
        return Err(AuthError::Invalid);
    }
    Ok(Credential {
        tenant_id: stored.tenant_id,
        key_id: stored.key_id,
    })
}
