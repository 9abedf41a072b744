//! The runtime: dispatching crews into voyage worktrees, leases, cleanup.

pub mod crew;
pub mod dispatch;
pub mod exclusive;
mod run;
pub mod supervise;
pub mod worktree;

pub use dispatch::{Options, Outcome, StopSignal, dispatch};
