//! The daily inactivity sweep. For each tenant it reads the employees whose extension has been
//! inactive for the tenant's inactivity period, through index `gsi3`, so its reads follow the
//! number of candidates and not the size of the tenant. A candidate with no SaaS account left
//! loses its licence and the seat is freed. Its browser profiles are deleted and its activity
//! is no longer shown. A candidate with accounts keeps everything.
//!
//! Each change is one transaction, conditioned on the last-activity value the sweep read: a
//! heartbeat that lands meanwhile wins, and the employee stays as it is. The same transaction
//! takes the employee out of the index and adds it to the day's audit entry, so a sweep that
//! runs again, after a crash or a retry, continues with what is left and counts nothing twice.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Duration, Utc};
use rollcall::aws::Clients;
use rollcall::config::{ConfigError, Lookup, required};
use rollcall::email::canonical_email;
use rollcall::error::AwsError;
use rollcall::ids::TenantId;
use rollcall::store::{Store, StoreError, TransactError};
use rollcall::table::{self, EmployeeItem, LicenceState, TenantItem};
use rollcall::telemetry::storage_time;
use serde::Serialize;
use tracing::{info, warn};

/// Candidates read per query.
const PAGE_SIZE: i32 = 100;
/// How long an audit entry is kept.
const AUDIT_TTL: Duration = Duration::days(400);
/// A transaction takes at most 100 items, and the employee, the seat and the audit entry use three.
const MAX_PROFILES_DELETED: usize = 90;

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
}

impl Config {
    pub fn from_lookup(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(lookup, "TABLE_NAME")?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transact(#[from] TransactError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{failed} of {tenants} tenants were not swept; the next run continues them")]
    TenantsFailed { failed: usize, tenants: usize },
}

/// Counts of the sweep's outcomes for one tenant in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TenantSweep {
    pub candidates_read: u64,
    pub unlicensed: u64,
    pub activity_hidden: u64,
    pub kept_with_accounts: u64,
    /// Candidates that reported activity between the read and the write.
    pub active_again: u64,
}

/// The outcome for one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unlicensed,
    ActivityHidden,
    KeptWithAccounts,
    ActiveAgain,
}

#[derive(Debug, Clone)]
pub struct InactivitySweep {
    store: Store,
}

impl InactivitySweep {
    pub fn new(clients: &Clients, config: Config) -> Self {
        Self {
            store: Store::new(clients.dynamodb.clone(), config.table_name),
        }
    }

    /// Sweeps every tenant as of the scheduled event's `time`. One tenant's failure does not
    /// stop the others; the run then fails so that it is retried.
    pub async fn handle(&self, event: &serde_json::Value) -> Result<TenantSweep, SweepError> {
        let now = event_time(event);

        let tenants = self.store.tenants().await?;
        let mut total = TenantSweep::default();
        let mut failed = 0;
        for tenant in &tenants {
            match self.sweep_tenant(tenant, now).await {
                Ok(sweep) => {
                    total.candidates_read += sweep.candidates_read;
                    total.unlicensed += sweep.unlicensed;
                    total.activity_hidden += sweep.activity_hidden;
                    total.kept_with_accounts += sweep.kept_with_accounts;
                    total.active_again += sweep.active_again;
                }
                Err(error) => {
                    warn!(tenant_id = %tenant.tenant_id, error = %error, "tenant not swept");
                    failed += 1;
                }
            }
        }

        info!(tenants = tenants.len(), failed, unlicensed = total.unlicensed, activity_hidden = total.activity_hidden, candidates_read = total.candidates_read, as_of = %now, "inactivity sweep finished");
        if failed > 0 {
            return Err(SweepError::TenantsFailed {
                failed,
                tenants: tenants.len(),
            });
        }
        Ok(total)
    }

