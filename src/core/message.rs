//! Ledger commit messages: a human subject, the events as JSON (one per
//! line), then trailers. The format is canonical: a message is valid only if
//! re-rendering its parsed events yields it byte for byte, so a forged
//! subject or trailer cannot disagree with the events.

use std::collections::{HashMap, HashSet};

use super::config::SCHEMA;
use super::event::Event;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("not a git-mso ledger commit (no Mso-Schema trailer)")]
    Foreign,
    #[error(
        "written with ledger schema {0}, this git-mso reads schema {SCHEMA} only: use the git-mso that wrote it, \
         or start a new ledger"
    )]
    UnsupportedSchema(String),
    #[error("event line {line} is not a valid event: {reason}")]
    BadEvent { line: usize, reason: String },
    #[error("the commit carries no events")]
    NoEvents,
    #[error("the message is not in canonical form (subject or trailers do not match its events)")]
    NotCanonical,
}

const MAX_SUBJECT_GROUPS: usize = 3;

/// The one-line subject: `FTR-0007: approved PLN by alice, advanced PLN -> BLD`.
pub fn subject(events: &[Event]) -> String {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for event in events {
        let key = match (&event.body, event.body.order()) {
            (_, Some(order)) => order.to_string(),
            (body, None) if body.voyage_event().is_some() => {
                body.voyage_event().map(|v| v.to_string()).unwrap_or_default()
            }
            _ => "pipeline".to_string(),
        };
        let phrase = event.body.describe();
        match index.get(&key) {
            Some(&i) => groups[i].1.push(phrase),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![phrase]));
            }
        }
    }
    // Orders first: they are what a reader of `git log --oneline` looks for.
    groups.sort_by_key(|(k, _)| {
        if k.starts_with("VOY-") {
            1
        } else if k == "pipeline" {
            2
        } else {
            0
        }
    });
    let mut parts: Vec<String> =
        groups.iter().take(MAX_SUBJECT_GROUPS).map(|(k, p)| format!("{k}: {}", p.join(", "))).collect();
    if groups.len() > MAX_SUBJECT_GROUPS {
        parts.push(format!("and {} more", groups.len() - MAX_SUBJECT_GROUPS));
    }
    parts.join("; ")
}

/// Render a transaction as a commit message.
pub fn format(events: &[Event]) -> String {
    let mut msg = subject(events);
    msg.push_str("\n\n");
    for event in events {
        msg.push_str(&serde_json::to_string(event).expect("events always serialize"));
        msg.push('\n');
    }
    msg.push_str(&format!("\nMso-Schema: {SCHEMA}\n"));
    let mut seen = HashSet::new();
    for id in events.iter().filter_map(|e| e.body.order()) {
        if seen.insert(id) {
            msg.push_str(&format!("Mso-Order: {id}\n"));
        }
    }
    msg
}

/// The schema named by a message's trailer, if it has one.
fn schema_trailer(message: &str) -> Option<&str> {
    message.lines().rev().find_map(|l| l.strip_prefix("Mso-Schema: "))
}

/// Cheap check that a message is a ledger commit of a schema we read,
/// without parsing its events (a tip may carry a 1,000-event batch).
/// The trailer that ties a commit (a pull request's squash merge) to a voyage.
pub const VOYAGE_TRAILER: &str = "Mso-Voyage";

/// Whether `message` carries the `Mso-Voyage: VOY-NNNN` trailer of `voyage`:
/// a line of its own, from its first column (not an indented line quoting
/// it, such as a commit subject in `git request-pull`'s shortlog).
pub fn carries_voyage(message: &str, voyage: super::ids::VoyageId) -> bool {
    let wanted = format!("{VOYAGE_TRAILER}: {voyage}");
    message.lines().any(|l| l.trim_end() == wanted)
}

pub fn check_schema(message: &str) -> Result<(), MessageError> {
    match schema_trailer(message) {
        None => Err(MessageError::Foreign),
        Some(s) if s != SCHEMA.to_string() => Err(MessageError::UnsupportedSchema(s.chars().take(20).collect())),
        Some(_) => Ok(()),
    }
}

/// Parse a commit message back into its events; refuses anything not written by `format`.
pub fn parse(message: &str) -> Result<Vec<Event>, MessageError> {
    check_schema(message)?;
    let mut events = Vec::new();
    for (i, line) in message.lines().enumerate().skip(2) {
        if line.is_empty() {
            break;
        }
        let event: Event =
            serde_json::from_str(line).map_err(|e| MessageError::BadEvent { line: i + 1, reason: e.to_string() })?;
        events.push(event);
    }
    if events.is_empty() {
        return Err(MessageError::NoEvents);
    }
    if format(&events) != message {
        return Err(MessageError::NotCanonical);
    }
    Ok(events)
}
