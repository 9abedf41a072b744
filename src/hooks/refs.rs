//! What the server accepts on the refs git-mso owns besides the ledger:
//! voyage branches move only as the ledger allows, holds name the branch
//! they hold, notes are plain and bounded, and no ref may change what
//! objects read as or pose as one of ours. Each check returns the reason to
//! refuse, if any.

use gix::ObjectId;

use super::receive::{Context, Update};
use crate::core::ids::is_lower_hex;
use crate::core::state::REJECTED_PREFIX;
use crate::core::{Order, OrderId, OrderSummary, Voyage, VoyageId};
use crate::error::{Error, Result};
use crate::store::objects::is_ancestor;
use crate::store::{LEDGER_REF, MAX_NOTES, NOTES_REF, Notes, Store, Tip, short};

pub(super) const VOYAGE_PREFIX: &str = "refs/heads/voyage/";

/// Refs no push may touch, or only under their exact name: replace refs
/// (they change what an object id reads as, for git and for gix), anything
/// else under `refs/mso/`, case variants of our namespaces (one file on a
/// case-insensitive server), refs that would make `voyage/…` mean two
/// things, and branches whose remote-tracking names collide with the ones
/// clones fetch the ledger and notes into (`refs/remotes/<r>/mso/…`,
/// `…/notes/mso…`), which would stop every clone's fetch.
pub(super) fn namespace(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("refs/replace/") {
        return Some("replace refs would change what commits and trees read as; git-mso refuses them".into());
    }
    let tracked_like_ours = lower == "refs/heads/mso"
        || lower.starts_with("refs/heads/mso/")
        || lower == "refs/heads/notes"
        || lower.starts_with("refs/heads/notes/mso");
    if tracked_like_ours {
        return Some(
            "clones fetch this branch where they keep the remote's ledger and notes (refs/remotes/<remote>/mso, \
             …/notes/mso): choose another name"
                .into(),
        );
    }
    if lower == "refs/heads/voyage" || lower.starts_with("refs/voyage/") {
        return Some("this name would stand in the way of, or shadow, the voyage/… branches".into());
    }
    if lower.starts_with("refs/mso/") && name != LEDGER_REF && !name.starts_with(REJECTED_PREFIX) {
        return Some("only refs/mso/ledger and refs/mso/rejected/ORDER/N live under refs/mso/".into());
    }
    if lower.starts_with(NOTES_REF) && crate::store::Notes::named(name).is_none() {
        return Some(
            "only refs/notes/mso and refs/notes/mso-evidence are git-mso's; clones fetch refs/notes/mso*".into(),
        );
    }
    if lower.starts_with(VOYAGE_PREFIX) && !name.starts_with(VOYAGE_PREFIX) {
        return Some("a case variant of git-mso's voyage branches".into());
    }
    if lower.starts_with("refs/tags/voyage/") {
        return Some("a tag named like a voyage branch would make voyage/… mean two things".into());
    }
    None
}

/// The ledger as it stands after the push, read lazily and once.
pub(super) struct LedgerView<'s> {
    store: &'s Store,
    ledger: Option<ObjectId>,
    tip: Option<Tip>,
    summaries: Option<Vec<OrderSummary>>,
    /// The ledger before a push that also moves it: a voyage it does not
    /// have yet (the push creates it) is judged by the ledger after alone.
    before_push: bool,
}

impl<'s> LedgerView<'s> {
    pub(super) fn new(store: &'s Store, ledger: Option<ObjectId>) -> Self {
        LedgerView { store, ledger, tip: None, summaries: None, before_push: false }
    }

    pub(super) fn before_push(store: &'s Store, ledger: Option<ObjectId>) -> Self {
        LedgerView { before_push: true, ..Self::new(store, ledger) }
    }

    fn tip(&mut self) -> Result<Option<Tip>> {
        if self.tip.is_none()
            && let Some(commit) = self.ledger
        {
            self.tip = Some(self.store.tip_of(commit)?);
        }
        Ok(self.tip)
    }

    fn voyage(&mut self, id: VoyageId) -> Result<Option<Voyage>> {
        match self.tip()? {
            Some(tip) => self.store.voyage(&tip, id),
            None => Ok(None),
        }
    }

