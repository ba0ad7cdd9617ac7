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
//! | employee | `EMPLOYEE#<employee id>` |
//! | email owner (one employee per email) | `EMAIL#<canonical email>` |
//! | processed identity observation | `OBSERVATION#<observation id>` |
//! | administrator | `ADMIN#<canonical email>` |
//! | group | `GROUP#<group id>` |
//! | group name (one group per name) | `GROUPNAME#<lowercase name>` |
//! | inactivity sweep audit entry | `SWEEP#<date>` |
//!
//! Index `gsi2` lists employees by licence state in name order (`gsi2pk` is the licence
//! partition, `gsi2sk = <lowercase name or email>#<employee id>`).
//!
//! Index `gsi1` is shared by two access patterns whose partition keys cannot collide:
//! an email's SaaS accounts (`gsi1pk = TENANT#<tenant>#EMAIL#<email>`,
//! `gsi1sk = ACCOUNT#<app domain>`), and employees by licence state in first-seen order
//! (`gsi1pk = TENANT#<tenant>#LICENCE#<licensed|unlicensed>`,
//! `gsi1sk = <first seen>#<employee id>`). Tenants are listed under `gsi1pk = TENANTS`.
//!
//! Index `gsi3` lists employees by their last extension activity, oldest first
//! (`gsi3pk = TENANT#<tenant>#EXTENSION_ACTIVITY`, `gsi3sk = <last activity>#<employee id>`).
//! It is sparse: the inactivity sweep removes an employee it has dealt with, and the next
//! activity adds them again.

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

pub fn employee_sk(employee_id: &str) -> String {
    format!("EMPLOYEE#{employee_id}")
}

pub fn email_owner_sk(email: &str) -> String {
    format!("EMAIL#{email}")
}

pub fn observation_sk(observation_id: &str) -> String {
    format!("OBSERVATION#{observation_id}")
}

pub fn licence_gsi1_pk(tenant_id: &TenantId, state: LicenceState) -> String {
    format!("TENANT#{tenant_id}#LICENCE#{}", state.as_str())
}

pub const GSI2: &str = "gsi2";
pub const GSI3: &str = "gsi3";
pub const GSI3_PK: &str = "gsi3pk";
pub const GSI3_SK: &str = "gsi3sk";

/// The `gsi1` partition that lists every tenant.
pub const TENANTS_GSI1_PK: &str = "TENANTS";

pub fn extension_activity_gsi3_pk(tenant_id: &TenantId) -> String {
    format!("TENANT#{tenant_id}#EXTENSION_ACTIVITY")
}

pub fn extension_activity_gsi3_sk(last_activity: &str, employee_id: &str) -> String {
    format!("{last_activity}#{employee_id}")
}

/// Returns the sort key of a tenant's inactivity sweep audit entry for `date` (`YYYY-MM-DD`).
pub fn sweep_sk(date: &str) -> String {
    format!("SWEEP#{date}")
}

pub fn licence_gsi1_sk(first_seen: &str, employee_id: &str) -> String {
    format!("{first_seen}#{employee_id}")
}

pub fn email_gsi1_pk(tenant_id: &TenantId, email: &Email) -> String {
    format!("TENANT#{tenant_id}#EMAIL#{email}")
}

pub fn account_gsi1_sk(app_domain: &str) -> String {
    format!("ACCOUNT#{app_domain}")
}

/// Default inactivity period after which an inactive extension's licence is freed.
pub const DEFAULT_INACTIVITY_DAYS: u32 = 90;

