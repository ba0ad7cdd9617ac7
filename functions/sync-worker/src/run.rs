//! One sync run of one integration: its phases, the lease that keeps a second run from
//! starting beside it, checkpoints and continuations, and the outcome it records.
//!
//! Phases run in order: users (for Okta, then its deprovisioned users), groups, the removal of
//! users a full run did not see, and activity data (grants, mailbox rules, apps).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use rollcall::directory::{
    self, AccountStatus, DIRECTORY_MESSAGE_VERSION, DirectoryChange, DirectoryGroup,
    DirectoryGroupItem, DirectoryMessage, DirectoryUser, DirectoryUserItem,
};
use rollcall::envelope::{SYNC_JOB_VERSION, SyncJob, SyncReason};
use rollcall::error::AwsError;
use rollcall::integration::{
    self, Feature, IntegrationItem, IntegrationStatus, Provider, SyncSummary,
};
use rollcall::queue::{self, SendError};
use rollcall::store::{Key, StoreError, decode};
use rollcall::table;
use rollcall::telemetry::storage_time;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::SyncWorker;
use crate::fetch::{FetchError, Fetcher};
use crate::providers::{self, Listed, Urls};

/// Time after the budget before another job may take over a run whose worker stopped.
const LEASE_MARGIN_SECONDS: i64 = 120;
const RUN_ITEM_TTL_DAYS: i64 = 7;
/// Restarts of a listing whose page token expired before the run gives up.
const MAX_RESTARTS: u32 = 3;
/// Changes per directory message. The writer takes batches of 10 messages and writes each new
/// employee in its own transaction, so 200 per batch leaves room within its 60-second timeout.
const CHANGES_PER_MESSAGE: usize = 20;
/// Ids per checkpointed item of seen ids, well inside DynamoDB's 400 KB item limit.
const SEEN_IDS_PER_ITEM: usize = 5_000;
/// A full run happens at least this often, since deltas can miss deletions.
const FULL_SYNC_INTERVAL: chrono::Duration = chrono::Duration::hours(24);
/// SQS delays a message by at most 15 minutes.
const MAX_DELAY_SECONDS: u64 = 900;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A provider request failed; the step ends the invocation as the error requires.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("a record could not be encoded: {0}")]
    Encode(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    Full,
    Incremental,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Incremental => "incremental",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Phase {
    Users,
    /// Okta's deprovisioned users, which its default listing leaves out.
    Deprovisioned,
    Groups,
    /// Removes the users a complete full run did not see.
    Finalize,
    Activity,
}

/// The checkpoint of a run in progress (`SYNCRUN#<provider>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunItem {
    pub(crate) pk: String,
    sk: String,
    run_id: String,
    mode: Mode,
    pub(crate) phase: Phase,
    /// The next page to read in the current phase, or in the activity phase the last user
    /// read; `None` at the start of a phase.
    #[serde(default)]
    pub(crate) cursor: Option<String>,
    /// Index of the current step of the activity phase.
    #[serde(default)]
    pub(crate) activity_step: u32,
    started_at: String,
    /// Epoch seconds until which this run owns the integration's sync.
    lease_until: i64,
    #[serde(default)]
    restarts: u32,
    #[serde(default)]
    backoff_millis: u64,
    #[serde(default)]
    added: u64,
    #[serde(default)]
    updated: u64,
    #[serde(default)]
    removed: u64,
    #[serde(default)]
    seen_chunks: u32,
    /// Graph: the deltaLink this run will store if it completes.
    #[serde(default)]
    delta_link: Option<String>,
    #[serde(default)]
    requests: u64,
    expires_at: i64,
}

/// Users a run has seen, checkpointed when it continues in another invocation.
#[derive(Debug, Serialize, Deserialize)]
struct SeenItem {
    pk: String,
    sk: String,
    users: Vec<SeenUser>,
    expires_at: i64,
}

/// A user a run listed, with the email its activity is read under when it has a mailbox that
/// can have any: a member, active, with an email.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct SeenUser {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) email: Option<String>,
}

fn run_sk(provider: Provider) -> String {
    format!("SYNCRUN#{provider}")
}

