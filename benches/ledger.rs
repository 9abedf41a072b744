//! `cargo bench --bench ledger` (or scripts/bench.sh): git-mso against the
//! git CLI plumbing baseline, measured side by side in the same run.
//!
//! Prints a table; asserts nothing of the timings (shared machines are
//! noisy). `cargo bench --bench ledger -- dispatch` runs the dispatch rows alone.

#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use git_mso::core::{EventBody, OrderId, VoyageId};
use git_mso::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_git-mso");

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").args(args).current_dir(dir).output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn git_stdin(dir: &Path, args: &[&str], input: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("git runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

fn mso(dir: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(BIN).args(args).current_dir(dir).stdout(Stdio::null()).output().expect("git-mso runs");
    let took = start.elapsed();
    assert!(out.status.success(), "git-mso {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    took
}

/// What one `dispatch --once` of 20 two-role orders on one voyage, with
/// crews that do nothing, took per role.
struct Dispatched {
    /// Each role's cycle (claim, run, result), from one result line the
    /// dispatcher prints to the next.
    roles: Vec<Duration>,
    /// The whole command's time, per role: with its start, its first
    /// worktree and the roll-ups it started on the way.
    mean: Duration,
    /// The same until the background roll-ups it started have ended too.
    settled: Duration,
}

fn dispatch_per_role(repo: &Path) -> Dispatched {
    use std::io::BufRead;
    git(repo, &["config", "mso.crew.BLD.command", "true"]);
    git(repo, &["config", "mso.crew.TST.command", "true"]);
    const ORDERS: usize = 20;
    for i in 0..ORDERS {
        mso(repo, &["order", "new", "--kind", "CHR", "--title", &format!("noop {i}"), "--voyage", "VOY-0001"]);
    }
    maintained(repo);
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(["dispatch", "--once"])
        .current_dir(repo)
        .stdout(Stdio::piped())
        .spawn()
        .expect("git-mso runs");
    // Each result line is written as the result lands (stdout is line-buffered).
    let results: Vec<Instant> = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .filter(|line| line.contains(" succeeded "))
        .map(|_| Instant::now())
        .collect();
    assert!(child.wait().unwrap().success(), "dispatch --once failed");
    let took = start.elapsed();
    assert_eq!(results.len(), 2 * ORDERS, "every role ran and succeeded");
    maintained(repo);
    let roles = results.windows(2).map(|w| w[1] - w[0]).collect();
    Dispatched { roles, mean: took / (2 * ORDERS) as u32, settled: start.elapsed() / (2 * ORDERS) as u32 }
}

/// What the file system charges for a file created, written and renamed
/// over another, as a ref update does with its lock and a pack with its
/// temporary files (median of 200, in `dir`).
fn file_created_and_renamed(dir: &Path) -> Duration {
    use std::io::Write;
    let dir = dir.join("file-system-probe");
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("ref");
    median(
        (0..200)
            .map(|i| {
                let lock = dir.join(format!("ref-{i}.lock"));
                let start = Instant::now();
                let mut file = std::fs::File::create_new(&lock).unwrap();
                file.write_all(&[b'0'; 41]).unwrap();
                drop(file);
                std::fs::rename(&lock, &target).unwrap();
                start.elapsed()
            })
            .collect(),
    )
}

/// A crew that does nothing (`sh -c true`), started and reaped as a run
/// does it: under its supervisor, its output to a log.
fn crew_alone(dir: &Path) -> Duration {
    let log = dir.join("crew.log");
    let limits = git_mso::runtime::crew::Limits { timeout: None, idle: None };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let start = Instant::now();
    let exit = git_mso::runtime::crew::run("true", dir, &[], &log, limits, &stop, None).expect("the crew runs");
    assert!(exit.success());
    start.elapsed()
}

/// Wait until no background maintenance job (a roll-up of packs, gc) of
/// git-mso runs in `repo`: each holds this flock while it runs.
fn maintained(repo: &Path) {
    let path = repo.join(".git/mso/locks/maintenance");
    let Ok(file) = std::fs::File::options().write(true).open(path) else { return };
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own; it waits for the job to end.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0);
}

