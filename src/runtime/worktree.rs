//! Crew worktrees and the git CLI calls around them. gix has no
//! `worktree add` or index-based commit, so these few operations use git.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use gix::ObjectId;

mod pristine;

use crate::core::VoyageId;
use crate::error::{Error, Result};
use crate::gitcli;

/// git in a crew worktree, with hooks off: the worktree holds voyage content,
/// and a relative `core.hooksPath` would run hooks that content brings.
fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let mut all = vec!["-c", "core.hooksPath=/dev/null"];
    all.extend_from_slice(args);
    gitcli::git(dir, &all)
}
use crate::store::Identity;

/// Where git-mso keeps its machine-local files: worktrees, briefs, logs.
pub fn mso_dir(common_dir: &Path) -> PathBuf {
    common_dir.join("mso")
}

pub fn worktree_path(common_dir: &Path, voyage: VoyageId) -> PathBuf {
    mso_dir(common_dir).join("worktrees").join(voyage.to_string())
}

/// The lock that gives a voyage's worktree to one attempt at a time
/// (`<git dir>/mso/locks/worktree-VOY-NNNN`, flock). The runner holds it
/// for the run and every process of the crew inherits it, so it is free
/// only once the last of them is gone, however the runner ended.
pub fn occupancy_path(common_dir: &Path, voyage: VoyageId) -> PathBuf {
    mso_dir(common_dir).join("locks").join(format!("worktree-{voyage}"))
}

/// Take the voyage's worktree for one attempt; `None` while a crew of an
/// earlier attempt (of this runner or a dead one) still runs there.
pub fn occupy(common_dir: &Path, voyage: VoyageId) -> Result<Option<std::fs::File>> {
    let path = occupancy_path(common_dir, voyage);
    std::fs::create_dir_all(path.parent().expect("lock paths have a parent"))
        .map_err(|e| Error::io("creating the git-mso locks directory", e))?;
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX | libc::LOCK_NB) };
    Ok((rc == 0).then_some(file))
}

/// Whether a crew still runs in the voyage's worktree.
pub fn in_use(common_dir: &Path, voyage: VoyageId) -> bool {
    matches!(occupy(common_dir, voyage), Ok(None))
}

/// A clean worktree of the voyage at `tip` (detached, so a branch checked out
/// elsewhere never blocks it), reused when it already exists: what one
/// role's crew leaves there, or a process of it that lived on, must not
/// reach the next role. A worktree that holds `tip` exactly (checked now,
/// in process, seeing what git status does not: see `pristine`) is used
/// as it is; any other is reset (`checkout --force`, which also ends a
/// merge or cherry-pick a crew left half-done, then `clean -ffdx`), and
/// made anew when even that leaves something.
pub fn prepare(objects: &gix::Repository, voyage: VoyageId, tip: ObjectId) -> Result<PathBuf> {
    let common_dir = objects.common_dir();
    let path = worktree_path(common_dir, voyage);
    if path.join(".git").exists() && pristine::admin_dir(&path).is_none() {
        // A copy of the repository (`cp -a`) brings worktrees whose git
        // directory is the original's: git there would write into the
        // original repository. Start over with one of our own (as for a
        // .git file a crew pointed elsewhere).
        tracing::warn!(path = %path.display(), "worktree is not this repository's own, recreating it");
        remove(common_dir, &path);
    }
    if path.join(".git").exists() {
        match reset_to(objects, &path, tip) {
            Ok(()) => return Ok(path),
            Err(e) => tracing::warn!(path = %path.display(), "{e}; recreating it"),
        }
        remove(common_dir, &path);
    }
    std::fs::create_dir_all(path.parent().expect("worktree paths have a parent"))
        .map_err(|e| Error::io("creating the worktrees directory", e))?;
    let path_str = path.to_str().ok_or_else(|| Error::Input("the repository path is not UTF-8".into()))?;
    // Another dispatcher may be adding a worktree at the same moment, or a
    // crashed one left a registration behind: prune and retry, never prune
    // on the fast path (it would race with a concurrent add).
    let mut last = None;
    for attempt in 0..3 {
        match git(common_dir, &["worktree", "add", "-q", "--detach", path_str, &tip.to_string()]) {
            Ok(_) => {
                pristine::tidy(&path);
                return Ok(path);
            }
            Err(e) => last = Some(e),
        }
        let _ = remove_tree(&path);
        prune(common_dir);
        std::thread::sleep(std::time::Duration::from_millis(20 << attempt));
    }
    Err(last.expect("three attempts were made"))
}

