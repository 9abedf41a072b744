//! Replaying local ledger transactions on top of another tip (what `sync`
//! does when the remote moved): every event is re-validated by `apply`;
//! ids that collided are renumbered; a transaction that is no longer legal
//! is reported and left out, never silently changed.

use std::collections::{BTreeMap, HashSet};

use gix::ObjectId;

use super::history::Entry;
use super::tx::Tx;
use super::{Store, Tip};
use crate::core::{EventBody, OrderId, VoyageId, message};
use crate::error::{Error, Result};

/// Says why a local event no longer holds and its transaction must be left
/// out when local work is replayed (a hold on commits the branch has moved
/// past); `None` keeps it.
pub type Stale<'a> = &'a dyn Fn(&crate::core::Event) -> Option<String>;

/// Local events older than this are re-timed when they are replayed for a
/// push: a server refuses events far from its clock (`mso.server.maxSkew`,
/// default 300 s), and work filed offline must still reach it.
pub const RETIME_AFTER_SECS: i64 = 60;

/// What a replay did.
#[derive(Debug, Default)]
pub struct Rebased {
    pub tip: Option<Tip>,
    pub replayed: usize,
    /// Old and new ids of orders and voyages created on both sides.
    pub renumbered: Vec<(String, String)>,
    /// Subjects of transactions that are no longer legal, and why.
    pub dropped: Vec<(String, String)>,
    pub voyages: BTreeMap<VoyageId, VoyageId>,
    /// Orders renumbered: their rejected work's refs follow them.
    pub orders: BTreeMap<OrderId, OrderId>,
    /// Events whose time was moved to now because they were older than `RETIME_AFTER_SECS`.
    pub retimed: usize,
}