/// A repository as `new_repo` makes it, with git's automatic maintenance
/// on: what commands run by a user meet (transactions write packs, rolled
/// up in the background).
fn maintained_repo(root: &Path, name: &str) -> PathBuf {
    let path = new_repo(root, name);
    git(&path, &["config", "--unset", "gc.auto"]);
    path
}

/// `count` commits on a side branch, each with a note on refs/notes/mso,
/// in one fast-import, packed.
fn add_notes(repo: &Path, count: usize) {
    let mut stream = String::new();
    for i in 1..=count {
        let message = format!("side {i}\n");
        stream.push_str(&format!(
            "commit refs/heads/side\nmark :{i}\ncommitter b <b@example.com> {} +0000\ndata {}\n{message}",
            1_700_000_000 + i,
            message.len()
        ));
    }
    stream.push_str("commit refs/notes/mso\ncommitter b <b@example.com> 1800000000 +0000\ndata 6\nnotes\n");
    for i in 1..=count {
        let note = format!("Mso-Order: FTR-0001\nMso-Role: BLD\nMso-Run: {i}\n");
        stream.push_str(&format!("N inline :{i}\ndata {}\n{note}", note.len()));
    }
    git_stdin(repo, &["fast-import", "--quiet"], stream.as_bytes());
    git(repo, &["gc", "-q"]);
}

fn new_repo(root: &Path, name: &str) -> PathBuf {
    let path = root.join(name);
    std::fs::create_dir_all(&path).unwrap();
    git(&path, &["init", "-q", "-b", "main"]);
    git(&path, &["config", "user.name", "bench"]);
    git(&path, &["config", "user.email", "bench@example.com"]);
    // No background gc: it would race the bench's own `git gc` and blur its timings.
    git(&path, &["config", "gc.auto", "0"]);
    git(&path, &["commit", "-q", "--allow-empty", "-m", "first"]);
    mso(&path, &["init"]);
    mso(&path, &["voyage", "new"]);
    path
}

fn create(store: &Store, count: usize) {
    store
        .transact(|tx| {
            let kind: git_mso::core::Kind = "FTR".parse().unwrap();
            for _ in 0..count {
                let id = tx.counters().next_order(&kind)?;
                tx.push(EventBody::OrderCreated {
                    order: id.clone(),
                    title: format!("bench order {id}"),
                    brief: String::new(),
                    acceptance: vec!["it works".into()],
                    roles: vec!["PLN".parse().unwrap(), "BLD".parse().unwrap(), "TST".parse().unwrap()],
                    gates: vec!["PLN".parse().unwrap()],
                    voyage: VoyageId::new(1).expect("VOY-0001"),
                    budget_micros: None,
                })?;
            }
            Ok(())
        })
        .expect("append");
}

/// Cancel every order, 1,000 to a transaction (the most one holds).
fn cancel_all(store: &Store) {
    let tip = store.require_tip().unwrap();
    let ids: Vec<OrderId> = store.summaries(&tip).unwrap().into_iter().map(|s| s.id).collect();
    for chunk in ids.chunks(1000) {
        store
            .transact(|tx| {
                for id in chunk {
                    tx.push(EventBody::Cancelled { order: id.clone(), reason: "bench".into() })?;
                }
                Ok(())
            })
            .expect("cancel");
    }
}

/// Take every order of `ids` through one claim and one recovered lease, as
/// one transaction per 500 orders: 2 events per order.
fn claim_and_expire(store: &Store, ids: &[OrderId]) {
    use git_mso::core::Lease;
    for chunk in ids.chunks(500) {
        store
            .transact(|tx| {
                let actor = tx.actor().to_string();
                for id in chunk {
                    let order = tx.order(id)?.clone();
                    let lease = Lease {
                        runner: "bench:1".into(),
                        host: "bench".into(),
                        pid: 1,
                        expires: tx.now() + 600,
                        actor: actor.clone(),
                    };
                    tx.push(EventBody::Dispatched {
                        order: id.clone(),
                        role: order.role.clone(),
                        attempt: order.attempt,
                        lease,
                    })?;
                    tx.push(EventBody::LeaseExpired { order: id.clone(), role: order.role, runner: "bench:1".into() })?;
                }
                Ok(())
            })
            .expect("claim and expire");
    }
}

