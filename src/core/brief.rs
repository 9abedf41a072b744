//! What a crew reads: the brief file (order, role, acceptance criteria,
//! earlier roles' hand-offs, review feedback) and how its result file is read.

use std::fmt::Write;

use super::apply::limits;
use super::config::Config;
use super::state::Order;

/// The brief for the order's current role, as Markdown.
pub fn render(order: &Order, config: &Config) -> String {
    let role = &order.role;
    let model = config.role(role).map_or("standard", |r| r.model.as_str());
    let read_only = config.role(role).is_some_and(|r| r.read_only);
    let mut out = String::new();
    let _ = writeln!(out, "# {}: {}\n", order.id, order.title);
    let _ = writeln!(out, "- Role: {role} ({}), attempt {}, model tier {model}", config.persona(role), order.attempt);
    let _ = writeln!(out, "- Voyage: {} (branch {})", order.voyage, order.voyage.branch());
    let seq: Vec<String> =
        order.roles.iter().map(|r| if r == role { format!("[{r}]") } else { r.to_string() }).collect();
    let _ = writeln!(out, "- Sequence: {}", seq.join(" → "));
    if read_only {
        let _ = writeln!(out, "- This role is read-only: report findings, change no files.");
    }
    if !order.brief.trim().is_empty() {
        let _ = writeln!(out, "\n## Brief\n\n{}", order.brief.trim_end());
    }
    if !order.acceptance.is_empty() {
        let _ = writeln!(out, "\n## Acceptance criteria\n");
        for ac in &order.acceptance {
            let _ = writeln!(out, "- {ac}");
        }
    }
    if !order.handoffs.is_empty() {
        let _ = writeln!(out, "\n## Hand-offs from earlier roles");
        for h in &order.handoffs {
            let _ =
                writeln!(out, "\n### {} ({}) at {}\n", h.role, config.persona(&h.role), super::event::short(&h.head));
            let _ =
                writeln!(out, "{}", if h.summary.trim().is_empty() { "(no summary)" } else { h.summary.trim_end() });
        }
    }
    if !order.rejections.is_empty() {
        let _ = writeln!(out, "\n## Review feedback\n");
        for r in &order.rejections {
            let _ = writeln!(out, "- {} rejected by {}: {}", r.role, r.by, r.reason.trim_end());
        }
    }
    out
}

/// What a crew wrote to `MSO_RESULT_FILE`: a JSON object with `summary`
/// (and optionally `plan`), or with `result` (what coding-agent CLIs print
/// as JSON), or plain text. Bounded to the ledger's limit.
pub fn read_result(text: &str) -> String {
    let parsed = serde_json::from_str::<serde_json::Value>(text).ok();
    let field = |name: &str| parsed.as_ref().and_then(|v| v.get(name)).and_then(|v| v.as_str()).map(str::trim);
    let summary = match (field("summary"), field("plan")) {
        (Some(s), Some(p)) => format!("{s}\n\n{p}"),
        (Some(s), None) => s.to_string(),
        (None, Some(p)) => p.to_string(),
        (None, None) => field("result").map_or_else(|| text.trim().to_string(), str::to_string),
    };
    // Whatever the crew wrote, the success can be recorded: escaped, bounded.
    super::text::clip(super::text::display(&summary, true).into_owned(), limits::SUMMARY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_json_or_text() {
        assert_eq!(read_result(r#"{"summary":"did it","plan":"1. a"}"#), "did it\n\n1. a");
        assert_eq!(read_result("  plain words \n"), "plain words");
        assert_eq!(read_result(r#"{"type":"result","is_error":false,"result":"Done."}"#), "Done.");
        assert_eq!(read_result("bell\u{7}"), "bell\\u{7}");
        assert_eq!(read_result("rtl\u{202e}x"), "rtl\\u{202e}x");
        assert!(read_result(&"x".repeat(100_000)).ends_with("[truncated]"));
    }
}
