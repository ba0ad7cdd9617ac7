//! Reads the SAM template: the functions with their environment and event sources, the
//! DynamoDB tables and the SQS queues. Only what the local stack needs is modelled; everything
//! else in the template is ignored here and checked by the template linters.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml_ng::Value;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {path} could not be read: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("resource {resource}: {reason}")]
    Invalid { resource: String, reason: String },
}

fn invalid(resource: &str, reason: impl Into<String>) -> TemplateError {
    TemplateError::Invalid {
        resource: resource.to_owned(),
        reason: reason.into(),
    }
}

/// A reference from one resource to another, as CloudFormation intrinsics express it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `!Ref Name`: a queue URL, a table name or a parameter value.
    Ref(String),
    /// `!GetAtt Name.Attribute`.
    GetAtt(String, String),
    /// A literal string.
    Literal(String),
}

#[derive(Debug, Clone)]
pub struct Template {
    pub parameters: BTreeMap<String, String>,
    pub functions: BTreeMap<String, Function>,
    pub tables: BTreeMap<String, Value>,
    pub queues: BTreeMap<String, Value>,
    /// SES email identities (`AWS::SES::EmailIdentity`), by logical id.
    pub email_identities: BTreeMap<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    pub timeout_seconds: u64,
    pub environment: BTreeMap<String, Reference>,
    pub http_routes: Vec<HttpRoute>,
    pub queue_sources: Vec<QueueSource>,
    pub schedules: Vec<Schedule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub method: String,
    pub path: String,
    /// The HTTP API authorizer that guards the route, if any.
    pub authorizer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSource {
    pub queue: String,
    pub batch_size: usize,
    pub batching_window_seconds: u64,
    pub report_batch_item_failures: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub name: String,
    pub expression: String,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let root: Value = serde_yaml_ng::from_str(text)?;
        let globals = root
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .cloned()
            .unwrap_or(Value::Null);

        let mut parameters = BTreeMap::new();
        if let Some(Value::Mapping(params)) = root.get("Parameters") {
            for (name, definition) in params {
                if let (Some(name), Some(default)) = (name.as_str(), definition.get("Default")) {
                    parameters.insert(name.to_owned(), scalar_text(default).unwrap_or_default());
                }
            }
        }

        let mut template = Template {
            parameters,
            functions: BTreeMap::new(),
            tables: BTreeMap::new(),
            queues: BTreeMap::new(),
            email_identities: BTreeMap::new(),
        };
        let Some(Value::Mapping(resources)) = root.get("Resources") else {
            return Err(invalid(
                "Resources",
                "the template has no Resources section",
            ));
        };
        for (name, resource) in resources {
            let name = name
                .as_str()
                .ok_or_else(|| invalid("Resources", "a resource name is not a string"))?
                .to_owned();
            let properties = resource.get("Properties").cloned().unwrap_or(Value::Null);
            match resource.get("Type").and_then(Value::as_str) {
                Some("AWS::Serverless::Function") => {
                    let function = parse_function(&name, &properties, &globals)?;
                    template.functions.insert(name, function);
                }
                Some("AWS::DynamoDB::Table") => {
                    template.tables.insert(name, properties);
                }
                Some("AWS::SQS::Queue") => {
                    template.queues.insert(name, properties);
                }
                Some("AWS::SES::EmailIdentity") => {
                    template.email_identities.insert(name, properties);
                }
                _ => {}
            }
        }
        Ok(template)
    }
}

