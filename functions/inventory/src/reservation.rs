//! Stock reservations for the place-order saga: the four steps that move an order's units
//! (reserve, release, commit, restock), each one transaction, each idempotent by order id.
//!
//! An order's reservation is an item of the inventory table (`sku = reservation#<order>`)
//! whose state moves `RESERVED → RELEASED` (compensation), `RESERVED → COMMITTED`
//! (payment captured) and `COMMITTED → RESTOCKED` (cancelled after confirmation). Every
//! step changes the products and the reservation's state in one transaction guarded by
//! the state it expects, so a retried or replayed step finds the state already moved and
//! changes nothing twice. Reserving writes every line's condition (`available >= q`) into
//! the same transaction: all lines or none, and available never negative.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use shared::catalog::Sku;
use shared::dynamo::{StoreError, Transaction, to_item, transact};
use shared::events::{
    Envelope, StockCommitted, StockLine, StockReleased, StockReserved, StockRestocked,
};
use shared::ids::OrderId;
use shared::outbox::Outbox;
use shared::step::StepError;
use shared::time::{Timestamp, rfc3339};

/// The `errorType` when some line cannot be reserved.
pub const OUT_OF_STOCK: &str = "OutOfStock";
/// The `errorType` when a step finds the reservation in a state it cannot move from.
pub const INVALID_STATE: &str = "ReservationStateInvalid";

/// Where an order's units are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationState {
    /// Held for the order.
    Reserved,
    /// Given back (the order failed).
    Released,
    /// Shipped (the order is confirmed).
    Committed,
    /// Back on the shelf (the confirmed order was cancelled).
    Restocked,
}

/// A step of the reservation's life, with the state it moves from and to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// `RESERVED → RELEASED` (compensation; committed units are restocked instead).
    Release,
    /// `RESERVED → COMMITTED`.
    Commit,
    /// `COMMITTED → RESTOCKED` (cancellation; units still reserved are released instead).
    Restock,
}

/// What a stock step does, decided from where the reservation is (the step kernel's
/// [`shared::step::Plan`]).
pub type Plan = shared::step::Plan<Move, ReservationState>;

impl Move {
    /// The state this move starts from and the one it ends in.
    pub fn states(self) -> (ReservationState, ReservationState) {
        use ReservationState::*;
        match self {
            Move::Release => (Reserved, Released),
            Move::Commit => (Reserved, Committed),
            Move::Restock => (Committed, Restocked),
        }
    }

    /// The decision of a step for a reservation in `current` (`None`: nothing reserved).
    ///
    /// The compensations accept every state they can meet, so a saga that compensates
    /// after a lost answer always converges: a release of units already committed (the
    /// commit's answer lost) restocks them, a restock of units never committed releases
    /// them, and either finds nothing to do when nothing is held. A commit happens only
    /// from `RESERVED`.
    pub fn plan(self, current: Option<ReservationState>) -> Plan {
        use ReservationState::*;
        match (self, current) {
            (Move::Commit, Some(Reserved)) => Plan::Move(Move::Commit),
            (Move::Commit, Some(Committed)) => Plan::Done(Committed),
            (Move::Commit, Some(other)) => {
                Plan::Invalid(format!("the reservation is {other:?}, cannot Commit"))
            }
            (Move::Commit, None) => Plan::Invalid("the order has no reservation".into()),
            (Move::Release | Move::Restock, Some(Reserved)) => Plan::Move(Move::Release),
            (Move::Release | Move::Restock, Some(Committed)) => Plan::Move(Move::Restock),
            // Nothing reserved: nothing to give back, but the key is sealed `RELEASED` so
            // that a reserve still in flight (an invocation that outlived its timeout)
            // cannot hold units after the compensation ran.
            (Move::Release | Move::Restock, None) => Plan::Move(Move::Release),
            (Move::Release | Move::Restock, Some(s @ (Released | Restocked))) => Plan::Done(s),
        }
    }

    /// Changes per unit to (on hand, reserved, available).
    fn deltas(self) -> (i64, i64, i64) {
        match self {
            Move::Release => (0, -1, 1),
            Move::Commit => (-1, -1, 0),
            Move::Restock => (1, 0, 1),
        }
    }
}

/// The reservation item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// `reservation#<order id>`.
    pub sku: String,
    /// Always `reservation`: tells it from products and outbox items.
    pub record_type: String,
    /// The order.
    pub order_id: OrderId,
    /// Where the units are.
    pub state: ReservationState,
    /// The units.
    pub lines: Vec<StockLine>,
    /// Reserved.
    #[serde(with = "rfc3339")]
    pub created_at: Timestamp,
    /// Last moved.
    #[serde(with = "rfc3339")]
    pub updated_at: Timestamp,
}

