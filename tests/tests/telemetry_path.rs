//! The telemetry path on the local stack: HTTP API, ingest, telemetry queue, writer, DynamoDB.

use std::time::Duration;

use reqwest::StatusCode;
use rollcall::table::{AccountItem, AppItem, EmployeeItem, LicenceState, ProfileItem};
use rollcall_tests::{TestStack, eventually, heartbeat, login, telemetry_body};
use serde_json::{Value, json};

const SETTLE: Duration = Duration::from_secs(20);

async fn post(url: &str, key: &str, body: &Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{url}/v1/telemetry"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request is sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_reaches_dynamodb() {
    let stack = TestStack::create().await;
    let key = stack.seed_tenant("acme").await;
    let runner = stack.start_runner().await;

    let body = telemetry_body(
        "install-1",
        Some("Ada.Lovelace@Example.COM"),
        vec![
            heartbeat("e-1", -300),
            login(
                "e-2",
                -200,
                "app.slack.com",
                "ada.lovelace@example.com",
                "oidc_google",
            ),
            login(
                "e-3",
                -100,
                "App.Slack.com.",
                "Ada.Lovelace@example.com",
                "password",
            ),
        ],
    );
    let (status, answer) = post(&runner.url(), &key, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["accepted"], 3);
    assert_eq!(answer["rejected"], 0);

    runner
        .wait_until_idle(&["TelemetryQueue"], SETTLE)
        .await
        .expect("telemetry queue drains");
    let profile: ProfileItem = stack
        .item("acme", "PROFILE#install-1")
        .await
        .expect("profile stored");
    assert_eq!(
        profile.identity_email.as_deref(),
        Some("ada.lovelace@example.com")
    );
    assert!(profile.managed);
    assert!(profile.first_seen < profile.last_seen);

    let account: AccountItem = stack
        .item("acme", "ACCOUNT#app.slack.com#ada.lovelace@example.com")
        .await
        .expect("account stored");
    let mut methods = account.login_methods.clone();
    methods.sort();
    assert_eq!(methods, vec!["oidc_google", "password"]);
    let app: AppItem = stack
        .item("acme", "APP#app.slack.com")
        .await
        .expect("app stored");
    assert_eq!(app.app_domain, "app.slack.com");
    assert_eq!(stack.items("acme", "EVENT#").await.len(), 3);

    let email = rollcall::email::canonical_email("ada.lovelace@example.com").unwrap();
    let tenant = rollcall::ids::TenantId::parse("acme").unwrap();
    let accounts = stack
        .store
        .accounts_for_email(&tenant, &email)
        .await
        .unwrap();
    assert_eq!(accounts.len(), 1, "index gsi1 finds the account by email");

    // The identity observation reached automatic licensing: a managed install, a company email.
    runner
        .wait_until_idle(&["LicensingQueue"], SETTLE)
        .await
        .unwrap();
    let employees = stack.items("acme", "EMPLOYEE#").await;
    assert_eq!(employees.len(), 1);
    let employee: EmployeeItem = serde_dynamo::from_item(employees[0].clone()).unwrap();
    assert_eq!(employee.primary_email, "ada.lovelace@example.com");
    assert_eq!(employee.licence_state, LicenceState::Licensed);
    let linked: ProfileItem = stack.item("acme", "PROFILE#install-1").await.unwrap();
    assert_eq!(
        linked.employee_id.as_deref(),
        Some(employee.employee_id.as_str())
    );
    assert!(stack.drain("TelemetryDeadLetterQueue", 10).await.is_empty());
    assert!(stack.drain("LicensingDeadLetterQueue", 10).await.is_empty());
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resent_request_changes_nothing() {
    let stack = TestStack::create().await;
    let key = stack.seed_tenant("acme").await;
    let runner = stack.start_runner().await;
    let body = telemetry_body(
        "install-2",
        Some("bo@example.com"),
        vec![login(
            "e-1",
            -60,
            "github.com",
            "bo@example.com",
            "sso_saml",
        )],
    );

    let (first, _) = post(&runner.url(), &key, &body).await;
    assert_eq!(first, StatusCode::ACCEPTED);
    runner
        .wait_until_idle(&["TelemetryQueue", "LicensingQueue"], SETTLE)
        .await
        .unwrap();
    let before = stack.items("acme", "").await;
    assert_eq!(stack.items("acme", "OBSERVATION#").await.len(), 1);

    let (second, _) = post(&runner.url(), &key, &body).await;
    assert_eq!(second, StatusCode::ACCEPTED);
    runner
        .wait_until_idle(&["TelemetryQueue", "LicensingQueue"], SETTLE)
        .await
        .unwrap();
    let after = stack.items("acme", "").await;

    assert_eq!(before, after, "the second delivery wrote nothing");
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_comes_from_key() {
    let stack = TestStack::create().await;
    let acme_key = stack.seed_tenant("acme").await;
    let _globex_key = stack.seed_tenant("globex").await;
    let runner = stack.start_runner().await;

    let mut body = telemetry_body("install-3", None, vec![heartbeat("e-1", -10)]);
    body["tenant_id"] = json!("globex");
    let (status, _) = post(&runner.url(), &acme_key, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let swapped = acme_key.replacen("rcx_acme.", "rcx_globex.", 1);
    let (status, _) = post(&runner.url(), &swapped, &body).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a key names its tenant only as a lookup hint"
    );

    runner
        .wait_until_idle(&["TelemetryQueue"], SETTLE)
        .await
        .unwrap();
    assert!(
        stack
            .item::<ProfileItem>("acme", "PROFILE#install-3")
            .await
            .is_some()
    );
    assert!(
        stack
            .item::<ProfileItem>("globex", "PROFILE#install-3")
            .await
            .is_none()
    );
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_reaches_dead_letter_queue_through_runner() {
    let stack = TestStack::create().await;
    let runner = stack.start_runner().await;

    stack
        .sqs
        .send_message()
        .queue_url(stack.queue_url("TelemetryQueue"))
        .message_body("{\"not\": \"an envelope\"}")
        .send()
        .await
        .unwrap();
    let arrived = eventually(SETTLE, || async {
        !stack.drain("TelemetryDeadLetterQueue", 1).await.is_empty()
    })
    .await;
    assert!(
        arrived,
        "the malformed message was moved to the dead-letter queue"
    );
    runner
        .wait_until_idle(&["TelemetryQueue"], SETTLE)
        .await
        .unwrap();
    runner.stop().await;
}
