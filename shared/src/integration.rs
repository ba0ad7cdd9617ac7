//! Identity-provider integrations: the providers, the scope catalogue, the stored integration,
//! the provider endpoints, and the guard on Okta domains an administrator submits.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Lookup};
use crate::ids::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Microsoft,
    Google,
    Okta,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Microsoft, Provider::Google, Provider::Okta];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Microsoft => "microsoft",
            Provider::Google => "google",
            Provider::Okta => "okta",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == value)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A use Rollcall makes of a provider's data. Each needs one or more scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Employees: names, emails, aliases, admin flag and account state.
    Directory,
    Groups,
    /// MFA or 2-step verification status.
    Mfa,
    /// Third-party apps employees granted access to their account.
    OauthGrants,
    /// Inbox rules and filters that forward, delete or hide mail.
    MailboxRules,
    /// Okta single sign-on apps and their assignments.
    SsoApps,
    /// Sign-ins to apps through the provider.
    SignIns,
}

/// One scope an integration can request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Scope {
    /// The scope exactly as the provider names it.
    pub scope: &'static str,
    pub purpose: &'static str,
    pub features: &'static [Feature],
    /// Required scopes cannot be switched off.
    pub required: bool,
    /// Google only: requested by Rollcall's service account through domain-wide delegation,
    /// not by the administrator's consent.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub delegated: bool,
}

const fn scope(
    scope: &'static str,
    purpose: &'static str,
    features: &'static [Feature],
    required: bool,
) -> Scope {
    Scope {
        scope,
        purpose,
        features,
        required,
        delegated: false,
    }
}

const MICROSOFT_SCOPES: &[Scope] = &[
    scope(
        "https://graph.microsoft.com/User.Read.All",
        "Read users: names, emails, aliases and whether the account is enabled.",
        &[Feature::Directory],
        true,
    ),
    scope(
        "https://graph.microsoft.com/GroupMember.Read.All",
        "Read groups and their members.",
        &[Feature::Groups],
        false,
    ),
    scope(
        "https://graph.microsoft.com/AuditLog.Read.All",
        "Read each user's MFA registration.",
        &[Feature::Mfa],
        false,
    ),
    scope(
        "https://graph.microsoft.com/DelegatedPermissionGrant.Read.All",
        "Read the permissions users granted to third-party apps.",
        &[Feature::OauthGrants],
        false,
    ),
    scope(
        "https://graph.microsoft.com/Application.Read.All",
        "Name the third-party apps behind those grants.",
        &[Feature::OauthGrants],
        false,
    ),
    scope(
        "https://graph.microsoft.com/MailboxSettings.Read",
        "Read inbox rules that forward, delete or move mail.",
        &[Feature::MailboxRules],
        false,
    ),
];

const GOOGLE_SCOPES: &[Scope] = &[
    scope(
        "https://www.googleapis.com/auth/admin.directory.user.readonly",
        "Read users: names, emails, aliases, admin flag, 2-step verification and account state.",
        &[Feature::Directory, Feature::Mfa],
        true,
    ),
    scope(
        "https://www.googleapis.com/auth/admin.directory.customer.readonly",
        "Identify the Workspace account and its primary domain.",
        &[Feature::Directory],
        true,
    ),
    scope(
        "https://www.googleapis.com/auth/admin.directory.group.readonly",
        "Read groups and their members.",
        &[Feature::Groups],
        false,
    ),
    scope(
        "https://www.googleapis.com/auth/admin.directory.user.security",
        "Read the third-party apps users granted access to their account.",
        &[Feature::OauthGrants],
        false,
    ),
    Scope {
        delegated: true,
        ..scope(
            "https://www.googleapis.com/auth/gmail.settings.basic",
            "Read Gmail filters and forwarding addresses.",
            &[Feature::MailboxRules],
            false,
        )
    },
];

/// Okta scopes are granted to the service app in the Okta admin console, so all are required.
const OKTA_SCOPES: &[Scope] = &[
    scope(
        "okta.users.read",
        "Read users, their status and their MFA factors.",
        &[Feature::Directory, Feature::Mfa],
        true,
    ),
    scope(
        "okta.groups.read",
        "Read groups and their members.",
        &[Feature::Groups],
        true,
    ),
    scope(
        "okta.apps.read",
        "Read single sign-on apps and who is assigned to them.",
        &[Feature::SsoApps],
        true,
    ),
    scope(
        "okta.logs.read",
        "Read sign-ins to apps from the system log.",
        &[Feature::SignIns],
        true,
    ),
];

