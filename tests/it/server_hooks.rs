//! Installing hooks, and what the server and runner hooks start: a pushed
//! approval starts the next crew on the server, a fetch wakes a runner
//! clone's dispatcher, and a burst of wakes runs one dispatcher. What the
//! pre-receive hook refuses is in `trust.rs`.

#![allow(clippy::result_large_err)]

use crate::common;

use std::path::PathBuf;

use crate::common::TestRepo;
use git_mso::core::{EventBody, Lease};

struct Setup {
    client: TestRepo,
    server: PathBuf,
}

impl Setup {
    /// A server with hooks installed, holding a ledger where FTR-0001 awaits review at PLN
    /// and CHR-0001 is queued on another voyage.
    fn new() -> Self {
        let client = TestRepo::initialized();
        client.ok(&["order", "new", "--title", "Add login page"]);
        client.ok(&["order", "new", "--kind", "CHR", "--title", "Chore"]);
        let store = client.store();
        let id = "FTR-0001".parse().unwrap();
        let head = client.git(&["rev-parse", "HEAD"]).trim().to_string();
        store
            .transact(|tx| {
                let lease = Lease {
                    runner: "r".into(),
                    host: "h".into(),
                    pid: 1,
                    expires: tx.now() + 600,
                    actor: tx.actor().to_string(),
                };
                tx.push(EventBody::Dispatched {
                    order: "FTR-0001".parse().unwrap(),
                    role: "PLN".parse().unwrap(),
                    attempt: 1,
                    lease,
                })
            })
            .unwrap();
        store
            .transact(|tx| {
                let _ = tx.order(&id)?;
                tx.push(EventBody::Succeeded {
                    order: id.clone(),
                    role: "PLN".parse().unwrap(),
                    attempt: 1,
                    runner: "r".into(),
                    head: head.clone(),
                    summary: String::new(),
                    run: None,
                })
            })
            .unwrap();
        let server = client.root().join("server.git");
        client.git(&["init", "-q", "--bare", server.to_str().unwrap()]);
        let out = client.mso_in(&server, &["hooks", "install", "--server"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let setup = Setup { client, server };
        // The server has the project's history: voyage bases are commits it knows.
        let (ok, err) = setup.push("main", &[]);
        assert!(ok, "{err}");
        let (ok, err) = setup.push("refs/mso/ledger", &[]);
        assert!(ok, "the honest ledger was refused: {err}");
        setup
    }

    /// Push `spec` to the server; returns whether it landed and git's stderr.
    fn push(&self, spec: &str, env: &[(&str, &str)]) -> (bool, String) {
        let mut cmd = std::process::Command::new("git");
        cmd.args(["push", "--porcelain", self.server.to_str().unwrap(), spec]).current_dir(&self.client.path);
        common::isolate(&mut cmd, &self.client.home);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn hooks_install_chains_existing_hooks_is_idempotent_and_uninstall_restores() {
    let repo = TestRepo::initialized();
    let hooks = repo.path.join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    let mine = hooks.join("reference-transaction");
    std::fs::write(&mine, "#!/bin/sh\necho \"$1\" >> \"$(git rev-parse --git-dir)/mine.log\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = repo.ok(&["hooks", "install"]);
    assert!(out.contains("reference-transaction  installed, chaining the previous hook"), "{out}");
    let again = repo.ok(&["hooks", "install"]);
    assert!(again.contains("reference-transaction  updated"), "{again}");
    assert!(repo.ok(&["hooks", "status"]).contains("reference-transaction  installed, chaining a previous hook"));
    // The chained hook still runs.
    repo.git(&["update-ref", "refs/heads/probe", "HEAD"]);
    let log = std::fs::read_to_string(repo.path.join(".git/mine.log")).unwrap();
    assert!(log.contains("committed"), "{log}");

    let out = repo.ok(&["hooks", "uninstall"]);
    assert!(out.contains("reference-transaction  removed, previous hook restored"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap(),
        "#!/bin/sh\necho \"$1\" >> \"$(git rev-parse --git-dir)/mine.log\"\n"
    );
    assert!(repo.ok(&["hooks", "status"]).contains("reference-transaction  a hook that is not git-mso's"));

    // core.hooksPath is honoured.
    repo.git(&["config", "core.hooksPath", "my-hooks"]);
    repo.ok(&["hooks", "install"]);
    assert!(repo.path.join("my-hooks/reference-transaction").exists());
}

#[test]
fn a_pushed_approval_starts_the_next_crew_on_the_server_without_waiting() {
    let setup = Setup::new();
    let server = &setup.server;
    let ran = setup.client.root().join("server-ran");
    let go = setup.client.root().join("go");
    // The crew cannot finish before the test lets it: a push that waited for it would never return.
    let crew = setup.client.crew(
        "slow.sh",
        &format!(
            "i=0; while [ ! -e '{go}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n\
             echo \"$MSO_ORDER $MSO_ROLE\" >> '{ran}'",
            go = go.display(),
            ran = ran.display()
        ),
    );
    for (k, v) in [
        ("mso.server.dispatch", "true"),
        ("mso.crew.BLD.command", crew.as_str()),
        ("mso.crew.TST.command", "true"),
        ("user.name", "server"),
    ] {
        setup.client.git_in(server, &["config", k, v]);
    }
    // The voyage branch must be on the server for its crews.
    let (ok, err) = setup.push("voyage/VOY-0001", &[]);
    assert!(ok, "{err}");
    setup.client.ok(&["review", "approve", "FTR-0001"]);
    let mut cmd = std::process::Command::new("git");
    cmd.args(["push", "-q", server.to_str().unwrap(), "refs/mso/ledger"]).current_dir(&setup.client.path);
    common::isolate(&mut cmd, &setup.client.home);
    cmd.env("COUNT_FILE", setup.client.count_file());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!ran.exists(), "the crew finished before the push returned");
    std::fs::write(&go, "").unwrap();
    common::wait_for_file(&ran, std::time::Duration::from_secs(10));
    assert_eq!(std::fs::read_to_string(&ran).unwrap_or_default().trim(), "FTR-0001 BLD", "the crew ran on the server");
    // The server's ledger and voyage branch moved.
    for _ in 0..100 {
        let show = setup.client.mso_in(server, &["order", "show", "FTR-0001", "--json"]);
        let order: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
        if order["status"] == "completed" {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the server never completed FTR-0001");
}

#[test]
fn a_fetch_that_moves_the_ledger_wakes_the_dispatcher_in_a_runner_clone() {
    let setup = Setup::new();
    let server = setup.server.to_str().unwrap().to_string();
    let runner = setup.client.root().join("runner");
    setup.client.git(&["clone", "-q", &server, runner.to_str().unwrap()]);
    let ran = setup.client.root().join("runner-ran");
    let crew = setup.client.crew("mark.sh", &format!("echo \"$MSO_ORDER $MSO_ROLE\" >> '{}'", ran.display()));
    for (k, v) in [("mso.dispatch.auto", "true"), ("mso.crew.BLD.command", crew.as_str()), ("user.name", "runner")] {
        setup.client.git_in(&runner, &["config", k, v]);
    }
    let out = setup.client.mso_in(&runner, &["hooks", "install"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Queue CHR-0001's BLD on the server by pushing the voyage branch and nothing else new:
    // the ledger already has it queued, so the runner's first fetch of the ledger wakes it.
    let (ok, err) = setup.push("voyage/VOY-0002", &[]);
    assert!(ok, "{err}");
    let out = setup.client.mso_cmd(&runner).arg("sync").env("COUNT_FILE", setup.client.count_file()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    common::wait_for_file(&ran, std::time::Duration::from_secs(10));
    let log = std::fs::read_to_string(runner.join(".git/mso/dispatch.log")).unwrap_or_default();
    assert_eq!(
        std::fs::read_to_string(&ran).unwrap_or_default().lines().next(),
        Some("CHR-0001 BLD"),
        "no dispatcher woke up: {log}"
    );
    // A failing hook would have failed git; a plain fetch with nothing new stays quiet.
    setup.client.git_in(&runner, &["fetch", "-q", "origin"]);
}

#[test]
fn a_burst_of_wakes_runs_one_dispatcher_with_the_configured_parallelism() {
    let repo = TestRepo::initialized();
    // Each crew notes how many crews run at that moment.
    let running = repo.root().join("running");
    let seen = repo.root().join("seen");
    std::fs::create_dir_all(&running).unwrap();
    let crew = repo.crew(
        "slow.sh",
        &format!(
            "touch '{r}/'\"$MSO_ORDER\"\nls '{r}' | wc -l >> '{s}'\nsleep 1\nrm '{r}/'\"$MSO_ORDER\"",
            r = running.display(),
            s = seen.display()
        ),
    );
    repo.set_crews(&[("BLD", &crew), ("TST", "true")]);
    for i in 0..3 {
        repo.ok(&["order", "new", "--kind", "CHR", "--title", &format!("chore {i}")]);
    }
    repo.git(&["config", "mso.dispatch.maxParallel", "0"]);
    let err = repo.fails(&["dispatch", "--once"], 1);
    assert!(err.contains("mso.dispatch.maxParallel is '0'; it takes a number from 1 to 64"), "{err}");
    repo.git(&["config", "mso.dispatch.maxParallel", "2"]);
    // Three wakes at once, as three pushes would make them.
    let woken: Vec<_> = (0..3)
        .map(|_| {
            let mut cmd = repo.mso_cmd(&repo.path);
            cmd.args(["dispatch", "--once", "--woken"]).env("COUNT_FILE", repo.count_file());
            cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let outputs: Vec<String> = woken
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        })
        .collect();
    let stood_down = outputs.iter().filter(|o| o.contains("another dispatcher is running here")).count();
    assert!(stood_down >= 1, "every wake ran its own dispatcher: {outputs:?}");
    let mut runs = repo.runs();
    runs.sort();
    assert_eq!(runs, ["CHR-0001 BLD 1", "CHR-0002 BLD 1", "CHR-0003 BLD 1"], "each role ran once");
    // Two at a time, as configured, and never more.
    let seen: Vec<u32> = std::fs::read_to_string(&seen).unwrap().lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(seen.iter().max(), Some(&2), "crews running at once: {seen:?}");
    assert_eq!(repo.json(&["status", "--json"])["completed"], 3);
}
