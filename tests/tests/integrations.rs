//! Connecting identity providers through the local runner and the mock providers. The tests
//! run the full Microsoft admin-consent, Google PKCE and Okta credential flows. They also cover
//! declined and cancelled consent, every kind of bad state, failed exchanges, exact redirect
//! URIs, the Okta domain guard, the scope catalogue, and log lines free of secrets.

use mock_idp::{Credentials, Fault, FaultKind};
use reqwest::StatusCode;
use rollcall::envelope::SyncReason;
use rollcall::integration::{IntegrationStatus, Provider};
use rollcall::oauth_state::{OAuthStateItem, state_sk};
use rollcall_tests::AdminClient;
use rollcall_tests::logs::CapturedLogs;
use rollcall_tests::providers::{ProviderStack as Setup, TENANT, location, query_value};
use serde_json::{Value, json};

const MAILBOX_SCOPE: &str = "https://graph.microsoft.com/MailboxSettings.Read";

async fn problem(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test(flavor = "current_thread")]
async fn microsoft_admin_consent_connects_and_queues_a_sync() {
    let (logs, _guard) = CapturedLogs::start();
    let setup = Setup::start().await;

    let started = setup
        .connect("microsoft", json!({"disabled_scopes": [MAILBOX_SCOPE]}))
        .await;
    let authorize_url = started["authorize_url"].as_str().unwrap();
    assert!(authorize_url.starts_with(&format!(
        "{}/organizations/v2.0/adminconsent?",
        setup.mock.url()
    )));
    assert_eq!(
        query_value(authorize_url, "redirect_uri").as_deref(),
        Some(setup.credentials.redirect_uris[0].as_str()),
        "the configured redirect URI, byte for byte"
    );
    let scope = query_value(authorize_url, "scope").unwrap();
    assert!(scope.contains("https://graph.microsoft.com/User.Read.All"));
    assert!(
        !scope.contains(MAILBOX_SCOPE),
        "switched-off scopes are not requested"
    );
    assert_eq!(started["disabled_features"], json!(["mailbox_rules"]));

    let redirect = setup.consent(authorize_url).await;
    assert_eq!(
        query_value(&redirect, "admin_consent").as_deref(),
        Some("True")
    );
    let response = setup.callback(&redirect).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        "https://console.rollcall.example/integrations?connected=microsoft"
    );

    let item = setup
        .integration(Provider::Microsoft)
        .await
        .expect("integration recorded");
    assert_eq!(item.provider_tenant, setup.credentials.microsoft_tenant);
    assert_eq!(item.status, IntegrationStatus::Connected);
    assert_eq!(item.connected_by, "owner@example.com");
    assert!(!item.scopes.iter().any(|s| s == MAILBOX_SCOPE));
    assert!(item.secret_arn.starts_with("arn:aws:secretsmanager:"));
    let jobs = setup.sync_jobs().await;
    assert_eq!(jobs.len(), 1, "one first sync is queued");
    assert_eq!(jobs[0].provider, Provider::Microsoft);
    assert_eq!(jobs[0].reason, SyncReason::Connected);
    assert_eq!(jobs[0].tenant_id.as_str(), TENANT);
    assert_eq!(setup.count("microsoft.token"), 1);

    let (status, listed) = setup.admin.get("/v1/admin/integrations").await;
    assert_eq!(status, StatusCode::OK);
    let listed = &listed["integrations"][0];
    assert_eq!(listed["provider"], "microsoft");
    assert_eq!(listed["disabled_features"], json!(["mailbox_rules"]));
    assert!(listed.get("secret_arn").is_none());

    // The same state a second time: rejected before any token request.
    let (status, body) = problem(setup.callback(&redirect).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["reason"], "invalid_state");
    assert_eq!(setup.count("microsoft.token"), 1);
    assert!(setup.sync_jobs().await.is_empty());

    let state = query_value(&redirect, "state").unwrap();
    let text = logs.text();
    for secret in [
        setup.credentials.microsoft_client_secret.as_str(),
        state.as_str(),
    ] {
        assert!(!text.contains(secret), "a log line reveals a secret");
    }
    assert!(text.contains("integration connected"), "logs were captured");
}

