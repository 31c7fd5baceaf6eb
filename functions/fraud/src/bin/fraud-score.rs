//! Fraud scorer: on the `transactions` Kinesis stream, scores each order once and answers
//! the saga's task token (`SendTaskSuccess` approve/review, `SendTaskFailure` `FraudDenied`).

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use fraud::answer::StepFunctions;
use fraud::store::FraudStore;
use lambda_runtime::{LambdaEvent, service_fn};
use tracing::Instrument;

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let store = FraudStore::from_env(&sdk)?;
    let saga = StepFunctions::new(aws_sdk_sfn::Client::new(&sdk));
    let (store, saga) = (&store, &saga);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KinesisEvent>| async move {
            let records = &event.payload.records;
            let span = shared::telemetry::event_span(&event.context, records.len());
            let response = shared::metrics::measure_task(
                &event.context.request_id,
                records.len(),
                fraud::score_batch(store, saga, records).instrument(span),
                |r: &KinesisEventResponse| r.batch_item_failures.len(),
            )
            .await;
            Ok::<KinesisEventResponse, std::convert::Infallible>(response)
        },
    ))
    .await
}
