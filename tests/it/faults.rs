//! An operator's bad day: runners killed mid-run, locks left behind, damaged
//! state files, a copied repository, a rolled-back ledger.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::TestRepo;

/// Whether a process runs (a zombie waiting to be reaped counts as gone).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

fn wait_until(budget: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < budget {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// Hold an flock on `path`, as a crew of an earlier attempt would.
fn hold_flock(path: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::options().create(true).truncate(false).write(true).open(path).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    file
}

#[test]
fn a_crew_dies_with_its_killed_dispatcher_and_the_next_attempt_gets_a_clean_worktree() {
    let repo = TestRepo::initialized();
    let pids = repo.root().join("pids");
    let started = repo.root().join("started");
    // The first attempt leaves a writer behind in the background, then waits.
    let body = format!(
        "if [ \"$MSO_ATTEMPT\" = 1 ]; then\n\
         (while :; do echo stray >> stray.txt; sleep 0.02; done) &\n\
         echo $! > '{pids}'\n\
         touch '{started}'\n\
         sleep 60\n\
         fi\n\
         echo done > work.txt",
        pids = pids.display(),
        started = started.display()
    );
    let crew = repo.crew("crew.sh", &body);
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let mut dispatcher = repo.mso_cmd(&repo.path);
    dispatcher.args(["dispatch", "--once"]).env("COUNT_FILE", repo.count_file()).stdout(std::process::Stdio::null());
    let mut child = dispatcher.spawn().unwrap();
    assert!(common::wait_for_file(&started, Duration::from_secs(20)), "the crew never started");
    child.kill().unwrap();
    child.wait().unwrap();
    let stray: i32 = std::fs::read_to_string(&pids).unwrap().trim().parse().unwrap();
    assert!(wait_until(Duration::from_secs(5), || !alive(stray)), "the crew's background writer outlived its runner");

    // Recovery (same host, dead pid) runs the role again, on a worktree no one else writes.
    let out = repo.dispatch(&["--once"]);
    assert!(out.contains("recovered"), "{out}");
    assert_eq!(repo.runs(), ["CHR-0001 BLD 1", "CHR-0001 BLD 2"]);
    let files = repo.git(&["ls-tree", "-r", "--name-only", "voyage/VOY-0001"]);
    assert!(files.contains("work.txt"), "{files}");
    assert!(!files.contains("stray.txt"), "a killed attempt's output reached the voyage branch: {files}");
    repo.ok(&["fsck"]);
}

#[test]
fn no_attempt_starts_while_a_crew_of_an_earlier_one_still_holds_the_worktree() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("crew.sh", "echo work > work.txt");
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let lock = repo.path.join(".git/mso/locks/worktree-VOY-0001");
    let held = hold_flock(&lock);
    let out = repo.dispatch(&["--once"]);
    assert!(
        out.contains("CHR-0001  BLD  waiting: a crew of an earlier attempt still runs in the worktree of VOY-0001"),
        "{out}"
    );
    assert!(repo.runs().is_empty(), "a crew started in an occupied worktree");
    assert_eq!(repo.json(&["order", "show", "CHR-0001", "--json"])["status"], "queued");
    drop(held);
    repo.dispatch(&["--once"]);
    assert_eq!(repo.runs(), ["CHR-0001 BLD 1"]);
}

#[test]
fn a_crew_holds_its_worktree_until_its_last_process_is_gone() {
    let repo = TestRepo::initialized();
    let pids = repo.root().join("pids");
    // The crew's shell exits at once; its background child lives on in the group
    // until the runner kills the group, which frees the worktree.
    let crew = repo.crew("crew.sh", &format!("sleep 30 &\necho $! > '{}'", pids.display()));
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    repo.dispatch(&["--once"]);
    let background: i32 = std::fs::read_to_string(&pids).unwrap().trim().parse().unwrap();
    assert!(wait_until(Duration::from_secs(5), || !alive(background)), "the crew's leftover outlived the run");
    let lock = repo.path.join(".git/mso/locks/worktree-VOY-0001");
    drop(hold_flock(&lock));
}

/// Leave `<ref>.lock` as a writer killed inside its update would: git's lock
/// holding the value it was writing, and (`git_mso`) the owner record a
/// git-mso writer of this host keeps while it updates the ref.
fn leave_ref_lock(repo: &TestRepo, name: &str, git_mso: bool, age: Duration) -> std::path::PathBuf {
    let value = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    let lock = repo.path.join(".git").join(format!("{name}.lock"));
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, format!("{value}\n")).unwrap();
    let file = std::fs::File::options().write(true).open(&lock).unwrap();
    file.set_modified(std::time::SystemTime::now() - age).unwrap();
    if git_mso {
        let owner = repo.path.join(".git/mso/locks").join(name);
        std::fs::create_dir_all(owner.parent().unwrap()).unwrap();
        std::fs::write(owner, format!("updating 999999 testhost {value}\n")).unwrap();
    }
    lock
}

fn mso_logged(repo: &TestRepo, args: &[&str]) -> (String, String) {
    let out = repo
        .mso_cmd(&repo.path)
        .args(args)
        .env("MSO_LOG", "warn")
        .env("COUNT_FILE", repo.count_file())
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "git mso {args:?} failed: {stderr}\n{stdout}");
    (stdout.into_owned(), stderr.into_owned())
}

#[test]
fn a_ledger_lock_left_by_a_killed_git_mso_writer_is_removed_at_once() {
    let repo = TestRepo::initialized();
    // Fresh: only knowing whose it is lets the next writer remove it without waiting.
    let lock = leave_ref_lock(&repo, "refs/mso/ledger", true, Duration::ZERO);
    let (_, log) = mso_logged(&repo, &["order", "new", "--kind", "CHR", "--title", "after a crash"]);
    assert!(log.contains("removing a stale lock left by a git-mso writer that died"), "{log}");
    assert!(!lock.exists());
    assert_eq!(repo.json(&["order", "list", "--json"]).as_array().unwrap().len(), 1);
    repo.ok(&["fsck"]);
}

#[test]
fn a_lock_whose_owner_is_unknown_is_stale_once_it_is_five_seconds_old() {
    let repo = TestRepo::initialized();
    let lock = leave_ref_lock(&repo, "refs/mso/ledger", false, Duration::from_secs(6));
    let (_, log) = mso_logged(&repo, &["order", "new", "--kind", "CHR", "--title", "t"]);
    assert!(log.contains("removing a stale lock left by a writer that is gone"), "{log}");
    assert!(!lock.exists());
}

