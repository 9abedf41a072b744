//! Transactions: build events against the tip state, apply them with the
//! pure `apply`, write one commit whose tree is the new state, and move
//! `refs/mso/ledger` by compare-and-swap. A lost race re-reads the tip and
//! runs the builder again, so every event is re-validated, never dropped.

use std::time::Duration;

use gix::ObjectId;
use gix::refs::transaction::RefEdit;

use super::objects::RepoObjects;
use super::partial::{Partial, build_tree};
use super::{LEDGER_REF, Store, Tip, env, short};
use crate::core::apply::{self, apply};
use crate::core::event::derive_id;
use crate::core::layout;
use crate::core::notes;
use crate::core::state::Counters;
use crate::core::{Config, Event, EventBody, Order, OrderId, State, Timestamp, Voyage, VoyageId};
use crate::error::{Error, Result};

const MAX_ATTEMPTS: u32 = 200;

/// A transaction under construction against one tip.
pub struct Tx<'s> {
    store: &'s Store,
    partial: Partial,
    events: Vec<Event>,
    now: Timestamp,
    /// The config the transaction is appended under (none before INIT).
    parent_config: Option<Config>,
    /// An event was refused: the partial state is no longer trustworthy.
    poisoned: bool,
    /// A run's notes to land with the transaction (see `note_run`).
    run_notes: Option<(OrderId, ObjectId, notes::Block)>,
}

/// What a landed transaction wrote.
#[derive(Debug)]
pub struct Committed {
    pub commit: ObjectId,
    pub events: Vec<Event>,
    /// The state after the transaction, holding the entities it touched.
    pub state: State,
    /// The run's notes asked for with `Tx::note_run` landed with it.
    pub noted: bool,
}

impl Committed {
    pub fn order(&self, id: &OrderId) -> Option<&Order> {
        self.state.orders.get(id)
    }
}

enum CommitError {
    /// Someone else moved the ledger first: rebuild and retry.
    Race,
    Fatal(Error),
}

impl<'s> Tx<'s> {
    pub(crate) fn begin(store: &'s Store, tip: Option<Tip>) -> Result<Self> {
        let partial = Partial::new(store, tip)?;
        let parent_config = partial.state.config.clone();
        Ok(Tx { store, partial, events: Vec::new(), now: store.now(), parent_config, poisoned: false, run_notes: None })
    }

    pub fn now(&self) -> Timestamp {
        self.now
    }

    pub fn actor(&self) -> &str {
        &self.store.identity.actor
    }

    pub fn tip(&self) -> Option<Tip> {
        self.partial.base()
    }

    pub fn is_initialized(&self) -> bool {
        self.partial.state.config.is_some()
    }

    pub fn config(&self) -> Result<&Config> {
        self.partial.state.config.as_ref().ok_or(Error::NotInitialized)
    }

    pub fn counters(&self) -> &Counters {
        &self.partial.state.counters
    }

    pub fn try_order(&mut self, id: &OrderId) -> Result<Option<&Order>> {
        self.partial.order(self.store, id)
    }

    pub fn order(&mut self, id: &OrderId) -> Result<&Order> {
        self.try_order(id)?.ok_or_else(|| crate::core::TransitionError::UnknownOrder(id.clone()).into())
    }

    pub fn try_voyage(&mut self, id: VoyageId) -> Result<Option<&Voyage>> {
        self.partial.voyage(self.store, id)
    }

    /// Record an event as this store's actor, now. An illegal event is an error.
    pub fn push(&mut self, body: EventBody) -> Result<()> {
        let event = Event::new(String::new(), self.now, self.store.identity.actor.clone(), body);
        self.push_event(event)
    }

