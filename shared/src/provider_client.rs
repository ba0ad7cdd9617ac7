//! Requests to the identity providers' token endpoints: consent exchanges, the grants a sync
//! uses, and the checks that prove a credential works. Errors keep the provider's OAuth error
//! code and never a secret.

use std::time::Duration;

use crate::integration::ProviderEndpoints;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, HttpClientError, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardErrorResponse, TokenResponse,
    TokenUrl,
};
use serde::{Deserialize, Serialize};

/// Maximum wait for one provider request, since the consent callback serves a person's browser.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider returned an OAuth error such as `invalid_grant`.
    #[error("the provider refused the request: {code}")]
    Refused { code: String },
    /// The provider returned 401 or 403 to an API call.
    #[error("the provider denied access (HTTP {status})")]
    Denied { status: u16 },
    /// The provider could not be reached or returned a server error.
    #[error("the provider could not be reached: {0}")]
    Unavailable(String),
    /// The provider returned a response this code cannot read.
    #[error("the provider's answer was not understood: {0}")]
    Unexpected(String),
}

type TokenError = RequestTokenError<
    HttpClientError<reqwest::Error>,
    StandardErrorResponse<BasicErrorResponseType>,
>;

fn token_error(error: TokenError) -> ProviderError {
    match error {
        RequestTokenError::ServerResponse(response) => ProviderError::Refused {
            code: response.error().as_ref().to_owned(),
        },
        RequestTokenError::Request(error) => ProviderError::Unavailable(error.to_string()),
        RequestTokenError::Parse(error, _) => ProviderError::Unexpected(error.to_string()),
        RequestTokenError::Other(message) => ProviderError::Unexpected(message),
    }
}

fn invalid_url(error: impl std::fmt::Display) -> ProviderError {
    ProviderError::Unexpected(format!("invalid provider URL: {error}"))
}

/// A Google authorization-code exchange: the refresh token and the scopes granted.
pub struct GoogleGrant {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub granted_scopes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoogleCustomer {
    pub id: String,
    pub customer_domain: String,
}

#[derive(Serialize)]
struct DelegationClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: String,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

/// A Google service account key, as Google issues it in JSON.
#[derive(Deserialize)]
pub struct ServiceAccountKey {
    pub client_email: String,
    pub client_id: String,
    pub private_key: String,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Providers {
    http: reqwest::Client,
    pub endpoints: ProviderEndpoints,
}

impl Providers {
    pub fn new(endpoints: ProviderEndpoints) -> Self {
        // Token endpoints respond directly, and following a redirect could send a secret
        // elsewhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self { http, endpoints }
    }

