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
    // Approvals of one role's commit, counted: an approval given again after
    // a withdrawal gets a block of its own (`Mso-Approval: 2`), so a union of
    // notes keeps the order of approvals and withdrawals.
    let mut approvals: std::collections::HashMap<(String, String), u32> = std::collections::HashMap::new();
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
            EventBody::Approved { role, by, commit, .. } => {
                let n = approvals.entry((role.to_string(), commit.clone())).or_default();
                *n += 1;
                let mut block = vec![
                    format!("Mso-Order: {}", order.id),
                    format!("Mso-Role: {role}"),
                    format!("Mso-Approved-By: {by}"),
                ];
                if *n > 1 {
                    block.push(format!("Mso-Approval: {n}"));
                }
                (commit.clone(), block)
            }
            EventBody::ApprovalWithdrawn { role, by, commit, .. } => {
                let n = approvals.get(&(role.to_string(), commit.clone())).copied().unwrap_or(0);
                (
                    commit.clone(),
                    vec![
                        format!("Mso-Order: {}", order.id),
                        format!("Mso-Role: {role}"),
                        format!("Mso-Approval-Withdrawn-By: {by}"),
                        format!("Mso-Approval: {n}"),
                    ],
                )
            }
            EventBody::Rejected { role, by, commit, .. } => (
                commit.clone(),
                vec![format!("Mso-Order: {}", order.id), format!("Mso-Role: {role}"), format!("Mso-Rejected-By: {by}")],
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

/// Append the blocks not already present (linear in both: a note may hold
/// tens of thousands of blocks).
pub fn merge(existing: &mut Vec<Block>, new: &[Block]) {
    let mut seen: std::collections::HashSet<Block> = existing.iter().cloned().collect();
    for block in new {
        if seen.insert(block.clone()) {
            existing.push(block.clone());
        }
    }
}

/// The note text, at most `max` bytes: the earliest blocks that fit (a
/// union of notes from many clones must stay within what a server accepts).
pub fn render_bounded(blocks: &[Block], max: usize) -> String {
    // render() joins blocks with a blank line and ends with a newline.
    let mut len = 1;
    let mut kept = 0;
    for (i, block) in blocks.iter().enumerate() {
        let size = block.iter().map(|l| l.len() + 1).sum::<usize>().saturating_sub(1) + if i > 0 { 2 } else { 0 };
        if len + size > max {
            break;
        }
        len += size;
        kept += 1;
    }
    render(&blocks[..kept])
}

/// The note text, at most `max` bytes: the latest blocks that fit (evidence:
/// the newest runs matter most when many share a commit).
pub fn render_latest(blocks: &[Block], max: usize) -> String {
    let mut len = 1;
    let mut first = blocks.len();
    for (i, block) in blocks.iter().enumerate().rev() {
        let size = block.iter().map(|l| l.len() + 1).sum::<usize>().saturating_sub(1) + 2;
        if len + size > max + 2 {
            break;
        }
        len += size;
        first = i;
    }
    render(&blocks[first..])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_rendering_keeps_whole_blocks_within_the_limit() {
        let blocks: Vec<Block> = (0..100).map(|i| vec![format!("Mso-Pad: {i:03}"), "Mso-Role: PLN".into()]).collect();
        for max in [1, 28, 29, 30, 60, 500, 10_000] {
            let text = render_bounded(&blocks, max);
            let kept = parse(&text).len();
            assert!(text.len() <= max.max(1), "{max}: {}", text.len());
            assert_eq!(text, render(&blocks[..kept]));
            if kept < blocks.len() {
                assert!(render(&blocks[..kept + 1]).len() > max, "{max}: one more block would have fit");
            }
        }
    }

    #[test]
    fn latest_rendering_keeps_the_newest_blocks_within_the_limit() {
        let blocks: Vec<Block> = (0..100).map(|i| vec![format!("Mso-Pad: {i:03}"), "Mso-Role: PLN".into()]).collect();
        for max in [1, 28, 29, 30, 60, 500, 10_000] {
            let text = render_latest(&blocks, max);
            let kept = parse(&text);
            assert!(text.len() <= max.max(1), "{max}: {}", text.len());
            assert_eq!(kept, blocks[blocks.len() - kept.len()..], "{max}");
            if kept.len() < blocks.len() {
                let one_more = &blocks[blocks.len() - kept.len() - 1..];
                assert!(render(one_more).len() > max, "{max}: one more block would have fit");
            }
        }
    }

    #[test]
    fn merging_a_large_note_is_linear_and_keeps_order() {
        let mut ours: Vec<Block> = vec![vec!["a".into()], vec!["b".into()]];
        let theirs: Vec<Block> = (0..50_000).map(|i| vec![format!("x{i}")]).chain([vec!["a".into()]]).collect();
        merge(&mut ours, &theirs);
        assert_eq!(ours.len(), 50_002);
        assert_eq!(ours[0], vec!["a".to_string()]);
        assert_eq!(ours[2], vec!["x0".to_string()]);
    }
}
