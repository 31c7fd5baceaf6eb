//! Hello world as a Rust Lambda: the same runtime and the same `#[tokio::main]` as every
//! function, and a handler that answers its event. What a function's cold start costs above
//! this is what its own init does (SDK configuration, clients, telemetry).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
