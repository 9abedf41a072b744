//! Long output goes through git's pager, as `git log` does: on a terminal
//! (or with `-p`), never with `-P`/`--no-pager`, and not at all when the
//! pager git would use is `cat` or empty.

use std::io::Write;
use std::process::{Command, Stdio};

use git_mso::cli::Cli;

/// The pager command for this run, if its output is to be paged.
pub fn choose(cli: &Cli) -> Option<String> {
    if cli.no_pager || !(cli.paginate || (cli.command.pages() && stdout_is_terminal())) {
        return None;
    }
    // `git var GIT_PAGER` applies git's own order: GIT_PAGER, core.pager
    // (with `git -c` too), PAGER, then the built-in default.
    let mut var = Command::new("git");
    var.args(["var", "GIT_PAGER"]).stdin(Stdio::null()).stderr(Stdio::null());
    if let Some(dir) = &cli.dir {
        var.current_dir(dir);
    }
    let out = var.output().ok().filter(|o| o.status.success())?;
    let pager = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!pager.is_empty() && pager != "cat").then_some(pager)
}

fn stdout_is_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(1) == 1 }
}

/// Set when a write to our own output (stdout, or the pager's input) found
/// its reader gone: only then is a broken pipe a quiet exit.
static CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn output_closed() -> bool {
    CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Our output, noting when its reader has gone.
pub struct Watched<W: Write>(pub W);

impl<W: Write> Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        note(self.0.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        note(self.0.flush())
    }
}

fn note<T>(result: std::io::Result<T>) -> std::io::Result<T> {
    if let Err(e) = &result
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    result
}

/// Run `body` with its output going to `pager` (`sh -c`, with git's
/// `LESS=FRX` and `LV=-c` unless set), and wait for the reader.
pub fn run_through(pager: &str, body: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut command = Command::new("sh");
    command.args(["-c", pager]).stdin(Stdio::piped());
    for (name, value) in [("LESS", "FRX"), ("LV", "-c")] {
        if std::env::var_os(name).is_none() {
            command.env(name, value);
        }
    }
    let Ok(mut child) = command.spawn() else {
        // No pager to be had: print as if there were none.
        let mut stdout = Watched(std::io::stdout().lock());
        let result = body(&mut stdout);
        let _ = stdout.flush();
        return result;
    };
    let mut input = Watched(std::io::BufWriter::new(child.stdin.take().expect("stdin was piped")));
    let result = body(&mut input);
    let flushed = input.flush();
    drop(input);
    let _ = child.wait();
    result.and(flushed.map_err(Into::into))
}

/// Whether to colour: only on a terminal, and not when `NO_COLOR` is set
/// or `color.ui` says `never`/`false`.
pub fn colour(cli: &Cli) -> bool {
    if !stdout_is_terminal()
        || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
        || std::env::var("TERM").is_ok_and(|t| t == "dumb")
    {
        return false;
    }
    let mut get = Command::new("git");
    get.args(["config", "--get", "color.ui"]).stdin(Stdio::null()).stderr(Stdio::null());
    if let Some(dir) = &cli.dir {
        get.current_dir(dir);
    }
    let setting = get.output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_ascii_lowercase());
    !matches!(setting.as_deref(), Some("never" | "false" | "no" | "off" | "0"))
}
