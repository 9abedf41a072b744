//! `git mso order new|list|show|edit|move|cancel|retry`

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;

use crate::core::apply::limits;
use crate::core::report::{self, Pass};
use crate::core::text;
use crate::core::time::format_utc;
use crate::core::{EventBody, Kind, OrderId, Role, Status, TransitionError, VoyageId};
use crate::error::Error;

use super::Ctx;
use super::output::{self, order_line, role_with_persona, sequence};

#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// File a new order, queued at the first role of its sequence.
    #[command(
        after_help = "Examples:\n  git mso order new --title \"Add login page\" --ac \"a user can log in\" --ac \"bad password is refused\"\n  git mso order new --kind BUG --title \"Crash on save\" --brief-file notes.md --voyage VOY-0002\n  git mso order new --title \"Spike\" --roles PLN --gate PLN"
    )]
    New(NewArgs),
    /// List orders (one line each), oldest first.
    List(ListArgs),
    /// Show an order's state and its whole history.
    Show(ShowArgs),
    /// Change an order's title, brief or acceptance criteria; the old text stays in its history.
    Edit(EditArgs),
    /// Move an order that has no recorded work yet to another voyage.
    Move(MoveArgs),
    /// Cancel an order that has not finished.
    Cancel(CancelArgs),
    /// Queue a failed order again at the role where it failed.
    Retry(RetryArgs),
}

impl OrderCommand {
    pub fn writes(&self) -> bool {
        matches!(
            self,
            OrderCommand::New(_)
                | OrderCommand::Edit(_)
                | OrderCommand::Move(_)
                | OrderCommand::Cancel(_)
                | OrderCommand::Retry(_)
        )
    }
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// One line: what is to be done.
    #[arg(long)]
    title: String,
    /// Order kind; decides the default role sequence and gates.
    #[arg(long, default_value = "FTR")]
    kind: Kind,
    /// What the crews should know (free text, may span lines).
    #[arg(long, conflicts_with = "brief_file")]
    brief: Option<String>,
    /// Read the brief from a file, or from standard input with `-`.
    #[arg(long, value_name = "FILE|-")]
    brief_file: Option<PathBuf>,
    /// An acceptance criterion; repeat for several. Every crew's brief lists them.
    #[arg(long = "ac", value_name = "TEXT")]
    acceptance: Vec<String>,
    /// Role sequence for this order instead of the kind's default, e.g. PLN,BLD,TST.
    #[arg(long, value_delimiter = ',', value_name = "ROLES")]
    roles: Option<Vec<Role>>,
    /// Review gate after this role (repeatable or comma-separated); default: the kind's gates.
    #[arg(long = "gate", value_delimiter = ',', value_name = "ROLE")]
    gates: Option<Vec<Role>>,
    /// No review gates at all: the order walks its roles without stopping.
    #[arg(long, conflicts_with = "gates")]
    no_gates: bool,
    /// Add to an existing voyage instead of starting a new one.
    #[arg(long, conflicts_with = "base")]
    voyage: Option<VoyageId>,
    /// Base commit of the new voyage's branch (default: HEAD).
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// Branch the new voyage is meant to land on (default: the branch --base or HEAD names).
    #[arg(long, value_name = "BRANCH", conflicts_with = "voyage")]
    target: Option<String>,
    /// What this order's crew runs may cost in all, in dollars (default: its
    /// kind's `budget_usd`, else the pipeline's). Dispatch starts no run once
    /// it is spent, and passes what is left to crews as MSO_BUDGET_USD.
    #[arg(long, value_name = "DOLLARS", value_parser = parse_budget)]
    budget_usd: Option<u64>,
    /// Print the new order as JSON.
    #[arg(long)]
    json: bool,
}

