//! `git mso gc`: pack everything into one pack, now.

use crate::gitcli::git;

use super::Ctx;

#[derive(Debug, clap::Args)]
#[command(after_help = "Every append writes its objects as one small pack, and rolls small packs up in \
the background once there are many (`git repack --geometric=2`), or starts `git gc --auto` past git's own \
threshold of loose objects. Where nothing would roll packs up (gc.auto 0, a partial clone, precious \
objects, a gc.autoPackLimit below 12, or as many packs as it allows already), appends write loose objects. This \
command runs a full `git gc` now (packs everything into one, with deltas, and prunes what no ref needs) \
and writes a commit-graph, which speeds up `git mso log` and `fsck` on long ledgers.\n\nExamples:\n  git mso gc")]
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
