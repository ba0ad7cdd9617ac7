//! A tenant on the local stack with the mock identity providers: connecting through the real
//! consent flows, and reading what the connection and syncs stored.

use local_runner::Runner;
use mock_idp::{AccountState, Credentials, Directory, MockConfig, MockIdp, User};
use reqwest::StatusCode;
use rollcall::envelope::SyncJob;
use rollcall::integration::{IntegrationItem, Provider, integration_sk};
use std::time::Duration;

use serde_json::{Value, json};

use crate::counting::{RequestCounter, counted_clients};
use crate::{AdminClient, TestStack};

pub const TENANT: &str = "acme";

/// A tenant on the local stack with the mock providers, and its owner's admin client.
pub struct ProviderStack {
    pub mock: MockIdp,
    pub stack: TestStack,
    pub runner: Runner,
    pub admin: AdminClient,
    pub credentials: Credentials,
}

impl ProviderStack {
    /// Starts the mock with small generated directories and default credentials.
    pub async fn start() -> Self {
        Self::start_with(Credentials::default()).await
    }

    pub async fn start_with(credentials: Credentials) -> Self {
        let config = MockConfig {
            microsoft: Directory::generate("contoso.example", 20, 1),
            google: Directory::generate("fabrikam.example", 20, 2),
            okta: Directory::generate("initech.example", 20, 3),
            credentials: credentials.clone(),
        };
        Self::start_with_config(config, &[], false).await
    }

    /// Starts the mock with `config`, and the runner with template `parameters` overridden.
    /// Without `sync`, the runner leaves sync jobs on the sync queue for the test to read.
    pub async fn start_with_config(
        config: MockConfig,
        parameters: &[(&str, &str)],
        sync: bool,
    ) -> Self {
        Self::start_counted(config, parameters, sync, None).await
    }

    /// As [`ProviderStack::start_with_config`], with the runner's AWS requests counted by
    /// `counter` when one is given.
    pub async fn start_counted(
        config: MockConfig,
        parameters: &[(&str, &str)],
        sync: bool,
        counter: Option<&RequestCounter>,
    ) -> Self {
        let credentials = config.credentials.clone();
        let mock = MockIdp::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .expect("mock starts");
        let mut stack = TestStack::create_with_providers(&mock.url(), &credentials).await;
        for (name, value) in parameters {
            stack.stack.set_parameter(name, *value);
        }
        stack.seed_tenant(TENANT).await;
        let clients = match counter {
            Some(counter) => counted_clients(&stack.sdk, counter),
            None => rollcall::aws::Clients::new(&stack.sdk),
        };
        let without: &[&str] = if sync { &[] } else { &["SyncWorkerFunction"] };
        let runner = stack.start_runner_with(&clients, without).await;
        let admin = AdminClient::new(&runner, TENANT, "owner@example.com");
        Self {
            mock,
            stack,
            runner,
            admin,
            credentials,
        }
    }
}

/// Returns an active directory user named Dana Lee, with a mailbox and MFA, and nothing else.
pub fn directory_user(id: &str, email: &str) -> User {
    User {
        id: id.to_owned(),
        email: email.to_owned(),
        given_name: "Dana".to_owned(),
        family_name: "Lee".to_owned(),
        aliases: Vec::new(),
        is_admin: false,
        mfa_enrolled: true,
        state: AccountState::Active,
        guest: false,
        has_mailbox: true,
        last_updated: None,
        grants: Vec::new(),
        mail_rules: Vec::new(),
    }
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn query_value(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .expect("redirect has a location")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The queues a directory sync goes through.
const SYNC_QUEUES: [&str; 2] = ["SyncQueue", "DirectoryQueue"];

impl ProviderStack {
    /// Waits until the sync and directory queues are empty, and checks that their dead-letter
    /// queues stayed empty.
    /// The bound is generous because a 10,000-user first sync on moto in a debug build takes
    /// minutes on two cores.
    pub async fn settle(&self) {
        self.runner
            .wait_until_idle(&SYNC_QUEUES, Duration::from_secs(1_500))
            .await
            .expect("sync and directory queues drain");
        let depths = self.runner.queue_depths().await.unwrap();
        for dead_letters in ["SyncDeadLetterQueue", "DirectoryDeadLetterQueue"] {
            assert_eq!(depths[dead_letters], (0, 0), "{dead_letters} is empty");
        }
    }

    /// Connects `provider` as an administrator would (the consent flow for Microsoft and
    /// Google, client credentials for Okta), with `disabled_scopes` switched off, and waits
    /// for the first sync.
    pub async fn connect_and_sync(&self, provider: Provider, disabled_scopes: &[&str]) {
        match provider {
            Provider::Okta => {
                let (status, body) = self
                    .admin
                    .put(
                        "/v1/admin/integrations/okta",
                        json!({"domain": "initech.okta.com", "client_id": self.credentials.okta_client_id, "client_secret": self.credentials.okta_client_secret}),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
            }
            _ => {
                let started = self
                    .connect(
                        provider.as_str(),
                        json!({"disabled_scopes": disabled_scopes}),
                    )
                    .await;
                let redirect = self
                    .consent(started["authorize_url"].as_str().unwrap())
                    .await;
                let response = self.callback(&redirect).await;
                assert_eq!(response.status(), StatusCode::SEE_OTHER);
            }
        }
        self.settle().await;
    }

    /// Fires the hourly scheduler and waits for every run it starts.
    pub async fn resync(&self) {
        let response = reqwest::Client::new()
            .post(format!(
                "{}/_local/schedules/SyncSchedulerFunction",
                self.runner.url()
            ))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "scheduler fires");
        self.settle().await;
    }

    /// Asks for a connect URL and returns the response body.
    pub async fn connect(&self, provider: &str, body: Value) -> Value {
        let (status, body) = self
            .admin
            .post(&format!("/v1/admin/integrations/{provider}/connect"), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Opens the authorize URL at the mock, as the admin's browser would, and returns where the
    /// provider redirects.
    pub async fn consent(&self, authorize_url: &str) -> String {
        let response = no_redirects().get(authorize_url).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FOUND,
            "provider redirects back"
        );
        location(&response)
    }

    /// Delivers a provider redirect to the runner. The redirect URI is configured for the
    /// deployed address, so only its path and query are kept.
    pub async fn callback(&self, redirect: &str) -> reqwest::Response {
        let url = reqwest::Url::parse(redirect).unwrap();
        let target = format!(
            "{}{}?{}",
            self.runner.url(),
            url.path(),
            url.query().unwrap_or_default()
        );
        no_redirects().get(target).send().await.unwrap()
    }

    pub async fn integration(&self, provider: Provider) -> Option<IntegrationItem> {
        self.stack.item(TENANT, &integration_sk(provider)).await
    }

    pub async fn sync_jobs(&self) -> Vec<SyncJob> {
        self.stack
            .drain("SyncQueue", 10)
            .await
            .into_iter()
            .map(|(body, _)| SyncJob::from_body(&body).expect("a sync job"))
            .collect()
    }

    pub fn count(&self, endpoint: &str) -> u64 {
        self.mock
            .request_counts()
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    pub async fn secret(&self, arn: &str) -> String {
        aws_sdk_secretsmanager::Client::new(&self.stack.sdk)
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .expect("secret exists")
            .secret_string
            .unwrap_or_default()
    }
}
