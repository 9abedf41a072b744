//! `git mso undo`: take back the last transaction you wrote, by appending
//! the events that compensate for it. The ledger is never rewritten: the
//! mistake and its undoing both stay in the history, and every compensating
//! event passes the same rules (`apply`) as any other.

use crate::core::apply::hand_off;
use crate::core::event::short;
use crate::core::{EventBody, OrderId, Status, VoyageId};
use crate::error::Error;
use crate::store::{Entry, Store, Tip, Tx};

use super::Ctx;

/// How far back `undo` looks for a transaction of yours.
const LOOK_BACK: usize = 10_000;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
What can be undone, and how:
  order new          the order is cancelled (and the voyage filed with it closed, when nothing else is on it),
                     while it has not been dispatched
  voyage new         the voyage is closed, while no order is on it
  order edit         the old title, brief or criteria come back, unless edited again since
  order move         the order moves back, while it still may
  config KEY VALUE   the old value comes back, unless the config changed since
  review approve     the approval is withdrawn while the next role has not started and nothing else happened on
                     the voyage: the order awaits review again
  undo of an approval  the approval is given again
Rejections, cancellations, retries, publications and closings are not undone: the error says what to do instead.
Transactions a runner wrote (claims, results) and landings a command recorded by itself are skipped when looking
for yours.

Examples:
  git mso undo --dry-run
  git mso undo")]
pub struct Args {
    /// Say what would be undone, and write nothing.
    #[arg(long)]
    dry_run: bool,
}

/// What the undo appends, and what it says it did.
struct Plan {
    events: Vec<EventBody>,
    said: Vec<String>,
}

impl Plan {
    fn new(events: Vec<EventBody>, said: Vec<String>) -> Self {
        Plan { events, said }
    }
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    store.require_tip()?;
    let me = store.identity().actor.clone();
    let build = |tx: &mut Tx<'_>| -> crate::error::Result<(Entry, Vec<String>)> {
        let tip = tx.tip().ok_or(Error::NotInitialized)?;
        let entry = last_written(&store, &tip, &me)?;
        let refuse = |why: String| {
            Error::Input(format!(
                "your last transaction, {} ({}), cannot be undone: {why}",
                short(&entry.commit.to_string()),
                crate::core::message::subject(&entry.events)
            ))
        };
        // The rules refuse a compensation that is no longer legal: say so as such.
        let illegal = |e: Error| match e {
            Error::Transition(t) => refuse(t.to_string()),
            other => other,
        };
        let plan = plan(&store, tx, &entry).map_err(refuse)?;
        for event in plan.events {
            let approved = match &event {
                EventBody::Approved { order, .. } => Some(order.clone()),
                _ => None,
            };
            tx.push(event).map_err(illegal)?;
            // An approval hands the order on in the same transaction.
            if let Some(order) = approved {
                let order = tx.order(&order)?.clone();
                if order.status == Status::HandingOff {
                    tx.push(hand_off(&order)).map_err(illegal)?;
                }
            }
        }
        Ok((entry, plan.said))
    };
    let ((entry, said), written) = if args.dry_run {
        (store.preview(build)?, None)
    } else {
        let (value, committed) = store.transact(build)?;
        // Approvals and withdrawals are mirrored in the notes on their commit.
        for event in &committed.events {
            if let EventBody::Approved { order, commit, .. } | EventBody::ApprovalWithdrawn { order, commit, .. } =
                &event.body
                && let Some(order) = committed.order(order)
                && let Err(e) = store.note_order(order, commit)
            {
                tracing::warn!("the undo is recorded, but the note on {} was not written: {e}", short(commit));
            }
        }
        (value, Some(committed.commit))
    };
    let subject = crate::core::message::subject(&entry.events);
    let verb = if args.dry_run { "would undo" } else { "undid" };
    writeln!(ctx.out, "{verb} {} ({subject}):", short(&entry.commit.to_string()))?;
    for line in said {
        writeln!(ctx.out, "  {line}")?;
    }
    if let Some(commit) = written {
        writeln!(ctx.out, "recorded as {}", short(&commit.to_string()))?;
    }
    Ok(())
}