fn default_inactivity_days() -> u32 {
    DEFAULT_INACTIVITY_DAYS
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantItem {
    pub pk: String,
    pub sk: String,
    /// [`TENANTS_GSI1_PK`], so that daily jobs can list the tenants.
    pub gsi1pk: String,
    /// The tenant id.
    pub gsi1sk: String,
    pub tenant_id: TenantId,
    pub name: String,
    pub created_at: String,
    /// Seats in the tenant's plan.
    #[serde(default)]
    pub plan_seats: u32,
    /// Licensed employees. Changed only in the transaction that changes an employee's licence
    /// state, conditioned on staying within `plan_seats`.
    #[serde(default)]
    pub licences_in_use: u32,
    #[serde(default)]
    pub auto_licensing: bool,
    /// Company domains in canonical ASCII form.
    #[serde(default)]
    pub company_domains: Vec<String>,
    #[serde(default)]
    pub include_subdomains: bool,
    #[serde(default = "default_inactivity_days")]
    pub inactivity_days: u32,
    /// Administrators with the owner role. Kept in the same transaction as every role change,
    /// conditioned on staying at least one, so the last owner can never be removed.
    #[serde(default)]
    pub owner_count: u32,
}

/// The licence state of an employee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenceState {
    Licensed,
    Unlicensed,
}

impl LicenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Licensed => "licensed",
            Self::Unlicensed => "unlicensed",
        }
    }
}

/// Sources of an employee record. The record stays while any source remains.
pub mod source {
    pub const EXTENSION: &str = "extension";
    pub const MANUAL: &str = "manual";

    /// Returns the source value of an identity-provider integration.
    pub fn integration(integration_id: &str) -> String {
        format!("integration:{integration_id}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmployeeItem {
    pub pk: String,
    pub sk: String,
    pub gsi1pk: String,
    pub gsi1sk: String,
    /// The licence-state partition again, for index `gsi2`, sorted by name.
    pub gsi2pk: String,
    pub gsi2sk: String,
    pub employee_id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub primary_email: String,
    /// Every canonical email of the employee, the primary one first. Each has an email owner
    /// item, written in the same transaction, so no email belongs to two employees.
    pub emails: Vec<String>,
    pub licence_state: LicenceState,
    #[serde(default)]
    pub licensed_at: Option<String>,
    /// Hidden from the unlicensed list, such as a service account.
    #[serde(default)]
    pub hidden: bool,
    pub first_seen: String,
    pub created_at: String,
    #[serde(
        with = "serde_dynamo::string_set",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sources: Vec<String>,
    /// Browser profiles linked to the employee.
    #[serde(
        with = "serde_dynamo::string_set",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub install_ids: Vec<String>,
    /// Ids of the custom and directory groups the employee belongs to.
    #[serde(
        with = "serde_dynamo::string_set",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub groups: Vec<String>,
    /// The directory user id each connected provider links to this employee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_microsoft: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_google: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_okta: Option<String>,
    /// The newest event time any of the employee's browser profiles reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_extension_activity: Option<String>,
    /// Index `gsi3` keys, present while the inactivity sweep may still have to act.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi3pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi3sk: Option<String>,
    /// Set by the inactivity sweep: the employee's browser and directory activity is no longer
    /// shown. New extension activity removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_hidden_at: Option<String>,
}

/// The initial values of a new employee record.
pub struct NewEmployee<'a> {
    pub tenant_id: &'a TenantId,
    pub employee_id: String,
    pub name: Option<String>,
    pub email: &'a Email,
    pub licence_state: LicenceState,
    /// Storage-format times.
    pub first_seen: String,
    pub now: String,
    pub source: String,
    pub install_id: Option<String>,
}

impl EmployeeItem {
    /// Builds a new employee with its index keys.
    pub fn new(new: NewEmployee<'_>) -> Self {
        let state = new.licence_state;
        let sort_name = sort_name(new.name.as_deref(), new.email.as_str());
        Self {
            pk: tenant_pk(new.tenant_id),
            sk: employee_sk(&new.employee_id),
            gsi1pk: licence_gsi1_pk(new.tenant_id, state),
            gsi1sk: licence_gsi1_sk(&new.first_seen, &new.employee_id),
            gsi2pk: licence_gsi1_pk(new.tenant_id, state),
            gsi2sk: format!("{sort_name}#{}", new.employee_id),
            employee_id: new.employee_id,
            name: new.name,
            primary_email: new.email.to_string(),
            emails: vec![new.email.to_string()],
            licence_state: state,
            licensed_at: (state == LicenceState::Licensed).then(|| new.now.clone()),
            hidden: false,
            first_seen: new.first_seen,
            created_at: new.now,
            sources: vec![new.source],
            install_ids: new.install_id.into_iter().collect(),
            groups: Vec::new(),
            directory_microsoft: None,
            directory_google: None,
            directory_okta: None,
            last_extension_activity: None,
            gsi3pk: None,
            gsi3sk: None,
            activity_hidden_at: None,
        }
    }
}

impl EmployeeItem {
    /// Records extension activity at `time` (storage format) on a new employee.
    pub fn with_extension_activity(mut self, tenant_id: &TenantId, time: &str) -> Self {
        self.last_extension_activity = Some(time.to_owned());
        self.gsi3pk = Some(extension_activity_gsi3_pk(tenant_id));
        self.gsi3sk = Some(extension_activity_gsi3_sk(time, &self.employee_id));
        self
    }
}

/// The audit entry of one tenant's sweep on one day, as stored (`SWEEP#<date>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepItem {
    pub pk: String,
    pub sk: String,
    pub date: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub inactivity_days: u32,
    /// Activity before this time counted as inactive.
    #[serde(default)]
    pub cutoff: Option<String>,
    /// Employees whose licence the sweep removed.
    #[serde(
        with = "serde_dynamo::string_set",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub unlicensed_ids: Vec<String>,
    /// Employees whose activity the sweep stopped showing, licensed or not.
    #[serde(
        with = "serde_dynamo::string_set",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub activity_hidden_ids: Vec<String>,
    /// Figures of the day's last run.
    #[serde(default)]
    pub candidates_read: u64,
    #[serde(default)]
    pub kept_with_accounts: u64,
    #[serde(default)]
    pub active_again: u64,
}

