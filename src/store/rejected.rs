//! Rejected work: when a reviewer rejects a role, the ledger moves the
//! voyage's recorded head back to where the role started, so the branch that
//! will be published holds only accepted work. The rejected commits stay
//! reachable under `refs/mso/rejected/ORDER/N` (the order's N-th rejection),
//! which the server's hook accepts only at the commit the ledger names.

use gix::ObjectId;
use gix::refs::Target;
use gix::refs::transaction::PreviousValue;

use super::{Store, Tip, short};
use crate::core::state::rejected_ref;
use crate::core::{OrderId, Voyage};
use crate::error::{Error, Result};

/// What `set_aside_rejected` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetAside {
    /// The branch is not at rejected work.
    Nothing,
    /// The rejected work is kept aside and the branch is back at the recorded head.
    Moved(String),
    /// The branch is at rejected work but was left there, for the reason given.
    Blocked(String),
}

impl Store {
    /// The rejection the ledger at `tip` records at `commit` for one of
    /// `voyage`'s orders: the order and the rejection's number (from 1).
    pub fn rejection_at(&self, tip: &Tip, voyage: &Voyage, commit: ObjectId) -> Result<Option<(OrderId, usize)>> {
        let commit = commit.to_string();
        for summary in self.summaries(tip)?.into_iter().filter(|s| s.voyage == voyage.id) {
            let Some(order) = self.order(tip, &summary.id)? else { continue };
            if let Some(i) = order.rejections.iter().rposition(|r| r.head == commit) {
                return Ok(Some((order.id, i + 1)));
            }
        }
        Ok(None)
    }

    /// Keep rejected work and take it off the voyage branch: when the branch
    /// is at a commit the ledger records as rejected, point
    /// `refs/mso/rejected/ORDER/N` at it (unless that ref exists) and move
    /// the branch back to the recorded head. Says what it did, if anything.
    /// A branch at anything else is left alone.
    pub fn set_aside_rejected(&self, tip: &Tip, voyage: &Voyage) -> Result<SetAside> {
        let Some(branch) = self.branch_tip(voyage)? else { return Ok(SetAside::Nothing) };
        let Ok(recorded) = voyage.head.parse::<ObjectId>() else { return Ok(SetAside::Nothing) };
        // Behind the recorded head is an older accepted state, never rejected work.
        if branch == recorded || super::objects::is_ancestor(&self.repo, branch, recorded) == Some(true) {
            return Ok(SetAside::Nothing);
        }
        let Some((order, number)) = self.rejection_at(tip, voyage, branch)? else { return Ok(SetAside::Nothing) };
        let name = format!("refs/heads/{}", voyage.id.branch());
        if let Some(worktree) = self.checked_out(&name)? {
            // Moving it under someone's checkout would leave the rejected work
            // staged there, one `commit -a` from coming back.
            return Ok(SetAside::Blocked(format!(
                "{} holds work rejected for {order}, but it is checked out in {worktree}: switch away, then \
                 `git mso sync` or `git mso dispatch` takes it off the branch",
                voyage.id.branch()
            )));
        }
        let kept = rejected_ref(&order, number);
        match self.ref_target(&kept)? {
            None => self
                .set_ref(&kept, PreviousValue::MustNotExist, branch, &format!("git-mso: {order} rejection {number}"))
                .map_err(|e| e.into_error(format!("keeping the rejected commits at {kept}")))?,
            Some(there) if there == branch => {}
            Some(there) => {
                return Ok(SetAside::Blocked(format!(
                    "{kept} is at {}, not at the rejected {}: {} is left where it is, so nothing becomes \
                     unreachable; look with `git log {kept}`",
                    short(there),
                    short(branch),
                    voyage.id.branch()
                )));
            }
        }
        self.require_commit(recorded, &format!("the recorded head of {}", voyage.id))?;
        let message = format!("git-mso: {order} rejected; back to the recorded head");
        self.set_ref(&name, PreviousValue::MustExistAndMatch(Target::Object(branch)), recorded, &message)
            .map_err(|e| e.into_error(format!("moving {} back to {}", voyage.id.branch(), short(recorded))))?;
        Ok(SetAside::Moved(format!(
            "{} back at {} (the rejected commits up to {} are kept at {kept})",
            voyage.id.branch(),
            short(recorded),
            short(branch)
        )))
    }

    /// The worktree (other than git-mso's own, which are detached) where
    /// the branch `name` is checked out, if any.
    pub fn checked_out(&self, name: &str) -> Result<Option<String>> {
        Ok(self.checked_out_branches()?.remove(name))
    }