#[test]
fn a_live_lock_is_waited_for_and_the_error_names_the_lock_file_and_the_fix() {
    let repo = TestRepo::initialized();
    let tip = repo.tip();
    let new_order = || {
        repo.mso_cmd(&repo.path)
            .args(["order", "new", "--kind", "CHR", "--title", "t"])
            .env("MSO_LOCK_WAIT_MS", "300")
            .output()
            .unwrap()
    };
    // A fresh lock whose writer cannot be identified may be live: it is waited for, not removed.
    let lock = leave_ref_lock(&repo, "refs/mso/ledger", false, Duration::ZERO);
    let out = new_order();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("refs/mso/ledger is locked ({})", lock.display())), "{stderr}");
    assert!(
        stderr.contains("if no git or git-mso process is writing this repository, remove the lock file"),
        "{stderr}"
    );
    assert!(lock.exists(), "a live writer's lock was removed");
    std::fs::remove_file(&lock).unwrap();

    // A git-mso writer of this host inside its update holds the owner record: nothing is removed.
    let record = repo.path.join(".git/mso/locks/refs/mso/ledger");
    let owner = hold_flock(&record);
    let out = new_order();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("another git-mso writer holds {}", record.display())), "{stderr}");
    drop(owner);
    assert_eq!(repo.tip(), tip, "nothing was written");
}

#[test]
fn stale_notes_and_voyage_branch_locks_neither_slow_results_nor_use_up_attempts() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("crew.sh", "echo work > work.txt");
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["config", "max_attempts", "1"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let notes = leave_ref_lock(&repo, "refs/notes/mso", true, Duration::ZERO);
    let branch = leave_ref_lock(&repo, "refs/heads/voyage/VOY-0001", false, Duration::from_secs(60));
    let (out, _) = mso_logged(&repo, &["dispatch", "--once"]);
    assert!(out.contains("CHR-0001  BLD") && out.contains("succeeded"), "{out}");
    assert!(!notes.exists() && !branch.exists());
    assert_eq!(repo.json(&["order", "show", "CHR-0001", "--json"])["status"], "completed");
    let noted = repo.git(&["notes", "--ref=mso", "list"]);
    assert!(!noted.trim().is_empty(), "the result wrote no note");
}

#[test]
fn a_broken_evidence_ref_costs_the_evidence_not_the_note() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("crew.sh", "echo work > work.txt");
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    // The evidence ref names a blob: nothing can be added to it.
    let blob = repo.git_stdin(&["hash-object", "-w", "--stdin"], "not a notes commit\n");
    repo.git(&["update-ref", "refs/notes/mso-evidence", blob.trim()]);
    let out = repo.dispatch(&["--once"]);
    assert!(out.contains("CHR-0001  BLD") && out.contains("succeeded"), "{out}");
    assert!(out.contains("no evidence kept"), "{out}");
    let noted = repo.git(&["notes", "--ref=mso", "list"]);
    assert!(!noted.trim().is_empty(), "the result wrote no note: {out}");
}

#[test]
fn a_result_whose_notes_fail_after_the_ledger_moved_is_recorded_once_and_its_branch_kept() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("crew.sh", "echo work > work.txt");
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    // A run's result moves the ledger and its notes refs together; git
    // writes each ref's log before the ref, one ref after the other. The
    // evidence ref's log cannot be written (as on a full disk: a directory
    // with a file in it stands where it goes), so the ledger has moved when the write fails.
    let in_the_way = repo.path.join(".git/logs/refs/notes/mso-evidence");
    std::fs::create_dir_all(&in_the_way).unwrap();
    std::fs::write(in_the_way.join("in-the-way"), "").unwrap();
    let out = repo.dispatch(&["--once"]);
    let bld = out.lines().find(|l| l.starts_with("CHR-0001  BLD") && !l.contains("started")).unwrap_or_default();
    assert!(bld.contains("succeeded"), "the result was not taken as recorded: {out}");
    assert!(bld.contains("no evidence kept"), "{out}");
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["status"], "completed", "{out}");
    let results: Vec<_> = order["history"].as_array().unwrap().iter().filter(|e| e["type"] == "SUCCEEDED").collect();
    assert_eq!(results.len(), 2, "one result per role: {results:?}");
    // The branch holds the work the ledger records, and the note says who made it.
    let head = repo.git(&["rev-parse", "voyage/VOY-0001"]);
    assert_eq!(results[0]["head"].as_str().unwrap(), head.trim());
    assert_eq!(repo.git(&["show", "voyage/VOY-0001:work.txt"]).trim(), "work");
    let note = repo.git(&["notes", "--ref=mso", "show", head.trim()]);
    assert!(note.contains("CHR-0001"), "{note}");
    let fsck = repo.mso(&["fsck"]);
    assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stderr));
}

#[test]
fn a_notes_ref_another_writer_holds_costs_a_result_its_evidence_not_the_result_or_its_note() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("crew.sh", "echo work > work.txt");
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    // Held by a writer git-mso cannot identify, and fresh: not stale yet.
    let lock = leave_ref_lock(&repo, "refs/notes/mso-evidence", false, Duration::ZERO);
    let out = repo
        .mso_cmd(&repo.path)
        .args(["dispatch", "--once"])
        .env("MSO_LOCK_WAIT_MS", "300")
        .env("COUNT_FILE", repo.count_file())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    let bld = out.lines().find(|l| l.starts_with("CHR-0001  BLD") && !l.contains("started")).unwrap_or_default();
    assert!(bld.contains("succeeded → TST queued"), "{out}");
    assert!(bld.contains("no evidence kept") && bld.contains("mso-evidence.lock"), "{out}");
    assert!(lock.exists(), "another writer's fresh lock was removed");
    assert_eq!(repo.json(&["order", "show", "CHR-0001", "--json"])["status"], "completed");
    let head = repo.git(&["rev-parse", "voyage/VOY-0001"]);
    assert!(repo.git(&["notes", "--ref=mso", "show", head.trim()]).contains("CHR-0001"));
}

#[test]
#[allow(clippy::result_large_err)]
fn objects_of_a_transaction_that_did_not_land_are_written_again_by_its_retry() {
    use git_mso::core::{EventBody, OrderId};
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let mut store = git_mso::store::Store::discover(&repo.path).unwrap();
    store.pin_clock(crate::common::NOW_SECS);
    let id: OrderId = "CHR-0001".parse().unwrap();
    let cancel = |store: &git_mso::store::Store| {
        store
            .transact(|tx| tx.push(EventBody::Cancelled { order: id.clone(), reason: "not needed".into() }))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    // The ledger's log cannot be written: the objects are, the ref is not.
    let log = repo.path.join(".git/logs/refs/mso/ledger");
    let kept = std::fs::read(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    std::fs::create_dir_all(&log).unwrap();
    std::fs::write(log.join("in-the-way"), "").unwrap();
    assert!(cancel(&store).is_err());
    std::fs::remove_dir_all(&log).unwrap();
    std::fs::write(&log, kept).unwrap();
    // git drops what no ref needs; the same transaction, with the same
    // objects, lands now: they must be on disk again.
    repo.git(&["repack", "-a", "-d", "-q"]);
    repo.git(&["prune", "--expire=now"]);
    cancel(&store).unwrap();
    repo.git(&["fsck", "--no-dangling"]);
    let fsck = repo.mso(&["fsck"]);
    assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stderr));
    assert_eq!(repo.json(&["order", "show", "CHR-0001", "--json"])["status"], "cancelled");
}

