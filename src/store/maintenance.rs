//! Keeping the object database small, in the background.
//!
//! Every transaction writes its objects as one small pack (see `batch`), and
//! crews' commits are loose objects. After each ledger append, one job at a
//! time (it holds `<git dir>/mso/locks/maintenance`, an flock, for as long
//! as it runs), never waited for, never an error:
//! - past `pack_limits` packs that can be rolled up, `git repack
//!   --geometric=2 -d -l` rolls the small ones up, leaving the large ones
//!   alone, and packs loose objects with them;
//! - past git's own threshold of loose objects (`gc.auto`, 6700 by
//!   default), estimated as git does from one fan-out directory,
//!   `git gc --auto`, at most once a minute.
//!
//! Transactions write packs only where they will be rolled up: automatic
//! maintenance on (`gc.auto` not 0), a repository git may repack (not a
//! partial clone, no `extensions.preciousObjects`), and fewer packs there
//! than git's own `gc.autoPackLimit` (should roll-ups fail, or not keep
//! up, for any other reason, such as a git older than 2.32, writes fall
//! back to loose objects rather than piling packs up). Everywhere else
//! they write loose objects, as git writes a commit's.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::Store;

/// How long after a roll-up failed the next may start (one that succeeds
/// lets the next start as soon as it is needed).
const ROLL_UP_EVERY: Duration = Duration::from_secs(1);

/// What `gc --auto` is given before it may start again (it leaves loose
/// objects it must keep, so the count may stay above the threshold).
const GC_EVERY: Duration = Duration::from_secs(60);

/// Temporary files of ours, and packs without an index (a writer killed
/// between its two renames), are removed once this old: git removes
/// neither (its own `tmp_` files only after two weeks).
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// The prefix of the temporary files `batch` writes a pack through.
pub(crate) const TMP_PREFIX: &str = "tmp_mso_";

impl Store {
    /// Start the job the object database needs, if any (see the module),
    /// as `sh -c` running git, holding the maintenance lock.
    pub(crate) fn maybe_pack(&self) {
        let Some(threshold) = self.auto_gc_threshold() else { return };
        let objects = self.repo.objects.store_ref().path();
        let mso = self.common_dir().join("mso");
        let census = PackCensus::take(objects);
        let roll_up = mso.join("roll-up.failed");
        let gc = mso.join("gc.started");
        let (script, stamp) = if self.may_pack() && census.rollable > self.pack_limits().0 {
            if started_within(&roll_up, ROLL_UP_EVERY) {
                return;
            }
            // The stamp stays only when the roll-up fails: then the next
            // waits a while, instead of starting again with every append.
            ("git repack --geometric=2 -d -l -q && rm -f -- \"$0\"", roll_up)
        } else if loose_objects_estimate(objects) > threshold {
            if started_within(&gc, GC_EVERY) {
                return;
            }
            ("exec git gc --auto --quiet", gc)
        } else {
            return;
        };
        let locks = mso.join("locks");
        let _ = std::fs::create_dir_all(&locks);
        let Some(lock) = maintenance_lock(&locks.join("maintenance")) else { return };
        let _ = std::fs::write(&stamp, b"");
        // The stamp's path is an argument, never part of the script.
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(script).arg(&stamp).current_dir(self.top_dir()).stdin(std::process::Stdio::null());
        crate::gitcli::clear_repo_env(&mut cmd);
        cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        let fd = std::os::fd::AsRawFd::as_raw_fd(&lock);
        // SAFETY: between fork and exec the child only clears the
        // close-on-exec flag of a descriptor it inherited (fcntl is
        // async-signal-safe), so git holds the flock until it exits.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
            });
        }
        match cmd.spawn() {
            // Reap it from a thread so no zombie outlives a long-running dispatcher's interest.
            Ok(mut child) => {
                std::thread::spawn(move || child.wait());
            }
            Err(e) => tracing::debug!("could not start {script}: {e}"),
        }
    }

    /// Whether a transaction writes its objects as a pack (see the module).
    pub(crate) fn writes_packs(&self) -> bool {
        self.auto_gc_threshold().is_some()
            && self.may_pack()
            && PackCensus::take(self.repo.objects.store_ref().path()).rollable < self.pack_limits().1
    }

    /// git's `gc.auto` threshold of loose objects, unless automatic
    /// maintenance is off (`gc.auto` 0, or `MSO_NO_AUTO_GC` set).
    fn auto_gc_threshold(&self) -> Option<u64> {
        if std::env::var_os("MSO_NO_AUTO_GC").is_some() {
            return None;
        }
        let threshold = self.repo.config_snapshot().integer("gc.auto").map_or(6700, |n| u64::try_from(n).unwrap_or(0));
        (threshold != 0).then_some(threshold)
    }

    /// Whether git's geometric repack can roll packs up here: not in a
    /// partial clone (it refuses promisor packs), nor where objects are
    /// precious (it may not delete packs).
    fn may_pack(&self) -> bool {
        let config = self.repo.config_snapshot();
        config.string("extensions.partialClone").is_none()
            && !config.boolean("extensions.preciousObjects").unwrap_or(false)
    }

    /// How many packs (of those a roll-up may take) there may be: past the
    /// first, the small ones are rolled up; at the second, transactions
    /// write loose objects instead.
    ///
    /// Past git's `gc.autoPackLimit` (50 by default) any `git gc --auto` (a
    /// crew's `git commit` runs one) repacks the whole repository into one
    /// pack, which on a large repository takes long: git-mso's packs stay
    /// below it. Roll-ups start ten below it, and at most at 40: each costs
    /// a git process or two whatever it rolls up, and a reader's refresh a
    /// stat per pack; 40 balances the two. Where git has no limit (0),
    /// transactions write packs up to twice 40.
    fn pack_limits(&self) -> (usize, usize) {
        const MOST: usize = 40;
        let git_limit = self.repo.config_snapshot().integer("gc.autoPackLimit").unwrap_or(50);
        match usize::try_from(git_limit) {
            Ok(0) | Err(_) => (MOST, 2 * MOST),
            Ok(n) => {
                let roll_up = n.saturating_sub(10).clamp(4, MOST);
                (roll_up, n.saturating_sub(1).max(roll_up))
            }
        }
    }
}

