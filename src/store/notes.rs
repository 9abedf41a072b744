//! `refs/notes/mso`: a derived mirror of the ledger on voyage commits.

use std::collections::BTreeMap;

use gix::ObjectId;

use super::Store;
use crate::core::ids::is_lower_hex;
use crate::core::{Order, notes};
use crate::error::{Error, Result};

pub const NOTES_REF: &str = "refs/notes/mso";

/// The largest note read from a notes tree; larger ones are skipped.
pub const MAX_NOTE_BYTES: u64 = 64 * 1024;

/// The most notes read from a notes tree; the rest are skipped.
pub const MAX_NOTES: usize = 100_000;

/// The most bytes of notes read from a notes tree; the rest are skipped.
pub const MAX_NOTES_BYTES: u64 = 64 * 1024 * 1024;

/// What merging a fetched notes commit did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MergedNotes {
    /// The local notes changed.
    pub changed: bool,
    /// Entries of the fetched tree that are not plain, bounded notes on commits.
    pub skipped: usize,
}

/// Notes read from a notes tree, and how many entries were not plain notes.
type ReadNotes = (BTreeMap<ObjectId, Vec<notes::Block>>, usize);

impl Store {
    /// Add the notes `order`'s history implies for `commit`, merged with what is there.
    pub fn note_order(&self, order: &Order, commit: &str) -> Result<()> {
        let Some((_, blocks)) = notes::for_order(order).into_iter().find(|(c, _)| c == commit) else {
            return Ok(());
        };
        let commit: ObjectId = commit.parse().map_err(|_| Error::Input(format!("bad commit id {commit}")))?;
        self.write_notes(
            |existing| {
                let mut merged = existing.get(&commit).cloned().unwrap_or_default();
                notes::merge(&mut merged, &blocks);
                BTreeMap::from([(commit, merged)])
            },
            false,
            None,
        )
    }

    /// Merge the notes of `theirs` (a fetched notes commit) into `refs/notes/mso`:
    /// the union of blocks per commit, never dropping either side's. Entries
    /// that are not plain notes on commits are skipped and counted.
    pub fn merge_notes(&self, theirs: ObjectId) -> Result<MergedNotes> {
        let local = self.ref_target(NOTES_REF)?;
        if local == Some(theirs) || self.is_ancestor(theirs, local)? {
            return Ok(MergedNotes::default());
        }
        let tree_of = |id: ObjectId| -> Result<ObjectId> {
            Ok(self
                .repo
                .find_commit(id)
                .and_then(|c| c.tree_id())
                .map_err(|e| Error::git("reading notes", e))?
                .detach())
        };
        let (their_notes, skipped) = self.read_notes(Some(tree_of(theirs)?))?;
        // The union stays within what a server accepts: at most MAX_NOTES notes.
        let over = std::cell::Cell::new(0);
        self.write_notes(
            |ours| {
                over.set(0);
                let mut merged = ours.clone();
                for (commit, blocks) in &their_notes {
                    if !merged.contains_key(commit) && merged.len() >= MAX_NOTES {
                        over.set(over.get() + 1);
                        continue;
                    }
                    notes::merge(merged.entry(*commit).or_default(), blocks);
                }
                merged
            },
            false,
            Some(theirs),
        )?;
        Ok(MergedNotes { changed: true, skipped: skipped + over.get() })
    }

    /// Whether `ancestor` is reachable from `tip` (a bounded walk).
    fn is_ancestor(&self, ancestor: ObjectId, tip: Option<ObjectId>) -> Result<bool> {
        Ok(tip.is_some_and(|tip| super::objects::is_ancestor(&self.repo, ancestor, tip) == Some(true)))
    }

    /// Regenerate every note from the ledger; returns how many commits carry one.
    pub fn rebuild_notes(&self) -> Result<usize> {
        let tip = self.require_tip()?;
        let mut all: BTreeMap<ObjectId, Vec<notes::Block>> = BTreeMap::new();
        let mut summaries = self.summaries(&tip)?;
        summaries.sort_by_key(|s| s.seq);
        for summary in summaries {
            let Some(order) = self.order(&tip, &summary.id)? else { continue };
            for (commit, blocks) in notes::for_order(&order) {
                let Ok(commit) = commit.parse::<ObjectId>() else { continue };
                notes::merge(all.entry(commit).or_default(), &blocks);
            }
        }
        let count = all.len();
        self.write_notes(move |_| all.clone(), true, None)?;
        Ok(count)
    }

