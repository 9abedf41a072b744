//! Runners that die, and runners that are asked to stop.

#![allow(clippy::result_large_err)]

use crate::common;

use crate::common::TestRepo;
use git_mso::core::{EventBody, Lease, OrderId};
use git_mso::store::Store;

/// Claim an order as some other runner would, with the given lease.
fn claim_as(repo: &TestRepo, id: &str, lease: Lease) {
    let store = Store::discover(&repo.path).unwrap();
    let id: OrderId = id.parse().unwrap();
    store
        .transact(|tx| {
            let order = tx.order(&id)?.clone();
            tx.push(EventBody::Dispatched {
                order: id.clone(),
                role: order.role,
                attempt: order.attempt,
                lease: lease.clone(),
            })
        })
        .unwrap();
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn a_dead_runner_on_this_host_is_recovered_and_the_role_runs_again() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("ok.sh", "true");
    repo.set_crews(&[("BLD", &crew), ("TST", &crew)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    // A runner on this host whose process has exited.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    claim_as(
        &repo,
        "CHR-0001",
        Lease {
            runner: format!("testhost:{pid}"),
            host: "testhost".into(),
            pid,
            expires: now() + 600,
            actor: "alice".into(),
        },
    );
    let out = repo.dispatch(&["--once"]);
    assert!(out.contains(&format!("CHR-0001  BLD  recovered: the lease of testhost:{pid} expired")), "{out}");
    assert_eq!(repo.runs(), ["CHR-0001 BLD 2", "CHR-0001 TST 1"]);
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["status"], "completed");
    assert!(order["history"].as_array().unwrap().iter().any(|e| e["type"] == "LEASE_EXPIRED"));
    repo.ok(&["fsck"]);
}

#[test]
fn a_live_runner_elsewhere_keeps_its_claim_until_the_lease_expires() {
    let repo = TestRepo::initialized();
    let crew = repo.crew("ok.sh", "true");
    repo.set_crews(&[("BLD", &crew), ("TST", &crew)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let expires = now() + 600;
    let lease = Lease { runner: "far:1".into(), host: "far-away".into(), pid: 1, expires, actor: "alice".into() };
    claim_as(&repo, "CHR-0001", lease);
    // Before expiry: the order stays with its runner.
    let mut early = repo.mso_cmd(&repo.path);
    early.args(["dispatch", "--once"]).env("COUNT_FILE", repo.count_file()).env("MSO_NOW", (expires - 10).to_string());
    let out = early.output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "nothing to dispatch");
    assert!(repo.runs().is_empty());
    // After expiry: recovered and run here.
    let mut late = repo.mso_cmd(&repo.path);
    late.args(["dispatch", "--once"]).env("COUNT_FILE", repo.count_file()).env("MSO_NOW", (expires + 1).to_string());
    let out = late.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("recovered: the lease of far:1 expired"), "{stdout}");
    assert_eq!(repo.runs(), ["CHR-0001 BLD 2", "CHR-0001 TST 1"]);
}

#[test]
fn sigterm_on_watch_lets_the_running_crew_finish_and_leaves_nothing_claimed() {
    let repo = TestRepo::initialized();
    let started = repo.root().join("started");
    let crew = repo.crew("slow.sh", &format!("touch '{}'\nsleep 1\necho done > done.txt", started.display()));
    repo.set_crews(&[("BLD", &crew), ("TST", &crew)]);
    let mut cmd = repo.mso_cmd(&repo.path);
    cmd.args(["dispatch", "--watch", "--poll", "0.1"]).env("COUNT_FILE", repo.count_file());
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // --watch picks up work filed after it started.
    std::thread::sleep(std::time::Duration::from_millis(300));
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    assert!(
        common::wait_for_file(&started, std::time::Duration::from_secs(5)),
        "the watching dispatcher never started the crew"
    );
    // SAFETY: signalling a child process we own.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("CHR-0001  BLD  Shipwright  succeeded"), "the crew finished: {stdout}");
    assert!(!stdout.contains("TST  Bosun       started"), "no new work after the signal: {stdout}");
    // It said it was idle before the order came, and acknowledged the signal.
    assert!(stdout.starts_with("idle: no work ready; watching (Ctrl-C stops)\n"), "{stdout}");
    assert!(
        stdout.contains("stopping: taking no new work; 1 running crew(s) finish first (Ctrl-C again stops them)"),
        "{stdout}"
    );
    assert!(!stdout.contains('\u{1b}'), "a status line off a terminal: {stdout:?}");
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!((order["role"].as_str(), order["status"].as_str()), (Some("TST"), Some("queued")));
    assert_eq!(repo.runs(), ["CHR-0001 BLD 1"]);
}

