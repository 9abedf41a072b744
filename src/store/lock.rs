//! One lock policy for every ref git-mso moves: the ledger, the notes refs
//! and voyage branches.
//!
//! git guards a ref update with `<ref>.lock`, a file that a killed writer
//! leaves behind. Every git-mso writer therefore holds an owner record,
//! `<git dir>/mso/locks/<ref>` (flock: the kernel releases it when the
//! process dies, even by SIGKILL), while it updates a ref, and writes into it
//! its pid, host and the value it is writing. A writer that meets a
//! `<ref>.lock`:
//! - takes the owner record first, so no live git-mso writer of this host is
//!   inside its update of that ref;
//! - finds the record left "updating" by a process of this host, with the
//!   value the lock holds (or an empty lock, created but not yet written):
//!   that writer died with the lock held, so the lock is removed at once;
//! - otherwise cannot tell whose lock it is (git itself, a writer on
//!   another host sharing the repository): it waits, and removes it once it
//!   is older than `STALE_UNKNOWN`;
//! - gives up after `WAIT`, with an error naming the lock file and the fix.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Store, env};
use crate::error::{Error, Result};

/// A lock whose owner cannot be identified counts as stale past this age.
pub const STALE_UNKNOWN: Duration = Duration::from_secs(5);

/// How long a writer waits for a ref lock before it gives up, unless
/// `MSO_LOCK_WAIT_MS` says otherwise: past `STALE_UNKNOWN`, so that any lock
/// whose writer is gone is recovered within the wait.
const WAIT: Duration = Duration::from_secs(8);

pub(crate) fn wait() -> Duration {
    std::env::var("MSO_LOCK_WAIT_MS").ok().and_then(|v| v.parse().ok()).map_or(WAIT, Duration::from_millis)
}

/// A git-mso writer's claim on one ref while it updates it.
struct Owner {
    file: File,
    /// What the record said before this writer took it, and when it was written.
    before: String,
    before_at: Option<std::time::SystemTime>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = write_record(&mut self.file, "idle");
    }
}

/// Owner records are padded to this width and written in place, so that
/// taking and leaving one changes no file's length (a truncation costs the
/// file system a journal entry on every ref update).
const RECORD_WIDTH: usize = 160;

fn write_record(file: &mut File, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let record = format!("{:<width$}\n", text.trim_end(), width = RECORD_WIDTH.max(text.len()));
    file.write_all_at(record.as_bytes(), 0)?;
    if file.metadata()?.len() > record.len() as u64 {
        file.set_len(record.len() as u64)?;
    }
    Ok(())
}

/// Why a ref could not be updated.
#[derive(Debug)]
pub(crate) enum RefError {
    /// Another writer held the ref's lock for longer than a writer waits,
    /// and it was not stale (or the lock records could not be written).
    Locked(Error),
    Git(gix::Error),
}

impl RefError {
    /// Someone else moved the ref first: a compare-and-swap lost.
    pub(crate) fn is_race(&self) -> bool {
        use gix::refs::file::transaction::prepare::{MustNotExist, ReferenceOutOfDate};
        match self {
            RefError::Git(e) => {
                e.downcast_any_ref::<ReferenceOutOfDate>().is_some() || e.downcast_any_ref::<MustNotExist>().is_some()
            }
            RefError::Locked(_) => false,
        }
    }

    /// git failed while this writer held every lock of the transaction
    /// (neither a lock held by another nor a lost race): it may have moved
    /// some of its refs already, one after another, before it failed.
    pub(crate) fn while_moving(&self) -> bool {
        matches!(self, RefError::Git(_)) && !self.is_race()
    }

    /// The error a user sees, with `context` for git's own.
    pub(crate) fn into_error(self, context: impl Into<String>) -> Error {
        match self {
            RefError::Locked(e) => e,
            RefError::Git(e) => Error::from_git_write(context, e),
        }
    }
}

impl Store {
    fn owner_path(&self, name: &str) -> PathBuf {
        self.common_dir().join("mso").join("locks").join(name)
    }

    fn ref_lock_path(&self, name: &str) -> PathBuf {
        self.common_dir().join(format!("{name}.lock"))
    }

