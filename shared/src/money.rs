//! Money as the API and the stores carry it: an exact amount in a currency's minor units,
//! shown as `{"amount": "12.50", "currency": "EUR"}`. Never a float.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Active ISO 4217 currencies and their minor units (exponent). Funds and precious-metal
/// codes are left out: nothing here is priced in them.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYU", 2),
    ("UZS", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// Largest amount we accept, in minor units: far above any order, far below overflow.
const MAX_MINOR: i64 = 1_000_000_000_000;

/// An ISO 4217 currency we price in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    minor_units: u8,
}

impl Currency {
    /// Looks a code up; `None` for anything not an active ISO 4217 code.
    pub fn from_code(code: &str) -> Option<Self> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(c, m)| Self {
                code: c,
                minor_units: *m,
            })
    }

    /// The three-letter code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Digits after the decimal point (2 for EUR, 0 for JPY, 3 for KWD).
    pub fn minor_units(&self) -> u8 {
        self.minor_units
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// Why an amount was refused; the message is what the client sees for the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not an ISO 4217 code we price in.
    #[error("must be an ISO 4217 currency code such as EUR")]
    UnknownCurrency,
    /// Not a plain decimal number.
    #[error("must be a decimal string such as \"12.50\"")]
    NotADecimal,
    /// More decimals than the currency has.
    #[error("{currency} has {digits} decimal places at most")]
    TooPrecise {
        /// The currency.
        currency: &'static str,
        /// Its minor units.
        digits: u8,
    },
    /// Negative.
    #[error("must not be negative")]
    Negative,
    /// Beyond what any price or order can reach.
    #[error("is too large")]
    TooLarge,
    /// Two amounts in different currencies were combined.
    #[error("cannot combine {0} and {1}")]
    CurrencyMismatch(&'static str, &'static str),
}

/// A non-negative amount of money, exact, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// Parses the API form. Fewer decimals than the currency has are fine (`"12.5"` EUR
    /// is 12.50); more are refused rather than rounded.
    pub fn parse(amount: &str, currency: &str) -> Result<Self, MoneyError> {
        let currency = Currency::from_code(currency).ok_or(MoneyError::UnknownCurrency)?;
        let plain = !amount.is_empty()
            && amount
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
            && !amount.starts_with('.')
            && !amount.ends_with('.');
        if !plain {
            return Err(MoneyError::NotADecimal);
        }
        // Exact: a string with more digits than a Decimal holds is refused, not rounded.
        let value = Decimal::from_str_exact(amount).map_err(|_| MoneyError::NotADecimal)?;
        if value.is_sign_negative() && !value.is_zero() {
            return Err(MoneyError::Negative);
        }
        if value.normalize().scale() > u32::from(currency.minor_units) {
            return Err(MoneyError::TooPrecise {
                currency: currency.code,
                digits: currency.minor_units,
            });
        }
        let minor = value
            .checked_mul(Decimal::from(10_i64.pow(u32::from(currency.minor_units))))
            .ok_or(MoneyError::TooLarge)?
            .trunc()
            .mantissa();
        let minor = i64::try_from(minor).map_err(|_| MoneyError::TooLarge)?;
        Self::from_minor(minor.abs(), currency)
    }

    /// An amount of `minor` units of `currency`.
    pub fn from_minor(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor < 0 {
            Err(MoneyError::Negative)
        } else if minor > MAX_MINOR {
            Err(MoneyError::TooLarge)
        } else {
            Ok(Self { minor, currency })
        }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// The amount in minor units (cents for EUR).
    pub fn minor(&self) -> i64 {
        self.minor
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// True for a zero amount.
    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }

    /// `self × quantity`, refused past the limit.
    pub fn times(&self, quantity: u32) -> Result<Self, MoneyError> {
        let minor = self
            .minor
            .checked_mul(i64::from(quantity))
            .ok_or(MoneyError::TooLarge)?;
        Self::from_minor(minor, self.currency)
    }

    /// `self + other`, in one currency only.
    pub fn plus(&self, other: &Self) -> Result<Self, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(
                self.currency.code,
                other.currency.code,
            ));
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::TooLarge)?;
        Self::from_minor(minor, self.currency)
    }

    /// The amount as the API shows it, with exactly the currency's minor units.
    pub fn amount(&self) -> String {
        Decimal::new(self.minor, u32::from(self.currency.minor_units)).to_string()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount(), self.currency)
    }
}

/// The wire form, `{"amount": "12.50", "currency": "EUR"}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyWire {
    amount: String,
    currency: String,
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MoneyWire {
            amount: self.amount(),
            currency: self.currency.code.to_owned(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = MoneyWire::deserialize(d)?;
        Money::parse(&wire.amount, &wire.currency).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Money {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Money".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An exact amount: a decimal string with the currency's minor-unit precision, and an ISO 4217 code.",
            "type": "object",
            "properties": {
                "amount": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]{1,3})?$"},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}
            },
            "required": ["amount", "currency"],
            "additionalProperties": false
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_take_the_currency_precision() {
        assert_eq!(Money::parse("12.5", "EUR").unwrap().amount(), "12.50");
        assert_eq!(Money::parse("12.50", "EUR").unwrap().minor(), 1250);
        assert_eq!(Money::parse("1200", "JPY").unwrap().amount(), "1200");
        assert_eq!(Money::parse("1.234", "KWD").unwrap().minor(), 1234);
        assert_eq!(Money::parse("0", "USD").unwrap().amount(), "0.00");
    }

    #[test]
    fn bad_amounts_are_refused_not_rounded() {
        assert!(matches!(
            Money::parse("12.345", "EUR"),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            Money::parse("1.5", "JPY"),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert_eq!(Money::parse("-1", "EUR"), Err(MoneyError::Negative));
        for bad in ["", "1e3", " 1", "1,00", "+1", ".5", "5.", "abc", "NaN"] {
            assert_eq!(
                Money::parse(bad, "EUR"),
                Err(MoneyError::NotADecimal),
                "{bad:?}"
            );
        }
        assert_eq!(Money::parse("1", "EURO"), Err(MoneyError::UnknownCurrency));
        assert_eq!(Money::parse("1", "eur"), Err(MoneyError::UnknownCurrency));
        assert_eq!(
            Money::parse("100000000000", "EUR"),
            Err(MoneyError::TooLarge)
        );
    }

    #[test]
    fn arithmetic_is_exact_and_single_currency() {
        let price = Money::parse("19.99", "EUR").unwrap();
        let three = price.times(3).unwrap();
        assert_eq!(three.amount(), "59.97");
        assert_eq!(
            three
                .plus(&Money::parse("0.03", "EUR").unwrap())
                .unwrap()
                .amount(),
            "60.00"
        );
        let usd = Money::parse("1", "USD").unwrap();
        assert!(matches!(
            price.plus(&usd),
            Err(MoneyError::CurrencyMismatch("EUR", "USD"))
        ));
        // 0.1 + 0.2 is 0.3 here, unlike with floats.
        let a = Money::parse("0.1", "EUR")
            .unwrap()
            .plus(&Money::parse("0.2", "EUR").unwrap())
            .unwrap();
        assert_eq!(a, Money::parse("0.3", "EUR").unwrap());
    }

    #[test]
    fn wire_form_round_trips() {
        let m = Money::parse("7.1", "GBP").unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount":"7.10","currency":"GBP"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
        assert!(serde_json::from_str::<Money>(r#"{"amount":7.1,"currency":"GBP"}"#).is_err());
        assert!(
            serde_json::from_str::<Money>(r#"{"amount":"7.1","currency":"GBP","x":1}"#).is_err()
        );
    }
}
