//! The directory the mock serves: provider-neutral users that each provider renders in its own
//! wire format.

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
}

impl Directory {
    /// Generates `size` users in `domain`, deterministically from `seed`. Every 25th is an
    /// administrator, every 40th suspended, every 97th archived, every 53rd deprovisioned, every
    /// 31st a guest and every 45th without a mailbox. A third lack MFA.
    pub fn generate(domain: &str, size: usize, seed: u64) -> Self {
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
        let users = (0..size)
            .map(|n| {
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
                    aliases: if n % 10 == 0 {
                        vec![format!("{}{n}@{domain}", given.to_lowercase())]
                    } else {
                        Vec::new()
                    },
                    is_admin: n % 25 == 0,
                    mfa_enrolled: n % 3 != 0,
                    state,
                    guest: n % 31 == 30,
                    has_mailbox: n % 45 != 44,
                }
            })
            .collect();
        Self {
            domain: domain.to_owned(),
            users,
        }
    }
}
