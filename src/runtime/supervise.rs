//! Crews die with their runner. A crew runs as `sh -c <command>` under a
//! supervisor: a forked copy of the runner that leads the crew's session and
//! process group and does nothing but wait. The kernel sends the supervisor
//! SIGTERM when the runner's thread that started it dies (a parent-death
//! signal, so even a SIGKILLed runner counts), and the supervisor then kills
//! its whole group. It is also the subreaper of everything the crew starts:
//! a daemon that leaves the group and closes what it inherited is still
//! below it, and is killed when the crew ends or is stopped. No crew keeps
//! writing into a worktree that recovery hands to the next attempt.
//!
//! The supervisor is forked without exec, so after `fork` only
//! async-signal-safe calls are made: everything it needs (argv, environment,
//! paths, descriptors) is prepared before.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Where a crew finds the descriptor that marks its worktree as in use
/// (see `worktree::occupy`). Every process of the crew inherits it, so the
/// worktree counts as in use until the last of them is gone.
pub const OCCUPANCY_FD: RawFd = 200;

/// How a supervised crew is started.
pub struct Spawn<'a> {
    pub command: &'a str,
    pub cwd: &'a Path,
    /// The crew's whole environment.
    pub env: Vec<(OsString, OsString)>,
    /// Where its stdout and stderr go.
    pub log: &'a File,
    /// The worktree's occupancy lock, inherited by every crew process.
    pub occupancy: Option<&'a File>,
}

/// Start the crew; returns the supervisor's pid, which is also the crew's
/// process group id.
pub fn spawn(spec: &Spawn<'_>) -> std::io::Result<i32> {
    let cstr =
        |b: &[u8]| CString::new(b).map_err(|_| std::io::Error::other("a NUL byte in a crew's command or environment"));
    let sh = cstr(b"/bin/sh")?;
    let argv_owned = [cstr(b"sh")?, cstr(b"-c")?, cstr(spec.command.as_bytes())?];
    let mut argv: Vec<*const libc::c_char> = argv_owned.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    let env_owned = spec
        .env
        .iter()
        .map(|(k, v)| {
            let mut pair = k.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(v.as_bytes());
            cstr(&pair)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut envp: Vec<*const libc::c_char> = env_owned.iter().map(|c| c.as_ptr()).collect();
    envp.push(std::ptr::null());
    let cwd = cstr(spec.cwd.as_os_str().as_bytes())?;
    ensure_open_files()?;
    let null = File::open("/dev/null")?;
    // The supervisor and the crew's child report a failure to start here
    // (errno and step); a successful exec closes the crew's copy.
    let mut ends = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned here.
    let (reader, writer) = unsafe { (File::from_raw_fd(ends[0]), File::from_raw_fd(ends[1])) };
    let fds = Fds {
        null: null.as_raw_fd(),
        log: spec.log.as_raw_fd(),
        occupancy: spec.occupancy.map(|f| f.as_raw_fd()),
        report: writer.as_raw_fd(),
    };
    // SAFETY: getpid has no preconditions.
    let runner = unsafe { libc::getpid() };
    // The stack the crew's process starts on (see `start_crew`), allocated
    // here: the supervisor may not allocate.
    let mut stack = vec![0u8; CREW_STACK];
    let exec = Exec { sh: &sh, argv: &argv, envp: &envp, cwd: &cwd };

    // SAFETY: the child runs only async-signal-safe calls on memory prepared above, then exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the forked child; see `supervise`.
        unsafe { supervise(runner, &exec, &mut stack, fds) }
    }
    drop(writer);
    let mut report = Vec::new();
    let _ = std::io::Read::read_to_end(&mut (&reader).take(64), &mut report);
    if let [a, b, c, d, step, ..] = report[..] {
        // The supervisor exits at once after a failure: reap it.
        let mut status = 0;
        // SAFETY: waitpid on our own child, writing into a local.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let errno = i32::from_le_bytes([a, b, c, d]);
        let what = match step {
            STEP_SESSION => "starting a session",
            STEP_FDS => "setting up its descriptors",
            STEP_FORK => "forking",
            STEP_CWD => "entering its worktree",
            _ => "executing /bin/sh",
        };
        let err = std::io::Error::from_raw_os_error(errno);
        return Err(std::io::Error::new(err.kind(), format!("the crew could not start ({what}: {err})")));
    }
    Ok(pid)
}

/// The descriptors the supervisor arranges before it forks the crew.
#[derive(Clone, Copy)]
struct Fds {
    null: RawFd,
    log: RawFd,
    occupancy: Option<RawFd>,
    report: RawFd,
}

/// Where the supervisor keeps the report pipe (close-on-exec).
const REPORT_FD: RawFd = OCCUPANCY_FD + 1;
const STEP_SESSION: u8 = 1;
const STEP_FDS: u8 = 2;
const STEP_FORK: u8 = 3;
const STEP_CWD: u8 = 4;
const STEP_EXEC: u8 = 5;

/// Report a failed step and errno on the report pipe, and exit.
unsafe fn fail(step: u8) -> ! {
    // SAFETY: see `fail_through`.
    unsafe { fail_through(REPORT_FD, step) }
}

/// Report a failed step and errno on `fd`, and exit.
unsafe fn fail_through(fd: RawFd, step: u8) -> ! {
    // SAFETY: errno, write(2) and _exit(2) are async-signal-safe.
    unsafe {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0).to_le_bytes();
        let message = [errno[0], errno[1], errno[2], errno[3], step];
        libc::write(fd, message.as_ptr().cast(), message.len());
        libc::_exit(126);
    }
}

