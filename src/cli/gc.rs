//! `git mso gc`: pack the objects ledger appends leave loose.

use crate::gitcli::git;

use super::Ctx;

#[derive(Debug, clap::Args)]
#[command(after_help = "Every append writes a few small loose objects; once there are more than git's own \
threshold (gc.auto), an append starts `git gc --auto` in the background. This command packs now and writes \
a commit-graph, which speeds up `git mso log` and `fsck` on long ledgers.\n\nExamples:\n  git mso gc")]
pub struct Args {}

fn loose_objects(dir: &std::path::Path) -> anyhow::Result<String> {
    let counts = git(dir, &["count-objects", "-v"])?;
    let field =
        |name: &str| counts.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or("?").to_string();
    Ok(format!("{} loose objects ({} KiB), {} packs", field("count:"), field("size:"), field("packs:")))
}

pub fn run(_args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let dir = store.top_dir();
    let before = loose_objects(&dir)?;
    git(&dir, &["gc", "--quiet"])?;
    git(&dir, &["commit-graph", "write", "--reachable"])?;
    writeln!(ctx.out, "before: {before}")?;
    writeln!(ctx.out, "after:  {}", loose_objects(&dir)?)?;
    Ok(())
}
