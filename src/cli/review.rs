//! `git mso review list|approve|reject`: the human gates between roles.

use clap::Subcommand;

use crate::core::apply::hand_off;
use crate::core::event::short;
use crate::core::{EventBody, OrderId, Role, Status};

use super::Ctx;
use super::output;

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Orders awaiting review.
    List(ListArgs),
    /// Approve the reviewed role: the order moves to its next role (or completes) in the same commit.
    #[command(after_help = "The approval is pinned to the voyage commit the crew produced, recorded when the role \
succeeded. Approving an order that is not awaiting review is an error naming its state; nothing is written.")]
    Approve(ApproveArgs),
    /// Send the order back to the same role, or an earlier one, with a reason the next crew reads.
    Reject(RejectArgs),
}

impl ReviewCommand {
    pub fn writes(&self) -> bool {
        !matches!(self, ReviewCommand::List(_))
    }
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    id: OrderId,
    /// A note recorded with the approval.
    #[arg(long, default_value = "")]
    comment: String,
}

#[derive(Debug, clap::Args)]
pub struct RejectArgs {
    id: OrderId,
    /// Why; it goes into the brief of the crew that runs next.
    #[arg(long)]
    reason: String,
    /// Role to go back to (default: the role under review).
    #[arg(long)]
    to: Option<Role>,
}

pub fn run(cmd: ReviewCommand, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let tip = store.require_tip()?;
    match cmd {
        ReviewCommand::List(args) => {
            let mut orders = store.summaries(&tip)?;
            orders.retain(|s| s.status == Status::Review);
            orders.sort_by(|a, b| a.id.cmp(&b.id));
            output::summaries(ctx.out, &orders, args.json, "nothing awaits review")?;
        }
        ReviewCommand::Approve(args) => {
            let (line, committed) = store.transact(|tx| {
                let by = tx.actor().to_string();
                let order = tx.order(&args.id)?.clone();
                if let Some(held) = &order.held {
                    // Commits made outside the pipeline: approving adopts them,
                    // and the waiting role starts from them. Only if the branch
                    // still holds exactly what the hold named.
                    let voyage = tx.try_voyage(order.voyage)?.cloned();
                    if let Some(voyage) = &voyage {
                        check_hold_is_tip(&store, voyage, held)?;
                    }
                    tx.push(EventBody::Approved {
                        order: order.id.clone(),
                        role: order.role.clone(),
                        by: by.clone(),
                        commit: held.clone(),
                        comment: args.comment.clone(),
                    })?;
                    let adopted = voyage.as_ref().map(|v| adopted_commits(&store, v, held)).unwrap_or_default();
                    return Ok(format!(
                        "{}  unreviewed commits up to {} approved by {by} → {} queued on them{adopted}",
                        order.id,
                        short(held),
                        order.role
                    ));
                }
                let commit = order.head.clone().unwrap_or_default();
                tx.push(EventBody::Approved {
                    order: order.id.clone(),
                    role: order.role.clone(),
                    by: by.clone(),
                    commit: commit.clone(),
                    comment: args.comment.clone(),
                })?;
                let next = hand_off(&order);
                let after = match &next {
                    EventBody::Advanced { to, .. } => format!("{to} queued"),
                    _ => "completed".to_string(),
                };
                tx.push(next)?;
                Ok(format!("{}  {} approved at {} by {by} → {after}", order.id, order.role, short(&commit)))
            })?;
            writeln!(ctx.out, "{line}")?;
            if let Some(order) = committed.order(&args.id)
                && let Some(head) = &order.head
                && let Err(e) = store.note_order(order, head)
            {
                tracing::warn!("the approval is recorded, but its note was not written: {e}");
            }
        }
        ReviewCommand::Reject(args) => {
            let (line, committed) = store.transact(|tx| {
                let by = tx.actor().to_string();
                let order = tx.order(&args.id)?.clone();
                let to = args.to.clone().unwrap_or_else(|| order.role.clone());
                let commit = order.held.clone().or_else(|| order.head.clone()).unwrap_or_default();
                tx.push(EventBody::Rejected {
                    order: order.id.clone(),
                    role: order.role.clone(),
                    by: by.clone(),
                    commit,
                    reason: args.reason.clone(),
                    to: to.clone(),
                })?;
                Ok(format!(
                    "{}  {} rejected by {by} → {to} queued (attempt {})",
                    order.id,
                    order.role,
                    order.attempt + 1
                ))
            })?;
            writeln!(ctx.out, "{line}")?;
            // The rejection is recorded; taking the work off the branch is
            // bookkeeping that sync and dispatch repeat if it fails here.
            let voyage = committed.order(&args.id).and_then(|o| committed.state.voyages.get(&o.voyage));
            if let (Some(voyage), Some(tip)) = (voyage, store.tip()?) {
                match store.set_aside_rejected(&tip, voyage) {
                    Ok(Some(said)) => writeln!(ctx.out, "  {said}")?,
                    Ok(None) => {}
                    Err(e) => tracing::warn!("the rejection is recorded, but the branch was not moved back: {e}"),
                }
            }
        }
    }
    Ok(())
}

/// The branch must still be at the held head: approving adopts exactly what
/// the hold named, not whatever the branch has moved to since.
fn check_hold_is_tip(
    store: &crate::store::Store,
    voyage: &crate::core::Voyage,
    held: &str,
) -> crate::error::Result<()> {
    match store.branch_tip(voyage)? {
        Some(tip) if held.parse::<gix::ObjectId>().ok() != Some(tip) => Err(crate::error::Error::Input(format!(
            "{} moved to {} since the hold named {}: dispatch again to hold the new commits, then review them",
            voyage.id.branch(),
            crate::store::short(tip),
            short(held)
        ))),
        Some(_) => Ok(()),
        None => Err(crate::error::Error::Input(format!(
            "{} is not in this repository, so the held commits cannot have been looked at here: `git mso sync`, \
             then review them",
            voyage.id.branch()
        ))),
    }
}

/// The commits an approval adopts, listed after the approval line.
fn adopted_commits(store: &crate::store::Store, voyage: &crate::core::Voyage, held: &str) -> String {
    let (Ok(recorded), Ok(held)) = (voyage.head.parse(), held.parse()) else { return String::new() };
    match store.unknown_commits(recorded, held, 10) {
        Ok((commits, more)) if !commits.is_empty() => {
            let mut text: String = commits.iter().map(|c| format!("\n  adopted {c}")).collect();
            if more {
                text.push_str("\n  adopted …");
            }
            text
        }
        _ => String::new(),
    }
}
