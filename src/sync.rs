//! `git mso sync`: the git server is the coordinator. Fetch into
//! remote-tracking refs (never straight into the live ledger), integrate by
//! fast-forward or by replaying local transactions with re-validation, then
//! push with `--atomic` and a lease (never a `+`). Rejections retry.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use gix::ObjectId;

use crate::error::{Error, Result};
use crate::gitcli::{self, git};
use crate::store::{Integrated, LEDGER_REF, NOTES_REF, Notes, Store};

const ATTEMPTS: u32 = 40;
/// Push rejections that mean "someone else moved first": fetch and try again.
const RETRYABLE: &[&str] = &[
    "non-fast-forward",
    "fetch first",
    "stale info",
    "cannot lock ref",
    "incorrect old value",
    "failed to update ref",
    "failed to lock",
];

/// One sync at a time per process: dispatcher threads share the repository.
static SYNC: Mutex<()> = Mutex::new(());

fn tracking(remote: &str, what: &str) -> String {
    format!("refs/remotes/{remote}/{what}")
}

/// Make `git fetch <remote>` bring the ledger and notes into remote-tracking refs.
pub fn ensure_refspecs(dir: &Path, remote: &str) -> Result<bool> {
    git(dir, &["remote", "get-url", remote])
        .map_err(|_| Error::Input(format!("no remote named '{remote}' (see git remote -v)")))?;
    let key = format!("remote.{remote}.fetch");
    let existing = git(dir, &["config", "--get-all", &key]).unwrap_or_default();
    // The notes refspec is a glob so that a remote without notes yet is no
    // error; only refs/notes/mso itself is ever read (and a server with the
    // hooks refuses any other ref starting so).
    let wanted = [
        format!("+refs/mso/*:{}", tracking(remote, "mso/*")),
        format!("+{NOTES_REF}*:{}", tracking(remote, "notes/mso*")),
    ];
    let mut added = false;
    for spec in wanted {
        if !existing.lines().any(|l| l.trim() == spec) {
            git(dir, &["config", "--add", &key, &spec])?;
            added = true;
        }
    }
    Ok(added)
}

/// Push `refspec` atomically under `lease`; `Ok(false)` when a retryable rejection says to fetch again.
fn push(dir: &Path, remote: &str, lease: &str, refspec: &str) -> Result<bool> {
    push_all(dir, remote, &[(lease.to_string(), refspec.to_string())])
}

/// Push several `(lease, refspec)` pairs as one atomic push: all land or none.
fn push_all(dir: &Path, remote: &str, specs: &[(String, String)]) -> Result<bool> {
    let mut args = vec!["push", "--porcelain", "--atomic"];
    args.extend(specs.iter().map(|(lease, _)| lease.as_str()));
    args.push(remote);
    args.extend(specs.iter().map(|(_, refspec)| refspec.as_str()));
    let out = gitcli::command(dir, &args).output().map_err(|e| Error::io("running git push", e))?;
    if out.status.success() {
        tracing::debug!(remote, refs = specs.len(), "push landed");
        return Ok(true);
    }
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let refusal = text.lines().find(|l| l.contains("git-mso: refusing"));
    // The server's hook saw the ref move under this push: a race, retried.
    if refusal.is_some_and(|l| l.contains("stale info")) {
        tracing::debug!(remote, "push lost the race");
        return Ok(false);
    }
    if text.contains("hook declined") || refusal.is_some() {
        let reason = refusal.unwrap_or("the server refused the push");
        return Err(Error::Input(reason.trim_start_matches("remote: ").trim().to_string()));
    }
    if RETRYABLE.iter().any(|w| text.contains(w)) {
        tracing::debug!(remote, "push lost the race");
        return Ok(false);
    }
    Err(Error::git(format!("git push {remote}"), text.trim()))
}

