//! Voyage branches and revisions: the parts of the repository outside the ledger.

use gix::ObjectId;
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

    /// Create `refs/heads/voyage/VOY-NNNN` at the voyage's base unless it exists.
    /// Returns whether it was created.
    pub fn ensure_voyage_branch(&self, voyage: &Voyage) -> Result<bool> {
        let name = format!("refs/heads/{}", voyage.branch);
        if self.repo.try_find_reference(name.as_str()).map_err(|e| Error::git("reading a voyage branch", e))?.is_some()
        {
            return Ok(false);
        }
        let base: ObjectId =
            voyage.base.parse().map_err(|_| Error::Input(format!("{} has a malformed base commit", voyage.id)))?;
        self.set_ref(&name, PreviousValue::MustNotExist, base, &format!("git-mso: {} created", voyage.id))
            .map_err(|e| Error::git(format!("creating {}", voyage.branch), e))?;
        Ok(true)
    }
}

impl Store {
    /// The commit a voyage branch points to, if the branch exists.
    pub fn branch_tip(&self, voyage: &Voyage) -> Result<Option<ObjectId>> {
        let name = format!("refs/heads/{}", voyage.branch);
        let reference =
            self.repo.try_find_reference(name.as_str()).map_err(|e| Error::git("reading a voyage branch", e))?;
        Ok(reference.and_then(|r| r.target().try_id().map(ToOwned::to_owned)))
    }

    /// Move a voyage branch from `old` to `new`, only if it is still at `old`.
    pub fn advance_branch(&self, voyage: &Voyage, old: ObjectId, new: ObjectId) -> Result<()> {
        use gix::refs::Target;
        let name = format!("refs/heads/{}", voyage.branch);
        let message = format!("git-mso: crew result on {}", voyage.id);
        self.set_ref(&name, PreviousValue::MustExistAndMatch(Target::Object(old)), new, &message)
            .map_err(|e| Error::git(format!("moving {} (it changed during the run?)", voyage.branch), e))
    }
}
