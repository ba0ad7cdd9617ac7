//! Every captured event in `events/` converts with the Cargo features the project ships, and the
//! SQS event is processed by the writer as Lambda would deliver it.

use std::path::PathBuf;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use rollcall::aws::Clients;
use rollcall::directory::DirectoryQueueMessage;
use rollcall::envelope::{IdentityObservation, MailMessage, SyncJob, TelemetryMessage};
use rollcall_tests::{TestStack, workspace_root};

fn event_files(prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("events"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "events/ has {prefix}*.json files");
    files
}

/// Every captured HTTP event converts, and its route key is one the template declares.
#[test]
fn http_events_convert() {
    let routes: Vec<String> = rollcall_tests::template()
        .functions
        .values()
        .flat_map(|f| {
            f.http_routes
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
        })
        .collect();
    for path in event_files("apigw-") {
        let text = std::fs::read_to_string(&path).unwrap();
        let request = lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
            panic!("{} is not a payload 2.0 event", path.display());
        };
        let route_key = context.route_key.clone().unwrap_or_default();
        assert!(
            routes.contains(&route_key),
            "{}: route {route_key} is not in the template",
            path.display()
        );
        let body: &[u8] = request.body().as_ref();
        if !body.is_empty() {
            serde_json::from_slice::<serde_json::Value>(body)
                .unwrap_or_else(|e| panic!("{}: body is JSON after decoding: {e}", path.display()));
        }
    }
}

/// Every route, queue and schedule of the template has a captured event to invoke its function
/// with, such as `cargo lambda invoke <function> --data-file events/<file>`.
#[test]
fn every_route_and_source_has_an_event() {
    let mut route_keys = std::collections::BTreeSet::new();
    for path in event_files("apigw-") {
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        route_keys.insert(event["routeKey"].as_str().unwrap_or_default().to_owned());
    }
    let queue_events = [
        ("TelemetryQueue", "sqs-telemetry.json"),
        ("LicensingQueue", "sqs-licensing.json"),
        ("MailQueue", "sqs-mail.json"),
        ("SyncQueue", "sqs-sync.json"),
        ("DirectoryQueue", "sqs-directory.json"),
    ];
    let schedule_events = [
        ("SyncSchedulerFunction", "eventbridge-hourly.json"),
        ("InactivitySweepFunction", "eventbridge-daily-sweep.json"),
    ];
    for function in rollcall_tests::template().functions.values() {
        for route in &function.http_routes {
            let key = format!("{} {}", route.method, route.path);
            assert!(
                route_keys.contains(&key),
                "no event in events/ for route {key}"
            );
        }
        for source in &function.queue_sources {
            let file = queue_events
                .iter()
                .find(|(queue, _)| *queue == source.queue)
                .map(|(_, file)| *file)
                .unwrap_or_else(|| panic!("no event named for queue {}", source.queue));
            assert!(
                workspace_root().join("events").join(file).exists(),
                "{file}"
            );
        }
        if !function.schedules.is_empty() {
            let file = schedule_events
                .iter()
                .find(|(name, _)| *name == function.logical_id)
                .map(|(_, file)| *file)
                .unwrap_or_else(|| panic!("no event named for {}", function.logical_id));
            assert!(
                workspace_root().join("events").join(file).exists(),
                "{file}"
            );
        }
    }
}

/// The admin events run against a seeded tenant without a server error: each is a request the
/// console could send.
#[tokio::test]
async fn admin_events_are_served() {
    // The Okta and Google events reach the provider, here the mock on 127.0.0.1.
    let credentials = mock_idp::Credentials::default();
    let mock = mock_idp::MockIdp::start(
        "127.0.0.1:0".parse().unwrap(),
        mock_idp::MockConfig {
            microsoft: mock_idp::Directory::default(),
            google: mock_idp::Directory::default(),
            okta: mock_idp::Directory::default(),
            credentials: credentials.clone(),
        },
    )
    .await
    .unwrap();
    let stack = TestStack::create_with_providers(&mock.url(), &credentials).await;
    stack.seed_tenant("demo").await;
    let clients = Clients::new(&stack.sdk);
    let api = admin_api::AdminApi::new(
        &clients,
        admin_api::Config::from_lookup(&stack.environment("AdminApiFunction")).unwrap(),
    );
    let integrations = oauth_callback::OAuthCallback::new(
        &clients,
        oauth_callback::Config::from_lookup(&stack.environment("OAuthCallbackFunction")).unwrap(),
    );
    // The owner in the events' claims.
    stack
        .add_administrator(
            "demo",
            "owner@example.com",
            rollcall::table::AdminRole::Owner,
        )
        .await;

    for path in event_files("apigw-admin-") {
        let text = std::fs::read_to_string(&path).unwrap();
        let request = lambda_http::request::from_str(&text).unwrap();
        let route_key = serde_json::from_str::<serde_json::Value>(&text).unwrap()["routeKey"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let response = if route_key.contains("/v1/admin/integrations") {
            integrations.handle(request).await
        } else {
            api.handle(request).await
        };
        let status = response.status().as_u16();
        let body = String::from_utf8_lossy(response.body().as_ref()).into_owned();
        assert!(status < 500, "{}: HTTP {status} {body}", path.display());
    }
}

#[test]
fn non_http_payload_is_an_error() {
    for path in event_files("sqs-") {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            lambda_http::request::from_str(&text).is_err(),
            "{} is not an HTTP event",
            path.display()
        );
    }
    assert!(lambda_http::request::from_str("{}").is_err());
    assert!(lambda_http::request::from_str("not json").is_err());
}

