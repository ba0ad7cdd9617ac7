//! The whole job on the local stack, as an organisation would live it. A tenant has fewer seats
//! than people, and the three identity providers are connected through their consent flows.
//! After the first sync, automatic licensing is turned on and a fleet of extensions reports.
//! Then the clock moves on past the inactivity period of the profiles that went silent, and
//! the daily sweep runs. A summary read from the table, the mock providers and the queues ends
//! it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use mock_idp::{AccountState, Credentials, Directory, IdStyle, MockConfig, MockIdp};
use reqwest::StatusCode;
use rollcall::directory::{Activity, ActivityItem};
use rollcall::ids::TenantId;
use rollcall::store::{Store, decode};
use rollcall::table::{self, AppItem, EmployeeItem, LicenceState, TenantItem};
use serde_json::{Value, json};

use crate::Runner;
use crate::demo::{self, TenantSettings};

/// The organisation the scenario plays.
#[derive(Debug, Clone)]
pub struct Organisation {
    pub tenant: String,
    pub domain: String,
    /// People numbers each provider lists; overlapping ranges share people.
    pub microsoft: Range<usize>,
    pub google: Range<usize>,
    pub okta: Range<usize>,
    pub plan_seats: u32,
    /// Browser profiles the extension fleet plays.
    pub profiles: usize,
    /// Requests per second the fleet sends at most.
    pub rate: Option<u32>,
}

impl Default for Organisation {
    fn default() -> Self {
        Self {
            tenant: "northwind".into(),
            domain: "northwind.example".into(),
            microsoft: 0..3_000,
            google: 2_000..4_500,
            okta: 0..2_000,
            plan_seats: 2_000,
            profiles: 2_000,
            rate: None,
        }
    }
}