fn seen_prefix(provider: Provider, run_id: &str) -> String {
    format!("SYNCSEEN#{provider}#{run_id}#")
}

/// The end of one invocation of a run.
pub(crate) enum Stop {
    Done,
    Continue(Option<Duration>),
    Failed {
        message: String,
        status: Option<IntegrationStatus>,
    },
}

pub(crate) fn fetch_stop(provider: Provider, error: FetchError) -> Stop {
    let (message, status) = match error {
        FetchError::OutOfTime(wait) => return Stop::Continue(Some(wait)),
        FetchError::Throttled => (
            format!("{provider} throttled the sync beyond its backoff limit; the next run retries"),
            None,
        ),
        FetchError::Denied { status, reason } => (
            format!(
                "{provider} denied access (HTTP {status}, {reason}); check the permissions granted to Rollcall"
            ),
            Some(IntegrationStatus::NeedsAttention),
        ),
        FetchError::Unauthorized => (format!("{provider} rejected the access token"), None),
        FetchError::ExpiredPageToken => (format!("{provider}'s page token kept expiring"), None),
        FetchError::DeltaExpired => (format!("{provider}'s delta token expired"), None),
        FetchError::Failed(detail) | FetchError::Unavailable(detail) => {
            (format!("reading {provider} failed: {detail}"), None)
        }
    };
    Stop::Failed { message, status }
}

/// One user's entry in Graph's registration details.
struct Registration {
    mfa: Option<bool>,
    is_admin: Option<bool>,
}

/// The state of one invocation of a run.
pub(crate) struct Run<'a> {
    pub(crate) worker: &'a SyncWorker,
    pub(crate) integration: IntegrationItem,
    pub(crate) item: RunItem,
    /// Users seen since the last checkpoint, by id.
    seen: HashMap<String, Option<String>>,
    seen_groups: HashSet<String>,
    /// Content hashes sent in this invocation, so a restarted listing sends nothing twice.
    sent: HashMap<String, String>,
    /// Graph registration details by user id, read at the start of the users phase.
    registrations: Option<HashMap<String, Registration>>,
    pub(crate) deadline: Instant,
}

impl SyncWorker {
    pub(crate) async fn run(&self, job: &SyncJob) -> Result<(), RunError> {
        let pk = table::tenant_pk(&job.tenant_id);
        let integration: Option<IntegrationItem> = self
            .store
            .get(&pk, &integration::integration_sk(job.provider))
            .await?;
        let Some(integration) = integration else {
            info!(tenant_id = %job.tenant_id, provider = %job.provider, "integration no longer exists; sync job dropped");
            return Ok(());
        };
        if integration.status == IntegrationStatus::ReauthorisationRequired {
            info!(tenant_id = %job.tenant_id, provider = %job.provider, "integration needs to be connected again; sync skipped");
            return Ok(());
        }
        if integration.status == IntegrationStatus::Revoking {
            info!(tenant_id = %job.tenant_id, provider = %job.provider, "integration is being revoked; sync job dropped");
            return Ok(());
        }

        let now = Utc::now();
        let existing: Option<RunItem> = self.store.get(&pk, &run_sk(job.provider)).await?;
        let mut item = match existing {
            Some(run) if run.run_id == job.run_id => run,
            Some(run) if run.lease_until > now.timestamp() => {
                info!(tenant_id = %job.tenant_id, provider = %job.provider, run_id = run.run_id, "another sync run is in progress; job dropped");
                return Ok(());
            }
            _ if job.reason == SyncReason::Continuation => {
                info!(tenant_id = %job.tenant_id, provider = %job.provider, run_id = job.run_id, "continuation of a finished run; job dropped");
                return Ok(());
            }
            _ => new_run(job, &integration, now),
        };
        item.lease_until =
            now.timestamp() + self.config.time_budget.as_secs() as i64 + LEASE_MARGIN_SECONDS;
        if !self.claim(&item).await? {
            info!(tenant_id = %job.tenant_id, provider = %job.provider, "another worker took this sync; job dropped");
            return Ok(());
        }

        let mut run = Run {
            worker: self,
            integration,
            item,
            seen: HashMap::new(),
            seen_groups: HashSet::new(),
            sent: HashMap::new(),
            registrations: None,
            deadline: Instant::now() + self.config.time_budget,
        };
        let stop = match self.access_token(&run.integration).await {
            Ok(token) => run.execute(token).await?,
            Err(failure) => Stop::Failed {
                message: failure.message,
                status: failure.status,
            },
        };
        match stop {
            Stop::Done => run.finish(true, None, None).await,
            Stop::Continue(delay) => run.checkpoint(delay).await,
            Stop::Failed { message, status } => run.finish(false, Some(message), status).await,
        }
    }

