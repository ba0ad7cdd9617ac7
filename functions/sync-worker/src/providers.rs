//! Each provider's listing URLs and how its pages read into provider-neutral records.
//!
//! Every request names the properties it reads (`$select`, `fields`): Graph leaves
//! `accountEnabled` and `userType` out unless selected, and a Google field mask that omitted
//! `suspended` or `archived` would hide them.

use reqwest::header::HeaderMap;
use rollcall::directory::{AccountStatus, DirectoryUser};
use rollcall::email::canonical_email;
use rollcall::integration::{IntegrationItem, Provider, ProviderEndpoints};
use serde_json::Value;
use tracing::warn;

const GRAPH_USER_FIELDS: &str =
    "id,displayName,mail,userPrincipalName,accountEnabled,userType,proxyAddresses";
const GOOGLE_USER_FIELDS: &str = "nextPageToken,users(id,primaryEmail,name/fullName,isAdmin,isEnrolledIn2Sv,suspended,archived,aliases)";

/// One entry of a user listing.
#[derive(Debug, Clone, PartialEq)]
pub enum Listed {
    User(DirectoryUser),
    /// Graph delta's `@removed` entry.
    Removed(String),
}

/// A page of a listing and where the next one is.
#[derive(Debug, Default)]
pub struct Page {
    pub entries: Vec<Value>,
    pub next: Option<String>,
    /// Graph delta: the link for the next incremental run, on the last page.
    pub delta_link: Option<String>,
}

pub struct Urls<'a> {
    pub endpoints: &'a ProviderEndpoints,
    pub integration: &'a IntegrationItem,
}

impl Urls<'_> {
    fn okta(&self) -> String {
        self.endpoints.okta(&self.integration.domain)
    }

    /// Returns the first page of the complete user listing.
    pub fn users(&self) -> String {
        match self.integration.provider {
            Provider::Microsoft => format!(
                "{}/v1.0/users?$select={GRAPH_USER_FIELDS}&$top=999",
                self.endpoints.microsoft_graph
            ),
            Provider::Google => format!(
                "{}/admin/directory/v1/users?customer=my_customer&maxResults=500&fields={GOOGLE_USER_FIELDS}",
                self.endpoints.google_admin
            ),
            Provider::Okta => format!("{}/api/v1/users?limit=200", self.okta()),
        }
    }

    /// Graph: a deltaLink for changes from now on, without listing anyone.
    pub fn latest_delta(&self) -> String {
        format!(
            "{}/v1.0/users/delta?$select={GRAPH_USER_FIELDS}&$deltatoken=latest",
            self.endpoints.microsoft_graph
        )
    }

    /// Okta: users changed since `since`, deprovisioned ones included.
    pub fn okta_updated_since(&self, since: &str) -> String {
        format!(
            "{}/api/v1/users?search=lastUpdated%20gt%20%22{since}%22&limit=200",
            self.okta()
        )
    }

    /// Okta leaves deprovisioned users out of the default listing; they are listed apart.
    pub fn okta_deprovisioned(&self) -> String {
        format!(
            "{}/api/v1/users?filter=status%20eq%20%22DEPROVISIONED%22&limit=200",
            self.okta()
        )
    }

    /// Graph: MFA registration of every user.
    pub fn registration_details(&self) -> String {
        format!(
            "{}/v1.0/reports/authenticationMethods/userRegistrationDetails?$select=id,isMfaRegistered&$top=999",
            self.endpoints.microsoft_graph
        )
    }

    pub fn groups(&self) -> String {
        match self.integration.provider {
            Provider::Microsoft => format!(
                "{}/v1.0/groups?$select=id,displayName,mail&$top=999",
                self.endpoints.microsoft_graph
            ),
            Provider::Google => format!(
                "{}/admin/directory/v1/groups?customer=my_customer&maxResults=200",
                self.endpoints.google_admin
            ),
            Provider::Okta => format!("{}/api/v1/groups?limit=200", self.okta()),
        }
    }

    pub fn members(&self, group_id: &str) -> String {
        let id = percent_encode(group_id);
        match self.integration.provider {
            Provider::Microsoft => format!(
                "{}/v1.0/groups/{id}/members?$select=id&$top=999",
                self.endpoints.microsoft_graph
            ),
            Provider::Google => format!(
                "{}/admin/directory/v1/groups/{id}/members?maxResults=200",
                self.endpoints.google_admin
            ),
            Provider::Okta => format!("{}/api/v1/groups/{id}/users?limit=200", self.okta()),
        }
    }
}

/// Percent-encodes a path segment: provider ids and Graph guest UPNs may carry `#`, `/` or `?`.
pub fn percent_encode(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'@') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Splits a response into its entries and the next page.
pub fn page(provider: Provider, body: Value, headers: &HeaderMap, collection: &str) -> Page {
    match provider {
        Provider::Microsoft => Page {
            next: body["@odata.nextLink"].as_str().map(str::to_owned),
            delta_link: body["@odata.deltaLink"].as_str().map(str::to_owned),
            entries: array(body, "value"),
        },
        Provider::Google => Page {
            next: body["nextPageToken"].as_str().map(str::to_owned),
            delta_link: None,
            entries: array(body, collection),
        },
        Provider::Okta => Page {
            next: okta_next(headers),
            delta_link: None,
            entries: match body {
                Value::Array(items) => items,
                _ => Vec::new(),
            },
        },
    }
}

