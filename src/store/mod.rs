//! The store: the ledger on gix. Reads the tip state, appends transactions
//! by compare-and-swap, walks history.

mod batch;
mod branches;
mod env;
pub mod evidence;
mod history;
mod landing;
mod lock;
mod maintenance;
mod notes;
pub mod objects;
mod partial;
mod read;
mod rebase;
mod rejected;
mod sign;
mod tx;
mod verify;
mod write;

use std::path::Path;

use gix::ObjectId;

pub use env::{Identity, host, now, random_u64, runner_id};
pub use history::Entry;
pub use notes::{
    ALL_NOTES, EVIDENCE_NOTES, EVIDENCE_REF, MAX_NOTE_BYTES, MAX_NOTES, MAX_NOTES_BYTES, MSO_NOTES, MergedNotes,
    NOTES_REF, Notes,
};
pub use objects::RepoObjects;
pub use read::{ShardCache, Shards};
pub use rebase::{Integrated, Rebased, Stale};
pub use rejected::SetAside;
pub use sign::Signer;
pub use tx::{Committed, Tx};
pub use verify::{CommitRule, Problem, ReplayError, ReplayRules, Replayed};

use crate::core::Config;
use crate::core::layout::Tally;
use crate::core::message;
use crate::error::{Error, Result};

/// The config override that turns replace refs off.
const NO_REPLACE: &str = "core.useReplaceRefs=false";

/// The one ref that holds the pipeline.
pub const LEDGER_REF: &str = "refs/mso/ledger";

/// A validated ledger tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    pub commit: ObjectId,
    pub tree: ObjectId,
}

/// A clone shares the opened repository: its object database, with the
/// pack indexes loaded so far, and its settings. A dispatcher's worker
/// threads each get one instead of opening the repository again.
#[derive(Clone)]
pub struct Store {
    repo: gix::Repository,
    identity: Identity,
    /// Config and tally of the last tip read: a long-running process (the
    /// dispatcher) appends and reads many times against few distinct tips.
    head_cache: std::cell::RefCell<Option<(ObjectId, Config, Tally)>>,
    /// How ledger commits are signed here (`mso.sign`), or why they cannot be.
    signer: std::result::Result<Option<Signer>, String>,
    /// A fixed "now" for every transaction, instead of the clock (`MSO_NOW`).
    clock: Option<crate::core::Timestamp>,
    /// What of the objects written last `repo` keeps in memory (see `batched`).
    remembered: std::cell::RefCell<Remembered>,
    /// The last batch written, until a ref that names it moves (`settle`).
    unsettled: std::cell::RefCell<Option<gix::odb::memory::Storage>>,
}

/// The objects a store keeps in its repository's memory, all of them on disk.
#[derive(Clone, Default)]
struct Remembered {
    ids: std::collections::HashSet<ObjectId>,
    bytes: usize,
}

impl Remembered {
    const MOST_OBJECTS: usize = 256;
    const MOST_BYTES: usize = 256 * 1024;
}

/// Objects written to disk by a store of this repository, in memory.
#[derive(Default)]
pub(crate) struct Written(gix::odb::memory::Storage);

/// How many pack indexes one open repository can hold at once. gix sizes
/// its table when the repository is opened, by the packs there then (at
/// least 32), and fails a read once more are on disk. Every transaction
/// writes a pack, and a long-running dispatcher keeps its handle while
/// several transactions run and before the background repack rolls them
/// up: room for many more (a slot is a few words).
const PACK_SLOTS: gix::odb::store::init::Slots =
    gix::odb::store::init::Slots::AsNeededByDiskState { multiplier: 2.0, minimum: 1024 };

