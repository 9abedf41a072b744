//! One order's state machine: what each order event requires of the order
//! and its voyage, and what it changes. `apply` loads the order and its
//! voyage, runs `transition`, and keeps the counts and history.

use super::apply::{
    Objects, Presence, Result, TransitionError, check_criteria, check_title, existing_commit, limits, long_text, token,
};
use super::config::Config;
use super::event::{Event, EventBody, short};
use super::ids::Role;
use super::report;
use super::state::{Handoff, Order, Rejection, Status, Voyage, VoyageState};
use super::text;

/// The order is not in a status the event needs: say which it is in.
fn wrong_state(order: &Order, expected: &'static str) -> TransitionError {
    TransitionError::WrongState { order: order.id.clone(), status: order.status, role: order.role.clone(), expected }
}

fn expect_status(order: &Order, status: Status, expected: &'static str) -> Result<()> {
    if order.status == status { Ok(()) } else { Err(wrong_state(order, expected)) }
}

fn expect_role(order: &Order, role: &Role) -> Result<()> {
    if &order.role == role {
        Ok(())
    } else {
        Err(TransitionError::WrongRole { order: order.id.clone(), role: role.clone(), current: order.role.clone() })
    }
}

fn expect_attempt(order: &Order, attempt: u32) -> Result<()> {
    if attempt == order.attempt {
        Ok(())
    } else {
        Err(TransitionError::WrongAttempt { order: order.id.clone(), got: attempt, current: order.attempt })
    }
}

/// A running order's lease must be held by this runner id *and* this actor.
fn expect_holder(order: &Order, runner: &str, actor: &str) -> Result<()> {
    match &order.lease {
        Some(lease) if lease.runner == runner && lease.actor == actor => Ok(()),
        lease => Err(TransitionError::NotLeaseHolder {
            order: order.id.clone(),
            holder: lease.as_ref().map_or_else(|| "nobody".into(), |l| format!("{} ({})", l.runner, l.actor)),
            claimant: format!("{runner} ({actor})"),
        }),
    }
}

/// A lease runs out after the event and at most one lease TTL after it.
fn check_expiry(order: &Order, at: i64, expires: i64, ttl: u64) -> Result<()> {
    let latest = at.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
    if expires <= at || expires > latest {
        return Err(TransitionError::BadInput(format!(
            "{}: a lease must expire after it starts and within lease_ttl_secs ({ttl} s)",
            order.id
        )));
    }
    Ok(())
}

/// Queue the order for a fresh run at `role`. Attempts count runs of one
/// role: they start at 1 when the order moves on, and go up when the same
/// role runs again (after a failure, a rejection or a retry).
fn requeue(order: &mut Order, role: &Role, attempt: u32) {
    order.attempt = attempt;
    order.role = role.clone();
    order.status = Status::Queued;
    order.failures = 0;
    order.retry_after = None;
}

fn next_attempt(order: &Order) -> Result<u32> {
    order
        .attempt
        .checked_add(1)
        .ok_or_else(|| TransitionError::Inconsistent(format!("{}: the attempt counter overflows", order.id)))
}

/// A failed run at the current role: retry while attempts remain (after
/// the backoff, when `at` is given), else fail; a permanent failure fails at once.
fn record_failure(order: &mut Order, reason: String, config: &Config, at: Option<i64>, permanent: bool) -> Result<()> {
    order.lease = None;
    order.failures = order.failures.saturating_add(1);
    order.last_error = Some(reason);
    if permanent || order.failures >= config.max_attempts {
        order.status = Status::Failed;
    } else {
        order.status = Status::Queued;
        order.attempt = next_attempt(order)?;
        order.retry_after =
            at.and_then(|at| backoff(config.retry_backoff_secs, order.failures).map(|wait| at.saturating_add(wait)));
    }
    Ok(())
}

/// The wait after the `failures`-th failure in a row: the configured
/// backoff, doubled for each earlier failure, at most an hour.
fn backoff(base: u64, failures: u32) -> Option<i64> {
    if base == 0 {
        return None;
    }
    let doubled = base.saturating_mul(1u64 << failures.saturating_sub(1).min(20));
    Some(i64::try_from(doubled.min(3_600)).unwrap_or(3_600))
}

/// A review (approval or rejection) of `role`: the order awaits review
/// there, and `by` may review it.
fn expect_review(order: &Order, role: &Role, by: &str, actor: &str, config: &Config) -> Result<()> {
    expect_status(order, Status::Review, "awaiting review")?;
    expect_role(order, role)?;
    reviewer(by, actor, &config.approvers)
}

