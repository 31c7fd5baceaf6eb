//! Saga steps: Lambdas the place-order state machine invokes.
//!
//! A step answers JSON or fails with a [`StepError`], whose `error_type` becomes the
//! Lambda error's `errorType` and so the name the state machine's `Retry` and `Catch`
//! match (`OutOfStock`, `PaymentDeclined`, ...). Faults on our side are
//! [`StepError::transient`] (`TransientError`), which the definition retries with backoff
//! and jitter; business outcomes are never retried, only caught.
//!
//! [`apply`] is the kernel every step that moves a saga record runs (capture, void and
//! refund of a payment; commit, release and restock of a reservation; holding,
//! confirming, rejecting and finishing the cancellation of an order): read the record,
//! decide from the state read ([`Plan`]), do what must happen outside the table (a
//! payment provider's call), write the move with its event in one transaction guarded
//! by the state read, and after a write cancelled by a concurrent move re-read it. Each
//! table is one [`Ledger`] (a port) with one DynamoDB adapter that owns its attribute
//! names; the decisions are plain functions over the state, unit-tested with ledgers in
//! memory.

use crate::ids::OrderId;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use tracing::Instrument;

/// The `errorType` of faults worth retrying (a store or provider that did not answer).
pub const TRANSIENT: &str = "TransientError";

/// The `errorType` of a state input that is not the step's input type: a defect of the
/// definition, never retried by name (only a compensation's `States.ALL` retries it).
pub const INVALID_INPUT: &str = "InvalidStepInput";

/// A step's failure, named for the state machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct StepError {
    /// The name `Retry`/`Catch` match.
    pub error_type: &'static str,
    /// What happened, for the execution history and the logs.
    pub message: String,
    /// A transient failure because DynamoDB throttled: retried like any other, but told
    /// apart in the log line and the metrics (`Outcome` `Throttled`), where it means
    /// capacity, not a fault.
    pub throttled: bool,
}

impl StepError {
    /// A business outcome the definition catches (never retried).
    pub fn business(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
            throttled: false,
        }
    }

    /// A fault the definition retries.
    pub fn transient(err: impl std::fmt::Display) -> Self {
        Self {
            error_type: TRANSIENT,
            message: err.to_string(),
            throttled: false,
        }
    }

    /// The outcome named in the step's metrics line: the error type, or `Throttled`.
    pub fn outcome(&self) -> &'static str {
        if self.throttled {
            "Throttled"
        } else {
            self.error_type
        }
    }
}

impl From<crate::dynamo::StoreError> for StepError {
    fn from(err: crate::dynamo::StoreError) -> Self {
        Self {
            throttled: err.is_throttled(),
            ..Self::transient(crate::problem::error_chain(&err))
        }
    }
}

impl From<StepError> for Diagnostic {
    fn from(err: StepError) -> Self {
        Diagnostic {
            error_type: err.error_type.to_owned(),
            error_message: err.message,
        }
    }
}

/// What every saga step answers the state machine: the order, where its record (order,
/// payment, reservation) stands after the step, and whether this run moved it (false for a
/// retry, a replay, or a compensation with nothing to give back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Outcome<S> {
    /// The order.
    pub order_id: OrderId,
    /// The record's status after the step.
    pub status: S,
    /// False when the step had already happened.
    pub changed: bool,
}

/// A saga step's contract: the function a `Task` state names, the input type it takes and
/// the output type it answers. Each step crate declares one per function (e.g.
/// `payments::AUTHORIZE`), its function's `main` runs through it ([`run`]), and a test holds
/// the state machine definitions to them: every `Task`'s `Parameters` against the input
/// type, every later read of its `ResultPath` against the output type
/// (functions/bootstrap/tests/saga_contract.rs).
#[derive(Debug)]
pub struct Contract<I, O> {
    /// The function's name, as `infra/declaration.json` names it.
    pub function: &'static str,
    types: std::marker::PhantomData<fn(I) -> O>,
}

impl<I, O> Clone for Contract<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, O> Copy for Contract<I, O> {}

impl<I, O> Contract<I, O> {
    /// The contract of `function`.
    pub const fn new(function: &'static str) -> Self {
        Self {
            function,
            types: std::marker::PhantomData,
        }
    }
}

