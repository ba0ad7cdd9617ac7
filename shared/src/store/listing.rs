//! Paged, filtered employee lists for the admin console.
//!
//! Each licence state is a partition of indexes `gsi1` (first-seen order) and `gsi2` (name
//! order). A list of one state reads one partition; a list of every employee merges the two
//! partitions in sort order. Filters (hidden, group, name or email prefix) are DynamoDB filter
//! expressions, so a page may take several reads. The cursor is the key of the last employee
//! returned in each partition.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, decode};
use crate::error::AwsError;
use crate::ids::TenantId;
use crate::table::{self, EmployeeItem, LicenceState};

/// The order of an employee list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmployeeSort {
    #[default]
    FirstSeen,
    Name,
}

#[derive(Debug, Clone, Default)]
pub struct EmployeeQuery {
    /// Only employees in this state; `None` lists both.
    pub licence: Option<LicenceState>,
    pub hidden: Option<bool>,
    pub group: Option<String>,
    /// Lowercase prefix of the name or of the primary email.
    pub prefix: Option<String>,
    pub sort: EmployeeSort,
    pub limit: usize,
}

#[derive(Debug, Clone)]
pub struct EmployeePage {
    pub employees: Vec<EmployeeItem>,
    /// Opaque; pass it back to get the next page. `None` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the cursor is not valid for this list")]
pub struct InvalidCursor;

/// The read position in each partition: absent before the first read, `None` when exhausted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cursor {
    positions: HashMap<String, Option<HashMap<String, String>>>,
}

impl Cursor {
    fn decode(text: &str) -> Result<Self, InvalidCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| InvalidCursor)?;
        serde_json::from_slice(&bytes).map_err(|_| InvalidCursor)
    }

    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// One partition's result: the employees read past the cursor and whether more remain.
struct PartitionRead {
    employees: Vec<EmployeeItem>,
    exhausted: bool,
}

impl Store {
    /// Returns one page of a tenant's employees.
    pub async fn list_employees(
        &self,
        tenant_id: &TenantId,
        query: &EmployeeQuery,
        cursor: Option<&str>,
    ) -> Result<Result<EmployeePage, InvalidCursor>, StoreError> {
        let mut position = match cursor.map(Cursor::decode).transpose() {
            Ok(position) => position.unwrap_or_default(),
            Err(invalid) => return Ok(Err(invalid)),
        };
        let states = match query.licence {
            Some(state) => vec![state],
            None => vec![LicenceState::Licensed, LicenceState::Unlicensed],
        };

        let mut candidates: Vec<(LicenceState, EmployeeItem)> = Vec::new();
        let mut exhausted: HashMap<LicenceState, bool> = HashMap::new();
        for state in &states {
            let start = match position.positions.get(state.as_str()) {
                Some(None) => {
                    exhausted.insert(*state, true);
                    continue;
                }
                Some(Some(key)) => Some(key.clone()),
                None => None,
            };
            let read = self.read_partition(tenant_id, *state, query, start).await?;
            exhausted.insert(*state, read.exhausted);
            candidates.extend(read.employees.into_iter().map(|e| (*state, e)));
        }

        candidates.sort_by(|(_, a), (_, b)| sort_key(a, query.sort).cmp(sort_key(b, query.sort)));
        let fetched: HashMap<LicenceState, usize> = states
            .iter()
            .map(|state| {
                (
                    *state,
                    candidates.iter().filter(|(s, _)| s == state).count(),
                )
            })
            .collect();
        candidates.truncate(query.limit);

        // Each partition resumes after the last of its employees on this page. It is done when
        // it had no more to read and every employee read from it is on this page.
        for state in &states {
            let taken = candidates.iter().filter(|(s, _)| s == state).count();
            let done = exhausted.get(state).copied().unwrap_or(false) && taken == fetched[state];
            let last = candidates
                .iter()
                .rev()
                .find(|(s, _)| s == state)
                .map(|(_, e)| e);
            let next = match (done, last) {
                (true, _) => Some(None),
                (false, Some(employee)) => Some(Some(index_key(employee, query.sort))),
                (false, None) => None,
            };
            if let Some(next) = next {
                position.positions.insert(state.as_str().to_owned(), next);
            }
        }

        let finished = states
            .iter()
            .all(|state| matches!(position.positions.get(state.as_str()), Some(None)));
        let employees = candidates.into_iter().map(|(_, e)| e).collect();
        let next_cursor = (!finished).then(|| position.encode());
        Ok(Ok(EmployeePage {
            employees,
            next_cursor,
        }))
    }