/// The newest ledger commit whose events are all `me`'s, written by a
/// command rather than a runner.
fn last_written(store: &Store, tip: &Tip, me: &str) -> crate::error::Result<Entry> {
    for entry in store.history(tip).take(LOOK_BACK) {
        let entry = entry?;
        let mine = entry.events.iter().all(|e| e.actor == me);
        if mine && !by_runner(&entry) {
            return Ok(entry);
        }
    }
    Err(Error::Input(format!("{me} wrote nothing to undo in the last {LOOK_BACK} ledger transactions")))
}

/// Whether a runner wrote this transaction (a claim, renewal, result, hold
/// or expiry), or a command recorded a landing it found on its own (`voyage
/// list`, `sync`): nothing a person did by hand.
fn by_runner(entry: &Entry) -> bool {
    let automatic = entry.events.iter().all(|e| matches!(e.body, EventBody::VoyageLanded { .. }));
    automatic
        || entry.events.first().is_some_and(|e| {
            matches!(
                e.body,
                EventBody::Dispatched { .. }
                    | EventBody::LeaseRenewed { .. }
                    | EventBody::Succeeded { .. }
                    | EventBody::Failed { .. }
                    | EventBody::LeaseExpired { .. }
                    | EventBody::Held { .. }
            )
        })
}

/// The state `entry` was appended to.
fn parent_tip(store: &Store, entry: &Entry) -> crate::error::Result<Option<Tip>> {
    entry.parents.first().map(|&parent| store.tip_of(parent)).transpose()
}

/// `order` as it stood before `entry`.
fn order_before(store: &Store, entry: &Entry, order: &OrderId) -> Result<crate::core::Order, Why> {
    parent_tip(store, entry)
        .and_then(|tip| tip.map(|t| store.order(&t, order)).transpose())
        .map_err(|e| e.to_string())?
        .flatten()
        .ok_or_else(|| format!("{order} is not in the ledger before it"))
}

type Why = String;

