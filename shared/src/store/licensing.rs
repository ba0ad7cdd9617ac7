//! Transactions that create employees and change licence state.
//!
//! The tenant's `licences_in_use` counter changes only inside the same `TransactWriteItems` as
//! the employee's licence state, conditioned on `licences_in_use < plan_seats` when a licence is
//! assigned and on the employee's previous state. So the counter can never pass the seats and
//! never drift from the number of licensed employees, however many requests race.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::{Key, Store, StoreError, decode};
use crate::error::AwsError;
use crate::table::{self, EmailOwnerItem, EmployeeItem, LicenceState};

/// A failed transaction: the cancellation reason of each item, in request order (`None` for
/// items that passed).
#[derive(Debug, thiserror::Error)]
pub enum TransactError {
    #[error("transaction cancelled: {reasons:?}")]
    Cancelled { reasons: Vec<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TransactError {
    /// Returns whether item `index` of the request failed its condition.
    pub fn condition_failed(&self, index: usize) -> bool {
        matches!(self, Self::Cancelled { reasons } if reasons.get(index).is_some_and(|r| r == "ConditionalCheckFailed"))
    }

    /// Returns whether another transaction touched the same items at the same time.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Cancelled { reasons } if reasons.iter().any(|r| r == "TransactionConflict"))
    }
}

impl Store {
    /// Runs a write transaction, reporting per-item cancellation reasons.
    pub async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TransactError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service_error))
                if matches!(
                    service_error.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                let TransactWriteItemsError::TransactionCanceledException(cancelled) =
                    service_error.err()
                else {
                    unreachable!("matched above")
                };
                let reasons = cancelled
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_owned())
                    .collect();
                Err(TransactError::Cancelled { reasons })
            }
            Err(error) => {
                Err(StoreError::from(AwsError::dynamodb("TransactWriteItems", error)).into())
            }
        }
    }

    /// Returns a put of `item` that fails if an item with its key exists.
    pub fn put_new<T: serde::Serialize>(&self, item: &T) -> Result<TransactWriteItem, StoreError> {
        let item = serde_dynamo::to_item(item).map_err(StoreError::Encode)?;
        let put = Put::builder()
            .table_name(&self.table_name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("table and item are set");
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Returns an unconditional delete of one item.
    pub fn delete_write(&self, pk: &str, sk: &str) -> TransactWriteItem {
        let delete = Delete::builder()
            .table_name(&self.table_name)
            .key(table::PK, AttributeValue::S(pk.to_owned()))
            .key(table::SK, AttributeValue::S(sk.to_owned()))
            .build()
            .expect("table and key are set");
        TransactWriteItem::builder().delete(delete).build()
    }

    /// Returns a put of `item` that replaces any item with its key.
    pub fn put_replace<T: serde::Serialize>(
        &self,
        item: &T,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = serde_dynamo::to_item(item).map_err(StoreError::Encode)?;
        let put = Put::builder()
            .table_name(&self.table_name)
            .set_item(Some(item))
            .build()
            .expect("table and item are set");
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Returns a put of a key-only marker item that expires at `expires_at_epoch`.
    pub fn put_marker(&self, key: &Key, expires_at_epoch: i64) -> TransactWriteItem {
        let mut item = super::key_attributes(key);
        item.insert(
            table::EXPIRES_AT.to_owned(),
            AttributeValue::N(expires_at_epoch.to_string()),
        );
        let put = Put::builder()
            .table_name(&self.table_name)
            .set_item(Some(item))
            .build()
            .expect("table and item are set");
        TransactWriteItem::builder().put(put).build()
    }

    /// Returns the counter update that takes one seat, failing when none is free.
    pub fn take_seat(&self, tenant_pk: &str) -> TransactWriteItem {
        self.counter_update(
            tenant_pk,
            "SET licences_in_use = licences_in_use + :one",
            "licences_in_use < plan_seats",
        )
    }

    /// Returns the counter update that frees one seat.
    pub fn free_seat(&self, tenant_pk: &str) -> TransactWriteItem {
        self.counter_update(
            tenant_pk,
            "SET licences_in_use = licences_in_use - :one",
            "licences_in_use >= :one",
        )
    }

    fn counter_update(
        &self,
        tenant_pk: &str,
        expression: &str,
        condition: &str,
    ) -> TransactWriteItem {
        let update = Update::builder()
            .table_name(&self.table_name)
            .key(table::PK, AttributeValue::S(tenant_pk.to_owned()))
            .key(table::SK, AttributeValue::S(table::TENANT_SK.to_owned()))
            .update_expression(expression)
            .condition_expression(condition)
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .build()
            .expect("table, key and expression are set");
        TransactWriteItem::builder().update(update).build()
    }

    /// Returns the update of an existing employee: a licence state change (conditioned on the
    /// state read before), sources and browser profiles to add.
    pub fn update_employee(
        &self,
        employee: &EmployeeItem,
        change: &EmployeeChange,
    ) -> TransactWriteItem {
        let mut set = Vec::new();
        let mut add = Vec::new();
        let mut values: HashMap<String, AttributeValue> = HashMap::new();
        values.insert(
            ":current".to_owned(),
            AttributeValue::S(employee.licence_state.as_str().to_owned()),
        );

        let mut remove = Vec::new();
        // Placeholders for every attribute name: several (such as `hidden`) are reserved words.
        let mut names: HashMap<String, String> = HashMap::new();
        if let Some((state, at)) = &change.licence {
            set.push("licence_state = :state, gsi1pk = :gsi1pk, gsi2pk = :gsi1pk");
            let gsi1pk = change.licence_gsi1_pk.clone().unwrap_or_default();
            values.insert(
                ":state".to_owned(),
                AttributeValue::S(state.as_str().to_owned()),
            );
            values.insert(":gsi1pk".to_owned(), AttributeValue::S(gsi1pk));
            match state {
                LicenceState::Licensed => {
                    set.push("licensed_at = :at");
                    values.insert(":at".to_owned(), AttributeValue::S(at.clone()));
                }
                LicenceState::Unlicensed => remove.push("licensed_at"),
            }
        }
        if let Some(hidden) = change.hidden {
            set.push("#hidden = :hidden");
            names.insert("#hidden".to_owned(), "hidden".to_owned());
            values.insert(":hidden".to_owned(), AttributeValue::Bool(hidden));
        }
        if !change.add_sources.is_empty() {
            add.push("#sources :sources");
            names.insert("#sources".to_owned(), "sources".to_owned());
            values.insert(
                ":sources".to_owned(),
                AttributeValue::Ss(change.add_sources.clone()),
            );
        }
        if !change.add_install_ids.is_empty() {
            add.push("#installs :installs");
            names.insert("#installs".to_owned(), "install_ids".to_owned());
            values.insert(
                ":installs".to_owned(),
                AttributeValue::Ss(change.add_install_ids.clone()),
            );
        }

        let mut expression = String::new();
        if !set.is_empty() {
            expression.push_str(&format!("SET {}", set.join(", ")));
        }
        if !add.is_empty() {
            expression.push_str(&format!(" ADD {}", add.join(", ")));
        }
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let update = Update::builder()
            .table_name(&self.table_name)
            .key(table::PK, AttributeValue::S(employee.pk.clone()))
            .key(table::SK, AttributeValue::S(employee.sk.clone()))
            .update_expression(expression.trim())
            .condition_expression("attribute_exists(pk) AND licence_state = :current")
            .set_expression_attribute_values(Some(values))
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .build()
            .expect("table, key and expression are set");
        TransactWriteItem::builder().update(update).build()
    }

    /// Returns the update that links a browser profile to an employee.
    pub fn link_profile(
        &self,
        tenant_pk: &str,
        install_id: &str,
        employee_id: &str,
    ) -> TransactWriteItem {
        let update = Update::builder()
            .table_name(&self.table_name)
            .key(table::PK, AttributeValue::S(tenant_pk.to_owned()))
            .key(table::SK, AttributeValue::S(table::profile_sk(install_id)))
            .update_expression("SET employee_id = :employee")
            .expression_attribute_values(":employee", AttributeValue::S(employee_id.to_owned()))
            .build()
            .expect("table, key and expression are set");
        TransactWriteItem::builder().update(update).build()
    }

    /// Returns the put of a new employee and of the owner item of each of its emails.
    pub fn put_new_employee(
        &self,
        employee: &EmployeeItem,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = vec![self.put_new(employee)?];
        for email in &employee.emails {
            items.push(self.put_new(&EmailOwnerItem {
                pk: employee.pk.clone(),
                sk: table::email_owner_sk(email),
                email: email.clone(),
                employee_id: employee.employee_id.clone(),
            })?);
        }
        Ok(items)
    }

    /// Lists a tenant's employees in one licence state, oldest first seen first.
    pub async fn employees_by_licence(
        &self,
        tenant_id: &crate::ids::TenantId,
        state: LicenceState,
    ) -> Result<Vec<EmployeeItem>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table_name)
            .index_name(table::GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(table::licence_gsi1_pk(tenant_id, state)),
            );
        self.query_all_pages(query)
            .await?
            .into_iter()
            .map(decode)
            .collect()
    }
}

/// A change to an existing employee.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmployeeChange {
    /// New licence state and the time of the change.
    pub licence: Option<(LicenceState, String)>,
    /// `gsi1pk` for the new licence state.
    pub licence_gsi1_pk: Option<String>,
    pub add_sources: Vec<String>,
    pub add_install_ids: Vec<String>,
    /// New value of the hidden flag.
    pub hidden: Option<bool>,
}

impl EmployeeChange {
    pub fn is_empty(&self) -> bool {
        self.licence.is_none()
            && self.add_sources.is_empty()
            && self.add_install_ids.is_empty()
            && self.hidden.is_none()
    }
}
