//! Consumes identity observations from the licensing queue.
//!
//! An observation licenses its employee only when the tenant has automatic licensing on, the
//! extension reported a managed deployment, and the email's domain is a company domain. Then a
//! new email becomes a licensed employee (source: extension), an unlicensed employee is
//! licensed, and a licensed one only gains the extension as a source. With no seat free the
//! employee is created or kept unlicensed. Hidden employees (service accounts an administrator
//! set aside) are never licensed automatically. When a condition fails, the observation only
//! links the browser profile to an existing employee.
//!
//! Every decision is re-checked by the conditions of the transaction that applies it, so
//! redelivery and the same email from many browsers at once give one employee and at most one
//! licence. An observation marker makes a redelivered observation cost one read and no write.

mod decide;

use std::collections::{BTreeSet, HashMap};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use rollcall::aws::Clients;
use rollcall::config::{ConfigError, Lookup, required};
use rollcall::envelope::IdentityObservation;
use rollcall::queue::{DeadLetterQueue, batch_response};
use rollcall::store::{Key, Store, StoreError};
use rollcall::table::{self, EmployeeItem, TenantItem};
use tracing::{debug, error, info, warn};

pub use decide::{Eligibility, Outcome};

/// How long an observation marker lives: longer than the licensing queue's 4-day retention.
const MARKER_TTL: Duration = Duration::days(14);

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    /// Observations that can never be processed are moved here with their reason.
    pub dead_letter_queue_url: String,
}

impl Config {
    pub fn from_lookup(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(lookup, "TABLE_NAME")?,
            dead_letter_queue_url: required(lookup, "LICENSING_DLQ_URL")?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AutoLicenseError {
    #[error("SQS record at index {0} has no messageId, so its failure could not be reported")]
    MissingMessageId(usize),
}

/// The reason one observation was not processed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("tenant {0} does not exist")]
    TenantNotFound(String),
    #[error("email owner item names employee {0}, which does not exist")]
    DanglingEmailOwner(String),
    #[error("gave up after {0} attempts because the employee kept changing")]
    Contended(u32),
}

impl ProcessError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Store(error) => error.is_retryable(),
            Self::TenantNotFound(_) | Self::DanglingEmailOwner(_) => false,
            Self::Contended(_) => true,
        }
    }
}

/// Items read for a batch before any observation is processed.
pub(crate) struct Prefetched {
    pub items: HashMap<Key, HashMap<String, AttributeValue>>,
}

impl Prefetched {
    pub fn contains(&self, key: &Key) -> bool {
        self.items.contains_key(key)
    }

    pub fn tenant(
        &self,
        observation: &IdentityObservation,
    ) -> Result<Option<TenantItem>, StoreError> {
        let key = (
            table::tenant_pk(&observation.tenant_id),
            table::TENANT_SK.to_owned(),
        );
        self.items
            .get(&key)
            .map(|item| {
                serde_dynamo::from_item(item.clone()).map_err(|source| StoreError::Decode {
                    sk: key.1.clone(),
                    source,
                })
            })
            .transpose()
    }

    pub fn employee(
        &self,
        observation: &IdentityObservation,
        employee_id: &str,
    ) -> Option<EmployeeItem> {
        let key = (
            table::tenant_pk(&observation.tenant_id),
            table::employee_sk(employee_id),
        );
        self.items
            .get(&key)
            .and_then(|item| serde_dynamo::from_item(item.clone()).ok())
    }

    pub fn email_owner(&self, observation: &IdentityObservation) -> Option<String> {
        let key = owner_key(observation);
        match self.items.get(&key)?.get("employee_id")? {
            AttributeValue::S(employee_id) => Some(employee_id.clone()),
            _ => None,
        }
    }
}

pub(crate) fn marker_key(observation: &IdentityObservation) -> Key {
    (
        table::tenant_pk(&observation.tenant_id),
        table::observation_sk(&observation.observation_id),
    )
}

pub(crate) fn owner_key(observation: &IdentityObservation) -> Key {
    (
        table::tenant_pk(&observation.tenant_id),
        table::email_owner_sk(observation.email.as_str()),
    )
}

/// The auto-license function's state, built once per Lambda instance.
#[derive(Debug, Clone)]
pub struct AutoLicense {
    store: Store,
    dead_letter_queue: DeadLetterQueue,
}