impl Store {
    /// Open the repository containing `dir` (a work tree, a linked worktree or
    /// a bare repository; `GIT_DIR` is honoured).
    pub fn discover(dir: &Path) -> Result<Self> {
        // Replace refs (`refs/replace/*`) would let anyone who can push one
        // change what a commit or tree id reads as: git-mso never honours them.
        // `git -c key=value mso …` hands its settings over in
        // GIT_CONFIG_PARAMETERS, which gix does not read: they apply here as
        // they would to any git command, above the repository's own config.
        let mut overrides = env::config_parameters().map_err(Error::Input)?;
        overrides.push(NO_REPLACE.to_string());
        let mut trust = gix::sec::trust::Mapping::<gix::open::Options>::default();
        trust.full = trust.full.config_overrides(overrides.clone()).object_store_slots(PACK_SLOTS);
        trust.reduced = trust.reduced.config_overrides(overrides).object_store_slots(PACK_SLOTS);
        let mut repo: gix::Repository =
            gix::ThreadSafeRepository::discover_with_environment_overrides_opts(dir, Default::default(), trust)
                .map_err(|_| Error::NotARepository { path: dir.display().to_string() })?
                .into();
        // Order, index and config blobs are small and read repeatedly.
        repo.object_cache_size_if_unset(4 * 1024 * 1024);
        // What this store wrote last is kept in memory (see `batched`): the
        // next read of the tip it just wrote needs no new look at the packs.
        // Every object this store writes goes through `batched`, which writes
        // it to disk first; nothing is written through `repo` itself.
        repo.objects.enable_object_memory();
        // A bare repository (a server) logs no ref updates by default; the
        // ledger's reflog is what shows it moving backwards (fsck), so keep
        // reflogs for the refs git-mso moves unless core.logAllRefUpdates
        // says false outright.
        let logs_refused = repo.config_snapshot().string("core.logAllRefUpdates").is_some_and(|v| {
            let v = v.to_string();
            v.eq_ignore_ascii_case("false") || v == "0" || v.eq_ignore_ascii_case("no") || v.eq_ignore_ascii_case("off")
        });
        if repo.refs.write_reflog == gix::refs::store::WriteReflog::Disable && !logs_refused {
            repo.refs.write_reflog = gix::refs::store::WriteReflog::Normal;
        }
        let (identity, signer) = {
            let config = repo.config_snapshot();
            (Identity::from_config(&config), Signer::from_config(&config).map_err(|e| e.to_string()))
        };
        Ok(Store {
            repo,
            identity,
            head_cache: Default::default(),
            signer,
            clock: None,
            remembered: Default::default(),
            unsettled: Default::default(),
        })
    }

    /// Run `write` on a handle that keeps the objects it writes in memory,
    /// then write those to disk in one batch (see `batch`), before the ref
    /// that will name them moves.
    ///
    /// Once a ref that names all of the batch has moved (`settle`), it stays
    /// readable from this store's memory (see `remember`): gix learns of a
    /// pack written beside it only by listing the pack directory and looking
    /// at every pack again, and the next transaction, or the next dispatch
    /// pass, reads exactly these objects first (the tip commit, its trees,
    /// the order just written).
    pub(crate) fn batched<T>(&self, what: &str, write: impl FnOnce(&gix::Repository) -> Result<T>) -> Result<T> {
        // A clone has the memory too: `write` reads what was kept.
        let mut scratch = self.repo.clone();
        let value = write(&scratch)?;
        let Some(mut batch) = scratch.objects.take_object_memory() else { return Ok(value) };
        debug_assert_eq!(
            self.repo.objects.num_objects_in_memory(),
            self.remembered.borrow().ids.len(),
            "an object was written through the store's repository, not `batched`: it is only in memory"
        );
        // What was kept is on disk already, and named by a ref.
        batch.retain(|id, _| !self.remembered.borrow().ids.contains(id));
        if !batch.is_empty() {
            batch::persist(&self.repo, &batch, self.writes_packs(), what)?;
        }
        // Kept once a ref names it (`settle`): objects no ref needs may be
        // pruned, and a retry that writes the same ones must write them again.
        *self.unsettled.borrow_mut() = Some(batch);
        Ok(value)
    }

