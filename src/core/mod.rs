//! The pure core: identifiers, configuration, events, state, `apply`, and
//! how state and events are laid out in ledger trees and commit messages.
//! Nothing here touches a repository, a clock or the environment.

pub mod apply;
pub mod brief;
pub mod config;
pub mod event;
pub mod evidence;
pub mod ids;
pub mod layout;
pub mod message;
pub mod notes;
pub mod report;
pub mod result;
pub mod signing;
pub mod state;
pub mod text;
pub mod time;
mod transition;

pub use apply::{Objects, Presence, TransitionError, apply, apply_transaction};
pub use config::{Config, PersonaSet};
pub use event::{Event, EventBody, Lease, Timestamp};
pub use ids::{Kind, OrderId, Role, VoyageId};
pub use state::{Order, OrderSummary, State, Stats, Status, Voyage};
