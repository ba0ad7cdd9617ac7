//! The single DynamoDB table's layout: key attributes, key formats and item types.
//!
//! Every partition key starts with the tenant (`TENANT#<tenant id>`), so no query or write can
//! reach another tenant's items without naming that tenant. Sort keys name the item kind:
//!
//! | item | sort key |
//! | --- | --- |
//! | tenant | `TENANT` |
//! | extension key | `EXTKEY#<key id>` |
//! | browser profile | `PROFILE#<install id>` |
//! | SaaS account | `ACCOUNT#<app domain>#<account email>` |
//! | app discovered | `APP#<app domain>` |
//! | processed-event marker | `EVENT#<install id>#<event id>` |
//!
//! Index `gsi1` finds an email's SaaS accounts: `gsi1pk = TENANT#<tenant>#EMAIL#<email>`,
//! `gsi1sk = ACCOUNT#<app domain>`.

use serde::{Deserialize, Serialize};

use crate::email::Email;
use crate::ids::TenantId;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
/// The table's TTL attribute: epoch seconds after which DynamoDB deletes the item.
pub const EXPIRES_AT: &str = "expires_at";

pub fn tenant_pk(tenant_id: &TenantId) -> String {
    format!("TENANT#{tenant_id}")
}

pub const TENANT_SK: &str = "TENANT";

pub fn extension_key_sk(key_id: &str) -> String {
    format!("EXTKEY#{key_id}")
}

pub fn profile_sk(install_id: &str) -> String {
    format!("PROFILE#{install_id}")
}

pub fn account_sk(app_domain: &str, account_email: &Email) -> String {
    format!("ACCOUNT#{app_domain}#{account_email}")
}

pub fn app_sk(app_domain: &str) -> String {
    format!("APP#{app_domain}")
}

pub fn event_marker_sk(install_id: &str, event_id: &str) -> String {
    format!("EVENT#{install_id}#{event_id}")
}

pub fn email_gsi1_pk(tenant_id: &TenantId, email: &Email) -> String {
    format!("TENANT#{tenant_id}#EMAIL#{email}")
}

pub fn account_gsi1_sk(app_domain: &str) -> String {
    format!("ACCOUNT#{app_domain}")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantItem {
    pub pk: String,
    pub sk: String,
    pub tenant_id: TenantId,
    pub name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionKeyItem {
    pub pk: String,
    pub sk: String,
    pub tenant_id: TenantId,
    pub key_id: String,
    pub name: String,
    pub secret_sha256: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileItem {
    pub pk: String,
    pub sk: String,
    pub install_id: String,
    pub browser: String,
    pub browser_version: String,
    pub extension_version: String,
    pub managed: bool,
    #[serde(default)]
    pub identity_email: Option<String>,
    #[serde(default)]
    pub identity_source: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountItem {
    pub pk: String,
    pub sk: String,
    pub app_domain: String,
    pub app_name: String,
    pub account_email: String,
    #[serde(default)]
    pub login_methods: Vec<String>,
    #[serde(default)]
    pub identity_providers: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppItem {
    pub pk: String,
    pub sk: String,
    pub app_domain: String,
    pub app_name: String,
    #[serde(default)]
    pub login_methods: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
}