/// Returns the scopes Rollcall can request from `provider`.
pub fn catalogue(provider: Provider) -> &'static [Scope] {
    match provider {
        Provider::Microsoft => MICROSOFT_SCOPES,
        Provider::Google => GOOGLE_SCOPES,
        Provider::Okta => OKTA_SCOPES,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error(
        "{scope} is not a {provider} scope; name scopes in full, as the scope catalogue lists them"
    )]
    Unknown { provider: Provider, scope: String },
    #[error("{scope} is required and cannot be switched off")]
    Required { scope: String },
}

/// Returns the scopes to request once the administrator has switched off `disabled`.
pub fn chosen_scopes(
    provider: Provider,
    disabled: &[String],
) -> Result<Vec<&'static str>, ScopeError> {
    let scopes = catalogue(provider);
    for name in disabled {
        match scopes.iter().find(|s| s.scope == name) {
            None => {
                return Err(ScopeError::Unknown {
                    provider,
                    scope: name.clone(),
                });
            }
            Some(s) if s.required => {
                return Err(ScopeError::Required {
                    scope: name.clone(),
                });
            }
            Some(_) => {}
        }
    }
    Ok(scopes
        .iter()
        .filter(|s| !disabled.contains(&s.scope.to_owned()))
        .map(|s| s.scope)
        .collect())
}

/// Returns the features unavailable with only `enabled` scopes: a feature needs all of its
/// scopes.
pub fn disabled_features(provider: Provider, enabled: &[String]) -> Vec<Feature> {
    let mut features: Vec<Feature> = catalogue(provider)
        .iter()
        .filter(|s| !enabled.iter().any(|e| e == s.scope))
        .flat_map(|s| s.features.iter().copied())
        .collect();
    features.sort();
    features.dedup();
    features
}

/// Returns whether the integration's scopes allow `feature`.
pub fn allows(provider: Provider, enabled: &[String], feature: Feature) -> bool {
    !disabled_features(provider, enabled).contains(&feature)
}

const GOOGLE_USER_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly";

/// Returns the scopes the Google service account requests through domain-wide delegation: the
/// enabled delegated scopes plus the user scope it needs to find the mailboxes. When no
/// delegated scope is enabled, it returns none.
pub fn delegated_scopes(enabled: &[String]) -> Vec<String> {
    let delegated: Vec<String> = GOOGLE_SCOPES
        .iter()
        .filter(|s| s.delegated && enabled.iter().any(|e| e == s.scope))
        .map(|s| s.scope.to_owned())
        .collect();
    if delegated.is_empty() {
        return delegated;
    }
    std::iter::once(GOOGLE_USER_SCOPE.to_owned())
        .chain(delegated)
        .collect()
}

/// Returns the scopes the administrator consents to: the chosen scopes less the delegated ones.
pub fn consent_scopes(provider: Provider, chosen: &[String]) -> Vec<String> {
    chosen
        .iter()
        .filter(|c| {
            !catalogue(provider)
                .iter()
                .any(|s| s.delegated && s.scope == c.as_str())
        })
        .cloned()
        .collect()
}

pub fn integration_sk(provider: Provider) -> String {
    format!("INTEGRATION#{provider}")
}

pub const INTEGRATION_SK_PREFIX: &str = "INTEGRATION#";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    Connected,
    /// The provider rejected the stored grant (`invalid_grant`); an administrator must connect
    /// again.
    ReauthorisationRequired,
    /// The provider refused a request for lack of permission; an administrator must act.
    NeedsAttention,
    /// An administrator deleted the integration. Its secret is gone, no sync runs, and the
    /// cascade that removes its data is under way; the item itself goes last.
    Revoking,
}

/// Google domain-wide delegation: Rollcall's service account acts as `admin_email`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub service_account: String,
    pub client_id: String,
    pub admin_email: String,
    pub scopes: Vec<String>,
    pub checked_at: String,
}

/// The partition of index `gsi1` that lists every integration of every tenant, for the hourly
/// scheduler.
pub const INTEGRATIONS_GSI1_PK: &str = "INTEGRATIONS";

pub fn integrations_gsi1_sk(tenant_id: &TenantId, provider: Provider) -> String {
    format!("{tenant_id}#{provider}")
}

