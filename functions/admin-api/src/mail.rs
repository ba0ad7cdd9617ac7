//! Emails the admin API sends through the mail queue: self-enrolment links and administrator
//! invitations. The mailer function delivers them.

use chrono::{DateTime, Utc};
use rollcall::email::Email;
use rollcall::enrolment::{self, EnrolmentItem};
use rollcall::envelope::{MAIL_MESSAGE_VERSION, MailMessage};
use rollcall::error::AwsError;
use rollcall::ids::TenantId;
use rollcall::store::{Store, StoreError};
use rollcall::table;
use rollcall::telemetry::storage_time;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] AwsError),
    #[error("mail message could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

#[derive(Debug, Clone)]
pub struct Outbox {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    /// The page the extension opens with `?token=...` to redeem an enrolment link.
    pub enrolment_link_base: String,
    /// The admin console's address, for invitations.
    pub console_url: String,
}

impl Outbox {
    async fn enqueue(&self, mail: &MailMessage) -> Result<(), MailError> {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(serde_json::to_string(mail)?)
            .send()
            .await
            .map_err(|e| AwsError::sqs("SendMessage", e))?;
        Ok(())
    }

    /// Stores a new single-use enrolment link for an employee and queues the email that carries
    /// it. Returns when the link expires.
    pub async fn send_enrolment(
        &self,
        store: &Store,
        tenant_id: &TenantId,
        employee_id: &str,
        to: &Email,
    ) -> Result<DateTime<Utc>, MailError> {
        let token = enrolment::generate(tenant_id);
        let now = Utc::now();
        let expires = now + enrolment::LINK_LIFETIME;
        let item = EnrolmentItem {
            pk: table::tenant_pk(tenant_id),
            sk: enrolment::enrolment_sk(&token.secret_sha256),
            employee_id: employee_id.to_owned(),
            email: to.to_string(),
            expires_at: expires.timestamp(),
            used_at: None,
            created_at: storage_time(now),
        };
        store.put(&item).await?;

        let link = format!("{}?token={}", self.enrolment_link_base, token.token);
        let text = format!(
            "Your organisation uses Rollcall to protect your work browser.\n\nOpen this link in the browser you use for work to install the extension and enrol:\n{link}\n\nThe link works once and expires on {}.\n",
            expires.format("%Y-%m-%d %H:%M UTC")
        );
        let mail = MailMessage {
            version: MAIL_MESSAGE_VERSION,
            mail_id: format!("enrolment-{}", &token.secret_sha256[..16]),
            tenant_id: tenant_id.clone(),
            to: to.clone(),
            subject: "Install the browser extension and enrol".to_owned(),
            text,
        };
        self.enqueue(&mail).await?;
        Ok(expires)
    }

    /// Queues the invitation email of a new administrator.
    pub async fn send_invitation(
        &self,
        tenant_id: &TenantId,
        to: &Email,
        invited_by: &str,
    ) -> Result<(), MailError> {
        let mail = MailMessage {
            version: MAIL_MESSAGE_VERSION,
            mail_id: format!(
                "invitation-{tenant_id}-{to}-{}",
                Utc::now().timestamp_millis()
            ),
            tenant_id: tenant_id.clone(),
            to: to.clone(),
            subject: "You are invited to administer Rollcall".to_owned(),
            text: format!(
                "{invited_by} invited you to administer the Rollcall tenant {tenant_id}.\n\nSign in at {} with this email address.\n",
                self.console_url
            ),
        };
        self.enqueue(&mail).await
    }
}
