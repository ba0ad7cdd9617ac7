//! Directory sync through the whole pipeline on the local stack: connect, the sync worker
//! reading the mock providers, the directory queue, the directory writer and DynamoDB.
//!
//! The tests cover full, unchanged and incremental runs, and page and delta tokens that expire.
//! They cover throttling as each provider signals it, and suspended, archived, deprovisioned
//! and guest accounts. They also cover users without a mailbox, email changes, permission and
//! grant errors, removals and the sources that keep an employee, and runs that continue over
//! several invocations.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use mock_idp::{AccountState, Credentials, Directory, Fault, FaultKind, MockConfig};
use reqwest::StatusCode;
use rollcall::directory::{
    AccountStatus, Activity, ActivityItem, DirectoryUserItem, directory_user_sk,
};
use rollcall::integration::{IntegrationItem, IntegrationStatus, Provider, SyncSummary};
use rollcall::table::{EmployeeItem, LicenceState};
use rollcall_tests::providers::{ProviderStack, TENANT, directory_user as user};
use serde_json::json;

fn directories(microsoft: Directory, google: Directory, okta: Directory) -> MockConfig {
    MockConfig {
        microsoft,
        google,
        okta,
        credentials: Credentials::default(),
    }
}

async fn start(config: MockConfig, parameters: &[(&str, &str)]) -> ProviderStack {
    // Short waits so that throttling tests take seconds, not minutes.
    let mut all = vec![("SyncBackoffBaseMillis", "20")];
    all.extend_from_slice(parameters);
    ProviderStack::start_with_config(config, &all, true).await
}

async fn settle(stack: &ProviderStack) {
    stack.settle().await;
}

async fn connect(stack: &ProviderStack, provider: Provider) {
    stack.connect_and_sync(provider, &[]).await;
}

async fn resync(stack: &ProviderStack) {
    stack.resync().await;
}

async fn integration(stack: &ProviderStack, provider: Provider) -> IntegrationItem {
    stack.integration(provider).await.expect("integration")
}

async fn last_sync(stack: &ProviderStack, provider: Provider) -> SyncSummary {
    integration(stack, provider)
        .await
        .last_sync
        .expect("a run finished")
}

async fn directory_users(
    stack: &ProviderStack,
    provider: Provider,
) -> HashMap<String, DirectoryUserItem> {
    stack
        .stack
        .items(TENANT, &format!("DIRUSER#{provider}#"))
        .await
        .into_iter()
        .map(|item| {
            let user: DirectoryUserItem = serde_dynamo::from_item(item).unwrap();
            (user.user.id.clone(), user)
        })
        .collect()
}

/// Moves the last full run a day back, so that the next run is full.
async fn age_last_full_run(stack: &ProviderStack, provider: Provider) {
    let mut item = integration(stack, provider).await;
    item.last_full_sync_at = Some((chrono::Utc::now() - chrono::Duration::hours(25)).to_rfc3339());
    stack.stack.store.put(&item).await.unwrap();
}

async fn employees(stack: &ProviderStack) -> Vec<EmployeeItem> {
    stack
        .stack
        .items(TENANT, "EMPLOYEE#")
        .await
        .into_iter()
        .map(|item| serde_dynamo::from_item(item).unwrap())
        .collect()
}

async fn employee_by_email(stack: &ProviderStack, email: &str) -> Option<EmployeeItem> {
    employees(stack)
        .await
        .into_iter()
        .find(|e| e.primary_email == email)
}

