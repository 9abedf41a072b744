//! End-to-end: the built binary on real repositories.

use crate::common::TestRepo;

#[test]
fn init_writes_the_default_pipeline_and_a_second_init_changes_nothing() {
    let repo = TestRepo::new();
    let out = repo.ok(&["init"]);
    assert!(out.contains("roles PLN → BLD → TST, review after PLN"), "{out}");
    let tip = repo.tip();
    assert!(!tip.is_empty());
    let again = repo.ok(&["init"]);
    assert!(again.contains("already initialized"), "{again}");
    assert_eq!(repo.tip(), tip);
    let config: serde_json::Value = serde_json::from_str(&repo.git(&["show", "refs/mso/ledger:config.json"])).unwrap();
    let kinds: Vec<&str> = config["kinds"].as_array().unwrap().iter().map(|k| k["code"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["FTR", "BUG", "CHR", "DOC"]);
    assert_eq!(config["kinds"][0]["gates"], serde_json::json!(["PLN"]));
    assert_eq!(config["roles"].as_array().unwrap().len(), 6);
}

#[test]
fn order_new_is_readable_through_the_cli_and_plain_git() {
    let repo = TestRepo::initialized();
    let out = repo.ok(&[
        "order",
        "new",
        "--title",
        "Add login page",
        "--ac",
        "a user can log in",
        "--ac",
        "bad password is refused",
    ]);
    assert_eq!(out.trim(), "FTR-0001  queued at PLN (Navigator)  voyage/VOY-0001");
    repo.ok(&[
        "order",
        "new",
        "--kind",
        "BUG",
        "--title",
        "Crash on save",
        "--voyage",
        "VOY-0001",
        "--brief",
        "line one\nline two",
    ]);

    let order = repo.json(&["order", "show", "FTR-0001", "--json"]);
    assert_eq!(order["status"], "queued");
    assert_eq!(order["role"], "PLN");
    assert_eq!(order["acceptance"], serde_json::json!(["a user can log in", "bad password is refused"]));
    assert_eq!(order["history"][0]["type"], "ORDER_CREATED");

    // The same state with plain git: the order file, the log, trailers.
    let file: serde_json::Value =
        serde_json::from_str(&repo.git(&["show", "refs/mso/ledger:orders/FTR-00/FTR-0001.json"])).unwrap();
    assert_eq!(file, order);
    let log = repo.git(&["log", "--format=%s", "refs/mso/ledger"]);
    assert_eq!(log.lines().count(), 3);
    assert!(log.lines().next().unwrap().starts_with("BUG-0001: created on VOY-0001"), "{log}");
    let trailers = repo.git(&["log", "-1", "--format=%(trailers:key=Mso-Order,valueonly)", "refs/mso/ledger"]);
    assert_eq!(trailers.trim(), "BUG-0001");
    let by_path = repo.git(&["log", "--format=%s", "refs/mso/ledger", "--", "orders/FTR-00/FTR-0001.json"]);
    assert_eq!(by_path.lines().count(), 1);

    // The voyage branch exists at the base commit.
    assert_eq!(repo.git(&["rev-parse", "voyage/VOY-0001"]), repo.git(&["rev-parse", "HEAD"]));

    let list = repo.json(&["order", "list", "--json"]);
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["BUG-0001", "FTR-0001"]);
    let bugs = repo.json(&["order", "list", "--kind", "BUG", "--json"]);
    assert_eq!(bugs.as_array().unwrap().len(), 1);
    let show = repo.ok(&["order", "show", "BUG-0001"]);
    assert!(show.contains("  line two"), "{show}");

    let status = repo.json(&["status", "--json"]);
    assert_eq!(status["orders"], 2);
    assert_eq!(status["roles"][0]["role"], "PLN");
    assert_eq!(status["roles"][0]["queued"], 2);
    // --no-gates opts an order out of its kind's review gates.
    repo.ok(&["order", "new", "--title", "ungated", "--no-gates", "--voyage", "VOY-0001"]);
    assert_eq!(repo.json(&["order", "show", "FTR-0002", "--json"])["gates"], serde_json::json!([]));
    repo.ok(&["fsck"]);
}