    fn order(&mut self, id: &OrderId) -> Result<Option<Order>> {
        match self.tip()? {
            Some(tip) => self.store.order(&tip, id),
            None => Ok(None),
        }
    }

    /// Orders of `voyage` that are not finished.
    fn open_orders(&mut self, voyage: VoyageId) -> Result<Vec<OrderId>> {
        if self.summaries.is_none() {
            self.summaries = Some(match self.tip()? {
                Some(tip) => self.store.summaries(&tip)?,
                None => Vec::new(),
            });
        }
        let all = self.summaries.as_deref().unwrap_or_default();
        Ok(all.iter().filter(|s| s.voyage == voyage && !s.status.is_terminal()).map(|s| s.id.clone()).collect())
    }
}

fn descends(store: &Store, commit: ObjectId, ancestor: ObjectId) -> bool {
    is_ancestor(store.repo(), ancestor, commit) == Some(true)
}

fn is_commit(store: &Store, id: ObjectId) -> bool {
    store.repo().find_header(id).is_ok_and(|h| h.kind() == gix::object::Kind::Commit)
}

fn listed(ids: &[OrderId]) -> String {
    let shown: Vec<String> = ids.iter().take(5).map(OrderId::to_string).collect();
    shown.join(", ") + if ids.len() > 5 { ", …" } else { "" }
}

/// A push to `refs/heads/voyage/*`, against the ledger as it stands after the push.
///
/// - the name is exactly `voyage/VOY-NNNN` of a voyage the ledger created;
/// - while one of its orders runs, only that run's lease holder moves it
///   (when the hosting layer names the pusher);
/// - while it has open orders, it is not deleted, and moves only by
///   fast-forward or back to the head the ledger recorded (judged by the
///   ledger before the push too: only from a commit the pushed ledger
///   records as rejected, kept under `refs/mso/rejected/…`);
/// - it is created at, or on top of, the recorded head.
pub(super) fn check_voyage(
    view: &mut LedgerView<'_>,
    update: &Update,
    set_aside: bool,
    ctx: &Context,
) -> Result<Option<String>> {
    let refuse = |why: String| Ok(Some(why));
    let store = view.store;
    let name = &update.name[VOYAGE_PREFIX.len()..];
    let Some(id) = name.parse::<VoyageId>().ok().filter(|id| id.to_string() == name) else {
        return refuse("voyage/ branches belong to git-mso and are named voyage/VOY-NNNN".into());
    };
    let voyage = match view.voyage(id)? {
        Some(voyage) => voyage,
        None if view.before_push => return Ok(None),
        None if view.ledger.is_none() => {
            return refuse(format!("there is no ledger, so no {id}: voyage branches follow the ledger"));
        }
        None => {
            return refuse(format!("the ledger has no {id}: a voyage branch is created after its VOYAGE_CREATED"));
        }
    };
    if let (Some(active), Some(pusher)) = (&voyage.active, &ctx.pusher) {
        let order = view.order(active)?;
        if let Some(lease) = order.and_then(|o| o.lease)
            && &lease.actor != pusher
        {
            return refuse(format!(
                "{active} is running on {id}; only its lease holder ({}) may move the branch",
                lease.actor
            ));
        }
    }
    let open = view.open_orders(id)?;
    if update.new.is_null() {
        if !open.is_empty() {
            return refuse(format!("deleting it is not allowed while {id} has open orders ({})", listed(&open)));
        }
        return Ok(None);
    }
    if !is_commit(store, update.new) {
        return refuse(format!("{} is not a commit", short(update.new)));
    }
    let recorded: ObjectId = voyage.head.parse().map_err(|_| Error::Corrupt {
        commit: "(pushed ledger)".into(),
        reason: format!("{id} has a malformed head"),
    })?;
    if update.new == recorded {
        return Ok(None);
    }
    if update.old.is_null() {
        if !descends(store, update.new, recorded) {
            return refuse(format!(
                "created at {}, which does not build on {id}'s recorded head {}",
                short(update.new),
                short(recorded)
            ));
        }
        return Ok(None);
    }
    if !open.is_empty() && !descends(store, update.new, update.old) && !set_aside {
        return refuse(format!(
            "{}..{} is not a fast-forward, and {id} has open orders ({}); only a fast-forward, or a reset to the \
             recorded head {}, is accepted",
            short(update.old),
            short(update.new),
            listed(&open),
            short(recorded)
        ));
    }
    Ok(None)
}

