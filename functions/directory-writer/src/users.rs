//! Directory users: creating or linking the employee, following email and name changes, and
//! removing the link when the user leaves the directory.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use chrono::Utc;
use rollcall::directory::{self, DirectoryChange, DirectoryUser, DirectoryUserItem};
use rollcall::email::canonical_email;
use rollcall::store::{Key, decode};
use rollcall::table::{self, EmailOwnerItem, EmployeeItem, LicenceState, NewEmployee, sort_name};
use rollcall::telemetry::storage_time;
use tracing::{info, warn};

use crate::{ApplyError, Context, DirectoryWriter};

/// Attempts of a departure whose employee keeps changing underneath.
const MAX_ATTEMPTS: u32 = 5;

/// The reason a directory user leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Departure {
    /// Gone from a complete listing, or reported deleted by the provider.
    Removed,
    /// The integration was deleted.
    Revoked,
}

fn link_attribute(context: &Context<'_>) -> String {
    directory::employee_link_attribute(context.provider)
}

/// The stored records a message's user changes need, read in one `BatchGetItem`: directory
/// users and the owners of their emails.
pub(crate) type Known = HashMap<Key, HashMap<String, AttributeValue>>;

impl DirectoryWriter {
    pub(crate) async fn prefetch(
        &self,
        context: &Context<'_>,
        changes: &[DirectoryChange],
    ) -> Result<Known, ApplyError> {
        let mut keys = Vec::new();
        for change in changes {
            if let DirectoryChange::User { user } = change {
                keys.push((
                    context.pk.clone(),
                    directory::directory_user_sk(context.provider, &user.id),
                ));
                if let Some(email) = &user.email {
                    keys.push((context.pk.clone(), table::email_owner_sk(email)));
                }
            }
        }
        keys.sort();
        keys.dedup();
        Ok(self.store.get_items(&keys).await?)
    }

    pub(crate) async fn apply_user(
        &self,
        context: &Context<'_>,
        user: &DirectoryUser,
        known: &Known,
    ) -> Result<(), ApplyError> {
        let sk = directory::directory_user_sk(context.provider, &user.id);
        let stored: Option<DirectoryUserItem> = known
            .get(&(context.pk.clone(), sk.clone()))
            .map(|item| decode(item.clone()))
            .transpose()?;
        let hash = user.content_hash();
        if stored
            .as_ref()
            .is_some_and(|s| s.content_hash == hash && s.removed_at.is_none())
        {
            return Ok(());
        }
        let now = storage_time(Utc::now());
        let item = DirectoryUserItem {
            pk: context.pk.clone(),
            sk,
            provider: context.provider,
            user: user.clone(),
            employee_id: stored.as_ref().and_then(|s| s.employee_id.clone()),
            content_hash: hash,
            first_seen: stored
                .as_ref()
                .map(|s| s.first_seen.clone())
                .unwrap_or_else(|| now.clone()),
            updated_at: now.clone(),
            removed_at: None,
        };
        match (&stored, &item.employee_id) {
            (Some(stored), Some(employee_id)) => {
                self.update_linked(context, stored, item.clone(), employee_id)
                    .await
            }
            _ => {
                self.link_or_create(context, item, stored.is_some(), &now, known)
                    .await
            }
        }
    }

