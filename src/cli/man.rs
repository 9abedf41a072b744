//! `git mso man`: manual pages generated from the command definitions,
//! so `git mso --help` and `git help mso` (which run `man git-mso`) work.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::{Cli, Ctx};
use crate::error::Error;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  git mso man --install            # next to the binary: <prefix>/share/man/man1\n  \
git mso man --install --dir ~/.local/share/man/man1\n  git mso man | man -l -            # read it without installing\n\n\
`man` finds pages in <prefix>/share/man for every <prefix>/bin on PATH, so the default place works \
for `cargo install` (~/.cargo/share/man) without setting MANPATH. Then `git mso --help`, \
`git help mso` and `man git-mso-order` show them."
)]
pub struct Args {
    /// Write git-mso.1 and one page per subcommand (git-mso-order.1, …) instead of printing git-mso.1.
    #[arg(long)]
    install: bool,
    /// Where --install writes the pages (default: <prefix>/share/man/man1 beside the binary).
    #[arg(long, value_name = "DIR", requires = "install")]
    dir: Option<PathBuf>,
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let root = page_command();
    if !args.install {
        clap_mangen::Man::new(root).render(ctx.out)?;
        return Ok(());
    }
    let dir = match args.dir {
        Some(dir) => dir,
        None => default_dir()?,
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let mut written = 0;
    for (name, command) in pages(root) {
        let path = dir.join(format!("{name}.1"));
        let mut page = Vec::new();
        clap_mangen::Man::new(command).render(&mut page)?;
        std::fs::write(&path, page).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        written += 1;
    }
    writeln!(ctx.out, "wrote {written} manual pages to {}", dir.display())?;
    writeln!(ctx.out, "try: git mso --help   (or: man git-mso-order)")?;
    if !on_manpath(&dir) {
        writeln!(
            ctx.out,
            "note: man may not look in {}; add its parent to MANPATH (export MANPATH=\"{}:\")",
            dir.display(),
            dir.parent().unwrap_or(&dir).display()
        )?;
    }
    Ok(())
}

/// The command tree as the pages name it: `git-mso`, the way `man` is asked for it.
fn page_command() -> clap::Command {
    Cli::command().name("git-mso").bin_name("git-mso").display_name("git-mso")
}

/// `git-mso` and every visible subcommand, nested ones too (`git-mso-order-new`).
fn pages(root: clap::Command) -> Vec<(String, clap::Command)> {
    let mut out = Vec::new();
    let mut stack = vec![("git-mso".to_string(), root)];
    while let Some((name, command)) = stack.pop() {
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            let sub_name = format!("{name}-{}", sub.get_name());
            stack.push((sub_name.clone(), sub.clone().name(sub_name)));
        }
        out.push((name, command));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `<prefix>/share/man/man1` for the binary at `<prefix>/bin/git-mso`.
fn default_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // Only a binary in `<prefix>/bin` says where its pages go.
    let prefix =
        exe.parent().filter(|dir| dir.file_name().is_some_and(|n| n == "bin")).and_then(Path::parent).ok_or_else(
            || {
                Error::Input(format!(
                    "{} is not in a bin directory, so its manual pages have no obvious place; give one: \
                 git mso man --install --dir ~/.local/share/man/man1",
                    exe.display()
                ))
            },
        )?;
    Ok(prefix.join("share").join("man").join("man1"))
}

/// Whether `man` looks in `dir` (`…/man1` under MANPATH, or beside a PATH entry).
fn on_manpath(dir: &Path) -> bool {
    let Some(base) = dir.parent() else { return false };
    let listed = |var: &str| std::env::var_os(var).is_some_and(|v| std::env::split_paths(&v).any(|p| p == base));
    let beside_path = std::env::var_os("PATH").is_some_and(|v| {
        std::env::split_paths(&v).any(|p| p.parent().is_some_and(|prefix| prefix.join("share/man") == base))
    });
    listed("MANPATH") || beside_path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_subcommand_gets_a_page() {
        let names: Vec<String> = pages(page_command()).into_iter().map(|(n, _)| n).collect();
        for want in ["git-mso", "git-mso-order", "git-mso-order-new", "git-mso-dispatch", "git-mso-man"] {
            assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        }
        assert!(!names.iter().any(|n| n.ends_with("-hook") || n.ends_with("-help")), "{names:?}");
    }
}
