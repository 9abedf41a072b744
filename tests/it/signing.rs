//! Signed ledgers, for servers with no hosting layer that names the pusher
//! (here a real `git daemon` on 127.0.0.1): once the config requires
//! signatures, every commit must be signed by a key listed for each of its
//! actors, checked by the server hook, by `sync` for what it fetches, and by
//! `fsck`. Keys are made by ssh-keygen in the test.

use crate::common;

use std::path::{Path, PathBuf};

use crate::common::{Daemon, TestRepo};

/// An ed25519 key pair made by ssh-keygen; returns the private key's path and the public key.
fn keygen(repo: &TestRepo, name: &str) -> (PathBuf, String) {
    let path = repo.root().join(format!("{name}.key"));
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen runs (install openssh-client)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = std::fs::read_to_string(path.with_extension("key.pub")).unwrap().trim().to_string();
    (path, public)
}

fn sign_with(repo: &TestRepo, dir: &Path, key: &Path) {
    repo.git_in(dir, &["config", "mso.sign", "true"]);
    repo.git_in(dir, &["config", "user.signingKey", key.to_str().unwrap()]);
}

fn mso_ok(repo: &TestRepo, dir: &Path, args: &[&str]) -> String {
    let out = repo.mso_in(dir, args);
    assert!(out.status.success(), "git mso {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn mso_err(repo: &TestRepo, dir: &Path, args: &[&str]) -> String {
    let out = repo.mso_in(dir, args);
    assert!(!out.status.success(), "git mso {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

/// alice (admin) signs; the ledger requires signatures and lists her key.
/// A bare server with the hooks is served by `git daemon`.
struct Signed {
    repo: TestRepo,
    server: PathBuf,
    daemon: Daemon,
    alice_key: PathBuf,
}

impl Signed {
    fn new() -> Self {
        let repo = TestRepo::initialized();
        let (alice_key, alice_pub) = keygen(&repo, "alice");
        sign_with(&repo, &repo.path, &alice_key);
        repo.ok(&["config", "signers.alice", &serde_json::json!([alice_pub]).to_string()]);
        repo.ok(&["config", "require_signatures", "true"]);
        repo.ok(&["order", "new", "--title", "Add login page"]);
        let server = repo.root().join("server.git");
        repo.git(&["init", "-q", "--bare", "-b", "main", server.to_str().unwrap()]);
        assert!(repo.mso_in(&server, &["hooks", "install", "--server"]).status.success());
        let daemon = Daemon::start(repo.root(), &repo.home);
        repo.git(&["remote", "add", "origin", &daemon.url("server.git")]);
        repo.git(&["push", "-q", "origin", "main"]);
        let out = repo.ok(&["sync"]);
        assert!(out.contains("pushed refs/mso/ledger to origin"), "{out}");
        Signed { repo, server, daemon, alice_key }
    }

    /// A clone of the server that writes as `user` and signs with a new key of its own.
    fn clone_as(&self, user: &str) -> (PathBuf, String) {
        let dir = self.repo.root().join(user);
        self.repo.git(&["clone", "-q", &self.daemon.url("server.git"), dir.to_str().unwrap()]);
        self.repo.git_in(&dir, &["config", "user.name", user]);
        self.repo.git_in(&dir, &["config", "user.email", &format!("{user}@example.com")]);
        let (key, public) = keygen(&self.repo, user);
        sign_with(&self.repo, &dir, &key);
        mso_ok(&self.repo, &dir, &["sync"]);
        (dir, public)
    }

    fn server_tip(&self) -> String {
        self.repo.git_in(&self.server, &["rev-parse", "refs/mso/ledger"]).trim().to_string()
    }
}

#[test]
fn a_signed_ledger_is_accepted_and_git_agrees_with_the_signatures() {
    let s = Signed::new();
    mso_ok(&s.repo, &s.server, &["fsck"]);
    mso_ok(&s.repo, &s.repo.path, &["fsck"]);
    // git's own verification reads the same signatures.
    let alice_pub = std::fs::read_to_string(s.alice_key.with_extension("key.pub")).unwrap();
    let allowed = s.repo.root().join("allowed_signers");
    std::fs::write(&allowed, format!("alice {alice_pub}")).unwrap();
    let verified = s.repo.git(&[
        "-c",
        &format!("gpg.ssh.allowedSignersFile={}", allowed.display()),
        "verify-commit",
        "refs/mso/ledger",
    ]);
    assert!(verified.is_empty());
    // Another signer, added by the admin, is accepted once listed.
    let (bob, bob_pub) = s.clone_as("bob");
    let out = mso_err(&s.repo, &bob, &["order", "new", "--title", "bob's", "--voyage", "VOY-0001"]);
    assert!(out.contains("your signing key cannot sign for bob"), "{out}");
    s.repo.ok(&["config", "signers.bob", &serde_json::json!([bob_pub]).to_string()]);
    s.repo.ok(&["sync"]);
    mso_ok(&s.repo, &bob, &["sync"]);
    mso_ok(&s.repo, &bob, &["order", "new", "--title", "bob's", "--voyage", "VOY-0001"]);
    let out = mso_ok(&s.repo, &bob, &["sync"]);
    assert!(out.contains("pushed refs/mso/ledger to origin"), "{out}");
    mso_ok(&s.repo, &s.server, &["fsck"]);
}

/// Write `bytes` as a commit object as a hostile client can, unchecked; its id.
fn raw_commit(repo: &TestRepo, bytes: &str) -> String {
    let mut cmd = std::process::Command::new("git");
    cmd.args(["hash-object", "-t", "commit", "--literally", "-w", "--stdin"]).current_dir(&repo.path);
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    common::isolate(&mut cmd, &repo.home);
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), bytes.as_bytes()).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap().trim().to_string()
}

/// A commit object's bytes without its gpgsig header: what its signature signs.
fn payload(raw: &str) -> String {
    let (head, _) = raw.split_once("gpgsig ").unwrap();
    let (_, rest) = raw.split_once("-----END SSH SIGNATURE-----\n").unwrap();
    format!("{head}{rest}")
}

/// `payload` signed with `key` by ssh-keygen, as a commit object's bytes.
fn signed_by(repo: &TestRepo, key: &Path, payload: &str) -> String {
    let file = repo.root().join("payload");
    std::fs::write(&file, payload).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "git", "-f"])
        .arg(key)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sig = std::fs::read_to_string(file.with_extension("sig")).unwrap();
    let _ = std::fs::remove_file(file.with_extension("sig"));
    let header = sig.trim_end().lines().collect::<Vec<_>>().join("\n ");
    let (head, body) = payload.split_once("\n\n").unwrap();
    format!("{head}\ngpgsig {header}\n\n{body}")
}

