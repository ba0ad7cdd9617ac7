//! Polls a queue the way the Lambda event source mapping for SQS does: it gathers up to the
//! batch size within the batching window, invokes the function, deletes what succeeded and
//! returns the rest to the queue. Moto moves a message to the dead-letter queue once its
//! receive count passes the queue's `maxReceiveCount`.

use std::collections::HashSet;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName,
};
use rollcall::error::AwsError;
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::functions::Handler;
use crate::stack::Queue;
use crate::template::QueueSource;

/// SQS returns at most 10 messages per `ReceiveMessage`.
const MAX_RECEIVE: usize = 10;

pub struct Poller {
    pub function: String,
    pub queue: Queue,
    pub source: QueueSource,
    pub handler: Handler,
    pub client: Client,
    pub function_timeout: Duration,
    /// How long a failed message stays invisible before it is retried. The real mapping waits
    /// for the queue's visibility timeout; locally a short delay keeps retries quick.
    pub retry_delay: Duration,
}

impl Poller {
    pub async fn run(self) {
        loop {
            match self.poll_once().await {
                Ok(_) => {}
                Err(error) => {
                    warn!(function = self.function, queue = self.queue.name, error = %error, "queue poll failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Receives one batch and invokes the function with it. Returns the number of messages.
    pub async fn poll_once(&self) -> Result<usize, AwsError> {
        let messages = self.receive_batch().await?;
        if messages.is_empty() {
            return Ok(0);
        }
        let count = messages.len();
        let event = self.sqs_event(&messages);
        let failed = self.invoke(event, &messages).await;

        let (retry, done): (Vec<&Message>, Vec<&Message>) = messages
            .iter()
            .partition(|m| m.message_id.as_ref().is_some_and(|id| failed.contains(id)));
        self.delete(&done).await?;
        self.release(&retry).await?;
        info!(
            function = self.function,
            queue = self.queue.name,
            received = count,
            failed = retry.len(),
            "queue batch invoked"
        );
        Ok(count)
    }

    async fn receive_batch(&self) -> Result<Vec<Message>, AwsError> {
        let deadline = Instant::now() + Duration::from_secs(self.source.batching_window_seconds);
        let mut messages = Vec::new();
        loop {
            let requested = (self.source.batch_size - messages.len()).min(MAX_RECEIVE);
            let output = self
                .client
                .receive_message()
                .queue_url(&self.queue.url)
                .max_number_of_messages(requested as i32)
                .wait_time_seconds(if messages.is_empty() { 1 } else { 0 })
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| AwsError::sqs("ReceiveMessage", e))?;
            let received = output.messages.unwrap_or_default();
            let got_none = received.is_empty();
            messages.extend(received);
            if messages.len() >= self.source.batch_size
                || Instant::now() >= deadline
                || (got_none && !messages.is_empty())
            {
                return Ok(messages);
            }
            if got_none {
                return Ok(messages);
            }
        }
    }

    /// Builds the event Lambda receives, with the record fields and attribute names AWS uses.
    fn sqs_event(&self, messages: &[Message]) -> Value {
        let records: Vec<Value> = messages
            .iter()
            .map(|message| {
                let attributes: Map<String, Value> = message
                    .attributes
                    .iter()
                    .flatten()
                    .map(|(name, value)| (name.as_str().to_owned(), Value::String(value.clone())))
                    .collect();
                let message_attributes: Map<String, Value> = message
                    .message_attributes
                    .iter()
                    .flatten()
                    .map(|(name, value)| {
                        (name.clone(), json!({"stringValue": value.string_value, "dataType": value.data_type, "stringListValues": [], "binaryListValues": []}))
                    })
                    .collect();
                json!({
                    "messageId": message.message_id,
                    "receiptHandle": message.receipt_handle,
                    "body": message.body,
                    "attributes": attributes,
                    "messageAttributes": message_attributes,
                    "md5OfBody": message.md5_of_body,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue.arn,
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        json!({ "Records": records })
    }

    /// Invokes the function and returns the ids of the messages to retry, applying the event
    /// source mapping's rules for a partial batch response.
    async fn invoke(&self, event: Value, messages: &[Message]) -> HashSet<String> {
        let all: HashSet<String> = messages
            .iter()
            .filter_map(|m| m.message_id.clone())
            .collect();
        let Handler::Sqs(handler) = &self.handler else {
            error!(function = self.function, "function is not an SQS consumer");
            return all;
        };
        let event: SqsEvent = match serde_json::from_value(event) {
            Ok(event) => event,
            Err(conversion) => {
                error!(function = self.function, error = %conversion, "SQS event did not convert");
                return all;
            }
        };

        let response = match tokio::time::timeout(self.function_timeout, handler(event)).await {
            Err(_) => {
                warn!(
                    function = self.function,
                    timeout_seconds = self.function_timeout.as_secs(),
                    "function timed out; the whole batch is retried"
                );
                return all;
            }
            Ok(Err(invocation)) => {
                warn!(function = self.function, error = %invocation, "function returned an error; the whole batch is retried");
                return all;
            }
            Ok(Ok(response)) => response,
        };
        if !self.source.report_batch_item_failures {
            return HashSet::new();
        }
        batch_item_failures(&response, &all).unwrap_or_else(|| {
            warn!(
                function = self.function,
                "invalid partial batch response; the whole batch is retried"
            );
            all
        })
    }

    async fn delete(&self, messages: &[&Message]) -> Result<(), AwsError> {
        for chunk in messages.chunks(MAX_RECEIVE) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                        .build()
                        .expect("id and receipt handle are set")
                })
                .collect();
            self.client
                .delete_message_batch()
                .queue_url(&self.queue.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| AwsError::sqs("DeleteMessageBatch", e))?;
        }
        Ok(())
    }

    async fn release(&self, messages: &[&Message]) -> Result<(), AwsError> {
        for chunk in messages.chunks(MAX_RECEIVE) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                        .visibility_timeout(self.retry_delay.as_secs() as i32)
                        .build()
                        .expect("id and receipt handle are set")
                })
                .collect();
            debug!(
                function = self.function,
                count = chunk.len(),
                "returning failed messages to the queue"
            );
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.queue.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| AwsError::sqs("ChangeMessageVisibilityBatch", e))?;
        }
        Ok(())
    }
}

/// Reads `{"batchItemFailures":[{"itemIdentifier":"..."}]}` exactly as Lambda does. Returns
/// `None` when the response is malformed or names a message not in the batch, which makes the
/// whole batch fail. A null response or one without the key means every message succeeded.
pub fn batch_item_failures(response: &Value, batch: &HashSet<String>) -> Option<HashSet<String>> {
    let failures = match response {
        Value::Null => return Some(HashSet::new()),
        Value::Object(object) => match object.get("batchItemFailures") {
            None | Some(Value::Null) => return Some(HashSet::new()),
            Some(Value::Array(failures)) => failures,
            Some(_) => return None,
        },
        _ => return None,
    };
    let mut ids = HashSet::new();
    for failure in failures {
        let id = failure.get("itemIdentifier").and_then(Value::as_str)?;
        if id.is_empty() || !batch.contains(id) {
            return None;
        }
        ids.insert(id.to_owned());
    }
    Some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> HashSet<String> {
        ["m-1", "m-2", "m-3"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn partial_failure_names_messages() {
        let response = json!({"batchItemFailures": [{"itemIdentifier": "m-3"}]});
        assert_eq!(
            batch_item_failures(&response, &batch()),
            Some(HashSet::from(["m-3".to_owned()]))
        );
    }

    #[test]
    fn empty_or_null_means_success() {
        assert_eq!(
            batch_item_failures(&Value::Null, &batch()),
            Some(HashSet::new())
        );
        assert_eq!(
            batch_item_failures(&json!({"batchItemFailures": []}), &batch()),
            Some(HashSet::new())
        );
        assert_eq!(
            batch_item_failures(&json!({}), &batch()),
            Some(HashSet::new())
        );
    }

    #[test]
    fn malformed_response_fails_batch() {
        let cases = [
            json!({"batchItemFailures": [{"itemIdentifier": "unknown"}]}),
            json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            json!({"batchItemFailures": [{"item_identifier": "m-1"}]}),
            json!({"batchItemFailures": "m-1"}),
            json!("m-1"),
        ];
        for response in cases {
            assert_eq!(batch_item_failures(&response, &batch()), None, "{response}");
        }
    }
}
