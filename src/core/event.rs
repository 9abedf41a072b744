//! Ledger events. One ledger commit carries one or more of these in its
//! message body, one JSON object per line.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::Config;
use super::ids::{OrderId, Role, VoyageId};
use super::report::RunReport;
use super::state::LandedHow;

/// Seconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// One event: who did what when. Its id is derived from its content, its
/// place in its transaction and the ledger commit it follows
/// (`derive_id`), so no two events of a linear ledger share one, and that
/// is checked per commit without reading the history.
// No `deny_unknown_fields` here: serde cannot combine it with `flatten`.
// Unknown fields are still refused, by the canonical-form check of `message::parse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub at: Timestamp,
    pub actor: String,
    #[serde(flatten)]
    pub body: EventBody,
}

/// A runner's claim on an order's current role. Only its holder (the same
/// runner id and the same actor) may renew it or record the run's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    pub runner: String,
    pub host: String,
    pub pid: u32,
    pub expires: Timestamp,
    /// Who claimed: the DISPATCHED event's actor.
    pub actor: String,
}

/// What an event says happened. The tag is the event type as written in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventBody {
    Init {
        config: Config,
    },
    ConfigSet {
        key: String,
        value: serde_json::Value,
    },
    VoyageCreated {
        voyage: VoyageId,
        /// Commit the voyage branch starts from.
        base: String,
        /// The branch it is meant to land on, when known.
        target: Option<String>,
    },
    /// The voyage's branch was pushed for review as a pull request.
    VoyagePublished {
        voyage: VoyageId,
        /// The recorded head that was pushed.
        head: String,
        title: String,
        /// The pull request's URL, or where the branch was pushed.
        url: String,
        /// The pull request's text (title, body, `git request-pull` output).
        #[serde(default)]
        text: String,
    },
    /// The voyage's recorded head reached its target branch.
    VoyageLanded {
        voyage: VoyageId,
        target: String,
        /// The commit on the target that brought the work in.
        commit: String,
        head: String,
        how: LandedHow,
    },
    /// The voyage will not land.
    VoyageClosed {
        voyage: VoyageId,
        reason: String,
    },
    OrderCreated {
        order: OrderId,
        title: String,
        #[serde(default)]
        brief: String,
        #[serde(default)]
        acceptance: Vec<String>,
        roles: Vec<Role>,
        gates: Vec<Role>,
        voyage: VoyageId,
        /// What the order's runs may cost, in millionths of a dollar.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        budget_micros: Option<u64>,
    },
    Dispatched {
        order: OrderId,
        role: Role,
        attempt: u32,
        lease: Lease,
    },
    LeaseRenewed {
        order: OrderId,
        runner: String,
        expires: Timestamp,
    },
    Succeeded {
        order: OrderId,
        role: Role,
        attempt: u32,
        runner: String,
        head: String,
        #[serde(default)]
        summary: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run: Option<RunReport>,
    },
    Failed {
        order: OrderId,
        role: Role,
        attempt: u32,
        runner: String,
        exit: Option<i32>,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run: Option<RunReport>,
        /// Running it again would fail the same way (no crew, a config or
        /// gate error): the order fails for good at once.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        permanent: bool,
        /// The run's verdicts objected: the order goes back to this earlier
        /// role, the objections in its brief (see `report::send_back_target`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<Role>,
    },
    /// The voyage branch holds commits the ledger does not know: the order
    /// waits for a reviewer to approve them (adopting `head`) before any
    /// crew builds on them.
    Held {
        order: OrderId,
        role: Role,
        head: String,
        reason: String,
    },
    LeaseExpired {
        order: OrderId,
        role: Role,
        runner: String,
    },
    Advanced {
        order: OrderId,
        from: Role,
        to: Role,
    },
    Completed {
        order: OrderId,
    },
    Approved {
        order: OrderId,
        role: Role,
        by: String,
        commit: String,
        #[serde(default)]
        comment: String,
    },
    Rejected {
        order: OrderId,
        role: Role,
        by: String,
        /// The commit the reviewer rejected: the role's head, or the held commits.
        commit: String,
        reason: String,
        to: Role,
    },
    Retried {
        order: OrderId,
    },
    /// The order's text changed: the fields given replace the old ones (the
    /// old text stays in the order's history).
    OrderEdited {
        order: OrderId,
        /// The digest of the text this edit replaces (`state::text_digest`):
        /// an edit made on text that changed since is refused, not applied
        /// over someone else's.
        replaces: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        brief: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        acceptance: Option<Vec<String>>,
    },
    /// The order, with no work recorded yet, now belongs to another voyage.
    OrderMoved {
        order: OrderId,
        voyage: VoyageId,
    },
    /// A reviewer takes back their approval before the next role started:
    /// the order awaits review at `role` again (`git mso undo`).
    ApprovalWithdrawn {
        order: OrderId,
        role: Role,
        by: String,
        commit: String,
    },
    Cancelled {
        order: OrderId,
        #[serde(default)]
        reason: String,
    },
}