/// Bytes of loose objects and of packs, from `git count-objects -v`.
fn object_bytes(dir: &Path) -> (u64, u64) {
    let text = git(dir, &["count-objects", "-v"]);
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0) * 1024
    };
    (field("size:"), field("size-pack:"))
}

/// Append one order with git CLI plumbing: the same files git-mso writes
/// (order, shard index, stats), trees rebuilt level by level
/// with ls-tree + mktree, then commit-tree and update-ref with the old value.
fn plumbing_append(dir: &Path, files: &[(String, Vec<u8>)], message: &str) {
    let old = git(dir, &["rev-parse", "refs/mso/ledger"]).trim().to_string();
    let tmp = dir.join(".git/bench-blob");
    let mut blob_ids = Vec::new();
    for (_, bytes) in files {
        std::fs::write(&tmp, bytes).unwrap();
        blob_ids.push(git(dir, &["hash-object", "-w", tmp.to_str().unwrap()]).trim().to_string());
    }
    // Rebuild each changed directory bottom-up.
    let mut changed: std::collections::BTreeMap<String, Vec<(String, String, String)>> = Default::default();
    for ((path, _), id) in files.iter().zip(&blob_ids) {
        let (dir_path, name) = path.rsplit_once('/').map_or(("", path.as_str()), |(d, n)| (d, n));
        changed.entry(dir_path.to_string()).or_default().push(("blob".into(), name.into(), id.clone()));
    }
    let mut dirs: Vec<String> = changed.keys().cloned().collect();
    // Make sure every ancestor is rebuilt too.
    for d in dirs.clone() {
        let mut p = d.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            dirs.push(parent.to_string());
            p = parent;
        }
        dirs.push(String::new());
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(if d.is_empty() { 0 } else { d.matches('/').count() + 1 }));
    dirs.dedup();
    let mut root_tree = String::new();
    for d in dirs {
        let spec = if d.is_empty() { format!("{old}^{{tree}}") } else { format!("{old}:{d}") };
        let listing = Command::new("git").args(["ls-tree", &spec]).current_dir(dir).output().unwrap();
        let mut entries: std::collections::BTreeMap<String, String> = Default::default();
        for line in String::from_utf8_lossy(&listing.stdout).lines() {
            let (meta, name) = line.split_once('\t').unwrap();
            entries.insert(name.to_string(), meta.to_string());
        }
        for (kind, name, id) in changed.remove(&d).unwrap_or_default() {
            let mode = if kind == "tree" { "040000" } else { "100644" };
            entries.insert(name, format!("{mode} {kind} {id}"));
        }
        let input: String = entries.iter().map(|(n, m)| format!("{m}\t{n}\n")).collect();
        let tree = git_stdin(dir, &["mktree"], input.as_bytes()).trim().to_string();
        match d.rsplit_once('/') {
            Some((parent, name)) => changed.entry(parent.into()).or_default().push(("tree".into(), name.into(), tree)),
            None if !d.is_empty() => changed.entry(String::new()).or_default().push(("tree".into(), d.clone(), tree)),
            None => root_tree = tree,
        }
    }
    let commit = git_stdin(dir, &["commit-tree", &root_tree, "-p", &old], message.as_bytes()).trim().to_string();
    git(dir, &["update-ref", "refs/mso/ledger", &commit, &old]);
}

/// How long the pre-receive hook takes to validate `commits` new ledger
/// commits of `per_commit` orders each (median of 3): the objects are pushed
/// for real, the ref set back, and the hook run on the update.
fn hook_time(root: &Path, commits: usize, per_commit: usize) -> Duration {
    let name = format!("hook-{commits}x{per_commit}");
    let client = new_repo(root, &format!("{name}-client"));
    let server = root.join(format!("{name}.git"));
    git(root, &["init", "-q", "--bare", server.to_str().unwrap()]);
    let server_url = server.to_str().unwrap();
    git(&client, &["push", "-q", server_url, "main", "voyage/VOY-0001", "refs/mso/ledger:refs/mso/ledger"]);
    let old = git(&client, &["rev-parse", "refs/mso/ledger"]).trim().to_string();
    let store = Store::discover(&client).unwrap();
    for _ in 0..commits {
        create(&store, per_commit);
    }
    let new = git(&client, &["rev-parse", "refs/mso/ledger"]).trim().to_string();
    git(&client, &["push", "-q", server_url, "refs/mso/ledger:refs/mso/ledger"]);
    git(&server, &["update-ref", "refs/mso/ledger", &old]);
    median(
        (0..3)
            .map(|_| {
                let start = Instant::now();
                let mut child = Command::new(BIN)
                    .args(["hook", "pre-receive"])
                    .current_dir(&server)
                    .stdin(Stdio::piped())
                    .spawn()
                    .unwrap();
                use std::io::Write as _;
                child.stdin.take().unwrap().write_all(format!("{old} {new} refs/mso/ledger\n").as_bytes()).unwrap();
                assert!(child.wait().unwrap().success(), "the hook refused an honest push");
                start.elapsed()
            })
            .collect(),
    )
}