/// Index files in `objects/pack`, and whether the ledger's tip is a loose object.
fn packs_and_loose_tip(repo: &TestRepo) -> (usize, bool) {
    let idx = std::fs::read_dir(repo.path.join(".git/objects/pack"))
        .map_or(0, |d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".idx")).count());
    let tip = repo.tip();
    (idx, repo.path.join(".git/objects").join(&tip[..2]).join(&tip[2..]).exists())
}

/// Wait for the background maintenance job, if one runs.
fn maintenance_done(repo: &TestRepo) {
    let path = repo.path.join(".git/mso/locks/maintenance");
    let free = || {
        use std::os::fd::AsRawFd;
        let Ok(file) = std::fs::File::options().write(true).open(&path) else { return true };
        // SAFETY: flock on a descriptor this test owns.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
    };
    assert!(wait_until(Duration::from_secs(60), free), "the maintenance job never ended");
}

/// A PATH whose first `git` runs `on_repack` (shell) when asked to repack,
/// then, unless that exited, the real git.
fn path_with_git_wrapping_repack(repo: &TestRepo, on_repack: &str) -> String {
    path_with_git_running_first(repo, &format!("if [ \"$1\" = repack ]; then {on_repack}; fi"))
}

/// A PATH whose first `git` runs `first` (shell, given git's arguments),
/// then, unless that exited, the real git.
fn path_with_git_running_first(repo: &TestRepo, first: &str) -> String {
    let real = std::process::Command::new("sh").args(["-c", "command -v git"]).output().unwrap();
    let real = String::from_utf8(real.stdout).unwrap().trim().to_string();
    let bin = repo.root().join("wrapping-git");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!("#!/bin/sh\n{first}\nexec '{real}' \"$@\"\n");
    std::fs::write(bin.join("git"), script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("git"), std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

#[test]
fn where_roll_ups_fail_packs_stop_piling_up_and_roll_ups_are_not_retried_every_append() {
    let repo = TestRepo::initialized();
    // Roll-ups past 4 packs; packs written while fewer than 13, so git's
    // own gc --auto (past 14) never repacks everything for the ledger.
    repo.git(&["config", "gc.autoPackLimit", "14"]);
    // A git whose repack always fails, as a git older than 2.32 fails --geometric.
    let attempts = repo.root().join("repacks");
    let path = path_with_git_wrapping_repack(&repo, &format!("echo attempt >> '{}'; exit 1", attempts.display()));
    let started = Instant::now();
    for i in 0..24 {
        let out = repo
            .mso_cmd(&repo.path)
            .args(["order", "new", "--kind", "CHR", "--title", &format!("order {i}")])
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let took = started.elapsed();
    maintenance_done(&repo);
    let (packs, loose_tip) = packs_and_loose_tip(&repo);
    assert!(packs <= 13, "packs piled up: {packs}");
    assert!(loose_tip, "past the cap, transactions write loose objects");
    // Tried, but after one that did nothing, at most once a minute, not on
    // each of the 20 appends past the limit.
    let tried = std::fs::read_to_string(&attempts).unwrap_or_default().lines().count();
    assert!(tried >= 1, "no roll-up was tried");
    assert!(tried as u64 <= 1 + took.as_secs() / 60, "{tried} roll-ups in {took:?}");
    repo.ok(&["fsck"]);
    assert_eq!(repo.json(&["order", "list", "--json"]).as_array().unwrap().len(), 24);
}

#[test]
fn repositories_git_may_not_repack_get_loose_objects_and_no_roll_ups() {
    // Nor where git's own limit leaves no room for packs between roll-ups.
    for (key, value) in
        [("extensions.preciousObjects", "true"), ("extensions.partialClone", "origin"), ("gc.autoPackLimit", "8")]
    {
        let repo = TestRepo::initialized();
        repo.git(&["config", "gc.autoPackLimit", "14"]);
        repo.git(&["config", "core.repositoryformatversion", "1"]);
        repo.git(&["config", key, value]);
        let (before, _) = packs_and_loose_tip(&repo);
        for i in 0..8 {
            repo.ok(&["order", "new", "--kind", "CHR", "--title", &format!("order {i}")]);
        }
        let (after, loose_tip) = packs_and_loose_tip(&repo);
        assert_eq!((after, loose_tip), (before, true), "{key}");
        assert!(!repo.path.join(".git/mso/locks/maintenance").exists(), "{key}: a roll-up was started");
        repo.ok(&["fsck"]);
    }
}

#[test]
fn kept_packs_are_not_counted_so_roll_ups_do_not_start_on_every_append() {
    let repo = TestRepo::initialized();
    repo.git(&["config", "gc.autoPackLimit", "14"]);
    // Twelve packs marked .keep: a geometric repack never touches them.
    let pack_dir = repo.path.join(".git/objects/pack");
    for i in 0..12 {
        let blob = repo.git_stdin(&["hash-object", "-w", "--stdin"], &format!("kept {i}\n"));
        let name = repo.git_stdin(&["pack-objects", "-q", pack_dir.join("pack").to_str().unwrap()], &blob);
        std::fs::write(pack_dir.join(format!("pack-{}.keep", name.trim())), "").unwrap();
    }
    // Nor are stray index files without their pack.
    for i in 0..12 {
        std::fs::write(pack_dir.join(format!("stray-{i}.idx")), "").unwrap();
        std::fs::write(pack_dir.join(format!("pack-{:040x}.idx", i)), "").unwrap();
    }
    for i in 0..3 {
        repo.ok(&["order", "new", "--kind", "CHR", "--title", &format!("order {i}")]);
    }
    assert!(!repo.path.join(".git/mso/locks/maintenance").exists(), "kept packs started a roll-up");
    let (packs, loose_tip) = packs_and_loose_tip(&repo);
    assert!(packs >= 12 + 12 + 3 && !loose_tip, "transactions still write packs: {packs}");
    repo.ok(&["fsck"]);
}

#[test]
fn git_mso_s_own_temporary_files_go_once_an_hour_old_and_nothing_else_does() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "first"]);
    let dir = repo.path.join(".git/objects/pack");
    // A writer killed between its two renames leaves a pack without an
    // index (git leaves its own so too); one killed earlier, its temporary
    // files.
    let orphan = dir.join(format!("pack-{}.pack", "ab".repeat(20)));
    let young = dir.join(format!("pack-{}.pack", "cd".repeat(20)));
    let tmp = dir.join("tmp_mso_Xy12ab");
    let gits = dir.join("tmp_pack_Ab12xy");
    for file in [&orphan, &young, &tmp, &gits] {
        std::fs::write(file, b"PACK").unwrap();
    }
    for file in [&orphan, &tmp, &gits] {
        let status = std::process::Command::new("touch").args(["-d", "2 hours ago"]).arg(file).status().unwrap();
        assert!(status.success());
    }
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "second"]);
    assert!(!tmp.exists(), "an hour-old temporary file stayed");
    // A pack without its index may be one git is indexing, or one to recover.
    assert!(orphan.exists() && young.exists(), "a pack without its index was removed");
    assert!(gits.exists(), "a temporary file of git's own was removed (a long fetch may be writing it)");
}

