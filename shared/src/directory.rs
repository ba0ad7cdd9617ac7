//! Directory records from identity providers: the provider-neutral form the sync worker reads
//! them into, the changes it sends to the directory writer, and the items that store them.
//!
//! A directory user is keyed by the provider's immutable id, never by email, so a changed email
//! updates the same record. Each stored record keeps a SHA-256 of its content; the worker
//! compares it before sending anything, so an unchanged record costs no write.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::envelope::EnvelopeError;
use crate::ids::TenantId;
use crate::integration::Provider;

/// The state of an account in its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    Suspended,
    Archived,
    Deprovisioned,
}

/// A user as one provider lists it. `None` means the provider left the value out. The worker
/// then keeps the stored value, so an unknown is never read as `false`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
    /// The provider's immutable id.
    pub id: String,
    /// Canonical email; `None` when the provider has no usable address (a guest without a
    /// mailbox).
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// Other canonical addresses of the mailbox.
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub is_admin: Option<bool>,
    /// Whether MFA or 2-step verification is enrolled.
    #[serde(default)]
    pub mfa: Option<bool>,
    #[serde(default)]
    pub status: Option<AccountStatus>,
    /// A guest from another organisation (Microsoft `userType: Guest`). Guests are never
    /// matched to employees by email.
    #[serde(default)]
    pub guest: bool,
}

impl DirectoryUser {
    /// Fills what the provider left unknown from the stored record.
    pub fn keep_known(&mut self, stored: &DirectoryUser) {
        self.is_admin = self.is_admin.or(stored.is_admin);
        self.mfa = self.mfa.or(stored.mfa);
        self.status = self.status.or(stored.status);
    }

    pub fn content_hash(&self) -> String {
        content_hash(self)
    }
}

/// A group as one provider lists it, with its members' provider ids in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryGroup {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub member_ids: Vec<String>,
}

impl DirectoryGroup {
    pub fn content_hash(&self) -> String {
        content_hash(self)
    }
}

fn content_hash<T: Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// A third-party app a user granted access to their account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OauthGrant {
    pub client_id: String,
    #[serde(default)]
    pub app_name: Option<String>,
    pub scopes: Vec<String>,
}

/// An inbox rule or mail filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailRule {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub forward_to: Vec<String>,
    #[serde(default)]
    pub redirect_to: Vec<String>,
    #[serde(default)]
    pub delete: bool,
    #[serde(default)]
    pub mark_read: bool,
    /// Moves mail out of the inbox, into this folder or label.
    #[serde(default)]
    pub move_to_folder: Option<String>,
    /// Forwards or redirects outside the company domains, deletes, marks read or moves mail
    /// out of the inbox: what a mailbox takeover sets up to hide or steal mail.
    #[serde(default)]
    pub suspicious: bool,
}

impl MailRule {
    /// Sets `suspicious` against the tenant's company domains.
    pub fn assess(&mut self, company: &crate::email::CompanyDomains) {
        let outside = self
            .forward_to
            .iter()
            .chain(&self.redirect_to)
            .any(|address| match crate::email::canonical_email(address) {
                Ok(email) => !company.contains(&email),
                Err(_) => true,
            });
        self.suspicious = outside || self.delete || self.mark_read || self.move_to_folder.is_some();
    }
}

/// A single sign-on app a user is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoApp {
    pub id: String,
    pub label: String,
    #[serde(default)]
    pub sign_on_mode: Option<String>,
}

/// A user's single sign-on to an app through the provider, the latest in the window read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    pub app_id: String,
    pub app_label: String,
    pub last_sign_in: String,
}

/// One user's activity data of one kind. An empty list removes the stored one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "items", rename_all = "snake_case")]
pub enum Activity {
    OauthGrants(Vec<OauthGrant>),
    MailRules(Vec<MailRule>),
    SsoApps(Vec<SsoApp>),
    SignIns(Vec<SignIn>),
}

impl Activity {
    pub fn kind(&self) -> &'static str {
        match self {
            Activity::OauthGrants(_) => "oauth_grants",
            Activity::MailRules(_) => "mail_rules",
            Activity::SsoApps(_) => "sso_apps",
            Activity::SignIns(_) => "sign_ins",
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Activity::OauthGrants(items) => items.is_empty(),
            Activity::MailRules(items) => items.is_empty(),
            Activity::SsoApps(items) => items.is_empty(),
            Activity::SignIns(items) => items.is_empty(),
        }
    }

    pub fn content_hash(&self) -> String {
        content_hash(self)
    }
}

/// Every kind of activity data, as [`Activity::kind`] names them.
pub const ACTIVITY_KINDS: [&str; 4] = ["oauth_grants", "mail_rules", "sso_apps", "sign_ins"];

pub fn activity_prefix(provider: Provider, kind: &str) -> String {
    format!("ACTIVITY#{provider}#{kind}#")
}

pub fn activity_sk(provider: Provider, kind: &str, user_id: &str) -> String {
    format!("ACTIVITY#{provider}#{kind}#{user_id}")
}

/// One user's activity data of one kind, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityItem {
    pub pk: String,
    pub sk: String,
    pub provider: Provider,
    pub user_id: String,
    #[serde(default)]
    pub employee_id: Option<String>,
    pub activity: Activity,
    pub content_hash: String,
    pub updated_at: String,
}

/// One change for the directory writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum DirectoryChange {
    /// A new or changed user.
    User {
        user: DirectoryUser,
    },
    /// A user gone from a complete listing or reported deleted.
    RemoveUser {
        id: String,
    },
    Group {
        group: DirectoryGroup,
    },
    RemoveGroup {
        id: String,
    },
    /// A user's current activity data of one kind.
    Activity {
        user_id: String,
        activity: Activity,
    },
}

