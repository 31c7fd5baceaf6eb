//! Fraud scorer: on the `transactions` Kinesis stream, scores each order once and answers
//! the saga's task token (`SendTaskSuccess` approve/review, `SendTaskFailure` `FraudDenied`).

use aws_lambda_events::event::kinesis::KinesisEvent;
use fraud::answer::StepFunctions;
use fraud::store::FraudStore;

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let store = FraudStore::from_env(&sdk)?;
    let saga = StepFunctions::new(aws_sdk_sfn::Client::new(&sdk));
    shared::stream::run::<KinesisEvent, _>(async |records| {
        fraud::score_batch(&store, &saga, records).await
    })
    .await
}
