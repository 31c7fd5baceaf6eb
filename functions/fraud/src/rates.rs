//! Amounts in one reference currency. The scorer compares amounts only after converting
//! them with a versioned rates table (`functions/fraud/model/rates.json`, its date and
//! source in the file), so 10,000 JPY weighs what 62 EUR weighs and 9,999 KWD what 31,000
//! EUR weighs. The table is compiled in: a scorer and the rates it used are one release.

use serde::Deserialize;
use shared::money::Money;
use std::collections::HashMap;
use std::sync::LazyLock;

/// The rates table as the file holds it.
#[derive(Debug, Clone, Deserialize)]
pub struct Rates {
    /// Recorded with every assessment, so a decision can be traced to the rates it used.
    pub version: String,
    /// The day the figures approximate.
    pub as_of: String,
    /// The currency amounts are converted to.
    pub reference: String,
    /// Units of each currency that one unit of the reference buys.
    per_reference: HashMap<String, f64>,
}

/// Why an amount cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no rate for {0} in the rates table")]
pub struct NoRate(pub &'static str);

/// The table compiled into this release, read once; `fraud-score` reads it at cold start,
/// so a broken file fails the init with its reason (and a unit test fails before that).
pub fn compiled() -> Result<&'static Rates, String> {
    static RATES: LazyLock<Result<Rates, String>> = LazyLock::new(|| {
        Rates::parse(include_str!("../model/rates.json"))
            .map_err(|e| format!("functions/fraud/model/rates.json: {e}"))
    });
    RATES.as_ref().map_err(Clone::clone)
}

impl Rates {
    /// Reads a table, refusing one without its reference or with a rate that is not a
    /// positive finite number.
    pub fn parse(json: &str) -> Result<Self, String> {
        let rates: Self = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if rates.per_reference.get(&rates.reference) != Some(&1.0) {
            return Err(format!("the reference {} must be 1", rates.reference));
        }
        if let Some((code, rate)) = rates
            .per_reference
            .iter()
            .find(|(_, r)| !(r.is_finite() && **r > 0.0))
        {
            return Err(format!("{code}: {rate} is not a rate"));
        }
        Ok(rates)
    }

    /// `amount` in the reference currency's major units (euros).
    pub fn to_reference(&self, amount: &Money) -> Result<f64, NoRate> {
        let currency = amount.currency();
        let rate = self
            .per_reference
            .get(currency.code())
            .ok_or(NoRate(currency.code()))?;
        let major = amount.minor() as f64 / 10f64.powi(i32::from(currency.minor_units()));
        Ok(major / rate)
    }

    /// The currencies the table converts.
    pub fn currencies(&self) -> impl Iterator<Item = &str> {
        self.per_reference.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static RATES: LazyLock<&'static Rates> = LazyLock::new(|| compiled().unwrap());

    fn eur(amount: &str, currency: &str) -> f64 {
        RATES
            .to_reference(&Money::parse(amount, currency).unwrap())
            .unwrap()
    }

    #[test]
    fn the_table_is_versioned_and_every_code_is_a_currency() {
        assert_eq!(RATES.reference, "EUR");
        assert!(RATES.version.starts_with("rates-") && !RATES.as_of.is_empty());
        for code in RATES.currencies() {
            assert!(
                shared::money::Currency::from_code(code).is_some(),
                "{code} is not an ISO 4217 currency the API accepts"
            );
        }
    }

    #[test]
    fn amounts_convert_by_their_own_minor_units() {
        assert!((eur("100.00", "EUR") - 100.0).abs() < 1e-9);
        // 10,000 JPY is about 62 EUR, not "10,000".
        assert!((eur("10000", "JPY") - 61.73).abs() < 0.01);
        // KWD has three minor units: 9,999.000 KWD is about 31,000 EUR.
        assert!((eur("9999.000", "KWD") - 31_246.9).abs() < 0.1);
        // The same value in three currencies is the same number of euros.
        let (a, b, c) = (
            eur("100.00", "EUR"),
            eur("16200", "JPY"),
            eur("32.000", "KWD"),
        );
        assert!((a - b).abs() < 1e-9 && (a - c).abs() < 1e-9, "{a} {b} {c}");
    }

    #[test]
    fn a_currency_without_a_rate_is_named() {
        let amount = Money::parse("10.00", "MNT").unwrap();
        assert_eq!(RATES.to_reference(&amount), Err(NoRate("MNT")));
    }

    #[test]
    fn a_table_without_its_reference_or_with_a_bad_rate_is_refused() {
        let table = |rates: &str| {
            format!(r#"{{"version":"v","as_of":"d","reference":"EUR","per_reference":{rates}}}"#)
        };
        assert!(Rates::parse(&table(r#"{"EUR":1,"USD":1.1}"#)).is_ok());
        assert!(Rates::parse(&table(r#"{"USD":1.1}"#)).is_err());
        assert!(Rates::parse(&table(r#"{"EUR":1,"USD":0}"#)).is_err());
        assert!(Rates::parse(&table(r#"{"EUR":1,"USD":-2}"#)).is_err());
    }
}
