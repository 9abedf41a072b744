//! One claimed run: worktree, brief, crew, checks, commit, result in the ledger.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use gix::ObjectId;

use super::crew::{self, CrewExit, CrewSpec};
use super::dispatch::{Msg, run_dir};
use super::worktree;
use crate::core::apply::{hand_off, limits};
use crate::core::text;
use crate::core::{EventBody, Order, Status, brief};
use crate::error::{Error, Result};
use crate::store::{self, Store};

/// Who runs crews here: the id in leases, this host, this process.
#[derive(Debug, Clone)]
pub struct Runner {
    pub id: String,
    pub host: String,
    pub pid: u32,
}

impl Runner {
    pub fn here() -> Self {
        Runner { id: store::runner_id(), host: store::host(), pid: std::process::id() }
    }
}

pub(super) struct Job {
    pub dir: PathBuf,
    pub runner: Runner,
    pub order: Order,
    pub crew: CrewSpec,
    pub gate: Option<String>,
    pub hard_stop: Arc<AtomicBool>,
    pub report: Sender<Msg>,
    pub remote: Option<String>,
}

/// Why the watcher stopped a crew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupted {
    /// The order left `running` under us (cancelled, or its lease was recovered).
    Cancelled,
    /// The runner is shutting down.
    Shutdown,
}

pub(super) fn run(job: Job) {
    let mut line = match execute(&job) {
        Ok(line) => line,
        Err(err) => {
            // Release the claim so the order is not stuck running.
            let released = Store::discover(&job.dir)
                .and_then(|store| record_failure(&store, &job, None, format!("runner error: {err}")))
                .unwrap_or_else(|e| format!("could not release the claim: {e}"));
            format!("{}  {}  error: {err} → {released}", job.order.id, job.order.role)
        }
    };
    if let Some(remote) = &job.remote
        && let Err(e) = crate::sync::sync(&job.dir, remote)
    {
        line.push_str(&format!(" (not yet pushed to {remote}: {e}; the next sync retries)"));
    }
    let _ = job.report.send(Msg::Line(line));
    let _ = job.report.send(Msg::Done(job.order.voyage));
}

