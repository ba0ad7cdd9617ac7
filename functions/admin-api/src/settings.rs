//! Tenant settings: automatic licensing, company domains and the inactivity period. Plan seats
//! and licences in use are shown but cannot be changed here.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use rollcall::email::canonical_domain;
use rollcall::error::AwsError;
use rollcall::problem::Problem;
use rollcall::store::{Store, StoreError};
use rollcall::table::{self, TenantItem};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Administrator;
use crate::employees::tenant;
use crate::http::{bad_request, internal, json, json_body};

const MAX_COMPANY_DOMAINS: usize = 50;
const MAX_INACTIVITY_DAYS: u32 = 3_650;

fn settings_body(tenant: &TenantItem) -> serde_json::Value {
    json!({
        "auto_licensing": tenant.auto_licensing,
        "company_domains": tenant.company_domains,
        "include_subdomains": tenant.include_subdomains,
        "inactivity_days": tenant.inactivity_days,
        "plan_seats": tenant.plan_seats,
        "licences_in_use": tenant.licences_in_use,
    })
}

pub async fn get(store: &Store, admin: &Administrator) -> Result<Response<Body>, Problem> {
    let tenant = tenant(store, admin).await?;
    Ok(json(StatusCode::OK, &settings_body(&tenant)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsChange {
    auto_licensing: Option<bool>,
    company_domains: Option<Vec<String>>,
    include_subdomains: Option<bool>,
    inactivity_days: Option<u32>,
}

pub async fn update(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let change: SettingsChange = json_body(request)?;

    let mut set = Vec::new();
    let mut values = std::collections::HashMap::new();
    if let Some(enabled) = change.auto_licensing {
        set.push("auto_licensing = :auto");
        values.insert(":auto".to_owned(), AttributeValue::Bool(enabled));
    }
    if let Some(domains) = change.company_domains {
        if domains.len() > MAX_COMPANY_DOMAINS {
            return Err(bad_request(
                "company_domains",
                format!("may list at most {MAX_COMPANY_DOMAINS} domains"),
            ));
        }
        let mut canonical = Vec::new();
        for domain in &domains {
            let value = canonical_domain(domain)
                .map_err(|e| bad_request("company_domains", format!("{domain:?} {e}")))?;
            if !canonical.contains(&value) {
                canonical.push(value);
            }
        }
        set.push("company_domains = :domains");
        values.insert(
            ":domains".to_owned(),
            AttributeValue::L(canonical.into_iter().map(AttributeValue::S).collect()),
        );
    }
    if let Some(include) = change.include_subdomains {
        set.push("include_subdomains = :subdomains");
        values.insert(":subdomains".to_owned(), AttributeValue::Bool(include));
    }
    if let Some(days) = change.inactivity_days {
        if !(1..=MAX_INACTIVITY_DAYS).contains(&days) {
            return Err(bad_request(
                "inactivity_days",
                format!("must be from 1 to {MAX_INACTIVITY_DAYS}"),
            ));
        }
        set.push("inactivity_days = :days");
        values.insert(":days".to_owned(), AttributeValue::N(days.to_string()));
    }
    if set.is_empty() {
        return Err(bad_request("(body)", "names no setting to change"));
    }

    store
        .client()
        .update_item()
        .table_name(store.table_name())
        .key(
            table::PK,
            AttributeValue::S(table::tenant_pk(&admin.tenant_id)),
        )
        .key(table::SK, AttributeValue::S(table::TENANT_SK.to_owned()))
        .update_expression(format!("SET {}", set.join(", ")))
        .condition_expression("attribute_exists(pk)")
        .set_expression_attribute_values(Some(values))
        .send()
        .await
        .map_err(|e| internal(StoreError::from(AwsError::dynamodb("UpdateItem", e))))?;
    get(store, admin).await
}
