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

/// This machine's name: `MSO_HOST`, else the kernel's hostname.
pub fn host() -> String {
    std::env::var("MSO_HOST")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
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
/// (`'key'='value'`, or `'key=value'` from older versions, a quote inside
/// written `'\''`); a key without a value means true. Anything that does
/// not parse ends the list.
pub fn config_parameters() -> Vec<String> {
    std::env::var("GIT_CONFIG_PARAMETERS").map(|text| parse_config_parameters(&text)).unwrap_or_default()
}

fn parse_config_parameters(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    // One single-quoted word, with git's `'\''` for a quote inside.
    let quoted = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Option<String> {
        if chars.next()? != '\'' {
            return None;
        }
        let mut word = String::new();
        loop {
            match chars.next()? {
                '\'' if chars.peek() == Some(&'\\') => {
                    chars.next();
                    if chars.next()? != '\'' || chars.next()? != '\'' {
                        return None;
                    }
                    word.push('\'');
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
            return out;
        }
        let Some(first) = quoted(&mut chars) else { return out };
        let item = if chars.peek() == Some(&'=') {
            chars.next();
            let Some(value) = quoted(&mut chars) else { return out };
            format!("{first}={value}")
        } else if first.contains('=') {
            first
        } else {
            format!("{first}=true")
        };
        out.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::parse_config_parameters;

    #[test]
    fn git_c_settings_parse_in_both_of_git_s_quotings() {
        assert_eq!(parse_config_parameters("'mso.user'='alice'"), ["mso.user=alice"]);
        assert_eq!(parse_config_parameters("'mso.user=alice' 'a.b'='x y'"), ["mso.user=alice", "a.b=x y"]);
        assert_eq!(parse_config_parameters("'a.b'='it'\\''s'"), ["a.b=it's"]);
        assert_eq!(parse_config_parameters("'core.flag'"), ["core.flag=true"]);
        assert_eq!(parse_config_parameters("'a.b'='ok' garbage"), ["a.b=ok"]);
        assert!(parse_config_parameters("").is_empty());
    }
}
