//! The command line: one file per command, each an `Args` struct and a `run`
//! function writing to the writer it is given.

mod board;
mod cleanup;
mod completions;
mod config;
mod cost;
mod crews;
mod dispatch;
mod fsck;
mod gc;
mod hooks;
mod init;
mod log;
mod logs;
mod man;
mod notes;
mod order;
mod output;
mod review;
mod status;
mod sync;
mod undo;
mod voyage;

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::store::Store;

const ABOUT: &str = "Git-native orchestrator for staged work: orders walk roles (PLN → BLD → TST …), \
crews run in voyage worktrees, humans approve between roles — all state in refs/mso/ledger.";

const AFTER_HELP: &str = "\
Every change is one commit on refs/mso/ledger; read it with plain git too:
  git log --oneline refs/mso/ledger
  git show refs/mso/ledger:orders/FTR-00/FTR-0001.json

Exit codes: 0 ok, 1 error, 2 usage, 3 the ledger kept moving under us (safe to re-run).
Set MSO_LOG=debug to see what happens underneath.";

#[derive(Debug, Parser)]
#[command(name = "git-mso", bin_name = "git mso", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// Run as if started in this directory.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Send the output through git's pager even when it is not a terminal.
    #[arg(short = 'p', long, global = true, conflicts_with = "no_pager")]
    pub paginate: bool,
    /// Never use a pager (long reading commands use git's on a terminal).
    #[arg(short = 'P', long, global = true)]
    pub no_pager: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create refs/mso/ledger with the default pipeline configuration.
    Init(init::Args),
    /// File, list, show, cancel and retry orders.
    #[command(subcommand)]
    Order(order::OrderCommand),
    /// Create and list voyages (the branches orders are built on).
    #[command(subcommand)]
    Voyage(voyage::VoyageCommand),
    /// Run crews for queued orders, role by role, in voyage worktrees.
    Dispatch(dispatch::Args),
    /// Approve or reject orders waiting at a review gate.
    #[command(subcommand)]
    Review(review::ReviewCommand),
    /// Orders per role and status.
    Status(status::Args),
    /// The ledger's history, newest first.
    Log(log::Args),
    /// Print a crew's log (the latest run, or one role's or attempt's), following it while it runs.
    Logs(logs::Args),
    /// What the crews' runs took: tokens, dollars, turns and time, summed from the ledger.
    Cost(cost::Args),
    /// Replay the ledger from its root and check every commit.
    Fsck(fsck::Args),
    /// Show or change the pipeline configuration stored in the ledger.
    Config(config::Args),
    /// Take back the last transaction you wrote, by appending the events that compensate for it.
    Undo(undo::Args),
    /// Remove crew worktrees, briefs and logs (never the ledger).
    Cleanup(cleanup::Args),
    /// Maintain refs/notes/mso, the mirror of the ledger on voyage commits.
    #[command(subcommand)]
    Notes(notes::NotesCommand),
    /// Exchange the ledger, voyage branches and notes with a remote.
    Sync(sync::Args),
    /// Install, remove or inspect git-mso's git hooks.
    #[command(subcommand)]
    Hooks(hooks::HooksCommand),
    /// Pack the ledger's loose objects and write a commit-graph.
    Gc(gc::Args),
    /// Print a shell completion script.
    Completions(completions::Args),
    /// The crews and forge adapters that ship with git-mso, in one stable place.
    #[command(subcommand)]
    Crews(crews::CrewsCommand),
    /// The pipeline at a glance: role columns on the terminal, or a self-contained HTML page.
    Board(board::Args),
    /// Print or install the manual pages (`git mso --help` and `git help mso` show them).
    Man(man::Args),
    /// What the installed hook shims call.
    #[command(hide = true)]
    Hook(hooks::HookArgs),
}

impl Command {
    /// Whether the command prints something to read, long enough for a
    /// pager on a terminal (as `git log` does): never one that writes, runs
    /// crews, or follows a log.
    pub fn pages(&self) -> bool {
        match self {
            Command::Log(_) | Command::Cost(_) | Command::Fsck(_) => true,
            Command::Logs(args) => !args.follows(),
            Command::Board(args) => !args.writes_file(),
            // Reading subcommands only, named: publish pushes and may prompt.
            Command::Order(c) => matches!(c, order::OrderCommand::List(_) | order::OrderCommand::Show(_)),
            Command::Voyage(c) => matches!(c, voyage::VoyageCommand::List(_) | voyage::VoyageCommand::Show(_)),
            Command::Review(c) => matches!(c, review::ReviewCommand::List(_) | review::ReviewCommand::Show(_)),
            _ => false,
        }
    }