/// `git worktree prune`, once every symbolic link directly under
/// `worktrees/` is gone: git makes none there, and prune would delete the
/// directory a crew's link points to.
fn prune(common_dir: &Path) {
    for entry in std::fs::read_dir(common_dir.join("worktrees")).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let _ = git(common_dir, &["worktree", "prune"]);
}

/// Remove a worktree of this repository with its registration, so that
/// adding it again needs no prune. git does it unless the worktree's own
/// git files are not plain files (git would read a HEAD linked to
/// /dev/zero for ever) or it cannot (a submodule inside): then both
/// directories are deleted here.
fn remove(common_dir: &Path, path: &Path) {
    let path_str = path.to_string_lossy();
    if pristine::openable(path) && git(common_dir, &["worktree", "remove", "--force", "--force", &path_str]).is_ok() {
        return;
    }
    // The registration: the one the .git file names if it is this
    // worktree's, else the one git made for it (wherever the .git file
    // points now) unless that now names another worktree, so that the add
    // needs no prune (git's prune follows what a crew may have planted
    // under worktrees/, and reads its files whole).
    let made = path.file_name().map(|name| common_dir.join("worktrees").join(name));
    let made = made.filter(|admin| {
        let real = |p: &Path| std::fs::canonicalize(p).ok();
        let names = pristine::small_file(&admin.join("gitdir"), 4096).and_then(|back| {
            let back = back.strip_suffix(b"\n").unwrap_or(&back).to_vec();
            real(Path::new(std::ffi::OsStr::from_bytes(&back)))
        });
        std::fs::symlink_metadata(admin).is_ok_and(|m| m.is_dir())
            && names.is_none_or(|names| Some(names) == real(&path.join(".git")))
    });
    for admin in pristine::admin_dir(path).into_iter().chain(made) {
        let _ = remove_tree(&admin);
    }
    let _ = remove_tree(path);
}

/// Delete a directory tree a crew may have made unreadable (`chmod 0` on
/// a directory): every directory is made ours to list and empty first.
/// Symbolic links are removed, never followed.
fn remove_tree(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            pending.push(entry.path());
        }
    }
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// What a crew left in the worktree, as `git status --porcelain` lines.
pub struct Left {
    /// Paths changed or added (untracked, not ignored): what a commit takes.
    pub changes: Vec<String>,
    /// Ignored files and directories (`!! target/`), not descended into.
    pub ignored: Vec<String>,
}

impl Left {
    /// Everything: what a read-only role must not leave behind.
    pub fn all(&self) -> Vec<String> {
        self.changes.iter().chain(&self.ignored).cloned().collect()
    }
}

/// What the worktree holds besides its HEAD commit: nothing when it
/// holds exactly that commit, else what one `git status` lists.
pub fn left(objects: &gix::Repository, path: &Path) -> Result<Left> {
    // Its git directory proven once for the tidying and the check (the
    // crew is gone: nothing changes it meanwhile).
    if let Some(dir) = pristine::admin_dir(path) {
        pristine::tidy_in(&dir);
        // The check wants HEAD detached: a branch checked out is git's to list.
        if pristine::head_in(&dir).is_some_and(|head| pristine::holds_exactly_in(objects, path, &dir, head)) {
            return Ok(Left { changes: Vec::new(), ignored: Vec::new() });
        }
    }
    // git would block on an index that is a FIFO, or read a huge one whole.
    if !pristine::openable(path) {
        return Err(unopenable(path));
    }
    let out = git(path, &["status", "--porcelain", "--untracked-files=all", "--ignored=matching"])?;
    let (ignored, changes) = out.lines().map(str::to_string).partition(|l| l.starts_with("!! "));
    Ok(Left { changes, ignored })
}

/// The commit the worktree's HEAD is at, read in process (no git process).
pub fn head(path: &Path) -> Result<ObjectId> {
    if let Some(id) = pristine::detached_head(path) {
        return Ok(id);
    }
    // A branch checked out: gix resolves it, once the files it reads are
    // known to be files (a crew may have left HEAD a link to /dev/zero).
    if !pristine::openable(path) {
        return Err(unopenable(path));
    }
    let repo = gix::open_opts(path, gix::open::Options::isolated())
        .map_err(|e| Error::git(format!("opening the worktree {}", path.display()), e))?;
    let id = repo.head_id().map_err(|e| Error::git("reading the worktree head", e))?;
    Ok(id.detach())
}