    /// Links a directory user to the employee that owns its email, or creates an unlicensed
    /// employee. Guests and users without an email get a directory record only.
    async fn link_or_create(
        &self,
        context: &Context<'_>,
        mut item: DirectoryUserItem,
        exists: bool,
        now: &str,
        known: &Known,
    ) -> Result<(), ApplyError> {
        let email = match (&item.user.email, item.user.guest) {
            (Some(email), false) => canonical_email(email).ok(),
            _ => None,
        };
        let put_record = |store: &rollcall::store::Store, item: &DirectoryUserItem| {
            if exists {
                store.put_replace(item)
            } else {
                store.put_new(item)
            }
        };
        let Some(email) = email else {
            self.commit(context, vec![put_record(&self.store, &item)?])
                .await?;
            return Ok(());
        };

        let owner_key = (context.pk.clone(), table::email_owner_sk(email.as_str()));
        let owner: Option<EmailOwnerItem> = known
            .get(&owner_key)
            .map(|item| decode(item.clone()))
            .transpose()?;
        let source = directory::integration_source(context.provider);
        let writes = match owner {
            Some(owner) => {
                item.employee_id = Some(owner.employee_id.clone());
                let link = self.update(
                    &context.pk,
                    &table::employee_sk(&owner.employee_id),
                    &format!("ADD sources :source SET {} = :id", link_attribute(context)),
                    vec![
                        (":source", AttributeValue::Ss(vec![source])),
                        (":id", AttributeValue::S(item.user.id.clone())),
                    ],
                    &[],
                    Some("attribute_exists(pk)"),
                );
                info!(tenant_id = %context.tenant_id, provider = %context.provider, employee_id = owner.employee_id, "directory user linked to an existing employee");
                vec![put_record(&self.store, &item)?, link]
            }
            None => {
                let employee_id = uuid::Uuid::new_v4().to_string();
                item.employee_id = Some(employee_id.clone());
                let mut employee = EmployeeItem::new(NewEmployee {
                    tenant_id: context.tenant_id,
                    employee_id: employee_id.clone(),
                    name: item.user.name.clone(),
                    email: &email,
                    licence_state: LicenceState::Unlicensed,
                    first_seen: now.to_owned(),
                    now: now.to_owned(),
                    source,
                    install_id: None,
                });
                set_link(&mut employee, context, Some(item.user.id.clone()));
                let mut writes = self.store.put_new_employee(&employee)?;
                writes.push(put_record(&self.store, &item)?);
                info!(tenant_id = %context.tenant_id, provider = %context.provider, employee_id, "employee created from the directory");
                writes
            }
        };
        self.commit(context, writes).await?;
        Ok(())
    }

    /// Applies a change to a user already linked to an employee: the new record, and the
    /// employee's email and name when they changed.
    async fn update_linked(
        &self,
        context: &Context<'_>,
        stored: &DirectoryUserItem,
        item: DirectoryUserItem,
        employee_id: &str,
    ) -> Result<(), ApplyError> {
        let mut writes = vec![self.store.put_replace(&item)?];
        let Some(employee) = self.store.employee(context.tenant_id, employee_id).await? else {
            warn!(tenant_id = %context.tenant_id, employee_id, "linked employee not found; directory record updated alone");
            self.commit(context, writes).await?;
            return Ok(());
        };

        let mut sets = Vec::new();
        let mut values = Vec::new();
        let mut adds = Vec::new();
        if stored.removed_at.is_some() {
            // The user is back in the directory (restored, or reported gone by mistake).
            adds.push("sources :source");
            values.push((
                ":source",
                AttributeValue::Ss(vec![directory::integration_source(context.provider)]),
            ));
            info!(tenant_id = %context.tenant_id, provider = %context.provider, employee_id, "directory user back in the directory");
        }
        let old_email = stored.user.email.as_deref().filter(|_| !stored.user.guest);
        let new_email = item.user.email.as_deref().filter(|_| !item.user.guest);
        if let (Some(new_email), true) = (new_email, new_email != old_email) {
            let owner: Option<EmailOwnerItem> = self
                .store
                .get(&context.pk, &table::email_owner_sk(new_email))
                .await?;
            match owner {
                Some(owner) if owner.employee_id != employee_id => {
                    warn!(tenant_id = %context.tenant_id, employee_id, other_employee_id = owner.employee_id, "the directory user's new email belongs to another employee; the employee keeps its email");
                }
                Some(_) => {}
                None => {
                    writes.push(self.store.put_new(&EmailOwnerItem {
                        pk: context.pk.clone(),
                        sk: table::email_owner_sk(new_email),
                        email: new_email.to_owned(),
                        employee_id: employee_id.to_owned(),
                    })?);
                    let mut emails: Vec<String> = employee
                        .emails
                        .iter()
                        .filter(|e| Some(e.as_str()) != old_email)
                        .cloned()
                        .collect();
                    if let Some(old) =
                        old_email.filter(|old| employee.emails.iter().any(|e| e == old))
                    {
                        writes.push(self.delete(&context.pk, &table::email_owner_sk(old)));
                    }
                    emails.insert(0, new_email.to_owned());
                    sets.push("primary_email = :email, emails = :emails");
                    values.push((":email", AttributeValue::S(new_email.to_owned())));
                    values.push((
                        ":emails",
                        AttributeValue::L(emails.into_iter().map(AttributeValue::S).collect()),
                    ));
                    info!(tenant_id = %context.tenant_id, employee_id, "employee email changed in the directory");
                }
            }
        }
        if let Some(name) = item
            .user
            .name
            .as_deref()
            .filter(|n| Some(*n) != employee.name.as_deref())
        {
            let primary = values
                .iter()
                .find(|(k, _)| *k == ":email")
                .and_then(|(_, v)| v.as_s().ok().cloned())
                .unwrap_or_else(|| employee.primary_email.clone());
            sets.push("#name = :name, gsi2sk = :sort");
            values.push((":name", AttributeValue::S(name.to_owned())));
            values.push((
                ":sort",
                AttributeValue::S(format!("{}#{employee_id}", sort_name(Some(name), &primary))),
            ));
        }
        if !sets.is_empty() || !adds.is_empty() {
            // `name` is a DynamoDB reserved word, so it goes through a placeholder.
            let names: &[(&str, &str)] = if sets.iter().any(|s| s.contains("#name")) {
                &[("#name", "name")]
            } else {
                &[]
            };
            let mut expression = Vec::new();
            if !sets.is_empty() {
                expression.push(format!("SET {}", sets.join(", ")));
            }
            if !adds.is_empty() {
                expression.push(format!("ADD {}", adds.join(", ")));
            }
            writes.push(self.update(
                &context.pk,
                &employee.sk,
                &expression.join(" "),
                values,
                names,
                Some("attribute_exists(pk)"),
            ));
        }
        self.commit(context, writes).await?;
        Ok(())
    }