    /// The last batch is named by a ref that moved: keep it readable from
    /// memory (see `remember`).
    pub(crate) fn settle(&self) {
        if let Some(batch) = self.unsettled.take() {
            self.remember(Written(batch));
        }
    }

    /// Keep `objects` readable from memory, with those kept before while
    /// all of them fit in `Remembered::MOST_OBJECTS` and `MOST_BYTES`; when
    /// they do not, the older ones go. Nothing is written through the
    /// store's repository but here and in `batched`: its memory holds only
    /// objects on disk.
    fn remember(&self, Written(objects): Written) {
        let bytes: usize = objects.values().map(|(_, data)| data.len()).sum();
        if objects.len() > Remembered::MOST_OBJECTS || bytes > Remembered::MOST_BYTES {
            return;
        }
        let mut kept = self.remembered.borrow_mut();
        if kept.ids.len() + objects.len() > Remembered::MOST_OBJECTS || kept.bytes + bytes > Remembered::MOST_BYTES {
            let _ = self.repo.objects.reset_object_memory();
            *kept = Remembered::default();
        }
        use gix::objs::Write;
        for (id, (kind, data)) in objects.iter() {
            // Into memory: `discover` enabled it, and nothing disabled it since.
            if !kept.ids.contains(id) && self.repo.objects.write_buf_with_known_id(*kind, data, *id).is_ok() {
                kept.ids.insert(*id);
                kept.bytes += data.len();
            }
        }
    }

    /// The objects this store keeps in memory, taken out: a dispatcher's
    /// worker hands them to the dispatcher, whose next pass reads the tip
    /// the worker wrote.
    pub(crate) fn take_written(&self) -> Written {
        *self.remembered.borrow_mut() = Remembered::default();
        Written(self.repo.objects.reset_object_memory().unwrap_or_default())
    }

    /// Keep what another store of this repository wrote (`take_written`)
    /// readable here, in place of what this one kept: the most recent
    /// writes are what the next reads want.
    pub(crate) fn adopt(&mut self, Written(objects): Written) {
        let bytes = objects.values().map(|(_, data)| data.len()).sum();
        let ids = objects.keys().copied().collect();
        *self.remembered.get_mut() = Remembered { ids, bytes };
        self.repo.objects.set_object_memory(objects);
    }

    pub fn repo(&self) -> &gix::Repository {
        &self.repo
    }

    /// Where git commands for this repository run: its work tree, or the git
    /// directory of a bare repository.
    pub fn top_dir(&self) -> std::path::PathBuf {
        self.repo.workdir().unwrap_or_else(|| self.repo.common_dir()).to_path_buf()
    }