/// Replace the object file of `id` with the object `other`'s file: valid
/// zlib, a valid object, the wrong content for its name. (Transactions
/// write packs: they are made loose objects first, one file each.)
fn replace_object(repo: &TestRepo, id: &str, other: &str) {
    let packs = repo.path.join(".git/objects/pack");
    for entry in std::fs::read_dir(&packs).unwrap().flatten() {
        let pack = entry.path();
        if pack.extension().is_some_and(|e| e == "pack") {
            let moved = repo.root().join("unpacking.pack");
            std::fs::rename(&pack, &moved).unwrap();
            std::fs::remove_file(pack.with_extension("idx")).unwrap();
            let status = std::process::Command::new("git")
                .args(["unpack-objects", "-q"])
                .current_dir(&repo.path)
                .stdin(std::fs::File::open(&moved).unwrap())
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
    let path = |id: &str| repo.path.join(".git/objects").join(&id[..2]).join(&id[2..]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path(id), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::copy(path(other), path(id)).unwrap();
}

#[test]
fn fsck_and_every_read_refuse_a_state_file_whose_content_does_not_match_its_id() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "first"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "second"]);
    repo.ok(&["fsck"]);
    let files = repo.git(&["ls-tree", "-r", "--name-only", "refs/mso/ledger"]);
    let order_file = files.lines().find(|l| l.ends_with("CHR-0002.json")).expect("an order file").to_string();
    let blob = repo.git(&["rev-parse", &format!("refs/mso/ledger:{order_file}")]).trim().to_string();
    // Valid JSON of the right shape, under the wrong name: the other order.
    let other_file = files.lines().find(|l| l.ends_with("CHR-0001.json")).unwrap();
    let other = repo.git(&["rev-parse", &format!("refs/mso/ledger:{other_file}")]).trim().to_string();
    replace_object(&repo, &blob, &other);

    let err = repo.fails(&["fsck"], 1);
    assert!(err.contains(&order_file) && err.contains("is damaged"), "{err}");
    let err = repo.fails(&["order", "show", "CHR-0002"], 1);
    assert!(err.contains("is damaged"), "{err}");
}

#[test]
fn fsck_and_order_list_refuse_a_damaged_shard_index() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "first"]);
    let files = repo.git(&["ls-tree", "-r", "--name-only", "refs/mso/ledger"]);
    let index =
        files.lines().find(|l| l.starts_with("orders/") && l.ends_with("_index.jsonl")).expect("an index").to_string();
    let blob = repo.git(&["rev-parse", &format!("refs/mso/ledger:{index}")]).trim().to_string();
    let garbage = repo.path.join("garbage");
    std::fs::write(&garbage, "{\"not\": \"an index\"}").unwrap();
    let other = repo.git(&["hash-object", "-w", garbage.to_str().unwrap()]).trim().to_string();
    replace_object(&repo, &blob, &other);
    let err = repo.fails(&["fsck"], 1);
    assert!(err.contains(&index) && err.contains("is damaged"), "{err}");
    let err = repo.fails(&["order", "list"], 1);
    assert!(err.contains("is damaged"), "{err}");
}

#[test]
fn a_ledger_tip_holding_a_name_git_refuses_is_not_built_on() {
    // A ledger written before the server's hooks guarded it: its tip's root
    // holds `.git`. No transaction extends it; fsck says what is wrong.
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "first"]);
    let tip = repo.tip();
    let blob = repo.git_stdin(&["hash-object", "-w", "--stdin"], "planted\n").trim().to_string();
    let mut listing = repo.git(&["ls-tree", &tip]);
    listing.push_str(&format!("100644 blob {blob}\t.git\n"));
    let tree = repo.git_stdin(&["mktree"], &listing).trim().to_string();
    // The tip's own message: a ledger commit in every other way.
    let message = repo.git(&["log", "-1", "--format=%B", &tip]);
    let planted = repo.git_stdin(&["commit-tree", &tree, "-p", &tip], &message).trim().to_string();
    repo.git(&["update-ref", "refs/mso/ledger", &planted, &tip]);

    let err = repo.fails(&["order", "new", "--kind", "CHR", "--title", "second"], 1);
    assert!(err.contains(".git"), "the error names what is wrong: {err}");
    assert_eq!(repo.tip(), planted, "nothing was built on it");
    repo.fails(&["fsck"], 1);
}

#[test]
fn fsck_warns_when_the_ledger_was_rolled_back_under_the_dispatchers() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "first"]);
    let before = repo.tip();
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "second"]);
    let ahead = repo.tip();
    assert!(repo.path.join(".git/logs/refs/mso/ledger").exists(), "no reflog for the ledger");
    assert!(!repo.ok(&["fsck"]).contains("warning"));
    // An operator's bad day: the ledger is reset to an older commit.
    repo.git(&["update-ref", "refs/mso/ledger", &before]);
    let out = repo.ok(&["fsck"]);
    assert!(out.contains(&format!("warning: refs/mso/ledger moved from {} to {}", &ahead[..7], &before[..7])), "{out}");
    assert!(out.contains(&format!("git update-ref refs/mso/ledger {ahead}")), "{out}");
    let json = repo.json(&["fsck", "--json"]);
    assert_eq!(json["warnings"].as_array().unwrap().len(), 1, "{json}");
}

#[test]
fn appends_start_git_gc_once_loose_objects_pass_git_s_threshold_whatever_the_events() {
    let repo = TestRepo::initialized();
    repo.git(&["config", "gc.auto", "256"]);
    // git estimates loose objects from objects/17/: put two there.
    let mut planted = 0;
    for i in 0.. {
        let content = format!("filler {i}\n");
        let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::object::Kind::Blob, content.as_bytes()).unwrap();
        if id.to_string().starts_with("17") {
            let file = repo.root().join("filler");
            std::fs::write(&file, content).unwrap();
            repo.git(&["hash-object", "-w", file.to_str().unwrap()]);
            planted += 1;
            if planted == 2 {
                break;
            }
        }
    }
    // The commit git made is a loose object until gc packs it.
    let head = repo.git(&["rev-parse", "HEAD"]);
    let head = repo.path.join(".git/objects").join(&head[..2]).join(head[2..].trim());
    assert!(head.exists());
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "one order on a new voyage"]);
    assert!(wait_until(Duration::from_secs(30), || !head.exists()), "git gc --auto never ran");
    repo.ok(&["fsck"]);
}

