use inactivity_sweep::{Config, InactivitySweep};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollcall::config::ProcessEnv;

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollcall::logging::init_tracing();
    let config = Config::from_lookup(&ProcessEnv)?;
    let sdk = rollcall::aws::load_sdk_config().await;
    let sweep = InactivitySweep::new(&rollcall::aws::Clients::new(&sdk), config);

    let sweep = &sweep;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            sweep
                .handle(&event.payload)
                .await
                .map(|_| ())
                .map_err(Error::from)
        },
    ))
    .await
}
