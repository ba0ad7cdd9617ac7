//! Test harness: a fresh stack (table and queues from the SAM template, under a unique name
//! prefix) in the moto server named by `ROLLCALL_TEST_AWS_ENDPOINT`, a seeded tenant, and the
//! local runner serving it on a free port. `scripts/test` starts moto and sets the variable.

pub mod counting;
pub mod logs;
pub mod providers;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use local_runner::functions::RollcallFunctions;
use local_runner::stack::Stack;
use local_runner::template::Template;
use local_runner::{Runner, RunnerConfig, demo};
use reqwest::{Method, StatusCode};
use rollcall::ids::TenantId;
use rollcall::store::Store;
use serde_json::{Value, json};

pub const ENDPOINT_VARIABLE: &str = "ROLLCALL_TEST_AWS_ENDPOINT";

/// Returns the moto endpoint, or fails the test with what to do.
pub fn endpoint() -> String {
    std::env::var(ENDPOINT_VARIABLE).unwrap_or_else(|_| {
        panic!("{ENDPOINT_VARIABLE} is not set: run the tests with scripts/test, which starts moto and sets it")
    })
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn template() -> Template {
    Template::load(&workspace_root().join("infra/template.yaml"))
        .expect("infra/template.yaml loads")
}

/// Returns a unique name prefix, so tests share one moto server without sharing resources.
pub fn unique_prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

pub struct TestStack {
    pub sdk: SdkConfig,
    pub template: Template,
    pub stack: Stack,
    pub store: Store,
    pub sqs: aws_sdk_sqs::Client,
}

impl TestStack {
    /// Creates the template's resources without starting any function. The identity
    /// providers are left unreachable; use [`TestStack::create_with_providers`] to reach a mock.
    pub async fn create() -> Self {
        Self::create_with(None, &mock_idp::Credentials::default()).await
    }

    /// Creates the template's resources with the functions pointed at a mock provider server
    /// that accepts `credentials`.
    pub async fn create_with_providers(
        mock_url: &str,
        credentials: &mock_idp::Credentials,
    ) -> Self {
        Self::create_with(Some(mock_url), credentials).await
    }

    async fn create_with(mock_url: Option<&str>, credentials: &mock_idp::Credentials) -> Self {
        let sdk = rollcall::aws::local_sdk_config(&endpoint()).await;
        let template = template();
        let mut stack = Stack::create(&sdk, &template, &unique_prefix())
            .await
            .expect("stack is created in moto");
        local_runner::providers::configure(&sdk, &mut stack, mock_url, credentials)
            .await
            .expect("provider settings are stored in moto");
        let store = Store::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            stack.table_name("Table").unwrap(),
        );
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        Self {
            sdk,
            template,
            stack,
            store,
            sqs,
        }
    }

    /// Resolved environment of a function, as Lambda would see it.
    pub fn environment(&self, function: &str) -> HashMap<String, String> {
        self.stack
            .environment(&self.template.functions[function])
            .expect("environment resolves")
    }

    pub fn queue_url(&self, logical_id: &str) -> String {
        self.stack.queue(logical_id).unwrap().url.clone()
    }

    /// Seeds a tenant with the default settings: 25 seats, automatic licensing on, company
    /// domain example.com. Returns its extension key.
    pub async fn seed_tenant(&self, tenant: &str) -> String {
        self.seed_tenant_with(tenant, &demo::TenantSettings::default())
            .await
    }

    pub async fn seed_tenant_with(&self, tenant: &str, settings: &demo::TenantSettings) -> String {
        let tenant_id = TenantId::parse(tenant).unwrap();
        let seeded = demo::seed_tenant(&self.store, &tenant_id, tenant, settings).await;
        seeded.expect("tenant is seeded").extension_key
    }

    /// Starts the local runner on a free port; retries of failed messages happen at once.
    pub async fn start_runner(&self) -> Runner {
        self.start_runner_without(&[]).await
    }

    /// Starts the local runner without some functions, so that what they would consume stays
    /// on its queue for the test to read.
    pub async fn start_runner_without(&self, functions: &[&str]) -> Runner {
        self.start_runner_with(&rollcall::aws::Clients::new(&self.sdk), functions)
            .await
    }

    /// Starts the local runner with `clients`, such as counted ones, without `functions`.
    pub async fn start_runner_with(
        &self,
        clients: &rollcall::aws::Clients,
        functions: &[&str],
    ) -> Runner {
        let mut template = self.template.clone();
        for function in functions {
            template.functions.remove(*function);
        }
        Runner::start(
            clients,
            &template,
            self.stack.clone(),
            &RollcallFunctions,
            RunnerConfig::default(),
        )
        .await
        .expect("runner starts")
    }

    /// Returns every item of a tenant whose sort key starts with `prefix`, over every page.
    pub async fn items(&self, tenant: &str, prefix: &str) -> Vec<HashMap<String, AttributeValue>> {
        let pk = format!("TENANT#{tenant}");
        if !prefix.is_empty() {
            return self
                .store
                .query_prefix(&pk, prefix)
                .await
                .expect("query succeeds");
        }
        let query = self
            .store
            .client()
            .query()
            .table_name(self.store.table_name())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .consistent_read(true);
        self.store
            .query_all_pages(query)
            .await
            .expect("query succeeds")
    }

    /// Returns every employee of a tenant.
    pub async fn employees(&self, tenant: &str) -> Vec<rollcall::table::EmployeeItem> {
        self.items(tenant, "EMPLOYEE#")
            .await
            .into_iter()
            .map(|item| serde_dynamo::from_item(item).expect("an employee item"))
            .collect()
    }

    pub async fn item<T: serde::de::DeserializeOwned>(&self, tenant: &str, sk: &str) -> Option<T> {
        self.store
            .get(&format!("TENANT#{tenant}"), sk)
            .await
            .expect("get succeeds")
    }

    /// Records a connected integration for a tenant, as the connect flow would, for tests that
    /// feed the directory writer directly.
    pub async fn seed_integration(&self, tenant: &str, provider: rollcall::integration::Provider) {
        use rollcall::integration::{self, IntegrationItem, IntegrationStatus};
        let tenant_id = TenantId::parse(tenant).unwrap();
        let item = IntegrationItem {
            pk: rollcall::table::tenant_pk(&tenant_id),
            sk: integration::integration_sk(provider),
            gsi1pk: integration::INTEGRATIONS_GSI1_PK.to_owned(),
            gsi1sk: integration::integrations_gsi1_sk(&tenant_id, provider),
            tenant_id,
            provider,
            provider_tenant: "seeded".into(),
            domain: "example.com".into(),
            scopes: Vec::new(),
            secret_arn: String::new(),
            client_id: None,
            status: IntegrationStatus::Connected,
            connected_at: "2026-01-01T00:00:00.000Z".into(),
            connected_by: "owner@example.com".into(),
            delegation: None,
            last_error: None,
            delta_link: None,
            last_full_sync_at: None,
            last_sync: None,
            revocation_id: None,
            revoked_at: None,
            revoked_by: None,
        };
        self.store.put(&item).await.unwrap();
    }

    /// Adds an administrator with `role` to a tenant.
    pub async fn add_administrator(
        &self,
        tenant: &str,
        email: &str,
        role: rollcall::table::AdminRole,
    ) {
        let tenant_id = TenantId::parse(tenant).unwrap();
        let item = rollcall::table::AdministratorItem {
            pk: rollcall::table::tenant_pk(&tenant_id),
            sk: rollcall::table::administrator_sk(email),
            email: email.to_owned(),
            role,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            invited_by: None,
        };
        self.store.put(&item).await.unwrap();
    }

    /// Receives and deletes up to `max` messages, returning body and message attributes.
    pub async fn drain(
        &self,
        logical_id: &str,
        max: usize,
    ) -> Vec<(String, HashMap<String, String>)> {
        let url = self.queue_url(logical_id);
        let mut drained = Vec::new();
        while drained.len() < max {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive succeeds");
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for message in messages {
                let attributes = message
                    .message_attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.string_value.unwrap_or_default()))
                    .collect();
                drained.push((message.body.unwrap_or_default(), attributes));
                self.sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(message.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .expect("delete succeeds");
            }
        }
        drained
    }
}

