//! Self-enrolment links. A link carries `rce_<tenant id>.<secret>`; only the SHA-256 of the
//! secret is stored, with an expiry, and redeeming it marks it used in the same transaction
//! that licenses the employee, so a link works once.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::ids::TenantId;
pub use crate::tenant_token::{NewToken as NewEnrolmentToken, PresentedToken};

const PREFIX: &str = "rce_";
/// How long an enrolment link stays valid.
pub const LINK_LIFETIME: Duration = Duration::days(7);

pub fn generate(tenant_id: &TenantId) -> NewEnrolmentToken {
    crate::tenant_token::generate(PREFIX, tenant_id)
}

/// Splits a presented token. Returns `None` for anything not shaped like one.
pub fn parse(token: &str) -> Option<PresentedToken> {
    crate::tenant_token::parse(PREFIX, token)
}

pub fn enrolment_sk(secret_sha256: &str) -> String {
    format!("ENROL#{secret_sha256}")
}

/// A stored enrolment link. `expires_at` is also the table's TTL attribute, so DynamoDB deletes
/// the item some time after it expires; the expiry check never relies on that deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentItem {
    pub pk: String,
    pub sk: String,
    pub employee_id: String,
    pub email: String,
    /// Epoch seconds.
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<String>,
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_token_parses() {
        let tenant = TenantId::parse("acme").unwrap();
        let token = generate(&tenant);
        let presented = parse(&token.token).expect("parses");
        assert_eq!(presented.tenant_id, tenant);
        assert_eq!(presented.secret_sha256, token.secret_sha256);
    }

    #[test]
    fn malformed_tokens_rejected() {
        for bad in [
            "",
            "rce_",
            "rce_acme",
            "rce_acme.short",
            "rcx_acme.0123456789012345678901234567890123456789",
            "rce_ACME.0123456789012345678901234567890123456789",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }
}
