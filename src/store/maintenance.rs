//! Keeping the object database small, in the background.
//!
//! Every transaction writes its objects as one small pack (see `batch`), and
//! crews' commits are loose objects. After each ledger append, one job at a
//! time (it holds `<git dir>/mso/locks/maintenance`, an flock, for as long
//! as it runs), never waited for, never an error, at a lower priority (ten
//! more niceness than the runner's: it gives way to the runs and crews it
//! would compete with):
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

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::Store;

/// How long after a roll-up that did nothing the next may start.
const AFTER_VAIN: Duration = Duration::from_secs(60);

/// What `gc --auto` is given before it may start again (it leaves loose
/// objects it must keep, so the count may stay above the threshold).
const GC_EVERY: Duration = Duration::from_secs(60);

/// Temporary files of ours (a writer killed mid-write) are removed once
/// this old (git's prune removes its own `tmp_` files after two weeks).
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// The prefix of the temporary files `batch` writes a pack through.
pub(crate) const TMP_PREFIX: &str = "tmp_mso_";

impl Store {
    /// Start the job the object database needs, if any (see the module),
    /// holding the maintenance lock.
    pub(crate) fn maybe_pack(&self) {
        let Some(threshold) = self.auto_gc_threshold() else { return };
        let objects = self.repo.objects.store_ref().path();
        let mso = self.common_dir().join("mso");
        let census = PackCensus::take(objects);
        let (roll_up_at, _) = self.pack_limits();
        let last_roll_up = mso.join("roll-up.last");
        let gc = mso.join("gc.started");
        let roll_up = census.complete && self.may_pack() && census.rollable.len() > roll_up_at;
        let job: &[&str] = if roll_up && !rolled_up_in_vain(&last_roll_up, &objects.join("pack")) {
            &["repack", "--geometric=2", "-d", "-l", "-q"]
        } else if loose_objects_estimate(objects) > threshold && !started_within(&gc, GC_EVERY) {
            &["gc", "--auto", "--quiet"]
        } else {
            return;
        };
        let locks = mso.join("locks");
        let _ = std::fs::create_dir_all(&locks);
        let Some(lock) = maintenance_lock(&locks.join("maintenance")) else { return };
        if job[0] == "gc" {
            let _ = std::fs::write(&gc, b"");
        } else if let Some(smallest) = census.smallest() {
            // What tells, next time, whether this roll-up did anything.
            let _ = std::fs::write(&last_roll_up, smallest);
        }
        let mut cmd = crate::gitcli::command(&self.top_dir(), job);
        cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        let fd = std::os::fd::AsRawFd::as_raw_fd(&lock);
        let nice = lowered_priority();
        // SAFETY: between fork and exec the child only makes two system
        // calls, with no lock or allocation (setpriority is not on POSIX's
        // async-signal-safe list, but glibc's and musl's are the bare
        // system call): it lowers its priority, and clears the
        // close-on-exec flag of a descriptor it inherited, so git holds
        // the flock until it exits.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if let Some(nice) = nice {
                    libc::setpriority(libc::PRIO_PROCESS, 0, nice);
                }
                if libc::fcntl(fd, libc::F_SETFD, 0) == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
            });
        }
        match cmd.spawn() {
            // Reap it from a thread so no zombie outlives a long-running dispatcher's interest.
            Ok(mut child) => {
                std::thread::spawn(move || child.wait());
            }
            Err(e) => tracing::debug!("could not start git {}: {e}", job[0]),
        }
    }

    /// Whether a transaction writes its objects as a pack (see the module).
    pub(crate) fn writes_packs(&self) -> bool {
        if self.auto_gc_threshold().is_none() || !self.may_pack() {
            return false;
        }
        let census = PackCensus::take(self.repo.objects.store_ref().path());
        census.complete && census.rollable.len() < self.pack_limits().1
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
    /// stat per pack; 40 balances the two. Below a limit of 12 there is no
    /// room for packs between roll-ups: transactions write loose objects.
    /// Where git has no limit (0), they write packs up to twice 40.
    fn pack_limits(&self) -> (usize, usize) {
        const MOST: usize = 40;
        let git_limit = self.repo.config_snapshot().integer("gc.autoPackLimit").unwrap_or(50);
        match usize::try_from(git_limit) {
            Ok(0) | Err(_) => (MOST, 2 * MOST),
            Ok(n) if n < 12 => (usize::MAX, 0),
            Ok(n) => ((n - 10).min(MOST), n - 1),
        }
    }
}

