//! `apply`: the one place where transitions are decided. The writer, `fsck`,
//! `sync` and the server hook all go through it, so a rule written here holds
//! for a ledger made on a laptop as much as for one pushed to a server:
//! who may change the config, review or report a run; which commits a run
//! may record; how far every value may go. Pipeline events are decided here;
//! an order's own state machine is in `transition.rs`.

use super::config::{Config, ConfigError};
use super::event::{Event, EventBody, derive_id, short};
use super::ids::{IdError, OrderId, Role, VoyageId};
use super::state::{Closing, LandedHow, Landing, Order, Publication, State, Status, Voyage};
use super::text;

/// Size limits on what enters the ledger.
pub mod limits {
    pub const TITLE: usize = 200;
    pub const BRIEF: usize = 64 * 1024;
    pub const CRITERION: usize = 500;
    pub const CRITERIA: usize = 50;
    pub const REASON: usize = 16 * 1024;
    pub const SUMMARY: usize = 64 * 1024;
    /// Runner ids and host names.
    pub const RUNNER: usize = 128;
    /// A published pull request's URL.
    pub const URL: usize = 2048;
    /// A branch name a voyage lands on.
    pub const BRANCH: usize = 200;
    /// Events in one transaction (one ledger commit).
    pub const EVENTS_PER_TX: usize = 1_000;
    /// Events in one order's history; past it, no new run of the order starts.
    pub const HISTORY: usize = 1_000;
    /// The latest time an event may carry: 9999-12-31 23:59:59Z.
    pub const MAX_TIME: i64 = 253_402_300_799;
}

/// What a repository holds under an object id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Commit,
    /// Another kind of object: a tree, a blob, a tag.
    NotACommit,
    Missing,
}

/// What `apply` needs to know of the repository: that a commit an event
/// names exists, and how two commits relate. The store answers from the
/// object database; tests of the core answer from a model.
pub trait Objects {
    /// What `id` (40 hex digits) names in this repository.
    fn presence(&self, id: &str) -> Presence;
    /// Whether `commit` is `ancestor` or has it in its history (both
    /// present); `None` when this repository cannot tell (a shallow clone, a
    /// history longer than a walk may go).
    fn descends_from(&self, commit: &str, ancestor: &str) -> Option<bool>;
    /// Whether a commit this repository lacks is let pass. Where a change is
    /// accepted (the writer, the server hook) it never is. Where history is
    /// replayed (`fsck`, `sync`) it is: the server that accepted the event had
    /// the commit, and a clone may lack it (a finished voyage's branch was
    /// deleted, or the commit is under a ref clones do not fetch). A commit
    /// that is present but of the wrong kind or lineage is refused everywhere.
    fn tolerate_missing(&self) -> bool {
        false
    }
    /// The message of `commit`, bounded; `None` when this repository cannot
    /// read it.
    fn message(&self, _commit: &str) -> Option<String> {
        None
    }
}

