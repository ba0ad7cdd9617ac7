//! The licensing decision for one identity observation, and the transaction that applies it.

use std::time::Duration;

use aws_sdk_dynamodb::types::TransactWriteItem;
use rollcall::email::CompanyDomains;
use rollcall::envelope::IdentityObservation;
use rollcall::store::{EmployeeChange, Store, TransactError};
use rollcall::table::{self, EmployeeItem, LicenceState, NewEmployee, TenantItem, source};

use crate::{Prefetched, ProcessError, marker_key, owner_key};

/// Attempts before an observation whose employee keeps changing is retried through the queue.
const MAX_ATTEMPTS: u32 = 6;

/// Whether an observation may license its employee, and if not, the first condition that fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligibility {
    Eligible,
    AutoLicensingOff,
    Unmanaged,
    ForeignDomain,
}

/// The result of processing an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The same observation was processed before.
    Duplicate,
    /// No employee has the email, and this observation may not create one.
    NotCreated(Eligibility),
    /// A new employee was created from the observation.
    Created { licensed: bool },
    /// An existing unlicensed employee was licensed.
    Licensed,
    /// The employee already held a licence.
    AlreadyLicensed,
    /// An existing employee stays unlicensed.
    KeptUnlicensed(KeptReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptReason {
    NoSeatFree,
    Hidden,
    NotEligible(Eligibility),
}

/// The reason an attempt must be repeated.
enum Retry {
    /// The email owner or the employee changed since it was read.
    Reread,
    /// Another transaction held the same items.
    Conflict,
    Fail(ProcessError),
}

impl From<TransactError> for Retry {
    fn from(error: TransactError) -> Self {
        match error {
            error if error.is_conflict() => Retry::Conflict,
            TransactError::Store(error) => Retry::Fail(error.into()),
            TransactError::Cancelled { .. } => Retry::Reread,
        }
    }
}

pub fn eligibility(tenant: &TenantItem, observation: &IdentityObservation) -> Eligibility {
    let company = CompanyDomains {
        domains: tenant.company_domains.clone(),
        include_subdomains: tenant.include_subdomains,
    };
    if !tenant.auto_licensing {
        Eligibility::AutoLicensingOff
    } else if !observation.managed {
        Eligibility::Unmanaged
    } else if !company.contains(&observation.email) {
        Eligibility::ForeignDomain
    } else {
        Eligibility::Eligible
    }
}

pub(crate) async fn process(
    store: &Store,
    observation: &IdentityObservation,
    prefetched: &Prefetched,
    expires_at: i64,
) -> Result<Outcome, ProcessError> {
    if prefetched.contains(&marker_key(observation)) {
        return Ok(Outcome::Duplicate);
    }
    let tenant = prefetched
        .tenant(observation)?
        .ok_or_else(|| ProcessError::TenantNotFound(observation.tenant_id.to_string()))?;
    let eligibility = eligibility(&tenant, observation);
    let context = Context {
        store,
        observation,
        eligibility,
        marker: store.put_marker(&marker_key(observation), expires_at),
        expires_at,
    };

    let mut owner = prefetched.email_owner(observation);
    for attempt in 0..MAX_ATTEMPTS {
        // The prefetched employee serves the first attempt; a retry reads it again.
        let known = if attempt == 0 {
            owner
                .as_deref()
                .and_then(|id| prefetched.employee(observation, id))
        } else {
            None
        };
        let result = match &owner {
            None => context.create_employee().await,
            Some(employee_id) => context.update_employee(employee_id, known).await,
        };
        match result {
            Ok(outcome) => return Ok(outcome),
            Err(Retry::Fail(error)) => return Err(error),
            Err(Retry::Conflict) => tokio::time::sleep(backoff(attempt)).await,
            Err(Retry::Reread) => {}
        }
        let (pk, sk) = owner_key(observation);
        let item: Option<table::EmailOwnerItem> = store.get(&pk, &sk).await?;
        owner = item.map(|item| item.employee_id);
    }
    Err(ProcessError::Contended(MAX_ATTEMPTS))
}

struct Context<'a> {
    store: &'a Store,
    observation: &'a IdentityObservation,
    eligibility: Eligibility,
    marker: TransactWriteItem,
    expires_at: i64,
}