/// Whether a voyage branch update takes rejected work off the branch, as
/// the ledger after the push has it: the branch moves from a commit it
/// records as a rejection of one of the voyage's orders to the voyage's
/// recorded head, and that commit stays reachable under
/// `refs/mso/rejected/` (there already, or created by this push). Judged
/// once, by the ledger after the push, for both views.
pub(super) fn sets_aside_rejected(after: &mut LedgerView<'_>, update: &Update, updates: &[Update]) -> Result<bool> {
    let name = &update.name[VOYAGE_PREFIX.len()..];
    let Some(id) = name.parse::<VoyageId>().ok().filter(|id| id.to_string() == name) else { return Ok(false) };
    if update.old.is_null() || update.new.is_null() {
        return Ok(false);
    }
    let Some(voyage) = after.voyage(id)? else { return Ok(false) };
    if voyage.head.parse::<ObjectId>().ok() != Some(update.new) {
        return Ok(false);
    }
    let Some(tip) = after.tip()? else { return Ok(false) };
    Ok(after.store.rejection_at(&tip, &voyage, update.old)?.is_some()
        && kept_as_rejected(after.store, updates, update.old))
}

/// Whether `commit` stays reachable as rejected work: a ref under
/// `refs/mso/rejected/` is at it already, or this push creates one there.
fn kept_as_rejected(store: &Store, updates: &[Update], commit: ObjectId) -> bool {
    if updates.iter().any(|u| u.name.starts_with(REJECTED_PREFIX) && u.new == commit) {
        return true;
    }
    let Ok(refs) = store.repo().references() else { return false };
    let Ok(iter) = refs.prefixed(REJECTED_PREFIX) else { return false };
    iter.take(crate::hooks::limits::REJECTED_SCAN).flatten().any(|r| r.target().try_id() == Some(commit.as_ref()))
}

/// A pushed HELD names the commits it holds for review: they must be its
/// voyage branch's tip on the server already, and the same push may not
/// move that branch, so what a reviewer sees on the branch is what
/// approving adopts, whether or not the push is atomic.
pub(super) fn check_hold(
    view: &mut LedgerView<'_>,
    updates: &[Update],
    order: &OrderId,
    head: &str,
) -> Result<Option<String>> {
    let Some(voyage) = view.order(order)?.map(|o| o.voyage) else { return Ok(None) };
    let name = format!("{VOYAGE_PREFIX}{voyage}");
    if updates.iter().any(|u| u.name == name) {
        return Ok(Some(format!(
            "HELD for {order} comes with a push that moves voyage/{voyage}: push the held commits first, then \
             the hold"
        )));
    }
    let tip = view.store.ref_target(&name)?;
    if tip.map(|t| t.to_string()).as_deref() == Some(head) {
        return Ok(None);
    }
    Ok(Some(format!(
        "HELD for {order} names {}, but voyage/{voyage} is at {}: a hold names the branch's tip",
        crate::core::event::short(head),
        tip.map_or_else(|| "nothing".to_string(), short)
    )))
}

/// A pushed VOYAGE_LANDED names a commit of the voyage's target branch as
/// the server has it before this push: a landing is a fact of the server's
/// branches, not of a branch a pusher has elsewhere, nor of an update in
/// the same push that git may yet refuse (a push need not be atomic).
pub(super) fn check_landing(
    view: &mut LedgerView<'_>,
    voyage: VoyageId,
    target: &str,
    commit: &str,
    how: crate::core::state::LandedHow,
) -> Result<Option<String>> {
    let store = view.store;
    let name = format!("refs/heads/{target}");
    let tip = store.ref_target(&name)?;
    let Ok(commit) = commit.parse::<ObjectId>() else { return Ok(Some("a landing names no commit".into())) };
    if tip.is_none_or(|tip| is_ancestor(store.repo(), commit, tip) != Some(true)) {
        return Ok(Some(format!(
            "VOYAGE_LANDED for {voyage} names {}, which is not on the server's {target}",
            short(commit)
        )));
    }
    // A squash is known by its changes, not only by the trailer anyone can type.
    if how == crate::core::state::LandedHow::Squash
        && let Some(landed) = view.voyage(voyage)?
        && !store.squashes(&landed, commit)
    {
        return Ok(Some(format!(
            "VOYAGE_LANDED for {voyage} names {} as its squash merge, but its changes are not {voyage}'s",
            short(commit)
        )));
    }
    Ok(None)
}