/// What a stock step answers the state machine (`status`: the reservation's state).
pub type StepOutcome = shared::step::Outcome<ReservationState>;

/// `inventory-reserve`'s contract (`ReserveStock`).
pub const RESERVE: shared::step::Contract<StockStepInput, StepOutcome> =
    shared::step::Contract::new("inventory-reserve");
/// `inventory-commit`'s contract (`CommitStock`).
pub const COMMIT: shared::step::Contract<StockStepInput, StepOutcome> =
    shared::step::Contract::new("inventory-commit");
/// `inventory-release`'s contract (`ReleaseStock`).
pub const RELEASE: shared::step::Contract<StockStepInput, StepOutcome> =
    shared::step::Contract::new("inventory-release");
/// `inventory-restock`'s contract (`RestockStock`).
pub const RESTOCK: shared::step::Contract<StockStepInput, StepOutcome> =
    shared::step::Contract::new("inventory-restock");

fn reservation_key(order_id: &str) -> String {
    format!("reservation#{order_id}")
}

/// Reservations in the inventory table.
#[derive(Debug, Clone)]
pub struct Reservations {
    client: Client,
    table: String,
    outbox: Outbox,
}

impl Reservations {
    /// Reservations in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self {
            client,
            outbox: Outbox::new(table.clone(), "sku"),
            table,
        }
    }

    /// The store a step Lambda uses: `INVENTORY_TABLE`.
    pub async fn from_env() -> Result<Self, shared::config::ConfigError> {
        let table = shared::config::required("INVENTORY_TABLE")?;
        let sdk = shared::aws::sdk_config().await?;
        Ok(Self::new(shared::aws::dynamodb(&sdk), table))
    }

    /// The reservation of `order_id`, if any.
    pub async fn get(&self, order_id: &str) -> Result<Option<Reservation>, StoreError> {
        shared::dynamo::get(
            &self.client,
            &self.table,
            shared::dynamo::key("sku", reservation_key(order_id)),
        )
        .await
    }

    fn product_update(
        &self,
        sku: &Sku,
        quantity: u32,
        deltas: (i64, i64, i64),
        guard_available: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let q = i64::from(quantity);
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("sku", AttributeValue::S(sku.to_string()))
            // Every attribute through a placeholder; `version` keeps product writes honest
            // (a stock correction that read an older version must retry).
            .update_expression("ADD #on_hand :d_on_hand, #reserved :d_reserved, #available :d_available, #version :one")
            .expression_attribute_names("#on_hand", "on_hand")
            .expression_attribute_names("#reserved", "reserved")
            .expression_attribute_names("#available", "available")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":d_on_hand", AttributeValue::N((deltas.0 * q).to_string()))
            .expression_attribute_values(":d_reserved", AttributeValue::N((deltas.1 * q).to_string()))
            .expression_attribute_values(":d_available", AttributeValue::N((deltas.2 * q).to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        update = if guard_available {
            update
                .condition_expression("attribute_exists(sku) AND #available >= :q")
                .expression_attribute_values(":q", AttributeValue::N(q.to_string()))
        } else {
            update.condition_expression("attribute_exists(sku)")
        };
        let update = update
            .build()
            .map_err(|e| StoreError::local("build product update", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Reserves every line for `order_id`, or none: `OutOfStock` names the short lines.
    pub async fn reserve(
        &self,
        order_id: &OrderId,
        lines: &[StockLine],
        envelope: &Envelope<StockReserved>,
        now: Timestamp,
    ) -> Result<StepOutcome, StepError> {
        if let Some(existing) = self.get(order_id).await? {
            return Ok(StepOutcome {
                order_id: order_id.clone(),
                status: existing.state,
                changed: false,
            });
        }
        let reservation = Reservation {
            sku: reservation_key(order_id),
            record_type: "reservation".into(),
            order_id: order_id.clone(),
            state: ReservationState::Reserved,
            lines: lines.to_vec(),
            created_at: now,
            updated_at: now,
        };
        let mut items = Vec::with_capacity(lines.len() + 2);
        for line in lines {
            items.push(self.product_update(&line.sku, line.quantity, (0, 1, -1), true)?);
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&reservation)?))
            .condition_expression("attribute_not_exists(sku)")
            .build()
            .map_err(|e| StoreError::local("build reservation put", e))?;
        items.push(TransactWriteItem::builder().put(put).build());
        items.push(self.outbox.put(envelope)?);
        match transact(&self.client, items, Some(&format!("{order_id}-reserve"))).await? {
            Transaction::Committed => Ok(StepOutcome {
                order_id: order_id.clone(),
                status: ReservationState::Reserved,
                changed: true,
            }),
            outcome @ Transaction::Cancelled(_) => {
                // The reservation item is after the lines: if it failed, another attempt
                // of this step got there first.
                if outcome.condition_failed(lines.len()) {
                    let existing = self
                        .get(order_id)
                        .await?
                        .ok_or_else(|| StepError::transient("reservation vanished"))?;
                    return Ok(StepOutcome {
                        order_id: order_id.clone(),
                        status: existing.state,
                        changed: false,
                    });
                }
                let short: Vec<&str> = lines
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| outcome.condition_failed(*i))
                    .map(|(_, l)| l.sku.as_str())
                    .collect();
                if short.is_empty() {
                    // A conflict with another transaction on the same products: retry.
                    Err(StepError::transient(format!(
                        "reservation cancelled: {outcome:?}"
                    )))
                } else {
                    Err(StepError::business(
                        OUT_OF_STOCK,
                        format!("not enough stock for {}", short.join(", ")),
                    ))
                }
            }
        }
    }

    /// Seals the reservation key of an order that has none as `RELEASED` with no lines
    /// (a compensation that found nothing reserved): a reserve that arrives later meets
    /// its own `attribute_not_exists` condition and holds nothing. `Ok(false)`: a
    /// reservation appeared meanwhile.
    async fn seal(&self, trace: &shared::step::Trace) -> Result<bool, StoreError> {
        let now = shared::time::now();
        // A step's events are caused by its order: the trace's causation id is the order id.
        let order_id = OrderId::try_from(trace.causation_id.clone())
            .map_err(|e| StoreError::local("seal the reservation", e))?;
        let order_id = &order_id;
        let sealed = Reservation {
            sku: reservation_key(order_id),
            record_type: "reservation".into(),
            order_id: order_id.clone(),
            state: ReservationState::Released,
            lines: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&sealed)?))
            .condition_expression("attribute_not_exists(sku)")
            .build()
            .map_err(|e| StoreError::local("build reservation seal", e))?;
        let items = vec![TransactWriteItem::builder().put(put).build()];
        Ok(
            transact(&self.client, items, Some(&format!("{order_id}-seal")))
                .await?
                .committed(),
        )
    }

    /// The transaction of `step` of `reservation`: every line's product counts, the
    /// reservation's state guarded by the state read, and the step's event.
    fn move_items(
        &self,
        reservation: &Reservation,
        step: Move,
        trace: &shared::step::Trace,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let (from, to) = step.states();
        let order_id = reservation.order_id.as_str();
        let mut items = Vec::with_capacity(reservation.lines.len() + 2);
        for line in &reservation.lines {
            items.push(self.product_update(&line.sku, line.quantity, step.deltas(), false)?);
        }
        items.push(
            shared::dynamo::Transition {
                table: &self.table,
                key: ("sku", AttributeValue::S(reservation_key(order_id))),
                field: "state",
                from: shared::dynamo::to_attribute(&from)?,
                to: shared::dynamo::to_attribute(&to)?,
                sets: Vec::new(),
                also: None,
            }
            .item()?,
        );
        let (o, lines) = (reservation.order_id.clone(), reservation.lines.clone());
        let record = match step {
            Move::Release => trace.record(StockReleased { order_id: o, lines })?,
            Move::Commit => trace.record(StockCommitted { order_id: o, lines })?,
            Move::Restock => trace.record(StockRestocked { order_id: o, lines })?,
        };
        items.push(self.outbox.put_record(&record)?);
        Ok(items)
    }
}

