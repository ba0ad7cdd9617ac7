//! Email and domain canonicalisation.
//!
//! Every email that reaches storage, a key or a domain comparison goes through
//! [`canonical_email`]: trim, lowercase, and the domain converted to ASCII with IDNA (UTS #46).
//! One function for sync, telemetry and matching means `A@Bücher.Example` from a directory and
//! `a@xn--bcher-kva.example` from a browser are the same person.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Maximum length of a whole address (RFC 5321 path limit less the angle brackets).
const MAX_EMAIL_LEN: usize = 254;
/// Maximum length of the local part (RFC 5321).
const MAX_LOCAL_LEN: usize = 64;
/// Maximum length of a domain name in ASCII form (RFC 1035).
const MAX_DOMAIN_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// Reason an email or domain was rejected; the text is safe to return to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("is empty")]
    Empty,
    #[error("has no '@'")]
    MissingAt,
    #[error("has an empty local part")]
    EmptyLocalPart,
    #[error("local part is longer than {MAX_LOCAL_LEN} characters")]
    LocalPartTooLong,
    #[error("local part contains a character not allowed in an unquoted address")]
    InvalidLocalPart,
    #[error("has more than one '@'")]
    ExtraAt,
    #[error("is longer than {MAX_EMAIL_LEN} characters")]
    TooLong,
    #[error("has an empty domain")]
    EmptyDomain,
    #[error("domain is not a valid internationalised domain name")]
    InvalidIdna,
    #[error("domain must have at least two labels, such as example.com")]
    SingleLabelDomain,
    #[error("domain has an empty label or a label longer than {MAX_LABEL_LEN} characters")]
    InvalidLabel,
    #[error("domain contains a character that is not a letter, digit or hyphen")]
    InvalidDomainCharacter,
    #[error("domain is longer than {MAX_DOMAIN_LEN} characters")]
    DomainTooLong,
}

/// A canonical email address: trimmed, lowercase, domain in IDNA ASCII form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the canonical domain, the part after the last `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = AddressError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        canonical_email(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

/// Canonicalises and validates an email address.
///
/// The domain is the part after the last `@`. Only unquoted (dot-atom) local parts are
/// accepted: a quoted local part such as `"x@example.com"@attacker.test` is rejected, so no
/// address with a second `@` is ever stored.
pub fn canonical_email(input: &str) -> Result<Email, AddressError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(AddressError::Empty);
    }

    let (local, domain) = trimmed.rsplit_once('@').ok_or(AddressError::MissingAt)?;
    let local = local.to_lowercase();
    validate_local_part(&local)?;
    if domain.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    let domain = canonical_domain(domain)?;

    let email = format!("{local}@{domain}");
    if email.len() > MAX_EMAIL_LEN {
        return Err(AddressError::TooLong);
    }
    Ok(Email(email))
}

/// Canonicalises a domain name: trim, drop one trailing dot, IDNA (UTS #46) to lowercase ASCII,
/// then check it as a host name with at least two labels.
pub fn canonical_domain(input: &str) -> Result<String, AddressError> {
    let trimmed = input.trim();
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(AddressError::EmptyDomain);
    }

    let ascii = idna::domain_to_ascii(trimmed).map_err(|_| AddressError::InvalidIdna)?;
    if ascii.len() > MAX_DOMAIN_LEN {
        return Err(AddressError::DomainTooLong);
    }

    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(AddressError::SingleLabelDomain);
    }
    for label in &labels {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(AddressError::InvalidLabel);
        }
        let valid_chars = label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_chars || label.starts_with('-') || label.ends_with('-') {
            return Err(AddressError::InvalidDomainCharacter);
        }
    }
    Ok(ascii)
}

fn validate_local_part(local: &str) -> Result<(), AddressError> {
    if local.is_empty() {
        return Err(AddressError::EmptyLocalPart);
    }
    if local.len() > MAX_LOCAL_LEN {
        return Err(AddressError::LocalPartTooLong);
    }
    if local.contains('@') {
        return Err(AddressError::ExtraAt);
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(AddressError::InvalidLocalPart);
    }
    // RFC 5322 atext, plus non-ASCII letters for internationalised addresses (RFC 6531).
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || "!#$%&'*+-/=?^_`{|}~.".contains(c)
            || (!c.is_ascii() && c.is_alphanumeric())
    };
    if !local.chars().all(allowed) {
        return Err(AddressError::InvalidLocalPart);
    }
    Ok(())
}