#[test]
fn the_packs_transactions_write_are_rolled_up_in_the_background() {
    let repo = TestRepo::initialized();
    let packs = || packs_and_loose_tip(&repo).0;
    // Roll-ups start ten packs below git's own limit.
    repo.git(&["config", "gc.autoPackLimit", "30"]);
    // Every order on a new voyage is a transaction of its own: one pack each.
    for i in 0..60 {
        repo.ok(&["order", "new", "--kind", "CHR", "--title", &format!("order {i}")]);
    }
    assert!(repo.path.join(".git/mso/locks/maintenance").exists(), "no roll-up ever started");
    // Wait for the last one to finish: it holds the lock while it runs.
    maintenance_done(&repo);
    assert!(packs() <= 30, "packs were not rolled up: {}", packs());
    repo.ok(&["fsck"]);
    repo.git(&["fsck", "--no-progress", "--strict"]);
    assert_eq!(repo.json(&["order", "list", "--json"]).as_array().unwrap().len(), 60);
    // gc.auto=0 turns it off, as it turns off git's own: nothing would roll
    // packs up, so transactions write loose objects, as git does.
    repo.git(&["config", "gc.auto", "0"]);
    let before = packs();
    for i in 0..5 {
        repo.ok(&["order", "new", "--kind", "CHR", "--title", &format!("later {i}")]);
    }
    assert_eq!(packs(), before);
    let tip = repo.tip();
    assert!(repo.path.join(".git/objects").join(&tip[..2]).join(&tip[2..]).exists(), "the tip is not loose");
    repo.ok(&["fsck"]);
}

