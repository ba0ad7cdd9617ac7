//! The directory the mock serves: provider-neutral users, groups and apps that each provider
//! renders in its own wire format.

use std::collections::HashSet;
use std::ops::Range;

use serde::{Deserialize, Serialize};

/// An account's state in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    Active,
    Suspended,
    Archived,
    Deprovisioned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The provider's immutable id.
    pub id: String,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub is_admin: bool,
    #[serde(default)]
    pub mfa_enrolled: bool,
    #[serde(default = "active")]
    pub state: AccountState,
    /// A Microsoft guest (`#EXT#` user principal name, `userType: Guest`).
    #[serde(default)]
    pub guest: bool,
    /// False for accounts without a mailbox (Graph `mail` is null).
    #[serde(default = "yes")]
    pub has_mailbox: bool,
    /// Okta's `lastUpdated` (RFC 3339). `None` renders a fixed time.
    #[serde(default)]
    pub last_updated: Option<String>,
    /// Third-party apps the user granted OAuth access to.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Inbox rules (Graph) or filters (Gmail).
    #[serde(default)]
    pub mail_rules: Vec<MailRule>,
}

impl User {
    /// Returns whether `address` is the user's primary address or an alias, ignoring ASCII case.
    pub fn has_address(&self, address: &str) -> bool {
        self.email.eq_ignore_ascii_case(address)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(address))
    }
}

/// The scope URI prefix of Microsoft Graph permissions.
const GRAPH_RESOURCE: &str = "https://graph.microsoft.com/";

/// A user's OAuth consent to a third-party app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The app's OAuth client id (a Microsoft application id or a Google client id).
    pub client_id: String,
    pub app_name: String,
    /// Scopes of both providers, so that one generated directory serves both. Graph lists the
    /// scopes under `https://graph.microsoft.com/` by their short name, plus those without a
    /// URI (`openid`, `email`). Google lists every scope not under `https://graph.microsoft.com/`.
    pub scopes: Vec<String>,
}

impl Grant {
    /// Returns the scopes Microsoft Graph lists for this grant, by short name.
    pub fn graph_scopes(&self) -> Vec<&str> {
        self.scopes
            .iter()
            .filter_map(|scope| match scope.strip_prefix(GRAPH_RESOURCE) {
                Some(short) => Some(short),
                None if !scope.contains("://") => Some(scope.as_str()),
                None => None,
            })
            .collect()
    }

    /// Returns the scopes Google lists for this grant.
    pub fn google_scopes(&self) -> Vec<&str> {
        self.scopes
            .iter()
            .filter(|scope| !scope.starts_with(GRAPH_RESOURCE))
            .map(String::as_str)
            .collect()
    }
}

/// A mailbox rule that applies to every incoming message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailRule {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub forward_to: Vec<String>,
    /// Graph only, since Gmail filters have no redirect action.
    #[serde(default)]
    pub redirect_to: Vec<String>,
    #[serde(default)]
    pub delete: bool,
    #[serde(default)]
    pub mark_read: bool,
    /// The folder (Graph) or label (Gmail) that messages move to, out of the inbox.
    #[serde(default)]
    pub move_to_folder: Option<String>,
}

/// A group of users and, on Microsoft and Google, of other groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    /// `None` renders a Graph security group. Google groups always have an address, so Google
    /// derives one from the name.
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// User ids.
    #[serde(default)]
    pub members: Vec<String>,
    /// Ids of nested groups. Okta has no nested groups and ignores them.
    #[serde(default)]
    pub member_groups: Vec<String>,
}

/// An Okta single sign-on app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub id: String,
    pub label: String,
    /// Okta's `signOnMode`: `SAML_2_0`, `OPENID_CONNECT`, `BOOKMARK` and so on.
    pub sign_on_mode: String,
    /// Ids of the users assigned to the app.
    #[serde(default)]
    pub assigned: Vec<String>,
}

fn active() -> AccountState {
    AccountState::Active
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    pub domain: String,
    pub users: Vec<User>,
    #[serde(default)]
    pub groups: Vec<Group>,
    #[serde(default)]
    pub apps: Vec<App>,
}

