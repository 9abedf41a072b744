//! A model of what users and runners do to a pipeline, for property tests:
//! random commands turned into the transactions a writer would make.

use git_mso::core::apply::hand_off;
use git_mso::core::{Event, EventBody, Lease, Objects, Order, Presence, Role, State, VoyageId};
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
    /// Someone other than the holder records a result or ends the lease early.
    Usurp(usize, usize),
    /// A review recorded under someone else's name.
    ForgedReview(usize),
    /// A config change by someone who is not an admin.
    StrangerConfig,
    /// A success whose head does not descend from the voyage's recorded head.
    StaleHead(usize),
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
        1 => (0..20usize, 0..3usize).prop_map(|(i, how)| Cmd::Usurp(i, how)),
        1 => (0..20usize).prop_map(Cmd::ForgedReview),
        1 => Just(Cmd::StrangerConfig),
        1 => (0..20usize).prop_map(Cmd::StaleHead),
    ]
}

/// The admin and runner of the model; reviewers are themselves.
pub const ADMIN: &str = "tester";

/// Model commits: `{n:040x}` for n ≥ 1, each descending from all smaller ones.
pub fn commit(n: u64) -> String {
    format!("{n:040x}")
}

pub struct ModelObjects;

fn number(id: &str) -> Option<u64> {
    (id.len() == 40).then(|| u64::from_str_radix(&id[24..], 16).ok()).flatten().filter(|n| *n >= 1)
}

impl Objects for ModelObjects {
    fn presence(&self, id: &str) -> Presence {
        if number(id).is_some() && id[..24].bytes().all(|b| b == b'0') { Presence::Commit } else { Presence::Missing }
    }
    fn descends_from(&self, commit: &str, ancestor: &str) -> Option<bool> {
        Some(matches!((number(commit), number(ancestor)), (Some(c), Some(a)) if c >= a))
    }
}

/// Makes events: times, and heads that move forward like a voyage branch.
pub struct Gen {
    pub seq: u64,
    pub head: u64,
    /// Events are timed `base + seq`.
    pub base: i64,
}

impl Gen {
    pub fn new() -> Self {
        Gen { seq: 0, head: 1, base: 1_000 }
    }

    /// Events timed from `base` on.
    pub fn at(base: i64) -> Self {
        Gen { seq: 0, head: 1, base }
    }

    /// Events with ids derived for their place after `parent`.
    pub fn events(&mut self, parent: Option<&str>, bodies: Vec<(String, EventBody)>) -> Vec<Event> {
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, (actor, body))| {
                self.seq += 1;
                Event::derived(parent, i, self.base + self.seq as i64, actor, body)
            })
            .collect()
    }

    /// One event by the admin.
    pub fn event(&mut self, parent: Option<&str>, body: EventBody) -> Event {
        self.events(parent, vec![(ADMIN.into(), body)]).remove(0)
    }

    pub fn now(&self) -> i64 {
        self.base + self.seq as i64 + 1
    }
}

impl Default for Gen {
    fn default() -> Self {
        Self::new()
    }
}

pub const HEAD: u64 = 1;
const ROLES: [&str; 6] = ["PLN", "BLD", "TST", "DOC", "SEC", "REL"];

pub fn role(i: usize) -> Role {
    ROLES[i % ROLES.len()].parse().unwrap()
}

