//! Sends telemetry messages with `SendMessageBatch`, splitting large requests and retrying the
//! entries that fail.

use aws_sdk_sqs::Client;
use rollcall::envelope::TelemetryMessage;
use rollcall::queue::{self, group_into_batches};

/// Target size of one message, so that large requests split into several messages that each
/// stay well inside the limit.
const TARGET_MESSAGE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error(transparent)]
    Send(#[from] queue::SendError),
    #[error("message could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The telemetry queue, as the ingest function uses it.
#[derive(Debug, Clone)]
pub struct QueueSender {
    client: Client,
    queue_url: String,
}

impl QueueSender {
    pub fn new(client: Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }

    /// Queues every event of `message`. Returns the number of `SendMessageBatch` calls made.
    pub async fn send(&self, message: &TelemetryMessage) -> Result<u32, EnqueueError> {
        let bodies = split_into_bodies(message)?;
        let mut calls = 0;
        for batch in group_into_batches(&bodies) {
            calls += self.send_batch(&batch).await?;
        }
        Ok(calls)
    }

    async fn send_batch(&self, bodies: &[&String]) -> Result<u32, EnqueueError> {
        Ok(queue::send_batch(&self.client, &self.queue_url, bodies, None).await?)
    }
}

/// Serialises `message`, splitting its events over several messages when one would pass
/// [`TARGET_MESSAGE_BYTES`]. A single event is never split.
fn split_into_bodies(message: &TelemetryMessage) -> Result<Vec<String>, serde_json::Error> {
    let whole = serde_json::to_string(message)?;
    if whole.len() <= TARGET_MESSAGE_BYTES || message.events.len() <= 1 {
        return Ok(vec![whole]);
    }
    let (first, second) = message.events.split_at(message.events.len() / 2);
    let mut bodies = Vec::new();
    for half in [first, second] {
        let part = TelemetryMessage {
            events: half.to_vec(),
            ..message.clone()
        };
        bodies.extend(split_into_bodies(&part)?);
    }
    Ok(bodies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use rollcall::envelope::TELEMETRY_MESSAGE_VERSION;
    use rollcall::ids::TenantId;
    use rollcall::telemetry::{App, Event, EventType, LoginMethod, Profile};

    fn message(events: usize, name_len: usize) -> TelemetryMessage {
        let now = Utc::now();
        TelemetryMessage {
            version: TELEMETRY_MESSAGE_VERSION,
            tenant_id: TenantId::parse("acme").unwrap(),
            received_at: now,
            profile: Profile {
                install_id: "i".into(),
                browser: "chrome".into(),
                browser_version: "1".into(),
                extension_version: "1".into(),
                managed: true,
                identity: None,
            },
            events: (0..events)
                .map(|i| Event {
                    id: format!("e{i}"),
                    time: now,
                    event_type: EventType::Login,
                    app: Some(App {
                        domain: "a.example".into(),
                        name: "n".repeat(name_len),
                    }),
                    account_email: None,
                    login_method: Some(LoginMethod::Password),
                    identity_provider: None,
                })
                .collect(),
        }
    }

    #[test]
    fn small_request_is_one_message() {
        let bodies = split_into_bodies(&message(100, 10)).unwrap();
        assert_eq!(bodies.len(), 1);
        assert_eq!(group_into_batches(&bodies).len(), 1);
    }

    #[test]
    fn large_request_splits_within_limits() {
        let original = message(100, 2_500);
        let bodies = split_into_bodies(&original).unwrap();
        assert!(bodies.len() > 1);
        assert!(bodies.iter().all(|b| b.len() <= TARGET_MESSAGE_BYTES));
        let events: usize = bodies
            .iter()
            .map(|b| TelemetryMessage::from_body(b).unwrap().events.len())
            .sum();
        assert_eq!(events, 100);
        for batch in group_into_batches(&bodies) {
            assert!(batch.len() <= queue::MAX_BATCH_ENTRIES);
            assert!(batch.iter().map(|b| b.len()).sum::<usize>() <= queue::MAX_BATCH_BYTES);
        }
    }
}
