//! `git mso sync`: exchange the ledger, voyage branches and notes with a remote.

use super::Ctx;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Fetches into refs/remotes/<remote>/mso/ledger (never straight into the live ledger), validates
what arrived, fast-forwards or replays local transactions on top (re-validating each; an order id
taken on the remote is renumbered and reported; a transaction that is no longer legal is reported
and left out), then pushes with --atomic and a lease, never a forced update. Voyage branches and
refs/notes/mso travel too (notes are merged, never clobbered). A plain `git clone` gets the whole
pipeline with one `git mso sync`.

Examples:
  git mso sync
  git mso sync --remote upstream")]
pub struct Args {
    /// The remote to exchange with.
    #[arg(long, default_value = "origin")]
    remote: String,
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let dir = store.top_dir();
    let report = crate::sync::sync(&dir, &args.remote)?;
    crate::sync::print(&report, ctx.out)?;
    let store = ctx.store()?;
    match store.tip()? {
        Some(tip) => {
            writeln!(ctx.out, "in sync with {}: refs/mso/ledger at {}", args.remote, crate::store::short(tip.commit))?
        }
        None => writeln!(ctx.out, "{} has no ledger yet; run `git mso init` to start one", args.remote)?,
    }
    Ok(())
}
