//! Directory groups: stored beside custom groups (kind `directory`), with each member
//! employee's `groups` set kept current so lists filter by them like by custom groups.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use rollcall::directory::{self, DirectoryGroup, DirectoryGroupItem, DirectoryUserItem};
use rollcall::store::{Key, decode};
use rollcall::table::{self, GroupKind, GroupNameItem};
use rollcall::telemetry::storage_time;
use tracing::info;

use crate::{ApplyError, Context, DirectoryWriter};

/// Returns the sort key of a directory group's name item. The group id in the key keeps it
/// apart from a custom group of the same name, whose key is the name alone.
fn name_sk(name: &str, group_id: &str) -> String {
    format!("{}#{group_id}", table::group_name_sk(name.trim()))
}

impl DirectoryWriter {
    pub(crate) async fn apply_group(
        &self,
        context: &Context<'_>,
        group: &DirectoryGroup,
    ) -> Result<(), ApplyError> {
        let group_id = directory::directory_group_id(context.provider, &group.id);
        let sk = table::group_sk(&group_id);
        let stored: Option<DirectoryGroupItem> = self.store.get(&context.pk, &sk).await?;
        let hash = group.content_hash();
        if stored.as_ref().is_some_and(|s| s.content_hash == hash) {
            return Ok(());
        }

        // A group stored with unlinked members lists them all again, so each is linked now.
        let old: BTreeSet<&String> = stored
            .as_ref()
            .filter(|s| !s.content_hash.is_empty())
            .map(|s| s.member_ids.iter().collect())
            .unwrap_or_default();
        let new: BTreeSet<&String> = group.member_ids.iter().collect();
        let added: Vec<&String> = new.difference(&old).copied().collect();
        let removed: Vec<&String> = old.difference(&new).copied().collect();
        let employees = self
            .employees_of(context, added.iter().chain(removed.iter()).copied())
            .await?;
        let mut unlinked = 0;
        for id in &added {
            match employees.get(*id) {
                Some(employee_id) => {
                    self.set_membership(context, employee_id, &group_id, true)
                        .await?
                }
                None => unlinked += 1,
            }
        }
        for id in &removed {
            if let Some(employee_id) = employees.get(*id) {
                self.set_membership(context, employee_id, &group_id, false)
                    .await?;
            }
        }

        let now = storage_time(Utc::now());
        let renamed = stored.as_ref().filter(|s| s.name != group.name);
        if stored.is_none() || renamed.is_some() {
            if let Some(old) = renamed {
                self.commit(
                    context,
                    vec![self.delete(&context.pk, &name_sk(&old.name, &group_id))],
                )
                .await?;
            }
            let name_item = GroupNameItem {
                pk: context.pk.clone(),
                sk: name_sk(&group.name, &group_id),
                group_id: group_id.clone(),
                name: group.name.clone(),
                kind: GroupKind::Directory,
            };
            self.commit(context, vec![self.store.put_replace(&name_item)?])
                .await?;
        }
        let item = DirectoryGroupItem {
            pk: context.pk.clone(),
            sk,
            group_id,
            name: group.name.clone(),
            kind: GroupKind::Directory,
            created_at: stored.map(|s| s.created_at).unwrap_or_else(|| now.clone()),
            provider: context.provider,
            provider_group_id: group.id.clone(),
            email: group.email.clone(),
            member_ids: group.member_ids.clone(),
            content_hash: if unlinked == 0 { hash } else { String::new() },
        };
        self.commit(context, vec![self.store.put_replace(&item)?])
            .await?;
        if unlinked > 0 {
            info!(tenant_id = %context.tenant_id, provider = %context.provider, unlinked, "group members without a directory record yet; the next sync links them");
        }
        Ok(())
    }

    pub(crate) async fn remove_group(
        &self,
        context: &Context<'_>,
        provider_group_id: &str,
    ) -> Result<(), ApplyError> {
        let group_id = directory::directory_group_id(context.provider, provider_group_id);
        let sk = table::group_sk(&group_id);
        let Some(stored) = self
            .store
            .get::<DirectoryGroupItem>(&context.pk, &sk)
            .await?
        else {
            return Ok(());
        };
        let employees = self.employees_of(context, stored.member_ids.iter()).await?;
        for employee_id in employees.values() {
            self.set_membership(context, employee_id, &group_id, false)
                .await?;
        }
        self.commit(
            context,
            vec![
                self.delete(&context.pk, &name_sk(&stored.name, &group_id)),
                self.delete(&context.pk, &sk),
            ],
        )
        .await?;
        info!(tenant_id = %context.tenant_id, provider = %context.provider, group_id, "directory group removed");
        Ok(())
    }

    /// Maps directory user ids to the employees they are linked to.
    async fn employees_of(
        &self,
        context: &Context<'_>,
        ids: impl Iterator<Item = &String>,
    ) -> Result<std::collections::HashMap<String, String>, ApplyError> {
        let keys: Vec<Key> = ids
            .map(|id| {
                (
                    context.pk.clone(),
                    directory::directory_user_sk(context.provider, id),
                )
            })
            .collect();
        let items = self.store.get_items(&keys).await?;
        Ok(items
            .into_values()
            .filter_map(|item| decode::<DirectoryUserItem>(item).ok())
            .filter_map(|user| user.employee_id.map(|e| (user.user.id, e)))
            .collect())
    }

    async fn set_membership(
        &self,
        context: &Context<'_>,
        employee_id: &str,
        group_id: &str,
        member: bool,
    ) -> Result<(), ApplyError> {
        let expression = if member {
            "ADD groups :group"
        } else {
            "DELETE groups :group"
        };
        let update = self.update(
            &context.pk,
            &table::employee_sk(employee_id),
            expression,
            vec![(":group", AttributeValue::Ss(vec![group_id.to_owned()]))],
            &[],
            Some("attribute_exists(pk)"),
        );
        match self.commit(context, vec![update]).await {
            Ok(()) => Ok(()),
            // The employee was removed meanwhile; there is no membership to keep.
            Err(ApplyError::Transact(error)) if error.condition_failed(0) => Ok(()),
            Err(error) => Err(error),
        }
    }
}
