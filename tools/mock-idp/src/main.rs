use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use mock_idp::{Credentials, Directory, MockConfig, MockIdp};

/// Serves the mock identity providers on 127.0.0.1 until Ctrl-C.
#[derive(Parser)]
struct Options {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3100")]
    listen: SocketAddr,
    /// Users generated in each provider's directory. Ignored with --seed.
    #[arg(long, default_value_t = 1_000)]
    users: usize,
    /// Directory holding microsoft.json, google.json and okta.json, each a serialized
    /// `Directory`, to serve instead of generated ones.
    #[arg(long, value_name = "DIR")]
    seed: Option<PathBuf>,
}

fn read_directory(folder: &Path, name: &str) -> Result<Directory, String> {
    let path = folder.join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a valid directory: {e}; expected {{\"domain\": …, \"users\": [...]}}",
            path.display()
        )
    })
}

fn load_config(options: &Options) -> Result<MockConfig, String> {
    let config = match &options.seed {
        Some(folder) => MockConfig {
            microsoft: read_directory(folder, "microsoft.json")?,
            google: read_directory(folder, "google.json")?,
            okta: read_directory(folder, "okta.json")?,
            credentials: Credentials::default(),
        },
        None => MockConfig {
            microsoft: Directory::generate("contoso.example", options.users, 1),
            google: Directory::generate("fabrikam.example", options.users, 2),
            okta: Directory::generate("initech.example", options.users, 3),
            credentials: Credentials::default(),
        },
    };
    Ok(config)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    rollcall::logging::init_tracing();
    let options = Options::parse();
    let config = match load_config(&options) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("mock-idp: {message}");
            std::process::exit(2);
        }
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
