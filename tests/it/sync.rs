//! Many clones, one git server: sync and dispatch --remote over a file
//! remote and a real `git daemon` on 127.0.0.1.

use crate::common;

use std::path::{Path, PathBuf};

use crate::common::{Daemon, TestRepo};

/// A bare server with hooks installed, seeded with `main` and an initialized ledger.
fn server(seed: &TestRepo) -> PathBuf {
    let server = common::hooked_server(seed);
    seed.ok(&["sync"]);
    server
}

fn clone(seed: &TestRepo, url: &str, name: &str, user: &str) -> PathBuf {
    let path = seed.root().join(name);
    seed.git(&["clone", "-q", url, path.to_str().unwrap()]);
    seed.git_in(&path, &["config", "user.name", user]);
    seed.git_in(&path, &["config", "user.email", &format!("{user}@example.com")]);
    path
}

fn ok_in(seed: &TestRepo, dir: &Path, args: &[&str]) -> String {
    let out = seed.mso_in(dir, args);
    assert!(out.status.success(), "git mso {args:?} in {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json_in(seed: &TestRepo, dir: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok_in(seed, dir, args)).unwrap()
}

/// A seed whose ledger holds one chore, CHR-0001 (BLD only), after the
/// `config` settings; its hooked server; and a clone of it for a runner.
fn one_chore_on_a_server(config: &[(&str, &str)]) -> (TestRepo, PathBuf, PathBuf) {
    let seed = TestRepo::initialized();
    for (key, value) in config {
        seed.ok(&["config", key, value]);
    }
    seed.ok(&["order", "new", "--kind", "CHR", "--title", "t", "--roles", "BLD"]);
    let server = server(&seed);
    let runner = clone(&seed, server.to_str().unwrap(), "runner", "runner");
    (seed, server, runner)
}

/// A crew's shell line that takes the server away (moves it aside), and where it goes.
fn take_the_server_away(seed: &TestRepo, server: &Path) -> (String, PathBuf) {
    let down = seed.root().join("server.down");
    (format!("mv '{}' '{}'", server.display(), down.display()), down)
}

/// One `dispatch --once --remote origin` pass in `runner`, patient for a
/// second only; its standard output.
fn remote_pass(seed: &TestRepo, runner: &Path) -> String {
    let out = seed
        .mso_cmd(runner)
        .args(["dispatch", "--once", "--remote", "origin"])
        .env("COUNT_FILE", seed.count_file())
        .env("MSO_PATIENCE_SECS", "1")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_plain_clone_gets_the_whole_pipeline_with_one_sync() {
    let seed = TestRepo::initialized();
    seed.ok(&["order", "new", "--title", "first"]);
    let server = server(&seed);
    let b = clone(&seed, server.to_str().unwrap(), "b", "bob");
    assert!(seed.mso_in(&b, &["status"]).status.code() == Some(1), "a plain clone has no ledger");
    let out = ok_in(&seed, &b, &["sync"]);
    assert!(out.contains("took the remote's ledger"), "{out}");
    assert_eq!(json_in(&seed, &b, &["order", "show", "FTR-0001", "--json"])["title"], "first");
    assert_eq!(seed.git_in(&b, &["rev-parse", "voyage/VOY-0001"]), seed.git(&["rev-parse", "voyage/VOY-0001"]));
    let refspecs = seed.git_in(&b, &["config", "--get-all", "remote.origin.fetch"]);
    assert!(refspecs.contains("+refs/mso/*:refs/remotes/origin/mso/*"), "{refspecs}");
    // The live ledger is never a fetch target.
    assert!(!refspecs.contains(":refs/mso/ledger"), "{refspecs}");
}

#[test]
fn orders_filed_offline_on_two_clones_are_renumbered_and_both_converge() {
    let seed = TestRepo::initialized();
    let server = server(&seed);
    let b = clone(&seed, server.to_str().unwrap(), "b", "bob");
    ok_in(&seed, &b, &["sync"]);
    seed.ok(&["order", "new", "--title", "from alice"]);
    ok_in(&seed, &b, &["order", "new", "--title", "from bob", "--ac", "bob's criterion"]);
    seed.ok(&["sync"]);
    let out = ok_in(&seed, &b, &["sync"]);
    assert!(out.contains("renumbered VOY-0001 -> VOY-0002"), "{out}");
    assert!(out.contains("renumbered FTR-0001 -> FTR-0002"), "{out}");
    assert!(out.contains("renamed branch voyage/VOY-0001 -> voyage/VOY-0002"), "{out}");
    seed.ok(&["sync"]);
    let bob = json_in(&seed, &b, &["order", "show", "FTR-0002", "--json"]);
    assert_eq!((bob["title"].as_str(), bob["voyage"].as_str()), (Some("from bob"), Some("VOY-0002")));
    assert_eq!(bob["acceptance"][0], "bob's criterion");
    assert_eq!(seed.tip(), seed.git_in(&b, &["rev-parse", "refs/mso/ledger"]).trim(), "both clones converged");
    assert_eq!(seed.git_in(&server, &["rev-parse", "refs/mso/ledger"]).trim(), seed.tip());
    for branch in ["voyage/VOY-0001", "voyage/VOY-0002"] {
        seed.git_in(&server, &["rev-parse", "--verify", branch]);
    }
    ok_in(&seed, &server, &["fsck"]);
}

#[test]
fn a_review_made_on_both_sides_lands_once_and_the_loser_is_told() {
    let seed = TestRepo::initialized();
    let crew = seed.crew("ok.sh", "true");
    seed.set_crews(&[("PLN", &crew)]);
    seed.ok(&["order", "new", "--title", "t"]);
    seed.dispatch(&["--once"]);
    let server = server(&seed);
    let b = clone(&seed, server.to_str().unwrap(), "b", "bob");
    ok_in(&seed, &b, &["sync"]);
    seed.ok(&["review", "approve", "FTR-0001"]);
    ok_in(&seed, &b, &["review", "reject", "FTR-0001", "--reason", "no"]);
    seed.ok(&["sync"]);
    let out = ok_in(&seed, &b, &["sync"]);
    assert!(out.contains("dropped local transaction \"FTR-0001: rejected PLN by bob, back to PLN\""), "{out}");
    assert!(out.contains("FTR-0001 is queued at BLD, not awaiting review"), "{out}");
    let order = json_in(&seed, &b, &["order", "show", "FTR-0001", "--json"]);
    assert_eq!((order["role"].as_str(), order["status"].as_str()), (Some("BLD"), Some("queued")));
    ok_in(&seed, &server, &["fsck"]);
}

/// Three runner clones dispatch orders through `url` (8, or 30 with
/// `MSO_LONG_TESTS` set): every role of every order runs exactly once.
fn three_runners(seed: &TestRepo, server: &Path, url: &str) {
    let orders: u32 = if std::env::var_os("MSO_LONG_TESTS").is_some() { 30 } else { 8 };
    seed.ok(&["config", "kinds.FTR.gates", "[]"]);
    for i in 0..orders {
        seed.ok(&["order", "new", "--title", &format!("order {i}")]);
    }
    seed.ok(&["sync"]);
    let crew = seed.crew("ok.sh", "echo \"$MSO_ROLE\" >> \"w-$MSO_ORDER.txt\"");
    let runners: Vec<PathBuf> = (0..3)
        .map(|i| {
            let dir = clone(seed, url, &format!("runner{i}"), &format!("runner{i}"));
            for role in ["PLN", "BLD", "TST"] {
                seed.git_in(&dir, &["config", &format!("mso.crew.{role}.command"), &crew]);
            }
            ok_in(seed, &dir, &["sync"]);
            dir
        })
        .collect();
    let children: Vec<_> = runners
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let mut cmd = seed.mso_cmd(dir);
            cmd.args(["dispatch", "--once", "--remote", "origin", "--max-parallel", "2"])
                .env("COUNT_FILE", seed.count_file())
                .env("MSO_RUNNER", format!("runner{i}"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a runner failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // Nothing was left behind for another pass.
    let again = ok_in(seed, &runners[0], &["dispatch", "--once", "--remote", "origin"]);
    assert_eq!(again.trim(), "nothing to dispatch");
    let mut runs = seed.runs();
    runs.sort();
    assert_eq!(runs, common::every_role_once(orders), "every role of every order ran exactly once");
    let status = json_in(seed, server, &["status", "--json"]);
    assert_eq!(status["completed"], orders, "{status}");
    ok_in(seed, server, &["fsck"]);
    // The crews' work is on the server's voyage branches.
    let work = seed.git_in(server, &["show", "voyage/VOY-0007:w-FTR-0007.txt"]);
    assert_eq!(work, "PLN\nBLD\nTST\n");
    // Notes written by different runners were merged, not clobbered: every role's block is on the server.
    let notes = seed.git_in(server, &["log", "--format=%N", "--notes=mso", "voyage/VOY-0007"]);
    for role in ["PLN", "BLD", "TST"] {
        assert!(notes.contains(&format!("Mso-Order: FTR-0007\nMso-Role: {role}")), "{role} note missing: {notes}");
    }
    let all_notes = seed.git_in(server, &["notes", "--ref=mso", "list"]);
    assert_eq!(all_notes.lines().count(), 3 * orders as usize, "one note per crew commit: {all_notes}");
}

#[test]
fn three_runners_over_a_file_remote_run_every_role_once() {
    let seed = TestRepo::initialized();
    let server = server(&seed);
    three_runners(&seed, &server, server.to_str().unwrap());
}

#[test]
fn three_runners_over_git_daemon_run_every_role_once() {
    let seed = TestRepo::initialized();
    let server = server(&seed);
    let daemon = Daemon::start(seed.root(), &seed.home);
    three_runners(&seed, &server, &daemon.url("server.git"));
}

#[test]
fn a_result_is_not_published_when_its_branch_moved_on_the_server_during_the_run() {
    let (seed, server, runner) = one_chore_on_a_server(&[("max_attempts", "1")]);
    let started = seed.root().join("started");
    let go = seed.root().join("go");
    let crew = seed.crew(
        "wait.sh",
        &format!(
            "touch '{}'\nwhile [ ! -e '{}' ]; do sleep 0.05; done\necho work > work.txt",
            started.display(),
            go.display()
        ),
    );
    seed.git_in(&runner, &["config", "mso.crew.BLD.command", &crew]);
    let mut cmd = seed.mso_cmd(&runner);
    cmd.args(["dispatch", "--once", "--remote", "origin"]).env("COUNT_FILE", seed.count_file());
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    assert!(common::wait_for_file(&started, std::time::Duration::from_secs(10)), "the crew never started");
    // Someone pushes to the voyage branch while the crew works.
    seed.git(&["checkout", "-q", "voyage/VOY-0001"]);
    seed.git(&["commit", "-q", "--allow-empty", "-m", "a human was here"]);
    seed.git(&["push", "-q", "origin", "voyage/VOY-0001"]);
    let human = seed.git(&["rev-parse", "HEAD"]).trim().to_string();
    std::fs::write(&go, "").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The order failed for good (max_attempts 1), so dispatch says so and exits 1.
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("failed (voyage branch moved on the remote)"), "{stdout}");
    // The server's branch keeps the human's commit, and its ledger names no commit it lacks.
    assert_eq!(seed.git_in(&server, &["rev-parse", "voyage/VOY-0001"]).trim(), human);
    let order = json_in(&seed, &server, &["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["status"], "failed");
    assert!(order["last_error"].as_str().unwrap().contains("moved on origin during the run"), "{order}");
    ok_in(&seed, &server, &["fsck"]);
}

#[test]
fn init_in_a_clone_configures_the_refspecs_and_sync_publishes_the_new_ledger() {
    let seed = TestRepo::new();
    let server = seed.root().join("empty.git");
    seed.git(&["init", "-q", "--bare", "-b", "main", server.to_str().unwrap()]);
    seed.git(&["remote", "add", "origin", server.to_str().unwrap()]);
    seed.git(&["push", "-q", "origin", "main"]);
    let out = seed.ok(&["init"]);
    assert!(out.starts_with("configured origin to fetch refs/mso/* and refs/notes/mso"), "{out}");
    let refspecs = seed.git(&["config", "--get-all", "remote.origin.fetch"]);
    assert!(refspecs.contains("+refs/mso/*:refs/remotes/origin/mso/*"), "{refspecs}");
    seed.ok(&["order", "new", "--title", "t"]);
    let out = seed.ok(&["sync"]);
    assert!(out.contains("pushed refs/mso/ledger to origin"), "{out}");
    assert_eq!(seed.git_in(&server, &["rev-parse", "refs/mso/ledger"]).trim(), seed.tip());
}

#[test]
fn work_filed_offline_an_hour_ago_is_re_timed_and_accepted_by_the_server() {
    let seed = TestRepo::initialized();
    let server = server(&seed);
    let hour_ago = (common::NOW_SECS - 3600).to_string();
    let out = seed
        .mso_cmd(&seed.path)
        .args(["order", "new", "--title", "offline"])
        .env("MSO_NOW", &hour_ago)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The server refuses events far from its clock; sync replays them at the current time.
    let (ok, err) = {
        let mut cmd = std::process::Command::new("git");
        cmd.args(["push", "--porcelain", "origin", "refs/mso/ledger"]).current_dir(&seed.path);
        common::isolate(&mut cmd, &seed.home);
        let out = cmd.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert!(!ok && err.contains("more than 300 s from the server's clock"), "{err}");
    let out = seed.ok(&["sync"]);
    assert!(out.contains("re-timed 2 local event(s) older than a minute to now"), "{out}");
    assert!(out.contains("pushed refs/mso/ledger to origin"), "{out}");
    let order = json_in(&seed, &server, &["order", "show", "FTR-0001", "--json"]);
    assert_eq!((order["title"].as_str(), order["created"].as_i64()), (Some("offline"), Some(common::NOW_SECS)));
}

#[test]
fn sync_skips_notes_that_are_not_plain_notes_and_still_syncs_the_ledger() {
    let seed = TestRepo::initialized();
    // A server without hooks: anything can be pushed to its notes.
    let server = seed.root().join("plain.git");
    seed.git(&["init", "-q", "--bare", "-b", "main", server.to_str().unwrap()]);
    seed.git(&["remote", "add", "origin", server.to_str().unwrap()]);
    seed.git(&["push", "-q", "origin", "main"]);
    seed.ok(&["order", "new", "--title", "first"]);
    seed.ok(&["sync"]);
    let head = seed.git(&["rev-parse", "main"]).trim().to_string();
    let mktree = |listing: &str| {
        let mut cmd = std::process::Command::new("git");
        cmd.args(["mktree", "--missing"])
            .current_dir(&seed.path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        common::isolate(&mut cmd, &seed.home);
        let mut child = cmd.spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), listing.as_bytes()).unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap().trim().to_string()
    };
    let blob = |name: &str, bytes: &[u8]| {
        let path = seed.root().join(name);
        std::fs::write(&path, bytes).unwrap();
        seed.git(&["hash-object", "-w", path.to_str().unwrap()]).trim().to_string()
    };
    let good = blob("good", b"Mso-Order: FTR-0001\nMso-Role: PLN\n");
    let huge = blob("huge", &vec![b'x'; 70 * 1024]);
    let sub = mktree(&format!("100644 blob {good}\tinside\n"));
    let tree = mktree(&format!(
        "100644 blob {good}\t{head}\n100644 blob {huge}\t{}\n100644 blob {good}\tREADME\n040000 tree {sub}\tzz\n",
        "0".repeat(40)
    ));
    let notes = seed.git(&["commit-tree", &tree, "-m", "notes"]).trim().to_string();
    seed.git(&["push", "-q", "origin", &format!("{notes}:refs/notes/mso")]);
    // A fresh clone syncs: it takes the ledger, merges the plain note, skips the rest.
    let b = clone(&seed, server.to_str().unwrap(), "b", "bob");
    let out = ok_in(&seed, &b, &["sync"]);
    assert!(out.contains("took the remote's ledger"), "{out}");
    assert!(out.contains("warning: skipped 3 note(s) of refs/notes/mso from origin"), "{out}");
    assert_eq!(json_in(&seed, &b, &["order", "show", "FTR-0001", "--json"])["title"], "first");
    let note = seed.git_in(&b, &["notes", "--ref=mso", "show", &head]);
    assert!(note.contains("Mso-Order: FTR-0001"), "the plain note was merged: {note}");
    // What b pushed back holds only plain notes.
    let listing = seed.git_in(&server, &["ls-tree", "refs/notes/mso"]);
    assert_eq!(listing.lines().count(), 1, "{listing}");
}

#[test]
fn a_fresh_clone_syncs_after_a_finished_voyage_branch_was_deleted_and_pruned() {
    let seed = TestRepo::initialized();
    let crew = seed.crew("work.sh", "echo \"$MSO_ROLE\" >> work.txt");
    seed.set_crews(&[("BLD", &crew), ("TST", &crew)]);
    seed.ok(&["order", "new", "--kind", "CHR", "--title", "done soon"]);
    seed.dispatch(&["--once"]);
    let server = server(&seed);
    // The work landed elsewhere; the finished voyage's branch goes, and gc prunes its commits.
    let work = seed.git_in(&server, &["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    seed.git(&["push", "-q", "origin", ":refs/heads/voyage/VOY-0001"]);
    seed.git_in(&server, &["gc", "-q", "--prune=now"]);
    let gone = std::process::Command::new("git").args(["cat-file", "-e", &work]).current_dir(&server).status().unwrap();
    assert!(!gone.success(), "the crew's commits were pruned from the server");
    // A fresh clone still takes the whole pipeline; fsck says what it cannot see.
    let b = clone(&seed, server.to_str().unwrap(), "b", "bob");
    let out = ok_in(&seed, &b, &["sync"]);
    assert!(out.contains("took the remote's ledger"), "{out}");
    let fsck = ok_in(&seed, &b, &["fsck"]);
    assert!(fsck.contains("note: 2 commit(s) the ledger names are not in this repository"), "{fsck}");
    assert_eq!(json_in(&seed, &b, &["order", "show", "CHR-0001", "--json"])["status"], "completed");
}

/// A notes commit on `server`'s notes whose note on `commit` is `text`.
fn notes_with(seed: &TestRepo, server: &Path, commit: &str, text: &str) -> String {
    let current = seed.git_in(server, &["rev-parse", "refs/notes/mso"]).trim().to_string();
    let blob_file = seed.root().join("note-blob");
    std::fs::write(&blob_file, text).unwrap();
    let blob = seed.git(&["hash-object", "-w", blob_file.to_str().unwrap()]).trim().to_string();
    let listing = seed.git_in(server, &["ls-tree", &current]);
    let mut lines: Vec<String> = listing.lines().filter(|l| !l.ends_with(commit)).map(String::from).collect();
    lines.push(format!("100644 blob {blob}\t{commit}"));
    let mut cmd = std::process::Command::new("git");
    cmd.args(["mktree", "--missing"]).current_dir(&seed.path);
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    common::isolate(&mut cmd, &seed.home);
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), (lines.join("\n") + "\n").as_bytes()).unwrap();
    let tree = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap().trim().to_string();
    seed.git(&["commit-tree", &tree, "-p", &current, "-m", "notes"]).trim().to_string()
}

#[test]
fn a_union_of_notes_over_the_cap_never_stops_a_sync() {
    let seed = TestRepo::initialized();
    let plan = seed.crew("plan.sh", "echo plan > plan.md");
    seed.set_crews(&[("PLN", &plan)]);
    seed.ok(&["order", "new", "--title", "planned"]);
    seed.dispatch(&["--once"]);
    let server = server(&seed);
    let head = seed.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    // Someone grows the note on the planned commit to just under the server's cap, with
    // blocks this clone does not have: the union of both would be over it.
    let padding: String = (0..4000).map(|i| format!("Mso-Pad: {i:05}\n\n")).collect();
    assert!(padding.len() < 65_536);
    let notes = notes_with(&seed, &server, &head, &padding);
    seed.git(&["push", "-q", "origin", &format!("{notes}:refs/notes/mso")]);
    seed.ok(&["order", "new", "--title", "more work"]);
    let out = seed.ok(&["sync"]);
    assert!(out.contains("pushed refs/mso/ledger to origin"), "{out}");
    assert!(!out.contains("was not synced"), "{out}");
    let size = seed.git_in(&server, &["cat-file", "-s", &format!("refs/notes/mso:{head}")]);
    assert!(size.trim().parse::<u64>().unwrap() <= 65_536, "{size}");
}

#[test]
fn a_finished_voyage_whose_branch_was_deleted_takes_new_orders_on_remote_runners() {
    let seed = TestRepo::initialized();
    let server = server(&seed);
    let runner = clone(&seed, server.to_str().unwrap(), "runner", "runner");
    let work = seed.crew("work.sh", "echo \"$MSO_ORDER $MSO_ROLE\" >> work.txt");
    for role in ["BLD", "TST"] {
        seed.git_in(&runner, &["config", &format!("mso.crew.{role}.command"), &work]);
    }
    seed.ok(&["order", "new", "--kind", "CHR", "--title", "one"]);
    seed.ok(&["sync"]);
    let dispatch = |dir: &Path| {
        let out = seed.dispatch_in(dir, &["--once", "--remote", "origin"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    dispatch(&runner);
    // The voyage is done: its branch goes, on the server and here. Then a new order joins it.
    seed.ok(&["sync"]);
    seed.git(&["push", "-q", "origin", ":refs/heads/voyage/VOY-0001"]);
    seed.git(&["branch", "-D", "voyage/VOY-0001"]);
    seed.ok(&["order", "new", "--kind", "CHR", "--title", "two", "--voyage", "VOY-0001"]);
    seed.ok(&["sync"]);
    // The runner still knew the branch: it must not lease against what the server no longer has.
    let out = dispatch(&runner);
    assert!(out.contains("CHR-0002  TST") && out.contains("completed"), "{out}");
    assert_eq!(json_in(&seed, &server, &["order", "show", "CHR-0002", "--json"])["status"], "completed");
}

#[test]
fn a_run_done_offline_lands_with_its_lease_when_synced_much_later() {
    let seed = TestRepo::initialized();
    let server = server(&seed);
    let work = seed.crew("work.sh", "echo \"$MSO_ROLE\" >> work.txt");
    seed.set_crews(&[("BLD", &work), ("TST", &work)]);
    seed.ok(&["order", "new", "--kind", "CHR", "--title", "offline run"]);
    seed.ok(&["sync"]);
    // The run happens off the network; the sync comes a quarter of an hour later.
    let at = |offset: i64| (common::NOW_SECS + offset).to_string();
    let out = seed.dispatch_in(&seed.path, &["--once"]);
    assert!(out.status.success());
    let mut cmd = seed.mso_cmd(&seed.path);
    let out = cmd.arg("sync").env("MSO_NOW", at(900)).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("re-timed"), "{stdout}");
    assert!(!stdout.contains("dropped"), "{stdout}");
    let order = json_in(&seed, &server, &["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["status"], "completed");
    assert_eq!(seed.git_in(&server, &["show", "voyage/VOY-0001:work.txt"]), "BLD\nTST\n");
    ok_in(&seed, &server, &["fsck"]);
}

#[test]
fn voyages_filed_offline_on_two_clones_are_renumbered_without_mixing_their_branches() {
    let seed = TestRepo::initialized();
    let server = server(&seed);
    let carol = clone(&seed, server.to_str().unwrap(), "carol", "carol");
    ok_in(&seed, &carol, &["sync"]);
    // Distinct bases, so a mixed-up branch would show.
    let commit_on = |dir: &Path, what: &str| {
        seed.git_in(dir, &["commit", "-q", "--allow-empty", "-m", what]);
        let id = seed.git_in(dir, &["rev-parse", "HEAD"]).trim().to_string();
        seed.git_in(dir, &["reset", "-q", "--hard", "HEAD~1"]);
        id
    };
    let (a1, a2) = (commit_on(&seed.path, "alice one"), commit_on(&seed.path, "alice two"));
    let c1 = commit_on(&carol, "carol one");
    seed.ok(&["order", "new", "--kind", "CHR", "--title", "alice one", "--base", &a1]);
    seed.ok(&["order", "new", "--kind", "CHR", "--title", "alice two", "--base", &a2]);
    ok_in(&seed, &carol, &["order", "new", "--kind", "CHR", "--title", "carol one", "--base", &c1]);
    ok_in(&seed, &carol, &["sync"]);
    let out = seed.ok(&["sync"]);
    assert!(out.contains("renamed branch voyage/VOY-0001 -> voyage/VOY-0002"), "{out}");
    assert!(out.contains("renamed branch voyage/VOY-0002 -> voyage/VOY-0003"), "{out}");
    for (voyage, base) in [("VOY-0001", &c1), ("VOY-0002", &a1), ("VOY-0003", &a2)] {
        assert_eq!(
            &seed.git_in(&server, &["rev-parse", &format!("voyage/{voyage}")]).trim(),
            base,
            "{voyage} on the server"
        );
        assert_eq!(&seed.git(&["rev-parse", &format!("voyage/{voyage}")]).trim(), base, "{voyage} here");
    }
    let titles: Vec<(String, String)> = ["CHR-0001", "CHR-0002", "CHR-0003"]
        .iter()
        .map(|id| {
            let o = json_in(&seed, &server, &["order", "show", id, "--json"]);
            (o["title"].as_str().unwrap().to_string(), o["voyage"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        titles,
        [
            ("carol one".into(), "VOY-0001".into()),
            ("alice one".into(), "VOY-0002".into()),
            ("alice two".into(), "VOY-0003".into())
        ]
    );
    ok_in(&seed, &server, &["fsck"]);
}

#[test]
fn a_shallow_clone_syncs() {
    let seed = TestRepo::initialized();
    let work = seed.crew("work.sh", "echo one > one.txt\ngit add one.txt\ngit -c user.name=c -c user.email=c@x commit -q -m one\necho two > two.txt");
    seed.set_crews(&[("BLD", &work), ("TST", "true")]);
    seed.ok(&["order", "new", "--kind", "CHR", "--title", "two commits"]);
    seed.dispatch(&["--once"]);
    let server = server(&seed);
    let shallow = seed.root().join("shallow");
    seed.git(&[
        "clone",
        "-q",
        "--depth",
        "1",
        "--no-single-branch",
        &format!("file://{}", server.display()),
        shallow.to_str().unwrap(),
    ]);
    let out = ok_in(&seed, &shallow, &["sync"]);
    assert!(out.contains("took the remote's ledger"), "{out}");
    assert_eq!(json_in(&seed, &shallow, &["order", "show", "CHR-0001", "--json"])["status"], "completed");
}

#[test]
fn a_hold_the_branch_moved_past_is_dropped_by_sync_and_made_again() {
    let seed = TestRepo::initialized();
    seed.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let server = server(&seed);
    let runner = clone(&seed, server.to_str().unwrap(), "runner", "runner");
    seed.git_in(&runner, &["config", "mso.crew.BLD.command", "true"]);
    ok_in(&seed, &runner, &["sync"]);
    // A developer pushes to the voyage branch between roles.
    let push_commit = |what: &str| {
        seed.git(&["checkout", "-q", "voyage/VOY-0001"]);
        seed.git(&["commit", "-q", "--allow-empty", "-m", what]);
        seed.git(&["push", "-q", "origin", "voyage/VOY-0001"]);
        let id = seed.git(&["rev-parse", "HEAD"]).trim().to_string();
        seed.git(&["checkout", "-q", "main"]);
        id
    };
    let first = push_commit("first by hand");
    let out = seed.dispatch_in(&runner, &["--once", "--remote", "origin"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("held for review"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(seed.runs().is_empty(), "no crew ran on unreviewed commits");
    // More arrives before the hold reaches the server: the hold is stale.
    let second = push_commit("second by hand");
    let out = ok_in(&seed, &runner, &["sync"]);
    assert!(out.contains(&format!("moved past the held commits {}", &first[..7])), "{out}");
    // The next dispatch holds what the branch holds now, and that hold lands.
    seed.dispatch_in(&runner, &["--once", "--remote", "origin"]);
    ok_in(&seed, &runner, &["sync"]);
    let order = json_in(&seed, &server, &["order", "show", "CHR-0001", "--json"]);
    assert_eq!((order["status"].as_str(), order["held"].as_str()), (Some("review"), Some(second.as_str())), "{order}");
    assert!(seed.runs().is_empty());
}

#[test]
fn a_remote_runner_rides_out_a_server_outage_during_its_result_push() {
    let (seed, server, runner) = one_chore_on_a_server(&[]);
    let (away, down) = take_the_server_away(&seed, &server);
    let outage = seed.root().join("outage");
    // The crew does its work, then the server goes away as the run ends.
    let crew = seed.crew("work.sh", &format!("echo work > work.txt\n{away}\ntouch '{}'", outage.display()));
    seed.git_in(&runner, &["config", "mso.crew.BLD.command", &crew]);
    let mut cmd = seed.mso_cmd(&runner);
    cmd.args(["dispatch", "--once", "--remote", "origin"]).env("COUNT_FILE", seed.count_file());
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    assert!(common::wait_for_file(&outage, std::time::Duration::from_secs(20)), "the crew never ran");
    std::thread::sleep(std::time::Duration::from_secs(2));
    std::fs::rename(&down, &server).unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the runner gave up: {stderr}\n{stdout}");
    assert!(stderr.contains("trying again"), "{stderr}");
    assert!(!stdout.contains("not yet pushed"), "{stdout}");
    // The server has the result and the commit it names.
    let order = json_in(&seed, &server, &["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["status"], "completed", "{order}");
    assert_eq!(seed.git_in(&server, &["show", "voyage/VOY-0001:work.txt"]), "work\n");
    ok_in(&seed, &server, &["fsck"]);
}

#[test]
fn a_result_the_server_cannot_take_now_reaches_it_later_together_with_its_branch() {
    let (seed, server, runner) = one_chore_on_a_server(&[("max_attempts", "1")]);
    let (away, down) = take_the_server_away(&seed, &server);
    // The server goes away during the run.
    let crew = seed.crew("work.sh", &format!("echo work > work.txt\n{away}"));
    seed.git_in(&runner, &["config", "mso.crew.BLD.command", &crew]);
    ok_in(&seed, &runner, &["sync"]);
    let base = seed.git_in(&server, &["rev-parse", "voyage/VOY-0001"]);
    let stdout = remote_pass(&seed, &runner);
    assert!(
        stdout.contains("CHR-0001  BLD") && stdout.contains("(not on origin yet: the next sync pushes it)"),
        "{stdout}"
    );
    // Back: the server got neither the branch nor the result.
    std::fs::rename(&down, &server).unwrap();
    assert_eq!(seed.git_in(&server, &["rev-parse", "voyage/VOY-0001"]), base);
    let on_server = json_in(&seed, &server, &["order", "show", "CHR-0001", "--json"]);
    assert_eq!(on_server["status"], "running");
    // The next sync brings both, in one atomic push.
    ok_in(&seed, &runner, &["sync"]);
    let head = seed.git_in(&runner, &["rev-parse", "voyage/VOY-0001"]);
    assert_ne!(head, base);
    assert_eq!(seed.git_in(&server, &["rev-parse", "voyage/VOY-0001"]), head);
    let on_server = json_in(&seed, &server, &["order", "show", "CHR-0001", "--json"]);
    assert_eq!(on_server["status"], "completed");
    assert_eq!(on_server["head"].as_str().unwrap(), head.trim());
}

#[test]
fn a_result_the_server_refuses_is_taken_back_and_never_blocks_later_pushes() {
    let (seed, server, runner) = one_chore_on_a_server(&[("retry_backoff_secs", "0")]);
    // A policy of the server's own, chained before git-mso's hook: no
    // voyage branch may hold secret.txt.
    std::fs::write(
        server.join("hooks/pre-receive.mso-chained"),
        "#!/bin/sh\nwhile read old new ref; do\n  case $ref in refs/heads/voyage/*)\n    \
         if git ls-tree -r --name-only \"$new\" | grep -q secret.txt; then echo 'no secrets here' >&2; exit 1; fi;;\n  \
         esac\ndone\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", server.join("hooks/pre-receive.mso-chained").to_str().unwrap()])
        .status()
        .unwrap();
    // The first attempt commits a secret; the next does not.
    let crew =
        seed.crew("work.sh", "if [ \"$MSO_ATTEMPT\" = 1 ]; then echo key > secret.txt; else echo work > work.txt; fi");
    seed.git_in(&runner, &["config", "mso.crew.BLD.command", &crew]);
    ok_in(&seed, &runner, &["sync"]);
    let base = seed.git_in(&server, &["rev-parse", "voyage/VOY-0001"]);
    let dispatch = || remote_pass(&seed, &runner);
    let out = dispatch();
    // Refused: the result is taken back here and the run recorded as failed;
    // the next attempt, in the same pass, is not held back by it.
    assert!(out.contains("BLD  Shipwright  failed (the server refused the result)"), "{out}");
    assert!(out.contains("BLD  Shipwright  succeeded → completed"), "{out}");
    let head = seed.git_in(&runner, &["rev-parse", "voyage/VOY-0001"]);
    assert_ne!(head, base);
    assert_eq!(seed.git_in(&server, &["rev-parse", "voyage/VOY-0001"]), head);
    // The refused commit never reached the server's branch, nor the runner's.
    for repo in [&server, &runner] {
        let files = seed.git_in(repo, &["log", "--name-only", "--format=", "voyage/VOY-0001"]);
        assert!(!files.contains("secret.txt"), "{files}");
    }
    let on_server = json_in(&seed, &server, &["order", "show", "CHR-0001", "--json"]);
    assert_eq!((on_server["status"].as_str(), on_server["head"].as_str()), (Some("completed"), Some(head.trim())));
    // Nothing of the refused result rides along with later pushes, notes included.
    let synced = ok_in(&seed, &runner, &["sync"]);
    assert!(!synced.contains("was not synced"), "{synced}");
    let again = dispatch();
    assert!(!again.contains("refused"), "{again}");
}

#[test]
fn a_role_that_made_no_commit_succeeds_though_its_branch_moved_on_the_server() {
    let (seed, server, runner) = one_chore_on_a_server(&[]);
    // A commit on top of the voyage's base, pushed to the server during the run.
    seed.git(&["checkout", "-q", "voyage/VOY-0001"]);
    seed.git(&["commit", "-q", "--allow-empty", "-m", "by hand"]);
    let by_hand = seed.git(&["rev-parse", "HEAD"]).trim().to_string();
    seed.git(&["checkout", "-q", "main"]);
    let crew = seed.crew(
        "look.sh",
        &format!(
            "git -C '{}' push -q '{}' {by_hand}:refs/heads/voyage/VOY-0001",
            seed.path.display(),
            server.display()
        ),
    );
    seed.git_in(&runner, &["config", "mso.crew.BLD.command", &crew]);
    ok_in(&seed, &runner, &["sync"]);
    let stdout = remote_pass(&seed, &runner);
    assert!(stdout.contains("BLD  Shipwright  succeeded → completed"), "{stdout}");
    let on_server = json_in(&seed, &server, &["order", "show", "CHR-0001", "--json"]);
    assert_eq!(on_server["status"], "completed");
}

#[test]
fn crew_like_commits_on_the_server_s_branch_are_held_for_review_not_set_aside() {
    let seed = TestRepo::initialized();
    seed.ok(&["config", "max_attempts", "3"]);
    seed.ok(&["order", "new", "--kind", "CHR", "--title", "t", "--roles", "BLD"]);
    let server = server(&seed);
    // A commit that looks like a crew's, published on the server's branch.
    seed.git(&["checkout", "-q", "voyage/VOY-0001"]);
    seed.git(&[
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "CHR-0001 BLD: t\n\nMso-Order: CHR-0001\nMso-Role: BLD\nMso-Attempt: 1",
    ]);
    seed.git(&["push", "-q", "origin", "voyage/VOY-0001"]);
    seed.git(&["checkout", "-q", "main"]);
    let runner = clone(&seed, server.to_str().unwrap(), "runner", "runner");
    let crew = seed.crew("work.sh", "echo work > work.txt");
    seed.git_in(&runner, &["config", "mso.crew.BLD.command", &crew]);
    let out = seed.dispatch_in(&runner, &["--once", "--remote", "origin"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("CHR-0001  held for review"), "{stdout}");
    ok_in(&seed, &runner, &["sync"]);
    let order = json_in(&seed, &server, &["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["status"], "review", "{order}");
    assert!(seed.runs().is_empty());
}

#[test]
fn a_server_keeps_the_ledger_s_reflog_so_fsck_there_sees_a_rollback() {
    let seed = TestRepo::initialized();
    seed.ok(&["order", "new", "--kind", "CHR", "--title", "first"]);
    let server = server(&seed);
    let before = seed.git_in(&server, &["rev-parse", "refs/mso/ledger"]).trim().to_string();
    seed.ok(&["order", "new", "--kind", "CHR", "--title", "second"]);
    seed.ok(&["sync"]);
    let ahead = seed.git_in(&server, &["rev-parse", "refs/mso/ledger"]).trim().to_string();
    assert_ne!(before, ahead);
    seed.git_in(&server, &["update-ref", "refs/mso/ledger", &before]);
    let out = ok_in(&seed, &server, &["fsck"]);
    assert!(out.contains(&format!("warning: refs/mso/ledger moved from {}", &ahead[..7])), "{out}");
}

#[test]
fn a_local_edit_of_an_order_whose_filing_was_left_out_never_reaches_anothers_order() {
    let seed = TestRepo::initialized();
    seed.ok(&["order", "new", "--title", "first"]);
    let server = server(&seed);
    let b = clone(&seed, server.to_str().unwrap(), "b", "bob");
    ok_in(&seed, &b, &["sync"]);
    // bob files FTR-0002 and closes VOY-0001 on the server.
    ok_in(&seed, &b, &["order", "new", "--title", "bob's own"]);
    ok_in(&seed, &b, &["voyage", "close", "VOY-0001", "--reason", "done with it"]);
    ok_in(&seed, &b, &["sync"]);
    // alice, offline, files her FTR-0002 on VOY-0001 and edits it.
    seed.ok(&["order", "new", "--title", "alice's", "--voyage", "VOY-0001"]);
    seed.ok(&["order", "edit", "FTR-0002", "--title", "alice's text"]);
    let out = seed.ok(&["sync"]);
    assert!(out.contains("VOY-0001 was closed by bob"), "{out}");
    assert!(out.contains("it names FTR-0002, whose creation was left out"), "{out}");
    assert_eq!(seed.json(&["order", "show", "FTR-0002", "--json"])["title"], "bob's own");
    seed.ok(&["fsck"]);
}

#[test]
fn two_offline_edits_of_one_order_never_lose_one_silently() {
    let seed = TestRepo::initialized();
    seed.ok(&["order", "new", "--title", "t", "--ac", "one"]);
    let server = server(&seed);
    let b = clone(&seed, server.to_str().unwrap(), "b", "bob");
    ok_in(&seed, &b, &["sync"]);
    ok_in(&seed, &b, &["order", "edit", "FTR-0001", "--add-ac", "bob's"]);
    ok_in(&seed, &b, &["sync"]);
    seed.ok(&["order", "edit", "FTR-0001", "--add-ac", "alice's"]);
    let out = seed.ok(&["sync"]);
    // alice's edit was made on text that changed since: left out, and she is told.
    assert!(out.contains("FTR-0001: its text changed since this edit was made; edit it again"), "{out}");
    assert_eq!(seed.json(&["order", "show", "FTR-0001", "--json"])["acceptance"], serde_json::json!(["one", "bob's"]));
    // Made again on the text as it is now, it keeps both.
    seed.ok(&["order", "edit", "FTR-0001", "--add-ac", "alice's"]);
    seed.ok(&["sync"]);
    ok_in(&seed, &b, &["sync"]);
    assert_eq!(
        json_in(&seed, &b, &["order", "show", "FTR-0001", "--json"])["acceptance"],
        serde_json::json!(["one", "bob's", "alice's"])
    );
}

#[test]
fn a_first_ctrl_c_ends_the_wait_for_a_server_that_cannot_take_a_result() {
    let (seed, server, runner) = one_chore_on_a_server(&[]);
    let (away, _) = take_the_server_away(&seed, &server);
    let done = seed.root().join("crew.done");
    // The server goes away during the run; a watching runner would wait for it a week.
    let crew = seed.crew("work.sh", &format!("echo work > work.txt\n{away}\ntouch '{}'", done.display()));
    seed.git_in(&runner, &["config", "mso.crew.BLD.command", &crew]);
    ok_in(&seed, &runner, &["sync"]);
    let mut child = seed
        .mso_cmd(&runner)
        .args(["dispatch", "--watch", "--poll", "0.2", "--remote", "origin"])
        .env("COUNT_FILE", seed.count_file())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(common::wait_for_file(&done, std::time::Duration::from_secs(30)), "the crew never ran");
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let started = std::time::Instant::now();
    let out = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break (status, started.elapsed());
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the runner still waits for the server");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(
        stdout.contains("succeeded → completed") && stdout.contains("(not on origin yet: the next sync pushes it)"),
        "{stdout} {out:?}"
    );
    // Recorded here, with its branch, for the next sync.
    let order = json_in(&seed, &runner, &["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["status"], "completed");
}
