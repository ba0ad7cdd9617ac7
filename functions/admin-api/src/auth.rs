//! The administrator behind a request, from the claims the HTTP API's JWT authorizer verified.
//!
//! The tenant comes from the token's `tenant_id` claim and the administrator from its `email`
//! claim; no path, query or body value can choose another tenant. The role comes from the
//! administrator item, so a role change takes effect on the next request.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use rollcall::email::canonical_email;
use rollcall::ids::TenantId;
use rollcall::problem::Problem;
use rollcall::store::Store;
use rollcall::table::{self, AdminRole, AdministratorItem};

use crate::http::internal;

/// The verified caller of an admin route.
#[derive(Debug, Clone)]
pub struct Administrator {
    pub tenant_id: TenantId,
    pub email: String,
    pub role: AdminRole,
}

impl Administrator {
    /// Returns 403 unless the administrator may change data.
    pub fn require_write(&self) -> Result<(), Problem> {
        match self.role {
            AdminRole::ReadOnly => Err(Problem::new(
                403,
                "Forbidden",
                "read-only administrators cannot change data",
            )),
            AdminRole::Owner | AdminRole::Admin => Ok(()),
        }
    }
}

pub async fn administrator(store: &Store, request: &Request) -> Result<Administrator, Problem> {
    let claims = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims),
        _ => None,
    };
    let unauthorized = || {
        Problem::new(
            401,
            "Unauthorized",
            "the request carries no verified administrator token",
        )
    };
    let claims = claims.ok_or_else(unauthorized)?;
    let tenant_id = claims
        .get("tenant_id")
        .and_then(|t| TenantId::parse(t).ok())
        .ok_or_else(unauthorized)?;
    let email = claims
        .get("email")
        .and_then(|e| canonical_email(e).ok())
        .ok_or_else(unauthorized)?;

    let item: Option<AdministratorItem> = store
        .get(
            &table::tenant_pk(&tenant_id),
            &table::administrator_sk(email.as_str()),
        )
        .await
        .map_err(internal)?;
    let item = item.ok_or_else(|| {
        Problem::new(
            403,
            "Forbidden",
            "you are not an administrator of this tenant",
        )
    })?;
    Ok(Administrator {
        tenant_id,
        email: item.email,
        role: item.role,
    })
}
