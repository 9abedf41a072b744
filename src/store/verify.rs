//! Verification: replay ledger commits with the pure `apply` and check that
//! each commit's tree is exactly the state its events produce. `fsck`
//! replays from the root; the server hook replays a pushed range from the
//! old tip. Nothing is ever "healed": the first divergence is reported.

use std::time::Instant;

use gix::ObjectId;

use super::history::Entry;
use super::objects::RepoObjects;
use super::partial::{Partial, build_tree, changed_paths};
use super::{Store, Tip, short};
use crate::core::State;
use crate::core::apply::{self, apply};
use crate::error::{Error, Result};

/// The first commit that does not hold together, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub commit: ObjectId,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "commit {}: {}", short(self.commit), self.reason)
    }
}

/// What a clean replay saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replayed {
    pub commits: u64,
    pub events: u64,
    /// Commits named by events that this repository does not have (history
    /// replays let them pass: see `Objects::tolerate_missing`).
    pub missing_objects: u64,
}

/// Why a replay stopped: a problem in the ledger, or an error reading it.
#[derive(Debug)]
pub enum ReplayError {
    Problem(Problem),
    Io(Error),
}

impl From<Error> for ReplayError {
    fn from(e: Error) -> Self {
        ReplayError::Io(e)
    }
}

/// A per-commit rule: `Err(reason)` refuses the commit.
pub type CommitRule<'a> = &'a dyn Fn(&Entry) -> std::result::Result<(), String>;

/// What a caller adds to the replay every reader shares: a check per commit
/// (the server's pusher and clock rules) and a wall-time budget.
#[derive(Default)]
pub struct ReplayRules<'a> {
    /// Called with each parsed commit before its events apply; a reason refuses it.
    pub per_commit: Option<CommitRule<'a>>,
    /// Past this instant the replay stops with a problem.
    pub deadline: Option<Instant>,
    /// Every commit an event names must be here (accepting a push), rather
    /// than absent ones passing (replaying accepted history).
    pub strict_objects: bool,
}

impl Store {
    /// Replay `commits` (oldest first, each the child of the one before, the
    /// first a child of `base`) and check every one.
    pub fn replay(&self, base: Option<Tip>, commits: &[ObjectId]) -> std::result::Result<Replayed, ReplayError> {
        self.replay_with(base, commits, &ReplayRules::default())
    }

    /// `replay` with the caller's extra rules. For every commit: one parent
    /// (the previous one), a canonical message, a signature when the config
    /// requires one, event ids derived from content and parent, legal events,
    /// a bounded transaction, and a tree that is exactly (same id) the tree
    /// the writer makes of the replayed state.
    pub fn replay_with(
        &self,
        base: Option<Tip>,
        commits: &[ObjectId],
        rules: &ReplayRules<'_>,
    ) -> std::result::Result<Replayed, ReplayError> {
        let mut partial = Partial::new(self, base)?;
        let objects =
            if rules.strict_objects { RepoObjects::strict(&self.repo) } else { RepoObjects::replaying(&self.repo) };
        // Expected trees are built in memory: nothing is written to verify.
        let scratch = self.repo.clone().with_object_memory();
        let mut parent = base;
        let mut done = Replayed::default();
        for &id in commits {
            let problem = |reason: String| ReplayError::Problem(Problem { commit: id, reason });
            if rules.deadline.is_some_and(|d| Instant::now() > d) {
                return Err(problem("validating the push took longer than its time budget".into()));
            }
            let entry = match self.entry(id) {
                Ok(entry) => entry,
                Err(Error::Message { source, .. }) => return Err(problem(source.to_string())),
                Err(Error::Corrupt { reason, .. }) => return Err(problem(reason)),
                Err(e) => return Err(e.into()),
            };
            let expected_parents: Vec<ObjectId> = parent.map(|p| p.commit).into_iter().collect();
            if entry.parents != expected_parents {
                return Err(problem(match parent {
                    Some(p) => format!("its parent is not {}: the ledger must be linear", short(p.commit)),
                    None => "the first ledger commit must have no parent".into(),
                }));
            }
            if let Some(check) = rules.per_commit {
                check(&entry).map_err(problem)?;
            }
            let config = match (&partial.state.config, entry.events.first().map(|e| &e.body)) {
                (Some(config), _) => Some(config),
                (None, Some(crate::core::EventBody::Init { config })) => Some(config),
                (None, _) => None,
            };
            if let Some(config) = config {
                self.check_signature(config, &entry).map_err(problem)?;
            }
            let parent_hex = parent.map(|p| p.commit.to_string());
            // Bound the work before doing it, then check every id.
            apply::check_transaction(&State::default(), &entry.events).map_err(|e| problem(e.to_string()))?;
            apply::check_ids(parent_hex.as_deref(), &entry.events).map_err(|e| problem(e.to_string()))?;
            for event in &entry.events {
                partial.load_for(self, &event.body)?;
                partial.state = apply(std::mem::take(&mut partial.state), event, &objects)
                    .map_err(|e| problem(format!("illegal {} event: {e}", event.body.name())))?;
            }
            apply::check_transaction(&partial.state, &entry.events).map_err(|e| problem(e.to_string()))?;
            let files = partial.files(self, &entry.events, parent)?;
            let expected = build_tree(&scratch, parent.map(|p| p.tree), &files)
                .map_err(|e| ReplayError::Io(Error::git("building the expected ledger tree", e)))?;
            if expected != entry.tree {
                return Err(problem(tree_mismatch(&scratch, expected, entry.tree)));
            }
            scratch.objects.reset_object_memory();
            parent = Some(Tip { commit: id, tree: entry.tree });
            done.commits += 1;
            done.events += entry.events.len() as u64;
        }
        done.missing_objects = objects.missing();
        Ok(done)
    }