/// What `objects/pack` holds.
struct PackCensus {
    /// Packs with an index and no `.keep`: those a geometric repack rolls up.
    rollable: usize,
}

impl PackCensus {
    /// Count, from one listing (bounded), removing on the way our
    /// temporary files and packs without an index once `ORPHAN_AGE` old.
    fn take(objects: &Path) -> PackCensus {
        let dir = objects.join("pack");
        let Ok(entries) = std::fs::read_dir(&dir) else { return PackCensus { rollable: 0 } };
        let names: std::collections::BTreeSet<std::ffi::OsString> =
            entries.flatten().take(20_000).map(|e| e.file_name()).collect();
        let sibling = |name: &std::ffi::OsStr, from: &str, to: &str| {
            let name = name.to_str()?;
            Some(std::ffi::OsString::from(format!("{}{to}", name.strip_suffix(from)?)))
        };
        let mut rollable = 0;
        for name in &names {
            let text = name.to_string_lossy();
            if text.ends_with(".idx") {
                let kept = sibling(name, ".idx", ".keep").is_some_and(|keep| names.contains(&keep));
                rollable += usize::from(!kept);
            } else if text.starts_with(TMP_PREFIX)
                || (text.ends_with(".pack") && sibling(name, ".pack", ".idx").is_some_and(|idx| !names.contains(&idx)))
            {
                remove_if_old(&dir.join(name));
            }
        }
        PackCensus { rollable }
    }
}

fn remove_if_old(path: &Path) {
    let old = std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > ORPHAN_AGE);
    if old {
        let _ = std::fs::remove_file(path);
    }
}

/// Whether the job `stamp` names was started less than `within` ago.
fn started_within(stamp: &Path, within: Duration) -> bool {
    std::fs::metadata(stamp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < within)
}

/// The maintenance lock, taken without waiting: `None` while a job runs.
fn maintenance_lock(path: &Path) -> Option<std::fs::File> {
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).ok()?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX | libc::LOCK_NB) };
    (rc == 0).then_some(file)
}

/// How many loose objects `objects` holds, estimated as `git gc --auto`
/// does: the entries of the `17/` fan-out directory, times 256.
pub(crate) fn loose_objects_estimate(objects: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(objects.join("17")) else { return 0 };
    let names = entries.flatten().filter(|e| e.file_name().len() == 38).count() as u64;
    names * 256
}
