//! `git mso board`: the pipeline at a glance, on the terminal or as one
//! self-contained HTML page (no script, no network, readable printed).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::core::{Config, EventBody, Order, OrderSummary, Role, Status, Voyage, text, time};
use crate::error::Error;

use super::Ctx;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  git mso board\n  git mso board --all\n  git mso board --html board.html && \
xdg-open board.html\n\nThe page holds everything it shows (no scripts, no fonts or images from the network): \
orders in role columns, voyages and their state, approvals and rejections with who and when, how long \
orders took, failures with their reasons, and the ledger's latest transactions.")]
pub struct Args {
    /// Write a self-contained HTML page to FILE instead of printing the board.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// On the terminal, list finished orders too (completed, cancelled).
    #[arg(long)]
    all: bool,
    /// How many of the ledger's latest transactions the page's timeline shows.
    #[arg(long, default_value_t = 200, value_name = "N")]
    timeline: usize,
}

/// What the board shows, read once from the ledger.
struct Board {
    config: Config,
    tip: String,
    orders: Vec<OrderSummary>,
    /// Full orders, for approvals, failures and durations (page only).
    details: BTreeMap<String, Order>,
    voyages: Vec<Voyage>,
    /// Roles that some kind walks or some order is at, in pipeline order.
    roles: Vec<Role>,
}

impl Args {
    /// Whether it writes a page instead of printing.
    pub fn writes_file(&self) -> bool {
        self.html.is_some()
    }
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let tip = store.require_tip()?;
    let config = store.config(&tip)?;
    let mut orders = store.summaries(&tip)?;
    orders.sort_by_key(|o| o.seq);
    let roles: Vec<Role> = config
        .roles
        .iter()
        .map(|r| r.code.clone())
        .filter(|r| config.kinds.iter().any(|k| k.sequence.contains(r)) || orders.iter().any(|o| &o.role == r))
        .collect();
    let mut board = Board {
        config,
        tip: tip.commit.to_string(),
        orders,
        details: BTreeMap::new(),
        voyages: store.voyages(&tip)?,
        roles,
    };
    let Some(path) = args.html else {
        return terminal(&board, args.all, ctx);
    };
    // Relative to where the command runs (`-C DIR` included), as git's own paths are.
    let path = ctx.dir.join(path);
    for summary in &board.orders {
        if let Some(order) = store.order(&tip, &summary.id)? {
            board.details.insert(summary.id.to_string(), order);
        }
    }
    let mut timeline = Vec::new();
    for entry in store.history(&tip).take(args.timeline) {
        timeline.push(entry?);
    }
    let page = html(&board, &timeline);
    std::fs::write(&path, page).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    writeln!(ctx.out, "wrote {} ({} orders, {} voyages)", path.display(), board.orders.len(), board.voyages.len())?;
    Ok(())
}

fn is_open(status: Status) -> bool {
    !status.is_terminal() || status == Status::Failed
}

/// One compact block per role: its open orders, one line each.
fn terminal(board: &Board, all: bool, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    for role in &board.roles {
        let here: Vec<&OrderSummary> =
            board.orders.iter().filter(|o| &o.role == role && (all || is_open(o.status))).collect();
        let count = |s: Status| here.iter().filter(|o| o.status == s).count();
        writeln!(
            ctx.out,
            "{role} {}  queued {}  running {}  review {}  failed {}",
            board.config.persona(role),
            count(Status::Queued),
            count(Status::Running),
            count(Status::Review),
            count(Status::Failed)
        )?;
        for o in here {
            let title: String = text::line(&o.title).chars().take(48).collect();
            let status = super::output::paint_status(&format!("{:<9}", o.status.as_str()));
            writeln!(
                ctx.out,
                "  {:<10} {status} {:<8} a{}  {title}",
                o.id.to_string(),
                o.voyage.to_string(),
                o.attempt
            )?;
        }
    }
    let done = |s: Status| board.orders.iter().filter(|o| o.status == s).count();
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for v in &board.voyages {
        *states.entry(v.state().as_str()).or_default() += 1;
    }
    let voyages: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
    writeln!(
        ctx.out,
        "done: {} completed, {} cancelled  ·  voyages: {}  ·  ledger {}",
        done(Status::Completed),
        done(Status::Cancelled),
        if voyages.is_empty() { "none".into() } else { voyages.join(", ") },
        &board.tip[..7]
    )?;
    if !all && done(Status::Completed) + done(Status::Cancelled) > 0 {
        writeln!(ctx.out, "(--all lists finished orders too; --html FILE writes the whole board as a page)")?;
    }
    Ok(())
}