    /// Take work of runs the ledger never recorded off a voyage branch: a
    /// runner moves the branch to its crew's commit just before it records
    /// the run, so one killed in between leaves the branch ahead of the
    /// recorded head with commits no SUCCEEDED names. The branch goes back
    /// to the recorded head (the commits stay in its reflog) only when
    /// - no order runs on the voyage (no runner is between those two steps),
    /// - every commit past the recorded head is a crew commit (one parent,
    ///   git-mso's `Mso-Order`/`Mso-Role`/`Mso-Attempt` trailers in its last
    ///   paragraph) of an order of this voyage whose attempt the ledger
    ///   records as ended without success (LEASE_EXPIRED or FAILED), and
    /// - no remote-tracking branch holds them (on a server they are a
    ///   published branch the next sync brings back: held for review).
    ///
    /// Anything else (a person's commit) is left for review. Says what it did.
    pub fn set_aside_unrecorded(&self, voyage: crate::core::VoyageId) -> Result<Option<String>> {
        const MAX_COMMITS: usize = 50;
        // The branch first, then the ledger: a run that moved the branch
        // after this read is still running in the ledger read below.
        let name = format!("refs/heads/{}", voyage.branch());
        let Some(branch) = self.ref_target(&name)? else { return Ok(None) };
        let Some(tip) = self.tip()? else { return Ok(None) };
        let Some(voyage) = self.voyage(&tip, voyage)? else { return Ok(None) };
        if voyage.active.is_some() {
            return Ok(None);
        }
        let Ok(recorded) = voyage.head.parse::<ObjectId>() else { return Ok(None) };
        if branch == recorded || super::objects::is_ancestor(&self.repo, branch, recorded) == Some(true) {
            return Ok(None);
        }
        if self.published_anywhere(&voyage, branch)? {
            return Ok(None);
        }
        let mut runs = std::collections::BTreeSet::new();
        let mut id = branch;
        for _ in 0..MAX_COMMITS {
            if id == recorded {
                if self.checked_out(&name)?.is_some() {
                    return Ok(None);
                }
                let message = "git-mso: commits of runs never recorded set aside";
                self.set_ref(&name, PreviousValue::MustExistAndMatch(Target::Object(branch)), recorded, message)
                    .map_err(|e| e.into_error(format!("moving {} back to {}", voyage.id.branch(), short(recorded))))?;
                let runs: Vec<String> = runs.into_iter().collect();
                return Ok(Some(format!(
                    "{} back at its recorded head {}: the commits of {}, never recorded (its runner died), \
                     were set aside (git reflog {})",
                    voyage.id.branch(),
                    short(recorded),
                    runs.join(", "),
                    voyage.id.branch()
                )));
            }
            let Ok(commit) = self.repo.find_commit(id) else { return Ok(None) };
            let parents: Vec<ObjectId> = commit.parent_ids().map(|p| p.detach()).collect();
            let [parent] = parents[..] else { return Ok(None) };
            let raw = commit.message_raw_sloppy();
            let text = String::from_utf8_lossy(&raw[..raw.len().min(64 * 1024)]);
            let Some((order, role, attempt)) = run_trailers(&text) else { return Ok(None) };
            // Made during a run of that attempt that ended without success
            // (a minute's slack), not a person's later amend or cherry-pick
            // that kept the trailers. A role sent back to runs its attempts
            // from 1 again: any such run counts, not only the first.
            let made = commit.time().map(|t| t.seconds).unwrap_or(i64::MIN);
            let during = |(from, to): &(i64, i64)| made >= from.saturating_sub(60) && made <= to.saturating_add(60);
            if !self.attempt_ended(&tip, &voyage, &order, &role, attempt)?.iter().any(during) {
                return Ok(None);
            }
            runs.insert(format!("{order} {role} attempt {attempt}"));
            id = parent;
        }
        Ok(None)
    }

