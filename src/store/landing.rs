//! Noticing that a voyage landed: its recorded head became part of its
//! target branch (a fast-forward or a merge commit), or a commit on the
//! target carries its `Mso-Voyage` trailer and brings exactly its changes (a
//! squash merge). What is found is recorded as VOYAGE_LANDED, which `apply`
//! checks by lineage and trailer, and the server's hook also by the target
//! branch it has and, for a squash, by patch id.

use gix::ObjectId;

use super::Store;
use super::objects::is_ancestor;
use crate::core::message::carries_voyage;
use crate::core::state::{LandedHow, VoyageState};
use crate::core::{EventBody, Voyage};
use crate::error::Result;

/// Commits of the target's first-parent line looked at, at most.
pub const MAX_LINE: usize = 10_000;
/// Commits of the target's line searched for a squash merge's trailer, at most.
pub const MAX_SQUASH_SEARCH: usize = 1_000;
/// Entries the cache of what was looked at keeps.
const MAX_SEEN: usize = 10_000;

impl Store {
    /// Where `voyage`'s recorded head landed on the target branch at `tip`,
    /// if it did: the commit of the target's own line that brought it in, and how.
    pub fn landing(&self, voyage: &Voyage, tip: ObjectId) -> Result<Option<(ObjectId, LandedHow)>> {
        if voyage.head == voyage.base {
            return Ok(None);
        }
        let (Ok(head), Ok(base)) = (voyage.head.parse::<ObjectId>(), voyage.base.parse::<ObjectId>()) else {
            return Ok(None);
        };
        if self.repo.find_header(head).is_err() {
            return Ok(None);
        }
        if is_ancestor(&self.repo, head, tip) == Some(true) {
            let line = self.first_parents(tip, base, MAX_LINE);
            // Along the target's line, "has the head" holds from the tip back to
            // the commit that brought it in, and not before: search for that edge.
            let has = |id: ObjectId| is_ancestor(&self.repo, head, id) == Some(true);
            let (mut lo, mut hi) = (0usize, line.len());
            while lo + 1 < hi {
                let mid = (lo + hi) / 2;
                if has(line[mid]) { lo = mid } else { hi = mid }
            }
            let Some(&landed) = line.get(lo) else { return Ok(None) };
            let how = if landed == head { LandedHow::FastForward } else { LandedHow::Merge };
            return Ok(Some((landed, how)));
        }
        // A squash merge is younger than its voyage (a day's clock skew allowed).
        let since = voyage.created.saturating_sub(86_400);
        for id in self.first_parents(tip, base, MAX_SQUASH_SEARCH) {
            let Ok(commit) = self.repo.find_commit(id) else { break };
            if commit.time().is_ok_and(|t| t.seconds < since) {
                break;
            }
            let message = commit.message_raw_sloppy();
            let message = String::from_utf8_lossy(&message[..message.len().min(256 * 1024)]);
            if carries_voyage(&message, voyage.id) && self.squashes(voyage, id) {
                return Ok(Some((id, LandedHow::Squash)));
            }
        }
        Ok(None)
    }

    /// Whether `commit` (on the target's line) brings exactly the voyage's
    /// changes: its diff from its first parent has the patch id of the
    /// voyage's `base..head`. A trailer alone is not enough: anyone who
    /// writes a commit message can type it.
    pub fn squashes(&self, voyage: &Voyage, commit: ObjectId) -> bool {
        let parent = self.repo.find_commit(commit).ok().and_then(|c| c.parent_ids().next().map(|p| p.detach()));
        let Some(parent) = parent else { return false };
        let ours = self.patch_id(&voyage.base, &voyage.head);
        ours.is_some() && ours == self.patch_id(&parent.to_string(), &commit.to_string())
    }