/// Whether the hook judges pushes to `name` (and so checks their old value).
pub(super) fn judged(name: &str) -> bool {
    name == LEDGER_REF
        || Notes::named(name).is_some()
        || name.starts_with(VOYAGE_PREFIX)
        || name.starts_with(REJECTED_PREFIX)
}

/// A push to `refs/mso/rejected/ORDER/N`, the commits of an order's N-th
/// rejection: created once, at exactly the commit the ledger records as
/// rejected, and never moved or deleted. Judged like a voyage branch: by the
/// ledger after the push, and by the one before unless it lacks the
/// rejection (the push records it).
pub(super) fn check_rejected(view: &mut LedgerView<'_>, update: &Update) -> Result<Option<String>> {
    let refuse = |why: String| Ok(Some(why));
    let rest = &update.name[REJECTED_PREFIX.len()..];
    let parsed = rest.split_once('/').and_then(|(order, n)| {
        let order = order.parse::<OrderId>().ok().filter(|o| o.to_string() == order)?;
        let number = n.parse::<usize>().ok().filter(|k| *k >= 1 && k.to_string() == n)?;
        Some((order, number))
    });
    let Some((order, number)) = parsed else {
        return refuse("rejected work is kept at refs/mso/rejected/ORDER/N (N from 1)".into());
    };
    if update.new.is_null() {
        return refuse("rejected work is kept: deleting it is not allowed".into());
    }
    if !update.old.is_null() && update.old != update.new {
        return refuse("a rejection's ref never moves".into());
    }
    let rejection = view.order(&order)?.and_then(|o| o.rejections.get(number - 1).cloned());
    let Some(rejection) = rejection else {
        if view.before_push {
            return Ok(None);
        }
        return refuse(format!("the ledger records no rejection {number} of {order}"));
    };
    if rejection.head.parse::<ObjectId>().ok() != Some(update.new) {
        return refuse(format!(
            "rejection {number} of {order} is of {}, not {}",
            crate::core::event::short(&rejection.head),
            short(update.new)
        ));
    }
    Ok(None)
}

/// The records an evidence note adds: each must be one the ledger vouches
/// for, the record whose SHA-256 a run report of its order names. Anyone
/// may bring such a record back (clones merge notes by union); nobody can
/// write one the ledger does not name.
fn check_evidence(
    store: &Store,
    view: &mut LedgerView<'_>,
    vouched: &mut std::collections::HashMap<OrderId, std::collections::HashSet<String>>,
    old: Option<ObjectId>,
    new: ObjectId,
) -> Result<Option<String>> {
    use crate::core::report::{Ended, runs};
    let blocks = |blob: ObjectId| -> Result<Vec<crate::core::notes::Block>> {
        let blob = store.repo().find_blob(blob).map_err(|e| Error::git("reading pushed evidence", e))?;
        Ok(crate::core::notes::parse(&String::from_utf8_lossy(&blob.data)))
    };
    let known: std::collections::HashSet<_> = match old {
        Some(old) => blocks(old)?.into_iter().collect(),
        None => Default::default(),
    };
    let mut seen = std::collections::HashSet::new();
    for block in blocks(new)?.into_iter().filter(|b| !known.contains(b)) {
        if !seen.insert(block.clone()) {
            return Ok(Some("the same record twice".into()));
        }
        let first = block.first().map(String::as_str).unwrap_or_default();
        let order = first.strip_prefix("Mso-Evidence: ").and_then(|rest| rest.split(' ').next());
        let Some(id) = order.and_then(|o| o.parse::<OrderId>().ok()) else {
            return Ok(Some(format!("{} is not the first line of an evidence record", crate::core::ids::shown(first))));
        };
        if !vouched.contains_key(&id) {
            let digests = match view.order(&id)? {
                Some(order) => runs(&order)
                    .iter()
                    .filter_map(|r| r.ended.as_ref().and_then(Ended::report))
                    .map(|r| r.evidence.clone())
                    .filter(|d| !d.is_empty())
                    .collect(),
                None => Default::default(),
            };
            vouched.insert(id.clone(), digests);
        }
        if !vouched[&id].contains(&crate::core::evidence::digest(&block)) {
            return Ok(Some(format!("a record of {id} that no run report in the ledger names")));
        }
    }
    Ok(None)
}

