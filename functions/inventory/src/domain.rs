//! Products and their stock. Stock is two counts, on hand and reserved (by orders in
//! flight); available is their difference and is never negative.

use serde::{Deserialize, Serialize};
use shared::catalog::Sku;
use shared::money::Money;
use shared::time::{Timestamp, rfc3339};

/// A product's display name: 1..=200 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProductName(String);

impl TryFrom<String> for ProductName {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        let name = raw.trim();
        let len = name.chars().count();
        if len == 0 || len > 200 {
            Err("must be 1 to 200 characters".into())
        } else if name.chars().any(char::is_control) {
            Err("must not contain control characters".into())
        } else {
            Ok(Self(name.to_owned()))
        }
    }
}

impl From<ProductName> for String {
    fn from(n: ProductName) -> Self {
        n.0
    }
}

impl ProductName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Units of one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Stock {
    /// Units in the warehouse.
    pub on_hand: i64,
    /// Units promised to orders that are not yet confirmed or released.
    pub reserved: i64,
    /// `on_hand - reserved`.
    pub available: i64,
}

/// Why stock cannot change as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StockError {
    /// Taking this many away would leave less on hand than is reserved.
    #[error("on hand would be {would_be}, below the {reserved} units reserved")]
    BelowReserved {
        /// On hand after the change.
        would_be: i64,
        /// Reserved units.
        reserved: i64,
    },
}

impl Stock {
    /// Stock with `on_hand` and `reserved`.
    pub fn new(on_hand: i64, reserved: i64) -> Self {
        Self {
            on_hand,
            reserved,
            available: on_hand - reserved,
        }
    }

    /// Corrects on-hand units by `delta`; never below what is reserved.
    pub fn adjust(self, delta: i64) -> Result<Self, StockError> {
        let would_be = self.on_hand.saturating_add(delta);
        if would_be < self.reserved {
            return Err(StockError::BelowReserved {
                would_be,
                reserved: self.reserved,
            });
        }
        Ok(Self::new(would_be, self.reserved))
    }
}

/// A signed stock correction: non-zero, at most a million units either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockDelta(i64);

impl TryFrom<i64> for StockDelta {
    type Error = String;
    fn try_from(d: i64) -> Result<Self, String> {
        if d == 0 {
            Err("must not be zero".into())
        } else if d.abs() > 1_000_000 {
            Err("must be between -1000000 and 1000000".into())
        } else {
            Ok(Self(d))
        }
    }
}

impl StockDelta {
    /// The signed value.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Its key.
    pub sku: Sku,
    /// Display name.
    pub name: ProductName,
    /// Price of one unit.
    pub price: Money,
    /// Units on hand.
    pub on_hand: i64,
    /// Units reserved.
    pub reserved: i64,
    /// Units available.
    pub available: i64,
    /// Optimistic-concurrency version: every write bumps it, reservations included.
    pub version: u64,
    /// Created.
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    /// Last changed.
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
}

impl Product {
    /// Its stock counts.
    pub fn stock(&self) -> Stock {
        Stock {
            on_hand: self.on_hand,
            reserved: self.reserved,
            available: self.available,
        }
    }

    /// The same product with `stock`.
    pub fn with_stock(mut self, stock: Stock) -> Self {
        self.on_hand = stock.on_hand;
        self.reserved = stock.reserved;
        self.available = stock.available;
        self
    }
}

/// A product as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductView {
    /// Its key.
    pub sku: Sku,
    /// Display name.
    pub name: ProductName,
    /// Price of one unit.
    pub price: Money,
    /// On hand, reserved, available.
    pub stock: Stock,
    /// Last changed.
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
}

impl From<&Product> for ProductView {
    fn from(p: &Product) -> Self {
        Self {
            sku: p.sku.clone(),
            name: p.name.clone(),
            price: p.price,
            stock: p.stock(),
            updated_at: p.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_never_goes_below_reserved() {
        let s = Stock::new(10, 4);
        assert_eq!(s.available, 6);
        assert_eq!(s.adjust(-6).unwrap(), Stock::new(4, 4));
        assert_eq!(
            s.adjust(-7),
            Err(StockError::BelowReserved {
                would_be: 3,
                reserved: 4
            })
        );
        assert_eq!(s.adjust(5).unwrap().available, 11);
    }

    #[test]
    fn deltas_are_nonzero_and_bounded() {
        assert!(StockDelta::try_from(0).is_err());
        assert!(StockDelta::try_from(1_000_001).is_err());
        assert!(StockDelta::try_from(-1_000_001).is_err());
        assert_eq!(StockDelta::try_from(-25).unwrap().get(), -25);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            ProductName::try_from("  Mug ".to_owned()).unwrap().as_str(),
            "Mug"
        );
        assert!(ProductName::try_from(String::new()).is_err());
        assert!(ProductName::try_from("x".repeat(201)).is_err());
    }
}