    /// Take the owner records of `names` (sorted, so writers never deadlock),
    /// marking each as updating to its value; `Err(record)` with the record
    /// of the one another git-mso writer of this host holds.
    fn take_owners(&self, names: &[(String, String)]) -> Result<std::result::Result<Vec<Owner>, String>> {
        let mut owners = Vec::new();
        for (name, value) in names {
            let path = self.owner_path(name);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io("creating the git-mso locks directory", e))?;
            }
            let mut file = File::options()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
            let mut before = String::new();
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let _ = (&file).take(4096).read_to_string(&mut before);
                return Ok(Err(format!("{} ({})", path.display(), before.trim())));
            }
            let _ = (&file).take(4096).read_to_string(&mut before);
            let before_at = file.metadata().and_then(|m| m.modified()).ok();
            let record = format!("updating {} {} {value}\n", std::process::id(), env::host());
            write_record(&mut file, &record).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
            owners.push(Owner { file, before, before_at });
        }
        Ok(Ok(owners))
    }

    /// Apply one ref transaction under the lock policy. `edits` names each
    /// ref with the value it is set to ("" for a deletion).
    pub(crate) fn edit_refs_locked(
        &self,
        names: &[(String, String)],
        wait: Duration,
        mut edit: impl FnMut() -> std::result::Result<(), gix::Error>,
    ) -> std::result::Result<(), RefError> {
        let mut names = names.to_vec();
        names.sort();
        let start = Instant::now();
        let mut nap = Duration::from_millis(1);
        let mut seen = std::collections::HashMap::new();
        loop {
            // What holds the ref now, for the error.
            let blocker = match self.take_owners(&names).map_err(RefError::Locked)? {
                Ok(owners) => match edit() {
                    Err(e) if is_lock_held(&e) => {
                        if self.clear_stale(&names, &owners, &mut seen) {
                            continue;
                        }
                        self.present_locks(&names)
                            .unwrap_or_else(|| crate::core::text::line(&e.to_string()).into_owned())
                    }
                    other => return other.map_err(RefError::Git),
                },
                Err(record) => format!("another git-mso writer holds {record}"),
            };
            if start.elapsed() >= wait {
                return Err(RefError::Locked(Error::Locked {
                    what: names.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
                    lock: blocker,
                    waited: wait.as_secs_f64(),
                }));
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(50));
        }
    }

    /// The lock files of `names` (and of packed-refs, which a ref update
    /// may need) that exist now.
    fn present_locks(&self, names: &[(String, String)]) -> Option<String> {
        let shown: Vec<String> = self
            .lock_candidates(names)
            .into_iter()
            .filter(|p| p.symlink_metadata().is_ok())
            .map(|p| p.display().to_string())
            .collect();
        (!shown.is_empty()).then(|| shown.join(", "))
    }

    /// Every lock file an update of `names` may meet: theirs and packed-refs'.
    fn lock_candidates(&self, names: &[(String, String)]) -> Vec<PathBuf> {
        let mut all: Vec<PathBuf> = names.iter().map(|(n, _)| self.ref_lock_path(n)).collect();
        all.push(self.common_dir().join("packed-refs.lock"));
        all
    }

    /// Remove the locks an update of `names` meets that the policy says are
    /// stale; whether any was.
    fn clear_stale(
        &self,
        names: &[(String, String)],
        owners: &[Owner],
        seen: &mut std::collections::HashMap<PathBuf, (Option<std::time::SystemTime>, Instant)>,
    ) -> bool {
        let mut cleared = false;
        for (i, lock) in self.lock_candidates(names).into_iter().enumerate() {
            let Ok(meta) = std::fs::symlink_metadata(&lock) else { continue };
            let held = std::fs::read(&lock).map(|b| String::from_utf8_lossy(&b).trim().to_string()).unwrap_or_default();
            let made = meta.modified().ok();
            // Only a ref's own owner record can name its writer; packed-refs'
            // is always unknown. An empty lock is the dead writer's only if it
            // was made just after its record (created, then killed before it
            // wrote): git's own empty locks (pack-refs) come at any time.
            let just_after = |record: Option<std::time::SystemTime>| match (record, made) {
                (Some(record), Some(made)) => made.duration_since(record).is_ok_and(|d| d <= Duration::from_secs(2)),
                _ => false,
            };
            let dead_writer = owners.get(i).is_some_and(|o| {
                dead_owner(&o.before).is_some_and(|value| value == held || (held.is_empty() && just_after(o.before_at)))
            });
            // A lock dated in the future (the clock was set back, or another
            // host's runs ahead) has no age to read: it is as old as this
            // writer has watched it stay the same.
            let watched = seen.entry(lock.clone()).or_insert((made, Instant::now()));
            if watched.0 != made {
                *watched = (made, Instant::now());
            }
            let age = match made.map(|m| std::time::SystemTime::now().duration_since(m)) {
                Some(Ok(age)) => age,
                _ => watched.1.elapsed(),
            };
            if dead_writer || age > STALE_UNKNOWN {
                let whose = if dead_writer { "a git-mso writer that died" } else { "a writer that is gone" };
                tracing::warn!(lock = %lock.display(), age_ms = age.as_millis() as u64, "removing a stale lock left by {whose}");
                cleared |= std::fs::remove_file(&lock).is_ok();
            }
        }
        cleared
    }
}

/// The value a dead git-mso writer of this host was writing, from the
/// owner record it left "updating" (its flock is free, so it is not inside
/// an update any more: it died there).
fn dead_owner(record: &str) -> Option<String> {
    let mut words = record.split_whitespace();
    (words.next()? == "updating").then_some(())?;
    let _pid = words.next()?;
    let host = words.next()?;
    (host == env::host()).then(|| words.next().unwrap_or_default().to_string())
}

/// The ref's lock file exists: someone else is updating it, or left it behind.
fn is_lock_held(err: &gix::Error) -> bool {
    err.downcast_any_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::AlreadyExists)
}
