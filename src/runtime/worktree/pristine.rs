//! Whether a crew worktree holds one commit exactly, decided in process.
//!
//! Resetting a worktree takes git two processes and listing what a crew
//! left a third: most of a role's overhead when the crew changed nothing
//! or committed its work itself. This check lets both be skipped, so it
//! must never call a worktree clean that git would not leave so: it sees
//! what `git status` does not (entries marked assume-unchanged or
//! skip-worktree, a merge or cherry-pick left half-done or its
//! resolve-undo records, a cache-tree that names other trees, hard links
//! and set-id bits, nested `.git` directories, empty directories), and any
//! doubt answers no, which only costs the full reset. It is taken when the
//! worktree is about to be used, under its occupancy lock, never trusted
//! from an earlier look. Everything a crew could have replaced is read
//! bounded and never through a symlink.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::bstr::{BStr, ByteSlice};
use gix::index::entry::{Flags, Mode, Stat, stat};

/// What a linked worktree's own git directory holds between runs (see
/// `tidy`): anything else (`MERGE_HEAD`, `rebase-merge/`, a
/// `config.worktree`, per-worktree refs, …) means no.
const QUIET_GIT_DIR: &[&str] = &["HEAD", "commondir", "gitdir", "index"];

/// The largest index read: git's own for a hundred thousand files is a
/// tenth of this.
const INDEX_MAX: u64 = 128 * 1024 * 1024;

/// Remove from the worktree's git directory what git leaves there between
/// commands and a fresh worktree does not have (ORIG_HEAD, FETCH_HEAD,
/// COMMIT_EDITMSG, its reflog, per-worktree refs): a crew's, of no use to
/// the next. What marks work in progress (MERGE_HEAD, a rebase) is left
/// for the check to see, and git's reset to end.
pub fn tidy(path: &Path) {
    if let Some(dir) = admin_dir(path) {
        tidy_in(&dir);
    }
}

