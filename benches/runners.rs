//! `cargo bench --bench runners` (or scripts/bench.sh): N runner clones
//! (3, 10, 30) dispatch against one bare repository with the server hooks,
//! over a file remote. Prints claims per second and the share of pushes
//! that lost the race (another runner's landed first). Asserts nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_git-mso");

fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).current_dir(dir).output().expect("runs");
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn git(dir: &Path, args: &[&str]) -> String {
    run(dir, "git", args)
}

fn mso(dir: &Path, args: &[&str]) -> String {
    run(dir, BIN, args)
}

fn identity(dir: &Path, name: &str) {
    git(dir, &["config", "user.name", name]);
    git(dir, &["config", "user.email", &format!("{name}@example.com")]);
}

struct Round {
    runners: usize,
    orders: usize,
    claims: u64,
    seconds: f64,
    landed: usize,
    lost: usize,
}

fn round(root: &Path, runners: usize, orders: usize) -> Round {
    let base = root.join(format!("n{runners}"));
    let seed = base.join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    git(&seed, &["init", "-q", "-b", "main"]);
    identity(&seed, "seed");
    git(&seed, &["commit", "-q", "--allow-empty", "-m", "first"]);
    mso(&seed, &["init"]);
    let server = base.join("server.git");
    git(&base, &["init", "-q", "--bare", "-b", "main", server.to_str().unwrap()]);
    mso(&server, &["hooks", "install", "--server"]);
    git(&seed, &["remote", "add", "origin", server.to_str().unwrap()]);
    git(&seed, &["push", "-q", "origin", "main"]);
    mso(&seed, &["sync"]);
    for i in 0..orders {
        mso(&seed, &["order", "new", "--kind", "CHR", "--title", &format!("order {i}")]);
    }
    mso(&seed, &["sync"]);
    let clones: Vec<PathBuf> = (0..runners)
        .map(|i| {
            let dir = base.join(format!("runner{i}"));
            git(&base, &["clone", "-q", server.to_str().unwrap(), dir.to_str().unwrap()]);
            identity(&dir, "seed");
            for role in ["BLD", "TST"] {
                git(&dir, &["config", &format!("mso.crew.{role}.command"), "true"]);
            }
            mso(&dir, &["sync"]);
            dir
        })
        .collect();
    let start = Instant::now();
    let children: Vec<_> = clones
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            Command::new(BIN)
                .args(["dispatch", "--once", "--remote", "origin", "--max-parallel", "2"])
                .current_dir(dir)
                .env("MSO_RUNNER", format!("runner{i}"))
                .env("MSO_LOG", "git_mso::sync=debug")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let (mut landed, mut lost) = (0, 0);
    for child in children {
        let out = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        landed += log.matches("push landed").count();
        lost += log.matches("push lost the race").count();
    }
    let seconds = start.elapsed().as_secs_f64();
    let log: serde_json::Value = serde_json::from_str(&mso(&server, &["log", "--json"])).unwrap_or_default();
    let claims = log.as_array().map_or(0, |commits| {
        commits
            .iter()
            .flat_map(|c| c["events"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["type"] == "DISPATCHED")
            .count() as u64
    });
    Round { runners, orders, claims, seconds, landed, lost }
}

fn main() {
    let root = tempfile::tempdir().unwrap();
    let mut rounds = Vec::new();
    for (runners, orders) in [(3, 30), (10, 40), (30, 60)] {
        rounds.push(round(root.path(), runners, orders));
    }
    println!("runners over one bare repository (file remote, server hooks), crews `true`, roles BLD and TST");
    println!("| runners | orders | claims landed | wall | claims/s | pushes landed | pushes lost | lost share |");
    println!("|--------:|-------:|--------------:|-----:|---------:|--------------:|------------:|-----------:|");
    for r in rounds {
        let share = r.lost as f64 / (r.landed + r.lost).max(1) as f64;
        println!(
            "| {} | {} | {} | {:.1} s | {:.1} | {} | {} | {:.0}% |",
            r.runners,
            r.orders,
            r.claims,
            r.seconds,
            r.claims as f64 / r.seconds,
            r.landed,
            r.lost,
            share * 100.0
        );
    }
}
