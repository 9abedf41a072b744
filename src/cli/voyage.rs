//! `git mso voyage new|list|show`

use clap::Subcommand;

use crate::core::event::short;
use crate::core::state::VoyageState;
use crate::core::time::format_utc;
use crate::core::{EventBody, OrderId, Role, Status, TransitionError, Voyage, VoyageId, text};
use crate::view::{self, notes_of};

use super::Ctx;
use super::output;

#[derive(Debug, Subcommand)]
pub enum VoyageCommand {
    /// Start a voyage: branch voyage/VOY-NNNN from a base commit.
    #[command(
        after_help = "Examples:\n  git mso voyage new\n  git mso voyage new --base origin/main\n  git mso voyage new \
--base v1.2 --target release-1.2"
    )]
    New(NewArgs),
    /// List voyages with their state (open, published, landed, closed).
    #[command(after_help = "Listing notices voyages that landed: when a voyage's recorded head is in its target \
branch (here or in a remote-tracking branch), or a commit there carries its Mso-Voyage trailer, VOYAGE_LANDED is \
recorded.\n\nExamples:\n  git mso voyage list\n  git mso voyage list --json")]
    List(ListArgs),
    /// Show a voyage: state, orders and their roles, commits with their notes, ahead/behind its target.
    #[command(after_help = "Like `voyage list`, it records a landing it notices in the remote-tracking branches \
(VOYAGE_LANDED); nothing else is written.\n\nExamples:\n  git mso voyage show VOY-0001\n  git mso voyage show VOY-0001 --json | jq .state")]
    Show(ShowArgs),
    /// Push a voyage's branch and write its pull request; records VOYAGE_PUBLISHED.
    #[command(after_help = "The branch is pushed at the head the ledger recorded (sync pushes it with the ledger), \
the request text comes from `git request-pull`, and title and body from the voyage's orders: titles, acceptance \
criteria, hand-offs, approvals, and a `Mso-Voyage: VOY-NNNN` trailer. With `mso.publish.command` set (see \
scripts/crews/gh-pr.sh and glab-mr.sh) that command opens the pull request and its URL is recorded.

Examples:
  git mso voyage publish VOY-0001
  git mso voyage publish VOY-0001 --remote upstream
  git config mso.publish.command \"$(git mso crews path)/gh-pr.sh\"")]
    Publish(PublishArgs),
    /// Give up a voyage that will not land: cancels its open orders and records VOYAGE_CLOSED.
    #[command(after_help = "Example:\n  git mso voyage close VOY-0003 --reason \"superseded by VOY-0004\"")]
    Close(CloseArgs),
}

impl VoyageCommand {
    pub fn writes(&self) -> bool {
        matches!(self, VoyageCommand::New(_) | VoyageCommand::Close(_))
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
    /// Print the new voyage as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// One JSON array of voyages (the stored voyage, plus `state`).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The voyage, e.g. VOY-0001.
    id: VoyageId,
    /// The view as JSON (shape in the README).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The voyage, e.g. VOY-0001.
    id: VoyageId,
    /// Remote to push to (default: mso.publish.remote, else origin).
    #[arg(long, value_name = "R")]
    remote: Option<String>,
    /// Print the publication as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct CloseArgs {
    /// The voyage, e.g. VOY-0003.
    id: VoyageId,
    /// Why it will not land; recorded, and given to its cancelled orders.
    #[arg(long)]
    reason: String,
}

/// A voyage as listed: the stored voyage and its state word.
#[derive(serde::Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    voyage: &'a Voyage,
    state: VoyageState,
}

/// One order of `voyage show`, with the progress of its roles.
#[derive(serde::Serialize)]
struct OrderView {
    id: OrderId,
    title: String,
    status: Status,
    role: Role,
    attempt: u32,
    roles: Vec<RoleView>,
}

#[derive(serde::Serialize)]
struct RoleView {
    role: Role,
    /// `done`, `current` or `pending`.
    progress: &'static str,
    gated: bool,
}

/// How the voyage's head stands against its target branch.
#[derive(serde::Serialize)]
struct Against {
    target: String,
    /// The ref compared with (`refs/heads/main`, `refs/remotes/origin/main`).
    r#ref: String,
    ahead: u64,
    behind: u64,
}

/// `voyage show --json`.
#[derive(serde::Serialize)]
struct VoyageView {
    #[serde(flatten)]
    voyage: Voyage,
    state: VoyageState,
    against: Option<Against>,
    orders: Vec<OrderView>,
    commits: Option<view::Range>,
}

