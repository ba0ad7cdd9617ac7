//! Groups: custom groups made in the console, and directory groups synced from identity
//! providers. Membership is the `groups` set on each employee, so one employee can be in many
//! groups and every employee list can filter by group.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use rollcall::error::AwsError;
use rollcall::problem::Problem;
use rollcall::store::{Store, StoreError, TransactError};
use rollcall::table::{self, GroupItem, GroupKind, GroupNameItem};
use rollcall::telemetry::storage_time;
use serde::Deserialize;
use serde_json::json;

use crate::auth::Administrator;
use crate::http::{
    MAX_BULK_IDS, bad_request, internal, json, json_body, no_content, not_found, path_parameter,
    query_parameter,
};

const MAX_NAME_CHARS: usize = 100;
const MAX_GROUPS_PER_REQUEST: usize = 20;

fn group_body(group: &GroupNameItem) -> serde_json::Value {
    json!({ "group_id": group.group_id, "name": group.name, "kind": group.kind })
}

fn valid_name(name: &str) -> Result<String, Problem> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(bad_request(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters without control characters"),
        ));
    }
    Ok(name.to_owned())
}

/// Lists groups in name order; `prefix` narrows the list for type-ahead search.
pub async fn list(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let prefix = query_parameter(request, "prefix").unwrap_or_default();
    let items = store
        .query_prefix(
            &table::tenant_pk(&admin.tenant_id),
            &table::group_name_sk(prefix.trim()),
        )
        .await
        .map_err(internal)?;
    let groups: Vec<serde_json::Value> = items
        .into_iter()
        .filter_map(|item| serde_dynamo::from_item::<_, GroupNameItem>(item).ok())
        .map(|group| group_body(&group))
        .collect();
    Ok(json(StatusCode::OK, &json!({ "groups": groups })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupName {
    name: String,
}

pub async fn create(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let body: GroupName = json_body(request)?;
    let name = valid_name(&body.name)?;

    let pk = table::tenant_pk(&admin.tenant_id);
    let group_id = uuid::Uuid::new_v4().to_string();
    let group = GroupItem {
        pk: pk.clone(),
        sk: table::group_sk(&group_id),
        group_id: group_id.clone(),
        name: name.clone(),
        kind: GroupKind::Custom,
        created_at: storage_time(chrono::Utc::now()),
    };
    let name_item = GroupNameItem {
        pk: pk.clone(),
        sk: table::group_name_sk(&name),
        group_id,
        name: name.clone(),
        kind: GroupKind::Custom,
    };
    let items = vec![
        store.put_new(&group).map_err(internal)?,
        store.put_new(&name_item).map_err(internal)?,
    ];
    match store.transact(items).await {
        Ok(()) => Ok(json(StatusCode::CREATED, &group_body(&name_item))),
        Err(error) if error.condition_failed(1) => {
            let existing: Option<GroupNameItem> = store
                .get(&pk, &table::group_name_sk(&name))
                .await
                .map_err(internal)?;
            let mut problem = Problem::new(
                409,
                "Conflict",
                format!("a group named {name:?} already exists"),
            )
            .with("field", json!("name"));
            if let Some(existing) = existing {
                problem = problem.with("group_id", json!(existing.group_id));
            }
            Err(problem)
        }
        Err(error) => Err(transaction_problem(error)),
    }
}

pub async fn rename(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let body: GroupName = json_body(request)?;
    let name = valid_name(&body.name)?;
    let group = custom_group(store, admin, request).await?;

    let pk = group.pk.clone();
    let mut renamed = GroupNameItem {
        pk: pk.clone(),
        sk: table::group_name_sk(&name),
        group_id: group.group_id.clone(),
        name: name.clone(),
        kind: group.kind,
    };
    let mut items = Vec::new();
    if table::group_name_sk(&group.name) == renamed.sk {
        // Only the letter case changes: the name item keeps its key.
        items.push(store.put_replace(&renamed).map_err(internal)?);
    } else {
        items.push(store.put_new(&renamed).map_err(internal)?);
        items.push(delete(store, &pk, &table::group_name_sk(&group.name)));
    }
    let update = Update::builder()
        .table_name(store.table_name())
        .key(table::PK, AttributeValue::S(pk.clone()))
        .key(table::SK, AttributeValue::S(group.sk.clone()))
        .update_expression("SET #name = :name")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#name", "name")
        .expression_attribute_values(":name", AttributeValue::S(name.clone()))
        .build()
        .expect("table, key and expression are set");
    items.push(TransactWriteItem::builder().update(update).build());

    match store.transact(items).await {
        Ok(()) => {
            renamed.name = name;
            Ok(json(StatusCode::OK, &group_body(&renamed)))
        }
        Err(error) if error.condition_failed(0) => Err(Problem::new(
            409,
            "Conflict",
            format!("a group named {name:?} already exists"),
        )
        .with("field", json!("name"))),
        Err(error) => Err(transaction_problem(error)),
    }
}

/// Deletes a custom group. Members keep the group's id in their `groups` set until they change
/// next; lists resolve ids against existing groups, so the stale id shows nowhere.
pub async fn remove(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let group = custom_group(store, admin, request).await?;

    let items = vec![
        delete(store, &group.pk, &group.sk),
        delete(store, &group.pk, &table::group_name_sk(&group.name)),
    ];
    store.transact(items).await.map_err(transaction_problem)?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Memberships {
    action: String,
    group_ids: Vec<String>,
    employee_ids: Vec<String>,
}

/// Adds or removes employees to or from groups: one employee to many groups, or many employees
/// to one group, in one request.
pub async fn memberships(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let body: Memberships = json_body(request)?;
    let add = match body.action.as_str() {
        "add" => true,
        "remove" => false,
        _ => return Err(bad_request("action", "must be add or remove")),
    };
    if body.group_ids.is_empty() || body.group_ids.len() > MAX_GROUPS_PER_REQUEST {
        return Err(bad_request(
            "group_ids",
            format!("must list 1 to {MAX_GROUPS_PER_REQUEST} group ids"),
        ));
    }
    if body.employee_ids.is_empty() || body.employee_ids.len() > MAX_BULK_IDS {
        return Err(bad_request(
            "employee_ids",
            format!("must list 1 to {MAX_BULK_IDS} employee ids"),
        ));
    }

    let pk = table::tenant_pk(&admin.tenant_id);
    let mut group_ids = Vec::new();
    for group_id in &body.group_ids {
        let found = rollcall::ids::validate_opaque_id(group_id).is_ok()
            && store
                .get::<GroupItem>(&pk, &table::group_sk(group_id))
                .await
                .map_err(internal)?
                .is_some();
        if !found {
            return Err(bad_request(
                "group_ids",
                format!("group {group_id:?} was not found"),
            ));
        }
        if !group_ids.contains(group_id) {
            group_ids.push(group_id.clone());
        }
    }

    let (mut changed, mut not_found_ids) = (Vec::new(), Vec::new());
    for employee_id in &body.employee_ids {
        if rollcall::ids::validate_opaque_id(employee_id).is_err() {
            not_found_ids.push(employee_id.clone());
            continue;
        }
        let operation = if add { "ADD" } else { "DELETE" };
        let result = store
            .client()
            .update_item()
            .table_name(store.table_name())
            .key(table::PK, AttributeValue::S(pk.clone()))
            .key(
                table::SK,
                AttributeValue::S(table::employee_sk(employee_id)),
            )
            .update_expression(format!("{operation} #groups :groups"))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#groups", "groups")
            .expression_attribute_values(":groups", AttributeValue::Ss(group_ids.clone()))
            .send()
            .await
            .map_err(|e| AwsError::dynamodb("UpdateItem", e));
        match result {
            Ok(_) => changed.push(employee_id.clone()),
            Err(error) if error.is_conditional_check_failed() => {
                not_found_ids.push(employee_id.clone())
            }
            Err(error) => return Err(internal(StoreError::from(error))),
        }
    }
    Ok(json(
        StatusCode::OK,
        &json!({ "changed": changed, "not_found": not_found_ids }),
    ))
}

/// Reads the group named in the path; directory groups belong to their identity provider.
async fn custom_group(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<GroupItem, Problem> {
    let group_id = path_parameter(request, "group_id")?;
    if rollcall::ids::validate_opaque_id(&group_id).is_err() {
        return Err(not_found("group"));
    }
    let group: GroupItem = store
        .get(
            &table::tenant_pk(&admin.tenant_id),
            &table::group_sk(&group_id),
        )
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found("group"))?;
    if group.kind == GroupKind::Directory {
        return Err(Problem::new(
            409,
            "Conflict",
            "directory groups are managed in the identity provider and cannot be changed here",
        ));
    }
    Ok(group)
}

fn delete(store: &Store, pk: &str, sk: &str) -> TransactWriteItem {
    let delete = Delete::builder()
        .table_name(store.table_name())
        .key(table::PK, AttributeValue::S(pk.to_owned()))
        .key(table::SK, AttributeValue::S(sk.to_owned()))
        .condition_expression("attribute_exists(pk)")
        .build()
        .expect("table and key are set");
    TransactWriteItem::builder().delete(delete).build()
}

fn transaction_problem(error: TransactError) -> Problem {
    match error {
        TransactError::Store(error) => internal(error),
        _ => Problem::new(
            409,
            "Conflict",
            "the group changed while the request ran; reload and try again",
        ),
    }
}
