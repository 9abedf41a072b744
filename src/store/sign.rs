//! Signed ledger commits, for servers with no hosting layer that names the
//! pusher: each commit carries an SSH signature (git's `gpg.format=ssh`
//! conventions) by a key the ledger's config lists for every actor in it.
//! Signing runs `ssh-keygen -Y sign` with the user's key (agent or file);
//! verifying is in-process, so servers need no ssh-keygen.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::Store;
use super::history::Entry;
use crate::core::{Config, signing};
use crate::error::{Error, Result};

/// How this machine signs: `mso.sign=true`, the key from `user.signingKey`,
/// the program from `gpg.ssh.program` (default `ssh-keygen`).
#[derive(Debug, Clone)]
pub struct Signer {
    program: String,
    key: SigningKey,
}

#[derive(Debug, Clone)]
enum SigningKey {
    /// A key file: a private key, or a public key whose private half is in the agent.
    File(PathBuf),
    /// `key::ssh-ed25519 AAAA…`: a public key held by the agent.
    Literal(String),
}

impl Signer {
    /// The signer git config describes, if `mso.sign` is on.
    pub fn from_config(config: &gix::config::Snapshot<'_>) -> Result<Option<Signer>> {
        if !config.boolean("mso.sign").unwrap_or(false) {
            return Ok(None);
        }
        let key = config.string("user.signingKey").map(|v| v.to_string()).unwrap_or_default();
        let key = key.trim();
        if key.is_empty() {
            return Err(Error::Input(
                "mso.sign is on but user.signingKey is not set: `git config user.signingKey ~/.ssh/id_ed25519.pub`"
                    .into(),
            ));
        }
        let key = match key.strip_prefix("key::") {
            Some(literal) => SigningKey::Literal(literal.to_string()),
            None => SigningKey::File(expand_home(key)),
        };
        let program = config.string("gpg.ssh.program").map_or_else(|| "ssh-keygen".to_string(), |p| p.to_string());
        Ok(Some(Signer { program, key }))
    }

    /// An armored SSHSIG over `payload` in the `git` namespace.
    pub fn sign(&self, payload: &[u8]) -> Result<String> {
        let mut cmd = Command::new(&self.program);
        cmd.args(["-Y", "sign", "-n", signing::NAMESPACE, "-f"]);
        let literal_file;
        match &self.key {
            SigningKey::File(path) => {
                cmd.arg(path);
            }
            SigningKey::Literal(text) => {
                literal_file = tempfile::NamedTempFile::new().map_err(|e| Error::io("writing the signing key", e))?;
                std::fs::write(literal_file.path(), format!("{text}\n"))
                    .map_err(|e| Error::io("writing the signing key", e))?;
                cmd.arg(literal_file.path()).arg("-U");
            }
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::Signing(format!("running {} to sign the ledger commit: {e}", self.program)))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A signer that stops reading (a missing key) says why by its
            // exit status below; the write error itself says nothing more.
            let _ = stdin.write_all(payload);
        }
        let out = child.wait_with_output().map_err(|e| Error::io("waiting for the signer", e))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || !text.contains("BEGIN SSH SIGNATURE") {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(Error::Signing(format!(
                "signing the ledger commit failed ({}): {}",
                self.program,
                why.lines().last().unwrap_or("no signature produced").trim()
            )));
        }
        Ok(text.trim_end().to_string())
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

impl Store {
    /// A commit under a config that requires signatures must be signed by a
    /// key listed for every actor of its events.
    pub(crate) fn check_signature(&self, config: &Config, entry: &Entry) -> std::result::Result<(), String> {
        if !config.require_signatures {
            return Ok(());
        }
        let Some((signature, payload)) = &entry.signature else {
            return Err("it is not signed, and the ledger requires signed commits".into());
        };
        let actors: BTreeSet<&str> = entry.events.iter().map(|e| e.actor.as_str()).collect();
        for actor in actors {
            let keys = config
                .signers
                .get(actor)
                .ok_or_else(|| format!("{actor} has no key in the ledger's signers, and signatures are required"))?;
            signing::verify(payload, signature, keys).map_err(|why| {
                let by = signing::signer_fingerprint(signature).map(|f| format!(" ({f})")).unwrap_or_default();
                format!("bad signature for {actor}{by}: {why}")
            })?;
        }
        Ok(())
    }
}

impl Store {
    /// Write a ledger commit, signed when this machine signs (`mso.sign`) and
    /// required to be when `rules` (the config it is appended under) says so.
    /// A key that could not sign for one of `actors` is refused here, before
    /// anything points at the commit.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_ledger_commit(
        &self,
        repo: &gix::Repository,
        tree: gix::ObjectId,
        parent: Option<gix::ObjectId>,
        message: &str,
        time: crate::core::Timestamp,
        rules: Option<&Config>,
        actors: &BTreeSet<&str>,
    ) -> Result<gix::ObjectId> {
        use gix::objs::WriteTo;
        let who = self.signature(time);
        let mut commit = gix::objs::Commit {
            tree,
            parents: parent.into_iter().collect(),
            author: who.clone(),
            committer: who,
            encoding: None,
            message: message.into(),
            extra_headers: Vec::new(),
        };
        let required = rules.is_some_and(|c| c.require_signatures);
        match (self.signer.as_ref().map_err(|e| Error::Signing(e.clone()))?, required) {
            (None, true) => {
                return Err(Error::Signing(
                    "this ledger requires signed commits: `git config mso.sign true` and \
                     `git config user.signingKey <your ed25519 key>`"
                        .into(),
                ));
            }
            (None, false) => {}
            (Some(signer), _) => {
                let mut payload = Vec::new();
                commit.write_to(&mut payload).map_err(|e| Error::io("serializing the ledger commit", e))?;
                let signature = signer.sign(&payload)?;
                if let Some(config) = rules.filter(|c| c.require_signatures) {
                    for actor in actors {
                        let keys = config.signers.get(*actor).map(Vec::as_slice).unwrap_or_default();
                        signing::verify(&payload, &signature, keys).map_err(|why| {
                            Error::Signing(format!(
                                "your signing key cannot sign for {actor} ({why}): an admin lists it with \
                                 `git mso config signers.{actor} '[\"ssh-ed25519 …\"]'`"
                            ))
                        })?;
                    }
                }
                commit.extra_headers.push(("gpgsig".into(), signature.into()));
            }
        }
        Ok(repo
            .write_object(&commit)
            .map_err(|e| Error::from_git_write("writing the ledger commit", gix::Error::from_error(e)))?
            .detach())
    }
}
