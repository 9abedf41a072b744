//! `git mso logs`: a crew's log on this machine, followed while it runs.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use crate::core::report;
use crate::core::{OrderId, Role, TransitionError, text};
use crate::error::Error;

use super::Ctx;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  git mso logs FTR-0001\n  git mso logs FTR-0001 --role TST --attempt 2\n  git mso logs FTR-0001 --follow"
)]
pub struct Args {
    /// The order whose run to show.
    id: OrderId,
    /// The latest run of this role (default: the order's latest run).
    #[arg(long)]
    role: Option<Role>,
    /// The run at this attempt of the role.
    #[arg(long)]
    attempt: Option<u32>,
    /// The quality gate's log instead of the crew's.
    #[arg(long)]
    gate: bool,
    /// Keep printing what the crew writes until its run ends.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Print the log's bytes as they are; by default control characters and
    /// escape sequences are shown escaped, so a log cannot rewrite the terminal.
    #[arg(long)]
    raw: bool,
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let tip = store.require_tip()?;
    let order = store.order(&tip, &args.id)?.ok_or(TransitionError::UnknownOrder(args.id.clone()))?;
    let runs = report::runs(&order);
    let run = runs
        .iter()
        .rev()
        .find(|r| args.role.as_ref().is_none_or(|want| r.role == want) && args.attempt.is_none_or(|a| r.attempt == a))
        .ok_or_else(|| {
            Error::Input(format!(
                "{} has no run{}{}",
                order.id,
                args.role.as_ref().map(|r| format!(" of {r}")).unwrap_or_default(),
                args.attempt.map(|a| format!(" at attempt {a}")).unwrap_or_default()
            ))
        })?;
    let dir = crate::runtime::dispatch::run_dir_of(store.common_dir(), &order.id, run.role, run.attempt, run.number);
    let path = dir.join(if args.gate { "gate.log" } else { "crew.log" });
    // Only a regular file: never through a symlink a crew left, never a FIFO.
    let Some(mut file) = crate::runtime::crew::open_regular(&path) else {
        return Err(Error::Input(format!(
            "no log of run #{} ({} attempt {}) here: {} is missing (it ran on another machine ({}), or `git mso cleanup` removed it)",
            run.number,
            run.role,
            run.attempt,
            path.display(),
            text::line(run.runner)
        ))
        .into());
    };
    let mut pos = 0u64;
    let mut print = |file: &mut std::fs::File, pos: &mut u64| -> anyhow::Result<()> {
        file.seek(SeekFrom::Start(*pos))?;
        let mut chunk = Vec::new();
        file.take(1 << 20).read_to_end(&mut chunk)?;
        *pos += chunk.len() as u64;
        if args.raw {
            ctx.out.write_all(&chunk)?;
        } else {
            write!(ctx.out, "{}", text::display(&String::from_utf8_lossy(&chunk), true))?;
        }
        ctx.out.flush()?;
        Ok(())
    };
    loop {
        let before = pos;
        print(&mut file, &mut pos)?;
        if pos > before {
            continue;
        }
        if !args.follow || !still_running(&store, &order.id, run.number)? {
            // One last read: what was written as the run ended.
            return print(&mut file, &mut pos);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether the order's `number`-th run has not ended yet.
fn still_running(store: &crate::store::Store, id: &OrderId, number: usize) -> crate::error::Result<bool> {
    let tip = store.require_tip()?;
    let Some(order) = store.order(&tip, id)? else { return Ok(false) };
    Ok(report::runs(&order).get(number - 1).is_some_and(|r| r.ended.is_none()))
}

impl Args {
    /// Whether it follows a running log (no pager then).
    pub fn follows(&self) -> bool {
        self.follow
    }
}
