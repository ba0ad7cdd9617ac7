//! Extension activity of employees, for the inactivity sweep, and the tenant list daily jobs
//! walk.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Store, StoreError, decode};
use crate::error::AwsError;
use crate::ids::TenantId;
use crate::table::{self, EmployeeItem, TenantItem};

/// One page of employees whose extension activity is older than a cutoff.
#[derive(Debug, Default)]
pub struct InactivePage {
    pub employees: Vec<EmployeeItem>,
    /// The key the next page starts after; `None` after the last page.
    pub next: Option<HashMap<String, AttributeValue>>,
}

impl Store {
    /// Records extension activity at `time` (storage format) on an employee, unless newer
    /// activity is already recorded. It puts the employee back in index `gsi3` and shows its
    /// activity again. Returns whether it changed the employee.
    pub async fn touch_extension_activity(
        &self,
        tenant_id: &TenantId,
        employee_id: &str,
        time: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key(table::PK, AttributeValue::S(table::tenant_pk(tenant_id)))
            .key(
                table::SK,
                AttributeValue::S(table::employee_sk(employee_id)),
            )
            .update_expression(
                "SET last_extension_activity = :time, gsi3pk = :gsi3pk, gsi3sk = :gsi3sk \
                 REMOVE activity_hidden_at",
            )
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(last_extension_activity) \
                 OR last_extension_activity < :time)",
            )
            .expression_attribute_values(":time", AttributeValue::S(time.to_owned()))
            .expression_attribute_values(
                ":gsi3pk",
                AttributeValue::S(table::extension_activity_gsi3_pk(tenant_id)),
            )
            .expression_attribute_values(
                ":gsi3sk",
                AttributeValue::S(table::extension_activity_gsi3_sk(time, employee_id)),
            )
            .send()
            .await
            .map_err(|e| AwsError::dynamodb("UpdateItem", e));
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.is_conditional_check_failed() => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Reads one page of a tenant's employees whose last extension activity is before
    /// `cutoff` (storage format), oldest first, through index `gsi3`. Only those employees are
    /// read, however large the tenant.
    pub async fn extension_inactive(
        &self,
        tenant_id: &TenantId,
        cutoff: &str,
        start: Option<HashMap<String, AttributeValue>>,
        limit: i32,
    ) -> Result<InactivePage, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table_name)
            .index_name(table::GSI3)
            .key_condition_expression("#pk = :pk AND #sk < :cutoff")
            .expression_attribute_names("#pk", table::GSI3_PK)
            .expression_attribute_names("#sk", table::GSI3_SK)
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(table::extension_activity_gsi3_pk(tenant_id)),
            )
            .expression_attribute_values(":cutoff", AttributeValue::S(cutoff.to_owned()))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(|e| AwsError::dynamodb("Query", e))?;
        let employees = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(decode)
            .collect::<Result<_, _>>()?;
        Ok(InactivePage {
            employees,
            next: output.last_evaluated_key,
        })
    }

    /// Lists every tenant through index `gsi1`.
    pub async fn tenants(&self) -> Result<Vec<TenantItem>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table_name)
            .index_name(table::GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", table::GSI1_PK)
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(table::TENANTS_GSI1_PK.to_owned()),
            );
        self.query_all_pages(query)
            .await?
            .into_iter()
            .map(decode)
            .collect()
    }
}