/// The fewest open files a runner needs to start crews (their fixed
/// descriptors sit at 200 and 201, with room for copies above them).
const MIN_OPEN_FILES: u64 = 512;

/// Raise the soft open-file limit to `MIN_OPEN_FILES` when it is lower and
/// the hard limit allows; an error saying so when it does not.
fn ensure_open_files() -> std::io::Result<()> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 || limit.rlim_cur >= MIN_OPEN_FILES {
        return Ok(());
    }
    if limit.rlim_max < MIN_OPEN_FILES {
        return Err(std::io::Error::other(format!(
            "the open-file limit is {} (ulimit -n); a runner needs {MIN_OPEN_FILES} to start crews",
            limit.rlim_max
        )));
    }
    let raised = libc::rlimit { rlim_cur: MIN_OPEN_FILES, rlim_max: limit.rlim_max };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The runner's pid, for the supervisor's signal handler (set before the
/// handler is installed; an atomic store and load are async-signal-safe).
static RUNNER: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// SIGTERM or SIGHUP from the runner (it died: the parent-death signal
/// carries its pid; or it stops the crew) or from the kernel: every process
/// below the supervisor goes, then its group, the supervisor with it. The
/// same signal from a crew's own process (a script's `trap 'kill 0' EXIT`
/// signals its whole group, the supervisor in it) is not the runner's word,
/// and is ignored.
extern "C" fn kill_group(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler;
    // only async-signal-safe calls follow (see `kill_descendants`); pid 0 is
    // the caller's own process group.
    unsafe {
        let from = if info.is_null() { 0 } else { (*info).si_pid() };
        if from != 0 && from != RUNNER.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        kill_descendants();
        libc::kill(0, libc::SIGKILL);
    }
}

/// Kill every process below the supervisor, wherever it went: a crew's
/// daemon that started a session of its own and closed what it inherited
/// is still the supervisor's descendant, since the supervisor is their
/// subreaper. Its children are killed, then theirs as they come to it,
/// however deep, until none is left, or for at most five seconds (a
/// process in uninterruptible sleep cannot be waited for). Where /proc is
/// another pid namespace's, its pids are not ours to kill: nothing is done.
unsafe fn kill_descendants() {
    // SAFETY (whole body): readlink, getpid, open, read, close, kill,
    // waitpid, clock_gettime and nanosleep are async-signal-safe; the
    // buffers are on this stack.
    unsafe {
        let mut link = [0u8; 32];
        let n = libc::readlink(c"/proc/self".as_ptr(), link.as_mut_ptr().cast(), link.len());
        if n <= 0 || parse_pid(&link[..n as usize]) != Some(libc::getpid()) {
            return;
        }
        let started = monotonic_ms();
        loop {
            let fd = libc::open(c"/proc/thread-self/children".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return;
            }
            let mut found = false;
            let mut buf = [0u8; 1024];
            let mut pid: libc::pid_t = 0;
            loop {
                let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                if n <= 0 {
                    break;
                }
                for &b in &buf[..n as usize] {
                    if b.is_ascii_digit() {
                        pid = pid.saturating_mul(10).saturating_add(libc::pid_t::from(b - b'0'));
                    } else if pid > 0 {
                        libc::kill(pid, libc::SIGKILL);
                        found = true;
                        pid = 0;
                    }
                }
            }
            if pid > 0 {
                libc::kill(pid, libc::SIGKILL);
                found = true;
            }
            libc::close(fd);
            let mut reaped = false;
            let mut status = 0;
            while libc::waitpid(-1, &mut status, libc::WNOHANG) > 0 {
                reaped = true;
            }
            if !found || monotonic_ms().saturating_sub(started) > 5_000 {
                return;
            }
            // Those killed are not dead yet: a moment for them to be.
            if !reaped {
                let nap = libc::timespec { tv_sec: 0, tv_nsec: 1_000_000 };
                libc::nanosleep(&nap, std::ptr::null_mut());
            }
        }
    }
}

/// A pid from its decimal digits (async-signal-safe: no allocation).
fn parse_pid(digits: &[u8]) -> Option<libc::pid_t> {
    let mut pid: libc::pid_t = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        pid = pid.checked_mul(10)?.checked_add(libc::pid_t::from(b - b'0'))?;
    }
    (!digits.is_empty()).then_some(pid)
}

