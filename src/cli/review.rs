//! `git mso review list|approve|reject`: the human gates between roles.

use clap::Subcommand;

use crate::core::apply::hand_off;
use crate::core::event::short;
use crate::core::{EventBody, OrderId, Role, Status};

use super::Ctx;
use super::output;
use crate::view::{self, notes_of};

/// One line of `review list --json`: the order's summary and its range.
#[derive(serde::Serialize)]
struct Listed {
    #[serde(flatten)]
    summary: crate::core::OrderSummary,
    range: Option<view::Range>,
}

/// What a review of `order` is about: the range `base..head`, and whether
/// it is a hold (commits on `voyage` the ledger did not know, from its
/// recorded head) rather than a role's work (from where the role started).
pub(super) fn under_review(order: &crate::core::Order, voyage: &crate::core::Voyage) -> Option<(String, String, bool)> {
    if order.status != Status::Review {
        return None;
    }
    if let Some(held) = &order.held {
        return Some((voyage.head.clone(), held.clone(), true));
    }
    let handoff = order.handoffs.last().filter(|h| h.role == order.role)?;
    Some((handoff.base.clone(), handoff.head.clone(), false))
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Orders awaiting review, with the range of commits each would approve.
    #[command(after_help = "Examples:\n  git mso review list\n  git mso review list --json")]
    List(ListArgs),
    /// What approving would accept: the role's commits, diffstat and diff, its hand-off and gate.
    #[command(after_help = "The range is what the role added to the voyage: from the head the ledger recorded \
before the role ran to the head its crew produced (or, for a hold, the commits nobody recorded). Approving \
accepts exactly that head; rejecting takes it off the branch and keeps it at refs/mso/rejected/ORDER/N.

Examples:
  git mso review show FTR-0001
  git mso review show FTR-0001 --stat
  git mso review show FTR-0001 --json | jq .range.stat")]
    Show(ShowArgs),
    /// Approve the reviewed role: the order moves to its next role (or completes) in the same commit.
    #[command(after_help = "The approval is pinned to the voyage commit the crew produced, recorded when the role \
succeeded. Approving an order that is not awaiting review is an error naming its state; nothing is written.

Examples:
  git mso review approve FTR-0001
  git mso review approve FTR-0001 --comment \"plan looks right\"")]
    Approve(ApproveArgs),
    /// Send the order back to the same role, or an earlier one, with a reason the next crew reads.
    #[command(
        after_help = "The rejected commits leave the voyage branch and are kept at refs/mso/rejected/ORDER/N.\n\n\
Examples:\n  git mso review reject FTR-0001 --reason \"the plan misses the settings page\"\n  \
git mso review reject FTR-0001 --to PLN --reason \"start over from the plan\""
    )]
    Reject(RejectArgs),
}

impl ReviewCommand {
    pub fn writes(&self) -> bool {
        !matches!(self, ReviewCommand::List(_) | ReviewCommand::Show(_))
    }
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// One JSON array: each order's summary with its `range` (commits, who made them, diffstat).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The order whose role awaits review.
    id: OrderId,
    /// Commits and diffstat only, no patch.
    #[arg(long)]
    stat: bool,
    /// The review as JSON (no patch).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The order whose role to approve.
    id: OrderId,
    /// A note recorded with the approval.
    #[arg(long, default_value = "")]
    comment: String,
}

