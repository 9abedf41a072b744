//! `git mso completions SHELL`: shell completion scripts.

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, Ctx};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  git mso completions bash > ~/.local/share/bash-completion/completions/git-mso\n  git mso completions zsh > ~/.zfunc/_git-mso"
)]
pub struct Args {
    shell: Shell,
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    // Generated whole, then written: clap_complete panics on a write error,
    // and a reader that stops early (`| head`) is no reason to panic.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "git-mso", &mut script);
    ctx.out.write_all(&script)?;
    Ok(())
}
