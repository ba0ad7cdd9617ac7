//! Secrets Manager: Rollcall's own application secrets and the credential each integration
//! stores. Secret values never reach a log line or an error message.

use crate::error::AwsError;
use crate::ids::TenantId;
use crate::integration::Provider;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::SdkError;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("the secret holds binary data, not text")]
    NotText,
}

#[derive(Debug, Clone)]
pub struct Secrets {
    client: Client,
    /// Prefix of the integration secrets' names, so IAM can scope the function to them.
    name_prefix: String,
}

impl Secrets {
    pub fn new(client: Client, name_prefix: String) -> Self {
        Self {
            client,
            name_prefix,
        }
    }

    /// Reads a secret's current value.
    pub async fn read(&self, secret_id: &str) -> Result<String, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| AwsError::new("SecretsManager", "GetSecretValue", e))?;
        output.secret_string.ok_or(SecretError::NotText)
    }

    /// Stores an integration's credential under `<prefix>/<tenant>/<provider>`, creating the
    /// secret or adding a new version when the integration is connected again. Returns its ARN.
    pub async fn store(
        &self,
        tenant_id: &TenantId,
        provider: Provider,
        value: &str,
    ) -> Result<String, AwsError> {
        let name = format!("{}/{tenant_id}/{provider}", self.name_prefix);
        let created = self
            .client
            .create_secret()
            .name(&name)
            .secret_string(value)
            .description(format!(
                "Rollcall {provider} credential of tenant {tenant_id}"
            ))
            .send()
            .await;
        match created {
            Ok(output) => Ok(output.arn.unwrap_or(name)),
            Err(SdkError::ServiceError(e)) if e.err().is_resource_exists_exception() => {
                let output = self
                    .client
                    .put_secret_value()
                    .secret_id(&name)
                    .secret_string(value)
                    .send()
                    .await
                    .map_err(|e| AwsError::new("SecretsManager", "PutSecretValue", e))?;
                Ok(output.arn.unwrap_or(name))
            }
            Err(e) => Err(AwsError::new("SecretsManager", "CreateSecret", e)),
        }
    }

    /// Deletes an integration's credential at once, without a recovery window, so a revoked
    /// integration leaves no usable token behind. A secret that does not exist counts as
    /// deleted. Rollcall's own application secrets have other names and are never touched.
    pub async fn delete(&self, tenant_id: &TenantId, provider: Provider) -> Result<(), AwsError> {
        let name = format!("{}/{tenant_id}/{provider}", self.name_prefix);
        let result = self
            .client
            .delete_secret()
            .secret_id(&name)
            .force_delete_without_recovery(true)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => Ok(()),
            Err(e) => Err(AwsError::new("SecretsManager", "DeleteSecret", e)),
        }
    }
}
