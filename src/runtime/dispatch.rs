//! The dispatch loop: recover dead leases, claim the oldest queued order of
//! each idle voyage with a DISPATCHED commit (compare-and-swap, so two
//! runners never run the same role of the same order), run its crew in a
//! worker thread, and repeat until no work is ready (`--once`) or until
//! signalled (`--watch`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::crew::{self, CrewSpec};
use super::run::{self, Runner};
use crate::core::{EventBody, Lease, Order, OrderId, OrderSummary, Role, Status, VoyageId};
use crate::error::Result;
use crate::store::Store;

/// How a dispatcher runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_parallel: usize,
    /// Keep waiting for work instead of returning when none is ready.
    pub watch: bool,
    pub poll: Duration,
    /// Coordinate through this remote: claims and results are pushed there.
    pub remote: Option<String>,
    /// Keep a live status line (what runs where, for how long, its last log
    /// line) at the bottom of a terminal while watching.
    pub live: bool,
}

/// How often a watching dispatcher with nothing to do says it is still there.
const HEARTBEAT: Duration = Duration::from_secs(600);

/// What the watcher shows about runs in flight.
struct Running {
    label: String,
    since: std::time::Instant,
    log: PathBuf,
}

/// The watch display: plain lines, plus a status line on a terminal.
struct Display {
    live: bool,
    /// A status line is on screen and must be cleared before a plain line.
    drawn: bool,
    idle_since: Option<std::time::Instant>,
    last_heartbeat: Option<std::time::Instant>,
    told_stopping: bool,
}

impl Display {
    fn line(&mut self, out: &mut dyn Write, text: &str) -> Result<()> {
        if self.drawn {
            write!(out, "\r\u{1b}[K")?;
            self.drawn = false;
        }
        writeln!(out, "{text}")?;
        out.flush()?;
        Ok(())
    }

    /// Redraw the status line: every run with its elapsed time and the
    /// last line of its log.
    fn status(&mut self, out: &mut dyn Write, running: &BTreeMap<VoyageId, Running>, queued: usize) -> Result<()> {
        if !self.live {
            return Ok(());
        }
        let runs: Vec<String> = running
            .values()
            .map(|r| {
                let last = crew::log_tail(&r.log, 1, 200);
                let last: String = last.chars().take(60).collect();
                format!(
                    "{} {}s {}",
                    r.label,
                    r.since.elapsed().as_secs(),
                    if last.is_empty() { "…".into() } else { last }
                )
            })
            .collect();
        let what = if runs.is_empty() { format!("idle, watching · {queued} waiting") } else { runs.join(" | ") };
        let stamp = crate::core::time::format_utc(crate::store::now());
        write!(out, "\r\u{1b}[K{} {what}", &stamp[11..19])?;
        out.flush()?;
        self.drawn = true;
        Ok(())
    }
}

/// Set from signal handlers: `drain` stops taking work, `hard` also stops running crews.
#[derive(Debug, Default)]
pub struct StopSignal {
    pub drain: Arc<AtomicBool>,
    pub hard: Arc<AtomicBool>,
}

/// What a dispatcher did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub started: usize,
    /// Roles with queued work but no `mso.crew.<ROLE>.command` on this machine.
    pub missing_crews: BTreeSet<Role>,
    /// Settings of this machine's crews that could not be read, each reported once.
    pub config_errors: BTreeSet<String>,
    /// Orders that could not be claimed, each reported once.
    pub skipped: BTreeSet<OrderId>,
    /// Voyages whose worktree an earlier attempt's crew still held, each reported once.
    pub occupied: BTreeSet<VoyageId>,
    /// Orders that failed for good in this run.
    pub failed: BTreeSet<OrderId>,
    /// Queued orders waiting out a retry backoff when the dispatcher stopped, and until when.
    pub backing_off: BTreeMap<OrderId, i64>,
}

/// The repository as the dispatch loop last opened it. Opening costs a
/// discovery and a read of every config file: it is done again once the
/// last opening is a second old, so settings changed meanwhile (a crew's
/// command, a limit) apply from the next pass after that.
#[derive(Default)]
struct Opened(Option<(Store, std::time::Instant)>);

impl Opened {
    const FRESH_FOR: Duration = Duration::from_secs(1);

