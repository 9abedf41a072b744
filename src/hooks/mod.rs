//! Installable git hooks: short shims (in `hooks/`, embedded here) that call
//! the hidden `git mso hook <name>`. Install chains a hook that was already
//! there, honours `core.hooksPath` and is idempotent; uninstall restores
//! what was there.

mod receive;
mod refs;
mod transaction;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::Store;

pub use receive::{Context, Update, check, limits, parse_updates, post_receive, pre_receive};
pub use transaction::reference_transaction;

/// Marks a hook file as ours.
const MARKER: &str = "# git-mso managed hook";
/// Where a pre-existing hook is kept while ours is installed.
const CHAINED: &str = ".mso-chained";

/// A hook git-mso can install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hook {
    pub name: &'static str,
    shim: &'static str,
    pub server: bool,
}

pub const HOOKS: [Hook; 3] = [
    Hook { name: "pre-receive", shim: include_str!("../../hooks/pre-receive"), server: true },
    Hook { name: "post-receive", shim: include_str!("../../hooks/post-receive"), server: true },
    Hook { name: "reference-transaction", shim: include_str!("../../hooks/reference-transaction"), server: false },
];

/// Where a hook stands in a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookState {
    Missing,
    Ours { chained: bool },
    Foreign,
}

/// The hooks directory: `core.hooksPath` (relative to the work tree, or the
/// git dir when bare) or `<git dir>/hooks`.
pub fn hooks_dir(store: &Store) -> PathBuf {
    let repo = store.repo();
    let configured = repo.config_snapshot().string("core.hooksPath").map(|p| PathBuf::from(p.to_string()));
    match configured {
        Some(path) if path.is_absolute() => path,
        Some(path) => repo.workdir().unwrap_or_else(|| repo.git_dir()).join(path),
        None => repo.common_dir().join("hooks"),
    }
}

pub fn state(dir: &Path, hook: &Hook) -> HookState {
    let path = dir.join(hook.name);
    match std::fs::read_to_string(&path) {
        Err(_) if !path.exists() => HookState::Missing,
        Ok(text) if text.contains(MARKER) => {
            HookState::Ours { chained: dir.join(format!("{}{CHAINED}", hook.name)).exists() }
        }
        _ => HookState::Foreign,
    }
}

/// The shim with the absolute path of this binary filled in (single-quoted for sh).
fn render(hook: &Hook, binary: &Path) -> String {
    let quoted = binary.display().to_string().replace('\'', r"'\''");
    hook.shim.replace("@GIT_MSO@", &quoted)
}

fn write_executable(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io(format!("making {} executable", path.display()), e))
}

/// Install `hook` into `dir`, chaining a foreign hook already there. Returns what it did.
pub fn install(dir: &Path, hook: &Hook, binary: &Path) -> Result<&'static str> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let path = dir.join(hook.name);
    let said = match state(dir, hook) {
        HookState::Missing => "installed",
        HookState::Ours { .. } => "updated",
        HookState::Foreign => {
            let chained = dir.join(format!("{}{CHAINED}", hook.name));
            if chained.exists() {
                return Err(Error::Input(format!(
                    "{} exists and is not ours, and {} is taken: move one of them away first",
                    path.display(),
                    chained.display()
                )));
            }
            std::fs::rename(&path, &chained).map_err(|e| Error::io(format!("keeping {}", path.display()), e))?;
            "installed, chaining the previous hook"
        }
    };
    write_executable(&path, &render(hook, binary))?;
    Ok(said)
}

/// Remove our `hook` from `dir` and put back the one it chained.
pub fn uninstall(dir: &Path, hook: &Hook) -> Result<&'static str> {
    let path = dir.join(hook.name);
    match state(dir, hook) {
        HookState::Missing => Ok("not installed"),
        HookState::Foreign => Ok("not ours, left alone"),
        HookState::Ours { chained } => {
            std::fs::remove_file(&path).map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            if chained {
                let previous = dir.join(format!("{}{CHAINED}", hook.name));
                std::fs::rename(&previous, &path).map_err(|e| Error::io(format!("restoring {}", path.display()), e))?;
                Ok("removed, previous hook restored")
            } else {
                Ok("removed")
            }
        }
    }
}

/// Wake the repository's dispatcher: ask for a pass, and start
/// `git-mso dispatch --once --woken [--remote R]` fully detached (its own
/// session, no stdin, output to `<git dir>/mso/dispatch.log`, never waited
/// for). If a woken dispatcher already runs, the new one leaves at once and
/// the running one makes the pass: one per repository.
pub fn wake_dispatcher(store: &Store, remote: Option<&str>) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let binary = std::env::current_exe().map_err(|e| Error::io("locating git-mso", e))?;
    let mso_dir = crate::runtime::worktree::mso_dir(store.common_dir());
    crate::runtime::exclusive::request_pass(&mso_dir)?;
    let log_path = mso_dir.join("dispatch.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Error::io(format!("opening {}", log_path.display()), e))?;
    let err = log.try_clone().map_err(|e| Error::io("duplicating the log handle", e))?;
    let dir = store.top_dir();
    let mut cmd = std::process::Command::new(binary);
    cmd.args(["dispatch", "--once", "--woken"]);
    if let Some(remote) = remote {
        cmd.args(["--remote", remote]);
    }
    crate::gitcli::clear_repo_env(&mut cmd);
    cmd.current_dir(dir).env("MSO_HOOK_ACTIVE", "1").stdin(std::process::Stdio::null()).stdout(log).stderr(err);
    // SAFETY: setsid is async-signal-safe; it detaches the child from the hook's session.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| Error::io("starting a detached dispatcher", e))?;
    Ok(())
}
