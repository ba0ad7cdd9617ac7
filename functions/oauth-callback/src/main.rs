use lambda_http::{Error, Request, service_fn};
use oauth_callback::{Config, OAuthCallback};
use rollcall::config::ProcessEnv;

#[tokio::main]
async fn main() -> Result<(), Error> {
    rollcall::logging::init_tracing();
    let config = Config::from_lookup(&ProcessEnv)?;
    let sdk = rollcall::aws::load_sdk_config().await;
    let function = OAuthCallback::new(&rollcall::aws::Clients::new(&sdk), config);

    let function = &function;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Error>(function.handle(request).await)
    }))
    .await
}