impl<I: schemars::JsonSchema, O: schemars::JsonSchema> Contract<I, O> {
    /// The JSON Schemas of its input and output types.
    pub fn schemas(&self) -> (serde_json::Value, serde_json::Value) {
        (
            schemars::schema_for!(I).to_value(),
            schemars::schema_for!(O).to_value(),
        )
    }
}

/// Runs a step Lambda: parses the state's input, runs `handler` in a span with the
/// function name, request id, and the order id and correlation id the state passes, logs
/// its outcome, writes the invocation's metrics line ([`crate::metrics::measure_task`],
/// with the step's outcome: `ok`, its error type, or `Throttled`), and answers its output
/// or its error.
pub async fn run<I, O, F, Fut>(
    _contract: Contract<I, O>,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned + Send,
    O: Serialize,
    F: Fn(I) -> Fut + Sync,
    Fut: Future<Output = Result<O, StepError>> + Send,
{
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let text = |name: &str| {
                event
                    .payload
                    .get(name)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            };
            let order_id = text("order_id").unwrap_or_default();
            let correlation_id = text("correlation_id").unwrap_or_else(|| order_id.clone());
            let span = crate::telemetry::step_span(&event.context, &order_id, &correlation_id);
            let input = serde_json::from_value::<I>(event.payload)
                .map_err(|e| StepError::business(INVALID_INPUT, format!("the state's input: {e}")));
            // Boxed: a step's future (the kernel's, with a provider's inside) nests deep
            // enough that computing the layout of `main`'s future overflows rustc's query
            // depth on a clean build; a box ends the nesting here.
            let work = async move {
                match input {
                    Ok(input) => handler(input).await,
                    Err(e) => Err(e),
                }
            };
            let result = crate::metrics::measure_task(
                &event.context.request_id,
                1,
                Box::pin(work).instrument(span.clone()),
                |r: &Result<O, StepError>| crate::metrics::Report {
                    failed: usize::from(r.is_err()),
                    outcome: Some(r.as_ref().map_or_else(StepError::outcome, |_| "ok")),
                },
            )
            .await;
            span.in_scope(|| match &result {
                Ok(_) => tracing::info!(outcome = "ok", "step completed"),
                Err(e) => tracing::warn!(
                    error_type = e.error_type,
                    throttled = e.throttled,
                    message = %e.message,
                    "step failed"
                ),
            });
            result
        },
    ))
    .await
}

/// The trace a step carries into the events it writes: the request's correlation id,
/// and the record that caused them (the order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// Shared by every event of one customer request.
    pub correlation_id: String,
    /// What caused the events: the order.
    pub causation_id: String,
}

impl Trace {
    /// The trace of a step on `order_id`, with the request's correlation id when the state
    /// machine passed one (else the order id).
    pub fn of(order_id: &str, correlation_id: Option<&str>) -> Self {
        Self {
            correlation_id: correlation_id.unwrap_or(order_id).to_owned(),
            causation_id: order_id.to_owned(),
        }
    }

    /// The envelope of `data` happening now, under this trace.
    pub fn envelope<T: crate::events::DomainEvent>(&self, data: T) -> crate::events::Envelope<T> {
        crate::events::Envelope::new(
            data,
            crate::time::now(),
            &self.correlation_id,
            Some(&self.causation_id),
        )
    }

    /// The outbox record of `data` happening now, under this trace.
    pub fn record<T: crate::events::DomainEvent>(
        &self,
        data: T,
    ) -> Result<crate::outbox::OutboxRecord, crate::dynamo::StoreError> {
        crate::outbox::OutboxRecord::of(&self.envelope(data))
    }
}

/// What a step decides from the record it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan<M, S> {
    /// Nothing to do (done already, or nothing to give back): the record stays in this
    /// state, which the step answers.
    Done(S),
    /// Make this move.
    Move(M),
    /// Not allowed from here; why.
    Invalid(String),
}

/// A step's answer: where the record is after it, and whether this run moved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved<S> {
    /// The state after the step.
    pub state: S,
    /// False when nothing had to change (a retry, a replay, a compensation with nothing
    /// to give back).
    pub changed: bool,
}