/// What `objects/pack` holds.
struct PackCensus {
    dir: std::path::PathBuf,
    /// Packs (`pack-*.idx` with their `.pack`) with no `.keep`, by stem:
    /// those a geometric repack rolls up.
    rollable: Vec<String>,
    /// Whether the directory was listed whole (it is read up to a bound).
    complete: bool,
}

impl PackCensus {
    /// Count, from one listing, removing on the way our temporary files
    /// once `ORPHAN_AGE` old. Nothing else is ever removed: a pack without
    /// its index may be one git is indexing, or one to recover.
    fn take(objects: &Path) -> PackCensus {
        const MOST: usize = 20_000;
        let dir = objects.join("pack");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return PackCensus { dir, rollable: Vec::new(), complete: true };
        };
        let names: std::collections::BTreeSet<std::ffi::OsString> =
            entries.flatten().take(MOST + 1).map(|e| e.file_name()).collect();
        let complete = names.len() <= MOST;
        let sibling = |stem: &str, ext: &str| names.contains(std::ffi::OsStr::new(&format!("{stem}{ext}")));
        let mut rollable = Vec::new();
        for name in &names {
            let Some(text) = name.to_str() else { continue };
            if text.starts_with(TMP_PREFIX) {
                remove_if_old(&dir.join(name));
            } else if let Some(stem) = text.strip_suffix(".idx").filter(|s| s.starts_with("pack-"))
                && sibling(stem, ".pack")
                && !sibling(stem, ".keep")
            {
                rollable.push(stem.to_string());
            }
        }
        PackCensus { dir, rollable, complete }
    }

    /// The smallest rollable pack's file name: any roll-up takes it.
    fn smallest(&self) -> Option<String> {
        let pack = |stem: &str| format!("{stem}.pack");
        self.rollable
            .iter()
            .filter_map(|stem| Some((std::fs::metadata(self.dir.join(pack(stem))).ok()?.len(), stem)))
            .min()
            .map(|(_, stem)| pack(stem))
    }
}

/// Whether the last roll-up left the pack it was started for (the
/// smallest, which any roll-up takes) where it was: it failed, or git had
/// nothing to roll up (a `pack.packSizeLimit`, say, splitting what it
/// wrote again). Then the next waits `AFTER_VAIN` rather than starting with
/// every append.
fn rolled_up_in_vain(stamp: &Path, packs: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(stamp) else { return false };
    if !meta.is_file() || meta.len() > 256 {
        return false;
    }
    let recent = meta.modified().ok().and_then(|t| t.elapsed().ok()).is_none_or(|age| age < AFTER_VAIN);
    let Ok(name) = std::fs::read(stamp) else { return false };
    let name = std::ffi::OsStr::from_bytes(&name);
    let plain = !name.is_empty() && !name.as_encoded_bytes().contains(&b'/');
    recent && plain && packs.join(name).exists()
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

/// The niceness of a background job: ten more than this process's (never
/// less: a runner already started with `nice -n 15` keeps its jobs below
/// it), at most 19; `None` if it cannot be read.
fn lowered_priority() -> Option<libc::c_int> {
    // getpriority returns -1 both for an error and for niceness -1: errno tells.
    // SAFETY: __errno_location returns this thread's errno; getpriority has no preconditions.
    let now = unsafe {
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, 0);
        if now == -1 && *libc::__errno_location() != 0 {
            return None;
        }
        now
    };
    Some(now.saturating_add(10).min(19))
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
