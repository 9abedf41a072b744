//! The fault harness: writers and dispatchers SIGKILLed at random points
//! (during object writes, between a ledger commit and its notes, while a
//! crew runs), then the checks a trusting user would make. A short form
//! runs with the suite; `MSO_LONG_TESTS=1` runs 200 kills, and
//! `MSO_FAULT_KILLS` / `MSO_FAULT_SEED` choose the count and the seed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::TestRepo;

/// A small deterministic generator, so a failing seed can be run again.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Kill `child` with SIGKILL after `after` unless it ended first; its output if it ended by itself.
fn kill_after(mut child: Child, after: Duration) -> Option<std::process::Output> {
    let start = std::time::Instant::now();
    while start.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if child.try_wait().unwrap().is_some() {
        return Some(child.wait_with_output().unwrap());
    }
    child.kill().unwrap();
    child.wait().unwrap();
    None
}

/// Every `*.lock` file git or git-mso could leave in the repository.
fn lock_files(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !path.ends_with("objects") {
            lock_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "lock") {
            out.push(path.display().to_string());
        }
    }
}

/// A crew that works for `seconds` and, while it runs, holds an flock of its
/// order and role: a second live crew of the same role cannot take it and
/// says so in the returned anomalies file.
fn watched_crew(repo: &TestRepo, seconds: &str) -> (String, std::path::PathBuf) {
    let locks = repo.root().join("crew-locks");
    std::fs::create_dir_all(&locks).unwrap();
    let anomalies = repo.root().join("anomalies");
    let crew = repo.crew(
        "crew.sh",
        &format!(
            "exec 9>'{locks}'/\"$MSO_ORDER-$MSO_ROLE\"\n\
             flock -n 9 || echo \"two live crews of $MSO_ORDER $MSO_ROLE\" >> '{anomalies}'\n\
             echo \"$MSO_ROLE $MSO_ATTEMPT\" >> \"work-$MSO_ORDER.txt\"\n\
             sleep {seconds}",
            locks = locks.display(),
            anomalies = anomalies.display()
        ),
    );
    (crew, anomalies)
}

/// Voyage branch commits in `dir` made by a run (they carry git-mso's
/// trailers) that no SUCCEEDED of `succeeded` (order, role, attempt, head) names.
fn unrecorded_voyage_commits(
    repo: &TestRepo,
    dir: &Path,
    succeeded: &BTreeSet<(String, String, String, String)>,
) -> Vec<String> {
    let mut stray = Vec::new();
    let branches = repo.git_in(dir, &["for-each-ref", "--format=%(refname)", "refs/heads/voyage/"]);
    for branch in branches.lines() {
        let log = repo.git_in(
            dir,
            &[
                "log",
                "--format=%H %(trailers:key=Mso-Order,valueonly,separator=) %(trailers:key=Mso-Role,valueonly,separator=) %(trailers:key=Mso-Attempt,valueonly,separator=)",
                branch,
            ],
        );
        for line in log.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let [commit, order, role, attempt] = parts[..]
                && !succeeded.contains(&(order.into(), role.into(), attempt.into(), commit.into()))
            {
                stray.push(line.to_string());
            }
        }
    }
    stray
}

/// Every (order, role, attempt, head) a SUCCEEDED records, read in `dir`.
fn recorded_successes(repo: &TestRepo, dir: &Path) -> BTreeSet<(String, String, String, String)> {
    let mut succeeded = BTreeSet::new();
    let list = repo.mso_in(dir, &["order", "list", "--json"]);
    let orders: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    for summary in orders.as_array().unwrap() {
        let id = summary["id"].as_str().unwrap();
        let shown = repo.mso_in(dir, &["order", "show", id, "--json"]);
        let order: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
        for event in order["history"].as_array().unwrap().iter().filter(|e| e["type"] == "SUCCEEDED") {
            succeeded.insert((
                id.to_string(),
                event["role"].as_str().unwrap().into(),
                event["attempt"].to_string(),
                event["head"].as_str().unwrap().into(),
            ));
        }
    }
    succeeded
}