    fn current(&mut self, dir: &Path) -> Result<&Store> {
        if self.0.as_ref().is_none_or(|(_, at)| at.elapsed() >= Self::FRESH_FOR) {
            self.0 = Some((Store::discover(dir)?, std::time::Instant::now()));
        }
        Ok(&self.0.as_ref().expect("opened just now").0)
    }

    /// Keep what a run wrote readable without a new look at the packs.
    fn adopt(&mut self, written: crate::store::Written) {
        if let Some((store, _)) = &mut self.0 {
            store.adopt(written);
        }
    }
}

pub(super) enum Msg {
    Line(String),
    /// A run ended; with the objects it wrote, still in memory.
    Done(VoyageId, crate::store::Written),
    /// The order failed for good in this run.
    FailedForGood(OrderId),
}

/// Run the dispatch loop in the repository at `dir`, reporting to `out`.
pub fn dispatch(dir: &Path, opts: &Options, stop: &StopSignal, out: &mut dyn Write) -> Result<Outcome> {
    let runner = Runner::here();
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut busy: BTreeSet<VoyageId> = BTreeSet::new();
    // The runs' threads, joined once ended: a thread not joined keeps its
    // stack mapped, and a dispatcher that watches for days starts thousands.
    let mut workers: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let mut outcome = Outcome::default();
    let mut pending = Vec::new();
    let mut running: BTreeMap<VoyageId, Running> = BTreeMap::new();
    let mut display =
        Display { live: opts.live, drawn: false, idle_since: None, last_heartbeat: None, told_stopping: false };
    let mut opened = Opened::default();
    // Every pass reads every order's summary: only changed shards are parsed again.
    let mut shards = crate::store::ShardCache::default();
    let mut look = true;
    let mut swept = false;
    loop {
        if stop.drain.load(Ordering::SeqCst) && !display.told_stopping {
            display.told_stopping = true;
            let n = busy.len();
            display.line(
                out,
                &format!("stopping: taking no new work; {n} running crew(s) finish first (Ctrl-C again stops them)"),
            )?;
        }
        // Nothing to look for when the last thing heard was a run's line:
        // only a run that ended, or time passing, makes new work startable.
        let mut can_claim = std::mem::replace(&mut look, true);
        if can_claim
            && !stop.drain.load(Ordering::SeqCst)
            && let Some(remote) = &opts.remote
        {
            // A single pass with nothing in flight waits for the server a
            // while; otherwise one try, and the loop comes back to it.
            let synced = if opts.watch || !busy.is_empty() {
                crate::sync::sync(dir, remote)
            } else {
                crate::sync::patiently(&format!("sync with {remote}"), patience(opts), &stop.drain, || {
                    crate::sync::sync(dir, remote)
                })
            };
            match synced {
                Ok(report) => {
                    for line in report.lines.iter().filter(|l| l.starts_with("dropped") || l.starts_with("renumbered"))
                    {
                        writeln!(out, "sync: {line}")?;
                    }
                }
                // A runner outlives a server that is briefly unreachable:
                // a watching one, or one with runs in flight, takes no
                // new work this pass and tries again on the next.
                Err(e) if opts.watch || !busy.is_empty() => {
                    tracing::warn!("sync with {remote} failed, trying again later: {e}");
                    can_claim = false;
                }
                Err(e) => return Err(e),
            }
        }
        if can_claim && !stop.drain.load(Ordering::SeqCst) {
            // Re-opened now and then: a long-running dispatcher sees config changes.
            let store = opened.current(dir)?;
            // One read of the shard indexes serves recovery and the search for
            // work, unless recovery re-queued something.
            let mut summaries = store.summaries_cached(&store.require_tip()?, &mut shards)?;
            // Only open orders are running, held or queued.
            if recover_leases(store, &runner, summaries.of_open_shards(), out)? {
                summaries = store.summaries_cached(&store.require_tip()?, &mut shards)?;
            }
            let (ready, backing_off) = ready(summaries.of_open_shards(), &busy, crate::store::now());
            // Once a run: a dispatcher killed between recovering a last
            // attempt and setting its commits aside left them for this one.
            // The latest failures first, and a bounded number of them: each
            // costs reads of the branch, the ledger and remote branches.
            if !swept {
                swept = true;
                let mut failed: Vec<&OrderSummary> = summaries
                    .of_open_shards()
                    .filter(|s| s.status == Status::Failed && !busy.contains(&s.voyage))
                    .collect();
                failed.sort_by_key(|s| std::cmp::Reverse(s.seq));
                let mut seen = BTreeSet::new();
                for s in failed.into_iter().filter(|s| seen.insert(s.voyage)).take(SWEPT_VOYAGES) {
                    set_aside_unrecorded(store, s.voyage);
                }
            }
            outcome.backing_off = backing_off;
            // Claims are made here first, then confirmed together: with a
            // remote, one push claims every order of the pass.
            // Claims an earlier pass could not confirm (the server was away) come first.
            let mut claimed = std::mem::take(&mut pending);
            // A role's crew is read from the config once a pass, however
            // many voyages wait for it.
            let mut crews: BTreeMap<Role, std::result::Result<Option<CrewSpec>, String>> = BTreeMap::new();
            for order in ready {
                if busy.len() + claimed.len() >= opts.max_parallel.max(1) {
                    break;
                }
                let crew = crews.entry(order.role.clone()).or_insert_with(|| crew_spec(store, &order.role)).clone();
                let crew = match crew {
                    Ok(crew) => crew,
                    // A setting this machine cannot read is an error here, not a failed run.
                    Err(why) => {
                        if outcome.config_errors.insert(why.clone()) {
                            writeln!(out, "{}  {}  not started: {why}", order.id, order.role)?;
                        }
                        continue;
                    }
                };
                let Some(crew) = crew.or_else(|| builtin_crew(&order.role)) else {
                    if outcome.missing_crews.insert(order.role.clone()) && opts.watch {
                        tracing::warn!("{}", missing_crew_message(&order.role));
                    }
                    continue;
                };
                // A worktree belongs to one attempt: a crew of a killed runner
                // may still be dying there.
                if super::worktree::in_use(store.common_dir(), order.voyage) {
                    if outcome.occupied.insert(order.voyage) {
                        writeln!(
                            out,
                            "{}  {}  waiting: a crew of an earlier attempt still runs in the worktree of {}",
                            order.id, order.role, order.voyage
                        )?;
                    }
                    continue;
                }
                let gate = gate_command(store, &order.role);
                let order = match claim(store, &runner, &order.id) {
                    Ok(Claim::Taken(order)) => *order,
                    Ok(Claim::Held(line)) => {
                        writeln!(out, "{line}")?;
                        continue;
                    }
                    Ok(Claim::Lost) => continue,
                    // One order that cannot start must not stop the others: say
                    // so (once per dispatcher) and go on.
                    Err(e) => {
                        if outcome.skipped.insert(order.id.clone()) {
                            writeln!(out, "{}  skipped: {e}", order.id)?;
                        }
                        continue;
                    }
                };
                claimed.push((order, crew, gate));
            }
            // With a remote, a claim is ours only once our push of it lands.
            if let Some(remote) = &opts.remote
                && !claimed.is_empty()
            {
                let orders: Vec<&Order> = claimed.iter().map(|(o, _, _)| o).collect();
                match confirm_claims(dir, remote, &runner, &orders, patience(opts), &stop.drain) {
                    Ok(mut ours) => {
                        claimed = claimed
                            .into_iter()
                            .filter_map(|(o, crew, gate)| ours.remove(&o.id).map(|o| (o, crew, gate)))
                            .collect();
                    }
                    // Runs in flight, or a watching runner: never abandoned for
                    // this. The claims wait, recorded here, for the next pass.
                    Err(e) if opts.watch || !busy.is_empty() => {
                        tracing::warn!(
                            "could not confirm {} claim(s) with {remote}, trying again later: {e}",
                            orders.len()
                        );
                        pending = claimed;
                        claimed = Vec::new();
                    }
                    Err(e) => return Err(e),
                }
            }
            for (order, crew, gate) in claimed {
                let config = store.config(&store.require_tip()?)?;
                let log = run_dir(store.common_dir(), &order).join("crew.log");
                display.line(
                    out,
                    &format!(
                        "{}  {}  {:<10}  started    attempt {}  runner {}  log {}",
                        order.id,
                        order.role,
                        config.persona(&order.role),
                        order.attempt,
                        runner.id,
                        log.display()
                    ),
                )?;
                outcome.started += 1;
                let voyage = order.voyage;
                busy.insert(voyage);
                let label = format!("{} {}", order.id, order.role);
                running.insert(voyage, Running { label, since: std::time::Instant::now(), log });
                let job = run::Job {
                    dir: dir.to_path_buf(),
                    store: store.clone(),
                    runner: runner.clone(),
                    order,
                    crew,
                    gate,
                    hard_stop: stop.hard.clone(),
                    drain: stop.drain.clone(),
                    synced: std::cell::Cell::new(false),
                    remote: opts.remote.clone(),
                    patience: patience(opts),
                    report: tx.clone(),
                };
                workers.push(std::thread::spawn(move || run::run(job)));
            }
        }
        if busy.is_empty() {
            if opts.watch && !stop.drain.load(Ordering::SeqCst) {
                // Idle: say so once, then now and then, so a log shows the runner is alive.
                let now = std::time::Instant::now();
                let since = *display.idle_since.get_or_insert(now);
                if display.last_heartbeat.is_none_or(|at| at.elapsed() >= HEARTBEAT) {
                    display.last_heartbeat = Some(now);
                    let waited = since.elapsed().as_secs() / 60;
                    let text = if waited == 0 {
                        "idle: no work ready; watching (Ctrl-C stops)".to_string()
                    } else {
                        format!("idle for {waited} min; still watching")
                    };
                    if !display.live {
                        display.line(out, &text)?;
                    }
                }
                display.status(out, &running, outcome.backing_off.len())?;
                std::thread::sleep(opts.poll);
                continue;
            }
            break;
        }
        display.idle_since = None;
        display.last_heartbeat = None;
        display.status(out, &running, outcome.backing_off.len())?;
        match rx.recv_timeout(opts.poll) {
            Ok(Msg::Line(line)) => {
                display.line(out, &line)?;
                look = false;
            }
            Ok(Msg::Done(voyage, written)) => {
                opened.adopt(written);
                // Those that ended (this one, its last message sent, may be
                // ending still: the next time then), never waiting for one.
                let (ended, going): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut workers).into_iter().partition(|w| w.is_finished());
                workers = going;
                for worker in ended {
                    let _ = worker.join();
                }
                busy.remove(&voyage);
                running.remove(&voyage);
            }
            Ok(Msg::FailedForGood(id)) => {
                outcome.failed.insert(id);
            }
            Err(_) => {}
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
    if display.drawn {
        write!(out, "\r\u{1b}[K")?;
    }
    // Claims never confirmed (the server was away): say so; they run again
    // once their leases run out.
    for (order, _, _) in &pending {
        let until = order.lease.as_ref().map_or_else(String::new, |l| crate::core::time::format_utc(l.expires));
        writeln!(
            out,
            "{}  {}  claimed but not started: the claim could not be confirmed with the remote; \
             it is run again once its lease runs out ({until})",
            order.id, order.role
        )?;
    }
    while let Ok(msg) = rx.try_recv() {
        match msg {
            Msg::Line(line) => writeln!(out, "{line}")?,
            Msg::FailedForGood(id) => {
                outcome.failed.insert(id);
            }
            Msg::Done(..) => {}
        }
    }
    Ok(outcome)
}

/// How long a runner's pushes ride out a server that cannot be reached:
/// a watching runner waits for it to come back (until it is stopped); a
/// single pass gives up after a minute (`MSO_PATIENCE_SECS` overrides both).
fn patience(opts: &Options) -> Duration {
    if let Some(secs) = std::env::var("MSO_PATIENCE_SECS").ok().and_then(|s| s.parse::<u64>().ok()) {
        return Duration::from_secs(secs);
    }
    if opts.watch { Duration::from_secs(7 * 24 * 3600) } else { Duration::from_secs(60) }
}

/// The error for a role this machine has no crew for.
pub fn missing_crew_message(role: &Role) -> String {
    format!("no crew for role {role}: set it with `git config mso.crew.{role}.command '<command>'`")
}

fn config_string(store: &Store, key: &str) -> Option<String> {
    store.repo().config_snapshot().string(key).map(|v| v.to_string()).filter(|v| !v.trim().is_empty())
}

/// What runs a role no crew is configured for: REL publishes the voyage
/// (`git mso voyage publish`); other roles have nothing built in.
pub fn builtin_crew(role: &Role) -> Option<CrewSpec> {
    (role.as_str() == "REL").then(|| CrewSpec { command: String::new(), timeout: None, idle: None, publish: true })
}

/// How long a crew may print nothing before it is stopped, unless
/// `mso.crew.<ROLE>.idleTimeout` (or `mso.crew.idleTimeout`) says otherwise.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(20 * 60);

/// `mso.crew.<ROLE>.command`, `.timeout` and `.idleTimeout` from this
/// machine's git config (never from the ledger); `Ok(None)` without a
/// command, an error naming a setting that does not parse.
pub fn crew_spec(store: &Store, role: &Role) -> std::result::Result<Option<CrewSpec>, String> {
    let Some(command) = config_string(store, &format!("mso.crew.{role}.command")) else { return Ok(None) };
    let duration = |key: String, text: String| {
        crew::parse_timeout(&text).ok_or_else(|| {
            format!("{key} is {}; give a duration such as 90, 90s, 15m or 2h", crate::core::ids::shown(&text))
        })
    };
    let key = format!("mso.crew.{role}.timeout");
    let timeout = config_string(store, &key).map(|t| duration(key, t)).transpose()?;
    let idle = match crew_setting_key(store, role, "idleTimeout") {
        None => Some(DEFAULT_IDLE),
        Some((_, t)) if t.trim() == "off" => None,
        Some((key, t)) => Some(duration(key, t)?),
    };
    if let Some((key, turns)) = crew_setting_key(store, role, "maxTurns")
        && !turns.trim().parse::<u32>().is_ok_and(|n| (1..=10_000).contains(&n))
    {
        return Err(format!("{key} is {}; give a number from 1 to 10000", crate::core::ids::shown(&turns)));
    }
    Ok(Some(CrewSpec { command, timeout, idle, publish: false }))
}

/// A crew setting and the key it came from: `mso.crew.<ROLE>.<name>`, else `mso.crew.<name>`.
fn crew_setting_key(store: &Store, role: &Role, name: &str) -> Option<(String, String)> {
    [format!("mso.crew.{role}.{name}"), format!("mso.crew.{name}")]
        .into_iter()
        .find_map(|key| config_string(store, &key).map(|v| (key, v)))
}

/// A setting of this machine's git config for the crews of `role`:
/// `mso.crew.<ROLE>.<name>`, else `mso.crew.<name>`.
pub fn crew_setting(store: &Store, role: &Role, name: &str) -> Option<String> {
    config_string(store, &format!("mso.crew.{role}.{name}"))
        .or_else(|| config_string(store, &format!("mso.crew.{name}")))
}

/// `mso.gate.<ROLE>.command`: an automatic check run after the crew succeeds.
fn gate_command(store: &Store, role: &Role) -> Option<String> {
    config_string(store, &format!("mso.gate.{role}.command"))
}

/// Queued orders that may start now: the oldest of each voyage that no
/// order holds (none runs there, none awaits review there), unless it waits
/// out a retry backoff (then its voyage waits with it); and those waiting.
fn ready<'a>(
    summaries: impl Iterator<Item = &'a OrderSummary> + Clone,
    busy_here: &BTreeSet<VoyageId>,
    now: i64,
) -> (Vec<OrderSummary>, BTreeMap<OrderId, i64>) {
    let held: BTreeSet<VoyageId> = summaries.clone().filter(|s| s.status.holds_voyage()).map(|s| s.voyage).collect();
    let mut queued: Vec<&OrderSummary> = summaries.filter(|s| s.status == Status::Queued).collect();
    queued.sort_by_key(|s| s.seq);
    let mut oldest: BTreeMap<VoyageId, OrderSummary> = BTreeMap::new();
    for s in queued {
        if !held.contains(&s.voyage) && !busy_here.contains(&s.voyage) {
            oldest.entry(s.voyage).or_insert_with(|| s.clone());
        }
    }
    let mut waiting = BTreeMap::new();
    let mut ready: Vec<_> = oldest
        .into_values()
        .filter(|s| match s.retry_after {
            Some(at) if at > now => {
                waiting.insert(s.id.clone(), at);
                false
            }
            _ => true,
        })
        .collect();
    ready.sort_by_key(|s| s.seq);
    (ready, waiting)
}

