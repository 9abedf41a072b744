//! `apply`: the one place where transitions are decided. The writer, `fsck`,
//! the server hook and any cache all go through it.

use super::config::{Config, ConfigError, check_text};
use super::event::{Event, EventBody};
use super::ids::{OrderId, Role, VoyageId};
use super::state::{Handoff, Order, Rejection, State, Status, Voyage};

/// Size limits on text that enters the ledger.
pub mod limits {
    pub const TITLE: usize = 200;
    pub const BRIEF: usize = 64 * 1024;
    pub const CRITERION: usize = 500;
    pub const CRITERIA: usize = 50;
    pub const REASON: usize = 16 * 1024;
    pub const SUMMARY: usize = 64 * 1024;
    pub const ACTOR: usize = 128;
}

/// Why an event cannot be applied to a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("the pipeline is not initialized: run `git mso init`")]
    NotInitialized,
    #[error("the pipeline is already initialized")]
    AlreadyInitialized,
    #[error("no order {0}")]
    UnknownOrder(OrderId),
    #[error("order {0} already exists")]
    OrderExists(OrderId),
    #[error("order id {got} is out of sequence: the next {kind} id is {expected}")]
    OrderOutOfSequence { got: OrderId, expected: OrderId, kind: String },
    #[error("no voyage {0}")]
    UnknownVoyage(VoyageId),
    #[error("{voyage} is busy: {order} is running on it")]
    VoyageBusy { voyage: VoyageId, order: OrderId },
    #[error("voyage id {got} is out of sequence: the next voyage id is {expected}")]
    VoyageOutOfSequence { got: VoyageId, expected: VoyageId },
    #[error("unknown kind {kind} (configured: {known})")]
    UnknownKind { kind: String, known: String },
    #[error("{0}")]
    BadInput(String),
    #[error("{order} is {status} at {role}, not {expected}")]
    WrongState { order: OrderId, status: Status, role: Role, expected: &'static str },
    #[error("{order} is at {current}, not {role}")]
    WrongRole { order: OrderId, role: Role, current: Role },
    #[error("{order} cannot advance {from} -> {to}: the role after {current} in its sequence is {expected}")]
    BadAdvance { order: OrderId, from: Role, to: Role, current: Role, expected: String },
    #[error("{order} cannot go back to {to}: it is not {current} or an earlier role of its sequence")]
    BadRejectTarget { order: OrderId, to: Role, current: Role },
    #[error("{by} is not an approver (approvers: {approvers})")]
    NotAnApprover { by: String, approvers: String },
    #[error("{order}: the approval pins {got}, but the reviewed head is {expected}")]
    WrongCommit { order: OrderId, got: String, expected: String },
    #[error("{order}: the lease is held by {holder}, not {runner}")]
    NotLeaseHolder { order: OrderId, holder: String, runner: String },
    #[error("{0}: a success or approval must record ADVANCED or COMPLETED in the same transaction")]
    HandOffMissing(OrderId),
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    #[error("the stored state does not hold together: {0}")]
    Inconsistent(String),
}

type Result<T> = std::result::Result<T, TransitionError>;

fn text(what: &str, value: &str, max: usize) -> Result<()> {
    check_text(what, value, max).map_err(TransitionError::BadInput)
}

/// Multi-line text (briefs, reasons): bounded, no control characters but newline and tab.
fn long_text(what: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(TransitionError::BadInput(format!("{what} is {} bytes, the limit is {max}", value.len())));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(TransitionError::BadInput(format!("{what} contains control characters")));
    }
    Ok(())
}

fn commit_id(what: &str, id: &str) -> Result<()> {
    if id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(TransitionError::BadInput(format!("{what} is not a full commit id: {}", super::ids::shown(id))))
    }
}

fn check_envelope(event: &Event) -> Result<()> {
    let id_ok = (8..=64).contains(&event.id.len())
        && event.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(TransitionError::BadInput(format!("malformed event id {}", super::ids::shown(&event.id))));
    }
    if event.at < 0 {
        return Err(TransitionError::BadInput("event time is before 1970".into()));
    }
    text("actor", &event.actor, limits::ACTOR)
}

