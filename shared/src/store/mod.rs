//! DynamoDB access for Rollcall's single table.

mod employees;
mod licensing;
mod listing;
mod retention;
mod windowed;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};

use crate::error::AwsError;
use crate::ids::TenantId;
use crate::table::{self, AccountItem, ExtensionKeyItem, TenantItem};

pub use employees::LicenceResult;
pub use licensing::{EmployeeChange, TransactError};
pub use listing::{EmployeePage, EmployeeQuery, EmployeeSort, InvalidCursor};
pub use retention::InactivePage;
pub use windowed::{Applied, WindowedUpdate};

/// BatchGetItem accepts at most 100 keys a call.
const BATCH_GET_LIMIT: usize = 100;
/// BatchWriteItem accepts at most 25 writes a call.
const BATCH_WRITE_LIMIT: usize = 25;
/// Attempts for the unprocessed part of a batch call before it counts as failed.
const BATCH_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("item {sk} could not be read: {source}")]
    Decode {
        sk: String,
        #[source]
        source: serde_dynamo::Error,
    },
    #[error("item could not be encoded: {0}")]
    Encode(#[source] serde_dynamo::Error),
    #[error("invalid value: {0}")]
    Invalid(String),
    #[error("gave up after {attempts} attempts because the item kept changing")]
    Contended { attempts: u32 },
    #[error("DynamoDB left {remaining} items unprocessed after {BATCH_ATTEMPTS} attempts")]
    Unprocessed { remaining: usize },
}

impl StoreError {
    /// Returns false when retrying the same request cannot succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Aws(error) => error.is_retryable(),
            Self::Decode { .. } | Self::Encode(_) | Self::Invalid(_) => false,
            Self::Unprocessed { .. } | Self::Contended { .. } => true,
        }
    }
}

/// A primary key: partition key and sort key.
pub type Key = (String, String);

/// Rollcall's table, with the client that reaches it.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table_name: String,
}

