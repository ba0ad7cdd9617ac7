//! Retention on the local stack: revoking an integration (with shared and unshared employees,
//! and a cascade that crashes half-way and resumes), directory removals of licensed and
//! enrolled employees, and the daily inactivity sweep with its clock moved 91 days on.

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::Utc;
use futures_util::{StreamExt, stream};
use mock_idp::{Credentials, Directory, MockConfig};
use reqwest::{Method, StatusCode};
use rollcall::aws::Clients;
use rollcall::directory::{DirectoryQueueMessage, RevocationJob};
use rollcall::ids::TenantId;
use rollcall::integration::{IntegrationStatus, Provider};
use rollcall::table::{
    self, AccountItem, EmployeeItem, LicenceState, NewEmployee, TenantItem, source,
};
use rollcall::telemetry::storage_time;
use rollcall_tests::counting::{RequestCounter, counted_clients};
use rollcall_tests::providers::{ProviderStack, TENANT, directory_user};
use rollcall_tests::{AdminClient, TestStack, eventually, heartbeat, login, telemetry_body};
use serde_json::{Value, json};

/// Every queue an employee's data passes through.
const QUEUES: [&str; 4] = [
    "TelemetryQueue",
    "LicensingQueue",
    "SyncQueue",
    "DirectoryQueue",
];
const DEAD_LETTER_QUEUES: [&str; 4] = [
    "TelemetryDeadLetterQueue",
    "LicensingDeadLetterQueue",
    "SyncDeadLetterQueue",
    "DirectoryDeadLetterQueue",
];

fn directories(microsoft: Directory, okta: Directory) -> MockConfig {
    MockConfig {
        microsoft,
        google: Directory::default(),
        okta,
        credentials: Credentials::default(),
    }
}

async fn start(config: MockConfig) -> ProviderStack {
    ProviderStack::start_with_config(config, &[("SyncBackoffBaseMillis", "20")], true).await
}

/// Waits until every queue is empty and checks that no message was dead-lettered.
async fn settle(stack: &ProviderStack) {
    stack
        .runner
        .wait_until_idle(&QUEUES, Duration::from_secs(300))
        .await
        .expect("queues drain");
    let depths = stack.runner.queue_depths().await.unwrap();
    for queue in DEAD_LETTER_QUEUES {
        assert_eq!(depths[queue], (0, 0), "{queue} is empty");
    }
}

async fn employee(stack: &ProviderStack, email: &str) -> Option<EmployeeItem> {
    stack
        .stack
        .employees(TENANT)
        .await
        .into_iter()
        .find(|e| e.emails.iter().any(|known| known == email))
}

async fn seats_in_use(stack: &TestStack, tenant: &str) -> u32 {
    stack
        .item::<TenantItem>(tenant, table::TENANT_SK)
        .await
        .unwrap()
        .licences_in_use
}

