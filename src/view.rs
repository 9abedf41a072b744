//! What a reviewer looks at: the commits of a range with who made them (as
//! the ledger records it), its diffstat and diff, and how a branch stands
//! against another. These are git's own renderings (`git log`, `git diff`,
//! `git rev-list`), run read-only; every line that comes from a commit or a
//! note is escaped before it reaches a terminal.

use std::path::Path;

use serde::Serialize;

use crate::core::text;
use crate::error::Result;
use crate::gitcli::git;

/// Commits listed at most for one range.
pub const MAX_COMMITS: usize = 200;

/// Files, added and removed lines of a range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stat {
    pub files: u64,
    pub insertions: u64,
    pub deletions: u64,
}

impl std::fmt::Display for Stat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = if self.files == 1 { "" } else { "s" };
        write!(f, "{} file{plural} changed, +{} -{}", self.files, self.insertions, self.deletions)
    }
}

/// One commit of a range, and what `refs/notes/mso` says of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    pub id: String,
    pub subject: String,
    /// The note's lines (`Mso-Order: …`), escaped.
    pub notes: Vec<String>,
}

impl CommitInfo {
    /// `Mso-Order FTR-0001 BLD attempt 2, approved by bob` from the note, when it has one.
    pub fn made_by(&self) -> String {
        let field = |key: &str| -> Vec<&str> {
            self.notes.iter().filter_map(|l| l.strip_prefix(key).map(str::trim)).collect::<Vec<_>>()
        };
        let (orders, roles, attempts) = (field("Mso-Order:"), field("Mso-Role:"), field("Mso-Attempt:"));
        let mut said = match (orders.first(), roles.first()) {
            (Some(o), Some(r)) => format!("{o} {r}"),
            _ => return String::new(),
        };
        if let Some(a) = attempts.first() {
            said.push_str(&format!(" attempt {a}"));
        }
        // Reviews in the order the note records them: an approval, its
        // withdrawal, the approval given again.
        for line in &self.notes {
            let review = [
                ("Mso-Approved-By:", "approved by"),
                ("Mso-Approval-Withdrawn-By:", "approval withdrawn by"),
                ("Mso-Rejected-By:", "rejected by"),
            ]
            .into_iter()
            .find_map(|(key, what)| line.strip_prefix(key).map(|by| format!(", {what} {}", by.trim())));
            if let Some(review) = review {
                said.push_str(&review);
            }
        }
        said
    }
}

/// A range `base..head`: its commits (newest first, at most `MAX_COMMITS`),
/// whether there are more, and its diffstat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Range {
    pub base: String,
    pub head: String,
    pub commits: Vec<CommitInfo>,
    pub more: bool,
    pub stat: Stat,
}

/// The commits of `range`, one line each with who made them, and a line
/// saying when there are more than were read.
pub fn write_commits(out: &mut dyn std::io::Write, range: &Range) -> std::io::Result<()> {
    for c in &range.commits {
        let by = c.made_by();
        let by = if by.is_empty() { String::new() } else { format!("  [{by}]") };
        writeln!(out, "  {} {}{by}", crate::core::event::short(&c.id), c.subject)?;
    }
    if range.more {
        writeln!(out, "  … (more than {MAX_COMMITS})")?;
    }
    Ok(())
}

/// Read `base..head` in the repository at `dir`; `notes` gives the note
/// lines of a commit. Subjects come one per line (`%s` never spans lines),
/// so no commit message can pose as another commit or as a note.
pub fn range(dir: &Path, base: &str, head: &str, notes: &dyn Fn(&str) -> Vec<String>) -> Result<Range> {
    let spec = format!("{base}..{head}");
    let max = format!("-n{}", MAX_COMMITS + 1);
    let log = git(dir, &["log", "--no-color", "--no-notes", &max, "--format=%H %s", &spec])?;
    let mut commits: Vec<CommitInfo> = log
        .lines()
        .filter_map(|line| {
            let (id, subject) = line.split_once(' ').unwrap_or((line, ""));
            (id.len() == 40 && crate::core::ids::is_lower_hex(id)).then(|| CommitInfo {
                id: id.to_string(),
                subject: text::line(subject).into_owned(),
                notes: notes(id),
            })
        })
        .collect();
    let more = commits.len() > MAX_COMMITS;
    commits.truncate(MAX_COMMITS);
    Ok(Range { base: base.to_string(), head: head.to_string(), commits, more, stat: stat(dir, base, head)? })
}

/// The diffstat of `base..head` (binary files count as changed, with no lines).
pub fn stat(dir: &Path, base: &str, head: &str) -> Result<Stat> {
    let numstat = git(dir, &["diff", "--no-color", "--no-ext-diff", "--no-textconv", "--numstat", base, head])?;
    let mut stat = Stat::default();
    for line in numstat.lines() {
        let mut cols = line.split('\t');
        let (Some(added), Some(removed)) = (cols.next(), cols.next()) else { continue };
        stat.files += 1;
        stat.insertions += added.parse::<u64>().unwrap_or(0);
        stat.deletions += removed.parse::<u64>().unwrap_or(0);
    }
    Ok(stat)
}

/// The diffstat and patch of `base..head`, as `git diff --stat --patch` prints them, escaped.
pub fn diff(dir: &Path, base: &str, head: &str) -> Result<String> {
    let patch = git(dir, &["diff", "--no-color", "--no-ext-diff", "--no-textconv", "--stat", "--patch", base, head])?;
    Ok(text::display(&patch, true).into_owned())
}

/// Commits `head` has that `other` lacks, and the other way round.
pub fn ahead_behind(dir: &Path, other: &str, head: &str) -> Option<(u64, u64)> {
    let counts = git(dir, &["rev-list", "--left-right", "--count", &format!("{head}...{other}")]).ok()?;
    let mut it = counts.split_whitespace().map(|n| n.parse::<u64>().ok());
    Some((it.next()??, it.next()??))
}

/// Who made each commit, as the ledger records it for `orders`: the lines
/// `refs/notes/mso` carries for them (`core::notes::for_order`), derived
/// from the ledger here rather than read from the notes ref, which anyone
/// who may push can write.
pub fn notes_of(orders: &[crate::core::Order]) -> impl Fn(&str) -> Vec<String> + use<> {
    let mut by_commit: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for order in orders {
        for (commit, blocks) in crate::core::notes::for_order(order) {
            let lines = by_commit.entry(commit).or_default();
            lines.extend(blocks.into_iter().flatten().map(|l| text::line(&l).into_owned()));
        }
    }
    move |id: &str| by_commit.get(id).cloned().unwrap_or_default()
}