/// Why an event cannot be applied to a state.
/// For an "order" id that names a voyage (`VOY-0001`): where to look instead.
fn voyage_hint(id: &OrderId) -> String {
    if id.kind().as_str() == "VOY" { format!(": {id} is a voyage (`git mso voyage show {id}`)") } else { String::new() }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("the pipeline is not initialized: run `git mso init`")]
    NotInitialized,
    #[error("the pipeline is already initialized")]
    AlreadyInitialized,
    #[error("no order {0}{hint}", hint = voyage_hint(.0))]
    UnknownOrder(OrderId),
    #[error("order {0} already exists")]
    OrderExists(OrderId),
    #[error("order id {got} is out of sequence: the next {kind} id is {expected}")]
    OrderOutOfSequence { got: OrderId, expected: OrderId, kind: String },
    #[error("no voyage {0}")]
    UnknownVoyage(VoyageId),
    #[error("{voyage} is busy: {order} runs there or awaits review")]
    VoyageBusy { voyage: VoyageId, order: OrderId },
    #[error("voyage id {got} is out of sequence: the next voyage id is {expected}")]
    VoyageOutOfSequence { got: VoyageId, expected: VoyageId },
    #[error("unknown kind {kind} (configured: {known})")]
    UnknownKind { kind: String, known: String },
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Id(#[from] IdError),
    #[error("{order} is {status} at {role}, not {expected}")]
    WrongState { order: OrderId, status: Status, role: Role, expected: &'static str },
    #[error("{order} is at {current}, not {role}")]
    WrongRole { order: OrderId, role: Role, current: Role },
    #[error("{order}: the event names attempt {got}, the order is at attempt {current}")]
    WrongAttempt { order: OrderId, got: u32, current: u32 },
    #[error("{order} cannot advance {from} -> {to}: the role after {current} in its sequence is {expected}")]
    BadAdvance { order: OrderId, from: Role, to: Role, current: Role, expected: String },
    #[error("{order} cannot go back to {to}: it is not {current} or an earlier role of its sequence")]
    BadRejectTarget { order: OrderId, to: Role, current: Role },
    #[error("{by} is not an approver (approvers: {approvers})")]
    NotAnApprover { by: String, approvers: String },
    #[error("{actor} is not an admin (admins: {admins}); only admins change the pipeline")]
    NotAnAdmin { actor: String, admins: String },
    #[error(
        "{actor} may not {what} {order}: with an approver list, only its creator ({creator}), admins and approvers may"
    )]
    NotAllowed { actor: String, what: &'static str, order: OrderId, creator: String },
    #[error("a review by {by} recorded by {actor}: reviewers record their own reviews")]
    NotTheReviewer { by: String, actor: String },
    #[error("{order}: the review pins {got}, but the reviewed head is {expected}")]
    WrongCommit { order: OrderId, got: String, expected: String },
    #[error("{order}: the lease is held by {holder}, not {claimant}")]
    NotLeaseHolder { order: OrderId, holder: String, claimant: String },
    #[error("{order}: the lease of {runner} runs until {until}; only its holder {holder} may release it earlier")]
    LeaseStillValid { order: OrderId, runner: String, until: String, holder: String },
    #[error("{what} {id} is not a commit in this repository")]
    MissingObject { what: &'static str, id: String },
    #[error("{order}: head {head} does not descend from {voyage}'s recorded head {recorded}")]
    NotDescendant { order: OrderId, head: String, voyage: VoyageId, recorded: String },
    #[error("{0} has {limit} events, the limit: cancel it and file a new order", limit = limits::HISTORY)]
    HistoryFull(OrderId),
    #[error("event {index} has id {got}, but its content and parent give {expected}")]
    BadEventId { index: usize, got: String, expected: String },
    #[error("{0}: a success or approval must record ADVANCED or COMPLETED in the same transaction")]
    HandOffMissing(OrderId),
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    #[error("the stored state does not hold together: {0}")]
    Inconsistent(String),
}

pub(super) type Result<T> = std::result::Result<T, TransitionError>;

pub(super) fn line(what: &str, value: &str, max: usize) -> Result<()> {
    text::check_line(what, value, max).map_err(TransitionError::BadInput)
}

pub(super) fn long_text(what: &str, value: &str, max: usize) -> Result<()> {
    text::check_multiline(what, value, max).map_err(TransitionError::BadInput)
}

pub(super) fn token(what: &str, value: &str) -> Result<()> {
    text::check_token(what, value, limits::RUNNER).map_err(TransitionError::BadInput)
}

fn commit_id(what: &str, id: &str) -> Result<()> {
    if id.len() == 40 && super::ids::is_lower_hex(id) {
        Ok(())
    } else {
        Err(TransitionError::BadInput(format!("{what} is not a full commit id: {}", super::ids::shown(id))))
    }
}

/// A commit an event names: well-formed, and a commit of this repository.
/// Returns whether it is here (it may be absent only where history is replayed).
pub(super) fn existing_commit(what: &'static str, id: &str, objects: &dyn Objects) -> Result<bool> {
    commit_id(what, id)?;
    match objects.presence(id) {
        Presence::Commit => Ok(true),
        Presence::Missing if objects.tolerate_missing() => Ok(false),
        _ => Err(TransitionError::MissingObject { what, id: short(id).into() }),
    }
}

fn check_envelope(event: &Event) -> Result<()> {
    if event.id.len() != 32 || !super::ids::is_lower_hex(&event.id) {
        return Err(TransitionError::BadInput(format!("malformed event id {}", super::ids::shown(&event.id))));
    }
    if !(0..=limits::MAX_TIME).contains(&event.at) {
        return Err(TransitionError::BadInput(format!("event time {} is out of range", event.at)));
    }
    text::check_actor("actor", &event.actor).map_err(TransitionError::BadInput)
}

fn config(state: &State) -> Result<&Config> {
    state.config.as_ref().ok_or(TransitionError::NotInitialized)
}

fn require_admin(config: &Config, actor: &str) -> Result<()> {
    if config.admins.iter().any(|a| a == actor) {
        Ok(())
    } else {
        Err(TransitionError::NotAnAdmin { actor: actor.into(), admins: config.admins.join(", ") })
    }
}

fn bump(counter: u64, what: &str) -> Result<u64> {
    counter.checked_add(1).ok_or_else(|| TransitionError::Inconsistent(format!("the {what} counter overflows")))
}

/// Apply one event. On error the state must be discarded: an event either
/// applies whole or the transaction it is part of is refused.
pub fn apply(mut state: State, event: &Event, objects: &dyn Objects) -> Result<State> {
    check_envelope(event)?;
    match &event.body {
        EventBody::Init { config } => {
            if state.config.is_some() {
                return Err(TransitionError::AlreadyInitialized);
            }
            config.validate()?;
            if config.admins.first() != Some(&event.actor) {
                return Err(TransitionError::BadInput(format!(
                    "INIT must name its actor {} as the first admin",
                    event.actor
                )));
            }
            state.config = Some(config.clone());
        }
        EventBody::ConfigSet { key, value } => {
            let current = config(&state)?;
            require_admin(current, &event.actor)?;
            let mut next = current.clone();
            next.set(key, value)?;
            state.config = Some(next);
        }
        EventBody::VoyageCreated { voyage, base, target } => {
            config(&state)?;
            existing_commit("voyage base", base, objects)?;
            if let Some(target) = target {
                check_branch_name("target branch", target)?;
            }
            let expected = state.counters.next_voyage()?;
            if *voyage != expected {
                return Err(TransitionError::VoyageOutOfSequence { got: *voyage, expected });
            }
            state.counters.voyages = voyage.number();
            let created = Voyage {
                id: *voyage,
                branch: voyage.branch(),
                base: base.clone(),
                head: base.clone(),
                created: event.at,
                target: target.clone(),
                active: None,
                published: None,
                landed: None,
                closed: None,
            };
            state.voyages.insert(*voyage, created);
        }
        EventBody::VoyagePublished { voyage, .. }
        | EventBody::VoyageLanded { voyage, .. }
        | EventBody::VoyageClosed { voyage, .. } => {
            let config = config(&state)?.clone();
            let State { voyages, orders, .. } = &mut state;
            let voyage = voyages.get_mut(voyage).ok_or(TransitionError::UnknownVoyage(*voyage))?;
            // Who runs a release on the voyage now: that run may publish it.
            let running = voyage
                .active
                .as_ref()
                .and_then(|id| orders.get(id))
                .filter(|o| o.status == Status::Running && o.role.as_str() == "REL");
            let runner = running.and_then(|o| o.lease.as_ref()).map(|l| l.actor.clone());
            voyage_event(voyage, event, &config, runner.as_deref(), objects)?;
        }
        EventBody::OrderCreated { order, title, brief, acceptance, roles, gates, voyage, budget_micros } => {
            if budget_micros.is_some_and(|b| !super::config::budget_in_range(b)) {
                return Err(TransitionError::BadInput(super::config::BUDGET_RANGE.into()));
            }
            create_order(&mut state, event, order, (title, brief, acceptance), (roles, gates), *voyage)?;
            if let Some(created) = state.orders.get_mut(order) {
                created.budget_micros = *budget_micros;
            }
        }
        body => {
            let id = body.order().ok_or_else(|| TransitionError::Inconsistent("an event without an order".into()))?;
            let State { config, orders, voyages, stats, .. } = &mut state;
            let config = config.as_ref().ok_or(TransitionError::NotInitialized)?;
            // An order moves only to an open voyage.
            if let EventBody::OrderMoved { voyage: to, .. } = body {
                let target = voyages.get(to).ok_or(TransitionError::UnknownVoyage(*to))?;
                if let Some(why) = target.finished() {
                    return Err(TransitionError::BadInput(format!("{why}: move the order to an open voyage")));
                }
            }
            let mut order = orders.remove(id).ok_or_else(|| TransitionError::UnknownOrder(id.clone()))?;
            let voyage = voyages.get_mut(&order.voyage).ok_or(TransitionError::UnknownVoyage(order.voyage))?;
            // Events a person or runner may repeat without the order moving
            // on: each is refused once the history is full, so no loop of
            // them grows an order's blob without bound.
            let repeatable = matches!(
                body,
                EventBody::Dispatched { .. }
                    | EventBody::Retried { .. }
                    | EventBody::Rejected { .. }
                    | EventBody::Held { .. }
                    | EventBody::OrderEdited { .. }
                    | EventBody::OrderMoved { .. }
                    | EventBody::ApprovalWithdrawn { .. }
            );
            if repeatable && order.history.len() >= limits::HISTORY {
                return Err(TransitionError::HistoryFull(order.id));
            }
            let (role_before, status_before) = (order.role.clone(), order.status);
            super::transition::transition(&mut order, voyage, event, config, objects)?;
            if !matches!(body, EventBody::LeaseRenewed { .. }) {
                // Renewals only move the lease expiry; keeping them out of the
                // order's history keeps its blob bounded while a crew runs long.
                order.history.push(event.clone());
            }
            order.updated = event.at;
            occupy_voyage(voyage, status_before, &order)?;
            if !stats.remove(&role_before, status_before) || !stats.add(&order.role, order.status) {
                return Err(TransitionError::Inconsistent(format!(
                    "stats.json does not count {id} as {status_before} at {role_before}"
                )));
            }
            orders.insert(id.clone(), order);
        }
    }
    state.stats.events = bump(state.stats.events, "event")?;
    Ok(state)
}

fn create_order(
    state: &mut State,
    event: &Event,
    order: &OrderId,
    (title, brief, acceptance): (&String, &String, &Vec<String>),
    (roles, gates): (&Vec<Role>, &Vec<Role>),
    voyage: VoyageId,
) -> Result<()> {
    let config = config(state)?;
    let Some(kind) = config.kind(order.kind()) else {
        return Err(TransitionError::UnknownKind { kind: order.kind().to_string(), known: config.kind_list() });
    };
    check_title(title)?;
    long_text("brief", brief, limits::BRIEF)?;
    check_criteria(acceptance)?;
    config.check_sequence(roles, gates).map_err(TransitionError::BadInput)?;
    // The kind's sequence and gates are pipeline rules: only an admin files
    // an order that skips a role or a review gate of its kind.
    let keeps_rules = *roles == kind.sequence && kind.gates.iter().all(|g| gates.contains(g));
    if !keeps_rules && !config.admins.contains(&event.actor) {
        let seq: Vec<&str> = kind.sequence.iter().map(Role::as_str).collect();
        let kind_gates: Vec<&str> = kind.gates.iter().map(Role::as_str).collect();
        return Err(TransitionError::BadInput(format!(
            "only admins file {} orders with other roles or fewer gates than the kind's ({}, gates {})",
            kind.code,
            seq.join(","),
            if kind_gates.is_empty() { "none".into() } else { kind_gates.join(",") }
        )));
    }
    if state.orders.contains_key(order) {
        return Err(TransitionError::OrderExists(order.clone()));
    }
    let expected = state.counters.next_order(order.kind())?;
    if *order != expected {
        return Err(TransitionError::OrderOutOfSequence {
            got: order.clone(),
            expected,
            kind: order.kind().to_string(),
        });
    }
    match state.voyages.get(&voyage) {
        None => return Err(TransitionError::UnknownVoyage(voyage)),
        Some(v) => {
            if let Some(why) = v.finished() {
                return Err(TransitionError::BadInput(format!(
                    "{why}: file the order on a new voyage (leave out --voyage)"
                )));
            }
        }
    }
    state.counters.orders.insert(order.kind().clone(), order.number());
    state.stats.orders = bump(state.stats.orders, "order")?;
    if !state.stats.add(&roles[0], Status::Queued) {
        return Err(TransitionError::Inconsistent("stats.json counts overflow".into()));
    }
    let created = Order {
        id: order.clone(),
        seq: state.stats.orders,
        title: title.clone(),
        brief: brief.clone(),
        acceptance: acceptance.clone(),
        roles: roles.clone(),
        gates: gates.clone(),
        voyage,
        role: roles[0].clone(),
        status: Status::Queued,
        attempt: 1,
        failures: 0,
        lease: None,
        head: None,
        held: None,
        handoffs: Vec::new(),
        rejections: Vec::new(),
        last_error: None,
        created: event.at,
        updated: event.at,
        history: vec![event.clone()],
        budget_micros: None,
        retry_after: None,
    };
    state.orders.insert(order.clone(), created);
    Ok(())
}

/// An order's title: one line, bounded.
pub(super) fn check_title(title: &str) -> Result<()> {
    line("title", title, limits::TITLE)
}

/// An order's acceptance criteria: a bounded list of bounded lines.
pub(super) fn check_criteria(acceptance: &[String]) -> Result<()> {
    if acceptance.len() > limits::CRITERIA {
        return Err(TransitionError::BadInput(format!(
            "{} acceptance criteria, the limit is {}",
            acceptance.len(),
            limits::CRITERIA
        )));
    }
    acceptance.iter().try_for_each(|ac| line("acceptance criterion", ac, limits::CRITERION))
}

/// A branch name as git accepts it for a branch (`check-ref-format`), kept
/// to the characters branch names use in practice.
pub fn check_branch_name(what: &str, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > limits::BRANCH
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        || name.starts_with(['-', '/', '.'])
        || name.ends_with(['/', '.'])
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("//")
        || name.contains("/.")
        || name == "HEAD"
        // A voyage's branch is the work, never where work lands.
        || name.starts_with("voyage/");
    if bad {
        return Err(TransitionError::BadInput(format!("{what} is not a branch name: {}", super::ids::shown(name))));
    }
    Ok(())
}

/// What the events about a voyage itself may do: publish its recorded head
/// while it is open, record where it landed, close it. A landed or closed
/// voyage takes none of them again.
fn voyage_event(
    voyage: &mut Voyage,
    event: &Event,
    config: &Config,
    runner: Option<&str>,
    objects: &dyn Objects,
) -> Result<()> {
    if let Some(why) = voyage.finished() {
        return Err(TransitionError::BadInput(format!("{why}; it takes no {}", event.body.name())));
    }
    // Publishing and closing speak for the team: with an approver list, only
    // admins and approvers do it (and the runner of a release on the voyage
    // publishes).
    let manager = config.is_manager(&event.actor);
    let recorded_head = |head: &str, what: &str| {
        if head == voyage.head {
            Ok(())
        } else {
            Err(TransitionError::BadInput(format!(
                "{}: {what} {}, but its recorded head is {}",
                voyage.id,
                short(head),
                short(&voyage.head)
            )))
        }
    };
    let (at, by) = (event.at, event.actor.clone());
    match &event.body {
        EventBody::VoyagePublished { head, title, url, text, .. } => {
            if !manager && runner != Some(event.actor.as_str()) {
                return Err(TransitionError::BadInput(format!(
                    "{} may not publish {}: with an approver list, only admins, approvers and the runner of a \
                     release on it may",
                    event.actor, voyage.id
                )));
            }
            recorded_head(head, "the publication names")?;
            existing_commit("published head", head, objects)?;
            line("title", title, limits::TITLE)?;
            line("url", url, limits::URL)?;
            long_text("text", text, limits::SUMMARY)?;
            if title.trim().is_empty() || (url.trim().is_empty() && text.trim().is_empty()) {
                return Err(TransitionError::BadInput("a publication needs a title, and a URL or a text".into()));
            }
            voyage.published = Some(Publication { at, by, head: head.clone(), title: title.clone(), url: url.clone() });
        }
        EventBody::VoyageLanded { target, commit, head, how, .. } => {
            check_branch_name("target branch", target)?;
            match &voyage.target {
                Some(meant) if meant == target => {}
                Some(meant) => {
                    return Err(TransitionError::BadInput(format!(
                        "{} is meant to land on {meant}, not {target}",
                        voyage.id
                    )));
                }
                None => {
                    return Err(TransitionError::BadInput(format!(
                        "{} has no target branch, so it cannot land: close it when its work is merged",
                        voyage.id
                    )));
                }
            }
            recorded_head(head, "the landing names")?;
            if voyage.head == voyage.base {
                return Err(TransitionError::BadInput(format!("{} has no work of its own to land", voyage.id)));
            }
            let here = existing_commit("landing commit", commit, objects)?;
            if here {
                check_landing(voyage, commit, *how, objects)?;
            }
            // While a role runs or awaits review the head is not settled.
            if let Some(active) = &voyage.active {
                return Err(TransitionError::VoyageBusy { voyage: voyage.id, order: active.clone() });
            }
            voyage.landed =
                Some(Landing { at, by, target: target.clone(), commit: commit.clone(), head: head.clone(), how: *how });
        }
        EventBody::VoyageClosed { reason, .. } => {
            if !manager {
                return Err(TransitionError::BadInput(format!(
                    "{} may not close {}: with an approver list, only admins and approvers may",
                    event.actor, voyage.id
                )));
            }
            long_text("reason", reason, limits::REASON)?;
            if reason.trim().is_empty() {
                return Err(TransitionError::BadInput("closing a voyage needs a reason".into()));
            }
            voyage.closed = Some(Closing { at, by, reason: reason.clone() });
        }
        _ => return Err(TransitionError::Inconsistent("not a voyage event".into())),
    }
    Ok(())
}

/// A landing commit (present here) must have brought the voyage's head in
/// the way it says: be that head (fast-forward), have it in its history (a
/// merge), or carry the voyage's trailer (a squash).
fn check_landing(voyage: &Voyage, commit: &str, how: LandedHow, objects: &dyn Objects) -> Result<()> {
    let ok = match how {
        LandedHow::FastForward => Some(commit == voyage.head),
        LandedHow::Merge => objects.descends_from(commit, &voyage.head).map(|d| d && commit != voyage.head),
        LandedHow::Squash => objects.message(commit).map(|m| super::message::carries_voyage(&m, voyage.id)),
    };
    match ok {
        Some(true) => Ok(()),
        None if objects.tolerate_missing() => Ok(()),
        _ => Err(TransitionError::BadInput(format!(
            "{} did not land at {} by {how}: {}",
            voyage.id,
            short(commit),
            match how {
                LandedHow::FastForward => "a fast-forward landing names the voyage head itself".to_string(),
                LandedHow::Merge => format!("it does not have {} in its history", short(&voyage.head)),
                LandedHow::Squash => format!("its message has no `Mso-Voyage: {}` trailer", voyage.id),
            }
        ))),
    }
}

/// Keep `voyage.active` in step with the order that holds its branch: one
/// whose crew runs on it, or whose work there awaits review. No other order
/// of the voyage is dispatched meanwhile, so nothing builds on work that no
/// reviewer has seen.
fn occupy_voyage(voyage: &mut Voyage, before: Status, order: &Order) -> Result<()> {
    let (was, is) = (before.holds_voyage(), order.status.holds_voyage());
    if was == is {
        return Ok(());
    }
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

/// Every event's id must be the one its content and place give (`derive_id`).
pub fn check_ids(parent: Option<&str>, events: &[Event]) -> Result<()> {
    for (index, event) in events.iter().enumerate() {
        let expected = derive_id(parent, index, event);
        if event.id != expected {
            return Err(TransitionError::BadEventId { index: index + 1, got: event.id.clone(), expected });
        }
    }
    Ok(())
}

/// A transaction must be of bounded size and leave no order half-way through a hand-off.
pub fn check_transaction(state: &State, events: &[Event]) -> Result<()> {
    if events.is_empty() {
        return Err(TransitionError::BadInput("a transaction needs at least one event".into()));
    }
    if events.len() > limits::EVENTS_PER_TX {
        return Err(TransitionError::BadInput(format!(
            "{} events in one transaction, the limit is {}",
            events.len(),
            limits::EVENTS_PER_TX
        )));
    }
    for id in events.iter().filter_map(|e| e.body.order()) {
        if state.orders.get(id).is_some_and(|o| o.status == Status::HandingOff) {
            return Err(TransitionError::HandOffMissing(id.clone()));
        }
    }
    Ok(())
}

/// Apply a whole transaction appended after ledger commit `parent`, checking it as a unit.
pub fn apply_transaction(
    mut state: State,
    parent: Option<&str>,
    events: &[Event],
    objects: &dyn Objects,
) -> Result<State> {
    if events.len() > limits::EVENTS_PER_TX {
        return check_transaction(&state, events).map(|()| state);
    }
    check_ids(parent, events)?;
    for event in events {
        state = apply(state, event, objects)?;
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