/// A push to a notes ref of git-mso's: never deleted, a fast-forward, and a
/// flat tree of at most `MAX_NOTES` blobs named by commit id, each and all
/// within the ref's bounds. A note that is new or changed must be on a
/// commit this repository has. A tree over the total bound is refused only
/// when the push makes it larger, so pruning an over-full tree is accepted.
pub(super) fn check_notes(
    store: &Store,
    update: &Update,
    notes: Notes,
    view: &mut LedgerView<'_>,
    deadline: std::time::Instant,
) -> Result<Option<String>> {
    let mut vouched = std::collections::HashMap::new();
    let refuse = |why: String| Ok(Some(why));
    let (max_note, max_total) = (notes.max_note, notes.max_total);
    if update.new.is_null() {
        return refuse(format!("deleting the notes ({}) is not allowed", notes.name));
    }
    let Ok(commit) = store.repo().find_commit(update.new) else {
        return refuse(format!("{} is not a commit", short(update.new)));
    };
    if !update.old.is_null() && !descends(store, update.new, update.old) {
        return refuse(format!("{}..{} is not a fast-forward", short(update.old), short(update.new)));
    }
    // The notes before the push: their blobs and total size.
    let mut before = std::collections::HashMap::new();
    let mut total_before = 0u64;
    if let Ok(old) = store.repo().find_commit(update.old)
        && let Ok(tree) = old.tree()
    {
        for entry in tree.iter().flatten().take(MAX_NOTES) {
            let size = store.repo().find_header(entry.oid()).map(|h| h.size()).unwrap_or(0);
            total_before = total_before.saturating_add(size);
            before.insert(entry.filename().to_vec(), entry.oid().to_owned());
        }
    }
    let tree = commit.tree().map_err(|e| Error::git("reading pushed notes", e))?;
    let mut total = 0u64;
    for (count, entry) in tree.iter().enumerate() {
        if count >= MAX_NOTES {
            return refuse(format!("more than {MAX_NOTES} notes"));
        }
        let entry = entry.map_err(|e| Error::git("reading pushed notes", e))?;
        let name = entry.filename().to_string();
        let shown = crate::core::ids::shown(&name);
        if entry.mode().kind() != gix::object::tree::EntryKind::Blob {
            return refuse(format!("{shown} is not a plain note: the notes tree holds only files"));
        }
        if name.len() != 40 || !is_lower_hex(&name) {
            return refuse(format!("{shown} is not named by a commit id"));
        }
        let size = store.repo().find_header(entry.oid()).map(|h| h.size()).unwrap_or(u64::MAX);
        if size > max_note {
            return refuse(format!("the note on {} has {size} bytes, the limit is {max_note}", &name[..7]));
        }
        let old_blob = before.get(entry.filename().as_ref() as &[u8]).copied();
        if old_blob.as_ref().map(|b| b.as_ref()) != Some(entry.oid()) {
            let on_commit = gix::ObjectId::from_hex(name.as_bytes())
                .ok()
                .is_some_and(|id| store.repo().find_header(id).is_ok_and(|h| h.kind() == gix::object::Kind::Commit));
            if !on_commit {
                return refuse(format!("the note on {} is on no commit of this repository", &name[..7]));
            }
            if notes.name == crate::store::EVIDENCE_REF
                && let Some(why) = check_evidence(store, view, &mut vouched, old_blob, entry.oid().to_owned())?
            {
                return refuse(format!("the note on {}: {why}", &name[..7]));
            }
            if std::time::Instant::now() > deadline {
                return refuse(
                    "validating the notes took longer than the push's time budget (mso.server.timeBudget)".into(),
                );
            }
        }
        total = total.saturating_add(size);
        if total > max_total && total > total_before {
            return refuse(format!("the notes hold more than {max_total} bytes"));
        }
    }
    Ok(None)
}
