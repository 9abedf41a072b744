//! `git mso config [KEY [VALUE]]`: the pipeline configuration in the ledger.

use crate::core::EventBody;

use super::Ctx;
use super::output;
use crate::error::Error;

#[derive(Debug, clap::Args)]
#[command(after_help = "Keys (see the README for each):\n  \
persona_set             default | nautical | heist\n  \
max_attempts            1 to 20\n  \
lease_ttl_secs          seconds, or a duration: 600, 10m\n  \
retry_backoff_secs      seconds, or a duration: 30, 1m\n  \
budget_usd              dollars per order (--unset for none)\n  \
approvers, admins       JSON lists of actors (--unset approvers: anyone named)\n  \
require_signatures      true | false\n  \
signers.<ACTOR>         JSON list of SSH public keys\n  \
roles.<ROLE>.model      deep | standard | light\n  \
roles.<ROLE>.read_only, roles.<ROLE>.verdicts   true | false\n  \
roles.<ROLE>.instructions, .fail_on, .back_to\n  \
kinds.<KIND>.sequence, kinds.<KIND>.gates       JSON lists of roles\n  \
kinds.<KIND>.budget_usd\n\n\
Examples:\n  git mso config\n  git mso config max_attempts 5\n  git mso config lease_ttl_secs 15m\n  \
git mso config kinds.FTR.gates '[\"PLN\",\"TST\"]'\n  git mso config approvers '[\"alice\",\"bob\"]'\n  \
git mso config --unset budget_usd\n  git mso config --create roles.QA.model standard   # a new role\n\n\
What a role executes is not here: that is each runner's own git config (mso.crew.<ROLE>.command).")]
pub struct Args {
    /// The key to show or set; without it, print the whole configuration.
    key: Option<String>,
    /// The new value: JSON, or a plain word for strings.
    value: Option<String>,
    /// Remove the setting (budgets, instructions, fail_on, back_to, approvers, signers).
    #[arg(long, conflicts_with = "value", requires = "key")]
    unset: bool,
    /// Allow a key that adds a role or a kind the pipeline does not have yet.
    #[arg(long)]
    create: bool,
    /// Print what was set as JSON.
    #[arg(long)]
    json: bool,
}

impl Args {
    pub fn writes(&self) -> bool {
        self.value.is_some() || self.unset
    }
}

pub fn run(args: Args, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let store = ctx.store()?;
    let tip = store.require_tip()?;
    let config = store.config(&tip)?;
    let Some(key) = args.key else {
        return output::json(ctx.out, &config);
    };
    let value = match (args.value, args.unset) {
        (None, false) => {
            let all = serde_json::to_value(&config)?;
            let pointer = format!("/{}", key.replace('.', "/"));
            // Every key `config KEY VALUE` sets reads back by the same name
            // (`budget_usd` is kept as micro-dollars, for one).
            let found = all
                .pointer(&pointer)
                .or_else(|| lookup_by_code(&all, &key))
                .cloned()
                .or_else(|| config.setting(&key))
                .ok_or_else(|| Error::Input(format!("no config key '{key}'")))?;
            return output::json(ctx.out, &found);
        }
        (_, true) => unset_value(&key).ok_or_else(|| {
            let instead = example(&key).map(|e| format!(", for example: git mso config {e}")).unwrap_or_default();
            Error::Input(format!("{} cannot be unset; set it instead{instead}", crate::core::ids::shown(&key)))
        })?,
        (Some(raw), false) => parse_value(&key, &raw),
    };
    check_names(&config, &key, args.create)?;
    let set = store.transact(|tx| tx.push(EventBody::ConfigSet { key: key.clone(), value: value.clone() }));
    if let Err(e) = set {
        // A value that does not fit: show one that does.
        return Err(match (e, example(&key)) {
            (crate::error::Error::Transition(t), Some(example)) => {
                Error::Input(format!("{t}; for example: git mso config {example}")).into()
            }
            (e, _) => e.into(),
        });
    }
    if args.json {
        return output::json(ctx.out, &serde_json::json!({ "key": key, "value": value }));
    }
    writeln!(ctx.out, "{key} = {value}")?;
    Ok(())
}

/// The value as JSON, or as a plain word; a duration such as `10m` for a
/// key in seconds.
fn parse_value(key: &str, raw: &str) -> serde_json::Value {
    if key.ends_with("_secs")
        && raw.parse::<u64>().is_err()
        && let Some(duration) = crate::core::time::parse_duration(raw)
    {
        return serde_json::Value::from(duration.as_secs());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_string()))
}

/// A key naming a role or kind the pipeline does not have is a typo unless
/// `--create` says otherwise: `roles.QA.model` must not add a role QA by accident.
fn check_names(config: &crate::core::Config, key: &str, create: bool) -> anyhow::Result<()> {
    let parts: Vec<&str> = key.split('.').collect();
    let unknown = match parts.as_slice() {
        ["roles", code, _] => {
            let known = code.parse().ok().is_some_and(|r| config.role(&r).is_some());
            (!known).then(|| ("role", *code, config.role_list()))
        }
        ["kinds", code, _] => {
            let known = code.parse().ok().is_some_and(|k| config.kind(&k).is_some());
            (!known).then(|| ("kind", *code, config.kind_list()))
        }
        _ => None,
    };
    match unknown {
        Some((what, code, known)) if !create => Err(Error::Input(format!(
            "unknown {what} {} in {} (configured: {known}); to add a {what}, say so: git mso config --create {key} …",
            crate::core::ids::shown(code),
            crate::core::ids::shown(key)
        ))
        .into()),
        _ => Ok(()),
    }
}

/// What removes a setting, for the keys where removing makes sense.
fn unset_value(key: &str) -> Option<serde_json::Value> {
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        ["budget_usd"] | ["kinds", _, "budget_usd"] | ["roles", _, "instructions" | "fail_on" | "back_to"] => {
            Some(serde_json::Value::Null)
        }
        ["approvers"] | ["signers", _, ..] => Some(serde_json::json!([])),
        _ => None,
    }
}

/// A value that fits `key`, as it is typed after `git mso config`.
fn example(key: &str) -> Option<&'static str> {
    let parts: Vec<&str> = key.split('.').collect();
    Some(match parts.as_slice() {
        ["persona_set"] => "persona_set nautical",
        ["max_attempts"] => "max_attempts 5",
        ["lease_ttl_secs"] => "lease_ttl_secs 10m",
        ["retry_backoff_secs"] => "retry_backoff_secs 30",
        ["budget_usd"] => "budget_usd 25",
        ["approvers"] => "approvers '[\"alice\"]'",
        ["admins"] => "admins '[\"alice\"]'",
        ["require_signatures"] => "require_signatures true",
        ["signers", ..] => "signers.alice '[\"ssh-ed25519 AAAA… alice\"]'",
        ["roles", _, "model"] => "roles.BLD.model deep",
        ["roles", _, "read_only"] => "roles.SEC.read_only true",
        ["roles", _, "verdicts"] => "roles.TST.verdicts true",
        ["roles", _, "instructions"] => "roles.BLD.instructions 'Run the tests before you finish.'",
        ["roles", _, "fail_on"] => "roles.SEC.fail_on high",
        ["roles", _, "back_to"] => "roles.TST.back_to BLD",
        ["kinds", _, "sequence"] => "kinds.FTR.sequence '[\"PLN\",\"BLD\",\"TST\"]'",
        ["kinds", _, "gates"] => "kinds.FTR.gates '[\"PLN\"]'",
        ["kinds", _, "budget_usd"] => "kinds.FTR.budget_usd 10",
        _ => return None,
    })
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
