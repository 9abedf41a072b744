//! The pipeline end to end: real crews (sh scripts) dispatched into real
//! worktrees, counted on the crew side, never by the ledger.

use crate::common;

use crate::common::TestRepo;

fn pipeline() -> TestRepo {
    let repo = TestRepo::initialized();
    let crew = repo.crew("ok.sh", "echo \"$MSO_ROLE was here\" >> \"work-$MSO_ORDER.txt\"");
    repo.set_crews(&[("PLN", &crew), ("BLD", &crew), ("TST", &crew)]);
    repo
}

#[test]
fn approval_then_cleanup_then_a_fresh_dispatcher_runs_bld_and_pln_ran_once() {
    let repo = pipeline();
    repo.ok(&["order", "new", "--title", "Add login page", "--roles", "PLN,BLD,TST", "--gate", "PLN"]);
    let out = repo.dispatch(&["--once"]);
    assert!(out.contains("FTR-0001  PLN  Navigator   succeeded"), "{out}");
    assert!(out.contains("awaiting review (git mso review approve FTR-0001)"), "{out}");
    assert_eq!(repo.runs(), ["FTR-0001 PLN 1"]);

    repo.ok(&["review", "approve", "FTR-0001"]);
    repo.ok(&["cleanup"]);
    assert!(!repo.path.join(".git/mso/worktrees/VOY-0001").exists(), "cleanup removed the worktree");

    // A new dispatcher process, after cleanup: BLD runs, then TST; PLN never again.
    let out = repo.dispatch(&["--once"]);
    assert!(out.contains("FTR-0001  BLD  Shipwright  started    attempt 1"), "{out}");
    assert_eq!(repo.runs(), ["FTR-0001 PLN 1", "FTR-0001 BLD 1", "FTR-0001 TST 1"]);
    assert_eq!(repo.json(&["order", "show", "FTR-0001", "--json"])["status"], "completed");
    assert_eq!(repo.dispatch(&["--once"]).trim(), "nothing to dispatch");
    assert_eq!(repo.runs().len(), 3);

    // The voyage branch carries the crews' work, with trailers and notes.
    let work = repo.git(&["show", "voyage/VOY-0001:work-FTR-0001.txt"]);
    assert_eq!(work, "PLN was here\nBLD was here\nTST was here\n");
    let log = repo.git(&["log", "--format=%s", "voyage/VOY-0001"]);
    assert_eq!(
        log.lines().take(3).collect::<Vec<_>>(),
        ["FTR-0001 TST: Add login page", "FTR-0001 BLD: Add login page", "FTR-0001 PLN: Add login page"]
    );
    let notes = repo.git(&["log", "--format=%N", "--notes=mso", "-3", "voyage/VOY-0001"]);
    assert!(notes.contains("Mso-Order: FTR-0001\nMso-Role: PLN\nMso-Attempt: 1"), "{notes}");
    assert!(notes.contains("Mso-Approved-By: alice"), "{notes}");
    repo.ok(&["fsck"]);
}