/// Company domains of a tenant, matched against the canonical domain of an email.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyDomains {
    pub domains: Vec<String>,
    /// Also match subdomains, on a label boundary only (`a.example.com` for `example.com`,
    /// never `notexample.com`).
    pub include_subdomains: bool,
}

impl CompanyDomains {
    /// Returns whether `email` belongs to one of the company domains.
    pub fn contains(&self, email: &Email) -> bool {
        let domain = email.domain();
        self.domains.iter().any(|company| {
            domain == company
                || (self.include_subdomains
                    && domain
                        .strip_suffix(company.as_str())
                        .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(input: &str) -> Option<String> {
        canonical_email(input).ok().map(String::from)
    }

    #[test]
    fn email_trims_and_lowercases() {
        assert_eq!(
            canon("  Ada.Lovelace@EXAMPLE.COM \n").as_deref(),
            Some("ada.lovelace@example.com")
        );
    }

    #[test]
    fn email_domain_to_punycode() {
        assert_eq!(
            canon("Jo@Bücher.Example").as_deref(),
            Some("jo@xn--bcher-kva.example")
        );
        assert_eq!(
            canon("jo@xn--bcher-kva.example").as_deref(),
            Some("jo@xn--bcher-kva.example")
        );
    }

    #[test]
    fn email_trailing_dot_dropped() {
        assert_eq!(canon("a@example.com.").as_deref(), Some("a@example.com"));
    }

    #[test]
    fn email_rejects_non_addresses() {
        let cases = [
            ("", AddressError::Empty),
            ("   ", AddressError::Empty),
            ("example.com", AddressError::MissingAt),
            ("@example.com", AddressError::EmptyLocalPart),
            ("x@@example.com", AddressError::ExtraAt),
            ("\"x@example.com\"@attacker.test", AddressError::ExtraAt),
            ("a@", AddressError::EmptyDomain),
            ("a@localhost", AddressError::SingleLabelDomain),
            ("a@exa mple.com", AddressError::InvalidDomainCharacter),
            ("a b@example.com", AddressError::InvalidLocalPart),
            (".a@example.com", AddressError::InvalidLocalPart),
            ("a..b@example.com", AddressError::InvalidLocalPart),
            ("a@example..com", AddressError::InvalidLabel),
        ];
        for (input, expected) in cases {
            let result = canonical_email(input);
            assert!(result.is_err(), "{input:?} was accepted as {result:?}");
            assert_eq!(result.unwrap_err(), expected, "{input:?}");
        }
    }

    #[test]
    fn email_length_limits() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(
            canonical_email(&long_local),
            Err(AddressError::LocalPartTooLong)
        );
        let long_label = format!("a@{}.com", "b".repeat(64));
        assert!(canonical_email(&long_label).is_err());
    }

    #[test]
    fn company_domains_exact_match() {
        let company = CompanyDomains {
            domains: vec!["example.com".into()],
            include_subdomains: false,
        };
        let cases = [
            ("eve@notexample.com", false),
            ("boss@example.com.attacker.test", false),
            ("d@example.co", false),
            ("a@EXAMPLE.COM", true),
            ("b@sub.example.com", false),
        ];
        for (input, expected) in cases {
            let email = canonical_email(input).expect(input);
            assert_eq!(company.contains(&email), expected, "{input}");
        }
    }

    #[test]
    fn company_subdomains_on_label_boundary() {
        let company = CompanyDomains {
            domains: vec!["example.com".into()],
            include_subdomains: true,
        };
        let cases = [
            ("b@sub.example.com", true),
            ("b@deep.sub.example.com", true),
            ("eve@notexample.com", false),
            ("a@example.com", true),
            ("boss@example.com.attacker.test", false),
        ];
        for (input, expected) in cases {
            let email = canonical_email(input).expect(input);
            assert_eq!(company.contains(&email), expected, "{input}");
        }
    }

    #[test]
    fn company_domain_idn_both_forms() {
        let company = CompanyDomains {
            domains: vec![canonical_domain("bücher.example").unwrap()],
            include_subdomains: false,
        };
        for input in [
            "leo@bücher.example",
            "leo@xn--bcher-kva.example",
            "LEO@BÜCHER.EXAMPLE.",
        ] {
            let email = canonical_email(input).expect(input);
            assert!(company.contains(&email), "{input}");
        }
    }
}
