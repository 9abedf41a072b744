//! The client `reference-transaction` hook: when a fetch or sync moves the
//! ledger in a clone that runs crews (`mso.dispatch.auto=true`), wake the
//! dispatcher. It never fails git and never recurses.

use super::receive::parse_updates;
use crate::store::{LEDGER_REF, Store};

/// Returns whether a dispatcher was started. Errors are swallowed by the caller.
pub fn reference_transaction(store: &Store, state: &str, input: &str) -> crate::error::Result<bool> {
    if state != "committed" || std::env::var_os("MSO_HOOK_ACTIVE").is_some() {
        return Ok(false);
    }
    if !store.repo().config_snapshot().boolean("mso.dispatch.auto").unwrap_or(false) {
        return Ok(false);
    }
    for update in parse_updates(input).iter().filter(|u| !u.new.is_null()) {
        if update.name == LEDGER_REF {
            super::wake_dispatcher(store, None)?;
            return Ok(true);
        }
        // A fetch moved a remote's ledger: the dispatcher syncs with that remote first.
        if let Some(remote) = update.name.strip_prefix("refs/remotes/").and_then(|r| r.strip_suffix("/mso/ledger")) {
            super::wake_dispatcher(store, Some(remote))?;
            return Ok(true);
        }
    }
    Ok(false)
}