#[test]
fn a_long_crew_has_its_lease_renewed_while_it_runs() {
    let repo = TestRepo::initialized();
    repo.ok(&["config", "lease_ttl_secs", "10"]);
    let crew = repo.crew("long.sh", "sleep 5");
    repo.set_crews(&[("BLD", &crew)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t", "--roles", "BLD"]);
    // Real time for this dispatcher, so the lease really runs low.
    let mut cmd = repo.mso_cmd(&repo.path);
    cmd.args(["dispatch", "--once"]).env("COUNT_FILE", repo.count_file()).env_remove("MSO_NOW");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = repo.json(&["log", "CHR-0001", "--json"]);
    let renewals: Vec<i64> = log
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["events"].as_array().unwrap().clone())
        .filter(|e| e["type"] == "LEASE_RENEWED")
        .map(|e| e["expires"].as_i64().unwrap())
        .collect();
    assert!(!renewals.is_empty(), "no LEASE_RENEWED while a 5 s crew ran under a 10 s lease");
    assert_eq!(repo.json(&["order", "show", "CHR-0001", "--json"])["status"], "completed");
    repo.ok(&["fsck"]);
}

#[test]
fn a_second_signal_stops_running_crews_and_releases_their_orders() {
    let repo = TestRepo::initialized();
    let started = repo.root().join("started");
    let finished = repo.root().join("finished");
    let crew =
        repo.crew("slow.sh", &format!("touch '{}'\nsleep 30\ntouch '{}'", started.display(), finished.display()));
    repo.set_crews(&[("BLD", &crew)]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let mut cmd = repo.mso_cmd(&repo.path);
    cmd.args(["dispatch", "--once"]).env("COUNT_FILE", repo.count_file());
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    assert!(common::wait_for_file(&started, std::time::Duration::from_secs(5)), "the crew never started");
    for _ in 0..2 {
        // SAFETY: signalling a child process we own.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGINT);
        }
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains(
            "CHR-0001  BLD  Shipwright  stopped: the runner was stopped while the crew ran → queued again (attempt 2"
        ),
        "{stdout}"
    );
    assert!(!finished.exists(), "the crew ran on after the second signal");
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(
        (order["status"].as_str(), order["last_error"].as_str()),
        (Some("queued"), Some("the runner was stopped while the crew ran"))
    );
    repo.ok(&["fsck"]);
}

#[test]
fn on_a_terminal_a_watching_dispatcher_shows_what_runs_for_how_long_and_its_last_log_line() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: script(1), to give the command a terminal, is not installed here");
        return;
    }
    let repo = TestRepo::initialized();
    let crew = repo.crew("chatty.sh", "echo 'compiling widgets'\nsleep 2\necho done > done.txt");
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let bin = assert_cmd::cargo::cargo_bin("git-mso");
    // A terminal for the dispatcher; SIGINT after a while, as a person's Ctrl-C.
    let program = format!("timeout -s INT 1.5 '{}' dispatch --watch --poll 0.2", bin.display());
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &program, "/dev/null"]).current_dir(&repo.path);
    crate::common::isolate(&mut script, &repo.home);
    script.env("COUNT_FILE", repo.count_file()).env("TERM", "xterm");
    let out = script.output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("\r\u{1b}[K"), "no status line: {screen:?}");
    assert!(screen.contains("CHR-0001 BLD ") && screen.contains("compiling widgets"), "{screen:?}");
    assert!(screen.contains("stopping: taking no new work"), "{screen:?}");
    assert!(screen.contains("CHR-0001  BLD  Shipwright  succeeded"), "{screen:?}");
}
