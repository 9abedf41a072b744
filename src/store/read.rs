//! Reading state out of a ledger tree: one blob per question.

use std::collections::HashMap;
use std::rc::Rc;

use gix::ObjectId;
use serde::de::DeserializeOwned;

use super::{Store, Tip, short};
use crate::core::layout::{self, INDEX, Tally};
use crate::core::state::Stats;
use crate::core::{Config, Order, OrderId, OrderSummary, Voyage, VoyageId};
use crate::error::{Error, Result};

/// Shard indexes already parsed, by the id of their shard's tree, for a
/// reader that reads `summaries` of one tip after another (the dispatcher,
/// once per pass): an append rewrites one shard, so the next read reads
/// that one alone, and neither the other shards' trees nor their indexes.
/// A tree id names its content, and so its index blob, checked when it was
/// first read: a hit is the same content, whichever tip it comes from.
#[derive(Debug, Default)]
pub struct ShardCache(HashMap<ObjectId, Option<Rc<Shard>>>);

/// One shard's summaries, and whether any of its orders is still open
/// (not completed or cancelled).
#[derive(Debug)]
pub struct Shard {
    summaries: Vec<OrderSummary>,
    open: bool,
}

impl Shard {
    fn new(summaries: Vec<OrderSummary>) -> Shard {
        let open = summaries.iter().any(|s| !s.status.is_terminal());
        Shard { summaries, open }
    }
}

/// Every order's summary, shard by shard, shared with a `ShardCache`: a
/// pass over ten thousand orders copies none of them.
#[derive(Debug)]
pub struct Shards(Vec<Rc<Shard>>);

impl Shards {
    pub fn iter(&self) -> impl Iterator<Item = &OrderSummary> + Clone {
        self.0.iter().flat_map(|shard| shard.summaries.iter())
    }

    /// The summaries of the shards that hold an open order: every open
    /// order's among them. A large ledger's orders are mostly ended, and
    /// whole shards of them are passed over.
    pub fn of_open_shards(&self) -> impl Iterator<Item = &OrderSummary> + Clone {
        self.0.iter().filter(|shard| shard.open).flat_map(|shard| shard.summaries.iter())
    }
}

impl Store {
    /// The bytes of the blob at `path` in `tree`, if there is one.
    pub(crate) fn blob_at(&self, tree: ObjectId, path: &str) -> Result<Option<Vec<u8>>> {
        let tree = self.repo.find_tree(tree).map_err(|e| Error::git("reading the ledger tree", e))?;
        let Some(entry) = tree.lookup_entry_by_path(path).map_err(|e| Error::git(format!("looking up {path}"), e))?
        else {
            return Ok(None);
        };
        if !entry.mode().is_blob() {
            return Err(Error::Corrupt { commit: short(tree.id), reason: format!("{path} is not a file") });
        }
        Ok(Some(self.verified_blob(entry.object_id(), path)?))
    }

    /// A ledger blob, read whole and checked against its id: a damaged or
    /// replaced object file is an error, never a silently different state.
    pub(crate) fn verified_blob(&self, id: ObjectId, what: &str) -> Result<Vec<u8>> {
        let object = self.repo.find_object(id).map_err(|e| Error::git(format!("reading {what}"), e))?;
        if object.kind != gix::object::Kind::Blob {
            return Err(Error::Corrupt { commit: short(id), reason: format!("{what} is not a file") });
        }
        let data = object.detach().data;
        check_object_id(id, gix::object::Kind::Blob, &data)
            .map_err(|reason| Error::Corrupt { commit: short(id), reason: format!("{what}: {reason}") })?;
        Ok(data)
    }

    /// The text of a regular file in a commit's tree, if it is there and at
    /// most `max` bytes (a larger one, a symlink or a directory is `None`).
    pub fn file_in_commit(&self, commit: ObjectId, path: &str, max: u64) -> Option<String> {
        let tree = self.repo.find_commit(commit).ok()?.tree().ok()?;
        let entry = tree.lookup_entry_by_path(path).ok()??;
        if entry.mode().kind() != gix::object::tree::EntryKind::Blob {
            return None;
        }
        if self.repo.find_header(entry.oid()).ok()?.size() > max {
            return None;
        }
        let blob = entry.object().ok()?;
        Some(String::from_utf8_lossy(&blob.data).into_owned())
    }

    fn parse_at<T: DeserializeOwned>(&self, tip: &Tip, path: &str) -> Result<Option<T>> {
        match self.blob_at(tip.tree, path)? {
            None => Ok(None),
            Some(bytes) => layout::from_blob(&bytes)
                .map(Some)
                .map_err(|e| Error::Corrupt { commit: short(tip.commit), reason: format!("{path}: {e}") }),
        }
    }

    fn require_at<T: DeserializeOwned>(&self, tip: &Tip, path: &str) -> Result<T> {
        self.parse_at(tip, path)?
            .ok_or_else(|| Error::Corrupt { commit: short(tip.commit), reason: format!("{path} is missing") })
    }

    pub fn config(&self, tip: &Tip) -> Result<Config> {
        Ok(self.head(tip)?.0)
    }

    /// Config and tally of `tip`, cached by tip commit id.
    pub(crate) fn head(&self, tip: &Tip) -> Result<(Config, Tally)> {
        if let Some((id, config, tally)) = &*self.head_cache.borrow()
            && *id == tip.commit
        {
            return Ok((config.clone(), tally.clone()));
        }
        let config: Config = self.require_at(tip, layout::CONFIG)?;
        let tally: Tally = self.require_at(tip, layout::STATS)?;
        *self.head_cache.borrow_mut() = Some((tip.commit, config.clone(), tally.clone()));
        Ok((config, tally))
    }

