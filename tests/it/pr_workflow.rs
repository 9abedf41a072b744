//! Voyages as pull requests: what a reviewer sees, a branch that holds only
//! accepted work, publishing through a forge adapter (a stand-in `gh` or
//! `glab` on PATH that records its arguments: no forge is reachable here),
//! and landing by fast-forward, merge commit and squash, noticed by sync, by
//! the server's post-receive and by `voyage list`.

#![allow(clippy::result_large_err)]

use crate::common;

use std::path::{Path, PathBuf};

use crate::common::{Daemon, TestRepo};
use git_mso::core::EventBody;

/// A client `repo` whose origin is `server.git` (hooks installed) served by a
/// real `git daemon`; FTR orders walk PLN, BLD, TST, REL, gated at PLN and BLD.
struct Road {
    repo: TestRepo,
    server: PathBuf,
    daemon: Daemon,
    bin: PathBuf,
}

impl Road {
    fn new() -> Self {
        let repo = TestRepo::new();
        std::fs::write(repo.path.join("README"), "app\n").unwrap();
        repo.git(&["add", "README"]);
        repo.git(&["commit", "-q", "-m", "app"]);
        repo.ok(&["init"]);
        repo.ok(&["config", "kinds.FTR.sequence", r#"["PLN","BLD","TST","REL"]"#]);
        repo.ok(&["config", "kinds.FTR.gates", r#"["PLN","BLD"]"#]);
        let plan = repo.crew("plan.sh", "echo \"plan for $MSO_ORDER\" > plan.md");
        let build = repo.crew("build.sh", "echo \"greeting, attempt $MSO_ATTEMPT\" > greet.txt");
        let test = repo.crew("test.sh", &format!("test -f greet.txt\n{}", common::PASS_ALL_CRITERIA));
        repo.set_crews(&[("PLN", &plan), ("BLD", &build), ("TST", &test)]);
        let server = repo.root().join("server.git");
        repo.git(&["init", "-q", "--bare", "-b", "main", server.to_str().unwrap()]);
        let out = repo.mso_in(&server, &["hooks", "install", "--server"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let daemon = Daemon::start(repo.root(), &repo.home);
        repo.git(&["remote", "add", "origin", &daemon.url("server.git")]);
        repo.git(&["push", "-q", "origin", "main"]);
        repo.git(&["fetch", "-q", "origin"]);
        let bin = repo.root().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        Road { repo, server, daemon, bin }
    }

    /// Put a stand-in executable `name` on the PATH of every command run through `mso`.
    fn stand_in(&self, name: &str, body: &str) {
        let path = self.bin.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}/{name}-args'\n{body}\n", self.bin.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn args_of(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.bin.join(format!("{name}-args")))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn mso_in(&self, dir: &Path, args: &[&str]) -> std::process::Output {
        let path = format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = self.repo.mso_cmd(dir);
        cmd.args(args).env("PATH", path).env("COUNT_FILE", self.repo.count_file());
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.mso_in(&self.repo.path, args);
        assert!(
            out.status.success(),
            "git mso {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `git push origin SPECS` from `dir` as plain git (no git-mso): whether
    /// it landed, and what git and the server's hooks said.
    fn push(&self, dir: &Path, specs: &[&str]) -> (bool, String) {
        let mut cmd = std::process::Command::new("git");
        cmd.args(["push", "origin"]).args(specs).current_dir(dir);
        common::isolate(&mut cmd, &self.repo.home);
        let out = cmd.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn server_rev(&self, rev: &str) -> String {
        self.repo.git_in(&self.server, &["rev-parse", rev]).trim().to_string()
    }

    /// A second clone, to merge on "the forge" and push the target branch.
    fn forge_clone(&self) -> PathBuf {
        let dir = self.repo.root().join("forge");
        if !dir.exists() {
            self.repo.git(&["clone", "-q", &self.daemon.url("server.git"), dir.to_str().unwrap()]);
        }
        self.repo.git_in(&dir, &["fetch", "-q", "origin"]);
        self.repo.git_in(&dir, &["config", "user.name", "forge"]);
        self.repo.git_in(&dir, &["config", "user.email", "forge@example.com"]);
        dir
    }
}

fn gh_stand_in(road: &Road) {
    // `gh pr list` finds no open pull request; `gh pr create` prints the URL the way gh does.
    road.stand_in(
        "gh",
        "case \"$1 $2\" in\n  'pr list') ;;\n  'pr create') echo 'Creating pull request'; echo 'https://github.com/acme/app/pull/7' ;;\nesac",
    );
    let adapter = format!("{}/scripts/crews/gh-pr.sh", env!("CARGO_MANIFEST_DIR"));
    road.repo.git(&["config", "mso.publish.command", &adapter]);
}

#[test]
fn an_order_walks_from_filing_to_a_landed_pull_request() {
    let road = Road::new();
    gh_stand_in(&road);
    let repo = &road.repo;
    let base = repo.git(&["rev-parse", "main"]).trim().to_string();
    let out = road.ok(&[
        "order",
        "new",
        "--title",
        "Greet users",
        "--ac",
        "greets by name",
        "--ac",
        "no greeting for an empty name",
    ]);
    assert!(out.contains("FTR-0001"), "{out}");
    let shown = serde_json::from_str::<serde_json::Value>(&road.ok(&["voyage", "show", "VOY-0001", "--json"])).unwrap();
    assert_eq!((shown["target"].as_str(), shown["state"].as_str()), (Some("main"), Some("open")));

    // PLN, approved.
    road.ok(&["dispatch", "--remote", "origin", "--once"]);
    road.ok(&["review", "approve", "FTR-0001"]);
    road.ok(&["sync"]);
    let planned = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();

    // BLD, rejected once: the reviewer sees the range, then the work leaves the branch.
    road.ok(&["dispatch", "--remote", "origin", "--once"]);
    let first_build = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    let shown = road.ok(&["review", "show", "FTR-0001"]);
    assert!(shown.contains(&format!("range     {}..{}", &planned[..7], &first_build[..7])), "{shown}");
    assert!(shown.contains("(1 commit(s), 1 file changed, +1 -0)"), "{shown}");
    assert!(shown.contains("[FTR-0001 BLD attempt 1]"), "the note says who made it: {shown}");
    assert!(shown.contains("+greeting, attempt 1"), "the diff: {shown}");
    let listed = road.ok(&["review", "list"]);
    assert!(listed.contains(&format!("FTR-0001  BLD   {}..{}", &planned[..7], &first_build[..7])), "{listed}");
    let review =
        serde_json::from_str::<serde_json::Value>(&road.ok(&["review", "show", "FTR-0001", "--json"])).unwrap();
    assert_eq!(review["range"]["stat"]["files"], 1);
    assert_eq!(review["held"], false);
    let out = road.ok(&["review", "reject", "FTR-0001", "--reason", "greet by name, not by attempt"]);
    assert!(out.contains("kept at refs/mso/rejected/FTR-0001/1"), "{out}");
    let synced = road.ok(&["sync"]);
    assert_eq!(road.server_rev("refs/heads/voyage/VOY-0001"), planned, "the server's branch went back too: {synced}");
    assert_eq!(road.server_rev("refs/mso/rejected/FTR-0001/1"), first_build, "and keeps the rejected work");

    // BLD again, approved; TST runs; REL publishes through the gh adapter.
    road.ok(&["dispatch", "--remote", "origin", "--once"]);
    let second_build = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    road.ok(&["review", "approve", "FTR-0001"]);
    let out = road.ok(&["dispatch", "--remote", "origin", "--once"]);
    assert!(out.contains("REL  built-in release  published to https://github.com/acme/app/pull/7"), "{out}");
    road.ok(&["sync"]);
    let order = serde_json::from_str::<serde_json::Value>(&road.ok(&["order", "show", "FTR-0001", "--json"])).unwrap();
    assert_eq!(order["status"], "completed");
    let gh = road.args_of("gh");
    let create = gh.iter().position(|a| a == "create").expect("gh pr create ran");
    assert_eq!(gh[create + 1..create + 5], ["--base", "main", "--head", "voyage/VOY-0001"]);
    assert_eq!(gh[create + 6], "Greet users (FTR-0001)");

    // The published branch: the plan and the accepted build, not the rejected one.
    let published: Vec<String> = repo
        .git_in(&road.server, &["log", "--format=%H %s", &format!("{base}..voyage/VOY-0001")])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(published.len(), 2, "{published:?}");
    assert!(published[0].starts_with(&second_build) && published[0].ends_with("FTR-0001 BLD: Greet users"));
    assert!(published[1].starts_with(&planned) && published[1].ends_with("FTR-0001 PLN: Greet users"));
    assert_eq!(repo.git_in(&road.server, &["show", "voyage/VOY-0001:greet.txt"]), "greeting, attempt 2\n");
    let notes = repo.git(&["log", "--notes=mso", "--format=%h%n%N", &format!("{base}..voyage/VOY-0001")]);
    assert!(notes.contains("Mso-Order: FTR-0001\nMso-Role: BLD\nMso-Attempt: 2"), "{notes}");
    assert!(notes.contains("Mso-Approved-By: alice"), "{notes}");
    let rejected = repo.git(&["log", "-1", "--notes=mso", "--format=%N", "refs/mso/rejected/FTR-0001/1"]);
    assert!(rejected.contains("Mso-Rejected-By: alice"), "{rejected}");

    let shown = serde_json::from_str::<serde_json::Value>(&road.ok(&["voyage", "show", "VOY-0001", "--json"])).unwrap();
    assert_eq!(shown["state"], "published");
    assert_eq!(shown["published"]["url"], "https://github.com/acme/app/pull/7");
    assert_eq!(shown["against"]["ahead"], 2);
    assert_eq!(shown["orders"][0]["roles"][3]["progress"], "done");
    let subjects = repo.git(&["log", "--format=%s", "refs/mso/ledger"]);
    assert!(subjects.contains(&format!("VOY-0001: published at {}", &second_build[..7])), "{subjects}");

    // The forge merges with a merge commit and pushes main: the server notices.
    let forge = road.forge_clone();
    repo.git_in(&forge, &["merge", "-q", "--no-ff", "-m", "Merge pull request #7", "origin/voyage/VOY-0001"]);
    let merge = repo.git_in(&forge, &["rev-parse", "HEAD"]).trim().to_string();
    let (pushed, said) = road.push(&forge, &["main"]);
    assert!(pushed, "{said}");
    assert!(said.contains(&format!("git-mso: VOY-0001 landed on main at {} (merge)", &merge[..7])), "{said}");

    road.ok(&["sync"]);
    let shown = serde_json::from_str::<serde_json::Value>(&road.ok(&["voyage", "show", "VOY-0001", "--json"])).unwrap();
    assert_eq!(shown["state"], "landed");
    assert_eq!(shown["landed"]["commit"], merge.as_str());
    assert_eq!(shown["landed"]["how"], "merge");
    // Against the remote's main: nothing ahead any more, the merge commit behind.
    assert_eq!((shown["against"]["ahead"].as_u64(), shown["against"]["behind"].as_u64()), (Some(0), Some(1)));
    assert_eq!(shown["against"]["ref"], "refs/remotes/origin/main");
    let human = road.ok(&["voyage", "show", "VOY-0001"]);
    assert!(human.contains("VOY-0001  voyage/VOY-0001  landed"), "{human}");
    assert!(human.contains("FTR-0001  landed     ✓PLN* ✓BLD* ✓TST ✓REL  Greet users"), "{human}");
    let listed = road.ok(&["order", "list"]);
    assert!(listed.contains("FTR-0001  landed"), "its orders are shown as landed: {listed}");
    let shown = road.ok(&["order", "show", "FTR-0001"]);
    assert!(
        shown.contains(&format!("voyage      VOY-0001 (voyage/VOY-0001), landed on main at {} (merge)", &merge[..7])),
        "{shown}"
    );
    assert!(shown.contains("rejected    BLD attempt 1 at"), "{shown}");
    let refused = road.mso_in(&repo.path, &["order", "new", "--title", "more", "--voyage", "VOY-0001"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(err.contains(&format!("VOY-0001 landed on main at {} (merge)", &merge[..7])), "{err}");
    assert!(err.contains("file the order on a new voyage"), "{err}");
    road.ok(&["fsck"]);
}

/// One order through PLN and BLD (ungated), published without an adapter.
fn built_voyage(road: &Road) {
    road.ok(&["order", "new", "--title", "Greet users", "--no-gates", "--roles", "PLN,BLD"]);
    road.ok(&["dispatch", "--once"]);
}

#[test]
fn publish_without_an_adapter_records_the_request_pull_text() {
    let road = Road::new();
    built_voyage(&road);
    let head = road.repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    let out = road.ok(&["voyage", "publish", "VOY-0001"]);
    assert!(out.contains(&format!("VOY-0001  published {} to {}", &head[..7], road.daemon.url("server.git"))), "{out}");
    assert!(out.contains("Greet users (FTR-0001)"), "{out}");
    assert!(out.contains("are available in the Git repository at:"), "the request-pull text: {out}");
    assert!(out.trim_end().ends_with("Mso-Voyage: VOY-0001"), "{out}");
    assert!(out.contains("## FTR-0001: Greet users\n"), "{out}");
    assert_eq!(road.server_rev("refs/heads/voyage/VOY-0001"), head);
    let event = road.repo.json(&["log", "-n", "1", "--json"]);
    assert_eq!(event[0]["events"][0]["type"], "VOYAGE_PUBLISHED");
    assert!(event[0]["events"][0]["text"].as_str().unwrap().contains("Mso-Voyage: VOY-0001"));
    // On the server too: publish pushes the ledger.
    assert_eq!(road.server_rev("refs/mso/ledger"), road.repo.tip());
}

#[test]
fn the_glab_adapter_opens_a_merge_request_and_its_url_is_recorded() {
    let road = Road::new();
    // glab lists no open merge request until one is created; then it lists it.
    let made = road.bin.join("glab-made");
    road.stand_in(
        "glab",
        &format!(
            "case \"$1 $2\" in\n  'mr list') if [ -e '{m}' ]; then echo '[{{\"iid\": 12, \"web_url\": \"https://gitlab.example.com/acme/app/-/merge_requests/12\"}}]'; else echo '[]'; fi ;;\n  'mr create') touch '{m}'; echo 'Creating merge request for voyage/VOY-0001 into main in acme/app'; echo 'https://gitlab.example.com/acme/app/-/merge_requests/12' ;;\nesac",
            m = made.display()
        ),
    );
    let adapter = format!("{}/scripts/crews/glab-mr.sh", env!("CARGO_MANIFEST_DIR"));
    road.repo.git(&["config", "mso.publish.command", &adapter]);
    built_voyage(&road);
    let out = road.ok(&["voyage", "publish", "VOY-0001"]);
    assert!(out.contains("to https://gitlab.example.com/acme/app/-/merge_requests/12"), "{out}");
    let args = road.args_of("glab");
    let create = args.iter().position(|a| a == "create").expect("glab mr create ran");
    let expected =
        ["--source-branch", "voyage/VOY-0001", "--target-branch", "main", "--title", "Greet users (FTR-0001)"];
    assert_eq!(args[create + 1..create + 7], expected);
    let description = &args[args.iter().position(|a| a == "--description").unwrap() + 1..];
    assert!(description.iter().any(|l| l == "Mso-Voyage: VOY-0001"), "{description:?}");
    // Publishing again updates the open merge request instead of failing on a duplicate.
    let again = road.ok(&["voyage", "publish", "VOY-0001"]);
    assert!(again.contains("to https://gitlab.example.com/acme/app/-/merge_requests/12"), "{again}");
    let args = road.args_of("glab");
    let update = args.iter().position(|a| a == "update").expect("glab mr update ran");
    assert_eq!(args[update - 1..update + 4], ["mr", "update", "voyage/VOY-0001", "--title", "Greet users (FTR-0001)"]);
}

#[test]
fn a_failing_forge_adapter_records_nothing() {
    let road = Road::new();
    road.stand_in("gh", "echo 'HTTP 401: Bad credentials' >&2\nexit 1");
    road.repo.git(&[
        "config",
        "mso.publish.command",
        &format!("{}/scripts/crews/gh-pr.sh", env!("CARGO_MANIFEST_DIR")),
    ]);
    built_voyage(&road);
    let tip = road.repo.tip();
    let out = road.mso_in(&road.repo.path, &["voyage", "publish", "VOY-0001"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("the forge adapter (mso.publish.command) exited with status 1; nothing was recorded"),
        "{err}"
    );
    assert!(err.contains("Bad credentials"), "{err}");
    assert_eq!(road.repo.tip(), tip);
    let shown = road.repo.json(&["voyage", "show", "VOY-0001", "--json"]);
    assert_eq!(shown["state"], "open");
}

#[test]
fn a_fast_forward_landing_is_noticed_by_voyage_list() {
    let road = Road::new();
    built_voyage(&road);
    let head = road.repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    road.repo.git(&["merge", "-q", "--ff-only", "voyage/VOY-0001"]);
    // Merged here only: the server's main does not have it, so it has not landed.
    let out = road.ok(&["voyage", "list"]);
    assert!(!out.contains("landed"), "{out}");
    // Pushed (to a server without git-mso's post-receive): the remote's branch has it.
    std::fs::remove_file(road.server.join("hooks/post-receive")).unwrap();
    road.repo.git(&["push", "-q", "origin", "main"]);
    let out = road.ok(&["voyage", "list"]);
    assert!(out.contains(&format!("VOY-0001 landed on main at {} (fast-forward)", &head[..7])), "{out}");
    assert!(out.contains(&format!("landed on main at {} (fast-forward)", &head[..7])), "{out}");
    let again = road.ok(&["voyage", "list"]);
    assert!(!again.contains("VOY-0001 landed on"), "recorded once: {again}");
    let shown = road.repo.json(&["voyage", "show", "VOY-0001", "--json"]);
    assert_eq!(
        (shown["landed"]["how"].as_str(), shown["landed"]["commit"].as_str()),
        (Some("fast-forward"), Some(head.as_str()))
    );
    // The server checks the landing against its own main, and takes it.
    let synced = road.ok(&["sync"]);
    assert!(synced.contains("pushed refs/mso/ledger to origin"), "{synced}");
}

#[test]
fn a_squash_merge_is_found_by_its_trailer_and_sync_records_it() {
    let road = Road::new();
    built_voyage(&road);
    road.ok(&["voyage", "publish", "VOY-0001"]);
    let forge = road.forge_clone();
    let git = |args: &[&str]| road.repo.git_in(&forge, args);
    git(&["merge", "-q", "--squash", "origin/voyage/VOY-0001"]);
    git(&["commit", "-q", "-m", "Greet users (#7)\n\nSquashed.\n\nMso-Voyage: VOY-0001"]);
    let squash = git(&["rev-parse", "HEAD"]).trim().to_string();
    // A server without git-mso's post-receive: sync is what notices.
    std::fs::remove_file(road.server.join("hooks/post-receive")).unwrap();
    git(&["push", "-q", "origin", "main"]);
    let out = road.ok(&["sync"]);
    assert!(out.contains(&format!("VOY-0001 landed on main at {} (squash)", &squash[..7])), "{out}");
    let shown = road.repo.json(&["voyage", "show", "VOY-0001", "--json"]);
    assert_eq!(shown["landed"]["how"], "squash");
    road.ok(&["fsck"]);
}

#[test]
fn a_closed_voyage_cancels_its_orders_and_takes_no_more() {
    let road = Road::new();
    road.ok(&["order", "new", "--title", "Spike"]);
    let out = road.ok(&["voyage", "close", "VOY-0001", "--reason", "superseded by VOY-0002"]);
    assert_eq!(out.trim(), "VOY-0001  closed; cancelled FTR-0001");
    let order = road.repo.json(&["order", "show", "FTR-0001", "--json"]);
    assert_eq!(order["status"], "cancelled");
    let refused = road.mso_in(&road.repo.path, &["order", "new", "--title", "x", "--voyage", "VOY-0001"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("VOY-0001 was closed by alice: superseded by VOY-0002"));
    let again = road.mso_in(&road.repo.path, &["voyage", "close", "VOY-0001", "--reason", "again"]);
    assert!(!again.status.success());
    let listed = road.ok(&["voyage", "list"]);
    assert!(listed.contains("closed"), "{listed}");
}

#[test]
fn a_landing_the_servers_branch_does_not_hold_is_refused_and_sync_leaves_it_out() {
    let road = Road::new();
    built_voyage(&road);
    road.ok(&["sync"]);
    let head = road.repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    // A clone that says the remote's main has the voyage, when it has not.
    road.repo.git(&["update-ref", "refs/remotes/origin/main", &head]);
    let out = road.ok(&["voyage", "list"]);
    assert!(out.contains("VOY-0001 landed on main"), "{out}");
    let tip = road.server_rev("refs/mso/ledger");
    let (pushed, said) = road.push(&road.repo.path, &["refs/mso/ledger:refs/mso/ledger"]);
    assert!(!pushed);
    assert!(
        said.contains(&format!("VOYAGE_LANDED for VOY-0001 names {}, which is not on the server's main", &head[..7])),
        "{said}"
    );
    assert_eq!(road.server_rev("refs/mso/ledger"), tip);
    // sync fetches the real main and leaves the landing out.
    let out = road.ok(&["sync"]);
    assert!(out.contains("VOY-0001's landing at"), "{out}");
    assert_eq!(road.repo.json(&["voyage", "show", "VOY-0001", "--json"])["state"], "open");
}

#[test]
fn a_voyage_branch_cannot_be_rewound_behind_its_recorded_head_by_way_of_rejected_work() {
    let road = Road::new();
    let repo = &road.repo;
    road.ok(&["order", "new", "--title", "Greet users"]);
    road.ok(&["dispatch", "--remote", "origin", "--once"]);
    road.ok(&["review", "approve", "FTR-0001"]);
    road.ok(&["dispatch", "--remote", "origin", "--once"]);
    let rejected = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    road.ok(&["review", "reject", "FTR-0001", "--reason", "no"]);
    road.ok(&["sync"]);
    let recorded = road.server_rev("refs/heads/voyage/VOY-0001");
    let base = repo.git(&["rev-parse", "main"]).trim().to_string();
    let push = |spec: &str| road.push(&repo.path, &[spec]);
    // Bring the branch to the rejected commit (a fast-forward), then try to
    // rewind it past the recorded head, as if setting rejected work aside.
    let (ok, err) = push(&format!("{rejected}:refs/heads/voyage/VOY-0001"));
    assert!(ok, "{err}");
    let (ok, err) = push(&format!("+{base}:refs/heads/voyage/VOY-0001"));
    assert!(!ok, "the rewind landed");
    assert!(err.contains("is not a fast-forward, and VOY-0001 has open orders"), "{err}");
    // Back to the recorded head is fine.
    let (ok, err) = push(&format!("+{recorded}:refs/heads/voyage/VOY-0001"));
    assert!(ok, "{err}");
}

#[test]
fn rejections_made_offline_keep_their_work_when_sync_renumbers_the_orders() {
    let road = Road::new();
    let repo = &road.repo;
    road.ok(&["sync"]);
    // bob files FTR-0001 on the server meanwhile.
    let bob = repo.root().join("bob");
    repo.git(&["clone", "-q", &road.daemon.url("server.git"), bob.to_str().unwrap()]);
    repo.git_in(&bob, &["config", "user.name", "bob"]);
    for args in [&["sync"][..], &["order", "new", "--title", "bob's"], &["sync"]] {
        let out = road.mso_in(&bob, args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // alice, offline, files two orders, plans both and rejects both plans.
    road.ok(&["order", "new", "--title", "first"]);
    road.ok(&["order", "new", "--title", "second"]);
    road.ok(&["dispatch", "--once"]);
    let first = repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    let second = repo.git(&["rev-parse", "voyage/VOY-0002"]).trim().to_string();
    road.ok(&["review", "reject", "FTR-0001", "--reason", "no"]);
    road.ok(&["review", "reject", "FTR-0002", "--reason", "no"]);
    let out = road.ok(&["sync"]);
    assert!(out.contains("renumbered FTR-0002 -> FTR-0003"), "{out}");
    assert_eq!(road.server_rev("refs/mso/rejected/FTR-0002/1"), first);
    assert_eq!(road.server_rev("refs/mso/rejected/FTR-0003/1"), second);
    assert_eq!(repo.git(&["rev-parse", "refs/mso/rejected/FTR-0003/1"]).trim(), second);
    assert_eq!(repo.git(&["rev-parse", "refs/mso/rejected/FTR-0002/1"]).trim(), first);
    // FTR-0001 is bob's now, rejected nowhere: the old name is gone here too.
    assert_eq!(repo.git(&["for-each-ref", "refs/mso/rejected/FTR-0001/"]), "");
    road.ok(&["sync"]);
    road.ok(&["fsck"]);
}

#[test]
fn a_landing_pushed_with_a_move_of_its_target_is_judged_by_the_target_as_it_was() {
    let road = Road::new();
    built_voyage(&road);
    road.ok(&["sync"]);
    road.repo.git_in(&road.server, &["config", "receive.denyNonFastForwards", "true"]);
    // The forge's main moves on without the voyage.
    let forge = road.forge_clone();
    road.repo.git_in(&forge, &["commit", "-q", "--allow-empty", "-m", "elsewhere"]);
    road.repo.git_in(&forge, &["push", "-q", "origin", "main"]);
    let head = road.repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    road.repo.git(&["update-ref", "refs/remotes/origin/main", &head]);
    road.ok(&["voyage", "list"]);
    let tip = road.server_rev("refs/mso/ledger");
    // A non-atomic push: git would refuse the forced main, and take the ledger.
    let (pushed, said) =
        road.push(&road.repo.path, &[&format!("+{head}:refs/heads/main"), "refs/mso/ledger:refs/mso/ledger"]);
    assert!(!pushed);
    assert!(said.contains("which is not on the server's main"), "{said}");
    assert_eq!(road.server_rev("refs/mso/ledger"), tip, "{said}");
}

#[test]
fn a_landing_recorded_before_the_remote_had_a_ledger_does_not_wedge_sync() {
    let road = Road::new();
    road.repo.git(&["remote", "remove", "origin"]);
    built_voyage(&road);
    road.repo.git(&["merge", "-q", "--ff-only", "voyage/VOY-0001"]);
    let out = road.ok(&["voyage", "list"]);
    assert!(out.contains("VOY-0001 landed on main"), "no remotes: the local main counts: {out}");
    // Later the team gets a server, whose main does not have the work.
    road.repo.git(&["remote", "add", "origin", &road.daemon.url("server.git")]);
    let out = road.ok(&["sync"]);
    assert!(out.contains("VOY-0001's landing at"), "left out: {out}");
    assert!(out.contains("pushed refs/mso/ledger to origin"), "{out}");
    assert_eq!(road.repo.json(&["voyage", "show", "VOY-0001", "--json"])["state"], "open");
    road.ok(&["sync"]);
    // Once main is pushed there, the landing is found again and accepted.
    road.repo.git(&["push", "-q", "origin", "main"]);
    road.ok(&["sync"]);
    assert_eq!(road.repo.json(&["voyage", "show", "VOY-0001", "--json"])["state"], "landed");
}

#[test]
fn a_commit_that_only_carries_the_trailer_is_no_squash_landing() {
    let road = Road::new();
    built_voyage(&road);
    road.ok(&["voyage", "publish", "VOY-0001"]);
    let forge = road.forge_clone();
    let git = |args: &[&str]| road.repo.git_in(&forge, args);
    git(&["commit", "-q", "--allow-empty", "-m", "Unrelated\n\nMso-Voyage: VOY-0001"]);
    let fake = git(&["rev-parse", "HEAD"]).trim().to_string();
    let (pushed, said) = road.push(&forge, &["main"]);
    assert!(pushed, "{said}");
    assert!(!said.contains("landed"), "the server was not fooled: {said}");
    let out = road.ok(&["sync"]);
    assert!(!out.contains("landed"), "nor was sync: {out}");
    assert_eq!(road.repo.json(&["voyage", "show", "VOY-0001", "--json"])["state"], "published");
    // A landing written by hand that names it is refused by the server.
    let head = road.repo.git(&["rev-parse", "voyage/VOY-0001"]).trim().to_string();
    let store = road.repo.store();
    store
        .transact(|tx| {
            tx.push(EventBody::VoyageLanded {
                voyage: "VOY-0001".parse().unwrap(),
                target: "main".into(),
                commit: fake.clone(),
                head: head.clone(),
                how: git_mso::core::state::LandedHow::Squash,
            })
        })
        .unwrap();
    let (pushed, said) = road.push(&road.repo.path, &["refs/mso/ledger:refs/mso/ledger"]);
    assert!(!pushed);
    assert!(said.contains("as its squash merge, but its changes are not VOY-0001's"), "{said}");
}
