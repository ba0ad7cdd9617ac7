use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollcall::config::ProcessEnv;
use sync_scheduler::{Config, SyncScheduler};

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollcall::logging::init_tracing();
    let config = Config::from_lookup(&ProcessEnv)?;
    let sdk = rollcall::aws::load_sdk_config().await;
    let scheduler = SyncScheduler::new(&rollcall::aws::Clients::new(&sdk), config);

    let scheduler = &scheduler;
    lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            scheduler.handle().await.map(|_| ()).map_err(Error::from)
        },
    ))
    .await
}