impl Directory {
    /// Generates `size` users in `domain`, deterministically from `seed`. Every 25th is an
    /// administrator, every 40th suspended, every 97th archived, every 53rd deprovisioned, every
    /// 31st a guest and every 45th without a mailbox. A third lack MFA. Every 20th user has
    /// granted OAuth access to a third-party app, every 150th forwards all mail outside the
    /// domain and every 60th files mail into a folder.
    ///
    /// Groups number one per 50 users (at least 2): user `n` is a member of group `n % groups`,
    /// and group 1 is nested in group 0. Eight apps are generated for Okta, and app `a` is
    /// assigned to every user whose index is a multiple of `a + 2`.
    pub fn generate(domain: &str, size: usize, seed: u64) -> Self {
        let users: Vec<User> = (0..size).map(|n| generate_user(domain, n, seed)).collect();
        let groups = generate_groups(domain, &users, seed);
        let apps = generate_apps(&users, seed);
        Self {
            domain: domain.to_owned(),
            users,
            groups,
            apps,
        }
    }

    /// Generates the people numbered `people` of one organisation in `domain`, as `style`'s
    /// provider lists them. A number gives the same person (name, email, state, grants and
    /// mailbox rules) in every provider, so directories with overlapping ranges share people,
    /// as companies that run two providers do. Ids follow the provider's format, and only
    /// Microsoft has guests.
    pub fn organisation(domain: &str, people: Range<usize>, seed: u64, style: IdStyle) -> Self {
        let users: Vec<User> = people
            .map(|n| {
                let mut user = generate_user(domain, n, seed);
                user.id = style.user_id(n, seed);
                if style != IdStyle::Microsoft {
                    user.guest = false;
                }
                user
            })
            .collect();
        let group_seed = seed.wrapping_add(style as u64 + 1);
        let groups = generate_groups(domain, &users, group_seed);
        let apps = generate_apps(&users, group_seed);
        Self {
            domain: domain.to_owned(),
            users,
            groups,
            apps,
        }
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    pub fn app(&self, id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.id == id)
    }

    /// Returns the users whose ids are in `ids`, in directory order. Ids of users not in the
    /// directory are skipped.
    pub fn users_among(&self, ids: &[String]) -> Vec<&User> {
        let ids: HashSet<&str> = ids.iter().map(String::as_str).collect();
        self.users
            .iter()
            .filter(|u| ids.contains(u.id.as_str()))
            .collect()
    }
}

/// The user id format of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdStyle {
    /// A GUID, as Microsoft Entra object ids are.
    Microsoft,
    /// 21 decimal digits, as Google Workspace user ids are.
    Google,
    /// `00u` and 17 letters and digits, as Okta user ids are.
    Okta,
}

impl IdStyle {
    fn user_id(self, n: usize, seed: u64) -> String {
        let hash = stable_hash(&format!("{seed}:{n}"));
        match self {
            IdStyle::Microsoft => format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                seed as u32,
                n % 0xffff,
                n % 0xfff,
                (n / 7) % 0xfff,
                n
            ),
            IdStyle::Google => format!("1{:019}{}", hash % 10u64.pow(19), n % 10),
            IdStyle::Okta => {
                const ALPHABET: &[u8] =
                    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
                let mut value = hash ^ ((n as u64) << 40);
                let mut id = String::from("00u");
                for _ in 0..17 {
                    id.push(ALPHABET[(value % 62) as usize] as char);
                    value = (value / 62).wrapping_add(hash.rotate_left(7));
                }
                id
            }
        }
    }
}