/// Push the client's ledger to the server; whether it landed, and git's stderr.
fn push_ledger(repo: &TestRepo) -> (bool, String) {
    let mut cmd = std::process::Command::new("git");
    cmd.args(["push", "--porcelain", "origin", "refs/mso/ledger:refs/mso/ledger"]).current_dir(&repo.path);
    common::isolate(&mut cmd, &repo.home);
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_foreign_key_an_unsigned_commit_and_a_tampered_one_are_refused() {
    let s = Signed::new();
    let tip = s.server_tip();
    // mallory's own writer neither signs for alice with her key nor writes unsigned.
    let (mallory, _) = s.clone_as("mallory");
    s.repo.git_in(&mallory, &["config", "mso.user", "alice"]);
    let err = mso_err(&s.repo, &mallory, &["order", "new", "--title", "as alice", "--voyage", "VOY-0001"]);
    assert!(err.contains("your signing key cannot sign for alice"), "{err}");
    s.repo.git_in(&mallory, &["config", "--unset", "mso.sign"]);
    let err = mso_err(&s.repo, &mallory, &["order", "new", "--title", "unsigned", "--voyage", "VOY-0001"]);
    assert!(err.contains("this ledger requires signed commits"), "{err}");
    // A hostile client makes objects by hand. alice's honestly signed next commit is the model.
    s.repo.ok(&["order", "new", "--title", "signed", "--voyage", "VOY-0001"]);
    let signed = s.repo.tip();
    let raw = s.repo.git(&["cat-file", "commit", &signed]);
    let before = s.repo.refs_in(&s.server);
    let cases = [
        ("an unsigned commit", payload(&raw), "it is not signed, and the ledger requires signed commits"),
        (
            "alice's signature on changed content",
            raw.replacen("\"title\":\"signed\"", "\"title\":\"swapped\"", 1),
            "bad signature for alice",
        ),
        (
            "mallory's key on alice's commit",
            signed_by(&s.repo, &s.repo.root().join("mallory.key"), &payload(&raw)),
            "it is signed by a key not listed for it",
        ),
        ("two signature headers", raw.replacen("gpgsig ", "gpgsig x\ngpgsig ", 1), "other than one gpgsig signature"),
    ];
    for (name, bytes, expected) in cases {
        let id = raw_commit(&s.repo, &bytes);
        assert_ne!(id, signed, "{name}");
        s.repo.git(&["update-ref", "refs/mso/ledger", &id]);
        let (landed, stderr) = push_ledger(&s.repo);
        assert!(!landed, "{name} landed: {stderr}");
        assert!(stderr.contains(expected), "{name}: expected {expected:?}: {stderr}");
        assert_eq!(stderr.matches("git-mso: refusing").count(), 1, "{name}: {stderr}");
        assert_eq!(s.repo.refs_in(&s.server), before, "{name}: a server ref moved");
    }
    assert_eq!(s.server_tip(), tip);
    // The honestly signed commit lands.
    s.repo.git(&["update-ref", "refs/mso/ledger", &signed]);
    let (landed, stderr) = push_ledger(&s.repo);
    assert!(landed, "{stderr}");
}

#[test]
fn sync_and_fsck_refuse_an_unsigned_commit_that_a_server_without_hooks_let_in() {
    let s = Signed::new();
    assert!(s.repo.mso_in(&s.server, &["hooks", "uninstall"]).status.success());
    s.repo.ok(&["order", "new", "--title", "signed", "--voyage", "VOY-0001"]);
    let raw = s.repo.git(&["cat-file", "commit", &s.repo.tip()]);
    let unsigned = raw_commit(&s.repo, &payload(&raw));
    s.repo.git(&["update-ref", "refs/mso/ledger", &unsigned]);
    let (landed, stderr) = push_ledger(&s.repo);
    assert!(landed, "{stderr}");
    let err = mso_err(&s.repo, &s.server, &["fsck"]);
    assert!(err.contains(&unsigned[..7]) && err.contains("it is not signed"), "{err}");
    let bob = s.repo.root().join("bob");
    s.repo.git(&["clone", "-q", &s.daemon.url("server.git"), bob.to_str().unwrap()]);
    let err = mso_err(&s.repo, &bob, &["sync"]);
    assert!(err.contains("fetched ledger refused") && err.contains("it is not signed"), "{err}");
    let out = s.repo.mso_in(&bob, &["status"]);
    assert!(!out.status.success(), "the refused ledger was taken");
}

#[test]
fn a_sync_that_cannot_sign_keeps_local_work_and_says_why() {
    let s = Signed::new();
    // bob, a listed signer, moves the remote on.
    let (bob, bob_pub) = s.clone_as("bob");
    s.repo.ok(&["config", "signers.bob", &serde_json::json!([bob_pub]).to_string()]);
    s.repo.ok(&["sync"]);
    mso_ok(&s.repo, &bob, &["sync"]);
    mso_ok(&s.repo, &bob, &["order", "new", "--title", "bob's", "--voyage", "VOY-0001"]);
    mso_ok(&s.repo, &bob, &["sync"]);
    // alice files work, then her key goes missing (an agent not running, a moved file).
    s.repo.ok(&["order", "new", "--title", "alice's", "--voyage", "VOY-0001"]);
    let away = s.alice_key.with_extension("away");
    std::fs::rename(&s.alice_key, &away).unwrap();
    let err = s.repo.fails(&["sync"], 1);
    assert!(err.contains("signing the ledger commit failed"), "{err}");
    assert!(!err.contains("dropped"), "{err}");
    std::fs::rename(&away, &s.alice_key).unwrap();
    let out = s.repo.ok(&["sync"]);
    assert!(out.contains("pushed refs/mso/ledger to origin"), "{out}");
    let titles: Vec<String> = s
        .repo
        .json(&["order", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["title"].as_str().unwrap().to_string())
        .collect();
    assert!(titles.contains(&"alice's".to_string()) && titles.contains(&"bob's".to_string()), "{titles:?}");
}