    /// The directory shared by all worktrees of the repository (the `.git` dir, or the bare repo).
    pub fn common_dir(&self) -> &Path {
        self.repo.common_dir()
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Take `at` as the time of every transaction from now on (a tool
    /// replaying a scenario, a test on a fixed date), as `MSO_NOW` does for
    /// a process.
    pub fn pin_clock(&mut self, at: crate::core::Timestamp) {
        self.clock = Some(at);
    }

    /// The time transactions are stamped with.
    pub fn now(&self) -> crate::core::Timestamp {
        self.clock.unwrap_or_else(env::now)
    }

    /// The object `name` points to, if the ref exists and is not symbolic.
    pub fn ref_target(&self, name: &str) -> Result<Option<ObjectId>> {
        let found = self.repo.try_find_reference(name).map_err(|e| Error::git(format!("reading {name}"), e))?;
        Ok(found.and_then(|r| r.target().try_id().map(ToOwned::to_owned)))
    }

    /// The commit `refs/mso/ledger` points to, without checking it is ours.
    pub fn tip_unchecked(&self) -> Result<Option<ObjectId>> {
        let Some(reference) =
            self.repo.try_find_reference(LEDGER_REF).map_err(|e| Error::git("reading refs/mso/ledger", e))?
        else {
            return Ok(None);
        };
        match reference.target().try_id() {
            Some(id) => Ok(Some(id.to_owned())),
            None => Err(Error::Corrupt { commit: "(symbolic ref)".into(), reason: "it is a symbolic ref".into() }),
        }
    }

    /// The current tip, validated as ours; `None` before `init`.
    pub fn tip(&self) -> Result<Option<Tip>> {
        let Some(id) = self.tip_unchecked()? else {
            return Ok(None);
        };
        // A missing object, or another kind, is a broken ledger; failing to
        // read one (out of descriptors, an unreadable pack) is not.
        let commit = match self.repo.try_find_object(id).map_err(|e| Error::git("reading the ledger tip", e))? {
            Some(object) if object.kind == gix::object::Kind::Commit => object.into_commit(),
            Some(_) => {
                return Err(Error::Corrupt { commit: id.to_string(), reason: "it does not point to a commit".into() });
            }
            None => {
                return Err(Error::Corrupt { commit: id.to_string(), reason: "its commit is missing".into() });
            }
        };
        let raw = commit.message_raw().map_err(|e| Error::git("reading the ledger tip", e))?;
        let text = std::str::from_utf8(raw)
            .map_err(|_| Error::Corrupt { commit: id.to_string(), reason: "its message is not UTF-8".into() })?;
        message::check_schema(text).map_err(|source| Error::Message { commit: short(id), source })?;
        let tree = commit.tree_id().map_err(|e| Error::git("reading the ledger tip", e))?.detach();
        // The tip commit and its root tree are read whole and checked against
        // their ids: a damaged or replaced object file is an error, never an
        // older state read as the current one.
        let damaged = |reason: String| Error::Corrupt { commit: id.to_string(), reason };
        read::check_object_id(id, gix::object::Kind::Commit, &commit.data).map_err(damaged)?;
        let root = self.repo.find_object(tree).map_err(|e| Error::git("reading the ledger tree", e))?;
        read::check_object_id(tree, gix::object::Kind::Tree, &root.data).map_err(damaged)?;
        Ok(Some(Tip { commit: id, tree }))
    }

    /// The tip, or the error a user sees before `init`.
    pub fn require_tip(&self) -> Result<Tip> {
        self.tip()?.ok_or(Error::NotInitialized)
    }
}

/// The abbreviated form used in messages.
pub fn short(id: ObjectId) -> String {
    id.to_hex_with_len(7).to_string()
}

/// Keeps the object view a pre-receive hook reads through alive; removes it when dropped.
pub struct QuarantineView(std::path::PathBuf);

impl Drop for QuarantineView {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Store {
    /// In a pre-receive hook, pushed objects wait in `GIT_QUARANTINE_PATH`,
    /// which gix does not look at by itself. Read through an empty object
    /// directory whose alternates are the quarantine and the repository's own
    /// objects, so both are visible (nothing is written into the quarantine).
    pub fn see_quarantine(&mut self) -> Result<Option<QuarantineView>> {
        let Some(quarantine) = std::env::var_os("GIT_QUARANTINE_PATH") else { return Ok(None) };
        let view = self.repo.common_dir().join("mso").join(format!("quarantine-view-{}", std::process::id()));
        let info = view.join("info");
        std::fs::create_dir_all(&info).map_err(|e| Error::io("creating the quarantine view", e))?;
        let guard = QuarantineView(view.clone());
        // Alternates must be absolute: relative ones resolve against the view itself.
        let absolute =
            |p: &Path| std::fs::canonicalize(p).map_err(|e| Error::io(format!("resolving {}", p.display()), e));
        let objects = absolute(&self.repo.common_dir().join("objects"))?;
        let quarantine = absolute(Path::new(&quarantine))?;
        let alternates = format!("{}\n{}\n", quarantine.display(), objects.display());
        std::fs::write(info.join("alternates"), alternates).map_err(|e| Error::io("writing the quarantine view", e))?;
        let handle =
            gix::odb::at(&view, self.repo.object_hash()).map_err(|e| Error::io("opening the quarantine view", e))?;
        self.repo.objects = handle.into();
        Ok(Some(guard))
    }
}
