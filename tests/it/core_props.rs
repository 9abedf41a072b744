//! Property tests of the pure core: random command sequences only ever give
//! legal states or clear errors; messages round-trip; the fold is the state.

use std::collections::BTreeMap;

use git_mso::core::apply::apply_transaction;
use git_mso::core::layout;
use git_mso::core::message;
use git_mso::core::{Config, Event, EventBody, Order, OrderId, Role, State, Status, VoyageId};
use proptest::prelude::*;

use crate::common::model::{ADMIN, Cmd, Gen, HEAD, ModelObjects, cmd, commit, role, transaction};

fn check_invariants(state: &State) {
    let mut counts: BTreeMap<(Role, Status), u64> = BTreeMap::new();
    for order in state.orders.values() {
        *counts.entry((order.role.clone(), order.status)).or_default() += 1;
        assert_ne!(order.status, Status::HandingOff, "{} stored mid-hand-off", order.id);
        assert!(order.roles.contains(&order.role));
        assert!(order.attempt >= 1);
        assert_eq!(order.status == Status::Running, order.lease.is_some(), "{}: lease iff running", order.id);
        if order.status == Status::Completed {
            assert_eq!(order.roles.last(), Some(&order.role), "{} completed before its last role", order.id);
        }
        assert!(state.voyages.contains_key(&order.voyage), "{} is on an unknown voyage", order.id);
    }
    let mut stats: BTreeMap<(Role, Status), u64> = BTreeMap::new();
    for (role, per) in &state.stats.by_role {
        for (status, n) in per {
            stats.insert((role.clone(), *status), *n);
        }
    }
    assert_eq!(stats, counts, "stats.json must count exactly the stored orders");
    for voyage in state.voyages.values() {
        // One order at a time holds a voyage: it runs there, or its work there awaits review.
        let holding: Vec<&OrderId> =
            state.orders.values().filter(|o| o.voyage == voyage.id && o.status.holds_voyage()).map(|o| &o.id).collect();
        assert!(holding.len() <= 1, "{} is held by {holding:?} at once", voyage.id);
        assert_eq!(voyage.active.as_ref(), holding.first().copied(), "{} active marker", voyage.id);
    }
    assert_eq!(state.stats.orders as usize, state.orders.len());
}

/// The model's ledger commits: the parent of the `n`-th transaction.
fn parent(n: usize) -> Option<String> {
    (n > 0).then(|| format!("{n:040x}"))
}

fn init(g: &mut Gen) -> (State, Vec<Vec<Event>>) {
    let events = vec![g.event(None, EventBody::Init { config: Config::initial(ADMIN) })];
    (apply_transaction(State::default(), None, &events, &ModelObjects).unwrap(), vec![events])
}

