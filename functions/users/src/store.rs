//! The DynamoDB adapter of [`UserStore`]: table keyed by `user_id`, one request per
//! operation, conditions instead of read-before-write.

use crate::UserStore;
use crate::domain::{User, UserChanges, UserId};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use shared::config::{self, ConfigError};
use shared::dynamo::{StoreError, from_item, is_condition_failed, to_attribute, to_item};
use shared::time::Timestamp;
use std::collections::HashMap;

/// Profiles in the `users` table.
#[derive(Debug, Clone)]
pub struct DynamoUserStore {
    client: Client,
    table: String,
}

impl DynamoUserStore {
    /// A store on `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The store a Lambda uses: table from `USERS_TABLE`, client from the SDK settings.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let table = config::required("USERS_TABLE")?;
        let sdk = shared::aws::sdk_config().await?;
        Ok(Self::new(shared::aws::dynamodb(&sdk), table))
    }

    fn key(id: &UserId) -> HashMap<String, AttributeValue> {
        HashMap::from([("user_id".to_owned(), AttributeValue::S(id.to_string()))])
    }
}

impl UserStore for DynamoUserStore {
    async fn insert(&self, user: &User) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(user)?))
            .condition_expression("attribute_not_exists(user_id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(StoreError::request("PutItem", e)),
        }
    }

    async fn get(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        shared::dynamo::get(&self.client, &self.table, Self::key(id)).await
    }

    async fn update(
        &self,
        id: &UserId,
        changes: &UserChanges,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError> {
        // `name` is a DynamoDB reserved word, so every attribute goes through a placeholder.
        let mut sets = vec!["#updated_at = :updated_at"];
        let mut names = HashMap::from([("#updated_at".to_owned(), "updated_at".to_owned())]);
        let mut values = HashMap::from([(
            ":updated_at".to_owned(),
            AttributeValue::S(now.to_rfc3339_opts(chrono_millis(), true)),
        )]);
        if let Some(email) = &changes.email {
            sets.push("#email = :email");
            names.insert("#email".into(), "email".into());
            values.insert(":email".into(), to_attribute(email)?);
        }
        if let Some(name) = &changes.name {
            sets.push("#name = :name");
            names.insert("#name".into(), "name".into());
            values.insert(":name".into(), to_attribute(name)?);
        }
        if let Some(country) = &changes.country {
            sets.push("#country = :country");
            names.insert("#country".into(), "country".into());
            values.insert(":country".into(), to_attribute(country)?);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression("attribute_exists(user_id)")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => out.attributes.map(from_item).transpose(),
            Err(e) if is_condition_failed(&e) => Ok(None),
            Err(e) => Err(StoreError::request("UpdateItem", e)),
        }
    }

    async fn delete(&self, id: &UserId) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)))
            .condition_expression("attribute_exists(user_id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(StoreError::request("DeleteItem", e)),
        }
    }
}

/// The format the API uses for timestamps (see `shared::time`).
fn chrono_millis() -> shared::time::SecondsFormat {
    shared::time::SecondsFormat::Millis
}