    /// Record an event with the time and actor it carries (replaying a local
    /// transaction on another tip); its id is derived anew for its new place.
    pub(crate) fn push_event(&mut self, mut event: Event) -> Result<()> {
        if self.poisoned {
            return Err(Error::Input("a transaction cannot go on after a refused event".into()));
        }
        if self.events.len() >= apply::limits::EVENTS_PER_TX {
            return Err(Error::Input(format!("a transaction holds at most {} events", apply::limits::EVENTS_PER_TX)));
        }
        let parent = self.partial.base().map(|t| t.commit.to_string());
        event.id = derive_id(parent.as_deref(), self.events.len(), &event);
        self.partial.load_for(self.store, &event.body)?;
        let objects = RepoObjects::strict(&self.store.repo);
        match apply(std::mem::take(&mut self.partial.state), &event, &objects) {
            Ok(state) => self.partial.state = state,
            Err(e) => {
                self.poisoned = true;
                return Err(e.into());
            }
        }
        self.events.push(event);
        Ok(())
    }

    /// Land with this transaction, in the same pack and the same ref
    /// transaction, the notes a run leaves on `commit` (`Store::note_run`):
    /// order `id`'s note as the transaction leaves it, and the evidence
    /// `record`. Should the notes refs not take them (a lock, a damaged
    /// ref), the transaction lands without them, `Committed::noted` says
    /// so, and the caller writes them on their own.
    pub(crate) fn note_run(&mut self, id: &OrderId, commit: ObjectId, record: notes::Block) {
        self.run_notes = Some((id.clone(), commit, record));
    }

    /// Write the transaction's blobs, trees and commit (on top of its tip); no ref moves.
    pub(crate) fn write(&mut self) -> Result<(ObjectId, ObjectId)> {
        self.write_noted().map(|(commit, tree, _)| (commit, tree))
    }

    /// `write`, with the objects of the run's notes (`note_run`) in the
    /// same batch, and the edits of the notes refs that land them: none
    /// when there are none, or they could not be made (the notes are then
    /// written on their own, after the transaction).
    fn write_noted(&mut self) -> Result<(ObjectId, ObjectId, Vec<RefEdit>)> {
        apply::check_transaction(&self.partial.state, &self.events)?;
        let fatal = |context: &str| {
            let context = context.to_string();
            move |e: gix::Error| Error::from_git_write(context, e)
        };
        let tip = self.partial.base();
        let files = self.partial.files(self.store, &self.events, tip)?;
        let message = crate::core::message::format(&self.events);
        let rules = self.parent_config.as_ref().or(self.partial.state.config.as_ref());
        let actors = self.events.iter().map(|e| e.actor.as_str()).collect();
        let run_notes = self
            .run_notes
            .as_ref()
            .map(|(id, commit, record)| (self.partial.state.orders.get(id), *commit, record.clone()));
        self.store.batched("writing the ledger's objects", |repo| {
            let tree = build_tree(repo, tip.map(|t| t.tree), &files).map_err(fatal("writing the ledger tree"))?;
            let commit = self.store.write_ledger_commit(
                repo,
                tree,
                tip.map(|t| t.commit),
                &message,
                self.now,
                rules,
                &actors,
            )?;
            let notes = run_notes.map_or_else(Vec::new, |(order, at, record)| {
                self.store.run_notes_edits(repo, order, at, record).unwrap_or_else(|e| {
                    tracing::debug!("the run's notes go on their own: {e}");
                    Vec::new()
                })
            });
            Ok((commit, tree, notes))
        })
    }