/// Current time in the format events carry, `offset_seconds` from now.
pub fn time(offset_seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(offset_seconds))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Builds a valid telemetry body for `install_id` with the given events.
pub fn telemetry_body(install_id: &str, email: Option<&str>, events: Vec<Value>) -> Value {
    json!({
        "schema_version": 1,
        "install_id": install_id,
        "browser": {"name": "chrome", "version": "131.0.6778.86"},
        "extension_version": "1.4.2",
        "managed": true,
        "identity": email.map(|e| json!({"email": e, "source": "gmail"})),
        "events": events,
    })
}

pub fn login(id: &str, offset_seconds: i64, app: &str, account: &str, method: &str) -> Value {
    json!({"id": id, "time": time(offset_seconds), "type": "login",
           "app": {"domain": app, "name": app}, "account_email": account, "login_method": method})
}

pub fn heartbeat(id: &str, offset_seconds: i64) -> Value {
    json!({"id": id, "time": time(offset_seconds), "type": "heartbeat"})
}

/// Builds an SQS event as Lambda delivers it, one record per (message id, body, receive count).
pub fn sqs_event(
    queue_arn: &str,
    records: &[(&str, &str, u32)],
) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<Value> = records
        .iter()
        .map(|(message_id, body, receive_count)| {
            json!({
                "messageId": message_id,
                "receiptHandle": format!("handle-{message_id}"),
                "body": body,
                "attributes": {"ApproximateReceiveCount": receive_count.to_string(), "SentTimestamp": "1764842400000",
                               "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1764842400001"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("SQS event converts")
}

/// Polls `check` every 100 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An administrator calling the admin API through the runner with a token it issued.
pub struct AdminClient {
    url: String,
    pub token: String,
    client: reqwest::Client,
}

impl AdminClient {
    pub fn new(runner: &Runner, tenant: &str, email: &str) -> Self {
        Self {
            url: runner.url(),
            token: runner.admin_token(tenant, email, 600),
            client: reqwest::Client::new(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request is sent");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn add_employee(&self, name: &str, email: &str) -> String {
        let (status, body) = self
            .post("/v1/admin/employees", json!({"name": name, "email": email}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["employee_id"].as_str().unwrap().to_owned()
    }
}
