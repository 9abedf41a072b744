//! The shipped crews: demo crews through a whole order, and the adapters for
//! Claude Code, Codex, Gemini CLI and Aider, each against a stand-in
//! executable on PATH (the real CLIs are not here) that records its
//! arguments and stdin and replays the output shapes the real tool prints,
//! errors included.

use crate::common::TestRepo;

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
    assert!(show.contains("  2. ✓ bad password is refused"), "{show}");
}

#[test]
fn the_demo_tester_sends_a_skipped_criterion_back_and_the_builder_fixes_it() {
    let repo = TestRepo::initialized();
    let dir = crews_dir();
    repo.set_crews(&[("BLD", &format!("{dir}/demo-build.sh")), ("TST", &format!("{dir}/demo-test.sh"))]);
    let brief = "The demo builder will skip the last step once.";
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "t", "--brief", brief, "--ac", "one", "--ac", "two"]);
    let out = repo.dispatch(&["--once"]);
    assert!(
        out.contains("sent back: criterion 2 failed: two — src/chr-0001.txt has no step for it → back to BLD"),
        "{out}"
    );
    assert!(out.contains("CHR-0001  TST  Bosun       succeeded → completed"), "{out}");
}

/// A stand-in `tool` on a PATH of its own: records its arguments (one per
/// line) and stdin, edits a file unless READ_ONLY, prints `output` and exits with `status`.
struct StandIn {
    bin: std::path::PathBuf,
    root: std::path::PathBuf,
}

impl StandIn {
    fn new(repo: &TestRepo, tool: &str, output: &str, status: i32) -> StandIn {
        let bin = repo.root().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let root = repo.root().to_path_buf();
        std::fs::write(root.join(format!("{tool}-output")), output).unwrap();
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{root}/{tool}-args'\ncat > '{root}/{tool}-stdin'\nenv | grep '^GEMINI_CLI' > '{root}/{tool}-env' || true\n[ \"$MSO_READ_ONLY\" = 1 ] || echo edited > edited.txt\ncat '{root}/{tool}-output'\nexit {status}\n",
            root = root.display()
        );
        let path = bin.join(tool);
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        StandIn { bin, root }
    }

    fn args(&self, tool: &str) -> Vec<String> {
        std::fs::read_to_string(self.root.join(format!("{tool}-args"))).unwrap().lines().map(str::to_string).collect()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.root.join(name)).unwrap()
    }

    /// `git mso dispatch --once` with the stand-in first on PATH; stdout and exit code.
    fn dispatch(&self, repo: &TestRepo) -> (String, Option<i32>) {
        let path = format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap_or_default());
        let out = repo.mso_cmd(&repo.path).args(["dispatch", "--once"]).env("PATH", path).output().unwrap();
        (String::from_utf8(out.stdout).unwrap(), out.status.code())
    }
}

/// A repository whose BLD (or `role`) runs `adapter`, with a test command, a turn limit and a budget.
fn adapter_repo(adapter: &str, role: &str) -> TestRepo {
    let repo = TestRepo::initialized();
    repo.set_crews(&[(role, &format!("{}/{adapter}", crews_dir()))]);
    repo.git(&["config", "mso.crew.testCommand", "cargo test"]);
    repo.git(&["config", "mso.crew.maxTurns", "7"]);
    repo.ok(&["config", "max_attempts", "1"]);
    repo.ok(&[
        "order",
        "new",
        "--kind",
        "CHR",
        "--title",
        "Add a form; $(touch /tmp/pwned)",
        "--roles",
        role,
        "--budget-usd",
        "2",
    ]);
    repo
}

/// The run report of the order's last result event.
fn run_report(repo: &TestRepo) -> serde_json::Value {
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    let history = order["history"].as_array().unwrap();
    history.iter().rev().find(|e| e["type"] == "SUCCEEDED" || e["type"] == "FAILED").unwrap()["run"].clone()
}

fn last_error(repo: &TestRepo) -> String {
    repo.json(&["order", "show", "CHR-0001", "--json"])["last_error"].as_str().unwrap_or_default().to_string()
}

const CLAUDE_STREAM: &str = r#"{"type":"system","subtype":"init","model":"claude-sonnet-4-5"}
{"type":"assistant","message":{"content":[{"type":"text","text":"Running cargo test"}]}}
{"type":"result","subtype":"success","is_error":false,"result":"Implemented the form.","num_turns":4,"total_cost_usd":0.0312,"usage":{"input_tokens":1200,"cache_read_input_tokens":300,"output_tokens":450},"modelUsage":{"claude-sonnet-4-5":{}}}
"#;