/// `tidy` for the git directory `dir`, which `admin_dir` has just proven.
pub fn tidy_in(dir: &Path) {
    for name in ["ORIG_HEAD", "FETCH_HEAD", "COMMIT_EDITMSG", "AUTO_MERGE"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    for name in ["logs", "refs"] {
        let _ = std::fs::remove_dir_all(dir.join(name));
    }
}

/// Whether the worktree at `path` is exactly the commit `at`: its HEAD
/// detached there, nothing in progress, an index that is the commit's tree
/// and tells nothing else, and on disk exactly the index's files, each
/// unchanged since the index recorded it.
/// `dir` is its git directory, as `admin_dir` has just proven it (no crew
/// process runs there meanwhile).
pub fn holds_exactly_in(objects: &gix::Repository, path: &Path, dir: &Path, at: ObjectId) -> bool {
    check(objects, path, dir, at, Look::Content).unwrap_or(false)
}

/// `holds_exactly_in` without looking at the files: after git's own reset,
/// whether something it leaves is still there (a `.git` in a tracked
/// directory, state in the worktree's git directory). Submodules are
/// git's to reset: their directories are not looked into.
pub fn holds_only(objects: &gix::Repository, path: &Path, at: ObjectId) -> bool {
    admin_dir(path).is_some_and(|dir| check(objects, path, &dir, at, Look::Paths).unwrap_or(false))
}

/// The commit the worktree's HEAD names, when it is detached: read from
/// its git directory, bounded, never through a symlink.
pub fn detached_head(path: &Path) -> Option<ObjectId> {
    head_in(&admin_dir(path)?)
}

/// The detached HEAD of the git directory `dir`.
pub fn head_in(dir: &Path) -> Option<ObjectId> {
    let head = small_file(&dir.join("HEAD"), 256)?;
    ObjectId::from_hex(head.strip_suffix(b"\n")?).ok()
}

/// Whether the worktree's index would make git's reset leave something of
/// a crew: an entry that tells git to look away, resolve-undo records, a
/// cache-tree naming trees the commit does not have, or a tracked file
/// that git would not rewrite but is not its own (a hard link, set-id or
/// sticky bits). Such an index is removed before the reset, so that git
/// rebuilds it and writes every file again.
pub fn index_misleads(objects: &gix::Repository, path: &Path, at: ObjectId) -> bool {
    let Some(index) = admin_dir(path).and_then(|dir| read_index(&dir, objects.object_hash())) else { return false };
    let hiding = Flags::ASSUME_VALID | Flags::SKIP_WORKTREE | Flags::INTENT_TO_ADD;
    index.entries().iter().any(|e| e.flags.intersects(hiding))
        || index.resolve_undo().is_some()
        || index.link().is_some()
        || !cache_tree_holds(objects, &index, at).unwrap_or(false)
        || index.entries().iter().any(|e| {
            std::fs::symlink_metadata(root_join(path, e.path(&index))).is_ok_and(|m| m.is_file() && !plain(&m))
        })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Look {
    Content,
    Paths,
}

/// Whether git or gix may open the worktree: its `.git` file names its
/// git directory under this repository's `worktrees/`, which names it back
/// and this repository as its common directory, and whose HEAD, index and
/// links are regular files of sane sizes (a link to /dev/zero, a FIFO or
/// a 20 GB file would be read for ever, or block).
pub fn openable(path: &Path) -> bool {
    admin_dir(path).is_some_and(|dir| plain_git_files(&dir))
}

/// The files of the worktree's git directory `dir` that git and gix read
/// are regular files of sane sizes, and the index's cache-tree shallow.
fn plain_git_files(dir: &Path) -> bool {
    let index = std::fs::symlink_metadata(dir.join("index"));
    index.is_ok_and(|m| m.is_file() && m.len() <= INDEX_MAX)
        && small_file(&dir.join("index"), INDEX_MAX).is_some_and(|data| index_sane(&data))
        && small_file(&dir.join("HEAD"), 4096).is_some()
}

/// The worktree's own git directory, when it is this worktree's and this
/// repository's: named by its `.git` file, under `<common dir>/worktrees/`,
/// naming the `.git` file back, with `commondir` resolving to this
/// repository. Nothing is read from, and above all nothing deleted in, a
/// directory a crew's `.git` file names before this says it is ours.
pub fn admin_dir(path: &Path) -> Option<PathBuf> {
    let common = path.ancestors().nth(3)?;
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    // Resolved first: a symbolic link under worktrees/ to anywhere else
    // is not a directory of worktrees/.
    let dir = canonical(&git_dir_of(path)?)?;
    if dir.parent()? != canonical(&common.join("worktrees"))? {
        return None;
    }
    let line = |name: &str| {
        let text = small_file(&dir.join(name), 4096)?;
        let text = text.strip_suffix(b"\n").unwrap_or(&text).to_vec();
        Some(PathBuf::from(std::ffi::OsString::from_vec(text)))
    };
    let back = line("gitdir")?;
    let shared = line("commondir")?;
    (canonical(&back)? == canonical(&path.join(".git"))? && canonical(&dir.join(shared))? == canonical(common)?)
        .then_some(dir)
}

/// `None` when something could not be read: that is a no too. `git_dir`
/// is the worktree's, as `admin_dir` proved it. Objects are read through
/// `objects`, this repository opened once by the caller:
/// the worktree shares its object database (`admin_dir` proved it), and
/// opening the worktree as a repository of its own would load every pack
/// index again.
fn check(objects: &gix::Repository, path: &Path, git_dir: &Path, at: ObjectId, look: Look) -> Option<bool> {
    if head_in(git_dir)? != at {
        return Some(false);
    }
    for entry in std::fs::read_dir(git_dir).ok()? {
        let name = entry.ok()?.file_name();
        if !QUIET_GIT_DIR.iter().any(|quiet| name.as_bytes() == quiet.as_bytes()) {
            return Some(false);
        }
    }
    let index = read_index(git_dir, objects.object_hash())?;
    let tree = objects.find_commit(at).ok()?.tree_id().ok()?;
    let expected = objects.index_from_tree(&tree).ok()?;
    if !same_entries(&index, &expected) || !cache_tree_holds(objects, &index, at)? {
        return Some(false);
    }
    Some((look == Look::Paths || files_unchanged(objects, path, &index)) && nothing_else_on_disk(path, &index))
}

/// The index of the worktree git directory `dir`, read once: a regular
/// file of at most `INDEX_MAX` bytes, opened without following a symlink,
/// its cache-tree scanned before anything parses it, its checksum (unless
/// git wrote none, `index.skipHash`) verified. A split index is returned
/// as it is, its link to the shared index unresolved: no check accepts one.
fn read_index(dir: &Path, hash: gix::hash::Kind) -> Option<gix::index::State> {
    let mut file = crate::runtime::crew::open_regular(&dir.join("index"))?;
    let meta = file.metadata().ok()?;
    if meta.len() > INDEX_MAX {
        return None;
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    (&mut file).take(INDEX_MAX + 1).read_to_end(&mut data).ok()?;
    if data.len() as u64 > INDEX_MAX {
        return None;
    }
    let scanned = scan_index(&data)?;
    let (body, trailer) = data.split_at_checked(data.len().checked_sub(hash.len_in_bytes())?)?;
    if trailer.iter().any(|b| *b != 0) {
        let mut hasher = gix::hash::hasher(hash);
        hasher.update(body);
        if hasher.try_finalize().ok()?.as_slice() != trailer {
            return None;
        }
    }
    // gix reads the entries and the extensions a check needs, nothing else.
    let mut given = data[..scanned.extensions].to_vec();
    for range in &scanned.kept {
        given.extend_from_slice(&data[range.clone()]);
    }
    given.extend_from_slice(trailer);
    // The index's own modification time: what tells a racily clean entry.
    let written = filetime::FileTime::from_last_modification_time(&meta);
    let options = gix::index::decode::Options { thread_limit: Some(1), ..Default::default() };
    let (state, _) = gix::index::State::from_bytes(&given, written, hash, options).ok()?;
    // A cache-tree gix could not read would pass for none at all.
    let has_tree = scanned.kept.iter().any(|r| &data[r.start..r.start + 4] == b"TREE");
    (has_tree == state.tree().is_some()).then_some(state)
}

/// The git directory a worktree's `.git` file names, exactly `gitdir:
/// <path>` and a newline, as git writes it (git and a looser reading could
/// disagree on where it points). Not yet known to be this worktree's: see
/// `admin_dir`.
fn git_dir_of(path: &Path) -> Option<PathBuf> {
    let text = small_file(&path.join(".git"), 4096)?;
    let dir = text.strip_suffix(b"\n").unwrap_or(&text).strip_prefix(b"gitdir: ")?;
    if dir.is_empty() || dir.trim().len() != dir.len() || dir.contains(&b'\n') {
        return None;
    }
    Some(path.join(std::ffi::OsStr::from_bytes(dir)))
}

/// At most `max` bytes of a regular file, opened without following a
/// symlink; `None` for anything else.
pub fn small_file(path: &Path, max: u64) -> Option<Vec<u8>> {
    let out = crate::runtime::crew::read_crew_file(path, max + 1)?;
    (out.len() as u64 <= max).then_some(out)
}

fn root_join(root: &Path, path: &BStr) -> PathBuf {
    root.join(std::ffi::OsStr::from_bytes(path))
}

/// The index holds the tree's entries, each a plain file, symlink or
/// submodule at stage 0 with no flag that makes git look away from its
/// file, and no record to undo a resolution with.
fn same_entries(index: &gix::index::State, tree: &gix::index::State) -> bool {
    let hiding = Flags::ASSUME_VALID | Flags::SKIP_WORKTREE | Flags::INTENT_TO_ADD;
    let kinds = [Mode::FILE, Mode::FILE_EXECUTABLE, Mode::SYMLINK, Mode::COMMIT];
    index.link().is_none()
        && index.resolve_undo().is_none()
        && index.entries().len() == tree.entries().len()
        && index.entries().iter().zip(tree.entries()).all(|(ours, theirs)| {
            ours.path(index) == theirs.path(tree)
                && ours.id == theirs.id
                && ours.mode == theirs.mode
                && kinds.contains(&ours.mode)
                && ours.stage_raw() == 0
                && !ours.flags.intersects(hiding)
        })
}

/// Every valid node of the index's cache-tree names the tree the commit
/// has at that path: git commits a valid node's tree as it is, without
/// looking at the entries under it.
fn cache_tree_holds(repo: &gix::Repository, index: &gix::index::State, at: ObjectId) -> Option<bool> {
    let Some(root) = index.tree() else { return Some(true) };
    let tree = repo.find_commit(at).ok()?.tree_id().ok()?.detach();
    // How many entries each directory holds, all levels down: a valid node
    // names its count too, and git trusts it to skip that many entries.
    let mut counts: std::collections::HashMap<Vec<u8>, u32> = std::collections::HashMap::new();
    for entry in index.entries() {
        let path = entry.path(index);
        *counts.entry(Vec::new()).or_default() += 1;
        for (at, _) in path.iter().enumerate().filter(|(_, b)| **b == b'/') {
            *counts.entry(path[..at].to_vec()).or_default() += 1;
        }
    }
    let mut pending = vec![(root, Vec::new(), Some(tree))];
    while let Some((node, path, actual)) = pending.pop() {
        if let Some(count) = node.num_entries
            && (Some(node.id) != actual || counts.get(&path).copied().unwrap_or(0) != count)
        {
            return Some(false);
        }
        let entries = match actual {
            Some(id) => repo
                .find_tree(id)
                .ok()?
                .decode()
                .ok()?
                .entries
                .iter()
                .map(|e| (e.filename.to_vec(), e.mode, e.oid.to_owned()))
                .collect(),
            None => Vec::new(),
        };
        for child in &node.children {
            let sub = entries
                .iter()
                .find(|(name, mode, _)| name.as_slice() == child.name.as_slice() && mode.is_tree())
                .map(|(.., id)| *id);
            let mut below = path.clone();
            if !below.is_empty() {
                below.push(b'/');
            }
            below.extend_from_slice(&child.name);
            pending.push((child, below, sub));
        }
    }
    Some(true)
}

/// How deep an index's cache-tree may nest: deeper than any path git
/// checks out. gix and git read it recursively, and a crew can write one
/// nested a million deep, which overflows their stacks (a crash of the
/// whole runner).
const CACHE_TREE_DEPTH: usize = 2048;

/// Whether git and gix may read the index, and read it alike (see
/// `scan_index`). An index this cannot read is not.
fn index_sane(index: &[u8]) -> bool {
    scan_index(index).is_some()
}

/// Where an index's extensions start, and those gix is given (see
/// `read_index`).
struct Scanned {
    extensions: usize,
    kept: Vec<std::ops::Range<usize>>,
}

/// An index read here first, without recursion, before gix or git reads
/// it: every entry's mode is one git writes (git stops at any other, and
/// gix would read some as a plain file); its cache-tree (TREE), if any,
/// nests no deeper than `CACHE_TREE_DEPTH` and holds only counts git and
/// gix both read as written; an offset table (IEOT), if any, names the
/// entries this walk found; no sparse-index marker (`sdir`) and no other
/// extension git would refuse (an unknown one whose name does not start
/// with A to Z). Kept for gix: the cache-tree,
/// the resolve-undo records (REUC) and a split index's link (which no
/// check accepts); the rest (the untracked cache, fsmonitor state, offset
/// tables) no check needs, and gix reads the untracked cache recursively.
fn scan_index(data: &[u8]) -> Option<Scanned> {
    let u32_at = |at: usize| be_u32(data, at);
    if data.get(..4)? != b"DIRC" {
        return None;
    }
    let version = u32_at(4)?;
    if !(2..=4).contains(&version) {
        return None;
    }
    let count = u32_at(8)?;
    const HASH: usize = 20;
    let end = data.len().checked_sub(HASH)?;
    let mut at = 12usize;
    let mut previous_len = 0usize;
    // Where each entry starts: an offset table (IEOT) must name these.
    let mut starts = Vec::with_capacity(usize::try_from(count).ok()?.min(1 << 20));
    // Each entry's length as git reads it: the name's length from its
    // flags (its NUL only when the flags say 0xFFF), so that this walk and
    // git's (and gix's) find the extensions at the same place.
    for _ in 0..count {
        starts.push(at);
        if ![0o100644, 0o100755, 0o120000, 0o160000].contains(&u32_at(at + 24)?) {
            return None;
        }
        let flags = u16::from_be_bytes(data.get(at + 40 + HASH..at + 42 + HASH)?.try_into().ok()?);
        let mut name = at + 42 + HASH;
        if version >= 3 && flags & 0x4000 != 0 {
            name += 2;
        }
        let mut copied = 0;
        if version >= 4 {
            // How many bytes of the previous name to drop, as git's varint.
            let mut strip = 0usize;
            loop {
                let byte = *data.get(name)?;
                name += 1;
                strip = strip.checked_mul(128)?.checked_add(usize::from(byte & 0x7f))?;
                if byte & 0x80 == 0 {
                    break;
                }
                strip = strip.checked_add(1)?;
            }
            copied = previous_len.checked_sub(strip)?;
        }
        let len = match usize::from(flags & 0x0fff) {
            0x0fff => copied + data.get(name..end)?.iter().position(|b| *b == 0)?,
            len => len,
        };
        let suffix = len.checked_sub(copied)?;
        if *data.get(name + suffix)? != 0 {
            return None;
        }
        at = if version >= 4 { name + suffix + 1 } else { at + (name + len - at + 8) / 8 * 8 };
        previous_len = len;
    }
    // Every extension, to the checksum exactly; one cache-tree at most (git
    // and gix keep the last), and an end-of-entries marker, if any, that
    // agrees with this walk on where the extensions start.
    let extensions = at;
    let mut trees = 0;
    let mut kept = Vec::new();
    while at < end {
        let size = u32_at(at + 4)? as usize;
        let next = (at + 8).checked_add(size)?;
        let whole = at..next;
        let body = data.get(at + 8..next)?;
        match data.get(at..at + 4)? {
            b"TREE" => {
                trees += 1;
                tree_depth_within(body, CACHE_TREE_DEPTH)?;
                kept.push(whole);
            }
            b"REUC" | b"link" => kept.push(whole),
            b"EOIE" if be_u32(body, 0)? as usize != extensions => return None,
            // git (with index.threads) reads entries where the table says.
            b"IEOT" => offsets_agree(body, &starts)?,
            b"EOIE" | b"UNTR" | b"FSMN" => {}
            // git ignores an extension it does not know whose name starts
            // with A to Z, and refuses any other; a sparse index is no.
            name if name[0].is_ascii_uppercase() => {}
            _ => return None,
        }
        at = next;
    }
    (at == end && trees <= 1).then_some(Scanned { extensions, kept })
}

/// An index entry offset table (IEOT) whose every block starts where the
/// walk found that entry, and which covers the entries exactly: git reads
/// the blocks from those offsets, and they must be the entries checked.
fn offsets_agree(body: &[u8], starts: &[usize]) -> Option<()> {
    if be_u32(body, 0)? != 1 || !(body.len() - 4).is_multiple_of(8) {
        return None;
    }
    let mut next = 0usize;
    for block in body[4..].chunks_exact(8) {
        let (offset, entries) = (be_u32(block, 0)? as usize, be_u32(block, 4)? as usize);
        if starts.get(next) != Some(&offset) {
            return None;
        }
        next = next.checked_add(entries)?;
    }
    (next == starts.len()).then_some(())
}

/// The big-endian 32-bit number at `at` in `data`, if it holds one.
fn be_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// A cache-tree count as git writes it, and as git (an `int`) and gix (an
/// `i32`) both read it: decimal digits, or -1 where `negative` may be.
fn cache_tree_count(text: &str, negative: bool) -> Option<i64> {
    if negative && text == "-1" {
        return Some(-1);
    }
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().filter(|n| *n <= i64::from(i32::MAX))
}

/// The cache-tree's nodes in order (name NUL, entry count, space, subtree
/// count, newline, an id when the entry count is not -1), each followed by
/// its subtrees: walked with a stack of the subtrees still to come.
fn tree_depth_within(body: &[u8], max: usize) -> Option<()> {
    const HASH: usize = 20;
    let mut at = 0;
    let mut left: Vec<u64> = Vec::new();
    loop {
        let nul = at + body.get(at..)?.iter().position(|b| *b == 0)?;
        let line_end = nul + body.get(nul..)?.iter().position(|b| *b == b'\n')?;
        let line = std::str::from_utf8(body.get(nul + 1..line_end)?).ok()?;
        let (entries, subtrees) = line.split_once(' ')?;
        let entries = cache_tree_count(entries, true)?;
        let subtrees = cache_tree_count(subtrees, false)? as u64;
        at = line_end + 1 + if entries >= 0 { HASH } else { 0 };
        left.push(subtrees);
        if left.len() > max {
            return None;
        }
        while left.last() == Some(&0) {
            left.pop();
        }
        match left.last_mut() {
            None => return (at == body.len()).then_some(()),
            Some(n) => *n -= 1,
        }
    }
}

/// A regular file as git's checkout makes one: one link, and the
/// permissions of a new file (0666 or, executable, 0777, less the umask).
fn plain(meta: &std::fs::Metadata) -> bool {
    let base = if meta.mode() & 0o100 != 0 { 0o777 } else { 0o666 };
    meta.nlink() == 1 && meta.mode() & 0o7777 == base & !umask()
}

/// This process's umask, which git's checkout (a child) inherits: from
/// /proc (reading it with umask(2) would change it for every thread).
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
                u32::from_str_radix(line.trim(), 8).ok()
            })
            .unwrap_or(0o022)
    })
}

