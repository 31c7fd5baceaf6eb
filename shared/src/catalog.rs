//! Values both inventory and orders speak: the stock-keeping unit.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A stock-keeping unit: `[A-Z0-9-]{3,32}`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "SkuSchema")]
pub struct Sku(String);

/// The schema of a SKU in event documents.
#[derive(schemars::JsonSchema)]
#[schemars(rename = "Sku")]
#[allow(dead_code)]
struct SkuSchema(#[schemars(regex(pattern = r"^[A-Z0-9-]{3,32}$"))] String);

/// Why a SKU was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 3 to 32 characters of A-Z, 0-9 and '-'")]
pub struct InvalidSku;

impl TryFrom<String> for Sku {
    type Error = InvalidSku;
    fn try_from(raw: String) -> Result<Self, InvalidSku> {
        let ok = (3..=32).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
        if ok { Ok(Self(raw)) } else { Err(InvalidSku) }
    }
}

impl From<Sku> for String {
    fn from(s: Sku) -> Self {
        s.0
    }
}

impl Sku {
    /// The SKU as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_follow_the_api_pattern() {
        for good in ["ABC", "TSHIRT-RED-XL", "A1-2", &"X".repeat(32)] {
            assert!(Sku::try_from(good.to_owned()).is_ok(), "{good}");
        }
        for bad in ["AB", "abc", "A_B", "ÄBC", "A B", &"X".repeat(33)] {
            assert!(Sku::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }
}