#[test]
fn a_copied_repository_dispatches_into_worktrees_of_its_own() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("crew.sh", "echo \"$MSO_ORDER\" >> work.txt");
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "first"]);
    repo.dispatch(&["--once"]);
    let original_worktree = repo.path.join(".git/mso/worktrees/VOY-0001");
    let original_head = repo.git_in(&original_worktree, &["rev-parse", "HEAD"]);
    let original_refs = repo.refs_in(&repo.path);

    let copy = repo.root().join("copy");
    let status = std::process::Command::new("cp").args(["-a"]).arg(&repo.path).arg(&copy).status().unwrap();
    assert!(status.success());
    let out = repo.mso_in(&copy, &["order", "new", "--kind", "CHR", "--title", "second", "--voyage", "VOY-0001"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = repo.dispatch_in(&copy, &["--once"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("CHR-0002  BLD"), "{}", String::from_utf8_lossy(&out.stdout));

    // The original is untouched; the copy has every commit its ledger names.
    assert_eq!(repo.git_in(&original_worktree, &["rev-parse", "HEAD"]), original_head);
    assert_eq!(repo.refs_in(&repo.path), original_refs);
    let work = repo.git_in(&copy, &["show", "voyage/VOY-0001:work.txt"]);
    assert_eq!(work.lines().collect::<Vec<_>>(), ["CHR-0001", "CHR-0002"]);
    repo.git_in(&copy, &["fsck", "--no-dangling"]);
    let out = repo.mso_in(&copy, &["fsck"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_order_whose_branch_cannot_be_created_is_still_reported_as_filed_once() {
    let repo = TestRepo::initialized();
    // The branch's reflog cannot be written (as on a full disk): a file
    // stands where its directory must go.
    std::fs::create_dir_all(repo.path.join(".git/logs/refs/heads")).unwrap();
    std::fs::write(repo.path.join(".git/logs/refs/heads/voyage"), "in the way").unwrap();
    let out = repo.mso(&["order", "new", "--kind", "CHR", "--title", "filed once"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the order was written but the command failed: {stderr}");
    assert!(stderr.contains("CHR-0001 is recorded, but voyage/VOY-0001 was not created"), "{stderr}");
    assert_eq!(repo.json(&["order", "list", "--json"]).as_array().unwrap().len(), 1);
    // Once the way is clear, dispatch creates the branch and runs the order.
    std::fs::remove_file(repo.path.join(".git/logs/refs/heads/voyage")).unwrap();
    let crew = repo.crew("crew.sh", "true");
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.dispatch(&["--once"]);
    assert_eq!(repo.json(&["order", "show", "CHR-0001", "--json"])["status"], "completed");
}

/// Claim an order as a runner of this host whose process is gone would have.
#[allow(clippy::result_large_err)]
fn claim_as_dead_runner(repo: &TestRepo, id: &str) {
    use git_mso::core::{EventBody, Lease, OrderId};
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let mut store = git_mso::store::Store::discover(&repo.path).unwrap();
    store.pin_clock(crate::common::NOW_SECS);
    let id: OrderId = id.parse().unwrap();
    store
        .transact(|tx| {
            let order = tx.order(&id)?.clone();
            let lease = Lease {
                runner: format!("testhost:{pid}"),
                host: "testhost".into(),
                pid,
                expires: tx.now() + 600,
                actor: "alice".into(),
            };
            tx.push(EventBody::Dispatched { order: id.clone(), role: order.role, attempt: order.attempt, lease })
        })
        .unwrap();
}

/// What a runner that died between moving the voyage branch and recording
/// its run leaves: the branch at its crew's commit (attempt 1 of `role` of
/// CHR-0001, writing `text` to `file`). Returns the commit.
fn commit_of_a_run_never_recorded(repo: &TestRepo, role: &str, file: &str, text: &str) -> String {
    repo.git(&["checkout", "-q", "--detach", "voyage/VOY-0001"]);
    std::fs::write(repo.path.join(file), format!("{text}\n")).unwrap();
    repo.git(&["add", file]);
    let message = format!("CHR-0001 {role}: t\n\nMso-Order: CHR-0001\nMso-Role: {role}\nMso-Attempt: 1");
    repo.git(&["commit", "-q", "-m", &message]);
    let orphan = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    repo.git(&["update-ref", "refs/heads/voyage/VOY-0001", &orphan]);
    repo.git(&["checkout", "-q", "main"]);
    orphan
}

#[test]
fn a_crew_commit_whose_run_was_never_recorded_is_set_aside_and_the_role_runs_again() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("crew.sh", "echo \"attempt $MSO_ATTEMPT\" > work.txt");
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    claim_as_dead_runner(&repo, "CHR-0001");
    // The dead runner had moved the branch to its crew's commit, and died
    // before it recorded the run.
    let orphan = commit_of_a_run_never_recorded(&repo, "BLD", "work.txt", "attempt 1, never recorded");

    let (_, log) = mso_logged(&repo, &["dispatch", "--once"]);
    assert!(log.contains("the commits of CHR-0001 BLD attempt 1, never recorded"), "{log}");
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["status"], "completed", "{order}");
    assert_eq!(repo.git(&["show", "voyage/VOY-0001:work.txt"]), "attempt 2\n");
    let history = repo.git(&["log", "--format=%H", "voyage/VOY-0001"]);
    assert!(!history.contains(&orphan), "the unrecorded commit stayed on the branch");
    repo.ok(&["fsck"]);
}

#[test]
fn a_last_attempt_whose_runner_died_before_recording_leaves_no_commit_on_the_branch() {
    // Its lease recovered, the order has failed for good: no later claim on
    // the voyage would set its crew's commit aside. Recovery does.
    let repo = TestRepo::initialized();
    repo.ok(&["config", "max_attempts", "1"]);
    repo.set_crews(&[("BLD", "true"), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    claim_as_dead_runner(&repo, "CHR-0001");
    let recorded = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    commit_of_a_run_never_recorded(&repo, "BLD", "work.txt", "attempt 1, never recorded");

    let (_, log) = mso_logged(&repo, &["dispatch", "--once"]);
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["status"], "failed", "{order}");
    assert!(log.contains("the commits of CHR-0001 BLD attempt 1, never recorded"), "{log}");
    assert_eq!(repo.git(&["rev-parse", "voyage/VOY-0001"]).trim(), recorded, "the unrecorded commit stayed");
    repo.ok(&["fsck"]);
}

#[test]
#[allow(clippy::result_large_err)]
fn a_dispatcher_killed_after_recovering_a_last_attempt_leaves_its_commit_to_the_next() {
    // The lease was recovered (the order failed for good) and that
    // dispatcher died before it set the crew's commit aside: the next
    // dispatcher does, though the voyage has nothing left to claim.
    let repo = TestRepo::initialized();
    repo.ok(&["config", "max_attempts", "1"]);
    repo.set_crews(&[("BLD", "true"), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    claim_as_dead_runner(&repo, "CHR-0001");
    let recorded = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    commit_of_a_run_never_recorded(&repo, "BLD", "work.txt", "attempt 1, never recorded");
    let mut store = git_mso::store::Store::discover(&repo.path).unwrap();
    store.pin_clock(crate::common::NOW_SECS);
    store
        .transact(|tx| {
            let order = tx.order(&"CHR-0001".parse().unwrap())?.clone();
            let runner = order.lease.as_ref().unwrap().runner.clone();
            tx.push(git_mso::core::EventBody::LeaseExpired { order: order.id.clone(), role: order.role, runner })
        })
        .unwrap();
    assert_eq!(repo.json(&["order", "show", "CHR-0001", "--json"])["status"], "failed");

    let (_, log) = mso_logged(&repo, &["dispatch", "--once"]);
    assert!(log.contains("the commits of CHR-0001 BLD attempt 1, never recorded"), "{log}");
    assert_eq!(repo.git(&["rev-parse", "voyage/VOY-0001"]).trim(), recorded, "the unrecorded commit stayed");
}

#[test]
fn the_commit_of_a_role_s_second_run_at_one_attempt_number_is_set_aside_when_its_runner_died() {
    // TST objects, the order goes back to BLD, and TST runs attempt 1
    // again; its runner dies. Its commit belongs to that second run of
    // attempt 1, not to the first one, twenty minutes earlier.
    let repo = TestRepo::initialized();
    let marks = repo.root().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let build = repo.crew("build.sh", "echo x >> x.txt");
    let test = repo.crew(
        "test.sh",
        &format!(
            "m='{}'\n\
             if [ ! -e \"$m/objected\" ]; then touch \"$m/objected\"; \
               echo '{{\"criteria\":[{{\"criterion\":1,\"verdict\":\"fail\",\"reason\":\"not yet\"}}]}}' > \"$MSO_RESULT_FILE\"; exit 0; fi\n\
             if [ ! -e \"$m/died\" ]; then touch \"$m/died\"\n\
               p=$$; while [ \"$(cat /proc/$p/comm)\" != git-mso ]; do p=$(awk '/^PPid/{{print $2}}' /proc/$p/status); done\n\
               kill -9 \"$(awk '/^PPid/{{print $2}}' /proc/$p/status)\"; sleep 5; fi\n\
             echo '{{\"criteria\":[{{\"criterion\":1,\"verdict\":\"pass\",\"reason\":\"ok\"}}]}}' > \"$MSO_RESULT_FILE\"",
            marks.display()
        ),
    );
    repo.set_crews(&[("BLD", &build), ("TST", &test)]);
    repo.ok(&["config", "retry_backoff_secs", "0"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t", "--ac", "it works"]);
    // Twenty minutes ago: BLD, TST objects, BLD again, TST attempt 1 again,
    // whose runner is killed by its crew.
    let earlier = (crate::common::NOW_SECS - 1200).to_string();
    let killed = repo
        .mso_cmd(&repo.path)
        .args(["dispatch", "--once"])
        .env("MSO_NOW", &earlier)
        .env("COUNT_FILE", repo.count_file())
        .output()
        .unwrap();
    assert!(
        !killed.status.success(),
        "the dispatcher was to die: {}{}",
        String::from_utf8_lossy(&killed.stdout),
        String::from_utf8_lossy(&killed.stderr)
    );
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(
        (order["status"].as_str(), order["role"].as_str(), order["attempt"].as_u64()),
        (Some("running"), Some("TST"), Some(1)),
        "{}",
        String::from_utf8_lossy(&killed.stdout)
    );
    // It had committed and moved the branch, and died before recording.
    let recorded = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    let orphan = commit_of_a_run_never_recorded(&repo, "TST", "tst.txt", "second run of attempt 1, never recorded");

    let (_, log) = mso_logged(&repo, &["dispatch", "--once"]);
    assert!(log.contains("the commits of CHR-0001 TST attempt 1, never recorded"), "{log}");
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["status"], "completed", "{order}");
    let history = repo.git(&["log", "--format=%H", "voyage/VOY-0001"]);
    assert!(!history.contains(&orphan) && history.contains(&recorded), "{history}");
}

#[test]
fn a_person_s_commit_past_the_recorded_head_is_held_for_review_not_set_aside() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("crew.sh", "echo work > work.txt");
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    repo.git(&["checkout", "-q", "voyage/VOY-0001"]);
    repo.git(&["commit", "-q", "--allow-empty", "-m", "a human was here"]);
    repo.git(&["checkout", "-q", "main"]);
    let out = repo.dispatch(&["--once"]);
    assert!(out.contains("CHR-0001  held for review"), "{out}");
    assert!(repo.runs().is_empty());
}

#[test]
fn a_crew_starts_with_default_signals_and_holds_its_worktree_while_it_runs() {
    let repo = TestRepo::initialized();
    let seen = repo.root().join("seen");
    // SIGPIPE ignored (as in every Rust program) would make `yes | head -1` spin for ever.
    let crew = repo.crew(
        "crew.sh",
        &format!(
            "grep -E '^(SigIgn|SigBlk)' /proc/self/status > '{seen}'\n\
             yes | head -1 >/dev/null\n\
             lock=\"$(git rev-parse --git-common-dir)/mso/locks/worktree-$MSO_VOYAGE\"\n\
             if flock -n \"$lock\" true; then echo free >> '{seen}'; else echo held >> '{seen}'; fi",
            seen = seen.display()
        ),
    );
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    repo.dispatch(&["--once"]);
    let seen = std::fs::read_to_string(&seen).unwrap();
    let mask = |name: &str| {
        let line = seen.lines().find_map(|l| l.strip_prefix(name)).unwrap_or_else(|| panic!("{seen}"));
        u64::from_str_radix(line.trim(), 16).unwrap()
    };
    assert_eq!(mask("SigBlk:"), 0, "the crew started with signals blocked: {seen}");
    // Signals 1-31 at their defaults (32 and up belong to the C library).
    assert_eq!(mask("SigIgn:") & 0x7fff_ffff, 0, "the crew started with signals ignored: {seen}");
    assert!(seen.ends_with("held\n"), "the worktree was not held while the crew ran: {seen}");
}

#[test]
fn a_dispatcher_whose_reader_went_away_finishes_its_runs() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("crew.sh", "sleep 0.2\necho work > work.txt");
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "one"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "two"]);
    let mut dispatch = repo.mso_cmd(&repo.path);
    dispatch.args(["dispatch", "--once", "--max-parallel", "2"]).env("COUNT_FILE", repo.count_file());
    let out = crate::common::output_with_reader_gone(dispatch);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for id in ["CHR-0001", "CHR-0002"] {
        assert_eq!(repo.json(&["order", "show", id, "--json"])["status"], "completed", "{id}");
    }
}

#[test]
fn a_tip_commit_replaced_by_an_older_one_is_an_error_not_an_older_state() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "first"]);
    let older = repo.tip();
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "second"]);
    let tip = repo.tip();
    replace_object(&repo, &tip, &older);
    let err = repo.fails(&["order", "list"], 1);
    assert!(err.contains("is damaged"), "{err}");
    let err = repo.fails(&["order", "new", "--kind", "CHR", "--title", "third"], 1);
    assert!(err.contains("is damaged"), "{err}");
}