/// The commit a review is about: the held commits, or the role's head. The
/// event must name it. Returns it, and whether it was a hold (taken).
fn reviewed_commit(order: &mut Order, named: &str) -> Result<(String, bool)> {
    let (reviewed, held) = match order.held.take() {
        Some(held) => (held, true),
        None => (order.head.clone().unwrap_or_default(), false),
    };
    if named != reviewed {
        return Err(TransitionError::WrongCommit { order: order.id.clone(), got: named.into(), expected: reviewed });
    }
    Ok((reviewed, held))
}

/// No run starts on a voyage that was closed.
fn expect_not_closed(voyage: &Voyage) -> Result<()> {
    match &voyage.closed {
        Some(closed) => Err(TransitionError::BadInput(format!(
            "{} was closed by {}; its orders do not run (cancel them)",
            voyage.id, closed.by
        ))),
        None => Ok(()),
    }
}

/// A reviewer records their own review, and must be an approver when the
/// config lists them.
fn reviewer(by: &str, actor: &str, approvers: &[String]) -> Result<()> {
    if by != actor {
        return Err(TransitionError::NotTheReviewer { by: by.into(), actor: actor.into() });
    }
    if approvers.is_empty() || approvers.iter().any(|a| a == by) {
        Ok(())
    } else {
        Err(TransitionError::NotAnApprover { by: by.into(), approvers: approvers.join(", ") })
    }
}

/// Stopping or restarting an order's work (cancel, retry) is for its
/// creator, admins and approvers once the config lists approvers; open
/// before that, like reviews.
fn manager(order: &Order, actor: &str, config: &Config, what: &'static str) -> Result<()> {
    let creator = order.history.first().map_or("", |e| e.actor.as_str());
    if actor == creator || config.is_manager(actor) {
        Ok(())
    } else {
        Err(TransitionError::NotAllowed { actor: actor.into(), what, order: order.id.clone(), creator: creator.into() })
    }
}

/// An order's text or voyage changes only while no crew works from it and
/// it has not ended.
fn expect_changeable(order: &Order, what: &'static str) -> Result<()> {
    match order.status {
        Status::Queued | Status::Failed | Status::Review => Ok(()),
        Status::Running => Err(TransitionError::BadInput(format!(
            "{} is running {} (attempt {}): a crew works from it; it can be {what} once the run ends",
            order.id, order.role, order.attempt
        ))),
        _ => Err(wrong_state(order, "queued, failed or awaiting review")),
    }
}

/// Take back `by`'s approval of `role` at `commit`: only while it is the last
/// thing that happened to the order (it waits at the next role, undispatched)
/// and nothing was recorded on the voyage since. The order awaits review at
/// `role` again, at the attempt that was approved.
fn withdraw_approval(order: &mut Order, voyage: &Voyage, role: &Role, by: &str, commit: &str) -> Result<()> {
    let last_two = order.history.len().checked_sub(2).map(|i| &order.history[i..]);
    let approved = matches!(
        last_two,
        Some([approval, handoff])
            if matches!(&approval.body, EventBody::Approved { role: r, by: b, commit: c, .. }
                if r == role && b == by && c == commit)
            && matches!(&handoff.body, EventBody::Advanced { from, to, .. } if from == role && *to == order.role)
    );
    if !approved || order.status != Status::Queued {
        return Err(TransitionError::BadInput(format!(
            "{}: {by}'s approval of {role} is not the last thing that happened to it, so it cannot be withdrawn \
             (only an approval that handed the order to its next role, undispatched, can be)",
            order.id
        )));
    }
    if voyage.state() != VoyageState::Open {
        return Err(TransitionError::BadInput(format!(
            "{}: {} is {} since, so the approval stands",
            order.id,
            voyage.id,
            voyage.state()
        )));
    }
    if voyage.head != commit {
        return Err(TransitionError::BadInput(format!(
            "{}: {} has recorded work since ({}), so the approval of {} stands",
            order.id,
            voyage.id,
            short(&voyage.head),
            short(commit)
        )));
    }
    let attempt = order
        .history
        .iter()
        .rev()
        .find_map(|e| match &e.body {
            EventBody::Succeeded { role: r, attempt, head, .. } if r == role && head == commit => Some(*attempt),
            _ => None,
        })
        .ok_or_else(|| {
            TransitionError::Inconsistent(format!("{}: no success of {role} at {}", order.id, short(commit)))
        })?;
    order.role = role.clone();
    order.attempt = attempt;
    order.status = Status::Review;
    Ok(())
}

