//! Writing commits and moving refs with explicit identities (git config may
//! have none), shared by the ledger, notes and voyage branches.

use gix::ObjectId;
use gix::refs::Target;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};

use super::Store;
use super::lock::RefError;
use crate::core::Timestamp;

/// The compare-and-swap condition for a ref expected at `old` (or absent).
pub(crate) fn expect(old: Option<ObjectId>) -> PreviousValue {
    match old {
        Some(id) => PreviousValue::MustExistAndMatch(Target::Object(id)),
        None => PreviousValue::MustNotExist,
    }
}

impl Store {
    /// Update one ref, writing its reflog as this store's identity.
    pub(crate) fn set_ref(
        &self,
        name: &str,
        expected: PreviousValue,
        new: ObjectId,
        message: &str,
    ) -> std::result::Result<(), RefError> {
        self.edit_refs(vec![self.ref_edit(name, expected, new, message).map_err(RefError::Git)?])
    }

    /// The edit that moves `name` from `expected` to `new`, logged with `message`.
    pub(crate) fn ref_edit(
        &self,
        name: &str,
        expected: PreviousValue,
        new: ObjectId,
        message: &str,
    ) -> std::result::Result<RefEdit, gix::Error> {
        // The ledger's reflog is what shows it moving backwards (fsck warns);
        // git logs refs/mso/* only when told to.
        let force_create_reflog = name == super::LEDGER_REF;
        Ok(RefEdit {
            change: Change::Update {
                log: LogChange { mode: RefLog::AndReference, force_create_reflog, message: message.into() },
                expected,
                new: Target::Object(new),
            },
            name: name.try_into().map_err(gix::Error::from_error)?,
            deref: false,
        })
    }

    /// Apply ref edits as one transaction under the lock policy (see
    /// `lock`), writing reflogs as this store's identity.
    pub(crate) fn edit_refs(&self, edits: Vec<RefEdit>) -> std::result::Result<(), RefError> {
        self.edit_refs_within(edits, super::lock::wait())
    }

    /// `edit_refs`, giving up at once on a lock that is held (a stale one
    /// is still removed): for edits that have a slower way to land.
    pub(crate) fn edit_refs_now(&self, edits: Vec<RefEdit>) -> std::result::Result<(), RefError> {
        self.edit_refs_within(edits, std::time::Duration::ZERO)
    }

    fn edit_refs_within(&self, edits: Vec<RefEdit>, wait: std::time::Duration) -> std::result::Result<(), RefError> {
        let names: Vec<(String, String)> = edits
            .iter()
            .map(|e| {
                let value = match &e.change {
                    Change::Update { new: Target::Object(id), .. } => id.to_string(),
                    _ => String::new(),
                };
                (e.name.as_bstr().to_string(), value)
            })
            .collect();
        self.edit_refs_locked(&names, wait, || {
            let signature = self.signature(self.now());
            let mut time_buf = gix::date::parse::TimeBuf::default();
            self.repo.edit_references_as(edits.clone(), Some(signature.to_ref(&mut time_buf))).map(|_| ())
        })
    }

    /// The commit and reflog signature of this store's identity at `time`.
    pub(crate) fn signature(&self, time: Timestamp) -> gix::actor::Signature {
        gix::actor::Signature {
            name: self.identity.name.as_str().into(),
            email: self.identity.email.as_str().into(),
            time: gix::date::Time { seconds: time, offset: 0 },
        }
    }

    /// Write a commit object authored and committed by this store's identity at `time`.
    pub(crate) fn write_commit(
        &self,
        repo: &gix::Repository,
        tree: ObjectId,
        parents: impl IntoIterator<Item = ObjectId>,
        message: &str,
        time: Timestamp,
    ) -> std::result::Result<ObjectId, gix::Error> {
        let signature = self.signature(time);
        let commit = gix::objs::Commit {
            tree,
            parents: parents.into_iter().collect(),
            author: signature.clone(),
            committer: signature,
            encoding: None,
            message: message.into(),
            extra_headers: Vec::new(),
        };
        Ok(repo.write_object(&commit)?.detach())
    }
}
