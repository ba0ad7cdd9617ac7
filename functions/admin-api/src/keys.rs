//! Extension keys: the credentials managed deployments carry. The key itself is returned once,
//! at creation; only its hash is stored.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use rollcall::extension_key;
use rollcall::problem::Problem;
use rollcall::store::Store;
use rollcall::table::{self, ExtensionKeyItem};
use rollcall::telemetry::storage_time;
use serde::Deserialize;
use serde_json::json;

use crate::auth::Administrator;
use crate::http::{bad_request, internal, json, json_body, not_found, path_parameter};

fn key_body(item: &ExtensionKeyItem) -> serde_json::Value {
    json!({ "key_id": item.key_id, "name": item.name, "created_at": item.created_at, "revoked_at": item.revoked_at })
}

pub async fn list(store: &Store, admin: &Administrator) -> Result<Response<Body>, Problem> {
    let items = store
        .query_prefix(&table::tenant_pk(&admin.tenant_id), "EXTKEY#")
        .await
        .map_err(internal)?;
    let keys: Vec<serde_json::Value> = items
        .into_iter()
        .filter_map(|item| serde_dynamo::from_item::<_, ExtensionKeyItem>(item).ok())
        .map(|item| key_body(&item))
        .collect();
    Ok(json(StatusCode::OK, &json!({ "extension_keys": keys })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
}

pub async fn create(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let body: NewKey = json_body(request)?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(bad_request(
            "name",
            "must be 1 to 100 characters without control characters",
        ));
    }

    let key = extension_key::generate(&admin.tenant_id);
    let item = ExtensionKeyItem {
        pk: table::tenant_pk(&admin.tenant_id),
        sk: table::extension_key_sk(&key.key_id),
        tenant_id: admin.tenant_id.clone(),
        key_id: key.key_id.clone(),
        name: name.to_owned(),
        secret_sha256: key.secret_sha256,
        created_at: storage_time(chrono::Utc::now()),
        revoked_at: None,
    };
    store.put_extension_key(&item).await.map_err(internal)?;
    let mut body = key_body(&item);
    body["key"] = json!(key.token);
    Ok(json(StatusCode::CREATED, &body))
}

pub async fn revoke(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let key_id = path_parameter(request, "key_id")?;
    if rollcall::ids::validate_opaque_id(&key_id).is_err() {
        return Err(not_found("extension key"));
    }

    let mut item = store
        .extension_key(&admin.tenant_id, &key_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found("extension key"))?;
    if item.revoked_at.is_none() {
        item.revoked_at = Some(storage_time(chrono::Utc::now()));
        store.put_extension_key(&item).await.map_err(internal)?;
    }
    Ok(json(StatusCode::OK, &key_body(&item)))
}
