//! The ids every service speaks: an order's, a user's and a product's (`Sku`, in
//! `catalog`). Each is a newtype that can only be built valid (`TryFrom<String>`, which serde
//! uses too), so an id that reached a handler, a step or a consumer was checked once, where
//! it came in, and a function cannot pass a user id where an order id belongs.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub use crate::catalog::{InvalidSku, Sku};

/// Why an id was refused; the message is what a client sees next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidId(pub &'static str);

/// An order's id: a ULID as the orders service writes it when the order is placed (26
/// characters of Crockford's base 32, upper case), so ids sort by the time they were made.
/// Only that canonical text is an order id: a lower-case spelling names no order.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "OrderIdSchema")]
pub struct OrderId(String);

/// The schema of an order id in event and step documents.
#[derive(schemars::JsonSchema)]
#[schemars(rename = "OrderId")]
#[allow(dead_code)]
struct OrderIdSchema(#[schemars(regex(pattern = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"))] String);

impl OrderId {
    /// A new id, for an order placed now.
    #[must_use]
    pub fn new() -> Self {
        Self(ulid::Ulid::new().to_string())
    }

    /// The id as text (the key of the order's items).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for OrderId {
    fn default() -> Self {
        Self::new()
    }
}

impl TryFrom<String> for OrderId {
    type Error = InvalidId;
    fn try_from(raw: String) -> Result<Self, InvalidId> {
        if ulid::Ulid::from_string(&raw).is_ok_and(|u| u.to_string() == raw) {
            Ok(Self(raw))
        } else {
            Err(InvalidId("must be an order id (a ULID of 26 characters)"))
        }
    }
}

/// The id of a user: the identity provider's `sub`. Cognito issues UUIDs, the local
/// authorizer anything; 1 to 128 characters of `[A-Za-z0-9_-]` are accepted.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "UserIdSchema")]
pub struct UserId(String);

/// The schema of a user id in event and step documents.
#[derive(schemars::JsonSchema)]
#[schemars(rename = "UserId")]
#[allow(dead_code)]
struct UserIdSchema(#[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,128}$"))] String);

impl UserId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = InvalidId;
    fn try_from(raw: String) -> Result<Self, InvalidId> {
        let ok = (1..=128).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw))
        } else {
            Err(InvalidId(
                "must be 1 to 128 characters of letters, digits, '-' or '_'",
            ))
        }
    }
}

macro_rules! text_id {
    ($($id:ident),*) => {$(
        impl From<$id> for String {
            fn from(id: $id) -> Self {
                id.0
            }
        }

        impl FromStr for $id {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::try_from(s.to_owned())
            }
        }

        // Read-only access to the text, so an id goes wherever a `&str` does (a key, a log
        // field, a path) without giving a way to build one unchecked.
        impl std::ops::Deref for $id {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $id {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $id {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $id {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Display for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

text_id!(OrderId, UserId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_are_ulids() {
        let made = OrderId::new();
        assert_eq!(made.as_str().len(), 26);
        assert_eq!(OrderId::try_from(made.to_string()), Ok(made));
        for bad in [
            "",
            "not-a-ulid",
            "01ARZ3NDEKTSV4RRFFQ69G5FA",
            "01ARZ3NDEKTSV4RRFFQ69G5FAVX",
            "01arz3ndektsv4rrffq69g5fav",
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",
        ] {
            assert!(OrderId::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_ids_are_provider_subjects() {
        for good in [
            "u1",
            "3f2b7c1e-0d4a-4c7e-9b1a-6e2f0c9d8a7b",
            "a_b",
            &"x".repeat(128),
        ] {
            assert!(UserId::try_from(good.to_owned()).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(129)] {
            assert!(UserId::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_checked_when_a_document_is_read() {
        #[derive(Deserialize)]
        struct Doc {
            #[allow(dead_code)]
            order_id: OrderId,
        }
        assert!(
            serde_json::from_str::<Doc>(r#"{"order_id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}"#).is_ok()
        );
        let refused = serde_json::from_str::<Doc>(r#"{"order_id":"x"}"#);
        assert!(refused.is_err_and(|e| e.to_string().contains("order id")));
        let id: OrderId = "01ARZ3NDEKTSV4RRFFQ69G5FAV".parse().unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            r#""01ARZ3NDEKTSV4RRFFQ69G5FAV""#
        );
    }
}
