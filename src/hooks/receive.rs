//! Server hooks: `pre-receive` validates every pushed ref git-mso owns —
//! the ledger (with the same replay the writer, fsck and sync use, plus the
//! server's own knowledge: who pushes, and what time it is), voyage
//! branches, notes and the rest of `refs/mso/` — within caps on size and
//! time; `post-receive` starts a detached dispatcher when a push queued work.

use std::cell::Cell;
use std::io::Write;
use std::time::{Duration, Instant};

use gix::ObjectId;

use super::refs;
use crate::core::state::REJECTED_PREFIX;
use crate::core::time::{format_utc, parse_duration};
use crate::core::{EventBody, Status};
use crate::error::Result;
use crate::store::{LEDGER_REF, ReplayError, ReplayRules, Store, short};

/// What one push may carry to the ledger, and how long checking it may take.
pub mod limits {
    use std::time::Duration;
    /// Ledger commits in one push.
    pub const COMMITS: usize = 10_000;
    /// Events in one push (each commit holds at most 1,000).
    pub const EVENTS: usize = 20_000;
    /// Bytes of one ledger commit message.
    pub const MESSAGE_BYTES: usize = 8 * 1024 * 1024;
    /// Bytes of all ledger commit messages of one push.
    pub const PUSH_BYTES: usize = 64 * 1024 * 1024;
    /// Voyage branch and rejected-work updates in one push.
    pub const VOYAGE_UPDATES: usize = 1_000;
    /// Refs under `refs/mso/rejected/` looked through to see that work a
    /// branch leaves behind is kept.
    pub const REJECTED_SCAN: usize = 100_000;
    /// Wall time for validating one push, unless `mso.server.timeBudget` says otherwise.
    pub const BUDGET: Duration = Duration::from_secs(60);
    /// How far an event's time may be from the server's clock, unless `mso.server.maxSkew` says otherwise.
    pub const SKEW: Duration = Duration::from_secs(300);
}

/// One line of a receive hook's input: `<old> <new> <ref>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub old: ObjectId,
    pub new: ObjectId,
    pub name: String,
}

pub fn parse_updates(input: &str) -> Vec<Update> {
    input
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let old = parts.next()?.parse().ok()?;
            let new = parts.next()?.parse().ok()?;
            let name = parts.next()?.to_string();
            Some(Update { old, new, name })
        })
        .collect()
}

/// What the server knows that pushed objects cannot say: who pushes (from the
/// hosting layer), what time it is, and how long the check may take.
#[derive(Debug, Clone)]
pub struct Context {
    pub pusher: Option<String>,
    pub now: i64,
    pub max_skew: Duration,
    pub deadline: Instant,
}

impl Context {
    /// The context from the server's git config and environment; `Err` is a
    /// reason to refuse every push (a misconfigured server fails closed).
    pub fn from_server(store: &Store) -> std::result::Result<Context, String> {
        let config = store.repo().config_snapshot();
        let string = |key: &str| config.string(key).map(|v| v.to_string());
        let pusher = match string("mso.server.pusherEnv") {
            None => None,
            Some(var) => match std::env::var(&var) {
                Ok(value) if !value.trim().is_empty() => Some(value),
                _ => return Err(format!("mso.server.pusherEnv names {var}, which is not set")),
            },
        };
        let duration = |key: &str, default: Duration| match string(key) {
            None => Ok(default),
            Some(text) => parse_duration(&text).ok_or_else(|| {
                format!("{key} is {}, not a duration such as 300, 5m or 1h", crate::core::ids::shown(&text))
            }),
        };
        let max_skew = duration("mso.server.maxSkew", limits::SKEW)?;
        let budget = duration("mso.server.timeBudget", limits::BUDGET)?;
        Ok(Context { pusher, now: crate::store::now(), max_skew, deadline: Instant::now() + budget })
    }
}

