//! Consumes the telemetry queue.
//!
//! For each batch it skips events already processed (a marker item per event id), coalesces the
//! remaining events into one write per item (browser profile, SaaS account, app), forwards
//! identity observations to the licensing queue, then records the event markers. Every item
//! write is idempotent (time windows that only widen, sets merged with `ADD`), so a crash at any
//! point and the redelivery that follows leave the same state as one clean run.

mod changes;
mod forward;

use std::collections::{BTreeSet, HashMap, HashSet};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use futures_util::StreamExt;
use futures_util::stream;
use rollcall::aws::Clients;
use rollcall::config::{ConfigError, Lookup, required};
use rollcall::envelope::TelemetryMessage;
use rollcall::queue::batch_response;
use rollcall::store::{Key, Store, WindowedUpdate};
use rollcall::table;
use tracing::{debug, error, info, warn};

use crate::changes::Changes;
use crate::forward::Forwarder;

/// How long an event marker lives. Longer than the queue's 4-day retention, so every
/// redelivery of a processed event still finds its marker.
const MARKER_TTL: Duration = Duration::days(14);
/// Item writes in flight at once within one batch.
const WRITE_CONCURRENCY: usize = 16;

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub licensing_queue_url: String,
    /// Messages that can never be processed are moved here with their reason.
    pub dead_letter_queue_url: String,
}

impl Config {
    pub fn from_lookup(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(lookup, "TABLE_NAME")?,
            licensing_queue_url: required(lookup, "LICENSING_QUEUE_URL")?,
            dead_letter_queue_url: required(lookup, "TELEMETRY_DLQ_URL")?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("SQS record at index {0} has no messageId, so its failure could not be reported")]
    MissingMessageId(usize),
}

/// The telemetry writer's state, built once per Lambda instance.
#[derive(Debug, Clone)]
pub struct Writer {
    store: Store,
    forwarder: Forwarder,
}

/// A record whose body parsed.
struct Received {
    message_id: String,
    message: TelemetryMessage,
}

impl Writer {
    pub fn new(clients: &Clients, config: Config) -> Self {
        let sqs = clients.sqs.clone();
        Self {
            store: Store::new(clients.dynamodb.clone(), config.table_name),
            forwarder: Forwarder::new(
                sqs,
                config.licensing_queue_url,
                config.dead_letter_queue_url,
            ),
        }
    }

    /// Processes one SQS batch and returns the records to retry. A record is either stored,
    /// recognised as a duplicate, moved to the dead-letter queue with its reason, or listed as a
    /// failure. None is acknowledged without one of these.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, WriterError> {
        let mut failed: BTreeSet<String> = BTreeSet::new();
        let received = self.parse_records(event.records, &mut failed).await?;

        let processed = self.processed_events(&received, &mut failed).await;
        let changes = Changes::collect(&received, &processed, &failed);
        self.apply_items(&received, &changes, &mut failed).await;
        self.forwarder
            .forward_identities(&received, &changes, &mut failed)
            .await;
        self.record_markers(&received, &changes, &failed).await;

