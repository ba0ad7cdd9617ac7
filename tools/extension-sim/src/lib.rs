//! A fleet of browser profiles running the Rollcall extension, played against the HTTP API's
//! `POST /v1/telemetry`.
//!
//! Each profile belongs to a person. It is installed by managed policy or by hand, finds its
//! work identity in a Gmail or Outlook tab, logs in and signs up to SaaS apps with the login
//! methods those apps offer, and sends heartbeats. Some requests are sent twice, as an
//! extension that retries after a lost response does. Silent profiles report once, 29 days in
//! the past, and never again, because the API accepts events up to 30 days old. The others
//! report within the last hour. The fleet is the same for the same seed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::{StreamExt, stream};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::{Value, json};

/// Events in one request at most; the API accepts up to 100.
const EVENTS_PER_REQUEST: usize = 20;
/// Requests in flight at once.
const CONCURRENCY: usize = 8;
/// How long ago silent profiles last reported.
pub const SILENT_DAYS_AGO: i64 = 29;

/// A SaaS app: its login domain, name, and the login methods it offers with the identity
/// provider each one uses.
struct App {
    domain: &'static str,
    name: &'static str,
    methods: &'static [(&'static str, Option<&'static str>)],
}

const PASSWORD: (&str, Option<&str>) = ("password", None);
const PASSKEY: (&str, Option<&str>) = ("passkey", None);
const GOOGLE: (&str, Option<&str>) = ("oidc_google", Some("google"));
const MICROSOFT: (&str, Option<&str>) = ("oidc_microsoft", Some("microsoft"));
const SAML: (&str, Option<&str>) = ("sso_saml", Some("okta"));

const APPS: [App; 20] = [
    App {
        domain: "app.slack.com",
        name: "Slack",
        methods: &[SAML, GOOGLE, PASSWORD],
    },
    App {
        domain: "github.com",
        name: "GitHub",
        methods: &[PASSWORD, PASSKEY, SAML],
    },
    App {
        domain: "www.notion.so",
        name: "Notion",
        methods: &[GOOGLE, PASSWORD],
    },
    App {
        domain: "www.figma.com",
        name: "Figma",
        methods: &[GOOGLE, SAML, PASSWORD],
    },
    App {
        domain: "app.asana.com",
        name: "Asana",
        methods: &[GOOGLE, MICROSOFT, PASSWORD],
    },
    App {
        domain: "trello.com",
        name: "Trello",
        methods: &[GOOGLE, MICROSOFT, PASSWORD],
    },
    App {
        domain: "zoom.us",
        name: "Zoom",
        methods: &[SAML, GOOGLE, PASSWORD],
    },
    App {
        domain: "app.hubspot.com",
        name: "HubSpot",
        methods: &[GOOGLE, PASSWORD],
    },
    App {
        domain: "login.salesforce.com",
        name: "Salesforce",
        methods: &[SAML, PASSWORD],
    },
    App {
        domain: "www.dropbox.com",
        name: "Dropbox",
        methods: &[GOOGLE, PASSWORD, PASSKEY],
    },
    App {
        domain: "www.canva.com",
        name: "Canva",
        methods: &[GOOGLE, MICROSOFT, PASSWORD],
    },
    App {
        domain: "chatgpt.com",
        name: "ChatGPT",
        methods: &[GOOGLE, MICROSOFT, PASSWORD],
    },
    App {
        domain: "miro.com",
        name: "Miro",
        methods: &[GOOGLE, MICROSOFT, SAML],
    },
    App {
        domain: "app.datadoghq.com",
        name: "Datadog",
        methods: &[SAML, GOOGLE, PASSWORD],
    },
    App {
        domain: "linear.app",
        name: "Linear",
        methods: &[GOOGLE, PASSWORD],
    },
    App {
        domain: "id.atlassian.com",
        name: "Atlassian",
        methods: &[GOOGLE, MICROSOFT, SAML],
    },
    App {
        domain: "app.box.com",
        name: "Box",
        methods: &[SAML, PASSWORD],
    },
    App {
        domain: "airtable.com",
        name: "Airtable",
        methods: &[GOOGLE, PASSWORD],
    },
    App {
        domain: "calendly.com",
        name: "Calendly",
        methods: &[GOOGLE, MICROSOFT],
    },
    App {
        domain: "account.docusign.com",
        name: "DocuSign",
        methods: &[PASSWORD, SAML],
    },
];

/// A person whose browser profiles the fleet plays.
#[derive(Debug, Clone)]
pub struct Person {
    pub email: String,
}

#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Base URL of the HTTP API, such as `http://127.0.0.1:3000`.
    pub api_url: String,
    /// The tenant's extension key, sent as a bearer token.
    pub extension_key: String,
    pub people: Vec<Person>,
    /// Browser profiles to play; people are taken in turn, so some have two.
    pub profiles: usize,
    /// Share of profiles installed by managed policy, from 0 to 1.
    pub managed_share: f64,
    /// Share of profiles that go silent, from 0 to 1.
    pub silent_share: f64,
    /// Share of requests sent twice, from 0 to 1.
    pub duplicate_share: f64,
    /// Requests per second at most; `None` sends each request when a previous one returns.
    pub rate: Option<u32>,
    pub seed: u64,
    /// Draws a progress bar on standard error.
    pub progress: bool,
}

