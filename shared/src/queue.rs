//! Pieces the SQS producers and consumers share: batch sends, record parsing with the
//! dead-letter queue that takes messages which can never be processed, and the partial batch
//! response.

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use tracing::warn;

use crate::error::AwsError;

/// The message attribute that carries why a message was moved to a dead-letter queue.
pub const FAILURE_REASON_ATTRIBUTE: &str = "failure_reason";
/// The message attribute that carries the id the message had on its original queue.
pub const SOURCE_MESSAGE_ID_ATTRIBUTE: &str = "source_message_id";

/// Builds `{"batchItemFailures": [{"itemIdentifier": ...}]}` for the records to retry.
pub fn batch_response(failed: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|item_identifier| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = item_identifier;
            failure
        })
        .collect();
    response
}

/// A consumer's dead-letter queue, for messages that no retry can fix.
#[derive(Debug, Clone)]
pub struct DeadLetterQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl DeadLetterQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: String) -> Self {
        Self { client, url }
    }

    /// Sends `body` with the reason it failed and its original message id. An empty body is
    /// replaced by a placeholder, because SQS rejects empty messages.
    pub async fn send(&self, body: &str, message_id: &str, reason: &str) -> Result<(), AwsError> {
        let text = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .expect("data type is set")
        };
        let body = if body.is_empty() { "(no body)" } else { body };
        let message_id = if message_id.is_empty() {
            "unknown"
        } else {
            message_id
        };
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_attributes(FAILURE_REASON_ATTRIBUTE, text(reason))
            .message_attributes(SOURCE_MESSAGE_ID_ATTRIBUTE, text(message_id))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::sqs("SendMessage", e))
    }
}

/// SQS accepts at most 10 entries in one `SendMessageBatch`.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// SQS limits a message, and the sum of a batch's messages, to 256 KiB.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
const SEND_ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{failed} messages were not queued after {SEND_ATTEMPTS} attempts (last code {code})")]
    EntriesFailed { failed: usize, code: String },
}

impl SendError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Aws(error) => error.is_retryable(),
            Self::EntriesFailed { .. } => true,
        }
    }
}

/// Sends message bodies with one `SendMessageBatch` (at most [`MAX_BATCH_ENTRIES`]), retrying
/// the entries SQS could not take. Returns the number of calls made.
pub async fn send_batch(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    bodies: &[&String],
    delay_seconds: Option<i32>,
) -> Result<u32, SendError> {
    let mut pending: Vec<(String, &String)> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| (i.to_string(), *body))
        .collect();
    let mut calls = 0;
    for attempt in 0..SEND_ATTEMPTS {
        let entries = pending
            .iter()
            .map(|(id, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(id)
                    .message_body(body.as_str())
                    .set_delay_seconds(delay_seconds)
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        calls += 1;
        let output = client
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        let output = match output {
            Ok(output) => output,
            Err(error) => {
                let error = AwsError::sqs("SendMessageBatch", error);
                if attempt + 1 == SEND_ATTEMPTS || !error.is_retryable() {
                    return Err(error.into());
                }
                warn!(error = %error, attempt, "SendMessageBatch failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                continue;
            }
        };

        let failed = output.failed;
        if failed.is_empty() {
            return Ok(calls);
        }
        let code = failed[0].code.clone();
        if failed.iter().any(|entry| entry.sender_fault) || attempt + 1 == SEND_ATTEMPTS {
            return Err(SendError::EntriesFailed {
                failed: failed.len(),
                code,
            });
        }
        warn!(
            failed = failed.len(),
            code, attempt, "some messages were not queued; retrying them"
        );
        pending.retain(|(id, _)| failed.iter().any(|entry| entry.id == *id));
        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
    }
    Ok(calls)
}

/// Groups message bodies into `SendMessageBatch` calls within the entry and size limits.
pub fn group_into_batches(bodies: &[String]) -> Vec<Vec<&String>> {
    let mut batches: Vec<Vec<&String>> = Vec::new();
    let mut current: Vec<&String> = Vec::new();
    let mut current_bytes = 0;
    for body in bodies {
        if !current.is_empty()
            && (current.len() == MAX_BATCH_ENTRIES || current_bytes + body.len() > MAX_BATCH_BYTES)
        {
            batches.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current_bytes += body.len();
        current.push(body);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Sends every body, in as few `SendMessageBatch` calls as the limits allow.
pub async fn send_all(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    bodies: &[String],
    delay_seconds: Option<i32>,
) -> Result<u32, SendError> {
    let mut calls = 0;
    for batch in group_into_batches(bodies) {
        calls += send_batch(client, queue_url, &batch, delay_seconds).await?;
    }
    Ok(calls)
}

#[derive(Debug, thiserror::Error)]
#[error("SQS record at index {0} has no messageId, so its failure could not be reported")]
pub struct MissingMessageId(pub usize);

/// Parses each record's body with `parse`. A body that can never be parsed goes to the
/// dead-letter queue with the reason. If even that fails, its message id is among the returned
/// failures, so that SQS delivers it again.
pub async fn parse_records<T, E: std::fmt::Display>(
    dead_letter_queue: &DeadLetterQueue,
    records: Vec<aws_lambda_events::event::sqs::SqsMessage>,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<(Vec<(String, T)>, std::collections::BTreeSet<String>), MissingMessageId> {
    let mut parsed = Vec::new();
    let mut failed = std::collections::BTreeSet::new();
    for (index, record) in records.into_iter().enumerate() {
        let message_id = record.message_id.clone().ok_or(MissingMessageId(index))?;
        let body = record.body.as_deref().unwrap_or_default();
        match parse(body) {
            Ok(value) => parsed.push((message_id, value)),
            Err(reason) => {
                warn!(message_id, reason = %reason, "malformed message; moving it to the dead-letter queue");
                if dead_letter_queue
                    .send(body, &message_id, &reason.to_string())
                    .await
                    .is_err()
                {
                    failed.insert(message_id);
                }
            }
        }
    }
    Ok((parsed, failed))
}
