//! `empty-read-model`: deletes every item of a read model (today only `sales`), so a
//! `replay` of the archive can rebuild it from the events (after a projection bug, say).
//! Only read models can be emptied: every other table is the owner's truth and has
//! nothing to rebuild it from.

use crate::cli::{Error, fail};

/// The read models an operator may empty (they rebuild from the archive); nothing else.
pub const READ_MODELS: &[&str] = &["sales"];

/// The table of read model `model`.
pub fn read_model_table(prefix: &str, model: &str) -> Result<String, Error> {
    if READ_MODELS.contains(&model) {
        Ok(format!("{prefix}-{model}"))
    } else {
        Err(fail(format!(
            "{model} is not a read model; these are: {}",
            READ_MODELS.join(", ")
        )))
    }
}

/// Deletes every item of `table`; how many.
pub async fn empty_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<usize, Error> {
    use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
    let described = ddb.describe_table().table_name(table).send().await?;
    let keys: Vec<String> = described
        .table()
        .map(|t| {
            t.key_schema()
                .iter()
                .map(|k| k.attribute_name().to_owned())
                .collect()
        })
        .unwrap_or_default();
    if keys.is_empty() {
        return Err(fail(format!("{table} has no key schema")));
    }
    let mut deleted = 0;
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .projection_expression(
                (0..keys.len())
                    .map(|i| format!("#k{i}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .set_expression_attribute_names(Some(
                keys.iter()
                    .enumerate()
                    .map(|(i, k)| (format!("#k{i}"), k.clone()))
                    .collect(),
            ))
            .set_exclusive_start_key(start)
            .send()
            .await?;
        for chunk in page.items().chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    Ok(WriteRequest::builder()
                        .delete_request(
                            DeleteRequest::builder()
                                .set_key(Some(key.clone()))
                                .build()?,
                        )
                        .build())
                })
                .collect::<Result<_, Error>>()?;
            let mut attempt = 0;
            while !requests.is_empty() {
                let out = ddb
                    .batch_write_item()
                    .request_items(table, requests.clone())
                    .send()
                    .await?;
                let unprocessed = out
                    .unprocessed_items()
                    .and_then(|u| u.get(table))
                    .cloned()
                    .unwrap_or_default();
                deleted += requests.len() - unprocessed.len();
                requests = unprocessed;
                attempt += 1;
                if !requests.is_empty() {
                    if attempt > 8 {
                        return Err(fail(format!("{table}: deletes keep being throttled")));
                    }
                    shared::retry::UNPROCESSED.wait(attempt).await;
                }
            }
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(deleted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_read_models_can_be_emptied() {
        assert_eq!(
            read_model_table("commerce", "sales").unwrap(),
            "commerce-sales"
        );
        assert!(read_model_table("commerce", "orders").is_err());
    }
}
