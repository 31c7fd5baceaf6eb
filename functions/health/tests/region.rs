//! The health check against the emulator's DynamoDB and EventBridge: the local stack's region
//! is healthy, and a region whose table or bus is away answers 503 naming it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use health::{AwsProbe, Region, api};

async fn probe() -> AwsProbe {
    AwsProbe::new(&shared::aws::sdk_config().await.unwrap())
}

fn local_region() -> Region {
    Region::from_env()
        .expect("the tables and bus are not set: run through `make test` (local/stack.py exec)")
}

async fn answer(region: &Region) -> (u16, serde_json::Value) {
    let response = api::check(&probe().await, region).await.unwrap();
    let body = serde_json::from_slice(response.body().as_ref()).unwrap();
    (response.status().as_u16(), body)
}

#[tokio::test]
async fn the_local_region_is_healthy() {
    let (status, body) = answer(&local_region()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "healthy");
    let names: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "table users",
            "table inventory",
            "table orders",
            "table payments",
            "table idempotency",
            "bus"
        ]
    );
}

#[tokio::test]
async fn a_region_whose_orders_table_is_away_is_unhealthy() {
    let mut region = local_region();
    for (declared, physical) in &mut region.tables {
        if declared == "orders" {
            *physical = format!("{physical}-gone");
        }
    }
    let (status, body) = answer(&region).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unhealthy");
    for check in body["checks"].as_array().unwrap() {
        let away = check["name"] == "table orders";
        assert_eq!(check["ok"], !away, "{check}");
        if away {
            assert_eq!(check["detail"], "unreachable");
        }
    }
}

#[tokio::test]
async fn a_region_whose_bus_is_away_is_unhealthy() {
    let mut region = local_region();
    region.bus = format!("{}-gone", region.bus);
    let (status, body) = answer(&region).await;
    assert_eq!(status, 503, "{body}");
    let bus = body["checks"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (bus["name"].as_str(), bus["ok"].as_bool()),
        (Some("bus"), Some(false))
    );
}
