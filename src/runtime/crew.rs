//! Running one crew: `sh -c <command>` from the runner's own git config, in
//! its own process group, stdin closed, output to a log, with a timeout and a
//! way to stop it from outside. Order text never reaches the command line:
//! crews read it from the files named in their environment.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// What a role executes on this machine (`mso.crew.<ROLE>.command`, `.timeout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrewSpec {
    pub command: String,
    pub timeout: Option<Duration>,
    /// Stop the crew when its log has not grown for this long: it is most
    /// likely waiting for input it will never get (`mso.crew.<ROLE>.idleTimeout`).
    pub idle: Option<Duration>,
    /// No command: the built-in release, which publishes the voyage.
    pub publish: bool,
}

/// How a crew run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrewExit {
    Exited(i32),
    Signaled(i32),
    TimedOut(Duration),
    /// Printed nothing for this long, and was stopped.
    Idle(Duration),
    /// Stopped because its order was cancelled (or the runner shut down hard).
    Stopped,
}

impl CrewExit {
    pub fn success(self) -> bool {
        self == CrewExit::Exited(0)
    }

    pub fn code(self) -> Option<i32> {
        match self {
            CrewExit::Exited(c) => Some(c),
            _ => None,
        }
    }

    pub fn describe(self) -> String {
        match self {
            CrewExit::Exited(c) => format!("exited with status {c}"),
            CrewExit::Signaled(s) => format!("killed by signal {s}"),
            CrewExit::TimedOut(d) => format!("timed out after {} s", d.as_secs()),
            CrewExit::Idle(d) => {
                format!("printed nothing for {} s and was stopped (waiting for input it will never get?)", d.as_secs())
            }
            CrewExit::Stopped => "stopped".into(),
        }
    }
}

/// Parse a timeout such as `90`, `90s`, `15m` or `2h`.
pub fn parse_timeout(text: &str) -> Option<Duration> {
    crate::core::time::parse_duration(text)
}

/// How long a crew may run, and stay silent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub timeout: Option<Duration>,
    pub idle: Option<Duration>,
}

/// Run `sh -c command` in `cwd` and wait for it, killing its whole process
/// group on timeout, after `limits.idle` without output, or when `stop`
/// becomes true. The crew runs in a session of its own under a supervisor
/// that takes the group down if this process dies (see `supervise`): it has
/// no controlling terminal, so a prompt that would read one fails at once
/// instead of waiting for a human. `occupancy` (the worktree's lock) is
/// inherited by every crew process.
pub fn run(
    command: &str,
    cwd: &Path,
    env: &[(&str, String)],
    log: &Path,
    limits: Limits,
    stop: &AtomicBool,
    occupancy: Option<&File>,
) -> Result<CrewExit> {
    let out = File::create(log).map_err(|e| Error::io(format!("creating {}", log.display()), e))?;
    let spec = super::supervise::Spawn { command, cwd, env: super::supervise::crew_env(env), log: &out, occupancy };
    let pgid = super::supervise::spawn(&spec).map_err(|e| Error::io("starting the crew (sh -c)", e))?;
    drop(out);
    let started = Instant::now();
    let log_len = || std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    let (mut last_len, mut last_output) = (log_len(), Instant::now());
    let exit = ExitSignal::of(pgid);
    // Look quickly at first so short crews are not charged a fixed delay,
    // then back off; the crew's end wakes the wait at once where the
    // kernel tells of it (a pidfd).
    let mut nap = Duration::from_millis(1);
    loop {
        if let Some(status) = try_wait(pgid)? {
            // The crew is gone; take down anything it left running in its group.
            kill_group(pgid);
            return Ok(status);
        }
        if limits.idle.is_some() {
            let len = log_len();
            if len != last_len {
                (last_len, last_output) = (len, Instant::now());
            }
        }
        let ended = match (limits.timeout, limits.idle) {
            (Some(t), _) if started.elapsed() >= t => Some(CrewExit::TimedOut(t)),
            (_, Some(i)) if last_output.elapsed() >= i => Some(CrewExit::Idle(i)),
            _ if stop.load(Ordering::SeqCst) => Some(CrewExit::Stopped),
            _ => None,
        };
        if let Some(ended) = ended {
            // The supervisor takes down every process below it, however
            // detached, then its group; the group goes for sure after that.
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe { libc::kill(pgid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(3);
            while try_wait(pgid)?.is_none() {
                if Instant::now() >= deadline {
                    kill_group(pgid);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            kill_group(pgid);
            return Ok(ended);
        }
        exit.wait(nap);
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}

/// A descriptor that becomes readable when a child process ends (Linux
/// 5.3 and later); without one, waiting is a plain sleep.
struct ExitSignal(Option<std::os::fd::OwnedFd>);

impl ExitSignal {
    fn of(pid: i32) -> Self {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        // SAFETY: a non-negative return is a descriptor this process now owns.
        ExitSignal(
            i32::try_from(fd).ok().filter(|fd| *fd >= 0).map(|fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }),
        )
    }

    /// Sleep for at most `nap`, less if the process ends first.
    fn wait(&self, nap: Duration) {
        let Some(fd) = &self.0 else {
            std::thread::sleep(nap);
            return;
        };
        let mut poll = libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(fd), events: libc::POLLIN, revents: 0 };
        let millis = i32::try_from(nap.as_millis()).unwrap_or(i32::MAX).max(1);
        // SAFETY: poll on one descriptor we own, writing into a local.
        unsafe { libc::poll(&mut poll, 1, millis) };
    }
}

/// The supervisor's exit, if it has ended (it ends the way its crew did).
fn try_wait(pid: i32) -> Result<Option<CrewExit>> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child, writing into a local.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == 0 {
            return Ok(None);
        }
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::io("waiting for the crew", err));
        }
        return Ok(Some(if libc::WIFEXITED(status) {
            CrewExit::Exited(libc::WEXITSTATUS(status))
        } else {
            CrewExit::Signaled(libc::WTERMSIG(status))
        }));
    }
}

