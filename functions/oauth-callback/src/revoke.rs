//! Deleting an integration. The request marks it `revoking` (which stops its syncs and turns
//! away every directory change still in flight), deletes its stored credential and queues the
//! cascade that removes its data. The integration item goes last, when the cascade ends.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use rollcall::directory::{REVOCATION_JOB_VERSION, RevocationJob, RevocationStep};
use rollcall::error::AwsError;
use rollcall::integration::{IntegrationItem, IntegrationStatus, Provider};
use rollcall::problem::Problem;
use rollcall::table;
use rollcall::telemetry::storage_time;
use serde_json::json;
use tracing::{error, info};

use admin_api::auth::Administrator;
use admin_api::http::{internal, json, not_found, path_parameter};

use crate::{OAuthCallback, unknown_provider};

impl OAuthCallback {
    pub(crate) async fn revoke(
        &self,
        admin: &Administrator,
        request: &Request,
    ) -> Result<Response<Body>, Problem> {
        admin.require_write()?;
        let name = path_parameter(request, "provider")?;
        let provider = Provider::parse(&name).ok_or_else(|| unknown_provider(&name))?;

        let integration = self
            .integration(&admin.tenant_id, provider)
            .await?
            .ok_or_else(|| not_found("integration"))?;
        let repeated = integration.status == IntegrationStatus::Revoking;
        let revocation_id = self.mark_revoking(admin, integration).await?;
        self.secrets
            .delete(&admin.tenant_id, provider)
            .await
            .map_err(|e| {
                error!(error = %e, tenant_id = %admin.tenant_id, %provider, "integration secret not deleted");
                retry_problem("its stored credential could not be deleted")
            })?;
        self.queue_revocation(admin, provider, &revocation_id)
            .await?;

        if repeated {
            info!(tenant_id = %admin.tenant_id, %provider, revocation_id, "integration revocation requested again; its cascade is queued again");
        } else {
            info!(tenant_id = %admin.tenant_id, %provider, revocation_id, revoked_by = admin.email, "integration revocation started");
        }
        Ok(json(
            StatusCode::ACCEPTED,
            &json!({"provider": provider, "status": IntegrationStatus::Revoking, "revocation_id": revocation_id}),
        ))
    }

    /// Sets status `revoking` and takes the integration off the hourly schedule. Returns the
    /// revocation id; a repeated request reuses the one under way.
    async fn mark_revoking(
        &self,
        admin: &Administrator,
        integration: IntegrationItem,
    ) -> Result<String, Problem> {
        if integration.status == IntegrationStatus::Revoking
            && let Some(id) = integration.revocation_id
        {
            return Ok(id);
        }
        let revocation_id = uuid::Uuid::new_v4().to_string();
        let result = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table_name())
            .key(table::PK, AttributeValue::S(integration.pk.clone()))
            .key(table::SK, AttributeValue::S(integration.sk.clone()))
            .update_expression(
                "SET #status = :revoking, revocation_id = :id, revoked_at = :now, \
                 revoked_by = :by REMOVE gsi1pk, gsi1sk, delta_link",
            )
            .condition_expression("attribute_exists(pk) AND #status <> :revoking")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":revoking", AttributeValue::S("revoking".to_owned()))
            .expression_attribute_values(":id", AttributeValue::S(revocation_id.clone()))
            .expression_attribute_values(":now", AttributeValue::S(storage_time(Utc::now())))
            .expression_attribute_values(":by", AttributeValue::S(admin.email.clone()))
            .send()
            .await
            .map_err(|e| AwsError::dynamodb("UpdateItem", e));
        match result {
            Ok(_) => Ok(revocation_id),
            Err(error) if error.is_conditional_check_failed() => {
                // Another request got there first, or the cascade already finished.
                let current = self
                    .integration(&admin.tenant_id, integration.provider)
                    .await?
                    .ok_or_else(|| not_found("integration"))?;
                current
                    .revocation_id
                    .ok_or_else(|| retry_problem("it changed during the request"))
            }
            Err(error) => Err(internal(error.into())),
        }
    }

    async fn queue_revocation(
        &self,
        admin: &Administrator,
        provider: Provider,
        revocation_id: &str,
    ) -> Result<(), Problem> {
        let job = RevocationJob {
            version: REVOCATION_JOB_VERSION,
            tenant_id: admin.tenant_id.clone(),
            provider,
            revocation_id: revocation_id.to_owned(),
            step: RevocationStep::Users,
            sent_at: Utc::now(),
        };
        let body = serde_json::to_string(&job).unwrap_or_default();
        self.sqs
            .send_message()
            .queue_url(&self.config.directory_queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| {
                let e = AwsError::sqs("SendMessage", e);
                error!(error = %e, tenant_id = %admin.tenant_id, %provider, revocation_id, "revocation not queued");
                retry_problem("the removal of its data could not be queued")
            })?;
        Ok(())
    }
}

/// Builds the error of a revocation that started but did not queue all its work. The
/// integration stays `revoking`, so no sync runs, and repeating the request finishes the job.
fn retry_problem(what: &str) -> Problem {
    Problem::new(
        503,
        "Service Unavailable",
        format!("the integration is marked for revocation, but {what}; send the same DELETE again"),
    )
}