#[test]
fn cancel_and_a_second_cancel_names_the_state() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--title", "t"]);
    let out = repo.ok(&["order", "cancel", "FTR-0001", "--reason", "not needed"]);
    assert_eq!(out.trim(), "FTR-0001  cancelled (was queued at PLN)");
    let tip = repo.tip();
    let err = repo.fails(&["order", "cancel", "FTR-0001"], 1);
    assert_eq!(err.trim(), "error: FTR-0001 is cancelled at PLN, not active; nothing was written");
    assert_eq!(repo.tip(), tip);
    let status = repo.json(&["status", "--json"]);
    assert_eq!(status["cancelled"], 1);
    assert_eq!(status["roles"][0]["queued"], 0);
}

#[test]
fn bad_input_gets_one_clear_error_and_leaves_the_ledger_alone() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--title", "existing"]);
    let mut tip = repo.tip();
    let huge = "x".repeat(300);
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["order", "show", "../x"], 2, "malformed order id '../x'"),
        (vec!["order", "show", "FTR-1/2"], 2, "malformed order id 'FTR-1/2'"),
        (vec!["order", "cancel", "FTR-0001\u{1b}"], 2, "malformed order id 'FTR-0001\\u{1b}'"),
        (vec!["order", "show", "FTR-0099"], 1, "no order FTR-0099"),
        (vec!["order", "cancel", "FTR-0099"], 1, "no order FTR-0099; nothing was written"),
        (vec!["order", "new", "--title", "two\nlines"], 1, "title contains a newline"),
        (vec!["order", "new", "--title", &huge], 1, "title is 300 bytes, the limit is 200"),
        (vec!["order", "new", "--title", "   "], 1, "title is empty"),
        (vec!["order", "new", "--title", "t", "--kind", "XYZ"], 1, "unknown kind XYZ (configured: FTR,BUG,CHR,DOC)"),
        (vec!["order", "new", "--title", "t", "--kind", "ftr"], 2, "malformed kind 'ftr'"),
        (vec!["order", "new", "--title", "t", "--roles", "PLN,XYZ"], 1, "unknown role XYZ"),
        (vec!["order", "new", "--title", "t", "--roles", "PLN,PLN"], 1, "role PLN appears twice"),
        (
            vec!["order", "new", "--title", "t", "--roles", "BLD", "--gate", "PLN"],
            1,
            "gate PLN is not in the role sequence",
        ),
        (vec!["order", "new", "--title", "t", "--voyage", "VOY-0042"], 1, "no voyage VOY-0042"),
        (vec!["order", "new", "--title", "t", "--voyage", "../VOY"], 2, "malformed voyage id"),
        (
            vec!["order", "new", "--title", "t", "--ac", "a\u{7}b"],
            1,
            "acceptance criterion contains a newline, control or invisible character",
        ),
        (vec!["order", "new", "--title", "t", "--base", "no-such-rev"], 1, "cannot resolve 'no-such-rev' to a commit"),
        (vec!["order", "new", "--title", "t; rm -rf / $(reboot)"], 0, ""),
        (vec!["voyage", "new", "--base", "HEAD~5"], 1, "cannot resolve 'HEAD~5'"),
        (vec!["config", "max_attempts", "0"], 1, "max_attempts must be between 1 and 20"),
        (vec!["config", "lease_ttl_secs", "99999999999999"], 1, "lease_ttl_secs must be between 10 and 86400"),
        (
            vec!["order", "new", "--title", "hidden\u{202e}txt"],
            1,
            "title contains a newline, control or invisible character",
        ),
        (vec!["config", "no_such_key", "1"], 1, "unknown config key 'no_such_key'"),
        (vec!["approve", "FTR-0001"], 2, "unrecognized subcommand"),
    ];
    for (args, code, expected) in cases {
        let out = repo.mso(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        if code == 0 {
            // Shell metacharacters are just text: stored verbatim, never interpreted.
            let title = repo.json(&["order", "show", "FTR-0002", "--json"])["title"].clone();
            assert_eq!(title, "t; rm -rf / $(reboot)");
            tip = repo.tip();
            continue;
        }
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
        assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{args:?}: {stderr}");
        assert_eq!(repo.tip(), tip, "{args:?} moved the ledger");
    }
}

#[test]
fn oversized_brief_from_a_file_is_refused() {
    let repo = TestRepo::initialized();
    let tip = repo.tip();
    let path = repo.root().join("brief.md");
    std::fs::write(&path, "y".repeat(70_000)).unwrap();
    let err = repo.fails(&["order", "new", "--title", "t", "--brief-file", path.to_str().unwrap()], 1);
    assert!(err.contains("brief is 65537 bytes, the limit is 65536"), "{err}");
    assert_eq!(repo.tip(), tip);
}

