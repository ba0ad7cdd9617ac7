use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollcall::config::ProcessEnv;
use sync_worker::{Config, SyncWorker};

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollcall::logging::init_tracing();
    let config = Config::from_lookup(&ProcessEnv)?;
    let sdk = rollcall::aws::load_sdk_config().await;
    let worker = SyncWorker::new(&rollcall::aws::Clients::new(&sdk), config);

    let worker = &worker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        worker.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