impl Store {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// Writes an item built from a serialisable value, replacing any item with the same key.
    pub async fn put<T: serde::Serialize>(&self, item: &T) -> Result<(), StoreError> {
        let item = serde_dynamo::to_item(item).map_err(StoreError::Encode)?;
        self.client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| AwsError::dynamodb("PutItem", e))?;
        Ok(())
    }

    /// Reads one item with a strongly consistent read.
    pub async fn get<T: serde::de::DeserializeOwned>(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(key_attributes(&(pk.to_owned(), sk.to_owned()))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::dynamodb("GetItem", e))?;
        output.item.map(decode).transpose()
    }

    /// Deletes an item and returns what it held, or `None` when there was no item. Of two
    /// concurrent calls for one key, exactly one gets the item.
    pub async fn take<T: serde::de::DeserializeOwned>(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table_name)
            .set_key(Some(key_attributes(&(pk.to_owned(), sk.to_owned()))))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| AwsError::dynamodb("DeleteItem", e))?;
        output
            .attributes
            .filter(|item| !item.is_empty())
            .map(decode)
            .transpose()
    }

    pub async fn put_tenant(&self, item: &TenantItem) -> Result<(), StoreError> {
        self.put(item).await
    }

    pub async fn put_extension_key(&self, item: &ExtensionKeyItem) -> Result<(), StoreError> {
        self.put(item).await
    }

    pub async fn extension_key(
        &self,
        tenant_id: &TenantId,
        key_id: &str,
    ) -> Result<Option<ExtensionKeyItem>, StoreError> {
        self.get(
            &table::tenant_pk(tenant_id),
            &table::extension_key_sk(key_id),
        )
        .await
    }

    /// Returns which of `keys` exist, reading only their key attributes.
    pub async fn existing_keys(&self, keys: &[Key]) -> Result<HashSet<Key>, StoreError> {
        Ok(self.batch_get(keys, true).await?.into_keys().collect())
    }

    /// Reads several items by key with strongly consistent reads.
    pub async fn get_items(
        &self,
        keys: &[Key],
    ) -> Result<HashMap<Key, HashMap<String, AttributeValue>>, StoreError> {
        self.batch_get(keys, false).await
    }

    /// Reads items with `BatchGetItem`, 100 keys a call, retrying unprocessed keys with backoff.
    /// With `keys_only`, only the key attributes are read.
    async fn batch_get(
        &self,
        keys: &[Key],
        keys_only: bool,
    ) -> Result<HashMap<Key, HashMap<String, AttributeValue>>, StoreError> {
        let mut found = HashMap::new();
        let mut unique: Vec<&Key> = keys.iter().collect();
        unique.sort();
        unique.dedup();

        for chunk in unique.chunks(BATCH_GET_LIMIT) {
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(|key| key_attributes(key)).collect()))
                .consistent_read(true);
            if keys_only {
                request = request
                    .projection_expression("#pk, #sk")
                    .expression_attribute_names("#pk", table::PK)
                    .expression_attribute_names("#sk", table::SK);
            }
            let mut pending = request.build().expect("keys are set");

            for attempt in 0..BATCH_ATTEMPTS {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table_name, pending.clone())
                    .send()
                    .await
                    .map_err(|e| AwsError::dynamodb("BatchGetItem", e))?;
                for item in output
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table_name)
                    .unwrap_or_default()
                {
                    if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                        (item.get(table::PK), item.get(table::SK))
                    {
                        found.insert((pk.clone(), sk.clone()), item);
                    }
                }
                match output
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(&self.table_name)
                {
                    Some(rest) if !rest.keys.is_empty() => {
                        if attempt + 1 == BATCH_ATTEMPTS {
                            return Err(StoreError::Unprocessed {
                                remaining: rest.keys.len(),
                            });
                        }
                        pending = rest;
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                    _ => break,
                }
            }
        }
        Ok(found)
    }

    /// Writes small marker items (key and TTL only) in batches of 25. A key given twice (the
    /// same request delivered twice in one SQS batch) is written once, because DynamoDB
    /// rejects a batch that names one key twice.
    pub async fn put_markers(&self, keys: &[Key], expires_at_epoch: i64) -> Result<(), StoreError> {
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        for chunk in keys.chunks(BATCH_WRITE_LIMIT) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    let mut item = key_attributes(key);
                    item.insert(
                        table::EXPIRES_AT.to_owned(),
                        AttributeValue::N(expires_at_epoch.to_string()),
                    );
                    let put = PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .expect("item is set");
                    WriteRequest::builder().put_request(put).build()
                })
                .collect();

            for attempt in 0..BATCH_ATTEMPTS {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table_name, pending)
                    .send()
                    .await
                    .map_err(|e| AwsError::dynamodb("BatchWriteItem", e))?;
                pending = output
                    .unprocessed_items
                    .unwrap_or_default()
                    .remove(&self.table_name)
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt + 1 == BATCH_ATTEMPTS {
                    return Err(StoreError::Unprocessed {
                        remaining: pending.len(),
                    });
                }
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
        Ok(())
    }

    /// Returns every item of partition `pk` whose sort key starts with `prefix`.
    pub async fn query_prefix(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table_name)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_names("#sk", table::SK)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
            .consistent_read(true);
        self.query_all_pages(query).await
    }

    /// Lists the SaaS accounts seen for an email in a tenant, through index `gsi1`.
    pub async fn accounts_for_email(
        &self,
        tenant_id: &TenantId,
        email: &crate::email::Email,
    ) -> Result<Vec<AccountItem>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table_name)
            .index_name(table::GSI1)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", table::GSI1_PK)
            .expression_attribute_names("#sk", table::GSI1_SK)
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(table::email_gsi1_pk(tenant_id, email)),
            )
            .expression_attribute_values(":prefix", AttributeValue::S("ACCOUNT#".to_owned()));
        self.query_all_pages(query)
            .await?
            .into_iter()
            .map(decode)
            .collect()
    }

    /// Runs a query to its last page and returns every item.
    pub async fn query_all_pages(
        &self,
        query: QueryFluentBuilder,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut items = Vec::new();
        let mut start_key = None;
        loop {
            let output = query
                .clone()
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| AwsError::dynamodb("Query", e))?;
            items.extend(output.items.unwrap_or_default());
            start_key = output.last_evaluated_key;
            if start_key.is_none() {
                return Ok(items);
            }
        }
    }
}

/// Decodes an item, naming its sort key if it does not fit `T`.
pub fn decode<T: serde::de::DeserializeOwned>(
    item: HashMap<String, AttributeValue>,
) -> Result<T, StoreError> {
    let sk = match item.get(table::SK) {
        Some(AttributeValue::S(sk)) => sk.clone(),
        _ => String::new(),
    };
    serde_dynamo::from_item(item).map_err(|source| StoreError::Decode { sk, source })
}

fn key_attributes((pk, sk): &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (table::PK.to_owned(), AttributeValue::S(pk.clone())),
        (table::SK.to_owned(), AttributeValue::S(sk.clone())),
    ])
}

fn backoff(attempt: u32) -> Duration {
    crate::retry::backoff(attempt, Duration::from_millis(50))
}