pub fn run(cmd: VoyageCommand, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    store.require_tip()?;
    match cmd {
        VoyageCommand::New(args) => new(&store, args, ctx),
        VoyageCommand::List(args) => list(&store, args, ctx),
        VoyageCommand::Show(args) => show(&store, args, ctx),
        VoyageCommand::Publish(args) => {
            let opts = crate::publish::Options { remote: args.remote.as_deref(), releasing: None };
            let published = crate::publish::publish(&ctx.dir, args.id, &opts)?;
            if args.json {
                return output::json(ctx.out, &published);
            }
            writeln!(ctx.out, "{}  published {} to {}", published.voyage, short(&published.head), published.url)?;
            writeln!(ctx.out, "\n{}\n\n{}", published.title, published.body.trim_end())?;
            Ok(())
        }
        VoyageCommand::Close(args) => close(&store, args, ctx),
    }
}

fn new(store: &crate::store::Store, args: NewArgs, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let (base, target) = store.voyage_base(args.base.as_deref(), args.target.as_deref())?;
    let (id, committed) = store.transact(|tx| {
        let id = tx.counters().next_voyage()?;
        tx.push(EventBody::VoyageCreated { voyage: id, base: base.to_string(), target: target.clone() })?;
        Ok(id)
    })?;
    let voyage = &committed.state.voyages[&id];
    if let Err(e) = store.ensure_voyage_branch(voyage) {
        tracing::warn!("{id} is recorded, but {} was not created: {e}; dispatch creates it later", voyage.id.branch());
    }
    if args.json {
        return output::json(ctx.out, voyage);
    }
    let aim = voyage.target.as_deref().map(|t| format!(", to land on {t}")).unwrap_or_default();
    writeln!(ctx.out, "{id}  {} at {}{aim}", voyage.id.branch(), short(&voyage.base))?;
    Ok(())
}

/// The commits a target branch is at here: the local branch and each remote's tracking branch.
pub(super) fn target_tips(store: &crate::store::Store, target: &str) -> Vec<(String, gix::ObjectId)> {
    let mut names = vec![format!("refs/heads/{target}")];
    for remote in store.repo().remote_names() {
        names.push(format!("refs/remotes/{remote}/{target}"));
    }
    names.into_iter().filter_map(|n| store.ref_target(&n).ok().flatten().map(|id| (n, id))).collect()
}

