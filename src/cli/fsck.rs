//! `git mso fsck`: replay the ledger from its root; report the first divergence.

use serde::Serialize;

use crate::error::Error;

use super::Ctx;
use super::output;

#[derive(Debug, clap::Args)]
#[command(after_help = "Checks that the ledger is linear, every message parses, every event is a legal \
transition, event ids are unique, and every commit's tree equals the state its events produce. \
Exits 1 on the first problem and names the commit; nothing is repaired.")]
pub struct Args {
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
}

#[derive(Debug, Serialize)]
struct Problem {
    commit: String,
    reason: String,
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let report = match store.fsck()? {
        Ok(done) => Report {
            ok: true,
            commits: done.commits,
            events: done.events,
            missing_commits: done.missing_objects,
            problem: None,
        },
        Err(p) => Report {
            ok: false,
            commits: 0,
            events: 0,
            missing_commits: 0,
            problem: Some(Problem { commit: p.commit.to_string(), reason: p.reason }),
        },
    };
    if args.json {
        output::json(ctx.out, &report)?;
    } else if report.ok {
        writeln!(
            ctx.out,
            "ok: {} commits, {} events, every tree equals the replayed state",
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
    match report.problem {
        None => Ok(()),
        Some(p) => Err(Error::Corrupt { commit: p.commit[..7].to_string(), reason: p.reason }.into()),
    }
}