#[tokio::test]
async fn microsoft_full_unchanged_and_incremental_runs() {
    let microsoft = Directory::generate("contoso.example", 250, 1);
    let guests = microsoft.users.iter().filter(|u| u.guest).count();
    let stack = start(
        directories(
            microsoft.clone(),
            Directory::default(),
            Directory::default(),
        ),
        &[],
    )
    .await;
    connect(&stack, Provider::Microsoft).await;

    let first = last_sync(&stack, Provider::Microsoft).await;
    assert!(first.complete, "{first:?}");
    assert_eq!(first.mode, "full");
    assert_eq!(first.added, 250);
    let records = directory_users(&stack, Provider::Microsoft).await;
    assert_eq!(records.len(), 250);
    for user in &microsoft.users[..6] {
        let record = &records[&user.id].user;
        assert_eq!(
            record.is_admin,
            Some(user.is_admin),
            "admin role of {}",
            user.id
        );
        assert_eq!(record.mfa, Some(user.mfa_enrolled), "MFA of {}", user.id);
    }
    let people = employees(&stack).await;
    assert_eq!(people.len(), 250 - guests, "guests are not employees");
    assert!(
        people
            .iter()
            .all(|e| e.licence_state == LicenceState::Unlicensed)
    );
    assert!(
        people
            .iter()
            .all(|e| e.sources == vec!["integration:microsoft".to_owned()])
    );
    assert_eq!(
        stack.count("microsoft.users"),
        1,
        "250 users fit one page of 999"
    );
    assert!(
        integration(&stack, Provider::Microsoft)
            .await
            .delta_link
            .is_some()
    );

    // Nothing changed: nothing is sent or written.
    let before = directory_users(&stack, Provider::Microsoft).await;
    resync(&stack).await;
    let unchanged = last_sync(&stack, Provider::Microsoft).await;
    assert!(unchanged.complete);
    assert_eq!(unchanged.mode, "incremental");
    assert_eq!(
        (unchanged.added, unchanged.updated, unchanged.removed),
        (0, 0, 0)
    );
    assert_eq!(directory_users(&stack, Provider::Microsoft).await, before);

    // One rename and one departure arrive through the delta link.
    let mut renamed = microsoft.users[5].clone();
    renamed.family_name = "Renamed".to_owned();
    let departed = microsoft.users[7].clone();
    stack.mock.with_state(|state| {
        state.upsert_user("microsoft", renamed.clone()).unwrap();
        state.remove_user("microsoft", &departed.id).unwrap();
    });
    resync(&stack).await;
    let changed = last_sync(&stack, Provider::Microsoft).await;
    assert_eq!(changed.mode, "incremental");
    assert_eq!((changed.added, changed.updated, changed.removed), (0, 1, 1));
    let employee = employee_by_email(&stack, &renamed.email).await.unwrap();
    assert_eq!(
        employee.name.as_deref(),
        Some(format!("{} Renamed", renamed.given_name).as_str())
    );
    assert!(employee_by_email(&stack, &departed.email).await.is_none());
    assert!(
        !directory_users(&stack, Provider::Microsoft)
            .await
            .contains_key(&departed.id)
    );
}

#[tokio::test]
async fn expired_page_token_restarts_the_listing() {
    let microsoft = Directory::generate("contoso.example", 1_200, 4);
    let stack = start(
        directories(microsoft, Directory::default(), Directory::default()),
        &[],
    )
    .await;
    stack.mock.inject(Fault {
        endpoint: "microsoft.users".into(),
        kind: FaultKind::ExpiredPageToken,
        count: 1,
    });
    connect(&stack, Provider::Microsoft).await;

    let run = last_sync(&stack, Provider::Microsoft).await;
    assert!(run.complete, "{run:?}");
    assert_eq!(run.added, 1_200, "each user is added once");
    assert_eq!(
        stack.count("microsoft.users"),
        4,
        "page 1, the expired page 2, then pages 1 and 2 again"
    );
    assert_eq!(
        directory_users(&stack, Provider::Microsoft).await.len(),
        1_200
    );
}