async fn license(admin: &AdminClient, employee_id: &str) {
    let (status, body) = admin
        .put(
            &format!("/v1/admin/employees/{employee_id}/licence"),
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
}

async fn revoke(admin: &AdminClient, provider: Provider) -> Value {
    let (status, body) = admin
        .call(
            Method::DELETE,
            &format!("/v1/admin/integrations/{provider}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "revoking");
    body
}

async fn count(stack: &TestStack, tenant: &str, prefix: &str) -> usize {
    stack.items(tenant, prefix).await.len()
}

async fn extension_key(admin: &AdminClient) -> String {
    let (status, body) = admin
        .post(
            "/v1/admin/extension-keys",
            json!({"name": "retention test"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["key"].as_str().unwrap().to_owned()
}

async fn send_telemetry(runner_url: &str, key: &str, body: &Value) {
    let response = reqwest::Client::new()
        .post(format!("{runner_url}/v1/telemetry"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

/// Fires the daily sweep with its scheduled time `days` from now.
async fn sweep_in(runner_url: &str, days: i64) {
    let time = (Utc::now() + chrono::Duration::days(days))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let response = reqwest::Client::new()
        .post(format!(
            "{runner_url}/_local/schedules/InactivitySweepFunction"
        ))
        .query(&[("time", time)])
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(
        status.is_success(),
        "{status} {}",
        response.text().await.unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_keeps_shared_employees() {
    let mut microsoft = Directory::generate("contoso.example", 60, 31);
    let mut okta = Directory::generate("initech.example", 20, 32);
    for (id, email) in [
        ("m-shared", "sam@example.com"),
        ("m-manual", "mia@example.com"),
        ("m-licensed", "lee@example.com"),
        ("m-plain", "pat@example.com"),
    ] {
        microsoft.users.push(directory_user(id, email));
    }
    okta.users
        .push(directory_user("o-shared", "sam@example.com"));
    let stack = start(directories(microsoft.clone(), okta)).await;
    let mia = stack.admin.add_employee("Mia", "mia@example.com").await;
    stack.connect_and_sync(Provider::Microsoft, &[]).await;
    stack.connect_and_sync(Provider::Okta, &[]).await;

    let lee = employee(&stack, "lee@example.com").await.unwrap();
    let sam = employee(&stack, "sam@example.com").await.unwrap();
    license(&stack.admin, &lee.employee_id).await;
    license(&stack.admin, &sam.employee_id).await;
    license(&stack.admin, &mia).await;
    assert_eq!(seats_in_use(&stack.stack, TENANT).await, 3);
    assert!(count(&stack.stack, TENANT, "ACTIVITY#microsoft#").await > 0);
    assert!(count(&stack.stack, TENANT, "GROUP#microsoft-").await > 0);
    let microsoft_app_secret = stack
        .integration(Provider::Microsoft)
        .await
        .unwrap()
        .secret_arn;
    let okta_secret = stack.integration(Provider::Okta).await.unwrap().secret_arn;

    let body = revoke(&stack.admin, Provider::Microsoft).await;
    assert!(body["revocation_id"].is_string());
    settle(&stack).await;

    assert!(stack.integration(Provider::Microsoft).await.is_none());
    for prefix in [
        "DIRUSER#microsoft#",
        "ACTIVITY#microsoft#",
        "GROUP#microsoft-",
        "SYNCRUN#microsoft",
        "SYNCSEEN#microsoft#",
    ] {
        assert_eq!(count(&stack.stack, TENANT, prefix).await, 0, "{prefix}");
    }
    let left = stack.stack.employees(TENANT).await;
    let microsoft_source = source::integration("microsoft");
    for employee in &left {
        assert!(
            !employee.sources.contains(&microsoft_source),
            "{employee:?}"
        );
        assert_eq!(employee.directory_microsoft, None);
        assert!(!employee.groups.iter().any(|g| g.starts_with("microsoft-")));
    }
    for user in microsoft.users.iter().filter(|u| !u.guest) {
        let kept = left.iter().any(|e| e.emails.contains(&user.email));
        let shared = ["sam@example.com", "mia@example.com"].contains(&user.email.as_str());
        assert_eq!(kept, shared, "{}", user.email);
    }
    let sam = employee(&stack, "sam@example.com").await.unwrap();
    assert_eq!(sam.sources, vec![source::integration("okta")]);
    assert_eq!(sam.licence_state, LicenceState::Licensed);
    let mia = employee(&stack, "mia@example.com").await.unwrap();
    assert_eq!(mia.sources, vec![source::MANUAL.to_owned()]);
    // Lee's seat is freed with Lee; the shared employees keep theirs.
    assert_eq!(seats_in_use(&stack.stack, TENANT).await, 2);
    // Microsoft's app secret is Rollcall's own and serves other tenants: it stays.
    stack.secret(&microsoft_app_secret).await;

    // The hourly schedule no longer syncs Microsoft.
    let graph_requests = || {
        stack
            .mock
            .request_counts()
            .iter()
            .filter(|(endpoint, _)| endpoint.starts_with("microsoft."))
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    let before = graph_requests();
    stack.resync().await;
    assert!(stack.integration(Provider::Microsoft).await.is_none());
    assert_eq!(
        graph_requests(),
        before,
        "no Microsoft request after revocation"
    );

    revoke(&stack.admin, Provider::Okta).await;
    settle(&stack).await;
    let left = stack.stack.employees(TENANT).await;
    assert_eq!(left.len(), 1, "only the manual employee is left");
    assert_eq!(left[0].primary_email, "mia@example.com");
    assert_eq!(seats_in_use(&stack.stack, TENANT).await, 1);
    let deleted = aws_sdk_secretsmanager::Client::new(&stack.stack.sdk)
        .get_secret_value()
        .secret_id(&okta_secret)
        .send()
        .await;
    assert!(deleted.is_err(), "the Okta credential is deleted");
    let (status, body) = stack.admin.get("/v1/admin/integrations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["integrations"], json!([]), "{body}");
    let (status, _) = stack
        .admin
        .call(Method::DELETE, "/v1/admin/integrations/okta", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_revocation_resumes() {
    let mut microsoft = Directory::generate("contoso.example", 120, 33);
    for n in 0..3 {
        microsoft.users.push(directory_user(
            &format!("m-lic-{n}"),
            &format!("lic{n}@example.com"),
        ));
    }
    let mut stack = start(directories(microsoft, Directory::default())).await;
    let manual = stack.admin.add_employee("Mo", "mo@example.com").await;
    stack.connect_and_sync(Provider::Microsoft, &[]).await;
    license(&stack.admin, &manual).await;
    for n in 0..3 {
        let licensed = employee(&stack, &format!("lic{n}@example.com"))
            .await
            .unwrap();
        license(&stack.admin, &licensed.employee_id).await;
    }
    assert_eq!(seats_in_use(&stack.stack, TENANT).await, 4);

    // The directory writer is down while the revocation is requested.
    let without_writer = stack
        .stack
        .start_runner_without(&["DirectoryWriterFunction"])
        .await;
    std::mem::replace(&mut stack.runner, without_writer)
        .stop()
        .await;
    stack.admin = AdminClient::new(&stack.runner, TENANT, "owner@example.com");
    // The old runner's last receive is a one-second long poll that could still take the job
    // at the server, so the revocation waits for it to end.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = revoke(&stack.admin, Provider::Microsoft).await;
    let revoking = stack.integration(Provider::Microsoft).await.unwrap();
    assert_eq!(revoking.status, IntegrationStatus::Revoking);
    assert_eq!(revoking.gsi1pk, "", "off the hourly schedule");
    let (status, body) = stack.admin.get("/v1/admin/integrations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["integrations"][0]["status"], "revoking", "{body}");
    let (status, body) = stack
        .admin
        .post("/v1/admin/integrations/microsoft/connect", json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["reason"], "revocation_in_progress", "{body}");
    // A repeated request reports the revocation under way.
    let again = revoke(&stack.admin, Provider::Microsoft).await;
    assert_eq!(again["revocation_id"], first["revocation_id"]);

    // A writer takes the job, handles two pages and crashes before queueing the rest.
    let depths = stack.runner.queue_depths().await.unwrap();
    let queued = stack.stack.drain("DirectoryQueue", 10).await;
    assert_eq!(queued.len(), 2, "one job per request: {depths:?}");
    let DirectoryQueueMessage::Revocation(job) =
        DirectoryQueueMessage::from_body(&queued[0].0).unwrap()
    else {
        panic!("a revocation job");
    };
    let environment = stack.stack.environment("DirectoryWriterFunction");
    let writer = directory_writer::DirectoryWriter::new(
        &Clients::new(&stack.stack.sdk),
        directory_writer::Config::from_lookup(&environment).unwrap(),
    );
    let before = count(&stack.stack, TENANT, "DIRUSER#microsoft#").await;
    assert!(!writer.revocation_page_of(&job).await.unwrap());
    assert!(!writer.revocation_page_of(&job).await.unwrap());
    let after = count(&stack.stack, TENANT, "DIRUSER#microsoft#").await;
    assert_eq!(before - after, 50, "two pages of 25 users");
    assert_eq!(
        stack.integration(Provider::Microsoft).await.unwrap().status,
        IntegrationStatus::Revoking
    );

    // SQS delivers the job again after its visibility timeout, here twice.
    let event = sqs_event(&job, 2);
    let response = writer.handle(event).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    let with_writer = stack.stack.start_runner().await;
    std::mem::replace(&mut stack.runner, with_writer)
        .stop()
        .await;
    settle(&stack).await;

    assert!(stack.integration(Provider::Microsoft).await.is_none());
    for prefix in [
        "DIRUSER#microsoft#",
        "ACTIVITY#microsoft#",
        "GROUP#microsoft-",
    ] {
        assert_eq!(count(&stack.stack, TENANT, prefix).await, 0, "{prefix}");
    }
    let left = stack.stack.employees(TENANT).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].employee_id, manual);
    assert_eq!(
        seats_in_use(&stack.stack, TENANT).await,
        1,
        "three seats freed, each once"
    );
}

/// Two deliveries of the same job in one batch, as SQS may hand them over.
fn sqs_event(job: &RevocationJob, copies: usize) -> SqsEvent {
    let body = serde_json::to_string(job).unwrap();
    let records: Vec<Value> = (0..copies)
        .map(|n| json!({"messageId": format!("redelivery-{n}"), "body": body, "eventSource": "aws:sqs"}))
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_keeps_licensed_employees() {
    let mut okta = Directory::generate("initech.example", 10, 34);
    for (id, email) in [
        ("o-ana", "ana@example.com"),
        ("o-ben", "ben@example.com"),
        ("o-cy", "cy@example.com"),
        ("o-dee", "dee@example.com"),
    ] {
        okta.users.push(directory_user(id, email));
    }
    let stack = start(directories(Directory::default(), okta)).await;
    stack.connect_and_sync(Provider::Okta, &[]).await;

    // Ana and Ben enrol through their managed extensions; Ana also signs in to a SaaS app.
    let key = extension_key(&stack.admin).await;
    let url = stack.runner.url();
    send_telemetry(
        &url,
        &key,
        &telemetry_body(
            "install-ana",
            Some("ana@example.com"),
            vec![
                heartbeat("ana-1", -120),
                login("ana-2", -60, "app.slack.com", "ana@example.com", "password"),
            ],
        ),
    )
    .await;
    send_telemetry(
        &url,
        &key,
        &telemetry_body(
            "install-ben",
            Some("ben@example.com"),
            vec![heartbeat("ben-1", -60)],
        ),
    )
    .await;
    settle(&stack).await;
    for email in ["ana@example.com", "ben@example.com"] {
        let enrolled = employee(&stack, email).await.unwrap();
        assert_eq!(enrolled.licence_state, LicenceState::Licensed, "{email}");
        assert!(enrolled.last_extension_activity.is_some());
    }
    let cy = employee(&stack, "cy@example.com").await.unwrap();
    license(&stack.admin, &cy.employee_id).await;
    assert_eq!(seats_in_use(&stack.stack, TENANT).await, 3);

    // All four leave the directory; the daily full run notices.
    stack.mock.with_state(|state| {
        for id in ["o-ana", "o-ben", "o-cy", "o-dee"] {
            state.remove_user("okta", id).unwrap();
        }
    });
    let mut integration = stack.integration(Provider::Okta).await.unwrap();
    integration.last_full_sync_at = Some(storage_time(Utc::now() - chrono::Duration::hours(25)));
    stack.stack.store.put(&integration).await.unwrap();
    stack.resync().await;
    settle(&stack).await;
    let run = stack
        .integration(Provider::Okta)
        .await
        .unwrap()
        .last_sync
        .unwrap();
    assert!(run.complete, "{run:?}");
    assert_eq!(run.removed, 4, "{run:?}");

    assert!(employee(&stack, "dee@example.com").await.is_none());
    for (email, sources) in [
        ("ana@example.com", vec!["extension"]),
        ("ben@example.com", vec!["extension"]),
        ("cy@example.com", vec![]),
    ] {
        let kept = employee(&stack, email).await.unwrap();
        assert_eq!(kept.licence_state, LicenceState::Licensed, "{email}");
        assert_eq!(kept.sources, sources, "{email}");
        let (status, detail) = stack
            .admin
            .get(&format!("/v1/admin/employees/{}", kept.employee_id))
            .await;
        assert_eq!(status, StatusCode::OK);
        let directory = &detail["directory"][0];
        assert_eq!(directory["provider"], "okta", "{detail}");
        assert!(directory["removed_at"].is_string(), "{detail}");
    }
    assert_eq!(seats_in_use(&stack.stack, TENANT).await, 3);

    // A later run leaves the removed records alone.
    stack.resync().await;
    assert_eq!(
        employee(&stack, "ana@example.com").await.unwrap().sources,
        vec!["extension"]
    );

    // 91 days on: Ben, inactive with no account, loses the licence; Ana keeps hers for her
    // account; Cy never had the extension and keeps the licence an administrator gave.
    sweep_in(&url, 91).await;
    let ben = employee(&stack, "ben@example.com").await.unwrap();
    assert_eq!(ben.licence_state, LicenceState::Unlicensed);
    assert!(ben.activity_hidden_at.is_some());
    assert!(ben.install_ids.is_empty());
    assert!(
        stack
            .stack
            .item::<Value>(TENANT, &table::profile_sk("install-ben"))
            .await
            .is_none(),
        "the browser profile is deleted"
    );
    let (_, detail) = stack
        .admin
        .get(&format!("/v1/admin/employees/{}", ben.employee_id))
        .await;
    assert_eq!(detail["browsers"], json!([]));
    assert_eq!(detail["activity"], json!({}));
    assert!(detail["activity_hidden_at"].is_string());
    for email in ["ana@example.com", "cy@example.com"] {
        let kept = employee(&stack, email).await.unwrap();
        assert_eq!(kept.licence_state, LicenceState::Licensed, "{email}");
        assert!(kept.activity_hidden_at.is_none());
    }
    assert_eq!(seats_in_use(&stack.stack, TENANT).await, 2);

    let (status, audit) = stack.admin.get("/v1/admin/retention/sweeps").await;
    assert_eq!(status, StatusCode::OK);
    let day = &audit["sweeps"][0];
    assert_eq!(day["unlicensed"], 1, "{audit}");
    assert_eq!(day["unlicensed_employee_ids"], json!([ben.employee_id]));
    assert_eq!(day["kept_with_accounts"], 1);
    assert_eq!(day["inactivity_days"], 90);
    let (status, _) = stack.admin.get("/v1/admin/retention/sweeps?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Writes employees straight to the table in batches, as a large tenant would have them.
async fn put_all(stack: &TestStack, items: Vec<HashMap<String, AttributeValue>>) {
    let batches: Vec<Vec<WriteRequest>> = items
        .chunks(25)
        .map(|chunk| {
            chunk
                .iter()
                .map(|item| {
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item.clone()))
                                .build()
                                .unwrap(),
                        )
                        .build()
                })
                .collect()
        })
        .collect();
    stream::iter(batches)
        .for_each_concurrent(8, |batch| async move {
            let mut pending = Some(HashMap::from([(
                stack.store.table_name().to_owned(),
                batch,
            )]));
            while let Some(requests) = pending.take().filter(|r| !r.is_empty()) {
                let output = stack
                    .store
                    .client()
                    .batch_write_item()
                    .set_request_items(Some(requests))
                    .send()
                    .await
                    .unwrap();
                pending = output.unprocessed_items;
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_reads_only_candidates() {
    const EMPLOYEES: usize = 5_000;
    const STALE: usize = 50;
    let stack = TestStack::create().await;
    stack.seed_tenant("bigco").await;
    let tenant_id = TenantId::parse("bigco").unwrap();
    let now = Utc::now();
    let recent = storage_time(now - chrono::Duration::days(3));
    let stale = storage_time(now - chrono::Duration::days(120));

    // Every tenth employee is licensed. Of the stale ones, the first ten have a SaaS account.
    let mut items = Vec::new();
    let mut licensed = 0;
    for n in 0..EMPLOYEES {
        let email = rollcall::email::canonical_email(&format!("person{n}@example.com")).unwrap();
        let state = if n % 10 == 0 {
            licensed += 1;
            LicenceState::Licensed
        } else {
            LicenceState::Unlicensed
        };
        let activity = if n < STALE { &stale } else { &recent };
        let employee = EmployeeItem::new(NewEmployee {
            tenant_id: &tenant_id,
            employee_id: format!("employee-{n:05}"),
            name: None,
            email: &email,
            licence_state: state,
            first_seen: recent.clone(),
            now: recent.clone(),
            source: source::EXTENSION.to_owned(),
            install_id: None,
        })
        .with_extension_activity(&tenant_id, activity);
        items.push(serde_dynamo::to_item(&employee).unwrap());
        if n < 10 {
            let account = AccountItem {
                pk: table::tenant_pk(&tenant_id),
                sk: table::account_sk("app.slack.com", &email),
                app_domain: "app.slack.com".into(),
                app_name: "Slack".into(),
                account_email: email.to_string(),
                login_methods: vec!["password".into()],
                identity_providers: Vec::new(),
                first_seen: stale.clone(),
                last_seen: stale.clone(),
            };
            let mut item: HashMap<String, AttributeValue> =
                serde_dynamo::to_item(&account).unwrap();
            item.insert(
                table::GSI1_PK.into(),
                AttributeValue::S(table::email_gsi1_pk(&tenant_id, &email)),
            );
            item.insert(
                table::GSI1_SK.into(),
                AttributeValue::S(table::account_gsi1_sk("app.slack.com")),
            );
            items.push(item);
        }
    }
    put_all(&stack, items).await;
    stack
        .store
        .client()
        .update_item()
        .table_name(stack.store.table_name())
        .key(table::PK, AttributeValue::S(table::tenant_pk(&tenant_id)))
        .key(table::SK, AttributeValue::S(table::TENANT_SK.into()))
        .update_expression("SET licences_in_use = :n, plan_seats = :seats")
        .expression_attribute_values(":n", AttributeValue::N(licensed.to_string()))
        .expression_attribute_values(":seats", AttributeValue::N("1000".into()))
        .send()
        .await
        .unwrap();

    let counter = RequestCounter::default();
    let runner = stack
        .start_runner_with(&counted_clients(&stack.sdk, &counter), &[])
        .await;
    counter.reset();
    sweep_in(&runner.url(), 0).await;
    let first = counter.snapshot();
    println!("sweep of {EMPLOYEES} employees, {STALE} stale: requests {first:?}");

    // One tenant listing, one page of candidates, one account lookup per candidate.
    let queries = counter.total("DynamoDB", &["Query"]);
    assert_eq!(queries, 1 + 1 + STALE as u64, "{first:?}");
    assert_eq!(
        counter.total("DynamoDB", &["Scan", "GetItem", "BatchGetItem"]),
        0
    );
    assert_eq!(counter.total("DynamoDB", &["TransactWriteItems"]), 40);
    let swept: Vec<EmployeeItem> = stack
        .employees("bigco")
        .await
        .into_iter()
        .filter(|e| e.activity_hidden_at.is_some())
        .collect();
    assert_eq!(swept.len(), 40);
    assert!(
        swept
            .iter()
            .all(|e| e.licence_state == LicenceState::Unlicensed)
    );
    // Stale and licensed without an account: employees 10, 20, 30 and 40.
    assert_eq!(seats_in_use(&stack, "bigco").await, licensed - 4);
    let kept = stack.employees("bigco").await;
    assert_eq!(
        kept.iter()
            .filter(|e| e.employee_id == "employee-00000")
            .map(|e| e.licence_state)
            .collect::<Vec<_>>(),
        vec![LicenceState::Licensed],
        "a stale employee with an account keeps the licence"
    );

    // The same day again: only the ten kept candidates are read, and nothing changes.
    counter.reset();
    sweep_in(&runner.url(), 0).await;
    let second = counter.snapshot();
    println!("second sweep the same day: requests {second:?}");
    assert_eq!(counter.total("DynamoDB", &["Query"]), 1 + 1 + 10);
    assert_eq!(counter.total("DynamoDB", &["TransactWriteItems"]), 0);
    assert_eq!(seats_in_use(&stack, "bigco").await, licensed - 4);
    let audit: table::SweepItem = stack
        .item(
            "bigco",
            &table::sweep_sk(&now.format("%Y-%m-%d").to_string()),
        )
        .await
        .unwrap();
    assert_eq!(audit.unlicensed_ids.len(), 4);
    assert_eq!(audit.activity_hidden_ids.len(), 40);
    assert_eq!(audit.kept_with_accounts, 10);
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_during_sweep_wins() {
    let stack = TestStack::create().await;
    let key = stack.seed_tenant("acme").await;
    let runner = stack.start_runner().await;
    let url = runner.url();
    send_telemetry(
        &url,
        &key,
        &telemetry_body(
            "install-eve",
            Some("eve@example.com"),
            vec![heartbeat("eve-1", -600)],
        ),
    )
    .await;
    let licensed = || async {
        stack
            .employees("acme")
            .await
            .into_iter()
            .find(|e| e.licence_state == LicenceState::Licensed)
    };
    assert!(
        eventually(Duration::from_secs(30), || async {
            licensed().await.is_some()
        })
        .await
    );

    // The sweep, 91 days on, reads Eve as a candidate.
    let tenant: TenantItem = stack.item("acme", table::TENANT_SK).await.unwrap();
    let sweep_time = Utc::now() + chrono::Duration::days(91);
    let cutoff = storage_time(Utc::now() + chrono::Duration::days(1));
    let page = stack
        .store
        .extension_inactive(&tenant.tenant_id, &cutoff, None, 10)
        .await
        .unwrap();
    assert_eq!(page.employees.len(), 1);
    let candidate = page.employees[0].clone();

    // A heartbeat lands before the sweep writes.
    send_telemetry(
        &url,
        &key,
        &telemetry_body(
            "install-eve",
            Some("eve@example.com"),
            vec![heartbeat("eve-2", 0)],
        ),
    )
    .await;
    let moved = eventually(Duration::from_secs(30), || async {
        licensed().await.and_then(|e| e.last_extension_activity)
            != candidate.last_extension_activity
    })
    .await;
    assert!(moved, "the heartbeat is recorded on the employee");

    let sweep = inactivity_sweep::InactivitySweep::new(
        &Clients::new(&stack.sdk),
        inactivity_sweep::Config::from_lookup(&stack.environment("InactivitySweepFunction"))
            .unwrap(),
    );
    let outcome = sweep
        .consider(&tenant.tenant_id, &candidate, "2030-01-01", sweep_time)
        .await
        .unwrap();
    assert_eq!(outcome, inactivity_sweep::Outcome::ActiveAgain);
    let eve = licensed().await.expect("Eve keeps her licence");
    assert!(eve.activity_hidden_at.is_none());
    assert_eq!(seats_in_use(&stack, "acme").await, 1);
    runner.stop().await;
}