    /// Read the current notes, let `update` say which notes to set, and
    /// commit that on `refs/notes/mso` by compare-and-swap (retrying races).
    fn write_notes(
        &self,
        update: impl Fn(&BTreeMap<ObjectId, Vec<notes::Block>>) -> BTreeMap<ObjectId, Vec<notes::Block>>,
        replace_all: bool,
        merge_parent: Option<ObjectId>,
    ) -> Result<()> {
        let repo = &self.repo;
        let fail = |what: &str| {
            let what = what.to_string();
            move |e: gix::Error| Error::git(what, e)
        };
        for _ in 0..50 {
            let old = self.ref_target(NOTES_REF)?;
            let old_tree = match old {
                Some(id) => Some(
                    repo.find_commit(id)
                        .map_err(fail("reading refs/notes/mso"))?
                        .tree_id()
                        .map_err(fail("reading refs/notes/mso"))?
                        .detach(),
                ),
                None => None,
            };
            let (existing, _) = self.read_notes(old_tree)?;
            let set = update(&existing);
            let base = if replace_all { None } else { old_tree };
            let mut editor = repo
                .edit_tree(base.unwrap_or_else(|| ObjectId::empty_tree(repo.object_hash())))
                .map_err(fail("editing notes"))?;
            for (commit, blocks) in &set {
                let hex = commit.to_string();
                // Drop a fanned-out copy (`ab/cdef…`) so the flat entry is the only one.
                let _ = editor.remove(format!("{}/{}", &hex[..2], &hex[2..]).as_str());
                let text = notes::render_bounded(blocks, MAX_NOTE_BYTES as usize);
                let blob = repo.write_blob(text).map_err(fail("writing a note"))?;
                editor
                    .upsert(hex.as_str(), gix::object::tree::EntryKind::Blob, blob.detach())
                    .map_err(fail("editing notes"))?;
            }
            let tree = editor.write().map_err(fail("writing notes"))?.detach();
            let message = if replace_all { "git-mso: notes rebuilt from the ledger" } else { "git-mso: notes updated" };
            let commit = self
                .write_commit(tree, old.into_iter().chain(merge_parent), &format!("{message}\n"), self.now())
                .map_err(fail("writing a notes commit"))?;
            match self.set_ref(NOTES_REF, super::write::expect(old), commit, message) {
                Ok(_) => return Ok(()),
                Err(e) if super::tx::is_retryable(&e) => std::thread::sleep(std::time::Duration::from_millis(5)),
                Err(e) => return Err(Error::git("updating refs/notes/mso", e)),
            }
        }
        Err(Error::Conflict { attempts: 50 })
    }

    /// Notes of a notes tree, flat or fanned out one level. Anything else (a
    /// deeper directory, a name that is not a commit id, a note over
    /// `MAX_NOTE_BYTES`, a symlink or submodule) is skipped and counted.
    fn read_notes(&self, tree: Option<ObjectId>) -> Result<ReadNotes> {
        let mut out = BTreeMap::new();
        let (mut skipped, mut total) = (0, 0u64);
        let Some(tree) = tree else { return Ok((out, skipped)) };
        let fail = |e: gix::Error| Error::git("reading notes", e);
        let mut stack = vec![(String::new(), tree)];
        while let Some((prefix, id)) = stack.pop() {
            let tree = self.repo.find_tree(id).map_err(fail)?;
            for entry in tree.iter() {
                let entry = entry.map_err(fail)?;
                let name = format!("{prefix}{}", entry.filename());
                let kind = entry.mode().kind();
                if kind == gix::object::tree::EntryKind::Tree
                    && prefix.is_empty()
                    && name.len() == 2
                    && is_lower_hex(&name)
                {
                    stack.push((name, entry.oid().to_owned()));
                    continue;
                }
                let size = self.repo.find_header(entry.oid()).map(|h| h.size()).unwrap_or(u64::MAX);
                if out.len() >= MAX_NOTES || total.saturating_add(size) > MAX_NOTES_BYTES {
                    skipped += 1;
                    continue;
                }
                let note_on = name.parse::<ObjectId>().ok().filter(|_| name.len() == 40 && is_lower_hex(&name));
                match note_on {
                    Some(commit) if kind == gix::object::tree::EntryKind::Blob && size <= MAX_NOTE_BYTES => {
                        total += size;
                        let blob = self.repo.find_blob(entry.oid()).map_err(fail)?;
                        let text = String::from_utf8_lossy(&blob.data);
                        out.insert(commit, notes::parse(&text));
                    }
                    _ => skipped += 1,
                }
            }
        }
        Ok((out, skipped))
    }
}