    /// Writes the run item if no other run holds a live lease. Returns false when one does.
    async fn claim(&self, item: &RunItem) -> Result<bool, RunError> {
        let attributes =
            serde_dynamo::to_item(item).map_err(|e| RunError::Encode(e.to_string()))?;
        let result = self
            .store
            .client()
            .put_item()
            .table_name(self.store.table_name())
            .set_item(Some(attributes))
            .condition_expression("attribute_not_exists(pk) OR run_id = :run OR lease_until < :now")
            .expression_attribute_values(":run", AttributeValue::S(item.run_id.clone()))
            .expression_attribute_values(
                ":now",
                AttributeValue::N(Utc::now().timestamp().to_string()),
            )
            .send()
            .await
            .map_err(|e| AwsError::dynamodb("PutItem", e));
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.is_conditional_check_failed() => Ok(false),
            Err(error) => Err(error.into()),
        }
    }
}

fn new_run(job: &SyncJob, integration: &IntegrationItem, now: DateTime<Utc>) -> RunItem {
    let full_due = integration
        .last_full_sync_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_none_or(|t| now.signed_duration_since(t) >= FULL_SYNC_INTERVAL);
    let can_resume = match integration.provider {
        Provider::Microsoft => integration.delta_link.is_some(),
        Provider::Okta => okta_changes_since(integration).is_some(),
        Provider::Google => false,
    };
    let mode = if can_resume && !full_due {
        Mode::Incremental
    } else {
        Mode::Full
    };
    RunItem {
        pk: table::tenant_pk(&job.tenant_id),
        sk: run_sk(job.provider),
        run_id: job.run_id.clone(),
        mode,
        phase: Phase::Users,
        cursor: None,
        activity_step: 0,
        started_at: storage_time(now),
        lease_until: 0,
        restarts: 0,
        backoff_millis: 0,
        added: 0,
        updated: 0,
        removed: 0,
        seen_chunks: 0,
        delta_link: None,
        requests: 0,
        expires_at: (now + chrono::Duration::days(RUN_ITEM_TTL_DAYS)).timestamp(),
    }
}