/// The outcome of a sync run, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    pub run_id: String,
    /// `full` reads the whole directory; `incremental` reads changes since the last run.
    pub mode: String,
    pub started_at: String,
    pub finished_at: String,
    /// False when the run stopped before reading the whole directory; such a run removes
    /// nothing.
    pub complete: bool,
    pub added: u64,
    pub updated: u64,
    pub removed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A connected identity provider; one per provider per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationItem {
    pub pk: String,
    pub sk: String,
    #[serde(default)]
    pub gsi1pk: String,
    #[serde(default)]
    pub gsi1sk: String,
    pub tenant_id: TenantId,
    pub provider: Provider,
    /// Microsoft: the directory (tenant) id; Google: the customer id; Okta: the org domain.
    pub provider_tenant: String,
    /// Google: the primary domain; Okta: the org domain; Microsoft: empty.
    #[serde(default)]
    pub domain: String,
    pub scopes: Vec<String>,
    /// The Secrets Manager secret holding this integration's credential.
    pub secret_arn: String,
    /// Okta: the service app's client id. Google and Microsoft use Rollcall's own app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub status: IntegrationStatus,
    pub connected_at: String,
    pub connected_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<Delegation>,
    /// The last problem an administrator must act on, in words fit to show them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Microsoft Graph: the deltaLink of the last complete user listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full_sync_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<SyncSummary>,
    /// Set with status `revoking`: the id of the cascade and when it was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
}

/// The providers' API addresses. A deployment leaves `PROVIDER_BASE_URL` unset and reaches the
/// real providers. The local stack sets it to the mock provider server, which serves every
/// provider's paths under one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEndpoints {
    pub microsoft_login: String,
    pub microsoft_graph: String,
    pub google_accounts: String,
    pub google_token: String,
    pub google_admin: String,
    pub google_gmail: String,
    /// When set, every Okta org is reached here instead of at `https://<org domain>`.
    pub okta_override: Option<String>,
}

impl ProviderEndpoints {
    pub fn real() -> Self {
        Self {
            microsoft_login: "https://login.microsoftonline.com".to_owned(),
            microsoft_graph: "https://graph.microsoft.com".to_owned(),
            google_accounts: "https://accounts.google.com".to_owned(),
            google_token: "https://oauth2.googleapis.com/token".to_owned(),
            google_admin: "https://admin.googleapis.com".to_owned(),
            google_gmail: "https://gmail.googleapis.com".to_owned(),
            okta_override: None,
        }
    }

    /// Returns every provider under one base URL, as the mock provider server serves them.
    pub fn single(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            microsoft_login: base.to_owned(),
            microsoft_graph: base.to_owned(),
            google_accounts: base.to_owned(),
            google_token: format!("{base}/token"),
            google_admin: base.to_owned(),
            google_gmail: base.to_owned(),
            okta_override: Some(base.to_owned()),
        }
    }

    pub fn from_lookup(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        match lookup
            .get("PROVIDER_BASE_URL")
            .filter(|v| !v.trim().is_empty())
        {
            None => Ok(Self::real()),
            Some(base) if base.starts_with("http://127.0.0.1:") => Ok(Self::single(&base)),
            Some(_) => Err(ConfigError::Invalid {
                name: "PROVIDER_BASE_URL",
                reason:
                    "only a mock provider server on http://127.0.0.1 may replace the real providers"
                        .to_owned(),
            }),
        }
    }

    /// Returns the base URL of an Okta org whose domain passed [`okta_domain`].
    pub fn okta(&self, domain: &str) -> String {
        match &self.okta_override {
            Some(base) => base.clone(),
            None => format!("https://{domain}"),
        }
    }
}

/// Okta's own domain suffixes; an org is `<name>.<suffix>`.
pub const OKTA_DOMAIN_SUFFIXES: &[&str] = &[
    "okta.com",
    "oktapreview.com",
    "okta-emea.com",
    "okta-gov.com",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("the Okta domain is empty")]
    Empty,
    #[error("the Okta domain must use https")]
    NotHttps,
    #[error("the Okta domain must not carry a user name or password")]
    Userinfo,
    #[error("the Okta domain must not carry a port")]
    Port,
    #[error("the Okta domain must be a host name only, with no path, query or fragment")]
    Path,
    #[error("the Okta domain must be a host name, not an IP address")]
    IpAddress,
    #[error("the Okta domain is not a valid host name")]
    Invalid,
    #[error("the Okta domain must be an org's subdomain of one of: {0}")]
    NotOkta(String),
}