#[test]
fn a_bare_repository_keeps_the_ledger_s_reflog_so_fsck_can_see_a_rollback() {
    let repo = TestRepo::initialized();
    let bare = repo.root().join("bare.git");
    repo.git(&["init", "-q", "--bare", bare.to_str().unwrap()]);
    repo.git_in(&bare, &["config", "user.name", "alice"]);
    repo.git_in(&bare, &["config", "user.email", "alice@example.com"]);
    let init = repo.mso_in(&bare, &["init"]);
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    assert!(bare.join("logs/refs/mso/ledger").exists(), "no reflog for the ledger in a bare repository");
}

#[test]
fn a_low_open_file_limit_is_raised_or_named_never_mistaken_for_a_crew_that_cannot_run() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("crew.sh", "echo work > work.txt");
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "soft limit"]);
    let bin = assert_cmd::cargo::cargo_bin("git-mso");
    let dispatch = |limit: &str| {
        let program = format!("ulimit {limit}; exec '{}' dispatch --once", bin.display());
        let mut sh = std::process::Command::new("sh");
        sh.args(["-c", &program]).current_dir(&repo.path);
        crate::common::isolate(&mut sh, &repo.home);
        sh.env("COUNT_FILE", repo.count_file());
        sh.output().unwrap()
    };
    // A low soft limit is raised: the crew runs.
    let out = dispatch("-Sn 64");
    assert!(String::from_utf8_lossy(&out.stdout).contains("succeeded"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(repo.json(&["order", "show", "CHR-0001", "--json"])["status"], "completed");
    // A hard limit too low is named, and the order is only retried, not failed for good.
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "hard limit"]);
    let out = dispatch("-n 64");
    let order = repo.json(&["order", "show", "CHR-0002", "--json"]);
    assert_eq!(order["status"], "queued", "{}\n{order}", String::from_utf8_lossy(&out.stdout));
    assert!(order["last_error"].as_str().unwrap().contains("open-file limit is 64"), "{order}");
}

#[test]
fn a_crew_like_commit_made_long_after_its_attempt_is_held_for_review_not_set_aside() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("crew.sh", "echo work > work.txt");
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    claim_as_dead_runner(&repo, "CHR-0001");
    // A person's cherry-pick a month later keeps the crew's trailers.
    repo.git(&["checkout", "-q", "--detach", "voyage/VOY-0001"]);
    let mut commit = std::process::Command::new("git");
    commit
        .args([
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "CHR-0001 BLD: t\n\nMso-Order: CHR-0001\nMso-Role: BLD\nMso-Attempt: 1",
        ])
        .current_dir(&repo.path);
    crate::common::isolate(&mut commit, &repo.home);
    commit.env("GIT_COMMITTER_DATE", "2026-12-25T12:00:00Z");
    assert!(commit.status().unwrap().success());
    let picked = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    repo.git(&["update-ref", "refs/heads/voyage/VOY-0001", &picked]);
    repo.git(&["checkout", "-q", "main"]);
    let out = repo.dispatch(&["--once"]);
    assert!(out.contains("CHR-0001  held for review"), "{out}");
    assert_eq!(repo.git(&["rev-parse", "voyage/VOY-0001"]).trim(), picked, "the person's commit was taken off");
}

