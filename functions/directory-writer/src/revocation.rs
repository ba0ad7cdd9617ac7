//! The cascade that removes a revoked integration's data, one step and page at a time.
//!
//! Each page reads the first items left of its kind and deletes them, so a page that runs
//! again after a crash continues with what is left. Two copies of the same message do no
//! harm either. An employee's delete is conditioned on its sources and licence state, and the
//! seat is freed in that same transaction, so it is freed once. A message queues the next
//! page before it is acknowledged, so a crash between the two only repeats work.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use chrono::Utc;
use rollcall::directory::{
    self, DirectoryGroupItem, DirectoryUserItem, REVOCATION_JOB_VERSION, RevocationJob,
    RevocationStep,
};
use rollcall::error::AwsError;
use rollcall::integration::{self, IntegrationItem, IntegrationStatus, Provider};
use rollcall::queue::send_all;
use rollcall::store::decode;
use rollcall::table;
use tracing::info;

use crate::users::Departure;
use crate::{ApplyError, Context, DirectoryWriter};

/// Items one page reads.
const PAGE_SIZE: i32 = 25;

type Item = HashMap<String, AttributeValue>;

impl DirectoryWriter {
    /// Runs the cascade from `job`'s step for up to the time budget, then queues the rest.
    pub(crate) async fn revoke(&self, job: &RevocationJob) -> Result<(), ApplyError> {
        let context = Context {
            tenant_id: &job.tenant_id,
            provider: job.provider,
            pk: table::tenant_pk(&job.tenant_id),
            guarded: false,
        };
        let integration: Option<IntegrationItem> = self
            .store
            .get(&context.pk, &integration::integration_sk(job.provider))
            .await?;
        let current = integration.is_some_and(|i| {
            i.status == IntegrationStatus::Revoking
                && i.revocation_id.as_deref() == Some(job.revocation_id.as_str())
        });
        if !current {
            info!(tenant_id = %job.tenant_id, provider = %job.provider, revocation_id = job.revocation_id, "revocation already finished; message dropped");
            return Ok(());
        }

        let deadline = Instant::now() + self.config.revocation_budget;
        let mut step = job.step;
        loop {
            let finished = self.revocation_page(&context, step).await?;
            if finished {
                step = match step {
                    RevocationStep::Users => RevocationStep::Groups,
                    RevocationStep::Groups => RevocationStep::Leftovers,
                    RevocationStep::Leftovers => RevocationStep::Finish,
                    RevocationStep::Finish => {
                        self.finish_revocation(&context, &job.revocation_id).await?;
                        return Ok(());
                    }
                };
            }
            if Instant::now() >= deadline {
                return self.queue_revocation(job, step).await;
            }
        }
    }

    /// Handles one page of `job`'s step and stops there, as a worker that crashed after it
    /// would. Returns true when nothing of the step's kind is left.
    pub async fn revocation_page_of(&self, job: &RevocationJob) -> Result<bool, ApplyError> {
        let context = Context {
            tenant_id: &job.tenant_id,
            provider: job.provider,
            pk: table::tenant_pk(&job.tenant_id),
            guarded: false,
        };
        self.revocation_page(&context, job.step).await
    }

    /// Handles one page of `step`. Returns true when nothing of its kind is left.
    async fn revocation_page(
        &self,
        context: &Context<'_>,
        step: RevocationStep,
    ) -> Result<bool, ApplyError> {
        match step {
            RevocationStep::Users => {
                let page = self
                    .first_items(
                        &context.pk,
                        &directory::directory_user_prefix(context.provider),
                    )
                    .await?;
                for item in &page {
                    let user: DirectoryUserItem = decode(item.clone())?;
                    self.depart(context, user, Departure::Revoked).await?;
                }
                Ok(page.is_empty())
            }
            RevocationStep::Groups => {
                let prefix = table::group_sk(&format!("{}-", context.provider));
                let page = self.first_items(&context.pk, &prefix).await?;
                for item in page.iter().cloned() {
                    let group: DirectoryGroupItem = decode(item)?;
                    self.remove_group(context, &group.provider_group_id).await?;
                }
                Ok(page.is_empty())
            }
            RevocationStep::Leftovers => {
                let mut keys = Vec::new();
                for prefix in leftover_prefixes(context.provider) {
                    keys.extend(
                        self.first_items(&context.pk, &prefix)
                            .await?
                            .into_iter()
                            .filter_map(|item| match item.get(table::SK) {
                                Some(AttributeValue::S(sk)) => Some(sk.clone()),
                                _ => None,
                            }),
                    );
                }
                let finished = keys.is_empty();
                for chunk in keys.chunks(PAGE_SIZE as usize) {
                    let deletes = chunk
                        .iter()
                        .map(|sk| self.delete(&context.pk, sk))
                        .collect();
                    self.commit(context, deletes).await?;
                }
                Ok(finished)
            }
            RevocationStep::Finish => Ok(true),
        }
    }

    /// Reads the first page of items under `prefix`.
    async fn first_items(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, ApplyError> {
        let output = self
            .store
            .client()
            .query()
            .table_name(self.store.table_name())
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_names("#sk", table::SK)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
            .consistent_read(true)
            .limit(PAGE_SIZE)
            .send()
            .await
            .map_err(|e| AwsError::dynamodb("Query", e))?;
        Ok(output.items.unwrap_or_default())
    }

    /// Deletes the integration item, the last trace of the integration.
    async fn finish_revocation(
        &self,
        context: &Context<'_>,
        revocation_id: &str,
    ) -> Result<(), ApplyError> {
        let delete = Delete::builder()
            .table_name(self.store.table_name())
            .key(table::PK, AttributeValue::S(context.pk.clone()))
            .key(
                table::SK,
                AttributeValue::S(integration::integration_sk(context.provider)),
            )
            .condition_expression("#status = :revoking AND revocation_id = :id")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":revoking", AttributeValue::S("revoking".to_owned()))
            .expression_attribute_values(":id", AttributeValue::S(revocation_id.to_owned()))
            .build()
            .expect("table, key and condition are set");
        match self
            .store
            .transact(vec![TransactWriteItem::builder().delete(delete).build()])
            .await
        {
            Ok(()) => {
                info!(tenant_id = %context.tenant_id, provider = %context.provider, revocation_id, "integration revoked; its data is removed");
                Ok(())
            }
            Err(error) if error.condition_failed(0) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    async fn queue_revocation(
        &self,
        job: &RevocationJob,
        step: RevocationStep,
    ) -> Result<(), ApplyError> {
        let next = RevocationJob {
            version: REVOCATION_JOB_VERSION,
            step,
            sent_at: Utc::now(),
            ..job.clone()
        };
        let body = serde_json::to_string(&next)?;
        send_all(&self.sqs, &self.config.directory_queue_url, &[body], None).await?;
        info!(tenant_id = %job.tenant_id, provider = %job.provider, revocation_id = job.revocation_id, ?step, "revocation continues in the next message");
        Ok(())
    }
}

/// Items an integration leaves beside users and groups: activity data without a directory
/// user, and the sync run's lease and checkpoints.
fn leftover_prefixes(provider: Provider) -> [String; 3] {
    [
        format!("ACTIVITY#{provider}#"),
        format!("SYNCRUN#{provider}"),
        format!("SYNCSEEN#{provider}#"),
    ]
}
