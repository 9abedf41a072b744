//! `git mso status`: orders per role and status, from one blob.

use serde::Serialize;

use crate::core::Status;

use super::Ctx;
use super::output;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  git mso status\n  git mso status --all     # also roles no kind uses\n  git mso status --json"
)]
pub struct Args {
    /// Counts as JSON (every role).
    #[arg(long)]
    json: bool,
    /// Show every role, also those no kind's sequence uses and no order is at.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Serialize)]
struct RoleRow {
    role: String,
    persona: String,
    queued: u64,
    running: u64,
    review: u64,
    failed: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    ledger: String,
    orders: u64,
    events: u64,
    roles: Vec<RoleRow>,
    completed: u64,
    cancelled: u64,
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let tip = store.require_tip()?;
    let config = store.config(&tip)?;
    let stats = store.stats(&tip)?;
    let roles = config
        .roles
        .iter()
        .map(|r| RoleRow {
            role: r.code.to_string(),
            persona: config.persona(&r.code).to_string(),
            queued: stats.count(&r.code, Status::Queued),
            running: stats.count(&r.code, Status::Running),
            review: stats.count(&r.code, Status::Review),
            failed: stats.count(&r.code, Status::Failed),
        })
        .collect();
    let report = Report {
        ledger: tip.commit.to_string(),
        orders: stats.orders,
        events: stats.events,
        roles,
        completed: stats.total(Status::Completed),
        cancelled: stats.total(Status::Cancelled),
    };
    if args.json {
        return output::json(ctx.out, &report);
    }
    // A role no kind walks, with no order at it, is noise on a first look.
    let used = |r: &RoleRow| {
        config.kinds.iter().any(|k| k.sequence.iter().any(|s| s.as_str() == r.role))
            || r.queued + r.running + r.review + r.failed > 0
    };
    let hidden = if args.all { 0 } else { report.roles.iter().filter(|r| !used(r)).count() };
    let rows: Vec<Vec<String>> = report
        .roles
        .iter()
        .filter(|r| args.all || used(r))
        .map(|r| {
            vec![
                r.role.clone(),
                r.persona.clone(),
                r.queued.to_string(),
                r.running.to_string(),
                r.review.to_string(),
                r.failed.to_string(),
            ]
        })
        .collect();
    output::table(ctx.out, &["ROLE", "PERSONA", "QUEUED", "RUNNING", "REVIEW", "FAILED"], &rows)?;
    writeln!(
        ctx.out,
        "completed {}  cancelled {}  ({} orders, {} events, ledger {})",
        report.completed,
        report.cancelled,
        report.orders,
        report.events,
        crate::store::short(tip.commit)
    )?;
    if hidden > 0 {
        writeln!(ctx.out, "{hidden} role(s) no kind uses are not shown (--all shows them)")?;
    }
    Ok(())
}
