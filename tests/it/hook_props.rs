//! Property test of the server hook against the pure core: for random
//! transactions (legal, illegal and hostile), the pre-receive check refuses
//! every one that `apply` refuses, for the reason `apply` gives (so the
//! refusal is the rule's, not a side effect of a mismatched tree), and
//! accepts every commit the writer makes of the legal ones.

#![allow(clippy::result_large_err)]

use crate::common::model::{ADMIN, Cmd, Gen, cmd, realize, transaction};
use crate::common::{NOW_SECS, TestRepo};
use git_mso::core::apply::apply_transaction;
use git_mso::core::{Config, Event, EventBody, State, message};
use git_mso::hooks::{Context, Update, check};
use git_mso::store::{LEDGER_REF, RepoObjects, Store};
use proptest::prelude::*;

fn context() -> Context {
    Context {
        pusher: None,
        now: NOW_SECS,
        max_skew: std::time::Duration::from_secs(3600),
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(600),
    }
}

/// The state at the ledger tip, folded from the root as fsck does.
fn fold(store: &Store) -> State {
    let mut entries: Vec<_> = store.history(&store.require_tip().unwrap()).map(Result::unwrap).collect();
    entries.reverse();
    let mut state = State::default();
    for entry in entries {
        let parent = entry.parents.first().map(|p| p.to_string());
        state = apply_transaction(state, parent.as_deref(), &entry.events, &RepoObjects::strict(store.repo())).unwrap();
    }
    state
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn the_hook_refuses_what_apply_refuses_and_accepts_what_the_writer_writes(cmds in prop::collection::vec(cmd(), 5..40)) {
        let repo = TestRepo::new();
        let real = repo.chain(60);
        let mut actor = String::new();
        let mut store = repo.store();
        let mut act_as = |who: &str, store: &mut Store| {
            if actor != who {
                repo.git(&["config", "mso.user", who]);
                *store = repo.store();
                actor = who.to_string();
            }
        };
        act_as(ADMIN, &mut store);
        store.transact(|tx| tx.push(EventBody::Init { config: Config::initial(ADMIN) })).unwrap();
        let mut g = Gen::at(NOW_SECS - 1_000);
        let (mut refused, mut accepted) = (0, 0);
        // Every sequence starts with an order, so there is something to act on.
        let first = Cmd::Create { kind: 0, short: false, voyage: 0 };
        for c in std::iter::once(&first).chain(&cmds) {
            let mut bodies = transaction(&fold(&store), c, &mut g);
            let Some(who) = bodies.first().map(|(who, _)| who.clone()) else { continue };
            for (_, body) in &mut bodies {
                realize(body, &real, None);
            }
            let tip = store.require_tip().unwrap().commit;
            let events: Vec<Event> = g.events(Some(&tip.to_string()), bodies.clone());
            let verdict = apply_transaction(fold(&store), Some(&tip.to_string()), &events, &RepoObjects::strict(store.repo()));
            match verdict {
                Err(why) => {
                    // Forge the commit a hostile client would push: these events, the tip's tree.
                    let tree = repo.git(&["rev-parse", &format!("{tip}^{{tree}}")]).trim().to_string();
                    let file = repo.root().join("message");
                    std::fs::write(&file, message::format(&events)).unwrap();
                    let forged = repo.git(&["commit-tree", &tree, "-p", &tip.to_string(), "-F", file.to_str().unwrap()]).trim().to_string();
                    let update = Update { old: tip, new: forged.parse().unwrap(), name: LEDGER_REF.into() };
                    let reason = check(&store, &[update], &context()).unwrap();
                    let reason = reason.ok_or_else(|| TestCaseError::fail(format!("{c:?} was accepted, apply said: {why}")))?;
                    prop_assert!(reason.contains(&why.to_string()), "{c:?}: apply said {why}, the hook said {reason}");
                    refused += 1;
                }
                Ok(_) => {
                    // The writer makes the commit; the hook must take it.
                    act_as(&who, &mut store);
                    store.transact(|tx| {
                        for (_, body) in &bodies {
                            let mut body = body.clone();
                            realize(&mut body, &real, Some(tx.now()));
                            tx.push(body)?;
                        }
                        Ok(())
                    }).unwrap();
                    // As in a pre-receive hook: the ref is still at its old value.
                    let new = store.require_tip().unwrap().commit;
                    repo.git(&["update-ref", LEDGER_REF, &tip.to_string()]);
                    let update = Update { old: tip, new, name: LEDGER_REF.into() };
                    let verdict = check(&store, &[update], &context()).unwrap();
                    repo.git(&["update-ref", LEDGER_REF, &new.to_string()]);
                    prop_assert_eq!(verdict, None, "{:?} written but refused", c);
                    accepted += 1;
                }
            }
        }
        prop_assert!(refused + accepted > 0);
    }
}