/// Validate a push. Returns `Ok(None)` to accept, or the one-line reason to refuse.
///
/// Without `--atomic`, git applies the updates one by one and any of them may
/// fail; a pusher talking to receive-pack directly also chooses each `old`
/// value and may name a ref twice. So: every ref is named once; every update
/// of a ref git-mso judges starts from that ref's current value; and a
/// voyage branch is judged against the ledger both before and after the
/// push, so it is acceptable whichever of the two ends up in place.
pub fn check(store: &Store, updates: &[Update], ctx: &Context) -> Result<Option<String>> {
    let line = |name: &str| crate::core::text::line(name).into_owned();
    let refuse = |update: &Update, reason: String| Ok(Some(format!("{}: {reason}", line(&update.name))));
    let mut names = std::collections::HashSet::new();
    for update in updates {
        if !names.insert(update.name.as_str()) {
            return refuse(update, "named twice in one push".into());
        }
        if let Some(reason) = refs::namespace(&update.name) {
            return refuse(update, reason);
        }
    }
    let voyage_updates = updates
        .iter()
        .filter(|u| u.name.starts_with(refs::VOYAGE_PREFIX) || u.name.starts_with(REJECTED_PREFIX))
        .count();
    if voyage_updates > limits::VOYAGE_UPDATES {
        return Ok(Some(format!(
            "{voyage_updates} voyage branch and rejected-work updates in one push, the limit is {}",
            limits::VOYAGE_UPDATES
        )));
    }
    for update in updates.iter().filter(|u| refs::judged(&u.name)) {
        let current = store.ref_target(&update.name)?;
        if current.unwrap_or_else(|| ObjectId::null(update.old.kind())) != update.old {
            return refuse(
                update,
                // Most often a race with another push: the same words git uses
                // for it tell a syncing client to fetch and try again.
                format!(
                    "the push says it moves it from {}, but it is at {} (stale info: fetch and try again)",
                    short(update.old),
                    current.map_or_else(|| "nothing".into(), short)
                ),
            );
        }
    }
    let before = store.tip_unchecked()?;
    let mut after = before;
    let mut holds = Vec::new();
    let mut landings = Vec::new();
    if let Some(update) = updates.iter().find(|u| u.name == LEDGER_REF) {
        if let Some(reason) = check_ledger(store, update, ctx, &mut holds, &mut landings)? {
            return refuse(update, reason);
        }
        after = Some(update.new);
    }
    let mut views = vec![refs::LedgerView::new(store, after)];
    if after != before {
        views.push(refs::LedgerView::before_push(store, before));
    }
    for update in updates {
        if Instant::now() > ctx.deadline {
            return Ok(Some("validating the push took longer than its time budget (mso.server.timeBudget)".into()));
        }
        if update.name.starts_with(refs::VOYAGE_PREFIX) {
            let set_aside = refs::sets_aside_rejected(&mut views[0], update, updates)?;
            for view in &mut views {
                if let Some(reason) = refs::check_voyage(view, update, set_aside, ctx)? {
                    return refuse(update, reason);
                }
            }
        } else if update.name.starts_with(REJECTED_PREFIX) {
            for view in &mut views {
                if let Some(reason) = refs::check_rejected(view, update)? {
                    return refuse(update, reason);
                }
            }
        } else if let Some(notes) = crate::store::Notes::named(&update.name)
            && let Some(reason) = refs::check_notes(store, update, notes, &mut views[0], ctx.deadline)?
        {
            return refuse(update, reason);
        }
    }
    for (order, head) in holds {
        if let Some(reason) = refs::check_hold(&mut views[0], updates, &order, &head)? {
            return Ok(Some(format!("refs/mso/ledger: {reason}")));
        }
    }
    for (voyage, target, commit, how) in landings {
        if let Some(reason) = refs::check_landing(&mut views[0], voyage, &target, &commit, how)? {
            return Ok(Some(format!("refs/mso/ledger: {reason}")));
        }
    }
    Ok(None)
}

/// The pushed ledger: a fast-forward of linear commits within the caps, every
/// one accepted by the shared replay, every event the pusher's own (when the
/// hosting layer names the pusher) and timed near the server's clock.
fn check_ledger(
    store: &Store,
    update: &Update,
    ctx: &Context,
    holds: &mut Vec<(crate::core::OrderId, String)>,
    landings: &mut Vec<(crate::core::VoyageId, String, String, crate::core::state::LandedHow)>,
) -> Result<Option<String>> {
    if update.new.is_null() {
        return Ok(Some("deleting it is not allowed".into()));
    }
    let base = if update.old.is_null() { None } else { Some(store.tip_of(update.old)?) };
    let chain = match new_commits(store, update.old, update.new)? {
        Ok(chain) => chain,
        Err(reason) => return Ok(Some(reason)),
    };
    let events = Cell::new(0usize);
    let held = std::cell::RefCell::new(Vec::new());
    let landed = std::cell::RefCell::new(Vec::new());
    let per_commit = |entry: &crate::store::Entry| -> std::result::Result<(), String> {
        events.set(events.get() + entry.events.len());
        if events.get() > limits::EVENTS {
            return Err(format!("the push carries more than {} events", limits::EVENTS));
        }
        for event in &entry.events {
            if let Some(pusher) = &ctx.pusher
                && &event.actor != pusher
            {
                return Err(format!(
                    "{} by {} pushed by {pusher}: with mso.server.pusherEnv, pushers push only their own events",
                    event.body.name(),
                    crate::core::text::line(&event.actor)
                ));
            }
            match &event.body {
                // A lease may be declared run out only once it has, by the server's clock.
                EventBody::LeaseExpired { .. } if event.at > ctx.now => {
                    return Err(format!(
                        "LEASE_EXPIRED at {} is later than the server's clock ({}): a lease runs out in the past",
                        format_utc(event.at.clamp(0, crate::core::apply::limits::MAX_TIME)),
                        format_utc(ctx.now)
                    ));
                }
                EventBody::Held { order, head, .. } => held.borrow_mut().push((order.clone(), head.clone())),
                EventBody::VoyageLanded { voyage, target, commit, how, .. } => {
                    landed.borrow_mut().push((*voyage, target.clone(), commit.clone(), *how))
                }
                _ => {}
            }
            if event.at.abs_diff(ctx.now) > ctx.max_skew.as_secs() {
                return Err(format!(
                    "{} at {} is more than {} s from the server's clock ({}); check the clock (mso.server.maxSkew)",
                    event.body.name(),
                    format_utc(event.at.clamp(0, crate::core::apply::limits::MAX_TIME)),
                    ctx.max_skew.as_secs(),
                    format_utc(ctx.now)
                ));
            }
        }
        Ok(())
    };
    let rules = ReplayRules { per_commit: Some(&per_commit), deadline: Some(ctx.deadline), strict_objects: true };
    match store.replay_with(base, &chain, &rules) {
        Ok(_) => {
            holds.extend(held.take());
            landings.extend(landed.take());
            Ok(None)
        }
        Err(ReplayError::Problem(p)) => Ok(Some(p.to_string())),
        Err(ReplayError::Io(e)) => Err(e),
    }
}

