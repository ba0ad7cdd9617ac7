//! Consumes the mail queue (enrolment links, administrator invitations) and sends each email
//! with SES v2.
//!
//! A marker item per mail id records a sent mail, so a redelivered message is not sent twice.
//! The marker is written after SES accepts the mail: if the function stops between the two, the
//! redelivery sends the mail again, which is better than losing it.

use std::collections::BTreeSet;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use chrono::{Duration, Utc};
use rollcall::aws::Clients;
use rollcall::config::{ConfigError, Lookup, required};
use rollcall::envelope::MailMessage;
use rollcall::error::AwsError;
use rollcall::queue::{DeadLetterQueue, batch_response};
use rollcall::store::{Key, Store};
use rollcall::table;
use tracing::{error, info, warn};

/// How long a sent-mail marker lives: longer than the mail queue's 4-day retention.
const MARKER_TTL: Duration = Duration::days(14);

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    /// The verified SES identity mail is sent from.
    pub sender: String,
    pub dead_letter_queue_url: String,
}

impl Config {
    pub fn from_lookup(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(lookup, "TABLE_NAME")?,
            sender: required(lookup, "MAIL_FROM")?,
            dead_letter_queue_url: required(lookup, "MAIL_DLQ_URL")?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("SQS record at index {0} has no messageId, so its failure could not be reported")]
    MissingMessageId(usize),
}

#[derive(Debug, Clone)]
pub struct Mailer {
    store: Store,
    ses: aws_sdk_sesv2::Client,
    dead_letter_queue: DeadLetterQueue,
    sender: String,
}

fn marker_key(mail: &MailMessage) -> Key {
    (
        table::tenant_pk(&mail.tenant_id),
        format!("MAIL#{}", mail.mail_id),
    )
}

impl Mailer {
    pub fn new(clients: &Clients, config: Config) -> Self {
        Self {
            store: Store::new(clients.dynamodb.clone(), config.table_name),
            ses: aws_sdk_sesv2::Client::new(&clients.sdk),
            dead_letter_queue: DeadLetterQueue::new(
                clients.sqs.clone(),
                config.dead_letter_queue_url,
            ),
            sender: config.sender,
        }
    }

    /// Sends the batch's mails and returns the records to retry.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, MailerError> {
        let mut failed = BTreeSet::new();
        let mut mails = Vec::new();
        for (index, record) in event.records.into_iter().enumerate() {
            let message_id = record
                .message_id
                .clone()
                .ok_or(MailerError::MissingMessageId(index))?;
            let body = record.body.as_deref().unwrap_or_default();
            match MailMessage::from_body(body) {
                Ok(mail) => mails.push((message_id, mail)),
                Err(reason) => {
                    warn!(message_id, reason = %reason, "malformed mail message; moving it to the dead-letter queue");
                    if self
                        .dead_letter_queue
                        .send(body, &message_id, &reason.to_string())
                        .await
                        .is_err()
                    {
                        failed.insert(message_id);
                    }
                }
            }
        }

        let keys: Vec<Key> = mails.iter().map(|(_, mail)| marker_key(mail)).collect();
        let sent = match self.store.existing_keys(&keys).await {
            Ok(sent) => sent,
            Err(error) => {
                error!(error = %error, "sent-mail marker lookup failed; retrying the batch");
                failed.extend(mails.iter().map(|(id, _)| id.clone()));
                return Ok(batch_response(failed));
            }
        };

        let expires_at = (Utc::now() + MARKER_TTL).timestamp();
        for (message_id, mail) in &mails {
            if sent.contains(&marker_key(mail)) {
                info!(message_id, mail_id = mail.mail_id, "mail already sent");
                continue;
            }
            match self.send(mail).await {
                Ok(()) => {
                    info!(message_id, tenant_id = %mail.tenant_id, mail_id = mail.mail_id, "mail sent");
                    if let Err(error) = self
                        .store
                        .put_markers(&[marker_key(mail)], expires_at)
                        .await
                    {
                        warn!(message_id, error = %error, "sent-mail marker not written; a redelivery would send the mail again");
                    }
                }
                Err(error) if error.is_retryable() && !is_rejection(&error) => {
                    warn!(message_id, error = %error, "mail not sent; it will be retried");
                    failed.insert(message_id.clone());
                }
                Err(error) => {
                    error!(message_id, error = %error, "SES rejected the mail; moving it to the dead-letter queue");
                    let body = serde_json::to_string(mail).unwrap_or_default();
                    if self
                        .dead_letter_queue
                        .send(&body, message_id, &error.to_string())
                        .await
                        .is_err()
                    {
                        failed.insert(message_id.clone());
                    }
                }
            }
        }
        Ok(batch_response(failed))
    }

    async fn send(&self, mail: &MailMessage) -> Result<(), AwsError> {
        let text = |value: &str| {
            Content::builder()
                .data(value)
                .charset("UTF-8")
                .build()
                .expect("data is set")
        };
        let message = Message::builder()
            .subject(text(&mail.subject))
            .body(Body::builder().text(text(&mail.text)).build())
            .build();
        self.ses
            .send_email()
            .from_email_address(&self.sender)
            .destination(
                Destination::builder()
                    .to_addresses(mail.to.as_str())
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::new("SES", "SendEmail", e))
    }
}

/// SES errors that no retry can fix: an unverified sender or a rejected message.
fn is_rejection(error: &AwsError) -> bool {
    matches!(
        error.code.as_str(),
        "MessageRejected"
            | "MailFromDomainNotVerifiedException"
            | "BadRequestException"
            | "AccountSuspendedException"
            | "SendingPausedException"
    )
}
