use aws_lambda_events::event::sqs::SqsEvent;
use directory_writer::{Config, DirectoryWriter};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use rollcall::config::ProcessEnv;

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollcall::logging::init_tracing();
    let config = Config::from_lookup(&ProcessEnv)?;
    let sdk = rollcall::aws::load_sdk_config().await;
    let writer = DirectoryWriter::new(&rollcall::aws::Clients::new(&sdk), config);

    let writer = &writer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        writer.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
