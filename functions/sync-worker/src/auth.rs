//! Access tokens for a sync run, from each integration's stored credential.

use rollcall::integration::{IntegrationItem, IntegrationStatus, Provider};
use rollcall::provider_client::{ProviderError, ServiceAccountKey};
use serde::Deserialize;

use crate::SyncWorker;

/// A failed token request: the reason, and the integration's new state.
#[derive(Debug)]
pub struct AuthFailure {
    /// `None` when the failure is transient and the integration stays as it is.
    pub status: Option<IntegrationStatus>,
    /// Words fit to show an administrator.
    pub message: String,
}

#[derive(Deserialize)]
struct GoogleSecret {
    refresh_token: String,
}

#[derive(Deserialize)]
struct OktaSecret {
    client_secret: String,
}

fn secret_failure(error: impl std::fmt::Display) -> AuthFailure {
    tracing::error!(error = %error, "integration secret could not be read");
    AuthFailure {
        status: None,
        message: "the stored credential could not be read".to_owned(),
    }
}

impl SyncWorker {
    pub(crate) async fn access_token(
        &self,
        integration: &IntegrationItem,
    ) -> Result<String, AuthFailure> {
        let provider = integration.provider;
        let secret = self
            .secrets
            .read(&integration.secret_arn)
            .await
            .map_err(secret_failure)?;
        let result = match provider {
            Provider::Microsoft => {
                self.providers
                    .microsoft_token(
                        &integration.provider_tenant,
                        &self.config.microsoft_client_id,
                        &secret,
                    )
                    .await
            }
            Provider::Google => match &integration.delegation {
                Some(delegation) => {
                    let key = self
                        .secrets
                        .read(&self.config.google_service_account_secret_arn)
                        .await
                        .map_err(secret_failure)?;
                    let key: ServiceAccountKey =
                        serde_json::from_str(&key).map_err(secret_failure)?;
                    return self
                        .providers
                        .google_delegation(&key, &delegation.admin_email, &delegation.scopes)
                        .await
                        .map_err(|error| delegation_failure(&error, &key, &delegation.scopes));
                }
                None => {
                    let stored: GoogleSecret =
                        serde_json::from_str(&secret).map_err(secret_failure)?;
                    let client_secret = self
                        .secrets
                        .read(&self.config.google_client_secret_arn)
                        .await
                        .map_err(secret_failure)?;
                    self.providers
                        .google_refresh(
                            &self.config.google_client_id,
                            &client_secret,
                            &stored.refresh_token,
                        )
                        .await
                }
            },
            Provider::Okta => {
                let stored: OktaSecret = serde_json::from_str(&secret).map_err(secret_failure)?;
                let scopes: Vec<&str> = integration.scopes.iter().map(String::as_str).collect();
                self.providers
                    .okta_token(
                        &integration.domain,
                        integration.client_id.as_deref().unwrap_or_default(),
                        &stored.client_secret,
                        &scopes,
                    )
                    .await
            }
        };
        result.map_err(|error| token_failure(provider, &error))
    }
}

fn token_failure(provider: Provider, error: &ProviderError) -> AuthFailure {
    match error {
        ProviderError::Refused { code } if code == "invalid_grant" => AuthFailure {
            status: Some(IntegrationStatus::ReauthorisationRequired),
            message: format!(
                "{provider} no longer accepts Rollcall's grant (invalid_grant); an administrator must connect it again"
            ),
        },
        ProviderError::Refused { code } => AuthFailure {
            status: Some(IntegrationStatus::NeedsAttention),
            message: format!(
                "{provider} rejected Rollcall's token request ({code}); check the app's permissions"
            ),
        },
        ProviderError::Denied { status } => AuthFailure {
            status: Some(IntegrationStatus::NeedsAttention),
            message: format!("{provider} denied Rollcall's token request (HTTP {status})"),
        },
        ProviderError::Unavailable(_) | ProviderError::Unexpected(_) => AuthFailure {
            status: None,
            message: format!("{provider}'s token endpoint could not be reached"),
        },
    }
}

/// A delegation refusal names what a Workspace administrator must authorise.
fn delegation_failure(
    error: &ProviderError,
    key: &ServiceAccountKey,
    scopes: &[String],
) -> AuthFailure {
    match error {
        ProviderError::Refused { code } if code == "unauthorized_client" => AuthFailure {
            status: Some(IntegrationStatus::NeedsAttention),
            message: format!(
                "domain-wide delegation is not authorised: in the Google Admin console, authorise client ID {} for the scopes {}",
                key.client_id,
                scopes.join(",")
            ),
        },
        other => token_failure(Provider::Google, other),
    }
}
