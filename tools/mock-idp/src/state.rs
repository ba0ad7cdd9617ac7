//! The mock's shared state: directories, issued tokens, queued faults and request counts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::MockConfig;
use crate::directory::{Directory, User};

/// Client credentials the token endpoints accept. Fields missing from a serialized form take
/// their default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
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
    /// Redirect URIs registered for the Microsoft and Google apps. A request's `redirect_uri`
    /// must equal one of them byte for byte.
    pub redirect_uris: Vec<String>,
    /// Google: the service account whose JWT assertions the token endpoint accepts (`iss`).
    pub google_service_account: String,
    /// Google: the Workspace user the service account acts as (`sub`).
    pub google_delegated_admin: String,
    /// Google: the scopes a Workspace admin authorised for domain-wide delegation.
    pub google_delegation_scopes: Vec<String>,
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
            redirect_uris: vec![
                "http://127.0.0.1:3000/v1/oauth/callback/microsoft".to_owned(),
                "http://127.0.0.1:3000/v1/oauth/callback/google".to_owned(),
            ],
            google_service_account: "rollcall-sync@rollcall-local.iam.gserviceaccount.com"
                .to_owned(),
            google_delegated_admin: "admin@fabrikam.example".to_owned(),
            google_delegation_scopes: vec![
                "https://www.googleapis.com/auth/admin.directory.user.readonly".to_owned(),
                "https://www.googleapis.com/auth/gmail.settings.basic".to_owned(),
            ],
        }
    }
}

/// A fault the next `count` requests to `endpoint` receive instead of their normal response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    /// The endpoint name that request counts use:
    ///
    /// - Microsoft: `microsoft.token`, `microsoft.admin_consent`, `microsoft.users`,
    ///   `microsoft.users_delta`, `microsoft.groups`, `microsoft.group_members`,
    ///   `microsoft.registration_details`, `microsoft.permission_grants`,
    ///   `microsoft.service_principals`, `microsoft.message_rules`.
    /// - Google: `google.authorize`, `google.token`, `google.customer`, `google.users`,
    ///   `google.groups`, `google.members`, `google.tokens`, `google.gmail_filters`,
    ///   `google.gmail_forwarding_addresses`.
    /// - Okta: `okta.token`, `okta.users`, `okta.groups`, `okta.group_users`, `okta.apps`,
    ///   `okta.app_users`, `okta.factors`.
    ///
    /// An endpoint consumes a fault of a kind it has no response for and responds normally.
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
    /// Okta's 429 with `X-Rate-Limit-*` headers. `Date` shows the server's clock, which is the
    /// real time plus `server_clock_offset_seconds` (negative for a clock behind the client's).
    /// `X-Rate-Limit-Reset` is `reset_after_seconds` later on that clock, in Unix seconds.
    OktaRateLimit {
        reset_after_seconds: i64,
        #[serde(default)]
        server_clock_offset_seconds: i64,
    },
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
    /// The token endpoint returns 400 `invalid_scope` naming the requested scopes.
    InvalidScope,
    /// The consent endpoint redirects back with `error=access_denied`, as when the admin
    /// declines.
    ConsentDeclined,
    /// Microsoft's admin consent redirects back with `error_subcode=cancel`, as when the admin
    /// cancels. Google does not tell a cancel from a refusal, so it redirects as for
    /// `ConsentDeclined`.
    ConsentCancelled,
    /// Okta's 403 `E0000006`, as for a token without the scope or admin role the call needs.
    OktaForbidden,
}