/// Counts of what the fleet sent and of the API's responses.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FleetReport {
    pub profiles: usize,
    pub managed: usize,
    pub silent: usize,
    pub requests: u64,
    pub duplicate_requests: u64,
    pub events: u64,
    pub accepted_events: u64,
    /// Requests that got another status than 202, by status (0 when no response came).
    pub failed_requests: Vec<(u16, u64)>,
    pub elapsed_seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid option {0}: {1}")]
    InvalidOption(&'static str, String),
    #[error("the HTTP client could not be built: {0}")]
    Client(#[from] reqwest::Error),
}

/// A deterministic generator (SplitMix64), so the same seed plays the same fleet.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }

    fn chance(&mut self, share: f64) -> bool {
        (self.next() as f64 / u64::MAX as f64) < share
    }
}

/// One request of the plan: its body, and whether it is sent twice.
struct PlannedRequest {
    body: Value,
    events: u64,
    twice: bool,
}

/// Plays the fleet and returns what it sent.
pub async fn run(options: &FleetOptions) -> Result<FleetReport, SimError> {
    validate(options)?;

    let now = Utc::now();
    let mut random = Random(options.seed);
    let mut report = FleetReport {
        profiles: options.profiles,
        ..Default::default()
    };
    let mut plan = Vec::new();
    for n in 0..options.profiles {
        let person = &options.people[n % options.people.len()];
        let managed = random.chance(options.managed_share);
        let silent = random.chance(options.silent_share);
        report.managed += usize::from(managed);
        report.silent += usize::from(silent);
        plan.extend(profile_requests(
            n,
            person,
            managed,
            silent,
            now,
            options,
            &mut random,
        ));
    }
    report.requests = plan.iter().map(|r| 1 + u64::from(r.twice)).sum();
    report.duplicate_requests = plan.iter().filter(|r| r.twice).count() as u64;
    report.events = plan
        .iter()
        .map(|r| r.events * (1 + u64::from(r.twice)))
        .sum();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let progress = progress_bar(report.requests, options.progress);
    let accepted = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let url = format!("{}/v1/telemetry", options.api_url.trim_end_matches('/'));
    let throttle = options.rate.map(|rate| {
        let period = Duration::from_secs_f64(1.0 / f64::from(rate));
        Arc::new(tokio::sync::Mutex::new(tokio::time::interval(period)))
    });
    let started = Instant::now();

    let sends: Vec<Value> = plan
        .into_iter()
        .flat_map(|request| {
            let copies = 1 + usize::from(request.twice);
            std::iter::repeat_n(request.body, copies)
        })
        .collect();
    stream::iter(sends)
        .map(|body| {
            let client = client.clone();
            let url = url.clone();
            let key = options.extension_key.clone();
            let throttle = throttle.clone();
            async move {
                if let Some(throttle) = throttle {
                    throttle.lock().await.tick().await;
                }
                send(&client, &url, &key, &body).await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .for_each(|outcome| {
            progress.inc(1);
            match outcome {
                Ok(count) => {
                    accepted.fetch_add(count, Ordering::Relaxed);
                }
                Err(status) => {
                    if let Ok(mut failures) = failures.lock() {
                        *failures.entry(status).or_insert(0u64) += 1;
                    }
                }
            }
            async {}
        })
        .await;
    progress.finish_and_clear();

    report.accepted_events = accepted.load(Ordering::Relaxed);
    report.failed_requests = failures
        .lock()
        .map(|f| f.iter().map(|(s, n)| (*s, *n)).collect())
        .unwrap_or_default();
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn validate(options: &FleetOptions) -> Result<(), SimError> {
    if options.people.is_empty() {
        return Err(SimError::InvalidOption(
            "people",
            "the list is empty".into(),
        ));
    }
    for (name, share) in [
        ("managed_share", options.managed_share),
        ("silent_share", options.silent_share),
        ("duplicate_share", options.duplicate_share),
    ] {
        if !(0.0..=1.0).contains(&share) {
            return Err(SimError::InvalidOption(
                name,
                format!("{share} is not between 0 and 1"),
            ));
        }
    }
    if options.rate == Some(0) {
        return Err(SimError::InvalidOption("rate", "must be at least 1".into()));
    }
    Ok(())
}

/// Sends one request. Returns the events the API accepted, or the status it returned (0 when
/// no response came).
async fn send(client: &reqwest::Client, url: &str, key: &str, body: &Value) -> Result<u64, u16> {
    let response = client
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .map_err(|_| 0u16)?;
    let status = response.status().as_u16();
    if status != 202 {
        return Err(status);
    }
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    Ok(answer["accepted"].as_u64().unwrap_or(0))
}

fn progress_bar(total: u64, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "extension fleet {bar:40} {pos}/{len} requests, {per_sec}, {eta} left",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Plans one browser profile's requests.
fn profile_requests(
    n: usize,
    person: &Person,
    managed: bool,
    silent: bool,
    now: DateTime<Utc>,
    options: &FleetOptions,
    random: &mut Random,
) -> Vec<PlannedRequest> {
    let install_id = format!("sim-{:x}-{n:06}", options.seed);
    let source = if random.chance(0.5) {
        "gmail"
    } else {
        "outlook"
    };
    // A third of the installs made by hand are on personal browsers, signed in to Gmail.
    let email = match person.email.split_once('@') {
        Some((local, _)) if !managed && random.chance(0.3) => format!("{local}@gmail.com"),
        _ => person.email.clone(),
    };
    let (browser, version) = [
        ("chrome", "131.0.6778.86"),
        ("edge", "131.0.2903.70"),
        ("chrome", "130.0.6723.117"),
    ][random.below(3)];
    // Events run from `start` on, a few minutes apart.
    let start = if silent {
        now - chrono::Duration::days(SILENT_DAYS_AGO)
    } else {
        now - chrono::Duration::minutes(55)
    };

    let mut events = Vec::new();
    let mut time = start;
    let mut next_time = |random: &mut Random| {
        time += chrono::Duration::seconds(30 + random.below(150) as i64);
        time.to_rfc3339_opts(SecondsFormat::Millis, true)
    };
    events.push(json!({"id": "e0", "time": next_time(random), "type": "heartbeat"}));
    // Silent profiles mostly never used a SaaS app with their work email.
    let logins = if silent {
        random.below(2)
    } else {
        2 + random.below(6)
    };
    for k in 0..logins {
        let app = &APPS[random.below(APPS.len())];
        let (method, identity_provider) = app.methods[random.below(app.methods.len())];
        let event_type = if random.chance(0.15) {
            "signup"
        } else {
            "login"
        };
        events.push(json!({
            "id": format!("e{}", k + 1),
            "time": next_time(random),
            "type": event_type,
            "app": {"domain": app.domain, "name": app.name},
            "account_email": email,
            "login_method": method,
            "identity_provider": identity_provider,
        }));
    }
    if !silent {
        events.push(json!({"id": "e99", "time": next_time(random), "type": "heartbeat"}));
    }

    events
        .chunks(EVENTS_PER_REQUEST.min(2 + random.below(5)))
        .map(|chunk| PlannedRequest {
            body: json!({
                "schema_version": 1,
                "install_id": install_id,
                "browser": {"name": browser, "version": version},
                "extension_version": "1.4.2",
                "managed": managed,
                "identity": {"email": email, "source": source},
                "events": chunk,
            }),
            events: chunk.len() as u64,
            twice: random.chance(options.duplicate_share),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(profiles: usize) -> FleetOptions {
        FleetOptions {
            api_url: "http://127.0.0.1:9".into(),
            extension_key: "unused".into(),
            people: vec![
                Person {
                    email: "ada@northwind.example".into(),
                },
                Person {
                    email: "alan@northwind.example".into(),
                },
            ],
            profiles,
            managed_share: 0.8,
            silent_share: 0.1,
            duplicate_share: 0.05,
            rate: None,
            seed: 3,
            progress: false,
        }
    }

    #[test]
    fn silent_profiles_report_within_the_accepted_age() {
        let now = Utc::now();
        let options = options(1);
        let requests = profile_requests(
            0,
            &options.people[0],
            true,
            true,
            now,
            &options,
            &mut Random(1),
        );
        for request in &requests {
            for event in request.body["events"].as_array().unwrap() {
                let time = DateTime::parse_from_rfc3339(event["time"].as_str().unwrap()).unwrap();
                assert!(time < now - chrono::Duration::days(28));
                assert!(time > now - chrono::Duration::days(30));
            }
        }
    }

    #[test]
    fn active_profiles_end_with_a_recent_heartbeat() {
        let now = Utc::now();
        let options = options(1);
        let requests = profile_requests(
            0,
            &options.people[0],
            false,
            false,
            now,
            &options,
            &mut Random(1),
        );
        let last = requests.last().unwrap().body["events"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["type"], "heartbeat");
        let time = DateTime::parse_from_rfc3339(last["time"].as_str().unwrap()).unwrap();
        assert!(time <= now + chrono::Duration::minutes(5));
        assert!(time > now - chrono::Duration::hours(1));
    }

    #[test]
    fn invalid_options_are_rejected() {
        let mut bad = options(1);
        bad.silent_share = 1.5;
        assert!(matches!(
            validate(&bad),
            Err(SimError::InvalidOption("silent_share", _))
        ));
        let mut bad = options(1);
        bad.people.clear();
        assert!(matches!(
            validate(&bad),
            Err(SimError::InvalidOption("people", _))
        ));
        let mut bad = options(1);
        bad.rate = Some(0);
        assert!(matches!(
            validate(&bad),
            Err(SimError::InvalidOption("rate", _))
        ));
    }
}