pub(super) fn transition(
    order: &mut Order,
    voyage: &mut Voyage,
    event: &Event,
    config: &Config,
    objects: &dyn Objects,
) -> Result<()> {
    let actor = event.actor.as_str();
    match &event.body {
        EventBody::Dispatched { role, attempt, lease, .. } => {
            expect_status(order, Status::Queued, "queued")?;
            expect_not_closed(voyage)?;
            expect_role(order, role)?;
            expect_attempt(order, *attempt)?;
            token("runner", &lease.runner)?;
            token("host", &lease.host)?;
            if lease.actor != actor {
                return Err(TransitionError::BadInput(format!(
                    "{}: the lease names {} but {actor} claimed it",
                    order.id,
                    text::line(&lease.actor)
                )));
            }
            if lease.pid == 0 {
                return Err(TransitionError::BadInput(format!("{}: a lease needs the runner's pid", order.id)));
            }
            check_expiry(order, event.at, lease.expires, config.lease_ttl_secs)?;
            if let Some(why) = report::over_budget(order, config) {
                return Err(TransitionError::BadInput(why));
            }
            order.status = Status::Running;
            order.lease = Some(lease.clone());
            order.retry_after = None;
        }
        EventBody::LeaseRenewed { runner, expires, .. } => {
            expect_status(order, Status::Running, "running")?;
            expect_holder(order, runner, actor)?;
            check_expiry(order, event.at, *expires, config.lease_ttl_secs)?;
            if let Some(lease) = order.lease.as_mut() {
                lease.expires = (*expires).max(lease.expires);
            }
        }
        EventBody::Succeeded { role, attempt, runner, head, summary, run, .. } => {
            expect_status(order, Status::Running, "running")?;
            expect_role(order, role)?;
            expect_attempt(order, *attempt)?;
            expect_holder(order, runner, actor)?;
            let here = existing_commit("head", head, objects)?;
            long_text("summary", summary, limits::SUMMARY)?;
            if let Some(run) = run {
                run.check(order)?;
            }
            // A verdict role signs off only when every criterion passed; a
            // role with `fail_on` only without findings at that severity.
            let objections = report::objections(order, role, run.as_ref(), config);
            if !objections.is_empty() {
                return Err(TransitionError::BadInput(format!(
                    "{role} cannot sign off {}: {}",
                    order.id,
                    objections.join("; ")
                )));
            }
            // What a role records builds on what the ledger last recorded
            // (judged wherever both commits are at hand).
            let recorded_here = objects.presence(&voyage.head) == Presence::Commit;
            if *head != voyage.head && here && recorded_here {
                let descends = objects.descends_from(head, &voyage.head);
                if descends == Some(false) || (descends.is_none() && !objects.tolerate_missing()) {
                    return Err(TransitionError::NotDescendant {
                        order: order.id.clone(),
                        head: short(head).into(),
                        voyage: voyage.id,
                        recorded: short(&voyage.head).into(),
                    });
                }
            }
            let base = std::mem::replace(&mut voyage.head, head.clone());
            order.lease = None;
            order.failures = 0;
            order.last_error = None;
            order.head = Some(head.clone());
            order.handoffs.push(Handoff { role: role.clone(), base, head: head.clone(), summary: summary.clone() });
            order.status = if order.is_gated(role) { Status::Review } else { Status::HandingOff };
        }
        EventBody::Failed { role, attempt, runner, reason, run, permanent, to, .. } => {
            expect_status(order, Status::Running, "running")?;
            expect_role(order, role)?;
            expect_attempt(order, *attempt)?;
            expect_holder(order, runner, actor)?;
            long_text("reason", reason, limits::REASON)?;
            if let Some(run) = run {
                run.check(order)?;
            }
            match to {
                Some(to) => {
                    // Sent back only on the run's own objections, only where the rules say.
                    let fault = report::finds_fault(role, run.as_ref(), config);
                    let expected = report::send_back_target(order, role, config);
                    if !fault || *permanent || expected.as_ref() != Some(to) {
                        return Err(TransitionError::BadInput(format!(
                            "{}: a failure at {role} goes back to {to} only when its verdicts or findings object \
                             and {} is where they send it",
                            order.id,
                            expected.map_or_else(|| "nothing".into(), |r| r.to_string())
                        )));
                    }
                    order.lease = None;
                    order.last_error = Some(reason.clone());
                    let attempt = next_attempt(order)?;
                    requeue(order, to, attempt);
                }
                None => record_failure(order, reason.clone(), config, Some(event.at), *permanent)?,
            }
        }
        EventBody::LeaseExpired { role, runner, .. } => {
            expect_status(order, Status::Running, "running")?;
            expect_role(order, role)?;
            let Some(lease) = &order.lease else {
                return Err(TransitionError::Inconsistent(format!("{} runs without a lease", order.id)));
            };
            if &lease.runner != runner {
                return Err(TransitionError::NotLeaseHolder {
                    order: order.id.clone(),
                    holder: lease.runner.clone(),
                    claimant: text::line(runner).into_owned(),
                });
            }
            // Before it runs out, only the holder's own identity may say its
            // runner is gone (a dead process on its host).
            if event.at < lease.expires && lease.actor != actor {
                return Err(TransitionError::LeaseStillValid {
                    order: order.id.clone(),
                    runner: lease.runner.clone(),
                    until: super::time::format_utc(lease.expires),
                    holder: lease.actor.clone(),
                });
            }
            // The runner died, not the crew's work: another runner takes it at once.
            record_failure(order, format!("lease of {runner} expired"), config, None, false)?;
        }
        EventBody::Held { role, head, reason, .. } => {
            expect_status(order, Status::Queued, "queued")?;
            expect_not_closed(voyage)?;
            expect_role(order, role)?;
            existing_commit("held head", head, objects)?;
            if *head == voyage.head {
                return Err(TransitionError::BadInput(format!(
                    "{}: {} is the recorded head of {}; nothing to hold",
                    order.id,
                    short(head),
                    voyage.id
                )));
            }
            long_text("reason", reason, limits::REASON)?;
            if reason.trim().is_empty() {
                return Err(TransitionError::BadInput("a hold needs a reason".into()));
            }
            order.held = Some(head.clone());
            order.last_error = Some(reason.clone());
            order.status = Status::Review;
        }
        EventBody::Advanced { from, to, .. } => {
            expect_status(order, Status::HandingOff, "handing off after a success or approval")?;
            // `from` must be the predecessor of `to` in this order's sequence,
            // and the order must be there: the bug class this ledger removes.
            let expected = order.next_role(&order.role).cloned();
            if from != &order.role || expected.as_ref() != Some(to) {
                return Err(TransitionError::BadAdvance {
                    order: order.id.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    current: order.role.clone(),
                    expected: expected.map_or_else(|| "none (it is the last role)".into(), |r| r.to_string()),
                });
            }
            requeue(order, to, 1);
        }
        EventBody::Completed { .. } => {
            expect_status(order, Status::HandingOff, "handing off after a success or approval")?;
            if let Some(next) = order.next_role(&order.role) {
                return Err(TransitionError::BadInput(format!(
                    "{} cannot complete at {}: {next} follows in its sequence",
                    order.id, order.role
                )));
            }
            order.status = Status::Completed;
        }
        EventBody::Approved { role, by, commit, comment, .. } => {
            expect_review(order, role, by, actor, config)?;
            long_text("comment", comment, limits::REASON)?;
            let (reviewed, held) = reviewed_commit(order, commit)?;
            if held {
                // The reviewer adopted commits made outside the pipeline: the
                // role that was waiting now starts from them.
                voyage.head = reviewed;
                order.last_error = None;
                order.status = Status::Queued;
            } else {
                order.status = Status::HandingOff;
            }
        }
        EventBody::Rejected { role, by, commit, reason, to, .. } => {
            expect_review(order, role, by, actor, config)?;
            long_text("reason", reason, limits::REASON)?;
            if reason.trim().is_empty() {
                return Err(TransitionError::BadInput("a rejection needs a reason".into()));
            }
            let current = order.roles.iter().position(|r| r == role).ok_or_else(|| {
                TransitionError::Inconsistent(format!("{} is at {role}, which is not in its sequence", order.id))
            })?;
            if !order.roles[..=current].contains(to) {
                return Err(TransitionError::BadRejectTarget {
                    order: order.id.clone(),
                    to: to.clone(),
                    current: role.clone(),
                });
            }
            let (reviewed, held) = reviewed_commit(order, commit)?;
            if !held {
                // The rejected work leaves the branch that will be published:
                // the voyage goes back to the head the role started from, the
                // last one the pipeline accepted.
                let handoff = order.handoffs.pop().filter(|h| &h.role == role && h.head == reviewed);
                let Some(handoff) = handoff else {
                    return Err(TransitionError::Inconsistent(format!(
                        "{}: no hand-off of {role} at {} to take back",
                        order.id,
                        short(&reviewed)
                    )));
                };
                voyage.head = handoff.base;
                order.head = order.handoffs.last().map(|h| h.head.clone());
            }
            order.rejections.push(Rejection {
                role: role.clone(),
                attempt: order.attempt,
                head: reviewed,
                by: by.clone(),
                reason: reason.clone(),
            });
            let attempt = next_attempt(order)?;
            requeue(order, to, attempt);
        }
        EventBody::Retried { .. } => {
            expect_status(order, Status::Failed, "failed")?;
            manager(order, actor, config, "retry")?;
            let role = order.role.clone();
            let attempt = next_attempt(order)?;
            requeue(order, &role, attempt);
        }
        EventBody::OrderEdited { title, brief, acceptance, replaces, .. } => {
            expect_changeable(order, "edited")?;
            manager(order, actor, config, "edit")?;
            if *replaces != order.text_digest() {
                return Err(TransitionError::BadInput(format!(
                    "{}: its text changed since this edit was made; edit it again",
                    order.id
                )));
            }
            let unchanged = title.as_ref().is_none_or(|t| *t == order.title)
                && brief.as_ref().is_none_or(|b| *b == order.brief)
                && acceptance.as_ref().is_none_or(|a| *a == order.acceptance);
            if unchanged {
                return Err(TransitionError::BadInput(format!("{}: the edit changes nothing", order.id)));
            }
            if let Some(title) = title {
                check_title(title)?;
                order.title = title.clone();
            }
            if let Some(brief) = brief {
                long_text("brief", brief, limits::BRIEF)?;
                order.brief = brief.clone();
            }
            if let Some(acceptance) = acceptance.as_ref().filter(|a| **a != order.acceptance) {
                check_criteria(acceptance)?;
                // Verdicts were given on the criteria as they stood: a role
                // that signed them off must not seem to have judged others.
                let judged = order.handoffs.iter().find(|h| config.role(&h.role).is_some_and(|d| d.verdicts));
                if let Some(judged) = judged {
                    return Err(TransitionError::BadInput(format!(
                        "{}: {} already gave verdicts on its acceptance criteria (at {}); criteria change only \
                         before a verdict role signs them off",
                        order.id,
                        judged.role,
                        short(&judged.head)
                    )));
                }
                order.acceptance = acceptance.clone();
            }
        }
        EventBody::OrderMoved { voyage: to, .. } => {
            expect_changeable(order, "moved")?;
            if order.status == Status::Review {
                return Err(wrong_state(order, "queued or failed"));
            }
            manager(order, actor, config, "move")?;
            if *to == order.voyage {
                return Err(TransitionError::BadInput(format!("{} is already on {to}", order.id)));
            }
            // Work recorded or adopted on the voyage (even if later taken
            // back) ties the order to it: commits stay on their branch.
            let worked = order.history.iter().find_map(|e| match &e.body {
                EventBody::Succeeded { role, head, .. } | EventBody::Held { role, head, .. } => Some((role, head)),
                _ => None,
            });
            if let Some((role, head)) = worked {
                return Err(TransitionError::BadInput(format!(
                    "{}: it has had work on {} ({role} at {}), and commits stay on their branch; cancel it and \
                     file a new order on {to}",
                    order.id,
                    order.voyage,
                    short(head)
                )));
            }
            order.voyage = *to;
        }
        EventBody::ApprovalWithdrawn { role, by, commit, .. } => {
            reviewer(by, actor, &config.approvers)?;
            withdraw_approval(order, voyage, role, by, commit)?;
        }
        EventBody::Cancelled { reason, .. } => {
            if order.status.is_terminal() || order.status == Status::HandingOff {
                return Err(wrong_state(order, "active"));
            }
            manager(order, actor, config, "cancel")?;
            long_text("reason", reason, limits::REASON)?;
            order.lease = None;
            order.held = None;
            order.status = Status::Cancelled;
        }
        EventBody::Init { .. }
        | EventBody::ConfigSet { .. }
        | EventBody::VoyageCreated { .. }
        | EventBody::VoyagePublished { .. }
        | EventBody::VoyageLanded { .. }
        | EventBody::VoyageClosed { .. }
        | EventBody::OrderCreated { .. } => {
            return Err(TransitionError::Inconsistent("a pipeline event applied to an order".into()));
        }
    }
    Ok(())
}