#[test]
fn writers_and_dispatchers_killed_at_random_lose_no_acknowledged_write_and_recover_everything() {
    let long = std::env::var_os("MSO_LONG_TESTS").is_some();
    let kills = env_number("MSO_FAULT_KILLS").unwrap_or(if long { 200 } else { 24 });
    let seed = env_number("MSO_FAULT_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    let mut rng = Rng(seed);
    let repo = TestRepo::initialized();
    let max = 20;
    repo.ok(&["config", "max_attempts", &max.to_string()]);
    repo.ok(&["config", "retry_backoff_secs", "0"]);
    let (crew, anomalies) = watched_crew(&repo, "0.3");
    repo.set_crews(&[("BLD", &crew), ("TST", &crew)]);

    let mut acknowledged: BTreeMap<String, String> = BTreeMap::new();
    let (mut writers_killed, mut dispatchers_killed) = (0u64, 0u64);
    let mut kill_count = 0;
    let mut round = 0;
    while kill_count < kills {
        round += 1;
        let title = format!("order of round {round}");
        let mut writer = repo.mso_cmd(&repo.path);
        writer.args(["order", "new", "--kind", "CHR", "--title", &title]);
        // Half the orders join the last voyage, so attempts meet in one worktree.
        if round % 2 == 0 && !acknowledged.is_empty() {
            writer.args(["--voyage", "VOY-0001"]);
        }
        writer.stdout(Stdio::piped()).stderr(Stdio::null());
        let mut dispatcher = repo.mso_cmd(&repo.path);
        dispatcher.args(["dispatch", "--once", "--max-parallel", "2"]).env("COUNT_FILE", repo.count_file());
        dispatcher.stdout(Stdio::null()).stderr(Stdio::null());
        let (w, d) = (writer.spawn().unwrap(), dispatcher.spawn().unwrap());
        let (w_after, d_after) = (rng.below(150), rng.below(400));
        let d_handle = std::thread::spawn(move || kill_after(d, Duration::from_millis(d_after)));
        match kill_after(w, Duration::from_millis(w_after)) {
            Some(out) if out.status.success() => {
                let id = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_string();
                acknowledged.insert(id, title);
            }
            Some(_) => {}
            None => {
                writers_killed += 1;
                kill_count += 1;
            }
        }
        if d_handle.join().unwrap().is_none() {
            dispatchers_killed += 1;
            kill_count += 1;
        }
    }

    // Recovery is automatic: plain dispatches finish every order.
    let mut passes = 0;
    loop {
        passes += 1;
        let out = repo.dispatch_in(&repo.path, &["--once", "--max-parallel", "2"]);
        assert!(out.status.success(), "a dispatch after the kills failed: {}", String::from_utf8_lossy(&out.stderr));
        let status = repo.json(&["status", "--json"]);
        let open: u64 = status["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| ["queued", "running", "review"].iter().map(|k| r[k].as_u64().unwrap()).sum::<u64>())
            .sum();
        if open == 0 {
            break;
        }
        assert!(passes < 50, "orders never reached a final state: {status}");
    }

    let fsck = repo.mso(&["fsck"]);
    assert!(fsck.status.success(), "git mso fsck: {}", String::from_utf8_lossy(&fsck.stderr));
    repo.git(&["fsck", "--no-progress"]);
    let orders = repo.json(&["order", "list", "--json"]);
    let orders = orders.as_array().unwrap();
    let titles: BTreeMap<String, String> = orders
        .iter()
        .map(|o| (o["id"].as_str().unwrap().to_string(), o["title"].as_str().unwrap().to_string()))
        .collect();
    for (id, title) in &acknowledged {
        assert_eq!(titles.get(id), Some(title), "acknowledged order {id} was lost");
    }
    // A lock a killed writer left on a ref nobody wrote since is still
    // there; it must be one the next writer removes at once: its owner
    // record names a dead git-mso writer and the value the lock holds.
    let git_dir = repo.path.join(".git");
    let mut left = Vec::new();
    lock_files(&git_dir, &mut left);
    for lock in &left {
        let name = lock.strip_prefix(&format!("{}/", git_dir.display())).unwrap().strip_suffix(".lock").unwrap();
        let record = std::fs::read_to_string(git_dir.join("mso/locks").join(name)).unwrap_or_default();
        let held = std::fs::read_to_string(lock).unwrap_or_default();
        let words: Vec<&str> = record.split_whitespace().collect();
        let recoverable = matches!(words[..], ["updating", pid, "testhost", value]
            if (value == held.trim() || held.is_empty()) && !std::path::Path::new(&format!("/proc/{pid}")).exists());
        assert!(recoverable, "a lock no writer would recover: {lock} (record {record:?}, lock {held:?})");
    }
    // And the next writer does.
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "after the storm"]);
    let mut after = Vec::new();
    lock_files(&git_dir, &mut after);
    assert!(!after.iter().any(|l| l.ends_with("refs/mso/ledger.lock")), "the ledger lock was not recovered");
    let anomalies_seen = std::fs::read_to_string(&anomalies).unwrap_or_default();

    // Every voyage commit comes from an attempt the ledger records as successful.
    let mut succeeded: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    let mut lease_expired = 0;
    let mut failed_for_good = 0;
    for id in titles.keys() {
        let order = repo.json(&["order", "show", id, "--json"]);
        if order["title"] == "after the storm" {
            continue;
        }
        // Final means completed, or failed for good because its runners were
        // killed max_attempts times in a row (a lease recovered each time).
        let killed_every_time =
            order["status"] == "failed" && order["last_error"].as_str().is_some_and(|e| e.starts_with("lease of"));
        assert!(order["status"] == "completed" || killed_every_time, "{id} did not reach a final state: {order}");
        failed_for_good += usize::from(killed_every_time);
        for event in order["history"].as_array().unwrap() {
            match event["type"].as_str().unwrap() {
                "SUCCEEDED" => {
                    succeeded.insert((
                        id.clone(),
                        event["role"].as_str().unwrap().into(),
                        event["attempt"].to_string(),
                        event["head"].as_str().unwrap().into(),
                    ));
                }
                "LEASE_EXPIRED" => lease_expired += 1,
                _ => {}
            }
        }
    }
    let stray = unrecorded_voyage_commits(&repo, &repo.path, &succeeded);
    let runs = repo.runs();
    let distinct: BTreeSet<String> =
        runs.iter().map(|r| r.rsplit_once(' ').map_or(r.clone(), |(or, _)| or.to_string())).collect();
    eprintln!(
        "\nfault harness (seed {seed}):\n\
         | kills | writers killed | dispatchers killed | acknowledged orders | crew runs | re-runs | leases recovered | failed after {max} kills | anomalies |\n\
         |------:|---------------:|-------------------:|--------------------:|----------:|--------:|-----------------:|------:|----------:|\n\
         | {kills} | {writers_killed} | {dispatchers_killed} | {} | {} | {} | {lease_expired} | {failed_for_good} | {} |",
        acknowledged.len(),
        runs.len(),
        runs.len() - distinct.len(),
        anomalies_seen.lines().count() + stray.len(),
    );
    assert!(anomalies_seen.is_empty(), "two live crews of one role (seed {seed}): {anomalies_seen}");
    assert!(stray.is_empty(), "voyage commits from attempts not recorded as successful (seed {seed}): {stray:?}");
}