fn unopenable(path: &Path) -> Error {
    Error::Input(format!(
        "the worktree {} has a git directory that is not this repository's, or a HEAD, index or link that \
         is not a plain file of a sane size, or an index git and git-mso would read differently (a crew \
         rewrote it?); the next run gets the worktree made anew",
        path.display()
    ))
}

/// Commit everything left in the worktree, with an explicit identity.
pub fn commit_all(path: &Path, identity: &Identity, message: &str) -> Result<()> {
    git_writing_objects(path, &["add", "-A"])?;
    let name = format!("user.name={}", identity.name);
    let email = format!("user.email={}", identity.email);
    git_writing_objects(path, &["-c", &name, "-c", &email, "commit", "-q", "--no-verify", "-m", message])?;
    Ok(())
}

/// `git` for a command that writes loose objects. Those writes race `git
/// prune-packed`, which every roll-up of packs runs and which removes the
/// empty fan-out directories of `objects`: git makes a missing one again,
/// once, and fails ("unable to create temporary file") when it is removed
/// again in between. Such a failure wrote nothing a ref names, and the
/// command runs again, rather than costing the run an attempt.
fn git_writing_objects(dir: &Path, args: &[&str]) -> Result<String> {
    let mut tries = 1;
    loop {
        match git(dir, args) {
            Err(e) if tries < 5 && e.to_string().contains("unable to create temporary file") => tries += 1,
            done => return done,
        }
    }
}

/// Throw away whatever the crew left: back to `tip`, untracked and ignored
/// files removed; or, when git cannot reset it exactly, the whole worktree
/// (the next run makes a new one).
pub fn discard(objects: &gix::Repository, path: &Path, tip: ObjectId) -> Result<()> {
    if let Err(e) = reset_to(objects, path, tip) {
        tracing::warn!(path = %path.display(), "{e}; removing it");
        remove(objects.common_dir(), path);
        if path.exists() {
            return Err(Error::Input(format!("{e}, and it could not be removed")));
        }
    }
    Ok(())
}

/// The worktree at `tip` exactly: every tracked file as the commit has it,
/// nothing else. A worktree already in that state (the common case: the
/// last crew committed or changed nothing) is left as it is. An error
/// when git's reset leaves something: the worktree must then be made anew.
fn reset_to(objects: &gix::Repository, path: &Path, tip: ObjectId) -> Result<()> {
    if let Some(dir) = pristine::admin_dir(path) {
        pristine::tidy_in(&dir);
        if pristine::holds_exactly_in(objects, path, &dir, tip) {
            return Ok(());
        }
    }
    // git would read a HEAD that links to /dev/zero for as long as it has memory.
    if !pristine::openable(path) {
        return Err(unopenable(path));
    }
    drop_index_that_misleads(objects, path, tip);
    git(path, &["checkout", "-q", "--detach", "--force", &tip.to_string()])?;
    git(path, &["clean", "-ffdxq"])?;
    if !pristine::holds_only(objects, path, tip) {
        return Err(Error::Input(format!(
            "the worktree {} holds what git's reset leaves (a .git directory in a tracked one, \
             or state in its own git directory)",
            path.display()
        )));
    }
    Ok(())
}

/// An index that would make git's reset keep something of a crew (see
/// `pristine::index_misleads`) is removed, so that the checkout rebuilds
/// it from the commit and writes every file again; an ordinary index is
/// kept, and the checkout rewrites only what changed.
fn drop_index_that_misleads(objects: &gix::Repository, path: &Path, tip: ObjectId) {
    if pristine::index_misleads(objects, path, tip)
        && let Some(dir) = pristine::admin_dir(path)
    {
        let _ = std::fs::remove_file(dir.join("index"));
    }
}

/// Remove every crew worktree except those of `keep`; returns how many were removed.
pub fn remove_all(common_dir: &Path, keep: &[VoyageId]) -> Result<usize> {
    let dir = mso_dir(common_dir).join("worktrees");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(0) };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep.iter().any(|v| v.to_string() == name) {
            continue;
        }
        // A crew still running there (a killed runner's, dying) keeps it.
        if name.parse::<VoyageId>().is_ok_and(|v| in_use(common_dir, v)) {
            continue;
        }
        let path = entry.path();
        if git(common_dir, &["worktree", "remove", "--force", &path.to_string_lossy()]).is_err() {
            remove_tree(&path).map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        }
        removed += 1;
    }
    prune(common_dir);
    Ok(removed)
}