/// The pushed commits, oldest first: `new` back to `old` along single parents.
/// Anything else (a rewrite, a merge, too many or too large commits) is a reason to refuse.
fn new_commits(store: &Store, old: ObjectId, new: ObjectId) -> Result<std::result::Result<Vec<ObjectId>, String>> {
    let mut chain = Vec::new();
    let mut bytes = 0usize;
    let mut next = Some(new);
    while let Some(id) = next {
        if id == old {
            break;
        }
        if chain.len() >= limits::COMMITS {
            return Ok(Err(format!("more than {} commits in one push", limits::COMMITS)));
        }
        let commit = match store.repo().find_commit(id) {
            Ok(c) => c,
            Err(_) => return Ok(Err(format!("{} is not a commit", short(id)))),
        };
        let size = commit.message_raw_sloppy().len();
        if size > limits::MESSAGE_BYTES {
            return Ok(Err(format!("commit {}: message of {size} bytes exceeds {}", short(id), limits::MESSAGE_BYTES)));
        }
        bytes += size;
        if bytes > limits::PUSH_BYTES {
            return Ok(Err(format!("the push's ledger messages exceed {} bytes", limits::PUSH_BYTES)));
        }
        let parents: Vec<ObjectId> = commit.parent_ids().map(|p| p.detach()).collect();
        if parents.len() > 1 {
            return Ok(Err(format!("commit {}: merge commits are not allowed; the ledger is linear", short(id))));
        }
        chain.push(id);
        next = parents.first().copied();
    }
    if next.is_none() && !old.is_null() {
        return Ok(Err(format!(
            "{} does not descend from {}: only fast-forwards are accepted",
            short(new),
            short(old)
        )));
    }
    chain.reverse();
    Ok(Ok(chain))
}

/// The pre-receive hook: prints one line and returns false to refuse.
pub fn pre_receive(store: &mut Store, input: &str, err: &mut dyn Write) -> Result<bool> {
    let _view = store.see_quarantine()?;
    let verdict = match Context::from_server(store) {
        Ok(ctx) => check(store, &parse_updates(input), &ctx)?,
        Err(reason) => Some(reason),
    };
    match verdict {
        None => Ok(true),
        Some(reason) => {
            writeln!(err, "git-mso: refusing the push: {}", crate::core::text::line(&reason))?;
            Ok(false)
        }
    }
}

/// The post-receive hook: when the ledger moved and work is queued, and
/// `mso.server.dispatch` is true, wake the server's one dispatcher and return.
pub fn post_receive(store: &Store, input: &str, out: &mut dyn Write) -> Result<()> {
    let updates = parse_updates(input);
    // Branches other than voyages' moved: voyages meant to land on them may have.
    let moved: Vec<String> = updates
        .iter()
        .filter(|u| u.name.starts_with("refs/heads/") && !u.name.starts_with(refs::VOYAGE_PREFIX) && !u.new.is_null())
        .map(|u| u.name.clone())
        .collect();
    if !moved.is_empty() && store.tip()?.is_some() {
        let tips = |target: &str| {
            let name = format!("refs/heads/{target}");
            if !moved.contains(&name) {
                return Vec::new();
            }
            store.ref_target(&name).ok().flatten().into_iter().collect()
        };
        match store.record_landings(&tips, std::time::Duration::from_secs(5)) {
            Ok(lines) => {
                for line in lines {
                    writeln!(out, "git-mso: {line}")?;
                }
            }
            Err(e) => writeln!(out, "git-mso: could not look for landed voyages ({e}); `git mso sync` does")?,
        }
    }
    let enabled = store.repo().config_snapshot().boolean("mso.server.dispatch").unwrap_or(false);
    let moved = updates.iter().any(|u| u.name == LEDGER_REF && !u.new.is_null());
    if !enabled || !moved {
        return Ok(());
    }
    let tip = store.require_tip()?;
    let queued = store.stats(&tip)?.total(Status::Queued);
    if queued > 0 {
        super::wake_dispatcher(store, None)?;
        writeln!(out, "git-mso: {queued} order(s) queued; dispatching on the server")?;
    }
    Ok(())
}
