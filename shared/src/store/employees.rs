//! Employee operations an administrator triggers: licence changes and the hidden flag.

use std::time::Duration;

use super::licensing::TransactError;
use super::{EmployeeChange, Store, StoreError};
use crate::ids::TenantId;
use crate::table::{self, EmployeeItem, LicenceState};

/// Attempts before a change to an employee that keeps changing underneath gives up.
const MAX_ATTEMPTS: u32 = 6;

/// The result of a licence change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenceResult {
    Changed,
    /// The employee already was in the requested state.
    Unchanged,
    /// Every seat of the plan is taken.
    NoSeatFree,
    NotFound,
}

impl Store {
    pub async fn employee(
        &self,
        tenant_id: &TenantId,
        employee_id: &str,
    ) -> Result<Option<EmployeeItem>, StoreError> {
        self.get(
            &table::tenant_pk(tenant_id),
            &table::employee_sk(employee_id),
        )
        .await
    }

    /// Assigns or removes an employee's licence and moves the seat counter in the same
    /// transaction. `now` is the change time in storage format.
    pub async fn set_licence(
        &self,
        tenant_id: &TenantId,
        employee_id: &str,
        state: LicenceState,
        now: &str,
    ) -> Result<LicenceResult, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            let Some(employee) = self.employee(tenant_id, employee_id).await? else {
                return Ok(LicenceResult::NotFound);
            };
            if employee.licence_state == state {
                return Ok(LicenceResult::Unchanged);
            }

            let change = EmployeeChange {
                licence: Some((state, now.to_owned())),
                licence_gsi1_pk: Some(table::licence_gsi1_pk(tenant_id, state)),
                ..Default::default()
            };
            let seat = match state {
                LicenceState::Licensed => self.take_seat(&employee.pk),
                LicenceState::Unlicensed => self.free_seat(&employee.pk),
            };
            // Items: 0 employee (conditioned on the state read above), 1 seat counter.
            match self
                .transact(vec![self.update_employee(&employee, &change), seat])
                .await
            {
                Ok(()) => return Ok(LicenceResult::Changed),
                Err(error)
                    if error.condition_failed(1)
                        && !error.condition_failed(0)
                        && state == LicenceState::Licensed =>
                {
                    return Ok(LicenceResult::NoSeatFree);
                }
                Err(TransactError::Store(error)) => return Err(error),
                Err(error) if error.is_conflict() => {
                    tokio::time::sleep(crate::retry::backoff(attempt, Duration::from_millis(20)))
                        .await
                }
                Err(_) => {}
            }
        }
        Err(StoreError::Contended {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Sets an employee's hidden flag. Returns false when the employee does not exist.
    pub async fn set_hidden(
        &self,
        tenant_id: &TenantId,
        employee_id: &str,
        hidden: bool,
    ) -> Result<bool, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let Some(employee) = self.employee(tenant_id, employee_id).await? else {
                return Ok(false);
            };
            if employee.hidden == hidden {
                return Ok(true);
            }
            let change = EmployeeChange {
                hidden: Some(hidden),
                ..Default::default()
            };
            match self
                .transact(vec![self.update_employee(&employee, &change)])
                .await
            {
                Ok(()) => return Ok(true),
                Err(TransactError::Store(error)) => return Err(error),
                Err(_) => {}
            }
        }
        Err(StoreError::Contended {
            attempts: MAX_ATTEMPTS,
        })
    }
}