impl shared::step::Ledger for Reservations {
    type Record = Reservation;
    type Move = Move;
    type Effect = ();

    async fn read(&self, order_id: &str) -> Result<Option<Reservation>, StoreError> {
        self.get(order_id).await
    }

    async fn write(
        &self,
        reservation: Option<&Reservation>,
        step: &Move,
        _: &(),
        trace: &shared::step::Trace,
    ) -> Result<bool, StoreError> {
        let Some(reservation) = reservation else {
            return self.seal(trace).await;
        };
        let items = self.move_items(reservation, *step, trace)?;
        let scope = format!("{}-{step:?}", reservation.order_id);
        Ok(transact(&self.client, items, Some(&scope))
            .await?
            .committed())
    }
}

impl shared::step::Stateful for Reservation {
    type State = ReservationState;
    fn state(&self) -> ReservationState {
        self.state
    }
}

impl shared::step::Transition for Move {
    type State = ReservationState;
    fn target(&self) -> ReservationState {
        self.states().1
    }
}

/// Moves the reservation of an order (release, commit, restock) through the step kernel,
/// decided by [`Move::plan`].
pub async fn apply(
    store: &impl shared::step::Ledger<Record = Reservation, Move = Move, Effect = ()>,
    order_id: &OrderId,
    requested: Move,
    trace: &shared::step::Trace,
) -> Result<StepOutcome, StepError> {
    let moved = shared::step::apply(
        store,
        order_id,
        |r| requested.plan(r.map(|r| r.state)),
        |_, _| async { Ok(()) },
        trace,
        INVALID_STATE,
    )
    .await?;
    Ok(StepOutcome {
        order_id: order_id.clone(),
        status: moved.state,
        changed: moved.changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_keep_available_equal_to_on_hand_minus_reserved() {
        for m in [Move::Release, Move::Commit, Move::Restock] {
            let (on_hand, reserved, available) = m.deltas();
            assert_eq!(available, on_hand - reserved, "{m:?}");
        }
        assert_eq!(
            Move::Commit.states(),
            (ReservationState::Reserved, ReservationState::Committed)
        );
        assert_eq!(
            Move::Restock.states(),
            (ReservationState::Committed, ReservationState::Restocked)
        );
    }

    const EVERY: [Option<ReservationState>; 5] = [
        None,
        Some(ReservationState::Reserved),
        Some(ReservationState::Committed),
        Some(ReservationState::Released),
        Some(ReservationState::Restocked),
    ];

    #[test]
    fn a_compensation_accepts_every_state_and_leaves_nothing_held() {
        for step in [Move::Release, Move::Restock] {
            for current in EVERY {
                let after = match step.plan(current) {
                    Plan::Done(s) => Some(s),
                    Plan::Move(m) => {
                        let (from, to) = m.states();
                        // With nothing reserved the move is the seal (see `seal`).
                        if current.is_some() {
                            assert_eq!(Some(from), current, "{step:?} from {current:?}");
                        }
                        Some(to)
                    }
                    Plan::Invalid(why) => panic!("{step:?} refused {current:?}: {why}"),
                };
                assert!(
                    !matches!(
                        after,
                        Some(ReservationState::Reserved | ReservationState::Committed)
                    ),
                    "{step:?} from {current:?} leaves {after:?}"
                );
            }
        }
        assert_eq!(
            Move::Release.plan(Some(ReservationState::Committed)),
            Plan::Move(Move::Restock),
            "a release after a lost commit answer puts the units back on hand"
        );
    }

    /// One reservation in memory: the step kernel's port, with the write's guard.
    #[derive(Default)]
    struct Memory {
        reservation: std::sync::Mutex<Option<Reservation>>,
        moves: std::sync::Mutex<Vec<Move>>,
    }

    impl shared::step::Ledger for Memory {
        type Record = Reservation;
        type Move = Move;
        type Effect = ();
        async fn read(&self, _: &str) -> Result<Option<Reservation>, StoreError> {
            Ok(self.reservation.lock().unwrap().clone())
        }
        async fn write(
            &self,
            read: Option<&Reservation>,
            step: &Move,
            _: &(),
            _: &shared::step::Trace,
        ) -> Result<bool, StoreError> {
            let (from, to) = step.states();
            let mut stored = self.reservation.lock().unwrap();
            if read.is_none() {
                // The seal: only where nothing is.
                if stored.is_some() {
                    return Ok(false);
                }
                let now = shared::time::now();
                *stored = Some(Reservation {
                    sku: reservation_key(&order(2)),
                    record_type: "reservation".into(),
                    order_id: order(2),
                    state: ReservationState::Released,
                    lines: vec![],
                    created_at: now,
                    updated_at: now,
                });
                self.moves.lock().unwrap().push(*step);
                return Ok(true);
            }
            let Some(r) = stored.as_mut().filter(|r| r.state == from) else {
                return Ok(false);
            };
            r.state = to;
            self.moves.lock().unwrap().push(*step);
            Ok(true)
        }
    }

    /// The id of test order `n`.
    fn order(n: u32) -> OrderId {
        format!("01JDZ{n:021}").parse().unwrap()
    }

    fn reserved() -> Memory {
        let now = shared::time::now();
        let m = Memory::default();
        *m.reservation.lock().unwrap() = Some(Reservation {
            sku: reservation_key(&order(1)),
            record_type: "reservation".into(),
            order_id: order(1),
            state: ReservationState::Reserved,
            lines: vec![],
            created_at: now,
            updated_at: now,
        });
        m
    }

    #[tokio::test]
    async fn a_release_after_a_lost_commit_answer_restocks_once() {
        let m = reserved();
        let trace = shared::step::Trace::of(&order(1), None);
        let commit = apply(&m, &order(1), Move::Commit, &trace).await.unwrap();
        assert_eq!(
            (commit.status, commit.changed),
            (ReservationState::Committed, true)
        );
        let again = apply(&m, &order(1), Move::Commit, &trace).await.unwrap();
        assert!(!again.changed, "a retried commit changes nothing");
        let release = apply(&m, &order(1), Move::Release, &trace).await.unwrap();
        assert_eq!(
            (release.status, release.changed),
            (ReservationState::Restocked, true)
        );
        let release = apply(&m, &order(1), Move::Release, &trace).await.unwrap();
        assert_eq!(
            (release.status, release.changed),
            (ReservationState::Restocked, false)
        );
        assert_eq!(*m.moves.lock().unwrap(), vec![Move::Commit, Move::Restock]);
        let refused = apply(&m, &order(1), Move::Commit, &trace)
            .await
            .unwrap_err();
        assert_eq!(refused.error_type, INVALID_STATE);
        // Nothing reserved: the key is sealed RELEASED, so a late reserve holds nothing.
        let empty = Memory::default();
        let trace2 = shared::step::Trace::of(&order(2), None);
        let sealed = apply(&empty, &order(2), Move::Release, &trace2)
            .await
            .unwrap();
        assert_eq!(sealed.status, ReservationState::Released);
        let again = apply(&empty, &order(2), Move::Release, &trace2)
            .await
            .unwrap();
        assert_eq!(
            (again.status, again.changed),
            (ReservationState::Released, false)
        );
    }

    #[test]
    fn a_commit_happens_only_from_reserved_and_once() {
        assert_eq!(
            Move::Commit.plan(Some(ReservationState::Reserved)),
            Plan::Move(Move::Commit)
        );
        assert_eq!(
            Move::Commit.plan(Some(ReservationState::Committed)),
            Plan::Done(ReservationState::Committed)
        );
        for current in [
            None,
            Some(ReservationState::Released),
            Some(ReservationState::Restocked),
        ] {
            assert!(
                matches!(Move::Commit.plan(current), Plan::Invalid(_)),
                "{current:?}"
            );
        }
    }
}

/// What the state machine hands a stock step: the order (extra fields are ignored).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct StockStepInput {
    /// The order.
    pub order_id: OrderId,
    /// Its lines (needed to reserve; the other steps read them from the reservation).
    #[serde(default)]
    pub items: Vec<StockLineInput>,
    /// The request's correlation id, carried into the events.
    #[serde(default)]
    pub correlation_id: Option<String>,
}

/// One line of the order as the state machine passes it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct StockLineInput {
    /// The product.
    pub sku: Sku,
    /// Units.
    pub quantity: u32,
}

impl StockStepInput {
    fn trace(&self) -> shared::step::Trace {
        shared::step::Trace::of(&self.order_id, self.correlation_id.as_deref())
    }
}

/// Step `inventory-reserve`.
pub async fn reserve_step(
    store: &Reservations,
    input: StockStepInput,
) -> Result<StepOutcome, StepError> {
    if input.items.is_empty() {
        return Err(StepError::business(
            INVALID_STATE,
            format!("order {} has no lines to reserve", input.order_id),
        ));
    }
    let lines: Vec<StockLine> = input
        .items
        .iter()
        .map(|l| StockLine {
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .collect();
    let envelope = input.trace().envelope(StockReserved {
        order_id: input.order_id.clone(),
        lines: lines.clone(),
    });
    store
        .reserve(
            &input.order_id,
            &lines,
            &envelope,
            envelope.metadata.occurred_at,
        )
        .await
}

/// Steps `inventory-release`, `inventory-commit`, `inventory-restock`.
pub async fn move_step(
    store: &Reservations,
    step: Move,
    input: StockStepInput,
) -> Result<StepOutcome, StepError> {
    apply(store, &input.order_id, step, &input.trace()).await
}
