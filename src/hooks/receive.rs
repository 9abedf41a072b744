//! Server hooks: `pre-receive` validates every push to `refs/mso/ledger`
//! with the same `apply` the writer uses; `post-receive` starts a detached
//! dispatcher when a push queued work.

use std::io::Write;

use gix::ObjectId;

use crate::core::{EventBody, Status};
use crate::error::{Error, Result};
use crate::store::{LEDGER_REF, ReplayError, Store, Tip, short};

/// Limits on what one push may carry to the ledger.
pub const MAX_COMMITS: usize = 100_000;
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// One line of a receive hook's input: `<old> <new> <ref>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub old: ObjectId,
    pub new: ObjectId,
    pub name: String,
}

pub fn parse_updates(input: &str) -> Vec<Update> {
    input
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let old = parts.next()?.parse().ok()?;
            let new = parts.next()?.parse().ok()?;
            let name = parts.next()?.to_string();
            Some(Update { old, new, name })
        })
        .collect()
}

/// Validate a push. Returns `Ok(None)` to accept, or the one-line reason to refuse.
pub fn check(store: &Store, updates: &[Update], pusher: Option<&str>) -> Result<Option<String>> {
    for update in updates.iter().filter(|u| u.name == LEDGER_REF) {
        if update.new.is_null() {
            return Ok(Some("deleting refs/mso/ledger is not allowed".into()));
        }
        let base = if update.old.is_null() {
            None
        } else {
            let commit =
                store.repo().find_commit(update.old).map_err(|e| Error::git("reading the current ledger", e))?;
            Some(Tip {
                commit: update.old,
                tree: commit.tree_id().map_err(|e| Error::git("reading the current ledger", e))?.detach(),
            })
        };
        let chain = match new_commits(store, update.old, update.new)? {
            Ok(chain) => chain,
            Err(reason) => return Ok(Some(reason)),
        };
        let events = match store.replay(base, &chain) {
            Ok(_) => collect_reviewers(store, &chain)?,
            Err(ReplayError::Problem(p)) => return Ok(Some(format!("refs/mso/ledger: {p}"))),
            Err(ReplayError::Io(e)) => return Err(e),
        };
        if let Some(pusher) = pusher {
            for (commit, by) in events {
                if by != pusher {
                    return Ok(Some(format!(
                        "refs/mso/ledger: commit {}: review by {by} pushed by {pusher}; reviewers may only push their own reviews",
                        short(commit)
                    )));
                }
            }
        }
    }
    Ok(None)
}

/// The pushed commits, oldest first: `new` back to `old` along single parents.
/// Anything else (a rewrite, a merge, too many or too large commits) is a reason to refuse.
fn new_commits(store: &Store, old: ObjectId, new: ObjectId) -> Result<std::result::Result<Vec<ObjectId>, String>> {
    let mut chain = Vec::new();
    let mut next = Some(new);
    while let Some(id) = next {
        if id == old {
            break;
        }
        if chain.len() >= MAX_COMMITS {
            return Ok(Err(format!("refs/mso/ledger: more than {MAX_COMMITS} commits in one push")));
        }
        let commit = match store.repo().find_commit(id) {
            Ok(c) => c,
            Err(_) => return Ok(Err(format!("refs/mso/ledger: {} is not a commit", short(id)))),
        };
        let size = commit.message_raw_sloppy().len();
        if size > MAX_MESSAGE_BYTES {
            return Ok(Err(format!(
                "refs/mso/ledger: commit {}: message of {size} bytes exceeds {MAX_MESSAGE_BYTES}",
                short(id)
            )));
        }
        let parents: Vec<ObjectId> = commit.parent_ids().map(|p| p.detach()).collect();
        if parents.len() > 1 {
            return Ok(Err(format!(
                "refs/mso/ledger: commit {}: merge commits are not allowed; the ledger is linear",
                short(id)
            )));
        }
        chain.push(id);
        next = parents.first().copied();
    }
    if next.is_none() && !old.is_null() {
        return Ok(Err(format!(
            "refs/mso/ledger: {} does not descend from {}: only fast-forwards are accepted",
            short(new),
            short(old)
        )));
    }
    chain.reverse();
    Ok(Ok(chain))
}

/// Who approved or rejected in the pushed commits.
fn collect_reviewers(store: &Store, chain: &[ObjectId]) -> Result<Vec<(ObjectId, String)>> {
    let mut out = Vec::new();
    for &id in chain {
        for event in store.entry(id)?.events {
            if let EventBody::Approved { by, .. } | EventBody::Rejected { by, .. } = event.body {
                out.push((id, by));
            }
        }
    }
    Ok(out)
}

/// The pre-receive hook: prints one line and returns false to refuse.
pub fn pre_receive(store: &mut Store, input: &str, err: &mut dyn Write) -> Result<bool> {
    let _view = store.see_quarantine()?;
    let pusher_env = store.repo().config_snapshot().string("mso.server.pusherEnv").map(|v| v.to_string());
    let pusher = match &pusher_env {
        Some(var) => match std::env::var(var) {
            Ok(value) if !value.trim().is_empty() => Some(value),
            _ => {
                writeln!(err, "git-mso: refusing the push: mso.server.pusherEnv names {var}, which is not set")?;
                return Ok(false);
            }
        },
        None => None,
    };
    let updates = parse_updates(input);
    match check(store, &updates, pusher.as_deref())? {
        None => Ok(true),
        Some(reason) => {
            writeln!(err, "git-mso: refusing the push: {reason}")?;
            Ok(false)
        }
    }
}

/// The post-receive hook: when the ledger moved and work is queued, and
/// `mso.server.dispatch` is true, start a detached dispatcher and return.
pub fn post_receive(store: &Store, input: &str, out: &mut dyn Write) -> Result<()> {
    let enabled = store.repo().config_snapshot().boolean("mso.server.dispatch").unwrap_or(false);
    let moved = parse_updates(input).iter().any(|u| u.name == LEDGER_REF && !u.new.is_null());
    if !enabled || !moved {
        return Ok(());
    }
    let tip = store.require_tip()?;
    let queued = store.stats(&tip)?.total(Status::Queued);
    if queued > 0 {
        super::spawn_dispatcher(store, None)?;
        writeln!(out, "git-mso: {queued} order(s) queued; dispatching on the server")?;
    }
    Ok(())
}
