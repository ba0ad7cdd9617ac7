//! Single-use tokens that name their tenant: `<prefix><tenant id>.<secret>`. Only the SHA-256 of
//! the secret is stored, under the tenant the token names, so a lookup never needs another
//! index and a token can only ever reach its own tenant's items.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::ids::TenantId;

const SECRET_BYTES: usize = 32;

pub struct NewToken {
    pub token: String,
    pub secret_sha256: String,
}

pub struct PresentedToken {
    pub tenant_id: TenantId,
    pub secret_sha256: String,
}

pub fn generate(prefix: &str, tenant_id: &TenantId) -> NewToken {
    let mut secret = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut secret);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    NewToken {
        token: format!("{prefix}{tenant_id}.{secret}"),
        secret_sha256: sha256_hex(&secret),
    }
}

/// Splits a presented token. Returns `None` for anything not shaped like one.
pub fn parse(prefix: &str, token: &str) -> Option<PresentedToken> {
    let (tenant, secret) = token.trim().strip_prefix(prefix)?.split_once('.')?;
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
