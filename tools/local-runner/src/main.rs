use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use local_runner::functions::RollcallFunctions;
use local_runner::scenario::{self, Organisation};
use local_runner::stack::Stack;
use local_runner::template::Template;
use local_runner::{Runner, RunnerConfig, demo};
use rollcall::ids::TenantId;
use rollcall::store::Store;

/// Runs Rollcall locally against a moto server.
#[derive(Parser)]
struct Options {
    /// URL of the moto server (the local AWS stand-in).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    aws_endpoint: String,
    /// SAM template that defines the functions, tables and queues.
    #[arg(long, default_value = "infra/template.yaml")]
    template: PathBuf,
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Prefix of the table and queue names created in moto.
    #[arg(long, default_value = "rollcall")]
    prefix: String,
    /// Create a demo tenant with an extension key and print how to send telemetry.
    #[arg(long)]
    seed_demo: bool,
    /// Seconds a failed SQS message waits before it is retried.
    #[arg(long, default_value_t = 1)]
    retry_delay_seconds: u64,
    /// Address of the mock identity providers (Microsoft, Google, Okta) the runner starts.
    #[arg(long, default_value = "127.0.0.1:3100")]
    mock_providers: SocketAddr,
    /// Users generated in each mock provider's directory (without --scenario).
    #[arg(long, default_value_t = 200)]
    mock_users: usize,
    /// Play the whole job on an organisation of a few thousand people: connect the three
    /// mock providers, sync, run an extension fleet, move the clock on and sweep, then print a
    /// summary and keep serving.
    #[arg(long)]
    scenario: bool,
    /// With --scenario: browser profiles the extension fleet plays.
    #[arg(long, default_value_t = 2_000)]
    profiles: usize,
    /// With --scenario: telemetry requests per second the fleet sends at most.
    #[arg(long)]
    fleet_rate: Option<u32>,
    /// Write log lines to this file instead of standard output.
    #[arg(long)]
    log_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::parse();
    match &options.log_file {
        Some(path) => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            rollcall::logging::init_tracing_to_file(path)?;
            println!("Log lines go to {}", path.display());
        }
        None => rollcall::logging::init_tracing(),
    }

    let sdk = rollcall::aws::local_sdk_config(&options.aws_endpoint).await;
    let template = Template::load(&options.template)?;
    let mut stack = Stack::create(&sdk, &template, &options.prefix).await?;
    // The mock registers the runner's own callbacks, so consent flows finish on this machine.
    let credentials = mock_idp::Credentials {
        redirect_uris: ["microsoft", "google"]
            .iter()
            .map(|p| format!("http://{}/v1/oauth/callback/{p}", options.listen))
            .collect(),
        ..Default::default()
    };
    let organisation = options.scenario.then(|| Organisation {
        profiles: options.profiles,
        rate: options.fleet_rate,
        ..Default::default()
    });
    let directories = match &organisation {
        Some(organisation) => organisation.directories(credentials.clone()),
        None => mock_idp::MockConfig {
            microsoft: mock_idp::Directory::generate("contoso.example", options.mock_users, 1),
            google: mock_idp::Directory::generate("fabrikam.example", options.mock_users, 2),
            okta: mock_idp::Directory::generate("initech.example", options.mock_users, 3),
            credentials: credentials.clone(),
        },
    };
    let mock = mock_idp::MockIdp::start(options.mock_providers, directories).await?;
    local_runner::providers::configure(&sdk, &mut stack, Some(&mock.url()), &credentials).await?;
    let config = RunnerConfig {
        http_addr: options.listen,
        retry_delay: Duration::from_secs(options.retry_delay_seconds),
        run_schedules: true,
    };
    let runner = Runner::start(
        &rollcall::aws::Clients::new(&sdk),
        &template,
        stack,
        &RollcallFunctions,
        config,
    )
    .await?;

    println!("Rollcall is running: HTTP API at {}", runner.url());
    println!(
        "Mock identity providers at {}; request counts at {}/_mock/requests",
        mock.url(),
        mock.url()
    );
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        runner.stack().table_name("Table")?,
    );
    if let Some(organisation) = &organisation {
        let played = scenario::play(&runner, &store, &mock, &credentials, organisation).await?;
        println!("{}", played.summary);
        let token = runner.admin_token(played.tenant_id.as_str(), &played.owner_email, 12 * 3_600);
        println!(
            "Admin API token for {} of tenant {} (valid 12 hours):",
            played.owner_email, played.tenant_id
        );
        println!("  export TOKEN='{token}'");
        for path in [
            "/v1/admin/employees?licence=licensed&limit=5",
            "/v1/admin/integrations",
            "/v1/admin/settings",
            "/v1/admin/retention/sweeps",
        ] {
            println!(
                "  curl -s '{}{path}' -H \"Authorization: Bearer $TOKEN\"",
                runner.url()
            );
        }
        println!(
            "Extension key of tenant {} (shown once): {}",
            played.tenant_id, played.extension_key
        );
    }
    if options.seed_demo {
        let tenant = demo::seed_tenant(
            &store,
            &TenantId::parse("demo")?,
            "Demo Organisation",
            &demo::TenantSettings::default(),
        )
        .await?;
        println!("Demo tenant: {}", tenant.tenant_id);
        println!("Extension key (shown once): {}", tenant.extension_key);
        std::fs::create_dir_all(".local")?;
        let body_path = std::fs::canonicalize(".local")?.join("demo-telemetry.json");
        let body = demo::example_body(chrono::Utc::now());
        std::fs::write(&body_path, serde_json::to_string_pretty(&body)?)?;
        println!("Send telemetry (a body with fresh event times; rerun scripts/run for new ids):");
        println!(
            "  curl -i {}/v1/telemetry -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' --data-binary @{}",
            runner.url(),
            tenant.extension_key,
            body_path.display()
        );
        let token = runner.admin_token("demo", "owner@example.com", 12 * 3_600);
        println!("Admin API token for owner@example.com (valid 12 hours):");
        println!(
            "  curl -s {}/v1/admin/employees -H 'Authorization: Bearer {token}'",
            runner.url()
        );
        println!(
            "Connect Microsoft 365 (mock): ask for a connect URL, open it (the mock consents at once and redirects to the callback), then follow that redirect:"
        );
        println!(
            "  url=$(curl -s -X POST {}/v1/admin/integrations/microsoft/connect -H 'Authorization: Bearer {token}' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"authorize_url\"])')",
            runner.url()
        );
        println!("  curl -si \"$(curl -s -o /dev/null -w '%{{redirect_url}}' \"$url\")\"");
        println!(
            "Connect Okta (mock): curl -s -X PUT {}/v1/admin/integrations/okta -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{{\"domain\":\"initech.okta.com\",\"client_id\":\"{}\",\"client_secret\":\"{}\"}}'",
            runner.url(),
            credentials.okta_client_id,
            credentials.okta_client_secret
        );
    }
    println!(
        "Fire a schedule now: curl -X POST {}/_local/schedules/<FunctionLogicalId>",
        runner.url()
    );
    println!("Press Ctrl-C to stop.");

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    runner.stop().await;
    tracing::info!("local runner stopped");
    Ok(())
}