/// Apply one event. On error the event changes nothing the caller keeps.
pub fn apply(mut state: State, event: &Event) -> Result<State> {
    check_envelope(event)?;
    match &event.body {
        EventBody::Init { config } => {
            if state.config.is_some() {
                return Err(TransitionError::AlreadyInitialized);
            }
            config.validate()?;
            state.config = Some(config.clone());
        }
        EventBody::ConfigSet { key, value } => {
            let mut config = config(&state)?.clone();
            config.set(key, value)?;
            state.config = Some(config);
        }
        EventBody::VoyageCreated { voyage, base } => {
            config(&state)?;
            commit_id("voyage base", base)?;
            let expected = VoyageId::new(state.counters.next_voyage());
            if *voyage != expected {
                return Err(TransitionError::VoyageOutOfSequence { got: *voyage, expected });
            }
            state.counters.voyages = voyage.number();
            state.voyages.insert(
                *voyage,
                Voyage { id: *voyage, branch: voyage.branch(), base: base.clone(), created: event.at, active: None },
            );
        }
        EventBody::OrderCreated { order, title, brief, acceptance, roles, gates, voyage } => {
            let config = config(&state)?;
            if config.kind(order.kind()).is_none() {
                return Err(TransitionError::UnknownKind { kind: order.kind().to_string(), known: config.kind_list() });
            }
            text("title", title, limits::TITLE)?;
            long_text("brief", brief, limits::BRIEF)?;
            if acceptance.len() > limits::CRITERIA {
                return Err(TransitionError::BadInput(format!(
                    "{} acceptance criteria, the limit is {}",
                    acceptance.len(),
                    limits::CRITERIA
                )));
            }
            for ac in acceptance {
                text("acceptance criterion", ac, limits::CRITERION)?;
            }
            config.check_sequence(roles, gates).map_err(TransitionError::BadInput)?;
            if state.orders.contains_key(order) {
                return Err(TransitionError::OrderExists(order.clone()));
            }
            let expected = OrderId::new(order.kind().clone(), state.counters.next_order(order.kind()));
            if *order != expected {
                return Err(TransitionError::OrderOutOfSequence {
                    got: order.clone(),
                    expected,
                    kind: order.kind().to_string(),
                });
            }
            if !state.voyages.contains_key(voyage) {
                return Err(TransitionError::UnknownVoyage(*voyage));
            }
            state.counters.orders.insert(order.kind().clone(), order.number());
            state.stats.orders += 1;
            state.stats.add(&roles[0], Status::Queued);
            let created = Order {
                id: order.clone(),
                seq: state.stats.orders,
                title: title.clone(),
                brief: brief.clone(),
                acceptance: acceptance.clone(),
                roles: roles.clone(),
                gates: gates.clone(),
                voyage: *voyage,
                role: roles[0].clone(),
                status: Status::Queued,
                attempt: 1,
                failures: 0,
                lease: None,
                head: None,
                handoffs: Vec::new(),
                rejections: Vec::new(),
                last_error: None,
                created: event.at,
                updated: event.at,
                history: vec![event.clone()],
            };
            state.orders.insert(order.clone(), created);
        }
        body => {
            let order_id = body.order().expect("every other event names an order");
            let max_attempts = config(&state)?.max_attempts;
            let approvers = config(&state)?.approvers.clone();
            let before = state.orders.get(order_id).ok_or_else(|| TransitionError::UnknownOrder(order_id.clone()))?;
            let mut order = before.clone();
            transition(&mut order, event, max_attempts, &approvers)?;
            if !matches!(body, EventBody::LeaseRenewed { .. }) {
                // Renewals only move the lease expiry; keeping them out of the
                // order's history keeps its blob bounded while a crew runs long.
                order.history.push(event.clone());
            }
            order.updated = event.at;
            let (role_before, status_before) = (before.role.clone(), before.status);
            occupy_voyage(&mut state, status_before, &order)?;
            if !state.stats.remove(&role_before, status_before) {
                return Err(TransitionError::Inconsistent(format!(
                    "stats.json does not count {order_id} as {status_before} at {role_before}"
                )));
            }
            state.stats.add(&order.role, order.status);
            state.orders.insert(order_id.clone(), order);
        }
    }
    state.stats.events += 1;
    Ok(state)
}

/// Keep `voyage.active` in step with the order whose crew runs on it; a
/// second order of a busy voyage cannot be dispatched.
fn occupy_voyage(state: &mut State, before: Status, order: &Order) -> Result<()> {
    let (was, is) = (before == Status::Running, order.status == Status::Running);
    if was == is {
        return Ok(());
    }
    let voyage = state.voyages.get_mut(&order.voyage).ok_or(TransitionError::UnknownVoyage(order.voyage))?;
    if is {
        if let Some(busy) = &voyage.active {
            return Err(TransitionError::VoyageBusy { voyage: voyage.id, order: busy.clone() });
        }
        voyage.active = Some(order.id.clone());
    } else {
        voyage.active = None;
    }
    Ok(())
}

