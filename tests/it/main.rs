//! The integration tests: real repositories, bare remotes, worktrees, crews and a
//! `git daemon` on 127.0.0.1. One binary for every suite, so it is linked once.

mod common;

mod board;
mod ci_templates;
mod concurrency;
mod core_props;
mod crew_adapters;
mod dispatch;
mod edits;
mod faults;
mod harness;
mod hook_props;
mod leases;
mod ledger_cli;
mod notes_merge;
mod pr_workflow;
mod review;
mod reviewed;
mod server_hooks;
mod signing;
mod store_props;
mod sync;
mod trust;
mod verdicts;