#[tokio::test]
async fn throttled_requests_wait_as_told() {
    let stack = start(
        directories(
            Directory::generate("contoso.example", 40, 5),
            Directory::default(),
            Directory::default(),
        ),
        &[],
    )
    .await;
    for retry_after in [Some("0.249"), None, Some("1")] {
        stack.mock.inject(Fault {
            endpoint: "microsoft.users".into(),
            kind: FaultKind::Throttle {
                retry_after: retry_after.map(str::to_owned),
            },
            count: 1,
        });
    }
    let started = Instant::now();
    connect(&stack, Provider::Microsoft).await;
    let run = last_sync(&stack, Provider::Microsoft).await;
    assert!(run.complete, "{run:?}");
    assert_eq!(run.added, 40, "no user lost or doubled");
    assert_eq!(stack.count("microsoft.users"), 4);
    assert!(
        started.elapsed() >= Duration::from_millis(1_249),
        "the waits were honoured"
    );
}

#[tokio::test]
async fn throttling_past_the_cap_leaves_the_run_incomplete() {
    let stack = start(
        directories(
            Directory::generate("contoso.example", 40, 5),
            Directory::default(),
            Directory::default(),
        ),
        &[("SyncMaxBackoffMillis", "1500")],
    )
    .await;
    stack.mock.inject(Fault {
        endpoint: "microsoft.users".into(),
        kind: FaultKind::Throttle {
            retry_after: Some("1".to_owned()),
        },
        count: 10,
    });
    connect(&stack, Provider::Microsoft).await;
    let run = last_sync(&stack, Provider::Microsoft).await;
    assert!(!run.complete);
    assert!(run.error.unwrap().contains("throttled"));
    assert!(employees(&stack).await.is_empty());
    assert_eq!(
        integration(&stack, Provider::Microsoft).await.status,
        IntegrationStatus::Connected,
        "throttling needs no administrator"
    );
}

#[tokio::test]
async fn mailbox_less_guest_and_email_change() {
    let mut dana = user("u10", "dana@contoso.example");
    dana.has_mailbox = false;
    let mut pat = user("u11", "pat@partner.example");
    pat.guest = true;
    pat.has_mailbox = false;
    let mut sam = user("u12", "sam@contoso.example");
    sam.state = AccountState::Suspended;
    let microsoft = Directory {
        domain: "contoso.example".to_owned(),
        users: vec![dana.clone(), pat, sam],
        ..Default::default()
    };
    let stack = start(
        directories(microsoft, Directory::default(), Directory::default()),
        &[],
    )
    .await;
    connect(&stack, Provider::Microsoft).await;

    let records = directory_users(&stack, Provider::Microsoft).await;
    assert_eq!(
        records["u10"].user.email.as_deref(),
        Some("dana@contoso.example")
    );
    assert!(records["u11"].user.guest);
    assert_eq!(records["u11"].user.email, None, "a #EXT# name is no email");
    assert_eq!(records["u11"].employee_id, None);
    assert_eq!(records["u12"].user.status, Some(AccountStatus::Suspended));
    assert_eq!(employees(&stack).await.len(), 2);
    let dana_id = records["u10"].employee_id.clone().unwrap();

    // The mailbox arrives with a new address: the same employee, with the new email.
    dana.email = "dana.lee@contoso.example".to_owned();
    dana.has_mailbox = true;
    stack
        .mock
        .with_state(|state| state.upsert_user("microsoft", dana.clone()).unwrap());
    resync(&stack).await;
    let employee = employee_by_email(&stack, "dana.lee@contoso.example")
        .await
        .expect("email updated");
    assert_eq!(employee.employee_id, dana_id);
    assert_eq!(employee.emails, vec!["dana.lee@contoso.example".to_owned()]);
    assert_eq!(employees(&stack).await.len(), 2, "no second employee");
    assert!(
        stack
            .stack
            .item::<serde_json::Value>(TENANT, "EMAIL#dana@contoso.example")
            .await
            .is_none(),
        "the old email is free"
    );
}

