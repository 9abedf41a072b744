//! Materialized pipeline state: what each ledger commit's tree holds.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::config::Config;
use super::event::{Event, Lease, Timestamp};
use super::ids::{IdError, Kind, OrderId, Role, VoyageId};

/// Where an order stands at its current role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Running,
    /// The crew succeeded at a gated role; a human must approve or reject.
    Review,
    Failed,
    Completed,
    Cancelled,
    /// Mid-transaction only: the role succeeded or was approved and the same
    /// commit must also record ADVANCED or COMPLETED. Never stored.
    #[value(skip)]
    HandingOff,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Review => "review",
            Status::Failed => "failed",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::HandingOff => "handing-off",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Cancelled)
    }

    /// Whether an order in this status holds its voyage's branch: its crew
    /// runs there, or its work there awaits review.
    pub fn holds_voyage(self) -> bool {
        matches!(self, Status::Running | Status::Review)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an earlier role handed to the later ones (its result summary, PLN's plan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    pub role: Role,
    pub head: String,
    pub summary: String,
}

/// Why a reviewer sent the order back; the next crew reads it in its brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    pub role: Role,
    pub by: String,
    pub reason: String,
}

/// One order, with its own history so `order show` reads one blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    pub id: OrderId,
    /// Creation sequence number across the ledger: "oldest first" means lowest first.
    pub seq: u64,
    pub title: String,
    pub brief: String,
    pub acceptance: Vec<String>,
    pub roles: Vec<Role>,
    pub gates: Vec<Role>,
    pub voyage: VoyageId,
    pub role: Role,
    pub status: Status,
    /// Which run of the current role this is or will be (1 for the first; up after a failure, rejection or retry).
    pub attempt: u32,
    /// Consecutive failures at the current role; reset when the order moves on or is retried.
    pub failures: u32,
    pub lease: Option<Lease>,
    /// Voyage head recorded by the last success.
    pub head: Option<String>,
    /// Commits found on the voyage branch that the ledger did not know (HELD):
    /// the head a reviewer approves (adopting them) or rejects.
    pub held: Option<String>,
    pub handoffs: Vec<Handoff>,
    pub rejections: Vec<Rejection>,
    pub last_error: Option<String>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub history: Vec<Event>,
}

impl Order {
    /// The role after `role` in this order's sequence.
    pub fn next_role(&self, role: &Role) -> Option<&Role> {
        let i = self.roles.iter().position(|r| r == role)?;
        self.roles.get(i + 1)
    }

    /// The role before `role` in this order's sequence.
    pub fn previous_role(&self, role: &Role) -> Option<&Role> {
        let i = self.roles.iter().position(|r| r == role)?;
        i.checked_sub(1).map(|p| &self.roles[p])
    }

    pub fn is_gated(&self, role: &Role) -> bool {
        self.gates.contains(role)
    }

    pub fn summary(&self) -> OrderSummary {
        OrderSummary {
            id: self.id.clone(),
            seq: self.seq,
            title: self.title.clone(),
            voyage: self.voyage,
            role: self.role.clone(),
            status: self.status,
            attempt: self.attempt,
            updated: self.updated,
        }
    }
}

/// One line of a shard index: what `order list` needs without reading every order blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSummary {
    pub id: OrderId,
    pub seq: u64,
    pub title: String,
    pub voyage: VoyageId,
    pub role: Role,
    pub status: Status,
    pub attempt: u32,
    pub updated: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// A voyage. Its orders are found through the shard indexes (each summary
/// names its voyage), so this blob stays the same size however many orders
/// the voyage gets, and creating an order does not rewrite it.
pub struct Voyage {
    pub id: VoyageId,
    pub branch: String,
    pub base: String,
    /// The last head the ledger recorded for the branch (its base, then each
    /// success and adopted commit): the only commit a role may start from.
    pub head: String,
    pub created: Timestamp,
    /// The order that holds the branch: its crew runs on it, or its work
    /// there awaits review. One at a time per voyage.
    pub active: Option<OrderId>,
}

/// Last number handed out per kind, and for voyages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counters {
    pub orders: BTreeMap<Kind, u32>,
    pub voyages: u32,
}

impl Counters {
    /// The next order id of `kind`; an error once the numbers run out.
    pub fn next_order(&self, kind: &Kind) -> Result<OrderId, IdError> {
        OrderId::new(kind.clone(), u64::from(self.orders.get(kind).copied().unwrap_or(0)) + 1)
    }
    /// The next voyage id; an error once the numbers run out.
    pub fn next_voyage(&self) -> Result<VoyageId, IdError> {
        VoyageId::new(u64::from(self.voyages) + 1)
    }
}

/// Orders per role and status, kept up to date by `apply` so `status` is one blob read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    pub orders: u64,
    pub events: u64,
    pub by_role: BTreeMap<Role, BTreeMap<Status, u64>>,
}

impl Stats {
    pub fn count(&self, role: &Role, status: Status) -> u64 {
        self.by_role.get(role).and_then(|m| m.get(&status)).copied().unwrap_or(0)
    }

    pub fn total(&self, status: Status) -> u64 {
        self.by_role.values().filter_map(|m| m.get(&status)).sum()
    }

    /// Count one more order; `false` when the count would overflow (a corrupt `stats.json`).
    #[must_use]
    pub(crate) fn add(&mut self, role: &Role, status: Status) -> bool {
        let n = self.by_role.entry(role.clone()).or_default().entry(status).or_default();
        match n.checked_add(1) {
            Some(next) => {
                *n = next;
                true
            }
            None => false,
        }
    }

    /// Uncount one order; `false` when the counts do not include it (a corrupt `stats.json`).
    #[must_use]
    pub(crate) fn remove(&mut self, role: &Role, status: Status) -> bool {
        let Some(per_role) = self.by_role.get_mut(role) else { return false };
        let Some(n) = per_role.get_mut(&status).filter(|n| **n > 0) else { return false };
        *n -= 1;
        if *n == 0 {
            per_role.remove(&status);
            if per_role.is_empty() {
                self.by_role.remove(role);
            }
        }
        true
    }
}

/// The state after some prefix of the ledger. The store may hold only the
/// entities a transaction touches; `apply` never needs more than that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub config: Option<Config>,
    pub counters: Counters,
    pub stats: Stats,
    pub orders: BTreeMap<OrderId, Order>,
    pub voyages: BTreeMap<VoyageId, Voyage>,
}
