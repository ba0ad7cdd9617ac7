//! Messages the writer sends on: identity observations to the licensing queue, and records that
//! can never succeed to the dead-letter queue with their reason.

use std::collections::{BTreeSet, HashMap};

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use rollcall::envelope::{IDENTITY_OBSERVATION_VERSION, IdentityObservation};
use rollcall::error::AwsError;
use rollcall::queue::DeadLetterQueue;
use tracing::{error, warn};

use crate::Received;
use crate::changes::Changes;

/// SQS accepts at most 10 entries in one `SendMessageBatch`.
const MAX_BATCH_ENTRIES: usize = 10;

#[derive(Debug, Clone)]
pub struct Forwarder {
    client: Client,
    licensing_queue_url: String,
    dead_letter_queue: DeadLetterQueue,
}

impl Forwarder {
    pub fn new(client: Client, licensing_queue_url: String, dead_letter_queue_url: String) -> Self {
        let dead_letter_queue = DeadLetterQueue::new(client.clone(), dead_letter_queue_url);
        Self {
            client,
            licensing_queue_url,
            dead_letter_queue,
        }
    }

    /// Sends one identity observation per (tenant, browser profile, email) in the batch, from
    /// messages with new events whose item writes succeeded. A failed send fails the messages
    /// behind it, so the observation is sent again on redelivery.
    pub async fn forward_identities(
        &self,
        received: &[Received],
        changes: &Changes,
        failed: &mut BTreeSet<String>,
    ) {
        let mut observations: HashMap<(String, String, String), (IdentityObservation, Vec<usize>)> =
            HashMap::new();
        for (index, record) in received.iter().enumerate() {
            if failed.contains(&record.message_id) || !changes.has_new_events(index) {
                continue;
            }
            let message = &record.message;
            let Some(identity) = &message.profile.identity else {
                continue;
            };
            let Some(newest) = message
                .events
                .iter()
                .max_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)))
            else {
                continue;
            };
            let key = (
                message.tenant_id.to_string(),
                message.profile.install_id.clone(),
                identity.email.to_string(),
            );
            let observation = IdentityObservation {
                version: IDENTITY_OBSERVATION_VERSION,
                observation_id: format!("{}:{}", message.profile.install_id, newest.id),
                tenant_id: message.tenant_id.clone(),
                install_id: message.profile.install_id.clone(),
                email: identity.email.clone(),
                source: identity.source,
                managed: message.profile.managed,
                observed_at: newest.time,
            };
            let entry = observations
                .entry(key)
                .or_insert_with(|| (observation.clone(), Vec::new()));
            if (observation.observed_at, &observation.observation_id)
                >= (entry.0.observed_at, &entry.0.observation_id)
            {
                entry.0 = observation;
            }
            entry.1.push(index);
        }

        let observations: Vec<_> = observations.into_values().collect();
        for chunk in observations.chunks(MAX_BATCH_ENTRIES) {
            let failed_entries = self.send_observations(chunk).await;
            for position in failed_entries {
                for &index in &chunk[position].1 {
                    failed.insert(received[index].message_id.clone());
                }
            }
        }
    }

    /// Returns the positions within `chunk` that were not queued.
    async fn send_observations(&self, chunk: &[(IdentityObservation, Vec<usize>)]) -> Vec<usize> {
        let mut entries = Vec::with_capacity(chunk.len());
        for (position, (observation, _)) in chunk.iter().enumerate() {
            let body = match serde_json::to_string(observation) {
                Ok(body) => body,
                Err(error) => {
                    error!(error = %error, "identity observation could not be encoded");
                    return (0..chunk.len()).collect();
                }
            };
            let entry = SendMessageBatchRequestEntry::builder()
                .id(position.to_string())
                .message_body(body)
                .build()
                .expect("id and body are set");
            entries.push(entry);
        }

        let result = self
            .client
            .send_message_batch()
            .queue_url(&self.licensing_queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        match result {
            Ok(output) => output
                .failed
                .iter()
                .filter_map(|entry| {
                    warn!(
                        code = entry.code,
                        "identity observation not queued; the message will be retried"
                    );
                    entry.id.parse().ok()
                })
                .collect(),
            Err(error) => {
                let error = AwsError::sqs("SendMessageBatch", error);
                warn!(error = %error, "identity observations not queued; the messages will be retried");
                (0..chunk.len()).collect()
            }
        }
    }

    /// Moves a record that can never be processed to the dead-letter queue, with its reason.
    pub async fn dead_letter(&self, record: &SqsMessage, reason: &str) -> Result<(), AwsError> {
        let body = record.body.as_deref().unwrap_or_default();
        let message_id = record.message_id.as_deref().unwrap_or_default();
        self.dead_letter_queue.send(body, message_id, reason).await
    }

    /// Moves a parsed message whose writes can never succeed to the dead-letter queue.
    pub async fn dead_letter_message(
        &self,
        record: &Received,
        reason: &str,
    ) -> Result<(), AwsError> {
        let body = serde_json::to_string(&record.message).unwrap_or_default();
        let result = self
            .dead_letter_queue
            .send(&body, &record.message_id, reason)
            .await;
        if let Err(error) = &result {
            error!(message_id = record.message_id, error = %error, "dead-letter send failed; leaving the message for redrive");
        }
        result
    }
}
