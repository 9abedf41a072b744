//! Evidence notes (`refs/notes/mso-evidence`): keeping a run's record on
//! the commit it produced (or started from, when it produced none), and
//! finding it again for `order show --evidence`.

use std::collections::BTreeMap;

use gix::ObjectId;

use super::{EVIDENCE_NOTES, Store};
use crate::core::Order;
use crate::core::evidence::{self, Redactor, bounds};
use crate::core::notes::Block;
use crate::core::report::{Ended, Run};
use crate::error::{Error, Result};

/// This machine's evidence settings: the redaction patterns
/// (`mso.evidence.redact`, repeatable) and a record's size (`mso.evidence.maxBytes`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub redactor: Redactor,
    pub max_bytes: usize,
}

impl Store {
    /// Read and check this machine's evidence settings; a bad pattern or size is an error.
    pub fn evidence_settings(&self) -> Result<Settings> {
        let snapshot = self.repo().config_snapshot();
        let config = snapshot.plumbing();
        let extra: Vec<String> = config
            .strings("mso.evidence.redact")
            .unwrap_or_default()
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        let redactor = Redactor::new(&extra, env_vars()).map_err(Error::Input)?;
        let max_bytes = match config.string("mso.evidence.maxBytes") {
            None => bounds::RECORD_DEFAULT,
            Some(text) => {
                let text = text.to_string();
                parse_size(&text).filter(|n| (bounds::RECORD_MIN..=bounds::RECORD_MAX).contains(n)).ok_or_else(|| {
                    Error::Input(format!(
                        "mso.evidence.maxBytes is {}; give a size from 1k to 256k (`git config mso.evidence.maxBytes 64k`)",
                        crate::core::ids::shown(&text)
                    ))
                })?
            }
        };
        Ok(Settings { redactor, max_bytes })
    }

    /// Keep `record` as evidence on `commit`.
    pub fn keep_evidence(&self, commit: ObjectId, record: Block) -> Result<()> {
        self.add_notes(EVIDENCE_NOTES, &BTreeMap::from([(commit, vec![record])]))
    }

    /// The evidence record of `run` of `order`, if this repository has it:
    /// the one whose SHA-256 the run's report names in the ledger (a run
    /// recorded before reports named one: the first with its header).
    pub fn evidence_of(&self, order: &Order, run: &Run<'_>) -> Result<Option<Block>> {
        let Some(commit) = evidence_commit(run) else { return Ok(None) };
        let header = evidence::header(&order.id.to_string(), run.number, run.role.as_str(), run.attempt);
        let vouched = run.ended.as_ref().and_then(Ended::report).map(|r| r.evidence.as_str()).unwrap_or_default();
        Ok(self
            .notes_on(EVIDENCE_NOTES, commit)?
            .into_iter()
            .find(|b| b.first() == Some(&header) && (vouched.is_empty() || evidence::digest(b) == vouched)))
    }
}

/// The runner's environment, the variables that are UTF-8 (the others cannot be in text we keep).
pub fn env_vars() -> Vec<(String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
}

/// The commit a run's evidence is kept on: the head it recorded, or the
/// commit it started from.
pub fn evidence_commit(run: &Run<'_>) -> Option<ObjectId> {
    let id = match run.ended.as_ref()? {
        Ended::Succeeded { head, .. } => head.to_string(),
        ended => ended.report().map(|r| r.base.clone()).filter(|b| !b.is_empty())?,
    };
    ObjectId::from_hex(id.as_bytes()).ok()
}

/// `32768`, `32k`, `32KiB` as bytes.
fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim().to_ascii_lowercase();
    let (num, scale) = match t.trim_end_matches("ib").trim_end_matches('b') {
        s if s.ends_with('k') => (s[..s.len() - 1].to_string(), 1024),
        s => (s.to_string(), 1),
    };
    num.trim().parse::<usize>().ok()?.checked_mul(scale)
}