fn array(mut body: Value, key: &str) -> Vec<Value> {
    match body.get_mut(key).map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

/// Returns the next page of a Google listing: the same request with `pageToken`.
pub fn google_next(first_url: &str, token: &str) -> String {
    let base = match first_url.split_once("&pageToken=") {
        Some((base, _)) => base,
        None => first_url,
    };
    format!("{base}&pageToken={}", percent_encode(token))
}

/// Okta sends the next page only as a `Link` header with `rel="next"`, one header per link.
pub fn okta_next(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("link")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find(|link| link.contains("rel=\"next\""))
        .and_then(|link| {
            let start = link.find('<')? + 1;
            let end = link.find('>')?;
            (start < end).then(|| link[start..end].to_owned())
        })
}

fn canonical(address: Option<&str>) -> Option<String> {
    address
        .and_then(|a| canonical_email(a).ok())
        .map(|e| e.as_str().to_owned())
}

fn aliases(addresses: impl Iterator<Item = String>, primary: Option<&str>) -> Vec<String> {
    let mut aliases: Vec<String> = addresses
        .filter_map(|a| canonical(Some(&a)))
        .filter(|a| Some(a.as_str()) != primary)
        .collect();
    aliases.sort();
    aliases.dedup();
    aliases
}

/// Reads one user of a provider's listing. `None` for an entry without an id.
pub fn user(provider: Provider, entry: &Value) -> Option<Listed> {
    let id = entry["id"].as_str().filter(|id| !id.is_empty())?.to_owned();
    match provider {
        Provider::Microsoft => Some(graph_user(id, entry)),
        Provider::Google => Some(Listed::User(google_user(id, entry))),
        Provider::Okta => Some(Listed::User(okta_user(id, entry))),
    }
}

fn graph_user(id: String, entry: &Value) -> Listed {
    if entry.get("@removed").is_some() {
        return Listed::Removed(id);
    }
    let upn = entry["userPrincipalName"].as_str().unwrap_or_default();
    let guest = entry["userType"].as_str() == Some("Guest") || upn.contains("#EXT#");
    // Without a mailbox `mail` is null and the user principal name is the address, except for
    // guests, whose `#EXT#` name is no address at all.
    let email = canonical(entry["mail"].as_str()).or_else(|| {
        (!upn.contains("#EXT#"))
            .then(|| canonical(Some(upn)))
            .flatten()
    });
    let proxies = entry["proxyAddresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|a| {
            a.split_once(':')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("smtp"))
                .map(|(_, address)| address.to_owned())
        });
    Listed::User(DirectoryUser {
        aliases: aliases(proxies, email.as_deref()),
        name: entry["displayName"].as_str().map(str::to_owned),
        is_admin: None,
        mfa: None,
        status: entry["accountEnabled"].as_bool().map(|enabled| {
            if enabled {
                AccountStatus::Active
            } else {
                AccountStatus::Suspended
            }
        }),
        guest,
        email,
        id,
    })
}

