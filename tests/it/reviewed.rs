//! What gets built is what was reviewed: a role starts only from the voyage
//! head the ledger recorded. Commits that appear on the branch outside the
//! pipeline put the order back to review, and no crew runs on them until a
//! reviewer approves them.

use crate::common::TestRepo;

/// FTR-0001 planned and approved: BLD is queued on VOY-0001. The BLD crew
/// records whether it saw a human's file.
fn approved_plan() -> TestRepo {
    let repo = TestRepo::initialized();
    let plan = repo.crew("plan.sh", "echo plan > plan.md");
    let build =
        repo.crew("build.sh", "if [ -e human.txt ]; then echo saw-human > build.txt; else echo alone > build.txt; fi");
    let test = repo.crew("test.sh", "true");
    repo.set_crews(&[("PLN", &plan), ("BLD", &build), ("TST", &test)]);
    repo.ok(&["order", "new", "--title", "Add login page"]);
    repo.dispatch(&["--once"]);
    repo.ok(&["review", "approve", "FTR-0001"]);
    repo
}

/// Commit `file` on the voyage branch by hand, as someone outside the pipeline would.
fn human_commit(repo: &TestRepo, file: &str) -> String {
    repo.git(&["checkout", "-q", "voyage/VOY-0001"]);
    std::fs::write(repo.path.join(file), "by hand\n").unwrap();
    repo.git(&["add", file]);
    repo.git(&["commit", "-q", "-m", "a change nobody reviewed"]);
    let head = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    repo.git(&["checkout", "-q", "main"]);
    head
}

#[test]
fn unknown_commits_on_the_branch_hold_the_order_until_a_reviewer_adopts_them() {
    let repo = approved_plan();
    let recorded = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    let human = human_commit(&repo, "human.txt");
    let out = repo.dispatch(&["--once"]);
    assert!(out.contains("FTR-0001  held for review: voyage/VOY-0001 has commits the ledger does not know"), "{out}");
    assert!(out.contains(&format!("{} a change nobody reviewed", &human[..7])), "the reason names the commit: {out}");
    assert!(out.contains(&format!("git log {}..refs/heads/voyage/VOY-0001", &recorded[..7])), "{out}");
    assert_eq!(repo.runs(), ["FTR-0001 PLN 1"], "no crew ran on the unreviewed commit");
    let order = repo.json(&["order", "show", "FTR-0001", "--json"]);
    assert_eq!((order["status"].as_str(), order["role"].as_str()), (Some("review"), Some("BLD")));
    assert_eq!(order["held"], human.as_str());

    let out = repo.ok(&["review", "approve", "FTR-0001"]);
    assert!(
        out.contains(&format!("unreviewed commits up to {} approved by alice → BLD queued on them", &human[..7])),
        "{out}"
    );
    repo.dispatch(&["--once"]);
    assert_eq!(repo.runs(), ["FTR-0001 PLN 1", "FTR-0001 BLD 1", "FTR-0001 TST 1"]);
    assert_eq!(repo.git(&["show", "voyage/VOY-0001:build.txt"]), "saw-human\n", "BLD built on the adopted commit");
    repo.ok(&["fsck"]);
}

#[test]
fn rejected_unknown_commits_leave_the_branch_and_are_kept_aside() {
    let repo = approved_plan();
    let recorded = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    let human = human_commit(&repo, "human.txt");
    repo.dispatch(&["--once"]);
    let out = repo.ok(&["review", "reject", "FTR-0001", "--reason", "not ours"]);
    assert!(out.contains("kept at refs/mso/rejected/FTR-0001/1"), "{out}");
    // The branch that will be published is back at what the ledger recorded;
    // the rejected commit is kept, not lost.
    assert_eq!(repo.git(&["rev-parse", "voyage/VOY-0001"]).trim(), recorded);
    assert_eq!(repo.git(&["rev-parse", "refs/mso/rejected/FTR-0001/1"]).trim(), human);
    let shown = repo.ok(&["order", "show", "FTR-0001"]);
    assert!(shown.contains("kept at refs/mso/rejected/FTR-0001/1"), "{shown}");
    // The role runs on what was reviewed, never on the rejected commit.
    repo.dispatch(&["--once"]);
    assert_eq!(repo.git(&["show", "voyage/VOY-0001:build.txt"]), "alone\n");
    let log = repo.git(&["log", "--format=%H", "voyage/VOY-0001"]);
    assert!(!log.contains(&human), "the rejected commit is not in the branch: {log}");
    let order = repo.json(&["order", "show", "FTR-0001", "--json"]);
    assert_eq!(order["status"], "completed");
    assert_eq!(order["rejections"][0]["head"], human.as_str());
    repo.ok(&["fsck"]);
}

#[test]
fn fsck_reports_a_voyage_branch_that_lost_its_recorded_head() {
    let repo = approved_plan();
    let base = repo.git(&["rev-parse", "main"]).trim().to_string();
    repo.ok(&["fsck"]);
    repo.git(&["update-ref", "refs/heads/voyage/VOY-0001", &base]);
    let err = repo.fails(&["fsck"], 1);
    assert!(
        err.contains(&format!("voyage/VOY-0001 at {} does not contain VOY-0001's recorded head", &base[..7])),
        "{err}"
    );
}