    /// Requests a Microsoft Graph token for `tenant` with the application's own secret.
    pub async fn microsoft_token(
        &self,
        tenant: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Result<String, ProviderError> {
        let token_url = format!(
            "{}/{tenant}/oauth2/v2.0/token",
            self.endpoints.microsoft_login
        );
        let client = BasicClient::new(ClientId::new(client_id.to_owned()))
            .set_client_secret(ClientSecret::new(client_secret.to_owned()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(TokenUrl::new(token_url).map_err(invalid_url)?);
        let token = client
            .exchange_client_credentials()
            .add_scope(Scope::new(
                "https://graph.microsoft.com/.default".to_owned(),
            ))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        Ok(token.access_token().secret().clone())
    }

    /// Requests a Google access token with a stored refresh token.
    pub async fn google_refresh(
        &self,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
    ) -> Result<String, ProviderError> {
        let client = BasicClient::new(ClientId::new(client_id.to_owned()))
            .set_client_secret(ClientSecret::new(client_secret.to_owned()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(
                TokenUrl::new(self.endpoints.google_token.clone()).map_err(invalid_url)?,
            );
        let token = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        Ok(token.access_token().secret().clone())
    }

    /// Exchanges a Google authorization code, with the PKCE verifier and the configured
    /// `redirect_uri` exactly as the authorize request carried it.
    pub async fn google_exchange(
        &self,
        client_id: &str,
        client_secret: &str,
        redirect_uri: &str,
        code: &str,
        code_verifier: &str,
    ) -> Result<GoogleGrant, ProviderError> {
        let client = BasicClient::new(ClientId::new(client_id.to_owned()))
            .set_client_secret(ClientSecret::new(client_secret.to_owned()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(TokenUrl::new(self.endpoints.google_token.clone()).map_err(invalid_url)?)
            .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(invalid_url)?);
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(code_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        Ok(GoogleGrant {
            access_token: token.access_token().secret().clone(),
            refresh_token: token.refresh_token().map(|t| t.secret().clone()),
            granted_scopes: token
                .scopes()
                .map(|scopes| scopes.iter().map(|s| s.to_string()).collect()),
        })
    }

    /// Reads the Workspace account behind a Google token.
    pub async fn google_customer(
        &self,
        access_token: &str,
    ) -> Result<GoogleCustomer, ProviderError> {
        let url = format!(
            "{}/admin/directory/v1/customers/my_customer",
            self.endpoints.google_admin
        );
        self.get_json(&url, access_token).await
    }

    /// Asks for a token as `admin_email` through domain-wide delegation, with exactly `scopes`.
    pub async fn google_delegation(
        &self,
        key: &ServiceAccountKey,
        admin_email: &str,
        scopes: &[String],
    ) -> Result<String, ProviderError> {
        let now = chrono::Utc::now().timestamp();
        let claims = DelegationClaims {
            iss: &key.client_email,
            sub: admin_email,
            scope: scopes.join(" "),
            aud: &self.endpoints.google_token,
            iat: now,
            exp: now + 3_600,
        };
        let signing_key = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes())
            .map_err(|e| ProviderError::Unexpected(format!("service account key: {e}")))?;
        let assertion = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &signing_key,
        )
        .map_err(|e| ProviderError::Unexpected(format!("signing the assertion: {e}")))?;
        let response = self
            .http
            .post(&self.endpoints.google_token)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(e.without_url().to_string()))?;
        oauth_answer(response).await
    }

    /// Requests an Okta token with client credentials, then lists one user to prove that the
    /// service app has an admin role.
    pub async fn okta_check(
        &self,
        domain: &str,
        client_id: &str,
        client_secret: &str,
        scopes: &[&str],
    ) -> Result<(), ProviderError> {
        let token = self
            .okta_token(domain, client_id, client_secret, scopes)
            .await?;
        let url = format!("{}/api/v1/users?limit=1", self.endpoints.okta(domain));
        let _: serde_json::Value = self.get_json(&url, &token).await?;
        Ok(())
    }

    /// Requests an Okta access token with client credentials.
    pub async fn okta_token(
        &self,
        domain: &str,
        client_id: &str,
        client_secret: &str,
        scopes: &[&str],
    ) -> Result<String, ProviderError> {
        let base = self.endpoints.okta(domain);
        let client = BasicClient::new(ClientId::new(client_id.to_owned()))
            .set_client_secret(ClientSecret::new(client_secret.to_owned()))
            .set_token_uri(TokenUrl::new(format!("{base}/oauth2/v1/token")).map_err(invalid_url)?);
        let token = client
            .exchange_client_credentials()
            .add_scopes(scopes.iter().map(|s| Scope::new((*s).to_owned())))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        Ok(token.access_token().secret().clone())
    }

    /// Returns the HTTP client, which never follows redirects.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        access_token: &str,
    ) -> Result<T, ProviderError> {
        let response = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if status == 401 || status == 403 {
            return Err(ProviderError::Denied {
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(ProviderError::Unavailable(format!("HTTP {status}")));
        }
        response
            .json()
            .await
            .map_err(|e| ProviderError::Unexpected(e.without_url().to_string()))
    }
}

/// Reads a token endpoint's answer: the access token, or the OAuth error code it carries.
async fn oauth_answer(response: reqwest::Response) -> Result<String, ProviderError> {
    #[derive(Deserialize)]
    struct Token {
        access_token: String,
    }
    let status = response.status();
    if status.is_success() {
        return response
            .json::<Token>()
            .await
            .map(|t| t.access_token)
            .map_err(|e| ProviderError::Unexpected(e.without_url().to_string()));
    }
    if status.is_server_error() {
        return Err(ProviderError::Unavailable(format!("HTTP {status}")));
    }
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
    }
    match response.json::<OAuthError>().await {
        Ok(body) => Err(ProviderError::Refused { code: body.error }),
        Err(_) => Err(ProviderError::Unexpected(format!("HTTP {status}"))),
    }
}
