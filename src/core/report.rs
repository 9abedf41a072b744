//! What a run reported and cost, as the ledger records it on SUCCEEDED and
//! FAILED: the brief's digest, wall time, the agent's usage, per-criterion
//! verdicts and security findings. The rules that make verdicts binding
//! (a verdict role signs off only when every criterion passes; findings at
//! or above a role's `fail_on` fail it) are decided here, for the writer and
//! the server hook alike.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::apply::{Result, TransitionError, limits, long_text};
use super::config::Config;
use super::event::EventBody;
use super::ids::Role;
use super::state::Order;

/// Bounds of a run report.
pub mod bounds {
    /// Findings one run may record.
    pub const FINDINGS: usize = 50;
    /// A finding's title or a file path.
    pub const LINE: usize = 300;
    /// A verdict's reason or a finding's detail.
    pub const DETAIL: usize = 1024;
    /// A model name.
    pub const MODEL: usize = 100;
    /// Tokens one run may report (a sanity bound, not a price list).
    pub const TOKENS: u64 = 1 << 40;
    /// Micro-dollars one run may report: a million dollars.
    pub const COST_MICROS: u64 = 1_000_000 * 1_000_000;
    /// Turns one run may report.
    pub const TURNS: u32 = 1_000_000;
    /// Seconds one run may last: a year.
    pub const WALL_SECS: u64 = 366 * 86_400;
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero32(n: &u32) -> bool {
    *n == 0
}

/// What a crew's run reported and cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunReport {
    /// SHA-256 (hex) of the brief the crew received: `order show --brief`
    /// shows a kept copy only when it matches.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub brief: String,
    /// The voyage head the run started from (evidence of a run that made no
    /// commit is kept on it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wall_secs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<Verdict>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// SHA-256 (hex) of the run's evidence record: the server accepts that
    /// record on refs/notes/mso-evidence, from anyone, and no other.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub evidence: String,
}

/// What the agent said a run used, from its machine-readable output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tokens_in: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tokens_out: u64,
    /// Cost in millionths of a dollar, when the tool reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_micros: Option<u64>,
    #[serde(default, skip_serializing_if = "is_zero32")]
    pub turns: u32,
}

/// A verdict on one acceptance criterion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// 1-based, as numbered in the brief.
    pub criterion: u32,
    pub verdict: Pass,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pass {
    Pass,
    Fail,
}

/// A security (or other read-only review) finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub severity: Severity,
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        match text.trim().to_ascii_lowercase().as_str() {
            "info" | "informational" | "note" => Some(Severity::Info),
            "low" | "minor" => Some(Severity::Low),
            "medium" | "moderate" => Some(Severity::Medium),
            "high" | "major" => Some(Severity::High),
            "critical" | "blocker" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The characters model names use (`openrouter/anthropic/claude-sonnet-4.5`).
pub fn is_model_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-' | '/')
}

/// How many runs of the order have started (its DISPATCHED events).
pub fn started_runs(order: &Order) -> usize {
    order.history.iter().filter(|e| matches!(e.body, EventBody::Dispatched { .. })).count()
}

/// Dollars for display: `$0.0123`, `$12.50`.
pub fn dollars(micros: u64) -> String {
    let d = micros as f64 / 1e6;
    if micros != 0 && d < 0.01 { format!("${d:.4}") } else { format!("${d:.2}") }
}

impl RunReport {
    /// Check every value is well-formed and within bounds, against the order it is about.
    pub fn check(&self, order: &Order) -> Result<()> {
        let bad = |m: String| Err(TransitionError::BadInput(format!("{}: run report: {m}", order.id)));
        if !self.brief.is_empty() && (self.brief.len() != 64 || !super::ids::is_lower_hex(&self.brief)) {
            return bad("the brief digest is not a SHA-256 in hex".into());
        }
        if !self.evidence.is_empty() && (self.evidence.len() != 64 || !super::ids::is_lower_hex(&self.evidence)) {
            return bad("the evidence digest is not a SHA-256 in hex".into());
        }
        if !self.base.is_empty() && (self.base.len() != 40 || !super::ids::is_lower_hex(&self.base)) {
            return bad("the base is not a full commit id".into());
        }
        if self.wall_secs > bounds::WALL_SECS {
            return bad(format!("wall time {} s is out of range", self.wall_secs));
        }
        if let Some(u) = &self.usage {
            if u.model.len() > bounds::MODEL || !u.model.chars().all(is_model_char) {
                return bad(format!("model {} is not a model name", super::ids::shown(&u.model)));
            }
            if u.tokens_in > bounds::TOKENS || u.tokens_out > bounds::TOKENS {
                return bad("token counts are out of range".into());
            }
            if u.cost_micros.is_some_and(|c| c > bounds::COST_MICROS) || u.turns > bounds::TURNS {
                return bad("cost or turns are out of range".into());
            }
        }
        if self.verdicts.len() > limits::CRITERIA {
            return bad(format!("{} verdicts, at most {}", self.verdicts.len(), limits::CRITERIA));
        }
        for (i, v) in self.verdicts.iter().enumerate() {
            if v.criterion == 0 || v.criterion as usize > order.acceptance.len() {
                return bad(format!(
                    "a verdict names criterion {}, the order has {}",
                    v.criterion,
                    order.acceptance.len()
                ));
            }
            if self.verdicts[..i].iter().any(|o| o.criterion == v.criterion) {
                return bad(format!("criterion {} has two verdicts", v.criterion));
            }
            long_text("verdict reason", &v.reason, bounds::DETAIL)?;
        }
        if self.findings.len() > bounds::FINDINGS {
            return bad(format!("{} findings, at most {}", self.findings.len(), bounds::FINDINGS));
        }
        for f in &self.findings {
            super::apply::line("finding title", &f.title, bounds::LINE)?;
            if f.title.trim().is_empty() {
                return bad("a finding needs a title".into());
            }
            if !f.path.is_empty() {
                super::apply::line("finding path", &f.path, bounds::LINE)?;
            }
            long_text("finding detail", &f.detail, bounds::DETAIL)?;
        }
        Ok(())
    }

