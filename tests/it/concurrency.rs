//! Many processes appending at once lose nothing.

use crate::common;

use std::collections::BTreeSet;

use crate::common::TestRepo;

#[test]
fn four_writers_times_fifty_orders_give_two_hundred_distinct_orders() {
    let repo = TestRepo::initialized();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let script =
                format!("for i in $(seq 1 50); do \"$MSO\" order new --title \"writer {w} order $i\" || exit 1; done");
            let cmd = repo.mso_cmd(&repo.path);
            let bin = cmd.get_program().to_owned();
            let mut sh = std::process::Command::new("sh");
            sh.arg("-c").arg(script).current_dir(&repo.path).env("MSO", bin);
            common::isolate(&mut sh, &repo.home);
            sh.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            sh.spawn().expect("writer starts")
        })
        .collect();
    for w in writers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success(), "a writer failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let list = repo.json(&["order", "list", "--json"]);
    let ids: BTreeSet<String> =
        list.as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 200);
    let expected: BTreeSet<String> = (1..=200).map(|n| format!("FTR-{n:04}")).collect();
    assert_eq!(ids, expected);
    let titles: BTreeSet<String> =
        list.as_array().unwrap().iter().map(|o| o["title"].as_str().unwrap().to_string()).collect();
    assert_eq!(titles.len(), 200, "every order landed exactly once");
    let commits = repo.git(&["rev-list", "--count", "refs/mso/ledger"]);
    assert_eq!(commits.trim(), "201");
    assert_eq!(repo.json(&["status", "--json"])["orders"], 200);
    let fsck = repo.ok(&["fsck"]);
    assert!(fsck.starts_with("ok: 201 commits, 401 events"), "{fsck}");
}

#[test]
fn racing_cancels_of_one_order_land_once_and_the_losers_are_told_why() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--title", "contested"]);
    let racers: Vec<_> = (0..4)
        .map(|_| {
            repo.mso_cmd(&repo.path)
                .args(["order", "cancel", "FTR-0001"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outcomes: Vec<_> = racers.into_iter().map(|r| r.wait_with_output().unwrap()).collect();
    let winners = outcomes.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "exactly one cancel lands");
    for loser in outcomes.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&loser.stderr);
        assert_eq!(err.trim(), "error: FTR-0001 is cancelled at PLN, not active; nothing was written");
    }
    let log = repo.json(&["log", "FTR-0001", "--json"]);
    assert_eq!(log.as_array().unwrap().len(), 2, "one ORDER_CREATED and one CANCELLED commit");
    repo.ok(&["fsck"]);
}