    /// Whether a remote-tracking branch of the voyage holds `commit`.
    fn published_anywhere(&self, voyage: &Voyage, commit: ObjectId) -> Result<bool> {
        let suffix = format!("/{}", voyage.id.branch());
        let refs = self.repo.references().map_err(|e| Error::git("listing remote-tracking branches", e))?;
        let remotes = refs.remote_branches().map_err(|e| Error::git("listing remote-tracking branches", e))?;
        for reference in remotes.flatten() {
            let name = reference.name().as_bstr().to_string();
            if !name.ends_with(&suffix) {
                continue;
            }
            if let Some(tip) = reference.target().try_id().map(ToOwned::to_owned)
                && (tip == commit || super::objects::is_ancestor(&self.repo, commit, tip) != Some(false))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// When the ledger says `order` (of `voyage`) started and ended a run
    /// of its attempt `attempt` of `role` without success: every such run
    /// (a role sent back to runs attempt 1 again), none when there is none.
    fn attempt_ended(
        &self,
        tip: &Tip,
        voyage: &Voyage,
        order: &str,
        role: &str,
        attempt: u32,
    ) -> Result<Vec<(i64, i64)>> {
        use crate::core::EventBody;
        let Ok(id) = order.parse::<OrderId>() else { return Ok(Vec::new()) };
        let Some(order) = self.order(tip, &id)? else { return Ok(Vec::new()) };
        if order.voyage != voyage.id {
            return Ok(Vec::new());
        }
        let mut runs = Vec::new();
        let mut started = None;
        for event in &order.history {
            match &event.body {
                EventBody::Dispatched { role: r, attempt: a, .. } => {
                    started = (r.as_str() == role && *a == attempt).then_some(event.at);
                }
                EventBody::LeaseExpired { role: r, .. } | EventBody::Failed { role: r, .. } if r.as_str() == role => {
                    if let Some(from) = started.take() {
                        runs.push((from, event.at));
                    }
                }
                EventBody::Succeeded { .. } => started = None,
                _ => {}
            }
        }
        Ok(runs)
    }

    /// Branches checked out in a worktree (full ref name → worktree path).
    /// A worktree whose directory is gone ("prunable") holds nothing.
    pub fn checked_out_branches(&self) -> Result<std::collections::HashMap<String, String>> {
        let listing = crate::gitcli::git(&self.top_dir(), &["worktree", "list", "--porcelain"])?;
        let mut out = std::collections::HashMap::new();
        for block in listing.split("\n\n") {
            let lines: Vec<&str> = block.lines().collect();
            if lines.iter().any(|l| l.starts_with("prunable")) {
                continue;
            }
            let path = lines.iter().find_map(|l| l.strip_prefix("worktree ")).unwrap_or("a worktree");
            if let Some(branch) = lines.iter().find_map(|l| l.strip_prefix("branch ")) {
                out.insert(branch.to_string(), path.to_string());
            }
        }
        Ok(out)
    }

    /// Change refs under `refs/mso/rejected/` in one ref transaction: each
    /// `(name, expected, new)` expects the ref at `expected` (absent when
    /// `None`) and moves it to `new` (deletes it when `None`). All or nothing.
    pub fn edit_rejected_refs(&self, changes: &[(String, Option<ObjectId>, Option<ObjectId>)]) -> Result<()> {
        use gix::refs::transaction::{Change, LogChange, RefEdit, RefLog};
        if changes.is_empty() {
            return Ok(());
        }
        let mut edits = Vec::new();
        for (name, expected, new) in changes {
            if !name.starts_with(crate::core::state::REJECTED_PREFIX) {
                return Err(Error::Input(format!("{name} is not a ref of rejected work")));
            }
            let expected = match expected {
                Some(old) => PreviousValue::MustExistAndMatch(Target::Object(*old)),
                None => PreviousValue::MustNotExist,
            };
            let change = match new {
                Some(new) => Change::Update {
                    log: LogChange {
                        mode: RefLog::AndReference,
                        force_create_reflog: false,
                        message: "git-mso: rejected work, named as the ledger names it".into(),
                    },
                    expected,
                    new: Target::Object(*new),
                },
                None => Change::Delete { expected, log: RefLog::AndReference },
            };
            let name =
                gix::refs::FullName::try_from(name.as_str()).map_err(|e| Error::git("naming rejected work", e))?;
            edits.push(RefEdit { change, name, deref: false });
        }
        self.edit_refs(edits).map_err(|e| e.into_error("naming rejected work"))?;
        Ok(())
    }
}

/// The order, role and attempt of a crew commit, from git-mso's trailers
/// in the message's last paragraph (the trailer block), nowhere else.
fn run_trailers(message: &str) -> Option<(String, String, u32)> {
    let last = message.trim_end().rsplit("\n\n").next()?;
    let value = |key: &str| last.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_string());
    let attempt = value("Mso-Attempt: ")?.parse().ok()?;
    Some((value("Mso-Order: ")?, value("Mso-Role: ")?, attempt))
}
