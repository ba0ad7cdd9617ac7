//! The `state` of an OAuth consent: random, bound to a tenant and a provider, valid for ten
//! minutes and usable once. The value is `rcs_<tenant id>.<secret>`, and the item stores the
//! secret's SHA-256. The callback consumes it with a delete that returns the old item, so of
//! two callbacks with the same state only one proceeds.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::ids::TenantId;
use crate::integration::Provider;
pub use crate::tenant_token::{NewToken as NewState, PresentedToken as PresentedState};

const PREFIX: &str = "rcs_";
/// How long a consent may take.
pub const STATE_LIFETIME: Duration = Duration::minutes(10);

pub fn generate(tenant_id: &TenantId) -> NewState {
    crate::tenant_token::generate(PREFIX, tenant_id)
}

/// Splits a presented state. Returns `None` for anything not shaped like one.
pub fn parse(state: &str) -> Option<PresentedState> {
    crate::tenant_token::parse(PREFIX, state)
}

pub fn state_sk(secret_sha256: &str) -> String {
    format!("OAUTHSTATE#{secret_sha256}")
}

/// A consent in progress. `expires_at` is also the table's TTL attribute; the expiry check never
/// relies on DynamoDB having deleted the item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthStateItem {
    pub pk: String,
    pub sk: String,
    pub provider: Provider,
    /// The administrator who asked for the connect URL.
    pub requested_by: String,
    pub scopes: Vec<String>,
    /// Google: the PKCE code verifier for the token exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_verifier: Option<String>,
    pub created_at: String,
    /// Epoch seconds.
    pub expires_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_and_enrolment_tokens_do_not() {
        let tenant = TenantId::parse("acme").unwrap();
        let state = generate(&tenant);
        let presented = parse(&state.token).expect("parses");
        assert_eq!(presented.tenant_id, tenant);
        assert_eq!(presented.secret_sha256, state.secret_sha256);
        let enrolment = crate::enrolment::generate(&tenant);
        assert!(parse(&enrolment.token).is_none());
        for bad in [
            "",
            "rcs_",
            "rcs_acme",
            "rcs_acme.short",
            "rcs_../x.0123456789012345678901234567890123456789",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }
}