    pub fn cost_micros(&self) -> u64 {
        self.usage.as_ref().and_then(|u| u.cost_micros).unwrap_or(0)
    }
}

/// Why a role's report does not let it sign off: criteria that failed or
/// got no verdict at a verdict role, findings at or above its `fail_on`.
/// Empty when the report passes.
pub fn objections(order: &Order, role: &Role, report: Option<&RunReport>, config: &Config) -> Vec<String> {
    let Some(def) = config.role(role) else { return Vec::new() };
    let mut out = Vec::new();
    let empty = RunReport::default();
    let report = report.unwrap_or(&empty);
    if def.verdicts {
        for (i, criterion) in order.acceptance.iter().enumerate() {
            let n = i as u32 + 1;
            match report.verdicts.iter().find(|v| v.criterion == n) {
                Some(v) if v.verdict == Pass::Pass => {}
                Some(v) => out.push(format!("criterion {n} failed: {criterion} — {}", first_line(&v.reason))),
                None => out.push(format!("criterion {n} got no verdict: {criterion}")),
            }
        }
    }
    if let Some(bar) = def.fail_on {
        for f in report.findings.iter().filter(|f| f.severity >= bar) {
            let at = if f.path.is_empty() { String::new() } else { format!(" ({})", f.path) };
            out.push(format!("{} finding: {}{at}", f.severity, f.title));
        }
    }
    out
}

/// Whether the report finds the work at fault, not just the run unfinished:
/// a criterion failed at a verdict role, or a finding reached `fail_on`.
/// Only then does a failure send the order back to an earlier role.
pub fn finds_fault(role: &Role, report: Option<&RunReport>, config: &Config) -> bool {
    let (Some(def), Some(report)) = (config.role(role), report) else { return false };
    (def.verdicts && report.verdicts.iter().any(|v| v.verdict == Pass::Fail))
        || def.fail_on.is_some_and(|bar| report.findings.iter().any(|f| f.severity >= bar))
}

fn first_line(text: &str) -> &str {
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() { "no reason given" } else { line }
}

/// Where a failure on objections sends the order: the role's `back_to` when
/// it comes earlier in the order's sequence, else the role just before it;
/// `None` when there is none, or the order was sent back `max_attempts`
/// times already (then it fails for good).
pub fn send_back_target(order: &Order, role: &Role, config: &Config) -> Option<Role> {
    let here = order.roles.iter().position(|r| r == role)?;
    let earlier = &order.roles[..here];
    let def = config.role(role)?;
    let target = def.back_to.as_ref().filter(|b| earlier.contains(b)).or_else(|| earlier.last())?.clone();
    (sent_back(order) < config.max_attempts).then_some(target)
}

/// How many times verdicts sent this order back since it was last retried
/// (a retry gives it a fresh set).
pub fn sent_back(order: &Order) -> u32 {
    let since = order.history.iter().rposition(|e| matches!(e.body, EventBody::Retried { .. })).map_or(0, |i| i + 1);
    let n = order.history[since..].iter().filter(|e| matches!(&e.body, EventBody::Failed { to: Some(_), .. })).count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What the order's runs cost so far, in micro-dollars.
pub fn spent_micros(order: &Order) -> u64 {
    order
        .history
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Succeeded { run: Some(r), .. } | EventBody::Failed { run: Some(r), .. } => Some(r.cost_micros()),
            _ => None,
        })
        .fold(0u64, u64::saturating_add)
}

