//! `git mso log [ORDER]`: ledger history, newest first.

use serde::Serialize;

use crate::core::OrderId;
use crate::core::text;
use crate::core::time::format_utc;
use crate::core::{Event, message};

use super::Ctx;
use super::output;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  git mso log\n  git mso log FTR-0001\n  git mso log -n 20 --json")]
pub struct Args {
    /// Only commits that touch this order.
    order: Option<OrderId>,
    /// Show at most this many commits.
    #[arg(short = 'n', long)]
    max_count: Option<usize>,
    /// One JSON array of commits with their events.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Item {
    commit: String,
    time: i64,
    subject: String,
    events: Vec<Event>,
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let tip = store.require_tip()?;
    let limit = args.max_count.unwrap_or(usize::MAX);
    let mut items = Vec::new();
    for entry in store.history(&tip) {
        if items.len() >= limit {
            break;
        }
        let entry = entry?;
        let events: Vec<Event> = match &args.order {
            Some(id) => entry.events.into_iter().filter(|e| e.body.order() == Some(id)).collect(),
            None => entry.events,
        };
        if events.is_empty() {
            continue;
        }
        let subject = message::subject(&events);
        items.push(Item { commit: entry.commit.to_string(), time: entry.time, subject, events });
    }
    if args.json {
        return output::json(ctx.out, &items);
    }
    for item in &items {
        let actor = item.events.first().map(|e| e.actor.as_str()).unwrap_or_default();
        let (actor, subject) = (text::line(actor), text::line(&item.subject));
        writeln!(ctx.out, "{}  {}  {actor:<12}  {subject}", &item.commit[..7], format_utc(item.time))?;
    }
    Ok(())
}
