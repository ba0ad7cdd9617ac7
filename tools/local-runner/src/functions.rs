//! The functions the runner can host, by the logical id the template gives them.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_http::{Body, Request, Response};
use rollcall::aws::Clients;
use rollcall::error::BoxError;
use serde_json::Value;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A function handler, by the kind of event it takes.
#[derive(Clone)]
pub enum Handler {
    /// An HTTP API function: takes the request converted from a payload 2.0 event.
    Http(Arc<dyn Fn(Request) -> BoxFuture<Response<Body>> + Send + Sync>),
    /// An SQS consumer: returns the JSON its Lambda would return (a partial batch response).
    Sqs(Arc<dyn Fn(SqsEvent) -> BoxFuture<Result<Value, BoxError>> + Send + Sync>),
    /// A scheduled function: takes the EventBridge scheduled event.
    Schedule(Arc<dyn Fn(Value) -> BoxFuture<Result<(), BoxError>> + Send + Sync>),
}

/// Builds handlers for the functions of a template.
pub trait Registry: Send + Sync {
    /// Builds the handler of `logical_id` with its resolved environment, as its `main` would
    /// at cold start.
    fn build(
        &self,
        logical_id: &str,
        environment: &HashMap<String, String>,
        clients: &Clients,
    ) -> Result<Handler, BoxError>;
}

/// Rollcall's functions.
pub struct RollcallFunctions;

impl Registry for RollcallFunctions {
    fn build(
        &self,
        logical_id: &str,
        environment: &HashMap<String, String>,
        clients: &Clients,
    ) -> Result<Handler, BoxError> {
        match logical_id {
            "IngestFunction" => {
                let ingest = Arc::new(ingest::Ingest::new(
                    clients,
                    ingest::Config::from_lookup(environment)?,
                ));
                Ok(Handler::Http(Arc::new(move |request| {
                    let ingest = Arc::clone(&ingest);
                    Box::pin(async move { ingest.handle(request).await })
                })))
            }
            "TelemetryWriterFunction" => {
                let writer = Arc::new(telemetry_writer::Writer::new(
                    clients,
                    telemetry_writer::Config::from_lookup(environment)?,
                ));
                Ok(Handler::Sqs(Arc::new(move |event| {
                    let writer = Arc::clone(&writer);
                    Box::pin(async move {
                        let response = writer.handle(event).await?;
                        Ok(serde_json::to_value(response)?)
                    })
                })))
            }
            "AutoLicenseFunction" => {
                let function = Arc::new(auto_license::AutoLicense::new(
                    clients,
                    auto_license::Config::from_lookup(environment)?,
                ));
                Ok(Handler::Sqs(Arc::new(move |event| {
                    let function = Arc::clone(&function);
                    Box::pin(async move {
                        let response = function.handle(event).await?;
                        Ok(serde_json::to_value(response)?)
                    })
                })))
            }
            "AdminApiFunction" => {
                let api = Arc::new(admin_api::AdminApi::new(
                    clients,
                    admin_api::Config::from_lookup(environment)?,
                ));
                Ok(Handler::Http(Arc::new(move |request| {
                    let api = Arc::clone(&api);
                    Box::pin(async move { api.handle(request).await })
                })))
            }
            "EnrolFunction" => {
                let enrol = Arc::new(enrol::Enrol::new(
                    clients,
                    enrol::Config::from_lookup(environment)?,
                ));
                Ok(Handler::Http(Arc::new(move |request| {
                    let enrol = Arc::clone(&enrol);
                    Box::pin(async move { enrol.handle(request).await })
                })))
            }
            "MailerFunction" => {
                let mailer = Arc::new(mailer::Mailer::new(
                    clients,
                    mailer::Config::from_lookup(environment)?,
                ));
                Ok(Handler::Sqs(Arc::new(move |event| {
                    let mailer = Arc::clone(&mailer);
                    Box::pin(async move {
                        let response = mailer.handle(event).await?;
                        Ok(serde_json::to_value(response)?)
                    })
                })))
            }
            "OAuthCallbackFunction" => {
                let function = Arc::new(oauth_callback::OAuthCallback::new(
                    clients,
                    oauth_callback::Config::from_lookup(environment)?,
                ));
                Ok(Handler::Http(Arc::new(move |request| {
                    let function = Arc::clone(&function);
                    Box::pin(async move { function.handle(request).await })
                })))
            }
            "SyncSchedulerFunction" => {
                let function = Arc::new(sync_scheduler::SyncScheduler::new(
                    clients,
                    sync_scheduler::Config::from_lookup(environment)?,
                ));
                Ok(Handler::Schedule(Arc::new(move |_event| {
                    let function = Arc::clone(&function);
                    Box::pin(async move {
                        function.handle().await?;
                        Ok(())
                    })
                })))
            }
            "InactivitySweepFunction" => {
                let function = Arc::new(inactivity_sweep::InactivitySweep::new(
                    clients,
                    inactivity_sweep::Config::from_lookup(environment)?,
                ));
                Ok(Handler::Schedule(Arc::new(move |event| {
                    let function = Arc::clone(&function);
                    Box::pin(async move {
                        function.handle(&event).await?;
                        Ok(())
                    })
                })))
            }
            "SyncWorkerFunction" => {
                let function = Arc::new(sync_worker::SyncWorker::new(
                    clients,
                    sync_worker::Config::from_lookup(environment)?,
                ));
                Ok(Handler::Sqs(Arc::new(move |event| {
                    let function = Arc::clone(&function);
                    Box::pin(async move {
                        let response = function.handle(event).await?;
                        Ok(serde_json::to_value(response)?)
                    })
                })))
            }
            "DirectoryWriterFunction" => {
                let function = Arc::new(directory_writer::DirectoryWriter::new(
                    clients,
                    directory_writer::Config::from_lookup(environment)?,
                ));
                Ok(Handler::Sqs(Arc::new(move |event| {
                    let function = Arc::clone(&function);
                    Box::pin(async move {
                        let response = function.handle(event).await?;
                        Ok(serde_json::to_value(response)?)
                    })
                })))
            }
            other => Err(format!(
                "the local runner has no handler for function {other}; add it to RollcallFunctions"
            )
            .into()),
        }
    }
}
