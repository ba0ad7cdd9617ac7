//! Consumes the sync queue. Each job reads one integration's directory page by page within a
//! time budget and sends new and changed records to the directory queue. When the budget runs
//! out it checkpoints the cursor and queues a continuation, so a directory of any size finishes
//! without a long invocation.
//!
//! Each run is full (the whole directory, after which records not seen are removed) or
//! incremental (Graph delta changes since the last run). A run that stops early removes
//! nothing. Sync never changes a licence.

mod activity;
mod auth;
mod fetch;
mod providers;
mod run;

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use rollcall::aws::Clients;
use rollcall::config::{ConfigError, Lookup, parsed_or, required};
use rollcall::envelope::SyncJob;
use rollcall::integration::ProviderEndpoints;
use rollcall::provider_client::Providers;
use rollcall::queue::{DeadLetterQueue, MissingMessageId, batch_response, parse_records};
use rollcall::secrets::Secrets;
use rollcall::store::Store;
use tracing::error;

pub use fetch::requested_wait;

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub sync_queue_url: String,
    pub directory_queue_url: String,
    pub dead_letter_queue_url: String,
    pub microsoft_client_id: String,
    pub google_client_id: String,
    pub google_client_secret_arn: String,
    pub google_service_account_secret_arn: String,
    pub endpoints: ProviderEndpoints,
    /// Time one invocation reads before it checkpoints; well under the function timeout.
    pub time_budget: Duration,
    /// Most time one run may spend waiting on throttled requests.
    pub max_backoff: Duration,
    /// First wait of the exponential backoff used when a provider names no wait.
    pub backoff_base: Duration,
}

impl Config {
    pub fn from_lookup(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(lookup, "TABLE_NAME")?,
            sync_queue_url: required(lookup, "SYNC_QUEUE_URL")?,
            directory_queue_url: required(lookup, "DIRECTORY_QUEUE_URL")?,
            dead_letter_queue_url: required(lookup, "SYNC_DLQ_URL")?,
            microsoft_client_id: required(lookup, "MICROSOFT_CLIENT_ID")?,
            google_client_id: required(lookup, "GOOGLE_CLIENT_ID")?,
            google_client_secret_arn: required(lookup, "GOOGLE_CLIENT_SECRET_ARN")?,
            google_service_account_secret_arn: required(
                lookup,
                "GOOGLE_SERVICE_ACCOUNT_SECRET_ARN",
            )?,
            endpoints: ProviderEndpoints::from_lookup(lookup)?,
            time_budget: Duration::from_millis(parsed_or(
                lookup,
                "SYNC_TIME_BUDGET_MILLIS",
                90_000,
            )?),
            max_backoff: Duration::from_millis(parsed_or(
                lookup,
                "SYNC_MAX_BACKOFF_MILLIS",
                300_000,
            )?),
            backoff_base: Duration::from_millis(parsed_or(
                lookup,
                "SYNC_BACKOFF_BASE_MILLIS",
                1_000,
            )?),
        })
    }
}

#[derive(Debug, Clone)]
pub struct SyncWorker {
    store: Store,
    sqs: aws_sdk_sqs::Client,
    secrets: Secrets,
    providers: Providers,
    dead_letter_queue: DeadLetterQueue,
    config: Config,
}

impl SyncWorker {
    pub fn new(clients: &Clients, config: Config) -> Self {
        Self {
            store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
            sqs: clients.sqs.clone(),
            // Only reads happen here, so the name prefix is unused.
            secrets: Secrets::new(
                aws_sdk_secretsmanager::Client::new(&clients.sdk),
                String::new(),
            ),
            providers: Providers::new(config.endpoints.clone()),
            dead_letter_queue: DeadLetterQueue::new(
                clients.sqs.clone(),
                config.dead_letter_queue_url.clone(),
            ),
            config,
        }
    }

    /// Runs each job of the batch and returns the records to retry.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, MissingMessageId> {
        let (jobs, mut failed) =
            parse_records(&self.dead_letter_queue, event.records, SyncJob::from_body).await?;
        for (message_id, job) in jobs {
            if let Err(error) = self.run(&job).await {
                error!(message_id, tenant_id = %job.tenant_id, provider = %job.provider, run_id = job.run_id, error = %error, "sync job failed; it will be retried");
                failed.insert(message_id);
            }
        }
        Ok(batch_response(failed))
    }
}
