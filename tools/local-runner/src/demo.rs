//! Seeds a demo tenant with an extension key, so a newcomer can send telemetry at once.

use chrono::{SecondsFormat, Utc};
use rollcall::extension_key;
use rollcall::ids::TenantId;
use rollcall::store::{Store, StoreError};
use rollcall::table::{self, ExtensionKeyItem, TenantItem};

/// A tenant created for local use, with the only copy of its extension key.
pub struct SeededTenant {
    pub tenant_id: TenantId,
    pub extension_key: String,
}

/// Creates (or replaces) tenant `tenant_id` and a new extension key for it.
pub async fn seed_tenant(
    store: &Store,
    tenant_id: &TenantId,
    name: &str,
) -> Result<SeededTenant, StoreError> {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    store
        .put_tenant(&TenantItem {
            pk: table::tenant_pk(tenant_id),
            sk: table::TENANT_SK.to_owned(),
            tenant_id: tenant_id.clone(),
            name: name.to_owned(),
            created_at: now.clone(),
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
