//! Self-enrolment and email: a manual add sends a single-use link through the mail queue and
//! SES; the extension redeems it at `POST /v1/enroll`, which licenses the employee and returns an
//! extension key. Also administrator invitations and the mailer's once-only sending.

use std::time::Duration;

use local_runner::Runner;
use local_runner::demo::TenantSettings;
use reqwest::StatusCode;
use rollcall::aws::Clients;
use rollcall::enrolment::EnrolmentItem;
use rollcall::envelope::{MAIL_MESSAGE_VERSION, MailMessage};
use rollcall::table::{EmployeeItem, LicenceState};
use rollcall_tests::{TestStack, endpoint, eventually, heartbeat, sqs_event, telemetry_body};
use serde_json::{Value, json};

const SETTLE: Duration = Duration::from_secs(20);

/// Returns the bodies of the emails moto's SES accepted for `recipient`, through the endpoint
/// `scripts/moto_server.py` adds.
async fn sent_to(recipient: &str) -> Vec<String> {
    let url = format!("{}/rollcall-local/ses/sent-messages", endpoint());
    let messages: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let mut bodies = Vec::new();
    for message in messages.as_array().into_iter().flatten() {
        let to = message["destinations"].to_string();
        if to.contains(recipient) {
            bodies.push(message["body"].as_str().unwrap_or_default().to_owned());
        }
    }
    bodies
}

fn token_in(body: &str) -> String {
    let start = body
        .find("token=")
        .expect("the email carries a link with a token")
        + "token=".len();
    body[start..].split_whitespace().next().unwrap().to_owned()
}

