use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use local_runner::functions::RollcallFunctions;
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
    /// Users generated in each mock provider's directory.
    #[arg(long, default_value_t = 200)]
    mock_users: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    rollcall::logging::init_tracing();
    let options = Options::parse();

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
    let mock = mock_idp::MockIdp::start(
        options.mock_providers,
        mock_idp::MockConfig {
            microsoft: mock_idp::Directory::generate("contoso.example", options.mock_users, 1),
            google: mock_idp::Directory::generate("fabrikam.example", options.mock_users, 2),
            okta: mock_idp::Directory::generate("initech.example", options.mock_users, 3),
            credentials: credentials.clone(),
        },
    )
    .await?;
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
    if options.seed_demo {
        let store = Store::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            runner.stack().table_name("Table")?,
        );
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