/// Commands that are never legal: a stranger's config change, a forged
/// review, a result or early expiry by someone who does not hold the lease,
/// a head that does not build on the recorded one.
fn always_refused(cmd: &Cmd) -> bool {
    matches!(cmd, Cmd::StrangerConfig | Cmd::ForgedReview(_) | Cmd::Usurp(..) | Cmd::StaleHead(_))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_commands_give_legal_states_or_clear_errors(cmds in prop::collection::vec(cmd(), 1..80)) {
        let mut g = Gen::new();
        let (mut state, mut accepted) = init(&mut g);
        for cmd in &cmds {
            let bodies = transaction(&state, cmd, &mut g);
            if bodies.is_empty() {
                continue;
            }
            let events = g.events(parent(accepted.len()).as_deref(), bodies);
            match apply_transaction(state.clone(), parent(accepted.len()).as_deref(), &events, &ModelObjects) {
                Ok(next) => {
                    prop_assert!(!always_refused(cmd), "{cmd:?} was accepted");
                    state = next;
                    accepted.push(events);
                }
                Err(err) => {
                    let text = err.to_string();
                    prop_assert!(!text.is_empty() && !text.contains('\n'), "unclear error {text:?}");
                }
            }
            check_invariants(&state);
        }
        // Folding every accepted transaction from the root reproduces the state,
        // and every transaction's message parses back to the same events.
        let mut folded = State::default();
        for (n, events) in accepted.iter().enumerate() {
            let text = message::format(events);
            prop_assert_eq!(&message::parse(&text).unwrap(), events);
            folded = apply_transaction(folded, parent(n).as_deref(), events, &ModelObjects).unwrap();
        }
        prop_assert_eq!(&folded, &state);
        // The tree layout round-trips every order.
        let files = layout::render(&state);
        for order in state.orders.values() {
            let back: Order = layout::from_blob(&files[&layout::order_path(&order.id)]).unwrap();
            prop_assert_eq!(&back, order);
        }
    }

    #[test]
    fn arbitrary_text_in_messages_round_trips(title in "\\PC{1,60}", reason in "(?s).{0,200}") {
        let mut g = Gen::new();
        let events = vec![
            g.event(None, EventBody::Cancelled { order: "FTR-0001".parse().unwrap(), reason: reason.clone() }),
            g.event(None, EventBody::OrderCreated {
                order: "BUG-0002".parse().unwrap(),
                title,
                brief: reason,
                acceptance: vec![],
                roles: vec![role(0)],
                gates: vec![],
                voyage: VoyageId::new(1).unwrap(),
                budget_micros: None,
            }),
        ];
        let text = message::format(&events);
        prop_assert_eq!(message::parse(&text).unwrap(), events);
    }

    #[test]
    fn parse_never_panics_on_garbage(text in "(?s).{0,400}") {
        let _ = message::parse(&text);
        let _ = message::parse(&format!("x\n\n{text}\n\nMso-Schema: 3\n"));
    }
}

/// Apply `cmd` as the next transaction; panics if it is refused.
fn step(state: State, n: &mut usize, cmd: &Cmd, g: &mut Gen) -> State {
    let bodies = transaction(&state, cmd, g);
    let events = g.events(parent(*n).as_deref(), bodies);
    let next = apply_transaction(state, parent(*n).as_deref(), &events, &ModelObjects).unwrap();
    *n += 1;
    next
}

/// Apply raw (actor, body) pairs as the next transaction; the error if refused.
fn attempt(state: &State, n: usize, bodies: Vec<(String, EventBody)>, g: &mut Gen) -> Result<State, String> {
    let events = g.events(parent(n).as_deref(), bodies);
    apply_transaction(state.clone(), parent(n).as_deref(), &events, &ModelObjects).map_err(|e| e.to_string())
}

#[test]
fn a_success_without_its_hand_off_is_refused() {
    let mut g = Gen::new();
    let (mut state, _) = init(&mut g);
    let mut n = 1;
    for cmd in [Cmd::Create { kind: 2, short: false, voyage: 0 }, Cmd::Dispatch(0)] {
        state = step(state, &mut n, &cmd, &mut g);
    }
    // CHR has no gate: a SUCCEEDED alone would leave the order between roles.
    let bodies = transaction(&state, &Cmd::BareSucceed(0), &mut g);
    let err = attempt(&state, n, bodies, &mut g).unwrap_err();
    assert_eq!(err, "CHR-0001: a success or approval must record ADVANCED or COMPLETED in the same transaction");
    let next = step(state, &mut n, &Cmd::Succeed(0), &mut g);
    let order = next.orders.values().next().unwrap();
    assert_eq!((order.role.as_str(), order.status), ("BLD", Status::Queued));
}

