//! The server's pre-receive hook against a corpus of malformed and
//! malicious pushes: each is refused with one clear line, and the server's
//! ledger does not move.

#![allow(clippy::result_large_err)]

mod common;

use std::path::PathBuf;

use common::TestRepo;
use git_mso::core::message;
use git_mso::core::{Event, EventBody, Lease};
use git_mso::store::Store;
use serde_json::json;

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
        let store = Store::discover(&client.path).unwrap();
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

    fn server_tip(&self) -> String {
        self.client.git_in(&self.server, &["rev-parse", "refs/mso/ledger"]).trim().to_string()
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

    fn commit_tree(&self, tree: &str, parents: &[&str], message: &str) -> String {
        let msg = self.client.root().join("forged-message");
        std::fs::write(&msg, message).unwrap();
        let mut args = vec!["commit-tree", tree];
        for p in parents {
            args.extend(["-p", p]);
        }
        let file = msg.to_str().unwrap().to_string();
        args.extend(["-F", &file]);
        let out = std::process::Command::new("git")
            .args(&args)
            .current_dir(&self.client.path)
            .env("GIT_AUTHOR_NAME", "mallory")
            .env("GIT_AUTHOR_EMAIL", "m@example.com")
            .env("GIT_COMMITTER_NAME", "mallory")
            .env("GIT_COMMITTER_EMAIL", "m@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A commit on top of the server tip whose events are `bodies` by mallory, ids derived.
    fn forge_events(&self, bodies: Vec<EventBody>) -> String {
        self.forge(&events(&self.server_tip(), bodies))
    }

    /// A commit on top of the server tip with the tip's tree and `message`.
    fn forge(&self, message: &str) -> String {
        let tip = self.server_tip();
        let tree = self.client.git(&["rev-parse", &format!("{tip}^{{tree}}")]).trim().to_string();
        self.commit_tree(&tree, &[&tip], message)
    }

    fn head(&self) -> String {
        self.client.git(&["rev-parse", "HEAD"]).trim().to_string()
    }
}

/// A canonical message of `bodies` by mallory, appended after `parent`.
fn events(parent: &str, bodies: Vec<EventBody>) -> String {
    events_by("mallory", parent, bodies)
}

/// A canonical message of `bodies` by `actor`, appended after `parent`.
fn events_by(actor: &str, parent: &str, bodies: Vec<EventBody>) -> String {
    let events: Vec<Event> = bodies
        .into_iter()
        .enumerate()
        .map(|(i, b)| Event::derived(Some(parent), i, 1_795_608_000, actor.into(), b))
        .collect();
    message::format(&events)
}

fn body(value: serde_json::Value) -> EventBody {
    serde_json::from_value(value).unwrap()
}

/// Replace the subject of a canonical message.
fn with_subject(message: &str, subject: &str) -> String {
    let rest = message.split_once('\n').unwrap().1;
    format!("{subject}\n{rest}")
}

fn tree_with_extra_file(setup: &Setup, base_commit: &str) -> String {
    let work = setup.client.root().join("forge-wt");
    let _ = std::fs::remove_dir_all(&work);
    setup.client.git(&["worktree", "add", "-q", "--detach", work.to_str().unwrap(), base_commit]);
    std::fs::write(work.join("evil.sh"), "curl evil | sh\n").unwrap();
    setup.client.git_in(&work, &["add", "-A"]);
    let tree = setup.client.git_in(&work, &["write-tree"]).trim().to_string();
    setup.client.git(&["worktree", "remove", "--force", work.to_str().unwrap()]);
    tree
}

fn approve(by: &str, head: &str) -> Vec<EventBody> {
    vec![
        body(json!({"type": "APPROVED", "order": "FTR-0001", "role": "PLN", "by": by, "commit": head})),
        body(json!({"type": "ADVANCED", "order": "FTR-0001", "from": "PLN", "to": "BLD"})),
    ]
}

#[test]
fn a_corpus_of_bad_pushes_is_refused_with_one_line_each_and_the_ledger_unchanged() {
    let setup = Setup::new();
    let tip = setup.server_tip();
    let head = setup.head();
    let tree_of = |c: &str| setup.client.git(&["rev-parse", &format!("{c}^{{tree}}")]).trim().to_string();
    let parent = setup.client.git(&["rev-parse", &format!("{tip}~1")]).trim().to_string();

    // An honest next commit, made by git-mso itself, to tamper with.
    setup.client.ok(&["order", "cancel", "CHR-0001"]);
    let honest = setup.client.tip();
    let honest_msg = setup.client.git(&["log", "-1", "--format=%B", &honest]).trim_end().to_string() + "\n";
    setup.client.git(&["update-ref", "refs/mso/ledger", &tip]);

    let huge = format!("{}{}", "x".repeat(9 * 1024 * 1024), "\n");
    let cases: Vec<(&str, String, &str)> = vec![
        ("forged tree (the parent's, not the state)", setup.commit_tree(&tree_of(&tip), &[&tip], &honest_msg), "is not the canonical tree"),
        ("an extra file smuggled into the tree", setup.commit_tree(&tree_with_extra_file(&setup, &honest), &[&tip], &honest_msg), "it differs at evil.sh"),
        ("approval of an order not awaiting review", setup.forge_events(vec![
            body(json!({"type": "APPROVED", "order": "CHR-0001", "role": "BLD", "by": "mallory", "commit": head})),
            body(json!({"type": "ADVANCED", "order": "CHR-0001", "from": "BLD", "to": "TST"})),
        ]), "illegal APPROVED event: CHR-0001 is queued at BLD, not awaiting review"),
        ("ADVANCED skipping a role", setup.forge_events(vec![
            body(json!({"type": "APPROVED", "order": "FTR-0001", "role": "PLN", "by": "mallory", "commit": head})),
            body(json!({"type": "ADVANCED", "order": "FTR-0001", "from": "PLN", "to": "TST"})),
        ]), "the role after PLN in its sequence is BLD"),
        ("approval without its hand-off", setup.forge_events(vec![
            body(json!({"type": "APPROVED", "order": "FTR-0001", "role": "PLN", "by": "mallory", "commit": head})),
        ]), "must record ADVANCED or COMPLETED in the same transaction"),
        ("approval pinned to another commit", setup.forge_events(approve("mallory", &tip)), "the approval pins"),
        ("a copied event id", {
            let first = setup.client.json(&["order", "show", "FTR-0001", "--json"])["history"][0]["id"].as_str().unwrap().to_string();
            let mut e = Event::derived(Some(&tip), 0, 1_795_608_000, "mallory".into(), body(json!({"type": "CANCELLED", "order": "FTR-0001"})));
            e.id = first;
            setup.forge(&message::format(&[e]))
        }, "but its content and parent give"),
        ("path-traversal order id", setup.forge(&with_subject(&events(&tip, vec![body(json!({"type": "RETRIED", "order": "FTR-0001"}))]), "x").replace("FTR-0001", "../../etc")), "malformed order id"),
        ("invalid JSON event", setup.forge("x\n\n{\"id\": \"forged0000000000\", \"type\": \n\nMso-Schema: 2\n"), "is not a valid event"),
        ("unknown event type", setup.forge("x\n\n{\"id\":\"forged0000000000\",\"at\":1,\"actor\":\"m\",\"type\":\"EXECUTE\",\"cmd\":\"rm -rf /\"}\n\nMso-Schema: 2\n"), "is not a valid event"),
        ("unknown schema version", setup.forge(&events(&tip, vec![body(json!({"type": "RETRIED", "order": "FTR-0001"}))]).replace("Mso-Schema: 2", "Mso-Schema: 3")), "written with ledger schema 3"),
        ("a commit that is not a ledger commit", setup.forge("just a commit\n"), "not a git-mso ledger commit"),
        ("a subject that lies about the events", setup.forge(&with_subject(&events(&tip, vec![body(json!({"type": "CANCELLED", "order": "CHR-0001"}))]), "FTR-0001: approved PLN by boss")), "not in canonical form"),
        ("a commit without events", setup.forge("empty\n\n\nMso-Schema: 2\n"), "carries no events"),
        ("an order id out of sequence", setup.forge_events(vec![body(json!({
            "type": "ORDER_CREATED", "order": "FTR-0009", "title": "t", "roles": ["PLN", "BLD", "TST"], "gates": ["PLN"], "voyage": "VOY-0001"
        }))]), "order id FTR-0009 is out of sequence: the next FTR id is FTR-0002"),
        ("a title with control characters", setup.forge_events(vec![body(json!({
            "type": "ORDER_CREATED", "order": "FTR-0002", "title": "a\u{1b}[2Jb", "roles": ["PLN", "BLD", "TST"], "gates": ["PLN"], "voyage": "VOY-0001"
        }))]), "title contains a newline, control or invisible character"),
        ("a second INIT", setup.forge_events(vec![EventBody::Init { config: git_mso::core::Config::initial("mallory") }]), "the pipeline is already initialized"),
        ("two crews on one voyage", setup.forge_events(vec![body(json!({
            "type": "ORDER_CREATED", "order": "CHR-0002", "title": "t", "roles": ["BLD", "TST"], "gates": [], "voyage": "VOY-0002"
        })), body(json!({"type": "DISPATCHED", "order": "CHR-0001", "role": "BLD", "attempt": 1, "lease": {"runner": "a", "host": "h", "pid": 1, "expires": 1_795_608_100, "actor": "mallory"}})),
            body(json!({"type": "DISPATCHED", "order": "CHR-0002", "role": "BLD", "attempt": 1, "lease": {"runner": "b", "host": "h", "pid": 2, "expires": 1_795_608_100, "actor": "mallory"}})),
        ]), "VOY-0002 is busy: CHR-0001 is running on it"),
        ("SUCCEEDED for a role that never ran", setup.forge_events(vec![
            body(json!({"type": "SUCCEEDED", "order": "CHR-0001", "role": "BLD", "attempt": 1, "runner": "a", "head": head})),
            body(json!({"type": "ADVANCED", "order": "CHR-0001", "from": "BLD", "to": "TST"})),
        ]), "CHR-0001 is queued at BLD, not running"),
        ("a merge commit", setup.commit_tree(&tree_of(&honest), &[&tip, &head], &honest_msg), "merge commits are not allowed"),
        ("rewritten history", setup.commit_tree(&tree_of(&honest), &[&parent], &honest_msg), "only fast-forwards are accepted"),
        ("an oversized message", setup.forge(&huge), "exceeds"),
    ];
    assert!(cases.len() >= 20);
    let mut table = Vec::new();
    for (name, commit, expected) in &cases {
        let (landed, stderr) = setup.push(&format!("+{commit}:refs/mso/ledger"), &[]);
        let line = stderr
            .lines()
            .find(|l| l.contains("git-mso: refusing"))
            .unwrap_or_default()
            .trim_start_matches("remote: ")
            .trim()
            .to_string();
        assert!(!landed, "{name}: the push landed");
        assert!(line.contains(expected), "{name}: expected {expected:?} in {stderr}");
        assert_eq!(stderr.matches("git-mso: refusing").count(), 1, "{name}: one line: {stderr}");
        assert_eq!(setup.server_tip(), tip, "{name}: the server's ledger moved");
        table.push(format!("| {name} | {line} |"));
    }
    // Deletion, and a non-commit object at the ref.
    let (landed, stderr) = setup.push(":refs/mso/ledger", &[]);
    assert!(!landed && stderr.contains("deleting refs/mso/ledger is not allowed"), "{stderr}");
    table.push(
        "| deleting the ledger ref | git-mso: refusing the push: deleting refs/mso/ledger is not allowed |".into(),
    );
    let tree = tree_of(&tip);
    let (landed, stderr) = setup.push(&format!("+{tree}:refs/mso/ledger"), &[]);
    assert!(!landed, "{stderr}");
    assert_eq!(setup.server_tip(), tip);
    table.push(format!(
        "| a tree object at the ref | {} |",
        stderr.lines().find(|l| l.contains("refusing") || l.contains("rejected")).unwrap_or_default().trim()
    ));
    println!("{}", table.join("\n"));

    // The honest commit still lands, and the server's ledger checks out.
    let (landed, stderr) = setup.push(&format!("{honest}:refs/mso/ledger"), &[]);
    assert!(landed, "{stderr}");
    let out = setup.client.mso_in(&setup.server, &["fsck"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn reviews_must_come_from_approvers_and_from_the_authenticated_pusher() {
    let setup = Setup::new();
    let head = setup.head();
    // The ledger's approver list: only bob.
    setup.client.ok(&["config", "approvers", "[\"bob\"]"]);
    let (landed, stderr) = setup.push("refs/mso/ledger", &[]);
    assert!(landed, "{stderr}");
    let by_alice = setup.forge(&events_by("alice", &setup.server_tip(), approve("alice", &head)));
    let (landed, stderr) = setup.push(&format!("{by_alice}:refs/mso/ledger"), &[]);
    assert!(!landed);
    assert!(stderr.contains("alice is not an approver (approvers: bob)"), "{stderr}");

    // With mso.server.pusherEnv, bob's approval must be pushed by bob.
    setup.client.git_in(&setup.server, &["config", "mso.server.pusherEnv", "MSO_TEST_PUSHER"]);
    setup.client.git(&["config", "mso.user", "bob"]);
    setup.client.ok(&["review", "approve", "FTR-0001"]);
    let by_bob = setup.client.tip();
    let (landed, stderr) = setup.push(&format!("{by_bob}:refs/mso/ledger"), &[("MSO_TEST_PUSHER", "mallory")]);
    assert!(!landed);
    assert!(stderr.contains("review by bob pushed by mallory"), "{stderr}");
    let (landed, stderr) = setup.push(&format!("{by_bob}:refs/mso/ledger"), &[]);
    assert!(!landed);
    assert!(stderr.contains("mso.server.pusherEnv names MSO_TEST_PUSHER, which is not set"), "{stderr}");
    let (landed, stderr) = setup.push(&format!("{by_bob}:refs/mso/ledger"), &[("MSO_TEST_PUSHER", "bob")]);
    assert!(landed, "{stderr}");
    assert_eq!(setup.server_tip(), by_bob);
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
    let crew = setup.client.crew("slow.sh", &format!("sleep 2\necho \"$MSO_ORDER $MSO_ROLE\" >> '{}'", ran.display()));
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
    let started = std::time::Instant::now();
    let mut cmd = std::process::Command::new("git");
    cmd.args(["push", "-q", server.to_str().unwrap(), "refs/mso/ledger"]).current_dir(&setup.client.path);
    common::isolate(&mut cmd, &setup.client.home);
    cmd.env("COUNT_FILE", setup.client.count_file());
    let out = cmd.output().unwrap();
    let pushed_in = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(pushed_in < std::time::Duration::from_millis(1500), "the push waited for the crew ({pushed_in:?})");
    assert!(!ran.exists(), "the crew finished before the push returned");
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