/// The order's budget: its own, else its kind's, else the pipeline's.
pub fn budget_micros(order: &Order, config: &Config) -> Option<u64> {
    order.budget_micros.or_else(|| config.kind(order.id.kind()).and_then(|k| k.budget_micros)).or(config.budget_micros)
}

/// Why the order may not start another run, if its budget is spent.
pub fn over_budget(order: &Order, config: &Config) -> Option<String> {
    let budget = budget_micros(order, config)?;
    let spent = spent_micros(order);
    (spent >= budget).then(|| {
        format!(
            "{} has spent {} of its {} budget; raise it (git mso config kinds.{}.budget_usd N) or cancel it",
            order.id,
            dollars(spent),
            dollars(budget),
            order.id.kind()
        )
    })
}

/// One run of an order's crew, as its history tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run<'a> {
    /// Which run of the order this is, from 1 (its DISPATCHED events counted).
    pub number: usize,
    pub role: &'a Role,
    pub attempt: u32,
    pub at: i64,
    pub runner: &'a str,
    /// `None` while it runs (or when its lease expired).
    pub ended: Option<Ended<'a>>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended<'a> {
    Succeeded { head: &'a str, report: Option<&'a RunReport> },
    Failed { reason: &'a str, to: Option<&'a Role>, permanent: bool, report: Option<&'a RunReport> },
    LeaseExpired,
}

impl<'a> Ended<'a> {
    pub fn report(&self) -> Option<&'a RunReport> {
        match self {
            Ended::Succeeded { report, .. } | Ended::Failed { report, .. } => *report,
            Ended::LeaseExpired => None,
        }
    }
}

/// The order's runs, oldest first.
/// The acceptance criteria as they stood when the `index`-th event of the
/// order's history was recorded: verdicts name criteria by number, and an
/// edit may have changed them since.
pub fn criteria_at(order: &Order, index: usize) -> &[String] {
    let mut criteria: &[String] = &[];
    for event in order.history.iter().take(index + 1) {
        match &event.body {
            EventBody::OrderCreated { acceptance, .. } => criteria = acceptance,
            EventBody::OrderEdited { acceptance: Some(acceptance), .. } => criteria = acceptance,
            _ => {}
        }
    }
    criteria
}

/// The verdicts given last, when they were given on the criteria the order has now.
pub fn current_verdicts(order: &Order) -> Option<&RunReport> {
    let (index, report) = order.history.iter().enumerate().rev().find_map(|(i, e)| match &e.body {
        EventBody::Succeeded { run: Some(run), .. } | EventBody::Failed { run: Some(run), .. }
            if !run.verdicts.is_empty() =>
        {
            Some((i, run))
        }
        _ => None,
    })?;
    (criteria_at(order, index) == order.acceptance.as_slice()).then_some(report)
}

/// The order's approvals that stand: each APPROVED not withdrawn later
/// (APPROVAL_WITHDRAWN of the same role and commit).
pub fn standing_approvals(order: &Order) -> Vec<&super::event::Event> {
    let mut out: Vec<&super::event::Event> = Vec::new();
    for event in &order.history {
        match &event.body {
            EventBody::Approved { .. } => out.push(event),
            EventBody::ApprovalWithdrawn { role, commit, .. } => {
                let withdrawn = out.iter().rposition(
                    |a| matches!(&a.body, EventBody::Approved { role: r, commit: c, .. } if r == role && c == commit),
                );
                if let Some(i) = withdrawn {
                    out.remove(i);
                }
            }
            _ => {}
        }
    }
    out
}

pub fn runs(order: &Order) -> Vec<Run<'_>> {
    let mut out: Vec<Run<'_>> = Vec::new();
    for e in &order.history {
        let ended = match &e.body {
            EventBody::Dispatched { role, attempt, lease, .. } => {
                out.push(Run {
                    number: out.len() + 1,
                    role,
                    attempt: *attempt,
                    at: e.at,
                    runner: &lease.runner,
                    ended: None,
                });
                continue;
            }
            EventBody::Succeeded { head, run, .. } => Ended::Succeeded { head, report: run.as_ref() },
            EventBody::Failed { reason, to, permanent, run, .. } => {
                Ended::Failed { reason, to: to.as_ref(), permanent: *permanent, report: run.as_ref() }
            }
            EventBody::LeaseExpired { .. } => Ended::LeaseExpired,
            _ => continue,
        };
        if let Some(last) = out.last_mut().filter(|r| r.ended.is_none()) {
            last.ended = Some(ended);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_read_well() {
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(1_234), "$0.0012");
        assert_eq!(dollars(12_500_000), "$12.50");
    }

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        assert_eq!(Severity::parse(" High "), Some(Severity::High));
        assert_eq!(Severity::parse("urgent"), None);
    }
}
