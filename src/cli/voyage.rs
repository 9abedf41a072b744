//! `git mso voyage new|list|show`

use clap::Subcommand;

use crate::core::time::format_utc;
use crate::core::{EventBody, TransitionError, VoyageId};

use super::Ctx;
use super::output;

#[derive(Debug, Subcommand)]
pub enum VoyageCommand {
    /// Start a voyage: branch voyage/VOY-NNNN from a base commit.
    New(NewArgs),
    /// List voyages.
    List(ListArgs),
    /// Show one voyage and its orders.
    Show(ShowArgs),
}

impl VoyageCommand {
    pub fn writes(&self) -> bool {
        matches!(self, VoyageCommand::New(_))
    }
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// Where the branch starts (default: HEAD).
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// Branch the voyage is meant to land on (default: the branch --base or HEAD names).
    #[arg(long, value_name = "BRANCH")]
    target: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    id: VoyageId,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: VoyageCommand, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let tip = store.require_tip()?;
    match cmd {
        VoyageCommand::New(args) => {
            let (base, target) = store.voyage_base(args.base.as_deref(), args.target.as_deref())?;
            let (id, committed) = store.transact(|tx| {
                let id = tx.counters().next_voyage()?;
                tx.push(EventBody::VoyageCreated { voyage: id, base: base.to_string(), target: target.clone() })?;
                Ok(id)
            })?;
            let voyage = &committed.state.voyages[&id];
            store.ensure_voyage_branch(voyage)?;
            if args.json {
                return output::json(ctx.out, voyage);
            }
            writeln!(
                ctx.out,
                "{id}  {} at {}",
                voyage.id.branch(),
                crate::core::text::line(crate::core::event::short(&voyage.base))
            )?;
        }
        VoyageCommand::List(args) => {
            let voyages = store.voyages(&tip)?;
            let summaries = store.summaries(&tip)?;
            if args.json {
                return output::json(ctx.out, &voyages);
            }
            if voyages.is_empty() {
                writeln!(ctx.out, "no voyages")?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = voyages
                .iter()
                .map(|v| {
                    vec![
                        v.id.to_string(),
                        v.id.branch(),
                        crate::core::text::line(crate::core::event::short(&v.base)).into_owned(),
                        summaries.iter().filter(|s| s.voyage == v.id).count().to_string(),
                        format_utc(v.created),
                    ]
                })
                .collect();
            output::table(ctx.out, &["ID", "BRANCH", "BASE", "ORDERS", "CREATED"], &rows)?;
        }
        VoyageCommand::Show(args) => {
            let voyage = store.voyage(&tip, args.id)?.ok_or(TransitionError::UnknownVoyage(args.id))?;
            if args.json {
                return output::json(ctx.out, &voyage);
            }
            writeln!(
                ctx.out,
                "{}  {} from {}",
                voyage.id,
                voyage.id.branch(),
                crate::core::text::line(crate::core::event::short(&voyage.base))
            )?;
            if let Some(active) = &voyage.active {
                writeln!(ctx.out, "running: {active}")?;
            }
            let mut orders = store.summaries(&tip)?;
            orders.retain(|s| s.voyage == voyage.id);
            orders.sort_by(|a, b| a.id.cmp(&b.id));
            output::summaries(ctx.out, &orders, false, "  no orders yet")?;
        }
    }
    Ok(())
}