/// A saga record: where it is.
pub trait Stateful {
    /// Where a record is.
    type State: Copy + PartialEq + std::fmt::Debug + Send;
    /// Where this one is.
    fn state(&self) -> Self::State;
}

/// A move of a saga record: where it ends.
pub trait Transition {
    /// The states it moves between.
    type State;
    /// The state the move ends in.
    fn target(&self) -> Self::State;
}

/// The state of the records of ledger `L`.
pub type StateOf<L> = <<L as Ledger>::Record as Stateful>::State;

/// One table's saga records as the steps move them: the port [`apply`] drives. The
/// DynamoDB adapter writes the move, its outbox event and the guard on the state read in
/// one transaction whose token is derived from what it writes.
pub trait Ledger: Sync {
    /// A record as read.
    type Record: Stateful + Sync;
    /// A move, with what it carries (a reason, a task token).
    type Move: Transition<State = StateOf<Self>> + std::fmt::Debug + Sync;
    /// What happened outside the table before the write (a provider's answer); `()` for
    /// moves that only write.
    type Effect: Sync;

    /// The record of `id`, strongly consistent.
    fn read(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Self::Record>, crate::dynamo::StoreError>> + Send;

    /// Writes `step` of `record` with its event, guarded by the state read (`None`: there
    /// was no record, and a compensation seals the key so that a late forward write
    /// cannot land after it). `Ok(false)`: the record moved (or appeared) meanwhile and
    /// nothing was written.
    fn write(
        &self,
        record: Option<&Self::Record>,
        step: &Self::Move,
        effect: &Self::Effect,
        trace: &Trace,
    ) -> impl Future<Output = Result<bool, crate::dynamo::StoreError>> + Send;

    /// Where a written move leaves the record: its target, unless the effect decided
    /// otherwise (a void that found the payment captured at the provider refunds it).
    fn landed(&self, step: &Self::Move, _effect: &Self::Effect) -> StateOf<Self> {
        step.target()
    }
}

/// The step kernel (see the module doc). `plan` decides from the record read (`None`:
/// there is none); `effect` runs before the write, only for a move of a record that
/// exists; a business refusal is `invalid_type` (the `errorType` the state machine sees).
pub async fn apply<L, P, E, Fut>(
    ledger: &L,
    id: &str,
    plan: P,
    effect: E,
    trace: &Trace,
    invalid_type: &'static str,
) -> Result<Moved<StateOf<L>>, StepError>
where
    L: Ledger,
    P: FnOnce(Option<&L::Record>) -> Plan<L::Move, StateOf<L>>,
    E: FnOnce(Option<&L::Record>, &L::Move) -> Fut,
    Fut: Future<Output = Result<L::Effect, StepError>>,
{
    let record = ledger.read(id).await?;
    let step = match plan(record.as_ref()) {
        Plan::Done(state) => {
            return Ok(Moved {
                state,
                changed: false,
            });
        }
        Plan::Invalid(why) => return Err(StepError::business(invalid_type, why)),
        Plan::Move(step) => step,
    };
    let done = Box::pin(effect(record.as_ref(), &step)).await?;
    let to = ledger.landed(&step, &done);
    if ledger.write(record.as_ref(), &step, &done, trace).await? {
        return Ok(Moved {
            state: to,
            changed: true,
        });
    }
    // The guard failed: another attempt (or the other saga) moved it meanwhile. Where
    // this step was going is success; anywhere else, decide again on a retry.
    match ledger.read(id).await?.map(|r| r.state()) {
        Some(state) if state == to => Ok(Moved {
            state,
            changed: false,
        }),
        other => Err(StepError::transient(format!(
            "{id} moved to {other:?} concurrently"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A ledger in memory of (state, version) records, whose writes can be made to lose
    /// a race once.
    #[derive(Default)]
    struct Memory {
        records: Mutex<HashMap<String, (u8, u32)>>,
        race: Mutex<Option<u8>>,
        writes: Mutex<u32>,
    }

    impl Stateful for (u8, u32) {
        type State = u8;
        fn state(&self) -> u8 {
            self.0
        }
    }

    impl Transition for u8 {
        type State = u8;
        fn target(&self) -> u8 {
            *self
        }
    }

    impl Ledger for Memory {
        type Record = (u8, u32);
        type Move = u8;
        type Effect = ();

        async fn read(&self, id: &str) -> Result<Option<(u8, u32)>, crate::dynamo::StoreError> {
            Ok(self.records.lock().unwrap().get(id).copied())
        }
        async fn write(
            &self,
            record: Option<&(u8, u32)>,
            step: &u8,
            _: &(),
            _: &Trace,
        ) -> Result<bool, crate::dynamo::StoreError> {
            let Some(record) = record else {
                return Ok(false);
            };
            let mut records = self.records.lock().unwrap();
            if let Some(other) = self.race.lock().unwrap().take() {
                records.insert("r".into(), (other, record.1 + 1));
            }
            let current = records.get("r").copied();
            if current != Some(*record) {
                return Ok(false);
            }
            *self.writes.lock().unwrap() += 1;
            records.insert("r".into(), (*step, record.1 + 1));
            Ok(true)
        }
    }

    fn ledger(state: u8) -> Memory {
        let m = Memory::default();
        m.records.lock().unwrap().insert("r".into(), (state, 1));
        m
    }

    async fn step(m: &Memory, to: u8) -> Result<Moved<u8>, StepError> {
        apply(
            m,
            "r",
            |r| match r {
                Some((s, _)) if *s == to => Plan::Done(*s),
                Some((s, _)) if *s + 1 == to => Plan::Move(to),
                Some((s, _)) => Plan::Invalid(format!("{s} cannot go to {to}")),
                None => Plan::Invalid("none".into()),
            },
            |_, _| async { Ok(()) },
            &Trace::of("r", None),
            "Invalid",
        )
        .await
    }

    #[tokio::test]
    async fn a_step_moves_once_and_a_repeat_changes_nothing() {
        let m = ledger(1);
        assert_eq!(
            step(&m, 2).await.unwrap(),
            Moved {
                state: 2,
                changed: true
            }
        );
        assert_eq!(
            step(&m, 2).await.unwrap(),
            Moved {
                state: 2,
                changed: false
            }
        );
        assert_eq!(*m.writes.lock().unwrap(), 1);
        let refused = step(&m, 5).await.unwrap_err();
        assert_eq!(refused.error_type, "Invalid");
    }

    #[tokio::test]
    async fn a_lost_race_is_success_where_the_step_was_going_and_a_retry_elsewhere() {
        let m = ledger(1);
        *m.race.lock().unwrap() = Some(2); // the twin attempt got there first
        assert_eq!(
            step(&m, 2).await.unwrap(),
            Moved {
                state: 2,
                changed: false
            }
        );
        let m = ledger(1);
        *m.race.lock().unwrap() = Some(7); // something else moved it
        assert_eq!(step(&m, 2).await.unwrap_err().error_type, TRANSIENT);
        assert_eq!(*m.writes.lock().unwrap(), 0);
    }

    #[test]
    fn a_trace_falls_back_to_the_order() {
        assert_eq!(
            Trace::of("o1", None),
            Trace {
                correlation_id: "o1".into(),
                causation_id: "o1".into()
            }
        );
        assert_eq!(Trace::of("o1", Some("c")).correlation_id, "c");
    }

    #[test]
    fn step_errors_become_lambda_error_types() {
        let d: Diagnostic = StepError::business("OutOfStock", "MUG-1").into();
        assert_eq!(
            (d.error_type.as_str(), d.error_message.as_str()),
            ("OutOfStock", "MUG-1")
        );
        let store = crate::dynamo::StoreError::local("GetItem", std::io::Error::other("timed out"));
        let e = StepError::from(store);
        assert_eq!((e.throttled, e.outcome()), (false, TRANSIENT));
        let d: Diagnostic = e.into();
        assert_eq!(d.error_type, TRANSIENT);
        assert!(d.error_message.contains("timed out"), "{}", d.error_message);
        // Throttling is retried as a transient fault and named as throttling.
        let e = StepError::from(crate::dynamo::StoreError::unprocessed("BatchGetItem"));
        assert_eq!(
            (e.error_type, e.throttled, e.outcome()),
            (TRANSIENT, true, "Throttled")
        );
    }
}