fn kill_group(pgid: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Whether a process with this pid exists on this machine.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Open a file a crew could have written or replaced, only if it is a
/// regular file: a symlink is not followed, and a FIFO or device neither
/// blocks nor streams forever.
pub fn open_regular(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path).ok()?;
    file.metadata().ok()?.is_file().then_some(file)
}

/// At most `max` bytes of a regular file a crew wrote (its result); `None`
/// when there is none, or it is not a regular file.
pub fn read_crew_file(path: &Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    open_regular(path)?.take(max).read_to_end(&mut out).ok()?;
    Some(out)
}

/// What a crew left in a file (its result, its log), at most `max` bytes:
/// all of it, or, when it is longer, its end from a line boundary (an
/// agent's stream ends with its result). `None` when there is none or it is
/// not a regular file.
pub fn read_crew_file_end(path: &Path, max: u64) -> Option<Vec<u8>> {
    use std::io::{Read, Seek};
    let mut file = open_regular(path)?;
    let start = file.metadata().ok()?.len().saturating_sub(max);
    file.seek(std::io::SeekFrom::Start(start)).ok()?;
    let mut out = Vec::new();
    file.take(max).read_to_end(&mut out).ok()?;
    // A window that starts mid-line starts at the next line: half a secret
    // is one no redaction pattern recognizes.
    if start > 0
        && let Some(nl) = out.iter().position(|b| *b == b'\n')
    {
        out.drain(..=nl);
    }
    Some(out)
}

/// The last `lines` lines of a log, at most `max` bytes, for a FAILED
/// reason: escape sequences and other control or invisible characters are
/// shown escaped, so whatever a crew printed, its failure can be recorded.
pub fn log_tail(log: &Path, lines: usize, max: usize) -> String {
    // Read only the end: a crew may have written gigabytes.
    let Some(text) = read_crew_file_end(log, max as u64) else { return String::new() };
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    crate::core::text::clip(crate::core::text::display(&tail, true).into_owned(), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tails_are_escaped_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("crew.log");
        let mut text = "x".repeat(100_000);
        text.push_str("\nline one\n\u{1b}[31mred\u{1b}[0m \u{202e}desrever\u{7}\nlast\n");
        std::fs::write(&log, text).unwrap();
        let tail = log_tail(&log, 2, 4096);
        assert_eq!(tail, "\\u{1b}[31mred\\u{1b}[0m \\u{202e}desrever\\u{7}\nlast");
        crate::core::text::check_multiline("reason", &tail, 4096).unwrap();
        assert!(log_tail(&log, 1000, 4096).len() <= 4096);
        assert_eq!(log_tail(&dir.path().join("missing"), 5, 100), "");
    }

    #[test]
    fn crew_files_that_are_not_regular_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("result.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(read_crew_file(&fifo, 1024), None, "a FIFO is neither read nor waited on");
        assert_eq!(log_tail(&fifo, 5, 1024), "");
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert_eq!(read_crew_file(&link, 1024), None, "a symlink is not followed");
        let plain = dir.path().join("plain.json");
        std::fs::write(&plain, "x".repeat(5000)).unwrap();
        assert_eq!(read_crew_file(&plain, 1024).unwrap().len(), 1024);
    }

    #[test]
    fn timeouts_parse_with_units() {
        assert_eq!(parse_timeout("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_timeout("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_timeout("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_timeout("soon"), None);
        assert_eq!(parse_timeout("0"), None);
        assert_eq!(parse_timeout("99999999999999999h"), None);
    }
}
