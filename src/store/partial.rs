//! A partial state: config, counters and stats of a base tree, plus the
//! orders and voyages that events touch, loaded on demand. Appends and
//! verification both work on it, so neither reads the whole ledger.

use std::collections::{BTreeMap, BTreeSet};

use gix::ObjectId;

use super::{Store, Tip};
use crate::core::layout;
use crate::core::{Event, EventBody, Order, OrderId, State, VoyageId};
use crate::error::Result;

pub(crate) struct Partial {
    /// Where entities not yet loaded are read from.
    base: Option<Tip>,
    pub state: State,
    loaded_orders: BTreeSet<OrderId>,
    loaded_voyages: BTreeSet<VoyageId>,
    /// The voyages the events of the transaction being built touch: the
    /// ones `files` writes. Cleared by `files`, so a replay that keeps one
    /// `Partial` across commits writes each commit's voyages only.
    touched_voyages: BTreeSet<VoyageId>,
}

impl Partial {
    pub fn new(store: &Store, base: Option<Tip>) -> Result<Self> {
        let mut state = State::default();
        if let Some(tip) = &base {
            let (config, tally) = store.head(tip)?;
            state.config = Some(config);
            state.counters = tally.ids;
            state.stats = tally.stats;
        }
        Ok(Partial {
            base,
            state,
            loaded_orders: BTreeSet::new(),
            loaded_voyages: BTreeSet::new(),
            touched_voyages: BTreeSet::new(),
        })
    }

    pub fn base(&self) -> Option<Tip> {
        self.base
    }

    pub fn order(&mut self, store: &Store, id: &OrderId) -> Result<Option<&Order>> {
        if self.loaded_orders.insert(id.clone())
            && let Some(tip) = &self.base
            && let Some(order) = store.order(tip, id)?
        {
            self.state.orders.insert(id.clone(), order);
        }
        Ok(self.state.orders.get(id))
    }

    pub fn voyage(&mut self, store: &Store, id: VoyageId) -> Result<Option<&crate::core::Voyage>> {
        if self.loaded_voyages.insert(id)
            && !self.state.voyages.contains_key(&id)
            && let Some(tip) = &self.base
            && let Some(voyage) = store.voyage(tip, id)?
        {
            self.state.voyages.insert(id, voyage);
        }
        Ok(self.state.voyages.get(&id))
    }

    /// Load what `body` touches so `apply` sees the real state.
    pub fn load_for(&mut self, store: &Store, body: &EventBody) -> Result<()> {
        if let Some(order) = body.order() {
            let voyage = self.order(store, &order.clone())?.map(|o| o.voyage);
            if let Some(voyage) = voyage {
                self.voyage(store, voyage)?;
                self.touched_voyages.insert(voyage);
            }
        }
        if let Some(voyage) = body.voyage() {
            self.touched_voyages.insert(voyage);
            let active = self.voyage(store, voyage)?.and_then(|v| v.active.clone());
            // An event about the voyage itself may depend on who runs there.
            if let Some(active) = active.filter(|_| body.voyage_event().is_some()) {
                self.order(store, &active)?;
            }
        }
        Ok(())
    }

    /// The files a transaction of `events` writes, given the tree it is
    /// appended to: each touched order, its shard index, each touched voyage,
    /// and config, counters and stats.
    pub fn files(&mut self, store: &Store, events: &[Event], parent: Option<Tip>) -> Result<BTreeMap<String, Vec<u8>>> {
        let mut files = BTreeMap::new();
        let touched: BTreeSet<&OrderId> = events.iter().filter_map(|e| e.body.order()).collect();
        let mut shards: BTreeMap<String, Vec<&Order>> = BTreeMap::new();
        // Every voyage the transaction's events touched is written: one whose
        // state did not change gives the same blob, and one that changed is
        // never left stale, whichever voyage its order is on by the end (an
        // order may leave a voyage in the transaction that changed it).
        let voyages: BTreeSet<VoyageId> = std::mem::take(&mut self.touched_voyages);
        for id in touched {
            let Some(order) = self.state.orders.get(id) else { continue };
            files.insert(layout::order_path(id), layout::order_blob(order));
            shards.entry(layout::index_path(id)).or_default().push(order);
        }
        for (path, orders) in shards {
            let mut summaries = match &parent {
                Some(tip) => store.shard_summaries(tip, &orders[0].id)?,
                None => Vec::new(),
            };
            for order in orders {
                layout::upsert_summary(&mut summaries, order.summary());
            }
            files.insert(path, layout::index_blob(&summaries));
        }
        for id in voyages {
            if let Some(voyage) = self.state.voyages.get(&id) {
                files.insert(layout::voyage_path(id), layout::voyage_blob(voyage));
            }
        }
        if let Some(config) = &self.state.config {
            // config.json changes only with INIT and CONFIG_SET.
            if events.iter().any(|e| matches!(e.body, EventBody::Init { .. } | EventBody::ConfigSet { .. })) {
                files.insert(layout::CONFIG.into(), layout::to_blob(config));
            }
            files.insert(layout::STATS.into(), layout::tally_blob(&self.state.stats, &self.state.counters));
        }
        Ok(files)
    }
}

