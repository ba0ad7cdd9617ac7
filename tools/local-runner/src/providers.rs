//! Connects a local stack to the mock identity providers. Rollcall's own application secrets go
//! into the local Secrets Manager. The template parameters that a deployment sets by hand
//! (client ids, secret ARNs, redirect URIs) then point at them and at the mock.

use std::sync::OnceLock;

use aws_config::SdkConfig;
use mock_idp::Credentials;
use pkcs8::EncodePrivateKey;
use rollcall::error::AwsError;
use serde_json::json;

use crate::stack::Stack;

#[derive(Debug, thiserror::Error)]
pub enum ProvidersError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("the service account key could not be generated: {0}")]
    Key(String),
}

/// Returns a PEM RSA key for the local Google service account, made once per process. The mock
/// does not check signatures, so any RSA key of the kind Google issues will do.
fn service_account_key() -> Result<&'static str, ProvidersError> {
    static KEY: OnceLock<String> = OnceLock::new();
    if let Some(key) = KEY.get() {
        return Ok(key);
    }
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048)
        .map_err(|e| ProvidersError::Key(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem(pkcs8::LineEnding::LF)
        .map_err(|e| ProvidersError::Key(e.to_string()))?;
    Ok(KEY.get_or_init(|| pem.to_string()))
}

/// Rollcall's Google service account, as its JSON key file names it.
pub const SERVICE_ACCOUNT_CLIENT_ID: &str = "109876543210987654321";

/// Stores the application secrets the mock accepts and sets the provider parameters of
/// `stack`. With `mock_url` unset the functions would reach the real providers, so only tests
/// that never connect a provider leave it out.
pub async fn configure(
    sdk: &SdkConfig,
    stack: &mut Stack,
    mock_url: Option<&str>,
    credentials: &Credentials,
) -> Result<(), ProvidersError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let key = json!({
        "type": "service_account",
        "client_email": credentials.google_service_account,
        "client_id": SERVICE_ACCOUNT_CLIENT_ID,
        "private_key": service_account_key()?,
    })
    .to_string();

    let secrets = [
        (
            "MicrosoftClientSecretArn",
            "microsoft-client-secret",
            credentials.microsoft_client_secret.clone(),
        ),
        (
            "GoogleClientSecretArn",
            "google-client-secret",
            credentials.google_client_secret.clone(),
        ),
        (
            "GoogleServiceAccountSecretArn",
            "google-service-account",
            key,
        ),
    ];
    for (parameter, name, value) in secrets {
        let output = client
            .create_secret()
            .name(format!("{}-app/{name}", stack.prefix))
            .secret_string(value)
            .send()
            .await
            .map_err(|e| AwsError::new("SecretsManager", "CreateSecret", e))?;
        stack.set_parameter(parameter, output.arn.unwrap_or_default());
    }

    let redirect = |provider: &str| {
        credentials
            .redirect_uris
            .iter()
            .find(|uri| uri.ends_with(&format!("/callback/{provider}")))
            .cloned()
            .unwrap_or_default()
    };
    let prefix = stack.prefix.clone();
    stack.set_parameter("MicrosoftClientId", credentials.microsoft_client_id.clone());
    stack.set_parameter("MicrosoftRedirectUri", redirect("microsoft"));
    stack.set_parameter("GoogleClientId", credentials.google_client_id.clone());
    stack.set_parameter("GoogleRedirectUri", redirect("google"));
    stack.set_parameter("SecretNamePrefix", prefix);
    stack.set_parameter("ProviderBaseUrl", mock_url.unwrap_or_default());
    Ok(())
}