fn plan(store: &Store, tx: &mut Tx<'_>, entry: &Entry) -> Result<Plan, Why> {
    let bodies: Vec<&EventBody> = entry.events.iter().map(|e| &e.body).collect();
    let fail = |e: Error| e.to_string();
    match bodies.as_slice() {
        [EventBody::OrderCreated { order, .. }] => undo_filing(store, tx, order, None),
        [EventBody::VoyageCreated { voyage, .. }, EventBody::OrderCreated { order, .. }] => {
            undo_filing(store, tx, order, Some(*voyage))
        }
        [EventBody::VoyageCreated { voyage, .. }] => {
            let mut plan = Plan { events: Vec::new(), said: Vec::new() };
            close_if_empty(store, tx, *voyage, None, &mut plan)?;
            if plan.events.is_empty() {
                return Err(plan.said.join("; "));
            }
            Ok(plan)
        }
        [EventBody::OrderEdited { order, title, brief, acceptance, .. }] => {
            let before = order_before(store, entry, order)?;
            let now = tx.order(order).map_err(fail)?.clone();
            let still = title.as_ref().is_none_or(|t| *t == now.title)
                && brief.as_ref().is_none_or(|b| *b == now.brief)
                && acceptance.as_ref().is_none_or(|a| *a == now.acceptance);
            if !still {
                return Err(format!("{order} was edited again since; edit it yourself (`git mso order edit {order}`)"));
            }
            let mut said = Vec::new();
            let title = title.as_ref().map(|_| {
                said.push(format!("{order}: the title is \"{}\" again", crate::core::text::line(&before.title)));
                before.title.clone()
            });
            let brief = brief.as_ref().map(|_| {
                said.push(format!("{order}: the brief is the one before ({} lines)", before.brief.lines().count()));
                before.brief.clone()
            });
            let acceptance = acceptance.as_ref().map(|_| {
                said.push(format!("{order}: the acceptance criteria are the {} before", before.acceptance.len()));
                before.acceptance.clone()
            });
            let replaces = now.text_digest();
            Ok(Plan {
                events: vec![EventBody::OrderEdited { order: order.clone(), replaces, title, brief, acceptance }],
                said,
            })
        }
        [EventBody::OrderMoved { order, voyage }] => {
            let before = order_before(store, entry, order)?;
            let now = tx.order(order).map_err(fail)?.voyage;
            if now != *voyage {
                return Err(format!("{order} is on {now} now, moved again since"));
            }
            Ok(Plan {
                events: vec![EventBody::OrderMoved { order: order.clone(), voyage: before.voyage }],
                said: vec![format!("{order} is back on {} (from {voyage})", before.voyage)],
            })
        }
        sets if !sets.is_empty() && sets.iter().all(|b| matches!(b, EventBody::ConfigSet { .. })) => {
            undo_config(store, tx, entry, sets)
        }
        [EventBody::Approved { order, role, by, commit, .. }, EventBody::Advanced { to, .. }] => {
            quiet_since(store, tx, entry, order)?;
            Ok(Plan {
                events: vec![EventBody::ApprovalWithdrawn {
                    order: order.clone(),
                    role: role.clone(),
                    by: by.clone(),
                    commit: commit.clone(),
                }],
                said: vec![format!(
                    "{order}: your approval of {role} at {} is withdrawn; it awaits review at {role} again instead of \
                     running {to}",
                    short(commit)
                )],
            })
        }
        [EventBody::ApprovalWithdrawn { order, role, by, commit }] => {
            // Given again as it was given, comment and all.
            let now = tx.order(order).map_err(fail)?;
            let comment = now
                .history
                .iter()
                .rev()
                .find_map(|e| match &e.body {
                    EventBody::Approved { role: r, by: b, commit: c, comment, .. }
                        if r == role && b == by && c == commit =>
                    {
                        Some(comment.clone())
                    }
                    _ => None,
                })
                .unwrap_or_default();
            Ok(Plan::new(
                vec![EventBody::Approved {
                    order: order.clone(),
                    role: role.clone(),
                    by: by.clone(),
                    commit: commit.clone(),
                    comment,
                }],
                vec![format!("{order}: {role} at {} is approved again", short(commit))],
            ))
        }
        [EventBody::Approved { order, .. }, EventBody::Completed { .. }] => {
            Err(format!("{order} completed with that approval, and a completed order does not reopen"))
        }
        [EventBody::Approved { order, .. }] => Err(format!(
            "it adopted commits made outside the pipeline into {order}'s voyage, and the role now builds on \
                 them; if that was wrong, reject the next run's work"
        )),
        [EventBody::Rejected { order, .. }, ..] => Err(format!(
            "a rejection sent {order} back and took its work off the voyage branch (kept under \
             refs/mso/rejected/{order}/); review the next run instead"
        )),
        [EventBody::Cancelled { order, .. }, ..] => {
            Err(format!("a cancelled order does not reopen; file {order} again with `git mso order new`"))
        }
        [EventBody::Retried { order }] => {
            Err(format!("a retry is not taken back; cancel {order} if it should not run (`git mso order cancel`)"))
        }
        [EventBody::VoyagePublished { voyage, .. }] => {
            Err(format!("{voyage}'s branch was pushed for review; close the pull request where it lives"))
        }
        [EventBody::VoyageClosed { voyage, .. }, ..] => Err(format!("a closed voyage ({voyage}) does not reopen")),
        [EventBody::Init { .. }] => Err("it initialized the pipeline".into()),
        _ => Err("git mso undo takes back filings, edits, moves, config changes and approvals only".into()),
    }
}

/// An approval is withdrawn only while nothing else happened on its order's
/// voyage since it was given: no other order ran or was reviewed there,
/// nothing about the voyage itself was recorded.
fn quiet_since(store: &Store, tx: &mut Tx<'_>, entry: &Entry, order: &OrderId) -> Result<(), Why> {
    let fail = |e: Error| e.to_string();
    let voyage = tx.order(order).map_err(fail)?.voyage;
    let tip = tx.tip().ok_or("the ledger is empty")?;
    for later in store.history(&tip).take(LOOK_BACK) {
        let later = later.map_err(fail)?;
        if later.commit == entry.commit {
            return Ok(());
        }
        // Each order's voyage as that transaction left it (it may have moved since).
        let then = Tip { commit: later.commit, tree: later.tree };
        for event in &later.events {
            let on = match event.body.order() {
                Some(id) if id == order => continue,
                Some(id) => store.order(&then, id).map_err(fail)?.map(|o| o.voyage),
                None => event.body.voyage_event(),
            };
            if on == Some(voyage) {
                return Err(format!(
                    "{voyage} has seen more since ({}: {}), so the approval stands",
                    short(&later.commit.to_string()),
                    event.body.describe()
                ));
            }
        }
    }
    Err(format!("the approval is more than {LOOK_BACK} transactions back"))
}

