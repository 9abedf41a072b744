//! git-mso: a Git-native orchestrator for staged work. All pipeline state
//! lives in `refs/mso/ledger`; see the README for the layout.

// Errors carry the ids and roles a user needs to act on; they are built on
// cold paths only, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod core;
pub mod error;
pub mod gitcli;
pub mod hooks;
pub mod publish;
pub mod runtime;
pub mod store;
pub mod sync;
pub mod view;
