//! Upserts of items that record when something was first and last seen.
//!
//! SQS delivers out of order and more than once, so `first_seen` may only move back, `last_seen`
//! may only move forward, and attributes that describe the latest state are written only by the
//! newest report. Sets are merged with `ADD`, which is idempotent. The common case (a report
//! newer than what is stored) is one conditional `UpdateItem`. A late report costs a consistent
//! read and a second conditional write.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::{Store, StoreError};
use crate::error::AwsError;
use crate::table;

const FIRST_SEEN: &str = "first_seen";
const LAST_SEEN: &str = "last_seen";
/// Attempts of the compare-and-set path before giving up under contention.
const MAX_ATTEMPTS: u32 = 5;

/// A coalesced change to one item. Times are in storage format (see
/// [`crate::telemetry::storage_time`]), whose string order is time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowedUpdate {
    pub pk: String,
    pub sk: String,
    pub first_seen: String,
    pub last_seen: String,
    /// Attributes written on every update (identity and index keys).
    pub always: Vec<(String, AttributeValue)>,
    /// Attributes that describe the latest state, written only when this update is the newest.
    pub newest: Vec<(String, AttributeValue)>,
    /// String sets merged with `ADD`. Empty sets are skipped because DynamoDB rejects them.
    pub sets: Vec<(String, Vec<String>)>,
}

impl WindowedUpdate {
    /// Folds another change to the same item into this one.
    pub fn merge(&mut self, other: WindowedUpdate) {
        if other.last_seen >= self.last_seen {
            self.newest = other.newest;
            self.last_seen = other.last_seen;
        }
        if other.first_seen < self.first_seen {
            self.first_seen = other.first_seen;
        }
        for (name, value) in other.always {
            match self
                .always
                .iter_mut()
                .find(|(existing, _)| *existing == name)
            {
                Some(slot) => slot.1 = value,
                None => self.always.push((name, value)),
            }
        }
        for (name, values) in other.sets {
            match self.sets.iter_mut().find(|(existing, _)| *existing == name) {
                Some(slot) => {
                    for value in values {
                        if !slot.1.contains(&value) {
                            slot.1.push(value);
                        }
                    }
                }
                None => self.sets.push((name, values)),
            }
        }
    }
}

struct Expression {
    update: String,
    condition: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

/// The outcome of a windowed update.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Write requests it took.
    pub writes: u32,
    /// The item as it was before the write that succeeded; empty when the item is new.
    pub previous: HashMap<String, AttributeValue>,
}

impl Store {
    /// Applies `update`.
    pub async fn apply_windowed(&self, update: &WindowedUpdate) -> Result<Applied, StoreError> {
        let first = build_first_attempt(update);
        let mut writes = 1;
        match self.send_update(update, first).await {
            Ok(previous) => return Ok(Applied { writes, previous }),
            Err(error) if error.is_conditional_check_failed() => {}
            Err(error) => return Err(error.into()),
        }

        for _ in 0..MAX_ATTEMPTS {
            let stored = self.read_window(update).await?;
            let expression = build_compare_and_set(update, stored);
            writes += 1;
            match self.send_update(update, expression).await {
                Ok(previous) => return Ok(Applied { writes, previous }),
                Err(error) if error.is_conditional_check_failed() => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::Unprocessed { remaining: 1 })
    }

    async fn send_update(
        &self,
        update: &WindowedUpdate,
        expression: Expression,
    ) -> Result<HashMap<String, AttributeValue>, AwsError> {
        self.client
            .update_item()
            .table_name(&self.table_name)
            .key(table::PK, AttributeValue::S(update.pk.clone()))
            .key(table::SK, AttributeValue::S(update.sk.clone()))
            .update_expression(expression.update)
            .condition_expression(expression.condition)
            .set_expression_attribute_names(Some(expression.names))
            .set_expression_attribute_values(Some(expression.values))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map(|output| output.attributes.unwrap_or_default())
            .map_err(|e| AwsError::dynamodb("UpdateItem", e))
    }

    /// Reads the stored window, or `None` when the item does not exist.
    async fn read_window(
        &self,
        update: &WindowedUpdate,
    ) -> Result<Option<(Option<String>, Option<String>)>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key(table::PK, AttributeValue::S(update.pk.clone()))
            .key(table::SK, AttributeValue::S(update.sk.clone()))
            .projection_expression("#first, #last")
            .expression_attribute_names("#first", FIRST_SEEN)
            .expression_attribute_names("#last", LAST_SEEN)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::dynamodb("GetItem", e))?;
        Ok(output.item.map(|item| {
            let text = |name: &str| match item.get(name) {
                Some(AttributeValue::S(value)) => Some(value.clone()),
                _ => None,
            };
            (text(FIRST_SEEN), text(LAST_SEEN))
        }))
    }
}

