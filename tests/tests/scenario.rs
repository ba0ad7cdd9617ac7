//! The run command's scenario at a small scale: a whole organisation from connect to sweep.

use local_runner::scenario::{self, Organisation};
use rollcall::table::{self, EmployeeItem, LicenceState, TenantItem};
use rollcall_tests::TestStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisation_from_connect_to_sweep() {
    let organisation = Organisation {
        tenant: "smallco".into(),
        domain: "smallco.example".into(),
        microsoft: 0..120,
        google: 80..200,
        okta: 0..60,
        plan_seats: 60,
        profiles: 150,
        rate: None,
    };
    let credentials = mock_idp::Credentials::default();
    let mock = mock_idp::MockIdp::start(
        "127.0.0.1:0".parse().unwrap(),
        organisation.directories(credentials.clone()),
    )
    .await
    .unwrap();
    let stack = TestStack::create_with_providers(&mock.url(), &credentials).await;
    let runner = stack.start_runner().await;

    let played = scenario::play(&runner, &stack.store, &mock, &credentials, &organisation)
        .await
        .unwrap();
    println!("{}", played.summary);

    let employees: Vec<EmployeeItem> = stack.employees("smallco").await;
    let licensed = employees
        .iter()
        .filter(|e| e.licence_state == LicenceState::Licensed)
        .count();
    let tenant: TenantItem = stack.item("smallco", table::TENANT_SK).await.unwrap();
    assert_eq!(tenant.licences_in_use as usize, licensed);
    assert!(licensed > 0);
    assert!(licensed <= 60, "never more licences than seats");
    // People in two providers are one employee with both sources.
    assert!(employees.iter().any(|e| {
        e.sources.contains(&"integration:microsoft".to_owned())
            && e.sources.contains(&"integration:google".to_owned())
    }));
    assert!(
        employees
            .iter()
            .any(|e| e.sources.contains(&"extension".to_owned()))
    );
    assert!(
        employees.iter().any(|e| e.activity_hidden_at.is_some()),
        "the sweep acted on silent profiles"
    );
    assert!(
        played.summary.contains("Inactivity sweep of "),
        "{}",
        played.summary
    );
    assert!(played.summary.contains("every request got 202 Accepted"));
    for provider in ["microsoft", "google", "okta"] {
        assert!(
            played.summary.contains(&format!("  {provider}")),
            "{provider} requests listed"
        );
    }
    let depths = runner.queue_depths().await.unwrap();
    for (queue, depth) in &depths {
        assert_eq!(*depth, (0, 0), "{queue} is empty");
    }
    runner.stop().await;
}
