//! Time as the API shows it: UTC, RFC 3339, millisecond precision.

use chrono::{DateTime, SubsecRound, Utc};

pub use chrono::SecondsFormat;

/// A point in time as stored and returned by the services.
pub type Timestamp = DateTime<Utc>;

/// Now, truncated to milliseconds so a value survives a JSON round trip unchanged.
pub fn now() -> Timestamp {
    Utc::now().trunc_subsecs(3)
}

/// Serde helpers that write RFC 3339 with milliseconds and a `Z` suffix.
pub mod rfc3339 {
    use super::Timestamp;
    use chrono::SecondsFormat;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `2026-11-21T19:30:00.123Z`.
    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    /// Reads any RFC 3339 timestamp and converts it to UTC.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let raw = String::deserialize(d)?;
        chrono::DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.to_utc())
            .map_err(serde::de::Error::custom)
    }

    /// The same for an optional timestamp (`null` when absent).
    pub mod option {
        use super::Timestamp;
        use serde::{Deserialize, Deserializer, Serializer};

        /// Writes the timestamp as [`super::serialize`] does, or `null`.
        pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        /// Reads an RFC 3339 timestamp (in UTC) or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|raw| {
                    chrono::DateTime::parse_from_rfc3339(&raw)
                        .map(|t| t.to_utc())
                        .map_err(serde::de::Error::custom)
                })
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct T {
        #[serde(with = "rfc3339")]
        at: Timestamp,
    }

    #[test]
    fn timestamps_round_trip_as_rfc3339_utc_millis() {
        let t = T { at: now() };
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.ends_with("Z\"}"), "{json}");
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), t);
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let t: T = serde_json::from_str(r#"{"at":"2026-01-01T02:00:00+02:00"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"at":"2026-01-01T00:00:00.000Z"}"#
        );
    }
}
