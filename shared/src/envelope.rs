//! Messages that travel on Rollcall's SQS queues. Each carries a version so that a consumer
//! deployed before a producer rejects what it cannot read instead of misreading it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::email::Email;
use crate::ids::TenantId;
use crate::integration::Provider;
use crate::telemetry::{Event, IdentitySource, Profile};

pub const TELEMETRY_MESSAGE_VERSION: u32 = 1;
pub const IDENTITY_OBSERVATION_VERSION: u32 = 1;

/// Validated events of one ingest request, or part of one, for the telemetry queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryMessage {
    pub version: u32,
    pub tenant_id: TenantId,
    pub received_at: DateTime<Utc>,
    pub profile: Profile,
    pub events: Vec<Event>,
}

/// A browser profile seen signed in as `email`, for the licensing queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityObservation {
    pub version: u32,
    /// The same for every delivery of one observation, so its consumer can recognise
    /// redelivery: `<install id>:<newest event id>` of the telemetry behind it.
    pub observation_id: String,
    pub tenant_id: TenantId,
    pub install_id: String,
    pub email: Email,
    pub source: IdentitySource,
    pub managed: bool,
    pub observed_at: DateTime<Utc>,
}

/// Parses a message and refuses a version other than `expected`.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    body: &str,
    expected: u32,
    version: impl Fn(&T) -> u32,
) -> Result<T, EnvelopeError> {
    let message: T = serde_json::from_str(body)?;
    let found = version(&message);
    if found != expected {
        return Err(EnvelopeError::UnsupportedVersion { found, expected });
    }
    Ok(message)
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("message body is not a valid envelope: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("message version {found} is not supported (expected {expected})")]
    UnsupportedVersion { found: u32, expected: u32 },
}

impl TelemetryMessage {
    pub fn from_body(body: &str) -> Result<Self, EnvelopeError> {
        decode(body, TELEMETRY_MESSAGE_VERSION, |m: &Self| m.version)
    }
}

impl IdentityObservation {
    pub fn from_body(body: &str) -> Result<Self, EnvelopeError> {
        decode(body, IDENTITY_OBSERVATION_VERSION, |m: &Self| m.version)
    }
}

pub const MAIL_MESSAGE_VERSION: u32 = 1;

/// An email for the mailer function to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailMessage {
    pub version: u32,
    /// The same on every delivery, so the mailer sends each mail once.
    pub mail_id: String,
    pub tenant_id: TenantId,
    pub to: Email,
    pub subject: String,
    pub text: String,
}

impl MailMessage {
    pub fn from_body(body: &str) -> Result<Self, EnvelopeError> {
        decode(body, MAIL_MESSAGE_VERSION, |m: &Self| m.version)
    }
}

pub const SYNC_JOB_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncReason {
    /// The integration was just connected.
    Connected,
    /// The hourly schedule.
    Scheduled,
    /// A run that used up its time budget continues from its checkpoint.
    Continuation,
}

/// A directory sync of one integration, for the sync queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncJob {
    pub version: u32,
    /// The same on every delivery and on every continuation of one run.
    pub run_id: String,
    pub tenant_id: TenantId,
    pub provider: Provider,
    pub reason: SyncReason,
    pub requested_at: DateTime<Utc>,
}

impl SyncJob {
    pub fn from_body(body: &str) -> Result<Self, EnvelopeError> {
        decode(body, SYNC_JOB_VERSION, |m: &Self| m.version)
    }
}
