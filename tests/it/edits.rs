//! Edits, moves and undo: each is an event with history, refused where it
//! would misstate what happened, and `undo` appends the compensating events
//! instead of rewriting the ledger.

#![allow(clippy::result_large_err)]

use crate::common::TestRepo;
use git_mso::core::EventBody;

/// The ledger's length, to tell that a refusal wrote nothing.
fn ledger_len(repo: &TestRepo) -> usize {
    repo.git(&["rev-list", "--count", "refs/mso/ledger"]).trim().parse().unwrap()
}

/// A pipeline whose PLN crew writes a plan (a commit on the voyage).
fn with_a_planner() -> TestRepo {
    let repo = TestRepo::initialized();
    let plan = repo.crew("plan.sh", "echo plan > plan.md");
    repo.set_crews(&[("PLN", &plan)]);
    repo
}

fn history_types(repo: &TestRepo, id: &str) -> Vec<String> {
    let order = repo.json(&["order", "show", id, "--json"]);
    order["history"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect()
}

#[test]
fn an_edit_changes_the_text_and_keeps_the_old_in_the_history() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--title", "Add login", "--brief", "old brief", "--ac", "a user can log in"]);
    let out = repo.ok(&[
        "order",
        "edit",
        "FTR-0001",
        "--title",
        "Add a login page",
        "--brief",
        "new brief\nwith two lines",
        "--add-ac",
        "a bad password is refused",
    ]);
    assert_eq!(
        out,
        "FTR-0001  edited: title \"Add login\" → \"Add a login page\", brief (1 → 2 lines), criteria (1 → 2)\n"
    );
    let order = repo.json(&["order", "show", "FTR-0001", "--json"]);
    assert_eq!(order["title"], "Add a login page");
    assert_eq!(order["brief"], "new brief\nwith two lines");
    assert_eq!(order["acceptance"], serde_json::json!(["a user can log in", "a bad password is refused"]));
    // The old text is in the history, and plain git shows the edit.
    assert_eq!(order["history"][0]["title"], "Add login");
    assert_eq!(order["history"][1]["type"], "ORDER_EDITED");
    let subject = repo.git(&["log", "-1", "--format=%s", "refs/mso/ledger"]);
    assert_eq!(subject, "FTR-0001: edited title, brief, criteria\n");
    // The index `order list` reads has the new title too.
    assert!(repo.ok(&["order", "list"]).contains("Add a login page"));

    // Only what is given changes; --ac replaces the list, --no-ac empties it.
    repo.ok(&["order", "edit", "FTR-0001", "--ac", "only this"]);
    assert_eq!(repo.json(&["order", "show", "FTR-0001", "--json"])["acceptance"], serde_json::json!(["only this"]));
    repo.ok(&["order", "edit", "FTR-0001", "--no-ac"]);
    let order = repo.json(&["order", "show", "FTR-0001", "--json"]);
    assert_eq!(order["acceptance"], serde_json::json!([]));
    assert_eq!(order["title"], "Add a login page");

    // Nothing to change, or the same text again: one error, nothing written.
    let before = ledger_len(&repo);
    let err = repo.fails(&["order", "edit", "FTR-0001"], 1);
    assert!(err.contains("nothing to edit: give --title"), "{err}");
    let err = repo.fails(&["order", "edit", "FTR-0001", "--title", "Add a login page"], 1);
    assert!(err.contains("the edit changes nothing"), "{err}");
    let err = repo.fails(&["order", "edit", "FTR-0001", "--title", "two\nlines"], 1);
    assert!(err.contains("title"), "{err}");
    assert_eq!(ledger_len(&repo), before);
    repo.ok(&["fsck"]);
}

