//! Seeds a demo tenant with an extension key, so a newcomer can send telemetry at once.

use chrono::{SecondsFormat, Utc};
use rollcall::extension_key;
use rollcall::ids::TenantId;
use rollcall::store::{Store, StoreError};
use rollcall::table::{self, AdminRole, AdministratorItem, ExtensionKeyItem, TenantItem};

/// A tenant created for local use, with the only copy of its extension key.
pub struct SeededTenant {
    pub tenant_id: TenantId,
    pub extension_key: String,
}

/// Plan and licensing settings of a seeded tenant.
#[derive(Debug, Clone)]
pub struct TenantSettings {
    pub plan_seats: u32,
    pub auto_licensing: bool,
    /// Company domains; each is canonicalised (IDNA, lowercase) before it is stored.
    pub company_domains: Vec<String>,
    pub include_subdomains: bool,
    /// The first administrator, with the owner role.
    pub owner_email: String,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            plan_seats: 25,
            auto_licensing: true,
            company_domains: vec!["example.com".to_owned()],
            include_subdomains: false,
            owner_email: "owner@example.com".to_owned(),
        }
    }
}

/// Creates (or replaces) tenant `tenant_id` and a new extension key for it.
pub async fn seed_tenant(
    store: &Store,
    tenant_id: &TenantId,
    name: &str,
    settings: &TenantSettings,
) -> Result<SeededTenant, StoreError> {
    let mut company_domains = Vec::new();
    for domain in &settings.company_domains {
        let canonical = rollcall::email::canonical_domain(domain)
            .map_err(|error| StoreError::Invalid(format!("company domain {domain:?} {error}")))?;
        company_domains.push(canonical);
    }

    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    store
        .put_tenant(&TenantItem {
            pk: table::tenant_pk(tenant_id),
            sk: table::TENANT_SK.to_owned(),
            gsi1pk: table::TENANTS_GSI1_PK.to_owned(),
            gsi1sk: tenant_id.to_string(),
            tenant_id: tenant_id.clone(),
            name: name.to_owned(),
            created_at: now.clone(),
            plan_seats: settings.plan_seats,
            licences_in_use: 0,
            auto_licensing: settings.auto_licensing,
            company_domains,
            include_subdomains: settings.include_subdomains,
            inactivity_days: table::DEFAULT_INACTIVITY_DAYS,
            owner_count: 1,
        })
        .await?;
    let owner_email = rollcall::email::canonical_email(&settings.owner_email).map_err(|error| {
        StoreError::Invalid(format!("owner email {:?} {error}", settings.owner_email))
    })?;
    store
        .put(&AdministratorItem {
            pk: table::tenant_pk(tenant_id),
            sk: table::administrator_sk(owner_email.as_str()),
            email: owner_email.to_string(),
            role: AdminRole::Owner,
            created_at: now.clone(),
            invited_by: None,
        })
        .await?;

    let key = extension_key::generate(tenant_id);
    store
        .put_extension_key(&ExtensionKeyItem {
            pk: table::tenant_pk(tenant_id),
            sk: table::extension_key_sk(&key.key_id),
            tenant_id: tenant_id.clone(),
            key_id: key.key_id.clone(),
            name: "managed deployment".to_owned(),
            secret_sha256: key.secret_sha256,
            created_at: now,
            revoked_at: None,
        })
        .await?;
    Ok(SeededTenant {
        tenant_id: tenant_id.clone(),
        extension_key: key.token,
    })
}

/// Builds a telemetry request body like `events/telemetry-body.json`, with event times in the
/// last few minutes so that it passes the 30-day age check whenever it is sent.
pub fn example_body(now: chrono::DateTime<Utc>) -> serde_json::Value {
    let at = |minutes_ago: i64| {
        (now - chrono::Duration::minutes(minutes_ago)).to_rfc3339_opts(SecondsFormat::Secs, true)
    };
    let event_id = |n: u32| format!("{}-{n}", uuid::Uuid::new_v4());
    serde_json::json!({
        "schema_version": 1,
        "install_id": "0b6c2f3e-6a1d-4f5e-9a43-2f1c7d8e9b10",
        "browser": {"name": "chrome", "version": "131.0.6778.86"},
        "extension_version": "1.4.2",
        "managed": true,
        "identity": {"email": "ada.lovelace@example.com", "source": "gmail"},
        "events": [
            {"id": event_id(1), "time": at(12), "type": "heartbeat"},
            {"id": event_id(2), "time": at(11), "type": "login", "app": {"domain": "app.slack.com", "name": "Slack"},
             "account_email": "ada.lovelace@example.com", "login_method": "oidc_google", "identity_provider": "google"},
            {"id": event_id(3), "time": at(7), "type": "login", "app": {"domain": "github.com", "name": "GitHub"},
             "account_email": "ada.lovelace@example.com", "login_method": "sso_saml", "identity_provider": "okta"},
            {"id": event_id(4), "time": at(1), "type": "signup", "app": {"domain": "www.notion.so", "name": "Notion"},
             "account_email": "ada.lovelace@example.com", "login_method": "password"}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_body_is_valid() {
        let now = Utc::now();
        let body = serde_json::to_vec(&example_body(now)).unwrap();
        let parsed = rollcall::telemetry::parse_batch(&body, now).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        assert_eq!(parsed.events.len(), 4);
    }
}
