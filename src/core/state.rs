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
    /// The recorded voyage head the role started from: its work is `base..head`.
    pub base: String,
    pub head: String,
    pub summary: String,
}

/// Why a reviewer sent the order back; the next crew reads it in its brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    pub role: Role,
    /// The attempt whose work was rejected.
    pub attempt: u32,
    /// What was rejected: the attempt's head, or the held commits. The voyage
    /// branch no longer holds it; `refs/mso/rejected/…` keeps it reachable.
    pub head: String,
    pub by: String,
    pub reason: String,
}

/// Where the commits of an order's `number`-th rejection (from 1) are kept:
/// `refs/mso/rejected/ORDER/N`.
pub fn rejected_ref(order: &OrderId, number: usize) -> String {
    format!("{REJECTED_PREFIX}{order}/{number}")
}

/// The namespace of rejected attempts' refs.
pub const REJECTED_PREFIX: &str = "refs/mso/rejected/";

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
    /// What the order's runs may cost, in micro-dollars (else its kind's or the pipeline's budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_micros: Option<u64>,
    /// A failed run is tried again no earlier than this (the retry backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<Timestamp>,
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

    /// A digest of the order's text (title, brief, criteria), which an edit
    /// names as what it replaces.
    pub fn text_digest(&self) -> String {
        text_digest(&self.title, &self.brief, &self.acceptance)
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
            retry_after: self.retry_after,
        }
    }
}

/// The digest an ORDER_EDITED names as the text it replaces: 128 bits of
/// SHA-256 over the title, brief and criteria as one JSON array.
pub fn text_digest(title: &str, brief: &str, acceptance: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(&(title, brief, acceptance)).expect("strings serialize");
    Sha256::digest(&json)[..16].iter().map(|b| format!("{b:02x}")).collect()
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<Timestamp>,
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
    /// The branch the voyage is meant to land on (`main`), when known.
    pub target: Option<String>,
    /// The order that holds the branch: its crew runs on it, or its work
    /// there awaits review. One at a time per voyage.
    pub active: Option<OrderId>,
    pub published: Option<Publication>,
    pub landed: Option<Landing>,
    pub closed: Option<Closing>,
}

impl Voyage {
    pub fn state(&self) -> VoyageState {
        if self.closed.is_some() {
            VoyageState::Closed
        } else if self.landed.is_some() {
            VoyageState::Landed
        } else if self.published.is_some() {
            VoyageState::Published
        } else {
            VoyageState::Open
        }
    }

    /// Why no new order may be filed on it, if none may.
    pub fn finished(&self) -> Option<String> {
        if let Some(c) = &self.closed {
            return Some(format!("{} was closed by {}: {}", self.id, c.by, c.reason.lines().next().unwrap_or("")));
        }
        self.landed
            .as_ref()
            .map(|l| format!("{} landed on {} at {} ({})", self.id, l.target, super::event::short(&l.commit), l.how))
    }
}

/// Where a voyage stands with respect to its pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoyageState {
    /// Work goes on; nothing published yet.
    Open,
    /// Its branch was pushed and a pull request text or URL recorded.
    Published,
    /// Its recorded head reached its target branch.
    Landed,
    /// Given up: it will not land.
    Closed,
}

impl VoyageState {
    pub fn as_str(self) -> &'static str {
        match self {
            VoyageState::Open => "open",
            VoyageState::Published => "published",
            VoyageState::Landed => "landed",
            VoyageState::Closed => "closed",
        }
    }
}

impl fmt::Display for VoyageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last publication of a voyage (VOYAGE_PUBLISHED).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publication {
    pub at: Timestamp,
    pub by: String,
    /// The recorded head that was pushed.
    pub head: String,
    pub title: String,
    /// The pull request's URL when a forge adapter reported one, else where the branch was pushed.
    pub url: String,
}

/// How a voyage's work reached its target branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LandedHow {
    /// The target now points at or past the voyage head along its own line.
    FastForward,
    /// A merge commit on the target has the voyage head in its history.
    Merge,
    /// A commit on the target carries the voyage's `Mso-Voyage` trailer.
    Squash,
}

impl fmt::Display for LandedHow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LandedHow::FastForward => "fast-forward",
            LandedHow::Merge => "merge",
            LandedHow::Squash => "squash",
        })
    }
}

/// Where and how a voyage landed (VOYAGE_LANDED).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Landing {
    pub at: Timestamp,
    pub by: String,
    pub target: String,
    /// The commit on the target that brought the work in.
    pub commit: String,
    /// The voyage head that landed.
    pub head: String,
    pub how: LandedHow,
}

/// Why a voyage will not land (VOYAGE_CLOSED).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Closing {
    pub at: Timestamp,
    pub by: String,
    pub reason: String,
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