/// What a claim came to.
enum Claim {
    /// The role is ours to run.
    Taken(Box<Order>),
    /// The voyage branch holds commits the ledger does not know: the order
    /// went to review instead (the line says so).
    Held(String),
    /// Another runner got there first, or the order is no longer queued.
    Lost,
}

/// Claim an order's current role with a DISPATCHED commit, or hold it for
/// review when its voyage branch has commits nobody reviewed: a role only
/// ever starts from the head the ledger recorded.
fn claim(store: &Store, runner: &Runner, id: &OrderId) -> Result<Claim> {
    if let Some(tip) = store.tip()?
        && let Some(order) = store.order(&tip, id)?
        && let Err(why) = back_to_recorded_head(store, &tip, order.voyage)?
    {
        return Err(crate::error::Error::Input(why));
    }
    let (claimed, committed) = store.transact_if(|tx| {
        let ttl = tx.config()?.lease_ttl_secs as i64;
        let order = tx.order(id)?.clone();
        if order.status != Status::Queued {
            return Ok(None);
        }
        let Some(voyage) = tx.try_voyage(order.voyage)?.cloned() else { return Ok(None) };
        if voyage.active.is_some() {
            return Ok(None);
        }
        if let Some((head, reason)) = unreviewed(store, &voyage)? {
            tx.push(EventBody::Held { order: id.clone(), role: order.role.clone(), head, reason: reason.clone() })?;
            return Ok(Some(Err(reason)));
        }
        let lease = Lease {
            runner: runner.id.clone(),
            host: runner.host.clone(),
            pid: runner.pid,
            expires: tx.now().saturating_add(ttl),
            actor: tx.actor().to_string(),
        };
        tx.push(EventBody::Dispatched { order: id.clone(), role: order.role.clone(), attempt: order.attempt, lease })?;
        Ok(Some(Ok(())))
    })?;
    Ok(match (claimed, committed) {
        (Some(Ok(())), Some(c)) => c.order(id).cloned().map_or(Claim::Lost, |o| Claim::Taken(Box::new(o))),
        (Some(Err(reason)), Some(_)) => {
            Claim::Held(format!("{id}  held for review: {reason}; `git mso review approve {id}` builds on them"))
        }
        _ => Claim::Lost,
    })
}

