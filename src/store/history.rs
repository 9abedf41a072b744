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
    /// The armored SSH signature in the commit's `gpgsig` header, and the
    /// bytes it signs (the commit without that header).
    pub signature: Option<(String, Vec<u8>)>,
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
        let signature = signature(&commit).map_err(corrupt)?;
        Ok(Entry { commit: id, tree, parents, time, events, signature })
    }
}

/// A ledger commit carries no headers but the standard ones and at most one
/// `gpgsig`: nothing git or a signature check could read two ways.
fn signature(commit: &gix::Commit<'_>) -> std::result::Result<Option<(String, Vec<u8>)>, String> {
    let decoded = commit.decode().map_err(|e| format!("cannot decode the commit: {e}"))?;
    if decoded.encoding.is_some() {
        return Err("it has an encoding header; ledger commits are UTF-8".into());
    }
    let mut names = decoded.extra_headers.iter().map(|(name, _)| name.to_string());
    match (names.next().as_deref(), names.next()) {
        (None, _) => return Ok(None),
        (Some("gpgsig"), None) => {}
        _ => return Err("it has commit headers other than one gpgsig signature".into()),
    }
    let found = gix::objs::CommitRefIter::signature(&commit.data, commit.id.kind())
        .map_err(|e| format!("cannot read its signature: {e}"))?;
    let Some((sig, signed)) = found else { return Ok(None) };
    let sig = String::from_utf8(sig.to_vec()).map_err(|_| "its signature is not text".to_string())?;
    Ok(Some((sig, signed.to_bstring().into())))
}