/// Undo `order new`: cancel the order while nothing happened to it, and close
/// the voyage filed with it when nothing else is on it.
fn undo_filing(store: &Store, tx: &mut Tx<'_>, order: &OrderId, voyage: Option<VoyageId>) -> Result<Plan, Why> {
    let now = tx.order(order).map_err(|e| e.to_string())?.clone();
    if now.history.len() != 1 || now.status != Status::Queued {
        return Err(format!(
            "{order} moved on since you filed it (now {} at {}); stop it with `git mso order cancel {order}`",
            now.status, now.role
        ));
    }
    let mut plan = Plan {
        events: vec![EventBody::Cancelled { order: order.clone(), reason: "filed by mistake (git mso undo)".into() }],
        said: vec![format!("{order} \"{}\" is cancelled", crate::core::text::line(&now.title))],
    };
    if let Some(voyage) = voyage {
        close_if_empty(store, tx, voyage, Some(order), &mut plan)?;
    }
    Ok(plan)
}

/// Close `voyage` when it holds no work and no order but `except`; else say why it stays.
fn close_if_empty(
    store: &Store,
    tx: &mut Tx<'_>,
    voyage: VoyageId,
    except: Option<&OrderId>,
    plan: &mut Plan,
) -> Result<(), Why> {
    let fail = |e: Error| e.to_string();
    let v = tx.try_voyage(voyage).map_err(fail)?.cloned().ok_or_else(|| format!("no voyage {voyage}"))?;
    let tip = tx.tip().ok_or("the ledger is empty")?;
    let others: Vec<OrderId> = store
        .summaries(&tip)
        .map_err(fail)?
        .into_iter()
        .filter(|s| s.voyage == voyage && Some(&s.id) != except && s.status != Status::Cancelled)
        .map(|s| s.id)
        .collect();
    let stays = if v.finished().is_some() {
        Some(format!("{voyage} is already {}", v.state()))
    } else if v.head != v.base {
        Some(format!("{voyage} stays open: it holds recorded work"))
    } else if let Some(other) = others.first() {
        Some(format!("{voyage} stays open: {other} is on it"))
    } else if !tx.config().map_err(fail)?.is_manager(tx.actor()) {
        Some(format!("{voyage} stays open: with an approver list, only admins and approvers close voyages"))
    } else {
        None
    };
    match stays {
        Some(why) => plan.said.push(why),
        None => {
            plan.events.push(EventBody::VoyageClosed { voyage, reason: "created by mistake (git mso undo)".into() });
            plan.said.push(format!("{voyage} is closed (its branch {} is left as it is)", v.branch));
        }
    }
    Ok(())
}

/// Undo `config`: set each key back, when nothing changed the config since,
/// and only if that restores the config exactly.
fn undo_config(store: &Store, tx: &mut Tx<'_>, entry: &Entry, sets: &[&EventBody]) -> Result<Plan, Why> {
    let fail = |e: Error| e.to_string();
    let after = store.config(&Tip { commit: entry.commit, tree: entry.tree }).map_err(fail)?;
    let before = match parent_tip(store, entry).map_err(fail)? {
        Some(tip) => store.config(&tip).map_err(fail)?,
        None => return Err("it is the ledger's first commit".into()),
    };
    let now = tx.config().map_err(fail)?.clone();
    if now != after {
        return Err("the config changed since; set the key yourself (`git mso config KEY VALUE`)".into());
    }
    let mut events = Vec::new();
    let mut said = Vec::new();
    let mut restored = now;
    for body in sets.iter().rev() {
        let EventBody::ConfigSet { key, .. } = body else { unreachable!("only CONFIG_SET here") };
        let Some(value) = before.setting(key) else {
            return Err(format!("{key} added a role or kind, and roles and kinds are not removed"));
        };
        restored.set(key, &value).map_err(|e| e.to_string())?;
        said.push(format!("{key} = {value} again"));
        events.push(EventBody::ConfigSet { key: key.clone(), value });
    }
    if restored != before {
        return Err("setting the keys back would not restore the config as it was".into());
    }
    Ok(Plan { events, said })
}