fn generate_user(domain: &str, n: usize, seed: u64) -> User {
    const GIVEN: [&str; 12] = [
        "Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances",
        "Edsger", "Radia", "Tim",
    ];
    const FAMILY: [&str; 12] = [
        "Lovelace",
        "Hopper",
        "Turing",
        "Torvalds",
        "Hamilton",
        "Thompson",
        "Liskov",
        "Ritchie",
        "Allen",
        "Dijkstra",
        "Perlman",
        "Berners-Lee",
    ];
    let mix = (n as u64)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(seed);
    let given = GIVEN[(mix % 12) as usize];
    let family = FAMILY[((mix / 12) % 12) as usize];
    let local = format!(
        "{}.{}{n}",
        given.to_lowercase(),
        family.to_lowercase().replace('-', "")
    );
    let state = if n % 53 == 52 {
        AccountState::Deprovisioned
    } else if n % 97 == 96 {
        AccountState::Archived
    } else if n % 40 == 39 {
        AccountState::Suspended
    } else {
        AccountState::Active
    };
    User {
        id: format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            seed as u32,
            n % 0xffff,
            n % 0xfff,
            (n / 7) % 0xfff,
            n
        ),
        email: format!("{local}@{domain}"),
        given_name: given.to_owned(),
        family_name: family.to_owned(),
        aliases: if n.is_multiple_of(10) {
            vec![format!("{}{n}@{domain}", given.to_lowercase())]
        } else {
            Vec::new()
        },
        is_admin: n.is_multiple_of(25),
        mfa_enrolled: !n.is_multiple_of(3),
        state,
        guest: n % 31 == 30,
        has_mailbox: n % 45 != 44,
        last_updated: None,
        grants: generate_grants(n),
        mail_rules: generate_mail_rules(n, &local),
    }
}

/// Third-party apps that generated users grant access to: name, client id and scopes of both
/// providers.
const THIRD_PARTY_APPS: [(&str, &str, &[&str]); 4] = [
    (
        "Meeting Scheduler",
        "3f8a1c52-7d4e-4b9a-9c21-5e6f7a8b9c01",
        &[
            "openid",
            "email",
            "https://www.googleapis.com/auth/calendar",
            "https://graph.microsoft.com/Calendars.ReadWrite",
        ],
    ),
    (
        "Mail Merge",
        "8b2d4f60-1a3c-4e5f-8a7b-9c0d1e2f3a4b",
        &[
            "https://mail.google.com/",
            "https://graph.microsoft.com/Mail.ReadWrite",
            "https://graph.microsoft.com/Mail.Send",
        ],
    ),
    (
        "Diagram Editor",
        "c5e7a9b1-2d3f-4a5b-9c6d-7e8f9a0b1c2d",
        &[
            "https://www.googleapis.com/auth/drive.file",
            "https://graph.microsoft.com/Files.ReadWrite",
        ],
    ),
    (
        "Contact Sync",
        "1d3f5a7c-9e0b-4c2d-8e4f-6a8b0c2d4e6f",
        &[
            "https://www.googleapis.com/auth/contacts.readonly",
            "https://graph.microsoft.com/Contacts.Read",
        ],
    ),
];

