//! What the store takes from the machine: clock, host, runner id and
//! identities. Each can be pinned by an environment variable so tests and
//! demos are deterministic (`MSO_NOW`, `MSO_HOST`, `MSO_RUNNER`).

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::core::Timestamp;

/// The current time: `MSO_NOW` (seconds since the epoch) when set.
pub fn now() -> Timestamp {
    if let Some(t) = std::env::var("MSO_NOW").ok().and_then(|v| v.trim().parse().ok()) {
        return t;
    }
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// This machine's name: `MSO_HOST`, else the kernel's hostname. Read once
/// per process: every ref update's lock record names it.
pub fn host() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::env::var("MSO_HOST")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    })
    .clone()
}

/// This process's runner id: `MSO_RUNNER`, else `host:pid`.
pub fn runner_id() -> String {
    std::env::var("MSO_RUNNER").unwrap_or_else(|_| format!("{}:{}", host(), std::process::id()))
}

/// 64 random bits from the standard library's seeded hasher: jitter for retries.
pub fn random_u64() -> u64 {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u64(seq);
        h.write_u32(std::process::id());
        h.write_u64(salt);
        h.finish()
    };
    half(1) ^ half(2).rotate_left(17)
}

/// Who writes: a name for events and a signature for commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Recorded as the event's actor and as reviewer: `mso.user`, else `user.name`, else `git-mso`.
    pub actor: String,
    pub name: String,
    pub email: String,
}

impl Identity {
    pub const FALLBACK_NAME: &'static str = "git-mso";
    pub const FALLBACK_EMAIL: &'static str = "git-mso@localhost";

    pub fn from_config(config: &gix::config::Snapshot<'_>) -> Self {
        let get = |key: &str| {
            config
                .string(key)
                .map(|v| v.to_string().trim().to_string())
                .filter(|v| !v.is_empty() && !v.chars().any(char::is_control))
        };
        let name = get("user.name").unwrap_or_else(|| Self::FALLBACK_NAME.into());
        let email = get("user.email").unwrap_or_else(|| Self::FALLBACK_EMAIL.into());
        let actor = get("mso.user").unwrap_or_else(|| name.clone());
        Identity { actor, name, email }
    }
}

/// The settings `git -c key=value` passes to the commands it runs, from
/// GIT_CONFIG_PARAMETERS, as `key=value` overrides. git quotes each item
/// (`'key'='value'`, or `'key=value'` from older versions; a quote or `!`
/// inside is written `'\''`, `'\!'`); a key without a value (`'key'` or
/// `'key'=`) means true. A list that does not parse is an error, as it is
/// for git; a key holding `=` is left out (no override could say it).
pub fn config_parameters() -> Result<Vec<String>, String> {
    match std::env::var("GIT_CONFIG_PARAMETERS") {
        Ok(text) => parse_config_parameters(&text),
        Err(_) => Ok(Vec::new()),
    }
}

fn parse_config_parameters(text: &str) -> Result<Vec<String>, String> {
    let bogus = || format!("bogus format in GIT_CONFIG_PARAMETERS: {}", crate::core::ids::shown(text));
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    // One single-quoted word; `'\X'` between quoted parts is a literal X.
    let quoted = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Option<String> {
        if chars.next()? != '\'' {
            return None;
        }
        let mut word = String::new();
        loop {
            match chars.next()? {
                '\'' if chars.peek() == Some(&'\\') => {
                    chars.next();
                    word.push(chars.next()?);
                    if chars.next()? != '\'' {
                        return None;
                    }
                }
                '\'' => return Some(word),
                c => word.push(c),
            }
        }
    };
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let first = quoted(&mut chars).ok_or_else(bogus)?;
        let (key, value) = if chars.peek() == Some(&'=') {
            chars.next();
            if matches!(chars.peek(), None | Some(' ')) {
                (first, "true".to_string())
            } else {
                (first, quoted(&mut chars).ok_or_else(bogus)?)
            }
        } else {
            match first.split_once('=') {
                Some((key, value)) => (key.to_string(), value.to_string()),
                None => (first, "true".to_string()),
            }
        };
        if key.contains('=') {
            tracing::warn!("git -c {}: a key with '=' in it is not passed on", crate::core::ids::shown(&key));
            continue;
        }
        out.push(format!("{key}={value}"));
    }
}

#[cfg(test)]
mod tests {
    use super::parse_config_parameters;

    #[test]
    fn git_c_settings_parse_in_both_of_git_s_quotings() {
        let parse = |t: &str| parse_config_parameters(t).unwrap();
        assert_eq!(parse("'mso.user'='alice'"), ["mso.user=alice"]);
        assert_eq!(parse("'mso.user=alice' 'a.b'='x y'"), ["mso.user=alice", "a.b=x y"]);
        assert_eq!(parse("'a.b'='it'\\''s'"), ["a.b=it's"]);
        assert_eq!(parse("'a.b'='a'\\!'b' 'mso.user'='bob'"), ["a.b=a!b", "mso.user=bob"]);
        assert_eq!(parse("'core.flag'"), ["core.flag=true"]);
        assert_eq!(parse("'x.flag'= 'mso.user'='bob'"), ["x.flag=true", "mso.user=bob"]);
        assert_eq!(parse("'x.empty'=''"), ["x.empty="]);
        assert!(parse("").is_empty());
        assert!(parse_config_parameters("'a.b'='ok' garbage").unwrap_err().contains("bogus format"));
    }
}