    /// `git patch-id --stable` of the diff from `from` to `to` (commit ids).
    fn patch_id(&self, from: &str, to: &str) -> Option<String> {
        use std::io::Write as _;
        let dir = self.top_dir();
        let args = ["diff-tree", "-r", "-p", "--no-color", "--no-ext-diff", "--no-textconv", from, to];
        let diff = crate::gitcli::command(&dir, &args).output().ok().filter(|o| o.status.success())?;
        let mut child = crate::gitcli::command(&dir, &["patch-id", "--stable"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        // patch-id prints one line at the end, so writing all of stdin first cannot block on its stdout.
        let written = child.stdin.take().map(|mut stdin| stdin.write_all(&diff.stdout));
        let out = child.wait_with_output().ok()?;
        if !matches!(written, Some(Ok(()))) {
            return None;
        }
        String::from_utf8(out.stdout).ok()?.split_whitespace().next().map(str::to_string)
    }

    /// `tip` and its first parents, newest first, until `stop` (included) or `max` commits.
    fn first_parents(&self, tip: ObjectId, stop: ObjectId, max: usize) -> Vec<ObjectId> {
        let mut line = Vec::new();
        let mut next = Some(tip);
        while let Some(id) = next {
            if line.len() >= max {
                break;
            }
            line.push(id);
            if id == stop {
                break;
            }
            next = self.repo.find_commit(id).ok().and_then(|c| c.parent_ids().next().map(|p| p.detach()));
        }
        line
    }

    /// Record VOYAGE_LANDED for every open or published voyage whose target
    /// branch, as `tips` gives it (the target's name to the commits it is at:
    /// a remote's tracking branch, the server's branch), has its recorded
    /// head. What was looked at (voyage, its head, target commit) and ruled
    /// out or recorded is not looked at again (`<git dir>/mso/landings-seen`);
    /// the search stops after `budget`, the rest waits for the next call.
    /// Returns one line per landing recorded.
    pub fn record_landings(
        &self,
        tips: &dyn Fn(&str) -> Vec<ObjectId>,
        budget: std::time::Duration,
    ) -> Result<Vec<String>> {
        let Some(tip) = self.tip()? else { return Ok(Vec::new()) };
        let deadline = std::time::Instant::now() + budget;
        let seen_file = self.common_dir().join("mso").join("landings-seen");
        let seen: std::collections::BTreeSet<String> = std::fs::read_to_string(&seen_file)
            .unwrap_or_default()
            .lines()
            .take(MAX_SEEN)
            .map(str::to_string)
            .collect();
        let mut looked = std::collections::BTreeSet::new();
        let mut found = Vec::new();
        let mut lines = Vec::new();
        'voyages: for voyage in self.voyages(&tip)? {
            // Runs and reviews in progress: the head is not settled, look later.
            if !matches!(voyage.state(), VoyageState::Open | VoyageState::Published) || voyage.active.is_some() {
                continue;
            }
            let Some(target) = voyage.target.clone() else { continue };
            for target_tip in tips(&target) {
                let key = format!("{} {} {target} {target_tip}", voyage.id, voyage.head);
                if seen.contains(&key) {
                    continue;
                }
                if std::time::Instant::now() > deadline {
                    lines.push("landings: out of time; the remaining voyages are looked at next time".to_string());
                    break 'voyages;
                }
                match self.landing(&voyage, target_tip)? {
                    Some((commit, how)) => {
                        found.push((voyage.id, target.clone(), commit, how, key));
                        break;
                    }
                    None => {
                        looked.insert(key);
                    }
                }
            }
        }
        for (id, target, commit, how, key) in found {
            // Another writer may have recorded it first, or the voyage moved on.
            let recorded = self.transact_if(|tx| {
                let Some(voyage) = tx.try_voyage(id)?.cloned() else { return Ok(None) };
                if !matches!(voyage.state(), VoyageState::Open | VoyageState::Published) {
                    return Ok(None);
                }
                tx.push(EventBody::VoyageLanded {
                    voyage: id,
                    target: target.clone(),
                    commit: commit.to_string(),
                    head: voyage.head.clone(),
                    how,
                })?;
                Ok(Some(()))
            });
            match recorded {
                Ok((Some(()), _)) => {
                    looked.insert(key);
                    lines.push(format!("{id} landed on {target} at {} ({how})", super::short(commit)))
                }
                Ok(_) => {}
                // Not remembered: the next call tries again.
                Err(e) => lines.push(format!("warning: {id} landed on {target}, but it was not recorded: {e}")),
            }
        }
        if !looked.is_empty() {
            // A cache: losing it costs a second look, nothing more. The newest
            // entries are kept within its bound.
            let mut all: Vec<&String> = seen.iter().filter(|k| !looked.contains(*k)).collect();
            all.extend(looked.iter());
            let keep = all.len().saturating_sub(MAX_SEEN);
            let text: String = all[keep..].iter().map(|k| format!("{k}\n")).collect();
            let _ = std::fs::create_dir_all(seen_file.parent().unwrap_or(self.common_dir()));
            let _ = std::fs::write(&seen_file, text);
        }
        Ok(lines)
    }
}
