//! Self-enrolment links. A link carries `rce_<tenant id>.<secret>`; only the SHA-256 of the
//! secret is stored, with an expiry, and redeeming it marks it used in the same transaction
//! that licenses the employee, so a link works once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::TenantId;

const PREFIX: &str = "rce_";
const SECRET_BYTES: usize = 32;
/// How long an enrolment link stays valid.
pub const LINK_LIFETIME: Duration = Duration::days(7);

pub struct NewEnrolmentToken {
    pub token: String,
    pub secret_sha256: String,
}

pub struct PresentedToken {
    pub tenant_id: TenantId,
    pub secret_sha256: String,
}

pub fn generate(tenant_id: &TenantId) -> NewEnrolmentToken {
    let mut secret = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut secret);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    NewEnrolmentToken {
        token: format!("{PREFIX}{tenant_id}.{secret}"),
        secret_sha256: sha256_hex(&secret),
    }
}

/// Splits a presented token. Returns `None` for anything not shaped like one.
pub fn parse(token: &str) -> Option<PresentedToken> {
    let (tenant, secret) = token.trim().strip_prefix(PREFIX)?.split_once('.')?;
    let tenant_id = TenantId::parse(tenant).ok()?;
    let valid = (40..=64).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then(|| PresentedToken {
        tenant_id,
        secret_sha256: sha256_hex(secret),
    })
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
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
