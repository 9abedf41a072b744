//! `git mso notes rebuild`: regenerate refs/notes/mso from the ledger.

use clap::Subcommand;

use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum NotesCommand {
    /// Regenerate every note on voyage commits from the ledger (notes are a derived mirror).
    #[command(after_help = "Examples:\n  git mso notes rebuild\n  git log --notes=mso voyage/VOY-0001")]
    Rebuild,
}

pub fn run(cmd: NotesCommand, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    match cmd {
        NotesCommand::Rebuild => {
            let store = ctx.store()?;
            let count = store.rebuild_notes()?;
            writeln!(
                ctx.out,
                "rebuilt refs/notes/mso: notes on {count} commits (see git log --notes=mso voyage/VOY-0001)"
            )?;
        }
    }
    Ok(())
}
