//! `git mso crews`: the crews and forge adapters that ship with git-mso,
//! installed in one stable place so a command can name them from any
//! repository (`$(git mso crews path)/claude-code.sh`).

use std::path::{Path, PathBuf};

use super::Ctx;
use crate::error::Error;

/// Every shipped script, as this binary was built with it.
const SHIPPED: &[(&str, &str)] = &[
    ("adapter-lib.sh", include_str!("../../scripts/crews/adapter-lib.sh")),
    ("aider.sh", include_str!("../../scripts/crews/aider.sh")),
    ("claude-code.sh", include_str!("../../scripts/crews/claude-code.sh")),
    ("codex.sh", include_str!("../../scripts/crews/codex.sh")),
    ("demo-build.sh", include_str!("../../scripts/crews/demo-build.sh")),
    ("demo-plan.sh", include_str!("../../scripts/crews/demo-plan.sh")),
    ("demo-test.sh", include_str!("../../scripts/crews/demo-test.sh")),
    ("gemini.sh", include_str!("../../scripts/crews/gemini.sh")),
    ("gh-pr.sh", include_str!("../../scripts/crews/gh-pr.sh")),
    ("glab-mr.sh", include_str!("../../scripts/crews/glab-mr.sh")),
];

#[derive(Debug, clap::Subcommand)]
pub enum CrewsCommand {
    /// Install the shipped crews (again, if this git-mso ships newer ones) and print their directory.
    #[command(after_help = "Examples:\n  git config mso.crew.BLD.command \"$(git mso crews path)/claude-code.sh\"\n  \
git config mso.crew.PLN.command \"$(git mso crews path)/demo-plan.sh\"\n  \
git config mso.publish.command \"$(git mso crews path)/gh-pr.sh\"\n\n\
The directory is $XDG_DATA_HOME/git-mso/crews (~/.local/share/git-mso/crews), or --dir.")]
    Path {
        /// Install into this directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// List the shipped crews and what each is for.
    #[command(after_help = "Examples:\n  git mso crews list")]
    List,
}

pub fn run(command: CrewsCommand, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    match command {
        CrewsCommand::Path { dir } => {
            let dir = match dir {
                Some(dir) => dir,
                None => default_dir()?,
            };
            install(&dir)?;
            writeln!(ctx.out, "{}", dir.display())?;
        }
        CrewsCommand::List => {
            for (name, script) in SHIPPED {
                // The first comment line after the shebang says what it is.
                let what = script.lines().skip(1).find_map(|l| l.strip_prefix("# ")).unwrap_or_default();
                writeln!(ctx.out, "{name:<16} {what}")?;
            }
        }
    }
    Ok(())
}

fn default_dir() -> anyhow::Result<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or_else(|| Error::Input("neither XDG_DATA_HOME nor HOME is set; give --dir".into()))?;
    Ok(data.join("git-mso").join("crews"))
}

/// Write every shipped script whose content differs, executable.
fn install(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    for (name, script) in SHIPPED {
        let path = dir.join(name);
        let current = || std::fs::read(&path).ok().as_deref() == Some(script.as_bytes());
        if current() {
            continue;
        }
        // Written whole under a name of its own (never a file another
        // install writes, never through a planted link), then renamed into
        // place: a crew starting it sees the old script or the new one.
        let fresh = dir.join(format!(".{name}.{}.{}", std::process::id(), crate::store::random_u64()));
        let written = (|| {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o755).open(&fresh)?;
            file.write_all(script.as_bytes())?;
            file.set_permissions(std::fs::Permissions::from_mode(0o755))?;
            std::fs::rename(&fresh, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&fresh);
            // Another install may have put the same script there meanwhile.
            if !current() {
                return Err(Error::io(format!("installing {}", path.display()), e).into());
            }
        }
    }
    Ok(())
}
