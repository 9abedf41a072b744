//! `TestRepo`: a real repository in a temp dir, with fixed identities and
//! dates, isolated from the machine's git config; runs the built binary.

#![allow(dead_code)]

pub mod model;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use assert_cmd::cargo::CommandCargoExt;

/// The fixed clock tests run at (2026-11-25 12:00:00Z).
pub const NOW: &str = "1795608000";
/// `NOW` as a number, for events written through the library.
pub const NOW_SECS: i64 = 1_795_608_000;

pub struct TestRepo {
    _tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub path: PathBuf,
}

/// Environment that isolates a command from the machine: no global or system config, fixed dates.
pub fn isolate(cmd: &mut Command, home: &Path) {
    for var in [
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "MSO_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_DATE", "2026-11-25T12:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-11-25T12:00:00Z")
        .env("MSO_NOW", NOW)
        .env("MSO_HOST", "testhost");
}

impl TestRepo {
    /// A fresh non-bare repository with one commit and identity alice.
    pub fn new() -> Self {
        let repo = Self::empty();
        repo.git(&["config", "user.name", "alice"]);
        repo.git(&["config", "user.email", "alice@example.com"]);
        repo.git(&["commit", "-q", "--allow-empty", "-m", "first"]);
        repo
    }

    /// A repository with no commit and no identity at all.
    pub fn empty() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let path = tmp.path().join("repo");
        let repo = TestRepo { home, path: path.clone(), _tmp: tmp };
        std::fs::create_dir_all(&path).unwrap();
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// A repository initialized with `git mso init`.
    pub fn initialized() -> Self {
        let repo = Self::new();
        repo.ok(&["init"]);
        repo
    }

    pub fn root(&self) -> &Path {
        self._tmp.path()
    }

    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        cmd.args(args).current_dir(dir);
        isolate(&mut cmd, &self.home);
        let out = cmd.output().expect("git runs");
        assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.path, args)
    }

    /// `git ARGS` in the repository with `input` on its standard input.
    pub fn git_stdin(&self, args: &[&str], input: &str) -> String {
        use std::io::Write;
        let mut cmd = Command::new("git");
        cmd.args(args).current_dir(&self.path).stdin(Stdio::piped()).stdout(Stdio::piped());
        isolate(&mut cmd, &self.home);
        let mut child = cmd.spawn().expect("git runs");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "git {args:?} failed");
        String::from_utf8(out.stdout).unwrap()
    }

    /// `git ARGS` in the repository, isolated, with the built `git-mso` on
    /// PATH so that `git mso …` (and git's own -c, help and completion) reach it.
    pub fn git_with_mso(&self, args: &[&str]) -> Command {
        let bin_dir = assert_cmd::cargo::cargo_bin("git-mso").parent().unwrap().to_path_buf();
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = Command::new("git");
        cmd.args(args).current_dir(&self.path);
        isolate(&mut cmd, &self.home);
        cmd.env("PATH", path).env("COUNT_FILE", self.count_file());
        cmd
    }

    pub fn mso_cmd(&self, dir: &Path) -> Command {
        let mut cmd = Command::cargo_bin("git-mso").expect("binary built");
        cmd.current_dir(dir).stdin(std::process::Stdio::null());
        isolate(&mut cmd, &self.home);
        cmd
    }

    pub fn mso_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.mso_cmd(dir).args(args).output().expect("git-mso runs")
    }

    pub fn mso(&self, args: &[&str]) -> Output {
        self.mso_in(&self.path, args)
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.mso(args);
        assert!(
            out.status.success(),
            "git mso {args:?} failed ({:?}):\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run and require failure with `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.mso(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(code), "git mso {args:?}: stderr {stderr}");
        stderr
    }

    /// The ledger tip, or "" when there is none.
    pub fn tip(&self) -> String {
        let out = Command::new("git")
            .args(["rev-parse", "-q", "--verify", "refs/mso/ledger"])
            .current_dir(&self.path)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("valid JSON")
    }

    /// The library's store on this repository, on the tests' fixed clock.
    pub fn store(&self) -> git_mso::store::Store {
        let mut store = git_mso::store::Store::discover(&self.path).expect("a repository");
        store.pin_clock(NOW_SECS);
        store
    }

    /// Claim `order`'s `role` (at `attempt`) for `actor` as runner `farm:7`
    /// would, written straight to the ledger: its crew "runs" elsewhere.
    #[allow(clippy::result_large_err)]
    pub fn claim_as(&self, order: &str, role: &str, attempt: u32, actor: &str) {
        let order: git_mso::core::OrderId = order.parse().unwrap();
        let lease = git_mso::core::Lease {
            runner: "farm:7".into(),
            host: "farm".into(),
            pid: 7,
            expires: NOW_SECS + 600,
            actor: actor.into(),
        };
        self.store()
            .transact(|tx| {
                tx.push(git_mso::core::EventBody::Dispatched {
                    order: order.clone(),
                    role: role.parse().unwrap(),
                    attempt,
                    lease: lease.clone(),
                })
            })
            .unwrap();
    }

    /// A linear chain of `n` real commits on `refs/chain`, made by one `git fast-import`.
    pub fn chain(&self, n: usize) -> Vec<String> {
        let mut input = String::new();
        for k in 1..=n {
            input.push_str(&format!("commit refs/chain\nmark :{k}\ncommitter t <t@example.com> 1700000000 +0000\n"));
            input.push_str(&format!("data {}\nc{k}\n", format!("c{k}\n").len()));
            if k > 1 {
                input.push_str(&format!("from :{}\n", k - 1));
            }
            input.push('\n');
        }
        let mut cmd = Command::new("git");
        cmd.args(["fast-import", "--quiet"]).current_dir(&self.path).stdin(std::process::Stdio::piped());
        isolate(&mut cmd, &self.home);
        let mut child = cmd.spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success());
        self.git(&["rev-list", "--reverse", "refs/chain"]).lines().map(str::to_string).collect()
    }

    /// Every ref of the repository at `dir` and what it points to: compared
    /// before and after a refused push, it shows nothing moved.
    pub fn refs_in(&self, dir: &Path) -> String {
        self.git_in(dir, &["for-each-ref", "--format=%(refname) %(objectname)"])
    }
}