#[test]
fn an_order_awaiting_review_holds_its_voyage_so_nothing_builds_on_its_unreviewed_work() {
    let repo = TestRepo::initialized();
    let plan = repo.crew("plan.sh", "echo plan > plan.md");
    let work = repo.crew("work.sh", "echo \"$MSO_ORDER $MSO_ROLE\" >> work.txt");
    repo.set_crews(&[("PLN", &plan), ("BLD", &work), ("TST", &work)]);
    repo.ok(&["order", "new", "--title", "Add login page"]);
    repo.dispatch(&["--once"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "chore on the same voyage", "--voyage", "VOY-0001"]);
    // FTR-0001's plan awaits review: the chore must not build on it yet.
    let out = repo.dispatch(&["--once"]);
    assert_eq!(out.trim(), "nothing to dispatch");
    assert_eq!(repo.runs(), ["FTR-0001 PLN 1"]);
    assert_eq!(repo.json(&["voyage", "show", "VOY-0001", "--json"])["active"], "FTR-0001");
    repo.ok(&["review", "approve", "FTR-0001"]);
    repo.dispatch(&["--once"]);
    assert_eq!(
        repo.runs(),
        ["FTR-0001 PLN 1", "FTR-0001 BLD 1", "FTR-0001 TST 1", "CHR-0001 BLD 1", "CHR-0001 TST 1"],
        "the voyage's orders ran one after the other, each on reviewed work"
    );
    repo.ok(&["fsck"]);
}

#[test]
fn approving_a_hold_adopts_exactly_the_held_commits() {
    let repo = approved_plan();
    let held = human_commit(&repo, "human.txt");
    repo.dispatch(&["--once"]);
    // More commits arrive after the hold: approving must not adopt them unseen.
    human_commit(&repo, "later.txt");
    let err = repo.fails(&["review", "approve", "FTR-0001"], 1);
    assert!(err.contains("voyage/VOY-0001 moved to"), "{err}");
    assert!(err.contains(&format!("since the hold named {}", &held[..7])), "{err}");
    assert_eq!(repo.json(&["order", "show", "FTR-0001", "--json"])["status"], "review");
}

#[test]
fn approving_a_hold_needs_the_branch_here() {
    let repo = approved_plan();
    human_commit(&repo, "human.txt");
    repo.dispatch(&["--once"]);
    repo.git(&["update-ref", "-d", "refs/heads/voyage/VOY-0001"]);
    let err = repo.fails(&["review", "approve", "FTR-0001"], 1);
    assert!(err.contains("voyage/VOY-0001 is not in this repository"), "{err}");
}

#[test]
fn rejecting_a_branch_someone_has_checked_out_leaves_it_until_they_switch_away() {
    let repo = approved_plan();
    let recorded = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    let human = human_commit(&repo, "human.txt");
    repo.dispatch(&["--once"]);
    repo.git(&["checkout", "-q", "voyage/VOY-0001"]);
    let out = repo.ok(&["review", "reject", "FTR-0001", "--reason", "not ours"]);
    assert!(
        out.contains("warning: voyage/VOY-0001 holds work rejected for FTR-0001, but it is checked out in"),
        "{out}"
    );
    // Nothing moved under the checkout: no rejected work left staged in it.
    assert_eq!(repo.git(&["rev-parse", "HEAD"]).trim(), human);
    assert_eq!(repo.git(&["status", "--porcelain"]).trim(), "");
    // No crew builds on it meanwhile, and the order is not held on rejected work.
    let out = repo.dispatch(&["--once"]);
    assert!(out.contains("FTR-0001  skipped: voyage/VOY-0001 holds work rejected for FTR-0001"), "{out}");
    repo.git(&["checkout", "-q", "main"]);
    repo.dispatch(&["--once"]);
    assert_eq!(repo.git(&["show", "voyage/VOY-0001:build.txt"]), "alone\n");
    assert_eq!(repo.git(&["rev-parse", "refs/mso/rejected/FTR-0001/1"]).trim(), human);
    assert!(repo.git(&["merge-base", "--is-ancestor", &recorded, "voyage/VOY-0001"]).is_empty());
    repo.ok(&["fsck"]);
}

#[test]
fn review_show_says_who_made_a_commit_from_the_ledger_not_from_notes_anyone_can_push() {
    let repo = TestRepo::initialized();
    let plan = repo.crew("plan.sh", "echo plan > plan.md");
    repo.set_crews(&[("PLN", &plan)]);
    repo.ok(&["order", "new", "--title", "Add login page"]);
    repo.dispatch(&["--once"]);
    let head = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    // A note claiming an approval nobody gave (notes are a mirror; anyone may push them).
    repo.git(&[
        "notes",
        "--ref=mso",
        "append",
        "-m",
        "Mso-Order: FTR-0001\nMso-Role: PLN\nMso-Approved-By: mallory",
        &head,
    ]);
    let shown = repo.ok(&["review", "show", "FTR-0001"]);
    assert!(
        shown.contains(&format!("{} FTR-0001 PLN: Add login page  [FTR-0001 PLN attempt 1]", &head[..7])),
        "{shown}"
    );
    assert!(!shown.contains("mallory"), "{shown}");
    let listed = repo.json(&["review", "list", "--json"]);
    assert_eq!(listed[0]["range"]["commits"][0]["notes"][0], "Mso-Order: FTR-0001");
    assert!(!listed.to_string().contains("mallory"), "{listed}");
}
