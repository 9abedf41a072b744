//! Publishing a voyage as a pull request: push its branch at the head the
//! ledger recorded, write the request (title and body from its orders, the
//! `git request-pull` text, a `Mso-Voyage` trailer), hand it to a forge
//! adapter when one is configured (`mso.publish.command`), and record
//! VOYAGE_PUBLISHED. The REL role does this when no REL crew is configured.

use std::fmt::Write as _;
use std::path::Path;

use crate::core::apply::limits;
use crate::core::event::short;
use crate::core::message::VOYAGE_TRAILER;
use crate::core::state::VoyageState;
use crate::core::time::format_utc;
use crate::core::{EventBody, Order, OrderId, Status, Voyage, VoyageId, text};
use crate::error::{Error, Result};
use crate::gitcli::git;
use crate::store::Store;

/// What a publication produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Published {
    pub voyage: VoyageId,
    pub head: String,
    pub remote: String,
    /// The pull request's URL (from the forge adapter), or the remote's URL.
    pub url: String,
    pub title: String,
    /// The pull request's body, ending with the `Mso-Voyage` trailer.
    pub body: String,
    /// What `git request-pull` says of the branch on the remote.
    pub request_pull: String,
}

/// Options of one publication.
pub struct Options<'a> {
    pub remote: Option<&'a str>,
    /// The order whose REL run publishes (it holds the voyage meanwhile).
    pub releasing: Option<&'a OrderId>,
}

/// The remote to publish to: the one named, else `mso.publish.remote`, else `origin`.
pub fn remote(store: &Store, named: Option<&str>) -> Result<String> {
    if let Some(named) = named {
        return Ok(named.to_string());
    }
    let configured = store.repo().config_snapshot().string("mso.publish.remote").map(|r| r.to_string());
    if let Some(remote) = configured.filter(|r| !r.trim().is_empty()) {
        return Ok(remote);
    }
    let has_origin = store.repo().remote_names().iter().any(|r| r.as_ref() as &[u8] == b"origin");
    if has_origin {
        return Ok("origin".into());
    }
    Err(Error::Input(
        "no remote to publish to: name one with --remote R, set `git config mso.publish.remote R`, or add origin"
            .into(),
    ))
}

/// Publish `id` from the repository at `dir`. Every check (the voyage is
/// open, nothing runs or awaits review there, it has work, who may publish)
/// is made before anything is pushed, and again on the ledger as it stands
/// after the sync, before the forge adapter runs: a pull request is opened
/// only if its publication will be recorded.
pub fn publish(dir: &Path, id: VoyageId, opts: &Options<'_>) -> Result<Published> {
    let store = Store::discover(dir)?;
    let remote = remote(&store, opts.remote)?;
    let branch = id.branch();
    let tip = store.require_tip()?;
    let voyage = publishable(&store, &tip, id, opts)?;
    bring_branch_to_head(&store, &tip, &voyage)?;
    // The ledger and the branch go to the remote together (sync pushes them
    // atomically); then the branch there must be exactly the recorded head.
    crate::sync::sync(dir, &remote)?;
    let store = Store::discover(dir)?;
    let tip = store.require_tip()?;
    let after = publishable(&store, &tip, id, opts)?;
    if after.head != voyage.head {
        return Err(Error::Input(format!(
            "{id}'s recorded head moved to {} on {remote} meanwhile: publish again",
            short(&after.head)
        )));
    }
    let there = git(dir, &["ls-remote", "--heads", &remote, &format!("refs/heads/{branch}")])?;
    let there = there.split_whitespace().next().unwrap_or("nothing").to_string();
    if there != voyage.head {
        return Err(Error::Input(format!(
            "{branch} on {remote} is at {}, not at the recorded head {}: a branch the ledger does not record is \
             not published; look with `git log {} {branch}` after `git fetch {remote}`",
            short(&there),
            short(&voyage.head),
            short(&voyage.head)
        )));
    }
    let real_url = git(dir, &["remote", "get-url", &remote])?.trim().to_string();
    // Credentials in a remote URL never reach the ledger or the pull request.
    let shown_url = without_credentials(&real_url);
    let request_pull = request_pull(dir, &voyage, &real_url, &branch)?.replace(&real_url, &shown_url);
    let orders = voyage_orders(&store, &tip, id)?;
    let title = title(&voyage, &orders);
    let body = body(&voyage, &orders, &request_pull);
    let url = match forge_adapter(&store) {
        Some(command) => without_credentials(&run_adapter(&store, &command, &voyage, &remote, &title, &body)?),
        None => shown_url,
    };
    let url = text::clip(text::line(&url).into_owned(), limits::URL);
    let recorded_text = text::clip(body.clone(), limits::SUMMARY);
    store.transact(|tx| {
        tx.push(EventBody::VoyagePublished {
            voyage: id,
            head: voyage.head.clone(),
            title: title.clone(),
            url: url.clone(),
            text: recorded_text.clone(),
        })
    })?;
    if let Err(e) = crate::sync::sync(dir, &remote) {
        tracing::warn!("the publication is recorded here; pushing it to {remote} failed ({e}): `git mso sync` retries");
    }
    Ok(Published { voyage: id, head: voyage.head.clone(), remote, url, title, body, request_pull })
}

