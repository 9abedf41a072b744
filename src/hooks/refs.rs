//! What the server accepts on the refs git-mso owns besides the ledger:
//! voyage branches move only as the ledger allows, and notes are plain,
//! bounded text. Each check returns the reason to refuse, if any.

use gix::ObjectId;

use super::receive::{Context, Update};
use crate::core::{OrderSummary, VoyageId};
use crate::error::{Error, Result};
use crate::store::objects::is_ancestor;
use crate::store::{MAX_NOTE_BYTES, Store, Tip, short};

fn descends(store: &Store, commit: ObjectId, ancestor: ObjectId) -> bool {
    is_ancestor(store.repo(), ancestor, commit) == Some(true)
}

fn is_commit(store: &Store, id: ObjectId) -> bool {
    store.repo().find_header(id).is_ok_and(|h| h.kind() == gix::object::Kind::Commit)
}

/// A push to `refs/heads/voyage/*`, against the ledger as it stands after the push.
///
/// - the name is `voyage/VOY-NNNN` of a voyage the ledger created;
/// - while one of its orders runs, only that run's lease holder moves it
///   (when the hosting layer names the pusher);
/// - while it has open orders, it is not deleted, and moves only by
///   fast-forward, or back to the head the ledger recorded;
/// - it is created at, or on top of, the recorded head.
pub(super) fn check_voyage(
    store: &Store,
    ledger: Option<ObjectId>,
    update: &Update,
    ctx: &Context,
) -> Result<Option<String>> {
    let refuse = |why: String| Ok(Some(why));
    let name = update.name.trim_start_matches("refs/heads/voyage/");
    let Ok(id) = name.parse::<VoyageId>() else {
        return refuse("voyage/ branches belong to git-mso and are named voyage/VOY-NNNN".into());
    };
    let Some(ledger) = ledger else {
        return refuse(format!("there is no ledger, so no {id}: voyage branches follow the ledger"));
    };
    let tip = tip_of(store, ledger)?;
    let Some(voyage) = store.voyage(&tip, id)? else {
        return refuse(format!("the ledger has no {id}: a voyage branch is created after its VOYAGE_CREATED"));
    };
    if let (Some(running), Some(pusher)) = (&voyage.active, &ctx.pusher) {
        let holder = store.order(&tip, running)?.and_then(|o| o.lease).map(|l| l.actor);
        if holder.as_deref() != Some(pusher.as_str()) {
            return refuse(format!(
                "{running} is running on {id}; only its lease holder ({}) may move the branch",
                holder.as_deref().unwrap_or("nobody")
            ));
        }
    }
    let open: Vec<OrderSummary> =
        store.summaries(&tip)?.into_iter().filter(|s| s.voyage == id && !s.status.is_terminal()).collect();
    let listed = || {
        let ids: Vec<String> = open.iter().take(5).map(|s| s.id.to_string()).collect();
        ids.join(", ") + if open.len() > 5 { ", …" } else { "" }
    };
    if update.new.is_null() {
        if !open.is_empty() {
            return refuse(format!("deleting it is not allowed while {id} has open orders ({})", listed()));
        }
        return Ok(None);
    }
    if !is_commit(store, update.new) {
        return refuse(format!("{} is not a commit", short(update.new)));
    }
    let recorded: ObjectId = voyage
        .head
        .parse()
        .map_err(|_| Error::Corrupt { commit: short(ledger), reason: format!("{id} has a malformed head") })?;
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
    if !open.is_empty() && !descends(store, update.new, update.old) {
        return refuse(format!(
            "{}..{} is not a fast-forward, and {id} has open orders ({}); only a fast-forward, or a reset to the \
             recorded head {}, is accepted",
            short(update.old),
            short(update.new),
            listed(),
            short(recorded)
        ));
    }
    Ok(None)
}

fn tip_of(store: &Store, commit: ObjectId) -> Result<Tip> {
    let found = store.repo().find_commit(commit).map_err(|e| Error::git("reading the ledger", e))?;
    Ok(Tip { commit, tree: found.tree_id().map_err(|e| Error::git("reading the ledger", e))?.detach() })
}

/// A push to `refs/notes/mso`: never deleted, a fast-forward, and a flat
/// tree of bounded blobs named by commit id.
pub(super) fn check_notes(store: &Store, update: &Update) -> Result<Option<String>> {
    let refuse = |why: String| Ok(Some(why));
    if update.new.is_null() {
        return refuse("deleting the notes is not allowed (`git mso notes rebuild` regenerates them)".into());
    }
    let Ok(commit) = store.repo().find_commit(update.new) else {
        return refuse(format!("{} is not a commit", short(update.new)));
    };
    if !update.old.is_null() && !descends(store, update.new, update.old) {
        return refuse(format!("{}..{} is not a fast-forward", short(update.old), short(update.new)));
    }
    let tree = commit.tree().map_err(|e| Error::git("reading pushed notes", e))?;
    for entry in tree.iter() {
        let entry = entry.map_err(|e| Error::git("reading pushed notes", e))?;
        let name = entry.filename().to_string();
        let shown = crate::core::ids::shown(&name);
        if entry.mode().kind() != gix::object::tree::EntryKind::Blob {
            return refuse(format!("{shown} is not a plain note: the notes tree holds only files"));
        }
        if name.len() != 40 || !name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return refuse(format!("{shown} is not named by a commit id"));
        }
        let size = store.repo().find_header(entry.oid()).map(|h| h.size()).unwrap_or(u64::MAX);
        if size > MAX_NOTE_BYTES {
            return refuse(format!("the note on {} has {size} bytes, the limit is {MAX_NOTE_BYTES}", &name[..7]));
        }
    }
    Ok(None)
}