fn execute(job: &Job) -> Result<String> {
    let store = Store::discover(&job.dir)?;
    let tip = store.require_tip()?;
    let config = store.config(&tip)?;
    let order = &job.order;
    let voyage = store.voyage(&tip, order.voyage)?.ok_or(crate::core::TransitionError::UnknownVoyage(order.voyage))?;
    // The run starts from the head the ledger recorded, never from whatever
    // the branch holds: the claim held the order if the branch was ahead.
    store.ensure_voyage_branch(&voyage)?;
    let base = store.recorded_head(&voyage)?;
    let branch = store.branch_tip(&voyage)?.ok_or_else(|| Error::Input(format!("{} has no branch", voyage.id)))?;
    if branch != base {
        if crate::store::objects::is_ancestor(store.repo(), branch, base) != Some(true) {
            return Err(Error::Input(format!(
                "{} moved to {} since the claim; it holds commits the ledger does not know",
                voyage.id.branch(),
                store::short(branch)
            )));
        }
        store.advance_branch(&voyage, branch, base)?;
    }
    if job.crew.publish {
        return release(&store, job, base);
    }
    let common = store.common_dir().to_path_buf();
    let wt = worktree::prepare(&common, voyage.id, base)?;

    let dir = run_dir(&common, order);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let brief_file = dir.join("brief.md");
    let result_file = dir.join("result.json");
    let log = dir.join("crew.log");
    std::fs::write(&brief_file, brief::render(order, &config)).map_err(|e| Error::io("writing the brief", e))?;
    let _ = std::fs::remove_file(&result_file);
    let persona = config.persona(&order.role).to_string();
    let model = config.role(&order.role).map_or_else(|| "standard".to_string(), |r| r.model.clone());
    let read_only = config.role(&order.role).is_some_and(|r| r.read_only);
    let env = [
        ("MSO_ORDER", order.id.to_string()),
        ("MSO_ROLE", order.role.to_string()),
        ("MSO_ATTEMPT", order.attempt.to_string()),
        ("MSO_VOYAGE", order.voyage.to_string()),
        ("MSO_PERSONA", persona.clone()),
        ("MSO_MODEL", model),
        ("MSO_BRIEF_FILE", brief_file.display().to_string()),
        ("MSO_RESULT_FILE", result_file.display().to_string()),
        ("MSO_READ_ONLY", if read_only { "1" } else { "0" }.to_string()),
    ];
    let line = |what: String| format!("{}  {}  {persona:<10}  {what}", order.id, order.role);

    let stop = Arc::new(AtomicBool::new(false));
    let (done, watcher) = spawn_watcher(job, &stop);
    let started = Instant::now();
    let exit = crew::run(&job.crew.command, &wt, &env, &log, job.crew.timeout, &stop);
    drop(done);
    let interrupted = watcher.join().unwrap_or(None);
    let exit = exit?;
    let secs = started.elapsed().as_secs();

    let fail = |reason: String, exit: Option<i32>, what: String| -> Result<String> {
        worktree::discard(&wt, base)?;
        let next = record_failure(&store, job, exit, reason)?;
        Ok(line(format!("{what} → {next}")))
    };
    match (exit, interrupted) {
        (CrewExit::Stopped, Some(Interrupted::Cancelled)) => {
            worktree::discard(&wt, base)?;
            return Ok(line("stopped: the order was cancelled or taken over; its changes were discarded".into()));
        }
        (CrewExit::Stopped, _) => {
            return fail("the runner was stopped while the crew ran".into(), None, "stopped".into());
        }
        (exit, _) if !exit.success() => {
            let reason = format!("crew {}\n{}", exit.describe(), crew::log_tail(&log, 20, 4096));
            return fail(reason, exit.code(), format!("failed ({})", exit.describe()));
        }
        _ => {}
    }

    let changes = worktree::changes(&wt)?;
    if read_only && (!changes.is_empty() || worktree::head(&wt)? != base) {
        let listed: Vec<&str> = changes.iter().take(10).map(String::as_str).collect();
        let reason =
            format!("read-only role {} changed the tree; changes discarded:\n{}", order.role, listed.join("\n"));
        return fail(reason, Some(0), "failed (read-only role changed files)".into());
    }
    if let Some(gate) = &job.gate {
        let gate_log = dir.join("gate.log");
        let gate_exit = crew::run(gate, &wt, &env, &gate_log, job.crew.timeout, &stop)?;
        if !gate_exit.success() {
            let reason = format!(
                "quality gate mso.gate.{}.command {}\n{}",
                order.role,
                gate_exit.describe(),
                crew::log_tail(&gate_log, 20, 4096)
            );
            return fail(reason, gate_exit.code(), format!("failed the quality gate ({})", gate_exit.describe()));
        }
    }
    if !changes.is_empty() {
        let message = format!(
            "{} {}: {}\n\nMso-Order: {}\nMso-Role: {}\nMso-Attempt: {}\n",
            order.id, order.role, order.title, order.id, order.role, order.attempt
        );
        worktree::commit_all(&wt, store.identity(), &message)?;
    }
    let head = worktree::head(&wt)?;
    if head != base {
        if let Err(e) = store.advance_branch(&voyage, base, head) {
            return fail(e.to_string(), Some(0), "failed (voyage branch moved)".into());
        }
        // With a remote, the commit must be on the server before the ledger names it.
        if let Some(remote) = &job.remote
            && !crate::sync::publish_branch(&job.dir, remote, &voyage.id.branch(), base, head)?
        {
            store.advance_branch(&voyage, head, base)?;
            let reason =
                format!("{} moved on {remote} during the run; the result was not published", voyage.id.branch());
            return fail(reason, Some(0), "failed (voyage branch moved on the remote)".into());
        }
    }
    // Whatever the crew left there: a regular file, bounded, lossily UTF-8.
    let result = crew::read_crew_file(&result_file, 4 * limits::SUMMARY as u64).unwrap_or_default();
    let summary = brief::read_result(&String::from_utf8_lossy(&result));
    record_success(&store, job, head, summary).map(|next| line(format!("succeeded in {secs} s → {next}")))
}