/// Generates one grant for every 20th user, and a second one for every 60th.
fn generate_grants(n: usize) -> Vec<Grant> {
    if !n.is_multiple_of(20) {
        return Vec::new();
    }
    let count = if n.is_multiple_of(60) { 2 } else { 1 };
    (0..count)
        .map(|k| {
            let (name, client_id, scopes) = THIRD_PARTY_APPS[(n / 20 + k) % THIRD_PARTY_APPS.len()];
            Grant {
                client_id: client_id.to_owned(),
                app_name: name.to_owned(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            }
        })
        .collect()
}

fn generate_mail_rules(n: usize, local: &str) -> Vec<MailRule> {
    let mut rules = Vec::new();
    if n % 150 == 149 {
        rules.push(MailRule {
            id: rule_id(n, 1),
            name: "Forward to personal address".to_owned(),
            forward_to: vec![format!("{local}@personal-mail.example")],
            redirect_to: Vec::new(),
            delete: false,
            mark_read: false,
            move_to_folder: None,
        });
    }
    if n % 60 == 59 {
        rules.push(MailRule {
            id: rule_id(n, 2),
            name: "Newsletters".to_owned(),
            forward_to: Vec::new(),
            redirect_to: Vec::new(),
            delete: false,
            mark_read: true,
            move_to_folder: Some("Newsletters".to_owned()),
        });
    }
    rules
}

/// Builds an id shaped like Exchange's base64 rule ids (`AQAAAJ5dZp8=`).
fn rule_id(n: usize, rule: u8) -> String {
    let mut bytes = vec![1, 0, 0, 0, rule];
    bytes.extend_from_slice(&(n as u32).to_be_bytes());
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
}

fn generate_groups(domain: &str, users: &[User], seed: u64) -> Vec<Group> {
    const NAMES: [&str; 10] = [
        "Engineering",
        "Sales",
        "Finance",
        "Marketing",
        "Support",
        "Legal",
        "People",
        "Operations",
        "Design",
        "Security",
    ];
    let count = (users.len() / 50).max(2);
    let mut groups: Vec<Group> = (0..count)
        .map(|g| {
            let mut name = NAMES[g % NAMES.len()].to_owned();
            if g >= NAMES.len() {
                name.push_str(&format!(" {}", g / NAMES.len() + 1));
            }
            let slug = name.to_lowercase().replace(' ', "-");
            Group {
                id: format!(
                    "{:08x}-{:04x}-4{:03x}-9000-{:012x}",
                    seed as u32,
                    g % 0xffff,
                    g % 0xfff,
                    g
                ),
                // Every third group is a security group without an address.
                email: (g % 3 != 2).then(|| format!("{slug}@{domain}")),
                description: Some(format!("Everyone in {name}")),
                name,
                members: users
                    .iter()
                    .enumerate()
                    .filter(|(n, _)| n % count == g)
                    .map(|(_, u)| u.id.clone())
                    .collect(),
                member_groups: Vec::new(),
            }
        })
        .collect();
    let nested = groups[1].id.clone();
    groups[0].member_groups.push(nested);
    groups
}

fn generate_apps(users: &[User], seed: u64) -> Vec<App> {
    const APPS: [(&str, &str); 8] = [
        ("Salesforce", "SAML_2_0"),
        ("Slack", "SAML_2_0"),
        ("Zoom", "SAML_2_0"),
        ("GitHub Enterprise Cloud", "SAML_2_0"),
        ("Atlassian Cloud", "SAML_2_0"),
        ("Workday", "SAML_2_0"),
        ("Rollcall", "OPENID_CONNECT"),
        ("Expense Reports", "BOOKMARK"),
    ];
    APPS.iter()
        .enumerate()
        .map(|(a, (label, mode))| App {
            id: format!("0oa{:05x}{a:012x}", seed & 0xfffff),
            label: (*label).to_owned(),
            sign_on_mode: (*mode).to_owned(),
            assigned: users
                .iter()
                .enumerate()
                .filter(|(n, _)| n % (a + 2) == 0)
                .map(|(_, u)| u.id.clone())
                .collect(),
        })
        .collect()
}

/// Hashes `text` with 64-bit FNV-1a, for ids that must stay the same from run to run.
pub(crate) fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisation_shares_people_across_providers() {
        let microsoft =
            Directory::organisation("northwind.example", 0..3_000, 7, IdStyle::Microsoft);
        let google = Directory::organisation("northwind.example", 2_000..4_500, 7, IdStyle::Google);
        let shared: HashSet<&str> = microsoft.users.iter().map(|u| u.email.as_str()).collect();
        let overlap = google
            .users
            .iter()
            .filter(|u| shared.contains(u.email.as_str()))
            .count();
        assert_eq!(overlap, 1_000);
        assert!(google.users.iter().all(|u| !u.guest));
        assert!(microsoft.users.iter().any(|u| u.guest));
    }

    #[test]
    fn organisation_ids_follow_provider_formats() {
        for style in [IdStyle::Microsoft, IdStyle::Google, IdStyle::Okta] {
            let directory = Directory::organisation("northwind.example", 0..5_000, 7, style);
            let ids: HashSet<&str> = directory.users.iter().map(|u| u.id.as_str()).collect();
            assert_eq!(ids.len(), 5_000, "{style:?} ids are unique");
            for id in ids {
                let valid = match style {
                    IdStyle::Microsoft => id.len() == 36 && id.matches('-').count() == 4,
                    IdStyle::Google => id.len() == 21 && id.bytes().all(|b| b.is_ascii_digit()),
                    IdStyle::Okta => {
                        id.len() == 20
                            && id.starts_with("00u")
                            && id.bytes().all(|b| b.is_ascii_alphanumeric())
                    }
                };
                assert!(valid, "{style:?} id {id}");
            }
        }
    }
}
