//! Benchmark: 10,000 telemetry events through ingest and the telemetry writer on moto.
//!
//! Prints the AWS requests each function makes, the DynamoDB items written and the handler CPU
//! time per event. Run it with `scripts/bench`, which starts moto and sets
//! `ROLLCALL_TEST_AWS_ENDPOINT`.
//!
//! Workload: 200 browser profiles, each sending 50 events in two requests of 25 (one heartbeat
//! in five, the rest logins to 30 SaaS apps), as an extension that flushes its queue every 25
//! events would. The writer is fed batches of up to 10 messages, like the event source mapping
//! in the template. Receiving and deleting those messages is the mapping's work, not the
//! function's, so it goes through a client that is not counted.
//!
//! A second part counts the DynamoDB requests auto-license makes per identity observation: for
//! a new employee, for a known employee, and for a redelivered (duplicate) observation.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::Select;
use chrono::Utc;
use cpu_time::ThreadTime;
use rollcall_tests::counting::{RequestCounter, counted_clients};
use rollcall_tests::{TestStack, sqs_event, telemetry_body};
use serde_json::{Value, json};

const PROFILES: usize = 200;
const REQUESTS_PER_PROFILE: usize = 2;
const EVENTS_PER_REQUEST: usize = 25;
const APPS: [(&str, &str); 30] = [
    ("app.slack.com", "oidc_google"),
    ("github.com", "sso_saml"),
    ("www.notion.so", "oidc_google"),
    ("app.asana.com", "password"),
    ("www.figma.com", "oidc_google"),
    ("zoom.us", "sso_saml"),
    ("app.hubspot.com", "password"),
    ("login.salesforce.com", "sso_saml"),
    ("www.dropbox.com", "password"),
    ("app.box.com", "sso_saml"),
    ("trello.com", "oidc_google"),
    ("www.atlassian.net", "sso_saml"),
    ("app.clickup.com", "password"),
    ("miro.com", "oidc_microsoft"),
    ("www.canva.com", "oidc_google"),
    ("app.intercom.com", "password"),
    ("dashboard.stripe.com", "passkey"),
    ("app.datadoghq.com", "sso_saml"),
    ("console.aws.amazon.com", "sso_saml"),
    ("portal.azure.com", "oidc_microsoft"),
    ("app.pagerduty.com", "sso_saml"),
    ("app.linear.app", "oidc_google"),
    ("www.loom.com", "oidc_google"),
    ("airtable.com", "password"),
    ("app.docusign.com", "password"),
    ("app.zendesk.com", "sso_saml"),
    ("calendly.com", "oidc_google"),
    ("app.gong.io", "oidc_microsoft"),
    ("chat.openai.com", "oidc_microsoft"),
    ("app.mural.co", "other"),
];

fn request_body(profile: usize, request: usize) -> Value {
    let email = format!("employee{profile}@example.com");
    let events: Vec<Value> = (0..EVENTS_PER_REQUEST)
        .map(|n| {
            let sequence = request * EVENTS_PER_REQUEST + n;
            let id = format!("p{profile}-e{sequence}");
            let time = (Utc::now() - chrono::Duration::seconds(3_600 - sequence as i64 * 30)).to_rfc3339();
            if n % 5 == 0 {
                return json!({"id": id, "time": time, "type": "heartbeat"});
            }
            let (domain, method) = APPS[(profile * 7 + sequence) % APPS.len()];
            json!({"id": id, "time": time, "type": "login", "app": {"domain": domain}, "account_email": email, "login_method": method})
        })
        .collect();
    telemetry_body(&format!("install-{profile}"), Some(&email), events)
}

fn api_event(key: &str, body: &Value) -> String {
    json!({
        "version": "2.0", "routeKey": "POST /v1/telemetry", "rawPath": "/v1/telemetry", "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {key}"), "content-type": "application/json"},
        "requestContext": {"accountId": "123456789012", "apiId": "bench", "domainName": "bench.local", "domainPrefix": "bench",
            "http": {"method": "POST", "path": "/v1/telemetry", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "bench", "routeKey": "POST /v1/telemetry", "stage": "$default", "time": "04/Dec/2026:09:00:00 +0000", "timeEpoch": 0},
        "body": body.to_string(), "isBase64Encoded": false,
    })
    .to_string()
}

/// Runs both parts, or only the one named as the first argument (`telemetry` or `licensing`).
fn main() {
    let part = std::env::args().nth(1).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime starts");
    if part.is_empty() || part == "telemetry" {
        runtime.block_on(telemetry_path());
    }
    if part.is_empty() || part == "licensing" {
        runtime.block_on(licensing_costs());
    }
}