fn google_user(id: String, entry: &Value) -> DirectoryUser {
    let email = canonical(entry["primaryEmail"].as_str());
    let status = match (entry["archived"].as_bool(), entry["suspended"].as_bool()) {
        (Some(true), _) => Some(AccountStatus::Archived),
        (_, Some(true)) => Some(AccountStatus::Suspended),
        (Some(false), Some(false)) => Some(AccountStatus::Active),
        _ => None,
    };
    let addresses = entry["aliases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned);
    DirectoryUser {
        aliases: aliases(addresses, email.as_deref()),
        name: entry["name"]["fullName"].as_str().map(str::to_owned),
        is_admin: entry["isAdmin"].as_bool(),
        mfa: entry["isEnrolledIn2Sv"].as_bool(),
        status,
        guest: false,
        email,
        id,
    }
}

fn okta_user(id: String, entry: &Value) -> DirectoryUser {
    let profile = &entry["profile"];
    let email =
        canonical(profile["email"].as_str()).or_else(|| canonical(profile["login"].as_str()));
    let status = match entry["status"].as_str() {
        // Locked out, expired passwords and recovery are temporary: the person still works here.
        Some(
            "ACTIVE" | "LOCKED_OUT" | "PASSWORD_EXPIRED" | "RECOVERY" | "PROVISIONED" | "STAGED",
        ) => Some(AccountStatus::Active),
        Some("SUSPENDED") => Some(AccountStatus::Suspended),
        Some("DEPROVISIONED") => Some(AccountStatus::Deprovisioned),
        other => {
            warn!(provider_id = id, status = ?other, "unknown Okta user status; keeping the stored one");
            None
        }
    };
    let name = [profile["firstName"].as_str(), profile["lastName"].as_str()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let secondary = profile["secondEmail"].as_str().map(str::to_owned);
    // NOTE: Okta reports admin roles only through role assignments, which are not read, so the
    // admin flag stays unknown. MFA comes from each user's factors, read by the users phase.
    DirectoryUser {
        aliases: aliases(secondary.into_iter(), email.as_deref()),
        name: (!name.is_empty()).then_some(name),
        is_admin: None,
        mfa: None,
        status,
        guest: false,
        email,
        id,
    }
}

/// Reads a group's id and name.
pub fn group(provider: Provider, entry: &Value) -> Option<(String, String, Option<String>)> {
    let id = entry["id"].as_str().filter(|id| !id.is_empty())?.to_owned();
    let (name, email) = match provider {
        Provider::Microsoft => (entry["displayName"].as_str(), entry["mail"].as_str()),
        Provider::Google => (entry["name"].as_str(), entry["email"].as_str()),
        Provider::Okta => (entry["profile"]["name"].as_str(), None),
    };
    Some((id, name.unwrap_or_default().to_owned(), canonical(email)))
}

/// Reads a group member's id when the member is a user; nested groups are left out.
pub fn member(provider: Provider, entry: &Value) -> Option<String> {
    let is_user = match provider {
        Provider::Microsoft => entry["@odata.type"]
            .as_str()
            .is_none_or(|t| t == "#microsoft.graph.user"),
        Provider::Google => entry["type"].as_str().is_none_or(|t| t == "USER"),
        Provider::Okta => true,
    };
    is_user
        .then(|| entry["id"].as_str().map(str::to_owned))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    fn listed_user(provider: Provider, entry: Value) -> DirectoryUser {
        match user(provider, &entry) {
            Some(Listed::User(user)) => user,
            other => panic!("not a user: {other:?}"),
        }
    }

    #[test]
    fn graph_user_without_mailbox_uses_the_principal_name() {
        let user = listed_user(
            Provider::Microsoft,
            json!({"id": "u10", "userPrincipalName": "Dana@Example.com", "mail": null}),
        );
        assert_eq!(user.email.as_deref(), Some("dana@example.com"));
        assert_eq!(
            user.status, None,
            "accountEnabled absent is unknown, not false"
        );
    }

    #[test]
    fn graph_guest_principal_name_is_never_an_email() {
        let user = listed_user(
            Provider::Microsoft,
            json!({"id": "u11", "userPrincipalName": "pat_partner.example#EXT#@tenant.onmicrosoft.com", "mail": null, "userType": "Guest", "accountEnabled": true}),
        );
        assert!(user.guest);
        assert_eq!(user.email, None);
        assert_eq!(user.status, Some(AccountStatus::Active));
    }

    #[test]
    fn graph_removed_entry() {
        assert_eq!(
            user(
                Provider::Microsoft,
                &json!({"id": "u12", "@removed": {"reason": "changed"}})
            ),
            Some(Listed::Removed("u12".into()))
        );
    }

    #[test]
    fn google_suspended_and_archived() {
        let suspended = listed_user(
            Provider::Google,
            json!({"id": "g11", "primaryEmail": "lou@example.com", "suspended": true, "archived": false}),
        );
        assert_eq!(suspended.status, Some(AccountStatus::Suspended));
        let archived = listed_user(
            Provider::Google,
            json!({"id": "g12", "primaryEmail": "max@example.com", "suspended": false, "archived": true}),
        );
        assert_eq!(archived.status, Some(AccountStatus::Archived));
    }

    #[test]
    fn okta_statuses() {
        for (status, expected) in [
            ("ACTIVE", Some(AccountStatus::Active)),
            ("LOCKED_OUT", Some(AccountStatus::Active)),
            ("PASSWORD_EXPIRED", Some(AccountStatus::Active)),
            ("RECOVERY", Some(AccountStatus::Active)),
            ("SUSPENDED", Some(AccountStatus::Suspended)),
            ("DEPROVISIONED", Some(AccountStatus::Deprovisioned)),
            ("SOMETHING_NEW", None),
        ] {
            let user = listed_user(
                Provider::Okta,
                json!({"id": "o1", "status": status, "profile": {"email": "a@example.com"}}),
            );
            assert_eq!(user.status, expected, "{status}");
        }
    }

    #[test]
    fn okta_next_link_among_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append(
            "link",
            HeaderValue::from_static(
                "<https://acme.okta.com/api/v1/users?limit=200>; rel=\"self\"",
            ),
        );
        headers.append(
            "link",
            HeaderValue::from_static(
                "<https://acme.okta.com/api/v1/users?after=x&limit=200>; rel=\"next\"",
            ),
        );
        assert_eq!(
            okta_next(&headers).as_deref(),
            Some("https://acme.okta.com/api/v1/users?after=x&limit=200")
        );
        assert_eq!(okta_next(&HeaderMap::new()), None);
    }

    #[test]
    fn guest_principal_names_are_encoded_in_paths() {
        assert_eq!(
            percent_encode("pat_partner.example#EXT#@tenant.onmicrosoft.com"),
            "pat_partner.example%23EXT%23@tenant.onmicrosoft.com"
        );
    }
}