/// The voyage branch's commits that the ledger does not know, if any: its
/// tip and a reason naming them. A branch behind the recorded head, or not
/// created yet, has none (the run brings it to the recorded head).
fn unreviewed(store: &Store, voyage: &crate::core::Voyage) -> Result<Option<(String, String)>> {
    let Some(tip) = store.branch_tip(voyage)? else { return Ok(None) };
    let Ok(recorded) = store.recorded_head(voyage) else {
        // The recorded head is not here (the branch was rewritten while the
        // voyage had no open orders, and its old commits are gone): what the
        // branch holds is unknown to the ledger.
        return Ok(Some((
            tip.to_string(),
            format!(
                "{} is at {}, and the head the ledger recorded for it, {}, is not in this repository: review \
                 what the branch holds",
                voyage.id.branch(),
                crate::store::short(tip),
                crate::core::event::short(&voyage.head)
            ),
        )));
    };
    if tip == recorded || crate::store::objects::is_ancestor(store.repo(), tip, recorded) == Some(true) {
        return Ok(None);
    }
    let (commits, more) = store.unknown_commits(recorded, tip, 5)?;
    let listed = commits.join("; ") + if more { "; …" } else { "" };
    let recorded = crate::store::short(recorded);
    Ok(Some((
        tip.to_string(),
        format!(
            "{} has commits the ledger does not know ({listed}); its recorded head is {recorded}: \
             review them with `git log {recorded}..refs/heads/{}`",
            voyage.id.branch(),
            voyage.id.branch()
        ),
    )))
}

