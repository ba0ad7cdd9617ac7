//! The activity phase: third-party OAuth grants, mailbox rules and single sign-on apps, each
//! read only when the integration's scopes allow it.
//!
//! Grants (Graph), apps and sign-ins (Okta) come from tenant-wide listings. Graph inbox rules, Google
//! tokens and Gmail filters can only be read user by user. Those steps go through the users the
//! run listed, in id order, and checkpoint the last one read.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rollcall::directory::{
    self, Activity, ActivityItem, DirectoryChange, MailRule, OauthGrant, SignIn, SsoApp,
};
use rollcall::email::CompanyDomains;
use rollcall::integration::{Feature, Provider};
use rollcall::store::{Key, decode};
use rollcall::table::{self, TenantItem};
use serde_json::Value;
use tracing::warn;

use crate::fetch::{FetchError, Fetcher};
use crate::providers::{self, percent_encode};
use crate::run::{Run, RunError, SeenUser, Step, fetch_stop};

/// How far back each run reads Okta sign-ins.
const SIGN_IN_WINDOW: chrono::Duration = chrono::Duration::days(7);
/// Users whose stored activity is read with one `BatchGetItem`.
const USERS_PER_BATCH: usize = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityStep {
    GraphGrants,
    GraphRules,
    GoogleTokens,
    GmailFilters,
    OktaApps,
    OktaSignIns,
}

impl ActivityStep {
    fn kind(self) -> &'static str {
        match self {
            ActivityStep::GraphGrants | ActivityStep::GoogleTokens => "oauth_grants",
            ActivityStep::GraphRules | ActivityStep::GmailFilters => "mail_rules",
            ActivityStep::OktaApps => "sso_apps",
            ActivityStep::OktaSignIns => "sign_ins",
        }
    }
}

