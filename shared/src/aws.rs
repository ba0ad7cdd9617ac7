//! AWS SDK configuration.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// Loads the standard SDK configuration. Region, credentials and `AWS_ENDPOINT_URL` (which
/// points the SDK at a local stand-in) come from the environment, as in Lambda.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// Returns a configuration for a local AWS stand-in at `endpoint_url`, with fixed test
/// credentials and region so nothing on the machine can point it at a real account.
pub async fn local_sdk_config(endpoint_url: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "rollcall-local",
        ))
        .load()
        .await
}

/// The AWS clients the functions use, built once at cold start. Each function takes only the
/// clients it calls; tests can build them with extra interceptors. A function that needs
/// another service (the mailer's SES) builds its client from `sdk`.
#[derive(Debug, Clone)]
pub struct Clients {
    pub sdk: SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl Clients {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            sdk: sdk.clone(),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
        }
    }
}
