//! The repository's answers to what `apply` asks of commits an event names:
//! does it exist, and does it descend from another. Walks are bounded, so a
//! hostile history cannot stall a writer or the server hook.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};

use gix::ObjectId;

use crate::core::{Objects, Presence};

/// Commits visited at most to decide one ancestry question.
pub const MAX_WALK: usize = 10_000;

/// `Objects` over a repository's object database (in a hook: the quarantine
/// too). Strict where changes are accepted; `replaying` history, commits the
/// repository lacks are let pass and counted.
pub struct RepoObjects<'r> {
    repo: &'r gix::Repository,
    replaying: bool,
    missing: RefCell<HashSet<ObjectId>>,
}

impl<'r> RepoObjects<'r> {
    /// For accepting changes: every named commit must be here.
    pub fn strict(repo: &'r gix::Repository) -> Self {
        RepoObjects { repo, replaying: false, missing: RefCell::default() }
    }

    /// For replaying accepted history (fsck, sync): absent commits are counted, not refused.
    pub fn replaying(repo: &'r gix::Repository) -> Self {
        RepoObjects { repo, replaying: true, missing: RefCell::default() }
    }

    /// How many distinct named commits were absent.
    pub fn missing(&self) -> u64 {
        self.missing.borrow().len() as u64
    }
}

impl Objects for RepoObjects<'_> {
    fn presence(&self, id: &str) -> Presence {
        let Ok(id) = id.parse::<ObjectId>() else { return Presence::NotACommit };
        match self.repo.find_header(id) {
            Ok(h) if h.kind() == gix::object::Kind::Commit => Presence::Commit,
            Ok(_) => Presence::NotACommit,
            Err(_) => {
                self.missing.borrow_mut().insert(id);
                Presence::Missing
            }
        }
    }

    fn descends_from(&self, commit: &str, ancestor: &str) -> Option<bool> {
        match (commit.parse::<ObjectId>(), ancestor.parse::<ObjectId>()) {
            (Ok(commit), Ok(ancestor)) => is_ancestor(self.repo, ancestor, commit),
            _ => Some(false),
        }
    }

    fn tolerate_missing(&self) -> bool {
        self.replaying
    }

    fn message(&self, commit: &str) -> Option<String> {
        let commit = self.repo.find_commit(commit.parse::<ObjectId>().ok()?).ok()?;
        let raw = commit.message_raw_sloppy();
        let bounded = &raw[..raw.len().min(MAX_MESSAGE)];
        Some(String::from_utf8_lossy(bounded).into_owned())
    }
}

/// How much of a commit message is read to find a trailer.
const MAX_MESSAGE: usize = 256 * 1024;

/// Whether `ancestor` is `commit` or in its history; `None` when the walk
/// would pass `MAX_WALK` commits or a commit cannot be read (a shallow clone).
pub fn is_ancestor(repo: &gix::Repository, ancestor: ObjectId, commit: ObjectId) -> Option<bool> {
    let mut queue = VecDeque::from([commit]);
    let mut seen = HashSet::from([commit]);
    while let Some(id) = queue.pop_front() {
        if id == ancestor {
            return Some(true);
        }
        if seen.len() > MAX_WALK {
            return None;
        }
        let commit = repo.find_commit(id).ok()?;
        for parent in commit.parent_ids() {
            if seen.insert(parent.detach()) {
                queue.push_back(parent.detach());
            }
        }
    }
    Some(false)
}