#[tokio::test]
async fn expired_delta_token_runs_full() {
    let microsoft = Directory::generate("contoso.example", 30, 6);
    let stack = start(
        directories(
            microsoft.clone(),
            Directory::default(),
            Directory::default(),
        ),
        &[],
    )
    .await;
    connect(&stack, Provider::Microsoft).await;
    let old_link = integration(&stack, Provider::Microsoft).await.delta_link;

    let mut renamed = microsoft.users[3].clone();
    renamed.family_name = "Renamed".to_owned();
    stack
        .mock
        .with_state(|state| state.upsert_user("microsoft", renamed.clone()).unwrap());
    stack.mock.inject(Fault {
        endpoint: "microsoft.users_delta".into(),
        kind: FaultKind::ExpiredDeltaToken,
        count: 1,
    });
    resync(&stack).await;
    let run = last_sync(&stack, Provider::Microsoft).await;
    assert!(run.complete, "{run:?}");
    assert_eq!(run.mode, "full");
    assert_eq!(run.updated, 1, "the full run finds the change");
    let new_link = integration(&stack, Provider::Microsoft).await.delta_link;
    assert!(new_link.is_some());
    assert_ne!(
        new_link, old_link,
        "a fresh delta link replaces the expired one"
    );
}

#[tokio::test]
async fn google_statuses_and_forbidden_reasons() {
    let google = Directory::generate("fabrikam.example", 100, 2);
    let stack = start(
        directories(Directory::default(), google.clone(), Directory::default()),
        &[],
    )
    .await;
    connect(&stack, Provider::Google).await;
    let run = last_sync(&stack, Provider::Google).await;
    assert!(run.complete, "{run:?}");
    let records = directory_users(&stack, Provider::Google).await;
    assert_eq!(records.len(), 100);
    assert_eq!(
        records[&google.users[39].id].user.status,
        Some(AccountStatus::Suspended)
    );
    assert_eq!(
        records[&google.users[96].id].user.status,
        Some(AccountStatus::Archived)
    );
    assert_eq!(records[&google.users[0].id].user.is_admin, Some(true));
    assert_eq!(records[&google.users[0].id].user.mfa, Some(false));

    // A rate-limit 403 is transient: the page is fetched again.
    stack.mock.inject(Fault {
        endpoint: "google.users".into(),
        kind: FaultKind::GoogleForbidden {
            reason: "userRateLimitExceeded".into(),
        },
        count: 1,
    });
    resync(&stack).await;
    assert!(last_sync(&stack, Provider::Google).await.complete);

    // A plain `forbidden` is permanent: the run fails and nothing is removed.
    stack.mock.inject(Fault {
        endpoint: "google.users".into(),
        kind: FaultKind::GoogleForbidden {
            reason: "forbidden".into(),
        },
        count: 1,
    });
    resync(&stack).await;
    let run = last_sync(&stack, Provider::Google).await;
    assert!(!run.complete);
    let item = integration(&stack, Provider::Google).await;
    assert_eq!(item.status, IntegrationStatus::NeedsAttention);
    assert!(item.last_error.unwrap().contains("forbidden"));
    assert_eq!(directory_users(&stack, Provider::Google).await.len(), 100);
}

