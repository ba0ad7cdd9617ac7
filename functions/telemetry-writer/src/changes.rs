//! Turns a batch of telemetry messages into coalesced item updates.

use std::collections::{BTreeSet, HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use rollcall::envelope::TelemetryMessage;
use rollcall::store::{Key, WindowedUpdate};
use rollcall::table;
use rollcall::telemetry::{Event, EventType, storage_time};

use crate::{Received, tenant_pk};

/// The coalesced work of one batch.
#[derive(Default)]
pub struct Changes {
    /// One update per item, with the indexes of the messages that contributed to it.
    pub updates: HashMap<Key, (WindowedUpdate, Vec<usize>)>,
    /// Marker keys of events not processed before, with the index of their message.
    pub new_events: Vec<(usize, Key)>,
    /// Messages whose events were all processed before.
    pub duplicate_only: HashSet<String>,
}

/// Returns the marker keys of a message's events. They depend only on the tenant, install id and
/// event id, so a retried or redelivered event always finds the same marker.
pub fn marker_keys(message: &TelemetryMessage) -> impl Iterator<Item = Key> + '_ {
    let pk = tenant_pk(message);
    message.events.iter().map(move |event| {
        (
            pk.clone(),
            table::event_marker_sk(&message.profile.install_id, &event.id),
        )
    })
}

impl Changes {
    pub fn collect(
        received: &[Received],
        processed: &HashSet<Key>,
        failed: &BTreeSet<String>,
    ) -> Self {
        let mut changes = Changes::default();
        for (index, record) in received.iter().enumerate() {
            if failed.contains(&record.message_id) {
                continue;
            }
            let fresh: Vec<&Event> = record
                .message
                .events
                .iter()
                .zip(marker_keys(&record.message))
                .filter(|(_, key)| !processed.contains(key))
                .map(|(event, key)| {
                    changes.new_events.push((index, key));
                    event
                })
                .collect();
            if fresh.is_empty() {
                changes.duplicate_only.insert(record.message_id.clone());
                continue;
            }
            changes.add_message(index, &record.message, &fresh);
        }
        changes
    }

    pub fn new_event_count(&self) -> usize {
        self.new_events.len()
    }

    /// Returns whether message `index` has events that were not processed before.
    pub fn has_new_events(&self, index: usize) -> bool {
        self.new_events.iter().any(|(i, _)| *i == index)
    }

    fn add_message(&mut self, index: usize, message: &TelemetryMessage, events: &[&Event]) {
        let pk = tenant_pk(message);
        let first = events
            .iter()
            .map(|e| e.time)
            .min()
            .map(storage_time)
            .unwrap_or_default();
        let last = events
            .iter()
            .map(|e| e.time)
            .max()
            .map(storage_time)
            .unwrap_or_default();
        self.add(index, profile_update(&pk, message, first, last));

        for event in events {
            if event.event_type == EventType::Heartbeat {
                continue;
            }
            if let Some(update) = app_update(&pk, event) {
                self.add(index, update);
            }
            if let Some(update) = account_update(&pk, message, event) {
                self.add(index, update);
            }
        }
    }

    fn add(&mut self, index: usize, update: WindowedUpdate) {
        let key = (update.pk.clone(), update.sk.clone());
        match self.updates.get_mut(&key) {
            Some((existing, contributors)) => {
                existing.merge(update);
                if !contributors.contains(&index) {
                    contributors.push(index);
                }
            }
            None => {
                self.updates.insert(key, (update, vec![index]));
            }
        }
    }
}

fn text(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn profile_update(
    pk: &str,
    message: &TelemetryMessage,
    first: String,
    last: String,
) -> WindowedUpdate {
    let profile = &message.profile;
    let mut newest = vec![
        ("browser".to_owned(), text(&profile.browser)),
        ("browser_version".to_owned(), text(&profile.browser_version)),
        (
            "extension_version".to_owned(),
            text(&profile.extension_version),
        ),
        ("managed".to_owned(), AttributeValue::Bool(profile.managed)),
    ];
    if let Some(identity) = &profile.identity {
        newest.push(("identity_email".to_owned(), text(identity.email.as_str())));
        let source = serde_json::to_value(identity.source)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        newest.push(("identity_source".to_owned(), text(&source)));
    }
    WindowedUpdate {
        pk: pk.to_owned(),
        sk: table::profile_sk(&profile.install_id),
        first_seen: first,
        last_seen: last,
        always: vec![("install_id".to_owned(), text(&profile.install_id))],
        newest,
        sets: Vec::new(),
    }
}

fn app_update(pk: &str, event: &Event) -> Option<WindowedUpdate> {
    let app = event.app.as_ref()?;
    let time = storage_time(event.time);
    Some(WindowedUpdate {
        pk: pk.to_owned(),
        sk: table::app_sk(&app.domain),
        first_seen: time.clone(),
        last_seen: time,
        always: vec![("app_domain".to_owned(), text(&app.domain))],
        newest: vec![("app_name".to_owned(), text(&app.name))],
        sets: vec![(
            "login_methods".to_owned(),
            event
                .login_method
                .map(|m| vec![m.as_str().to_owned()])
                .unwrap_or_default(),
        )],
    })
}

fn account_update(pk: &str, message: &TelemetryMessage, event: &Event) -> Option<WindowedUpdate> {
    let app = event.app.as_ref()?;
    let email = event.account_email.as_ref()?;
    let time = storage_time(event.time);
    Some(WindowedUpdate {
        pk: pk.to_owned(),
        sk: table::account_sk(&app.domain, email),
        first_seen: time.clone(),
        last_seen: time,
        always: vec![
            ("app_domain".to_owned(), text(&app.domain)),
            ("account_email".to_owned(), text(email.as_str())),
            (
                table::GSI1_PK.to_owned(),
                text(&table::email_gsi1_pk(&message.tenant_id, email)),
            ),
            (
                table::GSI1_SK.to_owned(),
                text(&table::account_gsi1_sk(&app.domain)),
            ),
        ],
        newest: vec![("app_name".to_owned(), text(&app.name))],
        sets: vec![
            (
                "login_methods".to_owned(),
                event
                    .login_method
                    .map(|m| vec![m.as_str().to_owned()])
                    .unwrap_or_default(),
            ),
            (
                "identity_providers".to_owned(),
                event.identity_provider.clone().into_iter().collect(),
            ),
        ],
    })
}