    /// Write the objects and move the ref.
    fn commit(mut self) -> std::result::Result<Committed, CommitError> {
        let (commit, _, notes) = self.write_noted().map_err(CommitError::Fatal)?;
        let tip = self.partial.base();
        let message = crate::core::message::format(&self.events);
        let subject = message.lines().next().unwrap_or_default();
        let expected = super::write::expect(tip.map(|t| t.commit));
        // Whether moving the ledger alone names every object of the batch:
        // not when the run's notes were asked for, whose objects are in it
        // even when building their ref edits failed halfway.
        let whole = self.run_notes.is_none();
        let landed = if notes.is_empty() {
            self.store.set_ref(LEDGER_REF, expected, commit, subject).map(|()| false)
        } else {
            let ledger = self
                .store
                .ref_edit(LEDGER_REF, expected.clone(), commit, subject)
                .map_err(|e| CommitError::Fatal(Error::from_git_write("updating refs/mso/ledger", e)))?;
            // With the notes, one try: the ledger never waits for a notes ref.
            match self.store.edit_refs_now([vec![ledger], notes].concat()) {
                Ok(()) => Ok(true),
                Err(err) => {
                    let now = self.store.ref_target(LEDGER_REF).ok().flatten();
                    // Read after the locks were let go: another writer may
                    // have appended on top of ours since.
                    let holds_ours = now.is_some_and(|now| {
                        now == commit || super::objects::is_ancestor(&self.store.repo, commit, now) == Some(true)
                    });
                    if err.while_moving() && holds_ours {
                        // git moves the refs one after another, each after
                        // its log: this write moved the ledger, then failed
                        // on a notes ref. The result has landed; the caller
                        // writes the notes again (they merge by union).
                        tracing::debug!("refs/mso/ledger moved, then: {err:?}");
                        Ok(false)
                    } else if !err.is_race() || now == tip.map(|t| t.commit) {
                        // The refs would not move (a lock held, a damaged
                        // notes ref, a notes ref moved by another writer while
                        // the ledger did not): the ledger alone, as patient
                        // as ever.
                        tracing::debug!("the run's notes go on their own: {err:?}");
                        self.store.set_ref(LEDGER_REF, expected, commit, subject).map(|()| false)
                    } else {
                        Err(err)
                    }
                }
            }
        };
        match landed {
            Ok(noted) => {
                if whole || noted {
                    self.store.settle();
                }
                let state = self.partial.state;
                let tally = layout::Tally { stats: state.stats.clone(), ids: state.counters.clone() };
                if let Some(config) = &state.config {
                    *self.store.head_cache.borrow_mut() = Some((commit, config.clone(), tally));
                }
                Ok(Committed { commit, events: self.events, state, noted })
            }
            Err(err) if err.is_race() => Err(CommitError::Race),
            Err(err) => Err(CommitError::Fatal(err.into_error("updating refs/mso/ledger"))),
        }
    }
}

impl Store {
    /// Build and land one transaction. `build` may run several times (once per
    /// lost race); it must derive its events from the `Tx` it is given.
    pub fn transact<T>(&self, build: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<(T, Committed)> {
        match self.transact_if(build)? {
            (value, Some(committed)) => Ok((value, committed)),
            (_, None) => Err(Error::Input("nothing to write".into())),
        }
    }

    /// Build a transaction against the tip, every event checked as `transact`
    /// would, and write nothing (`--dry-run`).
    pub fn preview<T>(&self, build: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let mut tx = Tx::begin(self, self.tip()?)?;
        build(&mut tx)
    }

    /// Like `transact`, but a builder that pushes no event writes nothing and
    /// returns `None` (e.g. a claim that found its order already taken).
    pub fn transact_if<T>(&self, mut build: impl FnMut(&mut Tx<'_>) -> Result<T>) -> Result<(T, Option<Committed>)> {
        for attempt in 1..=MAX_ATTEMPTS {
            let mut tx = Tx::begin(self, self.tip()?)?;
            let value = build(&mut tx)?;
            if tx.events.is_empty() {
                return Ok((value, None));
            }
            if tx.poisoned {
                return Err(Error::Input("a transaction went on after a refused event; nothing was written".into()));
            }
            let old = tx.tip().map(|t| short(t.commit)).unwrap_or_else(|| "(none)".into());
            match tx.commit() {
                Ok(committed) => {
                    tracing::debug!(attempt, old, new = %committed.commit, "appended to the ledger");
                    self.maybe_pack();
                    return Ok((value, Some(committed)));
                }
                Err(CommitError::Race) => {
                    tracing::debug!(attempt, old, "lost the race for refs/mso/ledger, retrying");
                    std::thread::sleep(backoff(attempt));
                }
                Err(CommitError::Fatal(e)) => return Err(e),
            }
        }
        Err(Error::Conflict { attempts: MAX_ATTEMPTS })
    }
}

/// Jittered exponential backoff, capped at 50 ms.
fn backoff(attempt: u32) -> Duration {
    let jitter = env::random_u64() % 1000;
    let base_us = 200u64 << attempt.min(8);
    Duration::from_micros((base_us + jitter * base_us / 1000).min(50_000))
}