/// A budget in dollars as micro-dollars: more than 0, at most a million.
fn parse_budget(text: &str) -> Result<u64, String> {
    let dollars: f64 =
        text.trim().trim_start_matches('$').parse().map_err(|_| format!("not a number of dollars: {text}"))?;
    crate::core::config::budget_of_dollars(dollars).map_err(str::to_string)
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  git mso order list\n  git mso order list --status review\n  git mso order list --role BLD --kind BUG\n  git mso order list --voyage VOY-0002 --json"
)]
pub struct ListArgs {
    /// Only orders in this status.
    #[arg(long, value_enum)]
    status: Option<Status>,
    /// Only orders at this role.
    #[arg(long)]
    role: Option<Role>,
    /// Only orders of this kind.
    #[arg(long)]
    kind: Option<Kind>,
    /// Only orders on this voyage.
    #[arg(long)]
    voyage: Option<VoyageId>,
    /// One JSON array of order summaries.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  git mso order show FTR-0001\n  git mso order show FTR-0001 --brief --role BLD\n  git mso order show FTR-0001 --evidence"
)]
pub struct ShowArgs {
    /// The order to show.
    id: OrderId,
    /// The order file exactly as stored in the ledger (with --brief: the briefs as JSON).
    #[arg(long)]
    json: bool,
    /// Print the brief each run's crew received (kept with the run, checked
    /// against the digest its result recorded in the ledger).
    #[arg(long)]
    brief: bool,
    /// Print each run's evidence: the brief, the agent's final message, the
    /// gate's output and the end of the crew log, as kept (redacted) on
    /// refs/notes/mso-evidence.
    #[arg(long, conflicts_with = "brief")]
    evidence: bool,
    /// With --brief or --evidence: only the runs of this role.
    #[arg(long)]
    role: Option<Role>,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "An order can be edited while it is queued, failed or awaiting review, not while a crew runs it. \
Acceptance criteria change only until a verdict role (TST) has signed them off: reject that work first. \
Each edit is an ORDER_EDITED event; `git mso order show ID` lists it, `git mso undo` takes it back.\n\n\
Examples:\n  git mso order edit FTR-0001 --title \"Add a login page with SSO\"\n  \
git mso order edit FTR-0001 --brief-file notes.md\n  \
git mso order edit FTR-0001 --add-ac \"a locked account is refused\"\n  \
git mso order edit FTR-0001 --ac \"a user can log in\" --ac \"bad password is refused\""
)]
pub struct EditArgs {
    /// The order to edit.
    id: OrderId,
    /// The new title (one line).
    #[arg(long)]
    title: Option<String>,
    /// The new brief (replaces the old one).
    #[arg(long, conflicts_with = "brief_file")]
    brief: Option<String>,
    /// Read the new brief from a file, or from standard input with `-`.
    #[arg(long, value_name = "FILE|-")]
    brief_file: Option<PathBuf>,
    /// The acceptance criteria, replacing all of them; repeat for several.
    #[arg(long = "ac", value_name = "TEXT", conflicts_with_all = ["add_ac", "no_ac"])]
    acceptance: Vec<String>,
    /// Add an acceptance criterion after the existing ones; repeatable.
    #[arg(long = "add-ac", value_name = "TEXT", conflicts_with = "no_ac")]
    add_ac: Vec<String>,
    /// Remove every acceptance criterion.
    #[arg(long)]
    no_ac: bool,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Only an order with no work recorded yet moves (queued or failed, no role handed off): work \
already done stays on its voyage's branch. The order then waits its turn on the new voyage, oldest first.\n\n\
Examples:\n  git mso order move FTR-0003 --voyage VOY-0002")]
pub struct MoveArgs {
    /// The order to move.
    id: OrderId,
    /// The voyage it moves to (open: not landed or closed).
    #[arg(long)]
    voyage: VoyageId,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "A running crew is stopped and its changes discarded; the voyage branch keeps what earlier roles did.\n\nExamples:\n  git mso order cancel FTR-0003 --reason \"not needed any more\""
)]
pub struct CancelArgs {
    /// The order to cancel.
    id: OrderId,
    /// Why; recorded in the ledger.
    #[arg(long, default_value = "")]
    reason: String,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "A failed order is queued again at the role it failed, its attempts counted afresh.\n\nExamples:\n  git mso order retry BUG-0002"
)]
pub struct RetryArgs {
    /// The failed order to queue again.
    id: OrderId,
}

pub fn run(cmd: OrderCommand, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    match cmd {
        OrderCommand::New(args) => new(args, ctx),
        OrderCommand::List(args) => list(args, ctx),
        OrderCommand::Show(args) => show(args, ctx),
        OrderCommand::Edit(args) => edit(args, ctx),
        OrderCommand::Move(args) => move_order(args, ctx),
        OrderCommand::Cancel(args) => cancel(args, ctx),
        OrderCommand::Retry(args) => retry(args, ctx),
    }
}

