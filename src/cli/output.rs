//! Shared output helpers: JSON, tables, and how orders read on a line.

use std::io::Write;

use serde::Serialize;

use crate::core::{Config, Order, OrderSummary, Role};

/// Whether terminal output is coloured (set once at start: a terminal,
/// `color.ui`, `NO_COLOR`).
static COLOUR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_colour(on: bool) {
    COLOUR.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// A status word in its colour (queued blue, running yellow, review
/// magenta, failed red, completed and landed green), when colour is on.
pub fn paint_status(text: &str) -> String {
    if !COLOUR.load(std::sync::atomic::Ordering::Relaxed) {
        return text.to_string();
    }
    let code = match text.trim_end() {
        "queued" => "34",
        "running" => "33",
        "review" | "held" => "35",
        "failed" => "31",
        "completed" | "landed" => "32",
        _ => return text.to_string(),
    };
    format!("\u{1b}[{code}m{text}\u{1b}[m")
}

/// Write `value` as pretty JSON followed by a newline.
pub fn json<T: Serialize>(out: &mut dyn Write, value: &T) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // A STATUS column is coloured after padding, so escapes never count as width.
    let status = header.iter().position(|h| *h == "STATUS");
    let line = |cells: Vec<&str>, paint: bool| {
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let cell = if i == last { c.to_string() } else { format!("{c:<w$}", w = widths[i]) };
                if paint && Some(i) == status { paint_status(&cell) } else { cell }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(out, "{}", line(header.to_vec(), false).trim_end())?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect(), true).trim_end())?;
    }
    Ok(())
}

/// `PLN (Navigator)`
pub fn role_with_persona(config: &Config, role: &Role) -> String {
    format!("{role} ({})", config.persona(role))
}

/// `FTR-0001  queued at PLN (Navigator)  voyage/VOY-0001`
pub fn order_line(config: &Config, order: &Order) -> String {
    format!("{}  {} at {}  {}", order.id, order.status, role_with_persona(config, &order.role), order.voyage.branch())
}

/// The sequence with gates marked: `PLN* → BLD → TST`.
pub fn sequence(roles: &[Role], gates: &[Role]) -> String {
    roles
        .iter()
        .map(|r| if gates.contains(r) { format!("{r}*") } else { r.to_string() })
        .collect::<Vec<_>>()
        .join(" → ")
}

fn summary_row(s: &OrderSummary, landed: &std::collections::BTreeSet<crate::core::VoyageId>) -> Vec<String> {
    // A completed order whose voyage reached its target is shown as landed.
    let status = if s.status == crate::core::Status::Completed && landed.contains(&s.voyage) {
        "landed".to_string()
    } else {
        s.status.to_string()
    };
    vec![
        s.id.to_string(),
        status,
        s.role.to_string(),
        s.attempt.to_string(),
        s.voyage.to_string(),
        crate::core::text::line(&s.title).into_owned(),
    ]
}

/// Order summaries as a table, as JSON, or `empty` when there are none.
/// `landed`: the voyages that landed (their completed orders read `landed`).
pub fn summaries(
    out: &mut dyn Write,
    orders: &[OrderSummary],
    json: bool,
    empty: &str,
    landed: &std::collections::BTreeSet<crate::core::VoyageId>,
) -> anyhow::Result<()> {
    if json {
        return self::json(out, &orders);
    }
    if orders.is_empty() {
        writeln!(out, "{empty}")?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = orders.iter().map(|s| summary_row(s, landed)).collect();
    table(out, &["ID", "STATUS", "ROLE", "ATTEMPT", "VOYAGE", "TITLE"], &rows)
}
