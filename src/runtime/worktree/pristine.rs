//! Whether a crew worktree holds one commit exactly, decided in process.
//!
//! Resetting a worktree takes git two processes and listing what a crew
//! left a third: most of a role's overhead when the crew changed nothing
//! or committed its work itself. This check lets both be skipped, so it
//! must never call a worktree clean that git would not leave so:
//! it sees what `git status` does not (entries marked assume-unchanged or
//! skip-worktree, a merge or cherry-pick left half-done, nested `.git`
//! directories, empty directories), and any doubt answers no, which only
//! costs the full reset. It is taken when the worktree is about to be
//! used, under its occupancy lock, never trusted from an earlier look.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use gix::ObjectId;
use gix::bstr::{BStr, ByteSlice};
use gix::index::entry::{Flags, Mode, Stat, stat};

/// What a linked worktree's own git directory may hold when nothing is in
/// progress there: anything else (`MERGE_HEAD`, `rebase-merge/`, a
/// `config.worktree`, …) means no.
const QUIET_GIT_DIR: &[&str] =
    &["HEAD", "ORIG_HEAD", "FETCH_HEAD", "COMMIT_EDITMSG", "commondir", "gitdir", "index", "logs", "refs"];

/// Whether the worktree at `path` is exactly the commit `at`: its HEAD
/// detached there, nothing in progress, an index that is the commit's tree
/// with no entry that hides changes, and on disk exactly the index's files,
/// each unchanged since the index recorded it.
pub fn holds_exactly(path: &Path, at: ObjectId) -> bool {
    check(path, at, Look::Content).unwrap_or(false)
}

