//! Evidence of a run: what its crew received and produced (the brief, the
//! final message, the gate's output, the end of its log), redacted and
//! bounded, as one block of a note on `refs/notes/mso-evidence`.
//!
//! A record is a notes block: no blank lines. Its first line names the run
//! (`Mso-Evidence: ORDER run N ROLE attempt A`); sections start with
//! `--- name` and every line of their text is prefixed with `|`.

use regex::{Regex, RegexBuilder};

use super::notes::Block;

/// Bounds of what `mso.evidence.redact` may add.
pub mod bounds {
    pub const PATTERNS: usize = 64;
    pub const PATTERN: usize = 1024;
    /// Compiled size of one pattern.
    pub const COMPILED: usize = 1 << 20;
    /// The smallest and largest record `mso.evidence.maxBytes` allows.
    pub const RECORD_MIN: usize = 1024;
    pub const RECORD_MAX: usize = 256 * 1024;
    pub const RECORD_DEFAULT: usize = 32 * 1024;
}

/// What stands for a redacted secret.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets as they commonly appear in agents' logs; a match (or its last
/// group, when it has groups) is replaced by `[REDACTED]`.
const BUILT_IN: &[&str] = &[
    r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----",
    // A key's body whose BEGIN line was cut off (the start of a log's window).
    r"(?m)(?:^[A-Za-z0-9+/=]{40,}[ \t]*\r?\n)+-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----",
    // A key whose END line never came (a crew stopped while printing it):
    // whole keys are gone by now, so all that follows goes.
    r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*",
    r"\b(sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,}|sk_live_[A-Za-z0-9]{16,}|rk_live_[A-Za-z0-9]{16,})",
    r"\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})",
    r"\b(glpat-[A-Za-z0-9_\-]{20,}|npm_[A-Za-z0-9]{30,}|hf_[A-Za-z0-9]{30,})",
    r"\b(xox[abprs]-[A-Za-z0-9\-]{10,})",
    r"hooks\.slack\.com/services/([A-Za-z0-9/]{20,})",
    r"\b(AKIA[0-9A-Z]{16})\b",
    r"\b(AIza[0-9A-Za-z_\-]{35})",
    // A JSON web token.
    r"\b(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})",
    r"(?i)\bbearer\s+([A-Za-z0-9._~+/=\-]{12,})",
    r"(?i)\bauthorization:\s*(?:basic|token)\s+([A-Za-z0-9._~+/=\-]{8,})",
    // user:password@ in a URL, curl -u user:password.
    r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:([^\s@/]+)@",
    r#"(?:^|\s)-u\s+["']?[^\s:'"]+:([^\s'"]+)"#,
    // --password VALUE, --token=VALUE.
    r#"(?i)--[a-z0-9\-]*(?:password|passwd|token|secret|api-?key)(?:=|\s+)["']?([^\s'"]+)"#,
    // NAME=value, "name": "value", \"name\": \"value\" (JSON inside JSON), X-Api-Key: value,
    // for secret-looking names and values with a letter in them (not token counts).
    r#"(?i)\b[A-Z0-9_.\-]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API[_\-]?KEY|ACCESS[_\-]?KEY|PRIVATE[_\-]?KEY|CREDENTIALS?|ACCOUNTKEY)[A-Z0-9_.\-]*\\?["']?\s*[=:]\s*\\?["']?([A-Za-z0-9_\-./+=~]*[A-Za-z][A-Za-z0-9_\-./+=~]{5,})"#,
];

/// Replaces secrets in text: the built-in patterns, the configured ones,
/// and the values of secret-looking variables of the runner's environment.
#[derive(Debug, Clone)]
pub struct Redactor {
    /// Shared by every redactor of the process, so their matching caches stay warm.
    built_in: &'static [Regex],
    extra: Vec<Regex>,
    literals: Vec<String>,
}

