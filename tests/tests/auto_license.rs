//! Automatic licensing on the local stack: who gets a licence, seats under concurrency,
//! redelivery, and company-domain matching from telemetry through to the employee record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use auto_license::{AutoLicense, Config};
use chrono::Utc;
use local_runner::demo::TenantSettings;
use reqwest::StatusCode;
use rollcall::aws::Clients;
use rollcall::email::canonical_email;
use rollcall::envelope::{IDENTITY_OBSERVATION_VERSION, IdentityObservation};
use rollcall::ids::TenantId;
use rollcall::table::{self, EmployeeItem, LicenceState, ProfileItem, TenantItem, source};
use rollcall::telemetry::IdentitySource;
use rollcall_tests::{TestStack, heartbeat, sqs_event, telemetry_body};
use serde_json::Value;

fn function(stack: &TestStack) -> AutoLicense {
    AutoLicense::new(
        &Clients::new(&stack.sdk),
        Config::from_lookup(&stack.environment("AutoLicenseFunction")).unwrap(),
    )
}

fn observation(tenant: &str, install_id: &str, email: &str, managed: bool) -> String {
    let observation = IdentityObservation {
        version: IDENTITY_OBSERVATION_VERSION,
        observation_id: format!("{install_id}:{}", uuid::Uuid::new_v4()),
        tenant_id: TenantId::parse(tenant).unwrap(),
        install_id: install_id.to_owned(),
        email: canonical_email(email).unwrap(),
        source: IdentitySource::Gmail,
        managed,
        observed_at: Utc::now(),
    };
    serde_json::to_string(&observation).unwrap()
}

