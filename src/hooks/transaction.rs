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
    let ledger_moved = parse_updates(input).iter().any(|u| {
        !u.new.is_null()
            && (u.name == LEDGER_REF || (u.name.starts_with("refs/remotes/") && u.name.ends_with("/mso/ledger")))
    });
    if ledger_moved {
        super::spawn_dispatcher(store)?;
    }
    Ok(ledger_moved)
}
