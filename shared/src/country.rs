//! Countries, as ISO 3166-1 alpha-2 codes: where customers live and orders ship.

use serde::{Deserialize, Serialize};

/// Why a country code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an ISO 3166-1 alpha-2 country code such as DE")]
pub struct InvalidCountry;

/// An ISO 3166-1 alpha-2 country code that is officially assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "CountryCodeSchema")]
pub struct CountryCode([u8; 2]);

/// The schema of a country code in event, step and stream documents.
#[derive(schemars::JsonSchema)]
#[schemars(rename = "CountryCode")]
#[allow(dead_code)]
struct CountryCodeSchema(#[schemars(regex(pattern = r"^[A-Z]{2}$"))] String);

impl CountryCode {
    /// The code's two letters.
    pub fn as_str(&self) -> &str {
        // Only ASCII capitals are ever stored (`TryFrom<String>`).
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// The officially assigned ISO 3166-1 alpha-2 codes.
const ASSIGNED_COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

impl TryFrom<String> for CountryCode {
    type Error = InvalidCountry;
    fn try_from(raw: String) -> Result<Self, InvalidCountry> {
        let assigned = raw.len() == 2 && ASSIGNED_COUNTRIES.split(' ').any(|c| c == raw);
        match raw.as_bytes() {
            [a, b] if assigned => Ok(Self([*a, *b])),
            _ => Err(InvalidCountry),
        }
    }
}

impl From<CountryCode> for String {
    fn from(c: CountryCode) -> Self {
        String::from_utf8_lossy(&c.0).into_owned()
    }
}

impl std::fmt::Display for CountryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from(*self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_must_be_assigned_alpha2() {
        assert!(CountryCode::try_from("DE".to_owned()).is_ok());
        for bad in ["de", "DEU", "XX", "ZZ", "", "D"] {
            assert!(
                CountryCode::try_from(bad.to_owned()).is_err(),
                "{bad:?} accepted"
            );
        }
        assert_eq!(ASSIGNED_COUNTRIES.split(' ').count(), 249);
    }
}