/// The voyage, if this actor may publish it now: open or published, with
/// work of its own, nothing running or awaiting review there but the
/// release that publishes, and (with an approver list) an admin, an
/// approver or that release's runner publishing.
fn publishable(store: &Store, tip: &crate::store::Tip, id: VoyageId, opts: &Options<'_>) -> Result<Voyage> {
    let voyage = store.voyage(tip, id)?.ok_or(crate::core::TransitionError::UnknownVoyage(id))?;
    if let Some(why) = voyage.finished() {
        return Err(Error::Input(format!("{why}: there is nothing to publish")));
    }
    if let Some(active) = &voyage.active
        && opts.releasing != Some(active)
    {
        return Err(Error::Input(format!(
            "{active} runs on {id} or awaits review there: publish once it is decided, so the pull request holds \
             only accepted work"
        )));
    }
    if voyage.head == voyage.base {
        return Err(Error::Input(format!("{id} has no commits of its own yet: nothing to publish")));
    }
    let config = store.config(tip)?;
    let actor = store.identity().actor.clone();
    if !config.is_manager(&actor) && opts.releasing.is_none() {
        return Err(Error::Input(format!(
            "{actor} may not publish {id}: with an approver list, admins and approvers publish (approvers: {})",
            config.approvers.join(", ")
        )));
    }
    Ok(voyage)
}

/// `https://user:token@host/path` → `https://host/path`; other URLs as they are.
pub fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The local branch at the recorded head: rejected work set aside, an older
/// recorded state brought forward; commits nobody recorded are refused.
fn bring_branch_to_head(store: &Store, tip: &crate::store::Tip, voyage: &Voyage) -> Result<()> {
    if let crate::store::SetAside::Blocked(why) = store.set_aside_rejected(tip, voyage)? {
        return Err(Error::Input(why));
    }
    store.ensure_voyage_branch(voyage)?;
    let head = store.recorded_head(voyage)?;
    let branch = store.branch_tip(voyage)?.unwrap_or(head);
    if branch == head {
        return Ok(());
    }
    if crate::store::objects::is_ancestor(store.repo(), branch, head) == Some(true) {
        return store.advance_branch(voyage, branch, head);
    }
    Err(Error::Input(format!(
        "{} is at {}, which the ledger does not record (its head is {}): a dispatch holds such commits for review; \
         publish what was reviewed",
        voyage.id.branch(),
        crate::store::short(branch),
        short(&voyage.head)
    )))
}

