//! Consumes the directory queue and applies what the sync worker found: new, changed and
//! removed directory users and groups.
//!
//! Every change is idempotent. A user whose stored hash already matches is skipped, and each
//! write that must happen once is a conditional put. A redelivered message therefore changes
//! nothing twice.
//!
//! New users become unlicensed employees; a user whose email already belongs to an employee
//! (from the extension, a manual add or another provider) is linked to it. Sync never changes a
//! licence, except that removing an employee no source holds frees its seat.

mod activity;
mod groups;
mod users;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use rollcall::aws::Clients;
use rollcall::config::{ConfigError, Lookup, required};
use rollcall::directory::{DirectoryChange, DirectoryMessage};
use rollcall::queue::{DeadLetterQueue, MissingMessageId, batch_response, parse_records};
use rollcall::store::{Store, StoreError, TransactError};
use rollcall::table;
use tracing::{error, info};

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub dead_letter_queue_url: String,
}

impl Config {
    pub fn from_lookup(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(lookup, "TABLE_NAME")?,
            dead_letter_queue_url: required(lookup, "DIRECTORY_DLQ_URL")?,
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
}

#[derive(Debug, Clone)]
pub struct DirectoryWriter {
    store: Store,
    dead_letter_queue: DeadLetterQueue,
}

impl DirectoryWriter {
    pub fn new(clients: &Clients, config: Config) -> Self {
        Self {
            store: Store::new(clients.dynamodb.clone(), config.table_name),
            dead_letter_queue: DeadLetterQueue::new(
                clients.sqs.clone(),
                config.dead_letter_queue_url,
            ),
        }
    }

    /// Applies the batch's changes and returns the records to retry.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, MissingMessageId> {
        let (messages, mut failed) = parse_records(
            &self.dead_letter_queue,
            event.records,
            DirectoryMessage::from_body,
        )
        .await?;
        for (message_id, message) in messages {
            if let Err(error) = self.apply(&message).await {
                error!(message_id, tenant_id = %message.tenant_id, provider = %message.provider, run_id = message.run_id, error = %error, "directory changes not applied; they will be retried");
                failed.insert(message_id);
            } else {
                info!(message_id, tenant_id = %message.tenant_id, provider = %message.provider, changes = message.changes.len(), "directory changes applied");
            }
        }
        Ok(batch_response(failed))
    }

    async fn apply(&self, message: &DirectoryMessage) -> Result<(), ApplyError> {
        let context = Context {
            tenant_id: &message.tenant_id,
            provider: message.provider,
            pk: table::tenant_pk(&message.tenant_id),
        };
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
}
