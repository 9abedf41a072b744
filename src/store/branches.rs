//! Voyage branches and revisions: the parts of the repository outside the ledger.

use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::refs::transaction::PreviousValue;

use super::Store;
use crate::core::Voyage;
use crate::error::{Error, Result};

impl Store {
    /// Resolve `rev` (default `HEAD`) to a commit id.
    pub fn resolve_commit(&self, rev: Option<&str>) -> Result<ObjectId> {
        let spec = rev.unwrap_or("HEAD");
        let id = self.repo.rev_parse_single(spec).map_err(|_| match rev {
            None => Error::Input("HEAD has no commit yet: make a first commit, or name a base with --base REV".into()),
            Some(_) => Error::Input(format!("cannot resolve {} to a commit", crate::core::ids::shown(spec))),
        })?;
        let commit = id
            .object()
            .and_then(|o| o.peel_to_commit())
            .map_err(|_| Error::Input(format!("{} does not name a commit", crate::core::ids::shown(spec))))?;
        Ok(commit.id)
    }

    /// The base commit of a new voyage and the branch it is meant to land
    /// on: `target` when given, else the branch `rev` names (`main`,
    /// `origin/main`), else the branch HEAD is on when no `rev` is given.
    pub fn voyage_base(&self, rev: Option<&str>, target: Option<&str>) -> Result<(ObjectId, Option<String>)> {
        let base = self.resolve_commit(rev)?;
        if let Some(target) = target {
            crate::core::apply::check_branch_name("--target", target).map_err(|e| Error::Input(e.to_string()))?;
            return Ok((base, Some(target.to_string())));
        }
        let named = match rev {
            None => self.repo.head_name().ok().flatten().and_then(|n| {
                n.as_bstr().to_str().ok().and_then(|n| n.strip_prefix("refs/heads/")).map(str::to_string)
            }),
            Some(rev) => {
                let local = format!("refs/heads/{rev}");
                if self.ref_target(&local).ok().flatten().is_some() {
                    Some(rev.to_string())
                } else {
                    self.remote_branch(rev)
                }
            }
        };
        // A voyage branch is never another voyage's target.
        let named = named.filter(|n| !n.starts_with("voyage/"));
        Ok((base, named.filter(|n| crate::core::apply::check_branch_name("target", n).is_ok())))
    }

    /// `origin/main` → `main`, when `rev` is a remote-tracking branch of a configured remote.
    fn remote_branch(&self, rev: &str) -> Option<String> {
        let (remote, branch) = rev.split_once('/')?;
        let known = self.repo.remote_names().iter().any(|r| r.as_ref() as &[u8] == remote.as_bytes());
        let exists = self.ref_target(&format!("refs/remotes/{rev}")).ok().flatten().is_some();
        (known && exists).then(|| branch.to_string())
    }

    /// Create `refs/heads/voyage/VOY-NNNN` at the voyage's recorded head
    /// unless it exists. Returns whether it was created.
    pub fn ensure_voyage_branch(&self, voyage: &Voyage) -> Result<bool> {
        let name = format!("refs/heads/{}", voyage.id.branch());
        if self.repo.try_find_reference(name.as_str()).map_err(|e| Error::git("reading a voyage branch", e))?.is_some()
        {
            return Ok(false);
        }
        let head = self.recorded_head(voyage)?;
        self.set_ref(&name, PreviousValue::MustNotExist, head, &format!("git-mso: {} created", voyage.id))
            .map_err(|e| e.into_error(format!("creating {}", voyage.id.branch())))?;
        Ok(true)
    }

    /// The head the ledger last recorded for a voyage, which must be a commit
    /// this repository has: no branch is ever created or moved to an object
    /// that is not here.
    pub fn recorded_head(&self, voyage: &Voyage) -> Result<ObjectId> {
        let head: ObjectId =
            voyage.head.parse().map_err(|_| Error::Input(format!("{} has a malformed recorded head", voyage.id)))?;
        self.require_commit(head, &format!("the recorded head of {}", voyage.id))?;
        Ok(head)
    }

    /// `id` must be a commit in this repository.
    pub fn require_commit(&self, id: ObjectId, what: &str) -> Result<()> {
        match self.repo.find_header(id) {
            Ok(h) if h.kind() == gix::object::Kind::Commit => Ok(()),
            _ => Err(Error::Input(format!(
                "{what}, {}, is not a commit in this repository: fetch it first (`git mso sync`)",
                super::short(id)
            ))),
        }
    }

