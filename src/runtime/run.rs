//! One claimed run: worktree, brief, crew, checks, commit, result in the ledger.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use gix::ObjectId;

use super::crew::{self, CrewExit, CrewSpec};
use super::dispatch::{self, Msg, run_dir};
use super::worktree;
use crate::core::apply::{hand_off, limits};
use crate::core::report::{self, RunReport};
use crate::core::text;
use crate::core::{EventBody, Order, Status, brief, result};
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
    /// The dispatcher's opened repository, shared (see `Store`).
    pub store: Store,
    pub runner: Runner,
    pub order: Order,
    pub crew: CrewSpec,
    pub gate: Option<String>,
    pub hard_stop: Arc<AtomicBool>,
    /// Set at the first Ctrl-C (and before a hard stop): no new waiting for
    /// the server to take a result; it is recorded here, the next sync pushes it.
    pub drain: Arc<AtomicBool>,
    /// The run's success already went through a sync (or gave up waiting for
    /// one): `run` need not sync again.
    pub synced: std::cell::Cell<bool>,
    pub report: Sender<Msg>,
    pub remote: Option<String>,
    /// How long pushes to the remote ride out a server that cannot be reached.
    pub patience: std::time::Duration,
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
    // The dispatcher waits to hear that a run ended before it stops, and
    // before its voyage takes the next: it hears so even of a run that
    // panicked (its claim is then recovered when its lease runs out).
    struct Ended<'a> {
        job: &'a Job,
        said: bool,
    }
    impl Drop for Ended<'_> {
        fn drop(&mut self) {
            if !self.said {
                let _ = self.job.report.send(Msg::Done(self.job.order.voyage, Default::default()));
            }
        }
    }
    let mut ended = Ended { job: &job, said: false };
    let mut line = match execute(&job) {
        Ok(line) => line,
        Err(err) => {
            // Release the claim so the order is not stuck running.
            let failure = Failure::new("error", &format!("runner error: {err}"), None);
            let released = record_failure(&job.store, &job, failure, None)
                .map_or_else(|e| format!("could not release the claim: {e}"), |(said, _)| said);
            format!("{}  {}  error: {err} → {released}", job.order.id, job.order.role)
        }
    };
    if let Some(remote) = &job.remote
        && !job.synced.get()
        && let Err(e) =
            crate::sync::patiently(&format!("pushing the result to {remote}"), job.patience, &job.hard_stop, || {
                crate::sync::sync(&job.dir, remote)
            })
    {
        line.push_str(&format!(" (not yet pushed to {remote}: {e}; the next sync retries)"));
    }
    let _ = job.report.send(Msg::Line(line));
    // What the run wrote, for the dispatcher's next read of the ledger.
    let _ = job.report.send(Msg::Done(job.order.voyage, job.store.take_written()));
    ended.said = true;
}