#[test]
fn a_signer_that_quits_without_reading_is_a_failure_never_a_quiet_success() {
    let repo = TestRepo::initialized();
    let signer = repo.root().join("quit-signer.sh");
    std::fs::write(&signer, "#!/bin/sh\necho 'no such key' >&2\nexit 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&signer, std::fs::Permissions::from_mode(0o755)).unwrap();
    repo.git(&["config", "mso.sign", "true"]);
    repo.git(&["config", "user.signingKey", "/nonexistent/key"]);
    repo.git(&["config", "gpg.ssh.program", signer.to_str().unwrap()]);
    let tip = repo.tip();
    // The write to a signer that already quit can break its pipe: never read as "the reader went away".
    for _ in 0..10 {
        let err = repo.fails(&["order", "new", "--kind", "CHR", "--title", "t"], 1);
        assert!(err.contains("no such key"), "{err}");
    }
    assert_eq!(repo.tip(), tip);
}

/// Whether setsid(1) is here (saying so when it is not).
fn has_setsid() -> bool {
    let here =
        std::process::Command::new("sh").args(["-c", "command -v setsid"]).output().is_ok_and(|o| o.status.success());
    if !here {
        eprintln!("skipped: setsid(1) is not installed here");
    }
    here
}

#[test]
fn a_crew_s_detached_daemon_dies_with_the_crew_on_exit_and_on_timeout() {
    if !has_setsid() {
        return;
    }
    let repo = TestRepo::initialized();
    // A daemon as build tools start them: a session and group of its own,
    // out of the crew's process group, its pid left in a file.
    let daemon = |pids: &Path| {
        format!("setsid sh -c 'echo $$ > \"{}\"; exec sleep 60' </dev/null >/dev/null 2>&1 &\n", pids.display())
    };
    let exits = repo.root().join("exits.pid");
    let times_out = repo.root().join("times-out.pid");
    let wait_for = |pids: &Path| format!("while [ ! -s '{}' ]; do sleep 0.01; done\n", pids.display());
    let bld = repo.crew("bld.sh", &format!("{}{}", daemon(&exits), wait_for(&exits)));
    let tst = repo.crew("tst.sh", &format!("{}{}sleep 30", daemon(&times_out), wait_for(&times_out)));
    repo.set_crews(&[("BLD", &bld), ("TST", &tst)]);
    repo.git(&["config", "mso.crew.TST.timeout", "2"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let out = repo.dispatch(&["--once"]);
    assert!(out.contains("BLD  ") && out.contains("succeeded"), "{out}");
    assert!(out.contains("timed out after 2 s"), "{out}");
    for pids in [&exits, &times_out] {
        let pid: i32 = std::fs::read_to_string(pids).unwrap().trim().parse().unwrap();
        assert!(wait_until(Duration::from_secs(5), || !alive(pid)), "{} outlived its crew", pids.display());
    }
}

#[test]
fn a_crew_s_descendants_die_however_deep_leave_no_zombies_and_cannot_stop_its_supervisor() {
    if !has_setsid() {
        return;
    }
    let repo = TestRepo::initialized();
    let leaf = repo.root().join("leaf.pid");
    let zombies = repo.root().join("zombies");
    let chain = repo.crew(
        "chain.sh",
        &format!(
            "if [ \"$1\" -gt 0 ]; then sh \"$0\" $(($1 - 1)); else echo $$ > '{}'; exec sleep 60; fi",
            leaf.display()
        ),
    );
    // BLD: a detached chain of 300 shells, the last one sleeping. TST: 50
    // short-lived orphans the supervisor (the crew's process group leader)
    // adopts, counted as zombies a moment later; then a SIGTERM to the
    // supervisor, as a script's `kill 0` would send it, which must not end
    // the run.
    let bld = repo.crew(
        "bld.sh",
        &format!(
            "setsid sh '{}' 300 </dev/null >/dev/null 2>&1 &\nwhile [ ! -s '{}' ]; do sleep 0.01; done",
            chain,
            leaf.display()
        ),
    );
    let tst = repo.crew(
        "tst.sh",
        &format!(
            "supervisor=$(cut -d' ' -f5 /proc/$$/stat)\n\
             for i in $(seq 50); do ( sleep 0.01 & ); done\nsleep 0.5\n\
             grep -l \"^PPid:[[:space:]]*$supervisor$\" /proc/[0-9]*/status 2>/dev/null | xargs grep -l '^State:[[:space:]]*Z' 2>/dev/null | wc -l > '{}'\n\
             kill -TERM $supervisor\nsleep 0.2\nexit 0",
            zombies.display()
        ),
    );
    repo.set_crews(&[("BLD", &bld), ("TST", &tst)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let out = repo.dispatch(&["--once"]);
    let pid: i32 = std::fs::read_to_string(&leaf).unwrap().trim().parse().unwrap();
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)), "the end of a 300-deep chain outlived its crew");
    assert_eq!(std::fs::read_to_string(&zombies).unwrap().trim(), "0", "adopted orphans were left as zombies");
    assert!(out.contains("TST") && out.contains("succeeded → completed"), "{out}");
}

#[test]
fn a_crew_commit_that_lost_its_fan_out_directory_to_a_roll_up_is_made_again_not_failed() {
    // `git prune-packed` (every roll-up runs it) removes empty fan-out
    // directories; a commit whose object file's directory went twice
    // fails so, having written nothing. A git that fails the first commit
    // of each run that way: the run still succeeds at its first attempt.
    let repo = TestRepo::initialized();
    let crew = repo.crew("crew.sh", "echo \"$MSO_ROLE\" >> work.txt");
    repo.set_crews(&[("BLD", &crew), ("TST", &crew)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let lost = repo.root().join("lost");
    let path = path_with_git_running_first(
        &repo,
        &format!(
            "for role in BLD TST; do case \" $* \" in *\" commit -q \"*\"CHR-0001 $role:\"*) \
             if [ ! -e '{lost}'/$role ]; then mkdir -p '{lost}'; touch '{lost}'/$role; \
             echo 'error: unable to create temporary file: No such file or directory' >&2; \
             echo 'fatal: failed to write commit object' >&2; exit 128; fi;; esac; done",
            lost = lost.display()
        ),
    );
    let out = repo
        .mso_cmd(&repo.path)
        .args(["dispatch", "--once"])
        .env("PATH", &path)
        .env("COUNT_FILE", repo.count_file())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(lost.join("BLD").exists() && lost.join("TST").exists(), "the racing git was not used: {stdout}");
    assert_eq!(repo.runs(), ["CHR-0001 BLD 1", "CHR-0001 TST 1"], "{stdout}");
    assert_eq!(repo.json(&["order", "show", "CHR-0001", "--json"])["status"], "completed", "{stdout}");
}

#[test]
fn background_roll_ups_run_nicer_than_the_command_that_started_them_never_less_nice() {
    let repo = TestRepo::initialized();
    // Roll-ups past 4 packs (as in the test of failing roll-ups).
    repo.git(&["config", "gc.autoPackLimit", "14"]);
    // A git that notes the niceness each roll-up runs at.
    let seen = repo.root().join("niceness");
    let path = path_with_git_wrapping_repack(&repo, &format!("cut -d' ' -f19 /proc/$$/stat >> '{}'", seen.display()));
    let mso = assert_cmd::cargo::cargo_bin("git-mso");
    let mut order = 0;
    let mut niceness_at = |nice: &str| -> Vec<String> {
        let _ = std::fs::remove_file(&seen);
        for _ in 0..6 {
            order += 1;
            let mut cmd = std::process::Command::new("nice");
            cmd.args(["-n", nice]).arg(&mso).args(["order", "new", "--kind", "CHR", "--title", &format!("o{order}")]);
            common::isolate(&mut cmd, &repo.home);
            let out = cmd.current_dir(&repo.path).env("PATH", &path).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        maintenance_done(&repo);
        std::fs::read_to_string(&seen).unwrap_or_default().lines().map(str::to_string).collect()
    };
    // `nice -n` adds to the niceness this test runs at.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let own: i32 = stat.rsplit(')').next().unwrap().split_whitespace().nth(16).unwrap().parse().unwrap();
    let expect = |by: i32| ((own + by).min(19) + 10).min(19).to_string();
    // Ten more than the command's own niceness...
    let seen = niceness_at("5");
    assert!(!seen.is_empty(), "no roll-up ran");
    assert!(seen.iter().all(|n| *n == expect(5)), "a roll-up started at niceness {} ran at {seen:?}", own + 5);
    // ...and at most 19, never below the command's (a runner started at 15
    // whose roll-ups were set to 10 outright would have them outrank it).
    let seen = niceness_at("15");
    assert!(!seen.is_empty(), "no roll-up ran");
    assert!(seen.iter().all(|n| *n == expect(15)), "a roll-up started at niceness {} ran at {seen:?}", own + 15);
}