/// The brief given inline or in a file (`-`: standard input); `None` when neither was given.
fn read_brief(brief: Option<&String>, file: Option<&PathBuf>) -> anyhow::Result<Option<String>> {
    let Some(path) = file else {
        return Ok(brief.cloned());
    };
    let mut bytes = Vec::new();
    // Read one byte past the limit so an oversized brief is refused, not truncated.
    let limit = limits::BRIEF as u64 + 1;
    if path.as_os_str() == "-" {
        std::io::stdin().take(limit).read_to_end(&mut bytes)?;
    } else {
        let file = std::fs::File::open(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        file.take(limit).read_to_end(&mut bytes)?;
    }
    String::from_utf8(bytes).map(Some).map_err(|_| Error::Input("the brief is not UTF-8 text".into()).into())
}

fn new(args: NewArgs, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    store.require_tip()?;
    let brief = read_brief(args.brief.as_ref(), args.brief_file.as_ref())?.unwrap_or_default();
    let base = match args.voyage {
        Some(_) => None,
        None => Some(store.voyage_base(args.base.as_deref(), args.target.as_deref())?),
    };
    let ((id, new_voyage), committed) = store.transact(|tx| {
        let config = tx.config()?;
        let kind = config
            .kind(&args.kind)
            .ok_or_else(|| TransitionError::UnknownKind { kind: args.kind.to_string(), known: config.kind_list() })?;
        let roles = args.roles.clone().unwrap_or_else(|| kind.sequence.clone());
        let gates = match (&args.gates, args.no_gates) {
            (_, true) => Vec::new(),
            (Some(gates), false) => gates.clone(),
            (None, false) => kind.gates.iter().filter(|g| roles.contains(g)).cloned().collect(),
        };
        let (voyage, new_voyage) = match (args.voyage, &base) {
            (Some(v), _) => (v, false),
            (None, Some((base, target))) => {
                let v = tx.counters().next_voyage()?;
                tx.push(EventBody::VoyageCreated { voyage: v, base: base.to_string(), target: target.clone() })?;
                (v, true)
            }
            (None, None) => unreachable!("a base is resolved whenever no voyage is named"),
        };
        let id = tx.counters().next_order(&args.kind)?;
        tx.push(EventBody::OrderCreated {
            order: id.clone(),
            title: args.title.clone(),
            brief: brief.clone(),
            acceptance: args.acceptance.clone(),
            roles,
            gates,
            voyage,
            budget_micros: args.budget_usd,
        })?;
        Ok((id, new_voyage))
    })?;
    let order = committed.order(&id).expect("the transaction created it");
    if new_voyage {
        // The order is recorded: failing now would make a retry file it twice.
        // Dispatch creates the branch whenever it is missing.
        let voyage = &committed.state.voyages[&order.voyage];
        if let Err(e) = store.ensure_voyage_branch(voyage) {
            tracing::warn!(
                "{id} is recorded, but {} was not created: {e}; dispatch creates it later",
                voyage.id.branch()
            );
        }
    }
    if args.json {
        return output::json(ctx.out, order);
    }
    let config = committed.state.config.as_ref().expect("initialized");
    writeln!(ctx.out, "{}", order_line(config, order))?;
    Ok(())
}

fn list(args: ListArgs, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let tip = store.require_tip()?;
    // A filter on a role or kind the pipeline does not have is a mistake, not an empty list.
    let config = store.config(&tip)?;
    if let Some(role) = args.role.as_ref().filter(|r| config.role(r).is_none()) {
        return Err(Error::Input(format!("unknown role {role} (configured: {})", config.role_list())).into());
    }
    if let Some(kind) = args.kind.as_ref().filter(|k| config.kind(k).is_none()) {
        return Err(Error::Input(format!("unknown kind {kind} (configured: {})", config.kind_list())).into());
    }
    let mut orders = store.summaries(&tip)?;
    orders.retain(|s| {
        args.status.is_none_or(|st| s.status == st)
            && args.role.as_ref().is_none_or(|r| &s.role == r)
            && args.kind.as_ref().is_none_or(|k| s.id.kind() == k)
            && args.voyage.is_none_or(|v| s.voyage == v)
    });
    orders.sort_by(|a, b| a.id.cmp(&b.id));
    let landed = match args.json {
        true => Default::default(),
        false => store.voyages(&tip)?.into_iter().filter(|v| v.landed.is_some()).map(|v| v.id).collect(),
    };
    output::summaries(ctx.out, &orders, args.json, "no orders", &landed)
}

fn show(args: ShowArgs, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let tip = store.require_tip()?;
    let order = store.order(&tip, &args.id)?.ok_or(TransitionError::UnknownOrder(args.id.clone()))?;
    if args.role.is_some() && !args.brief && !args.evidence {
        return Err(Error::Input("--role goes with --brief or --evidence".into()).into());
    }
    if args.brief {
        return briefs(&store, &order, args.role.as_ref(), args.json, ctx);
    }
    if args.evidence {
        return evidence(&store, &order, args.role.as_ref(), args.json, ctx);
    }
    if args.json {
        return output::json(ctx.out, &order);
    }
    let config = store.config(&tip)?;
    let out = &mut *ctx.out;
    // Stored text is shown escaped: nothing in the ledger rewrites the terminal.
    let (one, many) = (text::line, |t: &str| text::display(t, true).into_owned());
    writeln!(out, "{}  {}", order.id, one(&order.title))?;
    writeln!(
        out,
        "status      {} at {}, attempt {}",
        order.status,
        role_with_persona(&config, &order.role),
        order.attempt
    )?;
    let voyage = store.voyage(&tip, order.voyage)?;
    let where_ = voyage.as_ref().map(crate::publish::state_line).unwrap_or_default();
    writeln!(out, "voyage      {} ({}), {where_}", order.voyage, order.voyage.branch())?;
    writeln!(out, "roles       {}   (* = review gate)", sequence(&order.roles, &order.gates))?;
    if let Some(lease) = &order.lease {
        writeln!(
            out,
            "lease       {} ({}) on {} (pid {}) until {}",
            one(&lease.runner),
            one(&lease.actor),
            one(&lease.host),
            lease.pid,
            format_utc(lease.expires)
        )?;
    }
    if let Some(head) = &order.head {
        writeln!(out, "head        {}", one(head))?;
    }
    if let Some(held) = &order.held {
        writeln!(out, "held        commits up to {} the ledger did not know await review", one(held))?;
    }
    if let Some(err) = &order.last_error {
        writeln!(out, "last error  {}", one(err.lines().next().unwrap_or_default()))?;
    }
    let runs = report::runs(&order);
    if !order.acceptance.is_empty() {
        // The latest verdicts given: ✓ passed, ✗ failed, - none yet.
        let verdicts = report::current_verdicts(&order);
        writeln!(out, "acceptance{}", if verdicts.is_some() { "  (latest verdicts)" } else { "" })?;
        for (i, ac) in order.acceptance.iter().enumerate() {
            let verdict = verdicts.and_then(|r| r.verdicts.iter().find(|v| v.criterion as usize == i + 1));
            let (mark, why) = match verdict {
                Some(v) if v.verdict == Pass::Pass => ("✓", String::new()),
                Some(v) => ("✗", format!(" — {}", one(v.reason.lines().next().unwrap_or("no reason given")))),
                None => ("-", String::new()),
            };
            writeln!(out, "  {}. {mark} {}{why}", i + 1, one(ac))?;
        }
    }
    let spent = report::spent_micros(&order);
    if let Some(budget) = report::budget_micros(&order, &config) {
        writeln!(out, "cost        {} of its {} budget", report::dollars(spent), report::dollars(budget))?;
    } else if spent > 0 {
        writeln!(out, "cost        {}", report::dollars(spent))?;
    }
    if !order.brief.is_empty() {
        writeln!(out, "brief")?;
        for line in many(&order.brief).lines() {
            writeln!(out, "  {line}")?;
        }
    }
    for h in &order.handoffs {
        let first = h.summary.lines().next().unwrap_or("(no summary)");
        writeln!(out, "hand-off    {} at {}: {}", h.role, one(crate::core::event::short(&h.head)), one(first))?;
    }
    for (i, r) in order.rejections.iter().enumerate() {
        writeln!(
            out,
            "rejected    {} attempt {} at {} by {}: {}\n            kept at {}",
            r.role,
            r.attempt,
            one(crate::core::event::short(&r.head)),
            one(&r.by),
            one(r.reason.lines().next().unwrap_or_default()),
            crate::core::state::rejected_ref(&order.id, i + 1)
        )?;
    }
    if !runs.is_empty() {
        writeln!(out, "runs")?;
        for run in &runs {
            write_run(out, run)?;
        }
    }
    writeln!(out, "history")?;
    for event in &order.history {
        writeln!(out, "  {}  {:<12}  {}", format_utc(event.at), one(&event.actor), one(&event.body.describe()))?;
    }
    Ok(())
}

/// One run in `order show`: what became of it, what it cost, its findings.
fn write_run(out: &mut dyn std::io::Write, run: &report::Run<'_>) -> std::io::Result<()> {
    let one = text::line;
    let outcome = match &run.ended {
        None => "running (or its runner is gone)".to_string(),
        Some(report::Ended::Succeeded { head, .. }) => format!("succeeded at {}", one(crate::core::event::short(head))),
        Some(report::Ended::Failed { to: Some(to), .. }) => format!("sent back to {to}"),
        Some(report::Ended::Failed { permanent: true, .. }) => "failed for good".to_string(),
        Some(report::Ended::Failed { .. }) => "failed".to_string(),
        Some(report::Ended::LeaseExpired) => "lost its runner (lease expired)".to_string(),
    };
    let report = run.ended.as_ref().and_then(report::Ended::report);
    let mut cost = String::new();
    if let Some(r) = report {
        cost.push_str(&format!("  {} s", r.wall_secs));
        if let Some(u) = &r.usage {
            if let Some(c) = u.cost_micros {
                cost.push_str(&format!("  {}", report::dollars(c)));
            }
            if u.tokens_in + u.tokens_out > 0 {
                cost.push_str(&format!("  {} in / {} out tokens", u.tokens_in, u.tokens_out));
            }
            if u.turns > 0 {
                cost.push_str(&format!("  {} turn{}", u.turns, if u.turns == 1 { "" } else { "s" }));
            }
            if !u.model.is_empty() {
                cost.push_str(&format!("  {}", one(&u.model)));
            }
        }
    }
    writeln!(out, "  #{} {} attempt {}  {}  {outcome}{cost}", run.number, run.role, run.attempt, format_utc(run.at))?;
    if let Some(report::Ended::Failed { reason, .. }) = &run.ended {
        writeln!(out, "      {}", one(reason.lines().find(|l| !l.trim().is_empty()).unwrap_or_default()))?;
    }
    for v in report.map(|r| r.verdicts.as_slice()).unwrap_or_default() {
        let mark = if v.verdict == Pass::Pass { "✓" } else { "✗" };
        let why = if v.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", one(v.reason.lines().next().unwrap_or("")))
        };
        writeln!(out, "      {mark} criterion {}{why}", v.criterion)?;
    }
    for f in report.map(|r| r.findings.as_slice()).unwrap_or_default() {
        let at = if f.path.is_empty() { String::new() } else { format!(" ({})", one(&f.path)) };
        writeln!(out, "      {} finding: {}{at}", f.severity, one(&f.title))?;
    }
    Ok(())
}

