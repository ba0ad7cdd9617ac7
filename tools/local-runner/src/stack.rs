//! Creates the template's tables and queues in the local AWS stand-in and resolves the
//! references functions use (`!Ref Table`, `!Ref Queue`, `!GetAtt Queue.Arn`) to what was
//! created. Each stack's resource names start with its own prefix, so several stacks (one per
//! test) share one moto server without touching each other.

use std::collections::{BTreeMap, HashMap};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use rollcall::error::AwsError;
use serde_yaml_ng::Value;

use crate::template::{Reference, Template, reference};

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("resource {resource}: {reason}")]
    Template { resource: String, reason: String },
    #[error("reference to {0} does not match a table, queue or parameter in the template")]
    UnknownReference(String),
}

fn template_error(resource: &str, reason: impl Into<String>) -> StackError {
    StackError::Template {
        resource: resource.to_owned(),
        reason: reason.into(),
    }
}

/// The resources created for one template.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    pub prefix: String,
    pub table_names: BTreeMap<String, String>,
    pub queues: BTreeMap<String, Queue>,
    parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Queue {
    pub name: String,
    pub url: String,
    pub arn: String,
}

impl Stack {
    /// Creates every table and queue in `template`, named `<prefix>-<logical id>`.
    pub async fn create(
        sdk: &SdkConfig,
        template: &Template,
        prefix: &str,
    ) -> Result<Self, StackError> {
        let mut stack = Stack {
            prefix: prefix.to_owned(),
            parameters: template.parameters.clone(),
            ..Default::default()
        };
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        for (logical_id, properties) in &template.tables {
            let name = format!("{prefix}-{logical_id}");
            create_table(&dynamodb, logical_id, &name, properties).await?;
            stack.table_names.insert(logical_id.clone(), name);
        }

        let sqs = aws_sdk_sqs::Client::new(sdk);
        for (logical_id, properties) in &template.queues {
            let queue = create_queue(&sqs, logical_id, prefix, properties).await?;
            stack.queues.insert(logical_id.clone(), queue);
        }
        // Redrive policies name other queues, so they are set once every queue exists.
        for (logical_id, properties) in &template.queues {
            if let Some(policy) = properties.get("RedrivePolicy") {
                let policy = stack.redrive_policy(logical_id, policy)?;
                sqs.set_queue_attributes()
                    .queue_url(&stack.queues[logical_id].url)
                    .attributes(QueueAttributeName::RedrivePolicy, policy)
                    .send()
                    .await
                    .map_err(|e| AwsError::sqs("SetQueueAttributes", e))?;
            }
        }

        // SES only sends from verified identities; moto verifies one when it is created.
        let ses = aws_sdk_sesv2::Client::new(sdk);
        for (logical_id, properties) in &template.email_identities {
            let identity = properties
                .get("EmailIdentity")
                .and_then(reference)
                .ok_or_else(|| template_error(logical_id, "EmailIdentity is missing"))?;
            let identity = stack.resolve(&identity)?;
            ses.create_email_identity()
                .email_identity(&identity)
                .send()
                .await
                .map_err(|e| AwsError::new("SES", "CreateEmailIdentity", e))?;
        }
        Ok(stack)
    }

    /// Resolves a reference the way CloudFormation would for this stack.
    pub fn resolve(&self, reference: &Reference) -> Result<String, StackError> {
        match reference {
            Reference::Literal(text) => Ok(text.clone()),
            Reference::Ref(name) => {
                if let Some(table) = self.table_names.get(name) {
                    return Ok(table.clone());
                }
                if let Some(queue) = self.queues.get(name) {
                    return Ok(queue.url.clone());
                }
                self.parameters
                    .get(name)
                    .cloned()
                    .ok_or_else(|| StackError::UnknownReference(name.clone()))
            }
            Reference::GetAtt(name, attribute) => {
                let queue = self.queues.get(name);
                match (queue, attribute.as_str()) {
                    (Some(queue), "Arn") => Ok(queue.arn.clone()),
                    (Some(queue), "QueueName") => Ok(queue.name.clone()),
                    (Some(queue), "QueueUrl") => Ok(queue.url.clone()),
                    _ => match (self.table_names.get(name), attribute.as_str()) {
                        (Some(table), "Arn") => Ok(format!(
                            "arn:aws:dynamodb:us-east-1:123456789012:table/{table}"
                        )),
                        _ => Err(StackError::UnknownReference(format!("{name}.{attribute}"))),
                    },
                }
            }
        }
    }

    /// Resolves a function's environment variables.
    pub fn environment(
        &self,
        function: &crate::template::Function,
    ) -> Result<HashMap<String, String>, StackError> {
        function
            .environment
            .iter()
            .map(|(name, value)| Ok((name.clone(), self.resolve(value)?)))
            .collect()
    }

    /// Sets a template parameter, as `sam deploy --parameter-overrides` would.
    pub fn set_parameter(&mut self, name: &str, value: impl Into<String>) {
        self.parameters.insert(name.to_owned(), value.into());
    }

    pub fn queue(&self, logical_id: &str) -> Result<&Queue, StackError> {
        self.queues
            .get(logical_id)
            .ok_or_else(|| StackError::UnknownReference(logical_id.to_owned()))
    }

