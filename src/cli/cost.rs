//! `git mso cost`: what the crews' runs took, summed from the ledger's run
//! reports (tokens, dollars when the agent reported them, turns, wall time).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::core::report::{self, Ended};
use crate::core::time::format_utc;

use super::Ctx;
use super::output;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    Order,
    Role,
    Voyage,
    Kind,
    Day,
    Model,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  git mso cost\n  git mso cost --by role\n  git mso cost --by day --json")]
pub struct Args {
    /// How to group the runs.
    #[arg(long, value_enum, default_value = "order")]
    by: By,
    /// Rows and total as JSON (cost in micro-dollars and in dollars).
    #[arg(long)]
    json: bool,
}

/// The sums of one group of runs.
#[derive(Debug, Default, Clone, Serialize)]
struct Sums {
    key: String,
    runs: u64,
    /// Runs whose agent reported no cost (shell crews, or tools that do not say).
    unpriced_runs: u64,
    wall_secs: u64,
    tokens_in: u64,
    tokens_out: u64,
    turns: u64,
    cost_micros: u64,
    cost_usd: f64,
}

impl Sums {
    fn add(&mut self, r: &report::RunReport) {
        self.runs += 1;
        self.wall_secs = self.wall_secs.saturating_add(r.wall_secs);
        match &r.usage {
            Some(u) => {
                self.tokens_in = self.tokens_in.saturating_add(u.tokens_in);
                self.tokens_out = self.tokens_out.saturating_add(u.tokens_out);
                self.turns = self.turns.saturating_add(u64::from(u.turns));
                match u.cost_micros {
                    Some(c) => self.cost_micros = self.cost_micros.saturating_add(c),
                    None => self.unpriced_runs += 1,
                }
            }
            None => self.unpriced_runs += 1,
        }
        self.cost_usd = self.cost_micros as f64 / 1e6;
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.key.clone(),
            self.runs.to_string(),
            duration(self.wall_secs),
            self.tokens_in.to_string(),
            self.tokens_out.to_string(),
            self.turns.to_string(),
            if self.runs == self.unpriced_runs { "-".into() } else { report::dollars(self.cost_micros) },
        ]
    }
}

#[derive(Debug, Serialize)]
struct Costs {
    by: &'static str,
    rows: Vec<Sums>,
    total: Sums,
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let tip = store.require_tip()?;
    let mut groups: BTreeMap<String, Sums> = BTreeMap::new();
    let mut total = Sums { key: "total".into(), ..Sums::default() };
    let mut summaries = store.summaries(&tip)?;
    summaries.sort_by_key(|s| s.seq);
    for summary in summaries {
        let Some(order) = store.order(&tip, &summary.id)? else { continue };
        for run in report::runs(&order) {
            let Some(r) = run.ended.as_ref().and_then(Ended::report) else { continue };
            let key = match args.by {
                By::Order => order.id.to_string(),
                By::Role => run.role.to_string(),
                By::Voyage => order.voyage.to_string(),
                By::Kind => order.id.kind().to_string(),
                By::Day => format_utc(run.at).get(..10).unwrap_or_default().to_string(),
                By::Model => r.usage.as_ref().map(|u| u.model.clone()).filter(|m| !m.is_empty()).unwrap_or("-".into()),
            };
            groups.entry(key.clone()).or_insert_with(|| Sums { key, ..Sums::default() }).add(r);
            total.add(r);
        }
    }
    let by = match args.by {
        By::Order => "order",
        By::Role => "role",
        By::Voyage => "voyage",
        By::Kind => "kind",
        By::Day => "day",
        By::Model => "model",
    };
    let costs = Costs { by, rows: groups.into_values().collect(), total };
    if args.json {
        return output::json(ctx.out, &costs);
    }
    if costs.rows.is_empty() {
        writeln!(ctx.out, "no finished runs with a report yet")?;
        return Ok(());
    }
    let header = [
        by.to_ascii_uppercase(),
        "RUNS".into(),
        "WALL".into(),
        "TOKENS IN".into(),
        "TOKENS OUT".into(),
        "TURNS".into(),
        "COST".into(),
    ];
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut rows: Vec<Vec<String>> = costs.rows.iter().map(Sums::row).collect();
    let mut total = costs.total.row();
    total[0] = "TOTAL".into();
    rows.push(total);
    output::table(ctx.out, &header, &rows)?;
    if costs.total.unpriced_runs > 0 {
        writeln!(
            ctx.out,
            "{} of {} runs reported no cost (crews that are not coding agents, or agents that do not say)",
            costs.total.unpriced_runs, costs.total.runs
        )?;
    }
    Ok(())
}