/// The brief a run received: its copy kept with the run, if it matches the
/// digest the ledger recorded for that run.
#[derive(serde::Serialize)]
struct ReceivedBrief {
    run: usize,
    role: Role,
    attempt: u32,
    /// The SHA-256 the run's result recorded, if it recorded one.
    digest: Option<String>,
    /// The text, when a copy is here and matches the digest.
    brief: Option<String>,
    /// Why the text is not shown, when it is not.
    missing: Option<String>,
}

fn briefs(
    store: &crate::store::Store,
    order: &crate::core::Order,
    role: Option<&Role>,
    json: bool,
    ctx: &mut Ctx<'_>,
) -> anyhow::Result<()> {
    let all = per_run(order, role, |run| {
        let digest =
            run.ended.as_ref().and_then(report::Ended::report).map(|r| r.brief.clone()).filter(|d| !d.is_empty());
        let (brief, missing) = received_brief(store, order, run, digest.as_deref());
        Ok(ReceivedBrief { run: run.number, role: run.role.clone(), attempt: run.attempt, digest, brief, missing })
    })?;
    print_runs(
        ctx,
        order,
        role,
        json,
        &all,
        |b| (b.run, b.role.clone(), b.attempt, String::new()),
        |out, b| match (&b.brief, &b.missing) {
            (Some(text), _) => write!(out, "{}", text::display(text, true)),
            (None, Some(why)) => writeln!(out, "({why})"),
            (None, None) => Ok(()),
        },
    )
}

