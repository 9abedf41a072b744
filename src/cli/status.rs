//! `git mso status`: orders per role and status, from one blob.

use serde::Serialize;

use crate::core::Status;

use super::Ctx;
use super::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Counts as JSON.
    #[arg(long)]
    json: bool,
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
    let rows: Vec<Vec<String>> = report
        .roles
        .iter()
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
    Ok(())
}