impl Organisation {
    /// Builds the mock providers' directories: Microsoft 365 and Google Workspace share a
    /// thousand people, and Okta lists a subset of the Microsoft 365 people.
    pub fn directories(&self, credentials: Credentials) -> MockConfig {
        const SEED: u64 = 11;
        MockConfig {
            microsoft: Directory::organisation(
                &self.domain,
                self.microsoft.clone(),
                SEED,
                IdStyle::Microsoft,
            ),
            google: Directory::organisation(
                &self.domain,
                self.google.clone(),
                SEED,
                IdStyle::Google,
            ),
            okta: Directory::organisation(&self.domain, self.okta.clone(), SEED, IdStyle::Okta),
            credentials,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{step} failed: {detail}")]
    Step { step: &'static str, detail: String },
}

fn failed(step: &'static str, detail: impl ToString) -> ScenarioError {
    ScenarioError::Step {
        step,
        detail: detail.to_string(),
    }
}

/// The tenant and credentials a person uses to call the running system afterwards.
pub struct Played {
    pub tenant_id: TenantId,
    pub owner_email: String,
    pub extension_key: String,
    pub summary: String,
}

const OWNER: &str = "owner@northwind.example";
const SYNC_QUEUES: [&str; 2] = ["SyncQueue", "DirectoryQueue"];
const TELEMETRY_QUEUES: [&str; 2] = ["TelemetryQueue", "LicensingQueue"];
const QUEUE_WAIT: Duration = Duration::from_secs(3_600);

/// Plays the scenario against a running runner and mock.
pub async fn play(
    runner: &Runner,
    store: &Store,
    mock: &MockIdp,
    credentials: &Credentials,
    organisation: &Organisation,
) -> Result<Played, ScenarioError> {
    let tenant_id = TenantId::parse(&organisation.tenant).map_err(|e| failed("tenant id", e))?;
    let seeded = demo::seed_tenant(
        store,
        &tenant_id,
        "Northwind Traders",
        &TenantSettings {
            plan_seats: organisation.plan_seats,
            auto_licensing: false,
            company_domains: vec![organisation.domain.clone()],
            include_subdomains: false,
            owner_email: OWNER.into(),
        },
    )
    .await
    .map_err(|e| failed("tenant", e))?;
    let admin = Admin::new(runner, &organisation.tenant);
    println!(
        "Tenant {} created: {} seats for {} people",
        organisation.tenant,
        organisation.plan_seats,
        people(organisation).len()
    );

    for provider in ["microsoft", "google"] {
        admin.consent(provider).await?;
        println!("Connected {provider} through its consent flow");
    }
    let (status, body) = admin
        .call(
            reqwest::Method::PUT,
            "/v1/admin/integrations/okta",
            Some(json!({
                "domain": format!("{}.okta.com", organisation.tenant),
                "client_id": credentials.okta_client_id,
                "client_secret": credentials.okta_client_secret,
            })),
        )
        .await?;
    expect("connect okta", status, StatusCode::CREATED, &body)?;
    println!("Connected okta with its API service app credentials");
    println!("First sync of the three directories (a few minutes on a debug build)...");
    runner
        .wait_until_idle(&SYNC_QUEUES, QUEUE_WAIT)
        .await
        .map_err(|e| failed("first sync", e))?;

    let (status, body) = admin
        .call(
            reqwest::Method::PATCH,
            "/v1/admin/settings",
            Some(json!({"auto_licensing": true})),
        )
        .await?;
    expect("automatic licensing", status, StatusCode::OK, &body)?;
    println!("Automatic licensing is on");

    let fleet = extension_sim::run(&extension_sim::FleetOptions {
        api_url: runner.url(),
        extension_key: seeded.extension_key.clone(),
        people: people(organisation),
        profiles: organisation.profiles,
        managed_share: 0.8,
        silent_share: 0.1,
        duplicate_share: 0.05,
        rate: organisation.rate,
        seed: 5,
        progress: true,
    })
    .await
    .map_err(|e| failed("extension fleet", e))?;
    runner
        .wait_until_idle(&TELEMETRY_QUEUES, QUEUE_WAIT)
        .await
        .map_err(|e| failed("telemetry", e))?;
    println!(
        "Extension fleet: {} profiles ({} managed, {} silent) sent {} requests ({} twice), {} events, {} accepted, in {:.0} s",
        fleet.profiles,
        fleet.managed,
        fleet.silent,
        fleet.requests,
        fleet.duplicate_requests,
        fleet.events,
        fleet.accepted_events,
        fleet.elapsed_seconds
    );

    // Silent profiles last reported 29 days ago. Moving the clock on by the rest of the
    // 90-day inactivity period and a day makes them inactive, while the profiles that
    // reported this hour stay within it.
    let days_on = 90 - extension_sim::SILENT_DAYS_AGO + 1;
    let sweep_time = Utc::now() + chrono::Duration::days(days_on);
    runner
        .fire_schedule("InactivitySweepFunction", Some(sweep_time))
        .await
        .map_err(|e| failed("inactivity sweep", format!("{e:?}")))?;
    println!(
        "Clock moved on {days_on} days to {}: the daily inactivity sweep ran",
        sweep_time.format("%Y-%m-%d")
    );

    let summary = summarise(runner, store, mock, &tenant_id, &fleet).await?;
    Ok(Played {
        tenant_id,
        owner_email: OWNER.into(),
        extension_key: seeded.extension_key,
        summary,
    })
}

/// Lists the people of the organisation who are active in at least one directory.
fn people(organisation: &Organisation) -> Vec<extension_sim::Person> {
    let directories = organisation.directories(Credentials::default());
    let mut emails = std::collections::BTreeSet::new();
    for directory in [
        &directories.microsoft,
        &directories.google,
        &directories.okta,
    ] {
        for user in &directory.users {
            if !user.guest && user.state == AccountState::Active {
                emails.insert(user.email.clone());
            }
        }
    }
    emails
        .into_iter()
        .map(|email| extension_sim::Person { email })
        .collect()
}

fn expect(
    step: &'static str,
    status: StatusCode,
    expected: StatusCode,
    body: &Value,
) -> Result<(), ScenarioError> {
    if status == expected {
        Ok(())
    } else {
        Err(failed(step, format!("HTTP {status}: {body}")))
    }
}

/// The owner calling the admin API through the runner.
struct Admin {
    url: String,
    token: String,
    client: reqwest::Client,
}

impl Admin {
    fn new(runner: &Runner, tenant: &str) -> Self {
        Self {
            url: runner.url(),
            token: runner.admin_token(tenant, OWNER, 3_600),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), ScenarioError> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| failed("admin API", e))?;
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Connects Microsoft or Google as an administrator's browser would: the connect URL,
    /// the provider's consent page (which the mock grants at once), and the redirect back.
    async fn consent(&self, provider: &'static str) -> Result<(), ScenarioError> {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/admin/integrations/{provider}/connect"),
                Some(json!({})),
            )
            .await?;
        expect("connect URL", status, StatusCode::CREATED, &body)?;

        let authorize_url = body["authorize_url"]
            .as_str()
            .ok_or_else(|| failed("connect URL", "no authorize_url"))?;
        let consent = self
            .client
            .get(authorize_url)
            .send()
            .await
            .map_err(|e| failed("consent", e))?;
        let location = consent
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                failed(
                    "consent",
                    format!("HTTP {} without a redirect", consent.status()),
                )
            })?
            .to_owned();

        // The provider redirects to the registered redirect URI; its path and query go to this
        // runner, wherever the URI points.
        let redirect = reqwest::Url::parse(&location).map_err(|e| failed("consent", e))?;
        let target = format!(
            "{}{}?{}",
            self.url,
            redirect.path(),
            redirect.query().unwrap_or_default()
        );
        let callback = self
            .client
            .get(&target)
            .send()
            .await
            .map_err(|e| failed("callback", e))?;
        if callback.status() != StatusCode::SEE_OTHER {
            let status = callback.status();
            let body = callback.text().await.unwrap_or_default();
            return Err(failed("callback", format!("HTTP {status}: {body}")));
        }
        Ok(())
    }
}