        info!(
            records = received.len() + failed.len(),
            new_events = changes.new_event_count(),
            item_writes = changes.updates.len(),
            failed = failed.len(),
            "telemetry batch processed"
        );
        Ok(batch_response(failed))
    }

    async fn parse_records(
        &self,
        records: Vec<SqsMessage>,
        failed: &mut BTreeSet<String>,
    ) -> Result<Vec<Received>, WriterError> {
        let mut received = Vec::with_capacity(records.len());
        for (index, record) in records.into_iter().enumerate() {
            let message_id = record
                .message_id
                .clone()
                .ok_or(WriterError::MissingMessageId(index))?;
            let parsed = match record.body.as_deref() {
                None => Err("message has no body".to_owned()),
                Some(body) => TelemetryMessage::from_body(body).map_err(|e| e.to_string()),
            };
            match parsed {
                Ok(message) => received.push(Received {
                    message_id,
                    message,
                }),
                Err(reason) => {
                    warn!(
                        message_id,
                        reason, "malformed telemetry message; moving it to the dead-letter queue"
                    );
                    if let Err(error) = self.forwarder.dead_letter(&record, &reason).await {
                        error!(message_id, error = %error, "dead-letter send failed; leaving the message for redrive");
                        failed.insert(message_id);
                    }
                }
            }
        }
        Ok(received)
    }

    /// Returns the marker keys of events already processed. When the lookup fails, every
    /// message is retried: processing it again is safe, skipping it is not.
    async fn processed_events(
        &self,
        received: &[Received],
        failed: &mut BTreeSet<String>,
    ) -> HashSet<Key> {
        let keys: Vec<Key> = received
            .iter()
            .flat_map(|r| changes::marker_keys(&r.message))
            .collect();
        match self.store.existing_keys(&keys).await {
            Ok(found) => found,
            Err(error) => {
                error!(error = %error, "event marker lookup failed; retrying the batch");
                failed.extend(received.iter().map(|r| r.message_id.clone()));
                HashSet::new()
            }
        }
    }

    async fn apply_items(
        &self,
        received: &[Received],
        changes: &Changes,
        failed: &mut BTreeSet<String>,
    ) {
        // Owned futures, collected first: borrowing closures inside the stream make the
        // handler's future fail rustc's `Send` check.
        let jobs: Vec<_> = changes
            .updates
            .values()
            .map(|(update, contributors)| {
                let store = self.store.clone();
                let update = update.clone();
                let contributors = contributors.clone();
                async move { (store.apply_windowed(&update).await, update, contributors) }
            })
            .collect();
        let results: Vec<_> = stream::iter(jobs)
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;

        let mut touches = Vec::new();
        for (result, update, contributors) in results {
            let error = match result {
                Ok(applied) => {
                    if let Some(employee_id) = activity_to_record(&update, &applied.previous) {
                        touches.push((employee_id, update, contributors));
                    }
                    continue;
                }
                Err(error) => error,
            };
            for index in contributors {
                let record = &received[index];
                if error.is_retryable() {
                    warn!(message_id = record.message_id, sk = update.sk, error = %error, "item write failed; the message will be retried");
                    failed.insert(record.message_id.clone());
                } else {
                    error!(message_id = record.message_id, sk = update.sk, error = %error, "item write can never succeed; moving the message to the dead-letter queue");
                    if self
                        .forwarder
                        .dead_letter_message(record, &error.to_string())
                        .await
                        .is_err()
                    {
                        failed.insert(record.message_id.clone());
                    }
                }
            }
        }
        self.touch_employees(received, touches, failed).await;
    }

    /// Records the extension activity of the employees whose browser profiles reported. A
    /// failure retries the messages behind it, and the write only ever moves the time forward.
    async fn touch_employees(
        &self,
        received: &[Received],
        touches: Vec<(String, WindowedUpdate, Vec<usize>)>,
        failed: &mut BTreeSet<String>,
    ) {
        for (employee_id, update, contributors) in touches {
            let Some(&first) = contributors.first() else {
                continue;
            };
            let tenant_id = &received[first].message.tenant_id;
            if let Err(error) = self
                .store
                .touch_extension_activity(tenant_id, &employee_id, &update.last_seen)
                .await
            {
                warn!(tenant_id = %tenant_id, employee_id, error = %error, "extension activity not recorded; the messages will be retried");
                for index in contributors {
                    failed.insert(received[index].message_id.clone());
                }
            }
        }
    }

    /// Writes markers for the events of every message that fully succeeded. A marker only
    /// saves work on redelivery, so a failure here is logged and the batch still succeeds.
    async fn record_markers(
        &self,
        received: &[Received],
        changes: &Changes,
        failed: &BTreeSet<String>,
    ) {
        let keys: Vec<Key> = changes
            .new_events
            .iter()
            .filter(|(index, _)| !failed.contains(&received[*index].message_id))
            .map(|(_, key)| key.clone())
            .collect();
        if keys.is_empty() {
            return;
        }
        let expires_at = (Utc::now() + MARKER_TTL).timestamp();
        if let Err(error) = self.store.put_markers(&keys, expires_at).await {
            warn!(error = %error, markers = keys.len(), "event markers not written; redelivered events will be applied again");
        }
        for record in received {
            if changes.duplicate_only.contains(&record.message_id) {
                debug!(message_id = record.message_id, tenant_id = %record.message.tenant_id, "all events already processed");
            }
        }
    }
}

/// Returns the employee whose extension activity a browser profile update moves forward: the
/// employee the profile was linked to, when the update reaches a later clock hour than the
/// profile's stored last report. The employee is therefore written at most once an hour per
/// profile, which is precise enough for an inactivity period counted in days. A write lost to
/// a failure is made good by the profile's next report in a later hour.
fn activity_to_record(
    update: &WindowedUpdate,
    previous: &HashMap<String, AttributeValue>,
) -> Option<String> {
    if !update.sk.starts_with("PROFILE#") {
        return None;
    }
    let Some(AttributeValue::S(employee_id)) = previous.get("employee_id") else {
        return None;
    };
    let hour = |time: &str| time.get(..13).map(str::to_owned);
    let reported = match previous.get("last_seen") {
        Some(AttributeValue::S(last_seen)) => hour(last_seen),
        _ => None,
    };
    (hour(&update.last_seen) > reported).then(|| employee_id.clone())
}

/// Partition key of a message's tenant.
fn tenant_pk(message: &TelemetryMessage) -> String {
    table::tenant_pk(&message.tenant_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile_update(last_seen: &str) -> WindowedUpdate {
        WindowedUpdate {
            pk: "TENANT#acme".into(),
            sk: "PROFILE#install-1".into(),
            first_seen: last_seen.into(),
            last_seen: last_seen.into(),
            ..Default::default()
        }
    }

    fn stored(employee_id: Option<&str>, last_seen: &str) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([(
            "last_seen".to_owned(),
            AttributeValue::S(last_seen.to_owned()),
        )]);
        if let Some(id) = employee_id {
            item.insert("employee_id".into(), AttributeValue::S(id.into()));
        }
        item
    }

    #[test]
    fn activity_recorded_once_an_hour() {
        let update = profile_update("2026-12-05T10:20:00.000Z");
        let same_hour = stored(Some("e1"), "2026-12-05T10:01:00.000Z");
        let earlier_hour = stored(Some("e1"), "2026-12-05T09:59:59.999Z");
        assert_eq!(activity_to_record(&update, &same_hour), None);
        assert_eq!(
            activity_to_record(&update, &earlier_hour),
            Some("e1".to_owned())
        );
    }

    #[test]
    fn activity_needs_a_linked_profile() {
        let update = profile_update("2026-12-05T10:20:00.000Z");
        assert_eq!(activity_to_record(&update, &HashMap::new()), None);
        let unlinked = stored(None, "2026-12-01T10:00:00.000Z");
        assert_eq!(activity_to_record(&update, &unlinked), None);
        let mut account = profile_update("2026-12-05T10:20:00.000Z");
        account.sk = "ACCOUNT#app.slack.com#ana@example.com".into();
        let linked = stored(Some("e1"), "2026-12-01T10:00:00.000Z");
        assert_eq!(activity_to_record(&account, &linked), None);
    }
}
