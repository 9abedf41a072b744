//! Property test of the store: random command sequences written through
//! real transactions into a real repository. The tree the incremental
//! writer leaves at the tip must be exactly the full rendering of the state
//! folded from every event in history, and fsck must pass.

#![allow(clippy::result_large_err)]

mod common;

use std::collections::BTreeMap;

use common::TestRepo;
use common::model::{Gen, cmd, transaction};
use git_mso::core::apply::apply_transaction;
use git_mso::core::{Config, EventBody, State, layout};
use git_mso::store::Store;
use proptest::prelude::*;

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
        let store = Store::discover(&repo.path).unwrap();
        store.transact(|tx| tx.push(EventBody::Init { config: Config::default() })).unwrap();
        let mut state = State::default();
        for entry in store.history(&store.require_tip().unwrap()).collect::<Vec<_>>().into_iter().rev() {
            state = apply_transaction(state, &entry.unwrap().events).unwrap();
        }
        let mut g = Gen { seq: 0 };
        for c in &cmds {
            let bodies: Vec<EventBody> = transaction(&state, c, &mut g).into_iter().map(|e| e.body).collect();
            if bodies.is_empty() {
                continue;
            }
            let result = store.transact(|tx| {
                for body in &bodies {
                    tx.push(body.clone())?;
                }
                Ok(())
            });
            match result {
                Ok((_, committed)) => {
                    state = apply_transaction(state, &committed.events).unwrap();
                }
                // A refused transaction writes nothing; the model state stays as it was.
                Err(e) => prop_assert!(e.is_refusal(), "{c:?} failed for a reason other than a refusal: {e}"),
            }
        }
        // Fold every event from the root, as fsck does, and render it in full.
        let mut folded = State::default();
        for entry in store.history(&store.require_tip().unwrap()).collect::<Vec<_>>().into_iter().rev() {
            folded = apply_transaction(folded, &entry.unwrap().events).unwrap();
        }
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