/// The built-in REL: publish the voyage (push, pull request text, forge
/// adapter if configured), then record the role's success at the same head.
fn release(store: &Store, job: &Job, head: ObjectId) -> Result<String> {
    let order = &job.order;
    let opts = crate::publish::Options { remote: job.remote.as_deref(), releasing: Some(&order.id) };
    let started = Instant::now();
    // The lease is renewed while the push and the forge adapter run.
    let stop = Arc::new(AtomicBool::new(false));
    let (done, watcher) = spawn_watcher(job, &stop);
    let published = crate::publish::publish(&job.dir, order.voyage, &opts);
    drop(done);
    let interrupted = watcher.join().unwrap_or(None);
    let published = published?;
    if interrupted == Some(Interrupted::Cancelled) {
        return Ok(format!(
            "{}  {}  built-in release  published to {}, but the order was cancelled or taken over meanwhile; \
             the role's result is not recorded",
            order.id, order.role, published.url
        ));
    }
    let summary = format!("published {} as \"{}\": {}", order.voyage, published.title, published.url);
    let said = record_success(store, job, head, summary)?;
    Ok(format!(
        "{}  {}  built-in release  published to {} in {} s → {said}",
        order.id,
        order.role,
        published.url,
        started.elapsed().as_secs()
    ))
}

/// SUCCEEDED, and in the same commit the hand-off when the role is not gated.
fn record_success(store: &Store, job: &Job, head: ObjectId, summary: String) -> Result<String> {
    let id = &job.order.id;
    let (next, committed) = store.transact_if(|tx| {
        let current = tx.order(id)?.clone();
        if !still_ours(&current, job) {
            return Ok(None);
        }
        tx.push(EventBody::Succeeded {
            order: id.clone(),
            role: current.role.clone(),
            attempt: current.attempt,
            runner: job.runner.id.clone(),
            head: head.to_string(),
            summary: summary.clone(),
        })?;
        let after = tx.order(id)?.clone();
        if after.status != Status::HandingOff {
            return Ok(Some(format!("awaiting review (git mso review approve {id})")));
        }
        let next = hand_off(&after);
        let said = match &next {
            EventBody::Advanced { to, .. } => format!("{to} queued"),
            _ => "completed".to_string(),
        };
        tx.push(next)?;
        Ok(Some(said))
    })?;
    match (next, committed) {
        (Some(next), Some(committed)) => {
            if let Some(order) = committed.order(id)
                && let Err(e) = store.note_order(order, &head.to_string())
            {
                tracing::warn!("could not write the note on {head}: {e}");
            }
            Ok(next)
        }
        _ => Ok("finished, but the order was cancelled or taken over meanwhile; result not recorded".into()),
    }
}

/// FAILED for this run (re-queued while attempts remain); says what happens next.
fn record_failure(store: &Store, job: &Job, exit: Option<i32>, reason: String) -> Result<String> {
    let id = &job.order.id;
    // The reason carries crew and git output: escaped and bounded, so it can always be recorded.
    let reason = text::clip(text::display(&reason, true).into_owned(), limits::REASON);
    let (next, _) = store.transact_if(|tx| {
        let current = tx.order(id)?.clone();
        if !still_ours(&current, job) {
            return Ok("the order was no longer ours; nothing recorded".to_string());
        }
        tx.push(EventBody::Failed {
            order: id.clone(),
            role: current.role.clone(),
            attempt: current.attempt,
            runner: job.runner.id.clone(),
            exit,
            reason: reason.clone(),
        })?;
        let after = tx.order(id)?;
        Ok(match after.status {
            Status::Failed => format!("failed for good; retry with `git mso order retry {id}`"),
            _ => format!("queued again (attempt {})", after.attempt),
        })
    })?;
    Ok(next)
}

