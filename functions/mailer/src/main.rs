use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use mailer::{Config, Mailer};
use rollcall::config::ProcessEnv;

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollcall::logging::init_tracing();
    let config = Config::from_lookup(&ProcessEnv)?;
    let sdk = rollcall::aws::load_sdk_config().await;
    let mailer = Mailer::new(&rollcall::aws::Clients::new(&sdk), config);

    let mailer = &mailer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        mailer.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
