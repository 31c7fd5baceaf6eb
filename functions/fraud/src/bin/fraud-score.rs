//! Fraud scorer: on the `transactions` Kinesis stream, scores each order once and answers
//! the saga's task token (`SendTaskSuccess` approve/review, `SendTaskFailure` `FraudDenied`).

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use fraud::answer::StepFunctions;
use fraud::store::FraudStore;
use lambda_runtime::{LambdaEvent, service_fn};
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await;
    let store = FraudStore::from_env(&sdk)?;
    let saga = StepFunctions::new(aws_sdk_sfn::Client::new(&sdk));
    let (store, saga) = (&store, &saga);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<KinesisEvent>| async move {
            let span = shared::telemetry::event_span(&event.context, event.payload.records.len());
            let response = fraud::score_batch(store, saga, &event.payload.records)
                .instrument(span)
                .await;
            Ok::<KinesisEventResponse, std::convert::Infallible>(response)
        },
    ))
    .await
}
