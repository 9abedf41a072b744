//! The notes refs git-mso keeps on voyage commits: `refs/notes/mso`, a
//! derived mirror of the ledger, and `refs/notes/mso-evidence`, what crews
//! received and produced. Both are lists of blocks per commit, merged by
//! union, so clones' notes never overwrite each other.

use std::collections::BTreeMap;

use gix::ObjectId;

use super::Store;
use crate::core::ids::is_lower_hex;
use crate::core::{Order, notes};
use crate::error::{Error, Result};

pub const NOTES_REF: &str = "refs/notes/mso";

pub const EVIDENCE_REF: &str = "refs/notes/mso-evidence";

/// The largest note read from `refs/notes/mso`; larger ones are skipped.
pub const MAX_NOTE_BYTES: u64 = 64 * 1024;

/// The largest evidence note (the records of the runs on one commit).
pub const MAX_EVIDENCE_NOTE_BYTES: u64 = 512 * 1024;

/// The most notes read from a notes tree; the rest are skipped.
pub const MAX_NOTES: usize = 100_000;

/// The most bytes of notes a notes tree may hold (what a server accepts).
pub const MAX_NOTES_BYTES: u64 = 64 * 1024 * 1024;

/// The most bytes an evidence notes tree may hold.
pub const MAX_EVIDENCE_BYTES: u64 = 1024 * 1024 * 1024;

/// A notes ref git-mso keeps, and its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notes {
    pub name: &'static str,
    pub max_note: u64,
    pub max_total: u64,
    /// Over `max_note`, keep a note's latest blocks (else its earliest).
    pub keep_latest: bool,
}

/// `refs/notes/mso`.
pub const MSO_NOTES: Notes =
    Notes { name: NOTES_REF, max_note: MAX_NOTE_BYTES, max_total: MAX_NOTES_BYTES, keep_latest: false };

/// `refs/notes/mso-evidence`.
pub const EVIDENCE_NOTES: Notes =
    Notes { name: EVIDENCE_REF, max_note: MAX_EVIDENCE_NOTE_BYTES, max_total: MAX_EVIDENCE_BYTES, keep_latest: true };

/// Every notes ref git-mso keeps, as sync exchanges them.
pub const ALL_NOTES: [Notes; 2] = [MSO_NOTES, EVIDENCE_NOTES];

impl Notes {
    /// The notes ref git-mso keeps under this exact name.
    pub fn named(name: &str) -> Option<Notes> {
        ALL_NOTES.into_iter().find(|n| n.name == name)
    }
}

/// What merging a fetched notes commit did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MergedNotes {
    /// A note of ours changed (their notes added something).
    pub changed: bool,
    /// Entries of the fetched tree that are not plain, bounded notes on commits.
    pub skipped: usize,
}

/// The entries of a notes tree: the blob of each commit's note, and how
/// many entries were not plain notes on commits.
type Entries = (BTreeMap<ObjectId, ObjectId>, usize);

/// Which of the current notes a write reads before it updates them (a
/// write that adds to some reads only theirs: `add_notes_together`).
enum Read {
    /// Every note, and their total size (a merge bounds the union by it).
    All,
    /// None: every note is replaced.
    Nothing,
}

impl Store {
    /// Add the notes `order`'s history implies for `commit`, merged with what is there.
    pub fn note_order(&self, order: &Order, commit: &str) -> Result<()> {
        let commit: ObjectId = commit.parse().map_err(|_| Error::Input(format!("bad commit id {commit}")))?;
        match order_note(order, commit) {
            Some(note) => self.add_notes(MSO_NOTES, &note),
            None => Ok(()),
        }
    }

    /// A run's note on `commit` from `order` as the ledger records it (when
    /// it does), and its evidence `record`, written together: one pack, one
    /// ref transaction. A run writes both; apart, they cost twice.
    pub fn note_run(&self, order: Option<&Order>, commit: ObjectId, record: notes::Block) -> Result<()> {
        let adds = run_notes(order, commit, record);
        let adds: Vec<_> = adds.iter().map(|(notes, blocks)| (*notes, blocks)).collect();
        self.add_notes_together(&adds)
    }

