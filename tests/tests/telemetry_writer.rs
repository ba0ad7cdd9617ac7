//! The telemetry writer's batch rules, invoked with SQS events as Lambda delivers them, against
//! moto: duplicates, late events, poison records, retryable failures and redrive.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use local_runner::functions::Handler;
use local_runner::poller::Poller;
use rollcall::aws::Clients;
use rollcall::envelope::{TELEMETRY_MESSAGE_VERSION, TelemetryMessage};
use rollcall::ids::TenantId;
use rollcall::table::{AccountItem, AppItem, ProfileItem};
use rollcall::telemetry;
use rollcall_tests::counting::RequestCounter;
use rollcall_tests::{TestStack, eventually, login, sqs_event, telemetry_body};
use serde_json::{Value, json};
use telemetry_writer::{Config, Writer};

fn writer(stack: &TestStack) -> Writer {
    let config = Config::from_lookup(&stack.environment("TelemetryWriterFunction")).unwrap();
    Writer::new(&Clients::new(&stack.sdk), config)
}

fn queue_arn(stack: &TestStack) -> String {
    stack.stack.queue("TelemetryQueue").unwrap().arn.clone()
}

/// Builds a queue message the way ingest does, from events in request form.
fn message(tenant: &str, install_id: &str, email: Option<&str>, events: Vec<Value>) -> String {
    let body = serde_json::to_vec(&telemetry_body(install_id, email, events)).unwrap();
    let parsed = telemetry::parse_batch(&body, Utc::now()).unwrap();
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    let message = TelemetryMessage {
        version: TELEMETRY_MESSAGE_VERSION,
        tenant_id: TenantId::parse(tenant).unwrap(),
        received_at: Utc::now(),
        profile: parsed.profile,
        events: parsed.events,
    };
    serde_json::to_string(&message).unwrap()
}

fn failures(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

#[tokio::test]
async fn duplicate_event_ids_counted_once() {
    let stack = TestStack::create().await;
    let writer = writer(&stack);
    let arn = queue_arn(&stack);
    let body = message(
        "acme",
        "install-1",
        Some("cy@example.com"),
        vec![login(
            "e-1",
            -60,
            "github.com",
            "cy@example.com",
            "password",
        )],
    );

    let first = writer
        .handle(sqs_event(&arn, &[("m-1", &body, 1)]))
        .await
        .unwrap();
    assert!(failures(&first).is_empty());
    let before = stack.items("acme", "").await;

    // The extension retried (new message id), then SQS redelivered the original.
    let again = writer
        .handle(sqs_event(&arn, &[("m-2", &body, 1), ("m-1", &body, 2)]))
        .await
        .unwrap();
    assert!(
        failures(&again).is_empty(),
        "duplicates are acknowledged, not failed"
    );
    assert_eq!(stack.items("acme", "").await, before);
    assert_eq!(stack.drain("LicensingQueue", 10).await.len(), 1);
}

#[tokio::test]
async fn late_event_keeps_last_seen() {
    let stack = TestStack::create().await;
    let writer = writer(&stack);
    let arn = queue_arn(&stack);
    let newer = message(
        "acme",
        "install-1",
        None,
        vec![login(
            "e-new",
            -60,
            "github.com",
            "cy@example.com",
            "password",
        )],
    );
    let older = message(
        "acme",
        "install-1",
        None,
        vec![json!({
        "id": "e-old", "time": rollcall_tests::time(-3_600), "type": "login",
        "app": {"domain": "github.com", "name": "Old Name"}, "account_email": "cy@example.com",
        "login_method": "passkey"})],
    );

    writer
        .handle(sqs_event(&arn, &[("m-1", &newer, 1)]))
        .await
        .unwrap();
    let before: ProfileItem = stack.item("acme", "PROFILE#install-1").await.unwrap();
    let response = writer
        .handle(sqs_event(&arn, &[("m-2", &older, 1)]))
        .await
        .unwrap();
    assert!(failures(&response).is_empty());

    let profile: ProfileItem = stack.item("acme", "PROFILE#install-1").await.unwrap();
    assert_eq!(
        profile.last_seen, before.last_seen,
        "last seen never moves back"
    );
    assert!(
        profile.first_seen < before.first_seen,
        "first seen moves back to the late event"
    );
    let account: AccountItem = stack
        .item("acme", "ACCOUNT#github.com#cy@example.com")
        .await
        .unwrap();
    assert_eq!(account.last_seen, before.last_seen);
    let methods: HashSet<String> = account.login_methods.into_iter().collect();
    assert_eq!(
        methods,
        HashSet::from(["password".to_owned(), "passkey".to_owned()])
    );
    let app: AppItem = stack.item("acme", "APP#github.com").await.unwrap();
    assert_eq!(
        app.app_name, "github.com",
        "the late event's name does not replace the newest one"
    );
}

#[tokio::test]
async fn poison_record_spares_neighbours() {
    let stack = TestStack::create().await;
    let writer = writer(&stack);
    let arn = queue_arn(&stack);
    let good_one = message(
        "acme",
        "install-1",
        None,
        vec![login("e-1", -60, "github.com", "a@example.com", "password")],
    );
    let good_two = message(
        "acme",
        "install-2",
        None,
        vec![login("e-2", -60, "gitlab.com", "b@example.com", "password")],
    );
    let mut future_version: Value = serde_json::from_str(&good_one).unwrap();
    future_version["version"] = json!(99);
    let future_version = future_version.to_string();

    let event = sqs_event(
        &arn,
        &[
            ("m-1", &good_one, 1),
            ("m-2", "{not json", 1),
            ("m-3", &future_version, 1),
            ("m-4", &good_two, 1),
        ],
    );
    let response = writer.handle(event).await.unwrap();

    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": []})
    );
    assert!(
        stack
            .item::<ProfileItem>("acme", "PROFILE#install-1")
            .await
            .is_some()
    );
    assert!(
        stack
            .item::<ProfileItem>("acme", "PROFILE#install-2")
            .await
            .is_some()
    );
    let dead = stack.drain("TelemetryDeadLetterQueue", 10).await;
    assert_eq!(dead.len(), 2);
    let reasons: Vec<&str> = dead
        .iter()
        .map(|(_, attributes)| attributes["failure_reason"].as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("not a valid envelope")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("version 99")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn store_outage_fails_only_affected_records() {
    let stack = TestStack::create().await;
    let mut environment = stack.environment("TelemetryWriterFunction");
    environment.insert("TABLE_NAME".into(), "missing-table".into());
    let writer = Writer::new(
        &Clients::new(&stack.sdk),
        Config::from_lookup(&environment).unwrap(),
    );
    let arn = queue_arn(&stack);
    let good = message(
        "acme",
        "install-1",
        None,
        vec![login("e-1", -60, "github.com", "a@example.com", "password")],
    );

    let response = writer
        .handle(sqs_event(
            &arn,
            &[("m-1", &good, 1), ("m-2", "{not json", 1)],
        ))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]}),
        "the good record is retried; the malformed one went to the dead-letter queue"
    );
    assert_eq!(stack.drain("TelemetryDeadLetterQueue", 10).await.len(), 1);
}

