//! Walking the ledger's history: first parents from the tip to the root.

use gix::ObjectId;

use super::{Store, Tip, short};
use crate::core::message;
use crate::core::{Event, Timestamp};
use crate::error::{Error, Result};

/// One ledger commit and its events.
#[derive(Debug, Clone)]
pub struct Entry {
    pub commit: ObjectId,
    pub tree: ObjectId,
    pub parents: Vec<ObjectId>,
    pub time: Timestamp,
    pub events: Vec<Event>,
}

impl Store {
    /// The ledger newest first. Each item is checked to be one of ours; a
    /// merge or foreign commit is an error naming it.
    pub fn history(&self, tip: &Tip) -> impl Iterator<Item = Result<Entry>> + '_ {
        let mut next = Some(tip.commit);
        std::iter::from_fn(move || {
            let id = next.take()?;
            let entry = self.entry(id);
            if let Ok(entry) = &entry {
                next = entry.parents.first().copied();
            }
            Some(entry)
        })
    }

    /// Read and parse one ledger commit.
    pub fn entry(&self, id: ObjectId) -> Result<Entry> {
        let corrupt = |reason: String| Error::Corrupt { commit: short(id), reason };
        let commit = self.repo.find_commit(id).map_err(|e| corrupt(format!("cannot read the commit: {e}")))?;
        let parents: Vec<ObjectId> = commit.parent_ids().map(|p| p.detach()).collect();
        if parents.len() > 1 {
            return Err(corrupt("it is a merge; the ledger is linear".into()));
        }
        let raw = commit.message_raw().map_err(|e| corrupt(format!("cannot read the message: {e}")))?;
        let text = std::str::from_utf8(raw).map_err(|_| corrupt("the message is not UTF-8".into()))?;
        let events = message::parse(text).map_err(|source| Error::Message { commit: short(id), source })?;
        let time = commit.time().map_err(|e| corrupt(format!("bad commit time: {e}")))?.seconds;
        let tree = commit.tree_id().map_err(|e| corrupt(format!("no tree: {e}")))?.detach();
        Ok(Entry { commit: id, tree, parents, time, events })
    }
}
