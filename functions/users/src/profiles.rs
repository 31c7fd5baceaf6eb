//! The users service's one read for another service: what the place-order saga's fraud
//! check needs of a customer (country of residence, when the profile was created), read
//! by `orders-start-saga` as it starts the saga (docs/decisions.md, "The saga starter reads
//! the customer's country and account age"). It lives here, beside the table's other
//! adapter, so the profile's item shape is named in one crate; it reads neither the name
//! nor the email.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use shared::config::{self, ConfigError};
use shared::dynamo::{StoreError, from_item};
use shared::ids::UserId;
use shared::saga::CustomerProfile;
use std::collections::HashMap;

/// The fields of a profile the fraud check reads.
#[derive(Debug, serde::Deserialize)]
struct Stored {
    country: shared::country::CountryCode,
    #[serde(with = "shared::time::rfc3339")]
    created_at: shared::time::Timestamp,
}

/// Read-only profiles from the users table.
#[derive(Debug, Clone)]
pub struct Profiles {
    client: Client,
    table: String,
}

impl Profiles {
    /// The profiles in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The profiles a Lambda reads: `USERS_TABLE`.
    pub fn from_env(client: Client) -> Result<Self, ConfigError> {
        Ok(Self::new(client, config::required("USERS_TABLE")?))
    }

    /// The customer's country and registration time; `None` when there is no profile (a
    /// customer may order without one, API.md). One consistent `GetItem`, projected.
    pub async fn customer(&self, user: &UserId) -> Result<Option<CustomerProfile>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(HashMap::from([(
                "user_id".to_owned(),
                AttributeValue::S(user.to_string()),
            )])))
            .projection_expression("country, created_at")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::request("GetItem", e))?;
        let stored: Option<Stored> = out.item.map(from_item).transpose()?;
        Ok(stored.map(|s| CustomerProfile {
            country: s.country,
            registered_at: s.created_at,
        }))
    }
}