    /// Counts per role and status, and the id counters: one blob.
    pub fn tally(&self, tip: &Tip) -> Result<Tally> {
        Ok(self.head(tip)?.1)
    }

    pub fn stats(&self, tip: &Tip) -> Result<Stats> {
        Ok(self.tally(tip)?.stats)
    }

    pub fn order(&self, tip: &Tip, id: &OrderId) -> Result<Option<Order>> {
        let order: Option<Order> = self.parse_at(tip, &layout::order_path(id))?;
        match order {
            Some(o) if &o.id != id => Err(Error::Corrupt {
                commit: short(tip.commit),
                reason: format!("{} holds order {}", layout::order_path(id), o.id),
            }),
            other => Ok(other),
        }
    }

    pub fn voyage(&self, tip: &Tip, id: VoyageId) -> Result<Option<Voyage>> {
        self.parse_at(tip, &layout::voyage_path(id))
    }

    /// The summaries of one shard (empty when the shard does not exist yet).
    pub fn shard_summaries(&self, tip: &Tip, id: &OrderId) -> Result<Vec<OrderSummary>> {
        let path = layout::index_path(id);
        match self.blob_at(tip.tree, &path)? {
            None => Ok(Vec::new()),
            Some(bytes) => layout::parse_index(&bytes)
                .map_err(|e| Error::Corrupt { commit: short(tip.commit), reason: format!("{path}: {e}") }),
        }
    }

    /// Every order's summary, by reading one index per shard (not one blob per order).
    pub fn summaries(&self, tip: &Tip) -> Result<Vec<OrderSummary>> {
        let shards = self.summaries_cached(tip, &mut ShardCache::default())?;
        // The cache is gone: each shard's summaries are taken, not copied.
        Ok(shards
            .0
            .into_iter()
            .flat_map(|shard| Rc::try_unwrap(shard).map_or_else(|s| s.summaries.clone(), |s| s.summaries))
            .collect())
    }

    /// `summaries`, parsing only the shard indexes `cache` does not hold
    /// already, and leaving in it those of this tip.
    pub fn summaries_cached(&self, tip: &Tip, cache: &mut ShardCache) -> Result<Shards> {
        let mut out = Vec::new();
        let mut now = HashMap::with_capacity(cache.0.len());
        for shard_dir in self.subtrees(tip, tip.tree, layout::ORDERS)? {
            let parsed = match now.get(&shard_dir).or(cache.0.get(&shard_dir)) {
                Some(parsed) => parsed.clone(),
                None => {
                    let tree = self.repo.find_tree(shard_dir).map_err(|e| Error::git("reading a shard", e))?;
                    match tree.find_entry(INDEX) {
                        None => None,
                        Some(entry) => {
                            let blob = self.verified_blob(entry.object_id(), "a shard index")?;
                            let summaries = layout::parse_index(&blob).map_err(|e| Error::Corrupt {
                                commit: short(tip.commit),
                                reason: format!("a shard index: {e}"),
                            })?;
                            Some(Rc::new(Shard::new(summaries)))
                        }
                    }
                }
            };
            if let Some(shard) = &parsed {
                out.push(Rc::clone(shard));
            }
            now.insert(shard_dir, parsed);
        }
        cache.0 = now;
        Ok(Shards(out))
    }

    /// Every voyage, in id order.
    pub fn voyages(&self, tip: &Tip) -> Result<Vec<Voyage>> {
        let mut out = Vec::new();
        for shard_dir in self.subtrees(tip, tip.tree, layout::VOYAGES)? {
            let tree = self.repo.find_tree(shard_dir).map_err(|e| Error::git("reading voyages", e))?;
            for entry in tree.iter() {
                let entry = entry.map_err(|e| Error::git("reading voyages", e))?;
                let blob = self.verified_blob(entry.oid().to_owned(), "a voyage")?;
                let voyage: Voyage = layout::from_blob(&blob).map_err(|e| Error::Corrupt {
                    commit: short(tip.commit),
                    reason: format!("voyage {}: {e}", entry.filename()),
                })?;
                out.push(voyage);
            }
        }
        Ok(out)
    }

    /// Ids of the subtrees of `path` (relative to `tree`; "" for `tree` itself), in name order.
    fn subtrees(&self, tip: &Tip, tree: ObjectId, path: &str) -> Result<Vec<ObjectId>> {
        let mut tree = self.repo.find_tree(tree).map_err(|e| Error::git("reading the ledger tree", e))?;
        if !path.is_empty() {
            match tree.lookup_entry_by_path(path).map_err(|e| Error::git(format!("looking up {path}"), e))? {
                None => return Ok(Vec::new()),
                Some(entry) if entry.mode().is_tree() => {
                    tree = entry.object().map_err(|e| Error::git("reading a tree", e))?.into_tree();
                }
                Some(_) => {
                    return Err(Error::Corrupt {
                        commit: short(tip.commit),
                        reason: format!("{path} is not a directory"),
                    });
                }
            }
        }
        let mut ids = Vec::new();
        for entry in tree.iter() {
            let entry = entry.map_err(|e| Error::git("reading a tree", e))?;
            if entry.mode().is_tree() {
                ids.push(entry.oid().to_owned());
            }
        }
        Ok(ids)
    }
}

/// Whether `data`, as an object of `kind`, hashes to `id`.
pub(crate) fn check_object_id(id: ObjectId, kind: gix::object::Kind, data: &[u8]) -> std::result::Result<(), String> {
    match gix::objs::compute_hash(id.kind(), kind, data) {
        Ok(actual) if actual == id => Ok(()),
        Ok(actual) => Err(format!(
            "object {id} is damaged: its content hashes to {actual}; restore it from a clone or the server"
        )),
        Err(e) => Err(format!("object {id} cannot be hashed: {e}")),
    }
}
