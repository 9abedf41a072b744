//! The shipped crews: demo crews through a whole order, and the Claude Code
//! adapter against a stand-in `claude` on PATH (the real CLI is not here).

mod common;

use common::TestRepo;

fn crews_dir() -> String {
    format!("{}/scripts/crews", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_demo_crews_plan_build_and_test_an_order() {
    let repo = TestRepo::initialized();
    let dir = crews_dir();
    repo.set_crews(&[
        ("PLN", &format!("{dir}/demo-plan.sh")),
        ("BLD", &format!("{dir}/demo-build.sh")),
        ("TST", &format!("{dir}/demo-test.sh")),
    ]);
    repo.ok(&["order", "new", "--title", "Login", "--ac", "a user can log in", "--ac", "bad password is refused"]);
    repo.dispatch(&["--once"]);
    repo.ok(&["review", "approve", "FTR-0001"]);
    let out = repo.dispatch(&["--once"]);
    assert!(out.contains("FTR-0001  TST  Bosun       succeeded"), "{out}");
    let plan = repo.git(&["show", "voyage/VOY-0001:plans/FTR-0001.md"]);
    assert!(plan.contains("1. Make it so: a user can log in\n1. Make it so: bad password is refused"), "{plan}");
    let order = repo.json(&["order", "show", "FTR-0001", "--json"]);
    assert_eq!(order["status"], "completed");
    let handoffs = order["handoffs"].as_array().unwrap();
    assert_eq!(
        handoffs[0]["summary"],
        "wrote plans/FTR-0001.md with 3 steps\n\nsee plans/FTR-0001.md on the voyage branch"
    );
    assert_eq!(handoffs[1]["summary"], "built src/ftr-0001.txt from the plan (1 PLN hand-off in the brief)");
    assert_eq!(handoffs[2]["summary"], "checked src/ftr-0001.txt: 2 of 2 criteria pass");
    let show = repo.ok(&["order", "show", "FTR-0001"]);
    assert!(show.contains(" PLN at ") && show.contains(": wrote plans/FTR-0001.md with 3 steps"), "{show}");
    assert!(show.lines().any(|l| l.starts_with("hand-off    TST at ")), "{show}");
}

/// A stand-in `claude`: records its arguments and stdin, answers like `--output-format json`.
fn fake_claude(repo: &TestRepo, answer: &str) -> std::path::PathBuf {
    let bin = repo.root().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\necho \"$@\" > '{root}/claude-args'\ncat > '{root}/claude-stdin'\necho 'edited' > edited.txt\nprintf '%s' '{answer}'\n",
        root = repo.root().display()
    );
    let path = bin.join("claude");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn dispatch_with_path(repo: &TestRepo, bin: &std::path::Path) -> String {
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = repo.mso_cmd(&repo.path).args(["dispatch", "--once"]).env("PATH", path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_claude_code_adapter_passes_the_brief_on_stdin_and_stores_the_result() {
    let repo = TestRepo::initialized();
    let bin = fake_claude(&repo, r#"{"type":"result","is_error":false,"result":"Implemented the form."}"#);
    repo.set_crews(&[("BLD", &format!("{}/claude-code.sh", crews_dir()))]);
    repo.ok(&["config", "max_attempts", "1"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "Add a form; $(touch /tmp/pwned)", "--roles", "BLD"]);
    let out = dispatch_with_path(&repo, &bin);
    assert!(out.contains("CHR-0001  BLD  Shipwright  succeeded"), "{out}");
    let args = std::fs::read_to_string(repo.root().join("claude-args")).unwrap();
    assert_eq!(args.trim(), "-p --model sonnet --output-format json --permission-mode acceptEdits");
    let stdin = std::fs::read_to_string(repo.root().join("claude-stdin")).unwrap();
    assert!(stdin.starts_with("# CHR-0001: Add a form; $(touch /tmp/pwned)"), "{stdin}");
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["handoffs"][0]["summary"], "Implemented the form.");
    assert_eq!(repo.git(&["show", "voyage/VOY-0001:edited.txt"]), "edited\n");
}

#[test]
fn the_claude_code_adapter_fails_the_role_when_claude_reports_an_error() {
    let repo = TestRepo::initialized();
    let bin = fake_claude(&repo, r#"{"type":"result","is_error":true,"result":"API overloaded"}"#);
    repo.set_crews(&[("BLD", &format!("{}/claude-code.sh", crews_dir()))]);
    repo.ok(&["config", "max_attempts", "1"]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t", "--roles", "BLD"]);
    let out = dispatch_with_path(&repo, &bin);
    assert!(out.contains("failed (exited with status 1)"), "{out}");
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert!(order["last_error"].as_str().unwrap().contains("claude reported an error"), "{order}");
}