/// One item per run of the order (of `role` only, when given).
fn per_run<T>(
    order: &crate::core::Order,
    role: Option<&Role>,
    mut item: impl FnMut(&report::Run<'_>) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<T>> {
    report::runs(order).iter().filter(|r| role.is_none_or(|want| r.role == want)).map(&mut item).collect()
}

/// Print per-run items as JSON, or each under a `=== run #N ROLE attempt A ===` line.
fn print_runs<T: serde::Serialize>(
    ctx: &mut Ctx<'_>,
    order: &crate::core::Order,
    role: Option<&Role>,
    json: bool,
    all: &[T],
    head: impl Fn(&T) -> (usize, Role, u32, String),
    body: impl Fn(&mut dyn std::io::Write, &T) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    if json {
        return output::json(ctx.out, &all);
    }
    if all.is_empty() {
        writeln!(ctx.out, "{} has no runs{}", order.id, role.map(|r| format!(" of {r}")).unwrap_or_default())?;
    }
    for item in all {
        let (run, role, attempt, extra) = head(item);
        writeln!(ctx.out, "=== run #{run} {role} attempt {attempt}{extra} ===")?;
        body(&mut *ctx.out, item)?;
    }
    Ok(())
}

/// Find the brief of `run`: the copy in its run directory, else the one in
/// its evidence note; shown only when it hashes to the recorded digest.
fn received_brief(
    store: &crate::store::Store,
    order: &crate::core::Order,
    run: &report::Run<'_>,
    digest: Option<&str>,
) -> (Option<String>, Option<String>) {
    let Some(digest) = digest else {
        return (
            None,
            Some("its result recorded no brief digest (it ran before git-mso recorded them, or has not ended)".into()),
        );
    };
    let dir = crate::runtime::dispatch::run_dir_of(store.common_dir(), &order.id, run.role, run.attempt, run.number);
    let here = crate::runtime::crew::read_crew_file(&dir.join("brief.md"), 4 * 1024 * 1024)
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let noted = || {
        let record = store.evidence_of(order, run).ok().flatten()?;
        crate::core::evidence::section(&record, "brief").filter(|(_, cut)| !cut).map(|(text, _)| text)
    };
    let matches = |t: &String| crate::core::brief::digest(t) == digest;
    if let Some(text) = here.filter(matches).or_else(|| noted().filter(matches)) {
        return (Some(text), None);
    }
    (
        None,
        Some(format!(
            "no copy matching its digest {} is here (`git mso sync` brings the evidence of runs elsewhere; a brief with a redacted secret in it does not match)",
            &digest[..12]
        )),
    )
}

/// A run's evidence record, as `order show --evidence --json` gives it.
#[derive(serde::Serialize)]
struct RunEvidence {
    run: usize,
    role: Role,
    attempt: u32,
    /// The commit the record is kept on.
    commit: Option<String>,
    /// The record's lines (sections start with `--- `, their text with `|`).
    record: Option<Vec<String>>,
}

fn evidence(
    store: &crate::store::Store,
    order: &crate::core::Order,
    role: Option<&Role>,
    json: bool,
    ctx: &mut Ctx<'_>,
) -> anyhow::Result<()> {
    let all = per_run(order, role, |run| {
        Ok(RunEvidence {
            run: run.number,
            role: run.role.clone(),
            attempt: run.attempt,
            commit: crate::store::evidence::evidence_commit(run).map(|c| c.to_string()),
            record: store.evidence_of(order, run)?,
        })
    })?;
    let head = |e: &RunEvidence| {
        let on = e.commit.as_deref().map(|c| format!(" on {}", &c[..7])).unwrap_or_default();
        (e.run, e.role.clone(), e.attempt, on)
    };
    print_runs(ctx, order, role, json, &all, head, |out, e| match &e.record {
        Some(lines) => {
            for line in lines.iter().skip(1) {
                let shown = line.strip_prefix("| ").or_else(|| line.strip_prefix('|')).unwrap_or(line);
                writeln!(out, "{}", text::line(shown))?;
            }
            Ok(())
        }
        None => writeln!(
            out,
            "(no evidence of this run here: it has not ended, ran before evidence was kept, or ran elsewhere \
             (`git mso sync` brings refs/notes/mso-evidence))"
        ),
    })
}

fn edit(args: EditArgs, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    store.require_tip()?;
    let brief = read_brief(args.brief.as_ref(), args.brief_file.as_ref())?;
    let criteria_given = !args.acceptance.is_empty() || !args.add_ac.is_empty() || args.no_ac;
    if args.title.is_none() && brief.is_none() && !criteria_given {
        return Err(Error::Input(
            "nothing to edit: give --title, --brief, --brief-file, --ac, --add-ac or --no-ac".into(),
        )
        .into());
    }
    let (changes, _) = store.transact(|tx| {
        let order = tx.order(&args.id)?.clone();
        let acceptance = criteria_given.then(|| match (args.no_ac, args.acceptance.is_empty()) {
            (true, _) => Vec::new(),
            (false, false) => args.acceptance.clone(),
            (false, true) => order.acceptance.iter().chain(&args.add_ac).cloned().collect(),
        });
        // Only what differs is recorded, so the history says what changed.
        let title = args.title.clone().filter(|t| *t != order.title);
        let brief = brief.clone().filter(|b| *b != order.brief);
        let acceptance = acceptance.filter(|a| *a != order.acceptance);
        let mut changes = Vec::new();
        if let Some(title) = &title {
            changes.push(format!("title \"{}\" → \"{}\"", text::line(&order.title), text::line(title)));
        }
        if let Some(brief) = &brief {
            changes.push(format!("brief ({} → {} lines)", order.brief.lines().count(), brief.lines().count()));
        }
        if let Some(acceptance) = &acceptance {
            changes.push(format!("criteria ({} → {})", order.acceptance.len(), acceptance.len()));
        }
        if changes.is_empty() {
            return Err(Error::Input(format!("{}: the edit changes nothing; it already reads so", order.id)));
        }
        let replaces = order.text_digest();
        tx.push(EventBody::OrderEdited { order: order.id.clone(), replaces, title, brief, acceptance })?;
        Ok(changes)
    })?;
    writeln!(ctx.out, "{}  edited: {}", args.id, changes.join(", "))?;
    Ok(())
}

fn move_order(args: MoveArgs, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    store.require_tip()?;
    let (from, committed) = store.transact(|tx| {
        let from = tx.order(&args.id)?.voyage;
        tx.push(EventBody::OrderMoved { order: args.id.clone(), voyage: args.voyage })?;
        Ok(from)
    })?;
    let order = committed.order(&args.id).expect("the transaction touched it");
    writeln!(ctx.out, "{}  moved {from} → {} ({} at {})", order.id, order.voyage, order.status, order.role)?;
    Ok(())
}

fn cancel(args: CancelArgs, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    store.require_tip()?;
    let (before, _) = store.transact(|tx| {
        let order = tx.order(&args.id)?;
        let before = format!("{} at {}", order.status, order.role);
        tx.push(EventBody::Cancelled { order: args.id.clone(), reason: args.reason.clone() })?;
        Ok(before)
    })?;
    writeln!(ctx.out, "{}  cancelled (was {before})", args.id)?;
    Ok(())
}

fn retry(args: RetryArgs, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    store.require_tip()?;
    let (_, committed) = store.transact(|tx| tx.push(EventBody::Retried { order: args.id.clone() }))?;
    let order = committed.order(&args.id).expect("the transaction touched it");
    writeln!(ctx.out, "{}  retried → queued at {} (attempt {})", order.id, order.role, order.attempt)?;
    Ok(())
}
