//! Verification: replay ledger commits with the pure `apply` and check that
//! each commit's tree is exactly the state its events produce. `fsck`
//! replays from the root; the server hook replays a pushed range from the
//! old tip. Nothing is ever "healed": the first divergence is reported.

use std::collections::HashSet;

use gix::ObjectId;

use super::partial::{Partial, changed_paths};
use super::{Store, Tip, short};
use crate::core::apply::{self, apply};
use crate::error::{Error, Result};

/// The first commit that does not hold together, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub commit: ObjectId,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "commit {}: {}", short(self.commit), self.reason)
    }
}

/// What a clean replay saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replayed {
    pub commits: u64,
    pub events: u64,
}

/// Why a replay stopped: a problem in the ledger, or an error reading it.
#[derive(Debug)]
pub enum ReplayError {
    Problem(Problem),
    Io(Error),
}

impl From<Error> for ReplayError {
    fn from(e: Error) -> Self {
        ReplayError::Io(e)
    }
}

impl Store {
    /// Replay `commits` (oldest first, each the child of the one before, the
    /// first a child of `base`) and check every one.
    pub fn replay(&self, base: Option<Tip>, commits: &[ObjectId]) -> std::result::Result<Replayed, ReplayError> {
        let mut partial = Partial::new(self, base)?;
        let mut seen: HashSet<String> = HashSet::new();
        let mut parent = base;
        let mut done = Replayed::default();
        for &id in commits {
            let problem = |reason: String| ReplayError::Problem(Problem { commit: id, reason });
            let entry = match self.entry(id) {
                Ok(entry) => entry,
                Err(Error::Message { source, .. }) => return Err(problem(source.to_string())),
                Err(Error::Corrupt { reason, .. }) => return Err(problem(reason)),
                Err(e) => return Err(e.into()),
            };
            let expected_parents: Vec<ObjectId> = parent.map(|p| p.commit).into_iter().collect();
            if entry.parents != expected_parents {
                return Err(problem(match parent {
                    Some(p) => format!("its parent is not {}: the ledger must be linear", short(p.commit)),
                    None => "the first ledger commit must have no parent".into(),
                }));
            }
            for event in &entry.events {
                if !seen.insert(event.id.clone()) {
                    return Err(problem(format!("duplicate event id {}", event.id)));
                }
                partial.load_for(self, &event.body)?;
                if let Some(order) = event.body.order().and_then(|o| partial.state.orders.get(o))
                    && order.history.iter().any(|e| e.id == event.id)
                {
                    return Err(problem(format!("duplicate event id {} (already in {})", event.id, order.id)));
                }
                partial.state = apply(std::mem::take(&mut partial.state), event)
                    .map_err(|e| problem(format!("illegal {} event: {e}", event.body.name())))?;
            }
            apply::check_transaction(&partial.state, &entry.events).map_err(|e| problem(e.to_string()))?;
            self.check_tree(&partial, &entry.events, parent, entry.tree).map_err(problem)?;
            parent = Some(Tip { commit: id, tree: entry.tree });
            done.commits += 1;
            done.events += entry.events.len() as u64;
        }
        Ok(done)
    }

    /// The tree must change exactly the files the events produce, with exactly that content.
    fn check_tree(
        &self,
        partial: &Partial,
        events: &[crate::core::Event],
        parent: Option<Tip>,
        tree: ObjectId,
    ) -> std::result::Result<(), String> {
        let io = |e: Error| e.to_string();
        let expected = partial.files(self, events, parent).map_err(io)?;
        for path in changed_paths(self, parent.map(|p| p.tree), tree).map_err(io)? {
            if !expected.contains_key(&path) {
                return Err(format!("the tree changes {path}, which its events do not touch"));
            }
        }
        let root = self.repo.find_tree(tree).map_err(|e| e.to_string())?;
        for (path, bytes) in &expected {
            let want = gix::objs::compute_hash(self.repo.object_hash(), gix::objs::Kind::Blob, bytes)
                .map_err(|e| e.to_string())?;
            match root.lookup_entry_by_path(path).map_err(|e| e.to_string())? {
                Some(entry) if entry.mode().is_blob() && entry.object_id() == want => {}
                Some(_) => return Err(format!("the tree's {path} is not the state its events produce")),
                None => return Err(format!("the tree lacks {path}")),
            }
        }
        Ok(())
    }

    /// Replay the whole ledger from its root.
    pub fn fsck(&self) -> Result<std::result::Result<Replayed, Problem>> {
        let tip = self.tip_unchecked()?.ok_or(Error::NotInitialized)?;
        let mut chain = Vec::new();
        let mut next = Some(tip);
        while let Some(id) = next {
            chain.push(id);
            let commit = match self.repo.find_commit(id) {
                Ok(c) => c,
                Err(e) => return Ok(Err(Problem { commit: id, reason: format!("cannot read the commit: {e}") })),
            };
            next = commit.parent_ids().next().map(|p| p.detach());
        }
        chain.reverse();
        match self.replay(None, &chain) {
            Ok(done) => Ok(Ok(done)),
            Err(ReplayError::Problem(p)) => Ok(Err(p)),
            Err(ReplayError::Io(e)) => Err(e),
        }
    }
}