impl Run<'_> {
    /// Returns the activity steps this integration's scopes allow, in order.
    pub(crate) fn activity_steps(&self) -> Vec<ActivityStep> {
        let mut steps = Vec::new();
        match self.provider() {
            Provider::Microsoft => {
                if self.allows(Feature::OauthGrants) {
                    steps.push(ActivityStep::GraphGrants);
                }
                if self.allows(Feature::MailboxRules) {
                    steps.push(ActivityStep::GraphRules);
                }
            }
            Provider::Google => {
                if self.allows(Feature::OauthGrants) {
                    steps.push(ActivityStep::GoogleTokens);
                }
                // Gmail settings of other users are readable only through domain-wide
                // delegation.
                if self.allows(Feature::MailboxRules) && self.integration.delegation.is_some() {
                    steps.push(ActivityStep::GmailFilters);
                }
            }
            Provider::Okta => {
                if self.allows(Feature::SsoApps) {
                    steps.push(ActivityStep::OktaApps);
                }
                if self.allows(Feature::SignIns) {
                    steps.push(ActivityStep::OktaSignIns);
                }
            }
        }
        steps
    }

    pub(crate) async fn activity_step(
        &mut self,
        fetcher: &mut Fetcher<'_>,
    ) -> Result<Step, RunError> {
        let steps = self.activity_steps();
        let Some(step) = steps.get(self.item.activity_step as usize).copied() else {
            return Ok(Step::Stop(crate::run::Stop::Done));
        };
        let result = match step {
            ActivityStep::GraphGrants => self.graph_grants(fetcher).await,
            ActivityStep::OktaApps => self.okta_apps(fetcher).await,
            ActivityStep::OktaSignIns => self.okta_sign_ins(fetcher).await,
            _ => self.per_user(step, fetcher).await,
        };
        match result {
            Ok(true) => {
                self.item.activity_step += 1;
                self.item.cursor = None;
                Ok(Step::Next)
            }
            Ok(false) => Ok(Step::Stop(crate::run::Stop::Continue(None))),
            Err(StepError::Fetch(error)) => Ok(Step::Stop(fetch_stop(self.provider(), error))),
            Err(StepError::Run(error)) => Err(error),
        }
    }

    /// Graph: every delegated grant, named after its service principal.
    async fn graph_grants(&mut self, fetcher: &mut Fetcher<'_>) -> Result<bool, StepError> {
        let graph = self.worker.config.endpoints.microsoft_graph.clone();
        let mut names = HashMap::new();
        for entry in self
            .list(
                fetcher,
                &format!("{graph}/v1.0/servicePrincipals?$select=id,appId,displayName&$top=999"),
                "value",
            )
            .await?
        {
            if let (Some(id), Some(name)) = (entry["id"].as_str(), entry["displayName"].as_str()) {
                names.insert(id.to_owned(), name.to_owned());
            }
        }
        let mut by_user: BTreeMap<String, Vec<OauthGrant>> = BTreeMap::new();
        for entry in self
            .list(
                fetcher,
                &format!("{graph}/v1.0/oauth2PermissionGrants?$top=999"),
                "value",
            )
            .await?
        {
            // Grants an administrator gave for everyone have no principal; they are no one
            // user's doing.
            let (Some(user), Some(client)) =
                (entry["principalId"].as_str(), entry["clientId"].as_str())
            else {
                continue;
            };
            by_user
                .entry(user.to_owned())
                .or_default()
                .push(OauthGrant {
                    client_id: client.to_owned(),
                    app_name: names.get(client).cloned(),
                    scopes: entry["scope"]
                        .as_str()
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect(),
                });
        }
        let activities = by_user
            .into_iter()
            .map(|(user, grants)| (user, Activity::OauthGrants(grants)))
            .collect();
        self.replace_all(ActivityStep::GraphGrants, activities)
            .await?;
        Ok(true)
    }

    /// Okta: every active app and the users assigned to it.
    async fn okta_apps(&mut self, fetcher: &mut Fetcher<'_>) -> Result<bool, StepError> {
        let base = self.worker.config.endpoints.okta(&self.integration.domain);
        let mut by_user: BTreeMap<String, Vec<SsoApp>> = BTreeMap::new();
        for app in self
            .list(fetcher, &format!("{base}/api/v1/apps?limit=200"), "")
            .await?
        {
            let Some(id) = app["id"].as_str() else {
                continue;
            };
            if app["status"].as_str().is_some_and(|s| s != "ACTIVE") {
                continue;
            }
            let sso = SsoApp {
                id: id.to_owned(),
                label: app["label"].as_str().unwrap_or(id).to_owned(),
                sign_on_mode: app["signOnMode"].as_str().map(str::to_owned),
            };
            let url = format!("{base}/api/v1/apps/{}/users?limit=500", percent_encode(id));
            for assignment in self.list(fetcher, &url, "").await? {
                if let Some(user) = assignment["id"].as_str() {
                    by_user
                        .entry(user.to_owned())
                        .or_default()
                        .push(sso.clone());
                }
            }
        }
        let activities = by_user
            .into_iter()
            .map(|(user, apps)| (user, Activity::SsoApps(apps)))
            .collect();
        self.replace_all(ActivityStep::OktaApps, activities).await?;
        Ok(true)
    }

    /// Okta: each user's latest single sign-on per app over the last week, from the System Log.
    async fn okta_sign_ins(&mut self, fetcher: &mut Fetcher<'_>) -> Result<bool, StepError> {
        let base = self.worker.config.endpoints.okta(&self.integration.domain);
        let since = (chrono::Utc::now() - SIGN_IN_WINDOW)
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        let url = format!(
            "{base}/api/v1/logs?since={since}&filter=eventType%20eq%20%22user.authentication.sso%22&limit=1000"
        );
        let mut latest: BTreeMap<String, BTreeMap<String, SignIn>> = BTreeMap::new();
        for event in self.list(fetcher, &url, "").await? {
            let (Some(user), Some(published)) =
                (event["actor"]["id"].as_str(), event["published"].as_str())
            else {
                continue;
            };
            if event["outcome"]["result"].as_str() != Some("SUCCESS") {
                continue;
            }
            let Some(app) = event["target"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["type"].as_str() == Some("AppInstance"))
            else {
                continue;
            };
            let app_id = app["id"].as_str().unwrap_or_default().to_owned();
            let entry = latest
                .entry(user.to_owned())
                .or_default()
                .entry(app_id.clone())
                .or_insert_with(|| SignIn {
                    app_id,
                    app_label: app["displayName"].as_str().unwrap_or_default().to_owned(),
                    last_sign_in: published.to_owned(),
                });
            if published > entry.last_sign_in.as_str() {
                entry.last_sign_in = published.to_owned();
            }
        }
        let activities = latest
            .into_iter()
            .map(|(user, apps)| (user, Activity::SignIns(apps.into_values().collect())))
            .collect();
        self.replace_all(ActivityStep::OktaSignIns, activities)
            .await?;
        Ok(true)
    }

    /// Reads every page of a listing.
    async fn list(
        &self,
        fetcher: &mut Fetcher<'_>,
        first: &str,
        collection: &str,
    ) -> Result<Vec<Value>, StepError> {
        let provider = self.provider();
        let mut entries = Vec::new();
        let mut url = Some(first.to_owned());
        while let Some(next) = url {
            let (body, headers) = fetcher.get(&next).await?;
            let page = providers::page(provider, body, &headers, collection);
            entries.extend(page.entries);
            url = match provider {
                Provider::Google => page.next.map(|t| providers::google_next(first, &t)),
                _ => page.next,
            };
        }
        Ok(entries)
    }

    /// Sends the activities of every user that changed, and empties for users who had some
    /// stored and have none now.
    async fn replace_all(
        &mut self,
        step: ActivityStep,
        mut activities: BTreeMap<String, Activity>,
    ) -> Result<(), RunError> {
        let provider = self.provider();
        let prefix = directory::activity_prefix(provider, step.kind());
        let mut stored = HashMap::new();
        for item in self
            .worker
            .store
            .query_prefix(&self.item.pk, &prefix)
            .await?
        {
            let item: ActivityItem = decode(item)?;
            stored.insert(item.user_id.clone(), item.content_hash);
        }
        let empty = match step {
            ActivityStep::OktaApps => Activity::SsoApps(Vec::new()),
            ActivityStep::OktaSignIns => Activity::SignIns(Vec::new()),
            _ => Activity::OauthGrants(Vec::new()),
        };
        for user in stored.keys() {
            activities
                .entry(user.clone())
                .or_insert_with(|| empty.clone());
        }
        let changes = activities
            .into_iter()
            .filter(|(user, activity)| match stored.get(user) {
                Some(hash) => *hash != activity.content_hash(),
                None => !activity.is_empty(),
            })
            .map(|(user_id, activity)| DirectoryChange::Activity { user_id, activity })
            .collect();
        self.send_changes(changes).await
    }

    /// Reads one kind of activity user by user, after the cursor. Returns false when the
    /// invocation ran out of time; the cursor then names the last user read.
    async fn per_user(
        &mut self,
        step: ActivityStep,
        fetcher: &mut Fetcher<'_>,
    ) -> Result<bool, StepError> {
        let provider = self.provider();
        let company = self.company_domains().await?;
        // The users this run listed, not the stored ones: on a first run the directory writer
        // may not have stored them yet.
        // NOTE: an incremental run lists only changed users, so a rule added by an unchanged
        // user is found by the next daily full run.
        let users: Vec<SeenUser> = self
            .seen_users()
            .await?
            .into_iter()
            .filter(|u| {
                u.email.is_some()
                    && self
                        .item
                        .cursor
                        .as_deref()
                        .is_none_or(|c| u.id.as_str() > c)
            })
            .collect();

        for batch in users.chunks(USERS_PER_BATCH) {
            if Instant::now() >= self.deadline {
                return Ok(false);
            }
            let keys: Vec<Key> = batch
                .iter()
                .map(|u| {
                    (
                        self.item.pk.clone(),
                        directory::activity_sk(provider, step.kind(), &u.id),
                    )
                })
                .collect();
            let stored = self
                .worker
                .store
                .get_items(&keys)
                .await
                .map_err(RunError::from)?;
            let mut changes = Vec::new();
            for (user, key) in batch.iter().zip(&keys) {
                let Some(activity) = self.read_user(step, user, fetcher, &company).await? else {
                    continue;
                };
                let stored_hash = stored
                    .get(key)
                    .and_then(|item| decode::<ActivityItem>(item.clone()).ok())
                    .map(|item| item.content_hash);
                let changed = match stored_hash {
                    Some(hash) => hash != activity.content_hash(),
                    None => !activity.is_empty(),
                };
                if changed {
                    changes.push(DirectoryChange::Activity {
                        user_id: user.id.clone(),
                        activity,
                    });
                }
            }
            self.send_changes(changes).await?;
            self.item.cursor = batch.last().map(|u| u.id.clone());
        }
        Ok(true)
    }

    /// Reads one user's activity. `None` when the user has no mailbox or the provider has no
    /// record of them; the stored activity is then left as it is.
    async fn read_user(
        &self,
        step: ActivityStep,
        user: &SeenUser,
        fetcher: &mut Fetcher<'_>,
        company: &CompanyDomains,
    ) -> Result<Option<Activity>, StepError> {
        let endpoints = &self.worker.config.endpoints;
        let id = percent_encode(&user.id);
        let email = percent_encode(user.email.as_deref().unwrap_or_default());
        let url = match step {
            ActivityStep::GraphRules => format!(
                "{}/v1.0/users/{id}/mailFolders/inbox/messageRules",
                endpoints.microsoft_graph
            ),
            ActivityStep::GoogleTokens => format!(
                "{}/admin/directory/v1/users/{id}/tokens",
                endpoints.google_admin
            ),
            // NOTE: this reads every mailbox with the token delegated to the Workspace
            // administrator. Google grants another user's Gmail settings only to a token
            // delegated to that user, one token request per mailbox. The mock accepts the
            // administrator's token, so that path is untested.
            ActivityStep::GmailFilters => format!(
                "{}/gmail/v1/users/{email}/settings/filters",
                endpoints.google_gmail
            ),
            ActivityStep::GraphGrants | ActivityStep::OktaApps | ActivityStep::OktaSignIns => {
                return Ok(None);
            }
        };
        let body = match fetcher.get(&url).await {
            Ok((body, _)) => body,
            Err(FetchError::Failed(detail)) => {
                warn!(provider = %self.provider(), provider_id = user.id, detail, "user's activity not readable; kept as stored");
                return Ok(None);
            }
            Err(error) => return Err(error.into()),
        };
        let activity = match step {
            ActivityStep::GraphRules => Activity::MailRules(
                entries(&body, "value")
                    .map(|rule| assessed(graph_rule(rule), company))
                    .collect(),
            ),
            ActivityStep::GmailFilters => Activity::MailRules(
                entries(&body, "filter")
                    .map(|filter| assessed(gmail_filter(filter), company))
                    .collect(),
            ),
            _ => Activity::OauthGrants(entries(&body, "items").map(google_token).collect()),
        };
        Ok(Some(activity))
    }

    async fn company_domains(&self) -> Result<CompanyDomains, RunError> {
        let tenant: Option<TenantItem> = self
            .worker
            .store
            .get(&self.item.pk, table::TENANT_SK)
            .await?;
        Ok(tenant
            .map(|t| CompanyDomains {
                domains: t.company_domains,
                include_subdomains: t.include_subdomains,
            })
            .unwrap_or_default())
    }
}