#[test]
fn sqs_events_carry_envelopes() {
    for path in event_files("sqs-") {
        let event: SqsEvent =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        for record in event.records {
            let body = record.body.as_deref().unwrap();
            let parsed = match name.as_str() {
                "sqs-telemetry.json" => TelemetryMessage::from_body(body).map(|_| ()),
                "sqs-licensing.json" => IdentityObservation::from_body(body).map(|_| ()),
                "sqs-mail.json" => MailMessage::from_body(body).map(|_| ()),
                "sqs-sync.json" => SyncJob::from_body(body).map(|_| ()),
                "sqs-directory.json" | "sqs-directory-revocation.json" => {
                    DirectoryQueueMessage::from_body(body).map(|_| ())
                }
                other => panic!("{other}: add its envelope type to this test"),
            };
            parsed.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

#[test]
fn request_body_example_parses() {
    let body = std::fs::read(workspace_root().join("events/telemetry-body.json")).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let latest = value["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["time"].as_str())
        .max()
        .unwrap()
        .to_owned();
    let received_at = chrono::DateTime::parse_from_rfc3339(&latest)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let parsed = rollcall::telemetry::parse_batch(&body, received_at).unwrap();
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    assert_eq!(parsed.events.len(), 4);
}

#[tokio::test]
async fn writer_processes_captured_event() {
    let stack = TestStack::create().await;
    let config =
        telemetry_writer::Config::from_lookup(&stack.environment("TelemetryWriterFunction"))
            .unwrap();
    let writer = telemetry_writer::Writer::new(&Clients::new(&stack.sdk), config);
    let event: SqsEvent = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("events/sqs-telemetry.json")).unwrap(),
    )
    .unwrap();

    let response = writer.handle(event).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stack.items("demo", "ACCOUNT#").await.len(), 3);
}

#[tokio::test]
async fn auto_license_processes_captured_event() {
    let stack = TestStack::create().await;
    stack.seed_tenant("demo").await;
    let config =
        auto_license::Config::from_lookup(&stack.environment("AutoLicenseFunction")).unwrap();
    let function = auto_license::AutoLicense::new(&Clients::new(&stack.sdk), config);
    let text = std::fs::read_to_string(workspace_root().join("events/sqs-licensing.json")).unwrap();
    let event: SqsEvent = serde_json::from_str(&text).unwrap();

    let response = function.handle(event).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stack.items("demo", "EMPLOYEE#").await.len(), 1);
}

#[tokio::test]
async fn admin_api_serves_captured_event() {
    let stack = TestStack::create().await;
    stack.seed_tenant("demo").await;
    let config = admin_api::Config::from_lookup(&stack.environment("AdminApiFunction")).unwrap();
    let api = admin_api::AdminApi::new(&Clients::new(&stack.sdk), config);
    let text =
        std::fs::read_to_string(workspace_root().join("events/apigw-admin-list-employees.json"))
            .unwrap();

    let response = api
        .handle(lambda_http::request::from_str(&text).unwrap())
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(body["employees"], serde_json::json!([]));
}

#[tokio::test]
async fn oauth_callback_serves_captured_events() {
    let stack = TestStack::create().await;
    stack.seed_tenant("demo").await;
    let config =
        oauth_callback::Config::from_lookup(&stack.environment("OAuthCallbackFunction")).unwrap();
    let function = oauth_callback::OAuthCallback::new(&Clients::new(&stack.sdk), config);
    let event = |name: &str| {
        let text = std::fs::read_to_string(workspace_root().join("events").join(name)).unwrap();
        lambda_http::request::from_str(&text).unwrap()
    };

    let response = function
        .handle(event("apigw-admin-connect-microsoft.json"))
        .await;
    assert_eq!(response.status().as_u16(), 201);
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    // Without the local provider override, the URL is Microsoft's own.
    assert!(
        body["authorize_url"]
            .as_str()
            .unwrap()
            .starts_with("https://login.microsoftonline.com/organizations/v2.0/adminconsent?")
    );

    // The captured callback's state was never issued here.
    let response = function
        .handle(event("apigw-oauth-callback-microsoft.json"))
        .await;
    assert_eq!(response.status().as_u16(), 400);
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(body["reason"], "invalid_state");
    // The tenant has no Microsoft integration to revoke.
    let response = function
        .handle(event("apigw-admin-revoke-integration.json"))
        .await;
    assert_eq!(response.status().as_u16(), 404);
}