/// Push claims, all in one sync; after it, an order is still ours only if
/// our DISPATCHED landed. Returns those that are.
fn confirm_claims(
    dir: &Path,
    remote: &str,
    runner: &Runner,
    orders: &[&Order],
    patience: Duration,
    stop: &AtomicBool,
) -> Result<BTreeMap<OrderId, Order>> {
    let what = format!("pushing {} claim(s) to {remote}", orders.len());
    crate::sync::patiently(&what, patience, stop, || crate::sync::sync(dir, remote))?;
    let store = Store::discover(dir)?;
    let tip = store.require_tip()?;
    // A claim that took most of its lease to land (the server was away) is
    // not started: others may declare it run out while its crew starts.
    let ttl = store.config(&tip)?.lease_ttl_secs as i64;
    let now = store.now();
    let mut ours = BTreeMap::new();
    for claimed in orders {
        let still = store.order(&tip, &claimed.id)?.filter(|o| {
            o.status == Status::Running
                && o.attempt == claimed.attempt
                && o.lease.as_ref().is_some_and(|l| l.runner == runner.id && l.expires - now > ttl / 2)
        });
        if let Some(order) = still {
            ours.insert(order.id.clone(), order);
        }
    }
    Ok(ours)
}

/// Turn runs whose runner is gone into LEASE_EXPIRED: the lease ran out, or
/// its runner was on this host and its process no longer exists.
/// Returns whether any order was recovered.
fn recover_leases<'a>(
    store: &Store,
    me: &Runner,
    summaries: impl Iterator<Item = &'a OrderSummary>,
    out: &mut dyn Write,
) -> Result<bool> {
    let mut recovered = false;
    let running: Vec<OrderId> = summaries.filter(|s| s.status == Status::Running).map(|s| s.id.clone()).collect();
    let actor = &store.identity().actor;
    for id in running {
        // Before a lease runs out, only its holder's identity may declare its
        // runner dead: a process of this host that no longer exists.
        let dead = |lease: &Lease, now: i64| {
            lease.expires <= now
                || (lease.host == me.host
                    && &lease.actor == actor
                    && lease.pid != me.pid
                    && !crew::pid_alive(lease.pid))
        };
        let (expired, _) = store.transact_if(|tx| {
            let now = tx.now();
            let order = tx.order(&id)?.clone();
            match &order.lease {
                Some(lease) if order.status == Status::Running && dead(lease, now) => {
                    let runner = lease.runner.clone();
                    tx.push(EventBody::LeaseExpired {
                        order: id.clone(),
                        role: order.role.clone(),
                        runner: runner.clone(),
                    })?;
                    Ok(Some((order.role, runner, order.voyage)))
                }
                _ => Ok(None),
            }
        })?;
        if let Some((role, runner, voyage)) = expired {
            writeln!(out, "{id}  {role}  recovered: the lease of {runner} expired (its runner is gone)")?;
            recovered = true;
            set_aside_unrecorded(store, voyage);
        }
    }
    Ok(recovered)
}