impl Context<'_> {
    fn tenant_pk(&self) -> String {
        table::tenant_pk(&self.observation.tenant_id)
    }

    /// Records the observation as processed when nothing else changes.
    async fn mark_only(&self, outcome: Outcome) -> Result<Outcome, Retry> {
        let marker = marker_key(self.observation);
        self.store
            .put_markers(&[marker], self.expires_at)
            .await
            .map_err(|e| Retry::Fail(e.into()))?;
        Ok(outcome)
    }

    async fn create_employee(&self) -> Result<Outcome, Retry> {
        if self.eligibility != Eligibility::Eligible {
            return self.mark_only(Outcome::NotCreated(self.eligibility)).await;
        }

        let licensed = self.transact_new_employee(true).await;
        match licensed {
            Ok(()) => Ok(Outcome::Created { licensed: true }),
            // Items: 0 employee, 1 email owner, 2 seat.
            Err(error) if error.condition_failed(2) && !error.condition_failed(1) => {
                self.transact_new_employee(false).await?;
                Ok(Outcome::Created { licensed: false })
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn transact_new_employee(&self, with_licence: bool) -> Result<(), TransactError> {
        let observation = self.observation;
        let employee_id = uuid::Uuid::new_v4().to_string();
        let first_seen = rollcall::telemetry::storage_time(observation.observed_at);
        let activity_time = first_seen.clone();
        let now = rollcall::telemetry::storage_time(chrono::Utc::now());
        let state = if with_licence {
            LicenceState::Licensed
        } else {
            LicenceState::Unlicensed
        };
        let employee = EmployeeItem::new(NewEmployee {
            tenant_id: &observation.tenant_id,
            employee_id: employee_id.clone(),
            name: None,
            email: &observation.email,
            licence_state: state,
            first_seen,
            now,
            source: source::EXTENSION.to_owned(),
            install_id: Some(observation.install_id.clone()),
        })
        .with_extension_activity(&observation.tenant_id, &activity_time);

        let mut items = self.store.put_new_employee(&employee)?;
        if with_licence {
            items.push(self.store.take_seat(&employee.pk));
        }
        items.push(
            self.store
                .link_profile(&employee.pk, &observation.install_id, &employee_id),
        );
        items.push(self.marker.clone());
        self.store.transact(items).await
    }

    async fn update_employee(
        &self,
        employee_id: &str,
        known: Option<EmployeeItem>,
    ) -> Result<Outcome, Retry> {
        let employee = match known {
            Some(employee) => employee,
            None => self
                .store
                .get(&self.tenant_pk(), &table::employee_sk(employee_id))
                .await
                .map_err(|e| Retry::Fail(e.into()))?
                .ok_or_else(|| {
                    Retry::Fail(ProcessError::DanglingEmailOwner(employee_id.to_owned()))
                })?,
        };
        // Before the transaction, so that a retry after a failure still records the activity.
        self.store
            .touch_extension_activity(
                &self.observation.tenant_id,
                &employee.employee_id,
                &rollcall::telemetry::storage_time(self.observation.observed_at),
            )
            .await
            .map_err(|e| Retry::Fail(e.into()))?;

        let eligible = self.eligibility == Eligibility::Eligible;
        let mut change = EmployeeChange::default();
        if eligible && !employee.sources.iter().any(|s| s == source::EXTENSION) {
            change.add_sources.push(source::EXTENSION.to_owned());
        }
        let link_profile = !employee.install_ids.contains(&self.observation.install_id);
        if link_profile {
            change
                .add_install_ids
                .push(self.observation.install_id.clone());
        }

        let kept_reason = match (employee.licence_state, eligible, employee.hidden) {
            (LicenceState::Licensed, _, _) => None,
            (LicenceState::Unlicensed, false, _) => Some(KeptReason::NotEligible(self.eligibility)),
            (LicenceState::Unlicensed, true, true) => Some(KeptReason::Hidden),
            (LicenceState::Unlicensed, true, false) => {
                match self
                    .transact_update(&employee, &change, link_profile, true)
                    .await
                {
                    Ok(()) => return Ok(Outcome::Licensed),
                    // Items: 0 employee, 1 seat.
                    Err(error) if error.condition_failed(1) && !error.condition_failed(0) => {
                        Some(KeptReason::NoSeatFree)
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        };

        let outcome = match kept_reason {
            None => Outcome::AlreadyLicensed,
            Some(reason) => Outcome::KeptUnlicensed(reason),
        };
        if change.is_empty() {
            return self.mark_only(outcome).await;
        }
        self.transact_update(&employee, &change, link_profile, false)
            .await?;
        Ok(outcome)
    }

    async fn transact_update(
        &self,
        employee: &EmployeeItem,
        change: &EmployeeChange,
        link_profile: bool,
        with_licence: bool,
    ) -> Result<(), TransactError> {
        let mut change = change.clone();
        if with_licence {
            let now = rollcall::telemetry::storage_time(chrono::Utc::now());
            change.licence = Some((LicenceState::Licensed, now));
            change.licence_gsi1_pk = Some(table::licence_gsi1_pk(
                &self.observation.tenant_id,
                LicenceState::Licensed,
            ));
        }
        let mut items = vec![self.store.update_employee(employee, &change)];
        if with_licence {
            items.push(self.store.take_seat(&employee.pk));
        }
        if link_profile {
            items.push(self.store.link_profile(
                &employee.pk,
                &self.observation.install_id,
                &employee.employee_id,
            ));
        }
        items.push(self.marker.clone());
        self.store.transact(items).await
    }
}

fn backoff(attempt: u32) -> Duration {
    rollcall::retry::backoff(attempt, Duration::from_millis(20))
}