impl Redactor {
    /// The built-in patterns plus `extra` (`mso.evidence.redact`); an
    /// error names a pattern that is too long, too many, or not a regex.
    pub fn new(extra: &[String], env: impl IntoIterator<Item = (String, String)>) -> Result<Redactor, String> {
        // Longest first, so a secret that contains another is replaced whole.
        let mut env: Vec<(String, String)> = env.into_iter().collect();
        env.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        if extra.len() > bounds::PATTERNS {
            return Err(format!("mso.evidence.redact has {} patterns, at most {}", extra.len(), bounds::PATTERNS));
        }
        // The built-in patterns are compiled once per process (a runner
        // redacts every run), and used from there: compiling them, or
        // matching with a cold copy, costs most of a millisecond.
        static COMPILED: std::sync::OnceLock<Result<Vec<Regex>, String>> = std::sync::OnceLock::new();
        let built_in = COMPILED
            .get_or_init(|| {
                let name = |i: usize| format!("built-in redaction pattern {}", i + 1);
                BUILT_IN.iter().enumerate().map(|(i, p)| compile(p, &name(i))).collect()
            })
            .as_deref()
            .map_err(Clone::clone)?;
        // Patterns are named as `mso.evidence.redact` lists them, from 1.
        let extra = extra
            .iter()
            .enumerate()
            .map(|(n, p)| compile(p, &format!("mso.evidence.redact pattern {}", n + 1)))
            .collect::<Result<_, _>>()?;
        let secret_name = |n: &str| {
            let n = n.to_ascii_uppercase();
            ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD"].iter().any(|w| n.contains(w))
        };
        let literals = env.into_iter().filter(|(k, v)| secret_name(k) && v.len() >= 8).map(|(_, v)| v).collect();
        Ok(Redactor { built_in, extra, literals })
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for lit in &self.literals {
            if out.contains(lit.as_str()) {
                out = out.replace(lit.as_str(), REDACTED);
            }
        }
        for re in self.built_in.iter().chain(&self.extra) {
            out = re
                .replace_all(&out, |caps: &regex::Captures<'_>| {
                    let whole = caps.get(0).map_or("", |m| m.as_str());
                    match (1..caps.len()).rev().find_map(|i| caps.get(i)) {
                        Some(secret) => {
                            let start = secret.start() - caps.get(0).map_or(0, |m| m.start());
                            format!("{}{REDACTED}{}", &whole[..start], &whole[start + secret.len()..])
                        }
                        None => REDACTED.to_string(),
                    }
                })
                .into_owned();
        }
        out
    }
}

/// One redaction pattern, within the bounds on its length and compiled size.
fn compile(pattern: &str, name: &str) -> Result<Regex, String> {
    if pattern.len() > bounds::PATTERN {
        return Err(format!("{name} is over {} bytes", bounds::PATTERN));
    }
    RegexBuilder::new(pattern)
        .size_limit(bounds::COMPILED)
        .build()
        .map_err(|e| format!("{name} is not a valid regex: {e}"))
}

/// Which run a record is about.
pub fn header(order: &str, run: usize, role: &str, attempt: u32) -> String {
    format!("Mso-Evidence: {order} run {run} {role} attempt {attempt}")
}

/// One section of a record, and how it is cut when over its share.
pub struct Section<'a> {
    pub name: &'a str,
    pub text: &'a str,
    /// Keep the end (a log) rather than the start (a brief).
    pub keep_end: bool,
    /// The most bytes of the record it may take.
    pub share: usize,
}

/// A record: `header`, trailer lines, then the sections, each redacted and
/// cut to its share; at most `max` bytes in all.
pub fn record(header: String, trailers: &[String], sections: &[Section<'_>], redactor: &Redactor, max: usize) -> Block {
    let mut block = vec![header];
    block.extend(trailers.iter().cloned());
    let mut used: usize = block.iter().map(|l| l.len() + 1).sum();
    for s in sections {
        let text = redactor.redact(s.text);
        let text = text.trim_end();
        if text.is_empty() {
            continue;
        }
        let room = s.share.min(max.saturating_sub(used).saturating_sub(s.name.len() + 40));
        if room < 64 {
            continue;
        }
        let cut = cut(text, room, s.keep_end);
        block.push(format!("--- {}", s.name));
        for line in cut.lines() {
            block.push(format!("|{}{line}", if line.is_empty() { "" } else { " " }));
        }
        used = block.iter().map(|l| l.len() + 2).sum();
    }
    block
}

/// `text` within about `max` bytes, cut at a character boundary, saying how much was left out.
fn cut(text: &str, max: usize, keep_end: bool) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    // Each kept line grows by its prefix; leave room for it and the note.
    let budget = max.saturating_sub(max / 8 + 40);
    if keep_end {
        let mut start = text.len() - budget;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        format!("[… {start} bytes before this left out …]\n{}", &text[start..])
    } else {
        let mut end = budget;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}\n[… {} bytes after this left out …]", &text[..end], text.len() - end)
    }
}