/// The long form's remote half: three runners over a `git daemon` that is
/// killed and restarted under them. Runs with `MSO_LONG_TESTS` set.
#[test]
fn remote_runners_ride_out_a_git_daemon_killed_and_restarted() {
    if std::env::var_os("MSO_LONG_TESTS").is_none() {
        eprintln!("skipped: the long form runs with MSO_LONG_TESTS=1");
        return;
    }
    let orders = 12;
    let seed = TestRepo::initialized();
    seed.ok(&["config", "kinds.CHR.gates", "[]"]);
    for i in 0..orders {
        seed.ok(&["order", "new", "--kind", "CHR", "--title", &format!("order {i}")]);
    }
    let server = crate::common::hooked_server(&seed);
    seed.ok(&["sync"]);
    let mut daemon = Some(crate::common::Daemon::start(seed.root(), &seed.home));
    let port = daemon.as_ref().unwrap().port;
    let url = daemon.as_ref().unwrap().url("server.git");
    let (crew, anomalies) = watched_crew(&seed, "0.2");
    let runners: Vec<Child> = (0..3)
        .map(|i| {
            let dir = seed.root().join(format!("runner{i}"));
            seed.git(&["clone", "-q", &url, dir.to_str().unwrap()]);
            seed.git_in(&dir, &["config", "user.name", "alice"]);
            seed.git_in(&dir, &["config", "user.email", "alice@example.com"]);
            for role in ["BLD", "TST"] {
                seed.git_in(&dir, &["config", &format!("mso.crew.{role}.command"), &crew]);
            }
            let mut cmd = seed.mso_cmd(&dir);
            cmd.args(["dispatch", "--watch", "--remote", "origin", "--poll", "0.2"])
                .env("COUNT_FILE", seed.count_file())
                .env("MSO_RUNNER", format!("runner{i}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            cmd.spawn().unwrap()
        })
        .collect();
    let completed = || {
        let out = seed.mso_in(&server, &["status", "--json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).map_or(0, |s| s["completed"].as_u64().unwrap_or(0))
    };
    // Outages of one to two seconds, until the work is done.
    let start = std::time::Instant::now();
    let mut outages = 0;
    while completed() < orders && start.elapsed() < Duration::from_secs(240) {
        std::thread::sleep(Duration::from_millis(700));
        drop(daemon.take());
        outages += 1;
        std::thread::sleep(Duration::from_millis(1000 + 100 * (outages % 10)));
        daemon = Some(crate::common::Daemon::start_on(seed.root(), &seed.home, port));
    }
    let done = completed();
    for mut runner in runners {
        let exited = runner.try_wait().unwrap();
        assert!(exited.is_none(), "a runner exited during an outage: {exited:?}");
        runner.kill().unwrap();
        runner.wait().unwrap();
    }
    assert_eq!(done, orders, "the runners did not finish the work through {outages} outages");
    let fsck = seed.mso_in(&server, &["fsck"]);
    assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stderr));
    let anomalies_seen = std::fs::read_to_string(&anomalies).unwrap_or_default();
    let runs = seed.runs();
    eprintln!(
        "\nremote runners through a killed git daemon:\n\
         | outages | orders | crew runs | anomalies |\n|--------:|-------:|----------:|----------:|\n\
         | {outages} | {orders} | {} | {} |",
        runs.len(),
        anomalies_seen.lines().count()
    );
    assert!(anomalies_seen.is_empty(), "{anomalies_seen}");
    let stray = unrecorded_voyage_commits(&seed, &server, &recorded_successes(&seed, &server));
    assert!(stray.is_empty(), "server voyage commits from attempts not recorded as successful: {stray:?}");
}