/// Run `op` (a sync, a push) until it succeeds, riding out a server that
/// is briefly unreachable: an error that is not a refusal (the server's
/// hook, a rule of the ledger) is retried with backoff, 0.25 s doubling to
/// 10 s, for up to `patience` or until `stop` is set.
pub fn patiently<T>(
    what: &str,
    patience: std::time::Duration,
    stop: &std::sync::atomic::AtomicBool,
    mut op: impl FnMut() -> Result<T>,
) -> Result<T> {
    use std::time::{Duration, Instant};
    let start = Instant::now();
    let mut nap = Duration::from_millis(250);
    loop {
        match op() {
            Ok(value) => return Ok(value),
            Err(e)
                if !e.is_refusal()
                    && !needs_a_person(&e)
                    && start.elapsed() + nap < patience
                    && !stop.load(std::sync::atomic::Ordering::SeqCst) =>
            {
                tracing::warn!("{what} failed, trying again in {:.1} s: {e}", nap.as_secs_f64());
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Errors no wait mends: the server does not let this machine in.
fn needs_a_person(err: &Error) -> bool {
    const WORDS: &[&str] = &[
        "Permission denied",
        "Authentication failed",
        "could not read Username",
        "Host key verification failed",
        "access denied",
        "not found in upstream origin",
    ];
    let text = err.to_string();
    WORDS.iter().any(|w| text.contains(w))
}

/// What a sync did, in words.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
}

/// Synchronize the ledger, voyage branches and notes with `remote`.
pub fn sync(dir: &Path, remote: &str) -> Result<Report> {
    let _one_at_a_time = SYNC.lock().unwrap_or_else(|e| e.into_inner());
    let mut report = Report::default();
    if ensure_refspecs(dir, remote)? {
        report
            .lines
            .push(format!("configured {remote} to fetch refs/mso/* and {NOTES_REF} into refs/remotes/{remote}/"));
    }
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // Runners that collided should not retry in lockstep.
            let jitter = crate::store::random_u64() % 100;
            std::thread::sleep(std::time::Duration::from_millis(10 + jitter * (attempt as u64).min(5)));
        }
        // --prune: a branch deleted on the remote (a finished voyage's) must
        // not linger here as a remote-tracking ref that leases are taken against.
        match git(dir, &["fetch", "--quiet", "--prune", remote]) {
            Ok(_) => {}
            // Another process fetching into this repository holds a ref lock.
            Err(e) if RETRYABLE.iter().any(|w| e.to_string().contains(w)) => continue,
            Err(e) => return Err(e),
        }
        let store = Store::discover(dir)?;
        let fetched = store.ref_target(&tracking(remote, "mso/ledger"))?;
        let stale = |event: &crate::core::Event| {
            stale_hold(&store, remote, event)
                .or_else(|| stale_landing(&store, remote, event))
                .or_else(|| stale_result(&store, remote, event))
        };
        let integrated = match store.integrate(fetched, &stale) {
            Err(Error::Conflict { .. }) => continue,
            other => other?,
        };
        let (voyages, renumbered) = match &integrated {
            Integrated::Rebased(r) => (r.voyages.clone(), r.orders.clone()),
            _ => Default::default(),
        };
        describe(&integrated, &mut report);
        sync_branches(&store, remote, &voyages, &mut report)?;
        // Voyages whose work reached their target branch on the remote (the
        // server's hook checks a landing against its own branch).
        let tips = |target: &str| store.ref_target(&tracking(remote, target)).ok().flatten().into_iter().collect();
        report.lines.extend(store.record_landings(&tips, std::time::Duration::from_secs(10))?);
        // The ledger and the voyage branches it names go in one atomic push:
        // the server sees a new voyage's branch together with its creation,
        // and never a ledger naming a commit it does not have. Commits a
        // new hold names go first, on their own: the server judges a hold
        // against the branch as it already stands.
        // One ledger tip for the whole push: the branches it records go with
        // it. A runner's other worker may record a result meanwhile; that
        // result and its branch go with the next sync, never half of them now.
        let snapshot = store.tip()?;
        let mut specs = branch_specs(&store, remote, snapshot, &mut report)?;
        // The local transactions the remote lacks, read once.
        let local = snapshot.map(|t| t.commit);
        let pending: Vec<crate::core::Event> =
            store.pending(local, fetched)?.into_iter().flat_map(|e| e.events).collect();
        let held: Vec<String> = pending
            .iter()
            .filter_map(|e| match &e.body {
                crate::core::EventBody::Held { head, .. } => Some(head.clone()),
                _ => None,
            })
            .collect();
        let (first, rest): (Vec<_>, Vec<_>) = specs.drain(..).partition(|(_, refspec)| {
            let name = refspec.split(':').next().unwrap_or_default();
            store.ref_target(name).ok().flatten().is_some_and(|tip| held.contains(&tip.to_string()))
        });
        if !first.is_empty() && !push_all(dir, remote, &first)? {
            continue;
        }
        specs = rest;
        let branches = specs.len() + first.len();
        specs.extend(rejected_specs(&store, remote, &pending, &renumbered, &mut report)?);
        let ledger_ahead = local.is_some() && local != fetched;
        if let Some(local) = local.filter(|_| ledger_ahead) {
            let lease =
                format!("--force-with-lease={LEDGER_REF}:{}", fetched.map(|f| f.to_string()).unwrap_or_default());
            specs.push((lease, format!("{local}:{LEDGER_REF}")));
        }
        if !specs.is_empty() {
            if !push_all(dir, remote, &specs)? {
                continue;
            }
            if ledger_ahead {
                report.lines.push(format!("pushed refs/mso/ledger to {remote}"));
            }
            if branches > 0 {
                report.lines.push(format!("pushed {branches} voyage branch(es)"));
            }
        }
        // Notes are a mirror and a record of evidence: a problem with them is
        // reported (per ref, by sync_notes), never a reason for the ledger
        // and the branches not to sync.
        let _ = sync_notes(dir, &store, remote, &mut report);
        return Ok(report);
    }
    Err(Error::Conflict { attempts: ATTEMPTS })
}

/// The local tip, and the voyage `order` is on there.
fn voyage_of(store: &Store, order: &crate::core::OrderId) -> Option<(crate::store::Tip, crate::core::VoyageId)> {
    let tip = store.tip().ok()??;
    let voyage = store.order(&tip, order).ok()??.voyage;
    Some((tip, voyage))
}

/// A local hold that can no longer be published: the branch has moved past
/// the commits it names (on the remote, or here). The transaction is left
/// out; the next dispatch holds what the branch holds now.
fn stale_hold(store: &Store, remote: &str, event: &crate::core::Event) -> Option<String> {
    let crate::core::EventBody::Held { order, head, .. } = &event.body else { return None };
    let (_, voyage) = voyage_of(store, order)?;
    let theirs = store.ref_target(&tracking(remote, &voyage.branch())).ok()?;
    let ours = store.ref_target(&format!("refs/heads/{}", voyage.branch())).ok()?;
    let is = |id: Option<ObjectId>| id.is_some_and(|id| head.parse::<ObjectId>().ok() == Some(id));
    // Publishable: the remote's branch is at the held commits, or ours is and the remote's is behind it.
    let behind = |theirs: Option<ObjectId>| match (theirs, head.parse::<ObjectId>()) {
        (None, _) => true,
        (Some(theirs), Ok(head)) => crate::store::objects::is_ancestor(store.repo(), theirs, head) == Some(true),
        _ => false,
    };
    if is(theirs) || (is(ours) && behind(theirs)) {
        return None;
    }
    Some(format!(
        "{} moved past the held commits {}; the next dispatch holds what it holds now",
        voyage.branch(),
        crate::core::event::short(head)
    ))
}

/// Take the local transaction holding the event `this` picks (one the
/// remote lacks) back out of the ledger, replaying the others onto the
/// remote's ledger as a sync would: a result the server refused must not
/// ride along with every later push.
pub fn withdraw_result(dir: &Path, remote: &str, this: &dyn Fn(&crate::core::Event) -> bool) -> Result<()> {
    let _one_at_a_time = SYNC.lock().unwrap_or_else(|e| e.into_inner());
    let store = Store::discover(dir)?;
    let fetched = store.ref_target(&tracking(remote, "mso/ledger"))?;
    let refused = |event: &crate::core::Event| this(event).then(|| "the server refused it".to_string());
    store.integrate(fetched, &refused)?;
    Ok(())
}

/// A local result whose commits cannot reach the remote with it: the
/// remote's voyage branch moved, during the run, to commits the result does
/// not build on. The transaction is left out, so the ledger and the branch
/// stay in step; a runner then records the run as failed.
fn stale_result(store: &Store, remote: &str, event: &crate::core::Event) -> Option<String> {
    let crate::core::EventBody::Succeeded { order, head, .. } = &event.body else { return None };
    let (tip, voyage) = voyage_of(store, order)?;
    // A branch the remote does not have yet goes there with the result.
    let theirs = store.ref_target(&tracking(remote, &voyage.branch())).ok()??;
    let head = head.parse::<ObjectId>().ok()?;
    if theirs == head || crate::store::objects::is_ancestor(store.repo(), theirs, head) != Some(false) {
        return None;
    }
    // The remote's branch already holds the result (a role that made no
    // commit, and someone pushed on top): nothing of it needs publishing.
    if crate::store::objects::is_ancestor(store.repo(), head, theirs) == Some(true) {
        return None;
    }
    // Work rejected since, still on the remote's branch: sync moves it back.
    let recorded = store.voyage(&tip, voyage).ok()??;
    if store.rejection_at(&tip, &recorded, theirs).ok()?.is_some() {
        return None;
    }
    Some(format!(
        "{} moved on {remote} to {} during the run; the result does not build on it",
        voyage.branch(),
        crate::store::short(theirs)
    ))
}

/// A local landing the remote's target branch does not hold (it was seen on
/// a branch the remote never had, or the remote's moved back): the server
/// would refuse it, so it is left out; sync looks again at what is there.
fn stale_landing(store: &Store, remote: &str, event: &crate::core::Event) -> Option<String> {
    let crate::core::EventBody::VoyageLanded { voyage, target, commit, .. } = &event.body else { return None };
    let theirs = store.ref_target(&tracking(remote, target)).ok().flatten();
    let commit = commit.parse::<ObjectId>().ok()?;
    if theirs.is_some_and(|t| crate::store::objects::is_ancestor(store.repo(), commit, t) == Some(true)) {
        return None;
    }
    Some(format!("{voyage}'s landing at {} is not on {remote}'s {target}", crate::store::short(commit)))
}

fn describe(integrated: &Integrated, report: &mut Report) {
    match integrated {
        Integrated::UpToDate | Integrated::LocalAhead => {}
        Integrated::Adopted => report.lines.push("took the remote's ledger".into()),
        Integrated::FastForwarded(n) => report.lines.push(format!("fast-forwarded the ledger by {n} commits")),
        Integrated::Rebased(r) => {
            report.lines.push(format!("replayed {} local transactions on top of the remote's ledger", r.replayed));
            if r.retimed > 0 {
                report.lines.push(format!("re-timed {} local event(s) older than a minute to now", r.retimed));
            }
            for (old, new) in &r.renumbered {
                report.lines.push(format!("renumbered {old} -> {new} (the id was taken on the remote)"));
            }
            for (subject, why) in &r.dropped {
                report.lines.push(format!("dropped local transaction \"{subject}\": {why}"));
            }
        }
    }
}

/// Bring local voyage branches up to the remote's (fast-forward only), after
/// renaming branches of renumbered voyages.
fn sync_branches(
    store: &Store,
    remote: &str,
    renumbered: &std::collections::BTreeMap<crate::core::VoyageId, crate::core::VoyageId>,
    report: &mut Report,
) -> Result<()> {
    let dir = store.top_dir();
    for (old, new) in store.rename_voyage_branches(renumbered)? {
        report.lines.push(format!("renamed branch {} -> {}", old.branch(), new.branch()));
    }
    let prefix = tracking(remote, "voyage/");
    let listing = git(&dir, &["for-each-ref", "--format=%(refname) %(objectname)", &prefix])?;
    let tip = store.tip()?;
    let mut checkouts = None;
    for line in listing.lines() {
        let Some((name, theirs)) = line.split_once(' ') else { continue };
        let branch = format!("refs/heads/voyage/{}", &name[prefix.len()..]);
        let theirs_id = theirs.parse::<ObjectId>().ok();
        let Some(ours) = store.ref_target(&branch)? else {
            let _ = git(&dir, &["update-ref", &branch, theirs, ""]);
            continue;
        };
        if Some(ours) == theirs_id {
            continue;
        }
        let voyage = match (&tip, name[prefix.len()..].parse()) {
            (Some(tip), Ok(id)) => store.voyage(tip, id)?,
            _ => None,
        };
        // Work rejected since (here or elsewhere) leaves the branch first.
        if let (Some(tip), Some(voyage)) = (&tip, &voyage) {
            match store.set_aside_rejected(tip, voyage)? {
                crate::store::SetAside::Moved(said) | crate::store::SetAside::Blocked(said) => report.lines.push(said),
                crate::store::SetAside::Nothing => {}
            }
        }
        // A concurrent sync may move the branch first; then there is nothing left to do here.
        let Some(ours) = store.ref_target(&branch)? else { continue };
        let Some(theirs_id) = theirs_id.filter(|t| *t != ours) else { continue };
        // Fast-forward only: ours must be an ancestor of theirs, and theirs
        // not work the ledger records as rejected (the remote has not been
        // told yet; this sync tells it).
        if crate::store::objects::is_ancestor(store.repo(), ours, theirs_id) != Some(true) {
            continue;
        }
        let rejected = match (&tip, &voyage) {
            (Some(tip), Some(voyage)) if voyage.head != theirs => store.rejection_at(tip, voyage, theirs_id)?.is_some(),
            _ => false,
        };
        if rejected {
            continue;
        }
        // Never under someone's checkout: their worktree would go stale.
        if checkouts.is_none() {
            checkouts = Some(store.checked_out_branches()?);
        }
        if let Some(worktree) = checkouts.as_ref().and_then(|c| c.get(&branch)) {
            report.lines.push(format!(
                "{branch} is checked out in {worktree}: not brought up to {remote}'s (switch away, or pull)"
            ));
            continue;
        }
        let _ = git(&dir, &["update-ref", &branch, theirs, &ours.to_string()]);
    }
    Ok(())
}

/// Push specs (with leases) for voyage branches whose tips the ledger
/// records (the voyage's head, an ancestor of it, or commits an order holds
/// for review) and that are ahead of, or missing on, the remote. Never
/// forced. A branch with commits the ledger does not record, or that
/// diverged from the remote's, is reported and left out: sync publishes
/// what the ledger says, and cannot be held back by a branch.
fn branch_specs(
    store: &Store,
    remote: &str,
    tip: Option<crate::store::Tip>,
    report: &mut Report,
) -> Result<Vec<(String, String)>> {
    let dir = store.top_dir();
    let Some(tip) = tip else { return Ok(Vec::new()) };
    let listing = git(&dir, &["for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/voyage/"])?;
    let mut specs = Vec::new();
    for line in listing.lines() {
        let Some((name, ours)) = line.split_once(' ') else { continue };
        let Ok(ours) = ours.parse::<ObjectId>() else { continue };
        let short = &name["refs/heads/".len()..];
        let Some(voyage) = short.strip_prefix("voyage/").and_then(|v| v.parse().ok()) else { continue };
        let theirs = store.ref_target(&tracking(remote, short))?;
        if theirs == Some(ours) {
            continue;
        }
        let Some(voyage) = store.voyage(&tip, voyage)? else { continue };
        let ours = match store.set_aside_rejected(&tip, &voyage)? {
            crate::store::SetAside::Moved(said) => {
                report.lines.push(said);
                match store.ref_target(name)? {
                    Some(now) if theirs != Some(now) => now,
                    _ => continue,
                }
            }
            crate::store::SetAside::Blocked(said) => {
                report.lines.push(said);
                continue;
            }
            crate::store::SetAside::Nothing => ours,
        };
        if !recorded(store, &tip, &voyage, ours)? {
            report.lines.push(format!(
                "{short} has commits the ledger does not record; not pushed (a runner holds them for review once \
                 you push them yourself)"
            ));
            continue;
        }
        // The remote's branch still holds work rejected since: move it back
        // to the recorded head (a lease on what it holds; the hook accepts
        // it with the ledger that records the rejection).
        let rejected_there = match theirs {
            Some(theirs) => {
                voyage.head.parse::<ObjectId>().ok() == Some(ours)
                    && store.rejection_at(&tip, &voyage, theirs)?.is_some()
            }
            None => false,
        };
        match theirs {
            Some(theirs)
                if !rejected_there && crate::store::objects::is_ancestor(store.repo(), theirs, ours) != Some(true) =>
            {
                report.lines.push(format!(
                    "{short} differs from {remote}'s and is not ahead of it; not pushed (look with `git log {short}...{remote}/{short}`)"
                ));
            }
            _ => {
                let expected = theirs.map(|t| t.to_string()).unwrap_or_default();
                specs.push((format!("--force-with-lease={name}:{expected}"), format!("{name}:{name}")));
            }
        }
    }
    Ok(specs)
}

/// Push specs for the rejected work the local transactions record (the
/// remote lacks them): `refs/mso/rejected/ORDER/N` at each rejection's
/// commit, named by the ledger as it stands after integration, created
/// there, never moved. Here, refs of renumbered orders take their new names
/// in one ref transaction (old names go only when their commit keeps a
/// name); a name already holding other work is reported, never overwritten.
fn rejected_specs(
    store: &Store,
    remote: &str,
    pending: &[crate::core::Event],
    renumbered: &std::collections::BTreeMap<crate::core::OrderId, crate::core::OrderId>,
    report: &mut Report,
) -> Result<Vec<(String, String)>> {
    use crate::core::state::{REJECTED_PREFIX, rejected_ref};
    let Some(tip) = store.tip()? else { return Ok(Vec::new()) };
    let orders: std::collections::BTreeSet<crate::core::OrderId> = pending
        .iter()
        .filter_map(|e| match &e.body {
            crate::core::EventBody::Rejected { order, .. } => Some(order.clone()),
            _ => None,
        })
        .collect();
    // What the ledger names, for the commits this repository has.
    let mut wanted: Vec<(String, ObjectId)> = Vec::new();
    for id in &orders {
        let Some(order) = store.order(&tip, id)? else { continue };
        for (i, rejection) in order.rejections.iter().enumerate() {
            let Ok(commit) = rejection.head.parse::<ObjectId>() else { continue };
            if store.require_commit(commit, "rejected work").is_ok() {
                wanted.push((rejected_ref(id, i + 1), commit));
            }
        }
    }
    let kept: std::collections::BTreeSet<ObjectId> = wanted.iter().map(|(_, c)| *c).collect();
    let names: std::collections::BTreeSet<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
    // Old names of renumbered orders whose work keeps a new name.
    let mut vacated: std::collections::BTreeMap<String, ObjectId> = Default::default();
    for old in renumbered.keys() {
        let prefix = format!("{REJECTED_PREFIX}{old}/");
        let listing = git(&store.top_dir(), &["for-each-ref", "--format=%(refname) %(objectname)", &prefix])?;
        for line in listing.lines() {
            if let Some((name, id)) = line.split_once(' ')
                && let Ok(id) = id.parse::<ObjectId>()
                && kept.contains(&id)
            {
                vacated.insert(name.to_string(), id);
            }
        }
    }
    let mut changes = Vec::new();
    let mut pushable = Vec::new();
    for (name, commit) in &wanted {
        match store.ref_target(name)? {
            Some(here) if here == *commit => pushable.push((name.clone(), *commit)),
            None => {
                changes.push((name.clone(), None, Some(*commit)));
                pushable.push((name.clone(), *commit));
            }
            Some(here) if vacated.get(name) == Some(&here) => {
                changes.push((name.clone(), Some(here), Some(*commit)));
                pushable.push((name.clone(), *commit));
            }
            Some(here) => report.lines.push(format!(
                "{name} holds {} here, not the rejected {}: left alone, not pushed",
                crate::store::short(here),
                crate::store::short(*commit)
            )),
        }
    }
    let kept_after: std::collections::BTreeSet<ObjectId> = pushable.iter().map(|(_, c)| *c).collect();
    for (name, id) in &vacated {
        if !names.contains(name.as_str()) && kept_after.contains(id) {
            changes.push((name.clone(), Some(*id), None));
        }
    }
    store.edit_rejected_refs(&changes)?;
    let mut specs = Vec::new();
    for (name, commit) in pushable {
        match store.ref_target(&tracking(remote, &name["refs/".len()..]))? {
            Some(theirs) if theirs == commit => {}
            Some(_) => report.lines.push(format!("{name} is at another commit on {remote}; not pushed")),
            None => specs.push((format!("--force-with-lease={name}:"), format!("{commit}:{name}"))),
        }
    }
    Ok(specs)
}

/// Whether the ledger at `tip` records `commit` for `voyage`: its head, an
/// ancestor of it, or what the order holding it holds for review.
fn recorded(store: &Store, tip: &crate::store::Tip, voyage: &crate::core::Voyage, commit: ObjectId) -> Result<bool> {
    let held = || -> Result<bool> {
        let Some(active) = &voyage.active else { return Ok(false) };
        let held = store.order(tip, active)?.and_then(|o| o.held);
        Ok(held.as_deref() == Some(commit.to_string().as_str()))
    };
    let Ok(head) = voyage.head.parse::<ObjectId>() else { return held() };
    if head == commit {
        return Ok(true);
    }
    // A branch ahead of its head (the short walk, from the branch) holds
    // commits the ledger does not record, unless a hold names them; one
    // behind it is an older recorded state.
    let repo = store.repo();
    if crate::store::objects::is_ancestor(repo, head, commit) == Some(true) {
        return held();
    }
    Ok(crate::store::objects::is_ancestor(repo, commit, head) == Some(true) || held()?)
}

/// Merge the remote's notes into ours and push the union (with a lease),
/// for each notes ref git-mso keeps.
fn sync_notes(dir: &Path, store: &Store, remote: &str, report: &mut Report) -> Result<()> {
    // One notes ref that cannot be synced does not hold back the other.
    let mut first_error = None;
    for notes in crate::store::ALL_NOTES {
        if let Err(e) = sync_one_notes(dir, store, remote, notes, report) {
            report.lines.push(format!("warning: {} was not synced ({e}); the next sync tries again", notes.name));
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn sync_one_notes(dir: &Path, store: &Store, remote: &str, notes: Notes, report: &mut Report) -> Result<()> {
    let name = notes.name;
    let tracked = tracking(remote, &name["refs/".len()..]);
    // Another runner's notes may land between our fetch and our push: fetch
    // the notes again, merge, and push again, a few times.
    for attempt in 0..NOTES_ATTEMPTS {
        if attempt > 0 {
            git(dir, &["fetch", "--quiet", remote, &format!("+{name}:{tracked}")])?;
        }
        let theirs = store.ref_target(&tracked)?;
        if let Some(theirs) = theirs {
            let merged = store.merge_notes(notes, theirs)?;
            if merged.skipped > 0 && attempt == 0 {
                report.lines.push(format!(
                    "warning: skipped {} note(s) of {name} from {remote} that are not plain notes on commits \
                     (directories, odd names or over {} KiB)",
                    merged.skipped,
                    notes.max_note / 1024
                ));
            }
            if merged.changed && attempt == 0 {
                report.lines.push(format!("merged the remote's {name}"));
            }
        }
        let ours = store.ref_target(name)?;
        if ours.is_none() || ours == theirs {
            return Ok(());
        }
        let lease = format!("--force-with-lease={name}:{}", theirs.map(|t| t.to_string()).unwrap_or_default());
        if push(dir, remote, &lease, &format!("{name}:{name}"))? {
            report.lines.push(format!("pushed {name}"));
            return Ok(());
        }
    }
    report.lines.push(format!("warning: {remote}'s {name} kept moving; the next sync pushes ours"));
    Ok(())
}

/// Rounds of fetch, merge and push of the notes in one sync.
const NOTES_ATTEMPTS: u32 = 5;

/// Write a report.
pub fn print(report: &Report, out: &mut dyn Write) -> Result<()> {
    for line in &report.lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}