/// The ledger tree `files` make of `base` (the empty tree for the first
/// commit). The writer persists it; the verifier builds it in memory and
/// compares tree ids, so a pushed tree is accepted only if it is exactly
/// this one: no extra entries, other modes, symlinks, gitlinks or duplicates.
pub(crate) fn build_tree(
    repo: &gix::Repository,
    base: Option<ObjectId>,
    files: &BTreeMap<String, Vec<u8>>,
) -> std::result::Result<ObjectId, gix::Error> {
    let base = base.unwrap_or_else(|| ObjectId::empty_tree(repo.object_hash()));
    let mut editor = repo.edit_tree(base)?;
    for (path, bytes) in files {
        let blob = repo.write_blob(bytes)?;
        editor.upsert(path.as_str(), gix::object::tree::EntryKind::Blob, blob.detach())?;
    }
    // Written without gix's look-up of every entry of every tree written (a
    // thousand for a full shard): they are the blobs just written and those
    // of `base`. Every name is still checked as gix does, so a writer
    // stops on a tip with a name git refuses rather than build on it.
    editor.detach().write(|tree| {
        for entry in &tree.entries {
            let mode = entry.mode.is_link().then_some(gix::validate::path::component::Mode::Symlink);
            gix::validate::path::component(entry.filename.as_ref(), mode, Default::default())
                .map_err(|e| gix::Exn::new(e).into_error())?;
        }
        repo.write_object(tree).map(|id| id.detach())
    })
}

/// Paths of the blobs that differ between two trees (added, removed or changed),
/// descending only into subtrees whose ids differ.
pub(crate) fn changed_paths(repo: &gix::Repository, old: Option<ObjectId>, new: ObjectId) -> Result<Vec<String>> {
    let mut out = Vec::new();
    diff_trees(repo, old, Some(new), "", &mut out)?;
    Ok(out)
}

/// A tree's entries by name: whether each is a tree, its raw mode, its id.
fn tree_entries(repo: &gix::Repository, id: Option<ObjectId>) -> Result<BTreeMap<Vec<u8>, (bool, u16, ObjectId)>> {
    let mut entries = BTreeMap::new();
    if let Some(id) = id {
        let tree = repo.find_tree(id).map_err(|e| crate::error::Error::git("reading a ledger tree", e))?;
        for entry in tree.iter() {
            let entry = entry.map_err(|e| crate::error::Error::git("reading a ledger tree", e))?;
            let mode = entry.mode();
            entries.insert(entry.filename().to_vec(), (mode.is_tree(), mode.value(), entry.oid().to_owned()));
        }
    }
    Ok(entries)
}

fn diff_trees(
    repo: &gix::Repository,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    prefix: &str,
    out: &mut Vec<String>,
) -> Result<()> {
    if old == new {
        return Ok(());
    }
    let old_entries = tree_entries(repo, old)?;
    let new_entries = tree_entries(repo, new)?;
    let names: BTreeSet<&Vec<u8>> = old_entries.keys().chain(new_entries.keys()).collect();
    for name in names {
        let path = format!("{prefix}{}", String::from_utf8_lossy(name));
        let (o, n) = (old_entries.get(name), new_entries.get(name));
        if o == n {
            continue;
        }
        let subtree = |e: Option<&(bool, u16, ObjectId)>| e.filter(|(is_tree, ..)| *is_tree).map(|(.., id)| *id);
        let blob = |e: Option<&(bool, u16, ObjectId)>| e.is_some_and(|(is_tree, ..)| !*is_tree);
        if subtree(o).is_some() || subtree(n).is_some() {
            diff_trees(repo, subtree(o), subtree(n), &format!("{path}/"), out)?;
        }
        if blob(o) || blob(n) {
            out.push(path);
        }
    }
    Ok(())
}
