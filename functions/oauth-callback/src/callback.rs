//! The consent callbacks. The provider sends the consenting administrator's browser here. The
//! callback consumes the state first, whatever the outcome, so a state can never be replayed.

use chrono::Utc;
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, Response};
use rollcall::ids::TenantId;
use rollcall::integration::{self, Provider};
use rollcall::oauth_state::{self, OAuthStateItem};
use rollcall::problem::Problem;
use rollcall::table;
use serde_json::json;
use tracing::{info, warn};

use admin_api::http::{internal, path_parameter, query_parameter};

use crate::integrations::{Connection, IntegrationView};
use crate::{OAuthCallback, unknown_provider};
use rollcall::provider_client::ProviderError;

fn rejected(reason: &'static str, detail: impl Into<String>) -> Problem {
    Problem::new(400, "Bad Request", detail).with("reason", json!(reason))
}

fn exchange_problem(provider: Provider, error: &ProviderError) -> Problem {
    let name = display_name(provider);
    match error {
        ProviderError::Refused { code } => rejected(
            "exchange_failed",
            format!("{name} refused the token request ({code}); nothing was connected"),
        ),
        ProviderError::Denied { .. } => rejected(
            "exchange_failed",
            format!("{name} denied Rollcall access; nothing was connected"),
        ),
        ProviderError::Unavailable(_) | ProviderError::Unexpected(_) => Problem::new(
            502,
            "Bad Gateway",
            format!("{name} could not be reached or gave an unexpected answer; nothing was connected, try again"),
        )
        .with("reason", json!("provider_unavailable")),
    }
}

fn display_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Microsoft => "Microsoft",
        Provider::Google => "Google",
        Provider::Okta => "Okta",
    }
}

