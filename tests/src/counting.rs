//! Counts AWS requests by operation, through an SDK interceptor, for benchmarks and cost tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Request counts keyed by `Service.Operation`. Clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl RequestCounter {
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn reset(&self) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.clear();
        }
    }

    /// Sums the counts of the named operations of one service, such as `("DynamoDB", &["UpdateItem"])`.
    pub fn total(&self, service: &str, operations: &[&str]) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(key, _)| {
                operations
                    .iter()
                    .any(|op| **key == format!("{service}.{op}"))
            })
            .map(|(_, count)| count)
            .sum()
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Counted per attempt, so a retried request counts twice, as AWS bills it.
        let Some(metadata) = config.load::<Metadata>() else {
            return Ok(());
        };
        let service = match metadata.service().to_ascii_lowercase().as_str() {
            "dynamodb" => "DynamoDB".to_owned(),
            "sqs" => "SQS".to_owned(),
            _ => metadata.service().to_owned(),
        };
        let key = format!("{service}.{}", metadata.name());
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(key).or_default() += 1;
        }
        Ok(())
    }
}

/// DynamoDB and SQS clients whose requests `counter` counts.
pub fn counted_clients(
    sdk: &aws_config::SdkConfig,
    counter: &RequestCounter,
) -> rollcall::aws::Clients {
    rollcall::aws::Clients {
        sdk: sdk.clone(),
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk)
                .interceptor(counter.clone())
                .build(),
        ),
        sqs: aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(sdk)
                .interceptor(counter.clone())
                .build(),
        ),
    }
}