/// Builds the optimistic write: it succeeds when the item is new or this update is newer than
/// everything stored.
fn build_first_attempt(update: &WindowedUpdate) -> Expression {
    let mut builder = ExpressionBuilder::default();
    let first = builder.value(AttributeValue::S(update.first_seen.clone()));
    let last = builder.value(AttributeValue::S(update.last_seen.clone()));
    let first_name = builder.name(FIRST_SEEN);
    let last_name = builder.name(LAST_SEEN);
    let pk_name = builder.name(table::PK);

    builder.set.push(format!("{last_name} = {last}"));
    builder.set.push(format!(
        "{first_name} = if_not_exists({first_name}, {first})"
    ));
    builder.add_attributes(&update.always);
    builder.add_attributes(&update.newest);
    builder.add_sets(&update.sets);

    let condition = format!(
        "attribute_not_exists({pk_name}) OR ({last_name} <= {last} AND {first_name} <= {first})"
    );
    builder.finish(condition)
}

/// Builds a write that merges this update with the stored window, conditioned on that window
/// being unchanged since it was read.
fn build_compare_and_set(
    update: &WindowedUpdate,
    stored: Option<(Option<String>, Option<String>)>,
) -> Expression {
    let mut builder = ExpressionBuilder::default();
    let first_name = builder.name(FIRST_SEEN);
    let last_name = builder.name(LAST_SEEN);
    let pk_name = builder.name(table::PK);

    let (stored_first, stored_last, condition) = match stored {
        None => (None, None, format!("attribute_not_exists({pk_name})")),
        Some((stored_first, stored_last)) => {
            let mut parts = vec![format!("attribute_exists({pk_name})")];
            for (name, value) in [(&first_name, &stored_first), (&last_name, &stored_last)] {
                match value {
                    Some(value) => {
                        let placeholder = builder.value(AttributeValue::S(value.clone()));
                        parts.push(format!("{name} = {placeholder}"));
                    }
                    None => parts.push(format!("attribute_not_exists({name})")),
                }
            }
            (stored_first, stored_last, parts.join(" AND "))
        }
    };

    let new_first = match stored_first {
        Some(stored) if stored < update.first_seen => stored,
        _ => update.first_seen.clone(),
    };
    let is_newest = stored_last
        .as_ref()
        .is_none_or(|stored| *stored <= update.last_seen);
    let new_last = match stored_last {
        Some(stored) if !is_newest => stored,
        _ => update.last_seen.clone(),
    };

    let first = builder.value(AttributeValue::S(new_first));
    let last = builder.value(AttributeValue::S(new_last));
    builder.set.push(format!("{first_name} = {first}"));
    builder.set.push(format!("{last_name} = {last}"));
    builder.add_attributes(&update.always);
    if is_newest {
        builder.add_attributes(&update.newest);
    }
    builder.add_sets(&update.sets);
    builder.finish(condition)
}

#[derive(Default)]
struct ExpressionBuilder {
    set: Vec<String>,
    add: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl ExpressionBuilder {
    fn name(&mut self, attribute: &str) -> String {
        if let Some((placeholder, _)) = self
            .names
            .iter()
            .find(|(_, name)| name.as_str() == attribute)
        {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn add_attributes(&mut self, attributes: &[(String, AttributeValue)]) {
        for (attribute, value) in attributes {
            let name = self.name(attribute);
            let value = self.value(value.clone());
            self.set.push(format!("{name} = {value}"));
        }
    }

    fn add_sets(&mut self, sets: &[(String, Vec<String>)]) {
        for (attribute, members) in sets {
            if members.is_empty() {
                continue;
            }
            let name = self.name(attribute);
            let value = self.value(AttributeValue::Ss(members.clone()));
            self.add.push(format!("{name} {value}"));
        }
    }

    fn finish(self, condition: String) -> Expression {
        let mut update = format!("SET {}", self.set.join(", "));
        if !self.add.is_empty() {
            update.push_str(&format!(" ADD {}", self.add.join(", ")));
        }
        Expression {
            update,
            condition,
            names: self.names,
            values: self.values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(first: &str, last: &str) -> WindowedUpdate {
        WindowedUpdate {
            pk: "TENANT#t".into(),
            sk: "APP#a.example".into(),
            first_seen: first.into(),
            last_seen: last.into(),
            newest: vec![(
                "app_name".into(),
                AttributeValue::S(format!("name at {last}")),
            )],
            sets: vec![("login_methods".into(), vec![format!("m{last}")])],
            ..Default::default()
        }
    }

    #[test]
    fn merge_keeps_widest_window() {
        let mut merged = update("2", "5");
        merged.merge(update("1", "3"));
        merged.merge(update("4", "9"));
        assert_eq!(merged.first_seen, "1");
        assert_eq!(merged.last_seen, "9");
        assert_eq!(merged.newest[0].1, AttributeValue::S("name at 9".into()));
        assert_eq!(merged.sets[0].1, vec!["m5", "m3", "m9"]);
    }

    #[test]
    fn late_update_keeps_stored_last_seen() {
        let expression = build_compare_and_set(
            &update("1", "3"),
            Some((Some("2".into()), Some("7".into()))),
        );
        let values: Vec<&AttributeValue> = expression.values.values().collect();
        assert!(
            values.contains(&&AttributeValue::S("7".into())),
            "last_seen stays 7"
        );
        assert!(
            values.contains(&&AttributeValue::S("1".into())),
            "first_seen moves back to 1"
        );
        assert!(
            !expression.update.contains("app_name")
                && !expression.names.values().any(|n| n == "app_name")
        );
    }
}
