//! A model of what users and runners do to a pipeline, for property tests:
//! random commands turned into the transactions a writer would make.

use git_mso::core::apply::hand_off;
use git_mso::core::{Event, EventBody, Lease, Order, OrderId, Role, State, VoyageId};
use proptest::prelude::*;

#[derive(Debug, Clone)]
pub enum Cmd {
    Create {
        kind: usize,
        short: bool,
        voyage: usize,
    },
    Dispatch(usize),
    Succeed(usize),
    Fail(usize),
    Expire(usize),
    Approve(usize),
    Reject(usize, usize),
    Retry(usize),
    Cancel(usize),
    /// Raw ADVANCED with arbitrary roles: usually illegal, must be refused cleanly.
    RawAdvance(usize, usize, usize),
    /// SUCCEEDED without the hand-off event in the same transaction.
    BareSucceed(usize),
}

pub fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        4 => (0..5usize, any::<bool>(), 0..3usize).prop_map(|(kind, short, voyage)| Cmd::Create { kind, short, voyage }),
        4 => (0..20usize).prop_map(Cmd::Dispatch),
        4 => (0..20usize).prop_map(Cmd::Succeed),
        1 => (0..20usize).prop_map(Cmd::Fail),
        1 => (0..20usize).prop_map(Cmd::Expire),
        3 => (0..20usize).prop_map(Cmd::Approve),
        1 => (0..20usize, 0..3usize).prop_map(|(i, to)| Cmd::Reject(i, to)),
        1 => (0..20usize).prop_map(Cmd::Retry),
        1 => (0..20usize).prop_map(Cmd::Cancel),
        1 => (0..20usize, 0..6usize, 0..6usize).prop_map(|(i, f, t)| Cmd::RawAdvance(i, f, t)),
        1 => (0..20usize).prop_map(Cmd::BareSucceed),
    ]
}

pub struct Gen {
    pub seq: u64,
}

impl Gen {
    pub fn event(&mut self, body: EventBody) -> Event {
        self.seq += 1;
        Event::new(format!("ev{:014}", self.seq), 1_000 + self.seq as i64, "tester".into(), body)
    }
}

pub const HEAD: &str = "0123456789abcdef0123456789abcdef01234567";
const ROLES: [&str; 6] = ["PLN", "BLD", "TST", "DOC", "SEC", "REL"];

pub fn role(i: usize) -> Role {
    ROLES[i % ROLES.len()].parse().unwrap()
}

pub fn transaction(state: &State, cmd: &Cmd, g: &mut Gen) -> Vec<Event> {
    let pick = |i: usize| -> Option<Order> {
        let n = state.orders.len();
        (n > 0).then(|| state.orders.values().nth(i % n).unwrap().clone())
    };
    let mut bodies = Vec::new();
    match cmd {
        Cmd::Create { kind, short, voyage } => {
            let kinds = ["FTR", "BUG", "CHR", "DOC", "XYZ"];
            // CHR orders are ungated, so successes at their roles hand off at once.
            let gates = if kinds[*kind] == "CHR" { vec![] } else { vec![role(0)] };
            let kind = kinds[*kind].parse().unwrap();
            let n = state.counters.orders.get(&kind).copied().unwrap_or(0) + 1;
            let roles: Vec<Role> = if *short { vec![role(0)] } else { vec![role(0), role(1), role(2)] };
            // An existing voyage, or the next one (created in the same transaction).
            let voyage = VoyageId::new((*voyage as u32).min(state.counters.voyages) + 1);
            if !state.voyages.contains_key(&voyage) && voyage.number() == state.counters.voyages + 1 {
                bodies.push(EventBody::VoyageCreated { voyage, base: HEAD.into() });
            }
            bodies.push(EventBody::OrderCreated {
                order: OrderId::new(kind, n),
                title: format!("order {n}"),
                brief: String::new(),
                acceptance: vec!["works".into()],
                gates,
                roles,
                voyage,
            });
        }
        Cmd::Dispatch(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            bodies.push(EventBody::Dispatched {
                order: o.id.clone(),
                role: o.role.clone(),
                attempt: o.attempt,
                lease: Lease { runner: "r1".into(), host: "h".into(), pid: 7, expires: 4_000_000_000 },
            });
        }
        Cmd::Succeed(i) | Cmd::BareSucceed(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            bodies.push(EventBody::Succeeded {
                order: o.id.clone(),
                role: o.role.clone(),
                head: HEAD.into(),
                summary: "done".into(),
            });
            if matches!(cmd, Cmd::Succeed(_)) && !o.is_gated(&o.role) {
                bodies.push(hand_off(&o));
            }
        }
        Cmd::Fail(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            bodies.push(EventBody::Failed {
                order: o.id.clone(),
                role: o.role.clone(),
                exit: Some(1),
                reason: "boom".into(),
            });
        }
        Cmd::Expire(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            bodies.push(EventBody::LeaseExpired { order: o.id.clone(), role: o.role.clone(), runner: "r1".into() });
        }
        Cmd::Approve(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            bodies.push(EventBody::Approved {
                order: o.id.clone(),
                role: o.role.clone(),
                by: "alice".into(),
                commit: o.head.clone().unwrap_or_else(|| HEAD.into()),
                comment: String::new(),
            });
            bodies.push(hand_off(&o));
        }
        Cmd::Reject(i, to) => {
            let Some(o) = pick(*i) else { return vec![] };
            bodies.push(EventBody::Rejected {
                order: o.id.clone(),
                role: o.role.clone(),
                by: "bob".into(),
                reason: "redo".into(),
                to: role(*to),
            });
        }
        Cmd::Retry(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            bodies.push(EventBody::Retried { order: o.id });
        }
        Cmd::Cancel(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            bodies.push(EventBody::Cancelled { order: o.id, reason: String::new() });
        }
        Cmd::RawAdvance(i, f, t) => {
            let Some(o) = pick(*i) else { return vec![] };
            bodies.push(EventBody::Advanced { order: o.id, from: role(*f), to: role(*t) });
        }
    }
    bodies.into_iter().map(|b| g.event(b)).collect()
}