impl AutoLicense {
    pub fn new(clients: &Clients, config: Config) -> Self {
        Self {
            store: Store::new(clients.dynamodb.clone(), config.table_name),
            dead_letter_queue: DeadLetterQueue::new(
                clients.sqs.clone(),
                config.dead_letter_queue_url,
            ),
        }
    }

    /// Processes one SQS batch and returns the records to retry.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, AutoLicenseError> {
        let mut failed = BTreeSet::new();
        let observations = self.parse_records(event.records, &mut failed).await?;

        let keys: Vec<Key> = observations
            .iter()
            .flat_map(|(_, o)| {
                [
                    marker_key(o),
                    owner_key(o),
                    (table::tenant_pk(&o.tenant_id), table::TENANT_SK.to_owned()),
                ]
            })
            .collect();
        let prefetched = match self.prefetch(&observations, &keys).await {
            Ok(prefetched) => prefetched,
            Err(error) => {
                error!(error = %error, "prefetch failed; retrying the batch");
                failed.extend(observations.iter().map(|(id, _)| id.clone()));
                return Ok(batch_response(failed));
            }
        };

        let expires_at = (Utc::now() + MARKER_TTL).timestamp();
        for (message_id, observation) in &observations {
            match decide::process(&self.store, observation, &prefetched, expires_at).await {
                Ok(outcome) => info!(
                    message_id,
                    tenant_id = %observation.tenant_id,
                    install_id = observation.install_id,
                    observation_id = observation.observation_id,
                    outcome = ?outcome,
                    "identity observation processed"
                ),
                Err(error) if error.is_retryable() => {
                    warn!(message_id, tenant_id = %observation.tenant_id, error = %error, "observation failed; it will be retried");
                    failed.insert(message_id.clone());
                }
                Err(error) => {
                    error!(message_id, tenant_id = %observation.tenant_id, error = %error, "observation can never succeed; moving it to the dead-letter queue");
                    let body = serde_json::to_string(observation).unwrap_or_default();
                    if self
                        .dead_letter_queue
                        .send(&body, message_id, &error.to_string())
                        .await
                        .is_err()
                    {
                        failed.insert(message_id.clone());
                    }
                }
            }
        }
        Ok(batch_response(failed))
    }

    /// Reads markers, tenants and email owners in one batch, then the employees the owners
    /// name in a second, so that each observation usually needs no read of its own.
    async fn prefetch(
        &self,
        observations: &[(String, IdentityObservation)],
        keys: &[Key],
    ) -> Result<Prefetched, StoreError> {
        let mut prefetched = Prefetched {
            items: self.store.get_items(keys).await?,
        };
        let employee_keys: Vec<Key> = observations
            .iter()
            .filter(|(_, o)| !prefetched.contains(&marker_key(o)))
            .filter_map(|(_, o)| {
                prefetched
                    .email_owner(o)
                    .map(|id| (table::tenant_pk(&o.tenant_id), table::employee_sk(&id)))
            })
            .collect();
        if !employee_keys.is_empty() {
            prefetched
                .items
                .extend(self.store.get_items(&employee_keys).await?);
        }
        Ok(prefetched)
    }

    async fn parse_records(
        &self,
        records: Vec<SqsMessage>,
        failed: &mut BTreeSet<String>,
    ) -> Result<Vec<(String, IdentityObservation)>, AutoLicenseError> {
        let mut observations = Vec::with_capacity(records.len());
        for (index, record) in records.into_iter().enumerate() {
            let message_id = record
                .message_id
                .clone()
                .ok_or(AutoLicenseError::MissingMessageId(index))?;
            let parsed = match record.body.as_deref() {
                None => Err("message has no body".to_owned()),
                Some(body) => IdentityObservation::from_body(body).map_err(|e| e.to_string()),
            };
            match parsed {
                Ok(observation) => observations.push((message_id, observation)),
                Err(reason) => {
                    warn!(
                        message_id,
                        reason,
                        "malformed identity observation; moving it to the dead-letter queue"
                    );
                    let body = record.body.as_deref().unwrap_or_default();
                    if let Err(error) = self
                        .dead_letter_queue
                        .send(body, &message_id, &reason)
                        .await
                    {
                        error!(message_id, error = %error, "dead-letter send failed; leaving the message for redrive");
                        failed.insert(message_id);
                    }
                }
            }
        }
        debug!(observations = observations.len(), "licensing batch parsed");
        Ok(observations)
    }
}
