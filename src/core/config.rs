//! The pipeline configuration that travels with the repository in the
//! ledger (`config.json`). What a role *executes* is never here: crews come
//! from each runner's own git config.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ids::{Kind, Role};
use super::report::Severity;
use super::text::check_actor;

/// The ledger schema this build writes and reads. 2: admins, signers,
/// lease holders on results, content-derived event ids, voyage heads.
pub const SCHEMA: u32 = 3;

/// The documented ranges of configuration values.
pub mod bounds {
    pub const ROLES: usize = 16;
    pub const KINDS: usize = 32;
    pub const MAX_ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=20;
    pub const LEASE_TTL_SECS: std::ops::RangeInclusive<u64> = 10..=86_400;
    pub const NAMES: usize = 64;
    pub const KEYS_PER_SIGNER: usize = 8;
    pub const KEY_BYTES: usize = 1024;
    pub const MODEL: usize = 32;
    /// A role's instructions, in bytes.
    pub const INSTRUCTIONS: usize = 16 * 1024;
    /// The longest first retry backoff: an hour.
    pub const RETRY_BACKOFF_SECS: u64 = 3_600;
    /// The largest budget: a million dollars, in micro-dollars.
    pub const BUDGET_MICROS: u64 = 1_000_000 * 1_000_000;
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    pub code: Role,
    /// Model tier handed to the crew as `MSO_MODEL`.
    pub model: String,
    /// A read-only role reports findings and must not change the tree.
    #[serde(default)]
    pub read_only: bool,
    /// What the role is told to do, instead of the built-in instructions
    /// (and of the repository's `.mso/roles/<ROLE>.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// The role gives a verdict on every acceptance criterion, and signs off
    /// only when all pass (TST).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verdicts: bool,
    /// Findings of this severity or above fail the role (SEC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on: Option<Severity>,
    /// Where failed verdicts or findings send the order back to, when that
    /// role comes earlier in its sequence (else the role just before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_to: Option<Role>,
}