#[derive(Debug, clap::Args)]
pub struct RejectArgs {
    /// The order whose role to reject.
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
            let dir = store.top_dir();
            let mut listed = Vec::new();
            for summary in orders {
                let order = store.order(&tip, &summary.id)?;
                let voyage = store.voyage(&tip, summary.voyage)?;
                let range = match (order, voyage) {
                    (Some(order), Some(voyage)) => under_review(&order, &voyage).and_then(|(base, head, _)| {
                        view::range(&dir, &base, &head, &notes_of(std::slice::from_ref(&order))).ok()
                    }),
                    _ => None,
                };
                listed.push(Listed { summary, range });
            }
            if args.json {
                return output::json(ctx.out, &listed);
            }
            if listed.is_empty() {
                writeln!(ctx.out, "nothing awaits review")?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = listed
                .iter()
                .map(|l| {
                    let (range, stat) = match &l.range {
                        Some(r) => (
                            format!("{}..{}", short(&r.base), short(&r.head)),
                            format!("{} commit(s), {}", r.commits.len(), r.stat),
                        ),
                        None => ("-".into(), "not in this repository: git mso sync".into()),
                    };
                    let title = crate::core::text::line(&l.summary.title).into_owned();
                    vec![l.summary.id.to_string(), l.summary.role.to_string(), range, stat, title]
                })
                .collect();
            output::table(ctx.out, &["ID", "ROLE", "RANGE", "CHANGES", "TITLE"], &rows)?;
        }
        ReviewCommand::Show(args) => show(&store, &tip, &args, ctx)?,
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
            if let Some(order) = committed.order(&args.id)
                && let Some(rejection) = order.rejections.last()
                && let Err(e) = store.note_order(order, &rejection.head)
            {
                tracing::warn!("the rejection is recorded, but its note was not written: {e}");
            }
            let voyage = committed.order(&args.id).and_then(|o| committed.state.voyages.get(&o.voyage));
            if let (Some(voyage), Some(tip)) = (voyage, store.tip().ok().flatten()) {
                match store.set_aside_rejected(&tip, voyage) {
                    Ok(crate::store::SetAside::Moved(said)) => writeln!(ctx.out, "  {said}")?,
                    Ok(crate::store::SetAside::Blocked(why)) => writeln!(ctx.out, "  warning: {why}")?,
                    Ok(crate::store::SetAside::Nothing) => {}
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

/// The JSON of `review show`.
#[derive(serde::Serialize)]
struct Review {
    order: OrderId,
    title: String,
    role: Role,
    attempt: u32,
    /// Commits the ledger did not know, held for review, rather than a role's work.
    held: bool,
    range: view::Range,
    handoff: Option<String>,
    gate: Option<String>,
    log: Option<String>,
}

fn show(
    store: &crate::store::Store,
    tip: &crate::store::Tip,
    args: &ShowArgs,
    ctx: &mut Ctx<'_>,
) -> anyhow::Result<()> {
    let order =
        store.order(tip, &args.id)?.ok_or_else(|| crate::core::TransitionError::UnknownOrder(args.id.clone()))?;
    let voyage = store.voyage(tip, order.voyage)?.ok_or(crate::core::TransitionError::UnknownVoyage(order.voyage))?;
    let Some((base, head, held)) = under_review(&order, &voyage) else {
        return Err(crate::error::Error::Input(format!(
            "{} is {} at {}, not awaiting review: `git mso order show {}` tells its story",
            order.id, order.status, order.role, order.id
        ))
        .into());
    };
    let dir = store.top_dir();
    for commit in [&base, &head] {
        store.require_commit(commit.parse()?, &format!("{} of the review of {}", short(commit), order.id))?;
    }
    let range = view::range(&dir, &base, &head, &notes_of(std::slice::from_ref(&order)))?;
    let handoff = (!held).then(|| order.handoffs.last().map(|h| h.summary.clone())).flatten();
    let gate_key = format!("mso.gate.{}.command", order.role);
    let run_dir = crate::runtime::dispatch::run_dir(store.common_dir(), &order);
    let (log, gate_log) = (run_dir.join("crew.log"), run_dir.join("gate.log"));
    let log = (!held && log.is_file()).then(|| log.display().to_string());
    // A role reaches review only past its gate, where it ran.
    let gate = if held {
        None
    } else if gate_log.is_file() {
        Some(format!("passed ({gate_key}; output in {})", gate_log.display()))
    } else if log.is_some() {
        Some(format!("none ran ({gate_key} was not set when the crew ran here)"))
    } else {
        Some("ran where the crew ran, if one is configured there".to_string())
    };
    let review = Review {
        order: order.id.clone(),
        title: order.title.clone(),
        role: order.role.clone(),
        attempt: order.attempt,
        held,
        range,
        handoff,
        gate,
        log,
    };
    if args.json {
        return output::json(ctx.out, &review);
    }
    let out = &mut *ctx.out;
    let one = |t: &str| crate::core::text::line(t).into_owned();
    writeln!(out, "{}  {}", order.id, one(&order.title))?;
    if held {
        writeln!(out, "held at {}: commits on {} the ledger did not know", order.role, voyage.id.branch())?;
    } else {
        writeln!(out, "{} attempt {} awaits review on {}", order.role, order.attempt, voyage.id.branch())?;
    }
    let r = &review.range;
    writeln!(out, "range     {}..{}  ({} commit(s), {})", short(&r.base), short(&r.head), r.commits.len(), r.stat)?;
    if let Some(gate) = &review.gate {
        writeln!(out, "gate      {gate}")?;
    }
    match &review.log {
        Some(log) => writeln!(out, "log       {log}")?,
        None if !held => writeln!(out, "log       not on this machine (the crew ran elsewhere)")?,
        None => {}
    }
    if let Some(summary) = &review.handoff {
        writeln!(out, "hand-off")?;
        for line in crate::core::text::display(summary, true).lines() {
            writeln!(out, "  {line}")?;
        }
    }
    writeln!(out, "commits")?;
    view::write_commits(out, r)?;
    if !args.stat {
        writeln!(out)?;
        write!(out, "{}", view::diff(&dir, &base, &head)?)?;
    } else {
        writeln!(out)?;
        let stat = crate::gitcli::git(
            &dir,
            &["diff", "--no-color", "--no-ext-diff", "--no-textconv", "--stat", &base, &head],
        )?;
        write!(out, "{}", crate::core::text::display(&stat, true))?;
    }
    Ok(())
}