fn parse_function(
    name: &str,
    properties: &Value,
    globals: &Value,
) -> Result<Function, TemplateError> {
    let timeout_seconds = properties
        .get("Timeout")
        .or_else(|| globals.get("Timeout"))
        .and_then(Value::as_u64)
        .unwrap_or(3);

    let mut environment = BTreeMap::new();
    for source in [globals, properties] {
        if let Some(Value::Mapping(variables)) =
            source.get("Environment").and_then(|e| e.get("Variables"))
        {
            for (key, value) in variables {
                let key = key
                    .as_str()
                    .ok_or_else(|| invalid(name, "an environment variable name is not a string"))?;
                environment.insert(
                    key.to_owned(),
                    reference(value).ok_or_else(|| {
                        invalid(
                            name,
                            format!("environment variable {key} has an unsupported value"),
                        )
                    })?,
                );
            }
        }
    }

    let mut function = Function {
        logical_id: name.to_owned(),
        timeout_seconds,
        environment,
        http_routes: Vec::new(),
        queue_sources: Vec::new(),
        schedules: Vec::new(),
    };
    let Some(Value::Mapping(events)) = properties.get("Events") else {
        return Ok(function);
    };
    for (event_name, event) in events {
        let event_name = event_name.as_str().unwrap_or_default().to_owned();
        let event_properties = event.get("Properties").cloned().unwrap_or(Value::Null);
        match event.get("Type").and_then(Value::as_str) {
            Some("HttpApi") => {
                let method = event_properties
                    .get("Method")
                    .and_then(Value::as_str)
                    .unwrap_or("ANY")
                    .to_uppercase();
                let path = event_properties
                    .get("Path")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        invalid(name, format!("HttpApi event {event_name} has no Path"))
                    })?;
                let authorizer = event_properties
                    .get("Auth")
                    .and_then(|auth| auth.get("Authorizer"))
                    .and_then(Value::as_str)
                    .filter(|name| *name != "NONE")
                    .map(str::to_owned);
                function.http_routes.push(HttpRoute {
                    method,
                    path: path.to_owned(),
                    authorizer,
                });
            }
            Some("SQS") => {
                let queue = match event_properties.get("Queue").and_then(reference) {
                    Some(Reference::GetAtt(queue, attribute)) if attribute == "Arn" => queue,
                    _ => {
                        return Err(invalid(
                            name,
                            format!(
                                "SQS event {event_name} must name its queue with !GetAtt Queue.Arn"
                            ),
                        ));
                    }
                };
                let report_batch_item_failures = event_properties
                    .get("FunctionResponseTypes")
                    .and_then(Value::as_sequence)
                    .is_some_and(|types| {
                        types
                            .iter()
                            .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
                    });
                function.queue_sources.push(QueueSource {
                    queue,
                    batch_size: event_properties
                        .get("BatchSize")
                        .and_then(Value::as_u64)
                        .unwrap_or(10) as usize,
                    batching_window_seconds: event_properties
                        .get("MaximumBatchingWindowInSeconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(0),
                    report_batch_item_failures,
                });
            }
            Some("Schedule") | Some("ScheduleV2") => {
                let expression = event_properties
                    .get("Schedule")
                    .or_else(|| event_properties.get("ScheduleExpression"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        invalid(name, format!("schedule {event_name} has no expression"))
                    })?;
                function.schedules.push(Schedule {
                    name: event_name,
                    expression: expression.to_owned(),
                });
            }
            Some(other) => {
                return Err(invalid(
                    name,
                    format!(
                        "event {event_name} has type {other}, which the local runner does not emulate"
                    ),
                ));
            }
            None => return Err(invalid(name, format!("event {event_name} has no Type"))),
        }
    }
    Ok(function)
}

/// Reads a value that is a literal or a `Ref` / `GetAtt` in short or long form.
pub fn reference(value: &Value) -> Option<Reference> {
    if let Some(text) = scalar_text(value) {
        return Some(Reference::Literal(text));
    }
    if let Value::Tagged(tagged) = value {
        let inner = tagged.value.as_str()?;
        return match tagged.tag.to_string().as_str() {
            "!Ref" => Some(Reference::Ref(inner.to_owned())),
            "!GetAtt" => inner.split_once('.').map(|(resource, attribute)| {
                Reference::GetAtt(resource.to_owned(), attribute.to_owned())
            }),
            _ => None,
        };
    }
    if let Some(target) = value.get("Ref").and_then(Value::as_str) {
        return Some(Reference::Ref(target.to_owned()));
    }
    let parts = value.get("Fn::GetAtt")?.as_sequence()?;
    match parts.as_slice() {
        [resource, attribute] => Some(Reference::GetAtt(
            resource.as_str()?.to_owned(),
            attribute.as_str()?.to_owned(),
        )),
        _ => None,
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_reference_forms() {
        let short: Value = serde_yaml_ng::from_str("!GetAtt Queue.Arn").unwrap();
        let long: Value = serde_yaml_ng::from_str("{\"Fn::GetAtt\": [Queue, Arn]}").unwrap();
        let expected = Reference::GetAtt("Queue".into(), "Arn".into());
        assert_eq!(reference(&short), Some(expected.clone()));
        assert_eq!(reference(&long), Some(expected));
        let by_ref: Value = serde_yaml_ng::from_str("!Ref Table").unwrap();
        assert_eq!(reference(&by_ref), Some(Reference::Ref("Table".into())));
    }

    #[test]
    fn unsupported_event_type_rejected() {
        let text = "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E:\n          Type: Kinesis\n";
        let error = Template::parse(text).unwrap_err();
        assert!(error.to_string().contains("Kinesis"), "{error}");
    }
}
