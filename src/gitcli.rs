//! The few things git-mso runs through the git CLI (push, fetch, worktrees,
//! gc) and the child processes it starts. gix is used everywhere else.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Variables that point git at a particular repository. A hook runs with some
/// of them set; a child started from there must pick its repository from its
/// own working directory instead.
pub const REPO_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_QUARANTINE_PATH",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_PREFIX",
];

/// What turns replace refs off for git and for crews' git.
pub const NO_REPLACE_ENV: (&str, &str) = ("GIT_NO_REPLACE_OBJECTS", "1");

/// Clear `REPO_ENV` from a command's environment, and turn replace refs
/// off: a pushed `refs/replace/*` must not change what any git command
/// git-mso starts (or a crew's git) reads from an object id.
pub fn clear_repo_env(cmd: &mut Command) -> &mut Command {
    for var in REPO_ENV {
        cmd.env_remove(var);
    }
    cmd.env(NO_REPLACE_ENV.0, NO_REPLACE_ENV.1);
    cmd
}

/// `git ARGS` in `dir`, stdin closed, with the repository chosen by `dir` alone.
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    clear_repo_env(&mut cmd);
    cmd
}

/// Run git in `dir`; stdout on success, git's message on failure.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = command(dir, args).output().map_err(|e| Error::io("running git", e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::git(format!("git {}", args.join(" ")), stderr.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
