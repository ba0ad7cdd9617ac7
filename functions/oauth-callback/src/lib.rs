//! Connects identity providers. Administrators ask for a connect URL (Microsoft 365, Google
//! Workspace) or submit Okta credentials under `/v1/admin/integrations`, behind the HTTP API's
//! JWT authorizer. The providers send the consenting administrator's browser back to
//! `/v1/oauth/callback/{provider}`, which carries no Rollcall credential: the single-use
//! `state` names the tenant there.
//!
//! A connection stores nothing until the provider has proven the credential works. Only then
//! does it record the integration, keep the credential in Secrets Manager and queue a first
//! sync.

mod callback;
mod connect;
mod integrations;
mod revoke;

use admin_api::auth;
use admin_api::http::{self, problem_response};
use lambda_http::{Body, Request, Response};
use rollcall::aws::Clients;
use rollcall::config::{ConfigError, Lookup, required};
use rollcall::integration::{OKTA_DOMAIN_SUFFIXES, ProviderEndpoints};
use rollcall::problem::Problem;
use rollcall::store::Store;
use tracing::info;

pub use rollcall::provider_client::ServiceAccountKey;

/// Rollcall's application registered with a provider. The secret lives in Secrets Manager.
#[derive(Debug, Clone)]
pub struct ProviderApp {
    pub client_id: String,
    pub client_secret_arn: String,
    /// Sent byte for byte in the authorize URL and the token exchange, never derived from the
    /// request.
    pub redirect_uri: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub sync_queue_url: String,
    /// The directory queue, which carries the revocation cascade.
    pub directory_queue_url: String,
    pub console_url: String,
    /// Prefix of the names of integration secrets.
    pub secret_name_prefix: String,
    pub microsoft: ProviderApp,
    pub google: ProviderApp,
    /// Rollcall's Google service account key (JSON) for domain-wide delegation.
    pub google_service_account_secret_arn: String,
    pub okta_domain_suffixes: Vec<String>,
    pub endpoints: ProviderEndpoints,
}

impl Config {
    pub fn from_lookup(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        let okta_domain_suffixes = match lookup.get("OKTA_DOMAIN_SUFFIXES") {
            Some(list) if !list.trim().is_empty() => list
                .split(',')
                .map(|s| s.trim().trim_start_matches('.').to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
            _ => OKTA_DOMAIN_SUFFIXES.iter().map(|s| s.to_string()).collect(),
        };
        Ok(Self {
            table_name: required(lookup, "TABLE_NAME")?,
            sync_queue_url: required(lookup, "SYNC_QUEUE_URL")?,
            directory_queue_url: required(lookup, "DIRECTORY_QUEUE_URL")?,
            console_url: required(lookup, "CONSOLE_URL")?,
            secret_name_prefix: required(lookup, "SECRET_NAME_PREFIX")?,
            microsoft: ProviderApp {
                client_id: required(lookup, "MICROSOFT_CLIENT_ID")?,
                client_secret_arn: required(lookup, "MICROSOFT_CLIENT_SECRET_ARN")?,
                redirect_uri: required(lookup, "MICROSOFT_REDIRECT_URI")?,
            },
            google: ProviderApp {
                client_id: required(lookup, "GOOGLE_CLIENT_ID")?,
                client_secret_arn: required(lookup, "GOOGLE_CLIENT_SECRET_ARN")?,
                redirect_uri: required(lookup, "GOOGLE_REDIRECT_URI")?,
            },
            google_service_account_secret_arn: required(
                lookup,
                "GOOGLE_SERVICE_ACCOUNT_SECRET_ARN",
            )?,
            okta_domain_suffixes,
            endpoints: ProviderEndpoints::from_lookup(lookup)?,
        })
    }
}

/// The function's state, built once per Lambda instance.
#[derive(Debug, Clone)]
pub struct OAuthCallback {
    store: Store,
    sqs: aws_sdk_sqs::Client,
    secrets: rollcall::secrets::Secrets,
    providers: rollcall::provider_client::Providers,
    config: Config,
}

impl OAuthCallback {
    pub fn new(clients: &Clients, config: Config) -> Self {
        let secrets = rollcall::secrets::Secrets::new(
            aws_sdk_secretsmanager::Client::new(&clients.sdk),
            config.secret_name_prefix.clone(),
        );
        Self {
            store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
            sqs: clients.sqs.clone(),
            secrets,
            providers: rollcall::provider_client::Providers::new(config.endpoints.clone()),
            config,
        }
    }

    /// Handles one request; every outcome, errors included, is an HTTP response.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let route_key = http::route_key(&request);
        let response = match self.dispatch(&route_key, &request).await {
            Ok(response) => response,
            Err(problem) => problem_response(&problem),
        };
        info!(
            route_key,
            status = response.status().as_u16(),
            "integration request handled"
        );
        response
    }

    async fn dispatch(
        &self,
        route_key: &str,
        request: &Request,
    ) -> Result<Response<Body>, Problem> {
        if route_key == CALLBACK_ROUTE {
            return self.callback(request).await;
        }
        let admin = auth::administrator(&self.store, request).await?;
        match route_key {
            "GET /v1/admin/integrations" => self.list(&admin).await,
            "GET /v1/admin/integrations/scopes" => Ok(connect::catalogue()),
            "POST /v1/admin/integrations/{provider}/connect" => self.connect(&admin, request).await,
            "PUT /v1/admin/integrations/okta" => self.connect_okta(&admin, request).await,
            "PUT /v1/admin/integrations/google/delegation" => {
                self.delegate_google(&admin, request).await
            }
            "DELETE /v1/admin/integrations/{provider}" => self.revoke(&admin, request).await,
            other => Err(Problem::new(
                404,
                "Not Found",
                format!("no integration route {other:?}"),
            )),
        }
    }
}

/// The route providers redirect to. A greedy parameter, so that a trailing slash still routes.
pub const CALLBACK_ROUTE: &str = "GET /v1/oauth/callback/{provider+}";

/// The admin route keys this function serves, as the template declares them.
pub const ADMIN_ROUTES: &[&str] = &[
    "GET /v1/admin/integrations",
    "GET /v1/admin/integrations/scopes",
    "POST /v1/admin/integrations/{provider}/connect",
    "PUT /v1/admin/integrations/okta",
    "PUT /v1/admin/integrations/google/delegation",
    "DELETE /v1/admin/integrations/{provider}",
];

fn unknown_provider(name: &str) -> Problem {
    http::not_found(&format!("provider {name:?}"))
}