    /// `note_run`'s notes objects, written with `repo` (a transaction's
    /// batch), and the ref edits that land them, against the notes refs as
    /// they are now: a ledger transaction lands them with its own ref.
    pub(crate) fn run_notes_edits(
        &self,
        repo: &gix::Repository,
        order: Option<&Order>,
        commit: ObjectId,
        record: notes::Block,
    ) -> Result<Vec<gix::refs::transaction::RefEdit>> {
        let adds = run_notes(order, commit, record);
        let adds: Vec<_> = adds.iter().map(|(notes, blocks)| (*notes, blocks)).collect();
        let updates = self.notes_updates(&adds)?;
        self.notes_objects(repo, &updates, NOTES_MESSAGE)
    }

    /// Merge `blocks` into the notes of their commits on `notes`.
    pub fn add_notes(&self, notes: Notes, blocks: &BTreeMap<ObjectId, Vec<notes::Block>>) -> Result<()> {
        self.add_notes_together(&[(notes, blocks)])
    }

    /// `add_notes` on several notes refs (each at most once), as one
    /// compare-and-swap of all of them, retrying races.
    fn add_notes_together(&self, adds: &[(Notes, &BTreeMap<ObjectId, Vec<notes::Block>>)]) -> Result<()> {
        for _ in 0..50 {
            let updates = self.notes_updates(adds)?;
            if self.commit_notes(&updates, NOTES_MESSAGE)? {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Err(Error::Conflict { attempts: 50 })
    }

    /// What adding `adds` to the notes refs as they are now makes of each.
    fn notes_updates(&self, adds: &[(Notes, &BTreeMap<ObjectId, Vec<notes::Block>>)]) -> Result<Vec<NotesCommit>> {
        let mut updates = Vec::with_capacity(adds.len());
        for (notes, blocks) in adds {
            let old = self.ref_target(notes.name)?;
            let old_tree = old.map(|id| self.tree_of(id)).transpose()?;
            // Only the notes of these commits are read: a runner adds a
            // note or two per run, whatever the number already there.
            let mut set = BTreeMap::new();
            for (commit, new) in *blocks {
                let mut merged = match old_tree.map(|tree| self.note_blob(tree, *commit)).transpose()?.flatten() {
                    Some(blob) => self.note_blocks(blob, notes.max_note)?.unwrap_or_default(),
                    None => Vec::new(),
                };
                notes::merge(&mut merged, new);
                set.insert(*commit, Note::Text(merged));
            }
            updates.push(NotesCommit { notes: *notes, old, base: old_tree, merge_parent: None, set });
        }
        Ok(updates)
    }

    /// A commit of each update, written in one batch, and their refs moved
    /// in one compare-and-swap: `false` when another writer moved one first.
    fn commit_notes(&self, updates: &[NotesCommit], message: &str) -> Result<bool> {
        let edits = self.batched("writing notes", |repo| self.notes_objects(repo, updates, message))?;
        match self.edit_refs(edits) {
            Ok(_) => {
                self.settle();
                Ok(true)
            }
            Err(e) if e.is_race() => Ok(false),
            Err(e) => {
                let names: Vec<&str> = updates.iter().map(|u| u.notes.name).collect();
                Err(e.into_error(format!("updating {}", names.join(", "))))
            }
        }
    }

    /// The tree and commit of each update, written with `repo`, and the
    /// ref edits that land them.
    fn notes_objects(
        &self,
        repo: &gix::Repository,
        updates: &[NotesCommit],
        message: &str,
    ) -> Result<Vec<gix::refs::transaction::RefEdit>> {
        let fail = |what: &'static str| move |e: gix::Error| Error::from_git_write(what.to_string(), e);
        let mut edits = Vec::with_capacity(updates.len());
        for update in updates {
            let tree = self.notes_tree(repo, update.notes, update.base, &update.set)?;
            let parents = update.old.into_iter().chain(update.merge_parent);
            let commit = self
                .write_commit(repo, tree, parents, &format!("{message}\n"), self.now())
                .map_err(fail("writing a notes commit"))?;
            let edit = self.ref_edit(update.notes.name, super::write::expect(update.old), commit, message);
            edits.push(edit.map_err(fail("naming a notes ref"))?);
        }
        Ok(edits)
    }

    /// The tree of `notes` at `base` (or empty) with `set` written into it.
    fn notes_tree(
        &self,
        repo: &gix::Repository,
        notes: Notes,
        base: Option<ObjectId>,
        set: &BTreeMap<ObjectId, Note>,
    ) -> Result<ObjectId> {
        let fail = |what: &'static str| move |e: gix::Error| Error::from_git_write(what.to_string(), e);
        let mut editor = repo
            .edit_tree(base.unwrap_or_else(|| ObjectId::empty_tree(repo.object_hash())))
            .map_err(fail("editing notes"))?;
        for (commit, note) in set {
            let hex = commit.to_string();
            // Drop a fanned-out copy (`ab/cdef…`) so the flat entry is the only one.
            let _ = editor.remove(format!("{}/{}", &hex[..2], &hex[2..]).as_str());
            let blob = match note {
                Note::Blob(id) => *id,
                Note::Text(blocks) => {
                    let text = if notes.keep_latest {
                        notes::render_latest(blocks, notes.max_note as usize)
                    } else {
                        notes::render_bounded(blocks, notes.max_note as usize)
                    };
                    repo.write_blob(text).map_err(fail("writing a note"))?.detach()
                }
            };
            editor.upsert(hex.as_str(), gix::object::tree::EntryKind::Blob, blob).map_err(fail("editing notes"))?;
        }
        Ok(editor.write().map_err(fail("writing notes"))?.detach())
    }

    /// The blocks of the note on `commit`, if there is one within bounds.
    /// One path looked up (flat, or fanned out one level), not the whole tree listed.
    pub fn notes_on(&self, notes: Notes, commit: ObjectId) -> Result<Vec<notes::Block>> {
        let Some(tip) = self.ref_target(notes.name)? else { return Ok(Vec::new()) };
        match self.note_blob(self.tree_of(tip)?, commit)? {
            Some(blob) => Ok(self.note_blocks(blob, notes.max_note)?.unwrap_or_default()),
            None => Ok(Vec::new()),
        }
    }

    /// The blob of the note on `commit` in a notes tree, flat or fanned out one level.
    fn note_blob(&self, tree: ObjectId, commit: ObjectId) -> Result<Option<ObjectId>> {
        let tree = self.repo.find_tree(tree).map_err(|e| Error::git("reading notes", e))?;
        let hex = commit.to_string();
        for path in [hex.clone(), format!("{}/{}", &hex[..2], &hex[2..])] {
            let entry = tree.lookup_entry_by_path(path.as_str()).map_err(|e| Error::git("reading notes", e))?;
            if let Some(entry) = entry.filter(|e| e.mode().kind() == gix::object::tree::EntryKind::Blob) {
                return Ok(Some(entry.object_id()));
            }
        }
        Ok(None)
    }

    /// Merge the notes of `theirs` (a fetched notes commit) into `notes`:
    /// the union of blocks per commit, never dropping either side's. Only
    /// notes that differ are read. Entries that are not plain notes on
    /// commits, or over the bounds, are skipped and counted.
    pub fn merge_notes(&self, notes: Notes, theirs: ObjectId) -> Result<MergedNotes> {
        let local = self.ref_target(notes.name)?;
        if local == Some(theirs) || self.is_ancestor(theirs, local)? {
            return Ok(MergedNotes::default());
        }
        let (their_entries, mut skipped) = self.note_entries(Some(self.tree_of(theirs)?))?;
        // Nothing of ours missing from theirs, and theirs all plain notes in
        // bounds: take theirs as it is (a fast-forward, or a merge another
        // clone already made), so two clones never trade merge commits that
        // change nothing. Otherwise merge, which keeps only plain notes.
        let (ours, _) = self.note_entries(local.map(|l| self.tree_of(l)).transpose()?)?;
        let clean = skipped == 0 && their_entries.values().all(|b| self.blob_size(*b) <= notes.max_note);
        if clean && ours.iter().all(|(commit, blob)| their_entries.get(commit) == Some(blob)) {
            let message = "git-mso: notes taken from the remote";
            match self.set_ref(notes.name, super::write::expect(local), theirs, message) {
                Ok(_) => return Ok(MergedNotes { changed: their_entries.len() != ours.len(), skipped }),
                Err(e) if e.is_race() => {}
                Err(e) => return Err(e.into_error(format!("updating {}", notes.name))),
            }
        }
        let over = std::cell::Cell::new(0);
        let changed = std::cell::Cell::new(false);
        self.write_notes(notes, Some(theirs), |ours, total| {
            over.set(0);
            let mut total = total;
            let mut set = BTreeMap::new();
            for (commit, blob) in &their_entries {
                let size = self.blob_size(*blob);
                let mine = ours.get(commit);
                if mine == Some(blob) {
                    continue;
                }
                if size > notes.max_note || (mine.is_none() && ours.len() + set.len() >= MAX_NOTES) {
                    over.set(over.get() + 1);
                    continue;
                }
                match mine {
                    // A note only they have is taken as it is, if the whole stays in bounds.
                    None if total.saturating_add(size) <= notes.max_total => {
                        total += size;
                        set.insert(*commit, Note::Blob(*blob));
                    }
                    None => over.set(over.get() + 1),
                    Some(mine) => {
                        let ours = self.note_blocks(*mine, notes.max_note)?.unwrap_or_default();
                        let their_blocks = self.note_blocks(*blob, notes.max_note)?.unwrap_or_default();
                        let mut merged = ours.clone();
                        notes::merge(&mut merged, &their_blocks);
                        let same = |a: &[notes::Block], b: &[notes::Block]| {
                            let b: std::collections::HashSet<&notes::Block> = b.iter().collect();
                            a.len() == b.len() && a.iter().all(|x| b.contains(x))
                        };
                        if same(&merged, &their_blocks) {
                            // Theirs holds all of ours: their note as it is, not a reordering.
                            set.insert(*commit, Note::Blob(*blob));
                        } else if !same(&merged, &ours) {
                            set.insert(*commit, Note::Text(merged));
                        }
                    }
                }
            }
            changed.set(!set.is_empty());
            Ok(set)
        })?;
        skipped += over.get();
        Ok(MergedNotes { changed: changed.get(), skipped })
    }

    /// Whether `ancestor` is reachable from `tip` (a bounded walk).
    fn is_ancestor(&self, ancestor: ObjectId, tip: Option<ObjectId>) -> Result<bool> {
        Ok(tip.is_some_and(|tip| super::objects::is_ancestor(&self.repo, ancestor, tip) == Some(true)))
    }

    /// Regenerate every note of `refs/notes/mso` from the ledger; returns how many commits carry one.
    /// A result that lands meanwhile writes its note into the notes being
    /// replaced: when the ledger moved, the notes of the ledger as it is
    /// then are added back, by union (which removes nothing, so it needs
    /// no still ledger).
    pub fn rebuild_notes(&self) -> Result<usize> {
        let tip = self.require_tip()?;
        let all = self.ledger_notes(tip)?;
        let fresh = || all.iter().map(|(c, b)| (*c, Note::Text(b.clone()))).collect();
        self.replace_notes(MSO_NOTES, fresh)?;
        let now = self.require_tip()?;
        if now == tip {
            return Ok(all.len());
        }
        let mut again = self.ledger_notes(now)?;
        let count = again.len();
        // Only what the results that landed meanwhile changed.
        again.retain(|commit, blocks| all.get(commit) != Some(blocks));
        self.add_notes(MSO_NOTES, &again)?;
        Ok(count)
    }

    /// Every note the ledger at `tip` implies, by commit.
    fn ledger_notes(&self, tip: super::Tip) -> Result<BTreeMap<ObjectId, Vec<notes::Block>>> {
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
        Ok(all)
    }

    fn tree_of(&self, commit: ObjectId) -> Result<ObjectId> {
        Ok(self
            .repo
            .find_commit(commit)
            .and_then(|c| c.tree_id())
            .map_err(|e| Error::git("reading notes", e))?
            .detach())
    }

    fn blob_size(&self, blob: ObjectId) -> u64 {
        self.repo.find_header(blob).map(|h| h.size()).unwrap_or(u64::MAX)
    }

    /// The blocks of a note blob; `None` when it is over `max` bytes.
    fn note_blocks(&self, blob: ObjectId, max: u64) -> Result<Option<Vec<notes::Block>>> {
        if self.blob_size(blob) > max {
            return Ok(None);
        }
        let blob = self.repo.find_blob(blob).map_err(|e| Error::git("reading a note", e))?;
        Ok(Some(notes::parse(&String::from_utf8_lossy(&blob.data))))
    }

    fn replace_notes(&self, notes: Notes, set: impl Fn() -> BTreeMap<ObjectId, Note>) -> Result<()> {
        self.write_notes_with(notes, None, Read::Nothing, |_, _| Ok(set()))
    }

    fn write_notes(
        &self,
        notes: Notes,
        merge_parent: Option<ObjectId>,
        update: impl Fn(&BTreeMap<ObjectId, ObjectId>, u64) -> Result<BTreeMap<ObjectId, Note>>,
    ) -> Result<()> {
        self.write_notes_with(notes, merge_parent, Read::All, update)
    }

    /// Read the current note entries `read` names, let `update` say which
    /// notes to set (given those entries and, when all are read, their
    /// total size), and commit that on the notes ref by compare-and-swap,
    /// retrying races.
    fn write_notes_with(
        &self,
        notes: Notes,
        merge_parent: Option<ObjectId>,
        read: Read,
        update: impl Fn(&BTreeMap<ObjectId, ObjectId>, u64) -> Result<BTreeMap<ObjectId, Note>>,
    ) -> Result<()> {
        let replace_all = matches!(read, Read::Nothing);
        for _ in 0..50 {
            let old = self.ref_target(notes.name)?;
            let old_tree = old.map(|id| self.tree_of(id)).transpose()?;
            let (existing, total) = match (&read, old_tree) {
                (Read::All, tree) => {
                    let (all, _) = self.note_entries(tree)?;
                    let total = all.values().map(|b| self.blob_size(*b)).fold(0u64, u64::saturating_add);
                    (all, total)
                }
                (Read::Nothing, _) => (BTreeMap::new(), 0),
            };
            let set = update(&existing, total)?;
            // A merge is written even when it changes no note: our notes must
            // descend from theirs, or the push of the union is no fast-forward.
            if set.is_empty() && !replace_all && merge_parent.is_none() {
                return Ok(());
            }
            let base = if replace_all { None } else { old_tree };
            let message = if replace_all { "git-mso: notes rebuilt from the ledger" } else { NOTES_MESSAGE };
            if self.commit_notes(&[NotesCommit { notes, old, base, merge_parent, set }], message)? {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Err(Error::Conflict { attempts: 50 })
    }

    /// The notes of a notes tree, flat or fanned out one level, by blob id.
    /// Anything else (a deeper directory, a name that is not a commit id, a
    /// symlink or submodule) and entries past `MAX_NOTES` are skipped and counted.
    fn note_entries(&self, tree: Option<ObjectId>) -> Result<Entries> {
        let mut out = BTreeMap::new();
        let mut skipped = 0;
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
                let note_on = name.parse::<ObjectId>().ok().filter(|_| name.len() == 40 && is_lower_hex(&name));
                match note_on {
                    Some(commit) if kind == gix::object::tree::EntryKind::Blob && out.len() < MAX_NOTES => {
                        out.insert(commit, entry.oid().to_owned());
                    }
                    _ => skipped += 1,
                }
            }
        }
        Ok((out, skipped))
    }
}

/// One notes commit to write: `set` on the tree `base` (or an empty one),
/// moving `notes` from `old`, with `merge_parent` as a second parent.
struct NotesCommit {
    notes: Notes,
    old: Option<ObjectId>,
    base: Option<ObjectId>,
    merge_parent: Option<ObjectId>,
    set: BTreeMap<ObjectId, Note>,
}

/// What to set a note to: blocks to render, or a blob to take as it is.
enum Note {
    Text(Vec<notes::Block>),
    Blob(ObjectId),
}

/// The message of the notes commits git-mso writes.
const NOTES_MESSAGE: &str = "git-mso: notes updated";

/// A run's notes on `commit`: `order`'s note there (as the ledger records
/// it), if any, and the evidence `record`.
fn run_notes(
    order: Option<&Order>,
    commit: ObjectId,
    record: notes::Block,
) -> Vec<(Notes, BTreeMap<ObjectId, Vec<notes::Block>>)> {
    let mut adds = Vec::with_capacity(2);
    if let Some(note) = order.and_then(|order| order_note(order, commit)) {
        adds.push((MSO_NOTES, note));
    }
    adds.push((EVIDENCE_NOTES, BTreeMap::from([(commit, vec![record])])));
    adds
}

/// The blocks `order` puts on `commit`, as `add_notes` takes them.
fn order_note(order: &Order, commit: ObjectId) -> Option<BTreeMap<ObjectId, Vec<notes::Block>>> {
    let hex = commit.to_string();
    let (_, blocks) = notes::for_order(order).into_iter().find(|(c, _)| *c == hex)?;
    Some(BTreeMap::from([(commit, blocks)]))
}