/// A Google authorization code not yet redeemed, with what the token request must repeat.
#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    pub client_id: String,
    pub redirect_uri: String,
    /// BASE64URL(SHA-256(code_verifier)), without padding.
    pub code_challenge: String,
    pub scope: String,
    /// Whether the authorization request had `access_type=offline`, which alone gets a refresh
    /// token.
    pub offline: bool,
    pub issued_at: Instant,
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
    /// Microsoft: the scopes the last admin consent granted, per tenant id.
    pub consented_scopes: BTreeMap<String, Vec<String>>,
    /// Google: authorization codes by code. Redeeming a code removes it.
    pub authorization_codes: HashMap<String, AuthorizationCode>,
    /// Google: refresh tokens issued by the code exchange, with their scope.
    pub refresh_tokens: HashMap<String, String>,
    /// Google: the user a JWT-bearer access token acts as, so that Gmail can resolve `me`.
    pub token_subjects: HashMap<String, String>,
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
            consented_scopes: BTreeMap::new(),
            authorization_codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            token_subjects: HashMap::new(),
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
        bearer_token(headers).is_some_and(|token| self.tokens.contains(token))
    }

    pub fn issue_token(&mut self) -> String {
        let token = random_token();
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

    /// Adds or replaces a user in the directory of `provider` (`microsoft`, `google` or `okta`),
    /// as a change that the next sync should find. Microsoft records it for delta queries, and
    /// Okta sets the user's `lastUpdated` to the current time so that `lastUpdated gt` filters
    /// find it.
    pub fn upsert_user(&mut self, provider: &str, user: User) -> Result<(), UnknownProvider> {
        self.upsert(Provider::parse(provider)?, user);
        Ok(())
    }

    /// Removes a user from the directory of `provider` (`microsoft`, `google` or `okta`).
    /// Microsoft records the removal for delta queries.
    pub fn remove_user(&mut self, provider: &str, id: &str) -> Result<(), UnknownProvider> {
        self.remove(Provider::parse(provider)?, id);
        Ok(())
    }

    /// Adds or replaces a Microsoft user, as a directory change that delta queries report.
    pub fn upsert_microsoft_user(&mut self, user: User) {
        self.upsert(Provider::Microsoft, user);
    }

    /// Removes a Microsoft user, as a directory change that delta queries report.
    pub fn remove_microsoft_user(&mut self, id: &str) {
        self.remove(Provider::Microsoft, id);
    }

    fn directory_mut(&mut self, provider: Provider) -> &mut Directory {
        match provider {
            Provider::Microsoft => &mut self.config.microsoft,
            Provider::Google => &mut self.config.google,
            Provider::Okta => &mut self.config.okta,
        }
    }

    fn upsert(&mut self, provider: Provider, mut user: User) {
        if provider == Provider::Okta {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            user.last_updated = Some(now);
        }
        let id = user.id.clone();
        let users = &mut self.directory_mut(provider).users;
        match users.iter_mut().find(|u| u.id == user.id) {
            Some(existing) => *existing = user,
            None => users.push(user),
        }
        if provider == Provider::Microsoft {
            self.version += 1;
            self.changed_at.insert(id.clone(), self.version);
            // A user added back after a removal is reported as present, not as removed.
            self.removed.retain(|(removed, _)| *removed != id);
        }
    }

    fn remove(&mut self, provider: Provider, id: &str) {
        self.directory_mut(provider).users.retain(|u| u.id != id);
        if provider == Provider::Microsoft {
            self.version += 1;
            self.changed_at.remove(id);
            self.removed.retain(|(removed, _)| removed != id);
            self.removed.push((id.to_owned(), self.version));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Microsoft,
    Google,
    Okta,
}

impl Provider {
    fn parse(name: &str) -> Result<Self, UnknownProvider> {
        match name {
            "microsoft" => Ok(Self::Microsoft),
            "google" => Ok(Self::Google),
            "okta" => Ok(Self::Okta),
            _ => Err(UnknownProvider(name.to_owned())),
        }
    }
}

/// A provider name that is not `microsoft`, `google` or `okta`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider {0:?}: expected \"microsoft\", \"google\" or \"okta\"")]
pub struct UnknownProvider(pub String);

/// Returns the bearer token of a request, if it has one.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Returns 24 random bytes in unpadded base64url, for tokens and codes.
pub(crate) fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}
