//! Okta `/api/v1/users/{id}/factors`, derived from `User::mfa_enrolled`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{admit, not_found};
use crate::directory::{User, stable_hash};
use crate::urlencode::encode_segment;
use crate::{Rejection, Shared};

fn factor(user: &User, prefix: &str, factor_type: &str, provider: &str, base_url: &str) -> Value {
    let id = format!(
        "{prefix}{:017x}",
        stable_hash(&format!("{}/{factor_type}/{provider}", user.id))
    );
    let mut profile = json!({"credentialId": user.email});
    if factor_type == "push" {
        profile = json!({"credentialId": user.email, "deviceType": "SmartPhone_IPhone", "name": "iPhone", "platform": "IOS", "version": "17.2"});
    }
    json!({
        "id": id,
        "factorType": factor_type,
        "provider": provider,
        "vendorName": provider,
        "status": "ACTIVE",
        "created": "2024-01-15T09:10:00.000Z",
        "lastUpdated": "2024-01-15T09:10:00.000Z",
        "profile": profile,
        "_links": {"self": {"href": format!("{base_url}/api/v1/users/{}/factors/{id}", encode_segment(&user.id))}},
    })
}

/// Lists a user's enrolled factors, all on one page as Okta does. Enrolled users have Google
/// Authenticator, or about half of them Okta Verify (push and TOTP). Others have none.
pub async fn list(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    let state = admit(&state, "okta.factors", &headers)?;
    let base_url = &state.base_url;
    let user = state
        .directory("okta")
        .user(&id)
        .ok_or_else(|| not_found(&id, "User"))?;
    let factors = match (user.mfa_enrolled, stable_hash(&user.id) % 2) {
        (false, _) => Vec::new(),
        (true, 0) => vec![
            factor(user, "opf", "push", "OKTA", base_url),
            factor(user, "ost", "token:software:totp", "OKTA", base_url),
        ],
        (true, _) => vec![factor(
            user,
            "uft",
            "token:software:totp",
            "GOOGLE",
            base_url,
        )],
    };
    Ok(axum::Json(Value::Array(factors)).into_response())
}