#[test]
fn outside_a_repository_and_before_init() {
    let repo = TestRepo::new();
    let err = repo.fails(&["status"], 1);
    assert_eq!(err.trim(), "error: refs/mso/ledger does not exist: run `git mso init` first");
    let err = repo.fails(&["order", "new", "--title", "t"], 1);
    assert!(err.contains("run `git mso init` first"), "{err}");
    assert_eq!(repo.tip(), "");

    let outside = repo.root().join("plain");
    std::fs::create_dir_all(&outside).unwrap();
    let out = repo.mso_cmd(&outside).env("GIT_CEILING_DIRECTORIES", repo.root()).arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a git repository"));
}

#[test]
fn a_foreign_ref_at_refs_mso_ledger_is_refused_untouched() {
    let repo = TestRepo::new();
    let head = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["update-ref", "refs/mso/ledger", head.trim()]);
    for args in [vec!["status"], vec!["order", "new", "--title", "t"], vec!["init"], vec!["fsck"]] {
        let err = repo.fails(&args, 1);
        assert!(err.contains("not a git-mso ledger commit"), "{args:?}: {err}");
        assert_eq!(repo.tip(), head.trim());
    }
}

#[test]
fn fsck_names_the_first_commit_whose_tree_was_forged() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--title", "one"]);
    repo.ok(&["order", "new", "--title", "two"]);
    repo.ok(&["fsck"]);
    // Rewrite the middle commit's order file to say "completed", keep the message, re-chain the tip.
    let middle = repo.git(&["rev-parse", "refs/mso/ledger~1"]).trim().to_string();
    let forged_tree = {
        let work = repo.root().join("forge");
        repo.git(&["worktree", "add", "-q", "--detach", work.to_str().unwrap(), &middle]);
        let file = work.join("orders/FTR-00/FTR-0001.json");
        let text =
            std::fs::read_to_string(&file).unwrap().replace("\"status\": \"queued\"", "\"status\": \"completed\"");
        std::fs::write(&file, text).unwrap();
        repo.git_in(&work, &["add", "-A"]);
        repo.git_in(&work, &["write-tree"]).trim().to_string()
    };
    let msg = repo.git(&["log", "-1", "--format=%B", &middle]);
    let parent = repo.git(&["rev-parse", &format!("{middle}~1")]).trim().to_string();
    let msg_file = repo.root().join("msg");
    std::fs::write(&msg_file, msg.trim_end().to_string() + "\n").unwrap();
    let forged =
        repo.git(&["commit-tree", &forged_tree, "-p", &parent, "-F", msg_file.to_str().unwrap()]).trim().to_string();
    repo.git(&["update-ref", "refs/mso/ledger", &forged]);
    let err = repo.fails(&["fsck"], 1);
    assert!(err.contains(&forged[..7]), "{err}");
    assert!(err.contains("is not the canonical tree"), "{err}");
    assert!(err.contains("it differs at orders/FTR-00/FTR-0001.json"), "{err}");
}

#[test]
fn writes_without_any_git_identity() {
    let repo = TestRepo::empty();
    // No user.name, no user.email, not even a commit: init must still work.
    repo.ok(&["init"]);
    let author = repo.git(&["log", "-1", "--format=%an <%ae>", "refs/mso/ledger"]);
    assert_eq!(author.trim(), "git-mso <git-mso@localhost>");
    let err = repo.fails(&["order", "new", "--title", "t"], 1);
    assert!(err.contains("HEAD has no commit yet"), "{err}");
}