/// Okta: the time from which an incremental run lists changed users, a few minutes before the
/// last complete run started so that no change made during that run is missed.
fn okta_changes_since(integration: &IntegrationItem) -> Option<String> {
    let last = integration.last_sync.as_ref().filter(|s| s.complete)?;
    let started = DateTime::parse_from_rfc3339(&last.started_at).ok()?;
    let since = started.with_timezone(&Utc) - chrono::Duration::minutes(5);
    Some(since.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// The outcome of one step of a phase.
pub(crate) enum Step {
    Next,
    Stop(Stop),
}

impl Run<'_> {
    pub(crate) fn provider(&self) -> Provider {
        self.integration.provider
    }

    fn urls(&self) -> Urls<'_> {
        Urls {
            endpoints: &self.worker.config.endpoints,
            integration: &self.integration,
        }
    }

    pub(crate) fn allows(&self, feature: Feature) -> bool {
        integration::allows(self.provider(), &self.integration.scopes, feature)
    }

    async fn execute(&mut self, token: String) -> Result<Stop, RunError> {
        let config = &self.worker.config;
        let mut fetcher = Fetcher {
            http: self.worker.providers.http(),
            token,
            deadline: self.deadline,
            backoff_spent: Duration::from_millis(self.item.backoff_millis),
            backoff_cap: config.max_backoff,
            backoff_base: config.backoff_base,
            requests: 0,
        };
        let mut stepped = false;
        let stop = loop {
            // Every invocation reads at least one page, so a run always makes progress.
            if stepped && Instant::now() >= self.deadline && self.item.phase != Phase::Finalize {
                break Stop::Continue(None);
            }
            stepped = true;
            let step = match self.item.phase {
                Phase::Users | Phase::Deprovisioned => self.users_step(&mut fetcher).await?,
                Phase::Groups => self.groups_step(&mut fetcher).await?,
                Phase::Finalize => {
                    self.finalize().await?;
                    self.item.phase = Phase::Activity;
                    Step::Next
                }
                Phase::Activity => self.activity_step(&mut fetcher).await?,
            };
            if let Step::Stop(stop) = step {
                break stop;
            }
        };
        self.item.backoff_millis = fetcher.backoff_spent.as_millis() as u64;
        self.item.requests += fetcher.requests;
        Ok(stop)
    }

    /// Returns the URL the users phase starts at. For Graph it first takes a deltaLink, before
    /// listing, so that no change made during the listing is missed.
    async fn users_start(&mut self, fetcher: &mut Fetcher<'_>) -> Result<String, FetchError> {
        if self.item.phase == Phase::Deprovisioned {
            return Ok(self.urls().okta_deprovisioned());
        }
        if self.provider() == Provider::Okta && self.item.mode == Mode::Incremental {
            if let Some(since) = okta_changes_since(&self.integration) {
                return Ok(self.urls().okta_updated_since(&since));
            }
            self.item.mode = Mode::Full;
        }
        if self.provider() != Provider::Microsoft {
            return Ok(self.urls().users());
        }
        if self.item.mode == Mode::Incremental {
            if let Some(link) = self.integration.delta_link.clone() {
                return Ok(link);
            }
            self.item.mode = Mode::Full;
        }
        if self.item.delta_link.is_none() {
            let (body, _) = fetcher.get(&self.urls().latest_delta()).await?;
            self.item.delta_link = body["@odata.deltaLink"].as_str().map(str::to_owned);
        }
        Ok(self.urls().users())
    }

    /// Okta: whether the user has an active MFA factor. Okta reports factors only per user, so
    /// this costs one request per listed user.
    async fn okta_factors(
        &self,
        fetcher: &mut Fetcher<'_>,
        id: &str,
    ) -> Result<Option<bool>, FetchError> {
        let url = format!(
            "{}/api/v1/users/{}/factors",
            self.worker.config.endpoints.okta(&self.integration.domain),
            providers::percent_encode(id)
        );
        let (body, _) = fetcher.get(&url).await?;
        Ok(body.as_array().map(|factors| {
            factors
                .iter()
                .any(|f| f["status"].as_str() == Some("ACTIVE"))
        }))
    }

    /// Reads Graph registration details (MFA and admin role) into memory for this invocation.
    async fn load_registrations(&mut self, fetcher: &mut Fetcher<'_>) -> Result<(), FetchError> {
        let mut registrations = HashMap::new();
        let mut url = Some(self.urls().registration_details());
        while let Some(next) = url {
            let (body, headers) = fetcher.get(&next).await?;
            let page = providers::page(Provider::Microsoft, body, &headers, "value");
            for entry in &page.entries {
                if let Some(id) = entry["id"].as_str() {
                    registrations.insert(
                        id.to_owned(),
                        Registration {
                            mfa: entry["isMfaRegistered"].as_bool(),
                            is_admin: entry["isAdmin"].as_bool(),
                        },
                    );
                }
            }
            url = page.next;
        }
        self.registrations = Some(registrations);
        Ok(())
    }

    async fn users_step(&mut self, fetcher: &mut Fetcher<'_>) -> Result<Step, RunError> {
        let provider = self.provider();
        if provider == Provider::Microsoft
            && self.registrations.is_none()
            && self.allows(Feature::Mfa)
            && let Err(error) = self.load_registrations(fetcher).await
        {
            return Ok(Step::Stop(fetch_stop(provider, error)));
        }
        let url = match self.item.cursor.clone() {
            Some(cursor) => cursor,
            None => match self.users_start(fetcher).await {
                Ok(url) => url,
                Err(error) => return Ok(Step::Stop(fetch_stop(provider, error))),
            },
        };
        let (body, headers) = match fetcher.get(&url).await {
            Ok(response) => response,
            Err(FetchError::ExpiredPageToken) if self.item.restarts < MAX_RESTARTS => {
                self.item.restarts += 1;
                warn!(provider = %provider, restarts = self.item.restarts, "page token expired; listing again from the first page");
                self.item.cursor = None;
                return Ok(Step::Next);
            }
            Err(FetchError::DeltaExpired) if self.item.mode == Mode::Incremental => {
                warn!(provider = %provider, "delta token expired; reading the whole directory");
                self.item.mode = Mode::Full;
                self.item.cursor = None;
                self.item.delta_link = None;
                return Ok(Step::Next);
            }
            Err(error) => return Ok(Step::Stop(fetch_stop(provider, error))),
        };

        let collection = if provider == Provider::Google {
            "users"
        } else {
            "value"
        };
        let page = providers::page(provider, body, &headers, collection);
        let mut users = Vec::new();
        let mut removed = Vec::new();
        for entry in &page.entries {
            match providers::user(provider, entry) {
                Some(Listed::User(user)) => users.push(user),
                Some(Listed::Removed(id)) => removed.push(id),
                None => warn!(provider = %provider, "a listed user has no id; skipped"),
            }
        }
        if let Err(error) = self.send_users(fetcher, users, removed).await {
            return match error {
                RunError::Fetch(error) => Ok(Step::Stop(fetch_stop(provider, error))),
                other => Err(other),
            };
        }

        let next = match provider {
            Provider::Google => page
                .next
                .map(|token| providers::google_next(&self.urls().users(), &token)),
            _ => page.next,
        };
        if self.item.mode == Mode::Incremental
            && let Some(link) = page.delta_link
        {
            self.item.delta_link = Some(link);
        }
        self.item.cursor = next;
        if self.item.cursor.is_none() {
            self.item.phase = match (provider, self.item.phase) {
                // A `lastUpdated` search already includes deprovisioned users.
                (Provider::Okta, Phase::Users) if self.item.mode == Mode::Full => {
                    Phase::Deprovisioned
                }
                _ if self.allows(Feature::Groups) => Phase::Groups,
                _ => Phase::Finalize,
            };
        }
        Ok(Step::Next)
    }

    /// Reads every group with its members and sends the changed ones, in one invocation.
    async fn groups_step(&mut self, fetcher: &mut Fetcher<'_>) -> Result<Step, RunError> {
        let provider = self.provider();
        let listed = match self.list_groups(fetcher).await {
            Ok(groups) => groups,
            Err(error) => return Ok(Step::Stop(fetch_stop(provider, error))),
        };
        self.send_groups(listed).await?;
        self.remove_unseen_groups().await?;
        self.item.phase = Phase::Finalize;
        Ok(Step::Next)
    }

    /// Lists groups and their members.
    async fn list_groups(
        &mut self,
        fetcher: &mut Fetcher<'_>,
    ) -> Result<Vec<DirectoryGroup>, FetchError> {
        let provider = self.provider();
        let first = self.urls().groups();
        let collection = if provider == Provider::Google {
            "groups"
        } else {
            "value"
        };
        let mut groups = Vec::new();
        let mut url = Some(first.clone());
        while let Some(next) = url {
            let (body, headers) = fetcher.get(&next).await?;
            let page = providers::page(provider, body, &headers, collection);
            groups.extend(
                page.entries
                    .iter()
                    .filter_map(|g| providers::group(provider, g)),
            );
            url = self.next_url(&first, page.next);
        }

        // NOTE: the groups phase ignores the time budget, because it restarts from its first
        // group when continued. A directory whose groups cannot all be listed within the
        // function's timeout never finishes this phase.
        let mut listed = Vec::with_capacity(groups.len());
        for (id, name, email) in groups {
            let first = self.urls().members(&id);
            let collection = if provider == Provider::Google {
                "members"
            } else {
                "value"
            };
            let mut member_ids = Vec::new();
            let mut url = Some(first.clone());
            while let Some(next) = url {
                let (body, headers) = fetcher.get(&next).await?;
                let page = providers::page(provider, body, &headers, collection);
                member_ids.extend(
                    page.entries
                        .iter()
                        .filter_map(|m| providers::member(provider, m)),
                );
                url = self.next_url(&first, page.next);
            }
            member_ids.sort();
            member_ids.dedup();
            listed.push(DirectoryGroup {
                id,
                name,
                email,
                member_ids,
            });
        }
        Ok(listed)
    }

    fn next_url(&self, first: &str, next: Option<String>) -> Option<String> {
        match self.provider() {
            Provider::Google => next.map(|token| providers::google_next(first, &token)),
            _ => next,
        }
    }

    /// Compares listed users with their stored records and sends the new and changed ones.
    async fn send_users(
        &mut self,
        fetcher: &mut Fetcher<'_>,
        users: Vec<DirectoryUser>,
        removed: Vec<String>,
    ) -> Result<(), RunError> {
        let provider = self.provider();
        let pk = self.item.pk.clone();
        let keys: Vec<Key> = users
            .iter()
            .map(|u| u.id.as_str())
            .chain(removed.iter().map(String::as_str))
            .map(|id| (pk.clone(), directory::directory_user_sk(provider, id)))
            .collect();
        let stored = self.worker.store.get_items(&keys).await?;
        let stored_user = |id: &str| -> Option<DirectoryUserItem> {
            stored
                .get(&(pk.clone(), directory::directory_user_sk(provider, id)))
                .and_then(|item| decode(item.clone()).ok())
        };

        let mut changes = Vec::new();
        for mut user in users {
            let active = matches!(user.status, None | Some(AccountStatus::Active));
            let email = user.email.clone().filter(|_| !user.guest && active);
            self.seen.insert(user.id.clone(), email);
            if let Some(registration) = self.registrations.as_ref().and_then(|r| r.get(&user.id)) {
                user.mfa = registration.mfa.or(user.mfa);
                user.is_admin = registration.is_admin.or(user.is_admin);
            }
            if provider == Provider::Okta
                && self.allows(Feature::Mfa)
                && user.status != Some(AccountStatus::Deprovisioned)
            {
                user.mfa = self.okta_factors(fetcher, &user.id).await?;
            }
            let existing = stored_user(&user.id);
            if let Some(existing) = &existing {
                user.keep_known(&existing.user);
            }
            let hash = user.content_hash();
            if existing.as_ref().is_some_and(|e| e.content_hash == hash)
                || self.sent.get(&user.id) == Some(&hash)
            {
                continue;
            }
            match existing {
                Some(_) => self.item.updated += 1,
                None => self.item.added += 1,
            }
            self.sent.insert(user.id.clone(), hash);
            changes.push(DirectoryChange::User { user });
        }
        for id in removed {
            if stored_user(&id).is_some() {
                self.item.removed += 1;
                changes.push(DirectoryChange::RemoveUser { id });
            }
        }
        self.send_changes(changes).await
    }

    async fn send_groups(&mut self, groups: Vec<DirectoryGroup>) -> Result<(), RunError> {
        let provider = self.provider();
        let pk = self.item.pk.clone();
        let keys: Vec<Key> = groups
            .iter()
            .map(|g| {
                let id = directory::directory_group_id(provider, &g.id);
                (pk.clone(), table::group_sk(&id))
            })
            .collect();
        let stored = self.worker.store.get_items(&keys).await?;
        let mut changes = Vec::new();
        for (group, key) in groups.into_iter().zip(keys) {
            self.seen_groups.insert(group.id.clone());
            let existing: Option<DirectoryGroupItem> =
                stored.get(&key).and_then(|item| decode(item.clone()).ok());
            if existing.is_some_and(|e| e.content_hash == group.content_hash()) {
                continue;
            }
            changes.push(DirectoryChange::Group { group });
        }
        self.send_changes(changes).await
    }

    /// Returns every user this run has seen, in this invocation and in checkpoints, in id order.
    pub(crate) async fn seen_users(&self) -> Result<Vec<SeenUser>, RunError> {
        let mut users: Vec<SeenUser> = self
            .seen
            .iter()
            .map(|(id, email)| SeenUser {
                id: id.clone(),
                email: email.clone(),
            })
            .collect();
        let prefix = seen_prefix(self.provider(), &self.item.run_id);
        for chunk in self
            .worker
            .store
            .query_prefix(&self.item.pk, &prefix)
            .await?
        {
            let chunk: SeenItem = decode(chunk)?;
            users.extend(chunk.users);
        }
        users.sort();
        users.dedup_by(|a, b| a.id == b.id);
        Ok(users)
    }

    /// After a complete full listing: removes the users the run did not see.
    async fn finalize(&mut self) -> Result<(), RunError> {
        if self.item.mode != Mode::Full {
            return Ok(());
        }
        let provider = self.provider();
        let pk = self.item.pk.clone();
        let seen: HashSet<String> = self.seen_users().await?.into_iter().map(|u| u.id).collect();
        let user_prefix = directory::directory_user_prefix(provider);
        let mut changes = Vec::new();
        for item in self.worker.store.query_prefix(&pk, &user_prefix).await? {
            let Some(AttributeValue::S(sk)) = item.get(table::SK) else {
                continue;
            };
            let id = sk.strip_prefix(&user_prefix).unwrap_or_default();
            if !seen.contains(id) && !item.contains_key("removed_at") {
                changes.push(DirectoryChange::RemoveUser { id: id.to_owned() });
            }
        }
        self.item.removed += changes.len() as u64;
        self.send_changes(changes).await
    }

    /// After a complete group listing in a full run: removes the groups it did not list.
    async fn remove_unseen_groups(&mut self) -> Result<(), RunError> {
        if self.item.mode != Mode::Full {
            return Ok(());
        }
        let provider = self.provider();
        let mut changes = Vec::new();
        for item in self
            .worker
            .store
            .query_prefix(&self.item.pk, "GROUP#")
            .await?
        {
            let Ok(group) = decode::<DirectoryGroupItem>(item) else {
                continue;
            };
            if group.provider == provider && !self.seen_groups.contains(&group.provider_group_id) {
                changes.push(DirectoryChange::RemoveGroup {
                    id: group.provider_group_id,
                });
            }
        }
        self.send_changes(changes).await
    }

    pub(crate) async fn send_changes(&self, changes: Vec<DirectoryChange>) -> Result<(), RunError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut bodies = Vec::new();
        for chunk in changes.chunks(CHANGES_PER_MESSAGE) {
            let message = DirectoryMessage {
                version: DIRECTORY_MESSAGE_VERSION,
                tenant_id: self.integration.tenant_id.clone(),
                provider: self.provider(),
                run_id: self.item.run_id.clone(),
                changes: chunk.to_vec(),
                sent_at: Utc::now(),
            };
            bodies.push(
                serde_json::to_string(&message).map_err(|e| RunError::Encode(e.to_string()))?,
            );
        }
        queue::send_all(
            &self.worker.sqs,
            &self.worker.config.directory_queue_url,
            &bodies,
            None,
        )
        .await?;
        Ok(())
    }

    /// Saves the run's progress and queues its continuation.
    async fn checkpoint(mut self, delay: Option<Duration>) -> Result<(), RunError> {
        let now = Utc::now();
        let seen: Vec<SeenUser> = std::mem::take(&mut self.seen)
            .into_iter()
            .map(|(id, email)| SeenUser { id, email })
            .collect();
        for users in seen.chunks(SEEN_IDS_PER_ITEM) {
            let chunk = SeenItem {
                pk: self.item.pk.clone(),
                sk: format!(
                    "{}{}",
                    seen_prefix(self.provider(), &self.item.run_id),
                    self.item.seen_chunks
                ),
                users: users.to_vec(),
                expires_at: self.item.expires_at,
            };
            self.worker.store.put(&chunk).await?;
            self.item.seen_chunks += 1;
        }
        let delay_seconds = delay
            .map(|d| d.as_secs_f64().ceil() as u64)
            .unwrap_or(0)
            .min(MAX_DELAY_SECONDS);
        self.item.lease_until = now.timestamp() + delay_seconds as i64 + LEASE_MARGIN_SECONDS;
        self.worker.store.put(&self.item).await?;

        let job = SyncJob {
            version: SYNC_JOB_VERSION,
            run_id: self.item.run_id.clone(),
            tenant_id: self.integration.tenant_id.clone(),
            provider: self.provider(),
            reason: SyncReason::Continuation,
            requested_at: now,
        };
        let body = serde_json::to_string(&job).map_err(|e| RunError::Encode(e.to_string()))?;
        queue::send_all(
            &self.worker.sqs,
            &self.worker.config.sync_queue_url,
            &[body],
            Some(delay_seconds as i32),
        )
        .await?;
        info!(
            tenant_id = %self.integration.tenant_id,
            provider = %self.provider(),
            run_id = self.item.run_id,
            phase = ?self.item.phase,
            delay_seconds,
            "sync run continues in another invocation"
        );
        Ok(())
    }

    /// Records the outcome on the integration and ends the run.
    async fn finish(
        self,
        complete: bool,
        error: Option<String>,
        status: Option<IntegrationStatus>,
    ) -> Result<(), RunError> {
        let now = storage_time(Utc::now());
        let summary = SyncSummary {
            run_id: self.item.run_id.clone(),
            mode: self.item.mode.as_str().to_owned(),
            started_at: self.item.started_at.clone(),
            finished_at: now.clone(),
            complete,
            added: self.item.added,
            updated: self.item.updated,
            removed: if complete { self.item.removed } else { 0 },
            error: error.clone(),
        };
        let summary_value = serde_dynamo::to_attribute_value(&summary)
            .map_err(|e| RunError::Encode(e.to_string()))?;
        let mut set = vec!["last_sync = :summary"];
        let mut remove = Vec::new();
        let mut update = self
            .worker
            .store
            .client()
            .update_item()
            .table_name(self.worker.store.table_name())
            .key(table::PK, AttributeValue::S(self.item.pk.clone()))
            .key(
                table::SK,
                AttributeValue::S(integration::integration_sk(self.provider())),
            )
            // A revocation that started during the run keeps its status.
            .condition_expression("attribute_exists(pk) AND #status <> :revoking")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":revoking", AttributeValue::S("revoking".to_owned()))
            .expression_attribute_values(":summary", summary_value);
        if complete {
            remove.push("last_error");
            if let Some(link) = &self.item.delta_link {
                set.push("delta_link = :delta");
                update =
                    update.expression_attribute_values(":delta", AttributeValue::S(link.clone()));
            }
            if self.item.mode == Mode::Full {
                set.push("last_full_sync_at = :now");
                update = update.expression_attribute_values(":now", AttributeValue::S(now.clone()));
            }
        }
        if let Some(status) = status {
            set.push("#status = :status, last_error = :error");
            let status = serde_dynamo::to_attribute_value(status)
                .map_err(|e| RunError::Encode(e.to_string()))?;
            update = update
                .expression_attribute_values(":status", status)
                .expression_attribute_values(
                    ":error",
                    AttributeValue::S(error.clone().unwrap_or_default()),
                );
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        match update.update_expression(expression).send().await {
            Ok(_) => {}
            Err(error) => {
                let error = AwsError::dynamodb("UpdateItem", error);
                if !error.is_conditional_check_failed() {
                    return Err(error.into());
                }
                info!(tenant_id = %self.integration.tenant_id, provider = %self.provider(), "integration removed or revoked during the run");
            }
        }
        self.worker
            .store
            .client()
            .delete_item()
            .table_name(self.worker.store.table_name())
            .key(table::PK, AttributeValue::S(self.item.pk.clone()))
            .key(table::SK, AttributeValue::S(self.item.sk.clone()))
            .send()
            .await
            .map_err(|e| AwsError::dynamodb("DeleteItem", e))?;

        if complete {
            info!(
                tenant_id = %self.integration.tenant_id,
                provider = %self.provider(),
                run_id = self.item.run_id,
                mode = self.item.mode.as_str(),
                requests = self.item.requests,
                added = self.item.added,
                updated = self.item.updated,
                removed = self.item.removed,
                "sync run complete"
            );
        } else {
            warn!(
                tenant_id = %self.integration.tenant_id,
                provider = %self.provider(),
                run_id = self.item.run_id,
                requests = self.item.requests,
                error = error.as_deref().unwrap_or_default(),
                "sync run incomplete; nothing was removed"
            );
        }
        Ok(())
    }
}