pub const DIRECTORY_MESSAGE_VERSION: u32 = 1;

/// Changes from one page of a sync run, for the directory queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryMessage {
    pub version: u32,
    pub tenant_id: TenantId,
    pub provider: Provider,
    pub run_id: String,
    pub changes: Vec<DirectoryChange>,
    pub sent_at: DateTime<Utc>,
}

impl DirectoryMessage {
    pub fn from_body(body: &str) -> Result<Self, EnvelopeError> {
        crate::envelope::decode(body, DIRECTORY_MESSAGE_VERSION, |m: &Self| m.version)
    }
}

pub const REVOCATION_JOB_VERSION: u32 = 1;

/// The step a revocation cascade is at. Each step deletes what it handles, so a step that
/// runs again after a crash starts from what is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationStep {
    /// Directory users, their activity data and the employees only they hold.
    Users,
    /// Directory groups and employees' memberships of them.
    Groups,
    /// Activity data without a directory user, and the sync run's own items.
    Leftovers,
    /// The integration item itself.
    Finish,
}

/// One page of the cascade that removes a revoked integration's data, for the directory
/// queue. The message that finishes a page queues the next one before it is acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevocationJob {
    pub version: u32,
    pub tenant_id: TenantId,
    pub provider: Provider,
    pub revocation_id: String,
    pub step: RevocationStep,
    pub sent_at: DateTime<Utc>,
}

/// A message of the directory queue: changes from a sync run, or a page of a revocation.
#[derive(Debug, Clone, PartialEq)]
pub enum DirectoryQueueMessage {
    Changes(DirectoryMessage),
    Revocation(RevocationJob),
}

impl DirectoryQueueMessage {
    pub fn from_body(body: &str) -> Result<Self, EnvelopeError> {
        let value: serde_json::Value = serde_json::from_str(body)?;
        if value.get("revocation_id").is_some() {
            crate::envelope::decode(body, REVOCATION_JOB_VERSION, |m: &RevocationJob| m.version)
                .map(Self::Revocation)
        } else {
            DirectoryMessage::from_body(body).map(Self::Changes)
        }
    }
}

pub const DIRECTORY_USER_SK_PREFIX: &str = "DIRUSER#";

pub fn directory_user_prefix(provider: Provider) -> String {
    format!("{DIRECTORY_USER_SK_PREFIX}{provider}#")
}

pub fn directory_user_sk(provider: Provider, id: &str) -> String {
    format!("{DIRECTORY_USER_SK_PREFIX}{provider}#{id}")
}

/// Returns the group id a directory group has beside custom groups. Provider ids can contain
/// any character, so the id is derived from a hash of them.
pub fn directory_group_id(provider: Provider, provider_group_id: &str) -> String {
    let digest = Sha256::digest(provider_group_id.as_bytes());
    format!("{provider}-{}", &hex::encode(digest)[..24])
}

/// Returns the source value an integration gives the employees it brings.
pub fn integration_source(provider: Provider) -> String {
    crate::table::source::integration(provider.as_str())
}

/// Returns the employee attribute that names the directory user an integration links.
pub fn employee_link_attribute(provider: Provider) -> String {
    format!("directory_{provider}")
}

/// A directory user as stored: the provider's record, its hash and the employee it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUserItem {
    pub pk: String,
    pub sk: String,
    pub provider: Provider,
    #[serde(flatten)]
    pub user: DirectoryUser,
    /// The employee the record belongs to; `None` for a guest or a user without an email.
    #[serde(default)]
    pub employee_id: Option<String>,
    pub content_hash: String,
    pub first_seen: String,
    pub updated_at: String,
    /// When a complete listing or the provider last reported the user gone. The record stays
    /// while its employee does, so the console can show that the directory account is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<String>,
}

/// A directory group as stored beside custom groups (`GROUP#<group id>`, kind `directory`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryGroupItem {
    pub pk: String,
    pub sk: String,
    pub group_id: String,
    pub name: String,
    pub kind: crate::table::GroupKind,
    pub created_at: String,
    pub provider: Provider,
    pub provider_group_id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub member_ids: Vec<String>,
    /// Empty while some members had no stored record yet, so the next run sends the group
    /// again and links them.
    pub content_hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_keep_stored_ones() {
        let stored = DirectoryUser {
            id: "u1".into(),
            is_admin: Some(true),
            mfa: Some(false),
            status: Some(AccountStatus::Suspended),
            ..Default::default()
        };
        let mut listed = DirectoryUser {
            id: "u1".into(),
            mfa: Some(true),
            ..Default::default()
        };
        listed.keep_known(&stored);
        assert_eq!(listed.is_admin, Some(true));
        assert_eq!(listed.mfa, Some(true));
        assert_eq!(listed.status, Some(AccountStatus::Suspended));
    }

    #[test]
    fn hash_changes_with_content() {
        let a = DirectoryUser {
            id: "u1".into(),
            email: Some("a@example.com".into()),
            ..Default::default()
        };
        let mut b = a.clone();
        assert_eq!(a.content_hash(), b.content_hash());
        b.email = Some("b@example.com".into());
        assert_ne!(a.content_hash(), b.content_hash());
    }

    #[test]
    fn group_ids_are_safe_and_stable() {
        let id = directory_group_id(Provider::Okta, "00g1#weird/id");
        assert_eq!(id, directory_group_id(Provider::Okta, "00g1#weird/id"));
        assert!(id.starts_with("okta-"));
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
}