#[tokio::test]
async fn unauthorised_delegation_stops_before_any_directory_call() {
    let stack = start(
        directories(
            Directory::default(),
            Directory::generate("fabrikam.example", 20, 2),
            Directory::default(),
        ),
        &[],
    )
    .await;
    connect(&stack, Provider::Google).await;
    let (status, body) = stack
        .admin
        .put(
            "/v1/admin/integrations/google/delegation",
            json!({"admin_email": stack.credentials.google_delegated_admin}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    resync(&stack).await;
    assert!(
        last_sync(&stack, Provider::Google).await.complete,
        "delegated token works"
    );

    // The Workspace administrator withdraws the authorisation.
    stack.mock.with_state(|state| {
        state.config.credentials.google_delegation_scopes =
            vec!["https://www.googleapis.com/auth/admin.directory.user.readonly".into()];
    });
    let listed = stack.count("google.users");
    resync(&stack).await;
    let item = integration(&stack, Provider::Google).await;
    assert!(!item.last_sync.unwrap().complete);
    assert_eq!(item.status, IntegrationStatus::NeedsAttention);
    let error = item.last_error.unwrap();
    assert!(
        error.contains(local_runner::providers::SERVICE_ACCOUNT_CLIENT_ID),
        "{error}"
    );
    assert!(error.contains("gmail.settings.basic"), "{error}");
    assert_eq!(stack.count("google.users"), listed, "no directory call");
    assert_eq!(directory_users(&stack, Provider::Google).await.len(), 20);
}

#[tokio::test]
async fn okta_deprovisioned_statuses_and_rate_limit_reset() {
    let okta = Directory::generate("initech.example", 100, 3);
    let stack = start(
        directories(Directory::default(), Directory::default(), okta.clone()),
        &[],
    )
    .await;
    connect(&stack, Provider::Okta).await;
    let records = directory_users(&stack, Provider::Okta).await;
    assert_eq!(
        records.len(),
        100,
        "deprovisioned users are listed apart and kept"
    );
    assert_eq!(
        records[&okta.users[52].id].user.status,
        Some(AccountStatus::Deprovisioned)
    );
    assert_eq!(
        records[&okta.users[39].id].user.status,
        Some(AccountStatus::Suspended)
    );
    assert_eq!(
        records[&okta.users[1].id].user.status,
        Some(AccountStatus::Active)
    );
    for user in &okta.users[..6] {
        assert_eq!(
            records[&user.id].user.mfa,
            Some(user.mfa_enrolled),
            "factors of {}",
            user.id
        );
    }

    // The server's clock runs two minutes behind: only reset minus Date is waited.
    stack.mock.inject(Fault {
        endpoint: "okta.users".into(),
        kind: FaultKind::OktaRateLimit {
            reset_after_seconds: 1,
            server_clock_offset_seconds: -120,
        },
        count: 1,
    });
    let started = Instant::now();
    resync(&stack).await;
    let run = last_sync(&stack, Provider::Okta).await;
    assert!(run.complete, "{run:?}");
    assert_eq!((run.added, run.updated, run.removed), (0, 0, 0));
    assert!(started.elapsed() < Duration::from_secs(60));

    // Later runs list only users updated since the last one.
    let mut renamed = okta.users[3].clone();
    renamed.family_name = "Renamed".to_owned();
    stack
        .mock
        .with_state(|state| state.upsert_user("okta", renamed.clone()).unwrap());
    let listed = stack.count("okta.users");
    resync(&stack).await;
    let run = last_sync(&stack, Provider::Okta).await;
    assert_eq!(run.mode, "incremental");
    assert_eq!((run.added, run.updated, run.removed), (0, 1, 0));
    assert_eq!(stack.count("okta.users"), listed + 1, "one page of changes");
}

#[tokio::test]
async fn invalid_grant_requires_connecting_again() {
    let stack = start(
        directories(
            Directory::generate("contoso.example", 20, 7),
            Directory::default(),
            Directory::default(),
        ),
        &[],
    )
    .await;
    connect(&stack, Provider::Microsoft).await;
    let people = employees(&stack).await.len();

    stack.mock.inject(Fault {
        endpoint: "microsoft.token".into(),
        kind: FaultKind::InvalidGrant,
        count: 1,
    });
    resync(&stack).await;
    let item = integration(&stack, Provider::Microsoft).await;
    assert_eq!(item.status, IntegrationStatus::ReauthorisationRequired);
    assert!(
        !item.last_sync.unwrap().complete,
        "a failed run, not zero users"
    );
    assert_eq!(employees(&stack).await.len(), people, "nothing removed");

    // The scheduler skips it until an administrator connects again.
    let tokens = stack.count("microsoft.token");
    resync(&stack).await;
    assert_eq!(stack.count("microsoft.token"), tokens);

    connect(&stack, Provider::Microsoft).await;
    let item = integration(&stack, Provider::Microsoft).await;
    assert_eq!(item.status, IntegrationStatus::Connected);
    assert!(item.last_sync.unwrap().complete);
}

#[tokio::test]
async fn removals_across_continued_invocations() {
    let okta = Directory::generate("initech.example", 450, 8);
    // A one-millisecond budget: every invocation reads one page and continues in the next.
    let stack = start(
        directories(Directory::default(), Directory::default(), okta.clone()),
        &[("SyncTimeBudgetMillis", "1")],
    )
    .await;
    connect(&stack, Provider::Okta).await;
    let run = last_sync(&stack, Provider::Okta).await;
    assert!(run.complete, "{run:?}");
    assert_eq!(run.added, 450);

    // One leaver has no other source; the other also uses the extension and keeps a record.
    let leaver = okta.users[10].clone();
    let enrolled = okta.users[11].clone();
    let kept = employee_by_email(&stack, &enrolled.email).await.unwrap();
    stack
        .stack
        .store
        .client()
        .update_item()
        .table_name(stack.stack.store.table_name())
        .key("pk", AttributeValue::S(kept.pk.clone()))
        .key("sk", AttributeValue::S(kept.sk.clone()))
        .update_expression("ADD sources :s")
        .expression_attribute_values(":s", AttributeValue::Ss(vec!["extension".into()]))
        .send()
        .await
        .unwrap();
    stack.mock.with_state(|state| {
        state.remove_user("okta", &leaver.id).unwrap();
        state.remove_user("okta", &enrolled.id).unwrap();
    });
    // An incremental run cannot see a user who is gone; the daily full run does.
    resync(&stack).await;
    assert_eq!(last_sync(&stack, Provider::Okta).await.removed, 0);
    age_last_full_run(&stack, Provider::Okta).await;
    resync(&stack).await;

    let run = last_sync(&stack, Provider::Okta).await;
    assert!(run.complete, "{run:?}");
    assert_eq!(run.removed, 2);
    assert!(employee_by_email(&stack, &leaver.email).await.is_none());
    let kept = employee_by_email(&stack, &enrolled.email).await.unwrap();
    assert_eq!(kept.sources, vec!["extension".to_owned()]);
    // The record stays, marked removed, so the console shows the account is gone.
    assert_eq!(kept.directory_okta.as_deref(), Some(enrolled.id.as_str()));
    let records = directory_users(&stack, Provider::Okta).await;
    assert_eq!(records.len(), 449);
    let record: DirectoryUserItem = stack
        .stack
        .item(TENANT, &directory_user_sk(Provider::Okta, &enrolled.id))
        .await
        .unwrap();
    assert!(record.removed_at.is_some());
    assert_eq!(
        records.values().filter(|r| r.removed_at.is_some()).count(),
        1
    );
}

#[tokio::test]
async fn groups_appear_beside_custom_groups() {
    let okta = Directory::generate("initech.example", 120, 9);
    let group = okta.groups[0].clone();
    let stack = start(
        directories(Directory::default(), Directory::default(), okta),
        &[],
    )
    .await;
    connect(&stack, Provider::Okta).await;

    let (status, body) = stack.admin.get("/v1/admin/groups").await;
    assert_eq!(status, StatusCode::OK);
    let listed = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == group.name.as_str())
        .cloned()
        .expect("directory group listed");
    assert_eq!(listed["kind"], "directory");
    let group_id = listed["group_id"].as_str().unwrap();
    let members = employees(&stack)
        .await
        .into_iter()
        .filter(|e| e.groups.iter().any(|g| g == group_id))
        .count();
    assert_eq!(members, group.members.len());
}

async fn activities(
    stack: &ProviderStack,
    provider: Provider,
    kind: &str,
) -> HashMap<String, ActivityItem> {
    stack
        .stack
        .items(TENANT, &format!("ACTIVITY#{provider}#{kind}#"))
        .await
        .into_iter()
        .map(|item| {
            let item: ActivityItem = serde_dynamo::from_item(item).unwrap();
            (item.user_id.clone(), item)
        })
        .collect()
}

#[tokio::test]
async fn microsoft_grants_and_suspicious_rules() {
    let microsoft = Directory::generate("contoso.example", 200, 1);
    let stack = start(
        directories(
            microsoft.clone(),
            Directory::default(),
            Directory::default(),
        ),
        &[],
    )
    .await;
    connect(&stack, Provider::Microsoft).await;
    let run = last_sync(&stack, Provider::Microsoft).await;
    assert!(run.complete, "{run:?}");

    let grants = activities(&stack, Provider::Microsoft, "oauth_grants").await;
    let granted = &grants[&microsoft.users[20].id];
    assert!(granted.employee_id.is_some());
    let Activity::OauthGrants(list) = &granted.activity else {
        panic!("grants expected");
    };
    assert!(list.iter().all(|g| g.app_name.is_some()), "apps are named");
    assert!(!grants.contains_key(&microsoft.users[21].id));

    let rules = activities(&stack, Provider::Microsoft, "mail_rules").await;
    let Activity::MailRules(forwarding) = &rules[&microsoft.users[149].id].activity else {
        panic!("rules expected");
    };
    assert!(
        forwarding
            .iter()
            .any(|r| r.suspicious && r.forward_to[0].ends_with("@personal-mail.example"))
    );
    assert!(rules.keys().all(|id| {
        microsoft
            .users
            .iter()
            .any(|u| &u.id == id && !u.mail_rules.is_empty())
    }));
    assert_eq!(
        stack.count("microsoft.message_rules") as usize,
        microsoft
            .users
            .iter()
            .filter(|u| !u.guest && u.state == AccountState::Active)
            .count(),
        "one rules request per active member"
    );

    // The employee detail shows the directory record and its activity.
    let employee = employee_by_email(&stack, &microsoft.users[149].email)
        .await
        .unwrap();
    let (status, detail) = stack
        .admin
        .get(&format!("/v1/admin/employees/{}", employee.employee_id))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["directory"][0]["provider"], "microsoft");
    assert_eq!(detail["directory"][0]["status"], "active");
    assert!(detail["mfa"].is_boolean(), "{}", detail["mfa"]);
    assert_eq!(detail["activity"]["mail_rules"][0]["suspicious"], true);

    // Unchanged: no activity is rewritten.
    resync(&stack).await;
    assert_eq!(
        activities(&stack, Provider::Microsoft, "mail_rules").await,
        rules
    );
    assert_eq!(
        activities(&stack, Provider::Microsoft, "oauth_grants").await,
        grants
    );
}