fn execute(job: &Job) -> Result<String> {
    let store = &job.store;
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
        return release(store, job, base);
    }
    let common = store.common_dir().to_path_buf();
    let occupancy = occupy_worktree(&common, voyage.id)?;
    let wt = worktree::prepare(store.repo(), voyage.id, base)?;
    let discard = || worktree::discard(store.repo(), &wt, base);

    let dir = run_dir(&common, order);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let brief_file = dir.join("brief.md");
    let result_file = dir.join("result.json");
    let log = dir.join("crew.log");
    for stale in [&result_file, &log, &dir.join("gate.log")] {
        let _ = std::fs::remove_file(stale);
    }
    // The repository's instructions are read at the voyage's base, never
    // from work a crew made: no role rewrites what the next one is told.
    let base_commit = gix::ObjectId::from_hex(voyage.base.as_bytes()).ok();
    let repo_instructions = base_commit.and_then(|c| {
        store.file_in_commit(
            c,
            &brief::instructions_path(&order.role),
            crate::core::config::bounds::INSTRUCTIONS as u64,
        )
    });
    let brief_text = brief::render(order, &config, repo_instructions.as_deref());
    std::fs::write(&brief_file, &brief_text).map_err(|e| Error::io("writing the brief", e))?;
    let persona = config.persona(&order.role).to_string();
    let model = config.role(&order.role).map_or_else(|| "standard".to_string(), |r| r.model.clone());
    let read_only = config.role(&order.role).is_some_and(|r| r.read_only);
    let mut env = vec![
        ("MSO_ORDER", order.id.to_string()),
        ("MSO_ROLE", order.role.to_string()),
        ("MSO_ATTEMPT", order.attempt.to_string()),
        ("MSO_VOYAGE", order.voyage.to_string()),
        ("MSO_PERSONA", persona.clone()),
        ("MSO_MODEL", model),
        ("MSO_BRIEF_FILE", brief_file.display().to_string()),
        ("MSO_RESULT_FILE", result_file.display().to_string()),
        ("MSO_LOG_FILE", log.display().to_string()),
        ("MSO_READ_ONLY", if read_only { "1" } else { "0" }.to_string()),
    ];
    // This machine's settings for its crews (never the ledger's: they run).
    if let Some(test) = dispatch::crew_setting(store, &order.role, "testCommand") {
        env.push(("MSO_TEST_COMMAND", test));
    }
    if let Some(turns) =
        dispatch::crew_setting(store, &order.role, "maxTurns").and_then(|t| t.trim().parse::<u32>().ok())
    {
        env.push(("MSO_MAX_TURNS", turns.to_string()));
    }
    if let Some(budget) = report::budget_micros(order, &config) {
        let left = budget.saturating_sub(report::spent_micros(order));
        env.push(("MSO_BUDGET_USD", budget_text(left)));
    }
    let line = |what: String| format!("{}  {}  {persona:<10}  {what}", order.id, order.role);

    let stop = Arc::new(AtomicBool::new(false));
    let (done, watcher) = spawn_watcher(job, &stop);
    let started = Instant::now();
    let limits = crew::Limits { timeout: job.crew.timeout, idle: job.crew.idle };
    let exit = crew::run(&job.crew.command, &wt, &env, &log, limits, &stop, Some(&occupancy));
    drop(done);
    let interrupted = watcher.join().unwrap_or(None);
    let exit = exit?;

    // What the crew reported, and what the run cost, go on the record whatever became of it.
    let raw = crew::read_crew_file_end(&result_file, RESULT_BYTES).unwrap_or_default();
    let mut result = result::parse(&String::from_utf8_lossy(&raw), &order.acceptance);
    note_problems(&log, &result.problems);
    // Nothing a crew printed reaches the ledger (kept forever, pushed
    // everywhere) or the evidence before its secrets are redacted.
    let settings = store.evidence_settings()?;
    redact_result(&mut result, &settings.redactor);
    let mut report = RunReport {
        brief: brief::digest(&brief_text),
        base: base.to_string(),
        wall_secs: started.elapsed().as_secs(),
        usage: result.usage.clone(),
        verdicts: result.verdicts.clone(),
        findings: result.findings.clone(),
        evidence: String::new(),
    };
    let evidence =
        Evidence { store, settings: &settings, order, brief: &brief_text, message: &result.summary, dir: &dir };
    let fail = |failure: Failure, mut report: RunReport| -> Result<String> {
        let failure = failure.redact(&settings.redactor);
        discard()?;
        let what = format!("{}: {}", failure.what, first_line(&failure.reason));
        let said = run_note(&report, Some(&log));
        let outcome = match &failure.to {
            Some(to) => format!("sent back to {to}"),
            None => "failed".into(),
        };
        let record = evidence.record(&outcome, &report.brief);
        report.evidence = crate::core::evidence::digest(&record);
        let (next, recorded) = record_failure(store, job, failure, Some(report))?;
        let kept = if recorded { evidence.keep(base, record) } else { String::new() };
        Ok(line(format!("{what} → {next}{said}{kept}")))
    };
    match (exit, interrupted) {
        (CrewExit::Stopped, Some(Interrupted::Cancelled)) => {
            discard()?;
            return Ok(line("stopped: the order was cancelled or taken over; its changes were discarded".into()));
        }
        (CrewExit::Stopped, _) => {
            let failure = Failure::new("stopped", "the runner was stopped while the crew ran", None);
            return fail(failure, report);
        }
        (exit, _) if !exit.success() => {
            let mut failure = Failure::new(
                &format!("failed ({})", exit.describe()),
                &format!("crew {}\n{}", exit.describe(), crew::log_tail(&log, 20, 4096)),
                exit.code(),
            );
            if let Some(why) = deterministic(exit, &format!("mso.crew.{}.command", order.role)) {
                failure = failure.permanent(why);
            }
            return fail(failure, report);
        }
        _ => {}
    }
    if let Some(error) = &result.error {
        // "Looked fine but failed": the crew exited 0, its agent said otherwise.
        let failure = Failure::new("failed (the agent reported an error)", error, Some(0));
        return fail(failure, report);
    }

    let left = worktree::left(store.repo(), &wt)?;
    let changes = left.changes.clone();
    if read_only && (!left.changes.is_empty() || !left.ignored.is_empty() || worktree::head(&wt)? != base) {
        let changes = left.all();
        let listed: Vec<&str> = changes.iter().take(10).map(String::as_str).collect();
        let reason =
            format!("read-only role {} changed the tree; changes discarded:\n{}", order.role, listed.join("\n"));
        return fail(Failure::new("failed (read-only role changed files)", &reason, Some(0)), report);
    }
    let objections = report::objections(order, &order.role, Some(&report), &config);
    if !objections.is_empty() {
        // A verdict that finds fault sends the work back to be fixed; a
        // missing verdict is this role's own unfinished business.
        let fault = report::finds_fault(&order.role, Some(&report), &config);
        let to = if fault { report::send_back_target(order, &order.role, &config) } else { None };
        let reason = objections.join("\n");
        let what = if to.is_some() { "sent back" } else { "failed (did not sign off)" };
        let mut failure = Failure::new(what, &reason, Some(0));
        failure.to = to;
        if fault && failure.to.is_none() {
            // Sent back as often as max_attempts allows: running this role
            // again on the same work would find the same fault.
            let why = format!("sent back {} times already; a person decides now", report::sent_back(order));
            failure = failure.permanent(why);
        }
        return fail(failure, report);
    }
    if let Some(gate) = &job.gate {
        let gate_log = dir.join("gate.log");
        let gate_limits = crew::Limits { timeout: job.crew.timeout, idle: None };
        let gate_exit = crew::run(gate, &wt, &env, &gate_log, gate_limits, &stop, Some(&occupancy))?;
        if !gate_exit.success() {
            let key = format!("mso.gate.{}.command", order.role);
            let reason =
                format!("quality gate {key} {}\n{}", gate_exit.describe(), crew::log_tail(&gate_log, 20, 4096));
            let mut failure =
                Failure::new(&format!("failed the quality gate ({})", gate_exit.describe()), &reason, gate_exit.code());
            if let Some(why) = deterministic(gate_exit, &key) {
                failure = failure.permanent(why);
            }
            report.wall_secs = started.elapsed().as_secs();
            return fail(failure, report);
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
    if head != base
        && let Err(e) = store.advance_branch(&voyage, base, head)
    {
        return fail(Failure::new("failed (voyage branch moved)", &e.to_string(), Some(0)), report);
    }
    report.wall_secs = started.elapsed().as_secs();
    // The started line named the log; a success needs only its time and cost.
    let said = run_note(&report, None);
    let record = evidence.record("succeeded", &report.brief);
    report.evidence = crate::core::evidence::digest(&record);
    // A local run's notes land with its result; a remote runner's once the
    // server has the result (below).
    let with_notes = job.remote.is_none().then_some(&record);
    let (next, recorded, noted) =
        record_success_unnoted(store, job, head, result.summary.clone(), Some(report.clone()), with_notes)?;
    let Some(mut recorded) = recorded else {
        // Not ours any more: the branch goes back to what the ledger records.
        if head != base {
            let _ = store.advance_branch(&voyage, head, base);
        }
        return Ok(line(format!("succeeded → {next}{said}")));
    };
    // With a remote, the result and its branch reach the server in one
    // atomic push (a sync): the server's branch never holds commits that no
    // recorded result names, wherever this runner is stopped.
    let mut pending = String::new();
    if let Some(remote) = &job.remote {
        let what = format!("pushing the result of {} to {remote}", order.id);
        let synced = crate::sync::patiently(&what, job.patience, &job.drain, || crate::sync::sync(&job.dir, remote));
        let refused = match synced {
            Err(e) if e.is_refusal() => {
                // The server will not take it: withdraw it here, or every
                // later sync would carry it and be refused with it.
                crate::sync::withdraw_result(&job.dir, remote, &|event| is_this_result(event, job, head))?;
                Some(e.to_string())
            }
            Err(e) => {
                tracing::warn!("{what}: {e}");
                pending = format!(" (not on {remote} yet: the next sync pushes it)");
                None
            }
            Ok(_) => None,
        };
        // The order as the ledger has it now, after the sync.
        let now = store.order(&store.require_tip()?, &order.id)?;
        if !now.as_ref().is_some_and(|now| now.history.iter().any(|e| is_this_result(e, job, head))) {
            // Left out (the remote's branch moved during the run) or refused:
            // the branch goes back to what the ledger records.
            if head != base {
                let _ = store.advance_branch(&voyage, head, base);
            }
            if !now.is_some_and(|now| still_ours(&now, job)) {
                return Ok(line(TAKEN_OVER.into()));
            }
            let failure = match refused {
                Some(why) => Failure::new("failed (the server refused the result)", &why, Some(0)),
                None => Failure::new(
                    "failed (voyage branch moved on the remote)",
                    &format!("{} moved on {remote} during the run; the result was not published", voyage.id.branch()),
                    Some(0),
                ),
            };
            return fail(failure, report);
        }
        if let Some(now) = now {
            recorded = now;
        }
        job.synced.set(true);
    }
    // A remote runner notes a result once the server has it: a note on a
    // commit the server never gets would stop every later push of the notes.
    let kept = if noted || !pending.is_empty() { String::new() } else { evidence.keep_noted(&recorded, head, record) };
    Ok(line(format!("succeeded → {next}{said}{kept}{pending}")))
}

/// Whether `event` is this run's SUCCEEDED at `head`.
fn is_this_result(event: &crate::core::Event, job: &Job, head: gix::ObjectId) -> bool {
    matches!(&event.body, EventBody::Succeeded { order, attempt, runner, head: h, .. }
        if *order == job.order.id && *attempt == job.order.attempt && *runner == job.runner.id
            && h.parse::<gix::ObjectId>().ok() == Some(head))
}

/// Take the voyage's worktree for this attempt. The dispatcher checked it
/// was free before the claim; a crew of a killed runner may still be dying
/// (its supervisor killed it, the kernel is reaping it), so wait a little.
fn occupy_worktree(common: &std::path::Path, voyage: crate::core::VoyageId) -> Result<std::fs::File> {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(lock) = worktree::occupy(common, voyage)? {
            return Ok(lock);
        }
        if Instant::now() >= deadline {
            return Err(Error::Input(format!(
                "a crew of an earlier attempt still runs in the worktree of {voyage} (it holds {}); \
                 stop it, or wait for it to end",
                worktree::occupancy_path(common, voyage).display()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Redact what a crew reported before any of it is recorded, within the
/// ledger's bounds again (a secret's stand-in may be longer than the secret).
fn redact_result(result: &mut result::CrewResult, redactor: &crate::core::evidence::Redactor) {
    use crate::core::report::bounds;
    let many = |t: &str, max: usize| text::clip(redactor.redact(t), max);
    let one = |t: &str, max: usize| text::clip_line(&redactor.redact(t), max);
    result.summary = many(&result.summary, limits::SUMMARY);
    result.error = result.error.as_deref().map(|e| many(e, 4096));
    for v in &mut result.verdicts {
        v.reason = many(&v.reason, bounds::DETAIL);
    }
    for f in &mut result.findings {
        f.title = one(&f.title, bounds::LINE);
        f.path = one(&f.path, bounds::LINE);
        f.detail = many(&f.detail, bounds::DETAIL);
    }
    if let Some(u) = &mut result.usage {
        u.model = one(&u.model, bounds::MODEL);
        if u.model.contains(crate::core::evidence::REDACTED) {
            u.model.clear();
        }
    }
}

/// The end of a log, about `max` bytes, from a line boundary: whole lines
/// only, so a secret at the cut is never left half there for redaction to miss.
fn log_end(path: &std::path::Path, max: u64) -> String {
    let bytes = crew::read_crew_file_end(path, max).unwrap_or_default();
    text::display(&String::from_utf8_lossy(&bytes), true).into_owned()
}

/// What a run's evidence record is made of.
struct Evidence<'a> {
    store: &'a Store,
    settings: &'a crate::store::evidence::Settings,
    order: &'a Order,
    brief: &'a str,
    message: &'a str,
    dir: &'a std::path::Path,
}

impl Evidence<'_> {
    /// The run's record: its brief, final message, gate output and log end, redacted and bounded.
    fn record(&self, outcome: &str, digest: &str) -> crate::core::notes::Block {
        let settings = self.settings;
        let order = self.order;
        let run = report::started_runs(order);
        let max = settings.max_bytes;
        // Twice what is kept is read: redaction runs on whole lines before the cut.
        let gate = log_end(&self.dir.join("gate.log"), (max / 4) as u64);
        let log = log_end(&self.dir.join("crew.log"), (2 * max) as u64);
        use crate::core::evidence::{self, Section};
        let sections = [
            Section { name: "brief", text: self.brief, keep_end: false, share: max / 2 },
            Section { name: "final message", text: self.message, keep_end: false, share: max / 4 },
            Section { name: "gate output", text: &gate, keep_end: true, share: max / 8 },
            Section { name: "crew log", text: &log, keep_end: true, share: max },
        ];
        let header = evidence::header(&order.id.to_string(), run, order.role.as_str(), order.attempt);
        let trailers = [format!("Mso-Outcome: {outcome}"), format!("Mso-Brief-Sha256: {digest}")];
        evidence::record(header, &trailers, &sections, &settings.redactor, max)
    }

    /// Keep the run's record on `commit`; returns what the dispatch line
    /// should add (nothing when all went well).
    fn keep(&self, commit: ObjectId, record: crate::core::notes::Block) -> String {
        match self.store.keep_evidence(commit, record) {
            Ok(()) => String::new(),
            Err(e) => format!(" (no evidence kept: {e})"),
        }
    }

    /// `keep`, and the note `order` (as recorded) puts on `commit`, in
    /// one write; should that fail, each on its own, so a notes ref that
    /// cannot be written costs only what goes there.
    fn keep_noted(&self, order: &Order, commit: ObjectId, record: crate::core::notes::Block) -> String {
        if self.store.note_run(Some(order), commit, record.clone()).is_ok() {
            return String::new();
        }
        if let Err(e) = self.store.note_order(order, &commit.to_string()) {
            tracing::warn!("could not write the note on {commit}: {e}");
        }
        self.keep(commit, record)
    }
}

/// Dollars for a crew's environment: at least cents, down to hundredths of a cent
/// (`2.00`, `0.0042`), so a small remainder is never rounded to nothing.
fn budget_text(micros: u64) -> String {
    let text = format!("{:.4}", micros as f64 / 1e6);
    let trimmed = text.trim_end_matches('0');
    let decimals = trimmed.split_once('.').map_or(0, |(_, d)| d.len());
    if decimals >= 2 { trimmed.to_string() } else { format!("{:.2}", micros as f64 / 1e6) }
}

/// How much of a result file is read: all of it up to this size, else its end.
const RESULT_BYTES: u64 = 4 * limits::SUMMARY as u64;

/// Why a failure will recur however often the role runs again: the shell
/// could not find or execute the command (exit 127 and 126).
fn deterministic(exit: CrewExit, key: &str) -> Option<String> {
    match exit {
        CrewExit::Exited(127) => {
            Some(format!("a command was not found (the crew's own, or one it runs): check {key} and PATH"))
        }
        CrewExit::Exited(126) => Some(format!("the command is not executable: check {key} and its permissions")),
        _ => None,
    }
}

/// A failed run, as recorded.
struct Failure {
    /// What the dispatch line says happened.
    what: String,
    reason: String,
    exit: Option<i32>,
    permanent: bool,
    to: Option<crate::core::Role>,
    /// The reason has been through the redactor already.
    redacted: bool,
}

impl Failure {
    fn new(what: &str, reason: &str, exit: Option<i32>) -> Self {
        Failure { what: what.into(), reason: reason.into(), exit, permanent: false, to: None, redacted: false }
    }

    /// The reason with its secrets redacted, before anything shows or records it.
    fn redact(mut self, redactor: &crate::core::evidence::Redactor) -> Self {
        self.reason = redactor.redact(&self.reason);
        self.redacted = true;
        self
    }

    /// Fails for good at once: running it again cannot help.
    fn permanent(mut self, why: String) -> Self {
        self.reason = format!("{}\n{why}", self.reason.trim_end());
        self.permanent = true;
        self
    }
}

/// The first line of a reason that says something, for a dispatch line.
fn first_line(reason: &str) -> String {
    let line = reason.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("crew ")).unwrap_or("");
    let line = if line.is_empty() { reason.lines().next().unwrap_or("").trim() } else { line };
    text::clip(text::line(line).into_owned(), 160)
}

/// What a dispatch line says of a run: `  (12 s, $0.12, 3400 tokens; log PATH)`.
fn run_note(report: &RunReport, log: Option<&std::path::Path>) -> String {
    let log = log.map(|l| format!("; log {}", l.display())).unwrap_or_default();
    format!("  ({} s{}{log})", report.wall_secs, cost_note(report))
}

/// ", $0.12, 3400 tokens" when the agent reported them.
fn cost_note(report: &RunReport) -> String {
    let Some(u) = &report.usage else { return String::new() };
    let mut out = String::new();
    if let Some(c) = u.cost_micros {
        out.push_str(&format!(", {}", report::dollars(c)));
    }
    if u.tokens_in + u.tokens_out > 0 {
        out.push_str(&format!(", {} tokens", u.tokens_in.saturating_add(u.tokens_out)));
    }
    out
}

/// Say in the crew's log what of its result file could not be used.
fn note_problems(log: &std::path::Path, problems: &[String]) {
    if problems.is_empty() {
        return;
    }
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(log) {
        for p in problems {
            let _ = writeln!(f, "git-mso: result file: {}", text::line(p));
        }
    }
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
    let (said, _) = record_success(store, job, head, summary, None)?;
    Ok(format!(
        "{}  {}  built-in release  published to {} in {} s → {said}",
        order.id,
        order.role,
        published.url,
        started.elapsed().as_secs()
    ))
}

/// SUCCEEDED, and in the same commit the hand-off when the role is not gated.
/// Returns what happens next, and whether the result was recorded.
fn record_success(
    store: &Store,
    job: &Job,
    head: ObjectId,
    summary: String,
    run: Option<RunReport>,
) -> Result<(String, bool)> {
    let (said, recorded, _) = record_success_unnoted(store, job, head, summary, run, None)?;
    if let Some(order) = &recorded
        && let Err(e) = store.note_order(order, &head.to_string())
    {
        tracing::warn!("could not write the note on {head}: {e}");
    }
    Ok((said, recorded.is_some()))
}

/// `record_success` without the note, unless `record` is given: then the
/// run's note and its evidence `record` land with the result, in one ref
/// transaction, where the notes refs take them (see `Tx::note_run`). A
/// remote runner notes a result once the server has it (a note on a
/// commit the server never gets would stop every later push of the
/// notes). Returns the order as recorded, if it was, and whether its notes
/// landed with it.
fn record_success_unnoted(
    store: &Store,
    job: &Job,
    head: ObjectId,
    summary: String,
    run: Option<RunReport>,
    record: Option<&crate::core::notes::Block>,
) -> Result<(String, Option<Order>, bool)> {
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
            run: run.clone(),
        })?;
        if let Some(record) = record {
            tx.note_run(id, head, record.clone());
        }
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
        (Some(next), Some(committed)) => Ok((next, committed.order(id).cloned(), committed.noted)),
        _ => Ok((TAKEN_OVER.into(), None, false)),
    }
}

