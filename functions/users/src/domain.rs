//! The user profile and the values it is made of. Each value is a newtype that can only
//! be built through `TryFrom`, so an invalid email or country never gets past the edge.

use serde::{Deserialize, Serialize};
use shared::time::{Timestamp, rfc3339};

/// Why a value was refused; the message is what the client sees next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// The id of a user, as every service speaks it.
pub use shared::ids::UserId;

/// An email address, with its domain lower-cased. The check is the one mail systems
/// agree on (one `@`, a dotted domain of valid labels, no spaces, RFC 5321 lengths);
/// ownership is proven by the identity provider, not by syntax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl TryFrom<String> for Email {
    type Error = Invalid;
    fn try_from(raw: String) -> Result<Self, Invalid> {
        let bad = || Invalid("must be an email address such as ada@example.com".into());
        let raw = raw.trim();
        if raw.len() > 254 {
            return Err(Invalid("must be at most 254 characters".into()));
        }
        let (local, domain) = raw.rsplit_once('@').ok_or_else(bad)?;
        let local_ok = (1..=64).contains(&local.len())
            && !local.contains('@')
            && local.bytes().all(|b| b.is_ascii_graphic());
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                (1..=63).contains(&l.len())
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
        if local_ok && domain_ok {
            Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
        } else {
            Err(bad())
        }
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

/// A display name: 1..=100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(String);

impl TryFrom<String> for UserName {
    type Error = Invalid;
    fn try_from(raw: String) -> Result<Self, Invalid> {
        let name = raw.trim();
        let len = name.chars().count();
        if len == 0 {
            Err(Invalid("must not be empty".into()))
        } else if len > 100 {
            Err(Invalid("must be at most 100 characters".into()))
        } else if name.chars().any(char::is_control) {
            Err(Invalid("must not contain control characters".into()))
        } else {
            Ok(Self(name.to_owned()))
        }
    }
}

impl From<UserName> for String {
    fn from(n: UserName) -> Self {
        n.0
    }
}

pub use shared::country::CountryCode;

/// A customer profile as stored and as returned by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The identity provider's `sub`.
    pub user_id: UserId,
    /// Where the customer is reached.
    pub email: Email,
    /// How the customer is addressed.
    pub name: UserName,
    /// Country of residence (tax and shipping rules depend on it).
    pub country: CountryCode,
    /// When the profile was created.
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    /// When the profile last changed.
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
}

/// A validated change to a profile: at least one field present.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserChanges {
    /// New email, if changing.
    pub email: Option<Email>,
    /// New name, if changing.
    pub name: Option<UserName>,
    /// New country, if changing.
    pub country: Option<CountryCode>,
}

impl UserChanges {
    /// Applies the changes to `user` as of `now`; what the store does atomically.
    pub fn apply(&self, mut user: User, now: Timestamp) -> User {
        if let Some(e) = &self.email {
            user.email = e.clone();
        }
        if let Some(n) = &self.name {
            user.name = n.clone();
        }
        if let Some(c) = self.country {
            user.country = c;
        }
        user.updated_at = now;
        user
    }
}

/// Published when a customer registers. It carries no personal data: the bus archive
/// keeps events for replay, and erasure must not have to rewrite the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRegistered {
    /// The new user's id.
    pub user_id: UserId,
    /// Country of residence, for per-market analytics.
    pub country: CountryCode,
    /// When the profile was created.
    #[serde(with = "rfc3339")]
    pub registered_at: Timestamp,
}

/// Published when a customer's profile is erased; consumers drop what they keep of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserDeleted {
    /// The erased user's id.
    pub user_id: UserId,
    /// When the profile was erased.
    #[serde(with = "rfc3339")]
    pub deleted_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> Result<Email, Invalid> {
        Email::try_from(s.to_owned())
    }

    #[test]
    fn emails_are_accepted_with_lowercased_domain() {
        assert_eq!(
            String::from(email("Ada.Lovelace+shop@Example.COM").unwrap()),
            "Ada.Lovelace+shop@example.com"
        );
        assert!(email("a@b.co").is_ok());
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@example",
            "a@@example.com",
            "a b@example.com",
            "a@-x.com",
            "a@example.c0m",
            "a@exa_mple.com",
        ] {
            assert!(email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(email(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            String::from(UserName::try_from("  Ada  ".to_owned()).unwrap()),
            "Ada"
        );
        assert!(UserName::try_from("   ".to_owned()).is_err());
        assert!(UserName::try_from("x".repeat(101)).is_err());
        assert!(UserName::try_from("Ä".repeat(100)).is_ok());
        assert!(UserName::try_from("a\u{7}b".to_owned()).is_err());
    }

    #[test]
    fn user_ids_are_token_safe() {
        assert!(UserId::try_from("0f8fad5b-d9cb-469f-a165-70867728950e".to_owned()).is_ok());
        for bad in ["", "a/b", "a b", "ü"] {
            assert!(
                UserId::try_from(bad.to_owned()).is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