#[test]
fn works_from_a_bare_repository_and_a_linked_worktree() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--title", "t"]);
    let wt = repo.root().join("wt");
    repo.git(&["worktree", "add", "-q", "--detach", wt.to_str().unwrap()]);
    let out = repo.mso_in(&wt, &["order", "new", "--title", "from worktree", "--voyage", "VOY-0001"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let bare = repo.root().join("bare.git");
    repo.git(&["clone", "-q", "--bare", repo.path.to_str().unwrap(), bare.to_str().unwrap()]);
    repo.git_in(&bare, &["fetch", "-q", repo.path.to_str().unwrap(), "refs/mso/ledger:refs/mso/ledger"]);
    let out = repo.mso_in(&bare, &["order", "list", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let out = repo.mso_in(&bare, &["order", "new", "--title", "in bare", "--voyage", "VOY-0001"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = repo.mso_in(&bare, &["fsck"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn log_lists_newest_first_and_filters_by_order() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--title", "a"]);
    repo.ok(&["order", "new", "--title", "b"]);
    repo.ok(&["order", "cancel", "FTR-0001"]);
    let all = repo.ok(&["log"]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].ends_with("FTR-0001: cancelled"), "{all}");
    assert!(lines[3].ends_with("pipeline: initialized the pipeline"), "{all}");
    let one = repo.json(&["log", "FTR-0001", "--json"]);
    let types: Vec<&str> = one
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(types, ["CANCELLED", "ORDER_CREATED"]);
    assert_eq!(repo.ok(&["log", "-n", "1"]).lines().count(), 1);
}

#[test]
fn config_changes_are_ledger_events() {
    let repo = TestRepo::initialized();
    repo.ok(&["config", "kinds.FTR.gates", "[\"PLN\",\"TST\"]"]);
    repo.ok(&["config", "persona_set", "default"]);
    assert_eq!(repo.json(&["config", "kinds.FTR.gates"]), serde_json::json!(["PLN", "TST"]));
    let out = repo.ok(&["order", "new", "--title", "t"]);
    assert!(out.contains("queued at PLN (Planner)"), "{out}");
    assert_eq!(repo.json(&["order", "show", "FTR-0001", "--json"])["gates"], serde_json::json!(["PLN", "TST"]));
    let subject = repo.git(&["log", "--format=%s", "-3", "refs/mso/ledger"]);
    assert!(subject.contains("pipeline: set persona_set = \"default\""), "{subject}");
    repo.ok(&["fsck"]);
}

#[test]
fn completions_cover_every_command() {
    let repo = TestRepo::new();
    let bash = repo.ok(&["completions", "bash"]);
    for command in ["init", "order", "dispatch", "review", "sync", "hooks", "fsck"] {
        assert!(bash.contains(command), "{command} missing from the bash completions");
    }
    assert_eq!(repo.mso(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn gc_packs_what_appends_left_loose() {
    let repo = TestRepo::initialized();
    for i in 0..20 {
        repo.ok(&["order", "new", "--title", &format!("o{i}")]);
    }
    let tip = repo.tip();
    let out = repo.ok(&["gc"]);
    assert!(out.lines().nth(1).unwrap().starts_with("after:  0 loose objects"), "{out}");
    assert_eq!(repo.tip(), tip);
    repo.ok(&["fsck"]);
    assert_eq!(repo.json(&["order", "list", "--json"]).as_array().unwrap().len(), 20);
}

/// How a test rewrites a file's text.
type Edit = Box<dyn Fn(String) -> String>;

/// Rewrite one file of the ledger tip (keeping its message) with plain git.
fn tamper(repo: &TestRepo, path: &str, edit: impl Fn(String) -> String) {
    let work = repo.root().join("tamper");
    let _ = std::fs::remove_dir_all(&work);
    repo.git(&["worktree", "add", "-q", "--detach", work.to_str().unwrap(), "refs/mso/ledger"]);
    let file = work.join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, edit(text)).unwrap();
    repo.git_in(&work, &["add", "-A"]);
    let tree = repo.git_in(&work, &["write-tree"]).trim().to_string();
    let msg = repo.root().join("tamper-msg");
    std::fs::write(&msg, repo.git(&["log", "-1", "--format=%B", "refs/mso/ledger"]).trim_end().to_string() + "\n")
        .unwrap();
    let parent = repo.git(&["rev-parse", "refs/mso/ledger~1"]).trim().to_string();
    let commit = repo.git(&["commit-tree", &tree, "-p", &parent, "-F", msg.to_str().unwrap()]).trim().to_string();
    repo.git(&["update-ref", "refs/mso/ledger", &commit]);
    repo.git(&["worktree", "remove", "--force", work.to_str().unwrap()]);
}

#[test]
fn readers_and_writers_never_panic_on_corrupt_ledger_content() {
    let corruptions: Vec<(&str, Edit)> = vec![
        ("orders/FTR-00/FTR-0001.json", Box::new(|_| "{ not json".into())),
        ("orders/FTR-00/FTR-0001.json", Box::new(|t| t.replacen("\"role\": \"PLN\"", "\"role\": \"XYZ\"", 1))),
        ("orders/FTR-00/FTR-0001.json", Box::new(|t| t.replacen("\"id\": \"FTR-0001\"", "\"id\": \"FTR-0002\"", 1))),
        ("orders/FTR-00/_index.jsonl", Box::new(|_| "\u{0}\u{1}garbage\n".into())),
        (
            "stats.json",
            Box::new(|_| {
                "{\"stats\":{\"orders\":0,\"events\":0,\"by_role\":{}},\"ids\":{\"orders\":{},\"voyages\":0}}".into()
            }),
        ),
        ("config.json", Box::new(|_| "[]".into())),
        ("voyages/00/VOY-0001.json", Box::new(|_| "null".into())),
    ];
    for (path, edit) in corruptions {
        let repo = TestRepo::initialized();
        repo.ok(&["order", "new", "--title", "t"]);
        tamper(&repo, path, edit);
        let tip = repo.tip();
        for args in [
            vec!["status"],
            vec!["order", "list"],
            vec!["order", "show", "FTR-0001"],
            vec!["order", "cancel", "FTR-0001"],
            vec!["review", "approve", "FTR-0001"],
            vec!["voyage", "show", "VOY-0001"],
            vec!["dispatch", "--once"],
            vec!["log"],
            vec!["fsck"],
        ] {
            let out = repo.mso(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "{path}: git mso {args:?} panicked: {stderr}");
            assert_ne!(out.status.code(), Some(101), "{path}: git mso {args:?}");
        }
        let fsck = repo.mso(&["fsck"]);
        assert_eq!(fsck.status.code(), Some(1), "{path}: fsck must report the tampering");
        assert_eq!(repo.tip(), tip, "{path}: nothing was written on top of a corrupt ledger");
    }
}

#[test]
fn replace_refs_never_change_what_git_mso_reads() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--title", "the real title"]);
    // Replace the order file's blob with one that says something else.
    let blob = repo.git(&["rev-parse", "refs/mso/ledger:orders/FTR-00/FTR-0001.json"]).trim().to_string();
    let text = repo.git(&["cat-file", "blob", &blob]).replace("the real title", "a swapped title");
    let swapped = repo.root().join("swapped.json");
    std::fs::write(&swapped, text).unwrap();
    let fake = repo.git(&["hash-object", "-w", swapped.to_str().unwrap()]).trim().to_string();
    repo.git(&["replace", &blob, &fake]);
    assert!(
        repo.git(&["show", "refs/mso/ledger:orders/FTR-00/FTR-0001.json"]).contains("a swapped title"),
        "git honours it"
    );
    assert_eq!(repo.json(&["order", "show", "FTR-0001", "--json"])["title"], "the real title");
    repo.ok(&["fsck"]);
    repo.ok(&["order", "new", "--title", "next"]);
    repo.ok(&["fsck"]);
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly_with_status_0() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    for args in [&["log"][..], &["log", "--json"], &["completions", "bash"], &["order", "show", "CHR-0001"]] {
        let mut cmd = repo.mso_cmd(&repo.path);
        cmd.args(args);
        // The reader is gone before the command writes a byte.
        let out = crate::common::output_with_reader_gone(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "git mso {args:?}: {stderr}");
        assert!(stderr.is_empty(), "git mso {args:?} complained: {stderr}");
    }
}

#[test]
fn settings_given_with_git_c_are_honoured_for_identity_and_crews() {
    let repo = TestRepo::initialized();
    let git_mso = |args: &[&str]| {
        let out = repo.git_with_mso(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    git_mso(&["-c", "mso.user=zed", "mso", "order", "new", "--kind", "CHR", "--title", "t"]);
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["history"][0]["actor"], "zed", "{order}");
    let crew = repo.crew("crew.sh", "echo from-c > work.txt");
    let out = git_mso(&[
        "-c",
        &format!("mso.crew.BLD.command={crew}"),
        "-c",
        "mso.crew.TST.command=true",
        "mso",
        "dispatch",
        "--once",
    ]);
    assert!(out.contains("CHR-0001  TST") && out.contains("completed"), "{out}");
    assert_eq!(repo.git(&["show", "voyage/VOY-0001:work.txt"]), "from-c\n");
}

#[test]
fn mistyped_ids_kinds_and_roles_get_a_hint_not_a_puzzle() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let err = repo.fails(&["order", "show", "VOY-0001"], 1);
    assert!(err.contains("VOY-0001 is a voyage (`git mso voyage show VOY-0001`)"), "{err}");
    let err = repo.fails(&["order", "show", "chr-0001"], 2);
    assert!(err.contains("did you mean 'CHR-0001'?"), "{err}");
    let err = repo.fails(&["order", "new", "--kind", "bug", "--title", "t"], 2);
    assert!(err.contains("did you mean 'BUG'?"), "{err}");
    let err = repo.fails(&["order", "new", "--kind", "QA", "--title", "t"], 1);
    assert!(err.contains("unknown kind QA (configured: FTR,BUG,CHR,DOC)"), "{err}");
    let err = repo.fails(&["order", "list", "--role", "XYZ"], 1);
    assert!(err.contains("unknown role XYZ (configured: PLN,BLD,TST,DOC,SEC,REL)"), "{err}");
    let err = repo.fails(&["voyage", "show", "voy-0001"], 2);
    assert!(err.contains("did you mean 'VOY-0001'?"), "{err}");
}

#[test]
fn status_shows_the_roles_kinds_use_and_all_with_all() {
    let repo = TestRepo::initialized();
    let out = repo.ok(&["status"]);
    assert!(!out.contains("\nSEC ") && !out.contains("\nREL "), "{out}");
    assert!(out.contains("2 role(s) no kind uses are not shown (--all shows them)"), "{out}");
    let all = repo.ok(&["status", "--all"]);
    assert!(all.contains("\nSEC ") && all.contains("\nREL "), "{all}");
    // An order at a role no kind uses shows it anyway.
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t", "--roles", "SEC"]);
    let out = repo.ok(&["status"]);
    assert!(out.contains("\nSEC ") && out.contains("1 role(s) no kind uses"), "{out}");
    assert_eq!(repo.json(&["status", "--json"])["roles"].as_array().unwrap().len(), 6);
}

#[test]
fn config_refuses_mistakes_with_an_example_and_creates_only_when_told() {
    let repo = TestRepo::initialized();
    let tip = repo.tip();
    let err = repo.fails(&["config", "roles.QA.model", "deep"], 1);
    assert!(err.contains("unknown role 'QA' in 'roles.QA.model' (configured: PLN,BLD,TST,DOC,SEC,REL)"), "{err}");
    assert!(err.contains("git mso config --create roles.QA.model"), "{err}");
    let err = repo.fails(&["config", "kinds.SPIKE.gates", "[]"], 1);
    assert!(err.contains("unknown kind 'SPIKE'"), "{err}");
    let err = repo.fails(&["config", "approvers", "alice"], 1);
    assert!(err.contains("for example: git mso config approvers '[\"alice\"]'"), "{err}");
    let err = repo.fails(&["config", "lease_ttl_secs", "5x"], 1);
    assert!(err.contains("for example: git mso config lease_ttl_secs 10m"), "{err}");
    let err = repo.fails(&["config", "--unset", "max_attempts"], 1);
    assert!(err.contains("'max_attempts' cannot be unset"), "{err}");
    assert_eq!(repo.tip(), tip, "a refused setting wrote nothing");

    assert!(repo.ok(&["config", "lease_ttl_secs", "15m"]).contains("lease_ttl_secs = 900"));
    repo.ok(&["config", "budget_usd", "25"]);
    assert_eq!(repo.json(&["config"])["budget_micros"], 25_000_000);
    // A key reads back by the name it was set by.
    assert_eq!(repo.json(&["config", "budget_usd"]), 25.0);
    repo.ok(&["config", "kinds.CHR.budget_usd", "2.5"]);
    assert_eq!(repo.json(&["config", "kinds.CHR.budget_usd"]), 2.5);
    repo.ok(&["config", "--unset", "budget_usd"]);
    assert!(repo.json(&["config"])["budget_micros"].is_null());
    assert!(repo.json(&["config", "budget_usd"]).is_null());
    let err = repo.fails(&["config", "no_such_key"], 1);
    assert!(err.contains("no config key 'no_such_key'"), "{err}");
    repo.ok(&["config", "--create", "roles.QA.model", "deep"]);
    assert_eq!(repo.json(&["config", "roles.QA.model"]), "deep");
    let set = repo.json(&["config", "--json", "max_attempts", "4"]);
    assert_eq!(set, serde_json::json!({ "key": "max_attempts", "value": 4 }));
}

#[test]
fn bash_completes_git_mso_through_git_s_own_completion() {
    let git_completion = std::path::Path::new("/usr/share/bash-completion/completions/git");
    if !git_completion.exists() {
        eprintln!("skipped: git's bash completion is not installed here");
        return;
    }
    let repo = TestRepo::initialized();
    let bin = assert_cmd::cargo::cargo_bin("git-mso");
    let script = repo.root().join("git-mso.bash");
    let out = std::process::Command::new(&bin).args(["completions", "bash"]).output().unwrap();
    std::fs::write(&script, &out.stdout).unwrap();
    let complete = |line: &str| {
        let program = format!(
            "source '{}'; source '{}'\n\
             COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}\n\
             read -ra COMP_WORDS <<< \"$COMP_LINE\"\n\
             [[ \"$COMP_LINE\" == *' ' ]] && COMP_WORDS+=('')\n\
             COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
             if [ \"${{COMP_WORDS[0]}}\" = git ]; then __git_wrap__git_main; else _git__mso git-mso \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; fi\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            git_completion.display(),
            script.display()
        );
        let out = std::process::Command::new("bash").args(["-c", &program]).current_dir(&repo.path).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(complete("git mso or"), ["order"]);
    assert!(complete("git mso order ").contains(&"show".to_string()), "{:?}", complete("git mso order "));
    assert_eq!(complete("git mso order show --js"), ["--json"]);
    assert!(complete("git-mso dis").contains(&"dispatch".to_string()));
    assert!(complete("git-mso voyage ").contains(&"publish".to_string()), "{:?}", complete("git-mso voyage "));
}

/// Print what an interactive zsh completes for the line `$1`, with the
/// functions in `$2` on fpath: a zsh under zpty, `compadd` overridden to
/// print each match, Tab pressed once.
const ZSH_CAPTURE: &str = r#"zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "fpath=($2 \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'bindkey "^I" complete-word'
zpty -w z 'null-line () { echo -E - $'\''\0'\'' }; compprefuncs=( null-line ); comppostfuncs=( null-line exit )'
zpty -w z 'zstyle ":completion:*" list-grouped false; zstyle ":completion:*" insert-tab false'
zpty -w z 'compadd () { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi; typeset -a __hits; builtin compadd -A __hits "$@"; (( $#__hits )) && print -l -- "HIT:"${^__hits} }'
zpty -w z "$1"$'\t'
integer tog=0
while zpty -r z; do :; done | while IFS= read -r line; do
  if [[ $line == *$'\0\r' ]]; then (( tog++ )) && return 0 || continue; fi
  (( tog )) && print -r -- "${line%$'\r'}"
done
"#;

#[test]
fn zsh_completes_git_mso_through_git_s_own_completion() {
    let has_git_completion = std::process::Command::new("zsh")
        .args(["-f", "-c", "autoload -U compinit; compinit -u -D; (( $+functions[_git] ))"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_git_completion {
        eprintln!("skipped: zsh, or its completion for git, is not installed here");
        return;
    }
    let repo = TestRepo::initialized();
    let bin = assert_cmd::cargo::cargo_bin("git-mso");
    let functions = repo.root().join("zsh-functions");
    std::fs::create_dir_all(&functions).unwrap();
    let out = std::process::Command::new(&bin).args(["completions", "zsh"]).output().unwrap();
    std::fs::write(functions.join("_git-mso"), &out.stdout).unwrap();
    let capture = repo.root().join("capture.zsh");
    std::fs::write(&capture, ZSH_CAPTURE).unwrap();
    let path = format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let complete = |line: &str| {
        let out = std::process::Command::new("zsh")
            .args(["-f", capture.to_str().unwrap(), line, functions.to_str().unwrap()])
            .env("PATH", &path)
            .current_dir(&repo.path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().filter_map(|l| l.strip_prefix("HIT:")).map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(complete("git mso or"), ["order"]);
    assert_eq!(complete("git mso order ed"), ["edit"]);
    assert!(complete("git mso ").contains(&"undo".to_string()), "{:?}", complete("git mso "));
    assert_eq!(complete("git-mso dis"), ["dispatch"]);
}

#[test]
fn man_pages_install_where_git_help_finds_them() {
    let repo = TestRepo::initialized();
    let man = repo.root().join("share/man");
    let out = repo.ok(&["man", "--install", "--dir", man.join("man1").to_str().unwrap()]);
    assert!(out.contains("manual pages to"), "{out}");
    for page in ["git-mso.1", "git-mso-order.1", "git-mso-order-new.1", "git-mso-config.1", "git-mso-dispatch.1"] {
        let text = std::fs::read_to_string(man.join("man1").join(page)).unwrap();
        assert!(text.contains(".TH"), "{page} is not a manual page");
    }
    let config = std::fs::read_to_string(man.join("man1/git-mso-config.1")).unwrap();
    assert!(config.contains("Examples"), "the config page lacks its examples");
    // A binary outside a bin directory (this one is in target/debug) asks where.
    let err = repo.fails(&["man", "--install"], 1);
    assert!(err.contains("is not in a bin directory") && err.contains("--dir"), "{err}");
    let printed = repo.ok(&["man"]);
    assert!(printed.starts_with(".ie") && printed.contains(".SH SUBCOMMANDS"), "{printed}");

    if std::process::Command::new("man").arg("--version").output().is_err() {
        eprintln!("skipped rendering: man is not installed here");
        return;
    }
    for args in [&["mso", "--help"][..], &["help", "mso"]] {
        let mut cmd = repo.git_with_mso(args);
        cmd.env("MANPATH", format!("{}:", man.display())).env("MANPAGER", "cat").env("PAGER", "cat");
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("git-mso(1)") && text.contains("SUBCOMMANDS"),
            "git {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn long_output_goes_through_git_s_pager_when_asked_or_on_a_terminal() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let run = |args: &[&str], pager: &str| {
        let out = repo.mso_cmd(&repo.path).args(args).env("GIT_PAGER", pager).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let paged = run(&["-p", "log"], "sed 's/^/paged: /'");
    assert!(paged.lines().all(|l| l.starts_with("paged: ")) && !paged.is_empty(), "{paged}");
    // Not a terminal, not asked: no pager.
    assert!(!run(&["log"], "sed 's/^/paged: /'").contains("paged: "));
    // core.pager from the repository's config, when GIT_PAGER is not set.
    repo.git(&["config", "core.pager", "sed 's/^/core: /'"]);
    let out = repo
        .mso_cmd(&repo.path)
        .args(["-p", "order", "list"])
        .env_remove("GIT_PAGER")
        .env_remove("PAGER")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("core: "), "{text}");
    // A pager of `cat` is no pager; a reader that quits early is no error.
    assert!(!run(&["-p", "log"], "cat").contains("paged"));
    let out = repo.mso_cmd(&repo.path).args(["-p", "log"]).env("GIT_PAGER", "true").output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn on_a_terminal_output_is_coloured_and_paged_unless_told_otherwise() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: script(1), to give the command a terminal, is not installed here");
        return;
    }
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t"]);
    let bin = assert_cmd::cargo::cargo_bin("git-mso");
    // `script` runs the command on a pseudo-terminal and copies what it printed.
    let on_terminal = |args: &str, env: &[(&str, &str)]| {
        let mut script = std::process::Command::new("script");
        script.args(["-qec", &format!("'{}' {args}", bin.display()), "/dev/null"]).current_dir(&repo.path);
        crate::common::isolate(&mut script, &repo.home);
        script.env_remove("NO_COLOR").env("GIT_PAGER", "sed 's/^/paged: /'");
        for (k, v) in env {
            script.env(k, v);
        }
        String::from_utf8_lossy(&script.output().unwrap().stdout).replace('\r', "")
    };
    let out = on_terminal("order list", &[]);
    assert!(out.contains("paged: CHR-0001  \u{1b}[34mqueued"), "{out:?}");
    let plain = on_terminal("--no-pager order list", &[("NO_COLOR", "1")]);
    assert!(plain.contains("CHR-0001  queued") && !plain.contains("paged:") && !plain.contains('\u{1b}'), "{plain:?}");
    repo.git(&["config", "color.ui", "never"]);
    let never = on_terminal("-P order list", &[]);
    assert!(!never.contains('\u{1b}'), "{never:?}");
    // Writing commands are never paged.
    let wrote = on_terminal("order new --kind CHR --title u", &[]);
    assert!(wrote.contains("CHR-0002") && !wrote.contains("paged:"), "{wrote:?}");
}

#[test]
fn git_c_values_with_bangs_quotes_and_bare_keys_all_arrive() {
    let repo = TestRepo::initialized();
    let mut n = 0;
    for (before, who) in [(&["-c", "x.y=a!b"][..], "bob"), (&["-c", "x.flag"], "carol"), (&["-c", "x.q=it's"], "dave")]
    {
        let user = format!("mso.user={who}");
        let mut args = before.to_vec();
        args.extend(["-c", &user, "mso", "order", "new", "--kind", "CHR", "--title", "t"]);
        let out = repo.git_with_mso(&args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        n += 1;
        let order = repo.json(&["order", "show", &format!("CHR-{n:04}"), "--json"]);
        assert_eq!(order["history"][0]["actor"], who, "{before:?}");
    }
    // What git itself would call bogus is refused, not half read.
    let out = repo
        .mso_cmd(&repo.path)
        .args(["status"])
        .env("GIT_CONFIG_PARAMETERS", "'mso.user'='x' garbage")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus format in GIT_CONFIG_PARAMETERS"));
}