/// How many voyages of failed orders a dispatcher looks at when it starts
/// (see `set_aside_unrecorded`).
const SWEPT_VOYAGES: usize = 32;

/// Before a claim, the voyage's branch goes back to the head the ledger
/// recorded where it may: from rejected work (rejected elsewhere, or the
/// move back failed), the work kept aside under its ref; then from the
/// commits of a run whose runner died before it recorded the run (the run
/// is re-done). `Err` says why rejected work stays where it is.
fn back_to_recorded_head(
    store: &Store,
    tip: &crate::store::Tip,
    voyage: VoyageId,
) -> Result<std::result::Result<(), String>> {
    if let Some(v) = store.voyage(tip, voyage)?
        && let crate::store::SetAside::Blocked(why) = store.set_aside_rejected(tip, &v)?
    {
        return Ok(Err(why));
    }
    if let Some(said) = store.set_aside_unrecorded(voyage)? {
        tracing::warn!("{said}");
    }
    Ok(Ok(()))
}

/// A runner that died between moving its voyage's branch to its crew's
/// commit and recording the run left the branch ahead. The claim of the
/// voyage's next order puts it back, but there may be none (the attempt
/// was the order's last): once the ledger says the attempt ended, put it
/// back now, as a claim does. Never an error: the next claim tries again.
fn set_aside_unrecorded(store: &Store, voyage: VoyageId) {
    let back = store.tip().and_then(|tip| tip.map_or(Ok(Ok(())), |tip| back_to_recorded_head(store, &tip, voyage)));
    if let Err(e) = back {
        tracing::warn!("{voyage}: could not set aside the commits of runs never recorded: {e}");
    }
}

/// Where a run's brief, result and logs live:
/// `<git dir>/mso/runs/<ORDER>-<ROLE>-<attempt>-run<N>/`, N counting the
/// order's runs (a role can run at the same attempt number twice, when the
/// order was sent back to an earlier role in between).
pub fn run_dir(common_dir: &Path, order: &Order) -> PathBuf {
    let runs = crate::core::report::started_runs(order);
    run_dir_of(common_dir, &order.id, &order.role, order.attempt, runs)
}

/// The directory of the order's `run`-th run (from 1), at `role` and `attempt`.
pub fn run_dir_of(common_dir: &Path, id: &OrderId, role: &Role, attempt: u32, run: usize) -> PathBuf {
    runs_dir(common_dir).join(format!("{id}-{role}-{attempt}-run{run}"))
}

/// Where all runs' directories live.
pub fn runs_dir(common_dir: &Path) -> PathBuf {
    super::worktree::mso_dir(common_dir).join("runs")
}