/// The SHA-256 (hex) of a record as a note keeps it (rendered and read
/// back), which its run's report names in the ledger.
pub fn digest(record: &Block) -> String {
    use sha2::{Digest, Sha256};
    let kept = super::notes::parse(&super::notes::render(std::slice::from_ref(record)));
    let mut hash = Sha256::new();
    for line in kept.iter().flatten() {
        hash.update(line.as_bytes());
        hash.update(b"\n");
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The text of section `name` of a record, and whether it was cut.
pub fn section(block: &Block, name: &str) -> Option<(String, bool)> {
    let start = block.iter().position(|l| l == &format!("--- {name}"))?;
    let mut text = String::new();
    for line in &block[start + 1..] {
        if line.starts_with("--- ") {
            break;
        }
        text.push_str(line.strip_prefix("| ").or_else(|| line.strip_prefix('|')).unwrap_or(line));
        text.push('\n');
    }
    let cut = text.contains(" bytes after this left out …]") || text.starts_with("[… ");
    Some((text, cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        Redactor::new(&["internal-[0-9]+".into()], [("MY_API_KEY".into(), "hunter2hunter2".into())]).unwrap()
    }

    #[test]
    fn secrets_are_redacted_and_the_rest_kept() {
        let r = redactor();
        let text = "key sk-ant-REDACTME0123456789abcdef ok\nAuthorization: Bearer abcdefghijklmnopqrstuvwxyz\n\
                    DB_PASSWORD=s3cr3tvalue and ghp_0123456789abcdefghijklmnopqrstuvwxyz\nid internal-42\nhunter2hunter2\n\
                    export DB_PASSWORD=\"quotedsecret1\"\n{\"api_key\": \"jsonsecret1234\"}\npassword: 'yamlsecret99'\n\
                    https://deploy:Sup3rUrlPw@host/x\nAuthorization: Basic dXNlcjpwYXNzd29yZA==\n--password Sup3rFlagPw2\n\
                    MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----";
        let out = r.redact(text);
        for secret in [
            "sk-ant-",
            "abcdefghijklmnopqrstuvwxyz",
            "s3cr3tvalue",
            "ghp_",
            "internal-42",
            "hunter2",
            "quotedsecret1",
            "jsonsecret1234",
            "yamlsecret99",
            "Sup3rUrlPw",
            "dXNlcjpwYXNzd29yZA",
            "Sup3rFlagPw2",
            "MIIEvQIBADAN",
        ] {
            assert!(!out.contains(secret), "{secret}: {out}");
        }
        assert!(out.contains("Authorization: Bearer [REDACTED]"), "{out}");
        let more = "{\\\"api_key\\\": \\\"escapedsecret9\\\"}\nX-Api-Key: headersecret77\nAuthorization: token tokensecret55\n\
                    curl -u deploy:curlsecret42 https://x\nsk_live_abcdefghijklmnopqrstuv\n\
                    eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlc2ln";
        let more = r.redact(more);
        for secret in ["escapedsecret9", "headersecret77", "tokensecret55", "curlsecret42", "sk_live_", "eyJzdWIi"] {
            assert!(!more.contains(secret), "{secret}: {more}");
        }
        // What is not a secret stays.
        let plain = r.redact("a basic implementation\n\"output_tokens\": 123456");
        assert_eq!(plain, "a basic implementation\n\"output_tokens\": 123456");
        assert!(out.contains("DB_PASSWORD=[REDACTED]"), "{out}");
        assert!(out.starts_with("key [REDACTED] ok"), "{out}");
    }

    #[test]
    fn a_private_key_cut_at_either_end_is_redacted() {
        let r = redactor();
        let body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n\
                    VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n";
        let whole = format!("before\n-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\nafter\n");
        let out = r.redact(&whole);
        assert!(!out.contains("MIIEow") && out.contains("before") && out.contains("after"), "{out}");
        // No BEGIN line (the window started inside the key).
        let out = r.redact(&format!("{body}-----END RSA PRIVATE KEY-----\nafter\n"));
        assert!(!out.contains("MIIEow") && !out.contains("VTLw7") && out.contains("after"), "{out}");
        // No END line (the crew stopped while printing it).
        let out = r.redact(&format!("before\n-----BEGIN OPENSSH PRIVATE KEY-----\n{body}"));
        assert!(!out.contains("MIIEow") && !out.contains("VTLw7") && out.starts_with("before\n"), "{out}");
    }

    #[test]
    fn bad_patterns_are_refused_by_name() {
        let err = Redactor::new(&["ok".into(), "(unclosed".into()], []).unwrap_err();
        assert!(err.contains("pattern 2 is not a valid regex"), "{err}");
        assert!(Redactor::new(&vec!["a".to_string(); 65], []).is_err());
    }

    #[test]
    fn records_are_bounded_blocks_that_read_back() {
        let r = redactor();
        let brief = "# brief\n\nline two\n".repeat(10);
        let log = "x".repeat(100_000);
        let sections = [
            Section { name: "brief", text: &brief, keep_end: false, share: 8 * 1024 },
            Section { name: "crew log", text: &log, keep_end: true, share: 8 * 1024 },
        ];
        let block = record(header("CHR-0001", 1, "BLD", 1), &[], &sections, &r, 4096);
        assert!(block.iter().all(|l| !l.trim().is_empty()), "no blank lines in a notes block");
        let size: usize = block.iter().map(|l| l.len() + 1).sum();
        assert!(size <= 4096 + 64, "{size}");
        assert_eq!(section(&block, "brief").unwrap(), (brief.trim_end().to_string() + "\n", false));
        let (tail, cut) = section(&block, "crew log").unwrap();
        assert!(cut && tail.ends_with("xxx\n"), "{tail}");
    }
}