/// Every entry's file is there, of its kind, and unchanged by its full
/// stat since the index recorded it; its content is read only when git
/// would read it too: the stat could not tell (racily clean), or git
/// marked the entry so (a size of 0).
fn files_unchanged(repo: &gix::Repository, root: &Path, index: &gix::index::State) -> bool {
    // All of it, and the nanoseconds too: a stricter look only costs a reset.
    let strict = stat::Options { trust_ctime: true, check_stat: true, use_nsec: true, use_stdev: false };
    // Racily clean as git tells it, by the second (git is built without
    // USE_NSEC): a file written in the index's second is read, whatever
    // its nanoseconds say.
    let racy = stat::Options { use_nsec: false, ..strict };
    let written = index.timestamp();
    index.entries().iter().all(|entry| {
        let file = root_join(root, entry.path(index));
        let Ok(meta) = std::fs::symlink_metadata(&file) else { return false };
        let executable = meta.mode() & 0o100 != 0;
        let kind = match entry.mode {
            Mode::FILE => meta.is_file() && !executable && plain(&meta),
            Mode::FILE_EXECUTABLE => meta.is_file() && executable && plain(&meta),
            Mode::SYMLINK => meta.is_symlink(),
            // Never initialized here: an empty directory, as checkout makes it.
            Mode::COMMIT => return meta.is_dir() && std::fs::read_dir(&file).is_ok_and(|mut d| d.next().is_none()),
            _ => false,
        };
        if !kind {
            return false;
        }
        let now = stat_of(&meta);
        let smudged = entry.stat.size == 0 && now.size != 0;
        let recorded = Stat { size: if smudged { now.size } else { entry.stat.size }, ..entry.stat };
        recorded.matches(&now, strict)
            && (!(smudged || entry.stat.is_racy(written, racy)) || same_content(repo, &file, entry.mode, entry.id))
    })
}

