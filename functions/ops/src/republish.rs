//! `republish`: publishes the outbox items the relay never got onto the bus (an outage of
//! the bus longer than the relay's retries, an item passed over), oldest first, through
//! [`outbox::republish`]. This module says which tables have an outbox; `run` reports each.

use crate::cli::{Error, fail};
use std::sync::LazyLock;

/// `infra/declaration.json`, the one declaration of tables, streams and mappings, as it was
/// when the command was built.
const DECLARATION: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../infra/declaration.json"
));

/// The function that reads the outbox tables' streams and publishes their items.
const RELAY: &str = "outbox-relay";

/// The tables with an outbox (the relay reads their streams): the table streams
/// `infra/declaration.json` maps to `outbox-relay`, in its order, from the declaration built
/// into the command. Empty if that declaration does not say (then `republish` refuses).
pub static OUTBOX_TABLES: LazyLock<Vec<String>> =
    LazyLock::new(|| relay_tables(DECLARATION).unwrap_or_default());

/// The table streams `declaration` maps to the outbox relay (those of its `event_sources`
/// that are a `table_stream`), in its order.
fn relay_tables(declaration: &str) -> Result<Vec<String>, String> {
    let decl: serde_json::Value = serde_json::from_str(declaration).map_err(|e| e.to_string())?;
    let sources = decl["functions"][RELAY]["event_sources"]
        .as_array()
        .ok_or_else(|| format!("it has no functions.{RELAY}.event_sources"))?;
    Ok(sources
        .iter()
        .filter_map(|s| s["table_stream"].as_str())
        .map(str::to_owned)
        .collect())
}

/// The tables `republish` works on: those named, or all.
pub fn outbox_tables(named: &[String]) -> Result<Vec<&'static str>, Error> {
    if OUTBOX_TABLES.is_empty() {
        let why = relay_tables(DECLARATION)
            .err()
            .unwrap_or_else(|| format!("it maps no table stream to {RELAY}"));
        return Err(fail(format!(
            "the declaration built into commerce-ops names no outbox table: {why}"
        )));
    }
    if named.is_empty() {
        return Ok(OUTBOX_TABLES.iter().map(String::as_str).collect());
    }
    named
        .iter()
        .map(|n| {
            OUTBOX_TABLES
                .iter()
                .find(|t| *t == n)
                .map(String::as_str)
                .ok_or_else(|| {
                    fail(format!(
                        "{n} has no outbox; these do: {}",
                        OUTBOX_TABLES.join(", ")
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_tables_are_the_streams_the_relay_reads() {
        assert_eq!(
            *OUTBOX_TABLES,
            ["inventory", "orders", "payments", "fraud"],
            "the relay's stream mappings in infra/declaration.json"
        );
        // The streams it is mapped to are the streams it may read.
        let decl: serde_json::Value = serde_json::from_str(DECLARATION).unwrap();
        let streams: Vec<&str> = decl["functions"][RELAY]["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(streams, *OUTBOX_TABLES);
    }

    #[test]
    fn only_the_relays_table_streams_are_outbox_tables() {
        let decl = serde_json::json!({"functions": {
            "outbox-relay": {"event_sources": [
                {"table_stream": "orders"},
                {"queue": "outbox-relay-failures"},
                {"table_stream": "payments"},
            ]},
            "other": {"event_sources": [{"table_stream": "users"}]},
        }});
        assert_eq!(
            relay_tables(&decl.to_string()).unwrap(),
            ["orders", "payments"]
        );
        assert!(relay_tables(r#"{"functions": {}}"#).is_err());
        assert!(relay_tables("not json").is_err());
    }

    #[test]
    fn republish_works_on_the_outbox_tables_only() {
        assert_eq!(outbox_tables(&[]).unwrap(), *OUTBOX_TABLES);
        assert_eq!(outbox_tables(&["orders".into()]).unwrap(), vec!["orders"]);
        assert!(outbox_tables(&["users".into()]).is_err());
    }
}