async fn deliver(stack: &TestStack, function: &AutoLicense, bodies: &[String]) -> Vec<String> {
    let arn = stack.stack.queue("LicensingQueue").unwrap().arn.clone();
    let ids: Vec<String> = (0..bodies.len())
        .map(|i| format!("m-{i}-{}", uuid::Uuid::new_v4()))
        .collect();
    let records: Vec<(&str, &str, u32)> = ids
        .iter()
        .zip(bodies)
        .map(|(id, body)| (id.as_str(), body.as_str(), 1))
        .collect();
    let response = function.handle(sqs_event(&arn, &records)).await.unwrap();
    response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

async fn tenant(stack: &TestStack, tenant: &str) -> TenantItem {
    stack
        .item(tenant, table::TENANT_SK)
        .await
        .expect("tenant exists")
}

async fn employee_by_email(stack: &TestStack, tenant: &str, email: &str) -> Option<EmployeeItem> {
    stack
        .employees(tenant)
        .await
        .into_iter()
        .find(|e| e.emails.iter().any(|known| known == email))
}

/// Creates an employee as directory sync or a manual add would: unlicensed, with its own source.
async fn existing_employee(
    stack: &TestStack,
    tenant: &str,
    email: &str,
    state: LicenceState,
    hidden: bool,
) -> EmployeeItem {
    let tenant_id = TenantId::parse(tenant).unwrap();
    let employee_id = uuid::Uuid::new_v4().to_string();
    let first_seen = rollcall::telemetry::storage_time(Utc::now() - chrono::Duration::days(3));
    let mut employee = EmployeeItem::new(table::NewEmployee {
        tenant_id: &tenant_id,
        employee_id,
        name: Some("Existing Person".into()),
        email: &canonical_email(email).unwrap(),
        licence_state: state,
        first_seen: first_seen.clone(),
        now: first_seen,
        source: source::MANUAL.into(),
        install_id: None,
    });
    employee.hidden = hidden;
    let mut items = stack.store.put_new_employee(&employee).unwrap();
    if state == LicenceState::Licensed {
        items.push(stack.store.take_seat(&employee.pk));
    }
    stack.store.transact(items).await.unwrap();
    employee
}

#[tokio::test]
async fn new_managed_company_email_licensed() {
    let stack = TestStack::create().await;
    stack.seed_tenant("acme").await;
    let function = function(&stack);

    let failures = deliver(
        &stack,
        &function,
        &[observation(
            "acme",
            "install-1",
            "New.Joiner@Example.com",
            true,
        )],
    )
    .await;
    assert!(failures.is_empty());

    let employee = employee_by_email(&stack, "acme", "new.joiner@example.com")
        .await
        .expect("employee created");
    assert_eq!(employee.licence_state, LicenceState::Licensed);
    assert_eq!(employee.sources, vec![source::EXTENSION]);
    assert_eq!(employee.install_ids, vec!["install-1"]);
    assert_eq!(tenant(&stack, "acme").await.licences_in_use, 1);
    let owner: table::EmailOwnerItem = stack
        .item("acme", &table::email_owner_sk("new.joiner@example.com"))
        .await
        .expect("email owner");
    assert_eq!(owner.employee_id, employee.employee_id);
}

#[tokio::test]
async fn conditions_that_block_licensing() {
    let stack = TestStack::create().await;
    stack
        .seed_tenant_with(
            "off",
            &TenantSettings {
                auto_licensing: false,
                ..Default::default()
            },
        )
        .await;
    stack.seed_tenant("acme").await;
    let function = function(&stack);

    let cases = [
        ("off", "a@example.com", true, "automatic licensing off"),
        ("acme", "b@example.com", false, "unmanaged extension"),
        ("acme", "c@example.org", true, "foreign domain"),
        (
            "acme",
            "d@sub.example.com",
            true,
            "subdomain with subdomains off",
        ),
    ];
    for (tenant_name, email, managed, case) in cases {
        let failures = deliver(
            &stack,
            &function,
            &[observation(tenant_name, "install-x", email, managed)],
        )
        .await;
        assert!(failures.is_empty(), "{case}");
        assert!(
            employee_by_email(&stack, tenant_name, email)
                .await
                .is_none(),
            "{case}: no employee is created"
        );
        assert_eq!(
            tenant(&stack, tenant_name).await.licences_in_use,
            0,
            "{case}: no seat is taken"
        );
    }
}

#[tokio::test]
async fn existing_employees_by_state() {
    let stack = TestStack::create().await;
    stack.seed_tenant("acme").await;
    let function = function(&stack);
    let unlicensed = existing_employee(
        &stack,
        "acme",
        "un@example.com",
        LicenceState::Unlicensed,
        false,
    )
    .await;
    let licensed = existing_employee(
        &stack,
        "acme",
        "lic@example.com",
        LicenceState::Licensed,
        false,
    )
    .await;
    let hidden = existing_employee(
        &stack,
        "acme",
        "svc@example.com",
        LicenceState::Unlicensed,
        true,
    )
    .await;
    let unmanaged = existing_employee(
        &stack,
        "acme",
        "um@example.com",
        LicenceState::Unlicensed,
        false,
    )
    .await;
    assert_eq!(tenant(&stack, "acme").await.licences_in_use, 1);

    let bodies = [
        observation("acme", "install-1", "un@example.com", true),
        observation("acme", "install-2", "lic@example.com", true),
        observation("acme", "install-3", "svc@example.com", true),
        observation("acme", "install-4", "um@example.com", false),
    ];
    assert!(deliver(&stack, &function, &bodies).await.is_empty());

    let now_licensed = employee_by_email(&stack, "acme", "un@example.com")
        .await
        .unwrap();
    assert_eq!(
        now_licensed.employee_id, unlicensed.employee_id,
        "the existing record is licensed, not a new one"
    );
    assert_eq!(now_licensed.licence_state, LicenceState::Licensed);
    assert!(now_licensed.sources.contains(&source::EXTENSION.to_owned()));
    assert!(now_licensed.sources.contains(&source::MANUAL.to_owned()));

    let still_licensed = employee_by_email(&stack, "acme", "lic@example.com")
        .await
        .unwrap();
    assert_eq!(still_licensed.licence_state, LicenceState::Licensed);
    assert!(
        still_licensed
            .sources
            .contains(&source::EXTENSION.to_owned()),
        "the extension source is recorded"
    );
    assert_eq!(still_licensed.employee_id, licensed.employee_id);

    let still_hidden = employee_by_email(&stack, "acme", "svc@example.com")
        .await
        .unwrap();
    assert_eq!(
        still_hidden.licence_state,
        LicenceState::Unlicensed,
        "hidden employees are not licensed automatically"
    );
    assert_eq!(
        still_hidden.install_ids,
        vec!["install-3"],
        "the browser profile is still linked"
    );
    assert_eq!(still_hidden.employee_id, hidden.employee_id);

    let not_managed = employee_by_email(&stack, "acme", "um@example.com")
        .await
        .unwrap();
    assert_eq!(not_managed.licence_state, LicenceState::Unlicensed);
    assert_eq!(
        not_managed.install_ids,
        vec!["install-4"],
        "an ineligible observation links the profile"
    );
    assert_eq!(
        not_managed.sources,
        vec![source::MANUAL],
        "and adds no extension source"
    );
    assert_eq!(not_managed.employee_id, unmanaged.employee_id);

    assert_eq!(tenant(&stack, "acme").await.licences_in_use, 2);
}

#[tokio::test]
async fn no_free_seat_keeps_unlicensed() {
    let stack = TestStack::create().await;
    stack
        .seed_tenant_with(
            "full",
            &TenantSettings {
                plan_seats: 0,
                ..Default::default()
            },
        )
        .await;
    let function = function(&stack);

    assert!(
        deliver(
            &stack,
            &function,
            &[observation("full", "install-1", "late@example.com", true)]
        )
        .await
        .is_empty()
    );

    let employee = employee_by_email(&stack, "full", "late@example.com")
        .await
        .expect("employee created");
    assert_eq!(employee.licence_state, LicenceState::Unlicensed);
    let tenant_id = TenantId::parse("full").unwrap();
    let unlicensed = stack
        .store
        .employees_by_licence(&tenant_id, LicenceState::Unlicensed)
        .await
        .unwrap();
    assert_eq!(
        unlicensed.len(),
        1,
        "the employee is in the unlicensed list"
    );
    assert!(
        !unlicensed[0].first_seen.is_empty(),
        "with its first-seen time"
    );
    assert_eq!(tenant(&stack, "full").await.licences_in_use, 0);
}

#[tokio::test]
async fn many_browsers_one_employee() {
    let stack = TestStack::create().await;
    stack.seed_tenant("acme").await;
    let function = Arc::new(function(&stack));

    let mut tasks = Vec::new();
    for browser in 0..5 {
        let function = Arc::clone(&function);
        let body = observation(
            "acme",
            &format!("install-{browser}"),
            "pat@example.com",
            true,
        );
        let arn = stack.stack.queue("LicensingQueue").unwrap().arn.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("m-{browser}");
            let response = function
                .handle(sqs_event(&arn, &[(&id, &body, 1)]))
                .await
                .unwrap();
            response.batch_item_failures.len()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 0);
    }

    let all = stack.employees("acme").await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].licence_state, LicenceState::Licensed);
    assert_eq!(
        all[0].install_ids.len(),
        5,
        "every browser profile is linked"
    );
    assert_eq!(tenant(&stack, "acme").await.licences_in_use, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_never_over_assigned() {
    let stack = TestStack::create().await;
    stack
        .seed_tenant_with(
            "acme",
            &TenantSettings {
                plan_seats: 25,
                ..Default::default()
            },
        )
        .await;
    let function = Arc::new(function(&stack));
    let bodies: Vec<String> = (0..60)
        .map(|i| {
            observation(
                "acme",
                &format!("install-{i}"),
                &format!("person{i}@example.com"),
                true,
            )
        })
        .collect();

    // Six concurrent invocations of ten observations each, as six Lambda instances would run.
    let run = |bodies: Vec<String>, receive_count: u32| {
        let function = Arc::clone(&function);
        let arn = stack.stack.queue("LicensingQueue").unwrap().arn.clone();
        async move {
            let mut tasks = Vec::new();
            for (chunk_index, chunk) in bodies.chunks(10).enumerate() {
                let function = Arc::clone(&function);
                let arn = arn.clone();
                let chunk = chunk.to_vec();
                tasks.push(tokio::spawn(async move {
                    let ids: Vec<String> = (0..chunk.len())
                        .map(|i| format!("m-{receive_count}-{chunk_index}-{i}"))
                        .collect();
                    let records: Vec<(&str, &str, u32)> = ids
                        .iter()
                        .zip(&chunk)
                        .map(|(id, b)| (id.as_str(), b.as_str(), receive_count))
                        .collect();
                    function
                        .handle(sqs_event(&arn, &records))
                        .await
                        .unwrap()
                        .batch_item_failures
                        .len()
                }));
            }
            let mut failures = 0;
            for task in tasks {
                failures += task.await.unwrap();
            }
            failures
        }
    };

    let mut pending = run(bodies.clone(), 1).await;
    for attempt in 0..5 {
        if pending == 0 {
            break;
        }
        // Records reported as failures come back through the queue; redeliver the whole run.
        pending = run(bodies.clone(), attempt + 2).await;
    }
    assert_eq!(pending, 0, "every observation is processed after retries");

    let all = stack.employees("acme").await;
    let licensed = all
        .iter()
        .filter(|e| e.licence_state == LicenceState::Licensed)
        .count();
    assert_eq!(all.len(), 60);
    assert_eq!(licensed, 25);
    assert_eq!(all.len() - licensed, 35);
    assert_eq!(tenant(&stack, "acme").await.licences_in_use, 25);

    let before: HashMap<String, EmployeeItem> = all
        .into_iter()
        .map(|e| (e.employee_id.clone(), e))
        .collect();
    assert_eq!(run(bodies, 9).await, 0, "redelivery succeeds");
    let after: HashMap<String, EmployeeItem> = stack
        .employees("acme")
        .await
        .into_iter()
        .map(|e| (e.employee_id.clone(), e))
        .collect();
    assert_eq!(before, after, "redelivery changes no employee");
    assert_eq!(tenant(&stack, "acme").await.licences_in_use, 25);
}

#[tokio::test]
async fn unreadable_observations_dead_lettered() {
    let stack = TestStack::create().await;
    let function = function(&stack);
    let unknown_tenant = observation("ghost", "install-1", "a@example.com", true);

    let failures = deliver(
        &stack,
        &function,
        &[
            "{\"version\": 7}".to_owned(),
            "not json".to_owned(),
            unknown_tenant,
        ],
    )
    .await;
    assert!(
        failures.is_empty(),
        "permanent failures are moved, not retried"
    );

    let dead = stack.drain("LicensingDeadLetterQueue", 10).await;
    assert_eq!(dead.len(), 3);
    let reasons: Vec<&str> = dead
        .iter()
        .map(|(_, attributes)| attributes["failure_reason"].as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("tenant ghost does not exist")),
        "{reasons:?}"
    );
}

