//! The mock's shared state: directories, issued tokens, queued faults and request counts.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::MockConfig;
use crate::directory::{Directory, User};

/// Client credentials the token endpoints accept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    /// Microsoft: the directory (tenant) id the application was consented in.
    pub microsoft_tenant: String,
    pub microsoft_client_id: String,
    pub microsoft_client_secret: String,
    pub okta_client_id: String,
    pub okta_client_secret: String,
    pub google_client_id: String,
    pub google_client_secret: String,
    pub google_refresh_token: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            microsoft_tenant: "6f0b1a2c-3d4e-4f50-8a61-7b8c9d0e1f23".to_owned(),
            microsoft_client_id: "microsoft-client".to_owned(),
            microsoft_client_secret: "microsoft-secret".to_owned(),
            okta_client_id: "okta-client".to_owned(),
            okta_client_secret: "okta-secret".to_owned(),
            google_client_id: "google-client".to_owned(),
            google_client_secret: "google-secret".to_owned(),
            google_refresh_token: "google-refresh".to_owned(),
        }
    }
}

/// A fault the next `count` requests to `endpoint` receive instead of their normal response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    /// `microsoft.token`, `microsoft.users`, `microsoft.users_delta`, `okta.token`,
    /// `okta.users`, `google.token` or `google.users`.
    pub endpoint: String,
    pub kind: FaultKind,
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 with `Retry-After` exactly as given (`"3"`, `"0.249"`), or without the header.
    Throttle { retry_after: Option<String> },
    /// Okta's 429 with `X-Rate-Limit-*` headers; the reset is this many seconds after `Date`.
    OktaRateLimit { reset_after_seconds: i64 },
    /// Google's 403 with `errors[0].reason` (`forbidden`, `userRateLimitExceeded`, `quotaExceeded`).
    GoogleForbidden { reason: String },
    /// 503 Service Unavailable.
    ServerError,
    /// Graph's 400 `Directory_ExpiredPageToken` on a request that carries a page token.
    ExpiredPageToken,
    /// Graph's 410 for an expired delta token.
    ExpiredDeltaToken,
    /// The token endpoint returns `invalid_grant`.
    InvalidGrant,
    /// The token endpoint returns `unauthorized_client`.
    UnauthorizedClient,
}

pub struct MockState {
    pub config: MockConfig,
    pub base_url: String,
    pub tokens: HashSet<String>,
    pub faults: Vec<Fault>,
    pub counts: BTreeMap<String, u64>,
    /// Bumped on every directory change; delta tokens name the version they were issued at.
    pub version: u64,
    pub changed_at: BTreeMap<String, u64>,
    pub removed: Vec<(String, u64)>,
}

impl MockState {
    pub fn new(config: MockConfig, base_url: String) -> Self {
        Self {
            config,
            base_url,
            tokens: HashSet::new(),
            faults: Vec::new(),
            counts: BTreeMap::new(),
            version: 1,
            changed_at: BTreeMap::new(),
            removed: Vec::new(),
        }
    }

    /// Counts a request and returns the fault it should receive, if one is queued.
    pub fn record(&mut self, endpoint: &str) -> Option<FaultKind> {
        self.record_where(endpoint, |_| true)
    }

    /// Counts a request and takes the first fault queued for `endpoint` that `applies` to it.
    /// A fault that does not apply (a page-token fault on a first page) stays queued.
    pub fn record_where(
        &mut self,
        endpoint: &str,
        applies: impl Fn(&FaultKind) -> bool,
    ) -> Option<FaultKind> {
        *self.counts.entry(endpoint.to_owned()).or_default() += 1;
        let position = self
            .faults
            .iter()
            .position(|f| f.endpoint == endpoint && f.count > 0 && applies(&f.kind))?;
        let fault = &mut self.faults[position];
        fault.count -= 1;
        let kind = fault.kind.clone();
        if fault.count == 0 {
            self.faults.remove(position);
        }
        Some(kind)
    }

    /// Returns whether the request carries a bearer token this mock issued.
    pub fn authorised(&self, headers: &axum::http::HeaderMap) -> bool {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|token| self.tokens.contains(token))
    }

    pub fn issue_token(&mut self) -> String {
        let token: [u8; 24] = rand::random();
        let token =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, token);
        self.tokens.insert(token.clone());
        token
    }

    pub fn directory(&self, provider: &str) -> &Directory {
        match provider {
            "microsoft" => &self.config.microsoft,
            "google" => &self.config.google,
            _ => &self.config.okta,
        }
    }

    /// Adds or replaces a Microsoft user, as a directory change that delta queries report.
    pub fn upsert_microsoft_user(&mut self, user: User) {
        self.version += 1;
        self.changed_at.insert(user.id.clone(), self.version);
        let users = &mut self.config.microsoft.users;
        match users.iter_mut().find(|u| u.id == user.id) {
            Some(existing) => *existing = user,
            None => users.push(user),
        }
    }

    /// Removes a Microsoft user, as a directory change that delta queries report.
    pub fn remove_microsoft_user(&mut self, id: &str) {
        self.version += 1;
        self.config.microsoft.users.retain(|u| u.id != id);
        self.removed.push((id.to_owned(), self.version));
    }
}