/// What the index records of a file, from its `lstat`.
fn stat_of(meta: &std::fs::Metadata) -> Stat {
    // Truncated to 32 bits as git records them.
    let time = |secs: i64, nsecs: i64| stat::Time { secs: secs as u32, nsecs: nsecs as u32 };
    Stat {
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        dev: meta.dev() as u32,
        ino: meta.ino() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        size: meta.size() as u32,
    }
}

/// The file's bytes (a symlink's target) hash to `id`: read only as far
/// as the blob's own size, from a regular file opened without following
/// a symlink. A repository whose attributes convert content on checkout
/// fails this, and is reset.
fn same_content(repo: &gix::Repository, file: &Path, mode: Mode, id: ObjectId) -> bool {
    let Ok(size) = repo.find_header(id).map(|h| h.size()) else { return false };
    let mut hasher = gix::hash::hasher(id.kind());
    hasher.update(&gix::objs::encode::loose_header(gix::objs::Kind::Blob, size));
    if mode == Mode::SYMLINK {
        let Ok(target) = std::fs::read_link(file) else { return false };
        let target = target.into_os_string();
        if target.len() as u64 != size {
            return false;
        }
        hasher.update(target.as_bytes());
    } else {
        let Some(mut opened) = crate::runtime::crew::open_regular(file) else { return false };
        if opened.metadata().map(|m| m.len()).ok() != Some(size) {
            return false;
        }
        let mut chunk = vec![0u8; 64 * 1024];
        let mut left = size;
        while left > 0 {
            let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            match opened.read(&mut chunk[..want]) {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    hasher.update(&chunk[..n]);
                    left -= n as u64;
                }
            }
        }
    }
    hasher.try_finalize().is_ok_and(|hash| hash == id)
}