/// The order is still running under this runner's claim.
fn still_ours(order: &Order, job: &Job) -> bool {
    order.status == Status::Running
        && order.attempt == job.order.attempt
        && order.lease.as_ref().is_some_and(|l| l.runner == job.runner.id)
}

/// Start the watcher of a run: it renews the lease and sets `stop` if the
/// order is cancelled or taken over, or the runner shuts down hard. Dropping
/// the returned sender wakes it at once when the run ends.
fn spawn_watcher(job: &Job, stop: &Arc<AtomicBool>) -> (Sender<()>, std::thread::JoinHandle<Option<Interrupted>>) {
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let (dir, runner, id, stop, hard, remote) = (
        job.dir.clone(),
        job.runner.clone(),
        job.order.id.clone(),
        stop.clone(),
        job.hard_stop.clone(),
        job.remote.clone(),
    );
    let watcher = std::thread::spawn(move || watch(&dir, &runner, &id, &stop, &finished, &hard, remote.as_deref()));
    (done, watcher)
}

/// While a crew runs: renew the lease, and stop the crew if the order is
/// cancelled or taken over, or the runner shuts down hard.
fn watch(
    dir: &std::path::Path,
    runner: &Runner,
    id: &crate::core::OrderId,
    stop: &AtomicBool,
    finished: &std::sync::mpsc::Receiver<()>,
    hard: &AtomicBool,
    remote: Option<&str>,
) -> Option<Interrupted> {
    let store = Store::discover(dir).ok()?;
    let mut seen = Seen::default();
    let mut last_check = Instant::now();
    let mut last_sync = Instant::now();
    loop {
        match finished.recv_timeout(Duration::from_millis(25)) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            _ => return None,
        }
        if hard.load(Ordering::SeqCst) {
            stop.store(true, Ordering::SeqCst);
            return Some(Interrupted::Shutdown);
        }
        // With a remote, learn of cancellations there and push lease renewals.
        if let Some(remote) = remote
            && last_sync.elapsed() >= Duration::from_secs(2)
        {
            last_sync = Instant::now();
            if let Err(e) = crate::sync::sync(dir, remote) {
                tracing::warn!("sync with {remote} while {id} runs: {e}");
            }
        }
        if last_check.elapsed() >= Duration::from_millis(250) {
            last_check = Instant::now();
            if let Some(interrupted) = check_claim(&store, runner, id, &mut seen) {
                stop.store(true, Ordering::SeqCst);
                return Some(interrupted);
            }
        }
    }
}

/// What the watcher last saw of the ledger: its tip, and the lease's expiry then.
#[derive(Default)]
struct Seen {
    tip: Option<ObjectId>,
    expires: i64,
}

/// When the ledger moved, check the run is still ours; renew the lease once a
/// third of it has run out, well before it can lapse.
fn check_claim(store: &Store, runner: &Runner, id: &crate::core::OrderId, seen: &mut Seen) -> Option<Interrupted> {
    let tip = store.tip().ok()??;
    if seen.tip != Some(tip.commit) {
        let order = store.order(&tip, id).ok()??;
        let lease = order.lease.as_ref().filter(|l| order.status == Status::Running && l.runner == runner.id);
        let Some(lease) = lease else { return Some(Interrupted::Cancelled) };
        *seen = Seen { tip: Some(tip.commit), expires: lease.expires };
    }
    let ttl = store.config(&tip).ok()?.lease_ttl_secs as i64;
    if seen.expires.saturating_sub(store::now()) <= ttl - ttl / 3 {
        let renewed = store.transact_if(|tx| {
            let current = tx.order(id)?.clone();
            if current.status == Status::Running && current.lease.as_ref().is_some_and(|l| l.runner == runner.id) {
                let expires = tx.now().saturating_add(ttl);
                tx.push(EventBody::LeaseRenewed { order: id.clone(), runner: runner.id.clone(), expires })?;
            }
            Ok(())
        });
        if let Err(e) = renewed {
            tracing::warn!("could not renew the lease of {id}: {e}");
        }
    }
    None
}
