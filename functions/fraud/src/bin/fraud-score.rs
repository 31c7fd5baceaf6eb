//! Fraud scorer: on the `transactions` Kinesis stream, scores each order once against its
//! user's state and answers the saga's task token (`SendTaskSuccess` approve/review,
//! `SendTaskFailure` `FraudDenied`); a record that can never be scored is parked in the
//! scorer's failure queue.

use aws_lambda_events::event::kinesis::KinesisEvent;
use fraud::answer::StepFunctions;
use fraud::dead_letters::FailureQueue;
use fraud::scoring::Scorer;
use fraud::store::FraudStore;

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let store = FraudStore::from_env(&sdk)?;
    let saga = StepFunctions::new(aws_sdk_sfn::Client::new(&sdk));
    let dead_letters = FailureQueue::from_env(&sdk)?;
    // A broken model or rates file fails the cold start with its reason.
    let scorer = Scorer::compiled()?;
    shared::stream::run::<KinesisEvent, _>(async |records| {
        fraud::batch::score_batch(&store, &saga, &dead_letters, &scorer, records)
            .await
            .response
    })
    .await
}