#[test]
fn an_order_is_not_edited_while_a_crew_works_from_it_or_after_it_ended() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--title", "t"]);
    repo.claim_as("FTR-0001", "PLN", 1, "alice");
    let before = ledger_len(&repo);
    let err = repo.fails(&["order", "edit", "FTR-0001", "--title", "changed under the crew"], 1);
    assert!(
        err.contains("FTR-0001 is running PLN (attempt 1): a crew works from it; it can be edited once the run ends"),
        "{err}"
    );
    let err = repo.fails(&["order", "move", "FTR-0001", "--voyage", "VOY-0001"], 1);
    assert!(err.contains("it can be moved once the run ends"), "{err}");
    repo.ok(&["order", "cancel", "FTR-0001"]);
    let err = repo.fails(&["order", "edit", "FTR-0001", "--title", "too late"], 1);
    assert!(err.contains("FTR-0001 is cancelled at PLN, not queued, failed or awaiting review"), "{err}");
    assert_eq!(ledger_len(&repo), before + 1);
}

#[test]
fn with_an_approver_list_only_the_creator_admins_and_approvers_edit_or_move() {
    let repo = TestRepo::initialized();
    repo.ok(&["config", "approvers", "[\"bob\"]"]);
    repo.ok(&["order", "new", "--title", "alice's"]);
    repo.ok(&["voyage", "new"]);
    repo.git(&["config", "mso.user", "mallory"]);
    let before = ledger_len(&repo);
    let err = repo.fails(&["order", "edit", "FTR-0001", "--title", "mallory's now"], 1);
    assert!(err.contains("mallory may not edit FTR-0001"), "{err}");
    let err = repo.fails(&["order", "move", "FTR-0001", "--voyage", "VOY-0002"], 1);
    assert!(err.contains("mallory may not move FTR-0001"), "{err}");
    assert_eq!(ledger_len(&repo), before);
    repo.git(&["config", "mso.user", "bob"]);
    repo.ok(&["order", "edit", "FTR-0001", "--title", "bob approves of this title"]);
}

