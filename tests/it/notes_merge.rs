//! Merging a fetched notes commit into ours: the union of both sides' notes,
//! and a result that descends from theirs, so pushing it is a fast-forward
//! the server accepts, even when their notes add nothing to ours.

use crate::common;

use std::collections::BTreeMap;

use crate::common::TestRepo;
use git_mso::store::{EVIDENCE_NOTES, MSO_NOTES};

fn block(line: &str) -> Vec<Vec<String>> {
    vec![vec![line.to_string()]]
}

#[test]
fn a_merge_keeps_both_sides_and_descends_from_theirs() {
    let repo = TestRepo::initialized();
    let store = repo.store();
    let head: gix::ObjectId = repo.git(&["rev-parse", "HEAD"]).trim().parse().unwrap();
    repo.git(&["commit", "-q", "--allow-empty", "-m", "second"]);
    let second: gix::ObjectId = repo.git(&["rev-parse", "HEAD"]).trim().parse().unwrap();
    for notes in [MSO_NOTES, EVIDENCE_NOTES] {
        let name = notes.name;
        store.add_notes(notes, &BTreeMap::from([(head, block("Mso-Order: OURS"))])).unwrap();
        // Theirs: the same notes under another history (another clone's merge of them).
        let tree = repo.git(&["rev-parse", &format!("{name}^{{tree}}")]).trim().to_string();
        let same = repo.git(&["commit-tree", &tree, "-m", "their merge"]).trim().to_string();
        let merged = store.merge_notes(notes, same.parse().unwrap()).unwrap();
        assert!(!merged.changed, "their notes add nothing to ours");
        let tip = repo.git(&["rev-parse", name]).trim().to_string();
        assert_eq!(tip, same, "{name}: theirs holds all of ours, so it is taken as it is: no merge commit to trade");

        // Theirs adds a note on another commit and another block on ours.
        let blob = |text: &str| {
            let path = repo.root().join("blob");
            std::fs::write(&path, text).unwrap();
            repo.git(&["hash-object", "-w", path.to_str().unwrap()]).trim().to_string()
        };
        let theirs_tree = format!(
            "100644 blob {}\t{head}\n100644 blob {}\t{second}\n",
            blob("Mso-Order: OURS\n\nMso-Order: THEIRS\n"),
            blob("Mso-Order: ONLY-THEIRS\n")
        );
        let path = repo.root().join("listing");
        std::fs::write(&path, &theirs_tree).unwrap();
        let tree = {
            let mut cmd = std::process::Command::new("git");
            cmd.args(["mktree"]).current_dir(&repo.path).stdin(std::fs::File::open(&path).unwrap());
            common::isolate(&mut cmd, &repo.home);
            String::from_utf8(cmd.output().unwrap().stdout).unwrap().trim().to_string()
        };
        let theirs = repo.git(&["commit-tree", &tree, "-p", &same, "-m", "theirs"]).trim().to_string();
        store.add_notes(notes, &BTreeMap::from([(head, block("Mso-Order: OURS-LATER"))])).unwrap();
        store.merge_notes(notes, theirs.parse().unwrap()).unwrap();
        let tip = repo.git(&["rev-parse", name]).trim().to_string();
        repo.git(&["merge-base", "--is-ancestor", &theirs, &tip]);
        let on_head = repo.git(&["notes", &format!("--ref={name}"), "show", &head.to_string()]);
        for b in ["OURS", "THEIRS", "OURS-LATER"] {
            assert!(on_head.contains(&format!("Mso-Order: {b}\n")), "{name}: {b} missing: {on_head}");
        }
        let on_second = repo.git(&["notes", &format!("--ref={name}"), "show", &second.to_string()]);
        assert_eq!(on_second, "Mso-Order: ONLY-THEIRS\n");
    }
}