/// What a run that ended after its order stopped being its own says.
const TAKEN_OVER: &str = "finished, but the order was cancelled or taken over meanwhile; result not recorded";

/// FAILED for this run (re-queued while attempts remain, after the backoff;
/// sent back to an earlier role on objections); says what happens next.
fn record_failure(store: &Store, job: &Job, failure: Failure, run: Option<RunReport>) -> Result<(String, bool)> {
    let id = &job.order.id;
    // The reason carries crew and git output: redacted, escaped and bounded,
    // so it can always be recorded and never records a secret.
    let reason = if failure.redacted {
        failure.reason.clone()
    } else {
        match store.evidence_settings() {
            Ok(settings) => settings.redactor.redact(&failure.reason),
            Err(_) => "the run failed; its reason is not recorded, as mso.evidence.redact does not compile".into(),
        }
    };
    let reason = text::clip(text::display(&reason, true).into_owned(), limits::REASON);
    let exit = failure.exit;
    let (next, _) = store.transact_if(|tx| {
        let current = tx.order(id)?.clone();
        if !still_ours(&current, job) {
            return Ok(("the order was no longer ours; nothing recorded".to_string(), false));
        }
        tx.push(EventBody::Failed {
            order: id.clone(),
            role: current.role.clone(),
            attempt: current.attempt,
            runner: job.runner.id.clone(),
            exit,
            reason: reason.clone(),
            run: run.clone(),
            permanent: failure.permanent,
            to: failure.to.clone(),
        })?;
        let after = tx.order(id)?;
        let said = match (after.status, &failure.to) {
            (Status::Failed, _) => {
                let _ = job.report.send(Msg::FailedForGood(id.clone()));
                format!("failed for good; retry with `git mso order retry {id}`")
            }
            (_, Some(to)) => format!("back to {to} (attempt {})", after.attempt),
            _ => match after.retry_after {
                Some(at) => format!(
                    "queued again (attempt {}, not before {})",
                    after.attempt,
                    crate::core::time::format_utc(at)
                ),
                None => format!("queued again (attempt {})", after.attempt),
            },
        };
        Ok((said, true))
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
    let watch = Watch {
        store: job.store.clone(),
        dir: job.dir.clone(),
        runner: job.runner.clone(),
        id: job.order.id.clone(),
        stop: stop.clone(),
        hard: job.hard_stop.clone(),
        remote: job.remote.clone(),
    };
    (done, std::thread::spawn(move || watch.run(&finished)))
}

/// What a run's watcher looks after, owned by its thread.
struct Watch {
    store: Store,
    dir: PathBuf,
    runner: Runner,
    id: crate::core::OrderId,
    /// Set to stop the crew.
    stop: Arc<AtomicBool>,
    hard: Arc<AtomicBool>,
    remote: Option<String>,
}

impl Watch {
    /// While a crew runs: renew the lease, and stop the crew if the order is
    /// cancelled or taken over, or the runner shuts down hard.
    fn run(self, finished: &std::sync::mpsc::Receiver<()>) -> Option<Interrupted> {
        let Watch { store, dir, runner, id, stop, hard, remote } = self;
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
            if let Some(remote) = remote.as_deref()
                && last_sync.elapsed() >= Duration::from_secs(2)
            {
                last_sync = Instant::now();
                if let Err(e) = crate::sync::sync(&dir, remote) {
                    tracing::warn!("sync with {remote} while {id} runs: {e}");
                }
            }
            if last_check.elapsed() >= Duration::from_millis(250) {
                last_check = Instant::now();
                if let Some(interrupted) = check_claim(&store, &runner, &id, &mut seen) {
                    stop.store(true, Ordering::SeqCst);
                    return Some(interrupted);
                }
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
