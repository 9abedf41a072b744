//! The CI runner templates in scripts/ci/: the shell steps between their
//! markers, taken from the YAML as written, run in a fresh clone of a bare
//! remote with the server hooks installed, as a CI job would run them.

use crate::common;

use std::path::Path;

use crate::common::TestRepo;

const START: &str = "# --- git-mso runner steps ---";
const END: &str = "# --- end of git-mso runner steps ---";

/// The runner steps of a template, dedented.
fn steps(template: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ci").join(template);
    let yaml = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = yaml.lines().collect();
    let start = lines.iter().position(|l| l.trim() == START).expect("start marker");
    let end = lines.iter().position(|l| l.trim() == END).expect("end marker");
    let indent = lines[start].len() - lines[start].trim_start().len();
    lines[start..=end].iter().map(|l| l.get(indent..).unwrap_or("").to_string() + "\n").collect()
}

/// A server with the hooks and one queued CHR order (BLD, TST); a CI
/// checkout of it runs the template's steps with crews given as variables.
fn run_template(template: &str) {
    let author = TestRepo::new();
    author.ok(&["init"]);
    author.ok(&["order", "new", "--kind", "CHR", "--title", "Bump dependencies", "--ac", "the lock file is current"]);
    let server = common::hooked_server(&author);
    author.ok(&["sync"]);

    // What the CI job has: a full clone, git, git-mso on PATH, no identity.
    let checkout = author.root().join("ci-checkout");
    author.git(&["clone", "-q", server.to_str().unwrap(), checkout.to_str().unwrap()]);
    let binary = assert_cmd::cargo::cargo_bin("git-mso");
    let path = format!("{}:{}", binary.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let crews = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/crews");
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(steps(template)).current_dir(&checkout);
    common::isolate(&mut cmd, &author.home);
    cmd.env("PATH", path)
        .env("MSO_RUNNER_USER", "ci-runner")
        .env("MSO_CREW_BLD", crews.join("demo-build.sh"))
        .env("MSO_CREW_TST", crews.join("demo-test.sh"));
    let out = cmd.output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{template}: the runner steps failed:\n{said}");
    assert!(said.contains("CHR-0001  BLD  Shipwright  succeeded"), "{said}");
    assert!(said.contains("CHR-0001  TST  Bosun       succeeded"), "{said}");

    // The server has the results: the author sees them with one sync.
    author.ok(&["sync"]);
    let order = author.json(&["order", "show", "CHR-0001", "--json"]);
    assert_eq!(order["status"], "completed", "{template}: {order}");
    let claimed_by: Vec<&str> = order["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "DISPATCHED")
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert_eq!(claimed_by, ["ci-runner", "ci-runner"], "{template}");
    let on_server = author.git_in(&server, &["ls-tree", "-r", "--name-only", "voyage/VOY-0001"]);
    assert!(on_server.lines().any(|f| f.starts_with("src/")), "the crew's work reached the server: {on_server}");
    author.ok(&["fsck"]);
}

#[test]
fn the_github_actions_template_runs_queued_roles_against_a_bare_remote() {
    run_template("github-actions.yml");
}

#[test]
fn the_gitlab_ci_template_runs_queued_roles_against_a_bare_remote() {
    run_template("gitlab-ci.yml");
}

#[test]
fn both_templates_run_the_same_steps() {
    assert_eq!(steps("github-actions.yml"), steps("gitlab-ci.yml"));
}