/// Milliseconds on the monotonic clock (clock_gettime is async-signal-safe).
unsafe fn monotonic_ms() -> u64 {
    // SAFETY: clock_gettime writes into the struct we own.
    unsafe {
        let mut now: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
        (now.tv_sec as u64).saturating_mul(1000).saturating_add(now.tv_nsec as u64 / 1_000_000)
    }
}

/// Every signal back to its default action: a runner ignores SIGPIPE (as
/// every Rust program does), and a crew must not inherit that.
unsafe fn default_signals() {
    // SAFETY: sigaction is async-signal-safe; SIGKILL and SIGSTOP fail harmlessly.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for signal in 1..=64 {
            libc::sigaction(signal, &dfl, std::ptr::null_mut());
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// What the crew's process executes, prepared before any fork.
struct Exec<'a> {
    sh: &'a CString,
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    cwd: &'a CString,
}

/// Room for `start_crew`, which makes a few system calls and nothing else.
const CREW_STACK: usize = 64 * 1024;

/// The crew's process, from the supervisor: default signal handling,
/// nothing blocked, its worktree, then sh. It shares the supervisor's
/// memory until execve (the supervisor waits meanwhile, as with vfork), so
/// starting it copies none of the runner's.
extern "C" fn start_crew(exec: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `exec` points at the supervisor's `Exec`, alive while the
    // supervisor is suspended; only async-signal-safe calls follow, on this
    // process's own stack, ending in execve or _exit.
    unsafe {
        let exec = &*(exec as *const Exec<'_>);
        default_signals();
        if libc::chdir(exec.cwd.as_ptr()) != 0 {
            fail(STEP_CWD);
        }
        libc::execve(exec.sh.as_ptr(), exec.argv.as_ptr(), exec.envp.as_ptr());
        fail(STEP_EXEC)
    }
}

/// The supervisor: lead a new session, die with the runner, run the crew,
/// and end the way the crew ended.
unsafe fn supervise(runner: libc::pid_t, exec: &Exec<'_>, stack: &mut [u8], fds: Fds) -> ! {
    // SAFETY (whole body): only async-signal-safe system calls, on values
    // prepared before the fork; every path ends in _exit, execve or a kill
    // of the caller's own group.
    unsafe {
        // Every descriptor moves above the fixed ones first, so that placing
        // one at 0-2, OCCUPANCY_FD or REPORT_FD never overwrites another.
        // (`spawn` made sure the open-file limit leaves room for this.)
        let high = |fd: RawFd| libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, REPORT_FD + 1);
        let (null, log, report) = (high(fds.null), high(fds.log), high(fds.report));
        let occupancy = fds.occupancy.map(high);
        if report < 0 || libc::dup3(report, REPORT_FD, libc::O_CLOEXEC) < 0 {
            // Report through the pipe's original descriptor, still open here.
            fail_through(fds.report, STEP_FDS);
        }
        if null < 0 || log < 0 || occupancy.is_some_and(|fd| fd < 0) {
            fail(STEP_FDS);
        }
        if libc::setsid() == -1 {
            fail(STEP_SESSION);
        }
        RUNNER.store(runner, std::sync::atomic::Ordering::SeqCst);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = kill_group as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGHUP, &action, std::ptr::null_mut());
        let mut unblock: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut unblock);
        libc::sigaddset(&mut unblock, libc::SIGTERM);
        libc::sigaddset(&mut unblock, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &unblock, std::ptr::null_mut());
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0);
        // Whatever the crew starts stays below the supervisor, however it detaches.
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
        // The runner may have died before the parent-death signal was armed.
        if libc::getppid() != runner {
            libc::kill(0, libc::SIGKILL);
        }
        // Nothing of the runner's stays open here but the crew's own descriptors.
        if libc::dup2(null, 0) < 0 || libc::dup2(log, 1) < 0 || libc::dup2(log, 2) < 0 {
            fail(STEP_FDS);
        }
        match occupancy {
            // dup2 leaves the copy inheritable: every crew process holds it.
            Some(fd) => {
                if libc::dup2(fd, OCCUPANCY_FD) < 0 {
                    fail(STEP_FDS);
                }
            }
            None => {
                libc::close(OCCUPANCY_FD);
            }
        }
        close_range(3, OCCUPANCY_FD as u32 - 1);
        close_range(REPORT_FD as u32 + 1, u32::MAX);
        // The stack grows down from its 16-byte aligned end.
        let top = stack.as_mut_ptr().add(stack.len()) as usize & !15;
        let crew = libc::clone(
            start_crew,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            exec as *const Exec<'_> as *mut libc::c_void,
        );
        if crew < 0 {
            fail(STEP_FORK);
        }
        // The crew started (or reports why not) on its own copy.
        libc::close(REPORT_FD);
        // Until the crew ends, reap what it left to the supervisor as it
        // exits, so that no zombie of an adopted process piles up.
        let status = loop {
            let mut any = 0;
            let rc = libc::waitpid(-1, &mut any, 0);
            if rc == crew {
                break any;
            }
            if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                libc::_exit(126);
            }
        };
        // The crew ended: nothing it started outlives it.
        kill_descendants();
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        // Killed by a signal: end by the same signal, without a core file.
        let signal = libc::WTERMSIG(status);
        let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(signal, &dfl, std::ptr::null_mut());
        let mut only: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut only);
        libc::sigaddset(&mut only, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &only, std::ptr::null_mut());
        libc::kill(libc::getpid(), signal);
        libc::_exit(128 + signal);
    }
}