#[test]
fn claude_code_builds_with_tests_allowed_limits_set_and_usage_recorded() {
    let repo = adapter_repo("claude-code.sh", "BLD");
    let claude = StandIn::new(&repo, "claude", CLAUDE_STREAM, 0);
    let (out, code) = claude.dispatch(&repo);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("CHR-0001  BLD  Shipwright  succeeded → completed  (0 s, $0.03, 1950 tokens)\n"), "{out}");
    assert_eq!(
        claude.args("claude"),
        [
            "-p",
            "--model",
            "sonnet",
            "--output-format",
            "stream-json",
            "--verbose",
            "--permission-mode",
            "acceptEdits",
            "--allowedTools",
            "Read,Grep,Glob,Edit,Write,Bash(cargo test:*)",
            "--max-turns",
            "7",
            "--max-budget-usd",
            "2.00"
        ]
    );
    assert!(claude.read("claude-stdin").starts_with("# CHR-0001: Add a form; $(touch /tmp/pwned)"));
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["handoffs"][0]["summary"], "Implemented the form.");
    let usage = &run_report(&repo)["usage"];
    assert_eq!(usage["model"], "claude-sonnet-4-5");
    assert_eq!((usage["tokens_in"].as_u64(), usage["tokens_out"].as_u64()), (Some(1500), Some(450)));
    assert_eq!((usage["cost_micros"].as_u64(), usage["turns"].as_u64()), (Some(31_200), Some(4)));
    assert_eq!(repo.git(&["show", "voyage/VOY-0001:edited.txt"]), "edited\n");
    // Progress reached the crew log as the tool printed it.
    assert!(repo.ok(&["logs", "CHR-0001"]).contains("Running cargo test"));
}

#[test]
fn claude_code_stays_read_only_for_a_security_review() {
    let repo = adapter_repo("claude-code.sh", "SEC");
    let claude = StandIn::new(&repo, "claude", CLAUDE_STREAM, 0);
    let (out, _) = claude.dispatch(&repo);
    assert!(out.contains("SEC  Lookout     succeeded"), "{out}");
    let args = claude.args("claude");
    let tools = args.iter().position(|a| a == "--allowedTools").unwrap();
    assert_eq!(args[tools + 1], "Read,Grep,Glob");
    assert!(args.windows(2).any(|w| w == ["--permission-mode", "dontAsk"]), "{args:?}");
    assert!(args.windows(2).any(|w| w == ["--model", "opus"]), "SEC's tier is deep: {args:?}");
}

