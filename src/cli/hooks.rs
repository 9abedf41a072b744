//! `git mso hooks install|uninstall|status`, and the hidden `git mso hook <name>`.

use std::io::Read;

use clap::Subcommand;

use crate::hooks::{self, HOOKS, HookState};

use super::Ctx;

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Install the hooks: reference-transaction on a client, pre-/post-receive with --server.
    #[command(after_help = "\
A hook already there is kept as <hook>.mso-chained and still runs first; installing again is
harmless; core.hooksPath is honoured.

Server (a bare repository the team pushes to):
  git mso hooks install --server
  git config mso.server.dispatch true       # optional: run crews on the server when work is pushed
  git config mso.server.pusherEnv GL_USER   # optional: every pushed event must be the pusher's own
  git config mso.server.maxSkew 5m          # optional: how far event times may be from the server's clock
  git config mso.server.timeBudget 60s      # optional: how long validating one push may take

The pre-receive hook checks refs/mso/ledger (the same replay as the writer and fsck, plus the pusher
and the clock), refs/heads/voyage/* (they move only as the ledger allows), refs/notes/mso (plain,
bounded notes) and refuses other refs under refs/mso/. See the README's Trust section.

Client (a clone that runs crews):
  git mso hooks install
  git config mso.dispatch.auto true         # wake the dispatcher when a fetch moves the ledger

Examples:
  git mso hooks install --server
  git mso hooks install")]
    Install(InstallArgs),
    /// Remove git-mso's hooks and restore the ones they chained.
    #[command(after_help = "Examples:\n  git mso hooks uninstall")]
    Uninstall,
    /// Show which hooks are installed.
    #[command(after_help = "Examples:\n  git mso hooks status")]
    Status,
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Install the server hooks (pre-receive validation, post-receive dispatch).
    #[arg(long)]
    server: bool,
}

/// `git mso hook <name> [args]`: what the shims call. Reads the hook's stdin.
#[derive(Debug, clap::Args)]
pub struct HookArgs {
    name: String,
    args: Vec<String>,
}

pub fn run(cmd: HooksCommand, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let dir = hooks::hooks_dir(&store);
    match cmd {
        HooksCommand::Install(args) => {
            let binary = std::env::current_exe()?;
            for hook in HOOKS.iter().filter(|h| h.server == args.server) {
                let said = hooks::install(&dir, hook, &binary)?;
                writeln!(ctx.out, "{:<22} {said}", hook.name)?;
            }
            writeln!(ctx.out, "hooks in {} call {}", dir.display(), binary.display())?;
            if args.server {
                // git logs no ref updates in a bare repository unless the log
                // file exists: with it, every push that moves the ledger is in
                // its reflog, and `git mso fsck` can see a rollback.
                let log = store.common_dir().join("logs").join(crate::store::LEDGER_REF);
                if !log.exists() {
                    std::fs::create_dir_all(log.parent().expect("a reflog path has a parent"))?;
                    std::fs::File::create(&log)?;
                    writeln!(ctx.out, "reflog of refs/mso/ledger kept in {}", log.display())?;
                }
            }
        }
        HooksCommand::Uninstall => {
            for hook in &HOOKS {
                writeln!(ctx.out, "{:<22} {}", hook.name, hooks::uninstall(&dir, hook)?)?;
            }
        }
        HooksCommand::Status => {
            for hook in &HOOKS {
                let said = match hooks::state(&dir, hook) {
                    HookState::Missing => "not installed",
                    HookState::Ours { chained: false } => "installed",
                    HookState::Ours { chained: true } => "installed, chaining a previous hook",
                    HookState::Foreign => "a hook that is not git-mso's",
                };
                writeln!(ctx.out, "{:<22} {said}", hook.name)?;
            }
            writeln!(ctx.out, "hooks directory: {}", dir.display())?;
        }
    }
    Ok(())
}

pub fn run_hook(args: HookArgs, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    match args.name.as_str() {
        "pre-receive" => {
            let mut store = ctx.store()?;
            if !hooks::pre_receive(&mut store, &input, &mut std::io::stderr())? {
                std::process::exit(1);
            }
        }
        "post-receive" => {
            let store = ctx.store()?;
            hooks::post_receive(&store, &input, &mut std::io::stderr())?;
        }
        "reference-transaction" => {
            // Never make git fail: errors are logged, not returned.
            let state = args.args.first().map(String::as_str).unwrap_or_default();
            if let Err(e) = ctx.store().and_then(|store| hooks::reference_transaction(&store, state, &input)) {
                tracing::warn!("reference-transaction hook: {e}");
            }
        }
        other => return Err(crate::error::Error::Input(format!("unknown hook '{other}'")).into()),
    }
    Ok(())
}
