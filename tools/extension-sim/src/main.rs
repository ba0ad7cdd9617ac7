use std::path::PathBuf;

use clap::Parser;
use extension_sim::{FleetOptions, Person};

/// Plays a fleet of browser profiles running the Rollcall extension against the HTTP API.
#[derive(Parser)]
struct Options {
    /// Base URL of the HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    api_url: String,
    /// The tenant's extension key.
    #[arg(long, env = "ROLLCALL_EXTENSION_KEY", hide_env_values = true)]
    extension_key: String,
    /// A file with one work email per line, the people whose browsers the fleet plays.
    #[arg(long, conflicts_with = "domain")]
    emails: Option<PathBuf>,
    /// Without --emails: the company domain of generated people (person0@DOMAIN, ...).
    #[arg(long, default_value = "northwind.example")]
    domain: String,
    /// Without --emails: how many people to generate.
    #[arg(long, default_value_t = 500)]
    people: usize,
    /// Browser profiles to play.
    #[arg(long, default_value_t = 600)]
    profiles: usize,
    /// Share of profiles installed by managed policy, from 0 to 1.
    #[arg(long, default_value_t = 0.8)]
    managed_share: f64,
    /// Share of profiles that go silent, from 0 to 1.
    #[arg(long, default_value_t = 0.1)]
    silent_share: f64,
    /// Share of requests sent twice, from 0 to 1.
    #[arg(long, default_value_t = 0.05)]
    duplicate_share: f64,
    /// Requests per second at most (default: no limit, eight requests in flight).
    #[arg(long)]
    rate: Option<u32>,
    /// Seed of the fleet; the same seed plays the same fleet.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::parse();
    let people: Vec<Person> = match &options.emails {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|email| Person {
                email: email.to_owned(),
            })
            .collect(),
        None => (0..options.people)
            .map(|n| Person {
                email: format!("person{n}@{}", options.domain),
            })
            .collect(),
    };

    let report = extension_sim::run(&FleetOptions {
        api_url: options.api_url,
        extension_key: options.extension_key,
        people,
        profiles: options.profiles,
        managed_share: options.managed_share,
        silent_share: options.silent_share,
        duplicate_share: options.duplicate_share,
        rate: options.rate,
        seed: options.seed,
        progress: true,
    })
    .await?;

    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.failed_requests.is_empty() {
        return Err(format!("some requests failed: {:?}", report.failed_requests).into());
    }
    Ok(())
}