    /// Sweeps one tenant as of `now`.
    pub async fn sweep_tenant(
        &self,
        tenant: &TenantItem,
        now: DateTime<Utc>,
    ) -> Result<TenantSweep, SweepError> {
        let cutoff = storage_time(now - Duration::days(i64::from(tenant.inactivity_days)));
        let date = now.format("%Y-%m-%d").to_string();
        self.start_audit(tenant, &date, &cutoff, now).await?;

        let mut sweep = TenantSweep::default();
        let mut start = None;
        loop {
            let page = self
                .store
                .extension_inactive(&tenant.tenant_id, &cutoff, start, PAGE_SIZE)
                .await?;
            sweep.candidates_read += page.employees.len() as u64;
            for employee in &page.employees {
                match self
                    .consider(&tenant.tenant_id, employee, &date, now)
                    .await?
                {
                    Outcome::Unlicensed => {
                        sweep.unlicensed += 1;
                        sweep.activity_hidden += 1;
                    }
                    Outcome::ActivityHidden => sweep.activity_hidden += 1,
                    Outcome::KeptWithAccounts => sweep.kept_with_accounts += 1,
                    Outcome::ActiveAgain => sweep.active_again += 1,
                }
            }
            start = page.next;
            if start.is_none() {
                break;
            }
        }

        self.finish_audit(&tenant.tenant_id, &date, &sweep, now)
            .await?;
        info!(tenant_id = %tenant.tenant_id, candidates_read = sweep.candidates_read, unlicensed = sweep.unlicensed, activity_hidden = sweep.activity_hidden, kept_with_accounts = sweep.kept_with_accounts, active_again = sweep.active_again, "tenant swept");
        Ok(sweep)
    }

