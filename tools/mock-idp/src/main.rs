use std::net::SocketAddr;

use clap::Parser;
use mock_idp::{Credentials, Directory, MockConfig, MockIdp};

/// Serves the mock identity providers on 127.0.0.1 until Ctrl-C.
#[derive(Parser)]
struct Options {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3100")]
    listen: SocketAddr,
    /// Users generated in each provider's directory.
    #[arg(long, default_value_t = 1_000)]
    users: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    rollcall::logging::init_tracing();
    let options = Options::parse();
    let config = MockConfig {
        microsoft: Directory::generate("contoso.example", options.users, 1),
        google: Directory::generate("fabrikam.example", options.users, 2),
        okta: Directory::generate("initech.example", options.users, 3),
        credentials: Credentials::default(),
    };
    let mock = MockIdp::start(options.listen, config).await?;
    println!(
        "Mock identity providers at {}; request counts at {}/_mock/requests",
        mock.url(),
        mock.url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
