//! The audit of the daily inactivity sweep: one entry per tenant and day, newest first.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use rollcall::error::AwsError;
use rollcall::problem::Problem;
use rollcall::store::{Store, decode};
use rollcall::table::{self, SweepItem};
use serde_json::json;

use crate::auth::Administrator;
use crate::http::{bad_request, internal, json, query_parameter};

const DEFAULT_DAYS: i32 = 30;
const MAX_DAYS: i32 = 400;

pub async fn sweeps(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let limit = match query_parameter(request, "limit") {
        None => DEFAULT_DAYS,
        Some(text) => text
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=MAX_DAYS).contains(n))
            .ok_or_else(|| {
                bad_request(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_DAYS}"),
                )
            })?,
    };

    let output = store
        .client()
        .query()
        .table_name(store.table_name())
        .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
        .expression_attribute_names("#pk", table::PK)
        .expression_attribute_names("#sk", table::SK)
        .expression_attribute_values(":pk", AttributeValue::S(table::tenant_pk(&admin.tenant_id)))
        .expression_attribute_values(":prefix", AttributeValue::S(table::sweep_sk("")))
        .scan_index_forward(false)
        .limit(limit)
        .send()
        .await
        .map_err(|e| internal(AwsError::dynamodb("Query", e).into()))?;
    let mut sweeps = Vec::new();
    for item in output.items.unwrap_or_default() {
        let sweep: SweepItem = decode(item).map_err(internal)?;
        sweeps.push(json!({
            "date": sweep.date,
            "started_at": sweep.started_at,
            "finished_at": sweep.finished_at,
            "inactivity_days": sweep.inactivity_days,
            "cutoff": sweep.cutoff,
            "unlicensed": sweep.unlicensed_ids.len(),
            "unlicensed_employee_ids": sweep.unlicensed_ids,
            "activity_hidden": sweep.activity_hidden_ids.len(),
            "activity_hidden_employee_ids": sweep.activity_hidden_ids,
            "candidates_read": sweep.candidates_read,
            "kept_with_accounts": sweep.kept_with_accounts,
            "active_again": sweep.active_again,
        }));
    }

    Ok(json(StatusCode::OK, &json!({ "sweeps": sweeps })))
}
