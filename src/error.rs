//! The library's error type, and the one place errors map to exit codes.

use crate::core::TransitionError;
use crate::core::ids::IdError;
use crate::core::message::MessageError;

/// Exit codes, documented in the README.
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const USAGE: i32 = 2;
    /// Another writer kept winning the race for `refs/mso/ledger`; running the command again is safe.
    pub const CONFLICT: i32 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not a git repository (or any parent): {path}")]
    NotARepository { path: String },
    #[error("refs/mso/ledger does not exist: run `git mso init` first")]
    NotInitialized,
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    BadId(#[from] IdError),
    #[error("{0}")]
    Input(String),
    /// This machine cannot sign the ledger commit it must write: fix the
    /// signing setup; no transaction is dropped for it.
    #[error("{0}")]
    Signing(String),
    #[error("refs/mso/ledger at {commit} is not a valid git-mso ledger: {reason}")]
    Corrupt { commit: String, reason: String },
    #[error("refs/mso/ledger at {commit}: {source}")]
    Message { commit: String, source: MessageError },
    #[error("refs/mso/ledger kept moving under us ({attempts} attempts); nothing was written, run the command again")]
    Conflict { attempts: u32 },
    #[error(
        "{what} is locked ({lock}) for over {waited:.1} s; if no git or git-mso process is writing this \
         repository, remove the lock file and run the command again"
    )]
    Locked { what: String, lock: String, waited: f64 },
    #[error("{context}: {message}")]
    Git { context: String, message: String },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Conflict { .. } => exit::CONFLICT,
            _ => exit::ERROR,
        }
    }

    pub fn git(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Error::Git { context: context.into(), message: err.to_string() }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        let context = context.into();
        // By its kind too: an error wrapped with its path (tempfile's) has no raw code.
        let full = matches!(source.raw_os_error(), Some(code) if code == libc::ENOSPC || code == libc::EDQUOT)
            || matches!(source.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded);
        if full {
            return Error::Io {
                context: format!("{context} (the disk is full: free some space and run the command again)"),
                source,
            };
        }
        Error::Io { context, source }
    }

    /// A failed git write (an object, a ref), saying so when the disk is full.
    pub fn from_git_write(context: impl Into<String>, err: gix::Error) -> Self {
        match err.downcast_any_ref::<std::io::Error>().and_then(|e| e.raw_os_error()) {
            Some(code) if code == libc::ENOSPC || code == libc::EDQUOT => {
                Error::io(context, std::io::Error::from_raw_os_error(code))
            }
            _ => Error::git(context, err),
        }
    }

    /// True when the error is a refusal that happened before anything was written.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Error::Transition(_) | Error::BadId(_) | Error::Input(_) | Error::Signing(_))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Error::Io { context: "writing output".into(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_named_as_such_whichever_layer_saw_it() {
        let full = || std::io::Error::from_raw_os_error(libc::ENOSPC);
        let direct = Error::io("writing the brief", full()).to_string();
        assert!(direct.contains("the disk is full: free some space"), "{direct}");
        let through_gix = Error::from_git_write("writing the ledger tree", gix::Error::from_error(full())).to_string();
        assert!(through_gix.starts_with("writing the ledger tree (the disk is full"), "{through_gix}");
        let other =
            Error::from_git_write("writing the ledger tree", gix::Error::from_error(std::io::Error::other("x")));
        assert!(!other.to_string().contains("disk is full"));
        // Wrapped with its path, as tempfile does: no raw code, the same kind.
        let wrapped = std::io::Error::new(full().kind(), "No space left on device at path /x/.tmpAbc");
        assert!(Error::io("writing the ledger's objects", wrapped).to_string().contains("the disk is full"));
    }
}