/// Reads what the scenario left and formats it.
async fn summarise(
    runner: &Runner,
    store: &Store,
    mock: &MockIdp,
    tenant_id: &TenantId,
    fleet: &extension_sim::FleetReport,
) -> Result<String, ScenarioError> {
    let query = store
        .client()
        .query()
        .table_name(store.table_name())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(table::tenant_pk(tenant_id)));
    let items = store
        .query_all_pages(query)
        .await
        .map_err(|e| failed("summary", e))?;

    let mut employees: Vec<EmployeeItem> = Vec::new();
    let mut apps: Vec<AppItem> = Vec::new();
    let mut activity: Vec<ActivityItem> = Vec::new();
    let mut tenant: Option<TenantItem> = None;
    let mut sweeps: Vec<table::SweepItem> = Vec::new();
    for item in items {
        let Some(AttributeValue::S(sk)) = item.get(table::SK).cloned() else {
            continue;
        };
        if sk.starts_with("EMPLOYEE#") {
            employees.extend(decode(item).ok());
        } else if sk.starts_with("APP#") {
            apps.extend(decode(item).ok());
        } else if sk.starts_with("ACTIVITY#") {
            activity.extend(decode(item).ok());
        } else if sk.starts_with("SWEEP#") {
            sweeps.extend(decode(item).ok());
        } else if sk == table::TENANT_SK {
            tenant = decode(item).ok();
        }
    }

    let mut out = String::new();
    let _ = writeln!(out, "\n== Summary ==");
    let mut by_source: BTreeMap<String, usize> = BTreeMap::new();
    for employee in &employees {
        let mut sources = employee.sources.clone();
        sources.sort();
        let key = if sources.is_empty() {
            "(no source left, kept for its licence)".to_owned()
        } else {
            sources.join(" + ")
        };
        *by_source.entry(key).or_default() += 1;
    }
    let _ = writeln!(out, "Employees: {}", employees.len());
    for (sources, count) in &by_source {
        let _ = writeln!(out, "  {count:>6}  {sources}");
    }
    let licensed = employees
        .iter()
        .filter(|e| e.licence_state == LicenceState::Licensed)
        .count();
    let swept = employees
        .iter()
        .filter(|e| e.activity_hidden_at.is_some())
        .count();
    let _ = writeln!(
        out,
        "Licensed: {licensed}, unlicensed: {}; activity hidden by the sweep: {swept}",
        employees.len() - licensed
    );
    for sweep in &sweeps {
        let _ = writeln!(
            out,
            "Inactivity sweep of {}: {} unlicensed, {} with activity hidden, {} kept for their SaaS accounts",
            sweep.date,
            sweep.unlicensed_ids.len(),
            sweep.activity_hidden_ids.len(),
            sweep.kept_with_accounts
        );
    }
    if let Some(tenant) = &tenant {
        let _ = writeln!(
            out,
            "Seats: {} of {} in use",
            tenant.licences_in_use, tenant.plan_seats
        );
    }

    let mut methods: BTreeMap<String, usize> = BTreeMap::new();
    for app in &apps {
        for method in &app.login_methods {
            *methods.entry(method.clone()).or_default() += 1;
        }
    }
    let _ = writeln!(
        out,
        "SaaS apps discovered: {}; apps by login method:",
        apps.len()
    );
    for (method, count) in &methods {
        let _ = writeln!(out, "  {count:>6}  {method}");
    }

    let (mut grants, mut rules, mut suspicious) = (0, 0, 0);
    for item in &activity {
        match &item.activity {
            Activity::OauthGrants(list) => grants += list.len(),
            Activity::MailRules(list) => {
                rules += list.len();
                suspicious += list.iter().filter(|r| r.suspicious).count();
            }
            _ => {}
        }
    }
    let _ = writeln!(
        out,
        "Third-party grants: {grants}; mailbox rules: {rules}, of which suspicious: {suspicious}"
    );

    let mut by_provider: BTreeMap<String, u64> = BTreeMap::new();
    for (endpoint, count) in mock.request_counts() {
        let provider = endpoint.split('.').next().unwrap_or_default().to_owned();
        *by_provider.entry(provider).or_default() += count;
    }
    let _ = writeln!(out, "Requests each mock provider received:");
    for (provider, count) in &by_provider {
        let _ = writeln!(out, "  {count:>6}  {provider}");
    }
    if fleet.failed_requests.is_empty() {
        let _ = writeln!(out, "Extension fleet: every request got 202 Accepted");
    } else {
        let _ = writeln!(
            out,
            "Extension fleet requests that failed, by status (0: no response): {:?}",
            fleet.failed_requests
        );
    }

    let depths = runner
        .queue_depths()
        .await
        .map_err(|e| failed("queue depths", e))?;
    let _ = writeln!(out, "Queue depths (waiting, in flight):");
    for (queue, (waiting, in_flight)) in &depths {
        let _ = writeln!(out, "  {queue:<28} {waiting}, {in_flight}");
    }
    Ok(out)
}