#[tokio::test]
async fn failing_record_redriven_after_max_receives() {
    let stack = TestStack::create().await;
    let mut environment = stack.environment("TelemetryWriterFunction");
    environment.insert("TABLE_NAME".into(), "missing-table".into());
    let writer = std::sync::Arc::new(Writer::new(
        &Clients::new(&stack.sdk),
        Config::from_lookup(&environment).unwrap(),
    ));
    let handler = Handler::Sqs(std::sync::Arc::new(move |event| {
        let writer = writer.clone();
        Box::pin(async move { Ok(serde_json::to_value(writer.handle(event).await?)?) })
    }));
    let function = &stack.template.functions["TelemetryWriterFunction"];
    let poller = Poller {
        function: function.logical_id.clone(),
        queue: stack.stack.queue("TelemetryQueue").unwrap().clone(),
        source: function.queue_sources[0].clone(),
        handler,
        client: stack.sqs.clone(),
        function_timeout: Duration::from_secs(function.timeout_seconds),
        retry_delay: Duration::ZERO,
    };
    let body = message(
        "acme",
        "install-1",
        None,
        vec![login("e-1", -60, "github.com", "a@example.com", "password")],
    );
    stack
        .sqs
        .send_message()
        .queue_url(stack.queue_url("TelemetryQueue"))
        .message_body(&body)
        .send()
        .await
        .unwrap();

    let mut invocations = 0;
    for _ in 0..10 {
        if poller.poll_once().await.unwrap() > 0 {
            invocations += 1;
        }
    }
    assert_eq!(invocations, 5, "maxReceiveCount in the template is 5");
    let dead = stack.drain("TelemetryDeadLetterQueue", 10).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].0, body,
        "the dead-letter queue holds the original message"
    );
}

#[tokio::test]
async fn batch_writes_once_per_item() {
    let stack = TestStack::create().await;
    let counter = RequestCounter::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&stack.sdk)
            .interceptor(counter.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&stack.sdk)
            .interceptor(counter.clone())
            .build(),
    );
    let config = Config::from_lookup(&stack.environment("TelemetryWriterFunction")).unwrap();
    let writer = Writer::new(
        &Clients {
            sdk: stack.sdk.clone(),
            dynamodb,
            sqs,
        },
        config,
    );
    let arn = queue_arn(&stack);

    // Ten messages from one profile, all logging in to the same two apps as one account.
    let bodies: Vec<String> = (0..10)
        .map(|i| {
            message(
                "acme",
                "install-1",
                Some("a@example.com"),
                vec![
                    login(
                        &format!("e-{i}-a"),
                        -600 + i,
                        "github.com",
                        "a@example.com",
                        "password",
                    ),
                    login(
                        &format!("e-{i}-b"),
                        -500 + i,
                        "gitlab.com",
                        "a@example.com",
                        "sso_saml",
                    ),
                ],
            )
        })
        .collect();
    let records: Vec<(String, &str, u32)> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| (format!("m-{i}"), b.as_str(), 1))
        .collect();
    let records: Vec<(&str, &str, u32)> = records
        .iter()
        .map(|(id, b, n)| (id.as_str(), *b, *n))
        .collect();
    let response = writer.handle(sqs_event(&arn, &records)).await.unwrap();
    assert!(response.batch_item_failures.is_empty());

    // One profile, two apps, two accounts: five item writes, plus one marker batch.
    assert_eq!(counter.total("DynamoDB", &["UpdateItem"]), 5);
    assert_eq!(counter.total("DynamoDB", &["BatchWriteItem"]), 1);
    assert_eq!(
        counter.total("SQS", &["SendMessageBatch"]),
        1,
        "one identity observation for the profile"
    );
    assert_eq!(stack.items("acme", "EVENT#").await.len(), 20);
    let drained = eventually(Duration::from_secs(5), || async {
        stack.drain("LicensingQueue", 10).await.len() == 1
    })
    .await;
    assert!(drained);
}
