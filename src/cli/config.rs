//! `git mso config [KEY [VALUE]]`: the pipeline configuration in the ledger.

use crate::core::EventBody;

use super::Ctx;
use super::output;

#[derive(Debug, clap::Args)]
#[command(after_help = "Keys: persona_set (default|nautical|heist), max_attempts, lease_ttl_secs, \
approvers (JSON list), roles.<ROLE>.model, roles.<ROLE>.read_only, kinds.<KIND>.sequence (JSON list), \
kinds.<KIND>.gates (JSON list).\n\nExamples:\n  git mso config\n  git mso config max_attempts 5\n  \
git mso config kinds.FTR.gates '[\"PLN\",\"TST\"]'\n  git mso config approvers '[\"alice\",\"bob\"]'\n\n\
What a role executes is not here: that is each runner's own git config (mso.crew.<ROLE>.command).")]
pub struct Args {
    /// The key to show or set; without it, print the whole configuration.
    key: Option<String>,
    /// The new value: JSON, or a plain word for strings.
    value: Option<String>,
}

impl Args {
    pub fn writes(&self) -> bool {
        self.value.is_some()
    }
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let tip = store.require_tip()?;
    let config = store.config(&tip)?;
    let Some(key) = args.key else {
        return output::json(ctx.out, &config);
    };
    let Some(raw) = args.value else {
        let all = serde_json::to_value(&config)?;
        let pointer = format!("/{}", key.replace('.', "/"));
        let found = all
            .pointer(&pointer)
            .or_else(|| lookup_by_code(&all, &key))
            .ok_or_else(|| crate::error::Error::Input(format!("no config key '{key}'")))?;
        return output::json(ctx.out, found);
    };
    let value: serde_json::Value = serde_json::from_str(&raw).unwrap_or(serde_json::Value::String(raw));
    store.transact(|tx| tx.push(EventBody::ConfigSet { key: key.clone(), value: value.clone() }))?;
    writeln!(ctx.out, "{key} = {value}")?;
    Ok(())
}

/// `roles.PLN.model` / `kinds.FTR.gates`: the lists are keyed by their `code`.
fn lookup_by_code<'a>(all: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    let mut parts = key.splitn(3, '.');
    let (list, code, field) = (parts.next()?, parts.next()?, parts.next());
    let item = all.get(list)?.as_array()?.iter().find(|i| i.get("code").and_then(|c| c.as_str()) == Some(code))?;
    match field {
        Some(f) => item.get(f),
        None => Some(item),
    }
}
