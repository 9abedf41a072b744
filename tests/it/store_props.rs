//! Property test of the store: random command sequences written through
//! real transactions into a real repository. The tree the incremental
//! writer leaves at the tip must be exactly the full rendering of the state
//! folded from every event in history, and fsck must pass.

#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use crate::common::TestRepo;
use crate::common::model::{Gen, cmd, realize, transaction};
use git_mso::core::apply::apply_transaction;
use git_mso::core::{Config, EventBody, State, layout};
use git_mso::store::{Entry, RepoObjects, ShardCache, Store};
use proptest::prelude::*;

/// Fold `entries` (oldest first) as fsck does.
fn fold(store: &Store, entries: &[Entry]) -> State {
    let mut state = State::default();
    for entry in entries {
        let parent = entry.parents.first().map(|p| p.to_string());
        state = apply_transaction(state, parent.as_deref(), &entry.events, &RepoObjects::strict(store.repo())).unwrap();
    }
    state
}

fn history(store: &Store) -> Vec<Entry> {
    let mut all: Vec<Entry> = store.history(&store.require_tip().unwrap()).map(Result::unwrap).collect();
    all.reverse();
    all
}

/// Every file of the ledger tip's tree, by path.
fn tip_files(repo: &TestRepo) -> BTreeMap<String, Vec<u8>> {
    let listing = repo.git(&["ls-tree", "-r", "--format=%(objectname) %(path)", "refs/mso/ledger"]);
    listing
        .lines()
        .map(|line| {
            let (id, path) = line.split_once(' ').unwrap();
            let out = std::process::Command::new("git")
                .args(["cat-file", "blob", id])
                .current_dir(&repo.path)
                .output()
                .unwrap();
            (path.to_string(), out.stdout)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_stored_tree_is_the_fold_of_all_events(cmds in prop::collection::vec(cmd(), 10..60)) {
        let repo = TestRepo::new();
        let real = repo.chain(80);
        let mut store = Store::discover(&repo.path).unwrap();
        // INIT must name its own actor as the first admin.
        store.transact(|tx| tx.push(EventBody::Init { config: Config::initial("tester") })).unwrap_err();
        // The model's admin initializes; each transaction is written as its actor.
        let mut actor = String::new();
        let mut act_as = |who: &str, store: &mut Store| {
            if actor != who {
                repo.git(&["config", "mso.user", who]);
                *store = Store::discover(&repo.path).unwrap();
                actor = who.to_string();
            }
        };
        act_as("tester", &mut store);
        store.transact(|tx| tx.push(EventBody::Init { config: Config::initial("tester") })).unwrap();
        let mut state = fold(&store, &history(&store));
        let mut g = Gen::new();
        let mut shards = ShardCache::default();
        for c in &cmds {
            let bodies = transaction(&state, c, &mut g);
            let Some(who) = bodies.first().map(|(who, _)| who.clone()) else { continue };
            act_as(&who, &mut store);
            let result = store.transact(|tx| {
                for (_, body) in &bodies {
                    let mut body = body.clone();
                    realize(&mut body, &real, Some(tx.now()));
                    tx.push(body)?;
                }
                Ok(())
            });
            match result {
                Ok((_, committed)) => {
                    let parent = store.history(&store.require_tip().unwrap()).nth(1).map(|e| e.unwrap().commit.to_string());
                    state = apply_transaction(state, parent.as_deref(), &committed.events, &RepoObjects::strict(store.repo())).unwrap();
                    // The dispatcher's cached read of the summaries, kept
                    // from tip to tip, is the read from scratch.
                    let tip = store.require_tip().unwrap();
                    let read = store.summaries_cached(&tip, &mut shards).unwrap();
                    let cached: Vec<_> = read.iter().cloned().collect();
                    let fresh = store.summaries(&tip).unwrap();
                    // The shards a dispatch pass looks at hold every open order.
                    let open = |s: &&git_mso::core::OrderSummary| !s.status.is_terminal();
                    let in_open_shards: Vec<_> = read.of_open_shards().filter(open).cloned().collect();
                    prop_assert_eq!(in_open_shards, fresh.iter().filter(open).cloned().collect::<Vec<_>>());
                    prop_assert_eq!(cached, fresh);
                }
                // A refused transaction writes nothing; the model state stays as it was.
                Err(e) => prop_assert!(e.is_refusal(), "{c:?} failed for a reason other than a refusal: {e}"),
            }
        }
        // Fold every event from the root, as fsck does, and render it in full.
        let folded = fold(&store, &history(&store));
        prop_assert_eq!(&folded, &state);
        let rendered = layout::render(&folded);
        let stored = tip_files(&repo);
        prop_assert_eq!(rendered.keys().collect::<Vec<_>>(), stored.keys().collect::<Vec<_>>());
        for (path, bytes) in &rendered {
            prop_assert_eq!(bytes, &stored[path], "{} differs", path);
        }
        let fsck = repo.mso(&["fsck"]);
        prop_assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stderr));
    }
}
