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
second one stops them and releases their orders (FAILED, queued again while attempts remain).")]
pub struct Args {
    /// Run until no work is ready, then exit (the default).
    #[arg(long, conflicts_with = "watch")]
    once: bool,
    /// Keep running and pick up new work as it is queued.
    #[arg(long)]
    watch: bool,
    /// Crews to run at once (each on a different voyage).
    #[arg(long, default_value_t = 1, value_name = "N")]
    max_parallel: usize,
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

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    if !(0.01..=3600.0).contains(&args.poll) {
        return Err(Error::Input("--poll must be between 0.01 and 3600 seconds".into()).into());
    }
    if args.remote.is_none() {
        ctx.store()?.require_tip()?;
    }
    let opts = Options {
        max_parallel: args.max_parallel,
        watch: args.watch,
        poll: Duration::from_secs_f64(args.poll),
        remote: args.remote.clone(),
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
    let outcome = runtime::dispatch(&ctx.dir, &opts, &stop, ctx.out)?;
    if outcome.started == 0 && outcome.missing_crews.is_empty() {
        writeln!(ctx.out, "nothing to dispatch")?;
    }
    if let Some(role) = outcome.missing_crews.iter().next() {
        return Err(Error::Input(missing_crew_message(role)).into());
    }
    Ok(())
}