impl Store {
    /// Replay `local` (oldest first) onto `base`, writing new commits; no ref
    /// moves. A transaction older than `RETIME_AFTER_SECS` is moved to now as
    /// a whole, its leases with it, so a run done offline still reads as the
    /// run it was (claimed, renewed, finished in that order, within its lease).
    pub fn replay_onto(&self, base: Tip, local: &[Entry], stale: Stale<'_>) -> Result<Rebased> {
        let mut done = Rebased { tip: Some(base), ..Rebased::default() };
        let now = self.now();
        let mut orders: BTreeMap<OrderId, OrderId> = BTreeMap::new();
        // Orders and voyages created by transactions left out: a later local
        // transaction that names one must not reach whatever has that id on
        // the new tip (someone else's order).
        let mut orphans = Orphans::default();
        for entry in local {
            let why = entry.events.iter().find_map(stale).or_else(|| orphans.named_in(entry));
            if let Some(why) = why {
                orphans.adopt(entry);
                done.dropped.push((message::subject(&entry.events), why));
                continue;
            }
            let mut tx = Tx::begin(self, done.tip)?;
            // Renumbering applies to the rest of this transaction at once, and
            // to later ones only if this one lands.
            let (mut orders_here, mut voyages_here) = (orders.clone(), done.voyages.clone());
            let mut renumbered = Vec::new();
            let mut outcome: Result<()> = Ok(());
            let oldest = entry.events.iter().map(|e| e.at).min().unwrap_or(now);
            let shift = if oldest < now.saturating_sub(RETIME_AFTER_SECS) { now - oldest } else { 0 };
            for event in &entry.events {
                let mut event = event.clone();
                if shift > 0 {
                    retime(&mut event, shift, now);
                    done.retimed += 1;
                }
                remap(&mut event.body, &orders_here, &voyages_here);
                outcome = renumber(&mut tx, &mut event.body, &mut orders_here, &mut voyages_here, &mut renumbered)
                    .and_then(|()| tx.push_event(event));
                if outcome.is_err() {
                    break;
                }
            }
            match outcome.and_then(|()| tx.write()) {
                Ok((commit, tree)) => {
                    done.tip = Some(Tip { commit, tree });
                    done.replayed += 1;
                    orders = orders_here;
                    done.orders = orders.clone();
                    done.voyages = voyages_here;
                    done.renumbered.extend(renumbered);
                }
                // Only a transaction that is no longer legal is left out; any
                // other error (signing, I/O) stops the sync and keeps local work.
                Err(e @ (Error::Transition(_) | Error::Input(_) | Error::BadId(_))) => {
                    orphans.adopt(entry);
                    done.dropped.push((message::subject(&entry.events), e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// The local ids of orders and voyages whose creation was left out of a replay.
#[derive(Default)]
struct Orphans {
    orders: std::collections::BTreeSet<OrderId>,
    voyages: std::collections::BTreeSet<VoyageId>,
}

impl Orphans {
    /// What `entry` created is left out with it.
    fn adopt(&mut self, entry: &Entry) {
        for event in &entry.events {
            match &event.body {
                EventBody::OrderCreated { order, .. } => {
                    self.orders.insert(order.clone());
                }
                EventBody::VoyageCreated { voyage, .. } => {
                    self.voyages.insert(*voyage);
                }
                _ => {}
            }
        }
    }

    /// Why `entry` is left out too, when it names something left out.
    fn named_in(&self, entry: &Entry) -> Option<String> {
        entry.events.iter().find_map(|e| {
            let order = e.body.order().filter(|o| self.orders.contains(*o)).map(ToString::to_string);
            let voyage = e.body.voyage().filter(|v| self.voyages.contains(v)).map(|v| v.to_string());
            order.or(voyage).map(|id| format!("it names {id}, whose creation was left out"))
        })
    }
}

/// Give a created order or voyage the next free id on the new tip, noting the change.
fn renumber(
    tx: &mut Tx<'_>,
    body: &mut EventBody,
    orders: &mut BTreeMap<OrderId, OrderId>,
    voyages: &mut BTreeMap<VoyageId, VoyageId>,
    renumbered: &mut Vec<(String, String)>,
) -> Result<()> {
    match body {
        EventBody::VoyageCreated { voyage, .. } => {
            let next = tx.counters().next_voyage()?;
            if *voyage != next {
                renumbered.push((voyage.to_string(), next.to_string()));
                voyages.insert(*voyage, next);
                *voyage = next;
            }
        }
        EventBody::OrderCreated { order, .. } => {
            let next = tx.counters().next_order(order.kind())?;
            if *order != next {
                renumbered.push((order.to_string(), next.to_string()));
                orders.insert(order.clone(), next.clone());
                *order = next;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Move an event `shift` seconds later (at most to `now`), and the lease it
/// grants or extends with it.
fn retime(event: &mut crate::core::Event, shift: i64, now: i64) {
    event.at = event.at.saturating_add(shift).min(now);
    match &mut event.body {
        EventBody::Dispatched { lease, .. } => lease.expires = lease.expires.saturating_add(shift),
        EventBody::LeaseRenewed { expires, .. } => *expires = expires.saturating_add(shift),
        _ => {}
    }
}

/// Point an event at renumbered orders and voyages.
fn remap(body: &mut EventBody, orders: &BTreeMap<OrderId, OrderId>, voyages: &BTreeMap<VoyageId, VoyageId>) {
    if let Some(voyage) = body.voyage_mut()
        && let Some(v) = voyages.get(voyage)
    {
        *voyage = *v;
    }
    let order = body.order_mut();
    if let Some(order) = order
        && let Some(new) = orders.get(order)
    {
        *order = new.clone();
    }
}

/// Where two ledger tips part: their last common commit, and each side's
/// commits after it, oldest first. Found by walking both first-parent chains
/// back in lockstep, reading parents only, so the cost is the length of the
/// divergence, not of the ledger.
struct Fork {
    base: Option<ObjectId>,
    ours: Vec<ObjectId>,
    theirs: Vec<ObjectId>,
}

impl Store {
    fn parent(&self, id: ObjectId) -> Result<Option<ObjectId>> {
        let commit = self.repo.find_commit(id).map_err(|e| Error::git("reading a ledger commit", e))?;
        Ok(commit.parent_ids().next().map(|p| p.detach()))
    }

    fn fork(&self, ours: ObjectId, theirs: ObjectId) -> Result<Fork> {
        let (mut a, mut b) = (Some(ours), Some(theirs));
        let (mut a_path, mut b_path): (Vec<ObjectId>, Vec<ObjectId>) = (Vec::new(), Vec::new());
        let (mut a_seen, mut b_seen) = (HashSet::new(), HashSet::new());
        let base = loop {
            if let Some(x) = a {
                if b_seen.contains(&x) {
                    break Some(x);
                }
                a_seen.insert(x);
                a_path.push(x);
                a = self.parent(x)?;
            }
            if let Some(y) = b {
                if a_seen.contains(&y) {
                    break Some(y);
                }
                b_seen.insert(y);
                b_path.push(y);
                b = self.parent(y)?;
            }
            if a.is_none() && b.is_none() {
                break None;
            }
        };
        let after = |mut path: Vec<ObjectId>| {
            if let Some(base) = base
                && let Some(i) = path.iter().position(|c| *c == base)
            {
                path.truncate(i);
            }
            path.reverse();
            path
        };
        Ok(Fork { base, ours: after(a_path), theirs: after(b_path) })
    }

    /// The commits of the ledger at `local` that `remote` does not have, oldest first.
    pub fn pending(&self, local: Option<ObjectId>, remote: Option<ObjectId>) -> Result<Vec<Entry>> {
        let Some(local) = local else { return Ok(Vec::new()) };
        let ours = match remote {
            Some(remote) => self.fork(local, remote)?.ours,
            None => self.whole_chain(local)?,
        };
        ours.iter().map(|id| self.entry(*id)).collect()
    }

    /// Every commit of the chain ending at `tip`, oldest first.
    fn whole_chain(&self, tip: ObjectId) -> Result<Vec<ObjectId>> {
        let mut chain = Vec::new();
        let mut next = Some(tip);
        while let Some(id) = next {
            chain.push(id);
            next = self.parent(id)?;
        }
        chain.reverse();
        Ok(chain)
    }
}

/// How the local ledger was brought up to date with a fetched one.
#[derive(Debug)]
pub enum Integrated {
    UpToDate,
    /// Only local commits are new: they need pushing.
    LocalAhead,
    /// The local ledger did not exist and now is the fetched one.
    Adopted,
    FastForwarded(usize),
    Rebased(Rebased),
}

impl Store {
    /// The tip (commit and tree) of a ledger commit.
    pub(crate) fn tip_of(&self, commit: ObjectId) -> Result<Tip> {
        let tree = self
            .repo
            .find_commit(commit)
            .and_then(|c| c.tree_id().map(|t| t.detach()))
            .map_err(|e| Error::git("reading a ledger commit", e))?;
        Ok(Tip { commit, tree })
    }

    /// Check fetched commits before taking them: the same replay the server hook does.
    fn validate(&self, base: Option<Tip>, commits: &[ObjectId]) -> Result<()> {
        match self.replay(base, commits) {
            Ok(_) => Ok(()),
            Err(super::ReplayError::Problem(p)) => Err(Error::Corrupt {
                commit: super::short(p.commit),
                reason: format!("fetched ledger refused: {}", p.reason),
            }),
            Err(super::ReplayError::Io(e)) => Err(e),
        }
    }

    /// Bring `refs/mso/ledger` up to date with `fetched` (a remote-tracking
    /// tip): adopt, fast-forward, or replay the local transactions on top.
    /// Fetched commits are validated first; the ref moves by compare-and-swap.
    pub fn integrate(&self, fetched: Option<ObjectId>, stale: Stale<'_>) -> Result<Integrated> {
        let local = self.tip_unchecked()?;
        let Some(remote) = fetched else {
            let Some(local) = local else { return Ok(Integrated::UpToDate) };
            // The remote has no ledger: all of ours goes there. What can no
            // longer be published is left out first (replayed from just before it).
            let chain = self.whole_chain(local)?;
            let entries: Vec<Entry> = chain.iter().map(|id| self.entry(*id)).collect::<Result<_>>()?;
            let first = entries.iter().position(|e| e.events.iter().any(|ev| stale(ev).is_some()));
            let Some(first) = first.filter(|i| *i > 0) else { return Ok(Integrated::LocalAhead) };
            let rebased = self.replay_onto(self.tip_of(chain[first - 1])?, &entries[first..], stale)?;
            self.move_ledger(Some(local), rebased.tip.map_or(chain[first - 1], |t| t.commit))?;
            return Ok(Integrated::Rebased(rebased));
        };
        let Some(local) = local else {
            self.validate(None, &self.whole_chain(remote)?)?;
            self.move_ledger(None, remote)?;
            return Ok(Integrated::Adopted);
        };
        if local == remote {
            return Ok(Integrated::UpToDate);
        }
        let fork = self.fork(local, remote)?;
        if fork.ours.is_empty() {
            self.validate(Some(self.tip_of(local)?), &fork.theirs)?;
            self.move_ledger(Some(local), remote)?;
            return Ok(Integrated::FastForwarded(fork.theirs.len()));
        }
        let ours: Vec<Entry> = fork.ours.iter().map(|id| self.entry(*id)).collect::<Result<_>>()?;
        if fork.theirs.is_empty() {
            // Only local commits are new. Stale ones are replayed with fresh
            // times, or the server would refuse them for clock skew forever.
            let old = self.now().saturating_sub(RETIME_AFTER_SECS);
            if ours.iter().any(|e| e.events.iter().any(|ev| ev.at < old || stale(ev).is_some())) {
                let rebased = self.replay_onto(self.tip_of(remote)?, &ours, stale)?;
                self.move_ledger(Some(local), rebased.tip.map_or(remote, |t| t.commit))?;
                return Ok(Integrated::Rebased(rebased));
            }
            return Ok(Integrated::LocalAhead);
        }
        // Diverged: validate theirs from where we parted, replay ours on top.
        let base_tip = fork.base.map(|b| self.tip_of(b)).transpose()?;
        self.validate(base_tip, &fork.theirs)?;
        let rebased = self.replay_onto(self.tip_of(remote)?, &ours, stale)?;
        let new_tip = rebased.tip.map_or(remote, |t| t.commit);
        self.move_ledger(Some(local), new_tip)?;
        Ok(Integrated::Rebased(rebased))
    }

    /// Move `refs/mso/ledger` from `old` to `new` by compare-and-swap.
    fn move_ledger(&self, old: Option<ObjectId>, new: ObjectId) -> Result<()> {
        use gix::refs::Target;
        use gix::refs::transaction::PreviousValue;
        let expected = match old {
            Some(old) => PreviousValue::MustExistAndMatch(Target::Object(old)),
            None => PreviousValue::MustNotExist,
        };
        self.set_ref(super::LEDGER_REF, expected, new, "git-mso: sync").map_err(|e| {
            if e.is_race() { Error::Conflict { attempts: 1 } } else { e.into_error("updating refs/mso/ledger") }
        })
    }
}
