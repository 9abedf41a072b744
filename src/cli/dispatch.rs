//! `git mso dispatch`: run crews for queued orders.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::error::Error;
use crate::runtime::{self, Options, StopSignal, dispatch::missing_crew_message};

use super::Ctx;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
What a role runs comes only from this machine's git config, never from the ledger:
  git config mso.crew.PLN.command 'scripts/crews/demo-plan.sh'
  git config mso.crew.PLN.timeout 30m          # optional; the crew's process group is killed after it
  git config mso.gate.BLD.command 'cargo test' # optional quality gate after the crew succeeds

Each crew runs as `sh -c <command>` in a worktree of the order's voyage branch with stdin closed,
its output in <git dir>/mso/runs/<ORDER>-<ROLE>-<ATTEMPT>/crew.log, and the environment
MSO_ORDER, MSO_ROLE, MSO_ATTEMPT, MSO_VOYAGE, MSO_PERSONA, MSO_MODEL, MSO_BRIEF_FILE, MSO_RESULT_FILE, MSO_READ_ONLY.

--once (the default) runs until no queued order can start, then exits. --watch keeps waiting for
work. Either way the first SIGINT/SIGTERM stops taking work and lets running crews finish, a
second one stops them and releases their orders (FAILED, queued again while attempts remain).

Examples:
  git mso dispatch
  git mso dispatch --watch --max-parallel 4
  git mso dispatch --watch --remote origin      # a runner coordinating through the server")]
pub struct Args {
    /// Run until no work is ready, then exit (the default).
    #[arg(long, conflicts_with = "watch")]
    once: bool,
    /// Keep running and pick up new work as it is queued.
    #[arg(long)]
    watch: bool,
    /// Crews to run at once, each on a different voyage (default: git config
    /// mso.dispatch.maxParallel, else 1; at most 64).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    max_parallel: Option<u16>,
    /// Run as the repository's one woken dispatcher (what hooks start): leave
    /// at once if another holds <git dir>/mso/dispatch.lock, which then makes the pass.
    #[arg(long, hide = true)]
    woken: bool,
    /// Coordinate with other runners through this remote: claims are pushed, and whoever's
    /// push lands owns the role; results, voyage branches and notes are pushed back.
    #[arg(long, value_name = "REMOTE")]
    remote: Option<String>,
    /// Seconds between looks at the ledger while waiting.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    poll: f64,
}

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// The dispatcher's output: a reader that went away (`| head`, a log
/// collector restarting) must not stop the runs in flight, so writes to a
/// closed pipe are dropped and dispatch goes on.
struct Tolerant<'a>(&'a mut dyn std::io::Write);

impl std::io::Write for Tolerant<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(buf.len()),
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let mut tolerant = Tolerant(&mut *ctx.out);
    let mut ctx = Ctx { dir: ctx.dir.clone(), out: &mut tolerant };
    let ctx = &mut ctx;
    if !(0.01..=3600.0).contains(&args.poll) {
        return Err(Error::Input("--poll must be between 0.01 and 3600 seconds".into()).into());
    }
    let store = ctx.store()?;
    if args.remote.is_none() {
        store.require_tip()?;
    }
    // Evidence is never kept unredacted: bad redaction settings stop dispatch before any run.
    store.evidence_settings()?;
    let max_parallel = match args.max_parallel {
        Some(n) => usize::from(n),
        None => configured_parallelism(&store)?,
    };
    let opts = Options {
        max_parallel,
        watch: args.watch,
        poll: Duration::from_secs_f64(args.poll),
        remote: args.remote.clone(),
        // SAFETY: isatty only inspects the descriptor.
        live: args.watch && unsafe { libc::isatty(1) == 1 } && std::env::var("TERM").map_or(true, |t| t != "dumb"),
    };
    let stop = std::sync::Arc::new(StopSignal::default());
    // Crews run in their own process groups, so a Ctrl-C must not just kill
    // the dispatcher and orphan them: the first signal stops taking work and
    // lets running crews finish, a second stops them and releases their orders.
    // SAFETY: the handler only increments an atomic counter.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            loop {
                let n = SIGNALS.load(Ordering::SeqCst);
                if n >= 1 {
                    stop.drain.store(true, Ordering::SeqCst);
                }
                if n >= 2 {
                    stop.hard.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    }
    if args.woken {
        let mso_dir = runtime::worktree::mso_dir(store.common_dir());
        let out = &mut *ctx.out;
        let ran = runtime::exclusive::run_exclusive(&mso_dir, || {
            let outcome = runtime::dispatch(&ctx.dir, &opts, &stop, &mut *out)?;
            if let Some(role) = outcome.missing_crews.iter().next() {
                writeln!(out, "{}", missing_crew_message(role))?;
            }
            Ok(())
        })?;
        if !ran {
            writeln!(ctx.out, "another dispatcher is running here; it takes this wake")?;
        }
        return Ok(());
    }
    let outcome = runtime::dispatch(&ctx.dir, &opts, &stop, ctx.out)?;
    let idle = outcome.missing_crews.is_empty() && outcome.config_errors.is_empty() && outcome.backing_off.is_empty();
    if outcome.started == 0 && idle {
        writeln!(ctx.out, "nothing to dispatch")?;
    }
    for (id, at) in &outcome.backing_off {
        writeln!(
            ctx.out,
            "{id}  waits to be tried again until {} (retry_backoff_secs); dispatch then, or `git mso dispatch --watch`",
            crate::core::time::format_utc(*at)
        )?;
    }
    if let Some(role) = outcome.missing_crews.iter().next() {
        return Err(Error::Input(missing_crew_message(role)).into());
    }
    if let Some(why) = outcome.config_errors.iter().next() {
        return Err(Error::Input(format!("{why}; the order was left queued")).into());
    }
    if !outcome.failed.is_empty() {
        let ids: Vec<String> = outcome.failed.iter().map(|id| id.to_string()).collect();
        return Err(Error::Input(format!(
            "{} failed for good in this run: `git mso order show {}` says why",
            ids.join(", "),
            ids[0]
        ))
        .into());
    }
    Ok(())
}

/// `mso.dispatch.maxParallel` from git config: 1 to 64, 1 when unset.
fn configured_parallelism(store: &crate::store::Store) -> crate::error::Result<usize> {
    let config = store.repo().config_snapshot();
    let Some(text) = config.string("mso.dispatch.maxParallel") else { return Ok(1) };
    let text = text.to_string();
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err(Error::Input(format!(
            "mso.dispatch.maxParallel is {}; it takes a number from 1 to 64 (`git config mso.dispatch.maxParallel 4`)",
            crate::core::ids::shown(&text)
        ))),
    }
}
