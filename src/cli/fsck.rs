//! `git mso fsck`: replay the ledger from its root; report the first divergence.

use serde::Serialize;

use crate::error::Error;

use super::Ctx;
use super::output;

#[derive(Debug, clap::Args)]
#[command(after_help = "Checks that the ledger is linear, every message parses, every event is a legal \
transition, event ids are unique, every commit's tree equals the state its events produce, and every \
ledger commit and every object of the tip's tree hashes to its id. Warns when the reflog shows \
refs/mso/ledger moved backwards (events left behind). Exits 1 on the first problem and names the \
commit; nothing is repaired.

Examples:
  git mso fsck
  git mso fsck --json")]
pub struct Args {
    /// The report as JSON (with any warnings).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    commits: u64,
    events: u64,
    /// Commits the ledger names that this repository lacks (not an error: see the README).
    missing_commits: u64,
    problem: Option<Problem>,
    /// Things that are not corruption but need a person: a ledger that moved backwards.
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Problem {
    commit: String,
    reason: String,
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let warnings = store.ledger_rollbacks()?;
    let mut report = match store.fsck()? {
        Ok(done) => Report {
            ok: true,
            commits: done.commits,
            events: done.events,
            missing_commits: done.missing_objects,
            problem: None,
            warnings: Vec::new(),
        },
        Err(p) => Report {
            ok: false,
            commits: 0,
            events: 0,
            missing_commits: 0,
            problem: Some(Problem { commit: p.commit.to_string(), reason: p.reason }),
            warnings: Vec::new(),
        },
    };
    report.warnings = warnings;
    if args.json {
        output::json(ctx.out, &report)?;
    } else if report.ok {
        writeln!(
            ctx.out,
            "ok: {} commits, {} events, every tree equals the replayed state, every object at the tip matches its id",
            report.commits, report.events
        )?;
        if report.missing_commits > 0 {
            writeln!(
                ctx.out,
                "note: {} commit(s) the ledger names are not in this repository (deleted voyage branches, or refs \
                 this clone does not fetch); they were checked when the server accepted them",
                report.missing_commits
            )?;
        }
    }
    if !args.json {
        for warning in &report.warnings {
            writeln!(ctx.out, "warning: {warning}")?;
        }
    }
    match report.problem {
        None => Ok(()),
        Some(p) => Err(Error::Corrupt { commit: p.commit[..7].to_string(), reason: p.reason }.into()),
    }
}
