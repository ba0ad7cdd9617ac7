//! Rollcall's shared crate: the domain, the table layout and storage, queue envelopes,
//! configuration, AWS clients and tracing setup used by every function.

pub mod aws;
pub mod config;
pub mod directory;
pub mod email;
pub mod enrolment;
pub mod envelope;
pub mod error;
pub mod extension_key;
pub mod ids;
pub mod integration;
pub mod logging;
pub mod oauth_state;
pub mod problem;
pub mod provider_client;
pub mod queue;
pub mod retry;
pub mod secrets;
pub mod store;
pub mod table;
pub mod telemetry;
pub mod tenant_token;
