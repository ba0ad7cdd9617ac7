//! Stands in for the HTTP API's JWT authorizer. API Gateway validates the bearer token (issuer,
//! audience, expiry, signature) and passes its claims to the function in
//! `requestContext.authorizer.jwt.claims`. Locally the runner does the same with a signing key
//! of its own, so the function receives identical requests in both places.

use std::collections::BTreeMap;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value, json};

pub const LOCAL_ISSUER: &str = "https://rollcall.local/issuer";
pub const LOCAL_AUDIENCE: &str = "rollcall-admin";

/// Verifies and mints HS256 tokens with a key generated when the runner starts.
#[derive(Clone)]
pub struct LocalJwt {
    encoding: std::sync::Arc<EncodingKey>,
    decoding: std::sync::Arc<DecodingKey>,
}

impl Default for LocalJwt {
    fn default() -> Self {
        let secret: [u8; 32] = rand::random();
        let encoding = EncodingKey::from_secret(&secret).expect("a 32-byte HMAC key is valid");
        let decoding = DecodingKey::from_secret(&secret).expect("a 32-byte HMAC key is valid");
        Self {
            encoding: encoding.into(),
            decoding: decoding.into(),
        }
    }
}

impl std::fmt::Debug for LocalJwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalJwt { .. }")
    }
}

impl LocalJwt {
    /// Mints a token for the administrator with `email` in `tenant_id`, valid for
    /// `lifetime_seconds`.
    pub fn mint(&self, tenant_id: &str, email: &str, lifetime_seconds: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({
            "iss": LOCAL_ISSUER,
            "aud": LOCAL_AUDIENCE,
            "sub": email,
            "email": email,
            "tenant_id": tenant_id,
            "iat": now,
            "exp": now + lifetime_seconds,
        });
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of a JSON object cannot fail")
    }

    /// Returns the claims of a valid token as API Gateway passes them: every value a string.
    pub fn verify(&self, authorization: Option<&str>) -> Option<Map<String, Value>> {
        let token = authorization?
            .strip_prefix("Bearer ")
            .or_else(|| authorization?.strip_prefix("bearer "))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[LOCAL_ISSUER]);
        validation.set_audience(&[LOCAL_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<BTreeMap<String, Value>>(
            token.trim(),
            &self.decoding,
            &validation,
        )
        .ok()?;
        Some(
            data.claims
                .into_iter()
                .map(|(name, value)| {
                    let text = match value {
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                    (name, Value::String(text))
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_token_verifies() {
        let jwt = LocalJwt::default();
        let token = jwt.mint("acme", "admin-1", 60);
        let claims = jwt
            .verify(Some(&format!("Bearer {token}")))
            .expect("valid token");
        assert_eq!(claims["tenant_id"], "acme");
        assert_eq!(claims["sub"], "admin-1");
    }

    #[test]
    fn bad_tokens_rejected() {
        let jwt = LocalJwt::default();
        let other = LocalJwt::default();
        let expired = jwt.mint("acme", "admin-1", -120);
        let foreign = other.mint("acme", "admin-1", 60);
        for header in [
            None,
            Some("Bearer".to_owned()),
            Some("Bearer x.y.z".to_owned()),
            Some(format!("Bearer {expired}")),
            Some(format!("Bearer {foreign}")),
        ] {
            assert!(jwt.verify(header.as_deref()).is_none(), "{header:?}");
        }
    }
}