/// The `order` field of the events that have one; by reference or mutably,
/// depending on how `$body` is borrowed (match ergonomics).
macro_rules! order_field {
    ($body:expr) => {
        match $body {
            EventBody::Init { .. }
            | EventBody::ConfigSet { .. }
            | EventBody::VoyageCreated { .. }
            | EventBody::VoyagePublished { .. }
            | EventBody::VoyageLanded { .. }
            | EventBody::VoyageClosed { .. } => None,
            EventBody::OrderCreated { order, .. }
            | EventBody::Dispatched { order, .. }
            | EventBody::LeaseRenewed { order, .. }
            | EventBody::Succeeded { order, .. }
            | EventBody::Failed { order, .. }
            | EventBody::Held { order, .. }
            | EventBody::LeaseExpired { order, .. }
            | EventBody::Advanced { order, .. }
            | EventBody::Completed { order }
            | EventBody::Approved { order, .. }
            | EventBody::Rejected { order, .. }
            | EventBody::Retried { order }
            | EventBody::OrderEdited { order, .. }
            | EventBody::OrderMoved { order, .. }
            | EventBody::ApprovalWithdrawn { order, .. }
            | EventBody::Cancelled { order, .. } => Some(order),
        }
    };
}

impl EventBody {
    /// The event type as written in the ledger and in `Mso-Event:` trailers.
    pub fn name(&self) -> &'static str {
        match self {
            EventBody::Init { .. } => "INIT",
            EventBody::ConfigSet { .. } => "CONFIG_SET",
            EventBody::VoyageCreated { .. } => "VOYAGE_CREATED",
            EventBody::VoyagePublished { .. } => "VOYAGE_PUBLISHED",
            EventBody::VoyageLanded { .. } => "VOYAGE_LANDED",
            EventBody::VoyageClosed { .. } => "VOYAGE_CLOSED",
            EventBody::OrderCreated { .. } => "ORDER_CREATED",
            EventBody::Dispatched { .. } => "DISPATCHED",
            EventBody::LeaseRenewed { .. } => "LEASE_RENEWED",
            EventBody::Succeeded { .. } => "SUCCEEDED",
            EventBody::Failed { .. } => "FAILED",
            EventBody::Held { .. } => "HELD",
            EventBody::LeaseExpired { .. } => "LEASE_EXPIRED",
            EventBody::Advanced { .. } => "ADVANCED",
            EventBody::Completed { .. } => "COMPLETED",
            EventBody::Approved { .. } => "APPROVED",
            EventBody::Rejected { .. } => "REJECTED",
            EventBody::Retried { .. } => "RETRIED",
            EventBody::OrderEdited { .. } => "ORDER_EDITED",
            EventBody::OrderMoved { .. } => "ORDER_MOVED",
            EventBody::ApprovalWithdrawn { .. } => "APPROVAL_WITHDRAWN",
            EventBody::Cancelled { .. } => "CANCELLED",
        }
    }

    /// The order this event is about, if any.
    pub fn order(&self) -> Option<&OrderId> {
        order_field!(self)
    }

    /// The order this event is about, to rewrite it (renumbering on sync).
    pub fn order_mut(&mut self) -> Option<&mut OrderId> {
        order_field!(self)
    }

    /// The voyage this event names directly, if any.
    pub fn voyage(&self) -> Option<VoyageId> {
        match self {
            EventBody::OrderCreated { voyage, .. } | EventBody::OrderMoved { voyage, .. } => Some(*voyage),
            _ => self.voyage_event(),
        }
    }

    /// The voyage this event is about, for the events that change a voyage itself.
    pub fn voyage_event(&self) -> Option<VoyageId> {
        match self {
            EventBody::VoyageCreated { voyage, .. }
            | EventBody::VoyagePublished { voyage, .. }
            | EventBody::VoyageLanded { voyage, .. }
            | EventBody::VoyageClosed { voyage, .. } => Some(*voyage),
            _ => None,
        }
    }

    /// The voyage an event names directly, to rewrite it (renumbering on sync).
    pub fn voyage_mut(&mut self) -> Option<&mut VoyageId> {
        match self {
            EventBody::OrderCreated { voyage, .. }
            | EventBody::OrderMoved { voyage, .. }
            | EventBody::VoyageCreated { voyage, .. }
            | EventBody::VoyagePublished { voyage, .. }
            | EventBody::VoyageLanded { voyage, .. }
            | EventBody::VoyageClosed { voyage, .. } => Some(voyage),
            _ => None,
        }
    }

    /// A short human phrase for commit subjects and logs.
    pub fn describe(&self) -> String {
        match self {
            EventBody::Init { .. } => "initialized the pipeline".into(),
            EventBody::ConfigSet { key, value } => format!("set {key} = {value}"),
            EventBody::VoyageCreated { base, target, .. } => match target {
                Some(target) => format!("created at {} for {target}", short(base)),
                None => format!("created at {}", short(base)),
            },
            EventBody::VoyagePublished { head, .. } => format!("published at {}", short(head)),
            EventBody::VoyageLanded { target, commit, how, .. } => {
                format!("landed on {target} at {} ({how})", short(commit))
            }
            EventBody::VoyageClosed { .. } => "closed".into(),
            EventBody::OrderCreated { roles, voyage, .. } => {
                let seq: Vec<&str> = roles.iter().map(Role::as_str).collect();
                format!("created on {voyage}, roles {}", seq.join(","))
            }
            EventBody::Dispatched { role, attempt, lease, .. } => {
                format!("dispatched {role} (attempt {attempt}) to {}", lease.runner)
            }
            EventBody::LeaseRenewed { runner, .. } => format!("lease renewed by {runner}"),
            EventBody::Succeeded { role, head, .. } => format!("{role} succeeded at {}", short(head)),
            EventBody::Failed { role, exit, to, permanent, .. } => {
                let how = match exit {
                    Some(code) => format!("{role} failed (exit {code})"),
                    None => format!("{role} failed"),
                };
                match (to, permanent) {
                    (Some(to), _) => format!("{role} sent the work back to {to}"),
                    (None, true) => format!("{how} for good"),
                    (None, false) => how,
                }
            }
            EventBody::Held { role, head, .. } => format!("held at {role}: unreviewed commits up to {}", short(head)),
            EventBody::LeaseExpired { role, runner, .. } => format!("{role} lease of {runner} expired"),
            EventBody::Advanced { from, to, .. } => format!("advanced {from} -> {to}"),
            EventBody::Completed { .. } => "completed".into(),
            EventBody::Approved { role, by, .. } => format!("approved {role} by {by}"),
            EventBody::Rejected { role, by, to, .. } => format!("rejected {role} by {by}, back to {to}"),
            EventBody::Retried { .. } => "retried".into(),
            EventBody::OrderEdited { title, brief, acceptance, .. } => {
                let fields: Vec<&str> =
                    [(title.is_some(), "title"), (brief.is_some(), "brief"), (acceptance.is_some(), "criteria")]
                        .into_iter()
                        .filter_map(|(changed, name)| changed.then_some(name))
                        .collect();
                format!("edited {}", fields.join(", "))
            }
            EventBody::OrderMoved { voyage, .. } => format!("moved to {voyage}"),
            EventBody::ApprovalWithdrawn { role, by, .. } => format!("approval of {role} withdrawn by {by}"),
            EventBody::Cancelled { .. } => "cancelled".into(),
        }
    }
}