async fn admin_post(runner: &Runner, path: &str, body: Value) -> (StatusCode, Value) {
    let token = runner.admin_token("acme", "owner@example.com", 600);
    let response = reqwest::Client::new()
        .post(format!("{}{path}", runner.url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn enroll(runner: &Runner, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/enroll", runner.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_link_licenses_once() {
    let stack = TestStack::create().await;
    stack.seed_tenant("acme").await;
    let runner = stack.start_runner().await;
    let email = format!("{}@example.com", rollcall_tests::unique_prefix());

    let (status, added) = admin_post(
        &runner,
        "/v1/admin/employees",
        json!({"name": "New Joiner", "email": email, "send_enrolment_email": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["enrolment_email_queued"], true);
    runner
        .wait_until_idle(&["MailQueue"], SETTLE)
        .await
        .unwrap();
    let mails = sent_to(&email).await;
    assert_eq!(mails.len(), 1, "one enrolment email");
    let token = token_in(&mails[0]);

    let (status, enrolled) = enroll(
        &runner,
        json!({"token": token, "install_id": "install-enrol"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{enrolled}");
    assert_eq!(enrolled["licensed"], true);
    assert_eq!(enrolled["tenant_id"], "acme");
    let extension_key = enrolled["extension_key"].as_str().unwrap().to_owned();

    let employee_id = added["employee_id"].as_str().unwrap();
    let employee: EmployeeItem = stack
        .item("acme", &format!("EMPLOYEE#{employee_id}"))
        .await
        .unwrap();
    assert_eq!(employee.licence_state, LicenceState::Licensed);
    assert!(employee.sources.contains(&"extension".to_owned()));
    assert_eq!(employee.install_ids, vec!["install-enrol"]);

    let telemetry = telemetry_body("install-enrol", None, vec![heartbeat("e-1", -5)]);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/telemetry", runner.url()))
        .bearer_auth(&extension_key)
        .json(&telemetry)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::ACCEPTED,
        "the returned key works"
    );

    let (status, again) = enroll(
        &runner,
        json!({"token": token, "install_id": "install-other"}),
    )
    .await;
    assert_eq!(status, StatusCode::GONE, "a link works once: {again}");
    assert!(again["detail"].as_str().unwrap().contains("already used"));
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_expired_links_rejected() {
    let stack = TestStack::create().await;
    stack
        .seed_tenant_with(
            "acme",
            &TenantSettings {
                plan_seats: 0,
                ..Default::default()
            },
        )
        .await;
    let runner = stack.start_runner().await;
    let email = format!("{}@example.com", rollcall_tests::unique_prefix());
    let (_, added) = admin_post(
        &runner,
        "/v1/admin/employees",
        json!({"name": "Someone", "email": email}),
    )
    .await;
    let employee_id = added["employee_id"].as_str().unwrap().to_owned();

    let (status, queued) = admin_post(
        &runner,
        &format!("/v1/admin/employees/{employee_id}/enrolment-email"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    admin_post(
        &runner,
        &format!("/v1/admin/employees/{employee_id}/enrolment-email"),
        json!({}),
    )
    .await;
    runner
        .wait_until_idle(&["MailQueue"], SETTLE)
        .await
        .unwrap();
    let mails = sent_to(&email).await;
    assert_eq!(mails.len(), 2);
    let (fresh, stale) = (token_in(&mails[0]), token_in(&mails[1]));

    // Expire one link by hand, as if seven days had passed.
    let links = stack.items("acme", "ENROL#").await;
    assert_eq!(links.len(), 2);
    let stale_hash = rollcall::enrolment::parse(&stale).unwrap().secret_sha256;
    let mut stale_item: EnrolmentItem = stack
        .item("acme", &rollcall::enrolment::enrolment_sk(&stale_hash))
        .await
        .unwrap();
    stale_item.expires_at = chrono::Utc::now().timestamp() - 60;
    stack.store.put(&stale_item).await.unwrap();
    let (status, expired) =
        enroll(&runner, json!({"token": stale, "install_id": "install-1"})).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(
        expired["detail"].as_str().unwrap().contains("expired"),
        "{expired}"
    );

    let cases = [
        (
            json!({"token": "not-a-token", "install_id": "install-1"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"token": format!("rce_acme.{}", "A".repeat(43)), "install_id": "install-1"}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"token": fresh, "install_id": "bad id#"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"token": fresh}), StatusCode::BAD_REQUEST),
    ];
    for (body, expected) in cases {
        let (status, problem) = enroll(&runner, body.clone()).await;
        assert_eq!(status, expected, "{body}: {problem}");
        assert!(!problem["detail"].as_str().unwrap_or("").is_empty());
    }

    // No seat is free: enrolment still completes, unlicensed, and says why.
    let (status, enrolled) =
        enroll(&runner, json!({"token": fresh, "install_id": "install-1"})).await;
    assert_eq!(status, StatusCode::OK, "{enrolled}");
    assert_eq!(enrolled["licensed"], false);
    assert!(enrolled["detail"].as_str().unwrap().contains("no seat"));
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitation_emailed() {
    let stack = TestStack::create().await;
    stack.seed_tenant("acme").await;
    let runner = stack.start_runner().await;
    let invitee = format!("{}@msp.example", rollcall_tests::unique_prefix());

    let (status, invited) = admin_post(
        &runner,
        "/v1/admin/administrators",
        json!({"email": invitee, "role": "read_only"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{invited}");
    assert_eq!(invited["invitation_email_queued"], true);
    runner
        .wait_until_idle(&["MailQueue"], SETTLE)
        .await
        .unwrap();
    let mails = sent_to(&invitee).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("owner@example.com invited you"),
        "{}",
        mails[0]
    );
    runner.stop().await;
}

#[tokio::test]
async fn mailer_sends_each_mail_once() {
    let stack = TestStack::create().await;
    let config = mailer::Config::from_lookup(&stack.environment("MailerFunction")).unwrap();
    let mailer = mailer::Mailer::new(&Clients::new(&stack.sdk), config);
    let arn = stack.stack.queue("MailQueue").unwrap().arn.clone();
    let recipient = format!("{}@example.com", rollcall_tests::unique_prefix());
    let mail = MailMessage {
        version: MAIL_MESSAGE_VERSION,
        mail_id: "mail-1".into(),
        tenant_id: rollcall::ids::TenantId::parse("acme").unwrap(),
        to: rollcall::email::canonical_email(&recipient).unwrap(),
        subject: "Hello".into(),
        text: "Body".into(),
    };
    let body = serde_json::to_string(&mail).unwrap();

    let first = mailer
        .handle(sqs_event(&arn, &[("m-1", &body, 1)]))
        .await
        .unwrap();
    assert!(first.batch_item_failures.is_empty());
    let again = mailer
        .handle(sqs_event(
            &arn,
            &[("m-1", &body, 2), ("m-2", "{not json", 1)],
        ))
        .await
        .unwrap();
    assert!(again.batch_item_failures.is_empty());

    let sent = eventually(Duration::from_secs(2), || async {
        sent_to(&recipient).await.len() == 1
    })
    .await;
    assert!(sent, "a redelivered mail is not sent twice");
    assert_eq!(
        stack.drain("MailDeadLetterQueue", 10).await.len(),
        1,
        "the malformed message is dead-lettered"
    );
}