/// Checks for a GUID as Microsoft writes directory ids: 8-4-4-4-12 hexadecimal digits.
fn is_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl OAuthCallback {
    pub(crate) async fn callback(&self, request: &Request) -> Result<Response<Body>, Problem> {
        let name = path_parameter(request, "provider")?;
        let name = name.trim_end_matches('/');
        let provider = Provider::parse(name)
            .filter(|p| *p != Provider::Okta)
            .ok_or_else(|| unknown_provider(name))?;
        let query = |name: &str| query_parameter(request, name);

        let (tenant_id, state) = self.consume_state(provider, query("state")).await?;
        let previous_and_connection = match provider {
            Provider::Microsoft => self.finish_microsoft(&tenant_id, &state, &query).await,
            _ => self.finish_google(&tenant_id, &state, &query).await,
        };
        let (previous, connection) = previous_and_connection.inspect_err(|problem| {
            info!(tenant_id = %tenant_id, %provider, status = problem.status, detail = problem.detail, "consent not completed");
        })?;
        let item = self.record(&tenant_id, connection, previous).await?;

        let location = format!(
            "{}/integrations?connected={provider}",
            self.config.console_url.trim_end_matches('/')
        );
        let body = serde_json::to_string(&IntegrationView::from(&item)).unwrap_or_default();
        let mut response = Response::new(Body::Text(body));
        *response.status_mut() = StatusCode::SEE_OTHER;
        if let Ok(value) = header::HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        Ok(response)
    }

    /// Deletes the state and returns what it held, if it is well formed, known, unused, for
    /// this provider and unexpired.
    async fn consume_state(
        &self,
        provider: Provider,
        state: Option<String>,
    ) -> Result<(TenantId, OAuthStateItem), Problem> {
        let state =
            state.ok_or_else(|| rejected("invalid_state", "the callback carries no state"))?;
        let presented = oauth_state::parse(&state)
            .ok_or_else(|| rejected("invalid_state", "the callback's state is malformed"))?;
        let item: Option<OAuthStateItem> = self
            .store
            .take(
                &table::tenant_pk(&presented.tenant_id),
                &oauth_state::state_sk(&presented.secret_sha256),
            )
            .await
            .map_err(internal)?;
        let item = item.ok_or_else(|| {
            rejected(
                "invalid_state",
                "the state is unknown or was already used; start the connection again",
            )
        })?;
        if item.provider != provider {
            return Err(rejected(
                "invalid_state",
                format!("the state was issued for {}, not {provider}", item.provider),
            ));
        }
        if item.expires_at <= Utc::now().timestamp() {
            return Err(rejected(
                "expired_state",
                "the connection took longer than ten minutes; start it again",
            ));
        }
        Ok((presented.tenant_id, item))
    }

    async fn finish_microsoft(
        &self,
        tenant_id: &TenantId,
        state: &OAuthStateItem,
        query: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<(Option<rollcall::integration::IntegrationItem>, Connection), Problem> {
        if let Some(error) = query("error") {
            return Err(declined(
                Provider::Microsoft,
                &error,
                query("error_subcode"),
            ));
        }
        if query("admin_consent").as_deref() != Some("True") {
            return Err(rejected(
                "consent_not_granted",
                "Microsoft did not confirm admin consent; sign in as a Global Administrator or Privileged Role Administrator and try again",
            ));
        }
        let directory = query("tenant")
            .filter(|t| is_guid(t))
            .ok_or_else(|| {
                rejected(
                    "invalid_callback",
                    "Microsoft's answer carries no valid directory (tenant) id",
                )
            })?
            .to_ascii_lowercase();

        let previous = self
            .check_same_directory(tenant_id, Provider::Microsoft, &directory)
            .await?;
        let app = &self.config.microsoft;
        let client_secret = self
            .secrets
            .read(&app.client_secret_arn)
            .await
            .map_err(|e| self.secret_problem(&e))?;
        self.providers
            .microsoft_token(&directory, &app.client_id, &client_secret)
            .await
            .map_err(|e| {
                warn!(tenant_id = %tenant_id, error = %e, "Microsoft token request failed");
                exchange_problem(Provider::Microsoft, &e)
            })?;
        let connection = Connection {
            provider: Provider::Microsoft,
            provider_tenant: directory,
            domain: String::new(),
            scopes: state.scopes.clone(),
            secret_arn: app.client_secret_arn.clone(),
            client_id: None,
            connected_by: state.requested_by.clone(),
        };
        Ok((previous, connection))
    }

    async fn finish_google(
        &self,
        tenant_id: &TenantId,
        state: &OAuthStateItem,
        query: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<(Option<rollcall::integration::IntegrationItem>, Connection), Problem> {
        if let Some(error) = query("error") {
            return Err(declined(Provider::Google, &error, None));
        }
        let code = query("code")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| rejected("invalid_callback", "Google's answer carries no code"))?;
        let verifier = state.code_verifier.as_deref().ok_or_else(|| {
            rejected(
                "invalid_state",
                "the state has no PKCE verifier; start again",
            )
        })?;

        let app = &self.config.google;
        let client_secret = self
            .secrets
            .read(&app.client_secret_arn)
            .await
            .map_err(|e| self.secret_problem(&e))?;
        let grant = self
            .providers
            .google_exchange(
                &app.client_id,
                &client_secret,
                &app.redirect_uri,
                &code,
                verifier,
            )
            .await
            .map_err(|e| {
                warn!(tenant_id = %tenant_id, error = %e, "Google code exchange failed");
                exchange_problem(Provider::Google, &e)
            })?;
        let consented = integration::consent_scopes(Provider::Google, &state.scopes);
        let granted = grant.granted_scopes.unwrap_or_else(|| consented.clone());
        let missing: Vec<&str> = integration::catalogue(Provider::Google)
            .iter()
            .filter(|s| s.required && !s.delegated && !granted.iter().any(|g| g == s.scope))
            .map(|s| s.scope)
            .collect();
        if !missing.is_empty() {
            return Err(rejected(
                "scope_not_granted",
                format!(
                    "Google did not grant the required scopes {}; connect again and allow them",
                    missing.join(", ")
                ),
            ));
        }
        let refresh_token = grant.refresh_token.ok_or_else(|| {
            rejected(
                "exchange_failed",
                "Google returned no refresh token; remove Rollcall's access from the Google account and connect again",
            )
        })?;
        let customer = self
            .providers
            .google_customer(&grant.access_token)
            .await
            .map_err(|e| {
                warn!(tenant_id = %tenant_id, error = %e, "Google customer lookup failed");
                exchange_problem(Provider::Google, &e)
            })?;

        let previous = self
            .check_same_directory(tenant_id, Provider::Google, &customer.id)
            .await?;
        // A scope unticked on Google's consent screen is off, like one switched off here.
        let scopes = state
            .scopes
            .iter()
            .filter(|s| !consented.contains(s) || granted.contains(s))
            .cloned()
            .collect();
        let secret = json!({ "refresh_token": refresh_token }).to_string();
        let secret_arn = self
            .secrets
            .store(tenant_id, Provider::Google, &secret)
            .await
            .map_err(|e| self.secret_problem(&e))?;
        let connection = Connection {
            provider: Provider::Google,
            provider_tenant: customer.id,
            domain: customer.customer_domain.to_ascii_lowercase(),
            scopes,
            secret_arn,
            client_id: None,
            connected_by: state.requested_by.clone(),
        };
        Ok((previous, connection))
    }
}

/// Builds the problem for a consent declined or cancelled on the provider's consent screen.
fn declined(provider: Provider, error: &str, subcode: Option<String>) -> Problem {
    let name = display_name(provider);
    if subcode.as_deref() == Some("cancel") {
        return rejected(
            "consent_cancelled",
            format!("consent was cancelled on {name}'s consent screen; nothing was connected"),
        );
    }
    if error == "access_denied" {
        return rejected(
            "consent_declined",
            format!("consent was declined on {name}'s consent screen; nothing was connected"),
        );
    }
    // Only a plain OAuth error code is repeated back, never other text from the query.
    let code = if !error.is_empty()
        && error.len() <= 40
        && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        error
    } else {
        "unknown"
    };
    rejected(
        "consent_failed",
        format!("{name} ended the consent with error {code}; nothing was connected"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids() {
        assert!(is_guid("6f0b1a2c-3d4e-4f50-8a61-7b8c9d0e1f23"));
        for bad in [
            "",
            "organizations",
            "6f0b1a2c-3d4e-4f50-8a61-7b8c9d0e1f2",
            "6f0b1a2c3d4e4f508a617b8c9d0e1f23",
            "6f0b1a2c-3d4e-4f50-8a61-7b8c9d0e1f2g",
        ] {
            assert!(!is_guid(bad), "{bad}");
        }
    }
}