fn config(state: &State) -> Result<&Config> {
    state.config.as_ref().ok_or(TransitionError::NotInitialized)
}

fn expect_status(order: &Order, status: Status, expected: &'static str) -> Result<()> {
    if order.status == status {
        Ok(())
    } else {
        Err(TransitionError::WrongState {
            order: order.id.clone(),
            status: order.status,
            role: order.role.clone(),
            expected,
        })
    }
}

fn expect_role(order: &Order, role: &Role) -> Result<()> {
    if &order.role == role {
        Ok(())
    } else {
        Err(TransitionError::WrongRole { order: order.id.clone(), role: role.clone(), current: order.role.clone() })
    }
}

fn expect_lease_holder(order: &Order, runner: &str) -> Result<()> {
    let holder = order.lease.as_ref().map(|l| l.runner.as_str()).unwrap_or("nobody");
    if holder == runner {
        Ok(())
    } else {
        Err(TransitionError::NotLeaseHolder { order: order.id.clone(), holder: holder.into(), runner: runner.into() })
    }
}

/// Queue the order for a fresh run at `role`. Attempts count runs of one
/// role: they start at 1 when the order moves on, and go up when the same
/// role runs again (after a failure, a rejection or a retry).
fn requeue(order: &mut Order, role: &Role, attempt: u32) {
    order.attempt = attempt;
    order.role = role.clone();
    order.status = Status::Queued;
    order.failures = 0;
}

/// A failed run at the current role: retry while attempts remain, else fail.
fn record_failure(order: &mut Order, reason: String, max_attempts: u32) {
    order.lease = None;
    order.failures += 1;
    order.last_error = Some(reason);
    if order.failures >= max_attempts {
        order.status = Status::Failed;
    } else {
        order.status = Status::Queued;
        order.attempt += 1;
    }
}