/// Returns the key employees sort by in name order: the lowercase name, or the email when the
/// name is unknown.
pub fn sort_name(name: Option<&str>, email: &str) -> String {
    name.map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(email)
        .to_lowercase()
}

pub fn administrator_sk(email: &str) -> String {
    format!("ADMIN#{email}")
}

pub fn group_sk(group_id: &str) -> String {
    format!("GROUP#{group_id}")
}

pub fn group_name_sk(name: &str) -> String {
    format!("GROUPNAME#{}", name.to_lowercase())
}

/// Whether a group was made in the console or synced from an identity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    Custom,
    Directory,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupItem {
    pub pk: String,
    pub sk: String,
    pub group_id: String,
    pub name: String,
    pub kind: GroupKind,
    pub created_at: String,
}

/// The item that makes a group name unique in a tenant, ignoring case. Its sort key orders
/// groups by name, which serves type-ahead search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupNameItem {
    pub pk: String,
    pub sk: String,
    pub group_id: String,
    pub name: String,
    pub kind: GroupKind,
}

/// An administrator's permission level. Read-only administrators can only read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminRole {
    Owner,
    Admin,
    ReadOnly,
}

/// An administrator of a tenant, keyed by the email in their identity token. Administrators
/// are separate from employees and may be outside the organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdministratorItem {
    pub pk: String,
    pub sk: String,
    pub email: String,
    pub role: AdminRole,
    pub created_at: String,
    #[serde(default)]
    pub invited_by: Option<String>,
}

/// The item that makes an email belong to one employee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailOwnerItem {
    pub pk: String,
    pub sk: String,
    pub email: String,
    pub employee_id: String,
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
    /// The employee this browser profile is linked to, once an identity observation matched one.
    #[serde(default)]
    pub employee_id: Option<String>,
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
    #[serde(
        with = "serde_dynamo::string_set",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub login_methods: Vec<String>,
    #[serde(
        with = "serde_dynamo::string_set",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
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
    #[serde(
        with = "serde_dynamo::string_set",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub login_methods: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
}
