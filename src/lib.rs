//! git-mso: a Git-native orchestrator for staged work. All pipeline state
//! lives in `refs/mso/ledger`; see the README for the layout.

pub mod cli;
pub mod core;
pub mod error;
pub mod store;