    pub fn table_name(&self, logical_id: &str) -> Result<&str, StackError> {
        self.table_names
            .get(logical_id)
            .map(String::as_str)
            .ok_or_else(|| StackError::UnknownReference(logical_id.to_owned()))
    }

    fn redrive_policy(&self, logical_id: &str, policy: &Value) -> Result<String, StackError> {
        let target = policy
            .get("deadLetterTargetArn")
            .and_then(reference)
            .ok_or_else(|| {
                template_error(logical_id, "RedrivePolicy has no deadLetterTargetArn")
            })?;
        let max_receive_count = policy
            .get("maxReceiveCount")
            .and_then(Value::as_u64)
            .ok_or_else(|| template_error(logical_id, "RedrivePolicy has no maxReceiveCount"))?;
        let policy = serde_json::json!({
            "deadLetterTargetArn": self.resolve(&target)?,
            "maxReceiveCount": max_receive_count,
        });
        Ok(policy.to_string())
    }
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    logical_id: &str,
    name: &str,
    properties: &Value,
) -> Result<(), StackError> {
    let attributes = properties
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .ok_or_else(|| template_error(logical_id, "AttributeDefinitions is missing"))?;
    let mut definitions = Vec::new();
    for attribute in attributes {
        let attribute_name = text(attribute, "AttributeName", logical_id)?;
        let attribute_type =
            ScalarAttributeType::from(text(attribute, "AttributeType", logical_id)?.as_str());
        definitions.push(
            AttributeDefinition::builder()
                .attribute_name(attribute_name)
                .attribute_type(attribute_type)
                .build()
                .map_err(|e| template_error(logical_id, e.to_string()))?,
        );
    }

    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(definitions))
        .set_key_schema(Some(key_schema(properties.get("KeySchema"), logical_id)?));
    if let Some(indexes) = properties
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
    {
        for index in indexes {
            let projection_type = index
                .get("Projection")
                .and_then(|p| p.get("ProjectionType"))
                .and_then(Value::as_str)
                .unwrap_or("ALL");
            let global_index = GlobalSecondaryIndex::builder()
                .index_name(text(index, "IndexName", logical_id)?)
                .set_key_schema(Some(key_schema(index.get("KeySchema"), logical_id)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(projection_type))
                        .build(),
                )
                .build()
                .map_err(|e| template_error(logical_id, e.to_string()))?;
            request = request.global_secondary_indexes(global_index);
        }
    }
    request
        .send()
        .await
        .map_err(|e| AwsError::dynamodb("CreateTable", e))?;

    if let Some(ttl) = properties.get("TimeToLiveSpecification") {
        let specification = TimeToLiveSpecification::builder()
            .attribute_name(text(ttl, "AttributeName", logical_id)?)
            .enabled(ttl.get("Enabled").and_then(Value::as_bool).unwrap_or(false))
            .build()
            .map_err(|e| template_error(logical_id, e.to_string()))?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(specification)
            .send()
            .await
            .map_err(|e| AwsError::dynamodb("UpdateTimeToLive", e))?;
    }
    Ok(())
}

fn key_schema(
    value: Option<&Value>,
    logical_id: &str,
) -> Result<Vec<KeySchemaElement>, StackError> {
    let elements = value
        .and_then(Value::as_sequence)
        .ok_or_else(|| template_error(logical_id, "KeySchema is missing"))?;
    elements
        .iter()
        .map(|element| {
            KeySchemaElement::builder()
                .attribute_name(text(element, "AttributeName", logical_id)?)
                .key_type(KeyType::from(
                    text(element, "KeyType", logical_id)?.as_str(),
                ))
                .build()
                .map_err(|e| template_error(logical_id, e.to_string()))
        })
        .collect()
}

async fn create_queue(
    client: &aws_sdk_sqs::Client,
    logical_id: &str,
    prefix: &str,
    properties: &Value,
) -> Result<Queue, StackError> {
    let fifo = properties
        .get("FifoQueue")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let name = if fifo {
        format!("{prefix}-{logical_id}.fifo")
    } else {
        format!("{prefix}-{logical_id}")
    };

    let mut request = client.create_queue().queue_name(&name);
    let numeric = [
        ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
        (
            "MessageRetentionPeriod",
            QueueAttributeName::MessageRetentionPeriod,
        ),
        ("DelaySeconds", QueueAttributeName::DelaySeconds),
        (
            "ReceiveMessageWaitTimeSeconds",
            QueueAttributeName::ReceiveMessageWaitTimeSeconds,
        ),
        ("MaximumMessageSize", QueueAttributeName::MaximumMessageSize),
    ];
    for (property, attribute) in numeric {
        if let Some(value) = properties.get(property).and_then(Value::as_u64) {
            request = request.attributes(attribute, value.to_string());
        }
    }
    if fifo {
        request = request.attributes(QueueAttributeName::FifoQueue, "true");
    }
    let url = request
        .send()
        .await
        .map_err(|e| AwsError::sqs("CreateQueue", e))?
        .queue_url
        .ok_or_else(|| template_error(logical_id, "CreateQueue returned no URL"))?;

    let attributes = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| AwsError::sqs("GetQueueAttributes", e))?;
    let arn = attributes
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| template_error(logical_id, "GetQueueAttributes returned no ARN"))?;
    Ok(Queue { name, url, arn })
}

fn text(value: &Value, key: &str, logical_id: &str) -> Result<String, StackError> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| template_error(logical_id, format!("{key} is missing")))
}
