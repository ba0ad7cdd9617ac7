//! Benchmark: a 10,000-user directory per provider through the whole sync pipeline on the local
//! stack (mock providers, sync worker, directory queue, directory writer, moto).
//!
//! Each provider gets three runs: the first sync, a resync of the unchanged directory, and a
//! resync after 1% of the users changed their name. For each run it prints the provider
//! requests by endpoint, the DynamoDB write requests and the wall time. Run it with
//! `scripts/bench sync`.
//!
//! Microsoft and Google run with only their directory scopes, so the figures are the cost of
//! reading users; Okta's scopes are granted in Okta and cannot be switched off, so its groups
//! and apps are read too, and listed apart.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mock_idp::{Credentials, Directory, MockConfig};
use rollcall::integration::{self, Provider};
use rollcall_tests::counting::RequestCounter;
use rollcall_tests::providers::ProviderStack;

const USERS: usize = 10_000;
const CHANGED: usize = USERS / 100;
const DYNAMODB_WRITES: [&str; 5] = [
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];

struct Figures {
    provider_requests: BTreeMap<String, u64>,
    writes: u64,
    wall: Duration,
    added: u64,
    updated: u64,
    complete: bool,
}

fn print(provider: Provider, run: &str, figures: &Figures) {
    let total: u64 = figures.provider_requests.values().sum();
    let by_endpoint: Vec<String> = figures
        .provider_requests
        .iter()
        .map(|(endpoint, count)| format!("{endpoint} {count}"))
        .collect();
    println!(
        "{provider:<9} {run:<18} {:>7} provider requests ({}), {:>6} DynamoDB write requests, {:>7.1} s, added {}, updated {}{}",
        total,
        by_endpoint.join(", "),
        figures.writes,
        figures.wall.as_secs_f64(),
        figures.added,
        figures.updated,
        if figures.complete { "" } else { ", INCOMPLETE" },
    );
}

async fn measure(
    stack: &ProviderStack,
    counter: &RequestCounter,
    provider: Provider,
    run: impl std::future::Future<Output = ()>,
) -> Figures {
    let before = stack.mock.request_counts();
    counter.reset();
    let started = Instant::now();
    run.await;
    let wall = started.elapsed();
    let after = stack.mock.request_counts();
    let prefix = format!("{provider}.");
    let provider_requests = after
        .into_iter()
        .filter(|(endpoint, _)| endpoint.starts_with(&prefix))
        .map(|(endpoint, count)| {
            let earlier = before.get(&endpoint).copied().unwrap_or(0);
            (endpoint, count - earlier)
        })
        .filter(|(_, count)| *count > 0)
        .collect();
    let summary = stack
        .integration(provider)
        .await
        .and_then(|i| i.last_sync)
        .expect("a run finished");
    Figures {
        provider_requests,
        writes: counter.total("DynamoDB", &DYNAMODB_WRITES),
        wall,
        added: summary.added,
        updated: summary.updated,
        complete: summary.complete,
    }
}

/// Returns the scopes to switch off so that only the directory is read.
fn optional_scopes(provider: Provider) -> Vec<&'static str> {
    integration::catalogue(provider)
        .iter()
        .filter(|s| !s.required)
        .map(|s| s.scope)
        .collect()
}

#[tokio::main]
async fn main() {
    println!(
        "{USERS} users per provider; the unchanged resync changes nothing, the last resync renames {CHANGED} users."
    );
    for (provider, domain) in [
        (Provider::Microsoft, "contoso.example"),
        (Provider::Google, "fabrikam.example"),
        (Provider::Okta, "initech.example"),
    ] {
        let directory = Directory::generate(domain, USERS, 11);
        let mut config = MockConfig {
            microsoft: Directory::default(),
            google: Directory::default(),
            okta: Directory::default(),
            credentials: Credentials::default(),
        };
        match provider {
            Provider::Microsoft => config.microsoft = directory.clone(),
            Provider::Google => config.google = directory.clone(),
            Provider::Okta => config.okta = directory.clone(),
        }
        let counter = RequestCounter::default();
        let stack = ProviderStack::start_counted(config, &[], true, Some(&counter)).await;

        let disabled = optional_scopes(provider);
        let first = measure(
            &stack,
            &counter,
            provider,
            stack.connect_and_sync(provider, &disabled),
        )
        .await;
        print(provider, "first sync", &first);

        let unchanged = measure(&stack, &counter, provider, stack.resync()).await;
        print(provider, "unchanged resync", &unchanged);

        stack.mock.with_state(|state| {
            for user in directory.users.iter().step_by(USERS / CHANGED) {
                let mut renamed = user.clone();
                renamed.family_name = format!("{}-Renamed", user.family_name);
                state
                    .upsert_user(provider.as_str(), renamed)
                    .expect("provider is known");
            }
        });
        let changed = measure(&stack, &counter, provider, stack.resync()).await;
        print(provider, "1% changed resync", &changed);
    }
    println!(
        "DynamoDB writes include three per run that are the run's own bookkeeping: its lease, its outcome on the integration, and the lease's removal."
    );
}