/// Close descriptors `first..=last`; by close_range(2), else one by one.
unsafe fn close_range(first: u32, last: u32) {
    // SAFETY: closing descriptors is async-signal-safe; none of them is used afterwards.
    unsafe {
        if first > last {
            return;
        }
        if libc::syscall(libc::SYS_close_range, first, last, 0) == 0 {
            return;
        }
        let mut limit: libc::rlimit = std::mem::zeroed();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 { limit.rlim_cur.min(65_536) } else { 4096 };
        let mut fd = first as u64;
        while fd <= last as u64 && fd < max {
            libc::close(fd as i32);
            fd += 1;
        }
    }
}

/// The environment a crew starts with: the runner's, without the variables
/// that point git at a particular repository, with replace refs off and
/// `vars` added (what `gitcli::clear_repo_env` does for a `Command`).
pub fn crew_env(vars: &[(&str, String)]) -> Vec<(OsString, OsString)> {
    use crate::gitcli::{NO_REPLACE_ENV, REPO_ENV};
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !REPO_ENV.iter().any(|r| OsStr::new(r) == k))
        .filter(|(k, _)| k != NO_REPLACE_ENV.0 && !vars.iter().any(|(v, _)| OsStr::new(v) == k))
        .collect();
    env.push((NO_REPLACE_ENV.0.into(), NO_REPLACE_ENV.1.into()));
    env.extend(vars.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))));
    env
}