#[test]
fn claude_code_errors_fail_the_role_though_it_exits_0() {
    for (shape, expected) in [
        (r#"{"type":"result","subtype":"error_max_turns","is_error":true,"result":""}"#, "claude reported an error"),
        (r#"{"type":"result","subtype":"success","is_error":false,"result":""}"#, "claude returned an empty result"),
        (r#"{"type":"assistant","message":{}}"#, "claude printed no result event"),
    ] {
        let repo = adapter_repo("claude-code.sh", "BLD");
        let claude = StandIn::new(&repo, "claude", shape, 0);
        let (out, code) = claude.dispatch(&repo);
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains("→ failed for good"), "{out}");
        assert!(last_error(&repo).contains(expected), "{shape}: {}", last_error(&repo));
    }
}

const CODEX_STREAM: &str = r#"{"type":"thread.started","thread_id":"t1"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"i1","type":"command_execution","command":"cargo test","exit_code":0}}
{"type":"item.completed","item":{"id":"i2","type":"file_change","changes":[]}}
{"type":"item.completed","item":{"id":"i3","type":"agent_message","text":"Added the form; tests pass."}}
{"type":"turn.completed","usage":{"input_tokens":5000,"cached_input_tokens":1000,"output_tokens":800}}
"#;

#[test]
fn codex_builds_in_a_workspace_sandbox_and_its_usage_is_recorded() {
    let repo = adapter_repo("codex.sh", "BLD");
    let codex = StandIn::new(&repo, "codex", CODEX_STREAM, 0);
    let (out, code) = codex.dispatch(&repo);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(codex.args("codex"), ["exec", "--json", "-m", "gpt-5.1-codex", "--sandbox", "workspace-write", "-"]);
    assert!(codex.read("codex-stdin").contains("## Your instructions\n\nYou build."));
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["handoffs"][0]["summary"], "Added the form; tests pass.");
    let usage = &run_report(&repo)["usage"];
    assert_eq!(
        (usage["tokens_in"].as_u64(), usage["tokens_out"].as_u64(), usage["turns"].as_u64()),
        (Some(5000), Some(800), Some(1))
    );
}

#[test]
fn codex_failed_turns_fail_and_too_many_steps_stop_it() {
    let repo = adapter_repo("codex.sh", "SEC");
    let failed =
        "{\"type\":\"turn.started\"}\n{\"type\":\"turn.failed\",\"error\":{\"message\":\"stream disconnected\"}}\n";
    let codex = StandIn::new(&repo, "codex", failed, 0);
    let (out, code) = codex.dispatch(&repo);
    assert_eq!(code, Some(1), "{out}");
    assert!(codex.args("codex").windows(2).any(|w| w == ["--sandbox", "read-only"]));
    assert!(last_error(&repo).contains("codex reported a failed turn"), "{}", last_error(&repo));

    let repo = adapter_repo("codex.sh", "BLD");
    repo.git(&["config", "mso.crew.maxTurns", "2"]);
    let step = "{\"type\":\"item.completed\",\"item\":{\"type\":\"command_execution\",\"command\":\"ls\"}}\n";
    let codex = StandIn::new(&repo, "codex", &step.repeat(3), 0);
    // The stand-in then hangs, as an agent in a loop would.
    let script = codex.bin.join("codex");
    let body = std::fs::read_to_string(&script).unwrap().replace("exit 0", "sleep 30");
    std::fs::write(&script, body).unwrap();
    let (out, code) = codex.dispatch(&repo);
    assert_eq!(code, Some(1), "{out}");
    assert!(last_error(&repo).contains("codex was stopped after more than 2 steps"), "{}", last_error(&repo));
}

const GEMINI_STREAM: &str = r#"{"type":"init","session_id":"s","model":"gemini-2.5-pro"}
{"type":"message","role":"user","content":"Follow the brief"}
{"type":"message","role":"assistant","content":"Added ","delta":true}
{"type":"message","role":"assistant","content":"the form.","delta":true}
{"type":"result","status":"success","stats":{"total_tokens":900,"input_tokens":700,"output_tokens":200,"duration_ms":1200,"tool_calls":2}}
"#;

#[test]
fn gemini_edits_with_the_test_command_allowed_and_a_turn_limit() {
    let repo = adapter_repo("gemini.sh", "BLD");
    let gemini = StandIn::new(&repo, "gemini", GEMINI_STREAM, 0);
    let (out, code) = gemini.dispatch(&repo);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        gemini.args("gemini"),
        [
            "-m",
            "gemini-2.5-pro",
            "--output-format",
            "stream-json",
            "-p",
            "Follow the brief given on standard input.",
            "--approval-mode",
            "auto_edit",
            "--allowed-tools",
            "run_shell_command(cargo test)"
        ]
    );
    assert!(gemini.read("gemini-env").contains("GEMINI_CLI_TRUST_WORKSPACE=true"));
    assert!(gemini.read("gemini-env").contains("GEMINI_CLI_SYSTEM_SETTINGS_PATH="));
    let order = repo.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["handoffs"][0]["summary"], "Added the form.");
    assert_eq!(run_report(&repo)["usage"]["model"], "gemini-2.5-pro");
}

#[test]
fn gemini_exit_codes_and_error_results_fail_the_role() {
    for (shape, status, expected) in [
        (
            "{\"type\":\"result\",\"status\":\"error\",\"error\":{\"message\":\"quota\"}}\n",
            0,
            "gemini's run did not succeed",
        ),
        ("", 53, "gemini reached its turn limit (exit 53"),
        ("", 42, "gemini refused its input (exit 42)"),
    ] {
        let repo = adapter_repo("gemini.sh", "BLD");
        let gemini = StandIn::new(&repo, "gemini", shape, status);
        let (out, code) = gemini.dispatch(&repo);
        assert_eq!(code, Some(1), "{out}");
        assert!(last_error(&repo).contains(expected), "{status}: {}", last_error(&repo));
    }
}

const AIDER_OUTPUT: &str = "Aider v0.86.1\nApplied edit to edited.txt\nRunning cargo test\ntest result: ok\nTokens: 12k sent, 1.5k received. Cost: $0.04 message, $0.04 session.\nAdded the form.\n";