    /// Replay the whole ledger from its root.
    pub fn fsck(&self) -> Result<std::result::Result<Replayed, Problem>> {
        let tip = self.tip_unchecked()?.ok_or(Error::NotInitialized)?;
        let mut chain = Vec::new();
        let mut next = Some(tip);
        while let Some(id) = next {
            chain.push(id);
            let commit = match self.repo.find_commit(id) {
                Ok(c) => c,
                Err(e) => return Ok(Err(Problem { commit: id, reason: format!("cannot read the commit: {e}") })),
            };
            next = commit.parent_ids().next().map(|p| p.detach());
        }
        chain.reverse();
        let done = match self.replay(None, &chain) {
            Ok(done) => done,
            Err(ReplayError::Problem(p)) => return Ok(Err(p)),
            Err(ReplayError::Io(e)) => return Err(e),
        };
        if let Some(problem) = self.check_objects(tip, &chain)? {
            return Ok(Err(problem));
        }
        Ok(self.check_branches(tip)?.map_or(Ok(done), Err))
    }

    /// Moves of `refs/mso/ledger` in its reflog that were not made by
    /// appending or by `git mso sync` and left events behind: a rollback
    /// (`git update-ref`, a forced fetch, a restored backup) makes
    /// dispatchers run again work the lost events recorded. The newest
    /// `MAX_ROLLBACKS` are returned as lines.
    pub fn ledger_rollbacks(&self) -> Result<Vec<String>> {
        const MAX_ROLLBACKS: usize = 20;
        let Some(reference) =
            self.repo.try_find_reference(super::LEDGER_REF).map_err(|e| Error::git("reading refs/mso/ledger", e))?
        else {
            return Ok(Vec::new());
        };
        let mut platform = reference.log_iter();
        let Some(lines) = platform.all().map_err(|e| Error::io("reading the reflog of refs/mso/ledger", e))? else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        for line in lines {
            let Ok(line) = line else { continue };
            let (old, new) = (line.previous_oid(), line.new_oid());
            let message = line.message.to_string();
            if old.is_null() || new.is_null() || old == new || message.starts_with("git-mso: sync") {
                continue;
            }
            // A move that keeps the old tip in the new history lost nothing.
            if super::objects::is_ancestor(&self.repo, old, new) != Some(false) {
                continue;
            }
            let at = line.signature.time().map(|t| t.seconds).unwrap_or_default();
            found.push(format!(
                "refs/mso/ledger moved from {} to {} at {} ({}), leaving events behind; dispatchers may run \
                 that work again. If it was a mistake: git update-ref refs/mso/ledger {old}",
                short(old),
                short(new),
                crate::core::time::format_utc(at),
                crate::core::text::line(&message)
            ));
            if found.len() > MAX_ROLLBACKS {
                found.remove(0);
            }
        }
        Ok(found)
    }

