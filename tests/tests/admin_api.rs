//! The admin API through the local runner: authentication and roles, tenant isolation on every
//! route, employees, licences and seats, hiding, settings, extension keys and administrators.

use std::time::Duration;

use local_runner::demo::TenantSettings;
use reqwest::{Method, StatusCode};
use rollcall::table::{self, AdminRole, TenantItem};
use rollcall_tests::{AdminClient as Admin, TestStack, heartbeat, telemetry_body};
use serde_json::json;

async fn add_administrator(stack: &TestStack, tenant: &str, email: &str, role: AdminRole) {
    stack.add_administrator(tenant, email, role).await;
}

async fn tenant(stack: &TestStack, tenant: &str) -> TenantItem {
    stack.item(tenant, table::TENANT_SK).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles_checked() {
    let stack = TestStack::create().await;
    stack.seed_tenant("acme").await;
    add_administrator(&stack, "acme", "viewer@example.com", AdminRole::ReadOnly).await;
    let runner = stack.start_runner().await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/admin/employees", runner.url());

    let missing = client.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED, "no token");
    let forged = client
        .get(&url)
        .bearer_auth("eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl")
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        StatusCode::UNAUTHORIZED,
        "a token the authorizer did not sign"
    );
    let expired = client
        .get(&url)
        .bearer_auth(runner.admin_token("acme", "owner@example.com", -600))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expired.status(),
        StatusCode::UNAUTHORIZED,
        "an expired token"
    );

    let stranger = Admin::new(&runner, "acme", "stranger@example.com");
    let (status, problem) = stranger.get("/v1/admin/employees").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");

    let viewer = Admin::new(&runner, "acme", "viewer@example.com");
    assert_eq!(viewer.get("/v1/admin/employees").await.0, StatusCode::OK);
    let writes = [
        (
            Method::POST,
            "/v1/admin/employees",
            json!({"name": "A", "email": "a@example.com"}),
        ),
        (Method::PUT, "/v1/admin/employees/e-1/licence", json!({})),
        (Method::DELETE, "/v1/admin/employees/e-1/licence", json!({})),
        (Method::PUT, "/v1/admin/employees/e-1/hidden", json!({})),
        (Method::DELETE, "/v1/admin/employees/e-1/hidden", json!({})),
        (
            Method::POST,
            "/v1/admin/licences",
            json!({"action": "assign", "employee_ids": ["e-1"]}),
        ),
        (
            Method::POST,
            "/v1/admin/employees/hidden",
            json!({"hidden": true, "employee_ids": ["e-1"]}),
        ),
        (
            Method::POST,
            "/v1/admin/employees/e-1/enrolment-email",
            json!({}),
        ),
        (Method::POST, "/v1/admin/groups", json!({"name": "Sales"})),
        (
            Method::PATCH,
            "/v1/admin/groups/g-1",
            json!({"name": "Sales"}),
        ),
        (Method::DELETE, "/v1/admin/groups/g-1", json!({})),
        (
            Method::POST,
            "/v1/admin/group-memberships",
            json!({"action": "add", "group_ids": ["g-1"], "employee_ids": ["e-1"]}),
        ),
        (
            Method::PATCH,
            "/v1/admin/settings",
            json!({"auto_licensing": false}),
        ),
        (
            Method::POST,
            "/v1/admin/extension-keys",
            json!({"name": "k"}),
        ),
        (
            Method::DELETE,
            "/v1/admin/extension-keys/0011223344556677",
            json!({}),
        ),
        (
            Method::POST,
            "/v1/admin/administrators",
            json!({"email": "x@example.com", "role": "admin"}),
        ),
        (
            Method::PATCH,
            "/v1/admin/administrators/owner@example.com",
            json!({"role": "admin"}),
        ),
        (
            Method::DELETE,
            "/v1/admin/administrators/owner@example.com",
            json!({}),
        ),
    ];
    assert_eq!(
        writes.len(),
        admin_api::ROUTES
            .iter()
            .filter(|r| !r.starts_with("GET "))
            .count(),
        "every write route is listed"
    );
    for (method, path, body) in writes {
        let (status, problem) = viewer.call(method.clone(), path, Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {problem}");
    }
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_tenant_unreachable() {
    let stack = TestStack::create().await;
    stack.seed_tenant("acme").await;
    stack
        .seed_tenant_with(
            "globex",
            &TenantSettings {
                owner_email: "boss@globex.example".into(),
                ..Default::default()
            },
        )
        .await;
    let runner = stack.start_runner().await;
    let acme = Admin::new(&runner, "acme", "owner@example.com");
    let globex = Admin::new(&runner, "globex", "boss@globex.example");
    let theirs = globex
        .add_employee("Their Person", "p@globex.example")
        .await;
    let (_, key) = globex
        .post("/v1/admin/extension-keys", json!({"name": "globex key"}))
        .await;
    let their_key = key["key_id"].as_str().unwrap().to_owned();
    let (_, their_group) = globex
        .post("/v1/admin/groups", json!({"name": "Globex Team"}))
        .await;
    let their_group = their_group["group_id"].as_str().unwrap().to_owned();

    // A token naming globex but held by acme's owner: the administrator item decides.
    let crossed = Admin::new(&runner, "globex", "owner@example.com");
    assert_eq!(
        crossed.get("/v1/admin/employees").await.0,
        StatusCode::FORBIDDEN
    );

    let attempts = [
        (Method::GET, format!("/v1/admin/employees/{theirs}"), None),
        (
            Method::PUT,
            format!("/v1/admin/employees/{theirs}/licence"),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/admin/employees/{theirs}/licence"),
            None,
        ),
        (
            Method::PUT,
            format!("/v1/admin/employees/{theirs}/hidden"),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/admin/employees/{theirs}/hidden"),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/admin/extension-keys/{their_key}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/admin/groups/{their_group}"),
            Some(json!({"name": "Renamed"})),
        ),
        (
            Method::DELETE,
            format!("/v1/admin/groups/{their_group}"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/admin/employees/{theirs}/enrolment-email"),
            None,
        ),
        (
            Method::PATCH,
            "/v1/admin/administrators/boss@globex.example".to_owned(),
            Some(json!({"role": "read_only"})),
        ),
        (
            Method::DELETE,
            "/v1/admin/administrators/boss@globex.example".to_owned(),
            None,
        ),
    ];
    for (method, path, body) in attempts {
        let (status, problem) = acme.call(method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {problem}");
    }
    let (status, bulk) = acme
        .post(
            "/v1/admin/licences",
            json!({"action": "assign", "employee_ids": [theirs]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bulk["not_found"], json!([theirs]));
    let (_, bulk_hidden) = acme
        .post(
            "/v1/admin/employees/hidden",
            json!({"hidden": true, "employee_ids": [theirs]}),
        )
        .await;
    assert_eq!(bulk_hidden["not_found"], json!([theirs]));
    let (_, listed) = acme.get("/v1/admin/employees").await;
    assert_eq!(
        listed["employees"],
        json!([]),
        "acme lists none of globex's employees"
    );
    let (status, memberships) = acme
        .post(
            "/v1/admin/group-memberships",
            json!({"action": "add", "group_ids": [their_group], "employee_ids": [theirs]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{memberships}");
    assert_eq!(memberships["field"], "group_ids");
    let (_, groups) = acme.get("/v1/admin/groups").await;
    assert_eq!(groups["groups"], json!([]));
    let (_, keys) = acme.get("/v1/admin/extension-keys").await;
    assert_eq!(
        keys["extension_keys"].as_array().unwrap().len(),
        1,
        "only acme's seeded key"
    );
    let (_, admins) = acme.get("/v1/admin/administrators").await;
    assert_eq!(admins["administrators"].as_array().unwrap().len(), 1);

    let (_, detail) = globex.get(&format!("/v1/admin/employees/{theirs}")).await;
    assert_eq!(detail["employee"]["licence_state"], "unlicensed");
    assert_eq!(detail["employee"]["hidden"], false);
    assert_eq!(tenant(&stack, "globex").await.licences_in_use, 0);
    let (_, their_admins) = globex.get("/v1/admin/administrators").await;
    assert_eq!(their_admins["administrators"][0]["role"], "owner");
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_add_validates() {
    let stack = TestStack::create().await;
    stack.seed_tenant("acme").await;
    let runner = stack.start_runner().await;
    let owner = Admin::new(&runner, "acme", "owner@example.com");

    let (status, created) = owner
        .post(
            "/v1/admin/employees",
            json!({"name": " Grace Hopper ", "email": "Grace@Example.COM"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["primary_email"], "grace@example.com");
    assert_eq!(created["name"], "Grace Hopper");
    assert_eq!(created["licence_state"], "unlicensed");
    assert_eq!(created["sources"], json!(["manual"]));

    let cases = [
        (
            json!({"name": "Again", "email": "grace@example.com"}),
            StatusCode::CONFLICT,
            "email",
        ),
        (
            json!({"name": "Bad", "email": "x@@example.com"}),
            StatusCode::BAD_REQUEST,
            "email",
        ),
        (
            json!({"name": "", "email": "b@example.com"}),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            json!({"email": "c@example.com"}),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            json!({"name": "D", "email": "d@example.com", "licence": true}),
            StatusCode::BAD_REQUEST,
            "licence",
        ),
        (
            json!({"name": 42, "email": "e@example.com"}),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            json!({"name": "F", "email": 5}),
            StatusCode::BAD_REQUEST,
            "email",
        ),
        (
            json!({"name": null, "email": "g@example.com"}),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            json!({"name": "H", "email": "h@example.com", "send_enrolment_email": "yes"}),
            StatusCode::BAD_REQUEST,
            "send_enrolment_email",
        ),
    ];
    for (body, expected, field) in cases {
        let (status, problem) = owner.post("/v1/admin/employees", body.clone()).await;
        assert_eq!(status, expected, "{body}: {problem}");
        assert_eq!(problem["field"], field, "{body}: {problem}");
        assert_eq!(problem["status"], expected.as_u16());
    }
    let not_json = reqwest::Client::new()
        .post(format!("{}/v1/admin/employees", runner.url()))
        .bearer_auth(&owner.token)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licences_respect_seats() {
    let stack = TestStack::create().await;
    stack
        .seed_tenant_with(
            "acme",
            &TenantSettings {
                plan_seats: 3,
                ..Default::default()
            },
        )
        .await;
    let runner = stack.start_runner().await;
    let owner = Admin::new(&runner, "acme", "owner@example.com");
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            owner
                .add_employee(&format!("Person {i}"), &format!("p{i}@example.com"))
                .await,
        );
    }

    let (status, licensed) = owner
        .call(
            Method::PUT,
            &format!("/v1/admin/employees/{}/licence", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(licensed["licence_state"], "licensed");
    let (again, _) = owner
        .call(
            Method::PUT,
            &format!("/v1/admin/employees/{}/licence", ids[0]),
            None,
        )
        .await;
    assert_eq!(again, StatusCode::OK, "assigning twice is harmless");
    assert_eq!(tenant(&stack, "acme").await.licences_in_use, 1);

    let (status, bulk) = owner
        .post(
            "/v1/admin/licences",
            json!({"action": "assign", "employee_ids": ids[1..].to_vec()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        bulk["changed"].as_array().unwrap().len(),
        2,
        "only the two free seats are used"
    );
    assert_eq!(bulk["no_seat_free"].as_array().unwrap().len(), 3);
    assert!(
        bulk["detail"]
            .as_str()
            .unwrap()
            .contains("3 could not be licensed"),
        "{bulk}"
    );
    assert_eq!(tenant(&stack, "acme").await.licences_in_use, 3);

    let (status, problem) = owner
        .call(
            Method::PUT,
            &format!("/v1/admin/employees/{}/licence", ids[5]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["plan_seats"], 3);

    let (status, removed) = owner
        .call(
            Method::DELETE,
            &format!("/v1/admin/employees/{}/licence", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(removed["licence_state"], "unlicensed");
    assert_eq!(tenant(&stack, "acme").await.licences_in_use, 2);

    let missing = owner
        .call(
            Method::PUT,
            "/v1/admin/employees/no-such-employee/licence",
            None,
        )
        .await;
    assert_eq!(missing.0, StatusCode::NOT_FOUND);
    let bad_action = owner
        .post(
            "/v1/admin/licences",
            json!({"action": "grant", "employee_ids": ["x"]}),
        )
        .await;
    assert_eq!(bad_action.1["field"], "action");
    let too_many = owner
        .post(
            "/v1/admin/licences",
            json!({"action": "assign", "employee_ids": vec!["x"; 101]}),
        )
        .await;
    assert_eq!(too_many.1["field"], "employee_ids");
    let wrong_type = owner
        .post(
            "/v1/admin/licences",
            json!({"action": "assign", "employee_ids": "abc"}),
        )
        .await;
    assert_eq!(wrong_type.1["field"], "employee_ids");
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bulk_never_over_assigns() {
    let stack = TestStack::create().await;
    stack
        .seed_tenant_with(
            "acme",
            &TenantSettings {
                plan_seats: 10,
                ..Default::default()
            },
        )
        .await;
    let runner = stack.start_runner().await;
    let owner = std::sync::Arc::new(Admin::new(&runner, "acme", "owner@example.com"));
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(
            owner
                .add_employee(&format!("Person {i}"), &format!("p{i}@example.com"))
                .await,
        );
    }

    let mut tasks = Vec::new();
    for chunk in ids.chunks(10) {
        let owner = std::sync::Arc::clone(&owner);
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            owner
                .post(
                    "/v1/admin/licences",
                    json!({"action": "assign", "employee_ids": chunk}),
                )
                .await
        }));
    }
    let mut changed = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        changed += body["changed"].as_array().unwrap().len();
    }
    assert_eq!(changed, 10);
    assert_eq!(tenant(&stack, "acme").await.licences_in_use, 10);
    let (_, licensed) = owner
        .get("/v1/admin/employees?licence=licensed&limit=200")
        .await;
    assert_eq!(licensed["employees"].as_array().unwrap().len(), 10);
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_filters_and_hides() {
    let stack = TestStack::create().await;
    stack.seed_tenant("acme").await;
    let runner = stack.start_runner().await;
    let owner = Admin::new(&runner, "acme", "owner@example.com");
    let names = ["Zoe", "adam", "Maya", "Bob", "Lin", "Chen", "Ravi"];
    let mut ids = Vec::new();
    for name in names {
        ids.push(
            owner
                .add_employee(name, &format!("{}@example.com", name.to_lowercase()))
                .await,
        );
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    owner
        .call(
            Method::PUT,
            &format!("/v1/admin/employees/{}/licence", ids[0]),
            None,
        )
        .await;
    owner
        .call(
            Method::PUT,
            &format!("/v1/admin/employees/{}/licence", ids[1]),
            None,
        )
        .await;

    // Every employee, three per page, in first-seen order across both licence states.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/admin/employees?limit=3&cursor={cursor}"),
            None => "/v1/admin/employees?limit=3".to_owned(),
        };
        let (status, page) = owner.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        for employee in page["employees"].as_array().unwrap() {
            seen.push(employee["employee_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "pagination ends");
    }
    assert_eq!(seen, ids, "all seven, once each, oldest first");
    assert!(pages >= 3);

    let (_, by_name) = owner
        .get("/v1/admin/employees?sort=name&licence=unlicensed")
        .await;
    let listed: Vec<&str> = by_name["employees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec!["Bob", "Chen", "Lin", "Maya", "Ravi"]);
    let (_, prefixed) = owner.get("/v1/admin/employees?q=ma").await;
    assert_eq!(
        prefixed["employees"].as_array().unwrap().len(),
        1,
        "name prefix"
    );
    let (_, by_email) = owner.get("/v1/admin/employees?q=ravi%40").await;
    assert_eq!(by_email["employees"][0]["name"], "Ravi", "email prefix");

    let (status, hidden) = owner
        .call(
            Method::PUT,
            &format!("/v1/admin/employees/{}/hidden", ids[2]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hidden["hidden"], true);
    let (_, bulk) = owner
        .post(
            "/v1/admin/employees/hidden",
            json!({"hidden": true, "employee_ids": [ids[3], ids[4]]}),
        )
        .await;
    assert_eq!(bulk["changed"].as_array().unwrap().len(), 2);
    let (_, visible) = owner
        .get("/v1/admin/employees?licence=unlicensed&hidden=false")
        .await;
    assert_eq!(visible["employees"].as_array().unwrap().len(), 2);
    let (_, only_hidden) = owner.get("/v1/admin/employees?hidden=true").await;
    assert_eq!(only_hidden["employees"].as_array().unwrap().len(), 3);

    // A hidden employee can still be licensed, and shown again.
    let (status, licensed) = owner
        .call(
            Method::PUT,
            &format!("/v1/admin/employees/{}/licence", ids[2]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(licensed["licence_state"], "licensed");
    let (_, shown) = owner
        .call(
            Method::DELETE,
            &format!("/v1/admin/employees/{}/hidden", ids[2]),
            None,
        )
        .await;
    assert_eq!(shown["hidden"], false);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=500", "limit"),
        ("licence=maybe", "licence"),
        ("sort=age", "sort"),
        ("hidden=yes", "hidden"),
        ("cursor=bm90IGEgY3Vyc29y", "cursor"),
    ] {
        let (status, problem) = owner.get(&format!("/v1/admin/employees?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(problem["field"], field, "{query}");
    }
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn employee_detail_shows_activity() {
    let stack = TestStack::create().await;
    let extension_key = stack.seed_tenant("acme").await;
    let runner = stack.start_runner().await;
    let body = telemetry_body(
        "install-9",
        Some("ada@example.com"),
        vec![
            heartbeat("e-1", -30),
            rollcall_tests::login("e-2", -20, "github.com", "ada@example.com", "sso_saml"),
        ],
    );
    let response = reqwest::Client::new()
        .post(format!("{}/v1/telemetry", runner.url()))
        .bearer_auth(&extension_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    runner
        .wait_until_idle(
            &["TelemetryQueue", "LicensingQueue"],
            Duration::from_secs(20),
        )
        .await
        .unwrap();

    let owner = Admin::new(&runner, "acme", "owner@example.com");
    let (_, list) = owner.get("/v1/admin/employees?licence=licensed").await;
    let employee_id = list["employees"][0]["employee_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, detail) = owner
        .get(&format!("/v1/admin/employees/{employee_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["emails"], json!(["ada@example.com"]));
    assert_eq!(detail["browsers"][0]["install_id"], "install-9");
    assert_eq!(detail["accounts"][0]["app_domain"], "github.com");
    assert_eq!(detail["employee"]["sources"], json!(["extension"]));
    assert_eq!(
        owner.get("/v1/admin/employees/a%23b").await.0,
        StatusCode::NOT_FOUND
    );
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_extension_keys() {
    let stack = TestStack::create().await;
    stack.seed_tenant("acme").await;
    let runner = stack.start_runner().await;
    let owner = Admin::new(&runner, "acme", "owner@example.com");

    let (status, settings) = owner.get("/v1/admin/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(settings["plan_seats"], 25);
    let change = json!({"auto_licensing": false, "company_domains": ["Example.com", "Bücher.Example."], "inactivity_days": 30});
    let (status, updated) = owner
        .call(Method::PATCH, "/v1/admin/settings", Some(change))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        updated["company_domains"],
        json!(["example.com", "xn--bcher-kva.example"])
    );
    assert_eq!(updated["auto_licensing"], false);
    assert_eq!(updated["inactivity_days"], 30);
    for (body, field) in [
        (
            json!({"company_domains": ["not a domain"]}),
            "company_domains",
        ),
        (json!({"inactivity_days": 0}), "inactivity_days"),
        (json!({"plan_seats": 1000}), "plan_seats"),
        (json!({}), "(body)"),
    ] {
        let (status, problem) = owner
            .call(Method::PATCH, "/v1/admin/settings", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    assert_eq!(
        tenant(&stack, "acme").await.plan_seats,
        25,
        "seats are read-only"
    );

    let (status, created) = owner
        .post("/v1/admin/extension-keys", json!({"name": "Chrome policy"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let key = created["key"].as_str().unwrap().to_owned();
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    let (_, listed) = owner.get("/v1/admin/extension-keys").await;
    assert!(
        !listed.to_string().contains(&key),
        "the key is shown only once"
    );

    let telemetry = |key: String| {
        let url = runner.url();
        async move {
            let body = telemetry_body(
                "install-k",
                None,
                vec![heartbeat(&uuid::Uuid::new_v4().to_string(), -5)],
            );
            reqwest::Client::new()
                .post(format!("{url}/v1/telemetry"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        telemetry(key.clone()).await,
        StatusCode::ACCEPTED,
        "a new key works at once"
    );
    let (status, revoked) = owner
        .call(
            Method::DELETE,
            &format!("/v1/admin/extension-keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(
        telemetry(key).await,
        StatusCode::UNAUTHORIZED,
        "a revoked key stops working"
    );
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_keep_an_owner() {
    let stack = TestStack::create().await;
    stack.seed_tenant("acme").await;
    let runner = stack.start_runner().await;
    let owner = Admin::new(&runner, "acme", "owner@example.com");

    let (status, invited) = owner
        .post(
            "/v1/admin/administrators",
            json!({"email": "Ops@MSP.example", "role": "admin"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "an administrator may be outside the organisation"
    );
    assert_eq!(invited["email"], "ops@msp.example");
    assert_eq!(
        owner
            .post(
                "/v1/admin/administrators",
                json!({"email": "ops@msp.example", "role": "admin"})
            )
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        owner
            .post(
                "/v1/admin/administrators",
                json!({"email": "x", "role": "admin"})
            )
            .await
            .1["field"],
        "email"
    );
    assert_eq!(
        owner
            .post(
                "/v1/admin/administrators",
                json!({"email": "y@example.com", "role": "god"})
            )
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    let ops = Admin::new(&runner, "acme", "ops@msp.example");
    assert_eq!(
        ops.get("/v1/admin/employees").await.0,
        StatusCode::OK,
        "the invitee signs in with their own token"
    );
    let (status, _) = ops
        .post(
            "/v1/admin/administrators",
            json!({"email": "z@example.com", "role": "owner"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only an owner grants the owner role"
    );
    assert_eq!(
        ops.call(
            Method::DELETE,
            "/v1/admin/administrators/owner@example.com",
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    let (status, problem) = owner
        .call(
            Method::DELETE,
            "/v1/admin/administrators/owner@example.com",
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the last owner stays: {problem}"
    );
    let (status, _) = owner
        .call(
            Method::PATCH,
            "/v1/admin/administrators/owner@example.com",
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, promoted) = owner
        .call(
            Method::PATCH,
            "/v1/admin/administrators/ops@msp.example",
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(promoted["role"], "owner");
    assert_eq!(tenant(&stack, "acme").await.owner_count, 2);
    assert_eq!(
        owner
            .call(
                Method::DELETE,
                "/v1/admin/administrators/owner@example.com",
                None
            )
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(tenant(&stack, "acme").await.owner_count, 1);
    assert_eq!(
        owner.get("/v1/admin/employees").await.0,
        StatusCode::FORBIDDEN,
        "a removed administrator loses access at once"
    );
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_memberships() {
    let stack = TestStack::create().await;
    stack.seed_tenant("acme").await;
    let runner = stack.start_runner().await;
    let owner = Admin::new(&runner, "acme", "owner@example.com");
    let ada = owner.add_employee("Ada", "ada@example.com").await;
    let bob = owner.add_employee("Bob", "bob@example.com").await;
    let cy = owner.add_employee("Cy", "cy@example.com").await;

    let mut group_ids = Vec::new();
    for name in ["Engineering", "Sales", "Security Champions"] {
        let (status, group) = owner.post("/v1/admin/groups", json!({"name": name})).await;
        assert_eq!(status, StatusCode::CREATED, "{group}");
        assert_eq!(group["kind"], "custom");
        group_ids.push(group["group_id"].as_str().unwrap().to_owned());
    }
    let (status, duplicate) = owner
        .post("/v1/admin/groups", json!({"name": "  sales "}))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "names are unique ignoring case"
    );
    assert_eq!(duplicate["group_id"], group_ids[1].as_str());
    assert_eq!(
        owner.post("/v1/admin/groups", json!({"name": ""})).await.1["field"],
        "name"
    );

    let (_, typeahead) = owner.get("/v1/admin/groups?prefix=S").await;
    let names: Vec<&str> = typeahead["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Sales", "Security Champions"]);

    // One employee into many groups, then many employees into one group.
    let both =
        json!({"action": "add", "group_ids": [group_ids[0], group_ids[2]], "employee_ids": [ada]});
    let (status, one_to_many) = owner.post("/v1/admin/group-memberships", both).await;
    assert_eq!(status, StatusCode::OK, "{one_to_many}");
    let many = json!({"action": "add", "group_ids": [group_ids[0]], "employee_ids": [bob, cy, "missing-employee"]});
    let (_, many_to_one) = owner.post("/v1/admin/group-memberships", many).await;
    assert_eq!(many_to_one["changed"].as_array().unwrap().len(), 2);
    assert_eq!(many_to_one["not_found"], json!(["missing-employee"]));

    let (_, engineering) = owner
        .get(&format!("/v1/admin/employees?group={}", group_ids[0]))
        .await;
    assert_eq!(engineering["employees"].as_array().unwrap().len(), 3);
    let (_, champions) = owner
        .get(&format!("/v1/admin/employees?group={}", group_ids[2]))
        .await;
    assert_eq!(champions["employees"].as_array().unwrap().len(), 1);
    let (_, detail) = owner.get(&format!("/v1/admin/employees/{ada}")).await;
    assert_eq!(detail["groups"].as_array().unwrap().len(), 2);

    let remove = json!({"action": "remove", "group_ids": [group_ids[0]], "employee_ids": [bob]});
    let (_, removed) = owner.post("/v1/admin/group-memberships", remove).await;
    assert_eq!(removed["changed"], json!([bob]));
    let (_, engineering) = owner
        .get(&format!("/v1/admin/employees?group={}", group_ids[0]))
        .await;
    assert_eq!(engineering["employees"].as_array().unwrap().len(), 2);

    let rename_path = format!("/v1/admin/groups/{}", group_ids[1]);
    let (status, renamed) = owner
        .call(
            Method::PATCH,
            &rename_path,
            Some(json!({"name": "Revenue"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Revenue");
    let (status, _) = owner
        .call(
            Method::PATCH,
            &rename_path,
            Some(json!({"name": "engineering"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a rename cannot take another group's name"
    );
    let (_, after_rename) = owner.get("/v1/admin/groups?prefix=s").await;
    assert_eq!(
        after_rename["groups"].as_array().unwrap().len(),
        1,
        "the old name is free again"
    );

    let delete_path = format!("/v1/admin/groups/{}", group_ids[2]);
    assert_eq!(
        owner.call(Method::DELETE, &delete_path, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        owner.call(Method::DELETE, &delete_path, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, detail) = owner.get(&format!("/v1/admin/employees/{ada}")).await;
    assert_eq!(
        detail["groups"].as_array().unwrap().len(),
        1,
        "a deleted group no longer shows"
    );
    runner.stop().await;
}