pub(crate) enum StepError {
    Fetch(FetchError),
    Run(RunError),
}

impl From<FetchError> for StepError {
    fn from(error: FetchError) -> Self {
        StepError::Fetch(error)
    }
}

impl From<RunError> for StepError {
    fn from(error: RunError) -> Self {
        StepError::Run(error)
    }
}

fn entries<'a>(body: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    body[key].as_array().into_iter().flatten()
}

fn assessed(mut rule: MailRule, company: &CompanyDomains) -> MailRule {
    rule.assess(company);
    rule
}

fn addresses(recipients: &Value) -> Vec<String> {
    recipients
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["emailAddress"]["address"].as_str())
        .map(str::to_owned)
        .collect()
}

fn graph_rule(rule: &Value) -> MailRule {
    let actions = &rule["actions"];
    MailRule {
        id: rule["id"].as_str().unwrap_or_default().to_owned(),
        name: rule["displayName"].as_str().map(str::to_owned),
        forward_to: addresses(&actions["forwardTo"]),
        redirect_to: addresses(&actions["redirectTo"]),
        delete: actions["delete"].as_bool().unwrap_or(false),
        mark_read: actions["markAsRead"].as_bool().unwrap_or(false),
        move_to_folder: actions["moveToFolder"].as_str().map(str::to_owned),
        suspicious: false,
    }
}