#[test]
fn scheduled_events_parse() {
    for path in event_files("eventbridge-") {
        let text = std::fs::read_to_string(&path).unwrap();
        let event: aws_lambda_events::event::eventbridge::EventBridgeEvent =
            serde_json::from_str(&text).unwrap();
        assert_eq!(event.detail_type, "Scheduled Event", "{}", path.display());
    }
}

#[tokio::test]
async fn inactivity_sweep_processes_captured_event() {
    let stack = TestStack::create().await;
    stack.seed_tenant("demo").await;
    let text =
        std::fs::read_to_string(workspace_root().join("events/eventbridge-daily-sweep.json"))
            .unwrap();
    let event: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Inactive for 100 days as of the event's scheduled time, 2026-12-04.
    let tenant_id = rollcall::ids::TenantId::parse("demo").unwrap();
    let email = rollcall::email::canonical_email("quinn@example.com").unwrap();
    let employee = rollcall::table::EmployeeItem::new(rollcall::table::NewEmployee {
        tenant_id: &tenant_id,
        employee_id: "quinn".into(),
        name: None,
        email: &email,
        licence_state: rollcall::table::LicenceState::Unlicensed,
        first_seen: "2026-08-26T03:00:00.000Z".into(),
        now: "2026-08-26T03:00:00.000Z".into(),
        source: rollcall::table::source::EXTENSION.into(),
        install_id: None,
    })
    .with_extension_activity(&tenant_id, "2026-08-26T03:00:00.000Z");
    stack.store.put(&employee).await.unwrap();
    let sweep = inactivity_sweep::InactivitySweep::new(
        &Clients::new(&stack.sdk),
        inactivity_sweep::Config::from_lookup(&stack.environment("InactivitySweepFunction"))
            .unwrap(),
    );

    let outcome = sweep.handle(&event).await.unwrap();
    assert_eq!(outcome.activity_hidden, 1);
    let audit: Option<rollcall::table::SweepItem> = stack
        .item("demo", &rollcall::table::sweep_sk("2026-12-04"))
        .await;
    assert_eq!(audit.unwrap().activity_hidden_ids, vec!["quinn".to_owned()]);
}

#[tokio::test]
async fn directory_writer_processes_captured_revocation() {
    let stack = TestStack::create().await;
    stack.seed_tenant("demo").await;
    stack
        .seed_integration("demo", rollcall::integration::Provider::Microsoft)
        .await;
    let config =
        directory_writer::Config::from_lookup(&stack.environment("DirectoryWriterFunction"))
            .unwrap();
    let writer = directory_writer::DirectoryWriter::new(&Clients::new(&stack.sdk), config);
    let read = |name: &str| -> SqsEvent {
        let text = std::fs::read_to_string(workspace_root().join("events").join(name)).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    writer.handle(read("sqs-directory.json")).await.unwrap();
    assert_eq!(stack.items("demo", "DIRUSER#microsoft#").await.len(), 2);

    // Marked for revocation with the captured job's id, as the DELETE request does.
    let sk = rollcall::integration::integration_sk(rollcall::integration::Provider::Microsoft);
    let mut integration: rollcall::integration::IntegrationItem =
        stack.item("demo", &sk).await.unwrap();
    integration.status = rollcall::integration::IntegrationStatus::Revoking;
    integration.revocation_id = Some("c4f1a9e2-7b3d-4e6f-9a1c-2b3d4e5f6a7b".into());
    stack.store.put(&integration).await.unwrap();

    let response = writer
        .handle(read("sqs-directory-revocation.json"))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert!(stack.items("demo", "DIRUSER#microsoft#").await.is_empty());
    assert!(stack.items("demo", "EMPLOYEE#").await.is_empty());
    assert!(stack.item::<serde_json::Value>("demo", &sk).await.is_none());
}

#[tokio::test]
async fn directory_writer_processes_captured_event() {
    let stack = TestStack::create().await;
    stack.seed_tenant("demo").await;
    stack
        .seed_integration("demo", rollcall::integration::Provider::Microsoft)
        .await;
    let config =
        directory_writer::Config::from_lookup(&stack.environment("DirectoryWriterFunction"))
            .unwrap();
    let writer = directory_writer::DirectoryWriter::new(&Clients::new(&stack.sdk), config);
    let text = std::fs::read_to_string(workspace_root().join("events/sqs-directory.json")).unwrap();
    let event: SqsEvent = serde_json::from_str(&text).unwrap();

    let response = writer.handle(event).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        stack.items("demo", "EMPLOYEE#").await.len(),
        1,
        "the guest is no employee"
    );
    assert_eq!(stack.items("demo", "DIRUSER#microsoft#").await.len(), 2);
    assert_eq!(
        stack
            .items("demo", "ACTIVITY#microsoft#mail_rules#")
            .await
            .len(),
        1
    );
}