/// The median time of git-issue's `new -s` (its create), when `MSO_GIT_ISSUE`
/// names its `git-issue.sh` (scripts/bench.sh fetches it when it can):
/// the tool git-mso's filing is measured against.
fn git_issue(root: &Path) -> Option<Duration> {
    let script = PathBuf::from(std::env::var_os("MSO_GIT_ISSUE")?);
    let repo = root.join("git-issue");
    std::fs::create_dir_all(&repo).ok()?;
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.name", "bench"]);
    git(&repo, &["config", "user.email", "bench@example.com"]);
    git(&repo, &["commit", "-q", "--allow-empty", "-m", "first"]);
    let run = |args: &[&str]| -> Option<Duration> {
        let start = Instant::now();
        let out = Command::new("sh").arg(&script).args(args).current_dir(&repo).output().ok()?;
        out.status.success().then(|| start.elapsed())
    };
    run(&["init"])?;
    let times: Option<Vec<Duration>> = (0..30).map(|i| run(&["new", "-s", &format!("issue {i}")])).collect();
    times.map(median)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let root = tempfile::tempdir().unwrap();
    let mut rows: Vec<Row> = Vec::new();
    // `cargo bench --bench ledger -- dispatch`: the dispatch rows alone.
    let dispatch_only = std::env::args().skip(1).any(|a| a == "dispatch");

    // --- dispatcher overhead per role, no-op crew ---
    // Measured first: the sections below delete files by the ten thousand
    // (git gc after loose writes), and on some file systems (ext4 without
    // a journal) creating a file then costs more for minutes.
    let sh = median(
        (0..20)
            .map(|_| {
                let s = Instant::now();
                Command::new("sh").args(["-c", "true"]).status().unwrap();
                s.elapsed()
            })
            .collect(),
    );
    let crew = median((0..20).map(|_| crew_alone(root.path())).collect());
    // Three dispatches, each in a repository of its own. The typical role
    // is the median of their 117 role cycles: a busy machine, or a roll-up
    // of packs in the background, lengthens a few of them.
    let runs: Vec<Dispatched> =
        (0..3).map(|i| dispatch_per_role(&maintained_repo(root.path(), &format!("dispatch-{i}")))).collect();
    let role = median(runs.iter().flat_map(|r| r.roles.iter().copied()).collect());
    let mean = median(runs.iter().map(|r| r.mean).collect());
    let settled = median(runs.iter().map(|r| r.settled).collect());
    rows.push((
        "dispatch one role, no-op crew (claim → run → result)".into(),
        ms(role),
        "-".into(),
        format!(
            "the median role; {} per role over the whole command, {} until its roll-ups end",
            ms(mean),
            ms(settled)
        ),
    ));
    rows.push((
        "dispatcher overhead per role (the role less its crew)".into(),
        ms(role.saturating_sub(crew)),
        "-".into(),
        format!("the crew: {} (sh -c true under its supervisor; {} from a shell)", ms(crew), ms(sh)),
    ));
    let file = file_created_and_renamed(root.path());
    rows.push((
        "a file created and renamed over another, this file system".into(),
        format!("{:.0} µs", file.as_secs_f64() * 1e6),
        "-".into(),
        "as a ref update's lock is; a role creates about 11 (4 ref locks, 2 packs of 2 files, \
         its run's directory, brief and log)"
            .into(),
    ));
    if dispatch_only {
        print_table(root.path(), rows);
        return;
    }
    // The same with 20,000 commits noted already: a run's notes must not
    // cost more as the notes grow.
    let with_notes = median(
        (0..3)
            .map(|i| {
                let noted = maintained_repo(root.path(), &format!("dispatch-noted-{i}"));
                add_notes(&noted, 20_000);
                median(dispatch_per_role(&noted).roles)
            })
            .collect(),
    );
    rows.push((
        "dispatch one role, 20,000 notes already".into(),
        ms(with_notes),
        "-".into(),
        format!("{} without notes", ms(role)),
    ));
    // And with 10,000 orders already in the ledger (cancelled, as most of a
    // large ledger's orders are ended): every pass reads every summary.
    let bigs: Vec<PathBuf> = (0..3)
        .map(|i| {
            let big = maintained_repo(root.path(), &format!("dispatch-big-{i}"));
            let store = Store::discover(&big).unwrap();
            for _ in 0..10 {
                create(&store, 1000);
            }
            cancel_all(&store);
            maintained(&big);
            big
        })
        .collect();
    // Building them wrote, rolled up and deleted packs by the hundred; on a
    // file system that skips inodes freed in the last minute when it
    // creates a file (ext4 without a journal), every file created right
    // after costs several times more: measured a minute later.
    std::thread::sleep(Duration::from_secs(60));
    let with_orders = median(bigs.iter().map(|big| median(dispatch_per_role(big).roles)).collect());
    rows.push((
        "dispatch one role, 10,000 orders already".into(),
        ms(with_orders),
        "-".into(),
        format!("{} on a new ledger; measured a minute after building the ledgers", ms(role)),
    ));

    // --- append one event ---
    let ours = new_repo(root.path(), "ours");
    let store = Store::discover(&ours).unwrap();
    create(&store, 200); // a ledger that is not empty
    const N: usize = 200;
    let start = Instant::now();
    for _ in 0..N {
        create(&store, 1);
    }
    let lib_per_event = start.elapsed() / N as u32;

    let cli: Vec<Duration> =
        (0..30).map(|_| mso(&ours, &["order", "new", "--title", "cli bench", "--voyage", "VOY-0001"])).collect();
    let cli_per_event = median(cli);

    // Baseline: the same files written with plumbing onto a copy of the same ledger.
    let base = new_repo(root.path(), "plumbing");
    create(&Store::discover(&base).unwrap(), 200);
    let store_b = Store::discover(&base).unwrap();
    const M: usize = 30;
    let mut plumbing = Duration::ZERO;
    for i in 0..M {
        // Compute the new file contents in-process (not timed): git-mso's own bytes.
        let tip = store_b.require_tip().unwrap();
        let id: OrderId = format!("FTR-{:04}", 201 + i).parse().unwrap();
        let mut order = store_b.order(&tip, &"FTR-0001".parse().unwrap()).unwrap().unwrap();
        order.id = id.clone();
        let mut event = order.history[0].clone();
        if let EventBody::OrderCreated { order: o, .. } = &mut event.body {
            *o = id.clone();
        }
        // A canonical message, so the next round still reads this tip as a ledger.
        let message = git_mso::core::message::format(&[event]);
        let mut summaries = store_b.shard_summaries(&tip, &id).unwrap();
        git_mso::core::layout::upsert_summary(&mut summaries, order.summary());
        let files = vec![
            (git_mso::core::layout::order_path(&id), git_mso::core::layout::order_blob(&order)),
            (git_mso::core::layout::index_path(&id), git_mso::core::layout::index_blob(&summaries)),
            ("stats.json".to_string(), git_mso::core::layout::to_blob(&store_b.tally(&tip).unwrap())),
        ];
        let start = Instant::now();
        plumbing_append(&base, &files, &message);
        plumbing += start.elapsed();
    }
    let plumbing_per_event = plumbing / M as u32;
    let ratio = |d: Duration| format!("{:.1}x", plumbing_per_event.as_secs_f64() / d.as_secs_f64());
    rows.push((
        "append 1 event (library, in-process)".into(),
        ms(lib_per_event),
        ms(plumbing_per_event),
        ratio(lib_per_event),
    ));
    rows.push((
        "append 1 event (`git-mso order new` process)".into(),
        ms(cli_per_event),
        ms(plumbing_per_event),
        ratio(cli_per_event),
    ));

    // --- filing an order on a new voyage, against git-issue's `new` ---
    let fresh = maintained_repo(root.path(), "new-voyage");
    let new_voyage =
        median((0..30).map(|i| mso(&fresh, &["order", "new", "--title", &format!("new voyage {i}")])).collect());
    let (issue, issue_note) = match git_issue(root.path()) {
        Some(issue) => (ms(issue), format!("{:.1}x git-issue new", issue.as_secs_f64() / new_voyage.as_secs_f64())),
        None => ("-".into(), "git-issue not found: set MSO_GIT_ISSUE to its git-issue.sh".into()),
    };
    rows.push(("`git-mso order new` on a new voyage (process)".into(), ms(new_voyage), issue, issue_note));

    let start = Instant::now();
    create(&store, 1000);
    let batch = start.elapsed();
    rows.push((
        "append 1,000 events in one transaction (per event)".into(),
        ms(batch / 1000),
        ms(plumbing_per_event),
        ratio(batch / 1000),
    ));

    // --- reads at 1,000 and 10,000 orders ---
    for n in [1_000usize, 10_000] {
        let repo = new_repo(root.path(), &format!("read{n}"));
        let store = Store::discover(&repo).unwrap();
        for _ in 0..n / 1000 {
            create(&store, 1000);
        }
        git(&repo, &["gc", "-q"]);
        let list = median((0..10).map(|_| mso(&repo, &["order", "list"])).collect());
        let status = median((0..10).map(|_| mso(&repo, &["status"])).collect());
        let show = median((0..10).map(|_| mso(&repo, &["order", "show", "FTR-0500"])).collect());
        let git_baseline = median(
            (0..10)
                .map(|_| {
                    let s = Instant::now();
                    git(&repo, &["show", "refs/mso/ledger:stats.json"]);
                    s.elapsed()
                })
                .collect(),
        );
        rows.push((format!("order list, {n} orders"), ms(list), "-".into(), "target < 100 ms".into()));
        rows.push((
            format!("status, {n} orders"),
            ms(status),
            ms(git_baseline),
            "baseline: git show stats.json".into(),
        ));
        rows.push((format!("order show, {n} orders"), ms(show), "-".into(), "one blob".into()));
    }

    // --- scale: 10,000 orders, 100,000 events ---
    {
        let repo = new_repo(root.path(), "scale");
        mso(&repo, &["config", "max_attempts", "20"]);
        let store = Store::discover(&repo).unwrap();
        // Appends on an empty ledger, for comparison.
        let empty_repo = new_repo(root.path(), "scale-empty");
        let empty = Store::discover(&empty_repo).unwrap();
        let (loose_before, _) = object_bytes(&empty_repo);
        for _ in 0..N {
            create(&empty, 1);
        }
        let (loose_after, _) = object_bytes(&empty_repo);
        let loose_per_event = (loose_after.saturating_sub(loose_before)) / N as u64;

        for _ in 0..10 {
            create(&store, 1000);
        }
        let ids: Vec<OrderId> = (1..=10_000).map(|n| format!("FTR-{n:04}").parse().unwrap()).collect();
        // 10,000 created + 4 × 2 × 10,000 + 2 × 5,000 = 100,000 events.
        for _ in 0..4 {
            claim_and_expire(&store, &ids);
        }
        claim_and_expire(&store, &ids[..5_000]);
        let events = store.stats(&store.require_tip().unwrap()).unwrap().events;
        git(&repo, &["gc", "-q"]);
        let (_, packed) = object_bytes(&repo);
        // Appends at this size and on the small ledger, in turn: the
        // machine's mood changes from minute to minute, the ratio should not.
        let (mut append_full, mut append_empty) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..N {
            let start = Instant::now();
            create(&store, 1);
            append_full += start.elapsed();
            let start = Instant::now();
            create(&empty, 1);
            append_empty += start.elapsed();
        }
        let (append_full, append_empty) = (append_full / N as u32, append_empty / N as u32);
        let status = median((0..10).map(|_| mso(&repo, &["status"])).collect());
        let list = median((0..10).map(|_| mso(&repo, &["order", "list"])).collect());
        let show = median((0..10).map(|_| mso(&repo, &["order", "show", "FTR-0500"])).collect());
        let show_small = median((0..10).map(|_| mso(&empty_repo, &["order", "show", "FTR-0001"])).collect());
        let git_show = median(
            (0..10)
                .map(|_| {
                    let s = Instant::now();
                    git(&repo, &["show", "refs/mso/ledger:orders/FTR-05/FTR-0500.json"]);
                    s.elapsed()
                })
                .collect(),
        );
        let scale = format!("{events} events");
        rows.push((format!("status, 10,000 orders, {scale}"), ms(status), "-".into(), "target < 100 ms".into()));
        rows.push((format!("order list, 10,000 orders, {scale}"), ms(list), "-".into(), "target < 100 ms".into()));
        rows.push((
            format!("order show, 10,000 orders, {scale}"),
            ms(show),
            ms(git_show),
            format!("{} on an empty ledger; baseline: git show of the order's file", ms(show_small)),
        ));
        rows.push((
            format!("append 1 event at {scale} (library, packed)"),
            ms(append_full),
            "-".into(),
            format!(
                "{} on a ledger of {} events, in turn: {:.2}x; target within 2x",
                ms(append_empty),
                2 * N + 1,
                append_full.as_secs_f64() / append_empty.as_secs_f64()
            ),
        ));
        rows.push((
            "bytes on disk per event".into(),
            format!("{loose_per_event} B"),
            format!("{} B", packed / events.max(1)),
            "loose (one event per append) / packed after git gc".into(),
        ));
    }

    // --- server hook: validating pushes, up to the largest the caps allow ---
    for (commits, per_commit, note) in [
        (1_000, 1, "target < 1 s"),
        (1, 1_000, "target < 1 s"),
        (git_mso::hooks::limits::COMMITS, 1, "the commit cap"),
        (git_mso::hooks::limits::EVENTS / 1_000, 1_000, "the event cap"),
    ] {
        let took = hook_time(root.path(), commits, per_commit);
        rows.push((
            format!("pre-receive: {} events in {commits} commit(s)", commits * per_commit),
            ms(took),
            "-".into(),
            note.into(),
        ));
    }

    // --- approval push -> crew start on the server ---
    let client = new_repo(root.path(), "latency-client");
    let server = root.path().join("latency-server.git");
    git(root.path(), &["init", "-q", "--bare", server.to_str().unwrap()]);
    let stamp = root.path().join("crew-started");
    mso(&server, &["hooks", "install", "--server"]);
    git(&server, &["config", "mso.server.dispatch", "true"]);
    git(&server, &["config", "mso.crew.BLD.command", &format!("date +%s%N > '{}'", stamp.display())]);
    git(&server, &["config", "user.name", "server"]);
    git(&client, &["config", "mso.crew.PLN.command", "true"]);
    mso(&client, &["order", "new", "--title", "latency", "--voyage", "VOY-0001"]);
    mso(&client, &["dispatch", "--once"]);
    git(
        &client,
        &["push", "-q", server.to_str().unwrap(), "main", "refs/mso/ledger:refs/mso/ledger", "voyage/VOY-0001"],
    );
    mso(&client, &["review", "approve", "FTR-0001"]);
    let pushed_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    git(&client, &["push", "-q", server.to_str().unwrap(), "refs/mso/ledger:refs/mso/ledger"]);
    let push_returned = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap() - pushed_at;
    let mut started = None;
    for _ in 0..500 {
        if let Ok(text) = std::fs::read_to_string(&stamp)
            && let Ok(ns) = text.trim().parse::<u128>()
        {
            started = Some(Duration::from_nanos((ns - pushed_at.as_nanos()) as u64));
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = started.expect("the server never started the crew");
    rows.push((
        "approval push → crew start on the server".into(),
        ms(started),
        "-".into(),
        format!("target < 1 s; the push returned in {}", ms(push_returned)),
    ));

    print_table(root.path(), rows);
}

type Row = (String, String, String, String);

fn print_table(root: &Path, rows: Vec<Row>) {
    println!("run in {} ({} {})", root.display(), std::env::consts::OS, std::env::consts::ARCH);
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(10);
    let header = ("operation", "git-mso", "git CLI", "speed-up / note");
    println!("{:<w$}  {:>10}  {:>10}  {}", header.0, header.1, header.2, header.3);
    for (op, ours, theirs, note) in rows {
        println!("{op:<w$}  {ours:>10}  {theirs:>10}  {note}");
    }
}
