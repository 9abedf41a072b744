//! The notes `refs/notes/mso` carries on voyage commits, derived from the
//! ledger: which order, role, attempt and runner produced a commit, and who
//! approved it. Nothing reads state from notes; they are a mirror for
//! `git log --notes=mso`.
//!
//! A note is a list of blocks separated by blank lines, one block per crew
//! result or approval on that commit (a role that changed nothing leaves its
//! block on the same commit as the role before it).

use super::event::EventBody;
use super::state::Order;

/// One block of trailer-style lines.
pub type Block = Vec<String>;

/// Note blocks per commit for one order, in history order.
pub fn for_order(order: &Order) -> Vec<(String, Vec<Block>)> {
    let mut out: Vec<(String, Vec<Block>)> = Vec::new();
    let mut run: Option<(u32, String)> = None;
    for event in &order.history {
        let (commit, block) = match &event.body {
            EventBody::Dispatched { attempt, lease, .. } => {
                run = Some((*attempt, lease.runner.clone()));
                continue;
            }
            EventBody::Succeeded { role, head, .. } => {
                let (attempt, runner) = run.clone().unwrap_or((order.attempt, "unknown".into()));
                (
                    head.clone(),
                    vec![
                        format!("Mso-Order: {}", order.id),
                        format!("Mso-Role: {role}"),
                        format!("Mso-Attempt: {attempt}"),
                        format!("Mso-Runner: {runner}"),
                    ],
                )
            }
            EventBody::Approved { role, by, commit, .. } => (
                commit.clone(),
                vec![format!("Mso-Order: {}", order.id), format!("Mso-Role: {role}"), format!("Mso-Approved-By: {by}")],
            ),
            _ => continue,
        };
        match out.iter_mut().find(|(c, _)| *c == commit) {
            Some((_, blocks)) => merge(blocks, &[block]),
            None => out.push((commit, vec![block])),
        }
    }
    out
}

/// Append the blocks not already present.
pub fn merge(existing: &mut Vec<Block>, new: &[Block]) {
    for block in new {
        if !existing.contains(block) {
            existing.push(block.clone());
        }
    }
}

/// The note text, at most `max` bytes: the earliest blocks that fit (a
/// union of notes from many clones must stay within what a server accepts).
pub fn render_bounded(blocks: &[Block], max: usize) -> String {
    let mut kept: Vec<Block> = Vec::new();
    for block in blocks {
        kept.push(block.clone());
        if render(&kept).len() > max {
            kept.pop();
            break;
        }
    }
    render(&kept)
}

/// The note text: blocks separated by blank lines.
pub fn render(blocks: &[Block]) -> String {
    let mut text = blocks.iter().map(|b| b.join("\n")).collect::<Vec<_>>().join("\n\n");
    text.push('\n');
    text
}

/// Blocks of an existing note.
pub fn parse(text: &str) -> Vec<Block> {
    text.split("\n\n")
        .map(|b| b.lines().map(str::to_string).filter(|l| !l.trim().is_empty()).collect::<Block>())
        .filter(|b| !b.is_empty())
        .collect()
}
