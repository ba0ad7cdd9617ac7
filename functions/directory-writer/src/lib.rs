//! Consumes the directory queue and applies what the sync worker found: new, changed and
//! removed directory users and groups.
//!
//! Every change is idempotent. A user whose stored hash already matches is skipped, and each
//! write that must happen once is a conditional put. A redelivered message therefore changes
//! nothing twice.
//!
//! New users become unlicensed employees; a user whose email already belongs to an employee
//! (from the extension, a manual add or another provider) is linked to it. Sync never changes a
//! licence. A directory removal never deletes a licensed employee; only a revocation does, and
//! it frees the seat in the same transaction.
//!
//! Every write of a sync change carries a condition check that the integration exists and is
//! not being revoked, so nothing a sync sent can land after a revocation has started. The
//! same queue carries the revocation cascade, page by page (see `revocation`).

mod activity;
mod groups;
mod revocation;
mod users;

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use rollcall::aws::Clients;
use rollcall::config::{ConfigError, Lookup, required};
use rollcall::directory::{DirectoryChange, DirectoryMessage, DirectoryQueueMessage};
use rollcall::error::AwsError;
use rollcall::integration::{self, IntegrationItem, IntegrationStatus};
use rollcall::queue::{DeadLetterQueue, MissingMessageId, batch_response, parse_records};
use rollcall::store::{Store, StoreError, TransactError};
use rollcall::table;
use tracing::{error, info};

/// How long one revocation message works before it queues the rest, well inside the
/// function's 60-second timeout.
const REVOCATION_BUDGET: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    /// The directory queue itself, for the next page of a revocation.
    pub directory_queue_url: String,
    pub dead_letter_queue_url: String,
    pub revocation_budget: Duration,
}

impl Config {
    pub fn from_lookup(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(lookup, "TABLE_NAME")?,
            directory_queue_url: required(lookup, "DIRECTORY_QUEUE_URL")?,
            dead_letter_queue_url: required(lookup, "DIRECTORY_DLQ_URL")?,
            revocation_budget: REVOCATION_BUDGET,
        })
    }
}

/// The reason a change could not be applied now; the message is retried.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transact(#[from] TransactError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("message could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Send(#[from] rollcall::queue::SendError),
    /// The integration was deleted or is being revoked; the change is dropped.
    #[error("the integration is gone or being revoked")]
    IntegrationGone,
}

#[derive(Debug, Clone)]
pub struct DirectoryWriter {
    store: Store,
    sqs: aws_sdk_sqs::Client,
    config: Config,
    dead_letter_queue: DeadLetterQueue,
}

impl DirectoryWriter {
    pub fn new(clients: &Clients, config: Config) -> Self {
        Self {
            store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
            sqs: clients.sqs.clone(),
            dead_letter_queue: DeadLetterQueue::new(
                clients.sqs.clone(),
                config.dead_letter_queue_url.clone(),
            ),
            config,
        }
    }

    /// Applies the batch's changes and returns the records to retry.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, MissingMessageId> {
        let (messages, mut failed) = parse_records(
            &self.dead_letter_queue,
            event.records,
            DirectoryQueueMessage::from_body,
        )
        .await?;
        for (message_id, message) in messages {
            match message {
                DirectoryQueueMessage::Changes(message) => match self.apply(&message).await {
                    Ok(()) => {
                        info!(message_id, tenant_id = %message.tenant_id, provider = %message.provider, changes = message.changes.len(), "directory changes applied");
                    }
                    Err(ApplyError::IntegrationGone) => {
                        info!(message_id, tenant_id = %message.tenant_id, provider = %message.provider, run_id = message.run_id, "integration gone or being revoked; directory changes dropped");
                    }
                    Err(error) => {
                        error!(message_id, tenant_id = %message.tenant_id, provider = %message.provider, run_id = message.run_id, error = %error, "directory changes not applied; they will be retried");
                        failed.insert(message_id);
                    }
                },
                DirectoryQueueMessage::Revocation(job) => {
                    if let Err(error) = self.revoke(&job).await {
                        error!(message_id, tenant_id = %job.tenant_id, provider = %job.provider, revocation_id = job.revocation_id, step = ?job.step, error = %error, "revocation step failed; it will be retried");
                        failed.insert(message_id);
                    }
                }
            }
        }
        Ok(batch_response(failed))
    }

    async fn apply(&self, message: &DirectoryMessage) -> Result<(), ApplyError> {
        let context = Context {
            tenant_id: &message.tenant_id,
            provider: message.provider,
            pk: table::tenant_pk(&message.tenant_id),
            guarded: true,
        };
        let integration: Option<IntegrationItem> = self
            .store
            .get(&context.pk, &integration::integration_sk(message.provider))
            .await?;
        if integration.is_none_or(|i| i.status == IntegrationStatus::Revoking) {
            return Err(ApplyError::IntegrationGone);
        }
        let known = self.prefetch(&context, &message.changes).await?;
        for change in &message.changes {
            match change {
                DirectoryChange::User { user } => self.apply_user(&context, user, &known).await?,
                DirectoryChange::RemoveUser { id } => self.remove_user(&context, id).await?,
                DirectoryChange::Group { group } => self.apply_group(&context, group).await?,
                DirectoryChange::RemoveGroup { id } => self.remove_group(&context, id).await?,
                DirectoryChange::Activity { user_id, activity } => {
                    self.apply_activity(&context, user_id, activity).await?
                }
            }
        }
        Ok(())
    }

    /// Runs a write transaction. For a sync change it also checks that the integration still
    /// exists and is not being revoked.
    pub(crate) async fn commit(
        &self,
        context: &Context<'_>,
        mut writes: Vec<TransactWriteItem>,
    ) -> Result<(), ApplyError> {
        let guard = writes.len();
        if context.guarded {
            let check = ConditionCheck::builder()
                .table_name(self.store.table_name())
                .key(table::PK, AttributeValue::S(context.pk.clone()))
                .key(
                    table::SK,
                    AttributeValue::S(integration::integration_sk(context.provider)),
                )
                .condition_expression("attribute_exists(pk) AND #status <> :revoking")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":revoking", AttributeValue::S("revoking".to_owned()))
                .build()
                .expect("table, key and condition are set");
            writes.push(TransactWriteItem::builder().condition_check(check).build());
        }
        match self.store.transact(writes).await {
            Ok(()) => Ok(()),
            Err(error) if context.guarded && error.condition_failed(guard) => {
                Err(ApplyError::IntegrationGone)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Builds an update of one item, for a transaction.
    fn update(
        &self,
        pk: &str,
        sk: &str,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
        names: &[(&str, &str)],
        condition: Option<&str>,
    ) -> TransactWriteItem {
        let mut update = Update::builder()
            .table_name(self.store.table_name())
            .key(table::PK, AttributeValue::S(pk.to_owned()))
            .key(table::SK, AttributeValue::S(sk.to_owned()))
            .update_expression(expression)
            .set_condition_expression(condition.map(str::to_owned));
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        for (placeholder, name) in names {
            update = update.expression_attribute_names(*placeholder, *name);
        }
        let update = update.build().expect("table, key and expression are set");
        TransactWriteItem::builder().update(update).build()
    }
}

/// The tenant and provider a message's changes belong to.
pub(crate) struct Context<'a> {
    pub tenant_id: &'a rollcall::ids::TenantId,
    pub provider: rollcall::integration::Provider,
    pub pk: String,
    /// Whether writes check that the integration is still connected. The revocation cascade
    /// writes while the integration is being revoked, so its writes are not guarded.
    pub guarded: bool,
}