impl RoleDef {
    fn new(code: Role, model: &str, read_only: bool) -> Self {
        RoleDef {
            code,
            model: model.into(),
            read_only,
            instructions: None,
            verdicts: false,
            fail_on: None,
            back_to: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindDef {
    pub code: Kind,
    /// Default role sequence of orders of this kind.
    pub sequence: Vec<Role>,
    /// Roles after whose success a human must approve.
    pub gates: Vec<Role>,
    /// What one order of this kind may cost, in micro-dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_micros: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub schema: u32,
    pub roles: Vec<RoleDef>,
    pub kinds: Vec<KindDef>,
    pub persona_set: PersonaSet,
    pub max_attempts: u32,
    pub lease_ttl_secs: u64,
    /// Who may approve or reject. Empty: anyone named may (see the README's trust model).
    pub approvers: Vec<String>,
    /// Who may change this configuration; the actor of INIT is the first.
    pub admins: Vec<String>,
    /// Every ledger commit must carry an SSH signature by a key of each of its actors.
    pub require_signatures: bool,
    /// The SSH public keys (`ssh-ed25519 AAAA…`) allowed to sign for each actor.
    pub signers: BTreeMap<String, Vec<String>>,
    /// What one order may cost, in micro-dollars, unless its kind or the order says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_micros: Option<u64>,
    /// The wait before a failed run is tried again; it doubles with each
    /// failure in a row, up to an hour. 0: at once.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_backoff_secs: u64,
}

/// Built-in persona sets: display names for role codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PersonaSet {
    Default,
    Nautical,
    Heist,
}

impl PersonaSet {
    pub fn as_str(self) -> &'static str {
        match self {
            PersonaSet::Default => "default",
            PersonaSet::Nautical => "nautical",
            PersonaSet::Heist => "heist",
        }
    }

    pub fn name(self, role: &Role) -> &str {
        let names: [&str; 6] = match self {
            PersonaSet::Default => ["Planner", "Builder", "Tester", "Documenter", "Security", "Release"],
            PersonaSet::Nautical => ["Navigator", "Shipwright", "Bosun", "Scribe", "Lookout", "Coxswain"],
            PersonaSet::Heist => ["Mastermind", "Safecracker", "Inside Man", "Forger", "Lookout", "Getaway Driver"],
        };
        match role.as_str() {
            "PLN" => names[0],
            "BLD" => names[1],
            "TST" => names[2],
            "DOC" => names[3],
            "SEC" => names[4],
            "REL" => names[5],
            other => other,
        }
    }
}

fn role(code: &str) -> Role {
    code.parse().expect("built-in role codes are valid")
}

fn kind(code: &str) -> Kind {
    code.parse().expect("built-in kind codes are valid")
}

impl Config {
    /// What `git mso init` writes for `admin`, its first admin.
    pub fn initial(admin: &str) -> Self {
        let roles = [
            ("PLN", "deep", false),
            ("BLD", "standard", false),
            ("TST", "standard", false),
            ("DOC", "light", false),
            ("SEC", "deep", true),
            ("REL", "light", false),
        ]
        .into_iter()
        .map(|(code, model, read_only)| {
            let mut def = RoleDef::new(role(code), model, read_only);
            match code {
                "TST" => (def.verdicts, def.back_to) = (true, Some(role("BLD"))),
                "SEC" => (def.fail_on, def.back_to) = (Some(Severity::High), Some(role("BLD"))),
                _ => {}
            }
            def
        })
        .collect();
        let standard = || vec![role("PLN"), role("BLD"), role("TST")];
        let kinds = vec![
            KindDef { code: kind("FTR"), sequence: standard(), gates: vec![role("PLN")], budget_micros: None },
            KindDef { code: kind("BUG"), sequence: standard(), gates: vec![role("PLN")], budget_micros: None },
            KindDef { code: kind("CHR"), sequence: vec![role("BLD"), role("TST")], gates: vec![], budget_micros: None },
            KindDef { code: kind("DOC"), sequence: vec![role("DOC")], gates: vec![role("DOC")], budget_micros: None },
        ];
        Config {
            schema: SCHEMA,
            roles,
            kinds,
            persona_set: PersonaSet::Nautical,
            max_attempts: 3,
            lease_ttl_secs: 600,
            approvers: Vec::new(),
            admins: vec![admin.to_string()],
            require_signatures: false,
            signers: BTreeMap::new(),
            budget_micros: None,
            retry_backoff_secs: 30,
        }
    }
}

/// Every key `git mso config` sets.
pub const KEYS: &str = "persona_set, max_attempts, lease_ttl_secs, retry_backoff_secs, budget_usd, approvers, admins, \
     require_signatures, signers.<ACTOR>, roles.<ROLE>.model, roles.<ROLE>.read_only, roles.<ROLE>.instructions, \
     roles.<ROLE>.verdicts, roles.<ROLE>.fail_on, roles.<ROLE>.back_to, kinds.<KIND>.sequence, kinds.<KIND>.gates, \
     kinds.<KIND>.budget_usd";

/// A configuration that does not hold together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown config key '{0}' (keys: {KEYS})")]
    UnknownKey(String),
    #[error("bad value for {key}: {reason}")]
    BadValue { key: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    pub fn role(&self, code: &Role) -> Option<&RoleDef> {
        self.roles.iter().find(|r| &r.code == code)
    }

    pub fn kind(&self, code: &Kind) -> Option<&KindDef> {
        self.kinds.iter().find(|k| &k.code == code)
    }

    pub fn persona<'a>(&self, role: &'a Role) -> &'a str {
        self.persona_set.name(role)
    }

    /// Check the whole configuration: every value in its documented range,
    /// every sequence of known roles once, gates in their sequence, names
    /// safe, and signing keys that parse.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.schema != SCHEMA {
            return invalid(format!("unsupported schema {}", self.schema));
        }
        if self.roles.is_empty() || self.kinds.is_empty() {
            return invalid("at least one role and one kind are needed".into());
        }
        if self.roles.len() > bounds::ROLES || self.kinds.len() > bounds::KINDS {
            return invalid(format!("at most {} roles and {} kinds", bounds::ROLES, bounds::KINDS));
        }
        if !bounds::MAX_ATTEMPTS.contains(&self.max_attempts) {
            return invalid(format!("max_attempts must be between 1 and {}", bounds::MAX_ATTEMPTS.end()));
        }
        if !bounds::LEASE_TTL_SECS.contains(&self.lease_ttl_secs) {
            return invalid(format!(
                "lease_ttl_secs must be between {} and {}",
                bounds::LEASE_TTL_SECS.start(),
                bounds::LEASE_TTL_SECS.end()
            ));
        }
        if self.retry_backoff_secs > bounds::RETRY_BACKOFF_SECS {
            return invalid(format!("retry_backoff_secs must be at most {}", bounds::RETRY_BACKOFF_SECS));
        }
        let budgets = std::iter::once(self.budget_micros).chain(self.kinds.iter().map(|k| k.budget_micros));
        if budgets.flatten().any(|b| !budget_in_range(b)) {
            return invalid(BUDGET_RANGE.into());
        }
        for (i, r) in self.roles.iter().enumerate() {
            if self.roles[..i].iter().any(|o| o.code == r.code) {
                return invalid(format!("role {} is listed twice", r.code));
            }
            check_model(&r.model).map_err(ConfigError::Invalid)?;
            if let Some(text) = &r.instructions {
                super::text::check_multiline(&format!("roles.{}.instructions", r.code), text, bounds::INSTRUCTIONS)
                    .map_err(ConfigError::Invalid)?;
            }
            if let Some(back) = &r.back_to
                && (self.role(back).is_none() || back == &r.code)
            {
                return invalid(format!("roles.{}.back_to names {back}, which is not another configured role", r.code));
            }
        }
        for (i, k) in self.kinds.iter().enumerate() {
            if self.kinds[..i].iter().any(|o| o.code == k.code) {
                return invalid(format!("kind {} is listed twice", k.code));
            }
            self.check_sequence(&k.sequence, &k.gates)
                .map_err(|e| ConfigError::Invalid(format!("kind {}: {e}", k.code)))?;
        }
        check_names("approvers", &self.approvers, 0)?;
        check_names("admins", &self.admins, 1)?;
        if self.signers.len() > bounds::NAMES {
            return invalid(format!("at most {} signers", bounds::NAMES));
        }
        for (actor, keys) in &self.signers {
            check_actor("signer", actor).map_err(ConfigError::Invalid)?;
            if keys.is_empty() || keys.len() > bounds::KEYS_PER_SIGNER {
                return invalid(format!("signer {actor} needs 1 to {} keys", bounds::KEYS_PER_SIGNER));
            }
            for key in keys {
                super::signing::parse_key(key).map_err(|e| ConfigError::Invalid(format!("signer {actor}: {e}")))?;
            }
        }
        if self.require_signatures
            && let Some(admin) = self.admins.iter().find(|a| !self.signers.contains_key(*a))
        {
            return invalid(format!(
                "signatures are required but admin {admin} has no key in signers: add it first (signers.{admin})"
            ));
        }
        Ok(())
    }

    /// A role sequence must be non-empty, use configured roles, each once; gates must be in it.
    pub fn check_sequence(&self, sequence: &[Role], gates: &[Role]) -> Result<(), String> {
        if sequence.is_empty() {
            return Err("the role sequence is empty".into());
        }
        for (i, r) in sequence.iter().enumerate() {
            if self.role(r).is_none() {
                return Err(format!("unknown role {r} (configured: {})", self.role_list()));
            }
            if sequence[..i].contains(r) {
                return Err(format!("role {r} appears twice in the sequence"));
            }
        }
        if let Some(g) = gates.iter().find(|g| !sequence.contains(g)) {
            return Err(format!("gate {g} is not in the role sequence"));
        }
        Ok(())
    }

    pub fn role_list(&self) -> String {
        self.roles.iter().map(|r| r.code.as_str()).collect::<Vec<_>>().join(",")
    }

    /// Whether `actor` speaks for the team (stops or restarts others' work,
    /// publishes and closes voyages): anyone until the config lists
    /// approvers, then admins and approvers.
    pub fn is_manager(&self, actor: &str) -> bool {
        self.approvers.is_empty() || self.admins.iter().any(|a| a == actor) || self.approvers.iter().any(|a| a == actor)
    }

    pub fn kind_list(&self) -> String {
        self.kinds.iter().map(|k| k.code.as_str()).collect::<Vec<_>>().join(",")
    }

    /// Set one key (the `CONFIG_SET` event); the result is validated as a whole.
    pub fn set(&mut self, key: &str, value: &serde_json::Value) -> Result<(), ConfigError> {
        fn parse<T: serde::de::DeserializeOwned>(key: &str, v: &serde_json::Value) -> Result<T, ConfigError> {
            serde_json::from_value(v.clone())
                .map_err(|e| ConfigError::BadValue { key: key.into(), reason: e.to_string() })
        }
        if key.len() > 128 {
            return Err(ConfigError::UnknownKey(super::ids::shown(key)));
        }
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["persona_set"] => self.persona_set = parse(key, value)?,
            ["max_attempts"] => self.max_attempts = parse(key, value)?,
            ["lease_ttl_secs"] => self.lease_ttl_secs = parse(key, value)?,
            ["approvers"] => self.approvers = parse(key, value)?,
            ["admins"] => self.admins = parse(key, value)?,
            ["require_signatures"] => self.require_signatures = parse(key, value)?,
            ["retry_backoff_secs"] => self.retry_backoff_secs = parse(key, value)?,
            ["budget_usd"] => self.budget_micros = budget(key, value)?,
            ["signers", _, ..] => {
                let actor = &key["signers.".len()..];
                check_actor("signer", actor).map_err(|reason| ConfigError::BadValue { key: key.into(), reason })?;
                let keys: Vec<String> = parse(key, value)?;
                if keys.is_empty() {
                    self.signers.remove(actor);
                } else {
                    self.signers.insert(actor.to_string(), keys);
                }
            }
            ["roles", code, field] => {
                let code: Role = code.parse().map_err(|e: super::ids::IdError| ConfigError::BadValue {
                    key: key.into(),
                    reason: e.to_string(),
                })?;
                if self.role(&code).is_none() {
                    self.roles.push(RoleDef::new(code.clone(), "standard", false));
                }
                let def = self.roles.iter_mut().find(|r| r.code == code).expect("just ensured");
                match *field {
                    "model" => def.model = parse(key, value)?,
                    "read_only" => def.read_only = parse(key, value)?,
                    "verdicts" => def.verdicts = parse(key, value)?,
                    // An empty text or null restores the default.
                    "instructions" => {
                        def.instructions = parse::<Option<String>>(key, value)?.filter(|t| !t.trim().is_empty())
                    }
                    "fail_on" => def.fail_on = parse(key, value)?,
                    "back_to" => def.back_to = parse(key, value)?,
                    _ => return Err(ConfigError::UnknownKey(key.into())),
                }
            }
            ["kinds", code, field] => {
                let code: Kind = code.parse().map_err(|e: super::ids::IdError| ConfigError::BadValue {
                    key: key.into(),
                    reason: e.to_string(),
                })?;
                if self.kind(&code).is_none() {
                    let sequence = self.kinds.first().map(|k| k.sequence.clone()).unwrap_or_default();
                    self.kinds.push(KindDef { code: code.clone(), sequence, gates: vec![], budget_micros: None });
                }
                let def = self.kinds.iter_mut().find(|k| k.code == code).expect("just ensured");
                match *field {
                    "sequence" => def.sequence = parse(key, value)?,
                    "gates" => def.gates = parse(key, value)?,
                    "budget_usd" => def.budget_micros = budget(key, value)?,
                    _ => return Err(ConfigError::UnknownKey(key.into())),
                }
            }
            _ => return Err(ConfigError::UnknownKey(key.into())),
        }
        self.validate()
    }
}

