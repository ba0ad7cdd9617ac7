//! Fans the hourly sync out: one job per connected integration on the sync queue. It reads
//! integrations through index `gsi1`, where each has `gsi1pk = INTEGRATIONS`, so it never scans
//! the table. Integrations that need to be connected again are skipped. Those that need other
//! attention are tried again, so that a fixed permission takes effect within the hour.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use rollcall::aws::Clients;
use rollcall::config::{ConfigError, Lookup, required};
use rollcall::envelope::{SYNC_JOB_VERSION, SyncJob, SyncReason};
use rollcall::integration::{INTEGRATIONS_GSI1_PK, IntegrationItem, IntegrationStatus};
use rollcall::queue::{self, SendError};
use rollcall::store::{Store, StoreError, decode};
use rollcall::table;
use tracing::{info, warn};

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub sync_queue_url: String,
}

impl Config {
    pub fn from_lookup(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(lookup, "TABLE_NAME")?,
            sync_queue_url: required(lookup, "SYNC_QUEUE_URL")?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Send(#[from] SendError),
}

#[derive(Debug, Clone)]
pub struct SyncScheduler {
    store: Store,
    sqs: aws_sdk_sqs::Client,
    sync_queue_url: String,
}

impl SyncScheduler {
    pub fn new(clients: &Clients, config: Config) -> Self {
        Self {
            store: Store::new(clients.dynamodb.clone(), config.table_name),
            sqs: clients.sqs.clone(),
            sync_queue_url: config.sync_queue_url,
        }
    }

    /// Queues a sync job for every integration. Returns how many were queued.
    pub async fn handle(&self) -> Result<usize, SchedulerError> {
        let query = self
            .store
            .client()
            .query()
            .table_name(self.store.table_name())
            .index_name(table::GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(INTEGRATIONS_GSI1_PK.to_owned()));
        let items = self.store.query_all_pages(query).await?;

        let now = Utc::now();
        let mut bodies = Vec::new();
        for item in items {
            let integration: IntegrationItem = match decode(item) {
                Ok(integration) => integration,
                Err(error) => {
                    warn!(error = %error, "integration item unreadable; skipped");
                    continue;
                }
            };
            if matches!(
                integration.status,
                IntegrationStatus::ReauthorisationRequired | IntegrationStatus::Revoking
            ) {
                continue;
            }
            let job = SyncJob {
                version: SYNC_JOB_VERSION,
                run_id: uuid::Uuid::new_v4().to_string(),
                tenant_id: integration.tenant_id,
                provider: integration.provider,
                reason: SyncReason::Scheduled,
                requested_at: now,
            };
            bodies.push(serde_json::to_string(&job).unwrap_or_default());
        }
        queue::send_all(&self.sqs, &self.sync_queue_url, &bodies, None).await?;

        info!(jobs = bodies.len(), "hourly sync jobs queued");
        Ok(bodies.len())
    }
}