#[test]
fn aider_edits_without_committing_and_runs_the_tests() {
    let repo = adapter_repo("aider.sh", "BLD");
    let aider = StandIn::new(&repo, "aider", AIDER_OUTPUT, 0);
    let (out, code) = aider.dispatch(&repo);
    assert_eq!(code, Some(0), "{out}");
    let args = aider.args("aider");
    assert_eq!(args[0], "--message-file");
    assert!(args[1].ends_with("/brief.md"), "{args:?}");
    for flag in ["--yes-always", "--no-suggest-shell-commands", "--no-auto-commits", "--auto-test"] {
        assert!(args.contains(&flag.to_string()), "{flag}: {args:?}");
    }
    assert!(args.windows(2).any(|w| w == ["--test-cmd", "cargo test"]), "{args:?}");
    let usage = &run_report(&repo)["usage"];
    assert_eq!((usage["tokens_in"].as_u64(), usage["cost_micros"].as_u64()), (Some(12_000), Some(40_000)));
    assert_eq!(repo.git(&["show", "voyage/VOY-0001:edited.txt"]), "edited\n");
}

#[test]
fn aider_api_errors_and_empty_work_fail_the_role() {
    let repo = adapter_repo("aider.sh", "BLD");
    let aider = StandIn::new(&repo, "aider", "litellm.RateLimitError: slow down\n", 0);
    let (out, code) = aider.dispatch(&repo);
    assert_eq!(code, Some(1), "{out}");
    assert!(last_error(&repo).contains("aider reported an API error"), "{}", last_error(&repo));

    let repo = adapter_repo("aider.sh", "SEC");
    let aider = StandIn::new(&repo, "aider", "Looks fine.\n", 0);
    let (out, _) = aider.dispatch(&repo);
    assert!(out.contains("SEC  Lookout     succeeded"), "a read-only review changes nothing: {out}");
    assert!(aider.args("aider").windows(2).any(|w| w == ["--chat-mode", "ask"]));

    // A tester may change nothing; its verdicts close its message.
    let repo = adapter_repo("aider.sh", "TST");
    let answer = "Checked.\n```mso-result\n{\"summary\": \"ok\"}\n```\n";
    let aider = StandIn::new(&repo, "aider", answer, 0);
    std::fs::write(
        aider.bin.join("aider"),
        std::fs::read_to_string(aider.bin.join("aider")).unwrap().replace("echo edited > edited.txt", "true"),
    )
    .unwrap();
    let (out, code) = aider.dispatch(&repo);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("TST  Bosun       succeeded"), "{out}");
}

#[test]
fn a_missing_agent_fails_the_role_for_good_at_once() {
    for adapter in ["claude-code.sh", "codex.sh", "gemini.sh", "aider.sh"] {
        let repo = adapter_repo(adapter, "BLD");
        repo.ok(&["config", "max_attempts", "3"]);
        let empty = repo.root().join("empty-bin");
        std::fs::create_dir_all(&empty).unwrap();
        let out = repo
            .mso_cmd(&repo.path)
            .args(["dispatch", "--once"])
            .env("PATH", format!("{}:/usr/bin:/bin", empty.display()))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{adapter}: {stdout}");
        assert!(stdout.contains("failed (exited with status 127): "), "{adapter}: {stdout}");
        assert!(stdout.contains(" is not installed or not on PATH → failed for good"), "{adapter}: {stdout}");
    }
}

#[test]
fn the_shipped_crews_install_in_one_stable_place_and_run_from_any_repository() {
    let repo = TestRepo::initialized();
    let dir = repo.ok(&["crews", "path"]).trim().to_string();
    assert_eq!(std::path::Path::new(&dir), repo.home.join(".local/share/git-mso/crews"));
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/crews");
    let mut names: Vec<String> =
        std::fs::read_dir(&shipped).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let listed: Vec<String> =
        repo.ok(&["crews", "list"]).lines().map(|l| l.split_whitespace().next().unwrap().to_string()).collect();
    assert_eq!(listed, names, "every script in scripts/crews ships");
    use std::os::unix::fs::PermissionsExt;
    for name in &names {
        let installed = std::path::Path::new(&dir).join(name);
        assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(shipped.join(name)).unwrap(), "{name}");
        assert_eq!(installed.metadata().unwrap().permissions().mode() & 0o111, 0o111, "{name} is not executable");
    }
    // A second call changes nothing and says the same.
    assert_eq!(repo.ok(&["crews", "path"]).trim(), dir);
    // The demo crews, named from there, take an order through the pipeline.
    repo.set_crews(&[
        ("PLN", &format!("{dir}/demo-plan.sh")),
        ("BLD", &format!("{dir}/demo-build.sh")),
        ("TST", &format!("{dir}/demo-test.sh")),
    ]);
    repo.ok(&["order", "new", "--kind", "CHR", "--title", "Bump deps", "--ac", "deps are bumped"]);
    repo.dispatch(&["--once"]);
    assert_eq!(repo.json(&["order", "show", "CHR-0001", "--json"])["status"], "completed");
}