    /// Reads up to `query.limit` matching employees of one licence state after `start`.
    async fn read_partition(
        &self,
        tenant_id: &TenantId,
        state: LicenceState,
        query: &EmployeeQuery,
        start: Option<HashMap<String, String>>,
    ) -> Result<PartitionRead, StoreError> {
        let (index, pk_name) = match query.sort {
            EmployeeSort::FirstSeen => (table::GSI1, table::GSI1_PK),
            EmployeeSort::Name => (table::GSI2, "gsi2pk"),
        };
        let mut filters = Vec::new();
        let mut values = HashMap::from([(
            ":pk".to_owned(),
            AttributeValue::S(table::licence_gsi1_pk(tenant_id, state)),
        )]);
        if let Some(hidden) = query.hidden {
            filters.push(if hidden {
                "#hidden = :hidden"
            } else {
                "(attribute_not_exists(#hidden) OR #hidden = :hidden)"
            });
            values.insert(":hidden".to_owned(), AttributeValue::Bool(hidden));
        }
        if let Some(group) = &query.group {
            filters.push("contains(#groups, :group)");
            values.insert(":group".to_owned(), AttributeValue::S(group.clone()));
        }
        if let Some(prefix) = &query.prefix {
            filters.push("(begins_with(gsi2sk, :prefix) OR begins_with(primary_email, :prefix))");
            values.insert(":prefix".to_owned(), AttributeValue::S(prefix.clone()));
        }

        let mut employees = Vec::new();
        let mut start_key = start.map(|key| {
            key.into_iter()
                .map(|(k, v)| (k, AttributeValue::S(v)))
                .collect::<HashMap<_, _>>()
        });
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table_name)
                .index_name(index)
                .key_condition_expression(format!("{pk_name} = :pk"))
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start_key)
                .limit(query.limit.max(1) as i32);
            if !filters.is_empty() {
                request = request.filter_expression(filters.join(" AND "));
            }
            if query.group.is_some() {
                request = request.expression_attribute_names("#groups", "groups");
            }
            if query.hidden.is_some() {
                request = request.expression_attribute_names("#hidden", "hidden");
            }
            let output = request
                .send()
                .await
                .map_err(|e| AwsError::dynamodb("Query", e))?;
            for item in output.items.unwrap_or_default() {
                employees.push(decode(item)?);
            }
            start_key = output.last_evaluated_key;
            if start_key.is_none() {
                return Ok(PartitionRead {
                    employees,
                    exhausted: true,
                });
            }
            if employees.len() > query.limit {
                return Ok(PartitionRead {
                    employees,
                    exhausted: false,
                });
            }
        }
    }
}

fn sort_key(employee: &EmployeeItem, sort: EmployeeSort) -> &str {
    match sort {
        EmployeeSort::FirstSeen => &employee.gsi1sk,
        EmployeeSort::Name => &employee.gsi2sk,
    }
}

/// Returns the exclusive start key that resumes an index query after `employee`.
fn index_key(employee: &EmployeeItem, sort: EmployeeSort) -> HashMap<String, String> {
    let (pk_name, sk_name, index_pk, index_sk) = match sort {
        EmployeeSort::FirstSeen => (
            table::GSI1_PK,
            table::GSI1_SK,
            &employee.gsi1pk,
            &employee.gsi1sk,
        ),
        EmployeeSort::Name => ("gsi2pk", "gsi2sk", &employee.gsi2pk, &employee.gsi2sk),
    };
    HashMap::from([
        (table::PK.to_owned(), employee.pk.clone()),
        (table::SK.to_owned(), employee.sk.clone()),
        (pk_name.to_owned(), index_pk.clone()),
        (sk_name.to_owned(), index_sk.clone()),
    ])
}