    /// Whether a refusal of this command means nothing was written (the error says so).
    /// Not for dispatch: it may have run other orders before reporting a problem.
    pub fn writes(&self) -> bool {
        match self {
            Command::Init(_) | Command::Undo(_) => true,
            Command::Order(c) => c.writes(),
            Command::Voyage(c) => c.writes(),
            Command::Config(c) => c.writes(),
            Command::Review(c) => c.writes(),
            Command::Dispatch(_)
            | Command::Cleanup(_)
            | Command::Notes(_)
            | Command::Hooks(_)
            | Command::Hook(_)
            | Command::Sync(_)
            | Command::Completions(_)
            | Command::Man(_)
            | Command::Board(_)
            | Command::Crews(_)
            | Command::Gc(_)
            | Command::Status(_)
            | Command::Log(_)
            | Command::Logs(_)
            | Command::Cost(_)
            | Command::Fsck(_) => false,
        }
    }
}

/// Colour terminal output or not (see `output::paint_status`).
pub fn set_colour(on: bool) {
    output::set_colour(on);
}

/// What every command gets: where it runs and where it writes.
pub struct Ctx<'a> {
    pub dir: PathBuf,
    pub out: &'a mut dyn Write,
}

impl Ctx<'_> {
    pub fn store(&self) -> crate::error::Result<Store> {
        Store::discover(&self.dir)
    }
}

/// Run one parsed command line.
pub fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = match cli.dir {
        Some(dir) => dir,
        None => std::env::current_dir()?,
    };
    let mut ctx = Ctx { dir, out };
    match cli.command {
        Command::Init(args) => init::run(args, &mut ctx),
        Command::Order(cmd) => order::run(cmd, &mut ctx),
        Command::Voyage(cmd) => voyage::run(cmd, &mut ctx),
        Command::Review(cmd) => review::run(cmd, &mut ctx),
        Command::Dispatch(args) => dispatch::run(args, &mut ctx),
        Command::Cleanup(args) => cleanup::run(args, &mut ctx),
        Command::Notes(cmd) => notes::run(cmd, &mut ctx),
        Command::Hooks(cmd) => hooks::run(cmd, &mut ctx),
        Command::Sync(args) => sync::run(args, &mut ctx),
        Command::Completions(args) => completions::run(args, &mut ctx),
        Command::Man(args) => man::run(args, &mut ctx),
        Command::Board(args) => board::run(args, &mut ctx),
        Command::Crews(cmd) => crews::run(cmd, &mut ctx),
        Command::Gc(args) => gc::run(args, &mut ctx),
        Command::Hook(args) => hooks::run_hook(args, &mut ctx),
        Command::Status(args) => status::run(args, &mut ctx),
        Command::Log(args) => log::run(args, &mut ctx),
        Command::Logs(args) => logs::run(args, &mut ctx),
        Command::Cost(args) => cost::run(args, &mut ctx),
        Command::Fsck(args) => fsck::run(args, &mut ctx),
        Command::Config(args) => config::run(args, &mut ctx),
        Command::Undo(args) => undo::run(args, &mut ctx),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command a user can run, with its path (`order new`).
    fn leaves(command: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        let visible: Vec<&clap::Command> =
            command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help").collect();
        if visible.is_empty() {
            out.push((path.clone(), command.clone()));
        }
        for sub in visible {
            let name = if path.is_empty() { sub.get_name().to_string() } else { format!("{path} {}", sub.get_name()) };
            leaves(sub, name, out);
        }
    }

    #[test]
    fn only_reading_commands_are_paged() {
        use clap::Parser;
        let pages =
            |args: &[&str]| Cli::parse_from(std::iter::once("git-mso").chain(args.iter().copied())).command.pages();
        for reading in [
            &["log"][..],
            &["order", "list"],
            &["order", "show", "FTR-0001"],
            &["voyage", "show", "VOY-0001"],
            &["board"],
            &["fsck"],
        ] {
            assert!(pages(reading), "{reading:?} is not paged");
        }
        for other in [
            &["voyage", "publish", "VOY-0001"][..],
            &["order", "new", "--title", "t"],
            &["review", "approve", "FTR-0001"],
            &["dispatch"],
            &["logs", "FTR-0001", "--follow"],
            &["board", "--html", "b.html"],
            &["config"],
        ] {
            assert!(!pages(other), "{other:?} is paged");
        }
    }

    #[test]
    fn every_command_teaches_by_example_and_every_argument_says_what_it_is() {
        let root = Cli::command();
        root.clone().debug_assert();
        let mut all = Vec::new();
        leaves(&root, String::new(), &mut all);
        let mut missing = Vec::new();
        for (path, command) in &all {
            let after = command.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            if !after.contains("Example") {
                missing.push(format!("`git mso {path}` has no examples"));
            }
            for arg in command.get_arguments().filter(|a| !a.is_hide_set() && !a.is_global_set()) {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("`git mso {path}`: argument {id} has no help"));
                }
            }
        }
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }
}