#[tokio::test]
async fn declined_or_cancelled_consent_stores_nothing() {
    let setup = Setup::start().await;
    for (fault, reason) in [
        (FaultKind::ConsentDeclined, "consent_declined"),
        (FaultKind::ConsentCancelled, "consent_cancelled"),
    ] {
        setup.mock.inject(Fault {
            endpoint: "microsoft.admin_consent".into(),
            kind: fault,
            count: 1,
        });
        let started = setup.connect("microsoft", json!({})).await;
        let redirect = setup
            .consent(started["authorize_url"].as_str().unwrap())
            .await;
        assert_eq!(
            query_value(&redirect, "error").as_deref(),
            Some("access_denied")
        );
        assert_eq!(query_value(&redirect, "tenant"), None);

        let (status, body) = problem(setup.callback(&redirect).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["reason"], reason);

        // The state was consumed even though consent failed.
        let (_, body) = problem(setup.callback(&redirect).await).await;
        assert_eq!(body["reason"], "invalid_state");
    }
    assert!(setup.integration(Provider::Microsoft).await.is_none());
    assert!(setup.sync_jobs().await.is_empty());
    assert_eq!(setup.count("microsoft.token"), 0);

    // Google's decline has no subcode.
    setup.mock.inject(Fault {
        endpoint: "google.authorize".into(),
        kind: FaultKind::ConsentDeclined,
        count: 1,
    });
    let started = setup.connect("google", json!({})).await;
    let redirect = setup
        .consent(started["authorize_url"].as_str().unwrap())
        .await;
    let (status, body) = problem(setup.callback(&redirect).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["reason"], "consent_declined");
    assert!(setup.integration(Provider::Google).await.is_none());
    assert_eq!(setup.count("google.token"), 0);
}