/// `git request-pull BASE URL BRANCH`: the changes since the voyage's base, as on the remote.
fn request_pull(dir: &Path, voyage: &Voyage, url: &str, branch: &str) -> Result<String> {
    let out = crate::gitcli::command(dir, &["request-pull", &voyage.base, url, branch])
        .output()
        .map_err(|e| Error::io("running git request-pull", e))?;
    if !out.status.success() {
        return Err(Error::git("git request-pull", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(text::display(&String::from_utf8_lossy(&out.stdout), true).into_owned())
}

/// The voyage's orders that put work on its branch, oldest first
/// (cancelled ones, and ones that have not run yet, are not in the request).
fn voyage_orders(store: &Store, tip: &crate::store::Tip, id: VoyageId) -> Result<Vec<Order>> {
    let mut summaries = store.summaries(tip)?;
    summaries.retain(|s| s.voyage == id && s.status != Status::Cancelled);
    summaries.sort_by_key(|s| s.seq);
    let mut orders = Vec::new();
    for s in summaries {
        orders.extend(store.order(tip, &s.id)?.filter(|o| !o.handoffs.is_empty()));
    }
    Ok(orders)
}

/// One order: its title; several: the voyage and the first title.
pub fn title(voyage: &Voyage, orders: &[Order]) -> String {
    let title = match orders {
        [] => format!("{}", voyage.id),
        [one] => format!("{} ({})", one.title, one.id),
        [first, rest @ ..] => format!("{}: {} and {} more", voyage.id, first.title, rest.len()),
    };
    text::clip(text::line(&title).into_owned(), limits::TITLE)
}

/// The body: per order its criteria, hand-offs and approvals; then the
/// request-pull text; then the trailer that lets a squash merge be traced back.
pub fn body(voyage: &Voyage, orders: &[Order], request_pull: &str) -> String {
    let mut out = String::new();
    let one = |t: &str| text::line(t).into_owned();
    for order in orders {
        let _ = writeln!(out, "## {}: {}", order.id, one(&order.title));
        if !order.acceptance.is_empty() {
            let _ = writeln!(out, "\nAcceptance criteria:");
            for ac in &order.acceptance {
                let _ = writeln!(out, "- {}", one(ac));
            }
        }
        if !order.handoffs.is_empty() {
            let _ = writeln!(out, "\nHand-offs:");
            for h in &order.handoffs {
                let first = h.summary.lines().find(|l| !l.trim().is_empty()).unwrap_or("(no summary)");
                let _ = writeln!(out, "- {} at {}: {}", h.role, short(&h.head), one(first));
            }
        }
        let approvals: Vec<String> = crate::core::report::standing_approvals(order)
            .into_iter()
            .filter_map(|e| match &e.body {
                EventBody::Approved { role, by, .. } => {
                    Some(format!("- {role} approved by {} ({})", one(by), format_utc(e.at)))
                }
                _ => None,
            })
            .collect();
        if !approvals.is_empty() {
            let _ = writeln!(out, "\nApprovals:\n{}", approvals.join("\n"));
        }
        let _ = writeln!(out);
    }
    // Indented, not fenced: no commit subject in it can end the block early.
    let budget = limits::SUMMARY.saturating_sub(out.len() + 1024);
    let quoted: String = request_pull.trim_end().lines().map(|l| format!("    {l}\n")).collect();
    let _ = writeln!(out, "{}", text::clip(quoted, budget));
    let _ = writeln!(out, "{VOYAGE_TRAILER}: {}", voyage.id);
    out
}

fn forge_adapter(store: &Store) -> Option<String> {
    let command = store.repo().config_snapshot().string("mso.publish.command")?.to_string();
    (!command.trim().is_empty()).then_some(command)
}

/// Run the forge adapter (`mso.publish.command`, from this machine's git
/// config): title, body file, branches and remote in its environment, never
/// in its command line. Its URL is the last line starting with `http` in
/// `MSO_RESULT_FILE`, else in the last lines it printed.
fn run_adapter(store: &Store, command: &str, voyage: &Voyage, remote: &str, title: &str, body: &str) -> Result<String> {
    let Some(target) = &voyage.target else {
        return Err(Error::Input(format!(
            "{} has no target branch, which a pull request needs: it was made from a detached HEAD",
            voyage.id
        )));
    };
    let dir = crate::runtime::worktree::mso_dir(store.common_dir()).join("publish").join(voyage.id.to_string());
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let (body_file, result_file, log) = (dir.join("body.md"), dir.join("result"), dir.join("publish.log"));
    std::fs::write(&body_file, body).map_err(|e| Error::io("writing the pull request body", e))?;
    let _ = std::fs::remove_file(&result_file);
    let env = [
        ("MSO_VOYAGE", voyage.id.to_string()),
        ("MSO_PR_TITLE", title.to_string()),
        ("MSO_PR_BODY_FILE", body_file.display().to_string()),
        ("MSO_PR_BASE", target.clone()),
        ("MSO_PR_HEAD", voyage.id.branch()),
        ("MSO_REMOTE", remote.to_string()),
        ("MSO_RESULT_FILE", result_file.display().to_string()),
    ];
    let stop = std::sync::atomic::AtomicBool::new(false);
    let timeout = Some(std::time::Duration::from_secs(300));
    let exit = crate::runtime::crew::run(
        command,
        &store.top_dir(),
        &env,
        &log,
        crate::runtime::crew::Limits { timeout, idle: None },
        &stop,
        None,
    )?;
    if !exit.success() {
        return Err(Error::Input(format!(
            "the forge adapter (mso.publish.command) {}; nothing was recorded:\n{}",
            exit.describe(),
            crate::runtime::crew::log_tail(&log, 10, 2048)
        )));
    }
    let from_file = crate::runtime::crew::read_crew_file(&result_file, 4096)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let printed = crate::runtime::crew::log_tail(&log, 5, 4096);
    let url = [from_file, printed]
        .iter()
        .find_map(|text| text.lines().rev().map(str::trim).find(|l| l.starts_with("http")).map(str::to_string))
        .unwrap_or_default();
    if url.is_empty() {
        return Err(Error::Input(
            "the forge adapter (mso.publish.command) succeeded but reported no URL (write it to MSO_RESULT_FILE)"
                .into(),
        ));
    }
    Ok(url)
}

/// A voyage's state word with what it refers to, for listings.
pub fn state_line(voyage: &Voyage) -> String {
    match voyage.state() {
        VoyageState::Open => "open".into(),
        VoyageState::Published => {
            format!(
                "published {}",
                voyage.published.as_ref().map(|p| text::line(&p.url).into_owned()).unwrap_or_default()
            )
        }
        VoyageState::Landed => voyage
            .landed
            .as_ref()
            .map(|l| format!("landed on {} at {} ({})", l.target, short(&l.commit), l.how))
            .unwrap_or_default(),
        VoyageState::Closed => "closed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn credentials_never_leave_a_remote_url() {
        assert_eq!(without_credentials("https://oauth2:glpat-x@gitlab.com/a/b.git"), "https://gitlab.com/a/b.git");
        assert_eq!(without_credentials("https://tok@github.com/a/b"), "https://github.com/a/b");
        assert_eq!(without_credentials("https://a:b@c@host:8443/x@y"), "https://host:8443/x@y");
        assert_eq!(without_credentials("git@github.com:a/b.git"), "git@github.com:a/b.git");
        assert_eq!(without_credentials("ssh://git@host/x"), "ssh://host/x");
        assert_eq!(without_credentials("../server.git"), "../server.git");
    }
}
