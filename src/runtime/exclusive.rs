//! One woken dispatcher per repository. Hooks wake dispatchers on every push
//! that queues work; without this, a burst of pushes would start a burst of
//! dispatchers, each honouring its own parallelism and together none.
//!
//! A woken dispatcher takes `<git dir>/mso/dispatch.lock` (flock: released
//! by the kernel when the process dies, even by SIGKILL). A wake that finds
//! it held leaves `dispatch.wake` behind, and the holder runs another pass
//! before it lets go, so no push is missed.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn lock_path(mso_dir: &Path) -> PathBuf {
    mso_dir.join("dispatch.lock")
}

fn wake_path(mso_dir: &Path) -> PathBuf {
    mso_dir.join("dispatch.wake")
}

/// Ask for a pass: the running dispatcher, or the next to start, will see it.
pub fn request_pass(mso_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(mso_dir).map_err(|e| Error::io("creating the git-mso directory", e))?;
    File::create(wake_path(mso_dir)).map_err(|e| Error::io("writing the dispatch wake flag", e))?;
    Ok(())
}

/// Take the lock without waiting; `None` when another dispatcher holds it.
fn try_lock(mso_dir: &Path) -> Result<Option<File>> {
    std::fs::create_dir_all(mso_dir).map_err(|e| Error::io("creating the git-mso directory", e))?;
    let file = File::options()
        .create(true)
        .append(true)
        .open(lock_path(mso_dir))
        .map_err(|e| Error::io("opening the dispatch lock", e))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    Ok((rc == 0).then_some(file))
}

/// Take the wake flag if it is there.
fn take_wake(mso_dir: &Path) -> bool {
    std::fs::remove_file(wake_path(mso_dir)).is_ok()
}

/// Run `pass` as the repository's one woken dispatcher, again for every wake
/// that arrives meanwhile. Returns `false` without running when another
/// dispatcher holds the lock (it will honour the wake).
pub fn run_exclusive(mso_dir: &Path, mut pass: impl FnMut() -> Result<()>) -> Result<bool> {
    let mut ran = false;
    loop {
        let Some(lock) = try_lock(mso_dir)? else { return Ok(ran) };
        loop {
            take_wake(mso_dir);
            pass()?;
            ran = true;
            if !wake_path(mso_dir).exists() {
                break;
            }
        }
        drop(lock);
        // A wake that came between the last look and the release would be
        // lost: look once more, and take the lock again for it.
        if !wake_path(mso_dir).exists() {
            return Ok(ran);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_dispatcher_leaves_a_wake_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let mso = dir.path().join("mso");
        let mut passes = 0;
        let ran = run_exclusive(&mso, || {
            passes += 1;
            if passes == 1 {
                // Another push arrives while this pass runs.
                request_pass(&mso).unwrap();
                assert!(!run_exclusive(&mso, || panic!("a second dispatcher ran")).unwrap());
            }
            Ok(())
        })
        .unwrap();
        assert!(ran);
        assert_eq!(passes, 2, "the wake left during the first pass got its own pass");
        assert!(!wake_path(&mso).exists());
    }
}