fn gmail_filter(filter: &Value) -> MailRule {
    let action = &filter["action"];
    let labels = |key: &str| -> Vec<&str> {
        action[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    };
    let added = labels("addLabelIds");
    let removed = labels("removeLabelIds");
    MailRule {
        id: filter["id"].as_str().unwrap_or_default().to_owned(),
        name: None,
        forward_to: action["forward"]
            .as_str()
            .map(str::to_owned)
            .into_iter()
            .collect(),
        redirect_to: Vec::new(),
        delete: added.contains(&"TRASH"),
        mark_read: removed.contains(&"UNREAD"),
        move_to_folder: removed.contains(&"INBOX").then(|| {
            added
                .iter()
                .find(|l| **l != "TRASH")
                .map(|l| (*l).to_owned())
                .unwrap_or_else(|| "archive".to_owned())
        }),
        suspicious: false,
    }
}

fn google_token(token: &Value) -> OauthGrant {
    OauthGrant {
        client_id: token["clientId"].as_str().unwrap_or_default().to_owned(),
        app_name: token["displayText"].as_str().map(str::to_owned),
        scopes: token["scopes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn company() -> CompanyDomains {
        CompanyDomains {
            domains: vec!["example.com".into()],
            include_subdomains: false,
        }
    }

    #[test]
    fn graph_rules_suspicious_flag() {
        let outside = json!({"id": "r1", "actions": {"forwardTo": [{"emailAddress": {"address": "drop@evil.example"}}]}});
        let inside = json!({"id": "r2", "actions": {"forwardTo": [{"emailAddress": {"address": "boss@example.com"}}]}});
        let deleting = json!({"id": "r3", "actions": {"delete": true}});
        assert!(assessed(graph_rule(&outside), &company()).suspicious);
        assert!(!assessed(graph_rule(&inside), &company()).suspicious);
        assert!(assessed(graph_rule(&deleting), &company()).suspicious);
    }

    #[test]
    fn gmail_filters_read_their_labels() {
        let archive = json!({"id": "f1", "action": {"addLabelIds": ["Label_1"], "removeLabelIds": ["INBOX", "UNREAD"]}});
        let rule = gmail_filter(&archive);
        assert!(rule.mark_read);
        assert_eq!(rule.move_to_folder.as_deref(), Some("Label_1"));
        let plain = json!({"id": "f2", "action": {"addLabelIds": ["Label_2"]}});
        assert!(!assessed(gmail_filter(&plain), &company()).suspicious);
    }
}
