//! The repository's answers to what `apply` asks of commits an event names:
//! does it exist, and does it descend from another. Walks are bounded, so a
//! hostile history cannot stall a writer or the server hook.

use std::collections::{HashSet, VecDeque};

use gix::ObjectId;

use crate::core::Objects;

/// Commits visited at most to decide one ancestry question.
pub const MAX_WALK: usize = 10_000;

/// `Objects` over a repository's object database (in a hook: the quarantine too).
pub struct RepoObjects<'r>(pub &'r gix::Repository);

impl RepoObjects<'_> {
    fn commit_id(&self, id: &str) -> Option<ObjectId> {
        let id: ObjectId = id.parse().ok()?;
        let header = self.0.find_header(id).ok()?;
        (header.kind() == gix::object::Kind::Commit).then_some(id)
    }
}

impl Objects for RepoObjects<'_> {
    fn is_commit(&self, id: &str) -> bool {
        self.commit_id(id).is_some()
    }

    fn descends_from(&self, commit: &str, ancestor: &str) -> bool {
        match (self.commit_id(commit), ancestor.parse::<ObjectId>()) {
            (Some(commit), Ok(ancestor)) => is_ancestor(self.0, ancestor, commit).unwrap_or(false),
            _ => false,
        }
    }
}

/// Whether `ancestor` is `commit` or in its history; `None` when the walk
/// would pass `MAX_WALK` commits or a commit cannot be read.
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