#[tokio::test]
async fn switched_off_scopes_skip_their_features() {
    let stack = start(
        directories(
            Directory::generate("contoso.example", 80, 1),
            Directory::default(),
            Directory::default(),
        ),
        &[],
    )
    .await;
    let started = stack
        .connect(
            "microsoft",
            json!({"disabled_scopes": ["https://graph.microsoft.com/MailboxSettings.Read", "https://graph.microsoft.com/GroupMember.Read.All"]}),
        )
        .await;
    let redirect = stack
        .consent(started["authorize_url"].as_str().unwrap())
        .await;
    assert_eq!(
        stack.callback(&redirect).await.status(),
        StatusCode::SEE_OTHER
    );
    settle(&stack).await;

    assert!(last_sync(&stack, Provider::Microsoft).await.complete);
    assert_eq!(stack.count("microsoft.message_rules"), 0);
    assert_eq!(stack.count("microsoft.groups"), 0);
    assert!(
        activities(&stack, Provider::Microsoft, "mail_rules")
            .await
            .is_empty()
    );
    assert!(
        !activities(&stack, Provider::Microsoft, "oauth_grants")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn google_tokens_gmail_filters_and_okta_apps() {
    let google = Directory::generate("fabrikam.example", 160, 2);
    let okta = Directory::generate("initech.example", 60, 3);
    let stack = start(directories(Directory::default(), google.clone(), okta), &[]).await;
    connect(&stack, Provider::Google).await;
    let tokens = activities(&stack, Provider::Google, "oauth_grants").await;
    assert!(tokens.contains_key(&google.users[40].id));
    assert!(
        activities(&stack, Provider::Google, "mail_rules")
            .await
            .is_empty(),
        "Gmail filters need domain-wide delegation"
    );

    let (status, _) = stack
        .admin
        .put(
            "/v1/admin/integrations/google/delegation",
            json!({"admin_email": stack.credentials.google_delegated_admin}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    resync(&stack).await;
    let filters = activities(&stack, Provider::Google, "mail_rules").await;
    let Activity::MailRules(rules) = &filters[&google.users[149].id].activity else {
        panic!("filters expected");
    };
    assert!(rules.iter().any(|r| r.suspicious));

    connect(&stack, Provider::Okta).await;
    let apps = activities(&stack, Provider::Okta, "sso_apps").await;
    assert!(!apps.is_empty());
    assert!(
        apps.values()
            .all(|a| matches!(&a.activity, Activity::SsoApps(list) if !list.is_empty()))
    );
    let sign_ins = activities(&stack, Provider::Okta, "sign_ins").await;
    assert_eq!(
        sign_ins.keys().collect::<std::collections::BTreeSet<_>>(),
        apps.keys().collect::<std::collections::BTreeSet<_>>(),
        "every assigned user signed in to their apps"
    );
    let Activity::SignIns(list) = &sign_ins.values().next().unwrap().activity else {
        panic!("sign-ins expected");
    };
    assert!(list.iter().all(|s| !s.last_sign_in.is_empty()));
}

#[tokio::test]
async fn ten_thousand_users_per_provider() {
    const USERS: usize = 10_000;
    let microsoft = Directory::generate("contoso.example", USERS, 21);
    let google = Directory::generate("fabrikam.example", USERS, 22);
    let okta = Directory::generate("initech.example", USERS, 23);
    let guests = microsoft.users.iter().filter(|u| u.guest).count();
    let stack = start(directories(microsoft, google, okta), &[]).await;

    // Directory scopes only, so that the count is the cost of reading users.
    let optional = |provider: Provider| -> Vec<&'static str> {
        rollcall::integration::catalogue(provider)
            .iter()
            .filter(|s| !s.required)
            .map(|s| s.scope)
            .collect()
    };
    for provider in [Provider::Microsoft, Provider::Google, Provider::Okta] {
        stack.connect_and_sync(provider, &optional(provider)).await;
        let run = last_sync(&stack, provider).await;
        assert!(run.complete, "{provider}: {run:?}");
        assert_eq!(run.added, USERS as u64, "{provider}");
        assert_eq!(
            directory_users(&stack, provider).await.len(),
            USERS,
            "{provider}"
        );
    }
    assert_eq!(
        stack.count("microsoft.users"),
        11,
        "10,000 users in pages of 999"
    );
    assert_eq!(
        stack.count("google.users"),
        20,
        "10,000 users in pages of 500"
    );
    assert_eq!(
        stack.count("okta.users"),
        52,
        "the credential check, 50 pages of 200 and one of deprovisioned users"
    );
    assert_eq!(employees(&stack).await.len(), 3 * USERS - guests);
}

#[tokio::test]
async fn unchanged_resync_writes_no_record() {
    let counter = rollcall_tests::counting::RequestCounter::default();
    let config = directories(
        Directory::default(),
        Directory::generate("fabrikam.example", 300, 2),
        Directory::default(),
    );
    let stack = ProviderStack::start_counted(config, &[], true, Some(&counter)).await;
    stack.connect_and_sync(Provider::Google, &[]).await;

    // Google has no change feed: this is a full run over the whole directory.
    counter.reset();
    stack.resync().await;
    let run = last_sync(&stack, Provider::Google).await;
    assert!(run.complete, "{run:?}");
    assert_eq!(run.mode, "full");
    let writes = counter.total(
        "DynamoDB",
        &[
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "BatchWriteItem",
            "TransactWriteItems",
        ],
    );
    assert_eq!(
        writes, 3,
        "only the run's lease, its outcome and the lease's removal"
    );
    assert_eq!(
        counter.total("SQS", &["SendMessageBatch"]),
        1,
        "the scheduled job, no changes"
    );
}