/// Runs 10,000 events through ingest and the telemetry writer.
async fn telemetry_path() {
    let stack = TestStack::create().await;
    let key = stack.seed_tenant("bench").await;
    let seeded_items = 2;
    let ingest_counter = RequestCounter::default();
    let writer_counter = RequestCounter::default();
    let ingest = ingest::Ingest::new(
        &counted_clients(&stack.sdk, &ingest_counter),
        ingest::Config::from_lookup(&stack.environment("IngestFunction")).unwrap(),
    );
    let writer = telemetry_writer::Writer::new(
        &counted_clients(&stack.sdk, &writer_counter),
        telemetry_writer::Config::from_lookup(&stack.environment("TelemetryWriterFunction"))
            .unwrap(),
    );
    let batch_size =
        stack.template.functions["TelemetryWriterFunction"].queue_sources[0].batch_size;
    let started = Instant::now();

    let mut ingest_cpu = Duration::ZERO;
    let mut accepted = 0u64;
    for request in 0..REQUESTS_PER_PROFILE {
        for profile in 0..PROFILES {
            let event = api_event(&key, &request_body(profile, request));
            let http_request = lambda_http::request::from_str(&event).expect("event converts");
            let cpu = ThreadTime::now();
            let response = ingest.handle(http_request).await;
            ingest_cpu += cpu.elapsed();
            assert_eq!(
                response.status().as_u16(),
                202,
                "benchmark requests are valid"
            );
            let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
            accepted += body["accepted"].as_u64().unwrap_or(0);
        }
    }

    let queue = stack.stack.queue("TelemetryQueue").unwrap().clone();
    let mut writer_cpu = Duration::ZERO;
    let mut batches = 0u64;
    loop {
        let mut messages = Vec::new();
        while messages.len() < batch_size {
            let output = stack
                .sqs
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let received = output.messages.unwrap_or_default();
            if received.is_empty() {
                break;
            }
            messages.extend(received);
        }
        if messages.is_empty() {
            break;
        }
        let records: Vec<(String, String)> = messages
            .iter()
            .map(|m| (m.message_id.clone().unwrap(), m.body.clone().unwrap()))
            .collect();
        let records: Vec<(&str, &str, u32)> = records
            .iter()
            .map(|(id, body)| (id.as_str(), body.as_str(), 1))
            .collect();
        let event = sqs_event(&queue.arn, &records);
        let cpu = ThreadTime::now();
        let response = writer
            .handle(event)
            .await
            .expect("writer handles the batch");
        writer_cpu += cpu.elapsed();
        assert!(
            response.batch_item_failures.is_empty(),
            "no record fails in the benchmark"
        );
        batches += 1;
        for message in &messages {
            stack
                .sqs
                .delete_message()
                .queue_url(&queue.url)
                .receipt_handle(message.receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
        }
    }

    let distinct_items = count_items(&stack).await - seeded_items;
    let ingest_requests = ingest_counter.snapshot();
    let writer_requests = writer_counter.snapshot();
    let sqs_sends = ingest_counter.total("SQS", &["SendMessageBatch", "SendMessage"]);
    let write_operations = [
        "PutItem",
        "UpdateItem",
        "BatchWriteItem",
        "DeleteItem",
        "TransactWriteItems",
    ];
    let dynamodb_write_requests = writer_counter.total("DynamoDB", &write_operations)
        + ingest_counter.total("DynamoDB", &write_operations);
    let events = accepted;

    println!(
        "telemetry benchmark: {events} events, {} requests, {PROFILES} profiles, {batches} writer batches of up to {batch_size} messages",
        PROFILES * REQUESTS_PER_PROFILE
    );
    println!("  ingest AWS requests: {}", format_counts(&ingest_requests));
    println!("  writer AWS requests: {}", format_counts(&writer_requests));
    println!(
        "  SQS send requests (ingest): {sqs_sends} = {:.1} events per send (target: at least 10)",
        events as f64 / sqs_sends as f64
    );
    println!(
        "  DynamoDB write requests: {dynamodb_write_requests}; distinct items written: {distinct_items} (target: write requests <= distinct items) -> {}",
        if dynamodb_write_requests <= distinct_items {
            "met"
        } else {
            "MISSED"
        }
    );
    let single_item_writes = writer_counter.total("DynamoDB", &["UpdateItem", "PutItem"]);
    println!(
        "  DynamoDB item writes (each item of a batch write counted): {} = {single_item_writes} single-item writes + {events} event markers",
        single_item_writes + events
    );
    println!(
        "  handler CPU per event: ingest {:.1} us, writer {:.1} us, total {:.1} us",
        micros_per(ingest_cpu, events),
        micros_per(writer_cpu, events),
        micros_per(ingest_cpu + writer_cpu, events)
    );
    println!(
        "  wall time {:.1} s (moto on the same machine; not a latency figure)",
        started.elapsed().as_secs_f64()
    );
    let sends_met = sqs_sends * 10 <= events;
    println!(
        "  targets: SQS sends {}, DynamoDB writes {}",
        if sends_met { "met" } else { "MISSED" },
        if dynamodb_write_requests <= distinct_items {
            "met"
        } else {
            "MISSED"
        }
    );
}

/// Counts the table's items, following Scan pages (each page stops at 1 MB).
async fn count_items(stack: &TestStack) -> u64 {
    let mut total = 0u64;
    let mut start_key = None;
    loop {
        let page = stack
            .store
            .client()
            .scan()
            .table_name(stack.store.table_name())
            .select(Select::Count)
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .expect("scan succeeds");
        total += page.count as u64;
        start_key = page.last_evaluated_key;
        if start_key.is_none() {
            return total;
        }
    }
}

fn micros_per(duration: Duration, events: u64) -> f64 {
    duration.as_secs_f64() * 1e6 / events.max(1) as f64
}

fn format_counts(counts: &BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(operation, count)| format!("{operation} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Counts auto-license's DynamoDB requests per observation in three cases, each over
/// `OBSERVATIONS` observations delivered in batches of 10.
async fn licensing_costs() {
    const OBSERVATIONS: usize = 50;
    let stack = TestStack::create().await;
    stack
        .seed_tenant_with(
            "bench",
            &local_runner::demo::TenantSettings {
                plan_seats: 1_000,
                ..Default::default()
            },
        )
        .await;
    let counter = RequestCounter::default();
    let function = auto_license::AutoLicense::new(
        &counted_clients(&stack.sdk, &counter),
        auto_license::Config::from_lookup(&stack.environment("AutoLicenseFunction")).unwrap(),
    );
    let arn = stack.stack.queue("LicensingQueue").unwrap().arn.clone();

    let observation = |person: usize, observation_id: String| {
        let observation = rollcall::envelope::IdentityObservation {
            version: rollcall::envelope::IDENTITY_OBSERVATION_VERSION,
            observation_id,
            tenant_id: rollcall::ids::TenantId::parse("bench").unwrap(),
            install_id: format!("install-{person}"),
            email: rollcall::email::canonical_email(&format!("person{person}@example.com"))
                .unwrap(),
            source: rollcall::telemetry::IdentitySource::Gmail,
            managed: true,
            observed_at: Utc::now(),
        };
        serde_json::to_string(&observation).unwrap()
    };
    let new_employees: Vec<String> = (0..OBSERVATIONS)
        .map(|p| observation(p, format!("first-{p}")))
        .collect();
    let known_employees: Vec<String> = (0..OBSERVATIONS)
        .map(|p| observation(p, format!("second-{p}")))
        .collect();

    println!(
        "auto-license DynamoDB requests per observation ({OBSERVATIONS} observations per case, batches of 10):"
    );
    for (case, bodies) in [
        ("new employee", &new_employees),
        ("known employee", &known_employees),
        ("duplicate", &known_employees),
    ] {
        counter.reset();
        for chunk in bodies.chunks(10) {
            let ids: Vec<String> = (0..chunk.len()).map(|i| format!("{case}-{i}")).collect();
            let records: Vec<(&str, &str, u32)> = ids
                .iter()
                .zip(chunk)
                .map(|(id, body)| (id.as_str(), body.as_str(), 1))
                .collect();
            let response = function
                .handle(sqs_event(&arn, &records))
                .await
                .expect("batch is handled");
            assert!(
                response.batch_item_failures.is_empty(),
                "no observation fails in the benchmark"
            );
        }
        let reads = counter.total("DynamoDB", &["GetItem", "BatchGetItem", "Query"]);
        let writes = counter.total(
            "DynamoDB",
            &[
                "PutItem",
                "UpdateItem",
                "BatchWriteItem",
                "TransactWriteItems",
            ],
        );
        println!(
            "  {case}: {:.2} read requests, {:.2} write requests ({})",
            reads as f64 / OBSERVATIONS as f64,
            writes as f64 / OBSERVATIONS as f64,
            format_counts(&counter.snapshot())
        );
        if case == "duplicate" {
            // Reads are batched: one BatchGetItem serves a batch of up to 10 observations.
            let met = reads as f64 / OBSERVATIONS as f64 <= 1.0 && writes == 0;
            println!(
                "  target (duplicate: at most one read and no write): {}",
                if met { "met" } else { "MISSED" }
            );
        }
    }
}