#[test]
fn approve_writes_advanced_from_the_predecessor_of_the_next_role() {
    let mut g = Gen::new();
    let (mut state, _) = init(&mut g);
    let mut n = 1;
    for cmd in [Cmd::Create { kind: 0, short: false, voyage: 0 }, Cmd::Dispatch(0), Cmd::Succeed(0)] {
        state = step(state, &mut n, &cmd, &mut g);
    }
    let order = state.orders.values().next().unwrap().clone();
    assert_eq!(order.status, Status::Review);
    // Approving with an ADVANCED that skips a role is refused.
    let approved = EventBody::Approved {
        order: order.id.clone(),
        role: role(0),
        by: "a".into(),
        commit: order.head.clone().unwrap(),
        comment: String::new(),
    };
    let skip = EventBody::Advanced { order: order.id.clone(), from: role(0), to: role(2) };
    let err = attempt(&state, n, vec![("a".into(), approved), ("a".into(), skip)], &mut g).unwrap_err();
    assert!(err.contains("the role after PLN in its sequence is BLD"), "{err}");
    let next = step(state, &mut n, &Cmd::Approve(0), &mut g);
    let order = &next.orders[&order.id];
    assert_eq!((order.role.as_str(), order.status), ("BLD", Status::Queued));
    // Approving again: a clear error naming the actual state.
    let again = transaction(&next, &Cmd::Approve(0), &mut g);
    let err = attempt(&next, n, again, &mut g).unwrap_err();
    assert_eq!(err, "FTR-0001 is queued at BLD, not awaiting review");
}

#[test]
fn who_may_do_what_is_decided_by_apply() {
    let mut g = Gen::new();
    let (mut state, _) = init(&mut g);
    let mut n = 1;
    for cmd in [Cmd::Create { kind: 0, short: false, voyage: 0 }, Cmd::Dispatch(0)] {
        state = step(state, &mut n, &cmd, &mut g);
    }
    let id: OrderId = "FTR-0001".parse().unwrap();
    let pln = role(0);
    // A stranger changes the config.
    let set = |who: &str, key: &str, value: serde_json::Value| {
        (who.to_string(), EventBody::ConfigSet { key: key.into(), value })
    };
    let err =
        attempt(&state, n, vec![set("mallory", "approvers", serde_json::json!(["mallory"]))], &mut g).unwrap_err();
    assert_eq!(err, "mallory is not an admin (admins: tester); only admins change the pipeline");
    // The lease holder's runner id under another actor, and another runner under the holder's actor.
    for (actor, runner) in [("mallory", "r1"), (ADMIN, "r2")] {
        let body = EventBody::Succeeded {
            order: id.clone(),
            role: pln.clone(),
            attempt: 1,
            runner: runner.into(),
            head: commit(HEAD + 1),
            summary: String::new(),
            run: None,
        };
        let err = attempt(&state, n, vec![(actor.into(), body)], &mut g).unwrap_err();
        assert!(err.contains("the lease is held by r1 (tester)"), "{err}");
    }
    // A result for an attempt that is not running.
    let stale = EventBody::Failed {
        order: id.clone(),
        role: pln.clone(),
        attempt: 2,
        runner: "r1".into(),
        exit: None,
        reason: "x".into(),
        run: None,
        permanent: false,
        to: None,
    };
    let err = attempt(&state, n, vec![(ADMIN.into(), stale)], &mut g).unwrap_err();
    assert_eq!(err, "FTR-0001: the event names attempt 2, the order is at attempt 1");
    // Ending someone else's lease before it runs out.
    let expire = EventBody::LeaseExpired { order: id.clone(), role: pln.clone(), runner: "r1".into() };
    let err = attempt(&state, n, vec![("mallory".into(), expire.clone())], &mut g).unwrap_err();
    assert!(err.contains("only its holder tester may release it earlier"), "{err}");
    // A head that does not exist, and one that does not build on the voyage's recorded head.
    for (head, expected) in [(format!("{:040x}", u128::MAX), "is not a commit"), (commit(HEAD), "")] {
        let body = EventBody::Succeeded {
            order: id.clone(),
            role: pln.clone(),
            attempt: 1,
            runner: "r1".into(),
            head,
            summary: String::new(),
            run: None,
        };
        let result = attempt(&state, n, vec![(ADMIN.into(), body)], &mut g);
        match expected {
            "" => assert!(result.is_ok(), "the recorded head itself is a valid result: {result:?}"),
            text => assert!(result.unwrap_err().contains(text)),
        }
    }
    // After the lease ran out, anyone may expire it.
    g.seq += 700;
    state = attempt(&state, n, vec![("mallory".into(), expire)], &mut g).unwrap();
    assert_eq!(state.orders[&id].status, Status::Queued);
}