/// `holds_exactly` without looking at the files' content: after git's own
/// reset, whether something it leaves is still there (a `.git` in a
/// tracked directory, state in the worktree's git directory).
pub fn holds_only(path: &Path, at: ObjectId) -> bool {
    check(path, at, Look::Paths).unwrap_or(false)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Look {
    Content,
    Paths,
}

/// `None` when something could not be read: that is a no too.
fn check(path: &Path, at: ObjectId, look: Look) -> Option<bool> {
    let repo = gix::open_opts(path, gix::open::Options::isolated()).ok()?;
    let git_dir = repo.git_dir();
    if std::fs::read(git_dir.join("HEAD")).ok()? != format!("{at}\n").as_bytes() {
        return Some(false);
    }
    for entry in std::fs::read_dir(git_dir).ok()? {
        let name = entry.ok()?.file_name();
        if !QUIET_GIT_DIR.iter().any(|quiet| name.as_bytes() == quiet.as_bytes()) {
            return Some(false);
        }
    }
    let index = repo.open_index().ok()?;
    let tree = repo.find_commit(at).ok()?.tree_id().ok()?;
    let expected = repo.index_from_tree(&tree).ok()?;
    if !same_entries(&index, &expected) {
        return Some(false);
    }
    Some((look == Look::Paths || files_unchanged(path, &index)) && nothing_else_on_disk(path, &index))
}

/// The index holds the tree's entries, each a plain file or symlink at
/// stage 0 with no flag that makes git look away from its file.
fn same_entries(index: &gix::index::File, tree: &gix::index::File) -> bool {
    let hiding = Flags::ASSUME_VALID | Flags::SKIP_WORKTREE | Flags::INTENT_TO_ADD;
    index.link().is_none()
        && index.entries().len() == tree.entries().len()
        && index.entries().iter().zip(tree.entries()).all(|(ours, theirs)| {
            ours.path(index) == theirs.path(tree)
                && ours.id == theirs.id
                && ours.mode == theirs.mode
                && matches!(ours.mode, Mode::FILE | Mode::FILE_EXECUTABLE | Mode::SYMLINK)
                && ours.stage_raw() == 0
                && !ours.flags.intersects(hiding)
        })
}

/// Every entry's file is there, of its kind, and unchanged: by its stat
/// when the index recorded that after the file's last change, else by
/// its content (as git does for a racily clean entry).
fn files_unchanged(root: &Path, index: &gix::index::File) -> bool {
    // All of it, and the nanoseconds too: a stricter look only costs a
    // content check, or a reset.
    let strict = stat::Options { trust_ctime: true, check_stat: true, use_nsec: true, use_stdev: false };
    let written = index.timestamp();
    index.entries().iter().all(|entry| {
        let file = root.join(std::ffi::OsStr::from_bytes(entry.path(index)));
        let Ok(meta) = gix::index::fs::Metadata::from_path_no_follow(&file) else { return false };
        let kind = match entry.mode {
            Mode::FILE => meta.is_file() && !meta.is_executable(),
            Mode::FILE_EXECUTABLE => meta.is_executable(),
            Mode::SYMLINK => meta.is_symlink(),
            _ => false,
        };
        if !kind {
            return false;
        }
        let recorded = Stat::from_fs(&meta).is_ok_and(|now| entry.stat.matches(&now, strict));
        (recorded && !entry.stat.is_racy(written, strict)) || same_content(&file, entry.mode, entry.id)
    })
}

/// The file's bytes (a symlink's target) hash to `id`. A repository whose
/// attributes convert content on checkout fails this, and is reset.
fn same_content(file: &Path, mode: Mode, id: ObjectId) -> bool {
    let bytes = if mode == Mode::SYMLINK {
        std::fs::read_link(file).map(|target| target.into_os_string().as_bytes().to_vec())
    } else {
        std::fs::read(file)
    };
    bytes.is_ok_and(|bytes| {
        gix::objs::compute_hash(id.kind(), gix::objs::Kind::Blob, &bytes).is_ok_and(|hash| hash == id)
    })
}

/// Nothing on disk but the index's files and the directories that hold
/// them (the worktree's `.git` file aside): no untracked or ignored file,
/// no empty directory, no nested repository.
fn nothing_else_on_disk(root: &Path, index: &gix::index::File) -> bool {
    let files: HashSet<&BStr> = index.entries().iter().map(|e| e.path(index)).collect();
    let dirs: HashSet<&[u8]> = files
        .iter()
        .flat_map(|path| path.iter().enumerate().filter(|(_, b)| **b == b'/').map(|(at, _)| &path.as_bytes()[..at]))
        .collect();
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
            if kind.is_dir() {
                if !dirs.contains(path.as_slice()) {
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
        std::fs::set_permissions(main.join("run.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
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
        super::super::prepare(&main.join(".git"), "VOY-0001".parse().unwrap(), at).unwrap()
    }

    #[test]
    fn a_fresh_worktree_holds_its_commit_and_only_that() {
        let (_tmp, wt, at) = worktree();
        assert!(holds_exactly(&wt, at));
        let other = ObjectId::from_hex(b"1111111111111111111111111111111111111111").unwrap();
        assert!(!holds_exactly(&wt, other), "another commit");
        assert!(!holds_exactly(&wt.join("dir"), at), "a directory inside it");
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
                    std::fs::set_permissions(wt.join("a.txt"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
                        .unwrap();
                }),
            ),
            (
                "a lost executable bit",
                Box::new(|wt| {
                    std::fs::set_permissions(wt.join("run.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o644))
                        .unwrap();
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
        ];
        for (what, leave) in cases {
            assert!(holds_exactly(&wt, at), "before {what}");
            leave(&wt);
            assert!(!holds_exactly(&wt, at), "{what} went unseen");
            if wt.join("dir").is_symlink() {
                std::fs::remove_file(wt.join("dir")).unwrap();
                std::fs::rename(wt.join("../elsewhere"), wt.join("dir")).unwrap();
            }
            assert_eq!(prepare_again(&main, at), wt);
            assert!(holds_exactly(&wt, at), "{what} is still there for the next run");
        }
    }

    #[test]
    fn a_racily_clean_entry_is_judged_by_its_content() {
        let (_tmp, wt, at) = worktree();
        // The index written in the same instant as the file: only the content can tell.
        let index = git(&wt, &["rev-parse", "--git-path", "index"]);
        let index = wt.join(index.trim());
        let written = std::fs::metadata(&index).unwrap().modified().unwrap();
        for file in ["a.txt", "dir/sub/b.txt"] {
            std::fs::File::options().write(true).open(wt.join(file)).unwrap().set_modified(written).unwrap();
        }
        git(&wt, &["update-index", "--refresh"]);
        std::fs::File::options().write(true).open(&index).unwrap().set_modified(written).unwrap();
        assert!(holds_exactly(&wt, at), "unchanged content is unchanged");
        std::fs::write(wt.join("a.txt"), "planted\n").unwrap();
        std::fs::File::options().write(true).open(wt.join("a.txt")).unwrap().set_modified(written).unwrap();
        assert!(!holds_exactly(&wt, at), "changed content is changed");
    }
}