    /// Commits on `tip` that `recorded` does not have, newest first, along
    /// first parents: at most `max`, and whether there are more.
    pub fn unknown_commits(&self, recorded: ObjectId, tip: ObjectId, max: usize) -> Result<(Vec<String>, bool)> {
        let mut out = Vec::new();
        let mut next = Some(tip);
        while let Some(id) = next {
            if id == recorded || super::objects::is_ancestor(&self.repo, id, recorded) == Some(true) {
                return Ok((out, false));
            }
            if out.len() == max {
                return Ok((out, true));
            }
            let commit = self.repo.find_commit(id).map_err(|e| Error::git("reading a voyage commit", e))?;
            let subject =
                commit.message_raw_sloppy().lines().next().map(|l| l.to_str_lossy().into_owned()).unwrap_or_default();
            let subject: String = subject.chars().take(72).collect();
            out.push(format!("{} {}", super::short(id), crate::core::text::line(&subject)));
            next = commit.parent_ids().next().map(|p| p.detach());
        }
        Ok((out, false))
    }
}

impl Store {
    /// The commit a voyage branch points to, if the branch exists.
    pub fn branch_tip(&self, voyage: &Voyage) -> Result<Option<ObjectId>> {
        self.ref_target(&format!("refs/heads/{}", voyage.id.branch()))
    }

    /// Move a voyage branch from `old` to `new`, only if it is still at `old`.
    pub fn advance_branch(&self, voyage: &Voyage, old: ObjectId, new: ObjectId) -> Result<()> {
        use gix::refs::Target;
        self.require_commit(new, &format!("the new head of {}", voyage.id.branch()))?;
        let name = format!("refs/heads/{}", voyage.id.branch());
        let message = format!("git-mso: crew result on {}", voyage.id);
        self.set_ref(&name, PreviousValue::MustExistAndMatch(Target::Object(old)), new, &message)
            .map_err(|e| e.into_error(format!("moving {} (it changed during the run?)", voyage.id.branch())))
    }
}

impl Store {
    /// Rename the branches of renumbered voyages (`from` → `to`) in one ref
    /// transaction, so chains (VOY-0001 → VOY-0002 while VOY-0002 →
    /// VOY-0003) cannot collide half-way. Returns the renames made.
    pub fn rename_voyage_branches(
        &self,
        renames: &std::collections::BTreeMap<crate::core::VoyageId, crate::core::VoyageId>,
    ) -> Result<Vec<(crate::core::VoyageId, crate::core::VoyageId)>> {
        use gix::refs::Target;
        use gix::refs::transaction::{Change, LogChange, RefEdit, RefLog};
        let name = |v: crate::core::VoyageId| format!("refs/heads/{}", v.branch());
        let current = |v: crate::core::VoyageId| self.ref_target(&name(v));
        let mut moves = Vec::new();
        for (&from, &to) in renames {
            if let Some(id) = current(from)? {
                moves.push((from, to, id));
            }
        }
        let targets: std::collections::BTreeSet<_> = moves.iter().map(|m| m.1).collect();
        let mut edits = Vec::new();
        let full = |v| gix::refs::FullName::try_from(name(v)).map_err(|e| Error::git("naming a voyage branch", e));
        for &(from, to, id) in &moves {
            let expected = match current(to)? {
                Some(old) => PreviousValue::MustExistAndMatch(Target::Object(old)),
                None => PreviousValue::MustNotExist,
            };
            let log = LogChange {
                mode: RefLog::AndReference,
                force_create_reflog: false,
                message: format!("git-mso: {from} renumbered to {to}").into(),
            };
            edits.push(RefEdit {
                change: Change::Update { log, expected, new: Target::Object(id) },
                name: full(to)?,
                deref: false,
            });
            if !targets.contains(&from) {
                let expected = PreviousValue::MustExistAndMatch(Target::Object(id));
                edits.push(RefEdit {
                    change: Change::Delete { expected, log: RefLog::AndReference },
                    name: full(from)?,
                    deref: false,
                });
            }
        }
        if edits.is_empty() {
            return Ok(Vec::new());
        }
        self.edit_refs(edits).map_err(|e| e.into_error("renaming renumbered voyage branches"))?;
        Ok(moves.into_iter().map(|(from, to, _)| (from, to)).collect())
    }
}
