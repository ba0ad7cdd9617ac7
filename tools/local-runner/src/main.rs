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
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    rollcall::logging::init_tracing();
    let options = Options::parse();

    let sdk = rollcall::aws::local_sdk_config(&options.aws_endpoint).await;
    let template = Template::load(&options.template)?;
    let stack = Stack::create(&sdk, &template, &options.prefix).await?;
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