fn transition(order: &mut Order, event: &Event, max_attempts: u32, approvers: &[String]) -> Result<()> {
    match &event.body {
        EventBody::Dispatched { role, attempt, lease, .. } => {
            expect_status(order, Status::Queued, "queued")?;
            expect_role(order, role)?;
            if *attempt != order.attempt {
                return Err(TransitionError::BadInput(format!(
                    "{}: dispatch names attempt {attempt}, the order is at attempt {}",
                    order.id, order.attempt
                )));
            }
            text("runner", &lease.runner, limits::ACTOR)?;
            text("host", &lease.host, limits::ACTOR)?;
            if lease.expires <= event.at {
                return Err(TransitionError::BadInput(format!("{}: the lease expires before it starts", order.id)));
            }
            order.status = Status::Running;
            order.lease = Some(lease.clone());
        }
        EventBody::LeaseRenewed { runner, expires, .. } => {
            expect_status(order, Status::Running, "running")?;
            expect_lease_holder(order, runner)?;
            if let Some(lease) = order.lease.as_mut() {
                lease.expires = (*expires).max(lease.expires);
            }
        }
        EventBody::Succeeded { role, head, summary, .. } => {
            expect_status(order, Status::Running, "running")?;
            expect_role(order, role)?;
            commit_id("head", head)?;
            long_text("summary", summary, limits::SUMMARY)?;
            order.lease = None;
            order.failures = 0;
            order.last_error = None;
            order.head = Some(head.clone());
            order.handoffs.push(Handoff { role: role.clone(), head: head.clone(), summary: summary.clone() });
            order.status = if order.is_gated(role) { Status::Review } else { Status::HandingOff };
        }
        EventBody::Failed { role, reason, .. } => {
            expect_status(order, Status::Running, "running")?;
            expect_role(order, role)?;
            long_text("reason", reason, limits::REASON)?;
            record_failure(order, reason.clone(), max_attempts);
        }
        EventBody::LeaseExpired { role, runner, .. } => {
            expect_status(order, Status::Running, "running")?;
            expect_role(order, role)?;
            expect_lease_holder(order, runner)?;
            record_failure(order, format!("lease of {runner} expired"), max_attempts);
        }
        EventBody::Advanced { from, to, .. } => {
            expect_status(order, Status::HandingOff, "handing off after a success or approval")?;
            // `from` must be the predecessor of `to` in this order's sequence,
            // and the order must be there: the bug class this ledger removes.
            let expected = order.next_role(&order.role).cloned();
            if from != &order.role || expected.as_ref() != Some(to) {
                return Err(TransitionError::BadAdvance {
                    order: order.id.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    current: order.role.clone(),
                    expected: expected.map_or_else(|| "none (it is the last role)".into(), |r| r.to_string()),
                });
            }
            requeue(order, to, 1);
        }
        EventBody::Completed { .. } => {
            expect_status(order, Status::HandingOff, "handing off after a success or approval")?;
            if let Some(next) = order.next_role(&order.role) {
                return Err(TransitionError::BadInput(format!(
                    "{} cannot complete at {}: {next} follows in its sequence",
                    order.id, order.role
                )));
            }
            order.status = Status::Completed;
        }
        EventBody::Approved { role, by, commit, comment, .. } => {
            expect_status(order, Status::Review, "awaiting review")?;
            expect_role(order, role)?;
            authorize(by, approvers)?;
            long_text("comment", comment, limits::REASON)?;
            let reviewed = order.head.clone().unwrap_or_default();
            if commit != &reviewed {
                return Err(TransitionError::WrongCommit {
                    order: order.id.clone(),
                    got: commit.clone(),
                    expected: reviewed,
                });
            }
            order.status = Status::HandingOff;
        }
        EventBody::Rejected { role, by, reason, to, .. } => {
            expect_status(order, Status::Review, "awaiting review")?;
            expect_role(order, role)?;
            authorize(by, approvers)?;
            long_text("reason", reason, limits::REASON)?;
            if reason.trim().is_empty() {
                return Err(TransitionError::BadInput("a rejection needs a reason".into()));
            }
            let current = order.roles.iter().position(|r| r == role).ok_or_else(|| {
                TransitionError::Inconsistent(format!("{} is at {role}, which is not in its sequence", order.id))
            })?;
            if !order.roles[..=current].contains(to) {
                return Err(TransitionError::BadRejectTarget {
                    order: order.id.clone(),
                    to: to.clone(),
                    current: role.clone(),
                });
            }
            order.rejections.push(Rejection { role: role.clone(), by: by.clone(), reason: reason.clone() });
            requeue(order, to, order.attempt + 1);
        }
        EventBody::Retried { .. } => {
            expect_status(order, Status::Failed, "failed")?;
            let role = order.role.clone();
            requeue(order, &role, order.attempt + 1);
        }
        EventBody::Cancelled { reason, .. } => {
            if order.status.is_terminal() || order.status == Status::HandingOff {
                return Err(TransitionError::WrongState {
                    order: order.id.clone(),
                    status: order.status,
                    role: order.role.clone(),
                    expected: "active",
                });
            }
            long_text("reason", reason, limits::REASON)?;
            order.lease = None;
            order.status = Status::Cancelled;
        }
        EventBody::Init { .. }
        | EventBody::ConfigSet { .. }
        | EventBody::VoyageCreated { .. }
        | EventBody::OrderCreated { .. } => unreachable!("handled by apply"),
    }
    Ok(())
}

fn authorize(by: &str, approvers: &[String]) -> Result<()> {
    text("reviewer", by, limits::ACTOR)?;
    if approvers.is_empty() || approvers.iter().any(|a| a == by) {
        Ok(())
    } else {
        Err(TransitionError::NotAnApprover { by: by.into(), approvers: approvers.join(", ") })
    }
}

/// A transaction must leave no order half-way through a hand-off.
pub fn check_transaction(state: &State, events: &[Event]) -> Result<()> {
    for id in events.iter().filter_map(|e| e.body.order()) {
        if state.orders.get(id).is_some_and(|o| o.status == Status::HandingOff) {
            return Err(TransitionError::HandOffMissing(id.clone()));
        }
    }
    Ok(())
}

/// Apply a whole transaction, checking it as a unit.
pub fn apply_transaction(mut state: State, events: &[Event]) -> Result<State> {
    if events.is_empty() {
        return Err(TransitionError::BadInput("a transaction needs at least one event".into()));
    }
    for event in events {
        state = apply(state, event)?;
    }
    check_transaction(&state, events)?;
    Ok(state)
}

/// The event that must follow a success at an ungated role, or an approval,
/// in the same transaction: ADVANCED to the next role of the order's own
/// sequence (from that role's predecessor), or COMPLETED after the last.
pub fn hand_off(order: &Order) -> EventBody {
    let here = order.roles.iter().position(|r| r == &order.role);
    match here.and_then(|i| order.roles.get(i..i + 2)) {
        // `from` is the predecessor of `to` in the order's own sequence.
        Some([from, to]) => EventBody::Advanced { order: order.id.clone(), from: from.clone(), to: to.clone() },
        _ => EventBody::Completed { order: order.id.clone() },
    }
}