    /// Decides and applies the outcome for one candidate, as read from the index.
    pub async fn consider(
        &self,
        tenant_id: &TenantId,
        employee: &EmployeeItem,
        date: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, SweepError> {
        let Some(last_activity) = &employee.last_extension_activity else {
            return Ok(Outcome::ActiveAgain);
        };
        if self.has_accounts(tenant_id, employee).await? {
            return Ok(Outcome::KeptWithAccounts);
        }

        let licensed = employee.licence_state == LicenceState::Licensed;
        let tenant_pk = table::tenant_pk(tenant_id);
        let mut writes = vec![self.retire(tenant_id, employee, last_activity, now)];
        writes.push(self.audit_change(&tenant_pk, date, &employee.employee_id, licensed));
        if licensed {
            writes.push(self.store.free_seat(&tenant_pk));
        }
        for install_id in employee.install_ids.iter().take(MAX_PROFILES_DELETED) {
            writes.push(
                self.store
                    .delete_write(&tenant_pk, &table::profile_sk(install_id)),
            );
        }
        match self.store.transact(writes).await {
            Ok(()) => {}
            Err(error) if error.condition_failed(0) => {
                info!(tenant_id = %tenant_id, employee_id = employee.employee_id, "extension active again since the read; employee left as it is");
                return Ok(Outcome::ActiveAgain);
            }
            Err(error) => return Err(error.into()),
        }
        info!(tenant_id = %tenant_id, employee_id = employee.employee_id, last_activity, licence_freed = licensed, "inactive employee swept");
        Ok(if licensed {
            Outcome::Unlicensed
        } else {
            Outcome::ActivityHidden
        })
    }

    async fn has_accounts(
        &self,
        tenant_id: &TenantId,
        employee: &EmployeeItem,
    ) -> Result<bool, SweepError> {
        for email in &employee.emails {
            let Ok(email) = canonical_email(email) else {
                continue;
            };
            if !self
                .store
                .accounts_for_email(tenant_id, &email)
                .await?
                .is_empty()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Builds the employee's update: unlicensed, activity hidden, browser profiles unlinked and
    /// out of index `gsi3`, provided its last activity and licence state are still as read.
    fn retire(
        &self,
        tenant_id: &TenantId,
        employee: &EmployeeItem,
        last_activity: &str,
        now: DateTime<Utc>,
    ) -> TransactWriteItem {
        let mut set = vec!["activity_hidden_at = :now"];
        let mut remove = vec!["gsi3pk", "gsi3sk"];
        let mut update = Update::builder()
            .table_name(self.store.table_name())
            .key(table::PK, AttributeValue::S(employee.pk.clone()))
            .key(table::SK, AttributeValue::S(employee.sk.clone()))
            .condition_expression("last_extension_activity = :last AND licence_state = :state")
            .expression_attribute_values(":now", AttributeValue::S(storage_time(now)))
            .expression_attribute_values(":last", AttributeValue::S(last_activity.to_owned()))
            .expression_attribute_values(
                ":state",
                AttributeValue::S(employee.licence_state.as_str().to_owned()),
            );
        if employee.licence_state == LicenceState::Licensed {
            set.push("licence_state = :unlicensed, gsi1pk = :partition, gsi2pk = :partition");
            remove.push("licensed_at");
            update = update
                .expression_attribute_values(
                    ":unlicensed",
                    AttributeValue::S(LicenceState::Unlicensed.as_str().to_owned()),
                )
                .expression_attribute_values(
                    ":partition",
                    AttributeValue::S(table::licence_gsi1_pk(tenant_id, LicenceState::Unlicensed)),
                );
        }
        if !employee.install_ids.is_empty() {
            remove.push("install_ids");
        }
        let update = update
            .update_expression(format!(
                "SET {} REMOVE {}",
                set.join(", "),
                remove.join(", ")
            ))
            .build()
            .expect("table, key and expression are set");
        TransactWriteItem::builder().update(update).build()
    }

    fn audit_change(
        &self,
        tenant_pk: &str,
        date: &str,
        employee_id: &str,
        licensed: bool,
    ) -> TransactWriteItem {
        let id = AttributeValue::Ss(vec![employee_id.to_owned()]);
        let mut expression = "ADD activity_hidden_ids :id".to_owned();
        if licensed {
            expression.push_str(", unlicensed_ids :id");
        }
        let update = Update::builder()
            .table_name(self.store.table_name())
            .key(table::PK, AttributeValue::S(tenant_pk.to_owned()))
            .key(table::SK, AttributeValue::S(table::sweep_sk(date)))
            .update_expression(expression)
            .expression_attribute_values(":id", id)
            .build()
            .expect("table, key and expression are set");
        TransactWriteItem::builder().update(update).build()
    }

    async fn start_audit(
        &self,
        tenant: &TenantItem,
        date: &str,
        cutoff: &str,
        now: DateTime<Utc>,
    ) -> Result<(), SweepError> {
        let values = HashMap::from([
            (":date".to_owned(), AttributeValue::S(date.to_owned())),
            (":now".to_owned(), AttributeValue::S(storage_time(now))),
            (
                ":days".to_owned(),
                AttributeValue::N(tenant.inactivity_days.to_string()),
            ),
            (":cutoff".to_owned(), AttributeValue::S(cutoff.to_owned())),
            (
                ":expires".to_owned(),
                AttributeValue::N((now + AUDIT_TTL).timestamp().to_string()),
            ),
        ]);
        self.store
            .client()
            .update_item()
            .table_name(self.store.table_name())
            .key(table::PK, AttributeValue::S(tenant.pk.clone()))
            .key(table::SK, AttributeValue::S(table::sweep_sk(date)))
            .update_expression(
                "SET #date = :date, started_at = if_not_exists(started_at, :now), \
                 inactivity_days = :days, cutoff = :cutoff, expires_at = :expires \
                 REMOVE finished_at",
            )
            .expression_attribute_names("#date", "date")
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| AwsError::dynamodb("UpdateItem", e))?;
        Ok(())
    }

    async fn finish_audit(
        &self,
        tenant_id: &TenantId,
        date: &str,
        sweep: &TenantSweep,
        now: DateTime<Utc>,
    ) -> Result<(), SweepError> {
        let number = |n: u64| AttributeValue::N(n.to_string());
        self.store
            .client()
            .update_item()
            .table_name(self.store.table_name())
            .key(table::PK, AttributeValue::S(table::tenant_pk(tenant_id)))
            .key(table::SK, AttributeValue::S(table::sweep_sk(date)))
            .update_expression(
                "SET finished_at = :now, candidates_read = :read, \
                 kept_with_accounts = :kept, active_again = :active",
            )
            .expression_attribute_values(":now", AttributeValue::S(storage_time(now)))
            .expression_attribute_values(":read", number(sweep.candidates_read))
            .expression_attribute_values(":kept", number(sweep.kept_with_accounts))
            .expression_attribute_values(":active", number(sweep.active_again))
            .send()
            .await
            .map_err(|e| AwsError::dynamodb("UpdateItem", e))?;
        Ok(())
    }
}

/// Returns the time the sweep acts as of: the scheduled event's `time`, which EventBridge sets
/// to the scheduled time. An event without a valid one (a manual invocation) uses the current
/// time.
pub fn event_time(event: &serde_json::Value) -> DateTime<Utc> {
    match event.get("time").and_then(|t| t.as_str()) {
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(time) => time.with_timezone(&Utc),
            Err(_) => {
                warn!(
                    time = text,
                    "event time is not RFC 3339; sweeping as of now"
                );
                Utc::now()
            }
        },
        None => Utc::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_time_is_the_scheduled_time() {
        let event = json!({"detail-type": "Scheduled Event", "time": "2027-03-04T05:00:00Z"});
        assert_eq!(event_time(&event).to_rfc3339(), "2027-03-04T05:00:00+00:00");
    }

    #[test]
    fn invalid_event_time_uses_now() {
        let before = Utc::now();
        for event in [json!({}), json!({"time": "yesterday"}), json!({"time": 5})] {
            let time = event_time(&event);
            assert!(time >= before, "{event}");
            assert!(time <= Utc::now(), "{event}");
        }
    }
}
