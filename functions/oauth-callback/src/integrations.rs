//! Stored integrations: reading, recording a connection, queueing its first sync, and the
//! view the console receives (without the secret's ARN).

use chrono::Utc;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use rollcall::envelope::{SYNC_JOB_VERSION, SyncJob, SyncReason};
use rollcall::error::AwsError;
use rollcall::ids::TenantId;
use rollcall::integration::{
    self, Delegation, Feature, INTEGRATION_SK_PREFIX, IntegrationItem, IntegrationStatus, Provider,
    SyncSummary,
};
use rollcall::problem::Problem;
use rollcall::table;
use rollcall::telemetry::storage_time;
use serde::Serialize;
use tracing::{error, info};

use admin_api::auth::Administrator;
use admin_api::http::{internal, json};

use crate::OAuthCallback;

/// An integration as the admin API returns it, without its secret ARN.
#[derive(Debug, Serialize)]
pub struct IntegrationView<'a> {
    pub provider: Provider,
    pub provider_tenant: &'a str,
    pub domain: &'a str,
    pub scopes: &'a [String],
    pub disabled_features: Vec<Feature>,
    pub status: IntegrationStatus,
    pub connected_at: &'a str,
    pub connected_by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegation: Option<&'a Delegation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<&'a SyncSummary>,
}

impl<'a> From<&'a IntegrationItem> for IntegrationView<'a> {
    fn from(item: &'a IntegrationItem) -> Self {
        Self {
            provider: item.provider,
            provider_tenant: &item.provider_tenant,
            domain: &item.domain,
            scopes: &item.scopes,
            disabled_features: integration::disabled_features(item.provider, &item.scopes),
            status: item.status,
            connected_at: &item.connected_at,
            connected_by: &item.connected_by,
            client_id: item.client_id.as_deref(),
            delegation: item.delegation.as_ref(),
            last_error: item.last_error.as_deref(),
            last_sync: item.last_sync.as_ref(),
        }
    }
}

/// The facts a new connection records.
pub struct Connection {
    pub provider: Provider,
    pub provider_tenant: String,
    pub domain: String,
    pub scopes: Vec<String>,
    pub secret_arn: String,
    pub client_id: Option<String>,
    pub connected_by: String,
}

impl OAuthCallback {
    pub(crate) async fn integration(
        &self,
        tenant_id: &TenantId,
        provider: Provider,
    ) -> Result<Option<IntegrationItem>, Problem> {
        self.store
            .get(
                &table::tenant_pk(tenant_id),
                &integration::integration_sk(provider),
            )
            .await
            .map_err(internal)
    }

    /// Refuses to replace an integration with one for another directory: the employees of the
    /// first would be left without their source.
    pub(crate) async fn check_same_directory(
        &self,
        tenant_id: &TenantId,
        provider: Provider,
        provider_tenant: &str,
    ) -> Result<Option<IntegrationItem>, Problem> {
        let existing = self.integration(tenant_id, provider).await?;
        match &existing {
            Some(item) if item.status == IntegrationStatus::Revoking => {
                Err(revocation_in_progress(provider))
            }
            Some(item) if item.provider_tenant != provider_tenant => Err(Problem::new(
                409,
                "Conflict",
                format!(
                    "this tenant is already connected to {provider} directory {}, and a tenant connects one directory per provider",
                    item.provider_tenant
                ),
            )
            .with("reason", serde_json::json!("other_directory_connected"))),
            _ => Ok(existing),
        }
    }

    /// Rejects a new connection while the provider's revocation is removing its data.
    pub(crate) async fn check_not_revoking(
        &self,
        tenant_id: &TenantId,
        provider: Provider,
    ) -> Result<(), Problem> {
        match self.integration(tenant_id, provider).await? {
            Some(item) if item.status == IntegrationStatus::Revoking => {
                Err(revocation_in_progress(provider))
            }
            _ => Ok(()),
        }
    }

    /// Records a connection and queues its first sync.
    pub(crate) async fn record(
        &self,
        tenant_id: &TenantId,
        connection: Connection,
        previous: Option<IntegrationItem>,
    ) -> Result<IntegrationItem, Problem> {
        let last_sync = previous.as_ref().and_then(|p| p.last_sync.clone());
        let item = IntegrationItem {
            pk: table::tenant_pk(tenant_id),
            sk: integration::integration_sk(connection.provider),
            gsi1pk: integration::INTEGRATIONS_GSI1_PK.to_owned(),
            gsi1sk: integration::integrations_gsi1_sk(tenant_id, connection.provider),
            tenant_id: tenant_id.clone(),
            provider: connection.provider,
            provider_tenant: connection.provider_tenant,
            domain: connection.domain,
            scopes: connection.scopes,
            secret_arn: connection.secret_arn,
            client_id: connection.client_id,
            status: IntegrationStatus::Connected,
            connected_at: storage_time(Utc::now()),
            connected_by: connection.connected_by,
            delegation: previous.and_then(|p| p.delegation),
            last_error: None,
            // A new consent starts from a full listing.
            delta_link: None,
            last_full_sync_at: None,
            last_sync,
            revocation_id: None,
            revoked_at: None,
            revoked_by: None,
        };
        self.store.put(&item).await.map_err(internal)?;
        self.queue_sync(tenant_id, item.provider).await?;
        info!(
            tenant_id = %tenant_id,
            provider = %item.provider,
            provider_tenant = item.provider_tenant,
            "integration connected"
        );
        Ok(item)
    }

    async fn queue_sync(&self, tenant_id: &TenantId, provider: Provider) -> Result<(), Problem> {
        let job = SyncJob {
            version: SYNC_JOB_VERSION,
            run_id: uuid::Uuid::new_v4().to_string(),
            tenant_id: tenant_id.clone(),
            provider,
            reason: SyncReason::Connected,
            requested_at: Utc::now(),
        };
        let body = serde_json::to_string(&job).unwrap_or_default();
        self.sqs
            .send_message()
            .queue_url(&self.config.sync_queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| {
                let e = AwsError::sqs("SendMessage", e);
                error!(error = %e, tenant_id = %tenant_id, %provider, "first sync could not be queued");
                Problem::new(
                    503,
                    "Service Unavailable",
                    "the integration was connected but its first sync could not be queued; it runs with the next hourly sync",
                )
            })?;
        info!(tenant_id = %tenant_id, %provider, run_id = job.run_id, "first sync queued");
        Ok(())
    }

    pub(crate) async fn list(&self, admin: &Administrator) -> Result<Response<Body>, Problem> {
        let items = self
            .store
            .query_prefix(&table::tenant_pk(&admin.tenant_id), INTEGRATION_SK_PREFIX)
            .await
            .map_err(internal)?;
        let items: Vec<IntegrationItem> = items
            .into_iter()
            .filter_map(|item| match serde_dynamo::from_item(item) {
                Ok(item) => Some(item),
                Err(e) => {
                    error!(error = %e, tenant_id = %admin.tenant_id, "integration item unreadable");
                    None
                }
            })
            .collect();
        #[derive(Serialize)]
        struct List<'a> {
            integrations: Vec<IntegrationView<'a>>,
        }
        let integrations = items.iter().map(IntegrationView::from).collect();
        Ok(json(StatusCode::OK, &List { integrations }))
    }
}

fn revocation_in_progress(provider: Provider) -> Problem {
    Problem::new(
        409,
        "Conflict",
        format!(
            "the {provider} integration is being revoked; connect again when its data is removed"
        ),
    )
    .with("reason", serde_json::json!("revocation_in_progress"))
}
