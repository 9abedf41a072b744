//! Review gates and retries, on real repositories. Until the dispatcher
//! lands, a crew's run is recorded through the library, exactly the events
//! a runner writes (DISPATCHED, then SUCCEEDED or FAILED).

#![allow(clippy::result_large_err)]

use crate::common::TestRepo;
use git_mso::core::apply::hand_off;
use git_mso::core::{EventBody, Lease, OrderId};
use git_mso::store::Store;

/// Record one crew run of the order's current role.
fn run_role(repo: &TestRepo, id: &str, succeed: bool) {
    let store = Store::discover(&repo.path).unwrap();
    let id: OrderId = id.parse().unwrap();
    let head = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    store
        .transact(|tx| {
            let order = tx.order(&id)?.clone();
            let lease = Lease {
                runner: "test-runner".into(),
                host: "testhost".into(),
                pid: 1,
                expires: tx.now() + 600,
                actor: tx.actor().to_string(),
            };
            tx.push(EventBody::Dispatched {
                order: id.clone(),
                role: order.role.clone(),
                attempt: order.attempt,
                lease,
            })
        })
        .unwrap();
    store
        .transact(|tx| {
            let order = tx.order(&id)?.clone();
            if !succeed {
                return tx.push(EventBody::Failed {
                    order: id.clone(),
                    role: order.role,
                    attempt: order.attempt,
                    runner: "test-runner".into(),
                    exit: Some(1),
                    reason: "boom".into(),
                    run: None,
                    permanent: false,
                    to: None,
                });
            }
            tx.push(EventBody::Succeeded {
                order: id.clone(),
                role: order.role.clone(),
                attempt: order.attempt,
                runner: "test-runner".into(),
                head: head.clone(),
                summary: "plan".into(),
                run: None,
            })?;
            let order = tx.order(&id)?.clone();
            if order.status == git_mso::core::Status::HandingOff {
                tx.push(hand_off(&order))?;
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn approve_advances_to_the_next_role_in_one_commit_and_a_second_approve_is_refused() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--title", "Add login page"]);
    run_role(&repo, "FTR-0001", true);
    let pending = repo.json(&["review", "list", "--json"]);
    assert_eq!(pending[0]["id"], "FTR-0001");

    let head = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    let out = repo.ok(&["review", "approve", "FTR-0001", "--comment", "looks right"]);
    assert_eq!(out.trim(), format!("FTR-0001  PLN approved at {} by alice → BLD queued", &head[..7]));
    let subject = repo.git(&["log", "-1", "--format=%s", "refs/mso/ledger"]);
    assert_eq!(subject.trim(), "FTR-0001: approved PLN by alice, advanced PLN -> BLD");
    let last = repo.json(&["log", "-n", "1", "--json"]);
    let events = last[0]["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "APPROVED and ADVANCED land in one commit");
    assert_eq!(events[0]["commit"], head.as_str(), "the approval is pinned to the reviewed commit");
    assert_eq!((events[1]["from"].as_str(), events[1]["to"].as_str()), (Some("PLN"), Some("BLD")));

    let order = repo.json(&["order", "show", "FTR-0001", "--json"]);
    assert_eq!((order["role"].as_str(), order["status"].as_str()), (Some("BLD"), Some("queued")));

    let tip = repo.tip();
    let err = repo.fails(&["review", "approve", "FTR-0001"], 1);
    assert_eq!(err.trim(), "error: FTR-0001 is queued at BLD, not awaiting review; nothing was written");
    assert_eq!(repo.tip(), tip);
    assert_eq!(repo.ok(&["review", "list"]).trim(), "nothing awaits review");
    repo.ok(&["fsck"]);
}

#[test]
fn a_standalone_planning_order_completes_when_approved() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--title", "Spike", "--roles", "PLN", "--gate", "PLN"]);
    run_role(&repo, "FTR-0001", true);
    let out = repo.ok(&["review", "approve", "FTR-0001"]);
    assert!(out.trim().ends_with("by alice → completed"), "{out}");
    let order = repo.json(&["order", "show", "FTR-0001", "--json"]);
    assert_eq!(order["status"], "completed");
    let status = repo.json(&["status", "--json"]);
    assert_eq!(status["completed"], 1);
    assert_eq!(status["roles"][0]["queued"], 0, "nothing left to dispatch");
    repo.ok(&["fsck"]);
}

#[test]
fn reject_sends_the_order_back_with_its_reason() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--title", "t"]);
    run_role(&repo, "FTR-0001", true);
    let tip = repo.tip();
    let err = repo.fails(&["review", "reject", "FTR-0001", "--reason", "x", "--to", "TST"], 1);
    assert!(err.contains("cannot go back to TST"), "{err}");
    assert_eq!(repo.tip(), tip);
    let out = repo.ok(&["review", "reject", "FTR-0001", "--reason", "plan misses the error path"]);
    assert_eq!(out.trim(), "FTR-0001  PLN rejected by alice → PLN queued (attempt 2)");
    let order = repo.json(&["order", "show", "FTR-0001", "--json"]);
    assert_eq!(order["status"], "queued");
    assert_eq!(order["attempt"], 2);
    assert_eq!(order["rejections"][0]["reason"], "plan misses the error path");
    repo.ok(&["fsck"]);
}

#[test]
fn approvers_list_is_enforced() {
    let repo = TestRepo::initialized();
    repo.ok(&["config", "approvers", "[\"bob\"]"]);
    repo.ok(&["order", "new", "--title", "t"]);
    run_role(&repo, "FTR-0001", true);
    let err = repo.fails(&["review", "approve", "FTR-0001"], 1);
    assert_eq!(err.trim(), "error: alice is not an approver (approvers: bob); nothing was written");
    repo.git(&["config", "mso.user", "bob"]);
    repo.ok(&["review", "approve", "FTR-0001"]);
}

#[test]
fn failures_exhaust_attempts_then_retry_queues_again() {
    let repo = TestRepo::initialized();
    repo.ok(&["order", "new", "--title", "t"]);
    let err = repo.fails(&["order", "retry", "FTR-0001"], 1);
    assert_eq!(err.trim(), "error: FTR-0001 is queued at PLN, not failed; nothing was written");
    for _ in 0..3 {
        run_role(&repo, "FTR-0001", false);
    }
    let order = repo.json(&["order", "show", "FTR-0001", "--json"]);
    assert_eq!(order["status"], "failed");
    assert_eq!(order["last_error"], "boom");
    let out = repo.ok(&["order", "retry", "FTR-0001"]);
    assert_eq!(out.trim(), "FTR-0001  retried → queued at PLN (attempt 4)");
    repo.ok(&["fsck"]);
}