/// The transaction a writer would make for `cmd`, as (actor, body) pairs.
pub fn transaction(state: &State, cmd: &Cmd, g: &mut Gen) -> Vec<(String, EventBody)> {
    let pick = |i: usize| -> Option<Order> {
        let n = state.orders.len();
        (n > 0).then(|| state.orders.values().nth(i % n).unwrap().clone())
    };
    let admin = |body: EventBody| (ADMIN.to_string(), body);
    let mut out = Vec::new();
    match cmd {
        Cmd::Create { kind, short, voyage } => {
            let kinds = ["FTR", "BUG", "CHR", "DOC", "XYZ"];
            // CHR orders are ungated, so successes at their roles hand off at once.
            let gates = if kinds[*kind] == "CHR" { vec![] } else { vec![role(0)] };
            let kind = kinds[*kind].parse().unwrap();
            let n = u64::from(state.counters.orders.get(&kind).copied().unwrap_or(0)) + 1;
            let roles: Vec<Role> = if *short { vec![role(0)] } else { vec![role(0), role(1), role(2)] };
            // An existing voyage, or the next one (created in the same transaction).
            let voyage = VoyageId::new(u64::from((*voyage as u32).min(state.counters.voyages)) + 1).unwrap();
            if !state.voyages.contains_key(&voyage) && voyage.number() == state.counters.voyages + 1 {
                out.push(admin(EventBody::VoyageCreated { voyage, base: commit(g.head), target: None }));
            }
            out.push(admin(EventBody::OrderCreated {
                order: git_mso::core::OrderId::new(kind, n).unwrap(),
                title: format!("order {n}"),
                brief: String::new(),
                acceptance: vec!["works".into()],
                gates,
                roles,
                voyage,
                budget_micros: None,
            }));
        }
        Cmd::Dispatch(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            let lease =
                Lease { runner: "r1".into(), host: "h".into(), pid: 7, expires: g.now() + 600, actor: ADMIN.into() };
            out.push(admin(EventBody::Dispatched {
                order: o.id.clone(),
                role: o.role.clone(),
                attempt: o.attempt,
                lease,
            }));
        }
        Cmd::Succeed(i) | Cmd::BareSucceed(i) | Cmd::StaleHead(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            let head = match cmd {
                Cmd::StaleHead(_) => 0,
                _ => {
                    g.head += 1;
                    g.head
                }
            };
            out.push(admin(EventBody::Succeeded {
                order: o.id.clone(),
                role: o.role.clone(),
                attempt: o.attempt,
                runner: "r1".into(),
                head: format!("{head:040x}"),
                summary: "done".into(),
                run: None,
            }));
            if !matches!(cmd, Cmd::BareSucceed(_)) && !o.is_gated(&o.role) {
                out.push(admin(hand_off(&o)));
            }
        }
        Cmd::Fail(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            out.push(admin(EventBody::Failed {
                order: o.id.clone(),
                role: o.role.clone(),
                attempt: o.attempt,
                runner: "r1".into(),
                exit: Some(1),
                reason: "boom".into(),
                run: None,
                permanent: false,
                to: None,
            }));
        }
        Cmd::Expire(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            out.push(admin(EventBody::LeaseExpired { order: o.id.clone(), role: o.role.clone(), runner: "r1".into() }));
        }
        Cmd::Usurp(i, how) => {
            let Some(o) = pick(*i) else { return vec![] };
            let (order, role) = (o.id.clone(), o.role.clone());
            let body = match how {
                0 => EventBody::LeaseExpired { order, role, runner: "r1".into() },
                1 => EventBody::Succeeded {
                    order,
                    role,
                    attempt: o.attempt,
                    runner: "r1".into(),
                    head: commit(g.head),
                    summary: String::new(),
                    run: None,
                },
                _ => EventBody::Failed {
                    order,
                    role,
                    attempt: o.attempt,
                    runner: "r1".into(),
                    exit: None,
                    reason: "x".into(),
                    run: None,
                    permanent: false,
                    to: None,
                },
            };
            out.push(("mallory".into(), body));
        }
        Cmd::Approve(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            out.push((
                "alice".into(),
                EventBody::Approved {
                    order: o.id.clone(),
                    role: o.role.clone(),
                    by: "alice".into(),
                    commit: o.held.clone().or(o.head.clone()).unwrap_or_else(|| commit(HEAD)),
                    comment: String::new(),
                },
            ));
            if o.held.is_none() {
                out.push(("alice".into(), hand_off(&o)));
            }
        }
        Cmd::ForgedReview(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            out.push((
                "mallory".into(),
                EventBody::Approved {
                    order: o.id.clone(),
                    role: o.role.clone(),
                    by: "alice".into(),
                    commit: o.head.clone().unwrap_or_else(|| commit(HEAD)),
                    comment: String::new(),
                },
            ));
            out.push(("mallory".into(), hand_off(&o)));
        }
        Cmd::Reject(i, to) => {
            let Some(o) = pick(*i) else { return vec![] };
            out.push((
                "bob".into(),
                EventBody::Rejected {
                    order: o.id.clone(),
                    role: o.role.clone(),
                    by: "bob".into(),
                    commit: o.held.clone().or(o.head.clone()).unwrap_or_else(|| commit(HEAD)),
                    reason: "redo".into(),
                    to: role(*to),
                },
            ));
        }
        Cmd::Retry(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            out.push(admin(EventBody::Retried { order: o.id }));
        }
        Cmd::Cancel(i) => {
            let Some(o) = pick(*i) else { return vec![] };
            out.push(admin(EventBody::Cancelled { order: o.id, reason: String::new() }));
        }
        Cmd::RawAdvance(i, f, t) => {
            let Some(o) = pick(*i) else { return vec![] };
            out.push(admin(EventBody::Advanced { order: o.id, from: role(*f), to: role(*t) }));
        }
        Cmd::StrangerConfig => {
            out.push((
                "mallory".into(),
                EventBody::ConfigSet { key: "approvers".into(), value: serde_json::json!(["mallory"]) },
            ));
        }
    }
    out
}

/// Point the model's commit ids at a chain of real commits (`real[k-1]` is
/// model commit `k`; unknown ones stay fake), and leases at `now`.
pub fn realize(body: &mut EventBody, real: &[String], now: Option<i64>) {
    let map = |id: &mut String| {
        if let Some(k) = u64::from_str_radix(&id[24..], 16).ok().filter(|k| (1..=real.len() as u64).contains(k)) {
            *id = real[k as usize - 1].clone();
        }
    };
    match body {
        EventBody::VoyageCreated { base, .. } => map(base),
        EventBody::Succeeded { head, .. } => map(head),
        EventBody::Approved { commit, .. } | EventBody::Rejected { commit, .. } => map(commit),
        EventBody::Dispatched { lease, .. } => {
            if let Some(now) = now {
                lease.expires = now + 600;
            }
        }
        _ => {}
    }
}