impl Config {
    /// The value `set(key, …)` takes to leave `key` as it is here: its
    /// inverse, so a change can be taken back (`git mso undo`). `None` for a
    /// key that names a role or kind this config does not have.
    pub fn setting(&self, key: &str) -> Option<serde_json::Value> {
        use serde_json::{Value, to_value};
        let dollars = |micros: Option<u64>| micros.map_or(Value::Null, |m| Value::from(m as f64 / 1_000_000.0));
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["persona_set"] => to_value(self.persona_set).ok(),
            ["max_attempts"] => Some(Value::from(self.max_attempts)),
            ["lease_ttl_secs"] => Some(Value::from(self.lease_ttl_secs)),
            ["retry_backoff_secs"] => Some(Value::from(self.retry_backoff_secs)),
            ["approvers"] => to_value(&self.approvers).ok(),
            ["admins"] => to_value(&self.admins).ok(),
            ["require_signatures"] => Some(Value::from(self.require_signatures)),
            ["budget_usd"] => Some(dollars(self.budget_micros)),
            ["signers", _, ..] => {
                to_value(self.signers.get(&key["signers.".len()..]).cloned().unwrap_or_default()).ok()
            }
            ["roles", code, field] => {
                let def = self.role(&code.parse().ok()?)?;
                match *field {
                    "model" => to_value(&def.model).ok(),
                    "read_only" => Some(Value::from(def.read_only)),
                    "verdicts" => Some(Value::from(def.verdicts)),
                    "instructions" => to_value(&def.instructions).ok(),
                    "fail_on" => to_value(def.fail_on).ok(),
                    "back_to" => to_value(&def.back_to).ok(),
                    _ => None,
                }
            }
            ["kinds", code, field] => {
                let def = self.kind(&code.parse().ok()?)?;
                match *field {
                    "sequence" => to_value(&def.sequence).ok(),
                    "gates" => to_value(&def.gates).ok(),
                    "budget_usd" => Some(dollars(def.budget_micros)),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// Why a budget is refused: the one range every writer and the server check.
pub const BUDGET_RANGE: &str = "a budget must be more than $0 and at most $1,000,000";

/// Whether a budget in micro-dollars is in range.
pub fn budget_in_range(micros: u64) -> bool {
    micros > 0 && micros <= bounds::BUDGET_MICROS
}

/// A budget in dollars as micro-dollars, if in range.
pub fn budget_of_dollars(dollars: f64) -> Result<u64, &'static str> {
    if !(dollars > 0.0 && dollars <= 1e6) {
        return Err(BUDGET_RANGE);
    }
    Ok((dollars * 1e6).round() as u64)
}

/// A budget in dollars (a number, or null for none) as micro-dollars.
fn budget(key: &str, value: &serde_json::Value) -> Result<Option<u64>, ConfigError> {
    let bad = |reason: &str| ConfigError::BadValue { key: key.into(), reason: reason.into() };
    if value.is_null() {
        return Ok(None);
    }
    let dollars = value.as_f64().ok_or_else(|| bad("give a number of dollars, such as 2.50, or null for none"))?;
    budget_of_dollars(dollars).map(Some).map_err(bad)
}

/// A model tier: a short lower-case token (`deep`, `standard`, `gpt-5.1`).
fn check_model(model: &str) -> Result<(), String> {
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-');
    if model.is_empty() || model.len() > bounds::MODEL || !model.bytes().all(ok) {
        return Err(format!(
            "model tier {} is not valid: use 1 to {} lower-case letters, digits and . _ -",
            super::ids::shown(model),
            bounds::MODEL
        ));
    }
    Ok(())
}

/// A list of actor names: `min` to `bounds::NAMES` valid names, none twice.
fn check_names(what: &str, names: &[String], min: usize) -> Result<(), ConfigError> {
    if names.len() < min || names.len() > bounds::NAMES {
        return Err(ConfigError::Invalid(format!("{what} must list {min} to {} names", bounds::NAMES)));
    }
    for (i, name) in names.iter().enumerate() {
        check_actor(what, name).map_err(ConfigError::Invalid)?;
        if names[..i].contains(name) {
            return Err(ConfigError::Invalid(format!("{what} lists {name} twice")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn setting_is_the_inverse_of_set() {
        const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";
        let mut base = super::Config::initial("alice");
        base.set("signers.alice", &serde_json::json!([format!("{KEY} alice")])).unwrap();
        let changes: &[(&str, serde_json::Value)] = &[
            ("persona_set", serde_json::json!("default")),
            ("max_attempts", serde_json::json!(7)),
            ("lease_ttl_secs", serde_json::json!(120)),
            ("retry_backoff_secs", serde_json::json!(0)),
            ("approvers", serde_json::json!(["bob"])),
            ("admins", serde_json::json!(["alice", "carol"])),
            ("require_signatures", serde_json::json!(true)),
            ("budget_usd", serde_json::json!(2.5)),
            ("signers.bob", serde_json::json!([format!("{KEY} bob")])),
            ("roles.BLD.model", serde_json::json!("deep")),
            ("roles.SEC.read_only", serde_json::json!(false)),
            ("roles.DOC.verdicts", serde_json::json!(true)),
            ("roles.BLD.instructions", serde_json::json!("Run the tests.")),
            ("roles.SEC.fail_on", serde_json::json!("low")),
            ("roles.TST.back_to", serde_json::json!("PLN")),
            ("kinds.FTR.sequence", serde_json::json!(["PLN", "BLD"])),
            ("kinds.FTR.gates", serde_json::json!(["BLD"])),
            ("kinds.BUG.budget_usd", serde_json::json!(0.75)),
        ];
        for (key, value) in changes {
            let mut changed = base.clone();
            let before = base.setting(key).unwrap_or_else(|| panic!("no setting for {key}"));
            changed.set(key, value).unwrap_or_else(|e| panic!("{key} = {value}: {e}"));
            assert_ne!(changed, base, "{key} = {value} changed nothing");
            changed.set(key, &before).unwrap_or_else(|e| panic!("{key}: {e}"));
            assert_eq!(changed, base, "setting {key} back to {before} did not restore it");
        }
        assert_eq!(base.setting("roles.QA.model"), None);
    }

    use super::*;

    #[test]
    fn the_initial_config_is_valid_and_names_its_admin() {
        let c = Config::initial("alice");
        c.validate().unwrap();
        assert_eq!(c.admins, ["alice"]);
    }

    #[test]
    fn values_out_of_range_are_refused() {
        let mut c = Config::initial("alice");
        for (key, value) in [
            ("max_attempts", serde_json::json!(21)),
            ("lease_ttl_secs", serde_json::json!(5)),
            ("lease_ttl_secs", serde_json::json!(u64::MAX)),
            ("admins", serde_json::json!([])),
            ("approvers", serde_json::json!(["ev\u{202e}il"])),
            ("roles.PLN.model", serde_json::json!("$(reboot)")),
            ("require_signatures", serde_json::json!(true)),
            ("signers.alice", serde_json::json!(["ssh-rsa AAAA"])),
            ("signers", serde_json::json!(1)),
            ("signers.", serde_json::json!([])),
        ] {
            assert!(c.set(key, &value).is_err(), "{key} = {value}");
        }
    }

    #[test]
    fn set_validates_the_whole_config() {
        let mut c = Config::initial("alice");
        c.set("kinds.FTR.gates", &serde_json::json!(["BLD"])).unwrap();
        assert_eq!(c.kind(&"FTR".parse().unwrap()).unwrap().gates, vec![role("BLD")]);
        let err = c.set("kinds.FTR.sequence", &serde_json::json!(["PLN", "XYZ"])).unwrap_err();
        assert!(err.to_string().contains("unknown role XYZ"), "{err}");
        assert!(c.set("nope", &serde_json::json!(1)).is_err());
        assert!(c.set("max_attempts", &serde_json::json!(0)).is_err());
    }

    #[test]
    fn personas_name_roles() {
        assert_eq!(PersonaSet::Nautical.name(&role("PLN")), "Navigator");
        assert_eq!(PersonaSet::Default.name(&role("TST")), "Tester");
    }
}