#[test]
fn criteria_do_not_change_under_verdicts_already_given() {
    let repo = TestRepo::initialized();
    let build = repo.crew("build.sh", "echo built > build.txt");
    let test = repo.crew(
        "test.sh",
        r#"printf '{"summary":"checked","criteria":[{"criterion":1,"verdict":"pass","reason":"ok"}]}' > "$MSO_RESULT_FILE""#,
    );
    repo.set_crews(&[("BLD", &build), ("TST", &test)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t", "--ac", "it greets", "--gate", "TST"]);
    repo.dispatch(&["--once"]);
    assert_eq!(repo.json(&["order", "show", "CHR-0001", "--json"])["status"], "review");
    let before = ledger_len(&repo);
    let err = repo.fails(&["order", "edit", "CHR-0001", "--ac", "it greets in French"], 1);
    assert!(err.contains("CHR-0001: TST already gave verdicts on its acceptance criteria"), "{err}");
    assert_eq!(ledger_len(&repo), before);
    // The title and brief may still change; the criteria once TST's work is sent back.
    repo.ok(&["order", "edit", "CHR-0001", "--title", "greet"]);
    repo.ok(&["review", "reject", "CHR-0001", "--reason", "greet in French", "--to", "BLD"]);
    repo.ok(&["order", "edit", "CHR-0001", "--ac", "it greets in French"]);
    // The verdict given on the old criterion is not shown against the new one.
    let show = repo.ok(&["order", "show", "CHR-0001"]);
    assert!(show.contains("acceptance\n  1. - it greets in French\n"), "{show}");
    repo.ok(&["fsck"]);
}

#[test]
fn an_order_without_recorded_work_moves_to_another_open_voyage() {
    let repo = with_a_planner();
    repo.ok(&["order", "new", "--title", "first"]);
    repo.ok(&["order", "new", "--title", "second", "--voyage", "VOY-0001"]);
    repo.ok(&["voyage", "new"]);
    let out = repo.ok(&["order", "move", "FTR-0002", "--voyage", "VOY-0002"]);
    assert_eq!(out, "FTR-0002  moved VOY-0001 → VOY-0002 (queued at PLN)\n");
    assert_eq!(repo.json(&["order", "show", "FTR-0002", "--json"])["voyage"], "VOY-0002");
    assert!(repo.ok(&["order", "list", "--voyage", "VOY-0002"]).contains("FTR-0002"));
    assert!(!repo.ok(&["order", "list", "--voyage", "VOY-0001"]).contains("FTR-0002"));

    let before = ledger_len(&repo);
    let err = repo.fails(&["order", "move", "FTR-0002", "--voyage", "VOY-0002"], 1);
    assert!(err.contains("FTR-0002 is already on VOY-0002"), "{err}");
    let err = repo.fails(&["order", "move", "FTR-0002", "--voyage", "VOY-0009"], 1);
    assert!(err.contains("no voyage VOY-0009"), "{err}");
    assert_eq!(ledger_len(&repo), before);

    // PLN runs for FTR-0001 and is approved: its plan is on VOY-0001's branch.
    repo.dispatch(&["--once"]);
    repo.ok(&["review", "approve", "FTR-0001"]);
    let err = repo.fails(&["order", "move", "FTR-0001", "--voyage", "VOY-0002"], 1);
    assert!(err.contains("FTR-0001: it has had work on VOY-0001 (PLN at"), "{err}");
    assert!(err.contains("cancel it and file a new order on VOY-0002"), "{err}");

    // A closed voyage takes no order.
    repo.ok(&["voyage", "new"]);
    repo.ok(&["voyage", "close", "VOY-0003", "--reason", "not needed"]);
    let err = repo.fails(&["order", "move", "FTR-0002", "--voyage", "VOY-0003"], 1);
    assert!(err.contains("VOY-0003 was closed by alice"), "{err}");
    repo.ok(&["fsck"]);
}

#[test]
fn undo_takes_back_a_filing_an_edit_a_move_and_a_config_change() {
    let repo = TestRepo::initialized();
    // A filing on a new voyage: the order is cancelled and its voyage closed.
    repo.ok(&["order", "new", "--title", "by mistake"]);
    let tip = repo.tip();
    let dry = repo.ok(&["undo", "--dry-run"]);
    assert!(dry.starts_with(&format!("would undo {} (FTR-0001: created on VOY-0001", &tip[..7])), "{dry}");
    assert_eq!(repo.tip(), tip, "a dry run writes nothing");
    let out = repo.ok(&["undo"]);
    assert!(out.contains("  FTR-0001 \"by mistake\" is cancelled\n"), "{out}");
    assert!(out.contains("  VOY-0001 is closed (its branch voyage/VOY-0001 is left as it is)\n"), "{out}");
    assert_eq!(repo.json(&["order", "show", "FTR-0001", "--json"])["status"], "cancelled");
    assert_eq!(repo.json(&["voyage", "show", "VOY-0001", "--json"])["state"], "closed");
    // The ledger grew: the filing and its undoing are both history.
    assert_eq!(repo.git(&["rev-parse", "refs/mso/ledger~1"]).trim(), tip);

    // An edit, undone, then the undo undone.
    repo.ok(&["order", "new", "--title", "Add login", "--ac", "one"]);
    repo.ok(&["order", "edit", "FTR-0002", "--title", "Add a login page"]);
    let out = repo.ok(&["undo"]);
    assert!(out.contains("FTR-0002: the title is \"Add login\" again"), "{out}");
    assert_eq!(repo.json(&["order", "show", "FTR-0002", "--json"])["title"], "Add login");
    repo.ok(&["undo"]);
    assert_eq!(repo.json(&["order", "show", "FTR-0002", "--json"])["title"], "Add a login page");

    // A move goes back.
    repo.ok(&["voyage", "new"]);
    repo.ok(&["order", "move", "FTR-0002", "--voyage", "VOY-0003"]);
    let out = repo.ok(&["undo"]);
    assert!(out.contains("FTR-0002 is back on VOY-0002 (from VOY-0003)"), "{out}");

    // A config value comes back, not a config that changed since.
    repo.ok(&["config", "max_attempts", "5"]);
    let out = repo.ok(&["undo"]);
    assert!(out.contains("max_attempts = 3 again"), "{out}");
    assert_eq!(repo.ok(&["config", "max_attempts"]), "3\n");
    repo.ok(&["config", "--create", "roles.QA.model", "deep"]);
    let before = ledger_len(&repo);
    let err = repo.fails(&["undo"], 1);
    assert!(err.contains("cannot be undone: roles.QA.model added a role or kind"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(ledger_len(&repo), before);
    repo.ok(&["fsck"]);
}

#[test]
fn undo_refuses_what_moved_on_and_skips_what_others_and_runners_wrote() {
    let repo = with_a_planner();
    repo.ok(&["order", "new", "--title", "t"]);
    // bob writes after alice: alice's undo still means alice's last transaction.
    repo.git(&["config", "mso.user", "bob"]);
    repo.ok(&["order", "new", "--title", "bob's"]);
    repo.git(&["config", "--unset", "mso.user"]);
    // A runner (alice's own) claimed and ran FTR-0001 since: its filing stands.
    repo.dispatch(&["--once"]);
    let before = ledger_len(&repo);
    let err = repo.fails(&["undo"], 1);
    assert!(err.contains("(FTR-0001: created on VOY-0001"), "{err}");
    assert!(err.contains("FTR-0001 moved on since you filed it (now review at PLN)"), "{err}");
    assert!(err.contains("git mso order cancel FTR-0001"), "{err}");
    assert_eq!(ledger_len(&repo), before);
    // A rejection is not undone; the error says what to do instead.
    repo.ok(&["review", "reject", "FTR-0001", "--reason", "no"]);
    let err = repo.fails(&["undo"], 1);
    assert!(err.contains("a rejection sent FTR-0001 back"), "{err}");
    // Someone with nothing in the ledger has nothing to undo.
    repo.git(&["config", "mso.user", "carol"]);
    let err = repo.fails(&["undo"], 1);
    assert!(err.contains("carol wrote nothing to undo"), "{err}");
}

#[test]
fn an_approval_is_withdrawn_until_the_next_role_starts() {
    let repo = with_a_planner();
    let build = repo.crew("build.sh", "echo built > build.txt");
    repo.set_crews(&[("BLD", &build)]);
    repo.ok(&["order", "new", "--title", "t", "--roles", "PLN,BLD"]);
    repo.dispatch(&["--once"]);
    let head = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    repo.ok(&["review", "approve", "FTR-0001"]);
    let out = repo.ok(&["undo"]);
    assert!(
        out.contains(&format!(
            "FTR-0001: your approval of PLN at {} is withdrawn; it awaits review at PLN again instead of running BLD",
            &head[..7]
        )),
        "{out}"
    );
    let order = repo.json(&["order", "show", "FTR-0001", "--json"]);
    assert_eq!(
        (order["status"].as_str(), order["role"].as_str(), order["attempt"].as_u64()),
        (Some("review"), Some("PLN"), Some(1))
    );
    assert!(repo.ok(&["review", "list"]).contains("FTR-0001"));
    // The note on the plan's commit says so; the board lists it.
    let note = repo.git(&["notes", "--ref=mso", "show", &head]);
    assert!(note.contains("Mso-Approval-Withdrawn-By: alice"), "{note}");
    // Undoing the withdrawal approves again; then BLD runs, and the approval stands.
    let out = repo.ok(&["undo"]);
    assert!(out.contains("FTR-0001: PLN at"), "{out}");
    assert_eq!(
        history_types(&repo, "FTR-0001").iter().rev().take(3).collect::<Vec<_>>(),
        ["ADVANCED", "APPROVED", "APPROVAL_WITHDRAWN"]
    );
    // Once BLD ran, alice's last transaction (the approval) stands.
    repo.dispatch(&["--once"]);
    let before = ledger_len(&repo);
    let err = repo.fails(&["undo", "--dry-run"], 1);
    assert!(err.contains("(FTR-0001: approved PLN by alice, advanced PLN -> BLD), cannot be undone"), "{err}");
    assert!(err.contains("alice's approval of PLN is not the last thing that happened to it"), "{err}");
    repo.fails(&["undo"], 1);
    assert_eq!(ledger_len(&repo), before);
    repo.ok(&["fsck"]);
}

#[test]
fn an_order_that_has_had_work_on_its_voyage_does_not_move_even_in_one_transaction() {
    let repo = with_a_planner();
    repo.ok(&["order", "new", "--title", "t"]);
    repo.ok(&["voyage", "new"]);
    repo.dispatch(&["--once"]);
    let head = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    let id: git_mso::core::OrderId = "FTR-0001".parse().unwrap();
    let before = ledger_len(&repo);
    // Rejected back to PLN and moved away in the same transaction: the
    // rejection would change VOY-0001, the move take the order off it.
    let refused = repo.store().transact(|tx| {
        tx.push(EventBody::Rejected {
            order: id.clone(),
            role: "PLN".parse().unwrap(),
            by: "alice".into(),
            commit: head.clone(),
            reason: "no".into(),
            to: "PLN".parse().unwrap(),
        })?;
        tx.push(EventBody::OrderMoved { order: id.clone(), voyage: "VOY-0002".parse().unwrap() })
    });
    let err = refused.unwrap_err().to_string();
    assert!(err.contains("FTR-0001: it has had work on VOY-0001 (PLN at"), "{err}");
    assert_eq!(ledger_len(&repo), before);
}

#[test]
fn an_approval_stands_once_its_voyage_landed() {
    let repo = with_a_planner();
    repo.ok(&["order", "new", "--title", "t", "--roles", "PLN,BLD"]);
    repo.dispatch(&["--once"]);
    repo.ok(&["review", "approve", "FTR-0001", "--comment", "looks right"]);
    repo.git(&["merge", "-q", "--ff-only", "voyage/VOY-0001"]);
    // Recording the landing is the user's too, but not something to undo.
    repo.ok(&["voyage", "list"]);
    assert_eq!(repo.json(&["voyage", "show", "VOY-0001", "--json"])["state"], "landed");
    let before = ledger_len(&repo);
    let err = repo.fails(&["undo"], 1);
    assert!(err.contains("(FTR-0001: approved PLN by alice, advanced PLN -> BLD), cannot be undone"), "{err}");
    assert!(err.contains("VOY-0001 has seen more since"), "{err}");
    assert_eq!(ledger_len(&repo), before);
}

#[test]
fn notes_keep_an_approval_its_withdrawal_and_the_approval_given_again_in_order() {
    let repo = with_a_planner();
    repo.ok(&["order", "new", "--title", "t"]);
    repo.dispatch(&["--once"]);
    let head = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    repo.ok(&["review", "approve", "FTR-0001", "--comment", "fine"]);
    repo.ok(&["undo"]);
    repo.ok(&["undo"]);
    let order = repo.json(&["order", "show", "FTR-0001", "--json"]);
    let last_approval =
        order["history"].as_array().unwrap().iter().rev().find(|e| e["type"] == "APPROVED").unwrap().clone();
    assert_eq!(last_approval["comment"], "fine", "given again as it was given");
    let note = repo.git(&["notes", "--ref=mso", "show", &head]);
    let approved = note.find("Mso-Approved-By: alice\n").unwrap();
    let withdrawn = note.find("Mso-Approval-Withdrawn-By: alice\nMso-Approval: 1").unwrap();
    let again = note.find("Mso-Approved-By: alice\nMso-Approval: 2").unwrap();
    assert!(approved < withdrawn && withdrawn < again, "{note}");
    // Rebuilt from the ledger, the notes say the same.
    repo.ok(&["notes", "rebuild"]);
    assert_eq!(repo.git(&["notes", "--ref=mso", "show", &head]), note);
}
