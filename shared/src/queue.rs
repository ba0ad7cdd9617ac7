//! Pieces every SQS consumer shares: the partial batch response and the dead-letter queue that
//! takes messages which can never be processed.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_sdk_sqs::types::MessageAttributeValue;

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
