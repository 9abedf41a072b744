//! Replaying local ledger transactions on top of another tip (what `sync`
//! does when the remote moved): every event is re-validated by `apply`;
//! ids that collided are renumbered; a transaction that is no longer legal
//! is reported and left out, never silently changed.

use std::collections::BTreeMap;

use gix::ObjectId;

use super::history::Entry;
use super::tx::Tx;
use super::{Store, Tip};
use crate::core::{EventBody, OrderId, VoyageId, message};
use crate::error::{Error, Result};

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
    /// Events whose time was moved to now because they were older than `RETIME_AFTER_SECS`.
    pub retimed: usize,
}

impl Store {
    /// Replay `local` (oldest first) onto `base`, writing new commits; no ref
    /// moves. Events older than `RETIME_AFTER_SECS` take the current time (a
    /// claim whose lease ran out meanwhile is then refused, as it should be).
    pub fn replay_onto(&self, base: Tip, local: &[Entry]) -> Result<Rebased> {
        let mut done = Rebased { tip: Some(base), ..Rebased::default() };
        let now = self.now();
        let mut orders: BTreeMap<OrderId, OrderId> = BTreeMap::new();
        for entry in local {
            let mut tx = Tx::begin(self, done.tip)?;
            // Renumbering applies to the rest of this transaction at once, and
            // to later ones only if this one lands.
            let (mut orders_here, mut voyages_here) = (orders.clone(), done.voyages.clone());
            let mut renumbered = Vec::new();
            let mut outcome: Result<()> = Ok(());
            for event in &entry.events {
                let mut event = event.clone();
                if event.at < now - RETIME_AFTER_SECS {
                    event.at = now;
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
                    done.voyages = voyages_here;
                    done.renumbered.extend(renumbered);
                }
                Err(e @ (Error::Transition(_) | Error::Input(_))) => {
                    done.dropped.push((message::subject(&entry.events), e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(done)
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

/// Point an event at renumbered orders and voyages.
fn remap(body: &mut EventBody, orders: &BTreeMap<OrderId, OrderId>, voyages: &BTreeMap<VoyageId, VoyageId>) {
    match body {
        EventBody::OrderCreated { voyage, .. } | EventBody::VoyageCreated { voyage, .. } => {
            if let Some(v) = voyages.get(voyage) {
                *voyage = *v;
            }
        }
        _ => {}
    }
    let order = body.order_mut();
    if let Some(order) = order
        && let Some(new) = orders.get(order)
    {
        *order = new.clone();
    }
}

/// The commits of `tip` back to (excluding) `base`, oldest first; `None` if `base` is not an ancestor.
pub(crate) fn commits_since(store: &Store, tip: ObjectId, base: Option<ObjectId>) -> Result<Option<Vec<Entry>>> {
    let mut out = Vec::new();
    let mut next = Some(tip);
    while let Some(id) = next {
        if Some(id) == base {
            out.reverse();
            return Ok(Some(out));
        }
        let entry = store.entry(id)?;
        next = entry.parents.first().copied();
        out.push(entry);
    }
    if base.is_none() {
        out.reverse();
        return Ok(Some(out));
    }
    Ok(None)
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
    fn tip_of(&self, commit: ObjectId) -> Result<Tip> {
        let tree = self
            .repo
            .find_commit(commit)
            .and_then(|c| c.tree_id().map(|t| t.detach()))
            .map_err(|e| Error::git("reading a ledger commit", e))?;
        Ok(Tip { commit, tree })
    }

    /// Check fetched commits before taking them: the same replay the server hook does.
    fn validate(&self, base: Option<Tip>, commits: &[Entry]) -> Result<()> {
        let ids: Vec<ObjectId> = commits.iter().map(|e| e.commit).collect();
        match self.replay(base, &ids) {
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
    pub fn integrate(&self, fetched: Option<ObjectId>) -> Result<Integrated> {
        let local = self.tip_unchecked()?;
        let Some(remote) = fetched else {
            return Ok(if local.is_some() { Integrated::LocalAhead } else { Integrated::UpToDate });
        };
        let Some(local) = local else {
            let all = commits_since(self, remote, None)?.unwrap_or_default();
            self.validate(None, &all)?;
            self.move_ledger(None, remote)?;
            return Ok(Integrated::Adopted);
        };
        if local == remote {
            return Ok(Integrated::UpToDate);
        }
        if let Some(new) = commits_since(self, remote, Some(local))? {
            self.validate(Some(self.tip_of(local)?), &new)?;
            self.move_ledger(Some(local), remote)?;
            return Ok(Integrated::FastForwarded(new.len()));
        }
        if let Some(ours) = commits_since(self, local, Some(remote))? {
            // Only local commits are new. Stale ones are replayed with fresh
            // times, or the server would refuse them for clock skew forever.
            let now = self.now();
            if ours.iter().any(|e| e.events.iter().any(|ev| ev.at < now - RETIME_AFTER_SECS)) {
                let rebased = self.replay_onto(self.tip_of(remote)?, &ours)?;
                self.move_ledger(Some(local), rebased.tip.map_or(remote, |t| t.commit))?;
                return Ok(Integrated::Rebased(rebased));
            }
            return Ok(Integrated::LocalAhead);
        }
        // Diverged: find where, validate theirs, replay ours on top.
        let mut theirs = std::collections::HashSet::new();
        let mut next = Some(remote);
        while let Some(id) = next {
            theirs.insert(id);
            next = self.entry(id)?.parents.first().copied();
        }
        let mut base = None;
        let mut next = Some(local);
        while let Some(id) = next {
            if theirs.contains(&id) {
                base = Some(id);
                break;
            }
            next = self.entry(id)?.parents.first().copied();
        }
        let ours = commits_since(self, local, base)?.unwrap_or_default();
        let their_new = commits_since(self, remote, base)?.unwrap_or_default();
        let base_tip = base.map(|b| self.tip_of(b)).transpose()?;
        self.validate(base_tip, &their_new)?;
        let rebased = self.replay_onto(self.tip_of(remote)?, &ours)?;
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
            if super::tx::is_retryable(&e) {
                Error::Conflict { attempts: 1 }
            } else {
                Error::git("updating refs/mso/ledger", e)
            }
        })
    }
}