    /// Handles a user gone from the directory. The employee loses this integration as a
    /// source and its groups, and the user's activity data is deleted. An employee that keeps
    /// another source, any SaaS account or a licence stays, and the record stays with it,
    /// marked removed, so the console shows that the directory account is gone. Otherwise the
    /// employee and the record are deleted.
    pub(crate) async fn remove_user(
        &self,
        context: &Context<'_>,
        id: &str,
    ) -> Result<(), ApplyError> {
        let sk = directory::directory_user_sk(context.provider, id);
        let Some(stored) = self
            .store
            .get::<DirectoryUserItem>(&context.pk, &sk)
            .await?
        else {
            return Ok(());
        };
        if stored.removed_at.is_some() {
            return Ok(());
        }
        self.depart(context, stored, Departure::Removed).await
    }

    /// Applies a directory user's departure to the user's record, its activity data and its
    /// employee. Retries when the employee changes underneath.
    pub(crate) async fn depart(
        &self,
        context: &Context<'_>,
        stored: DirectoryUserItem,
        departure: Departure,
    ) -> Result<(), ApplyError> {
        let mut attempt = 0;
        loop {
            match self.try_depart(context, &stored, departure).await {
                Err(ApplyError::Transact(error))
                    if attempt < MAX_ATTEMPTS
                        && (error.is_conflict() || error.condition_failed(1)) =>
                {
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn try_depart(
        &self,
        context: &Context<'_>,
        stored: &DirectoryUserItem,
        departure: Departure,
    ) -> Result<(), ApplyError> {
        let id = &stored.user.id;
        let employee = match &stored.employee_id {
            Some(employee_id) => self.store.employee(context.tenant_id, employee_id).await?,
            None => None,
        };
        let mut activity = Vec::new();
        for kind in directory::ACTIVITY_KINDS {
            activity.push(self.delete(
                &context.pk,
                &directory::activity_sk(context.provider, kind, id),
            ));
        }
        let delete_record = self.delete(&context.pk, &stored.sk);
        let Some(employee) = employee else {
            let mut writes = vec![delete_record];
            writes.extend(activity);
            return self.commit(context, writes).await;
        };

        let source = directory::integration_source(context.provider);
        let others = employee.sources.iter().any(|s| *s != source);
        let keep = match departure {
            Departure::Revoked => others,
            Departure::Removed => {
                others
                    || employee.licence_state == LicenceState::Licensed
                    || self.has_accounts(context, &employee).await?
            }
        };

        // Index 1 is always the employee's write, which `depart` retries on.
        let mut writes = if keep {
            let record = match departure {
                Departure::Revoked => delete_record,
                Departure::Removed => {
                    let mut record = stored.clone();
                    record.removed_at = Some(storage_time(Utc::now()));
                    self.store.put_replace(&record)?
                }
            };
            vec![record, self.detach(context, &employee, departure)]
        } else {
            let mut writes = vec![delete_record, self.delete_employee(&employee)];
            for email in &employee.emails {
                writes.push(self.delete(&context.pk, &table::email_owner_sk(email)));
            }
            if employee.licence_state == LicenceState::Licensed {
                writes.push(self.store.free_seat(&context.pk));
            }
            writes
        };
        writes.extend(activity);
        self.commit(context, writes).await?;
        if keep {
            info!(tenant_id = %context.tenant_id, provider = %context.provider, employee_id = employee.employee_id, ?departure, "directory user gone; the employee stays");
        } else {
            info!(tenant_id = %context.tenant_id, provider = %context.provider, employee_id = employee.employee_id, ?departure, licence_freed = employee.licence_state == LicenceState::Licensed, "employee removed with its directory user");
        }
        Ok(())
    }

    async fn has_accounts(
        &self,
        context: &Context<'_>,
        employee: &EmployeeItem,
    ) -> Result<bool, ApplyError> {
        for email in &employee.emails {
            if let Ok(email) = canonical_email(email)
                && !self
                    .store
                    .accounts_for_email(context.tenant_id, &email)
                    .await?
                    .is_empty()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Takes this integration's source and groups from an employee that stays. A revocation
    /// also removes the link to the directory user; a removal keeps it, so the console finds
    /// the record marked removed.
    fn detach(
        &self,
        context: &Context<'_>,
        employee: &EmployeeItem,
        departure: Departure,
    ) -> TransactWriteItem {
        let prefix = format!("{}-", context.provider);
        let groups: Vec<String> = employee
            .groups
            .iter()
            .filter(|g| g.starts_with(&prefix))
            .cloned()
            .collect();
        let mut expression = "DELETE sources :source".to_owned();
        if !groups.is_empty() {
            expression.push_str(", groups :groups");
        }
        if departure == Departure::Revoked {
            expression.push_str(&format!(" REMOVE {}", link_attribute(context)));
        }
        let mut values = vec![(
            ":source",
            AttributeValue::Ss(vec![directory::integration_source(context.provider)]),
        )];
        if !groups.is_empty() {
            values.push((":groups", AttributeValue::Ss(groups)));
        }
        self.update(
            &context.pk,
            &employee.sk,
            &expression,
            values,
            &[],
            Some("attribute_exists(pk)"),
        )
    }

    /// Deletes an employee, provided its licence state and sources are still what was read.
    fn delete_employee(&self, employee: &EmployeeItem) -> TransactWriteItem {
        let mut condition = "licence_state = :state".to_owned();
        let mut delete = Delete::builder()
            .table_name(self.store.table_name())
            .key(table::PK, AttributeValue::S(employee.pk.clone()))
            .key(table::SK, AttributeValue::S(employee.sk.clone()))
            .expression_attribute_values(
                ":state",
                AttributeValue::S(employee.licence_state.as_str().to_owned()),
            );
        if !employee.sources.is_empty() {
            condition.push_str(" AND sources = :sources");
            delete = delete.expression_attribute_values(
                ":sources",
                AttributeValue::Ss(employee.sources.clone()),
            );
        }
        let delete = delete
            .condition_expression(condition)
            .build()
            .expect("table and key are set");
        TransactWriteItem::builder().delete(delete).build()
    }

    pub(crate) fn delete(&self, pk: &str, sk: &str) -> TransactWriteItem {
        self.store.delete_write(pk, sk)
    }
}

fn set_link(employee: &mut EmployeeItem, context: &Context<'_>, id: Option<String>) {
    match context.provider {
        rollcall::integration::Provider::Microsoft => employee.directory_microsoft = id,
        rollcall::integration::Provider::Google => employee.directory_google = id,
        rollcall::integration::Provider::Okta => employee.directory_okta = id,
    }
}