/// Nothing on disk but the index's files and the directories that hold
/// them (the worktree's `.git` file aside), each directory with a new
/// directory's permissions: no untracked or ignored file, no empty
/// directory, no nested repository. A submodule's directory is empty.
fn nothing_else_on_disk(root: &Path, index: &gix::index::State) -> bool {
    let files: HashSet<&BStr> =
        index.entries().iter().filter(|e| e.mode != Mode::COMMIT).map(|e| e.path(index)).collect();
    let submodules: HashSet<&BStr> =
        index.entries().iter().filter(|e| e.mode == Mode::COMMIT).map(|e| e.path(index)).collect();
    let dirs: HashSet<&[u8]> = index
        .entries()
        .iter()
        .map(|e| e.path(index))
        .flat_map(|path| path.iter().enumerate().filter(|(_, b)| **b == b'/').map(|(at, _)| &path.as_bytes()[..at]))
        .collect();
    // Directories inherit a set-group-id bit from the worktree's parent.
    let inherited = root.parent().and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.mode() & 0o2000);
    let dir_mode = (0o777 & !umask()) | inherited;
    let mut pending = vec![(root.to_path_buf(), Vec::<u8>::new())];
    while let Some((dir, rel)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { return false };
        for entry in entries {
            let Ok(entry) = entry else { return false };
            let Ok(kind) = entry.file_type() else { return false };
            let name = entry.file_name();
            if rel.is_empty() && name.as_bytes() == b".git" {
                if kind.is_file() {
                    continue;
                }
                return false;
            }
            let mut path = rel.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name.as_bytes());
            if kind.is_dir() && submodules.contains(path.as_bstr()) {
                // Never initialized here: it stays empty.
                if std::fs::read_dir(entry.path()).map_or(true, |mut d| d.next().is_some()) {
                    return false;
                }
                continue;
            }
            if kind.is_dir() {
                let mode = entry.metadata().map_or(0, |m| m.mode() & 0o7777);
                if !dirs.contains(path.as_slice()) || mode != dir_mode {
                    return false;
                }
                pending.push((entry.path(), path));
            } else if !files.contains(path.as_bstr()) {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    #[test]
    fn a_cache_tree_nested_past_any_path_is_refused_before_anything_parses_it() {
        let nested = |depth: usize| {
            let mut body = b"\0-1 1\n".to_vec();
            for _ in 1..depth {
                body.extend_from_slice(b"a\0-1 1\n");
            }
            body.extend_from_slice(b"a\0-1 0\n");
            body
        };
        assert!(tree_depth_within(&nested(10), CACHE_TREE_DEPTH).is_some());
        assert!(tree_depth_within(&nested(100_000), CACHE_TREE_DEPTH).is_none());
        assert!(tree_depth_within(b"\0-1 2\na\0-1 0\n", CACHE_TREE_DEPTH).is_none(), "a child missing");
        assert!(tree_depth_within(b"\0-1 0\nextra", CACHE_TREE_DEPTH).is_none(), "bytes after the root");
        // Real indexes, version 2 and 4, with a cache-tree: read through.
        let (_tmp, wt, _) = worktree();
        git(&wt, &["write-tree"]);
        let index = wt.join(git(&wt, &["rev-parse", "--git-path", "index"]).trim());
        assert!(index_sane(&std::fs::read(&index).unwrap()));
        git(&wt, &["update-index", "--index-version", "4"]);
        git(&wt, &["write-tree"]);
        assert!(index_sane(&std::fs::read(&index).unwrap()));
        // The same index with a deep one in place of its own: refused, and
        // the worktree made anew rather than read.
        let data = std::fs::read(&index).unwrap();
        let tree = data.windows(4).position(|w| w == b"TREE").unwrap();
        let size = u32::from_be_bytes(data[tree + 4..tree + 8].try_into().unwrap()) as usize;
        let deep = nested(100_000);
        let mut forged = data[..tree + 4].to_vec();
        forged.extend_from_slice(&(deep.len() as u32).to_be_bytes());
        forged.extend_from_slice(&deep);
        forged.extend_from_slice(&data[tree + 8 + size..]);
        assert!(!index_sane(&forged));
        // A second cache-tree after the first: git and gix keep the last.
        let mut second = data[..data.len() - 20].to_vec();
        second.extend_from_slice(b"TREE");
        second.extend_from_slice(&(deep.len() as u32).to_be_bytes());
        second.extend_from_slice(&deep);
        second.extend_from_slice(&data[data.len() - 20..]);
        assert!(!index_sane(&second));
        // An entry whose name is not where its flags say it ends.
        let mut misnamed = data.clone();
        let flags = 12 + 40 + 20;
        misnamed[flags + 1] += 1;
        assert!(!index_sane(&misnamed));
        std::fs::write(&index, &forged).unwrap();
        assert!(!openable(&wt));
        // Indexes git writes with its other features: read through.
        for setup in [
            &["update-index", "--index-version", "3"][..],
            &["add", "-N", "new.txt"],
            &[
                "-c",
                "index.recordEndOfIndexEntries=true",
                "-c",
                "index.recordOffsetTable=true",
                "update-index",
                "--refresh",
            ],
            &["update-index", "--split-index"],
            &["-c", "core.untrackedCache=true", "update-index", "--untracked-cache"],
        ] {
            let _ = std::fs::remove_file(&index);
            git(&wt, &["reset", "-q"]);
            git(&wt, &["write-tree"]);
            std::fs::write(wt.join("new.txt"), "x").unwrap();
            git(&wt, setup);
            git(&wt, &["status", "--porcelain"]);
            assert!(index_sane(&std::fs::read(&index).unwrap()), "{setup:?}");
            let _ = std::fs::remove_file(wt.join("new.txt"));
        }
    }

    #[test]
    fn a_worktree_with_a_submodule_is_reset_by_git_not_made_anew() {
        let (tmp, wt, _) = worktree();
        let main = tmp.path().join("main");
        let head = git(&main, &["rev-parse", "HEAD"]);
        git(&main, &["update-index", "--add", "--cacheinfo", &format!("160000,{},sub", head.trim())]);
        git(&main, &["commit", "-q", "-m", "a submodule"]);
        let at: ObjectId = git(&main, &["rev-parse", "HEAD"]).trim().parse().unwrap();
        assert_eq!(prepare_again(&main, at), wt);
        assert!(holds_exactly(&objects(&wt), &wt, at), "an empty submodule directory is what checkout leaves");
        let made = std::fs::metadata(&wt).unwrap().ino();
        std::fs::write(wt.join("left.txt"), "x").unwrap();
        assert!(!holds_exactly(&objects(&wt), &wt, at));
        assert_eq!(prepare_again(&main, at), wt);
        assert!(holds_exactly(&objects(&wt), &wt, at));
        assert!(!wt.join("left.txt").exists());
        assert_eq!(std::fs::metadata(&wt).unwrap().ino(), made, "the worktree was made anew");
        // A file left inside the submodule's directory: git's reset does
        // not look there, so the worktree is made anew.
        std::fs::write(wt.join("sub/secret.txt"), "x").unwrap();
        assert!(!holds_exactly(&objects(&wt), &wt, at));
        assert_eq!(prepare_again(&main, at), wt);
        assert!(holds_exactly(&objects(&wt), &wt, at));
        assert!(!wt.join("sub/secret.txt").exists());
    }

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "core.hooksPath=/dev/null"])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }

    fn git_stdin(dir: &Path, args: &[&str], input: &str) -> String {
        use std::io::Write;
        let mut child = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// A repository with a few kinds of entries, and the crew worktree of a
    /// voyage at its commit, made by `worktree::prepare`.
    fn worktree() -> (tempfile::TempDir, PathBuf, ObjectId) {
        let tmp = tempfile::tempdir().unwrap();
        let main = tmp.path().join("main");
        std::fs::create_dir_all(main.join("dir/sub")).unwrap();
        git(&main, &["init", "-q"]);
        std::fs::write(main.join("a.txt"), "tracked\n").unwrap();
        std::fs::write(main.join("dir/sub/b.txt"), "deep\n").unwrap();
        std::fs::write(main.join("run.sh"), "#!/bin/sh\n").unwrap();
        chmod(&main.join("run.sh"), 0o755);
        std::os::unix::fs::symlink("a.txt", main.join("link")).unwrap();
        std::fs::write(main.join(".gitignore"), "target/\n").unwrap();
        git(&main, &["add", "-A"]);
        git(&main, &["commit", "-q", "-m", "first"]);
        let at: ObjectId = git(&main, &["rev-parse", "HEAD"]).trim().parse().unwrap();
        let wt = prepare_again(&main, at);
        (tmp, wt, at)
    }

    /// The worktree as the next run gets it.
    fn prepare_again(main: &Path, at: ObjectId) -> PathBuf {
        super::super::prepare(&gix::open(main).unwrap(), "VOY-0001".parse().unwrap(), at).unwrap()
    }

    /// `holds_exactly_in`, its git directory proven first.
    fn holds_exactly(objects: &gix::Repository, path: &Path, at: ObjectId) -> bool {
        admin_dir(path).is_some_and(|dir| holds_exactly_in(objects, path, &dir, at))
    }

    /// The repository a worktree made by `prepare` belongs to, opened as
    /// the dispatcher opens it: never through the worktree, which a crew
    /// may have broken.
    fn objects(wt: &Path) -> gix::Repository {
        gix::open(wt.ancestors().nth(3).unwrap()).unwrap()
    }

    #[test]
    fn a_fresh_worktree_holds_its_commit_and_only_that() {
        let (_tmp, wt, at) = worktree();
        assert!(holds_exactly(&objects(&wt), &wt, at));
        let other = ObjectId::from_hex(b"1111111111111111111111111111111111111111").unwrap();
        assert!(!holds_exactly(&objects(&wt), &wt, other), "another commit");
        assert!(!holds_exactly(&objects(&wt), &wt.join("dir"), at), "a directory inside it");
    }

    /// What a crew does to its worktree before it ends.
    type Leave = Box<dyn Fn(&Path)>;

    /// Everything a crew can leave that the next role must not see: each
    /// must make the check answer no, and the next run's worktree must
    /// hold the commit exactly again.
    #[test]
    fn whatever_a_crew_leaves_is_seen_and_gone_for_the_next_run() {
        let (tmp, wt, at) = worktree();
        let main = tmp.path().join("main");
        let git_dir = main.join(".git/worktrees/VOY-0001");
        // Another voyage's worktree, which nothing done to this one may touch.
        let other = super::super::prepare(&gix::open(&main).unwrap(), "VOY-0002".parse().unwrap(), at).unwrap();
        let other_admin = admin_dir(&other).unwrap();
        // A directory outside worktrees/ that a crew dresses as a git directory.
        let decoy = tmp.path().join("decoy");
        let same_size_edit = |wt: &Path| {
            // Same size, and the old mtime put back: only the ctime and the content tell.
            let before = std::fs::metadata(wt.join("a.txt")).unwrap().modified().unwrap();
            std::fs::write(wt.join("a.txt"), "planted\n").unwrap();
            std::fs::File::options().write(true).open(wt.join("a.txt")).unwrap().set_modified(before).unwrap();
        };
        let cases: Vec<(&str, Leave)> = vec![
            ("an edit", Box::new(|wt| std::fs::write(wt.join("a.txt"), "edited\n").unwrap())),
            ("a same-size edit with its mtime put back", Box::new(same_size_edit)),
            ("a deleted file", Box::new(|wt| std::fs::remove_file(wt.join("dir/sub/b.txt")).unwrap())),
            ("an untracked file", Box::new(|wt| std::fs::write(wt.join("new.txt"), "x").unwrap())),
            (
                "an ignored file",
                Box::new(|wt| {
                    std::fs::create_dir(wt.join("target")).unwrap();
                    std::fs::write(wt.join("target/out"), "x").unwrap();
                }),
            ),
            ("an empty directory", Box::new(|wt| std::fs::create_dir_all(wt.join("dir/empty")).unwrap())),
            (
                "a nested repository",
                Box::new(|wt| {
                    std::fs::create_dir_all(wt.join("new/.git")).unwrap();
                    std::fs::write(wt.join("new/.git/HEAD"), "x").unwrap();
                }),
            ),
            // git itself never touches a path named .git: its reset leaves this one.
            (
                "a .git in a tracked directory",
                Box::new(|wt| {
                    std::fs::create_dir_all(wt.join("dir/.git")).unwrap();
                    std::fs::write(wt.join("dir/.git/HEAD"), "x").unwrap();
                }),
            ),
            (
                "an executable bit",
                Box::new(|wt| {
                    chmod(&wt.join("a.txt"), 0o755);
                }),
            ),
            (
                "a lost executable bit",
                Box::new(|wt| {
                    chmod(&wt.join("run.sh"), 0o644);
                }),
            ),
            (
                "a symlink retargeted",
                Box::new(|wt| {
                    std::fs::remove_file(wt.join("link")).unwrap();
                    std::os::unix::fs::symlink("run.sh", wt.join("link")).unwrap();
                }),
            ),
            (
                "a file become a symlink",
                Box::new(|wt| {
                    std::fs::remove_file(wt.join("a.txt")).unwrap();
                    std::os::unix::fs::symlink("/etc/hostname", wt.join("a.txt")).unwrap();
                }),
            ),
            (
                "a directory become a symlink",
                Box::new(|wt| {
                    std::fs::rename(wt.join("dir"), wt.join("../elsewhere")).unwrap();
                    std::os::unix::fs::symlink("../elsewhere", wt.join("dir")).unwrap();
                }),
            ),
            (
                "an assume-unchanged edit",
                Box::new(|wt| {
                    git(wt, &["update-index", "--assume-unchanged", "a.txt"]);
                    std::fs::write(wt.join("a.txt"), "hidden\n").unwrap();
                }),
            ),
            (
                "a skip-worktree entry",
                Box::new(|wt| {
                    git(wt, &["update-index", "--skip-worktree", "a.txt"]);
                }),
            ),
            (
                "an intent to add",
                Box::new(|wt| {
                    std::fs::write(wt.join("new.txt"), "x").unwrap();
                    git(wt, &["add", "-N", "new.txt"]);
                    std::fs::remove_file(wt.join("new.txt")).unwrap();
                }),
            ),
            (
                "a staged change undone on disk",
                Box::new(|wt| {
                    std::fs::write(wt.join("a.txt"), "staged\n").unwrap();
                    git(wt, &["add", "a.txt"]);
                    std::fs::write(wt.join("a.txt"), "tracked\n").unwrap();
                }),
            ),
            (
                "a commit",
                Box::new(|wt| {
                    std::fs::write(wt.join("a.txt"), "committed\n").unwrap();
                    git(wt, &["commit", "-qam", "c"]);
                }),
            ),
            (
                "a branch checked out",
                Box::new(|wt| {
                    git(wt, &["checkout", "-q", "-b", "crew-branch"]);
                }),
            ),
            (
                "a merge left half-done",
                Box::new({
                    let git_dir = git_dir.clone();
                    move |_| std::fs::write(git_dir.join("MERGE_HEAD"), format!("{at}\n")).unwrap()
                }),
            ),
            (
                "per-worktree config",
                Box::new({
                    let git_dir = git_dir.clone();
                    move |_| std::fs::write(git_dir.join("config.worktree"), "[core]\n").unwrap()
                }),
            ),
            (
                "a hard link to a file outside",
                Box::new(|wt| {
                    let outside = wt.join("../outside.txt");
                    std::fs::write(&outside, "tracked\n").unwrap();
                    std::fs::remove_file(wt.join("a.txt")).unwrap();
                    std::fs::hard_link(&outside, wt.join("a.txt")).unwrap();
                }),
            ),
            (
                "a hard link git status has since recorded",
                Box::new(|wt| {
                    let outside = wt.join("../outside2.txt");
                    std::fs::write(&outside, "tracked\n").unwrap();
                    std::fs::remove_file(wt.join("a.txt")).unwrap();
                    std::fs::hard_link(&outside, wt.join("a.txt")).unwrap();
                    git(wt, &["update-index", "--refresh"]);
                }),
            ),
            (
                "permissions widened and recorded",
                Box::new(|wt| {
                    chmod(&wt.join("a.txt"), 0o666);
                    git(wt, &["update-index", "--refresh"]);
                }),
            ),
            (
                "a set-uid bit",
                Box::new(|wt| {
                    chmod(&wt.join("run.sh"), 0o4755);
                    git(wt, &["update-index", "--refresh"]);
                }),
            ),
            (
                "a resolution's undo record",
                Box::new(|wt| {
                    // Stages 1-3 for a.txt, then resolved to the commit's own content.
                    let blob = git(wt, &["rev-parse", ":a.txt"]);
                    let secret = git_stdin(wt, &["hash-object", "-w", "--stdin"], "side-secret\n");
                    let stages = format!(
                        "0 {zero}\ta.txt\n100644 {blob} 1\ta.txt\n100644 {blob} 2\ta.txt\n100644 {secret} 3\ta.txt\n",
                        zero = "0".repeat(40),
                        blob = blob.trim(),
                        secret = secret.trim()
                    );
                    git_stdin(wt, &["update-index", "--index-info"], &stages);
                    git(wt, &["add", "a.txt"]);
                    assert!(!git(wt, &["ls-files", "--resolve-undo"]).is_empty(), "no resolve-undo record was made");
                }),
            ),
            (
                "a cache-tree naming another tree",
                Box::new(|wt| {
                    let evil = git_stdin(wt, &["hash-object", "-w", "--stdin"], "EVIL\n");
                    let sub = git_stdin(wt, &["mktree"], &format!("100644 blob {}\tb.txt\n", evil.trim()));
                    let dir = git_stdin(wt, &["mktree"], &format!("040000 tree {}\tsub\n", sub.trim()));
                    git(wt, &["write-tree"]);
                    let repo = gix::open(wt).unwrap();
                    let mut index = repo.open_index().unwrap();
                    let node =
                        index.tree_mut().unwrap().children.iter_mut().find(|c| c.name.as_slice() == b"dir").unwrap();
                    node.id = dir.trim().parse().unwrap();
                    index.write(Default::default()).unwrap();
                }),
            ),
            (
                "HEAD a link to /dev/zero",
                Box::new(|wt| {
                    let head = gix::open(wt).unwrap().git_dir().join("HEAD");
                    std::fs::remove_file(&head).unwrap();
                    std::os::unix::fs::symlink("/dev/zero", &head).unwrap();
                }),
            ),
            (
                "a .git file naming a copy of its git directory",
                Box::new({
                    let git_dir = git_dir.clone();
                    move |wt: &Path| {
                        let copy = PathBuf::from(format!("{} ", git_dir.display()));
                        git(wt, &["worktree", "list"]);
                        Command::new("cp").arg("-r").arg(&git_dir).arg(&copy).status().unwrap();
                        std::fs::write(wt.join(".git"), format!("gitdir: {} \n", git_dir.display())).unwrap();
                    }
                }),
            ),
            (
                "a git directory whose commondir is another repository",
                Box::new({
                    let git_dir = git_dir.clone();
                    move |wt: &Path| {
                        let other = wt.join("../other.git");
                        git(wt, &["init", "-q", "--bare", other.to_str().unwrap()]);
                        std::fs::write(git_dir.join("commondir"), format!("{}\n", other.display())).unwrap();
                    }
                }),
            ),
            (
                "an index that is a FIFO",
                Box::new({
                    let git_dir = git_dir.clone();
                    move |_: &Path| {
                        let index = git_dir.join("index");
                        std::fs::remove_file(&index).unwrap();
                        let c = std::ffi::CString::new(index.as_os_str().as_bytes()).unwrap();
                        // SAFETY: mkfifo on a path we own.
                        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
                    }
                }),
            ),
            (
                "a cache-tree that miscounts its entries",
                Box::new(|wt| {
                    git(wt, &["write-tree"]);
                    let repo = gix::open(wt).unwrap();
                    let mut index = repo.open_index().unwrap();
                    let node =
                        index.tree_mut().unwrap().children.iter_mut().find(|c| c.name.as_slice() == b"dir").unwrap();
                    node.num_entries = Some(3);
                    index.write(Default::default()).unwrap();
                }),
            ),
            (
                "a directory's mode",
                Box::new(|wt| {
                    chmod(&wt.join("dir"), 0o2777);
                }),
            ),
            (
                "a directory made unreadable",
                Box::new(|wt| {
                    chmod(&wt.join("dir/sub"), 0o000);
                }),
            ),
            (
                "per-worktree refs and a fetched head",
                Box::new({
                    let git_dir = git_dir.clone();
                    move |wt: &Path| {
                        git(wt, &["update-ref", "refs/worktree/keep", "HEAD"]);
                        std::fs::write(git_dir.join("FETCH_HEAD"), "a secret\n").unwrap();
                    }
                }),
            ),
            (
                "a .git file naming the repository's own git directory",
                Box::new({
                    let common = main.join(".git");
                    move |wt: &Path| std::fs::write(wt.join(".git"), format!("gitdir: {}\n", common.display())).unwrap()
                }),
            ),
            (
                "a .git file naming a link under worktrees/ to a directory elsewhere",
                Box::new({
                    let (common, decoy) = (main.join(".git"), decoy.clone());
                    move |wt: &Path| {
                        std::fs::create_dir_all(decoy.join("refs/keep")).unwrap();
                        std::fs::write(decoy.join("gitdir"), format!("{}\n", wt.join(".git").display())).unwrap();
                        std::fs::write(decoy.join("commondir"), format!("{}\n", common.display())).unwrap();
                        let link = common.join("worktrees/decoy");
                        std::os::unix::fs::symlink(&decoy, &link).unwrap();
                        std::fs::write(wt.join(".git"), format!("gitdir: {}\n", link.display())).unwrap();
                    }
                }),
            ),
            (
                "its registration's gitdir a link to /dev/zero, its .git file naming another",
                Box::new({
                    let (git_dir, common) = (git_dir.clone(), main.join(".git"));
                    move |wt: &Path| {
                        std::fs::remove_file(git_dir.join("gitdir")).unwrap();
                        std::os::unix::fs::symlink("/dev/zero", git_dir.join("gitdir")).unwrap();
                        std::fs::write(wt.join(".git"), format!("gitdir: {}\n", common.display())).unwrap();
                    }
                }),
            ),
            (
                "a .git file naming another voyage's git directory",
                Box::new({
                    let other = other_admin.clone();
                    move |wt: &Path| std::fs::write(wt.join(".git"), format!("gitdir: {}\n", other.display())).unwrap()
                }),
            ),
        ];
        for (n, (what, leave)) in cases.into_iter().enumerate() {
            assert!(holds_exactly(&objects(&wt), &wt, at), "before {what}");
            leave(&wt);
            assert!(!holds_exactly(&objects(&wt), &wt, at), "{what} went unseen");
            if wt.join("dir").is_symlink() {
                std::fs::remove_file(wt.join("dir")).unwrap();
                std::fs::rename(wt.join("../elsewhere"), wt.join("dir")).unwrap();
            }
            // Every other case through a failed run's discard first.
            if n % 2 == 1 {
                super::super::discard(&objects(&wt), &wt, at).unwrap();
            }
            assert_eq!(prepare_again(&main, at), wt);
            assert!(holds_exactly(&objects(&wt), &wt, at), "{what} is still there for the next run");
            assert_eq!(git(&main, &["rev-parse", "HEAD"]).trim(), at.to_string(), "after {what}");
            assert!(holds_exactly(&objects(&other), &other, at), "another voyage's worktree was touched after {what}");
            assert!(
                !decoy.exists() || decoy.join("refs/keep").exists(),
                "a directory elsewhere was emptied after {what}"
            );
            let git_dir = admin_dir(&wt).unwrap();
            assert!(!git_dir.join("FETCH_HEAD").exists() && !git_dir.join("refs/worktree").exists(), "after {what}");
            assert_eq!(std::fs::metadata(wt.join("dir")).unwrap().mode() & 0o7777, 0o777 & !umask(), "after {what}");
            let a = std::fs::symlink_metadata(wt.join("a.txt")).unwrap();
            assert_eq!((a.nlink(), a.mode() & 0o7777), (1, 0o666 & !umask()), "after {what}");
        }
    }

    #[test]
    fn a_racily_clean_entry_is_judged_by_its_content() {
        let (_tmp, wt, at) = worktree();
        let index = wt.join(git(&wt, &["rev-parse", "--git-path", "index"]).trim());
        let set_mtime = |path: &Path, to: std::time::SystemTime| {
            std::fs::File::options().write(true).open(path).unwrap().set_modified(to).unwrap();
        };
        // The index dated no later than its files: their stat cannot tell.
        let newest = ["a.txt", "dir/sub/b.txt", "run.sh", ".gitignore"]
            .iter()
            .map(|f| std::fs::metadata(wt.join(f)).unwrap().modified().unwrap())
            .max()
            .unwrap();
        set_mtime(&index, newest);
        assert!(holds_exactly(&objects(&wt), &wt, at), "unchanged content is unchanged");
        std::fs::write(wt.join("a.txt"), "planted\n").unwrap();
        set_mtime(&wt.join("a.txt"), newest);
        assert!(!holds_exactly(&objects(&wt), &wt, at), "changed content is changed");
    }

    #[test]
    fn the_index_is_read_whole_and_its_checksum_checked() {
        let (_tmp, wt, at) = worktree();
        let index = wt.join(git(&wt, &["rev-parse", "--git-path", "index"]).trim());
        // Written by git without a checksum (index.skipHash): read as git reads it.
        git(&wt, &["-c", "index.skipHash=true", "update-index", "--index-version", "4"]);
        let data = std::fs::read(&index).unwrap();
        assert!(data[data.len() - 20..].iter().all(|b| *b == 0), "git wrote no checksum");
        assert!(holds_exactly(&objects(&wt), &wt, at), "an index without a checksum");
        // Every entry as it was, only the checksum wrong (git itself does not
        // look, gix does): no, which costs a reset.
        git(&wt, &["update-index", "--index-version", "2"]);
        let mut data = std::fs::read(&index).unwrap();
        assert!(holds_exactly(&objects(&wt), &wt, at));
        let last = data.len() - 1;
        data[last] ^= 1;
        std::fs::write(&index, &data).unwrap();
        assert!(!holds_exactly(&objects(&wt), &wt, at), "an index whose checksum does not match");
        // Cut short, empty, or a link to one that is whole: no.
        std::fs::write(&index, &data[..data.len() / 2]).unwrap();
        assert!(!holds_exactly(&objects(&wt), &wt, at), "a truncated index");
        std::fs::write(&index, b"").unwrap();
        assert!(!holds_exactly(&objects(&wt), &wt, at), "an empty index");
    }

    /// The worktree's index with `edit` made to its bytes (the checksum
    /// made right again).
    fn edit_index(wt: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
        let index = wt.join(git(wt, &["rev-parse", "--git-path", "index"]).trim());
        let mut data = std::fs::read(&index).unwrap();
        data.truncate(data.len() - 20);
        edit(&mut data);
        let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
        hasher.update(&data);
        data.extend_from_slice(hasher.try_finalize().unwrap().as_slice());
        std::fs::write(&index, data).unwrap();
    }

    /// Where the extensions of an index start (entries of version 2).
    fn extensions_at(data: &[u8]) -> usize {
        let count = u32::from_be_bytes(data[8..12].try_into().unwrap());
        let mut at = 12;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes(data[at + 60..at + 62].try_into().unwrap()) & 0xfff);
            at += (62 + len + 8) / 8 * 8;
        }
        at
    }

    #[test]
    fn an_index_git_would_read_otherwise_than_gix_is_not_clean() {
        let (_tmp, wt, at) = worktree();
        let clean = |what: &str| {
            let yes = holds_exactly(&objects(&wt), &wt, at);
            prepare_again(wt.ancestors().nth(4).unwrap(), at);
            (what.to_string(), yes)
        };
        git(&wt, &["write-tree"]);
        assert_eq!(clean("as git wrote it"), ("as git wrote it".into(), true));
        // With an offset table, as git writes one for threads to read by
        // (for an index of a few hundred entries).
        let main = wt.ancestors().nth(4).unwrap().to_path_buf();
        for n in 0..300 {
            std::fs::write(main.join(format!("many-{n}.txt")), format!("{n}\n")).unwrap();
        }
        git(&main, &["add", "-A"]);
        git(&main, &["commit", "-q", "-m", "many"]);
        let many: ObjectId = git(&main, &["rev-parse", "HEAD"]).trim().parse().unwrap();
        prepare_again(&main, many);
        let config = ["-c", "index.threads=4", "-c", "index.recordOffsetTable=true"];
        git(&wt, &[&config[..], &["update-index", "--index-version", "3"]].concat());
        git(&wt, &[&config[..], &["update-index", "--index-version", "2"]].concat());
        let index = std::fs::read(wt.join(git(&wt, &["rev-parse", "--git-path", "index"]).trim())).unwrap();
        assert!(index.windows(4).any(|w| w == b"IEOT"), "git wrote no offset table");
        assert!(holds_exactly(&objects(&wt), &wt, many), "an offset table git wrote");
        prepare_again(&main, at);
        let extension = |name: &[u8], body: &[u8]| {
            let (name, body) = (name.to_vec(), body.to_vec());
            move |data: &mut Vec<u8>| {
                let at = extensions_at(data);
                data.truncate(at);
                data.extend_from_slice(&name);
                data.extend_from_slice(&(body.len() as u32).to_be_bytes());
                data.extend_from_slice(&body);
            }
        };
        // An untracked cache, even one gix cannot read: no check needs it.
        edit_index(&wt, extension(b"UNTR", b"\xff\xff garbage"));
        assert_eq!(clean("untracked cache"), ("untracked cache".into(), true));
        for (what, edit) in [
            // git stops at a mode it does not write; gix reads 0110644 as a file.
            (
                "mode 0110644",
                Box::new(|data: &mut Vec<u8>| data[12 + 24..12 + 28].copy_from_slice(&0o110644u32.to_be_bytes()))
                    as Box<dyn FnOnce(&mut Vec<u8>)>,
            ),
            (
                "mode 0100664",
                Box::new(|data: &mut Vec<u8>| data[12 + 24..12 + 28].copy_from_slice(&0o100664u32.to_be_bytes())),
            ),
            // A count git reads (an int) and gix refuses (an i32), which made
            // gix drop the whole cache-tree while git trusted it.
            ("a count past i32", Box::new(extension(b"TREE", b"\x004294967297 0\n"))),
            ("a signed count", Box::new(extension(b"TREE", b"\x00+1 0\n"))),
            ("a sparse index", Box::new(extension(b"sdir", b""))),
            // git refuses an extension it does not know unless its name starts with A to Z.
            ("an unknown extension git refuses", Box::new(extension(b"abcd", b""))),
            // An offset table naming where no entry starts (git, with
            // index.threads, would read entries from there).
            ("an offset table elsewhere", Box::new(extension(b"IEOT", b"\0\0\0\x01\0\0\0\x0d\0\0\0\x01"))),
        ] {
            edit_index(&wt, edit);
            assert_eq!(clean(what), (what.to_string(), false));
        }
        // One git ignores is ignored here too.
        edit_index(&wt, extension(b"ABCD", b"whatever"));
        assert_eq!(clean("unknown optional"), ("unknown optional".into(), true));
    }
}
