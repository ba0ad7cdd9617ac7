//! The administrator's side of connecting: the scope catalogue, connect URLs for Microsoft and
//! Google, the Okta credential check, and Google domain-wide delegation.

use chrono::Utc;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use oauth2::PkceCodeChallenge;
use rollcall::email::canonical_email;
use rollcall::integration::{self, Delegation, Provider};
use rollcall::oauth_state::{self, OAuthStateItem, STATE_LIFETIME};
use rollcall::problem::Problem;
use rollcall::table;
use rollcall::telemetry::storage_time;
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use admin_api::auth::Administrator;
use admin_api::http::{bad_request, internal, json, json_body, path_parameter};

use crate::integrations::{Connection, IntegrationView};
use crate::{OAuthCallback, unknown_provider};
use rollcall::provider_client::{ProviderError, ServiceAccountKey};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectRequest {
    /// Optional scopes the administrator switched off.
    #[serde(default)]
    disabled_scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OktaRequest {
    domain: String,
    client_id: String,
    client_secret: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DelegationRequest {
    admin_email: String,
}

/// Returns every provider's scopes, their purpose and the features each enables.
pub fn catalogue() -> Response<Body> {
    let providers: serde_json::Map<String, serde_json::Value> = Provider::ALL
        .into_iter()
        .map(|p| (p.as_str().to_owned(), json!(integration::catalogue(p))))
        .collect();
    json(StatusCode::OK, &json!({ "providers": providers }))
}

fn problem_for_okta(error: &ProviderError) -> Problem {
    let scopes = integration::catalogue(Provider::Okta)
        .iter()
        .map(|s| s.scope)
        .collect::<Vec<_>>()
        .join(", ");
    let (status, title, detail, reason) = match error {
        ProviderError::Refused { code } if code == "invalid_client" => (
            400,
            "Bad Request",
            "Okta rejected the client id or client secret".to_owned(),
            "invalid_client",
        ),
        ProviderError::Refused { code } if code == "invalid_scope" => (
            400,
            "Bad Request",
            format!(
                "the Okta service app has not been granted the scopes Rollcall needs; grant {scopes} on its Okta API Scopes tab"
            ),
            "invalid_scope",
        ),
        ProviderError::Refused { code } => (
            400,
            "Bad Request",
            format!("Okta refused the client-credentials request ({code})"),
            "exchange_failed",
        ),
        ProviderError::Denied { .. } => (
            400,
            "Bad Request",
            "the Okta service app lacks admin rights; assign it the Read-Only Administrator role in Okta".to_owned(),
            "not_admin",
        ),
        ProviderError::Unavailable(_) | ProviderError::Unexpected(_) => (
            502,
            "Bad Gateway",
            "Okta could not be reached or gave an unexpected answer; try again".to_owned(),
            "provider_unavailable",
        ),
    };
    Problem::new(status, title, detail).with("reason", json!(reason))
}

/// Checks a client id or secret an administrator typed: present, bounded, printable.
fn credential_field(field: &str, value: &str, max: usize) -> Result<String, Problem> {
    let value = value.trim();
    if value.is_empty() {
        return Err(bad_request(field, "is empty"));
    }
    if value.len() > max {
        return Err(bad_request(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad_request(field, "contains spaces or control characters"));
    }
    Ok(value.to_owned())
}

impl OAuthCallback {
    /// Starts a Microsoft or Google consent: stores a state and returns the URL to open.
    pub(crate) async fn connect(
        &self,
        admin: &Administrator,
        request: &Request,
    ) -> Result<Response<Body>, Problem> {
        admin.require_write()?;
        let name = path_parameter(request, "provider")?;
        let provider = Provider::parse(&name).ok_or_else(|| unknown_provider(&name))?;
        if provider == Provider::Okta {
            return Err(bad_request(
                "provider",
                "Okta connects with its domain, client id and client secret: PUT /v1/admin/integrations/okta",
            ));
        }
        self.check_not_revoking(&admin.tenant_id, provider).await?;
        let body: ConnectRequest = if request.body().is_empty() {
            ConnectRequest::default()
        } else {
            json_body(request)?
        };
        let scopes: Vec<String> = integration::chosen_scopes(provider, &body.disabled_scopes)
            .map_err(|e| bad_request("disabled_scopes", e.to_string()))?
            .into_iter()
            .map(str::to_owned)
            .collect();

        let state = oauth_state::generate(&admin.tenant_id);
        let now = Utc::now();
        let expires = now + STATE_LIFETIME;
        let consent_scopes = integration::consent_scopes(provider, &scopes).join(" ");
        let (authorize_url, code_verifier) = match provider {
            Provider::Microsoft => {
                let app = &self.config.microsoft;
                let url = reqwest::Url::parse_with_params(
                    &format!(
                        "{}/organizations/v2.0/adminconsent",
                        self.config.endpoints.microsoft_login
                    ),
                    [
                        ("client_id", app.client_id.as_str()),
                        ("scope", consent_scopes.as_str()),
                        ("redirect_uri", app.redirect_uri.as_str()),
                        ("state", state.token.as_str()),
                    ],
                );
                (url, None)
            }
            _ => {
                let app = &self.config.google;
                let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
                let url = reqwest::Url::parse_with_params(
                    &format!("{}/o/oauth2/v2/auth", self.config.endpoints.google_accounts),
                    [
                        ("response_type", "code"),
                        ("client_id", app.client_id.as_str()),
                        ("redirect_uri", app.redirect_uri.as_str()),
                        ("scope", consent_scopes.as_str()),
                        ("state", state.token.as_str()),
                        ("code_challenge", challenge.as_str()),
                        ("code_challenge_method", "S256"),
                        ("access_type", "offline"),
                        ("prompt", "consent"),
                    ],
                );
                (url, Some(verifier.secret().clone()))
            }
        };
        let authorize_url = authorize_url.map_err(|e| {
            warn!(error = %e, %provider, "provider login URL is invalid");
            Problem::new(
                500,
                "Internal Server Error",
                "the connect URL could not be built",
            )
        })?;
        let item = OAuthStateItem {
            pk: table::tenant_pk(&admin.tenant_id),
            sk: oauth_state::state_sk(&state.secret_sha256),
            provider,
            requested_by: admin.email.clone(),
            scopes: scopes.clone(),
            code_verifier,
            created_at: storage_time(now),
            expires_at: expires.timestamp(),
        };
        self.store.put(&item).await.map_err(internal)?;

        info!(tenant_id = %admin.tenant_id, %provider, "connect URL issued");
        Ok(json(
            StatusCode::CREATED,
            &json!({
                "provider": provider,
                "authorize_url": authorize_url.as_str(),
                "expires_at": storage_time(expires),
                "scopes": scopes,
                "disabled_features": integration::disabled_features(provider, &scopes),
            }),
        ))
    }

    /// Connects Okta: checks the domain, proves the credentials with a client-credentials
    /// request and a one-user listing, then stores them.
    pub(crate) async fn connect_okta(
        &self,
        admin: &Administrator,
        request: &Request,
    ) -> Result<Response<Body>, Problem> {
        admin.require_write()?;
        let body: OktaRequest = json_body(request)?;
        let domain = integration::okta_domain(&body.domain, &self.config.okta_domain_suffixes)
            .map_err(|e| bad_request("domain", e.to_string()))?;
        let client_id = credential_field("client_id", &body.client_id, 128)?;
        let client_secret = credential_field("client_secret", &body.client_secret, 512)?;

        let previous = self
            .check_same_directory(&admin.tenant_id, Provider::Okta, &domain)
            .await?;
        let scopes: Vec<&str> = integration::catalogue(Provider::Okta)
            .iter()
            .map(|s| s.scope)
            .collect();
        if let Err(error) = self
            .providers
            .okta_check(&domain, &client_id, &client_secret, &scopes)
            .await
        {
            warn!(tenant_id = %admin.tenant_id, domain, error = %error, "Okta credential check failed");
            return Err(problem_for_okta(&error));
        }
        let secret = json!({ "client_secret": client_secret }).to_string();
        let secret_arn = self
            .secrets
            .store(&admin.tenant_id, Provider::Okta, &secret)
            .await
            .map_err(|e| self.secret_problem(&e))?;
        let connection = Connection {
            provider: Provider::Okta,
            provider_tenant: domain.clone(),
            domain,
            scopes: scopes.into_iter().map(str::to_owned).collect(),
            secret_arn,
            client_id: Some(client_id),
            connected_by: admin.email.clone(),
        };
        let item = self.record(&admin.tenant_id, connection, previous).await?;

        Ok(json(StatusCode::CREATED, &IntegrationView::from(&item)))
    }

    /// Records the Workspace administrator Rollcall's service account acts as, once Google
    /// has accepted a delegated token request for exactly the delegated scopes.
    pub(crate) async fn delegate_google(
        &self,
        admin: &Administrator,
        request: &Request,
    ) -> Result<Response<Body>, Problem> {
        admin.require_write()?;
        let body: DelegationRequest = json_body(request)?;
        let admin_email = canonical_email(&body.admin_email)
            .map_err(|e| bad_request("admin_email", e.to_string()))?;
        let mut item = self
            .integration(&admin.tenant_id, Provider::Google)
            .await?
            .ok_or_else(|| {
                Problem::new(
                    409,
                    "Conflict",
                    "connect Google Workspace before setting up domain-wide delegation",
                )
            })?;
        let scopes = integration::delegated_scopes(&item.scopes);
        if scopes.is_empty() {
            return Err(Problem::new(
                409,
                "Conflict",
                "no enabled Google scope needs domain-wide delegation",
            ));
        }

        let key_json = self
            .secrets
            .read(&self.config.google_service_account_secret_arn)
            .await
            .map_err(|e| self.secret_problem(&e))?;
        let key: ServiceAccountKey = serde_json::from_str(&key_json).map_err(|e| {
            warn!(error = %e, "the Google service account key is not valid JSON");
            Problem::new(
                500,
                "Internal Server Error",
                "Rollcall's Google service account is misconfigured",
            )
        })?;
        let checked = self
            .providers
            .google_delegation(&key, admin_email.as_str(), &scopes)
            .await;
        if let Err(error) = checked {
            warn!(tenant_id = %admin.tenant_id, error = %error, "domain-wide delegation check failed");
            return Err(delegation_problem(
                &error,
                &key,
                admin_email.as_str(),
                &scopes,
            ));
        }
        item.delegation = Some(Delegation {
            service_account: key.client_email.clone(),
            client_id: key.client_id.clone(),
            admin_email: admin_email.as_str().to_owned(),
            scopes,
            checked_at: storage_time(Utc::now()),
        });
        self.store.put(&item).await.map_err(internal)?;

        info!(tenant_id = %admin.tenant_id, "domain-wide delegation recorded");
        Ok(json(StatusCode::OK, &IntegrationView::from(&item)))
    }

    pub(crate) fn secret_problem(&self, error: &dyn std::error::Error) -> Problem {
        tracing::error!(error = %error, "Secrets Manager request failed");
        Problem::new(
            503,
            "Service Unavailable",
            "the credential could not be stored or read now; retry later",
        )
    }
}

/// Builds the error that names what a Workspace administrator must authorise.
fn delegation_problem(
    error: &ProviderError,
    key: &ServiceAccountKey,
    admin_email: &str,
    scopes: &[String],
) -> Problem {
    let problem = match error {
        ProviderError::Refused { code } if code == "invalid_grant" => Problem::new(
            422,
            "Unprocessable Content",
            format!(
                "Google did not accept {admin_email} as the user to act as; it must be an active administrator of the Workspace"
            ),
        ),
        ProviderError::Refused { .. } | ProviderError::Denied { .. } => Problem::new(
            422,
            "Unprocessable Content",
            format!(
                "domain-wide delegation is not authorised: in the Google Admin console, under Security > Access and data control > API controls > Domain-wide delegation, authorise client ID {} for the scopes {}",
                key.client_id,
                scopes.join(",")
            ),
        ),
        ProviderError::Unavailable(_) | ProviderError::Unexpected(_) => Problem::new(
            502,
            "Bad Gateway",
            "Google could not be reached or gave an unexpected answer; try again",
        ),
    };
    problem
        .with("client_id", json!(key.client_id))
        .with("scopes", json!(scopes))
}