/// Text for HTML: escaped, and free of control characters.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text::line(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{:.1} h", s as f64 / 3600.0),
        s => format!("{:.1} days", s as f64 / 86_400.0),
    }
}

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;background:#fff}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #d0d7de}
.meta{color:#57606a;margin:0 0 1em}
.board{display:grid;grid-template-columns:repeat(var(--cols),minmax(12em,1fr));gap:.8em;align-items:start}
.col{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.5em}
.col h3{margin:.1em 0 .5em;font-size:1em}.col h3 small{color:#57606a;font-weight:normal}
.card{background:#fff;border:1px solid #d0d7de;border-left:4px solid #8c959f;border-radius:4px;padding:.35em .5em;margin:.35em 0;break-inside:avoid}
.card .id{font-weight:600;font-family:ui-monospace,monospace}.card .t{display:block}.card .m{color:#57606a;font-size:.85em}
.card .err{color:#a40e26;font-size:.85em;display:block;white-space:pre-wrap}
.s-queued{border-left-color:#0969da}.s-running{border-left-color:#bf8700}.s-review{border-left-color:#8250df}
.s-failed{border-left-color:#cf222e}.s-completed{border-left-color:#1a7f37}.s-cancelled{border-left-color:#8c959f}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25em .5em;border-bottom:1px solid #d0d7de;vertical-align:top}
td.mono,span.mono{font-family:ui-monospace,monospace}
@media print{body{margin:0;font-size:11px}.board{display:block}.col{border:none;background:none;padding:0}
.card{border:1px solid #999;border-left-width:4px}h2{break-after:avoid}tr{break-inside:avoid}}
";

/// The whole page.
fn html(board: &Board, timeline: &[crate::store::Entry]) -> String {
    let mut page = String::new();
    let count = |s: Status| board.orders.iter().filter(|o| o.status == s).count();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>git mso board</title><style>{STYLE}</style></head><body>\n\
         <h1>git mso board</h1><p class=\"meta\">ledger <span class=\"mono\">{}</span> · {} orders \
         ({} completed, {} cancelled, {} failed) · {} voyages</p>\n",
        esc(&board.tip[..12]),
        board.orders.len(),
        count(Status::Completed),
        count(Status::Cancelled),
        count(Status::Failed),
        board.voyages.len()
    );

    // Role columns of open orders, then a column of finished ones.
    let _ = write!(page, "<h2>Orders</h2>\n<div class=\"board\" style=\"--cols:{}\">\n", board.roles.len() + 1);
    let card = |page: &mut String, o: &OrderSummary| {
        let detail = board.details.get(&o.id.to_string());
        let took = detail.map(|d| duration(d.updated - d.created)).unwrap_or_default();
        let _ = write!(
            page,
            "<div class=\"card s-{status}\" id=\"{id}\"><span class=\"id\">{id}</span> \
             <span class=\"m\">{status} · attempt {attempt} · {voyage} · {took}</span>\
             <span class=\"t\">{title}</span>",
            status = o.status.as_str(),
            id = esc(&o.id.to_string()),
            attempt = o.attempt,
            voyage = esc(&o.voyage.to_string()),
            title = esc(&o.title)
        );
        if o.status == Status::Failed
            && let Some(error) = detail.and_then(|d| d.last_error.as_deref())
        {
            let first: String = error.lines().next().unwrap_or_default().chars().take(200).collect();
            let _ = write!(page, "<span class=\"err\">{}</span>", esc(&first));
        }
        page.push_str("</div>\n");
    };
    for role in &board.roles {
        let here: Vec<&OrderSummary> = board.orders.iter().filter(|o| &o.role == role && is_open(o.status)).collect();
        let _ = writeln!(
            page,
            "<section class=\"col\"><h3>{role} <small>{} · {}</small></h3>",
            esc(board.config.persona(role)),
            here.len()
        );
        for o in here {
            card(&mut page, o);
        }
        page.push_str("</section>\n");
    }
    let finished: Vec<&OrderSummary> = board.orders.iter().filter(|o| !is_open(o.status)).collect();
    let _ = writeln!(page, "<section class=\"col\"><h3>Done <small>{}</small></h3>", finished.len());
    for o in finished {
        card(&mut page, o);
    }
    page.push_str("</section>\n</div>\n");

    // Voyages.
    page.push_str("<h2>Voyages</h2>\n<table><thead><tr><th>voyage</th><th>state</th><th>target</th><th>head</th><th>orders</th><th>created</th></tr></thead><tbody>\n");
    for v in &board.voyages {
        let orders = board.orders.iter().filter(|o| o.voyage == v.id).count();
        let _ = writeln!(
            page,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{orders}</td><td>{}</td></tr>",
            esc(&v.id.to_string()),
            v.state().as_str(),
            esc(v.target.as_deref().unwrap_or("-")),
            esc(&v.head.chars().take(7).collect::<String>()),
            time::format_utc(v.created)
        );
    }
    page.push_str("</tbody></table>\n");

    // Approvals, rejections and failures, newest first.
    let mut reviews = Vec::new();
    let mut failures = Vec::new();
    for order in board.details.values() {
        for event in &order.history {
            match &event.body {
                EventBody::Approved { role, by, .. } => {
                    reviews.push((event.at, order, role, "approved", by.clone(), String::new()))
                }
                EventBody::Rejected { role, by, reason, .. } => {
                    reviews.push((event.at, order, role, "rejected", by.clone(), reason.clone()))
                }
                EventBody::ApprovalWithdrawn { role, by, .. } => {
                    reviews.push((event.at, order, role, "approval withdrawn", by.clone(), String::new()))
                }
                EventBody::Failed { role, attempt, reason, .. } => {
                    failures.push((event.at, order, role, *attempt, reason.clone()))
                }
                _ => {}
            }
        }
    }
    reviews.sort_by_key(|r| std::cmp::Reverse(r.0));
    failures.sort_by_key(|f| std::cmp::Reverse(f.0));
    page.push_str("<h2>Reviews</h2>\n<table><thead><tr><th>when</th><th>order</th><th>role</th><th>decision</th><th>by</th><th>reason</th></tr></thead><tbody>\n");
    for (at, order, role, what, by, reason) in &reviews {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"mono\"><a href=\"#{id}\">{id}</a></td><td>{role}</td><td>{what}</td><td>{}</td><td>{}</td></tr>",
            time::format_utc(*at),
            esc(by),
            esc(reason.lines().next().unwrap_or_default()),
            id = esc(&order.id.to_string())
        );
    }
    page.push_str("</tbody></table>\n<h2>Failures</h2>\n<table><thead><tr><th>when</th><th>order</th><th>role</th><th>attempt</th><th>reason</th></tr></thead><tbody>\n");
    for (at, order, role, attempt, reason) in &failures {
        let first: String = reason.lines().next().unwrap_or_default().chars().take(300).collect();
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"mono\"><a href=\"#{id}\">{id}</a></td><td>{role}</td><td>{attempt}</td><td>{}</td></tr>",
            time::format_utc(*at),
            esc(&first),
            id = esc(&order.id.to_string())
        );
    }
    page.push_str("</tbody></table>\n<h2>Timeline</h2>\n<table><thead><tr><th>when</th><th>commit</th><th>actor</th><th>what</th></tr></thead><tbody>\n");
    for entry in timeline {
        let actor = entry.events.first().map(|e| e.actor.as_str()).unwrap_or_default();
        let what: Vec<String> = entry
            .events
            .iter()
            .take(3)
            .map(|e| match e.body.order() {
                Some(order) => format!("{} {order}", e.body.name()),
                None => e.body.name().to_string(),
            })
            .collect();
        let more = if entry.events.len() > 3 { format!(" (+{} more)", entry.events.len() - 3) } else { String::new() };
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}{more}</td></tr>",
            time::format_utc(entry.time),
            esc(&entry.commit.to_hex_with_len(7).to_string()),
            esc(actor),
            esc(&what.join(", "))
        );
    }
    page.push_str("</tbody></table>\n</body></html>\n");
    page
}