/// Company-domain matching from a browser's telemetry through to the employee record: only an
/// exact canonical domain match (or a subdomain on a label boundary, when enabled) is licensed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn company_domains_from_telemetry() {
    let stack = TestStack::create().await;
    let key = stack.seed_tenant("acme").await;
    let sub_key = stack
        .seed_tenant_with(
            "subs",
            &TenantSettings {
                include_subdomains: true,
                ..Default::default()
            },
        )
        .await;
    let idn_key = stack
        .seed_tenant_with(
            "idn",
            &TenantSettings {
                company_domains: vec!["bücher.example".into()],
                ..Default::default()
            },
        )
        .await;
    let runner = stack.start_runner().await;
    let client = reqwest::Client::new();

    let accepted = [
        (&key, "acme", "eve@notexample.com", None),
        (&key, "acme", "boss@example.com.attacker.test", None),
        (&key, "acme", "d@example.co", None),
        (&key, "acme", "a@EXAMPLE.COM", Some("a@example.com")),
        (
            &key,
            "acme",
            "trail@example.com.",
            Some("trail@example.com"),
        ),
        (&key, "acme", "b@sub.example.com", None),
        (
            &sub_key,
            "subs",
            "b@sub.example.com",
            Some("b@sub.example.com"),
        ),
        (
            &sub_key,
            "subs",
            "c@deep.sub.example.com",
            Some("c@deep.sub.example.com"),
        ),
        (&sub_key, "subs", "eve@notexample.com", None),
        (
            &idn_key,
            "idn",
            "leo@bücher.example",
            Some("leo@xn--bcher-kva.example"),
        ),
        (
            &idn_key,
            "idn",
            "mia@xn--bcher-kva.example",
            Some("mia@xn--bcher-kva.example"),
        ),
        (
            &idn_key,
            "idn",
            "NOA@BÜCHER.EXAMPLE.",
            Some("noa@xn--bcher-kva.example"),
        ),
        (&idn_key, "idn", "eve@bucher.example", None),
    ];
    for (index, (tenant_key, _, email, _)) in accepted.iter().enumerate() {
        let body = telemetry_body(
            &format!("install-{index}"),
            Some(email),
            vec![heartbeat(&format!("e-{index}"), -10)],
        );
        let response = client
            .post(format!("{}/v1/telemetry", runner.url()))
            .bearer_auth(tenant_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{email}");
    }

    let rejected = [
        "\"x@example.com\"@attacker.test",
        "x@@example.com",
        "@example.com",
        "example.com",
        "",
    ];
    for email in rejected {
        let body = telemetry_body("install-bad", Some(email), vec![heartbeat("e-bad", -10)]);
        let response = client
            .post(format!("{}/v1/telemetry", runner.url()))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{email:?}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["field"], "identity.email", "{email:?}");
    }

    runner
        .wait_until_idle(
            &["TelemetryQueue", "LicensingQueue"],
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    for (_, tenant_name, email, licensed_as) in accepted {
        let canonical = canonical_email(email).unwrap().to_string();
        let employee = employee_by_email(&stack, tenant_name, &canonical).await;
        match licensed_as {
            Some(stored) => {
                let employee = employee.unwrap_or_else(|| panic!("{email}: employee created"));
                assert_eq!(employee.primary_email, stored, "{email}");
                assert_eq!(employee.licence_state, LicenceState::Licensed, "{email}");
            }
            None => assert!(employee.is_none(), "{email}: not a company employee"),
        }
    }
    let profile: ProfileItem = stack.item("acme", "PROFILE#install-3").await.unwrap();
    assert!(
        profile.employee_id.is_some(),
        "the browser profile is linked to its employee"
    );
    assert!(stack.drain("LicensingDeadLetterQueue", 10).await.is_empty());
    runner.stop().await;
}