/// Record the landings this repository can see; say what was found. With
/// remotes, only what their branches hold counts (a server checks a
/// landing against its own branch, so one seen on a local branch would
/// never be accepted); a repository without remotes has only its own.
fn notice_landings(store: &crate::store::Store, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let has_remotes = !store.repo().remote_names().is_empty();
    let tips = |target: &str| {
        target_tips(store, target)
            .into_iter()
            .filter(|(name, _)| !has_remotes || name.starts_with("refs/remotes/"))
            .map(|(_, id)| id)
            .collect()
    };
    for line in store.record_landings(&tips, std::time::Duration::from_secs(5))? {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn list(store: &crate::store::Store, args: ListArgs, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let mut noticed = Vec::new();
    notice_landings(store, &mut noticed)?;
    let tip = store.require_tip()?;
    let voyages = store.voyages(&tip)?;
    if args.json {
        let listed: Vec<Listed<'_>> = voyages.iter().map(|v| Listed { voyage: v, state: v.state() }).collect();
        return output::json(ctx.out, &listed);
    }
    ctx.out.write_all(&noticed)?;
    if voyages.is_empty() {
        writeln!(ctx.out, "no voyages")?;
        return Ok(());
    }
    let summaries = store.summaries(&tip)?;
    let rows: Vec<Vec<String>> = voyages
        .iter()
        .map(|v| {
            vec![
                v.id.to_string(),
                v.id.branch(),
                short(&v.base).to_string(),
                v.target.clone().unwrap_or_else(|| "-".into()),
                summaries.iter().filter(|s| s.voyage == v.id).count().to_string(),
                crate::publish::state_line(v),
            ]
        })
        .collect();
    output::table(ctx.out, &["ID", "BRANCH", "BASE", "TARGET", "ORDERS", "STATE"], &rows)
}

fn show(store: &crate::store::Store, args: ShowArgs, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let mut noticed = Vec::new();
    notice_landings(store, &mut noticed)?;
    let tip = store.require_tip()?;
    let voyage = store.voyage(&tip, args.id)?.ok_or(TransitionError::UnknownVoyage(args.id))?;
    let dir = store.top_dir();
    let mut summaries = store.summaries(&tip)?;
    summaries.retain(|s| s.voyage == voyage.id);
    summaries.sort_by_key(|s| s.seq);
    let mut orders = Vec::new();
    let mut full = Vec::new();
    for s in &summaries {
        let Some(order) = store.order(&tip, &s.id)? else { continue };
        let here = order.roles.iter().position(|r| r == &order.role).unwrap_or(0);
        let roles = order
            .roles
            .iter()
            .enumerate()
            .map(|(i, role)| {
                let progress = match order.status {
                    Status::Completed => "done",
                    _ if i < here => "done",
                    _ if i == here => "current",
                    _ => "pending",
                };
                RoleView { role: role.clone(), progress, gated: order.is_gated(role) }
            })
            .collect();
        orders.push(OrderView {
            id: order.id.clone(),
            title: order.title.clone(),
            status: order.status,
            role: order.role.clone(),
            attempt: order.attempt,
            roles,
        });
        full.push(order);
    }
    let head_here = store.recorded_head(&voyage).is_ok() && store.require_commit(voyage.base.parse()?, "").is_ok();
    let commits = if head_here { Some(view::range(&dir, &voyage.base, &voyage.head, &notes_of(&full))?) } else { None };
    let against = voyage.target.as_ref().and_then(|target| {
        // The remote's branch when there is one (what the voyage lands on), else the local one.
        let tips = target_tips(store, target);
        let remote = tips.iter().find(|(n, _)| n.starts_with("refs/remotes/origin/"));
        let (name, _) =
            remote.or_else(|| tips.iter().find(|(n, _)| n.starts_with("refs/remotes/"))).or(tips.first())?.clone();
        let (ahead, behind) = view::ahead_behind(&dir, &name, &voyage.head)?;
        Some(Against { target: target.clone(), r#ref: name, ahead, behind })
    });
    let shown = VoyageView { state: voyage.state(), voyage, against, orders, commits };
    if args.json {
        return output::json(ctx.out, &shown);
    }
    let out = &mut *ctx.out;
    out.write_all(&noticed)?;
    let v = &shown.voyage;
    let one = |t: &str| text::line(t).into_owned();
    writeln!(out, "{}  {}  {}", v.id, v.id.branch(), shown.state)?;
    writeln!(
        out,
        "base      {}{}",
        short(&v.base),
        v.target.as_deref().map(|t| format!(" (lands on {t})")).unwrap_or_default()
    )?;
    let position = match &shown.against {
        Some(a) => format!(
            "  ({} ahead, {} behind {})",
            a.ahead,
            a.behind,
            a.r#ref.trim_start_matches("refs/heads/").trim_start_matches("refs/remotes/")
        ),
        None => String::new(),
    };
    writeln!(out, "head      {}{position}", short(&v.head))?;
    if let Some(active) = &v.active {
        writeln!(out, "active    {active}")?;
    }
    if let Some(p) = &v.published {
        writeln!(out, "published {} by {} at {}: {}", format_utc(p.at), one(&p.by), short(&p.head), one(&p.url))?;
        writeln!(out, "          {}", one(&p.title))?;
    }
    if let Some(l) = &v.landed {
        writeln!(
            out,
            "landed    {} on {} at {} ({}), recorded by {}",
            format_utc(l.at),
            l.target,
            short(&l.commit),
            l.how,
            one(&l.by)
        )?;
    }
    if let Some(c) = &v.closed {
        writeln!(
            out,
            "closed    {} by {}: {}",
            format_utc(c.at),
            one(&c.by),
            one(c.reason.lines().next().unwrap_or_default())
        )?;
    }
    writeln!(out, "orders")?;
    if shown.orders.is_empty() {
        writeln!(out, "  none yet")?;
    }
    for o in &shown.orders {
        let roles: Vec<String> = o
            .roles
            .iter()
            .map(|r| {
                let mark = match r.progress {
                    "done" => "✓",
                    "current" => "▸",
                    _ => "·",
                };
                format!("{mark}{}{}", r.role, if r.gated { "*" } else { "" })
            })
            .collect();
        let status = if o.status == Status::Completed && v.landed.is_some() { "landed" } else { o.status.as_str() };
        writeln!(out, "  {}  {status:<9}  {}  {}", o.id, roles.join(" "), one(&o.title))?;
    }
    match &shown.commits {
        Some(range) => {
            writeln!(out, "commits   {} since the base, {}", range.commits.len(), range.stat)?;
            view::write_commits(out, range)?;
        }
        None => writeln!(out, "commits   not in this repository: git mso sync")?,
    }
    Ok(())
}

fn close(store: &crate::store::Store, args: CloseArgs, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let tip = store.require_tip()?;
    let mut open: Vec<OrderId> = store
        .summaries(&tip)?
        .into_iter()
        .filter(|s| s.voyage == args.id && !s.status.is_terminal())
        .map(|s| s.id)
        .collect();
    open.sort();
    let (cancelled, _) = store.transact(|tx| {
        let mut cancelled = Vec::new();
        for id in &open {
            if tx.order(id)?.status.is_terminal() {
                continue;
            }
            tx.push(EventBody::Cancelled {
                order: id.clone(),
                reason: format!("{} closed: {}", args.id, args.reason),
            })?;
            cancelled.push(id.to_string());
        }
        tx.push(EventBody::VoyageClosed { voyage: args.id, reason: args.reason.clone() })?;
        Ok(cancelled)
    })?;
    let also = if cancelled.is_empty() { String::new() } else { format!("; cancelled {}", cancelled.join(", ")) };
    writeln!(ctx.out, "{}  closed{also}", args.id)?;
    Ok(())
}