/// Checks an Okta org domain an administrator submitted, as `acme.okta.com` or
/// `https://acme.okta.com`, and returns the lowercase host. Only hosts under `suffixes` pass,
/// so the function that calls the org can never be pointed at another address.
pub fn okta_domain(input: &str, suffixes: &[String]) -> Result<String, DomainError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(DomainError::Empty);
    }
    let rest = match input.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => rest,
        Some(_) => return Err(DomainError::NotHttps),
        None => input,
    };

    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if !(tail.is_empty() || tail == "/") {
        return Err(DomainError::Path);
    }

    if authority.contains('@') {
        return Err(DomainError::Userinfo);
    }
    if authority.starts_with('[') {
        return Err(DomainError::IpAddress);
    }
    if authority.contains(':') {
        return Err(DomainError::Port);
    }
    if authority.parse::<std::net::IpAddr>().is_ok() {
        return Err(DomainError::IpAddress);
    }

    let host = idna::domain_to_ascii_strict(authority).map_err(|_| DomainError::Invalid)?;
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if !labels_ok || host.len() > 253 {
        return Err(DomainError::Invalid);
    }
    // Hosts such as `127.1` or `0x7f.1` are numeric; a real org name never is.
    if host
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(DomainError::IpAddress);
    }

    let allowed = suffixes.iter().any(|suffix| {
        host.strip_suffix(suffix.as_str())
            .and_then(|name| name.strip_suffix('.'))
            .is_some_and(|name| !name.is_empty())
    });
    if !allowed {
        return Err(DomainError::NotOkta(suffixes.join(", ")));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suffixes() -> Vec<String> {
        OKTA_DOMAIN_SUFFIXES.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn okta_domains_that_pass() {
        for (input, host) in [
            ("acme.okta.com", "acme.okta.com"),
            ("https://acme.okta.com", "acme.okta.com"),
            ("HTTPS://Acme.Okta.com/", "acme.okta.com"),
            (" acme-dev.oktapreview.com ", "acme-dev.oktapreview.com"),
            ("eu.acme.okta-emea.com", "eu.acme.okta-emea.com"),
        ] {
            assert_eq!(
                okta_domain(input, &suffixes()).as_deref(),
                Ok(host),
                "{input}"
            );
        }
    }

    #[test]
    fn okta_domain_guard_rejects_other_addresses() {
        use DomainError::*;
        for (input, error) in [
            ("", Empty),
            ("http://acme.okta.com", NotHttps),
            ("ftp://acme.okta.com", NotHttps),
            ("https://user:pw@acme.okta.com", Userinfo),
            ("https://acme.okta.com@evil.example", Userinfo),
            ("https://acme.okta.com:8443", Port),
            ("https://acme.okta.com:443", Port),
            ("https://acme.okta.com/api/v1", Path),
            ("https://acme.okta.com?x=1", Path),
            ("https://acme.okta.com#x", Path),
            ("https://acme.okta.com\\@evil.example", Path),
            ("https://127.0.0.1", IpAddress),
            ("169.254.169.254", IpAddress),
            ("https://[::1]", IpAddress),
            ("https://[::ffff:127.0.0.1]:443", IpAddress),
            ("0x7f.1", IpAddress),
            ("okta.com", NotOkta(OKTA_DOMAIN_SUFFIXES.join(", "))),
            (
                "acme.okta.com.evil.example",
                NotOkta(OKTA_DOMAIN_SUFFIXES.join(", ")),
            ),
            ("evilokta.com", NotOkta(OKTA_DOMAIN_SUFFIXES.join(", "))),
            ("localhost", NotOkta(OKTA_DOMAIN_SUFFIXES.join(", "))),
            ("acme..okta.com", Invalid),
            ("acme_x.okta.com", Invalid),
        ] {
            assert_eq!(okta_domain(input, &suffixes()), Err(error), "{input}");
        }
    }

    #[test]
    fn scopes_switch_off_features() {
        let enabled = chosen_scopes(
            Provider::Microsoft,
            &["https://graph.microsoft.com/Application.Read.All".to_owned()],
        )
        .unwrap();
        let enabled: Vec<String> = enabled.into_iter().map(str::to_owned).collect();
        assert_eq!(
            disabled_features(Provider::Microsoft, &enabled),
            vec![Feature::OauthGrants]
        );
        assert!(allows(Provider::Microsoft, &enabled, Feature::MailboxRules));
        assert!(matches!(
            chosen_scopes(
                Provider::Microsoft,
                &["https://graph.microsoft.com/User.Read.All".to_owned()]
            ),
            Err(ScopeError::Required { .. })
        ));
        assert!(matches!(
            chosen_scopes(Provider::Google, &["Mail.Read".to_owned()]),
            Err(ScopeError::Unknown { .. })
        ));
    }

    #[test]
    fn delegated_google_scopes_follow_the_choice() {
        let all: Vec<String> = chosen_scopes(Provider::Google, &[])
            .unwrap()
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            delegated_scopes(&all),
            vec![
                "https://www.googleapis.com/auth/admin.directory.user.readonly",
                "https://www.googleapis.com/auth/gmail.settings.basic"
            ]
        );
    }
}