#[tokio::test]
async fn bad_states_are_rejected_before_any_exchange() {
    let setup = Setup::start().await;
    let tenant = &setup.credentials.microsoft_tenant;
    let callback =
        |query: String| format!("http://rollcall.example/v1/oauth/callback/microsoft?{query}");

    // Issued for Google, presented to Microsoft.
    let google = setup.connect("google", json!({})).await;
    let google_state = query_value(google["authorize_url"].as_str().unwrap(), "state").unwrap();
    // Issued, then aged past ten minutes.
    let expired = setup.connect("microsoft", json!({})).await;
    let expired_state = query_value(expired["authorize_url"].as_str().unwrap(), "state").unwrap();
    let presented = rollcall::oauth_state::parse(&expired_state).unwrap();
    let sk = state_sk(&presented.secret_sha256);
    let mut item: OAuthStateItem = setup.stack.item(TENANT, &sk).await.unwrap();
    item.expires_at = chrono::Utc::now().timestamp() - 1;
    setup.stack.store.put(&item).await.unwrap();
    let unknown = rollcall::oauth_state::generate(&rollcall::ids::TenantId::parse(TENANT).unwrap());

    for (query, reason) in [
        (
            format!("admin_consent=True&tenant={tenant}"),
            "invalid_state",
        ),
        (
            format!("admin_consent=True&tenant={tenant}&state="),
            "invalid_state",
        ),
        (
            format!("admin_consent=True&tenant={tenant}&state=not-a-state"),
            "invalid_state",
        ),
        (
            format!("admin_consent=True&tenant={tenant}&state={}", unknown.token),
            "invalid_state",
        ),
        (
            format!("admin_consent=True&tenant={tenant}&state={google_state}"),
            "invalid_state",
        ),
        (
            format!("admin_consent=True&tenant={tenant}&state={expired_state}"),
            "expired_state",
        ),
    ] {
        let (status, body) = problem(setup.callback(&callback(query.clone())).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["reason"], reason, "{query}");
    }

    // A valid state with a callback that does not confirm consent.
    for query in [
        "tenant=6f0b1a2c-3d4e-4f50-8a61-7b8c9d0e1f23".to_owned(),
        "admin_consent=True&tenant=organizations".to_owned(),
        "admin_consent=False&tenant=6f0b1a2c-3d4e-4f50-8a61-7b8c9d0e1f23".to_owned(),
    ] {
        let started = setup.connect("microsoft", json!({})).await;
        let state = query_value(started["authorize_url"].as_str().unwrap(), "state").unwrap();
        let (status, body) = problem(
            setup
                .callback(&callback(format!("{query}&state={state}")))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }

    assert_eq!(setup.count("microsoft.token"), 0);
    assert!(setup.integration(Provider::Microsoft).await.is_none());
    assert!(setup.sync_jobs().await.is_empty());
}

#[tokio::test]
async fn failed_exchange_stores_nothing() {
    let setup = Setup::start().await;
    setup.mock.inject(Fault {
        endpoint: "microsoft.token".into(),
        kind: FaultKind::InvalidGrant,
        count: 1,
    });
    let started = setup.connect("microsoft", json!({})).await;
    let redirect = setup
        .consent(started["authorize_url"].as_str().unwrap())
        .await;
    let (status, body) = problem(setup.callback(&redirect).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["reason"], "exchange_failed");
    assert!(body["detail"].as_str().unwrap().contains("invalid_grant"));
    assert!(setup.integration(Provider::Microsoft).await.is_none());
    assert!(setup.sync_jobs().await.is_empty());

    let started = setup.connect("microsoft", json!({})).await;
    let redirect = setup
        .consent(started["authorize_url"].as_str().unwrap())
        .await;
    assert_eq!(
        setup.callback(&redirect).await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(setup.integration(Provider::Microsoft).await.is_some());
    assert_eq!(setup.sync_jobs().await.len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn google_pkce_consent_and_domain_wide_delegation() {
    let (logs, _guard) = CapturedLogs::start();
    let setup = Setup::start().await;

    let started = setup.connect("google", json!({})).await;
    let authorize_url = started["authorize_url"].as_str().unwrap();
    assert_eq!(
        query_value(authorize_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        query_value(authorize_url, "redirect_uri").as_deref(),
        Some(setup.credentials.redirect_uris[1].as_str())
    );
    let scope = query_value(authorize_url, "scope").unwrap();
    assert!(
        !scope.contains("gmail.settings.basic"),
        "delegated scopes are not part of the consent"
    );

    let redirect = setup.consent(authorize_url).await;
    let code = query_value(&redirect, "code").expect("a code");
    // A trailing slash on the callback path still routes.
    let redirect = redirect.replacen("/callback/google?", "/callback/google/?", 1);
    let response = setup.callback(&redirect).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let item = setup.integration(Provider::Google).await.unwrap();
    assert_eq!(item.provider_tenant, "C01abc234");
    assert_eq!(item.domain, "fabrikam.example");
    assert!(
        item.scopes
            .iter()
            .any(|s| s.ends_with("gmail.settings.basic"))
    );
    let secret: Value = serde_json::from_str(&setup.secret(&item.secret_arn).await).unwrap();
    let refresh_token = secret["refresh_token"]
        .as_str()
        .expect("refresh token stored");
    assert!(!refresh_token.is_empty());
    assert_eq!(setup.sync_jobs().await.len(), 1);

    // Delegation as the configured Workspace admin succeeds and is recorded.
    let (status, body) = setup
        .admin
        .put(
            "/v1/admin/integrations/google/delegation",
            json!({"admin_email": setup.credentials.google_delegated_admin}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["delegation"]["admin_email"],
        setup.credentials.google_delegated_admin.as_str()
    );
    // As anyone else, Google returns unauthorized_client, and the error names what to authorise.
    let (status, body) = setup
        .admin
        .put(
            "/v1/admin/integrations/google/delegation",
            json!({"admin_email": "someone@fabrikam.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(local_runner::providers::SERVICE_ACCOUNT_CLIENT_ID));
    assert!(detail.contains("https://www.googleapis.com/auth/gmail.settings.basic"));
    let item = setup.integration(Provider::Google).await.unwrap();
    assert_eq!(
        item.delegation.unwrap().admin_email,
        setup.credentials.google_delegated_admin,
        "a failed check changes nothing"
    );

    let text = logs.text();
    for secret in [
        refresh_token,
        code.as_str(),
        setup.credentials.google_client_secret.as_str(),
    ] {
        assert!(!text.contains(secret), "a log line reveals a secret");
    }
}

#[tokio::test]
async fn redirect_uri_is_sent_exactly_as_configured() {
    // Not the form a URL parser would write back: the scheme and host are upper case and the
    // default port is spelled out.
    let odd = "HTTP://LOCALHOST:80/v1/oauth/callback/google";
    let mut credentials = Credentials::default();
    credentials.redirect_uris = vec![credentials.redirect_uris[0].clone(), odd.to_owned()];
    let setup = Setup::start_with(credentials).await;

    let started = setup.connect("google", json!({})).await;
    let authorize_url = started["authorize_url"].as_str().unwrap();
    assert_eq!(
        query_value(authorize_url, "redirect_uri").as_deref(),
        Some(odd)
    );
    let redirect = setup.consent(authorize_url).await;
    assert!(redirect.starts_with(odd));
    let redirect = redirect.replacen(odd, "http://127.0.0.1/v1/oauth/callback/google", 1);
    // The mock refuses a code exchange whose redirect_uri differs from the authorize request's.
    assert_eq!(
        setup.callback(&redirect).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "current_thread")]
async fn okta_credentials_are_checked_then_stored() {
    let (logs, _guard) = CapturedLogs::start();
    let setup = Setup::start().await;
    let path = "/v1/admin/integrations/okta";
    let body = |secret: &str| json!({"domain": "https://acme.okta.com", "client_id": setup.credentials.okta_client_id, "client_secret": secret});

    let (status, problem) = setup.admin.put(path, body("wrong-secret")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["reason"], "invalid_client");
    for (kind, reason) in [
        (FaultKind::InvalidScope, "invalid_scope"),
        (FaultKind::OktaForbidden, "not_admin"),
    ] {
        let endpoint = if kind == FaultKind::InvalidScope {
            "okta.token"
        } else {
            "okta.users"
        };
        setup.mock.inject(Fault {
            endpoint: endpoint.into(),
            kind,
            count: 1,
        });
        let (status, problem) = setup
            .admin
            .put(path, body(&setup.credentials.okta_client_secret))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert_eq!(problem["reason"], reason);
    }
    assert!(setup.integration(Provider::Okta).await.is_none());
    assert!(setup.sync_jobs().await.is_empty());

    let (status, view) = setup
        .admin
        .put(path, body(&setup.credentials.okta_client_secret))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    assert_eq!(view["domain"], "acme.okta.com");
    let item = setup.integration(Provider::Okta).await.unwrap();
    assert_eq!(item.client_id.as_deref(), Some("okta-client"));
    let secret: Value = serde_json::from_str(&setup.secret(&item.secret_arn).await).unwrap();
    assert_eq!(
        secret["client_secret"],
        setup.credentials.okta_client_secret.as_str()
    );
    let jobs = setup.sync_jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].provider, Provider::Okta);

    // Another org while one is connected.
    let (status, _) = setup
        .admin
        .put(
            path,
            json!({"domain": "other.okta.com", "client_id": "okta-client", "client_secret": setup.credentials.okta_client_secret}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    assert!(
        !logs.text().contains(&setup.credentials.okta_client_secret),
        "a log line reveals the Okta client secret"
    );
}

#[tokio::test]
async fn okta_domain_guard_refuses_other_addresses() {
    let setup = Setup::start().await;
    for domain in [
        "http://acme.okta.com",
        "https://127.0.0.1",
        "https://[::1]",
        "169.254.169.254",
        "https://acme.okta.com:8443",
        "https://admin:pw@acme.okta.com",
        "https://acme.okta.com/oauth2/v1/token",
        "https://acme.okta.com.attacker.example",
        "https://intranet.corp.example",
        "localhost",
        "",
    ] {
        let (status, body) = setup
            .admin
            .put(
                "/v1/admin/integrations/okta",
                json!({"domain": domain, "client_id": "okta-client", "client_secret": "okta-secret"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{domain}: {body}");
        assert_eq!(body["field"], "domain", "{domain}");
    }
    assert_eq!(
        setup.count("okta.token"),
        0,
        "no request left for a refused domain"
    );
}

#[tokio::test]
async fn scope_catalogue_and_bad_connect_requests() {
    let setup = Setup::start().await;
    let (status, catalogue) = setup.admin.get("/v1/admin/integrations/scopes").await;
    assert_eq!(status, StatusCode::OK);
    let microsoft = catalogue["providers"]["microsoft"].as_array().unwrap();
    let mailbox = microsoft
        .iter()
        .find(|s| s["scope"] == MAILBOX_SCOPE)
        .unwrap();
    assert_eq!(mailbox["features"], json!(["mailbox_rules"]));
    assert_eq!(mailbox["required"], false);
    assert!(catalogue["providers"]["okta"].as_array().unwrap().len() >= 3);

    for (provider, body, status) in [
        (
            "microsoft",
            json!({"disabled_scopes": ["https://graph.microsoft.com/User.Read.All"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "microsoft",
            json!({"disabled_scopes": ["Mail.ReadWrite"]}),
            StatusCode::BAD_REQUEST,
        ),
        ("microsoft", json!({"scopes": []}), StatusCode::BAD_REQUEST),
        ("okta", json!({}), StatusCode::BAD_REQUEST),
        ("yahoo", json!({}), StatusCode::NOT_FOUND),
    ] {
        let (got, problem) = setup
            .admin
            .post(
                &format!("/v1/admin/integrations/{provider}/connect"),
                body.clone(),
            )
            .await;
        assert_eq!(got, status, "{provider} {body}: {problem}");
    }

    // Read-only administrators cannot connect.
    setup
        .stack
        .add_administrator(
            TENANT,
            "viewer@example.com",
            rollcall::table::AdminRole::ReadOnly,
        )
        .await;
    let viewer = AdminClient::new(&setup.runner, TENANT, "viewer@example.com");
    let (status, _) = viewer
        .post("/v1/admin/integrations/microsoft/connect", json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = viewer.get("/v1/admin/integrations").await;
    assert_eq!(status, StatusCode::OK);
}
