//! Property tests of the pure core: random command sequences only ever give
//! legal states or clear errors; messages round-trip; the fold is the state.

use std::collections::BTreeMap;

use git_mso::core::apply::apply_transaction;
use git_mso::core::layout;
use git_mso::core::message;
use git_mso::core::{Config, Event, EventBody, Order, OrderId, Role, State, Status, VoyageId};
use proptest::prelude::*;

mod common;

use common::model::{Cmd, Gen, HEAD, cmd, role, transaction};

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
        let running: Vec<&OrderId> = state
            .orders
            .values()
            .filter(|o| o.voyage == voyage.id && o.status == Status::Running)
            .map(|o| &o.id)
            .collect();
        assert!(running.len() <= 1, "{} runs {running:?} at once", voyage.id);
        assert_eq!(voyage.active.as_ref(), running.first().copied(), "{} active marker", voyage.id);
    }
    assert_eq!(state.stats.orders as usize, state.orders.len());
}

fn init(g: &mut Gen) -> (State, Vec<Vec<Event>>) {
    let events = vec![g.event(EventBody::Init { config: Config::default() })];
    (apply_transaction(State::default(), &events).unwrap(), vec![events])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_commands_give_legal_states_or_clear_errors(cmds in prop::collection::vec(cmd(), 1..80)) {
        let mut g = Gen { seq: 0 };
        let (mut state, mut accepted) = init(&mut g);
        for cmd in &cmds {
            let events = transaction(&state, cmd, &mut g);
            if events.is_empty() {
                continue;
            }
            match apply_transaction(state.clone(), &events) {
                Ok(next) => {
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
        for events in &accepted {
            let text = message::format(events);
            prop_assert_eq!(&message::parse(&text).unwrap(), events);
            folded = apply_transaction(folded, events).unwrap();
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
        let mut g = Gen { seq: 0 };
        let events = vec![
            g.event(EventBody::Cancelled { order: "FTR-0001".parse().unwrap(), reason: reason.clone() }),
            g.event(EventBody::OrderCreated {
                order: "BUG-0002".parse().unwrap(),
                title,
                brief: reason,
                acceptance: vec![],
                roles: vec![role(0)],
                gates: vec![],
                voyage: VoyageId::new(1),
            }),
        ];
        let text = message::format(&events);
        prop_assert_eq!(message::parse(&text).unwrap(), events);
    }

    #[test]
    fn parse_never_panics_on_garbage(text in "(?s).{0,400}") {
        let _ = message::parse(&text);
        let _ = message::parse(&format!("x\n\n{text}\n\nMso-Schema: 1\n"));
    }
}

#[test]
fn a_success_without_its_hand_off_is_refused() {
    let mut g = Gen { seq: 0 };
    let (mut state, _) = init(&mut g);
    for cmd in [Cmd::Create { kind: 2, short: false, voyage: 0 }, Cmd::Dispatch(0)] {
        let events = transaction(&state, &cmd, &mut g);
        state = apply_transaction(state, &events).unwrap();
    }
    // CHR has no gate: a SUCCEEDED alone would leave the order between roles.
    let events = transaction(&state, &Cmd::BareSucceed(0), &mut g);
    let err = apply_transaction(state.clone(), &events).unwrap_err();
    assert_eq!(
        err.to_string(),
        "CHR-0001: a success or approval must record ADVANCED or COMPLETED in the same transaction"
    );
    let events = transaction(&state, &Cmd::Succeed(0), &mut g);
    let next = apply_transaction(state, &events).unwrap();
    let order = next.orders.values().next().unwrap();
    assert_eq!((order.role.as_str(), order.status), ("BLD", Status::Queued));
}

#[test]
fn approve_writes_advanced_from_the_predecessor_of_the_next_role() {
    let mut g = Gen { seq: 0 };
    let (mut state, _) = init(&mut g);
    for cmd in [Cmd::Create { kind: 0, short: false, voyage: 0 }, Cmd::Dispatch(0), Cmd::Succeed(0)] {
        let events = transaction(&state, &cmd, &mut g);
        state = apply_transaction(state, &events).unwrap();
    }
    let order = state.orders.values().next().unwrap().clone();
    assert_eq!(order.status, Status::Review);
    // Approving with an ADVANCED that skips a role is refused.
    let bad = vec![
        g.event(EventBody::Approved {
            order: order.id.clone(),
            role: role(0),
            by: "a".into(),
            commit: HEAD.into(),
            comment: String::new(),
        }),
        g.event(EventBody::Advanced { order: order.id.clone(), from: role(0), to: role(2) }),
    ];
    let err = apply_transaction(state.clone(), &bad).unwrap_err();
    assert!(err.to_string().contains("the role after PLN in its sequence is BLD"), "{err}");
    let events = transaction(&state, &Cmd::Approve(0), &mut g);
    let next = apply_transaction(state, &events).unwrap();
    let order = &next.orders[&order.id];
    assert_eq!((order.role.as_str(), order.status), ("BLD", Status::Queued));
    // Approving again: a clear error naming the actual state.
    let again = transaction(&next, &Cmd::Approve(0), &mut g);
    let err = apply_transaction(next, &again).unwrap_err();
    assert_eq!(err.to_string(), "FTR-0001 is queued at BLD, not awaiting review");
}