impl TestRepo {
    /// Write an executable crew script that first appends "$MSO_ORDER $MSO_ROLE $MSO_ATTEMPT"
    /// to $COUNT_FILE (outside the repository), then runs `body`. Returns its path.
    pub fn crew(&self, name: &str, body: &str) -> String {
        let dir = self.root().join("crews");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let script =
            format!("#!/bin/sh\nset -eu\necho \"$MSO_ORDER $MSO_ROLE $MSO_ATTEMPT\" >> \"$COUNT_FILE\"\n{body}\n");
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    /// Configure `mso.crew.<ROLE>.command` for each role.
    pub fn set_crews(&self, crews: &[(&str, &str)]) {
        for (role, command) in crews {
            self.git(&["config", &format!("mso.crew.{role}.command"), command]);
        }
    }

    pub fn count_file(&self) -> PathBuf {
        self.root().join("count")
    }

    /// The crew runs recorded so far, one "ORDER ROLE ATTEMPT" line each.
    pub fn runs(&self) -> Vec<String> {
        std::fs::read_to_string(self.count_file()).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// `git mso dispatch ARGS` in `dir` with the count file wired; returns the output.
    pub fn dispatch_in(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = self.mso_cmd(dir);
        cmd.arg("dispatch").args(args).env("COUNT_FILE", self.count_file());
        cmd.output().expect("dispatch runs")
    }

    /// Dispatch in the repository and require success; returns stdout.
    pub fn dispatch(&self, args: &[&str]) -> String {
        let out = self.dispatch_in(&self.path, args);
        assert!(
            out.status.success(),
            "dispatch failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Dispatch where an order is meant to fail for good: dispatch must say
    /// so and exit 1. Returns stdout.
    pub fn dispatch_failing(&self, args: &[&str]) -> String {
        let out = self.dispatch_in(&self.path, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}\n{}", String::from_utf8_lossy(&out.stdout));
        assert!(stderr.contains("failed for good in this run"), "{stderr}");
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Run `cmd` with its stdout a pipe whose reader is gone before the command
/// writes (`| head` that quit at once); stderr is captured.
pub fn output_with_reader_gone(mut cmd: Command) -> Output {
    let mut child =
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("it starts");
    drop(child.stdout.take());
    child.wait_with_output().expect("it ends")
}

/// A bare `server.git` beside `repo` with the server hooks installed, added
/// as `origin`, with `main` pushed to it.
pub fn hooked_server(repo: &TestRepo) -> PathBuf {
    let server = repo.root().join("server.git");
    repo.git(&["init", "-q", "--bare", "-b", "main", server.to_str().unwrap()]);
    let out = repo.mso_in(&server, &["hooks", "install", "--server"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    repo.git(&["remote", "add", "origin", server.to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main"]);
    server
}

/// Crew script lines that give a `pass` verdict on every acceptance
/// criterion of the brief (for stand-in TST crews).
pub const PASS_ALL_CRITERIA: &str = r#"n=$(sed -n '/^## Acceptance criteria/,/^## /p' "$MSO_BRIEF_FILE" | grep -c '^[0-9][0-9]*\. ' || true)
v="" i=1
while [ "$i" -le "$n" ]; do v="$v${v:+,}{\"criterion\": $i, \"verdict\": \"pass\"}"; i=$((i + 1)); done
printf '{"summary": "all %s criteria pass", "criteria": [%s]}\n' "$n" "$v" > "$MSO_RESULT_FILE""#;

/// A `git daemon` serving `base` on 127.0.0.1 with pushes enabled; stopped on drop.
pub struct Daemon {
    child: std::process::Child,
    pub port: u16,
}

impl Daemon {
    pub fn start(base: &Path, home: &Path) -> Daemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Daemon::start_on(base, home, port)
    }

    /// Start serving on `port` (again, after an outage).
    pub fn start_on(base: &Path, home: &Path, port: u16) -> Daemon {
        let mut cmd = Command::new("git");
        cmd.args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", base.display()),
            base.to_str().unwrap(),
        ]);
        isolate(&mut cmd, home);
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        let daemon = Daemon { child: cmd.spawn().expect("git daemon starts"), port };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return daemon;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("git daemon did not listen on {port}"); // dropping `daemon` stops it
    }

    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The crew runs of `orders` FTR orders walking PLN, BLD, TST once each, sorted.
pub fn every_role_once(orders: u32) -> Vec<String> {
    let mut runs: Vec<String> =
        (1..=orders).flat_map(|n| ["PLN", "BLD", "TST"].map(|r| format!("FTR-{n:04} {r} 1"))).collect();
    runs.sort();
    runs
}

/// Wait up to `budget` for `path` to appear (a crew's marker file); whether it did.
pub fn wait_for_file(path: &Path, budget: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    while !path.exists() && start.elapsed() < budget {
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    path.exists()
}

/// Push `commands` (`"<old> <new> <ref>"`) to the bare repository `server`
/// by speaking to `git receive-pack` directly, as a hostile client can: it
/// chooses each old value and may name a ref twice, which `git push` never
/// does. The objects must already be on the server (an empty pack is sent).
/// Returns receive-pack's report and its stderr (where hooks speak).
pub fn raw_push(home: &Path, server: &Path, commands: &[String], env: &[(&str, &str)]) -> (String, String) {
    use std::io::{Read, Write};
    let empty_pack = {
        let mut cmd = Command::new("git");
        cmd.args(["pack-objects", "--stdout", "-q"]).stdin(std::process::Stdio::null());
        isolate(&mut cmd, home);
        cmd.output().unwrap().stdout
    };
    let mut cmd = Command::new("git");
    cmd.arg("receive-pack").arg(server);
    isolate(&mut cmd, home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    // The ref advertisement, up to its flush packet.
    loop {
        let mut len = [0u8; 4];
        out.read_exact(&mut len).unwrap();
        let len = usize::from_str_radix(std::str::from_utf8(&len).unwrap(), 16).unwrap();
        if len == 0 {
            break;
        }
        let mut skip = vec![0u8; len - 4];
        out.read_exact(&mut skip).unwrap();
    }
    let mut input = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        let line = if i == 0 { format!("{command}\0report-status\n") } else { format!("{command}\n") };
        input.extend(format!("{:04x}", line.len() + 4).as_bytes());
        input.extend(line.as_bytes());
    }
    input.extend(b"0000");
    input.extend(&empty_pack);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&input).unwrap();
    drop(stdin);
    let mut report = Vec::new();
    out.read_to_end(&mut report).unwrap();
    let status = child.wait_with_output().unwrap();
    (String::from_utf8_lossy(&report).into_owned(), String::from_utf8_lossy(&status.stderr).into_owned())
}
