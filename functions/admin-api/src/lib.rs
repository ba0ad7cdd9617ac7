//! The admin console's API under `/v1/admin`. The HTTP API's JWT authorizer verifies the token.
//! This function reads the tenant and administrator from its claims, checks the role, and
//! dispatches on the route key API Gateway matched.

mod administrators;
pub mod auth;
mod employees;
mod groups;
pub mod http;
mod keys;
mod mail;
mod retention;
mod settings;

use lambda_http::{Body, Request, Response};
use rollcall::aws::Clients;
use rollcall::config::{ConfigError, Lookup, required};
use rollcall::problem::Problem;
use rollcall::store::Store;
use rollcall::table::LicenceState;
use tracing::info;

pub use crate::http::MAX_BULK_IDS;

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub mail_queue_url: String,
    pub enrolment_link_base: String,
    pub console_url: String,
}

impl Config {
    pub fn from_lookup(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(lookup, "TABLE_NAME")?,
            mail_queue_url: required(lookup, "MAIL_QUEUE_URL")?,
            enrolment_link_base: required(lookup, "ENROLMENT_LINK_BASE")?,
            console_url: required(lookup, "CONSOLE_URL")?,
        })
    }
}

/// The admin API's state, built once per Lambda instance.
#[derive(Debug, Clone)]
pub struct AdminApi {
    store: Store,
    outbox: mail::Outbox,
}

impl AdminApi {
    pub fn new(clients: &Clients, config: Config) -> Self {
        let outbox = mail::Outbox {
            sqs: clients.sqs.clone(),
            queue_url: config.mail_queue_url,
            enrolment_link_base: config.enrolment_link_base,
            console_url: config.console_url,
        };
        Self {
            store: Store::new(clients.dynamodb.clone(), config.table_name),
            outbox,
        }
    }

    /// Handles one request; every outcome, errors included, is an HTTP response.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let route_key = http::route_key(&request);
        let response = match self.dispatch(&route_key, &request).await {
            Ok(response) => response,
            Err(problem) => http::problem_response(&problem),
        };
        info!(
            route_key,
            status = response.status().as_u16(),
            "admin request handled"
        );
        response
    }

    async fn dispatch(
        &self,
        route_key: &str,
        request: &Request,
    ) -> Result<Response<Body>, Problem> {
        let store = &self.store;
        let admin = auth::administrator(store, request).await?;
        match route_key {
            "GET /v1/admin/employees" => employees::list(store, &admin, request).await,
            "POST /v1/admin/employees" => {
                employees::add(store, &self.outbox, &admin, request).await
            }
            "POST /v1/admin/employees/{employee_id}/enrolment-email" => {
                employees::resend_enrolment(store, &self.outbox, &admin, request).await
            }
            "GET /v1/admin/employees/{employee_id}" => {
                employees::detail(store, &admin, request).await
            }
            "PUT /v1/admin/employees/{employee_id}/licence" => {
                employees::set_licence(store, &admin, request, LicenceState::Licensed).await
            }
            "DELETE /v1/admin/employees/{employee_id}/licence" => {
                employees::set_licence(store, &admin, request, LicenceState::Unlicensed).await
            }
            "PUT /v1/admin/employees/{employee_id}/hidden" => {
                employees::set_hidden(store, &admin, request, true).await
            }
            "DELETE /v1/admin/employees/{employee_id}/hidden" => {
                employees::set_hidden(store, &admin, request, false).await
            }
            "POST /v1/admin/licences" => employees::bulk_licences(store, &admin, request).await,
            "POST /v1/admin/employees/hidden" => {
                employees::bulk_hidden(store, &admin, request).await
            }
            "GET /v1/admin/groups" => groups::list(store, &admin, request).await,
            "POST /v1/admin/groups" => groups::create(store, &admin, request).await,
            "PATCH /v1/admin/groups/{group_id}" => groups::rename(store, &admin, request).await,
            "DELETE /v1/admin/groups/{group_id}" => groups::remove(store, &admin, request).await,
            "POST /v1/admin/group-memberships" => groups::memberships(store, &admin, request).await,
            "GET /v1/admin/settings" => settings::get(store, &admin).await,
            "PATCH /v1/admin/settings" => settings::update(store, &admin, request).await,
            "GET /v1/admin/extension-keys" => keys::list(store, &admin).await,
            "POST /v1/admin/extension-keys" => keys::create(store, &admin, request).await,
            "DELETE /v1/admin/extension-keys/{key_id}" => {
                keys::revoke(store, &admin, request).await
            }
            "GET /v1/admin/retention/sweeps" => retention::sweeps(store, &admin, request).await,
            "GET /v1/admin/administrators" => administrators::list(store, &admin).await,
            "POST /v1/admin/administrators" => {
                administrators::invite(store, &self.outbox, &admin, request).await
            }
            "PATCH /v1/admin/administrators/{email}" => {
                administrators::change_role(store, &admin, request).await
            }
            "DELETE /v1/admin/administrators/{email}" => {
                administrators::remove(store, &admin, request).await
            }
            other => Err(Problem::new(
                404,
                "Not Found",
                format!("no admin route {other:?}"),
            )),
        }
    }
}

/// The route keys this function serves, as the template declares them.
pub const ROUTES: &[&str] = &[
    "GET /v1/admin/retention/sweeps",
    "GET /v1/admin/employees",
    "POST /v1/admin/employees",
    "GET /v1/admin/employees/{employee_id}",
    "POST /v1/admin/employees/{employee_id}/enrolment-email",
    "PUT /v1/admin/employees/{employee_id}/licence",
    "DELETE /v1/admin/employees/{employee_id}/licence",
    "PUT /v1/admin/employees/{employee_id}/hidden",
    "DELETE /v1/admin/employees/{employee_id}/hidden",
    "POST /v1/admin/licences",
    "POST /v1/admin/employees/hidden",
    "GET /v1/admin/groups",
    "POST /v1/admin/groups",
    "PATCH /v1/admin/groups/{group_id}",
    "DELETE /v1/admin/groups/{group_id}",
    "POST /v1/admin/group-memberships",
    "GET /v1/admin/settings",
    "PATCH /v1/admin/settings",
    "GET /v1/admin/extension-keys",
    "POST /v1/admin/extension-keys",
    "DELETE /v1/admin/extension-keys/{key_id}",
    "GET /v1/admin/administrators",
    "POST /v1/admin/administrators",
    "PATCH /v1/admin/administrators/{email}",
    "DELETE /v1/admin/administrators/{email}",
];
