//! `git mso cleanup`: remove machine-local files. Never touches the ledger.

use crate::core::Status;
use crate::runtime::{crew, worktree};

use super::Ctx;

#[derive(Debug, clap::Args)]
#[command(after_help = "Removes crew worktrees, briefs, results and logs under <git dir>/mso. \
refs/mso/ledger and refs/notes/mso are never touched, so cleanup cannot change what is dispatched next. \
Worktrees of crews still running on this host are kept.

Examples:
  git mso cleanup")]
pub struct Args {}

pub fn run(_args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let common = store.common_dir().to_path_buf();
    let host = crate::store::host();
    let mut keep = Vec::new();
    let mut keep_orders = Vec::new();
    if let Some(tip) = store.tip()? {
        for s in store.summaries(&tip)?.into_iter().filter(|s| s.status == Status::Running) {
            let lease = store.order(&tip, &s.id)?.and_then(|o| o.lease);
            if lease.is_some_and(|l| l.host == host && crew::pid_alive(l.pid)) {
                keep.push(s.voyage);
                keep_orders.push(format!("{}-", s.id));
            }
        }
    }
    let removed = worktree::remove_all(&common, &keep)?;
    let runs = worktree::mso_dir(&common).join("runs");
    let mut run_dirs = 0;
    if let Ok(entries) = std::fs::read_dir(&runs) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if keep_orders.iter().any(|prefix| name.starts_with(prefix.as_str())) {
                continue;
            }
            std::fs::remove_dir_all(entry.path())?;
            run_dirs += 1;
        }
    }
    writeln!(ctx.out, "removed {removed} worktrees and {run_dirs} run directories; the ledger is untouched")?;
    if !keep.is_empty() {
        let kept: Vec<String> = keep.iter().map(|v| v.to_string()).collect();
        writeln!(ctx.out, "kept worktrees of running crews: {}", kept.join(", "))?;
    }
    Ok(())
}