    /// Every ledger commit, and every tree and blob of the tip's tree, must
    /// hash to its id: the replay compares trees by id and reads the state
    /// it replays, not the tip's files, so a damaged or replaced object
    /// file at the tip would pass it and mislead every later read.
    fn check_objects(&self, tip: ObjectId, chain: &[ObjectId]) -> Result<Option<Problem>> {
        use gix::object::Kind;
        let check = |id: ObjectId, kind: Kind, path: &str| -> Option<String> {
            let reason = match self.repo.find_object(id) {
                Err(e) => format!("cannot read object {id}: {e}"),
                Ok(o) if o.kind != kind => format!("object {id} is a {}, not a {kind}", o.kind),
                Ok(o) => match super::read::check_object_id(id, kind, &o.data) {
                    Ok(()) => return None,
                    Err(reason) => reason,
                },
            };
            Some(if path.is_empty() { reason } else { format!("{} ({reason})", crate::core::text::line(path)) })
        };
        for &commit in chain {
            if let Some(reason) = check(commit, Kind::Commit, "") {
                return Ok(Some(Problem { commit, reason }));
            }
        }
        let root = self.tip_of(tip)?.tree;
        let mut stack = vec![(String::new(), root)];
        while let Some((path, tree_id)) = stack.pop() {
            if let Some(reason) = check(tree_id, Kind::Tree, &path) {
                return Ok(Some(Problem { commit: tip, reason: format!("at the tip, {reason}") }));
            }
            let tree = self.repo.find_tree(tree_id).map_err(|e| Error::git("reading the ledger tree", e))?;
            for entry in tree.iter() {
                let entry = entry.map_err(|e| Error::git("reading the ledger tree", e))?;
                let child = format!("{path}{}{}", if path.is_empty() { "" } else { "/" }, entry.filename());
                let id = entry.oid().to_owned();
                if entry.mode().is_tree() {
                    stack.push((child, id));
                } else if let Some(reason) = check(id, Kind::Blob, &child) {
                    return Ok(Some(Problem { commit: tip, reason: format!("at the tip, {reason}") }));
                }
            }
        }
        Ok(None)
    }

    /// Every voyage branch here must still contain the head the ledger
    /// recorded for it: a branch reset or rewritten under the ledger would
    /// publish something other than what was built and reviewed.
    fn check_branches(&self, tip: ObjectId) -> Result<Option<Problem>> {
        let tip = self.tip_of(tip)?;
        // Only voyages with work in flight: a finished voyage's branch may be
        // rebased or squashed for its pull request (the hook allows it).
        let open: std::collections::BTreeSet<crate::core::VoyageId> =
            self.summaries(&tip)?.iter().filter(|s| !s.status.is_terminal()).map(|s| s.voyage).collect();
        for voyage in self.voyages(&tip)? {
            if !open.contains(&voyage.id) {
                continue;
            }
            let Some(branch) = self.branch_tip(&voyage)? else { continue };
            let recorded: Option<ObjectId> = voyage.head.parse().ok();
            let contains = recorded.and_then(|r| super::objects::is_ancestor(&self.repo, r, branch)) == Some(true);
            if !contains {
                return Ok(Some(Problem {
                    commit: tip.commit,
                    reason: format!(
                        "{} at {} does not contain {}'s recorded head {}: the branch was reset or rewritten \
                         under the ledger",
                        voyage.id.branch(),
                        short(branch),
                        voyage.id,
                        crate::core::event::short(&voyage.head)
                    ),
                }));
            }
        }
        Ok(None)
    }
}

/// Why a tree is not the canonical one, naming the first path that differs.
fn tree_mismatch(repo: &gix::Repository, expected: ObjectId, found: ObjectId) -> String {
    let first = changed_paths(repo, Some(expected), found).ok().and_then(|paths| paths.into_iter().next());
    let at = match first {
        Some(path) => format!("it differs at {}", crate::core::text::line(&path)),
        None => "same paths, but other entries: modes, duplicates or order".into(),
    };
    format!(
        "its tree {} is not the canonical tree {} of the state its events produce ({at})",
        short(found),
        short(expected)
    )
}
