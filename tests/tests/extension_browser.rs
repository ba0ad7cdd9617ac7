//! The reference extension (`extension/`) in Debian's Chromium against the local API: a
//! managed install and a self-enrolled one. `extension/test/extension.test.mjs` drives the
//! browser with playwright-core; this test starts the API, runs it, and checks what reached
//! DynamoDB.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use rollcall::envelope::MailMessage;
use rollcall::table::{self, AccountItem, EmployeeItem, LicenceState, ProfileItem, source};
use rollcall_tests::{AdminClient, TestStack, workspace_root};
use serde_json::{Value, json};

const TENANT: &str = "acme";
const ADA: &str = "ada.lovelace@example.com";
const GRACE: &str = "grace.hopper@example.com";

async fn employee(stack: &TestStack, email: &str) -> EmployeeItem {
    stack
        .employees(TENANT)
        .await
        .into_iter()
        .find(|e| e.emails.iter().any(|known| known == email))
        .unwrap_or_else(|| panic!("an employee with {email}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_reports_from_chromium() {
    let stack = TestStack::create().await;
    let key = stack.seed_tenant(TENANT).await;
    // The mailer stays off, so the enrolment email waits on its queue for this test to read.
    let runner = stack.start_runner_without(&["MailerFunction"]).await;
    let admin = AdminClient::new(&runner, TENANT, "owner@example.com");
    let (status, body) = admin
        .post(
            "/v1/admin/employees",
            json!({"name": "Grace Hopper", "email": GRACE, "send_enrolment_email": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mail = stack.drain("MailQueue", 1).await;
    let mail = MailMessage::from_body(&mail[0].0).unwrap();
    let link = mail
        .text
        .split_whitespace()
        .find(|word| word.contains("?token="))
        .expect("the email carries the link")
        .to_owned();

    let report_path =
        std::env::temp_dir().join(format!("rollcall-extension-{}.json", uuid_suffix()));
    let output = Command::new("node")
        .args([
            "--test",
            "--test-concurrency=1",
            "test/sso.test.mjs",
            "test/extension.test.mjs",
        ])
        .current_dir(workspace_root().join("extension"))
        .env("ROLLCALL_API_URL", runner.url())
        .env("ROLLCALL_EXTENSION_KEY", &key)
        .env("ROLLCALL_ENROLMENT_LINK", &link)
        .env("ROLLCALL_REPORT", &report_path)
        .output()
        .expect("node runs: scripts/setup installs Node.js packages and Chromium");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser tests failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&report_path);
    runner
        .wait_until_idle(
            &["TelemetryQueue", "LicensingQueue"],
            Duration::from_secs(60),
        )
        .await
        .unwrap();

    // The managed install: Ada licensed automatically, with her accounts and login methods.
    let ada = employee(&stack, ADA).await;
    assert_eq!(ada.licence_state, LicenceState::Licensed);
    assert!(ada.sources.contains(&source::EXTENSION.to_owned()));
    let managed_install = report["managed"]["installId"].as_str().unwrap();
    assert!(ada.install_ids.iter().any(|id| id == managed_install));
    let profile: ProfileItem = stack
        .item(TENANT, &table::profile_sk(managed_install))
        .await
        .unwrap();
    assert!(profile.managed);
    assert_eq!(profile.identity_email.as_deref(), Some(ADA));
    assert_eq!(profile.identity_source.as_deref(), Some("gmail"));
    let accounts: Vec<AccountItem> = stack
        .items(TENANT, "ACCOUNT#")
        .await
        .into_iter()
        .map(|item| serde_dynamo::from_item(item).unwrap())
        .collect();
    for (app, method) in [
        ("app.slack.com", "password"),
        ("www.notion.so", "password"),
        ("www.figma.com", "oidc_google"),
    ] {
        let account = accounts
            .iter()
            .find(|a| a.app_domain == app && a.account_email == ADA)
            .unwrap_or_else(|| panic!("{app} account of {ADA} in {accounts:?}"));
        assert!(
            account.login_methods.iter().any(|m| m == method),
            "{account:?}"
        );
    }

    // Each event sent more than once is stored once: one marker per distinct event id.
    let distinct: HashSet<&str> = report["managed"]["distinctEventIds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let forwarded = report["managed"]["forwardedEventIds"]
        .as_array()
        .unwrap()
        .len();
    assert!(forwarded > distinct.len(), "some events were sent twice");
    let markers = stack
        .items(TENANT, &format!("EVENT#{managed_install}#"))
        .await
        .len();
    assert_eq!(markers, distinct.len());

    // The self-enrolled install: Grace licensed by her enrolment, her identity from Outlook.
    let grace = employee(&stack, GRACE).await;
    assert_eq!(grace.licence_state, LicenceState::Licensed);
    let enrolled_install = report["selfEnrolled"]["installId"].as_str().unwrap();
    assert!(grace.install_ids.iter().any(|id| id == enrolled_install));
    let profile: ProfileItem = stack
        .item(TENANT, &table::profile_sk(enrolled_install))
        .await
        .unwrap();
    assert!(!profile.managed);
    assert_eq!(profile.identity_email.as_deref(), Some(GRACE));
    assert_eq!(profile.identity_source.as_deref(), Some("outlook"));
    runner.stop().await;
}

fn uuid_suffix() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}