/// The first 7 characters of a commit id, for display.
pub fn short(id: &str) -> &str {
    id.get(..7).unwrap_or(id)
}

impl Event {
    pub fn new(id: String, at: Timestamp, actor: String, body: EventBody) -> Self {
        Self { id, at, actor, body }
    }

    /// An event whose id is derived from its content and place (see `derive_id`).
    pub fn derived(parent: Option<&str>, index: usize, at: Timestamp, actor: String, body: EventBody) -> Self {
        let mut event = Self { id: String::new(), at, actor, body };
        event.id = derive_id(parent, index, &event);
        event
    }
}

/// The id of the `index`-th event of the transaction that follows ledger
/// commit `parent` (none for the first): 128 bits of SHA-256 over those and
/// the event's canonical JSON without its id. In a linear ledger each
/// (parent, index) occurs once, so ids are unique by construction, and a
/// replayed or copied event cannot keep the id of the original.
pub fn derive_id(parent: Option<&str>, index: usize, event: &Event) -> String {
    let mut unnamed = event.clone();
    unnamed.id.clear();
    let json = serde_json::to_vec(&unnamed).expect("events always serialize");
    let mut hash = Sha256::new();
    hash.update(b"git-mso event v2\0");
    hash.update(parent.unwrap_or("root").as_bytes());
    hash.update(format!("\0{index}\0").as_bytes());
    hash.update(&json);
    hash.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}
