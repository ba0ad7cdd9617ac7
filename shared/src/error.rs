//! Errors from AWS calls, classified so that consumers know whether a retry can help.

use std::error::Error as StdError;
use std::fmt::Debug;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Error codes that mean the same request will fail again however often it is retried.
const PERMANENT_CODES: &[&str] = &[
    "ValidationException",
    "SerializationException",
    "ItemCollectionSizeLimitExceededException",
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "InvalidMessageContents",
    "MissingParameter",
    "BatchRequestTooLong",
    "AWS.SimpleQueueService.BatchRequestTooLong",
];

/// A failed call to an AWS service. `Display` names the service, operation and error code;
/// the SDK error, which may carry request detail, is only the source.
#[derive(Debug, thiserror::Error)]
#[error("{service} {operation} failed: {code}")]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    /// The service's error code, or `dispatch` when no response arrived.
    pub code: String,
    #[source]
    source: BoxError,
}

impl AwsError {
    pub fn new<E, R>(service: &'static str, operation: &'static str, error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: Debug + Send + Sync + 'static,
    {
        let code = match &error {
            SdkError::ServiceError(service_error) => {
                service_error.err().code().unwrap_or("unknown").to_owned()
            }
            SdkError::TimeoutError(_) => "timeout".to_owned(),
            SdkError::DispatchFailure(_) => format!("dispatch failure ({})", root_cause(&error)),
            SdkError::ResponseError(_) => "response".to_owned(),
            _ => "construction".to_owned(),
        };
        Self {
            service,
            operation,
            code,
            source: Box::new(error),
        }
    }

    pub fn dynamodb<E, R>(operation: &'static str, error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: Debug + Send + Sync + 'static,
    {
        Self::new("DynamoDB", operation, error)
    }

    pub fn sqs<E, R>(operation: &'static str, error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: Debug + Send + Sync + 'static,
    {
        Self::new("SQS", operation, error)
    }

    /// Returns false when retrying the same request cannot succeed.
    pub fn is_retryable(&self) -> bool {
        !PERMANENT_CODES.contains(&self.code.as_str()) && self.code != "construction"
    }

    pub fn is_conditional_check_failed(&self) -> bool {
        self.code == "ConditionalCheckFailedException"
    }
}

/// Returns the innermost error's message, such as "Connection refused (os error 111)", which
/// is more specific than the SDK's outer "dispatch failure".
fn root_cause(error: &(dyn StdError + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}