#[test]
fn a_fresh_clone_dispatches_bld_after_the_approval() {
    let repo = pipeline();
    repo.ok(&["order", "new", "--title", "t", "--roles", "PLN,BLD,TST", "--gate", "PLN"]);
    repo.dispatch(&["--once"]);
    repo.ok(&["review", "approve", "FTR-0001"]);

    let clone = repo.root().join("clone");
    repo.git(&["clone", "-q", repo.path.to_str().unwrap(), clone.to_str().unwrap()]);
    repo.git_in(
        &clone,
        &["fetch", "-q", "origin", "refs/mso/ledger:refs/mso/ledger", "voyage/VOY-0001:voyage/VOY-0001"],
    );
    let crew = repo.crew("ok.sh", "echo \"$MSO_ROLE was here\" >> \"work-$MSO_ORDER.txt\"");
    for role in ["PLN", "BLD", "TST"] {
        repo.git_in(&clone, &["config", &format!("mso.crew.{role}.command"), &crew]);
    }
    let out = repo.dispatch_in(&clone, &["--once"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    assert_eq!(repo.runs(), ["FTR-0001 PLN 1", "FTR-0001 BLD 1", "FTR-0001 TST 1"]);
}

#[test]
fn a_standalone_planning_order_completes_on_approval_and_is_never_dispatched_again() {
    let repo = pipeline();
    repo.ok(&["order", "new", "--title", "Spike", "--roles", "PLN", "--gate", "PLN"]);
    repo.dispatch(&["--once"]);
    repo.ok(&["review", "approve", "FTR-0001"]);
    repo.ok(&["cleanup"]);
    for _ in 0..2 {
        assert_eq!(repo.dispatch(&["--once"]).trim(), "nothing to dispatch");
    }
    assert_eq!(repo.runs(), ["FTR-0001 PLN 1"]);
    assert_eq!(repo.json(&["order", "show", "FTR-0001", "--json"])["status"], "completed");
}

#[test]
fn a_crashing_crew_is_retried_until_attempts_run_out_then_retry_queues_it() {
    let repo = TestRepo::initialized();
    let crash = repo.crew("crash.sh", "echo 'compiler exploded' >&2\nexit 3");
    repo.set_crews(&[("BLD", &crash)]);
    repo.ok(&["config", "retry_backoff_secs", "0"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let out = repo.dispatch_failing(&["--once"]);
    assert!(out.contains("failed (exited with status 3): compiler exploded → queued again (attempt 2)"), "{out}");
    assert!(out.contains("failed for good; retry with `git mso order retry CHR-0001`"), "{out}");
    assert_eq!(repo.runs(), ["CHR-0001 BLD 1", "CHR-0001 BLD 2", "CHR-0001 BLD 3"]);
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["status"], "failed");
    let err = order["last_error"].as_str().unwrap();
    assert!(err.starts_with("crew exited with status 3\n") && err.contains("compiler exploded"), "{err}");
    let failed = order["history"].as_array().unwrap().iter().filter(|e| e["type"] == "FAILED").count();
    assert_eq!(failed, 3);
    assert_eq!(order["history"].as_array().unwrap().iter().find(|e| e["type"] == "FAILED").unwrap()["exit"], 3);

    repo.ok(&["order", "retry", "CHR-0001"]);
    repo.dispatch_failing(&["--once"]);
    assert_eq!(repo.runs().len(), 6, "a retry gives the role a fresh set of attempts");
    repo.ok(&["fsck"]);
}

#[test]
fn a_crew_past_its_timeout_is_killed_with_its_whole_process_group() {
    let repo = TestRepo::initialized();
    let pids = repo.root().join("pids");
    let slow = repo.crew("slow.sh", &format!("sleep 60 &\necho $! >> '{}'\nsleep 60", pids.display()));
    repo.set_crews(&[("BLD", &slow)]);
    repo.git(&["config", "mso.crew.BLD.timeout", "1"]);
    repo.ok(&["config", "max_attempts", "1"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let out = repo.dispatch_failing(&["--once"]);
    assert!(out.contains("failed (timed out after 1 s)"), "{out}");
    let background: i32 = std::fs::read_to_string(&pids).unwrap().trim().parse().unwrap();
    // Dead means gone, or a zombie waiting for whoever adopted it to reap it.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{background}/stat"))
            .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
    };
    for _ in 0..40 {
        if !alive() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!alive(), "the crew's background child survived");
    assert_eq!(repo.json(&["order", "show", "CHR-0001", "--json"])["status"], "failed");
}

#[test]
fn cancelling_a_running_order_stops_its_crew_and_keeps_the_branch() {
    let repo = TestRepo::initialized();
    let marker = repo.root().join("started");
    let done = repo.root().join("finished");
    let long = repo.crew(
        "long.sh",
        &format!("touch '{}'\necho junk > junk.txt\nsleep 30\ntouch '{}'", marker.display(), done.display()),
    );
    repo.set_crews(&[("BLD", &long)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let tip_before = repo.git(&["rev-parse", "voyage/VOY-0001"]);
    let mut dispatcher = repo.mso_cmd(&repo.path);
    dispatcher.args(["dispatch", "--once"]).env("COUNT_FILE", repo.count_file()).stdout(std::process::Stdio::piped());
    let child = dispatcher.spawn().unwrap();
    assert!(common::wait_for_file(&marker, std::time::Duration::from_secs(10)), "the crew never started");
    repo.ok(&["order", "cancel", "CHR-0001", "--reason", "changed our mind"]);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("stopped: the order was cancelled"), "{stdout}");
    assert!(!done.exists(), "the crew ran to the end");
    assert_eq!(repo.git(&["rev-parse", "voyage/VOY-0001"]), tip_before, "nothing landed on the branch");
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["status"], "cancelled");
    repo.ok(&["fsck"]);
}

#[test]
fn briefs_carry_criteria_hand_offs_and_review_feedback() {
    let repo = TestRepo::initialized();
    let briefs = repo.root().join("briefs");
    std::fs::create_dir_all(&briefs).unwrap();
    let copy = format!("cp \"$MSO_BRIEF_FILE\" '{}/'\"$MSO_ROLE-$MSO_ATTEMPT\"", briefs.display());
    let plan = repo.crew(
        "plan.sh",
        &format!("{copy}\nprintf '{{\"summary\": \"PLAN-42: add a form\", \"plan\": \"1. form\"}}' > \"$MSO_RESULT_FILE\"\nenv | grep '^MSO_' | sort > '{}/env'", briefs.display()),
    );
    let build = repo.crew("build.sh", &copy);
    repo.set_crews(&[("PLN", &plan), ("BLD", &build), ("TST", &build)]);
    repo.ok(&[
        "order",
        "new",
        "--title",
        "Login",
        "--ac",
        "a user can log in",
        "--brief",
        "Use the $(house) style; `rm -rf /`",
    ]);
    repo.dispatch(&["--once"]);
    repo.ok(&["review", "reject", "FTR-0001", "--reason", "the plan misses the error path"]);
    repo.dispatch(&["--once"]);
    repo.ok(&["review", "approve", "FTR-0001"]);
    repo.dispatch(&["--once"]);

    let read = |name: &str| std::fs::read_to_string(briefs.join(name)).unwrap();
    let first = read("PLN-1");
    assert!(first.contains("- Role: PLN (Navigator), attempt 1, model tier deep"), "{first}");
    assert!(first.contains("## Acceptance criteria\n\n1. a user can log in"), "{first}");
    assert!(first.contains("## Your instructions\n\nYou plan; you do not build."), "{first}");
    assert!(first.contains("Use the $(house) style; `rm -rf /`"), "order text arrives verbatim: {first}");
    let second = read("PLN-2");
    assert!(
        second.contains("## Review feedback\n\n- PLN rejected by alice:\n> the plan misses the error path"),
        "{second}"
    );
    let bld = read("BLD-1");
    assert!(bld.contains("### PLN (Navigator)"), "{bld}");
    assert!(bld.contains("> PLAN-42: add a form\n>\n> 1. form"), "BLD reads PLN's plan, quoted: {bld}");
    assert!(bld.contains("## Acceptance criteria\n\n1. a user can log in"), "{bld}");
    assert!(bld.contains("## Your instructions\n\nYou build."), "{bld}");
    let tst = read("TST-1");
    assert!(tst.contains("### BLD (Shipwright)"), "TST reads both hand-offs: {tst}");
    let env = read("env");
    for expected in [
        "MSO_ORDER=FTR-0001",
        "MSO_ROLE=PLN",
        "MSO_VOYAGE=VOY-0001",
        "MSO_PERSONA=Navigator",
        "MSO_MODEL=deep",
        "MSO_READ_ONLY=0",
    ] {
        assert!(env.lines().any(|l| l == expected), "{expected} missing from {env}");
    }
    let order = repo.json(&["order", "show", "FTR-0001", "--json"]);
    // The rejected plan's hand-off left with its commits; the accepted one leads.
    assert_eq!(order["handoffs"][0]["summary"], "PLAN-42: add a form\n\n1. form");
    let plans = order["handoffs"].as_array().unwrap().iter().filter(|h| h["role"] == "PLN").count();
    assert_eq!(plans, 1, "{order}");
    assert_eq!(order["rejections"][0]["role"], "PLN");
}

#[test]
fn a_failing_quality_gate_fails_the_role_and_lands_nothing() {
    let repo = TestRepo::initialized();
    let build = repo.crew("build.sh", "echo change > change.txt");
    repo.set_crews(&[("BLD", &build)]);
    repo.git(&[
        "config",
        "mso.gate.BLD.command",
        "test -f tests-pass.txt || { echo 'gate: no tests-pass.txt'; exit 7; }",
    ]);
    repo.ok(&["config", "max_attempts", "1"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let tip = repo.git(&["rev-parse", "voyage/VOY-0001"]);
    let out = repo.dispatch_failing(&["--once"]);
    assert!(out.contains("failed the quality gate (exited with status 7)"), "{out}");
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert!(order["last_error"].as_str().unwrap().contains("gate: no tests-pass.txt"), "{order}");
    assert_eq!(repo.git(&["rev-parse", "voyage/VOY-0001"]), tip);

    // Fix the crew so the gate passes: the role hands off.
    let good = repo.crew("good.sh", "echo change > change.txt\ntouch tests-pass.txt");
    repo.set_crews(&[("BLD", &good), ("TST", &good)]);
    repo.ok(&["order", "retry", "CHR-0001"]);
    let out = repo.dispatch(&["--once"]);
    assert!(out.contains("CHR-0001  BLD  Shipwright  succeeded"), "{out}");
}

#[test]
fn a_read_only_role_that_changes_files_fails_and_its_changes_are_discarded() {
    let repo = TestRepo::initialized();
    let sec = repo.crew("sec.sh", "echo 'found nothing' > report.txt");
    repo.set_crews(&[("SEC", &sec)]);
    repo.ok(&["config", "max_attempts", "1"]);
    repo.ok(&["order", "new", "--title", "audit", "--roles", "SEC", "--gate", "SEC"]);
    let tip = repo.git(&["rev-parse", "voyage/VOY-0001"]);
    let out = repo.dispatch_failing(&["--once"]);
    assert!(out.contains("FTR-0001  SEC  Lookout     failed (read-only role changed files)"), "{out}");
    let order = repo.json(&["order", "show", "FTR-0001", "--json"]);
    assert!(order["last_error"].as_str().unwrap().contains("?? report.txt"), "{order}");
    assert_eq!(repo.git(&["rev-parse", "voyage/VOY-0001"]), tip);
    let wt = repo.path.join(".git/mso/worktrees/VOY-0001");
    assert!(!wt.join("report.txt").exists(), "the changes were discarded");

    // A read-only crew that only reports succeeds, and its report is the hand-off.
    let quiet = repo.crew("quiet.sh", "echo 'no findings' > \"$MSO_RESULT_FILE\"");
    repo.set_crews(&[("SEC", &quiet)]);
    repo.ok(&["order", "retry", "FTR-0001"]);
    let out = repo.dispatch(&["--once"]);
    assert!(out.contains("awaiting review"), "{out}");
}

#[test]
fn persona_sets_name_roles_in_output_and_environment() {
    let repo = TestRepo::initialized();
    repo.ok(&["config", "persona_set", "heist"]);
    let seen = repo.root().join("persona");
    let crew = repo.crew("p.sh", &format!("echo \"$MSO_PERSONA/$MSO_MODEL\" > '{}'", seen.display()));
    repo.set_crews(&[("BLD", &crew), ("TST", &crew)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let out = repo.dispatch(&["--once"]);
    assert!(out.contains("CHR-0001  BLD  Safecracker  started"), "{out}");
    assert_eq!(std::fs::read_to_string(&seen).unwrap().trim(), "Inside Man/standard");
}

#[test]
fn a_missing_crew_is_an_error_naming_the_config_key() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--title", "t"]);
    let tip = repo.tip();
    let out = repo.dispatch_in(&repo.path, &["--once"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim(), "error: no crew for role PLN: set it with `git config mso.crew.PLN.command '<command>'`");
    assert_eq!(repo.tip(), tip, "nothing was claimed");
}

#[test]
fn notes_rebuild_regenerates_the_same_notes() {
    let repo = pipeline();
    repo.ok(&["order", "new", "--title", "t"]);
    repo.dispatch(&["--once"]);
    repo.ok(&["review", "approve", "FTR-0001"]);
    repo.dispatch(&["--once"]);
    let before = repo.git(&["log", "--format=%H%n%N", "--notes=mso", "voyage/VOY-0001"]);
    repo.git(&["update-ref", "-d", "refs/notes/mso"]);
    repo.ok(&["notes", "rebuild"]);
    let after = repo.git(&["log", "--format=%H%n%N", "--notes=mso", "voyage/VOY-0001"]);
    assert_eq!(after, before);
    assert!(after.contains("Mso-Role: TST"), "{after}");
}

#[test]
fn two_dispatchers_on_forty_orders_run_every_role_exactly_once() {
    let repo = TestRepo::initialized();
    repo.ok(&["config", "kinds.FTR.gates", "[]"]);
    let crew = repo.crew("ok.sh", "echo \"$MSO_ROLE\" >> \"w-$MSO_ORDER.txt\"");
    repo.set_crews(&[("PLN", &crew), ("BLD", &crew), ("TST", &crew)]);
    for i in 0..40 {
        repo.ok(&["order", "new", "--title", &format!("order {i}")]);
    }
    let spawn = || {
        let mut cmd = repo.mso_cmd(&repo.path);
        cmd.args(["dispatch", "--once", "--max-parallel", "2"]).env("COUNT_FILE", repo.count_file());
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut runs = repo.runs();
    runs.sort();
    assert_eq!(runs, common::every_role_once(40), "every role of every order ran exactly once");
    let status = repo.json(&["status", "--json"]);
    assert_eq!(status["completed"], 40);
    repo.ok(&["fsck"]);
}

#[test]
fn what_a_crew_prints_is_recorded_escaped_and_never_reaches_a_terminal_raw() {
    let repo = TestRepo::initialized();
    repo.ok(&["config", "max_attempts", "1"]);
    // ESC sequences (clear screen, set title), a bell and a right-to-left override.
    let noisy = "printf '\\033[2J\\033]0;pwned\\007 \\342\\200\\256evil\\n'";
    let fail = repo.crew("fail.sh", &format!("{noisy}\nexit 1"));
    let pass = repo.crew("pass.sh", &format!("{noisy} > \"$MSO_RESULT_FILE\""));
    repo.set_crews(&[("BLD", &fail)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "noisy", "--roles", "BLD"]);
    let out = repo.dispatch_failing(&["--once"]);
    assert!(out.contains("failed (exited with status 1)"), "the failure was recorded: {out}");
    repo.set_crews(&[("BLD", &pass)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "noisy too", "--roles", "BLD"]);
    repo.dispatch(&["--once"]);
    assert_eq!(repo.json(&["order", "show", "CHR-0002", "--json"])["status"], "completed");
    let escaped = "\\u{1b}[2J\\u{1b}]0;pwned\\u{7} \\u{202e}evil";
    let failed = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert!(failed["last_error"].as_str().unwrap().contains(escaped), "{failed}");
    let shown = repo.ok(&["order", "show", "CHR-0002"]);
    assert!(shown.contains("hand-off    BLD at") && shown.contains(escaped), "{shown}");
    for id in ["CHR-0001", "CHR-0002"] {
        let shown = repo.ok(&["order", "show", id]);
        assert!(!shown.contains('\u{1b}') && !shown.contains('\u{7}') && !shown.contains('\u{202e}'), "{shown:?}");
    }
    let log = repo.ok(&["log"]);
    assert!(!log.contains('\u{1b}'), "{log:?}");
    repo.ok(&["fsck"]);
}

#[test]
fn hooks_that_voyage_content_brings_never_run_on_a_runner() {
    let repo = TestRepo::initialized();
    // A relative hooks path, as husky-style setups use: it resolves inside each worktree.
    repo.git(&["config", "core.hooksPath", ".githooks"]);
    let mark = repo.root().join("pwned");
    std::fs::create_dir_all(repo.path.join(".githooks")).unwrap();
    for hook in ["post-checkout", "post-commit", "pre-commit"] {
        let path = repo.path.join(".githooks").join(hook);
        let script =
            format!("#!/bin/sh\ncase \"$PWD\" in */mso/worktrees/*) echo {hook} >> '{}';; esac\n", mark.display());
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    repo.git(&["add", ".githooks"]);
    repo.git(&["commit", "-q", "-m", "hooks in the content"]);
    // The crew fails once, so the second attempt reuses the worktree (checkout, clean, commit).
    let crew = repo.crew("flaky.sh", "echo work > work.txt\n[ \"$MSO_ATTEMPT\" -gt 1 ]");
    repo.set_crews(&[("BLD", &crew)]);
    repo.ok(&["config", "retry_backoff_secs", "0"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t", "--roles", "BLD"]);
    repo.dispatch(&["--once"]);
    assert_eq!(repo.runs(), ["CHR-0001 BLD 1", "CHR-0001 BLD 2"]);
    assert_eq!(repo.json(&["order", "show", "CHR-0001", "--json"])["status"], "completed");
    assert!(!mark.exists(), "a hook from voyage content ran: {}", std::fs::read_to_string(&mark).unwrap_or_default());
}

#[test]
fn an_order_that_cannot_be_claimed_does_not_stop_the_others() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("ok.sh", "true");
    repo.set_crews(&[("BLD", &crew), ("TST", &crew)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "broken voyage"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "fine"]);
    // An operator's bad day: the first voyage's branch ref is damaged.
    std::fs::write(repo.path.join(".git/refs/heads/voyage/VOY-0001"), "not a ref\n").unwrap();
    let out = repo.dispatch_in(&repo.path, &["--once"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("CHR-0001  skipped:"), "{stdout}");
    assert_eq!(repo.runs(), ["CHR-0002 BLD 1", "CHR-0002 TST 1"], "{stdout}");
}

#[test]
fn a_crew_that_leaves_a_fifo_as_its_result_cannot_hang_the_runner() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("fifo.sh", "mkfifo \"$MSO_RESULT_FILE\"");
    repo.set_crews(&[("BLD", &crew)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t", "--roles", "BLD"]);
    let mut cmd = repo.mso_cmd(&repo.path);
    cmd.args(["dispatch", "--once"]).env("COUNT_FILE", repo.count_file());
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the dispatcher hung on a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(repo.json(&["order", "show", "CHR-0001", "--json"])["status"], "completed");
}

#[test]
fn a_run_adds_to_a_note_git_fanned_out_and_leaves_one_entry() {
    // A crew that commits nothing: each run notes the voyage's base commit.
    let repo = TestRepo::initialized();
    let crew = repo.crew("noop.sh", "true");
    repo.set_crews(&[("BLD", &crew)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "first", "--roles", "BLD"]);
    repo.dispatch(&["--once"]);
    let head = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    let first = repo.git(&["notes", "--ref=mso", "show", &head]);
    assert!(first.contains("CHR-0001"), "{first}");
    // The same note, as git writes it once there are many: under `ab/cdef…`.
    let blob = repo.git(&["rev-parse", &format!("refs/notes/mso:{head}")]).trim().to_string();
    let inner = repo.git_stdin(&["mktree"], &format!("100644 blob {blob}\t{}\n", &head[2..]));
    let outer = repo.git_stdin(&["mktree"], &format!("040000 tree {}\t{}\n", inner.trim(), &head[..2]));
    let commit = repo.git(&["commit-tree", outer.trim(), "-p", "refs/notes/mso", "-m", "fanned out"]);
    repo.git(&["update-ref", "refs/notes/mso", commit.trim()]);
    assert_eq!(repo.git(&["notes", "--ref=mso", "show", &head]), first);

    repo.ok(&["order", "new", "--kind", "CHR", "--title", "second", "--roles", "BLD", "--voyage", "VOY-0001"]);
    repo.dispatch(&["--once"]);
    let both = repo.git(&["notes", "--ref=mso", "show", &head]);
    assert!(both.contains("CHR-0001") && both.contains("CHR-0002"), "{both}");
    let entries = repo.git(&["ls-tree", "-r", "--name-only", "refs/notes/mso"]);
    let on_head: Vec<&str> = entries.lines().filter(|p| p.replace('/', "") == head).collect();
    assert_eq!(on_head, [head.as_str()], "one flat entry: {entries}");
}

#[test]
fn a_dispatcher_that_ran_many_roles_holds_no_more_thread_stacks_than_after_its_first() {
    // Each role runs on a thread of its own. One never joined keeps its
    // stack mapped after it ends, so a dispatcher that watches for days
    // grew by a stack per role, and every crew it forked copied them all.
    let repo = TestRepo::initialized();
    let guards = repo.root().join("guards");
    // The crew counts the dispatcher's guard pages (anonymous mappings
    // nobody may touch: one below each thread stack, and a few of malloc's).
    // The dispatcher is the parent of the crew's supervisor, the nearest
    // git-mso above the crew.
    let crew = repo.crew(
        "count.sh",
        &format!(
            "p=$$\nwhile [ \"$(cat /proc/$p/comm)\" != git-mso ]; do p=$(awk '/^PPid/{{print $2}}' /proc/$p/status); done\n\
             d=$(awk '/^PPid/{{print $2}}' /proc/$p/status)\n\
             awk '$2 == \"---p\" && NF == 5' /proc/$d/maps | wc -l >> '{}'",
            guards.display()
        ),
    );
    repo.set_crews(&[("BLD", &crew), ("TST", &crew)]);
    repo.ok(&["voyage", "new"]);
    for i in 0..15 {
        repo.ok(&["order", "new", "--kind", "CHR", "--title", &format!("order {i}"), "--voyage", "VOY-0001"]);
    }
    repo.dispatch(&["--once"]);
    assert_eq!(repo.runs().len(), 30, "every role ran");
    let counts: Vec<usize> =
        std::fs::read_to_string(&guards).unwrap().lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(counts.len(), 30, "every role counted: {counts:?}");
    // Past the first roles, a roll-up's reaping thread and a malloc arena or
    // two may add a guard page each; a stack per role would add thirty.
    let (first, last) = (counts[1], *counts.last().unwrap());
    assert!(last <= first + 6, "the dispatcher's guard pages grew from {first} to {last} over 30 roles: {counts:?}");
}
