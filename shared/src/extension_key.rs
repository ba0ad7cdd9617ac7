//! Extension keys: the credential a managed extension deployment carries.
//!
//! A key reads `rcx_<tenant id>.<key id>.<secret>`. The tenant and key id locate the stored
//! item; only the SHA-256 of the secret is stored, and the check compares hashes in constant
//! time. The tenant id inside the key is only a lookup hint: a key whose secret does not match
//! the hash stored under that tenant is rejected, so the tenant of a request always comes from
//! a verified credential.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::TenantId;

const PREFIX: &str = "rcx_";
const SECRET_BYTES: usize = 32;
const KEY_ID_BYTES: usize = 8;

/// A freshly generated key. `token` is shown to the administrator once and never stored.
pub struct NewExtensionKey {
    pub key_id: String,
    pub token: String,
    pub secret_sha256: String,
}

/// The parts of a presented key; the secret stays private to this module.
#[derive(Debug, PartialEq, Eq)]
pub struct PresentedKey {
    pub tenant_id: TenantId,
    pub key_id: String,
    secret: String,
}

/// Generates a key for a tenant.
pub fn generate(tenant_id: &TenantId) -> NewExtensionKey {
    let mut rng = rand::rng();
    let mut key_id = [0u8; KEY_ID_BYTES];
    rng.fill_bytes(&mut key_id);
    let mut secret = [0u8; SECRET_BYTES];
    rng.fill_bytes(&mut secret);

    let key_id = hex::encode(key_id);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    NewExtensionKey {
        token: format!("{PREFIX}{tenant_id}.{key_id}.{secret}"),
        secret_sha256: sha256_hex(&secret),
        key_id,
    }
}

/// Splits a presented key into its parts. Returns `None` for anything not shaped like a key.
pub fn parse(token: &str) -> Option<PresentedKey> {
    let rest = token.strip_prefix(PREFIX)?;
    let mut parts = rest.splitn(3, '.');
    let tenant_id = TenantId::parse(parts.next()?).ok()?;
    let key_id = parts.next()?;
    let secret = parts.next()?;

    let key_id_valid =
        key_id.len() == KEY_ID_BYTES * 2 && key_id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_valid = !secret.is_empty() && secret.len() <= 64;
    if !key_id_valid || !secret_valid {
        return None;
    }
    Some(PresentedKey {
        tenant_id,
        key_id: key_id.to_owned(),
        secret: secret.to_owned(),
    })
}

impl PresentedKey {
    /// Compares the presented secret with a stored SHA-256 hex digest in constant time.
    pub fn matches(&self, stored_sha256_hex: &str) -> bool {
        let presented = sha256_hex(&self.secret);
        presented
            .as_bytes()
            .ct_eq(stored_sha256_hex.as_bytes())
            .into()
    }
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_parses_and_matches() {
        let tenant = TenantId::parse("acme").unwrap();
        let key = generate(&tenant);
        let presented = parse(&key.token).expect("generated key parses");
        assert_eq!(presented.tenant_id, tenant);
        assert_eq!(presented.key_id, key.key_id);
        assert!(presented.matches(&key.secret_sha256));
    }

    #[test]
    fn other_secret_does_not_match() {
        let tenant = TenantId::parse("acme").unwrap();
        let first = generate(&tenant);
        let second = generate(&tenant);
        let presented = parse(&first.token).unwrap();
        assert!(!presented.matches(&second.secret_sha256));
    }

    #[test]
    fn malformed_keys_rejected() {
        for bad in [
            "",
            "rcx_",
            "rcx_acme",
            "rcx_acme.0011",
            "Bearer x",
            "rcx_ACME.0011223344556677.s",
            "rcx_acme.zz11223344556677.s",
            "rcx_acme.0011223344556677.",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }
}
