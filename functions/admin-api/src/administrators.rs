//! Administrators: invite, list, change role, remove. The tenant's owner count changes in the
//! same transaction as every role change, conditioned on staying at least one, so two
//! concurrent requests can never remove the last owner.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use rollcall::email::canonical_email;
use rollcall::problem::Problem;
use rollcall::store::{Store, TransactError};
use rollcall::table::{self, AdminRole, AdministratorItem};
use rollcall::telemetry::storage_time;
use serde::Deserialize;
use serde_json::json;
use tracing::{error, info};

use crate::auth::Administrator;
use crate::http::{bad_request, internal, json, json_body, no_content, not_found, path_parameter};
use crate::mail::Outbox;

fn administrator_body(item: &AdministratorItem) -> serde_json::Value {
    json!({ "email": item.email, "role": item.role, "created_at": item.created_at, "invited_by": item.invited_by })
}

pub async fn list(store: &Store, admin: &Administrator) -> Result<Response<Body>, Problem> {
    let items = store
        .query_prefix(&table::tenant_pk(&admin.tenant_id), "ADMIN#")
        .await
        .map_err(internal)?;
    let administrators: Vec<serde_json::Value> = items
        .into_iter()
        .filter_map(|item| serde_dynamo::from_item::<_, AdministratorItem>(item).ok())
        .map(|item| administrator_body(&item))
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({ "administrators": administrators }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invitation {
    email: String,
    role: AdminRole,
}

/// Adds an administrator. The invitee may be outside the organisation (a managed service
/// provider), so no company-domain check applies.
pub async fn invite(
    store: &Store,
    outbox: &Outbox,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let body: Invitation = json_body(request)?;
    let email = canonical_email(&body.email).map_err(|e| bad_request("email", e.to_string()))?;
    require_owner_for(admin, body.role)?;

    let item = AdministratorItem {
        pk: table::tenant_pk(&admin.tenant_id),
        sk: table::administrator_sk(email.as_str()),
        email: email.to_string(),
        role: body.role,
        created_at: storage_time(chrono::Utc::now()),
        invited_by: Some(admin.email.clone()),
    };
    let mut items = vec![store.put_new(&item).map_err(internal)?];
    if body.role == AdminRole::Owner {
        items.push(owner_count_update(store, admin, 1));
    }
    match store.transact(items).await {
        Ok(()) => {}
        Err(error) if error.condition_failed(0) => {
            return Err(Problem::new(
                409,
                "Conflict",
                format!("{email} is already an administrator"),
            )
            .with("field", json!("email")));
        }
        Err(error) => return Err(transaction_problem(error)),
    }
    info!(tenant_id = %admin.tenant_id, role = ?body.role, "administrator invited");
    let mut response = administrator_body(&item);
    let queued = outbox
        .send_invitation(&admin.tenant_id, &email, &admin.email)
        .await;
    if let Err(error) = &queued {
        error!(tenant_id = %admin.tenant_id, error = %error, "invitation email not queued");
    }
    response["invitation_email_queued"] = json!(queued.is_ok());
    Ok(json(StatusCode::CREATED, &response))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    role: AdminRole,
}

pub async fn change_role(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let body: RoleChange = json_body(request)?;
    let mut target = target(store, admin, request).await?;
    require_owner_for(admin, body.role)?;
    require_owner_for(admin, target.role)?;
    if target.role == body.role {
        return Ok(json(StatusCode::OK, &administrator_body(&target)));
    }

    let update = Update::builder()
        .table_name(store.table_name())
        .key(table::PK, AttributeValue::S(target.pk.clone()))
        .key(table::SK, AttributeValue::S(target.sk.clone()))
        .update_expression("SET #role = :role")
        .condition_expression("#role = :current")
        .expression_attribute_names("#role", "role")
        .expression_attribute_values(":role", AttributeValue::S(role_text(body.role)))
        .expression_attribute_values(":current", AttributeValue::S(role_text(target.role)))
        .build()
        .expect("table, key and expression are set");
    let mut items = vec![TransactWriteItem::builder().update(update).build()];
    match (target.role, body.role) {
        (AdminRole::Owner, _) => items.push(owner_count_update(store, admin, -1)),
        (_, AdminRole::Owner) => items.push(owner_count_update(store, admin, 1)),
        _ => {}
    }
    store.transact(items).await.map_err(transaction_problem)?;
    target.role = body.role;
    Ok(json(StatusCode::OK, &administrator_body(&target)))
}

pub async fn remove(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let target = target(store, admin, request).await?;
    require_owner_for(admin, target.role)?;

    let delete = Delete::builder()
        .table_name(store.table_name())
        .key(table::PK, AttributeValue::S(target.pk.clone()))
        .key(table::SK, AttributeValue::S(target.sk.clone()))
        .condition_expression("attribute_exists(pk)")
        .build()
        .expect("table and key are set");
    let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
    if target.role == AdminRole::Owner {
        items.push(owner_count_update(store, admin, -1));
    }
    store.transact(items).await.map_err(transaction_problem)?;
    Ok(no_content())
}

async fn target(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<AdministratorItem, Problem> {
    let email = path_parameter(request, "email")?;
    let email = canonical_email(&email).map_err(|_| not_found("administrator"))?;
    let item: Option<AdministratorItem> = store
        .get(
            &table::tenant_pk(&admin.tenant_id),
            &table::administrator_sk(email.as_str()),
        )
        .await
        .map_err(internal)?;
    item.ok_or_else(|| not_found("administrator"))
}

/// Only owners may grant the owner role or change an owner.
fn require_owner_for(admin: &Administrator, role: AdminRole) -> Result<(), Problem> {
    if role == AdminRole::Owner && admin.role != AdminRole::Owner {
        return Err(Problem::new(
            403,
            "Forbidden",
            "only an owner can grant, change or remove the owner role",
        ));
    }
    Ok(())
}

/// Returns the tenant update that adds `delta` owners; a decrement requires a second owner.
fn owner_count_update(store: &Store, admin: &Administrator, delta: i32) -> TransactWriteItem {
    let (expression, condition) = if delta > 0 {
        (
            "SET owner_count = if_not_exists(owner_count, :zero) + :one",
            "attribute_exists(pk)",
        )
    } else {
        ("SET owner_count = owner_count - :one", "owner_count > :one")
    };
    let mut update = Update::builder()
        .table_name(store.table_name())
        .key(
            table::PK,
            AttributeValue::S(table::tenant_pk(&admin.tenant_id)),
        )
        .key(table::SK, AttributeValue::S(table::TENANT_SK.to_owned()))
        .update_expression(expression)
        .condition_expression(condition)
        .expression_attribute_values(":one", AttributeValue::N("1".to_owned()));
    if delta > 0 {
        update = update.expression_attribute_values(":zero", AttributeValue::N("0".to_owned()));
    }
    TransactWriteItem::builder()
        .update(update.build().expect("table, key and expression are set"))
        .build()
}

fn transaction_problem(error: TransactError) -> Problem {
    match error {
        TransactError::Store(error) => internal(error),
        error if error.condition_failed(1) => Problem::new(
            409,
            "Conflict",
            "the last owner cannot be removed or demoted; make another administrator an owner first",
        ),
        _ => Problem::new(
            409,
            "Conflict",
            "the administrator changed while the request ran; reload and try again",
        ),
    }
}

fn role_text(role: AdminRole) -> String {
    serde_json::to_value(role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
