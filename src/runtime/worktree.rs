//! Crew worktrees and the git CLI calls around them. gix has no
//! `worktree add` or index-based commit, so these few operations use git.

use std::path::{Path, PathBuf};

use gix::ObjectId;

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

/// A clean worktree of the voyage at `tip` (detached, so a branch checked out
/// elsewhere never blocks it). Reused when it already exists, with ignored
/// files removed too: what one role's crew leaves there (an agent's local
/// settings, say) must not reach the next role.
pub fn prepare(common_dir: &Path, voyage: VoyageId, tip: ObjectId) -> Result<PathBuf> {
    let path = worktree_path(common_dir, voyage);
    let tip = tip.to_string();
    if path.join(".git").exists() {
        let reset =
            git(&path, &["checkout", "-q", "--detach", "--force", &tip]).and_then(|_| git(&path, &["clean", "-ffdxq"]));
        if reset.is_ok() {
            return Ok(path);
        }
        tracing::warn!(path = %path.display(), "worktree unusable, recreating it");
        let _ = std::fs::remove_dir_all(&path);
    }
    std::fs::create_dir_all(path.parent().expect("worktree paths have a parent"))
        .map_err(|e| Error::io("creating the worktrees directory", e))?;
    let path_str = path.to_str().ok_or_else(|| Error::Input("the repository path is not UTF-8".into()))?;
    // Another dispatcher may be adding a worktree at the same moment, or a
    // crashed one left a registration behind: prune and retry, never prune
    // on the fast path (it would race with a concurrent add).
    let mut last = None;
    for attempt in 0..3 {
        match git(common_dir, &["worktree", "add", "-q", "--detach", path_str, &tip]) {
            Ok(_) => return Ok(path),
            Err(e) => last = Some(e),
        }
        let _ = std::fs::remove_dir_all(&path);
        let _ = git(common_dir, &["worktree", "prune"]);
        std::thread::sleep(std::time::Duration::from_millis(20 << attempt));
    }
    Err(last.expect("three attempts were made"))
}

/// Paths changed or added in the worktree, as `git status --porcelain` lines.
pub fn changes(path: &Path) -> Result<Vec<String>> {
    Ok(git(path, &["status", "--porcelain", "--untracked-files=all"])?.lines().map(str::to_string).collect())
}

/// Like `changes`, with ignored files too: what a read-only role must not leave behind.
pub fn changes_with_ignored(path: &Path) -> Result<Vec<String>> {
    Ok(git(path, &["status", "--porcelain", "--untracked-files=all", "--ignored"])?
        .lines()
        .map(str::to_string)
        .collect())
}

pub fn head(path: &Path) -> Result<ObjectId> {
    let text = git(path, &["rev-parse", "HEAD"])?;
    text.trim().parse().map_err(|_| Error::git("reading the worktree head", text.trim()))
}

/// Commit everything left in the worktree, with an explicit identity.
pub fn commit_all(path: &Path, identity: &Identity, message: &str) -> Result<()> {
    git(path, &["add", "-A"])?;
    let name = format!("user.name={}", identity.name);
    let email = format!("user.email={}", identity.email);
    git(path, &["-c", &name, "-c", &email, "commit", "-q", "--no-verify", "-m", message])?;
    Ok(())
}

/// Throw away whatever the crew left: back to `tip`, untracked and ignored files removed.
pub fn discard(path: &Path, tip: ObjectId) -> Result<()> {
    git(path, &["checkout", "-q", "--detach", "--force", &tip.to_string()])?;
    git(path, &["clean", "-ffdxq"])?;
    Ok(())
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
        let path = entry.path();
        if git(common_dir, &["worktree", "remove", "--force", &path.to_string_lossy()]).is_err() {
            std::fs::remove_dir_all(&path).map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        }
        removed += 1;
    }
    git(common_dir, &["worktree", "prune"])?;
    Ok(removed)
}
