//! `git mso init`

use crate::core::{Config, EventBody, PersonaSet, TransitionError};
use crate::error::Error;

use super::Ctx;
use super::output::sequence;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "A second `init` changes nothing. Change the pipeline later with `git mso config`.\n\nExamples:\n  git mso init\n  git mso init --persona-set heist"
)]
pub struct Args {
    /// Display names for the roles.
    #[arg(long, value_enum)]
    persona: Option<PersonaSet>,
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    // In a clone, make fetches bring the pipeline along (into remote-tracking refs).
    let dir = store.top_dir();
    if crate::gitcli::git(&dir, &["remote", "get-url", "origin"]).is_ok()
        && crate::sync::ensure_refspecs(&dir, "origin")?
    {
        writeln!(ctx.out, "configured origin to fetch refs/mso/* and refs/notes/mso (use `git mso sync` to exchange)")?;
    }
    // Whoever initializes is the first admin: only admins change the pipeline.
    let mut config = Config::initial(&store.identity().actor);
    if let Some(persona) = args.persona {
        config.persona_set = persona;
    }
    let result = store.transact(|tx| {
        if tx.is_initialized() {
            return Err(TransitionError::AlreadyInitialized.into());
        }
        tx.push(EventBody::Init { config: config.clone() })
    });
    match result {
        Ok(_) => {
            let ftr = &config.kinds[0];
            let gates: Vec<String> = ftr.gates.iter().map(|g| g.to_string()).collect();
            writeln!(
                ctx.out,
                "initialized refs/mso/ledger: roles {}, review after {}, persona {}, admin {}",
                sequence(&ftr.sequence, &[]),
                gates.join(", "),
                config.persona_set.as_str(),
                config.admins.join(", ")
            )?;
            writeln!(ctx.out, "next: git mso order new --title \"...\"")?;
            Ok(())
        }
        Err(Error::Transition(TransitionError::AlreadyInitialized)) => {
            let tip = store.require_tip()?;
            writeln!(
                ctx.out,
                "already initialized (refs/mso/ledger at {}); nothing changed",
                crate::store::short(tip.commit)
            )?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
